//! [`Kind`]: the five kinds of tenant resource, with every spelling of each in one place.
//!
//! Each kind has three spellings, all fixed: stored data and the database's migrations rely on
//! [`Kind::stored`], clients and the portal's router on [`Kind::path_segment`], and the
//! validator's field paths (which tests and the portal match) on [`Kind::segment`].

use std::fmt;

use super::{Change, QualifiedName};

/// A kind of tenant resource (tenants themselves are not one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Vnet,
    Gateway,
    Site,
    Connection,
    /// A gateway's point-to-site configuration, named by its gateway.
    PointToSite,
}

impl Kind {
    /// Every kind, in the order the topology lists them.
    pub const ALL: [Kind; 5] = [
        Kind::Vnet,
        Kind::Gateway,
        Kind::Site,
        Kind::Connection,
        Kind::PointToSite,
    ];

    /// The segment of the validator's field paths, `tenants[t].<segment>[name]`, which is also
    /// the [`Topology`](super::Topology) field that lists the kind (`point_to_site`).
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Vnet => "vnets",
            Kind::Gateway => "gateways",
            Kind::Site => "sites",
            Kind::Connection => "connections",
            Kind::PointToSite => "point_to_site",
        }
    }

    /// The URL segment, `/api/v1/tenants/{t}/<path_segment>` (and the portal's
    /// `#/t/{t}/<path_segment>`): `point-to-site`, with a hyphen.
    pub fn path_segment(self) -> &'static str {
        match self {
            Kind::PointToSite => "point-to-site",
            k => k.segment(),
        }
    }

    /// The name stored in the server's `resources.kind` column (and in sealing purposes and
    /// audit actions): singular, `point_to_site`.
    pub fn stored(self) -> &'static str {
        match self {
            Kind::Vnet => "vnet",
            Kind::Gateway => "gateway",
            Kind::Site => "site",
            Kind::Connection => "connection",
            Kind::PointToSite => "point_to_site",
        }
    }

    /// The noun for messages: `VNet`, `point-to-site configuration`. This is also how
    /// [`Kind`] displays.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Vnet => "VNet",
            Kind::Gateway => "gateway",
            Kind::Site => "site",
            Kind::Connection => "connection",
            Kind::PointToSite => "point-to-site configuration",
        }
    }

    /// The kind whose [`Kind::segment`] is `s`.
    pub fn from_segment(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == s)
    }

    /// The kind whose [`Kind::path_segment`] (URL segment) is `s`.
    pub fn from_path_segment(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.path_segment() == s)
    }

    /// The kind whose [`Kind::stored`] name is `s`.
    pub fn from_stored(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.stored() == s)
    }

    /// The change that deletes the resource `tenant/name` of this kind (for point-to-site,
    /// `name` is the gateway's).
    pub fn delete_change(self, tenant: impl Into<String>, name: impl Into<String>) -> Change {
        let q = QualifiedName::new(tenant, name);
        match self {
            Kind::Vnet => Change::DeleteVnet(q),
            Kind::Gateway => Change::DeleteGateway(q),
            Kind::Site => Change::DeleteSite(q),
            Kind::Connection => Change::DeleteConnection(q),
            Kind::PointToSite => Change::DeletePointToSite(q),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored data, URLs and validator paths rely on these spellings: they never change.
    #[test]
    fn kind_spellings_are_fixed() {
        let spelled: Vec<_> = Kind::ALL
            .into_iter()
            .map(|k| (k.segment(), k.path_segment(), k.stored()))
            .collect();
        assert_eq!(
            spelled,
            [
                ("vnets", "vnets", "vnet"),
                ("gateways", "gateways", "gateway"),
                ("sites", "sites", "site"),
                ("connections", "connections", "connection"),
                ("point_to_site", "point-to-site", "point_to_site"),
            ]
        );
        for k in Kind::ALL {
            assert_eq!(Kind::from_segment(k.segment()), Some(k));
            assert_eq!(Kind::from_path_segment(k.path_segment()), Some(k));
            assert_eq!(Kind::from_stored(k.stored()), Some(k));
        }
        assert_eq!(Kind::from_path_segment("point_to_site"), None);
        assert_eq!(Kind::from_stored("vnets"), None);
    }

    #[test]
    fn kind_delete_change_names_the_resource() {
        assert_eq!(
            Kind::PointToSite.delete_change("t", "gw"),
            Change::DeletePointToSite(QualifiedName::new("t", "gw"))
        );
        assert_eq!(
            Kind::Vnet.delete_change("t", "v"),
            Change::DeleteVnet(QualifiedName::new("t", "v"))
        );
    }
}
