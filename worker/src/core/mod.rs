//! The sans-IO data plane: every gateway's tunnels, cryptokey routing and forwarding.
//!
//! No sockets, no TUN, no clock: the caller feeds datagrams ([`Core::handle_network`]), packets
//! from the VNet side ([`Core::handle_tun`]) and time ([`Core::handle_timeout`], with `now`
//! passed into every call), and drains what the core wants done ([`Core::poll_transmit`],
//! [`Core::poll_tun`], [`Core::poll_event`], [`Core::poll_timeout`]), in the style of firezone's
//! `snownet::Node`.
//!
//! Each gateway owns one UDP port and one `boringtun::noise::Tunn` per peer. Incoming datagrams
//! are demultiplexed by port (the gateway), then by the handshake's static key or the message's
//! receiver index (the peer). boringtun does not check allowed IPs, so the core drops decrypted
//! packets whose source is outside the peer's allowed IPs (cryptokey routing), then forwards by
//! the gateway's longest-prefix-match table built from the desired routes.
//!
//! boringtun 0.7.1 keeps its protocol timers (rekey, handshake retry, session expiry) on its own
//! monotonic clock; everything the core decides itself (S2S-2 idle teardown, the LIM-4 token
//! bucket, when to run boringtun's timers, status timestamps) uses the `now` it is given.
//!
//! LIM-6: every VNet-to-VNet peer carries its region pair in the desired state; the core counts
//! each peer's *outer* bytes (the WireGuard messages it sends to and accepts from the peer, as
//! UDP payloads: data, handshakes, keepalives; without IP/UDP headers) because the encrypted
//! datagrams are what crosses regions. [`Core::status`] sums them per region pair over all peers
//! of all gateways. The sums never go backwards while the process runs: when a peer is removed,
//! its gateway replaced, or its pair changes, its counts move into a per-pair total of retired
//! peers. Same-region pairs are reported too (not billable); site-to-site and point-to-site
//! peers carry no pair and are not counted. The per-connection `rx_bytes`/`tx_bytes` stay inner
//! bytes (the IP packets through the tunnel).

pub mod bucket;
pub mod forward;
pub mod gro;
pub mod mss;
pub mod mtu;
pub mod packet;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use ipnet::IpNet;
use isthmus_shared::desired::{
    ConnectionStatus, DesiredState, DownReason, GatewayDesired, GatewayStatus, PeerDesired,
    RegionPairBytes, StatusReport, TunnelState,
};
use isthmus_shared::lpm::LpmTable;
use isthmus_shared::model::{GatewayType, QualifiedName, RegionPair, TrafficSelector};

use self::bucket::TokenBucket;
use self::forward::{ForwardingTable, Hop, PeerRef};
use self::gro::TunQueue;
use self::mtu::IcmpLimiter;
use self::packet::{MAX_IP_PACKET, PacketError};
use self::state::{Liveness, PeerContext};

/// How often the core runs boringtun's timers and its own.
pub const TICK: Duration = Duration::from_millis(250);
/// Handshakes per second per gateway before boringtun asks for cookies.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// Scratch buffer: the largest packet plus WireGuard's overhead, and at least a handshake.
const BUF_LEN: usize = MAX_IP_PACKET + 256;

/// A datagram the caller must send from the gateway's UDP port; or, with `segment_size`,
/// several to the same destination (see [`Core::set_gso_max_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The gateway's listen port (which socket to send from).
    pub local_port: u16,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
    /// `Some(n)`: `payload` is consecutive datagrams of `n` bytes, the last one possibly
    /// shorter (what UDP GSO sends in one call). `None`: one datagram.
    pub segment_size: Option<usize>,
}

/// Something worth telling the shell (for logs); never carries key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// S2S-2: a policy-based tunnel idled out and was torn down.
    TunnelIdle {
        gateway: QualifiedName,
        peer: String,
    },
    /// A torn-down tunnel is being brought up again because traffic flows.
    TunnelRestarted {
        gateway: QualifiedName,
        peer: String,
    },
    /// The tunnel came up (see [`state`] for when a tunnel is up).
    TunnelUp {
        gateway: QualifiedName,
        peer: String,
        endpoint: Option<SocketAddr>,
    },
    /// A tunnel that was up went down.
    TunnelDown {
        gateway: QualifiedName,
        peer: String,
        endpoint: Option<SocketAddr>,
        reason: DownReason,
    },
    /// Handshakes with the peer fail (`key_mismatch`) or go unanswered (`no_answer`): at most
    /// once per [`state::FAILING_EVERY`] per peer while it lasts.
    HandshakeFailing {
        gateway: QualifiedName,
        peer: String,
        endpoint: Option<SocketAddr>,
        reason: DownReason,
    },
}

