//! Issue 16 item 6: an active-active gateway on two workers. A site's connection has two
//! tunnels, one to each instance: the device configuration export gives tunnel 1 (instance 0,
//! `public_endpoint`) by default and tunnel 2 (instance 1, `secondary_endpoint`, the device
//! port + 1) with `?tunnel=2`; each instance's desired state flags the site peer
//! `on_every_instance` at the port of its own tunnel; the endpoints never swap on a takeover.
//! A gateway that is not active-active has no tunnel 2.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn beat(app: &TestApp, name: &str, n: u8) {
    beat_redundant(app, name, n, None).await;
}

/// Gateway `hub-gw` in worker `name`'s desired state (one poll, which places instances).
async fn gateway_in(app: &TestApp, name: &str) -> Value {
    desired_of(app, name).await["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .find(|g| g["name"] == "hub-gw")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Tenant `acme`: VNet `hub`, gateway `hub-gw` (VpnGw1, `active_active` as given), site
/// `branch` on device port 51900 and connection `to-branch`.
async fn topology(app: &TestApp, active_active: bool) -> Cred {
    let a = admin(app).await;
    ok(post(app, &a, "/api/v1/tenants", json!({"name": "acme"})).await);
    ok(post(app, &a, "/api/v1/tenants/acme/vnets", json!({"name": "hub", "region": "westeurope",
        "address_space": ["10.0.0.0/16"], "subnets": [{"name": "GatewaySubnet", "prefix": "10.0.255.0/27"}]})).await);
    ok(post(
        app,
        &a,
        "/api/v1/tenants/acme/sites",
        json!({"name": "branch", "device_host": "203.0.113.10",
        "device_port": 51900, "address_prefixes": ["192.168.1.0/24"],
        "device_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="}),
    )
    .await);
    ok(post(
        app,
        &a,
        "/api/v1/tenants/acme/gateways",
        json!({"name": "hub-gw", "vnet": "hub",
        "gateway_type": "RouteBased", "sku": "VpnGw1", "active_active": active_active}),
    )
    .await);
    ok(post(
        app,
        &a,
        "/api/v1/tenants/acme/connections",
        json!({"name": "to-branch", "gateway": "hub-gw",
        "kind": {"type": "SiteToSite", "site": "branch"}}),
    )
    .await);
    a
}

async fn export(app: &TestApp, a: &Cred, query: &str) -> Answer {
    get_as(
        app,
        a,
        &format!("/api/v1/tenants/acme/connections/to-branch/device-config{query}"),
    )
    .await
}

fn text(r: Answer) -> String {
    assert_status(&r, StatusCode::OK);
    String::from_utf8(r.body).expect("text")
}

fn site_peer(g: &Value) -> Value {
    g["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["name"] == "to-branch")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_active_active_gateway_exports_two_tunnels_and_runs_the_site_peer_on_both_instances() {
    let app = test_app().await;
    beat(&app, "w1", 1).await;
    beat(&app, "w2", 2).await;
    let a = topology(&app, true).await;
    let on_w1 = gateway_in(&app, "w1").await;
    let on_w2 = gateway_in(&app, "w2").await;
    assert_eq!(on_w1["instance"]["instance"], 0, "{on_w1}");
    assert_eq!(on_w2["instance"]["instance"], 1, "{on_w2}");
    let port = on_w1["listen_port"].as_u64().expect("port");

    // Each instance runs the site's tunnel of its own, on every instance (standby included).
    let (p1, p2) = (site_peer(&on_w1), site_peer(&on_w2));
    assert_eq!(p1["endpoint"], "203.0.113.10:51900", "{p1}");
    assert_eq!(p2["endpoint"], "203.0.113.10:51901", "{p2}");
    assert_eq!(p1["on_every_instance"], true);
    assert_eq!(p2["on_every_instance"], true);
    assert_eq!(p1["public_key"], p2["public_key"]);

    let one = text(export(&app, &a, "").await);
    assert_eq!(one, text(export(&app, &a, "?tunnel=1").await));
    assert!(one.contains("\nListenPort = 51900\n"), "{one}");
    assert!(
        one.contains(&format!("\nEndpoint = 198.51.100.1:{port}\n")),
        "{one}"
    );
    assert!(one.contains("\nTable = off\n"), "{one}");
    assert!(
        one.contains("\nPostUp = ip route add 10.0.0.0/16 dev %i metric 100\n"),
        "{one}"
    );
    assert!(one.contains("to-branch-tunnel2.conf"), "{one}");
    let r = export(&app, &a, "?tunnel=2").await;
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    let two = text(r);
    assert!(two.contains("\nListenPort = 51901\n"), "{two}");
    assert!(
        two.contains(&format!("\nEndpoint = 198.51.100.2:{port}\n")),
        "{two}"
    );
    assert!(
        two.contains("\nPostUp = ip route add 10.0.0.0/16 dev %i metric 200\n"),
        "{two}"
    );
    assert!(two.contains("tunnel 2 of 2"), "{two}");

    // Instance 1 takes over: the designation follows, the tunnels' endpoints do not swap.
    let term = on_w2["instance"]["term"].as_u64().expect("term");
    let status = json!({"format": "isthmus.status/v1", "version": 1, "gateways": [{
        "tenant": "acme", "name": "hub-gw", "connections": [],
        "instance": {"instance": 1, "role": "active", "term": term + 1, "partner_alive": false}}]});
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/worker/status?name=w2",
            &worker_cred(),
            Some(status),
        ),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(gateway_in(&app, "w2").await["instance"]["active"], 1);
    let g = ok(get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await);
    assert_eq!(g["public_endpoint"], format!("198.51.100.1:{port}"), "{g}");
    assert_eq!(g["secondary_endpoint"], format!("198.51.100.2:{port}"));
    assert_eq!(one, text(export(&app, &a, "").await));
    assert_eq!(two, text(export(&app, &a, "?tunnel=2").await));
}

#[tokio::test]
async fn tunnel_2_of_a_gateway_that_is_not_active_active_or_on_one_instance_is_a_clear_404() {
    let app = test_app().await;
    beat(&app, "w1", 1).await;
    beat(&app, "w2", 2).await;
    let a = topology(&app, false).await;
    assert!(gateway_in(&app, "w2").await["instance"].is_object());
    let one = text(export(&app, &a, "").await);
    assert!(!one.contains("Table") && !one.contains("PostUp"), "{one}");
    let r = export(&app, &a, "?tunnel=2").await;
    assert_status(&r, StatusCode::NOT_FOUND);
    let body: Value = r.json();
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not active-active")),
        "{body}"
    );
    let peer = site_peer(&gateway_in(&app, "w2").await);
    assert!(peer.get("on_every_instance").is_none(), "{peer}");
    assert_eq!(peer["endpoint"], "203.0.113.10:51900");
    assert_status(&export(&app, &a, "?tunnel=3").await, StatusCode::NOT_FOUND);
    assert_status(
        &export(&app, &a, "?tunnel=two").await,
        StatusCode::BAD_REQUEST,
    );

    // Active-active, but one live worker: one instance, no tunnel 2 yet.
    let app = test_app().await;
    beat(&app, "w1", 1).await;
    let a = topology(&app, true).await;
    assert!(gateway_in(&app, "w1").await["instance"].is_null());
    let r = export(&app, &a, "?tunnel=2").await;
    assert_status(&r, StatusCode::NOT_FOUND);
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("one instance")),
        "tunnel 2 waits for the second instance"
    );
    assert!(text(export(&app, &a, "").await).contains("\nTable = off\n"));
}

