//! Which peer a datagram is from: the gateway's handshake rate limiter checks it once, then a
//! handshake initiation names its peer by static key and every other message by the receiver
//! index the core gave the peer's tunnel.
//!
//! Floods. A handshake costs Diffie-Hellman, and anyone holding a device configuration knows
//! the gateway's public key, so can send initiations with a valid MAC1. Three bounds, all per
//! gateway, keep a flood from taking the port down (data messages pass none of them):
//! - each tick checks at most [`HANDSHAKES_PER_TICK`](super::HANDSHAKES_PER_TICK) initiations (and fewer responses); the
//!   rest are shed unread (`handshakes_shed`), at the cost of reading their first byte;
//! - past [`HANDSHAKE_RATE_LIMIT`] handshakes a second the gateway is under load: boringtun's
//!   `RateLimiter` (the MAC and cookie crypto) answers every handshake without a valid MAC2
//!   with a cookie reply (`cookie_replies`) and no Diffie-Hellman;
//! - under load, handshakes with a valid MAC2 (their sender proved it receives at its
//!   address) reach Diffie-Hellman at most `DH_UNDER_LOAD_PER_TICK` times a tick, and
//!   `DH_PER_SOURCE_PER_TICK` times per source address, so one address with a cookie cannot
//!   crowd out the others.

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, TunnResult};

use super::peer::{Gateway, handshake_kind};
use super::{DH_PER_SOURCE_PER_TICK, HANDSHAKE_RATE_LIMIT, Outputs};

/// A datagram's peer, as [`Gateway::demux`] found it.
pub(super) struct Demuxed {
    /// The peer's id (its tunnel's receiver index).
    pub(super) id: u32,
    /// The WireGuard message type (verified: 1 initiation, 2 response, 3 cookie, 4 data).
    pub(super) kind: u8,
    /// Whether the message moves the peer's endpoint to its source (not a cookie reply).
    pub(super) roams: bool,
}

impl Gateway {
    /// Runs the rate limiter on a datagram from `src` and finds its peer; `None` when the
    /// datagram was answered with a cookie or dropped (and counted).
    pub(super) fn demux(
        &mut self,
        src: SocketAddr,
        datagram: &[u8],
        now: Instant,
        buf: &mut [u8],
        out: &mut Outputs,
    ) -> Option<Demuxed> {
        let handshake = handshake_kind(datagram);
        if let Some(k) = handshake {
            let left = if k == 1 {
                &mut self.budget.initiations
            } else {
                &mut self.budget.responses
            };
            if *left == 0 {
                self.counters.handshakes_shed += 1;
                tracing::trace!(gateway = %self.key, %src, "over the handshake budget of the tick; shed");
                return None;
            }
            *left -= 1;
        }
        let under_load = self.handshakes_this_second >= HANDSHAKE_RATE_LIMIT;
        let packet = match self
            .rate_limiter
            .verify_packet(Some(src.ip()), datagram, buf)
        {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(cookie)) => {
                self.handshakes_this_second += 1;
                self.counters.cookie_replies += 1;
                tracing::trace!(gateway = %self.key, %src, "under load: handshake without a valid MAC2 answered with a cookie");
                out.transmit(self.listen_port, src, cookie);
                return None;
            }
            Err(TunnResult::Err(WireGuardError::InvalidPacket)) | Err(_) if datagram.len() < 4 => {
                self.counters.garbage += 1;
                return None;
            }
            Err(TunnResult::Err(WireGuardError::InvalidPacket)) => {
                self.counters.garbage += 1;
                tracing::trace!(gateway = %self.key, %src, "not a WireGuard message; dropped");
                return None;
            }
            Err(_) => {
                self.counters.invalid += 1;
                self.handshake_failed(src, datagram, now, out);
                tracing::trace!(gateway = %self.key, %src, "WireGuard message failed its checks; dropped");
                return None;
            }
        };
        if handshake.is_some() {
            // MAC1 was valid.
            self.handshakes_this_second += 1;
            if under_load {
                // Under load only a valid MAC2 gets here: the source address is genuine.
                let n = self.budget.per_source.entry(src.ip()).or_insert(0);
                if self.budget.dh_under_load == 0 || *n >= DH_PER_SOURCE_PER_TICK {
                    self.counters.handshakes_shed += 1;
                    tracing::trace!(gateway = %self.key, %src, "under load: over the Diffie-Hellman budget of the tick; shed");
                    return None;
                }
                *n += 1;
                self.budget.dh_under_load -= 1;
            }
        }
        let (id, roams) = match &packet {
            Packet::HandshakeInit(p) => {
                match parse_handshake_anon(&self.private_key, &self.public_key, p) {
                    Ok(hh) => match self.by_public.get(&hh.peer_static_public) {
                        Some(id) => (*id, true),
                        None => {
                            self.counters.unknown_peer += 1;
                            self.handshake_failed(src, datagram, now, out);
                            tracing::trace!(gateway = %self.key, %src, "handshake from a key that is not a peer; dropped");
                            return None;
                        }
                    },
                    Err(_) => {
                        self.counters.invalid += 1;
                        self.handshake_failed(src, datagram, now, out);
                        return None;
                    }
                }
            }
            Packet::HandshakeResponse(p) => (p.receiver_idx >> 8, true),
            Packet::PacketCookieReply(p) => (p.receiver_idx >> 8, false),
            Packet::PacketData(p) => (p.receiver_idx >> 8, true),
        };
        Some(Demuxed {
            id,
            kind: datagram[0],
            roams,
        })
    }
}
