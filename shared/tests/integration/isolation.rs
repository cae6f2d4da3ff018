//! Tenants that cannot block or see each other (CONN-2, LIM-3, REF-1, GW-4 across tenants), and
//! refused deletes that say what to delete first.

use std::collections::{BTreeMap, BTreeSet};

use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::desired::{GatewayInputs, PeerKind, Secret, desired_state};
use isthmus_shared::model::{
    Change, Connection, GatewayType, QualifiedName, SharedKey, Sku, Topology,
};
use isthmus_shared::routes::effective_routes;
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::{
    Severity, Violation, has_errors, validate, validate_applied, validate_change, visible_to,
};

use crate::common::*;

/// acme: VNet hub (10.0.0.0/16) with gateway hub-gw and a site `branch` (192.168.1.0/24, on a
/// private device address: a CONN-4 warning), a point-to-site pool 172.16.0.0/24.
/// globex: VNet edge (10.9.0.0/16) with gateway edge-gw.
fn two_tenants() -> TopologyBuilder {
    let b = hub()
        .edit_gateway("hub-gw", |g| {
            g.public_key = Some(wgkey(1));
            g.public_endpoint = Some("198.51.100.1:51820".parse().unwrap());
        })
        .site("branch", "10.200.0.1", &["192.168.1.0/24"])
        .s2s("hub-branch", "hub-gw", "branch")
        .p2s("hub-gw", &["172.16.0.0/24"]);
    spoke(b.tenant("globex"), "edge", "10.9", "eastus").edit_gateway("edge-gw", |g| {
        g.public_key = Some(wgkey(2));
        g.public_endpoint = Some("198.51.100.2:51820".parse().unwrap());
    })
}

/// [`two_tenants`] with globex's lone half towards acme's hub-gw.
fn lone_half() -> TopologyBuilder {
    two_tenants()
        .tenant("globex")
        .v2v("east-link", "edge-gw", Some("acme"), "hub-gw")
        .shared_key("east-link", "PairKey9")
}

/// [`lone_half`] plus acme's half: a complete pair.
fn pair() -> TopologyBuilder {
    lone_half()
        .tenant("acme")
        .v2v("west-link", "hub-gw", Some("globex"), "edge-gw")
        .shared_key("west-link", "PairKey9")
}

