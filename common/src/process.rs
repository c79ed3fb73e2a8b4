//! What both binaries do the same way as processes: log set-up, error reporting at
//! exit, and the signals that stop them or reload their configuration.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::filter::{LevelFilter, Targets};

/// Logs to stderr (the journal under systemd), filtered by `RUST_LOG` (default `info`),
/// coloured only on a terminal.
///
/// `RUST_LOG` takes a level and per-module levels, as in `warn,garonne_agent=debug`;
/// modules without a level of their own log at the first (`info` if none is given).
/// What does not read is reported in the log and left out.
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

/// The filter `RUST_LOG` asks for: comma-separated directives, each a level (the
/// default for every module, `info` when none is given) or `module=level`. Directives
/// that do not read are named in the returned problem and left out; the others apply.
fn log_filter(setting: Option<&str>) -> (Targets, Option<String>) {
    let mut filter = Targets::new();
    let mut default = LevelFilter::INFO;
    let mut unread = Vec::new();
    let directives = setting
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty());
    for directive in directives {
        match directive.split_once('=') {
            None => match directive.parse::<LevelFilter>() {
                Ok(level) => default = level,
                Err(_) => unread.push(directive),
            },
            Some((module, level)) => match level.trim().parse::<LevelFilter>() {
                Ok(level) if !module.trim().is_empty() => {
                    filter = filter.with_target(module.trim(), level);
                }
                _ => unread.push(directive),
            },
        }
    }
    let problem = (!unread.is_empty()).then(|| {
        format!(
            "RUST_LOG: cannot read {unread:?}: expected a level (off, error, warn, info, \
             debug, trace) or module=level, separated by commas; the rest applies"
        )
    });
    (filter.with_default(default), problem)
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
    fn rust_log_sets_levels_per_module_and_names_what_does_not_read() {
        let (filter, problem) = log_filter(Some("warn,garonne_agent=debug"));
        assert!(problem.is_none());
        assert!(filter.would_enable("garonne_agent::tailer", &Level::DEBUG));
        assert!(!filter.would_enable("quinn", &Level::INFO));
        assert!(filter.would_enable("quinn", &Level::WARN));

        for quiet in [None, Some(""), Some("info,"), Some(" info , ")] {
            let (filter, problem) = log_filter(quiet);
            assert!(problem.is_none(), "{quiet:?}");
            assert!(filter.would_enable("quinn", &Level::INFO), "{quiet:?}");
            assert!(!filter.would_enable("quinn", &Level::DEBUG), "{quiet:?}");
        }

        // What does not read is named, and never switches logging off.
        for bad in ["garonne_agent=loud", "nonsense_word", "[[", "=debug"] {
            let (filter, problem) = log_filter(Some(bad));
            assert!(problem.unwrap().contains(bad), "{bad}");
            assert!(filter.would_enable("quinn", &Level::INFO), "{bad}");
        }
        let (filter, problem) = log_filter(Some("debug,quinn=loud"));
        assert!(problem.unwrap().contains("quinn=loud"));
        assert!(filter.would_enable("garonne_agent", &Level::DEBUG));
    }
}
