//! The validator: every gateway rule, checked against a whole [`Topology`].
//!
//! Enforces: GW-10, PFX-1, PFX-3, REF-1, KEY-1.
//!
//! [`validate`] returns *every* violation, sorted deterministically (by path, then rule, then
//! severity, message and parameters) and free of duplicates; the result does not depend on the
//! order of resources in the topology. An empty result means the topology is valid; warnings
//! ([`Severity::Warning`]) describe states that work but deserve attention (a VNet-to-VNet half
//! waiting for its other half, a site device on a private address, a site that overlaps a VNet
//! of its tenant) and do not block a change (see [`has_errors`]).
//!
//! [`validate_change`] applies a [`Change`] to a copy and reports all violations of the resulting
//! topology, not only those touching the changed resource: a server accepts the change only when
//! the result has no errors, so a change is applied whole or not at all (LIM-3). The portal can
//! narrow the list to one resource by parsing [`Violation::path`] with [`FieldPath::parse`].
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
//! [`path::FieldPath`] builds these paths and parses them back (resource, first field, steps).
//!
//! # Layout
//!
//! One file per rule family, each with its own `impl Validator` and a `//! Enforces:` header
//! naming the rules it reports (`tests/integration/tidy.rs` checks the header against the code):
//! `names.rs`, `vnets.rs`, `gateways.rs` (both halves of GW-7), `sites.rs`, `connections.rs`
//! (with traffic selectors and peer keys), `ipsec.rs` (issue 17's IPSEC-* rules), `p2s.rs` and
//! `overlaps.rs` (LIM-3 and P2S-6 sweeps).
//! `deletes.rs` words refused deletes, `isolation.rs` keeps tenants apart, `reserved.rs` holds the
//! reserved ranges, and [`path`] the typed field paths.
//!
//! # Messages
//!
//! Messages are English and say what is wrong and how to fix it. [`Violation::params`] carries
//! the same facts as strings (names, prefixes, limits) so a translation can key on
//! rule id + params.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::{Change, ConnectionKind, Kind, SkuTable, Topology};
use crate::prefix::nested_pairs;
pub use crate::prefix::overlaps;
use crate::resolved::{Index, Lookup};
use crate::rules::RuleId;

mod connections;
mod deletes;
mod gateways;
mod ipsec;
mod isolation;
mod names;
mod overlaps;
mod p2s;
pub mod path;
mod reserved;
mod sites;
mod vnets;

pub use gateways::{GATEWAY_SUBNET_MAX_V4_LEN, GATEWAY_SUBNET_MAX_V6_LEN};
pub use ipsec::{MAX_IKE_IDENTITY_LEN, is_ike_identity};
pub use isolation::{tenant_of_change, tenant_of_path, visible_to};
pub use path::{FieldPath, Step};

/// P2S-3: the maximum number of root certificates of a point-to-site configuration.
pub const MAX_ROOT_CERTIFICATES: usize = 20;

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

    /// The sentence of the rule this violation states (the `case` param, see
    /// [`crate::messages`]).
    fn case(self, case: &str) -> Self {
        self.param(crate::messages::CASE, case)
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
            FieldPath::new(Kind::Gateway, &g.tenant, &g.name).field("public_endpoint"),
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
            .param("error", &e)
            .case("change")
            .param("kind", e.kind())
            .param("name", e.name()),
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
    name_issue(name).map(|i| i.message)
}

