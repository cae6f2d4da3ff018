//! The command line of `isthmus-client`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use isthmus_shared::model::QualifiedName;

use crate::enrol::{EnrolError, EnrolOptions, enrol};

#[derive(Debug, Parser)]
#[command(name = "isthmus-client", version = isthmus_shared::VERSION, about = "Isthmus point-to-site client")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrol this machine on a gateway with a client certificate and write its wg-quick
    /// configuration (P2S-3).
    Enrol(EnrolArgs),
    /// Relay a stock WireGuard client's traffic: over TLS on TCP (port 443, P2S-4) when UDP
    /// is blocked, or with --udp over UDP, failing over between a redundant gateway's two
    /// instances. Point the WireGuard client's peer Endpoint at --listen (--write-config
    /// writes such a configuration); runs until interrupted.
    #[command(long_about = CONNECT_ABOUT)]
    Connect(ConnectArgs),
}

const CONNECT_ABOUT: &str = "\
Relay a stock WireGuard client's traffic to the gateway. Point the WireGuard client's peer \
Endpoint at --listen (--write-config writes such a configuration); runs until interrupted.

Without --udp: the P2S-4 TCP transport, over TLS on TCP (port 443) for networks that block \
UDP, to the package's `# TcpEndpoint`.

With --udp: over UDP, for a redundant gateway whose package names two instances (`Endpoint` \
and `# FailoverEndpoint`). A NAT may keep the new active instance out after a failover; this \
relay sends to the current instance, also sends handshake initiations and keepalives to the \
other one (keeping the NAT open towards it; a standby drops them), makes whichever instance \
last sent a datagram current, and switches to the other instance when the current one leaves \
a handshake initiation unanswered for --failover-after-ms. Datagrams from any other address \
are dropped.

