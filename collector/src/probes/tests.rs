//! Monitor tests against servers started on 127.0.0.1 by each test: an HTTP server
//! with healthy, slow, redirecting and JSON pages; TLS servers with self-signed and
//! expired certificates made with rcgen; a closed TCP port; a real OpenID provider
//! (npm `oidc-provider`, see `tests/oidc/provider.mjs`).

use super::check::{CheckResult, Checker};
use super::config::{MonitorConfig, parse_monitors};
use super::history::StateDir;
use super::runner::DocumentSink;
use super::state::Status;
use super::{Registry, run_monitors};
use crate::notify::Notifier;
use crate::notify::testing::{Receiver, free_port, tools_dir};
use crate::pipeline::Document;
use crate::store::{StoreError, WriteReport};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Servers

/// The page `/flaky` answers with this status.
#[derive(Clone)]
struct Site {
    flaky: Arc<AtomicU16>,
}

async fn start_site() -> (SocketAddr, Site) {
    let site = Site {
        flaky: Arc::new(AtomicU16::new(200)),
    };
    let app = axum::Router::new()
        .route("/healthy", get(|| async { "Welcome to the school portal" }))
        .route("/slow", get(slow))
        .route("/loop/a", get(|| async { redirect("/loop/b") }))
        .route("/loop/b", get(|| async { redirect("/loop/a") }))
        .route("/chain/{n}", get(chain))
        .route(
            "/json",
            get(|| async { axum::Json(serde_json::json!({"status": {"db": "ok"}, "version": 3})) }),
        )
        .route("/flaky", get(flaky))
        .with_state(site.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, site)
}

async fn slow(Query(query): Query<HashMap<String, u64>>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(query["ms"])).await;
    "finally"
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

async fn chain(Path(n): Path<u32>) -> Response {
    if n == 0 {
        "end of chain".into_response()
    } else {
        redirect(&format!("/chain/{}", n - 1))
    }
}

async fn flaky(State(site): State<Site>) -> Response {
    let status = site.flaky.load(Ordering::SeqCst);
    (StatusCode::from_u16(status).unwrap(), "flaky page").into_response()
}

