//! Issue 17: IPsec site-to-site through the API: create, the worker's desired state, the
//! swanctl and sheet exports, status and metrics, YAML apply and the IPSEC-* rules.

use crate::cli::isthmus;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const POLICY: &str = r#"{"ike": {"cipher": "aes256gcm16", "prf": "prfsha384", "dh_group": "ecp384"},
    "esp_cipher": "aes128gcm16", "ike_lifetime_secs": 14400, "child_lifetime_secs": 1800,
    "child_lifetime_kilobytes": 102400}"#;

/// Tenant acme with hub-gw, a site `branch` (no WireGuard key) and the IPsec connection
/// `to-branch` with a custom policy and shared key `Secret123`.
async fn setup(app: &TestApp) -> Cred {
    let a = admin(app).await;
    created(app, &a, "/api/v1/tenants", json!({"name": "acme"})).await;
    created(app, &a, "/api/v1/tenants/acme/vnets", json!({"name": "hub", "region": "westeurope",
        "address_space": ["10.0.0.0/16"], "subnets": [{"name": "GatewaySubnet", "prefix": "10.0.255.0/27"}]})).await;
    created(
        app,
        &a,
        "/api/v1/tenants/acme/gateways",
        json!({"name": "hub-gw", "vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    )
    .await;
    created(
        app,
        &a,
        "/api/v1/tenants/acme/sites",
        json!({"name": "branch", "device_host": "203.0.113.10",
        "address_prefixes": ["192.168.1.0/24"], "ike_identity": "branch@vpn.example"}),
    )
    .await;
    let policy: Value = serde_json::from_str(POLICY).expect("policy JSON");
    let c = created(app, &a, "/api/v1/tenants/acme/connections", json!({"name": "to-branch", "gateway": "hub-gw",
        "kind": {"type": "SiteToSite", "site": "branch"}, "protocol": "IPsec", "ipsec_policy": policy,
        "connection_mode": "ResponderOnly"})).await;
    assert_eq!(c["protocol"], "IPsec");
    let r = put(
        app,
        &a,
        "/api/v1/tenants/acme/connections/to-branch/shared-key",
        json!({"shared_key": "Secret123"}),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    a
}

fn endpoint_of(gw: &Value) -> (String, String) {
    let e = gw["public_endpoint"].as_str().expect("an endpoint");
    let (host, port) = e.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.to_owned())
}

#[tokio::test]
async fn an_ipsec_connection_reaches_the_workers_desired_state_as_an_ipsec_peer() {
    let app = test_app().await;
    let a = setup(&app).await;
    let gw = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json();
    let (host, _) = endpoint_of(&gw);
    let d = desired_of(&app, "w1").await;
    let peer = &d["gateways"][0]["peers"][0];
    assert_eq!(peer["name"], "to-branch");
    assert_eq!(peer["public_key"], "");
    assert!(peer["preshared_key"].is_null(), "{peer}");
    assert_eq!(peer["endpoint"], "203.0.113.10:500");
    let ipsec = &peer["ipsec"];
    assert_eq!(ipsec["psk"], "Secret123");
    assert_eq!(ipsec["local_id"], host.as_str());
    assert_eq!(ipsec["remote_id"], "branch@vpn.example");
    let p = &ipsec["parameters"];
    assert_eq!(
        p["ike_proposals"],
        json!([{"cipher": "aes256gcm16", "prf": "prfsha384", "dh_group": "ecp384"}])
    );
    assert_eq!(p["esp_ciphers"], json!(["aes128gcm16"]));
    assert_eq!(p["ike_lifetime_secs"], 14400);
    assert_eq!(p["child_lifetime_secs"], 1800);
    assert_eq!(p["child_lifetime_kilobytes"], 102400);
    assert_eq!(p["mode"], "ResponderOnly");
}

#[tokio::test]
async fn the_device_config_of_an_ipsec_connection_is_a_swanctl_conf_or_a_sheet() {
    let app = test_app().await;
    let a = setup(&app).await;
    let gw = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw")
        .await
        .json();
    let (host, port) = endpoint_of(&gw);
    let path = "/api/v1/tenants/acme/connections/to-branch/device-config";
    for query in ["", "?format=swanctl"] {
        let r = get_as(&app, &a, &format!("{path}{query}")).await;
        assert_status(&r, StatusCode::OK);
        assert!(r.content_type.starts_with("text/plain"));
        let conf = String::from_utf8(r.body).unwrap();
        for line in [
            "    to-branch {".to_owned(),
            "        version = 2".to_owned(),
            format!("        remote_addrs = {host}"),
            format!("        remote_port = {port}"),
            "        encap = yes".to_owned(),
            "        mobike = no".to_owned(),
            "        proposals = aes256gcm16-prfsha384-ecp384".to_owned(),
            "        rekey_time = 12960s".to_owned(),
            "            id = branch@vpn.example".to_owned(),
            format!("            id = {host}"),
            "                local_ts = 192.168.1.0/24".to_owned(),
            "                remote_ts = 10.0.0.0/16".to_owned(),
            "                esp_proposals = aes128gcm16".to_owned(),
            "                life_time = 1800s".to_owned(),
            "                life_bytes = 104857600".to_owned(),
            "                start_action = start".to_owned(),
            "        secret = \"Secret123\"".to_owned(),
        ] {
            assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
        }
    }
    let r = get_as(&app, &a, &format!("{path}?format=sheet")).await;
    assert_status(&r, StatusCode::OK);
    let sheet = String::from_utf8(r.body).unwrap();
    for want in [
        format!("Gateway address                 {host}"),
        format!("Gateway port (IKE and ESP)      UDP {port}"),
        "Device IKE identity             branch@vpn.example".to_owned(),
        "Pre-shared key                  Secret123".to_owned(),
        "IKE proposals                   aes256gcm16-prfsha384-ecp384".to_owned(),
        "ESP proposals                   aes128gcm16 (no PFS group)".to_owned(),
        "CHILD SA data lifetime          102400 KB".to_owned(),
        "Connection mode                 ResponderOnly".to_owned(),
    ] {
        assert!(sheet.contains(&want), "no {want:?} in:\n{sheet}");
    }
    // An IPsec connection has no wg-quick file.
    let r = get_as(&app, &a, &format!("{path}?format=wg-quick")).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    // Reading the PSK is audited.
    let audit = get_as(&app, &a, "/api/v1/audit").await.json();
    let reads = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "connection.device_config.read")
        .count();
    assert_eq!(reads, 3, "{audit}");
}

#[tokio::test]
async fn a_swanctl_or_sheet_export_of_a_wireguard_connection_is_a_400_naming_the_format() {
    let app = test_app().await;
    let a = setup(&app).await;
    created(&app, &a, "/api/v1/tenants/acme/sites", json!({"name": "wg", "device_host": "203.0.113.20",
        "address_prefixes": ["192.168.2.0/24"], "device_public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="})).await;
    created(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        json!({"name": "to-wg", "gateway": "hub-gw", "kind": {"type": "SiteToSite", "site": "wg"}}),
    )
    .await;
    let path = "/api/v1/tenants/acme/connections/to-wg/device-config";
    for format in ["swanctl", "sheet"] {
        let r = get_as(&app, &a, &format!("{path}?format={format}")).await;
        assert_status(&r, StatusCode::BAD_REQUEST);
        let body = r.json();
        assert!(
            body["message"].as_str().unwrap().contains("uses WireGuard"),
            "{body}"
        );
    }
    // The WireGuard default is unchanged.
    let r = get_as(&app, &a, path).await;
    assert_status(&r, StatusCode::OK);
    assert!(String::from_utf8(r.body).unwrap().contains("[Peer]"));
    let r = get_as(&app, &a, &format!("{path}?format=nonsense")).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_ipsec_status_report_reaches_the_status_view_and_the_metrics() {
    let app = test_app().await;
    let a = setup(&app).await;
    let child = json!({"inbound_spi": "c1a2b3d4", "outbound_spi": "0badf00d", "state": "established",
        "cipher": "aes128gcm16", "selectors": ["0.0.0.0/0 === 0.0.0.0/0"], "established_unix": 1_790_000_000u64,
        "rekey_unix": 1_790_001_620u64, "rx_bytes": 10, "tx_bytes": 20, "rx_packets": 1, "tx_packets": 2});
    let report = json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
        "connections": [{"name": "to-branch", "rx_bytes": 10, "tx_bytes": 20, "endpoint": "203.0.113.10:4500",
        "state": "up", "ipsec": {"ike_state": "established", "ike_spis": "0102030405060708_1112131415161718",
        "ike_proposal": "aes256gcm16-prfsha384-ecp384", "initiator": false, "children": [child], "rekeys": 3}}]}]});
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/worker/status?name=w1",
            &worker_cred(),
            Some(report),
        ),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let s = get_as(&app, &a, "/api/v1/tenants/acme/status").await.json();
    let v = &s[0];
    assert_eq!(v["connection"], "to-branch");
    assert_eq!(v["state"], "up");
    assert_eq!(v["ipsec"]["ike_state"], "established");
    assert_eq!(v["ipsec"]["ike_proposal"], "aes256gcm16-prfsha384-ecp384");
    assert_eq!(v["ipsec"]["children"][0]["inbound_spi"], "c1a2b3d4");
    assert_eq!(v["ipsec"]["rekeys"], 3);
    let gs = get_as(&app, &a, "/api/v1/tenants/acme/gateways/hub-gw/status")
        .await
        .json();
    assert_eq!(gs["connections"][0]["ipsec"]["ike_state"], "established");
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    let labels = r#"{tenant="acme",gateway="hub-gw",connection="to-branch"}"#;
    for line in [
        format!("isthmus_ipsec_ike_sa_established{labels} 1"),
        format!("isthmus_ipsec_child_sas{labels} 1"),
        format!("isthmus_ipsec_rekeys_total{labels} 3"),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
}