/// Packets dropped, by reason. Per gateway, plus worker-wide for packets no gateway owns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Not a WireGuard message at all (wrong type or length).
    pub garbage: u64,
    /// A WireGuard message that failed its MAC, decryption, replay or timestamp checks.
    pub invalid: u64,
    /// A well-formed handshake from a key that is not a peer, or an unknown receiver index.
    pub unknown_peer: u64,
    /// A datagram to a port no gateway listens on.
    pub unknown_port: u64,
    /// Cryptokey routing: an inner packet whose source is outside the peer's allowed IPs.
    pub disallowed_source: u64,
    /// GW-1: a packet that matches no traffic selector of a policy-based tunnel.
    pub policy_mismatch: u64,
    /// No route, or a route that leaves the gateway some other way (GW-8).
    pub no_route: u64,
    /// A packet that would go back where it came from.
    pub loop_dropped: u64,
    /// LIM-4: over the gateway's bandwidth.
    pub rate_limited: u64,
    /// Larger than any IP packet.
    pub oversized: u64,
    /// Not an IPv4/IPv6 packet (from the TUN side).
    pub malformed: u64,
    /// A packet for a roaming peer whose address is not known yet.
    pub no_endpoint: u64,
    /// Larger than the tunnel MTU and not to be fragmented (IPv4 with DF, IPv6): dropped and
    /// answered with ICMP "fragmentation needed" / "packet too big" ([`mtu`]).
    #[serde(default)]
    pub too_big: u64,
    /// ICMP answers to `too_big` packets not sent: over the gateway's rate of
    /// [`mtu::ICMP_PER_SECOND`] (not a packet drop).
    #[serde(default)]
    pub icmp_rate_limited: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.garbage += o.garbage;
        self.invalid += o.invalid;
        self.unknown_peer += o.unknown_peer;
        self.unknown_port += o.unknown_port;
        self.disallowed_source += o.disallowed_source;
        self.policy_mismatch += o.policy_mismatch;
        self.no_route += o.no_route;
        self.loop_dropped += o.loop_dropped;
        self.rate_limited += o.rate_limited;
        self.oversized += o.oversized;
        self.malformed += o.malformed;
        self.no_endpoint += o.no_endpoint;
        self.too_big += o.too_big;
        self.icmp_rate_limited += o.icmp_rate_limited;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        let mut t = Counters::default();
        t.add(self);
        t.garbage
            + t.invalid
            + t.unknown_peer
            + t.unknown_port
            + t.disallowed_source
            + t.policy_mismatch
            + t.no_route
            + t.loop_dropped
            + t.rate_limited
            + t.oversized
            + t.malformed
            + t.no_endpoint
            + t.too_big
    }
}

/// Why part of a desired state was not applied (the rest was). Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("gateway {gateway}: the private key is not 32 bytes of base64; gateway skipped")]
    BadPrivateKey { gateway: QualifiedName },
    #[error("gateway {gateway}: port {port} is already used by gateway {other}; gateway skipped")]
    DuplicatePort {
        gateway: QualifiedName,
        port: u16,
        other: QualifiedName,
    },
    #[error(
        "gateway {gateway}, peer {peer:?}: the public key is not 32 bytes of base64; peer skipped"
    )]
    BadPublicKey {
        gateway: QualifiedName,
        peer: String,
    },
    #[error(
        "gateway {gateway}, peer {peer:?}: the preshared key is not 32 bytes of base64; peer skipped"
    )]
    BadPresharedKey {
        gateway: QualifiedName,
        peer: String,
    },
    #[error("gateway {gateway}, peer {peer:?}: same public key as peer {other:?}; peer skipped")]
    DuplicatePeer {
        gateway: QualifiedName,
        peer: String,
        other: String,
    },
}

/// Where the core sends a packet, by peer name: the routing decision, for inspection and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Vnet,
    Peer(String),
    Drop,
}

/// A peer's state, for status and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    /// Whether the peer has a tunnel (false after an S2S-2 idle teardown, and for a roaming
    /// client until its first handshake).
    pub up: bool,
    /// Whether the tunnel has a current session.
    pub established: bool,
    pub endpoint: Option<SocketAddr>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_handshake: Option<Instant>,
    /// The tunnel's state as the core decides it ([`state`]), its reason, and since when.
    pub state: TunnelState,
    pub reason: Option<DownReason>,
    pub since: Instant,
}

struct Peer {
    id: u32,
    name: String,
    public_key: [u8; 32],
    psk: Option<[u8; 32]>,
    keepalive: Option<u16>,
    /// `None` after an idle teardown (S2S-2), and for a roaming peer (a point-to-site client)
    /// until its first handshake: a `Tunn` costs two X25519 operations and ~10 KB, and most
    /// clients of a large gateway are not connected.
    tunn: Option<Box<Tunn>>,
    /// Whether `tunn` is `None` because of an S2S-2 teardown (its return is worth an event).
    idled: bool,
    endpoint: Option<SocketAddr>,
    configured_endpoint: Option<String>,
    /// The configured endpoint is not an address (a host name the shell did not resolve).
    endpoint_unresolved: bool,
    allowed: LpmTable<()>,
    selectors: Vec<TrafficSelector>,
    idle_timeout: Option<Duration>,
    last_traffic: Instant,
    last_handshake: Option<Instant>,
    rx_bytes: u64,
    tx_bytes: u64,
    /// LIM-6: the region pair of a VNet-to-VNet peer.
    region_pair: Option<RegionPair>,
    /// LIM-6: outer (WireGuard message) bytes accepted from / sent to the peer.
    outer_rx: u64,
    outer_tx: u64,
    /// The tunnel's state and the handshake history it is decided from.
    live: Liveness,
}

/// LIM-6: moves a peer's outer byte counts into the totals of retired peers (the peer is going
/// away or changing its region pair), so the per-pair sums never go backwards.
fn retire_outer(retired: &mut BTreeMap<RegionPair, (u64, u64)>, peer: &mut Peer) {
    if let Some(pair) = &peer.region_pair
        && (peer.outer_rx, peer.outer_tx) != (0, 0)
    {
        let e = retired.entry(pair.clone()).or_default();
        e.0 += peer.outer_rx;
        e.1 += peer.outer_tx;
    }
    peer.outer_rx = 0;
    peer.outer_tx = 0;
}

impl Peer {
    fn info(&self) -> PeerInfo {
        PeerInfo {
            name: self.name.clone(),
            up: self.tunn.is_some(),
            established: self
                .tunn
                .as_ref()
                .is_some_and(|t| t.time_since_last_handshake().is_some()),
            endpoint: self.endpoint,
            rx_bytes: self.rx_bytes,
            tx_bytes: self.tx_bytes,
            last_handshake: self.last_handshake,
            state: self.live.current().0,
            reason: self.live.current().1,
            since: self.live.current().2,
        }
    }

    fn context(&self, silence: Duration) -> PeerContext {
        PeerContext {
            keepalive: self.keepalive.is_some(),
            roaming: self.configured_endpoint.is_none(),
            unresolved: self.endpoint_unresolved,
            endpoint: self.endpoint,
            idled: self.idled,
            until_idle: self.idle_timeout.is_some(),
            silence,
        }
    }

