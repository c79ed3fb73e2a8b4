//! Conditions of alert rules: clauses on document fields joined by `and`.
//!
//! ```text
//! importance >= "high"
//! http.response.status_code == 5xx and destination.domain == "www.example.org"
//! event.dataset == "syslog" and message contains "session opened"
//! ```
//!
//! A clause is `field operator value`. The field is a dotted path; `importance` is short
//! for `garonne.importance`. Operators: `==`, `!=`, `>`, `>=`, `<`, `<=`, `contains`
//! (case-sensitive substring). Values are quoted strings, numbers, bare words, or an
//! HTTP status class (`5xx`, compared with `==` or `!=`). An importance compares by its
//! rank (`low` < `medium` < `high` < `critical`), numbers numerically (a numeric string
//! in the document counts as a number), other strings by equality only. A clause on a
//! field the document lacks is false, whatever its operator.

use super::importance::{IMPORTANCE_FIELD, Importance};
use crate::parse::get_path;
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Contains,
}

const OPERATORS: [(&str, Operator); 7] = [
    ("==", Operator::Equal),
    ("!=", Operator::NotEqual),
    (">=", Operator::GreaterOrEqual),
    ("<=", Operator::LessOrEqual),
    (">", Operator::Greater),
    ("<", Operator::Less),
    ("contains", Operator::Contains),
];

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Text(String),
    Number(f64),
    StatusClass(u16),
    Importance(Importance),
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    path: String,
    operator: Operator,
    value: Literal,
}

/// A parsed condition; it matches when every clause does.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    clauses: Vec<Clause>,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let clauses = split_and(text)?
            .into_iter()
            .map(parse_clause)
            .collect::<Result<Vec<_>, _>>()?;
        if clauses.is_empty() {
            return Err("is empty".into());
        }
        Ok(Condition {
            text: text.trim().to_string(),
            clauses,
        })
    }

    pub fn matches(&self, body: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|clause| clause.matches(body))
    }

    /// Search terms for the clauses the search language can express (equality and
    /// inequality on a value); the others are left out, so the query may match more
    /// documents than the condition does.
    pub fn search_terms(&self) -> Vec<String> {
        self.clauses
            .iter()
            .filter_map(Clause::search_term)
            .collect()
    }
}

impl Clause {
    /// The clause in the search language, where it has a form there: equality, or a
    /// status class or a comparison with a whole number, as a range. Other clauses
    /// (text contained, comparisons with fractions) leave the search wider than the
    /// condition, never narrower.
    fn search_term(&self) -> Option<String> {
        let path = &self.path;
        let whole = |number: f64| (number.fract() == 0.0).then_some(number as i64);
        let term = match (&self.value, self.operator) {
            (Literal::Text(text), Operator::Equal) => format!("{path}:{text:?}"),
            (Literal::Text(text), Operator::NotEqual) => format!("-{path}:{text:?}"),
            (Literal::Importance(importance), Operator::Equal) => {
                format!("{path}:{}", importance.name())
            }
            (Literal::StatusClass(class), Operator::Equal | Operator::NotEqual) => {
                let low = u32::from(*class) * 100;
                let range = format!("{path}:[{low} TO {}]", low + 99);
                if self.operator == Operator::Equal {
                    range
                } else {
                    format!("-{range}")
                }
            }
            (Literal::Number(number), operator) => {
                let number = whole(*number)?;
                match operator {
                    Operator::Equal => format!("{path}:{number}"),
                    Operator::NotEqual => format!("-{path}:{number}"),
                    Operator::Greater => format!("{path}:>{number}"),
                    Operator::GreaterOrEqual => format!("{path}:>={number}"),
                    Operator::Less => format!("{path}:<{number}"),
                    Operator::LessOrEqual => format!("{path}:<={number}"),
                    Operator::Contains => return None,
                }
            }
            _ => return None,
        };
        Some(term)
    }

    fn matches(&self, body: &Map<String, Value>) -> bool {
        let Some(found) = get_path(body, &self.path) else {
            return false;
        };
        match &self.value {
            Literal::Importance(wanted) => {
                let Some(actual) = found.as_str().and_then(Importance::from_name) else {
                    return false;
                };
                compare(self.operator, actual.cmp(wanted))
            }
            Literal::StatusClass(class) => {
                let Some(number) = as_number(found) else {
                    return false;
                };
                let same = (number / 100.0).floor() as u16 == *class;
                (self.operator == Operator::Equal) == same
            }
            Literal::Number(wanted) => match as_number(found) {
                Some(actual) => actual
                    .partial_cmp(wanted)
                    .is_some_and(|ordering| compare(self.operator, ordering)),
                None => self.operator == Operator::NotEqual,
            },
            Literal::Text(wanted) => {
                let actual = match found {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    _ => return false,
                };
                match self.operator {
                    Operator::Equal => actual == *wanted,
                    Operator::NotEqual => actual != *wanted,
                    Operator::Contains => actual.contains(wanted.as_str()),
                    _ => false,
                }
            }
        }
    }
}

