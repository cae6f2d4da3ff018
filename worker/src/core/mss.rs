//! TCP MSS clamping on SYNs (and SYN-ACKs) through the gateway, so hosts behind a device whose
//! MTU is larger than the tunnel's still agree on segments that fit it.
//!
//! The MSS option of a SYN larger than the tunnel MTU less the IP and TCP headers (40 bytes for
//! IPv4, 60 for IPv6) is lowered to that, and the TCP checksum updated incrementally (RFC 1624,
//! eqn. 3), which keeps a valid checksum valid. Packets reach the core with complete checksums:
//! on the TUN offload path `tun-rs` completes a partial (`NEEDS_CSUM`) checksum and checksums
//! every segment it splits off a GSO super-packet before the core sees them, and the core hands
//! SYNs to the TUN device as single packets (never coalesced), behind a virtio-net header that
//! asks for no checksum work.
//!
//! The check costs the hot path a few byte compares ([`is_tcp_syn`]); options are walked only in
//! SYNs. Options before and after the MSS are skipped by their lengths; malformed options (a
//! length below 2 or past the header) leave the packet alone. IPv4 fragments other than the first
//! and IPv6 packets with extension headers before TCP are left alone.

const PROTO_TCP: u8 = 6;
const TCP_SYN: u8 = 0x02;
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// The TCP header's offset in `p` if `p` is a TCP segment with SYN set (IPv4 first fragment or
/// unfragmented, or IPv6 with TCP right after the fixed header).
#[inline]
pub fn is_tcp_syn(p: &[u8]) -> Option<usize> {
    let tcp = match p.first()? >> 4 {
        4 => {
            if *p.get(9)? != PROTO_TCP || u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x1fff != 0
            {
                return None;
            }
            usize::from(p[0] & 0x0f) * 4
        }
        6 => {
            if *p.get(6)? != PROTO_TCP {
                return None;
            }
            40
        }
        _ => return None,
    };
    (tcp >= 20 && p.get(tcp + 13)? & TCP_SYN != 0).then_some(tcp)
}

/// The largest MSS that fits a tunnel of `mtu` bytes for `p`'s family.
fn limit(p: &[u8], mtu: usize) -> u16 {
    let headers = if p[0] >> 4 == 6 { 60 } else { 40 };
    u16::try_from(mtu.saturating_sub(headers)).unwrap_or(u16::MAX)
}

/// RFC 1624 eqn. 3: the checksum `hc` after a 16-bit word changes from `old` to `new`.
pub fn checksum_update(hc: u16, old: u16, new: u16) -> u16 {
    let mut s = u32::from(!hc) + u32::from(!old) + u32::from(new);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// Lowers the MSS option of `p` (a TCP SYN or SYN-ACK) to what fits a tunnel of `mtu` bytes,
/// updating the TCP checksum. Returns the new MSS when it changed anything.
pub fn clamp(p: &mut [u8], mtu: usize) -> Option<u16> {
    let tcp = is_tcp_syn(p)?;
    let max = limit(p, mtu);
    let doff = usize::from(*p.get(tcp + 12)? >> 4) * 4;
    if doff < 20 || tcp + doff > p.len() {
        return None;
    }
    let mut i = tcp + 20;
    let end = tcp + doff;
    while i < end {
        match p[i] {
            OPT_EOL => return None,
            OPT_NOP => i += 1,
            kind => {
                let len = usize::from(*p.get(i + 1).filter(|_| i + 1 < end)?);
                if len < 2 || i + len > end {
                    return None;
                }
                if kind == OPT_MSS {
                    if len != 4 {
                        return None;
                    }
                    let old = u16::from_be_bytes([p[i + 2], p[i + 3]]);
                    if old <= max {
                        return None;
                    }
                    p[i + 2..i + 4].copy_from_slice(&max.to_be_bytes());
                    let at = tcp + 16;
                    let hc = u16::from_be_bytes([p[at], p[at + 1]]);
                    let c = checksum_update(hc, old, max);
                    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
                    return Some(max);
                }
                i += len;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_1624_update_matches_a_full_recomputation() {
        let mut data = [0x12u8, 0x34, 0xff, 0xff, 0x00, 0x01, 0xab, 0xcd];
        let before = !tun_rs::checksum(&data, 0);
        data[2..4].copy_from_slice(&0x05b4u16.to_be_bytes());
        let full = !tun_rs::checksum(&data, 0);
        assert_eq!(checksum_update(before, 0xffff, 0x05b4), full);
    }

    #[test]
    fn not_a_syn_or_too_short_is_left_alone() {
        assert_eq!(is_tcp_syn(&[]), None);
        assert_eq!(is_tcp_syn(&[0x45; 30]), None);
        let mut p = vec![0u8; 60];
        p[0] = 0x45;
        p[9] = 6;
        assert_eq!(is_tcp_syn(&p), None);
        p[33] = TCP_SYN;
        assert_eq!(is_tcp_syn(&p), Some(20));
        // Data offset 0: malformed.
        assert_eq!(clamp(&mut p, 1420), None);
    }
}
