//! Issue 17 (Bad input): every IKE and ESP message that is malformed, truncated, from an
//! unknown SPI, out of turn or with a bad integrity check is dropped and counted by kind in
//! the gateway's report (`GatewayDrops::ipsec`), and the tunnel goes on; and the status names
//! the device's address the tunnel really uses (its 4500 after the NAT-T float).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use isthmus_shared::desired::{IpsecDrops, SaState, TunnelState};
use isthmus_shared::model::{GatewayType, IpsecConnectionMode};
use isthmus_worker::core::Core;
use isthmus_worker::core::ike::wire::{ExchangeType, Header};

use crate::core_ipsec::{
    A, A_PORT, B, B_PORT, Pair, a_addr, desired, params, pkt, route_based, up,
};
use crate::harness::drain_tun;

fn drops(core: &Core, p: &Pair) -> (IpsecDrops, u64) {
    let d = core.status(p.now, SystemTime::now()).gateways[0]
        .drops
        .expect("drops");
    (d.ipsec.unwrap_or_default(), d.bad_datagrams)
}

/// The IKE requests A sent B (after the non-ESP marker), in order.
fn a_requests(p: &Pair) -> Vec<Vec<u8>> {
    p.a_to_b
        .iter()
        .filter_map(|d| {
            let msg = d.strip_prefix(&[0u8, 0, 0, 0][..])?;
            let (h, _, _) = Header::peek(msg).ok()?;
            (!h.flags.response).then(|| msg.to_vec())
        })
        .collect()
}

fn marked(msg: &[u8]) -> Vec<u8> {
    [&[0u8, 0, 0, 0][..], msg].concat()
}

fn with_message_id(msg: &[u8], id: u32) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[20..24].copy_from_slice(&id.to_be_bytes());
    m
}

#[test]
fn ipsec_each_kind_of_bad_ike_and_esp_datagram_moves_its_own_drop_counter_by_one() {
    let mut p = Pair::initiator_and_responder("k", "k");
    p.run(Duration::from_secs(1));
    up(&p);
    // A's dead peer detection (30 s of silence) moves B's expected message ID past IKE_AUTH's.
    p.run(Duration::from_secs(31));
    up(&p);
    let reqs = a_requests(&p);
    assert!(
        reqs.len() >= 2,
        "IKE_AUTH and a DPD request: {}",
        reqs.len()
    );
    let (auth, dpd) = (reqs[0].clone(), reqs[reqs.len() - 1].clone());
    let (h, _, _) = Header::peek(&dpd).expect("header");
    let next_id = h.message_id + 1;
    let before = p.b.status(p.now, SystemTime::now()).gateways[0]
        .drops
        .expect("drops");
    assert_eq!(before.ipsec, None, "nothing dropped yet: no IPsec counts");
    let x = pkt(true, 1, 200);
    assert_eq!(p.a_to_b_vnet(&x), vec![x.clone()]);
    let esp = p.a_to_b.last().expect("the ESP datagram").clone();

    let mut tampered = marked(&with_message_id(&dpd, next_id));
    let l = tampered.len();
    tampered[l - 1] ^= 1;
    let mut unknown_spi = dpd.clone();
    unknown_spi[8..16].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
    let mut stray = unknown_spi.clone();
    stray[..8].copy_from_slice(&0x0fed_cba9_8765_4321u64.to_be_bytes());
    let mut esp_tampered = esp.clone();
    let l = esp.len();
    esp_tampered[l - 1] ^= 1;
    // A sequence number not seen yet, so the integrity check is what fails.
    esp_tampered[4..8].copy_from_slice(&500u32.to_be_bytes());
    let mut esp_unknown = esp.clone();
    esp_unknown[..4].copy_from_slice(&0x7777_7777u32.to_be_bytes());
    let stranger: SocketAddr = "203.0.113.9:4500".parse().expect("addr");

    type Field = fn(&IpsecDrops) -> u64;
    let cases: Vec<(&str, SocketAddr, Vec<u8>, Field)> = vec![
        ("truncated IKE", a_addr(), marked(&dpd[..40]), |d| {
            d.ike_malformed
        }),
        (
            "IKE shorter than its header",
            a_addr(),
            marked(&dpd[..12]),
            |d| d.ike_malformed,
        ),
        ("unknown IKE SPI", a_addr(), marked(&unknown_spi), |d| {
            d.ike_unknown_spi
        }),
        ("tampered Encrypted payload", a_addr(), tampered, |d| {
            d.ike_integrity
        }),
        ("replayed IKE request", a_addr(), marked(&auth), |d| {
            d.ike_replayed
        }),
        (
            "IKE request ahead of the window",
            a_addr(),
            marked(&with_message_id(&dpd, next_id + 5)),
            |d| d.ike_out_of_window,
        ),
        ("IKE of no connection", stranger, marked(&stray), |d| {
            d.ike_unmatched
        }),
        ("replayed ESP", a_addr(), esp.clone(), |d| d.esp_replay),
        ("tampered ESP", a_addr(), esp_tampered, |d| d.esp_integrity),
        ("ESP of an unknown SPI", a_addr(), esp_unknown, |d| {
            d.esp_unknown_spi
        }),
        ("truncated ESP", a_addr(), esp[..12].to_vec(), |d| {
            d.esp_malformed
        }),
    ];
    for (n, (what, src, datagram, field)) in cases.into_iter().enumerate() {
        let (was, bad_was) = drops(&p.b, &p);
        p.b.handle_network(B_PORT, src, &datagram, p.now);
        p.shuttle();
        assert!(drain_tun(&mut p.b).is_empty(), "{what}: nothing forwarded");
        let (now, bad_now) = drops(&p.b, &p);
        assert_eq!(field(&now), field(&was) + 1, "{what}: its counter moved");
        let moved: u64 = now.kinds().iter().map(|(_, v)| v).sum::<u64>()
            - was.kinds().iter().map(|(_, v)| v).sum::<u64>();
        assert_eq!(moved, 1, "{what}: only its counter moved: {now:?}");
        assert_eq!(bad_now, bad_was + 1, "{what}: one more bad datagram");
        // The tunnel is unaffected: it carries traffic both ways.
        let y = pkt(true, 10 + n as u16, 200);
        assert_eq!(p.a_to_b_vnet(&y), vec![y], "{what}: A to B");
        let z = pkt(false, 40 + n as u16, 200);
        assert_eq!(p.b_to_a_vnet(&z), vec![z], "{what}: B to A");
        up(&p);
    }
    let (d, bad) = drops(&p.b, &p);
    assert_eq!(d.dropped(), 11);
    assert_eq!(bad, 11);
    assert_eq!(p.a.counters().total(), 0, "A dropped nothing");
}

