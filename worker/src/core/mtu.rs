//! Inner packets larger than the tunnel MTU: ICMP "fragmentation needed" (RFC 792, RFC 1191) and
//! ICMPv6 "packet too big" (RFC 4443) answers, and IPv4 fragmentation (RFC 791).
//!
//! The core calls into this module only for packets longer than the gateway's tunnel MTU (one
//! length compare on the hot path). Such a packet that must enter a tunnel is fragmented when it
//! is IPv4 without DF; otherwise (IPv4 with DF, every IPv6 packet) it is dropped and answered
//! with [`too_big`] back to its source, so the source's path-MTU discovery learns the tunnel MTU.
//!
//! An answer quotes as much of the original packet as the RFCs allow: an ICMPv4 error at most
//! 576 bytes long (RFC 1812 4.3.2.3, extending RFC 792's "header + 64 bits"), an ICMPv6 error no
//! longer than the IPv6 minimum MTU of 1280 (RFC 4443 2.4 (c)). No answer goes to an ICMP error
//! (RFC 1122 3.2.2, RFC 4443 2.4 (e)), a non-initial IPv4 fragment, or a source that is
//! unspecified, multicast, broadcast or loopback. Answers are rate-limited per gateway by an
//! [`IcmpLimiter`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

/// ICMPv4 errors are at most this long (RFC 1812 4.3.2.3).
const ICMP4_MAX: usize = 576;
/// ICMPv6 errors fit the IPv6 minimum MTU (RFC 4443 2.4 (c)).
const ICMP6_MAX: usize = 1280;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMP6: u8 = 58;
const IPV4_DF: u16 = 0x4000;
const IPV4_MF: u16 = 0x2000;
const IPV4_OFFSET: u16 = 0x1fff;
/// Answers per second per gateway, and the burst.
pub const ICMP_PER_SECOND: u32 = 100;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Whether `p` (an IP packet longer than the MTU) may be fragmented: IPv4 without DF.
pub fn may_fragment(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] >> 4 == 4 && be16(p, 6) & IPV4_DF == 0
}

/// A token bucket of ICMP answers: [`ICMP_PER_SECOND`] per second, as many at once. Time is
/// the caller's.
#[derive(Debug, Clone)]
pub struct IcmpLimiter {
    tokens: u32,
    last: Option<Instant>,
}

impl Default for IcmpLimiter {
    fn default() -> Self {
        Self {
            tokens: ICMP_PER_SECOND,
            last: None,
        }
    }
}

impl IcmpLimiter {
    /// Takes one answer's token if there is one at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) => {
                let ms = now.saturating_duration_since(last).as_millis();
                let add = ms * u128::from(ICMP_PER_SECOND) / 1000;
                if add > 0 {
                    let add = u32::try_from(add).unwrap_or(u32::MAX);
                    self.tokens = self.tokens.saturating_add(add).min(ICMP_PER_SECOND);
                    self.last = Some(now);
                }
            }
            None => self.last = Some(now),
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

fn unanswerable_v4(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()
}

fn unanswerable_v6(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_multicast() || a.is_loopback()
}

/// The one's-complement checksum of `data` with `initial` added (unfolded sum).
fn csum(data: &[u8], initial: u64) -> u16 {
    !tun_rs::checksum(data, initial)
}

/// Builds into `out` the answer to `orig`, an IP packet too big for a tunnel of `mtu` bytes:
/// ICMP "fragmentation needed" (type 3 code 4, next-hop MTU) for IPv4, ICMPv6 "packet too big"
/// (type 2, MTU) for IPv6, from `src` (an address of the packet's family; otherwise the
/// packet's own destination) to the packet's source. `false` (and `out` empty) when no answer
/// is due or `orig` is not a valid IP packet.
pub fn too_big(orig: &[u8], mtu: u16, src: Option<IpAddr>, out: &mut Vec<u8>) -> bool {
    out.clear();
    match orig.first().map(|b| b >> 4) {
        Some(4) => too_big_v4(orig, mtu, src, out),
        Some(6) => too_big_v6(orig, mtu, src, out),
        _ => false,
    }
}

