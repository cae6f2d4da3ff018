//! The list page of each resource kind: its table, and delete with the rules a delete would
//! break shown before it is confirmed.

use std::collections::BTreeSet;

use isthmus_shared::model::ConnectionKind;
use isthmus_shared::validate::{Violation, validate, validate_change};
use leptos::prelude::*;

use crate::api;
use crate::forms::{ConfirmDialog, Problem, ProblemItem, Refusal, join};
use crate::i18n::{self, Key, KindText};
use crate::notices::EndpointWarning;
use crate::state::{Kind, Page, TPage, ctx};

/// The names of a kind in the current topology, with a one-line summary and the name to link.
fn rows(kind: Kind) -> Vec<(String, Vec<String>)> {
    let Some(t) = ctx().topology() else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<String>)> = match kind {
        Kind::Vnet => t
            .vnets
            .iter()
            .map(|v| {
                (
                    v.name.clone(),
                    vec![
                        v.region.clone(),
                        join(&v.address_space),
                        v.subnets
                            .iter()
                            .map(|s| format!("{} {}", s.name, s.prefix))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ],
                )
            })
            .collect(),
        Kind::Gateway => t
            .gateways
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    vec![
                        g.vnet.clone(),
                        g.gateway_type.to_string(),
                        g.sku.to_string(),
                        g.public_endpoint.map(|e| e.to_string()).unwrap_or_default(),
                    ],
                )
            })
            .collect(),
        Kind::Site => t
            .sites
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    vec![s.endpoint(), join(&s.address_prefixes)],
                )
            })
            .collect(),
        Kind::Connection => {
            let lang = ctx().lang.get();
            t.connections
                .iter()
                .map(|c| {
                    let to = match &c.kind {
                        ConnectionKind::SiteToSite { site } => {
                            format!("{} → {site}", i18n::t(lang, Key::SiteToSite))
                        }
                        ConnectionKind::VnetToVnet { remote_gateway } => format!(
                            "{} → {}{}",
                            i18n::t(lang, Key::VnetToVnet),
                            remote_gateway
                                .tenant
                                .as_ref()
                                .map(|t| format!("{t}/"))
                                .unwrap_or_default(),
                            remote_gateway.name
                        ),
                    };
                    let enabled = i18n::t(lang, if c.enabled { Key::Yes } else { Key::No });
                    let protocol = i18n::t(lang, crate::forms::protocol_key(c.protocol));
                    (
                        c.name.clone(),
                        vec![
                            c.gateway.clone(),
                            to,
                            protocol.to_owned(),
                            enabled.to_owned(),
                        ],
                    )
                })
                .collect()
        }
        Kind::PointToSite => t
            .point_to_site
            .iter()
            .map(|p| {
                (
                    p.gateway.clone(),
                    vec![join(&p.address_pool), p.clients.len().to_string()],
                )
            })
            .collect(),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn columns(kind: Kind) -> Vec<Key> {
    match kind {
        Kind::Vnet => vec![Key::Region, Key::AddressSpace, Key::Subnets],
        Kind::Gateway => vec![Key::Vnet, Key::GatewayType, Key::Sku, Key::PublicEndpoint],
        Kind::Site => vec![Key::DeviceHost, Key::AddressPrefixes],
        Kind::Connection => vec![
            Key::Gateway,
            Key::ConnectionKind,
            Key::Protocol,
            Key::Enabled,
        ],
        Kind::PointToSite => vec![Key::AddressPool, Key::Clients],
    }
}

