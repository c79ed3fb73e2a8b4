//! Configuration files of the agent and the collector.
//!
//! A file is read in two steps. Deserialization turns TOML into these structs, refusing
//! unknown keys and malformed values with the key's path and the file's line. Validation
//! then checks the rules that span several keys and reports every broken one at once,
//! each with its key, its value and the rule. Defaults are the `DEFAULT_*` constants.

use crate::event::Module;
use crate::units::{ByteSize, HumanDuration};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_AGENT_DATA_DIR: &str = "/var/lib/garonne-agent";
pub const DEFAULT_COLLECTOR_DATA_DIR: &str = "/var/lib/garonne-collector";
pub const DEFAULT_MAX_LINE_BYTES: ByteSize = ByteSize(1 << 20);
pub const DEFAULT_BATCH_MAX_LINES: usize = 4096;
pub const DEFAULT_BATCH_MAX_BYTES: ByteSize = ByteSize(1 << 20);
pub const DEFAULT_BATCH_MAX_WAIT: Duration = Duration::from_millis(500);
pub const DEFAULT_BUFFER_MAX_BYTES: ByteSize = ByteSize(256 << 20);
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(200);
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_CLOSE_INACTIVE: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_INDEX_PREFIX: &str = "garonne";
pub const DEFAULT_BULK_MAX_BYTES: ByteSize = ByteSize(8 << 20);
pub const DEFAULT_API_PORT: u16 = 8080;

/// Every problem found in one configuration file.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration {}", self.path.display())?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------
// Agent

/// `agent.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default)]
    pub agent: AgentSection,
    #[serde(default, rename = "input")]
    pub inputs: Vec<InputConfig>,
    pub collector: CollectorConnection,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub buffer: BufferConfig,
}

/// `[agent]`: who this agent is and where it keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Name of this agent in every event (`agent.id`). Default: the host name. Changing
    /// it makes already shipped lines look new to the collector's duplicate check.
    pub id: Option<String>,
    /// Host name put in `host.name`. Default: the machine's host name.
    pub host_name: Option<String>,
    /// Holds the disk buffer and the checkpoints. Must survive reboots.
    pub data_dir: PathBuf,
    /// How often globs are expanded again to find new files. inotify finds most new
    /// files at once; the rescan catches the rest (network filesystems, lost events).
    pub scan_interval: HumanDuration,
    /// How often open files are checked for growth when no inotify event came.
    pub poll_interval: HumanDuration,
    /// An open file unchanged this long is closed; it is reopened when it changes. A
    /// rotated file is released only after this long without new lines.
    pub close_inactive: HumanDuration,
    /// Most files held open at once; beyond it the least recently active are closed.
    pub max_open_files: usize,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            id: None,
            host_name: None,
            data_dir: PathBuf::from(DEFAULT_AGENT_DATA_DIR),
            scan_interval: HumanDuration(DEFAULT_SCAN_INTERVAL),
            poll_interval: HumanDuration(DEFAULT_POLL_INTERVAL),
            close_inactive: HumanDuration(DEFAULT_CLOSE_INACTIVE),
            max_open_files: DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// A module an input may name: one of [`Module::ALL`], not the agent's own monitor
/// results.
fn input_module<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Module, D::Error> {
    let name = String::deserialize(deserializer)?;
    Module::from_name(&name).ok_or_else(|| {
        let known: Vec<&str> = Module::ALL.iter().map(|module| module.name()).collect();
        serde::de::Error::custom(format!(
            "unknown module {name:?}, expected one of {}",
            known.join(", ")
        ))
    })
}

/// `[[input]]`: a set of files of one kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Glob patterns (`/var/log/apache2/*access*.log`). Rotated names such as
    /// `access.log.1` or `.gz` are not read unless a pattern matches them.
    pub paths: Vec<String>,
    /// Which parser the collector applies.
    #[serde(deserialize_with = "input_module")]
    pub module: Module,
    /// Glob patterns of files to leave alone even when `paths` matches them.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Longer lines are cut here and flagged `truncated`. Raising it raises the memory a
    /// single line may take in the agent and in the collector.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: ByteSize,
}

fn default_max_line_bytes() -> ByteSize {
    DEFAULT_MAX_LINE_BYTES
}

/// `[collector]` in the agent's file: where and how to ship.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConnection {
    /// `host:port` of each collector; the agent fails over in order.
    pub addresses: Vec<String>,
    /// Name the collector's certificate must carry.
    pub server_name: String,
    /// CA that signed the collector's certificate.
    pub ca: PathBuf,
    /// This agent's client certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Batches sent and not yet acknowledged. More hides latency on slow links; each
    /// costs up to `batch.max_bytes` of memory on both sides.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

