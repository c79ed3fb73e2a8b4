use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

use super::*;

/// Filebeat fields Garonne does not produce yet: the user-agent breakdown and GeoIP
/// enrichment. The same list, with the reasons, is in `docs/conformance.md`.
const NOT_PRODUCED: &[&str] = &[
    "user_agent.name",
    "user_agent.version",
    "user_agent.os.",
    "user_agent.device.",
    "source.geo.",
    "source.as.",
];

/// Fields Garonne produces that some expected files lack, each for a stated reason.
const PRODUCED_BEYOND_FILEBEAT: &[&str] = &[
    // Added by newer Filebeat versions than some expected files come from.
    "event.kind",
    "event.category",
    "event.outcome",
    "event.type",
    "event.original",
    "url.path",
    "url.extension",
    // Older expected files (test-vhost) have `source.ip` only; newer ones always have
    // `source.address`.
    "source.address",
    // Read from `file.c(470): [client addr:port]`, which Filebeat leaves in the message.
    "source.ip",
    "source.port",
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/filebeat-apache")
}

fn utc() -> ParseContext {
    ParseContext::new(TimeZone::UTC)
}

fn fixed(hours: i8) -> ParseContext {
    ParseContext::new(TimeZone::fixed(Offset::constant(hours)))
}

fn parse_flat(format: Format, line: &str, ctx: &ParseContext) -> Map<String, Value> {
    let parsed = parse_line(format, line, ctx);
    assert_eq!(parsed.error, None, "{line}");
    flatten(&parsed.doc)
}

fn field<'a>(flat: &'a Map<String, Value>, path: &str) -> &'a Value {
    flat.get(path).unwrap_or(&Value::Null)
}

// ---- conformance with Filebeat's test files ----

/// Each input line's byte offset, blank lines left out (Filebeat emits no event for them).
fn lines_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut offset = 0;
    let mut lines = Vec::new();
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        if !content.is_empty() {
            lines.push((offset, content));
        }
        offset += line.len();
    }
    lines
}

/// The zone the expected file's error timestamps were written in, from `event.timezone`.
fn context_for(expected: &[Map<String, Value>]) -> ParseContext {
    let zone = expected
        .iter()
        .find_map(|doc| doc.get("event.timezone")?.as_str());
    let Some(zone) = zone else { return utc() };
    let seconds = time::offset_seconds(zone.replace(':', "").as_bytes());
    let offset = Offset::from_seconds(seconds.expect("event.timezone is an offset")).unwrap();
    ParseContext::new(TimeZone::fixed(offset))
}

fn is_listed(path: &str, list: &[&str]) -> bool {
    list.iter().any(|entry| {
        if entry.ends_with('.') {
            path.starts_with(entry)
        } else {
            path == *entry
        }
    })
}

fn same_value(path: &str, expected: &Value, actual: &Value) -> bool {
    match (path, expected, actual) {
        ("http.request.method", Value::String(expected), Value::String(actual)) => {
            expected.eq_ignore_ascii_case(actual)
        }
        _ => expected == actual,
    }
}

/// Compares one produced document with Filebeat's, returning the differences.
fn compare(name: &str, actual: &Map<String, Value>, expected: &Map<String, Value>) -> Vec<String> {
    let mut differences = Vec::new();
    for (path, value) in expected {
        if is_listed(path, NOT_PRODUCED) {
            continue;
        }
        match actual.get(path) {
            Some(actual) if same_value(path, value, actual) => {}
            Some(actual) => differences.push(format!("{name}: {path}: {actual} != {value}")),
            None => differences.push(format!("{name}: {path} missing, expected {value}")),
        }
    }
    for path in actual.keys() {
        if !expected.contains_key(path) && !is_listed(path, PRODUCED_BEYOND_FILEBEAT) {
            differences.push(format!("{name}: {path} produced but not expected"));
        }
    }
    differences
}

