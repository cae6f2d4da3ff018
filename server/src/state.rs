//! The state shared by every request handler.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use isthmus_shared::api::DatabaseKind;
use sea_orm::DatabaseConnection;

use crate::secrets::Sealer;

/// Where gateways' public endpoints come from (GW-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointPool {
    /// The address workers answer on.
    pub host: IpAddr,
    /// First UDP port handed out.
    pub first_port: u16,
    /// Last UDP port handed out.
    pub last_port: u16,
    /// P2S-4: the TCP port of the workers' TCP transport (`isthmus-worker --tcp-listen`),
    /// named in client packages; 0 offers none.
    pub p2s_tcp_port: u16,
}

impl Default for EndpointPool {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            first_port: 51820,
            last_port: 52819,
            p2s_tcp_port: isthmus_shared::tcp_transport::DEFAULT_TCP_PORT,
        }
    }
}

/// Settings of a running server that handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    pub portal_dir: PathBuf,
    pub lease_seconds: u32,
    pub endpoint_pool: EndpointPool,
}

/// How the server treats clients and credentials (`isthmus serve --trusted-proxy`,
/// `--public-metrics`, `--tls-cert`).
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed; from anyone else
    /// those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `/metrics` shows the named series (tenants, gateways, connections) without a token.
    pub public_metrics: bool,
}

/// Cheap to clone; everything durable is in the database.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    security: Arc<Security>,
}

struct Inner {
    /// The last topology this process loaded or wrote, with its version. A cache only:
    /// it is used when the database's version says it is current, so replicas stay correct.
    topology_cache: std::sync::Mutex<Option<(i64, Arc<isthmus_shared::model::Topology>)>>,
    /// Serialised lists by (tenant, kind), each with the topology version it was read at. A
    /// cache only, used when the database's version (read in the same request) matches.
    list_cache: std::sync::Mutex<ListCache>,
    /// Queues this process's writers (see `store::begin_write`).
    write_gate: Arc<tokio::sync::Mutex<()>>,
    db: DatabaseConnection,
    db_kind: DatabaseKind,
    settings: Settings,
    sealer: Sealer,
}

impl AppState {
    pub fn new(
        db: DatabaseConnection,
        db_kind: DatabaseKind,
        settings: Settings,
        sealer: Sealer,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                topology_cache: std::sync::Mutex::new(None),
                list_cache: std::sync::Mutex::new(ListCache::default()),
                write_gate: Arc::new(tokio::sync::Mutex::new(())),
                db,
                db_kind,
                settings,
                sealer,
            }),
            security: Arc::new(Security::default()),
        }
    }

    /// This state with `security` in force (the default trusts no proxy and keeps the named
    /// metrics behind a token).
    #[must_use]
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = Arc::new(security);
        self
    }

    pub fn security(&self) -> &Security {
        &self.security
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn db_kind(&self) -> DatabaseKind {
        self.inner.db_kind
    }

    pub fn portal_dir(&self) -> &PathBuf {
        &self.inner.settings.portal_dir
    }

    pub fn lease_seconds(&self) -> u32 {
        self.inner.settings.lease_seconds
    }

    pub fn endpoint_pool(&self) -> EndpointPool {
        self.inner.settings.endpoint_pool
    }

    /// Waits for this process's turn to write.
    pub async fn write_gate(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.inner.write_gate).lock_owned().await
    }

    /// Seals and opens secrets at rest.
    pub fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }
}

/// Lists cached by `(tenant, kind)`; all entries are dropped when a newer version arrives.
#[derive(Default)]
struct ListCache {
    version: i64,
    lists: HashMap<(String, &'static str), axum::body::Bytes>,
}

/// At most this many lists are kept (one version's worth of busy tenants).
const LIST_CACHE_ENTRIES: usize = 4096;

impl AppState {
    /// The serialised list of `kind` in `tenant` if it was cached at `version`.
    pub fn cached_list(
        &self,
        version: i64,
        tenant: &str,
        kind: &'static str,
    ) -> Option<axum::body::Bytes> {
        let guard = self.inner.list_cache.lock().ok()?;
        if guard.version != version {
            return None;
        }
        guard.lists.get(&(tenant.to_owned(), kind)).cloned()
    }

    /// Remembers a serialised list read at `version` (older versions are forgotten).
    pub fn cache_list(
        &self,
        version: i64,
        tenant: &str,
        kind: &'static str,
        list: &axum::body::Bytes,
    ) {
        let Ok(mut guard) = self.inner.list_cache.lock() else {
            return;
        };
        if version > guard.version {
            guard.version = version;
            guard.lists.clear();
        }
        if version == guard.version && guard.lists.len() < LIST_CACHE_ENTRIES {
            guard.lists.insert((tenant.to_owned(), kind), list.clone());
        }
    }

    /// The cached topology if it is the one at `version`.
    pub fn cached_topology(&self, version: i64) -> Option<Arc<isthmus_shared::model::Topology>> {
        let guard = self.inner.topology_cache.lock().ok()?;
        guard
            .as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, t)| Arc::clone(t))
    }

    /// Remembers the topology at `version` (keeps the newest).
    pub fn cache_topology(&self, version: i64, topology: Arc<isthmus_shared::model::Topology>) {
        if let Ok(mut guard) = self.inner.topology_cache.lock()
            && guard.as_ref().is_none_or(|(v, _)| *v <= version)
        {
            *guard = Some((version, topology));
        }
    }
}
