//! The VNet form: name, region, address space, DNS servers and a row per subnet.

use std::net::IpAddr;

use ipnet::IpNet;
use isthmus_shared::model::{Change, GATEWAY_SUBNET, Subnet, Vnet};
use leptos::prelude::*;

use super::shell::{ResourceForm, Wired, not_found};
use super::widgets::{Field, SubmitRow, fields, list_page};
use super::{Draft, Problem, Problems, join, parse_list, problems_id};
use crate::i18n::Key;
use crate::state::{Kind, TPage};

#[derive(Clone, Copy)]
struct SubnetRow {
    id: u32,
    name: RwSignal<String>,
    prefix: RwSignal<String>,
}

#[component]
pub(super) fn VnetForm(existing: Option<String>) -> impl IntoView {
    let Some(form) = ResourceForm::open(Kind::Vnet, existing.as_deref(), |t, tn, n| {
        t.vnet(tn, n).cloned()
    }) else {
        return not_found();
    };
    let (c, old, editing) = (form.c, &form.old, form.editing);
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
    let tn = form.tenant.clone();
    let draft = Memo::new(move |_| {
        let mut parse = Vec::new();
        let address_space =
            parse_list::<IpNet>(&space.get(), "address_space", Key::ExpectPrefix, &mut parse);
        let dns_servers =
            parse_list::<IpAddr>(&dns.get(), "dns_servers", Key::ExpectAddress, &mut parse);
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
                        parse.push((
                            format!("subnets[{n}]"),
                            Problem::input(p.clone(), Key::ExpectPrefix),
                        ));
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
    let field_keys = Memo::new(move |_| {
        let mut f = fields(&["name", "region", "address_space", "dns_servers", "subnets"]);
        for r in subnets.get() {
            f.push(format!("subnets[{}]", r.name.get().trim()));
        }
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
            Change::UpsertVnet(v) => Some((v.name.clone(), v)),
            _ => None,
        },
        |_| TPage::List(Kind::Vnet),
    );
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
                        let filled = Signal::derive(move || !r.prefix.with(|p| p.trim().is_empty()));
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
                                        on:input=move |ev| {
                                            r.name.set(event_target_value(&ev));
                                            live.touch(&key.get_untracked());
                                        }
                                    />
                                </div>
                                <div class="field">
                                    <label for=pid.clone()>
                                        {move || format!("{} {n} {}", c.t(Key::Subnet), c.t(Key::SubnetPrefix))}
                                    </label>
                                    <input
                                        id=pid
                                        aria-describedby=move || problems_id("form", &key.get())
                                        aria-invalid=move || live.invalid(&key.get(), filled.get()).to_string()
                                        prop:value=move || r.prefix.get()
                                        on:input=move |ev| {
                                            r.prefix.set(event_target_value(&ev));
                                            live.touch(&key.get_untracked());
                                        }
                                    />
                                </div>
                                <button
                                    type="button"
                                    aria-label=move || format!("{} {} {n}", c.t(Key::Remove), c.t(Key::Subnet))
                                    on:click=move |_| subnets.update(|s| s.retain(|x| x.id != r.id))
                                >
                                    {move || c.t(Key::Remove)}
                                </button>
                                <Problems live=live form="form" field=key filled=filled />
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
            <SubmitRow live=live state=state cancel=list_page(Kind::Vnet) />
        </form>
    }
        .into_any()
}
