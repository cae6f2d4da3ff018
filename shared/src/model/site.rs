//! Local network sites and the host of their VPN device (CONN-4).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::DEFAULT_WIREGUARD_PORT;

/// The host of a site's VPN device: an IPv4 address or a DNS name (CONN-4). An IPv6 literal
/// parses (so the validator can explain CONN-4) but is rejected by validation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceHost {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Name(String),
}

/// Why a device host does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DeviceHostError {
    #[error("the device host is empty: give the public IPv4 address or DNS name of the VPN device")]
    Empty,
    #[error("the device host is {len} characters long; a DNS name has at most 253")]
    TooLong { len: usize },
    #[error(
        "{host:?} is neither an IPv4 address nor a valid DNS name (labels of 1-63 letters, digits \
         and '-', not starting or ending with '-')"
    )]
    Invalid { host: String },
}

impl FromStr for DeviceHost {
    type Err = DeviceHostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(DeviceHostError::Empty);
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(DeviceHost::Ipv4(v4));
        }
        let unbracketed = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(v6) = unbracketed.parse::<Ipv6Addr>() {
            return Ok(DeviceHost::Ipv6(v6));
        }
        let len = s.chars().count();
        if len > 253 {
            return Err(DeviceHostError::TooLong { len });
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        let invalid = || DeviceHostError::Invalid {
            host: s.chars().take(64).collect(),
        };
        let mut labels = 0;
        let mut last_all_digits = false;
        for label in name.split('.') {
            let ok_len = (1..=63).contains(&label.len());
            let ok_chars = label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok_len || !ok_chars || label.starts_with('-') || label.ends_with('-') {
                return Err(invalid());
            }
            last_all_digits = label.bytes().all(|b| b.is_ascii_digit());
            labels += 1;
        }
        // "10.0.0.256" or "1.2.3" look like broken IPv4 addresses, not names.
        if labels == 0 || last_all_digits {
            return Err(invalid());
        }
        Ok(DeviceHost::Name(name.to_ascii_lowercase()))
    }
}

impl TryFrom<String> for DeviceHost {
    type Error = DeviceHostError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DeviceHost> for String {
    fn from(h: DeviceHost) -> String {
        h.to_string()
    }
}

impl fmt::Display for DeviceHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceHost::Ipv4(a) => write!(f, "{a}"),
            DeviceHost::Ipv6(a) => write!(f, "{a}"),
            DeviceHost::Name(n) => f.write_str(n),
        }
    }
}

/// An on-premises site (the seed's "local network").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LocalSite {
    pub tenant: String,
    pub name: String,
    /// CONN-4: the public IPv4 address or DNS name of the site's VPN device (S2S-3: a software
    /// VPN on a server is fine).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device_host: DeviceHost,
    /// The device's UDP port; [`DEFAULT_WIREGUARD_PORT`] when `None`.
    #[serde(default)]
    pub device_port: Option<u16>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub address_prefixes: Vec<IpNet>,
    /// The device's WireGuard public key (base64), when known.
    #[serde(default)]
    pub device_public_key: Option<String>,
    /// Issue 17: the IKE identity the device presents on IPsec connections (an IPv4 address,
    /// an FQDN or `user@fqdn`; IPSEC-4); `None`: its `device_host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ike_identity: Option<String>,
}

impl LocalSite {
    /// `host:port` of the device's WireGuard (IPv6 in brackets).
    pub fn endpoint(&self) -> String {
        self.endpoint_at(self.device_port.unwrap_or(DEFAULT_WIREGUARD_PORT))
    }

    /// Issue 17: `host:port` of the device's IKE, where an IPsec gateway initiates to: the
    /// site's `device_port`, or [`super::DEFAULT_IKE_PORT`] (500) when not given.
    pub fn ike_endpoint(&self) -> String {
        self.endpoint_at(self.device_port.unwrap_or(super::DEFAULT_IKE_PORT))
    }

    /// The device's endpoint for a connection over `protocol`.
    pub fn endpoint_for(&self, protocol: super::TunnelProtocol) -> String {
        match protocol {
            super::TunnelProtocol::WireGuard => self.endpoint(),
            super::TunnelProtocol::IPsec => self.ike_endpoint(),
        }
    }

    /// The identity the device presents over IKE: its `ike_identity`, else its `device_host`.
    pub fn effective_ike_identity(&self) -> String {
        self.ike_identity
            .clone()
            .unwrap_or_else(|| self.device_host.to_string())
    }

    fn endpoint_at(&self, port: u16) -> String {
        match &self.device_host {
            DeviceHost::Ipv6(a) => format!("[{a}]:{port}"),
            h => format!("{h}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ike_endpoint_defaults_to_port_500_and_the_wireguard_one_to_51820() {
        let mut s = LocalSite {
            tenant: "acme".into(),
            name: "branch".into(),
            device_host: DeviceHost::Ipv4(Ipv4Addr::new(203, 0, 113, 7)),
            device_port: None,
            address_prefixes: Vec::new(),
            device_public_key: None,
            ike_identity: None,
        };
        assert_eq!(s.ike_endpoint(), "203.0.113.7:500");
        assert_eq!(s.endpoint(), "203.0.113.7:51820");
        assert_eq!(s.effective_ike_identity(), "203.0.113.7");
        s.device_port = Some(4500);
        s.ike_identity = Some("branch@vpn.example".into());
        assert_eq!(
            s.endpoint_for(crate::model::TunnelProtocol::IPsec),
            "203.0.113.7:4500"
        );
        assert_eq!(s.effective_ike_identity(), "branch@vpn.example");
    }

    #[test]
    fn device_host_parses() {
        assert_eq!(
            "203.0.113.7".parse(),
            Ok(DeviceHost::Ipv4(Ipv4Addr::new(203, 0, 113, 7)))
        );
        assert!(matches!(
            "2001:db8::1".parse::<DeviceHost>(),
            Ok(DeviceHost::Ipv6(_))
        ));
        assert_eq!(
            "VPN.Example.com.".parse(),
            Ok(DeviceHost::Name("vpn.example.com".into()))
        );
        assert!("10.0.0.256".parse::<DeviceHost>().is_err());
        assert!("-bad.example".parse::<DeviceHost>().is_err());
        assert!("".parse::<DeviceHost>().is_err());
        assert!("a..b".parse::<DeviceHost>().is_err());
    }
}
