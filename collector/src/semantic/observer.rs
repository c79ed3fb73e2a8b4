//! The template observer: names every event's template as it passes through the
//! pipeline, keeps the templates' statistics, and queues what needs a vector. It holds
//! two short locks per batch and never waits on the network.

use super::Shared;
use super::filter;
use super::queue::{EmbedItem, EventOrigin, ItemKind};
use crate::observe::DocumentObserver;
use crate::parse::insert_path;
use crate::pipeline::Document;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use xxhash_rust::xxh3::xxh3_64;

/// Field the miner reads: the message body, without the header the parser took off.
pub const MESSAGE_FIELD: &str = "message";
pub const TEMPLATE_ID_FIELD: &str = "log.template.id";
pub const TEMPLATE_TEXT_FIELD: &str = "log.template.text";
/// Characters of an event's message embedded at most.
const MAX_EVENT_TEXT_CHARS: usize = 2_000;

pub struct TemplateObserver {
    pub(super) shared: Arc<Shared>,
}

impl DocumentObserver for TemplateObserver {
    fn name(&self) -> &'static str {
        "templates"
    }

    fn observe(&self, _agent_id: &str, documents: &mut [Document]) {
        let shared = &self.shared;
        let mut state = shared.state.lock().expect("miner lock");
        let mut queued = Vec::new();
        for document in documents.iter_mut() {
            let Some(message) = document.body.get(MESSAGE_FIELD).and_then(Value::as_str) else {
                continue;
            };
            let found = state.miner.add(message);
            let event = shared
                .embed_events
                .as_ref()
                .filter(|query| filter::matches(query, &document.body))
                .map(|_| event_item(message, document));
            let host = host_name(document);
            let time_ms = document.timestamp.as_millisecond();
            state
                .stats
                .entry(found.id, &found.template, time_ms)
                .record(document, host.as_deref(), shared.examples);
            state.touched.insert(found.id.0);
            if found.is_new || found.template_changed {
                queued.push(EmbedItem {
                    kind: ItemKind::Template,
                    key: found.id.0,
                    text: found.template.clone(),
                    origin: None,
                });
            }
            if let Some(item) = event
                && state.seen_events.insert(item.key)
            {
                queued.push(item);
            }
            insert_path(
                &mut document.body,
                TEMPLATE_ID_FIELD,
                Value::String(found.id.to_string()),
            );
            insert_path(
                &mut document.body,
                TEMPLATE_TEXT_FIELD,
                Value::String(found.template),
            );
            shared.metrics.events.fetch_add(1, Ordering::Relaxed);
        }
        state.unsaved = true;
        if queued.is_empty() {
            return;
        }
        // Queued while the miner is still locked, so a saved state never holds a new
        // template that the saved queue lacks.
        let mut queue = shared.queue.lock().expect("queue lock");
        for item in queued {
            if !queue.push(item) {
                shared.metrics.queue_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(queue);
        drop(state);
        shared.wake.notify_one();
    }
}

fn host_name(document: &Document) -> Option<String> {
    document
        .body
        .get("host")
        .and_then(|host| host.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn event_item(message: &str, document: &Document) -> EmbedItem {
    let text: String = message.chars().take(MAX_EVENT_TEXT_CHARS).collect();
    EmbedItem {
        kind: ItemKind::Event,
        key: event_key(message),
        text,
        origin: Some(EventOrigin {
            event_id: document.id.clone(),
            dataset: document.dataset.to_string(),
            host: host_name(document),
            time_ms: document.timestamp.as_millisecond(),
        }),
    }
}

/// The key that deduplicates embedded events: the hash of the message lowercased, with
/// every run of digits as one `0` and whitespace collapsed, so that messages differing
/// only in numbers (ids, counters, times) share one vector.
pub fn event_key(message: &str) -> u64 {
    let mut normalized = String::with_capacity(message.len());
    let mut in_digits = false;
    for word in message.split_whitespace() {
        if !normalized.is_empty() {
            normalized.push(' ');
        }
        for character in word.chars() {
            if character.is_ascii_digit() {
                if !in_digits {
                    normalized.push('0');
                }
                in_digits = true;
            } else {
                in_digits = false;
                normalized.extend(character.to_lowercase());
            }
        }
        in_digits = false;
    }
    xxh3_64(normalized.as_bytes())
}
