//! The local network site form (the VPN device's address, port, prefixes, WireGuard key and
//! IKE identity).

use ipnet::IpNet;
use isthmus_shared::model::{Change, DeviceHost, LocalSite};
use leptos::prelude::*;

use super::shell::{ResourceForm, Wired, not_found};
use super::widgets::{Field, SubmitRow, fields, list_page};
use super::{Draft, Problem, join, parse_list};
use crate::i18n::Key;
use crate::state::{Kind, TPage};

#[component]
pub(super) fn SiteForm(existing: Option<String>) -> impl IntoView {
    let Some(form) = ResourceForm::open(Kind::Site, existing.as_deref(), |t, tn, n| {
        t.site(tn, n).cloned()
    }) else {
        return not_found();
    };
    let (old, editing) = (&form.old, form.editing);
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
            // A new site starts at WireGuard's port (PORT-1's default); an existing one
            // shows what it stores (empty: the default).
            .unwrap_or_else(|| {
                if editing {
                    String::new()
                } else {
                    "51820".to_owned()
                }
            }),
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
    let ike_identity = RwSignal::new(
        old.as_ref()
            .and_then(|s| s.ike_identity.clone())
            .unwrap_or_default(),
    );
    let tn = form.tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let h = host.get().trim().to_owned();
        let device_host = match h.parse::<DeviceHost>() {
            Ok(d) => Some(d),
            Err(_) => {
                parse.push((
                    "device_host".to_owned(),
                    Problem::input(h.clone(), Key::ExpectHost),
                ));
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
                    parse.push((
                        "device_port".to_owned(),
                        Problem::input(p.clone(), Key::ExpectPort),
                    ));
                    None
                }
            }
        };
        let address_prefixes = parse_list::<IpNet>(
            &prefixes.get(),
            "address_prefixes",
            Key::ExpectPrefix,
            &mut parse,
        );
        let k = key.get().trim().to_owned();
        let id = ike_identity.get().trim().to_owned();
        let change = device_host.map(|device_host| {
            Change::UpsertSite(LocalSite {
                tenant: tn.clone(),
                name: name.get().trim().to_owned(),
                device_host,
                device_port,
                address_prefixes,
                device_public_key: Some(k).filter(|k| !k.is_empty()),
                ike_identity: Some(id).filter(|i| !i.is_empty()),
            })
        });
        Draft { change, parse }
    });
    let field_keys = Memo::new(|_| {
        fields(&[
            "name",
            "device_host",
            "device_port",
            "address_prefixes",
            "device_public_key",
            "ike_identity",
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
            Change::UpsertSite(s) => Some((s.name.clone(), s)),
            _ => None,
        },
        |_| TPage::List(Kind::Site),
    );
    view! {
        <form on:submit=on_submit novalidate>
            <Field live=live field="name" label=Key::Name value=name readonly=editing />
            <Field live=live field="device_host" label=Key::DeviceHost value=host />
            <Field
                live=live
                field="device_port"
                label=Key::DevicePort
                value=port
                hint=Key::DevicePortHint
            />
            <Field
                live=live
                field="address_prefixes"
                label=Key::AddressPrefixes
                value=prefixes
                hint=Key::ListHint
            />
            <Field
                live=live
                field="device_public_key"
                label=Key::DevicePublicKey
                value=key
                hint=Key::DevicePublicKeyHint
            />
            <Field
                live=live
                field="ike_identity"
                label=Key::IkeIdentity
                value=ike_identity
                hint=Key::IkeIdentityHint
            />
            <SubmitRow live=live state=state cancel=list_page(Kind::Site) />
        </form>
    }
    .into_any()
}
