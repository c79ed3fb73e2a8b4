//! Finding files, following them through rotation, and turning their new lines into
//! buffered batches.
//!
//! # How a file is followed
//!
//! Files are tracked by device and inode, and told apart from a reused inode or a
//! rewritten file by the fingerprint of their first line (see [`crate::identity`]).
//! An open descriptor follows its file through renames, so a rename rotation costs
//! nothing: the old file is read to its end through its descriptor and released once
//! it has been quiet for `close_inactive`, while the new file at the path is tracked
//! from its start.
//!
//! | what happened                          | how it is seen                           | what is done |
//! |----------------------------------------|------------------------------------------|--------------|
//! | rename and create (logrotate default)  | path leads to another inode              | old read to its end, new read from 0 |
//! | copytruncate                           | file shorter than the read position      | copy's unread lines recovered, file read from 0 |
//! | delete while open                      | path gone                                | read to its end through the descriptor |
//! | inode reused                           | fingerprint differs from the checkpoint  | read from 0 |
//! | truncated and refilled while stopped   | bytes before the checkpoint differ       | read from 0 |
//! | renamed away while stopped             | checkpoint's inode found in its directory| read to its end under any name |
//! | copytruncated while stopped            | a sibling starts like the checkpointed file | copy read from the checkpoint to its end |
//! | copytruncated again before a read      | newer numbered copies of unread content  | each read in full, once (below) |
//! | copytruncated, then renamed while stopped | checkpoint's inode found, changed     | copy read from the checkpoint, file from 0 |
//! | symlink and target both matched        | both resolve to one inode                | read once |
//!
//! After a truncation the file's `generation` grows and is mixed into its fingerprint,
//! so that new content whose first line repeats the old one still gets new event ids.
//!
//! A file that grew is first checked to still begin as it did and to still hold the bytes
//! before its offset; if not, it is handled like a truncated file. That catches a
//! copytruncated file refilled past the read position between two reads, and a new file
//! on the inode of one closed for inactivity and deleted.
//!
//! A copy is told from other siblings that begin alike by the hash of the bytes before
//! the offset, kept with each file; its recovered lines move the checkpoint to the copy's
//! end in the same write, so a restart does not recover them twice.
//!
//! # Generations copied away unseen
//!
//! A generation is what a file holds between two truncations. When copytruncate runs
//! twice before the agent reads the file again (the agent was stopped, or both rotations
//! fell between two reads), the generation in between lives only in a copy that no
//! checkpoint describes. After the checkpointed copy is recovered, such copies are found
//! by their content and by logrotate's numbering together. A sibling is read when:
//!
//! - it is named `{name}.N` (never `.gz`) with `N` below the checkpointed copy's number:
//!   logrotate numbers copies newest first;
//! - it was not among the numbered copies beside the file when the checkpointed
//!   generation was first read (the checkpoint keeps their inodes and first lines), so
//!   an older copy is never taken for a newer one, however copies are numbered;
//! - its first line is none of the last generations the checkpoint remembers having
//!   read, and no checkpoint describes it.
//!
//! Each such copy is read in full, oldest first, under its own identity, and remembered
//! among both in the file's checkpoint, in the same write as its first lines, so it is
//! read once. A
//! file without a checkpoint has nothing recovered beside it: nothing shows that its
//! siblings were ever part of what the agent followed.
//!
//! # Known gaps
//!
//! Content that was never read and is in no copy the agent can find is lost:
//!
//! - A generation copied away unseen whose copy was compressed (`{name}.N.gz`) before
//!   the agent looked: compressed copies are not read. When the checkpointed copy itself
//!   is compressed or gone, its unread lines are lost too, and newer copies are not
//!   looked for, since nothing places them after it. logrotate's `delaycompress` keeps
//!   the latest copy readable.
//! - A generation copied away unseen when copies are not numbered newest first, or not
//!   `{name}.N` at all (`dateext`): which copies are new cannot be told from their names.
//!   Likewise when the file was renamed away after it, before the agent started again:
//!   newer copies may then be those of the file that replaced it.
//! - A generation whose first line repeats one of the last eight generations read from the
//!   file: it is taken for that one and not read.
//! - While running, a generation copied away before the agent read its first line, right
//!   after a truncation: it is recovered only if the agent restarts before the file's
//!   next content is read.
//! - A file the agent never followed (created while it was stopped, or still without a
//!   complete first line) and rotated away before it started again; and a file closed
//!   for inactivity that was written to and deleted before it was reopened. A file is
//!   checkpointed as soon as it is followed, before any of its lines is buffered.
//!
//! A rotated file is also let go with an incomplete last line unread, since no newline
//! will come.
//!
//! # Bounds
//!
//! At most `max_open_files` descriptors are held: files quiet for `close_inactive` and
//! read to their end, and then the least recently active (those read to their end
//! first), are closed and reopened when they change. Reading pauses while the disk
//! buffer is full; lines wait in their files, whose descriptors stay open however long
//! the pause, so that a file rotated and deleted meanwhile is still read to its end.

use crate::buffer::{
    BufferError, Checkpoint, DiskBuffer, GenerationHistory, KnownCopies, KnownCopy,
};
use crate::identity::{self, tail_hash};
use crate::metrics::AgentMetrics;
use crate::reader::{LineReader, ReadBuffer};
use garonne_common::config::{BatchConfig, InputConfig};
use garonne_common::{Batch, FileChunk, FileIdentity, Module, wire};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bytes read from one file per pass, so that one busy file does not starve the rest.
const PASS_BUDGET: u64 = 4 * 1024 * 1024;

/// Least time between two scans triggered by directory events.
const RESCAN_ON_EVENT: Duration = Duration::from_millis(250);

/// How long a full buffer is waited on before shutdown is checked again.
const ROOM_WAIT: Duration = Duration::from_millis(200);

/// Errors that stop the tailer. Errors of single files are logged and skipped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Buffer(#[from] BufferError),
    #[error("batch encoding failed: {0}")]
    Encode(#[from] wire::WireError),
}

/// What the tailer needs to know, taken from the agent's configuration.
#[derive(Debug, Clone)]
pub struct TailerSettings {
    pub agent_id: String,
    pub host_name: String,
    pub inputs: Vec<InputConfig>,
    pub batch: BatchConfig,
    pub scan_interval: Duration,
    pub poll_interval: Duration,
    pub close_inactive: Duration,
    pub max_open_files: usize,
}

