//! WireGuard configurations for the other end of a tunnel: a site's VPN device (S2S-1: the
//! exact parameters a device must meet) and a point-to-site client (P2S-5, P2S-8).
//!
//! The result names every parameter: the gateway's public key and endpoint, the derived
//! preshared key, the allowed IPs (everything the gateway routes towards the device, computed
//! from the effective routes, transit included), the keepalive and, for PolicyBased gateways,
//! the selectors and idle timeout (S2S-2). [`DeviceConfig::to_wg_quick`] renders it in the
//! `wg-quick` format with a placeholder for the device's own private key, which never leaves the
//! device.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::desired::{PERSISTENT_KEEPALIVE_SECS, Secret, TUNNEL_MTU};
use crate::model::{GatewayType, QualifiedName, Topology, TrafficSelector};
use crate::prefix::net_order;
use crate::psk::{PeerIdentity, derive_preshared_key};
use crate::resolved::Net;
use crate::routes::{GatewayRoutes, NextHop, RouteOrigin};

/// The placeholder written where the device's private key goes.
pub const PRIVATE_KEY_PLACEHOLDER: &str = "<the device's own private key>";

/// One peer (a gateway) in a device configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePeer {
    pub gateway: QualifiedName,
    /// The gateway's public key; `None` until the gateway is created.
    pub public_key: Option<String>,
    pub preshared_key: Option<Secret>,
    /// The gateway's public endpoint (GW-3), `None` until allocated.
    pub endpoint: Option<String>,
    /// P2S-4: where the gateway's TCP transport listens (`host:port`), for clients whose UDP
    /// is blocked; written as a `# TcpEndpoint = ...` comment that `isthmus-client connect`
    /// reads and WireGuard ignores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_endpoint: Option<String>,
    /// Issue 16: the endpoint of the gateway's other instance while it is redundant
    /// (`Gateway::secondary_endpoint`), written as a `# FailoverEndpoint = ...` comment that
    /// `isthmus-client connect` fails over to and WireGuard ignores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_endpoint: Option<String>,
    /// The TCP transport on the other instance's host (`# FailoverTcpEndpoint = ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_tcp_endpoint: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    pub persistent_keepalive_secs: Option<u16>,
    /// GW-1: what a PolicyBased gateway accepts (its local side is the device's remote side).
    pub selectors: Vec<TrafficSelector>,
    /// S2S-2: PolicyBased tunnels idle out after this many seconds.
    pub idle_timeout_secs: Option<u32>,
}

/// A WireGuard configuration for a site device or a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// The interface's addresses (a client's assigned address; empty for a site device).
    pub addresses: Vec<IpNet>,
    /// The device's listen port (a site device's port; `None` for a roaming client).
    pub listen_port: Option<u16>,
    /// DNS servers of the VNet (clients only).
    pub dns: Vec<IpAddr>,
    /// The tunnel MTU the device must use ([`TUNNEL_MTU`]).
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    pub peers: Vec<DevicePeer>,
    /// Issue 16 item 6: which tunnel of a connection to an active-active gateway this is
    /// (`None` for every other configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_active: Option<ActiveActiveTunnel>,
}

/// Issue 16 item 6: the metric of the gateway's prefixes through tunnel 1 and tunnel 2 of a
/// site device connected to an active-active gateway: tunnel 1 is preferred while it lives.
pub const ACTIVE_ACTIVE_METRICS: [u32; 2] = [100, 200];

/// Issue 16 item 6: one of the two tunnels of a site-to-site connection to an active-active
/// gateway. Tunnel 1 peers with instance 0 (`Gateway::public_endpoint`) and listens on the
/// site's `device_port`; tunnel 2 peers with instance 1 (`Gateway::secondary_endpoint`) and
/// listens on `device_port + 1`. The device runs them as two WireGuard interfaces with the
/// same private key (one interface cannot route a prefix to two peers), with wg-quick's own
/// routes off (`Table = off`) and the gateway's prefixes routed through each interface by
/// `PostUp` lines, at [`ACTIVE_ACTIVE_METRICS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveActiveTunnel {
    /// 1 or 2.
    pub tunnel: u8,
    /// The metric of this tunnel's routes.
    pub metric: u32,
    /// The connection (named in the comment that points at the other tunnel's file).
    pub connection: QualifiedName,
    /// The device port of the other tunnel.
    pub other_port: u16,
    /// The prefixes routed through the tunnel (its peer's allowed IPs).
    pub routes: Vec<IpNet>,
}

