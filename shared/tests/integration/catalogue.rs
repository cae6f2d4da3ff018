//! The message catalogues against real violations (issue #14): one topology per (rule, case),
//! each template's placeholders filled from the violation's params, the English rendering equal
//! to the message, and the Japanese one free of English words.

use std::collections::{BTreeMap, BTreeSet};

use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::messages::{self, Lang, OTHER_TENANT, case_of, placeholders, template};
use isthmus_shared::model::{
    Change, DEFAULT_IKE_PROPOSALS, GatewayType, IpsecCipher, IpsecConnectionMode, IpsecPolicy,
    QualifiedName, RootCertificate, Sku, SkuTable, TunnelProtocol,
};
use isthmus_shared::rules::RuleId::{self, *};
use isthmus_shared::validate::{
    Violation, validate, validate_applied, validate_change, validate_with, visible_to,
};

use crate::common::{build, hub, hub_with, spoke, wgkey};

fn v(b: TopologyBuilder) -> Vec<Violation> {
    validate(&build(b))
}

/// The violations of `b` after `changes` (deletes are reported at the deleted resource).
fn applied(b: TopologyBuilder, changes: &[Change]) -> Vec<Violation> {
    let mut t = build(b);
    for c in changes {
        t.apply(c).expect("the change applies");
    }
    validate_applied(&t, changes)
}

fn q(name: &str) -> QualifiedName {
    QualifiedName::new("acme", name)
}

fn branch(b: TopologyBuilder) -> TopologyBuilder {
    b.site("branch", "203.0.113.1", &["192.168.1.0/24"])
        .s2s("hub-branch", "hub-gw", "branch")
}

/// [`branch`] over IPsec.
fn ipsec_branch(b: TopologyBuilder) -> TopologyBuilder {
    branch(b).edit_connection("hub-branch", |c| c.protocol = TunnelProtocol::IPsec)
}

fn ipsec_policy(child_secs: Option<u32>, child_kb: Option<u64>) -> IpsecPolicy {
    IpsecPolicy {
        ike: DEFAULT_IKE_PROPOSALS[0],
        esp_cipher: IpsecCipher::Aes256Gcm16,
        ike_lifetime_secs: None,
        child_lifetime_secs: child_secs,
        child_lifetime_kilobytes: child_kb,
    }
}

fn policy_branch() -> TopologyBuilder {
    branch(hub_with(GatewayType::PolicyBased, Sku::Basic))
}

fn with_pool(b: TopologyBuilder) -> TopologyBuilder {
    b.p2s("hub-gw", &["172.16.0.0/24"])
}

/// Every SKU limited to `connections` connections and `clients` point-to-site clients, except
/// those in `roomy`.
fn tight(connections: u32, clients: u32, roomy: &[Sku]) -> SkuTable {
    let mut table = SkuTable::default();
    for sku in Sku::ALL {
        if !roomy.contains(&sku) {
            let mut l = table.get(sku);
            l.max_connections = connections;
            l.max_p2s_clients = clients;
            table.limits.insert(sku, l);
        }
    }
    table
}

fn two_tenants(key_a: &str, key_b: &str, edge: &str) -> TopologyBuilder {
    let b = hub()
        .v2v("to-globex", "hub-gw", Some("globex"), "edge-gw")
        .shared_key("to-globex", key_a);
    spoke(b.tenant("globex"), "edge", edge, "eastus")
        .v2v("to-acme", "edge-gw", Some("acme"), "hub-gw")
        .shared_key("to-acme", key_b)
}

