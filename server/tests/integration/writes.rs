//! The write path: racing creates, shared-key replacement on VNet-to-VNet pairs, and reads
//! that do not write.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// How many requests race for one name.
const RACERS: usize = 16;

fn vnet(name: &str, space: &str, gw_subnet: &str) -> Value {
    json!({"name": name, "region": "westeurope", "address_space": [space],
           "subnets": [{"name": "GatewaySubnet", "prefix": gw_subnet}]})
}

fn gateway(name: &str, vnet: &str) -> Value {
    json!({"name": name, "vnet": vnet, "gateway_type": "RouteBased", "sku": "VpnGw1"})
}

fn v2v(name: &str, gw: &str, remote: Value) -> Value {
    json!({"name": name, "gateway": gw, "kind": {"type": "VnetToVnet", "remote_gateway": remote}})
}

/// `RACERS` concurrent `POST path` of one body, each on its own task; their statuses.
async fn race(app: &TestApp, who: &Cred, path: &str, body: Value) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let router = app.router.clone();
            let (who, path, body) = (who.clone(), path.to_owned(), body.clone());
            tokio::spawn(async move {
                let r = send_to(&router, req("POST", &path, &who, Some(body))).await;
                assert!(
                    r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT,
                    "POST {path}: {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                );
                r.status
            })
        })
        .collect();
    let mut out = Vec::with_capacity(RACERS);
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[track_caller]
fn exactly_one_created(statuses: &[StatusCode], what: &str) {
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        (created, conflicts),
        (1, RACERS - 1),
        "{what}: {statuses:?}"
    );
}

/// The audit entries with `action` and `target`, as an administrator sees them.
async fn audited(app: &TestApp, admin: &Cred, action: &str, target: &str) -> usize {
    ok(get_as(app, admin, "/api/v1/audit?limit=1000").await)
        .as_array()
        .expect("audit entries")
        .iter()
        .filter(|e| e["action"] == action && e["target"] == target)
        .count()
}

/// Concurrent creates of one name, of every kind (tenant, VNet, gateway, site, connection):
/// exactly one 201, the rest 409, one audit entry, and the winner is what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_name_one_201_the_rest_409_one_audit_entry() {
    let app = test_app().await;
    let a = admin(&app).await;

    exactly_one_created(
        &race(&app, &a, "/api/v1/tenants", json!({"name": "acme"})).await,
        "tenant",
    );
    assert_eq!(audited(&app, &a, "tenant.create", "acme").await, 1);

    let base = "/api/v1/tenants/acme";
    let cases = [
        (
            "vnets",
            "vnet",
            "hub",
            vnet("hub", "10.0.0.0/16", "10.0.255.0/27"),
        ),
        ("gateways", "gateway", "hub-gw", gateway("hub-gw", "hub")),
        (
            "sites",
            "site",
            "branch",
            json!({"name": "branch", "device_host": "203.0.113.10",
                   "address_prefixes": ["192.168.1.0/24"],
                   "device_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="}),
        ),
        (
            "connections",
            "connection",
            "to-branch",
            json!({"name": "to-branch", "gateway": "hub-gw",
                   "kind": {"type": "SiteToSite", "site": "branch"}}),
        ),
    ];
    for (segment, kind, name, body) in cases {
        let statuses = race(&app, &a, &format!("{base}/{segment}"), body).await;
        exactly_one_created(&statuses, segment);
        assert_eq!(
            audited(&app, &a, &format!("{kind}.create"), name).await,
            1,
            "{segment}"
        );
        let list = ok(get_as(&app, &a, &format!("{base}/{segment}")).await);
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{segment}: {list}");
    }
    // One gateway means one endpoint allocation that stuck.
    let gw = ok(get_as(&app, &a, &format!("{base}/gateways/hub-gw")).await);
    assert!(gw["public_endpoint"].is_string(), "{gw}");
}

