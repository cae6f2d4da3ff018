//! The server's one integration-test binary.

mod support;

mod accounts;
mod health;
mod processes;
mod resources;
mod workers;
