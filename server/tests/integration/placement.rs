//! Issue 16, item 4: placement spreads. A new or orphaned gateway goes to the least-loaded live
//! worker (fewest gateways, then fewest peers, then the smallest name); pinned gateways stay
//! pinned; two replicas placing at once never break the rule.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Worker `name` heartbeats (its lease becomes current) stating `address`.
async fn heartbeat(router: &Router, name: &str, address: &str) {
    let r = send_to(
        router,
        req(
            "POST",
            "/api/v1/worker/heartbeat",
            &worker_cred(),
            Some(json!({"protocol": 1, "name": name, "version": "test",
                "public_addresses": [address]})),
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
}

/// One desired-state poll of worker `name` (which places orphan gateways); the names of the
/// gateways in its desired state.
async fn poll(router: &Router, name: &str) -> Vec<String> {
    let r = send_to(
        router,
        req(
            "GET",
            &format!("/api/v1/worker/desired?name={name}&since=0&wait=0"),
            &worker_cred(),
            None,
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    let mut names: Vec<String> = r.json()["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .map(|g| g["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// A tenant `acme` with VNets `v1`..`v6` and sites `s1`..`s4`.
async fn tenant(app: &TestApp) -> Cred {
    let a = admin(app).await;
    ok(post(app, &a, "/api/v1/tenants", json!({"name": "acme"})).await);
    for i in 1..=6 {
        ok(post(
            app,
            &a,
            "/api/v1/tenants/acme/vnets",
            json!({"name": format!("v{i}"),
            "region": "westeurope", "address_space": [format!("10.{i}.0.0/16")],
            "subnets": [{"name": "GatewaySubnet", "prefix": format!("10.{i}.255.0/27")}]}),
        )
        .await);
    }
    let keys = [
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
        "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
        "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=",
    ];
    for (i, key) in keys.iter().enumerate() {
        let n = i + 1;
        ok(post(app, &a, "/api/v1/tenants/acme/sites", json!({"name": format!("s{n}"),
            "device_host": format!("203.0.113.{n}"), "address_prefixes": [format!("192.168.{n}.0/24")],
            "device_public_key": key}))
        .await);
    }
    a
}

/// Creates gateway `g{i}` in VNet `v{i}` through `router`; the answer's status.
async fn create_gateway(router: &Router, a: &Cred, i: usize) -> StatusCode {
    send_to(
        router,
        req(
            "POST",
            "/api/v1/tenants/acme/gateways",
            a,
            Some(json!({"name": format!("g{i}"), "vnet": format!("v{i}"),
                "gateway_type": "RouteBased", "sku": "VpnGw1"})),
        ),
    )
    .await
    .status
}

/// Connects gateway `gateway` to sites `s1`..`s{n}` (n peers).
async fn connect_sites(app: &TestApp, a: &Cred, gateway: &str, n: usize) {
    for s in 1..=n {
        ok(post(
            app,
            a,
            "/api/v1/tenants/acme/connections",
            json!({"name": format!("{gateway}-s{s}"),
            "gateway": gateway, "kind": {"type": "SiteToSite", "site": format!("s{s}")}}),
        )
        .await);
    }
}

/// The gateway as the API shows it.
async fn gateway(app: &TestApp, a: &Cred, name: &str) -> Value {
    ok(get_as(app, a, &format!("/api/v1/tenants/acme/gateways/{name}")).await)
}

/// The worker gateway `name` is placed on, as its status shows it.
async fn worker_of(app: &TestApp, a: &Cred, name: &str) -> Option<String> {
    ok(get_as(
        app,
        a,
        &format!("/api/v1/tenants/acme/gateways/{name}/status"),
    )
    .await)["worker"]
        .as_str()
        .map(str::to_owned)
}

/// The workers' addresses: `w{n}` states `198.51.100.{n}`.
fn address(worker: &str) -> String {
    format!("198.51.100.{}", worker.trim_start_matches('w'))
}

/// Heartbeats of `w1`..`w{n}`.
async fn workers(app: &TestApp, n: usize) {
    for w in 1..=n {
        let name = format!("w{w}");
        heartbeat(&app.router, &name, &address(&name)).await;
    }
}

/// Asserts that gateway `name` is on `worker` and its endpoint's host is that worker's.
async fn assert_on(app: &TestApp, a: &Cred, name: &str, worker: &str) {
    assert_eq!(
        worker_of(app, a, name).await.as_deref(),
        Some(worker),
        "{name}"
    );
    let e = gateway(app, a, name).await["public_endpoint"]
        .as_str()
        .expect("endpoint")
        .to_owned();
    assert!(
        e.starts_with(&format!("{}:", address(worker))),
        "{name}'s endpoint {e} follows {worker}"
    );
}

/// The worker whose lease runs out (as if it stopped heartbeating 15 s ago).
async fn expire_lease(app: &TestApp, worker: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(&app.url)
        .await
        .expect("database");
    db.execute_unprepared(&format!(
        "UPDATE workers SET lease_expires_at = 0 WHERE name = '{worker}'"
    ))
    .await
    .expect("update");
    db.close().await.expect("close");
}

#[tokio::test]
async fn three_workers_get_one_new_gateway_each_and_endpoints_follow() {
    let app = test_app().await;
    let a = tenant(&app).await;
    workers(&app, 3).await;
    for i in 1..=3 {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
    }
    // Placed at creation, one each, ties broken by name.
    for (g, w) in [("g1", "w1"), ("g2", "w2"), ("g3", "w3")] {
        assert_on(&app, &a, g, w).await;
    }
    // A poll moves nothing, and each worker runs its own.
    for (g, w) in [("g1", "w1"), ("g2", "w2"), ("g3", "w3")] {
        assert_eq!(poll(&app.router, w).await, vec![g.to_owned()]);
    }
}

#[tokio::test]
async fn orphans_spread_over_the_live_workers_not_onto_the_first_poller() {
    let app = test_app().await;
    let a = tenant(&app).await;
    // No worker is live: the gateways wait for the first poll.
    for i in 1..=3 {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
        assert_eq!(worker_of(&app, &a, &format!("g{i}")).await, None);
    }
    workers(&app, 3).await;
    // w3 polls first; it gets one gateway, not all three.
    assert_eq!(poll(&app.router, "w3").await.len(), 1);
    let mut seen = Vec::new();
    for w in ["w1", "w2", "w3"] {
        let mine = poll(&app.router, w).await;
        assert_eq!(mine.len(), 1, "{w}: {mine:?}");
        assert_on(&app, &a, &mine[0], w).await;
        seen.extend(mine);
    }
    seen.sort();
    assert_eq!(seen, ["g1", "g2", "g3"]);
}

#[tokio::test]
async fn a_worker_with_more_peers_gets_fewer_new_gateways() {
    let app = test_app().await;
    let a = tenant(&app).await;
    workers(&app, 3).await;
    for i in 1..=3 {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
    }
    // One gateway each; w1's has 3 peers, w2's 1, w3's none.
    connect_sites(&app, &a, "g1", 3).await;
    connect_sites(&app, &a, "g2", 1).await;
    // Equal gateways: the fewest peers wins (w3), then w2 (1 gateway, 1 peer) over w1 (1, 3)
    // and w3 (2, 0); then w1, the last with one gateway.
    for (i, w) in [(4, "w3"), (5, "w2"), (6, "w1")] {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
        assert_on(&app, &a, &format!("g{i}"), w).await;
    }

    // The same rule for orphans: w3 stops; of its two gateways, g3 (no peers) and g4 (given
    // 2 peers now), g3 is placed first ((tenant, name) order) on w2 (2 gateways, 1 peer; w1
    // has 2 and 3), then g4 on w1 (2 gateways, 3 peers, against w2's 3 and 1).
    connect_sites(&app, &a, "g4", 2).await;
    expire_lease(&app, "w3").await;
    poll(&app.router, "w1").await;
    assert_on(&app, &a, "g3", "w2").await;
    assert_on(&app, &a, "g4", "w1").await;
    assert_eq!(poll(&app.router, "w1").await, ["g1", "g4", "g6"]);
    assert_eq!(poll(&app.router, "w2").await, ["g2", "g3", "g5"]);
}

#[tokio::test]
async fn point_to_site_clients_count_as_peers() {
    let app = test_app().await;
    let a = tenant(&app).await;
    workers(&app, 2).await;
    for i in 1..=2 {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
    }
    // g1 (on w1) has a point-to-site configuration with two clients; g2 (on w2) one site.
    ok(post(
        &app,
        &a,
        "/api/v1/tenants/acme/point-to-site",
        json!({"gateway": "g1", "address_pool": ["172.16.0.0/24"],
            "clients": [
                {"name": "c1", "public_key": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "address": "172.16.0.2"},
                {"name": "c2", "public_key": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=", "address": "172.16.0.3"}]}),
    )
    .await);
    connect_sites(&app, &a, "g2", 1).await;
    assert_eq!(
        create_gateway(&app.router, &a, 3).await,
        StatusCode::CREATED
    );
    assert_on(&app, &a, "g3", "w2").await;
}

#[tokio::test]
async fn pinned_gateways_stay_pinned_and_count_toward_their_worker() {
    let app = test_app().await;
    let a = tenant(&app).await;
    workers(&app, 3).await;
    assert_eq!(
        create_gateway(&app.router, &a, 1).await,
        StatusCode::CREATED
    );
    assert_eq!(
        create_gateway(&app.router, &a, 2).await,
        StatusCode::CREATED
    );
    // An administrator pins g1 to w3 and g2 to w9, which is not live.
    for (g, w) in [("g1", "w3"), ("g2", "w9")] {
        let r = put(
            &app,
            &a,
            &format!("/api/v1/placements/acme/{g}"),
            json!({"worker": w}),
        )
        .await;
        assert_status(&r, StatusCode::NO_CONTENT);
    }
    // Polls of every live worker move neither.
    for w in ["w1", "w2", "w3"] {
        poll(&app.router, w).await;
    }
    assert_eq!(worker_of(&app, &a, "g1").await.as_deref(), Some("w3"));
    assert_eq!(worker_of(&app, &a, "g2").await.as_deref(), Some("w9"));
    assert_eq!(poll(&app.router, "w3").await, ["g1"]);
    // The pinned g1 loads w3: new gateways go to w1, then w2.
    for (i, w) in [(3, "w1"), (4, "w2")] {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
        assert_on(&app, &a, &format!("g{i}"), w).await;
    }
    // Its worker stops: a pinned gateway still does not move.
    expire_lease(&app, "w3").await;
    poll(&app.router, "w1").await;
    assert_eq!(worker_of(&app, &a, "g1").await.as_deref(), Some("w3"));
    // Deleted and created again, a pinned gateway goes back to its pin.
    let r = delete(&app, &a, "/api/v1/tenants/acme/gateways/g2").await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        create_gateway(&app.router, &a, 2).await,
        StatusCode::CREATED
    );
    assert_eq!(worker_of(&app, &a, "g2").await.as_deref(), Some("w9"));
}

/// Two replicas create gateways at once: the creations are serialised by the database, so the
/// second counts the first's gateway and they land on different workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_on_two_replicas_spread() {
    let app = test_app().await;
    let other = replica(&app).await;
    let a = tenant(&app).await;
    workers(&app, 2).await;
    let (r1, r2) = tokio::join!(
        create_gateway(&app.router, &a, 1),
        create_gateway(&other, &a, 2)
    );
    assert_eq!((r1, r2), (StatusCode::CREATED, StatusCode::CREATED));
    let (w1, w2) = (
        worker_of(&app, &a, "g1").await,
        worker_of(&app, &a, "g2").await,
    );
    assert!(w1.is_some() && w2.is_some() && w1 != w2, "{w1:?} {w2:?}");
    assert_on(&app, &a, "g1", w1.as_deref().unwrap_or_default()).await;
    assert_on(&app, &a, "g2", w2.as_deref().unwrap_or_default()).await;
}

/// Two replicas place orphans at once (two workers polling): the placements are serialised,
/// so every gateway is placed once and the spread holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_on_two_replicas_place_each_orphan_once_and_spread() {
    let app = test_app().await;
    let other = replica(&app).await;
    let a = tenant(&app).await;
    for i in 1..=4 {
        assert_eq!(
            create_gateway(&app.router, &a, i).await,
            StatusCode::CREATED
        );
    }
    workers(&app, 2).await;
    let (d1, d2) = tokio::join!(poll(&app.router, "w1"), poll(&other, "w2"));
    // Each poll answers at a version at or after its own placement; ask again for the final
    // state.
    let _ = (d1, d2);
    let (mine1, mine2) = (poll(&app.router, "w1").await, poll(&other, "w2").await);
    assert_eq!(mine1.len(), 2, "{mine1:?} {mine2:?}");
    assert_eq!(mine2.len(), 2, "{mine1:?} {mine2:?}");
    let mut all: Vec<String> = mine1.iter().chain(&mine2).cloned().collect();
    all.sort();
    assert_eq!(all, ["g1", "g2", "g3", "g4"], "each gateway on one worker");
    for g in &mine1 {
        assert_on(&app, &a, g, "w1").await;
    }
    for g in &mine2 {
        assert_on(&app, &a, g, "w2").await;
    }
}