impl ActiveActiveTunnel {
    /// The file name a tunnel's configuration is exported as: `NAME.conf` for tunnel 1,
    /// `NAME-tunnel2.conf` for tunnel 2.
    pub fn file_name(connection: &str, tunnel: u8) -> String {
        if tunnel == 2 {
            format!("{connection}-tunnel2.conf")
        } else {
            format!("{connection}.conf")
        }
    }

    /// The `[Interface]` lines: comments saying what the device must do, `Table = off` and
    /// the `PostUp` routes.
    fn write_interface(&self, s: &mut String) {
        let other = 3 - self.tunnel.clamp(1, 2);
        let conn = &self.connection;
        let other_file = Self::file_name(&conn.name, other);
        let instance = self.tunnel.clamp(1, 2) - 1;
        let [first, second] = ACTIVE_ACTIVE_METRICS;
        let lines = [
            format!(
                "Active-active gateway: tunnel {} of 2 of connection {conn}, to gateway instance {instance}.",
                self.tunnel
            ),
            format!(
                "The other tunnel is {other_file} (device-config?tunnel={other}): another WireGuard"
            ),
            format!(
                "interface with the same private key, listening on port {}. Open both ports.",
                self.other_port
            ),
            format!(
                "Route the gateway's prefixes through tunnel 1 (metric {first}) ahead of tunnel 2 (metric {second}),"
            ),
            "as the PostUp lines do, and withdraw tunnel 1's routes while tunnel 1 is dead. wg-quick".to_owned(),
            "cannot detect that: run a watchdog on `wg show <tunnel 1> latest-handshakes` (older than".to_owned(),
            "135 s: dead), or dynamic routing (BGP, which Isthmus does not offer yet). Without it,".to_owned(),
            "traffic from the site to the VNet is lost while tunnel 1 is down; traffic from the VNet".to_owned(),
            "to the site continues through tunnel 2. On Linux use loose reverse-path filtering".to_owned(),
            "(rp_filter = 2) on both interfaces: tunnel 2 receives traffic whose route back is tunnel 1.".to_owned(),
        ];
        for l in lines {
            let _ = writeln!(s, "# {l}");
        }
        let _ = writeln!(s, "Table = off");
        for r in &self.routes {
            let _ = writeln!(s, "PostUp = ip route add {r} dev %i metric {}", self.metric);
        }
    }
}

fn default_mtu() -> u16 {
    TUNNEL_MTU
}

/// GW-10: why an endpoint address is no use to a device on another host (loopback,
/// unspecified or link-local), or `None` for an address a device may reach.
pub fn unreachable_endpoint(addr: IpAddr) -> Option<&'static str> {
    let v6_link_local = |a: std::net::Ipv6Addr| (a.segments()[0] & 0xffc0) == 0xfe80;
    match addr {
        a if a.is_loopback() => Some("loopback"),
        a if a.is_unspecified() => Some("unspecified"),
        IpAddr::V4(a) if a.is_link_local() => Some("link-local"),
        IpAddr::V6(a) if v6_link_local(a) => Some("link-local"),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => unreachable_endpoint(IpAddr::V4(v4)),
            None => None,
        },
        IpAddr::V4(_) => None,
    }
}

/// GW-10: the warning for an endpoint no other host can reach, naming the option that sets the
/// real address; `None` for a reachable one.
pub fn endpoint_warning(endpoint: std::net::SocketAddr) -> Option<String> {
    unreachable_endpoint(endpoint.ip()).map(|kind| {
        format!(
            "the gateway's endpoint {endpoint} is a {kind} address: no device on another host can \
             reach it; start the worker that runs the gateway with --public-address ADDRESS (an \
             address of the worker host that devices reach)"
        )
    })
}

/// Why no configuration can be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DeviceError {
    #[error("there is no site-to-site connection {0} (or its site or gateway is missing)")]
    UnknownConnection(String),
    #[error("there is no point-to-site client {client:?} on gateway {gateway}")]
    UnknownClient { gateway: String, client: String },
    #[error("connection {0} has no valid shared key yet")]
    NoSharedKey(String),
    #[error(
        "gateway {0} is not active-active: its site devices have one tunnel (set active_active on a VpnGw SKU for two)"
    )]
    NotActiveActive(String),
    #[error(
        "gateway {0} runs on one instance now: tunnel 2 exists while it runs on two workers with heartbeat addresses"
    )]
    OneInstance(String),
    #[error(
        "the site's device port {0} leaves no port for tunnel 2 (device_port + 1); choose a lower device_port"
    )]
    NoSecondPort(u16),
    #[error(
        "there is no tunnel {0}: a connection has tunnel 1, and tunnel 2 on an active-active gateway"
    )]
    NoSuchTunnel(u8),
}