fn default_max_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

/// `[batch]`: how lines are grouped before compression.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Lines per batch at most.
    pub max_lines: usize,
    /// Uncompressed bytes per batch at most (a single longer line still makes a batch).
    /// Larger batches compress better and cost fewer acknowledgements, but hold more
    /// memory and make the collector's bulk requests larger.
    pub max_bytes: ByteSize,
    /// A partial batch is sent after this long, so quiet files still ship promptly.
    pub max_wait: HumanDuration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_lines: DEFAULT_BATCH_MAX_LINES,
            max_bytes: DEFAULT_BATCH_MAX_BYTES,
            max_wait: HumanDuration(DEFAULT_BATCH_MAX_WAIT),
        }
    }
}

/// `[buffer]`: the disk buffer holding batches until the collector acknowledges them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Compressed bytes held at most. When full, reading pauses and lines wait in their
    /// files; size it for the longest collector outage to ride out without pausing
    /// (Apache logs compress about 8:1).
    pub max_bytes: ByteSize,
    /// How often buffered batches and checkpoints are synced to disk together. A power
    /// cut loses at most this much reading progress, which is then read again.
    pub sync_interval: HumanDuration,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: DEFAULT_BUFFER_MAX_BYTES,
            sync_interval: HumanDuration(DEFAULT_SYNC_INTERVAL),
        }
    }
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let config: AgentConfig = parse_file(path)?;
        config.validate(path)?;
        Ok(config)
    }

    pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
        let config: AgentConfig = parse_text(text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Some(id) = &self.agent.id {
            check_identifier("agent.id", id, &mut problems);
        }
        if self.inputs.is_empty() {
            problems.push("input: at least one [[input]] table is required".to_string());
        }
        for (index, input) in self.inputs.iter().enumerate() {
            if input.paths.is_empty() {
                problems.push(format!("input[{index}].paths: must list at least one glob"));
            }
            for pattern in input.paths.iter().chain(&input.exclude) {
                if !pattern.starts_with('/') {
                    problems.push(format!(
                        "input[{index}].paths: {pattern:?} must be an absolute path"
                    ));
                }
            }
            check_range(
                &format!("input[{index}].max_line_bytes"),
                input.max_line_bytes.0,
                64,
                crate::wire::MAX_FRAME_BYTES as u64 / 4,
                &mut problems,
            );
        }
        if self.collector.addresses.is_empty() {
            problems.push("collector.addresses: must list at least one host:port".to_string());
        }
        for address in &self.collector.addresses {
            if address
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                problems.push(format!("collector.addresses: {address:?} is not host:port"));
            }
        }
        check_range(
            "collector.max_in_flight",
            self.collector.max_in_flight as u64,
            1,
            1024,
            &mut problems,
        );
        check_range(
            "batch.max_lines",
            self.batch.max_lines as u64,
            1,
            1_000_000,
            &mut problems,
        );
        check_range(
            "batch.max_bytes",
            self.batch.max_bytes.0,
            1024,
            crate::wire::MAX_FRAME_BYTES as u64 / 2,
            &mut problems,
        );
        let buffer_floor = self.batch.max_bytes.0.saturating_mul(2);
        if self.buffer.max_bytes.0 < buffer_floor {
            problems.push(format!(
                "buffer.max_bytes: {} must be at least twice batch.max_bytes ({})",
                self.buffer.max_bytes,
                ByteSize(buffer_floor)
            ));
        }
        check_positive(
            "agent.scan_interval",
            self.agent.scan_interval,
            &mut problems,
        );
        check_positive(
            "agent.poll_interval",
            self.agent.poll_interval,
            &mut problems,
        );
        check_positive("batch.max_wait", self.batch.max_wait, &mut problems);
        check_positive(
            "buffer.sync_interval",
            self.buffer.sync_interval,
            &mut problems,
        );
        check_range(
            "agent.max_open_files",
            self.agent.max_open_files as u64,
            1,
            1_000_000,
            &mut problems,
        );
        finish(path, problems)
    }

    /// Checks that the certificate files can be read; separate from validation so that
    /// a configuration can be checked on a machine that does not hold them.
    pub fn check_files(&self, path: &Path) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        check_readable("collector.ca", &self.collector.ca, &mut problems);
        check_readable("collector.cert", &self.collector.cert, &mut problems);
        check_readable("collector.key", &self.collector.key, &mut problems);
        if problems.is_empty() {
            let collector = &self.collector;
            let built =
                crate::tls::client_config(&collector.ca, &collector.cert, &collector.key, b"");
            if let Err(error) = built {
                problems.push(tls_problem(
                    "collector.ca, collector.cert, collector.key",
                    &error,
                ));
            }
        }
        finish(path, problems)
    }
}

