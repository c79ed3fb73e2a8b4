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

fn main() -> std::process::ExitCode {
    garonne_common::process::exit_status(run_command())
}

fn run_command() -> anyhow::Result<()> {
    garonne_common::tls::install_crypto_provider();
    garonne_common::process::init_logging();
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
            // Reading and compressing run on a thread of their own; the runtime only
            // sends batches and serves the status file, which one thread keeps up with
            // at full rate.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(garonne_agent::run(&path, config))
        }
    }
}