    /// Re-evaluates the tunnel's state at `now` ([`state`]), queueing its events.
    fn refresh(
        &mut self,
        gateway: &QualifiedName,
        silence: Duration,
        now: Instant,
        out: &mut Outputs,
    ) {
        let ctx = self.context(silence);
        self.live
            .refresh(now, &ctx, gateway, &self.name, &mut out.events);
    }
}

struct Gateway {
    key: QualifiedName,
    gateway_type: GatewayType,
    listen_port: u16,
    private_key: StaticSecret,
    public_key: PublicKey,
    rate_limiter: Arc<RateLimiter>,
    peers: BTreeMap<u32, Peer>,
    by_public: BTreeMap<[u8; 32], u32>,
    forwarding: ForwardingTable,
    bucket: TokenBucket,
    counters: Counters,
    last_rl_reset: Instant,
    /// Peers by current endpoint: which peer a failing handshake message is from.
    by_endpoint: BTreeMap<SocketAddr, u32>,
    /// The tunnel MTU ([`mtu`]), the MSS clamp ([`mss`]), and the gateway's own addresses that
    /// ICMP answers come from.
    mtu: usize,
    mss_clamp: bool,
    private_v4: Option<IpAddr>,
    private_v6: Option<IpAddr>,
    icmp: IcmpLimiter,
    /// Scratch buffer of ICMP answers.
    icmp_buf: Vec<u8>,
    /// The liveness window of peers with a keepalive ([`state`]).
    peer_silence: Duration,
}

#[derive(Default)]
struct Outputs {
    transmits: VecDeque<Transmit>,
    tun: TunQueue,
    events: VecDeque<Event>,
    /// 0: one datagram per transmit; otherwise the most bytes a batched transmit holds.
    gso_max: usize,
}

impl Outputs {
    /// Queues datagram `p`, appended to the previous transmit when that one goes to the same
    /// place, `p` is no longer than its segments, and its last segment is full.
    fn transmit(&mut self, local_port: u16, dst: SocketAddr, p: &[u8]) {
        if self.gso_max > 0
            && let Some(last) = self.transmits.back_mut()
            && last.local_port == local_port
            && last.dst == dst
        {
            let seg = last.segment_size.unwrap_or(last.payload.len());
            let full = seg > 0 && last.payload.len() % seg == 0;
            if full && p.len() <= seg && last.payload.len() + p.len() <= self.gso_max {
                if last.segment_size.is_none() {
                    // A batch starts: room for all of it at once (single datagrams, such as
                    // a burst of handshake answers to many peers, stay small).
                    last.payload.reserve(self.gso_max - last.payload.len());
                }
                last.payload.extend_from_slice(p);
                last.segment_size = Some(seg);
                return;
            }
        }
        self.transmits.push_back(Transmit {
            local_port,
            dst,
            payload: p.to_vec(),
            segment_size: None,
        });
    }
}

/// The data plane of every gateway a worker runs.
pub struct Core {
    gateways: BTreeMap<QualifiedName, Gateway>,
    by_port: BTreeMap<u16, QualifiedName>,
    /// VNet prefixes → gateway: which gateway a packet read from the TUN belongs to.
    tun_owner: LpmTable<QualifiedName>,
    version: u64,
    next_index: u32,
    next_tick: Option<Instant>,
    counters: Counters,
    out: Outputs,
    buf: Vec<u8>,
    /// Second scratch buffer: a packet decrypted into `buf` is encrypted into this one when
    /// it transits to another tunnel.
    buf2: Vec<u8>,
    /// LIM-6: outer (rx, tx) bytes of peers no longer running, per region pair.
    retired_pairs: BTreeMap<RegionPair, (u64, u64)>,
    /// The liveness window of peers with a keepalive ([`Core::set_peer_silence`]).
    peer_silence: Duration,
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
    }
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    let v = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    v.try_into().ok()
}

/// Runs `tunn.decapsulate(None, &[])` until it has nothing left: packets boringtun queued while
/// the handshake was in progress. Returns the bytes queued for sending.
fn flush_queued(
    tunn: &mut Tunn,
    local_port: u16,
    dst: SocketAddr,
    buf: &mut [u8],
    out: &mut Outputs,
    live: &mut Liveness,
    now: Instant,
) -> u64 {
    let mut sent = 0;
    // Bounded: boringtun's queue holds at most 256 packets.
    for _ in 0..1024 {
        match tunn.decapsulate(None, &[], buf) {
            TunnResult::WriteToNetwork(p) => {
                sent += p.len() as u64;
                live.sent(p, now);
                out.transmit(local_port, dst, p);
            }
            _ => break,
        }
    }
    sent
}

fn selectors_allow(selectors: &[TrafficSelector], local: IpAddr, remote: IpAddr) -> bool {
    selectors.is_empty()
        || selectors
            .iter()
            .any(|s| s.local.contains(&local) && s.remote.contains(&remote))
}

impl Gateway {
    fn new_tunn(
        &self,
        peer_public: [u8; 32],
        psk: Option<[u8; 32]>,
        keepalive: Option<u16>,
        index: u32,
    ) -> Box<Tunn> {
        // The gateway's limiter has already checked the datagram in `handle_network`; sharing
        // it with the tunnel would count every handshake twice (halving the gateway's rate).
        // Without one, boringtun gives each tunnel its own (10 handshakes per second per peer)
        // and resets it on the tunnel's timers.
        Box::new(Tunn::new(
            self.private_key.clone(),
            PublicKey::from(peer_public),
            psk,
            keepalive,
            index,
            None,
        ))
    }

