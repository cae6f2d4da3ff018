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
//!   INFORMATIONAL, CHILD SA and IKE SA rekeying on established SAs (1.3.2, 1.3.3, 1.4,
//!   2.4, 2.8).
//!
//! No sockets and no clock here: the caller passes datagrams, `now` and randomness in. ESP,
//! the data plane these SAs key, is [`super::esp`].
//!
//! Not yet here (issue 17): PFS in our own CHILD SA rekeys (a peer's KE in CREATE_CHILD_SA is
//! answered; no setting asks for ours), Extended
//! Sequence Numbers, lifetimes (when to rekey is the caller's), IKE fragmentation (RFC 7383);
//! and the wiring into [`super::Core`] and the shell (ports 500/4500, demultiplexing by SPI).

pub mod crypto;
pub mod exchange;
pub mod nat;
pub mod proposal;
pub mod protect;
pub mod wire;
