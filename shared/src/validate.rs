//! The validator: every gateway rule, checked against a whole [`Topology`].
//!
//! [`validate`] returns *every* violation, sorted deterministically (by path, then rule, then
//! severity, message and parameters) and free of duplicates; the result does not depend on the
//! order of resources in the topology. An empty result means the topology is valid; warnings
//! ([`Severity::Warning`]) describe states that work but deserve attention (a VNet-to-VNet half
//! waiting for its other half, a site device on a private address) and do not block a change
//! (see [`has_errors`]).
//!
//! [`validate_change`] applies a [`Change`] to a copy and reports all violations of the resulting
//! topology, not only those touching the changed resource: a server accepts the change only when
//! the result has no errors, so a change is applied whole or not at all (LIM-3). The portal can
//! narrow the list to one resource with [`Violation::path`] prefixes.
//!
//! # Paths
//!
//! A [`Violation::path`] names the offending field, always scoped by tenant:
//! `tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix`,
//! `tenants[acme].sites[branch].address_prefixes[1]`,
//! `tenants[acme].connections[hub-branch].shared_key`,
//! `tenants[acme].point_to_site[hub-gw].clients[laptop].address` (a point-to-site configuration
//! is named by its gateway). Lists of values are indexed by position, lists of named things by
//! name. The `related` field of a [`Violation`] lists the paths of the other resources involved.
//!
//! # Messages
//!
//! Messages are English and say what is wrong and how to fix it. [`Violation::params`] carries
//! the same facts as strings (names, prefixes, limits) so a translation can key on
//! rule id + params.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use base64::Engine as _;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{
    Change, ConnectionKind, DeviceHost, GATEWAY_SUBNET, GatewayType, RouteSourceKind, Sku,
    SkuTable, Topology, Vnet,
};
pub use crate::prefix::overlaps;
use crate::prefix::{nested_pairs, net_order};
use crate::psk::{SharedKeyError, validate_shared_key};
use crate::rules::RuleId;

mod deletes;
mod isolation;
mod reserved;

pub use isolation::{tenant_of_change, tenant_of_path, visible_to};

/// P2S-3: the maximum number of root certificates of a point-to-site configuration.
pub const MAX_ROOT_CERTIFICATES: usize = 20;

/// GW-7: the longest IPv4 prefix a `GatewaySubnet` may have (at least /29).
pub const GATEWAY_SUBNET_MAX_V4_LEN: u8 = 29;

/// GW-7, IPv6 analogue: a `GatewaySubnet` must be at least /64. IPv6 subnets are /64 by
/// convention (SLAAC and most clouds require it), so nothing smaller is accepted.
pub const GATEWAY_SUBNET_MAX_V6_LEN: u8 = 64;

/// NAME-2: the longest name.
pub const MAX_NAME_LEN: usize = 80;

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// The topology is refused.
    Error,
    /// Accepted, but worth telling the user.
    Warning,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Violation {
    /// The path of the offending field (see the module documentation for the format).
    pub path: String,
    pub rule: RuleId,
    pub severity: Severity,
    /// What is wrong and how to fix it, in English.
    pub message: String,
    /// Structured facts of the message, for translations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Paths of the other resources involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
}

impl Violation {
    fn new(rule: RuleId, path: impl fmt::Display, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            rule,
            severity: Severity::Error,
            message: message.into(),
            params: BTreeMap::new(),
            related: Vec::new(),
        }
    }

    fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.params.insert(key.to_owned(), value.to_string());
        self
    }

    fn related(mut self, path: impl fmt::Display) -> Self {
        self.related.push(path.to_string());
        self
    }

    /// Whether this violation blocks the topology.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Whether any violation is an error (warnings do not block a change).
pub fn has_errors(violations: &[Violation]) -> bool {
    violations.iter().any(Violation::is_error)
}

/// GW-10: the warning for a gateway whose `public_endpoint` no device on another host can
/// reach (loopback, unspecified, link-local), naming the option that sets the real address;
/// what the validator emits, for views that show one gateway's warnings.
pub fn public_endpoint_warning(g: &crate::model::Gateway) -> Option<Violation> {
    let e = g.public_endpoint?;
    let message = crate::device::endpoint_warning(e)?;
    Some(
        Violation::new(
            RuleId::Gw10,
            format!("{}.public_endpoint", p_gateway(&g.tenant, &g.name)),
            message,
        )
        .param("endpoint", e)
        .param(
            "kind",
            crate::device::unreachable_endpoint(e.ip()).unwrap_or_default(),
        )
        .param("option", "isthmus-worker --public-address")
        .warning(),
    )
}

/// Validates a topology against the default SKU table.
pub fn validate(topology: &Topology) -> Vec<Violation> {
    validate_with(topology, &SkuTable::default())
}

/// Validates a topology against a given SKU table.
pub fn validate_with(topology: &Topology, skus: &SkuTable) -> Vec<Violation> {
    run_validator(topology, skus, &deletes::Deleted::default())
}

/// Validates `topology`, the result of applying `changes` (what a server checks before it
/// commits them). Like [`validate`], except that a reference left dangling by a delete among
/// `changes` is reported as a refused delete: at the deleted resource, saying what still uses
/// it and what to delete first (REF-1), instead of asking to create the missing resource.
pub fn validate_applied<'c>(
    topology: &Topology,
    changes: impl IntoIterator<Item = &'c Change>,
) -> Vec<Violation> {
    run_validator(
        topology,
        &SkuTable::default(),
        &deletes::Deleted::from_changes(changes),
    )
}

fn run_validator(
    topology: &Topology,
    skus: &SkuTable,
    deleted: &deletes::Deleted,
) -> Vec<Violation> {
    let mut v = Validator::new(topology, skus, deleted);
    v.run();
    let mut out = v.out;
    for x in &mut out {
        x.related.sort();
        x.related.dedup();
    }
    out.sort();
    out.dedup();
    out
}

/// Applies `change` to a copy of `topology` and returns every violation of the result (see the
/// module documentation). A change that cannot be applied (deleting something missing) yields one
/// `REF-1` violation.
pub fn validate_change(topology: &Topology, change: &Change) -> Vec<Violation> {
    validate_change_in_place(&mut topology.clone(), change)
}

/// [`validate_change`] without copying `topology`: the change is applied in place, the result
/// validated, and the change undone, so `topology` is left exactly as it was. This is what a
/// form calls on every keystroke (a copy of a 500-VNet topology costs as much as validating it).
pub fn validate_change_in_place(topology: &mut Topology, change: &Change) -> Vec<Violation> {
    match topology.apply_undoable(change) {
        Ok(undo) => {
            let out = validate_applied(topology, std::slice::from_ref(change));
            topology.undo(undo);
            out
        }
        Err(e) => vec![
            Violation::new(
                RuleId::Ref1,
                "change",
                format!("{e}; check the name and tenant"),
            )
            .param("error", &e),
        ],
    }
}

/// A canonical-prefix check (PFX-1) usable on its own, e.g. by a form field: `None` when `net`
/// is canonical, else the message naming the canonical prefix.
pub fn canonical_prefix_message(net: &IpNet) -> Option<String> {
    let t = net.trunc();
    (t != *net).then(|| format!("{net} has host bits set; did you mean {t}?"))
}

/// KEY-1: whether `key` is a WireGuard public key (32 bytes, standard base64).
pub fn is_wireguard_key(key: &str) -> bool {
    key.len() == 44
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|b| b.len() == 32)
}

/// NAME-2: why `name` is not a valid resource name, or `None` when it is.
pub fn name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 {
        return Some("a name cannot be empty".to_owned());
    }
    if len > MAX_NAME_LEN {
        return Some(format!(
            "a name has at most {MAX_NAME_LEN} characters, this one has {len}"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("a name starts with a letter or digit".to_owned());
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
    {
        return Some(format!(
            "{c:?} is not allowed in a name; use ASCII letters, digits, '-', '_' and '.'"
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Paths

/// A path, formatted only when a violation needs it (validation of a valid topology allocates
/// no path strings).
#[derive(Clone, Copy)]
struct PathOf<'b> {
    kind: &'static str,
    tenant: &'b str,
    name: &'b str,
}

impl fmt::Display for PathOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_empty() {
            write!(f, "tenants[{}]", self.tenant)
        } else {
            write!(f, "tenants[{}].{}[{}]", self.tenant, self.kind, self.name)
        }
    }
}

/// `{base}.{field}[{name}]`, lazily.
#[derive(Clone, Copy)]
struct Child<'b, B: fmt::Display>(&'b B, &'static str, &'b str);

impl<B: fmt::Display> fmt::Display for Child<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}[{}]", self.0, self.1, self.2)
    }
}

/// `{base}.{field}`, lazily.
#[derive(Clone, Copy)]
struct Field<'b, B: fmt::Display>(&'b B, &'static str);

impl<B: fmt::Display> fmt::Display for Field<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn p_tenant(t: &str) -> PathOf<'_> {
    PathOf {
        kind: "",
        tenant: t,
        name: "",
    }
}
fn p_vnet<'b>(t: &'b str, v: &'b str) -> PathOf<'b> {
    PathOf {
        kind: "vnets",
        tenant: t,
        name: v,
    }
}
fn p_gateway<'b>(t: &'b str, g: &'b str) -> PathOf<'b> {
    PathOf {
        kind: "gateways",
        tenant: t,
        name: g,
    }
}
fn p_site<'b>(t: &'b str, s: &'b str) -> PathOf<'b> {
    PathOf {
        kind: "sites",
        tenant: t,
        name: s,
    }
}
fn p_conn<'b>(t: &'b str, c: &'b str) -> PathOf<'b> {
    PathOf {
        kind: "connections",
        tenant: t,
        name: c,
    }
}
fn p_p2s<'b>(t: &'b str, g: &'b str) -> PathOf<'b> {
    PathOf {
        kind: "point_to_site",
        tenant: t,
        name: g,
    }
}