// ---------------------------------------------------------------------------------------
// Collector

/// `collector.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    pub collector: CollectorSection,
    /// Absent: documents go to the embedded index in `collector.data_dir`.
    pub elasticsearch: Option<ElasticsearchConfig>,
    #[serde(default)]
    pub api: ApiConfig,
    /// The sections below are checked by the collector modules that own them
    /// (notifications, alert rules, monitors, the semantic layer), each naming its
    /// keys in its own messages.
    #[serde(default, rename = "notify")]
    pub notify: Vec<toml::Table>,
    #[serde(default, rename = "alert")]
    pub alerts: Vec<toml::Table>,
    #[serde(default, rename = "monitor")]
    pub monitors: Vec<toml::Table>,
    pub importance: Option<toml::Table>,
    pub templates: Option<toml::Table>,
    pub ollama: Option<toml::Table>,
    pub qdrant: Option<toml::Table>,
}

/// `[api]`: the HTTP API, web console and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// TCP address of the HTTP API. It has no authentication: keep it on a loopback or
    /// management address.
    pub listen: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_API_PORT)),
        }
    }
}

/// What the collector does with parsed events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sink {
    /// Index into Elasticsearch or the embedded index.
    Index,
    /// Decode and parse, then drop: for measuring transport and parsing alone. Events
    /// are acknowledged and lost; never use it in production.
    Discard,
}

/// `[collector]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorSection {
    /// UDP address for agents' QUIC connections.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Holds the embedded index and the collector's own state.
    #[serde(default = "default_collector_data_dir")]
    pub data_dir: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// CA whose certificates agents must present.
    pub client_ca: Option<PathBuf>,
    #[serde(default = "default_sink")]
    pub sink: Sink,
    /// Agents connected at once at most; more are refused until one leaves.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// IANA zone for timestamps that carry none (Apache error logs). Default: the
    /// collector host's zone. Set it when agents run in another zone than the collector.
    pub timezone: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 4433))
}

fn default_collector_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_COLLECTOR_DATA_DIR)
}

fn default_sink() -> Sink {
    Sink::Index
}

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

/// `[elasticsearch]`: a cluster speaking the Elasticsearch 8 or OpenSearch API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Node URLs; requests go round-robin to them.
    pub urls: Vec<String>,
    pub username: Option<String>,
    /// Prefer `password_file`: this file may be readable by others.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Base64 `id:key` as Kibana shows it.
    pub api_key: Option<String>,
    /// CA for clusters with a private certificate authority.
    pub ca: Option<PathBuf>,
    /// Index names are `{prefix}-{dataset}-{YYYY.MM.DD}`.
    #[serde(default = "default_index_prefix")]
    pub index_prefix: String,
    /// Bytes per bulk request at most; Elasticsearch refuses requests over its
    /// `http.max_content_length` (100 MB by default).
    #[serde(default = "default_bulk_max_bytes")]
    pub bulk_max_bytes: ByteSize,
}

fn default_index_prefix() -> String {
    DEFAULT_INDEX_PREFIX.to_string()
}

fn default_bulk_max_bytes() -> ByteSize {
    DEFAULT_BULK_MAX_BYTES
}

impl CollectorConfig {
    pub fn load(path: &Path) -> Result<CollectorConfig, ConfigError> {
        let config: CollectorConfig = parse_file(path)?;
        config.validate(path)?;
        Ok(config)
    }

