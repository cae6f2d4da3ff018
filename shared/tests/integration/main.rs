//! The one integration-test binary of `isthmus-shared`.

// Test helpers may unwrap: a panic is a failed test (clippy only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

mod catalogue;
mod common;
mod desired;
mod device;
mod faq;
mod ipsec;
mod isolation;
mod lpm;
mod messages;
mod props;
mod psk;
mod reserved;
mod roundtrip;
mod routes;
mod rules;
mod tcp_transport;
mod tidy;
