//! Point-to-site on a real network (root only; skipped with a message otherwise): the real
//! `isthmus` server and `isthmus-worker` in a gateway namespace, a real `wireguard-go` client
//! in a client namespace, enrolled with the real `isthmus-client enrol`, pings the VNet behind
//! the worker's TUN; then, with UDP blocked by iptables in the client's namespace, the same
//! client gets through over TLS on TCP 443 with `isthmus-client connect`; then, once its
//! certificate is revoked through the API, its traffic stops.
//!
//! The server listens on the gateway namespace's veth address; every packet stays on the
//! namespaces' veth pair, their loopbacks and the tunnel addresses.

use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::netns::{Lab, ping, run, skip_reason, wait_for};
use crate::server_lab::{Server, sibling_binary, to_wg_conf, wireguard_go_from_wg_quick};

fn missing_tool() -> Option<&'static str> {
    ["curl", "iptables"].into_iter().find(|t| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A root CA and a client certificate it issued: (root PEM, client PEM, client key PEM,
/// client DER).
fn certificates() -> (String, String, String, Vec<u8>) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name
        .push(DnType::CommonName, "Netns Test Root CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca.self_signed(&ca_key).expect("root");
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name
        .push(DnType::CommonName, "netns laptop");
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = p.signed_by(&key, &ca, &ca_key).expect("leaf");
    (
        ca.pem(),
        leaf.pem(),
        key.serialize_pem(),
        leaf.der().to_vec(),
    )
}

/// The value of the first `key = value` line of a wg-quick file.
fn wg_value<'a>(conf: &'a str, key: &str) -> &'a str {
    conf.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {key} in {conf}"))
}

