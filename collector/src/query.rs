//! The search language shared by every store, so a query means the same against
//! Elasticsearch, OpenSearch and the embedded index.
//!
//! A query is a list of terms that must all match (`AND` between them is allowed and
//! changes nothing):
//!
//! | term            | matches documents                                   |
//! |-----------------|-----------------------------------------------------|
//! | `*`             | all                                                 |
//! | `word`          | with the word in any field                          |
//! | `"two words"`   | with the phrase in any field                        |
//! | `field:value`   | whose field (dotted ECS path) has the value         |
//! | `field:"a b"`   | whose field holds the phrase                        |
//! | `field:*`       | that have the field                                 |
//! | `field:>=500`   | whose field is a number in the range (also `>`, `<`, `<=`) |
//! | `field:[500 TO 599]` | in the range, ends included; `*` leaves an end open  |
//! | `-term`         | that do not match the term                          |
//!
//! Range bounds are whole numbers, except for `@timestamp`, whose bounds are times: a
//! date (`2026-12-04`, midnight UTC), a date and time in RFC 3339 (`2026-12-04T10:00:00Z`
//! or with an offset; without one it is UTC, as in Elasticsearch), `now`, or `now-`
//! followed by a duration (`now-15m`, `now-2h`, `now-1d`), counted from the moment the
//! query is read.
//!
//! `OR` and `NOT` are refused rather than searched for as words, since they read as
//! operators that the language does not have; `"OR"` searches for the word.

use garonne_common::units::HumanDuration;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::ops::Bound;

/// The field whose range bounds are times.
pub const TIMESTAMP_FIELD: &str = "@timestamp";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Text(String),
    Field {
        path: String,
        value: String,
    },
    Exists {
        path: String,
    },
    /// A range of whole numbers; for [`TIMESTAMP_FIELD`], of milliseconds since the Unix
    /// epoch.
    Range {
        path: String,
        lower: Bound<i64>,
        upper: Bound<i64>,
    },
    Not(Box<Term>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub terms: Vec<Term>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("unclosed quote starting at character {0}")]
    UnclosedQuote(usize),
    #[error("empty value after {0:?}")]
    EmptyValue(String),
    #[error("invalid field name {0:?}: use letters, digits, '_', '@' and '.'")]
    FieldName(String),
    #[error(
        "{0} is not an operator here: every term must match, and -term excludes one; \
         to search for the word, quote it (\"{0}\")"
    )]
    Operator(String),
    #[error("unclosed range starting at character {0}: write field:[low TO high]")]
    UnclosedRange(usize),
    #[error(
        "invalid range {range:?} for {path}: {reason} (to search for it as text, quote the \
         value: {path}:\"{range}\")"
    )]
    Range {
        path: String,
        range: String,
        reason: String,
    },
}

impl Query {
    /// Reads a query; `now` in time ranges is the current time.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        Query::parse_at(text, Timestamp::now())
    }

    /// Reads a query with `now` in time ranges standing for `now`.
    pub fn parse_at(text: &str, now: Timestamp) -> Result<Query, QueryError> {
        let mut terms = Vec::new();
        for token in tokenize(text)? {
            if token == "*" || token == "AND" {
                continue;
            }
            if token == "OR" || token == "NOT" {
                return Err(QueryError::Operator(token));
            }
            terms.push(parse_term(&token, now)?);
        }
        Ok(Query { terms })
    }

    /// The Elasticsearch query DSL for this query.
    pub fn to_elasticsearch(&self) -> Value {
        if self.terms.is_empty() {
            return json!({"match_all": {}});
        }
        let clauses: Vec<Value> = self.terms.iter().map(term_to_elasticsearch).collect();
        json!({"bool": {"filter": clauses}})
    }
}

