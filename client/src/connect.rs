//! P2S-4: `isthmus-client connect`, the client side of the TCP transport for networks that
//! block UDP. It offers a local UDP endpoint to a standard WireGuard client (wireguard-go,
//! wg-quick, the apps) and carries its datagrams over TLS on TCP to the worker's relay, as
//! length-prefixed frames ([`isthmus_shared::tcp_transport`]). The WireGuard client's peer
//! `Endpoint` must point at the local address: `--write-config` writes such a copy of the
//! configuration.
//!
//! Issue 16: for a redundant gateway the package names the other instance's TCP transport
//! (`# FailoverTcpEndpoint`); when the connection drops, or the gateway leaves a handshake
//! initiation unanswered for [`crate::failover::DEFAULT_FAILOVER_AFTER`], the relay moves to
//! the other endpoint (reconnections use [`isthmus_shared::backoff`]). `connect --udp` is
//! [`crate::udp_relay`].
//!
//! The worker's certificate is not verified, by design: TLS is there to pass firewalls, while
//! WireGuard authenticates the gateway by its public key and encrypts end to end, so a man in
//! the middle sees only WireGuard messages it can neither read nor forge.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use crate::plan::{Plan, UdpPlan, adjusted_config, parse_peers, plan, plan_udp};
use isthmus_shared::backoff::Backoff;
pub use isthmus_shared::device::{UDP_ENDPOINT_KEY, WgQuickPeer as ConfigPeer};
use isthmus_shared::tcp_transport::{
    FrameDecoder, HELLO_LEN, Hello, HelloReply, MAX_FRAME, is_wireguard_message, push_frame,
};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The local UDP address offered to the WireGuard client by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:51821";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the transport cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Config(String),
    #[error("cannot resolve the TCP endpoint {endpoint}: {detail}")]
    Resolve { endpoint: String, detail: String },
    #[error(
        "cannot reach the gateway's TCP transport at {endpoint}: {detail}; check the address and that the worker runs with --tcp-listen"
    )]
    Tcp { endpoint: String, detail: String },
    #[error(
        "TLS with {endpoint} failed: {detail}; is it the worker's TCP transport (isthmus-worker --tcp-listen)?"
    )]
    Tls { endpoint: String, detail: String },
    #[error(
        "the worker at {endpoint} has no point-to-site gateway on UDP port {port}: check the configuration's Endpoint, or enrol again"
    )]
    UnknownGateway { endpoint: String, port: u16 },
    #[error(
        "the worker at {endpoint} did not answer the transport's hello: it is not an Isthmus TCP transport, or a proxy closed the stream"
    )]
    NoReply { endpoint: String },
    #[error("cannot open the local UDP endpoint {addr}: {source}; choose another with --listen")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Accepts any server certificate but checks the handshake signatures; see the module doc.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> Result<TlsConnector, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Config(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(endpoint: &str) -> &str {
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Opens a TLS connection to the transport at `endpoint`, without the hello.
pub async fn open_tls(endpoint: &str) -> Result<TlsStream<TcpStream>, ConnectError> {
    let tcp_err = |detail: String| ConnectError::Tcp {
        endpoint: endpoint.to_owned(),
        detail,
    };
    let tls_err = |detail: String| ConnectError::Tls {
        endpoint: endpoint.to_owned(),
        detail,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(endpoint)
        .await
        .map_err(|e| ConnectError::Resolve {
            endpoint: endpoint.to_owned(),
            detail: e.to_string(),
        })?
        .collect();
    let addr = addrs
        .first()
        .copied()
        .ok_or_else(|| ConnectError::Resolve {
            endpoint: endpoint.to_owned(),
            detail: "no address".to_owned(),
        })?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| tcp_err("timed out".to_owned()))?
        .map_err(|e| tcp_err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host_of(endpoint).to_owned())
        .map_err(|e| tls_err(format!("{} is not a host name: {e}", host_of(endpoint))))?;
    tokio::time::timeout(CONNECT_TIMEOUT, connector()?.connect(name, tcp))
        .await
        .map_err(|_| tls_err("timed out".to_owned()))?
        .map_err(|e| tls_err(e.to_string()))
}

/// Opens a TLS connection to the transport at `endpoint` and asks for the gateway on UDP
/// `gateway_port`.
pub async fn open(endpoint: &str, gateway_port: u16) -> Result<TlsStream<TcpStream>, ConnectError> {
    let tls_err = |detail: String| ConnectError::Tls {
        endpoint: endpoint.to_owned(),
        detail,
    };
    let mut tls = open_tls(endpoint).await?;
    let hello = Hello { gateway_port }.encode();
    debug_assert_eq!(hello.len(), HELLO_LEN);
    tls.write_all(&hello)
        .await
        .map_err(|e| tls_err(e.to_string()))?;
    tls.flush().await.map_err(|e| tls_err(e.to_string()))?;
    let reply = tokio::time::timeout(CONNECT_TIMEOUT, tls.read_u8())
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(HelloReply::from_byte);
    match reply {
        Some(HelloReply::Accepted) => Ok(tls),
        Some(HelloReply::UnknownGateway) => Err(ConnectError::UnknownGateway {
            endpoint: endpoint.to_owned(),
            port: gateway_port,
        }),
        None => Err(ConnectError::NoReply {
            endpoint: endpoint.to_owned(),
        }),
    }
}

