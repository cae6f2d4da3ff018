//! The worker's attachment to its host (GW-10, "one side private (VNet), one public"), through
//! netlink, never `ip` subprocesses:
//!
//! - the VNet side ([`HostNet`]): on every applied desired state, each gateway's own address in
//!   its `GatewaySubnet` (`private_address`, the subnet's address + 4) on the TUN device as a
//!   /32 or /128, and a kernel route onto the TUN device for every prefix the gateway forwards
//!   into a tunnel (protocol [`plan::ROUTE_PROTO`], so stale ones are found and other software's
//!   routes are never touched). A default route into a tunnel (forced tunneling) never goes into
//!   the main table: it goes into the worker's own table ([`plan::DEFAULT_ROUTE_TABLE`],
//!   `--route-table`), used by traffic from the gateway's VNet prefixes through two rules
//!   (priorities [`plan::RULE_PRIORITY_SUPPRESS`] and [`plan::RULE_PRIORITY_TABLE`]), as
//!   wg-quick does. A prefix the host already routes another way is reported
//!   ([`HostNet::conflicts`]), never overwritten;
//! - the public side ([`public`]): the addresses devices reach the worker at;
//! - IP forwarding ([`check_forwarding`]).
//!
//! The decisions are in [`plan`] (pure, unit-tested); [`netlink`] reads and writes the kernel.

pub mod garp;
pub mod netlink;
pub mod plan;
pub mod public;

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use isthmus_shared::desired::{DesiredState, RouteConflict};
use isthmus_shared::model::QualifiedName;

use self::netlink::{Netlink, NetlinkError};

/// How the worker attaches to its host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub tun_name: String,
    /// `--tun-address`: an extra address kept on the TUN device.
    pub tun_address: Option<IpNet>,
    /// `--route-table`: the table of forced-tunnel default routes.
    pub route_table: u32,
}

/// The route conflicts per gateway, as the status report carries them.
pub type Conflicts = BTreeMap<QualifiedName, Vec<RouteConflict>>;

/// Keeps the host's addresses, routes and rules in line with the desired state.
pub struct HostNet {
    cfg: HostConfig,
    nl: Option<Netlink>,
    conflicts: Conflicts,
    /// (gateway, prefix, existing) already logged.
    reported: BTreeSet<(QualifiedName, IpNet, String)>,
    /// Causes of failures already logged (each once).
    failures: BTreeSet<String>,
}

