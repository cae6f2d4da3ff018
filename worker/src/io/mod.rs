//! The thin tokio shell around [`crate::core::Core`]: UDP sockets (one per gateway port, large
//! buffers), the TUN device of the VNet side, and the timer. Every task feeds the core a batch
//! under one short, synchronous lock, drains what it wants sent, and sends outside the lock.
//!
//! I/O is batched at both ends. UDP goes through `quinn-udp`: `recvmmsg` with UDP GRO (one
//! read returns many datagrams of a flow) and `sendmsg` with UDP GSO (consecutive datagrams of
//! one size to one peer leave in one call). The TUN device is opened with offload
//! (`IFF_VNET_HDR`, through `tun-rs`): one read returns a TCP super-packet that `tun-rs` splits
//! into MTU-sized packets, and the core coalesces the TCP segments it decrypts into
//! super-packets (GRO, [`crate::core::gro`]), one write each. quinn-udp sets the don't-fragment bit on the gateways' datagrams
//! (`IP_PMTUDISC_PROBE`): with the default TUN MTU of 1420 they fit a 1500-byte path.

use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use isthmus_shared::desired::{DesiredState, StatusReport};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tun_rs::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use crate::core::failover::HeartbeatTransmit;
use crate::core::{ApplyOptions, Core, Event, Transmit};
use crate::host::{Conflicts, HostConfig, HostNet};

mod events;
mod heartbeat;
mod udp;

use self::events::log_event;

pub use self::heartbeat::bind_heartbeat;

pub use self::udp::bind_udp;
use self::udp::{bind_port, send_udp, udp_drops_by_port};

/// One receive buffer: any UDP datagram, or one GRO batch of datagrams.
const RECV_BUF: usize = 65_536;
/// Receive buffers per `recvmmsg` call (each may hold a GRO batch).
const RECV_BATCH: usize = 8;
/// At most this many bytes in one GSO send (the kernel's limit is 64 KiB of UDP payload).
const GSO_MAX_BYTES: usize = 65_000;
/// Datagrams a port's untrusted socket (initiations, garbage: [`udp::bind_port`]) has read per core
/// tick before its reader waits for the next tick: ~32,000 a second, a few percent of the
/// worker's thread; the kernel drops the rest of a flood from that socket's queue alone.
const UNTRUSTED_PER_TICK: usize = 8192;
/// Packets one TUN batch holds (several reads, each a super-packet split into packets).
const TUN_READ_PACKETS: usize = 2 * IDEAL_BATCH_SIZE;
/// Room kept for one more read: a 64 KiB super-packet splits into at most 122 packets at the
/// smallest IPv4 MTU (576), fewer at larger ones; a read that does not fit would be lost.
const TUN_SEGMENTS_MAX: usize = IDEAL_BATCH_SIZE;

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
    /// Test only: the liveness window of peers with a keepalive (65 s by default; see
    /// [`crate::core::state`]).
    pub peer_silence: Option<Duration>,
    /// The routing table of forced-tunnel default routes ([`crate::host`], `--route-table`).
    pub route_table: u32,
}

/// A gateway's UDP port: the socket, quinn-udp's state for it (GSO/GRO support), its reader,
/// and the reader of the port's handshake socket, when the kernel steers handshake
/// initiations to one ([`bind_port`]).
struct Port {
    socket: Arc<UdpSocket>,
    state: Arc<UdpSocketState>,
    task: JoinHandle<()>,
    handshakes: Option<JoinHandle<()>>,
}

type SocketTable = BTreeMap<u16, Port>;