/// Issue 17: an IPsec connection's status `endpoint` is the device's address:port the tunnel
/// uses: for a device at port 500, its 4500 once NAT-T floated (RFC 7296 2.23); for a device
/// behind a NAT that initiates, the address and port its messages come from. Before an SA is
/// up it is the configured IKE endpoint.
#[test]
fn ipsec_status_endpoint_is_the_devices_address_the_tunnel_really_uses() {
    let mut da = route_based(&A, &B, IpsecConnectionMode::InitiatorOnly);
    // A's device (B) answers IKE on port 500 (and 4500 after the float).
    da.gateways[0].peers[0].endpoint = Some("198.51.100.2:500".to_owned());
    let db = route_based(&B, &A, IpsecConnectionMode::ResponderOnly);
    let mut p = Pair::new(&da, &db);
    let endpoint = |core: &Core, p: &Pair| {
        let s = core.status(p.now, SystemTime::now());
        let c = &s.gateways[0].connections[0];
        (c.state, c.endpoint.clone())
    };
    assert_eq!(
        endpoint(&p.a, &p).1.as_deref(),
        Some("198.51.100.2:500"),
        "the IKE endpoint before any SA"
    );
    // The wire: B sits behind port 500/4500 of 198.51.100.2; A behind a NAT that maps its
    // port to 40000.
    let a_natted: SocketAddr = "198.51.100.1:40000".parse().expect("addr");
    let mut dst_ports = Vec::new();
    for _ in 0..8 {
        p.now += Duration::from_millis(250);
        p.a.handle_timeout(p.now);
        p.b.handle_timeout(p.now);
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = p.a.poll_transmit() {
                moved = true;
                dst_ports.push(t.dst.port());
                assert!(matches!(t.dst.port(), 500 | 4500), "{}", t.dst);
                p.b.handle_network(B_PORT, a_natted, &t.payload, p.now);
            }
            while let Some(t) = p.b.poll_transmit() {
                moved = true;
                assert_eq!(t.dst, a_natted, "B answers where A's messages come from");
                // Only the IKE_SA_INIT answer goes unmarked, from the IKE port.
                let sa_init = Header::peek(&t.payload)
                    .is_ok_and(|(h, _, _)| h.exchange == ExchangeType::IKE_SA_INIT);
                let from = if sa_init {
                    "198.51.100.2:500"
                } else {
                    "198.51.100.2:4500"
                };
                p.a.handle_network(A_PORT, from.parse().expect("addr"), &t.payload, p.now);
            }
            if !moved {
                break;
            }
        }
    }
    assert_eq!(dst_ports[0], 500, "IKE_SA_INIT to the IKE port");
    assert!(dst_ports[1..].iter().all(|p| *p == 4500), "{dst_ports:?}");
    assert_eq!(
        endpoint(&p.a, &p),
        (TunnelState::Up, Some("198.51.100.2:4500".to_owned())),
        "A: the device's floated port"
    );
    assert_eq!(
        endpoint(&p.b, &p),
        (TunnelState::Up, Some(a_natted.to_string())),
        "B: where the device's messages come from, not its configured address"
    );
}

