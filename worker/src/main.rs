//! `isthmus-worker`: connects to the server and carries the gateways' traffic.
//!
//! Logs: `RUST_LOG` sets the filter; the default is `info,boringtun=off`. The worker logs one
//! INFO line when a tunnel comes up or goes down and one rate-limited WARN per failing
//! connection, each naming tenant, gateway, connection and peer endpoint, so boringtun's own
//! timer messages (`HANDSHAKE(REKEY_TIMEOUT)` every 5 s, naming no connection) are off by default
//! (`RUST_LOG=info,boringtun=debug` shows them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use isthmus_shared::backoff::Backoff;
use isthmus_shared::desired::{DesiredState, DesiredStateMessage};
use isthmus_worker::control::{ControlClient, ControlError};
use isthmus_worker::io::{DataPlane, DataPlaneConfig};
use isthmus_worker::tcp_relay::{TcpRelay, TcpRelayConfig, gateway_address_for};

#[derive(Parser)]
#[command(
    name = "isthmus-worker",
    version,
    about = "Isthmus gateway worker (WireGuard data plane)"
)]
struct Cli {
    /// The server's base URL.
    #[arg(long, env = "ISTHMUS_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The worker token (`isthmus token create --worker NAME`, or DATA_DIR/worker.token).
    #[arg(
        long,
        env = "ISTHMUS_WORKER_TOKEN",
        hide_env_values = true,
        required_unless_present = "desired_state"
    )]
    token: Option<String>,
    /// This worker's name, unique per token; defaults to the host name.
    #[arg(long, env = "ISTHMUS_WORKER_NAME")]
    name: Option<String>,
    /// Run from a desired-state file (JSON `isthmus.desired/v1`) instead of a server.
    #[arg(long, value_name = "FILE")]
    desired_state: Option<PathBuf>,
    /// The address the gateways' UDP ports bind to.
    #[arg(long, env = "ISTHMUS_BIND_ADDRESS", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind_address: IpAddr,
    /// The TUN device of the VNet side.
    #[arg(long, env = "ISTHMUS_TUN_NAME", default_value = "isthmus0")]
    tun_name: String,
    /// An extra address for the TUN device, e.g. 10.1.0.1/16 (optional: the worker puts each
    /// gateway's own address, its GatewaySubnet's address + 4, on the TUN device itself).
    #[arg(long, env = "ISTHMUS_TUN_ADDRESS")]
    tun_address: Option<IpNet>,
    /// The address devices reach this worker at (the gateways' endpoints), sent to the server
    /// in every heartbeat; repeat it for several (IPv4 and IPv6), or comma-separate them in the
    /// environment variable. Default: the addresses of the interface that holds the default
    /// route. A NAT or DNAT address in front of the worker is allowed.
    #[arg(
        long = "public-address",
        env = "ISTHMUS_PUBLIC_ADDRESS",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    public_address: Vec<IpAddr>,
    /// The routing table of forced-tunnel default routes: a default route into a tunnel never
    /// goes into the main table (it would capture the host's own traffic); it goes here, used
    /// by traffic from the gateway's VNet prefixes through policy rules of priority 7370
    /// (`lookup main suppress_prefixlength 0`) and 7371 (`lookup` this table). The worker's
    /// routes and rules carry protocol 73 (`ip route show proto 73`).
    #[arg(long, env = "ISTHMUS_ROUTE_TABLE", default_value_t = isthmus_worker::host::plan::DEFAULT_ROUTE_TABLE,
          value_parser = clap::value_parser!(u32).range(1..=0xffff_fffe))]
    route_table: u32,
    /// The TUN device's MTU.
    #[arg(long, default_value_t = 1420)]
    tun_mtu: u16,
    /// Do not open a TUN device (forward between tunnels only).
    #[arg(long)]
    no_tun: bool,
    /// Seconds between status reports to the server (and writes of --status-file).
    #[arg(long, default_value_t = 5)]
    status_interval: u64,
    /// P2S-4: also carry point-to-site clients' WireGuard over TLS on this TCP address, for
    /// clients whose UDP is blocked (e.g. 0.0.0.0:443; the server's --p2s-tcp-port names the
    /// port in client packages).
    #[arg(long, env = "ISTHMUS_TCP_LISTEN", value_name = "ADDR:PORT")]
    tcp_listen: Option<SocketAddr>,
    /// PEM certificate chain for the TCP transport's TLS (default: self-signed, generated at
    /// start; clients do not verify it, WireGuard authenticates end to end).
    #[arg(long, requires = "tcp_key", value_name = "FILE")]
    tcp_cert: Option<PathBuf>,
    /// PEM private key of --tcp-cert.
    #[arg(long, requires = "tcp_cert", value_name = "FILE")]
    tcp_key: Option<PathBuf>,
    /// TCP transport connections open at once.
    #[arg(long, default_value_t = 1024)]
    tcp_max_connections: usize,
    /// Also write the worker's own status as JSON to this file every --status-interval:
    /// each tunnel's state (up, or idled out by S2S-2), bytes, handshakes, and the drop counters.
    #[arg(long, env = "ISTHMUS_STATUS_FILE", value_name = "FILE")]
    status_file: Option<PathBuf>,
    /// Issue 16: the UDP port on --bind-address where this worker receives the failover
    /// heartbeats of the redundant gateways' instances it runs (stated to the server as its
    /// first public address and this port); 0 disables them: the worker then gets no
    /// redundant instances.
    #[arg(long, env = "ISTHMUS_HEARTBEAT_PORT", default_value_t = 51899)]
    heartbeat_port: u16,
    /// Issue 16: this worker's failure domain (a rack, a room, a site): the two instances of a
    /// gateway go to workers of different zones when possible.
    #[arg(long, env = "ISTHMUS_ZONE", value_name = "LABEL")]
    zone: Option<String>,
    /// Test only: the S2S-2 idle time of policy-based tunnels in seconds, instead of the
    /// desired state's 5 minutes, so tests can watch a tunnel idle out.
    #[arg(long, hide = true, value_name = "SECONDS")]
    policy_idle_secs: Option<u64>,
    /// Test only: how long a peer with a persistent keepalive may stay silent before its
    /// tunnel is no longer up, instead of 65 s, so tests can watch a tunnel go down.
    #[arg(long, hide = true, value_name = "SECONDS")]
    peer_silence_secs: Option<u64>,
}

