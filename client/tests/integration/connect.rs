//! P2S-4: how `isthmus-client connect` reads a client package and rewrites it.

use std::net::SocketAddr;

use isthmus_client::connect::{ConnectError, adjusted_config, parse_peers, plan, plan_udp};

const PACKAGE: &str = "[Interface]
PrivateKey = cHJpdmF0ZQ==
Address = 172.16.0.1/32

# gateway acme/hub-gw
[Peer]
PublicKey = HUB=
Endpoint = 203.0.113.7:51820
# TcpEndpoint = 203.0.113.7:443
AllowedIPs = 10.0.0.0/16
PersistentKeepalive = 25

# gateway acme/spoke-gw
[Peer]
PublicKey = SPOKE=
Endpoint = 203.0.113.7:51821
# TcpEndpoint = 203.0.113.7:443
AllowedIPs = 10.1.0.0/16
PersistentKeepalive = 25
";

#[test]
fn p2s_4_connect_reads_the_tcp_endpoint_and_gateway_port_from_the_package() {
    let peers = parse_peers(PACKAGE);
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[1].public_key, "SPOKE=");
    assert_eq!(peers[1].tcp_endpoint.as_deref(), Some("203.0.113.7:443"));

    let p = plan(PACKAGE, None, None).expect("plan");
    assert_eq!(p.peer.public_key, "HUB=");
    assert_eq!(p.tcp_endpoint, "203.0.113.7:443");
    assert_eq!(p.gateway_port, 51820);

    let p = plan(PACKAGE, Some("SPOKE="), Some("vpn.example.com:8443")).expect("plan");
    assert_eq!(p.gateway_port, 51821);
    assert_eq!(p.tcp_endpoint, "vpn.example.com:8443", "--tcp wins");
}

#[test]
fn p2s_4_connect_explains_what_is_missing() {
    let no_tcp = PACKAGE.replace("# TcpEndpoint = 203.0.113.7:443\n", "");
    let e = plan(&no_tcp, None, None).expect_err("no TCP endpoint");
    assert!(matches!(e, ConnectError::Config(_)));
    assert!(e.to_string().contains("--tcp HOST:PORT"), "{e}");
    assert!(plan(&no_tcp, None, Some("203.0.113.7:443")).is_ok());

    let e = plan(PACKAGE, Some("NOPE="), None).expect_err("unknown peer");
    assert!(e.to_string().contains("HUB=, SPOKE="), "{e}");

    let e = plan("[Interface]\nPrivateKey = x\n", None, None).expect_err("no peer");
    assert!(e.to_string().contains("[Peer]"), "{e}");

    let no_port = PACKAGE.replace("203.0.113.7:51820", "203.0.113.7");
    let e = plan(&no_port, None, None).expect_err("no port");
    assert!(e.to_string().contains("no port"), "{e}");
}

#[test]
fn p2s_4_write_config_points_one_peer_at_the_local_endpoint() {
    let local: SocketAddr = "127.0.0.1:51821".parse().expect("addr");
    let adjusted = adjusted_config(PACKAGE, "HUB=", local);
    let peers = parse_peers(&adjusted);
    assert_eq!(peers[0].endpoint.as_deref(), Some("127.0.0.1:51821"));
    assert_eq!(peers[0].udp_endpoint.as_deref(), Some("203.0.113.7:51820"));
    assert_eq!(
        peers[1].endpoint.as_deref(),
        Some("203.0.113.7:51821"),
        "the other peer is left alone"
    );
    assert!(adjusted.contains("Address = 172.16.0.1/32"));
    assert!(adjusted.contains("AllowedIPs = 10.0.0.0/16"));
    // The adjusted file still plans the same relay, and rewriting it again changes nothing.
    let p = plan(&adjusted, None, None).expect("plan");
    assert_eq!(
        (p.gateway_port, p.tcp_endpoint.as_str()),
        (51820, "203.0.113.7:443")
    );
    assert_eq!(adjusted_config(&adjusted, "HUB=", local), adjusted);
}

/// Issue 16: the package of a redundant gateway names its other instance.
const REDUNDANT: &str = "[Interface]
PrivateKey = cHJpdmF0ZQ==
Address = 172.16.0.1/32

# gateway acme/hub-gw
[Peer]
PublicKey = HUB=
Endpoint = 203.0.113.7:51820
# FailoverEndpoint = 203.0.113.8:51820
# TcpEndpoint = 203.0.113.7:443
# FailoverTcpEndpoint = 203.0.113.8:443
AllowedIPs = 10.0.0.0/16
PersistentKeepalive = 25
";

#[test]
fn connect_reads_both_instances_of_a_redundant_gateway_even_from_its_written_config() {
    let p = plan_udp(REDUNDANT, None).expect("plan");
    assert_eq!(p.instances, ["203.0.113.7:51820", "203.0.113.8:51820"]);
    let t = plan(REDUNDANT, None, None).expect("plan");
    assert_eq!(t.tcp_endpoints(), ["203.0.113.7:443", "203.0.113.8:443"]);
    assert_eq!(
        t.gateway_port, 51820,
        "both instances listen on the one port"
    );

    // `--write-config` points the stock client at the relay; the file still plans the same.
    let local: SocketAddr = "127.0.0.1:51821".parse().expect("addr");
    let adjusted = adjusted_config(REDUNDANT, "HUB=", local);
    assert!(
        adjusted.contains("\nEndpoint = 127.0.0.1:51821\n"),
        "{adjusted}"
    );
    assert!(adjusted.contains("\n# FailoverEndpoint = 203.0.113.8:51820\n"));
    assert_eq!(
        plan_udp(&adjusted, None).expect("plan").instances,
        p.instances
    );

    // A single-instance gateway: one instance, one TCP endpoint.
    assert_eq!(
        plan_udp(PACKAGE, Some("SPOKE=")).expect("plan").instances,
        ["203.0.113.7:51821"]
    );
    assert_eq!(
        plan(PACKAGE, None, None).expect("plan").tcp_endpoints(),
        ["203.0.113.7:443"]
    );
    let e = plan_udp(&PACKAGE.replace("Endpoint = 203.0.113.7:51820\n", ""), None)
        .expect_err("no endpoint");
    assert!(e.to_string().contains("no Endpoint"), "{e}");
}