type Scenario = (RuleId, &'static str, fn() -> Vec<Violation>);

/// One scenario per (rule, case): the violations it must produce one of.
const SCENARIOS: &[Scenario] = &[
    // NAME-1
    (Name1, "tenant", || {
        let mut t = build(hub());
        t.tenants.push(t.tenants[0].clone());
        validate(&t)
    }),
    (Name1, "resource", || {
        v(hub().site("a", "203.0.113.1", &["192.168.1.0/24"]).site(
            "a",
            "203.0.113.2",
            &["192.168.2.0/24"],
        ))
    }),
    (Name1, "p2s", || {
        v(with_pool(hub()).p2s("hub-gw", &["172.16.1.0/24"]))
    }),
    (Name1, "subnet", || {
        v(hub().subnet("hub", "workloads", "10.0.2.0/24"))
    }),
    (Name1, "route_source", || {
        v(hub()
            .private_circuit("hub", "er", &["172.20.0.0/16"])
            .private_circuit("hub", "er", &["172.21.0.0/16"]))
    }),
    (Name1, "root_certificate", || {
        v(with_pool(hub())
            .root_certificate("hub-gw", "root", "AAAA")
            .root_certificate("hub-gw", "root", "BBBB"))
    }),
    (Name1, "client", || {
        v(with_pool(hub())
            .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.10")
            .p2s_client("hub-gw", "laptop", &wgkey(2), "172.16.0.11"))
    }),
    // NAME-2
    (Name2, "empty", || {
        v(hub().site("", "203.0.113.1", &["192.168.1.0/24"]))
    }),
    (Name2, "too_long", || {
        v(hub().site(&"a".repeat(81), "203.0.113.1", &["192.168.1.0/24"]))
    }),
    (Name2, "first_char", || {
        v(hub().site("-a", "203.0.113.1", &["192.168.1.0/24"]))
    }),
    (Name2, "bad_char", || {
        v(with_pool(hub()).p2s_client("hub-gw", "my laptop", &wgkey(1), "172.16.0.10"))
    }),
    (Name2, "region", || {
        v(TopologyBuilder::new("acme").vnet("hub", "", &["10.0.0.0/16"]))
    }),
    // REF-1
    (Ref1, "tenant", || {
        let mut t = build(hub());
        t.tenants.clear();
        validate(&t)
    }),
    (Ref1, "change", || {
        validate_change(&build(hub()), &Change::DeleteSite(q("nope")))
    }),
    (Ref1, "gateway_vnet", || {
        v(TopologyBuilder::new("acme").gateway(
            "edge-gw",
            "nope",
            GatewayType::RouteBased,
            Sku::VpnGw1,
        ))
    }),
    (Ref1, "forced_site", || {
        v(hub().edit_gateway("hub-gw", |g| g.forced_tunneling_site = Some("nope".into())))
    }),
    (Ref1, "still_used", || {
        applied(branch(hub()), &[Change::DeleteSite(q("branch"))])
    }),
    (Ref1, "still_used_remote", || {
        applied(
            spoke(hub(), "a", "10.1", "westeurope").v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw"),
            &[Change::DeleteGateway(q("a-gw"))],
        )
    }),
    (Ref1, "still_used_forced", || {
        applied(
            branch(hub()).edit_gateway("hub-gw", |g| {
                g.forced_tunneling_site = Some("branch".into())
            }),
            &[
                Change::DeleteConnection(q("hub-branch")),
                Change::DeleteSite(q("branch")),
            ],
        )
    }),
    (Ref1, "still_used_additional", || {
        applied(
            with_pool(spoke(hub(), "a", "10.1", "westeurope"))
                .edit_p2s("hub-gw", |p| p.additional_vnets.push("a".into())),
            &[Change::DeleteGateway(q("a-gw")), Change::DeleteVnet(q("a"))],
        )
    }),
    (Ref1, "connection_gateway", || {
        v(hub()
            .site("branch", "203.0.113.1", &["192.168.1.0/24"])
            .s2s("c", "nope", "branch"))
    }),
    (Ref1, "connection_site", || {
        v(hub().s2s("c", "hub-gw", "nope"))
    }),
    (Ref1, "remote_gateway", || {
        v(hub().v2v("c", "hub-gw", None, "nope"))
    }),
    (Ref1, "p2s_gateway", || {
        v(hub().p2s("nope", &["172.16.0.0/24"]))
    }),
    (Ref1, "additional_vnet", || {
        v(with_pool(hub()).edit_p2s("hub-gw", |p| p.additional_vnets.push("nope".into())))
    }),
    // PFX
    (Pfx1, "", || {
        v(hub().site("b", "203.0.113.1", &["192.168.1.1/24"]))
    }),
    (Pfx2, "vnet", || {
        v(TopologyBuilder::new("acme").vnet("hub", "westeurope", &[]))
    }),
    (Pfx2, "site", || v(hub().site("b", "203.0.113.1", &[]))),
    (Pfx2, "pool", || v(hub().p2s("hub-gw", &[]))),
    (Pfx3, "", || {
        v(hub().site("b", "203.0.113.1", &["192.168.0.0/16", "192.168.1.0/24"]))
    }),
    (Pfx4, "default", || {
        v(TopologyBuilder::new("acme").vnet("hub", "westeurope", &["0.0.0.0/0"]))
    }),
    (Pfx4, "default_site", || {
        v(hub().site("b", "203.0.113.1", &["0.0.0.0/0"]))
    }),
    (Pfx5, "", reserved),
    (Pfx6, "", reserved),
    (Pfx7, "", reserved),
    (Pfx8, "", reserved),
    // SUB
    (Sub1, "", || v(hub().subnet("hub", "x", "10.9.0.0/24"))),
    (Sub2, "", || v(hub().subnet("hub", "x", "10.0.1.128/25"))),
    // Gateways
    (Gw11, "", || {
        v(hub().appliance("hub", "nva", "10.9.0.4", &["172.30.0.0/16"]))
    }),
    (Gw10, "", || {
        v(hub().edit_gateway("hub-gw", |g| {
            g.public_endpoint = Some("127.0.0.1:51820".parse().unwrap())
        }))
    }),
    (Gw3, "port_zero", || {
        v(hub().edit_gateway("hub-gw", |g| {
            g.public_endpoint = Some("203.0.113.9:0".parse().unwrap())
        }))
    }),
    (Gw3, "shared", || {
        let e = Some("203.0.113.9:51820".parse().unwrap());
        v(spoke(hub(), "a", "10.1", "westeurope")
            .edit_gateway("hub-gw", |g| g.public_endpoint = e)
            .edit_gateway("a-gw", |g| g.public_endpoint = e))
    }),
    (Key1, "", || {
        v(hub()
            .site("b", "203.0.113.1", &["192.168.1.0/24"])
            .edit_site("b", |s| s.device_public_key = Some("nope".into())))
    }),
    (Lim2, "active_active", || {
        v(hub_with(GatewayType::RouteBased, Sku::Basic)
            .edit_gateway("hub-gw", |g| g.active_active = true))
    }),
    (Lim1, "too_many", || {
        validate_with(&build(branch(hub())), &tight(0, 128, &[]))
    }),
    (Lim1, "too_many_resize", || {
        validate_with(&build(branch(hub())), &tight(0, 128, &[Sku::VpnGw5]))
    }),
    (Gw9, "policy_based", || {
        v(policy_branch().edit_gateway("hub-gw", |g| {
            g.forced_tunneling_site = Some("branch".into())
        }))
    }),
    (Gw9, "connection_deleted", || {
        applied(
            branch(hub()).edit_gateway("hub-gw", |g| {
                g.forced_tunneling_site = Some("branch".into())
            }),
            &[Change::DeleteConnection(q("hub-branch"))],
        )
    }),
    (Gw9, "not_connected", || {
        v(hub()
            .site("branch", "203.0.113.1", &["192.168.1.0/24"])
            .edit_gateway("hub-gw", |g| {
                g.forced_tunneling_site = Some("branch".into())
            }))
    }),
    (Gw7, "name_case", || {
        v(hub().subnet("hub", "gatewaysubnet", "10.0.254.0/27"))
    }),
    (Gw7, "appliance", || {
        v(hub().appliance("hub", "nva", "10.0.255.4", &["172.30.0.0/16"]))
    }),
    (Gw7, "missing", || {
        v(TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1))
    }),
    (Gw7, "too_small", || {
        v(TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .gateway_subnet("hub", "10.0.255.0/30")
            .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1))
    }),
    (Gw7, "too_small_no_gateway", || {
        v(TopologyBuilder::new("acme")
            .vnet("hub", "westeurope", &["10.0.0.0/16"])
            .gateway_subnet("hub", "10.0.255.0/30"))
    }),
    (Vnet1, "", || {
        v(hub().gateway("hub-gw2", "hub", GatewayType::RouteBased, Sku::VpnGw1))
    }),
    // Sites
    (Conn4, "ipv6", || {
        v(hub().site("b", "2001:db8::1", &["192.168.1.0/24"]))
    }),
    (Conn4, "unusable", || {
        v(hub().site("b", "0.0.0.0", &["192.168.1.0/24"]))
    }),
    (Conn4, "non_public", || {
        v(hub().site("b", "192.168.77.1", &["192.168.1.0/24"]))
    }),
    (Port1, "", || {
        v(hub()
            .site("b", "203.0.113.1", &["192.168.1.0/24"])
            .edit_site("b", |s| s.device_port = Some(0)))
    }),
    // IPSEC-1 to IPSEC-5 (issue 17)
    (Ipsec1, "v2v", || {
        v(spoke(hub(), "spoke", "10.1", "westeurope")
            .v2v_pair("hub-spoke", "hub-gw", "spoke-hub", "spoke-gw")
            .edit_connection("hub-spoke", |c| c.protocol = TunnelProtocol::IPsec))
    }),
    (Ipsec2, "policy", || {
        v(branch(hub()).edit_connection("hub-branch", |c| {
            c.ipsec_policy = Some(ipsec_policy(None, None))
        }))
    }),
    (Ipsec2, "mode", || {
        v(branch(hub()).edit_connection("hub-branch", |c| {
            c.connection_mode = IpsecConnectionMode::ResponderOnly
        }))
    }),
    (Ipsec3, "seconds", || {
        v(ipsec_branch(hub()).edit_connection("hub-branch", |c| {
            c.ipsec_policy = Some(ipsec_policy(Some(59), None))
        }))
    }),
    (Ipsec3, "kilobytes", || {
        v(ipsec_branch(hub()).edit_connection("hub-branch", |c| {
            c.ipsec_policy = Some(ipsec_policy(None, Some(1023)))
        }))
    }),
    (Ipsec4, "too_long", || {
        v(ipsec_branch(hub()).edit_site("branch", |s| {
            s.ike_identity = Some(format!("{}.example", "a".repeat(250)))
        }))
    }),
    (Ipsec4, "whitespace", || {
        v(ipsec_branch(hub()).edit_site("branch", |s| {
            s.ike_identity = Some("vpn example".to_owned())
        }))
    }),
    (Ipsec4, "invalid", || {
        v(ipsec_branch(hub()).edit_site("branch", |s| {
            s.ike_identity = Some("2001:db8::1".to_owned())
        }))
    }),
    (Ipsec5, "shared_host", || {
        v(ipsec_branch(hub())
            .site("branch2", "203.0.113.1", &["192.168.2.0/24"])
            .s2s("hub-branch2", "hub-gw", "branch2")
            .edit_connection("hub-branch2", |c| c.protocol = TunnelProtocol::IPsec))
    }),
    // Shared keys
    (Gw5, "empty", || {
        v(branch(hub()).shared_key("hub-branch", ""))
    }),
    (Gw5, "too_long", || {
        v(branch(hub()).shared_key("hub-branch", &"a".repeat(129)))
    }),
    (Gw5, "invalid_char", || {
        v(branch(hub()).shared_key("hub-branch", "abcd-"))
    }),
    // Connections
    (Gw2, "route_based", || {
        v(branch(hub()).selector("hub-branch", "10.0.0.0/16", "192.168.1.0/24"))
    }),
    (Gw2, "vnet_to_vnet", || {
        v(spoke(hub(), "a", "10.1", "westeurope")
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
            .selector("hub-a", "10.0.0.0/16", "10.1.0.0/16"))
    }),
    (Ref2, "own_gateway", || {
        v(hub().v2v("self", "hub-gw", None, "hub-gw"))
    }),
    (Ref2, "duplicate", || {
        v(spoke(hub(), "a", "10.1", "westeurope")
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
            .v2v("hub-a2", "hub-gw", None, "a-gw"))
    }),
    (Gw6, "", || {
        v(spoke(hub(), "a", "10.1", "westeurope")
            .edit_gateway("a-gw", |g| g.gateway_type = GatewayType::PolicyBased)
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw"))
    }),
    (Conn2, "waiting", || {
        v(spoke(hub(), "a", "10.1", "westeurope").v2v("hub-a", "hub-gw", None, "a-gw"))
    }),
    (Conn2, "waiting_cross", || {
        v(hub().v2v("to-globex", "hub-gw", Some("globex"), "edge-gw"))
    }),
    (Conn2, "key_mismatch", || {
        v(two_tenants("KeyA", "KeyB", "10.9"))
    }),
    (Gw4, "", || {
        v(spoke(hub(), "a", "10.1", "westeurope")
            .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
            .shared_key("hub-a", "KeyA")
            .shared_key("a-hub", "KeyB"))
    }),
    (Lim2, "redundant_active_active", || {
        v(branch(hub())
            .s2s("hub-branch2", "hub-gw", "branch")
            .s2s("hub-branch3", "hub-gw", "branch")
            .edit_gateway("hub-gw", |g| g.active_active = true))
    }),
    (Lim2, "redundant_turn_on", || {
        v(branch(hub()).s2s("hub-branch2", "hub-gw", "branch"))
    }),
    (Lim2, "redundant_sku", || {
        v(branch(hub_with(GatewayType::RouteBased, Sku::Basic)).s2s(
            "hub-branch2",
            "hub-gw",
            "branch",
        ))
    }),
    (Conn3, "", || {
        v(policy_branch()
            .site("b", "203.0.113.2", &["192.168.2.0/24"])
            .s2s("to-b", "hub-gw", "b"))
    }),
    (Pfx1, "", || {
        v(policy_branch().selector("hub-branch", "10.0.0.1/16", "192.168.1.0/24"))
    }),
    (Gw1, "mixed_family", || {
        v(policy_branch().selector("hub-branch", "10.0.0.0/16", "2001:db8::/64"))
    }),
    (Gw1, "local_outside", || {
        v(policy_branch().selector("hub-branch", "10.9.0.0/16", "192.168.1.0/24"))
    }),
    (Gw1, "remote_outside", || {
        v(policy_branch().selector("hub-branch", "10.0.0.0/16", "192.168.9.0/24"))
    }),
    (Key2, "own_key", || {
        v(branch(hub())
            .edit_gateway("hub-gw", |g| g.public_key = Some(wgkey(1)))
            .edit_site("branch", |s| s.device_public_key = Some(wgkey(1))))
    }),
    (Key2, "shared", || {
        v(branch(hub())
            .site("b", "203.0.113.2", &["192.168.2.0/24"])
            .s2s("hub-b", "hub-gw", "b")
            .edit_site("branch", |s| s.device_public_key = Some(wgkey(2)))
            .edit_site("b", |s| s.device_public_key = Some(wgkey(2))))
    }),
    // Overlaps
    (Lim3, "direct", || {
        v(hub()
            .site("branch", "203.0.113.1", &["10.0.5.0/24"])
            .s2s("c", "hub-gw", "branch"))
    }),
    (Lim3, "transit", || {
        v(spoke(
            spoke(hub(), "a", "10.1", "westeurope"),
            "b",
            "10.0",
            "westeurope",
        )
        .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
        .v2v_pair("a-b", "a-gw", "b-a", "b-gw"))
    }),
    (Lim3, "foreign_one", || {
        v(two_tenants("Same1", "Same1", "10.0"))
    }),
    (Lim3, "foreign_many", || {
        let b = two_tenants("Same1", "Same1", "10.0")
            .tenant("acme")
            .v2v("to-globex2", "hub-gw", Some("globex"), "edge2-gw")
            .shared_key("to-globex2", "Same1");
        v(spoke(b.tenant("globex"), "edge2", "10.0", "eastus")
            .v2v("to-acme2", "edge2-gw", Some("acme"), "hub-gw")
            .shared_key("to-acme2", "Same1"))
    }),
    (Lim3, "site_vnet", || {
        v(hub().site("branch", "203.0.113.1", &["10.0.5.0/24"]))
    }),
    // Point-to-site
    (P2s6, "pool", || {
        v(spoke(hub(), "a", "10.1", "westeurope")
            .p2s("hub-gw", &["10.1.5.0/24"])
            .edit_p2s("hub-gw", |p| p.additional_vnets.push("a".into())))
    }),
    (P2s6, "vnets", || {
        v(spoke(
            spoke(hub(), "a", "10.1", "westeurope"),
            "b",
            "10.1",
            "eastus",
        )
        .p2s("hub-gw", &["172.16.0.0/24"])
        .edit_p2s("hub-gw", |p| {
            p.additional_vnets = vec!["a".into(), "b".into()]
        }))
    }),
    (P2s6, "own_vnet", || {
        v(with_pool(hub()).edit_p2s("hub-gw", |p| p.additional_vnets.push("hub".into())))
    }),
    (P2s6, "no_gateway", || {
        v(with_pool(hub().vnet("x", "westeurope", &["10.5.0.0/16"]))
            .edit_p2s("hub-gw", |p| p.additional_vnets.push("x".into())))
    }),
    (P2s1, "policy_based", || {
        v(with_pool(hub_with(GatewayType::PolicyBased, Sku::Basic)))
    }),
    (P2s1, "additional_policy_based", || {
        v(with_pool(spoke(hub(), "a", "10.1", "westeurope"))
            .edit_gateway("a-gw", |g| g.gateway_type = GatewayType::PolicyBased)
            .edit_p2s("hub-gw", |p| p.additional_vnets.push("a".into())))
    }),
    (Conn5, "", || with_pool_policy_branch()),
    (P2s3, "too_many", || {
        v(with_pool(hub()).edit_p2s("hub-gw", |p| {
            for i in 0..21 {
                p.root_certificates.push(RootCertificate {
                    name: format!("root{i}"),
                    data: "AAAA".into(),
                });
            }
        }))
    }),
    (P2s3, "revoked", || {
        v(with_pool(hub())
            .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.10")
            .edit_p2s("hub-gw", |p| {
                p.clients[0].certificate_thumbprint = Some("ABCD".into());
                p.revoked_thumbprints.push("abcd".into());
            }))
    }),
    (Addr1, "outside_pool", || {
        v(with_pool(hub()).p2s_client("hub-gw", "laptop", &wgkey(1), "10.99.0.1"))
    }),
    (Addr1, "shared", || {
        v(with_pool(hub())
            .p2s_client("hub-gw", "a", &wgkey(1), "172.16.0.10")
            .p2s_client("hub-gw", "b", &wgkey(2), "172.16.0.10"))
    }),
    (P2s2, "too_many", || {
        validate_with(
            &build(with_pool(hub()).p2s_client("hub-gw", "a", &wgkey(1), "172.16.0.10")),
            &tight(30, 0, &[]),
        )
    }),
    (P2s2, "too_many_resize", || {
        validate_with(
            &build(with_pool(hub()).p2s_client("hub-gw", "a", &wgkey(1), "172.16.0.10")),
            &tight(30, 0, &[Sku::VpnGw5]),
        )
    }),
];

