//! [`FieldPath`]: the typed form of a [`Violation::path`](super::Violation::path), built by the
//! validator and parsed back by whoever places a violation (the portal's forms).
//!
//! A path names a tenant, optionally one of its resources (a [`Kind`] and a name), then the
//! steps down to the offending field:
//!
//! ```text
//! tenants[acme]
//! tenants[acme].vnets[hub]
//! tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix
//! tenants[acme].sites[branch].address_prefixes[1]
//! tenants[acme].point_to_site[hub-gw].clients[laptop].address
//! ```
//!
//! A step is a field (`.prefix`), a named element of a list of named things (`[GatewaySubnet]`)
//! or a position in a list of values (`[1]`).
//!
//! Building costs nothing until the path is formatted: a [`FieldPath`] borrows its names and is
//! `Copy`, so the validator makes one per resource and formats it only for a violation.
//!
//! ```
//! use isthmus_shared::model::Kind;
//! use isthmus_shared::validate::path::FieldPath;
//!
//! let hub = FieldPath::new(Kind::Vnet, "acme", "hub");
//! let p = hub.key("subnets", "GatewaySubnet").field("prefix");
//! assert_eq!(p.to_string(), "tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix");
//!
//! // Placing a violation: which resource, and which of its fields.
//! let parsed = FieldPath::parse("tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix");
//! let parsed = parsed.expect("a field path");
//! assert_eq!(parsed.resource(), Some((Kind::Vnet, "acme", "hub")));
//! assert_eq!(parsed.field_name(), Some("subnets"));
//! assert_eq!(parsed.tail().to_string(), "subnets[GatewaySubnet].prefix");
//! assert!(parsed.starts_with(&hub));
//! ```
//!
//! Parsing inverts building: for names without the sequence `].` (valid names, NAME-2, have no
//! brackets at all), `FieldPath::parse(&p.to_string())` formats back to the same string, with the
//! same resource and steps. A bracket holding only digits parses as [`Step::Index`], so a list
//! element named `1` comes back as an index; it formats the same.

use std::fmt;

use crate::model::Kind;

/// The deepest a path goes below its resource (the validator uses at most four steps:
/// `route_sources[r].kind.next_hop`).
pub const MAX_STEPS: usize = 6;

/// One step below a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// `.name`: a field.
    Field(&'a str),
    /// `[name]`: an element of a list of named things (subnets, route sources, clients).
    Key(&'a str),
    /// `[i]`: an element of a list of values, by position.
    Index(usize),
}

/// A field path (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPath<'a> {
    tenant: &'a str,
    resource: Option<(Kind, &'a str)>,
    /// `steps[..len]` are the steps; the rest stay `Index(0)`, so derived equality holds.
    steps: [Step<'a>; MAX_STEPS],
    len: u8,
}

impl<'a> FieldPath<'a> {
    /// `tenants[tenant]`.
    pub fn tenant_path(tenant: &'a str) -> Self {
        Self {
            tenant,
            resource: None,
            steps: [Step::Index(0); MAX_STEPS],
            len: 0,
        }
    }

    /// `tenants[tenant].<kind>[name]` (a point-to-site configuration is named by its gateway).
    pub fn new(kind: Kind, tenant: &'a str, name: &'a str) -> Self {
        Self {
            resource: Some((kind, name)),
            ..Self::tenant_path(tenant)
        }
    }

    /// This path, one step further. Steps beyond [`MAX_STEPS`] are not kept (no validator path
    /// goes that deep; a debug build panics).
    pub fn step(mut self, step: Step<'a>) -> Self {
        debug_assert!((self.len as usize) < MAX_STEPS, "field path too deep");
        if let Some(slot) = self.steps.get_mut(self.len as usize) {
            *slot = step;
            self.len += 1;
        }
        self
    }

    /// `{self}.{name}`.
    pub fn field(self, name: &'a str) -> Self {
        self.step(Step::Field(name))
    }

    /// `{self}.{field}[{key}]`: an element of a list of named things.
    pub fn key(self, field: &'a str, key: &'a str) -> Self {
        self.field(field).step(Step::Key(key))
    }

    /// `{self}.{field}[{i}]`: an element of a list of values.
    pub fn index(self, field: &'a str, i: usize) -> Self {
        self.field(field).step(Step::Index(i))
    }

    /// The tenant every path is scoped by.
    pub fn tenant(&self) -> &'a str {
        self.tenant
    }

    /// The resource the path is in: (kind, tenant, name); `None` for a tenant's own path.
    pub fn resource(&self) -> Option<(Kind, &'a str, &'a str)> {
        self.resource.map(|(k, n)| (k, self.tenant, n))
    }

    /// The steps below the resource (or the tenant).
    pub fn steps(&self) -> &[Step<'a>] {
        &self.steps[..self.len as usize]
    }

    /// The first field below the resource: `subnets` for
    /// `tenants[a].vnets[b].subnets[GatewaySubnet].prefix`; `None` for the resource itself.
    pub fn field_name(&self) -> Option<&'a str> {
        match self.steps().first() {
            Some(Step::Field(f)) => Some(f),
            _ => None,
        }
    }

    /// The path without its last step (a resource's own path has none: `None`).
    pub fn parent(mut self) -> Option<Self> {
        let last = (self.len as usize).checked_sub(1)?;
        self.steps[last] = Step::Index(0);
        self.len -= 1;
        Some(self)
    }

    /// This path's resource (or tenant) with no steps.
    pub fn base(self) -> Self {
        Self {
            steps: [Step::Index(0); MAX_STEPS],
            len: 0,
            ..self
        }
    }

    /// Whether `self` is `prefix` or lies below it (same tenant and resource, `prefix`'s steps
    /// first).
    pub fn starts_with(&self, prefix: &FieldPath<'_>) -> bool {
        self.tenant == prefix.tenant
            && self.resource == prefix.resource
            && self.steps().starts_with(prefix.steps())
    }

    /// The steps below the resource as a path string without the leading dot
    /// (`subnets[GatewaySubnet].prefix`; empty for the resource itself).
    pub fn tail(&self) -> impl fmt::Display + '_ {
        Tail(self.steps())
    }

    /// Parses a path the validator built; `None` for anything else (the `change` path of a
    /// change that cannot be applied, a malformed string, a path deeper than [`MAX_STEPS`]).
    pub fn parse(s: &'a str) -> Option<Self> {
        let rest = s.strip_prefix("tenants[")?;
        let (tenant, mut rest) = bracketed(rest)?;
        let mut path = Self::tenant_path(tenant);
        if let Some(after) = rest.strip_prefix('.') {
            let (seg, after) = after.split_at(after.find('[').unwrap_or(after.len()));
            if let (Some(kind), Some(inner)) = (Kind::from_segment(seg), after.strip_prefix('[')) {
                let (name, after) = bracketed(inner)?;
                path.resource = Some((kind, name));
                rest = after;
            }
        }
        while !rest.is_empty() {
            if path.len as usize == MAX_STEPS {
                return None;
            }
            let step;
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let (name, after) = after.split_at(end);
                if name.is_empty() || name.contains(']') {
                    return None;
                }
                step = Step::Field(name);
                rest = after;
            } else if let Some(after) = rest.strip_prefix('[') {
                let (key, after) = bracketed(after)?;
                step = match key.parse::<usize>() {
                    Ok(i) if i.to_string() == key => Step::Index(i),
                    _ => Step::Key(key),
                };
                rest = after;
            } else {
                return None;
            }
            path = path.step(step);
        }
        Some(path)
    }
}

