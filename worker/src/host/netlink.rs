//! The netlink half of the host integration (`rtnetlink`, never an `ip` subprocess): reads the
//! TUN device's addresses, the routing tables and the worker's own rules into a
//! [`Current`], and applies a [`Plan`](super::plan::Plan).

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures_util::StreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, LinkUnspec};

use super::plan::{Current, HostRoute, MAIN_TABLE, ROUTE_PROTO, Rule};

/// A netlink failure, with the errno when the kernel gave one.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct NetlinkError {
    pub what: String,
    #[source]
    pub source: rtnetlink::Error,
}

impl NetlinkError {
    fn new(what: impl Into<String>, source: rtnetlink::Error) -> Self {
        Self {
            what: what.into(),
            source,
        }
    }

    /// The kernel's errno (positive), if the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match &self.source {
            rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
            _ => None,
        }
    }

    /// Whether the kernel refused for lack of CAP_NET_ADMIN.
    pub fn is_permission(&self) -> bool {
        matches!(self.errno(), Some(1 | 13))
    }
}

type Result<T> = std::result::Result<T, NetlinkError>;

/// A netlink connection (its socket is driven by a task on the current runtime).
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn family(a: &IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn kind_name(k: RouteType) -> Option<&'static str> {
    match k {
        RouteType::Unicast | RouteType::Unspec => None,
        RouteType::BlackHole => Some("blackhole"),
        RouteType::Unreachable => Some("unreachable"),
        RouteType::Prohibit => Some("prohibit"),
        RouteType::Throw => Some("throw"),
        RouteType::Local => Some("local"),
        RouteType::Broadcast => Some("broadcast"),
        RouteType::Anycast => Some("anycast"),
        RouteType::Multicast => Some("multicast"),
        _ => Some("other"),
    }
}

fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

/// A dumped route, or `None` for what the worker does not look at (MPLS, multicast tables, ...).
fn host_route(m: &RouteMessage) -> Option<HostRoute> {
    let dst = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => route_addr(d),
        _ => None,
    });
    let dst = match (dst, m.header.address_family) {
        (Some(d), _) => d,
        (None, AddressFamily::Inet) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        (None, AddressFamily::Inet6) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let prefix = IpNet::new(dst, m.header.destination_prefix_length).ok()?;
    let mut r = HostRoute {
        prefix,
        table: table_of(m),
        proto: u8::from(m.header.protocol),
        oif: None,
        gateway: None,
        kind: kind_name(m.header.kind),
        metric: None,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Gateway(g) => r.gateway = route_addr(g),
            RouteAttribute::Priority(p) => r.metric = Some(*p),
            _ => {}
        }
    }
    Some(r)
}

fn route_message(prefix: IpNet, table: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(&prefix.addr());
    m.header.destination_prefix_length = prefix.prefix_len();
    m.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.attributes
        .push(RouteAttribute::Destination(prefix.addr().into()));
    m.attributes.push(RouteAttribute::Table(table));
    m
}

fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = family(&r.from.addr());
    m.header.src_len = r.from.prefix_len();
    m.header.table = u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.action = RuleAction::ToTable;
    m.attributes.push(RuleAttribute::Source(r.from.addr()));
    m.attributes.push(RuleAttribute::Table(r.table));
    m.attributes.push(RuleAttribute::Priority(r.priority));
    if let Some(s) = r.suppress_prefixlength {
        m.attributes.push(RuleAttribute::SuppressPrefixLen(s));
    }
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(ROUTE_PROTO)));
    m
}

fn address_of(m: &AddressMessage) -> Option<IpNet> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(a) => Some(*a),
        _ => None,
    });
    let addr = local.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(a) => Some(*a),
            _ => None,
        })
    })?;
    IpNet::new(addr, m.header.prefix_len).ok()
}