fn check_file(log: &Path, format: Format) -> Vec<String> {
    let expected_path = PathBuf::from(format!("{}-expected.json", log.display()));
    let text = std::fs::read_to_string(log).expect("read log");
    let expected = std::fs::read_to_string(&expected_path).expect("read expected");
    let expected: Vec<Map<String, Value>> = serde_json::from_str(&expected).expect("json");
    let lines = lines_with_offsets(&text);
    assert_eq!(lines.len(), expected.len(), "{}: line count", log.display());
    let ctx = context_for(&expected);

    let mut differences = Vec::new();
    for ((offset, line), expected) in lines.iter().zip(&expected) {
        let parsed = parse_line(format, line, &ctx);
        assert_eq!(parses(format, line, &ctx), parsed.error.is_none(), "{line}");
        let mut doc = parsed.doc;
        insert_path(&mut doc, "input.type", "log".into());
        insert_path(&mut doc, "log.offset", (*offset).into());
        insert_path(&mut doc, "event.original", (*line).into());
        let name = format!("{}:{offset}", log.file_name().unwrap().to_string_lossy());
        differences.extend(compare(&name, &flatten(&doc), expected));
    }
    differences
}

#[test]
fn conformance_with_filebeat_test_files() {
    let mut checked = 0;
    let mut differences = Vec::new();
    for (dir, format) in [
        ("access", Format::ApacheAccess),
        ("error", Format::ApacheError),
    ] {
        let entries = std::fs::read_dir(corpus_dir().join(dir)).expect("corpus directory");
        let mut logs: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        logs.retain(|path| path.extension().is_some_and(|extension| extension == "log"));
        logs.sort();
        for log in logs {
            differences.extend(check_file(&log, format));
            checked += 1;
        }
    }
    assert_eq!(
        checked, 6,
        "expected 6 log files with expected output in the corpus"
    );
    assert!(
        differences.is_empty(),
        "differences:\n{}",
        differences.join("\n")
    );
}

#[test]
fn comparison_catches_a_wrong_field() {
    let actual = flatten(
        &json!({"http": {"response": {"status_code": 200}}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let expected = json!({"http.response.status_code": 404, "user.name": "-"});
    let differences = compare("x", &actual, expected.as_object().unwrap());
    assert_eq!(differences.len(), 2, "{differences:?}");
}

// ---- formats and helpers ----

#[test]
fn format_names_round_trip() {
    for format in Format::ALL {
        assert_eq!(Format::from_module(format.dataset()), Some(format));
    }
    assert_eq!(Format::from_module("apache"), None);
    assert_eq!(Format::Syslog.module(), "system");
}

#[test]
fn insert_path_nests_and_flatten_undoes_it() {
    let mut doc = Map::new();
    insert_path(&mut doc, "http.request.method", "GET".into());
    insert_path(&mut doc, "http.version", "1.1".into());
    insert_path(&mut doc, "message", "hi".into());
    assert_eq!(
        Value::Object(doc.clone()),
        json!({"http": {"request": {"method": "GET"}, "version": "1.1"}, "message": "hi"})
    );
    let flat = flatten(&doc);
    assert_eq!(flat.len(), 3);
    assert_eq!(field(&flat, "http.request.method"), "GET");
    assert_eq!(get_path(&doc, "http.request.method"), Some(&json!("GET")));
}

#[test]
fn insert_path_replaces_a_scalar_in_the_way() {
    let mut doc = Map::new();
    insert_path(&mut doc, "host", "web1".into());
    insert_path(&mut doc, "host.name", "web1".into());
    assert_eq!(Value::Object(doc), json!({"host": {"name": "web1"}}));
}

#[test]
fn plain_lines_keep_the_message() {
    let parsed = parse_line(Format::Plain, "anything at all", &utc());
    assert_eq!(
        Value::Object(parsed.doc),
        json!({"message": "anything at all", "event": {"dataset": "plain"}})
    );
    assert_eq!(parsed.timestamp, None);
    assert_eq!(parsed.error, None);
}

// ---- apache access ----

const COMBINED: &str = concat!(
    r#"192.168.33.1 - bob [26/Dec/2016:16:22:13 +0000] "GET /hello HTTP/1.1" 404 499"#,
    r#" "-" "Mozilla/5.0 (X11) Firefox/50.0""#,
);

#[test]
fn access_combined() {
    let flat = parse_flat(Format::ApacheAccess, COMBINED, &utc());
    assert_eq!(field(&flat, "@timestamp"), "2016-12-26T16:22:13.000Z");
    assert_eq!(field(&flat, "source.address"), "192.168.33.1");
    assert_eq!(field(&flat, "source.ip"), "192.168.33.1");
    assert_eq!(field(&flat, "user.name"), "bob");
    assert_eq!(field(&flat, "http.request.method"), "GET");
    assert_eq!(field(&flat, "url.original"), "/hello");
    assert_eq!(field(&flat, "http.version"), "1.1");
    assert_eq!(field(&flat, "http.response.status_code"), 404);
    assert_eq!(field(&flat, "http.response.body.bytes"), 499);
    assert_eq!(field(&flat, "http.request.referrer"), "-");
    assert_eq!(
        field(&flat, "user_agent.original"),
        "Mozilla/5.0 (X11) Firefox/50.0"
    );
    assert_eq!(field(&flat, "event.outcome"), "failure");
    assert!(!flat.contains_key("message"));
}

#[test]
fn access_common_has_no_referrer_or_agent() {
    let line = r#"10.0.0.1 - - [01/Jan/2024:00:00:00 -0130] "POST /api HTTP/2.0" 201 -"#;
    let parsed = parse_line(Format::ApacheAccess, line, &utc());
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "@timestamp"), "2024-01-01T01:30:00.000Z");
    assert_eq!(
        parsed.timestamp,
        Some("2024-01-01T01:30:00Z".parse::<Timestamp>().unwrap())
    );
    assert_eq!(field(&flat, "event.outcome"), "success");
    assert_eq!(field(&flat, "http.version"), "2.0");
    for absent in [
        "http.response.body.bytes",
        "http.request.referrer",
        "user_agent.original",
    ] {
        assert!(!flat.contains_key(absent), "{absent}");
    }
}

#[test]
fn access_vhost_with_port() {
    let line = concat!(
        r#"www.example.org:443 2001:db8::7 - - [26/Dec/2016:16:22:14 +0000]"#,
        r#" "GET / HTTP/1.1" 200 5 "-" "curl/8.0""#,
    );
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "destination.domain"), "www.example.org");
    assert_eq!(field(&flat, "destination.port"), 443);
    assert_eq!(field(&flat, "source.ip"), "2001:db8::7");
    assert_eq!(field(&flat, "user_agent.original"), "curl/8.0");
}

