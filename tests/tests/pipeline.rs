//! The main job end to end: a real agent ships the real Apache sample logs over QUIC to
//! a real collector, which parses and indexes them into each kind of store.

use garonne_tests::*;
use serde_json::Value;
use std::path::Path;

const ACCESS_LOG: &str = "data/apache-access/apache_logs";
const ERROR_LOG: &str = "data/loghub/Apache/Apache_2k.log";

/// What the test knows about the input, computed from the files themselves.
struct Expected {
    lines: u64,
    status_404: u64,
    status_4xx: u64,
    status_from_500: u64,
    bytes_under_1000: u64,
    on_may_17: u64,
    error_level: u64,
    first_access_line: String,
}

fn prepare_logs(dir: &Path) -> Expected {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let access = copy_log(&shared(ACCESS_LOG), &logs.join("access.log"));
    let error = copy_log(&shared(ERROR_LOG), &logs.join("error.log"));
    let access_text = std::fs::read_to_string(logs.join("access.log")).unwrap();
    let error_text = std::fs::read_to_string(logs.join("error.log")).unwrap();
    let status = |line: &str| {
        line.split('"')
            .nth(2)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    };
    let number_after_request = |line: &str, index: usize| {
        line.split('"')
            .nth(2)
            .and_then(|rest| rest.split_whitespace().nth(index))
            .and_then(|text| text.parse::<i64>().ok())
    };
    let access_where =
        |keep: &dyn Fn(&str) -> bool| access_text.lines().filter(|line| keep(line)).count() as u64;
    Expected {
        status_4xx: access_where(&|line| {
            number_after_request(line, 0).is_some_and(|code| (400..=499).contains(&code))
        }),
        status_from_500: access_where(&|line| number_after_request(line, 0) >= Some(500)),
        bytes_under_1000: access_where(&|line| {
            number_after_request(line, 1).is_some_and(|bytes| bytes < 1000)
        }),
        on_may_17: access_where(&|line| line.contains("[17/May/2015:")),
        lines: (access + error) as u64,
        status_404: access_text
            .lines()
            .filter(|line| status(line).as_deref() == Some("404"))
            .count() as u64,
        error_level: error_text
            .lines()
            .filter(|line| line.contains("] [error] "))
            .count() as u64,
        first_access_line: access_text.lines().next().unwrap().to_string(),
    }
}

fn inputs(dir: &Path) -> String {
    let logs = dir.join("logs");
    format!(
        "[[input]]\npaths = [\"{0}/access*.log\"]\nmodule = \"apache.access\"\n\n\
         [[input]]\npaths = [\"{0}/error*.log\"]\nmodule = \"apache.error\"\n",
        logs.display()
    )
}

/// Ships the sample and checks count and fields; returns the collector still running.
fn ship_and_check(dir: &Path, certs: &Certs, store_table: &str) -> Collector {
    let expected = prepare_logs(dir);
    assert_eq!(expected.lines, 12_000);
    let collector = Collector::start(dir, certs, store_table).unwrap();
    let config = agent_config(dir, certs, collector.port, &inputs(dir), "");
    let mut agent = start_agent(dir, &config).unwrap();
    wait_until(READY_TIMEOUT, "12,000 documents", || {
        collector.count("*") >= expected.lines
    });
    agent.stop();
    assert_eq!(
        collector.count("*"),
        expected.lines,
        "every line exactly once"
    );
    assert_eq!(collector.count("event.dataset:apache.access"), 10_000);
    assert_eq!(collector.count("event.dataset:apache.error"), 2_000);
    assert_eq!(
        collector.count("http.response.status_code:404"),
        expected.status_404
    );
    assert_eq!(collector.count("log.level:error"), expected.error_level);
    check_ranges(&collector, &expected);
    assert_eq!(
        collector.count("error.message:*"),
        0,
        "every sample line parses"
    );
    check_first_access_document(&collector, &expected.first_access_line);
    check_an_error_document(&collector);
    collector
}

