//! The real `isthmus` server for namespace tests: started inside a namespace the test created,
//! fed a topology with `isthmus apply`, queried with `curl` inside that namespace; workers
//! connect to it as in production. Also hosts behind a worker's TUN (the VNet side).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::netns::{Lab, run};

pub fn server_binary() -> PathBuf {
    sibling_binary("isthmus", "isthmus-server")
}

/// Binary `name` of workspace package `package`, built next to `isthmus-worker`.
pub fn sibling_binary(name: &str, package: &str) -> PathBuf {
    let worker = PathBuf::from(env!("CARGO_BIN_EXE_isthmus-worker"));
    let bin = worker.with_file_name(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p {package}` (the test command does)",
        bin.display()
    );
    bin
}

pub fn have_curl() -> bool {
    Command::new("sh")
        .args(["-c", "command -v curl"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const ADMIN_PASSWORD: &str = "netns-admin-password";
pub const WORKER_TOKEN: &str = "isw_netns_test_token";

/// A running server.
pub struct Server {
    pub ns: String,
    /// `http://ADDR:PORT`.
    pub url: String,
    data: String,
    public_address: String,
    ports: String,
    /// More global options of `isthmus` (for `serve` and `apply`).
    extra: Vec<String>,
    jar: String,
    listen: String,
    /// The server process: its index in the lab's children.
    child: usize,
}

impl Server {
    /// Starts the server in `ns`, listening on `listen` (an address of `ns`), handing out
    /// gateway endpoints `public_address:ports`; logs in as the administrator.
    pub fn start(lab: &mut Lab, ns: &str, listen: &str, public_address: &str, ports: &str) -> Self {
        Self::start_with(lab, ns, listen, public_address, ports, &[])
    }

    /// [`Server::start`] with more global options of `isthmus` (e.g. `--p2s-tcp-port 443`).
    pub fn start_with(
        lab: &mut Lab,
        ns: &str,
        listen: &str,
        public_address: &str,
        ports: &str,
        extra: &[&str],
    ) -> Self {
        let data = lab.dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut s = Self {
            ns: ns.to_owned(),
            url: format!("http://{listen}"),
            data: data.display().to_string(),
            public_address: public_address.to_owned(),
            ports: ports.to_owned(),
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            jar: lab.dir.path().join("cookies").display().to_string(),
            listen: listen.to_owned(),
            child: 0,
        };
        s.spawn(lab);
        s.curl(&[
            "-H",
            "content-type: application/json",
            "-d",
            &format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#),
            &format!("{}/api/v1/auth/login", s.url),
        ]);
        s
    }

    /// Starts the server process (its log appended to `server.log`) and waits until it answers.
    fn spawn(&mut self, lab: &mut Lab) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(lab.dir.path().join("server.log"))
            .expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(server_binary())
            .args(self.global_args())
            .args([
                "serve",
                "--listen",
                &self.listen,
                "--portal-dir",
                &self.data,
            ])
            .env("ISTHMUS_WORKER_TOKEN", WORKER_TOKEN)
            .env("ISTHMUS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("DATABASE_URL")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("server starts");
        self.child = lab.children.len();
        lab.children.push(child);
        let health = format!("{}/api/v1/health", self.url);
        lab.wait_for("the server", Duration::from_secs(20), || {
            Command::new("ip")
                .args(["netns", "exec", &self.ns, "curl", "-fsS", &health])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success())
        });
    }

    /// Stops the server process; its database stays.
    pub fn stop(&self, lab: &mut Lab) {
        if let Some(c) = lab.children.get_mut(self.child) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same database and address (sessions live in the
    /// database, so the administrator stays logged in).
    pub fn restart(&mut self, lab: &mut Lab) {
        self.spawn(lab);
    }

    fn global_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".into(),
            self.data.clone(),
            "--public-address".into(),
            self.public_address.clone(),
            "--gateway-ports".into(),
            self.ports.clone(),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    /// `isthmus apply` of a YAML topology.
    pub fn apply(&self, lab: &Lab, yaml: &str) {
        let file = lab.write("topology.yaml", yaml);
        let out = Command::new(server_binary())
            .args(self.global_args())
            .arg("apply")
            .arg(&file)
            .env_remove("DATABASE_URL")
            .output()
            .expect("isthmus apply");
        assert!(
            out.status.success(),
            "apply failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `curl` inside the server's namespace as the administrator; the body (HTTP errors fail).
    pub fn curl(&self, args: &[&str]) -> String {
        let mut all = vec![
            "ip",
            "netns",
            "exec",
            &self.ns,
            "curl",
            "-sS",
            "--fail-with-body",
            "-b",
            &self.jar,
            "-c",
            &self.jar,
        ];
        all.extend_from_slice(args);
        run(&all)
    }

    /// `GET /api/v1{path}` as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let body = self.curl(&[&format!("{}/api/v1{path}", self.url)]);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// `POST /api/v1{path}` with a JSON body; the response body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> String {
        self.curl(&[
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body.to_string(),
            &format!("{}/api/v1{path}", self.url),
        ])
    }

    /// `PUT /api/v1{path}` with a JSON body.
    pub fn put(&self, path: &str, body: &str) {
        self.curl(&[
            "-X",
            "PUT",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &format!("{}/api/v1{path}", self.url),
        ]);
    }

    /// A gateway's public endpoint (`addr:port`) and public key.
    pub fn gateway(&self, tenant: &str, name: &str) -> (String, String) {
        let g = self.get(&format!("/tenants/{tenant}/gateways/{name}"));
        let ep = g["public_endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("gateway {name} has no endpoint: {g}"))
            .to_owned();
        let key = g["public_key"]
            .as_str()
            .unwrap_or_else(|| panic!("gateway {name} has no key: {g}"))
            .to_owned();
        (ep, key)
    }

    /// Starts worker `name` in `ns`, connected to this server, with TUN device `tun` (the worker
    /// sets its addresses and routes itself; the VNet's hosts sit behind it, see [`vnet_host`])
    /// writing `status` every second.
    /// Its log is `worker-{name}.log` in the lab, with the TCP transport's relays at debug.
    pub fn worker(
        &self,
        lab: &mut Lab,
        ns: &str,
        name: &str,
        tun: &str,
        extra: &[&str],
    ) -> PathBuf {
        let status = lab.dir.path().join(format!("status-{name}.json"));
        let log =
            std::fs::File::create(lab.dir.path().join(format!("worker-{name}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(env!("CARGO_BIN_EXE_isthmus-worker"))
            .args([
                "--server",
                &self.url,
                "--token",
                WORKER_TOKEN,
                "--name",
                name,
            ])
            .args(["--tun-name", tun, "--status-interval", "1", "--status-file"])
            .arg(&status)
            .args(extra)
            .env("RUST_LOG", "info,isthmus_worker::tcp_relay=debug")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("worker starts");
        lab.children.push(child);
        lab.wait_for(
            &format!("worker {name}'s TUN device"),
            Duration::from_secs(30),
            || {
                Command::new("ip")
                    .args(["-n", ns, "link", "show", tun])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
        );
        status
    }
}

/// A host of the VNet: namespace `host_ns` linked to the gateway's namespace `gw_ns`, at
/// `host_addr` (`a.b.c.d/len`) with its default route through `gw_addr` (the gateway
/// namespace's end, same prefix). The gateway namespace forwards between it and the worker's TUN.
pub fn vnet_host(lab: &mut Lab, gw_ns: &str, host_ns: &str, host_addr: &str, gw_addr: &str) {
    let id = lab.id.clone();
    lab.link(
        (gw_ns, &format!("gh{id}"), gw_addr),
        (host_ns, &format!("hh{id}"), host_addr),
    );
    let via = gw_addr.split('/').next().unwrap_or(gw_addr);
    run(&["ip", "-n", host_ns, "route", "add", "default", "via", via]);
    forwarding(gw_ns);
}

/// Turns `ns` into a router.
pub fn forwarding(ns: &str) {
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.rp_filter=0",
    ]);
}

/// The worker's `--status-file`, parsed (`Null` before the first write).
pub fn read_status(path: &std::path::Path) -> serde_json::Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Peer `peer` of the first gateway in a status file.
pub fn status_peer(status: &serde_json::Value, peer: &str) -> serde_json::Value {
    status["gateways"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["peers"].as_array().into_iter().flatten())
        .find(|p| p["name"] == peer)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// A wg-quick file as `wg setconf` takes it: wg-quick's own keys removed, the private key filled.
pub fn to_wg_conf(wg_quick: &str, private_key: &str) -> String {
    wg_quick
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            !matches!(
                key,
                "Address" | "DNS" | "MTU" | "Table" | "PreUp" | "PostUp" | "PreDown" | "PostDown"
            )
        })
        .map(|l| {
            if l.trim_start().starts_with("PrivateKey") {
                format!("PrivateKey = {private_key}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts `wireguard-go` as `ifname` in `ns` from a wg-quick file (`private_key` filled in):
/// its addresses (then `extra_addresses`) on the interface, and a route per allowed IP, as
/// wg-quick would do.
pub fn wireguard_go_from_wg_quick(
    lab: &mut Lab,
    ns: &str,
    ifname: &str,
    wg_quick: &str,
    private_key: &str,
    listen_port: Option<&str>,
    extra_addresses: &[&str],
) {
    let values = |key: &str| -> Vec<String> {
        wg_quick
            .lines()
            .filter(|l| l.split('=').next().unwrap_or("").trim() == key)
            .flat_map(|l| {
                l.split_once('=')
                    .map(|(_, v)| v.to_owned())
                    .unwrap_or_default()
                    .split(',')
                    .map(|x| x.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|x| !x.is_empty())
            .collect()
    };
    let mut addresses = values("Address");
    addresses.extend(extra_addresses.iter().map(|a| (*a).to_owned()));
    let first = addresses
        .first()
        .cloned()
        .expect("an address: in the configuration or in extra_addresses");
    let set: Vec<&str> = listen_port.map_or(vec!["fwmark", "0"], |p| vec!["listen-port", p]);
    lab.wireguard_go(ns, ifname, &set, &first, &[]);
    for a in addresses.iter().skip(1) {
        run(&["ip", "-n", ns, "addr", "add", a, "dev", ifname]);
    }
    let conf = lab.write(
        &format!("{ifname}.conf"),
        &to_wg_conf(wg_quick, private_key),
    );
    let conf = conf.display().to_string();
    run(&["ip", "netns", "exec", ns, "wg", "addconf", ifname, &conf]);
    for prefix in values("AllowedIPs") {
        run(&["ip", "-n", ns, "route", "replace", &prefix, "dev", ifname]);
    }
}
