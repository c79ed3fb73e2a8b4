//! The collector's HTTP API: health, Prometheus metrics, and the routes of each
//! subsystem (similar-log search, monitors, alerts) merged into one router.

use crate::server::Collector;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

/// What every route can reach.
#[derive(Clone)]
pub struct ApiState {
    pub collector: Arc<Collector>,
    /// Template mining and similar-log search, when enabled.
    pub semantic: Option<Arc<crate::semantic::Semantic>>,
}

pub fn router(state: ApiState) -> Router {
    let semantic = state
        .semantic
        .clone()
        .map(|semantic| crate::semantic::api::routes(semantic, state.collector.clone()));
    let router = Router::new()
        .route("/api/v1/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state);
    match semantic {
        Some(routes) => router.merge(routes),
        None => router,
    }
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let stopping = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(stopping)
        .await
    {
        tracing::error!(%error, "api server failed");
    }
}

async fn health(State(state): State<ApiState>) -> impl IntoResponse {
    axum::Json(
        json!({"status": "ok", "store": state.collector.store.describe(),
        "version": env!("CARGO_PKG_VERSION")}),
    )
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let metrics = &state.collector.metrics;
    let counters = [
        (
            "connections_accepted",
            "Agent connections accepted",
            &metrics.connections_accepted,
        ),
        (
            "connections_refused",
            "Agent connections refused (handshake or limit)",
            &metrics.connections_refused,
        ),
        (
            "batches_received",
            "Batches decoded",
            &metrics.batches_received,
        ),
        (
            "batches_rejected",
            "Batches refused because they do not decode",
            &metrics.batches_rejected,
        ),
        (
            "batches_deferred",
            "Batches answered retry-later because the store was unavailable",
            &metrics.batches_deferred,
        ),
        (
            "events_received",
            "Lines received",
            &metrics.events_received,
        ),
        (
            "documents_created",
            "Documents newly stored",
            &metrics.documents_created,
        ),
        (
            "documents_duplicate",
            "Documents already stored (replays)",
            &metrics.documents_duplicate,
        ),
        (
            "documents_dead_lettered",
            "Documents refused by the store, kept in the dead-letter index",
            &metrics.documents_dead_lettered,
        ),
        (
            "lines_unparsed",
            "Lines their module's parser could not read (kept with error.message)",
            &metrics.lines_unparsed,
        ),
        ("lines_blank", "Blank lines skipped", &metrics.lines_blank),
        (
            "lines_invalid_utf8",
            "Lines with invalid UTF-8, converted lossily",
            &metrics.lines_invalid_utf8,
        ),
        (
            "lines_truncated",
            "Lines cut at max_line_bytes by the agent",
            &metrics.lines_truncated,
        ),
    ];
    let mut text = String::new();
    for (name, help, counter) in counters {
        let _ = writeln!(text, "# HELP garonne_collector_{name}_total {help}");
        let _ = writeln!(text, "# TYPE garonne_collector_{name}_total counter");
        let _ = writeln!(
            text,
            "garonne_collector_{name}_total {}",
            counter.load(Ordering::Relaxed)
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
