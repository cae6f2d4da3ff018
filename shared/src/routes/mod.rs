//! Effective routes and the next-hop explanation.
//!
//! For every gateway, [`gateway_routes`] computes its forwarding table: prefix → [`NextHop`].
//! Nobody writes transit routes by hand (LIM-5): a RouteBased gateway learns the address spaces,
//! point-to-site pools and sites of every gateway it reaches through established VNet-to-VNet
//! tunnels, along a shortest path (so forwarding never loops: every hop gets strictly closer).
//! A PolicyBased gateway has no transit; its tunnel routes are its traffic selectors (GW-1).
//!
//! What counts: only *enabled* connections, and a VNet-to-VNet tunnel only when both halves
//! exist, are enabled and both gateways are RouteBased. Routes that lose to a better route for
//! the same prefix stay in the list with `active: false` (so the UI can show alternatives).
//! Precedence for one prefix: the VNet itself, then point-to-site clients and pools, then tunnel
//! routes by fewest transit hops, then by next hop (names). The default route (`0.0.0.0/0` and
//! `::/0`) goes to the Internet, or into the forced-tunneling site's connection (GW-9).
//!
//! [`vnet_routes`] is the table a machine inside the VNet sees (GW-8): its own address space
//! stays inside, other route sources (LIM-7, GW-11) come next, then every prefix the gateway
//! routes goes to the gateway, and the rest to the Internet (or the gateway, with forced
//! tunneling).
//!
//! [`next_hop`] walks a packet from a source to a destination, hop by hop, with a reason per hop
//! (VM-2).
//!
//! Files: this one holds the types of both features; `table.rs` computes the tables (over the
//! resolved network of `crate::resolved`); `next_hop.rs` is the VM-2 walker and `locate.rs`
//! finds the resource a source address belongs to.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::lpm::LpmTable;
use crate::model::{GatewayType, QualifiedName, RegionPair, TrafficSelector};
use crate::rules::RuleId;

mod locate;
mod next_hop;
mod table;

pub use next_hop::{next_hop, next_hop_in};
pub use table::{effective_routes, gateway_routes, vnet_routes};

/// Where a route sends a packet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum NextHop {
    /// Into the VNet itself (GW-8: traffic to the VNet stays inside).
    Vnet { vnet: QualifiedName },
    /// From inside a VNet (or from a point-to-site client): to this gateway.
    Gateway { gateway: QualifiedName },
    /// Into a site-to-site tunnel.
    SiteToSite {
        connection: QualifiedName,
        site: QualifiedName,
    },
    /// Into a VNet-to-VNet tunnel.
    VnetToVnet {
        connection: QualifiedName,
        remote_gateway: QualifiedName,
    },
    /// To a point-to-site client (of the configuration of `gateway`).
    P2sClient {
        client: String,
        gateway: QualifiedName,
    },
    /// LIM-7 / GW-11: to another route source of the VNet.
    RouteSource { vnet: QualifiedName, source: String },
    /// The destination is on the site's own network.
    Site { site: QualifiedName },
    /// Straight to the Internet.
    Internet,
    /// GW-9: Internet-bound traffic into the forced-tunneling site's connection.
    ForcedTunnel {
        connection: QualifiedName,
        site: QualifiedName,
    },
    /// Nowhere: e.g. a pool address no connected client holds (VM-1), no matching selector.
    Drop,
}

impl NextHop {
    /// Whether the hop is one of the gateway's tunnels (site-to-site, VNet-to-VNet, a
    /// point-to-site client, the forced tunnel).
    pub fn is_tunnel(&self) -> bool {
        matches!(
            self,
            NextHop::SiteToSite { .. }
                | NextHop::VnetToVnet { .. }
                | NextHop::P2sClient { .. }
                | NextHop::ForcedTunnel { .. }
        )
    }
}

/// Why a route exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RouteOrigin {
    /// The VNet's own address space.
    VnetAddressSpace { vnet: QualifiedName },
    /// A point-to-site client's address.
    P2sClient {
        gateway: QualifiedName,
        client: String,
    },
    /// A point-to-site client address pool.
    P2sPool { gateway: QualifiedName },
    /// GW-1: a traffic selector of a PolicyBased connection.
    TrafficSelector { connection: QualifiedName },
    /// A site's address prefixes (directly connected or through transit).
    Site { site: QualifiedName },
    /// Another VNet's address space, through VNet-to-VNet (LIM-5 when transit).
    RemoteVnet { vnet: QualifiedName },
    /// LIM-7 / GW-11: another route source of the VNet.
    RouteSource { source: String },
    /// The default route (GW-8 / GW-9).
    Default,
}