type InodeKey = (u64, u64);

/// A file being followed.
struct TrackedFile {
    identity: FileIdentity,
    generation: u32,
    path: PathBuf,
    module: Module,
    max_line_bytes: usize,
    file: Option<File>,
    reader: LineReader,
    /// Hash of the bytes before the reader's offset, as in the file's checkpoint: after
    /// a truncation it tells the file's copy from other siblings that begin alike, and
    /// while reading it notices content replaced under the descriptor.
    tail_hash: Option<u64>,
    /// Generations read from this file, this one included; saved with the checkpoint.
    history: GenerationHistory,
    /// Copies beside the file not to be read as unseen generations; saved with the
    /// checkpoint.
    known_copies: KnownCopies,
    last_change: Instant,
    /// The path no longer leads here: read to the end, then let go.
    rotated: bool,
}

/// A file seen but not yet identifiable: empty, or its first line is incomplete.
struct WaitingFile {
    path: PathBuf,
    module: Module,
    max_line_bytes: usize,
    generation: u32,
    /// Generations read from this file before this one.
    history: GenerationHistory,
}

/// The copy of a truncated file's checkpointed content, once its unread lines are read.
struct RecoveredCopy {
    path: PathBuf,
    /// The truncated file's checkpoint, moved to the copy's end.
    reached: Checkpoint,
}

/// A copy of a generation that was written and rotated away before it was read.
struct UnseenCopy {
    path: PathBuf,
    file: File,
    identity: FileIdentity,
}

/// Lines collected for the next batch, and the checkpoints they advance.
/// Emptied chunks kept for the next batches, so their buffers are not allocated again.
const SPARE_CHUNKS: usize = 4;

/// How long reading must be quiet before its buffers are given back.
const RELEASE_WHEN_QUIET: Duration = Duration::from_secs(5);

struct Quiet {
    lines_read: u64,
    since: Instant,
    released: bool,
}

struct BatchBuilder {
    batch: Batch,
    spare_chunks: Vec<FileChunk>,
    encoder: wire::BatchEncoder,
    checkpoints: HashMap<InodeKey, Checkpoint>,
    bytes: u64,
    lines: usize,
    started: Option<Instant>,
}

/// Why the tailer is woken before its poll interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Files may have grown: read them.
    Lines,
    /// Files may have appeared, been renamed or removed: also expand the paths again.
    Files,
}

pub struct Tailer {
    settings: TailerSettings,
    buffer: Arc<DiskBuffer>,
    /// Told of every batch buffered, so the shipper sends it at once.
    new_batch: Arc<tokio::sync::Notify>,
    metrics: Arc<AgentMetrics>,
    files: HashMap<InodeKey, TrackedFile>,
    waiting: HashMap<InodeKey, WaitingFile>,
    builder: BatchBuilder,
    scratch: ReadBuffer,
    /// Lines read as of the last check for quiet, and since when that count stands.
    quiet: Quiet,
    next_scan: Instant,
    last_scan: Instant,
}

impl Tailer {
    pub fn new(
        settings: TailerSettings,
        buffer: Arc<DiskBuffer>,
        new_batch: Arc<tokio::sync::Notify>,
        metrics: Arc<AgentMetrics>,
    ) -> Tailer {
        let builder = BatchBuilder::new(&settings);
        Tailer {
            settings,
            buffer,
            new_batch,
            metrics,
            files: HashMap::new(),
            waiting: HashMap::new(),
            builder,
            scratch: ReadBuffer::default(),
            quiet: Quiet {
                lines_read: 0,
                since: Instant::now(),
                released: false,
            },
            next_scan: Instant::now(),
            last_scan: Instant::now(),
        }
    }

    /// Runs until `stop` is set: scans, reads, batches, and waits for file events.
    pub fn run(&mut self, wakeups: &Receiver<Wake>, stop: &AtomicBool) -> Result<(), TailError> {
        self.scan()?;
        self.resume_orphans()?;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= self.next_scan {
                self.scan()?;
            }
            let more = self.poll(stop)?;
            if self.builder.is_due(self.settings.batch.max_wait.0) {
                self.flush(stop)?;
            }
            if more {
                continue;
            }
            self.release_memory_when_quiet(Instant::now());
            match wakeups.recv_timeout(self.wait_time()) {
                Ok(first) => {
                    // Every pending wake-up is taken: one read serves them all.
                    let mut files_changed = first == Wake::Files;
                    for wake in wakeups.try_iter() {
                        files_changed |= wake == Wake::Files;
                    }
                    if files_changed {
                        // A new file may have appeared. Scan soon, but not more often
                        // than every `RESCAN_ON_EVENT`.
                        let soon = Instant::now() + RESCAN_ON_EVENT;
                        self.next_scan = self
                            .next_scan
                            .min(soon.max(self.last_scan + RESCAN_ON_EVENT));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.wait_time()),
            }
        }
        self.flush(stop)?;
        Ok(())
    }

    /// Once no line has been read for [`RELEASE_WHEN_QUIET`] and no batch is open, frees
    /// the read buffer and the batch encoder's buffers and compressor, and returns free
    /// heap pages to the operating system. The buffers are made again by the next line;
    /// in between, an agent following quiet files holds little more than its per-file
    /// state.
    fn release_memory_when_quiet(&mut self, now: Instant) {
        let lines_read = AgentMetrics::get(&self.metrics.lines_read);
        if lines_read != self.quiet.lines_read {
            self.quiet = Quiet {
                lines_read,
                since: now,
                released: false,
            };
        } else if !self.quiet.released
            && self.builder.is_empty()
            && now.duration_since(self.quiet.since) >= RELEASE_WHEN_QUIET
        {
            self.scratch.release();
            self.builder.release_memory();
            crate::memory::return_free_memory();
            self.quiet.released = true;
            tracing::debug!("reading is quiet, read and compression buffers released");
        }
    }

