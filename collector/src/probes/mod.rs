//! Availability monitors (`[[monitor]]`): HTTP(S), TCP and OpenID Connect checks with
//! retries, states, notifications, history and uptime.
//!
//! - [`config`] reads and checks the tables (every key is documented there).
//! - [`check`] runs one check and measures it (it lives in `garonne_common::probe`, as
//!   the agents run it too); [`state`] decides what a result means (pure, clock passed
//!   in); [`runner`] schedules the collector's checks, sends notifications through
//!   [`crate::notify`], and writes one document per check to the collector's store.
//! - [`agents`] handles monitors with `run_on = "agents"` or a list of agent ids: it
//!   assigns them to agents at each connection and feeds the results the agents ship
//!   in their batches to one state machine per monitor and agent.
//! - [`history`] persists each monitor's state and uptime tallies in
//!   `{data_dir}/probes/` (one file per monitor and agent for agent-run monitors), so a
//!   restart neither forgets an outage nor announces it again.
//! - [`api`] serves `GET /api/v1/monitors`; `garonne-collector monitors status` prints
//!   the same from the state files, one row per agent for agent-run monitors;
//!   [`import`] converts an Uptime Kuma backup.

pub mod agents;
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

/// The configured monitors and their latest records, shared by the runner, the agent
/// results, the API and the status command.
pub struct Registry {
    monitors: Vec<MonitorConfig>,
    states: StateDir,
    records: RwLock<BTreeMap<RecordKey, MonitorRecord>>,
}

/// A record's key: the monitor's name and, for a monitor run by agents, the agent whose
/// view it is. Each agent's view has its own state, uptime and notifications.
type RecordKey = (String, Option<String>);

/// One monitor (as seen by one agent, for agent-run monitors) as the API and the
/// status command show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorView {
    pub name: String,
    /// The agent that runs the checks of this row; `None` for the collector.
    pub agent: Option<String>,
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
    /// Reads the saved records from `{data_dir}/probes/`: one per collector-run monitor,
    /// one per agent for agent-run monitors (every listed agent, and every agent that
    /// reported for a `run_on = "agents"` monitor). Records not saved yet start PENDING.
    pub fn load(monitors: Vec<MonitorConfig>, data_dir: &Path) -> Registry {
        let states = StateDir::new(data_dir);
        let now = Timestamp::now();
        let mut records = BTreeMap::new();
        for monitor in &monitors {
            let observers: Vec<Option<String>> = match &monitor.run_on {
                RunOn::Collector => vec![None],
                RunOn::Agents(ids) => ids.iter().cloned().map(Some).collect(),
                RunOn::AllAgents => states
                    .agents_of(&monitor.name)
                    .into_iter()
                    .map(Some)
                    .collect(),
            };
            for agent in observers {
                let mut record = states
                    .load(&monitor.name, agent.as_deref())
                    .unwrap_or_else(|| MonitorRecord::new(monitor, agent.as_deref(), now));
                record.agent = agent.clone();
                record.kind = monitor.kind.type_name().to_string();
                record.target = monitor.kind.target();
                records.insert((monitor.name.clone(), agent), record);
            }
        }
        Registry {
            monitors,
            states,
            records: RwLock::new(records),
        }
    }

    pub fn monitors(&self) -> &[MonitorConfig] {
        &self.monitors
    }

    /// The configured monitor called `name`.
    pub fn monitor(&self, name: &str) -> Option<&MonitorConfig> {
        self.monitors.iter().find(|monitor| monitor.name == name)
    }

    pub(crate) fn states(&self) -> &StateDir {
        &self.states
    }

    /// The record of a collector-run monitor.
    pub fn record(&self, name: &str) -> MonitorRecord {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        records
            .get(&(name.to_string(), None))
            .cloned()
            .unwrap_or_else(|| unreachable!("every collector-run monitor has a record"))
    }

    /// `agent`'s record of an agent-run monitor; a new PENDING one if it has none yet.
    pub fn agent_record(&self, monitor: &MonitorConfig, agent: &str) -> MonitorRecord {
        let key = (monitor.name.clone(), Some(agent.to_string()));
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        records
            .entry(key)
            .or_insert_with(|| MonitorRecord::new(monitor, Some(agent), Timestamp::now()))
            .clone()
    }

    pub(crate) fn update(&self, record: MonitorRecord) {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        records.insert((record.name.clone(), record.agent.clone()), record);
    }

    /// Every row in configuration order; the rows of an agent-run monitor by agent id.
    pub fn views(&self, now: Timestamp) -> Vec<MonitorView> {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        self.monitors
            .iter()
            .flat_map(|monitor| {
                records
                    .iter()
                    .filter(move |((name, _), _)| *name == monitor.name)
                    .map(move |(_, record)| view(monitor, record, now))
            })
            .collect()
    }
}

fn view(monitor: &MonitorConfig, record: &MonitorRecord, now: Timestamp) -> MonitorView {
    let state = &record.state;
    let format = crate::pipeline::format_timestamp;
    MonitorView {
        name: monitor.name.clone(),
        agent: record.agent.clone(),
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
        "FROM".to_string(),
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
            view.agent
                .clone()
                .unwrap_or_else(|| "collector".to_string()),
            view.kind.clone(),
            view.status.clone(),
            since,
            percent(view.uptime.day),
            percent(view.uptime.week),
            percent(view.uptime.month),
            view.last_error.clone().unwrap_or_default(),
        ]);
    }
    let mut widths = [0usize; 9];
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
