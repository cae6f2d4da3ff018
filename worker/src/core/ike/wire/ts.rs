//! Traffic Selector payloads, TSi and TSr (RFC 7296 3.13), and their selectors (3.13.1).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Reader, WireError};

/// A TS type (RFC 7296 3.13.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TsType(pub u8);

impl TsType {
    pub const IPV4_ADDR_RANGE: Self = Self(7);
    pub const IPV6_ADDR_RANGE: Self = Self(8);
}

/// A traffic selector (RFC 7296 3.13.1): an address range, an IP protocol (0: any) and a port
/// range (0-65535: any). Both addresses are of one family, which gives the TS type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub ip_protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

impl TrafficSelector {
    /// Every address of the family of `v6`, every protocol and port.
    pub fn any(v6: bool) -> Self {
        let (start, end) = if v6 {
            (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            )
        };
        Self {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        }
    }

    /// Every address of `net`, every protocol and port.
    pub fn from_net(net: ipnet::IpNet) -> Self {
        Self {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: net.network(),
            end: net.broadcast(),
        }
    }

    /// The TS type this selector is sent as.
    pub fn ts_type(&self) -> TsType {
        match self.start {
            IpAddr::V4(_) => TsType::IPV4_ADDR_RANGE,
            IpAddr::V6(_) => TsType::IPV6_ADDR_RANGE,
        }
    }

    /// The selectors' intersection (the narrowing of RFC 7296 2.9), if not empty. A protocol
    /// of 0 matches any.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let ip_protocol = match (self.ip_protocol, other.ip_protocol) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        if start_port > end_port {
            return None;
        }
        let (start, end) = match (self.start, self.end, other.start, other.end) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(c), IpAddr::V4(d)) => {
                let (s, e) = (a.max(c), b.min(d));
                (IpAddr::V4(s), IpAddr::V4(e))
            }
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(c), IpAddr::V6(d)) => {
                let (s, e) = (a.max(c), b.min(d));
                (IpAddr::V6(s), IpAddr::V6(e))
            }
            _ => return None,
        };
        (start <= end).then_some(Self {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        })
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let ts_type = TsType(r.u8()?);
        let ip_protocol = r.u8()?;
        let len = usize::from(r.u16()?);
        let expected = match ts_type {
            TsType::IPV4_ADDR_RANGE => 16,
            TsType::IPV6_ADDR_RANGE => 40,
            TsType(t) => return Err(WireError::UnknownTsType(t)),
        };
        if len != expected {
            return Err(WireError::BadLength("traffic selector"));
        }
        let start_port = r.u16()?;
        let end_port = r.u16()?;
        let (start, end) = if ts_type == TsType::IPV4_ADDR_RANGE {
            let a = ipv4(r.take(4)?);
            let b = ipv4(r.take(4)?);
            (IpAddr::V4(a), IpAddr::V4(b))
        } else {
            let a = ipv6(r.take(16)?);
            let b = ipv6(r.take(16)?);
            (IpAddr::V6(a), IpAddr::V6(b))
        };
        Ok(Self {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let len: u16 = if self.start.is_ipv4() { 16 } else { 40 };
        out.push(self.ts_type().0);
        out.push(self.ip_protocol);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.start_port.to_be_bytes());
        out.extend_from_slice(&self.end_port.to_be_bytes());
        for a in [self.start, self.end] {
            match (a, self.start.is_ipv4()) {
                (IpAddr::V4(v4), true) => out.extend_from_slice(&v4.octets()),
                (IpAddr::V6(v6), false) => out.extend_from_slice(&v6.octets()),
                // An end of the other family than the start: the start's family, as an
                // address that cannot be a range's end by accident (unspecified).
                (_, true) => out.extend_from_slice(&[0; 4]),
                (_, false) => out.extend_from_slice(&[0; 16]),
            }
        }
    }
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Ipv4Addr::from(a)
}

fn ipv6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

/// TSi or TSr payload (RFC 7296 3.13): one or more selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSelectors(pub Vec<TrafficSelector>);

impl TrafficSelectors {
    pub(super) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(body);
        let count = r.u8()?;
        r.take(3)?;
        let mut list = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            list.push(TrafficSelector::parse(&mut r)?);
        }
        if !r.is_empty() {
            return Err(WireError::BadLength("TS payload longer than its selectors"));
        }
        Ok(Self(list))
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.push(u8::try_from(self.0.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&[0, 0, 0]);
        for t in &self.0 {
            t.write(out);
        }
    }
}
