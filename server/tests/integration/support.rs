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
    /// The SQLite file (absent on PostgreSQL).
    pub db_path: std::path::PathBuf,
    /// The database URL, for a second replica on the same database.
    pub url: String,
    pub _dir: tempfile::TempDir,
}

/// A second server replica (its own state and caches) on the database of `app`.
pub async fn replica(base: &TestApp) -> Router {
    let (conn, kind) = db::connect(&base.url).await.expect("database");
    app(state_for(conn, kind, base._dir.path()))
}

fn state_for(
    conn: sea_orm::DatabaseConnection,
    kind: isthmus_shared::api::DatabaseKind,
    dir: &std::path::Path,
) -> AppState {
    let sealer = isthmus_server::secrets::Sealer::from_key(&[42u8; 32]).expect("key");
    let settings = isthmus_server::state::Settings {
        portal_dir: dir.join("portal"),
        lease_seconds: 15,
        endpoint_pool: Default::default(),
    };
    AppState::new(conn, kind, settings, sealer)
}

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The database URL for one test: a fresh SQLite file, or a fresh database on the
/// PostgreSQL server named by `ISTHMUS_TEST_POSTGRES` (the test command sets it).
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("ISTHMUS_TEST_POSTGRES") {
        Ok(base) => {
            use sea_orm::ConnectionTrait;
            let name = format!("t_{}", hex_id());
            let admin = sea_orm::Database::connect(format!("{base}/postgres"))
                .await
                .expect("postgres");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            admin.close().await.expect("close");
            format!("{base}/{name}")
        }
        Err(_) => format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
    }
}

fn hex_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A fresh database with the test worker token and an administrator `admin`.
pub async fn test_app() -> TestApp {
    test_app_with(isthmus_server::state::Security::default()).await
}

/// [`test_app`] with `security` (trusted proxies, public metrics) in force.
pub async fn test_app_with(security: isthmus_server::state::Security) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = fresh_database_url(dir.path()).await;
    let (conn, kind) = db::connect(&url).await.expect("database");
    isthmus_server::auth::create_user(&conn, "admin", ADMIN_PASSWORD, true)
        .await
        .expect("admin");
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
    TestApp {
        router: app(state_for(conn, kind, dir.path()).with_security(security)),
        db_path: dir.path().join("t.db"),
        url,
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
    send_to(&app.router, req).await
}

/// [`send`] to a given router (another replica).
pub async fn send_to(router: &Router, req: Request<Body>) -> Answer {
    let resp = router.clone().oneshot(req).await.expect("infallible");
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

/// A request with a JSON body, a method and optional credentials (`Cookie` or bearer token).
pub fn req(
    method: &str,
    path: &str,
    auth: &Cred,
    body: Option<serde_json::Value>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    match auth {
        Cred::None => {}
        Cred::Cookie(c) => b = b.header("cookie", c.as_str()),
        Cred::Bearer(t) => b = b.header("authorization", format!("Bearer {t}")),
    }
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .expect("request"),
        None => b.body(Body::empty()).expect("request"),
    }
}

/// How a test request authenticates.
#[derive(Debug, Clone)]
pub enum Cred {
    None,
    Cookie(String),
    Bearer(String),
}

/// Logs in and returns the session cookie (`name=value`).
pub async fn login(app: &TestApp, username: &str, password: &str) -> Cred {
    let resp = app
        .router
        .clone()
        .oneshot(req(
            "POST",
            "/api/v1/auth/login",
            &Cred::None,
            Some(serde_json::json!({"username": username, "password": password})),
        ))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK, "login of {username} failed");
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_owned();
    Cred::Cookie(
        set_cookie
            .split(';')
            .next()
            .expect("cookie pair")
            .to_owned(),
    )
}

/// Logs in as the administrator.
pub async fn admin(app: &TestApp) -> Cred {
    login(app, "admin", ADMIN_PASSWORD).await
}

/// Creates a user (as admin) and logs in as them.
pub async fn user(app: &TestApp, username: &str) -> Cred {
    let a = admin(app).await;
    let pw = format!("{username}-password-123");
    let r = send(
        app,
        req(
            "POST",
            "/api/v1/users",
            &a,
            Some(serde_json::json!({"username": username, "password": pw})),
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    login(app, username, &pw).await
}

/// `GET path` as `who`.
pub async fn get_as(app: &TestApp, who: &Cred, path: &str) -> Answer {
    send(app, req("GET", path, who, None)).await
}

/// `POST path` as `who` with a JSON body.
pub async fn post(app: &TestApp, who: &Cred, path: &str, body: serde_json::Value) -> Answer {
    send(app, req("POST", path, who, Some(body))).await
}

/// `PUT path` as `who` with a JSON body.
pub async fn put(app: &TestApp, who: &Cred, path: &str, body: serde_json::Value) -> Answer {
    send(app, req("PUT", path, who, Some(body))).await
}

/// `DELETE path` as `who`.
pub async fn delete(app: &TestApp, who: &Cred, path: &str) -> Answer {
    send(app, req("DELETE", path, who, None)).await
}

/// Fails the test, showing the body, unless the answer has `status`.
#[track_caller]
pub fn assert_status(r: &Answer, status: StatusCode) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
}

/// The JSON body of a successful answer (`Null` when empty); fails the test otherwise.
#[track_caller]
pub fn ok(r: Answer) -> serde_json::Value {
    assert!(
        r.status.is_success(),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    if r.body.is_empty() {
        serde_json::Value::Null
    } else {
        r.json()
    }
}

/// `POST path` as `who`, which must answer 201 Created; the created resource.
pub async fn created(
    app: &TestApp,
    who: &Cred,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = post(app, who, path, body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "POST {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["resource"].clone()
}

/// The rule ids of a 422 answer's violations, in order (`""` for one without a rule).
pub fn rules_of(r: &Answer) -> Vec<String> {
    r.json()["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| x["rule"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The test worker token as a credential.
pub fn worker_cred() -> Cred {
    Cred::Bearer(TEST_WORKER_TOKEN.to_owned())
}

/// Issue 16: worker `name` heartbeats from 198.51.100.`n`, with a heartbeat address (port
/// 51899, so it can take redundant instances) and `zone`.
pub async fn beat_redundant(app: &TestApp, name: &str, n: u8, zone: Option<&str>) {
    let mut body = serde_json::json!({"protocol": 1, "name": name, "version": "test",
        "public_addresses": [format!("198.51.100.{n}")],
        "heartbeat_address": format!("198.51.100.{n}:51899")});
    if let Some(z) = zone {
        body["zone"] = serde_json::json!(z);
    }
    let r = send(
        app,
        req(
            "POST",
            "/api/v1/worker/heartbeat",
            &worker_cred(),
            Some(body),
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
}

/// Worker `name`'s desired state (one poll, which applies the placement rules).
pub async fn desired_of(app: &TestApp, name: &str) -> serde_json::Value {
    let r = send(
        app,
        req(
            "GET",
            &format!("/api/v1/worker/desired?name={name}&since=0&wait=0"),
            &worker_cred(),
            None,
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    r.json()
}
