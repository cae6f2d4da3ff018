//! IKEv2 (RFC 7296), sans-IO, for site-to-site IPsec (issue 17).
//!
//! - [`wire`]: the message format (RFC 7296 section 3), parsed from untrusted bytes and
//!   serialised.
//! - [`crypto`]: PRFs, AEADs, DH groups and the key schedule (2.13-2.17), primitives from
//!   ring and RustCrypto.
//! - [`proposal`]: the suites offered and chosen (2.7, 3.3).
//! - [`protect`]: the Encrypted payload (3.14, RFC 5282).
//! - [`nat`]: NAT detection (2.23).
//! - [`exchange`]: IKE_SA_INIT and IKE_AUTH, initiator and responder (1.2, 2.6, 2.15), and
//!   INFORMATIONAL and CHILD SA rekeying on established SAs (1.3.3, 1.4, 2.4).
//!
//! No sockets and no clock here: the caller passes datagrams, `now` and randomness in.

pub mod crypto;
pub mod exchange;
pub mod nat;
pub mod proposal;
pub mod protect;
pub mod wire;
