//! Issue 17: the configuration of a site device at the far end of an IPsec site-to-site
//! connection: a strongSwan `swanctl.conf` that works as is on a strongSwan 5.9 site
//! ([`IpsecDeviceConfig::to_swanctl`]) and a plain-text parameter sheet with every value a
//! device administrator types into another vendor's firewall ([`IpsecDeviceConfig::to_sheet`]).
//!
//! The values follow the gateway: IKEv2 only, the connection's shared key as the pre-shared
//! key, the gateway's public IPv4 address as its identity and as the address the device
//! connects to, the gateway's one UDP port (`listen_port`) for IKE and ESP in UDP (NAT-T is
//! always on: `encap = yes`), the proposals and lifetimes of the connection's policy or the
//! defaults, rekeying at 90% of each lifetime, dead peer detection every 30 s. The traffic
//! selectors are the site's prefixes on the device side and, on the gateway side, what the
//! WireGuard export would route to the gateway (RouteBased: the VNet, peered VNets, transit
//! sites, point-to-site pools; PolicyBased: the local sides of the connection's selectors).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::device::{DeviceError, site_device_tunnel_config};
use crate::model::{
    GatewayType, IpsecConnectionMode, IpsecParameters, QualifiedName, Topology, TunnelProtocol,
};

/// Why no IPsec configuration can be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpsecDeviceError {
    #[error("connection {0} uses WireGuard, not IPsec: export its wg-quick file instead")]
    NotIpsec(String),
    #[error(
        "gateway {0} has no public IPv4 endpoint yet: its IKE identity and address are not known"
    )]
    NoGatewayAddress(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// Every parameter of one IPsec tunnel, as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecDeviceConfig {
    pub connection: QualifiedName,
    pub site: QualifiedName,
    pub gateway: QualifiedName,
    pub gateway_type: GatewayType,
    /// 1, or 2 for the second tunnel of an active-active gateway.
    pub tunnel: u8,
    /// Where the device connects to: the gateway's public IPv4 address and its UDP port.
    pub gateway_endpoint: SocketAddr,
    /// The gateway's IKE identity (its public IPv4 address).
    pub gateway_id: String,
    /// The identity the device presents (the site's `ike_identity`, else its device host).
    pub device_id: String,
    /// The device's own address or name (`device_host`), for the sheet.
    pub device_host: String,
    /// The device's IKE port the gateway initiates to.
    pub device_ike_port: u16,
    /// The IKEv2 pre-shared key (the connection's shared key, GW-4).
    pub psk: String,
    pub parameters: IpsecParameters,
    /// The device side of the CHILD SA: the site's prefixes.
    pub local_ts: Vec<IpNet>,
    /// The gateway side of the CHILD SA.
    pub remote_ts: Vec<IpNet>,
}