struct Shared {
    core: Mutex<Core>,
    sockets: Mutex<SocketTable>,
    tun: Option<Arc<tun_rs::AsyncDevice>>,
    bind: IpAddr,
    policy_idle_override: Option<Duration>,
    /// The VNet side on the host (addresses and routes of the TUN device); `None` without TUN.
    host: tokio::sync::Mutex<Option<HostNet>>,
    /// The routes the host refused, per gateway (from the last reconciliation).
    route_conflicts: Mutex<Conflicts>,
    /// Issue 16: the heartbeat socket of the gateways' instances (`--heartbeat-port`).
    heartbeat: Mutex<Option<Arc<UdpSocket>>>,
    /// The desired state applied last: the host follows it and the instances' roles.
    desired: Mutex<Option<DesiredState>>,
    /// Why a gateway's port could not be bound, by port (the status report's `bind_error`).
    bind_errors: Mutex<BTreeMap<u16, String>>,
    /// Wakes the timer task when the core's next deadline may have moved earlier (an apply,
    /// a heartbeat: a failover's 200 ms timers must not wait for the timer's old deadline).
    timer_wake: tokio::sync::Notify,
    /// Signalled when an instance changes its role ([`DataPlane::role_changed`]).
    role_notify: tokio::sync::Notify,
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
    heartbeats: Vec<HeartbeatTransmit>,
    /// An instance changed its role: the host's addresses and routes must follow.
    roles_changed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn drain(core: &mut Core) -> Drained {
    let mut roles_changed = false;
    while let Some(e) = core.poll_event() {
        roles_changed |= matches!(
            e,
            Event::InstanceActive { .. } | Event::InstanceStandby { .. }
        );
        log_event(e);
    }
    Drained {
        transmits: std::iter::from_fn(|| core.poll_transmit()).collect(),
        tun: std::iter::from_fn(|| core.poll_tun()).collect(),
        heartbeats: std::iter::from_fn(|| core.poll_heartbeat()).collect(),
        roles_changed,
    }
}

fn build_tun(cfg: &DataPlaneConfig, offload: bool) -> std::io::Result<tun_rs::AsyncDevice> {
    let mut b = tun_rs::DeviceBuilder::new()
        .name(&cfg.tun_name)
        .mtu(cfg.tun_mtu)
        .offload(offload);
    match cfg.tun_address {
        Some(IpNet::V4(n)) => b = b.ipv4(n.addr(), n.prefix_len(), None),
        Some(IpNet::V6(n)) => b = b.ipv6(n.addr(), n.prefix_len()),
        None => {}
    }
    b.build_async()
}

/// Opens the TUN device with offload, or without it when the kernel refuses offload; says
/// which.
fn open_tun(cfg: &DataPlaneConfig) -> std::io::Result<(tun_rs::AsyncDevice, bool)> {
    match build_tun(cfg, true) {
        Ok(d) => Ok((d, true)),
        Err(e) => {
            tracing::info!(tun = %cfg.tun_name, error = %e, "TUN offload unavailable; one packet per read and write");
            Ok((build_tun(cfg, false)?, false))
        }
    }
}

impl DataPlane {
    /// Starts the data plane with no gateways: opens the TUN device (or explains in one line why
    /// it cannot and goes on without it) and starts the timer.
    pub fn start(cfg: &DataPlaneConfig) -> Self {
        let mut offload = false;
        let tun = if cfg.no_tun {
            tracing::info!(
                "running without a TUN device (--no-tun): forwarding between tunnels only"
            );
            None
        } else {
            match open_tun(cfg) {
                Ok((d, o)) => {
                    tracing::info!(tun = %cfg.tun_name, address = ?cfg.tun_address, offload = o, "TUN device open (VNet side)");
                    offload = o;
                    Some(Arc::new(d))
                }
                Err(e) => {
                    tracing::warn!(tun = %cfg.tun_name, error = %e, "cannot open the TUN device (the worker needs root or CAP_NET_ADMIN and /dev/net/tun); running without the VNet side: forwarding between tunnels only");
                    None
                }
            }
        };
        // The VNet side: only with a TUN device to put addresses and routes on.
        let host = tun.as_ref().map(|_| {
            crate::host::check_forwarding();
            HostNet::new(HostConfig {
                tun_name: cfg.tun_name.clone(),
                tun_address: cfg.tun_address,
                route_table: cfg.route_table,
            })
        });
        let dp = DataPlane {
            shared: Arc::new(Shared {
                core: Mutex::new({
                    let mut core = Core::new();
                    core.set_tun_offload(offload);
                    if let Some(s) = cfg.peer_silence {
                        core.set_peer_silence(s);
                    }
                    core.set_gso_max_bytes(GSO_MAX_BYTES);
                    core.set_boot_id(heartbeat::random_boot_id());
                    // Issue 17: IKE draws SPIs, nonces and keys from the system's randomness.
                    core.set_entropy(Box::new(crate::core::ike::crypto::SystemEntropy::default()));
                    core
                }),
                sockets: Mutex::new(BTreeMap::new()),
                tun,
                bind: cfg.bind_address,
                policy_idle_override: cfg.policy_idle_override,
                host: tokio::sync::Mutex::new(host),
                route_conflicts: Mutex::new(BTreeMap::new()),
                heartbeat: Mutex::new(None),
                desired: Mutex::new(None),
                bind_errors: Mutex::new(BTreeMap::new()),
                timer_wake: tokio::sync::Notify::new(),
                role_notify: tokio::sync::Notify::new(),
            }),
        };
        let timer = dp.clone();
        tokio::spawn(async move { timer.run_timer().await });
        if let Some(tun) = dp.shared.tun.clone() {
            let reader = dp.clone();
            let mtu = usize::from(cfg.tun_mtu);
            tokio::spawn(async move { reader.run_tun(tun, mtu).await });
        }
        dp
    }

