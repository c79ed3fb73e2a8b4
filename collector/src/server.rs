//! The QUIC side of the collector: accepts agents, answers their hello, and turns each
//! batch stream into documents in the store before answering it.
//!
//! An agent is admitted only with a client certificate signed by `client_ca`; a refused
//! handshake is logged and affects no other connection. At most `max_connections`
//! agents are served at once; further ones are refused at once so they try another
//! collector. A batch is answered `Accepted` only after the store made it durable,
//! `RetryLater` when the store is unavailable, and `Rejected` when it does not decode.
//!
//! After its welcome an agent gets the monitors it runs (see `probes::agents`); their
//! results come back inside its batches and are stored with them.

use crate::continuity::{ContinuityTracker, Gap};
use crate::observe::DocumentObserver;
use crate::parse::ParseContext;
use crate::pipeline::{build_documents, parse_only};
use crate::probes::agents::AgentResults;
use crate::store::{Store, StoreError};
use garonne_common::probe::Assignment;
use garonne_common::wire::{self, BatchResult, FrameKind, Hello, Welcome};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Batch streams one agent may have open at once.
const MAX_STREAMS_PER_AGENT: u32 = 64;

/// What the collector did since it started.
#[derive(Debug, Default)]
pub struct CollectorMetrics {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub batches_received: AtomicU64,
    pub batches_rejected: AtomicU64,
    pub batches_deferred: AtomicU64,
    pub events_received: AtomicU64,
    pub documents_created: AtomicU64,
    pub documents_duplicate: AtomicU64,
    pub documents_dead_lettered: AtomicU64,
    pub lines_unparsed: AtomicU64,
    pub lines_blank: AtomicU64,
    pub lines_invalid_utf8: AtomicU64,
    pub lines_truncated: AtomicU64,
    /// Byte ranges of files that never arrived (see `continuity`).
    pub offset_gaps: AtomicU64,
}

fn add(counter: &AtomicU64, amount: usize) {
    counter.fetch_add(amount as u64, Ordering::Relaxed);
}

/// Called with each gap the continuity check finds.
pub type GapListener = Box<dyn Fn(&Gap) + Send + Sync>;

/// The receiving pipeline, shared by every connection.
pub struct Collector {
    pub store: Store,
    pub context: ParseContext,
    pub metrics: CollectorMetrics,
    /// See every batch's documents before they are stored, in order.
    pub observers: Vec<Arc<dyn DocumentObserver>>,
    /// Byte ranges received per file, to prove nothing went missing.
    pub continuity: std::sync::Mutex<ContinuityTracker>,
    /// Told of every gap found (the alert rules' `loss` kind listens here).
    pub gap_listener: Option<GapListener>,
    /// Assigns monitors to agents and takes their results.
    pub agent_monitors: Arc<AgentResults>,
    /// Batches decoded and stored at once, across every agent (see [`batch_slots`]).
    pub batch_slots: Semaphore,
}

/// How many batches the collector decodes and stores at once, whatever the number of
/// agents and of batches each has in flight: one per core and two more, so that
/// documents are built on every core while the store writes others.
///
/// A batch's documents take up to about 75 MiB for a full batch of 4,096 Apache lines
/// until the store has them, so this bounds the collector's memory when many agents
/// catch up at once. Batches beyond it wait, still compressed, in their streams.
pub fn batch_slots() -> Semaphore {
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    Semaphore::new(cores + 2)
}

