//! `garonne.importance`: how much an event matters, from its own fields.
//!
//! Four sources are read and the highest importance wins:
//!
//! - the HTTP status (`http.response.status_code`), by exact code or class (`5xx`);
//! - the level (`log.level`, or `level` at the root of JSON lines): Apache error levels
//!   with their sublevels (`trace3` reads as `trace`), syslog severity names, and the
//!   usual names of application loggers;
//! - keywords found in `message` (or `event.original`), ignoring ASCII case;
//! - otherwise [`DEFAULT_IMPORTANCE`].
//!
//! `[importance]` changes the mapping. Its tables add to the defaults and override them
//! key by key; setting a default to `"low"` switches it off:
//!
//! ```toml
//! [importance]
//! default = "low"
//! [importance.http]
//! "503" = "critical"
//! "4xx" = "low"
//! [importance.levels]
//! notice = "medium"
//! [importance.keywords]
//! "disk quota exceeded" = "high"
//! ```

use super::settings::TableReader;
use crate::observe::DocumentObserver;
use crate::parse::{get_path, insert_path};
use crate::pipeline::Document;
use memchr::memmem::Finder;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// The field the observer sets.
pub const IMPORTANCE_FIELD: &str = "garonne.importance";

/// Importance of an event that no source raises.
pub const DEFAULT_IMPORTANCE: Importance = Importance::Low;

/// Default importance of each HTTP status class, `1xx` to `5xx`. A 404 flood is common
/// and mostly harmless, so client errors stay below `high`.
pub const DEFAULT_HTTP_CLASSES: [(u16, Importance); 5] = [
    (1, Importance::Low),
    (2, Importance::Low),
    (3, Importance::Low),
    (4, Importance::Medium),
    (5, Importance::High),
];

/// Default importance of level names: Apache error levels, syslog severities, and the
/// names application loggers use. Names are compared in lowercase, without a trailing
/// sublevel number.
pub const DEFAULT_LEVELS: [(&str, Importance); 18] = [
    ("emerg", Importance::Critical),
    ("emergency", Importance::Critical),
    ("alert", Importance::Critical),
    ("crit", Importance::Critical),
    ("critical", Importance::Critical),
    ("fatal", Importance::Critical),
    ("error", Importance::High),
    ("err", Importance::High),
    ("warn", Importance::Medium),
    ("warning", Importance::Medium),
    ("notice", Importance::Low),
    ("info", Importance::Low),
    ("informational", Importance::Low),
    ("debug", Importance::Low),
    ("trace", Importance::Low),
    ("panic", Importance::Critical),
    ("severe", Importance::High),
    ("fine", Importance::Low),
];

/// Default keywords, matched anywhere in the message ignoring ASCII case.
pub const DEFAULT_KEYWORDS: [(&str, Importance); 12] = [
    ("segfault", Importance::Critical),
    ("out of memory", Importance::Critical),
    ("oom-killer", Importance::Critical),
    ("killed process", Importance::Critical),
    ("kernel panic", Importance::Critical),
    ("no space left on device", Importance::Critical),
    ("panic", Importance::High),
    ("authentication failure", Importance::High),
    ("i/o error", Importance::High),
    ("call trace", Importance::High),
    ("failed password", Importance::Medium),
    ("permission denied", Importance::Medium),
];

/// Bytes of a message searched for keywords. A keyword past this point of a very long
/// line is missed; searching is linear in the bytes read, for every keyword.
pub const KEYWORD_SCAN_BYTES: usize = 64 * 1024;

/// How much an event matters, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Importance {
    Low,
    Medium,
    High,
    Critical,
}

