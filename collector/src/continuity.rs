//! Proof of no loss: for every file of every agent, the byte ranges of the lines
//! received must join up, each line starting where the previous one ended.
//!
//! Batches of one file can arrive out of order (several are in flight, and replays
//! follow reconnects), so a hole is only a gap once it has stayed open for
//! [`GAP_GRACE`]; it is then reported once, with the agent, the file and the range.
//! A collector that starts mid-file takes the first range it sees as the beginning.
//! State lives in memory: after a restart, checking starts again from what arrives.

use garonne_common::{Batch, FileIdentity, Module};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a hole may stay open before it counts as lost lines.
pub const GAP_GRACE: Duration = Duration::from_secs(120);

/// Files not heard from for this long are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Bytes of a file that were never received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub agent_id: String,
    pub path: String,
    pub identity: FileIdentity,
    /// Start and end (exclusive) byte offsets of the missing range.
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Default)]
struct FileRanges {
    path: String,
    /// Disjoint, sorted, non-adjacent `[start, end)` ranges received.
    ranges: Vec<(u64, u64)>,
    /// When each hole (keyed by its start) was first seen.
    holes_seen: HashMap<u64, Instant>,
    reported: Vec<(u64, u64)>,
    last_seen: Option<Instant>,
}

/// Tracks received ranges per file; pure logic with the clock passed in.
#[derive(Debug, Default)]
pub struct ContinuityTracker {
    files: HashMap<(String, FileIdentity), FileRanges>,
}

impl ContinuityTracker {
    /// Records a batch's lines and returns gaps that just passed the grace period.
    pub fn record(&mut self, batch: &Batch, now: Instant) -> Vec<Gap> {
        // Probe results are not a file: their offsets are check times, not bytes.
        let files = batch
            .chunks
            .iter()
            .filter(|chunk| chunk.module != Module::Probe);
        for chunk in files {
            let (Some(first), Some(end)) = (chunk.entries.first(), chunk.end()) else {
                continue;
            };
            let key = (batch.agent_id.clone(), chunk.identity);
            let file = self.files.entry(key).or_default();
            file.path.clone_from(&chunk.path);
            file.last_seen = Some(now);
            // Lines of a chunk are consecutive by construction; one range covers them.
            insert_range(&mut file.ranges, first.offset, end);
        }
        self.sweep(now)
    }

    /// Gaps whose grace period ended; also forgets long-silent files.
    pub fn sweep(&mut self, now: Instant) -> Vec<Gap> {
        let mut gaps = Vec::new();
        self.files.retain(|(agent_id, identity), file| {
            let fresh = file
                .last_seen
                .is_some_and(|seen| now.duration_since(seen) < FORGET_AFTER);
            if fresh {
                collect_gaps(agent_id, identity, file, now, &mut gaps);
            }
            fresh
        });
        gaps
    }
}

fn collect_gaps(
    agent_id: &str,
    identity: &FileIdentity,
    file: &mut FileRanges,
    now: Instant,
    gaps: &mut Vec<Gap>,
) {
    let holes: Vec<(u64, u64)> = file
        .ranges
        .windows(2)
        .map(|pair| (pair[0].1, pair[1].0))
        .collect();
    file.holes_seen
        .retain(|start, _| holes.iter().any(|hole| hole.0 == *start));
    for hole in holes {
        let first_seen = *file.holes_seen.entry(hole.0).or_insert(now);
        let overdue = now.duration_since(first_seen) >= GAP_GRACE;
        if overdue && !file.reported.contains(&hole) {
            file.reported.push(hole);
            gaps.push(Gap {
                agent_id: agent_id.to_string(),
                path: file.path.clone(),
                identity: *identity,
                start: hole.0,
                end: hole.1,
            });
        }
    }
}

/// Adds `[start, end)` to sorted disjoint ranges, merging what touches or overlaps.
fn insert_range(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    let position = ranges.partition_point(|range| range.1 < start);
    let mut merged = (start, end);
    let mut last = position;
    while last < ranges.len() && ranges[last].0 <= merged.1 {
        merged.0 = merged.0.min(ranges[last].0);
        merged.1 = merged.1.max(ranges[last].1);
        last += 1;
    }
    ranges.splice(position..last, [merged]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use garonne_common::{FileChunk, LineFlags, Module};

    const IDENTITY: FileIdentity = FileIdentity {
        device: 1,
        inode: 2,
        fingerprint: 3,
    };

    fn batch(lines: &[(u64, u64)]) -> Batch {
        let mut chunk = FileChunk::new("/var/log/a.log".into(), IDENTITY, Module::Plain, 0);
        for (offset, length) in lines {
            chunk.push(*offset, *length, b"x", LineFlags::default());
        }
        Batch {
            agent_id: "web1".into(),
            host_name: "h".into(),
            chunks: vec![chunk],
        }
    }

    #[test]
    fn ranges_merge_when_they_touch_or_overlap() {
        let mut ranges = Vec::new();
        insert_range(&mut ranges, 10, 20);
        insert_range(&mut ranges, 30, 40);
        assert_eq!(ranges, vec![(10, 20), (30, 40)]);
        insert_range(&mut ranges, 20, 30);
        assert_eq!(ranges, vec![(10, 40)]);
        insert_range(&mut ranges, 0, 5);
        insert_range(&mut ranges, 15, 25);
        assert_eq!(ranges, vec![(0, 5), (10, 40)]);
    }

    #[test]
    fn out_of_order_batches_are_not_gaps() {
        let mut tracker = ContinuityTracker::default();
        let start = Instant::now();
        assert!(
            tracker
                .record(&batch(&[(100, 10), (110, 10)]), start)
                .is_empty()
        );
        assert!(
            tracker
                .record(&batch(&[(0, 50), (50, 50)]), start)
                .is_empty()
        );
        assert!(tracker.sweep(start + GAP_GRACE * 2).is_empty());
    }

    #[test]
    fn a_hole_open_past_the_grace_period_is_reported_once() {
        let mut tracker = ContinuityTracker::default();
        let start = Instant::now();
        tracker.record(&batch(&[(0, 10)]), start);
        tracker.record(&batch(&[(30, 10)]), start);
        assert!(tracker.sweep(start + GAP_GRACE / 2).is_empty());
        let gaps = tracker.sweep(start + GAP_GRACE);
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].start, gaps[0].end, gaps[0].agent_id.as_str()),
            (10, 30, "web1")
        );
        assert!(tracker.sweep(start + GAP_GRACE * 3).is_empty());
    }

    #[test]
    fn a_replay_filling_the_hole_in_time_cancels_it() {
        let mut tracker = ContinuityTracker::default();
        let start = Instant::now();
        tracker.record(&batch(&[(0, 10)]), start);
        tracker.record(&batch(&[(30, 10)]), start);
        tracker.record(&batch(&[(10, 20)]), start + GAP_GRACE / 2);
        assert!(tracker.sweep(start + GAP_GRACE * 2).is_empty());
    }

    #[test]
    fn silent_files_are_forgotten() {
        let mut tracker = ContinuityTracker::default();
        let start = Instant::now();
        tracker.record(&batch(&[(0, 10)]), start);
        tracker.sweep(start + FORGET_AFTER);
        assert!(tracker.files.is_empty());
    }
}
