//! The disk buffer: batches waiting for the collector's acknowledgement, and the file
//! checkpoints that say how far each file has been read, in one embedded store.
//!
//! # Invariants
//!
//! 1. A checkpoint never runs ahead of the buffer. Appending a batch and advancing the
//!    checkpoints of the files whose lines it holds is one atomic write batch, so after
//!    any crash either both are there or neither is.
//! 2. A batch leaves the buffer only when the collector acknowledged it.
//! 3. The buffer never holds more than its capacity: [`DiskBuffer::wait_for_room`] makes
//!    the reader wait instead, and the lines stay in their files.
//!
//! # Layout
//!
//! One fjall database in `{data_dir}/buffer` with two keyspaces:
//!
//! | keyspace      | key                           | value                                 |
//! |---------------|-------------------------------|---------------------------------------|
//! | `batches`     | sequence number, u64 BE       | format version byte, zstd payload     |
//! | `checkpoints` | device u64 BE, inode u64 BE   | format version byte, postcard [`Checkpoint`] |
//!
//! Batches carry the wire protocol version. Checkpoints carry their own format version
//! ([`CHECKPOINT_FORMAT`]): version 1 had neither [`GenerationHistory`] nor [`KnownCopies`]
//! and is still read, as a checkpoint with both empty, so an upgraded agent resumes where
//! the old one stopped. An older agent refuses checkpoints of a newer format rather than
//! misread them.
//!
//! Sequence numbers grow; the pending set and its byte count are kept in memory,
//! rebuilt by one scan at start-up, so the queue is never scanned over deleted entries.
//!
//! # Durability and recovery
//!
//! Writes reach the operating system at once (an agent crash loses nothing) and are
//! synced to disk every `sync_interval` (group commit). A power cut loses the unsynced
//! tail of batches and checkpoints together: reading resumes from the last synced
//! checkpoint and the lines are read again from their files. Lines that had already
//! been shipped come back with the same event ids and collapse into the same documents.
//! fjall's journal recovery cuts a torn last record off on open.

use garonne_common::FileIdentity;
use garonne_common::wire::PROTOCOL_VERSION;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Memory each keyspace holds before writing a table to disk. Batches acknowledged
/// before their memtable is full are never written as tables at all; 2 MiB keeps
/// the batches in flight well inside one memtable at full rate (with 1 MiB the agent
/// spent half again as much CPU writing tables of batches already acknowledged).
const MEMTABLE_BYTES: u64 = 2 * 1024 * 1024;

/// Block cache of the store.
const STORE_CACHE_BYTES: u64 = 1024 * 1024;

/// Journal kept on disk before the store writes out the memtables that pin it, the
/// smallest fjall allows. Batches and checkpoints share one journal, and the
/// checkpoints' memtable fills slowly: with fjall's default (512 MiB) an agent shipping
/// at full rate kept up to half a GiB of journal, twice the buffer's capacity, and the
/// checkpoints' memtable grew with it.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Format version of stored checkpoints, their first byte.
pub const CHECKPOINT_FORMAT: u8 = 2;

/// The first checkpoint format, without history and known copies. Its number is the
/// wire protocol version that checkpoints were tagged with at the time.
const CHECKPOINT_FORMAT_V1: u8 = 1;

/// Errors of the disk buffer.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("disk buffer store failed: {0}")]
    Store(#[from] fjall::Error),
    #[error("stored record {key} has format version {found}, expected {expected}")]
    Version {
        key: String,
        found: u8,
        expected: u8,
    },
    #[error("stored checkpoint {key} does not decode: {reason}")]
    Checkpoint { key: String, reason: String },
}

/// How far one file has been read, and what it looked like there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub identity: FileIdentity,
    /// The path the file had when last read.
    pub path: String,
    /// Start of the first line not yet in the buffer.
    pub offset: u64,
    /// How often the file was found truncated; mixed into the fingerprint so that a
    /// refilled file whose first line matches the old one still gets new event ids.
    pub generation: u32,
    /// Hash of up to [`crate::identity::TAIL_BYTES`] bytes before `offset`: if the
    /// file no longer holds them, it was replaced and is read from its start.
    pub tail_hash: u64,
    /// Milliseconds since the epoch, for pruning checkpoints of long-gone files.
    pub updated_ms: i64,
    /// The generations already read from this file; see [`GenerationHistory`].
    pub history: GenerationHistory,
    /// Copies beside the file that are not to be read as unseen generations; see
    /// [`KnownCopies`].
    pub known_copies: KnownCopies,
}

