//! REST body types of `/api/v1`.

use serde::{Deserialize, Serialize};

/// Which database engine backs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
    }
}

/// A worker as seen by the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSummary {
    /// The name the worker announced (defaults to its host name).
    pub name: String,
    /// The worker's own version string.
    pub version: String,
    /// RFC 3339 time of the worker's last heartbeat.
    pub last_seen: String,
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `"ok"` when the database answers.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// The database engine in use.
    pub database: DatabaseKind,
    /// Workers whose lease is current, sorted by name.
    pub workers: Vec<WorkerSummary>,
}

/// The body of every error response of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`not_found`, `bad_request`, ...).
    pub error: String,
    /// What is wrong and how to fix it, for a person.
    pub message: String,
}
