//! `isthmus export` and `isthmus apply`: the whole topology as a YAML file.
//!
//! Export never writes secrets (shared keys, private keys). Apply is declarative: for
//! every tenant the file names, resources in the file are created or updated and stored
//! resources missing from it are deleted; the result is validated as a whole and written
//! in one transaction, or not at all. Server-owned fields (gateway endpoints and keys)
//! are ignored on input; a connection without `shared_key` keeps its key.

use std::collections::BTreeSet;

use isthmus_shared::model::{Change, QualifiedName, Topology};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{self, Committed};

/// The stored topology without secrets.
pub async fn export(state: &AppState) -> Result<Topology, ApiError> {
    let mut t = store::load_topology(state.db(), state.sealer()).await?;
    for c in &mut t.connections {
        c.shared_key = None;
    }
    Ok(t)
}

/// One line of a plan, for people.
fn line(sign: char, kind: &str, q: &QualifiedName) -> String {
    format!("{sign} {kind} {q}")
}

/// The changes that turn `current` into `desired` for the tenants `desired` names, and the
/// lines that describe them.
pub fn plan(current: &Topology, desired: &Topology) -> (Vec<Change>, Vec<String>) {
    let tenants: BTreeSet<&str> = desired
        .tenants
        .iter()
        .map(|t| t.name.as_str())
        .chain(desired.vnets.iter().map(|v| v.tenant.as_str()))
        .chain(desired.gateways.iter().map(|g| g.tenant.as_str()))
        .chain(desired.sites.iter().map(|s| s.tenant.as_str()))
        .chain(desired.connections.iter().map(|c| c.tenant.as_str()))
        .chain(desired.point_to_site.iter().map(|p| p.tenant.as_str()))
        .collect();
    let mut changes = Vec::new();
    let mut lines = Vec::new();
    for t in &tenants {
        if !current.tenants.iter().any(|x| x.name == *t) {
            changes.push(Change::UpsertTenant(isthmus_shared::model::Tenant {
                name: (*t).to_owned(),
            }));
            lines.push(format!("+ tenant {t}"));
        }
    }
    let in_scope = |tenant: &str| tenants.contains(tenant);

    macro_rules! diff {
        ($list:ident, $kind:literal, $key:expr, $upsert:path, $delete:path, $normalise:expr) => {{
            for want in &desired.$list {
                let q: QualifiedName = $key(want);
                let have = current.$list.iter().find(|x| $key(*x) == q);
                let mut want = want.clone();
                $normalise(&mut want, have);
                match have {
                    None => {
                        lines.push(line('+', $kind, &q));
                        changes.push($upsert(want));
                    }
                    Some(h) if *h != want => {
                        lines.push(line('~', $kind, &q));
                        changes.push($upsert(want));
                    }
                    Some(_) => {}
                }
            }
            for have in current.$list.iter().filter(|x| in_scope(&$key(*x).tenant)) {
                let q: QualifiedName = $key(have);
                if !desired.$list.iter().any(|x| $key(x) == q) {
                    lines.push(line('-', $kind, &q));
                    changes.push($delete(q));
                }
            }
        }};
    }

    diff!(
        vnets,
        "vnet",
        |v: &isthmus_shared::model::Vnet| QualifiedName::new(&v.tenant, &v.name),
        Change::UpsertVnet,
        Change::DeleteVnet,
        |_: &mut _, _: Option<&_>| {}
    );
    diff!(
        gateways,
        "gateway",
        |g: &isthmus_shared::model::Gateway| g.qualified_name(),
        Change::UpsertGateway,
        Change::DeleteGateway,
        |w: &mut isthmus_shared::model::Gateway, h: Option<&isthmus_shared::model::Gateway>| {
            w.public_endpoint = h.and_then(|h| h.public_endpoint);
            w.secondary_endpoint = h.and_then(|h| h.secondary_endpoint);
            w.public_key = h.and_then(|h| h.public_key.clone());
        }
    );
    diff!(
        sites,
        "site",
        |s: &isthmus_shared::model::LocalSite| QualifiedName::new(&s.tenant, &s.name),
        Change::UpsertSite,
        Change::DeleteSite,
        |_: &mut _, _: Option<&_>| {}
    );
    diff!(
        connections,
        "connection",
        |c: &isthmus_shared::model::Connection| c.qualified_name(),
        Change::UpsertConnection,
        Change::DeleteConnection,
        |w: &mut isthmus_shared::model::Connection,
         h: Option<&isthmus_shared::model::Connection>| {
            if w.shared_key.is_none() {
                w.shared_key = h.and_then(|h| h.shared_key.clone());
            }
        }
    );
    diff!(
        point_to_site,
        "point-to-site",
        |p: &isthmus_shared::model::PointToSite| QualifiedName::new(&p.tenant, &p.gateway),
        Change::UpsertPointToSite,
        Change::DeletePointToSite,
        |_: &mut _, _: Option<&_>| {}
    );
    (changes, lines)
}

/// What `apply` did or would do.
#[derive(Debug)]
pub struct Applied {
    pub lines: Vec<String>,
    pub committed: Option<Committed>,
}

/// Applies a desired topology atomically (or only plans it, with `dry_run`).
pub async fn apply(
    state: &AppState,
    who: &Principal,
    desired: &Topology,
    dry_run: bool,
) -> Result<Applied, ApiError> {
    let current = store::load_topology(state.db(), state.sealer()).await?;
    let (changes, lines) = plan(&current, desired);
    if changes.is_empty() {
        return Ok(Applied {
            lines,
            committed: None,
        });
    }
    let committed = store::commit_changes(state, who, "apply", changes, dry_run).await?;
    Ok(Applied {
        lines,
        committed: Some(committed),
    })
}
