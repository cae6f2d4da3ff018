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
//! LIM-6 metering (outer bytes per region pair) is described in [`metering`].
//!
//! Code map: this file is the façade (`handle_*`, `poll_*`, queries); [`types`] holds the public
//! types; `apply.rs` the hot reconfiguration ([`Core::apply`]); `peer.rs` the gateways, peers and
//! per-packet paths; `demux.rs` which peer a datagram is from; [`metering`] counters, status and
//! region pairs; [`bucket`], [`forward`], [`gro`], [`mss`], [`mtu`], [`packet`] and [`state`] one
//! concern each.

mod apply;
pub mod bucket;
mod demux;
pub mod esp;
pub mod failover;
pub mod forward;
pub mod gro;
pub mod ike;
mod instance;
pub mod ipsec;
pub mod metering;
pub mod mss;
pub mod mtu;
pub mod packet;
mod peer;
pub mod state;
pub mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ipnet::IpNet;
use isthmus_shared::lpm::LpmTable;
use isthmus_shared::model::{GatewayType, QualifiedName, RegionPair};

pub use self::apply::{ApplyError, ApplyOptions};
pub use self::metering::Counters;
pub use self::types::{Decision, Event, PeerInfo, Transmit};

use self::forward::Hop;
use self::gro::TunQueue;
use self::packet::{MAX_IP_PACKET, PacketError};
use self::peer::{Gateway, Peer};

