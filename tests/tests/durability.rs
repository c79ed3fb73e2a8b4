//! Nothing lost, nothing doubled: real processes killed with SIGKILL at random moments
//! while lines are written across rotations, a collector outage longer than the disk
//! buffer, and a search server that refuses bulk requests for a while.

use garonne_tests::fault_proxy::FaultProxy;
use garonne_tests::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const LINES: usize = 200_000;
const ROTATE_EVERY: usize = 40_000;
const KILLS: usize = 10;

/// Writes `LINES` numbered lines to `app.log` at a steady pace, rotating it every
/// `ROTATE_EVERY` lines, alternately by rename and by copytruncate (copies are named
/// `app.log.N`, which the agent's glob does not match).
fn write_with_rotations(dir: &Path, done: &AtomicBool) {
    let log = dir.join("app.log");
    let mut batch = String::new();
    for line in 0..LINES {
        batch.push_str(&format!(
            "line {line:07} of the durability test, padded to look like a log\n"
        ));
        if (line + 1) % 500 == 0 {
            append(&log, batch.as_bytes());
            batch.clear();
            std::thread::sleep(Duration::from_millis(10));
        }
        if (line + 1) % ROTATE_EVERY == 0 {
            let rotated = dir.join(format!("app.log.{}", (line + 1) / ROTATE_EVERY));
            if ((line + 1) / ROTATE_EVERY) % 2 == 1 {
                std::fs::rename(&log, &rotated).unwrap();
            } else {
                std::fs::copy(&log, &rotated).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&log)
                    .unwrap();
            }
        }
    }
    done.store(true, Ordering::SeqCst);
}

/// Every line number exactly once: the count, and the set of numbers in the messages.
fn assert_every_line_once(collector: &Collector) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while collector.count("*") < LINES as u64 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let limit = (LINES + 100).to_string();
    let output = collector.search(&["--limit", &limit, "--fields", "message", "*"]);
    let numbers: HashSet<usize> = output
        .lines()
        .map(|line| {
            let document: serde_json::Value = serde_json::from_str(line).unwrap();
            let message = document["message"].as_str().unwrap().to_string();
            message[5..12].parse().unwrap()
        })
        .collect();
    let missing: Vec<usize> = (0..LINES).filter(|n| !numbers.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(collector.count("*"), LINES as u64, "no line doubled");
}

fn random_pause() -> Duration {
    Duration::from_millis(200 + rand_below(600))
}

fn rand_below(limit: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos) % limit
}

fn app_input(dir: &Path) -> String {
    format!(
        "[[input]]\npaths = [\"{}/app.log\"]\nmodule = \"plain\"\n",
        dir.display()
    )
}

fn logs_dir(dir: &Path) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs
}

#[test]
fn agent_killed_at_random_moments_across_rotations_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let collector = Collector::start(dir.path(), &certs, "").unwrap();
    let logs = logs_dir(dir.path());
    let config = agent_config(dir.path(), &certs, collector.port, &app_input(&logs), "");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (logs, done) = (logs.clone(), done.clone());
        std::thread::spawn(move || write_with_rotations(&logs, &done))
    };
    for _ in 0..KILLS {
        let mut agent = start_agent(dir.path(), &config).unwrap();
        std::thread::sleep(random_pause());
        agent.kill();
    }
    writer.join().unwrap();
    let _agent = start_agent(dir.path(), &config).unwrap();
    assert_every_line_once(&collector);
}

#[test]
fn collector_killed_at_random_moments_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let port = free_udp_port();
    let logs = logs_dir(dir.path());
    let config = agent_config(dir.path(), &certs, port, &app_input(&logs), "");
    let _agent = start_agent(dir.path(), &config).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (logs, done) = (logs.clone(), done.clone());
        std::thread::spawn(move || write_with_rotations(&logs, &done))
    };
    for _ in 0..KILLS {
        let mut collector = Collector::start_on(dir.path(), &certs, "", port).unwrap();
        std::thread::sleep(random_pause());
        collector.process.kill();
    }
    writer.join().unwrap();
    let collector = Collector::start_on(dir.path(), &certs, "", port).unwrap();
    assert_every_line_once(&collector);
}

/// Lines that compress poorly, so that a few MiB of them fill a small buffer.
fn write_noisy_lines(path: &Path, first: usize, count: usize) {
    let mut text = String::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ first as u64;
    for line in first..first + count {
        let mut noise = String::new();
        for _ in 0..6 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push_str(&format!("{state:016x}"));
        }
        text.push_str(&format!("line {line:07} {noise}\n"));
    }
    append(path, text.as_bytes());
}

