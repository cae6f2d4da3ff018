//! Issue #16: the gateways' drop counters (cookie replies under a handshake flood, shed
//! handshakes, LIM-4, bad datagrams) travel in the workers' status reports and appear in
//! `/metrics`: summed and unnamed for everyone, per gateway for readers who may see it.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn gateway(app: &TestApp) -> Cred {
    let a = admin(app).await;
    for (path, body) in [
        ("/api/v1/tenants", json!({"name": "acme"})),
        (
            "/api/v1/tenants/acme/vnets",
            json!({"name": "hub", "region": "westeurope", "address_space": ["10.0.0.0/16"],
                "subnets": [{"name": "GatewaySubnet", "prefix": "10.0.255.0/27"}]}),
        ),
        (
            "/api/v1/tenants/acme/gateways",
            json!({"name": "hub-gw", "vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
        ),
    ] {
        let r = send(app, req("POST", path, &a, Some(body))).await;
        assert!(
            r.status.is_success(),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    }
    a
}

async fn report(app: &TestApp, gateway: Value) -> Answer {
    let report = json!({"format": "isthmus.status/v1", "version": 3, "gateways": [gateway]});
    send(
        app,
        req(
            "POST",
            "/api/v1/worker/status?name=w1",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(report),
        ),
    )
    .await
}

#[tokio::test]
async fn gateway_drop_counters_appear_in_metrics() {
    let app = test_app().await;
    let a = gateway(&app).await;
    // A worker from before the counters: nothing to show, and the report is accepted.
    let old = report(
        &app,
        json!({"tenant": "acme", "name": "hub-gw", "connections": []}),
    )
    .await;
    assert_eq!(old.status, StatusCode::NO_CONTENT);
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    assert!(
        text.contains(r#"isthmus_drops_total{reason="cookie_reply"} 0"#),
        "{text}"
    );
    assert!(!text.contains("isthmus_gateway_drops_total{"), "{text}");

    let r = report(
        &app,
        json!({"tenant": "acme", "name": "hub-gw", "connections": [],
            "drops": {"cookie_replies": 29000, "handshakes_shed": 270000, "rate_limited": 3, "bad_datagrams": 11}}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    for line in [
        "# TYPE isthmus_gateway_drops_total counter",
        r#"isthmus_gateway_drops_total{tenant="acme",gateway="hub-gw",reason="cookie_reply"} 29000"#,
        r#"isthmus_gateway_drops_total{tenant="acme",gateway="hub-gw",reason="handshake_shed"} 270000"#,
        r#"isthmus_gateway_drops_total{tenant="acme",gateway="hub-gw",reason="rate_limited"} 3"#,
        r#"isthmus_gateway_drops_total{tenant="acme",gateway="hub-gw",reason="bad_datagram"} 11"#,
        r#"isthmus_drops_total{reason="handshake_shed"} 270000"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // Without a credential: the sums only, no gateway named.
    let anon = String::from_utf8(
        send(&app, req("GET", "/metrics", &Cred::None, None))
            .await
            .body,
    )
    .unwrap();
    assert!(
        anon.contains(r#"isthmus_drops_total{reason="cookie_reply"} 29000"#),
        "{anon}"
    );
    assert!(!anon.contains("hub-gw"), "{anon}");
}