    fn wait_time(&self) -> Duration {
        let now = Instant::now();
        let mut wait = self
            .settings
            .poll_interval
            .min(self.next_scan.saturating_duration_since(now));
        if let Some(deadline) = self.builder.deadline(self.settings.batch.max_wait.0) {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        wait.max(Duration::from_millis(1))
    }

    // -----------------------------------------------------------------------------------
    // Discovery

    /// Expands the globs, starts following new files and notices files that rotated.
    pub fn scan(&mut self) -> Result<(), TailError> {
        self.last_scan = Instant::now();
        self.next_scan = self.last_scan + self.settings.scan_interval;
        let mut seen: HashSet<InodeKey> = HashSet::new();
        for (path, input) in self.matching_files() {
            let Ok(metadata) = fs::metadata(&path) else {
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            let key = (metadata.dev(), metadata.ino());
            if !seen.insert(key) {
                continue; // A symlink and its target, or two globs: one file.
            }
            if let Some(tracked) = self.files.get_mut(&key) {
                tracked.path = path;
                tracked.rotated = false;
                continue;
            }
            if !self.waiting.contains_key(&key) {
                self.start_following(&path, key, &input)?;
            }
        }
        self.mark_rotated(&seen);
        self.waiting.retain(|key, _| seen.contains(key));
        Ok(())
    }

    /// Every file matched by an input's paths and not by its excludes; symlinks resolved.
    fn matching_files(&self) -> Vec<(PathBuf, InputConfig)> {
        let mut found = Vec::new();
        for input in &self.settings.inputs {
            let excluded: Vec<glob::Pattern> = input
                .exclude
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect();
            for pattern in &input.paths {
                let Ok(paths) = glob::glob(pattern) else {
                    tracing::warn!(pattern, "invalid glob pattern");
                    continue;
                };
                for path in paths.flatten() {
                    if excluded.iter().any(|exclude| exclude.matches_path(&path)) {
                        continue;
                    }
                    let real = fs::canonicalize(&path).unwrap_or(path);
                    found.push((real, input.clone()));
                }
            }
        }
        found
    }

    fn mark_rotated(&mut self, seen: &HashSet<InodeKey>) {
        for tracked in self.files.values_mut() {
            let key = (tracked.identity.device, tracked.identity.inode);
            if !seen.contains(&key) && !tracked.rotated {
                tracked.rotated = true;
                tracked.last_change = Instant::now();
                AgentMetrics::add(&self.metrics.files_rotated, 1);
                tracing::info!(
                    path = %tracked.path.display(),
                    "file rotated or deleted, reading it to its end",
                );
            }
        }
    }

    /// Starts following a newly found file, from its checkpoint if it has a valid one.
    fn start_following(
        &mut self,
        path: &Path,
        key: InodeKey,
        input: &InputConfig,
    ) -> Result<(), TailError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot open file, will retry");
                return Ok(());
            }
        };
        let checkpoint = self.buffer.checkpoint(key.0, key.1)?;
        let (generation, history) = match &checkpoint {
            Some(checkpoint) => self.check_against_checkpoint(&file, path, checkpoint)?,
            None => (0, GenerationHistory::default()),
        };
        let waiting = WaitingFile {
            path: path.to_path_buf(),
            module: input.module,
            max_line_bytes: input.max_line_bytes.as_usize(),
            generation,
            history,
        };
        let never_seen = checkpoint.is_none();
        let resume_at = checkpoint
            .filter(|checkpoint| checkpoint.generation == generation)
            .map(|checkpoint| checkpoint.offset)
            .unwrap_or(0);
        self.identify_waiting(key, waiting, Some(file), resume_at);
        // A file is remembered from the moment it is followed, not from its first
        // buffered batch: if the agent stops before that and the file is rotated away
        // (renamed, or copytruncated, or both), this checkpoint is what lets the next
        // start find the file or its copy and read it from its start.
        if never_seen
            && !self.builder.checkpoints.contains_key(&key)
            && let Some(tracked) = self.files.get(&key)
        {
            self.buffer.save_checkpoints(&[checkpoint_of(tracked)])?;
        }
        Ok(())
    }

    /// Decides whether a file still is what its checkpoint describes; returns the
    /// generation to read it under and the generations read from it. If it was truncated or
    /// replaced, what it held is first recovered from copies beside it, if there are any.
    fn check_against_checkpoint(
        &mut self,
        file: &File,
        path: &Path,
        checkpoint: &Checkpoint,
    ) -> Result<(u32, GenerationHistory), TailError> {
        let same_content = self.still_holds(file, checkpoint).unwrap_or(false);
        if same_content {
            return Ok((checkpoint.generation, checkpoint.history.clone()));
        }
        tracing::info!(path = %path.display(), offset = checkpoint.offset,
            "file was truncated or replaced since its checkpoint, reading it from the start");
        AgentMetrics::add(&self.metrics.files_truncated, 1);
        let history = self.recover_after_truncation(path, checkpoint)?;
        Ok((checkpoint.generation + 1, history))
    }

    /// Recovers what a truncation took from the file at `path`: the unread lines of its
    /// checkpointed content from the copy beside it, then whole generations copied away
    /// before the agent saw them. Returns the history the file's next generation
    /// starts from.
    fn recover_after_truncation(
        &mut self,
        path: &Path,
        checkpoint: &Checkpoint,
    ) -> Result<GenerationHistory, TailError> {
        let directory = path.parent().unwrap_or(Path::new("/"));
        let copy = self.recover_from_copy(directory, checkpoint)?;
        if Path::new(&checkpoint.path) != path {
            // The inode was reused by a file at another path: the old file's past says
            // nothing about this one's.
            return Ok(GenerationHistory::default());
        }
        match copy {
            Some(copy) => self.recover_unseen_generations(copy),
            None => {
                if checkpoint.offset > 0 {
                    tracing::warn!(path = %path.display(), offset = checkpoint.offset,
                        "no uncompressed copy of the file's previous content was found \
                         (compressed copies are not read): lines written after this offset \
                         before it was truncated or replaced, if any, are lost");
                }
                Ok(checkpoint.history.clone())
            }
        }
    }

    /// Reads a rotated copy from `start.offset` to its end into batches under
    /// `start.identity` (events keep the `original` path they were written under), each
    /// buffered with the checkpoint `start` moved to where reading got. Returns the
    /// checkpoint at the copy's end.
    fn read_copy(
        &mut self,
        copy: &Path,
        file: &File,
        start: Checkpoint,
        original: &str,
    ) -> Result<Checkpoint, TailError> {
        let (module, max_line_bytes) = self.input_for(Path::new(original));
        let mut reader = LineReader::new(start.offset, max_line_bytes);
        let key = (start.identity.device, start.identity.inode);
        let mut reached = start.clone();
        loop {
            let chunk = self.builder.chunk_for(original, start.identity, module);
            let outcome = match reader.read_lines(
                file,
                chunk,
                PASS_BUDGET,
                usize::MAX,
                &mut self.scratch,
                u64::MAX,
            ) {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(copy = %copy.display(), %error, "cannot read rotated copy");
                    break;
                }
            };
            self.builder.count(outcome.bytes_read, outcome.lines);
            AgentMetrics::add(&self.metrics.lines_recovered, outcome.lines as u64);
            reached = Checkpoint {
                offset: reader.offset(),
                tail_hash: reader.tail_hash_in(file).unwrap_or(0),
                updated_ms: now_millis(),
                ..start.clone()
            };
            self.builder.checkpoints.insert(key, reached.clone());
            self.flush(&AtomicBool::new(false))?;
            if outcome.at_end {
                break;
            }
        }
        Ok(reached)
    }

    /// Whether `file` begins like the checkpointed file and still holds the bytes just
    /// before the checkpoint.
    fn still_holds(&self, file: &File, checkpoint: &Checkpoint) -> io::Result<bool> {
        let fingerprint = identity::fingerprint(file, checkpoint.generation)?;
        if fingerprint != Some(checkpoint.identity.fingerprint) {
            return Ok(false);
        }
        Ok(tail_hash(file, checkpoint.offset)? == Some(checkpoint.tail_hash))
    }

    /// Tries to identify a waiting file; tracks it once it has a complete first line.
    fn identify_waiting(
        &mut self,
        key: InodeKey,
        waiting: WaitingFile,
        file: Option<File>,
        resume_at: u64,
    ) {
        let file = match file.map(Ok).unwrap_or_else(|| File::open(&waiting.path)) {
            Ok(file) => file,
            Err(_) => return,
        };
        let identity = match identity::identify(&file, waiting.generation) {
            Ok(Some(identity)) if (identity.device, identity.inode) == key => identity,
            Ok(_) => {
                self.waiting.insert(key, waiting);
                return;
            }
            Err(error) => {
                tracing::warn!(path = %waiting.path.display(), %error, "cannot read file");
                return;
            }
        };
        tracing::info!(path = %waiting.path.display(), offset = resume_at, "following file");
        AgentMetrics::add(&self.metrics.files_opened, 1);
        let tail_hash = tail_hash(&file, resume_at).ok().flatten();
        let mut history = waiting.history;
        if let Ok(Some(first_line)) = identity::first_line_hash(&file) {
            history.remember(first_line);
        }
        let known_copies = copies_beside(&waiting.path);
        self.files.insert(
            key,
            TrackedFile {
                identity,
                generation: waiting.generation,
                path: waiting.path,
                module: waiting.module,
                max_line_bytes: waiting.max_line_bytes,
                file: Some(file),
                reader: LineReader::new(resume_at, waiting.max_line_bytes),
                tail_hash,
                history,
                known_copies,
                last_change: Instant::now(),
                rotated: false,
            },
        );
        self.close_if_over_limit(key);
    }

    /// At start-up: files with a checkpoint that no glob matched any more were rotated
    /// while the agent was stopped. They are found again in their directory by inode
    /// and fingerprint, under whatever name, and read to their end.
    fn resume_orphans(&mut self) -> Result<(), TailError> {
        for checkpoint in self.buffer.all_checkpoints()? {
            let key = (checkpoint.identity.device, checkpoint.identity.inode);
            if self.files.contains_key(&key) || self.waiting.contains_key(&key) {
                continue;
            }
            let path = PathBuf::from(&checkpoint.path);
            let directory = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            match self.find_by_inode(&directory, &checkpoint) {
                Some((found, file)) if self.still_holds(&file, &checkpoint).unwrap_or(false) => {
                    // Rotated files already read to their end are found at every start
                    // until they are deleted; only one with lines left is worth a line
                    // in the log.
                    let unread = file
                        .metadata()
                        .is_ok_and(|metadata| metadata.len() > checkpoint.offset);
                    if unread {
                        tracing::info!(
                            path = %found.display(),
                            "found a file rotated while stopped, reading it to its end",
                        );
                    }
                    self.track_orphan(key, file, &checkpoint);
                }
                Some((found, file)) => {
                    self.resume_truncated_orphan(key, &found, file, &checkpoint)?;
                }
                None => {
                    self.recover_from_copy(&directory, &checkpoint)?;
                    self.buffer.remove_checkpoint(&checkpoint.identity)?;
                }
            }
        }
        Ok(())
    }

    fn find_by_inode(&self, directory: &Path, checkpoint: &Checkpoint) -> Option<(PathBuf, File)> {
        for entry in fs::read_dir(directory).ok()?.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.ino() != checkpoint.identity.inode
                || metadata.dev() != checkpoint.identity.device
            {
                continue;
            }
            let file = File::open(entry.path()).ok()?;
            return Some((entry.path(), file));
        }
        None
    }

    /// A file found by inode that no longer holds its checkpoint: copytruncated, written
    /// to again and renamed away, all while the agent was stopped. Its checkpointed
    /// content is recovered from its copy, then what the file holds now is read from its
    /// start as its next generation. Without a copy of the checkpointed content there is
    /// no sign of a copytruncate (the inode may have been reused by another file), and
    /// the file is left alone.
    ///
    /// Generations copied away unseen in between are not looked for: once the file was
    /// renamed away, the copies numbered below its checkpointed copy may be those of the
    /// file that replaced it, read through that file.
    fn resume_truncated_orphan(
        &mut self,
        key: InodeKey,
        found: &Path,
        file: File,
        checkpoint: &Checkpoint,
    ) -> Result<(), TailError> {
        let directory = Path::new(&checkpoint.path).parent();
        let directory = directory.unwrap_or(Path::new("/"));
        let Some(copy) = self.recover_from_copy(directory, checkpoint)? else {
            self.buffer.remove_checkpoint(&checkpoint.identity)?;
            return Ok(());
        };
        let mut history = copy.reached.history;
        let generation = checkpoint.generation + 1;
        let identity = identity::identify(&file, generation).ok().flatten();
        let first_line = identity::first_line_hash(&file).ok().flatten();
        let (Some(identity), Some(first_line)) = (identity, first_line) else {
            // Empty, or no complete first line: nothing to read.
            self.buffer.remove_checkpoint(&checkpoint.identity)?;
            return Ok(());
        };
        if history.contains(first_line) {
            // A generation read before (or one whose first line repeats it).
            self.buffer.remove_checkpoint(&checkpoint.identity)?;
            return Ok(());
        }
        tracing::info!(path = %found.display(),
            "found a file truncated and rotated while stopped, reading it from the start");
        history.remember(first_line);
        let restarted = Checkpoint {
            identity,
            offset: 0,
            generation,
            tail_hash: tail_hash(&file, 0).ok().flatten().unwrap_or(0),
            history,
            ..checkpoint.clone()
        };
        self.track_orphan(key, file, &restarted);
        Ok(())
    }

    /// Follows a file found by inode under another name; its events keep the path
    /// they were written under.
    fn track_orphan(&mut self, key: InodeKey, file: File, checkpoint: &Checkpoint) {
        let (module, max_line_bytes) = self.input_for(Path::new(&checkpoint.path));
        self.files.insert(
            key,
            TrackedFile {
                identity: checkpoint.identity,
                generation: checkpoint.generation,
                path: PathBuf::from(&checkpoint.path),
                module,
                max_line_bytes,
                file: Some(file),
                reader: LineReader::new(checkpoint.offset, max_line_bytes),
                tail_hash: Some(checkpoint.tail_hash),
                history: checkpoint.history.clone(),
                known_copies: checkpoint.known_copies.clone(),
                last_change: Instant::now(),
                rotated: true,
            },
        );
    }

    /// Module and line limit of the input whose patterns match `path`, or of the first
    /// input when none does (a file renamed away keeps being read as what it was).
    fn input_for(&self, path: &Path) -> (Module, usize) {
        let inputs = &self.settings.inputs;
        let input = inputs
            .iter()
            .find(|input| {
                input
                    .paths
                    .iter()
                    .any(|p| glob::Pattern::new(p).is_ok_and(|g| g.matches_path(path)))
            })
            .or(inputs.first());
        match input {
            Some(input) => (input.module, input.max_line_bytes.as_usize()),
            None => (
                Module::Plain,
                garonne_common::config::DEFAULT_MAX_LINE_BYTES.as_usize(),
            ),
        }
    }

    /// After a truncation: the lines between the checkpoint and the truncation are in
    /// the copy that copytruncate made beside the file, if any. A copy is a sibling that
    /// begins like the old content and is at least as long as the checkpoint. Its lines
    /// from the checkpoint on are read under the old identity, so they get the ids they
    /// would have had, and the copy is not read otherwise. The checkpoint moves to the
    /// copy's end in the same write as the lines, so a restart does not recover them again.
    fn recover_from_copy(
        &mut self,
        directory: &Path,
        checkpoint: &Checkpoint,
    ) -> Result<Option<RecoveredCopy>, TailError> {
        let Some((path, file)) = self.find_copy(directory, checkpoint) else {
            return Ok(None);
        };
        tracing::info!(copy = %path.display(), original = %checkpoint.path, offset = checkpoint.offset,
            "recovering lines from the rotated copy of a truncated file");
        let reached = self.read_copy(&path, &file, checkpoint.clone(), &checkpoint.path)?;
        Ok(Some(RecoveredCopy { path, reached }))
    }

    /// After the checkpointed content was recovered from its copy: copytruncate may have
    /// run again before the agent saw the file's next content (it was stopped, or two
    /// rotations fell between two reads), leaving whole generations only in newer
    /// copies. Each one is read in full, oldest first, and remembered in the history
    /// that this returns.
    fn recover_unseen_generations(
        &mut self,
        copy: RecoveredCopy,
    ) -> Result<GenerationHistory, TailError> {
        let mut reached = copy.reached;
        let unseen = self.unseen_copies(&copy.path, &reached)?;
        let original_key = (reached.identity.device, reached.identity.inode);
        for copy in unseen {
            tracing::info!(copy = %copy.path.display(), original = %reached.path,
                "recovering a generation that was rotated away before it was read");
            // Remembered in the same write as the copy's first lines: a restart neither
            // reads it again in full nor skips lines of it not yet buffered.
            reached.history.remember(copy.identity.fingerprint);
            reached.known_copies.remember(known_copy(copy.identity));
            reached.updated_ms = now_millis();
            self.builder
                .checkpoints
                .insert(original_key, reached.clone());
            self.read_unseen_copy(&copy, &reached.path)?;
        }
        Ok(reached.history)
    }

    /// The copies of generations never read, oldest first. logrotate numbers copies
    /// newest first (`app.log.1` is the latest), so they are among the `{name}.N`
    /// siblings numbered below the checkpointed copy `anchor`.
    ///
    /// Nothing is recovered when the checkpoint remembers no generation: it was written
    /// before generations and copies were remembered (or describes an unseen copy being
    /// read), so new copies cannot be told from old ones.
    fn unseen_copies(
        &self,
        anchor: &Path,
        checkpoint: &Checkpoint,
    ) -> Result<Vec<UnseenCopy>, TailError> {
        let name = Path::new(&checkpoint.path).file_name();
        let name = name.and_then(|name| name.to_str()).unwrap_or_default();
        let Some(anchor_number) = copy_number(name, anchor) else {
            return Ok(Vec::new());
        };
        if checkpoint.history.is_empty() {
            return Ok(Vec::new());
        }
        let mut unseen = Vec::new();
        for (number, path) in numbered_copies(anchor, name) {
            if number >= anchor_number {
                break;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(Some(identity)) = identity::identify(&file, 0) else {
                continue; // Empty, or no complete first line: nothing to read.
            };
            if !self.is_known_copy(checkpoint, &file, identity)? {
                unseen.push(UnseenCopy {
                    path,
                    file,
                    identity,
                });
            }
        }
        unseen.reverse();
        Ok(unseen)
    }

    /// Whether a copy beside the file of `checkpoint` is one the agent must not read in
    /// full: the checkpoint knows it (it was there when the checkpointed generation was
    /// first read, so it is older however copies are numbered, or it was read since),
    /// its first line is a generation already read, or it is followed or has a
    /// checkpoint of its own (it was being read under another name, and is resumed from
    /// there).
    fn is_known_copy(
        &self,
        checkpoint: &Checkpoint,
        file: &File,
        identity: FileIdentity,
    ) -> Result<bool, TailError> {
        if checkpoint.known_copies.contains(&known_copy(identity))
            || checkpoint.history.contains(identity.fingerprint)
        {
            return Ok(true);
        }
        let key = (identity.device, identity.inode);
        if self.files.contains_key(&key) || self.waiting.contains_key(&key) {
            return Ok(true);
        }
        let own = self.buffer.checkpoint(key.0, key.1)?;
        Ok(own.is_some_and(|own| self.still_holds(file, &own).unwrap_or(false)))
    }

    /// Reads a copy of a generation never read, in full, under the copy's own identity
    /// (its events keep the `original` path). The copy's checkpoint lets a crash resume
    /// it where reading got, like any file renamed away; it is dropped once all is read.
    fn read_unseen_copy(&mut self, copy: &UnseenCopy, original: &str) -> Result<(), TailError> {
        let start = Checkpoint {
            identity: copy.identity,
            path: original.to_string(),
            offset: 0,
            generation: 0,
            tail_hash: tail_hash(&copy.file, 0).ok().flatten().unwrap_or(0),
            updated_ms: now_millis(),
            history: GenerationHistory::default(),
            known_copies: KnownCopies::default(),
        };
        self.read_copy(&copy.path, &copy.file, start, original)?;
        // A flush that gave up at shutdown left lines unbuffered: keep the checkpoint.
        if self.builder.checkpoints.is_empty() {
            self.buffer.remove_checkpoint(&copy.identity)?;
        }
        Ok(())
    }

    fn find_copy(&self, directory: &Path, checkpoint: &Checkpoint) -> Option<(PathBuf, File)> {
        for entry in fs::read_dir(directory).ok()?.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let same_inode = metadata.ino() == checkpoint.identity.inode
                && metadata.dev() == checkpoint.identity.device;
            if same_inode || !metadata.is_file() || metadata.len() < checkpoint.offset {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else {
                continue;
            };
            if self.still_holds(&file, checkpoint).unwrap_or(false) {
                return Some((entry.path(), file));
            }
        }
        None
    }

    // -----------------------------------------------------------------------------------
    // Reading

    /// One pass over every file. Returns whether some file has more to read right away.
    pub fn poll(&mut self, stop: &AtomicBool) -> Result<bool, TailError> {
        self.retry_waiting();
        let keys: Vec<InodeKey> = self.files.keys().copied().collect();
        let mut more = false;
        for key in keys {
            more |= self.read_file(key)?;
            if self.builder.is_full(&self.settings.batch) {
                self.flush(stop)?;
            }
        }
        self.release_idle_files()?;
        Ok(more)
    }

    fn retry_waiting(&mut self) {
        let keys: Vec<InodeKey> = self.waiting.keys().copied().collect();
        for key in keys {
            if let Some(waiting) = self.waiting.remove(&key) {
                self.identify_waiting(key, waiting, None, 0);
            }
        }
    }

    /// Reads what one file has new. Returns whether it has more than one pass took.
    fn read_file(&mut self, key: InodeKey) -> Result<bool, TailError> {
        let Some(tracked) = self.files.get_mut(&key) else {
            return Ok(false);
        };
        let reopened = tracked.file.is_none();
        if reopened && !reopen_if_changed(tracked) {
            return Ok(false);
        }
        let Some(file) = tracked.file.as_ref() else {
            return Ok(false);
        };
        let size = match file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(_) => return Ok(false),
        };
        let grown = size > tracked.reader.read_position();
        if size < tracked.reader.read_position() || (grown && !still_as_read(tracked, file)) {
            self.handle_truncation(key)?;
            return Ok(true);
        }
        if size == tracked.reader.read_position() {
            return Ok(false);
        }
        let chunk = self.builder.chunk_for(
            &tracked.path.to_string_lossy(),
            tracked.identity,
            tracked.module,
        );
        let budget = PASS_BUDGET.min(self.settings.batch.max_bytes.0);
        let max_lines = self.settings.batch.max_lines;
        let outcome = match tracked.reader.read_lines(
            file,
            chunk,
            budget,
            max_lines,
            &mut self.scratch,
            size - tracked.reader.read_position(),
        ) {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(path = %tracked.path.display(), %error, "read failed, will retry");
                return Ok(false);
            }
        };
        if outcome.bytes_read > 0 {
            tracked.last_change = Instant::now();
        }
        if outcome.lines > 0 {
            // From the bytes just read when they hold the tail: read again from the file,
            // it would describe new content if the file was copytruncated and refilled
            // in between, and the copy holding the unread lines would not be recognised.
            tracked.tail_hash = tracked.reader.tail_hash_in(file);
        }
        let checkpoint = checkpoint_of(tracked);
        self.builder.checkpoints.insert(key, checkpoint);
        self.builder.count(outcome.bytes_read, outcome.lines);
        AgentMetrics::add(&self.metrics.lines_read, outcome.lines as u64);
        AgentMetrics::add(&self.metrics.bytes_read, outcome.bytes_read);
        if reopened {
            self.close_if_over_limit(key);
        }
        Ok(!outcome.at_end)
    }

    /// A file shrank or changed under its descriptor: copytruncate, or its inode reused.
    /// Recover the copy's unread lines, then read the file from its start under the
    /// next generation.
    fn handle_truncation(&mut self, key: InodeKey) -> Result<(), TailError> {
        self.flush(&AtomicBool::new(false))?;
        let Some(tracked) = self.files.remove(&key) else {
            return Ok(());
        };
        tracing::info!(
            path = %tracked.path.display(),
            offset = tracked.reader.offset(),
            "file truncated",
        );
        AgentMetrics::add(&self.metrics.files_truncated, 1);
        let old = Checkpoint {
            identity: tracked.identity,
            path: tracked.path.to_string_lossy().into_owned(),
            offset: tracked.reader.offset(),
            generation: tracked.generation,
            tail_hash: tracked.tail_hash.unwrap_or(0),
            updated_ms: now_millis(),
            history: tracked.history.clone(),
            known_copies: tracked.known_copies.clone(),
        };
        let history = self.recover_after_truncation(&tracked.path, &old)?;
        let waiting = WaitingFile {
            path: tracked.path,
            module: tracked.module,
            max_line_bytes: tracked.max_line_bytes,
            generation: tracked.generation + 1,
            history,
        };
        // Until the new content's first lines are buffered, the checkpoint describes the
        // old content (at the copy's end if a copy was found), and a restart repeats this
        // same decision.
        self.identify_waiting(key, waiting, tracked.file, 0);
        Ok(())
    }

    /// Lets go of rotated files read to their end and quiet for `close_inactive`, and
    /// closes descriptors of quiet files read to their end and, beyond the limit, of the
    /// least active, those read to their end first.
    fn release_idle_files(&mut self) -> Result<(), TailError> {
        let now = Instant::now();
        let close_inactive = self.settings.close_inactive;
        let mut released = Vec::new();
        for (key, tracked) in &mut self.files {
            let idle = now.duration_since(tracked.last_change) >= close_inactive;
            if !idle {
                continue;
            }
            // A file with lines still unread keeps its descriptor, however long reading
            // waited for room in the buffer: were the file renamed and deleted
            // meanwhile, its lines could not be read any more.
            if !read_to_end(tracked) {
                continue;
            }
            if tracked.rotated {
                released.push(*key);
            } else {
                tracked.file = None;
            }
        }
        for key in released {
            if self.builder.checkpoints.contains_key(&key) {
                continue; // Its last lines are not buffered yet.
            }
            if let Some(tracked) = self.files.remove(&key) {
                tracing::info!(
                    path = %tracked.path.display(),
                    "rotated file read to its end, released",
                );
                self.buffer.remove_checkpoint(&tracked.identity)?;
            }
        }
        self.enforce_open_file_limit();
        Ok(())
    }

    /// Closes the descriptor just opened for `key` if it puts the tailer over
    /// `max_open_files`; the file is reopened when it changes. Rotated files keep theirs:
    /// a deleted file could not be opened again.
    fn close_if_over_limit(&mut self, key: InodeKey) {
        if self.open_files() <= self.settings.max_open_files {
            return;
        }
        if let Some(tracked) = self.files.get_mut(&key)
            && !tracked.rotated
        {
            tracked.file = None;
        }
    }

    fn enforce_open_file_limit(&mut self) {
        let open = self
            .files
            .values()
            .filter(|tracked| tracked.file.is_some())
            .count();
        let excess = open.saturating_sub(self.settings.max_open_files);
        if excess == 0 {
            return;
        }
        // Files with lines unread come last: closing one risks its lines if it is
        // deleted before it is opened again.
        let mut candidates: Vec<(bool, Instant, InodeKey)> = self
            .files
            .iter()
            .filter(|(_, tracked)| tracked.file.is_some() && !tracked.rotated)
            .map(|(key, tracked)| (!read_to_end(tracked), tracked.last_change, *key))
            .collect();
        candidates.sort();
        for (_, _, key) in candidates.into_iter().take(excess) {
            if let Some(tracked) = self.files.get_mut(&key) {
                tracked.file = None;
            }
        }
    }

    /// Number of descriptors held open; for tests and metrics.
    pub fn open_files(&self) -> usize {
        self.files
            .values()
            .filter(|tracked| tracked.file.is_some())
            .count()
    }

    pub fn followed_files(&self) -> usize {
        self.files.len()
    }

    // -----------------------------------------------------------------------------------
    // Batching

    /// Compresses the collected lines and buffers them with their checkpoints, waiting
    /// for room if the buffer is full. Returns without buffering only if `stop` is set or
    /// the buffer closed while waiting; the lines are then read again after restart.
    pub fn flush(&mut self, stop: &AtomicBool) -> Result<(), TailError> {
        if self.builder.lines == 0 && self.builder.checkpoints.is_empty() {
            return Ok(());
        }
        let payload = self.builder.encoder.encode(&self.builder.batch)?;
        let size = payload.len() as u64 + 1;
        let paused = Instant::now();
        let mut logged = false;
        // Counted as it passes, so the status shows a pause while it lasts.
        let mut counted_ms = 0;
        let mut count_pause = |metrics: &AgentMetrics| {
            let paused_ms = paused.elapsed().as_millis() as u64;
            AgentMetrics::add(&metrics.buffer_full_millis, paused_ms - counted_ms);
            counted_ms = paused_ms;
        };
        while !self.buffer.wait_for_room(size, ROOM_WAIT) {
            count_pause(&self.metrics);
            if !logged {
                self.metrics.reading_paused.store(1, Ordering::Relaxed);
                tracing::warn!(
                    pending_bytes = self.buffer.pending_bytes(),
                    capacity = self.buffer.capacity(),
                    "disk buffer full, reading paused until the collector acknowledges batches"
                );
                logged = true;
            }
            if stop.load(Ordering::Relaxed) || self.buffer.is_closed() {
                return Ok(());
            }
        }
        if logged {
            count_pause(&self.metrics);
            self.metrics.reading_paused.store(0, Ordering::Relaxed);
            let millis = paused.elapsed().as_millis() as u64;
            tracing::info!(
                paused_ms = millis,
                "disk buffer has room again, reading resumed"
            );
        }
        let checkpoints: Vec<Checkpoint> = self.builder.checkpoints.values().cloned().collect();
        if self.builder.lines > 0 {
            self.buffer.append(payload, &checkpoints)?;
            self.new_batch.notify_one();
            AgentMetrics::add(&self.metrics.batches_buffered, 1);
        } else {
            self.buffer.save_checkpoints(&checkpoints)?;
        }
        let truncated = self.builder.truncated_lines();
        AgentMetrics::add(&self.metrics.lines_truncated, truncated);
        self.builder.reset();
        Ok(())
    }
}

