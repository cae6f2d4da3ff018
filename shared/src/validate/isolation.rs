//! Tenants that cannot see or block each other.
//!
//! Enforces: CONN-2, LIM-3.
//!
//! - A VNet-to-VNet half towards another tenant binds nobody until that tenant creates the
//!   other half (CONN-2): the validator reports it to its owner as *waiting for the other half*,
//!   with one message whether or not the remote gateway or its tenant exists, and leaves it out
//!   of every rule that follows connections (LIM-3 through transit, REF-1, GW-6, KEY-2). The
//!   data plane ([`crate::routes`], [`crate::desired`]) ignores it as well.
//! - Once both halves exist, a violation that involves the other tenant's resources is reported
//!   to each tenant about its own resources only: "an address space of another tenant that this
//!   connection reaches", with no foreign name or prefix in the message or its params.
//! - [`visible_to`] keeps, of a validation result, what one caller may see: violations at paths
//!   of its tenants, with foreign `related` paths dropped. Every violation the validator emits
//!   at a path of tenant T names only T's resources, or what T itself named (the remote gateway
//!   of its own half).

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::{Severity, Violation};
use crate::model::{Change, Connection, Kind};
use crate::rules::RuleId;

/// The status of a VNet-to-VNet half whose other half does not exist (`params.status`).
pub const WAITING: &str = "waiting for the other half";

/// The status of a cross-tenant pair whose halves carry different shared keys.
pub const KEY_MISMATCH: &str = "key mismatch";

/// How another tenant's address space is named in a message.
pub const FOREIGN_SPACE: &str = "an address space of another tenant that this connection reaches";

/// CONN-2: a lone half towards another tenant. The same message whether the remote gateway
/// exists, its tenant exists, or neither (REF-1 without telling tenants apart).
pub(super) fn waiting_for_other_half(
    base: &dyn std::fmt::Display,
    remote_tenant: &str,
    remote_name: &str,
    tenant: &str,
    gateway: &str,
) -> Violation {
    Violation::new(
        RuleId::Conn2,
        format!("{base}.kind.remote_gateway"),
        format!(
            "{WAITING}: this is one half of a VNet-to-VNet tunnel to gateway \
             {remote_tenant}/{remote_name} of another tenant. It connects nothing until that \
             gateway's owner creates the other half (a VnetToVnet connection on \
             {remote_name} naming {tenant}/{gateway}) with the same shared key; if gateway \
             {remote_tenant}/{remote_name} does not exist or is not shared with you, check its \
             name with its owner"
        ),
    )
    .warning()
    .case("waiting_cross")
    .param("status", WAITING)
    .param("remote_gateway", format!("{remote_tenant}/{remote_name}"))
    .param("remote_name", remote_name)
    .param("gateway", format!("{tenant}/{gateway}"))
}

/// CONN-2 / GW-4: the halves of a cross-tenant pair carry different keys. Accepted (each owner
/// sets its own half); told to each owner about its own half.
pub(super) fn key_mismatch(base: &dyn std::fmt::Display, remote_gateway: &str) -> Violation {
    Violation::new(
        RuleId::Conn2,
        format!("{base}.shared_key"),
        format!(
            "{KEY_MISMATCH}: the other half of this VNet-to-VNet tunnel, owned by the tenant of \
             gateway {remote_gateway}, carries a different shared key, so the tunnel cannot come \
             up; agree on one key with the owner of {remote_gateway} and set it on this \
             connection (the tunnel comes up once both halves carry it)"
        ),
    )
    .warning()
    .case("key_mismatch")
    .param("status", KEY_MISMATCH)
    .param("remote_gateway", remote_gateway)
}

/// LIM-3 across tenants: `prefix` of `owner` (one of this tenant's) overlaps an address space
/// of another tenant reached through `conns` (this tenant's halves of cross-tenant pairs).
/// `owner_params` are the owner's (kind, name, tenant) params (the `{owner}` phrase).
pub(super) fn foreign_overlap(
    path: String,
    prefix: IpNet,
    owner: &str,
    owner_params: [(&str, &str); 3],
    conns: &[&Connection],
) -> Violation {
    let mut names: Vec<String> = conns.iter().map(|c| format!("{:?}", c.name)).collect();
    names.sort();
    names.dedup();
    let (case, through) = match names.len() {
        0 => ("foreign", String::new()),
        1 => ("foreign_one", format!(" (connection {})", names[0])),
        _ => (
            "foreign_many",
            format!(" (connections {})", names.join(", ")),
        ),
    };
    let mut v = Violation::new(
        RuleId::Lim3,
        path,
        format!(
            "{prefix} of {owner} overlaps {FOREIGN_SPACE}{through}. Address spaces that reach \
             each other must not overlap: renumber {prefix}, or remove the connection to the \
             other tenant"
        ),
    )
    .case(case)
    .param("prefix", prefix)
    .param("connections", names.join(", "));
    for (k, x) in owner_params {
        v = v.param(k, x);
    }
    for c in conns {
        v = v.related(super::FieldPath::new(Kind::Connection, &c.tenant, &c.name));
    }
    v
}

/// The tenant a path is scoped by (`tenants[NAME]...`), or `None` for a path of no tenant
/// (e.g. `change`).
pub fn tenant_of_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("tenants[")?;
    rest.split_once(']').map(|(t, _)| t)
}

/// The tenant a change writes to.
pub fn tenant_of_change(change: &Change) -> &str {
    match change {
        Change::UpsertTenant(t) => &t.name,
        Change::DeleteTenant(t) => t,
        Change::UpsertVnet(v) => &v.tenant,
        Change::UpsertGateway(g) => &g.tenant,
        Change::UpsertSite(s) => &s.tenant,
        Change::UpsertConnection(c) => &c.tenant,
        Change::UpsertPointToSite(p) => &p.tenant,
        Change::DeleteVnet(q)
        | Change::DeleteGateway(q)
        | Change::DeleteSite(q)
        | Change::DeleteConnection(q)
        | Change::DeletePointToSite(q) => &q.tenant,
    }
}

/// What a caller acting for `tenants` may see of `violations`: those at paths of its tenants (and
/// at paths of no tenant), with `related` paths of other tenants dropped. When errors remain
/// only at paths of other tenants, one error at path `change` says so, naming the rule only, so
/// that a refused change is never answered without a reason.
pub fn visible_to<S: AsRef<str> + Ord>(
    violations: Vec<Violation>,
    tenants: &BTreeSet<S>,
) -> Vec<Violation> {
    let mine =
        |path: &str| tenant_of_path(path).is_none_or(|t| tenants.iter().any(|x| x.as_ref() == t));
    let mut hidden_errors: BTreeSet<RuleId> = BTreeSet::new();
    let mut out: Vec<Violation> = Vec::with_capacity(violations.len());
    for mut v in violations {
        if !mine(&v.path) {
            if v.severity == Severity::Error {
                hidden_errors.insert(v.rule);
            }
            continue;
        }
        v.related.retain(|p| mine(p));
        out.push(v);
    }
    if !super::has_errors(&out)
        && let Some(&rule) = hidden_errors.first()
    {
        out.push(
            Violation::new(
                rule,
                "change",
                format!(
                    "the change breaks rule {rule} at a resource of another tenant that one of \
                     your connections reaches; undo the part of the change that reaches the other \
                     tenant (an address space, a site or a connection to it), or agree on it \
                     with that tenant's owner"
                ),
            )
            .case(crate::messages::OTHER_TENANT)
            .param("rule", rule),
        );
    }
    out.sort();
    out.dedup();
    out
}
