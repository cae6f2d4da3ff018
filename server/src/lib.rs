//! `isthmus-server`: the control plane.
//!
//! The REST API under `/api/v1`, the portal's static files, persistence on SQLite
//! or PostgreSQL (sea-orm), and the worker protocol. The server is the authority:
//! every write is validated by `isthmus-shared`. It keeps no state that only one
//! process knows: worker leases live in the database, so replicas can share it.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod declarative;
pub mod error;
pub mod p2s;
pub mod secrets;
pub mod state;
pub mod store;
pub mod tokens;

pub use api::app;
pub use state::AppState;
