//! What survives a restart, and the documents each check leaves in the store.
//!
//! **State files.** Each monitor has `{data_dir}/probes/{name}.json` (a monitor run by
//! agents, one `{name}@{agent id}.json` per agent): its
//! [`MonitorState`] and tallies of checks per hour (last 48 hours) and per day (last
//! 31 days), from which uptime over 24 h, 7 d and 30 d is computed (in checks, not
//! seconds; maintenance checks are left out). A file is replaced atomically (written
//! beside, then renamed); it is synced to disk when the state changed, so a crash
//! loses at most a few tallies, never a state change. A file that cannot be read is
//! reported and the monitor starts over as PENDING.
//!
//! **Documents.** Every check becomes one document of dataset `probes`
//! (`garonne-probes-YYYY.MM.DD` in Elasticsearch) with ECS-style fields:
//! `monitor.name`, `monitor.type`, `monitor.status` (this check: up, degraded, down),
//! `monitor.state` (what the monitor shows), `event.duration` (ns), `url.full`,
//! `http.response.status_code`, `error.message`, `error.code`,
//! `tls.server.x509.not_after`, and `observer.type` (`collector` or `agent`). Results
//! of agents also carry `observer.id` and `agent.*` (id, name) like their log events,
//! and the event id of their line, so a resent result is stored once.

use super::check::CheckResult;
use super::config::MonitorConfig;
use super::state::{MonitorState, Status};
use crate::pipeline::{Document, ECS_VERSION, format_timestamp};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HOURS_KEPT: i64 = 48;
const DAYS_KEPT: i64 = 31;

/// Checks counted in one hour or day.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub up: u32,
    pub total: u32,
}

/// One monitor's persisted record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorRecord {
    pub name: String,
    /// The agent whose view of the monitor this is; `None` when the collector runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub state: MonitorState,
    /// Duration of the last check.
    pub last_duration_ms: Option<u64>,
    /// Hour number since the epoch → tally.
    pub hourly: BTreeMap<i64, Tally>,
    /// Day number since the epoch → tally.
    pub daily: BTreeMap<i64, Tally>,
}

/// Uptime ratios (0.0 to 1.0); `None` when no check was counted in the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Uptime {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "7d")]
    pub week: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

impl MonitorRecord {
    pub fn new(monitor: &MonitorConfig, agent: Option<&str>, now: Timestamp) -> MonitorRecord {
        MonitorRecord {
            name: monitor.name.clone(),
            agent: agent.map(str::to_string),
            kind: monitor.kind.type_name().to_string(),
            target: monitor.kind.target(),
            state: MonitorState::new(now),
            last_duration_ms: None,
            hourly: BTreeMap::new(),
            daily: BTreeMap::new(),
        }
    }

    /// Counts one check; DEGRADED counts as up (the service answered).
    pub fn count(&mut self, status: Status, now: Timestamp) {
        if matches!(status, Status::Maintenance | Status::Pending) {
            return;
        }
        let up = u32::from(matches!(status, Status::Up | Status::Degraded));
        let seconds = now.as_second();
        let hour = seconds.div_euclid(3_600);
        let day = seconds.div_euclid(86_400);
        for (map, key, kept) in [
            (&mut self.hourly, hour, HOURS_KEPT),
            (&mut self.daily, day, DAYS_KEPT),
        ] {
            let tally = map.entry(key).or_default();
            tally.up += up;
            tally.total += 1;
            map.retain(|bucket, _| *bucket > key - kept);
        }
    }

    /// Uptime over the last 24 hours (by hour), 7 and 30 days (by day).
    pub fn uptime(&self, now: Timestamp) -> Uptime {
        let seconds = now.as_second();
        let hour = seconds.div_euclid(3_600);
        let day = seconds.div_euclid(86_400);
        Uptime {
            day: ratio(&self.hourly, hour - 23),
            week: ratio(&self.daily, day - 6),
            month: ratio(&self.daily, day - 29),
        }
    }
}

fn ratio(buckets: &BTreeMap<i64, Tally>, from: i64) -> Option<f64> {
    let (up, total) = buckets
        .range(from..)
        .fold((0u64, 0u64), |(up, total), (_, tally)| {
            (up + u64::from(tally.up), total + u64::from(tally.total))
        });
    (total > 0).then(|| up as f64 / total as f64)
}

/// `{data_dir}/probes`.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(data_dir: &Path) -> StateDir {
        StateDir {
            path: data_dir.join("probes"),
        }
    }

    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_stem(name: &str, agent: Option<&str>) -> String {
        match agent {
            Some(agent) => format!("{name}@{agent}"),
            None => name.to_string(),
        }
    }

    /// The agents that have a saved record of monitor `name`, in order.
    pub fn agents_of(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}@");
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut agents: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let file_name = entry.file_name().into_string().ok()?;
                let stem = file_name.strip_suffix(".json")?;
                Some(stem.strip_prefix(&prefix)?.to_string())
            })
            .collect();
        agents.sort();
        agents
    }

    /// The record of monitor `name` (as seen by `agent`), if one was saved and can be
    /// read.
    pub fn load(&self, name: &str, agent: Option<&str>) -> Option<MonitorRecord> {
        let path = self
            .path
            .join(format!("{}.json", StateDir::file_stem(name, agent)));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    "cannot read monitor state, starting over",
                );
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    "monitor state unreadable, starting over",
                );
                None
            }
        }
    }

    /// Replaces the record atomically; `sync` also flushes it to disk.
    pub fn save(&self, record: &MonitorRecord, sync: bool) -> std::io::Result<()> {
        let stem = StateDir::file_stem(&record.name, record.agent.as_deref());
        let path = self.path.join(format!("{stem}.json"));
        let temporary = self.path.join(format!(".{stem}.json.tmp"));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temporary, &path)?;
        if sync && let Ok(directory) = std::fs::File::open(&self.path) {
            let _ = directory.sync_all();
        }
        Ok(())
    }
}

