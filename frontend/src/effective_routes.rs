//! Effective routes of a gateway, and the next-hop tool (both computed in the browser).

use std::net::IpAddr;

use isthmus_shared::model::QualifiedName;
use isthmus_shared::routes::{
    Location, NextHop, Outcome, RouteOrigin, gateway_routes, next_hop_in,
};
use leptos::prelude::*;

use crate::i18n::{Key, rule_text};
use crate::state::ctx;

pub fn fmt_hop(h: &NextHop) -> String {
    match h {
        NextHop::Vnet { vnet } => format!("VNet {vnet}"),
        NextHop::Gateway { gateway } => format!("gateway {gateway}"),
        NextHop::SiteToSite { connection, site } => {
            format!("site-to-site {connection} → site {site}")
        }
        NextHop::VnetToVnet {
            connection,
            remote_gateway,
        } => format!("VNet-to-VNet {connection} → gateway {remote_gateway}"),
        NextHop::P2sClient { client, gateway } => format!("P2S client {client} ({gateway})"),
        NextHop::RouteSource { vnet, source } => format!("route source {source} ({vnet})"),
        NextHop::Site { site } => format!("site {site}"),
        NextHop::Internet => "Internet".to_owned(),
        NextHop::ForcedTunnel { connection, site } => {
            format!("forced tunnel {connection} → site {site}")
        }
        NextHop::Drop => "drop".to_owned(),
    }
}

fn fmt_origin(o: &RouteOrigin) -> String {
    match o {
        RouteOrigin::VnetAddressSpace { vnet } => format!("VNet address space {vnet}"),
        RouteOrigin::P2sClient { client, .. } => format!("P2S client {client}"),
        RouteOrigin::P2sPool { gateway } => format!("P2S pool of {gateway}"),
        RouteOrigin::TrafficSelector { connection } => format!("traffic selector of {connection}"),
        RouteOrigin::Site { site } => format!("site {site}"),
        RouteOrigin::RemoteVnet { vnet } => format!("VNet {vnet}"),
        RouteOrigin::RouteSource { source } => format!("route source {source}"),
        RouteOrigin::Default => "default".to_owned(),
    }
}

fn fmt_loc(l: &Location) -> String {
    match l {
        Location::Vnet { vnet } => format!("VNet {vnet}"),
        Location::Gateway { gateway } => format!("gateway {gateway}"),
        Location::Site { site } => format!("site {site}"),
        Location::P2sClient { gateway, client } => format!(
            "P2S client {} ({gateway})",
            client.as_deref().unwrap_or("?")
        ),
        Location::Internet => "Internet".to_owned(),
    }
}

fn fmt_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Delivered { to } => format!("delivered to {}", fmt_loc(to)),
        Outcome::Internet => "to the Internet".to_owned(),
        Outcome::ForcedTunnel { site } => {
            format!("to the Internet through site {site} (forced tunneling)")
        }
        Outcome::HandedOff { vnet, source } => format!("handed to route source {source} of {vnet}"),
        Outcome::Dropped { reason, .. } => format!("dropped: {reason}"),
    }
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
                (Ok(s), Ok(d)) => next_hop_in(&t, Some(&tn), s, d).map_err(|e| e.to_string()),
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
                                                <td>{x.prefix.to_string()}</td>
                                                <td>{fmt_hop(&x.next_hop)}</td>
                                                <td>{fmt_origin(&x.origin)}</td>
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
                                                    <strong>{fmt_loc(&h.at)}</strong>
                                                    " → "
                                                    {fmt_hop(&h.next_hop)}
                                                    {matched}
                                                    <br />
                                                    <span class="rule-id">{h.rule.as_str()}</span>
                                                    " "
                                                    <span class="reason">{h.reason.clone()}</span>
                                                    {(lang != crate::i18n::Lang::En)
                                                        .then(|| {
                                                            view! {
                                                                <br />
                                                                <small>{rule_text(lang, h.rule)}</small>
                                                            }
                                                        })}
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ol>
                                <p>
                                    <strong>{c.t(Key::Outcome)} ": "</strong>
                                    <span data-testid="nexthop-outcome">{fmt_outcome(&p.outcome)}</span>
                                </p>
                            }
                                .into_any()
                        }
                    })
            }}
        </section>
    }
}
