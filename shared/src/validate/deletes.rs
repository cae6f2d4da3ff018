//! Refused deletes: what still uses the deleted resource, and what to delete first.
//!
//! Enforces: REF-1.
//!
//! The validator sees the topology *after* a change. A delete that leaves a reference dangling
//! would read, in the create direction, "gateway g names VNet v, which does not exist; create
//! the VNet first", which is no help to someone deleting v. When the validator is told which
//! resources the change deleted ([`super::validate_applied`]), each such dangling reference is
//! reported at the deleted resource instead: "VNet v is still used by gateway g; delete the
//! gateway first".

use std::collections::BTreeSet;

use super::Violation;
use super::path::FieldPath;
use crate::model::{Change, Kind};
use crate::rules::RuleId;

/// The resources a change deleted, by (kind, tenant, name) (point-to-site configurations are
/// never in use by another resource, so they are left out).
#[derive(Debug, Default)]
pub(crate) struct Deleted {
    items: BTreeSet<(Kind, String, String)>,
}

impl Deleted {
    pub(super) fn from_changes<'c>(changes: impl IntoIterator<Item = &'c Change>) -> Self {
        let mut items = BTreeSet::new();
        for c in changes {
            let (kind, q) = match c {
                Change::DeleteVnet(q) => (Kind::Vnet, q),
                Change::DeleteGateway(q) => (Kind::Gateway, q),
                Change::DeleteSite(q) => (Kind::Site, q),
                Change::DeleteConnection(q) => (Kind::Connection, q),
                _ => continue,
            };
            items.insert((kind, q.tenant.clone(), q.name.clone()));
        }
        Self { items }
    }

    /// Whether the change deleted `tenant/name` of `kind`.
    pub(super) fn has(&self, kind: Kind, tenant: &str, name: &str) -> bool {
        !self.items.is_empty()
            && self
                .items
                .contains(&(kind, tenant.to_owned(), name.to_owned()))
    }

    /// The connections of `tenant` the change deleted, by name.
    pub(super) fn connections_of(&self, tenant: &str) -> Vec<&str> {
        self.items
            .iter()
            .filter(|(k, t, _)| *k == Kind::Connection && t == tenant)
            .map(|(_, _, n)| n.as_str())
            .collect()
    }
}

/// A resource that still uses the deleted one: its noun, name, path, and how it uses it.
pub(super) struct User<'u> {
    pub noun: &'static str,
    pub name: &'u str,
    pub path: FieldPath<'u>,
    /// E.g. `" as its remote gateway"`; empty when plain use.
    pub how: &'static str,
    /// What to do first, e.g. `"delete the gateway first"`.
    pub fix: &'static str,
    /// The sentence (`case` param): `still_used`, `still_used_remote`, `still_used_forced`,
    /// `still_used_additional`.
    pub case: &'static str,
}

/// REF-1 in the delete direction, at the deleted resource's path.
pub(super) fn still_used(kind: Kind, tenant: &str, name: &str, user: User<'_>) -> Violation {
    let what = kind.noun();
    Violation::new(
        RuleId::Ref1,
        FieldPath::new(kind, tenant, name),
        format!(
            "{what} {name:?} is still used by {} {:?}{}; {}",
            user.noun, user.name, user.how, user.fix
        ),
    )
    .param("kind", what)
    .param("name", name)
    .param("used_by", user.name)
    .param("used_by_kind", user.noun)
    .case(user.case)
    .related(user.path)
}
