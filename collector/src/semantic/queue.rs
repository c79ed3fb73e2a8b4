//! The embedding queue: texts waiting for a vector, saved in `queue.json` so that a
//! restart loses none of them.
//!
//! Items are keyed by what they describe (a template id, or the hash of an event's
//! normalized message): enqueuing a key already waiting replaces its text in place, so
//! a template that generalises ten times before the worker gets to it costs one
//! embedding. The worker takes the oldest items without removing them and removes them
//! with [`EmbedQueue::complete`] only once their vectors are stored; an item whose text
//! changed meanwhile stays for another round. The queue is bounded: past `capacity`
//! items new keys are refused and counted, never blocking the pipeline.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Items the queue holds at most when no capacity is given.
pub const DEFAULT_CAPACITY: usize = 200_000;
const FILE_VERSION: u32 = 1;

/// What an embedded text stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Template,
    Event,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Template => "template",
            ItemKind::Event => "event",
        }
    }
}

/// Where an embedded event came from, kept with its vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOrigin {
    pub event_id: String,
    pub dataset: String,
    pub host: Option<String>,
    pub time_ms: i64,
}

/// One text waiting for its vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedItem {
    pub kind: ItemKind,
    pub key: u64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<EventOrigin>,
}

#[derive(Debug, Serialize, Deserialize)]
struct QueueFile {
    version: u32,
    items: Vec<EmbedItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot read the embedding queue: {0}")]
    Decode(serde_json::Error),
    #[error("embedding queue file version {0} is not supported (expected {FILE_VERSION})")]
    Version(u32),
}

/// A first-in first-out queue with one entry per key.
#[derive(Debug)]
pub struct EmbedQueue {
    by_sequence: BTreeMap<u64, EmbedItem>,
    sequence_of: HashMap<(ItemKind, u64), u64>,
    next_sequence: u64,
    capacity: usize,
    refused: u64,
    changed: bool,
}

impl EmbedQueue {
    pub fn new(capacity: usize) -> EmbedQueue {
        EmbedQueue {
            by_sequence: BTreeMap::new(),
            sequence_of: HashMap::new(),
            next_sequence: 0,
            capacity: capacity.max(1),
            refused: 0,
            changed: false,
        }
    }

    pub fn len(&self) -> usize {
        self.by_sequence.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sequence.is_empty()
    }

    /// Items refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether the queue changed since [`EmbedQueue::take_changed`] was last called.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Adds `item`, or replaces the text of the item waiting under the same key.
    /// Returns false when the queue is full and the item was refused.
    pub fn push(&mut self, item: EmbedItem) -> bool {
        let key = (item.kind, item.key);
        if let Some(sequence) = self.sequence_of.get(&key) {
            let waiting = self.by_sequence.get_mut(sequence).expect("indexes agree");
            if *waiting != item {
                *waiting = item;
                self.changed = true;
            }
            return true;
        }
        if self.by_sequence.len() >= self.capacity {
            self.refused += 1;
            return false;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.sequence_of.insert(key, sequence);
        self.by_sequence.insert(sequence, item);
        self.changed = true;
        true
    }

    /// Whether an item with this key is waiting.
    pub fn contains(&self, kind: ItemKind, key: u64) -> bool {
        self.sequence_of.contains_key(&(kind, key))
    }

    /// Copies of the `limit` oldest items; they stay queued until completed.
    pub fn peek_batch(&self, limit: usize) -> Vec<EmbedItem> {
        self.by_sequence.values().take(limit).cloned().collect()
    }

    /// Removes the items whose vectors were stored, unless their text changed since
    /// they were taken.
    pub fn complete(&mut self, done: &[EmbedItem]) {
        for item in done {
            let key = (item.kind, item.key);
            let Some(&sequence) = self.sequence_of.get(&key) else {
                continue;
            };
            if self
                .by_sequence
                .get(&sequence)
                .is_some_and(|w| w.text == item.text)
            {
                self.by_sequence.remove(&sequence);
                self.sequence_of.remove(&key);
                self.changed = true;
            }
        }
    }

    /// The queue as saved in `queue.json`, oldest item first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let file = QueueFile {
            version: FILE_VERSION,
            items: self.by_sequence.values().cloned().collect(),
        };
        serde_json::to_vec(&file).expect("queue always serialises")
    }

    /// Restores a queue saved by [`EmbedQueue::to_bytes`], keeping its order.
    pub fn from_bytes(bytes: &[u8], capacity: usize) -> Result<EmbedQueue, QueueError> {
        let file: QueueFile = serde_json::from_slice(bytes).map_err(QueueError::Decode)?;
        if file.version != FILE_VERSION {
            return Err(QueueError::Version(file.version));
        }
        let mut queue = EmbedQueue::new(capacity.max(file.items.len()));
        for item in file.items {
            queue.push(item);
        }
        queue.capacity = capacity.max(1);
        queue.changed = false;
        Ok(queue)
    }
}
