//! Real network: the `isthmus-worker` binary and a `wireguard-go` site device in two network
//! namespaces this test creates (root only; skipped with a message otherwise). Traffic stays on
//! the namespaces' own veth pair and tunnel addresses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isthmus_shared::desired::{DesiredStateMessage, Secret};

use crate::harness::*;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Why this machine cannot run the test, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("not root (network namespaces and TUN devices need root)".into());
    }
    for c in ["ip", "wireguard-go", "wg", "ping"] {
        if !have(c) {
            return Some(format!(
                "`{c}` is not installed (apt-get install wireguard-go wireguard-tools iproute2 iputils-ping)"
            ));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

/// Runs a command; panics with its output when it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn succeeds(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Namespaces, processes and files of one test; all removed on drop, panics included.
pub struct Lab {
    pub id: String,
    pub namespaces: Vec<String>,
    pub children: Vec<Child>,
    pub sockets: Vec<PathBuf>,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new(tag: &str) -> Self {
        let id = format!("{tag}{}", std::process::id() % 100_000);
        Self {
            id,
            namespaces: Vec::new(),
            children: Vec::new(),
            sockets: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn netns(&mut self, name: &str) -> String {
        let ns = format!("isw-{name}-{}", self.id);
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(Stdio::null())
            .status();
        run(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair between two namespaces with a /30 on each end.
    pub fn link(&mut self, a: (&str, &str, &str), b: (&str, &str, &str)) {
        let (ns_a, if_a, addr_a) = a;
        let (ns_b, if_b, addr_b) = b;
        run(&[
            "ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b,
            "netns", ns_b,
        ]);
        run(&["ip", "-n", ns_a, "addr", "add", addr_a, "dev", if_a]);
        run(&["ip", "-n", ns_b, "addr", "add", addr_b, "dev", if_b]);
        run(&["ip", "-n", ns_a, "link", "set", if_a, "up"]);
        run(&["ip", "-n", ns_b, "link", "set", if_b, "up"]);
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write file");
        p
    }

    /// Starts `wireguard-go` for interface `ifname` in `ns` and configures it.
    pub fn wireguard_go(
        &mut self,
        ns: &str,
        ifname: &str,
        wg_set: &[&str],
        address: &str,
        routes: &[&str],
    ) {
        let log =
            std::fs::File::create(self.dir.path().join(format!("{ifname}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "wireguard-go", "-f", ifname])
            .env("LOG_LEVEL", "error")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start wireguard-go");
        self.children.push(child);
        self.sockets
            .push(PathBuf::from(format!("/var/run/wireguard/{ifname}.sock")));
        self.wait_for(
            &format!("wireguard-go {ifname}"),
            Duration::from_secs(10),
            || succeeds(&["ip", "netns", "exec", ns, "wg", "show", ifname]),
        );
        let mut set = vec!["ip", "netns", "exec", ns, "wg", "set", ifname];
        set.extend_from_slice(wg_set);
        run(&set);
        run(&["ip", "-n", ns, "addr", "add", address, "dev", ifname]);
        run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        // The site device's own routes to its AllowedIPs (what wg-quick does on the device), in
        // the site's namespace: never a route of the worker's host, which the worker owns.
        for r in routes {
            run(&["ip", "-n", ns, "route", "add", r, "dev", ifname]);
        }
    }

    /// Starts the worker binary in `ns` from a desired-state file.
    pub fn worker(&mut self, ns: &str, desired: &Path, extra: &[&str]) -> PathBuf {
        let log_path = self.dir.path().join(format!("worker-{ns}.log"));
        let log = std::fs::File::create(&log_path).expect("log");
        let mut args = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            ns.to_owned(),
            env!("CARGO_BIN_EXE_isthmus-worker").to_owned(),
            "--desired-state".to_owned(),
            desired.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let child = Command::new("ip")
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start worker");
        self.children.push(child);
        log_path
    }

    /// Waits until `f` holds; on timeout, fails with every log of the lab.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    s.push_str(&format!("--- {}\n", e.path().display()));
                    s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        for s in &self.sockets {
            let _ = std::fs::remove_file(s);
        }
    }
}

pub fn wg_keypair() -> (String, String) {
    let private = run(&["wg", "genkey"]);
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg pubkey");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(private.as_bytes()).expect("write key");
    }
    let out = child.wait_with_output().expect("wg pubkey");
    (
        private,
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

/// Sends 8 MiB over one TCP connection from `client_ns` (bound to `client_src`) to
/// `server_addr` in `server_ns`, and checks that exactly those bytes arrived (length and
/// SHA-256 on both ends). Bulk TCP is what exercises the offload paths: TSO super-packets read
/// from a TUN device, coalesced writes into one.
pub fn tcp_transfer(server_ns: &str, server_addr: &str, client_ns: &str, client_src: &str) {
    tcp_transfer_bytes(server_ns, server_addr, client_ns, client_src, 8 << 20);
}

/// [`tcp_transfer`] of `bytes` bytes; the addresses may be IPv4 or IPv6.
pub fn tcp_transfer_bytes(
    server_ns: &str,
    server_addr: &str,
    client_ns: &str,
    client_src: &str,
    bytes: usize,
) {
    const SERVER: &str = r#"
import hashlib, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5201)); s.listen(1); s.settimeout(60); print("ready", flush=True)
c, _ = s.accept(); c.settimeout(60); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)
"#;
    const CLIENT: &str = r#"
import hashlib, socket, sys
n = int(sys.argv[3])
block = bytes((i * 7) % 251 for i in range(1 << 16))
data = (block * (n // len(block) + 1))[:n]
c = socket.create_connection((sys.argv[1], 5201), timeout=60, source_address=(sys.argv[2], 0))
c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"#;
    use std::io::{BufRead, BufReader};
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            server_ns,
            "timeout",
            "90",
            "python3",
            "-c",
            SERVER,
            server_addr,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    let n = bytes.to_string();
    let sent = run(&[
        "ip",
        "netns",
        "exec",
        client_ns,
        "timeout",
        "90",
        "python3",
        "-c",
        CLIENT,
        server_addr,
        client_src,
        &n,
    ]);
    let received = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = server.wait();
    assert_eq!(
        received, sent,
        "{client_src} → {server_addr}: the bytes differ (or the transfer stalled)"
    );
    assert!(sent.starts_with(&format!("{bytes} ")), "{sent}");
}

pub fn ping(ns: &str, from: Option<&str>, to: &str) -> bool {
    let mut args = vec!["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1"];
    if let Some(f) = from {
        args.extend_from_slice(&["-I", f]);
    }
    args.push(to);
    succeeds(&args)
}

#[test]
fn s2s_1_worker_and_wireguard_go_site_ping_and_tcp_both_ways_in_namespaces() {
    if let Some(why) = skip_reason() {
        println!(
            "SKIPPED s2s_1_worker_and_wireguard_go_site_ping_and_tcp_both_ways_in_namespaces: {why}"
        );
        return;
    }
    let mut lab = Lab::new("p");
    let id = lab.id.clone();
    let gw_ns = lab.netns("gw");
    let site_ns = lab.netns("site");
    lab.link(
        (&gw_ns, &format!("vg{id}"), "10.250.0.1/30"),
        (&site_ns, &format!("vs{id}"), "10.250.0.2/30"),
    );

    let (gw_private, gw_public) = wg_keypair();
    let (site_private, site_public) = wg_keypair();
    let psk = run(&["wg", "genpsk"]);

    // The gateway: VNet 10.200.1.0/24 behind the TUN, the site's 10.200.2.0/24 in its tunnel.
    let mut peer = s2s_peer(
        "a",
        0,
        "10.250.0.2:51900".parse().expect("addr"),
        &["10.200.2.0/24"],
    );
    peer.public_key = site_public;
    peer.preshared_key = Some(Secret::new(psk.clone()));
    let mut g = gateway(
        "gw",
        0,
        51820,
        vec![peer],
        vec![
            vnet_route("10.200.1.0/24"),
            route("10.200.2.0/24", s2s_hop("a")),
        ],
    );
    g.private_key = Secret::new(gw_private);
    // GW-10: the gateway's own address in its GatewaySubnet (10.200.1.224/27 + 4), which the
    // worker puts on its TUN device, with a route for the site's prefix; the test adds neither.
    g.private_address = isthmus_shared::desired::gateway_instance_address(
        "10.200.1.224/27".parse().expect("subnet"),
        0,
    );
    assert_eq!(
        g.private_address,
        Some("10.200.1.228".parse().expect("addr"))
    );
    let json = serde_json::to_string(&DesiredStateMessage::V1(state(1, vec![g]))).expect("json");
    let desired = lab.write("desired.json", &json);
    let tun = format!("it{id}");
    lab.worker(&gw_ns, &desired, &["--tun-name", &tun]);
    wait_for("the worker's TUN device", Duration::from_secs(20), || {
        succeeds(&["ip", "-n", &gw_ns, "link", "show", &tun])
    });

    let key = lab.write("site.key", &site_private);
    let pskf = lab.write("site.psk", &psk);
    let (key, pskf) = (key.display().to_string(), pskf.display().to_string());
    lab.wireguard_go(
        &site_ns,
        &format!("ws{id}"),
        &[
            "private-key",
            &key,
            "listen-port",
            "51900",
            "peer",
            &gw_public,
            "preshared-key",
            &pskf,
            "endpoint",
            "10.250.0.1:51820",
            "allowed-ips",
            "10.200.1.0/24",
        ],
        "10.200.2.1/24",
        &["10.200.1.0/24"],
    );

    let site_to_vnet = (0..20).any(|_| ping(&site_ns, Some("10.200.2.1"), "10.200.1.228"));
    assert!(site_to_vnet, "site → VNet ping failed\n{}", lab.logs());
    let vnet_to_site = (0..10).any(|_| ping(&gw_ns, None, "10.200.2.1"));
    assert!(vnet_to_site, "VNet → site ping failed\n{}", lab.logs());
    // Bulk TCP both ways: the site's segments are coalesced into the worker's TUN (GRO), the
    // VNet's TSO super-packets are split, encrypted and batched to the site.
    tcp_transfer(&gw_ns, "10.200.1.228", &site_ns, "10.200.2.1");
    tcp_transfer(&site_ns, "10.200.2.1", &gw_ns, "10.200.1.228");
    let wg = run(&[
        "ip",
        "netns",
        "exec",
        &site_ns,
        "wg",
        "show",
        &format!("ws{id}"),
        "latest-handshakes",
    ]);
    assert!(!wg.ends_with("\t0"), "wireguard-go saw no handshake: {wg}");
}
