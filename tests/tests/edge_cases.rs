//! What must not stop the pipeline: strangers without a certificate from our CA, bad
//! bytes, huge lines, and configuration mistakes, which are reported by name.

use garonne_tests::*;
use std::path::Path;
use std::process::Command;

fn plain_input(file: &Path) -> String {
    format!(
        "[[input]]\npaths = [\"{}\"]\nmodule = \"plain\"\n",
        file.display()
    )
}

#[test]
fn agent_with_a_certificate_from_another_ca_is_refused_and_others_keep_flowing() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Certs::create(&dir.path().join("ours")).unwrap();
    let theirs = Certs::create(&dir.path().join("theirs")).unwrap();
    let collector = Collector::start(dir.path(), &ours, "").unwrap();

    // The stranger trusts our collector but presents a certificate of another CA.
    let stranger_dir = dir.path().join("stranger");
    let stranger_certs = stranger_dir.join("certs");
    std::fs::create_dir_all(&stranger_certs).unwrap();
    std::fs::copy(ours.dir.join("ca.pem"), stranger_certs.join("ca.pem")).unwrap();
    for file in ["agent.pem", "agent.key"] {
        std::fs::copy(theirs.dir.join(file), stranger_certs.join(file)).unwrap();
    }
    let stranger_log = stranger_dir.join("stranger.log");
    append(&stranger_log, b"must never arrive\n");
    let stranger = Certs {
        dir: stranger_certs,
    };
    let config = agent_config(
        &stranger_dir,
        &stranger,
        collector.port,
        &plain_input(&stranger_log),
        "",
    );
    let mut stranger_agent = start_agent(&stranger_dir, &config).unwrap();

    let friend_dir = dir.path().join("friend");
    std::fs::create_dir_all(&friend_dir).unwrap();
    let friend_log = friend_dir.join("friend.log");
    append(&friend_log, b"first line\n");
    let config = agent_config(
        &friend_dir,
        &ours,
        collector.port,
        &plain_input(&friend_log),
        "",
    );
    let _friend_agent = start_agent(&friend_dir, &config).unwrap();

    wait_until(READY_TIMEOUT, "the stranger's refusal", || {
        collector
            .process
            .log_text()
            .contains("agent handshake failed")
    });
    // The stranger is told why: the collector's verdict on its certificate.
    let refused = stranger_agent.wait_for_log("collector unreachable");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    wait_until(READY_TIMEOUT, "the friend's first line", || {
        collector.count("*") == 1
    });
    append(&friend_log, b"second line\nthird line\n");
    wait_until(READY_TIMEOUT, "the friend's later lines", || {
        collector.count("*") == 3
    });
    assert_eq!(collector.count("must"), 0);
    assert_eq!(collector.count("\"third line\""), 1);
}

#[test]
fn invalid_utf8_nul_bytes_and_a_5_mib_line_pass_through_without_stopping_anything() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let collector = Collector::start(dir.path(), &certs, "").unwrap();
    let log = dir.path().join("odd.log");
    append(&log, b"before\nbad \xff\xfe bytes\nnul \x00 inside\n");
    let huge_offset = std::fs::metadata(&log).unwrap().len();
    append(&log, &vec![b'x'; 5 * 1024 * 1024]);
    append(&log, b"\nafter\n");
    let config = agent_config(dir.path(), &certs, collector.port, &plain_input(&log), "");
    let _agent = start_agent(dir.path(), &config).unwrap();

    wait_until(READY_TIMEOUT, "five documents", || {
        collector.count("*") == 5
    });
    assert_eq!(collector.count("log.flags:invalid_utf8"), 1);
    assert_eq!(collector.count("log.flags:truncated"), 1);
    assert_eq!(collector.count("after"), 1);
    assert_eq!(collector.count("nul"), 1);

    let huge = collector.documents(&format!("log.offset:{huge_offset}"), 1);
    let message = huge[0]["message"].as_str().unwrap();
    assert_eq!(
        message.len(),
        1024 * 1024,
        "cut at the default max_line_bytes"
    );
    let bad = collector.documents("log.flags:invalid_utf8", 1);
    assert_eq!(bad[0]["message"], "bad \u{fffd}\u{fffd} bytes");
}

