//! The state shared by every request handler.

use std::path::PathBuf;
use std::sync::Arc;

use isthmus_shared::api::DatabaseKind;
use sea_orm::DatabaseConnection;

use crate::secrets::Sealer;

/// Cheap to clone; everything durable is in the database.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    db_kind: DatabaseKind,
    portal_dir: PathBuf,
    lease_seconds: u32,
    sealer: Sealer,
}

impl AppState {
    pub fn new(
        db: DatabaseConnection,
        db_kind: DatabaseKind,
        portal_dir: PathBuf,
        lease_seconds: u32,
        sealer: Sealer,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                db_kind,
                portal_dir,
                lease_seconds,
                sealer,
            }),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn db_kind(&self) -> DatabaseKind {
        self.inner.db_kind
    }

    pub fn portal_dir(&self) -> &PathBuf {
        &self.inner.portal_dir
    }

    pub fn lease_seconds(&self) -> u32 {
        self.inner.lease_seconds
    }
}

impl AppState {
    /// Seals and opens secrets at rest.
    pub fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }
}
