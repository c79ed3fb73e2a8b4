//! What the alert engine remembers across restarts, and the file that holds it.
//!
//! `{data_dir}/alerts/state.json` holds one JSON document: the alerts pending or firing,
//! the recently resolved ones, the templates seen so far, the last time each watched
//! source sent something, and the rate baselines. It is written whole to a temporary
//! file, synced, and renamed over the old one, so a crash leaves either the old or the
//! new state, never a mix. The file is written before a message is handed to delivery:
//! a crash between the two loses that message rather than sending it twice after the
//! restart. A file of another version, or one that does not parse, is set aside as
//! `state.json.bad` and the engine starts empty (alerts firing at the time may then be
//! sent again, and learning periods start over).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// Version of the state file's layout.
pub const STATE_VERSION: u32 = 1;
/// Resolved alerts kept for `alerts list`.
pub const MAX_HISTORY: usize = 200;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds; matches gather during the rule's group window.
    Pending,
    /// The first message went out.
    Firing,
    Resolved,
}

/// One alert: a rule whose condition held for one key (a host, a template, a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub rule: String,
    pub kind: String,
    pub key: String,
    pub state: AlertState,
    /// When the condition started to hold (for a burst, its first matching event).
    #[serde(with = "timestamp")]
    pub since: Timestamp,
    /// The last time the condition held; the alert resolves `resolve_after` later.
    #[serde(with = "timestamp")]
    pub last_held: Timestamp,
    #[serde(default, with = "optional_timestamp")]
    pub fired_at: Option<Timestamp>,
    #[serde(default, with = "optional_timestamp")]
    pub last_notified: Option<Timestamp>,
    #[serde(default, with = "optional_timestamp")]
    pub resolved_at: Option<Timestamp>,
    /// Matching events (or findings) since `since`.
    pub count: u64,
    /// `count` when the last message went out, so a reminder can say what is new.
    #[serde(default)]
    pub notified_count: u64,
    #[serde(default)]
    pub reminders: u32,
    /// One matching line, as it was written.
    pub example: Option<String>,
    /// Where: `host.name`, `log.file.path`, `log.template.text`, the grouping fields.
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    /// What the rule measured, in words (a rate against its baseline, a silence).
    pub detail: Option<String>,
    /// A query for `garonne-collector search` that finds the matching events.
    pub query: String,
}

impl Alert {
    /// Unique among active alerts: rule names hold no `/`.
    pub fn id(&self) -> String {
        alert_id(&self.rule, &self.key)
    }
}

pub(crate) fn alert_id(rule: &str, key: &str) -> String {
    format!("{rule}/{key}")
}

/// An exponentially weighted mean and variance of counts per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    pub mean: f64,
    pub variance: f64,
    pub samples: u64,
}

impl Ewma {
    pub fn update(&mut self, value: f64, smoothing: f64) {
        if self.samples == 0 {
            self.mean = value;
            self.variance = 0.0;
        } else {
            let difference = value - self.mean;
            let increment = smoothing * difference;
            self.mean += increment;
            self.variance = (1.0 - smoothing) * (self.variance + difference * increment);
        }
        self.samples += 1;
    }

    pub fn deviation(&self) -> f64 {
        self.variance.max(0.0).sqrt()
    }
}

/// The learned rate of one key of a `rate_spike` rule: overall, and per hour of day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    #[serde(with = "timestamp")]
    pub first: Timestamp,
    pub overall: Ewma,
    pub hourly: Vec<Ewma>,
}

impl Baseline {
    pub fn new(first: Timestamp) -> Baseline {
        Baseline {
            first,
            overall: Ewma::default(),
            hourly: vec![Ewma::default(); 24],
        }
    }
}

/// Everything persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub version: u32,
    /// When alerting first ran; learning periods count from here.
    #[serde(with = "timestamp")]
    pub started: Timestamp,
    /// Pending and firing alerts by [`Alert::id`].
    pub active: BTreeMap<String, Alert>,
    /// Resolved alerts, newest first.
    pub history: VecDeque<Alert>,
    /// Template ids seen, with when each was last seen (Unix milliseconds).
    pub templates: HashMap<String, i64>,
    /// Per `silence` rule: source key to when it last sent (Unix milliseconds).
    pub sources: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per `rate_spike` rule: key to baseline.
    pub baselines: BTreeMap<String, BTreeMap<String, Baseline>>,
}

impl EngineState {
    pub fn new(started: Timestamp) -> EngineState {
        EngineState {
            version: STATE_VERSION,
            started,
            active: BTreeMap::new(),
            history: VecDeque::new(),
            templates: HashMap::new(),
            sources: BTreeMap::new(),
            baselines: BTreeMap::new(),
        }
    }

    /// Firing and pending alerts first, then resolved ones, newest first in each part.
    pub fn listing(&self) -> Vec<&Alert> {
        let mut active: Vec<&Alert> = self.active.values().collect();
        active.sort_by_key(|alert| std::cmp::Reverse(alert.since));
        active.into_iter().chain(self.history.iter()).collect()
    }
}

/// Failures reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read alert state {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write alert state {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// `{data_dir}/alerts/state.json`.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("alerts").join("state.json")
}

/// Reads the state file: `Ok(None)` when there is none yet.
pub fn read_state(path: &Path) -> Result<Option<EngineState>, StateError> {
    let fail = |reason: String| StateError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(fail(error.to_string())),
    };
    let state: EngineState =
        serde_json::from_slice(&bytes).map_err(|error| fail(error.to_string()))?;
    if state.version != STATE_VERSION {
        return Err(fail(format!(
            "version {} where {STATE_VERSION} is expected",
            state.version
        )));
    }
    Ok(Some(state))
}

/// Reads the state file for a running engine; a bad file is moved aside (and logged)
/// so the collector still starts.
pub fn load_or_set_aside(path: &Path) -> Option<EngineState> {
    match read_state(path) {
        Ok(state) => state,
        Err(error) => {
            let aside = path.with_extension("json.bad");
            let _ = std::fs::rename(path, &aside);
            tracing::error!(
                %error,
                moved_to = %aside.display(),
                "alert state unreadable, starting empty",
            );
            None
        }
    }
}

/// Writes `bytes` (a serialised [`EngineState`]) atomically at `path`.
pub fn write_state(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let fail = |reason: String| StateError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).map_err(|error| fail(error.to_string()))?;
    garonne_common::files::write_atomic(path, bytes).map_err(|error| fail(error.to_string()))?;
    Ok(())
}

/// Timestamps as RFC 3339 text, readable in the file.
mod timestamp {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(super) fn serialize<S: Serializer>(value: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

mod optional_timestamp {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.collect_str(value),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(de::Error::custom))
            .transpose()
    }
}
