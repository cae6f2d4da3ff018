//! Lists and create/edit/delete forms of VNets, gateways, sites, connections and point-to-site.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use isthmus_shared::model::{
    Change, Connection, ConnectionKind, DeviceHost, GATEWAY_SUBNET, Gateway, GatewayRef,
    GatewayType, LocalSite, P2sClient, PointToSite, QualifiedName, RootCertificate, SharedKey, Sku,
    Subnet, TrafficSelector, Vnet,
};
use isthmus_shared::validate::{Violation, validate, validate_change};
use leptos::prelude::*;
use serde::Serialize;

use crate::api;
use crate::forms::{
    ConfirmDialog, Draft, GENERAL, Live, Problem, ProblemItem, Problems, parse_list, problems_id,
};
use crate::i18n::Key;
use crate::notices::{EndpointWarning, GatewayNotices};
use crate::state::{Kind, Page, TPage, ctx, navigate};

fn join<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The path of a resource in the validator's terms.
fn base_path(tenant: &str, kind: Kind, name: &str) -> String {
    format!("tenants[{tenant}].{}[{name}]", kind.path_segment())
}

fn delete_change(kind: Kind, q: QualifiedName) -> Change {
    match kind {
        Kind::Vnets => Change::DeleteVnet(q),
        Kind::Gateways => Change::DeleteGateway(q),
        Kind::Sites => Change::DeleteSite(q),
        Kind::Connections => Change::DeleteConnection(q),
        Kind::PointToSite => Change::DeletePointToSite(q),
    }
}

/// The names of a kind in the current topology, with a one-line summary and the name to link.
fn rows(kind: Kind) -> Vec<(String, Vec<String>)> {
    let Some(t) = ctx().topology() else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<String>)> = match kind {
        Kind::Vnets => t
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
        Kind::Gateways => t
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
        Kind::Sites => t
            .sites
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    vec![s.endpoint(), join(&s.address_prefixes)],
                )
            })
            .collect(),
        Kind::Connections => t
            .connections
            .iter()
            .map(|c| {
                let to = match &c.kind {
                    ConnectionKind::SiteToSite { site } => format!("SiteToSite → {site}"),
                    ConnectionKind::VnetToVnet { remote_gateway } => format!(
                        "VnetToVnet → {}{}",
                        remote_gateway
                            .tenant
                            .as_ref()
                            .map(|t| format!("{t}/"))
                            .unwrap_or_default(),
                        remote_gateway.name
                    ),
                };
                (
                    c.name.clone(),
                    vec![c.gateway.clone(), to, c.enabled.to_string()],
                )
            })
            .collect(),
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
        Kind::Vnets => vec![Key::Region, Key::AddressSpace, Key::Subnets],
        Kind::Gateways => vec![Key::Vnet, Key::GatewayType, Key::Sku, Key::PublicEndpoint],
        Kind::Sites => vec![Key::DeviceHost, Key::AddressPrefixes],
        Kind::Connections => vec![Key::Gateway, Key::ConnectionKind, Key::Enabled],
        Kind::PointToSite => vec![Key::AddressPool, Key::Clients],
    }
}

fn new_key(kind: Kind) -> Key {
    match kind {
        Kind::Vnets => Key::NewVnet,
        Kind::Gateways => Key::NewGateway,
        Kind::Sites => Key::NewSite,
        Kind::Connections => Key::NewConnection,
        Kind::PointToSite => Key::NewP2s,
    }
}

