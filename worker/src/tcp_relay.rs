//! P2S-4: the point-to-site TCP transport on the worker, for clients whose UDP is blocked.
//!
//! A TLS listener (TCP 443 by default, so the flow passes firewalls and proxies like HTTPS).
//! Per connection: the client's hello names a gateway by its UDP port
//! ([`isthmus_shared::tcp_transport`]); the relay opens a UDP socket of its own and relays
//! length-prefixed frames to and from that gateway's UDP port on this host. The core is not
//! touched: it sees the relay's socket as the peer's endpoint, and WireGuard roaming moves the
//! peer there with its first authenticated packet (and back to UDP when the client returns).
//!
//! TLS is there to pass firewalls, not for security: WireGuard authenticates and encrypts end
//! to end, so the certificate is generated at start (rcgen) unless one is configured, and
//! clients do not verify it. The relay forwards only to UDP ports of gateways with
//! point-to-site clients and only frames shaped like WireGuard messages; every frame it drops
//! and every connection it refuses is counted ([`RelayStats`]), never logged above TRACE.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use isthmus_shared::desired::{DesiredState, PeerKind};
use isthmus_shared::tcp_transport::{
    FrameDecoder, HELLO_LEN, Hello, HelloReply, MAX_FRAME, is_wireguard_message, push_frame,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish TLS and send its hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the TCP transport runs.
#[derive(Debug, Clone)]
pub struct TcpRelayConfig {
    /// Where the TLS listener binds, e.g. `0.0.0.0:443`.
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; `None` generates a self-signed pair at start.
    pub certificate: Option<(PathBuf, PathBuf)>,
    /// Where the gateways' UDP ports answer on this host (see [`gateway_address_for`]).
    pub gateway_address: IpAddr,
    /// Connections open at once; more are closed at once (and counted).
    pub max_connections: usize,
    /// A connection with no frame from its client for this long is closed. Clients send a
    /// WireGuard keepalive every 25 s.
    pub idle_timeout: Duration,
}

/// The address that reaches the gateways' UDP sockets bound to `bind`: loopback when they
/// listen on every address, else that address.
pub fn gateway_address_for(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    }
}

/// Why the transport cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(
        "cannot listen on TCP {addr} for the point-to-site TCP transport: {source}; free the port or choose another with --tcp-listen"
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the TLS {what} {path}: {detail}; give a PEM file")]
    Pem {
        what: &'static str,
        path: String,
        detail: String,
    },
    #[error("the TLS certificate or key is not usable: {0}")]
    Tls(String),
}

/// Counters of the transport (monotonic).
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused_busy: AtomicU64,
    tls_failed: AtomicU64,
    bad_hello: AtomicU64,
    unknown_gateway: AtomicU64,
    frames_to_gateway: AtomicU64,
    frames_to_client: AtomicU64,
    dropped_not_wireguard: AtomicU64,
    dropped_oversized: AtomicU64,
    send_failed: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the transport's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Connections that passed the hello.
    pub accepted: u64,
    /// Connections closed at once: `max_connections` were open.
    pub refused_busy: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_failed: u64,
    /// Connections whose first bytes were not a hello (or came too late).
    pub bad_hello: u64,
    /// Hellos naming a UDP port with no point-to-site gateway.
    pub unknown_gateway: u64,
    pub frames_to_gateway: u64,
    pub frames_to_client: u64,
    /// Frames that were not shaped like a WireGuard message (garbage), either way.
    pub dropped_not_wireguard: u64,
    /// Datagrams too long for one frame.
    pub dropped_oversized: u64,
    /// UDP or TCP sends that failed.
    pub send_failed: u64,
}

struct Inner {
    ports: RwLock<BTreeSet<u16>>,
    counters: Counters,
    gateway_address: IpAddr,
    idle_timeout: Duration,
    local_addr: SocketAddr,
}

/// A running TCP transport. Cheap to clone.
#[derive(Clone)]
pub struct TcpRelay {
    inner: Arc<Inner>,
}

fn tls_config(cfg: &TcpRelayConfig) -> Result<rustls::ServerConfig, RelayError> {
    let (chain, key) = match &cfg.certificate {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| RelayError::Pem {
                    what: "certificate",
                    path: cert.display().to_string(),
                    detail: e.to_string(),
                })?;
            if chain.is_empty() {
                return Err(RelayError::Pem {
                    what: "certificate",
                    path: cert.display().to_string(),
                    detail: "no CERTIFICATE block".to_owned(),
                });
            }
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| RelayError::Pem {
                what: "private key",
                path: key.display().to_string(),
                detail: e.to_string(),
            })?;
            (chain, key)
        }
        None => {
            let generated = rcgen::generate_simple_self_signed(vec!["isthmus-worker".to_owned()])
                .map_err(|e| RelayError::Tls(e.to_string()))?;
            tracing::info!(
                "generated a self-signed TLS certificate for the TCP transport (clients do not \
                 verify it: WireGuard authenticates end to end)"
            );
            (
                vec![generated.cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der())),
            )
        }
    };
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| RelayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| RelayError::Tls(e.to_string()))
}