/// Issue 17 (Bad input): the IKE and ESP drops by kind of a gateway's report reach `/metrics`
/// per gateway (readers who may see it), and a gateway without IPsec drops has no series.
#[tokio::test]
async fn the_ipsec_drops_by_kind_of_a_report_reach_the_metrics() {
    let app = test_app().await;
    let a = setup(&app).await;
    let post = |drops: Value| {
        let report = json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme",
            "name": "hub-gw", "connections": [], "drops": drops}]});
        send(
            &app,
            req(
                "POST",
                "/api/v1/worker/status?name=w1",
                &worker_cred(),
                Some(report),
            ),
        )
    };
    assert_status(
        &post(json!({"bad_datagrams": 2})).await,
        StatusCode::NO_CONTENT,
    );
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    assert!(
        text.contains("# TYPE isthmus_ipsec_drops_total counter"),
        "{text}"
    );
    assert!(!text.contains("isthmus_ipsec_drops_total{"), "{text}");
    let ipsec = json!({"esp_malformed": 1, "esp_unknown_spi": 2, "esp_integrity": 3, "esp_replay": 4,
        "ike_malformed": 5, "ike_unknown_spi": 6, "ike_integrity": 7, "ike_replayed": 8,
        "ike_out_of_window": 9, "ike_unexpected": 10, "ike_unmatched": 11, "cookies_sent": 12,
        "half_open_full": 13});
    let r = post(json!({"bad_datagrams": 90, "ipsec": ipsec})).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    for (n, kind) in [
        "esp_malformed",
        "esp_unknown_spi",
        "esp_integrity",
        "esp_replay",
        "ike_malformed",
        "ike_unknown_spi",
        "ike_integrity",
        "ike_replayed",
        "ike_out_of_window",
        "ike_unexpected",
        "ike_unmatched",
        "cookies_sent",
        "half_open_full",
    ]
    .into_iter()
    .enumerate()
    {
        let line = format!(
            r#"isthmus_ipsec_drops_total{{tenant="acme",gateway="hub-gw",kind="{kind}"}} {}"#,
            n + 1
        );
        assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
    }
    let line =
        r#"isthmus_gateway_drops_total{tenant="acme",gateway="hub-gw",reason="bad_datagram"} 90"#;
    assert!(text.lines().any(|l| l == line), "{text}");
    // Without a credential: no gateway named.
    let anon = send(&app, req("GET", "/metrics", &Cred::None, None)).await;
    let anon = String::from_utf8(anon.body).unwrap();
    assert!(!anon.contains("isthmus_ipsec_drops_total{"), "{anon}");
}

