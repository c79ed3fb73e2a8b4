//! The semantic layer's background tasks: embedding the queue, saving, and refreshing
//! payloads in the vector store.

use super::embed::{Embedder, prepare_text};
use super::queue::{EmbedItem, ItemKind};
use super::stats::TemplateStats;
use super::vectors::{PointPayload, VectorPoint, VectorStore};
use super::{Shared, save, save_queue};
use crate::templates::TemplateId;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// First wait after a failed batch.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Longest wait between two tries of a failing batch.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Exponential backoff: doubles from `initial` up to `max`, with up to a quarter of
/// random shortening so that collectors restarted together do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    pub failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial,
            failures: 0,
        }
    }

    /// The wait before the next try, given a random `jitter` in `[0, 1)`.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let delay = self.next.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 4.0);
        self.next = (self.next * 2).min(self.max);
        self.failures += 1;
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
        self.failures = 0;
    }
}

/// Embeds queued texts batch by batch until `stop` turns true.
pub(super) async fn embed_loop(
    shared: Arc<Shared>,
    embedder: Embedder,
    vectors: VectorStore,
    batch_size: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = shared
            .queue
            .lock()
            .expect("queue lock")
            .peek_batch(batch_size);
        if batch.is_empty() {
            tokio::select! {
                _ = shared.wake.notified() => continue,
                _ = stop.changed() => return,
            }
        }
        let outcome = tokio::select! {
            outcome = embed_batch(&shared, &embedder, &vectors, &batch) => outcome,
            _ = stop.changed() => return,
        };
        match outcome {
            Ok(()) => {
                backoff.reset();
                shared.queue.lock().expect("queue lock").complete(&batch);
                if let Err(error) = save_queue(&shared) {
                    tracing::warn!(%error, "cannot save the embedding queue");
                }
            }
            Err(error) => {
                shared
                    .metrics
                    .embedding_failures
                    .fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay(rand::random::<f64>());
                tracing::warn!(%error, texts = batch.len(), failures = backoff.failures,
                    retry_in_ms = delay.as_millis() as u64, "embedding batch failed, will retry");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// One model call for the batch, then one store write.
async fn embed_batch(
    shared: &Shared,
    embedder: &Embedder,
    vectors: &VectorStore,
    batch: &[EmbedItem],
) -> Result<(), super::SemanticError> {
    let texts: Vec<String> = batch.iter().map(|item| prepare_text(&item.text)).collect();
    shared
        .metrics
        .embedding_calls
        .fetch_add(1, Ordering::Relaxed);
    let embedded = embedder.embed(&texts).await?;
    shared
        .metrics
        .texts_embedded
        .fetch_add(texts.len() as u64, Ordering::Relaxed);
    if let Ok(mut novelty) = shared.novelty.lock() {
        for (item, vector) in batch.iter().zip(&embedded) {
            if item.kind == ItemKind::Template {
                novelty.add(item.key, vector);
            }
        }
    }
    let points: Vec<VectorPoint> = {
        let state = shared.state.lock().expect("miner lock");
        batch
            .iter()
            .zip(embedded)
            .map(|(item, vector)| VectorPoint {
                kind: item.kind,
                key: item.key,
                vector,
                payload: payload_of(item, state.stats.get(TemplateId(item.key))),
            })
            .collect()
    };
    vectors.upsert(points).await?;
    tracing::debug!(texts = batch.len(), "embedded and stored a batch");
    Ok(())
}

/// The payload stored with an item's vector.
fn payload_of(item: &EmbedItem, stats: Option<&TemplateStats>) -> PointPayload {
    match (item.kind, stats, &item.origin) {
        (ItemKind::Template, Some(stats), _) => template_payload(stats),
        (ItemKind::Event, _, Some(origin)) => PointPayload {
            kind: ItemKind::Event.as_str().into(),
            key: format!("{:016x}", item.key),
            text: item.text.clone(),
            count: 1,
            first_seen_ms: origin.time_ms,
            last_seen_ms: origin.time_ms,
            datasets: vec![origin.dataset.clone()],
            hosts: origin.host.iter().cloned().collect(),
            examples: vec![origin.event_id.clone()],
        },
        _ => PointPayload {
            kind: item.kind.as_str().into(),
            key: format!("{:016x}", item.key),
            text: item.text.clone(),
            ..PointPayload::default()
        },
    }
}

pub(super) fn template_payload(stats: &TemplateStats) -> PointPayload {
    PointPayload {
        kind: ItemKind::Template.as_str().into(),
        key: stats.id.to_string(),
        text: stats.template.clone(),
        count: stats.count,
        first_seen_ms: stats.first_seen_ms,
        last_seen_ms: stats.last_seen_ms,
        datasets: stats.datasets.iter().cloned().collect(),
        hosts: stats.hosts.iter().cloned().collect(),
        examples: stats.examples.clone(),
    }
}

/// Saves every `interval` until `stop` turns true.
pub(super) async fn save_loop(
    shared: Arc<Shared>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let shared = shared.clone();
        let saved = tokio::task::spawn_blocking(move || save(&shared)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot save templates, will retry"),
            Err(error) => tracing::warn!(%error, "template save task failed"),
        }
    }
}

/// Pushes the counts of templates seen since the last refresh, every `interval`.
pub(super) async fn refresh_loop(
    shared: Arc<Shared>,
    vectors: VectorStore,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let payloads = touched_payloads(&shared);
        if payloads.is_empty() {
            continue;
        }
        let count = payloads.len();
        let keys: Vec<u64> = payloads.iter().map(|(_, key, _)| *key).collect();
        if let Err(error) = vectors.refresh(payloads).await {
            tracing::warn!(
                %error,
                templates = count,
                "cannot refresh template payloads, will retry",
            );
            shared
                .state
                .lock()
                .expect("miner lock")
                .touched
                .extend(keys);
        }
    }
}

/// Payloads of the templates counted since the last refresh that already have a vector
/// (the others get theirs with the vector).
fn touched_payloads(shared: &Shared) -> Vec<(ItemKind, u64, PointPayload)> {
    let mut state = shared.state.lock().expect("miner lock");
    let queue = shared.queue.lock().expect("queue lock");
    let touched: Vec<u64> = state.touched.drain().collect();
    touched
        .into_iter()
        .filter(|&key| !queue.contains(ItemKind::Template, key))
        .filter_map(|key| {
            let stats = state.stats.get(TemplateId(key))?;
            Some((ItemKind::Template, key, template_payload(stats)))
        })
        .collect()
}