fn tenants(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn errors(v: &[Violation]) -> Vec<&Violation> {
    v.iter().filter(|x| x.is_error()).collect()
}

fn s2s_to(tenant: &str, name: &str, gateway: &str, site: &str) -> Connection {
    let t = build(TopologyBuilder::new(tenant).s2s(name, gateway, site));
    t.connections[0].clone()
}

#[test]
fn conn_2_lim_3_ref_1_a_lone_cross_tenant_half_never_blocks_the_other_tenant() {
    let t = build(lone_half());
    // Acme connects a site overlapping globex's VNet: globex's lone half binds nobody (LIM-3).
    let site = build(TopologyBuilder::new("acme").site("dc", "203.0.113.9", &["10.9.0.0/24"]))
        .sites[0]
        .clone();
    let mut t2 = t.clone();
    t2.apply(&Change::UpsertSite(site)).unwrap();
    let v = validate_change(
        &t2,
        &Change::UpsertConnection(s2s_to("acme", "hub-dc", "hub-gw", "dc")),
    );
    assert!(!has_errors(&v), "{}", pretty(&v));
    // Acme makes its gateway PolicyBased (GW-6 only binds complete pairs)...
    let mut g = t.gateway("acme", "hub-gw").unwrap().clone();
    g.gateway_type = GatewayType::PolicyBased;
    let v = validate_change(&t, &Change::UpsertGateway(g));
    assert!(
        !v.iter().any(|x| x.is_error() && x.path.contains("globex")),
        "{}",
        pretty(&v)
    );
    // ... and deletes it (REF-1 only binds complete pairs).
    let mut t3 = t.clone();
    t3.apply(&Change::DeleteConnection(QualifiedName::new(
        "acme",
        "hub-branch",
    )))
    .unwrap();
    t3.apply(&Change::DeletePointToSite(QualifiedName::new(
        "acme", "hub-gw",
    )))
    .unwrap();
    let v = validate_change(
        &t3,
        &Change::DeleteGateway(QualifiedName::new("acme", "hub-gw")),
    );
    assert!(!has_errors(&v), "{}", pretty(&v));
    // Globex's half now simply waits; only globex hears of it, with a rule id.
    let waiting: Vec<&Violation> = v.iter().filter(|x| x.rule == RuleId::Conn2).collect();
    assert_eq!(waiting.len(), 1, "{}", pretty(&v));
    assert_eq!(
        waiting[0].path,
        "tenants[globex].connections[east-link].kind.remote_gateway"
    );
    assert_eq!(waiting[0].severity, Severity::Warning);
    assert_eq!(waiting[0].params["status"], "waiting for the other half");
    let acme = serde_json::to_string(&visible_to(v, &tenants(&["acme"]))).unwrap();
    assert!(
        !acme.contains("globex") && !acme.contains("CONN-2"),
        "{acme}"
    );
}

#[test]
fn conn_2_a_lone_cross_tenant_half_is_not_in_the_data_plane() {
    let t = build(lone_half());
    let routes = effective_routes(&t);
    let hub = &routes[&QualifiedName::new("acme", "hub-gw")];
    let edge = &routes[&QualifiedName::new("globex", "edge-gw")];
    let has = |r: &isthmus_shared::routes::GatewayRoutes, p: &str| {
        r.routes.iter().any(|x| x.prefix.to_string() == p)
    };
    assert!(!has(hub, "10.9.0.0/16"), "{:?}", hub.routes);
    assert!(!has(edge, "10.0.0.0/16"), "{:?}", edge.routes);
    let inputs: BTreeMap<QualifiedName, GatewayInputs> =
        [("acme", "hub-gw"), ("globex", "edge-gw")]
            .iter()
            .enumerate()
            .map(|(i, (t, g))| {
                (
                    QualifiedName::new(*t, *g),
                    GatewayInputs {
                        private_key: Secret::new(wgkey(10 + i as u8)),
                        listen_port: 51820,
                    },
                )
            })
            .collect();
    let (d, _) = desired_state(&t, 1, &inputs);
    for g in &d.gateways {
        assert!(
            !g.peers
                .iter()
                .any(|p| matches!(p.kind, PeerKind::VnetToVnet { .. })),
            "{}: {:?}",
            g.name,
            g.peers
        );
    }
    // Both halves: both gateways get the peer and the other VNet's routes.
    let t = build(pair());
    let (d, _) = desired_state(&t, 2, &inputs);
    for g in &d.gateways {
        assert!(
            g.peers
                .iter()
                .any(|p| matches!(p.kind, PeerKind::VnetToVnet { .. })),
            "{}",
            g.name
        );
    }
    assert!(has(
        &effective_routes(&t)[&QualifiedName::new("acme", "hub-gw")],
        "10.9.0.0/16"
    ));
}

#[test]
fn lim_3_a_complete_cross_tenant_pair_counts_and_names_no_foreign_resource() {
    // Globex declares a VNet over all private space, with a complete pair to acme.
    let mut t = build(pair());
    let mut edge = t.vnet("globex", "edge").unwrap().clone();
    edge.address_space = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    edge.subnets[0].prefix = "10.9.255.0/27".parse().unwrap();
    let all = validate_change(&t, &Change::UpsertVnet(edge.clone()));
    assert!(has_errors(&all));
    let seen = visible_to(all.clone(), &tenants(&["globex"]));
    let lim3: Vec<&Violation> = errors(&seen)
        .into_iter()
        .filter(|x| x.rule == RuleId::Lim3)
        .collect();
    assert!(!lim3.is_empty(), "{}", pretty(&seen));
    for v in &lim3 {
        assert!(
            v.path
                .starts_with("tenants[globex].vnets[edge].address_space[")
        );
        assert!(
            v.message
                .contains("an address space of another tenant that this connection reaches"),
            "{}",
            v.message
        );
        assert_eq!(v.related, ["tenants[globex].connections[east-link]"]);
    }
    let json = serde_json::to_string(&seen).unwrap();
    for foreign in [
        "acme",
        "hub",
        "branch",
        "west-link",
        "hub-branch",
        "10.0.0.0/16",
        "10.0.255.0/27",
        "10.0.1.0/24",
        "192.168.1.0/24",
        "172.16.0.0/24",
        "10.200.0.1",
        "workloads",
    ] {
        assert!(!json.contains(foreign), "{foreign} leaks in {json}");
    }
    // Acme is told about its own side, as anonymously.
    let acme = visible_to(all, &tenants(&["acme"]));
    let json = serde_json::to_string(&acme).unwrap();
    assert!(errors(&acme).iter().any(|v| v.rule == RuleId::Lim3));
    for foreign in [
        "globex",
        "edge",
        "east-link",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "fc00::/7",
    ] {
        assert!(!json.contains(foreign), "{foreign} leaks in {json}");
    }
    // Without acme's half, the same VNet is fine for globex.
    t.apply(&Change::DeleteConnection(QualifiedName::new(
        "acme",
        "west-link",
    )))
    .unwrap();
    let v = validate_change(&t, &Change::UpsertVnet(edge));
    assert!(!has_errors(&v), "{}", pretty(&v));
}

#[test]
fn conn_4_gw_10_warnings_about_another_tenant_are_not_shown() {
    let t = build(pair());
    let all = validate(&t);
    assert!(
        all.iter()
            .any(|v| v.rule == RuleId::Conn4 && v.path.contains("acme"))
    );
    let seen = visible_to(all, &tenants(&["globex"]));
    let json = serde_json::to_string(&seen).unwrap();
    assert!(
        !json.contains("acme") && !json.contains("10.200.0.1"),
        "{json}"
    );
}

#[test]
fn ref_1_a_half_towards_a_missing_or_foreign_tenant_reads_the_same() {
    let globex = |b: TopologyBuilder| {
        spoke(b.tenant("globex"), "edge", "10.9", "eastus")
            .v2v("east-link", "edge-gw", Some("acme"), "hub-gw")
            .shared_key("east-link", "PairKey9")
    };
    let no_tenant = TopologyBuilder::new("globex");
    let tenant_only = TopologyBuilder::new("acme");
    let foreign_gateway = hub();
    let answers: Vec<String> = [no_tenant, tenant_only, foreign_gateway]
        .into_iter()
        .map(|b| {
            let v = visible_to(validate(&build(globex(b))), &tenants(&["globex"]));
            serde_json::to_string(&v).unwrap()
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert!(
        answers[0].contains("does not exist or is not shared with you"),
        "{}",
        answers[0]
    );
    assert!(!answers[0].contains("\"REF-1\""), "{}", answers[0]);
}

#[test]
fn gw_4_cross_tenant_key_mismatch_fails_handshakes_and_matching_keys_come_up() {
    let t = build(pair().tenant("globex").shared_key("east-link", "OtherKey1"));
    let v = validate(&t);
    assert!(!has_errors(&v), "{}", pretty(&v));
    let mismatch: Vec<&Violation> = v
        .iter()
        .filter(|x| x.params.get("status").map(String::as_str) == Some("key mismatch"))
        .collect();
    assert_eq!(mismatch.len(), 2, "{}", pretty(&v));
    // The data plane keeps the peer on both gateways, each with its own half's key: the
    // handshake fails (the worker reports down/key_mismatch) until both halves match.
    let inputs: BTreeMap<QualifiedName, GatewayInputs> =
        [("acme", "hub-gw"), ("globex", "edge-gw")]
            .iter()
            .map(|(t, g)| {
                (
                    QualifiedName::new(*t, *g),
                    GatewayInputs {
                        private_key: Secret::new(wgkey(9)),
                        listen_port: 51820,
                    },
                )
            })
            .collect();
    let psks = |t: &Topology| -> Vec<String> {
        desired_state(t, 1, &inputs)
            .0
            .gateways
            .iter()
            .flat_map(|g| g.peers.iter())
            .filter(|p| matches!(p.kind, PeerKind::VnetToVnet { .. }))
            .map(|p| p.preshared_key.as_ref().unwrap().expose().to_owned())
            .collect()
    };
    let p = psks(&t);
    assert_eq!(p.len(), 2);
    assert_ne!(p[0], p[1]);
    let mut fixed = t.clone();
    let mut half = fixed.connection("globex", "east-link").unwrap().clone();
    half.shared_key = Some(SharedKey::new("PairKey9"));
    fixed.apply(&Change::UpsertConnection(half)).unwrap();
    assert!(
        validate(&fixed)
            .iter()
            .all(|x| !x.params.contains_key("status"))
    );
    let p = psks(&fixed);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0], p[1]);
}

#[test]
fn gw_4_same_tenant_key_is_replaced_on_both_halves_in_one_change() {
    let t = build(
        spoke(hub(), "tokyo", "10.1", "japaneast")
            .v2v_pair("hub-tokyo", "hub-gw", "tokyo-hub", "tokyo-gw")
            .shared_key("hub-tokyo", "abc")
            .shared_key("tokyo-hub", "abc"),
    );
    let with_key = |name: &str| {
        let mut c = t.connection("acme", name).unwrap().clone();
        c.shared_key = Some(SharedKey::new("NewKey2"));
        Change::UpsertConnection(c)
    };
    // One half alone: GW-4, saying how to replace both.
    let v = validate_change(&t, &with_key("hub-tokyo"));
    let gw4: Vec<&Violation> = errors(&v)
        .into_iter()
        .filter(|x| x.rule == RuleId::Gw4)
        .collect();
    assert!(!gw4.is_empty(), "{}", pretty(&v));
    assert!(
        gw4[0].message.contains("in one change"),
        "{}",
        gw4[0].message
    );
    // Both halves in one change: accepted.
    let changes = [with_key("hub-tokyo"), with_key("tokyo-hub")];
    let mut after = t.clone();
    for c in &changes {
        after.apply(c).unwrap();
    }
    let v = validate_applied(&after, &changes);
    assert!(!has_errors(&v), "{}", pretty(&v));
}

#[test]
fn ref_1_refused_deletes_say_what_still_uses_the_resource() {
    let t = build(
        hub()
            .site("branch", "203.0.113.7", &["192.168.1.0/24"])
            .s2s("hub-branch", "hub-gw", "branch")
            .edit_gateway("hub-gw", |g| {
                g.forced_tunneling_site = Some("branch".into())
            })
            .p2s("hub-gw", &["172.16.0.0/24"])
            .vnet("other", "westeurope", &["10.5.0.0/16"])
            .gateway_subnet("other", "10.5.255.0/27")
            .gateway("other-gw", "other", GatewayType::RouteBased, Sku::VpnGw1)
            .edit_p2s("hub-gw", |p| p.additional_vnets = vec!["other".into()]),
    );
    assert!(!has_errors(&validate(&t)), "{}", pretty(&validate(&t)));
    let q = |n: &str| QualifiedName::new("acme", n);
    let refused = |change: Change| -> Vec<Violation> {
        let v = validate_change(&t, &change);
        let e: Vec<Violation> = v.into_iter().filter(Violation::is_error).collect();
        assert!(!e.is_empty(), "{change:?} is refused");
        for x in &e {
            assert!(!x.message.contains("create"), "{}", x.message);
        }
        e
    };
    let find = |v: &[Violation], path: &str| -> String {
        v.iter()
            .find(|x| x.path == path)
            .unwrap_or_else(|| panic!("no violation at {path}: {}", pretty(v)))
            .message
            .clone()
    };
    let v = refused(Change::DeleteVnet(q("hub")));
    assert_eq!(
        find(&v, "tenants[acme].vnets[hub]"),
        "VNet \"hub\" is still used by gateway \"hub-gw\"; delete the gateway first"
    );
    let v = refused(Change::DeleteGateway(q("hub-gw")));
    assert_eq!(
        find(&v, "tenants[acme].gateways[hub-gw]"),
        "gateway \"hub-gw\" is still used by connection \"hub-branch\"; delete the connection first"
    );
    assert!(
        v.iter()
            .any(|x| x.message.contains("point-to-site configuration first"))
    );
    let v = refused(Change::DeleteSite(q("branch")));
    let m = find(&v, "tenants[acme].sites[branch]");
    assert!(m.contains("still used by"), "{m}");
    let v = refused(Change::DeleteConnection(q("hub-branch")));
    let m = find(&v, "tenants[acme].gateways[hub-gw].forced_tunneling_site");
    assert!(
        m.contains("clear the gateway's forced-tunneling site first"),
        "{m}"
    );
    let v = refused(Change::DeleteVnet(q("other")));
    let m = find(&v, "tenants[acme].vnets[other]");
    assert!(m.contains("still used by gateway \"other-gw\""), "{m}");
    assert!(
        v.iter()
            .any(|x| x.message.contains("remove it from additional_vnets first"))
    );
}

#[test]
fn p2s_6_an_overlap_with_another_tenant_names_no_foreign_resource_and_is_never_silent() {
    // Acme's clients reach hub and `annex`; `annex-gw` is paired with globex's edge
    // (10.9.0.0/16), which acme's client pool overlaps.
    let b = hub()
        .vnet("annex", "westeurope", &["10.5.0.0/16"])
        .gateway_subnet("annex", "10.5.255.0/27")
        .gateway("annex-gw", "annex", GatewayType::RouteBased, Sku::VpnGw1)
        .p2s("hub-gw", &["10.9.5.0/24"])
        .edit_p2s("hub-gw", |p| p.additional_vnets = vec!["annex".into()])
        .v2v("west-link", "annex-gw", Some("globex"), "edge-gw")
        .shared_key("west-link", "PairKey9");
    let t = build(spoke(b.tenant("globex"), "edge", "10.9", "eastus"));
    assert!(!has_errors(&validate(&t)), "{}", pretty(&validate(&t)));
    // Globex completes the pair: refused, because of acme's configuration.
    let half = build(
        TopologyBuilder::new("globex")
            .v2v("east-link", "edge-gw", Some("acme"), "annex-gw")
            .shared_key("east-link", "PairKey9"),
    )
    .connections[0]
        .clone();
    let all = validate_change(&t, &Change::UpsertConnection(half));
    let acme = visible_to(all.clone(), &tenants(&["acme"]));
    let p2s6: Vec<&Violation> = errors(&acme)
        .into_iter()
        .filter(|x| x.rule == RuleId::P2s6)
        .collect();
    assert_eq!(p2s6.len(), 1, "{}", pretty(&acme));
    assert_eq!(
        p2s6[0].path,
        "tenants[acme].point_to_site[hub-gw].address_pool[0]"
    );
    assert!(
        p2s6[0]
            .message
            .contains("an address space of another tenant that this connection reaches"),
        "{}",
        p2s6[0].message
    );
    let json = serde_json::to_string(&acme).unwrap();
    assert!(
        !json.contains("globex") && !json.contains("10.9.0.0/16"),
        "{json}"
    );
    // Globex is told that its change is refused, and why (the rule), but nothing of acme's.
    let globex = visible_to(all, &tenants(&["globex"]));
    let e = errors(&globex);
    assert_eq!(e.len(), 1, "{}", pretty(&globex));
    assert_eq!((e[0].path.as_str(), e[0].rule), ("change", RuleId::P2s6));
    let json = serde_json::to_string(&globex).unwrap();
    for foreign in ["hub", "annex", "10.9.5.0/24", "west-link"] {
        assert!(!json.contains(foreign), "{foreign} leaks in {json}");
    }
}
