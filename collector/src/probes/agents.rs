//! Monitors run by agents (`run_on = "agents"` or a list of agent ids), so that a
//! service is seen from each school's own network.
//!
//! 1. **Assignment.** Right after the handshake the collector sends each agent its
//!    [`Assignment`]: every `run_on = "agents"` monitor and every monitor that lists the
//!    agent's id. A reloaded collector configuration restarts serving, so every agent
//!    reconnects and gets its new assignment. The agent keeps the last one on disk and
//!    goes on checking while the collector is unreachable.
//! 2. **Results.** The agent runs the checks with the collector's own code
//!    ([`garonne_common::probe::check`]) and puts each result in its disk buffer as a
//!    line of a [`Module::Probe`] chunk, so results have the durability, the
//!    acknowledgement and the deterministic ids of log lines.
//! 3. **State.** [`AgentResults::documents`] turns each result into a check document
//!    (stored with the batch, so an acknowledged result is a stored one) and feeds it to
//!    the state machine of that agent's own record of the monitor: each agent has its
//!    own state, uptime and notifications ("web is DOWN from agent school-12").
//!
//! An agent that was offline sends its buffered results late, oldest first, several
//! batches at a time; the collector applies them in the order they were sent (see
//! `server::Turn`), so they move its record as if they had arrived on time, with the
//! times of the checks. A result not newer than the record's last check (a batch resent
//! after a lost acknowledgement) is stored but moves no state, so nothing is announced
//! twice. Agents with ids that cannot name a state file
//! (anything but letters, digits, `-`, `_`, `.`) are assigned no monitors.

use super::Registry;
use super::config::{MonitorConfig, valid_name};
use super::history::{AgentOrigin, agent_check_document};
use super::runner::{announce, apply_result, rules, save};
use crate::notify::Notifier;
use crate::pipeline::Document;
use garonne_common::event::event_id;
use garonne_common::probe::{AssignedMonitor, Assignment, ProbeReport};
use garonne_common::{Batch, FileChunk, Module};
use std::sync::{Arc, Mutex};

/// The monitors `agent_id` runs, in configuration order.
pub fn assignment_for(monitors: &[MonitorConfig], agent_id: &str) -> Assignment {
    if !valid_name(agent_id) {
        return Assignment::default();
    }
    let monitors = monitors
        .iter()
        .filter(|monitor| monitor.run_on.includes_agent(agent_id))
        .map(|monitor| AssignedMonitor {
            name: monitor.name.clone(),
            kind: monitor.kind.clone(),
            interval: monitor.interval,
            timeout: monitor.timeout,
            retries: monitor.retries,
            retry_interval: monitor.retry_interval,
        })
        .collect();
    Assignment { monitors }
}

/// What the collector does for agent-run monitors: assigning them and taking their
/// results.
pub struct AgentResults {
    registry: Arc<Registry>,
    notifier: Notifier,
    /// Results of one agent may arrive in concurrent batches; a record is read, moved
    /// and written back by one of them at a time.
    observing: Mutex<()>,
}

impl AgentResults {
    pub fn new(registry: Arc<Registry>, notifier: Notifier) -> AgentResults {
        AgentResults {
            registry,
            notifier,
            observing: Mutex::new(()),
        }
    }

    /// `agent_id`'s assignment. Its monitors get a row (PENDING until the first result)
    /// at once, so `monitors status` shows what the agent was asked to run.
    pub fn assignment(&self, agent_id: &str) -> Assignment {
        let assignment = assignment_for(self.registry.monitors(), agent_id);
        for assigned in &assignment.monitors {
            if let Some(monitor) = self.registry.monitor(&assigned.name) {
                self.registry.agent_record(monitor, agent_id);
            }
        }
        assignment
    }

    /// The check documents of the batch's probe results, after moving each agent's
    /// record by them. Blocking: it writes state files.
    pub fn documents(&self, batch: &Batch) -> Vec<Document> {
        let probe_chunks = batch
            .chunks
            .iter()
            .filter(|chunk| chunk.module == Module::Probe);
        let mut documents = Vec::new();
        let _one_at_a_time = self.observing.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in probe_chunks {
            documents.extend(self.chunk_documents(batch, chunk));
        }
        documents
    }

