//! Similar-log search: free text or an event is embedded with the same model as the
//! templates, and the nearest templates come back with their statistics and a few
//! example events read from the store.

use super::embed::prepare_text;
use super::observer::{MESSAGE_FIELD, TEMPLATE_ID_FIELD, TEMPLATE_TEXT_FIELD};
use super::queue::ItemKind;
use super::stats::{format_ms, parse_id};
use super::vectors::{PointPayload, VectorHit};
use super::worker::template_payload;
use super::{Semantic, SemanticError};
use crate::parse::flatten;
use crate::store::Store;
use crate::templates::TemplateId;
use serde::Serialize;
use serde_json::Value;

/// Results returned when no limit is given.
pub const DEFAULT_LIMIT: usize = 10;
/// Results returned at most.
pub const MAX_LIMIT: usize = 100;
/// Example events fetched from the store per result.
pub const EXAMPLES_SHOWN: usize = 3;

/// One template (or embedded event) near the query.
#[derive(Debug, Clone, Serialize)]
pub struct SimilarHit {
    /// `template` or `event`.
    pub kind: &'static str,
    /// The template id (`log.template.id`), or the embedded event's key.
    pub template_id: String,
    pub template: String,
    /// Cosine similarity, 1 for the same direction.
    pub score: f32,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub datasets: Vec<String>,
    pub hosts: Vec<String>,
    /// Documents of example events, as the store returns them.
    pub examples: Vec<Value>,
}

impl Semantic {
    /// The templates nearest to `text`, best first.
    pub async fn similar_to_text(
        &self,
        text: &str,
        limit: usize,
        store: &Store,
    ) -> Result<Vec<SimilarHit>, SemanticError> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let mut vectors = self.embedder().embed(&[prepare_text(text)]).await?;
        let vector = vectors.pop().unwrap_or_default();
        let hits = self.vectors().search(&vector, limit, None).await?;
        let mut results = Vec::with_capacity(hits.len());
        for hit in hits {
            results.push(self.describe_hit(hit, store).await);
        }
        Ok(results)
    }

    /// The templates nearest to the event with id `event_id`; returns the event too.
    pub async fn similar_to_event(
        &self,
        event_id: &str,
        limit: usize,
        store: &Store,
    ) -> Result<(Value, Vec<SimilarHit>), SemanticError> {
        let event = find_event(store, event_id)
            .await?
            .ok_or_else(|| SemanticError::NoSuchEvent(event_id.to_string()))?;
        let Some(object) = event.as_object() else {
            return Err(SemanticError::NoSuchEvent(event_id.to_string()));
        };
        let flat = flatten(object);
        let own = flat
            .get(TEMPLATE_ID_FIELD)
            .and_then(Value::as_str)
            .and_then(parse_id);
        // The template's current text is what its vector was made from; the event
        // carries the text of the time it arrived, which may since have generalised.
        let current = own.and_then(|id| {
            let state = self.shared.state.lock().expect("miner lock");
            state.stats.get(id).map(|stats| stats.template.clone())
        });
        let text = current.unwrap_or_else(|| {
            [TEMPLATE_TEXT_FIELD, MESSAGE_FIELD, "event.original"]
                .iter()
                .find_map(|field| flat.get(*field).and_then(Value::as_str))
                .unwrap_or_default()
                .to_string()
        });
        let mut hits = self.similar_to_text(&text, limit, store).await?;
        // Templates whose prepared texts are equal score the same; the event's own
        // template goes first among them.
        if let Some(own) = own.map(|id| id.to_string())
            && let Some(position) = hits.iter().position(|hit| hit.template_id == own)
            && hits[position].score >= hits[0].score - 1e-5
        {
            let hit = hits.remove(position);
            hits.insert(0, hit);
        }
        Ok((event, hits))
    }

    /// Fills a vector hit with live statistics (when this process mines) or the
    /// point's payload, and fetches its examples.
    async fn describe_hit(&self, hit: VectorHit, store: &Store) -> SimilarHit {
        let payload = match hit.kind {
            ItemKind::Template => {
                let state = self.shared.state.lock().expect("miner lock");
                state
                    .stats
                    .get(TemplateId(hit.key))
                    .map(template_payload)
                    .filter(|live| live.count >= hit.payload.count)
            }
            ItemKind::Event => None,
        };
        let payload: PointPayload = payload.unwrap_or(hit.payload);
        let mut examples = Vec::new();
        for id in payload.examples.iter().take(EXAMPLES_SHOWN) {
            match find_event(store, id).await {
                Ok(Some(document)) => examples.push(document),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, event = %id, "cannot fetch an example event");
                    break;
                }
            }
        }
        SimilarHit {
            kind: hit.kind.as_str(),
            template_id: format!("{:016x}", hit.key),
            template: payload.text,
            score: hit.score,
            count: payload.count,
            first_seen: format_ms(payload.first_seen_ms),
            last_seen: format_ms(payload.last_seen_ms),
            datasets: payload.datasets,
            hosts: payload.hosts,
            examples,
        }
    }
}

/// The stored document with this id, if any.
pub async fn find_event(store: &Store, event_id: &str) -> Result<Option<Value>, SemanticError> {
    if event_id.is_empty()
        || !event_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Ok(None);
    }
    let result = store.search(&format!("_id:{event_id}"), 1).await?;
    Ok(result.documents.into_iter().next())
}
