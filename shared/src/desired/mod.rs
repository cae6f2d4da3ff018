//! Wire types between the server and a worker: the desired state of the gateways a worker runs
//! and the status it reports back.
//!
//! Both are versioned envelopes tagged by `format` ([`DESIRED_FORMAT`], [`STATUS_FORMAT`]); a
//! worker refuses a format it does not know. `version` inside is the server's monotonically
//! increasing generation of the desired state; a worker echoes the generation it applied.
//!
//! [`gateway_desired`] turns a topology (whose connections carry their shared keys, filled in by
//! the server from sealed storage) and a gateway's secrets into its desired state: one WireGuard
//! peer per enabled site-to-site connection, established VNet-to-VNet tunnel and point-to-site
//! client, with allowed IPs taken from the effective routes ([`crate::routes`]), preshared keys
//! derived per [`crate::psk`], and the gateway's bandwidth cap (LIM-4). An IPsec site-to-site
//! connection (issue 17) is a peer with [`PeerDesired::ipsec`] set and no WireGuard key.
//!
//! LIM-6: each VNet-to-VNet peer carries its [`RegionPair`] (the regions of the two gateways'
//! VNets) so that the worker can meter bytes per region pair; the status report carries those
//! counters ([`RegionPairBytes`]). Both fields are optional with serde defaults, so messages
//! written before they existed still parse under the same format tags.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{
    GatewayType, IpsecParameters, QualifiedName, RegionPair, SkuTable, Topology, TrafficSelector,
    TunnelProtocol, region_pair,
};
use crate::psk::{PeerIdentity, derive_preshared_key};
use crate::resolved::Net;
use crate::routes::{GatewayRoutes, NextHop, Route, RouteOrigin};

mod active_active;
mod ipsec;
mod status;
pub use active_active::*;
pub use ipsec::*;
pub use status::*;

/// The format tag of [`DesiredStateMessage::V1`].
pub const DESIRED_FORMAT: &str = "isthmus.desired/v1";
/// The format tag of [`StatusReportMessage::V1`].
pub const STATUS_FORMAT: &str = "isthmus.status/v1";

/// The keepalive the gateway asks of tunnels that must stay up (RouteBased, S2S-2) and that
/// roaming clients use to keep NAT mappings open (P2S-5).
pub const PERSISTENT_KEEPALIVE_SECS: u16 = 25;

/// The MTU of every tunnel, what exported device configurations and client packages state
/// (`MTU = 1420`): 1500 minus the largest WireGuard overhead, which is an IPv6 outer header (40)
/// plus UDP (8) plus WireGuard's data header and tag (32). The gateway answers inner packets
/// larger than this with ICMP "fragmentation needed" / ICMPv6 "packet too big", and clamps the
/// TCP MSS of SYNs to fit it.
pub const TUNNEL_MTU: u16 = 1420;

fn default_tunnel_mtu() -> u16 {
    TUNNEL_MTU
}

fn yes() -> bool {
    true
}

/// GW-10: the address of a gateway instance on the VNet side, inside `GatewaySubnet`. As in
/// Azure, the first four addresses of the subnet are reserved (the network address, the VNet's
/// router, two for DNS), so instance 0 (the active, or only, instance) takes the subnet's
/// address plus 4 and instance 1 (the standby of a redundant gateway) plus 5; a `/29` (GW-7)
/// holds both. `None` when the subnet is too small (GW-7 refuses such a subnet).
pub fn gateway_instance_address(subnet: IpNet, instance: u8) -> Option<IpAddr> {
    let offset = 4 + u128::from(instance);
    let net = subnet.trunc();
    match net.network() {
        IpAddr::V4(a) => {
            let host_bits = 32 - u32::from(net.prefix_len());
            if host_bits < 3 || u128::from(u32::MAX >> (32 - host_bits)) < offset + 1 {
                return None;
            }
            let v = u32::from(a).checked_add(u32::try_from(offset).ok()?)?;
            Some(IpAddr::V4(v.into()))
        }
        IpAddr::V6(a) => {
            let host_bits = 128 - u32::from(net.prefix_len());
            if host_bits < 3 {
                return None;
            }
            let v = u128::from(a).checked_add(offset)?;
            Some(IpAddr::V6(v.into()))
        }
    }
}

/// A secret string (base64 key material). `Debug` is redacted; serialised as the plain string,
/// so messages carrying it must only travel over authenticated, encrypted channels.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The versioned envelope of a desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format")]
pub enum DesiredStateMessage {
    #[serde(rename = "isthmus.desired/v1")]
    V1(DesiredState),
}