    /// Resolves when an instance of a redundant gateway changed its role: the status report
    /// then goes to the server at once, so that it adopts a takeover without waiting.
    pub async fn role_changed(&self) {
        self.shared.role_notify.notified().await;
    }

    /// Whether the TUN device is open.
    pub fn has_tun(&self) -> bool {
        self.shared.tun.is_some()
    }

    /// Applies a desired state, then binds and closes UDP ports to match.
    pub async fn apply(&self, desired: &DesiredState) {
        let (errors, ports, mut out) = {
            let mut core = lock(&self.shared.core);
            let options = ApplyOptions {
                idle_override: self.shared.policy_idle_override,
            };
            let errors = core.apply_with(desired, Instant::now(), options);
            (errors, core.listen_ports(), drain(&mut core))
        };
        self.shared.timer_wake.notify_one();
        for e in &errors {
            tracing::error!("{e}");
        }
        self.sync_ports(&ports);
        *lock(&self.shared.desired) = Some(desired.clone());
        self.reconcile_host().await;
        // The reconciliation just now followed the roles too.
        out.roles_changed = false;
        tracing::info!(
            version = desired.version,
            gateways = desired.gateways.len(),
            "desired state applied"
        );
        self.flush(out).await;
    }

    /// Binds the ports in `ports` not yet bound (again, if an earlier attempt failed) and
    /// closes the others; a port that cannot be bound is the gateway's `bind_error`.
    fn sync_ports(&self, ports: &std::collections::BTreeSet<u16>) {
        let mut sockets = lock(&self.shared.sockets);
        let mut bind_errors = lock(&self.shared.bind_errors);
        bind_errors.retain(|p, _| ports.contains(p));
        let stale: Vec<u16> = sockets
            .keys()
            .filter(|p| !ports.contains(p))
            .copied()
            .collect();
        for p in stale {
            if let Some(port) = sockets.remove(&p) {
                port.task.abort();
                if let Some(h) = port.handshakes {
                    h.abort();
                }
                tracing::info!(port = p, "UDP port closed");
            }
        }
        for &p in ports {
            if sockets.contains_key(&p) {
                continue;
            }
            let addr = SocketAddr::new(self.shared.bind, p);
            match bind_port(addr) {
                Ok(((s, state), handshakes)) => {
                    let (socket, state) = (Arc::new(s), Arc::new(state));
                    let reader = self.clone();
                    let (rs, rstate) = (Arc::clone(&socket), Arc::clone(&state));
                    let task =
                        tokio::spawn(async move { reader.run_udp(p, rs, rstate, false).await });
                    let steered = handshakes.is_some();
                    let handshakes = handshakes.map(|(hs, hstate)| {
                        let reader = self.clone();
                        let (hs, hstate) = (Arc::new(hs), Arc::new(hstate));
                        tokio::spawn(async move { reader.run_udp(p, hs, hstate, true).await })
                    });
                    sockets.insert(
                        p,
                        Port {
                            socket,
                            state,
                            task,
                            handshakes,
                        },
                    );
                    if bind_errors.remove(&p).is_some() {
                        tracing::info!(%addr, "the gateway's UDP port is free again");
                    }
                    tracing::info!(%addr, handshake_queue = steered, "UDP port open");
                }
                Err(e) => {
                    let why = format!("cannot bind UDP {addr}: {e}");
                    if bind_errors.get(&p) != Some(&why) {
                        tracing::error!(%addr, error = %e, "cannot bind the gateway's UDP port");
                    }
                    bind_errors.insert(p, why);
                }
            }
        }
    }

