//! A fluent builder for topologies, for tests, tools and examples.
//!
//! Prefixes and addresses are given as strings and parsed; a string that does not parse is
//! recorded and reported by [`TopologyBuilder::build`] (the builder never panics). The builder
//! does not validate rules: it happily builds a topology that breaks them, which is what rule
//! tests need.
//!
//! ```
//! use isthmus_shared::builder::TopologyBuilder;
//! use isthmus_shared::model::{GatewayType, Sku};
//!
//! let topology = TopologyBuilder::new("acme")
//!     .vnet("hub", "westeurope", &["10.0.0.0/16"])
//!     .gateway_subnet("hub", "10.0.255.0/27")
//!     .gateway("hub-gw", "hub", GatewayType::RouteBased, Sku::VpnGw1)
//!     .site("branch", "203.0.113.10", &["192.168.1.0/24"])
//!     .s2s("hub-branch", "hub-gw", "branch")
//!     .build()
//!     .expect("all strings parse");
//! assert!(isthmus_shared::validate::validate(&topology).is_empty());
//! ```

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{
    Connection, ConnectionKind, DeviceHost, GATEWAY_SUBNET, Gateway, GatewayRef, GatewayType,
    LocalSite, P2sClient, PointToSite, RootCertificate, RouteSource, RouteSourceKind, SharedKey,
    Sku, Subnet, Tenant, Topology, TrafficSelector, Vnet,
};

/// A string given to the builder that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("builder: {what} {input:?} does not parse: {reason}")]
pub struct BuildError {
    pub what: &'static str,
    pub input: String,
    pub reason: String,
}

/// Builds a [`Topology`]; every resource goes into the *current* tenant (see
/// [`TopologyBuilder::tenant`]).
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    topology: Topology,
    tenant: String,
    errors: Vec<BuildError>,
}

impl TopologyBuilder {
    /// Starts a topology whose current tenant is `tenant`.
    pub fn new(tenant: &str) -> Self {
        Self {
            topology: Topology::default(),
            tenant: String::new(),
            errors: Vec::new(),
        }
        .tenant(tenant)
    }

    /// Continues with an existing topology (current tenant `tenant`).
    pub fn from_topology(topology: Topology, tenant: &str) -> Self {
        Self {
            topology,
            tenant: String::new(),
            errors: Vec::new(),
        }
        .tenant(tenant)
    }

    /// Switches the current tenant, adding it if needed.
    pub fn tenant(mut self, name: &str) -> Self {
        if !self.topology.tenants.iter().any(|t| t.name == name) {
            self.topology.tenants.push(Tenant {
                name: name.to_owned(),
            });
        }
        self.tenant = name.to_owned();
        self
    }

