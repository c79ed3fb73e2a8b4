//! Helpers for tests in this crate: an HTTP receiver that records every request, free
//! ports, and the test tools installed by `tests/run.sh`.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    statuses: Mutex<VecDeque<u16>>,
}

/// An HTTP server on 127.0.0.1 that answers 200 (or the planned statuses, in order)
/// and records every request. Stops when dropped.
pub(crate) struct Receiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    count: watch::Receiver<usize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (count_sender, count) = watch::channel(0usize);
        let count_sender = Arc::new(count_sender);
        let state = (shared.clone(), count_sender);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (shared, count) = state.clone();
                async move {
                    let status = shared.statuses.lock().unwrap().pop_front().unwrap_or(200);
                    let mut requests = shared.requests.lock().unwrap();
                    requests.push(Recorded {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        headers,
                        body,
                    });
                    count.send_replace(requests.len());
                    (StatusCode::from_u16(status).unwrap(), "{\"ok\":true}")
                }
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            address,
            shared,
            count,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The next requests get these statuses, in order; later ones get 200.
    pub(crate) fn plan(&self, statuses: &[u16]) {
        self.shared.statuses.lock().unwrap().extend(statuses);
    }

    pub(crate) fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived; panics after `limit`.
    pub(crate) async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Recorded> {
        let mut watcher = self.count.clone();
        let arrived = tokio::time::timeout(limit, watcher.wait_for(|n| *n >= count)).await;
        assert!(
            arrived.is_ok(),
            "expected {count} requests within {limit:?}, got {}",
            self.count()
        );
        self.requests()
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap()
}

/// `.tools/` of the workspace, where `tests/run.sh` installs the test servers.
pub(crate) fn tools_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools"))
}

/// Python of the tools venv, with aiosmtpd installed.
pub(crate) fn smtp_python() -> PathBuf {
    let python = tools_dir().join("venv/bin/python");
    let installed = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .map(|output| output.status.success())
        .unwrap_or(false);
    assert!(
        installed,
        "aiosmtpd is not installed in {}: run tests/run.sh, which installs the test tools",
        python.display()
    );
    python
}
