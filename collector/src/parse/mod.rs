//! Line parsers: one log line in, one Elasticsearch document with ECS fields out.
//!
//! Each input names a module, which selects a [`Format`]:
//!
//! - [`Format::ApacheAccess`]: common, combined and vhost_combined (`host[:port]` first)
//!   lines, and the `ssl_request_log` layout (`[time] client protocol cipher "request"
//!   bytes`). Fields: `source.*`, `destination.*`, `user.name`, `http.*`, `url.*`,
//!   `user_agent.original`, `tls.*`, `event.outcome`.
//! - [`Format::ApacheError`]: Apache 2.2 (`[time] [level] [client addr] msg`) and 2.4
//!   (`[time] [module:level] [pid N:tid N] [client addr:port] msg`). Fields: `log.level`,
//!   `apache.error.module`, `process.pid`, `process.thread.id`, `source.*`, `message`.
//! - [`Format::Syslog`]: RFC 3164 (`<PRI>` optional, BSD or RFC 3339 time) and RFC 5424.
//!   Fields: `log.syslog.*`, `log.level`, `host.hostname`, `process.name`, `process.pid`,
//!   `message`.
//! - [`Format::Json`]: one JSON object per line, its keys at the document root.
//! - [`Format::Plain`]: any text, as `message`.
//!
//! Every document also carries `event.dataset` ([`Format::dataset`]); Apache and syslog
//! documents carry `event.module`, and Apache ones `fileset.name` and `service.type`.
//!
//! The Apache fields follow Filebeat's Apache module, so that dashboards built on it keep
//! working: `-` is kept as written in `user.name`, `http.request.referrer` and
//! `user_agent.original`, while a `-` request, status or size yields no field. The
//! user-agent breakdown (`user_agent.name`, `.os.*`, `.device.*`, `.version`) and GeoIP
//! enrichment (`source.geo.*`, `source.as.*`) are not produced; `docs/conformance.md` lists
//! every Filebeat field and whether it is produced.
//!
//! # Two steps
//!
//! Each Apache and syslog parser first reads the line into a borrowed struct (for example
//! [`access::AccessLine`]) without allocating, then a separate step builds the JSON
//! document. The first step is what throughput depends on and can be timed alone.
//!
//! # Failure
//!
//! [`parse_line`] never fails. A line that does not match its format becomes a document
//! whose `message` is the whole line and whose `error.message` names the format and the
//! byte where reading stopped, such as `apache.access: expected '[' before timestamp at
//! byte 17`. Nothing is dropped.
//!
//! # Timestamps
//!
//! `@timestamp` is RFC 3339 with milliseconds. Times that carry an offset (access logs,
//! RFC 5424, RFC 3339 syslog) are written in UTC with `Z`. Times without one (Apache
//! error logs, BSD syslog) are read in [`ParseContext::local_zone`] and written with that
//! zone's offset, which is also put in `event.timezone`. [`Parsed::timestamp`] keeps the
//! full precision of the line.

pub mod access;
pub mod error;
pub mod json;
pub mod syslog;

mod scan;
mod time;
mod url;

#[cfg(test)]
mod tests;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

/// Which parser a line goes through; chosen from the input's `module` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    ApacheAccess,
    ApacheError,
    Syslog,
    Json,
    Plain,
}

impl Format {
    /// Every format, in the order the module documentation lists them.
    pub const ALL: [Format; 5] = [
        Format::ApacheAccess,
        Format::ApacheError,
        Format::Syslog,
        Format::Json,
        Format::Plain,
    ];

    /// Looks a format up by the module name used in configuration, which is also its
    /// `event.dataset`: `apache.access`, `apache.error`, `syslog`, `json` or `plain`.
    pub fn from_module(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|format| format.dataset() == name)
    }

    /// The value of `event.dataset` for lines of this format.
    pub fn dataset(self) -> &'static str {
        match self {
            Format::ApacheAccess => "apache.access",
            Format::ApacheError => "apache.error",
            Format::Syslog => "syslog",
            Format::Json => "json",
            Format::Plain => "plain",
        }
    }

    /// The value of `event.module`: `apache` for both Apache formats, `system` for syslog
    /// (as Filebeat's system module), and the dataset name for JSON and plain lines. Only
    /// the Apache and syslog documents carry `event.module`; JSON and plain lines come from
    /// no particular software, so their documents leave it out.
    pub fn module(self) -> &'static str {
        match self {
            Format::ApacheAccess | Format::ApacheError => "apache",
            Format::Syslog => "system",
            Format::Json => "json",
            Format::Plain => "plain",
        }
    }

    /// Whether documents of this format carry `event.module`.
    fn sets_module(self) -> bool {
        matches!(
            self,
            Format::ApacheAccess | Format::ApacheError | Format::Syslog
        )
    }
}

/// What a parser needs to know beyond the line itself.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// The zone for timestamps that carry none (Apache error logs, BSD syslog); the
    /// collector passes the zone of the host that wrote the file, or its own.
    pub local_zone: TimeZone,
}

