//! `isthmus-server`: the control plane.
//!
//! The REST API under `/api/v1`, the portal's static files, persistence on SQLite
//! or PostgreSQL (sea-orm), and the worker protocol. The server is the authority:
//! every write is validated by `isthmus-shared`. It keeps no state that only one
//! process knows: worker leases live in the database, so replicas can share it.

pub mod api;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod declarative;
pub mod error;
pub mod p2s;
pub mod secrets;
pub mod serve;
pub mod state;
pub mod store;
pub mod tokens;

pub use serve::serve;
pub use state::AppState;

/// The whole application ([`api::app`]) with the server-wide response rules
/// (`Cache-Control: no-store` on the API); tests call it in-process.
pub fn app(state: AppState) -> axum::Router {
    api::app(state).layer(axum::middleware::from_fn(serve::no_store))
}