/// The order in which one connection's batches arrived, which is the order the agent
/// sent them (QUIC hands streams over in the order they were opened). Each batch holds
/// a [`Turn`]; a batch may wait until every batch before it has passed its turn.
#[derive(Default)]
struct Turns {
    state: std::sync::Mutex<TurnState>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct TurnState {
    /// Every turn below this one has passed.
    next: u64,
    /// Turns passed ahead of `next`.
    passed: std::collections::BTreeSet<u64>,
}

/// One batch's place in its connection's order. It passes when the batch no longer
/// holds back the batches after it, and at the latest when it is dropped, whatever
/// happened to the batch.
pub struct Turn {
    turns: Arc<Turns>,
    number: u64,
    passed: bool,
}

impl Turns {
    fn lock(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Turn {
    fn next(turns: &Arc<Turns>, number: u64) -> Turn {
        Turn {
            turns: turns.clone(),
            number,
            passed: false,
        }
    }

    /// Returns once every batch before this one has passed its turn.
    async fn wait(&self) {
        loop {
            let changed = self.turns.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.turns.lock().next >= self.number {
                return;
            }
            changed.await;
        }
    }

    fn pass(&mut self) {
        if std::mem::replace(&mut self.passed, true) {
            return;
        }
        let mut state = self.turns.lock();
        state.passed.insert(self.number);
        loop {
            let next = state.next;
            if !state.passed.remove(&next) {
                break;
            }
            state.next += 1;
        }
        drop(state);
        self.turns.changed.notify_waiters();
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.pass();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
}

impl Collector {
    /// Decodes, parses and stores one batch payload, and says how it went. `turn` is the
    /// batch's place among its connection's batches: results of assigned monitors are
    /// applied in that order.
    pub async fn handle_batch(self: &Arc<Self>, payload: Vec<u8>, mut turn: Turn) -> BatchResult {
        // Held until the store has the documents; the semaphore is never closed.
        let mut slot = Some(self.batch_slots.acquire().await);
        let decoded = tokio::task::spawn_blocking(move || wire::decode_batch(&payload)).await;
        let batch = match decoded {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => {
                add(&self.metrics.batches_rejected, 1);
                tracing::warn!(%error, "refusing a batch that does not decode");
                return BatchResult::Rejected {
                    reason: error.to_string(),
                };
            }
            Err(error) => {
                return BatchResult::RetryLater {
                    reason: error.to_string(),
                };
            }
        };
        if batch
            .chunks
            .iter()
            .any(|chunk| chunk.module == garonne_common::Module::Probe)
        {
            // A monitor's results move its state only forward in time, so an agent's
            // results, sent oldest first, are applied in the order they were sent: this
            // batch waits for the batches sent before it, without holding a slot that
            // they may need.
            drop(slot.take());
            turn.wait().await;
            slot = Some(self.batch_slots.acquire().await);
        } else {
            turn.pass();
        }
        let _slot = slot;
        let collector = self.clone();
        let built = tokio::task::spawn_blocking(move || {
            let lines = batch.line_count();
            collector.check_continuity(&batch);
            let (mut documents, report) = if matches!(collector.store, Store::Discard) {
                (Vec::new(), parse_only(&batch, &collector.context))
            } else {
                let (mut documents, report) = build_documents(&batch, &collector.context);
                for observer in &collector.observers {
                    observer.observe(&batch.agent_id, &mut documents);
                }
                (documents, report)
            };
            documents.extend(collector.agent_monitors.documents(&batch));
            (lines, documents, report)
        })
        .await;
        turn.pass();
        let (lines, documents, report) = match built {
            Ok(built) => built,
            Err(error) => {
                return BatchResult::RetryLater {
                    reason: error.to_string(),
                };
            }
        };
        let metrics = &self.metrics;
        add(&metrics.batches_received, 1);
        add(&metrics.events_received, lines);
        add(&metrics.lines_unparsed, report.unparsed);
        add(&metrics.lines_blank, report.blank_lines);
        add(&metrics.lines_invalid_utf8, report.invalid_utf8);
        add(&metrics.lines_truncated, report.truncated);
        match self.store.write(documents).await {
            Ok(written) => {
                add(&metrics.documents_created, written.created);
                add(&metrics.documents_duplicate, written.duplicates);
                add(&metrics.documents_dead_lettered, written.dead_lettered);
                BatchResult::Accepted {
                    events: lines as u32,
                }
            }
            Err(error @ StoreError::Unavailable(_)) => {
                add(&metrics.batches_deferred, 1);
                tracing::warn!(%error, "store unavailable, agent will resend the batch");
                BatchResult::RetryLater {
                    reason: error.to_string(),
                }
            }
            Err(error) => {
                add(&metrics.batches_deferred, 1);
                tracing::error!(%error, "store failed, agent will resend the batch");
                BatchResult::RetryLater {
                    reason: error.to_string(),
                }
            }
        }
    }
}

impl Collector {
    /// Records the batch's byte ranges and reports gaps that stayed open too long.
    fn check_continuity(&self, batch: &garonne_common::Batch) {
        let gaps = match self.continuity.lock() {
            Ok(mut tracker) => tracker.record(batch, std::time::Instant::now()),
            Err(_) => return,
        };
        for gap in gaps {
            add(&self.metrics.offset_gaps, 1);
            tracing::error!(agent_id = %gap.agent_id, path = %gap.path, identity = %gap.identity,
                start = gap.start, end = gap.end, bytes = gap.end - gap.start,
                "lines missing: a byte range of this file never arrived");
            if let Some(listener) = &self.gap_listener {
                listener(&gap);
            }
        }
    }
}

/// Binds the QUIC endpoint; returns it with the address actually bound.
pub fn bind(
    listen: SocketAddr,
    tls: rustls::ServerConfig,
) -> Result<(quinn::Endpoint, SocketAddr), ServeError> {
    let fail = |reason: String| ServeError::Listen {
        address: listen,
        reason,
    };
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| fail(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(MAX_STREAMS_PER_AGENT.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.max_idle_timeout(Some(
        IDLE_TIMEOUT
            .try_into()
            .map_err(|_| fail("idle timeout".into()))?,
    ));
    config.transport_config(Arc::new(transport));
    let endpoint = quinn::Endpoint::server(config, listen).map_err(|e| fail(e.to_string()))?;
    let bound = endpoint.local_addr().map_err(|e| fail(e.to_string()))?;
    Ok((endpoint, bound))
}

/// Accepts agents until `shutdown` turns true, then lets open batches finish.
pub async fn serve(
    endpoint: quinn::Endpoint,
    collector: Arc<Collector>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = shutdown.changed() => break,
        };
        let Some(incoming) = incoming else { break };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            add(&collector.metrics.connections_refused, 1);
            tracing::warn!(
                remote = %incoming.remote_address(),
                max_connections,
                "connection limit reached, refusing agent",
            );
            incoming.refuse();
            continue;
        };
        let collector = collector.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            if let Err(error) = serve_agent(incoming, &collector).await {
                tracing::info!(%remote, %error, "agent connection ended");
            }
            drop(slot);
        });
    }
    endpoint.close(0u32.into(), b"collector stopping");
    endpoint.wait_idle().await;
}

async fn serve_agent(incoming: quinn::Incoming, collector: &Arc<Collector>) -> anyhow::Result<()> {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            add(&collector.metrics.connections_refused, 1);
            tracing::warn!(%remote, %error, "agent handshake failed");
            return Ok(());
        }
    };
    let (mut send, mut receive) = connection.accept_bi().await?;
    let hello: Hello = wire::read_message(&mut receive, FrameKind::Hello).await?;
    let welcome = Welcome {
        collector_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    wire::write_message(&mut send, FrameKind::Welcome, &welcome).await?;
    let assignment = collector.agent_monitors.assignment(&hello.agent_id);
    // An agent that predates assignments stops reading after the welcome; that must
    // not cost it its connection, so a failure here is not the connection's end.
    if let Err(error) = send_assignment(&mut send, &assignment).await {
        tracing::debug!(agent_id = %hello.agent_id, %error, "monitor assignment not delivered");
    }
    add(&collector.metrics.connections_accepted, 1);
    tracing::info!(
        %remote,
        agent_id = %hello.agent_id,
        version = %hello.agent_version,
        monitors = assignment.monitors.len(),
        "agent connected",
    );
    let turns = Arc::new(Turns::default());
    let mut number = 0u64;
    loop {
        let (send, receive) = connection.accept_bi().await?;
        let collector = collector.clone();
        let turn = Turn::next(&turns, number);
        number += 1;
        tokio::spawn(async move {
            if let Err(error) = serve_batch(send, receive, &collector, turn).await {
                tracing::debug!(%error, "batch stream failed, the agent will resend it");
            }
        });
    }
}

