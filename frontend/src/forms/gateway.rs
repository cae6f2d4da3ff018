//! The gateway form (its endpoint and public key are the server's, shown read-only).

use isthmus_shared::model::{Change, Gateway, GatewayType, Sku};
use leptos::prelude::*;

use super::Draft;
use super::shell::{ResourceForm, Wired, not_found};
use super::widgets::{CheckField, Field, SelectField, SubmitRow, fields, list_page, opt};
use crate::i18n::Key;
use crate::instances::GatewayInstances;
use crate::notices::GatewayNotices;
use crate::state::{Kind, TPage};

#[component]
pub(super) fn GatewayForm(existing: Option<String>) -> impl IntoView {
    let Some(form) = ResourceForm::open(Kind::Gateway, existing.as_deref(), |t, tn, n| {
        t.gateway(tn, n).cloned()
    }) else {
        return not_found();
    };
    let (c, topo, old, editing) = (form.c, &form.topo, &form.old, form.editing);
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
    let secondary = old.as_ref().and_then(|g| g.secondary_endpoint);
    let public_key = old.as_ref().and_then(|g| g.public_key.clone());
    let (pe, pk) = (endpoint, public_key.clone());
    let tn = form.tenant.clone();
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
            secondary_endpoint: secondary,
            public_key: pk.clone(),
        };
        Draft {
            change: Some(Change::UpsertGateway(g)),
            parse: Vec::new(),
        }
    });
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
            Change::UpsertGateway(g) => Some((g.name.clone(), g)),
            _ => None,
        },
        |_| TPage::List(Kind::Gateway),
    );
    let vnets: Vec<(String, String)> = topo.vnets.iter().map(|v| opt(&v.name)).collect();
    let mut sites: Vec<(String, String)> = vec![(String::new(), c.t(Key::NoneOption).to_owned())];
    sites.extend(topo.sites.iter().map(|s| opt(&s.name)));
    // The endpoints as the server keeps them (a failover or a drain swaps them while the page
    // is open), the ones the form opened with until the topology is reloaded.
    let endpoints = {
        let (tn, n) = (form.tenant.clone(), existing.clone());
        Memo::new(move |_| {
            let now = n.as_ref().and_then(|n| {
                c.topo.with(|t| {
                    let (owner, topo) = t.as_ref()?;
                    let g = (*owner == tn).then(|| topo.gateway(&tn, n)).flatten()?;
                    Some((g.public_endpoint, g.secondary_endpoint))
                })
            });
            now.unwrap_or((endpoint, secondary))
        })
    };
    let shown = existing.clone();
    let instances = existing
        .clone()
        .map(|g| view! { <GatewayInstances gateway=g /> });
    view! {
        <GatewayNotices gateway=Signal::derive(move || shown.clone()) />
        {instances}
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
                <dd data-testid="public-endpoint">
                    {move || {
                        endpoints
                            .get()
                            .0
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| c.t(Key::Pending).to_owned())
                    }}
                </dd>
                {move || {
                    endpoints
                        .get()
                        .1
                        .map(|e| {
                            view! {
                                <dt>{move || c.t(Key::StandbyEndpoint)}</dt>
                                <dd data-testid="standby-endpoint">{e.to_string()}</dd>
                            }
                        })
                }}
                <dt>{move || c.t(Key::PublicKey)}</dt>
                <dd>{public_key.clone().unwrap_or_else(|| c.t(Key::Pending).to_owned())}</dd>
            </dl>
            <SubmitRow live=live state=state cancel=list_page(Kind::Gateway) />
        </form>
    }
    .into_any()
}
