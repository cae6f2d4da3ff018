//! VNets, their subnets and their other route sources (LIM-7, GW-11).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::GATEWAY_SUBNET;

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
