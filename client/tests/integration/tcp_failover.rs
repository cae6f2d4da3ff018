//! Issue 16: the TCP transport of `isthmus-client connect` moves to the other instance's TCP
//! endpoint when its connection drops or leaves a handshake initiation unanswered, against
//! two in-process TLS transports on loopback that speak the worker's protocol
//! (`isthmus_shared::tcp_transport`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use isthmus_client::connect::ClientRelay;
use isthmus_shared::tcp_transport::{FrameDecoder, HELLO_LEN, Hello, HelloReply, push_frame};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::failover::{initiation, response};

const BOUND: Duration = Duration::from_millis(300);
const GATEWAY_PORT: u16 = 51820;

/// A fake worker TCP transport: accepts the hello for [`GATEWAY_PORT`], counts the frames it
/// gets and answers each initiation with a response while `answer` is set.
struct Transport {
    addr: SocketAddr,
    answer: Arc<AtomicBool>,
    initiations: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Transport {
    async fn start(answer: bool) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(AtomicBool::new(answer));
        let initiations = Arc::new(AtomicU64::new(0));
        let (ans, inits) = (Arc::clone(&answer), Arc::clone(&initiations));
        // Connections live in the accept task's JoinSet: aborting the task closes them all.
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, ans, inits) =
                    (acceptor.clone(), Arc::clone(&ans), Arc::clone(&inits));
                conns.spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut hello = [0u8; HELLO_LEN];
                    if tls.read_exact(&mut hello).await.is_err() {
                        return;
                    }
                    let ok = Hello::decode(&hello).is_ok_and(|h| h.gateway_port == GATEWAY_PORT);
                    let reply = if ok {
                        HelloReply::Accepted
                    } else {
                        HelloReply::UnknownGateway
                    };
                    if tls.write_all(&[reply.to_byte()]).await.is_err() || !ok {
                        return;
                    }
                    let _ = tls.flush().await;
                    let mut frames = FrameDecoder::new();
                    loop {
                        let mut out = Vec::new();
                        while let Some(f) = frames.next_frame() {
                            if f.first() == Some(&1) {
                                inits.fetch_add(1, Ordering::SeqCst);
                                if ans.load(Ordering::SeqCst) {
                                    push_frame(&mut out, &response(f[147]));
                                }
                            }
                        }
                        if !out.is_empty() {
                            if tls.write_all(&out).await.is_err() {
                                return;
                            }
                            let _ = tls.flush().await;
                        }
                        match tls.read(frames.buffer()).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => frames.filled(n),
                        }
                    }
                });
            }
        });
        Self {
            addr,
            answer,
            initiations,
            task,
        }
    }
}

async fn wireguard() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

/// Sends initiation `tag` every 100 ms until the response to it comes back, for at most
/// `wait`; whether it did.
async fn handshake(wg: &UdpSocket, relay: SocketAddr, tag: u8, wait: Duration) -> bool {
    let until = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 2048];
    while tokio::time::Instant::now() < until {
        wg.send_to(&initiation(tag), relay).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, wg.recv_from(&mut buf)).await {
            if buf[..n] == response(tag)[..] {
                return true;
            }
        }
    }
    false
}

async fn relay_over(a: &Transport, b: &Transport) -> ClientRelay {
    ClientRelay::start_failover(
        "127.0.0.1:0".parse().unwrap(),
        &[a.addr.to_string(), b.addr.to_string()],
        GATEWAY_PORT,
        BOUND,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn tcp_transport_moves_to_the_other_instance_when_its_connection_drops() {
    let (a, b) = (Transport::start(true).await, Transport::start(true).await);
    let relay = relay_over(&a, &b).await;
    let wg = wireguard().await;
    assert!(handshake(&wg, relay.local_addr(), 1, Duration::from_secs(3)).await);
    assert_eq!(relay.current_endpoint(), a.addr.to_string());

    a.task.abort();
    assert!(
        handshake(&wg, relay.local_addr(), 2, Duration::from_secs(3)).await,
        "the other instance answers through the relay"
    );
    assert_eq!(relay.current_endpoint(), b.addr.to_string());
    assert!(b.initiations.load(Ordering::SeqCst) >= 1);
    let s = relay.stats();
    assert_eq!((s.connects, s.failovers), (2, 1), "{s:?}");
}

#[tokio::test]
async fn tcp_transport_moves_to_the_other_instance_when_an_initiation_stays_unanswered() {
    let (a, b) = (Transport::start(true).await, Transport::start(true).await);
    let relay = relay_over(&a, &b).await;
    let wg = wireguard().await;
    assert!(handshake(&wg, relay.local_addr(), 1, Duration::from_secs(3)).await);

    // a's worker stays up, its connection too, but its instance no longer answers (it is
    // the standby now; the other instance took over).
    a.answer.store(false, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    assert!(
        handshake(&wg, relay.local_addr(), 2, Duration::from_secs(3)).await,
        "the relay moved to b"
    );
    let took = started.elapsed();
    assert!(took >= BOUND, "moved after {took:?}, before the bound");
    // Well within WireGuard's own 5 s retransmission.
    assert!(
        took < BOUND + Duration::from_secs(2),
        "moved after {took:?}"
    );
    assert!(
        a.initiations.load(Ordering::SeqCst) >= 2,
        "a got the unanswered one"
    );
    assert_eq!(relay.current_endpoint(), b.addr.to_string());
    assert_eq!(relay.stats().failovers, 1);

    // While b answers, the relay stays.
    assert!(handshake(&wg, relay.local_addr(), 3, Duration::from_secs(3)).await);
    tokio::time::sleep(BOUND * 2).await;
    assert_eq!(relay.stats().failovers, 1);
}