impl BatchBuilder {
    fn new(settings: &TailerSettings) -> BatchBuilder {
        BatchBuilder {
            batch: Batch {
                agent_id: settings.agent_id.clone(),
                host_name: settings.host_name.clone(),
                chunks: Vec::new(),
            },
            spare_chunks: Vec::new(),
            encoder: wire::BatchEncoder::default(),
            checkpoints: HashMap::new(),
            bytes: 0,
            lines: 0,
            started: None,
        }
    }

    /// The chunk lines of this file go to: the last one if it is this file's.
    fn chunk_for(&mut self, path: &str, identity: FileIdentity, module: Module) -> &mut FileChunk {
        let reuse = self
            .batch
            .chunks
            .last()
            .is_some_and(|chunk| chunk.identity == identity);
        if !reuse {
            let chunk = match self.spare_chunks.pop() {
                Some(mut chunk) => {
                    chunk.reuse(path, identity, module, now_millis());
                    chunk
                }
                None => FileChunk::new(path.to_string(), identity, module, now_millis()),
            };
            self.batch.chunks.push(chunk);
        }
        let last = self.batch.chunks.len() - 1;
        &mut self.batch.chunks[last]
    }

    fn count(&mut self, bytes: u64, lines: usize) {
        self.bytes += bytes;
        self.lines += lines;
        if lines > 0 && self.started.is_none() {
            self.started = Some(Instant::now());
        }
        self.batch.chunks.retain(|chunk| !chunk.entries.is_empty());
    }

