//! The situations of the FAQ, table-driven: each row builds a topology a user might write and
//! names the rule that must reject it, and a fragment of the message that must explain it.

use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::model::{GatewayType, RootCertificate, Sku};
use isthmus_shared::rules::RuleId;
use isthmus_shared::validate::validate;

use crate::common::{build, hub, hub_with, pretty, spoke, wgkey};

struct Case {
    name: &'static str,
    topology: fn() -> TopologyBuilder,
    rule: RuleId,
    message: &'static str,
}

fn sites(mut b: TopologyBuilder, n: usize) -> TopologyBuilder {
    for i in 0..n {
        let (hi, lo) = (i / 200, i % 200);
        b = b
            .site(
                &format!("site{i}"),
                &format!("198.51.{hi}.{}", lo + 1),
                &[&format!("172.{}.{lo}.0/24", 16 + hi)],
            )
            .s2s(&format!("c{i}"), "hub-gw", &format!("site{i}"));
    }
    b
}

const CASES: &[Case] = &[
    Case {
        name: "a /30 GatewaySubnet",
        topology: || {
            TopologyBuilder::new("acme")
                .vnet("hub", "westeurope", &["10.0.0.0/16"])
                .gateway_subnet("hub", "10.0.255.0/30")
                .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
        },
        rule: RuleId::Gw7,
        message: "10.0.255.0/30 is too small",
    },
    Case {
        name: "point-to-site on a PolicyBased gateway",
        topology: || {
            hub_with(GatewayType::PolicyBased, Sku::Basic).p2s("hub-gw", &["172.16.0.0/24"])
        },
        rule: RuleId::P2s1,
        message: "point-to-site works only on RouteBased gateways",
    },
    Case {
        name: "a PolicyBased gateway with a second site",
        topology: || {
            hub_with(GatewayType::PolicyBased, Sku::Basic)
                .site("a", "203.0.113.1", &["192.168.1.0/24"])
                .site("b", "203.0.113.2", &["192.168.2.0/24"])
                .s2s("to-a", "hub-gw", "a")
                .s2s("to-b", "hub-gw", "b")
        },
        rule: RuleId::Conn3,
        message: "connects to exactly one site",
    },
    Case {
        name: "a VNet-to-VNet with one PolicyBased end",
        topology: || {
            spoke(hub(), "spoke", "10.1", "eastus")
                .edit_gateway("spoke-gw", |g| g.gateway_type = GatewayType::PolicyBased)
                .v2v_pair("hub-spoke", "hub-gw", "spoke-hub", "spoke-gw")
        },
        rule: RuleId::Gw6,
        message: "RouteBased gateways on both ends",
    },
    Case {
        name: "an 11th connection on Standard",
        topology: || sites(hub_with(GatewayType::RouteBased, Sku::Standard), 11),
        rule: RuleId::Lim1,
        message: "has 11 connections but SKU Standard allows 10",
    },
    Case {
        name: "a 31st connection on HighPerformance",
        topology: || sites(hub_with(GatewayType::RouteBased, Sku::HighPerformance), 31),
        rule: RuleId::Lim1,
        message: "has 31 connections but SKU HighPerformance allows 30",
    },
    Case {
        name: "a 21st root certificate",
        topology: || {
            hub()
                .p2s("hub-gw", &["172.16.0.0/24"])
                .edit_p2s("hub-gw", |p| {
                    p.root_certificates = (0..21)
                        .map(|i| RootCertificate {
                            name: format!("root{i}"),
                            data: format!("thumb{i}"),
                        })
                        .collect();
                })
        },
        rule: RuleId::P2s3,
        message: "21 root certificates are uploaded; at most 20",
    },
    Case {
        name: "a 129-character shared key",
        topology: || {
            hub()
                .site("branch", "203.0.113.1", &["192.168.1.0/24"])
                .s2s("c", "hub-gw", "branch")
                .shared_key("c", &"a".repeat(129))
        },
        rule: RuleId::Gw5,
        message: "129 characters long; at most 128",
    },
    Case {
        name: "a shared key with a dash",
        topology: || {
            hub()
                .site("branch", "203.0.113.1", &["192.168.1.0/24"])
                .s2s("c", "hub-gw", "branch")
                .shared_key("c", "abc-123")
        },
        rule: RuleId::Gw5,
        message: "contains '-' at position 4",
    },
    Case {
        name: "a site overlapping the VNet",
        topology: || {
            hub()
                .site("branch", "203.0.113.1", &["10.0.5.0/24"])
                .s2s("c", "hub-gw", "branch")
        },
        rule: RuleId::Lim3,
        message: "10.0.5.0/24 of site \"branch\" (tenant \"acme\") overlaps 10.0.0.0/16 of VNet \"hub\"",
    },
    Case {
        name: "a site overlapping a VNet reached through transit",
        topology: || {
            let b = spoke(
                spoke(hub(), "spoke1", "10.1", "westeurope"),
                "spoke2",
                "10.2",
                "westeurope",
            );
            b.v2v_pair("hub-s1", "hub-gw", "s1-hub", "spoke1-gw")
                .v2v_pair("hub-s2", "hub-gw", "s2-hub", "spoke2-gw")
                .site("branch", "203.0.113.1", &["10.2.7.0/24"])
                .s2s("s1-branch", "spoke1-gw", "branch")
        },
        rule: RuleId::Lim3,
        message: "through transit",
    },
    Case {
        name: "a P2S pool overlapping a VNet reached through transit",
        topology: || {
            let b = spoke(
                spoke(hub(), "spoke1", "10.1", "westeurope"),
                "spoke2",
                "10.2",
                "westeurope",
            );
            b.v2v_pair("hub-s1", "hub-gw", "s1-hub", "spoke1-gw")
                .v2v_pair("s1-s2", "spoke1-gw", "s2-s1", "spoke2-gw")
                .p2s("hub-gw", &["10.2.128.0/24"])
        },
        rule: RuleId::Lim3,
        message: "the point-to-site pool of gateway \"hub-gw\"",
    },
    Case {
        name: "a P2S pool overlapping an additional VNet of a multi-VNet client",
        topology: || {
            spoke(hub(), "other", "10.1", "eastus")
                .p2s("hub-gw", &["10.1.200.0/24"])
                .edit_p2s("hub-gw", |p| p.additional_vnets.push("other".into()))
        },
        rule: RuleId::P2s6,
        message: "the client address pool must not overlap",
    },
    Case {
        name: "host bits set",
        topology: || {
            TopologyBuilder::new("acme")
                .vnet("hub", "westeurope", &["10.0.0.1/24"])
                .gateway_subnet("hub", "10.0.0.0/27")
                .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
        },
        rule: RuleId::Pfx1,
        message: "10.0.0.1/24 has host bits set; did you mean 10.0.0.0/24?",
    },
    Case {
        name: "an IPv6 host-bits prefix",
        topology: || TopologyBuilder::new("acme").vnet("v6", "westeurope", &["2001:db8::1/64"]),
        rule: RuleId::Pfx1,
        message: "2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?",
    },
];