impl ParseContext {
    pub fn new(local_zone: TimeZone) -> ParseContext {
        ParseContext { local_zone }
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The document, with nested objects as Elasticsearch stores them:
    /// `{"http":{"request":{"method":"GET"}}}`.
    pub doc: Map<String, Value>,
    /// When the line says it happened, if it says so and the parser could read it.
    pub timestamp: Option<Timestamp>,
    /// Why the line did not parse; also in the document as `error.message`.
    pub error: Option<String>,
}

/// Parses one line (valid UTF-8, no trailing newline) into ECS fields. Never fails: see
/// the module documentation for what an unparsable line becomes.
pub fn parse_line(format: Format, line: &str, ctx: &ParseContext) -> Parsed {
    match format {
        Format::ApacheAccess => access::parse_line(line),
        Format::ApacheError => error::parse_line(line, ctx),
        Format::Syslog => syslog::parse_line(line, ctx, Timestamp::now()),
        Format::Json => json::parse_line(line),
        Format::Plain => parse_plain(line),
    }
}

/// Whether `line` parses, without building its document: the work of the `discard`
/// sink, which measures transport and parsing. Agrees with the `error` of
/// [`parse_line`] for every line. The Apache formats are only read into slices of the
/// line; syslog and JSON lines go through [`parse_line`] itself, as their outcome
/// depends on the document (the year of a BSD time, the JSON's own `@timestamp`).
pub fn parses(format: Format, line: &str, ctx: &ParseContext) -> bool {
    match format {
        Format::ApacheAccess => access::parse(line).is_ok(),
        Format::ApacheError => error::parse(line)
            .ok()
            .and_then(|error_line| time::in_zone(error_line.time, &ctx.local_zone))
            .is_some(),
        Format::Syslog | Format::Json => parse_line(format, line, ctx).error.is_none(),
        Format::Plain => true,
    }
}

fn parse_plain(line: &str) -> Parsed {
    let mut doc = Map::new();
    insert_path(&mut doc, "event.dataset", Format::Plain.dataset().into());
    insert_path(&mut doc, "message", line.into());
    Parsed {
        doc,
        timestamp: None,
        error: None,
    }
}

/// The fields every document of `format` carries, parsed or not.
fn base_doc(format: Format) -> Map<String, Value> {
    let mut doc = Map::new();
    insert_path(&mut doc, "event.dataset", format.dataset().into());
    if format.sets_module() {
        insert_path(&mut doc, "event.module", format.module().into());
    }
    if let Some((module, fileset)) = format.dataset().split_once('.') {
        insert_path(&mut doc, "fileset.name", fileset.into());
        insert_path(&mut doc, "service.type", module.into());
    }
    doc
}

/// The document for a line that did not parse: the line as `message`, the reason as
/// `error.message` prefixed with the format's name.
fn failed(format: Format, line: &str, reason: impl std::fmt::Display) -> Parsed {
    let error = format!("{}: {reason}", format.dataset());
    let mut doc = base_doc(format);
    insert_path(&mut doc, "message", line.into());
    insert_path(&mut doc, "error.message", error.clone().into());
    Parsed {
        doc,
        timestamp: None,
        error: Some(error),
    }
}

/// Reads a zone-less time in `zone` and inserts `@timestamp`, with the zone's offset at
/// that instant, and `event.timezone`. `None` if the time is outside jiff's range.
fn insert_local_time(
    doc: &mut Map<String, Value>,
    datetime: jiff::civil::DateTime,
    zone: &TimeZone,
) -> Option<Timestamp> {
    let timestamp = time::in_zone(datetime, zone)?;
    let offset = zone.to_offset(timestamp);
    insert_path(doc, "@timestamp", time::format_at(timestamp, offset).into());
    insert_path(doc, "event.timezone", time::format_offset(offset).into());
    Some(timestamp)
}

/// `source.address`, plus `source.ip` when the address is an IP address and
/// `source.domain` when it is a host name, as Filebeat does.
fn insert_source(doc: &mut Map<String, Value>, address: &str, port: Option<u16>) {
    insert_path(doc, "source.address", address.into());
    if address.parse::<std::net::IpAddr>().is_ok() {
        insert_path(doc, "source.ip", address.into());
    } else {
        insert_path(doc, "source.domain", address.into());
    }
    if let Some(port) = port {
        insert_path(doc, "source.port", port.into());
    }
}

/// Inserts `value` at a dotted `path` (`http.request.method`), creating the objects on
/// the way. A non-object found on the way is replaced by an object, and an existing value
/// at the end of the path is overwritten.
pub fn insert_path(doc: &mut Map<String, Value>, path: &str, value: Value) {
    let Some((head, rest)) = path.split_once('.') else {
        doc.insert(path.to_owned(), value);
        return;
    };
    // Look the key up before inserting: `Map::entry` would allocate it every time.
    match doc.get_mut(head) {
        Some(Value::Object(child)) => insert_path(child, rest, value),
        Some(other) => {
            let mut child = Map::new();
            insert_path(&mut child, rest, value);
            *other = Value::Object(child);
        }
        None => {
            let mut child = Map::new();
            insert_path(&mut child, rest, value);
            doc.insert(head.to_owned(), Value::Object(child));
        }
    }
}

/// The value at a dotted `path`, if every step of it is an object.
pub fn get_path<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    match path.split_once('.') {
        None => doc.get(path),
        Some((head, rest)) => get_path(doc.get(head)?.as_object()?, rest),
    }
}

/// Turns nested objects into one level of dotted keys (`{"http.request.method": "GET"}`),
/// the shape Filebeat's test files use. Arrays and scalars are kept as they are; an empty
/// object is kept under its own key.
pub fn flatten(doc: &Map<String, Value>) -> Map<String, Value> {
    let mut flat = Map::new();
    flatten_into(&mut flat, "", doc);
    flat
}

fn flatten_into(flat: &mut Map<String, Value>, prefix: &str, doc: &Map<String, Value>) {
    for (key, value) in doc {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(child) if !child.is_empty() => flatten_into(flat, &path, child),
            _ => {
                flat.insert(path, value.clone());
            }
        }
    }
}
