//! Persistence: sea-orm entities, migrations, connection.
//!
//! Entities stay in this module; handlers convert them to `isthmus-shared`
//! types at the boundary.

pub mod entities;
pub mod migration;

use isthmus_shared::api::DatabaseKind;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

/// The `meta` row holding the topology version (bumped only by `store`; read by the
/// `Principal` extractor with the caller's tenant).
pub const VERSION_KEY: &str = "topology_version";

/// Which engine a URL names, or an error a user can act on.
pub fn kind_of(url: &str) -> Result<DatabaseKind, String> {
    if url.starts_with("sqlite:") {
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(DatabaseKind::Postgres)
    } else {
        Err(format!(
            "unsupported database URL `{}`: use sqlite://PATH?mode=rwc or postgres://USER:PASS@HOST:PORT/DB",
            redact(url)
        ))
    }
}

/// A URL with its password replaced, fit for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Connects, applies SQLite pragmas, and runs every pending migration.
pub async fn connect(url: &str) -> Result<(DatabaseConnection, DatabaseKind), DbErr> {
    let kind = kind_of(url).map_err(DbErr::Custom)?;
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false);
    if kind == DatabaseKind::Sqlite {
        // One writer at a time is SQLite's model; a small pool avoids lock storms.
        opts.max_connections(8);
        // Per connection (every pooled connection, not just the first): WAL with
        // synchronous=NORMAL (a commit survives a crash of the process; only a power loss can
        // lose the last commits, never corrupt the file), foreign keys, and a busy timeout for
        // writers of other processes (this process queues its own writers, see
        // `store::begin_write`).
        opts.map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(std::time::Duration::from_secs(5))
        });
    }
    let db = Database::connect(opts).await?;
    migration::Migrator::up(&db, None).await?;
    Ok((db, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_password() {
        assert_eq!(
            redact("postgres://app:s3cret@127.0.0.1:5432/isthmus"),
            "postgres://app:***@127.0.0.1:5432/isthmus"
        );
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn unknown_scheme_is_explained() {
        let err = kind_of("mysql://x").unwrap_err();
        assert!(err.contains("sqlite://"), "{err}");
    }
}
