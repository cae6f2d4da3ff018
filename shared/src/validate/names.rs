//! Names: unique per kind within a tenant (NAME-1), well formed (NAME-2), in a tenant that
//! exists (REF-1).
//!
//! Enforces: NAME-1, NAME-2, REF-1.

use super::path::FieldPath;
use super::{Validator, Violation, name_issue};
use crate::model::Kind;
use crate::rules::RuleId;

impl<'a> Validator<'a> {
    pub(super) fn check_names(&mut self) {
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
                    FieldPath::tenant_path(name),
                    format!("{n} tenants are named {name:?}; tenant names are unique"),
                )
                .case("tenant")
                .param("name", name)
                .param("count", n),
            );
        }
        for x in &t.tenants {
            if let Some(p) = name_issue(&x.name) {
                let v = Violation::new(
                    RuleId::Name2,
                    FieldPath::tenant_path(&x.name),
                    format!("tenant name {:?}: {}", x.name, p.message),
                );
                self.push(p.apply(v, "tenant", &x.name));
            }
        }
        let mut found = Vec::new();
        {
            let tenants = &self.tenants;
            let mut check = |kind: &'static str,
                             dup: bool,
                             tenant: &'a str,
                             name: &'a str,
                             path: FieldPath<'a>| {
                if dup {
                    let (case, what) = if kind == "point-to-site configuration" {
                        (
                            "p2s",
                            format!(
                                "gateway {name:?} has more than one point-to-site configuration; keep one"
                            ),
                        )
                    } else {
                        (
                            "resource",
                            format!(
                                "more than one {kind} is named {name:?} in tenant {tenant:?}; names are \
                                 unique per kind within a tenant: rename or delete one"
                            ),
                        )
                    };
                    found.push(
                        Violation::new(RuleId::Name1, path, what)
                            .case(case)
                            .param("kind", kind)
                            .param("name", name)
                            .param("tenant", tenant),
                    );
                }
                if kind != "point-to-site configuration"
                    && let Some(p) = name_issue(name)
                {
                    let v = Violation::new(
                        RuleId::Name2,
                        path,
                        format!("{kind} name {name:?}: {}", p.message),
                    );
                    found.push(p.apply(v, kind, name));
                }
                if !tenants.contains_key(tenant) {
                    found.push(
                        Violation::new(
                            RuleId::Ref1,
                            path,
                            format!("tenant {tenant:?} does not exist; create it first"),
                        )
                        .case("tenant")
                        .param("tenant", tenant),
                    );
                }
            };
            for (i, v) in t.vnets.iter().enumerate() {
                let path = FieldPath::new(Kind::Vnet, &v.tenant, &v.name);
                check("VNet", self.ix.vnets.is_dup(i), &v.tenant, &v.name, path);
            }
            for (i, g) in t.gateways.iter().enumerate() {
                let path = FieldPath::new(Kind::Gateway, &g.tenant, &g.name);
                check(
                    "gateway",
                    self.ix.gateways.is_dup(i),
                    &g.tenant,
                    &g.name,
                    path,
                );
            }
            for (i, x) in t.sites.iter().enumerate() {
                let path = FieldPath::new(Kind::Site, &x.tenant, &x.name);
                check("site", self.ix.sites.is_dup(i), &x.tenant, &x.name, path);
            }
            for (i, c) in t.connections.iter().enumerate() {
                let path = FieldPath::new(Kind::Connection, &c.tenant, &c.name);
                check(
                    "connection",
                    self.ix.connections.is_dup(i),
                    &c.tenant,
                    &c.name,
                    path,
                );
            }
            for (i, p) in t.point_to_site.iter().enumerate() {
                let path = FieldPath::new(Kind::PointToSite, &p.tenant, &p.gateway);
                let kind = "point-to-site configuration";
                check(kind, self.ix.p2s.is_dup(i), &p.tenant, &p.gateway, path);
            }
        }
        self.out.extend(found);
    }
}
