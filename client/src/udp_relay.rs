//! Issue 16: `isthmus-client connect --udp`, a local UDP relay that fails a stock WireGuard
//! client over between the two instances of a redundant gateway (the rules are
//! [`crate::failover`]'s; this is the tokio shell around them).
//!
//! The WireGuard client's peer `Endpoint` names the relay's local address (`--write-config`
//! writes such a configuration); the relay sends from one socket of its own towards the
//! instances, so both instances, and any NAT on the way, see one client address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use isthmus_shared::tcp_transport::is_wireguard_message;
use tokio::net::UdpSocket;

use crate::connect::ConnectError;
use crate::failover::Instances;

/// Counters of a running UDP relay (monotonic).
#[derive(Debug, Default)]
struct Counters {
    to_gateway: AtomicU64,
    mirrored: AtomicU64,
    to_wireguard: AtomicU64,
    dropped_unlisted: AtomicU64,
    dropped_not_wireguard: AtomicU64,
    dropped_no_client: AtomicU64,
    send_errors: AtomicU64,
}

/// A snapshot of the UDP relay's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams of the WireGuard client sent to the current instance.
    pub to_gateway: u64,
    /// Initiations and keepalives also sent to the other instance (NAT mappings kept open).
    pub mirrored: u64,
    /// Datagrams of an instance forwarded to the WireGuard client.
    pub to_wireguard: u64,
    /// Datagrams from an address that is no instance of the gateway.
    pub dropped_unlisted: u64,
    /// Datagrams, either way, not shaped like WireGuard messages.
    pub dropped_not_wireguard: u64,
    /// Datagrams of an instance before the WireGuard client sent anything.
    pub dropped_no_client: u64,
    /// Sends the operating system refused (no route, network down).
    pub send_errors: u64,
    /// Changes of the current instance (roaming or an unanswered initiation).
    pub switches: u64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A running UDP relay.
pub struct UdpRelay {
    local: SocketAddr,
    outer: SocketAddr,
    instances: Arc<Mutex<Instances>>,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `host:port` resolved to its first address.
async fn resolve(endpoint: &str) -> Result<SocketAddr, ConnectError> {
    let err = |detail: String| ConnectError::Resolve {
        endpoint: endpoint.to_owned(),
        detail,
    };
    tokio::net::lookup_host(endpoint)
        .await
        .map_err(|e| err(e.to_string()))?
        .next()
        .ok_or_else(|| err("no address".to_owned()))
}

impl UdpRelay {
    /// Opens the local UDP endpoint at `listen` and the socket towards the gateway's
    /// `instances` (`host:port`, the active one first), then relays in the background.
    /// `failover_after` bounds how long the current instance may leave a handshake
    /// initiation unanswered ([`crate::failover::DEFAULT_FAILOVER_AFTER`]).
    pub async fn start(
        listen: SocketAddr,
        instances: &[String],
        failover_after: Duration,
    ) -> Result<Self, ConnectError> {
        let mut addrs = Vec::with_capacity(instances.len());
        for e in instances {
            addrs.push(resolve(e).await?);
        }
        let list = Instances::new(&addrs, failover_after).ok_or_else(|| {
            ConnectError::Config(
                "the peer has no Endpoint: the gateway has no public endpoint yet".to_owned(),
            )
        })?;
        let bind_err = |addr: SocketAddr| move |source| ConnectError::Listen { addr, source };
        let local = UdpSocket::bind(listen).await.map_err(bind_err(listen))?;
        let local_addr = local.local_addr().map_err(bind_err(listen))?;
        // One socket towards every instance: IPv4 unless an instance is IPv6 (then a
        // dual-stack IPv6 socket reaches IPv4 instances as mapped addresses).
        let v6 = list.endpoints().iter().any(SocketAddr::is_ipv6);
        let any = if v6 {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        } else {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        };
        let outer = UdpSocket::bind(any).await.map_err(bind_err(any))?;
        let outer_addr = outer.local_addr().map_err(bind_err(any))?;
        let instances = Arc::new(Mutex::new(list));
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(
            local,
            outer,
            v6,
            Arc::clone(&instances),
            Arc::clone(&counters),
        ));
        Ok(Self {
            local: local_addr,
            outer: outer_addr,
            instances,
            counters,
            task,
        })
    }