/// Ranges of numbers and times, in the query and as `--since`/`--until`, count what the
/// file holds.
fn check_ranges(collector: &Collector, expected: &Expected) {
    assert_eq!(
        collector.count("http.response.status_code:[400 TO 499]"),
        expected.status_4xx
    );
    assert_eq!(
        collector.count("http.response.status_code:>=500"),
        expected.status_from_500
    );
    assert_eq!(
        collector.count("event.dataset:apache.access -http.response.status_code:<500"),
        expected.status_from_500
    );
    assert_eq!(
        collector.count("http.response.body.bytes:<1000"),
        expected.bytes_under_1000
    );
    assert_eq!(
        collector.count("@timestamp:>=2015-05-17 @timestamp:<2015-05-18"),
        expected.on_may_17
    );
    let counted = collector.search(&[
        "--count",
        "--since",
        "2015-05-17",
        "--until",
        "2015-05-18T00:00:00Z",
        "--",
        "*",
    ]);
    assert_eq!(counted.trim(), expected.on_may_17.to_string());
    // The sample is years old: nothing is from the last day.
    let recent = collector.search(&["--count", "--since", "1d", "--", "*"]);
    assert_eq!(recent.trim(), "0");
}

fn field<'a>(document: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(document, |value, key| &value[key])
}

fn check_first_access_document(collector: &Collector, line: &str) {
    let documents = collector.documents("event.dataset:apache.access AND log.offset:0", 5);
    assert_eq!(documents.len(), 1, "{documents:?}");
    let document = &documents[0];
    let client = line.split(' ').next().unwrap();
    let request: Vec<&str> = line.split('"').nth(1).unwrap().split(' ').collect();
    let numbers: Vec<&str> = line.split('"').nth(2).unwrap().split_whitespace().collect();
    assert_eq!(field(document, "event.original"), line);
    assert_eq!(field(document, "source.ip"), client);
    assert_eq!(field(document, "http.request.method"), request[0]);
    assert_eq!(field(document, "url.original"), request[1]);
    assert_eq!(
        field(document, "http.version"),
        request[2].trim_start_matches("HTTP/")
    );
    assert_eq!(
        field(document, "http.response.status_code"),
        numbers[0].parse::<u64>().unwrap()
    );
    assert_eq!(
        field(document, "http.response.body.bytes"),
        numbers[1].parse::<u64>().unwrap()
    );
    assert_eq!(
        field(document, "user_agent.original"),
        line.split('"').nth(5).unwrap()
    );
    assert_eq!(field(document, "agent.id"), "web1");
    assert_eq!(field(document, "ecs.version"), "8.11.0");
    assert!(
        field(document, "log.file.path")
            .as_str()
            .unwrap()
            .ends_with("/logs/access.log")
    );
    assert_eq!(field(document, "@timestamp"), "2015-05-17T10:05:03.000Z");
}

fn check_an_error_document(collector: &Collector) {
    let documents = collector.documents("event.dataset:apache.error AND log.offset:0", 5);
    assert_eq!(documents.len(), 1, "{documents:?}");
    let document = &documents[0];
    // [Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties
    assert_eq!(field(document, "log.level"), "notice");
    assert_eq!(
        field(document, "message"),
        "workerEnv.init() ok /etc/httpd/conf/workers2.properties"
    );
    assert_eq!(field(document, "@timestamp"), "2005-12-04T04:47:44.000Z");
}

#[test]
fn embedded_index_receives_every_real_line_once_and_keeps_them_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let mut collector = ship_and_check(dir.path(), &certs, "");
    collector.process.stop();
    let restarted = Collector::start_with(dir.path(), collector.config.clone()).unwrap();
    assert_eq!(restarted.count("*"), 12_000);
}

#[test]
fn elasticsearch_api_receives_every_real_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let server = SearchServer::noida(dir.path()).unwrap();
    ship_and_check(dir.path(), &certs, &server.collector_table());
}

#[test]
fn opensearch_api_receives_every_real_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let server = SearchServer::osmem(dir.path()).unwrap();
    ship_and_check(dir.path(), &certs, &server.collector_table());
}
