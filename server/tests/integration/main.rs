//! The server's one integration-test binary.

mod support;

mod accounts;
mod active_active;
mod cli;
mod drops;
mod endpoints;
mod faq;
mod health;
mod instances;
mod ipsec;
mod isolation;
mod openapi;
mod p2s;
mod placement;
mod processes;
mod resources;
mod security;
mod workers;
mod writes;