// ---------------------------------------------------------------------------------------------
// Lookups that are independent of resource order: a duplicated name resolves to nothing (and
// NAME-1 reports the duplicate), so no check depends on which duplicate comes first.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Missing,
    One(usize),
    Many,
}

fn one(l: Lookup) -> Option<usize> {
    match l {
        Lookup::One(i) => Some(i),
        Lookup::Missing | Lookup::Many => None,
    }
}

use crate::index::{NameMap, Slot, index_all, index_with_dups};

fn lookup(m: &NameMap<'_, Slot>, tenant: &str, name: &str) -> Lookup {
    match m.get(&(tenant, name)) {
        None => Lookup::Missing,
        Some(Slot::One(i)) => Lookup::One(*i),
        Some(Slot::Many(_)) => Lookup::Many,
    }
}

/// An owner of address space, for the overlap sweeps (LIM-3, P2S-6). Ordered by a stable key
/// (kind, tenant, name) so results never depend on resource order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum OwnerKind {
    Pool,
    Site,
    Vnet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Owner<'a> {
    kind: OwnerKind,
    tenant: &'a str,
    name: &'a str,
    /// Index into the topology list of that kind.
    idx: usize,
}

pub(crate) struct Validator<'a> {
    t: &'a Topology,
    skus: &'a SkuTable,
    pub(crate) out: Vec<Violation>,
    tenants: BTreeMap<&'a str, usize>,
    /// Per resource of each kind: whether its name is duplicated (NAME-1).
    dup_vnets: Vec<bool>,
    dup_gateways: Vec<bool>,
    dup_sites: Vec<bool>,
    dup_connections: Vec<bool>,
    dup_p2s: Vec<bool>,
    vnets: NameMap<'a, Slot>,
    gateways: NameMap<'a, Slot>,
    gateways_by_vnet: NameMap<'a, Slot>,
    sites: NameMap<'a, Slot>,
    p2s: NameMap<'a, Slot>,
    /// Connections by (tenant, gateway name).
    conns_by_gw: NameMap<'a, Slot>,
    /// Per connection: its gateway, site (SiteToSite) and remote gateway (VnetToVnet), when they
    /// resolve to exactly one resource.
    conn_gw: Vec<Lookup>,
    conn_site: Vec<Lookup>,
    conn_remote: Vec<Lookup>,
    /// Per connection: a VNet-to-VNet half towards another tenant whose other half does not
    /// exist (CONN-2). It binds nobody until the other owner consents by creating the other
    /// half: it takes no part in LIM-3, REF-1, GW-6 or KEY-2, and only its owner hears of it.
    conn_lone_cross: Vec<bool>,
    /// What the change being validated deleted (refused deletes, REF-1).
    deleted: &'a deletes::Deleted,
}

