//! Monitors run by agents, end to end: a real collector assigns `[[monitor]]` tables
//! with `run_on` to a real agent, which checks an HTTP service started here on
//! 127.0.0.1 and ships the results; the collector keeps the agent's own view of the
//! monitor and notifies a webhook receiver started here.

use garonne_tests::webhook::Receiver;
use garonne_tests::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A tiny HTTP service: answers every request with 200 "ok" and notes its path.
/// Stopping it closes its socket, so further checks find the port refused.
struct Service {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    fn start() -> Service {
        Service::start_on(0)
    }

    /// On `port`, or on a free one for 0.
    fn start_on(port: u16) -> Service {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the service");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (paths.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut request = [0u8; 4096];
                        let read = stream.read(&mut request).unwrap_or(0);
                        let text = String::from_utf8_lossy(&request[..read]);
                        let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                        seen.lock().unwrap().push(path);
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Service {
            port,
            paths,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }

    /// Stops serving and waits until the socket is closed.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("service thread");
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `monitors status --json`: one row per monitor, or per agent for agent-run ones.
fn status_rows(collector: &Collector) -> Vec<Value> {
    let output = Command::new(binary("garonne-collector"))
        .args(["monitors", "status", "--json", "--config"])
        .arg(&collector.config)
        .output()
        .expect("run monitors status");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("status prints JSON lines"))
        .collect()
}

fn row<'a>(rows: &'a [Value], monitor: &str, agent: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|row| row["name"] == monitor && row["agent"] == agent)
}

/// `GET /api/v1/monitors` of the running collector.
fn api_rows(collector: &mut Collector) -> Vec<Value> {
    let url = format!("{}/api/v1/monitors", collector.api_url());
    let answer: Value = reqwest::blocking::get(&url)
        .and_then(|response| response.json())
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    answer["monitors"].as_array().cloned().unwrap_or_default()
}

fn down_messages(hook: &Receiver) -> Vec<Value> {
    hook.messages()
        .into_iter()
        .filter(|message| message["fields"]["monitor"] == "school-web")
        .filter(|message| message["title"].as_str().unwrap_or("").contains("DOWN"))
        .collect()
}

#[test]
fn an_agent_runs_its_monitors_and_its_view_goes_down_once_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path()).unwrap();
    let mut service = Service::start();
    let hook = Receiver::start();
    let config = format!(
        "[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [[monitor]]\nname = \"school-web\"\ntype = \"http\"\nurl = \"{}\"\n\
         interval = \"5s\"\ntimeout = \"2s\"\nretries = 0\nrun_on = \"agents\"\n\
         notify = [\"ops\"]\n\n\
         [[monitor]]\nname = \"other-school\"\ntype = \"http\"\nurl = \"{}\"\n\
         interval = \"5s\"\ntimeout = \"2s\"\nrun_on = [\"school-99\"]\n",
        hook.url(),
        service.url("/health"),
        service.url("/other"),
    );
    let mut collector = Collector::start(dir.path(), &certs, &config).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let inputs = format!(
        "[[input]]\npaths = [\"{}/app.log\"]\nmodule = \"plain\"\n",
        logs.display()
    );
    let agent_config = agent_config(dir.path(), &certs, collector.port, &inputs, "");
    let _agent = start_agent(dir.path(), &agent_config).unwrap();

    // The agent's checks reach the service and its row turns UP, without a message.
    wait_until(READY_TIMEOUT, "web1's row of school-web UP", || {
        row(&status_rows(&collector), "school-web", "web1").is_some_and(|row| row["status"] == "UP")
    });
    let api = api_rows(&mut collector);
    let from_api = api
        .iter()
        .find(|row| row["name"] == "school-web" && row["agent"] == "web1")
        .expect("the API lists web1's row");
    assert_eq!(from_api["status"], "UP");
    assert_eq!(from_api["run_on"], "agents");
    assert!(service.paths().iter().any(|path| path == "/health"));
    wait_until(READY_TIMEOUT, "a stored check from web1", || {
        collector.count("monitor.name:school-web AND observer.id:web1") > 0
    });
    assert!(down_messages(&hook).is_empty());

    // The service stops: web1's view goes DOWN with one message naming the agent.
    service.stop();
    wait_until(READY_TIMEOUT, "web1's row of school-web DOWN", || {
        row(&status_rows(&collector), "school-web", "web1")
            .is_some_and(|row| row["status"] == "DOWN")
    });
    let messages = hook.wait_for("the DOWN message", |_| !down_messages(&hook).is_empty());
    let down = down_messages(&hook);
    assert_eq!(down.len(), 1, "{messages:#?}");
    let title = down[0]["title"].as_str().unwrap();
    assert_eq!(title, "school-web is DOWN from agent web1");
    assert_eq!(down[0]["fields"]["agent"], "web1");

    // Two more failed checks arrive; they announce nothing again.
    let checked =
        |rows: &[Value]| row(rows, "school-web", "web1").map(|row| row["last_check"].clone());
    for round in 0..2 {
        let before = checked(&status_rows(&collector));
        wait_until(
            READY_TIMEOUT,
            &format!("failed check {round} after DOWN"),
            || checked(&status_rows(&collector)) != before,
        );
    }
    assert_eq!(down_messages(&hook).len(), 1, "{:#?}", hook.messages());

    // The monitor assigned only to school-99 is not run by web1.
    assert!(!service.paths().iter().any(|path| path == "/other"));
    let rows = status_rows(&collector);
    let other: Vec<&Value> = rows
        .iter()
        .filter(|row| row["name"] == "other-school")
        .collect();
    assert_eq!(other.len(), 1, "{other:#?}");
    assert_eq!(
        (other[0]["agent"].as_str(), other[0]["status"].as_str()),
        (Some("school-99"), Some("PENDING"))
    );
    assert_eq!(collector.count("monitor.name:other-school"), 0);
    let saved = std::fs::read_to_string(dir.path().join("agent-data/monitors.json")).unwrap();
    assert!(
        saved.contains("school-web") && !saved.contains("other-school"),
        "{saved}"
    );
}

