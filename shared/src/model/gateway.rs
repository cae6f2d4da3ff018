//! Gateways, their types and the SKU table.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{POLICY_BASED_IDLE_TIMEOUT_SECS, QualifiedName, default_true};

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
    /// Issue 16: the endpoint of the gateway's other instance (its worker's address, the same
    /// port), set by the server while the gateway is redundant; `public_endpoint` is the active
    /// instance's. Point-to-site client packages list both, so a client fails over between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub secondary_endpoint: Option<SocketAddr>,
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
