pub mod api;
pub mod worker_proto;
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