impl HostNet {
    /// Opens the netlink connection (logged, not fatal, when it cannot).
    pub fn new(cfg: HostConfig) -> Self {
        let nl = match Netlink::connect() {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a netlink socket: the worker installs no addresses or routes for its TUN device; forwarding between tunnels still works");
                None
            }
        };
        Self {
            cfg,
            nl,
            conflicts: BTreeMap::new(),
            reported: BTreeSet::new(),
            failures: BTreeSet::new(),
        }
    }

    /// The routes the host refused, per gateway (from the last reconciliation).
    pub fn conflicts(&self) -> &Conflicts {
        &self.conflicts
    }

    fn fail(&mut self, e: &NetlinkError) {
        if e.is_permission() {
            if self.failures.insert("permission".into()) {
                tracing::warn!(tun = %self.cfg.tun_name, error = %e, "the worker lacks CAP_NET_ADMIN: it cannot set the addresses and routes of its TUN device (run it as root or with AmbientCapabilities=CAP_NET_ADMIN); forwarding between tunnels still works");
            }
            return;
        }
        if self.failures.insert(e.what.clone()) {
            tracing::warn!(tun = %self.cfg.tun_name, error = %e, "netlink change refused (logged once per cause)");
        }
    }

    /// Brings the host in line with `desired`: addresses, routes, rules. Never fails: what the
    /// kernel refuses is logged once per cause. Issue 16: the gateways in `standby` (this
    /// worker's instance is the standby) get neither their address nor their routes. Returns
    /// the gateways' IPv4 addresses just put on the TUN device (an instance took over, or a new
    /// gateway), which the shell announces ([`garp`]).
    pub async fn reconcile(
        &mut self,
        desired: &DesiredState,
        standby: &BTreeSet<QualifiedName>,
    ) -> Vec<std::net::Ipv4Addr> {
        let serving = serving(desired, standby);
        let wanted = plan::wanted(&serving, self.cfg.tun_address, self.cfg.route_table);
        let added = self.reconcile_to(&wanted).await;
        added
            .into_iter()
            .filter(|a| Some(*a) != self.cfg.tun_address)
            .filter_map(|a| match a.addr() {
                std::net::IpAddr::V4(v4) if a.prefix_len() == 32 => Some(v4),
                _ => None,
            })
            .collect()
    }

    /// Removes the worker's own routes and rules (clean shutdown). Addresses and routes on the
    /// TUN device go with the device; the rules would stay.
    pub async fn clear(&mut self) {
        self.reconcile_to(&plan::Wanted::default()).await;
    }

    /// The TUN device's name.
    pub fn tun_name(&self) -> &str {
        &self.cfg.tun_name
    }

    /// Returns the addresses added.
    async fn reconcile_to(&mut self, wanted: &plan::Wanted) -> Vec<IpNet> {
        let mut added = Vec::new();
        let Some(nl) = self.nl.clone() else {
            return added;
        };
        let tun = match nl.links().await {
            Ok(links) => links
                .into_iter()
                .find(|(_, (n, _))| *n == self.cfg.tun_name)
                .map(|(i, (_, up))| (i, up)),
            Err(e) => {
                self.fail(&e);
                return added;
            }
        };
        let Some((tun_index, up)) = tun else {
            if self.failures.insert("no tun".into()) {
                tracing::warn!(tun = %self.cfg.tun_name, "the TUN device is gone: no addresses or routes installed");
            }
            return added;
        };
        if !up && let Err(e) = nl.set_up(tun_index).await {
            self.fail(&e);
        }
        let current = match nl.current(tun_index, self.cfg.route_table).await {
            Ok(c) => c,
            Err(e) => {
                self.fail(&e);
                return added;
            }
        };
        let p = plan::diff(wanted, &current);
        for r in &p.del_rules {
            if let Err(e) = nl.del_rule(r).await {
                self.fail(&e);
            }
        }
        for r in &p.del_routes {
            if let Err(e) = nl.del_route(r).await {
                self.fail(&e);
            }
        }
        for a in &p.del_addresses {
            if let Err(e) = nl.del_address(tun_index, *a).await {
                self.fail(&e);
            }
        }
        for a in &p.add_addresses {
            match nl.add_address(tun_index, *a).await {
                Ok(()) => added.push(*a),
                Err(e) => self.fail(&e),
            }
        }
        for (prefix, table) in &p.add_routes {
            match nl.add_route(tun_index, *prefix, *table).await {
                Ok(()) => {}
                // Added by someone else between the dump and now: it routes onto the TUN.
                Err(e) if e.errno() == Some(17) => {}
                Err(e) => {
                    self.fail(&e);
                }
            }
        }
        for r in &p.add_rules {
            if let Err(e) = nl.add_rule(r).await {
                self.fail(&e);
            }
        }
        if !p.is_empty() {
            let show = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(", ");
            tracing::info!(
                tun = %self.cfg.tun_name,
                addresses_added = %show(&mut p.add_addresses.iter().map(ToString::to_string)),
                addresses_removed = %show(&mut p.del_addresses.iter().map(ToString::to_string)),
                routes_added = %show(&mut p.add_routes.iter().map(|(p, t)| route_name(*p, *t))),
                routes_removed = %show(&mut p.del_routes.iter().map(|r| route_name(r.prefix, r.table))),
                rules_added = p.add_rules.len(),
                rules_removed = p.del_rules.len(),
                "VNet side updated (addresses and routes of the TUN device)"
            );
        }
        self.record_conflicts(p.conflicts);
        added
    }

    fn record_conflicts(&mut self, found: Vec<plan::Conflict>) {
        let mut now: Conflicts = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for c in found {
            let key = (
                c.gateway.clone(),
                c.conflict.prefix,
                c.conflict.existing.clone(),
            );
            if !self.reported.contains(&key) {
                tracing::warn!(
                    tenant = %c.gateway.tenant,
                    gateway = %c.gateway.name,
                    prefix = %c.conflict.prefix,
                    existing = %c.conflict.existing,
                    "route not installed: the host already routes {} another way ({}); remove that route or change the prefix, the gateway's other routes are installed",
                    c.conflict.prefix,
                    c.conflict.existing
                );
            }
            seen.insert(key);
            now.entry(c.gateway).or_default().push(c.conflict);
        }
        for (g, prefix, existing) in self.reported.difference(&seen) {
            tracing::info!(tenant = %g.tenant, gateway = %g.name, %prefix, %existing, "route conflict gone");
        }
        self.reported = seen;
        self.conflicts = now;
    }
}