/// A TLS server answering every request with a fixed page; its certificate is
/// self-signed for 127.0.0.1 and valid from `not_before` to `not_after` days from now.
async fn start_tls(not_before: i64, not_after: i64) -> SocketAddr {
    use rcgen::{CertificateParams, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    garonne_common::tls::install_crypto_provider();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(not_before);
    params.not_after = now + time::Duration::days(not_after);
    let certificate = params.self_signed(&key).unwrap();
    let chain = vec![CertificateDer::from(certificate.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = "secure portal";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    address
}

// ---------------------------------------------------------------------------------------
// Helpers

/// The `[[monitor]]` tables of `text`, checked; also used by `agents`' tests.
pub(super) fn monitors(text: &str, channels: &[&str]) -> Vec<MonitorConfig> {
    let mut document: toml::Table = text.parse().unwrap();
    let tables: Vec<toml::Table> = match document.remove("monitor") {
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| item.as_table().cloned())
            .collect(),
        _ => Vec::new(),
    };
    let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
    parse_monitors(&tables, &channels).unwrap_or_else(|problems| panic!("{problems:#?}"))
}

fn monitor(text: &str) -> MonitorConfig {
    monitors(&format!("[[monitor]]\nname = \"m\"\n{text}"), &[]).remove(0)
}

async fn check(text: &str) -> CheckResult {
    garonne_common::tls::install_crypto_provider();
    let monitor = monitor(text);
    Checker::new()
        .unwrap()
        .run(&monitor.kind, monitor.timeout)
        .await
}

fn reason(result: &CheckResult) -> &str {
    result.outcome.reason.as_deref().unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// HTTP and TCP checks

#[tokio::test]
async fn healthy_page_is_up() {
    let (site, _) = start_site().await;
    let result = check(&format!("type = \"http\"\nurl = \"http://{site}/healthy\"")).await;
    assert_eq!(result.outcome.status, Status::Up, "{result:?}");
    assert_eq!(result.http_status, Some(200));
    assert_eq!(result.final_url, Some(format!("http://{site}/healthy")));
}

#[tokio::test]
async fn slow_page_is_degraded_then_down_on_timeout() {
    let (site, _) = start_site().await;
    let degraded = check(&format!(
        "type = \"http\"\nurl = \"http://{site}/slow?ms=400\"\ndegraded_after = \"150ms\"\ntimeout = \"3s\""
    ))
    .await;
    assert_eq!(degraded.outcome.status, Status::Degraded, "{degraded:?}");
    assert!(reason(&degraded).contains("slower than degraded_after 150 ms"));

    let down = check(&format!(
        "type = \"http\"\nurl = \"http://{site}/slow?ms=5000\"\ndegraded_after = \"150ms\"\ntimeout = \"500ms\""
    ))
    .await;
    assert_eq!(down.outcome.status, Status::Down, "{down:?}");
    assert!(down.duration < Duration::from_secs(2), "{down:?}");
    assert!(
        reason(&down).contains("timeout") || reason(&down).contains("no answer within 500 ms"),
        "{down:?}"
    );
}

#[tokio::test]
async fn redirect_loop_is_detected_by_revisited_url() {
    let (site, _) = start_site().await;
    let result = check(&format!(
        "type = \"http\"\nurl = \"http://{site}/loop/a\"\nmax_redirects = 30"
    ))
    .await;
    assert_eq!(result.outcome.status, Status::Down);
    assert_eq!(
        reason(&result),
        format!(
            "redirect loop: http://{site}/loop/a -> http://{site}/loop/b -> http://{site}/loop/a"
        )
    );
}

#[tokio::test]
async fn long_finite_redirect_chain_is_up_and_a_short_limit_is_down() {
    let (site, _) = start_site().await;
    let result = check(&format!(
        "type = \"http\"\nurl = \"http://{site}/chain/15\"\nmax_redirects = 20\nkeyword = \"end of chain\""
    ))
    .await;
    assert_eq!(result.outcome.status, Status::Up, "{result:?}");
    assert_eq!(result.final_url, Some(format!("http://{site}/chain/0")));

    let limited = check(&format!(
        "type = \"http\"\nurl = \"http://{site}/chain/15\"\nmax_redirects = 5"
    ))
    .await;
    assert_eq!(limited.outcome.status, Status::Down);
    assert!(
        reason(&limited).starts_with("more than 5 redirects"),
        "{limited:?}"
    );
}

#[tokio::test]
async fn keywords_present_and_absent_with_explicit_case() {
    let (site, _) = start_site().await;
    let url = format!("http://{site}/healthy");
    let cases = [
        ("keyword = \"school portal\"", Status::Up),
        ("keyword = \"School Portal\"", Status::Down),
        (
            "keyword = \"School Portal\"\ncase_sensitive = false",
            Status::Up,
        ),
        ("keyword_absent = \"Fatal error\"", Status::Up),
        ("keyword_absent = \"Welcome\"", Status::Down),
        (
            "keyword_absent = \"WELCOME\"\ncase_sensitive = false",
            Status::Down,
        ),
    ];
    for (setting, expected) in cases {
        let result = check(&format!("type = \"http\"\nurl = \"{url}\"\n{setting}")).await;
        assert_eq!(result.outcome.status, expected, "{setting}: {result:?}");
    }
    let missing = check(&format!(
        "type = \"http\"\nurl = \"{url}\"\nkeyword = \"Moodle\""
    ))
    .await;
    assert_eq!(
        reason(&missing),
        "keyword \"Moodle\" not found in the response"
    );
}

#[tokio::test]
async fn json_field_must_equal_the_value() {
    let (site, _) = start_site().await;
    let url = format!("http://{site}/json");
    let ok = check(&format!(
        "type = \"http\"\nurl = \"{url}\"\njson_path = \"status.db\"\njson_equals = \"ok\""
    ))
    .await;
    assert_eq!(ok.outcome.status, Status::Up, "{ok:?}");
    let number = check(&format!(
        "type = \"http\"\nurl = \"{url}\"\njson_path = \"version\"\njson_equals = 3"
    ))
    .await;
    assert_eq!(number.outcome.status, Status::Up, "{number:?}");
    let wrong = check(&format!(
        "type = \"http\"\nurl = \"{url}\"\njson_path = \"status.db\"\njson_equals = \"down\""
    ))
    .await;
    assert_eq!(wrong.outcome.status, Status::Down);
    assert_eq!(
        reason(&wrong),
        "JSON field status.db is \"ok\", expected \"down\""
    );
}

#[tokio::test]
async fn unexpected_status_is_down() {
    let (site, state) = start_site().await;
    state.flaky.store(503, Ordering::SeqCst);
    let result = check(&format!("type = \"http\"\nurl = \"http://{site}/flaky\"")).await;
    assert_eq!(result.outcome.status, Status::Down);
    assert_eq!(reason(&result), "HTTP 503, expected 200-299");
    let accepted = check(&format!(
        "type = \"http\"\nurl = \"http://{site}/flaky\"\naccepted_statuses = [\"500-503\"]"
    ))
    .await;
    assert_eq!(accepted.outcome.status, Status::Up);
}

#[tokio::test]
async fn self_signed_certificate_is_down_unless_verification_is_off() {
    let site = start_tls(-1, 90).await;
    let verified = check(&format!("type = \"http\"\nurl = \"https://{site}/\"")).await;
    assert_eq!(verified.outcome.status, Status::Down);
    assert!(reason(&verified).contains("UnknownIssuer"), "{verified:?}");

    let trusting = check(&format!(
        "type = \"http\"\nurl = \"https://{site}/\"\ntls_verify = false\nkeyword = \"secure portal\""
    ))
    .await;
    assert_eq!(trusting.outcome.status, Status::Up, "{trusting:?}");
    let not_after = trusting.outcome.cert_not_after.expect("certificate expiry");
    let days = not_after.duration_since(jiff::Timestamp::now()).as_hours() / 24;
    assert!((88..=90).contains(&days), "{not_after}");
}

#[tokio::test]
async fn expired_certificate_is_down_and_its_date_is_kept_when_trusted() {
    let site = start_tls(-30, -2).await;
    let verified = check(&format!("type = \"http\"\nurl = \"https://{site}/\"")).await;
    assert_eq!(verified.outcome.status, Status::Down);
    assert!(
        reason(&verified).contains("certificate expired"),
        "{verified:?}"
    );

    let trusting = check(&format!(
        "type = \"http\"\nurl = \"https://{site}/\"\ntls_verify = false"
    ))
    .await;
    assert_eq!(trusting.outcome.status, Status::Up);
    assert!(trusting.outcome.cert_not_after.unwrap() < jiff::Timestamp::now());
}

#[tokio::test]
async fn tcp_port_open_is_up_and_closed_is_down() {
    let (site, _) = start_site().await;
    let open = check(&format!(
        "type = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}",
        site.port()
    ))
    .await;
    assert_eq!(open.outcome.status, Status::Up, "{open:?}");
    let closed = free_port();
    let result = check(&format!(
        "type = \"tcp\"\nhost = \"127.0.0.1\"\nport = {closed}"
    ))
    .await;
    assert_eq!(result.outcome.status, Status::Down);
    assert!(reason(&result).contains("Connection refused"), "{result:?}");
}

// ---------------------------------------------------------------------------------------
// The runner: notifications, history, restart

/// Keeps documents in memory.
#[derive(Default)]
struct MemorySink {
    documents: Mutex<Vec<Document>>,
}

impl DocumentSink for MemorySink {
    fn write_documents(
        &self,
        documents: Vec<Document>,
    ) -> BoxFuture<'_, Result<WriteReport, StoreError>> {
        let created = documents.len();
        self.documents.lock().unwrap().extend(documents);
        Box::pin(async move {
            Ok(WriteReport {
                created,
                ..WriteReport::default()
            })
        })
    }
}

/// Waits until `condition` holds for the monitor's view; panics after [`WAIT`].
async fn wait_for_view(
    registry: &Registry,
    what: &str,
    condition: impl Fn(&super::MonitorView) -> bool,
) -> super::MonitorView {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = registry.views(jiff::Timestamp::now()).remove(0);
        if condition(&view) {
            return view;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {view:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Running {
    registry: Arc<Registry>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }
}

fn start_monitor(
    monitor: &MonitorConfig,
    data_dir: &std::path::Path,
    sink: Arc<dyn DocumentSink>,
    notifier: &Notifier,
) -> Running {
    let registry = Arc::new(Registry::load(vec![monitor.clone()], data_dir));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_monitors(
        registry.clone(),
        sink,
        notifier.clone(),
        shutdown,
    ));
    Running {
        registry,
        stop,
        task,
    }
}

fn hook(receiver: &Receiver) -> Notifier {
    let table: toml::Table = format!(
        "name = \"hook\"\ntype = \"webhook\"\nurl = \"{}/hook\"\nrate_limit = 1000",
        receiver.url()
    )
    .parse()
    .unwrap();
    Notifier::from_config(&[table]).unwrap()
}

fn titles(receiver: &Receiver) -> Vec<String> {
    receiver
        .requests()
        .iter()
        .map(|request| request.json()["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn state_changes_notify_once_each_with_reminders_and_recovery_and_survive_restart() {
    let (site, state) = start_site().await;
    let receiver = Receiver::start().await;
    let notifier = hook(&receiver);
    let data = tempfile::tempdir().unwrap();
    let mut monitor = monitors(
        &format!(
            r#"
            [[monitor]]
            name = "flaky"
            type = "http"
            url = "http://{site}/flaky"
            retries = 2
            remind_every = 3
            notify = ["hook"]
            "#
        ),
        &["hook"],
    )
    .remove(0);
    // Faster than configuration allows, to keep the test short.
    monitor.interval = Duration::from_millis(150);
    monitor.retry_interval = Duration::from_millis(100);
    monitor.timeout = Duration::from_secs(2);
    let sink = Arc::new(MemorySink::default());
    let running = start_monitor(&monitor, data.path(), sink.clone(), &notifier);
    let registry = running.registry.clone();

    wait_for_view(&registry, "first check", |view| view.status == "UP").await;
    // One failed check followed by a good one is absorbed by the retries.
    state.flaky.store(500, Ordering::SeqCst);
    wait_for_view(&registry, "retrying", |view| view.status == "PENDING").await;
    state.flaky.store(200, Ordering::SeqCst);
    wait_for_view(&registry, "back up", |view| view.status == "UP").await;
    assert_eq!(receiver.count(), 0, "{:?}", titles(&receiver));

    // A real outage: one DOWN message, then reminders.
    state.flaky.store(500, Ordering::SeqCst);
    receiver.wait_for(2, WAIT).await;
    let down = wait_for_view(&registry, "down", |view| view.status == "DOWN").await;
    assert_eq!(
        down.last_error.as_deref(),
        Some("HTTP 500, expected 200-299")
    );
    assert_eq!(
        titles(&receiver)[..2],
        ["flaky is DOWN", "flaky is still DOWN"]
    );

    // Recovery, with the outage's length.
    state.flaky.store(200, Ordering::SeqCst);
    wait_for_view(&registry, "recovered", |view| view.status == "UP").await;
    let all = receiver.wait_for(3, WAIT).await;
    let titles = titles(&receiver);
    assert_eq!(titles.iter().filter(|t| *t == "flaky is DOWN").count(), 1);
    assert_eq!(titles.last().unwrap(), "flaky is UP again");
    let recovery = all.last().unwrap().json();
    assert_eq!(recovery["severity"], "resolved");
    assert!(
        recovery["fields"]["outage"]
            .as_str()
            .unwrap()
            .ends_with('s')
    );
    assert_eq!(recovery["key"], "monitor:flaky");
    let before_restart = registry.views(jiff::Timestamp::now()).remove(0);
    running.stop().await;

    // History: every check was stored with its fields.
    let documents = sink.documents.lock().unwrap().clone();
    assert!(documents.len() >= 6, "{}", documents.len());
    assert!(documents.iter().all(|d| d.dataset == "probes"));
    let failed = documents
        .iter()
        .find(|d| d.body["monitor"]["status"] == "down")
        .expect("a down check");
    assert_eq!(failed.body["monitor"]["name"], "flaky");
    assert_eq!(failed.body["http"]["response"]["status_code"], 500);
    assert_eq!(
        failed.body["error"]["message"],
        "HTTP 500, expected 200-299"
    );
    assert!(failed.body["event"]["duration"].as_u64().unwrap() > 0);
    assert_eq!(failed.body["url"]["full"], format!("http://{site}/flaky"));

    // Restart: the state and the uptime come back, nothing is announced again.
    let sent = receiver.count();
    let restarted = start_monitor(
        &monitor,
        data.path(),
        Arc::new(MemorySink::default()),
        &notifier,
    );
    let view = restarted.registry.views(jiff::Timestamp::now()).remove(0);
    assert_eq!(
        (view.status.as_str(), &view.since),
        ("UP", &before_restart.since)
    );
    let uptime = view.uptime.day.unwrap();
    assert!(uptime > 0.0 && uptime < 1.0, "{uptime}");
    let last = view.last_check.clone();
    wait_for_view(&restarted.registry, "a check after restart", |v| {
        v.last_check != last
    })
    .await;
    restarted.stop().await;
    assert_eq!(receiver.count(), sent);
    assert!(StateDir::new(data.path()).load("flaky", None).is_some());
}

#[tokio::test]
async fn certificate_expiry_warning_is_sent_once() {
    let site = start_tls(-80, 10).await;
    let receiver = Receiver::start().await;
    let notifier = hook(&receiver);
    let data = tempfile::tempdir().unwrap();
    let mut monitor = monitors(
        &format!(
            r#"
            [[monitor]]
            name = "portal"
            type = "http"
            url = "https://{site}/"
            tls_verify = false
            notify = ["hook"]
            "#
        ),
        &["hook"],
    )
    .remove(0);
    monitor.interval = Duration::from_millis(50);
    let running = start_monitor(
        &monitor,
        data.path(),
        Arc::new(MemorySink::default()),
        &notifier,
    );
    let warning = receiver.wait_for(1, WAIT).await.remove(0).json();
    assert_eq!(
        warning["title"],
        "portal: TLS certificate expires in 9 days"
    );
    assert_eq!(warning["severity"], "warning");
    // Several more checks, no second warning.
    let registry = running.registry.clone();
    let first = registry.views(jiff::Timestamp::now()).remove(0).last_check;
    wait_for_view(&registry, "more checks", |view| view.last_check != first).await;
    let second = registry.views(jiff::Timestamp::now()).remove(0).last_check;
    wait_for_view(&registry, "more checks", |view| view.last_check != second).await;
    running.stop().await;
    assert_eq!(receiver.count(), 1);
    let view = Registry::load(vec![monitor], data.path())
        .views(jiff::Timestamp::now())
        .remove(0);
    assert!(view.certificate_not_after.is_some());
}

#[tokio::test]
async fn api_lists_monitors_with_state_and_uptime() {
    let data = tempfile::tempdir().unwrap();
    let configured = monitors(
        "[[monitor]]\nname = \"db\"\ntype = \"tcp\"\nhost = \"127.0.0.1\"\nport = 5432",
        &[],
    );
    let registry = Arc::new(Registry::load(configured, data.path()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, super::api::routes(registry)).await });
    let client = reqwest::Client::new();
    let list: serde_json::Value = client
        .get(format!("http://{address}/api/v1/monitors"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &list["monitors"][0];
    assert_eq!(first["name"], "db");
    assert_eq!(first["status"], "PENDING");
    assert_eq!(first["target"], "127.0.0.1:5432");
    assert!(first["uptime"]["24h"].is_null());
    let missing = client
        .get(format!("http://{address}/api/v1/monitors/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

// ---------------------------------------------------------------------------------------
// OpenID Connect against a real provider

/// Runs `tests/oidc/provider.mjs` (npm `oidc-provider`) on a free port; the provider
/// lives as long as the returned child.
async fn start_oidc_provider() -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let tools = tools_dir();
    let module = tools.join("oidc/node_modules/oidc-provider");
    assert!(
        module.exists(),
        "oidc-provider is not installed in {}: run tests/run.sh, which installs the test tools",
        module.display()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/oidc/provider.mjs");
    let port = free_port();
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .arg(port.to_string())
        .arg(tools.join("oidc/node_modules"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start node (needed for the OpenID provider; see tests/run.sh)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("READY") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "OpenID provider did not start");
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn oidc_client_credentials_report_the_providers_own_errors() {
    let (_provider, issuer) = start_oidc_provider().await;
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), "right-secret\n").unwrap();
    let oidc = |client: &str, secret: &str| {
        format!("type = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"{client}\"\n{secret}")
    };

    let discovery_only = check(&format!("type = \"oidc\"\nissuer = \"{issuer}\"")).await;
    assert_eq!(
        discovery_only.outcome.status,
        Status::Up,
        "{discovery_only:?}"
    );

    let file = format!(
        "client_secret_file = {:?}",
        secret_file.path().display().to_string()
    );
    let right = check(&oidc("garonne-probe", &file)).await;
    assert_eq!(right.outcome.status, Status::Up, "{right:?}");

    let wrong = check(&oidc("garonne-probe", "client_secret = \"wrong-secret\"")).await;
    assert_eq!(wrong.outcome.status, Status::Down);
    assert_eq!(wrong.error_code.as_deref(), Some("invalid_client"));
    assert!(
        reason(&wrong)
            .starts_with("token endpoint refused the client credentials grant: invalid_client: "),
        "{wrong:?}"
    );
    assert!(!reason(&wrong).contains("wrong-secret"));

    let not_allowed = check(&oidc("web-login", "client_secret = \"web-secret\"")).await;
    assert_eq!(not_allowed.outcome.status, Status::Down);
    assert_eq!(
        not_allowed.error_code.as_deref(),
        Some("invalid_request"),
        "{not_allowed:?}"
    );
    assert!(
        reason(&not_allowed).contains("requested grant type is not allowed for this client"),
        "{not_allowed:?}"
    );

    let wrong_issuer = check(&format!("type = \"oidc\"\nissuer = \"{issuer}/other\"")).await;
    assert_eq!(wrong_issuer.outcome.status, Status::Down);
}