/// How often the core runs boringtun's timers and its own.
pub const TICK: Duration = Duration::from_millis(250);
/// Handshakes per second per gateway before boringtun asks for cookies.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// Handshake initiations per gateway and [`TICK`] that get checked at all (MAC1, then a
/// cookie reply or a handshake); the rest of a flood is shed unread and counted
/// (`handshakes_shed`). 1024 per tick is ~4,000 per second, as many as the Linux kernel's
/// WireGuard queues (`MAX_QUEUED_INCOMING_HANDSHAKES`), and costs well under a millisecond
/// of cookie replies per tick.
pub const HANDSHAKES_PER_TICK: u32 = 1024;
/// Handshake responses per gateway and tick that get checked (only answers to the
/// gateway's own initiations are real, so few).
const RESPONSES_PER_TICK: u32 = 256;
/// Under load: handshakes with a valid MAC2 (the sender proved its address) that may reach
/// Diffie-Hellman per gateway and tick, in all and from one source address (the kernel's
/// WireGuard allows 20 per second per address).
const DH_UNDER_LOAD_PER_TICK: u32 = 64;
const DH_PER_SOURCE_PER_TICK: u8 = 5;
/// Scratch buffer: the largest packet plus WireGuard's overhead, and at least a handshake.
const BUF_LEN: usize = MAX_IP_PACKET + 256;

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
    /// Issue 16: the gateways with an instance block (a [`failover::Failover`]).
    redundant: BTreeSet<QualifiedName>,
    /// Issue 16: the worker's per-run boot id ([`Core::set_boot_id`]) and how many failovers
    /// were created from it.
    boot: failover::BootId,
    boot_runs: u64,
    /// Issue 16: heartbeats to send ([`Core::poll_heartbeat`]).
    heartbeats: VecDeque<failover::HeartbeatTransmit>,
    /// Issue 17: the randomness of IKE ([`Core::set_entropy`]); none until the shell gives it.
    entropy: Box<dyn ike::crypto::Entropy + Send>,
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
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
            redundant: BTreeSet::new(),
            boot: failover::BootId([0; failover::wire::BOOT_ID_LEN]),
            boot_runs: 0,
            heartbeats: VecDeque::new(),
            entropy: Box::new(ipsec::NoEntropy),
        }
    }

    /// Issue 17: the randomness IPsec tunnels draw from (SPIs, nonces, Diffie-Hellman keys):
    /// the operating system's in the shell ([`ike::crypto::SystemEntropy`]), a seeded one in
    /// tests. Without one, IPsec peers are refused by [`Core::apply`].
    pub fn set_entropy(&mut self, entropy: Box<dyn ike::crypto::Entropy + Send>) {
        self.entropy = entropy;
    }

    /// How long a peer with a persistent keepalive may stay silent before its tunnel is no
    /// longer `up` ([`state`]; default [`state::DEFAULT_PEER_SILENCE`], 65 s). Tests shorten it.
    pub fn set_peer_silence(&mut self, silence: Duration) {
        self.peer_silence = silence;
        for g in self.gateways.values_mut() {
            g.peer_silence = silence;
        }
    }

    /// The desired-state generation applied last.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether a datagram is a WireGuard handshake message (initiation or response), which
    /// costs Diffie-Hellman: a shell feeds a batch's other datagrams (data of established
    /// tunnels, cookie replies) first, so a handshake flood cannot delay them.
    pub fn is_handshake(datagram: &[u8]) -> bool {
        peer::handshake_kind(datagram).is_some()
    }

    /// How many more handshake initiations the gateway on `port` checks this tick
    /// ([`HANDSHAKES_PER_TICK`]); a shell may stop reading its handshakes at 0.
    pub fn initiations_left(&self, port: u16) -> Option<u32> {
        let gw = self.gateways.get(self.by_port.get(&port)?)?;
        Some(gw.budget.initiations)
    }

    /// The UDP port a gateway listens on.
    pub fn listen_port(&self, gateway: &QualifiedName) -> Option<u16> {
        self.gateways.get(gateway).map(|g| g.listen_port)
    }

    /// The UDP ports the gateways listen on.
    pub fn listen_ports(&self) -> BTreeSet<u16> {
        self.by_port.keys().copied().collect()
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
            entropy,
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
        // Issue 16: a standby never answers anything on the gateway's port (no handshake, no
        // cookie reply): the active instance does. Item 6: but for the peers that run on every
        // instance (an active-active gateway's sites): it finds the datagram's peer first, then
        // drops what is not theirs.
        let standby = gw.is_standby();
        if standby && !gw.serves_on_standby {
            gw.counters.standby_dropped += 1;
            return;
        }
        // Issue 17: IKE and ESP share the port (the demultiplexing of [`ipsec`]).
        if gw.has_ipsec()
            && let Some(kind) = gw.ipsec_kind(datagram)
        {
            if standby {
                gw.counters.standby_dropped += 1;
                return;
            }
            gw.ipsec_receive(kind, src, datagram, &mut **entropy, now, buf, buf2, out);
            return;
        }
        if let Some(from) = gw.demux(src, datagram, now, buf, out) {
            if standby && !gw.serves(from.id) {
                gw.counters.standby_dropped += 1;
                return;
            }
            gw.receive(from, src, datagram, now, buf, buf2, out);
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
        // Issue 16: a standby forwards nothing into its tunnels.
        if gw.is_standby() {
            gw.counters.standby_dropped += 1;
            return;
        }
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

    /// Runs timers due at `now`: the failovers' heartbeats and takeover deadlines (on every
    /// call), and every [`TICK`] boringtun's handshake/keepalive timers, S2S-2 idle teardown,
    /// the handshake rate limiter.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.redundant.is_empty() {
            self.failover_timers(now);
        }
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        let Core {
            gateways,
            out,
            buf,
            entropy,
            ..
        } = self;
        for gw in gateways.values_mut() {
            // Issue 16: no tunnel timers on a standby (no keepalives, no handshakes), but for
            // the peers that run on every instance (item 6).
            if gw.is_standby() && !gw.serves_on_standby {
                continue;
            }
            gw.tick(now, buf, out);
            if gw.has_ipsec() {
                gw.ipsec_tick(&mut **entropy, now, out);
            }
        }
        self.next_tick = Some(now + TICK);
    }

    /// When [`Core::handle_timeout`] wants to be called next: the next tick, or a failover's
    /// next heartbeat or takeover deadline if sooner.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_tick, self.failover_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the next [`TICK`] is due (the handshake budgets of [`Core::initiations_left`] are
    /// renewed then).
    pub fn next_tick(&self) -> Option<Instant> {
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

    /// Issue 17: an IPsec peer's tunnel, by name (its SAs, for tests and inspection; the
    /// status report carries [`isthmus_shared::desired::IpsecStatus`]).
    pub fn ipsec_tunnel(&self, gateway: &QualifiedName, name: &str) -> Option<&ipsec::Tunnel> {
        let g = self.gateways.get(gateway)?;
        g.peers.values().find(|p| p.name == name)?.ipsec.as_deref()
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
}