impl Term {
    /// The term in the embedded index's query-parser syntax; `Exists` uses the
    /// `present_field` that lists each document's field paths. `None` for a range, which
    /// that parser does not take on JSON fields: the embedded index builds range queries
    /// itself.
    pub fn to_tantivy(&self, present_field: &str) -> Option<String> {
        let text = match self {
            Term::Text(text) => quote(text),
            Term::Field { path, value } => format!("{path}:{}", quote(value)),
            Term::Exists { path } => format!("{present_field}:{}", quote(path)),
            Term::Range { .. } => return None,
            Term::Not(inner) => format!("-{}", inner.to_tantivy(present_field)?),
        };
        Some(text)
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, QueryError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quote_start = None;
    let mut range_start = None;
    for (position, character) in text.chars().enumerate() {
        match character {
            '[' if quote_start.is_none() && current.ends_with(':') => {
                range_start = Some(position);
                current.push('[');
            }
            ']' if quote_start.is_none() && range_start.is_some() => {
                range_start = None;
                current.push(']');
            }
            '"' if quote_start.is_none() => {
                quote_start = Some(position);
                current.push('"');
            }
            '"' => {
                quote_start = None;
                current.push('"');
            }
            c if c.is_whitespace() && quote_start.is_none() && range_start.is_none() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if let Some(start) = quote_start {
        return Err(QueryError::UnclosedQuote(start));
    }
    if let Some(start) = range_start {
        return Err(QueryError::UnclosedRange(start));
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

fn parse_term(token: &str, now: Timestamp) -> Result<Term, QueryError> {
    if let Some(rest) = token.strip_prefix('-').filter(|rest| !rest.is_empty()) {
        return Ok(Term::Not(Box::new(parse_term(rest, now)?)));
    }
    let field_split = (!token.starts_with('"'))
        .then(|| token.split_once(':'))
        .flatten();
    let Some((path, value)) = field_split else {
        return Ok(Term::Text(unquote(token)));
    };
    if path.is_empty()
        || !path
            .chars()
            .all(|c| c.is_alphanumeric() || "_@.".contains(c))
    {
        return Err(QueryError::FieldName(path.to_string()));
    }
    if value.is_empty() {
        return Err(QueryError::EmptyValue(path.to_string()));
    }
    if value == "*" {
        return Ok(Term::Exists {
            path: path.to_string(),
        });
    }
    if let Some((lower, upper)) = parse_range(path, value, now)? {
        return Ok(Term::Range {
            path: path.to_string(),
            lower,
            upper,
        });
    }
    Ok(Term::Field {
        path: path.to_string(),
        value: unquote(value),
    })
}

/// The lower and upper bound of a range.
type Bounds = (Bound<i64>, Bound<i64>);

/// The bounds of `value` if it is a range (`>=N`, `>N`, `<=N`, `<N`, `[A TO B]`).
fn parse_range(path: &str, value: &str, now: Timestamp) -> Result<Option<Bounds>, QueryError> {
    let fail = |reason: String| QueryError::Range {
        path: path.to_string(),
        range: value.to_string(),
        reason,
    };
    let bound = |text: &str| parse_bound(path, text, now).map_err(fail);
    let bounds = if let Some(inner) = value.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| fail("a range ends with ']'".into()))?;
        let mut ends = inner.split_whitespace();
        let (Some(low), Some("TO"), Some(high), None) =
            (ends.next(), ends.next(), ends.next(), ends.next())
        else {
            return Err(fail("write [low TO high], with * for an open end".into()));
        };
        let open_or = |text: &str| -> Result<Bound<i64>, QueryError> {
            if text == "*" {
                Ok(Bound::Unbounded)
            } else {
                bound(text).map(Bound::Included)
            }
        };
        (open_or(low)?, open_or(high)?)
    } else if let Some(rest) = value.strip_prefix(">=") {
        (Bound::Included(bound(rest)?), Bound::Unbounded)
    } else if let Some(rest) = value.strip_prefix('>') {
        (Bound::Excluded(bound(rest)?), Bound::Unbounded)
    } else if let Some(rest) = value.strip_prefix("<=") {
        (Bound::Unbounded, Bound::Included(bound(rest)?))
    } else if let Some(rest) = value.strip_prefix('<') {
        (Bound::Unbounded, Bound::Excluded(bound(rest)?))
    } else {
        return Ok(None);
    };
    Ok(Some(bounds))
}

/// One end of a range: a whole number, or a time for [`TIMESTAMP_FIELD`].
fn parse_bound(path: &str, text: &str, now: Timestamp) -> Result<i64, String> {
    if path == TIMESTAMP_FIELD {
        return parse_time(text, now).map(|time| time.as_millisecond());
    }
    text.parse::<i64>()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

/// A time as the module documentation describes it.
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let ago = HumanDuration::parse(ago)?.0;
        let ago = jiff::SignedDuration::try_from(ago).map_err(|error| error.to_string())?;
        return now
            .checked_sub(ago)
            .map_err(|_| format!("{text:?} is before the earliest time"));
    }
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time);
    }
    let civil = text.parse::<jiff::civil::DateTime>().or_else(|_| {
        text.parse::<jiff::civil::Date>()
            .map(|date| date.to_datetime(jiff::civil::Time::midnight()))
    });
    civil
        .and_then(|datetime| datetime.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|zoned| zoned.timestamp())
        .map_err(|_| {
            format!(
                "{text:?} is not a time: write 2026-12-04, 2026-12-04T10:00:00Z, now or now-15m"
            )
        })
}

