//! GW-3 / GW-10: gateway endpoints come from the address of the worker that runs the gateway,
//! follow it when it moves, and warn when no device can reach them; issue 12's tunnel state.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn beat(name: &str, addresses: &[&str]) -> Value {
    json!({"protocol": 1, "name": name, "version": "test", "public_addresses": addresses})
}

async fn heartbeat(app: &TestApp, name: &str, addresses: &[&str]) {
    let r = send(
        app,
        req(
            "POST",
            "/api/v1/worker/heartbeat",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(beat(name, addresses)),
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
}

/// One desired-state poll of worker `name` (which places orphan gateways on it).
async fn poll(app: &TestApp, name: &str) -> Value {
    let r = send(
        app,
        req(
            "GET",
            &format!("/api/v1/worker/desired?name={name}&since=0"),
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            None,
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    r.json()
}

/// A tenant with a VNet, a site and room for gateways; returns the admin's credentials.
async fn tenant(app: &TestApp) -> Cred {
    let a = admin(app).await;
    ok(post(app, &a, "/api/v1/tenants", json!({"name": "acme"})).await);
    ok(post(app, &a, "/api/v1/tenants/acme/vnets", json!({"name": "hub", "region": "westeurope",
        "address_space": ["10.0.0.0/16"], "subnets": [{"name": "GatewaySubnet", "prefix": "10.0.255.0/27"}]})).await);
    ok(post(app, &a, "/api/v1/tenants/acme/sites", json!({"name": "branch", "device_host": "203.0.113.10",
        "address_prefixes": ["192.168.1.0/24"], "device_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="})).await);
    a
}

async fn gateway_with_connection(app: &TestApp, a: &Cred) -> String {
    let g = created(
        app,
        a,
        "/api/v1/tenants/acme/gateways",
        json!({"name": "hub-gw", "vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    )
    .await;
    ok(post(
        app,
        a,
        "/api/v1/tenants/acme/connections",
        json!({"name": "to-branch", "gateway": "hub-gw", "kind": {"type": "SiteToSite", "site": "branch"}}),
    )
    .await);
    g["public_endpoint"].as_str().expect("allocated").to_owned()
}

async fn endpoint(app: &TestApp, a: &Cred) -> std::net::SocketAddr {
    get_as(app, a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json()["public_endpoint"]
        .as_str()
        .expect("endpoint")
        .parse()
        .expect("host:port")
}

async fn device_config(app: &TestApp, a: &Cred) -> String {
    let r = get_as(
        app,
        a,
        "/api/v1/tenants/acme/connections/to-branch/device-config",
    )
    .await;
    assert_status(&r, StatusCode::OK);
    String::from_utf8(r.body).expect("text")
}

/// The topology version, as `/metrics` shows it.
async fn version(app: &TestApp) -> u64 {
    let m = String::from_utf8(send(app, get("/metrics")).await.body).expect("text");
    m.lines()
        .find_map(|l| l.strip_prefix("isthmus_topology_version "))
        .and_then(|v| v.trim().parse().ok())
        .expect("isthmus_topology_version")
}

#[tokio::test]
async fn gw_3_a_new_gateway_takes_the_address_of_the_live_worker_and_gw_10_stays_quiet() {
    let app = test_app().await;
    let a = tenant(&app).await;
    heartbeat(&app, "w1", &["198.51.100.7", "2001:db8::7"]).await;
    let e = gateway_with_connection(&app, &a).await;
    assert_eq!(e, "198.51.100.7:51820", "the worker's first address");
    let s = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw/status")
        .await
        .json();
    assert_eq!(s["public_endpoint"], "198.51.100.7:51820");
    assert_eq!(s["warnings"], json!([]), "{s}");
    let conf = device_config(&app, &a).await;
    assert!(conf.contains("Endpoint = 198.51.100.7:51820"), "{conf}");
    assert!(!conf.contains("WARNING"), "{conf}");
    // The worker the gateway goes to listens on the allocated port.
    let d = poll(&app, "w1").await;
    assert_eq!(d["gateways"][0]["public_endpoint"], "198.51.100.7:51820");
    assert_eq!(d["gateways"][0]["listen_port"], 51820);
}

#[tokio::test]
async fn gw_10_without_a_worker_address_the_fallback_warns_until_the_worker_states_one() {
    let app = test_app().await;
    let a = tenant(&app).await;
    let e = gateway_with_connection(&app, &a).await;
    assert_eq!(
        e, "127.0.0.1:51820",
        "the server's --public-address fallback"
    );
    // GW-10: on the gateway ...
    let s = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw/status")
        .await
        .json();
    assert_eq!(s["warnings"][0]["rule"], "GW-10", "{s}");
    assert_eq!(s["warnings"][0]["severity"], "Warning", "{s}");
    assert_eq!(s["warnings"][0]["params"]["kind"], "loopback", "{s}");
    let message = s["warnings"][0]["message"].as_str().unwrap();
    assert!(message.contains("--public-address"), "{message}");
    // ... and on the device configuration that names it.
    let conf = device_config(&app, &a).await;
    assert!(conf.contains("# WARNING:"), "{conf}");
    assert!(conf.contains("--public-address"), "{conf}");

    // A worker states its address: once the gateway is placed on it, the endpoint's host is
    // the worker's, the port is kept, the version moves and the warning goes.
    let before = version(&app).await;
    heartbeat(&app, "w1", &["198.51.100.7"]).await;
    let d = poll(&app, "w1").await;
    assert_eq!(d["gateways"][0]["public_endpoint"], "198.51.100.7:51820");
    assert!(d["version"].as_u64().unwrap() > before);
    assert_eq!(endpoint(&app, &a).await.to_string(), "198.51.100.7:51820");
    let conf = device_config(&app, &a).await;
    assert!(conf.contains("Endpoint = 198.51.100.7:51820"), "{conf}");
    assert!(!conf.contains("WARNING"), "{conf}");
    let s = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw/status")
        .await
        .json();
    assert_eq!(s["warnings"], json!([]), "{s}");
    assert_eq!(s["worker"], "w1");
    // A worker stating a loopback address gets the warning back.
    heartbeat(&app, "w1", &["127.0.0.1"]).await;
    assert_eq!(endpoint(&app, &a).await.to_string(), "127.0.0.1:51820");
    assert!(device_config(&app, &a).await.contains("# WARNING:"));
}

#[tokio::test]
async fn gw_3_moving_a_gateway_to_another_worker_moves_its_endpoint_host_and_keeps_its_port() {
    let app = test_app().await;
    let a = tenant(&app).await;
    heartbeat(&app, "w1", &["198.51.100.7"]).await;
    heartbeat(&app, "w2", &["2001:db8::2"]).await;
    let first = gateway_with_connection(&app, &a).await;
    assert_eq!(first, "198.51.100.7:51820");
    poll(&app, "w1").await;
    let before = version(&app).await;
    // An administrator pins it to w2: the endpoint follows in the same write.
    let r = put(
        &app,
        &a,
        "/api/v1/placements/acme/hub-gw",
        json!({"worker": "w2"}),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let moved = endpoint(&app, &a).await;
    assert_eq!(
        moved.to_string(),
        "[2001:db8::2]:51820",
        "host moved, port kept"
    );
    assert!(version(&app).await > before, "peers and devices follow");
    let d2 = poll(&app, "w2").await;
    assert_eq!(d2["gateways"][0]["public_endpoint"], "[2001:db8::2]:51820");
    assert_eq!(d2["gateways"][0]["listen_port"], 51820);
    assert!(
        device_config(&app, &a)
            .await
            .contains("Endpoint = [2001:db8::2]:51820")
    );
    // The worker's address changes: its gateways' endpoints follow.
    heartbeat(&app, "w2", &["198.51.100.9"]).await;
    assert_eq!(endpoint(&app, &a).await.to_string(), "198.51.100.9:51820");
    // The same heartbeat again changes nothing.
    let v = version(&app).await;
    heartbeat(&app, "w2", &["198.51.100.9"]).await;
    assert_eq!(version(&app).await, v, "an unchanged address bumps nothing");

    // GW-3 still holds: deleted and created again, the gateway gets another endpoint (on the
    // worker it is pinned to).
    let d = delete(&app, &a, "/api/v1/tenants/acme/connections/to-branch").await;
    assert_status(&d, StatusCode::NO_CONTENT);
    let d = delete(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await;
    assert_status(&d, StatusCode::NO_CONTENT);
    let again = gateway_with_connection(&app, &a).await;
    assert_eq!(again, "198.51.100.9:51821", "a new port on w2's address");
}

#[tokio::test]
async fn gw_3_a_second_gateway_gets_its_own_port_on_the_workers_new_address() {
    let app = test_app().await;
    let a = tenant(&app).await;
    heartbeat(&app, "w1", &["198.51.100.7"]).await;
    let first = gateway_with_connection(&app, &a).await;
    poll(&app, "w1").await;
    // The only live worker changes address; a second gateway still gets its own port.
    heartbeat(&app, "w1", &["198.51.100.8"]).await;
    ok(post(&app, &a, "/api/v1/tenants/acme/vnets", json!({"name": "spoke", "region": "westeurope",
        "address_space": ["10.1.0.0/16"], "subnets": [{"name": "GatewaySubnet", "prefix": "10.1.255.0/27"}]})).await);
    let second = created(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways",
        json!({"name": "gw2", "vnet": "spoke", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    )
    .await;
    assert_eq!(endpoint(&app, &a).await.to_string(), "198.51.100.8:51820");
    let first_port = first.rsplit(':').next().unwrap();
    let second = second["public_endpoint"].as_str().unwrap();
    assert_eq!(second, "198.51.100.8:51821");
    assert_ne!(second.rsplit(':').next().unwrap(), first_port);
}

#[tokio::test]
async fn bad_public_addresses_in_a_heartbeat_are_a_400_naming_the_field() {
    let app = test_app().await;
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/worker/heartbeat",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(json!({"protocol": 1, "name": "w1", "version": "t", "public_addresses": ["not-an-ip"]})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("public_addresses")
    );
    let many: Vec<String> = (0..17).map(|i| format!("198.51.100.{i}")).collect();
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/worker/heartbeat",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(json!({"protocol": 1, "name": "w1", "version": "t", "public_addresses": many})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("public_addresses")
    );
}

#[tokio::test]
async fn gateway_mss_clamp_round_trips_through_the_api_and_the_desired_state() {
    let app = test_app().await;
    let a = tenant(&app).await;
    gateway_with_connection(&app, &a).await;
    let g = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json();
    assert_eq!(g["mss_clamp"], true, "on by default");
    let r = put(
        &app,
        &a,
        "/api/v1/tenants/acme/gateways/hub-gw",
        json!({"vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw1", "mss_clamp": false}),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    let g = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json();
    assert_eq!(g["mss_clamp"], false);
    let d = poll(&app, "w1").await;
    assert_eq!(d["gateways"][0]["mss_clamp"], false);
}

async fn report(app: &TestApp, worker: &str, body: Value) {
    let r = send(
        app,
        req(
            "POST",
            &format!("/api/v1/worker/status?name={worker}"),
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(body),
        ),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_workers_tunnel_state_reaches_the_api_the_gateway_view_and_metrics() {
    let app = test_app().await;
    let a = tenant(&app).await;
    gateway_with_connection(&app, &a).await;
    ok(post(&app, &a, "/api/v1/tenants/acme/sites", json!({"name": "shop", "device_host": "203.0.113.11",
        "address_prefixes": ["192.168.2.0/24"], "device_public_key": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="})).await);
    ok(post(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        json!({"name": "to-shop", "gateway": "hub-gw", "kind": {"type": "SiteToSite", "site": "shop"},
            "enabled": false}),
    )
    .await);
    report(&app, "w1", json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
        "connections": [{"name": "to-branch", "last_handshake_unix": 1_790_000_000u64, "rx_bytes": 1, "tx_bytes": 2,
            "endpoint": "203.0.113.10:51820", "state": "down", "since_unix": 1_790_000_200u64, "reason": "no_answer"}],
        "route_conflicts": [{"prefix": "192.168.1.0/24", "existing": "192.168.1.0/24 dev eth1"}]}]})).await;
    let s = get_as(&app, &a, "/api/v1/tenants/acme/status").await.json();
    let branch = s
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["connection"] == "to-branch")
        .expect("reported");
    assert_eq!(branch["state"], "down", "{s}");
    assert_eq!(branch["reason"], "no_answer", "{s}");
    let since = branch["since"].as_str().expect("since");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(since)
            .expect("RFC 3339")
            .timestamp(),
        1_790_000_200
    );
    // The disabled connection is down, because it is disabled: the server says so, no worker
    // reports it.
    let shop = s
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["connection"] == "to-shop")
        .expect("disabled connections are listed");
    assert_eq!(shop["state"], "down", "{s}");
    assert_eq!(shop["reason"], "disabled", "{s}");

    let g = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw/status")
        .await
        .json();
    assert_eq!(g["route_conflicts"][0]["prefix"], "192.168.1.0/24", "{g}");
    assert_eq!(
        g["route_conflicts"][0]["existing"],
        "192.168.1.0/24 dev eth1"
    );
    assert_eq!(g["connections"].as_array().unwrap().len(), 2, "{g}");
    let m = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    assert!(
        m.contains(
            r#"isthmus_connection_up{tenant="acme",gateway="hub-gw",connection="to-branch"} 0"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"isthmus_connection_state{tenant="acme",gateway="hub-gw",connection="to-shop",state="down",reason="disabled"} 1"#),
        "{m}"
    );

    // The site comes back: up, since the worker says, and the conflict is gone.
    report(&app, "w1", json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
        "connections": [{"name": "to-branch", "last_handshake_unix": 1_790_000_300u64, "rx_bytes": 10, "tx_bytes": 20,
            "endpoint": "203.0.113.10:51820", "state": "up", "since_unix": 1_790_000_300u64}]}]})).await;
    let s = get_as(&app, &a, "/api/v1/tenants/acme/status").await.json();
    let branch = s
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["connection"] == "to-branch")
        .unwrap();
    assert_eq!(branch["state"], "up");
    assert!(branch["reason"].is_null(), "{branch}");
    let g = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw/status")
        .await
        .json();
    assert_eq!(g["route_conflicts"], json!([]));
    let m = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    assert!(
        m.contains(
            r#"isthmus_connection_up{tenant="acme",gateway="hub-gw",connection="to-branch"} 1"#
        ),
        "{m}"
    );
}

#[tokio::test]
async fn gateway_status_of_an_unknown_gateway_is_a_404_and_other_tenants_cannot_read_it() {
    let app = test_app().await;
    let a = tenant(&app).await;
    gateway_with_connection(&app, &a).await;
    let r = get_as(&app, &a, "/api/v1/tenants/acme/gateways/nope/status").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let eve = user(&app, "eve").await;
    let r = get_as(&app, &eve, "/api/v1/tenants/acme/gateways/hub-gw/status").await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
        "{}",
        r.status
    );
}

#[tokio::test]
async fn status_rows_from_before_the_reported_state_get_one_from_their_handshake_age() {
    use sea_orm::ConnectionTrait;
    let app = test_app().await;
    let a = tenant(&app).await;
    gateway_with_connection(&app, &a).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    report(&app, "w1", json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
        "connections": [{"name": "to-branch", "last_handshake_unix": now - 10, "rx_bytes": 1, "tx_bytes": 2,
            "state": "up", "since_unix": now - 10}]}]})).await;
    // What a row written before the state columns existed looks like.
    let db = sea_orm::Database::connect(&app.url)
        .await
        .expect("database");
    db.execute_unprepared(
        "UPDATE connection_status SET state = NULL, since_unix = NULL, reason = NULL",
    )
    .await
    .expect("update");
    let s = get_as(&app, &a, "/api/v1/tenants/acme/status").await.json();
    assert_eq!(
        s[0]["state"], "up",
        "a handshake 10 s before the report: {s}"
    );
    assert!(s[0]["since"].is_null());
    db.execute_unprepared(&format!(
        "UPDATE connection_status SET last_handshake_unix = {}",
        now - 600
    ))
    .await
    .expect("update");
    let s = get_as(&app, &a, "/api/v1/tenants/acme/status").await.json();
    assert_eq!(s[0]["state"], "down", "{s}");
    assert_eq!(s[0]["reason"], "no_answer", "{s}");
    db.close().await.expect("close");
}
