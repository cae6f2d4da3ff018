//! The FAQ situations of the topology rules, over HTTP: each topology is written resource by
//! resource through the API, as a user would, and the write that breaks the rule must be
//! refused with a 422 naming it (and nothing of that write saved).

use axum::http::StatusCode;
use isthmus_shared::builder::TopologyBuilder;
use isthmus_shared::model::{GatewayType, RootCertificate, Sku, Topology};
use serde_json::{Value, json};

use crate::support::*;

fn hub() -> TopologyBuilder {
    TopologyBuilder::new("acme")
        .vnet("hub", "westeurope", &["10.0.0.0/16"])
        .gateway_subnet("hub", "10.0.255.0/27")
        .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
}

fn hub_with(ty: GatewayType, sku: Sku) -> TopologyBuilder {
    hub().edit_gateway("hub-gw", |g| {
        g.gateway_type = ty;
        g.sku = sku;
    })
}

fn spoke(b: TopologyBuilder, name: &str, octets: &str) -> TopologyBuilder {
    b.vnet(name, "eastus", &[&format!("{octets}.0.0/16")])
        .gateway_subnet(name, &format!("{octets}.255.0/27"))
        .gateway(
            &format!("{name}-gw"),
            name,
            GatewayType::RouteBased,
            Sku::VpnGw1,
        )
}

fn sites(mut b: TopologyBuilder, n: usize) -> TopologyBuilder {
    for i in 0..n {
        b = b
            .site(
                &format!("s{i}"),
                &format!("203.0.113.{}", i + 1),
                &[&format!("172.16.{i}.0/24")],
            )
            .s2s(&format!("c{i}"), "hub-gw", &format!("s{i}"));
    }
    b
}

