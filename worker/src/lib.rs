//! `isthmus-worker`: the gateway data plane.
//!
//! A sans-IO core ([`core`], time passed in) inside a thin tokio shell ([`io`]). This crate never
//! depends on `isthmus-server`: the two speak the protocol whose types live in
//! `isthmus_shared::worker_proto` and `isthmus_shared::desired`.

pub mod control;
pub mod core;
pub mod host;
pub mod io;
pub mod status;
pub mod tcp_relay;
