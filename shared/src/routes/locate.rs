//! Where a packet starts (VM-2): the VNet, site or point-to-site pool a source address belongs
//! to, by the longest matching prefix among every uniquely named one (of one tenant, or of all).
//!
//! The prefixes go into one [`LpmTable`], built once per walker; the prefix a lookup returns is
//! the longest that holds the address, and every resource holding exactly that prefix is a
//! candidate. More than one candidate (tenants reusing address space, or an invalid topology)
//! is [`NextHopError::AmbiguousSource`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{Location, NextHopError};
use crate::lpm::LpmTable;
use crate::model::QualifiedName;
use crate::resolved::Net;

/// A source of packets: an index into the topology's VNets, sites or point-to-site
/// configurations. Ordered by kind, then index (the order of ambiguous candidates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Src {
    Vnet(usize),
    Site(usize),
    Pool(usize),
}

/// Every source's prefixes, for longest-prefix lookups of a source address.
#[derive(Debug, Clone, Default)]
pub(super) struct Locator {
    /// Prefix -> every source holding exactly that prefix, in [`Src`] order.
    table: LpmTable<Vec<Src>>,
}

impl Locator {
    /// The sources of `tenant` (or of every tenant) with a unique name.
    pub(super) fn new(net: &Net<'_>, tenant: Option<&str>) -> Self {
        let t = net.t;
        let ok = |x: &str| tenant.is_none_or(|want| want == x);
        let mut by_prefix: BTreeMap<IpNet, BTreeSet<Src>> = BTreeMap::new();
        let mut add = |prefixes: &[IpNet], src: Src| {
            for p in prefixes {
                by_prefix.entry(p.trunc()).or_default().insert(src);
            }
        };
        for (v, vnet) in t.vnets.iter().enumerate() {
            if ok(&vnet.tenant) && !net.index.vnets.is_dup(v) {
                add(&vnet.address_space, Src::Vnet(v));
            }
        }
        for (s, site) in t.sites.iter().enumerate() {
            if ok(&site.tenant) && !net.index.sites.is_dup(s) {
                add(&site.address_prefixes, Src::Site(s));
            }
        }
        for (pi, p2s) in t.point_to_site.iter().enumerate() {
            if ok(&p2s.tenant) && !net.index.p2s.is_dup(pi) {
                add(&p2s.address_pool, Src::Pool(pi));
            }
        }
        Self {
            table: by_prefix
                .into_iter()
                .map(|(p, srcs)| (p, srcs.into_iter().collect()))
                .collect(),
        }
    }

    /// The one source `addr` belongs to, none (an Internet host), or why it is ambiguous. A VNet
    /// and its own gateway's pool can't both hold one prefix without overlap (LIM-3); with an
    /// invalid topology, the ambiguity is reported.
    pub(super) fn locate(&self, net: &Net<'_>, addr: IpAddr) -> Result<Option<Src>, NextHopError> {
        match self.table.lookup(addr).map(|(_, srcs)| srcs.as_slice()) {
            None | Some([]) => Ok(None),
            Some(&[src]) => Ok(Some(src)),
            Some(many) => Err(NextHopError::AmbiguousSource {
                address: addr,
                candidates: many.iter().map(|&src| name(net, src)).collect(),
            }),
        }
    }
}

/// How an ambiguous candidate is named.
fn name(net: &Net<'_>, src: Src) -> String {
    match src {
        Src::Vnet(v) => format!("VNet {}", net.qn_vnet(v)),
        Src::Site(s) => format!("site {}", net.qn_site(s)),
        Src::Pool(pi) => {
            let p = &net.t.point_to_site[pi];
            format!("point-to-site pool of {}/{}", p.tenant, p.gateway)
        }
    }
}

/// Where a packet from `source` starts: the VNet, the site, or the client of the pool holding
/// `source` (`None` when no client holds it).
pub(super) fn location(net: &Net<'_>, src: Src, source: IpAddr) -> Location {
    match src {
        Src::Vnet(v) => Location::Vnet {
            vnet: net.qn_vnet(v),
        },
        Src::Site(s) => Location::Site {
            site: net.qn_site(s),
        },
        Src::Pool(pi) => {
            let p = &net.t.point_to_site[pi];
            Location::P2sClient {
                gateway: QualifiedName::new(&p.tenant, &p.gateway),
                client: p
                    .clients
                    .iter()
                    .find(|c| c.address == source)
                    .map(|c| c.name.clone()),
            }
        }
    }
}
