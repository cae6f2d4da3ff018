//! `isthmus-worker`: connects to the server and carries the gateways' traffic.

use std::time::Duration;

use clap::Parser;
use isthmus_worker::backoff::Backoff;
use isthmus_worker::control::{ControlClient, ControlError};

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
    #[arg(long, env = "ISTHMUS_WORKER_TOKEN", hide_env_values = true)]
    token: String,
    /// This worker's name, unique per token; defaults to the host name.
    #[arg(long, env = "ISTHMUS_WORKER_NAME")]
    name: Option<String>,
}

fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let name = cli.name.unwrap_or_else(default_name);
    let client = ControlClient::new(&cli.server, cli.token)?;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut connected = false;
    tracing::info!(server = %cli.server, %name, "worker starting");
    loop {
        let delay = match client.heartbeat(&name).await {
            Ok(ack) => {
                if !connected {
                    tracing::info!(server = %cli.server, lease_seconds = ack.lease_seconds, "connected to the server");
                    connected = true;
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
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("worker stopping");
                return Ok(());
            }
        }
    }
}