/// Counters of a running transport (monotonic).
#[derive(Debug, Default)]
struct Counters {
    connects: AtomicU64,
    failovers: AtomicU64,
    frames_to_gateway: AtomicU64,
    frames_to_wireguard: AtomicU64,
    dropped_not_wireguard: AtomicU64,
    dropped_disconnected: AtomicU64,
}

/// A snapshot of the client transport's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// TLS connections established (the first one and every reconnection).
    pub connects: u64,
    /// Issue 16: moves to the other TCP endpoint of a redundant gateway (the connection
    /// dropped, or a handshake initiation stayed unanswered).
    pub failovers: u64,
    pub frames_to_gateway: u64,
    pub frames_to_wireguard: u64,
    /// Datagrams or frames not shaped like WireGuard messages, either way.
    pub dropped_not_wireguard: u64,
    /// Frames from the gateway before the local WireGuard client sent anything, or datagrams
    /// while the TCP connection was down (WireGuard retransmits).
    pub dropped_disconnected: u64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A running client transport.
pub struct ClientRelay {
    local: SocketAddr,
    counters: Arc<Counters>,
    current: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ClientRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClientRelay {
    /// Opens the local UDP endpoint and the first TLS connection (so a wrong endpoint or
    /// gateway is reported at once), then relays in the background, reconnecting when the
    /// connection drops.
    pub async fn start(
        listen: SocketAddr,
        tcp_endpoint: &str,
        gateway_port: u16,
    ) -> Result<Self, ConnectError> {
        Self::start_failover(
            listen,
            &[tcp_endpoint.to_owned()],
            gateway_port,
            crate::failover::DEFAULT_FAILOVER_AFTER,
        )
        .await
    }

    /// Issue 16: as [`ClientRelay::start`], over the TCP endpoints of a redundant gateway's
    /// instances (the active one's first). The first that accepts carries the traffic; when
    /// its connection drops, or it leaves a handshake initiation unanswered for
    /// `failover_after`, the relay moves to the next one.
    pub async fn start_failover(
        listen: SocketAddr,
        tcp_endpoints: &[String],
        gateway_port: u16,
        failover_after: Duration,
    ) -> Result<Self, ConnectError> {
        let udp = UdpSocket::bind(listen)
            .await
            .map_err(|source| ConnectError::Listen {
                addr: listen,
                source,
            })?;
        let local = udp.local_addr().map_err(|source| ConnectError::Listen {
            addr: listen,
            source,
        })?;
        let mut first_error = None;
        let mut opened = None;
        for (i, e) in tcp_endpoints.iter().enumerate() {
            match open(e, gateway_port).await {
                Ok(s) => {
                    opened = Some((i, s));
                    break;
                }
                Err(err) => {
                    tracing::warn!(endpoint = %e, error = %err, "TCP transport unreachable");
                    first_error.get_or_insert(err);
                }
            }
        }
        let Some((at, first)) = opened else {
            return Err(first_error.unwrap_or_else(|| {
                ConnectError::Config("no TCP endpoint to connect to".to_owned())
            }));
        };
        let counters = Arc::new(Counters::default());
        bump(&counters.connects);
        let current = Arc::new(Mutex::new(tcp_endpoints[at].clone()));
        let r = Relay {
            udp: Arc::new(udp),
            endpoints: tcp_endpoints.to_vec(),
            gateway_port,
            failover_after,
            c: Arc::clone(&counters),
            current: Arc::clone(&current),
        };
        let task = tokio::spawn(async move { r.run(at, first).await });
        Ok(Self {
            local,
            counters,
            current,
            task,
        })
    }

    /// The local UDP endpoint the WireGuard client's peer `Endpoint` must name.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The TCP endpoint the relay uses (or tries) now.
    pub fn current_endpoint(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            connects: g(&c.connects),
            failovers: g(&c.failovers),
            frames_to_gateway: g(&c.frames_to_gateway),
            frames_to_wireguard: g(&c.frames_to_wireguard),
            dropped_not_wireguard: g(&c.dropped_not_wireguard),
            dropped_disconnected: g(&c.dropped_disconnected),
        }
    }
}

type WgPeer = Arc<Mutex<Option<SocketAddr>>>;

/// When the first handshake initiation the connection has not answered yet was relayed.
type Unanswered = Mutex<Option<tokio::time::Instant>>;

struct Relay {
    udp: Arc<UdpSocket>,
    endpoints: Vec<String>,
    gateway_port: u16,
    failover_after: Duration,
    c: Arc<Counters>,
    current: Arc<Mutex<String>>,
}

impl Relay {
    /// Moves to the next endpoint (round robin); a no-op with one.
    fn next(&self, at: usize) -> usize {
        let n = (at + 1) % self.endpoints.len();
        if n != at {
            bump(&self.c.failovers);
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
                self.endpoints[n].clone();
        }
        n
    }

