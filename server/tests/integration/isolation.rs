//! Tenants that cannot block or see each other over HTTP (issue 13, items 1-4, 10-13): lone
//! cross-tenant halves bind nobody, answers name no foreign resource, REF-1 does not tell a
//! missing tenant from a foreign one, cross-tenant key mismatches are accepted, reserved ranges
//! and port 0 are refused, refused deletes say what to delete first, NAME-2 is the shared rule.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn vnet(name: &str, space: &[&str], gw_subnet: &str) -> Value {
    json!({"name": name, "region": "westeurope", "address_space": space,
           "subnets": [{"name": "GatewaySubnet", "prefix": gw_subnet}]})
}

fn half(name: &str, gw: &str, remote_tenant: &str, remote: &str, key: &str) -> Value {
    json!({"name": name, "gateway": gw, "shared_key": key,
           "kind": {"type": "VnetToVnet", "remote_gateway": {"tenant": remote_tenant, "name": remote}}})
}

fn device_key(name: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(name.as_bytes()))
}

/// `who` creates tenant `t` with VNet `{p}-net` (`space`/16 given as "10.x") and gateway
/// `{p}-gw`.
async fn tenant_with_gateway(app: &TestApp, who: &Cred, t: &str, p: &str, octets: &str) {
    created(app, who, "/api/v1/tenants", json!({"name": t})).await;
    created(
        app,
        who,
        &format!("/api/v1/tenants/{t}/vnets"),
        vnet(
            &format!("{p}-net"),
            &[&format!("{octets}.0.0/16")],
            &format!("{octets}.255.0/27"),
        ),
    )
    .await;
    created(
        app,
        who,
        &format!("/api/v1/tenants/{t}/gateways"),
        json!({"name": format!("{p}-gw"), "vnet": format!("{p}-net"),
               "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    )
    .await;
}

/// Alice owns `sec-a` (alpha-net 10.10.0.0/16, alpha-gw), Bob owns `sec-b` (beta-net
/// 10.20.0.0/16, beta-gw).
async fn two_tenants(app: &TestApp) -> (Cred, Cred) {
    let alice = user(app, "alice").await;
    let bob = user(app, "bob").await;
    tenant_with_gateway(app, &alice, "sec-a", "alpha", "10.10").await;
    tenant_with_gateway(app, &bob, "sec-b", "beta", "10.20").await;
    (alice, bob)
}

fn warnings(body: &Value) -> Vec<Value> {
    body["warnings"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn conn_2_lim_3_ref_1_a_lone_half_of_another_tenant_never_blocks_its_owner() {
    let app = test_app().await;
    let (alice, bob) = two_tenants(&app).await;
    // Bob's lone half towards Alice's gateway: accepted, waiting, told to Bob only.
    let r = post(
        &app,
        &bob,
        "/api/v1/tenants/sec-b/connections",
        half("beta-link", "beta-gw", "sec-a", "alpha-gw", "PairKey1"),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let w = warnings(&r.json());
    assert!(
        w.iter().any(|x| x["rule"] == "CONN-2"
            && x["params"]["status"] == "waiting for the other half"
            && x["path"] == "tenants[sec-b].connections[beta-link].kind.remote_gateway"),
        "{w:?}"
    );
    // Alice connects a site overlapping Bob's VNet (no LIM-3: Bob's half binds nobody)...
    let r = post(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/sites",
        json!({"name": "alpha-site", "device_host": "203.0.113.20",
               "address_prefixes": ["10.20.0.0/24"], "device_public_key": device_key("a")}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let r = post(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/connections",
        json!({"name": "alpha-s2s", "gateway": "alpha-gw",
               "kind": {"type": "SiteToSite", "site": "alpha-site"}}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(!body.contains("sec-b") && !body.contains("beta"), "{body}");
    // ... and deletes her own gateway (no REF-1 about Bob's half).
    let r = delete(&app, &alice, "/api/v1/tenants/sec-a/connections/alpha-s2s").await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = delete(&app, &alice, "/api/v1/tenants/sec-a/gateways/alpha-gw").await;
    assert_status(&r, StatusCode::NO_CONTENT);
    // Bob's half still waits; his next write says so, and nothing else about Alice.
    let r = post(
        &app,
        &bob,
        "/api/v1/tenants/sec-b/vnets",
        vnet("beta-two", &["10.30.0.0/16"], "10.30.255.0/27"),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let w = warnings(&r.json());
    assert!(
        w.iter()
            .all(|x| x["path"].as_str().unwrap().starts_with("tenants[sec-b].")),
        "{w:?}"
    );
    let waiting: Vec<&Value> = w.iter().filter(|x| x["rule"] == "CONN-2").collect();
    assert_eq!(waiting.len(), 1, "{w:?}");
    assert_eq!(waiting[0]["params"]["status"], "waiting for the other half");
}

#[tokio::test]
async fn lim_3_conn_4_no_foreign_names_or_prefixes_in_a_422_or_in_warnings() {
    let app = test_app().await;
    let (alice, bob) = two_tenants(&app).await;
    // Alice: a site on a private device address (a CONN-4 warning of hers), its connection, a
    // point-to-site pool; and her half towards Bob (she consents).
    created(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/sites",
        json!({"name": "alpha-site", "device_host": "10.250.0.1",
               "address_prefixes": ["192.168.77.0/24"], "device_public_key": device_key("a")}),
    )
    .await;
    created(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/connections",
        json!({"name": "alpha-s2s", "gateway": "alpha-gw",
               "kind": {"type": "SiteToSite", "site": "alpha-site"}}),
    )
    .await;
    created(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/point-to-site",
        json!({"gateway": "alpha-gw", "address_pool": ["172.31.5.0/24"]}),
    )
    .await;
    created(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/connections",
        half("alpha-link", "alpha-gw", "sec-b", "beta-gw", "PairKey1"),
    )
    .await;
    created(
        &app,
        &bob,
        "/api/v1/tenants/sec-b/connections",
        half("beta-link", "beta-gw", "sec-a", "alpha-gw", "PairKey1"),
    )
    .await;
    let foreign = [
        "sec-a",
        "alpha",
        "alice",
        "10.10.0.0/16",
        "10.10.255.0/27",
        "192.168.77.0/24",
        "172.31.5.0/24",
        "10.250.0.1",
    ];
    let grep = |what: &str, r: &Answer| {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        for f in foreign {
            assert!(!body.contains(f), "{what}: {f} leaks in {body}");
        }
    };
    // Bob's write is answered with his warnings only (not Alice's CONN-4).
    let r = post(
        &app,
        &bob,
        "/api/v1/tenants/sec-b/vnets",
        vnet("beta-two", &["10.30.0.0/16"], "10.30.255.0/27"),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    grep("POST vnets", &r);
    // Bob declares his VNet over all private space: refused, about his own VNet only.
    let r = put(
        &app,
        &bob,
        "/api/v1/tenants/sec-b/vnets/beta-net",
        json!({"region": "westeurope",
               "address_space": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
               "subnets": [{"name": "GatewaySubnet", "prefix": "10.20.255.0/27"}]}),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    grep("PUT beta-net", &r);
    let v = r.json()["violations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!v.is_empty());
    for x in &v {
        assert_eq!(x["rule"], "LIM-3", "{x}");
        assert!(
            x["path"]
                .as_str()
                .unwrap()
                .starts_with("tenants[sec-b].vnets[beta-net].address_space["),
            "{x}"
        );
        assert!(
            x["message"]
                .as_str()
                .unwrap()
                .contains("an address space of another tenant that this connection reaches"),
            "{x}"
        );
    }
}

#[tokio::test]
async fn ref_1_a_half_towards_a_missing_or_a_foreign_tenant_answers_the_same() {
    let mut answers = Vec::new();
    for other in ["none", "tenant", "gateway"] {
        let app = test_app().await;
        let bob = user(&app, "bob").await;
        tenant_with_gateway(&app, &bob, "sec-b", "beta", "10.20").await;
        let alice = user(&app, "alice").await;
        match other {
            "tenant" => {
                created(&app, &alice, "/api/v1/tenants", json!({"name": "sec-a"})).await;
            }
            "gateway" => tenant_with_gateway(&app, &alice, "sec-a", "alpha", "10.10").await,
            _ => {}
        }
        let r = post(
            &app,
            &bob,
            "/api/v1/tenants/sec-b/connections",
            half("beta-link", "beta-gw", "sec-a", "alpha-gw", "PairKey1"),
        )
        .await;
        assert_status(&r, StatusCode::CREATED);
        let body = r.json();
        answers.push((
            body["resource"].to_string(),
            serde_json::to_string(&body["warnings"]).unwrap(),
        ));
    }
    assert_eq!(
        answers[0], answers[1],
        "a missing tenant vs a foreign tenant"
    );
    assert_eq!(
        answers[0], answers[2],
        "a missing tenant vs a foreign gateway"
    );
    assert!(
        answers[0]
            .1
            .contains("does not exist or is not shared with you"),
        "{}",
        answers[0].1
    );
}

#[tokio::test]
async fn gw_4_conn_2_cross_tenant_halves_with_different_keys_are_a_key_mismatch() {
    let app = test_app().await;
    let (alice, bob) = two_tenants(&app).await;
    created(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/connections",
        half("alpha-link", "alpha-gw", "sec-b", "beta-gw", "AlphaKey1"),
    )
    .await;
    // Bob's half with another key is accepted, shown as a key mismatch on his half.
    let r = post(
        &app,
        &bob,
        "/api/v1/tenants/sec-b/connections",
        half("beta-link", "beta-gw", "sec-a", "alpha-gw", "BetaKey2"),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let w = warnings(&r.json());
    let mismatch: Vec<&Value> = w
        .iter()
        .filter(|x| x["params"]["status"] == "key mismatch")
        .collect();
    assert_eq!(mismatch.len(), 1, "{w:?}");
    assert_eq!(
        mismatch[0]["path"],
        "tenants[sec-b].connections[beta-link].shared_key"
    );
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        !body.contains("alpha-link") && !body.contains("AlphaKey1"),
        "{body}"
    );
    // Alice sets her half to Bob's key: accepted, and the mismatch is gone.
    let r = put(
        &app,
        &alice,
        "/api/v1/tenants/sec-a/connections/alpha-link",
        json!({"gateway": "alpha-gw", "shared_key": "BetaKey2",
               "kind": {"type": "VnetToVnet", "remote_gateway": {"tenant": "sec-b", "name": "beta-gw"}}}),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    assert!(
        warnings(&r.json())
            .iter()
            .all(|x| x["params"]["status"] != "key mismatch"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[tokio::test]
async fn pfx_4_pfx_5_pfx_6_pfx_7_port_1_reserved_ranges_and_port_0_are_refused() {
    let app = test_app().await;
    let a = admin(&app).await;
    created(&app, &a, "/api/v1/tenants", json!({"name": "acme"})).await;
    for (space, rule) in [
        ("0.0.0.0/0", "PFX-4"),
        ("::/0", "PFX-4"),
        ("224.0.0.0/24", "PFX-5"),
        ("127.0.0.0/8", "PFX-6"),
        ("169.254.0.0/16", "PFX-7"),
        ("fe80::/10", "PFX-7"),
    ] {
        let r = post(
            &app,
            &a,
            "/api/v1/tenants/acme/vnets",
            json!({"name": "v", "region": "westeurope", "address_space": [space], "subnets": []}),
        )
        .await;
        assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(rules_of(&r), [rule], "{space}");
    }
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/sites",
        json!({"name": "s", "device_host": "203.0.113.7", "device_port": 0,
               "address_prefixes": ["192.168.1.0/24"]}),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rules_of(&r), ["PORT-1"]);
}

#[tokio::test]
async fn ref_1_a_refused_delete_says_what_still_uses_the_resource() {
    let app = test_app().await;
    let a = admin(&app).await;
    tenant_with_gateway(&app, &a, "acme", "hub", "10.0").await;
    let r = delete(&app, &a, "/api/v1/tenants/acme/vnets/hub-net").await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let v = &r.json()["violations"];
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["rule"], "REF-1");
    assert_eq!(v[0]["path"], "tenants[acme].vnets[hub-net]");
    assert_eq!(
        v[0]["message"],
        "VNet \"hub-net\" is still used by gateway \"hub-gw\"; delete the gateway first"
    );
}

#[tokio::test]
async fn name_2_tenant_names_follow_the_shared_limit() {
    let app = test_app().await;
    let a = admin(&app).await;
    let max = isthmus_shared::validate::MAX_NAME_LEN;
    let r = post(
        &app,
        &a,
        "/api/v1/tenants",
        json!({"name": "t".repeat(max)}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let r = post(
        &app,
        &a,
        "/api/v1/tenants",
        json!({"name": "t".repeat(max + 1)}),
    )
    .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        body.contains("NAME-2") && body.contains(&max.to_string()),
        "{body}"
    );
}
