//! The topology model: tenants, VNets, gateways, local network sites, connections and
//! point-to-site configurations.
//!
//! A [`Topology`] is a plain, serde-friendly value (JSON or YAML): flat lists of resources, each
//! carrying its `tenant`. Names are unique per kind within a tenant and references inside a
//! tenant are by name; only a `VnetToVnet` connection may name another tenant's gateway
//! (CONN-2). Fields are `snake_case`; enum values are spelled as in the spec (`RouteBased`,
//! `VpnGw1`, `SiteToSite`); tagged enums carry their variant in a `type` field.
//!
//! Nothing here validates: a `Topology` can hold any configuration, and
//! [`crate::validate::validate`] reports everything wrong with it. Every parse function returns a
//! `Result` and never panics. Tests and tools build topologies with
//! [`crate::builder::TopologyBuilder`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The reserved name of the subnet a gateway lives in (GW-7).
pub const GATEWAY_SUBNET: &str = "GatewaySubnet";

/// The UDP port a site device listens on when its port is not given.
pub const DEFAULT_WIREGUARD_PORT: u16 = 51820;

/// S2S-2: a PolicyBased tunnel is torn down after this many seconds without traffic.
pub const POLICY_BASED_IDLE_TIMEOUT_SECS: u32 = 300;

/// The whole configuration the product knows: every tenant's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Topology {
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    #[serde(default)]
    pub vnets: Vec<Vnet>,
    #[serde(default)]
    pub gateways: Vec<Gateway>,
    #[serde(default)]
    pub sites: Vec<LocalSite>,
    #[serde(default)]
    pub connections: Vec<Connection>,
    #[serde(default)]
    pub point_to_site: Vec<PointToSite>,
}

/// A tenant: the seed's "subscription", an isolation and ownership scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
}

/// A name qualified by its tenant; displayed as `tenant/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QualifiedName {
    pub tenant: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(tenant: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.name)
    }
}

/// A virtual network: a private network a gateway serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Vnet {
    pub tenant: String,
    pub name: String,
    /// A free label; VNets can be connected across regions (CONN-1), and traffic between regions
    /// is metered per region pair (LIM-6).
    pub region: String,
    /// One or more prefixes, IPv4 and/or IPv6.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub address_space: Vec<IpNet>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub dns_servers: Vec<IpAddr>,
    /// LIM-7 / GW-11: route sources other than the VPN gateway (a private circuit, or the user's
    /// own appliance with user-defined routes). The validator never forbids them, and the
    /// next-hop explanation honours them.
    #[serde(default)]
    pub route_sources: Vec<RouteSource>,
}

impl Vnet {
    /// The subnet named [`GATEWAY_SUBNET`], if any.
    pub fn gateway_subnet(&self) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.name == GATEWAY_SUBNET)
    }

    /// Whether `addr` lies inside the address space.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.address_space.iter().any(|p| p.contains(&addr))
    }
}

/// A subnet of a VNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub prefix: IpNet,
}

/// LIM-7 / GW-11: a non-VPN source of routes for a VNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RouteSource {
    pub name: String,
    pub kind: RouteSourceKind,
    /// Destinations this source carries. On a tie with a gateway route of the same length the
    /// route source wins (as a private circuit is preferred over a VPN).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub prefixes: Vec<IpNet>,
}

/// What a [`RouteSource`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RouteSourceKind {
    /// LIM-7: a private circuit (the seed's ExpressRoute); out of scope apart from its routes.
    PrivateCircuit,
    /// GW-11: the user's own VPN appliance inside the VNet, reached by user-defined routes.
    Appliance {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        next_hop: IpAddr,
    },
}

/// A gateway's type (the seed's static vs dynamic routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GatewayType {
    /// GW-1: traffic selectors decide; one site; tunnels idle out (S2S-2).
    PolicyBased,
    /// GW-2: the forwarding table decides; multi-site, VNet-to-VNet, point-to-site.
    RouteBased,
}

