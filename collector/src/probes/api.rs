//! `GET /api/v1/monitors` (every monitor) and `GET /api/v1/monitors/{name}`: state,
//! since when, last error, uptime over 24 h, 7 d and 30 d.

use super::Registry;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

pub fn routes(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/api/v1/monitors", get(list))
        .route("/api/v1/monitors/{name}", get(one))
        .with_state(registry)
}

async fn list(State(registry): State<Arc<Registry>>) -> Response {
    let monitors = registry.views(jiff::Timestamp::now());
    axum::Json(json!({ "monitors": monitors })).into_response()
}

async fn one(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    let views = registry.views(jiff::Timestamp::now());
    match views.into_iter().find(|view| view.name == name) {
        Some(view) => axum::Json(view).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": format!("no monitor named {name:?}") })),
        )
            .into_response(),
    }
}
