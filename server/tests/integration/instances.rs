//! Issue 16: redundant gateways on the server. Two eligible workers give a gateway two
//! instances on different workers (zones first); one gives it one, `not redundant`; reported
//! takeovers are adopted when their term is not stale; a lost worker's slot is re-placed; a
//! drain hands over, then moves the standby; the API, `/metrics` and the CLI show it.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn beat(app: &TestApp, name: &str, n: u8, zone: Option<&str>) {
    beat_redundant(app, name, n, zone).await;
}

async fn desired(app: &TestApp, name: &str) -> Value {
    desired_of(app, name).await
}

/// Gateway `gw` in worker `name`'s desired state (`Null` if absent).
async fn gateway_in(app: &TestApp, name: &str, gw: &str) -> Value {
    desired(app, name).await["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .find(|g| g["name"] == gw)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A tenant `acme` with VNet `hub` and gateway `hub-gw` (made after the workers beat, so it
/// is placed at creation).
async fn hub(app: &TestApp) -> Cred {
    let a = admin(app).await;
    ok(post(app, &a, "/api/v1/tenants", json!({"name": "acme"})).await);
    ok(post(
        app,
        &a,
        "/api/v1/tenants/acme/vnets",
        json!({"name": "hub", "region": "westeurope", "address_space": ["10.0.0.0/16"],
            "subnets": [{"name": "GatewaySubnet", "prefix": "10.0.255.0/27"}]}),
    )
    .await);
    ok(post(
        app,
        &a,
        "/api/v1/tenants/acme/gateways",
        json!({"name": "hub-gw", "vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    )
    .await);
    a
}

async fn status(app: &TestApp, a: &Cred) -> Value {
    ok(get_as(app, a, "/api/v1/tenants/acme/gateways/hub-gw/status").await)
}

async fn version(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(&app.url).await.expect("db");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT value FROM meta WHERE key = 'topology_version'",
        ))
        .await
        .expect("query")
        .expect("row");
    let v: i64 = row.try_get("", "value").expect("value");
    db.close().await.expect("close");
    v
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(&app.url).await.expect("db");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("row");
    let n: i64 = row.try_get("", "n").expect("n");
    db.close().await.expect("close");
    n
}

async fn expire_lease(app: &TestApp, worker: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(&app.url).await.expect("db");
    db.execute_unprepared(&format!(
        "UPDATE workers SET lease_expires_at = 0 WHERE name = '{worker}'"
    ))
    .await
    .expect("update");
    db.close().await.expect("close");
}

/// Worker `name` reports gateway hub-gw: its instance block (if any), a bind error,
/// connections.
async fn report(app: &TestApp, name: &str, instance: Option<Value>, extra: Value) -> Answer {
    let mut g = json!({"tenant": "acme", "name": "hub-gw", "connections": []});
    if let Some(i) = instance {
        g["instance"] = i;
    }
    if let Value::Object(m) = extra {
        for (k, v) in m {
            g[k] = v;
        }
    }
    send(
        app,
        req(
            "POST",
            &format!("/api/v1/worker/status?name={name}"),
            &worker_cred(),
            Some(json!({"format": "isthmus.status/v1", "version": 1, "gateways": [g]})),
        ),
    )
    .await
}

fn role(index: u8, role: &str, term: u64) -> Value {
    json!({"instance": index, "role": role, "term": term, "partner_alive": true})
}

/// Both instances as (worker, role) by index, from the status view.
fn instances_of(s: &Value) -> Vec<(String, String)> {
    s["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| {
            (
                i["worker"].as_str().unwrap_or("").to_owned(),
                i["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_live_workers_give_two_instances_on_different_workers_in_other_zones() {
    let app = test_app().await;
    beat(&app, "w1", 1, Some("z1")).await;
    beat(&app, "w2", 2, Some("z1")).await;
    beat(&app, "w3", 3, Some("z2")).await;
    let a = hub(&app).await;
    let on_w1 = gateway_in(&app, "w1", "hub-gw").await;
    let i1 = &on_w1["instance"];
    assert_eq!(i1["instance"], 0, "{on_w1}");
    assert_eq!(i1["active"], 0);
    assert_eq!(
        i1["partner"], "198.51.100.3:51899",
        "the standby goes to the other zone, not to the less loaded w2"
    );
    let on_w3 = gateway_in(&app, "w3", "hub-gw").await;
    assert_eq!(on_w3["instance"]["instance"], 1);
    assert_eq!(on_w3["instance"]["partner"], "198.51.100.1:51899");
    assert_eq!(on_w3["instance"]["key"], i1["key"], "one key per gateway");
    assert_eq!(on_w3["instance"]["term"], i1["term"]);
    assert!(i1["term"].as_u64().unwrap_or(0) >= 1);
    assert!(on_w3["instance"].get("handover").is_none());
    assert_eq!(
        on_w3["public_endpoint"]
            .as_str()
            .map(|e| e.starts_with("198.51.100.3:")),
        Some(true)
    );
    assert_eq!(gateway_in(&app, "w2", "hub-gw").await, Value::Null);

    let s = status(&app, &a).await;
    assert_eq!(s["redundancy"], "redundant", "{s}");
    assert_eq!(s["worker"], "w1");
    assert_eq!(
        instances_of(&s),
        [
            ("w1".into(), "active".into()),
            ("w3".into(), "standby".into())
        ]
    );
    let g = ok(get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await);
    let port = g["public_endpoint"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(g["public_endpoint"], format!("198.51.100.1:{port}"));
    assert_eq!(g["secondary_endpoint"], format!("198.51.100.3:{port}"));

    let h = ok(send(&app, get("/api/v1/health")).await);
    let w3 = h["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "w3")
        .cloned()
        .unwrap();
    assert_eq!(
        (w3["zone"].clone(), w3["standby_instances"].clone()),
        (json!("z2"), json!(1))
    );
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    for line in [
        r#"isthmus_gateway_instance_active{tenant="acme",gateway="hub-gw",instance="0",worker="w1"} 1"#,
        r#"isthmus_gateway_instance_active{tenant="acme",gateway="hub-gw",instance="1",worker="w3"} 0"#,
        r#"isthmus_gateway_redundant{tenant="acme",gateway="hub-gw"} 1"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let anonymous = String::from_utf8(send(&app, get("/metrics")).await.body).unwrap();
    assert!(
        !anonymous.contains("isthmus_gateway_redundant{"),
        "named series need a token"
    );
}

#[tokio::test]
async fn one_live_worker_gives_one_instance_not_redundant_and_a_bad_zone_is_refused() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    let a = hub(&app).await;
    let g = gateway_in(&app, "w1", "hub-gw").await;
    assert!(g["instance"].is_null(), "one instance has no block: {g}");
    let s = status(&app, &a).await;
    assert_eq!(s["redundancy"], "not_redundant");
    assert_eq!(s["not_redundant_because"], "one_live_worker");
    assert_eq!(instances_of(&s), [("w1".into(), "active".into())]);
    assert!(
        ok(get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await)
            .get("secondary_endpoint")
            .is_none()
    );
    for zone in ["", "eu west", &"z".repeat(65), "zone/1"] {
        let r = send(
            &app,
            req(
                "POST",
                "/api/v1/worker/heartbeat",
                &worker_cred(),
                Some(json!({"protocol": 1, "name": "w1", "version": "t", "zone": zone})),
            ),
        )
        .await;
        assert_status(&r, StatusCode::BAD_REQUEST);
    }
    // A second eligible worker: the gateway gets its standby at the next poll.
    beat(&app, "w2", 2, None).await;
    assert_eq!(
        gateway_in(&app, "w2", "hub-gw").await["instance"]["instance"],
        1
    );
    assert_eq!(status(&app, &a).await["redundancy"], "redundant");
}

#[tokio::test]
async fn a_reported_takeover_at_a_higher_term_is_adopted_and_a_stale_one_is_not() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    beat(&app, "w2", 2, None).await;
    let a = hub(&app).await;
    let term = gateway_in(&app, "w2", "hub-gw").await["instance"]["term"]
        .as_u64()
        .unwrap();
    // A stale report (a term below the stored one) changes nothing.
    let before = version(&app).await;
    assert_status(
        &report(&app, "w2", Some(role(1, "active", term - 1)), json!({})).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(version(&app).await, before);
    assert_eq!(status(&app, &a).await["worker"], "w1");
    // A report of instance 1 from a worker that does not hold it is ignored for roles.
    beat(&app, "w9", 9, None).await;
    assert_status(
        &report(&app, "w9", Some(role(1, "active", term + 5)), json!({})).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(version(&app).await, before);
    // The standby took over: adopted as it is, endpoints swapped, version bumped.
    assert_status(
        &report(&app, "w2", Some(role(1, "active", term + 1)), json!({})).await,
        StatusCode::NO_CONTENT,
    );
    assert!(version(&app).await > before);
    let g = ok(get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await);
    assert!(
        g["public_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.2:"),
        "{g}"
    );
    assert!(
        g["secondary_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.1:"),
        "{g}"
    );
    let on_w1 = gateway_in(&app, "w1", "hub-gw").await;
    assert_eq!(on_w1["instance"]["active"], 1);
    assert_eq!(on_w1["instance"]["term"], term + 1, "adopted without +1");
    let s = status(&app, &a).await;
    assert_eq!(s["worker"], "w2");
    assert_eq!(s["instances"][1]["role"], "active");
}

#[tokio::test]
async fn the_active_workers_lost_lease_makes_the_standby_active_and_a_third_worker_the_standby() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    beat(&app, "w2", 2, None).await;
    let a = hub(&app).await;
    let term = gateway_in(&app, "w2", "hub-gw").await["instance"]["term"]
        .as_u64()
        .unwrap();
    // w2 already reported a higher term (a takeover the server has not seen as active yet).
    assert_status(
        &report(&app, "w2", Some(role(1, "standby", term + 3)), json!({})).await,
        StatusCode::NO_CONTENT,
    );
    expire_lease(&app, "w1").await;
    beat(&app, "w3", 3, None).await;
    let on_w2 = gateway_in(&app, "w2", "hub-gw").await;
    assert_eq!(on_w2["instance"]["instance"], 1);
    assert_eq!(
        on_w2["instance"]["active"], 1,
        "the surviving instance is active"
    );
    assert_eq!(
        on_w2["instance"]["term"],
        term + 4,
        "above every reported term"
    );
    assert_eq!(on_w2["instance"]["partner"], "198.51.100.3:51899");
    let on_w3 = gateway_in(&app, "w3", "hub-gw").await;
    assert_eq!(on_w3["instance"]["instance"], 0, "the lost slot, re-placed");
    let s = status(&app, &a).await;
    assert_eq!(
        instances_of(&s),
        [
            ("w3".into(), "standby".into()),
            ("w2".into(), "active".into())
        ]
    );
    assert!(
        ok(get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await)["public_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.2:")
    );
    // With no third worker, a lost standby's slot is dropped: one instance, not redundant.
    expire_lease(&app, "w3").await;
    let alone = gateway_in(&app, "w2", "hub-gw").await;
    assert!(alone["instance"].is_null(), "{alone}");
    assert_eq!(
        status(&app, &a).await["not_redundant_because"],
        "one_live_worker"
    );
}

#[tokio::test]
async fn a_drain_hands_over_then_moves_the_standby_and_undrain_moves_nothing_back() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    beat(&app, "w2", 2, None).await;
    let a = hub(&app).await;
    let term = gateway_in(&app, "w2", "hub-gw").await["instance"]["term"]
        .as_u64()
        .unwrap();
    beat(&app, "w3", 3, None).await;
    let user = user(&app, "bob").await;
    assert_status(
        &post(&app, &user, "/api/v1/workers/w1/drain", json!({})).await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &get_as(&app, &user, "/api/v1/workers").await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &post(&app, &a, "/api/v1/workers/nope/drain", json!({})).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &post(&app, &a, "/api/v1/workers/w1/drain", json!({})).await,
        StatusCode::NO_CONTENT,
    );
    let on_w1 = gateway_in(&app, "w1", "hub-gw").await;
    assert_eq!(on_w1["instance"]["handover"], true, "{on_w1}");
    assert_eq!(
        on_w1["instance"]["active"], 0,
        "nothing moves before the handover"
    );
    assert!(
        gateway_in(&app, "w2", "hub-gw").await["instance"]
            .get("handover")
            .is_none()
    );
    assert_eq!(gateway_in(&app, "w3", "hub-gw").await, Value::Null);
    // The standby took over (the handover): adopted, then the draining standby slot moves.
    assert_status(
        &report(&app, "w2", Some(role(1, "active", term + 1)), json!({})).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        gateway_in(&app, "w1", "hub-gw").await,
        Value::Null,
        "w1 runs nothing now"
    );
    let on_w3 = gateway_in(&app, "w3", "hub-gw").await;
    assert_eq!(on_w3["instance"]["instance"], 0);
    assert_eq!(on_w3["instance"]["active"], 1);
    assert_eq!(on_w3["instance"]["term"], term + 2);
    let list = ok(get_as(&app, &a, "/api/v1/workers").await);
    let w1 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "w1")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            w1["draining"].clone(),
            w1["live"].clone(),
            w1["active_instances"].clone()
        ),
        (json!(true), json!(true), json!(0))
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'worker.drain' AND target = 'w1'"
        )
        .await,
        1
    );
    assert_status(
        &post(&app, &a, "/api/v1/workers/w1/undrain", json!({})).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        gateway_in(&app, "w1", "hub-gw").await,
        Value::Null,
        "nothing moves back"
    );
    let list = ok(get_as(&app, &a, "/api/v1/workers").await);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|w| w["draining"] == false)
    );
}

#[tokio::test]
async fn a_standby_that_cannot_bind_leaves_the_gateway_not_redundant() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    beat(&app, "w2", 2, None).await;
    let a = hub(&app).await;
    let term = gateway_in(&app, "w2", "hub-gw").await["instance"]["term"]
        .as_u64()
        .unwrap();
    assert_status(
        &report(
            &app,
            "w2",
            Some(role(1, "standby", term)),
            json!({"bind_error": "address in use"}),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let s = status(&app, &a).await;
    assert_eq!(s["redundancy"], "not_redundant");
    assert_eq!(s["not_redundant_because"], "standby_cannot_bind");
    assert_eq!(s["instances"][1]["bind_error"], "address in use");
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    assert!(
        text.contains(r#"isthmus_gateway_redundant{tenant="acme",gateway="hub-gw"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_point_to_site_clients_reported_endpoint_reaches_the_standby() {
    use crate::p2s::{Enrol, enrol, leaf, root, setup, upload_root};
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    beat(&app, "w2", 2, None).await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    ok(enrol(&app, &Enrol::with(&leaf(&ca, "alice"))).await);
    let standby = |d: Value| {
        d["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .find(|p| p["kind"]["type"] == "P2sClient")
            .cloned()
            .expect("client peer")
    };
    let gw = gateway_in(&app, "w2", "hub-gw").await;
    let (active, mine) = if gw["instance"]["instance"] == gw["instance"]["active"] {
        ("w2", "w1")
    } else {
        ("w1", "w2")
    };
    let client = standby(gateway_in(&app, mine, "hub-gw").await);
    assert!(
        client.get("last_endpoint").is_none(),
        "not seen yet: {client}"
    );
    let name = client["name"].as_str().unwrap().to_owned();
    let connections = json!({"connections": [{"name": name, "rx_bytes": 1, "tx_bytes": 1,
        "endpoint": "192.0.2.77:40000", "state": "up"}]});
    let before = version(&app).await;
    assert_status(
        &report(&app, active, None, connections.clone()).await,
        StatusCode::NO_CONTENT,
    );
    // The standby only fetches on a version change (long poll): the new endpoint moves it.
    let after = version(&app).await;
    assert!(
        after > before,
        "a new client endpoint bumps the version: {before} -> {after}"
    );
    let client = standby(gateway_in(&app, mine, "hub-gw").await);
    assert_eq!(client["last_endpoint"], "192.0.2.77:40000", "{client}");
    // The same endpoint again (every report, every 5 s) changes nothing.
    assert_status(
        &report(&app, active, None, connections).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        version(&app).await,
        after,
        "an unchanged endpoint leaves the version"
    );
}

#[test]
fn the_cli_lists_drains_and_undrains_workers() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_isthmus"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("ISTHMUS_MASTER_KEY")
            .output()
            .expect("isthmus runs");
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let (ok_, text) = run(&["worker", "drain", "w1"]);
    assert!(!ok_ && text.contains("no worker named `w1`"), "{text}");
    // A worker row as a heartbeat leaves it.
    let (ok_, text) = run(&["token", "create", "--worker", "w1"]);
    assert!(ok_, "{text}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", data.join("isthmus.db").display()))
            .await
            .unwrap();
        db.execute_unprepared(
            "INSERT INTO workers (token_id, name, version, last_seen_at, lease_expires_at, zone, draining) \
             VALUES (1, 'w1', 'test', 1, 4102444800000, 'z1', false)",
        )
        .await
        .unwrap();
        db.close().await.unwrap();
    });
    let (ok_, text) = run(&["worker", "drain", "w1"]);
    assert!(ok_ && text.contains("worker `w1` drained"), "{text}");
    let (ok_, text) = run(&["worker", "list"]);
    assert!(
        ok_ && text.contains("w1\tlive\tzone=z1\tdraining"),
        "{text}"
    );
    let (ok_, text) = run(&["worker", "undrain", "w1"]);
    assert!(ok_ && text.contains("undrained"), "{text}");
    let (_, text) = run(&["worker", "list"]);
    assert!(text.contains("\tserving\t"), "{text}");
}

#[tokio::test]
async fn a_drained_single_instance_first_gets_a_standby_elsewhere_then_hands_over() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    let a = hub(&app).await;
    assert!(gateway_in(&app, "w1", "hub-gw").await["instance"].is_null());
    assert_status(
        &post(&app, &a, "/api/v1/workers/w1/drain", json!({})).await,
        StatusCode::NO_CONTENT,
    );
    // Nowhere to go: it keeps running alone, with no handover to make.
    assert!(gateway_in(&app, "w1", "hub-gw").await["instance"].is_null());
    beat(&app, "w2", 2, None).await;
    let on_w2 = gateway_in(&app, "w2", "hub-gw").await;
    assert_eq!(on_w2["instance"]["instance"], 1, "{on_w2}");
    let on_w1 = gateway_in(&app, "w1", "hub-gw").await;
    assert_eq!(on_w1["instance"]["active"], 0);
    assert_eq!(on_w1["instance"]["handover"], true);
}

#[tokio::test]
async fn a_pinned_instance_stays_on_its_lost_worker_while_the_other_is_active() {
    let app = test_app().await;
    beat(&app, "w1", 1, None).await;
    beat(&app, "w2", 2, None).await;
    let a = hub(&app).await;
    assert_status(
        &put(
            &app,
            &a,
            "/api/v1/placements/acme/hub-gw",
            json!({"worker": "w1"}),
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let term = gateway_in(&app, "w2", "hub-gw").await["instance"]["term"]
        .as_u64()
        .unwrap();
    expire_lease(&app, "w1").await;
    beat(&app, "w3", 3, None).await;
    let on_w2 = gateway_in(&app, "w2", "hub-gw").await;
    assert_eq!(on_w2["instance"]["active"], 1, "{on_w2}");
    assert!(on_w2["instance"]["term"].as_u64().unwrap() > term);
    assert_eq!(
        on_w2["instance"]["partner"], "198.51.100.1:51899",
        "the pinned instance is not re-placed"
    );
    assert_eq!(gateway_in(&app, "w3", "hub-gw").await, Value::Null);
    let s = status(&app, &a).await;
    assert_eq!(s["not_redundant_because"], "standby_worker_down");
    assert_eq!(s["worker"], "w2");
}