#[test]
fn access_host_name_client_is_not_an_ip() {
    let line =
        r#"monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612"#;
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "source.address"), "monitoring-server");
    assert_eq!(field(&flat, "source.domain"), "monitoring-server");
    assert!(!flat.contains_key("source.ip"));
}

#[test]
fn access_escaped_quotes_stay_in_fields() {
    let line =
        r#"::1 - - [26/Dec/2016:16:16:29 +0200] "GET /a\"b HTTP/1.1" 200 1 "-" "agent \"x\" y\\""#;
    let access = access::parse(line).unwrap();
    assert_eq!(access.request.target, Some(r#"/a\"b"#));
    assert_eq!(access.user_agent, Some(r#"agent \"x\" y\\"#));
}

#[test]
fn access_timed_out_request() {
    let line = r#"127.0.0.1 - - [02/Feb/2019:05:38:45 +0100] "-" 408 152 "-" "-""#;
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "http.response.status_code"), 408);
    assert_eq!(field(&flat, "user_agent.original"), "-");
    for absent in ["http.request.method", "url.original", "http.version"] {
        assert!(!flat.contains_key(absent), "{absent}");
    }
}

#[test]
fn access_tolerates_trailing_fields() {
    let line = format!(r#"{COMBINED} "10.1.1.1, 10.2.2.2" 1234"#);
    let access = access::parse(&line).unwrap();
    assert_eq!(access.user_agent, Some("Mozilla/5.0 (X11) Firefox/50.0"));
}

#[test]
fn access_odd_request_is_kept_as_the_target() {
    let line = r#"1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] "\x16\x03\x01" 400 226"#;
    let access = access::parse(line).unwrap();
    assert_eq!(access.request.method, None);
    assert_eq!(access.request.target, Some(r"\x16\x03\x01"));
    let line = r#"1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] "GET /a b HTTP/1.0" 200 1"#;
    let request = access::parse(line).unwrap().request;
    assert_eq!(
        (request.method, request.target, request.version),
        (Some("GET"), Some("/a b"), Some("1.0"))
    );
}

#[test]
fn access_url_parts() {
    let line = concat!(
        r#"1.2.3.4 - - [26/Dec/2016:16:16:29 +0200]"#,
        r#" "GET http://example.org:8080/a/b.tar.GZ?q=%7B%22x%22%7D#top HTTP/1.1" 200 1"#,
    );
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "url.scheme"), "http");
    assert_eq!(field(&flat, "url.domain"), "example.org");
    assert_eq!(field(&flat, "url.port"), 8080);
    assert_eq!(field(&flat, "url.path"), "/a/b.tar.GZ");
    assert_eq!(field(&flat, "url.extension"), "GZ");
    assert_eq!(field(&flat, "url.query"), r#"q={"x"}"#);
    assert_eq!(field(&flat, "url.fragment"), "top");
    let line = r#"1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] "OPTIONS * HTTP/1.1" 200 1"#;
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert!(!flat.contains_key("url.path"));
    let line = r#"1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] "GET /x.d/y?bad=%zz HTTP/1.1" 200 1"#;
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "url.query"), "bad=%zz");
    assert!(!flat.contains_key("url.extension"));
}

