//! The forwarding decision of one gateway, built from its desired routes (GW-1, GW-2, GW-8,
//! GW-9, LIM-5, P2S-8).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use isthmus_shared::desired::{PeerDesired, PeerKind};
use isthmus_shared::lpm::LpmTable;
use isthmus_shared::model::QualifiedName;
use isthmus_shared::routes::{NextHop, Route};

/// Where a packet goes next, as the worker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hop {
    /// Into the VNet: write to the TUN device (GW-8: traffic to the VNet stays inside).
    Vnet,
    /// Into the tunnel of the peer with this id.
    Peer(u32),
    /// Nowhere the worker can deliver (Internet, another route source, no route).
    Drop,
}

/// Which peer a route's next hop names, by connection or by client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerRef {
    Connection(QualifiedName),
    Client(String),
}

impl PeerRef {
    /// The reference a peer answers to.
    pub fn of_peer(p: &PeerDesired) -> PeerRef {
        match &p.kind {
            PeerKind::SiteToSite { connection, .. } | PeerKind::VnetToVnet { connection, .. } => {
                PeerRef::Connection(connection.clone())
            }
            PeerKind::P2sClient { client, .. } => PeerRef::Client(client.clone()),
        }
    }

    /// The peer a next hop names, if it names one.
    pub fn of_next_hop(h: &NextHop) -> Option<PeerRef> {
        match h {
            NextHop::SiteToSite { connection, .. }
            | NextHop::VnetToVnet { connection, .. }
            | NextHop::ForcedTunnel { connection, .. } => {
                Some(PeerRef::Connection(connection.clone()))
            }
            NextHop::P2sClient { client, .. } => Some(PeerRef::Client(client.clone())),
            _ => None,
        }
    }
}

/// The hop for one route, given the peers by reference. Routes into a tunnel the worker does
/// not run (e.g. a skipped peer) drop: they must never fall through to a shorter prefix.
pub fn hop_for(route: &Route, peers: &BTreeMap<PeerRef, u32>) -> Hop {
    match &route.next_hop {
        NextHop::Vnet { .. } => Hop::Vnet,
        other => match PeerRef::of_next_hop(other) {
            Some(r) => peers.get(&r).map_or(Hop::Drop, |id| Hop::Peer(*id)),
            None => Hop::Drop,
        },
    }
}

/// A gateway's forwarding table: longest prefix match over its active routes.
#[derive(Debug, Clone, Default)]
pub struct ForwardingTable {
    table: LpmTable<Hop>,
    /// The VNet's own prefixes (the TUN side), for telling which gateway a TUN packet is from.
    vnet: Vec<IpNet>,
}

impl ForwardingTable {
    /// Builds the table from active routes (inactive ones are ignored; for a prefix given twice
    /// the first active route wins, as in the server's table).
    pub fn build(routes: &[Route], peers: &BTreeMap<PeerRef, u32>) -> Self {
        let active = routes.iter().filter(|r| r.active);
        let vnet = active
            .clone()
            .filter(|r| matches!(r.next_hop, NextHop::Vnet { .. }))
            .map(|r| r.prefix.trunc())
            .collect();
        Self {
            table: active.map(|r| (r.prefix, hop_for(r, peers))).collect(),
            vnet,
        }
    }

    /// The hop for `dst` and the prefix that matched.
    pub fn lookup(&self, dst: IpAddr) -> Option<(IpNet, Hop)> {
        self.table.lookup(dst).map(|(p, h)| (p, *h))
    }

    /// The VNet's prefixes.
    pub fn vnet_prefixes(&self) -> &[IpNet] {
        &self.vnet
    }
}