fn check_config(binary_name: &str, text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(binary(binary_name))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const AGENT: &str = "[[input]]\npaths = [\"/var/log/*.log\"]\nmodule = \"plain\"\n\
                     [collector]\naddresses = [\"c:4433\"]\nserver_name = \"c\"\n\
                     ca = \"/c\"\ncert = \"/c\"\nkey = \"/c\"\n";

#[test]
fn check_config_names_an_unknown_key_with_its_line() {
    let (valid, stderr) = check_config("garonne-agent", &format!("{AGENT}colour = \"blue\"\n"));
    assert!(!valid);
    assert!(stderr.contains("colour"), "{stderr}");
    assert!(
        stderr.contains("collector.colour") && stderr.contains("line 10"),
        "{stderr}"
    );
}

#[test]
fn check_config_names_a_bad_value_and_its_key() {
    let (valid, stderr) = check_config(
        "garonne-agent",
        &format!("{AGENT}[buffer]\nmax_bytes = \"12XB\"\n"),
    );
    assert!(!valid);
    assert!(
        stderr.contains("buffer.max_bytes") && stderr.contains("\"12XB\""),
        "{stderr}"
    );

    let (valid, stderr) = check_config("garonne-collector", "[collector]\nmax_connections = 0\n");
    assert!(!valid);
    assert!(stderr.contains("collector.max_connections: 0"), "{stderr}");
}

#[test]
fn check_config_reports_missing_certificate_files() {
    let (valid, stderr) = check_config("garonne-agent", AGENT);
    assert!(!valid);
    assert!(stderr.contains("collector.ca: cannot read /c"), "{stderr}");
}

#[test]
fn sighup_applies_a_new_configuration_and_reads_on_from_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let collector = Collector::start(dir.path(), &certs, "").unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (first, second) = (logs.join("first.log"), logs.join("second.log"));
    append(&first, b"one\n");
    append(&second, b"other\n");
    let config = agent_config(dir.path(), &certs, collector.port, &plain_input(&first), "");
    let mut agent = start_agent(dir.path(), &config).unwrap();
    wait_until(READY_TIMEOUT, "the first line", || {
        collector.count("*") == 1
    });

    let wider = plain_input(&logs.join("*.log"));
    agent_config(dir.path(), &certs, collector.port, &wider, "");
    Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .unwrap();
    agent.wait_for_log("configuration reloaded");
    append(&first, b"two\n");
    wait_until(READY_TIMEOUT, "both files", || collector.count("*") == 3);
    assert_eq!(
        collector.count("one"),
        1,
        "the first line was not read again"
    );

    // A broken configuration is refused and the running one kept.
    std::fs::write(&config, "not toml [").unwrap();
    Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .unwrap();
    agent.wait_for_log("configuration not reloaded");
    append(&first, b"three\n");
    wait_until(READY_TIMEOUT, "the line after the refused reload", || {
        collector.count("*") == 4
    });
}

#[test]
fn a_query_of_exclusions_alone_means_everything_except() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let collector = Collector::start(dir.path(), &certs, "").unwrap();
    let log = dir.path().join("words.log");
    append(&log, b"apple pie\nbanana split\ncherry tart\n");
    let config = agent_config(dir.path(), &certs, collector.port, &plain_input(&log), "");
    let _agent = start_agent(dir.path(), &config).unwrap();
    wait_until(READY_TIMEOUT, "three lines", || collector.count("*") == 3);
    assert_eq!(collector.count("-banana"), 2);
    assert_eq!(collector.count("* -banana -cherry"), 1);
    assert_eq!(collector.count("-message:*"), 0);
    // Without `--` too, including a query that starts like the short help flag.
    assert_eq!(collector.search(&["--count", "-banana"]).trim(), "2");
    assert_eq!(
        collector.search(&["--count", "-host.name:nowhere"]).trim(),
        "3"
    );
}

#[test]
fn check_config_refuses_a_key_that_does_not_belong_to_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let text = format!(
        "[[input]]\npaths = [\"/var/log/*.log\"]\nmodule = \"plain\"\n[collector]\n\
         addresses = [\"c:4433\"]\nserver_name = \"c\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.file("ca.pem"),
        certs.file("agent.pem"),
        certs.file("collector.key"),
    );
    let (valid, stderr) = check_config("garonne-agent", &text);
    assert!(!valid);
    assert!(
        stderr.contains("the private key does not belong to the certificate"),
        "{stderr}"
    );
}