    /// The VNet side: the TUN device's addresses and kernel routes for the desired state
    /// applied last, without those of gateways whose instance here is the standby; the
    /// addresses just taken over are announced (gratuitous ARP).
    async fn reconcile_host(&self) {
        let mut host = self.shared.host.lock().await;
        let Some(h) = host.as_mut() else {
            return;
        };
        let Some(desired) = lock(&self.shared.desired).clone() else {
            return;
        };
        let standby = lock(&self.shared.core).standby_gateways();
        let added = h.reconcile(&desired, &standby).await;
        *lock(&self.shared.route_conflicts) = h.conflicts().clone();
        for a in added {
            crate::host::garp::announce(a, h.tun_name().to_owned());
        }
    }

    /// Clean shutdown: removes the worker's own routes and policy rules from the host.
    pub async fn shutdown(&self) {
        let mut host = self.shared.host.lock().await;
        if let Some(h) = host.as_mut() {
            h.clear().await;
        }
    }

    /// The routes the host refused, per gateway.
    pub fn route_conflicts(&self) -> Conflicts {
        lock(&self.shared.route_conflicts).clone()
    }

    /// Hands the core what the kernel dropped for full receive queues of the gateways' ports.
    fn read_queue_overflows(&self) {
        let drops = udp_drops_by_port();
        let mut core = lock(&self.shared.core);
        for port in core.listen_ports() {
            core.set_queue_overflows(port, drops.get(&port).copied().unwrap_or(0));
        }
    }

    /// Why each gateway's port could not be bound (tried again first).
    fn bind_errors(&self) -> BTreeMap<isthmus_shared::model::QualifiedName, String> {
        let (ports, names) = {
            let core = lock(&self.shared.core);
            let names = core.gateway_names();
            let ports: BTreeMap<_, _> = names
                .iter()
                .filter_map(|q| Some((q.clone(), core.listen_port(q)?)))
                .collect();
            (core.listen_ports(), ports)
        };
        if !lock(&self.shared.bind_errors).is_empty() {
            self.sync_ports(&ports);
        }
        let errors = lock(&self.shared.bind_errors);
        names
            .into_iter()
            .filter_map(|(q, p)| Some((q, errors.get(&p)?.clone())))
            .collect()
    }

    /// The status report of every gateway.
    pub fn status(&self) -> StatusReport {
        self.read_queue_overflows();
        let bind_errors = self.bind_errors();
        let mut report = lock(&self.shared.core).status(Instant::now(), SystemTime::now());
        let conflicts = self.route_conflicts();
        for g in &mut report.gateways {
            let q = isthmus_shared::model::QualifiedName::new(&g.tenant, &g.name);
            g.route_conflicts = conflicts.get(&q).cloned().unwrap_or_default();
            g.bind_error = bind_errors.get(&q).cloned();
        }
        report
    }

