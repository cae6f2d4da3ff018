//! The glue of IPsec tunnels with the core's gateways: the gateway port's demultiplexing of
//! IKE and ESP, ESP in (then the same cryptokey routing and forwarding as WireGuard) and out
//! (after the same selectors and LIM-4 bucket), the timers, the peers' state, and building
//! IPsec peers from the desired state.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use isthmus_shared::desired::{
    DownReason, GatewayDesired, IpsecPeerDesired, PeerDesired, TunnelState,
};
use isthmus_shared::lpm::LpmTable;

use super::SpiGuard;
use super::child::EspDrop;
use super::config;
use super::tunnel::{Link, Tunnel};
use crate::core::Outputs;
use crate::core::esp::udp::{KEEPALIVE, NON_ESP_MARKER};
use crate::core::ike::crypto::Entropy;
use crate::core::ike::wire::{HEADER_LEN, Header, VERSION_2_0};
use crate::core::peer::{Gateway, Peer};
use crate::core::state::Liveness;
use crate::core::types::Event;

/// What a datagram on a gateway port with IPsec peers is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::core) enum Kind {
    /// IKE; `true`: after the non-ESP marker.
    Ike(bool),
    Esp,
    Keepalive,
}

impl Gateway {
    /// Whether the gateway has IPsec peers (then its port demultiplexes IKE and ESP).
    pub(in crate::core) fn has_ipsec(&self) -> bool {
        !self.ipsec_by_ip.is_empty()
    }

    /// The brief's demultiplexing: marker → IKE; an SPI of ours → ESP; 0xff → keepalive;
    /// WireGuard-shaped → `None`; an IKEv2 header → IKE without the marker; else `None`
    /// (the WireGuard path counts it).
    pub(in crate::core) fn ipsec_kind(&self, d: &[u8]) -> Option<Kind> {
        if d == KEEPALIVE {
            return Some(Kind::Keepalive);
        }
        let head = d.get(..4)?;
        if head == NON_ESP_MARKER {
            return Some(Kind::Ike(true));
        }
        let spi = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if self.esp_in.contains_key(&spi) {
            return Some(Kind::Esp);
        }
        if matches!(head[0], 1..=4) && head[1..] == [0, 0, 0] {
            return None;
        }
        if d.len() >= HEADER_LEN && d[17] == VERSION_2_0 {
            return Some(Kind::Ike(false));
        }
        // No WireGuard message: ESP of an SPI that is not (or no longer) ours.
        (d.len() >= crate::core::esp::HEADER_LEN).then_some(Kind::Esp)
    }

    /// Which IPsec peer an IKE message is for: by our SPI, else by the device's address
    /// (an IKE_SA_INIT, or a responder's answer to ours before its SPI is known; a message
    /// without a header goes there too, to be counted malformed).
    fn ike_peer(&self, src: SocketAddr, msg: &[u8]) -> Option<u32> {
        Header::peek(msg)
            .ok()
            .and_then(|(h, _, _)| {
                [h.spi_i, h.spi_r]
                    .iter()
                    .filter(|s| **s != 0)
                    .find_map(|s| self.ike_in.get(s).copied())
            })
            .or_else(|| self.ipsec_by_ip.get(&src.ip()).copied())
    }

