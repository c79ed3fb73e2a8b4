//! Where vectors live: a file in the templates directory (the default), or Qdrant.
//!
//! Both hold one point per template (and per embedded event), keyed by the template id
//! (or the event's message hash), with a payload that repeats what search shows: the
//! text, counts, first and last seen, datasets, hosts and example event ids.
//!
//! The local file, `vectors.bin`, is a postcard document: a format version, the model
//! that made the vectors, their dimension, and the points. It is rewritten whole and
//! atomically after each stored batch; search scans every point, which takes a few
//! milliseconds for tens of thousands of templates.

use super::embed::cosine;
use super::qdrant::{QdrantError, QdrantVectors};
use super::queue::ItemKind;
use garonne_common::files::{read_optional, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

const LOCAL_FILE_VERSION: u32 = 1;
/// Name of the local vector file in the templates directory.
pub const LOCAL_FILE: &str = "vectors.bin";

/// What a point's payload says about the template or event it stands for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointPayload {
    pub kind: String,
    /// Template id in hex, or the event's key in hex.
    pub key: String,
    pub text: String,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub datasets: Vec<String>,
    pub hosts: Vec<String>,
    pub examples: Vec<String>,
}

/// A vector and what it stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorPoint {
    pub kind: ItemKind,
    pub key: u64,
    pub vector: Vec<f32>,
    pub payload: PointPayload,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    pub kind: ItemKind,
    pub key: u64,
    pub score: f32,
    pub payload: PointPayload,
}

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error(
        "vectors of {got} dimensions do not fit the {store}, which holds {expected} dimensions"
    )]
    Dimension {
        store: String,
        expected: usize,
        got: usize,
    },
    #[error("cannot save {path}: {reason}")]
    Save { path: PathBuf, reason: String },
    #[error("cannot read {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error(transparent)]
    Qdrant(#[from] QdrantError),
}

#[derive(Serialize, Deserialize)]
struct LocalFile {
    version: u32,
    model: String,
    dimension: usize,
    points: Vec<VectorPoint>,
}

/// Vectors in memory, saved to `vectors.bin`.
#[derive(Debug)]
pub struct LocalVectors {
    path: PathBuf,
    model: String,
    dimension: Option<usize>,
    points: HashMap<(ItemKind, u64), VectorPoint>,
}

