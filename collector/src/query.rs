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
//! | `-term`         | that do not match the term                          |
//!
//! `OR` and `NOT` are refused rather than searched for as words, since they read as
//! operators that the language does not have; `"OR"` searches for the word.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Text(String),
    Field { path: String, value: String },
    Exists { path: String },
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
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let mut terms = Vec::new();
        for token in tokenize(text)? {
            if token == "*" || token == "AND" {
                continue;
            }
            if token == "OR" || token == "NOT" {
                return Err(QueryError::Operator(token));
            }
            terms.push(parse_term(&token)?);
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

    /// The query in the embedded index's query-parser syntax. `Exists` uses the
    /// `present_field` that lists each document's field paths.
    pub fn to_tantivy(&self, present_field: &str) -> String {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| term_to_tantivy(t, present_field))
            .collect();
        parts.join(" ")
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, QueryError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quote_start = None;
    for (position, character) in text.chars().enumerate() {
        match character {
            '"' if quote_start.is_none() => {
                quote_start = Some(position);
                current.push('"');
            }
            '"' => {
                quote_start = None;
                current.push('"');
            }
            c if c.is_whitespace() && quote_start.is_none() => {
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
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

fn parse_term(token: &str) -> Result<Term, QueryError> {
    if let Some(rest) = token.strip_prefix('-').filter(|rest| !rest.is_empty()) {
        return Ok(Term::Not(Box::new(parse_term(rest)?)));
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
    Ok(Term::Field {
        path: path.to_string(),
        value: unquote(value),
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
        Term::Not(inner) => json!({"bool": {"must_not": [term_to_elasticsearch(inner)]}}),
    }
}

fn term_to_tantivy(term: &Term, present_field: &str) -> String {
    match term {
        Term::Text(text) => quote(text),
        Term::Field { path, value } => format!("{path}:{}", quote(value)),
        Term::Exists { path } => format!("{present_field}:{}", quote(path)),
        Term::Not(inner) => format!("-{}", term_to_tantivy(inner, present_field)),
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
        assert_eq!(query.to_tantivy("_fields"), r#""OR" -"NOT""#);
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
            query.to_tantivy("_fields"),
            r#"event.dataset:"apache.access" _fields:"error.message" -GET"#
        );
    }
}
