use anyhow::Context;
use clap::{Parser, Subcommand};
use garonne_common::config::AgentConfig;
use std::path::PathBuf;

/// Garonne agent: tails log files and ships them to a Garonne collector.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Follow the configured files and ship them until stopped.
    Run {
        #[arg(long, default_value = "/etc/garonne/agent.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and the files it names, then exit.
    CheckConfig {
        #[arg(long, default_value = "/etc/garonne/agent.toml")]
        config: PathBuf,
    },
    /// Print the running agent's counters and disk buffer fill as JSON.
    Status {
        #[arg(long, default_value = "/etc/garonne/agent.toml")]
        config: PathBuf,
    },
}

/// Prints an error as one readable message (with its causes) rather than a debug
/// dump, and exits non-zero.
fn main() -> std::process::ExitCode {
    match run_command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_command() -> anyhow::Result<()> {
    garonne_common::tls::install_crypto_provider();
    init_logging();
    match Cli::parse().command {
        Command::CheckConfig { config } => {
            let loaded = AgentConfig::load(&config)?;
            loaded.check_files(&config)?;
            println!("{}: configuration is valid", config.display());
            Ok(())
        }
        Command::Status { config } => {
            let loaded = AgentConfig::load(&config)?;
            let path = loaded.agent.data_dir.join(garonne_agent::STATUS_FILE);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!("cannot read {} (is the agent running?)", path.display())
            })?;
            println!("{text}");
            Ok(())
        }
        Command::Run { config: path } => {
            let config = AgentConfig::load(&path)?;
            config.check_files(&path)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(garonne_agent::run(&path, config))
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
}
