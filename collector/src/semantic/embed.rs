//! Turning texts into vectors: the model built into the collector, or Ollama's
//! `/api/embed`.
//!
//! # The built-in model
//!
//! With no `[ollama]` table the collector embeds with `paraphrase-MiniLM-L3-v2`, a
//! three-layer sentence transformer (384 dimensions, cosine similarity) trained on
//! paraphrase pairs. Its weights ship inside the `pocket-encoder` crate, stored in
//! 4-bit groups, and are compiled into the binary: nothing is downloaded, ever. Loading
//! expands them once (about 70 MB of memory) on first use. It runs on the CPU at a few
//! hundred short texts per second per core, which is ample because only templates are
//! embedded, not lines. It is smaller than `nomic-embed-text` and ranks paraphrases less
//! well; inputs past 128 word pieces are cut. Vectors of two models never mix: the
//! local vector file records the model and is rebuilt when it changes.
//!
//! # Text preparation
//!
//! Templates are written for machines (`dfs.DataNode$PacketResponder: PacketResponder
//! <*> for block blk_<*> terminating`). Before embedding, [`prepare_text`] drops the
//! `<*>` placeholders and splits identifiers at punctuation and camel case, so a
//! word-piece model sees `Packet Responder for block blk terminating`. Queries go
//! through the same function, so both sides agree.

use super::config::{EmbedderConfig, OllamaConfig};
use crate::templates::WILDCARD;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Characters of prepared text sent to a model at most; templates longer than this
/// are rare and their head carries their meaning.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Name recorded with vectors made by the built-in model.
pub const BUILTIN_MODEL: &str = "builtin:paraphrase-MiniLM-L3-v2-q4";

/// Embedding failures; the worker retries every kind with backoff.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot reach ollama at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("ollama at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("ollama at {url} answered something unreadable: {reason}")]
    Response { url: String, reason: String },
    #[error("embedder returned {got} vectors for {expected} texts")]
    Count { expected: usize, got: usize },
    #[error("embedder returned vectors of {got} dimensions, expected {expected}")]
    Dimension { expected: usize, got: usize },
    #[error("built-in embedding model failed: {0}")]
    Builtin(String),
}

/// Where texts are turned into vectors. Cheap to clone.
#[derive(Clone)]
pub enum Embedder {
    Builtin(Arc<BuiltinEmbedder>),
    Ollama(Arc<OllamaEmbedder>),
}

impl Embedder {
    pub fn from_config(config: &EmbedderConfig) -> Embedder {
        match config {
            EmbedderConfig::Builtin => Embedder::Builtin(Arc::new(BuiltinEmbedder::default())),
            EmbedderConfig::Ollama(ollama) => {
                Embedder::Ollama(Arc::new(OllamaEmbedder::new(ollama.clone())))
            }
        }
    }

    /// Identifies the vector space: vectors of different models never compare.
    pub fn model(&self) -> String {
        match self {
            Embedder::Builtin(_) => BUILTIN_MODEL.to_string(),
            Embedder::Ollama(ollama) => format!("ollama:{}", ollama.config.model),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Embedder::Builtin(_) => format!("built-in model {BUILTIN_MODEL}"),
            Embedder::Ollama(ollama) => {
                format!("ollama {} model {}", ollama.config.url, ollama.config.model)
            }
        }
    }

    /// One vector per text, in order, each of unit length. Texts should already have
    /// gone through [`prepare_text`].
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = match self {
            Embedder::Builtin(builtin) => {
                let builtin = builtin.clone();
                let texts = texts.to_vec();
                tokio::task::spawn_blocking(move || builtin.embed(&texts))
                    .await
                    .map_err(|error| EmbedError::Builtin(error.to_string()))??
            }
            Embedder::Ollama(ollama) => ollama.embed(texts).await?,
        };
        if vectors.len() != texts.len() {
            return Err(EmbedError::Count {
                expected: texts.len(),
                got: vectors.len(),
            });
        }
        let dimension = vectors.first().map_or(0, Vec::len);
        for vector in &mut vectors {
            if vector.len() != dimension {
                return Err(EmbedError::Dimension {
                    expected: dimension,
                    got: vector.len(),
                });
            }
            normalize(vector);
        }
        Ok(vectors)
    }
}

/// The model compiled into the binary, loaded on first use.
#[derive(Default)]
pub struct BuiltinEmbedder {
    encoder: std::sync::OnceLock<pocket_encoder::Encoder>,
}

impl BuiltinEmbedder {
    /// Blocking: runs the model on this thread.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoder = match self.encoder.get() {
            Some(encoder) => encoder,
            None => {
                let loaded = pocket_encoder::Encoder::new()
                    .map_err(|error| EmbedError::Builtin(error.to_string()))?;
                self.encoder.get_or_init(|| loaded)
            }
        };
        // The model refuses blank input; such a text carries no meaning anyway.
        let texts: Vec<&str> = texts
            .iter()
            .map(|text| {
                if text.trim().is_empty() {
                    "empty"
                } else {
                    text
                }
            })
            .collect();
        encoder
            .embed(&texts)
            .map_err(|error| EmbedError::Builtin(error.to_string()))
    }
}

/// A client of Ollama's `/api/embed`.
pub struct OllamaEmbedder {
    config: OllamaConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Vec<Vec<f32>>,
}

impl OllamaEmbedder {
    pub fn new(config: OllamaConfig) -> OllamaEmbedder {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .expect("an HTTP client with a timeout always builds");
        OllamaEmbedder { config, client }
    }

    /// One request for all `texts`.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let url = format!("{}/api/embed", self.config.url);
        let body = json!({"model": self.config.model, "input": texts});
        let response = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|error| EmbedError::Unreachable {
                url: url.clone(),
                reason: error.to_string(),
            })?;
        let status = response.status();
        if !status.is_success() {
            let mut text = response.text().await.unwrap_or_default();
            text.truncate(500);
            return Err(EmbedError::Status {
                url,
                status: status.as_u16(),
                body: text,
            });
        }
        let parsed: EmbedResponse =
            response
                .json()
                .await
                .map_err(|error| EmbedError::Response {
                    url: url.clone(),
                    reason: error.to_string(),
                })?;
        Ok(parsed.embeddings)
    }
}

/// Scales `vector` to unit length (a zero vector stays zero).
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Makes a template or a query readable for a word-piece model: removes `<*>`, splits
/// identifiers at punctuation, digits and camel case, and collapses spaces.
pub fn prepare_text(text: &str) -> String {
    let without_wildcards = text.replace(WILDCARD, " ");
    let mut prepared = String::with_capacity(without_wildcards.len() + 16);
    let mut previous: Option<char> = None;
    for character in without_wildcards.chars() {
        let keep = character.is_alphanumeric() || matches!(character, ',' | '\'' | '-');
        let boundary = match previous {
            Some(before) => {
                (before.is_lowercase() && character.is_uppercase())
                    || (before.is_alphabetic() && character.is_ascii_digit())
            }
            None => false,
        };
        if !keep {
            prepared.push(' ');
        } else {
            if boundary {
                prepared.push(' ');
            }
            prepared.push(character);
        }
        previous = Some(character);
    }
    let words: Vec<&str> = prepared
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| matches!(c, '-' | ',' | '\'')))
        .filter(|word| !word.is_empty())
        .collect();
    let mut joined = words.join(" ");
    if joined.trim().is_empty() {
        joined = text.trim().to_string();
    }
    if joined.chars().count() > MAX_TEXT_CHARS {
        joined = joined.chars().take(MAX_TEXT_CHARS).collect();
    }
    joined
}