impl<'a> Validator<'a> {
    pub(crate) fn new(t: &'a Topology, skus: &'a SkuTable, deleted: &'a deletes::Deleted) -> Self {
        let mut tenants = BTreeMap::new();
        for x in &t.tenants {
            *tenants.entry(x.name.as_str()).or_insert(0) += 1;
        }
        let (vnets, dup_vnets) = index_with_dups(&t.vnets, |v| (&v.tenant, &v.name));
        let (gateways, dup_gateways) = index_with_dups(&t.gateways, |g| (&g.tenant, &g.name));
        let (sites, dup_sites) = index_with_dups(&t.sites, |s| (&s.tenant, &s.name));
        let (p2s, dup_p2s) = index_with_dups(&t.point_to_site, |p| (&p.tenant, &p.gateway));
        let (_, dup_connections) = index_with_dups(&t.connections, |c| (&c.tenant, &c.name));
        let mut v = Self {
            t,
            skus,
            out: Vec::new(),
            tenants,
            dup_vnets,
            dup_gateways,
            dup_sites,
            dup_connections,
            dup_p2s,
            vnets,
            gateways,
            gateways_by_vnet: index_all(&t.gateways, |g| (&g.tenant, &g.vnet)),
            sites,
            p2s,
            conns_by_gw: index_all(&t.connections, |c| (&c.tenant, &c.gateway)),
            conn_gw: Vec::with_capacity(t.connections.len()),
            conn_site: Vec::with_capacity(t.connections.len()),
            conn_remote: Vec::with_capacity(t.connections.len()),
            conn_lone_cross: Vec::with_capacity(t.connections.len()),
            deleted,
        };
        for c in &t.connections {
            v.conn_gw.push(lookup(&v.gateways, &c.tenant, &c.gateway));
            let (site, remote) = match &c.kind {
                ConnectionKind::SiteToSite { site } => {
                    (lookup(&v.sites, &c.tenant, site), Lookup::Missing)
                }
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    let rt = remote_gateway.tenant.as_deref().unwrap_or(&c.tenant);
                    (
                        Lookup::Missing,
                        lookup(&v.gateways, rt, &remote_gateway.name),
                    )
                }
            };
            v.conn_site.push(site);
            v.conn_remote.push(remote);
        }
        let halves: BTreeSet<(usize, usize)> = v
            .conn_gw
            .iter()
            .zip(&v.conn_remote)
            .filter_map(|(g, r)| Some((one(*g)?, one(*r)?)))
            .collect();
        for (ci, c) in t.connections.iter().enumerate() {
            let lone_cross = match &c.kind {
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    remote_gateway.tenant.as_deref().unwrap_or(&c.tenant) != c.tenant
                        && !matches!(
                            (one(v.conn_gw[ci]), one(v.conn_remote[ci])),
                            (Some(g), Some(r)) if halves.contains(&(r, g))
                        )
                }
                ConnectionKind::SiteToSite { .. } => false,
            };
            v.conn_lone_cross.push(lone_cross);
        }
        v
    }

    fn push(&mut self, v: Violation) {
        self.out.push(v);
    }

    fn run(&mut self) {
        self.check_names();
        self.check_vnets();
        self.check_gateways();
        self.check_sites();
        self.check_connections();
        self.check_point_to_site();
        self.check_overlaps();
    }

    // ---- helpers ----------------------------------------------------------------------------

    fn gateway_of(&self, tenant: &str, name: &str) -> Lookup {
        lookup(&self.gateways, tenant, name)
    }

    fn vnet_gateway(&self, tenant: &str, vnet: &str) -> Lookup {
        lookup(&self.gateways_by_vnet, tenant, vnet)
    }

    /// The resolved remote gateway of connection `ci` (VnetToVnet), if unique.
    fn remote_of(&self, ci: usize) -> Option<usize> {
        one(self.conn_remote[ci])
    }

    fn site_of(&self, ci: usize) -> Option<usize> {
        one(self.conn_site[ci])
    }

    fn own_gateway_of(&self, ci: usize) -> Option<usize> {
        one(self.conn_gw[ci])
    }

    fn check_prefix_list(&mut self, base: &dyn fmt::Display, field: &str, list: &[IpNet]) {
        self.out.extend(reserved::check_list(base, field, list));
        for (i, p) in list.iter().enumerate() {
            if let Some(msg) = canonical_prefix_message(p) {
                self.push(
                    Violation::new(RuleId::Pfx1, format!("{base}.{field}[{i}]"), msg)
                        .param("prefix", p)
                        .param("canonical", p.trunc()),
                );
            }
        }
        if list.len() < 2 {
            return;
        }
        let mut items: Vec<(IpNet, usize)> = list
            .iter()
            .enumerate()
            .map(|(i, p)| (p.trunc(), i))
            .collect();
        for (a, b) in nested_pairs(&mut items) {
            let (i, j) = (a.min(b), a.max(b));
            self.push(
                Violation::new(
                    RuleId::Pfx3,
                    format!("{base}.{field}[{j}]"),
                    format!(
                        "{} overlaps {} in the same list; list each range once (keep the larger \
                         prefix or split it)",
                        list[j], list[i]
                    ),
                )
                .param("prefix", list[j])
                .param("other_prefix", list[i])
                .related(format!("{base}.{field}[{i}]")),
            );
        }
    }

    fn check_key(&mut self, path: String, what: &str, key: &str) {
        if !is_wireguard_key(key) {
            self.push(
                Violation::new(
                    RuleId::Key1,
                    path,
                    format!(
                        "the {what} is not a WireGuard public key: expected 32 bytes in standard \
                         base64 (44 characters ending in '='), as printed by `wg pubkey`"
                    ),
                )
                .param("what", what),
            );
        }
    }

    // ---- NAME-1, NAME-2, REF-1 (tenants) ------------------------------------------------------

    fn check_names(&mut self) {
        let t = self.t;
        let dups: Vec<(&str, usize)> = self
            .tenants
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (*k, *n))
            .collect();
        for (name, n) in dups {
            self.push(
                Violation::new(
                    RuleId::Name1,
                    p_tenant(name),
                    format!("{n} tenants are named {name:?}; tenant names are unique"),
                )
                .param("name", name),
            );
        }
        for x in &t.tenants {
            if let Some(p) = name_problem(&x.name) {
                self.push(
                    Violation::new(
                        RuleId::Name2,
                        p_tenant(&x.name),
                        format!("tenant name {:?}: {p}", x.name),
                    )
                    .param("name", &x.name),
                );
            }
        }
        let mut found = Vec::new();
        {
            let tenants = &self.tenants;
            let mut check = |kind: &'static str,
                             dup: bool,
                             tenant: &'a str,
                             name: &'a str,
                             path: PathOf<'a>| {
                if dup {
                    let what = if kind == "point-to-site configuration" {
                        format!(
                            "gateway {name:?} has more than one point-to-site configuration; keep one"
                        )
                    } else {
                        format!(
                            "more than one {kind} is named {name:?} in tenant {tenant:?}; names are \
                             unique per kind within a tenant: rename or delete one"
                        )
                    };
                    found.push(
                        Violation::new(RuleId::Name1, path, what)
                            .param("kind", kind)
                            .param("name", name),
                    );
                }
                if kind != "point-to-site configuration"
                    && let Some(p) = name_problem(name)
                {
                    found.push(
                        Violation::new(RuleId::Name2, path, format!("{kind} name {name:?}: {p}"))
                            .param("kind", kind)
                            .param("name", name),
                    );
                }
                if !tenants.contains_key(tenant) {
                    found.push(
                        Violation::new(
                            RuleId::Ref1,
                            path,
                            format!("tenant {tenant:?} does not exist; create it first"),
                        )
                        .param("tenant", tenant),
                    );
                }
            };
            for (i, v) in t.vnets.iter().enumerate() {
                let path = p_vnet(&v.tenant, &v.name);
                check("VNet", self.dup_vnets[i], &v.tenant, &v.name, path);
            }
            for (i, g) in t.gateways.iter().enumerate() {
                let path = p_gateway(&g.tenant, &g.name);
                check("gateway", self.dup_gateways[i], &g.tenant, &g.name, path);
            }
            for (i, x) in t.sites.iter().enumerate() {
                let path = p_site(&x.tenant, &x.name);
                check("site", self.dup_sites[i], &x.tenant, &x.name, path);
            }
            for (i, c) in t.connections.iter().enumerate() {
                let path = p_conn(&c.tenant, &c.name);
                check(
                    "connection",
                    self.dup_connections[i],
                    &c.tenant,
                    &c.name,
                    path,
                );
            }
            for (i, p) in t.point_to_site.iter().enumerate() {
                let path = p_p2s(&p.tenant, &p.gateway);
                let kind = "point-to-site configuration";
                check(kind, self.dup_p2s[i], &p.tenant, &p.gateway, path);
            }
        }
        self.out.extend(found);
    }

    // ---- VNets: PFX-*, SUB-*, GW-7 (subnet side), GW-11, LIM-7 ----------------------------------

    fn check_vnets(&mut self) {
        let t = self.t;
        for v in &t.vnets {
            let base = p_vnet(&v.tenant, &v.name);
            if v.region.trim().is_empty() {
                self.push(Violation::new(
                    RuleId::Name2,
                    format!("{base}.region"),
                    "the region is empty; give the region label the VNet runs in",
                ));
            }
            if v.address_space.is_empty() {
                self.push(Violation::new(
                    RuleId::Pfx2,
                    format!("{base}.address_space"),
                    format!(
                        "VNet {:?} has no address space; add at least one prefix",
                        v.name
                    ),
                ));
            }
            self.check_prefix_list(&base, "address_space", &v.address_space);

            let names = count_names(v.subnets.iter().map(|s| s.name.as_str()));
            for s in &v.subnets {
                let sp = Child(&base, "subnets", &s.name);
                if names(&s.name) > 1 {
                    self.push(Violation::new(
                        RuleId::Name1,
                        sp,
                        format!("more than one subnet is named {:?}; rename one", s.name),
                    ));
                }
                if let Some(p) = name_problem(&s.name) {
                    self.push(Violation::new(
                        RuleId::Name2,
                        sp,
                        format!("subnet name {:?}: {p}", s.name),
                    ));
                }
                if s.name != GATEWAY_SUBNET && s.name.eq_ignore_ascii_case(GATEWAY_SUBNET) {
                    self.push(
                        Violation::new(
                            RuleId::Gw7,
                            sp,
                            format!(
                                "subnet {:?} is not the gateway subnet: the name is case-sensitive; \
                                 did you mean {GATEWAY_SUBNET:?}?",
                                s.name
                            ),
                        )
                        .warning(),
                    );
                }
                if let Some(msg) = canonical_prefix_message(&s.prefix) {
                    self.push(
                        Violation::new(RuleId::Pfx1, format!("{sp}.prefix"), msg)
                            .param("prefix", s.prefix)
                            .param("canonical", s.prefix.trunc()),
                    );
                }
                if !v.address_space.is_empty()
                    && !v
                        .address_space
                        .iter()
                        .any(|a| a.trunc().contains(&s.prefix.trunc()))
                {
                    self.push(
                        Violation::new(
                            RuleId::Sub1,
                            format!("{sp}.prefix"),
                            format!(
                                "subnet {:?} ({}) is outside the VNet's address space ({}); pick a \
                                 prefix inside it or extend the address space",
                                s.name,
                                s.prefix,
                                join(&v.address_space)
                            ),
                        )
                        .param("prefix", s.prefix),
                    );
                }
            }
            let mut items: Vec<(IpNet, usize)> = v
                .subnets
                .iter()
                .enumerate()
                .map(|(i, s)| (s.prefix.trunc(), i))
                .collect();
            for (a, b) in nested_pairs(&mut items) {
                let (sa, sb) = (&v.subnets[a], &v.subnets[b]);
                let (first, second) = if sa.name <= sb.name {
                    (sa, sb)
                } else {
                    (sb, sa)
                };
                self.push(
                    Violation::new(
                        RuleId::Sub2,
                        format!("{base}.subnets[{}].prefix", second.name),
                        format!(
                            "subnet {:?} ({}) overlaps subnet {:?} ({}); subnets of a VNet are \
                             disjoint: shrink or move one of them",
                            second.name, second.prefix, first.name, first.prefix
                        ),
                    )
                    .related(format!("{base}.subnets[{}]", first.name)),
                );
            }

            let rs_names = count_names(v.route_sources.iter().map(|r| r.name.as_str()));
            for r in &v.route_sources {
                let rp = Child(&base, "route_sources", &r.name);
                if rs_names(&r.name) > 1 {
                    self.push(Violation::new(
                        RuleId::Name1,
                        rp,
                        format!(
                            "more than one route source is named {:?}; rename one",
                            r.name
                        ),
                    ));
                }
                for (i, p) in r.prefixes.iter().enumerate() {
                    if let Some(msg) = canonical_prefix_message(p) {
                        self.push(Violation::new(
                            RuleId::Pfx1,
                            format!("{rp}.prefixes[{i}]"),
                            msg,
                        ));
                    }
                }
                if let RouteSourceKind::Appliance { next_hop } = r.kind {
                    if !v.contains(next_hop) {
                        self.push(Violation::new(
                            RuleId::Gw11,
                            format!("{rp}.kind.next_hop"),
                            format!(
                                "the appliance address {next_hop} is outside the VNet's address \
                                 space ({}); user-defined routes point at an appliance inside the VNet",
                                join(&v.address_space)
                            ),
                        ));
                    }
                    if v.gateway_subnet()
                        .is_some_and(|g| g.prefix.contains(&next_hop))
                    {
                        self.push(Violation::new(
                            RuleId::Gw7,
                            format!("{rp}.kind.next_hop"),
                            format!(
                                "the appliance address {next_hop} is inside {GATEWAY_SUBNET}, which \
                                 is reserved for the gateway; place the appliance in another subnet"
                            ),
                        ));
                    }
                }
            }
        }
    }

    // ---- Gateways: REF-1, VNET-1, GW-3, GW-7, GW-9, LIM-1, LIM-2, KEY-1 -------------------------

    fn check_gateways(&mut self) {
        let t = self.t;
        // GW-3: endpoints are unique.
        let mut endpoints: BTreeMap<SocketAddr, Vec<usize>> = BTreeMap::new();
        for (i, g) in t.gateways.iter().enumerate() {
            if let Some(e) = g.public_endpoint {
                endpoints.entry(e).or_default().push(i);
            }
        }
        for (gi, g) in t.gateways.iter().enumerate() {
            let base = p_gateway(&g.tenant, &g.name);
            let limits = self.skus.get(g.sku);
            // REF-1 / VNET-1 / GW-7
            match lookup(&self.vnets, &g.tenant, &g.vnet) {
                Lookup::Missing if self.deleted.has(deletes::Kind::Vnet, &g.tenant, &g.vnet) => {
                    self.push(deletes::still_used(
                        deletes::Kind::Vnet,
                        &g.tenant,
                        &g.vnet,
                        deletes::User {
                            noun: "gateway",
                            name: &g.name,
                            path: base.to_string(),
                            how: "",
                            fix: "delete the gateway first",
                        },
                    ))
                }
                Lookup::Missing => self.push(
                    Violation::new(
                        RuleId::Ref1,
                        format!("{base}.vnet"),
                        format!(
                            "gateway {:?} names VNet {:?}, which does not exist in tenant {:?}; \
                             create the VNet first or fix the name",
                            g.name, g.vnet, g.tenant
                        ),
                    )
                    .param("vnet", &g.vnet),
                ),
                Lookup::Many => {}
                Lookup::One(vi) => {
                    let v = &t.vnets[vi];
                    self.check_gateway_subnet(v, &g.name);
                }
            }
            if let Lookup::Many = self.vnet_gateway(&g.tenant, &g.vnet) {
                let others: Vec<String> = self.gateways_by_vnet
                    [&(g.tenant.as_str(), g.vnet.as_str())]
                    .as_slice()
                    .iter()
                    .filter(|&&o| o != gi)
                    .map(|&o| p_gateway(&t.gateways[o].tenant, &t.gateways[o].name).to_string())
                    .collect();
                let mut v = Violation::new(
                    RuleId::Vnet1,
                    format!("{base}.vnet"),
                    format!(
                        "VNet {:?} has more than one gateway; a VNet has at most one: delete the \
                         extra gateway",
                        g.vnet
                    ),
                );
                v.related = others;
                self.push(v);
            }
            // GW-10: the public side must be reachable from other hosts.
            if let Some(v) = public_endpoint_warning(g) {
                self.push(v);
            }
            // GW-3
            if let Some(e) = g.public_endpoint {
                if e.port() == 0 {
                    self.push(Violation::new(
                        RuleId::Gw3,
                        format!("{base}.public_endpoint"),
                        format!(
                            "the public endpoint {e} has port 0; the server allocates a real port"
                        ),
                    ));
                }
                let same = &endpoints[&e];
                if same.len() > 1 {
                    let mut v = Violation::new(
                        RuleId::Gw3,
                        format!("{base}.public_endpoint"),
                        format!(
                            "the public endpoint {e} is also used by another gateway; every gateway \
                             gets its own endpoint when it is created: leave it to the server"
                        ),
                    )
                    .param("endpoint", e);
                    v.related = same
                        .iter()
                        .filter(|&&o| o != gi)
                        .map(|&o| p_gateway(&t.gateways[o].tenant, &t.gateways[o].name).to_string())
                        .collect();
                    self.push(v);
                }
            }
            if let Some(k) = &g.public_key {
                self.check_key(format!("{base}.public_key"), "gateway public key", k);
            }
            // LIM-2 (active-active support)
            if g.active_active && !limits.active_active {
                self.push(
                    Violation::new(
                        RuleId::Lim2,
                        format!("{base}.active_active"),
                        format!(
                            "SKU {} cannot run active-active; pick VpnGw1 or larger, or turn \
                             active-active off",
                            g.sku
                        ),
                    )
                    .param("sku", g.sku),
                );
            }
            // LIM-1
            let conns: Vec<usize> = self
                .conns_by_gw
                .get(&(g.tenant.as_str(), g.name.as_str()))
                .map(|s| s.as_slice().to_vec())
                .unwrap_or_default();
            let n = conns.len();
            if self.gateway_of(&g.tenant, &g.name) == Lookup::One(gi)
                && n > limits.max_connections as usize
            {
                let bigger = bigger_sku_for_connections(g.sku, n, self.skus);
                self.push(
                    Violation::new(
                        RuleId::Lim1,
                        format!("{base}.sku"),
                        format!(
                            "gateway {:?} has {n} connections but SKU {} allows {}; remove {} \
                             connection(s){}",
                            g.name,
                            g.sku,
                            limits.max_connections,
                            n - limits.max_connections as usize,
                            match bigger {
                                Some(b) => format!(
                                    " or resize the gateway to {b} ({} connections)",
                                    self.skus.get(b).max_connections
                                ),
                                None => String::new(),
                            }
                        ),
                    )
                    .param("connections", n)
                    .param("limit", limits.max_connections)
                    .param("sku", g.sku),
                );
            }
            // GW-9
            if let Some(site) = &g.forced_tunneling_site {
                let fp = format!("{base}.forced_tunneling_site");
                if g.gateway_type == GatewayType::PolicyBased {
                    self.push(Violation::new(
                        RuleId::Gw9,
                        fp.clone(),
                        "forced tunneling needs a RouteBased gateway: a PolicyBased gateway only \
                         sends traffic matching its selectors; change the type or clear the site",
                    ));
                }
                let deleted_conns = self.deleted.connections_of(&g.tenant);
                if lookup(&self.sites, &g.tenant, site) == Lookup::Missing
                    && self.deleted.has(deletes::Kind::Site, &g.tenant, site)
                {
                    self.push(deletes::still_used(
                        deletes::Kind::Site,
                        &g.tenant,
                        site,
                        deletes::User {
                            noun: "gateway",
                            name: &g.name,
                            path: fp.clone(),
                            how: " as its forced-tunneling site",
                            fix: "clear the gateway's forced-tunneling site first",
                        },
                    ));
                } else if lookup(&self.sites, &g.tenant, site) == Lookup::Missing {
                    self.push(Violation::new(
                        RuleId::Ref1,
                        fp.clone(),
                        format!(
                            "the forced-tunneling site {site:?} does not exist in tenant {:?}",
                            g.tenant
                        ),
                    ));
                } else if !conns
                    .iter()
                    .any(|&ci| t.connections[ci].site() == Some(site.as_str()))
                    && !deleted_conns.is_empty()
                {
                    // Only a delete of the site's connection can disconnect it.
                    let names = deleted_conns
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.push(
                        Violation::new(
                            RuleId::Gw9,
                            fp,
                            format!(
                                "connection {names} carries the forced tunnel of gateway {:?} to                                  site {site:?}; clear the gateway's forced-tunneling site first,                                  then delete the connection",
                                g.name
                            ),
                        )
                        .param("site", site)
                        .param("connection", names),
                    );
                } else if !conns
                    .iter()
                    .any(|&ci| t.connections[ci].site() == Some(site.as_str()))
                {
                    self.push(
                        Violation::new(
                            RuleId::Gw9,
                            fp,
                            format!(
                                "the forced-tunneling site {site:?} is not connected to gateway {:?}; \
                                 create a site-to-site connection to it first",
                                g.name
                            ),
                        )
                        .param("site", site),
                    );
                }
            }
        }
    }

    fn check_gateway_subnet(&mut self, v: &Vnet, gateway: &str) {
        let base = p_vnet(&v.tenant, &v.name);
        match v.gateway_subnet() {
            None => self.push(
                Violation::new(
                    RuleId::Gw7,
                    format!("{base}.subnets"),
                    format!(
                        "VNet {:?} has gateway {gateway:?} but no subnet named {GATEWAY_SUBNET}; \
                         add a {GATEWAY_SUBNET} of at least /{GATEWAY_SUBNET_MAX_V4_LEN} (IPv4) or \
                         /{GATEWAY_SUBNET_MAX_V6_LEN} (IPv6) inside the address space",
                        v.name
                    ),
                )
                .param("vnet", &v.name),
            ),
            Some(s) => {
                let (max, fam) = match s.prefix {
                    IpNet::V4(_) => (GATEWAY_SUBNET_MAX_V4_LEN, "IPv4"),
                    IpNet::V6(_) => (GATEWAY_SUBNET_MAX_V6_LEN, "IPv6"),
                };
                if s.prefix.prefix_len() > max {
                    self.push(
                        Violation::new(
                            RuleId::Gw7,
                            format!("{base}.subnets[{GATEWAY_SUBNET}].prefix"),
                            format!(
                                "{GATEWAY_SUBNET} {} is too small: the gateway needs at least a \
                                 /{max} ({fam}); use a prefix length of {max} or less, e.g. {}",
                                s.prefix,
                                IpNet::new(s.prefix.network(), max)
                                    .map(|n| n.trunc().to_string())
                                    .unwrap_or_default()
                            ),
                        )
                        .param("prefix", s.prefix)
                        .param("max_len", max),
                    );
                }
            }
        }
    }

    // ---- Sites: PFX-*, CONN-4, KEY-1 ----------------------------------------------------------

    fn check_sites(&mut self) {
        for s in &self.t.sites {
            let base = p_site(&s.tenant, &s.name);
            if s.address_prefixes.is_empty() {
                self.push(Violation::new(
                    RuleId::Pfx2,
                    format!("{base}.address_prefixes"),
                    format!(
                        "site {:?} has no address prefixes; add the on-premises ranges to route \
                         through the tunnel",
                        s.name
                    ),
                ));
            }
            self.check_prefix_list(&base, "address_prefixes", &s.address_prefixes);
            let hp = Field(&base, "device_host");
            match &s.device_host {
                DeviceHost::Ipv6(a) => self.push(
                    Violation::new(
                        RuleId::Conn4,
                        hp,
                        format!(
                            "the device address {a} is IPv6; a site-to-site device needs a public \
                             IPv4 address (or a DNS name resolving to one)"
                        ),
                    )
                    .param("host", a),
                ),
                DeviceHost::Ipv4(a) => {
                    if let Some(problem) = ipv4_unusable(*a) {
                        self.push(
                            Violation::new(
                                RuleId::Conn4,
                                hp,
                                format!(
                                    "the device address {a} is {problem}; a site-to-site device \
                                     needs a public IPv4 address"
                                ),
                            )
                            .param("host", a),
                        );
                    } else if let Some(kind) = ipv4_non_public(*a) {
                        self.push(
                            Violation::new(
                                RuleId::Conn4,
                                hp,
                                format!(
                                    "the device address {a} is {kind}; the tunnel only comes up if \
                                     the gateway can reach it (give the device's public IPv4 address)"
                                ),
                            )
                            .warning()
                            .param("host", a),
                        );
                    }
                }
                DeviceHost::Name(_) => {}
            }
            if let Some(k) = &s.device_public_key {
                self.check_key(format!("{base}.device_public_key"), "device public key", k);
            }
            if let Some(v) = reserved::check_device_port(&base, s.device_port) {
                self.push(v);
            }
        }
    }

    // ---- Connections: REF-*, GW-1, GW-2, GW-4, GW-5, GW-6, CONN-2, CONN-3, LIM-2, KEY-2 --------

    fn check_connections(&mut self) {
        let t = self.t;
        // Per-gateway groupings, keyed by resolved indices (order independent).
        let mut s2s_by_gw_site: Vec<(usize, usize, usize)> = Vec::new();
        let mut s2s_by_gw: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut v2v_by_pair: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();

        for (ci, c) in t.connections.iter().enumerate() {
            let base = p_conn(&c.tenant, &c.name);
            let gw = match self.conn_gw[ci] {
                Lookup::Missing
                    if self
                        .deleted
                        .has(deletes::Kind::Gateway, &c.tenant, &c.gateway) =>
                {
                    self.push(deletes::still_used(
                        deletes::Kind::Gateway,
                        &c.tenant,
                        &c.gateway,
                        deletes::User {
                            noun: "connection",
                            name: &c.name,
                            path: base.to_string(),
                            how: "",
                            fix: "delete the connection first",
                        },
                    ));
                    None
                }
                Lookup::Missing => {
                    self.push(Violation::new(
                        RuleId::Ref1,
                        format!("{base}.gateway"),
                        format!(
                            "connection {:?} belongs to gateway {:?}, which does not exist in tenant \
                             {:?}; create the gateway first or fix the name",
                            c.name, c.gateway, c.tenant
                        ),
                    ));
                    None
                }
                Lookup::Many => None,
                Lookup::One(g) => Some(g),
            };
            // GW-5
            if let Some(k) = &c.shared_key
                && let Err(e) = validate_shared_key(k.expose())
            {
                self.push(shared_key_violation(format!("{base}.shared_key"), &e));
            }
            match &c.kind {
                ConnectionKind::SiteToSite { site } => {
                    let site_idx = match self.conn_site[ci] {
                        Lookup::Missing
                            if self.deleted.has(deletes::Kind::Site, &c.tenant, site) =>
                        {
                            self.push(deletes::still_used(
                                deletes::Kind::Site,
                                &c.tenant,
                                site,
                                deletes::User {
                                    noun: "connection",
                                    name: &c.name,
                                    path: base.to_string(),
                                    how: "",
                                    fix: "delete the connection first",
                                },
                            ));
                            None
                        }
                        Lookup::Missing => {
                            self.push(Violation::new(
                                RuleId::Ref1,
                                format!("{base}.kind.site"),
                                format!(
                                    "site {site:?} does not exist in tenant {:?}; create the local \
                                     network site first or fix the name",
                                    c.tenant
                                ),
                            ));
                            None
                        }
                        Lookup::Many => None,
                        Lookup::One(s) => Some(s),
                    };
                    if let Some(g) = gw {
                        s2s_by_gw.entry(g).or_default().push(ci);
                        if let Some(s) = site_idx {
                            s2s_by_gw_site.push((g, s, ci));
                        }
                    }
                    if let (Some(g), false) = (gw, c.traffic_selectors.is_empty()) {
                        let gateway = &t.gateways[g];
                        if gateway.gateway_type == GatewayType::RouteBased {
                            self.push(Violation::new(
                                RuleId::Gw2,
                                format!("{base}.traffic_selectors"),
                                format!(
                                    "gateway {:?} is RouteBased: its tunnels use the forwarding \
                                     table and any-to-any selectors; remove the traffic selectors \
                                     (they only apply to PolicyBased gateways)",
                                    gateway.name
                                ),
                            ));
                        } else {
                            self.check_selectors(ci, g, site_idx);
                        }
                    }
                }
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    let rt = remote_gateway.tenant.as_deref().unwrap_or(&c.tenant);
                    if !c.traffic_selectors.is_empty() {
                        self.push(Violation::new(
                            RuleId::Gw2,
                            format!("{base}.traffic_selectors"),
                            "a VNet-to-VNet connection is route-based with any-to-any selectors; \
                             remove the traffic selectors",
                        ));
                    }
                    if self.conn_lone_cross[ci] {
                        // Whether the remote gateway or its tenant exists is not this tenant's
                        // business: one answer for all three cases.
                        self.push(isolation::waiting_for_other_half(
                            &base,
                            rt,
                            &remote_gateway.name,
                            &c.tenant,
                            &c.gateway,
                        ));
                        continue;
                    }
                    let remote = match self.conn_remote[ci] {
                        Lookup::Missing
                            if self.deleted.has(
                                deletes::Kind::Gateway,
                                rt,
                                &remote_gateway.name,
                            ) =>
                        {
                            self.push(deletes::still_used(
                                deletes::Kind::Gateway,
                                rt,
                                &remote_gateway.name,
                                deletes::User {
                                    noun: "connection",
                                    name: &c.name,
                                    path: base.to_string(),
                                    how: " as its remote gateway",
                                    fix: "delete the connection first",
                                },
                            ));
                            None
                        }
                        Lookup::Missing => {
                            self.push(Violation::new(
                                RuleId::Ref1,
                                format!("{base}.kind.remote_gateway"),
                                format!(
                                    "remote gateway {:?} does not exist in tenant {rt:?}; create \
                                     it first or fix the name",
                                    remote_gateway.name
                                ),
                            ));
                            None
                        }
                        Lookup::Many => None,
                        Lookup::One(r) => Some(r),
                    };
                    let (Some(g), Some(r)) = (gw, remote) else {
                        continue;
                    };
                    if g == r {
                        self.push(Violation::new(
                            RuleId::Ref2,
                            format!("{base}.kind.remote_gateway"),
                            "a VNet-to-VNet connection cannot point at its own gateway; name the \
                             other VNet's gateway",
                        ));
                        continue;
                    }
                    v2v_by_pair.entry((g, r)).or_default().push(ci);
                    let (gg, rg) = (&t.gateways[g], &t.gateways[r]);
                    for (end, which) in [(gg, "local"), (rg, "remote")] {
                        if end.gateway_type == GatewayType::PolicyBased {
                            self.push(
                                Violation::new(
                                    RuleId::Gw6,
                                    format!("{base}.kind"),
                                    format!(
                                        "VNet-to-VNet needs RouteBased gateways on both ends, but \
                                         the {which} gateway {} is PolicyBased; recreate it as \
                                         RouteBased",
                                        end.qualified_name()
                                    ),
                                )
                                .param("gateway", end.qualified_name())
                                .related(p_gateway(&end.tenant, &end.name)),
                            );
                        }
                    }
                }
            }
        }

        // CONN-2 / GW-4: the other half of every VNet-to-VNet connection.
        for (&(g, r), halves) in &v2v_by_pair {
            if halves.len() > 1 {
                for &ci in halves {
                    let c = &t.connections[ci];
                    let mut v = Violation::new(
                        RuleId::Ref2,
                        format!("{}.kind.remote_gateway", p_conn(&c.tenant, &c.name)),
                        format!(
                            "gateway {} has {} connections to gateway {}; one VNet-to-VNet \
                             connection per pair of gateways: delete the extra ones",
                            t.gateways[g].qualified_name(),
                            halves.len(),
                            t.gateways[r].qualified_name()
                        ),
                    );
                    v.related = halves
                        .iter()
                        .filter(|&&o| o != ci)
                        .map(|&o| {
                            p_conn(&t.connections[o].tenant, &t.connections[o].name).to_string()
                        })
                        .collect();
                    self.push(v);
                }
                continue;
            }
            let ci = halves[0];
            let c = &t.connections[ci];
            let base = p_conn(&c.tenant, &c.name);
            let cross = t.gateways[g].tenant != t.gateways[r].tenant;
            match v2v_by_pair.get(&(r, g)).map(Vec::as_slice) {
                None | Some([]) => {
                    // Same tenant only: a lone cross-tenant half never gets here.
                    let rgw = &t.gateways[r];
                    self.push(
                        Violation::new(
                            RuleId::Conn2,
                            format!("{base}.kind.remote_gateway"),
                            format!(
                                "{}: this is one half of a VNet-to-VNet tunnel; the tunnel comes \
                                 up when the other half is created (a VnetToVnet connection on \
                                 {} naming {}) with the same shared key",
                                isolation::WAITING,
                                rgw.qualified_name(),
                                t.gateways[g].qualified_name()
                            ),
                        )
                        .warning()
                        .param("status", isolation::WAITING)
                        .param("remote_gateway", rgw.qualified_name()),
                    );
                }
                Some([other]) => {
                    let o = &t.connections[*other];
                    if let (Some(a), Some(b)) = (&c.shared_key, &o.shared_key)
                        && a != b
                    {
                        if cross {
                            // Each owner sets its own half: accepted, and told to each owner
                            // about its own half only.
                            self.push(isolation::key_mismatch(
                                &base,
                                &c.remote_gateway()
                                    .map(|q| q.to_string())
                                    .unwrap_or_default(),
                            ));
                        } else {
                            self.push(
                                Violation::new(
                                    RuleId::Gw4,
                                    format!("{base}.shared_key"),
                                    format!(
                                        "the two halves of the VNet-to-VNet tunnel carry \
                                         different shared keys ({} and {}); set the same key on \
                                         both in one change (replacing the key of one half of a \
                                         pair in one tenant replaces both)",
                                        c.qualified_name(),
                                        o.qualified_name()
                                    ),
                                )
                                .related(p_conn(&o.tenant, &o.name)),
                            );
                        }
                    }
                }
                Some(_) => {} // the reverse direction reports its own REF-2
            }
        }

        // LIM-2: redundant tunnels to one site.
        s2s_by_gw_site.sort_unstable();
        for group in s2s_by_gw_site.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            if group.len() < 2 {
                continue;
            }
            let (g, s) = (group[0].0, group[0].1);
            let conns: Vec<usize> = group.iter().map(|x| x.2).collect();
            let gw = &t.gateways[g];
            let allowed = if gw.active_active && self.skus.get(gw.sku).active_active {
                2
            } else {
                1
            };
            if conns.len() > allowed {
                let site = &t.sites[s];
                let hint = if allowed == 2 {
                    "an active-active gateway has at most two tunnels to one site".to_owned()
                } else if self.skus.get(gw.sku).active_active {
                    "turn on active-active to run two tunnels to one site, or delete the extra \
                     connection"
                        .to_owned()
                } else {
                    format!(
                        "SKU {} cannot run redundant tunnels; delete the extra connection or move \
                         to an active-active capable SKU (VpnGw1 or larger)",
                        gw.sku
                    )
                };
                for &ci in &conns {
                    let c = &t.connections[ci];
                    let mut v = Violation::new(
                        RuleId::Lim2,
                        format!("{}.kind.site", p_conn(&c.tenant, &c.name)),
                        format!(
                            "gateway {:?} has {} connections to site {:?}; {hint}",
                            gw.name,
                            conns.len(),
                            site.name
                        ),
                    )
                    .param("count", conns.len())
                    .param("allowed", allowed);
                    v.related = conns
                        .iter()
                        .filter(|&&o| o != ci)
                        .map(|&o| {
                            p_conn(&t.connections[o].tenant, &t.connections[o].name).to_string()
                        })
                        .collect();
                    self.push(v);
                }
            }
        }

        // CONN-3 / GW-6: a PolicyBased gateway has a single site.
        for (&g, conns) in &s2s_by_gw {
            let gw = &t.gateways[g];
            if gw.gateway_type != GatewayType::PolicyBased || conns.len() < 2 {
                continue;
            }
            let mut sites: Vec<&str> = conns
                .iter()
                .filter_map(|&ci| t.connections[ci].site())
                .collect();
            sites.sort_unstable();
            sites.dedup();
            let mut v = Violation::new(
                RuleId::Conn3,
                format!("{}.gateway_type", p_gateway(&gw.tenant, &gw.name)),
                format!(
                    "PolicyBased gateway {:?} has {} site-to-site connections (sites {}); a \
                     PolicyBased gateway connects to exactly one site (multi-site needs RouteBased, \
                     GW-6): recreate it as RouteBased or delete the extra connections",
                    gw.name,
                    conns.len(),
                    sites.join(", ")
                ),
            )
            .param("connections", conns.len());
            v.related = conns
                .iter()
                .map(|&ci| p_conn(&t.connections[ci].tenant, &t.connections[ci].name).to_string())
                .collect();
            self.push(v);
        }

        self.check_peer_keys(&s2s_by_gw, &v2v_by_pair);
    }

    /// GW-1: selectors of a PolicyBased site-to-site connection.
    fn check_selectors(&mut self, ci: usize, g: usize, site: Option<usize>) {
        let t = self.t;
        let c = &t.connections[ci];
        let base = p_conn(&c.tenant, &c.name);
        let vnet = match lookup(&self.vnets, &t.gateways[g].tenant, &t.gateways[g].vnet) {
            Lookup::One(v) => Some(&t.vnets[v]),
            _ => None,
        };
        for (i, sel) in c.traffic_selectors.iter().enumerate() {
            let sp = format!("{base}.traffic_selectors[{i}]");
            for (field, p) in [("local", sel.local), ("remote", sel.remote)] {
                if let Some(msg) = canonical_prefix_message(&p) {
                    self.push(Violation::new(RuleId::Pfx1, format!("{sp}.{field}"), msg));
                }
            }
            if sel.local.addr().is_ipv4() != sel.remote.addr().is_ipv4() {
                self.push(Violation::new(
                    RuleId::Gw1,
                    &sp,
                    format!(
                        "selector ({}, {}) mixes IPv4 and IPv6; both sides of a selector are of \
                         one family",
                        sel.local, sel.remote
                    ),
                ));
            }
            if let Some(v) = vnet
                && !v
                    .address_space
                    .iter()
                    .any(|a| a.trunc().contains(&sel.local.trunc()))
            {
                self.push(Violation::new(
                    RuleId::Gw1,
                    format!("{sp}.local"),
                    format!(
                        "the local side {} of the selector is outside VNet {:?} ({}); a selector \
                         pairs a VNet prefix with a site prefix",
                        sel.local,
                        v.name,
                        join(&v.address_space)
                    ),
                ));
            }
            if let Some(s) = site.map(|s| &t.sites[s])
                && !s
                    .address_prefixes
                    .iter()
                    .any(|a| a.trunc().contains(&sel.remote.trunc()))
            {
                self.push(Violation::new(
                    RuleId::Gw1,
                    format!("{sp}.remote"),
                    format!(
                        "the remote side {} of the selector is outside site {:?} ({}); add the range \
                         to the site or fix the selector",
                        sel.remote,
                        s.name,
                        join(&s.address_prefixes)
                    ),
                ));
            }
        }
    }

    /// KEY-2: the peers of one gateway have distinct public keys.
    fn check_peer_keys(
        &mut self,
        s2s_by_gw: &BTreeMap<usize, Vec<usize>>,
        v2v_by_pair: &BTreeMap<(usize, usize), Vec<usize>>,
    ) {
        let t = self.t;
        // (gateway, key, peer): sorted and grouped below; paths are only built for conflicts.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Peer {
            Site(usize),
            Gateway(usize),
            Client(usize, usize),
        }
        let mut all: Vec<(usize, &str, Peer)> = Vec::new();
        for (&g, conns) in s2s_by_gw {
            for &ci in conns {
                if let Some(s) = self.site_of(ci)
                    && let Some(k) = &t.sites[s].device_public_key
                {
                    all.push((g, k, Peer::Site(s)));
                }
            }
        }
        for &(g, r) in v2v_by_pair.keys() {
            if let Some(k) = &t.gateways[r].public_key {
                all.push((g, k, Peer::Gateway(r)));
            }
        }
        for (g, p, ci) in self.hosted_clients() {
            all.push((
                g,
                &t.point_to_site[p].clients[ci].public_key,
                Peer::Client(p, ci),
            ));
        }
        all.sort_unstable();
        all.dedup();
        let path = |p: &Peer| match *p {
            Peer::Site(s) => p_site(&t.sites[s].tenant, &t.sites[s].name).to_string(),
            Peer::Gateway(r) => p_gateway(&t.gateways[r].tenant, &t.gateways[r].name).to_string(),
            Peer::Client(p, ci) => {
                let pc = &t.point_to_site[p];
                format!(
                    "{}.clients[{}]",
                    p_p2s(&pc.tenant, &pc.gateway),
                    pc.clients[ci].name
                )
            }
        };
        let mut keys: BTreeMap<(usize, &str), BTreeSet<String>> = BTreeMap::new();
        for group in all.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (g, key, _) = group[0];
            let own = t.gateways[g].public_key.as_deref() == Some(key);
            if group.len() > 1 || own {
                keys.insert((g, key), group.iter().map(|(_, _, p)| path(p)).collect());
            }
        }
        for ((g, key), peers) in keys {
            let gw = &t.gateways[g];
            {
                let own = gw.public_key.as_deref() == Some(key);
                if peers.len() < 2 && !own {
                    continue;
                }
                for peer in &peers {
                    let mut v = Violation::new(
                        RuleId::Key2,
                        peer.clone(),
                        if own {
                            format!(
                                "this peer uses the public key of gateway {} itself; generate a \
                                 separate key pair for it",
                                gw.qualified_name()
                            )
                        } else {
                            format!(
                                "{} peers of gateway {} share one public key; WireGuard tells peers \
                                 apart by key: give each device or client its own key pair",
                                peers.len(),
                                gw.qualified_name()
                            )
                        },
                    );
                    v.related = peers.iter().filter(|p| *p != peer).cloned().collect();
                    self.push(v);
                }
            }
        }
    }

    /// (gateway, p2s config, client index) for every authorised client hosted by a gateway: its
    /// own configuration's clients and those of configurations naming its VNet in
    /// `additional_vnets` (P2S-6).
    fn hosted_clients(&self) -> Vec<(usize, usize, usize)> {
        let t = self.t;
        let mut out = Vec::new();
        for (pi, p) in t.point_to_site.iter().enumerate() {
            if lookup(&self.p2s, &p.tenant, &p.gateway) != Lookup::One(pi) {
                continue;
            }
            let mut gws: BTreeSet<usize> = BTreeSet::new();
            if let Lookup::One(g) = self.gateway_of(&p.tenant, &p.gateway) {
                gws.insert(g);
            }
            for x in &p.additional_vnets {
                if let Lookup::One(g) = self.vnet_gateway(&p.tenant, x) {
                    gws.insert(g);
                }
            }
            for g in gws {
                for (ci, c) in p.clients.iter().enumerate() {
                    if p.is_authorised(c) {
                        out.push((g, pi, ci));
                    }
                }
            }
        }
        out
    }

    // ---- Point-to-site: P2S-1, P2S-2, P2S-3, P2S-6 (references), CONN-5, ADDR-1 ----------------

    fn check_point_to_site(&mut self) {
        let t = self.t;
        for p in &t.point_to_site {
            let base = p_p2s(&p.tenant, &p.gateway);
            match self.gateway_of(&p.tenant, &p.gateway) {
                Lookup::Missing
                    if self
                        .deleted
                        .has(deletes::Kind::Gateway, &p.tenant, &p.gateway) =>
                {
                    self.push(deletes::still_used(
                        deletes::Kind::Gateway,
                        &p.tenant,
                        &p.gateway,
                        deletes::User {
                            noun: "point-to-site configuration",
                            name: &p.gateway,
                            path: base.to_string(),
                            how: "",
                            fix: "delete the point-to-site configuration first",
                        },
                    ))
                }
                Lookup::Missing => self.push(Violation::new(
                    RuleId::Ref1,
                    format!("{base}.gateway"),
                    format!(
                        "gateway {:?} does not exist in tenant {:?}; create it first",
                        p.gateway, p.tenant
                    ),
                )),
                Lookup::Many => {}
                Lookup::One(g) => {
                    let gw = &t.gateways[g];
                    if gw.gateway_type == GatewayType::PolicyBased {
                        self.push(Violation::new(
                            RuleId::P2s1,
                            format!("{base}.gateway"),
                            format!(
                                "point-to-site works only on RouteBased gateways, and {:?} is \
                                 PolicyBased; recreate the gateway as RouteBased",
                                gw.name
                            ),
                        ));
                        let has_s2s = self
                            .conns_by_gw
                            .get(&(gw.tenant.as_str(), gw.name.as_str()))
                            .is_some_and(|cs| {
                                cs.as_slice()
                                    .iter()
                                    .any(|&ci| t.connections[ci].site().is_some())
                            });
                        if has_s2s {
                            self.push(Violation::new(
                                RuleId::Conn5,
                                format!("{base}.gateway"),
                                format!(
                                    "site-to-site and point-to-site coexist only on a RouteBased \
                                     gateway; {:?} is PolicyBased and has a site-to-site \
                                     connection: recreate it as RouteBased",
                                    gw.name
                                ),
                            ));
                        }
                    }
                }
            }
            if p.address_pool.is_empty() {
                self.push(Violation::new(
                    RuleId::Pfx2,
                    format!("{base}.address_pool"),
                    "the point-to-site configuration has no client address pool; add a prefix \
                     that overlaps nothing the clients reach",
                ));
            }
            self.check_prefix_list(&base, "address_pool", &p.address_pool);

            // P2S-3
            if p.root_certificates.len() > MAX_ROOT_CERTIFICATES {
                self.push(
                    Violation::new(
                        RuleId::P2s3,
                        format!("{base}.root_certificates"),
                        format!(
                            "{} root certificates are uploaded; at most {MAX_ROOT_CERTIFICATES} are \
                             allowed: remove {}",
                            p.root_certificates.len(),
                            p.root_certificates.len() - MAX_ROOT_CERTIFICATES
                        ),
                    )
                    .param("count", p.root_certificates.len())
                    .param("limit", MAX_ROOT_CERTIFICATES),
                );
            }
            let mut cert_names: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &p.root_certificates {
                *cert_names.entry(c.name.as_str()).or_insert(0) += 1;
            }
            for (name, n) in cert_names {
                if n > 1 {
                    self.push(Violation::new(
                        RuleId::Name1,
                        format!("{base}.root_certificates[{name}]"),
                        format!("{n} root certificates are named {name:?}; rename or remove one"),
                    ));
                }
            }

            // Clients: NAME-1, KEY-1, ADDR-1, P2S-3 (revoked)
            let mut client_names: BTreeMap<&str, usize> = BTreeMap::new();
            let mut addrs: BTreeMap<IpAddr, BTreeSet<&str>> = BTreeMap::new();
            for c in &p.clients {
                *client_names.entry(c.name.as_str()).or_insert(0) += 1;
                addrs.entry(c.address).or_default().insert(&c.name);
            }
            for c in &p.clients {
                let cp = Child(&base, "clients", &c.name);
                if client_names.get(c.name.as_str()).copied().unwrap_or(0) > 1 {
                    self.push(Violation::new(
                        RuleId::Name1,
                        cp,
                        format!("more than one client is named {:?}; rename one", c.name),
                    ));
                }
                if let Some(pr) = name_problem(&c.name) {
                    self.push(Violation::new(
                        RuleId::Name2,
                        cp,
                        format!("client name {:?}: {pr}", c.name),
                    ));
                }
                self.check_key(
                    format!("{cp}.public_key"),
                    "client public key",
                    &c.public_key,
                );
                if !p.address_pool.is_empty()
                    && !p
                        .address_pool
                        .iter()
                        .any(|n| n.trunc().contains(&c.address))
                {
                    self.push(
                        Violation::new(
                            RuleId::Addr1,
                            format!("{cp}.address"),
                            format!(
                                "client address {} is outside the pool ({}); pick an address in the \
                                 pool",
                                c.address,
                                join(&p.address_pool)
                            ),
                        )
                        .param("address", c.address),
                    );
                }
                if let Some(others) = addrs.get(&c.address)
                    && others.len() > 1
                {
                    let mut v = Violation::new(
                        RuleId::Addr1,
                        format!("{cp}.address"),
                        format!(
                            "address {} is given to {} clients; each client needs its own address",
                            c.address,
                            others.len()
                        ),
                    );
                    v.related = others
                        .iter()
                        .filter(|n| **n != c.name)
                        .map(|n| format!("{base}.clients[{n}]"))
                        .collect();
                    self.push(v);
                }
                if !p.is_authorised(c) {
                    self.push(
                        Violation::new(
                            RuleId::P2s3,
                            cp,
                            format!(
                                "client {:?}'s certificate is revoked; it gets no tunnel until it is \
                                 issued a new certificate (or remove the client)",
                                c.name
                            ),
                        )
                        .warning(),
                    );
                }
            }

            // P2S-6 references
            let home_vnet = match self.gateway_of(&p.tenant, &p.gateway) {
                Lookup::One(g) => Some(t.gateways[g].vnet.as_str()),
                _ => None,
            };
            for (k, x) in p.additional_vnets.iter().enumerate() {
                let xp = format!("{base}.additional_vnets[{k}]");
                if Some(x.as_str()) == home_vnet {
                    self.push(Violation::new(
                        RuleId::P2s6,
                        xp,
                        format!("VNet {x:?} is the gateway's own VNet; list only other VNets"),
                    ));
                    continue;
                }
                match lookup(&self.vnets, &p.tenant, x) {
                    Lookup::Missing if self.deleted.has(deletes::Kind::Vnet, &p.tenant, x) => {
                        self.push(deletes::still_used(
                            deletes::Kind::Vnet,
                            &p.tenant,
                            x,
                            deletes::User {
                                noun: "the point-to-site configuration of gateway",
                                name: &p.gateway,
                                path: xp,
                                how: " in additional_vnets",
                                fix: "remove it from additional_vnets first",
                            },
                        ));
                        continue;
                    }
                    Lookup::Missing => {
                        self.push(Violation::new(
                            RuleId::Ref1,
                            xp,
                            format!("VNet {x:?} does not exist in tenant {:?}", p.tenant),
                        ));
                        continue;
                    }
                    Lookup::Many => continue,
                    Lookup::One(_) => {}
                }
                match self.vnet_gateway(&p.tenant, x) {
                    Lookup::Missing => self.push(Violation::new(
                        RuleId::P2s6,
                        xp,
                        format!(
                            "VNet {x:?} has no gateway, so clients cannot reach it; add a \
                             RouteBased gateway to it or remove it from the list"
                        ),
                    )),
                    Lookup::Many => {}
                    Lookup::One(g) => {
                        if t.gateways[g].gateway_type == GatewayType::PolicyBased {
                            self.push(Violation::new(
                                RuleId::P2s1,
                                xp,
                                format!(
                                    "VNet {x:?}'s gateway {:?} is PolicyBased; point-to-site \
                                     clients can only use RouteBased gateways",
                                    t.gateways[g].name
                                ),
                            ));
                        }
                    }
                }
            }
        }

        // P2S-2: clients per gateway.
        let mut per_gw: BTreeMap<usize, BTreeSet<(usize, usize)>> = BTreeMap::new();
        for (g, p, c) in self.hosted_clients() {
            per_gw.entry(g).or_default().insert((p, c));
        }
        for (g, clients) in per_gw {
            let gw = &t.gateways[g];
            let limit = self.skus.get(gw.sku).max_p2s_clients as usize;
            if clients.len() > limit {
                let bigger = Sku::ALL
                    .iter()
                    .copied()
                    .find(|s| self.skus.get(*s).max_p2s_clients as usize >= clients.len());
                self.push(
                    Violation::new(
                        RuleId::P2s2,
                        format!("{}.sku", p_gateway(&gw.tenant, &gw.name)),
                        format!(
                            "gateway {:?} serves {} point-to-site clients but SKU {} allows {limit}; \
                             remove clients{}",
                            gw.name,
                            clients.len(),
                            gw.sku,
                            bigger.map(|b| format!(" or resize to {b}")).unwrap_or_default()
                        ),
                    )
                    .param("clients", clients.len())
                    .param("limit", limit),
                );
            }
        }
    }

    // ---- LIM-3 and P2S-6 overlaps ---------------------------------------------------------------

    fn owner_prefixes(&self, o: &Owner<'a>) -> &'a [IpNet] {
        let t = self.t;
        match o.kind {
            OwnerKind::Vnet => &t.vnets[o.idx].address_space,
            OwnerKind::Site => &t.sites[o.idx].address_prefixes,
            OwnerKind::Pool => &t.point_to_site[o.idx].address_pool,
        }
    }

    fn owner_path(&self, o: &Owner<'a>, i: usize) -> String {
        match o.kind {
            OwnerKind::Vnet => format!("{}.address_space[{i}]", p_vnet(o.tenant, o.name)),
            OwnerKind::Site => format!("{}.address_prefixes[{i}]", p_site(o.tenant, o.name)),
            OwnerKind::Pool => format!("{}.address_pool[{i}]", p_p2s(o.tenant, o.name)),
        }
    }

    fn owner_desc(&self, o: &Owner<'a>) -> String {
        let tenant = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!(" (tenant {s:?})")
            }
        };
        match o.kind {
            OwnerKind::Vnet => format!("VNet {:?}{}", o.name, tenant(o.tenant)),
            OwnerKind::Site => format!("site {:?}{}", o.name, tenant(o.tenant)),
            OwnerKind::Pool => {
                format!(
                    "the point-to-site pool of gateway {:?}{}",
                    o.name,
                    tenant(o.tenant)
                )
            }
        }
    }

    fn check_overlaps(&mut self) {
        let t = self.t;
        let ng = t.gateways.len();
        // Gateways that resolve uniquely take part; union-find over VNet-to-VNet connections
        // (declared ones, enabled or not: a declared connection is an intent to connect and must
        // not overlap). Within a tenant one half is enough; across tenants both halves must
        // exist, since a lone half binds nobody but its owner (CONN-2).
        let mut uf = UnionFind::new(ng);
        for (ci, _) in t.connections.iter().enumerate() {
            if self.conn_lone_cross[ci] {
                continue;
            }
            if let (Some(g), Some(r)) = (self.own_gateway_of(ci), self.remote_of(ci)) {
                uf.union(g, r);
            }
        }
        // Per component: the halves of complete cross-tenant pairs (the connections through
        // which a tenant reaches another one), for the anonymised LIM-3 messages.
        let mut cross_halves: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (ci, c) in t.connections.iter().enumerate() {
            if let (Some(g), Some(r)) = (self.own_gateway_of(ci), self.remote_of(ci))
                && !self.conn_lone_cross[ci]
                && t.gateways[r].tenant != c.tenant
            {
                cross_halves.entry(uf.find(g)).or_default().push(ci);
            }
        }
        // Owners attached to each gateway.
        let mut attached: Vec<Vec<Owner<'a>>> = vec![Vec::new(); ng];
        for (gi, g) in t.gateways.iter().enumerate() {
            if self.gateway_of(&g.tenant, &g.name) != Lookup::One(gi) {
                continue;
            }
            if let Lookup::One(vi) = lookup(&self.vnets, &g.tenant, &g.vnet) {
                let v = &t.vnets[vi];
                attached[gi].push(Owner {
                    kind: OwnerKind::Vnet,
                    tenant: &v.tenant,
                    name: &v.name,
                    idx: vi,
                });
            }
            if let Lookup::One(pi) = lookup(&self.p2s, &g.tenant, &g.name) {
                let p = &t.point_to_site[pi];
                attached[gi].push(Owner {
                    kind: OwnerKind::Pool,
                    tenant: &p.tenant,
                    name: &p.gateway,
                    idx: pi,
                });
            }
        }
        for ci in 0..t.connections.len() {
            if let (Some(g), Some(s)) = (self.own_gateway_of(ci), self.site_of(ci)) {
                let site = &t.sites[s];
                let o = Owner {
                    kind: OwnerKind::Site,
                    tenant: &site.tenant,
                    name: &site.name,
                    idx: s,
                };
                if !attached[g].contains(&o) {
                    attached[g].push(o);
                }
            }
        }
        // Owner (kind, index) -> gateways it attaches to (for "directly" vs "through transit").
        let mut attach_gws: BTreeMap<(OwnerKind, usize), BTreeSet<usize>> = BTreeMap::new();
        for (gi, owners) in attached.iter().enumerate() {
            for o in owners {
                attach_gws.entry((o.kind, o.idx)).or_default().insert(gi);
            }
        }
        // Components: owners of every gateway of a transit group, each once.
        let mut comps: BTreeMap<usize, Vec<Owner<'a>>> = BTreeMap::new();
        for (gi, owners) in attached.iter().enumerate() {
            let root = uf.find(gi);
            comps
                .entry(root)
                .or_default()
                .extend(owners.iter().copied());
        }
        for owners in comps.values_mut() {
            owners.sort_unstable_by_key(|o| (o.kind, o.idx));
            owners.dedup_by_key(|o| (o.kind, o.idx));
        }
        let mut pairs: BTreeSet<(Owner<'a>, usize, Owner<'a>, usize)> = BTreeSet::new();
        let mut cross_pairs: Vec<(usize, Owner<'a>, usize)> = Vec::new();
        for (&root, owners) in &comps {
            if owners.len() < 2 {
                continue;
            }
            for p in self.overlapping(owners.iter()) {
                if p.0.tenant == p.2.tenant {
                    pairs.insert(p);
                } else {
                    cross_pairs.push((root, p.0, p.1));
                    cross_pairs.push((root, p.2, p.3));
                }
            }
        }
        for (root, o, i) in cross_pairs {
            let conns: Vec<&crate::model::Connection> = cross_halves
                .get(&root)
                .into_iter()
                .flatten()
                .map(|&ci| &t.connections[ci])
                .filter(|c| c.tenant == o.tenant)
                .collect();
            self.push(isolation::foreign_overlap(
                self.owner_path(&o, i),
                self.owner_prefixes(&o)[i],
                &self.owner_desc(&o),
                &conns,
            ));
        }
        for (a, ai, b, bi) in pairs {
            let pa = self.owner_prefixes(&a)[ai];
            let pb = self.owner_prefixes(&b)[bi];
            let ga = attach_gws
                .get(&(a.kind, a.idx))
                .cloned()
                .unwrap_or_default();
            let gb = attach_gws
                .get(&(b.kind, b.idx))
                .cloned()
                .unwrap_or_default();
            let direct = ga
                .intersection(&gb)
                .map(|&g| t.gateways[g].qualified_name())
                .min();
            let how = match direct {
                Some(g) => format!("gateway {g} connects them directly"),
                None => {
                    let name = |s: &BTreeSet<usize>| {
                        s.iter()
                            .map(|&g| t.gateways[g].qualified_name())
                            .min()
                            .map(|q| q.to_string())
                            .unwrap_or_default()
                    };
                    format!(
                        "they reach each other through transit between gateways {} and {} (LIM-5)",
                        name(&ga),
                        name(&gb)
                    )
                }
            };
            self.push(
                Violation::new(
                    RuleId::Lim3,
                    self.owner_path(&a, ai),
                    format!(
                        "{pa} of {} overlaps {pb} of {}; {how}. Address spaces that reach each \
                         other must not overlap: renumber one of them or remove the connection",
                        self.owner_desc(&a),
                        self.owner_desc(&b)
                    ),
                )
                .param("prefix", pa)
                .param("other_prefix", pb)
                .related(self.owner_path(&b, bi)),
            );
        }

        // P2S-6: clients configured for several VNets.
        for (pi, p) in t.point_to_site.iter().enumerate() {
            if p.additional_vnets.is_empty()
                || lookup(&self.p2s, &p.tenant, &p.gateway) != Lookup::One(pi)
            {
                continue;
            }
            let Lookup::One(home) = self.gateway_of(&p.tenant, &p.gateway) else {
                continue;
            };
            let mut groups: BTreeSet<usize> = BTreeSet::new();
            groups.insert(uf.find(home));
            for x in &p.additional_vnets {
                if let Lookup::One(g) = self.vnet_gateway(&p.tenant, x) {
                    groups.insert(uf.find(g));
                }
            }
            if groups.len() < 2 {
                continue; // everything is in one transit group: LIM-3 covers it
            }
            let mut member: BTreeMap<Owner<'a>, BTreeSet<usize>> = BTreeMap::new();
            for &gr in &groups {
                for o in comps.get(&gr).into_iter().flatten() {
                    member.entry(*o).or_default().insert(gr);
                }
            }
            let pool_owner = Owner {
                kind: OwnerKind::Pool,
                tenant: &p.tenant,
                name: &p.gateway,
                idx: pi,
            };
            for (a, ai, b, bi) in self.overlapping(member.keys()) {
                let (ma, mb) = (&member[&a], &member[&b]);
                if !ma.is_disjoint(mb) {
                    continue;
                }
                let pa = self.owner_prefixes(&a)[ai];
                let pb = self.owner_prefixes(&b)[bi];
                let path = if a == pool_owner {
                    self.owner_path(&a, ai)
                } else if b == pool_owner {
                    self.owner_path(&b, bi)
                } else {
                    format!("{}.additional_vnets", p_p2s(&p.tenant, &p.gateway))
                };
                let what = if a == pool_owner || b == pool_owner {
                    "the client address pool must not overlap any VNet or site the clients reach"
                } else {
                    "the VNets a client is configured for must not overlap each other"
                };
                // Another tenant's address space (reached through a VNet-to-VNet pair it
                // consented to) is neither named nor shown.
                let own = |o: &Owner<'a>| o.tenant == p.tenant.as_str();
                let side = |o: &Owner<'a>, pr: IpNet| {
                    if own(o) {
                        format!("{pr} of {}", self.owner_desc(o))
                    } else {
                        isolation::FOREIGN_SPACE.to_owned()
                    }
                };
                let mut v = Violation::new(
                    RuleId::P2s6,
                    path,
                    format!(
                        "the clients of gateway {:?} are configured for several VNets, and {} \
                         overlaps {}; {what}: renumber one of them or drop the VNet from \
                         additional_vnets",
                        p.gateway,
                        side(&a, pa),
                        side(&b, pb)
                    ),
                );
                for (o, pr, i, key) in [(&a, pa, ai, "prefix"), (&b, pb, bi, "other_prefix")] {
                    if own(o) {
                        v = v.param(key, pr).related(self.owner_path(o, i));
                    }
                }
                self.push(v);
            }
        }
    }

    /// All overlapping (owner, prefix index) pairs between different owners, normalised
    /// (smaller owner first). Sort + stack sweep: O(n log n + pairs).
    fn overlapping<'o>(
        &self,
        owners: impl Iterator<Item = &'o Owner<'a>>,
    ) -> Vec<(Owner<'a>, usize, Owner<'a>, usize)>
    where
        'a: 'o,
    {
        let mut items: Vec<(IpNet, Owner<'a>, usize)> = Vec::new();
        for o in owners {
            for (i, p) in self.owner_prefixes(o).iter().enumerate() {
                items.push((p.trunc(), *o, i));
            }
        }
        items.sort_by(|x, y| net_order(&x.0, &y.0).then_with(|| (x.1, x.2).cmp(&(y.1, y.2))));
        let mut stack: Vec<(IpNet, Owner<'a>, usize)> = Vec::new();
        let mut out = Vec::new();
        for item in items {
            while stack.last().is_some_and(|top| !top.0.contains(&item.0)) {
                stack.pop();
            }
            for s in &stack {
                if s.1 != item.1 {
                    if (s.1, s.2) < (item.1, item.2) {
                        out.push((s.1, s.2, item.1, item.2));
                    } else {
                        out.push((item.1, item.2, s.1, s.2));
                    }
                }
            }
            stack.push(item);
        }
        out
    }
}

/// A counter of names in a short list: quadratic for a handful, a map beyond.
fn count_names<'n>(names: impl Iterator<Item = &'n str>) -> impl Fn(&str) -> usize {
    let list: Vec<&'n str> = names.collect();
    let map: Option<BTreeMap<&'n str, usize>> = (list.len() > 16).then(|| {
        let mut m = BTreeMap::new();
        for n in &list {
            *m.entry(*n).or_insert(0) += 1;
        }
        m
    });
    move |name: &str| match &map {
        Some(m) => m.get(name).copied().unwrap_or(0),
        None => list.iter().filter(|n| **n == name).count(),
    }
}

/// The smallest SKU bigger than `current` allowing `needed` connections (LIM-1 hint).
fn bigger_sku_for_connections(current: Sku, needed: usize, table: &SkuTable) -> Option<Sku> {
    Sku::ALL
        .iter()
        .copied()
        .find(|s| *s > current && table.get(*s).max_connections as usize >= needed)
}

fn shared_key_violation(path: String, e: &SharedKeyError) -> Violation {
    Violation::new(RuleId::Gw5, path, format!("{e}")).param("error", e)
}

fn join(list: &[IpNet]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn ipv4_unusable(a: Ipv4Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("unspecified (0.0.0.0)")
    } else if a.is_broadcast() {
        Some("the broadcast address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.octets()[0] == 0 {
        Some("in 0.0.0.0/8 (\"this network\")")
    } else {
        None
    }
}

fn ipv4_non_public(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_private() {
        Some("a private (RFC 1918) address")
    } else if a.is_link_local() {
        Some("a link-local address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a carrier-grade NAT (100.64.0.0/10) address")
    } else {
        None
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        // The smaller index becomes the root; roots are only used as group ids.
        if ra < rb {
            self.parent[rb] = ra;
        } else if rb < ra {
            self.parent[ra] = rb;
        }
    }
}
