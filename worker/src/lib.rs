//! `isthmus-worker`: the gateway data plane.
//!
//! A sans-IO core (time passed in) inside a thin tokio shell. This crate never
//! depends on `isthmus-server`: the two speak the protocol whose types live in
//! `isthmus_shared::worker_proto`.

pub mod backoff;
pub mod control;
