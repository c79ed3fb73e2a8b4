//! The async shell around the engine: feeds it documents (as a pipeline observer),
//! ticks it, saves its state, hands messages to the notification channels and writes
//! alert documents to the store.
//!
//! Delivery goes through [`AlertDelivery`], which the notifier implements by sending
//! each message in a task of its own: a channel that is down is retried there and holds
//! back neither other channels, nor the next tick, nor the pipeline. The state is saved
//! before messages leave (see `state.rs`). Alert documents are written in a task too, so
//! a slow store delays only them.

use super::engine::{AlertEngine, Decision, NoveltyScorer};
use super::message;
use super::rules::Rule;
use super::state::{load_or_set_aside, state_path, write_state};
use crate::notify::{Notification, Notifier};
use crate::observe::DocumentObserver;
use crate::pipeline::Document;
use crate::server::Collector;
use jiff::Timestamp;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the engine is ticked: the resolution of windows, reminders and silences.
pub const TICK_INTERVAL: Duration = Duration::from_millis(500);
/// State changes that sent no message (templates learnt, sources seen) are saved at
/// most this often; a crash loses at most this much of them.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// Where messages go. The notifier implements it; tests use a recorder.
pub trait AlertDelivery: Send + Sync {
    /// Hands `notification` to `channel` and returns at once.
    fn deliver(&self, channel: &str, notification: Notification);
}

impl AlertDelivery for Notifier {
    fn deliver(&self, channel: &str, notification: Notification) {
        drop(self.send_in_background(channel, notification));
    }
}

/// The engine, its state file and its delivery, shared by the observer and the ticker.
pub struct AlertService {
    engine: Mutex<AlertEngine>,
    state_path: PathBuf,
    delivery: Arc<dyn AlertDelivery>,
}

impl AlertService {
    /// Resumes the state saved in `data_dir` for `rules`.
    pub fn start(
        rules: Vec<Rule>,
        data_dir: &Path,
        zone: jiff::tz::TimeZone,
        delivery: Arc<dyn AlertDelivery>,
    ) -> Arc<AlertService> {
        let state_path = state_path(data_dir);
        let state = load_or_set_aside(&state_path);
        let engine = AlertEngine::new(rules, state, Timestamp::now()).with_zone(zone);
        Arc::new(AlertService {
            engine: Mutex::new(engine),
            state_path,
            delivery,
        })
    }

    fn engine(&self) -> MutexGuard<'_, AlertEngine> {
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets `novelty` rules work; call before [`AlertService::log_rules`].
    pub fn set_novelty_scorer(&self, scorer: Arc<dyn NoveltyScorer>) {
        self.engine().set_novelty_scorer(scorer);
    }

    /// Logs the rules at start, and those that cannot fire.
    pub fn log_rules(&self) {
        let engine = self.engine();
        for (rule, reason) in engine.inactive_rules() {
            tracing::warn!(rule, reason, "alert rule inactive");
        }
        let names: Vec<&str> = engine
            .rules()
            .iter()
            .map(|rule| rule.name.as_str())
            .collect();
        if !names.is_empty() {
            tracing::info!(
                rules = %names.join(","),
                firing = engine.state().active.len(),
                "alert rules loaded"
            );
        }
    }

    /// A gap in a file's offsets, found by the collector.
    pub fn report_gap(&self, agent: &str, file: &str, range: Range<u64>) {
        self.engine()
            .report_gap(agent, file, range, Timestamp::now());
    }

    /// The observer feeding this service.
    pub fn observer(self: &Arc<Self>) -> Arc<dyn DocumentObserver> {
        Arc::new(AlertObserver {
            service: self.clone(),
        })
    }

    /// Ticks until `shutdown` turns true, then saves the state a last time.
    pub async fn run(
        self: Arc<Self>,
        collector: Arc<Collector>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(TICK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            let save_due = last_save.elapsed() >= SAVE_INTERVAL;
            let documents = self.step(Timestamp::now(), save_due).await;
            if save_due {
                last_save = Instant::now();
            }
            if !documents.is_empty() {
                let collector = collector.clone();
                tokio::spawn(async move {
                    let count = documents.len();
                    if let Err(error) = collector.store.write(documents).await {
                        tracing::warn!(%error, count, "alert documents not indexed");
                    }
                });
            }
        }
        let snapshot = self.engine().take_changed_state();
        if let Some(bytes) = snapshot {
            self.save(bytes).await;
        }
    }

    /// One tick: decides, saves when needed, delivers; returns the documents to index.
    pub async fn step(&self, now: Timestamp, save_due: bool) -> Vec<Document> {
        let (decisions, snapshot) = {
            let mut engine = self.engine();
            let decisions: Vec<(Decision, Option<Rule>)> = engine
                .tick(now)
                .into_iter()
                .map(|decision| {
                    let rule = engine.rule(&decision.alert().rule).cloned();
                    (decision, rule)
                })
                .collect();
            let snapshot = if save_due || !decisions.is_empty() {
                engine.take_changed_state()
            } else {
                None
            };
            (decisions, snapshot)
        };
        if let Some(bytes) = snapshot {
            self.save(bytes).await;
        }
        let mut documents = Vec::with_capacity(decisions.len());
        for (decision, rule) in decisions {
            let alert = decision.alert();
            tracing::info!(
                rule = %alert.rule,
                key = %alert.key,
                action = decision.action(),
                count = alert.count,
                "alert"
            );
            if let Some(rule) = &rule {
                let notification = message::notification(&decision, rule);
                for channel in &rule.notify {
                    self.delivery.deliver(channel, notification.clone());
                }
            }
            documents.push(message::document(&decision, rule.as_ref(), now));
        }
        documents
    }

    async fn save(&self, bytes: Vec<u8>) {
        let path = self.state_path.clone();
        let written = tokio::task::spawn_blocking(move || write_state(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "alert state not saved"),
            Err(error) => tracing::error!(%error, "alert state not saved"),
        }
    }
}

/// Feeds every document to the engine.
struct AlertObserver {
    service: Arc<AlertService>,
}

impl DocumentObserver for AlertObserver {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn observe(&self, agent_id: &str, documents: &mut [Document]) {
        let now = Timestamp::now();
        let mut engine = self.service.engine();
        for document in documents.iter() {
            engine.observe(agent_id, &document.body, now);
        }
    }
}
