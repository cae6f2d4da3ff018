//! Security of the HTTP surface: `/metrics` behind a `metrics` token, enrolment challenges
//! limited per client address, an atomic login throttle keyed by user name and client address,
//! `Cache-Control: no-store` on answers that carry secrets, `Secure` cookies behind HTTPS, and
//! the server's own HTTPS (rustls).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use isthmus_server::state::Security;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::p2s::{Enrol, leaf, root, setup, upload_root};
use crate::support::*;

/// `r` as sent by a client at `addr` (the connection's peer address, as `serve` sets it).
fn from(addr: &str, mut r: Request<Body>) -> Request<Body> {
    let peer: SocketAddr = addr.parse().expect("socket address");
    r.extensions_mut().insert(ConnectInfo(peer));
    r
}

/// An answer with its headers.
struct Full {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn full(app: &TestApp, r: Request<Body>) -> Full {
    let resp = app.router.clone().oneshot(r).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Full {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn with_header(mut r: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    r.headers_mut()
        .insert(name, value.parse().expect("header value"));
    r
}

/// `acme` (p2s fixture) with a worker report for `hub-gw/to-branch`, so every named series of
/// `/metrics` has a line.
async fn reported(app: &TestApp) -> Cred {
    let a = setup(app, "VpnGw1", "RouteBased").await;
    let r = send(
        app,
        req(
            "POST",
            "/api/v1/worker/status?name=w1",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
                "connections": [{"name": "to-branch", "last_handshake_unix": 1_790_000_000u64, "rx_bytes": 1234,
                "tx_bytes": 5678, "endpoint": "203.0.113.10:51820", "state": "up", "since_unix": 1_790_000_000u64}]}]})),
        ),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    a
}

const NAMES: [&str; 5] = ["acme", "hub-gw", "spoke-gw", "to-branch", "branch"];

const NAMED_LINE: &str =
    r#"isthmus_connection_up{tenant="acme",gateway="hub-gw",connection="to-branch"} 1"#;

/// A new API token of `who` with `scopes`.
async fn token(app: &TestApp, who: &Cred, scopes: Value) -> Cred {
    let r = post(
        app,
        who,
        "/api/v1/tokens",
        json!({"name": "prometheus", "scopes": scopes}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    Cred::Bearer(r.json()["token"].as_str().expect("token").to_owned())
}

#[tokio::test]
async fn metrics_without_a_token_are_aggregate_and_name_no_tenant_gateway_or_connection() {
    let app = test_app().await;
    reported(&app).await;
    let m = full(&app, get("/metrics")).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    for name in NAMES {
        assert!(
            !m.body.contains(name),
            "anonymous /metrics names {name:?}:\n{}",
            m.body
        );
    }
    for line in [
        "isthmus_tenants 1",
        "isthmus_gateways 2",
        r#"isthmus_connections{state="up"} 1"#,
        "isthmus_connections_rx_bytes_total 1234",
        "isthmus_connections_tx_bytes_total 5678",
        "isthmus_workers_connected 0",
    ] {
        assert!(
            m.body.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            m.body
        );
    }
    assert!(
        !m.body.contains("isthmus_region_pair_bytes_total"),
        "{}",
        m.body
    );
}

#[tokio::test]
async fn metrics_token_shows_the_named_series_and_other_credentials_do_not() {
    let app = test_app().await;
    let a = reported(&app).await;

    // A `metrics` token of an administrator: every named series, LIM-6 included.
    let metrics = token(&app, &a, json!(["metrics"])).await;
    let m = get_as(&app, &metrics, "/metrics").await;
    let text = String::from_utf8(m.body.clone()).expect("text");
    assert_eq!(m.status, StatusCode::OK, "{text}");
    for line in [
        NAMED_LINE,
        r#"isthmus_connection_tx_bytes{tenant="acme",gateway="hub-gw",connection="to-branch"} 5678"#,
        "# TYPE isthmus_region_pair_bytes_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}:\n{text}");
    }
    // ... and nothing else: the API refuses it.
    let r = get_as(&app, &metrics, "/api/v1/tenants").await;
    assert_status(&r, StatusCode::FORBIDDEN);
    let listed = ok(get_as(&app, &a, "/api/v1/tokens").await);
    assert_eq!(listed[0]["scopes"], json!(["metrics"]), "{listed}");

    // A token without the scope is refused, an unknown one too; neither sees a name.
    let api_only = token(&app, &a, json!([])).await;
    let r = get_as(&app, &api_only, "/metrics").await;
    assert_status(&r, StatusCode::FORBIDDEN);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(body.contains("metrics"), "{body}");
    assert!(!body.contains("hub-gw"), "{body}");
    let r = get_as(&app, &Cred::Bearer("ist_nope".into()), "/metrics").await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    let r = post(
        &app,
        &a,
        "/api/v1/tokens",
        json!({"name": "x", "scopes": ["everything"]}),
    )
    .await;
    assert_status(&r, StatusCode::BAD_REQUEST);

    // A user's metrics token names only that user's tenants.
    let bob = user(&app, "bob").await;
    let bobs = token(&app, &bob, json!(["metrics"])).await;
    let text = String::from_utf8(get_as(&app, &bobs, "/metrics").await.body).expect("text");
    for name in NAMES {
        assert!(!text.contains(name), "bob is no member of acme:\n{text}");
    }
    ok(put(
        &app,
        &a,
        "/api/v1/tenants/acme/members/bob",
        json!({"role": "reader"}),
    )
    .await);
    let text = String::from_utf8(get_as(&app, &bobs, "/metrics").await.body).expect("text");
    assert!(text.lines().any(|l| l == NAMED_LINE), "{text}");
    assert!(!text.contains("isthmus_region_pair_bytes_total"), "{text}");

    // An administrator's portal session sees the named series.
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).expect("text");
    assert!(text.lines().any(|l| l == NAMED_LINE), "{text}");
}

