//! `isthmus-client`: enrol a machine on an Isthmus point-to-site gateway.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = isthmus_client::cli::Cli::parse();
    match isthmus_client::cli::run(cli).await {
        Ok(msg) => {
            eprintln!("{msg}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("isthmus-client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
