//! Availability monitors (`[[monitor]]`): HTTP(S), TCP and OpenID Connect checks with
//! retries, states, notifications, history and uptime.
//!
//! - [`config`] reads and checks the tables (every key is documented there).
//! - [`check`] runs one check and measures it; [`state`] decides what a result means
//!   (pure, clock passed in); [`runner`] schedules checks, sends notifications through
//!   [`crate::notify`], and writes one document per check to the collector's store.
//! - [`history`] persists each monitor's state and uptime tallies in
//!   `{data_dir}/probes/`, so a restart neither forgets an outage nor announces it
//!   again.
//! - [`api`] serves `GET /api/v1/monitors`; `garonne-collector monitors status` prints
//!   the same from the state files; [`import`] converts an Uptime Kuma backup.
//!
//! **Running on agents is not implemented yet.** `run_on = "agents"` or a list of
//! agent ids is accepted and checked, but no agent runs monitors today: such a monitor
//! is skipped by the collector (with a warning at start-up) and stays PENDING. Until
//! agents run them, checks are seen only from the collector's network.

pub mod api;
pub mod config;
pub mod history;
pub mod import;
pub mod runner;
pub mod state;

#[cfg(test)]
mod tests;

pub use config::{MonitorConfig, MonitorKind, RunOn, parse_monitors};
/// Running one check; shared with the agents, which run the same code.
pub use garonne_common::probe::check;
pub use runner::{DocumentSink, run_monitors};
pub use state::Status;

use history::{MonitorRecord, StateDir, Uptime};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;
use std::time::Duration;

/// The configured monitors and their latest records, shared by the runner, the API and
/// the status command.
pub struct Registry {
    monitors: Vec<MonitorConfig>,
    states: StateDir,
    records: RwLock<BTreeMap<String, MonitorRecord>>,
}

/// One monitor as the API and the status command show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub status: String,
    pub since: String,
    pub last_check: Option<String>,
    pub last_error: Option<String>,
    pub duration_ms: Option<u64>,
    pub uptime: Uptime,
    pub certificate_not_after: Option<String>,
    pub run_on: String,
}

impl Registry {
    /// Reads the saved record of every monitor from `{data_dir}/probes/`; monitors
    /// without one start PENDING.
    pub fn load(monitors: Vec<MonitorConfig>, data_dir: &Path) -> Registry {
        let states = StateDir::new(data_dir);
        let now = Timestamp::now();
        let records = monitors
            .iter()
            .map(|monitor| {
                let mut record = states
                    .load(&monitor.name)
                    .unwrap_or_else(|| MonitorRecord::new(monitor, now));
                record.kind = monitor.kind.type_name().to_string();
                record.target = monitor.kind.target();
                (monitor.name.clone(), record)
            })
            .collect();
        Registry {
            monitors,
            states,
            records: RwLock::new(records),
        }
    }

    pub fn monitors(&self) -> &[MonitorConfig] {
        &self.monitors
    }

    pub(crate) fn states(&self) -> &StateDir {
        &self.states
    }

    pub fn record(&self, name: &str) -> MonitorRecord {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        records
            .get(name)
            .cloned()
            .unwrap_or_else(|| unreachable!("every configured monitor has a record"))
    }

    pub(crate) fn update(&self, record: MonitorRecord) {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        records.insert(record.name.clone(), record);
    }

    /// Every monitor in configuration order.
    pub fn views(&self, now: Timestamp) -> Vec<MonitorView> {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        self.monitors
            .iter()
            .filter_map(|monitor| {
                let record = records.get(&monitor.name)?;
                Some(view(monitor, record, now))
            })
            .collect()
    }
}

fn view(monitor: &MonitorConfig, record: &MonitorRecord, now: Timestamp) -> MonitorView {
    let state = &record.state;
    let format = crate::pipeline::format_timestamp;
    MonitorView {
        name: monitor.name.clone(),
        kind: record.kind.clone(),
        target: record.target.clone(),
        status: state.status.label().to_string(),
        since: format(state.since),
        last_check: state.last_check.map(format),
        last_error: match state.status {
            Status::Up => None,
            _ => state.last_reason.clone(),
        },
        duration_ms: record.last_duration_ms,
        uptime: record.uptime(now),
        certificate_not_after: state.cert_not_after.map(format),
        run_on: match &monitor.run_on {
            RunOn::Collector => "collector".to_string(),
            RunOn::AllAgents => "agents".to_string(),
            RunOn::Agents(ids) => ids.join(","),
        },
    }
}

/// The status table `garonne-collector monitors status` prints.
pub fn status_table(views: &[MonitorView], now: Timestamp) -> String {
    let mut rows = vec![[
        "MONITOR".to_string(),
        "TYPE".to_string(),
        "STATUS".to_string(),
        "SINCE".to_string(),
        "24H".to_string(),
        "7D".to_string(),
        "30D".to_string(),
        "LAST ERROR".to_string(),
    ]];
    for view in views {
        let since = view
            .since
            .parse::<Timestamp>()
            .map(|since| {
                let ago = format_duration(now.duration_since(since).unsigned_abs());
                format!("{} ({ago} ago)", view.since)
            })
            .unwrap_or_else(|_| view.since.clone());
        let percent = |ratio: Option<f64>| {
            ratio.map_or("-".to_string(), |ratio| format!("{:.2}%", ratio * 100.0))
        };
        rows.push([
            view.name.clone(),
            view.kind.clone(),
            view.status.clone(),
            since,
            percent(view.uptime.day),
            percent(view.uptime.week),
            percent(view.uptime.month),
            view.last_error.clone().unwrap_or_default(),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `1d 2h`, `3h 4m`, `5m 6s`, `7s`: the two largest units.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

/// Checks `[[notify]]` and `[[monitor]]` of a collector configuration together (a
/// monitor may only name configured channels); returns every problem of both.
pub fn check_config(
    config: &garonne_common::config::CollectorConfig,
) -> Result<(crate::notify::Notifier, Vec<MonitorConfig>), Vec<String>> {
    let channels: Vec<String> = config
        .notify
        .iter()
        .filter_map(|table| table.get("name").and_then(toml::Value::as_str))
        .map(str::to_string)
        .collect();
    let notifier = crate::notify::Notifier::from_config(&config.notify);
    let monitors = parse_monitors(&config.monitors, &channels);
    match (notifier, monitors) {
        (Ok(notifier), Ok(monitors)) => Ok((notifier, monitors)),
        (notifier, monitors) => {
            let mut problems = notifier.err().unwrap_or_default();
            problems.extend(monitors.err().unwrap_or_default());
            Err(problems)
        }
    }
}