fn too_big_v4(orig: &[u8], mtu: u16, src: Option<IpAddr>, out: &mut Vec<u8>) -> bool {
    let Some(h) = orig.get(..20) else {
        return false;
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2));
    if ihl < 20 || total < ihl || total > orig.len() {
        return false;
    }
    let orig = &orig[..total];
    if be16(h, 6) & IPV4_OFFSET != 0 {
        return false;
    }
    let to = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    if unanswerable_v4(to) {
        return false;
    }
    if h[9] == PROTO_ICMP {
        // Errors (destination unreachable, source quench, redirect, time exceeded, parameter
        // problem) are never answered; nor is an ICMP message too short to tell.
        match orig.get(ihl) {
            Some(0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) => {}
            _ => return false,
        }
    }
    let from = match src {
        Some(IpAddr::V4(a)) => a,
        _ => Ipv4Addr::new(h[16], h[17], h[18], h[19]),
    };
    let quote = orig.len().min(ICMP4_MAX - 28);
    let len = 28 + quote;
    out.reserve(len);
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    // Identification 0, no flags (an ICMP error is never sent with DF), TTL 64, ICMP.
    out.extend_from_slice(&[0, 0, 0, 0, 64, PROTO_ICMP, 0, 0]);
    out.extend_from_slice(&from.octets());
    out.extend_from_slice(&to.octets());
    let c = csum(&out[..20], 0);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    // Type 3 code 4, checksum, unused (16 bits), next-hop MTU (RFC 1191).
    out.extend_from_slice(&[3, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&mtu.to_be_bytes());
    out.extend_from_slice(&orig[..quote]);
    let c = csum(&out[20..], 0);
    out[22..24].copy_from_slice(&c.to_be_bytes());
    true
}

/// Whether an IPv6 packet is an ICMPv6 error message (type < 128), walking the usual
/// extension headers; `None` when it cannot be told (truncated).
fn is_icmp6_error(p: &[u8]) -> Option<bool> {
    let mut next = *p.get(6)?;
    let mut at = 40;
    for _ in 0..8 {
        match next {
            PROTO_ICMP6 => return Some(*p.get(at)? < 128),
            // Hop-by-hop, routing, destination options.
            0 | 43 | 60 => {
                next = *p.get(at)?;
                at += (usize::from(*p.get(at + 1)?) + 1) * 8;
            }
            // Fragment: only the first fragment carries the upper-layer header.
            44 => {
                next = *p.get(at)?;
                if be16(p.get(at..at + 4)?, 2) & 0xfff8 != 0 {
                    return Some(false);
                }
                at += 8;
            }
            _ => return Some(false),
        }
    }
    Some(false)
}

fn too_big_v6(orig: &[u8], mtu: u16, src: Option<IpAddr>, out: &mut Vec<u8>) -> bool {
    let Some(h) = orig.get(..40) else {
        return false;
    };
    let total = 40 + usize::from(be16(h, 4));
    if total > orig.len() {
        return false;
    }
    let orig = &orig[..total];
    let octets = |r: std::ops::Range<usize>| -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[r]);
        a
    };
    let to = Ipv6Addr::from(octets(8..24));
    if unanswerable_v6(to) || is_icmp6_error(orig) != Some(false) {
        return false;
    }
    let from = match src {
        Some(IpAddr::V6(a)) => a,
        _ => Ipv6Addr::from(octets(24..40)),
    };
    let quote = orig.len().min(ICMP6_MAX - 48);
    let icmp_len = 8 + quote;
    out.reserve(40 + icmp_len);
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&(icmp_len as u16).to_be_bytes());
    out.extend_from_slice(&[PROTO_ICMP6, 64]);
    out.extend_from_slice(&from.octets());
    out.extend_from_slice(&to.octets());
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&u32::from(mtu).to_be_bytes());
    out.extend_from_slice(&orig[..quote]);
    // Pseudo header: source, destination, upper-layer length, next header.
    let mut pseudo = u64::from(PROTO_ICMP6) + icmp_len as u64;
    for w in out[8..40].chunks_exact(2) {
        pseudo += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    let c = csum(&out[40..], pseudo);
    out[42..44].copy_from_slice(&c.to_be_bytes());
    true
}

