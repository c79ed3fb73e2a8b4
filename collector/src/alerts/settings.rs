//! Reading the raw `[[alert]]` and `[importance]` tables into typed values, with every
//! problem named by its key and value (`alert[2].window: "5 parsecs" ...`).

use garonne_common::units::HumanDuration;
use std::time::Duration;
use toml::Value;

/// One table being read: its key prefix for messages and the problems found so far.
pub(crate) struct TableReader<'a> {
    pub(crate) prefix: String,
    pub(crate) table: &'a toml::Table,
    pub(crate) problems: &'a mut Vec<String>,
}

impl<'a> TableReader<'a> {
    pub(crate) fn new(
        prefix: String,
        table: &'a toml::Table,
        problems: &'a mut Vec<String>,
    ) -> TableReader<'a> {
        TableReader {
            prefix,
            table,
            problems,
        }
    }

    pub(crate) fn problem(&mut self, key: &str, message: impl std::fmt::Display) {
        self.problems
            .push(format!("{}.{key}: {message}", self.prefix));
    }

    /// Reports every key not in `known`.
    pub(crate) fn refuse_unknown(&mut self, known: &[&str], what: &str) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.problem(&key, format!("is not a setting of {what}"));
        }
    }

    pub(crate) fn string(&mut self, key: &str) -> Option<String> {
        match self.table.get(key)? {
            Value::String(text) => Some(text.clone()),
            other => {
                self.problem(key, format!("{other} must be a string"));
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, key: &str) -> Option<Duration> {
        let parsed = match self.table.get(key)? {
            Value::Integer(seconds) => u64::try_from(*seconds)
                .map(Duration::from_secs)
                .map_err(|_| format!("{seconds} must not be negative")),
            Value::String(text) => HumanDuration::parse(text)
                .map(|duration| duration.0)
                .map_err(|error| format!("{text:?} is not a duration such as \"90s\": {error}")),
            other => Err(format!("{other} must be a duration such as \"5m\"")),
        };
        parsed.map_err(|message| self.problem(key, message)).ok()
    }

    pub(crate) fn integer(&mut self, key: &str, min: u64, max: u64) -> Option<u64> {
        let value = self.table.get(key)?;
        let number = value.as_integer().and_then(|n| u64::try_from(n).ok());
        match number {
            Some(number) if (min..=max).contains(&number) => Some(number),
            _ => {
                self.problem(key, format!("{value} must be an integer in {min}..={max}"));
                None
            }
        }
    }

    pub(crate) fn float(&mut self, key: &str, min: f64, max: f64) -> Option<f64> {
        let value = self.table.get(key)?;
        let number = match value {
            Value::Float(number) => Some(*number),
            Value::Integer(number) => Some(*number as f64),
            _ => None,
        };
        match number {
            Some(number) if (min..=max).contains(&number) => Some(number),
            _ => {
                self.problem(key, format!("{value} must be a number in {min}..={max}"));
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.table.get(key)? {
            Value::Boolean(flag) => Some(*flag),
            other => {
                self.problem(key, format!("{other} must be true or false"));
                None
            }
        }
    }

    /// A list of strings, also accepting a single string.
    pub(crate) fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        match self.table.get(key)? {
            Value::String(text) => Some(vec![text.clone()]),
            Value::Array(items) => {
                let texts: Option<Vec<String>> = items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect();
                if texts.is_none() {
                    self.problem(
                        key,
                        format!("{} must list strings only", Value::Array(items.clone())),
                    );
                }
                texts
            }
            other => {
                self.problem(
                    key,
                    format!("{other} must be a string or a list of strings"),
                );
                None
            }
        }
    }

    /// A sub-table of string values, such as `[importance.keywords]`.
    pub(crate) fn string_map(&mut self, key: &str) -> Vec<(String, String)> {
        let Some(value) = self.table.get(key) else {
            return Vec::new();
        };
        let Some(table) = value.as_table() else {
            self.problem(key, format!("{value} must be a table"));
            return Vec::new();
        };
        let mut entries = Vec::new();
        for (name, value) in table {
            match value.as_str() {
                Some(text) => entries.push((name.clone(), text.to_string())),
                None => self.problem(
                    &format!("{key}.{name:?}"),
                    format!("{value} must be a string"),
                ),
            }
        }
        entries
    }
}
