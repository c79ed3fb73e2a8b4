//! The semantic layer: every event is named by its template, each template is embedded
//! once, and similar-log search finds templates by meaning.
//!
//! # Flow
//!
//! ```text
//! pipeline --observe--> TemplateObserver --(new or changed template)--> EmbedQueue
//!                       | miner + stats (memory)                          |
//!                       +--> saved every persist_interval                 v
//!                                              embedding worker: batch -> Embedder
//!                                                   (built-in model or Ollama)
//!                                                               |
//!                                                               v
//!                                         VectorStore (vectors.bin or Qdrant)
//! ```
//!
//! The observer runs on the pipeline's parsing thread; it only classifies, counts and
//! enqueues, so embedding never delays indexing or acknowledgements. A separate worker
//! takes up to `batch_size` queued texts at a time, embeds them in one request, stores
//! the vectors, and only then removes them from the queue; a failure is retried with
//! exponential backoff (half a second doubling to a minute), forever, without losing
//! the batch. Because only new or generalised templates are queued, and a template
//! waiting in the queue is embedded once however often it changes meanwhile, the
//! number of model calls follows the number of distinct templates, not of lines.
//!
//! # On disk (`{data_dir}/templates/`)
//!
//! | file          | holds                                                     | written |
//! |---------------|-----------------------------------------------------------|---------|
//! | `miner.json`  | the miner's state ([`crate::templates`])                  | every `persist_interval` and at shutdown |
//! | `stats.json`  | per template: count, first/last seen, datasets, hosts, examples | same |
//! | `queue.json`  | texts waiting for a vector                                 | same, and after every stored batch |
//! | `vectors.bin` | vectors and payloads, when no Qdrant is configured         | after every stored batch |
//!
//! Every file is replaced atomically (temporary file, sync, rename). A save takes the
//! miner and the queue in one critical section, and the observer enqueues a new template
//! under the same lock that learns it, so a saved miner never knows a template that the
//! saved queue lost; the queue is written first. After a crash, the work since the last
//! save is lost: templates learnt again from later lines keep their ids when their first
//! line repeats, and counts since the save are missing. At start, every template the
//! miner knows that has no local vector and is not queued is queued again, which also
//! rebuilds the vectors when the model changed. All of it is derived data: losing the
//! directory costs the template history, never logs.
//!
//! # Known limits
//!
//! Statistics keep at most 16 datasets and 32 host names per template. The refresh of
//! Qdrant payloads sends one request per changed template. With Qdrant, the start-up
//! check for templates that lack a vector relies on the saved queue alone.

pub mod api;
pub mod cli;
pub mod config;
pub mod embed;
pub mod filter;
pub mod novelty;
pub mod observer;
pub mod qdrant;
pub mod queue;
pub mod similar;
pub mod stats;
#[cfg(test)]
mod tests;
pub mod vectors;
pub mod worker;

use crate::query::Query;
use crate::templates::{MinerConfig, MinerStateError, TemplateMiner};
use config::{SemanticConfig, VectorConfig};
use embed::Embedder;
use garonne_common::files::{read_optional, write_atomic};
use queue::{EmbedItem, EmbedQueue, ItemKind, QueueError};
use stats::StatsTable;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use vectors::{LocalVectors, VectorError, VectorStore};

pub use config::SemanticConfigError;
pub use observer::TemplateObserver;