impl Netlink {
    /// Opens a netlink socket; its task runs on the current tokio runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Interface names by index.
    pub async fn links(&self) -> Result<BTreeMap<u32, (String, bool)>> {
        let mut out = BTreeMap::new();
        let mut s = std::pin::pin!(self.handle.link().get().execute());
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| NetlinkError::new("cannot list the interfaces", e))?;
            let name = m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            });
            if let Some(n) = name {
                out.insert(m.header.index, (n, m.header.flags.contains(LinkFlags::Up)));
            }
        }
        Ok(out)
    }

    /// Brings interface `index` up.
    pub async fn set_up(&self, index: u32) -> Result<()> {
        let m = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(m)
            .execute()
            .await
            .map_err(|e| NetlinkError::new("cannot bring the TUN device up", e))
    }

    /// Every address of the host: (interface index, address/prefix, flags).
    pub async fn addresses(&self) -> Result<Vec<(u32, IpNet, AddressFlags)>> {
        let mut out = Vec::new();
        let mut s = std::pin::pin!(self.handle.address().get().execute());
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| NetlinkError::new("cannot list the addresses", e))?;
            let flags = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    AddressAttribute::Flags(f) => Some(*f),
                    _ => None,
                })
                .unwrap_or(AddressFlags::empty());
            if let Some(a) = address_of(&m) {
                out.push((m.header.index, a, flags));
            }
        }
        Ok(out)
    }

    /// The routes of tables `tables`, both families.
    pub async fn routes(&self, tables: &[u32]) -> Result<Vec<HostRoute>> {
        let mut out = Vec::new();
        for v in [IpVersion::V4, IpVersion::V6] {
            let mut m = RouteMessage::default();
            m.header.address_family = match v {
                IpVersion::V4 => AddressFamily::Inet,
                IpVersion::V6 => AddressFamily::Inet6,
            };
            let mut s = std::pin::pin!(self.handle.route().get(m).execute());
            while let Some(m) = s.next().await {
                let m = m.map_err(|e| NetlinkError::new("cannot list the routes", e))?;
                if let Some(r) = host_route(&m).filter(|r| tables.contains(&r.table)) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The worker's own policy rules (protocol [`ROUTE_PROTO`]), both families.
    pub async fn own_rules(&self) -> Result<Vec<Rule>> {
        let mut out = Vec::new();
        for v in [IpVersion::V4, IpVersion::V6] {
            let mut s = std::pin::pin!(self.handle.rule().get(v).execute());
            while let Some(m) = s.next().await {
                let m = m.map_err(|e| NetlinkError::new("cannot list the policy rules", e))?;
                let mut proto = None;
                let mut from = None;
                let mut table = u32::from(m.header.table);
                let mut priority = 0;
                let mut suppress = None;
                for a in &m.attributes {
                    match a {
                        RuleAttribute::Protocol(p) => proto = Some(u8::from(*p)),
                        RuleAttribute::Source(s) => from = Some(*s),
                        RuleAttribute::Table(t) => table = *t,
                        RuleAttribute::Priority(p) => priority = *p,
                        // The kernel reports "no suppression" as -1 (u32::MAX).
                        RuleAttribute::SuppressPrefixLen(s) if *s != u32::MAX => {
                            suppress = Some(*s)
                        }
                        _ => {}
                    }
                }
                if proto != Some(ROUTE_PROTO) {
                    continue;
                }
                let from = match from {
                    Some(a) => IpNet::new(a, m.header.src_len).ok(),
                    None => None,
                };
                if let Some(from) = from {
                    out.push(Rule {
                        from,
                        table,
                        suppress_prefixlength: suppress,
                        priority,
                    });
                }
            }
        }
        Ok(out)
    }

    /// What the host has for TUN device `tun_index` and route table `table`.
    pub async fn current(&self, tun_index: u32, table: u32) -> Result<Current> {
        let links = self.links().await?;
        let tun_addresses = self
            .addresses()
            .await?
            .into_iter()
            .filter(|(i, _, _)| *i == tun_index)
            .map(|(_, a, _)| a)
            .collect();
        Ok(Current {
            tun_index,
            tun_addresses,
            routes: self.routes(&[MAIN_TABLE, table]).await?,
            rules: self.own_rules().await?,
            link_names: links.into_iter().map(|(i, (n, _))| (i, n)).collect(),
        })
    }

    pub async fn add_address(&self, index: u32, a: IpNet) -> Result<()> {
        let mut req = self.handle.address().add(index, a.addr(), a.prefix_len());
        if a.addr().is_ipv6() {
            // A TUN device has no neighbours to detect duplicates with: usable at once.
            let m = req.message_mut();
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(|e| NetlinkError::new(format!("cannot add address {a} to the TUN device"), e))
    }

    pub async fn del_address(&self, index: u32, a: IpNet) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = family(&a.addr());
        m.header.prefix_len = a.prefix_len();
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(a.addr()));
        m.attributes.push(AddressAttribute::Address(a.addr()));
        self.handle.address().del(m).execute().await.map_err(|e| {
            NetlinkError::new(format!("cannot remove address {a} from the TUN device"), e)
        })
    }

    /// Adds `prefix` onto the TUN device in `table`, protocol [`ROUTE_PROTO`].
    pub async fn add_route(&self, tun_index: u32, prefix: IpNet, table: u32) -> Result<()> {
        let mut m = route_message(prefix, table);
        m.header.protocol = RouteProtocol::from(ROUTE_PROTO);
        m.header.scope = RouteScope::Link;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Oif(tun_index));
        self.handle
            .route()
            .add(m)
            .execute()
            .await
            .map_err(|e| NetlinkError::new(format!("cannot add the route {prefix}"), e))
    }

    /// Removes one of the worker's own routes.
    pub async fn del_route(&self, r: &HostRoute) -> Result<()> {
        let mut m = route_message(r.prefix, r.table);
        m.header.protocol = RouteProtocol::from(r.proto);
        m.header.scope = RouteScope::NoWhere;
        if let Some(i) = r.oif {
            m.attributes.push(RouteAttribute::Oif(i));
        }
        if let Some(p) = r.metric {
            m.attributes.push(RouteAttribute::Priority(p));
        }
        self.handle
            .route()
            .del(m)
            .execute()
            .await
            .map_err(|e| NetlinkError::new(format!("cannot remove the route {}", r.prefix), e))
    }

    pub async fn add_rule(&self, r: &Rule) -> Result<()> {
        let mut req = self.handle.rule().add();
        *req.message_mut() = rule_message(r);
        req.execute()
            .await
            .map_err(|e| NetlinkError::new(format!("cannot add the rule from {}", r.from), e))
    }

    pub async fn del_rule(&self, r: &Rule) -> Result<()> {
        self.handle
            .rule()
            .del(rule_message(r))
            .execute()
            .await
            .map_err(|e| NetlinkError::new(format!("cannot remove the rule from {}", r.from), e))
    }

    /// The interfaces that hold a default route in the main table (IPv4 and IPv6).
    pub async fn default_route_interfaces(&self) -> Result<Vec<u32>> {
        let mut out: Vec<u32> = self
            .routes(&[MAIN_TABLE])
            .await?
            .into_iter()
            .filter(|r| r.prefix.prefix_len() == 0 && r.kind.is_none())
            .filter_map(|r| r.oif)
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}
