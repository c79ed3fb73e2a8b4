//! Matching one document against a query of the search language, in memory, for
//! `[templates] embed_events`. It follows the stores' meaning closely enough for a
//! filter: words and phrases match case-insensitively inside any string field,
//! `field:value` matches a field equal to the value or holding it as a phrase, and
//! `field:*` a field that is present, and a range a number (or, for `@timestamp`, a
//! time) inside it.

use crate::parse::flatten;
use crate::query::{Query, TIMESTAMP_FIELD, Term};
use serde_json::{Map, Value};
use std::ops::RangeBounds;

/// Whether `document` matches every term of `query`.
pub fn matches(query: &Query, document: &Map<String, Value>) -> bool {
    let flat = flatten(document);
    query.terms.iter().all(|term| term_matches(term, &flat))
}

fn term_matches(term: &Term, flat: &Map<String, Value>) -> bool {
    match term {
        Term::Text(text) => {
            let needle = text.to_lowercase();
            flat.values().any(|value| value_holds(value, &needle))
        }
        Term::Field { path, value } => {
            let needle = value.to_lowercase();
            flat.get(path.as_str())
                .is_some_and(|found| value_equals(found, &needle) || value_holds(found, &needle))
        }
        Term::Exists { path } => {
            let prefix = format!("{path}.");
            flat.keys()
                .any(|key| key == path || key.starts_with(&prefix))
        }
        Term::Range { path, lower, upper } => flat
            .get(path.as_str())
            .and_then(|found| range_value(path, found))
            .is_some_and(|number| (*lower, *upper).contains(&number)),
        Term::Not(inner) => !term_matches(inner, flat),
    }
}

/// The value a range is compared with: a whole number, or for `@timestamp` the
/// milliseconds of its time.
fn range_value(path: &str, value: &Value) -> Option<i64> {
    if path == TIMESTAMP_FIELD {
        let time: jiff::Timestamp = value.as_str()?.parse().ok()?;
        return Some(time.as_millisecond());
    }
    value.as_i64()
}

fn value_equals(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => text.to_lowercase() == needle,
        Value::Array(items) => items.iter().any(|item| value_equals(item, needle)),
        Value::Null => false,
        other => format!("{other}") == needle,
    }
}

/// Whether the value holds `needle` as whole words.
fn value_holds(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => holds_phrase(&text.to_lowercase(), needle),
        Value::Array(items) => items.iter().any(|item| value_holds(item, needle)),
        Value::Number(number) => format!("{number}") == needle,
        _ => false,
    }
}

fn holds_phrase(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.match_indices(needle).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Map<String, Value> {
        json!({"message": "Disk /dev/sda1 FAILED badly", "log": {"level": "error"},
               "http": {"response": {"status_code": 503}},
               "@timestamp": "2026-12-04T10:00:00.250Z"})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn terms_match_like_the_stores() {
        let check = |text: &str| matches(&Query::parse(text).unwrap(), &document());
        assert!(check("log.level:error"));
        assert!(check("log.level:ERROR failed"));
        assert!(!check("log.level:warning"));
        assert!(check("http.response.status_code:503"));
        assert!(check("\"failed badly\""));
        assert!(!check("fail"));
        assert!(check("http.response:*"));
        assert!(check("-log.level:info"));
        assert!(!check("-log.level:error"));
    }

    #[test]
    fn ranges_match_numbers_and_times_inside_them() {
        let check = |text: &str| matches(&Query::parse(text).unwrap(), &document());
        assert!(check("http.response.status_code:>=500"));
        assert!(check("http.response.status_code:[500 TO 503]"));
        assert!(!check("http.response.status_code:<503"));
        assert!(!check("http.response.status_code:[400 TO 499]"));
        // A range never matches text or a missing field.
        assert!(!check("log.level:>0"));
        assert!(!check("event.duration:>0"));
        assert!(check("@timestamp:>=2026-12-04T10:00:00Z"));
        assert!(check("@timestamp:[2026-12-04 TO 2026-12-05]"));
        assert!(!check("@timestamp:>2026-12-04T10:00:00.250Z"));
    }
}
