//! The point-to-site form of a gateway: address pool, root certificates, revocations, clients.

use std::net::IpAddr;

use ipnet::IpNet;
use isthmus_shared::model::{Change, P2sClient, PointToSite, RootCertificate};
use leptos::prelude::*;

use super::shell::{ResourceForm, Wired, not_found};
use super::widgets::{Field, SelectField, SubmitRow, fields, list_page, opt};
use super::{Draft, Problem, join, parse_list};
use crate::i18n::Key;
use crate::state::{Kind, TPage};

#[component]
pub(super) fn P2sForm(existing: Option<String>) -> impl IntoView {
    let Some(form) = ResourceForm::open(Kind::PointToSite, existing.as_deref(), |t, tn, n| {
        t.point_to_site_of(tn, n).cloned()
    }) else {
        return not_found();
    };
    let (topo, old, editing) = (&form.topo, &form.old, form.editing);
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
    let tn = form.tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let address_pool =
            parse_list::<IpNet>(&pool.get(), "address_pool", Key::ExpectPrefix, &mut parse);
        let additional_vnets = parse_list::<String>(
            &extra.get(),
            "additional_vnets",
            Key::ExpectName,
            &mut parse,
        );
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
        let revoked_thumbprints = parse_list::<String>(
            &revoked.get(),
            "revoked_thumbprints",
            Key::ExpectName,
            &mut parse,
        );
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
                            parse.push((
                                "clients".to_owned(),
                                Problem::input(*a, Key::ExpectAddress),
                            ));
                            None
                        }
                    },
                    _ => {
                        parse.push((
                            "clients".to_owned(),
                            Problem::input(l.trim(), Key::ExpectClient),
                        ));
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
    let Wired {
        live,
        state,
        on_submit,
    } = form.wire(
        move || gateway.get(),
        "gateway",
        field_keys,
        draft,
        |ch| match ch {
            Change::UpsertPointToSite(p) => Some((p.gateway.clone(), p)),
            _ => None,
        },
        |_| TPage::List(Kind::PointToSite),
    );
    let gateways: Vec<(String, String)> = topo.gateways.iter().map(|g| opt(&g.name)).collect();
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
