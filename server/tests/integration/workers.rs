//! The worker protocol: desired state (long poll), placement, status, metrics.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn setup(app: &TestApp) -> Cred {
    let a = admin(app).await;
    let ok = |r: Answer| {
        assert!(
            r.status.is_success(),
            "{}",
            String::from_utf8_lossy(&r.body)
        )
    };
    ok(send(
        app,
        req("POST", "/api/v1/tenants", &a, Some(json!({"name": "acme"}))),
    )
    .await);
    ok(send(app, req("POST", "/api/v1/tenants/acme/vnets", &a, Some(json!({"name": "hub", "region": "westeurope",
        "address_space": ["10.0.0.0/16"], "subnets": [{"name": "GatewaySubnet", "prefix": "10.0.255.0/27"}]})))).await);
    ok(send(
        app,
        req(
            "POST",
            "/api/v1/tenants/acme/gateways",
            &a,
            Some(json!({"name": "hub-gw", "vnet": "hub",
        "gateway_type": "RouteBased", "sku": "VpnGw1"})),
        ),
    )
    .await);
    ok(send(app, req("POST", "/api/v1/tenants/acme/sites", &a, Some(json!({"name": "branch", "device_host": "203.0.113.10",
        "address_prefixes": ["192.168.1.0/24"], "device_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="})))).await);
    ok(send(
        app,
        req(
            "POST",
            "/api/v1/tenants/acme/connections",
            &a,
            Some(json!({"name": "to-branch", "gateway": "hub-gw",
        "kind": {"type": "SiteToSite", "site": "branch"}})),
        ),
    )
    .await);
    a
}

fn worker(path: &str) -> axum::http::Request<axum::body::Body> {
    req(
        "GET",
        path,
        &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
        None,
    )
}