impl Cli {
    async fn start_tcp_relay(&self) -> anyhow::Result<Option<TcpRelay>> {
        let Some(listen) = self.tcp_listen else {
            return Ok(None);
        };
        let cfg = TcpRelayConfig {
            listen,
            certificate: self.tcp_cert.clone().zip(self.tcp_key.clone()),
            gateway_address: gateway_address_for(self.bind_address),
            max_connections: self.tcp_max_connections,
            idle_timeout: Duration::from_secs(180),
        };
        Ok(Some(TcpRelay::start(&cfg).await?))
    }
}

/// Binds the heartbeat socket (`--heartbeat-port`); a port that cannot be bound is logged and
/// the worker runs without redundant instances.
fn bind_heartbeat(cli: &Cli) -> Option<std::net::UdpSocket> {
    if cli.heartbeat_port == 0 {
        tracing::info!(
            "--heartbeat-port 0: no failover heartbeats; this worker gets no redundant gateway instances"
        );
        return None;
    }
    let addr = SocketAddr::new(cli.bind_address, cli.heartbeat_port);
    match isthmus_worker::io::bind_heartbeat(addr) {
        Ok(s) => {
            tracing::info!(%addr, "failover heartbeat socket open");
            Some(s)
        }
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot bind the failover heartbeat port (--heartbeat-port): this worker gets no redundant gateway instances");
            None
        }
    }
}