#[test]
fn p2s_4_wireguard_go_client_enrolled_by_cli_over_udp_then_tcp_443_then_revoked() {
    const NAME: &str =
        "p2s_4_wireguard_go_client_enrolled_by_cli_over_udp_then_tcp_443_then_revoked";
    if let Some(why) = skip_reason() {
        println!("SKIPPED {NAME}: {why}");
        return;
    }
    if let Some(tool) = missing_tool() {
        println!("SKIPPED {NAME}: `{tool}` is missing (apt-get install curl iptables)");
        return;
    }
    let client_bin = sibling_binary("isthmus-client", "isthmus-client");
    let mut lab = Lab::new("t");
    let id = lab.id.clone();
    let gw_ns = lab.netns("gw");
    let cl_ns = lab.netns("cl");
    lab.link(
        (&gw_ns, &format!("vg{id}"), "10.252.0.1/30"),
        (&cl_ns, &format!("vc{id}"), "10.252.0.2/30"),
    );

    // The server, in the gateway's namespace, on its veth address (the client enrols there).
    let server = Server::start_with(
        &mut lab,
        &gw_ns,
        "10.252.0.1:18091",
        "10.252.0.1",
        "51830-51839",
        &["--p2s-tcp-port", "443"],
    );

    // The topology: VNet 10.200.1.0/24 behind a RouteBased gateway with point-to-site, pool
    // 172.16.50.0/24, and a root certificate made here.
    server.post("/tenants", &serde_json::json!({"name": "acme"}));
    server.post(
        "/tenants/acme/vnets",
        &serde_json::json!({"name": "hub", "region": "westeurope",
            "address_space": ["10.200.1.0/24"],
            "subnets": [{"name": "GatewaySubnet", "prefix": "10.200.1.224/27"}]}),
    );
    server.post(
        "/tenants/acme/gateways",
        &serde_json::json!({"name": "hub-gw", "vnet": "hub", "gateway_type": "RouteBased", "sku": "VpnGw1"}),
    );
    server.post(
        "/tenants/acme/point-to-site",
        &serde_json::json!({"gateway": "hub-gw", "address_pool": ["172.16.50.0/24"]}),
    );
    let (root_pem, cert_pem, key_pem, cert_der) = certificates();
    server.post(
        "/tenants/acme/point-to-site/hub-gw/root-certificates",
        &serde_json::json!({"name": "netns-root", "pem": root_pem}),
    );

    // The worker, driven by the server, with the TCP transport on 443.
    let tun = format!("it{id}");
    server.worker(
        &mut lab,
        &gw_ns,
        "w1",
        &tun,
        &["--tcp-listen", "10.252.0.1:443"],
    );
    // GW-10: the worker routes the pool onto its TUN and puts the gateway's address
    // (10.200.1.224/27 + 4) on it; the test adds neither.

    // Enrolment with the real CLI, from the client's namespace.
    let cert = lab.write("laptop.pem", &cert_pem);
    let key = lab.write("laptop.key", &key_pem);
    let conf_path = lab.dir.path().join("laptop.conf");
    let enrolled = Command::new("ip")
        .args(["netns", "exec", &cl_ns])
        .arg(&client_bin)
        .args(["enrol", "--server", &server.url, "--gateway", "acme/hub-gw"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&conf_path)
        .output()
        .expect("isthmus-client enrol runs");
    assert!(
        enrolled.status.success(),
        "enrol failed: {}{}\n{}",
        String::from_utf8_lossy(&enrolled.stdout),
        String::from_utf8_lossy(&enrolled.stderr),
        lab.logs()
    );
    let conf = std::fs::read_to_string(&conf_path).expect("the CLI wrote the configuration");
    assert!(conf.contains("Endpoint = 10.252.0.1:518"), "{conf}");
    assert!(conf.contains("# TcpEndpoint = 10.252.0.1:443"), "{conf}");
    let private = wg_value(&conf, "PrivateKey").to_owned();
    let address = wg_value(&conf, "Address").to_owned();
    let client_ip = address.split('/').next().expect("address").to_owned();
    assert_eq!(client_ip, "172.16.50.1", "{conf}");

    // The WireGuard client: wireguard-go configured from the enrolled file.
    let wg_if = format!("wc{id}");
    wireguard_go_from_wg_quick(
        &mut lab,
        &cl_ns,
        &wg_if,
        &conf,
        &private,
        Some("51950"),
        &[],
    );
    let over_udp = (0..30).any(|_| ping(&cl_ns, Some(&client_ip), "10.200.1.228"));
    assert!(over_udp, "client → VNet over UDP failed\n{}", lab.logs());

    // The client's network blocks UDP (everything but its own loopback).
    run(&[
        "ip", "netns", "exec", &cl_ns, "iptables", "-A", "OUTPUT", "-p", "udp", "!", "-o", "lo",
        "-j", "DROP",
    ]);
    assert!(
        !(0..3).any(|_| ping(&cl_ns, Some(&client_ip), "10.200.1.228")),
        "the firewall rule does not block the tunnel's UDP\n{}",
        lab.logs()
    );

    // `isthmus-client connect` relays over TLS on TCP 443 and writes the configuration whose
    // peer Endpoint is its local UDP port; wireguard-go takes that configuration.
    let tcp_conf_path = lab.dir.path().join("laptop-tcp.conf");
    let connect_log = std::fs::File::create(lab.dir.path().join("connect.log")).expect("log");
    let connect = Command::new("ip")
        .args(["netns", "exec", &cl_ns])
        .arg(&client_bin)
        .arg("connect")
        .arg("--config")
        .arg(&conf_path)
        .args(["--listen", "127.0.0.1:51821"])
        .arg("--write-config")
        .arg(&tcp_conf_path)
        .env("RUST_LOG", "info")
        .stdout(connect_log.try_clone().expect("log"))
        .stderr(connect_log)
        .spawn()
        .expect("isthmus-client connect starts");
    lab.children.push(connect);
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !tcp_conf_path.exists() {
        assert!(
            std::time::Instant::now() < until,
            "isthmus-client connect wrote no configuration (it writes it once connected)\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let tcp_conf = std::fs::read_to_string(&tcp_conf_path).expect("read");
    assert!(
        tcp_conf.contains("Endpoint = 127.0.0.1:51821"),
        "{tcp_conf}"
    );
    let tcp_wg = lab.write("laptop-tcp-wg.conf", &to_wg_conf(&tcp_conf, &private));
    run(&[
        "ip",
        "netns",
        "exec",
        &cl_ns,
        "wg",
        "setconf",
        &wg_if,
        &tcp_wg.display().to_string(),
    ]);
    let over_tcp = (0..30).any(|_| ping(&cl_ns, Some(&client_ip), "10.200.1.228"));
    assert!(
        over_tcp,
        "client → VNet over TCP 443 failed\n{}",
        lab.logs()
    );
    // The packets went through the worker's TCP transport, and UDP is still blocked.
    let worker_log =
        std::fs::read_to_string(lab.dir.path().join("worker-w1.log")).unwrap_or_default();
    assert!(
        worker_log.contains("TCP transport: client relayed"),
        "the worker relayed no TCP client\n{}",
        lab.logs()
    );
    let blocked = run(&[
        "ip", "netns", "exec", &cl_ns, "iptables", "-L", "OUTPUT", "-v", "-n", "-x",
    ]);
    assert!(
        blocked
            .lines()
            .any(|l| l.contains("DROP") && l.split_whitespace().next().is_some_and(|n| n != "0")),
        "the UDP rule dropped nothing: {blocked}"
    );

    // Revoked through the API: the worker drops the client within seconds.
    let thumbprint = isthmus_shared::enrol::thumbprint(&cert_der);
    server.post(
        "/tenants/acme/point-to-site/hub-gw/revoked-thumbprints",
        &serde_json::json!({"thumbprint": thumbprint}),
    );
    wait_for(
        "the revoked client's traffic to stop",
        Duration::from_secs(15),
        || !ping(&cl_ns, Some(&client_ip), "10.200.1.228"),
    );
    assert!(
        !(0..3).any(|_| ping(&cl_ns, Some(&client_ip), "10.200.1.228")),
        "a revoked client still reaches the VNet\n{}",
        lab.logs()
    );
}