fn with_pool_policy_branch() -> Vec<Violation> {
    v(with_pool(policy_branch()))
}

/// PFX-5 to PFX-8: one site prefix in each reserved range.
fn reserved() -> Vec<Violation> {
    v(hub().site(
        "b",
        "203.0.113.1",
        &[
            "0.0.0.0/8",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "224.0.0.0/4",
            "fe80::/10",
            "ff00::/8",
            "::1/128",
        ],
    ))
}

/// (rule, case) pairs of the catalogue no topology can produce, and why.
const UNREACHABLE: &[(RuleId, &str)] = &[
    // A tenant whose address space overlaps another tenant's in one routing domain always owns
    // one half of a cross-tenant pair there (both halves must exist to join tenants), so the
    // sentence without a connection name is a fallback that the sweep never needs.
    (Lim3, "foreign"),
];

/// The other-tenant answer of `visible_to`: only another tenant's resource breaks a rule.
fn other_tenant() -> Vec<Violation> {
    let t = build(
        hub()
            .tenant("globex")
            .site("x", "203.0.113.1", &["192.168.1.1/24"]),
    );
    let mine: BTreeSet<&str> = ["acme"].into_iter().collect();
    visible_to(validate(&t), &mine)
}

/// Every scenario's violations, with the scenario's label.
fn all_violations() -> Vec<(String, Violation)> {
    let mut out = Vec::new();
    for (rule, case, f) in SCENARIOS {
        for x in f() {
            out.push((format!("{rule} {case:?}"), x));
        }
    }
    for x in other_tenant() {
        out.push(("other tenant".to_owned(), x));
    }
    out
}