/// Everything `routes` sends towards the device, except routes back into `exclude` (the device's
/// own tunnel), the default route, and single client addresses (their pool covers them).
fn advertised(routes: &GatewayRoutes, exclude: &dyn Fn(&NextHop) -> bool) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = routes
        .routes
        .iter()
        .filter(|r| r.active)
        .filter(|r| {
            !matches!(
                r.origin,
                RouteOrigin::Default | RouteOrigin::P2sClient { .. }
            )
        })
        .filter(|r| !exclude(&r.next_hop))
        .map(|r| r.prefix)
        .collect();
    out.sort_by(net_order);
    out.dedup();
    out
}

/// S2S-1: the configuration of the device at the far end of site-to-site connection `connection`
/// (on an active-active gateway, its tunnel 1: [`site_device_tunnel_config`]).
pub fn site_device_config(
    topology: &Topology,
    connection: &QualifiedName,
) -> Result<DeviceConfig, DeviceError> {
    site_device_tunnel_config(topology, connection, 1)
}

/// S2S-1 and issue 16 item 6: the configuration of tunnel `tunnel` (1 or 2) of the device at the
/// far end of site-to-site connection `connection`. Tunnel 1 is the only one of a gateway that
/// is not active-active; an active-active gateway's connection has two ([`ActiveActiveTunnel`]),
/// tunnel 2 only while the gateway runs on two instances (its `secondary_endpoint` is set).
pub fn site_device_tunnel_config(
    topology: &Topology,
    connection: &QualifiedName,
    tunnel: u8,
) -> Result<DeviceConfig, DeviceError> {
    let net = Net::new(topology);
    let unknown = || DeviceError::UnknownConnection(connection.to_string());
    let c = topology
        .connection(&connection.tenant, &connection.name)
        .ok_or_else(unknown)?;
    let site_name = c.site().ok_or_else(unknown)?;
    let g = net
        .gateway_index(&c.tenant, &c.gateway)
        .ok_or_else(unknown)?;
    let s = net.site_index(&c.tenant, site_name).ok_or_else(unknown)?;
    let gw = &topology.gateways[g];
    let site = &topology.sites[s];
    let site_q = QualifiedName::new(&site.tenant, &site.name);
    let routes = net.gateway_routes(g);
    let psk = c
        .shared_key
        .as_ref()
        .and_then(|k| {
            derive_preshared_key(
                k.expose(),
                &PeerIdentity::gateway(&gw.qualified_name()),
                &PeerIdentity::site(&site_q),
            )
            .ok()
        })
        .ok_or_else(|| DeviceError::NoSharedKey(connection.to_string()))?;
    let device_port = site
        .device_port
        .unwrap_or(crate::model::DEFAULT_WIREGUARD_PORT);
    let second_port = device_port.checked_add(1);
    let endpoint = match tunnel {
        1 => gw.public_endpoint,
        2 if !gw.active_active => {
            return Err(DeviceError::NotActiveActive(
                gw.qualified_name().to_string(),
            ));
        }
        2 if gw.secondary_endpoint.is_none() => {
            return Err(DeviceError::OneInstance(gw.qualified_name().to_string()));
        }
        2 if second_port.is_none() => return Err(DeviceError::NoSecondPort(device_port)),
        2 => gw.secondary_endpoint,
        n => return Err(DeviceError::NoSuchTunnel(n)),
    };
    let cq = c.qualified_name();
    let selectors: Vec<TrafficSelector> = routes
        .selectors
        .iter()
        .filter(|s| s.connection == cq)
        .map(|s| s.selector)
        .collect();
    let allowed_ips = match gw.gateway_type {
        GatewayType::PolicyBased => {
            let mut l: Vec<IpNet> = selectors.iter().map(|s| s.local).collect();
            l.sort_by(net_order);
            l.dedup();
            l
        }
        GatewayType::RouteBased => advertised(
            &routes,
            &|h| matches!(h, NextHop::SiteToSite { connection, .. } | NextHop::ForcedTunnel { connection, .. } if *connection == cq),
        ),
    };
    let (listen_port, other_port) = match (tunnel, second_port) {
        (2, Some(p)) => (p, device_port),
        (_, p) => (device_port, p.unwrap_or(device_port)),
    };
    let active_active = gw.active_active.then(|| ActiveActiveTunnel {
        tunnel,
        metric: ACTIVE_ACTIVE_METRICS[usize::from(tunnel == 2)],
        connection: cq.clone(),
        other_port,
        routes: allowed_ips.clone(),
    });
    Ok(DeviceConfig {
        addresses: Vec::new(),
        listen_port: Some(listen_port),
        dns: Vec::new(),
        mtu: TUNNEL_MTU,
        active_active,
        peers: vec![DevicePeer {
            gateway: gw.qualified_name(),
            public_key: gw.public_key.clone(),
            preshared_key: Some(Secret::new(psk.to_base64())),
            endpoint: endpoint.map(|e| e.to_string()),
            tcp_endpoint: None,
            // A site device needs no second endpoint: after a failover the new active instance
            // initiates the handshake to the device, and WireGuard's roaming follows it.
            failover_endpoint: None,
            failover_tcp_endpoint: None,
            allowed_ips,
            persistent_keepalive_secs: match gw.gateway_type {
                GatewayType::RouteBased => Some(PERSISTENT_KEEPALIVE_SECS),
                GatewayType::PolicyBased => None,
            },
            selectors,
            idle_timeout_secs: gw.gateway_type.idle_timeout_secs(),
        }],
    })
}

