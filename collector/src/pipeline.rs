//! Turning a received batch into documents: text from bytes, the module's parser, and
//! the fields every event carries (where it came from, its id, its flags).

use crate::parse::{self, Format, ParseContext, insert_path};
use garonne_common::event::event_id;
use garonne_common::{Batch, FileChunk, Line, LineFlags, Module};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// One document ready for a store.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Deterministic: the same line always gets the same id.
    pub id: String,
    pub dataset: &'static str,
    /// When the event happened (or was read, if the line has no time).
    pub timestamp: Timestamp,
    pub body: Map<String, Value>,
}

/// Counts of what building documents met, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BuildReport {
    pub documents: usize,
    pub blank_lines: usize,
    pub unparsed: usize,
    pub invalid_utf8: usize,
    pub truncated: usize,
}

/// Builds the documents of every log line of a batch. Blank lines carry nothing and
/// are skipped (and counted); every other line yields exactly one document. Probe
/// results ([`Module::Probe`] chunks) are not log lines: the monitors take them (see
/// `probes::agents`).
pub fn build_documents(batch: &Batch, context: &ParseContext) -> (Vec<Document>, BuildReport) {
    let mut report = BuildReport::default();
    let mut documents = Vec::with_capacity(batch.line_count());
    let shared = BatchFields {
        agent: agent_fields(batch),
        ingested: format_timestamp(Timestamp::now()),
    };
    for chunk in log_chunks(batch) {
        let format = Format::from_module(chunk.module.name()).unwrap_or(Format::Plain);
        let read_time =
            Timestamp::from_millisecond(chunk.read_time_ms).unwrap_or_else(|_| Timestamp::now());
        let identity = chunk.identity.to_string();
        for line in chunk.lines() {
            if is_blank(line.bytes) {
                report.blank_lines += 1;
                continue;
            }
            let source = LineSource {
                chunk,
                identity: &identity,
                format,
                read_time,
            };
            let document = build_document(batch, &source, line, context, &shared, &mut report);
            documents.push(document);
        }
    }
    report.documents = documents.len();
    (documents, report)
}

/// A line of nothing but spaces, tabs or a stray carriage return is counted, not
/// indexed.
fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// The chunks of a batch that hold log lines, not monitor results.
fn log_chunks(batch: &Batch) -> impl Iterator<Item = &FileChunk> {
    batch
        .chunks
        .iter()
        .filter(|chunk| chunk.module != Module::Probe)
}

/// Reads every line of a batch through its module's parser and keeps nothing: what the
/// `discard` sink does, to measure transport and parsing alone. Counts exactly as
/// [`build_documents`] does.
pub fn parse_only(batch: &Batch, context: &ParseContext) -> BuildReport {
    let mut report = BuildReport::default();
    for chunk in log_chunks(batch) {
        let format = Format::from_module(chunk.module.name()).unwrap_or(Format::Plain);
        for line in chunk.lines() {
            if is_blank(line.bytes) {
                report.blank_lines += 1;
                continue;
            }
            let (text, _) = line_text(line, &mut report);
            if !parse::parses(format, &text, context) {
                report.unparsed += 1;
            }
            report.documents += 1;
        }
    }
    report
}

/// The line as text (invalid bytes replaced) and its flags, counted in `report`.
fn line_text<'a>(line: Line<'a>, report: &mut BuildReport) -> (Cow<'a, str>, Vec<&'static str>) {
    let text = String::from_utf8_lossy(line.bytes);
    let mut flags = Vec::new();
    if matches!(text, Cow::Owned(_)) {
        flags.push("invalid_utf8");
        report.invalid_utf8 += 1;
    }
    if line.flags.contains(LineFlags::TRUNCATED) {
        flags.push("truncated");
        report.truncated += 1;
    }
    (text, flags)
}

/// Fields every document of a batch shares, made once per batch.
struct BatchFields {
    agent: Value,
    ingested: String,
}

/// Where a line comes from, the same for every line of a chunk.
struct LineSource<'a> {
    chunk: &'a FileChunk,
    identity: &'a str,
    format: Format,
    read_time: Timestamp,
}

fn build_document(
    batch: &Batch,
    source: &LineSource<'_>,
    line: Line<'_>,
    context: &ParseContext,
    shared: &BatchFields,
    report: &mut BuildReport,
) -> Document {
    let LineSource {
        chunk,
        identity,
        format,
        read_time,
    } = *source;
    let (text, flags) = line_text(line, report);
    let parsed = match format {
        Format::Syslog => parse::syslog::parse_line(&text, context, read_time),
        other => parse::parse_line(other, &text, context),
    };
    if parsed.error.is_some() {
        report.unparsed += 1;
    }
    let timestamp = parsed.timestamp.unwrap_or(read_time);
    let mut body = parsed.doc;
    if !body.contains_key("@timestamp") {
        body.insert(
            "@timestamp".into(),
            Value::String(format_timestamp(timestamp)),
        );
    }
    insert_path(
        &mut body,
        "event.original",
        Value::String(text.into_owned()),
    );
    insert_path(
        &mut body,
        "event.ingested",
        Value::String(shared.ingested.clone()),
    );
    insert_path(&mut body, "log.offset", json!(line.offset));
    insert_path(
        &mut body,
        "log.file.path",
        Value::String(chunk.path.clone()),
    );
    insert_path(
        &mut body,
        "log.file.identity",
        Value::String(identity.to_string()),
    );
    if !flags.is_empty() {
        insert_path(&mut body, "log.flags", json!(flags));
    }
    insert_path(
        &mut body,
        "host.name",
        Value::String(batch.host_name.clone()),
    );
    insert_path(&mut body, "input.type", Value::String("log".into()));
    insert_path(&mut body, "ecs.version", Value::String(ECS_VERSION.into()));
    body.insert("agent".into(), shared.agent.clone());
    Document {
        id: event_id(&batch.agent_id, &chunk.identity, line.offset),
        dataset: format.dataset(),
        timestamp,
        body,
    }
}