#[tokio::test]
async fn an_authentication_failure_is_a_key_mismatch_and_the_ike_sa_is_not_established() {
    let app = test_app().await;
    let a = setup(&app).await;
    let report = json!({"format": "isthmus.status/v1", "version": 3, "gateways": [{"tenant": "acme", "name": "hub-gw",
        "connections": [{"name": "to-branch", "rx_bytes": 0, "tx_bytes": 0, "state": "down",
        "ipsec": {"ike_state": "none", "last_error": "AUTHENTICATION_FAILED", "last_error_unix": 1_790_000_000u64}}]}]});
    let r = send(
        &app,
        req(
            "POST",
            "/api/v1/worker/status?name=w1",
            &worker_cred(),
            Some(report),
        ),
    )
    .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let s = get_as(&app, &a, "/api/v1/tenants/acme/status").await.json();
    assert_eq!(s[0]["state"], "down");
    assert_eq!(s[0]["reason"], "key_mismatch");
    assert_eq!(s[0]["ipsec"]["last_error"], "AUTHENTICATION_FAILED");
    let text = String::from_utf8(get_as(&app, &a, "/metrics").await.body).unwrap();
    assert!(text.contains(
        r#"isthmus_ipsec_ike_sa_established{tenant="acme",gateway="hub-gw",connection="to-branch"} 0"#
    ));
}