    /// Sends `packet` (an inner IP packet) into peer `id`'s tunnel; brings an idled-out tunnel
    /// back up (S2S-2).
    fn send_to_peer(
        &mut self,
        id: u32,
        packet: &[u8],
        addrs: packet::Addresses,
        now: Instant,
        buf: &mut [u8],
        out: &mut Outputs,
    ) {
        let Some(peer) = self.peers.get(&id) else {
            self.counters.no_route += 1;
            return;
        };
        if !selectors_allow(&peer.selectors, addrs.src, addrs.dst) {
            self.counters.policy_mismatch += 1;
            tracing::trace!(gateway = %self.key, peer = %peer.name, "no traffic selector matches; dropped");
            return;
        }
        let Some(endpoint) = peer.endpoint else {
            self.counters.no_endpoint += 1;
            return;
        };
        if !self.bucket.take(packet.len(), now) {
            self.counters.rate_limited += 1;
            return;
        }
        let restart = peer
            .tunn
            .is_none()
            .then(|| self.new_tunn(peer.public_key, peer.psk, peer.keepalive, peer.id));
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(t) = restart {
            peer.tunn = Some(t);
            if std::mem::take(&mut peer.idled) {
                out.events.push_back(Event::TunnelRestarted {
                    gateway: self.key.clone(),
                    peer: peer.name.clone(),
                });
            }
        }
        let Some(tunn) = peer.tunn.as_mut() else {
            return;
        };
        peer.tx_bytes += packet.len() as u64;
        peer.last_traffic = now;
        match tunn.encapsulate(packet, buf) {
            TunnResult::WriteToNetwork(p) => {
                peer.outer_tx += p.len() as u64;
                peer.live.sent(p, now);
                out.transmit(self.listen_port, endpoint, p);
            }
            TunnResult::Err(e) => {
                tracing::trace!(gateway = %self.key, peer = %peer.name, error = ?e, "encapsulate failed");
            }
            _ => {}
        }
    }

    /// A decrypted packet from peer `from`: cryptokey routing, MSS clamp, MTU, then forwarding.
    fn forward_from_peer(
        &mut self,
        from: u32,
        inner: &mut [u8],
        now: Instant,
        buf: &mut [u8],
        out: &mut Outputs,
    ) {
        let addrs = match packet::addresses(inner) {
            Ok(a) => a,
            Err(PacketError::Oversized) => {
                self.counters.oversized += 1;
                return;
            }
            Err(PacketError::Malformed) => {
                self.counters.malformed += 1;
                return;
            }
        };
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if peer.allowed.lookup(addrs.src).is_none() {
            self.counters.disallowed_source += 1;
            tracing::trace!(gateway = %self.key, peer = %peer.name, src = %addrs.src, "source outside the peer's allowed IPs; dropped");
            return;
        }
        if !selectors_allow(&peer.selectors, addrs.dst, addrs.src) {
            self.counters.policy_mismatch += 1;
            return;
        }
        let len = inner.len();
        peer.rx_bytes += len as u64;
        peer.last_traffic = now;
        if self.mss_clamp {
            mss::clamp(inner, self.mtu);
        }
        let too_big = len > self.mtu;
        match self.forwarding.lookup(addrs.dst).map(|(_, h)| h) {
            // From a tunnel whose sender's MTU is larger: tell it (DF, IPv6), pass the rest.
            Some(Hop::Vnet) if too_big && !mtu::may_fragment(inner) => {
                self.counters.too_big += 1;
                self.answer_too_big(inner, mtu::Source::Peer(from), now, buf, out);
            }
            Some(Hop::Vnet) => {
                if self.bucket.take(len, now) {
                    out.tun.push(inner);
                } else {
                    self.counters.rate_limited += 1;
                }
            }
            Some(Hop::Peer(q)) if q == from => self.counters.loop_dropped += 1,
            Some(Hop::Peer(q)) if too_big => {
                self.too_big_for_tunnel(q, inner, addrs, mtu::Source::Peer(from), now, buf, out)
            }
            // LIM-5 / P2S-8: transit between two tunnels of the gateway.
            Some(Hop::Peer(q)) => self.send_to_peer(q, inner, addrs, now, buf, out),
            Some(Hop::Drop) | None => {
                self.counters.no_route += 1;
                tracing::trace!(gateway = %self.key, dst = %addrs.dst, "no route into a tunnel or the VNet; dropped");
            }
        }
    }

    fn tick(&mut self, now: Instant, buf: &mut [u8], out: &mut Outputs) {
        if now.saturating_duration_since(self.last_rl_reset) >= Duration::from_secs(1) {
            self.rate_limiter.reset_count();
            self.last_rl_reset = now;
        }
        for peer in self.peers.values_mut() {
            let Some(tunn) = peer.tunn.as_mut() else {
                peer.refresh(&self.key, self.peer_silence, now, out);
                continue;
            };
            if let Some(d) = tunn.time_since_last_handshake() {
                peer.last_handshake = now.checked_sub(d).or(Some(now));
            }
            if let Some(idle) = peer.idle_timeout
                && now.saturating_duration_since(peer.last_traffic) >= idle
            {
                peer.tunn = None;
                peer.idled = true;
                // The shell logs it (S2S-2).
                out.events.push_back(Event::TunnelIdle {
                    gateway: self.key.clone(),
                    peer: peer.name.clone(),
                });
                peer.refresh(&self.key, self.peer_silence, now, out);
                continue;
            }
            match tunn.update_timers(buf) {
                TunnResult::WriteToNetwork(p) => {
                    if let Some(dst) = peer.endpoint {
                        peer.outer_tx += p.len() as u64;
                        peer.live.sent(p, now);
                        out.transmit(self.listen_port, dst, p);
                    }
                }
                TunnResult::Err(WireGuardError::ConnectionExpired) => {}
                TunnResult::Err(e) => {
                    tracing::trace!(gateway = %self.key, peer = %peer.name, error = ?e, "timer error");
                }
                _ => {}
            }
            peer.refresh(&self.key, self.peer_silence, now, out);
        }
    }
}

