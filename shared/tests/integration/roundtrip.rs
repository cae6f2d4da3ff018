//! Round trips of the two formats written and read by different programs: the wg-quick
//! configuration (written by [`DeviceConfig::to_wg_quick`], read back by `isthmus-client
//! connect` through [`parse_wg_quick`]) and the P2S-4 TCP transport's frames (written by
//! [`push_frame`], read by [`FrameDecoder`] on both ends).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use isthmus_shared::desired::Secret;
use isthmus_shared::device::{DeviceConfig, DevicePeer, WgQuick, WgQuickPeer, parse_wg_quick};
use isthmus_shared::model::QualifiedName;
use isthmus_shared::tcp_transport::{FrameDecoder, MAX_FRAME, push_frame};
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn net() -> impl Strategy<Value = IpNet> {
    (ip(), any::<u8>()).prop_map(|(a, len)| {
        let max = if a.is_ipv4() { 33 } else { 129 };
        IpNet::new(a, len % max).unwrap_or_else(|_| IpNet::from(a))
    })
}

fn endpoint() -> impl Strategy<Value = String> {
    (ip(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a, p).to_string())
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/]{43}="
}

fn peer() -> impl Strategy<Value = DevicePeer> {
    (
        (
            "[a-z][a-z0-9-]{0,10}",
            "[a-z][a-z0-9-]{0,10}",
            proptest::option::of(key()),
            proptest::option::of(key()),
        ),
        (
            proptest::option::of(endpoint()),
            proptest::option::of(endpoint()),
            proptest::collection::vec(net(), 0..4),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u32>()),
        ),
        // Issue 16: a redundant gateway's other instance, over UDP and TCP.
        (
            proptest::option::of(endpoint()),
            proptest::option::of(endpoint()),
        ),
    )
        .prop_map(
            |(
                (tenant, name, public_key, psk),
                (ep, tcp, allowed_ips, keepalive, idle),
                (failover, failover_tcp),
            )| {
                DevicePeer {
                    gateway: QualifiedName::new(tenant, name),
                    public_key,
                    preshared_key: psk.map(Secret::new),
                    endpoint: ep,
                    tcp_endpoint: tcp,
                    failover_endpoint: failover,
                    failover_tcp_endpoint: failover_tcp,
                    allowed_ips,
                    persistent_keepalive_secs: keepalive,
                    selectors: Vec::new(),
                    idle_timeout_secs: idle,
                }
            },
        )
}

fn config() -> impl Strategy<Value = DeviceConfig> {
    (
        proptest::collection::vec(net(), 0..3),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(ip(), 0..3),
        any::<u16>(),
        proptest::collection::vec(peer(), 0..4),
    )
        .prop_map(|(addresses, listen_port, dns, mtu, peers)| DeviceConfig {
            addresses,
            listen_port,
            dns,
            mtu,
            peers,
            active_active: None,
        })
}

/// What the wg-quick format carries of `c`.
fn expected(c: &DeviceConfig) -> WgQuick {
    WgQuick {
        addresses: c.addresses.clone(),
        listen_port: c.listen_port,
        dns: c.dns.clone(),
        mtu: Some(c.mtu),
        peers: c
            .peers
            .iter()
            .map(|p| WgQuickPeer {
                public_key: p
                    .public_key
                    .clone()
                    .unwrap_or_else(|| "<pending: gateway not created yet>".to_owned()),
                preshared_key: p.preshared_key.as_ref().map(|k| k.expose().to_owned()),
                endpoint: p.endpoint.clone(),
                tcp_endpoint: p.tcp_endpoint.clone(),
                udp_endpoint: None,
                failover_endpoint: p.failover_endpoint.clone(),
                failover_tcp_endpoint: p.failover_tcp_endpoint.clone(),
                allowed_ips: p.allowed_ips.clone(),
                persistent_keepalive_secs: p.persistent_keepalive_secs,
            })
            .collect(),
    }
}