#[tokio::test]
async fn public_metrics_show_the_named_series_without_a_token() {
    let app = test_app_with(Security {
        public_metrics: true,
        ..Security::default()
    })
    .await;
    reported(&app).await;
    let m = full(&app, get("/metrics")).await;
    assert!(m.body.lines().any(|l| l == NAMED_LINE), "{}", m.body);
}

// ---- enrolment challenges --------------------------------------------------------------------

const BASE: &str = "/api/v1/tenants/acme/point-to-site/hub-gw";

fn challenge_req() -> Request<Body> {
    req(
        "POST",
        &format!("{BASE}/enrol/challenge"),
        &Cred::None,
        None,
    )
}

/// Challenge and enrolment, both sent by `prepare` (which sets the client address).
async fn enrol_via(
    app: &TestApp,
    e: &Enrol,
    prepare: impl Fn(Request<Body>) -> Request<Body>,
) -> Full {
    let c = full(app, prepare(challenge_req())).await;
    if c.status != StatusCode::OK {
        return c;
    }
    let c: Value = serde_json::from_str(&c.body).expect("json");
    let mut body = isthmus_shared::enrol::EnrolRequest {
        nonce: c["nonce"].as_str().expect("nonce").to_owned(),
        certificate_chain: e.chain.clone(),
        signature_scheme: isthmus_shared::enrol::SignatureScheme::Ed25519,
        signature: String::new(),
        wireguard_public_key: e.wireguard_public_key.clone(),
        generate_keypair: e.generate_keypair,
        name: e.name.clone(),
    };
    let msg = isthmus_shared::enrol::challenge_message(
        &isthmus_shared::model::QualifiedName::new("acme", "hub-gw"),
        &body,
    );
    let (scheme, sig) = isthmus_client::sign::sign(&e.key_pem, &msg).expect("sign");
    body.signature_scheme = scheme;
    body.signature = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig);
    full(
        app,
        prepare(req(
            "POST",
            &format!("{BASE}/enrol"),
            &Cred::None,
            Some(serde_json::to_value(&body).expect("json")),
        )),
    )
    .await
}