    pub fn parse(text: &str, path: &Path) -> Result<CollectorConfig, ConfigError> {
        let config: CollectorConfig = parse_text(text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let section = &self.collector;
        check_range(
            "collector.max_connections",
            section.max_connections as u64,
            1,
            1_000_000,
            &mut problems,
        );
        if let Some(zone) = &section.timezone
            && zone.is_empty()
        {
            problems.push("collector.timezone: must not be empty".to_string());
        }
        if let Some(elasticsearch) = &self.elasticsearch {
            validate_elasticsearch(elasticsearch, &mut problems);
        }
        finish(path, problems)
    }

    /// Checks what serving agents needs: TLS files present and readable.
    pub fn check_files(&self, path: &Path) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let section = &self.collector;
        for (key, file) in [
            ("collector.cert", &section.cert),
            ("collector.key", &section.key),
            ("collector.client_ca", &section.client_ca),
        ] {
            match file {
                Some(file) => check_readable(key, file, &mut problems),
                None => problems.push(format!("{key}: required to serve agents")),
            }
        }
        if let (true, Some(cert), Some(key), Some(ca)) = (
            problems.is_empty(),
            &section.cert,
            &section.key,
            &section.client_ca,
        ) && let Err(error) = crate::tls::server_config(cert, key, ca, b"")
        {
            problems.push(tls_problem(
                "collector.cert, collector.key, collector.client_ca",
                &error,
            ));
        }
        if let Some(elasticsearch) = &self.elasticsearch {
            if let Some(ca) = &elasticsearch.ca {
                check_readable("elasticsearch.ca", ca, &mut problems);
            }
            if let Some(file) = &elasticsearch.password_file {
                check_readable("elasticsearch.password_file", file, &mut problems);
            }
        }
        finish(path, problems)
    }
}

fn validate_elasticsearch(config: &ElasticsearchConfig, problems: &mut Vec<String>) {
    if config.urls.is_empty() {
        problems.push("elasticsearch.urls: must list at least one URL".to_string());
    }
    for url in &config.urls {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(format!(
                "elasticsearch.urls: {url:?} must start with http:// or https://"
            ));
        }
    }
    if config.password.is_some() && config.password_file.is_some() {
        problems.push(
            "elasticsearch.password: set either password or password_file, not both".to_string(),
        );
    }
    let has_password = config.password.is_some() || config.password_file.is_some();
    if has_password != config.username.is_some() {
        problems.push(
            "elasticsearch.username: a username needs a password and the reverse".to_string(),
        );
    }
    if config.api_key.is_some() && config.username.is_some() {
        problems.push(
            "elasticsearch.api_key: use either an API key or a username, not both".to_string(),
        );
    }
    let prefix = &config.index_prefix;
    let valid_prefix = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !prefix.starts_with(['-', '_']);
    if !valid_prefix {
        problems.push(format!(
            "elasticsearch.index_prefix: {prefix:?} must be lowercase letters, digits, '-' or '_'"
        ));
    }
    check_range(
        "elasticsearch.bulk_max_bytes",
        config.bulk_max_bytes.0,
        64 << 10,
        100_000_000,
        problems,
    );
}

// ---------------------------------------------------------------------------------------
// Shared steps

fn parse_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        path: path.to_path_buf(),
        problems: vec![format!("cannot read the file: {error}")],
    })?;
    parse_text(&text, path)
}

fn parse_text<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let fail = |problem: String| ConfigError {
        path: path.to_path_buf(),
        problems: vec![problem],
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|error| fail(error.to_string()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let detail = error.into_inner().to_string();
        fail(format!("{key}: {}", detail.trim_end()))
    })
}

fn finish(path: &Path, problems: Vec<String>) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError {
            path: path.to_path_buf(),
            problems,
        })
    }
}

fn check_range(key: &str, value: u64, min: u64, max: u64, problems: &mut Vec<String>) {
    if value < min || value > max {
        problems.push(format!(
            "{key}: {value} is outside the allowed range {min}..={max}"
        ));
    }
}

fn check_positive(key: &str, value: HumanDuration, problems: &mut Vec<String>) {
    if value.0.is_zero() {
        problems.push(format!("{key}: {value} must be longer than zero"));
    }
}

fn check_identifier(key: &str, value: &str, problems: &mut Vec<String>) {
    let valid = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid {
        problems.push(format!(
            "{key}: {value:?} must be 1 to 128 letters, digits, '-', '_' or '.'"
        ));
    }
}

/// A TLS setup failure in words an operator can act on.
fn tls_problem(keys: &str, error: &crate::tls::TlsError) -> String {
    let detail = error.to_string();
    if detail.contains("KeyMismatch") || detail.contains("keys may not be consistent") {
        format!("{keys}: the private key does not belong to the certificate")
    } else {
        format!("{keys}: {detail}")
    }
}

fn check_readable(key: &str, file: &Path, problems: &mut Vec<String>) {
    if let Err(error) = std::fs::File::open(file) {
        problems.push(format!("{key}: cannot read {}: {error}", file.display()));
    }
}

#[cfg(test)]
mod tests;