/// Everything one worker should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    /// The server's generation of this state (monotonic).
    pub version: u64,
    pub gateways: Vec<GatewayDesired>,
}

/// One gateway as a worker runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayDesired {
    pub tenant: String,
    pub name: String,
    pub gateway_type: GatewayType,
    /// The gateway's WireGuard private key (base64).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub private_key: Secret,
    pub listen_port: u16,
    /// GW-3 / GW-10: the public side.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub public_endpoint: Option<SocketAddr>,
    /// GW-10: the private side: the gateway's address inside `GatewaySubnet` (the subnet's
    /// address + 4, [`gateway_instance_address`] of instance 0), the next hop the VNet's router
    /// sends the tunnels' prefixes to. The worker of the active instance (the only one of a
    /// gateway that is not redundant) puts it on its TUN device and announces it on the VNet
    /// side (gratuitous ARP); a standby holds it only once it takes over.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub private_address: Option<IpAddr>,
    /// The MTU of the gateway's tunnels ([`TUNNEL_MTU`]): larger inner packets are answered with
    /// ICMP "fragmentation needed" / "packet too big" (IPv4 without DF is fragmented instead).
    #[serde(default = "default_tunnel_mtu")]
    pub tunnel_mtu: u16,
    /// Clamp the TCP MSS of SYNs through the gateway to fit [`GatewayDesired::tunnel_mtu`], so
    /// hosts behind devices whose MTU is wrong still work (the gateway's `mss_clamp`).
    #[serde(default = "yes")]
    pub mss_clamp: bool,
    pub peers: Vec<PeerDesired>,
    /// The active routes of the gateway's forwarding table.
    pub routes: Vec<Route>,
    /// LIM-4: one cap shared by all tunnels of the gateway, point-to-site included (a cap, not a
    /// promise: P2S-7).
    pub bandwidth_limit_bps: u64,
    /// Issue 16: this worker runs one of the two instances of a redundant gateway: its index,
    /// the designated active one, the term, the partner's heartbeat address and key. `None`:
    /// the gateway runs on this worker alone and is always active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<crate::instances::InstanceDesired>,
}

impl GatewayDesired {
    /// Every prefix whose active route leads into one of the gateway's tunnels (sites, remote
    /// VNets, point-to-site pools and clients, transit, and the forced-tunnel default route):
    /// what the worker routes onto its TUN device. Sorted, without duplicates.
    pub fn tunnel_prefixes(&self) -> Vec<IpNet> {
        let pools: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|r| r.active && matches!(r.origin, RouteOrigin::P2sPool { .. }))
            .map(|r| r.prefix)
            .collect();
        let mut out: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|r| r.active)
            .filter(|r| match r.origin {
                // The pool covers its clients: one kernel route, not one per client.
                RouteOrigin::P2sPool { .. } => true,
                RouteOrigin::P2sClient { .. } => !pools.iter().any(|p| p.contains(&r.prefix)),
                _ => r.next_hop.is_tunnel(),
            })
            .map(|r| r.prefix)
            .collect();
        out.sort_by(crate::prefix::net_order);
        out.dedup();
        out
    }

    /// The prefixes of the gateway's own VNet (the routes into the VNet).
    pub fn vnet_prefixes(&self) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|r| r.active && matches!(r.next_hop, NextHop::Vnet { .. }))
            .map(|r| r.prefix)
            .collect();
        out.sort_by(crate::prefix::net_order);
        out.dedup();
        out
    }
}

/// What a peer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", deny_unknown_fields)]
pub enum PeerKind {
    SiteToSite {
        connection: QualifiedName,
        site: QualifiedName,
    },
    VnetToVnet {
        connection: QualifiedName,
        remote_gateway: QualifiedName,
    },
    P2sClient {
        gateway: QualifiedName,
        client: String,
    },
}