#[test]
fn access_ssl_request_log() {
    let line = concat!(
        "[10/Aug/2018:09:45:56 +0200] 172.30.0.119 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256",
        r#" "GET /x.php HTTP/1.1" 1375"#,
    );
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "tls.version"), "1.2");
    assert_eq!(field(&flat, "tls.version_protocol"), "tls");
    assert_eq!(field(&flat, "tls.cipher"), "ECDHE-RSA-AES128-GCM-SHA256");
    assert_eq!(field(&flat, "http.response.body.bytes"), 1375);
    assert!(!flat.contains_key("http.response.status_code"));
    let line = r#"[10/Aug/2018:09:45:56 +0200] 1.2.3.4 SSLv3 RC4-SHA "GET / HTTP/1.0" -"#;
    let flat = parse_flat(Format::ApacheAccess, line, &utc());
    assert_eq!(field(&flat, "tls.version"), "3.0");
    assert_eq!(field(&flat, "tls.version_protocol"), "ssl");
}

#[test]
fn access_errors_name_the_place() {
    let cases = [
        (
            "127.0.0.1 - frank 10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
            "apache.access: expected '[' before timestamp at byte 39",
        ),
        (
            "1.2.3.4 - [26/Dec/2016:16:16:29 +0200] \"-\" 200 1",
            concat!(
                "apache.access: expected 3 fields (client ident user) or 4 (with a virtual",
                " host) before the timestamp, found 2 at byte 10",
            ),
        ),
        (
            "1.2.3.4 - - [30/Feb/2016:16:16:29 +0200] \"-\" 200 1",
            "apache.access: invalid timestamp at byte 13, expected dd/Mon/yyyy:hh:mm:ss +hhmm",
        ),
        (
            "1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] GET / 200 1",
            "apache.access: expected quoted request at byte 41",
        ),
        (
            "1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] \"-\" 20x 1",
            "apache.access: invalid status code at byte 45",
        ),
        (
            "1.2.3.4 - - [26/Dec/2016:16:16:29 +0200] \"-\" 200 1k",
            "apache.access: invalid response size at byte 49",
        ),
        ("", "apache.access: expected '[' before timestamp at byte 0"),
    ];
    for (line, message) in cases {
        let parsed = parse_line(Format::ApacheAccess, line, &utc());
        assert_eq!(parsed.error.as_deref(), Some(message), "{line}");
        let flat = flatten(&parsed.doc);
        assert_eq!(field(&flat, "message"), line);
        assert_eq!(field(&flat, "error.message"), message);
        assert_eq!(field(&flat, "event.dataset"), "apache.access");
        assert_eq!(parsed.timestamp, None);
    }
}

