//! Availability checks, shared by the collector and the agents so that a monitor runs
//! the same code wherever it is assigned (`run_on` in `[[monitor]]`).
//!
//! - [`MonitorKind`] says what to check (HTTP(S), TCP, OpenID Connect); the collector
//!   reads it from its configuration.
//! - [`check::Checker`] runs one check and returns a [`CheckResult`]; it decides nothing
//!   about the monitor's state, which is the collector's job.
//! - [`Assignment`] is what the collector sends an agent after the handshake: the
//!   monitors that agent runs.
//! - [`ProbeReport`] is one check result as an agent ships it: one line of a
//!   [`Module::Probe`] chunk, buffered, acknowledged and deduplicated like a log line.

pub mod check;

pub use check::{CheckResult, Checker};

use crate::event::{FileChunk, FileIdentity, LineFlags, Module};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Bytes of a response body read at most for keyword and JSON checks.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// What a monitor shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Up,
    Degraded,
    Down,
    Pending,
    Maintenance,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "up",
            Status::Degraded => "degraded",
            Status::Down => "down",
            Status::Pending => "pending",
            Status::Maintenance => "maintenance",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::Degraded => "DEGRADED",
            Status::Down => "DOWN",
            Status::Pending => "PENDING",
            Status::Maintenance => "MAINTENANCE",
        }
    }

    /// Worse is larger; PENDING and MAINTENANCE are not check results.
    pub fn severity(self) -> u8 {
        match self {
            Status::Up => 0,
            Status::Degraded => 1,
            Status::Down => 2,
            Status::Pending | Status::Maintenance => 0,
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// UP, DEGRADED or DOWN.
    pub status: Status,
    /// Why it is not UP (or a note when it is).
    pub reason: Option<String>,
    pub cert_not_after: Option<Timestamp>,
}

/// A value that must never be printed (an OAuth client secret, a bot token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a monitor checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MonitorKind {
    Http(HttpCheck),
    Tcp { host: String, port: u16 },
    Oidc(OidcCheck),
}

impl MonitorKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            MonitorKind::Http(_) => "http",
            MonitorKind::Tcp { .. } => "tcp",
            MonitorKind::Oidc(_) => "oidc",
        }
    }

    /// Days before certificate expiry that warn; empty for TCP.
    pub fn cert_expiry_days(&self) -> &[u32] {
        match self {
            MonitorKind::Http(check) => &check.cert_expiry_days,
            MonitorKind::Oidc(check) => &check.cert_expiry_days,
            MonitorKind::Tcp { .. } => &[],
        }
    }

    /// What is watched, for people: a URL or `host:port`.
    pub fn target(&self) -> String {
        match self {
            MonitorKind::Http(check) => check.url.clone(),
            MonitorKind::Tcp { host, port } => format!("{host}:{port}"),
            MonitorKind::Oidc(check) => check.issuer.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Inclusive ranges of accepted status codes.
    pub accepted_statuses: Vec<(u16, u16)>,
    pub keyword: Option<String>,
    pub keyword_absent: Option<String>,
    pub case_sensitive: bool,
    /// Dotted path into a JSON response (`status.database`, `items.0.id`).
    pub json_path: Option<String>,
    /// Travels as JSON text: the compact wire encoding cannot carry free-form JSON.
    #[serde(with = "json_text")]
    pub json_equals: Option<serde_json::Value>,
    /// Slower than this (the whole exchange) is DEGRADED.
    pub degraded_after: Option<Duration>,
    /// 0 means a redirect is the final answer.
    pub max_redirects: u32,
    pub tls_verify: bool,
    pub cert_expiry_days: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcCheck {
    /// Issuer URL; the discovery document is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub scope: Option<String>,
    /// `basic` (HTTP Basic, the OAuth default) or `post` (form fields).
    pub client_auth_post: bool,
    pub tls_verify: bool,
    pub degraded_after: Option<Duration>,
    pub cert_expiry_days: Vec<u32>,
}

/// A monitor as an agent runs it: what to check and how often. States, maintenance
/// windows and notifications stay with the collector, which receives the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedMonitor {
    pub name: String,
    pub kind: MonitorKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failed checks the collector absorbs before the state changes; the agent checks
    /// at `retry_interval` while that many failures are still unconfirmed.
    pub retries: u32,
    pub retry_interval: Duration,
}

/// The monitors one agent runs, sent by the collector on the control stream after
/// [`crate::wire::Welcome`]. It replaces the previous assignment as a whole; an empty
/// one means the agent runs no monitor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub monitors: Vec<AssignedMonitor>,
}

/// One check result as an agent ships it: a JSON line of a [`Module::Probe`] chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub monitor: String,
    /// When the check ended, in milliseconds since the Unix epoch.
    pub checked_at_ms: i64,
    pub status: Status,
    pub reason: Option<String>,
    pub duration_us: u64,
    pub http_status: Option<u16>,
    pub final_url: Option<String>,
    pub error_code: Option<String>,
    /// End of the server certificate's validity, in seconds since the Unix epoch.
    pub cert_not_after_s: Option<i64>,
}