impl Core {
    /// An empty core: no gateways.
    pub fn new() -> Self {
        Self {
            gateways: BTreeMap::new(),
            by_port: BTreeMap::new(),
            tun_owner: LpmTable::new(),
            version: 0,
            next_index: 1,
            next_tick: None,
            counters: Counters::default(),
            out: Outputs::default(),
            buf: vec![0; BUF_LEN],
            buf2: vec![0; BUF_LEN],
            retired_pairs: BTreeMap::new(),
            peer_silence: state::DEFAULT_PEER_SILENCE,
        }
    }

    /// How long a peer with a persistent keepalive may stay silent before its tunnel is no
    /// longer `up` ([`state`]; default [`state::DEFAULT_PEER_SILENCE`], 65 s). Tests shorten it.
    pub fn set_peer_silence(&mut self, silence: Duration) {
        self.peer_silence = silence;
        for g in self.gateways.values_mut() {
            g.peer_silence = silence;
        }
    }

    fn alloc_index(&mut self) -> u32 {
        let i = self.next_index;
        // Tunn indices are 24 bits (boringtun shifts them left by 8).
        self.next_index = (self.next_index % 0x00ff_ffff) + 1;
        i
    }

    /// The desired-state generation applied last.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The UDP ports the gateways listen on.
    pub fn listen_ports(&self) -> BTreeSet<u16> {
        self.by_port.keys().copied().collect()
    }

    /// Applies a desired state (hot reconfiguration). Gateways and peers not in `desired` are
    /// removed at once; a peer with the same public key and preshared key (and keepalive) on a
    /// gateway with the same private key keeps its tunnel and session. Parts that cannot be
    /// applied are skipped and returned; the rest is applied.
    pub fn apply(&mut self, desired: &DesiredState, now: Instant) -> Vec<ApplyError> {
        let mut errors = Vec::new();
        let mut old = std::mem::take(&mut self.gateways);
        let mut new: BTreeMap<QualifiedName, Gateway> = BTreeMap::new();
        let mut ports: BTreeMap<u16, QualifiedName> = BTreeMap::new();
        for g in &desired.gateways {
            let key = QualifiedName::new(&g.tenant, &g.name);
            if let Some(other) = ports.get(&g.listen_port) {
                errors.push(ApplyError::DuplicatePort {
                    gateway: key,
                    port: g.listen_port,
                    other: other.clone(),
                });
                continue;
            }
            let Some(sk) = decode32(g.private_key.expose()) else {
                errors.push(ApplyError::BadPrivateKey { gateway: key });
                continue;
            };
            let gw = match old.remove(&key) {
                Some(o) if o.private_key.to_bytes() == sk => o,
                replaced => {
                    if let Some(mut o) = replaced {
                        for p in o.peers.values_mut() {
                            retire_outer(&mut self.retired_pairs, p);
                        }
                    }
                    let private_key = StaticSecret::from(sk);
                    let public_key = PublicKey::from(&private_key);
                    Gateway {
                        key: key.clone(),
                        gateway_type: g.gateway_type,
                        listen_port: g.listen_port,
                        rate_limiter: Arc::new(RateLimiter::new(&public_key, HANDSHAKE_RATE_LIMIT)),
                        private_key,
                        public_key,
                        peers: BTreeMap::new(),
                        by_public: BTreeMap::new(),
                        forwarding: ForwardingTable::default(),
                        bucket: TokenBucket::new(g.bandwidth_limit_bps),
                        counters: Counters::default(),
                        last_rl_reset: now,
                        by_endpoint: BTreeMap::new(),
                        mtu: usize::from(g.tunnel_mtu),
                        mss_clamp: g.mss_clamp,
                        private_v4: None,
                        private_v6: None,
                        icmp: IcmpLimiter::default(),
                        icmp_buf: Vec::new(),
                        peer_silence: self.peer_silence,
                    }
                }
            };
            let gw = self.reconfigure(gw, g, now, &mut errors);
            ports.insert(g.listen_port, key.clone());
            new.insert(key, gw);
        }
        for (key, mut g) in old {
            for p in g.peers.values_mut() {
                retire_outer(&mut self.retired_pairs, p);
            }
            tracing::info!(gateway = %key, "gateway removed");
        }
        self.gateways = new;
        self.by_port = ports;
        self.tun_owner = self
            .gateways
            .iter()
            .flat_map(|(k, g)| g.forwarding.vnet_prefixes().iter().map(|p| (*p, k.clone())))
            .collect();
        self.version = desired.version;
        if self.next_tick.is_none() {
            self.next_tick = Some(now);
        }
        errors
    }