#[test]
fn access_real_log_parses_completely() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/apache-access/apache_logs");
    let text = std::fs::read_to_string(path).expect("apache_logs");
    let mut count = 0;
    for line in text.lines() {
        let access = access::parse(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        assert!(access.status.is_some(), "{line}");
        count += 1;
    }
    assert_eq!(count, 10_000);
}

// ---- apache error ----

#[test]
fn error_2_2_with_client() {
    let line = "[Mon Dec 26 16:22:08 2016] [error] [client 192.168.33.1] File does not exist: /x";
    let parsed = parse_line(Format::ApacheError, line, &fixed(1));
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "@timestamp"), "2016-12-26T16:22:08.000+01:00");
    assert_eq!(
        parsed.timestamp,
        Some("2016-12-26T15:22:08Z".parse::<Timestamp>().unwrap())
    );
    assert_eq!(field(&flat, "event.timezone"), "+01:00");
    assert_eq!(field(&flat, "log.level"), "error");
    assert_eq!(field(&flat, "event.type"), "error");
    assert_eq!(field(&flat, "source.ip"), "192.168.33.1");
    assert!(!flat.contains_key("source.port"));
    assert_eq!(field(&flat, "message"), "File does not exist: /x");
}

#[test]
fn error_2_2_without_client() {
    let line = "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/workers2.properties";
    let flat = parse_flat(Format::ApacheError, line, &utc());
    assert_eq!(field(&flat, "@timestamp"), "2005-12-04T04:47:44.000Z");
    assert_eq!(field(&flat, "event.timezone"), "+00:00");
    assert_eq!(field(&flat, "event.type"), "info");
    assert!(!flat.contains_key("source.address"));
    assert!(!flat.contains_key("apache.error.module"));
    assert_eq!(
        field(&flat, "message"),
        "workerEnv.init() ok /etc/workers2.properties"
    );
}

#[test]
fn error_2_4_with_pid_tid_and_client_port() {
    let line = concat!(
        "[Wed Oct 20 19:20:59.121211 2021] [core:crit] [pid 12:tid 34]",
        " [client 10.1.2.3:38350] AH00037: Symbolic link not allowed",
    );
    let parsed = parse_line(Format::ApacheError, line, &fixed(-2));
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "@timestamp"), "2021-10-20T19:20:59.121-02:00");
    assert_eq!(parsed.timestamp.unwrap().subsec_microsecond(), 121_211);
    assert_eq!(field(&flat, "apache.error.module"), "core");
    assert_eq!(field(&flat, "log.level"), "crit");
    assert_eq!(field(&flat, "process.pid"), 12);
    assert_eq!(field(&flat, "process.thread.id"), 34);
    assert_eq!(field(&flat, "source.address"), "10.1.2.3");
    assert_eq!(field(&flat, "source.port"), 38350);
    assert_eq!(
        field(&flat, "message"),
        "AH00037: Symbolic link not allowed"
    );
}

#[test]
fn error_2_4_ipv6_client_and_empty_module() {
    let line =
        "[Tue Jan 02 03:04:05.000001 2024] [:error] [pid 7] [client ::1:53716] PHP Warning: x";
    let error_line = error::parse(line).unwrap();
    assert_eq!(error_line.module, None);
    assert_eq!(error_line.level, "error");
    assert_eq!(error_line.thread_id, None);
    assert_eq!(
        (error_line.client, error_line.client_port),
        (Some("::1"), Some(53716))
    );
    assert_eq!(error_line.message, "PHP Warning: x");
}

#[test]
fn error_2_4_client_after_source_position() {
    let line = concat!(
        "[Wed Oct 20 19:20:59.121211 2021] [rewrite:trace3] [pid 1:tid 2]",
        " mod_rewrite.c(470): [client 10.0.0.8:38350] applying pattern",
    );
    let error_line = error::parse(line).unwrap();
    assert_eq!(
        (error_line.client, error_line.client_port),
        (Some("10.0.0.8"), Some(38350))
    );
    assert_eq!(
        error_line.message,
        "mod_rewrite.c(470): [client 10.0.0.8:38350] applying pattern"
    );
}

