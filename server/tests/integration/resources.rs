//! Resources over HTTP: atomic validation (422 with every violation), server-owned fields,
//! sealed shared keys, device configurations, authorisation and racing writers.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// A distinct, well-formed WireGuard public key per site device (KEY-2 wants them unique).
fn device_key(name: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(name.as_bytes()))
}

async fn tenant(app: &TestApp, who: &Cred, name: &str) {
    created(app, who, "/api/v1/tenants", json!({"name": name})).await;
}

fn vnet(name: &str, space: &str, gw_subnet: &str) -> Value {
    json!({"name": name, "region": "westeurope", "address_space": [space],
           "subnets": [{"name": "GatewaySubnet", "prefix": gw_subnet}]})
}

fn gateway(name: &str, vnet: &str, ty: &str, sku: &str) -> Value {
    json!({"name": name, "vnet": vnet, "gateway_type": ty, "sku": sku})
}

fn site(name: &str, host: &str, prefix: &str) -> Value {
    json!({"name": name, "device_host": host, "address_prefixes": [prefix], "device_public_key": device_key(name)})
}

fn s2s(name: &str, gw: &str, site: &str) -> Value {
    json!({"name": name, "gateway": gw, "kind": {"type": "SiteToSite", "site": site}})
}

/// acme: VNet hub 10.0.0.0/16 with a RouteBased VpnGw1 gateway `hub-gw`.
async fn hub(app: &TestApp) -> Cred {
    hub_with(app, "RouteBased", "VpnGw1").await
}

/// [`hub`] plus site `branch` (192.168.1.0/24) and its connection `to-branch` to `hub-gw`.
async fn hub_with_branch(app: &TestApp) -> Cred {
    let a = hub(app).await;
    created(
        app,
        &a,
        "/api/v1/tenants/acme/sites",
        site("branch", "203.0.113.10", "192.168.1.0/24"),
    )
    .await;
    created(
        app,
        &a,
        "/api/v1/tenants/acme/connections",
        s2s("to-branch", "hub-gw", "branch"),
    )
    .await;
    a
}

/// Tenant `acme` with VNet `hub` (10.0.0.0/16) and its gateway `hub-gw` of `ty` and `sku`.
async fn hub_with(app: &TestApp, ty: &str, sku: &str) -> Cred {
    let a = admin(app).await;
    tenant(app, &a, "acme").await;
    created(
        app,
        &a,
        "/api/v1/tenants/acme/vnets",
        vnet("hub", "10.0.0.0/16", "10.0.255.0/27"),
    )
    .await;
    created(
        app,
        &a,
        "/api/v1/tenants/acme/gateways",
        gateway("hub-gw", "hub", ty, sku),
    )
    .await;
    a
}

#[tokio::test]
async fn gw_7_a_30_gateway_subnet_is_a_422_naming_rule_and_field() {
    let app = test_app().await;
    let a = admin(&app).await;
    tenant(&app, &a, "acme").await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        vnet("hub", "10.0.0.0/16", "10.0.255.0/30"),
    )
    .await;
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways",
        gateway("hub-gw", "hub", "RouteBased", "VpnGw1"),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let j = r.json();
    assert_eq!(j["error"], "validation_failed");
    assert!(j["message"].as_str().unwrap().contains("nothing was saved"));
    let v = &j["violations"][0];
    assert_eq!(v["rule"], "GW-7");
    assert!(v["path"].as_str().unwrap().contains("GatewaySubnet"), "{v}");
    assert!(v["message"].as_str().unwrap().contains("/29"), "{v}");
    let list = get_as(&app, &a, "/api/v1/tenants/acme/gateways").await;
    assert_eq!(list.json(), json!([]), "nothing was written");
}

