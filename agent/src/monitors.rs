//! Availability monitors the collector assigned to this agent, so that a service is
//! checked from this school's own network.
//!
//! - **Assignment.** The collector sends the agent its monitors after every handshake
//!   (see `garonne_common::wire`). [`AssignedMonitors`] keeps the last assignment in
//!   `{data_dir}/monitors.json` (readable by the agent's user only: it may hold an
//!   OpenID Connect client secret), so checks go on across restarts while the collector
//!   is unreachable.
//! - **Checks.** [`run_monitors`] runs each monitor with the collector's own code
//!   (`garonne_common::probe::check`): first after a random part of its interval (so
//!   that monitors and agents do not all check at once), then every `interval`, or
//!   every `retry_interval` while the collector has not yet confirmed a failure (the
//!   first `retries` failed checks in a row).
//! - **Results.** Each result goes into the disk buffer as a batch of its own, one
//!   [`Module::Probe`](garonne_common::Module::Probe) line, and is shipped, acknowledged
//!   and deduplicated like log lines. While the collector is unreachable results wait
//!   in the buffer and arrive later, oldest first. When the buffer is full a result is
//!   dropped and counted (`probe_results_dropped`): reading log files must not wait
//!   for checks, nor checks for a full buffer.

use crate::buffer::DiskBuffer;
use crate::metrics::AgentMetrics;
use garonne_common::Batch;
use garonne_common::probe::{AssignedMonitor, Assignment, Checker, ProbeReport, Status};
use garonne_common::wire;
use jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// File in the data directory that keeps the last assignment.
pub const ASSIGNMENT_FILE: &str = "monitors.json";

/// Start-up jitter is drawn from the interval, but never longer than this.
const MAX_JITTER: Duration = Duration::from_secs(60);

/// The monitors this agent runs, as last assigned by a collector.
pub struct AssignedMonitors {
    path: PathBuf,
    current: watch::Sender<Assignment>,
}

impl AssignedMonitors {
    /// Reads the saved assignment from `data_dir`; none (or an unreadable one, which is
    /// reported) means no monitors until a collector assigns some.
    pub fn load(data_dir: &Path) -> AssignedMonitors {
        let path = data_dir.join(ASSIGNMENT_FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error,
                    "saved monitor assignment unreadable, running no monitors until assigned");
                Assignment::default()
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Assignment::default(),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error,
                    "cannot read the saved monitor assignment");
                Assignment::default()
            }
        };
        AssignedMonitors {
            path,
            current: watch::Sender::new(saved),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Assignment> {
        self.current.subscribe()
    }

    pub fn current(&self) -> Assignment {
        self.current.borrow().clone()
    }

    /// Saves and applies a new assignment; one equal to the current one changes nothing.
    pub fn replace(&self, assignment: Assignment) -> std::io::Result<()> {
        if *self.current.borrow() == assignment {
            return Ok(());
        }
        save(&self.path, &assignment)?;
        let names: Vec<&str> = assignment
            .monitors
            .iter()
            .map(|monitor| monitor.name.as_str())
            .collect();
        tracing::info!(monitors = ?names, "monitor assignment changed");
        self.current.send_replace(assignment);
        Ok(())
    }
}

/// Saves the assignment, readable by the agent's user only.
fn save(path: &Path, assignment: &Assignment) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(assignment).map_err(std::io::Error::other)?;
    garonne_common::files::write_private(path, &bytes)
}

/// Where check results go: the agent's disk buffer, as batches of this agent.
pub struct ResultSink {
    pub agent_id: String,
    pub host_name: String,
    pub buffer: Arc<DiskBuffer>,
    /// Woken after each result, like after each batch of lines.
    pub new_batch: Arc<Notify>,
    pub metrics: Arc<AgentMetrics>,
}

impl ResultSink {
    /// Puts one result into the buffer, or drops and counts it when the buffer is full.
    async fn store(self: &Arc<Self>, report: ProbeReport) {
        let batch = Batch {
            agent_id: self.agent_id.clone(),
            host_name: self.host_name.clone(),
            chunks: vec![report.to_chunk()],
        };
        let payload = match wire::encode_batch(&batch) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(monitor = %report.monitor, %error, "cannot encode a check result");
                return;
            }
        };
        let sink = self.clone();
        let stored = tokio::task::spawn_blocking(move || {
            if !sink
                .buffer
                .wait_for_room(payload.len() as u64 + 1, Duration::ZERO)
            {
                return Ok(false);
            }
            sink.buffer.append(&payload, &[]).map(|_| true)
        })
        .await;
        match stored {
            Ok(Ok(true)) => {
                AgentMetrics::add(&self.metrics.probe_results, 1);
                self.new_batch.notify_one();
            }
            Ok(Ok(false)) => {
                AgentMetrics::add(&self.metrics.probe_results_dropped, 1);
                tracing::warn!(monitor = %report.monitor, "disk buffer full, check result dropped");
            }
            Ok(Err(error)) => {
                AgentMetrics::add(&self.metrics.probe_results_dropped, 1);
                tracing::error!(monitor = %report.monitor, %error, "cannot buffer a check result");
            }
            Err(error) => tracing::error!(%error, "check result task failed"),
        }
    }
}

