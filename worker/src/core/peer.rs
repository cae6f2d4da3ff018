//! A gateway and its peers, and the per-packet paths: a datagram of a peer into its tunnel and
//! out to the VNet or another tunnel ([`Gateway::receive`], [`Gateway::forward_from_peer`]), a
//! packet into a peer's tunnel ([`Gateway::send_to_peer`]), and the timers ([`Gateway::tick`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use isthmus_shared::desired::TunnelState;
use isthmus_shared::lpm::LpmTable;
use isthmus_shared::model::{GatewayType, QualifiedName, RegionPair, TrafficSelector};

use super::bucket::TokenBucket;
use super::demux::Demuxed;
use super::failover::Failover;
use super::forward::{ForwardingTable, Hop};
use super::metering::Counters;
use super::mtu::{self, IcmpLimiter};
use super::packet::{self, PacketError};
use super::state::{Liveness, PeerContext};
use super::types::{Event, PeerInfo};
use super::{Outputs, mss};

pub(super) struct Peer {
    pub(super) id: u32,
    pub(super) name: String,
    pub(super) public_key: [u8; 32],
    pub(super) psk: Option<[u8; 32]>,
    pub(super) keepalive: Option<u16>,
    /// `None` after an idle teardown (S2S-2), and for a roaming peer (a point-to-site client)
    /// until its first handshake: a `Tunn` costs two X25519 operations and ~10 KB, and most
    /// clients of a large gateway are not connected.
    pub(super) tunn: Option<Box<Tunn>>,
    /// Whether `tunn` is `None` because of an S2S-2 teardown (its return is worth an event).
    pub(super) idled: bool,
    pub(super) endpoint: Option<SocketAddr>,
    pub(super) configured_endpoint: Option<String>,
    /// Issue 16: a roaming peer's endpoint as the active instance reported it to the server
    /// (`PeerDesired::last_endpoint`): where an instance that takes over initiates.
    pub(super) last_endpoint: Option<SocketAddr>,
    /// Issue 16 item 6: the tunnel runs on every instance, the standby included
    /// (`PeerDesired::on_every_instance`: a site of an active-active gateway).
    pub(super) on_every_instance: bool,
    /// The configured endpoint is not an address (a host name the shell did not resolve).
    pub(super) endpoint_unresolved: bool,
    pub(super) allowed: LpmTable<()>,
    pub(super) selectors: Vec<TrafficSelector>,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) last_traffic: Instant,
    pub(super) last_handshake: Option<Instant>,
    pub(super) rx_bytes: u64,
    pub(super) tx_bytes: u64,
    /// LIM-6: the region pair of a VNet-to-VNet peer.
    pub(super) region_pair: Option<RegionPair>,
    /// LIM-6: outer (WireGuard message) bytes accepted from / sent to the peer.
    pub(super) outer_rx: u64,
    pub(super) outer_tx: u64,
    /// The tunnel's state and the handshake history it is decided from.
    pub(super) live: Liveness,
    /// Issue 16: the takeover handshake not yet answered, retransmitted on the core's clock
    /// ([`Takeover`]) instead of after boringtun's 5 s retry.
    pub(super) takeover: Option<Takeover>,
    /// Issue 17: an IPsec peer's tunnel (then `tunn` stays `None`).
    pub(super) ipsec: Option<Box<super::ipsec::Tunnel>>,
}

/// A takeover's handshake initiation awaiting its answer. One lost initiation (a peer whose
/// socket overflows under the old active's traffic during a drain, say) would otherwise cost
/// boringtun's 5 s retry; the new active resends after [`Takeover::FIRST_RETRY`], doubling,
/// [`Takeover::TRIES`] times, then leaves it to boringtun.
#[derive(Debug, Clone, Copy)]
pub(super) struct Takeover {
    /// When the instance became active: a handshake after it answers.
    pub(super) since: Instant,
    /// When to resend.
    pub(super) next: Instant,
    /// Resent so far.
    pub(super) tries: u8,
}

impl Takeover {
    /// The first resend, long enough for most round trips to a device.
    pub(super) const FIRST_RETRY: Duration = Duration::from_millis(200);
    /// Resends at most (200, 400, 800, 1600 ms: the last 3 s after the takeover).
    pub(super) const TRIES: u8 = 4;

    pub(super) fn new(now: Instant) -> Self {
        Self {
            since: now,
            next: now + Self::FIRST_RETRY,
            tries: 0,
        }
    }
}

impl Peer {
    pub(super) fn info(&self) -> PeerInfo {
        let (up, established) = match &self.ipsec {
            Some(t) => (!t.is_idle(), self.live.current().0 == TunnelState::Up),
            None => (
                self.tunn.is_some(),
                self.tunn
                    .as_ref()
                    .is_some_and(|t| t.time_since_last_handshake().is_some()),
            ),
        };
        PeerInfo {
            name: self.name.clone(),
            up,
            established,
            endpoint: self.endpoint,
            rx_bytes: self.rx_bytes,
            tx_bytes: self.tx_bytes,
            last_handshake: self.last_handshake,
            state: self.live.current().0,
            reason: self.live.current().1,
            since: self.live.current().2,
        }
    }