#[test]
fn every_rule_and_case_of_the_catalogue_is_built_by_its_scenario() {
    for (rule, case, f) in SCENARIOS {
        let got = f();
        assert!(
            got.iter().any(|x| x.rule == *rule && case_of(x) == *case),
            "the {rule} {case:?} scenario does not produce it:\n{}",
            crate::common::pretty(&got)
        );
    }
    let built: BTreeSet<(RuleId, &str)> = SCENARIOS.iter().map(|(r, c, _)| (*r, *c)).collect();
    for (rule, case) in messages::cases() {
        assert!(
            built.contains(&(rule, case)) || UNREACHABLE.contains(&(rule, case)),
            "no scenario builds {rule} {case:?}"
        );
    }
    assert!(
        other_tenant()
            .iter()
            .any(|x| case_of(x) == OTHER_TENANT && x.params.contains_key("rule")),
        "{:?}",
        other_tenant()
    );
}

#[test]
fn every_violation_has_templates_whose_placeholders_its_params_fill() {
    for (label, x) in all_violations() {
        let case = case_of(&x);
        for lang in [Lang::En, Lang::Ja] {
            let t = template(x.rule, case, lang).unwrap_or_else(|| {
                panic!(
                    "{label}: {} {case:?} has no {lang:?} template: {}",
                    x.rule, x.message
                )
            });
            for key in placeholders(t) {
                assert!(
                    messages::value(lang, key, &x.params).is_some(),
                    "{label}: {} {case:?} ({lang:?}): no param fills {{{key}}}: {:?}",
                    x.rule,
                    x.params
                );
            }
            let text = messages::violation(&x, lang);
            assert!(!text.contains('{'), "{label} ({lang:?}): {text}");
        }
        assert_eq!(
            messages::violation(&x, Lang::En),
            x.message,
            "{label}: the English template says something else than the message"
        );
    }
}