/// The IPsec configuration of tunnel `tunnel` (1, or 2 on an active-active gateway) of the
/// device at the far end of IPsec connection `connection`.
pub fn site_ipsec_config(
    topology: &Topology,
    connection: &QualifiedName,
    tunnel: u8,
) -> Result<IpsecDeviceConfig, IpsecDeviceError> {
    let unknown = || DeviceError::UnknownConnection(connection.to_string());
    let c = topology
        .connection(&connection.tenant, &connection.name)
        .ok_or_else(unknown)?;
    if c.protocol != TunnelProtocol::IPsec {
        return Err(IpsecDeviceError::NotIpsec(connection.to_string()));
    }
    // The WireGuard export knows the tunnel's gateway endpoint and what the device routes to
    // the gateway: the IPsec export uses the same lists.
    let wg = site_device_tunnel_config(topology, connection, tunnel)?;
    let site_name = c.site().ok_or_else(unknown)?;
    let site = topology
        .sites
        .iter()
        .find(|s| s.tenant == c.tenant && s.name == site_name)
        .ok_or_else(unknown)?;
    let gw = topology
        .gateways
        .iter()
        .find(|g| g.tenant == c.tenant && g.name == c.gateway)
        .ok_or_else(unknown)?;
    let peer = wg.peers.first().ok_or_else(unknown)?;
    let no_address = || IpsecDeviceError::NoGatewayAddress(gw.qualified_name().to_string());
    let endpoint: SocketAddr = peer
        .endpoint
        .as_deref()
        .and_then(|e| e.parse().ok())
        .ok_or_else(no_address)?;
    let IpAddr::V4(_) = endpoint.ip() else {
        return Err(no_address());
    };
    // The gateway's identity is instance 0's address (what its desired state carries), on
    // both tunnels.
    let gateway_id = match gw.public_endpoint.map(|e| e.ip()) {
        Some(IpAddr::V4(a)) => a.to_string(),
        _ => return Err(no_address()),
    };
    let psk = c
        .shared_key
        .as_ref()
        .map(|k| k.expose().to_owned())
        .ok_or_else(|| DeviceError::NoSharedKey(connection.to_string()))?;
    let mut local_ts = site.address_prefixes.clone();
    local_ts.sort_by(crate::prefix::net_order);
    Ok(IpsecDeviceConfig {
        connection: connection.clone(),
        site: QualifiedName::new(&site.tenant, &site.name),
        gateway: gw.qualified_name(),
        gateway_type: gw.gateway_type,
        tunnel,
        gateway_endpoint: endpoint,
        gateway_id,
        device_id: site.effective_ike_identity(),
        device_host: site.device_host.to_string(),
        device_ike_port: site.device_port.unwrap_or(crate::model::DEFAULT_IKE_PORT),
        psk,
        parameters: IpsecParameters::of(c.ipsec_policy.as_ref(), c.connection_mode),
        local_ts,
        remote_ts: peer.allowed_ips.clone(),
    })
}

/// A `swanctl.conf` section name from a connection name: ASCII letters, digits, `-` and `_`
/// (NAME-2 names may also hold `.`, which swanctl reads as a section separator).
pub fn section_name(connection: &str) -> String {
    let s: String = connection
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "isthmus".to_owned()
    } else {
        s
    }
}

/// 90% of a lifetime, when the device rekeys.
fn rekey_at(lifetime: u64) -> u64 {
    lifetime * 9 / 10
}

