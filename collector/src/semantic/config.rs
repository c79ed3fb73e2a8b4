//! The `[templates]`, `[ollama]` and `[qdrant]` tables of `collector.toml`, read into
//! plain structs and then checked once into [`SemanticConfig`].

use crate::query::Query;
use garonne_common::units::HumanDuration;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Model asked of Ollama when `[ollama] model` is not set.
pub const DEFAULT_OLLAMA_MODEL: &str = "nomic-embed-text";
/// Texts sent in one embedding request when `batch_size` is not set.
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// Qdrant collection when `[qdrant] collection` is not set.
pub const DEFAULT_COLLECTION: &str = "garonne-templates";
/// How often the miner state, template statistics and queue are saved.
pub const DEFAULT_PERSIST_INTERVAL: Duration = Duration::from_secs(10);
/// How often changed template counts are pushed to the vector store.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait for one embedding or Qdrant request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Event ids kept per template as examples.
pub const DEFAULT_EXAMPLES: usize = 5;

/// `[templates]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TemplatesTable {
    /// Off: events get no template fields and nothing is embedded.
    enabled: bool,
    /// How often the miner's state is saved. A crash loses at most this much learning;
    /// templates learnt again get the same ids when their first line repeats.
    persist_interval: HumanDuration,
    /// How often changed counts reach the vector store's payloads. Shorter keeps search
    /// results fresher at the cost of one update request per changed template.
    refresh_interval: HumanDuration,
    /// Events matching this query (the search language of `search`) are embedded one by
    /// one as well, deduplicated by their normalized message. Leave unset unless the
    /// matching events are rare: each distinct message costs one embedded text.
    embed_events: Option<String>,
    /// Event ids kept per template as examples.
    examples: usize,
}

impl Default for TemplatesTable {
    fn default() -> Self {
        TemplatesTable {
            enabled: true,
            persist_interval: HumanDuration(DEFAULT_PERSIST_INTERVAL),
            refresh_interval: HumanDuration(DEFAULT_REFRESH_INTERVAL),
            embed_events: None,
            examples: DEFAULT_EXAMPLES,
        }
    }
}

/// `[ollama]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OllamaTable {
    url: String,
    #[serde(default = "default_model")]
    model: String,
    /// Texts per `/api/embed` request. Larger batches mean fewer calls; a batch that
    /// fails is retried whole, so very large ones waste more work on errors.
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    timeout: Option<HumanDuration>,
}

/// `[qdrant]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QdrantTable {
    /// gRPC address, e.g. `http://127.0.0.1:6334`.
    url: String,
    #[serde(default = "default_collection")]
    collection: String,
    api_key: Option<String>,
    timeout: Option<HumanDuration>,
}

fn default_model() -> String {
    DEFAULT_OLLAMA_MODEL.to_string()
}

fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}

fn default_collection() -> String {
    DEFAULT_COLLECTION.to_string()
}

/// Where texts are turned into vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedderConfig {
    /// The model compiled into the collector (see `embed.rs`).
    Builtin,
    Ollama(OllamaConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaConfig {
    /// Base URL, without a trailing slash.
    pub url: String,
    pub model: String,
    pub timeout: Duration,
}

/// Where vectors are kept.
#[derive(Clone, PartialEq, Eq)]
pub enum VectorConfig {
    /// A file in the templates directory, searched exhaustively.
    Local,
    Qdrant(QdrantConfig),
}

#[derive(Clone, PartialEq, Eq)]
pub struct QdrantConfig {
    pub url: String,
    pub collection: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for VectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorConfig::Local => f.write_str("Local"),
            // The API key is never printed.
            VectorConfig::Qdrant(qdrant) => f
                .debug_struct("Qdrant")
                .field("url", &qdrant.url)
                .field("collection", &qdrant.collection)
                .finish_non_exhaustive(),
        }
    }
}

/// The checked configuration of the semantic layer.
#[derive(Debug, Clone)]
pub struct SemanticConfig {
    pub enabled: bool,
    /// `{data_dir}/templates`: miner state, statistics, queue and local vectors.
    pub directory: PathBuf,
    pub persist_interval: Duration,
    pub refresh_interval: Duration,
    pub embed_events: Option<(String, Query)>,
    pub examples: usize,
    pub batch_size: usize,
    pub embedder: EmbedderConfig,
    pub vectors: VectorConfig,
}

/// Every problem found in the three tables, each naming its key, value and rule.
#[derive(Debug, thiserror::Error)]
#[error("invalid semantic configuration:\n  - {}", problems.join("\n  - "))]
pub struct SemanticConfigError {
    pub problems: Vec<String>,
}