/// The options of an IPv4 header that every fragment carries (those with the copy flag set,
/// RFC 791), padded to a multiple of 4 bytes; none if the options are malformed.
fn copied_options(opts: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else {
                    out.truncate(start);
                    return;
                };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    out.truncate(start);
                    return;
                }
                if kind & 0x80 != 0 {
                    out.extend_from_slice(&opts[i..i + len]);
                }
                i += len;
            }
        }
    }
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
}

/// Fragments `p`, an IPv4 packet without DF, into fragments of at most `mtu` bytes (RFC 791):
/// each fragment gets the header (options: all in the first, the copied ones in the others),
/// its offset, MF on all but the last (and on the last when `p` itself was a fragment with MF),
/// and its header checksum. `emit` is called once per fragment. `false` when `p` is not such a
/// packet or `mtu` cannot hold a header and 8 bytes of data (nothing emitted).
pub fn fragment_v4(p: &[u8], mtu: usize, mut emit: impl FnMut(&[u8])) -> bool {
    let Some(h) = p.get(..20) else {
        return false;
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2));
    let flags = be16(h, 6);
    if h[0] >> 4 != 4 || ihl < 20 || total < ihl || total > p.len() || flags & IPV4_DF != 0 {
        return false;
    }
    let (header, payload) = p[..total].split_at(ihl);
    let mut later = Vec::with_capacity(60);
    later.extend_from_slice(&header[..20]);
    copied_options(&header[20..], &mut later);
    later[0] = 0x40 | (later.len() / 4) as u8;
    if mtu < ihl + 8 || mtu < later.len() + 8 {
        return false;
    }
    let first_offset = usize::from(flags & IPV4_OFFSET) * 8;
    let more_after = flags & IPV4_MF != 0;
    if (first_offset + payload.len()) / 8 > usize::from(IPV4_OFFSET) {
        // The fragments' offsets would not fit 13 bits.
        return false;
    }
    let mut frag = Vec::with_capacity(mtu);
    let mut at = 0;
    loop {
        let head: &[u8] = if at == 0 { header } else { &later };
        let room = (mtu - head.len()) & !7;
        let n = room.min(payload.len() - at);
        let last = at + n == payload.len();
        let offset = (first_offset + at) / 8;
        frag.clear();
        frag.extend_from_slice(head);
        frag.extend_from_slice(&payload[at..at + n]);
        let len = frag.len() as u16;
        frag[2..4].copy_from_slice(&len.to_be_bytes());
        let mf = if last && !more_after { 0 } else { IPV4_MF };
        // Keep the reserved bit as it was; DF is clear.
        let f = (flags & 0x8000) | mf | offset as u16;
        frag[6..8].copy_from_slice(&f.to_be_bytes());
        frag[10..12].fill(0);
        let c = csum(&frag[..head.len()], 0);
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        emit(&frag);
        at += n;
        if last {
            return true;
        }
    }
}

/// Where a packet too big for a tunnel came from: where its ICMP answer goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source {
    /// From the TUN device: the answer goes back into it.
    Vnet,
    /// From peer `id`'s tunnel: the answer goes back into that tunnel.
    Peer(u32),
}

