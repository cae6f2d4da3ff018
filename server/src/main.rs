//! `isthmus`: the server and its admin CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use isthmus_server::config::{DEFAULT_LEASE_SECONDS, ServerConfig};
use isthmus_server::secrets::Sealer;
use isthmus_server::{AppState, app, auth, db, tokens};

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
    /// The fallback host of gateway endpoints (GW-3), for gateways whose worker states no
    /// address of its own (`isthmus-worker --public-address`). Comma-separated like the
    /// worker's, so both can share one ISTHMUS_PUBLIC_ADDRESS; the first one is used. A
    /// loopback address (the default) draws a GW-10 warning on every gateway that gets it.
    #[arg(
        long,
        global = true,
        env = "ISTHMUS_PUBLIC_ADDRESS",
        default_value = "127.0.0.1",
        value_delimiter = ','
    )]
    public_address: Vec<std::net::IpAddr>,
    /// UDP ports handed out to gateways, FIRST-LAST.
    #[arg(long, global = true, env = "ISTHMUS_GATEWAY_PORTS", default_value = "51820-52819", value_parser = parse_port_range)]
    gateway_ports: (u16, u16),
    /// P2S-4: the TCP port the workers' TCP transport listens on (`isthmus-worker
    /// --tcp-listen`), named in point-to-site client packages; 0 names none.
    #[arg(long, global = true, env = "ISTHMUS_P2S_TCP_PORT", default_value_t = isthmus_shared::tcp_transport::DEFAULT_TCP_PORT)]
    p2s_tcp_port: u16,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    fn endpoint_pool(&self) -> isthmus_server::state::EndpointPool {
        isthmus_server::state::EndpointPool {
            host: self
                .public_address
                .first()
                .copied()
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
            first_port: self.gateway_ports.0,
            last_port: self.gateway_ports.1,
            p2s_tcp_port: self.p2s_tcp_port,
        }
    }
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
        /// Serve HTTPS with this PEM certificate chain (server certificate first); needs
        /// --tls-key. Without it the server speaks plain HTTP (fine on loopback only).
        #[arg(
            long,
            env = "ISTHMUS_TLS_CERT",
            requires = "tls_key",
            value_name = "FILE"
        )]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(
            long,
            env = "ISTHMUS_TLS_KEY",
            requires = "tls_cert",
            value_name = "FILE"
        )]
        tls_key: Option<PathBuf>,
        /// A reverse proxy (address or CIDR, repeatable or comma-separated) whose
        /// X-Forwarded-For (the client's address, for login and enrolment throttling) and
        /// X-Forwarded-Proto (https: Secure session cookies) are believed; from any other
        /// peer these headers are ignored.
        #[arg(long, env = "ISTHMUS_TRUSTED_PROXY", value_delimiter = ',', value_name = "ADDR", value_parser = parse_proxy)]
        trusted_proxy: Vec<ipnet::IpNet>,
        /// Serve the named series of /metrics (tenant, gateway and connection names) to
        /// anyone; by default they need an API token with the `metrics` scope and anonymous
        /// callers get aggregate figures only.
        #[arg(long, env = "ISTHMUS_PUBLIC_METRICS")]
        public_metrics: bool,
    },
    /// Print the whole topology as YAML (never secrets).
    Export,
    /// Apply a YAML topology: validated as a whole and written atomically.
    Apply {
        /// The YAML file (as written by `isthmus export`).
        file: PathBuf,
        /// Print the plan and any violations; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Administration: users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage API and worker tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Workers: list them, drain one before stopping it (issue 16), undrain it.
    Worker {
        #[command(subcommand)]
        command: WorkerCommand,
    },
}

#[derive(Subcommand)]
enum WorkerCommand {
    /// Every known worker: live, zone, draining, active and standby instances.
    List,
    /// Drain a worker: it gets no new instances and hands its active ones over to their
    /// standbys; stop it once it runs no active instance.
    Drain { name: String },
    /// Undrain a worker: it may take instances again (nothing moves back).
    Undrain { name: String },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user; the password is read from ISTHMUS_PASSWORD or standard input.
    CreateUser {
        username: String,
        /// Make the user an administrator (owner of every tenant).
        #[arg(long)]
        admin: bool,
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

fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("`{text}` is not an address or CIDR prefix, e.g. 127.0.0.1 or 10.0.0.0/8")
        })
}

fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let err = || format!("`{text}` is not a port range; write FIRST-LAST, e.g. 51820-52819");
    let (a, b) = text.split_once('-').ok_or_else(err)?;
    let a: u16 = a.trim().parse().map_err(|_| err())?;
    let b: u16 = b.trim().parse().map_err(|_| err())?;
    if a == 0 || b < a {
        return Err(err());
    }
    Ok((a, b))
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
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating the data directory {}", cli.data_dir.display()))?;

    let endpoint_pool = cli.endpoint_pool();
    match cli.command {
        Command::Serve {
            listen,
            portal_dir,
            worker_token,
            lease_seconds,
            tls_cert,
            tls_key,
            trusted_proxy,
            public_metrics,
        } => {
            let config = ServerConfig {
                listen,
                data_dir: cli.data_dir,
                database_url: cli.database_url,
                portal_dir,
                lease_seconds,
                endpoint_pool,
                tls: tls_cert
                    .zip(tls_key)
                    .map(|(cert, key)| isthmus_server::config::TlsFiles { cert, key }),
                security: isthmus_server::state::Security {
                    trusted_proxies: trusted_proxy,
                    public_metrics,
                },
            };
            serve(config, worker_token).await
        }
        Command::Export => {
            let state = cli_state(&cli).await?;
            let topology = isthmus_server::declarative::export(&state)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", serde_norway::to_string(&topology)?);
            Ok(())
        }
        Command::Apply { ref file, dry_run } => {
            let state = cli_state(&cli).await?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let desired: isthmus_shared::model::Topology = serde_norway::from_str(&text)
                .with_context(|| format!("{} is not a valid topology", file.display()))?;
            let who = isthmus_server::auth::Principal {
                user_id: 0,
                username: "cli".to_owned(),
                is_admin: true,
                token: None,
            };
            match isthmus_server::declarative::apply(&state, &who, &desired, dry_run).await {
                Ok(applied) => {
                    for l in &applied.lines {
                        println!("{l}");
                    }
                    if let Some(c) = &applied.committed {
                        for w in &c.warnings {
                            println!("warning {} {}: {}", w.rule, w.path, w.message);
                        }
                    }
                    match (applied.lines.is_empty(), dry_run) {
                        (true, _) => println!("no changes"),
                        (false, true) => {
                            println!("dry run: the plan is valid; nothing was changed")
                        }
                        (false, false) => println!("applied {} change(s)", applied.lines.len()),
                    }
                    Ok(())
                }
                Err(isthmus_server::error::ApiError::Unprocessable {
                    message,
                    violations,
                }) => {
                    for v in &violations {
                        eprintln!("{} {}: {}", v.rule, v.path, v.message);
                    }
                    anyhow::bail!("{message}")
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        Command::Admin {
            command: AdminCommand::CreateUser { username, admin },
        } => {
            let (conn, _) = open_db(&cli.data_dir, cli.database_url).await?;
            let password = match std::env::var("ISTHMUS_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            auth::create_user(&conn, &username, &password, admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "created user `{username}`{}",
                if admin { " (administrator)" } else { "" }
            );
            Ok(())
        }
        Command::Worker { ref command } => worker_command(&cli, command).await,
        Command::Token {
            command: TokenCommand::Create { worker },
        } => {
            let (conn, _) = open_db(&cli.data_dir, cli.database_url).await?;
            let token = tokens::generate_worker_token()?;
            tokens::ensure_worker_token(&conn, &worker, &token, now_ms())
                .await
                .with_context(|| format!("storing worker token `{worker}` (is the name taken?)"))?;
            println!("{token}");
            Ok(())
        }
    }
}

/// `isthmus worker ...`: acts on the database, like the other subcommands.
async fn worker_command(cli: &Cli, command: &WorkerCommand) -> anyhow::Result<()> {
    let state = cli_state(cli).await?;
    let who = isthmus_server::auth::Principal {
        user_id: 0,
        username: "cli".to_owned(),
        is_admin: true,
        token: None,
    };
    let (name, draining) = match command {
        WorkerCommand::List => {
            for w in isthmus_server::api::worker_list(&state).await? {
                println!(
                    "{}\t{}\tzone={}\t{}\tactive={}\tstandby={}\theartbeat={}",
                    w.summary.name,
                    if w.live { "live" } else { "down" },
                    w.summary.zone.as_deref().unwrap_or("-"),
                    if w.summary.draining {
                        "draining"
                    } else {
                        "serving"
                    },
                    w.summary.active_instances,
                    w.summary.standby_instances,
                    w.heartbeat_address.as_deref().unwrap_or("-"),
                );
            }
            return Ok(());
        }
        WorkerCommand::Drain { name } => (name, true),
        WorkerCommand::Undrain { name } => (name, false),
    };
    isthmus_server::store::workers::set_draining(&state, &who, name, draining)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if draining {
        println!(
            "worker `{name}` drained: it gets no new instances and hands its active ones over to their standbys; stop it once `isthmus worker list` shows active=0"
        );
    } else {
        println!("worker `{name}` undrained: it may take instances again (nothing moves back)");
    }
    Ok(())
}

async fn open_db(
    data_dir: &Path,
    database_url: Option<String>,
) -> anyhow::Result<(
    sea_orm::DatabaseConnection,
    isthmus_shared::api::DatabaseKind,
)> {
    let url = database_url.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("isthmus.db").display()
        )
    });
    db::connect(&url)
        .await
        .with_context(|| format!("opening the database {}", db::redact(&url)))
}

