use axum::http::StatusCode;

use crate::support::*;

fn beat(name: &str) -> String {
    format!(r#"{{"protocol":1,"name":"{name}","version":"test"}}"#)
}

#[tokio::test]
async fn health_reports_version_database_and_no_workers() {
    let app = test_app().await;
    let a = send(&app, get("/api/v1/health")).await;
    assert_eq!(a.status, StatusCode::OK);
    let j = a.json();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["version"], isthmus_shared::VERSION);
    let expected = if std::env::var("ISTHMUS_TEST_POSTGRES").is_ok() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(j["database"], expected);
    assert_eq!(j["workers"], serde_json::json!([]));
}

#[tokio::test]
async fn heartbeat_lists_the_worker_in_health() {
    let app = test_app().await;
    let a = send(
        &app,
        post_json(
            "/api/v1/worker/heartbeat",
            Some(TEST_WORKER_TOKEN),
            beat("w-1"),
        ),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.json()["lease_seconds"], 15);
    // A second beat renews the same row rather than adding one.
    send(
        &app,
        post_json(
            "/api/v1/worker/heartbeat",
            Some(TEST_WORKER_TOKEN),
            beat("w-1"),
        ),
    )
    .await;
    let h = send(&app, get("/api/v1/health")).await.json();
    let workers = h["workers"].as_array().expect("array");
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["name"], "w-1");
    assert_eq!(workers[0]["version"], "test");
    // Its desired-state polls renew the lease too, and keep the version the heartbeat gave.
    let poll = send(
        &app,
        req(
            "GET",
            "/api/v1/worker/desired?name=w-1&since=0&wait=0",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            None,
        ),
    )
    .await;
    assert!(
        poll.status.is_success(),
        "{}",
        String::from_utf8_lossy(&poll.body)
    );
    let h = send(&app, get("/api/v1/health")).await.json();
    assert_eq!(h["workers"][0]["version"], "test", "{h}");
}

#[tokio::test]
async fn unknown_api_path_is_a_json_404() {
    let app = test_app().await;
    for path in ["/api/v1/nope", "/api/v2/health", "/api"] {
        let a = send(&app, get(path)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            a.content_type.starts_with("application/json"),
            "{path}: {}",
            a.content_type
        );
        assert_eq!(a.json()["error"], "not_found");
    }
}

#[tokio::test]
async fn malformed_json_is_a_json_400() {
    let app = test_app().await;
    let a = send(
        &app,
        post_json(
            "/api/v1/worker/heartbeat",
            Some(TEST_WORKER_TOKEN),
            "{not json",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let j = a.json();
    assert_eq!(j["error"], "bad_request");
    assert!(
        j["message"]
            .as_str()
            .unwrap_or("")
            .contains("malformed JSON"),
        "{j}"
    );
}

#[tokio::test]
async fn wrong_shape_and_unknown_fields_name_the_problem() {
    let app = test_app().await;
    let a = send(
        &app,
        post_json(
            "/api/v1/worker/heartbeat",
            Some(TEST_WORKER_TOKEN),
            r#"{"protocol":"one","name":"w","version":"v"}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("protocol")
    );
    let a = send(
        &app,
        post_json(
            "/api/v1/worker/heartbeat",
            Some(TEST_WORKER_TOKEN),
            r#"{"protocol":1,"name":"w","version":"v","extra":1}"#,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["message"].as_str().unwrap_or("").contains("extra"));
}

#[tokio::test]
async fn missing_content_type_is_a_json_415() {
    let app = test_app().await;
    let req = axum::http::Request::post("/api/v1/worker/heartbeat")
        .header("authorization", format!("Bearer {TEST_WORKER_TOKEN}"))
        .body(axum::body::Body::from(beat("w")))
        .expect("request");
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("Content-Type")
    );
}

#[tokio::test]
async fn oversized_body_is_a_json_413() {
    let app = test_app().await;
    let big = format!(
        r#"{{"protocol":1,"name":"w","version":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let a = send(
        &app,
        post_json("/api/v1/worker/heartbeat", Some(TEST_WORKER_TOKEN), big),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["error"], "payload_too_large");
}

#[tokio::test]
async fn worker_without_or_with_a_wrong_token_is_refused() {
    let app = test_app().await;
    let a = send(&app, post_json("/api/v1/worker/heartbeat", None, beat("w"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("Bearer")
    );
    let a = send(
        &app,
        post_json("/api/v1/worker/heartbeat", Some("isw_wrong"), beat("w")),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("isthmus token create")
    );
    let h = send(&app, get("/api/v1/health")).await.json();
    assert_eq!(h["workers"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_worker_name_is_a_400_naming_the_field() {
    let app = test_app().await;
    let a = send(
        &app,
        post_json(
            "/api/v1/worker/heartbeat",
            Some(TEST_WORKER_TOKEN),
            beat("bad name!"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("`name`")
    );
}

#[tokio::test]
async fn portal_is_served_with_spa_fallback() {
    let app = test_app().await;
    for path in ["/", "/vnets/hub"] {
        let a = send(&app, get(path)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(
            String::from_utf8_lossy(&a.body).contains("<title>Isthmus</title>"),
            "{path}"
        );
    }
}