impl LocalVectors {
    /// Opens the file in `directory` for vectors of `model`. Vectors of another model
    /// are dropped (and will be made again): they cannot be compared with new ones.
    pub fn open(directory: &Path, model: &str) -> Result<LocalVectors, VectorError> {
        let path = directory.join(LOCAL_FILE);
        let mut vectors = LocalVectors {
            path: path.clone(),
            model: model.to_string(),
            dimension: None,
            points: HashMap::new(),
        };
        let load = |reason: String| VectorError::Load {
            path: path.clone(),
            reason,
        };
        let Some(bytes) = read_optional(&path).map_err(|e| load(e.to_string()))? else {
            return Ok(vectors);
        };
        let file: LocalFile = postcard::from_bytes(&bytes).map_err(|e| load(e.to_string()))?;
        if file.version != LOCAL_FILE_VERSION {
            return Err(load(format!("unsupported version {}", file.version)));
        }
        if file.model != model {
            tracing::warn!(path = %path.display(), old = %file.model, new = %model,
                "embedding model changed, vectors will be made again");
            return Ok(vectors);
        }
        vectors.dimension = Some(file.dimension);
        for point in file.points {
            vectors.points.insert((point.kind, point.key), point);
        }
        Ok(vectors)
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Every template's key and vector.
    pub fn template_vectors(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.points
            .values()
            .filter(|point| point.kind == ItemKind::Template)
            .map(|point| (point.key, point.vector.as_slice()))
    }

    pub fn contains(&self, kind: ItemKind, key: u64) -> bool {
        self.points.contains_key(&(kind, key))
    }

    /// Adds or replaces points and saves the file before returning.
    pub fn upsert(&mut self, points: Vec<VectorPoint>) -> Result<(), VectorError> {
        for point in &points {
            let expected = *self.dimension.get_or_insert(point.vector.len());
            if point.vector.len() != expected {
                return Err(VectorError::Dimension {
                    store: format!("vector file {}", self.path.display()),
                    expected,
                    got: point.vector.len(),
                });
            }
        }
        for point in points {
            self.points.insert((point.kind, point.key), point);
        }
        self.save()
    }

    fn save(&self) -> Result<(), VectorError> {
        let mut points: Vec<&VectorPoint> = self.points.values().collect();
        points.sort_by_key(|point| (point.kind, point.key));
        let file = LocalFileRef {
            version: LOCAL_FILE_VERSION,
            model: &self.model,
            dimension: self.dimension.unwrap_or(0),
            points,
        };
        let bytes = postcard::to_stdvec(&file).map_err(|e| self.save_error(e.to_string()))?;
        write_atomic(&self.path, &bytes).map_err(|e| self.save_error(e.to_string()))
    }

    fn save_error(&self, reason: String) -> VectorError {
        VectorError::Save {
            path: self.path.clone(),
            reason,
        }
    }

    /// The `limit` nearest points of `kind` (any kind when `None`), best first.
    pub fn search(
        &self,
        vector: &[f32],
        limit: usize,
        kind: Option<ItemKind>,
    ) -> Result<Vec<VectorHit>, VectorError> {
        if let Some(expected) = self.dimension
            && expected != vector.len()
            && !self.points.is_empty()
        {
            return Err(VectorError::Dimension {
                store: format!("vector file {}", self.path.display()),
                expected,
                got: vector.len(),
            });
        }
        let mut hits: Vec<VectorHit> = self
            .points
            .values()
            .filter(|point| kind.is_none_or(|kind| point.kind == kind))
            .map(|point| VectorHit {
                kind: point.kind,
                key: point.key,
                score: cosine(vector, &point.vector),
                payload: point.payload.clone(),
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
        hits.truncate(limit);
        Ok(hits)
    }
}

#[derive(Serialize)]
struct LocalFileRef<'a> {
    version: u32,
    model: &'a str,
    dimension: usize,
    points: Vec<&'a VectorPoint>,
}

/// The vector store the configuration selects. Cheap to clone.
#[derive(Clone)]
pub enum VectorStore {
    Local(Arc<RwLock<LocalVectors>>),
    Qdrant(Arc<QdrantVectors>),
}

impl VectorStore {
    pub fn describe(&self) -> String {
        match self {
            VectorStore::Local(local) => {
                let local = local.read().expect("vector lock");
                format!("vector file {}", local.path.display())
            }
            VectorStore::Qdrant(qdrant) => qdrant.describe(),
        }
    }

    pub async fn upsert(&self, points: Vec<VectorPoint>) -> Result<(), VectorError> {
        match self {
            VectorStore::Local(local) => {
                let local = local.clone();
                tokio::task::spawn_blocking(move || {
                    local.write().expect("vector lock").upsert(points)
                })
                .await
                .map_err(|e| VectorError::Save {
                    path: PathBuf::from(LOCAL_FILE),
                    reason: e.to_string(),
                })?
            }
            VectorStore::Qdrant(qdrant) => Ok(qdrant.upsert(points).await?),
        }
    }

    pub async fn search(
        &self,
        vector: &[f32],
        limit: usize,
        kind: Option<ItemKind>,
    ) -> Result<Vec<VectorHit>, VectorError> {
        match self {
            VectorStore::Local(local) => local
                .read()
                .expect("vector lock")
                .search(vector, limit, kind),
            VectorStore::Qdrant(qdrant) => Ok(qdrant.search(vector, limit, kind).await?),
        }
    }

    /// Pushes fresh counts of already stored points; the local file needs none, since
    /// its searches read the live statistics.
    pub async fn refresh(
        &self,
        payloads: Vec<(ItemKind, u64, PointPayload)>,
    ) -> Result<(), VectorError> {
        match self {
            VectorStore::Local(_) => Ok(()),
            VectorStore::Qdrant(qdrant) => Ok(qdrant.refresh(payloads).await?),
        }
    }
}
