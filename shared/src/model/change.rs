//! One write to a topology ([`Change`]), applied in place and undone exactly.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    Connection, Gateway, Kind, LocalSite, PointToSite, QualifiedName, Tenant, Topology, Vnet,
};

/// One write to a topology: upsert or delete one resource. Upserts replace every resource of
/// the same kind and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", content = "resource", rename_all = "snake_case")]
pub enum Change {
    UpsertTenant(Tenant),
    DeleteTenant(String),
    UpsertVnet(Vnet),
    DeleteVnet(QualifiedName),
    UpsertGateway(Gateway),
    DeleteGateway(QualifiedName),
    UpsertSite(LocalSite),
    DeleteSite(QualifiedName),
    UpsertConnection(Connection),
    DeleteConnection(QualifiedName),
    /// Keyed by (tenant, gateway).
    UpsertPointToSite(PointToSite),
    /// `name` is the gateway's name.
    DeletePointToSite(QualifiedName),
}

/// Why a [`Change`] cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChangeError {
    #[error("there is no {kind} named {name} to delete")]
    NotFound { kind: String, name: String },
}

impl ChangeError {
    /// The kind of the resource the change names.
    pub fn kind(&self) -> &str {
        match self {
            ChangeError::NotFound { kind, .. } => kind,
        }
    }

    /// The name of the resource the change names.
    pub fn name(&self) -> &str {
        match self {
            ChangeError::NotFound { name, .. } => name,
        }
    }
}

/// The items an upsert or delete took out of one list (with their positions), and whether it
/// pushed a new item: enough to put the list back exactly as it was.
#[derive(Debug)]
struct Taken<T> {
    removed: Vec<(usize, T)>,
    pushed: bool,
}

impl<T> Taken<T> {
    fn take(list: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Self {
        let mut removed = Vec::new();
        for i in (0..list.len()).rev() {
            if matches(&list[i]) {
                removed.push((i, list.remove(i)));
            }
        }
        removed.reverse();
        Taken {
            removed,
            pushed: false,
        }
    }

    fn restore(self, list: &mut Vec<T>) {
        if self.pushed {
            list.pop();
        }
        for (i, item) in self.removed {
            list.insert(i, item);
        }
    }
}

/// How to undo one [`Topology::apply_undoable`]; pass it to [`Topology::undo`].
#[derive(Debug)]
pub struct Undo(UndoList);

#[derive(Debug)]
enum UndoList {
    Tenants(Taken<Tenant>),
    Vnets(Taken<Vnet>),
    Gateways(Taken<Gateway>),
    Sites(Taken<LocalSite>),
    Connections(Taken<Connection>),
    PointToSite(Taken<PointToSite>),
}

/// `apply` on one list, remembering what it did.
fn apply_list<T: Clone>(
    list: &mut Vec<T>,
    upsert: Option<&T>,
    kind: &str,
    name: &dyn fmt::Display,
    matches: impl Fn(&T) -> bool,
) -> Result<Taken<T>, ChangeError> {
    let mut taken = Taken::take(list, matches);
    match upsert {
        Some(item) => {
            list.push(item.clone());
            taken.pushed = true;
        }
        None if taken.removed.is_empty() => {
            return Err(ChangeError::NotFound {
                kind: kind.to_owned(),
                name: name.to_string(),
            });
        }
        None => {}
    }
    Ok(taken)
}

impl Topology {
    /// Applies one change in place. Deleting does not cascade: dangling references are reported
    /// by the validator (REF-1), so a server can refuse the change as a whole (LIM-3).
    pub fn apply(&mut self, change: &Change) -> Result<(), ChangeError> {
        self.apply_undoable(change).map(drop)
    }