/// A rotated copy beside a file, known by its inode and first line, so that another
/// copy on its inode, once it was deleted, is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCopy {
    pub inode: u64,
    /// See [`crate::identity::first_line_hash`].
    pub first_line_hash: u64,
}

/// The numbered copies (`{name}.N`) beside a file that hold nothing left to read: those
/// already there when its current generation was first read, which are older than it
/// however copies are numbered, and those read since as generations copied away unseen.
/// Whatever copytruncate makes after the generation was first read is not among them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KnownCopies(Vec<KnownCopy>);

impl KnownCopies {
    /// Copies remembered per file, far more than logrotate usually keeps uncompressed;
    /// beyond it the first remembered are forgotten.
    pub const LIMIT: usize = 64;

    pub fn remember(&mut self, copy: KnownCopy) {
        if self.contains(&copy) {
            return;
        }
        self.0.push(copy);
        let excess = self.0.len().saturating_sub(Self::LIMIT);
        self.0.drain(..excess);
    }

    pub fn contains(&self, copy: &KnownCopy) -> bool {
        self.0.contains(copy)
    }
}

impl FromIterator<KnownCopy> for KnownCopies {
    fn from_iter<I: IntoIterator<Item = KnownCopy>>(copies: I) -> KnownCopies {
        let mut known = KnownCopies::default();
        for copy in copies {
            known.remember(copy);
        }
        known
    }
}

/// A checkpoint as format version 1 stored it.
#[derive(Deserialize)]
struct CheckpointV1 {
    identity: FileIdentity,
    path: String,
    offset: u64,
    generation: u32,
    tail_hash: u64,
    updated_ms: i64,
}

impl From<CheckpointV1> for Checkpoint {
    fn from(old: CheckpointV1) -> Checkpoint {
        Checkpoint {
            identity: old.identity,
            path: old.path,
            offset: old.offset,
            generation: old.generation,
            tail_hash: old.tail_hash,
            updated_ms: old.updated_ms,
            history: GenerationHistory::default(),
            known_copies: KnownCopies::default(),
        }
    }
}

/// First-line hashes ([`crate::identity::first_line_hash`]) of the last generations read
/// from one file, oldest first. A generation is what the file held between two
/// truncations; the agent reads it through the file, or, when it was written and copied
/// away entirely while the agent was not looking, through its copy.
///
/// A copy that copytruncate made of a generation begins with that generation's first
/// line, so this tells a copy already read from a copy of content never read. Only the
/// last [`GenerationHistory::CAPACITY`] generations are kept: a copy is only ever looked
/// for among those made since the checkpointed generation, which are few.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GenerationHistory(Vec<u64>);

impl GenerationHistory {
    /// Generations remembered per file. Eight covers a week of daily rotations.
    pub const CAPACITY: usize = 8;

    /// Adds a generation, forgetting the oldest beyond the capacity. A hash already
    /// remembered keeps its place.
    pub fn remember(&mut self, first_line_hash: u64) {
        if self.contains(first_line_hash) {
            return;
        }
        self.0.push(first_line_hash);
        let excess = self.0.len().saturating_sub(Self::CAPACITY);
        self.0.drain(..excess);
    }