#[tokio::test]
async fn ipsec_3_a_lifetime_out_of_range_is_a_422_naming_the_rule_and_the_field() {
    let app = test_app().await;
    let a = setup(&app).await;
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        json!({"name": "bad", "gateway": "hub-gw",
        "kind": {"type": "SiteToSite", "site": "branch"}, "protocol": "IPsec",
        "ipsec_policy": {"ike": {"cipher": "aes256gcm16", "prf": "prfsha384", "dh_group": "ecp384"},
        "esp_cipher": "aes256gcm16", "child_lifetime_secs": 30}}),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.json();
    let v = body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "IPSEC-3")
        .unwrap_or_else(|| panic!("no IPSEC-3 in {body}"))
        .clone();
    assert_eq!(
        v["path"],
        "tenants[acme].connections[bad].ipsec_policy.child_lifetime_secs"
    );
    // IPSEC-1: a VNet-to-VNet connection over IPsec is refused too.
    let r = post(
        &app,
        &a,
        "/api/v1/tenants/acme/connections",
        json!({"name": "v2v", "gateway": "hub-gw",
        "kind": {"type": "VnetToVnet", "remote_gateway": {"name": "hub-gw"}}, "protocol": "IPsec"}),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        rules_of(&r).contains(&"IPSEC-1".to_owned()),
        "{:?}",
        rules_of(&r)
    );
}

const YAML: &str = r#"
tenants:
  - name: acme
vnets:
  - tenant: acme
    name: hub
    region: westeurope
    address_space: [10.0.0.0/16]
    subnets:
      - name: GatewaySubnet
        prefix: 10.0.255.0/27
gateways:
  - tenant: acme
    name: hub-gw
    vnet: hub
    gateway_type: RouteBased
    sku: VpnGw1
sites:
  - tenant: acme
    name: branch
    device_host: 203.0.113.10
    address_prefixes: [192.168.1.0/24]
    ike_identity: vpn.branch.example
connections:
  - tenant: acme
    name: to-branch
    gateway: hub-gw
    kind:
      type: SiteToSite
      site: branch
    protocol: IPsec
    connection_mode: InitiatorOnly
    ipsec_policy:
      ike: {cipher: chacha20poly1305, prf: prfsha256, dh_group: curve25519}
      esp_cipher: chacha20poly1305
      child_lifetime_secs: LIFETIME
"#;

#[test]
fn yaml_apply_of_an_ipsec_connection_with_a_policy_round_trips_and_ipsec_3_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, YAML.replace("LIFETIME", "59")).unwrap();
    let out = isthmus(&data, &["apply", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("IPSEC-3"), "{}", text(&out));
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, YAML.replace("LIFETIME", "7200")).unwrap();
    let out = isthmus(&data, &["apply", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let export = isthmus(&data, &["export"]);
    assert!(export.status.success(), "{}", text(&export));
    let yaml = String::from_utf8_lossy(&export.stdout).to_string();
    for want in [
        "protocol: IPsec",
        "connection_mode: InitiatorOnly",
        "cipher: chacha20poly1305",
        "dh_group: curve25519",
        "child_lifetime_secs: 7200",
        "ike_identity: vpn.branch.example",
    ] {
        assert!(yaml.contains(want), "no {want:?} in:\n{yaml}");
    }
    // Re-applying the export changes nothing.
    let file = dir.path().join("export.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let again = isthmus(&data, &["apply", file.to_str().unwrap()]);
    assert!(text(&again).contains("no changes"), "{}", text(&again));
}

#[tokio::test]
async fn the_openapi_document_names_the_device_config_formats() {
    let app = test_app().await;
    let doc = send(&app, get("/api/v1/openapi.json")).await.json();
    let op = &doc["paths"]["/api/v1/tenants/{tenant}/connections/{name}/device-config"]["get"];
    let format = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "format")
        .unwrap_or_else(|| panic!("no format parameter in {op}"));
    let schema = format["schema"].to_string();
    let values = if let Some(r) = format["schema"]["$ref"].as_str() {
        doc["components"]["schemas"][r.rsplit('/').next().unwrap()].to_string()
    } else {
        schema
    };
    for v in ["wg-quick", "swanctl", "sheet"] {
        assert!(values.contains(&format!("\"{v}\"")), "{values}");
    }
}
