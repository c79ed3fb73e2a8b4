//! Counters the agent keeps about itself, logged periodically and readable by tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the agent did since it started. Each counter only grows.
#[derive(Debug, Default)]
pub struct AgentMetrics {
    pub lines_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub lines_truncated: AtomicU64,
    pub batches_buffered: AtomicU64,
    pub batches_acknowledged: AtomicU64,
    /// Batches the collector refused for good (corrupt on disk); their lines are lost.
    pub batches_rejected: AtomicU64,
    pub lines_rejected: AtomicU64,
    pub files_opened: AtomicU64,
    pub files_rotated: AtomicU64,
    pub files_truncated: AtomicU64,
    /// Lines read again from a rotated copy after a truncation.
    pub lines_recovered: AtomicU64,
    /// Time reading was paused because the disk buffer was full.
    pub buffer_full_millis: AtomicU64,
    pub connections: AtomicU64,
}

impl AgentMetrics {
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
