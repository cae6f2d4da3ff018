//! A connection's IKE and ESP settings from its desired state: identities, suites, selectors,
//! lifetimes and the device's address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use isthmus_shared::desired::{IpsecPeerDesired, PeerDesired};
use isthmus_shared::model::{
    GatewayType, IpsecCipher, IpsecConnectionMode, IpsecDhGroup, IpsecPrf,
};

use crate::core::ike::crypto::{Aead, DhGroup, Prf, Secret};
use crate::core::ike::exchange::Config;
use crate::core::ike::proposal::{EspSuite, IkeSuite};
use crate::core::ike::wire::{IdType, Identification, TrafficSelector};

/// The port IKE moves to under NAT traversal when it started on 500 (RFC 7296 2.23).
pub const NAT_T_PORT: u16 = 4500;

/// What one IPsec connection runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The exchanges' configuration (PSK, identities, suites, selectors, forced NAT-T).
    pub ike: Config,
    pub mode: IpsecConnectionMode,
    /// The device's IKE address (`device_host:device_port`): where IKE_SA_INIT goes.
    pub device: SocketAddr,
    pub ike_lifetime: Duration,
    pub child_lifetime: Duration,
    /// The CHILD SA's lifetime in bytes, if any.
    pub child_bytes: Option<u64>,
    /// Dead peer detection: an INFORMATIONAL after this long without a message from the peer.
    pub dpd: Duration,
    /// S2S-2 (PolicyBased): the tunnel idles out and comes back on traffic; a Delete of the
    /// device leaves it idle rather than initiating again.
    pub on_demand: bool,
}

impl Settings {
    /// Whether the gateway starts IKE SAs itself (modes Default and InitiatorOnly).
    pub fn initiates(&self) -> bool {
        !matches!(self.mode, IpsecConnectionMode::ResponderOnly)
    }

    /// Whether the gateway answers the device's IKE_SA_INIT (modes Default and ResponderOnly).
    pub fn responds(&self) -> bool {
        !matches!(self.mode, IpsecConnectionMode::InitiatorOnly)
    }

    /// Where IKE goes from IKE_AUTH on, and ESP: port 500 floats to 4500 (RFC 7296 2.23),
    /// any other port stays.
    pub fn floated(&self) -> SocketAddr {
        float(self.device)
    }

    /// Whether two settings differ in anything an established SA depends on.
    pub fn same_as(&self, o: &Settings) -> bool {
        self.ike.psk == o.ike.psk
            && self.ike.local_id == o.ike.local_id
            && self.ike.remote_id == o.ike.remote_id
            && self.ike.ike == o.ike.ike
            && self.ike.esp == o.ike.esp
            && self.ike.local_ts == o.ike.local_ts
            && self.ike.remote_ts == o.ike.remote_ts
            && self.mode == o.mode
            && self.device == o.device
            && self.ike_lifetime == o.ike_lifetime
            && self.child_lifetime == o.child_lifetime
            && self.child_bytes == o.child_bytes
            && self.dpd == o.dpd
            && self.on_demand == o.on_demand
    }
}

/// RFC 7296 2.23: an IKE port of 500 floats to 4500; any other stays.
pub fn float(a: SocketAddr) -> SocketAddr {
    if a.port() == 500 {
        SocketAddr::new(a.ip(), NAT_T_PORT)
    } else {
        a
    }
}

/// An IKE identity as written in the model: an IPv4 (or IPv6) address, `user@fqdn`, or an FQDN.
pub fn identity(s: &str) -> Identification {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Identification {
            id_type: IdType::IPV4_ADDR,
            data: a.octets().to_vec(),
        },
        Ok(IpAddr::V6(a)) => Identification {
            id_type: IdType::IPV6_ADDR,
            data: a.octets().to_vec(),
        },
        Err(_) if s.contains('@') => Identification {
            id_type: IdType::RFC822_ADDR,
            data: s.as_bytes().to_vec(),
        },
        Err(_) => Identification {
            id_type: IdType::FQDN,
            data: s.as_bytes().to_vec(),
        },
    }
}

pub fn aead(c: IpsecCipher) -> Aead {
    match c {
        IpsecCipher::Aes128Gcm16 => Aead::AesGcm16_128,
        IpsecCipher::Aes256Gcm16 => Aead::AesGcm16_256,
        IpsecCipher::ChaCha20Poly1305 => Aead::ChaCha20Poly1305,
    }
}