fn unquote(text: &str) -> String {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
        .to_string()
}

fn term_to_elasticsearch(term: &Term) -> Value {
    match term {
        Term::Text(text) => json!({"multi_match": {
            "query": text, "fields": ["*"], "lenient": true, "type": "phrase"
        }}),
        Term::Field { path, value } => json!({"match_phrase": {path: value}}),
        Term::Exists { path } => json!({"exists": {"field": path}}),
        Term::Range { path, lower, upper } => {
            let value = |bound: i64| -> Value {
                if path == TIMESTAMP_FIELD {
                    let time = Timestamp::from_millisecond(bound).unwrap_or(Timestamp::UNIX_EPOCH);
                    Value::String(time.to_string())
                } else {
                    bound.into()
                }
            };
            let mut limits = serde_json::Map::new();
            match lower {
                Bound::Included(bound) => limits.insert("gte".into(), value(*bound)),
                Bound::Excluded(bound) => limits.insert("gt".into(), value(*bound)),
                Bound::Unbounded => None,
            };
            match upper {
                Bound::Included(bound) => limits.insert("lte".into(), value(*bound)),
                Bound::Excluded(bound) => limits.insert("lt".into(), value(*bound)),
                Bound::Unbounded => None,
            };
            json!({"range": {path: limits}})
        }
        Term::Not(inner) => json!({"bool": {"must_not": [term_to_elasticsearch(inner)]}}),
    }
}