fn agent_fields(batch: &Batch) -> Value {
    json!({
        "id": batch.agent_id,
        "name": batch.host_name,
        "type": "garonne",
    })
}

/// RFC 3339 in UTC with milliseconds, as Elasticsearch's `date` type reads it.
pub fn format_timestamp(timestamp: Timestamp) -> String {
    timestamp.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `{prefix}-{dataset}-{YYYY.MM.DD}`, the UTC day of the event.
pub fn index_name(prefix: &str, dataset: &str, timestamp: Timestamp) -> String {
    format!("{prefix}-{dataset}-{}", timestamp.strftime("%Y.%m.%d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use garonne_common::FileIdentity;

    fn batch(module: Module, lines: &[&[u8]], flags: LineFlags) -> Batch {
        let identity = FileIdentity {
            device: 1,
            inode: 2,
            fingerprint: 3,
        };
        let mut chunk =
            FileChunk::new("/var/log/x.log".into(), identity, module, 1_700_000_000_000);
        let mut offset = 0;
        for bytes in lines {
            chunk.push(offset, bytes.len() as u64 + 1, bytes, flags);
            offset += bytes.len() as u64 + 1;
        }
        Batch {
            agent_id: "web1".into(),
            host_name: "web1.example.org".into(),
            chunks: vec![chunk],
        }
    }

    fn context() -> ParseContext {
        ParseContext::new(jiff::tz::TimeZone::UTC)
    }

    #[test]
    fn access_line_gets_parsed_fields_and_event_metadata() {
        let line =
            br#"10.0.0.1 - - [04/Dec/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl""#;
        let batch = batch(Module::ApacheAccess, &[line], LineFlags::default());
        let (documents, report) = build_documents(&batch, &context());
        assert_eq!(report.documents, 1);
        let document = &documents[0];
        let flat = parse::flatten(&document.body);
        assert_eq!(flat["http.response.status_code"], json!(200));
        assert_eq!(flat["log.offset"], json!(0));
        assert_eq!(flat["log.file.path"], json!("/var/log/x.log"));
        assert_eq!(flat["host.name"], json!("web1.example.org"));
        assert_eq!(flat["agent.id"], json!("web1"));
        assert_eq!(flat["@timestamp"], json!("2026-12-04T10:00:00.000Z"));
        assert_eq!(document.dataset, "apache.access");
        assert_eq!(
            index_name("garonne", document.dataset, document.timestamp),
            "garonne-apache.access-2026.12.04"
        );
        let identity = batch.chunks[0].identity;
        assert_eq!(document.id, event_id("web1", &identity, 0));
    }

    #[test]
    fn invalid_bytes_are_converted_and_flagged_and_nothing_is_dropped() {
        let lines: [&[u8]; 3] = [b"ok \xff\xfe bytes", b"nul \x00 inside", b""];
        let batch = batch(Module::Plain, &lines, LineFlags::TRUNCATED);
        let (documents, report) = build_documents(&batch, &context());
        assert_eq!(
            (report.documents, report.blank_lines, report.invalid_utf8),
            (2, 1, 1)
        );
        let first = parse::flatten(&documents[0].body);
        assert_eq!(first["message"], json!("ok \u{fffd}\u{fffd} bytes"));
        assert_eq!(first["log.flags"], json!(["invalid_utf8", "truncated"]));
        let second = parse::flatten(&documents[1].body);
        assert_eq!(second["message"], json!("nul \u{0} inside"));
    }

    #[test]
    fn lines_of_whitespace_are_counted_as_blank_not_indexed() {
        let lines: [&[u8]; 4] = [b"   ", b"\t \r", b" text ", b""];
        let batch = batch(Module::Plain, &lines, LineFlags::default());
        let (documents, report) = build_documents(&batch, &context());
        assert_eq!((report.documents, report.blank_lines), (1, 3));
        let only = parse::flatten(&documents[0].body);
        assert_eq!(only["message"], json!(" text "));
        assert_eq!(parse_only(&batch, &context()).blank_lines, 3);
    }

    #[test]
    fn parse_only_counts_as_building_documents_does() {
        let lines: [&[u8]; 5] = [
            br#"10.0.0.1 - - [04/Dec/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl""#,
            b"not an access line",
            b"",
            b"bad \xff byte",
            br#"10.0.0.2 - - [31/Feb/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-""#,
        ];
        let batch = batch(Module::ApacheAccess, &lines, LineFlags::TRUNCATED);
        let (_, built) = build_documents(&batch, &context());
        assert_eq!(parse_only(&batch, &context()), built);
        assert_eq!((built.documents, built.unparsed), (4, 3));
    }

    #[test]
    fn unparsable_line_keeps_its_text_with_an_error() {
        let batch = batch(
            Module::ApacheAccess,
            &[b"this is not apache"],
            LineFlags::default(),
        );
        let (documents, report) = build_documents(&batch, &context());
        assert_eq!(report.unparsed, 1);
        let flat = parse::flatten(&documents[0].body);
        assert_eq!(flat["message"], json!("this is not apache"));
        assert_eq!(flat["event.original"], json!("this is not apache"));
        assert!(
            flat["error.message"]
                .as_str()
                .unwrap()
                .starts_with("apache.access")
        );
        assert_eq!(flat["@timestamp"], json!("2023-11-14T22:13:20.000Z"));
    }
}
