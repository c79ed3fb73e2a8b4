//! The status file: the running agent's counters and buffer fill, rewritten every
//! second in `{data_dir}/status.json`, and what `garonne-agent status` makes of it.
//!
//! The file outlives the agent, so a reader must tell a live agent from the last words
//! of a stopped or killed one: the agent writes `"running": false` as it stops, and a
//! file that has not been rewritten for [`STALE_AFTER`] belongs to an agent that died
//! without stopping.

use crate::buffer::DiskBuffer;
use crate::metrics::AgentMetrics;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// File in the data directory where the agent keeps its counters.
pub const STATUS_FILE: &str = "status.json";

/// How often a running agent rewrites the file.
const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// A status file older than this, still saying `"running": true`, was left by an agent
/// that was killed or hangs: ten missed rewrites.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// Rewrites the status file every second until the task is dropped.
pub async fn write_periodically(
    path: PathBuf,
    buffer: Arc<DiskBuffer>,
    metrics: Arc<AgentMetrics>,
) {
    let mut ticks = tokio::time::interval(WRITE_INTERVAL);
    loop {
        ticks.tick().await;
        write(&path, &buffer, &metrics, true);
    }
}

/// Writes the counters and the buffer's fill atomically (temporary file, rename).
/// `running` is false in the last status written as the agent stops.
pub fn write(path: &Path, buffer: &DiskBuffer, metrics: &AgentMetrics, running: bool) {
    let mut status = Map::new();
    status.insert("running".into(), running.into());
    status.insert("updated_ms".into(), unix_millis(SystemTime::now()).into());
    for (name, value) in metrics.snapshot() {
        status.insert(name.to_string(), value.into());
    }
    status.insert(
        "pending_batches".into(),
        (buffer.pending_batches() as u64).into(),
    );
    status.insert("pending_bytes".into(), buffer.pending_bytes().into());
    status.insert("buffer_capacity_bytes".into(), buffer.capacity().into());
    let text = Value::Object(status).to_string();
    let temporary = path.with_extension("json.tmp");
    let written = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        tracing::debug!(path = %path.display(), %error, "cannot write status file");
    }
}

/// Milliseconds since the Unix epoch; 0 for a clock set before it.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// What a status file says of the agent that wrote it.
#[derive(Debug, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// The agent wrote its last status as it stopped.
    Stopped,
    /// The agent says it runs, but has not rewritten the file for this long.
    Silent(Duration),
}

impl Liveness {
    /// Reads the `running` and `updated_ms` fields of a status file at `now_ms`. A
    /// status without them (an unreadable one) counts as stopped.
    pub fn of(status: &Value, now_ms: u64) -> Liveness {
        let running = status["running"].as_bool().unwrap_or(false);
        let updated_ms = status["updated_ms"].as_u64();
        match (running, updated_ms) {
            (false, _) | (true, None) => Liveness::Stopped,
            (true, Some(updated_ms)) => {
                // A clock set back since the write makes the file look new, not stale.
                let silent = Duration::from_millis(now_ms.saturating_sub(updated_ms));
                if silent > STALE_AFTER {
                    Liveness::Silent(silent)
                } else {
                    Liveness::Running
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_790_000_000_000;

    #[test]
    fn a_fresh_status_of_a_running_agent_is_running() {
        let status = json!({"running": true, "updated_ms": NOW - 1_500});
        assert_eq!(Liveness::of(&status, NOW), Liveness::Running);
    }

    #[test]
    fn the_last_status_written_while_stopping_is_stopped_however_fresh() {
        let status = json!({"running": false, "updated_ms": NOW});
        assert_eq!(Liveness::of(&status, NOW), Liveness::Stopped);
    }

    #[test]
    fn a_running_status_not_rewritten_for_long_is_silent_for_that_long() {
        let status = json!({"running": true, "updated_ms": NOW - 60_000});
        assert_eq!(
            Liveness::of(&status, NOW),
            Liveness::Silent(Duration::from_secs(60))
        );
        let at_the_limit = json!({"running": true, "updated_ms": NOW - 10_000});
        assert_eq!(Liveness::of(&at_the_limit, NOW), Liveness::Running);
    }

    #[test]
    fn a_status_written_after_now_by_a_clock_set_back_is_running() {
        let status = json!({"running": true, "updated_ms": NOW + 3_600_000});
        assert_eq!(Liveness::of(&status, NOW), Liveness::Running);
    }

    #[test]
    fn a_status_without_its_fields_counts_as_stopped() {
        assert_eq!(Liveness::of(&json!({}), NOW), Liveness::Stopped);
        assert_eq!(
            Liveness::of(&json!({"running": true}), NOW),
            Liveness::Stopped
        );
    }
}