/// The name inside `[...]` (the opening bracket already consumed) and what follows: the name
/// ends at the first `]` followed by `.`, `[` or the end.
fn bracketed(s: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    loop {
        let at = from + s[from..].find(']')?;
        let after = &s[at + 1..];
        if after.is_empty() || after.starts_with('.') || after.starts_with('[') {
            return Some((&s[..at], after));
        }
        from = at + 1;
    }
}

struct Tail<'s, 'a>(&'s [Step<'a>]);

impl fmt::Display for Tail<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Field(name) if i == 0 => f.write_str(name)?,
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Key(key) => write!(f, "[{key}]")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tenants[{}]", self.tenant)?;
        if let Some((kind, name)) = self.resource {
            write!(f, ".{}[{name}]", kind.segment())?;
        }
        for step in self.steps() {
            match step {
                Step::Field(name) => write!(f, ".{name}")?,
                Step::Key(key) => write!(f, "[{key}]")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn paths_format_as_the_validator_always_wrote_them() {
        let hub = FieldPath::new(Kind::Vnet, "acme", "hub");
        let cases = [
            (FieldPath::tenant_path("acme"), "tenants[acme]"),
            (hub, "tenants[acme].vnets[hub]"),
            (
                hub.key("subnets", "GatewaySubnet").field("prefix"),
                "tenants[acme].vnets[hub].subnets[GatewaySubnet].prefix",
            ),
            (
                hub.key("route_sources", "fw")
                    .field("kind")
                    .field("next_hop"),
                "tenants[acme].vnets[hub].route_sources[fw].kind.next_hop",
            ),
            (
                FieldPath::new(Kind::Site, "acme", "branch").index("address_prefixes", 1),
                "tenants[acme].sites[branch].address_prefixes[1]",
            ),
            (
                FieldPath::new(Kind::PointToSite, "acme", "hub-gw")
                    .key("clients", "laptop")
                    .field("address"),
                "tenants[acme].point_to_site[hub-gw].clients[laptop].address",
            ),
            (
                FieldPath::new(Kind::Connection, "acme", "c").field("shared_key"),
                "tenants[acme].connections[c].shared_key",
            ),
            (
                FieldPath::new(Kind::Gateway, "acme", "g").field("public_endpoint"),
                "tenants[acme].gateways[g].public_endpoint",
            ),
        ];
        for (path, text) in cases {
            assert_eq!(path.to_string(), text);
            assert_eq!(FieldPath::parse(text), Some(path), "{text}");
        }
    }

    #[test]
    fn parse_gives_the_resource_and_its_field() {
        let p = FieldPath::parse("tenants[acme].point_to_site[hub-gw].clients[laptop].address");
        let p = p.expect("a path");
        assert_eq!(p.resource(), Some((Kind::PointToSite, "acme", "hub-gw")));
        assert_eq!(p.tenant(), "acme");
        assert_eq!(p.field_name(), Some("clients"));
        assert_eq!(
            p.steps(),
            [
                Step::Field("clients"),
                Step::Key("laptop"),
                Step::Field("address")
            ]
        );
        assert_eq!(p.tail().to_string(), "clients[laptop].address");
        assert!(p.starts_with(&p.base()));
        assert!(p.starts_with(&FieldPath::new(Kind::PointToSite, "acme", "hub-gw")));
        assert!(!p.starts_with(&FieldPath::new(Kind::Gateway, "acme", "hub-gw")));
        assert_eq!(
            p.parent().map(|x| x.to_string()).as_deref(),
            Some("tenants[acme].point_to_site[hub-gw].clients[laptop]")
        );
        assert_eq!(p.base().parent(), None);
        let t = FieldPath::parse("tenants[acme]").expect("a path");
        assert_eq!((t.resource(), t.field_name()), (None, None));
        assert_eq!(t.tail().to_string(), "");
    }

    #[test]
    fn parse_refuses_what_is_not_a_field_path() {
        for s in [
            "",
            "change",
            "tenants",
            "tenants[",
            "tenants[acme",
            "tenants[acme]x",
            "tenants[acme].vnets[hub]..prefix",
            "tenants[acme].vnets[hub].subnets[x",
            "tenants[a].vnets[b].a.b.c.d.e.f.g",
        ] {
            assert_eq!(FieldPath::parse(s), None, "{s}");
        }
    }

    #[test]
    fn every_path_the_validator_reports_parses_back() {
        use crate::builder::TopologyBuilder;
        use crate::model::{GatewayType, Sku};
        let b = TopologyBuilder::new("acme")
            .vnet("hub", "", &["10.0.0.0/16", "10.0.1.0/24"])
            .subnet("hub", "gatewaysubnet", "10.0.0.1/24")
            .subnet("hub", "a", "10.0.0.0/25")
            .subnet("hub", "a", "10.9.0.0/25")
            .appliance("hub", "fw", "10.200.0.4", &["0.0.0.0/0", "10.0.0.1/8"])
            .gateway("hub-gw", "hub", GatewayType::PolicyBased, Sku::Basic)
            .gateway("other-gw", "missing", GatewayType::RouteBased, Sku::VpnGw1)
            .site("branch", "192.168.1.1", &["10.0.5.0/24", "10.0.5.0/25"])
            .site("v6", "2001:db8::1", &[])
            .s2s("c1", "hub-gw", "branch")
            .s2s("c2", "hub-gw", "nowhere")
            .shared_key("c1", "short")
            .selector("c1", "10.0.0.1/24", "2001:db8::/64")
            .p2s("hub-gw", &["10.0.0.0/24"])
            .p2s_client("hub-gw", "laptop", "not-a-key", "10.99.0.1");
        let t = b.topology().clone();
        let out = crate::validate::validate(&t);
        assert!(out.len() > 15, "{out:#?}");
        for v in &out {
            for p in std::iter::once(&v.path).chain(&v.related) {
                let parsed = FieldPath::parse(p).unwrap_or_else(|| panic!("{p} does not parse"));
                assert_eq!(parsed.to_string(), *p);
            }
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._-]{0,12}"
    }

    #[derive(Debug, Clone)]
    enum Owned {
        Field(String),
        Key(String, String),
        Index(String, usize),
    }

    fn owned() -> impl Strategy<Value = Owned> {
        prop_oneof![
            "[a-z_]{1,12}".prop_map(Owned::Field),
            ("[a-z_]{1,12}", "[A-Za-z][A-Za-z0-9._-]{0,12}").prop_map(|(f, k)| Owned::Key(f, k)),
            ("[a-z_]{1,12}", 0..1000usize).prop_map(|(f, i)| Owned::Index(f, i)),
        ]
    }

    proptest! {
        #[test]
        fn field_paths_round_trip(
            kind in proptest::option::of(proptest::sample::select(Kind::ALL.to_vec())),
            tenant in name(),
            resource in name(),
            steps in proptest::collection::vec(owned(), 0..3),
        ) {
            let mut p = match kind {
                Some(k) => FieldPath::new(k, &tenant, &resource),
                None => FieldPath::tenant_path(&tenant),
            };
            // The validator gives a tenant's own path no steps (`tenants[a].vnets[x]` is a
            // resource's path).
            for s in steps.iter().filter(|_| kind.is_some()) {
                p = match s {
                    Owned::Field(f) => p.field(f),
                    Owned::Key(f, k) => p.key(f, k),
                    Owned::Index(f, i) => p.index(f, *i),
                };
            }
            let text = p.to_string();
            let parsed = FieldPath::parse(&text);
            prop_assert_eq!(parsed, Some(p));
            prop_assert_eq!(parsed.map(|x| x.to_string()), Some(text));
        }
    }
}