/// Writes every resource of `t` in dependency order; returns the first 422's rule ids.
async fn write_all(app: &TestApp, who: &Cred, t: &Topology) -> Option<(String, Vec<String>)> {
    let mut writes: Vec<(&str, Value)> = Vec::new();
    writes.extend(
        t.vnets
            .iter()
            .map(|x| ("vnets", serde_json::to_value(x).expect("model serialises"))),
    );
    writes.extend(t.gateways.iter().map(|x| {
        (
            "gateways",
            serde_json::to_value(x).expect("model serialises"),
        )
    }));
    writes.extend(
        t.sites
            .iter()
            .map(|x| ("sites", serde_json::to_value(x).expect("model serialises"))),
    );
    writes.extend(t.connections.iter().map(|x| {
        (
            "connections",
            serde_json::to_value(x).expect("model serialises"),
        )
    }));
    writes.extend(t.point_to_site.iter().map(|x| {
        (
            "point-to-site",
            serde_json::to_value(x).expect("model serialises"),
        )
    }));
    for (kind, body) in writes {
        let r = send(
            app,
            req(
                "POST",
                &format!("/api/v1/tenants/acme/{kind}"),
                who,
                Some(body.clone()),
            ),
        )
        .await;
        match r.status {
            StatusCode::CREATED => {}
            StatusCode::UNPROCESSABLE_ENTITY => {
                let rules = r.json()["violations"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x["rule"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let name = body["name"]
                    .as_str()
                    .or(body["gateway"].as_str())
                    .unwrap_or("")
                    .to_owned();
                // Nothing of the refused write was saved.
                let list = send(
                    app,
                    req("GET", &format!("/api/v1/tenants/acme/{kind}"), who, None),
                )
                .await
                .json();
                let key = if kind == "point-to-site" {
                    "gateway"
                } else {
                    "name"
                };
                assert!(
                    !list
                        .as_array()
                        .expect("a list")
                        .iter()
                        .any(|x| x[key] == name.as_str()),
                    "{kind} {name} was saved although refused"
                );
                return Some((format!("{kind}/{name}"), rules));
            }
            other => panic!(
                "{kind}: unexpected {other}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
    None
}

#[tokio::test]
async fn faq_situations_are_refused_over_http_with_their_rule() {
    let cases: Vec<(&str, TopologyBuilder, &str)> = vec![
        (
            "GW-7: a /30 GatewaySubnet",
            TopologyBuilder::new("acme")
                .vnet("hub", "westeurope", &["10.0.0.0/16"])
                .gateway_subnet("hub", "10.0.255.0/30")
                .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1),
            "GW-7",
        ),
        (
            "P2S-1: point-to-site on a PolicyBased gateway",
            hub_with(GatewayType::PolicyBased, Sku::Basic).p2s("hub-gw", &["172.16.0.0/24"]),
            "P2S-1",
        ),
        (
            "CONN-3: a PolicyBased gateway with a second site",
            hub_with(GatewayType::PolicyBased, Sku::Basic)
                .site("a", "203.0.113.1", &["192.168.1.0/24"])
                .site("b", "203.0.113.2", &["192.168.2.0/24"])
                .s2s("to-a", "hub-gw", "a")
                .s2s("to-b", "hub-gw", "b"),
            "CONN-3",
        ),
        (
            "GW-6: a VNet-to-VNet with one PolicyBased end",
            spoke(hub(), "spoke", "10.1")
                .edit_gateway("spoke-gw", |g| g.gateway_type = GatewayType::PolicyBased)
                .v2v_pair("hub-spoke", "hub-gw", "spoke-hub", "spoke-gw"),
            "GW-6",
        ),
        (
            "LIM-1: an 11th connection on Standard",
            sites(hub_with(GatewayType::RouteBased, Sku::Standard), 11),
            "LIM-1",
        ),
        (
            "LIM-1: a 31st connection on HighPerformance",
            sites(hub_with(GatewayType::RouteBased, Sku::HighPerformance), 31),
            "LIM-1",
        ),
        (
            "P2S-3: a 21st root certificate",
            hub()
                .p2s("hub-gw", &["172.16.0.0/24"])
                .edit_p2s("hub-gw", |p| {
                    p.root_certificates = (0..21)
                        .map(|i| RootCertificate {
                            name: format!("root{i}"),
                            data: format!("thumb{i}"),
                        })
                        .collect();
                }),
            "P2S-3",
        ),
        (
            "GW-5: a 129-character key",
            hub()
                .site("branch", "203.0.113.1", &["192.168.1.0/24"])
                .s2s("c", "hub-gw", "branch")
                .shared_key("c", &"a".repeat(129)),
            "GW-5",
        ),
        (
            "GW-5: a key with a dash",
            hub()
                .site("branch", "203.0.113.1", &["192.168.1.0/24"])
                .s2s("c", "hub-gw", "branch")
                .shared_key("c", "abc-123"),
            "GW-5",
        ),
        (
            "LIM-3: a site overlapping the VNet",
            hub()
                .site("branch", "203.0.113.1", &["10.0.5.0/24"])
                .s2s("c", "hub-gw", "branch"),
            "LIM-3",
        ),
        (
            "LIM-3: a P2S pool overlapping a VNet reached through transit",
            spoke(spoke(hub(), "spoke1", "10.1"), "spoke2", "10.2")
                .v2v_pair("hub-s1", "hub-gw", "s1-hub", "spoke1-gw")
                .v2v_pair("s1-s2", "spoke1-gw", "s2-s1", "spoke2-gw")
                .p2s("hub-gw", &["10.2.128.0/24"]),
            "LIM-3",
        ),
    ];
    for (name, builder, rule) in cases {
        let app = test_app().await;
        let a = admin(&app).await;
        let r = send(
            &app,
            req("POST", "/api/v1/tenants", &a, Some(json!({"name": "acme"}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let t = builder.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        let refused = write_all(&app, &a, &t).await;
        let (at, rules) = refused.unwrap_or_else(|| panic!("{name}: every write was accepted"));
        assert!(
            rules.iter().any(|r| r == rule),
            "{name}: refused at {at} with {rules:?}, expected {rule}"
        );
    }
}