    pub fn contains(&self, first_line_hash: u64) -> bool {
        self.0.contains(&first_line_hash)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A batch as stored and sent.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub sequence: u64,
    /// Shared with the disk buffer's memory table (or block cache) it was read from and
    /// with the QUIC stream that sends it: a batch in flight is held once.
    pub payload: bytes::Bytes,
}

struct Pending {
    /// Sequence number to payload size, of every batch not yet acknowledged.
    batches: BTreeMap<u64, u64>,
    bytes: u64,
    next_sequence: u64,
    dirty: bool,
}

/// The agent's durable queue and checkpoint store. Shared between the reading thread,
/// the shipping task and the sync thread.
pub struct DiskBuffer {
    database: fjall::Database,
    batches: fjall::Keyspace,
    checkpoints: fjall::Keyspace,
    capacity: std::sync::atomic::AtomicU64,
    pending: Mutex<Pending>,
    room: Condvar,
    closed: AtomicBool,
}

impl DiskBuffer {
    /// Opens or creates the buffer under `directory`, recovering what it held.
    pub fn open(directory: &Path, capacity: u64) -> Result<DiskBuffer, BufferError> {
        // Small memtables and cache: batches are written once, read about once and
        // deleted soon, so memory spent caching them buys nothing; the store's defaults
        // (64 MiB per memtable) would make the agent's memory follow its input.
        // One background worker flushes and compacts: the buffer holds little, and
        // each thread costs an idle agent memory of its own.
        let database = fjall::Database::builder(directory)
            .cache_size(STORE_CACHE_BYTES)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .worker_threads(1)
            .open()?;
        let batches = database.keyspace("batches", || {
            fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
        })?;
        let checkpoints = database.keyspace("checkpoints", || {
            fjall::KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
        })?;
        let mut pending = Pending {
            batches: BTreeMap::new(),
            bytes: 0,
            next_sequence: 0,
            dirty: false,
        };
        for entry in batches.iter() {
            let (key, value) = entry.into_inner()?;
            let sequence = decode_sequence(&key);
            pending.batches.insert(sequence, value.len() as u64);
            pending.bytes += value.len() as u64;
            pending.next_sequence = sequence + 1;
        }
        Ok(DiskBuffer {
            database,
            batches,
            checkpoints,
            capacity: std::sync::atomic::AtomicU64::new(capacity),
            pending: Mutex::new(pending),
            room: Condvar::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Stores a compressed batch and the checkpoints it advances in one atomic write,
    /// returning the batch's sequence number.
    pub fn append(&self, payload: &[u8], checkpoints: &[Checkpoint]) -> Result<u64, BufferError> {
        let mut pending = self.lock();
        let sequence = pending.next_sequence;
        let mut write = self.database.batch();
        let mut value = Vec::with_capacity(payload.len() + 1);
        value.push(PROTOCOL_VERSION);
        value.extend_from_slice(payload);
        write.insert(&self.batches, sequence.to_be_bytes(), value);
        for checkpoint in checkpoints {
            write.insert(
                &self.checkpoints,
                checkpoint_key(&checkpoint.identity),
                encode(checkpoint),
            );
        }
        write.commit()?;
        pending.next_sequence += 1;
        pending.batches.insert(sequence, payload.len() as u64 + 1);
        pending.bytes += payload.len() as u64 + 1;
        pending.dirty = true;
        Ok(sequence)
    }

    /// Saves checkpoints that move without a batch (a file found truncated or replaced).
    pub fn save_checkpoints(&self, checkpoints: &[Checkpoint]) -> Result<(), BufferError> {
        let _pending = self.lock();
        let mut write = self.database.batch();
        for checkpoint in checkpoints {
            write.insert(
                &self.checkpoints,
                checkpoint_key(&checkpoint.identity),
                encode(checkpoint),
            );
        }
        write.commit()?;
        Ok(())
    }

    /// Forgets the checkpoint of a file that is gone for good.
    pub fn remove_checkpoint(&self, identity: &FileIdentity) -> Result<(), BufferError> {
        self.checkpoints.remove(checkpoint_key(identity))?;
        Ok(())
    }

    /// Deletes an acknowledged batch and wakes a reader waiting for room.
    pub fn acknowledge(&self, sequence: u64) -> Result<(), BufferError> {
        let mut pending = self.lock();
        let Some(size) = pending.batches.remove(&sequence) else {
            return Ok(());
        };
        self.batches.remove(sequence.to_be_bytes())?;
        pending.bytes -= size;
        pending.dirty = true;
        drop(pending);
        self.room.notify_all();
        Ok(())
    }

    /// The first pending batch after `after` (or the first of all when `None`).
    pub fn next_after(&self, after: Option<u64>) -> Result<Option<StoredBatch>, BufferError> {
        let next = {
            let pending = self.lock();
            let mut range = match after {
                Some(after) => pending.batches.range(after + 1..),
                None => pending.batches.range(0..),
            };
            range.next().map(|(sequence, _)| *sequence)
        };
        let Some(sequence) = next else {
            return Ok(None);
        };
        let Some(value) = self.batches.get(sequence.to_be_bytes())? else {
            // Acknowledged between the two lookups.
            return self.next_after(Some(sequence));
        };
        if value.first() != Some(&PROTOCOL_VERSION) {
            let found = value.first().copied().unwrap_or(0);
            return Err(BufferError::Version {
                key: sequence.to_string(),
                found,
                expected: PROTOCOL_VERSION,
            });
        }
        Ok(Some(StoredBatch {
            sequence,
            payload: bytes::Bytes::from(value).slice(1..),
        }))
    }

    /// Blocks until `size` more bytes fit, or `timeout` passes, or the buffer is closed.
    /// Returns whether there is room. A batch larger than the whole capacity is let in
    /// when the buffer is empty, so that it cannot block forever.
    pub fn wait_for_room(&self, size: u64, timeout: Duration) -> bool {
        let pending = self.lock();
        let fits = |pending: &mut Pending| {
            pending.bytes + size <= self.capacity() || pending.batches.is_empty()
        };
        let (mut pending, _) = self
            .room
            .wait_timeout_while(pending, timeout, |pending| {
                !fits(pending) && !self.closed.load(Ordering::Relaxed)
            })
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        fits(&mut pending)
    }

    /// Lets waiters wait again after [`DiskBuffer::close`] (a configuration reload).
    pub fn reopen(&self) {
        self.closed.store(false, Ordering::Relaxed);
    }

    /// Wakes every waiter; used at shutdown.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.room.notify_all();
    }

    /// Whether [`DiskBuffer::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Syncs everything written so far to disk, if anything changed since last time.
    pub fn sync(&self) -> Result<(), BufferError> {
        let dirty = std::mem::take(&mut self.lock().dirty);
        if dirty {
            self.database.persist(fjall::PersistMode::SyncAll)?;
        }
        Ok(())
    }

    pub fn checkpoint(&self, device: u64, inode: u64) -> Result<Option<Checkpoint>, BufferError> {
        let key = key_of(device, inode);
        match self.checkpoints.get(key)? {
            Some(value) => decode(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    pub fn all_checkpoints(&self) -> Result<Vec<Checkpoint>, BufferError> {
        let mut checkpoints = Vec::new();
        for entry in self.checkpoints.iter() {
            let (key, value) = entry.into_inner()?;
            checkpoints.push(decode(&key, &value)?);
        }
        Ok(checkpoints)
    }

    /// Compressed bytes waiting for acknowledgement.
    pub fn pending_bytes(&self) -> u64 {
        self.lock().bytes
    }

    pub fn pending_batches(&self) -> usize {
        self.lock().batches.len()
    }

    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Changes the capacity (configuration reload); waiters see it at their next check.
    pub fn set_capacity(&self, capacity: u64) {
        self.capacity.store(capacity, Ordering::Relaxed);
        self.room.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn decode_sequence(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&key[..8]);
    u64::from_be_bytes(bytes)
}

fn key_of(device: u64, inode: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&device.to_be_bytes());
    key[8..].copy_from_slice(&inode.to_be_bytes());
    key
}

fn checkpoint_key(identity: &FileIdentity) -> [u8; 16] {
    key_of(identity.device, identity.inode)
}

fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut value = vec![CHECKPOINT_FORMAT];
    // Encoding a plain struct into a Vec cannot fail.
    value.extend(postcard::to_stdvec(checkpoint).unwrap_or_default());
    value
}

/// Reads a stored checkpoint of the current format or of an older one.
fn decode(key: &[u8], value: &[u8]) -> Result<Checkpoint, BufferError> {
    let key_text = || format!("{key:02x?}");
    let invalid = |error: postcard::Error| BufferError::Checkpoint {
        key: key_text(),
        reason: error.to_string(),
    };
    match value.split_first() {
        Some((&CHECKPOINT_FORMAT, body)) => postcard::from_bytes(body).map_err(invalid),
        Some((&CHECKPOINT_FORMAT_V1, body)) => postcard::from_bytes::<CheckpointV1>(body)
            .map(Checkpoint::from)
            .map_err(invalid),
        other => Err(BufferError::Version {
            key: key_text(),
            found: other.map(|(version, _)| *version).unwrap_or(0),
            expected: CHECKPOINT_FORMAT,
        }),
    }
}

#[cfg(test)]
mod tests;