impl SemanticConfig {
    /// Reads the raw tables of `collector.toml`; `data_dir` is `collector.data_dir`.
    pub fn from_tables(
        templates: Option<&toml::Table>,
        ollama: Option<&toml::Table>,
        qdrant: Option<&toml::Table>,
        data_dir: &Path,
    ) -> Result<SemanticConfig, SemanticConfigError> {
        let mut problems = Vec::new();
        let templates: TemplatesTable = decode("templates", templates, &mut problems)
            .flatten()
            .unwrap_or_default();
        let ollama: Option<OllamaTable> = decode("ollama", ollama, &mut problems).flatten();
        let qdrant: Option<QdrantTable> = decode("qdrant", qdrant, &mut problems).flatten();
        let config = check(templates, ollama, qdrant, data_dir, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(SemanticConfigError { problems })
        }
    }

    /// The defaults: built-in model, vectors in the data directory.
    pub fn embedded(data_dir: &Path) -> SemanticConfig {
        SemanticConfig::from_tables(None, None, None, data_dir)
            .expect("the default semantic configuration is valid")
    }
}

/// `Some(None)` when the table is absent, `None` when it does not decode.
fn decode<T: serde::de::DeserializeOwned>(
    name: &str,
    table: Option<&toml::Table>,
    problems: &mut Vec<String>,
) -> Option<Option<T>> {
    let Some(table) = table else {
        return Some(None);
    };
    match toml::Value::Table(table.clone()).try_into::<T>() {
        Ok(value) => Some(Some(value)),
        Err(error) => {
            problems.push(format!("[{name}]: {}", error.message()));
            None
        }
    }
}

fn check(
    templates: TemplatesTable,
    ollama: Option<OllamaTable>,
    qdrant: Option<QdrantTable>,
    data_dir: &Path,
    problems: &mut Vec<String>,
) -> SemanticConfig {
    check_positive(
        "templates.persist_interval",
        templates.persist_interval,
        problems,
    );
    check_positive(
        "templates.refresh_interval",
        templates.refresh_interval,
        problems,
    );
    if templates.examples > 100 {
        problems.push(format!(
            "templates.examples: {} must be at most 100",
            templates.examples
        ));
    }
    let embed_events = templates
        .embed_events
        .and_then(|text| match Query::parse(&text) {
            Ok(query) if !query.terms.is_empty() => Some((text, query)),
            Ok(_) => {
                problems.push(format!(
                    "templates.embed_events: {text:?} matches every event; name a filter such as \
                 \"log.level:error\""
                ));
                None
            }
            Err(error) => {
                problems.push(format!("templates.embed_events: {text:?}: {error}"));
                None
            }
        });
    let mut batch_size = DEFAULT_BATCH_SIZE;
    let embedder = match ollama {
        None => EmbedderConfig::Builtin,
        Some(table) => {
            check_url("ollama.url", &table.url, problems);
            if !(1..=1024).contains(&table.batch_size) {
                problems.push(format!(
                    "ollama.batch_size: {} must be between 1 and 1024",
                    table.batch_size
                ));
            }
            if table.model.trim().is_empty() {
                problems.push("ollama.model: must not be empty".to_string());
            }
            batch_size = table.batch_size;
            EmbedderConfig::Ollama(OllamaConfig {
                url: table.url.trim_end_matches('/').to_string(),
                model: table.model,
                timeout: timeout("ollama.timeout", table.timeout, problems),
            })
        }
    };
    let vectors = match qdrant {
        None => VectorConfig::Local,
        Some(table) => {
            check_url("qdrant.url", &table.url, problems);
            if table.collection.is_empty()
                || !table
                    .collection
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                problems.push(format!(
                    "qdrant.collection: {:?} must be letters, digits, '-', '_' or '.'",
                    table.collection
                ));
            }
            VectorConfig::Qdrant(QdrantConfig {
                url: table.url.trim_end_matches('/').to_string(),
                collection: table.collection,
                api_key: table.api_key,
                timeout: timeout("qdrant.timeout", table.timeout, problems),
            })
        }
    };
    SemanticConfig {
        enabled: templates.enabled,
        directory: data_dir.join("templates"),
        persist_interval: templates.persist_interval.0,
        refresh_interval: templates.refresh_interval.0,
        embed_events,
        examples: templates.examples,
        batch_size,
        embedder,
        vectors,
    }
}

fn check_positive(key: &str, value: HumanDuration, problems: &mut Vec<String>) {
    if value.0.is_zero() {
        problems.push(format!("{key}: {value} must be longer than zero"));
    }
}

fn check_url(key: &str, url: &str, problems: &mut Vec<String>) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|rest| rest.trim_end_matches('/').is_empty()) {
        problems.push(format!("{key}: {url:?} must be an http:// or https:// URL"));
    }
}

fn timeout(key: &str, value: Option<HumanDuration>, problems: &mut Vec<String>) -> Duration {
    let value = value.unwrap_or(HumanDuration(DEFAULT_REQUEST_TIMEOUT));
    check_positive(key, value, problems);
    value.0
}
