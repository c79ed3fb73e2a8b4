//! The async shell around the checks and the state machine: one task per monitor,
//! one task writing check documents to the store in batches.

use super::check::{CheckResult, Checker};
use super::config::{MonitorConfig, RunOn};
use super::history::{MonitorRecord, check_document};
use super::state::{Event, Rules, Status};
use super::{Registry, format_duration};
use crate::notify::{Notification, Notifier, Severity};
use crate::pipeline::{Document, format_timestamp};
use crate::store::{Store, StoreError, WriteReport};
use futures::future::BoxFuture;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Check documents waiting for the store at most; beyond it monitor tasks wait.
const DOCUMENT_QUEUE: usize = 4096;
/// Documents per store write at most.
const DOCUMENT_BATCH: usize = 500;
/// How long the first queued document waits for others to share its store write.
/// Checks trickle in evenly; writing each alone costs the store one commit per check
/// (measured with 1,000 monitors in the embedded index: 30% of a core, against 6% with
/// this linger). The price: a check shows up in searches up to this much later.
const DOCUMENT_LINGER: Duration = Duration::from_secs(5);
/// Start-up jitter is drawn from the interval, but never longer than this.
const MAX_JITTER: Duration = Duration::from_secs(60);
/// Attempts to store one batch while the store is unavailable.
const STORE_ATTEMPTS: u32 = 5;

/// Where check documents go: the collector's store (or a test's).
pub trait DocumentSink: Send + Sync + 'static {
    fn write_documents(
        &self,
        documents: Vec<Document>,
    ) -> BoxFuture<'_, Result<WriteReport, StoreError>>;
}

impl DocumentSink for Store {
    fn write_documents(
        &self,
        documents: Vec<Document>,
    ) -> BoxFuture<'_, Result<WriteReport, StoreError>> {
        Box::pin(self.write(documents))
    }
}

impl DocumentSink for crate::server::Collector {
    fn write_documents(
        &self,
        documents: Vec<Document>,
    ) -> BoxFuture<'_, Result<WriteReport, StoreError>> {
        Box::pin(self.store.write(documents))
    }
}

struct Shared {
    checker: Checker,
    notifier: Notifier,
    registry: Arc<Registry>,
    documents: mpsc::Sender<Document>,
}

/// Runs every monitor assigned to the collector until `shutdown` turns true, then
/// stores the documents still queued and returns.
pub async fn run_monitors(
    registry: Arc<Registry>,
    store: Arc<dyn DocumentSink>,
    notifier: Notifier,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    registry.states().create().map_err(|error| {
        format!(
            "cannot create {}: {error}",
            registry.states().path().display()
        )
    })?;
    let (documents, queue) = mpsc::channel(DOCUMENT_QUEUE);
    let writer = tokio::spawn(write_documents(queue, store));
    let shared = Arc::new(Shared {
        checker: Checker::new()?,
        notifier,
        registry: registry.clone(),
        documents,
    });
    let mut tasks = Vec::new();
    for monitor in registry.monitors() {
        if monitor.run_on != RunOn::Collector {
            // Agents run it and ship the results (see `super::agents`).
            continue;
        }
        let record = registry.record(&monitor.name);
        tasks.push(tokio::spawn(run_monitor(
            monitor.clone(),
            record,
            shared.clone(),
            shutdown.clone(),
        )));
    }
    let on_agents = registry.monitors().len() - tasks.len();
    tracing::info!(monitors = tasks.len(), on_agents, "monitors started");
    drop(shared);
    for task in tasks {
        let _ = task.await;
    }
    let _ = writer.await;
    tracing::info!("monitors stopped");
    Ok(())
}

/// Waits `delay` or until shutdown; true when shutting down.
async fn stopped_during(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    }
}