#[tokio::test]
async fn lim_3_a_site_overlapping_the_vnet_is_refused_and_nothing_is_saved() {
    let app = test_app().await;
    let a = hub(&app).await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/sites",
        site("branch", "203.0.113.10", "10.0.5.0/24"),
    )
    .await;
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        s2s("to-branch", "hub-gw", "branch"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        rules_of(&r).contains(&"LIM-3".to_owned()),
        "{:?}",
        rules_of(&r)
    );
    let list = get_as(&app, &a, "/api/v1/tenants/acme/connections").await;
    assert_eq!(list.json(), json!([]));
}

#[tokio::test]
async fn p2s_1_point_to_site_on_a_policy_based_gateway_is_refused() {
    let app = test_app().await;
    let a = hub_with(&app, "PolicyBased", "Basic").await;
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/point-to-site",
        json!({"gateway": "hub-gw", "address_pool": ["172.16.0.0/24"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        rules_of(&r).contains(&"P2S-1".to_owned()),
        "{:?}",
        rules_of(&r)
    );
}

#[tokio::test]
async fn gw_3_endpoint_is_allocated_at_creation_and_changes_on_recreation() {
    let app = test_app().await;
    let a = hub(&app).await;
    let g = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json();
    let first = g["public_endpoint"].as_str().expect("allocated").to_owned();
    assert!(first.starts_with("127.0.0.1:"), "{first}");
    assert_eq!(g["public_key"].as_str().unwrap().len(), 44);
    // An update keeps the server-owned fields, whatever the body says.
    let r = put(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways/hub-gw",
        json!({"vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw2",
            "public_endpoint": "1.2.3.4:1"}),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.json()["resource"]["public_endpoint"], first);
    let d = delete(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let again = created(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways",
        gateway("hub-gw", "hub", "RouteBased", "VpnGw1"),
    )
    .await;
    assert_ne!(again["public_endpoint"].as_str().unwrap(), first);
}

#[tokio::test]
async fn gw_4_shared_key_is_generated_hidden_audited_and_replaceable() {
    let app = test_app().await;
    let a = hub(&app).await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/sites",
        site("branch", "203.0.113.10", "192.168.1.0/24"),
    )
    .await;
    let c = created(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        s2s("to-branch", "hub-gw", "branch"),
    )
    .await;
    assert!(
        c["shared_key"].is_null(),
        "a write answer never shows the key: {c}"
    );
    let list = get_as(&app, &a, "/api/v1/tenants/acme/connections").await;
    let k = get_as(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
    )
    .await;
    assert_eq!(k.status, StatusCode::OK);
    let key = k.json()["shared_key"].as_str().unwrap().to_owned();
    assert!(
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()),
        "{key}"
    );
    assert!(
        !String::from_utf8_lossy(&list.body).contains(&key),
        "list hides the key"
    );
    // A second connection gets another key (unique per connection).
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/sites",
        site("branch2", "203.0.113.11", "192.168.2.0/24"),
    )
    .await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        s2s("to-branch2", "hub-gw", "branch2"),
    )
    .await;
    let k2 = get_as(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch2/shared-key",
    )
    .await;
    assert_ne!(k2.json()["shared_key"].as_str().unwrap(), key);
    // The read is audited.
    let log = get_as(&app, &a, "/api/v1/audit?tenant=acme").await.json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "connection.shared_key.read")
    );
    // GW-5: a dash is refused with the rule; a valid key replaces the old one.
    let bad = put(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
        json!({"shared_key": "abc-123"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        rules_of(&bad).contains(&"GW-5".to_owned()),
        "{:?}",
        rules_of(&bad)
    );
    let long = "a".repeat(129);
    let bad = put(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
        json!({"shared_key": long}),
    )
    .await;
    assert!(rules_of(&bad).contains(&"GW-5".to_owned()));
    let ok = put(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
        json!({"shared_key": "Abc123xyz"}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let k = get_as(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
    )
    .await;
    assert_eq!(k.json()["shared_key"], "Abc123xyz");
}

#[tokio::test]
async fn s2s_1_device_config_is_a_wg_quick_file_with_the_gateway_as_peer() {
    let app = test_app().await;
    let a = hub_with_branch(&app).await;
    let g = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json();
    let r = get_as(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/device-config",
    )
    .await;
    assert_status(&r, StatusCode::OK);
    assert!(r.content_type.starts_with("text/plain"));
    let conf = String::from_utf8(r.body).unwrap();
    assert!(conf.contains("[Interface]"), "{conf}");
    assert!(conf.contains("[Peer]"), "{conf}");
    assert!(
        conf.contains(&format!(
            "PublicKey = {}",
            g["public_key"].as_str().unwrap()
        )),
        "{conf}"
    );
    assert!(
        conf.contains(&format!(
            "Endpoint = {}",
            g["public_endpoint"].as_str().unwrap()
        )),
        "{conf}"
    );
    assert!(conf.contains("PresharedKey = "), "{conf}");
    assert!(
        conf.contains("10.0.0.0/16"),
        "AllowedIPs carries the VNet: {conf}"
    );
}

#[tokio::test]
async fn secrets_are_sealed_in_the_raw_database() {
    let app = test_app().await;
    let a = hub_with_branch(&app).await;
    let key = get_as(
        &app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
    )
    .await
    .json()["shared_key"]
        .as_str()
        .unwrap()
        .to_owned();
    if !app.db_path.exists() {
        return; // the SQLite run reads the file
    }
    // Open the gateway's sealed private key with the test master key, then look for it raw.
    let sealer = isthmus_server::secrets::Sealer::from_key(&[42u8; 32]).unwrap();
    let conn = sea_orm::Database::connect(format!("sqlite://{}", app.db_path.display()))
        .await
        .unwrap();
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let row = isthmus_server::db::entities::resource::Entity::find()
        .filter(isthmus_server::db::entities::resource::Column::Kind.eq("gateway"))
        .one(&conn)
        .await
        .unwrap()
        .unwrap();
    let private = sealer
        .open_string(
            "gateway-private-key:acme/hub-gw",
            row.sealed.as_deref().unwrap(),
        )
        .unwrap();
    assert_eq!(private.len(), 44);
    conn.close().await.unwrap();
    let mut raw = std::fs::read(&app.db_path).unwrap();
    if let Ok(wal) = std::fs::read(app.db_path.with_extension("db-wal")) {
        raw.extend(wal);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(&key), "shared key in the raw database");
    assert!(
        !text.contains(&private),
        "gateway private key in the raw database"
    );
}

#[tokio::test]
async fn readers_cannot_write_resources_and_other_tenants_cannot_see_them() {
    let app = test_app().await;
    let a = hub(&app).await;
    let bob = user(&app, "bob").await;
    let r = get_as(&app, &bob, "/api/v1/tenants/acme/vnets").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    put(
        &app,
        &a,
        "/api/v1/tenants/acme/members/bob",
        json!({"role": "reader"}),
    )
    .await;
    let r = get_as(&app, &bob, "/api/v1/tenants/acme/vnets").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()[0]["name"], "hub");
    let r = post(
        &app,
        &bob,
        "/api/v1/tenants/acme/sites",
        site("x", "203.0.113.9", "192.168.9.0/24"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get_as(&app, &bob, "/api/v1/tenants/acme/connections/x/shared-key").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_resource_bodies_are_4xx_naming_the_problem() {
    let app = test_app().await;
    let a = hub(&app).await;
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        json!({"name": "x", "region": "r", "address_space": ["nope"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"].as_str().unwrap().contains("schema"),
        "{}",
        r.json()
    );
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        json!({"name": "x", "region": "r", "address_space": [], "color": 1}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("color"));
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        json!({"tenant": "other", "name": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("tenant"));
    let r = post(&app, &a, "/api/v1/tenants/acme/widgets", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        vnet("hub", "10.9.0.0/16", "10.9.255.0/27"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = get_as(&app, &a, "/api/v1/tenants/acme/vnets/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["message"].as_str().unwrap().contains("missing"));
}

#[tokio::test]
async fn deleting_a_vnet_its_gateway_needs_is_refused_with_ref_1() {
    let app = test_app().await;
    let a = hub(&app).await;
    let r = delete(&app, &a, "/api/v1/tenants/acme/vnets/hub").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        rules_of(&r).iter().any(|r| r.starts_with("REF")),
        "{:?}",
        rules_of(&r)
    );
}

#[tokio::test]
async fn lim_1_two_racing_writes_that_together_break_a_rule_land_exactly_once() {
    let app = test_app().await;
    let a = hub_with(&app, "RouteBased", "Standard").await;
    for i in 0..11 {
        created(
            &app,
            &a,
            "/api/v1/tenants/acme/sites",
            site(
                &format!("s{i}"),
                &format!("203.0.113.{}", i + 1),
                &format!("192.168.{i}.0/24"),
            ),
        )
        .await;
    }
    for i in 0..9 {
        created(
            &app,
            &a,
            "/api/v1/tenants/acme/connections",
            s2s(&format!("c{i}"), "hub-gw", &format!("s{i}")),
        )
        .await;
    }
    // The 10th and an 11th race: Standard allows 10.
    let (x, y) = tokio::join!(
        post(
            &app,
            &a,
            "/api/v1/tenants/acme/connections",
            s2s("c9", "hub-gw", "s9")
        ),
        post(
            &app,
            &a,
            "/api/v1/tenants/acme/connections",
            s2s("c10", "hub-gw", "s10")
        ),
    );
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
    );
    let loser = if x.status == StatusCode::CREATED {
        &y
    } else {
        &x
    };
    assert!(
        rules_of(loser).contains(&"LIM-1".to_owned()),
        "{:?}",
        rules_of(loser)
    );
    let list = get_as(&app, &a, "/api/v1/tenants/acme/connections").await;
    assert_eq!(list.json().as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn tenant_topology_is_one_document_without_secrets() {
    let app = test_app().await;
    let a = hub_with_branch(&app).await;
    tenant(&app, &a, "other").await;
    let t = get_as(&app, &a, "/api/v1/tenants/acme/topology")
        .await
        .json();
    assert_eq!(t["tenants"], json!([{"name": "acme"}]));
    assert_eq!(t["vnets"][0]["name"], "hub");
    assert_eq!(t["connections"][0]["name"], "to-branch");
    assert!(t["connections"][0]["shared_key"].is_null());
    let parsed: isthmus_shared::model::Topology = serde_json::from_value(t).unwrap();
    assert!(
        isthmus_shared::validate::validate(&parsed)
            .iter()
            .all(|v| !v.is_error())
    );
}

#[tokio::test]
async fn conn_2_cross_tenant_vnet_to_vnet_halves_need_the_same_key() {
    let app = test_app().await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    for (who, t, space, gw_subnet) in [
        (&alice, "a-corp", "10.10.0.0/16", "10.10.255.0/27"),
        (&bob, "b-corp", "10.20.0.0/16", "10.20.255.0/27"),
    ] {
        tenant(&app, who, t).await;
        created(
            &app,
            who,
            &format!("/api/v1/tenants/{t}/vnets"),
            vnet("net", space, gw_subnet),
        )
        .await;
        created(
            &app,
            who,
            &format!("/api/v1/tenants/{t}/gateways"),
            gateway("gw", "net", "RouteBased", "VpnGw1"),
        )
        .await;
    }
    let half = |remote: &str, key: &str| {
        json!({"name": "v2v", "gateway": "gw", "shared_key": key,
               "kind": {"type": "VnetToVnet", "remote_gateway": {"tenant": remote, "name": "gw"}}})
    };
    created(
        &app,
        &alice,
        "/api/v1/tenants/a-corp/connections",
        half("b-corp", "SameKey123"),
    )
    .await;
    // Bob's half with another key is accepted as a key mismatch (each owner sets its half)...
    let r = post(
        &app,
        &bob,
        "/api/v1/tenants/b-corp/connections",
        half("a-corp", "OtherKey456"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(
        r.json()["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["rule"] == "CONN-2" && w["params"]["status"] == "key mismatch"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // ... until both carry the same key.
    let r = put(
        &app,
        &bob,
        "/api/v1/tenants/b-corp/connections/v2v/shared-key",
        json!({"shared_key": "SameKey123"}),
    )
    .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Each owner still sees only their own tenant.
    let r = get_as(&app, &bob, "/api/v1/tenants/a-corp/connections").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn gw_4_second_half_of_a_same_tenant_vnet_to_vnet_pair_takes_its_partners_key() {
    let app = test_app().await;
    let a = hub(&app).await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        vnet("spoke", "10.1.0.0/16", "10.1.255.0/27"),
    )
    .await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways",
        gateway("spoke-gw", "spoke", "RouteBased", "VpnGw1"),
    )
    .await;
    let half = |name: &str, gw: &str, remote: &str| json!({"name": name, "gateway": gw, "kind": {"type": "VnetToVnet", "remote_gateway": {"name": remote}}});
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        half("hub-spoke", "hub-gw", "spoke-gw"),
    )
    .await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        half("spoke-hub", "spoke-gw", "hub-gw"),
    )
    .await;
    let key = |name: &str| {
        let path = format!("/api/v1/tenants/acme/connections/{name}/shared-key");
        let a = a.clone();
        let app = &app;
        async move { get_as(app, &a, &path).await.json()["shared_key"].clone() }
    };
    assert_eq!(key("hub-spoke").await, key("spoke-hub").await);
}

/// Reads may be served from a replica's caches, but only at the version the database reports:
/// a replica lists and gets what another replica has just written.
#[tokio::test]
async fn a_replica_lists_and_gets_what_another_replica_just_wrote() {
    let app = test_app().await;
    let b = replica(&app).await;
    let a = admin(&app).await;
    tenant(&app, &a, "acme").await;
    let names = |r: &Answer| -> Vec<String> {
        assert_status(r, StatusCode::OK);
        r.json()
            .as_array()
            .expect("list")
            .iter()
            .map(|v| v["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let list = || req("GET", "/api/v1/tenants/acme/vnets", &a, None);
    assert!(names(&send_to(&b, list()).await).is_empty());
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        vnet("hub", "10.0.0.0/16", "10.0.255.0/27"),
    )
    .await;
    // Replica b cached the empty list; the version moved, so it reads again.
    assert_eq!(names(&send_to(&b, list()).await), ["hub"]);
    assert_eq!(names(&send_to(&b, list()).await), ["hub"]);
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets",
        vnet("spoke", "10.1.0.0/16", "10.1.255.0/27"),
    )
    .await;
    assert_eq!(names(&send_to(&b, list()).await), ["hub", "spoke"]);
    let r = put(
        &app,
        &a,
        "/api/v1/tenants/acme/vnets/spoke",
        json!({"region": "japaneast", "address_space": ["10.1.0.0/16"],
                "subnets": [{"name": "GatewaySubnet", "prefix": "10.1.255.0/27"}]}),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    let got = send_to(&b, req("GET", "/api/v1/tenants/acme/vnets/spoke", &a, None)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.content_type, "application/json");
    assert_eq!(got.json()["region"], "japaneast");
    let r = delete(&app, &a, "/api/v1/tenants/acme/vnets/spoke").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(names(&send_to(&b, list()).await), ["hub"]);
    let gone = send_to(&b, req("GET", "/api/v1/tenants/acme/vnets/spoke", &a, None)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(
        gone.json()["message"]
            .to_string()
            .contains("no vnet `spoke`"),
        "{}",
        gone.json()
    );
}