fn join<T: ToString>(list: &[T]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl IpsecDeviceConfig {
    /// The section name of this tunnel's connection and child (`hub-branch`, or
    /// `hub-branch-tunnel2`).
    pub fn name(&self) -> String {
        let base = section_name(&self.connection.name);
        if self.tunnel == 2 {
            format!("{base}-tunnel2")
        } else {
            base
        }
    }

    /// The file name of the exported `swanctl.conf` (`NAME.swanctl.conf`).
    pub fn file_name(&self) -> String {
        format!("{}.swanctl.conf", self.name())
    }

    /// The IKE proposals, `aes256gcm16-prfsha384-ecp384,...`.
    pub fn ike_proposals(&self) -> String {
        let list: Vec<String> = self
            .parameters
            .ike_proposals
            .iter()
            .map(|p| p.keyword())
            .collect();
        list.join(",")
    }

    /// The ESP proposals, `aes256gcm16,...` (no PFS group: the CHILD SAs take their keys from
    /// the IKE SA).
    pub fn esp_proposals(&self) -> String {
        join(&self.parameters.esp_ciphers)
    }

    /// `start` unless the gateway is the only one to initiate (connection mode InitiatorOnly).
    fn start_action(&self) -> &'static str {
        match self.parameters.mode {
            IpsecConnectionMode::InitiatorOnly => "none",
            _ => "start",
        }
    }

    /// What the device does when the gateway closes the CHILD SA: start it again only when the
    /// gateway never initiates (ResponderOnly). In mode Default both ends initiate and the
    /// gateway deletes the duplicate IKE SA; a device that restarted on that Delete would make
    /// another duplicate, and so on (measured with strongSwan 5.9.8: hundreds of IKE SAs a
    /// second). The gateway re-initiates itself after a close in modes Default and
    /// InitiatorOnly, and the device's DPD (`dpd_action = restart`) covers a lost gateway.
    fn close_action(&self) -> &'static str {
        match self.parameters.mode {
            IpsecConnectionMode::ResponderOnly => "start",
            _ => "none",
        }
    }

    /// A `swanctl.conf` for a strongSwan 5.9 site: `/etc/swanctl/conf.d/NAME.conf`, then
    /// `swanctl --load-all`.
    pub fn to_swanctl(&self) -> String {
        let p = &self.parameters;
        let name = self.name();
        let ike = u64::from(p.ike_lifetime_secs);
        let child = u64::from(p.child_lifetime_secs);
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# strongSwan swanctl.conf (5.9) for site {} on IPsec connection {} to gateway {}{}.",
            self.site,
            self.connection,
            self.gateway,
            if self.tunnel == 2 {
                " (tunnel 2, to the gateway's second instance)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            o,
            "# Copy it to /etc/swanctl/conf.d/{name}.conf and run `swanctl --load-all`."
        );
        let _ = writeln!(
            o,
            "# IKEv2 with a pre-shared key; IKE and ESP in UDP both go to the gateway's port {}.",
            self.gateway_endpoint.port()
        );
        if self.tunnel == 2 {
            let _ = writeln!(
                o,
                "# Load it beside tunnel 1's file: both tunnels carry the same selectors, so the \
                 kernel uses one of them at a time\n# (for both at once, give each an XFRM \
                 interface with if_id_in/if_id_out and route the gateway's prefixes over both)."
            );
        }
        if self.device_ike_port != crate::model::DEFAULT_IKE_PORT {
            let _ = writeln!(
                o,
                "# The gateway initiates to this device on UDP port {}: set charon.port to it \
                 in strongswan.conf.",
                self.device_ike_port
            );
        }
        let _ = writeln!(o, "connections {{");
        let _ = writeln!(o, "    {name} {{");
        let _ = writeln!(o, "        version = 2");
        let _ = writeln!(o, "        remote_addrs = {}", self.gateway_endpoint.ip());
        let _ = writeln!(o, "        remote_port = {}", self.gateway_endpoint.port());
        if self.gateway_endpoint.port() != crate::model::DEFAULT_IKE_PORT {
            // strongSwan 5.9 initiating from its port 500 floats both ports to 4500 after
            // IKE_SA_INIT, away from a gateway port other than 500; from its NAT-T port it
            // keeps the gateway's one port for IKE and ESP alike.
            let _ = writeln!(o, "        local_port = 4500");
        }
        let _ = writeln!(o, "        mobike = no");
        let _ = writeln!(o, "        encap = yes");
        let _ = writeln!(o, "        proposals = {}", self.ike_proposals());
        let _ = writeln!(o, "        rekey_time = {}s", rekey_at(ike));
        let _ = writeln!(o, "        over_time = {}s", ike - rekey_at(ike));
        let _ = writeln!(o, "        dpd_delay = {}s", p.dpd_interval_secs);
        let _ = writeln!(o, "        local {{");
        let _ = writeln!(o, "            auth = psk");
        let _ = writeln!(o, "            id = {}", self.device_id);
        let _ = writeln!(o, "        }}");
        let _ = writeln!(o, "        remote {{");
        let _ = writeln!(o, "            auth = psk");
        let _ = writeln!(o, "            id = {}", self.gateway_id);
        let _ = writeln!(o, "        }}");
        let _ = writeln!(o, "        children {{");
        let _ = writeln!(o, "            {name} {{");
        let _ = writeln!(o, "                local_ts = {}", join(&self.local_ts));
        let _ = writeln!(o, "                remote_ts = {}", join(&self.remote_ts));
        let _ = writeln!(
            o,
            "                esp_proposals = {}",
            self.esp_proposals()
        );
        let _ = writeln!(o, "                rekey_time = {}s", rekey_at(child));
        let _ = writeln!(o, "                life_time = {child}s");
        if let Some(kb) = p.child_lifetime_kilobytes {
            let bytes = kb.saturating_mul(1024);
            let _ = writeln!(o, "                rekey_bytes = {}", rekey_at(bytes));
            let _ = writeln!(o, "                life_bytes = {bytes}");
        }
        let _ = writeln!(o, "                dpd_action = restart");
        let _ = writeln!(o, "                close_action = {}", self.close_action());
        let _ = writeln!(o, "                start_action = {}", self.start_action());
        let _ = writeln!(o, "            }}");
        let _ = writeln!(o, "        }}");
        let _ = writeln!(o, "    }}");
        let _ = writeln!(o, "}}");
        let _ = writeln!(o, "secrets {{");
        let _ = writeln!(o, "    ike-{name} {{");
        let _ = writeln!(o, "        id-1 = {}", self.gateway_id);
        let _ = writeln!(o, "        id-2 = {}", self.device_id);
        let _ = writeln!(o, "        secret = \"{}\"", self.psk);
        let _ = writeln!(o, "    }}");
        let _ = writeln!(o, "}}");
        o
    }

    /// The parameter sheet: every value of the tunnel, one per line, for any IKEv2 device.
    pub fn to_sheet(&self) -> String {
        let p = &self.parameters;
        let mut o = String::new();
        let mut line = |k: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(o, "{k:<32}{v}");
        };
        line("Connection", &self.connection);
        line("Site", &self.site);
        line("Gateway", &self.gateway);
        if self.tunnel == 2 {
            line("Tunnel", &"2 (to the gateway's second instance)");
        }
        line("Gateway type", &format!("{:?}", self.gateway_type));
        line("IKE version", &"IKEv2 (IKEv1 is not offered)");
        line("Gateway address", &self.gateway_endpoint.ip());
        line(
            "Gateway port (IKE and ESP)",
            &format!(
                "UDP {} (IKE, with the RFC 3948 non-ESP marker from IKE_AUTH on, and ESP in UDP)",
                self.gateway_endpoint.port()
            ),
        );
        line(
            "Gateway IKE identity",
            &format!("{} (IPv4 address)", self.gateway_id),
        );
        line("Device address", &self.device_host);
        line("Device IKE port", &format!("UDP {}", self.device_ike_port));
        line("Device IKE identity", &self.device_id);
        line("Authentication", &"pre-shared key");
        line("Pre-shared key", &self.psk);
        line("IKE proposals", &self.ike_proposals());
        line(
            "ESP proposals",
            &format!("{} (no PFS group)", self.esp_proposals()),
        );
        line(
            "IKE SA lifetime",
            &format!(
                "{} s (the gateway rekeys at 90%: {} s)",
                p.ike_lifetime_secs,
                rekey_at(u64::from(p.ike_lifetime_secs))
            ),
        );
        line(
            "CHILD SA lifetime",
            &format!(
                "{} s (the gateway rekeys at 90%: {} s)",
                p.child_lifetime_secs,
                rekey_at(u64::from(p.child_lifetime_secs))
            ),
        );
        match p.child_lifetime_kilobytes {
            Some(kb) => line("CHILD SA data lifetime", &format!("{kb} KB")),
            None => line("CHILD SA data lifetime", &"none"),
        }
        line(
            "Local traffic selectors (device)",
            &join(&self.local_ts).replace(',', ", "),
        );
        line(
            "Remote traffic selectors (gateway)",
            &join(&self.remote_ts).replace(',', ", "),
        );
        line(
            "Dead peer detection",
            &format!(
                "every {} s without traffic; restart on failure",
                p.dpd_interval_secs
            ),
        );
        line("NAT traversal", &"always (UDP encapsulation forced)");
        line("MOBIKE", &"no");
        line(
            "Connection mode",
            &match p.mode {
                IpsecConnectionMode::Default => "Default (either side initiates)",
                IpsecConnectionMode::InitiatorOnly => {
                    "InitiatorOnly (the gateway initiates; the device only answers)"
                }
                IpsecConnectionMode::ResponderOnly => {
                    "ResponderOnly (the device initiates; the gateway only answers)"
                }
            },
        );
        o
    }
}