impl GatewayType {
    /// S2S-2: the idle timeout of this gateway's tunnels; `None` means never torn down.
    pub fn idle_timeout_secs(self) -> Option<u32> {
        match self {
            GatewayType::PolicyBased => Some(POLICY_BASED_IDLE_TIMEOUT_SECS),
            GatewayType::RouteBased => None,
        }
    }

    /// CONN-3 / GW-6: several sites and VNet-to-VNet need RouteBased.
    pub fn supports_multi_site(self) -> bool {
        self == GatewayType::RouteBased
    }

    /// P2S-1: point-to-site needs RouteBased.
    pub fn supports_point_to_site(self) -> bool {
        self == GatewayType::RouteBased
    }
}

impl fmt::Display for GatewayType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GatewayType::PolicyBased => "PolicyBased",
            GatewayType::RouteBased => "RouteBased",
        })
    }
}

/// A gateway SKU: every row of the spec's SKU table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Sku {
    Basic,
    Standard,
    HighPerformance,
    VpnGw1,
    VpnGw2,
    VpnGw3,
    VpnGw4,
    VpnGw5,
}

/// The generation a SKU belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SkuGeneration {
    /// The seed's 2015 SKUs; 2015 limits apply.
    Seed2015,
    /// The current tiers, which lift some 2015 limits.
    Current,
}

/// The limits of one SKU (one row of the SKU table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuLimits {
    /// LIM-1: site-to-site plus VNet-to-VNet connections.
    pub max_connections: u32,
    /// P2S-2: point-to-site clients.
    pub max_p2s_clients: u32,
    /// LIM-4: aggregate bandwidth of all tunnels, in bits per second (a cap, not a promise: P2S-7).
    pub bandwidth_bps: u64,
    /// LIM-2: whether the gateway may run active-active (two tunnels per site).
    pub active_active: bool,
}

impl Sku {
    /// Every SKU, in table order.
    pub const ALL: [Sku; 8] = [
        Sku::Basic,
        Sku::Standard,
        Sku::HighPerformance,
        Sku::VpnGw1,
        Sku::VpnGw2,
        Sku::VpnGw3,
        Sku::VpnGw4,
        Sku::VpnGw5,
    ];

    /// The default limits of the SKU table (LIM-1, P2S-2, LIM-4, LIM-2).
    pub const fn default_limits(self) -> SkuLimits {
        const M: u64 = 1_000_000;
        let (max_connections, max_p2s_clients, bandwidth_bps, active_active) = match self {
            Sku::Basic => (10, 128, 100 * M, false),
            Sku::Standard => (10, 128, 100 * M, false),
            Sku::HighPerformance => (30, 128, 200 * M, false),
            Sku::VpnGw1 => (30, 250, 650 * M, true),
            Sku::VpnGw2 => (30, 500, 1_000 * M, true),
            Sku::VpnGw3 => (30, 1_000, 1_250 * M, true),
            Sku::VpnGw4 => (100, 5_000, 5_000 * M, true),
            Sku::VpnGw5 => (100, 10_000, 10_000 * M, true),
        };
        SkuLimits {
            max_connections,
            max_p2s_clients,
            bandwidth_bps,
            active_active,
        }
    }

    /// LIM-1: maximum site-to-site plus VNet-to-VNet connections (default table).
    pub const fn max_connections(self) -> u32 {
        self.default_limits().max_connections
    }

    /// P2S-2: maximum point-to-site clients (default table).
    pub const fn max_p2s_clients(self) -> u32 {
        self.default_limits().max_p2s_clients
    }

    /// LIM-4: aggregate bandwidth in bits per second (default table).
    pub const fn bandwidth_bps(self) -> u64 {
        self.default_limits().bandwidth_bps
    }

    /// LIM-2: whether active-active is supported (default table).
    pub const fn supports_active_active(self) -> bool {
        self.default_limits().active_active
    }

    /// The SKU's generation.
    pub const fn generation(self) -> SkuGeneration {
        match self {
            Sku::Basic | Sku::Standard | Sku::HighPerformance => SkuGeneration::Seed2015,
            _ => SkuGeneration::Current,
        }
    }

