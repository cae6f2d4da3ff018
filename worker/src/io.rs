//! The thin tokio shell around [`crate::core::Core`]: UDP sockets (one per gateway port, large
//! buffers), the TUN device of the VNet side, and the timer. Every task feeds the core under a
//! short, synchronous lock, drains what it wants sent, and sends outside the lock.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use isthmus_shared::desired::{DesiredState, StatusReport};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::core::{Core, Event, Transmit};

/// Socket buffer size asked of the kernel (it caps this at `net.core.{r,w}mem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// Receive buffer: any UDP datagram.
const RECV_BUF: usize = 65_536;

/// How the data plane reaches the network.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// The address the gateways' UDP ports bind to.
    pub bind_address: IpAddr,
    /// The TUN device of the VNet side.
    pub tun_name: String,
    /// The TUN device's address, if the worker should set one.
    pub tun_address: Option<IpNet>,
    pub tun_mtu: u16,
    /// Run without a TUN device (tunnel-to-tunnel forwarding only).
    pub no_tun: bool,
    /// Test only: replaces the S2S-2 idle time (5 minutes in the desired state) of every
    /// policy-based tunnel, so a test can watch a tunnel idle out without waiting 5 minutes.
    pub policy_idle_override: Option<Duration>,
}

/// Port → (socket, its reader task).
type SocketTable = BTreeMap<u16, (Arc<UdpSocket>, JoinHandle<()>)>;

struct Shared {
    core: Mutex<Core>,
    sockets: Mutex<SocketTable>,
    tun: Option<Arc<tun_rs::AsyncDevice>>,
    bind: IpAddr,
    policy_idle_override: Option<Duration>,
}

/// A running data plane.
#[derive(Clone)]
pub struct DataPlane {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Drained {
    transmits: Vec<Transmit>,
    tun: Vec<Vec<u8>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn drain(core: &mut Core) -> Drained {
    while let Some(e) = core.poll_event() {
        match e {
            Event::TunnelIdle { gateway, peer } => {
                tracing::info!(%gateway, %peer, "tunnel idle: torn down (S2S-2)");
            }
            Event::TunnelRestarted { gateway, peer } => {
                tracing::info!(%gateway, %peer, "tunnel coming back up: traffic flows");
            }
        }
    }
    Drained {
        transmits: std::iter::from_fn(|| core.poll_transmit()).collect(),
        tun: std::iter::from_fn(|| core.poll_tun()).collect(),
    }
}

/// Opens a UDP socket with large buffers.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = s.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
    }
    if let Err(e) = s.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP send buffer");
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn open_tun(cfg: &DataPlaneConfig) -> std::io::Result<tun_rs::AsyncDevice> {
    let mut b = tun_rs::DeviceBuilder::new()
        .name(&cfg.tun_name)
        .mtu(cfg.tun_mtu);
    match cfg.tun_address {
        Some(IpNet::V4(n)) => b = b.ipv4(n.addr(), n.prefix_len(), None),
        Some(IpNet::V6(n)) => b = b.ipv6(n.addr(), n.prefix_len()),
        None => {}
    }
    b.build_async()
}

impl DataPlane {
    /// Starts the data plane with no gateways: opens the TUN device (or explains in one line why
    /// it cannot and goes on without it) and starts the timer.
    pub fn start(cfg: &DataPlaneConfig) -> Self {
        let tun = if cfg.no_tun {
            tracing::info!(
                "running without a TUN device (--no-tun): forwarding between tunnels only"
            );
            None
        } else {
            match open_tun(cfg) {
                Ok(d) => {
                    tracing::info!(tun = %cfg.tun_name, address = ?cfg.tun_address, "TUN device open (VNet side)");
                    Some(Arc::new(d))
                }
                Err(e) => {
                    tracing::warn!(tun = %cfg.tun_name, error = %e, "cannot open the TUN device (the worker needs root or CAP_NET_ADMIN and /dev/net/tun); running without the VNet side: forwarding between tunnels only");
                    None
                }
            }
        };
        let dp = DataPlane {
            shared: Arc::new(Shared {
                core: Mutex::new(Core::new()),
                sockets: Mutex::new(BTreeMap::new()),
                tun,
                bind: cfg.bind_address,
                policy_idle_override: cfg.policy_idle_override,
            }),
        };
        let timer = dp.clone();
        tokio::spawn(async move { timer.run_timer().await });
        if let Some(tun) = dp.shared.tun.clone() {
            let reader = dp.clone();
            tokio::spawn(async move { reader.run_tun(tun).await });
        }
        dp
    }

    /// Whether the TUN device is open.
    pub fn has_tun(&self) -> bool {
        self.shared.tun.is_some()
    }