    fn chunk_documents(&self, batch: &Batch, chunk: &FileChunk) -> Vec<Document> {
        let agent_id = batch.agent_id.as_str();
        let mut documents = Vec::new();
        for line in chunk.lines() {
            let report = match ProbeReport::from_line(line.bytes) {
                Ok(report) => report,
                Err(error) => {
                    tracing::warn!(agent_id, path = %chunk.path, %error,
                        "probe result does not decode, dropping it");
                    continue;
                }
            };
            let assigned = self
                .registry
                .monitor(&report.monitor)
                .filter(|monitor| monitor.run_on.includes_agent(agent_id));
            let Some(monitor) = assigned.filter(|_| valid_name(agent_id)) else {
                tracing::info!(agent_id, monitor = %report.monitor,
                    "result of a monitor not assigned to this agent (any more), dropping it");
                continue;
            };
            let origin = AgentOrigin {
                agent_id,
                host_name: &batch.host_name,
                event_id: event_id(agent_id, &chunk.identity, line.offset),
            };
            documents.push(self.observe(monitor, &report, origin));
        }
        documents
    }

    /// Moves the agent's record by one result unless it is not newer than the last one,
    /// and returns the result's document.
    fn observe(
        &self,
        monitor: &MonitorConfig,
        report: &ProbeReport,
        origin: AgentOrigin<'_>,
    ) -> Document {
        let result = report.check_result();
        let checked_at = report.checked_at();
        let mut record = self.registry.agent_record(monitor, origin.agent_id);
        let is_new = record.state.last_check.is_none_or(|last| checked_at > last);
        if is_new {
            let applied = apply_result(monitor, &mut record, &rules(monitor), &result, checked_at);
            announce(
                monitor,
                &record,
                &applied,
                &result,
                checked_at,
                &self.notifier,
            );
            save(&self.registry, &record, applied.important());
        }
        agent_check_document(monitor, &result, record.state.status, checked_at, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use garonne_common::probe::Status;

    fn monitors(text: &str) -> Vec<MonitorConfig> {
        super::super::tests::monitors(text, &[])
    }

    const CONFIG: &str = r#"
        [[monitor]]
        name = "central"
        type = "tcp"
        host = "127.0.0.1"
        port = 1
        [[monitor]]
        name = "everywhere"
        type = "http"
        url = "http://127.0.0.1:1/"
        run_on = "agents"
        [[monitor]]
        name = "school-12-only"
        type = "tcp"
        host = "127.0.0.1"
        port = 2
        run_on = ["school-12", "school-13"]
        interval = "30s"
        retry_interval = "10s"
        retries = 2
        "#;

    fn names(assignment: &Assignment) -> Vec<&str> {
        assignment
            .monitors
            .iter()
            .map(|monitor| monitor.name.as_str())
            .collect()
    }

    #[test]
    fn an_agent_gets_the_monitors_for_all_agents_and_those_listing_it() {
        let monitors = monitors(CONFIG);
        let listed = assignment_for(&monitors, "school-12");
        assert_eq!(names(&listed), ["everywhere", "school-12-only"]);
        let scheduled = &listed.monitors[1];
        assert_eq!(
            (
                scheduled.interval.as_secs(),
                scheduled.retry_interval.as_secs()
            ),
            (30, 10)
        );
        assert_eq!(scheduled.retries, 2);
        assert_eq!(
            names(&assignment_for(&monitors, "school-99")),
            ["everywhere"]
        );
    }

    #[test]
    fn agents_whose_id_cannot_name_a_state_file_get_nothing() {
        let monitors = monitors(CONFIG);
        assert!(assignment_for(&monitors, "../etc").monitors.is_empty());
        assert!(assignment_for(&monitors, "").monitors.is_empty());
    }

    #[tokio::test]
    async fn an_assignment_travels_as_its_own_frame_after_welcome() {
        use garonne_common::wire::{self, FrameKind, Welcome};
        let assignment = assignment_for(&monitors(CONFIG), "school-12");
        let welcome = Welcome {
            collector_version: "1".into(),
        };
        let mut stream = Vec::new();
        wire::write_message(&mut stream, FrameKind::Welcome, &welcome)
            .await
            .unwrap();
        wire::write_message(&mut stream, FrameKind::Assignment, &assignment)
            .await
            .unwrap();
        let mut reader = stream.as_slice();
        let read_welcome: Welcome = wire::read_message(&mut reader, FrameKind::Welcome)
            .await
            .unwrap();
        assert_eq!(read_welcome, welcome);
        assert_eq!(
            stream[stream.len() - reader.len() + 1],
            5,
            "frame kind byte"
        );
        let read: Assignment = wire::read_message(&mut reader, FrameKind::Assignment)
            .await
            .unwrap();
        assert_eq!(read, assignment);
        assert!(reader.is_empty());
    }

    fn report(monitor: &str, status: Status, at_ms: i64) -> ProbeReport {
        let result = garonne_common::probe::CheckResult {
            outcome: garonne_common::probe::Outcome {
                status,
                reason: (status != Status::Up).then(|| "connection refused".to_string()),
                cert_not_after: None,
            },
            duration: std::time::Duration::from_millis(3),
            http_status: None,
            final_url: None,
            error_code: None,
        };
        let at = jiff::Timestamp::from_millisecond(at_ms).unwrap();
        ProbeReport::new(monitor, &result, at)
    }

    fn batch(agent_id: &str, reports: &[ProbeReport]) -> Batch {
        Batch {
            agent_id: agent_id.into(),
            host_name: format!("{agent_id}.example.org"),
            chunks: reports.iter().map(ProbeReport::to_chunk).collect(),
        }
    }

    #[test]
    fn each_agent_has_its_own_record_and_resent_results_move_nothing() {
        let data = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::load(monitors(CONFIG), data.path()));
        registry.states().create().unwrap();
        let results = AgentResults::new(registry.clone(), Notifier::from_config(&[]).unwrap());
        let start = 1_790_000_000_000;

        let up = batch("school-12", &[report("school-12-only", Status::Up, start)]);
        let documents = results.documents(&up);
        assert_eq!(documents.len(), 1);
        let body = &documents[0].body;
        assert_eq!(body["observer"]["id"], "school-12");
        assert_eq!(body["agent"]["id"], "school-12");
        assert_eq!(body["monitor"]["state"], "up");

        // retries = 2: the third failed check confirms DOWN.
        let failures: Vec<ProbeReport> = (1..=3)
            .map(|n| report("school-12-only", Status::Down, start + n * 10_000))
            .collect();
        let down = batch("school-12", &failures);
        let states: Vec<_> = results
            .documents(&down)
            .iter()
            .map(|document| document.body["monitor"]["state"].clone())
            .collect();
        assert_eq!(states, ["pending", "pending", "down"]);

        // The same batch again (a lost acknowledgement): same ids, state unmoved.
        let before =
            registry.agent_record(registry.monitor("school-12-only").unwrap(), "school-12");
        let again = results.documents(&down);
        let after = registry.agent_record(registry.monitor("school-12-only").unwrap(), "school-12");
        assert_eq!(before, after);
        let ids = |documents: &[Document]| -> Vec<String> {
            documents
                .iter()
                .map(|document| document.id.clone())
                .collect()
        };
        assert_eq!(ids(&again), ids(&results.documents(&down)));

        // Another agent's view is its own, and an unassigned agent's result is dropped.
        let elsewhere = batch("school-13", &[report("school-12-only", Status::Up, start)]);
        assert_eq!(results.documents(&elsewhere).len(), 1);
        let stranger = batch("school-99", &[report("school-12-only", Status::Up, start)]);
        assert!(results.documents(&stranger).is_empty());
        let rows: Vec<(Option<String>, String)> = registry
            .views(jiff::Timestamp::now())
            .into_iter()
            .filter(|view| view.name == "school-12-only")
            .map(|view| (view.agent, view.status))
            .collect();
        assert_eq!(
            rows,
            [
                (Some("school-12".to_string()), "DOWN".to_string()),
                (Some("school-13".to_string()), "UP".to_string()),
            ]
        );

        // The records survive a restart of the collector.
        let reloaded = Registry::load(monitors(CONFIG), data.path());
        let record =
            reloaded.agent_record(reloaded.monitor("school-12-only").unwrap(), "school-12");
        assert_eq!(record.state.status, Status::Down);
    }
}
