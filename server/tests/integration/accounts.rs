//! Accounts, sessions, tokens, roles, throttling, sealed secrets and the audit log.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn login_sets_an_httponly_strict_cookie_and_me_answers() {
    let app = test_app().await;
    let resp = send(
        &app,
        req(
            "POST",
            "/api/v1/auth/login",
            &Cred::None,
            Some(json!({"username":"admin","password":ADMIN_PASSWORD})),
        ),
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK);
    let cookie = admin(&app).await;
    let me = send(&app, req("GET", "/api/v1/auth/me", &cookie, None)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["username"], "admin");
    assert_eq!(me.json()["is_admin"], true);
}

#[tokio::test]
async fn session_cookie_flags() {
    use tower::ServiceExt;
    let app = test_app().await;
    let resp = app
        .router
        .clone()
        .oneshot(req(
            "POST",
            "/api/v1/auth/login",
            &Cred::None,
            Some(json!({"username":"admin","password":ADMIN_PASSWORD})),
        ))
        .await
        .unwrap();
    let c = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(c.contains("HttpOnly"), "{c}");
    assert!(c.contains("SameSite=Strict"), "{c}");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = test_app().await;
    let cookie = admin(&app).await;
    let r = send(&app, req("POST", "/api/v1/auth/logout", &cookie, None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = send(&app, req("GET", "/api/v1/auth/me", &cookie, None)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unauthenticated_requests_are_refused_with_a_hint() {
    let app = test_app().await;
    for (m, p) in [
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/tenants"),
        ("GET", "/api/v1/tokens"),
    ] {
        let r = send(&app, req(m, p, &Cred::None, None)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{p}");
        assert!(
            r.json()["message"].as_str().unwrap().contains("log in"),
            "{p}"
        );
    }
}

#[tokio::test]
async fn wrong_password_is_refused_and_repeated_failures_are_slowed_down() {
    let app = test_app().await;
    let bad = || {
        req(
            "POST",
            "/api/v1/auth/login",
            &Cred::None,
            Some(json!({"username":"admin","password":"nope-nope-nope"})),
        )
    };
    for _ in 0..3 {
        let r = send(&app, bad()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // After the free failures, even the right password waits.
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/auth/login",
            &Cred::None,
            Some(json!({"username":"admin","password":ADMIN_PASSWORD})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("try again in")
    );
}

#[tokio::test]
async fn api_tokens_authenticate_scripts_and_are_listed_without_secret() {
    let app = test_app().await;
    let cookie = admin(&app).await;
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/tokens",
            &cookie,
            Some(json!({"name":"ci"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ist_"));
    let me = send(
        &app,
        req("GET", "/api/v1/auth/me", &Cred::Bearer(token.clone()), None),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
    let list = send(&app, req("GET", "/api/v1/tokens", &cookie, None)).await;
    let text = String::from_utf8_lossy(&list.body).to_string();
    assert!(text.contains("\"ci\""));
    assert!(!text.contains(&token), "list must not contain the secret");
    let id = list.json()[0]["id"].as_i64().unwrap();
    let d = send(
        &app,
        req("DELETE", &format!("/api/v1/tokens/{id}"), &cookie, None),
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let me = send(
        &app,
        req("GET", "/api/v1/auth/me", &Cred::Bearer(token), None),
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_ids_and_query_strings_are_json_400s() {
    let app = test_app().await;
    let cookie = admin(&app).await;
    let r = send(
        &app,
        req("DELETE", "/api/v1/tokens/not-a-number", &cookie, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "bad_request");
    let r = send(&app, req("GET", "/api/v1/audit?limit=many", &cookie, None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("query"));
}

#[tokio::test]
async fn readers_cannot_write_and_tenants_are_isolated() {
    let app = test_app().await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/tenants",
            &alice,
            Some(json!({"name":"acme"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Bob cannot see acme at all.
    let list = send(&app, req("GET", "/api/v1/tenants", &bob, None)).await;
    assert_eq!(list.json(), json!([]));
    let r = send(
        &app,
        req(
            "PUT",
            "/api/v1/tenants/acme/members/bob",
            &bob,
            Some(json!({"role":"owner"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Alice makes Bob a reader: he sees it but cannot manage it.
    let r = send(
        &app,
        req(
            "PUT",
            "/api/v1/tenants/acme/members/bob",
            &alice,
            Some(json!({"role":"reader"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let list = send(&app, req("GET", "/api/v1/tenants", &bob, None)).await;
    assert_eq!(list.json(), json!([{"name":"acme","role":"reader"}]));
    let r = send(
        &app,
        req(
            "PUT",
            "/api/v1/tenants/acme/members/bob",
            &bob,
            Some(json!({"role":"owner"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["message"].as_str().unwrap().contains("reader"));
    // Only administrators create users.
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/users",
            &bob,
            Some(json!({"username":"eve","password":"long-enough-pw"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_role_and_bad_names_name_the_field() {
    let app = test_app().await;
    let a = admin(&app).await;
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/tenants",
            &a,
            Some(json!({"name":"bad name"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("`name`"));
    send(
        &app,
        req("POST", "/api/v1/tenants", &a, Some(json!({"name":"t1"}))),
    )
    .await;
    let r = send(
        &app,
        req(
            "PUT",
            "/api/v1/tenants/t1/members/admin",
            &a,
            Some(json!({"role":"god"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["message"].as_str().unwrap().contains("owner"));
    let r = send(
        &app,
        req("POST", "/api/v1/tenants", &a, Some(json!({"name":"t1"}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn every_change_is_in_the_audit_log() {
    let app = test_app().await;
    let a = admin(&app).await;
    send(
        &app,
        req("POST", "/api/v1/tenants", &a, Some(json!({"name":"acme"}))),
    )
    .await;
    send(
        &app,
        req("POST", "/api/v1/tokens", &a, Some(json!({"name":"ci"}))),
    )
    .await;
    let log = send(&app, req("GET", "/api/v1/audit", &a, None))
        .await
        .json();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["token.create", "tenant.create"]);
    assert_eq!(log[1]["actor"], "admin");
    assert_eq!(log[1]["tenant"], "acme");
}

#[tokio::test]
async fn raw_database_holds_no_secret() {
    let app = test_app().await;
    let a = admin(&app).await;
    let r = send(
        &app,
        req("POST", "/api/v1/tokens", &a, Some(json!({"name":"ci"}))),
    )
    .await;
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let Cred::Cookie(cookie) = &a else {
        unreachable!()
    };
    let session = cookie.split_once('=').unwrap().1.to_owned();
    if !app.db_path.exists() {
        return; // PostgreSQL run: the SQLite variant of this test covers the file.
    }
    let raw = std::fs::read(&app.db_path).unwrap();
    let mut all = raw;
    for side in ["-wal", "-shm"] {
        if let Ok(extra) = std::fs::read(app.db_path.with_extension(format!("db{side}"))) {
            all.extend(extra);
        }
    }
    let text = String::from_utf8_lossy(&all);
    for secret in [
        token.as_str(),
        session.as_str(),
        ADMIN_PASSWORD,
        TEST_WORKER_TOKEN,
    ] {
        assert!(!text.contains(secret), "the raw database contains a secret");
    }
}

#[tokio::test]
async fn removing_a_member_takes_their_access_away() {
    let app = test_app().await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    send(
        &app,
        req(
            "POST",
            "/api/v1/tenants",
            &alice,
            Some(json!({"name":"acme"})),
        ),
    )
    .await;
    send(
        &app,
        req(
            "PUT",
            "/api/v1/tenants/acme/members/bob",
            &alice,
            Some(json!({"role":"reader"})),
        ),
    )
    .await;
    let r = send(
        &app,
        req("GET", "/api/v1/tenants/acme/topology", &bob, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &app,
        req("DELETE", "/api/v1/tenants/acme/members/bob", &alice, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(
        &app,
        req("GET", "/api/v1/tenants/acme/topology", &bob, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = send(
        &app,
        req("DELETE", "/api/v1/tenants/acme/members/bob", &alice, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