fn edit_key(kind: Kind) -> Key {
    match kind {
        Kind::Vnets => Key::EditVnet,
        Kind::Gateways => Key::EditGateway,
        Kind::Sites => Key::EditSite,
        Kind::Connections => Key::EditConnection,
        Kind::PointToSite => Key::EditP2s,
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
        validate_change(
            &t,
            &delete_change(kind, QualifiedName::new(c.tenant_name(), name)),
        )
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
            match api::delete(&tn, kind.segment(), &name).await {
                Ok(()) => {
                    error.set(None);
                    c.refresh_topology(&tn).await;
                }
                Err(e) => error.set(Some(e)),
            }
        });
    });
    let heading_id = format!("list-{}", kind.segment());
    let table_label = heading_id.clone();
    view! {
        <section class="card" aria-labelledby=heading_id.clone()>
            <h2 id=heading_id.clone()>{move || c.t(kind.title())}</h2>
            <p>
                <a
                    class="button"
                    href=move || Page::Tenant(c.tenant_name(), TPage::New(kind)).href()
                >
                    {move || c.t(new_key(kind))}
                </a>
            </p>
            {move || {
                error
                    .get()
                    .map(|e| {
                        let lang = c.lang.get();
                        view! {
                            <div role="alert" class="status-bad">
                                <p>{e.message.clone()}</p>
                                <ul class="problems">
                                    {e
                                        .violations
                                        .iter()
                                        .map(|v| {
                                            view! {
                                                <ProblemItem
                                                    problem=Problem {
                                                        rule: Some(v.rule),
                                                        error: v.is_error(),
                                                        message: v.message.clone(),
                                                    }
                                                    lang=lang
                                                />
                                            }
                                        })
                                        .collect_view()}
                                </ul>
                            </div>
                        }
                    })
            }}
            {move || {
                if kind != Kind::Gateways {
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
                                    let main_href = if kind == Kind::Connections {
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
                                                    problem=Problem {
                                                        rule: Some(v.rule),
                                                        error: true,
                                                        message: v.message.clone(),
                                                    }
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

/// The create or edit page of one kind.
#[component]
pub fn FormPage(kind: Kind, name: Option<String>) -> impl IntoView {
    let c = ctx();
    let heading = if name.is_some() {
        edit_key(kind)
    } else {
        new_key(kind)
    };
    let name = StoredValue::new(name);
    view! {
        <section class="card" aria-labelledby="form-heading">
            <h2 id="form-heading">
                {move || c.t(heading)}
                {move || name.get_value().map(|n| format!(": {n}"))}
            </h2>
            <Show
                when=move || c.loaded()
                fallback=move || view! { <p class="muted">{move || c.t(Key::Loading)}</p> }
            >
                {move || untrack(|| {
                    let n = name.get_value();
                    match kind {
                        Kind::Vnets => view! { <VnetForm existing=n /> }.into_any(),
                        Kind::Gateways => view! { <GatewayForm existing=n /> }.into_any(),
                        Kind::Sites => view! { <SiteForm existing=n /> }.into_any(),
                        Kind::Connections => view! { <ConnectionForm existing=n /> }.into_any(),
                        Kind::PointToSite => view! { <P2sForm existing=n /> }.into_any(),
                    }
                })}
            </Show>
        </section>
    }
}

/// Submit state of a form.
#[derive(Debug, Clone, PartialEq)]
enum Submit {
    Idle,
    Busy,
    Failed(String),
}

/// Sends a form's resource; on a 422 the server's violations join the live ones.
fn submit<B: Serialize + 'static>(
    kind: Kind,
    existing: Option<String>,
    body: B,
    live: Live,
    state: RwSignal<Submit>,
    then: Page,
) {
    let c = ctx();
    if live.has_parse_errors() {
        state.set(Submit::Failed(c.t(Key::InvalidInput).to_owned()));
        return;
    }
    state.set(Submit::Busy);
    let tn = c.tenant.get_untracked().unwrap_or_default();
    leptos::task::spawn_local(async move {
        match api::save(&tn, kind.segment(), existing.as_deref(), &body).await {
            Ok(_) => {
                live.set_server(Vec::new());
                state.set(Submit::Idle);
                c.refresh_topology(&tn).await;
                navigate(&then);
            }
            Err(e) => {
                live.set_server(e.violations.clone());
                let msg = if e.status == 422 {
                    format!("{} {}", c.t(Key::SaveFailed), e.message)
                } else {
                    e.message
                };
                state.set(Submit::Failed(msg));
            }
        }
    });
}

#[component]
fn SubmitRow(live: Live, state: RwSignal<Submit>, cancel: String) -> impl IntoView {
    let c = ctx();
    view! {
        <div class="general-problems">
            <Problems live=live form="form" field=GENERAL.to_owned() />
        </div>
        {move || match state.get() {
            Submit::Failed(m) => Some(view! { <p role="alert" class="status-bad">{m}</p> }),
            _ => None,
        }}
        <div class="buttons">
            <button type="submit" disabled=move || state.get() == Submit::Busy>
                {move || {
                    if state.get() == Submit::Busy { c.t(Key::Saving) } else { c.t(Key::Save) }
                }}
            </button>
            <a class="button secondary" href=cancel>
                {move || c.t(Key::Cancel)}
            </a>
        </div>
    }
}

/// A labelled text input (or textarea) with its problems.
#[component]
fn Field(
    live: Live,
    field: &'static str,
    label: Key,
    value: RwSignal<String>,
    #[prop(optional)] readonly: bool,
    #[prop(optional)] multiline: bool,
    #[prop(optional)] hint: Option<Key>,
) -> impl IntoView {
    let c = ctx();
    let key = field;
    let id = format!("f-{}", key.replace('.', "-"));
    let pid = problems_id("form", key);
    let hid = format!("{id}-hint");
    let described = if hint.is_some() {
        format!("{pid} {hid}")
    } else {
        pid.clone()
    };
    let input = if multiline {
        view! {
            <textarea
                id=id.clone()
                rows="3"
                aria-describedby=described
                aria-invalid=move || live.invalid(key).to_string()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            ></textarea>
        }
        .into_any()
    } else {
        view! {
            <input
                id=id.clone()
                readonly=readonly
                aria-describedby=described
                aria-invalid=move || live.invalid(key).to_string()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        }
        .into_any()
    };
    view! {
        <div class="field">
            <label for=id>{move || c.t(label)}</label>
            {input}
            {hint.map(|h| view! { <small id=hid class="muted">{move || c.t(h)}</small> })}
            <Problems live=live form="form" field=key.to_owned() />
        </div>
    }
}

/// A labelled select with its problems.
#[component]
fn SelectField(
    live: Live,
    field: &'static str,
    label: Key,
    value: RwSignal<String>,
    #[prop(into)] options: Signal<Vec<(String, String)>>,
    #[prop(optional)] disabled: bool,
) -> impl IntoView {
    let c = ctx();
    let key = field;
    let id = format!("f-{}", key.replace('.', "-"));
    view! {
        <div class="field">
            <label for=id.clone()>{move || c.t(label)}</label>
            <select
                id=id
                disabled=disabled
                aria-describedby=problems_id("form", key)
                aria-invalid=move || live.invalid(key).to_string()
                on:change=move |ev| value.set(event_target_value(&ev))
                prop:value=move || value.get()
            >
                {move || {
                    let cur = value.get();
                    options
                        .get()
                        .into_iter()
                        .map(|(v, l)| {
                            let sel = v == cur;
                            view! {
                                <option value=v selected=sel>
                                    {l}
                                </option>
                            }
                        })
                        .collect_view()
                }}
            </select>
            <Problems live=live form="form" field=key.to_owned() />
        </div>
    }
}

#[component]
fn CheckField(live: Live, field: &'static str, label: Key, value: RwSignal<bool>) -> impl IntoView {
    let c = ctx();
    let key = field;
    let id = format!("f-{key}");
    view! {
        <div class="field check">
            <input
                type="checkbox"
                id=id.clone()
                aria-describedby=problems_id("form", key)
                prop:checked=move || value.get()
                on:change=move |ev| value.set(event_target_checked(&ev))
            />
            <label for=id>{move || c.t(label)}</label>
            <Problems live=live form="form" field=key.to_owned() />
        </div>
    }
}

fn fields(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

fn list_page(kind: Kind) -> String {
    Page::Tenant(ctx().tenant_name(), TPage::List(kind)).href()
}

// ---------------------------------------------------------------------------------------------
// VNets

#[derive(Clone, Copy)]
struct SubnetRow {
    id: u32,
    name: RwSignal<String>,
    prefix: RwSignal<String>,
}

#[component]
fn VnetForm(existing: Option<String>) -> impl IntoView {
    let c = ctx();
    let tenant = c.tenant_name();
    let topo = c.topology().unwrap_or_default();
    let old = existing
        .as_ref()
        .and_then(|n| topo.vnet(&tenant, n).cloned());
    if existing.is_some() && old.is_none() {
        return view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any();
    }
    let name = RwSignal::new(old.as_ref().map(|v| v.name.clone()).unwrap_or_default());
    let region = RwSignal::new(
        old.as_ref()
            .map(|v| v.region.clone())
            .unwrap_or_else(|| "westeurope".to_owned()),
    );
    let space = RwSignal::new(
        old.as_ref()
            .map(|v| join(&v.address_space))
            .unwrap_or_default(),
    );
    let dns = RwSignal::new(
        old.as_ref()
            .map(|v| join(&v.dns_servers))
            .unwrap_or_default(),
    );
    let next_id = StoredValue::new(0u32);
    let mk = move |n: String, p: String| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        SubnetRow {
            id,
            name: RwSignal::new(n),
            prefix: RwSignal::new(p),
        }
    };
    let initial: Vec<SubnetRow> = match &old {
        Some(v) => v
            .subnets
            .iter()
            .map(|s| mk(s.name.clone(), s.prefix.to_string()))
            .collect(),
        None => vec![mk(GATEWAY_SUBNET.to_owned(), String::new())],
    };
    let subnets = RwSignal::new(initial);
    let route_sources = old
        .as_ref()
        .map(|v| v.route_sources.clone())
        .unwrap_or_default();
    let tn = tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let address_space = parse_list::<IpNet>(&space.get(), "address_space", &mut parse);
        let dns_servers = parse_list::<IpAddr>(&dns.get(), "dns_servers", &mut parse);
        let subnets = subnets
            .get()
            .iter()
            .filter_map(|r| {
                let n = r.name.get().trim().to_owned();
                let p = r.prefix.get().trim().to_owned();
                if n.is_empty() && p.is_empty() {
                    return None;
                }
                match p.parse::<IpNet>() {
                    Ok(prefix) => Some(Subnet { name: n, prefix }),
                    Err(_) => {
                        parse.push((format!("subnets[{n}]"), Problem::input(format!("{p:?}: "))));
                        None
                    }
                }
            })
            .collect();
        let v = Vnet {
            tenant: tn.clone(),
            name: name.get().trim().to_owned(),
            region: region.get().trim().to_owned(),
            address_space,
            subnets,
            dns_servers,
            route_sources: route_sources.clone(),
        };
        Draft {
            change: Some(Change::UpsertVnet(v)),
            parse,
        }
    });
    let tn = tenant.clone();
    let base = Memo::new(move |_| base_path(&tn, Kind::Vnets, name.get().trim()));
    let field_keys = Memo::new(move |_| {
        let mut f = fields(&["name", "region", "address_space", "dns_servers", "subnets"]);
        for r in subnets.get() {
            f.push(format!("subnets[{}]", r.name.get().trim()));
        }
        f
    });
    let live = Live::new(base, "name", field_keys, draft);
    let state = RwSignal::new(Submit::Idle);
    let editing = existing.is_some();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(Change::UpsertVnet(v)) = draft.get_untracked().change {
            let existing = editing.then(|| v.name.clone());
            submit(
                Kind::Vnets,
                existing,
                v,
                live,
                state,
                Page::Tenant(c.tenant_name(), TPage::List(Kind::Vnets)),
            );
        }
    };
    view! {
        <form on:submit=on_submit novalidate>
            <Field live=live field="name" label=Key::Name value=name readonly=editing />
            <Field live=live field="region" label=Key::Region value=region />
            <Field
                live=live
                field="address_space"
                label=Key::AddressSpace
                value=space
                hint=Key::ListHint
            />
            <Field live=live field="dns_servers" label=Key::DnsServers value=dns hint=Key::ListHint />
            <fieldset>
                <legend>{move || c.t(Key::Subnets)}</legend>
                <Problems live=live form="form" field="subnets".to_owned() />
                <For
                    each=move || subnets.get().into_iter().enumerate()
                    key=|(i, r)| (*i, r.id)
                    children=move |(i, r)| {
                        let n = i + 1;
                        let key = Signal::derive(move || format!("subnets[{}]", r.name.get().trim()));
                        let nid = format!("subnet-{}-name", r.id);
                        let pid = format!("subnet-{}-prefix", r.id);
                        view! {
                            <div class="subnet-row">
                                <div class="field">
                                    <label for=nid.clone()>
                                        {move || format!("{} {n} {}", c.t(Key::Subnet), c.t(Key::SubnetName))}
                                    </label>
                                    <input
                                        id=nid
                                        prop:value=move || r.name.get()
                                        on:input=move |ev| r.name.set(event_target_value(&ev))
                                    />
                                </div>
                                <div class="field">
                                    <label for=pid.clone()>
                                        {move || format!("{} {n} {}", c.t(Key::Subnet), c.t(Key::SubnetPrefix))}
                                    </label>
                                    <input
                                        id=pid
                                        aria-describedby=move || problems_id("form", &key.get())
                                        aria-invalid=move || live.invalid(&key.get()).to_string()
                                        prop:value=move || r.prefix.get()
                                        on:input=move |ev| r.prefix.set(event_target_value(&ev))
                                    />
                                </div>
                                <button
                                    type="button"
                                    aria-label=move || format!("{} {} {n}", c.t(Key::Remove), c.t(Key::Subnet))
                                    on:click=move |_| subnets.update(|s| s.retain(|x| x.id != r.id))
                                >
                                    {move || c.t(Key::Remove)}
                                </button>
                                <Problems live=live form="form" field=key />
                            </div>
                        }
                    }
                />
                <button
                    type="button"
                    on:click=move |_| {
                        let row = mk(String::new(), String::new());
                        subnets.update(|s| s.push(row));
                    }
                >
                    {move || c.t(Key::AddSubnet)}
                </button>
            </fieldset>
            <SubmitRow live=live state=state cancel=list_page(Kind::Vnets) />
        </form>
    }
        .into_any()
}

// ---------------------------------------------------------------------------------------------
// Gateways

fn opt(v: &str) -> (String, String) {
    (v.to_owned(), v.to_owned())
}

#[component]
fn GatewayForm(existing: Option<String>) -> impl IntoView {
    let c = ctx();
    let tenant = c.tenant_name();
    let topo = c.topology().unwrap_or_default();
    let old = existing
        .as_ref()
        .and_then(|n| topo.gateway(&tenant, n).cloned());
    if existing.is_some() && old.is_none() {
        return view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any();
    }
    let default_vnet = topo
        .vnets
        .iter()
        .find(|v| topo.gateway_of_vnet(&v.tenant, &v.name).is_none())
        .or(topo.vnets.first())
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let name = RwSignal::new(old.as_ref().map(|g| g.name.clone()).unwrap_or_default());
    let vnet = RwSignal::new(old.as_ref().map(|g| g.vnet.clone()).unwrap_or(default_vnet));
    let gtype = RwSignal::new(
        old.as_ref()
            .map(|g| g.gateway_type.to_string())
            .unwrap_or_else(|| "RouteBased".to_owned()),
    );
    let sku = RwSignal::new(
        old.as_ref()
            .map(|g| g.sku.to_string())
            .unwrap_or_else(|| "VpnGw1".to_owned()),
    );
    let aa = RwSignal::new(old.as_ref().map(|g| g.active_active).unwrap_or(false));
    let mss = RwSignal::new(old.as_ref().is_none_or(|g| g.mss_clamp));
    let forced = RwSignal::new(
        old.as_ref()
            .and_then(|g| g.forced_tunneling_site.clone())
            .unwrap_or_default(),
    );
    let endpoint = old.as_ref().and_then(|g| g.public_endpoint);
    let public_key = old.as_ref().and_then(|g| g.public_key.clone());
    let (pe, pk) = (endpoint, public_key.clone());
    let tn = tenant.clone();
    let draft = Memo::new(move |_| {
        let g = Gateway {
            tenant: tn.clone(),
            name: name.get().trim().to_owned(),
            vnet: vnet.get(),
            gateway_type: if gtype.get() == "PolicyBased" {
                GatewayType::PolicyBased
            } else {
                GatewayType::RouteBased
            },
            sku: Sku::ALL
                .iter()
                .copied()
                .find(|s| s.as_str() == sku.get())
                .unwrap_or(Sku::VpnGw1),
            active_active: aa.get(),
            mss_clamp: mss.get(),
            forced_tunneling_site: Some(forced.get()).filter(|s| !s.is_empty()),
            public_endpoint: pe,
            public_key: pk.clone(),
        };
        Draft {
            change: Some(Change::UpsertGateway(g)),
            parse: Vec::new(),
        }
    });
    let tn = tenant.clone();
    let base = Memo::new(move |_| base_path(&tn, Kind::Gateways, name.get().trim()));
    let field_keys = Memo::new(|_| {
        fields(&[
            "name",
            "vnet",
            "gateway_type",
            "sku",
            "active_active",
            "mss_clamp",
            "forced_tunneling_site",
        ])
    });
    let live = Live::new(base, "name", field_keys, draft);
    let state = RwSignal::new(Submit::Idle);
    let editing = existing.is_some();
    let vnets: Vec<(String, String)> = topo.vnets.iter().map(|v| opt(&v.name)).collect();
    let mut sites: Vec<(String, String)> = vec![(String::new(), c.t(Key::NoneOption).to_owned())];
    sites.extend(topo.sites.iter().map(|s| opt(&s.name)));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(Change::UpsertGateway(g)) = draft.get_untracked().change {
            let existing = editing.then(|| g.name.clone());
            submit(
                Kind::Gateways,
                existing,
                g,
                live,
                state,
                Page::Tenant(c.tenant_name(), TPage::List(Kind::Gateways)),
            );
        }
    };
    let shown = existing.clone();
    view! {
        <GatewayNotices gateway=Signal::derive(move || shown.clone()) />
        <form on:submit=on_submit novalidate>
            <Field live=live field="name" label=Key::Name value=name readonly=editing />
            <SelectField live=live field="vnet" label=Key::Vnet value=vnet options=vnets />
            <SelectField
                live=live
                field="gateway_type"
                label=Key::GatewayType
                value=gtype
                options={vec![opt("RouteBased"), opt("PolicyBased")]}
            />
            <SelectField
                live=live
                field="sku"
                label=Key::Sku
                value=sku
                options={Sku::ALL.iter().map(|s| opt(s.as_str())).collect::<Vec<_>>()}
            />
            <CheckField live=live field="active_active" label=Key::ActiveActive value=aa />
            <CheckField live=live field="mss_clamp" label=Key::MssClamp value=mss />
            <SelectField
                live=live
                field="forced_tunneling_site"
                label=Key::ForcedTunneling
                value=forced
                options=sites
            />
            <dl class="facts">
                <dt>{move || c.t(Key::PublicEndpoint)}</dt>
                <dd>
                    {endpoint.map(|e| e.to_string()).unwrap_or_else(|| c.t(Key::Pending).to_owned())}
                </dd>
                <dt>{move || c.t(Key::PublicKey)}</dt>
                <dd>{public_key.clone().unwrap_or_else(|| c.t(Key::Pending).to_owned())}</dd>
            </dl>
            <SubmitRow live=live state=state cancel=list_page(Kind::Gateways) />
        </form>
    }
        .into_any()
}