    /// [`Topology::apply`], in a way that [`Topology::undo`] reverts exactly (same items, same
    /// order), so a caller can try a change on a large topology without copying it. A change
    /// that cannot be applied leaves the topology untouched.
    pub fn apply_undoable(&mut self, change: &Change) -> Result<Undo, ChangeError> {
        let same = |t: &str, n: &str, qt: &str, qn: &str| t == qt && n == qn;
        Ok(Undo(match change {
            Change::UpsertTenant(x) => UndoList::Tenants(apply_list(
                &mut self.tenants,
                Some(x),
                "tenant",
                &x.name,
                |t| t.name == x.name,
            )?),
            Change::DeleteTenant(n) => {
                UndoList::Tenants(apply_list(&mut self.tenants, None, "tenant", n, |t| {
                    &t.name == n
                })?)
            }
            Change::UpsertVnet(x) => UndoList::Vnets(apply_list(
                &mut self.vnets,
                Some(x),
                Kind::Vnet.noun(),
                &x.name,
                |v| same(&v.tenant, &v.name, &x.tenant, &x.name),
            )?),
            Change::DeleteVnet(q) => UndoList::Vnets(apply_list(
                &mut self.vnets,
                None,
                Kind::Vnet.noun(),
                q,
                |v| same(&v.tenant, &v.name, &q.tenant, &q.name),
            )?),
            Change::UpsertGateway(x) => UndoList::Gateways(apply_list(
                &mut self.gateways,
                Some(x),
                Kind::Gateway.noun(),
                &x.name,
                |g| same(&g.tenant, &g.name, &x.tenant, &x.name),
            )?),
            Change::DeleteGateway(q) => UndoList::Gateways(apply_list(
                &mut self.gateways,
                None,
                Kind::Gateway.noun(),
                q,
                |g| same(&g.tenant, &g.name, &q.tenant, &q.name),
            )?),
            Change::UpsertSite(x) => UndoList::Sites(apply_list(
                &mut self.sites,
                Some(x),
                Kind::Site.noun(),
                &x.name,
                |s| same(&s.tenant, &s.name, &x.tenant, &x.name),
            )?),
            Change::DeleteSite(q) => UndoList::Sites(apply_list(
                &mut self.sites,
                None,
                Kind::Site.noun(),
                q,
                |s| same(&s.tenant, &s.name, &q.tenant, &q.name),
            )?),
            Change::UpsertConnection(x) => UndoList::Connections(apply_list(
                &mut self.connections,
                Some(x),
                Kind::Connection.noun(),
                &x.name,
                |c| same(&c.tenant, &c.name, &x.tenant, &x.name),
            )?),
            Change::DeleteConnection(q) => UndoList::Connections(apply_list(
                &mut self.connections,
                None,
                Kind::Connection.noun(),
                q,
                |c| same(&c.tenant, &c.name, &q.tenant, &q.name),
            )?),
            Change::UpsertPointToSite(x) => UndoList::PointToSite(apply_list(
                &mut self.point_to_site,
                Some(x),
                Kind::PointToSite.noun(),
                &x.gateway,
                |p| same(&p.tenant, &p.gateway, &x.tenant, &x.gateway),
            )?),
            Change::DeletePointToSite(q) => UndoList::PointToSite(apply_list(
                &mut self.point_to_site,
                None,
                Kind::PointToSite.noun(),
                q,
                |p| same(&p.tenant, &p.gateway, &q.tenant, &q.name),
            )?),
        }))
    }

    /// Reverts one [`Topology::apply_undoable`] (the last one applied first).
    pub fn undo(&mut self, undo: Undo) {
        match undo.0 {
            UndoList::Tenants(t) => t.restore(&mut self.tenants),
            UndoList::Vnets(t) => t.restore(&mut self.vnets),
            UndoList::Gateways(t) => t.restore(&mut self.gateways),
            UndoList::Sites(t) => t.restore(&mut self.sites),
            UndoList::Connections(t) => t.restore(&mut self.connections),
            UndoList::PointToSite(t) => t.restore(&mut self.point_to_site),
        }
    }
}