impl super::Gateway {
    /// `packet`, longer than the tunnel MTU, must enter peer `to`'s tunnel: fragmented if it is
    /// IPv4 without DF, otherwise dropped and answered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn too_big_for_tunnel(
        &mut self,
        to: u32,
        packet: &[u8],
        addrs: super::packet::Addresses,
        from: Source,
        now: Instant,
        buf: &mut [u8],
        out: &mut super::Outputs,
    ) {
        if may_fragment(packet) {
            let mtu = self.mtu;
            if fragment_v4(packet, mtu, |f| {
                self.send_to_peer(to, f, addrs, now, buf, out)
            }) {
                return;
            }
        }
        self.counters.too_big += 1;
        self.answer_too_big(packet, from, now, buf, out);
    }

    /// Answers `packet` (dropped: too big for a tunnel) with ICMP "fragmentation needed" /
    /// ICMPv6 "packet too big" naming the tunnel MTU, back where it came from, within the
    /// gateway's ICMP rate.
    pub(super) fn answer_too_big(
        &mut self,
        packet: &[u8],
        from: Source,
        now: Instant,
        buf: &mut [u8],
        out: &mut super::Outputs,
    ) {
        let src = if packet.first().is_some_and(|b| b >> 4 == 6) {
            self.private_v6
        } else {
            self.private_v4
        };
        let mtu = u16::try_from(self.mtu).unwrap_or(u16::MAX);
        let mut icmp = std::mem::take(&mut self.icmp_buf);
        if too_big(packet, mtu, src, &mut icmp) {
            if !self.icmp.take(now) {
                self.counters.icmp_rate_limited += 1;
            } else {
                match from {
                    Source::Vnet => out.tun.push(&icmp),
                    Source::Peer(id) => {
                        if let Ok(a) = super::packet::addresses(&icmp) {
                            self.send_to_peer(id, &icmp, a, now, buf, out);
                        }
                    }
                }
            }
        }
        self.icmp_buf = icmp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::packet::ipv4_udp;

    #[test]
    fn the_limiter_allows_a_burst_then_refills() {
        let t0 = Instant::now();
        let mut l = IcmpLimiter::default();
        assert_eq!((0..150).filter(|_| l.take(t0)).count(), 100);
        assert!(!l.take(t0 + std::time::Duration::from_millis(5)));
        assert!(l.take(t0 + std::time::Duration::from_millis(20)));
    }

    #[test]
    fn icmp_errors_and_later_fragments_are_not_answered() {
        let mut out = Vec::new();
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let mut p = ipv4_udp(a, b, 1, 2, &[0; 1500]);
        assert!(too_big(&p, 1420, None, &mut out));
        assert_eq!(out.len(), 576);
        p[6..8].copy_from_slice(&0x2001u16.to_be_bytes());
        assert!(!too_big(&p, 1420, None, &mut out));
        assert!(out.is_empty());
        let mut icmp_err = ipv4_udp(a, b, 1, 2, &[0; 1500]);
        icmp_err[9] = PROTO_ICMP;
        icmp_err[20] = 3;
        assert!(!too_big(&icmp_err, 1420, None, &mut out));
        icmp_err[20] = 8; // an echo request is answered
        assert!(too_big(&icmp_err, 1420, None, &mut out));
        let from_multicast = ipv4_udp(Ipv4Addr::new(224, 0, 0, 1), b, 1, 2, &[0; 1500]);
        assert!(!too_big(&from_multicast, 1420, None, &mut out));
        assert!(!too_big(&[0x45, 0, 0], 1420, None, &mut out));
    }

    #[test]
    fn copied_options_keep_only_the_copy_flag() {
        let mut out = Vec::new();
        // NOP, record route (not copied, len 7), security-like option 0x82 len 4, EOL.
        copied_options(
            &[1, 7, 7, 4, 0, 0, 0, 0, 0x82, 4, 9, 9, 0, 0, 0, 0],
            &mut out,
        );
        assert_eq!(out, vec![0x82, 4, 9, 9]);
        out.clear();
        copied_options(&[0x82, 40], &mut out);
        assert!(out.is_empty(), "malformed: nothing copied");
    }
}