fn compare(operator: Operator, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match operator {
        Operator::Equal => ordering == Equal,
        Operator::NotEqual => ordering != Equal,
        Operator::Greater => ordering == Greater,
        Operator::GreaterOrEqual => ordering != Less,
        Operator::Less => ordering == Less,
        Operator::LessOrEqual => ordering != Greater,
        Operator::Contains => false,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Splits on the word `and` outside quotes.
fn split_and(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => {
                let rest = text[index..].trim_start();
                let word_end = rest.find([' ', '\t']).unwrap_or(rest.len());
                if rest[..word_end].eq_ignore_ascii_case("and") && word_end < rest.len() {
                    parts.push(text[start..index].trim());
                    let skipped = text.len() - rest.len() + word_end;
                    start = skipped;
                    index = skipped;
                    continue;
                }
            }
            _ => {}
        }
        index += 1;
    }
    if quoted {
        return Err(format!("{text:?} has an unclosed quote"));
    }
    parts.push(text[start..].trim());
    if parts.iter().any(|part| part.is_empty()) {
        return Err(format!("{text:?} has an empty clause around `and`"));
    }
    Ok(parts)
}

fn parse_clause(text: &str) -> Result<Clause, String> {
    let path_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._@-".contains(c)))
        .unwrap_or(text.len());
    let path = &text[..path_end];
    if path.is_empty() {
        return Err(format!("clause {text:?} must start with a field name"));
    }
    let rest = text[path_end..].trim_start();
    let Some((symbol, operator)) = OPERATORS
        .into_iter()
        .find(|(symbol, _)| rest.starts_with(symbol))
    else {
        return Err(format!(
            "clause {text:?}: expected an operator (==, !=, >, >=, <, <=, contains) after {path}"
        ));
    };
    let raw = rest[symbol.len()..].trim();
    let path = if path == "importance" {
        IMPORTANCE_FIELD.to_string()
    } else {
        path.to_string()
    };
    let value = parse_literal(&path, raw).map_err(|reason| format!("clause {text:?}: {reason}"))?;
    let ordered = matches!(value, Literal::Number(_) | Literal::Importance(_));
    let ordering_operator = !matches!(
        operator,
        Operator::Equal | Operator::NotEqual | Operator::Contains
    );
    if ordering_operator && !ordered {
        return Err(format!(
            "clause {text:?}: {symbol} needs a number or an importance"
        ));
    }
    if operator == Operator::Contains && !matches!(value, Literal::Text(_)) {
        return Err(format!("clause {text:?}: contains needs a string"));
    }
    if matches!(value, Literal::StatusClass(_)) && ordering_operator {
        return Err(format!(
            "clause {text:?}: a status class compares with == or !="
        ));
    }
    Ok(Clause {
        path,
        operator,
        value,
    })
}

fn parse_literal(path: &str, raw: &str) -> Result<Literal, String> {
    if raw.is_empty() {
        return Err("missing value".into());
    }
    let unquoted = match raw.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .ok_or_else(|| format!("{raw} has an unclosed quote"))?,
        None if raw.contains(char::is_whitespace) => {
            return Err(format!("{raw:?}: quote values that contain spaces"));
        }
        None => raw,
    };
    if path == IMPORTANCE_FIELD {
        return Importance::from_name(unquoted)
            .map(Literal::Importance)
            .ok_or_else(|| {
                format!("{unquoted:?} is not an importance: use low, medium, high or critical")
            });
    }
    let lowered = unquoted.to_ascii_lowercase();
    if let Some(digit) = lowered.strip_suffix("xx")
        && let Ok(class @ 1..=5) = digit.parse::<u16>()
    {
        return Ok(Literal::StatusClass(class));
    }
    if !raw.starts_with('"')
        && let Ok(number) = unquoted.parse::<f64>()
    {
        return Ok(Literal::Number(number));
    }
    Ok(Literal::Text(unquoted.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn importance_compares_by_rank() {
        let condition = Condition::parse(r#"importance >= "high""#).unwrap();
        let doc = |level: &str| body(json!({"garonne": {"importance": level}}));
        assert!(condition.matches(&doc("high")));
        assert!(condition.matches(&doc("critical")));
        assert!(!condition.matches(&doc("medium")));
        assert!(!condition.matches(&body(json!({}))));
    }

    #[test]
    fn status_class_and_domain() {
        let condition = Condition::parse(
            r#"http.response.status_code == 5xx AND destination.domain == "www.example.org""#,
        )
        .unwrap();
        let doc = |status: u16, domain: &str| {
            body(json!({"http": {"response": {"status_code": status}},
                        "destination": {"domain": domain}}))
        };
        assert!(condition.matches(&doc(503, "www.example.org")));
        assert!(!condition.matches(&doc(404, "www.example.org")));
        assert!(!condition.matches(&doc(500, "other.example.org")));
        assert_eq!(
            condition.search_terms(),
            vec![
                "http.response.status_code:[500 TO 599]",
                r#"destination.domain:"www.example.org""#
            ]
        );
        for term in condition.search_terms() {
            crate::query::Query::parse(&term).unwrap();
        }
    }

    #[test]
    fn numbers_and_contains() {
        let condition =
            Condition::parse(r#"http.response.body.bytes > 1000 and message contains "and more""#)
                .unwrap();
        let doc = |bytes: u64, message: &str| {
            body(json!({"http": {"response": {"body": {"bytes": bytes}}}, "message": message}))
        };
        assert!(condition.matches(&doc(2000, "this and more")));
        assert!(!condition.matches(&doc(10, "this and more")));
        assert!(!condition.matches(&doc(2000, "less")));
        assert_eq!(
            condition.search_terms(),
            vec!["http.response.body.bytes:>1000"]
        );
    }

    #[test]
    fn bad_conditions_say_why() {
        for text in [
            "",
            "status",
            r#"importance >= "urgent""#,
            r#"message > "x""#,
            "status == 5xx and",
            r#"message == "open"#,
            "code >= 5xx",
        ] {
            assert!(
                Condition::parse(text).is_err(),
                "{text:?} should be refused"
            );
        }
    }
}