    fn is_full(&self, config: &BatchConfig) -> bool {
        self.lines >= config.max_lines || self.bytes >= config.max_bytes.0
    }

    fn deadline(&self, max_wait: Duration) -> Option<Instant> {
        self.started.map(|started| started + max_wait)
    }

    fn is_due(&self, max_wait: Duration) -> bool {
        self.deadline(max_wait)
            .is_some_and(|deadline| Instant::now() >= deadline)
            || (self.lines == 0 && !self.checkpoints.is_empty() && self.started.is_none())
    }

    fn truncated_lines(&self) -> u64 {
        let flag = garonne_common::LineFlags::TRUNCATED;
        let lines = self
            .batch
            .chunks
            .iter()
            .flat_map(|chunk| chunk.entries.iter());
        lines.filter(|entry| entry.flags.contains(flag)).count() as u64
    }

    fn is_empty(&self) -> bool {
        self.lines == 0 && self.checkpoints.is_empty()
    }

    /// Frees what the builder keeps from batch to batch (see [`Tailer::flush`]).
    fn release_memory(&mut self) {
        self.spare_chunks = Vec::new();
        self.batch.chunks = Vec::new();
        self.checkpoints = HashMap::new();
        self.encoder.release();
    }

    fn reset(&mut self) {
        self.spare_chunks.append(&mut self.batch.chunks);
        self.spare_chunks.truncate(SPARE_CHUNKS);
        self.checkpoints.clear();
        self.bytes = 0;
        self.lines = 0;
        self.started = None;
    }
}

