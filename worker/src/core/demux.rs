//! Which peer a datagram is from: the gateway's handshake rate limiter checks it once, then a
//! handshake initiation names its peer by static key and every other message by the receiver
//! index the core gave the peer's tunnel.

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, TunnResult};

use super::Outputs;
use super::peer::Gateway;

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
        let packet = match self
            .rate_limiter
            .verify_packet(Some(src.ip()), datagram, buf)
        {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(cookie)) => {
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