    /// The SKU's name as in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Sku::Basic => "Basic",
            Sku::Standard => "Standard",
            Sku::HighPerformance => "HighPerformance",
            Sku::VpnGw1 => "VpnGw1",
            Sku::VpnGw2 => "VpnGw2",
            Sku::VpnGw3 => "VpnGw3",
            Sku::VpnGw4 => "VpnGw4",
            Sku::VpnGw5 => "VpnGw5",
        }
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SKU table in force ("defaults; configurable"). [`SkuTable::default`] is the spec's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuTable {
    pub limits: BTreeMap<Sku, SkuLimits>,
}

impl Default for SkuTable {
    fn default() -> Self {
        Self {
            limits: Sku::ALL.iter().map(|&s| (s, s.default_limits())).collect(),
        }
    }
}

impl SkuTable {
    /// The limits of `sku`, falling back to the default table for a SKU missing here.
    pub fn get(&self, sku: Sku) -> SkuLimits {
        self.limits
            .get(&sku)
            .copied()
            .unwrap_or_else(|| sku.default_limits())
    }
}

/// The VPN gateway of one VNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    pub tenant: String,
    pub name: String,
    /// The VNet (same tenant) this gateway serves.
    pub vnet: String,
    pub gateway_type: GatewayType,
    pub sku: Sku,
    /// LIM-2: two instances, two tunnels per site (SKUs that support it).
    #[serde(default)]
    pub active_active: bool,
    /// GW-9: the site (connected to this gateway by site-to-site) that becomes the default route.
    #[serde(default)]
    pub forced_tunneling_site: Option<String>,
    /// GW-3: allocated by the server when the gateway is created; `None` before that.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub public_endpoint: Option<SocketAddr>,
    /// The gateway's WireGuard public key (base64), set by the server.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Clamp the TCP MSS of SYNs through the gateway to fit the tunnel MTU (on by default), so
    /// hosts behind a device whose MTU is too large still work.
    #[serde(default = "default_true")]
    pub mss_clamp: bool,
}

impl Gateway {
    pub fn qualified_name(&self) -> QualifiedName {
        QualifiedName::new(&self.tenant, &self.name)
    }
}

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
}

impl LocalSite {
    /// `host:port` of the device (IPv6 in brackets).
    pub fn endpoint(&self) -> String {
        let port = self.device_port.unwrap_or(DEFAULT_WIREGUARD_PORT);
        match &self.device_host {
            DeviceHost::Ipv6(a) => format!("[{a}]:{port}"),
            h => format!("{h}:{port}"),
        }
    }
}

/// A user-facing shared key (GW-4/GW-5). Its `Debug` output is redacted so it never lands in a
/// log by accident; read it with [`SharedKey::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SharedKey(String);

impl SharedKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedKey(<{} chars redacted>)", self.0.chars().count())
    }
}

/// A reference to a gateway, possibly of another tenant (CONN-2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayRef {
    /// `None` means the connection's own tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    pub name: String,
}

/// What a connection connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ConnectionKind {
    /// To a local network site of the same tenant.
    SiteToSite { site: String },
    /// One half of a VNet-to-VNet tunnel; the other gateway's owner creates the other half.
    VnetToVnet { remote_gateway: GatewayRef },
}

/// GW-1: a traffic selector of a PolicyBased connection: (VNet-side prefix, site-side prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrafficSelector {
    /// Inside the VNet's address space.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub local: IpNet,
    /// Inside the site's address prefixes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub remote: IpNet,
}

/// A tunnel of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub tenant: String,
    pub name: String,
    /// The gateway (same tenant) this connection belongs to.
    pub gateway: String,
    pub kind: ConnectionKind,
    /// GW-4: generated by the server when `None` at creation; replaceable.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub shared_key: Option<SharedKey>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// GW-1: only for PolicyBased gateways; empty means "every VNet prefix to every site prefix".
    #[serde(default)]
    pub traffic_selectors: Vec<TrafficSelector>,
}

fn default_true() -> bool {
    true
}

impl Connection {
    pub fn qualified_name(&self) -> QualifiedName {
        QualifiedName::new(&self.tenant, &self.name)
    }