    /// The worker's own status: tunnels up or idle, drop counters (`--status-file`).
    pub fn local_status(&self) -> crate::status::LocalStatus {
        self.read_queue_overflows();
        let mut s = crate::status::LocalStatus::of(
            &lock(&self.shared.core),
            Instant::now(),
            SystemTime::now(),
        );
        let conflicts = self.route_conflicts();
        let bind_errors = self.bind_errors();
        for g in &mut s.gateways {
            let q = isthmus_shared::model::QualifiedName::new(&g.tenant, &g.name);
            g.route_conflicts = conflicts.get(&q).cloned().unwrap_or_default();
            g.bind_error = bind_errors.get(&q).cloned();
        }
        s
    }

    /// Drop counters of the whole worker.
    pub fn counters(&self) -> crate::core::Counters {
        lock(&self.shared.core).counters()
    }

    /// Sends what the core produced: datagrams as the core batched them (one GSO call per
    /// batch), TUN packets (super-packets with offload) one write each.
    async fn flush(&self, out: Drained) {
        if out.roles_changed {
            self.shared.role_notify.notify_one();
            // The takeover's host work (address, routes, gratuitous ARP) is on the failover's
            // critical path: it starts now, beside the handshakes sent below.
            let dp = self.clone();
            tokio::spawn(async move { dp.reconcile_host().await });
        }
        if !out.heartbeats.is_empty() {
            let socket = lock(&self.shared.heartbeat).clone();
            if let Some(s) = socket {
                for h in &out.heartbeats {
                    if let Err(e) = s.send_to(&h.payload, h.dst).await {
                        tracing::debug!(dst = %h.dst, error = %e, "heartbeat not sent");
                    }
                }
            }
        }
        if !out.transmits.is_empty() {
            type Sock = (Arc<UdpSocket>, Arc<UdpSocketState>);
            let sockets: BTreeMap<u16, Sock> = lock(&self.shared.sockets)
                .iter()
                .map(|(p, port)| (*p, (Arc::clone(&port.socket), Arc::clone(&port.state))))
                .collect();
            for t in &out.transmits {
                let Some((socket, state)) = sockets.get(&t.local_port) else {
                    continue;
                };
                match t.segment_size {
                    // The core batched datagrams to one peer; the kernel may take fewer
                    // segments per call than the batch holds (or none: then one by one).
                    Some(seg) if seg > 0 && t.payload.len() > seg => {
                        let per_call = seg * state.max_gso_segments().max(1);
                        for chunk in t.payload.chunks(per_call) {
                            let gso = (chunk.len() > seg).then_some(seg);
                            send_udp(socket, state, t.dst, chunk, gso).await;
                        }
                    }
                    _ => send_udp(socket, state, t.dst, &t.payload, None).await,
                }
            }
        }
        if let Some(tun) = &self.shared.tun {
            for p in &out.tun {
                if let Err(e) = tun.send(p).await {
                    tracing::trace!(error = %e, "TUN write failed");
                }
            }
        }
    }