/// Reopens a closed file if it changed. It is looked for at its path, and if it was
/// renamed while closed, by inode in its directory.
fn reopen_if_changed(tracked: &mut TrackedFile) -> bool {
    let is_ours = |metadata: &fs::Metadata| {
        metadata.dev() == tracked.identity.device && metadata.ino() == tracked.identity.inode
    };
    let mut location = fs::metadata(&tracked.path)
        .ok()
        .filter(|metadata| is_ours(metadata))
        .map(|metadata| (tracked.path.clone(), metadata));
    if location.is_none() {
        tracked.rotated = true;
        let directory = tracked.path.parent().unwrap_or(Path::new("/"));
        location = fs::read_dir(directory).ok().and_then(|entries| {
            entries.flatten().find_map(|entry| {
                let metadata = entry.metadata().ok()?;
                is_ours(&metadata).then(|| (entry.path(), metadata))
            })
        });
    }
    let Some((path, metadata)) = location else {
        return false;
    };
    if metadata.len() == tracked.reader.read_position() {
        return false;
    }
    match File::open(path) {
        Ok(file) => {
            tracked.file = Some(file);
            true
        }
        Err(_) => false,
    }
}

/// Whether the reader has reached the end of the file. A file quiet for
/// `close_inactive` may still have lines left: reading paused while the buffer was full,
/// or one pass did not reach its end. A file without a descriptor counts as read.
fn read_to_end(tracked: &TrackedFile) -> bool {
    let size = tracked.file.as_ref().and_then(|file| file.metadata().ok());
    size.is_none_or(|metadata| metadata.len() <= tracked.reader.read_position())
}

