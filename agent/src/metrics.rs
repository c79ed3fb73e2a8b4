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
    /// 1 while reading is paused on a full buffer, else 0.
    pub reading_paused: AtomicU64,
    /// Connections made to a collector.
    pub connections: AtomicU64,
    /// 1 while connected to a collector, else 0.
    pub connected: AtomicU64,
    /// Results of assigned monitors put into the disk buffer.
    pub probe_results: AtomicU64,
    /// Results of assigned monitors dropped because the disk buffer was full.
    pub probe_results_dropped: AtomicU64,
}

impl AgentMetrics {
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl AgentMetrics {
    /// Every counter by name, for the status file and logs.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let counters = [
            ("lines_read", &self.lines_read),
            ("bytes_read", &self.bytes_read),
            ("lines_truncated", &self.lines_truncated),
            ("batches_buffered", &self.batches_buffered),
            ("batches_acknowledged", &self.batches_acknowledged),
            ("batches_rejected", &self.batches_rejected),
            ("lines_rejected", &self.lines_rejected),
            ("files_opened", &self.files_opened),
            ("files_rotated", &self.files_rotated),
            ("files_truncated", &self.files_truncated),
            ("lines_recovered", &self.lines_recovered),
            ("buffer_full_millis", &self.buffer_full_millis),
            ("reading_paused", &self.reading_paused),
            ("connections", &self.connections),
            ("connected", &self.connected),
            ("probe_results", &self.probe_results),
            ("probe_results_dropped", &self.probe_results_dropped),
        ];
        counters
            .into_iter()
            .map(|(name, counter)| (name, AgentMetrics::get(counter)))
            .collect()
    }
}
