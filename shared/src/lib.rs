//! `isthmus-shared`: the pure heart of Isthmus.
//!
//! The topology model, every gateway rule, effective routes and the wire types
//! spoken between the portal, the server and the workers. No I/O, no clock, no
//! global randomness: this crate compiles natively and to
//! `wasm32-unknown-unknown`, so the browser runs the very same rules as the server.
//!
//! Code map:
//! - [`model`]: the topology (tenants, VNets, gateways, sites, connections, point-to-site) and
//!   the SKU table.
//! - [`builder`]: a fluent builder for topologies (tests, tools, examples).
//! - [`rules`]: the [`rules::RuleId`] of every rule, with an English description.
//! - [`validate`]: every rule checked against a topology, all violations at once.
//! - [`routes`]: effective routes per gateway (transit included) and the next-hop explanation.
//! - [`psk`]: shared keys and the derived WireGuard preshared key.
//! - [`desired`]: the desired state pushed to workers and the status they report.
//! - [`device`]: WireGuard configurations for site devices and point-to-site clients.
//! - [`device_ipsec`]: the strongSwan `swanctl.conf` and parameter sheet of an IPsec site.
//! - [`enrol`]: point-to-site enrolment wire types and the signed challenge (P2S-3).
//! - [`lpm`]: a longest-prefix-match table for IPv4 and IPv6.
//! - [`messages`]: violations, routes and the next hop in English and Japanese.
//! - [`tcp_transport`]: the framing of the point-to-site TCP fallback (P2S-4).
//! - [`messages`]: every violation, route and next-hop explanation rendered in English or
//!   Japanese from templates and the facts the validator and the walker record.
//! - [`instances`]: the wire types of a redundant gateway's two instances (issue 16).
//! - [`backoff`]: the one reconnect backoff (time passed in), for workers and clients.
//! - `prefix` (CIDR helpers below `lpm` and `validate`) and `resolved` (the one index of a
//!   topology that the validator, `routes` and `desired` share) are crate-internal.

pub mod api;
pub mod backoff;
pub mod builder;
pub mod desired;
pub mod device;
pub mod device_ipsec;
pub mod enrol;
pub mod instances;
pub mod lpm;
pub mod messages;
pub mod model;
#[cfg(feature = "openapi")]
mod openapi;
pub(crate) mod prefix;
pub mod psk;
mod resolved;
pub mod routes;
pub mod rules;
pub mod tcp_transport;
pub mod validate;
pub mod worker_proto;

/// The product version, shared by every binary and the portal.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