/// A collector with `config` on a fixed port, so that the agent finds it again once
/// restarted there, and agent web1 shipping to it. Returns the port, the collector, the
/// agent's configuration and the agent.
fn start_on_a_fixed_port(
    dir: &tempfile::TempDir,
    certs: &Certs,
    config: &str,
) -> (u16, Collector, std::path::PathBuf, Process) {
    let port = free_udp_port();
    let collector = Collector::start_on(dir.path(), certs, config, port).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let inputs = format!(
        "[[input]]\npaths = [\"{}/app.log\"]\nmodule = \"plain\"\n",
        logs.display()
    );
    let agent_config = agent_config(dir.path(), certs, port, &inputs, "");
    let agent = start_agent(dir.path(), &agent_config).unwrap();
    (port, collector, agent_config, agent)
}

#[test]
fn an_agent_keeps_checking_while_the_collector_is_away_and_results_arrive_later() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path()).unwrap();
    let service = Service::start();
    let config = format!(
        "[[monitor]]\nname = \"school-web\"\ntype = \"http\"\nurl = \"{}\"\n\
         interval = \"5s\"\ntimeout = \"2s\"\nrun_on = [\"web1\"]\n",
        service.url("/health"),
    );
    let (port, mut collector, agent_config, agent) = start_on_a_fixed_port(&dir, &certs, &config);
    let stored = |collector: &Collector| collector.count("monitor.name:school-web");
    wait_until(READY_TIMEOUT, "a first stored check", || {
        stored(&collector) > 0
    });

    // Collector away: the agent goes on checking into its buffer.
    collector.process.stop();
    let checks_before = agent_status(&agent_config)["probe_results"]
        .as_u64()
        .unwrap_or(0);
    wait_until(READY_TIMEOUT, "two checks buffered while offline", || {
        let status = agent_status(&agent_config);
        status["probe_results"].as_u64().unwrap_or(0) >= checks_before + 2
    });
    let buffered = agent_status(&agent_config)["probe_results"]
        .as_u64()
        .unwrap();

    // Back: every buffered result is stored, once.
    let collector = Collector::start_on(dir.path(), &certs, &config, port).unwrap();
    wait_until(READY_TIMEOUT, "the buffered results stored", || {
        stored(&collector) >= buffered
    });
    assert_eq!(
        row(&status_rows(&collector), "school-web", "web1").map(|row| row["status"].clone()),
        Some(Value::from("UP"))
    );
    drop(agent);
}

#[test]
fn an_outage_seen_while_the_collector_was_away_is_announced_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path()).unwrap();
    let mut service = Service::start();
    let hook = Receiver::start();
    let config = format!(
        "[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [[monitor]]\nname = \"school-web\"\ntype = \"http\"\nurl = \"{}\"\n\
         interval = \"5s\"\ntimeout = \"2s\"\nretries = 0\nrun_on = [\"web1\"]\n\
         notify = [\"ops\"]\n",
        hook.url(),
        service.url("/health"),
    );
    let (port, mut collector, agent_config, _agent) = start_on_a_fixed_port(&dir, &certs, &config);
    wait_until(READY_TIMEOUT, "web1's row of school-web UP", || {
        row(&status_rows(&collector), "school-web", "web1").is_some_and(|row| row["status"] == "UP")
    });

    // While the collector is away, the service goes down for a few checks and comes
    // back; the agent keeps every result in its buffer.
    collector.process.stop();
    let results = || {
        agent_status(&agent_config)["probe_results"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = results();
    let service_port = service.port;
    service.stop();
    wait_until(READY_TIMEOUT, "two failed checks buffered", || {
        results() >= before + 2
    });
    let _service = Service::start_on(service_port);
    let failed = results();
    wait_until(READY_TIMEOUT, "two good checks buffered", || {
        results() >= failed + 2
    });

    // Back: the buffered results move web1's row as if they had arrived on time, so
    // the outage is announced and ended, and the row ends UP.
    let collector = Collector::start_on(dir.path(), &certs, &config, port).unwrap();
    let messages = hook.wait_for("the DOWN and recovery messages", |messages| {
        messages.len() >= 2
    });
    let titles: Vec<&str> = messages
        .iter()
        .map(|message| message["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        titles[0], "school-web is DOWN from agent web1",
        "{messages:#?}"
    );
    assert_eq!(
        titles[1], "school-web is UP again from agent web1",
        "{messages:#?}"
    );
    assert_eq!(
        row(&status_rows(&collector), "school-web", "web1").map(|row| row["status"].clone()),
        Some(Value::from("UP"))
    );
}
