//! Issue 16: a lab of redundant gateways with real binaries, in namespaces this test creates.
//!
//! ```text
//!                    public segment 10.241.0.0/24 (bridge in `sw`)
//!   srv 10.241.0.100 ── wk1 10.241.0.1 ── wk2 10.241.0.2 ── site 10.241.0.10 (wireguard-go)
//!                       │                 │                    behind it: 10.240.2.1/24
//!                    VNet segment 10.240.1.0/24 (a second bridge in `sw`)
//!                       wk1 10.240.1.2 ── wk2 10.240.1.3 ── vnet host 10.240.1.10
//!                                                            route 10.240.2.0/24 via 10.240.1.228
//! ```
//!
//! Each worker runs in its own namespace with its own public address, as on two hosts. The VNet
//! host's router configuration names the gateway's VNet-side address (GatewaySubnet + 4,
//! 10.240.1.228), which only the active instance holds and announces: the test adds no route or
//! address on a worker's behalf. No namespace has a default route; nothing leaves them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::{Lab, ping, run, skip_reason};
use crate::server_lab::{
    Server, WORKER_TOKEN, forwarding, have_curl, read_status, wireguard_go_from_wg_quick,
};

/// Why the lab cannot run here, if it cannot.
pub fn ha_skip_reason() -> Option<String> {
    skip_reason()
        .or_else(|| (!have_curl()).then(|| "curl is missing".into()))
        .or_else(|| {
            (!Command::new("sh")
                .args(["-c", "command -v iperf3"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()))
            .then(|| "iperf3 is missing (apt-get install iperf3)".into())
        })
}

/// One worker of the lab.
pub struct HaWorker {
    pub name: String,
    pub ns: String,
    pub tun: String,
    pub public: String,
    pub zone: String,
    pub status: PathBuf,
    /// The running process: its index in the lab's children.
    pub child: Option<usize>,
    /// More worker options.
    pub extra: Vec<String>,
    runs: u32,
}

/// The lab: server, two (or more) workers, a site and a VNet host.
pub struct Ha {
    pub lab: Lab,
    pub server: Server,
    pub sw: String,
    pub workers: Vec<HaWorker>,
    pub vnet: String,
    pub site: String,
    pub site_private: String,
}

/// The gateway's VNet-side address: GatewaySubnet 10.240.1.224/27 + 4.
pub const GATEWAY_ADDRESS: &str = "10.240.1.228";
/// The host behind the site.
pub const SITE_HOST: &str = "10.240.2.1";
/// The host in the VNet.
pub const VNET_HOST: &str = "10.240.1.10";

fn bridge(sw: &str, br: &str) {
    run(&["ip", "-n", sw, "link", "add", br, "type", "bridge"]);
    run(&["ip", "-n", sw, "link", "set", br, "up"]);
}

/// A veth from namespace `ns` (interface `ifname`, address `addr`) to bridge `br` in `sw`.
pub fn attach(sw: &str, br: &str, ns: &str, ifname: &str, addr: &str) {
    let port = format!("{ifname}p");
    run(&[
        "ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", &port, "netns",
        sw,
    ]);
    run(&["ip", "-n", sw, "link", "set", &port, "master", br]);
    run(&["ip", "-n", sw, "link", "set", &port, "up"]);
    run(&["ip", "-n", ns, "addr", "add", addr, "dev", ifname]);
    run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
}

impl Ha {
    /// Namespaces, bridges, the server (not yet any worker) and `workers` worker namespaces
    /// (zones `a`, `b`, `a`, ...), with the topology `yaml(site_public_key)` applied.
    pub fn new(tag: &str, server_port: u16, workers: usize, yaml: impl Fn(&str) -> String) -> Self {
        let mut lab = Lab::new(tag);
        let id = lab.id.clone();
        let sw = lab.netns("sw");
        let srv = lab.netns("srv");
        let vnet = lab.netns("vnet");
        let site = lab.netns("site");
        bridge(&sw, "bpub");
        bridge(&sw, "blan");
        attach(&sw, "bpub", &srv, &format!("s{id}"), "10.241.0.100/24");
        attach(&sw, "bpub", &site, &format!("e{id}"), "10.241.0.10/24");
        attach(&sw, "blan", &vnet, &format!("v{id}"), "10.240.1.10/24");
        let mut ws = Vec::new();
        for i in 0..workers {
            let n = i + 1;
            let ns = lab.netns(&format!("wk{n}"));
            let public = format!("10.241.0.{n}");
            attach(
                &sw,
                "bpub",
                &ns,
                &format!("p{n}{id}"),
                &format!("{public}/24"),
            );
            attach(
                &sw,
                "blan",
                &ns,
                &format!("l{n}{id}"),
                &format!("10.240.1.{}/24", n + 1),
            );
            // The operator's host setup: a router (the worker checks it at start).
            forwarding(&ns);
            ws.push(HaWorker {
                name: format!("w{n}"),
                status: lab.dir.path().join(format!("status-w{n}.json")),
                ns,
                tun: format!("t{n}{id}"),
                public,
                zone: if i % 2 == 0 { "a" } else { "b" }.to_owned(),
                child: None,
                extra: Vec::new(),
                runs: 0,
            });
        }
        let (site_private, site_public) = crate::netns::wg_keypair();
        let server = Server::start(
            &mut lab,
            &srv,
            &format!("10.241.0.100:{server_port}"),
            "10.241.0.100",
            "51840-51849",
        );
        server.apply(&lab, &yaml(&site_public));
        // The VNet's router (here the VNet host itself): the site's prefix through the
        // gateway's VNet-side address, as the user configures it once.
        run(&[
            "ip",
            "-n",
            &vnet,
            "route",
            "add",
            "10.240.2.0/24",
            "via",
            GATEWAY_ADDRESS,
        ]);
        Self {
            lab,
            server,
            sw,
            workers: ws,
            vnet,
            site,
            site_private,
        }
    }

    /// One more worker namespace (`wN`), on the public segment and on the bridges `lans` of
    /// `sw` with the given addresses; started with `extra` options. Its index.
    pub fn add_worker(&mut self, lans: &[(&str, &str)], zone: &str, extra: &[&str]) -> usize {
        let n = self.workers.len() + 1;
        let id = self.lab.id.clone();
        let ns = self.lab.netns(&format!("wk{n}"));
        let public = format!("10.241.0.{n}");
        attach(
            &self.sw,
            "bpub",
            &ns,
            &format!("p{n}{id}"),
            &format!("{public}/24"),
        );
        for (k, (br, addr)) in lans.iter().enumerate() {
            attach(&self.sw, br, &ns, &format!("x{n}{k}{id}"), addr);
        }
        forwarding(&ns);
        self.workers.push(HaWorker {
            name: format!("w{n}"),
            status: self.lab.dir.path().join(format!("status-w{n}.json")),
            ns,
            tun: format!("t{n}{id}"),
            public,
            zone: zone.to_owned(),
            child: None,
            extra: extra.iter().map(|e| (*e).to_owned()).collect(),
            runs: 0,
        });
        n - 1
    }

    /// Starts worker `i` (again), its log appended to `worker-wN.log`.
    pub fn start(&mut self, i: usize) {
        let w = &mut self.workers[i];
        w.runs += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.lab.dir.path().join(format!("worker-{}.log", w.name)))
            .expect("log");
        let _ = std::fs::remove_file(&w.status);
        let child = Command::new("ip")
            .args(["netns", "exec", &w.ns])
            .arg(env!("CARGO_BIN_EXE_isthmus-worker"))
            .args(["--server", &self.server.url, "--token", WORKER_TOKEN])
            .args(["--name", &w.name, "--tun-name", &w.tun])
            .args(["--public-address", &w.public, "--zone", &w.zone])
            .args(["--status-interval", "1", "--status-file"])
            .arg(&w.status)
            .args(&w.extra)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("worker starts");
        w.child = Some(self.lab.children.len());
        self.lab.children.push(child);
    }

    /// `kill -9` of worker `i`: no clean shutdown, as when its host dies.
    pub fn kill9(&mut self, i: usize) {
        if let Some(c) = self.workers[i]
            .child
            .take()
            .and_then(|c| self.lab.children.get_mut(c))
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Worker `i`'s reported instance of the (only) gateway: `(role, term)`.
    pub fn instance(&self, i: usize) -> Option<(String, u64)> {
        let s = read_status(&self.workers[i].status);
        let inst = &s["gateways"][0]["instance"];
        Some((inst["role"].as_str()?.to_owned(), inst["term"].as_u64()?))
    }

    /// Worker `i`'s instance status as JSON (`Null` before its first report).
    pub fn instance_json(&self, i: usize) -> serde_json::Value {
        read_status(&self.workers[i].status)["gateways"][0]["instance"].clone()
    }

    /// Waits until worker `active` reports its instance active and worker `standby` standby,
    /// each hearing the other.
    pub fn wait_roles(&self, active: usize, standby: usize, timeout: Duration) {
        self.lab.wait_for(
            &format!(
                "{} active and {} standby, hearing each other",
                self.workers[active].name, self.workers[standby].name
            ),
            timeout,
            || {
                let a = self.instance_json(active);
                let s = self.instance_json(standby);
                a["role"] == "active"
                    && s["role"] == "standby"
                    && a["partner_alive"] == true
                    && s["partner_alive"] == true
            },
        );
    }

    /// The site device, configured only from the device configuration the server exports
    /// (plus its private key and its own LAN address).
    pub fn start_site(&mut self, connection: &str) -> String {
        let exported = self.server.curl(&[&format!(
            "{}/api/v1/tenants/acme/connections/{connection}/device-config",
            self.server.url
        )]);
        let id = self.lab.id.clone();
        wireguard_go_from_wg_quick(
            &mut self.lab,
            &self.site,
            &format!("g{id}"),
            &exported,
            &self.site_private,
            Some("51900"),
            &[&format!("{SITE_HOST}/24")],
        );
        exported
    }

    /// What a failed assertion needs: the VNet host's neighbours and routes, each worker
    /// namespace's addresses and routes, each worker's status file, then every log.
    pub fn diagnose(&self) -> String {
        let sh = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let mut out = format!(
            "vnet neigh:\n{}vnet routes:\n{}",
            sh(&["ip", "-n", &self.vnet, "neigh"]),
            sh(&["ip", "-n", &self.vnet, "route"])
        );
        for w in &self.workers {
            out.push_str(&format!(
                "{} addresses:\n{}{} routes:\n{}{} status: {}\n",
                w.name,
                sh(&["ip", "-n", &w.ns, "-br", "addr"]),
                w.name,
                sh(&["ip", "-n", &w.ns, "route"]),
                w.name,
                read_status(&w.status)
            ));
        }
        out.push_str(&format!(
            "site wg:\n{}",
            sh(&["ip", "netns", "exec", &self.site, "wg", "show"])
        ));
        out.push_str(&self.lab.logs());
        out
    }

    /// Pings until one answer, at most `tries` seconds.
    pub fn reachable(&self, from: &str, to: &str, tries: usize) -> bool {
        (0..tries).any(|_| ping(from, None, to))
    }
}

/// A background `ping -D` at `hz` per second for `secs` seconds.
pub struct Pinger {
    child: Child,
}

impl Pinger {
    pub fn start(ns: &str, to: &str, hz: u32, secs: u32) -> Self {
        let interval = 1.0 / f64::from(hz);
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-D", "-n", "-W", "1"])
            // A count, not a deadline: with `-w`, ping stops at the first ICMP error (the
            // dead worker's namespace answers "unreachable" until the address moves).
            .args([
                "-i",
                &format!("{interval:.3}"),
                "-c",
                &(hz * secs).to_string(),
                to,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping runs");
        Self { child }
    }

    /// Waits for the end; the outcome.
    pub fn finish(self) -> PingOutcome {
        let out = self.child.wait_with_output().expect("ping output");
        PingOutcome::parse(&String::from_utf8_lossy(&out.stdout))
    }
}

/// What a background ping saw.
#[derive(Debug, Clone)]
pub struct PingOutcome {
    /// Reply times (Unix seconds) by sequence number.
    pub replies: Vec<(u64, f64)>,
    /// Requests sent (the highest sequence number seen in the summary or the replies).
    pub sent: u64,
}

impl PingOutcome {
    fn parse(out: &str) -> Self {
        let mut replies = Vec::new();
        let mut sent = 0;
        for l in out.lines() {
            if let Some(rest) = l.strip_prefix('[')
                && let Some((ts, tail)) = rest.split_once(']')
                && let Some(seq) = tail
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("icmp_seq="))
                && tail.contains("bytes from")
                && let (Ok(t), Ok(s)) = (ts.parse::<f64>(), seq.parse::<u64>())
            {
                replies.push((s, t));
            }
            if let Some((n, _)) = l.split_once(" packets transmitted") {
                sent = n.trim().parse().unwrap_or(0);
            }
        }
        Self { replies, sent }
    }

    /// Requests without a reply.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.replies.len() as u64)
    }

    /// The longest time between two consecutive replies (seconds): the time without traffic.
    pub fn longest_gap(&self) -> f64 {
        self.replies
            .windows(2)
            .map(|w| w[1].1 - w[0].1)
            .fold(0.0, f64::max)
    }

    /// The time without traffic around `at` (Unix seconds): from the last reply before it to
    /// the first after it.
    pub fn gap_around(&self, at: f64) -> Option<f64> {
        let before = self.replies.iter().rev().find(|r| r.1 <= at)?.1;
        let after = self.replies.iter().find(|r| r.1 > at)?.1;
        Some(after - before)
    }
}

/// A background iperf3 TCP stream from `client_ns` to `server_addr` in `server_ns`.
pub struct Stream {
    server: Child,
    client: Child,
}

impl Stream {
    pub fn start(server_ns: &str, server_addr: &str, client_ns: &str, secs: u32) -> Self {
        let server = Command::new("ip")
            .args([
                "netns", "exec", server_ns, "timeout", "120", "iperf3", "-s", "-1",
            ])
            .args(["-B", server_addr, "-p", "5299"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server");
        std::thread::sleep(Duration::from_millis(500));
        let client = Command::new("ip")
            .args(["netns", "exec", client_ns, "timeout", "120", "iperf3", "-c"])
            .args([server_addr, "-p", "5299", "-t", &secs.to_string(), "-J"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("iperf3 client");
        Self { server, client }
    }

    /// Waits for the end: `(exit success, bytes received, retransmits, error text)`.
    pub fn finish(mut self) -> StreamOutcome {
        let out = self.client.wait_with_output().expect("iperf3 output");
        let _ = self.server.kill();
        let _ = self.server.wait();
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        StreamOutcome {
            ok: out.status.success(),
            bytes: json["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0),
            retransmits: json["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
            error: json["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamOutcome {
    pub ok: bool,
    pub bytes: u64,
    pub retransmits: u64,
    pub error: String,
}

/// Unix seconds now, as `ping -D` prints them.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The hub topology: one redundant-capable gateway, one site.
pub fn hub_topology(site_public: &str) -> String {
    format!(
        "tenants: [{{name: acme}}]
vnets:
  - {{tenant: acme, name: hub, region: westeurope, address_space: [10.240.1.0/24],
     subnets: [{{name: default, prefix: 10.240.1.0/25}}, {{name: GatewaySubnet, prefix: 10.240.1.224/27}}]}}
gateways:
  - {{tenant: acme, name: hub-gw, vnet: hub, gateway_type: RouteBased, sku: VpnGw1}}
sites:
  - {{tenant: acme, name: branch, device_host: 10.241.0.10, device_port: 51900,
     address_prefixes: [10.240.2.0/24], device_public_key: \"{site_public}\"}}
connections:
  - {{tenant: acme, name: to-branch, gateway: hub-gw, kind: {{type: SiteToSite, site: branch}}}}
"
    )
}

/// Hub (redundant, with a point-to-site pool) and spoke, connected VNet-to-VNet, plus the site.
pub fn hub_and_spoke_topology(site_public: &str, client_public: &str) -> String {
    format!(
        "{}  - {{tenant: acme, name: hub-to-spoke, gateway: hub-gw, shared_key: V2vKey2026abc,
     kind: {{type: VnetToVnet, remote_gateway: {{name: spoke-gw}}}}}}
  - {{tenant: acme, name: spoke-to-hub, gateway: spoke-gw, shared_key: V2vKey2026abc,
     kind: {{type: VnetToVnet, remote_gateway: {{name: hub-gw}}}}}}
point_to_site:
  - {{tenant: acme, gateway: hub-gw, address_pool: [172.16.201.0/24],
     clients: [{{name: laptop, public_key: \"{client_public}\", address: 172.16.201.10}}]}}
",
        hub_topology(site_public)
            .replace(
                "gateways:\n",
                "  - {tenant: acme, name: spoke, region: westeurope, address_space: [10.240.5.0/24],
     subnets: [{name: default, prefix: 10.240.5.0/25}, {name: GatewaySubnet, prefix: 10.240.5.224/27}]}
gateways:
  - {tenant: acme, name: spoke-gw, vnet: spoke, gateway_type: RouteBased, sku: VpnGw1}
"
            )
    )
}

/// The hub gateway redundant on w1 (active) and w2, with a site, a point-to-site client
/// (stock wireguard-go from the product's client configuration, on the public segment without
/// NAT) and a VNet-to-VNet pair to the spoke, whose gateway runs alone on a third worker, w3, on
/// its own segment. Everything connected, the client's endpoint known to the standby.
pub struct Full {
    pub ha: Ha,
    /// The client's namespace.
    pub client: String,
    /// The spoke VNet host's namespace (10.240.5.10).
    pub spoke: String,
    /// The index of w3.
    pub w3: usize,
}

impl Full {
    pub fn new(tag: &str, port: u16) -> Self {
        let (client_private, client_public) = crate::netns::wg_keypair();
        let mut ha = Ha::new(tag, port, 2, |site| {
            hub_and_spoke_topology(site, &client_public)
        });
        let id = ha.lab.id.clone();
        // The spoke VNet: its own segment with a host and a third worker, w3, which runs the
        // spoke's gateway alone (no heartbeat address: it takes no standby instances); its router
        // (the host) sends the hub's prefix to the spoke gateway's VNet-side address.
        let spoke = ha.lab.netns("spk");
        run(&["ip", "-n", &ha.sw, "link", "add", "bspk", "type", "bridge"]);
        run(&["ip", "-n", &ha.sw, "link", "set", "bspk", "up"]);
        attach(&ha.sw, "bspk", &spoke, &format!("k{id}"), "10.240.5.10/24");
        let w3 = ha.add_worker(
            &[("bspk", "10.240.5.2/24")],
            "c",
            &["--heartbeat-port", "0"],
        );
        run(&[
            "ip",
            "-n",
            &spoke,
            "route",
            "add",
            "10.240.1.0/24",
            "via",
            "10.240.5.228",
        ]);
        run(&[
            "ip",
            "-n",
            &ha.vnet,
            "route",
            "add",
            "10.240.5.0/24",
            "via",
            GATEWAY_ADDRESS,
        ]);
        run(&[
            "ip",
            "-n",
            &ha.vnet,
            "route",
            "add",
            "172.16.201.0/24",
            "via",
            GATEWAY_ADDRESS,
        ]);
        ha.server
            .put("/placements/acme/hub-gw", r#"{"worker":"w1"}"#);
        ha.server
            .put("/placements/acme/spoke-gw", r#"{"worker":"w3"}"#);

        ha.start(0);
        ha.start(w3);
        ha.lab
            .wait_for("w1 to run the hub gateway", Duration::from_secs(30), || {
                crate::server_lab::read_status(&ha.workers[0].status)["gateways"][0]["name"]
                    == "hub-gw"
            });
        ha.start(1);
        ha.wait_roles(0, 1, Duration::from_secs(40));
        ha.start_site("to-branch");

        // The client: a stock wireguard-go from the product's client configuration, on the public
        // segment without NAT (so the new instance's handshake reaches it).
        let client = ha.lab.netns("cl");
        attach(&ha.sw, "bpub", &client, &format!("c{id}"), "10.241.0.20/24");
        let topology: isthmus_shared::model::Topology =
            serde_json::from_value(ha.server.get("/tenants/acme/topology")).expect("topology");
        let conf = isthmus_shared::device::p2s_client_config(
            &topology,
            &isthmus_shared::model::QualifiedName::new("acme", "hub-gw"),
            "laptop",
        )
        .expect("client configuration")
        .to_wg_quick();
        crate::server_lab::wireguard_go_from_wg_quick(
            &mut ha.lab,
            &client,
            &format!("w{id}"),
            &conf,
            &client_private,
            None,
            &[],
        );
        assert!(
            ha.reachable(&client, VNET_HOST, 30),
            "client → hub VNet\n{}",
            ha.diagnose()
        );
        assert!(
            ha.reachable(&spoke, VNET_HOST, 30),
            "spoke → hub (V2V)\n{}",
            ha.diagnose()
        );
        assert!(
            ha.reachable(&ha.vnet, SITE_HOST, 10),
            "hub → site\n{}",
            ha.diagnose()
        );
        // The standby learns the client's endpoint from the active's report, through the server.
        ha.lab.wait_for(
            "the client's last endpoint in the server's status",
            Duration::from_secs(30),
            || {
                ha.server.get("/tenants/acme/gateways/hub-gw/status")["connections"]
                    .as_array()
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["connection"] == "laptop"
                                && c["endpoint"]
                                    .as_str()
                                    .is_some_and(|e| e.starts_with("10.241.0.20:"))
                        })
                    })
            },
        );
        Self {
            ha,
            client,
            spoke,
            w3,
        }
    }
}