#[test]
fn faq_situations_are_rejected_with_a_useful_message() {
    for case in CASES {
        let t = build((case.topology)());
        let v = validate(&t);
        let hit = v
            .iter()
            .find(|x| x.rule == case.rule && x.message.contains(case.message));
        assert!(
            hit.is_some(),
            "{}: expected {} with message containing {:?}, got:\n{}",
            case.name,
            case.rule,
            case.message,
            pretty(&v)
        );
    }
}

#[test]
fn faq_baselines_are_valid() {
    // The same shapes, done right, produce no violation at all.
    let key = wgkey(9);
    let ok = hub()
        .site("branch", "203.0.113.1", &["192.168.1.0/24"])
        .s2s("c", "hub-gw", "branch")
        .shared_key("c", &"a".repeat(128))
        .p2s("hub-gw", &["172.16.0.0/24"])
        .p2s_client("hub-gw", "laptop", &key, "172.16.0.10");
    crate::common::assert_valid(&build(ok));
}

/// Every violation of every FAQ situation renders in English exactly as its message when its
/// (rule, case) has a template, and in Japanese with every placeholder filled.
#[test]
fn faq_violations_render_in_both_languages_from_their_params() {
    use isthmus_shared::messages::{self, Lang};
    for case in CASES {
        for v in validate(&build((case.topology)())) {
            let ja = messages::violation(&v, Lang::Ja);
            assert!(!ja.contains('{'), "{}: {ja}", case.name);
            if messages::template(v.rule, messages::case_of(&v), Lang::En).is_some() {
                assert_eq!(
                    messages::violation(&v, Lang::En),
                    v.message,
                    "{}",
                    case.name
                );
            }
        }
    }
}