    /// A datagram of kind `kind` from `src` on the gateway port.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::core) fn ipsec_receive(
        &mut self,
        kind: Kind,
        src: SocketAddr,
        datagram: &[u8],
        entropy: &mut dyn Entropy,
        now: Instant,
        buf: &mut [u8],
        buf2: &mut [u8],
        out: &mut Outputs,
    ) {
        match kind {
            Kind::Keepalive => {}
            Kind::Ike(marked) => {
                let msg = if marked {
                    datagram.get(4..).unwrap_or_default()
                } else {
                    datagram
                };
                let Some(id) = self.ike_peer(src, msg) else {
                    self.counters.ike_unmatched += 1;
                    tracing::trace!(gateway = %self.key, %src, "IKE message of no IPsec connection; dropped");
                    return;
                };
                if let Some(peer) = self.peers.get_mut(&id)
                    && let Some(t) = peer.ipsec.as_mut()
                {
                    let mut e = SpiGuard {
                        inner: entropy,
                        taken: &self.esp_in,
                    };
                    peer.outer_rx += datagram.len() as u64;
                    t.handle_ike(src, msg, marked, &mut e, now);
                    let dropped = t.take_ike_drops();
                    if dropped != Default::default() {
                        tracing::trace!(gateway = %self.key, connection = %peer.name, %src, "IKE message dropped");
                    }
                    self.counters.add_ike(&dropped);
                }
                self.ipsec_after(id, now, out);
            }
            Kind::Esp => {
                let spi = u32::from_be_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
                let Some(&id) = self.esp_in.get(&spi) else {
                    self.counters.esp_unknown_spi += 1;
                    return;
                };
                let Some(packet) = buf.get_mut(..datagram.len()) else {
                    self.counters.oversized += 1;
                    return;
                };
                packet.copy_from_slice(datagram);
                let Some(peer) = self.peers.get_mut(&id) else {
                    self.counters.esp_unknown_spi += 1;
                    return;
                };
                let Some(t) = peer.ipsec.as_mut() else {
                    self.counters.esp_unknown_spi += 1;
                    return;
                };
                match t.open(packet, now) {
                    Ok(range) => {
                        peer.outer_rx += datagram.len() as u64;
                        if let Some(inner) = packet.get_mut(range) {
                            self.forward_from_peer(id, inner, now, buf2, out);
                        }
                    }
                    Err(d) => {
                        let c = &mut self.counters;
                        match d {
                            EspDrop::Malformed => c.esp_malformed += 1,
                            EspDrop::UnknownSpi => c.esp_unknown_spi += 1,
                            EspDrop::Integrity => c.esp_integrity += 1,
                            EspDrop::Replay => c.esp_replay += 1,
                            EspDrop::Dummy => {}
                        }
                        tracing::trace!(gateway = %self.key, connection = %peer.name, drop = ?d, "ESP packet dropped");
                    }
                }
            }
        }
    }

    /// An inner packet into IPsec peer `id`'s tunnel (selectors and the bucket checked).
    pub(in crate::core) fn ipsec_send(
        &mut self,
        id: u32,
        packet: &[u8],
        now: Instant,
        out: &mut Outputs,
    ) {
        let port = self.listen_port;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(t) = peer.ipsec.as_mut() else {
            return;
        };
        peer.last_traffic = now;
        if t.is_idle() {
            // S2S-2: traffic brings an idled-out tunnel back (initiated on the next tick).
            t.wake(now);
            out.events.push_back(Event::TunnelRestarted {
                gateway: self.key.clone(),
                peer: peer.name.clone(),
            });
        }
        match t.seal(packet, now) {
            Some((dst, esp)) => {
                peer.tx_bytes += packet.len() as u64;
                peer.outer_tx += esp.len() as u64;
                out.transmit(port, dst, esp);
            }
            None => self.counters.ipsec_no_sa += 1,
        }
    }

    /// The IPsec peers' timers: S2S-2 idle teardown, then each tunnel's.
    pub(in crate::core) fn ipsec_tick(
        &mut self,
        entropy: &mut dyn Entropy,
        now: Instant,
        out: &mut Outputs,
    ) {
        let ids: Vec<u32> = self.ipsec_by_ip.values().copied().collect();
        let standby = self.is_standby();
        for id in ids {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if standby && !peer.on_every_instance {
                continue;
            }
            let Some(t) = peer.ipsec.as_mut() else {
                continue;
            };
            let mut e = SpiGuard {
                inner: &mut *entropy,
                taken: &self.esp_in,
            };
            // An SA the device set up counts as traffic (it wants the tunnel).
            let last = t
                .established_at()
                .map_or(peer.last_traffic, |e| e.max(peer.last_traffic));
            if let Some(idle) = peer.idle_timeout
                && !t.is_idle()
                && now.saturating_duration_since(last) >= idle
            {
                // enforces: S2S-2
                t.idle_out(&mut e, now);
                out.events.push_back(Event::TunnelIdle {
                    gateway: self.key.clone(),
                    peer: peer.name.clone(),
                });
            }
            t.tick(&mut e, now);
            self.ipsec_after(id, now, out);
        }
    }

    /// After a tunnel ran: its datagrams out, the demultiplexing maps, its state.
    fn ipsec_after(&mut self, id: u32, now: Instant, out: &mut Outputs) {
        let port = self.listen_port;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(t) = peer.ipsec.as_mut() else {
            return;
        };
        while let Some((dst, d)) = t.poll_transmit() {
            peer.outer_tx += d.len() as u64;
            out.transmit(port, dst, &d);
        }
        if t.take_dirty() {
            self.esp_in.retain(|_, p| *p != id);
            self.ike_in.retain(|_, p| *p != id);
            for s in t.inbound_spis() {
                self.esp_in.insert(s, id);
            }
            for s in t.ike_spis() {
                self.ike_in.insert(s, id);
            }
        }
        let (state, reason) = match t.link(now) {
            Link::Up => (TunnelState::Up, None),
            Link::Connecting => (TunnelState::Connecting, None),
            Link::KeyMismatch => (TunnelState::Down, Some(DownReason::KeyMismatch)),
            Link::NoAnswer => (TunnelState::Down, Some(DownReason::NoAnswer)),
            Link::Down => (TunnelState::Down, None),
            Link::Idle => (TunnelState::Idle, None),
        };
        if state == TunnelState::Up {
            peer.last_handshake = t.established_at();
        }
        // The device's address:port the tunnel uses (4500 after the float), else the
        // configured IKE endpoint.
        let endpoint = t.device_endpoint().or(peer.endpoint);
        peer.live.record(
            now,
            state,
            reason,
            endpoint,
            &self.key,
            &peer.name,
            &mut out.events,
        );
    }
}