    fn net(&mut self, s: &str) -> Option<IpNet> {
        match s.parse::<IpNet>() {
            Ok(n) => Some(n),
            Err(e) => {
                self.errors.push(BuildError {
                    what: "prefix",
                    input: s.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    fn nets(&mut self, list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|s| self.net(s)).collect()
    }

    fn addr(&mut self, s: &str) -> Option<IpAddr> {
        match s.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                self.errors.push(BuildError {
                    what: "address",
                    input: s.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    /// Adds a VNet.
    pub fn vnet(mut self, name: &str, region: &str, address_space: &[&str]) -> Self {
        let address_space = self.nets(address_space);
        self.topology.vnets.push(Vnet {
            tenant: self.tenant.clone(),
            name: name.to_owned(),
            region: region.to_owned(),
            address_space,
            subnets: Vec::new(),
            dns_servers: Vec::new(),
            route_sources: Vec::new(),
        });
        self
    }

    fn last_vnet(&mut self, vnet: &str) -> Option<&mut Vnet> {
        let tenant = self.tenant.clone();
        self.topology
            .vnets
            .iter_mut()
            .rev()
            .find(|v| v.tenant == tenant && v.name == vnet)
    }

    fn missing(&mut self, what: &'static str, name: &str) {
        self.errors.push(BuildError {
            what,
            input: name.to_owned(),
            reason: "add it to the builder first".to_owned(),
        });
    }

    /// Adds a subnet to VNet `vnet` (of the current tenant).
    pub fn subnet(mut self, vnet: &str, name: &str, prefix: &str) -> Self {
        let Some(prefix) = self.net(prefix) else {
            return self;
        };
        match self.last_vnet(vnet) {
            Some(v) => v.subnets.push(Subnet {
                name: name.to_owned(),
                prefix,
            }),
            None => self.missing("VNet", vnet),
        }
        self
    }

    /// Adds the `GatewaySubnet` to VNet `vnet`.
    pub fn gateway_subnet(self, vnet: &str, prefix: &str) -> Self {
        self.subnet(vnet, GATEWAY_SUBNET, prefix)
    }

    /// Adds a DNS server to VNet `vnet`.
    pub fn dns_server(mut self, vnet: &str, server: &str) -> Self {
        let Some(a) = self.addr(server) else {
            return self;
        };
        match self.last_vnet(vnet) {
            Some(v) => v.dns_servers.push(a),
            None => self.missing("VNet", vnet),
        }
        self
    }

    /// LIM-7: adds a private-circuit route source to VNet `vnet`.
    pub fn private_circuit(mut self, vnet: &str, name: &str, prefixes: &[&str]) -> Self {
        let prefixes = self.nets(prefixes);
        let source = RouteSource {
            name: name.to_owned(),
            kind: RouteSourceKind::PrivateCircuit,
            prefixes,
        };
        match self.last_vnet(vnet) {
            Some(v) => v.route_sources.push(source),
            None => self.missing("VNet", vnet),
        }
        self
    }

    /// GW-11: adds the user's own appliance at `next_hop` with user-defined routes.
    pub fn appliance(mut self, vnet: &str, name: &str, next_hop: &str, prefixes: &[&str]) -> Self {
        let prefixes = self.nets(prefixes);
        let Some(next_hop) = self.addr(next_hop) else {
            return self;
        };
        let source = RouteSource {
            name: name.to_owned(),
            kind: RouteSourceKind::Appliance { next_hop },
            prefixes,
        };
        match self.last_vnet(vnet) {
            Some(v) => v.route_sources.push(source),
            None => self.missing("VNet", vnet),
        }
        self
    }

    /// Adds a gateway to VNet `vnet`.
    pub fn gateway(mut self, name: &str, vnet: &str, gateway_type: GatewayType, sku: Sku) -> Self {
        self.topology.gateways.push(Gateway {
            tenant: self.tenant.clone(),
            name: name.to_owned(),
            vnet: vnet.to_owned(),
            gateway_type,
            sku,
            active_active: false,
            forced_tunneling_site: None,
            public_endpoint: None,
            secondary_endpoint: None,
            mss_clamp: true,
            public_key: None,
        });
        self
    }

    /// Edits the last gateway named `name` of the current tenant.
    pub fn edit_gateway(mut self, name: &str, f: impl FnOnce(&mut Gateway)) -> Self {
        let tenant = self.tenant.clone();
        match self
            .topology
            .gateways
            .iter_mut()
            .rev()
            .find(|g| g.tenant == tenant && g.name == name)
        {
            Some(g) => f(g),
            None => self.missing("gateway", name),
        }
        self
    }

    /// Adds a site whose device is at `device_host` (IPv4 address or DNS name).
    pub fn site(mut self, name: &str, device_host: &str, prefixes: &[&str]) -> Self {
        let address_prefixes = self.nets(prefixes);
        let device_host = match device_host.parse::<DeviceHost>() {
            Ok(h) => h,
            Err(e) => {
                self.errors.push(BuildError {
                    what: "device host",
                    input: device_host.to_owned(),
                    reason: e.to_string(),
                });
                return self;
            }
        };
        self.topology.sites.push(LocalSite {
            tenant: self.tenant.clone(),
            name: name.to_owned(),
            device_host,
            device_port: None,
            address_prefixes,
            device_public_key: None,
            ike_identity: None,
        });
        self
    }

    /// Edits the last site named `name` of the current tenant.
    pub fn edit_site(mut self, name: &str, f: impl FnOnce(&mut LocalSite)) -> Self {
        let tenant = self.tenant.clone();
        match self
            .topology
            .sites
            .iter_mut()
            .rev()
            .find(|s| s.tenant == tenant && s.name == name)
        {
            Some(s) => f(s),
            None => self.missing("site", name),
        }
        self
    }

    fn push_connection(&mut self, name: &str, gateway: &str, kind: ConnectionKind) {
        self.topology.connections.push(Connection {
            tenant: self.tenant.clone(),
            name: name.to_owned(),
            gateway: gateway.to_owned(),
            kind,
            shared_key: None,
            enabled: true,
            traffic_selectors: Vec::new(),
            protocol: Default::default(),
            ipsec_policy: None,
            connection_mode: Default::default(),
        });
    }

    /// Adds a site-to-site connection.
    pub fn s2s(mut self, name: &str, gateway: &str, site: &str) -> Self {
        self.push_connection(
            name,
            gateway,
            ConnectionKind::SiteToSite {
                site: site.to_owned(),
            },
        );
        self
    }

    /// Adds one half of a VNet-to-VNet connection; `remote_tenant` `None` is the current tenant.
    pub fn v2v(
        mut self,
        name: &str,
        gateway: &str,
        remote_tenant: Option<&str>,
        remote_gateway: &str,
    ) -> Self {
        let remote_gateway = GatewayRef {
            tenant: remote_tenant.map(str::to_owned),
            name: remote_gateway.to_owned(),
        };
        self.push_connection(name, gateway, ConnectionKind::VnetToVnet { remote_gateway });
        self
    }

    /// Adds both halves of a VNet-to-VNet tunnel inside the current tenant, named `a-b` style:
    /// `name_ab` on `gw_a` and `name_ba` on `gw_b`.
    pub fn v2v_pair(self, name_ab: &str, gw_a: &str, name_ba: &str, gw_b: &str) -> Self {
        self.v2v(name_ab, gw_a, None, gw_b)
            .v2v(name_ba, gw_b, None, gw_a)
    }

    /// Edits the last connection named `name` of the current tenant.
    pub fn edit_connection(mut self, name: &str, f: impl FnOnce(&mut Connection)) -> Self {
        let tenant = self.tenant.clone();
        match self
            .topology
            .connections
            .iter_mut()
            .rev()
            .find(|c| c.tenant == tenant && c.name == name)
        {
            Some(c) => f(c),
            None => self.missing("connection", name),
        }
        self
    }

    /// Sets the shared key of connection `name`.
    pub fn shared_key(self, connection: &str, key: &str) -> Self {
        let key = SharedKey::new(key);
        self.edit_connection(connection, |c| c.shared_key = Some(key))
    }

    /// GW-1: adds a traffic selector to connection `name`.
    pub fn selector(mut self, connection: &str, local: &str, remote: &str) -> Self {
        let (Some(local), Some(remote)) = (self.net(local), self.net(remote)) else {
            return self;
        };
        self.edit_connection(connection, |c| {
            c.traffic_selectors.push(TrafficSelector { local, remote });
        })
    }

    /// Adds a point-to-site configuration to `gateway`.
    pub fn p2s(mut self, gateway: &str, pool: &[&str]) -> Self {
        let address_pool = self.nets(pool);
        self.topology.point_to_site.push(PointToSite {
            tenant: self.tenant.clone(),
            gateway: gateway.to_owned(),
            address_pool,
            additional_vnets: Vec::new(),
            root_certificates: Vec::new(),
            revoked_thumbprints: Vec::new(),
            clients: Vec::new(),
        });
        self
    }

    /// Edits the point-to-site configuration of `gateway`.
    pub fn edit_p2s(mut self, gateway: &str, f: impl FnOnce(&mut PointToSite)) -> Self {
        let tenant = self.tenant.clone();
        match self
            .topology
            .point_to_site
            .iter_mut()
            .rev()
            .find(|p| p.tenant == tenant && p.gateway == gateway)
        {
            Some(p) => f(p),
            None => self.missing("point-to-site configuration", gateway),
        }
        self
    }

    /// Adds a client to the point-to-site configuration of `gateway`.
    pub fn p2s_client(
        mut self,
        gateway: &str,
        name: &str,
        public_key: &str,
        address: &str,
    ) -> Self {
        let Some(address) = self.addr(address) else {
            return self;
        };
        let client = P2sClient {
            name: name.to_owned(),
            public_key: public_key.to_owned(),
            address,
            certificate_thumbprint: None,
        };
        self.edit_p2s(gateway, |p| p.clients.push(client))
    }

    /// Adds a root certificate to the point-to-site configuration of `gateway`.
    pub fn root_certificate(self, gateway: &str, name: &str, data: &str) -> Self {
        let cert = RootCertificate {
            name: name.to_owned(),
            data: data.to_owned(),
        };
        self.edit_p2s(gateway, |p| p.root_certificates.push(cert))
    }

    /// The topology so far, for inspection.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The topology, or the first string that did not parse.
    pub fn build(self) -> Result<Topology, BuildError> {
        match self.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(self.topology),
        }
    }
}

/// A large, valid topology for benchmarks (native and in the browser): `vnets` VNets in tenant
/// `acme`, each with a GatewaySubnet, a workload subnet and a RouteBased VpnGw4 gateway, chained
/// ten at a time by VNet-to-VNet pairs (so transit groups are checked for overlaps), and `sites`
/// sites with one or two /24s each, connected round-robin to the gateways. `synthetic(2_000,
/// 10_000)` is the 2,000-VNet / 10,000-site / 20,000-prefix benchmark topology. At most 4,096
/// VNets and 32,768 sites.
pub fn synthetic(vnets: usize, sites: usize) -> Topology {
    fn v4(n: u32, len: u8) -> String {
        format!("{}/{len}", std::net::Ipv4Addr::from(n))
    }
    let vnets = vnets.clamp(1, 4_096);
    let sites = sites.min(32_768);
    let mut b = TopologyBuilder::new("acme");
    for i in 0..vnets {
        // 10.0.0.0/8 holds 4,096 /20s.
        let base = (10u32 << 24) | (u32::try_from(i).unwrap_or(0) << 12);
        let name = format!("vnet{i}");
        b = b
            .vnet(
                &name,
                if i % 2 == 0 { "westeurope" } else { "eastus" },
                &[&v4(base, 20)],
            )
            .gateway_subnet(&name, &v4(base | 0xf00, 27))
            .subnet(&name, "workloads", &v4(base, 24))
            .gateway(
                &format!("gw{i}"),
                &name,
                GatewayType::RouteBased,
                Sku::VpnGw4,
            );
        if i % 10 != 0 {
            b = b.v2v_pair(
                &format!("v{}-{i}", i - 1),
                &format!("gw{}", i - 1),
                &format!("v{i}-{}", i - 1),
                &format!("gw{i}"),
            );
        }
    }
    for j in 0..sites {
        // From 20.0.0.0 up: two /24s for four sites in five, one for the fifth.
        let j32 = u32::try_from(j).unwrap_or(0);
        let base = (20u32 << 24) + 2 * j32 * 256;
        let prefixes: Vec<String> = if j % 5 == 0 {
            vec![v4(base, 24)]
        } else {
            vec![v4(base, 24), v4(base + 256, 24)]
        };
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let host = format!("198.{}.{}.{}", 18 + (j >> 16), (j >> 8) & 255, j & 255);
        b = b.site(&format!("site{j}"), &host, &refs).s2s(
            &format!("c{j}"),
            &format!("gw{}", j % vnets),
            &format!("site{j}"),
        );
    }
    b.build().unwrap_or_default()
}