/// Starts the data plane and serves the heartbeat socket on it.
fn start_data_plane(cfg: &DataPlaneConfig, heartbeat: Option<std::net::UdpSocket>) -> DataPlane {
    let dp = DataPlane::start(cfg);
    if let Some(s) = heartbeat
        && let Err(e) = dp.serve_heartbeats(s)
    {
        tracing::error!(error = %e, "cannot serve the failover heartbeat socket");
    }
    dp
}

fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

/// Resolves peer endpoints given as `host:port` (the core takes addresses only).
async fn resolve_endpoints(desired: &mut DesiredState) {
    for g in &mut desired.gateways {
        for p in &mut g.peers {
            let Some(ep) = p.endpoint.clone() else {
                continue;
            };
            if ep.parse::<SocketAddr>().is_ok() {
                continue;
            }
            match tokio::net::lookup_host(ep.as_str()).await {
                Ok(mut addrs) => {
                    if let Some(a) = addrs.next() {
                        p.endpoint = Some(a.to_string());
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = %p.name, endpoint = %ep, error = %e, "cannot resolve the peer endpoint; waiting for the peer to connect");
                }
            }
        }
    }
}

async fn apply(dp: &DataPlane, relay: Option<&TcpRelay>, mut desired: DesiredState) {
    resolve_endpoints(&mut desired).await;
    dp.apply(&desired).await;
    if let Some(r) = relay {
        r.apply(&desired);
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

/// Writes `--status-file` every `every`.
async fn write_status(dp: DataPlane, path: PathBuf, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        match dp.local_status().write(&path) {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(file = %path.display(), error = %e, "cannot write the status file; check that its directory exists and is writable");
            }
            Err(_) => {}
        }
    }
}

async fn run_from_file(
    dp: DataPlane,
    relay: Option<TcpRelay>,
    path: PathBuf,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the desired state {}: {e}", path.display()))?;
    let DesiredStateMessage::V1(desired) = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a desired state (JSON with \"format\":\"isthmus.desired/v1\"): {e}",
            path.display()
        )
    })?;
    tracing::info!(file = %path.display(), version = desired.version, "running from a desired-state file, without a server");
    apply(&dp, relay.as_ref(), desired).await;
    shutdown_signal().await;
    tracing::info!("worker stopping");
    dp.shutdown().await;
    Ok(())
}

async fn poll_desired(client: ControlClient, name: String, dp: DataPlane, relay: Option<TcpRelay>) {
    let mut since = 0u64;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        match client.desired(&name, since).await {
            Ok(Some(d)) => {
                backoff.reset();
                since = d.version;
                apply(&dp, relay.as_ref(), d).await;
            }
            Ok(None) => backoff.reset(),
            Err(e) => {
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_s = d.as_secs(), "cannot fetch the desired state; forwarding on the last one");
                tokio::time::sleep(d).await;
            }
        }
    }
}

async fn push_status(
    client: ControlClient,
    name: String,
    dp: DataPlane,
    relay: Option<TcpRelay>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Issue 16: a role change is reported at once (the server adopts a takeover from it).
        tokio::select! {
            _ = tick.tick() => {}
            () = dp.role_changed() => {}
        }
        let report = dp.status();
        if let Err(e) = client.status(&name, report).await {
            tracing::debug!(error = %e, "status report not delivered");
        }
        tracing::debug!(drops = ?dp.counters(), "drop counters");
        if let Some(r) = &relay {
            tracing::debug!(tcp = ?r.stats(), "TCP transport counters");
        }
    }
}