proptest! {
    #[test]
    fn p2s_5_wg_quick_written_then_read_is_the_same_config(c in config()) {
        let text = c.to_wg_quick();
        prop_assert_eq!(parse_wg_quick(&text), expected(&c), "{}", text);
    }

    #[test]
    fn p2s_4_frames_written_then_read_in_any_chunks_are_the_same(
        payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..3000), 0..8),
        big in any::<bool>(),
        cuts in proptest::collection::vec(1usize..5000, 1..20),
    ) {
        let mut payloads = payloads;
        if big {
            payloads.push(vec![7; MAX_FRAME]);
        }
        let mut wire = Vec::new();
        for p in &payloads {
            prop_assert!(push_frame(&mut wire, p));
        }
        prop_assert!(!push_frame(&mut wire, &vec![0; MAX_FRAME + 1]), "too big for a frame");
        let mut d = FrameDecoder::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < wire.len() {
            let room = d.buffer();
            let n = (*cut.next().unwrap_or(&1)).min(room.len()).min(wire.len() - at);
            room[..n].copy_from_slice(&wire[at..at + n]);
            d.filled(n);
            at += n;
            while let Some(f) = d.next_frame() {
                got.push(f.to_vec());
            }
        }
        prop_assert!(!d.is_partial());
        prop_assert_eq!(got, payloads);
    }
}

/// Issue 16: a redundant gateway (a secondary endpoint set by the server) puts its other
/// instance in every client package, beside the active one, over UDP and TCP; a site device's
/// configuration and a single-instance gateway's package name only the one endpoint.
#[test]
fn p2s_client_package_of_a_redundant_gateway_lists_both_instances_and_reads_back() {
    use crate::common::*;
    use isthmus_shared::device::{p2s_client_config, site_device_config};
    let topology = |secondary: Option<&str>| {
        build(
            crate::rules::branch(hub())
                .shared_key("hub-branch", "abc123")
                .edit_gateway("hub-gw", |g| {
                    g.public_key = Some(wgkey(7));
                    g.public_endpoint = Some("198.51.100.10:51820".parse().unwrap());
                    g.secondary_endpoint = secondary.map(|s| s.parse().unwrap());
                })
                .p2s("hub-gw", &["172.16.0.0/24"])
                .p2s_client("hub-gw", "laptop", &wgkey(1), "172.16.0.2"),
        )
    };
    let gw = QualifiedName::new("acme", "hub-gw");
    let redundant = topology(Some("198.51.100.20:51820"));
    let text = p2s_client_config(&redundant, &gw, "laptop")
        .unwrap()
        .with_tcp_port(443)
        .to_wg_quick();
    assert!(
        text.contains("\nEndpoint = 198.51.100.10:51820\n"),
        "{text}"
    );
    assert!(
        text.contains("\n# FailoverEndpoint = 198.51.100.20:51820\n"),
        "{text}"
    );
    assert!(
        text.contains("\n# TcpEndpoint = 198.51.100.10:443\n"),
        "{text}"
    );
    assert!(
        text.contains("\n# FailoverTcpEndpoint = 198.51.100.20:443\n"),
        "{text}"
    );
    let peer = &parse_wg_quick(&text).peers[0];
    assert_eq!(
        peer.instance_endpoints(),
        ["198.51.100.10:51820", "198.51.100.20:51820"]
    );
    assert_eq!(
        peer.failover_tcp_endpoint.as_deref(),
        Some("198.51.100.20:443")
    );

    let site = site_device_config(&redundant, &QualifiedName::new("acme", "hub-branch"))
        .unwrap()
        .to_wg_quick();
    assert!(
        !site.contains("Failover"),
        "a site device needs nothing new:\n{site}"
    );

    // GW-10: an unreachable other instance is warned about like the active one.
    let loopback = p2s_client_config(&topology(Some("127.0.0.1:51820")), &gw, "laptop")
        .unwrap()
        .to_wg_quick();
    assert!(
        loopback
            .lines()
            .any(|l| l.starts_with("# WARNING:") && l.contains("127.0.0.1:51820")),
        "{loopback}"
    );

    let single = p2s_client_config(&topology(None), &gw, "laptop")
        .unwrap()
        .with_tcp_port(443)
        .to_wg_quick();
    assert!(!single.contains("Failover"), "{single}");
    assert_eq!(
        parse_wg_quick(&single).peers[0].instance_endpoints(),
        ["198.51.100.10:51820"]
    );
}