    async fn run(self, mut at: usize, first: TlsStream<TcpStream>) {
        let c = &self.c;
        let udp = &self.udp;
        let wg: WgPeer = Arc::new(Mutex::new(None));
        let mut stream = Some(first);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        loop {
            let endpoint = &self.endpoints[at];
            let s = match stream.take() {
                Some(s) => s,
                None => match open(endpoint, self.gateway_port).await {
                    Ok(s) => {
                        bump(&c.connects);
                        tracing::info!(%endpoint, "TCP transport reconnected");
                        backoff.reset();
                        s
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(%endpoint, error = %e, retry_in_ms = delay.as_millis(), "TCP transport down; retrying");
                        at = self.next(at);
                        // WireGuard retransmits: what it sends meanwhile is dropped, not queued.
                        let until = tokio::time::Instant::now() + delay;
                        let mut buf = [0u8; 2048];
                        while let Ok(r) =
                            tokio::time::timeout_at(until, udp.recv_from(&mut buf)).await
                        {
                            if let Ok((_, src)) = r {
                                *wg.lock().unwrap_or_else(PoisonError::into_inner) = Some(src);
                                bump(&c.dropped_disconnected);
                            }
                        }
                        continue;
                    }
                },
            };
            let (rd, wr) = tokio::io::split(s);
            let unanswered: Unanswered = Mutex::new(None);
            let why = tokio::select! {
                r = gateway_to_wireguard(rd, udp, &wg, c, &unanswered) => r,
                r = wireguard_to_gateway(udp, wr, &wg, c, &unanswered) => r,
                r = self.silence(&unanswered) => r,
            };
            tracing::warn!(%endpoint, reason = %why, "TCP transport connection lost; reconnecting");
            // The other instance at once (a redundant gateway); the same one otherwise.
            at = self.next(at);
        }
    }

    /// Returns when the connection left a handshake initiation unanswered for the bound;
    /// never with one endpoint (there is nowhere else to go).
    async fn silence(&self, unanswered: &Unanswered) -> String {
        if self.endpoints.len() < 2 {
            return std::future::pending().await;
        }
        let tick = (self.failover_after / 10).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(tick).await;
            let since = *unanswered.lock().unwrap_or_else(PoisonError::into_inner);
            if since.is_some_and(|t| t.elapsed() >= self.failover_after) {
                return format!(
                    "a handshake initiation stayed unanswered for {} ms",
                    self.failover_after.as_millis()
                );
            }
        }
    }
}

async fn gateway_to_wireguard<R: AsyncRead + Unpin>(
    mut rd: R,
    udp: &UdpSocket,
    wg: &WgPeer,
    c: &Counters,
    unanswered: &Unanswered,
) -> String {
    let mut frames = FrameDecoder::new();
    loop {
        while let Some(frame) = frames.next_frame() {
            if !is_wireguard_message(frame) {
                bump(&c.dropped_not_wireguard);
                continue;
            }
            *unanswered.lock().unwrap_or_else(PoisonError::into_inner) = None;
            let dst = *wg.lock().unwrap_or_else(PoisonError::into_inner);
            match dst {
                Some(dst) => {
                    if let Err(e) = udp.send_to(frame, dst).await {
                        tracing::trace!(error = %e, "UDP send to the WireGuard client failed");
                    } else {
                        bump(&c.frames_to_wireguard);
                    }
                }
                None => bump(&c.dropped_disconnected),
            }
        }
        match rd.read(frames.buffer()).await {
            Ok(0) => return "read: early eof".to_owned(),
            Ok(n) => frames.filled(n),
            Err(e) => return format!("read: {e}"),
        }
    }
}

async fn wireguard_to_gateway<W: AsyncWrite + Unpin>(
    udp: &UdpSocket,
    mut wr: W,
    wg: &WgPeer,
    c: &Counters,
    unanswered: &Unanswered,
) -> String {
    let mut buf = vec![0u8; MAX_FRAME + 1];
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let mut next = match udp.recv_from(&mut buf).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::trace!(error = %e, "local UDP receive error");
                continue;
            }
        };
        out.clear();
        for _ in 0..64 {
            let Some((n, src)) = next else { break };
            let d = buf.get(..n).unwrap_or_default();
            if is_wireguard_message(d) && push_frame(&mut out, d) {
                *wg.lock().unwrap_or_else(PoisonError::into_inner) = Some(src);
                bump(&c.frames_to_gateway);
                if crate::failover::is_initiation(d) {
                    unanswered
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert_with(tokio::time::Instant::now);
                }
            } else {
                bump(&c.dropped_not_wireguard);
            }
            next = udp.try_recv_from(&mut buf).ok();
        }
        if out.is_empty() {
            continue;
        }
        if let Err(e) = wr.write_all(&out).await {
            return format!("write: {e}");
        }
        if let Err(e) = wr.flush().await {
            return format!("flush: {e}");
        }
    }
}