impl RouteOrigin {
    fn rank(&self) -> u8 {
        match self {
            RouteOrigin::VnetAddressSpace { .. } => 0,
            RouteOrigin::RouteSource { .. } => 1,
            RouteOrigin::P2sClient { .. } => 2,
            RouteOrigin::P2sPool { .. } => 3,
            RouteOrigin::TrafficSelector { .. }
            | RouteOrigin::Site { .. }
            | RouteOrigin::RemoteVnet { .. } => 4,
            RouteOrigin::Default => 9,
        }
    }
}

/// One route of a forwarding table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub prefix: IpNet,
    pub next_hop: NextHop,
    pub origin: RouteOrigin,
    /// Gateways crossed beyond the next one (0: the destination is attached to the next hop).
    pub transit_hops: u32,
    /// Whether this route wins for its prefix.
    pub active: bool,
}

/// GW-1: a selector of a PolicyBased gateway and the connection it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectorRoute {
    pub selector: TrafficSelector,
    pub connection: QualifiedName,
    pub site: QualifiedName,
}

/// The forwarding table of one gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRoutes {
    pub gateway: QualifiedName,
    pub gateway_type: GatewayType,
    /// Sorted by prefix (IPv4 first), then precedence.
    pub routes: Vec<Route>,
    /// GW-1: PolicyBased only (empty for RouteBased: GW-2, any-to-any).
    pub selectors: Vec<SelectorRoute>,
}

impl GatewayRoutes {
    /// The active route for `addr` (longest prefix match; linear, for occasional use).
    pub fn lookup(&self, addr: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.active && r.prefix.contains(&addr))
            .max_by_key(|r| r.prefix.prefix_len())
    }

    /// An LPM table of the active routes (index into `routes`).
    pub fn lpm(&self) -> LpmTable<usize> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.active)
            .map(|(i, r)| (r.prefix, i))
            .collect()
    }

    /// The prefixes of active routes whose next hop is `hop` (a peer's allowed IPs).
    pub fn prefixes_to(&self, hop: &NextHop) -> Vec<IpNet> {
        self.routes
            .iter()
            .filter(|r| r.active && &r.next_hop == hop)
            .map(|r| r.prefix)
            .collect()
    }
}

/// The table a machine inside a VNet sees (GW-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VnetRoutes {
    pub vnet: QualifiedName,
    pub gateway: Option<QualifiedName>,
    pub routes: Vec<Route>,
}

/// Route computation failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RouteError {
    #[error("there is no gateway {0} (or its name is not unique)")]
    UnknownGateway(String),
    #[error("there is no VNet {0} (or its name is not unique)")]
    UnknownVnet(String),
}

// ---------------------------------------------------------------------------------------------
// Next hop (VM-2)

/// Where a packet is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Location {
    Vnet {
        vnet: QualifiedName,
    },
    Gateway {
        gateway: QualifiedName,
    },
    Site {
        site: QualifiedName,
    },
    /// A point-to-site client (of the configuration of `gateway`); `client` is `None` for a pool
    /// address no client holds.
    P2sClient {
        gateway: QualifiedName,
        client: Option<String>,
    },
    Internet,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    pub at: Location,
    pub next_hop: NextHop,
    /// The prefix that matched, if a route decided.
    pub matched: Option<IpNet>,
    pub rule: RuleId,
    /// Why, in English (identical to rendering [`Self::why`] with `messages::hop`).
    pub reason: String,
    /// Why, as facts: what [`crate::messages::hop`] renders in the user's language.
    #[serde(default)]
    pub why: HopReason,
    /// LIM-6: the region pair metered for a VNet-to-VNet hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_pair: Option<RegionPair>,
}

/// Where the packet ends up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Outcome {
    Delivered {
        to: Location,
    },
    Internet,
    /// GW-9: sent to the Internet through the forced-tunneling site.
    ForcedTunnel {
        site: QualifiedName,
    },
    /// LIM-7 / GW-11: handed to another route source of the VNet.
    HandedOff {
        vnet: QualifiedName,
        source: String,
    },
    Dropped {
        /// Why, in English (the dropping hop's reason).
        reason: String,
        /// Why, as facts (the dropping hop's [`Hop::why`]).
        #[serde(default)]
        why: HopReason,
    },
}