/// The list page of one kind.
#[component]
pub fn ListPage(kind: Kind) -> impl IntoView {
    let c = ctx();
    let pending = RwSignal::new(None::<String>);
    let open = RwSignal::new(false);
    let error = RwSignal::new(None::<api::ApiError>);
    let breaks = Memo::new(move |_| {
        let Some(name) = pending.get() else {
            return Vec::new();
        };
        let Some(t) = c.topology() else {
            return Vec::new();
        };
        let before: BTreeSet<Violation> = validate(&t).into_iter().collect();
        validate_change(&t, &kind.delete_change(c.tenant_name(), name))
            .into_iter()
            .filter(|v| v.is_error() && !before.contains(v))
            .collect::<Vec<_>>()
    });
    let confirm = Callback::new(move |()| {
        let Some(name) = pending.get_untracked() else {
            return;
        };
        let tn = c.tenant.get_untracked().unwrap_or_default();
        leptos::task::spawn_local(async move {
            match api::delete(&tn, kind.path_segment(), &name).await {
                Ok(()) => {
                    error.set(None);
                    c.refresh_topology(&tn).await;
                }
                Err(e) => error.set(Some(e)),
            }
        });
    });
    let heading_id = format!("list-{}", kind.path_segment());
    let table_label = heading_id.clone();
    view! {
        <section class="card" aria-labelledby=heading_id.clone()>
            <h2 id=heading_id.clone()>{move || c.t(kind.title())}</h2>
            <p>
                <a
                    class="button"
                    href=move || Page::Tenant(c.tenant_name(), TPage::New(kind)).href()
                >
                    {move || c.t(kind.new_key())}
                </a>
            </p>
            {move || {
                error
                    .get()
                    .map(|e| view! { <Refusal error=e violations=true /> })
            }}
            {move || {
                if kind != Kind::Gateway {
                    return None;
                }
                let t = c.topology()?;
                let tn = c.tenant_name();
                let warnings: Vec<_> = t
                    .gateways
                    .iter()
                    .filter(|g| g.tenant == tn)
                    .filter_map(|g| {
                        isthmus_shared::validate::public_endpoint_warning(g)
                            .map(|v| view! { <EndpointWarning violation=v name=g.name.clone() /> })
                    })
                    .collect();
                Some(warnings)
            }}
            {move || {
                let list = rows(kind);
                if !c.loaded() {
                    return view! { <p class="muted">{c.t(Key::Loading)}</p> }.into_any();
                }
                if list.is_empty() {
                    return view! { <p class="muted">{c.t(Key::Empty)}</p> }.into_any();
                }
                let tn = c.tenant_name();
                view! {
                    <table aria-labelledby=table_label.clone()>
                        <thead>
                            <tr>
                                <th scope="col">
                                    {if kind == Kind::PointToSite {
                                        c.t(Key::Gateway)
                                    } else {
                                        c.t(Key::Name)
                                    }}
                                </th>
                                {columns(kind)
                                    .into_iter()
                                    .map(|k| view! { <th scope="col">{c.t(k)}</th> })
                                    .collect_view()}
                                <th scope="col">{c.t(Key::Actions)}</th>
                            </tr>
                        </thead>
                        <tbody>
                            {list
                                .into_iter()
                                .map(|(name, cells)| {
                                    let main_href = if kind == Kind::Connection {
                                        Page::Tenant(tn.clone(), TPage::Connection(name.clone())).href()
                                    } else {
                                        Page::Tenant(tn.clone(), TPage::Edit(kind, name.clone())).href()
                                    };
                                    let edit_href = Page::Tenant(
                                            tn.clone(),
                                            TPage::Edit(kind, name.clone()),
                                        )
                                        .href();
                                    let n2 = name.clone();
                                    let label_edit = format!("{} {name}", c.t(Key::Edit));
                                    let label_delete = format!("{} {name}", c.t(Key::Delete));
                                    view! {
                                        <tr>
                                            <th scope="row">
                                                <a href=main_href>{name.clone()}</a>
                                            </th>
                                            {cells
                                                .into_iter()
                                                .map(|x| view! { <td>{x}</td> })
                                                .collect_view()}
                                            <td class="actions">
                                                <a href=edit_href aria-label=label_edit>
                                                    {c.t(Key::Edit)}
                                                </a>
                                                " "
                                                <button
                                                    class="danger"
                                                    aria-label=label_delete
                                                    on:click=move |_| {
                                                        pending.set(Some(n2.clone()));
                                                        open.set(true);
                                                    }
                                                >
                                                    {c.t(Key::Delete)}
                                                </button>
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }}
            <ConfirmDialog
                open=open
                message=Signal::derive(move || {
                    format!("{} {}", c.t(Key::ConfirmDelete), pending.get().unwrap_or_default())
                })
                on_confirm=confirm
            >
                {move || {
                    let b = breaks.get();
                    let lang = c.lang.get();
                    (!b.is_empty())
                        .then(|| {
                            view! {
                                <p>{c.t(Key::DeleteBreaks)}</p>
                                <ul class="problems">
                                    {b
                                        .iter()
                                        .map(|v| {
                                            view! {
                                                <ProblemItem
                                                    problem=Problem::of(v).linked(&c.tenant_name(), None)
                                                    lang=lang
                                                />
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            }
                        })
                }}
            </ConfirmDialog>
        </section>
    }
}