In both modes a redundant gateway's other instance is used when the current one fails: the TCP \
transport moves to the `# FailoverTcpEndpoint` when its connection drops or leaves a handshake \
initiation unanswered for --failover-after-ms.";

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The wg-quick configuration `isthmus-client enrol` wrote.
    #[arg(long)]
    pub config: PathBuf,
    /// The worker's TCP transport, HOST:PORT; by default the peer's `# TcpEndpoint` line.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "udp")]
    pub tcp: Option<String>,
    /// Relay over UDP to the gateway's instances (the peer's `Endpoint`, then its
    /// `# FailoverEndpoint`), failing over between them, instead of over TCP.
    #[arg(long)]
    pub udp: bool,
    /// How long the current instance may leave a handshake initiation unanswered before the
    /// relay switches to the gateway's other instance (WireGuard retransmits every 5 s).
    #[arg(long, default_value_t = 3000, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub failover_after_ms: u64,
    /// The local UDP endpoint offered to the WireGuard client.
    #[arg(long, default_value = crate::connect::DEFAULT_LISTEN, value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// The peer (gateway public key) to relay; by default the first with a TCP endpoint (the
    /// first with --udp).
    #[arg(long, value_name = "PUBLIC_KEY")]
    pub peer: Option<String>,
    /// Write a copy of the configuration whose peer Endpoint is the local UDP endpoint
    /// (mode 0600), ready for wg-quick or `wg setconf` (after removing wg-quick's own keys).
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// The Isthmus server, e.g. `https://vpn.example.com`
    #[arg(long, env = "ISTHMUS_SERVER")]
    pub server: String,
    /// PEM file: the client certificate, then any intermediates.
    #[arg(long)]
    pub cert: PathBuf,
    /// PEM file: the certificate's private key (it never leaves this machine).
    #[arg(long)]
    pub key: PathBuf,
    /// The gateway: NAME (with --tenant) or TENANT/NAME.
    #[arg(long)]
    pub gateway: String,
    /// The gateway's tenant.
    #[arg(long, env = "ISTHMUS_TENANT")]
    pub tenant: Option<String>,
    /// Where to write the wg-quick configuration (mode 0600); standard output by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the configuration as a QR code (SVG) here, for WireGuard's mobile apps.
    #[arg(long)]
    pub qr: Option<PathBuf>,
    /// The client's name on the gateway; by default derived from the certificate.
    #[arg(long)]
    pub name: Option<String>,
    /// Let the server generate the WireGuard key pair (by default it is generated here).
    #[arg(long)]
    pub server_generates_key: bool,
    /// PEM file of a CA to trust for the server's HTTPS certificate.
    #[arg(long)]
    pub server_ca: Option<PathBuf>,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Enrol(#[from] EnrolError),
    #[error("{0}")]
    Connect(#[from] crate::connect::ConnectError),
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `text` to `path`, readable only by its owner (it may hold a private key).
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| CliError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// The gateway named by `--gateway` and `--tenant`.
pub fn gateway_of(gateway: &str, tenant: Option<&str>) -> Result<QualifiedName, CliError> {
    match (gateway.split_once('/'), tenant) {
        (Some((t, g)), None) => Ok(QualifiedName::new(t, g)),
        (Some((t, g)), Some(given)) if t == given => Ok(QualifiedName::new(t, g)),
        (Some(_), Some(given)) => Err(CliError::Usage(format!(
            "--gateway {gateway} names another tenant than --tenant {given}"
        ))),
        (None, Some(t)) => Ok(QualifiedName::new(t, gateway)),
        (None, None) => Err(CliError::Usage(format!(
            "which tenant? give --tenant T or --gateway T/{gateway}"
        ))),
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

async fn connect(a: ConnectArgs) -> Result<String, CliError> {
    let config = read(&a.config)?;
    let failover_after = std::time::Duration::from_millis(a.failover_after_ms);
    let write_config = |public_key: &str, local| -> Result<String, CliError> {
        match &a.write_config {
            Some(p) => {
                write_private(
                    p,
                    &crate::connect::adjusted_config(&config, public_key, local),
                )?;
                Ok(format!(" (as {} does)", p.display()))
            }
            None => Ok(String::new()),
        }
    };
    if a.udp {
        let plan = crate::connect::plan_udp(&config, a.peer.as_deref())?;
        let relay =
            crate::udp_relay::UdpRelay::start(a.listen, &plan.instances, failover_after).await?;
        let local = relay.local_addr();
        let written = write_config(&plan.peer.public_key, local)?;
        eprintln!(
            "relaying peer {} over UDP to {} (failing over after {} ms without an answer): point the WireGuard client's peer Endpoint at {local}{written}; Ctrl-C stops",
            plan.peer.public_key,
            plan.instances.join(" and "),
            a.failover_after_ms,
        );
        shutdown_signal().await;
        return Ok(format!("UDP relay stopped ({:?})", relay.stats()));
    }
    let plan = crate::connect::plan(&config, a.peer.as_deref(), a.tcp.as_deref())?;
    let endpoints = plan.tcp_endpoints();
    let relay = crate::connect::ClientRelay::start_failover(
        a.listen,
        &endpoints,
        plan.gateway_port,
        failover_after,
    )
    .await?;
    let local = relay.local_addr();
    let written = write_config(&plan.peer.public_key, local)?;
    eprintln!(
        "relaying peer {} over TLS/TCP {} (gateway UDP port {}): point the WireGuard client's peer Endpoint at {local}{written}; Ctrl-C stops",
        plan.peer.public_key,
        endpoints.join(" or "),
        plan.gateway_port,
    );
    shutdown_signal().await;
    Ok(format!("TCP transport stopped ({:?})", relay.stats()))
}

/// Runs a command; returns what to tell the user on standard error.
pub async fn run(cli: Cli) -> Result<String, CliError> {
    match cli.command {
        Command::Connect(a) => connect(a).await,
        Command::Enrol(a) => {
            let gateway = gateway_of(&a.gateway, a.tenant.as_deref())?;
            let opts = EnrolOptions {
                server: a.server.clone(),
                gateway,
                certificate_chain: read(&a.cert)?,
                private_key: read(&a.key)?,
                name: a.name.clone(),
                server_generates_key: a.server_generates_key,
                server_ca: a.server_ca.as_deref().map(read).transpose()?,
            };
            let done = enrol(&opts).await?;
            match &a.out {
                Some(p) => write_private(p, &done.config)?,
                None => print!("{}", done.config),
            }
            if let Some(p) = &a.qr {
                let svg = done.response.config_qr_svg.as_deref().ok_or_else(|| {
                    CliError::Usage(
                        "the configuration is too long for one QR code; use the file".to_owned(),
                    )
                })?;
                write_private(p, svg)?;
            }
            let r = &done.response;
            Ok(format!(
                "{} client `{}` on gateway {} with address {} (certificate {}){}",
                if r.renewed { "renewed" } else { "enrolled" },
                r.client,
                r.gateway,
                r.address,
                r.certificate_thumbprint,
                a.out
                    .as_ref()
                    .map(|p| format!("; configuration written to {}", p.display()))
                    .unwrap_or_default()
            ))
        }
    }
}
