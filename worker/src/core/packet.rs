//! Just enough IP header parsing to route a packet: version, source, destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The largest IP packet the worker forwards (the IPv4/IPv6 total-length ceiling).
pub const MAX_IP_PACKET: usize = 65_535;

/// Why a packet could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than its header, or not IPv4/IPv6.
    Malformed,
    /// Longer than [`MAX_IP_PACKET`].
    Oversized,
}

/// The addresses of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Parses the source and destination of an IPv4 or IPv6 packet.
pub fn addresses(packet: &[u8]) -> Result<Addresses, PacketError> {
    if packet.len() > MAX_IP_PACKET {
        return Err(PacketError::Oversized);
    }
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let h = packet.get(..20).ok_or(PacketError::Malformed)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if ihl < 20 || total < ihl || total > packet.len() {
                return Err(PacketError::Malformed);
            }
            Ok(Addresses {
                src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
                dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
            })
        }
        Some(6) => {
            let h = packet.get(..40).ok_or(PacketError::Malformed)?;
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            if payload + 40 > packet.len() {
                return Err(PacketError::Malformed);
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&h[8..24]);
            d.copy_from_slice(&h[24..40]);
            Ok(Addresses {
                src: IpAddr::V6(Ipv6Addr::from(s)),
                dst: IpAddr::V6(Ipv6Addr::from(d)),
            })
        }
        _ => Err(PacketError::Malformed),
    }
}

/// Builds an IPv4 UDP packet (checksums left zero: the core never checks them). For tests and
/// tools.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let total16 = u16::try_from(total).unwrap_or(u16::MAX);
    let udp_len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total16.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&udp_len.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Builds an IPv4 ICMP echo request (checksums left zero). For tests and tools.
pub fn ipv4_icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(28);
    p.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[8, 0, 0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p
}

/// The fields of a TCP segment built by [`tcp_segment`].
#[derive(Debug, Clone, Copy)]
pub struct TcpFields<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// TCP flags (0x10 ACK, 0x08 PSH, ...).
    pub flags: u8,
    /// TCP options, a multiple of 4 bytes.
    pub options: &'a [u8],
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
}

/// Builds an IPv4 or IPv6 TCP segment with valid checksums (`src` and `dst` of one family).
/// For tests and tools.
pub fn tcp_segment(src: IpAddr, dst: IpAddr, f: &TcpFields<'_>, payload: &[u8]) -> Vec<u8> {
    let tcph = 20 + f.options.len();
    let tcp_len = tcph + payload.len();
    let mut p = Vec::with_capacity(40 + tcp_len);
    let addrs = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&u16::try_from(tcp_len).unwrap_or(u16::MAX).to_be_bytes());
            p.extend_from_slice(&[6, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            8..40
        }
        _ => {
            let v4 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.octets(),
                IpAddr::V6(_) => [0; 4],
            };
            let total = u16::try_from(20 + tcp_len).unwrap_or(u16::MAX);
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&f.ip_id.to_be_bytes());
            p.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
            p.extend_from_slice(&v4(src));
            p.extend_from_slice(&v4(dst));
            let c = !tun_rs::checksum(&p[..20], 0);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            12..20
        }
    };
    let iph = p.len();
    p.extend_from_slice(&f.sport.to_be_bytes());
    p.extend_from_slice(&f.dport.to_be_bytes());
    p.extend_from_slice(&f.seq.to_be_bytes());
    p.extend_from_slice(&f.ack.to_be_bytes());
    p.extend_from_slice(&[u8::try_from(tcph / 4).unwrap_or(15) << 4, f.flags]);
    p.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(f.options);
    p.extend_from_slice(payload);
    let pseudo = super::gro::pseudo_header(&p[addrs], tcp_len);
    let c = !tun_rs::checksum(&p[iph..], pseudo);
    p[iph + 16..iph + 18].copy_from_slice(&c.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_rejects_garbage() {
        let p = ipv4_udp(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 1, 0, 1),
            1,
            2,
            b"hi",
        );
        let a = addresses(&p).expect("parses");
        assert_eq!(a.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(a.dst, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(addresses(&p[..10]), Err(PacketError::Malformed));
        assert_eq!(addresses(&[]), Err(PacketError::Malformed));
        assert_eq!(addresses(&[0x70; 64]), Err(PacketError::Malformed));
        assert_eq!(
            addresses(&vec![0x45; MAX_IP_PACKET + 1]),
            Err(PacketError::Oversized)
        );
        let icmp = ipv4_icmp_echo(Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2), 7, 1);
        assert!(addresses(&icmp).is_ok());
    }

    #[test]
    fn parses_v6() {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[5] = 8;
        p[23] = 1;
        p[39] = 2;
        let a = addresses(&p).expect("parses");
        assert_eq!(a.src, "::1".parse::<IpAddr>().expect("ip"));
        assert_eq!(a.dst, "::2".parse::<IpAddr>().expect("ip"));
        p[5] = 9;
        assert_eq!(addresses(&p), Err(PacketError::Malformed));
    }
}