fn prf(p: IpsecPrf) -> Prf {
    match p {
        IpsecPrf::HmacSha256 => Prf::HmacSha256,
        IpsecPrf::HmacSha384 => Prf::HmacSha384,
    }
}

fn dh(g: IpsecDhGroup) -> DhGroup {
    match g {
        IpsecDhGroup::Modp2048 => DhGroup::Modp2048,
        IpsecDhGroup::Ecp256 => DhGroup::Ecp256,
        IpsecDhGroup::Ecp384 => DhGroup::Ecp384,
        IpsecDhGroup::Curve25519 => DhGroup::Curve25519,
    }
}

fn push_unique(v: &mut Vec<TrafficSelector>, t: TrafficSelector) {
    if !v.contains(&t) {
        v.push(t);
    }
}

/// Why a peer's IPsec settings cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the device endpoint {0:?} is not an IP address and port")]
    Endpoint(Option<String>),
    #[error("no IKE proposal or no ESP cipher")]
    NoSuite,
}

/// The settings of an IPsec peer. RouteBased: one CHILD SA of `0.0.0.0/0` and `::/0` (the
/// forwarding table decides); PolicyBased: the connection's selectors.
pub fn settings(
    p: &PeerDesired,
    ipsec: &IpsecPeerDesired,
    gateway_type: GatewayType,
) -> Result<Settings, SettingsError> {
    let device = p
        .endpoint
        .as_deref()
        .and_then(|e| e.parse::<SocketAddr>().ok())
        .ok_or_else(|| SettingsError::Endpoint(p.endpoint.clone()))?;
    let params = &ipsec.parameters;
    let ike: Vec<IkeSuite> = params
        .ike_proposals
        .iter()
        .map(|x| IkeSuite {
            aead: aead(x.cipher),
            prf: prf(x.prf),
            dh: dh(x.dh_group),
        })
        .collect();
    let esp: Vec<EspSuite> = params
        .esp_ciphers
        .iter()
        .map(|c| EspSuite { aead: aead(*c) })
        .collect();
    if ike.is_empty() || esp.is_empty() {
        return Err(SettingsError::NoSuite);
    }
    let (mut local_ts, mut remote_ts) = (Vec::new(), Vec::new());
    if gateway_type == GatewayType::PolicyBased && !p.policy_selectors.is_empty() {
        for s in &p.policy_selectors {
            push_unique(&mut local_ts, TrafficSelector::from_net(s.local));
            push_unique(&mut remote_ts, TrafficSelector::from_net(s.remote));
        }
    } else {
        local_ts = vec![TrafficSelector::any(false), TrafficSelector::any(true)];
        remote_ts = local_ts.clone();
    }
    let remote_id = ipsec
        .remote_id
        .clone()
        .unwrap_or_else(|| device.ip().to_string());
    Ok(Settings {
        ike: Config {
            psk: Secret::from_slice(ipsec.psk.expose().as_bytes()),
            local_id: identity(&ipsec.local_id),
            remote_id: Some(identity(&remote_id)),
            ike,
            esp,
            local_ts,
            remote_ts,
            force_encapsulation: true,
        },
        mode: params.mode,
        device,
        ike_lifetime: Duration::from_secs(u64::from(params.ike_lifetime_secs.max(1))),
        child_lifetime: Duration::from_secs(u64::from(params.child_lifetime_secs.max(1))),
        child_bytes: params
            .child_lifetime_kilobytes
            .map(|k| k.saturating_mul(1024)),
        dpd: Duration::from_secs(u64::from(params.dpd_interval_secs.max(1))),
        on_demand: p.idle_timeout_secs.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_500_floats_to_4500_and_other_ports_stay() {
        let a: SocketAddr = "192.0.2.1:500".parse().expect("addr");
        assert_eq!(float(a).port(), 4500);
        let b: SocketAddr = "192.0.2.1:51820".parse().expect("addr");
        assert_eq!(float(b), b);
    }

    #[test]
    fn identities_by_form() {
        assert_eq!(identity("192.0.2.1").id_type, IdType::IPV4_ADDR);
        assert_eq!(identity("192.0.2.1").data, vec![192, 0, 2, 1]);
        assert_eq!(identity("vpn@example.com").id_type, IdType::RFC822_ADDR);
        assert_eq!(identity("vpn.example.com").id_type, IdType::FQDN);
    }
}