/// Leaves simple words bare (so numbers stay numbers) and quotes the rest, including
/// the words the embedded index's parser reads as operators.
fn quote(text: &str) -> String {
    let simple = !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '_');
    let operator = matches!(text, "AND" | "OR" | "NOT" | "IN");
    if simple && !operator {
        text.to_string()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query's terms in the embedded index's syntax, joined.
    fn tantivy(query: &Query) -> String {
        let terms: Option<Vec<String>> = query
            .terms
            .iter()
            .map(|term| term.to_tantivy("_fields"))
            .collect();
        terms.expect("no ranges").join(" ")
    }

    #[test]
    fn parses_every_kind_of_term() {
        let query = Query::parse(r#"* timeout AND "two words" http.response.status_code:404 url.original:"/a b" error.message:* -log.level:info"#).unwrap();
        assert_eq!(
            query.terms,
            vec![
                Term::Text("timeout".into()),
                Term::Text("two words".into()),
                Term::Field {
                    path: "http.response.status_code".into(),
                    value: "404".into()
                },
                Term::Field {
                    path: "url.original".into(),
                    value: "/a b".into()
                },
                Term::Exists {
                    path: "error.message".into()
                },
                Term::Not(Box::new(Term::Field {
                    path: "log.level".into(),
                    value: "info".into()
                })),
            ]
        );
    }

    #[test]
    fn star_alone_matches_everything() {
        assert_eq!(
            Query::parse("*").unwrap().to_elasticsearch(),
            json!({"match_all": {}})
        );
        assert_eq!(Query::parse("  ").unwrap(), Query::default());
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        assert_eq!(
            Query::parse("\"open").unwrap_err(),
            QueryError::UnclosedQuote(0)
        );
        assert_eq!(
            Query::parse("a b:").unwrap_err(),
            QueryError::EmptyValue("b".into())
        );
        assert!(matches!(
            Query::parse("a/b:c"),
            Err(QueryError::FieldName(_))
        ));
        for operator in ["OR", "NOT"] {
            let error = Query::parse(&format!("timeout {operator} refused")).unwrap_err();
            assert_eq!(error, QueryError::Operator(operator.into()));
            assert!(error.to_string().contains("-term excludes"), "{error}");
        }
    }

    #[test]
    fn operator_words_quoted_are_searched_as_words() {
        let query = Query::parse(r#""OR" -"NOT" AND"#).unwrap();
        assert_eq!(
            query.terms,
            vec![
                Term::Text("OR".into()),
                Term::Not(Box::new(Term::Text("NOT".into())))
            ]
        );
        assert_eq!(tantivy(&query), r#""OR" -"NOT""#);
    }

    #[test]
    fn translates_for_each_store() {
        let query = Query::parse("event.dataset:apache.access error.message:* -GET").unwrap();
        assert_eq!(
            query.to_elasticsearch(),
            json!({"bool": {"filter": [
                {"match_phrase": {"event.dataset": "apache.access"}},
                {"exists": {"field": "error.message"}},
                {"bool": {"must_not": [{"multi_match": {"query": "GET", "fields": ["*"], "lenient": true, "type": "phrase"}}]}}
            ]}})
        );
        assert_eq!(
            tantivy(&query),
            r#"event.dataset:"apache.access" _fields:"error.message" -GET"#
        );
    }

    fn range(path: &str, lower: Bound<i64>, upper: Bound<i64>) -> Term {
        Term::Range {
            path: path.into(),
            lower,
            upper,
        }
    }

    #[test]
    fn parses_every_kind_of_range() {
        let status = "http.response.status_code";
        let cases = [
            (">=500", Bound::Included(500), Bound::Unbounded),
            (">499", Bound::Excluded(499), Bound::Unbounded),
            ("<=599", Bound::Unbounded, Bound::Included(599)),
            ("<600", Bound::Unbounded, Bound::Excluded(600)),
            ("[500 TO 599]", Bound::Included(500), Bound::Included(599)),
            ("[* TO -1]", Bound::Unbounded, Bound::Included(-1)),
            ("[500 TO *]", Bound::Included(500), Bound::Unbounded),
        ];
        for (text, lower, upper) in cases {
            let query = Query::parse(&format!("GET {status}:{text} -x")).unwrap();
            assert_eq!(query.terms.len(), 3, "{text}: {query:?}");
            assert_eq!(query.terms[1], range(status, lower, upper), "{text}");
        }
        // A bracket that does not follow a field name is a word like any other.
        assert_eq!(
            Query::parse("[error]").unwrap().terms,
            vec![Term::Text("[error]".into())]
        );
    }

    #[test]
    fn timestamp_ranges_take_dates_times_and_times_ago() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let millis = |text: &str| text.parse::<Timestamp>().unwrap().as_millisecond();
        let lower_of = |text: &str| match &Query::parse_at(text, now).unwrap().terms[..] {
            [Term::Range { lower, .. }] => *lower,
            other => panic!("{text}: {other:?}"),
        };
        let cases = [
            ("@timestamp:>=2026-12-04", "2026-12-04T00:00:00Z"),
            ("@timestamp:>=2026-12-04T10:30", "2026-12-04T10:30:00Z"),
            (
                "@timestamp:>=2026-12-04T10:30:00+01:00",
                "2026-12-04T09:30:00Z",
            ),
            ("@timestamp:>=now-15m", "2026-12-04T11:45:00Z"),
            ("@timestamp:>=now-1d", "2026-12-03T12:00:00Z"),
            ("@timestamp:>=now", "2026-12-04T12:00:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(lower_of(text), Bound::Included(millis(expected)), "{text}");
        }
    }

    #[test]
    fn bad_ranges_name_the_field_and_the_bound() {
        let error = Query::parse("http.response.status_code:>=5xx").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("http.response.status_code"), "{text}");
        assert!(text.contains("\"5xx\" is not a whole number"), "{text}");
        let error = Query::parse("@timestamp:>=yesterday")
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"yesterday\" is not a time"), "{error}");
        let error = Query::parse("@timestamp:>=now-2w").unwrap_err().to_string();
        assert!(error.contains("unknown duration unit \"w\""), "{error}");
        // A value meant as text is searched as text once quoted.
        let error = Query::parse("url.original:<script>")
            .unwrap_err()
            .to_string();
        assert!(error.contains("quote the value"), "{error}");
        assert_eq!(
            Query::parse("url.original:\"<script>\"").unwrap().terms,
            vec![Term::Field {
                path: "url.original".into(),
                value: "<script>".into()
            }]
        );
        assert_eq!(
            Query::parse("a:[1 TO 2").unwrap_err(),
            QueryError::UnclosedRange(2)
        );
        let error = Query::parse("a:[1 2]").unwrap_err().to_string();
        assert!(error.contains("[low TO high]"), "{error}");
    }

    #[test]
    fn ranges_translate_for_each_store() {
        let now: Timestamp = "2026-12-04T12:00:00Z".parse().unwrap();
        let query = Query::parse_at(
            "http.response.status_code:[500 TO 599] @timestamp:>now-1h -http.response.body.bytes:<100",
            now,
        )
        .unwrap();
        assert_eq!(
            query.to_elasticsearch(),
            json!({"bool": {"filter": [
                {"range": {"http.response.status_code": {"gte": 500, "lte": 599}}},
                {"range": {"@timestamp": {"gt": "2026-12-04T11:00:00Z"}}},
                {"bool": {"must_not": [{"range": {"http.response.body.bytes": {"lt": 100}}}]}}
            ]}})
        );
        // The embedded index builds range queries itself.
        assert!(
            query
                .terms
                .iter()
                .all(|term| term.to_tantivy("_fields").is_none())
        );
    }
}