/// Whether the file still begins as it did and still holds the bytes before the
/// reader's offset. A file truncated and refilled past that offset between two reads,
/// or a new file on a reused inode, does not. A failed read counts as unchanged: the
/// read that follows fails too and is retried.
fn still_as_read(tracked: &TrackedFile, file: &File) -> bool {
    let same_start = identity::fingerprint(file, tracked.generation).map_or(true, |fingerprint| {
        fingerprint == Some(tracked.identity.fingerprint)
    });
    let same_tail = match tracked.tail_hash {
        Some(expected) => {
            tail_hash(file, tracked.reader.offset()).map_or(true, |found| found == Some(expected))
        }
        None => true,
    };
    same_start && same_tail
}

fn checkpoint_of(tracked: &TrackedFile) -> Checkpoint {
    Checkpoint {
        identity: tracked.identity,
        path: tracked.path.to_string_lossy().into_owned(),
        offset: tracked.reader.offset(),
        generation: tracked.generation,
        tail_hash: tracked.tail_hash.unwrap_or(0),
        updated_ms: now_millis(),
        history: tracked.history.clone(),
        known_copies: tracked.known_copies.clone(),
    }
}

/// `N` if `path` is named `{name}.N`, as logrotate names the copies of `name`
/// (compressed copies, `{name}.N.gz`, are not).
fn copy_number(name: &str, path: &Path) -> Option<u64> {
    let file_name = path.file_name()?.to_str()?;
    let number = file_name.strip_prefix(name)?.strip_prefix('.')?;
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// The regular files beside `file` named `{name}.N`, lowest number first.
fn numbered_copies(file: &Path, name: &str) -> Vec<(u64, PathBuf)> {
    let directory = file.parent().unwrap_or(Path::new("/"));
    let Ok(entries) = fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut copies: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| {
            let path = entry.path();
            copy_number(name, &path).map(|number| (number, path))
        })
        .collect();
    copies.sort();
    copies
}

/// The numbered copies beside the file at `path` now, as a generation of it is first
/// read (see [`KnownCopies`]).
fn copies_beside(path: &Path) -> KnownCopies {
    let name = path.file_name().and_then(|name| name.to_str());
    let Some(name) = name else {
        return KnownCopies::default();
    };
    let copies = numbered_copies(path, name)
        .into_iter()
        .filter_map(|(_, copy)| {
            let file = File::open(copy).ok()?;
            let first_line_hash = identity::first_line_hash(&file).ok()??;
            let inode = file.metadata().ok()?.ino();
            Some(KnownCopy {
                inode,
                first_line_hash,
            })
        });
    copies.take(KnownCopies::LIMIT).collect()
}

fn known_copy(identity: FileIdentity) -> KnownCopy {
    KnownCopy {
        inode: identity.inode,
        first_line_hash: identity.fingerprint,
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