    /// The local UDP endpoint the WireGuard client's peer `Endpoint` must name.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The local address of the socket the instances see the client at.
    pub fn outer_addr(&self) -> SocketAddr {
        self.outer
    }

    /// The instance the client's traffic goes to now.
    pub fn current(&self) -> SocketAddr {
        lock(&self.instances).current()
    }

    pub fn stats(&self) -> UdpStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        UdpStats {
            to_gateway: g(&c.to_gateway),
            mirrored: g(&c.mirrored),
            to_wireguard: g(&c.to_wireguard),
            dropped_unlisted: g(&c.dropped_unlisted),
            dropped_not_wireguard: g(&c.dropped_not_wireguard),
            dropped_no_client: g(&c.dropped_no_client),
            send_errors: g(&c.send_errors),
            switches: lock(&self.instances).switches(),
        }
    }
}

fn lock(m: &Mutex<Instances>) -> std::sync::MutexGuard<'_, Instances> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `a` as the outer socket addresses it (IPv4 as mapped IPv6 on an IPv6 socket).
fn on_socket(a: SocketAddr, v6: bool) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if v6 => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
        _ => a,
    }
}

async fn send(sock: &UdpSocket, d: &[u8], to: SocketAddr, c: &Counters, ok: &AtomicU64) {
    match sock.send_to(d, to).await {
        Ok(_) => bump(ok),
        Err(e) => {
            bump(&c.send_errors);
            tracing::trace!(error = %e, %to, "UDP send failed");
        }
    }
}

async fn run(
    local: UdpSocket,
    outer: UdpSocket,
    v6: bool,
    instances: Arc<Mutex<Instances>>,
    c: Arc<Counters>,
) {
    // The WireGuard client: the last local sender.
    let mut wg: Option<SocketAddr> = None;
    let mut from_wg = vec![0u8; 65_536];
    let mut from_gw = vec![0u8; 65_536];
    loop {
        let due = lock(&instances).poll_timeout();
        let timeout = async move {
            match due {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = local.recv_from(&mut from_wg) => {
                let Ok((n, src)) = r else { continue };
                let d = from_wg.get(..n).unwrap_or_default();
                if !is_wireguard_message(d) {
                    bump(&c.dropped_not_wireguard);
                    continue;
                }
                wg = Some(src);
                let out = lock(&instances).outbound(d, Instant::now());
                send(&outer, d, on_socket(out.to, v6), &c, &c.to_gateway).await;
                for m in out.mirror {
                    send(&outer, d, on_socket(m, v6), &c, &c.mirrored).await;
                }
            }
            r = outer.recv_from(&mut from_gw) => {
                let Ok((n, src)) = r else { continue };
                let d = from_gw.get(..n).unwrap_or_default();
                if !is_wireguard_message(d) {
                    bump(&c.dropped_not_wireguard);
                    continue;
                }
                let (listed, before, after) = {
                    let mut i = lock(&instances);
                    let before = i.current();
                    let listed = i.inbound(src);
                    (listed, before, i.current())
                };
                if !listed {
                    bump(&c.dropped_unlisted);
                    continue;
                }
                if before != after {
                    tracing::info!(from = %before, instance = %after,
                        "the gateway's other instance answered: it is the current one now");
                }
                match wg {
                    Some(to) => send(&local, d, to, &c, &c.to_wireguard).await,
                    None => bump(&c.dropped_no_client),
                }
            }
            () = timeout => {
                let mut i = lock(&instances);
                let before = i.current();
                if let Some(to) = i.handle_timeout(Instant::now()) {
                    tracing::warn!(from = %before, instance = %to,
                        "the current instance left a handshake initiation unanswered; switching to the gateway's other instance");
                }
            }
        }
    }
}