/// The state the CLI's topology commands work on (no server needed).
async fn cli_state(cli: &Cli) -> anyhow::Result<AppState> {
    let (conn, kind) = open_db(&cli.data_dir, cli.database_url.clone()).await?;
    let sealer = load_sealer(&cli.data_dir)?;
    let settings = isthmus_server::state::Settings {
        portal_dir: PathBuf::from("dist"),
        lease_seconds: DEFAULT_LEASE_SECONDS,
        endpoint_pool: cli.endpoint_pool(),
    };
    Ok(AppState::new(conn, kind, settings, sealer))
}

/// The master key: `ISTHMUS_MASTER_KEY` (base64), else DATA_DIR/master.key (created 0600).
fn load_sealer(data_dir: &Path) -> anyhow::Result<Sealer> {
    match std::env::var("ISTHMUS_MASTER_KEY") {
        Ok(k) => Sealer::from_base64(&k).context("ISTHMUS_MASTER_KEY"),
        Err(_) => Sealer::load_or_create(&data_dir.join("master.key")).map_err(Into::into),
    }
}

/// On first run (no users), creates `admin` with ISTHMUS_ADMIN_PASSWORD or a printed random password.
async fn ensure_first_admin(conn: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    use sea_orm::{EntityTrait, PaginatorTrait};
    if isthmus_server::db::entities::user::Entity::find()
        .count(conn)
        .await?
        > 0
    {
        return Ok(());
    }
    let (password, generated) = match std::env::var("ISTHMUS_ADMIN_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => {
            let bytes = isthmus_server::secrets::random_bytes::<12>()?;
            (hex::encode(bytes), true)
        }
    };
    auth::create_user(conn, "admin", &password, true)
        .await
        .map_err(|e| anyhow::anyhow!("creating the first administrator: {e}"))?;
    if generated {
        // Printed once to the terminal, on purpose; never to the log.
        println!("first run: created the administrator `admin` with password {password}");
        println!("(set ISTHMUS_ADMIN_PASSWORD before the first run to choose it)");
    } else {
        println!(
            "first run: created the administrator `admin` with the password from ISTHMUS_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

async fn serve(config: ServerConfig, worker_token: Option<String>) -> anyhow::Result<()> {
    let url = config.effective_database_url();
    let (conn, kind) = db::connect(&url)
        .await
        .with_context(|| format!("opening the database {}", db::redact(&url)))?;
    tracing::info!(database = kind.as_str(), "database ready");
    let sealer = load_sealer(&config.data_dir)?;
    ensure_first_admin(&conn).await?;

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

    let settings = isthmus_server::state::Settings {
        portal_dir: config.portal_dir.clone(),
        lease_seconds: config.lease_seconds,
        endpoint_pool: config.endpoint_pool,
    };
    let tls = match &config.tls {
        Some(f) => Some(
            isthmus_server::serve::load_tls(&f.cert, &f.key)
                .context("loading --tls-cert/--tls-key")?,
        ),
        None => None,
    };
    if let Some(warning) = config.plain_http_warning() {
        tracing::warn!("{warning}");
    }
    if config.security.public_metrics {
        tracing::warn!(
            "--public-metrics: /metrics shows every tenant's, gateway's and connection's name to anyone who can reach it"
        );
    }
    let state = AppState::new(conn, kind, settings, sealer).with_security(config.security.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {} (is the port in use?)", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, "isthmus listening: open {scheme}://{addr}/");
    isthmus_server::serve(listener, app(state), tls, shutdown_signal()).await?;
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