    /// The remote gateway of a VNet-to-VNet connection, qualified.
    pub fn remote_gateway(&self) -> Option<QualifiedName> {
        match &self.kind {
            ConnectionKind::VnetToVnet { remote_gateway } => Some(QualifiedName::new(
                remote_gateway.tenant.as_deref().unwrap_or(&self.tenant),
                &remote_gateway.name,
            )),
            ConnectionKind::SiteToSite { .. } => None,
        }
    }

    /// The site of a site-to-site connection.
    pub fn site(&self) -> Option<&str> {
        match &self.kind {
            ConnectionKind::SiteToSite { site } => Some(site),
            ConnectionKind::VnetToVnet { .. } => None,
        }
    }
}

/// A root certificate of a point-to-site configuration (P2S-3); opaque here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RootCertificate {
    pub name: String,
    /// A thumbprint or a PEM string; not interpreted by this crate.
    pub data: String,
}

/// A point-to-site client: one computer with a WireGuard key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct P2sClient {
    pub name: String,
    /// The client's WireGuard public key (base64).
    pub public_key: String,
    /// The client's address, inside the pool (ADDR-1).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub address: IpAddr,
    /// The thumbprint of the client certificate it was authorised with (P2S-3); a client whose
    /// thumbprint is revoked gets no peer.
    #[serde(default)]
    pub certificate_thumbprint: Option<String>,
}

/// The point-to-site configuration of one gateway (at most one per gateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointToSite {
    pub tenant: String,
    /// The gateway (same tenant); also the configuration's name.
    pub gateway: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub address_pool: Vec<IpNet>,
    /// P2S-6: other VNets (same tenant) the clients are configured for at once; each is reached
    /// through its own RouteBased gateway, which also gets the clients as peers.
    #[serde(default)]
    pub additional_vnets: Vec<String>,
    /// P2S-3: at most 20.
    #[serde(default)]
    pub root_certificates: Vec<RootCertificate>,
    #[serde(default)]
    pub revoked_thumbprints: Vec<String>,
    #[serde(default)]
    pub clients: Vec<P2sClient>,
}

impl PointToSite {
    /// Whether `client` is authorised (its certificate is not revoked).
    pub fn is_authorised(&self, client: &P2sClient) -> bool {
        match &client.certificate_thumbprint {
            Some(t) => !self
                .revoked_thumbprints
                .iter()
                .any(|r| r.eq_ignore_ascii_case(t)),
            None => true,
        }
    }
}

/// LIM-6: the metering key of traffic between two regions. VNet-to-VNet traffic is billed only
/// when it crosses regions; the key is the same in both directions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegionPair {
    /// The lexicographically smaller region.
    pub a: String,
    /// The other region (equal to `a` within one region).
    pub b: String,
}

impl RegionPair {
    /// Whether the traffic crosses regions (and is billable).
    pub fn is_cross_region(&self) -> bool {
        self.a != self.b
    }

    /// The metering key, e.g. `"eastus|westeurope"`.
    pub fn key(&self) -> String {
        format!("{}|{}", self.a, self.b)
    }
}

/// LIM-6: the region pair of traffic between regions `x` and `y`, independent of direction.
pub fn region_pair(x: &str, y: &str) -> RegionPair {
    let (a, b) = if x <= y { (x, y) } else { (y, x) };
    RegionPair {
        a: a.to_owned(),
        b: b.to_owned(),
    }
}

/// One write to a topology: upsert or delete one resource. Upserts replace every resource of
/// the same kind and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", content = "resource", rename_all = "snake_case")]
pub enum Change {
    UpsertTenant(Tenant),
    DeleteTenant(String),
    UpsertVnet(Vnet),
    DeleteVnet(QualifiedName),
    UpsertGateway(Gateway),
    DeleteGateway(QualifiedName),
    UpsertSite(LocalSite),
    DeleteSite(QualifiedName),
    UpsertConnection(Connection),
    DeleteConnection(QualifiedName),
    /// Keyed by (tenant, gateway).
    UpsertPointToSite(PointToSite),
    /// `name` is the gateway's name.
    DeletePointToSite(QualifiedName),
}

