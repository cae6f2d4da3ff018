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
    /// HTTPS: the PEM certificate chain and private key (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsFiles>,
    /// Trusted proxies, `/metrics` without a token.
    pub security: crate::state::Security,
}

/// The server's own certificate chain and key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerConfig {
    /// What to warn about before serving: plain HTTP on an address other machines reach
    /// (logins, tokens, shared keys and enrolments would cross the network in clear).
    pub fn plain_http_warning(&self) -> Option<String> {
        if self.tls.is_some() || self.listen.ip().is_loopback() {
            return None;
        }
        Some(format!(
            "listening on {} without TLS: passwords, session cookies, API tokens, shared keys \
             and client packages cross the network in clear. Add --tls-cert FILE --tls-key FILE \
             (PEM), or listen on 127.0.0.1 behind a TLS reverse proxy and pass \
             --trusted-proxy ADDR so the server believes its X-Forwarded-For and \
             X-Forwarded-Proto",
            self.listen
        ))
    }

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
