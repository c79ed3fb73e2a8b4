use anyhow::Context;
use clap::{Parser, Subcommand};
use garonne_agent::status::{self, Liveness};
use garonne_common::config::AgentConfig;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Print the agent's counters and disk buffer fill as JSON; exit with status 3 if
    /// the agent is not running.
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

fn main() -> ExitCode {
    match run_command() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of `status` when the agent is not running, as `systemctl status` and
/// LSB init scripts report it.
const NOT_RUNNING: u8 = 3;

fn run_command() -> anyhow::Result<ExitCode> {
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config } => {
            let loaded = AgentConfig::load(&config)?;
            print_status(&loaded.agent.data_dir.join(status::STATUS_FILE))
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
            runtime.block_on(garonne_agent::run(&path, config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the status file as it is, and says on standard error when the agent that
/// wrote it is no longer running.
fn print_status(path: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (has the agent ever run with this configuration?)",
            path.display()
        )
    })?;
    println!("{text}");
    let written: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a status file", path.display()))?;
    let now_ms = status::unix_millis(std::time::SystemTime::now());
    match Liveness::of(&written, now_ms) {
        Liveness::Running => Ok(ExitCode::SUCCESS),
        Liveness::Stopped => {
            eprintln!("the agent is not running: these are the counters it left as it stopped");
            Ok(ExitCode::from(NOT_RUNNING))
        }
        Liveness::Silent(silent) => {
            eprintln!(
                "the agent is not running: {} was last written {} s ago, and a running \
                 agent rewrites it every second (was it killed?)",
                path.display(),
                silent.as_secs()
            );
            Ok(ExitCode::from(NOT_RUNNING))
        }
    }
}