/// Issue 16: the part of `desired` this worker's host serves: every gateway except those whose
/// instance here is the standby (a standby holds neither the gateway's VNet-side address nor
/// its routes, so the VNet's traffic goes to the active instance's host).
pub fn serving(desired: &DesiredState, standby: &BTreeSet<QualifiedName>) -> DesiredState {
    DesiredState {
        version: desired.version,
        gateways: desired
            .gateways
            .iter()
            .filter(|g| !standby.contains(&QualifiedName::new(&g.tenant, &g.name)))
            .cloned()
            .collect(),
    }
}

fn route_name(p: IpNet, table: u32) -> String {
    if table == plan::MAIN_TABLE {
        p.to_string()
    } else {
        format!("{p} table {table}")
    }
}

/// What `/proc/sys` says about forwarding, with the fix for each family that is off.
pub fn forwarding_fixes(ipv4: Option<&str>, ipv6: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if ipv4.map(str::trim) == Some("0") {
        out.push(("IPv4", "sysctl -w net.ipv4.ip_forward=1, and to keep it after a reboot: echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/90-isthmus.conf".to_owned()));
    }
    if ipv6.map(str::trim) == Some("0") {
        out.push(("IPv6", "sysctl -w net.ipv6.conf.all.forwarding=1, and to keep it after a reboot: echo 'net.ipv6.conf.all.forwarding = 1' >> /etc/sysctl.d/90-isthmus.conf".to_owned()));
    }
    out
}

/// Checks that the host forwards IPv4 and IPv6 between the TUN device and the VNet; warns with
/// the exact fix when it does not.
pub fn check_forwarding() {
    let v4 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").ok();
    let v6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").ok();
    for (family, fix) in forwarding_fixes(v4.as_deref(), v6.as_deref()) {
        tracing::warn!(
            family,
            "IP forwarding is off on this host: {family} packets between the VNet and the tunnels are dropped by the kernel (only the host itself is reachable). Fix: {fix}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_gateway_gets_neither_its_address_nor_its_routes() {
        let gw = |name: &str, addr: &str, prefix: &str| {
            let mut g: isthmus_shared::desired::GatewayDesired =
                serde_json::from_value(serde_json::json!({
                    "tenant": "t", "name": name, "gateway_type": "RouteBased",
                    "private_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    "listen_port": 51820, "peers": [], "routes": [],
                    "bandwidth_limit_bps": 0
                }))
                .expect("gateway");
            g.private_address = Some(addr.parse().expect("address"));
            g.routes = vec![isthmus_shared::routes::Route {
                prefix: prefix.parse().expect("prefix"),
                next_hop: isthmus_shared::routes::NextHop::SiteToSite {
                    connection: QualifiedName::new("t", "c"),
                    site: QualifiedName::new("t", "s"),
                },
                origin: isthmus_shared::routes::RouteOrigin::Default,
                transit_hops: 0,
                active: true,
            }];
            g
        };
        let desired = DesiredState {
            version: 3,
            gateways: vec![
                gw("a", "10.1.255.4", "192.168.1.0/24"),
                gw("b", "10.2.255.4", "192.168.2.0/24"),
            ],
        };
        let standby = BTreeSet::from([QualifiedName::new("t", "b")]);
        let w = plan::wanted(
            &serving(&desired, &standby),
            None,
            plan::DEFAULT_ROUTE_TABLE,
        );
        let addrs: Vec<String> = w.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(addrs, vec!["10.1.255.4/32"]);
        let routes: Vec<String> = w.routes.iter().map(|r| r.prefix.to_string()).collect();
        assert_eq!(routes, vec!["192.168.1.0/24"]);
        let all = plan::wanted(&serving(&desired, &BTreeSet::new()), None, 7373);
        assert_eq!(
            all.addresses.len(),
            2,
            "not redundant or active: both served"
        );
    }

    #[test]
    fn gw_10_forwarding_off_is_reported_with_the_exact_fix() {
        let f = forwarding_fixes(Some("0\n"), Some("1\n"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "IPv4");
        assert!(f[0].1.starts_with("sysctl -w net.ipv4.ip_forward=1"));
        assert!(f[0].1.contains("/etc/sysctl.d/"));
        let f = forwarding_fixes(Some("1"), Some("0"));
        assert_eq!(f[0].0, "IPv6");
        assert!(f[0].1.contains("net.ipv6.conf.all.forwarding=1"));
        assert!(forwarding_fixes(Some("1"), Some("1")).is_empty());
        assert!(forwarding_fixes(None, None).is_empty());
    }
}