/// NAME-2: what is wrong with a name, as a case and its facts.
pub(crate) struct NameIssue {
    pub case: &'static str,
    pub message: String,
    /// (param, value) of the case: `len` for too long, `char` for a bad character.
    pub fact: Option<(&'static str, String)>,
}

impl NameIssue {
    /// `v` with this issue's case and facts (and the kind and name it concerns).
    pub(crate) fn apply(self, v: Violation, kind: &str, name: &str) -> Violation {
        let mut v = v.case(self.case).param("kind", kind).param("name", name);
        if let Some((k, x)) = self.fact {
            v = v.param(k, x);
        }
        if self.case == "too_long" {
            v = v.param("max", MAX_NAME_LEN);
        }
        v
    }
}

pub(crate) fn name_issue(name: &str) -> Option<NameIssue> {
    let len = name.chars().count();
    let issue = |case, message: String, fact| {
        Some(NameIssue {
            case,
            message,
            fact,
        })
    };
    if len == 0 {
        return issue("empty", "a name cannot be empty".to_owned(), None);
    }
    if len > MAX_NAME_LEN {
        return issue(
            "too_long",
            format!("a name has at most {MAX_NAME_LEN} characters, this one has {len}"),
            Some(("len", len.to_string())),
        );
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return issue(
            "first_char",
            "a name starts with a letter or digit".to_owned(),
            None,
        );
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
    {
        return issue(
            "bad_char",
            format!("{c:?} is not allowed in a name; use ASCII letters, digits, '-', '_' and '.'"),
            Some(("char", c.to_string())),
        );
    }
    None
}

/// One validation run: the topology, its index and the per-connection lookups every rule family
/// shares. Each family adds its checks in its own file's `impl Validator` block; [`Self::run`]
/// calls them all.
pub(crate) struct Validator<'a> {
    t: &'a Topology,
    skus: &'a SkuTable,
    pub(crate) out: Vec<Violation>,
    tenants: BTreeMap<&'a str, usize>,
    /// Every resource by name, with its duplicates (NAME-1): lookups never depend on which
    /// duplicate comes first, a duplicated name resolves to [`Lookup::Many`].
    ix: Index<'a>,
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
        let mut v = Self {
            t,
            skus,
            out: Vec::new(),
            tenants,
            ix: Index::new(t),
            conn_gw: Vec::with_capacity(t.connections.len()),
            conn_site: Vec::with_capacity(t.connections.len()),
            conn_remote: Vec::with_capacity(t.connections.len()),
            conn_lone_cross: Vec::with_capacity(t.connections.len()),
            deleted,
        };
        for c in &t.connections {
            v.conn_gw.push(v.ix.gateways.lookup(&c.tenant, &c.gateway));
            let (site, remote) = match &c.kind {
                ConnectionKind::SiteToSite { site } => {
                    (v.ix.sites.lookup(&c.tenant, site), Lookup::Missing)
                }
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    let rt = remote_gateway.tenant.as_deref().unwrap_or(&c.tenant);
                    (
                        Lookup::Missing,
                        v.ix.gateways.lookup(rt, &remote_gateway.name),
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
            .filter_map(|(g, r)| Some((g.one()?, r.one()?)))
            .collect();
        for (ci, c) in t.connections.iter().enumerate() {
            let lone_cross = match &c.kind {
                ConnectionKind::VnetToVnet { remote_gateway } => {
                    remote_gateway.tenant.as_deref().unwrap_or(&c.tenant) != c.tenant
                        && !matches!(
                            (v.conn_gw[ci].one(), v.conn_remote[ci].one()),
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
        self.check_ipsec();
        self.check_point_to_site();
        self.check_overlaps();
    }

    fn gateway_of(&self, tenant: &str, name: &str) -> Lookup {
        self.ix.gateways.lookup(tenant, name)
    }

    fn vnet_gateway(&self, tenant: &str, vnet: &str) -> Lookup {
        self.ix.gateways_by_vnet.lookup(tenant, vnet)
    }

    /// The resolved remote gateway of connection `ci` (VnetToVnet), if unique.
    fn remote_of(&self, ci: usize) -> Option<usize> {
        self.conn_remote[ci].one()
    }

    fn site_of(&self, ci: usize) -> Option<usize> {
        self.conn_site[ci].one()
    }

    fn own_gateway_of(&self, ci: usize) -> Option<usize> {
        self.conn_gw[ci].one()
    }

    fn check_prefix_list(&mut self, base: FieldPath<'_>, field: &str, list: &[IpNet]) {
        self.out.extend(reserved::check_list(&base, field, list));
        for (i, p) in list.iter().enumerate() {
            if let Some(msg) = canonical_prefix_message(p) {
                self.push(
                    Violation::new(RuleId::Pfx1, base.index(field, i), msg)
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
                    base.index(field, j),
                    format!(
                        "{} overlaps {} in the same list; list each range once (keep the larger \
                         prefix or split it)",
                        list[j], list[i]
                    ),
                )
                .param("prefix", list[j])
                .param("other_prefix", list[i])
                .related(base.index(field, i)),
            );
        }
    }

    fn check_key(&mut self, path: FieldPath<'_>, what: &str, key: &str) {
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

fn join(list: &[IpNet]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