/// P2S-5 / P2S-6 / P2S-8: the configuration of point-to-site client `client` of the
/// configuration on `gateway`: one peer for the home gateway and one per additional VNet's
/// gateway, each with everything that gateway reaches (its VNet, its sites and its transit).
/// The persistent keepalive keeps the roaming client's NAT mapping open; WireGuard reconnects by
/// itself after a reboot or a network change, with no DDNS.
pub fn p2s_client_config(
    topology: &Topology,
    gateway: &QualifiedName,
    client: &str,
) -> Result<DeviceConfig, DeviceError> {
    let net = Net::new(topology);
    let unknown = || DeviceError::UnknownClient {
        gateway: gateway.to_string(),
        client: client.to_owned(),
    };
    let pi = net
        .p2s_index(&gateway.tenant, &gateway.name)
        .ok_or_else(unknown)?;
    let p = &topology.point_to_site[pi];
    let c = p
        .clients
        .iter()
        .find(|c| c.name == client && p.is_authorised(c))
        .ok_or_else(unknown)?;
    let mut gws: Vec<usize> = Vec::new();
    if let Some(g) = net.gateway_index(&gateway.tenant, &gateway.name) {
        gws.push(g);
    }
    for x in &p.additional_vnets {
        if let Some(g) = net.gateway_of_vnet(&p.tenant, x)
            && !gws.contains(&g)
        {
            gws.push(g);
        }
    }
    let mut taken: Vec<IpNet> = Vec::new();
    let mut peers = Vec::new();
    let mut dns = Vec::new();
    for g in gws {
        let gw = &topology.gateways[g];
        let routes = net.gateway_routes(g);
        let allowed_ips: Vec<IpNet> = advertised(&routes, &|h| *h == NextHop::Drop)
            .into_iter()
            .filter(|n| !p.address_pool.iter().any(|pool| pool.trunc() == *n))
            .filter(|n| !taken.contains(n))
            .collect();
        taken.extend(allowed_ips.iter().copied());
        if let Some(v) = topology.vnet(&gw.tenant, &gw.vnet) {
            dns.extend(v.dns_servers.iter().copied());
        }
        peers.push(DevicePeer {
            gateway: gw.qualified_name(),
            public_key: gw.public_key.clone(),
            preshared_key: None,
            endpoint: gw.public_endpoint.map(|e| e.to_string()),
            tcp_endpoint: None,
            // Issue 16: a client behind NAT may not be reachable by the other instance after
            // a failover, so the package names it and `isthmus-client connect` switches.
            failover_endpoint: gw
                .public_endpoint
                .and(gw.secondary_endpoint)
                .map(|e| e.to_string()),
            failover_tcp_endpoint: None,
            allowed_ips,
            persistent_keepalive_secs: Some(PERSISTENT_KEEPALIVE_SECS),
            selectors: Vec::new(),
            idle_timeout_secs: None,
        });
    }
    dns.dedup();
    Ok(DeviceConfig {
        addresses: vec![IpNet::from(c.address)],
        listen_port: None,
        dns,
        mtu: TUNNEL_MTU,
        peers,
        active_active: None,
    })
}

