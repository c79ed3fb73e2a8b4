//! What both binaries do the same way as processes: log set-up, error reporting at
//! exit, and the signals that stop them or reload their configuration.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Logs to stderr (the journal under systemd), filtered by `RUST_LOG` (default `info`),
/// coloured only on a terminal.
///
/// `RUST_LOG` takes a level and per-module levels, as in `warn,garonne_agent=debug`.
/// A value that does not read is reported and `info` is used.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, problem) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(colour)
                .with_writer(std::io::stderr),
        )
        .with(filter)
        .init();
    if let Some(problem) = problem {
        tracing::warn!("{problem}");
    }
}

/// The filter `RUST_LOG` asks for, or `info` and why not.
fn log_filter(setting: Option<&str>) -> (tracing_subscriber::filter::Targets, Option<String>) {
    let default = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    match setting.map(str::trim).filter(|value| !value.is_empty()) {
        None => (default(), None),
        Some(value) => match value.parse() {
            Ok(filter) => (filter, None),
            Err(error) => (
                default(),
                Some(format!(
                    "RUST_LOG={value:?} does not read ({error}); logging at info"
                )),
            ),
        },
    }
}

/// Runs a command, printing a failure as one readable message with its causes rather
/// than a debug dump, and turning it into a non-zero exit status.
pub fn exit_status(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The machine's host name (default `agent.id` and `host.name`).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// What an operator asked of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT.
    Stop,
    /// SIGHUP.
    Reload,
}

/// The stop and reload signals, registered once and then awaited as often as needed.
pub struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    pub fn register() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.terminate.recv() => Request::Stop,
            _ = self.interrupt.recv() => Request::Stop,
            _ = self.hangup.recv() => Request::Reload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_module_and_a_bad_value_falls_back_to_info() {
        let (filter, problem) = log_filter(Some("warn,garonne_agent=debug"));
        assert!(problem.is_none());
        assert!(filter.would_enable("garonne_agent::tailer", &Level::DEBUG));
        assert!(!filter.would_enable("quinn", &Level::INFO));
        let (filter, problem) = log_filter(None);
        assert!(problem.is_none());
        assert!(filter.would_enable("quinn", &Level::INFO));
        assert!(!filter.would_enable("quinn", &Level::DEBUG));
        let (filter, problem) = log_filter(Some("garonne_agent=loud"));
        assert!(problem.unwrap().contains("garonne_agent=loud"));
        assert!(filter.would_enable("quinn", &Level::INFO));
    }
}