#[tokio::test]
async fn p2s_300_anonymous_challenges_from_one_address_do_not_stop_an_enrolment_from_another() {
    // Behind a trusted proxy (loopback) too: X-Forwarded-For names the client.
    let app = test_app_with(Security {
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("net")],
        ..Security::default()
    })
    .await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);

    let attacker = "198.51.100.66:40000";
    let mut granted = 0;
    let mut refused = 0;
    for _ in 0..300 {
        let r = full(&app, from(attacker, challenge_req())).await;
        match r.status {
            StatusCode::OK => granted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers.contains_key("retry-after"), "{}", r.body);
                refused += 1;
            }
            s => panic!("{s}: {}", r.body),
        }
    }
    assert!(
        (1..=16).contains(&granted) && granted + refused == 300,
        "one address got {granted} challenges of 300"
    );
    // Forwarded headers from an untrusted peer count for nothing: still the attacker.
    let r = full(
        &app,
        with_header(
            from(attacker, challenge_req()),
            "x-forwarded-for",
            "203.0.113.99",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // The same attacker behind the trusted proxy is still counted as itself.
    let r = full(
        &app,
        with_header(
            from("127.0.0.1:5000", challenge_req()),
            "x-forwarded-for",
            "198.51.100.66",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);

    // A legitimate client elsewhere enrols at once, directly and through the proxy.
    let r = enrol_via(&app, &Enrol::with(&leaf(&ca, "alice")), |r| {
        from("203.0.113.7:50000", r)
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = enrol_via(&app, &Enrol::with(&leaf(&ca, "carol")), |r| {
        with_header(
            from("127.0.0.1:5001", r),
            "x-forwarded-for",
            "6.6.6.6, 192.0.2.44",
        )
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

// ---- login throttling ------------------------------------------------------------------------

fn login_req(password: &str) -> Request<Body> {
    req(
        "POST",
        "/api/v1/auth/login",
        &Cred::None,
        Some(json!({"username": "admin", "password": password})),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_of_30_parallel_wrong_passwords_checks_at_most_the_allowed_number_per_address() {
    let app = Arc::new(test_app().await);
    let attacker = "198.51.100.66:40000";
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                full(&app, from(attacker, login_req(&format!("wrong-guess-{i}")))).await
            })
        })
        .collect();
    let mut checked = 0;
    let mut throttled = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            s => panic!("{s}: {}", r.body),
        }
    }
    let allowed = usize::try_from(isthmus_server::auth::LOGIN_ATTEMPTS).expect("positive");
    assert!(
        (1..=allowed).contains(&checked) && checked + throttled == 30,
        "{checked} of 30 parallel wrong passwords were checked (at most {allowed} may be)"
    );
    // The attacker's address waits, even with the right password ...
    let r = full(&app, from(attacker, login_req(ADMIN_PASSWORD))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // ... but the user logs in from elsewhere at once.
    let r = full(&app, from("203.0.113.7:50000", login_req(ADMIN_PASSWORD))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

// ---- Cache-Control and cookies -------------------------------------------------------------

#[track_caller]
fn assert_no_store(what: &str, r: &Full) {
    assert!(r.status.is_success(), "{what}: {} {}", r.status, r.body);
    assert_eq!(
        r.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{what} carries a secret and must not be cached"
    );
}

fn cookie_req(method: &str, path: &str, who: &Cred, body: Option<Value>) -> Request<Body> {
    req(method, path, who, body)
}

#[tokio::test]
async fn every_answer_that_carries_a_secret_says_cache_control_no_store() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let conn = "/api/v1/tenants/acme/connections/to-branch";

    let r = full(&app, login_req(ADMIN_PASSWORD)).await;
    assert_no_store("the login (session cookie)", &r);
    let r = full(
        &app,
        cookie_req("POST", "/api/v1/tokens", &a, Some(json!({"name": "ci"}))),
    )
    .await;
    assert_no_store("a new API token", &r);
    let r = full(
        &app,
        cookie_req("GET", &format!("{conn}/shared-key"), &a, None),
    )
    .await;
    assert!(r.body.contains("shared_key"), "{}", r.body);
    assert_no_store("the shared key", &r);
    let r = full(
        &app,
        cookie_req(
            "PUT",
            &format!("{conn}/shared-key"),
            &a,
            Some(json!({"shared_key": "NewSharedKey123"})),
        ),
    )
    .await;
    assert_no_store("setting the shared key", &r);
    let r = full(
        &app,
        cookie_req("GET", &format!("{conn}/device-config"), &a, None),
    )
    .await;
    assert!(r.body.contains("PresharedKey"), "{}", r.body);
    assert_no_store("the device configuration", &r);
    let r = full(&app, cookie_req("GET", conn, &a, None)).await;
    assert_no_store("the connection", &r);
    let r = full(
        &app,
        cookie_req(
            "POST",
            "/api/v1/tenants/acme/connections",
            &a,
            Some(json!({"name": "to-branch-2", "gateway": "spoke-gw",
                "kind": {"type": "SiteToSite", "site": "branch"}})),
        ),
    )
    .await;
    assert_no_store("a created connection", &r);
    let r = full(&app, challenge_req()).await;
    assert_no_store("an enrolment challenge", &r);
    let mut e = Enrol::with(&leaf(&ca, "alice"));
    e.wireguard_public_key = None;
    e.generate_keypair = true;
    let r = enrol_via(&app, &e, |r| r).await;
    assert!(r.body.contains("private_key"), "{}", r.body);
    assert_no_store("the client package with its generated private key", &r);
    let r = full(
        &app,
        cookie_req(
            "GET",
            "/api/v1/worker/desired?name=w1&since=0",
            &Cred::Bearer(TEST_WORKER_TOKEN.into()),
            None,
        ),
    )
    .await;
    assert_no_store("a worker's desired state (gateway private keys)", &r);
    let r = full(&app, get("/metrics")).await;
    assert_no_store("/metrics", &r);
}

#[tokio::test]
async fn login_cookie_is_secure_only_behind_https_from_a_trusted_proxy() {
    let app = test_app_with(Security {
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("net")],
        ..Security::default()
    })
    .await;
    let cookie = |r: &Full| {
        r.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let via_proxy = |peer: &str| {
        with_header(
            from(peer, login_req(ADMIN_PASSWORD)),
            "x-forwarded-proto",
            "https",
        )
    };
    let r = full(&app, via_proxy("127.0.0.1:5000")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(cookie(&r).contains("; Secure"), "{}", cookie(&r));
    let r = full(
        &app,
        with_header(
            cookie_req("POST", "/api/v1/auth/logout", &Cred::None, None),
            "x-forwarded-proto",
            "https",
        ),
    )
    .await;
    assert!(
        !cookie(&r).contains("Secure"),
        "not from the proxy: {}",
        cookie(&r)
    );
    // Anyone else saying https is not believed, and plain HTTP gets no Secure flag.
    let r = full(&app, via_proxy("198.51.100.1:5000")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!cookie(&r).contains("Secure"), "{}", cookie(&r));
    let r = full(&app, from("127.0.0.1:5000", login_req(ADMIN_PASSWORD))).await;
    assert!(!cookie(&r).contains("Secure"), "{}", cookie(&r));
}

// ---- HTTPS -----------------------------------------------------------------------------------

/// A test CA and a server certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Pki {
    ca_der: Vec<u8>,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("ca");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("cert");
    let dir = tempfile::tempdir().expect("dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    Pki {
        ca_der: ca.der().to_vec(),
        cert: cert_path,
        key: key_path,
        _dir: dir,
    }
}

/// One HTTP/1.1 request over TLS to `addr`, trusting only `ca`; the whole answer as text.
async fn https(addr: SocketAddr, ca: &[u8], request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(ca.to_vec()))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn https_with_a_generated_certificate_serves_health_and_a_secure_login_cookie() {
    let app = test_app().await;
    let pki = pki();
    let tls = isthmus_server::serve::load_tls(&pki.cert, &pki.key).expect("tls config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(isthmus_server::serve(
        listener,
        app.router.clone(),
        Some(tls),
        async move {
            let _ = stopped.await;
        },
    ));

    let health = https(
        addr,
        &pki.ca_der,
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""status":"ok""#), "{health}");

    let body = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let login = https(
        addr,
        &pki.ca_der,
        &format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let set_cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(set_cookie.contains("; Secure"), "{login}");

    // Plain HTTP on the TLS port gets no answer.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET /api/v1/health HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut buf).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    stop.send(()).expect("server running");
    server.await.expect("task").expect("clean shutdown");
}

#[test]
fn plain_http_on_a_non_loopback_address_is_warned_about_with_the_flags_to_add() {
    let config = |listen: &str, tls: bool| isthmus_server::config::ServerConfig {
        listen: listen.parse().expect("addr"),
        data_dir: "data".into(),
        database_url: None,
        portal_dir: "dist".into(),
        lease_seconds: 15,
        endpoint_pool: Default::default(),
        tls: tls.then(|| isthmus_server::config::TlsFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        }),
        security: Security::default(),
    };
    let w = config("0.0.0.0:8080", false)
        .plain_http_warning()
        .expect("a warning");
    for flag in ["--tls-cert", "--tls-key", "--trusted-proxy"] {
        assert!(w.contains(flag), "{w}");
    }
    assert!(config("[::]:8080", false).plain_http_warning().is_some());
    assert!(
        config("127.0.0.1:8080", false)
            .plain_http_warning()
            .is_none()
    );
    assert!(config("[::1]:8080", false).plain_http_warning().is_none());
    assert!(config("0.0.0.0:8443", true).plain_http_warning().is_none());
}
