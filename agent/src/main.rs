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

/// The disk buffer's bloom filters size themselves with `logf`, the agent's only use
/// of the C maths library. Defined here, from the `libm` crate, it keeps that library
/// out of the process: loading it costs about half a MiB of resident memory for one
/// function called when a table is written. `packaging/test-packages.sh` checks that
/// the packaged agent does not need it.
#[expect(
    unsafe_code,
    reason = "exports the C symbol `logf`, with its C signature"
)]
#[unsafe(no_mangle)]
pub extern "C" fn logf(value: f32) -> f32 {
    libm::logf(value)
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
            for warning in garonne_agent::input_warnings(&loaded) {
                eprintln!("warning: {}: {warning}", config.display());
            }
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
            // sends batches, runs assigned monitors and writes the status file, which
            // the main thread keeps up with at full rate.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(garonne_agent::run(&path, config))
        }
    }
}
