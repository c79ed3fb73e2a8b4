//! Matching one document against a query of the search language, in memory, for
//! `[templates] embed_events`. It follows the stores' meaning closely enough for a
//! filter: words and phrases match case-insensitively inside any string field,
//! `field:value` matches a field equal to the value or holding it as a phrase, and
//! `field:*` a field that is present.

use crate::parse::flatten;
use crate::query::{Query, Term};
use serde_json::{Map, Value};

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
        Term::Not(inner) => !term_matches(inner, flat),
    }
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
               "http": {"response": {"status_code": 503}}})
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
}