    /// Applies a desired state, then binds and closes UDP ports to match.
    pub async fn apply(&self, desired: &DesiredState) {
        let overridden;
        let desired = match self.shared.policy_idle_override {
            Some(idle) => {
                let mut d = desired.clone();
                let secs = u32::try_from(idle.as_secs()).unwrap_or(u32::MAX).max(1);
                for p in d.gateways.iter_mut().flat_map(|g| g.peers.iter_mut()) {
                    if p.idle_timeout_secs.is_some() {
                        p.idle_timeout_secs = Some(secs);
                    }
                }
                overridden = d;
                &overridden
            }
            None => desired,
        };
        let (errors, ports, out) = {
            let mut core = lock(&self.shared.core);
            let errors = core.apply(desired, Instant::now());
            (errors, core.listen_ports(), drain(&mut core))
        };
        for e in &errors {
            tracing::error!("{e}");
        }
        {
            let mut sockets = lock(&self.shared.sockets);
            let stale: Vec<u16> = sockets
                .keys()
                .filter(|p| !ports.contains(p))
                .copied()
                .collect();
            for p in stale {
                if let Some((_, task)) = sockets.remove(&p) {
                    task.abort();
                    tracing::info!(port = p, "UDP port closed");
                }
            }
            for p in ports {
                if sockets.contains_key(&p) {
                    continue;
                }
                let addr = SocketAddr::new(self.shared.bind, p);
                match bind_udp(addr) {
                    Ok(s) => {
                        let s = Arc::new(s);
                        let reader = self.clone();
                        let rs = Arc::clone(&s);
                        let task = tokio::spawn(async move { reader.run_udp(p, rs).await });
                        sockets.insert(p, (s, task));
                        tracing::info!(%addr, "UDP port open");
                    }
                    Err(e) => {
                        tracing::error!(%addr, error = %e, "cannot bind the gateway's UDP port")
                    }
                }
            }
        }
        tracing::info!(
            version = desired.version,
            gateways = desired.gateways.len(),
            "desired state applied"
        );
        self.flush(out).await;
    }

    /// The status report of every gateway.
    pub fn status(&self) -> StatusReport {
        lock(&self.shared.core).status(Instant::now(), SystemTime::now())
    }

    /// The worker's own status: tunnels up or idle, drop counters (`--status-file`).
    pub fn local_status(&self) -> crate::status::LocalStatus {
        crate::status::LocalStatus::of(&lock(&self.shared.core), Instant::now(), SystemTime::now())
    }

    /// Drop counters of the whole worker.
    pub fn counters(&self) -> crate::core::Counters {
        lock(&self.shared.core).counters()
    }

    async fn flush(&self, out: Drained) {
        if !out.transmits.is_empty() {
            let sockets: BTreeMap<u16, Arc<UdpSocket>> = lock(&self.shared.sockets)
                .iter()
                .map(|(p, (s, _))| (*p, Arc::clone(s)))
                .collect();
            for t in out.transmits {
                if let Some(s) = sockets.get(&t.local_port)
                    && let Err(e) = s.send_to(&t.payload, t.dst).await
                {
                    tracing::trace!(error = %e, "UDP send failed");
                }
            }
        }
        if let Some(tun) = &self.shared.tun {
            for p in out.tun {
                if let Err(e) = tun.send(&p).await {
                    tracing::trace!(error = %e, "TUN write failed");
                }
            }
        }
    }

    async fn run_udp(self, port: u16, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let (n, src) = match socket.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors (e.g. port unreachable) surface here on Linux: not fatal.
                    tracing::trace!(port, error = %e, "UDP receive error");
                    continue;
                }
            };
            let mut out = {
                let mut core = lock(&self.shared.core);
                core.handle_network(port, src, buf.get(..n).unwrap_or_default(), Instant::now());
                drain(&mut core)
            };
            // Batch: take what else is already queued on the socket before sending.
            for _ in 0..63 {
                match socket.try_recv_from(&mut buf) {
                    Ok((n, src)) => {
                        let mut core = lock(&self.shared.core);
                        core.handle_network(
                            port,
                            src,
                            buf.get(..n).unwrap_or_default(),
                            Instant::now(),
                        );
                        let more = drain(&mut core);
                        out.transmits.extend(more.transmits);
                        out.tun.extend(more.tun);
                    }
                    Err(_) => break,
                }
            }
            self.flush(out).await;
        }
    }

    async fn run_tun(self, tun: Arc<tun_rs::AsyncDevice>) {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = match tun.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "TUN read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut out = {
                let mut core = lock(&self.shared.core);
                core.handle_tun(buf.get(..n).unwrap_or_default(), Instant::now());
                drain(&mut core)
            };
            for _ in 0..63 {
                match tun.try_recv(&mut buf) {
                    Ok(n) => {
                        let mut core = lock(&self.shared.core);
                        core.handle_tun(buf.get(..n).unwrap_or_default(), Instant::now());
                        let more = drain(&mut core);
                        out.transmits.extend(more.transmits);
                        out.tun.extend(more.tun);
                    }
                    Err(_) => break,
                }
            }
            self.flush(out).await;
        }
    }

    async fn run_timer(self) {
        loop {
            let deadline = lock(&self.shared.core)
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::time::sleep_until(deadline.into()).await;
            let out = {
                let mut core = lock(&self.shared.core);
                core.handle_timeout(Instant::now());
                drain(&mut core)
            };
            self.flush(out).await;
        }
    }
}