#[tokio::test]
async fn desired_state_carries_the_gateway_its_key_and_its_peers() {
    let app = test_app().await;
    let a = setup(&app).await;
    let r = send(&app, worker("/api/v1/worker/desired?name=w1&since=0")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let d = r.json();
    assert_eq!(d["format"], "isthmus.desired/v1");
    let g = &d["gateways"][0];
    assert_eq!(g["name"], "hub-gw");
    let gw = send(
        &app,
        req("GET", "/api/v1/tenants/acme/gateways/hub-gw", &a, None),
    )
    .await
    .json();
    let port: u16 = gw["public_endpoint"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(g["listen_port"], port);
    assert_eq!(g["private_key"].as_str().unwrap().len(), 44);
    let peer = &g["peers"][0];
    assert_eq!(
        peer["public_key"],
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
    );
    assert!(
        peer["allowed_ips"].to_string().contains("192.168.1.0/24"),
        "{peer}"
    );
    assert!(peer["preshared_key"].is_string());
}

#[tokio::test]
async fn desired_state_long_poll_answers_204_when_nothing_changed_and_200_on_change() {
    let app = test_app().await;
    let a = setup(&app).await;
    let first = send(&app, worker("/api/v1/worker/desired?name=w1&since=0"))
        .await
        .json();
    let v = first["version"].as_u64().unwrap();
    let r = send(
        &app,
        worker(&format!("/api/v1/worker/desired?name=w1&since={v}&wait=1")),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // A change wakes a waiting worker.
    let (waiting, _) = tokio::join!(
        send(
            &app,
            worker(&format!("/api/v1/worker/desired?name=w1&since={v}&wait=10"))
        ),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            send(
                &app,
                req(
                    "DELETE",
                    "/api/v1/tenants/acme/connections/to-branch",
                    &a,
                    None,
                ),
            )
            .await
        }
    );
    assert_eq!(waiting.status, StatusCode::OK);
    let d = waiting.json();
    assert!(d["version"].as_u64().unwrap() > v);
    assert_eq!(
        d["gateways"][0]["peers"],
        json!([]),
        "the removed connection is gone"
    );
}

#[tokio::test]
async fn pinned_gateways_move_to_their_worker() {
    let app = test_app().await;
    let a = setup(&app).await;
    let d1 = send(&app, worker("/api/v1/worker/desired?name=w1&since=0"))
        .await
        .json();
    assert_eq!(d1["gateways"].as_array().unwrap().len(), 1);
    let r = send(
        &app,
        req(
            "PUT",
            "/api/v1/placements/acme/hub-gw",
            &a,
            Some(json!({"worker": "w2"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let d1 = send(&app, worker("/api/v1/worker/desired?name=w1&since=0"))
        .await
        .json();
    assert_eq!(d1["gateways"], json!([]));
    let d2 = send(&app, worker("/api/v1/worker/desired?name=w2&since=0"))
        .await
        .json();
    assert_eq!(d2["gateways"][0]["name"], "hub-gw");
}

#[tokio::test]
async fn status_reports_reach_the_api_and_metrics() {
    let app = test_app().await;
    let a = setup(&app).await;
    let report: Value = json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
        "connections": [{"name": "to-branch", "last_handshake_unix": 1_790_000_000u64, "rx_bytes": 1234, "tx_bytes": 5678,
        "endpoint": "203.0.113.10:51820"}]}]});
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/worker/status?name=w1",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(report),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let s = send(&app, req("GET", "/api/v1/tenants/acme/status", &a, None))
        .await
        .json();
    assert_eq!(s[0]["connection"], "to-branch");
    assert_eq!(s[0]["rx_bytes"], 1234);
    assert_eq!(s[0]["endpoint"], "203.0.113.10:51820");
    let m = get_as(&app, &a, "/metrics").await;
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        text.contains(r#"isthmus_connection_tx_bytes{tenant="acme",gateway="hub-gw",connection="to-branch"} 5678"#),
        "{text}"
    );
}

#[tokio::test]
async fn worker_endpoints_refuse_bad_tokens_and_bad_queries() {
    let app = test_app().await;
    let r = send(
        &app,
        req(
            "GET",
            "/api/v1/worker/desired?name=w1",
            &Cred::Bearer("isw_nope".into()),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, worker("/api/v1/worker/desired?since=abc&name=w1")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(&app, worker("/api/v1/worker/desired")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("name"));
}

#[tokio::test]
async fn concurrent_workers_and_writers_never_get_a_500() {
    let app = test_app().await;
    let a = setup(&app).await;
    let fetch = |n: usize| {
        let app = &app;
        async move {
            send(
                app,
                worker(&format!("/api/v1/worker/desired?name=w{n}&since=0&wait=0")),
            )
            .await
            .status
        }
    };
    let write = |n: usize| {
        let app = &app;
        let a = a.clone();
        async move {
            send(
                app,
                req(
                    "POST",
                    "/api/v1/tenants",
                    &a,
                    Some(json!({"name": format!("t{n}")})),
                ),
            )
            .await
            .status
        }
    };
    let (f, w) = tokio::join!(
        futures_join(vec![
            fetch(0),
            fetch(1),
            fetch(2),
            fetch(3),
            fetch(4),
            fetch(5)
        ]),
        futures_join(vec![
            write(0),
            write(1),
            write(2),
            write(3),
            write(4),
            write(5)
        ]),
    );
    assert!(f.iter().all(|s| *s == StatusCode::OK), "{f:?}");
    assert!(w.iter().all(|s| *s == StatusCode::CREATED), "{w:?}");
}

/// Runs futures concurrently on this task.
async fn futures_join<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut handles = Vec::new();
    let set = fs.into_iter().map(Box::pin).collect::<Vec<_>>();
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    let mut out: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    handles.extend(out.into_iter().flatten());
    handles
}

async fn post_status(app: &TestApp, worker: &str, region_pairs: Value) -> Answer {
    let report: Value = json!({"format": "isthmus.status/v1", "version": 3, "gateways": [],
        "region_pairs": region_pairs});
    send(
        app,
        req(
            "POST",
            &format!("/api/v1/worker/status?name={worker}"),
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(report),
        ),
    )
    .await
}

#[tokio::test]
async fn lim_6_region_pair_bytes_reach_the_metering_api_and_metrics() {
    let app = test_app().await;
    let a = setup(&app).await;
    let rp = |a: &str, b: &str, rx: u64, tx: u64| json!({"a": a, "b": b, "rx_bytes": rx, "tx_bytes": tx});
    let stored = |r: Answer| {
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "{}",
            String::from_utf8_lossy(&r.body)
        )
    };
    // w1 runs westeurope gateways (one pair given in the other order), w2 the eastus side.
    stored(
        post_status(
            &app,
            "w1",
            json!([
                rp("westeurope", "eastus", 100, 200),
                rp("westeurope", "westeurope", 5, 7)
            ]),
        )
        .await,
    );
    stored(post_status(&app, "w2", json!([rp("eastus", "westeurope", 200, 100)])).await);
    // Counters are cumulative per worker run: a later report replaces, it does not add.
    stored(post_status(&app, "w1", json!([rp("eastus", "westeurope", 150, 260)])).await);
    // A report from before LIM-6 (no `region_pairs`) leaves the counters alone.
    stored(
        send(
            &app,
            req(
                "POST",
                "/api/v1/worker/status?name=w1",
                &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
                Some(json!({"format": "isthmus.status/v1", "version": 3, "gateways": []})),
            ),
        )
        .await,
    );
    // w2 restarts: its counters begin again at zero; the earlier run is kept.
    stored(post_status(&app, "w2", json!([rp("eastus", "westeurope", 30, 40)])).await);

    let r = send(&app, req("GET", "/api/v1/metering/region-pairs", &a, None)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let m = r.json();
    assert_eq!(m.as_array().unwrap().len(), 2, "{m}");
    let cross = &m[0];
    assert_eq!(
        (cross["a"].as_str(), cross["b"].as_str()),
        (Some("eastus"), Some("westeurope"))
    );
    assert_eq!(cross["billable"], true);
    assert_eq!(cross["rx_bytes"], 150 + 230);
    assert_eq!(cross["tx_bytes"], 260 + 140);
    assert_eq!(cross["billed_bytes"], 260 + 140);
    assert_eq!(cross["workers"][0]["worker"], "w1");
    assert_eq!(cross["workers"][0]["rx_bytes"], 150);
    assert_eq!(cross["workers"][1]["worker"], "w2");
    assert_eq!(cross["workers"][1]["tx_bytes"], 140);
    let same = &m[1];
    assert_eq!(
        (same["a"].as_str(), same["b"].as_str()),
        (Some("westeurope"), Some("westeurope"))
    );
    assert_eq!(same["billable"], false);
    assert_eq!(
        (same["rx_bytes"].as_i64(), same["tx_bytes"].as_i64()),
        (Some(5), Some(7))
    );
    assert_eq!(same["billed_bytes"], 0);

    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    for line in [
        "# TYPE isthmus_region_pair_bytes_total counter",
        r#"isthmus_region_pair_bytes_total{a="eastus",b="westeurope",direction="rx",billable="true"} 380"#,
        r#"isthmus_region_pair_bytes_total{a="eastus",b="westeurope",direction="tx",billable="true"} 400"#,
        r#"isthmus_region_pair_bytes_total{a="westeurope",b="westeurope",direction="rx",billable="false"} 5"#,
        r#"isthmus_region_pair_bytes_total{a="westeurope",b="westeurope",direction="tx",billable="false"} 7"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }

    // Administrators only; a bad region is refused with the field named, and nothing stored.
    let u = user(&app, "reader").await;
    let r = send(&app, req("GET", "/api/v1/metering/region-pairs", &u, None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        req("GET", "/api/v1/metering/region-pairs", &Cred::None, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = post_status(&app, "w3", json!([rp("", "eastus", 1, 1)])).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("region_pairs")
    );
    let m = send(&app, req("GET", "/api/v1/metering/region-pairs", &a, None))
        .await
        .json();
    assert_eq!(m[0]["workers"].as_array().unwrap().len(), 2);
}