async fn run_monitor(
    monitor: MonitorConfig,
    mut record: MonitorRecord,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let rules = rules(&monitor);
    let jitter = monitor
        .interval
        .min(MAX_JITTER)
        .mul_f64(rand::random::<f64>());
    if stopped_during(jitter, &mut shutdown).await {
        return;
    }
    loop {
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            result = shared.checker.run(&monitor.kind, monitor.timeout) => result,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let now = Timestamp::now();
        observe(&monitor, &mut record, &rules, &result, now, &shared).await;
        let delay = if record.state.retrying() {
            monitor.retry_interval
        } else {
            monitor.interval
        };
        let wait = (started + delay).saturating_duration_since(tokio::time::Instant::now());
        if stopped_during(wait, &mut shutdown).await {
            return;
        }
    }
}

/// The state machine's rules of `monitor`.
pub(crate) fn rules(monitor: &MonitorConfig) -> Rules {
    Rules {
        retries: monitor.retries,
        remind_every: monitor.remind_every,
        cert_expiry_days: monitor.kind.cert_expiry_days().to_vec(),
    }
}

/// Feeds one result to the state machine, then notifies, stores and persists.
async fn observe(
    monitor: &MonitorConfig,
    record: &mut MonitorRecord,
    rules: &Rules,
    result: &CheckResult,
    now: Timestamp,
    shared: &Shared,
) {
    let applied = apply_result(monitor, record, rules, result, now);
    announce(monitor, record, &applied, result, now, &shared.notifier);
    let document = check_document(monitor, result, applied.shown, now);
    if shared.documents.send(document).await.is_err() {
        tracing::warn!(monitor = %monitor.name, "check document dropped: writer stopped");
    }
    save(&shared.registry, record, applied.important());
}

/// What one result did to a monitor's record.
pub(crate) struct Applied {
    pub(crate) before: Status,
    pub(crate) shown: Status,
    pub(crate) events: Vec<Event>,
}

impl Applied {
    /// Whether the record must reach the disk at once.
    pub(crate) fn important(&self) -> bool {
        self.shown != self.before || !self.events.is_empty()
    }
}

/// Moves the record's state and uptime tallies by one result taken at `now`.
pub(crate) fn apply_result(
    monitor: &MonitorConfig,
    record: &mut MonitorRecord,
    rules: &Rules,
    result: &CheckResult,
    now: Timestamp,
) -> Applied {
    let in_maintenance = monitor
        .maintenance
        .iter()
        .any(|window| window.contains(now));
    let before = record.state.status;
    let events = record
        .state
        .observe(&result.outcome, in_maintenance, rules, now);
    let counted = if in_maintenance {
        Status::Maintenance
    } else {
        result.outcome.status
    };
    record.count(counted, now);
    record.last_duration_ms = Some(result.duration.as_millis() as u64);
    Applied {
        before,
        shown: record.state.status,
        events,
    }
}

/// Logs a change of what the record shows and sends the notifications of its events.
pub(crate) fn announce(
    monitor: &MonitorConfig,
    record: &MonitorRecord,
    applied: &Applied,
    result: &CheckResult,
    now: Timestamp,
    notifier: &Notifier,
) {
    if applied.shown != applied.before {
        tracing::info!(
            monitor = %monitor.name,
            agent = record.agent.as_deref().unwrap_or("-"),
            from = applied.before.label(),
            to = applied.shown.label(),
            reason = result.outcome.reason.as_deref().unwrap_or(""),
            "monitor state changed"
        );
    }
    for event in &applied.events {
        let notification = notification(monitor, record.agent.as_deref(), event, result, now);
        for channel in &monitor.notify {
            notifier.send_in_background(channel, notification.clone());
        }
    }
}

/// Persists the record (synced to disk when `important`) and publishes it.
pub(crate) fn save(registry: &Registry, record: &MonitorRecord, important: bool) {
    if let Err(error) = registry.states().save(record, important) {
        tracing::warn!(monitor = %record.name, %error, "cannot save monitor state");
    }
    registry.update(record.clone());
}