#[tokio::test]
async fn a_point_to_site_package_of_an_active_active_gateway_names_the_active_instance_first() {
    use crate::p2s::{Enrol, enrol, leaf, root, setup, upload_root};
    let app = test_app().await;
    beat(&app, "w1", 1).await;
    beat(&app, "w2", 2).await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    ok(put(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways/hub-gw",
        json!({"name": "hub-gw", "vnet": "hub", "gateway_type": "RouteBased",
        "sku": "VpnGw1", "active_active": true}),
    )
    .await);
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let on_w1 = gateway_in(&app, "w1").await;
    let on_w2 = gateway_in(&app, "w2").await;
    let (first, second) = if on_w1["instance"]["instance"] == 0 {
        ("198.51.100.1", "198.51.100.2")
    } else {
        ("198.51.100.2", "198.51.100.1")
    };
    let port = on_w1["listen_port"].as_u64().expect("port");
    let package = |r: Value| r["config"].as_str().expect("config").to_owned();
    let before = package(ok(enrol(&app, &Enrol::with(&leaf(&ca, "alice"))).await));
    assert!(
        before.contains(&format!("Endpoint = {first}:{port}\n"))
            && before.contains(&format!("# FailoverEndpoint = {second}:{port}")),
        "instance 0 is active: {before}"
    );
    // Instance 1 takes over: its endpoint stays instance 1's (the site tunnels are per
    // instance), but only the active instance serves clients, so new packages name it first.
    let (w1_is_1, g1) = if on_w1["instance"]["instance"] == 1 {
        ("w1", &on_w1)
    } else {
        ("w2", &on_w2)
    };
    let term = g1["instance"]["term"].as_u64().expect("term");
    let status = json!({"format": "isthmus.status/v1", "version": 1, "gateways": [{
        "tenant": "acme", "name": "hub-gw", "connections": [],
        "instance": {"instance": 1, "role": "active", "term": term + 1, "partner_alive": false}}]});
    let r = send(
        &app,
        req(
            "POST",
            &format!("/api/v1/worker/status?name={w1_is_1}"),
            &worker_cred(),
            Some(status),
        ),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let after = package(ok(enrol(&app, &Enrol::with(&leaf(&ca, "bob"))).await));
    assert!(
        after.contains(&format!("Endpoint = {second}:{port}\n"))
            && after.contains(&format!("# FailoverEndpoint = {first}:{port}")),
        "instance 1 is active: {after}"
    );
}