/// English words a Japanese rendering may contain, beyond the violation's own facts (names,
/// prefixes, addresses and numbers, removed before the check):
const ALLOWED: &[&str] = &[
    // Kinds and types as the portal and the API spell them (VNet, SKUs, gateway types, the
    // reserved subnet name, the connection kind, a field of the API).
    "VNet",
    "SKU",
    "VpnGw1",
    "RouteBased",
    "PolicyBased",
    "GatewaySubnet",
    "VnetToVnet",
    "additional_vnets",
    // Protocols, standards and tools.
    "IPv4",
    "IPv6",
    "WireGuard",
    // A WireGuard configuration key (what a site device is told to route).
    "AllowedIPs",
    "ASCII",
    "VPN",
    "DNS",
    "UDP",
    "RFC",
    "NAT",
    "base64",
    "wg",
    "pubkey",
    "--public-address",
    // IPsec words and fields (issue 17).
    "IPsec",
    "IKE",
    "SA",
    "CHILD",
    "KB",
    "ID",
    "user",
    "Default",
    "protocol",
    "ipsec_policy",
    "connection_mode",
    // Character ranges of a shared key.
    "A-Z",
    "a-z",
    "0-9",
];

/// The runs of ASCII letters, digits, '-' and '_' of `text` that contain a letter.
fn ascii_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(|w| w.trim_matches('-'))
        .filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()))
}