/// Why a [`Change`] cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChangeError {
    #[error("there is no {kind} named {name} to delete")]
    NotFound { kind: String, name: String },
}

/// The items an upsert or delete took out of one list (with their positions), and whether it
/// pushed a new item: enough to put the list back exactly as it was.
#[derive(Debug)]
struct Taken<T> {
    removed: Vec<(usize, T)>,
    pushed: bool,
}

impl<T> Taken<T> {
    fn take(list: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Self {
        let mut removed = Vec::new();
        for i in (0..list.len()).rev() {
            if matches(&list[i]) {
                removed.push((i, list.remove(i)));
            }
        }
        removed.reverse();
        Taken {
            removed,
            pushed: false,
        }
    }

    fn restore(self, list: &mut Vec<T>) {
        if self.pushed {
            list.pop();
        }
        for (i, item) in self.removed {
            list.insert(i, item);
        }
    }
}

/// How to undo one [`Topology::apply_undoable`]; pass it to [`Topology::undo`].
#[derive(Debug)]
pub struct Undo(UndoList);

#[derive(Debug)]
enum UndoList {
    Tenants(Taken<Tenant>),
    Vnets(Taken<Vnet>),
    Gateways(Taken<Gateway>),
    Sites(Taken<LocalSite>),
    Connections(Taken<Connection>),
    PointToSite(Taken<PointToSite>),
}

/// `apply` on one list, remembering what it did.
fn apply_list<T: Clone>(
    list: &mut Vec<T>,
    upsert: Option<&T>,
    kind: &str,
    name: &dyn fmt::Display,
    matches: impl Fn(&T) -> bool,
) -> Result<Taken<T>, ChangeError> {
    let mut taken = Taken::take(list, matches);
    match upsert {
        Some(item) => {
            list.push(item.clone());
            taken.pushed = true;
        }
        None if taken.removed.is_empty() => {
            return Err(ChangeError::NotFound {
                kind: kind.to_owned(),
                name: name.to_string(),
            });
        }
        None => {}
    }
    Ok(taken)
}

impl Topology {
    /// [`Topology::apply`], in a way that [`Topology::undo`] reverts exactly (same items, same
    /// order), so a caller can try a change on a large topology without copying it. A change
    /// that cannot be applied leaves the topology untouched.
    pub fn apply_undoable(&mut self, change: &Change) -> Result<Undo, ChangeError> {
        let same = |t: &str, n: &str, qt: &str, qn: &str| t == qt && n == qn;
        Ok(Undo(match change {
            Change::UpsertTenant(x) => UndoList::Tenants(apply_list(
                &mut self.tenants,
                Some(x),
                "tenant",
                &x.name,
                |t| t.name == x.name,
            )?),
            Change::DeleteTenant(n) => {
                UndoList::Tenants(apply_list(&mut self.tenants, None, "tenant", n, |t| {
                    &t.name == n
                })?)
            }
            Change::UpsertVnet(x) => UndoList::Vnets(apply_list(
                &mut self.vnets,
                Some(x),
                "VNet",
                &x.name,
                |v| same(&v.tenant, &v.name, &x.tenant, &x.name),
            )?),
            Change::DeleteVnet(q) => {
                UndoList::Vnets(apply_list(&mut self.vnets, None, "VNet", q, |v| {
                    same(&v.tenant, &v.name, &q.tenant, &q.name)
                })?)
            }
            Change::UpsertGateway(x) => UndoList::Gateways(apply_list(
                &mut self.gateways,
                Some(x),
                "gateway",
                &x.name,
                |g| same(&g.tenant, &g.name, &x.tenant, &x.name),
            )?),
            Change::DeleteGateway(q) => {
                UndoList::Gateways(apply_list(&mut self.gateways, None, "gateway", q, |g| {
                    same(&g.tenant, &g.name, &q.tenant, &q.name)
                })?)
            }
            Change::UpsertSite(x) => UndoList::Sites(apply_list(
                &mut self.sites,
                Some(x),
                "site",
                &x.name,
                |s| same(&s.tenant, &s.name, &x.tenant, &x.name),
            )?),
            Change::DeleteSite(q) => {
                UndoList::Sites(apply_list(&mut self.sites, None, "site", q, |s| {
                    same(&s.tenant, &s.name, &q.tenant, &q.name)
                })?)
            }
            Change::UpsertConnection(x) => UndoList::Connections(apply_list(
                &mut self.connections,
                Some(x),
                "connection",
                &x.name,
                |c| same(&c.tenant, &c.name, &x.tenant, &x.name),
            )?),
            Change::DeleteConnection(q) => UndoList::Connections(apply_list(
                &mut self.connections,
                None,
                "connection",
                q,
                |c| same(&c.tenant, &c.name, &q.tenant, &q.name),
            )?),
            Change::UpsertPointToSite(x) => UndoList::PointToSite(apply_list(
                &mut self.point_to_site,
                Some(x),
                "point-to-site configuration",
                &x.gateway,
                |p| same(&p.tenant, &p.gateway, &x.tenant, &x.gateway),
            )?),
            Change::DeletePointToSite(q) => UndoList::PointToSite(apply_list(
                &mut self.point_to_site,
                None,
                "point-to-site configuration",
                q,
                |p| same(&p.tenant, &p.gateway, &q.tenant, &q.name),
            )?),
        }))
    }