pub const MINER_FILE: &str = "miner.json";
pub const STATS_FILE: &str = "stats.json";
pub const QUEUE_FILE: &str = "queue.json";
/// Event keys remembered as already embedded, to skip repeats without a queue lookup.
const MAX_SEEN_EVENTS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SemanticError {
    #[error(transparent)]
    Config(#[from] SemanticConfigError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("cannot restore the template miner from {path}: {source}")]
    Miner {
        path: PathBuf,
        source: MinerStateError,
    },
    #[error("{path}: {source}")]
    Queue { path: PathBuf, source: QueueError },
    #[error(transparent)]
    Vectors(#[from] VectorError),
    #[error(transparent)]
    Embed(#[from] embed::EmbedError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("no event with id {0:?} in the store")]
    NoSuchEvent(String),
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> SemanticError {
    SemanticError::Io {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Counters of the semantic layer since start.
#[derive(Debug, Default)]
pub struct SemanticMetrics {
    /// Events given a template.
    pub events: AtomicU64,
    /// Requests to the embedding model (one per batch).
    pub embedding_calls: AtomicU64,
    pub texts_embedded: AtomicU64,
    pub embedding_failures: AtomicU64,
    /// Items refused because the queue was full.
    pub queue_refused: AtomicU64,
    pub saves: AtomicU64,
}

/// What the observer changes and a save writes.
pub(crate) struct MinerState {
    pub(crate) miner: TemplateMiner,
    pub(crate) stats: StatsTable,
    /// Something changed since the last save.
    pub(crate) unsaved: bool,
    /// Templates counted since the last payload refresh.
    pub(crate) touched: HashSet<u64>,
    /// Event keys already queued or embedded.
    pub(crate) seen_events: HashSet<u64>,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<MinerState>,
    /// Locked after `state` when both are needed, never before.
    pub(crate) queue: Mutex<EmbedQueue>,
    pub(crate) wake: tokio::sync::Notify,
    pub(crate) metrics: SemanticMetrics,
    pub(crate) directory: PathBuf,
    pub(crate) examples: usize,
    pub(crate) embed_events: Option<Query>,
    /// Serialises saves.
    save_lock: Mutex<()>,
    /// Best similarity of each template to those embedded before it.
    pub(crate) novelty: Arc<Mutex<novelty::NoveltyIndex>>,
}

/// The novelty index seeded with the template vectors of the local file, if any.
fn seed_novelty(vectors: &VectorStore) -> novelty::NoveltyIndex {
    let mut index = novelty::NoveltyIndex::default();
    if let VectorStore::Local(local) = vectors
        && let Ok(local) = local.read()
    {
        for (key, vector) in local.template_vectors() {
            index.add(key, vector);
        }
    }
    index
}

/// The semantic layer of one collector (or of one CLI command reading its files).
pub struct Semantic {
    config: SemanticConfig,
    shared: Arc<Shared>,
    embedder: Embedder,
    vectors: VectorStore,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Semantic {
    /// Loads the saved state of `config.directory` (creating nothing) and sets up the
    /// embedder and the vector store. Starts no task: see [`Semantic::start`].
    pub fn open(config: SemanticConfig) -> Result<Semantic, SemanticError> {
        let directory = config.directory.clone();
        let miner = load_miner(&directory)?;
        let stats = load_stats(&directory)?;
        let queue = load_queue(&directory)?;
        let embedder = Embedder::from_config(&config.embedder);
        let vectors = match &config.vectors {
            VectorConfig::Local => VectorStore::Local(Arc::new(RwLock::new(LocalVectors::open(
                &directory,
                &embedder.model(),
            )?))),
            VectorConfig::Qdrant(qdrant) => VectorStore::Qdrant(Arc::new(
                qdrant::QdrantVectors::new(qdrant).map_err(VectorError::from)?,
            )),
        };
        let state = MinerState {
            miner,
            stats,
            unsaved: false,
            touched: HashSet::new(),
            seen_events: HashSet::new(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            queue: Mutex::new(queue),
            wake: tokio::sync::Notify::new(),
            metrics: SemanticMetrics::default(),
            directory,
            examples: config.examples,
            embed_events: config.embed_events.as_ref().map(|(_, query)| query.clone()),
            save_lock: Mutex::new(()),
            novelty: Arc::new(Mutex::new(seed_novelty(&vectors))),
        });
        let (stop, _) = tokio::sync::watch::channel(false);
        Ok(Semantic {
            config,
            shared,
            embedder,
            vectors,
            stop,
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Creates the templates directory, queues templates that lack a vector, and starts
    /// the embedding worker, the periodic save and (with Qdrant) the payload refresh.
    pub fn start(&self) -> Result<(), SemanticError> {
        std::fs::create_dir_all(&self.config.directory)
            .map_err(|e| io_error(&self.config.directory, e))?;
        let requeued = self.requeue_missing_vectors();
        tracing::info!(
            directory = %self.config.directory.display(),
            templates = self.template_count(),
            queued = self.shared.queue.lock().expect("queue lock").len(),
            requeued,
            embedder = %self.embedder.describe(),
            vectors = %self.vectors.describe(),
            "template mining started"
        );
        let mut tasks = self.tasks.lock().expect("task lock");
        tasks.push(tokio::spawn(worker::embed_loop(
            self.shared.clone(),
            self.embedder.clone(),
            self.vectors.clone(),
            self.config.batch_size,
            self.stop.subscribe(),
        )));
        tasks.push(tokio::spawn(worker::save_loop(
            self.shared.clone(),
            self.config.persist_interval,
            self.stop.subscribe(),
        )));
        if matches!(self.vectors, VectorStore::Qdrant(_)) {
            tasks.push(tokio::spawn(worker::refresh_loop(
                self.shared.clone(),
                self.vectors.clone(),
                self.config.refresh_interval,
                self.stop.subscribe(),
            )));
        }
        Ok(())
    }

    /// Stops the tasks (a batch being embedded is abandoned and stays queued) and saves
    /// everything.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("task lock"));
        for task in tasks {
            let _ = task.await;
        }
        match save(&self.shared) {
            Ok(()) => tracing::info!(templates = self.template_count(), "templates saved"),
            Err(error) => tracing::error!(%error, "cannot save templates at shutdown"),
        }
    }

    /// The observer to register in the pipeline.
    /// Answers the alert rules' novelty questions from memory.
    pub fn novelty_scorer(&self) -> Arc<dyn crate::alerts::NoveltyScorer> {
        Arc::new(novelty::SemanticNovelty(self.shared.novelty.clone()))
    }

    pub fn observer(&self) -> Arc<dyn crate::observe::DocumentObserver> {
        Arc::new(TemplateObserver {
            shared: self.shared.clone(),
        })
    }

    pub fn config(&self) -> &SemanticConfig {
        &self.config
    }

    pub fn metrics(&self) -> &SemanticMetrics {
        &self.shared.metrics
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    pub fn vectors(&self) -> &VectorStore {
        &self.vectors
    }

    pub fn template_count(&self) -> usize {
        self.shared.state.lock().expect("miner lock").miner.len()
    }

    /// Texts waiting for a vector.
    pub fn pending(&self) -> usize {
        self.shared.queue.lock().expect("queue lock").len()
    }

    /// A copy of every template's statistics.
    pub fn stats(&self) -> StatsTable {
        self.shared.state.lock().expect("miner lock").stats.clone()
    }

    /// Saves now (what the periodic save does).
    pub fn save(&self) -> Result<(), SemanticError> {
        save(&self.shared)
    }

    /// The state for `GET /api/v1/templates/status`.
    pub fn status(&self) -> serde_json::Value {
        let unsaved = self.shared.state.lock().expect("miner lock").unsaved;
        let metrics = &self.shared.metrics;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        serde_json::json!({
            "templates": self.template_count(),
            "pending": self.pending(),
            "unsaved": unsaved,
            "events": load(&metrics.events),
            "embedding_calls": load(&metrics.embedding_calls),
            "texts_embedded": load(&metrics.texts_embedded),
            "embedding_failures": load(&metrics.embedding_failures),
            "queue_refused": load(&metrics.queue_refused),
            "embedder": self.embedder.describe(),
            "vectors": self.vectors.describe(),
        })
    }

    /// Queues every template the miner knows that has no local vector and is not
    /// queued; returns how many.
    fn requeue_missing_vectors(&self) -> usize {
        let VectorStore::Local(local) = &self.vectors else {
            return 0;
        };
        let local = local.read().expect("vector lock");
        let state = self.shared.state.lock().expect("miner lock");
        let mut queue = self.shared.queue.lock().expect("queue lock");
        let mut requeued = 0;
        for info in state.miner.templates() {
            if local.contains(ItemKind::Template, info.id.0)
                || queue.contains(ItemKind::Template, info.id.0)
            {
                continue;
            }
            queue.push(EmbedItem {
                kind: ItemKind::Template,
                key: info.id.0,
                text: info.template,
                origin: None,
            });
            requeued += 1;
        }
        requeued
    }
}

/// Writes queue, statistics and miner when something changed since the last save.
pub(crate) fn save(shared: &Shared) -> Result<(), SemanticError> {
    let _saving = shared.save_lock.lock().expect("save lock");
    let snapshot = {
        let mut state = shared.state.lock().expect("miner lock");
        let mut queue = shared.queue.lock().expect("queue lock");
        let queue_changed = queue.take_changed();
        if !state.unsaved && !queue_changed {
            return Ok(());
        }
        let state = &mut *state;
        let miner = &state.miner;
        let live: HashSet<u64> = miner.templates().map(|info| info.id.0).collect();
        state.stats.retain(|id| live.contains(&id.0));
        if state.seen_events.len() > MAX_SEEN_EVENTS {
            state.seen_events.clear();
        }
        state.unsaved = false;
        let stats = serde_json::to_vec(&state.stats).expect("statistics always serialise");
        (queue.to_bytes(), stats, state.miner.to_bytes())
    };
    let directory = &shared.directory;
    let (queue, stats, miner) = snapshot;
    let write = |name: &str, bytes: &[u8]| {
        let path = directory.join(name);
        write_atomic(&path, bytes).map_err(|e| io_error(&path, e))
    };
    let written = write(QUEUE_FILE, &queue)
        .and_then(|()| write(STATS_FILE, &stats))
        .and_then(|()| write(MINER_FILE, &miner));
    if written.is_err() {
        // Try again at the next save.
        shared.state.lock().expect("miner lock").unsaved = true;
    }
    written?;
    shared.metrics.saves.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Writes only the queue (after a batch was stored).
pub(crate) fn save_queue(shared: &Shared) -> Result<(), SemanticError> {
    let _saving = shared.save_lock.lock().expect("save lock");
    let bytes = {
        let mut queue = shared.queue.lock().expect("queue lock");
        if !queue.take_changed() {
            return Ok(());
        }
        queue.to_bytes()
    };
    let path = shared.directory.join(QUEUE_FILE);
    let written = write_atomic(&path, &bytes).map_err(|e| io_error(&path, e));
    if written.is_err() {
        shared.state.lock().expect("miner lock").unsaved = true;
    }
    written
}

fn load_miner(directory: &Path) -> Result<TemplateMiner, SemanticError> {
    let path = directory.join(MINER_FILE);
    match read_optional(&path).map_err(|e| io_error(&path, e))? {
        Some(bytes) => TemplateMiner::from_bytes(&bytes)
            .map_err(|source| SemanticError::Miner { path, source }),
        None => Ok(TemplateMiner::new(MinerConfig::default())),
    }
}

/// The saved statistics of `directory` (empty when there are none).
pub fn load_stats(directory: &Path) -> Result<StatsTable, SemanticError> {
    let path = directory.join(STATS_FILE);
    match read_optional(&path).map_err(|e| io_error(&path, e))? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| io_error(&path, e)),
        None => Ok(StatsTable::default()),
    }
}

fn load_queue(directory: &Path) -> Result<EmbedQueue, SemanticError> {
    let path = directory.join(QUEUE_FILE);
    match read_optional(&path).map_err(|e| io_error(&path, e))? {
        Some(bytes) => EmbedQueue::from_bytes(&bytes, queue::DEFAULT_CAPACITY)
            .map_err(|source| SemanticError::Queue { path, source }),
        None => Ok(EmbedQueue::new(queue::DEFAULT_CAPACITY)),
    }
}
