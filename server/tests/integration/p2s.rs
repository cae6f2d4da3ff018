//! Point-to-site remote access: root certificates (P2S-3), certificate enrolment with a signed
//! challenge, address allocation, the SKU client limit (P2S-2), PolicyBased refusal (P2S-1),
//! the client package (P2S-6, P2S-8) and revocation. Certificates are generated with rcgen; the
//! challenge is signed by the `isthmus-client` library, as the command-line client does.

use axum::http::StatusCode;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use serde_json::{Value, json};

use crate::support::*;

// ---- certificates ----------------------------------------------------------------------------

pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// A self-signed root CA.
pub fn root(cn: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let cert = ca_params(cn).self_signed(&key).expect("root");
    Ca { cert, key }
}

/// An intermediate CA issued by `issuer`.
pub fn intermediate(issuer: &Ca, cn: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let cert = ca_params(cn)
        .signed_by(&key, &issuer.cert, &issuer.key)
        .expect("intermediate");
    Ca { cert, key }
}

/// A client certificate issued by `issuer`: (certificate PEM, key PEM, DER).
pub struct Leaf {
    pub pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

pub fn leaf_with(issuer: &Ca, cn: &str, validity: Option<(i32, i32)>) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if let Some((from, to)) = validity {
        p.not_before = date_time_ymd(from, 1, 1);
        p.not_after = date_time_ymd(to, 1, 1);
    }
    let cert = p.signed_by(&key, &issuer.cert, &issuer.key).expect("leaf");
    Leaf {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

pub fn leaf(issuer: &Ca, cn: &str) -> Leaf {
    leaf_with(issuer, cn, None)
}

pub fn thumbprint(der: &[u8]) -> String {
    isthmus_shared::enrol::thumbprint(der)
}

// ---- topology --------------------------------------------------------------------------------

/// Tenant `acme`: VNet `hub` (10.0.0.0/16) with gateway `hub-gw` of `sku` and `gateway_type`,
/// VNet `spoke` (10.1.0.0/16) with RouteBased `spoke-gw`, site `branch` (192.168.1.0/24)
/// connected to `hub-gw`, and (RouteBased only) a point-to-site configuration on `hub-gw` with
/// pool 172.16.0.0/24 reaching `spoke` too (P2S-6).
pub async fn setup(app: &TestApp, sku: &str, gateway_type: &str) -> Cred {
    let a = admin(app).await;
    let who = &a;
    let in_acme = |path: &str, body: Value| {
        let path = format!("/api/v1/tenants/acme/{path}");
        async move { post(app, who, &path, body).await }
    };
    ok(post(app, &a, "/api/v1/tenants", json!({"name": "acme"})).await);
    for (name, space, gw) in [
        ("hub", "10.0.0.0/16", "10.0.255.0/27"),
        ("spoke", "10.1.0.0/16", "10.1.255.0/27"),
    ] {
        ok(in_acme(
            "vnets",
            json!({"name": name, "region": "westeurope", "address_space": [space],
            "subnets": [{"name": "GatewaySubnet", "prefix": gw}]}),
        )
        .await);
    }
    ok(in_acme(
        "gateways",
        json!({"name": "hub-gw", "vnet": "hub", "gateway_type": gateway_type, "sku": sku}),
    )
    .await);
    ok(in_acme(
        "gateways",
        json!({"name": "spoke-gw", "vnet": "spoke", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    )
    .await);
    ok(in_acme("sites", json!({"name": "branch", "device_host": "203.0.113.10", "address_prefixes": ["192.168.1.0/24"],
        "device_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="})).await);
    ok(in_acme("connections", json!({"name": "to-branch", "gateway": "hub-gw", "kind": {"type": "SiteToSite", "site": "branch"}})).await);
    if gateway_type == "RouteBased" {
        ok(in_acme(
            "point-to-site",
            json!({"gateway": "hub-gw", "address_pool": ["172.16.0.0/24"],
            "additional_vnets": ["spoke"]}),
        )
        .await);
    }
    a
}

const BASE: &str = "/api/v1/tenants/acme/point-to-site/hub-gw";

pub async fn upload_root(app: &TestApp, a: &Cred, name: &str, pem: &str) -> Answer {
    post(
        app,
        a,
        &format!("{BASE}/root-certificates"),
        json!({"name": name, "pem": pem}),
    )
    .await
}

async fn list_roots(app: &TestApp, a: &Cred) -> Vec<Value> {
    ok(get_as(app, a, &format!("{BASE}/root-certificates")).await)
        .as_array()
        .expect("array")
        .clone()
}

async fn version(app: &TestApp) -> i64 {
    let r = get_as(
        app,
        &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
        "/api/v1/worker/desired?name=w1&since=999999",
    )
    .await;
    r.json()["version"].as_i64().expect("version")
}

/// How the enrolment request is built.
#[derive(Clone)]
pub struct Enrol {
    pub chain: String,
    pub key_pem: String,
    pub wireguard_public_key: Option<String>,
    pub generate_keypair: bool,
    pub name: Option<String>,
}

impl Enrol {
    pub fn with(leaf: &Leaf) -> Self {
        Self {
            chain: leaf.pem.clone(),
            key_pem: leaf.key_pem.clone(),
            wireguard_public_key: Some(isthmus_client::enrol::wireguard_keypair().1),
            generate_keypair: false,
            name: None,
        }
    }
}

async fn challenge(app: &TestApp, base: &str) -> Answer {
    send(
        app,
        req(
            "POST",
            &format!("{base}/enrol/challenge"),
            &Cred::None,
            None,
        ),
    )
    .await
}

/// Challenge, signature (by the client library), enrolment.
pub async fn enrol_at(app: &TestApp, base: &str, gateway: &str, e: &Enrol) -> Answer {
    let c = challenge(app, base).await;
    if c.status != StatusCode::OK {
        return c;
    }
    let nonce = c.json()["nonce"].as_str().expect("nonce").to_owned();
    let mut body = isthmus_shared::enrol::EnrolRequest {
        nonce,
        certificate_chain: e.chain.clone(),
        signature_scheme: isthmus_shared::enrol::SignatureScheme::Ed25519,
        signature: String::new(),
        wireguard_public_key: e.wireguard_public_key.clone(),
        generate_keypair: e.generate_keypair,
        name: e.name.clone(),
    };
    let msg = isthmus_shared::enrol::challenge_message(
        &isthmus_shared::model::QualifiedName::new("acme", gateway),
        &body,
    );
    let (scheme, sig) = isthmus_client::sign::sign(&e.key_pem, &msg).expect("sign");
    body.signature_scheme = scheme;
    body.signature = base64::engine::general_purpose::STANDARD.encode(sig);
    post(
        app,
        &Cred::None,
        &format!("{base}/enrol"),
        serde_json::to_value(&body).expect("json"),
    )
    .await
}

pub async fn enrol(app: &TestApp, e: &Enrol) -> Answer {
    enrol_at(app, BASE, "hub-gw", e).await
}

#[track_caller]
fn assert_refused(r: &Answer, status: StatusCode, needle: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, status, "{body}");
    assert!(
        body.to_lowercase().contains(&needle.to_lowercase()),
        "the error should mention {needle:?}: {body}"
    );
}

async fn p2s_config(app: &TestApp, a: &Cred) -> Value {
    ok(get_as(app, a, BASE).await)
}

// ---- root certificates -----------------------------------------------------------------------

#[tokio::test]
async fn p2s_3_root_certificates_upload_list_remove() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    let r = upload_root(&app, &a, "acme-root", &ca.pem()).await;
    assert_status(&r, StatusCode::CREATED);
    let created = r.json();
    let thumb = thumbprint(ca.cert.der());
    assert_eq!(created["resource"]["thumbprint"], thumb);

    let list = list_roots(&app, &a).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "acme-root");
    assert_eq!(list[0]["thumbprint"], thumb);
    assert!(
        list[0]["subject"]
            .as_str()
            .unwrap()
            .contains("Acme Root CA")
    );
    assert!(list[0]["not_after_unix"].as_i64().unwrap() > 4_000_000_000);
    assert_eq!(list[0]["expired"], false);

    // The same certificate under another name, or another certificate under the same name.
    let again = upload_root(&app, &a, "copy", &ca.pem()).await;
    assert_refused(&again, StatusCode::CONFLICT, &thumb);
    let same_name = upload_root(&app, &a, "acme-root", &root("Other").pem()).await;
    assert_refused(&same_name, StatusCode::CONFLICT, "acme-root");

    let del = delete(&app, &a, &format!("{BASE}/root-certificates/acme-root")).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(list_roots(&app, &a).await.is_empty());
    let gone = delete(&app, &a, &format!("{BASE}/root-certificates/acme-root")).await;
    assert_refused(&gone, StatusCode::NOT_FOUND, "acme-root");
}

#[tokio::test]
async fn p2s_3_a_21st_root_certificate_is_refused() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    for i in 0..20 {
        let r = upload_root(
            &app,
            &a,
            &format!("root{i}"),
            &root(&format!("Root {i}")).pem(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "root {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let before = version(&app).await;
    let r = upload_root(&app, &a, "root20", &root("Root 20").pem()).await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rules_of(&r), vec!["P2S-3"]);
    assert!(
        r.json()["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20")
    );
    assert_eq!(list_roots(&app, &a).await.len(), 20);
    assert_eq!(version(&app).await, before, "nothing was written");
}

#[tokio::test]
async fn p2s_3_bad_root_uploads_are_refused_and_nothing_is_stored() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Good Root");
    let before = version(&app).await;

    let garbage = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
    assert_refused(
        &upload_root(&app, &a, "x", garbage).await,
        StatusCode::BAD_REQUEST,
        "malformed PEM",
    );
    let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    assert_refused(
        &upload_root(&app, &a, "x", not_der).await,
        StatusCode::BAD_REQUEST,
        "not a valid X.509 certificate",
    );
    assert_refused(
        &upload_root(&app, &a, "x", "just some text").await,
        StatusCode::BAD_REQUEST,
        "no `-----BEGIN CERTIFICATE-----` block",
    );
    let with_key = format!("{}{}", ca.pem(), ca.key.serialize_pem());
    assert_refused(
        &upload_root(&app, &a, "x", &with_key).await,
        StatusCode::BAD_REQUEST,
        "private key",
    );
    let two = format!("{}{}", ca.pem(), root("Second").pem());
    assert_refused(
        &upload_root(&app, &a, "x", &two).await,
        StatusCode::BAD_REQUEST,
        "one root certificate per request",
    );
    let client = leaf(&ca, "alice");
    assert_refused(
        &upload_root(&app, &a, "x", &client.pem).await,
        StatusCode::BAD_REQUEST,
        "end-entity certificate",
    );
    let mut old = ca_params("Old Root");
    old.not_before = date_time_ymd(2010, 1, 1);
    old.not_after = date_time_ymd(2015, 1, 1);
    let old_key = KeyPair::generate().unwrap();
    let expired = old.self_signed(&old_key).unwrap().pem();
    assert_refused(
        &upload_root(&app, &a, "x", &expired).await,
        StatusCode::BAD_REQUEST,
        "expired",
    );
    // A huge upload: over the PEM limit, then over the body limit.
    let huge = format!("{}{}", ca.pem(), "A".repeat(70 * 1024));
    assert_refused(
        &upload_root(&app, &a, "x", &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "at most 65536",
    );
    let enormous = "A".repeat(2 * 1024 * 1024);
    assert_refused(
        &upload_root(&app, &a, "x", &enormous).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too large",
    );
    assert_refused(
        &upload_root(&app, &a, "bad name!", &ca.pem()).await,
        StatusCode::BAD_REQUEST,
        "field `name`",
    );

    assert!(list_roots(&app, &a).await.is_empty(), "nothing stored");
    assert_eq!(version(&app).await, before, "nothing written");
}

#[tokio::test]
async fn p2s_1_root_upload_and_enrolment_are_refused_on_a_policy_based_gateway() {
    let app = test_app().await;
    let a = setup(&app, "Basic", "PolicyBased").await;
    // The configuration itself cannot exist (the validator's P2S-1).
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/point-to-site",
        json!({"gateway": "hub-gw", "address_pool": ["172.16.0.0/24"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(rules_of(&r).contains(&"P2S-1".to_owned()));

    let ca = root("Root");
    let up = upload_root(&app, &a, "root", &ca.pem()).await;
    assert_status(&up, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rules_of(&up), vec!["P2S-1"]);
    assert!(
        up.json()["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("PolicyBased")
    );

    let c = challenge(&app, BASE).await;
    assert_eq!(c.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rules_of(&c), vec!["P2S-1"]);
    let mut e = Enrol::with(&leaf(&ca, "alice"));
    e.name = Some("alice".into());
    // An enrolment with a made-up nonce is refused for the gateway type before anything else.
    let body = json!({"nonce": base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        "certificate_chain": e.chain, "signature_scheme": "ecdsa_p256_sha256", "signature": "AAAA",
        "wireguard_public_key": e.wireguard_public_key});
    let r = post(&app, &Cred::None, &format!("{BASE}/enrol"), body).await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rules_of(&r), vec!["P2S-1"]);
}

// ---- enrolment -------------------------------------------------------------------------------

#[tokio::test]
async fn p2s_3_enrolment_gives_an_address_and_a_client_package_for_every_vnet() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    // An internal PKI: the client certificate is issued by an intermediate it presents.
    let issuing = intermediate(&ca, "Acme Issuing CA");
    let alice = leaf(&issuing, "Alice Laptop");
    let mut e = Enrol::with(&alice);
    e.chain = format!("{}{}", alice.pem, issuing.pem());
    let r = enrol(&app, &e).await;
    let body = ok(r);
    assert_eq!(body["client"], "alice-laptop");
    assert_eq!(body["address"], "172.16.0.1");
    assert_eq!(body["certificate_thumbprint"], thumbprint(&alice.der));
    assert_eq!(body["renewed"], false);
    assert!(
        body["private_key"].is_null(),
        "the client keeps its own key"
    );
    let config = body["config"].as_str().unwrap();
    assert!(config.contains("Address = 172.16.0.1/32"), "{config}");
    // GW-10: no worker states an address here, so the package names the loopback fallback
    // and says so, in the JSON and in the file.
    let warning = body["warnings"][0].as_str().expect("a GW-10 warning");
    assert!(warning.contains("--public-address"), "{warning}");
    assert!(config.contains("# WARNING:"), "{config}");
    assert!(
        config.contains(isthmus_shared::device::PRIVATE_KEY_PLACEHOLDER),
        "{config}"
    );
    // P2S-6: a peer for the home gateway and one for the additional VNet's gateway; P2S-8: the
    // site behind the home gateway is reachable too.
    assert_eq!(config.matches("[Peer]").count(), 2, "{config}");
    for prefix in ["10.0.0.0/16", "10.1.0.0/16", "192.168.1.0/24"] {
        assert!(config.contains(prefix), "{prefix} missing from {config}");
    }
    assert!(
        !config.contains("172.16.0.0/24"),
        "the pool itself is not routed to the gateway: {config}"
    );
    let svg = body["config_qr_svg"].as_str().expect("qr");
    assert!(svg.contains("<svg"), "{svg}");

    // The client is stored with its key, address and thumbprint.
    let p = p2s_config(&app, &a).await;
    assert_eq!(p["clients"][0]["public_key"], json!(e.wireguard_public_key));
    assert_eq!(
        p["clients"][0]["certificate_thumbprint"],
        thumbprint(&alice.der)
    );

    // A second certificate gets the next address; the first one again keeps its address.
    let bob = leaf(&ca, "bob");
    assert_eq!(
        ok(enrol(&app, &Enrol::with(&bob)).await)["address"],
        "172.16.0.2"
    );
    let again = ok(enrol(&app, &e).await);
    assert_eq!(again["renewed"], true);
    assert_eq!(again["address"], "172.16.0.1");
    assert_eq!(
        p2s_config(&app, &a).await["clients"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Removing a client frees its address for the next enrolment.
    let del = delete(&app, &a, &format!("{BASE}/clients/alice-laptop")).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let carol = leaf(&ca, "carol");
    assert_eq!(
        ok(enrol(&app, &Enrol::with(&carol)).await)["address"],
        "172.16.0.1"
    );
}

#[tokio::test]
async fn p2s_3_a_server_generated_key_is_returned_once_and_never_stored() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Root");
    ok(upload_root(&app, &a, "root", &ca.pem()).await);
    let mut e = Enrol::with(&leaf(&ca, "phone"));
    e.wireguard_public_key = None;
    e.generate_keypair = true;
    let body = ok(enrol(&app, &e).await);
    let private = body["private_key"]
        .as_str()
        .expect("private key")
        .to_owned();
    let config = body["config"].as_str().unwrap();
    assert!(
        config.contains(&format!("PrivateKey = {private}")),
        "{config}"
    );
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(&private)
        .unwrap()
        .try_into()
        .unwrap();
    let public = x25519_public(bytes);
    let p = p2s_config(&app, &a).await;
    assert_eq!(p["clients"][0]["public_key"], public);
    assert!(!p.to_string().contains(&private));
    if std::env::var("ISTHMUS_TEST_POSTGRES").is_err() {
        let raw = std::fs::read(&app.db_path).unwrap();
        let wal = std::fs::read(app.db_path.with_extension("db-wal")).unwrap_or_default();
        for file in [raw, wal] {
            assert!(
                !file.windows(private.len()).any(|w| w == private.as_bytes()),
                "the private key is in the database file"
            );
        }
    }
}

fn x25519_public(private: [u8; 32]) -> String {
    // The same derivation the server and `wg pubkey` use.
    let secret = x25519_dalek::StaticSecret::from(private);
    base64::engine::general_purpose::STANDARD
        .encode(x25519_dalek::PublicKey::from(&secret).as_bytes())
}

#[tokio::test]
async fn p2s_3_enrolment_refuses_revoked_expired_and_foreign_certificates() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let before = version(&app).await;

    // Revoked (through the API) before it ever enrolled.
    let mallory = leaf(&ca, "mallory");
    let r = post(
        &app,
        &a,
        &format!("{BASE}/revoked-thumbprints"),
        json!({"thumbprint": thumbprint(&mallory.der).to_uppercase()}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let before = before + 1;
    assert_refused(
        &enrol(&app, &Enrol::with(&mallory)).await,
        StatusCode::FORBIDDEN,
        "is revoked",
    );

    // Expired, and not yet valid.
    let expired = leaf_with(&ca, "old", Some((2015, 2020)));
    assert_refused(
        &enrol(&app, &Enrol::with(&expired)).await,
        StatusCode::FORBIDDEN,
        "has expired",
    );
    let future = leaf_with(&ca, "future", Some((2090, 2095)));
    assert_refused(
        &enrol(&app, &Enrol::with(&future)).await,
        StatusCode::FORBIDDEN,
        "not valid yet",
    );

    // Issued under a root the gateway does not trust.
    let foreign = leaf(&root("Evil Root"), "eve");
    assert_refused(
        &enrol(&app, &Enrol::with(&foreign)).await,
        StatusCode::FORBIDDEN,
        "does not chain to any root certificate of gateway acme/hub-gw",
    );
    // A self-signed client certificate, and a CA certificate used as a client's.
    let self_key = KeyPair::generate().unwrap();
    let mut self_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    self_params
        .distinguished_name
        .push(DnType::CommonName, "self");
    self_params.is_ca = IsCa::ExplicitNoCa;
    let mut e = Enrol::with(&leaf(&ca, "x"));
    e.chain = self_params.self_signed(&self_key).unwrap().pem();
    e.key_pem = self_key.serialize_pem();
    assert_refused(
        &enrol(&app, &e).await,
        StatusCode::FORBIDDEN,
        "does not chain",
    );
    let sub_ca = intermediate(&ca, "Sub CA");
    e.chain = sub_ca.pem();
    e.key_pem = sub_ca.key.serialize_pem();
    assert_refused(
        &enrol(&app, &e).await,
        StatusCode::FORBIDDEN,
        "is a CA certificate",
    );

    // The right certificate, but the challenge signed with another key.
    let good = leaf(&ca, "good");
    let mut wrong_key = Enrol::with(&good);
    wrong_key.key_pem = leaf(&ca, "other").key_pem;
    assert_refused(
        &enrol(&app, &wrong_key).await,
        StatusCode::FORBIDDEN,
        "signature over the challenge does not verify",
    );

    // A nonce is single use.
    let c = challenge(&app, BASE).await.json();
    let nonce = c["nonce"].as_str().unwrap().to_owned();
    let mut body = isthmus_shared::enrol::EnrolRequest {
        nonce,
        certificate_chain: good.pem.clone(),
        signature_scheme: isthmus_shared::enrol::SignatureScheme::Ed25519,
        signature: String::new(),
        wireguard_public_key: Some(isthmus_client::enrol::wireguard_keypair().1),
        generate_keypair: false,
        name: None,
    };
    let msg = isthmus_shared::enrol::challenge_message(
        &isthmus_shared::model::QualifiedName::new("acme", "hub-gw"),
        &body,
    );
    let (scheme, sig) = isthmus_client::sign::sign(&good.key_pem, &msg).unwrap();
    body.signature_scheme = scheme;
    body.signature = base64::engine::general_purpose::STANDARD.encode(sig);
    let first = post(
        &app,
        &Cred::None,
        &format!("{BASE}/enrol"),
        serde_json::to_value(&body).unwrap(),
    )
    .await;
    assert_status(&first, StatusCode::OK);
    let replay = post(
        &app,
        &Cred::None,
        &format!("{BASE}/enrol"),
        serde_json::to_value(&body).unwrap(),
    )
    .await;
    assert_refused(&replay, StatusCode::UNAUTHORIZED, "no open challenge");

    // Only the good enrolment was written.
    assert_eq!(version(&app).await, before + 1);
    let clients = p2s_config(&app, &a).await["clients"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["name"], "good");
}

#[tokio::test]
async fn p2s_3_bad_enrolment_input_is_refused_with_the_problem_named() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let alice = leaf(&ca, "alice");
    let before = version(&app).await;

    let mut bad_key = Enrol::with(&alice);
    bad_key.wireguard_public_key = Some("dGVzdA==".into());
    let mut no_key = Enrol::with(&alice);
    no_key.wireguard_public_key = None;
    let mut both = Enrol::with(&alice);
    both.generate_keypair = true;
    let mut malformed = Enrol::with(&alice);
    malformed.chain = "-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----\n".into();
    let mut with_key = Enrol::with(&alice);
    with_key.chain = format!("{}{}", alice.pem, alice.key_pem);
    for (e, needle) in [
        (
            &bad_key,
            "field `wireguard_public_key`: not a WireGuard public key",
        ),
        (&no_key, "`wireguard_public_key` is missing"),
        (&both, "not both"),
        (&malformed, "field `certificate_chain`: malformed PEM"),
        (&with_key, "never send a private key"),
    ] {
        assert_refused(&enrol(&app, e).await, StatusCode::BAD_REQUEST, needle);
    }

    // Too long: the client certificate and six intermediates.
    let mut chain = vec![ca];
    for i in 0..6 {
        let next = intermediate(chain.last().unwrap(), &format!("Intermediate {i}"));
        chain.push(next);
    }
    let deep = leaf(chain.last().unwrap(), "deep");
    let mut long = Enrol::with(&deep);
    long.chain = std::iter::once(deep.pem.clone())
        .chain(chain[1..].iter().rev().map(Ca::pem))
        .collect();
    assert_refused(
        &enrol(&app, &long).await,
        StatusCode::BAD_REQUEST,
        "at most 5 intermediates",
    );

    // A loop: A is issued by B and B by A.
    let key_a = KeyPair::generate().unwrap();
    let key_b = KeyPair::generate().unwrap();
    let b0 = ca_params("Loop B").self_signed(&key_b).unwrap();
    let a_cert = ca_params("Loop A").signed_by(&key_a, &b0, &key_b).unwrap();
    let b_cert = ca_params("Loop B")
        .signed_by(&key_b, &a_cert, &key_a)
        .unwrap();
    let loop_a = Ca {
        cert: a_cert,
        key: key_a,
    };
    let looped = leaf(&loop_a, "looped");
    let mut e = Enrol::with(&looped);
    e.chain = format!("{}{}{}", looped.pem, loop_a.pem(), b_cert.pem());
    assert_refused(
        &enrol(&app, &e).await,
        StatusCode::BAD_REQUEST,
        "chain loops (CN=looped -> CN=Loop A -> CN=Loop B -> CN=Loop A)",
    );

    let mut huge = Enrol::with(&alice);
    huge.chain = format!("{}{}", alice.pem, "A".repeat(70 * 1024));
    assert_refused(
        &enrol(&app, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "at most 65536",
    );

    let mut bad_name = Enrol::with(&alice);
    bad_name.name = Some("no spaces please".into());
    assert_refused(
        &enrol(&app, &bad_name).await,
        StatusCode::BAD_REQUEST,
        "field `name`",
    );

    assert_eq!(version(&app).await, before, "nothing written");
    assert!(
        p2s_config(&app, &a).await["clients"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn p2s_2_the_129th_client_on_a_basic_gateway_is_refused() {
    let app = test_app().await;
    let a = setup(&app, "Basic", "RouteBased").await;
    let ca = root("Root");
    ok(upload_root(&app, &a, "root", &ca.pem()).await);
    for i in 0..128 {
        let r = enrol(&app, &Enrol::with(&leaf(&ca, &format!("client{i}")))).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "client {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let before = version(&app).await;
    let r = enrol(&app, &Enrol::with(&leaf(&ca, "client128"))).await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rules_of(&r), vec!["P2S-2"]);
    let v = &r.json()["violations"][0]["message"];
    assert!(v.as_str().unwrap().contains("SKU Basic allows 128"), "{v}");
    assert_eq!(version(&app).await, before);
    assert_eq!(
        p2s_config(&app, &a).await["clients"]
            .as_array()
            .unwrap()
            .len(),
        128
    );
}

#[tokio::test]
async fn p2s_concurrent_enrolments_never_share_an_address() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Root");
    ok(upload_root(&app, &a, "root", &ca.pem()).await);
    let enrolments: Vec<Enrol> = (0..12)
        .map(|i| Enrol::with(&leaf(&ca, &format!("c{i}"))))
        .collect();
    let answers = futures_join_all(&app, &enrolments).await;
    let mut addresses: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_status(r, StatusCode::OK);
            r.json()["address"].as_str().unwrap().to_owned()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 12, "{addresses:?}");
    assert_eq!(
        p2s_config(&app, &a).await["clients"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

async fn futures_join_all(app: &TestApp, es: &[Enrol]) -> Vec<Answer> {
    let mut set = tokio::task::JoinSet::new();
    for (i, e) in es.iter().enumerate() {
        let app = TestApp {
            router: app.router.clone(),
            db_path: app.db_path.clone(),
            url: app.url.clone(),
            _dir: tempfile::tempdir().expect("tempdir"),
        };
        let e = e.clone();
        set.spawn(async move { (i, enrol(&app, &e).await) });
    }
    let mut out: Vec<(usize, Answer)> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, a)| a).collect()
}

// ---- revocation ------------------------------------------------------------------------------

fn client_peers(desired: &Value) -> Vec<String> {
    desired["gateways"]
        .as_array()
        .expect("gateways")
        .iter()
        .filter(|g| g["name"] == "hub-gw")
        .flat_map(|g| g["peers"].as_array().expect("peers").clone())
        .filter(|p| p["kind"]["type"] == "P2sClient")
        .map(|p| p["public_key"].as_str().expect("key").to_owned())
        .collect()
}

async fn desired(app: &TestApp, since: i64) -> Value {
    let r = get_as(
        app,
        &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
        &format!("/api/v1/worker/desired?name=w1&since={since}&wait=0"),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    r.json()
}

#[tokio::test]
async fn p2s_3_revocation_removes_the_peer_from_the_desired_state_and_blocks_enrolment() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Root");
    ok(upload_root(&app, &a, "root", &ca.pem()).await);
    let alice = leaf(&ca, "alice");
    let bob = leaf(&ca, "bob");
    let ea = Enrol::with(&alice);
    let eb = Enrol::with(&bob);
    ok(enrol(&app, &ea).await);
    ok(enrol(&app, &eb).await);
    let key_a = ea.wireguard_public_key.clone().unwrap();
    let key_b = eb.wireguard_public_key.clone().unwrap();

    let d1 = desired(&app, 0).await;
    let v1 = d1["version"].as_i64().unwrap();
    let mut peers = client_peers(&d1);
    peers.sort();
    let mut both = vec![key_a.clone(), key_b.clone()];
    both.sort();
    assert_eq!(peers, both);

    let thumb = thumbprint(&alice.der);
    // Colons and upper case are accepted.
    let colons: Vec<String> = thumb
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let r = post(
        &app,
        &a,
        &format!("{BASE}/revoked-thumbprints"),
        json!({"thumbprint": colons.join(":")}),
    )
    .await;
    let revoked = ok(r);
    assert_eq!(revoked["resource"]["thumbprint"], thumb);
    assert_eq!(revoked["resource"]["clients"], json!(["alice"]));
    assert!(revoked["version"].as_i64().unwrap() > v1);

    // The worker's next desired state has a newer version and no peer for alice.
    let d2 = desired(&app, v1).await;
    assert!(d2["version"].as_i64().unwrap() > v1);
    assert_eq!(client_peers(&d2), vec![key_b.clone()]);

    // Enrolment with that certificate is refused, even to renew.
    assert_refused(&enrol(&app, &ea).await, StatusCode::FORBIDDEN, "is revoked");
    let listed = ok(get_as(&app, &a, &format!("{BASE}/revoked-thumbprints")).await);
    assert_eq!(listed, json!([{"thumbprint": thumb, "clients": ["alice"]}]));
    let twice = post(
        &app,
        &a,
        &format!("{BASE}/revoked-thumbprints"),
        json!({"thumbprint": thumb}),
    )
    .await;
    assert_refused(&twice, StatusCode::CONFLICT, "already revoked");
    let bad = post(
        &app,
        &a,
        &format!("{BASE}/revoked-thumbprints"),
        json!({"thumbprint": "abc"}),
    )
    .await;
    assert_refused(&bad, StatusCode::BAD_REQUEST, "64 hexadecimal digits");

    // Lifting the revocation brings the peer back.
    let del = delete(&app, &a, &format!("{BASE}/revoked-thumbprints/{thumb}")).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let d3 = desired(&app, d2["version"].as_i64().unwrap()).await;
    assert_eq!(client_peers(&d3).len(), 2);
}

#[tokio::test]
async fn p2s_3_only_owners_manage_roots_and_revocations() {
    let app = test_app().await;
    let _a = setup(&app, "VpnGw1", "RouteBased").await;
    let outsider = user(&app, "outsider").await;
    let ca = root("Root");
    let r = upload_root(&app, &outsider, "root", &ca.pem()).await;
    assert_status(&r, StatusCode::NOT_FOUND);
    let r = upload_root(&app, &Cred::None, "root", &ca.pem()).await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, "log in");
}

// ---- the command-line client -----------------------------------------------------------------

/// Serves the app on a loopback port; aborted on drop.
struct Served {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: &TestApp) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.router.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Served { url, task }
}

async fn run_client(args: &[&str]) -> Result<String, String> {
    use clap::Parser;
    let cli = isthmus_client::cli::Cli::try_parse_from(
        std::iter::once("isthmus-client").chain(args.iter().copied()),
    )
    .map_err(|e| e.to_string())?;
    isthmus_client::cli::run(cli)
        .await
        .map_err(|e| e.to_string())
}

/// `isthmus-client enrol --server URL --cert CERT --key KEY` and `rest`, in process.
async fn client_enrol(url: &str, cert: &str, key: &str, rest: &[&str]) -> Result<String, String> {
    let mut args = vec!["enrol", "--server", url, "--cert", cert, "--key", key];
    args.extend_from_slice(rest);
    run_client(&args).await
}

#[tokio::test]
async fn p2s_3_isthmus_client_enrol_writes_the_wg_quick_file_over_http() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let served = serve(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let alice = leaf(&ca, "alice");
    std::fs::write(p("alice.pem"), &alice.pem).unwrap();
    std::fs::write(p("alice.key"), &alice.key_pem).unwrap();

    let msg = client_enrol(
        &served.url,
        &p("alice.pem"),
        &p("alice.key"),
        &[
            "--gateway",
            "hub-gw",
            "--tenant",
            "acme",
            "--out",
            &p("wg0.conf"),
            "--qr",
            &p("wg0.svg"),
        ],
    )
    .await
    .expect("enrol");
    assert!(
        msg.contains("enrolled client `alice` on gateway acme/hub-gw with address 172.16.0.1"),
        "{msg}"
    );
    let conf = std::fs::read_to_string(p("wg0.conf")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(p("wg0.conf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        !conf.contains(isthmus_shared::device::PRIVATE_KEY_PLACEHOLDER),
        "{conf}"
    );
    let private = conf
        .lines()
        .find_map(|l| l.strip_prefix("PrivateKey = "))
        .expect("PrivateKey line");
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(private)
        .unwrap()
        .try_into()
        .unwrap();
    // The server knows the public half only.
    let stored = p2s_config(&app, &a).await;
    assert_eq!(stored["clients"][0]["public_key"], x25519_public(bytes));
    assert!(!stored.to_string().contains(private));
    for needle in [
        "Address = 172.16.0.1/32",
        "10.0.0.0/16",
        "10.1.0.0/16",
        "192.168.1.0/24",
        "Endpoint = 127.0.0.1:",
    ] {
        assert!(conf.contains(needle), "{needle} missing: {conf}");
    }
    assert!(
        std::fs::read_to_string(p("wg0.svg"))
            .unwrap()
            .contains("<svg")
    );

    // TENANT/NAME works as well; a second run renews.
    let msg = client_enrol(
        &served.url,
        &p("alice.pem"),
        &p("alice.key"),
        &["--gateway", "acme/hub-gw", "--out", &p("wg0.conf")],
    )
    .await
    .expect("renew");
    assert!(msg.starts_with("renewed client `alice`"), "{msg}");

    // Refusals reach the user with the server's message.
    let eve = leaf(&root("Evil Root"), "eve");
    std::fs::write(p("eve.pem"), &eve.pem).unwrap();
    std::fs::write(p("eve.key"), &eve.key_pem).unwrap();
    let err = client_enrol(
        &served.url,
        &p("eve.pem"),
        &p("eve.key"),
        &[
            "--gateway",
            "hub-gw",
            "--tenant",
            "acme",
            "--out",
            &p("eve.conf"),
        ],
    )
    .await
    .expect_err("foreign root");
    assert!(
        err.contains("the server refused (403)") && err.contains("does not chain"),
        "{err}"
    );
    assert!(!std::path::Path::new(&p("eve.conf")).exists());
    let err = client_enrol(
        &served.url,
        &p("alice.pem"),
        &p("alice.pem"),
        &["--gateway", "hub-gw"],
    )
    .await
    .expect_err("no tenant");
    assert!(err.contains("--tenant"), "{err}");
    let err = client_enrol(
        &served.url,
        &p("alice.pem"),
        &p("alice.pem"),
        &["--gateway", "hub-gw", "--tenant", "acme"],
    )
    .await
    .expect_err("certificate as key");
    assert!(err.contains("not a PEM private key"), "{err}");
}

#[tokio::test]
async fn p2s_4_the_client_package_names_each_peers_tcp_endpoint() {
    let app = test_app().await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let alice = leaf(&ca, "alice");
    let body = ok(enrol(&app, &Enrol::with(&alice)).await);
    let config = body["config"].as_str().unwrap();
    // Every peer (home gateway and the additional VNet's) has a UDP endpoint and, on the same
    // host, the TCP transport on the default port 443, as a comment WireGuard ignores.
    let peers: Vec<&str> = config.split("[Peer]").skip(1).collect();
    assert_eq!(peers.len(), 2, "{config}");
    for p in peers {
        let udp = p
            .lines()
            .find_map(|l| l.strip_prefix("Endpoint = "))
            .unwrap_or_else(|| panic!("no Endpoint in {p}"));
        let host = udp.rsplit_once(':').unwrap().0;
        assert!(
            p.contains(&format!("# TcpEndpoint = {host}:443\n")),
            "no TCP endpoint on {host}:443 in {p}"
        );
    }
}

/// A worker's heartbeat with one public address and a heartbeat address on it (issue 16).
async fn redundant_worker(app: &TestApp, name: &str, address: &str) {
    let r = send(
        app,
        req(
            "POST",
            "/api/v1/worker/heartbeat",
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            Some(json!({"protocol": 1, "name": name, "version": "test",
                "public_addresses": [address], "heartbeat_address": format!("{address}:51899")})),
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
}

/// One desired-state poll of worker `name` (placement runs on every poll).
async fn poll_desired(app: &TestApp, name: &str) {
    let r = send(
        app,
        req(
            "GET",
            &format!("/api/v1/worker/desired?name={name}&since=0"),
            &Cred::Bearer(TEST_WORKER_TOKEN.to_owned()),
            None,
        ),
    )
    .await;
    assert_status(&r, StatusCode::OK);
}

/// The value of `key = value` (or `# key = value`) in one peer section.
fn peer_value<'a>(peer: &'a str, key: &str) -> Option<&'a str> {
    peer.lines().find_map(|l| {
        let l = l.trim().trim_start_matches('#').trim();
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

#[tokio::test]
async fn p2s_a_redundant_gateways_client_package_lists_both_instances() {
    let app = test_app().await;
    // Two live workers that state heartbeat addresses: every gateway gets two instances.
    redundant_worker(&app, "w1", "198.51.100.1").await;
    redundant_worker(&app, "w2", "198.51.100.2").await;
    let a = setup(&app, "VpnGw1", "RouteBased").await;
    poll_desired(&app, "w1").await;
    poll_desired(&app, "w2").await;
    let ca = root("Acme Root CA");
    ok(upload_root(&app, &a, "acme-root", &ca.pem()).await);
    let body = ok(enrol(&app, &Enrol::with(&leaf(&ca, "alice"))).await);
    let config = body["config"].as_str().unwrap();
    assert!(
        body["warnings"].as_array().is_none_or(Vec::is_empty),
        "{}",
        body["warnings"]
    );

    let gw = ok(get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw").await);
    let active = gw["public_endpoint"].as_str().expect("an endpoint");
    let other = gw["secondary_endpoint"]
        .as_str()
        .expect("a redundant gateway");
    let hosts = |e: &str| e.rsplit_once(':').unwrap().0.to_owned();
    let mut both = [hosts(active), hosts(other)];
    both.sort();
    assert_eq!(
        both,
        ["198.51.100.1", "198.51.100.2"],
        "one instance per worker"
    );
    assert_eq!(
        active.rsplit_once(':').unwrap().1,
        other.rsplit_once(':').unwrap().1,
        "both instances listen on the gateway's one port"
    );

    // The home gateway's peer: the active instance as the Endpoint, the other as the
    // failover, over UDP and (P2S-4) TCP; `isthmus-client connect` reads both back.
    let home = config
        .split("[Peer]")
        .skip(1)
        .find(|p| p.contains(&format!("Endpoint = {active}\n")))
        .unwrap_or_else(|| panic!("no peer with Endpoint = {active} in {config}"));
    assert_eq!(peer_value(home, "FailoverEndpoint"), Some(other), "{home}");
    assert_eq!(
        peer_value(home, "TcpEndpoint"),
        Some(format!("{}:443", hosts(active)).as_str())
    );
    assert_eq!(
        peer_value(home, "FailoverTcpEndpoint"),
        Some(format!("{}:443", hosts(other)).as_str())
    );
    let plan = isthmus_client::connect::plan_udp(config, None).expect("plan");
    assert_eq!(plan.instances, [active, other]);

    // `isthmus-client enrol` writes that package (its own key in place), so `connect` finds
    // both instances, and both TCP transports, in the file.
    let served = serve(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let bob = leaf(&ca, "bob");
    std::fs::write(p("bob.pem"), &bob.pem).unwrap();
    std::fs::write(p("bob.key"), &bob.key_pem).unwrap();
    let rest = ["--gateway", "acme/hub-gw", "--out", &p("wg0.conf")];
    client_enrol(&served.url, &p("bob.pem"), &p("bob.key"), &rest)
        .await
        .expect("enrol");
    let written = std::fs::read_to_string(p("wg0.conf")).unwrap();
    let plan = isthmus_client::connect::plan_udp(&written, None).expect("plan");
    assert_eq!(plan.instances, [active, other], "{written}");
    let tcp = isthmus_client::connect::plan(&written, None, None).expect("plan");
    assert_eq!(
        tcp.tcp_endpoints(),
        [
            format!("{}:443", hosts(active)),
            format!("{}:443", hosts(other))
        ]
    );
}