/// The English words of a Japanese rendering: its ASCII words that are no word of a param's
/// value (a fact: names, prefixes; the values of term params, which are translated, do not
/// count), of the allow-list, no rule id (`LIM-5`) and no hex group of an IPv6 prefix (`fd00`).
fn english_words(text: &str, params: &BTreeMap<String, String>) -> Vec<String> {
    let facts: BTreeSet<&str> = params
        .iter()
        // `error` is the English sentence of a parse error, no fact.
        .filter(|(k, x)| *k != "error" && messages::term(Lang::Ja, k, x).is_none())
        .flat_map(|(_, x)| ascii_words(x))
        .collect();
    english_words_beside(text, &facts)
}

/// The ASCII words of `text` that are not in `facts`, the allow-list, a rule id or a hex group.
fn english_words_beside(text: &str, facts: &BTreeSet<&str>) -> Vec<String> {
    let rule_id = |w: &str| {
        w.split_once('-').is_some_and(|(a, b)| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && !b.is_empty()
                && b.chars().all(|c| c.is_ascii_digit())
        })
    };
    let hex = |w: &str| w.chars().all(|c| c.is_ascii_hexdigit()) && w.len() <= 4;
    ascii_words(text)
        .filter(|w| {
            !ALLOWED.contains(w)
                && !ALLOWED.contains(&format!("--{w}").as_str())
                && !rule_id(w)
                && !facts.contains(w)
                && !hex(w)
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn japanese_renderings_of_every_violation_contain_no_english_words() {
    for (label, x) in all_violations() {
        let ja = messages::violation(&x, Lang::Ja);
        let words = english_words(&ja, &x.params);
        assert!(
            words.is_empty(),
            "{label}: English words {words:?} in: {ja}"
        );
    }
}

#[test]
fn lim_3_a_site_overlapping_a_vnet_of_its_tenant_warns_naming_the_vnet() {
    let got = v(hub().site("branch", "203.0.113.1", &["192.168.1.0/24", "10.0.5.0/24"]));
    let w: Vec<&Violation> = got.iter().filter(|x| x.rule == Lim3).collect();
    assert_eq!(w.len(), 1, "{}", crate::common::pretty(&got));
    let w = w[0];
    assert!(!w.is_error());
    assert_eq!(w.path, "tenants[acme].sites[branch].address_prefixes[1]");
    assert_eq!(w.related, ["tenants[acme].vnets[hub].address_space[0]"]);
    assert_eq!(w.params["vnet"], "hub");
    assert!(w.message.contains("cannot be connected to VNet \"hub\""));
    assert!(messages::violation(w, Lang::Ja).contains("VNet「hub」に接続できません"));
    // Connected, it is the error only; another tenant's VNet is none of its business.
    let connected = v(hub()
        .site("branch", "203.0.113.1", &["10.0.5.0/24"])
        .s2s("c", "hub-gw", "branch"));
    let lim3: Vec<&Violation> = connected.iter().filter(|x| x.rule == Lim3).collect();
    assert_eq!(lim3.len(), 1);
    assert!(lim3[0].is_error());
    let other = v(hub()
        .tenant("globex")
        .site("branch", "203.0.113.1", &["10.0.5.0/24"]));
    assert!(!other.iter().any(|x| x.rule == Lim3), "{other:?}");
}

/// Topologies whose paths take every kind of hop: transit, half and disabled tunnels, IPv6,
/// point-to-site clients and pools, PolicyBased selectors, forced tunneling, appliances and
/// private circuits, tenants that reuse address space.
fn walk_topologies() -> Vec<isthmus_shared::model::Topology> {
    vec![
        crate::routes::ring(),
        build(
            spoke(hub(), "a", "10.1", "westeurope")
                .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
                .edit_connection("a-hub", |c| c.enabled = false),
        ),
        build(spoke(hub(), "a", "10.1", "westeurope").v2v("hub-a", "hub-gw", None, "a-gw")),
        build(
            TopologyBuilder::new("acme")
                .vnet("one", "westeurope", &["2001:db8:1::/48"])
                .gateway_subnet("one", "2001:db8:1:ff::/64")
                .gateway("one-gw", "one", GatewayType::RouteBased, Sku::VpnGw1)
                .vnet("two", "westeurope", &["2001:db8:2::/48"])
                .gateway_subnet("two", "2001:db8:2:ff::/64")
                .gateway("two-gw", "two", GatewayType::RouteBased, Sku::VpnGw1)
                .v2v_pair("one-two", "one-gw", "two-one", "two-gw"),
        ),
        build(
            branch(spoke(hub(), "a", "10.1", "westeurope"))
                .v2v_pair("hub-a", "hub-gw", "a-hub", "a-gw")
                .p2s("hub-gw", &["172.16.0.0/24"])
                .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.2"),
        ),
        build(policy_branch().selector("hub-branch", "10.0.0.0/30", "192.168.1.0/24")),
        build(branch(hub()).edit_gateway("hub-gw", |g| {
            g.forced_tunneling_site = Some("branch".into())
        })),
        build(
            branch(hub())
                .appliance("hub", "nva", "10.0.1.4", &["172.30.0.0/16"])
                .private_circuit("hub", "er", &["192.168.1.0/24", "172.20.0.0/16"]),
        ),
        build(
            branch(hub())
                .edit_connection("hub-branch", |c| c.enabled = false)
                .tenant("globex")
                .vnet("hub", "westeurope", &["10.0.0.0/16"]),
        ),
    ]
}

/// A few addresses in every VNet, site and pool of `t`, and two Internet hosts.
fn addresses(t: &isthmus_shared::model::Topology) -> Vec<std::net::IpAddr> {
    let mut nets: Vec<ipnet::IpNet> = Vec::new();
    for x in &t.vnets {
        nets.extend(&x.address_space);
    }
    for x in &t.sites {
        nets.extend(&x.address_prefixes);
    }
    for x in &t.point_to_site {
        nets.extend(&x.address_pool);
    }
    let mut out: Vec<std::net::IpAddr> = vec![
        "8.8.8.8".parse().unwrap(),
        "2001:4860::8888".parse().unwrap(),
    ];
    for n in nets {
        let hosts: Vec<std::net::IpAddr> = n.hosts().skip(1).step_by(3).take(3).collect();
        out.extend(hosts);
    }
    for c in t.point_to_site.iter().flat_map(|p| &p.clients) {
        out.push(c.address);
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_hop_reason_renders_in_english_as_its_reason_and_in_japanese_filled() {
    use isthmus_shared::routes::{Outcome, next_hop_in};
    let mut hops = 0;
    let mut kinds = BTreeSet::new();
    for t in walk_topologies() {
        let addrs = addresses(&t);
        for tenant in t
            .tenants
            .iter()
            .map(|x| Some(x.name.as_str()))
            .chain([None])
        {
            for &src in &addrs {
                for &dst in &addrs {
                    let p = match next_hop_in(&t, tenant, src, dst) {
                        Ok(p) => p,
                        Err(e) => {
                            let ja = messages::next_hop_error(&e, Lang::Ja);
                            assert!(!ja.contains('{') && !ja.is_empty(), "{ja}");
                            continue;
                        }
                    };
                    for h in &p.hops {
                        hops += 1;
                        kinds.insert(
                            format!("{:?}", h.why)
                                .split([' ', '{', '('])
                                .next()
                                .map(str::to_owned),
                        );
                        assert_eq!(
                            messages::hop_reason(&h.why, Lang::En).as_deref(),
                            Some(h.reason.as_str()),
                            "{src} → {dst}: {:?}",
                            h.why
                        );
                        let ja = messages::hop(h, Lang::Ja);
                        assert!(!ja.contains('{') && ja != h.reason, "{src} → {dst}: {ja}");
                        // The facts of a hop: every string in its structured reason but the
                        // variant's tag.
                        let why = serde_json::to_value(&h.why).unwrap();
                        let mut strings = Vec::new();
                        json_strings(&why, &mut strings);
                        let facts: BTreeSet<&str> =
                            strings.iter().flat_map(|x| ascii_words(x)).collect();
                        let words = english_words_beside(&ja, &facts);
                        assert!(words.is_empty(), "English words {words:?} in: {ja}");
                        let ja = messages::next_hop(&h.next_hop, Lang::Ja);
                        assert!(!ja.contains('{'), "{ja}");
                        let ja = messages::location(&h.at, Lang::Ja);
                        assert!(!ja.contains('{'), "{ja}");
                    }
                    if let Outcome::Dropped { reason, why } = &p.outcome {
                        assert_eq!(
                            messages::hop_reason(why, Lang::En).as_deref(),
                            Some(reason.as_str())
                        );
                    }
                    let ja = messages::outcome(&p.outcome, Lang::Ja);
                    assert!(!ja.contains('{'), "{ja}");
                }
            }
        }
    }
    assert!(hops > 1000, "only {hops} hops walked");
    // Every HopReason but Unknown (older producers), NoRoute (every gateway table has a
    // default route) and GatewayToInternet (no walk here takes an Internet-bound packet to a
    // gateway that sends it out).
    assert!(
        kinds.len() >= 21,
        "only {} kinds of hops: {kinds:?}",
        kinds.len()
    );
}

/// The string values of `v`, except the `type` tags of enums.
fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(x) => out.push(x.clone()),
        serde_json::Value::Array(xs) => xs.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k != "type" {
                    json_strings(x, out);
                }
            }
        }
        _ => {}
    }
}