/// The same race on a second replica of the same database: the database serialises them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_two_replicas_one_201() {
    let app = test_app().await;
    let other = replica(&app).await;
    let a = admin(&app).await;
    created(&app, &a, "/api/v1/tenants", json!({"name": "acme"})).await;
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let router = if i % 2 == 0 {
                app.router.clone()
            } else {
                other.clone()
            };
            let a = a.clone();
            tokio::spawn(async move {
                send_to(
                    &router,
                    req(
                        "POST",
                        "/api/v1/tenants/acme/vnets",
                        &a,
                        Some(vnet("hub", "10.0.0.0/16", "10.0.255.0/27")),
                    ),
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    exactly_one_created(&statuses, "vnet on two replicas");
    assert_eq!(audited(&app, &a, "vnet.create", "hub").await, 1);
}

fn worker(path: &str) -> axum::http::Request<axum::body::Body> {
    req(
        "GET",
        path,
        &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
        None,
    )
}

/// The derived preshared key of `connection`'s peer on `tenant/gateway` in worker w1's
/// desired state (every gateway is placed on w1, the only worker).
fn peer_psk(desired: &Value, tenant: &str, gateway: &str, connection: &str) -> Option<String> {
    desired["gateways"]
        .as_array()?
        .iter()
        .find(|g| g["tenant"] == tenant && g["name"] == gateway)?["peers"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == connection)?["preshared_key"]
        .as_str()
        .map(str::to_owned)
}

async fn desired(app: &TestApp) -> Value {
    ok(send(app, worker("/api/v1/worker/desired?name=w1&since=0")).await)
}

async fn shared_key(app: &TestApp, who: &Cred, tenant: &str, name: &str) -> String {
    ok(get_as(
        app,
        who,
        &format!("/api/v1/tenants/{tenant}/connections/{name}/shared-key"),
    )
    .await)["shared_key"]
        .as_str()
        .expect("shared_key")
        .to_owned()
}

/// GW-4: the shared key of a same-tenant VNet-to-VNet pair is replaceable: setting it on one
/// half sets both halves in one write, and both peers of the desired state derive the new PSK.
#[tokio::test]
async fn gw_4_setting_the_key_of_one_same_tenant_v2v_half_sets_both_halves() {
    let app = test_app().await;
    let a = admin(&app).await;
    let t = "/api/v1/tenants/acme";
    created(&app, &a, "/api/v1/tenants", json!({"name": "acme"})).await;
    for (v, space, sub, gw) in [
        ("hub", "10.0.0.0/16", "10.0.255.0/27", "hub-gw"),
        ("spoke", "10.1.0.0/16", "10.1.255.0/27", "spoke-gw"),
    ] {
        created(&app, &a, &format!("{t}/vnets"), vnet(v, space, sub)).await;
        created(&app, &a, &format!("{t}/gateways"), gateway(gw, v)).await;
    }
    let conns = format!("{t}/connections");
    created(
        &app,
        &a,
        &conns,
        v2v("hub-spoke", "hub-gw", json!({"name": "spoke-gw"})),
    )
    .await;
    created(
        &app,
        &a,
        &conns,
        v2v("spoke-hub", "spoke-gw", json!({"name": "hub-gw"})),
    )
    .await;
    let before = desired(&app).await;
    let old_psk = peer_psk(&before, "acme", "hub-gw", "hub-spoke").expect("psk");

    let r = put(
        &app,
        &a,
        &format!("{conns}/hub-spoke/shared-key"),
        json!({"shared_key": "Replaced123"}),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        shared_key(&app, &a, "acme", "hub-spoke").await,
        "Replaced123"
    );
    assert_eq!(
        shared_key(&app, &a, "acme", "spoke-hub").await,
        "Replaced123"
    );
    // One write: both halves audited as set, under one topology version.
    let log = ok(get_as(&app, &a, "/api/v1/audit?tenant=acme").await);
    let log = log.as_array().expect("entries");
    for half in ["hub-spoke", "spoke-hub"] {
        assert!(
            log.iter()
                .any(|e| e["action"] == "connection.shared_key.set" && e["target"] == half),
            "{half}: {log:?}"
        );
    }
    let after = desired(&app).await;
    assert_eq!(
        after["version"].as_u64(),
        before["version"].as_u64().map(|v| v + 1),
        "both halves in one write"
    );
    let hub = peer_psk(&after, "acme", "hub-gw", "hub-spoke").expect("hub psk");
    let spoke = peer_psk(&after, "acme", "spoke-gw", "spoke-hub").expect("spoke psk");
    assert_eq!(hub, spoke);
    assert_ne!(hub, old_psk);
}

/// GW-4 / CONN-2: a cross-tenant pair's key is replaceable by its owners, each on their half:
/// while the halves differ the write is accepted (not refused), and once both carry the new
/// key the pair's peers derive equal PSKs again.
#[tokio::test]
async fn conn_2_gw_4_each_owner_replaces_the_key_of_its_cross_tenant_half() {
    let app = test_app().await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    for (who, t, space, sub) in [
        (&alice, "a-corp", "10.10.0.0/16", "10.10.255.0/27"),
        (&bob, "b-corp", "10.20.0.0/16", "10.20.255.0/27"),
    ] {
        created(&app, who, "/api/v1/tenants", json!({"name": t})).await;
        created(
            &app,
            who,
            &format!("/api/v1/tenants/{t}/vnets"),
            vnet("net", space, sub),
        )
        .await;
        created(
            &app,
            who,
            &format!("/api/v1/tenants/{t}/gateways"),
            gateway("gw", "net"),
        )
        .await;
    }
    let half = |remote: &str| {
        let mut h = v2v("v2v", "gw", json!({"tenant": remote, "name": "gw"}));
        h["shared_key"] = json!("SameKey123");
        h
    };
    created(
        &app,
        &alice,
        "/api/v1/tenants/a-corp/connections",
        half("b-corp"),
    )
    .await;
    created(
        &app,
        &bob,
        "/api/v1/tenants/b-corp/connections",
        half("a-corp"),
    )
    .await;
    let before = desired(&app).await;
    let old = peer_psk(&before, "a-corp", "gw", "v2v").expect("psk");
    assert_eq!(
        peer_psk(&before, "b-corp", "gw", "v2v").as_ref(),
        Some(&old)
    );

    for (who, t) in [(&alice, "a-corp"), (&bob, "b-corp")] {
        let r = put(
            &app,
            who,
            &format!("/api/v1/tenants/{t}/connections/v2v/shared-key"),
            json!({"shared_key": "NewKey456"}),
        )
        .await;
        assert_status(&r, StatusCode::NO_CONTENT);
        assert_eq!(shared_key(&app, who, t, "v2v").await, "NewKey456");
        if t == "a-corp" {
            // Alice's write set her half only: Bob's half is his to set.
            assert_eq!(shared_key(&app, &bob, "b-corp", "v2v").await, "SameKey123");
        }
    }
    let after = desired(&app).await;
    let a_psk = peer_psk(&after, "a-corp", "gw", "v2v").expect("a psk");
    let b_psk = peer_psk(&after, "b-corp", "gw", "v2v").expect("b psk");
    assert_eq!(a_psk, b_psk);
    assert_ne!(a_psk, old);
}

/// A desired-state poll with nothing to place reads and answers: it does not take the write
/// gate (a held gate does not delay it), and the topology version and the placements stay as
/// they were. A poll that must place a gateway does wait for the gate, then writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_state_poll_with_nothing_to_place_does_not_write() {
    use isthmus_server::db::entities::placement;
    use sea_orm::EntityTrait;
    let app = test_app().await;
    let a = admin(&app).await;
    created(&app, &a, "/api/v1/tenants", json!({"name": "acme"})).await;
    let t = "/api/v1/tenants/acme";
    created(
        &app,
        &a,
        &format!("{t}/vnets"),
        vnet("hub", "10.0.0.0/16", "10.0.255.0/27"),
    )
    .await;
    created(&app, &a, &format!("{t}/gateways"), gateway("hub-gw", "hub")).await;

    // A replica whose write gate the test holds.
    let (conn, kind) = isthmus_server::db::connect(&app.url)
        .await
        .expect("database");
    let sealer = isthmus_server::secrets::Sealer::from_key(&[42u8; 32]).expect("key");
    let settings = isthmus_server::state::Settings {
        portal_dir: app._dir.path().join("portal"),
        lease_seconds: 15,
        endpoint_pool: Default::default(),
    };
    let state = isthmus_server::AppState::new(conn.clone(), kind, settings, sealer);
    let router = isthmus_server::app(state.clone());
    let poll = |since: u64| {
        let router = router.clone();
        async move {
            send_to(
                &router,
                worker(&format!(
                    "/api/v1/worker/desired?name=w1&since={since}&wait=0"
                )),
            )
            .await
        }
    };
    // The first poll places the gateway on w1.
    let first = ok(poll(0).await);
    let version = first["version"].as_u64().expect("version");
    let placements = || async {
        let mut rows: Vec<(String, String, String, bool)> = placement::Entity::find()
            .all(&conn)
            .await
            .expect("placements")
            .into_iter()
            .map(|p| (p.tenant, p.gateway, p.worker, p.pinned))
            .collect();
        rows.sort();
        rows
    };
    let placed = placements().await;
    assert_eq!(placed.len(), 1, "{placed:?}");

    let gate = state.write_gate().await;
    let r = tokio::time::timeout(std::time::Duration::from_secs(3), poll(version))
        .await
        .expect("a poll with nothing to place must not wait for the write gate");
    assert_status(&r, StatusCode::NO_CONTENT);
    let stored = isthmus_server::store::current_version(&conn)
        .await
        .expect("version");
    assert_eq!(u64::try_from(stored).ok(), Some(version));
    assert_eq!(placements().await, placed);

    // Something to place: that poll writes, so it queues behind the gate. A gateway created
    // while a worker is live is placed by its creation, so w1's lease runs out first: the new
    // gateway is an orphan until w1 polls again.
    {
        use sea_orm::ConnectionTrait;
        conn.execute_unprepared("UPDATE workers SET lease_expires_at = 0")
            .await
            .expect("expire the lease");
    }
    created(
        &app,
        &a,
        &format!("{t}/vnets"),
        vnet("spoke", "10.1.0.0/16", "10.1.255.0/27"),
    )
    .await;
    created(
        &app,
        &a,
        &format!("{t}/gateways"),
        gateway("spoke-gw", "spoke"),
    )
    .await;
    let now = u64::try_from(
        isthmus_server::store::current_version(&conn)
            .await
            .expect("version"),
    )
    .expect("version");
    let waiting = tokio::spawn(poll(now));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "placing must wait for the write gate"
    );
    drop(gate);
    let d = ok(waiting.await.expect("task"));
    assert!(d["version"].as_u64() > Some(now), "{}", d["version"]);
    assert_eq!(placements().await.len(), 2);
}

