//! The server's one integration-test binary.

mod support;

mod health;
mod processes;