#[test]
fn collector_outage_longer_than_the_buffer_pauses_reading_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let port = free_udp_port();
    let logs = logs_dir(dir.path());
    let log = logs.join("app.log");
    let extra = "[buffer]\nmax_bytes = \"2MiB\"\n[batch]\nmax_bytes = \"64KiB\"\n";
    let config = agent_config(dir.path(), &certs, port, &app_input(&logs), extra);
    let per_round = 100_000; // about 11 MiB of lines, several times the buffer
    write_noisy_lines(&log, 0, per_round);
    let agent = start_agent(dir.path(), &config).unwrap();

    wait_until(READY_TIMEOUT, "reading to pause on a full buffer", || {
        agent_status(&config)["reading_paused"] == 1
    });
    let paused_rss = resident_kib(agent.pid());
    write_noisy_lines(&log, per_round, per_round);
    let status = agent_status(&config);
    assert_eq!(status["reading_paused"], 1);
    assert!(
        status["pending_bytes"].as_u64().unwrap() <= 2 << 20,
        "{status}"
    );
    let later_rss = resident_kib(agent.pid());
    assert!(
        later_rss < paused_rss + 16 * 1024,
        "agent memory grew from {paused_rss} to {later_rss} KiB"
    );

    let collector = Collector::start_on(dir.path(), &certs, "", port).unwrap();
    wait_until(
        Duration::from_secs(600),
        "every line after the outage",
        || collector.count("*") >= 2 * per_round as u64,
    );
    assert_eq!(collector.count("*"), 2 * per_round as u64);
    let status = agent_status(&config);
    assert!(
        status["buffer_full_millis"].as_u64().unwrap() > 0,
        "{status}"
    );
}

#[test]
fn search_server_refusing_bulk_requests_for_a_while_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let server = SearchServer::noida(dir.path()).unwrap();
    let proxy = FaultProxy::start(&server.url, 8);
    let table = format!("[elasticsearch]\nurls = [\"{}\"]\n", proxy.url);
    let collector = Collector::start(dir.path(), &certs, &table).unwrap();
    let logs = logs_dir(dir.path());
    let lines = copy_log(
        &shared("data/apache-access/apache_logs"),
        &logs.join("access.log"),
    );
    let input = format!(
        "[[input]]\npaths = [\"{}/access.log\"]\nmodule = \"apache.access\"\n",
        logs.display()
    );
    let config = agent_config(
        dir.path(),
        &certs,
        collector.port,
        &input,
        "[batch]\nmax_lines = 500\n",
    );
    let _agent = start_agent(dir.path(), &config).unwrap();

    wait_until(READY_TIMEOUT, "every line", || {
        collector.count("*") >= lines as u64
    });
    assert_eq!(collector.count("*"), lines as u64);
    assert_eq!(
        proxy.refused.load(Ordering::SeqCst),
        8,
        "the faults were served"
    );
}

#[test]
fn document_with_a_mapping_conflict_goes_to_the_dead_letter_index_and_the_rest_proceeds() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let server = SearchServer::noida(dir.path()).unwrap();
    let collector = Collector::start(dir.path(), &certs, &server.collector_table()).unwrap();
    let logs = logs_dir(dir.path());
    append(
        &logs.join("events.json"),
        b"{\"message\": \"fine before\", \"http\": {\"response\": {\"status_code\": 200}}}\n\
          {\"message\": \"conflicting\", \"http\": {\"response\": {\"status_code\": \"not a number\"}}}\n\
          {\"message\": \"fine after\", \"http\": {\"response\": {\"status_code\": 404}}}\n",
    );
    let input = format!(
        "[[input]]\npaths = [\"{}/events.json\"]\nmodule = \"json\"\n",
        logs.display()
    );
    let config = agent_config(dir.path(), &certs, collector.port, &input, "");
    let _agent = start_agent(dir.path(), &config).unwrap();

    wait_until(READY_TIMEOUT, "three documents", || {
        collector.count("*") >= 3
    });
    assert_eq!(
        collector.count("event.dataset:json"),
        2,
        "the others were indexed"
    );
    let letters = collector.documents("event.kind:pipeline_error", 5);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert!(
        letter["event"]["original"]
            .as_str()
            .unwrap()
            .contains("conflicting")
    );
    assert!(!letter["error"]["message"].as_str().unwrap().is_empty());
}