#[test]
fn error_day_padded_with_a_space() {
    let line = "[Sun Dec  4 04:47:44 2005] [notice] started";
    assert_eq!(
        error::parse(line).unwrap().time,
        jiff::civil::date(2005, 12, 4).at(4, 47, 44, 0)
    );
}

#[test]
fn error_errors_name_the_place() {
    let cases = [
        (
            "Dec 26 16:22:08 2016 [error] x",
            "apache.error: expected '[' before timestamp at byte 0",
        ),
        (
            "[Mon Dec 26 16:22 2016] [error] x",
            "apache.error: invalid timestamp at byte 1, expected Www Mmm dd hh:mm:ss[.ffffff] yyyy",
        ),
        (
            "[Mon Dec 26 16:22:08 2016] error x",
            "apache.error: expected '[' before level at byte 27",
        ),
        (
            "[Mon Dec 26 16:22:08 2016] [error] [pid x] y",
            "apache.error: invalid pid or tid at byte 40",
        ),
    ];
    for (line, message) in cases {
        let parsed = parse_line(Format::ApacheError, line, &utc());
        assert_eq!(parsed.error.as_deref(), Some(message), "{line}");
        let flat = flatten(&parsed.doc);
        assert_eq!(field(&flat, "message"), line);
        assert_eq!(field(&flat, "error.message"), message);
    }
}

#[test]
fn error_loghub_apache_parses_completely() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub/Apache/Apache_2k.log");
    let text = std::fs::read_to_string(path).expect("Apache_2k.log");
    let mut count = 0;
    for line in text.lines() {
        let parsed = parse_line(Format::ApacheError, line, &utc());
        assert_eq!(parsed.error, None, "{line}");
        count += 1;
    }
    assert_eq!(count, 2_000);
}

// ---- syslog ----

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn syslog_3164_with_priority() {
    let line = "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8";
    let parsed = syslog::parse_line(line, &fixed(2), at("2024-11-01T00:00:00Z"));
    assert_eq!(parsed.error, None);
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "@timestamp"), "2024-10-11T22:14:15.000+02:00");
    assert_eq!(field(&flat, "event.timezone"), "+02:00");
    assert_eq!(field(&flat, "log.syslog.priority"), 34);
    assert_eq!(field(&flat, "log.syslog.facility.code"), 4);
    assert_eq!(field(&flat, "log.syslog.severity.code"), 2);
    assert_eq!(field(&flat, "log.level"), "critical");
    assert_eq!(field(&flat, "host.hostname"), "mymachine");
    assert_eq!(field(&flat, "process.name"), "su");
    assert_eq!(field(&flat, "process.pid"), 123);
    assert_eq!(
        field(&flat, "message"),
        "'su root' failed for lonvick on /dev/pts/8"
    );
    assert_eq!(field(&flat, "event.module"), "system");
}

#[test]
fn syslog_year_is_inferred_from_now() {
    let now = at("2024-01-02T12:00:00Z");
    let cases = [
        ("Dec 31 23:59:59", "2023-12-31T23:59:59Z"),
        ("Jan  2 11:00:00", "2024-01-02T11:00:00Z"),
        ("Jan  3 11:00:00", "2024-01-03T11:00:00Z"),
        ("Jan  4 11:00:00", "2023-01-04T11:00:00Z"),
    ];
    for (time, expected) in cases {
        let parsed = syslog::parse_line(&format!("{time} host app: x"), &utc(), now);
        assert_eq!(parsed.timestamp, Some(at(expected)), "{time}");
    }
    let leap_day = "Feb 29 00:00:00 host app: x";
    let parsed = syslog::parse_line(leap_day, &utc(), at("2024-03-05T00:00:00Z"));
    assert_eq!(parsed.timestamp, Some(at("2024-02-29T00:00:00Z")));
    let parsed = syslog::parse_line(leap_day, &utc(), at("2025-01-02T00:00:00Z"));
    assert_eq!(parsed.timestamp, Some(at("2024-02-29T00:00:00Z")));
    let parsed = syslog::parse_line(leap_day, &utc(), at("2026-03-01T00:00:00Z"));
    assert_eq!(
        parsed.error.as_deref(),
        Some("syslog: timestamp out of range in the local zone")
    );
}