// ---------------------------------------------------------------------------------------------
// Sites

#[component]
fn SiteForm(existing: Option<String>) -> impl IntoView {
    let c = ctx();
    let tenant = c.tenant_name();
    let topo = c.topology().unwrap_or_default();
    let old = existing
        .as_ref()
        .and_then(|n| topo.site(&tenant, n).cloned());
    if existing.is_some() && old.is_none() {
        return view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any();
    }
    let name = RwSignal::new(old.as_ref().map(|s| s.name.clone()).unwrap_or_default());
    let host = RwSignal::new(
        old.as_ref()
            .map(|s| s.device_host.to_string())
            .unwrap_or_default(),
    );
    let port = RwSignal::new(
        old.as_ref()
            .and_then(|s| s.device_port)
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    let prefixes = RwSignal::new(
        old.as_ref()
            .map(|s| join(&s.address_prefixes))
            .unwrap_or_default(),
    );
    let key = RwSignal::new(
        old.as_ref()
            .and_then(|s| s.device_public_key.clone())
            .unwrap_or_default(),
    );
    let tn = tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let h = host.get().trim().to_owned();
        let device_host = match h.parse::<DeviceHost>() {
            Ok(d) => Some(d),
            Err(e) => {
                parse.push(("device_host".to_owned(), Problem::input(format!("{e} — "))));
                None
            }
        };
        let p = port.get().trim().to_owned();
        let device_port = if p.is_empty() {
            None
        } else {
            match p.parse::<u16>() {
                Ok(x) => Some(x),
                Err(_) => {
                    parse.push(("device_port".to_owned(), Problem::input(format!("{p:?}: "))));
                    None
                }
            }
        };
        let address_prefixes = parse_list::<IpNet>(&prefixes.get(), "address_prefixes", &mut parse);
        let k = key.get().trim().to_owned();
        let change = device_host.map(|device_host| {
            Change::UpsertSite(LocalSite {
                tenant: tn.clone(),
                name: name.get().trim().to_owned(),
                device_host,
                device_port,
                address_prefixes,
                device_public_key: Some(k).filter(|k| !k.is_empty()),
            })
        });
        Draft { change, parse }
    });
    let tn = tenant.clone();
    let base = Memo::new(move |_| base_path(&tn, Kind::Sites, name.get().trim()));
    let field_keys = Memo::new(|_| {
        fields(&[
            "name",
            "device_host",
            "device_port",
            "address_prefixes",
            "device_public_key",
        ])
    });
    let live = Live::new(base, "name", field_keys, draft);
    let state = RwSignal::new(Submit::Idle);
    let editing = existing.is_some();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match draft.get_untracked().change {
            Some(Change::UpsertSite(s)) => {
                let existing = editing.then(|| s.name.clone());
                submit(
                    Kind::Sites,
                    existing,
                    s,
                    live,
                    state,
                    Page::Tenant(c.tenant_name(), TPage::List(Kind::Sites)),
                );
            }
            _ => state.set(Submit::Failed(c.t(Key::InvalidInput).to_owned())),
        }
    };
    view! {
        <form on:submit=on_submit novalidate>
            <Field live=live field="name" label=Key::Name value=name readonly=editing />
            <Field live=live field="device_host" label=Key::DeviceHost value=host />
            <Field live=live field="device_port" label=Key::DevicePort value=port />
            <Field
                live=live
                field="address_prefixes"
                label=Key::AddressPrefixes
                value=prefixes
                hint=Key::ListHint
            />
            <Field live=live field="device_public_key" label=Key::DevicePublicKey value=key />
            <SubmitRow live=live state=state cancel=list_page(Kind::Sites) />
        </form>
    }
    .into_any()
}