/// The sources of the server, as `(path relative to server/src, text)`.
fn server_sources() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(root).expect("prefix").display().to_string();
                out.push((rel, std::fs::read_to_string(&p).expect("source")));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// The store is the one way to write the topology: the version is bumped only inside it, it
/// knows nothing of HTTP (its errors become answers in `error.rs`), and it depends on nothing
/// in `api/`, so `api/`, `audit`, `auth` and the store no longer import each other in a circle.
#[test]
fn the_store_alone_bumps_the_version_and_knows_no_http() {
    let sources = server_sources();
    let in_store = |p: &str| p == "store.rs" || p.starts_with("store/");
    for (path, text) in &sources {
        if !in_store(path) {
            assert!(
                !text.contains("bump_version"),
                "{path} bumps the topology version; only the store may"
            );
            continue;
        }
        for banned in [
            "crate::api::",
            "use crate::api",
            "crate::error::",
            "use crate::error",
            "ApiError",
            "axum",
            "StatusCode",
        ] {
            assert!(
                !text.contains(banned),
                "{path} mentions `{banned}`: the store knows nothing of HTTP or of api/"
            );
        }
    }
    let (_, auth) = sources
        .iter()
        .find(|(p, _)| p == "auth.rs")
        .expect("auth.rs");
    assert!(!auth.contains("crate::store"), "auth.rs imports the store");
    let (_, audit) = sources
        .iter()
        .find(|(p, _)| p == "audit.rs")
        .expect("audit.rs");
    assert!(
        !audit.contains("crate::store") && !audit.contains("crate::error"),
        "audit.rs imports the store or the HTTP error"
    );
    let mappings = sources
        .iter()
        .filter(|(_, t)| {
            t.contains("impl From<crate::store::StoreError>") || t.contains("impl From<StoreError>")
        })
        .map(|(p, _)| p.as_str())
        .collect::<Vec<_>>();
    assert_eq!(
        mappings,
        ["error.rs"],
        "StoreError is mapped to answers in one place"
    );
}