impl DeviceConfig {
    /// P2S-4: names, for each peer with an endpoint, the TCP transport on the same host at
    /// `port` (the workers' `--tcp-listen` port), and likewise on the other instance's host
    /// for a peer with a failover endpoint.
    pub fn with_tcp_port(mut self, port: u16) -> Self {
        let on_port = |e: Option<&str>| {
            e.and_then(|e| e.parse::<std::net::SocketAddr>().ok())
                .map(|e| std::net::SocketAddr::new(e.ip(), port).to_string())
        };
        for p in &mut self.peers {
            p.tcp_endpoint = on_port(p.endpoint.as_deref());
            p.failover_tcp_endpoint = on_port(p.failover_endpoint.as_deref());
        }
        self
    }

    /// The configuration in `wg-quick` format; the private key is a placeholder.
    pub fn to_wg_quick(&self) -> String {
        let mut s = String::new();
        let join = |v: &[IpNet]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "[Interface]");
        let _ = writeln!(s, "PrivateKey = {PRIVATE_KEY_PLACEHOLDER}");
        if !self.addresses.is_empty() {
            let _ = writeln!(s, "Address = {}", join(&self.addresses));
        }
        if let Some(port) = self.listen_port {
            let _ = writeln!(s, "ListenPort = {port}");
        }
        if !self.dns.is_empty() {
            let d: Vec<String> = self.dns.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "DNS = {}", d.join(", "));
        }
        // wg-quick sets it on the interface; a device configured by hand must set it too.
        let _ = writeln!(s, "MTU = {}", self.mtu);
        if let Some(aa) = &self.active_active {
            aa.write_interface(&mut s);
        }
        for p in &self.peers {
            let _ = writeln!(s, "\n# gateway {}", p.gateway);
            for w in [&p.endpoint, &p.failover_endpoint]
                .into_iter()
                .filter_map(|e| e.as_deref()?.parse().ok())
                .filter_map(endpoint_warning)
            {
                let _ = writeln!(s, "# WARNING: {w}");
            }
            if let Some(t) = p.idle_timeout_secs {
                let _ = writeln!(
                    s,
                    "# PolicyBased: the gateway tears the tunnel down after {t} s without traffic"
                );
            }
            let _ = writeln!(s, "[Peer]");
            let _ = writeln!(
                s,
                "PublicKey = {}",
                p.public_key
                    .as_deref()
                    .unwrap_or("<pending: gateway not created yet>")
            );
            if let Some(k) = &p.preshared_key {
                let _ = writeln!(s, "PresharedKey = {}", k.expose());
            }
            if let Some(e) = &p.endpoint {
                let _ = writeln!(s, "Endpoint = {e}");
            }
            if let Some(e) = &p.failover_endpoint {
                let _ = writeln!(s, "# {FAILOVER_ENDPOINT_KEY} = {e}");
            }
            if let Some(t) = &p.tcp_endpoint {
                let _ = writeln!(s, "# {} = {t}", crate::tcp_transport::TCP_ENDPOINT_KEY);
            }
            if let Some(t) = &p.failover_tcp_endpoint {
                let _ = writeln!(s, "# {FAILOVER_TCP_ENDPOINT_KEY} = {t}");
            }
            let _ = writeln!(s, "AllowedIPs = {}", join(&p.allowed_ips));
            if let Some(k) = p.persistent_keepalive_secs {
                let _ = writeln!(s, "PersistentKeepalive = {k}");
            }
        }
        s
    }
}

/// The comment under which `isthmus-client connect --write-config` keeps a peer's original UDP
/// endpoint.
pub const UDP_ENDPOINT_KEY: &str = "UdpEndpoint";

/// Issue 16: the comment naming a redundant gateway's other instance (its UDP endpoint).
pub const FAILOVER_ENDPOINT_KEY: &str = "FailoverEndpoint";

/// Issue 16: the comment naming the TCP transport on the other instance's host.
pub const FAILOVER_TCP_ENDPOINT_KEY: &str = "FailoverTcpEndpoint";

/// A `wg-quick` configuration as [`parse_wg_quick`] reads it back: what the format carries
/// ([`DeviceConfig::to_wg_quick`] writes it; comments other than the endpoint keys are not
/// kept, nor is the private key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WgQuick {
    pub addresses: Vec<IpNet>,
    pub listen_port: Option<u16>,
    pub dns: Vec<IpAddr>,
    pub mtu: Option<u16>,
    pub peers: Vec<WgQuickPeer>,
}

