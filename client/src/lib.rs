//! `isthmus-client`: the point-to-site client of Isthmus.
//!
//! - [`sign`]: signs the enrolment challenge with the key of the client certificate (ECDSA
//!   P-256/P-384, Ed25519 or RSA, in PKCS#8, SEC1 or PKCS#1 PEM), through rustls' signers.
//! - [`enrol`]: the enrolment exchange with the server (challenge, signed proof, client
//!   package), producing a ready wg-quick configuration.
//! - [`connect`]: the TCP transport for networks that block UDP (P2S-4): a local UDP
//!   endpoint for a standard WireGuard client, relayed over TLS on TCP to the worker.
//! - [`plan`]: what `connect` reads from a package (the peer, the TCP endpoints, a redundant
//!   gateway's instances) and the `--write-config` copy.
//! - [`failover`] and [`udp_relay`]: `connect --udp`, a local UDP relay that fails over
//!   between a redundant gateway's two instances (issue 16); [`connect`]'s TCP transport
//!   fails over between their TCP endpoints.
//! - [`cli`]: the command line (`isthmus-client enrol ...`, `isthmus-client connect ...`).
//!
//! It depends on `isthmus-shared` only among the workspace crates: the server and the worker
//! are reached over HTTP.

pub mod cli;
pub mod connect;
pub mod enrol;
pub mod failover;
pub mod plan;
pub mod sign;
pub mod udp_relay;