impl ProbeReport {
    pub fn new(monitor: &str, result: &CheckResult, checked_at: Timestamp) -> ProbeReport {
        ProbeReport {
            monitor: monitor.to_string(),
            checked_at_ms: checked_at.as_millisecond(),
            status: result.outcome.status,
            reason: result.outcome.reason.clone(),
            duration_us: u64::try_from(result.duration.as_micros()).unwrap_or(u64::MAX),
            http_status: result.http_status,
            final_url: result.final_url.clone(),
            error_code: result.error_code.clone(),
            cert_not_after_s: result.outcome.cert_not_after.map(|time| time.as_second()),
        }
    }

    pub fn checked_at(&self) -> Timestamp {
        Timestamp::from_millisecond(self.checked_at_ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The result as the collector's state machine and documents take it.
    pub fn check_result(&self) -> CheckResult {
        CheckResult {
            outcome: Outcome {
                status: self.status,
                reason: self.reason.clone(),
                cert_not_after: self
                    .cert_not_after_s
                    .and_then(|seconds| Timestamp::from_second(seconds).ok()),
            },
            duration: Duration::from_micros(self.duration_us),
            http_status: self.http_status,
            final_url: self.final_url.clone(),
            error_code: self.error_code.clone(),
        }
    }

    /// The report as a chunk of its own. Its identity is derived from the monitor's
    /// name and its offset is the check time, so the event id (agent, monitor, time)
    /// is the same however often the chunk is sent.
    pub fn to_chunk(&self) -> FileChunk {
        let identity = FileIdentity {
            device: 0,
            inode: 0,
            fingerprint: xxhash_rust::xxh3::xxh3_64(self.monitor.as_bytes()),
        };
        let mut chunk = FileChunk::new(
            format!("monitor:{}", self.monitor),
            identity,
            Module::Probe,
            self.checked_at_ms,
        );
        // Serialising plain fields to JSON cannot fail.
        let line = serde_json::to_vec(self).unwrap_or_default();
        let offset = u64::try_from(self.checked_at_ms).unwrap_or(0);
        chunk.push(offset, 1, &line, LineFlags::default());
        chunk
    }

    /// Reads one line of a [`Module::Probe`] chunk.
    pub fn from_line(bytes: &[u8]) -> Result<ProbeReport, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// `Option<serde_json::Value>` as optional JSON text.
mod json_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};
    use serde_json::Value;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Value>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(Value::to_string).serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Value>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| serde_json::from_str(&text).map_err(D::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_monitor() -> AssignedMonitor {
        AssignedMonitor {
            name: "intranet".into(),
            kind: MonitorKind::Http(HttpCheck {
                url: "http://127.0.0.1:8080/health".into(),
                method: "GET".into(),
                headers: BTreeMap::from([("x-probe".into(), "1".into())]),
                body: None,
                accepted_statuses: vec![(200, 299)],
                keyword: Some("ok".into()),
                keyword_absent: None,
                case_sensitive: true,
                json_path: Some("db.up".into()),
                json_equals: Some(serde_json::json!({"nested": [1, "two"]})),
                degraded_after: Some(Duration::from_millis(1500)),
                max_redirects: 10,
                tls_verify: true,
                cert_expiry_days: vec![21, 14, 7],
            }),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries: 1,
            retry_interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn an_assignment_round_trips_through_postcard() {
        let oidc = AssignedMonitor {
            name: "sso".into(),
            kind: MonitorKind::Oidc(OidcCheck {
                issuer: "https://sso.example.org/realms/school".into(),
                client_id: Some("garonne".into()),
                client_secret: Some(Secret("s3cret".into())),
                scope: None,
                client_auth_post: false,
                tls_verify: true,
                degraded_after: None,
                cert_expiry_days: vec![7],
            }),
            ..http_monitor()
        };
        let assignment = Assignment {
            monitors: vec![http_monitor(), oidc],
        };
        let bytes = postcard::to_stdvec(&assignment).unwrap();
        assert_eq!(
            postcard::from_bytes::<Assignment>(&bytes).unwrap(),
            assignment
        );
    }

    #[test]
    fn a_report_round_trips_through_its_chunk_with_a_stable_id() {
        let result = CheckResult {
            outcome: Outcome {
                status: Status::Down,
                reason: Some("HTTP 503, expected 200-299".into()),
                cert_not_after: Some(Timestamp::from_second(1_800_000_000).unwrap()),
            },
            duration: Duration::from_micros(1234),
            http_status: Some(503),
            final_url: Some("http://127.0.0.1:8080/health".into()),
            error_code: None,
        };
        let at = Timestamp::from_millisecond(1_790_000_000_123).unwrap();
        let report = ProbeReport::new("intranet", &result, at);
        let chunk = report.to_chunk();
        assert_eq!(chunk.module, Module::Probe);
        let line = chunk.lines().next().unwrap();
        let decoded = ProbeReport::from_line(line.bytes).unwrap();
        assert_eq!(decoded, report);
        assert_eq!(decoded.check_result(), result);
        assert_eq!(decoded.checked_at(), at);

        let again = ProbeReport::new("intranet", &result, at).to_chunk();
        let id = |chunk: &FileChunk| {
            crate::event::event_id("school-12", &chunk.identity, chunk.entries[0].offset)
        };
        assert_eq!(id(&chunk), id(&again));
        let other = ProbeReport::new("webmail", &result, at).to_chunk();
        assert_ne!(id(&chunk), id(&other));
    }
}
