//! Helpers for Garonne's end-to-end tests: real agent and collector processes, and the
//! stand-in search servers, each on a port picked at run time on 127.0.0.1 and stopped
//! when its handle is dropped.
//!
//! The binaries are taken from the target directory of the test run: build them first
//! (`tests/run.sh` does, and installs the stand-in servers into `.tools/`).

pub mod fault_proxy;
pub mod ollama_standin;
pub mod qdrant_standin;
pub mod webhook;

use anyhow::{Context, bail};
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a process to become ready or for data to arrive.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A file of the shared real data beside the repository.
pub fn shared(relative: &str) -> PathBuf {
    repo_root().join("../shared").join(relative)
}

/// A built Garonne binary, next to the test executable's `deps/` directory.
pub fn binary(name: &str) -> PathBuf {
    let executable = std::env::current_exe().expect("test executable path");
    let directory = executable
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = directory.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (tests/run.sh runs `cargo build --bins`)",
        path.display()
    );
    path
}

/// A UDP port free on 127.0.0.1 at the time of the call.
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    socket.local_addr().expect("local address").port()
}

/// Resident memory of a process, in KiB, from /proc.
pub fn resident_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

/// The running agent's counters (`garonne-agent status`), or null before the first.
pub fn agent_status(config: &Path) -> serde_json::Value {
    let output = Command::new(binary("garonne-agent"))
        .args(["status", "--config"])
        .arg(config)
        .output()
        .expect("run garonne-agent status");
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// A TCP port free on 127.0.0.1 at the time of the call.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Polls `condition` until it holds or `timeout` passes. This waits for an observable
/// outcome (a document count, a log line); it is not a fixed delay.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed and reaped when dropped, with its stderr in a file.
pub struct Process {
    child: Option<Child>,
    pub log: PathBuf,
    name: String,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command, log: PathBuf) -> anyhow::Result<Process> {
        let file = fs::File::create(&log)?;
        // A process group of its own, so that stopping it also stops what it started
        // (noida-db's launcher runs the server as a child process).
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Process {
            child: Some(child),
            log,
            name: name.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a line of the process's log containing `needle`; returns that line.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        let mut found = None;
        wait_until(
            READY_TIMEOUT,
            &format!("{} to log {needle:?}", self.name),
            || {
                self.assert_running();
                found = self
                    .log_text()
                    .lines()
                    .find(|line| line.contains(needle))
                    .map(str::to_string);
                found.is_some()
            },
        );
        found.unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(child) = &mut self.child
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("process still owned");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let status = child.wait().expect("wait for child");
        self.child = None;
        status
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Certificates made by `garonne-collector certs init`.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn create(dir: &Path) -> anyhow::Result<Certs> {
        let status = Command::new(binary("garonne-collector"))
            .args([
                "certs",
                "init",
                "--name",
                "localhost",
                "--name",
                "127.0.0.1",
                "--dir",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("certs init failed: {status}");
        }
        Ok(Certs {
            dir: dir.to_path_buf(),
        })
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A running collector and the configuration it was started with.
pub struct Collector {
    pub process: Process,
    pub config: PathBuf,
    pub port: u16,
}

impl Collector {
    /// Starts a collector on an ephemeral UDP port of 127.0.0.1; `extra` is appended to
    /// its configuration (e.g. an `[elasticsearch]` table).
    pub fn start(dir: &Path, certs: &Certs, extra: &str) -> anyhow::Result<Collector> {
        Collector::start_on(dir, certs, extra, 0)
    }

    /// Like [`Collector::start`] on a given UDP port, so that a restarted collector is
    /// found again by its agents.
    pub fn start_on(
        dir: &Path,
        certs: &Certs,
        extra: &str,
        port: u16,
    ) -> anyhow::Result<Collector> {
        let config = dir.join("collector.toml");
        let text = format!(
            "[collector]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             client_ca = \"{}\"\ntimezone = \"UTC\"\n[api]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
            dir.join("collector-data").display(),
            certs.file("collector.pem"),
            certs.file("collector.key"),
            certs.file("ca.pem"),
        );
        fs::write(&config, text)?;
        Collector::start_with(dir, config)
    }

    /// Starts a collector on an existing configuration file.
    pub fn start_with(dir: &Path, config: PathBuf) -> anyhow::Result<Collector> {
        let mut command = Command::new(binary("garonne-collector"));
        command.arg("run").arg("--config").arg(&config);
        let log = dir.join(format!("collector-{}.log", unique()));
        let mut process = Process::spawn("collector", &mut command, log)?;
        let line = process.wait_for_log("collector listening");
        let port = line
            .split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|address| address.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .with_context(|| format!("no port in {line:?}"))?;
        Ok(Collector {
            process,
            config,
            port,
        })
    }

    /// `http://ADDRESS` of the collector's HTTP API, once it logged that it listens.
    pub fn api_url(&mut self) -> String {
        let line = self.process.wait_for_log("api listening");
        let address = line
            .split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("api address in the log");
        format!("http://{address}")
    }

    /// Runs `garonne-collector search --count QUERY` against this collector's store.
    pub fn count(&self, query: &str) -> u64 {
        let output = self.search(&["--count", "--", query]);
        output
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("search --count printed {output:?}"))
    }

    /// Runs `garonne-collector search` with `arguments`; returns its standard output.
    pub fn search(&self, arguments: &[&str]) -> String {
        let output = Command::new(binary("garonne-collector"))
            .arg("search")
            .arg("--config")
            .arg(&self.config)
            .args(arguments)
            .output()
            .expect("run garonne-collector search");
        assert!(
            output.status.success(),
            "search {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("search prints UTF-8")
    }

    /// The documents `search` returns for `query`, parsed.
    pub fn documents(&self, query: &str, limit: usize) -> Vec<serde_json::Value> {
        let limit = limit.to_string();
        let output = self.search(&["--limit", &limit, "--", query]);
        output
            .lines()
            .map(|line| serde_json::from_str(line).expect("search prints JSON lines"))
            .collect()
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Writes an agent configuration shipping to `port` with `inputs` (TOML `[[input]]`
/// tables) and returns its path. `extra` is appended.
pub fn agent_config(dir: &Path, certs: &Certs, port: u16, inputs: &str, extra: &str) -> PathBuf {
    let config = dir.join("agent.toml");
    let text = format!(
        "[agent]\nid = \"web1\"\ndata_dir = \"{}\"\nscan_interval = \"1s\"\npoll_interval = \"200ms\"\n\
         {inputs}\n[collector]\naddresses = [\"127.0.0.1:{port}\"]\nserver_name = \"localhost\"\n\
         ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n{extra}\n",
        dir.join("agent-data").display(),
        certs.file("ca.pem"),
        certs.file("agent.pem"),
        certs.file("agent.key"),
    );
    fs::write(&config, text).expect("write agent configuration");
    config
}

/// Starts an agent on `config`.
pub fn start_agent(dir: &Path, config: &Path) -> anyhow::Result<Process> {
    let mut command = Command::new(binary("garonne-agent"));
    command.arg("run").arg("--config").arg(config);
    Process::spawn(
        "agent",
        &mut command,
        dir.join(format!("agent-{}.log", unique())),
    )
}

/// Copies a file, ending it with a newline if its last line has none (as a writer
/// finishing its line would).
pub fn copy_log(from: &Path, to: &Path) -> usize {
    let mut bytes = fs::read(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    fs::write(to, bytes).expect("write copy");
    lines
}

/// Appends bytes to a file, creating it if needed.
pub fn append(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(bytes).expect("append");
}

/// A stand-in search server speaking the Elasticsearch or OpenSearch HTTP API.
pub struct SearchServer {
    pub process: Process,
    pub url: String,
    pub product: &'static str,
}

fn tools() -> PathBuf {
    repo_root().join(".tools")
}

impl SearchServer {
    /// noida-db, speaking the Elasticsearch 8 API.
    pub fn noida(dir: &Path) -> anyhow::Result<SearchServer> {
        let program = tools().join("venv/bin/noida-db");
        let port = free_port();
        let data = dir.join("noida-data");
        fs::create_dir_all(&data)?;
        let mut command = Command::new(require_tool(&program));
        command.args(["start", "--data-dir"]).arg(&data).args([
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            &port.to_string(),
        ]);
        SearchServer::start("noida-db", command, dir, port)
    }

    /// osmem-server, speaking the OpenSearch API.
    pub fn osmem(dir: &Path) -> anyhow::Result<SearchServer> {
        let program =
            tools().join("venv/lib/python3.11/site-packages/osmem_server/bin/osmem-server");
        let found = fs::read_dir(tools().join("venv/lib"))
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(Result::ok)
            .map(|python| {
                python
                    .path()
                    .join("site-packages/osmem_server/bin/osmem-server")
            })
            .unwrap_or(program);
        let port = free_port();
        let mut command = Command::new(require_tool(&found));
        command.args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--no-stdin-watch",
            "--no-ja",
        ]);
        SearchServer::start("osmem-server", command, dir, port)
    }

    fn start(
        name: &'static str,
        mut command: Command,
        dir: &Path,
        port: u16,
    ) -> anyhow::Result<SearchServer> {
        let process = Process::spawn(name, &mut command, dir.join(format!("{name}.log")))?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let mut server = SearchServer {
            process,
            url,
            product: name,
        };
        wait_until(
            READY_TIMEOUT,
            &format!("{name} to answer on port {port}"),
            || {
                server.process.assert_running();
                client
                    .get(&server.url)
                    .send()
                    .is_ok_and(|response| response.status().is_success())
            },
        );
        Ok(server)
    }

    /// The `[elasticsearch]` table pointing a collector at this server.
    pub fn collector_table(&self) -> String {
        format!("[elasticsearch]\nurls = [\"{}\"]\n", self.url)
    }
}

fn require_tool(path: &Path) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: tests/run.sh installs the stand-in servers into .tools/",
        path.display()
    );
    path.to_path_buf()
}
