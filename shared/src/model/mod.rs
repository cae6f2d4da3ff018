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

mod change;
mod connection;
mod gateway;
mod ipsec;
mod kind;
mod p2s;
mod site;
mod vnet;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::change::{Change, ChangeError, Undo};
pub use self::connection::{Connection, ConnectionKind, GatewayRef, SharedKey, TrafficSelector};
pub use self::gateway::{Gateway, GatewayType, Sku, SkuGeneration, SkuLimits, SkuTable};
pub use self::ipsec::*;
pub use self::kind::Kind;
pub use self::p2s::{P2sClient, PointToSite, RootCertificate};
pub use self::site::{DeviceHost, DeviceHostError, LocalSite};
pub use self::vnet::{RouteSource, RouteSourceKind, Subnet, Vnet};

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

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
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

fn default_true() -> bool {
    true
}