/// One WireGuard peer of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PeerDesired {
    /// The connection or client name.
    pub name: String,
    pub kind: PeerKind,
    pub public_key: String,
    /// The derived WireGuard preshared key (base64).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub preshared_key: Option<Secret>,
    /// `host:port`; `None` for roaming peers (clients).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub allowed_ips: Vec<IpNet>,
    #[serde(default)]
    pub persistent_keepalive_secs: Option<u16>,
    /// GW-1: PolicyBased only.
    #[serde(default)]
    pub policy_selectors: Vec<TrafficSelector>,
    /// S2S-2: `Some(300)` for PolicyBased tunnels.
    #[serde(default)]
    pub idle_timeout_secs: Option<u32>,
    /// LIM-6: for VNet-to-VNet peers, the regions of this gateway's VNet and of the remote
    /// gateway's VNet (cross-tenant too); `None` for site-to-site and point-to-site peers, whose
    /// traffic is not metered by region. Absent in messages older than LIM-6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_pair: Option<RegionPair>,
    /// Issue 16: for a roaming peer (a point-to-site client) of a redundant gateway, the
    /// `host:port` the active instance last heard it from, as reported to the server: an
    /// instance that takes over initiates a handshake there, so the client roams to it without
    /// a change on the device. `None` for peers with an `endpoint`, and for clients not seen yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_endpoint: Option<String>,
    /// Issue 16 item 6: this peer's tunnel runs on every instance of the gateway, the standby
    /// included: it answers, initiates and keeps the tunnel alive, and forwards what the peer
    /// sends into the VNet (traffic from the VNet still leaves through the active instance
    /// only). Set for the site-to-site peers of an active-active gateway
    /// ([`active_active_instance`]), whose site device runs one tunnel to each instance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_every_instance: bool,
    /// Issue 17: `Some` for an IPsec site-to-site peer (see [`IpsecPeerDesired`]); then
    /// `public_key` and `preshared_key` are empty and unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipsec: Option<IpsecPeerDesired>,
}

/// The secrets and placement of a gateway, known only to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayInputs {
    /// The gateway's WireGuard private key (base64).
    pub private_key: Secret,
    pub listen_port: u16,
}

/// A peer left out of the desired state, and why (shown to the user as "pending").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedPeer {
    pub name: String,
    pub reason: String,
}

/// Why no desired state can be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DesiredError {
    #[error("there is no gateway {0} (or its name is not unique)")]
    UnknownGateway(String),
}

/// The peers' allowed IPs: active routes to `hop`, plus the default route for a forced tunnel.
fn allowed(routes: &GatewayRoutes, hops: &[NextHop]) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = routes
        .routes
        .iter()
        .filter(|r| r.active && hops.contains(&r.next_hop))
        .map(|r| r.prefix)
        .collect();
    out.sort_by(crate::prefix::net_order);
    out.dedup();
    out
}

/// The preshared key of connection `c` between `me` and `other`, or why there is none yet.
fn connection_psk(
    c: &crate::model::Connection,
    me: &PeerIdentity,
    other: &PeerIdentity,
) -> Result<crate::psk::PresharedKey, String> {
    let key = c.shared_key.as_ref().ok_or("no shared key yet")?;
    derive_preshared_key(key.expose(), me, other).map_err(|e| format!("invalid shared key: {e}"))
}

/// The keys of a site-to-site peer: WireGuard's, or the IPsec settings.
struct S2sTunnel {
    public_key: String,
    preshared_key: Option<Secret>,
    ipsec: Option<IpsecPeerDesired>,
}

/// A WireGuard site peer's keys, or why it is pending (no device key, no shared key, or the
/// device already peers with this gateway: the second tunnel of an active-active pair).
fn wireguard_tunnel(
    c: &crate::model::Connection,
    site: &crate::model::LocalSite,
    site_q: &QualifiedName,
    me_id: &PeerIdentity,
    seen_keys: &mut BTreeMap<String, String>,
) -> Result<S2sTunnel, String> {
    let key = site
        .device_public_key
        .clone()
        .ok_or_else(|| format!("site {site_q} has no device public key yet"))?;
    if let Some(other) = seen_keys.get(&key) {
        return Err(format!(
            "same device as connection {other:?}: the second tunnel of an active-active pair runs \
             on the second instance"
        ));
    }
    let psk = connection_psk(c, me_id, &PeerIdentity::site(site_q))?;
    seen_keys.insert(key.clone(), c.name.clone());
    Ok(S2sTunnel {
        public_key: key,
        preshared_key: Some(Secret::new(psk.to_base64())),
        ipsec: None,
    })
}