impl crate::core::Core {
    /// An IPsec peer of the desired state: the one running with the same settings is kept
    /// (its SAs go on); otherwise a new tunnel (the old one's SAs are dropped).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::core) fn ipsec_peer(
        &mut self,
        gw: &Gateway,
        g: &GatewayDesired,
        p: &PeerDesired,
        ipsec: &IpsecPeerDesired,
        old: Option<Peer>,
        idle: Option<Duration>,
        now: Instant,
    ) -> Result<Peer, String> {
        let s = config::settings(p, ipsec, g.gateway_type).map_err(|e| e.to_string())?;
        let (kept, replaced) = match old {
            Some(o) if o.ipsec.as_ref().is_some_and(|t| t.s.same_as(&s)) => (Some(o), None),
            o => (None, o),
        };
        if let Some(mut r) = replaced {
            self.close_ipsec(g.listen_port, &mut r, now);
        }
        if let Some(mut o) = kept {
            if let Some(t) = o.ipsec.as_mut() {
                t.span = super::tunnel::log_span(&g.tenant, &g.name, &p.name);
            }
            o.name = p.name.clone();
            o.allowed = p.allowed_ips.iter().map(|n| (*n, ())).collect();
            o.selectors = p.policy_selectors.clone();
            o.idle_timeout = idle;
            o.on_every_instance = p.on_every_instance;
            return Ok(o);
        }
        let local = g.public_endpoint.unwrap_or(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            g.listen_port,
        ));
        let device = s.device;
        let taken = &gw.esp_in;
        let mut e = SpiGuard {
            inner: &mut *self.entropy,
            taken,
        };
        let span = super::tunnel::log_span(&g.tenant, &g.name, &p.name);
        let tunnel = Tunnel::new(s, local, span, &mut e, now).map_err(|e| e.to_string())?;
        let id = self.alloc_index();
        Ok(Peer {
            id,
            name: p.name.clone(),
            public_key: [0; 32],
            psk: None,
            keepalive: None,
            tunn: None,
            idled: false,
            endpoint: Some(device),
            configured_endpoint: p.endpoint.clone(),
            last_endpoint: None,
            on_every_instance: p.on_every_instance,
            endpoint_unresolved: false,
            allowed: p
                .allowed_ips
                .iter()
                .map(|n| (*n, ()))
                .collect::<LpmTable<()>>(),
            selectors: p.policy_selectors.clone(),
            idle_timeout: idle,
            last_traffic: now,
            last_handshake: None,
            rx_bytes: 0,
            tx_bytes: 0,
            region_pair: None,
            outer_rx: 0,
            outer_tx: 0,
            live: Liveness::new(now),
            takeover: None,
            ipsec: Some(Box::new(tunnel)),
        })
    }
}

impl crate::core::Core {
    /// An IPsec peer going away (removed, or its settings changed): the device is told
    /// (a Delete of each IKE SA, not waited for), so it does not keep stale SAs.
    pub(in crate::core) fn close_ipsec(&mut self, port: u16, p: &mut Peer, now: Instant) {
        let Some(t) = p.ipsec.as_mut() else {
            return;
        };
        t.idle_out(&mut *self.entropy, now);
        while let Some((dst, d)) = t.poll_transmit() {
            self.out.transmit(port, dst, &d);
        }
    }
}

/// The gateway's IPsec demultiplexing maps, rebuilt after an apply.
pub(in crate::core) fn rebuild_maps(gw: &mut Gateway) {
    let mut esp = BTreeMap::new();
    let mut ike = BTreeMap::new();
    let mut by_ip = BTreeMap::new();
    for p in gw.peers.values() {
        if let Some(t) = &p.ipsec {
            for s in t.inbound_spis() {
                esp.insert(s, p.id);
            }
            for s in t.ike_spis() {
                ike.insert(s, p.id);
            }
            by_ip.insert(t.s.device.ip(), p.id);
        }
    }
    gw.esp_in = esp;
    gw.ike_in = ike;
    gw.ipsec_by_ip = by_ip;
}
