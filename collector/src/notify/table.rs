//! Reading one raw TOML table (`[[notify]]`, `[[monitor]]`) into typed values while
//! collecting every problem, each named by its key path (`notify[1].url: ...`).
//!
//! The collector's configuration keeps these sections as raw tables so that the module
//! owning them checks them. A [`TableReader`] takes values out key by key; whatever is
//! wrong is recorded rather than returned, so one pass reports every bad key, and
//! [`TableReader::finish`] adds the keys nobody asked for (misspellings).

use garonne_common::units::HumanDuration;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use toml::Value;

/// Takes typed values out of one table, recording problems under `prefix`.
pub struct TableReader<'a> {
    prefix: String,
    table: &'a toml::Table,
    read: BTreeSet<String>,
    problems: Vec<String>,
}

impl<'a> TableReader<'a> {
    /// `prefix` names the table in messages, for example `notify[2]`.
    pub fn new(prefix: impl Into<String>, table: &'a toml::Table) -> TableReader<'a> {
        TableReader {
            prefix: prefix.into(),
            table,
            read: BTreeSet::new(),
            problems: Vec::new(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Records a problem with `key`: `{prefix}.{key}: {message}`.
    pub fn problem(&mut self, key: &str, message: impl std::fmt::Display) {
        self.problems
            .push(format!("{}.{key}: {message}", self.prefix));
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn take(&mut self, key: &str) -> Option<&'a Value> {
        self.read.insert(key.to_string());
        self.table.get(key)
    }

    fn wrong_type(&mut self, key: &str, expected: &str, value: &Value) {
        let found = describe(value);
        self.problem(key, format!("expected {expected}, found {found}"));
    }

    /// A required string; records a problem when missing or empty.
    pub fn string(&mut self, key: &str) -> Option<String> {
        let value = self.optional_string(key);
        match &value {
            None if !self.has(key) => self.problem(key, "is required"),
            Some(text) if text.trim().is_empty() => {
                self.problem(key, "must not be empty");
                return None;
            }
            _ => {}
        }
        value
    }

    pub fn optional_string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::String(text) => Some(text.clone()),
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    pub fn optional_bool(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Boolean(flag) => Some(*flag),
            other => {
                self.wrong_type(key, "true or false", other);
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn optional_integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        match self.take(key)? {
            Value::Integer(number) if (min..=max).contains(number) => Some(*number),
            Value::Integer(number) => {
                self.problem(
                    key,
                    format!("{number} is outside the allowed range {min}..={max}"),
                );
                None
            }
            other => {
                self.wrong_type(key, "an integer", other);
                None
            }
        }
    }

    /// A duration written as seconds or with a unit (`"500ms"`, `"5m"`), within
    /// `min..=max`.
    pub fn optional_duration(
        &mut self,
        key: &str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let duration = match self.take(key)? {
            Value::Integer(seconds) if *seconds >= 0 => Duration::from_secs(*seconds as u64),
            Value::String(text) => match HumanDuration::parse(text) {
                Ok(duration) => duration.0,
                Err(reason) => {
                    self.problem(key, reason);
                    return None;
                }
            },
            other => {
                self.wrong_type(key, "a duration such as 10 (seconds) or \"500ms\"", other);
                return None;
            }
        };
        if duration < min || duration > max {
            self.problem(
                key,
                format!(
                    "{} is outside the allowed range {}..={}",
                    HumanDuration(duration),
                    HumanDuration(min),
                    HumanDuration(max)
                ),
            );
            return None;
        }
        Some(duration)
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.take(key)? {
            Value::String(text) => Some(vec![text.clone()]),
            Value::Array(items) => {
                let mut strings = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    match item {
                        Value::String(text) => strings.push(text.clone()),
                        other => {
                            self.wrong_type(&format!("{key}[{index}]"), "a string", other);
                        }
                    }
                }
                Some(strings)
            }
            other => {
                self.wrong_type(key, "a list of strings", other);
                None
            }
        }
    }

    /// A table of string values, such as HTTP headers.
    pub fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        match self.take(key) {
            None => {}
            Some(Value::Table(table)) => {
                for (name, value) in table {
                    match value {
                        Value::String(text) => {
                            map.insert(name.clone(), text.clone());
                        }
                        other => self.wrong_type(&format!("{key}.{name}"), "a string", other),
                    }
                }
            }
            Some(other) => self.wrong_type(key, "a table of strings", other),
        }
        map
    }

    /// A raw sub-table or list, for callers that read nested structures themselves.
    pub fn raw(&mut self, key: &str) -> Option<&'a Value> {
        self.take(key)
    }

    /// A secret given inline (`key`), in a file (`file_key`, first line, surrounding
    /// whitespace trimmed) or, when `env_key` is given, in an environment variable.
    /// At most one of them may be set. Never puts the secret itself in a message.
    pub fn secret(&mut self, key: &str, file_key: &str, env_key: Option<&str>) -> Option<String> {
        let inline = self.optional_string(key);
        let file = self.optional_string(file_key).map(PathBuf::from);
        let env = env_key.and_then(|env_key| self.optional_string(env_key));
        let given = usize::from(inline.is_some())
            + usize::from(file.is_some())
            + usize::from(env.is_some());
        if given > 1 {
            let mut keys = vec![key, file_key];
            keys.extend(env_key);
            self.problem(key, format!("set only one of {}", keys.join(", ")));
            return None;
        }
        if let Some(path) = file {
            return match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
                Ok(_) => {
                    self.problem(file_key, format!("{} is empty", path.display()));
                    None
                }
                Err(error) => {
                    self.problem(file_key, format!("cannot read {}: {error}", path.display()));
                    None
                }
            };
        }
        if let (Some(variable), Some(env_key)) = (env, env_key) {
            return match std::env::var(&variable) {
                Ok(value) if !value.is_empty() => Some(value),
                _ => {
                    self.problem(
                        env_key,
                        format!("environment variable {variable:?} is not set"),
                    );
                    None
                }
            };
        }
        inline
    }

    /// Ends reading: adds a problem for every key that was never read, and returns all.
    pub fn finish(mut self) -> Vec<String> {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|key| !self.read.contains(key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.problem(&key, "unknown key");
        }
        self.problems
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("string {text:?}"),
        Value::Integer(number) => format!("integer {number}"),
        Value::Float(number) => format!("float {number}"),
        Value::Boolean(flag) => format!("boolean {flag}"),
        Value::Datetime(datetime) => format!("date-time {datetime}"),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// Whether `url` is an absolute http or https URL with a host.
pub fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .map(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn reports_every_problem_with_its_key() {
        let table =
            table("name = 3\ntimeout = \"3 weeks\"\nretries = 99\nto = [\"a\", 1]\nspelling = 1");
        let mut reader = TableReader::new("notify[1]", &table);
        assert_eq!(reader.optional_string("name"), None);
        assert_eq!(reader.string("url"), None);
        let max = Duration::from_secs(60);
        assert_eq!(
            reader.optional_duration("timeout", Duration::ZERO, max),
            None
        );
        assert_eq!(reader.optional_integer("retries", 0, 10), None);
        assert_eq!(reader.string_list("to"), Some(vec!["a".to_string()]));
        let problems = reader.finish();
        assert_eq!(
            problems,
            vec![
                "notify[1].name: expected a string, found integer 3",
                "notify[1].url: is required",
                "notify[1].timeout: unknown duration unit \"weeks\" in \"3 weeks\"",
                "notify[1].retries: 99 is outside the allowed range 0..=10",
                "notify[1].to[1]: expected a string, found integer 1",
                "notify[1].spelling: unknown key",
            ]
        );
    }

    #[test]
    fn secrets_come_from_one_place_and_are_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let text = format!("secret_file = {:?}", file.display().to_string());
        let from_file = table(&text);
        let mut reader = TableReader::new("notify[0]", &from_file);
        assert_eq!(
            reader.secret("secret", "secret_file", None).as_deref(),
            Some("s3cret")
        );
        assert!(reader.finish().is_empty());

        let both = table("secret = \"inline-value\"\nsecret_file = \"/nonexistent\"");
        let mut reader = TableReader::new("notify[0]", &both);
        assert_eq!(reader.secret("secret", "secret_file", None), None);
        let problems = reader.finish();
        assert_eq!(
            problems,
            vec!["notify[0].secret: set only one of secret, secret_file"]
        );
        assert!(!problems.concat().contains("inline-value"));
    }

    #[test]
    fn secrets_can_come_from_the_environment() {
        let set = table("secret_env = \"PATH\"");
        let mut reader = TableReader::new("monitor[0]", &set);
        let secret = reader.secret("secret", "secret_file", Some("secret_env"));
        assert_eq!(secret, std::env::var("PATH").ok());
        assert!(reader.finish().is_empty());

        let unset = table("secret_env = \"GARONNE_TEST_SURELY_UNSET\"");
        let mut reader = TableReader::new("monitor[0]", &unset);
        assert_eq!(
            reader.secret("secret", "secret_file", Some("secret_env")),
            None
        );
        assert_eq!(
            reader.finish(),
            vec![
                "monitor[0].secret_env: environment variable \"GARONNE_TEST_SURELY_UNSET\" \
                 is not set"
            ]
        );
    }

    #[test]
    fn http_urls_need_a_scheme_and_a_host() {
        assert!(is_http_url("https://discord.com/api/webhooks/1/x"));
        assert!(is_http_url("http://127.0.0.1:9/hook"));
        assert!(!is_http_url("ftp://example.org"));
        assert!(!is_http_url("x"));
    }
}