/// Sends the agent its monitors after the welcome and ends the control stream.
async fn send_assignment(
    send: &mut quinn::SendStream,
    assignment: &Assignment,
) -> anyhow::Result<()> {
    wire::write_message(send, FrameKind::Assignment, assignment).await?;
    send.finish()?;
    Ok(())
}

async fn serve_batch(
    mut send: quinn::SendStream,
    mut receive: quinn::RecvStream,
    collector: &Arc<Collector>,
    turn: Turn,
) -> anyhow::Result<()> {
    let (kind, payload) = wire::read_frame(&mut receive).await?;
    let result = if kind == FrameKind::Batch {
        collector.handle_batch(payload, turn).await
    } else {
        BatchResult::Rejected {
            reason: format!("expected a batch frame, got {kind:?}"),
        }
    };
    wire::write_message(&mut send, FrameKind::BatchResult, &result).await?;
    send.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether `turn` is let through within a short wait.
    async fn let_through(turn: &Turn) -> bool {
        tokio::time::timeout(Duration::from_millis(50), turn.wait())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_turn_waits_for_every_turn_before_it_in_any_order() {
        let turns = Arc::new(Turns::default());
        let mut first = Turn::next(&turns, 0);
        let second = Turn::next(&turns, 1);
        let mut third = Turn::next(&turns, 2);
        assert!(let_through(&first).await);
        assert!(!let_through(&third).await);

        third.pass();
        first.pass();
        assert!(!let_through(&third).await, "the second has not passed");
        drop(second);
        assert!(let_through(&third).await, "a dropped turn passes");
        assert_eq!(turns.lock().next, 3);
    }

    #[tokio::test]
    async fn a_waiting_turn_wakes_when_the_last_before_it_passes() {
        let turns = Arc::new(Turns::default());
        let mut first = Turn::next(&turns, 0);
        let second = Turn::next(&turns, 1);
        let waiting = tokio::spawn(async move { second.wait().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        first.pass();
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .unwrap();
    }
}