/// Issue 17: an IPsec site peer's settings (the shared key as the IKEv2 PSK, the gateway's
/// public IPv4 as its identity), or why it is pending. No WireGuard key is needed.
fn ipsec_tunnel(
    gw: &crate::model::Gateway,
    c: &crate::model::Connection,
    site: &crate::model::LocalSite,
    seen_hosts: &mut BTreeMap<String, String>,
) -> Result<S2sTunnel, String> {
    let key = c.shared_key.as_ref().ok_or("no shared key yet")?;
    crate::psk::validate_shared_key(key.expose())
        .map_err(|e| format!("invalid shared key: {e}"))?;
    let local_id = match gw.public_endpoint.map(|e| e.ip()) {
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(_)) => {
            return Err(
                "the gateway's public endpoint is IPv6; IPsec needs its public IPv4 address"
                    .to_owned(),
            );
        }
        None => return Err("the gateway has no public endpoint yet (its IKE identity)".to_owned()),
    };
    let host = site.device_host.to_string();
    if let Some(other) = seen_hosts.get(&host) {
        return Err(format!(
            "connection {other:?} already runs IPsec with the device at {host} (IPSEC-5)"
        ));
    }
    seen_hosts.insert(host, c.name.clone());
    Ok(S2sTunnel {
        public_key: String::new(),
        preshared_key: None,
        ipsec: Some(IpsecPeerDesired {
            psk: Secret::new(key.expose().to_owned()),
            local_id,
            remote_id: site.ike_identity.clone(),
            parameters: IpsecParameters::of(c.ipsec_policy.as_ref(), c.connection_mode),
        }),
    })
}

/// The desired state of gateway `gateway`, and the peers that cannot be configured yet.
pub fn gateway_desired(
    topology: &Topology,
    gateway: &QualifiedName,
    inputs: &GatewayInputs,
) -> Result<(GatewayDesired, Vec<SkippedPeer>), DesiredError> {
    let net = Net::new(topology);
    let g = net
        .gateway_index(&gateway.tenant, &gateway.name)
        .ok_or_else(|| DesiredError::UnknownGateway(gateway.to_string()))?;
    Ok(build(&net, g, inputs, &SkuTable::default()))
}

/// The desired state of several gateways (those missing from the topology are skipped).
pub fn desired_state(
    topology: &Topology,
    version: u64,
    inputs: &BTreeMap<QualifiedName, GatewayInputs>,
) -> (DesiredState, Vec<SkippedPeer>) {
    let net = Net::new(topology);
    let skus = SkuTable::default();
    let mut gateways = Vec::new();
    let mut skipped = Vec::new();
    for (q, i) in inputs {
        match net.gateway_index(&q.tenant, &q.name) {
            Some(g) => {
                let (d, s) = build(&net, g, i, &skus);
                gateways.push(d);
                skipped.extend(s);
            }
            None => skipped.push(SkippedPeer {
                name: q.to_string(),
                reason: "the gateway does not exist".to_owned(),
            }),
        }
    }
    (DesiredState { version, gateways }, skipped)
}