/// Style (logs): an IPsec log line names the tenant, the gateway and the connection it is
/// about, and never the pre-shared key. A wrong PSK on one side, then the right one, then a
/// silenced peer: the refusals, the establishment and the DPD are all logged in the tunnel's
/// span. The scenario runs in a process of its own (this test binary, re-run on this one
/// test): tracing caches which log sites are enabled process-wide, and tests logging on other
/// threads at the same time could leave a site disabled for this test's subscriber.
#[test]
fn ipsec_log_lines_name_the_tenant_gateway_and_connection_and_never_the_psk() {
    const NAME: &str = "core_ipsec_drops::ipsec_log_lines_name_the_tenant_gateway_and_connection_and_never_the_psk";
    if std::env::var_os("ISTHMUS_IPSEC_LOG_SCENARIO").is_some() {
        log_scenario();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
        .env("ISTHMUS_IPSEC_LOG_SCENARIO", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the scenario failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("isthmus_worker::"))
        .collect();
    for want in [
        "IKE SA refused",
        "IKE_AUTH refused: AUTHENTICATION_FAILED",
        "IKE SA established",
        "IKE peer dead",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(want)),
            "no {want:?} logged:\n{text}"
        );
    }
    for l in &lines {
        let a = l.contains("tenant=t gateway=a connection=a-b");
        let b = l.contains("tenant=t gateway=b connection=b-a");
        assert!(
            a || b,
            "a line without its tenant, gateway and connection: {l}"
        );
    }
    for secret in ["RightKey1", "WrongKey2"] {
        assert!(!text.contains(secret), "the PSK {secret} was logged");
    }
}

/// The child process's part: every line at TRACE to standard output.
fn log_scenario() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(std::io::stdout)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let da = desired(
            &A,
            &B,
            "RightKey1",
            params(IpsecConnectionMode::InitiatorOnly),
            GatewayType::RouteBased,
        );
        let mut p = Pair::new(
            &da,
            &desired(
                &B,
                &A,
                "WrongKey2",
                params(IpsecConnectionMode::ResponderOnly),
                GatewayType::RouteBased,
            ),
        );
        p.run(Duration::from_secs(2));
        let mut db = desired(
            &B,
            &A,
            "RightKey1",
            params(IpsecConnectionMode::ResponderOnly),
            GatewayType::RouteBased,
        );
        db.version = 2;
        p.b.apply(&db, p.now);
        p.run(Duration::from_secs(12));
        up(&p);
        p.b_silent = true;
        p.run(Duration::from_secs(200));
    });
}

/// A device that restarts (its state lost, no Delete sent) and initiates again: the gateway
/// keeps the new IKE SA, and the CHILD SA of the old one is listed as deleting (not as a
/// second established one) until the gateway's unanswered Delete gives up; then it is gone.
#[test]
fn ipsec_a_restarted_device_s_old_child_sa_is_listed_as_deleting_until_it_goes() {
    let da = route_based(&A, &B, IpsecConnectionMode::ResponderOnly);
    let db = route_based(&B, &A, IpsecConnectionMode::InitiatorOnly);
    let mut p = Pair::new(&da, &db);
    p.run(Duration::from_secs(1));
    up(&p);
    let (_, _, before) = p.a_status();
    // B restarts: a new core, nothing of the old SAs.
    let mut b = Core::new();
    b.set_entropy(Box::new(crate::ike_exchange::Seeded::new(99)));
    assert_eq!(b.apply(&db, p.now), vec![]);
    p.b = b;
    p.run(Duration::from_secs(2));
    let (state, _, after) = p.a_status();
    assert_eq!(state, TunnelState::Up, "{after:?}");
    assert_ne!(after.ike_spis, before.ike_spis, "the device's new IKE SA");
    let states: Vec<SaState> = after.children.iter().map(|c| c.state).collect();
    assert_eq!(
        states,
        [SaState::Deleting, SaState::Established],
        "{after:?}"
    );
    assert_eq!(
        after.children[0].inbound_spi,
        before.children[0].inbound_spi
    );
    let x = pkt(true, 1, 100);
    assert_eq!(p.a_to_b_vnet(&x), vec![x]);
    p.run(Duration::from_secs(70));
    let (_, _, later) = p.a_status();
    let states: Vec<SaState> = later.children.iter().map(|c| c.state).collect();
    assert_eq!(states, [SaState::Established], "{later:?}");
}