// ---------------------------------------------------------------------------------------------
// Connections

fn parse_selectors(text: &str, parse: &mut Vec<(String, Problem)>) -> Vec<TrafficSelector> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut it = l.split([' ', ',', '\t']).filter(|s| !s.is_empty());
            match (
                it.next().and_then(|a| a.parse::<IpNet>().ok()),
                it.next().and_then(|b| b.parse::<IpNet>().ok()),
            ) {
                (Some(local), Some(remote)) => Some(TrafficSelector { local, remote }),
                _ => {
                    parse.push((
                        "traffic_selectors".to_owned(),
                        Problem::input(format!("{l:?}: ")),
                    ));
                    None
                }
            }
        })
        .collect()
}

#[component]
fn ConnectionForm(existing: Option<String>) -> impl IntoView {
    let c = ctx();
    let tenant = c.tenant_name();
    let topo = c.topology().unwrap_or_default();
    let old = existing
        .as_ref()
        .and_then(|n| topo.connection(&tenant, n).cloned());
    if existing.is_some() && old.is_none() {
        return view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any();
    }
    let name = RwSignal::new(old.as_ref().map(|x| x.name.clone()).unwrap_or_default());
    let gateway = RwSignal::new(
        old.as_ref()
            .map(|x| x.gateway.clone())
            .or_else(|| topo.gateways.first().map(|g| g.name.clone()))
            .unwrap_or_default(),
    );
    let (k0, site0, rt0, rg0) = match old.as_ref().map(|x| &x.kind) {
        Some(ConnectionKind::VnetToVnet { remote_gateway }) => (
            "VnetToVnet",
            String::new(),
            remote_gateway.tenant.clone().unwrap_or_default(),
            remote_gateway.name.clone(),
        ),
        Some(ConnectionKind::SiteToSite { site }) => {
            ("SiteToSite", site.clone(), String::new(), String::new())
        }
        None => (
            "SiteToSite",
            topo.sites
                .first()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            String::new(),
            String::new(),
        ),
    };
    let kind = RwSignal::new(k0.to_owned());
    let site = RwSignal::new(site0);
    let rtenant = RwSignal::new(rt0);
    let rgateway = RwSignal::new(rg0);
    let enabled = RwSignal::new(old.as_ref().map(|x| x.enabled).unwrap_or(true));
    let selectors = RwSignal::new(
        old.as_ref()
            .map(|x| {
                x.traffic_selectors
                    .iter()
                    .map(|s| format!("{} {}", s.local, s.remote))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
    );
    let shared_key = RwSignal::new(String::new());
    let tn = tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let traffic_selectors = parse_selectors(&selectors.get(), &mut parse);
        let k = if kind.get() == "VnetToVnet" {
            ConnectionKind::VnetToVnet {
                remote_gateway: GatewayRef {
                    tenant: Some(rtenant.get().trim().to_owned()).filter(|t| !t.is_empty()),
                    name: rgateway.get().trim().to_owned(),
                },
            }
        } else {
            ConnectionKind::SiteToSite { site: site.get() }
        };
        let sk = shared_key.get();
        let conn = Connection {
            tenant: tn.clone(),
            name: name.get().trim().to_owned(),
            gateway: gateway.get(),
            kind: k,
            shared_key: Some(sk).filter(|s| !s.is_empty()).map(SharedKey::new),
            enabled: enabled.get(),
            traffic_selectors,
        };
        Draft {
            change: Some(Change::UpsertConnection(conn)),
            parse,
        }
    });
    let tn = tenant.clone();
    let base = Memo::new(move |_| base_path(&tn, Kind::Connections, name.get().trim()));
    let field_keys = Memo::new(|_| {
        fields(&[
            "name",
            "gateway",
            "kind",
            "kind.site",
            "kind.remote_gateway",
            "enabled",
            "traffic_selectors",
            "shared_key",
        ])
    });
    let live = Live::new(base, "name", field_keys, draft);
    let state = RwSignal::new(Submit::Idle);
    let editing = existing.is_some();
    let gateways: Vec<(String, String)> = topo.gateways.iter().map(|g| opt(&g.name)).collect();
    let sites: Vec<(String, String)> = topo.sites.iter().map(|s| opt(&s.name)).collect();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(Change::UpsertConnection(x)) = draft.get_untracked().change {
            let existing = editing.then(|| x.name.clone());
            let then = Page::Tenant(c.tenant_name(), TPage::Connection(x.name.clone()));
            submit(Kind::Connections, existing, x, live, state, then);
        }
    };
    view! {
        <form on:submit=on_submit novalidate>
            <Field live=live field="name" label=Key::Name value=name readonly=editing />
            <SelectField live=live field="gateway" label=Key::Gateway value=gateway options=gateways />
            <SelectField
                live=live
                field="kind"
                label=Key::ConnectionKind
                value=kind
                options=Signal::derive(move || {
                    vec![
                        ("SiteToSite".to_owned(), c.t(Key::SiteToSite).to_owned()),
                        ("VnetToVnet".to_owned(), c.t(Key::VnetToVnet).to_owned()),
                    ]
                })
            />
            <Show
                when=move || kind.get() == "SiteToSite"
                fallback=move || {
                    view! {
                        <Field live=live field="kind.remote_gateway" label=Key::RemoteGateway value=rgateway />
                        <Field live=live field="remote_tenant" label=Key::RemoteTenant value=rtenant />
                    }
                }
            >
                <SelectField live=live field="kind.site" label=Key::Site value=site options=sites.clone() />
            </Show>
            <CheckField live=live field="enabled" label=Key::Enabled value=enabled />
            <Field
                live=live
                field="traffic_selectors"
                label=Key::TrafficSelectors
                value=selectors
                multiline=true
            />
            <Show when=move || !editing>
                <Field live=live field="shared_key" label=Key::SharedKeyOptional value=shared_key />
            </Show>
            <SubmitRow live=live state=state cancel=list_page(Kind::Connections) />
        </form>
    }
        .into_any()
}

