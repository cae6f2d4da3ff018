//! Effective routes of a gateway, and the next-hop tool (both computed in the browser).

use std::net::IpAddr;

use isthmus_shared::messages;
use isthmus_shared::model::QualifiedName;
use isthmus_shared::routes::{
    Location, NextHop, Outcome, Path, RouteOrigin, gateway_routes, next_hop_in,
};
use leptos::prelude::*;

use crate::i18n::{Key, Lang, t};
use crate::state::ctx;

/// The shared messages' language for the portal's.
fn ml(lang: Lang) -> messages::Lang {
    crate::i18n::ml(lang)
}

/// A next hop for people, in `lang`.
pub fn fmt_hop(h: &NextHop, lang: Lang) -> String {
    messages::next_hop(h, ml(lang))
}

fn fmt_origin(o: &RouteOrigin, lang: Lang) -> String {
    messages::route_origin(o, ml(lang))
}

fn fmt_loc(l: &Location, lang: Lang) -> String {
    messages::location(l, ml(lang))
}

fn fmt_outcome(o: &Outcome, lang: Lang) -> String {
    messages::outcome(o, ml(lang))
}

/// The path's lines in English, for support (shown behind a disclosure in other languages).
fn english_path(p: &Path) -> String {
    let mut lines: Vec<String> = p
        .hops
        .iter()
        .map(|h| {
            format!(
                "{} → {} ({}): {}",
                fmt_loc(&h.at, Lang::En),
                fmt_hop(&h.next_hop, Lang::En),
                h.rule.as_str(),
                h.reason
            )
        })
        .collect();
    lines.push(format!("= {}", fmt_outcome(&p.outcome, Lang::En)));
    lines.join("\n")
}

#[component]
pub fn RoutesPage() -> impl IntoView {
    let c = ctx();
    let gateway = RwSignal::new(String::new());
    Effect::new(move |_| {
        if gateway.with(String::is_empty)
            && let Some(g) = c
                .topology()
                .and_then(|t| t.gateways.iter().map(|g| g.name.clone()).min())
        {
            gateway.set(g);
        }
    });
    let source = RwSignal::new(String::new());
    let dest = RwSignal::new(String::new());
    let traced = RwSignal::new(None::<(String, String)>);
    let table = move || {
        let t = c.topology()?;
        let g = gateway.get();
        gateway_routes(&t, &QualifiedName::new(c.tenant_name(), g)).ok()
    };
    let path = move || {
        let (s, d) = traced.get()?;
        let t = c.topology()?;
        let tn = c.tenant_name();
        Some(
            match (s.trim().parse::<IpAddr>(), d.trim().parse::<IpAddr>()) {
                (Ok(s), Ok(d)) => next_hop_in(&t, Some(&tn), s, d)
                    .map_err(|e| messages::next_hop_error(&e, ml(c.lang.get()))),
                _ => Err(c.t(Key::ExpectAddress).to_owned()),
            },
        )
    };
    view! {
        <section class="card" aria-labelledby="routes-heading">
            <h2 id="routes-heading">{move || c.t(Key::EffectiveRoutes)}</h2>
            <div class="field">
                <label for="routes-gateway">{move || c.t(Key::Gateway)}</label>
                <select
                    id="routes-gateway"
                    on:change=move |ev| gateway.set(event_target_value(&ev))
                    prop:value=move || gateway.get()
                >
                    {move || {
                        let cur = gateway.get();
                        let mut names: Vec<String> = c
                            .topology()
                            .map(|t| t.gateways.iter().map(|g| g.name.clone()).collect())
                            .unwrap_or_default();
                        names.sort();
                        names
                            .into_iter()
                            .map(|n| {
                                let sel = n == cur;
                                view! { <option value=n.clone() selected=sel>{n.clone()}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </div>
            {move || match table() {
                None => view! { <p class="muted">{c.t(Key::NoGateway)}</p> }.into_any(),
                Some(r) => {
                    let lang = c.lang.get();
                    view! {
                        <table aria-labelledby="routes-heading">
                            <thead>
                                <tr>
                                    <th scope="col">{c.t(Key::Prefix)}</th>
                                    <th scope="col">{c.t(Key::NextHop)}</th>
                                    <th scope="col">{c.t(Key::Origin)}</th>
                                    <th scope="col" class="num">{c.t(Key::TransitHops)}</th>
                                    <th scope="col" class="nowrap">{c.t(Key::Active)}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {r
                                    .routes
                                    .iter()
                                    .map(|x| {
                                        let cls = if x.active { "" } else { "inactive" };
                                        view! {
                                            <tr class=cls>
                                                <td class="nowrap">{x.prefix.to_string()}</td>
                                                <td>{fmt_hop(&x.next_hop, lang)}</td>
                                                <td>{fmt_origin(&x.origin, lang)}</td>
                                                <td class="num">{x.transit_hops}</td>
                                                <td class="nowrap">{if x.active { c.t(Key::Yes) } else { c.t(Key::No) }}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
        </section>
        <section class="card" aria-labelledby="nexthop-heading">
            <h2 id="nexthop-heading">{move || c.t(Key::NextHopTool)}</h2>
            <form
                class="inline-form"
                on:submit=move |ev| {
                    ev.prevent_default();
                    traced.set(Some((source.get_untracked(), dest.get_untracked())));
                }
            >
                <label for="nh-source">{move || c.t(Key::Source)}</label>
                <input
                    id="nh-source"
                    prop:value=move || source.get()
                    on:input=move |ev| source.set(event_target_value(&ev))
                />
                <label for="nh-dest">{move || c.t(Key::Destination)}</label>
                <input
                    id="nh-dest"
                    prop:value=move || dest.get()
                    on:input=move |ev| dest.set(event_target_value(&ev))
                />
                <button type="submit">{move || c.t(Key::Trace)}</button>
            </form>
            {move || {
                let lang = c.lang.get();
                path()
                    .map(|p| match p {
                        Err(e) => view! { <p role="alert" class="status-bad">{e}</p> }.into_any(),
                        Ok(p) => {
                            view! {
                                <h3 id="path-heading">{c.t(Key::Path)}</h3>
                                <ol class="path" aria-labelledby="path-heading">
                                    {p
                                        .hops
                                        .iter()
                                        .map(|h| {
                                            let matched = h
                                                .matched
                                                .map(|m| format!(" [{m}]"))
                                                .unwrap_or_default();
                                            view! {
                                                <li data-rule=h.rule.as_str()>
                                                    <strong>{fmt_loc(&h.at, lang)}</strong>
                                                    " → "
                                                    {fmt_hop(&h.next_hop, lang)}
                                                    {matched}
                                                    <br />
                                                    <code class="rule-id">{h.rule.as_str()}</code>
                                                    " "
                                                    <span class="reason">{messages::hop(h, ml(lang))}</span>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ol>
                                <p>
                                    <strong>{c.t(Key::Outcome)} ": "</strong>
                                    <span data-testid="nexthop-outcome">{fmt_outcome(&p.outcome, lang)}</span>
                                </p>
                                {(lang != Lang::En)
                                    .then(|| {
                                        view! {
                                            <details class="english-detail">
                                                <summary>{t(lang, Key::Detail)}</summary>
                                                <pre lang="en">{english_path(&p)}</pre>
                                            </details>
                                        }
                                    })}
                            }
                                .into_any()
                        }
                    })
            }}
        </section>
    }
}