/// The message for one event. `agent` is the agent whose checks saw it, for monitors
/// run by agents: the title names it, and its notifications group apart from other
/// agents' views of the same monitor.
pub fn notification(
    monitor: &MonitorConfig,
    agent: Option<&str>,
    event: &Event,
    result: &CheckResult,
    now: Timestamp,
) -> Notification {
    let name = &monitor.name;
    let mut fields = BTreeMap::from([
        ("monitor".to_string(), name.clone()),
        ("type".to_string(), monitor.kind.type_name().to_string()),
        ("target".to_string(), monitor.kind.target()),
    ]);
    let (seen_from, key_suffix) = match agent {
        Some(agent) => {
            fields.insert("agent".to_string(), agent.to_string());
            (format!(" from agent {agent}"), format!("@{agent}"))
        }
        None => (String::new(), String::new()),
    };
    let reason = result.outcome.reason.clone().unwrap_or_default();
    let (title, body, severity, key) = match event {
        Event::Changed {
            from, to, lasted, ..
        } => {
            let was = format!(
                "{} for {}",
                from.label(),
                format_duration(lasted.unsigned_abs())
            );
            match to {
                Status::Up => {
                    if *from != Status::Pending {
                        fields.insert("outage".into(), format_duration(lasted.unsigned_abs()));
                    }
                    (
                        format!("{name} is UP again{seen_from}"),
                        format!("{name} recovered after being {was}."),
                        Severity::Resolved,
                        format!("monitor:{name}{key_suffix}"),
                    )
                }
                other => {
                    if let Some(code) = &result.error_code {
                        fields.insert("error".into(), code.clone());
                    }
                    let severity = if *other == Status::Down {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    (
                        format!("{name} is {}{seen_from}", other.label()),
                        reason.clone(),
                        severity,
                        format!("monitor:{name}{key_suffix}"),
                    )
                }
            }
        }
        Event::Reminder { since, checks, .. } => {
            let down_for = now.duration_since(*since).unsigned_abs();
            fields.insert("since".into(), format_timestamp(*since));
            fields.insert("failed_checks".into(), checks.to_string());
            (
                format!("{name} is still DOWN{seen_from}"),
                format!("Down for {}: {reason}", format_duration(down_for)),
                Severity::Critical,
                format!("monitor:{name}{key_suffix}"),
            )
        }
        Event::CertificateExpiring {
            not_after,
            days_left,
            ..
        } => {
            fields.insert("not_after".into(), format_timestamp(*not_after));
            let title = if *days_left < 0 {
                format!("{name}{seen_from}: TLS certificate has expired")
            } else {
                format!("{name}{seen_from}: TLS certificate expires in {days_left} days")
            };
            (
                title,
                format!(
                    "The certificate of {} is valid until {}.",
                    monitor.kind.target(),
                    format_timestamp(*not_after)
                ),
                Severity::Warning,
                format!("monitor:{name}{key_suffix}:certificate"),
            )
        }
    };
    Notification {
        title,
        body,
        severity,
        key,
        fields,
        link: None,
        occurred: now,
    }
}

/// Stores queued documents in batches; retries while the store is unavailable, then
/// drops the batch with a warning (check history is worth less than a blocked probe).
async fn write_documents(mut queue: mpsc::Receiver<Document>, store: Arc<dyn DocumentSink>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + DOCUMENT_LINGER;
        while batch.len() < DOCUMENT_BATCH {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(document)) => batch.push(document),
                Ok(None) | Err(_) => break,
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match store.write_documents(batch.clone()).await {
                Ok(_) => break,
                Err(error @ StoreError::Unavailable(_)) if attempt < STORE_ATTEMPTS => {
                    tracing::debug!(
                        %error,
                        attempt,
                        "store unavailable for check documents, retrying",
                    );
                    tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt)).await;
                }
                Err(error) => {
                    tracing::warn!(%error, documents = batch.len(), "check documents not stored");
                    break;
                }
            }
        }
    }
}