    fn reconfigure(
        &mut self,
        mut gw: Gateway,
        g: &GatewayDesired,
        now: Instant,
        errors: &mut Vec<ApplyError>,
    ) -> Gateway {
        gw.gateway_type = g.gateway_type;
        gw.listen_port = g.listen_port;
        gw.mtu = usize::from(g.tunnel_mtu);
        gw.mss_clamp = g.mss_clamp;
        gw.private_v4 = g.private_address.filter(IpAddr::is_ipv4);
        gw.private_v6 = g.private_address.filter(IpAddr::is_ipv6);
        gw.peer_silence = self.peer_silence;
        if gw.bucket.bits_per_second() != g.bandwidth_limit_bps / 8 * 8 {
            gw.bucket = TokenBucket::new(g.bandwidth_limit_bps);
        }
        let mut old_peers = std::mem::take(&mut gw.peers);
        let old_by_public = std::mem::take(&mut gw.by_public);
        let mut refs: BTreeMap<PeerRef, u32> = BTreeMap::new();
        for p in &g.peers {
            let Some(pk) = decode32(&p.public_key) else {
                errors.push(ApplyError::BadPublicKey {
                    gateway: gw.key.clone(),
                    peer: p.name.clone(),
                });
                continue;
            };
            let psk = match &p.preshared_key {
                None => None,
                Some(s) => match decode32(s.expose()) {
                    Some(k) => Some(k),
                    None => {
                        errors.push(ApplyError::BadPresharedKey {
                            gateway: gw.key.clone(),
                            peer: p.name.clone(),
                        });
                        continue;
                    }
                },
            };
            if let Some(other) = gw.by_public.get(&pk).and_then(|id| gw.peers.get(id)) {
                errors.push(ApplyError::DuplicatePeer {
                    gateway: gw.key.clone(),
                    peer: p.name.clone(),
                    other: other.name.clone(),
                });
                continue;
            }
            let kept = old_by_public
                .get(&pk)
                .and_then(|id| old_peers.remove(id))
                .filter(|o| o.psk == psk && o.keepalive == p.persistent_keepalive_secs);
            let peer = match kept {
                Some(mut o) => {
                    if o.region_pair != p.region_pair {
                        retire_outer(&mut self.retired_pairs, &mut o);
                    }
                    update_peer(&mut o, p);
                    o
                }
                None => {
                    let id = self.alloc_index();
                    // A peer with no endpoint (a roaming client) gets its tunnel when it
                    // handshakes; one we can reach gets it now.
                    let tunn = p
                        .endpoint
                        .is_some()
                        .then(|| gw.new_tunn(pk, psk, p.persistent_keepalive_secs, id));
                    let mut peer = Peer {
                        id,
                        name: p.name.clone(),
                        public_key: pk,
                        psk,
                        keepalive: p.persistent_keepalive_secs,
                        tunn,
                        idled: false,
                        endpoint: None,
                        configured_endpoint: None,
                        endpoint_unresolved: false,
                        allowed: LpmTable::new(),
                        selectors: Vec::new(),
                        idle_timeout: None,
                        last_traffic: now,
                        last_handshake: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                        region_pair: None,
                        outer_rx: 0,
                        outer_tx: 0,
                        live: Liveness::new(now),
                    };
                    update_peer(&mut peer, p);
                    // Tunnels that must stay up (a keepalive is set) start their handshake now.
                    if let (Some(_), Some(dst), Some(tunn)) =
                        (peer.keepalive, peer.endpoint, peer.tunn.as_mut())
                        && let TunnResult::WriteToNetwork(pkt) =
                            tunn.format_handshake_initiation(&mut self.buf, false)
                    {
                        peer.outer_tx += pkt.len() as u64;
                        peer.live.sent(pkt, now);
                        self.out.transmit(g.listen_port, dst, pkt);
                    }
                    peer.refresh(&gw.key, self.peer_silence, now, &mut self.out);
                    peer
                }
            };
            refs.insert(PeerRef::of_peer(p), peer.id);
            gw.by_public.insert(pk, peer.id);
            gw.peers.insert(peer.id, peer);
        }
        for (_, mut p) in old_peers {
            retire_outer(&mut self.retired_pairs, &mut p);
            tracing::info!(gateway = %gw.key, peer = %p.name, "peer removed");
        }
        gw.forwarding = ForwardingTable::build(&g.routes, &refs);
        gw.by_endpoint = gw
            .peers
            .values()
            .filter_map(|p| Some((p.endpoint?, p.id)))
            .collect();
        gw
    }

