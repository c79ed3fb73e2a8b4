//! HTTP routes of the semantic layer:
//!
//! - `GET /api/v1/similar?q=TEXT&limit=N` or `?event=ID`: nearest templates, as
//!   `{"results": [...]}` (and `"event"` for an event query).
//! - `GET /api/v1/templates?limit=N`: templates by count.
//! - `GET /api/v1/templates/status`: counts of the miner, queue and embedder.

use super::Semantic;
use super::similar::DEFAULT_LIMIT;
use crate::server::Collector;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
struct SemanticState {
    semantic: Arc<Semantic>,
    collector: Arc<Collector>,
}

/// The routes, with their state, ready to merge into the API router.
pub fn routes(semantic: Arc<Semantic>, collector: Arc<Collector>) -> Router {
    Router::new()
        .route("/api/v1/similar", get(similar))
        .route("/api/v1/templates", get(list))
        .route("/api/v1/templates/status", get(status))
        .with_state(SemanticState {
            semantic,
            collector,
        })
}

#[derive(Deserialize)]
struct SimilarParams {
    q: Option<String>,
    event: Option<String>,
    limit: Option<usize>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

async fn similar(
    State(state): State<SemanticState>,
    Query(params): Query<SimilarParams>,
) -> Response {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    let store = &state.collector.store;
    let semantic = &state.semantic;
    match (params.q.as_deref(), params.event.as_deref()) {
        (Some(text), None) if !text.trim().is_empty() => {
            match semantic.similar_to_text(text, limit, store).await {
                Ok(results) => axum::Json(json!({"results": results})).into_response(),
                Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            }
        }
        (None, Some(event)) => match semantic.similar_to_event(event, limit, store).await {
            Ok((event, results)) => {
                axum::Json(json!({"event": event, "results": results})).into_response()
            }
            Err(e @ super::SemanticError::NoSuchEvent(_)) => {
                error(StatusCode::NOT_FOUND, e.to_string())
            }
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
        _ => error(
            StatusCode::BAD_REQUEST,
            "give either q (free text) or event (an event id)".into(),
        ),
    }
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<usize>,
}

async fn list(State(state): State<SemanticState>, Query(params): Query<ListParams>) -> Response {
    let stats = state.semantic.stats();
    let limit = params.limit.unwrap_or(100);
    let templates: Vec<_> = stats
        .by_count()
        .into_iter()
        .take(limit)
        .map(|stats| stats.view())
        .collect();
    axum::Json(json!({"total": stats.templates.len(), "templates": templates})).into_response()
}

async fn status(State(state): State<SemanticState>) -> impl IntoResponse {
    axum::Json(state.semantic.status())
}