#[test]
fn collector_reloads_on_sighup_and_agents_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let port = free_udp_port();
    let mut collector = Collector::start_on(dir.path(), &certs, "", port).unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"before the reload\n");
    let config = agent_config(dir.path(), &certs, port, &plain_input(&log), "");
    let _agent = start_agent(dir.path(), &config).unwrap();
    wait_until(READY_TIMEOUT, "the first line", || {
        collector.count("*") == 1
    });

    Command::new("kill")
        .args(["-HUP", &collector.process.pid().to_string()])
        .status()
        .unwrap();
    collector.process.wait_for_log("configuration reloaded");
    append(&log, b"after the reload\n");
    wait_until(READY_TIMEOUT, "the line after the reload", || {
        collector.count("*") == 2
    });
}

#[test]
fn an_agent_stops_without_waiting_for_a_collector_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    // A port that takes the agent's packets and never answers: its connection
    // attempt can only end by timing out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let log = dir.path().join("app.log");
    append(&log, b"a line that waits in the buffer\n");
    let config = agent_config(dir.path(), &certs, port, &plain_input(&log), "");
    let mut agent = start_agent(dir.path(), &config).unwrap();
    agent.wait_for_log("following file");

    assert!(agent.stop().success());
    let text = agent.log_text();
    assert!(text.contains("agent stopped"), "{text}");
    // Waiting for the attempt to time out would have logged it as a failure first.
    assert!(
        !text.contains("collector unreachable"),
        "the stop waited for the connection attempt:\n{text}"
    );
    assert!(text.contains("pending_batches=1"), "{text}");
}

#[test]
fn check_config_warns_of_an_input_directory_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let missing = dir.path().join("apach2");
    let input = plain_input(&missing.join("access.log"));
    let config = agent_config(dir.path(), &certs, 4433, &input, "");
    let output = Command::new(binary("garonne-agent"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warning = format!("directory {} does not exist", missing.display());
    assert!(stderr.contains(&warning), "{stderr}");
}

/// `garonne-agent status`: its exit status and what it prints.
fn agent_status_command(config: &Path) -> (Option<i32>, serde_json::Value, String) {
    let output = Command::new(binary("garonne-agent"))
        .args(["status", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let printed = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), printed, stderr)
}

#[test]
fn agent_status_exits_3_once_the_agent_has_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let log = dir.path().join("app.log");
    append(&log, b"one line\n");
    let config = agent_config(dir.path(), &certs, port, &plain_input(&log), "");

    let (code, _, stderr) = agent_status_command(&config);
    assert_eq!(code, Some(1), "before the first run: {stderr}");
    assert!(stderr.contains("status.json"), "{stderr}");

    let mut agent = start_agent(dir.path(), &config).unwrap();
    wait_until(READY_TIMEOUT, "the agent's first status", || {
        agent_status_command(&config).0 == Some(0)
    });
    let (_, running, _) = agent_status_command(&config);
    assert_eq!(running["running"], true);

    assert!(agent.stop().success());
    let (code, stopped, stderr) = agent_status_command(&config);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("the agent is not running"), "{stderr}");
    // The counters it left are still printed.
    assert_eq!(stopped["running"], false);
    assert_eq!(stopped["lines_read"], 1, "{stopped}");
}

#[test]
fn agent_status_says_whether_the_agent_is_connected() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("certs")).unwrap();
    let mut collector = Collector::start(dir.path(), &certs, "").unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"one line\n");
    let config = agent_config(dir.path(), &certs, collector.port, &plain_input(&log), "");
    let _agent = start_agent(dir.path(), &config).unwrap();
    wait_until(READY_TIMEOUT, "the agent connected", || {
        agent_status(&config)["connected"] == 1
    });
    assert_eq!(agent_status(&config)["connections"], 1);

    // A collector that stops closes its connections: the agent sees it at once.
    collector.process.stop();
    wait_until(READY_TIMEOUT, "the agent disconnected", || {
        agent_status(&config)["connected"] == 0
    });
}