// ---------------------------------------------------------------------------------------------
// Point-to-site

#[component]
fn P2sForm(existing: Option<String>) -> impl IntoView {
    let c = ctx();
    let tenant = c.tenant_name();
    let topo = c.topology().unwrap_or_default();
    let old = existing
        .as_ref()
        .and_then(|n| topo.point_to_site_of(&tenant, n).cloned());
    if existing.is_some() && old.is_none() {
        return view! { <p role="alert">{c.t(Key::NotFound)}</p> }.into_any();
    }
    let gateway = RwSignal::new(
        old.as_ref()
            .map(|p| p.gateway.clone())
            .or_else(|| {
                topo.gateways
                    .iter()
                    .find(|g| topo.point_to_site_of(&g.tenant, &g.name).is_none())
                    .map(|g| g.name.clone())
            })
            .unwrap_or_default(),
    );
    let pool = RwSignal::new(
        old.as_ref()
            .map(|p| join(&p.address_pool))
            .unwrap_or_default(),
    );
    let extra = RwSignal::new(
        old.as_ref()
            .map(|p| p.additional_vnets.join(", "))
            .unwrap_or_default(),
    );
    let roots = RwSignal::new(
        old.as_ref()
            .map(|p| {
                p.root_certificates
                    .iter()
                    .map(|r| format!("{}: {}", r.name, r.data))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
    );
    let revoked = RwSignal::new(
        old.as_ref()
            .map(|p| p.revoked_thumbprints.join(", "))
            .unwrap_or_default(),
    );
    let clients = RwSignal::new(
        old.as_ref()
            .map(|p| {
                p.clients
                    .iter()
                    .map(|x| format!("{} {} {}", x.name, x.public_key, x.address))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
    );
    let thumbs: Vec<Option<String>> = old
        .as_ref()
        .map(|p| {
            p.clients
                .iter()
                .map(|x| x.certificate_thumbprint.clone())
                .collect()
        })
        .unwrap_or_default();
    let tn = tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let address_pool = parse_list::<IpNet>(&pool.get(), "address_pool", &mut parse);
        let additional_vnets = parse_list::<String>(&extra.get(), "additional_vnets", &mut parse);
        let root_certificates = roots
            .get()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (n, d) = l.split_once(':').unwrap_or((l, ""));
                RootCertificate {
                    name: n.trim().to_owned(),
                    data: d.trim().to_owned(),
                }
            })
            .collect();
        let revoked_thumbprints =
            parse_list::<String>(&revoked.get(), "revoked_thumbprints", &mut parse);
        let clients = clients
            .get()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .filter_map(|(i, l)| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                match parts.as_slice() {
                    [n, k, a] => match a.parse::<IpAddr>() {
                        Ok(address) => Some(P2sClient {
                            name: (*n).to_owned(),
                            public_key: (*k).to_owned(),
                            address,
                            certificate_thumbprint: thumbs.get(i).cloned().flatten(),
                        }),
                        Err(_) => {
                            parse.push(("clients".to_owned(), Problem::input(format!("{a:?}: "))));
                            None
                        }
                    },
                    _ => {
                        parse.push(("clients".to_owned(), Problem::input(format!("{l:?}: "))));
                        None
                    }
                }
            })
            .collect();
        Draft {
            change: Some(Change::UpsertPointToSite(PointToSite {
                tenant: tn.clone(),
                gateway: gateway.get(),
                address_pool,
                additional_vnets,
                root_certificates,
                revoked_thumbprints,
                clients,
            })),
            parse,
        }
    });
    let tn = tenant.clone();
    let base = Memo::new(move |_| base_path(&tn, Kind::PointToSite, &gateway.get()));
    let field_keys = Memo::new(|_| {
        fields(&[
            "gateway",
            "address_pool",
            "additional_vnets",
            "root_certificates",
            "revoked_thumbprints",
            "clients",
        ])
    });
    let live = Live::new(base, "gateway", field_keys, draft);
    let state = RwSignal::new(Submit::Idle);
    let editing = existing.is_some();
    let gateways: Vec<(String, String)> = topo.gateways.iter().map(|g| opt(&g.name)).collect();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(Change::UpsertPointToSite(p)) = draft.get_untracked().change {
            let existing = editing.then(|| p.gateway.clone());
            submit(
                Kind::PointToSite,
                existing,
                p,
                live,
                state,
                Page::Tenant(c.tenant_name(), TPage::List(Kind::PointToSite)),
            );
        }
    };
    view! {
        <form on:submit=on_submit novalidate>
            <SelectField
                live=live
                field="gateway"
                label=Key::Gateway
                value=gateway
                options=gateways
                disabled=editing
            />
            <Field live=live field="address_pool" label=Key::AddressPool value=pool hint=Key::ListHint />
            <Field
                live=live
                field="additional_vnets"
                label=Key::AdditionalVnets
                value=extra
                hint=Key::ListHint
            />
            <Field
                live=live
                field="root_certificates"
                label=Key::RootCertificates
                value=roots
                multiline=true
            />
            <Field live=live field="revoked_thumbprints" label=Key::Revoked value=revoked />
            <Field live=live field="clients" label=Key::Clients value=clients multiline=true />
            <SubmitRow live=live state=state cancel=list_page(Kind::PointToSite) />
        </form>
    }
        .into_any()
}