    /// A datagram from `src` arrived on UDP port `local_port`.
    pub fn handle_network(
        &mut self,
        local_port: u16,
        src: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) {
        let Core {
            gateways,
            by_port,
            counters,
            out,
            buf,
            buf2,
            ..
        } = self;
        if datagram.len() > MAX_IP_PACKET {
            counters.oversized += 1;
            return;
        }
        let Some(gw) = by_port.get(&local_port).and_then(|k| gateways.get_mut(k)) else {
            counters.unknown_port += 1;
            return;
        };
        let packet = match gw.rate_limiter.verify_packet(Some(src.ip()), datagram, buf) {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(cookie)) => {
                out.transmit(local_port, src, cookie);
                return;
            }
            Err(TunnResult::Err(WireGuardError::InvalidPacket)) | Err(_) if datagram.len() < 4 => {
                gw.counters.garbage += 1;
                return;
            }
            Err(TunnResult::Err(WireGuardError::InvalidPacket)) => {
                gw.counters.garbage += 1;
                tracing::trace!(gateway = %gw.key, %src, "not a WireGuard message; dropped");
                return;
            }
            Err(_) => {
                gw.counters.invalid += 1;
                gw.handshake_failed(src, datagram, now, out);
                tracing::trace!(gateway = %gw.key, %src, "WireGuard message failed its checks; dropped");
                return;
            }
        };
        let (id, roams) = match &packet {
            Packet::HandshakeInit(p) => {
                match parse_handshake_anon(&gw.private_key, &gw.public_key, p) {
                    Ok(hh) => match gw.by_public.get(&hh.peer_static_public) {
                        Some(id) => (*id, true),
                        None => {
                            gw.counters.unknown_peer += 1;
                            gw.handshake_failed(src, datagram, now, out);
                            tracing::trace!(gateway = %gw.key, %src, "handshake from a key that is not a peer; dropped");
                            return;
                        }
                    },
                    Err(_) => {
                        gw.counters.invalid += 1;
                        gw.handshake_failed(src, datagram, now, out);
                        return;
                    }
                }
            }
            Packet::HandshakeResponse(p) => (p.receiver_idx >> 8, true),
            Packet::PacketCookieReply(p) => (p.receiver_idx >> 8, false),
            Packet::PacketData(p) => (p.receiver_idx >> 8, true),
        };
        // The WireGuard message type (verified: 1 initiation, 2 response, 3 cookie, 4 data).
        let kind = datagram[0];
        let is_init = kind == 1;
        let Some(peer) = gw.peers.get(&id) else {
            gw.counters.unknown_peer += 1;
            return;
        };
        if peer.tunn.is_none() {
            if !is_init {
                // A message for a session torn down by S2S-2: the device will handshake again.
                gw.counters.unknown_peer += 1;
                return;
            }
            let t = gw.new_tunn(peer.public_key, peer.psk, peer.keepalive, peer.id);
            let name = peer.name.clone();
            let mut idled = false;
            if let Some(peer) = gw.peers.get_mut(&id) {
                peer.tunn = Some(t);
                peer.last_traffic = now;
                idled = std::mem::take(&mut peer.idled);
            }
            if idled {
                out.events.push_back(Event::TunnelRestarted {
                    gateway: gw.key.clone(),
                    peer: name,
                });
            }
        }
        let listen_port = gw.listen_port;
        let Some(peer) = gw.peers.get_mut(&id) else {
            return;
        };
        let Some(tunn) = peer.tunn.as_mut() else {
            return;
        };
        let inner = match tunn.decapsulate(Some(src.ip()), datagram, buf) {
            TunnResult::Err(e) => {
                gw.counters.invalid += 1;
                tracing::trace!(gateway = %gw.key, peer = %peer.name, error = ?e, "WireGuard message rejected");
                // A handshake message of the peer that does not decrypt: its keys (or the
                // preshared key) are not this connection's. Replays and stale responses are not.
                if matches!(kind, 1 | 2)
                    && matches!(
                        e,
                        WireGuardError::InvalidMac
                            | WireGuardError::InvalidAeadTag
                            | WireGuardError::WrongKey
                    )
                {
                    peer.live.key_failed(now);
                    peer.refresh(&gw.key, gw.peer_silence, now, out);
                }
                return;
            }
            TunnResult::Done => None,
            TunnResult::WriteToNetwork(p) => {
                peer.outer_tx += p.len() as u64;
                peer.live.sent(p, now);
                out.transmit(local_port, src, p);
                peer.outer_tx +=
                    flush_queued(tunn, listen_port, src, buf, out, &mut peer.live, now);
                None
            }
            TunnResult::WriteToTunnelV4(p, _) | TunnResult::WriteToTunnelV6(p, _) => Some(p),
        };
        peer.outer_rx += datagram.len() as u64;
        match kind {
            1 => peer.live.initiation_answered(now),
            2 => peer.live.response_accepted(now),
            4 => peer.live.data_received(now),
            _ => {}
        }
        if roams && peer.endpoint != Some(src) {
            tracing::debug!(gateway = %gw.key, peer = %peer.name, "peer endpoint updated");
            if let Some(old) = peer.endpoint
                && gw.by_endpoint.get(&old) == Some(&id)
            {
                gw.by_endpoint.remove(&old);
            }
            gw.by_endpoint.insert(src, id);
            peer.endpoint = Some(src);
        }
        if let Some(d) = tunn.time_since_last_handshake() {
            peer.last_handshake = now.checked_sub(d).or(Some(now));
        }
        // Handshakes change the state; data only when the tunnel was not up (it came back).
        if kind != 4 || peer.live.current().0 != TunnelState::Up {
            peer.refresh(&gw.key, gw.peer_silence, now, out);
        }
        if let Some(inner) = inner {
            gw.forward_from_peer(id, inner, now, buf2, out);
        }
    }

    /// An IP packet read from the TUN device (the VNet side).
    pub fn handle_tun(&mut self, packet: &[u8], now: Instant) {
        let Core {
            gateways,
            tun_owner,
            counters,
            out,
            buf,
            buf2,
            ..
        } = self;
        let addrs = match packet::addresses(packet) {
            Ok(a) => a,
            Err(PacketError::Oversized) => {
                counters.oversized += 1;
                return;
            }
            Err(PacketError::Malformed) => {
                counters.malformed += 1;
                return;
            }
        };
        let Some(gw) = tun_owner
            .lookup(addrs.src)
            .and_then(|(_, k)| gateways.get_mut(k))
        else {
            counters.no_route += 1;
            tracing::trace!(src = %addrs.src, "TUN packet from outside every VNet; dropped");
            return;
        };
        match gw.forwarding.lookup(addrs.dst).map(|(_, h)| h) {
            Some(Hop::Peer(q)) => {
                // A SYN is clamped in a copy (the shell's buffer is not ours to change).
                let packet: &[u8] = match buf2.get_mut(..packet.len()) {
                    Some(copy) if gw.mss_clamp && mss::is_tcp_syn(packet).is_some() => {
                        copy.copy_from_slice(packet);
                        mss::clamp(copy, gw.mtu);
                        copy
                    }
                    _ => packet,
                };
                if packet.len() > gw.mtu {
                    gw.too_big_for_tunnel(q, packet, addrs, mtu::Source::Vnet, now, buf, out);
                } else {
                    gw.send_to_peer(q, packet, addrs, now, buf, out);
                }
            }
            Some(Hop::Vnet) => gw.counters.loop_dropped += 1,
            Some(Hop::Drop) | None => gw.counters.no_route += 1,
        }
    }

    /// Runs timers due at `now`: boringtun's handshake/keepalive timers, S2S-2 idle teardown,
    /// the handshake rate limiter.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        let Core {
            gateways, out, buf, ..
        } = self;
        for gw in gateways.values_mut() {
            gw.tick(now, buf, out);
        }
        self.next_tick = Some(now + TICK);
    }

    /// When [`Core::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// Lets [`Core::poll_transmit`] return batches: consecutive datagrams to one destination,
    /// of one size (the last may be shorter), up to `bytes` in all, in one [`Transmit`] with
    /// `segment_size` set, for a shell that sends them with UDP GSO. 0 (the default): one
    /// datagram per transmit.
    pub fn set_gso_max_bytes(&mut self, bytes: usize) {
        self.out.gso_max = bytes;
    }

    /// TUN offload (see [`gro`]): every packet [`Core::poll_tun`] returns starts with a
    /// virtio-net header ([`gro::VNET_HDR_LEN`] bytes), and consecutive TCP segments of one
    /// flow come out coalesced into one super-packet, for a shell whose TUN device was opened
    /// with `IFF_VNET_HDR`. Off by default: plain IP packets.
    pub fn set_tun_offload(&mut self, on: bool) {
        self.out.tun.set_offload(on);
    }

    /// The next packet to write to the TUN device (see [`Core::set_tun_offload`]).
    pub fn poll_tun(&mut self) -> Option<Vec<u8>> {
        self.out.tun.pop()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// Drop counters of the whole worker.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        for g in self.gateways.values() {
            c.add(&g.counters);
        }
        c
    }

    /// Drop counters of one gateway.
    pub fn gateway_counters(&self, gateway: &QualifiedName) -> Option<Counters> {
        self.gateways.get(gateway).map(|g| g.counters)
    }

    /// A gateway's public key (base64), as a device must configure it.
    pub fn public_key(&self, gateway: &QualifiedName) -> Option<String> {
        self.gateways
            .get(gateway)
            .map(|g| base64::engine::general_purpose::STANDARD.encode(g.public_key.as_bytes()))
    }

    /// A gateway's type.
    pub fn gateway_type(&self, gateway: &QualifiedName) -> Option<GatewayType> {
        self.gateways.get(gateway).map(|g| g.gateway_type)
    }

    /// One peer's state, by name.
    pub fn peer(&self, gateway: &QualifiedName, name: &str) -> Option<PeerInfo> {
        let g = self.gateways.get(gateway)?;
        g.peers.values().find(|p| p.name == name).map(Peer::info)
    }

    /// The gateways, by name.
    pub fn gateway_names(&self) -> Vec<QualifiedName> {
        self.gateways.keys().cloned().collect()
    }

    /// Every peer of a gateway, in the order of their receiver indices.
    pub fn peers(&self, gateway: &QualifiedName) -> Vec<PeerInfo> {
        self.gateways
            .get(gateway)
            .map(|g| g.peers.values().map(Peer::info).collect())
            .unwrap_or_default()
    }

    /// Where a packet from the VNet side to `dst` would go (the routing decision only:
    /// selectors, allowed IPs and the bandwidth cap are applied when a packet is forwarded).
    pub fn decide(&self, gateway: &QualifiedName, dst: IpAddr) -> Decision {
        let Some(g) = self.gateways.get(gateway) else {
            return Decision::Drop;
        };
        match g.forwarding.lookup(dst).map(|(_, h)| h) {
            Some(Hop::Vnet) => Decision::Vnet,
            Some(Hop::Peer(id)) => g
                .peers
                .get(&id)
                .map_or(Decision::Drop, |p| Decision::Peer(p.name.clone())),
            Some(Hop::Drop) | None => Decision::Drop,
        }
    }

    /// The prefix that decides `dst` on `gateway`, if any.
    pub fn matched_prefix(&self, gateway: &QualifiedName, dst: IpAddr) -> Option<IpNet> {
        self.gateways
            .get(gateway)?
            .forwarding
            .lookup(dst)
            .map(|(p, _)| p)
    }

    /// The status report: `now` and `wall` are the same moment on the monotonic and the wall
    /// clock (handshake times are converted to Unix seconds through them).
    pub fn status(&self, now: Instant, wall: SystemTime) -> StatusReport {
        let unix = |t: Instant| -> Option<u64> {
            let ago = now.saturating_duration_since(t);
            wall.checked_sub(ago)?
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs())
        };
        StatusReport {
            version: self.version,
            gateways: self
                .gateways
                .values()
                .map(|g| GatewayStatus {
                    tenant: g.key.tenant.clone(),
                    name: g.key.name.clone(),
                    connections: g
                        .peers
                        .values()
                        .map(|p| {
                            let (state, reason, since) = p.live.current();
                            ConnectionStatus {
                                name: p.name.clone(),
                                last_handshake_unix: p.last_handshake.and_then(unix),
                                rx_bytes: p.rx_bytes,
                                tx_bytes: p.tx_bytes,
                                endpoint: p.endpoint.map(|e| e.to_string()),
                                state,
                                since_unix: unix(since),
                                reason,
                            }
                        })
                        .collect(),
                    route_conflicts: Vec::new(),
                })
                .collect(),
            region_pairs: self.region_pairs(),
        }
    }

    /// LIM-6: outer bytes per region pair since the core was created, over all VNet-to-VNet
    /// peers of all gateways (current and removed), sorted by pair.
    pub fn region_pairs(&self) -> Vec<RegionPairBytes> {
        let mut sums = self.retired_pairs.clone();
        for p in self.gateways.values().flat_map(|g| g.peers.values()) {
            if let Some(pair) = &p.region_pair {
                let e = sums.entry(pair.clone()).or_default();
                e.0 += p.outer_rx;
                e.1 += p.outer_tx;
            }
        }
        sums.into_iter()
            .map(|(pair, (rx_bytes, tx_bytes))| RegionPairBytes {
                a: pair.a,
                b: pair.b,
                rx_bytes,
                tx_bytes,
            })
            .collect()
    }
}

fn update_peer(peer: &mut Peer, p: &PeerDesired) {
    peer.name = p.name.clone();
    peer.region_pair = p.region_pair.clone();
    peer.allowed = p.allowed_ips.iter().map(|n| (*n, ())).collect();
    peer.selectors = p.policy_selectors.clone();
    peer.idle_timeout = p
        .idle_timeout_secs
        .map(|s| Duration::from_secs(u64::from(s)));
    if peer.configured_endpoint != p.endpoint {
        peer.configured_endpoint = p.endpoint.clone();
        let parsed = p.endpoint.as_deref().map(str::parse::<SocketAddr>);
        peer.endpoint_unresolved = matches!(parsed, Some(Err(_)));
        match parsed {
            Some(Ok(a)) => peer.endpoint = Some(a),
            Some(Err(_)) => {
                tracing::warn!(peer = %p.name, endpoint = ?p.endpoint, "peer endpoint is not an address:port (host names must be resolved by the shell); waiting for the peer to connect");
            }
            None => {}
        }
    }
}
