//! IKEv2 (RFC 7296), sans-IO, for site-to-site IPsec (issue 17).
//!
//! - [`wire`]: the message format (RFC 7296 section 3), parsed from untrusted bytes and
//!   serialised.
//!
//! No sockets and no clock here: the caller passes datagrams, `now` and randomness in.

pub mod crypto;
pub mod wire;