    /// Reverts one [`Topology::apply_undoable`] (the last one applied first).
    pub fn undo(&mut self, undo: Undo) {
        match undo.0 {
            UndoList::Tenants(t) => t.restore(&mut self.tenants),
            UndoList::Vnets(t) => t.restore(&mut self.vnets),
            UndoList::Gateways(t) => t.restore(&mut self.gateways),
            UndoList::Sites(t) => t.restore(&mut self.sites),
            UndoList::Connections(t) => t.restore(&mut self.connections),
            UndoList::PointToSite(t) => t.restore(&mut self.point_to_site),
        }
    }
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one change in place. Deleting does not cascade: dangling references are reported
    /// by the validator (REF-1), so a server can refuse the change as a whole (LIM-3).
    pub fn apply(&mut self, change: &Change) -> Result<(), ChangeError> {
        self.apply_undoable(change).map(drop)
    }

    /// The VNet `tenant/name` (the first one if names are duplicated).
    pub fn vnet(&self, tenant: &str, name: &str) -> Option<&Vnet> {
        self.vnets
            .iter()
            .find(|v| v.tenant == tenant && v.name == name)
    }

    /// The gateway `tenant/name`.
    pub fn gateway(&self, tenant: &str, name: &str) -> Option<&Gateway> {
        self.gateways
            .iter()
            .find(|g| g.tenant == tenant && g.name == name)
    }

    /// The gateway of VNet `tenant/vnet`.
    pub fn gateway_of_vnet(&self, tenant: &str, vnet: &str) -> Option<&Gateway> {
        self.gateways
            .iter()
            .find(|g| g.tenant == tenant && g.vnet == vnet)
    }

    /// The site `tenant/name`.
    pub fn site(&self, tenant: &str, name: &str) -> Option<&LocalSite> {
        self.sites
            .iter()
            .find(|s| s.tenant == tenant && s.name == name)
    }

    /// The connection `tenant/name`.
    pub fn connection(&self, tenant: &str, name: &str) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|c| c.tenant == tenant && c.name == name)
    }

    /// The point-to-site configuration of gateway `tenant/gateway`.
    pub fn point_to_site_of(&self, tenant: &str, gateway: &str) -> Option<&PointToSite> {
        self.point_to_site
            .iter()
            .find(|p| p.tenant == tenant && p.gateway == gateway)
    }

    /// The connections of gateway `tenant/gateway`, sorted by name.
    pub fn connections_of(&self, tenant: &str, gateway: &str) -> Vec<&Connection> {
        let mut out: Vec<&Connection> = self
            .connections
            .iter()
            .filter(|c| c.tenant == tenant && c.gateway == gateway)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Parses a topology from JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn shared_key_debug_is_redacted() {
        let k = SharedKey::new("secret123");
        assert!(!format!("{k:?}").contains("secret"));
    }
}