    /// Reads a gateway's port; `untrusted`: the port's second socket ([`bind_port`]), which
    /// waits for the next tick once the tick's handshake budget is spent or it has read
    /// [`UNTRUSTED_PER_TICK`] datagrams, so the kernel, not the worker's one thread, drops the
    /// rest of a flood (counted as `queue_overflows`, from `/proc/net/udp`).
    async fn run_udp(
        self,
        port: u16,
        socket: Arc<UdpSocket>,
        state: Arc<UdpSocketState>,
        untrusted: bool,
    ) {
        let mut storage = vec![0u8; RECV_BUF * RECV_BATCH];
        let mut meta = [RecvMeta::default(); RECV_BATCH];
        // The untrusted socket: datagrams read in the tick that ends at `this_tick`.
        let (mut this_tick, mut read) = (None::<Instant>, 0usize);
        loop {
            if !untrusted {
                read = 0;
            }
            if let Err(e) = socket.readable().await {
                tracing::warn!(port, error = %e, "UDP socket failed; port closed");
                return;
            }
            let n = match socket.try_io(Interest::READABLE, || {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    storage.chunks_mut(RECV_BUF).map(IoSliceMut::new).collect();
                state.recv(UdpSockRef::from(&*socket), &mut bufs, &mut meta)
            }) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    // ICMP errors (e.g. port unreachable) surface here on Linux: not fatal.
                    tracing::trace!(port, error = %e, "UDP receive error");
                    continue;
                }
            };
            let out = {
                let mut core = lock(&self.shared.core);
                let now = Instant::now();
                // Established tunnels first: data (and cookie replies) of the whole batch,
                // then its handshakes, which the core bounds per tick (issue #16: a
                // handshake flood must not delay the data queued behind it).
                for handshakes in [false, true] {
                    for (m, buf) in meta.iter().zip(storage.chunks(RECV_BUF)).take(n) {
                        let data = buf.get(..m.len).unwrap_or_default();
                        // A GRO batch: datagrams of `stride` bytes, the last may be shorter.
                        for d in data.chunks(m.stride.max(1)) {
                            if Core::is_handshake(d) == handshakes {
                                core.handle_network(port, m.addr, d, now);
                                read += 1;
                            }
                        }
                    }
                }
                drain(&mut core)
            };
            self.flush(out).await;
            if untrusted {
                let pause = {
                    let core = lock(&self.shared.core);
                    let next_tick = core.next_tick();
                    if this_tick != next_tick {
                        (this_tick, read) = (next_tick, 0);
                    }
                    (core.initiations_left(port) == Some(0) || read >= UNTRUSTED_PER_TICK)
                        .then_some(next_tick)
                        .flatten()
                };
                if let Some(next_tick) = pause {
                    tracing::trace!(
                        port,
                        "handshake budget of the tick spent; reading again at the next tick"
                    );
                    tokio::time::sleep_until(next_tick.into()).await;
                }
            }
        }
    }

    async fn run_tun(self, tun: Arc<tun_rs::AsyncDevice>, mtu: usize) {
        let mut original = vec![0u8; VIRTIO_NET_HDR_LEN + 65_535];
        let mut bufs = vec![vec![0u8; mtu.max(1500) + 64]; TUN_READ_PACKETS];
        let mut sizes = vec![0usize; TUN_READ_PACKETS];
        loop {
            let mut n = match tun
                .recv_multiple(&mut original, &mut bufs, &mut sizes, 0)
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "TUN read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Take what else is queued while a whole super-packet still fits: bigger GSO
            // batches, one lock and one flush for all of it.
            while TUN_READ_PACKETS - n >= TUN_SEGMENTS_MAX {
                let (Some(b), Some(sz)) = (bufs.get_mut(n..), sizes.get_mut(n..)) else {
                    break;
                };
                match tun.try_recv_multiple(&mut original, b, sz, 0) {
                    Ok(more) => n += more,
                    Err(_) => break,
                }
            }
            let out = {
                let mut core = lock(&self.shared.core);
                let now = Instant::now();
                for (b, len) in bufs.iter().zip(&sizes).take(n) {
                    core.handle_tun(b.get(..*len).unwrap_or_default(), now);
                }
                drain(&mut core)
            };
            self.flush(out).await;
        }
    }

    async fn run_timer(self) {
        loop {
            let deadline = lock(&self.shared.core)
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                () = self.shared.timer_wake.notified() => continue,
            }
            let out = {
                let mut core = lock(&self.shared.core);
                core.handle_timeout(Instant::now());
                drain(&mut core)
            };
            self.flush(out).await;
        }
    }
}