/// The stored document of one check.
pub fn check_document(
    monitor: &MonitorConfig,
    result: &CheckResult,
    shown: Status,
    at: Timestamp,
) -> Document {
    let outcome = &result.outcome;
    let mut body = Map::new();
    body.insert("@timestamp".into(), json!(format_timestamp(at)));
    body.insert("ecs".into(), json!({"version": ECS_VERSION}));
    body.insert(
        "monitor".into(),
        json!({
            "name": monitor.name,
            "type": monitor.kind.type_name(),
            "status": outcome.status.as_str(),
            "state": shown.as_str(),
            "target": monitor.kind.target(),
        }),
    );
    body.insert("observer".into(), json!({"type": "collector"}));
    body.insert(
        "event".into(),
        json!({
            "kind": "metric",
            "dataset": "garonne.probes",
            "duration": duration_nanos(result.duration),
            "outcome": if outcome.status == Status::Down { "failure" } else { "success" },
            "ingested": format_timestamp(Timestamp::now()),
        }),
    );
    if let Some(url) = &result.final_url {
        body.insert("url".into(), json!({"full": url}));
    }
    if let Some(status) = result.http_status {
        body.insert("http".into(), json!({"response": {"status_code": status}}));
    }
    if let Some(reason) = &outcome.reason {
        let mut error = Map::new();
        error.insert("message".into(), Value::String(reason.clone()));
        if let Some(code) = &result.error_code {
            error.insert("code".into(), Value::String(code.clone()));
        }
        body.insert("error".into(), Value::Object(error));
    }
    if let Some(not_after) = outcome.cert_not_after {
        body.insert(
            "tls".into(),
            json!({"server": {"x509": {"not_after": format_timestamp(not_after)}}}),
        );
    }
    let key = format!("probe\0{}\0{}", monitor.name, at.as_nanosecond());
    Document {
        id: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())),
        dataset: "probes",
        timestamp: at,
        body,
    }
}

/// The stored document of one check an agent ran and shipped in a batch: the check's
/// fields, who observed it, and the event id of the line that carried it.
pub fn agent_check_document(
    monitor: &MonitorConfig,
    result: &CheckResult,
    shown: Status,
    at: Timestamp,
    agent: AgentOrigin<'_>,
) -> Document {
    let mut document = check_document(monitor, result, shown, at);
    let body = &mut document.body;
    body.insert(
        "observer".into(),
        json!({"type": "agent", "id": agent.agent_id}),
    );
    body.insert(
        "agent".into(),
        json!({"id": agent.agent_id, "name": agent.host_name, "type": "garonne"}),
    );
    body.insert("host".into(), json!({"name": agent.host_name}));
    document.id = agent.event_id;
    document
}

/// Where an agent's check result came from.
#[derive(Debug, Clone)]
pub struct AgentOrigin<'a> {
    pub agent_id: &'a str,
    pub host_name: &'a str,
    /// The id of the line that carried the result (see `garonne_common::event_id`).
    pub event_id: String,
}

fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> MonitorRecord {
        MonitorRecord {
            name: "web".into(),
            agent: None,
            kind: "http".into(),
            target: "http://127.0.0.1/".into(),
            state: MonitorState::new(Timestamp::UNIX_EPOCH),
            last_duration_ms: None,
            hourly: BTreeMap::new(),
            daily: BTreeMap::new(),
        }
    }

    #[test]
    fn uptime_counts_checks_per_window_and_forgets_old_buckets() {
        let now: Timestamp = "2026-03-31T12:00:00Z".parse().unwrap();
        let hours = |n: i64| now - jiff::SignedDuration::from_hours(n);
        let mut record = record();
        // 40 days ago: down, forgotten.
        record.count(Status::Down, hours(40 * 24));
        // 10 days ago: 1 up, 1 down.
        record.count(Status::Up, hours(10 * 24));
        record.count(Status::Down, hours(10 * 24));
        // 3 days ago: down.
        record.count(Status::Down, hours(3 * 24));
        // Last day: 3 up (one degraded), maintenance not counted.
        record.count(Status::Up, hours(2));
        record.count(Status::Degraded, hours(1));
        record.count(Status::Up, now);
        record.count(Status::Maintenance, now);
        let uptime = record.uptime(now);
        assert_eq!(uptime.day, Some(1.0));
        assert_eq!(uptime.week, Some(0.75));
        assert_eq!(uptime.month, Some(4.0 / 6.0));
        assert!(record.daily.len() <= DAYS_KEPT as usize);
        assert!(record.hourly.len() <= HOURS_KEPT as usize);
    }

    #[test]
    fn records_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path());
        states.create().unwrap();
        let mut record = record();
        record.count(Status::Up, Timestamp::now());
        states.save(&record, true).unwrap();
        assert_eq!(states.load("web", None), Some(record.clone()));
        assert_eq!(states.load("other", None), None);
        std::fs::write(dir.path().join("probes/bad.json"), "{").unwrap();
        assert_eq!(states.load("bad", None), None);

        let seen_from_agent = MonitorRecord {
            agent: Some("school-12".into()),
            ..record.clone()
        };
        states.save(&seen_from_agent, true).unwrap();
        assert_eq!(states.load("web", Some("school-12")), Some(seen_from_agent));
        assert_eq!(states.load("web", None), Some(record));
        assert_eq!(states.agents_of("web"), vec!["school-12".to_string()]);
    }
}