/// Why a hop goes where it goes, with the facts its sentence states (rendered by
/// [`crate::messages::hop`]; `Hop::reason` is its English rendering). `dst`/`src` are the
/// packet's addresses, `matched` the prefix that decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum HopReason {
    /// Not known (a hop from an older producer): only `reason` says why.
    #[default]
    Unknown,
    /// A gateway has no route for the destination.
    NoRoute,
    /// A gateway delivers into its VNet (GW-8).
    IntoVnet {
        dst: IpAddr,
        matched: IpNet,
        origin: RouteOrigin,
    },
    /// A PolicyBased gateway's selector matches (GW-1).
    SelectorMatch {
        local: IpNet,
        remote: IpNet,
        src: IpAddr,
        dst: IpAddr,
        connection: QualifiedName,
    },
    /// No selector of a PolicyBased gateway matches (GW-1).
    NoSelector {
        gateway: QualifiedName,
        src: IpAddr,
        dst: IpAddr,
    },
    /// A RouteBased gateway sends into a site-to-site connection (GW-2).
    IntoSiteToSite {
        dst: IpAddr,
        matched: IpNet,
        origin: RouteOrigin,
        connection: QualifiedName,
    },
    /// A gateway sends into a VNet-to-VNet connection; `transit` when the route is a computed
    /// transit route (LIM-5).
    IntoVnetToVnet {
        dst: IpAddr,
        matched: IpNet,
        origin: RouteOrigin,
        transit: bool,
        connection: QualifiedName,
    },
    /// The destination is a point-to-site client (P2S-8).
    ToP2sClient { dst: IpAddr, client: String },
    /// Forced tunneling at a gateway (GW-9).
    ForcedTunnel {
        dst: IpAddr,
        connection: QualifiedName,
        site: QualifiedName,
    },
    /// A pool address no connected client holds (VM-1).
    NoClient {
        dst: IpAddr,
        matched: IpNet,
        origin: RouteOrigin,
    },
    /// A gateway sends the packet to the Internet (GW-8).
    GatewayToInternet { dst: IpAddr },
    /// Inside the VNet's own address space (GW-8).
    StaysInVnet { dst: IpAddr, matched: IpNet },
    /// Carried by another route source of the VNet (LIM-7, GW-11).
    ToRouteSource {
        dst: IpAddr,
        matched: IpNet,
        source: String,
    },
    /// From a VNet, forced tunneling sends Internet-bound traffic to the gateway (GW-9).
    VnetForcedToGateway { dst: IpAddr, gateway: QualifiedName },
    /// From a VNet, a connected prefix goes to the gateway (GW-8).
    VnetToGateway {
        dst: IpAddr,
        matched: IpNet,
        origin: RouteOrigin,
        gateway: QualifiedName,
    },
    /// From a VNet straight to the Internet (GW-8).
    VnetToInternet { dst: IpAddr },
    /// The destination is on the site's own network.
    OnSite { dst: IpAddr, prefix: IpNet },
    /// The site device sends into a connection because the gateway advertises the prefix.
    SiteDevice {
        dst: IpAddr,
        connection: QualifiedName,
        gateway: QualifiedName,
        matched: IpNet,
    },
    /// No tunnel of the site carries the destination: the site's own uplink.
    SiteUplink { dst: IpAddr },
    /// No connected point-to-site client holds the source (VM-1).
    NoSourceClient { src: IpAddr },
    /// A point-to-site client sends through a gateway that routes the prefix (P2S-8).
    ClientToGateway {
        gateway: QualifiedName,
        matched: IpNet,
        dst: IpAddr,
    },
    /// No gateway of the client routes the destination.
    ClientToInternet { dst: IpAddr },
    /// From the Internet to a private VNet address (VM-1).
    PrivateFromInternet { dst: IpAddr },
    /// Neither address belongs to the topology.
    OutsideTopology { src: IpAddr, dst: IpAddr },
}

/// The path of a packet from `source` to `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Path {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub from: Location,
    pub hops: Vec<Hop>,
    pub outcome: Outcome,
}

/// Why no path can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum NextHopError {
    #[error(
        "source {address} belongs to several resources ({}); name the tenant to disambiguate",
        candidates.join(", ")
    )]
    AmbiguousSource {
        address: IpAddr,
        candidates: Vec<String>,
    },
    #[error("the packet would loop at gateway {at}")]
    RoutingLoop { at: String },
}
