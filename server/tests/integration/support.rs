//! Test helpers: a fresh database per test, requests in-process.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use isthmus_server::{AppState, app, db, tokens};
use tower::ServiceExt;

pub const TEST_WORKER_TOKEN: &str = "isw_test_token_for_integration_tests_only";

pub struct TestApp {
    pub router: Router,
    pub _dir: tempfile::TempDir,
}

/// A fresh SQLite database (or `ISTHMUS_TEST_DATABASE_URL`'s server), with the test worker token.
pub async fn test_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let (conn, kind) = db::connect(&url).await.expect("database");
    tokens::ensure_worker_token(&conn, "test", TEST_WORKER_TOKEN, 0)
        .await
        .expect("token");
    let portal = dir.path().join("portal");
    std::fs::create_dir_all(&portal).expect("portal dir");
    std::fs::write(
        portal.join("index.html"),
        "<!DOCTYPE html><title>Isthmus</title>",
    )
    .expect("index");
    let state = AppState::new(conn, kind, portal, 15);
    TestApp {
        router: app(state),
        _dir: dir,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

pub async fn send(app: &TestApp, req: Request<Body>) -> Answer {
    let resp = app.router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

pub fn post_json(path: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(body.into()).expect("request")
}
