//! The connection form: site-to-site (WireGuard or IPsec) or VNet-to-VNet, traffic selectors,
//! shared key.

use ipnet::IpNet;
use isthmus_shared::model::{
    Change, Connection, ConnectionKind, GatewayRef, SharedKey, TrafficSelector,
};
use leptos::prelude::*;

use super::ipsec::{self, IpsecFields, IpsecInputs};
use super::shell::{ResourceForm, Wired, not_found};
use super::widgets::{CheckField, Field, SelectField, SubmitRow, fields, list_page, opt};
use super::{Draft, Problem};
use crate::i18n::Key;
use crate::state::{Kind, TPage};

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
                        Problem::input(l, Key::ExpectSelector),
                    ));
                    None
                }
            }
        })
        .collect()
}

#[component]
pub(super) fn ConnectionForm(existing: Option<String>) -> impl IntoView {
    let Some(form) = ResourceForm::open(Kind::Connection, existing.as_deref(), |t, tn, n| {
        t.connection(tn, n).cloned()
    }) else {
        return not_found();
    };
    let (c, topo, old, editing) = (form.c, &form.topo, &form.old, form.editing);
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
    let ipsec_inputs = IpsecInputs::new(old.as_ref());
    let tn = form.tenant.clone();
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
        let (protocol, ipsec_policy, connection_mode) =
            ipsec_inputs.read(matches!(k, ConnectionKind::SiteToSite { .. }), &mut parse);
        let sk = shared_key.get();
        let conn = Connection {
            tenant: tn.clone(),
            name: name.get().trim().to_owned(),
            gateway: gateway.get(),
            kind: k,
            shared_key: Some(sk).filter(|s| !s.is_empty()).map(SharedKey::new),
            enabled: enabled.get(),
            traffic_selectors,
            protocol,
            ipsec_policy,
            connection_mode,
        };
        Draft {
            change: Some(Change::UpsertConnection(conn)),
            parse,
        }
    });
    let field_keys = Memo::new(|_| {
        let mut f = fields(&[
            "name",
            "gateway",
            "kind",
            "kind.site",
            "kind.remote_gateway",
            "enabled",
            "traffic_selectors",
            "shared_key",
        ]);
        f.extend(fields(ipsec::FIELDS));
        f
    });
    let Wired {
        live,
        state,
        on_submit,
    } = form.wire(
        move || name.get().trim().to_owned(),
        "name",
        field_keys,
        draft,
        |ch| match ch {
            Change::UpsertConnection(x) => Some((x.name.clone(), x)),
            _ => None,
        },
        TPage::Connection,
    );
    let gateways: Vec<(String, String)> = topo.gateways.iter().map(|g| opt(&g.name)).collect();
    let sites: Vec<(String, String)> = topo.sites.iter().map(|s| opt(&s.name)).collect();
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
                <IpsecFields live=live inputs=ipsec_inputs />
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
                <Field
                    live=live
                    field="shared_key"
                    label=Key::SharedKeyOptional
                    value=shared_key
                    hint=Key::SharedKeyHint
                />
            </Show>
            <SubmitRow live=live state=state cancel=list_page(Kind::Connection) />
        </form>
    }
        .into_any()
}