impl TcpRelay {
    /// Binds the listener and starts accepting. No gateway is reachable until
    /// [`TcpRelay::set_gateway_ports`].
    pub async fn start(cfg: &TcpRelayConfig) -> Result<Self, RelayError> {
        let acceptor = TlsAcceptor::from(Arc::new(tls_config(cfg)?));
        let listener =
            TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| RelayError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| RelayError::Listen {
            addr: cfg.listen,
            source,
        })?;
        let relay = Self {
            inner: Arc::new(Inner {
                ports: RwLock::new(BTreeSet::new()),
                counters: Counters::default(),
                gateway_address: cfg.gateway_address,
                idle_timeout: cfg.idle_timeout,
                local_addr,
            }),
        };
        let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        // enforces: P2S-4
        tracing::info!(listen = %local_addr, gateways_at = %cfg.gateway_address, "point-to-site TCP transport listening (P2S-4)");
        let r = relay.clone();
        tokio::spawn(async move { r.accept_loop(listener, acceptor, slots).await });
        Ok(relay)
    }

    /// Where the listener is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The UDP ports clients may reach: those of gateways with point-to-site clients.
    pub fn p2s_ports(desired: &DesiredState) -> BTreeSet<u16> {
        desired
            .gateways
            .iter()
            .filter(|g| {
                g.peers
                    .iter()
                    .any(|p| matches!(p.kind, PeerKind::P2sClient { .. }))
            })
            .map(|g| g.listen_port)
            .collect()
    }

    /// Sets the UDP ports new connections may reach (open connections keep theirs; a revoked
    /// client's packets are dropped by the core, whose desired state no longer has its peer).
    pub fn set_gateway_ports(&self, ports: BTreeSet<u16>) {
        *self
            .inner
            .ports
            .write()
            .unwrap_or_else(PoisonError::into_inner) = ports;
    }

    /// Applies the ports of `desired` ([`TcpRelay::p2s_ports`]).
    pub fn apply(&self, desired: &DesiredState) {
        self.set_gateway_ports(Self::p2s_ports(desired));
    }

    pub fn stats(&self) -> RelayStats {
        let c = &self.inner.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelayStats {
            accepted: g(&c.accepted),
            refused_busy: g(&c.refused_busy),
            tls_failed: g(&c.tls_failed),
            bad_hello: g(&c.bad_hello),
            unknown_gateway: g(&c.unknown_gateway),
            frames_to_gateway: g(&c.frames_to_gateway),
            frames_to_client: g(&c.frames_to_client),
            dropped_not_wireguard: g(&c.dropped_not_wireguard),
            dropped_oversized: g(&c.dropped_oversized),
            send_failed: g(&c.send_failed),
        }
    }

    async fn accept_loop(
        self,
        listener: TcpListener,
        acceptor: TlsAcceptor,
        slots: Arc<Semaphore>,
    ) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "TCP transport: accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                bump(&self.inner.counters.refused_busy);
                tracing::trace!(%peer, "TCP transport: connection limit reached; closed");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let relay = self.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                relay.serve(tcp, peer, acceptor).await;
                drop(slot);
            });
        }
    }

    async fn serve(&self, tcp: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor) {
        let c = &self.inner.counters;
        let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                bump(&c.tls_failed);
                tracing::debug!(%peer, error = %e, "TCP transport: TLS handshake failed");
                return;
            }
            Err(_) => {
                bump(&c.tls_failed);
                tracing::debug!(%peer, "TCP transport: TLS handshake timed out");
                return;
            }
        };
        let mut hello = [0u8; HELLO_LEN];
        let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.read_exact(&mut hello)).await
        {
            Ok(Ok(_)) => Hello::decode(&hello),
            _ => {
                bump(&c.bad_hello);
                tracing::debug!(%peer, "TCP transport: no hello");
                return;
            }
        };
        let hello = match hello {
            Ok(h) => h,
            Err(e) => {
                bump(&c.bad_hello);
                tracing::debug!(%peer, error = %e, "TCP transport: refused");
                return;
            }
        };
        let known = self
            .inner
            .ports
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&hello.gateway_port);
        let reply = if known {
            HelloReply::Accepted
        } else {
            HelloReply::UnknownGateway
        };
        if tls.write_all(&[reply.to_byte()]).await.is_err() || tls.flush().await.is_err() {
            return;
        }
        if !known {
            bump(&c.unknown_gateway);
            tracing::debug!(%peer, port = hello.gateway_port, "TCP transport: no point-to-site gateway on that UDP port");
            let _ = tls.shutdown().await;
            return;
        }
        let target = SocketAddr::new(self.inner.gateway_address, hello.gateway_port);
        let udp = match UdpSocket::bind(SocketAddr::new(self.inner.gateway_address, 0)).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "TCP transport: cannot open a UDP socket for a client; closing it");
                return;
            }
        };
        if let Err(e) = udp.connect(target).await {
            tracing::warn!(%peer, %target, error = %e, "TCP transport: cannot reach the gateway's UDP port; closing");
            return;
        }
        bump(&c.accepted);
        let local = udp.local_addr().ok();
        tracing::debug!(%peer, %target, relay_socket = ?local, "TCP transport: client relayed");
        let (rd, wr) = tokio::io::split(tls);
        tokio::select! {
            r = self.client_to_gateway(rd, &udp) => {
                tracing::debug!(%peer, reason = %r, "TCP transport: client side closed");
            }
            r = self.gateway_to_client(&udp, wr) => {
                tracing::debug!(%peer, reason = %r, "TCP transport: relay closed");
            }
        }
    }

    /// Frames from the client to the gateway's UDP port; returns why it stopped.
    async fn client_to_gateway<R: AsyncRead + Unpin>(&self, mut rd: R, udp: &UdpSocket) -> String {
        let c = &self.inner.counters;
        let mut frames = FrameDecoder::new();
        // Idle: no whole frame within the timeout (counted from the previous frame).
        let mut deadline = tokio::time::Instant::now() + self.inner.idle_timeout;
        loop {
            let mut any = false;
            while let Some(frame) = frames.next_frame() {
                any = true;
                if !is_wireguard_message(frame) {
                    bump(&c.dropped_not_wireguard);
                    tracing::trace!(
                        len = frame.len(),
                        "TCP transport: frame is not a WireGuard message; dropped"
                    );
                    continue;
                }
                match udp.send(frame).await {
                    Ok(_) => bump(&c.frames_to_gateway),
                    Err(e) => {
                        bump(&c.send_failed);
                        tracing::trace!(error = %e, "TCP transport: UDP send failed");
                    }
                }
            }
            if any {
                deadline = tokio::time::Instant::now() + self.inner.idle_timeout;
            }
            match tokio::time::timeout_at(deadline, rd.read(frames.buffer())).await {
                Ok(Ok(0)) => return "read: early eof".to_owned(),
                Ok(Ok(n)) => frames.filled(n),
                Ok(Err(e)) => return format!("read: {e}"),
                Err(_) => return "idle".to_owned(),
            }
        }
    }

    /// Datagrams from the gateway to the client, batched per flush; returns why it stopped.
    async fn gateway_to_client<W: AsyncWrite + Unpin>(&self, udp: &UdpSocket, mut wr: W) -> String {
        let c = &self.inner.counters;
        let mut buf = vec![0u8; MAX_FRAME + 1];
        let mut out = Vec::with_capacity(64 * 1024);
        loop {
            let mut next = match udp.recv(&mut buf).await {
                Ok(n) => Some(n),
                Err(e) => {
                    // ICMP errors from the gateway's port surface here: not fatal.
                    tracing::trace!(error = %e, "TCP transport: UDP receive error");
                    continue;
                }
            };
            // Take what else is queued before writing, so one TLS flush carries many frames.
            out.clear();
            for _ in 0..64 {
                let Some(n) = next else { break };
                let d = buf.get(..n).unwrap_or_default();
                if !is_wireguard_message(d) {
                    bump(&c.dropped_not_wireguard);
                } else if push_frame(&mut out, d) {
                    bump(&c.frames_to_client);
                } else {
                    bump(&c.dropped_oversized);
                }
                next = udp.try_recv(&mut buf).ok();
            }
            if out.is_empty() {
                continue;
            }
            if let Err(e) = wr.write_all(&out).await {
                bump(&c.send_failed);
                return format!("write: {e}");
            }
            if let Err(e) = wr.flush().await {
                bump(&c.send_failed);
                return format!("flush: {e}");
            }
        }
    }
}