fn build(
    net: &Net<'_>,
    g: usize,
    inputs: &GatewayInputs,
    skus: &SkuTable,
) -> (GatewayDesired, Vec<SkippedPeer>) {
    let t = net.t;
    let gw = &t.gateways[g];
    let me = gw.qualified_name();
    let routes = net.gateway_routes(g);
    let mut peers = Vec::new();
    let mut skipped = Vec::new();
    let mut seen_keys: BTreeMap<String, String> = BTreeMap::new();
    let me_id = PeerIdentity::gateway(&me);

    // Issue 17: IPsec peers are told apart by device address (IPSEC-5), not by key.
    let mut seen_hosts: BTreeMap<String, String> = BTreeMap::new();
    for (ci, s) in net.s2s_of(g) {
        let c = &t.connections[ci];
        let site = &t.sites[s];
        let site_q = QualifiedName::new(&site.tenant, &site.name);
        let tunnel = if c.protocol == TunnelProtocol::IPsec {
            ipsec_tunnel(gw, c, site, &mut seen_hosts)
        } else {
            wireguard_tunnel(c, site, &site_q, &me_id, &mut seen_keys)
        };
        let tunnel = match tunnel {
            Ok(x) => x,
            Err(reason) => {
                skipped.push(SkippedPeer {
                    name: c.name.clone(),
                    reason,
                });
                continue;
            }
        };
        let cq = c.qualified_name();
        let hops = [
            NextHop::SiteToSite {
                connection: cq.clone(),
                site: site_q.clone(),
            },
            NextHop::ForcedTunnel {
                connection: cq.clone(),
                site: site_q.clone(),
            },
        ];
        let policy_selectors: Vec<TrafficSelector> = routes
            .selectors
            .iter()
            .filter(|s| s.connection == cq)
            .map(|s| s.selector)
            .collect();
        // IPsec keeps its tunnel alive with dead peer detection, not WireGuard keepalives.
        let keepalive = match gw.gateway_type {
            GatewayType::RouteBased if tunnel.ipsec.is_none() => Some(PERSISTENT_KEEPALIVE_SECS),
            _ => None,
        };
        peers.push(PeerDesired {
            name: c.name.clone(),
            kind: PeerKind::SiteToSite {
                connection: cq,
                site: site_q,
            },
            public_key: tunnel.public_key,
            preshared_key: tunnel.preshared_key,
            endpoint: Some(site.endpoint_for(c.protocol)),
            allowed_ips: allowed(&routes, &hops),
            persistent_keepalive_secs: keepalive,
            policy_selectors,
            idle_timeout_secs: gw.gateway_type.idle_timeout_secs(),
            region_pair: None,
            last_endpoint: None,
            on_every_instance: false,
            ipsec: tunnel.ipsec,
        });
    }

    for (ci, r) in net.v2v_of(g) {
        let c = &t.connections[ci];
        let rg = &t.gateways[r];
        let rq = rg.qualified_name();
        let Some(key) = rg.public_key.clone() else {
            skipped.push(SkippedPeer {
                name: c.name.clone(),
                reason: format!("gateway {rq} has no public key yet"),
            });
            continue;
        };
        let psk = match connection_psk(c, &me_id, &PeerIdentity::gateway(&rq)) {
            Ok(p) => p,
            Err(reason) => {
                skipped.push(SkippedPeer {
                    name: c.name.clone(),
                    reason,
                });
                continue;
            }
        };
        let cq = c.qualified_name();
        let hop = NextHop::VnetToVnet {
            connection: cq.clone(),
            remote_gateway: rq.clone(),
        };
        let region = |gi: usize| net.vnet_of_gateway(gi).map(|v| t.vnets[v].region.as_str());
        let pair = match (region(g), region(r)) {
            (Some(a), Some(b)) => Some(region_pair(a, b)),
            _ => None,
        };
        peers.push(PeerDesired {
            name: c.name.clone(),
            kind: PeerKind::VnetToVnet {
                connection: cq,
                remote_gateway: rq,
            },
            public_key: key,
            preshared_key: Some(Secret::new(psk.to_base64())),
            endpoint: rg.public_endpoint.map(|e| e.to_string()),
            allowed_ips: allowed(&routes, &[hop]),
            persistent_keepalive_secs: Some(PERSISTENT_KEEPALIVE_SECS),
            policy_selectors: Vec::new(),
            idle_timeout_secs: None,
            region_pair: pair,
            last_endpoint: None,
            on_every_instance: false,
            ipsec: None,
        });
    }

    for r in routes.routes.iter().filter(|r| r.active) {
        if let (NextHop::P2sClient { client, gateway }, RouteOrigin::P2sClient { .. }) =
            (&r.next_hop, &r.origin)
        {
            let Some(p) = t
                .point_to_site
                .iter()
                .find(|p| p.tenant == gateway.tenant && p.gateway == gateway.name)
            else {
                continue;
            };
            let Some(c) = p.clients.iter().find(|c| &c.name == client) else {
                continue;
            };
            peers.push(PeerDesired {
                name: c.name.clone(),
                kind: PeerKind::P2sClient {
                    gateway: gateway.clone(),
                    client: c.name.clone(),
                },
                public_key: c.public_key.clone(),
                preshared_key: None,
                endpoint: None,
                allowed_ips: vec![r.prefix],
                persistent_keepalive_secs: None,
                policy_selectors: Vec::new(),
                idle_timeout_secs: None,
                region_pair: None,
                last_endpoint: None,
                on_every_instance: false,
                ipsec: None,
            });
        }
    }

    let private_address = t
        .vnets
        .iter()
        .find(|v| v.tenant == gw.tenant && v.name == gw.vnet)
        .and_then(|v| v.gateway_subnet())
        .and_then(|s| gateway_instance_address(s.prefix, 0));
    let desired = GatewayDesired {
        tenant: gw.tenant.clone(),
        name: gw.name.clone(),
        gateway_type: gw.gateway_type,
        private_key: inputs.private_key.clone(),
        listen_port: inputs.listen_port,
        public_endpoint: gw.public_endpoint,
        private_address,
        tunnel_mtu: TUNNEL_MTU,
        mss_clamp: gw.mss_clamp,
        peers,
        routes: routes.routes.into_iter().filter(|r| r.active).collect(),
        bandwidth_limit_bps: skus.get(gw.sku).bandwidth_bps,
        instance: None,
    };
    (desired, skipped)
}
