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