/// Runs the assigned monitors, starting over with each new assignment, until
/// `shutdown` turns true.
pub async fn run_monitors(
    mut assigned: watch::Receiver<Assignment>,
    sink: Arc<ResultSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Made with the first monitor: an agent with none assigned keeps the HTTP client
    // and its certificate store out of memory.
    let mut checker: Option<Arc<Checker>> = None;
    loop {
        let assignment = assigned.borrow_and_update().clone();
        let mut tasks = JoinSet::new();
        if !assignment.monitors.is_empty() && checker.is_none() {
            match Checker::new() {
                Ok(made) => checker = Some(Arc::new(made)),
                Err(error) => tracing::error!(%error, "cannot run monitors"),
            }
        }
        if let Some(checker) = &checker {
            for monitor in assignment.monitors {
                tasks.spawn(run_monitor(monitor, checker.clone(), sink.clone()));
            }
        }
        let reassigned = tokio::select! {
            changed = assigned.changed() => changed.is_ok(),
            _ = shutdown.wait_for(|stop| *stop) => false,
        };
        tasks.shutdown().await;
        if !reassigned {
            return;
        }
    }
}

async fn run_monitor(monitor: AssignedMonitor, checker: Arc<Checker>, sink: Arc<ResultSink>) {
    let jitter = monitor
        .interval
        .min(MAX_JITTER)
        .mul_f64(rand::random::<f64>());
    tokio::time::sleep(jitter).await;
    let mut failures_in_a_row = 0u32;
    loop {
        let started = Instant::now();
        let result = checker.run(&monitor.kind, monitor.timeout).await;
        if result.outcome.status == Status::Up {
            failures_in_a_row = 0;
        } else {
            failures_in_a_row = failures_in_a_row.saturating_add(1);
        }
        tracing::debug!(monitor = %monitor.name, status = result.outcome.status.as_str(),
            "check done");
        sink.store(ProbeReport::new(&monitor.name, &result, Timestamp::now()))
            .await;
        let delay = next_delay(&monitor, failures_in_a_row);
        tokio::time::sleep_until(started + delay).await;
    }
}

/// The collector confirms a failure after `retries + 1` failed checks in a row; until
/// then the checks come every `retry_interval`, as when the collector runs them.
fn next_delay(monitor: &AssignedMonitor, failures_in_a_row: u32) -> Duration {
    if (1..=monitor.retries).contains(&failures_in_a_row) {
        monitor.retry_interval
    } else {
        monitor.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use garonne_common::probe::MonitorKind;

    fn monitor(name: &str) -> AssignedMonitor {
        AssignedMonitor {
            name: name.into(),
            kind: MonitorKind::Tcp {
                host: "127.0.0.1".into(),
                port: 9,
            },
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            retries: 2,
            retry_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn failures_not_yet_confirmed_are_checked_at_the_retry_interval() {
        let monitor = monitor("web");
        let delays: Vec<u64> = (0..5)
            .map(|failures| next_delay(&monitor, failures).as_secs())
            .collect();
        assert_eq!(delays, [60, 10, 10, 60, 60]);
    }

    #[test]
    fn the_assignment_survives_a_restart_and_only_a_change_is_saved() {
        let data = tempfile::tempdir().unwrap();
        let assigned = AssignedMonitors::load(data.path());
        assert_eq!(assigned.current(), Assignment::default());
        let mut changes = assigned.subscribe();

        let assignment = Assignment {
            monitors: vec![monitor("web"), monitor("dns")],
        };
        assigned.replace(assignment.clone()).unwrap();
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assigned.replace(assignment.clone()).unwrap();
        assert!(
            !changes.has_changed().unwrap(),
            "an equal assignment is no change"
        );

        let file = data.path().join(ASSIGNMENT_FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert_eq!(AssignedMonitors::load(data.path()).current(), assignment);

        std::fs::write(&file, "{").unwrap();
        assert_eq!(
            AssignedMonitors::load(data.path()).current(),
            Assignment::default()
        );
    }

    #[tokio::test]
    async fn a_result_becomes_a_buffered_batch_of_this_agent() {
        let data = tempfile::tempdir().unwrap();
        let buffer = Arc::new(DiskBuffer::open(&data.path().join("buffer"), 1 << 20).unwrap());
        let sink = Arc::new(ResultSink {
            agent_id: "school-12".into(),
            host_name: "school-12.example.org".into(),
            buffer: buffer.clone(),
            new_batch: Arc::new(Notify::new()),
            metrics: Arc::new(AgentMetrics::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kind = MonitorKind::Tcp {
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
        };
        let result = Checker::new()
            .unwrap()
            .run(&kind, Duration::from_secs(5))
            .await;
        sink.store(ProbeReport::new("web", &result, Timestamp::now()))
            .await;

        let stored = buffer.next_after(None).unwrap().expect("one batch");
        let batch = wire::decode_batch(&stored.payload).unwrap();
        assert_eq!(batch.agent_id, "school-12");
        let line = batch.chunks[0].lines().next().unwrap();
        let report = ProbeReport::from_line(line.bytes).unwrap();
        assert_eq!(
            (report.monitor.as_str(), report.status),
            ("web", Status::Up)
        );
        assert_eq!(AgentMetrics::get(&sink.metrics.probe_results), 1);
    }
}