#[test]
fn syslog_rfc3339_time_and_no_tag() {
    let line = "2023-06-01T10:00:00.123456+02:00 web1  -- root[2421]: ROOT LOGIN";
    let parsed = syslog::parse_line(line, &utc(), at("2024-01-01T00:00:00Z"));
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "@timestamp"), "2023-06-01T08:00:00.123Z");
    assert!(!flat.contains_key("event.timezone"));
    assert!(!flat.contains_key("process.name"));
    assert_eq!(field(&flat, "message"), "-- root[2421]: ROOT LOGIN");
}

#[test]
fn syslog_5424() {
    let line = concat!(
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47",
        r#" [exampleSDID@32473 iut="3" eventSource="App\"l\ic\]"][x.y z=""]"#,
        " \u{feff}An application event",
    );
    let parsed = syslog::parse_line(line, &utc(), at("2024-01-01T00:00:00Z"));
    assert_eq!(parsed.error, None);
    let doc = Value::Object(parsed.doc.clone());
    assert_eq!(
        doc["log"]["syslog"]["structured_data"],
        json!({
            "exampleSDID@32473": {"iut": "3", "eventSource": "App\"l\\ic]"},
            "x.y": {"z": ""},
        })
    );
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "@timestamp"), "2003-10-11T22:14:15.003Z");
    assert_eq!(field(&flat, "log.syslog.version"), "1");
    assert_eq!(field(&flat, "log.syslog.facility.name"), "local4");
    assert_eq!(field(&flat, "log.syslog.severity.name"), "notice");
    assert_eq!(field(&flat, "host.hostname"), "mymachine.example.com");
    assert_eq!(field(&flat, "process.name"), "evntslog");
    assert!(!flat.contains_key("process.pid"));
    assert_eq!(field(&flat, "log.syslog.msgid"), "ID47");
    assert_eq!(field(&flat, "message"), "An application event");
}

#[test]
fn syslog_5424_nil_values() {
    let line = "<13>1 - - - 4412 - -";
    let parsed = syslog::parse_line(line, &utc(), at("2024-01-01T00:00:00Z"));
    assert_eq!(parsed.error, None);
    assert_eq!(parsed.timestamp, None);
    let flat = flatten(&parsed.doc);
    assert_eq!(field(&flat, "process.pid"), 4412);
    assert_eq!(field(&flat, "message"), "");
    assert!(!flat.contains_key("host.hostname"));
}

#[test]
fn syslog_errors_name_the_place() {
    let now = at("2024-01-01T00:00:00Z");
    let cases = [
        (
            "<999>Oct 11 22:14:15 a b: c",
            "syslog: invalid priority at byte 1, expected <0> to <191>",
        ),
        (
            "Oct 11 22:14 a b: c",
            "syslog: invalid timestamp at byte 0, expected Mmm dd hh:mm:ss or RFC 3339",
        ),
        (
            "Oct 11 22:14:15",
            "syslog: expected ' ' after timestamp at byte 15",
        ),
        (
            "<13>1 2003-10-11T22:14:15Z host app - - [a b=\"c\" d",
            "syslog: expected ']' closing structured data at byte 40",
        ),
    ];
    for (line, message) in cases {
        let parsed = syslog::parse_line(line, &utc(), now);
        assert_eq!(parsed.error.as_deref(), Some(message), "{line}");
        assert_eq!(field(&flatten(&parsed.doc), "message"), line);
    }
}

#[test]
fn syslog_loghub_files_parse_completely() {
    let now = at("2024-12-31T00:00:00Z");
    for name in ["Linux/Linux_2k.log", "OpenSSH/OpenSSH_2k.log"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/loghub")
            .join(name);
        let text = std::fs::read_to_string(path).expect("loghub file");
        let mut with_program = 0;
        for line in text.lines() {
            let parsed = syslog::parse_line(line, &utc(), now);
            assert_eq!(parsed.error, None, "{line}");
            with_program += usize::from(get_path(&parsed.doc, "process.name").is_some());
        }
        assert!(
            with_program >= 1_990,
            "{name}: {with_program} lines with a program name"
        );
    }
}