impl Importance {
    pub const ALL: [Importance; 4] = [
        Importance::Low,
        Importance::Medium,
        Importance::High,
        Importance::Critical,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Medium => "medium",
            Importance::High => "high",
            Importance::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<Importance> {
        Importance::ALL
            .into_iter()
            .find(|level| level.name() == name)
    }
}

impl fmt::Display for Importance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The mapping from fields to importance, built once from `[importance]`.
pub struct ImportanceRules {
    default: Importance,
    /// Exact codes, checked before classes.
    http_codes: HashMap<u16, Importance>,
    /// Index `class - 1` for `1xx` to `5xx`.
    http_classes: [Importance; 5],
    levels: HashMap<String, Importance>,
    keywords: Vec<(Finder<'static>, Importance)>,
}

impl Default for ImportanceRules {
    fn default() -> Self {
        ImportanceRules::from_table(None).expect("the defaults are valid")
    }
}

impl ImportanceRules {
    /// Reads `[importance]` (absent: the defaults). Every bad key is reported.
    pub fn from_table(table: Option<&toml::Table>) -> Result<ImportanceRules, Vec<String>> {
        let mut rules = ImportanceRules {
            default: DEFAULT_IMPORTANCE,
            http_codes: HashMap::new(),
            http_classes: DEFAULT_HTTP_CLASSES.map(|(_, importance)| importance),
            levels: DEFAULT_LEVELS
                .iter()
                .map(|(name, importance)| (name.to_string(), *importance))
                .collect(),
            keywords: Vec::new(),
        };
        let mut keywords: Vec<(String, Importance)> = DEFAULT_KEYWORDS
            .iter()
            .map(|(word, importance)| (word.to_string(), *importance))
            .collect();
        let mut problems = Vec::new();
        if let Some(table) = table {
            let mut reader = TableReader::new("importance".into(), table, &mut problems);
            reader.refuse_unknown(&["default", "http", "levels", "keywords"], "[importance]");
            if let Some(name) = reader.string("default") {
                match parse_importance(&name) {
                    Ok(importance) => rules.default = importance,
                    Err(message) => reader.problem("default", message),
                }
            }
            for (key, name) in reader.string_map("http") {
                let importance = match parse_importance(&name) {
                    Ok(importance) => importance,
                    Err(message) => {
                        reader.problem(&format!("http.{key:?}"), message);
                        continue;
                    }
                };
                match parse_status_key(&key) {
                    Some(StatusKey::Code(code)) => {
                        rules.http_codes.insert(code, importance);
                    }
                    Some(StatusKey::Class(class)) => {
                        rules.http_classes[usize::from(class) - 1] = importance;
                    }
                    None => reader.problem(
                        &format!("http.{key:?}"),
                        "must be a status code (503) or class (5xx) from 1xx to 5xx",
                    ),
                }
            }
            for (level, name) in reader.string_map("levels") {
                match parse_importance(&name) {
                    Ok(importance) => {
                        rules.levels.insert(normalise_level(&level), importance);
                    }
                    Err(message) => reader.problem(&format!("levels.{level:?}"), message),
                }
            }
            for (word, name) in reader.string_map("keywords") {
                let importance = match parse_importance(&name) {
                    Ok(importance) => importance,
                    Err(message) => {
                        reader.problem(&format!("keywords.{word:?}"), message);
                        continue;
                    }
                };
                if word.trim().is_empty() {
                    reader.problem("keywords", "a keyword must not be empty");
                    continue;
                }
                let word = word.to_ascii_lowercase();
                keywords.retain(|(known, _)| *known != word);
                keywords.push((word, importance));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        rules.keywords = keywords
            .into_iter()
            .map(|(word, importance)| (Finder::new(word.as_bytes()).into_owned(), importance))
            .collect();
        Ok(rules)
    }

    /// The importance of one document, from its fields.
    pub fn classify(&self, body: &Map<String, Value>) -> Importance {
        let mut importance = self.default;
        if let Some(status) = get_path(body, "http.response.status_code").and_then(as_status) {
            importance = importance.max(self.status_importance(status));
        }
        let level = get_path(body, "log.level").or_else(|| body.get("level"));
        if let Some(level) = level.and_then(Value::as_str)
            && let Some(found) = self.levels.get(&normalise_level(level))
        {
            importance = importance.max(*found);
        }
        if importance < Importance::Critical
            && let Some(found) = self.keyword_importance(body)
        {
            importance = importance.max(found);
        }
        importance
    }

    fn status_importance(&self, status: u16) -> Importance {
        if let Some(found) = self.http_codes.get(&status) {
            return *found;
        }
        match status / 100 {
            class @ 1..=5 => self.http_classes[usize::from(class) - 1],
            _ => self.default,
        }
    }

    fn keyword_importance(&self, body: &Map<String, Value>) -> Option<Importance> {
        let text = get_path(body, "message")
            .or_else(|| get_path(body, "event.original"))
            .and_then(Value::as_str)?;
        let scanned = &text.as_bytes()[..text.len().min(KEYWORD_SCAN_BYTES)];
        let lowered = scanned.to_ascii_lowercase();
        self.keywords
            .iter()
            .filter(|(finder, _)| finder.find(&lowered).is_some())
            .map(|(_, importance)| *importance)
            .max()
    }
}

enum StatusKey {
    Code(u16),
    Class(u8),
}

fn parse_status_key(key: &str) -> Option<StatusKey> {
    let lowered = key.to_ascii_lowercase();
    if let Some(digit) = lowered.strip_suffix("xx")
        && let Ok(class @ 1..=5) = digit.parse::<u8>()
    {
        return Some(StatusKey::Class(class));
    }
    match key.parse::<u16>() {
        Ok(code @ 100..=599) => Some(StatusKey::Code(code)),
        _ => None,
    }
}

pub(crate) fn parse_importance(name: &str) -> Result<Importance, String> {
    Importance::from_name(name)
        .ok_or_else(|| format!("{name:?} is not an importance: use low, medium, high or critical"))
}

fn as_status(value: &Value) -> Option<u16> {
    match value {
        Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// `TRACE3` reads as `trace`; `Warning` as `warning`.
fn normalise_level(level: &str) -> String {
    level
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .to_ascii_lowercase()
}

/// Sets [`IMPORTANCE_FIELD`] on every document.
pub struct ImportanceObserver {
    rules: ImportanceRules,
}

impl ImportanceObserver {
    pub fn new(rules: ImportanceRules) -> ImportanceObserver {
        ImportanceObserver { rules }
    }
}

impl DocumentObserver for ImportanceObserver {
    fn name(&self) -> &'static str {
        "importance"
    }

    fn observe(&self, _agent_id: &str, documents: &mut [Document]) {
        for document in documents {
            let importance = self.rules.classify(&document.body);
            insert_path(
                &mut document.body,
                IMPORTANCE_FIELD,
                Value::String(importance.name().into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Format, ParseContext, parse_line};
    use serde_json::json;

    fn classify(rules: &ImportanceRules, format: Format, line: &str) -> Importance {
        let context = ParseContext::new(jiff::tz::TimeZone::UTC);
        rules.classify(&parse_line(format, line, &context).doc)
    }

    fn access(status: u16) -> String {
        format!(r#"10.0.0.1 - - [04/Dec/2026:10:00:00 +0000] "GET /a HTTP/1.1" {status} 5 "-" "c""#)
    }

    #[test]
    fn status_classes_map_to_their_defaults() {
        let rules = ImportanceRules::default();
        let cases = [
            (200, Importance::Low),
            (302, Importance::Low),
            (404, Importance::Medium),
        ];
        for (status, expected) in cases.into_iter().chain([(503, Importance::High)]) {
            assert_eq!(
                classify(&rules, Format::ApacheAccess, &access(status)),
                expected
            );
        }
    }

    #[test]
    fn apache_error_levels_and_sublevels() {
        let rules = ImportanceRules::default();
        let line =
            |level: &str| format!("[Wed Oct 20 19:20:59 2021] [core:{level}] [pid 1] message");
        assert_eq!(
            classify(&rules, Format::ApacheError, &line("error")),
            Importance::High
        );
        assert_eq!(
            classify(&rules, Format::ApacheError, &line("crit")),
            Importance::Critical
        );
        assert_eq!(
            classify(&rules, Format::ApacheError, &line("warn")),
            Importance::Medium
        );
        assert_eq!(
            classify(&rules, Format::ApacheError, &line("trace5")),
            Importance::Low
        );
    }

    #[test]
    fn syslog_severity_and_keywords() {
        let rules = ImportanceRules::default();
        let critical = "<10>Oct 11 22:14:15 host su[1]: message";
        assert_eq!(
            classify(&rules, Format::Syslog, critical),
            Importance::Critical
        );
        let warning = "<12>Oct 11 22:14:15 host app: all fine";
        assert_eq!(
            classify(&rules, Format::Syslog, warning),
            Importance::Medium
        );
        let oom = "<14>Oct 11 22:14:15 host kernel: Out of memory: Killed process 42 (java)";
        assert_eq!(classify(&rules, Format::Syslog, oom), Importance::Critical);
        let auth = "<38>Oct 11 22:14:15 host sshd[2]: pam_unix(sshd:auth): authentication failure";
        assert_eq!(classify(&rules, Format::Syslog, auth), Importance::High);
        assert_eq!(
            classify(&rules, Format::Plain, "app[3]: segfault at 0"),
            Importance::Critical
        );
        assert_eq!(
            classify(&rules, Format::Plain, "all is well"),
            Importance::Low
        );
    }

    #[test]
    fn configuration_overrides_and_extends_the_defaults() {
        let table: toml::Table = toml::from_str(
            r#"
            default = "medium"
            [http]
            "503" = "critical"
            "4xx" = "low"
            [levels]
            notice = "high"
            [keywords]
            "disk quota" = "critical"
            "segfault" = "low"
            "#,
        )
        .unwrap();
        let rules = ImportanceRules::from_table(Some(&table)).unwrap();
        assert_eq!(
            classify(&rules, Format::ApacheAccess, &access(503)),
            Importance::Critical
        );
        assert_eq!(
            classify(&rules, Format::ApacheAccess, &access(500)),
            Importance::High
        );
        assert_eq!(
            classify(&rules, Format::ApacheAccess, &access(404)),
            Importance::Medium
        );
        assert_eq!(
            classify(&rules, Format::Plain, "Disk Quota exceeded"),
            Importance::Critical
        );
        assert_eq!(
            classify(&rules, Format::Plain, "segfault"),
            Importance::Medium
        );
        assert_eq!(
            rules.classify(&json!({"level": "NOTICE"}).as_object().unwrap().clone()),
            Importance::High
        );
    }

    #[test]
    fn bad_settings_are_named_with_their_values() {
        let table: toml::Table = toml::from_str(
            r#"
            default = "urgent"
            colour = "red"
            [http]
            "6xx" = "high"
            "#,
        )
        .unwrap();
        let problems = ImportanceRules::from_table(Some(&table)).err().unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("importance.default: \"urgent\""))
        );
        assert!(problems.iter().any(|p| p.starts_with("importance.colour:")));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("importance.http.\"6xx\":"))
        );
    }

    #[test]
    fn observer_sets_the_field() {
        let observer = ImportanceObserver::new(ImportanceRules::default());
        let mut documents = vec![Document {
            id: "x".into(),
            dataset: "plain",
            timestamp: jiff::Timestamp::UNIX_EPOCH,
            body: json!({"message": "kernel: segfault"})
                .as_object()
                .unwrap()
                .clone(),
        }];
        observer.observe("web1", &mut documents);
        assert_eq!(
            get_path(&documents[0].body, IMPORTANCE_FIELD),
            Some(&json!("critical"))
        );
    }
}
