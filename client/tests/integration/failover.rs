//! Issue 16: `isthmus-client connect` fails over between a redundant gateway's two instances,
//! on loopback: two in-process UDP "instances" (or two TLS transports) of which one goes
//! silent while the other starts answering, a stock WireGuard client played by a bare socket.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use isthmus_client::udp_relay::UdpRelay;
use tokio::net::UdpSocket;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
const BOUND: Duration = Duration::from_millis(300);

pub fn initiation(tag: u8) -> Vec<u8> {
    let mut d = vec![0u8; 148];
    d[0] = 1;
    d[147] = tag;
    d
}

pub fn response(tag: u8) -> Vec<u8> {
    let mut d = vec![0u8; 92];
    d[0] = 2;
    d[91] = tag;
    d
}

/// A transport data message carrying `seq` (not a keepalive: 64 bytes).
pub fn data(seq: u32) -> Vec<u8> {
    let mut d = vec![0u8; 64];
    d[0] = 4;
    d[16..20].copy_from_slice(&seq.to_be_bytes());
    d
}

pub fn seq_of(d: &[u8]) -> Option<u32> {
    (d.len() == 64 && d[0] == 4).then(|| u32::from_be_bytes([d[16], d[17], d[18], d[19]]))
}

async fn socket() -> UdpSocket {
    UdpSocket::bind(SocketAddr::new(LOOPBACK.into(), 0))
        .await
        .unwrap()
}

/// The next datagram on `s` within `wait`.
async fn recv(s: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(wait, s.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some((buf, from))
}

async fn relay_of(a: &UdpSocket, b: &UdpSocket) -> UdpRelay {
    UdpRelay::start(
        SocketAddr::new(LOOPBACK.into(), 0),
        &[
            a.local_addr().unwrap().to_string(),
            b.local_addr().unwrap().to_string(),
        ],
        BOUND,
    )
    .await
    .unwrap()
}

/// The relay's outer socket as a loopback peer addresses it.
fn outer(relay: &UdpRelay) -> SocketAddr {
    SocketAddr::new(LOOPBACK.into(), relay.outer_addr().port())
}

#[tokio::test]
async fn udp_relay_follows_the_instance_that_sends_and_drops_unlisted_senders() {
    let (a, b, wg, stranger) = (
        socket().await,
        socket().await,
        socket().await,
        socket().await,
    );
    let relay = relay_of(&a, &b).await;
    let short = Duration::from_millis(150);

    // The client's initiation reaches the active instance and, to keep a NAT open, the other.
    wg.send_to(&initiation(1), relay.local_addr())
        .await
        .unwrap();
    let (d, from_relay) = recv(&a, Duration::from_secs(2)).await.expect("a gets it");
    assert_eq!(d, initiation(1));
    assert_eq!(
        recv(&b, Duration::from_secs(2)).await.map(|x| x.0),
        Some(initiation(1)),
        "the standby gets the initiation too"
    );
    a.send_to(&response(1), from_relay).await.unwrap();
    assert_eq!(
        recv(&wg, Duration::from_secs(2)).await.map(|x| x.0),
        Some(response(1))
    );
    assert_eq!(relay.current(), a.local_addr().unwrap());

    // Data goes to the current instance only.
    wg.send_to(&data(1), relay.local_addr()).await.unwrap();
    assert_eq!(
        recv(&a, Duration::from_secs(2)).await.map(|x| x.0),
        Some(data(1))
    );
    assert!(recv(&b, short).await.is_none(), "no data to the standby");

    // A datagram from an address that is no instance is dropped and changes nothing.
    stranger.send_to(&response(9), outer(&relay)).await.unwrap();
    assert!(
        recv(&wg, short).await.is_none(),
        "the stranger's datagram is dropped"
    );
    assert_eq!(relay.stats().dropped_unlisted, 1);
    assert_eq!(relay.current(), a.local_addr().unwrap());

    // Failover: a goes silent, b (the new active one) initiates its takeover handshake to
    // the client's address; it gets through and b is current at once.
    b.send_to(&initiation(2), from_relay).await.unwrap();
    assert_eq!(
        recv(&wg, Duration::from_secs(2)).await.map(|x| x.0),
        Some(initiation(2))
    );
    assert_eq!(relay.current(), b.local_addr().unwrap());
    wg.send_to(&response(2), relay.local_addr()).await.unwrap();
    wg.send_to(&data(2), relay.local_addr()).await.unwrap();
    assert_eq!(
        recv(&b, Duration::from_secs(2)).await.map(|x| x.0),
        Some(response(2))
    );
    assert_eq!(
        recv(&b, Duration::from_secs(2)).await.map(|x| x.0),
        Some(data(2))
    );
    assert!(
        recv(&a, short).await.is_none(),
        "nothing to the old instance"
    );
    let s = relay.stats();
    assert_eq!((s.switches, s.dropped_unlisted), (1, 1), "{s:?}");
}

#[tokio::test]
async fn udp_relay_switches_within_the_bound_when_an_initiation_stays_unanswered() {
    let (a, b, wg) = (socket().await, socket().await, socket().await);
    let relay = relay_of(&a, &b).await;
    let b_addr = b.local_addr().unwrap();
    wg.send_to(&initiation(1), relay.local_addr())
        .await
        .unwrap();
    let (_, from_relay) = recv(&a, Duration::from_secs(2)).await.expect("a gets it");
    a.send_to(&response(1), from_relay).await.unwrap();
    recv(&wg, Duration::from_secs(2))
        .await
        .expect("the response");
    // Drain the mirrored initiation at b.
    recv(&b, Duration::from_secs(2)).await.expect("mirrored");

    // a goes silent (its worker died); b took over but does not reach the client (a NAT
    // in the way), and as a standby it dropped the mirrored initiation. The client sends
    // data every 10 ms and one initiation at t0.
    let t0 = Instant::now();
    wg.send_to(&initiation(2), relay.local_addr())
        .await
        .unwrap();
    let mut sent: Vec<(u32, Instant)> = Vec::new();
    let collect = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some((d, _)) = recv(&b, Duration::from_secs(1)).await {
            if let Some(seq) = seq_of(&d) {
                got.push(seq);
            }
        }
        got
    });
    for seq in 0..150u32 {
        sent.push((seq, Instant::now()));
        wg.send_to(&data(seq), relay.local_addr()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = collect.await.unwrap();
    assert_eq!(relay.current(), b_addr, "switched");
    assert_eq!(relay.stats().switches, 1);
    // Not before the bound (with slack for a relay that lags on a loaded machine)...
    let first = *got
        .first()
        .expect("b gets the client's data after the switch");
    let first_sent = sent[first as usize].1;
    assert!(
        first_sent + Duration::from_millis(100) >= t0 + BOUND,
        "switched {:?} after the initiation, before the bound {BOUND:?}",
        first_sent - t0
    );
    // ...and every datagram sent after the bound (plus slack) reaches b, none lost.
    let slack = Duration::from_millis(250);
    let due: Vec<u32> = sent
        .iter()
        .filter(|(_, t)| *t >= t0 + BOUND + slack)
        .map(|(s, _)| *s)
        .collect();
    assert!(due.len() > 30, "the test sent too little after the switch");
    for s in &due {
        assert!(
            got.contains(s),
            "datagram {s} lost after the switch: b got {got:?}"
        );
    }
}