/// One `[Peer]` of a `wg-quick` configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WgQuickPeer {
    pub public_key: String,
    pub preshared_key: Option<String>,
    /// The `Endpoint` line.
    pub endpoint: Option<String>,
    /// P2S-4: the `# TcpEndpoint = ...` comment of a client package.
    pub tcp_endpoint: Option<String>,
    /// The `# UdpEndpoint = ...` comment `isthmus-client connect --write-config` leaves.
    pub udp_endpoint: Option<String>,
    /// Issue 16: the `# FailoverEndpoint = ...` comment (the other instance's endpoint).
    pub failover_endpoint: Option<String>,
    /// Issue 16: the `# FailoverTcpEndpoint = ...` comment.
    pub failover_tcp_endpoint: Option<String>,
    pub allowed_ips: Vec<IpNet>,
    pub persistent_keepalive_secs: Option<u16>,
}

impl WgQuickPeer {
    /// The gateway's real UDP endpoint (before any `--write-config` rewrite).
    pub fn gateway_endpoint(&self) -> Option<&str> {
        self.udp_endpoint.as_deref().or(self.endpoint.as_deref())
    }

    /// The gateway's instances' UDP endpoints: the active one's first, then the failover one
    /// (if any, and different).
    pub fn instance_endpoints(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.gateway_endpoint().into_iter().collect();
        if let Some(f) = self.failover_endpoint.as_deref()
            && !out.contains(&f)
        {
            out.push(f);
        }
        out
    }
}

/// `key = value` of a line, or of a comment line (`# key = value`) when `comment`.
pub fn key_value(line: &str, comment: bool) -> Option<(&str, &str)> {
    let line = line.trim();
    let line = if comment {
        line.strip_prefix('#')?
    } else {
        line
    };
    let (k, v) = line.split_once('=')?;
    Some((k.trim(), v.trim()))
}

/// The items of a comma-separated list that parse; the others are left out.
fn list<T: std::str::FromStr>(v: &str) -> Vec<T> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Reads a `wg-quick` configuration (the reader of [`DeviceConfig::to_wg_quick`]'s format).
/// Lenient: unknown keys and values that do not parse are skipped.
pub fn parse_wg_quick(config: &str) -> WgQuick {
    let mut out = WgQuick::default();
    let mut in_peer = false;
    for line in config.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_peer = t.eq_ignore_ascii_case("[peer]");
            if in_peer {
                out.peers.push(WgQuickPeer::default());
            }
            continue;
        }
        if !in_peer {
            if let Some((k, v)) = key_value(t, false).filter(|_| !t.starts_with('#')) {
                match k.to_ascii_lowercase().as_str() {
                    "address" => out.addresses.extend(list::<IpNet>(v)),
                    "listenport" => out.listen_port = v.parse().ok(),
                    "dns" => out.dns.extend(list::<IpAddr>(v)),
                    "mtu" => out.mtu = v.parse().ok(),
                    _ => {}
                }
            }
            continue;
        }
        let Some(p) = out.peers.last_mut() else {
            continue;
        };
        if t.starts_with('#') {
            match key_value(t, true) {
                Some((k, v)) if k == crate::tcp_transport::TCP_ENDPOINT_KEY => {
                    p.tcp_endpoint = Some(v.to_owned());
                }
                Some((k, v)) if k == UDP_ENDPOINT_KEY => p.udp_endpoint = Some(v.to_owned()),
                Some((k, v)) if k == FAILOVER_ENDPOINT_KEY => {
                    p.failover_endpoint = Some(v.to_owned());
                }
                Some((k, v)) if k == FAILOVER_TCP_ENDPOINT_KEY => {
                    p.failover_tcp_endpoint = Some(v.to_owned());
                }
                _ => {}
            }
            continue;
        }
        let Some((k, v)) = key_value(t, false) else {
            continue;
        };
        match k.to_ascii_lowercase().as_str() {
            "publickey" => p.public_key = v.to_owned(),
            "presharedkey" => p.preshared_key = Some(v.to_owned()),
            "endpoint" => p.endpoint = Some(v.to_owned()),
            "allowedips" => p.allowed_ips.extend(list::<IpNet>(v)),
            "persistentkeepalive" => p.persistent_keepalive_secs = v.parse().ok(),
            _ => {}
        }
    }
    out
}