    pub(super) fn context(&self, silence: Duration) -> PeerContext {
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
    /// Sends a new handshake initiation to `dst` from gateway port `port`, forced: a handshake
    /// still in progress is replaced (issue 16: the takeover's, and its resends). Whether one
    /// went out.
    pub(super) fn initiate(
        &mut self,
        port: u16,
        dst: SocketAddr,
        now: Instant,
        buf: &mut [u8],
        out: &mut Outputs,
    ) -> bool {
        let Some(tunn) = self.tunn.as_mut() else {
            return false;
        };
        let TunnResult::WriteToNetwork(pkt) = tunn.format_handshake_initiation(buf, true) else {
            return false;
        };
        self.outer_tx += pkt.len() as u64;
        self.live.sent(pkt, now);
        out.transmit(port, dst, pkt);
        true
    }

    pub(super) fn refresh(
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

pub(super) struct Gateway {
    pub(super) key: QualifiedName,
    pub(super) gateway_type: GatewayType,
    pub(super) listen_port: u16,
    pub(super) private_key: StaticSecret,
    pub(super) public_key: PublicKey,
    pub(super) rate_limiter: Arc<RateLimiter>,
    pub(super) peers: BTreeMap<u32, Peer>,
    pub(super) by_public: BTreeMap<[u8; 32], u32>,
    pub(super) forwarding: ForwardingTable,
    pub(super) bucket: TokenBucket,
    pub(super) counters: Counters,
    pub(super) last_rl_reset: Instant,
    /// Handshake messages seen since `last_rl_reset` with a valid MAC1 (the limiter's count,
    /// on the core's clock): at [`HANDSHAKE_RATE_LIMIT`](super::HANDSHAKE_RATE_LIMIT) the
    /// gateway is under load and asks for cookies.
    pub(super) handshakes_this_second: u64,
    /// What is left of this tick's budgets ([`super::HANDSHAKES_PER_TICK`]).
    pub(super) budget: HandshakeBudget,
    /// Peers by current endpoint: which peer a failing handshake message is from.
    pub(super) by_endpoint: BTreeMap<SocketAddr, u32>,
    /// The tunnel MTU ([`mtu`]), the MSS clamp ([`mss`]), and the gateway's own addresses that
    /// ICMP answers come from.
    pub(super) mtu: usize,
    pub(super) mss_clamp: bool,
    pub(super) private_v4: Option<IpAddr>,
    pub(super) private_v6: Option<IpAddr>,
    pub(super) icmp: IcmpLimiter,
    /// Scratch buffer of ICMP answers.
    pub(super) icmp_buf: Vec<u8>,
    /// The liveness window of peers with a keepalive ([`state`]).
    pub(super) peer_silence: Duration,
    /// Issue 16: this worker's instance of a redundant gateway (`None`: not redundant, always
    /// active).
    pub(super) failover: Option<Failover>,
    /// Issue 16: the desired state's `handover` flag as last applied.
    pub(super) handover_wanted: bool,
    /// Issue 16: a new instance the server designated active waits until it has heard its
    /// partner (or one heartbeat interval passed) before it serves: a worker restarted with
    /// a stale term would otherwise answer and initiate for a moment beside the instance that
    /// took over meanwhile, and pull peers away from it.
    pub(super) probation_until: Option<std::time::Instant>,
    /// Issue 16 item 6: some peer runs on every instance ([`Peer::on_every_instance`]), so a
    /// standby still reads the gateway's port (and serves only those peers).
    pub(super) serves_on_standby: bool,
    /// Issue 16: the role the data plane last acted on (sessions, handshakes): active unless
    /// the instance is the standby.
    pub(super) acted_active: bool,
    /// Issue 17: inbound ESP SPIs → IPsec peer, our IKE SPIs → IPsec peer, device address →
    /// IPsec peer ([`super::ipsec`]).
    pub(super) esp_in: BTreeMap<u32, u32>,
    pub(super) ike_in: BTreeMap<u64, u32>,
    pub(super) ipsec_by_ip: BTreeMap<IpAddr, u32>,
}

/// Which handshake message a datagram is, by type and length: `Some(1)` an initiation,
/// `Some(2)` a response.
pub(super) fn handshake_kind(datagram: &[u8]) -> Option<u8> {
    match (datagram.first(), datagram.len()) {
        (Some(1), 148) => Some(1),
        (Some(2), 92) => Some(2),
        _ => None,
    }
}

/// One tick's handshake work a gateway may still do.
pub(super) struct HandshakeBudget {
    pub(super) initiations: u32,
    pub(super) responses: u32,
    /// Under load: handshakes with a valid MAC2 that may still reach Diffie-Hellman.
    pub(super) dh_under_load: u32,
    /// Under load: such handshakes per source address this tick (at most
    /// `initiations + responses` entries).
    pub(super) per_source: BTreeMap<IpAddr, u8>,
}

impl Default for HandshakeBudget {
    fn default() -> Self {
        Self {
            initiations: super::HANDSHAKES_PER_TICK,
            responses: super::RESPONSES_PER_TICK,
            dh_under_load: super::DH_UNDER_LOAD_PER_TICK,
            per_source: BTreeMap::new(),
        }
    }
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
    /// Issue 16: whether this worker's instance of the gateway is the standby: it then never
    /// answers or initiates on the gateway's port, forwards nothing and runs no tunnel timers.
    pub(super) fn is_standby(&self) -> bool {
        self.failover.as_ref().is_some_and(|f| !f.is_active()) || self.probation_until.is_some()
    }

    /// Issue 16 item 6: whether this instance serves peer `id` now: always while active; on a
    /// standby only a peer that runs on every instance.
    pub(super) fn serves(&self, id: u32) -> bool {
        !self.is_standby() || self.peers.get(&id).is_some_and(|p| p.on_every_instance)
    }

    pub(super) fn new_tunn(
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
    pub(super) fn send_to_peer(
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
        // enforces: LIM-4
        if !self.bucket.take(packet.len(), now) {
            self.counters.rate_limited += 1;
            return;
        }
        if peer.ipsec.is_some() {
            return self.ipsec_send(id, packet, now, out);
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
    pub(super) fn forward_from_peer(
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
            // Issue 16 item 6: a standby sends into no tunnel but those on every instance.
            Some(Hop::Peer(q)) if !self.serves(q) => self.counters.standby_dropped += 1,
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

    pub(super) fn tick(&mut self, now: Instant, buf: &mut [u8], out: &mut Outputs) {
        if now.saturating_duration_since(self.last_rl_reset) >= Duration::from_secs(1) {
            self.rate_limiter.reset_count();
            self.last_rl_reset = now;
            self.handshakes_this_second = 0;
        }
        self.budget = HandshakeBudget::default();
        // Issue 16 item 6: a standby runs the timers of the peers on every instance only.
        let standby = self.is_standby();
        for peer in self
            .peers
            .values_mut()
            .filter(|p| (!standby || p.on_every_instance) && p.ipsec.is_none())
        {
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
                // enforces: S2S-2
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

    /// A datagram from `src` that [`Gateway::demux`] found to be peer `id`'s: brings the
    /// peer's tunnel up for an initiation, decapsulates, updates the peer's state and endpoint,
    /// then forwards the inner packet, if any.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn receive(
        &mut self,
        Demuxed { id, kind, roams }: Demuxed,
        src: SocketAddr,
        datagram: &[u8],
        now: Instant,
        buf: &mut [u8],
        buf2: &mut [u8],
        out: &mut Outputs,
    ) {
        let is_init = kind == 1;
        let Some(peer) = self.peers.get(&id) else {
            self.counters.unknown_peer += 1;
            return;
        };
        if peer.tunn.is_none() {
            if !is_init {
                // A message for a session torn down by S2S-2: the device will handshake again.
                self.counters.unknown_peer += 1;
                return;
            }
            let t = self.new_tunn(peer.public_key, peer.psk, peer.keepalive, peer.id);
            let name = peer.name.clone();
            let mut idled = false;
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.tunn = Some(t);
                peer.last_traffic = now;
                idled = std::mem::take(&mut peer.idled);
            }
            if idled {
                out.events.push_back(Event::TunnelRestarted {
                    gateway: self.key.clone(),
                    peer: name,
                });
            }
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(tunn) = peer.tunn.as_mut() else {
            return;
        };
        let inner = match tunn.decapsulate(Some(src.ip()), datagram, buf) {
            TunnResult::Err(e) => {
                self.counters.invalid += 1;
                tracing::trace!(gateway = %self.key, peer = %peer.name, error = ?e, "WireGuard message rejected");
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
                    peer.refresh(&self.key, self.peer_silence, now, out);
                }
                return;
            }
            TunnResult::Done => None,
            TunnResult::WriteToNetwork(p) => {
                peer.outer_tx += p.len() as u64;
                peer.live.sent(p, now);
                out.transmit(self.listen_port, src, p);
                peer.outer_tx +=
                    flush_queued(tunn, self.listen_port, src, buf, out, &mut peer.live, now);
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
            tracing::debug!(gateway = %self.key, peer = %peer.name, "peer endpoint updated");
            if let Some(old) = peer.endpoint
                && self.by_endpoint.get(&old) == Some(&id)
            {
                self.by_endpoint.remove(&old);
            }
            self.by_endpoint.insert(src, id);
            peer.endpoint = Some(src);
        }
        if let Some(d) = tunn.time_since_last_handshake() {
            peer.last_handshake = now.checked_sub(d).or(Some(now));
        }
        // Handshakes change the state; data only when the tunnel was not up (it came back).
        if kind != 4 || peer.live.current().0 != TunnelState::Up {
            peer.refresh(&self.key, self.peer_silence, now, out);
        }
        if let Some(inner) = inner {
            self.forward_from_peer(id, inner, now, buf2, out);
        }
    }
}
