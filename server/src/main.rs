//! `isthmus`: the server and its admin CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use isthmus_server::config::{DEFAULT_LEASE_SECONDS, ServerConfig};
use isthmus_server::{AppState, app, db, tokens};

#[derive(Parser)]
#[command(
    name = "isthmus",
    version,
    about = "Isthmus: a self-hosted VPN gateway service"
)]
struct Cli {
    /// Directory of the server's own files (SQLite database, worker token).
    #[arg(long, global = true, env = "ISTHMUS_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH?mode=rwc or postgres://...; default SQLite under --data-dir.
    #[arg(long, global = true, env = "DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server and serve the portal.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "ISTHMUS_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory of the Trunk-built portal.
        #[arg(long, env = "ISTHMUS_PORTAL_DIR", default_value = "dist")]
        portal_dir: PathBuf,
        /// A worker token to accept (otherwise one is created in DATA_DIR/worker.token).
        #[arg(long, env = "ISTHMUS_WORKER_TOKEN", hide_env_values = true)]
        worker_token: Option<String>,
        /// Seconds a worker stays listed as connected after its last heartbeat.
        #[arg(long, default_value_t = DEFAULT_LEASE_SECONDS)]
        lease_seconds: u32,
    },
    /// Manage API and worker tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// Create a worker enrolment token with this name.
        #[arg(long, value_name = "NAME")]
        worker: String,
    },
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating the data directory {}", cli.data_dir.display()))?;

    match cli.command {
        Command::Serve {
            listen,
            portal_dir,
            worker_token,
            lease_seconds,
        } => {
            let config = ServerConfig {
                listen,
                data_dir: cli.data_dir,
                database_url: cli.database_url,
                portal_dir,
                lease_seconds,
            };
            serve(config, worker_token).await
        }
        Command::Token {
            command: TokenCommand::Create { worker },
        } => {
            let config_url = cli.database_url.unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rwc",
                    cli.data_dir.join("isthmus.db").display()
                )
            });
            let (conn, _) = db::connect(&config_url)
                .await
                .context("opening the database")?;
            let token = tokens::generate_worker_token()?;
            tokens::ensure_worker_token(&conn, &worker, &token, now_ms())
                .await
                .with_context(|| format!("storing worker token `{worker}` (is the name taken?)"))?;
            println!("{token}");
            Ok(())
        }
    }
}

async fn serve(config: ServerConfig, worker_token: Option<String>) -> anyhow::Result<()> {
    let url = config.effective_database_url();
    let (conn, kind) = db::connect(&url)
        .await
        .with_context(|| format!("opening the database {}", db::redact(&url)))?;
    tracing::info!(database = kind.as_str(), "database ready");

    let token = match worker_token {
        Some(t) => t,
        None => {
            let path = config.data_dir.join("worker.token");
            match std::fs::read_to_string(&path) {
                Ok(t) => t.trim().to_owned(),
                Err(_) => {
                    let t = tokens::generate_worker_token()?;
                    write_secret_file(&path, &t)?;
                    tracing::info!(path = %path.display(), "created a worker token for local workers");
                    t
                }
            }
        }
    };
    tokens::ensure_worker_token(&conn, "bootstrap", &token, now_ms())
        .await
        .context("registering the bootstrap worker token")?;

    if !config.portal_dir.join("index.html").exists() {
        tracing::warn!(
            portal_dir = %config.portal_dir.display(),
            "no portal build found (index.html missing); build it with `trunk build --release` or pass --portal-dir"
        );
    }

    let state = AppState::new(conn, kind, config.portal_dir.clone(), config.lease_seconds);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {} (is the port in use?)", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "isthmus listening: open http://{addr}/");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
