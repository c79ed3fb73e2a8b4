//! JSON lines: one object per line, as Filebeat's `ndjson` parser reads them with its
//! default empty `target`.
//!
//! The object's keys go to the document root, and a `message` key stays the message. A
//! dotted key (`"http.request.method"`) is expanded into nested objects, so it meets the
//! fields the collector adds on the same path; where a dotted key and an object collide,
//! the key that comes later in the line wins. `event.dataset` is set to `json` unless the
//! object has one.
//!
//! An `@timestamp` that is an RFC 3339 string becomes the event's time. Any other
//! `@timestamp` is removed (Elasticsearch would reject the whole document for it) and the
//! reason put in `error.message`; the rest of the object is kept. A line that is not JSON,
//! or is JSON but not an object, becomes a failed document like any unparsable line.

use jiff::Timestamp;
use serde_json::{Map, Value};
use std::fmt;

use super::{Format, Parsed, failed, get_path, insert_path};

/// Why a JSON line did not parse.
#[derive(Debug)]
pub enum ParseError {
    /// Not JSON; `column` is where the JSON reader stopped, counted from 1.
    Syntax { column: usize, reason: String },
    /// Valid JSON, but not an object; `found` names what it is.
    NotAnObject { found: &'static str },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Syntax { column, reason } => {
                write!(f, "invalid json at column {column}: {reason}")
            }
            ParseError::NotAnObject { found } => {
                write!(f, "expected a json object at byte 0, found {found}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads one line as a JSON object.
pub fn parse(line: &str) -> Result<Map<String, Value>, ParseError> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ParseError::NotAnObject {
            found: kind(&other),
        }),
        Err(error) => {
            let text = error.to_string();
            let reason = text.split(" at line ").next().unwrap_or(&text).to_owned();
            Err(ParseError::Syntax {
                column: error.column(),
                reason,
            })
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `line` and builds its document.
pub(crate) fn parse_line(line: &str) -> Parsed {
    let object = match parse(line) {
        Ok(object) => object,
        Err(error) => return failed(Format::Json, line, error),
    };
    let mut doc = Map::new();
    for (key, value) in object {
        insert_path(&mut doc, &key, value);
    }
    if get_path(&doc, "event.dataset").is_none() {
        insert_path(&mut doc, "event.dataset", Format::Json.dataset().into());
    }
    let (timestamp, error) = take_timestamp(&mut doc);
    if let Some(error) = &error {
        insert_path(&mut doc, "error.message", error.clone().into());
    }
    Parsed {
        doc,
        timestamp,
        error,
    }
}

/// Reads `@timestamp`, and removes it if it is not an RFC 3339 string.
fn take_timestamp(doc: &mut Map<String, Value>) -> (Option<Timestamp>, Option<String>) {
    let Some(value) = doc.get("@timestamp") else {
        return (None, None);
    };
    if let Some(timestamp) = value
        .as_str()
        .and_then(|text| text.parse::<Timestamp>().ok())
    {
        return (Some(timestamp), None);
    }
    let error = format!("json: @timestamp {value} is not an RFC 3339 time, removed");
    doc.remove("@timestamp");
    (None, Some(error))
}
