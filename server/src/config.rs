//! Server configuration, shared by the CLI and the tests.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How long a worker lease lasts after a heartbeat.
pub const DEFAULT_LEASE_SECONDS: u32 = 15;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Directory of the server's own files (SQLite database, master key, worker token).
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; `None` means SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// Directory of the Trunk-built portal (`index.html` and assets).
    pub portal_dir: PathBuf,
    /// Lease granted to a worker per heartbeat.
    pub lease_seconds: u32,
    /// Where gateways' public endpoints come from.
    pub endpoint_pool: crate::state::EndpointPool,
}

impl ServerConfig {
    /// The database URL actually used.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("isthmus.db").display()
            ),
        }
    }
}