// mimalloc instead of the system allocator: the data plane frees and allocates buffers of up to
// 64 KiB on every batch (GSO datagrams, coalesced TUN writes), and glibc's malloc returned that
// memory to the kernel at the top of its heap and faulted it in again each time: 20 times the
// page faults per GiB and about 15% of the throughput (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread runs the whole worker. The data plane's work per packet is short and the core sits
// behind one lock, so a second runtime thread bought nothing but cross-thread wake-ups and lock
// hand-offs (measured: about 15% less throughput with two threads on two cores). A host with
// more cores runs more workers, one per core, with gateways pinned to each (`PUT
// /api/v1/placements/{tenant}/{gateway}`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,boringtun=off".into()),
        )
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    let name = cli.name.clone().unwrap_or_else(default_name);
    let cfg = DataPlaneConfig {
        bind_address: cli.bind_address,
        tun_name: cli.tun_name.clone(),
        tun_address: cli.tun_address,
        tun_mtu: cli.tun_mtu,
        no_tun: cli.no_tun,
        policy_idle_override: cli.policy_idle_secs.map(Duration::from_secs),
        route_table: cli.route_table,
        peer_silence: cli.peer_silence_secs.map(Duration::from_secs),
    };
    if matches!(cli.route_table, 253..=255) {
        anyhow::bail!(
            "--route-table {} is one of the kernel's own tables (default, main, local); pick another number",
            cli.route_table
        );
    }
    let public = isthmus_worker::host::public::public_addresses(&cli.public_address).await;
    if let Some(s) = cli.policy_idle_secs {
        tracing::warn!(
            idle_s = s,
            "test option --policy-idle-secs: policy-based tunnels idle out after {s} s instead of 5 minutes (S2S-2)"
        );
    }
    let status_every = Duration::from_secs(cli.status_interval.max(1));
    let heartbeat = bind_heartbeat(&cli);
    if let Some(path) = cli.desired_state.clone() {
        let dp = start_data_plane(&cfg, heartbeat);
        if let Some(f) = cli.status_file.clone() {
            tokio::spawn(write_status(dp.clone(), f, status_every));
        }
        let relay = cli.start_tcp_relay().await?;
        return run_from_file(dp, relay, path).await;
    }
    let token = cli
        .token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--token is required without --desired-state"))?;
    // The partner reaches this worker's heartbeats at its first public address.
    let heartbeat_address = heartbeat
        .as_ref()
        .zip(public.first())
        .map(|(_, ip)| SocketAddr::new(*ip, cli.heartbeat_port));
    if heartbeat.is_some() && heartbeat_address.is_none() {
        tracing::warn!(
            "no public address: the worker states no heartbeat address and gets no redundant gateway instances"
        );
    }
    let mut heartbeat = heartbeat;
    let client = ControlClient::new(&cli.server, token)?
        .with_public_addresses(public)
        .with_instances(heartbeat_address, cli.zone.clone());
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut connected = false;
    let mut data_plane: Option<DataPlane> = None;
    tracing::info!(server = %cli.server, %name, "worker starting");
    loop {
        let delay = match client.heartbeat(&name).await {
            Ok(ack) => {
                if !connected {
                    tracing::info!(server = %cli.server, lease_seconds = ack.lease_seconds, "connected to the server");
                    connected = true;
                }
                if data_plane.is_none() {
                    // Started after the server accepted the token, so a refused worker exits
                    // without touching the network.
                    let dp = start_data_plane(&cfg, heartbeat.take());
                    let relay = cli.start_tcp_relay().await?;
                    tokio::spawn(poll_desired(
                        client.clone(),
                        name.clone(),
                        dp.clone(),
                        relay.clone(),
                    ));
                    tokio::spawn(push_status(
                        client.clone(),
                        name.clone(),
                        dp.clone(),
                        relay,
                        status_every,
                    ));
                    if let Some(f) = cli.status_file.clone() {
                        tokio::spawn(write_status(dp.clone(), f, status_every));
                    }
                    data_plane = Some(dp);
                }
                backoff.reset();
                Duration::from_secs(u64::from(ack.lease_seconds.max(3)) / 3)
            }
            Err(ControlError::Refused { status, message }) if status == 401 || status == 400 => {
                anyhow::bail!("the server refused this worker ({status}): {message}");
            }
            Err(e) => {
                connected = false;
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_s = d.as_secs(), "server unreachable; keeping the last state and retrying");
                d
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown_signal() => {
                tracing::info!("worker stopping");
                if let Some(dp) = &data_plane {
                    dp.shutdown().await;
                }
                return Ok(());
            }
        }
    }
}
