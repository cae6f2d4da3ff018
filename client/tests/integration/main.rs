//! The one integration-test binary of `isthmus-client` (enrolment is driven end to end by the
//! server's tests, the TCP transport's relay by the worker's; the failover between a
//! redundant gateway's instances here, against in-process instances on loopback).

// Test helpers may unwrap: a panic is a failed test (clippy only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

mod connect;
mod failover;
mod tcp_failover;