// ---- json ----

#[test]
fn json_keys_go_to_the_root() {
    let line = concat!(
        r#"{"@timestamp":"2024-05-01T10:00:00.5+02:00","message":"hi","log.level":"warn","#,
        r#""http":{"request":{"method":"GET"}},"n":1}"#,
    );
    let parsed = parse_line(Format::Json, line, &utc());
    assert_eq!(parsed.error, None);
    assert_eq!(parsed.timestamp, Some(at("2024-05-01T08:00:00.5Z")));
    assert_eq!(
        Value::Object(parsed.doc),
        json!({
            "@timestamp": "2024-05-01T10:00:00.5+02:00",
            "message": "hi",
            "log": {"level": "warn"},
            "http": {"request": {"method": "GET"}},
            "n": 1,
            "event": {"dataset": "json"},
        })
    );
}

#[test]
fn json_keeps_its_own_dataset() {
    let parsed = parse_line(Format::Json, r#"{"event":{"dataset":"app.audit"}}"#, &utc());
    assert_eq!(
        get_path(&parsed.doc, "event.dataset"),
        Some(&json!("app.audit"))
    );
}

#[test]
fn json_bad_timestamp_is_removed_and_reported() {
    let parsed = parse_line(
        Format::Json,
        r#"{"@timestamp":"yesterday","message":"x"}"#,
        &utc(),
    );
    assert_eq!(parsed.timestamp, None);
    assert!(!parsed.doc.contains_key("@timestamp"));
    assert_eq!(parsed.doc["message"], "x");
    let error = parsed.error.unwrap();
    assert!(
        error.starts_with("json: @timestamp \"yesterday\""),
        "{error}"
    );
    assert_eq!(get_path(&parsed.doc, "error.message"), Some(&json!(error)));
}

#[test]
fn json_errors_name_the_place() {
    let cases = [
        (
            r#"{"a": 1,}"#,
            "json: invalid json at column 9: trailing comma",
        ),
        (
            "[1, 2]",
            "json: expected a json object at byte 0, found an array",
        ),
        (
            "plain text",
            "json: invalid json at column 1: expected value",
        ),
    ];
    for (line, message) in cases {
        let parsed = parse_line(Format::Json, line, &utc());
        assert_eq!(parsed.error.as_deref(), Some(message), "{line}");
        assert_eq!(parsed.doc["message"], line);
    }
}

// ---- robustness ----

/// Every prefix of varied lines, and each with a multibyte character put at every
/// position, goes through every parser without a panic.
#[test]
fn no_input_panics() {
    let samples = [
        COMBINED,
        r#"vhost:80 ::1 - - [26/Dec/2016:16:16:29 +0200] "GET /a?b#c HTTP/1.1" 200 1 "-" "x""#,
        r#"[10/Aug/2018:09:45:56 +0200] 1.2.3.4 TLSv1.2 AES "GET / HTTP/1.1" 1"#,
        "[Wed Oct 20 19:20:59.121211 2021] [a:b] [pid 1:tid 2] f.c(1): [client ::1:5] m",
        "<13>1 2003-10-11T22:14:15.003Z h a 1 m [x y=\"\\\"]\"] msg",
        "<13>Oct 11 22:14:15 h a[1]: m",
        r#"{"a.b":[1,{"c":"d"}],"@timestamp":"2024-01-01T00:00:00Z"}"#,
    ];
    let ctx = fixed(3);
    for sample in samples {
        let mut variants: Vec<String> = Vec::new();
        for (index, _) in sample.char_indices() {
            variants.push(sample[..index].to_owned());
            variants.push(format!("{}é{}", &sample[..index], &sample[index..]));
        }
        for variant in &variants {
            for format in Format::ALL {
                let parsed = parse_line(format, variant, &ctx);
                assert!(parsed.error.is_some() || !parsed.doc.is_empty());
                assert_eq!(
                    parses(format, variant, &ctx),
                    parsed.error.is_none(),
                    "{format:?}: {variant}"
                );
            }
        }
    }
}
