//! Where documents go: Elasticsearch (or OpenSearch) when configured, otherwise the
//! embedded index in the collector's data directory; or nowhere, for measurements.
//!
//! Every store writes with create semantics keyed by the document id, so a batch sent
//! twice (after a lost acknowledgement, an agent crash, or a collector crash) yields
//! each document once. A write returns only once the documents are durable in the
//! store; only then is the batch acknowledged.

pub mod elastic;
pub mod embedded;

use crate::pipeline::Document;
use serde_json::Value;

/// Store failures, split by what the caller should do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is unreachable or overloaded; the batch should be sent again later.
    #[error("store temporarily unavailable: {0}")]
    Unavailable(String),
    /// Configuration or programming error; retrying will not help.
    #[error("store failed: {0}")]
    Failed(String),
    #[error("invalid query {query:?}: {reason}")]
    Query { query: String, reason: String },
}

/// What a write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    pub created: usize,
    /// Already present: replays of documents written before.
    pub duplicates: usize,
    /// Refused by the store for themselves (mapping conflicts) and written to the
    /// dead-letter index instead.
    pub dead_lettered: usize,
}

/// Matches of a search, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub total: u64,
    pub documents: Vec<Value>,
}

pub enum Store {
    Elastic(elastic::ElasticStore),
    Embedded(embedded::EmbeddedStore),
    Discard,
}

impl Store {
    pub async fn write(&self, documents: Vec<Document>) -> Result<WriteReport, StoreError> {
        match self {
            Store::Elastic(store) => store.write(documents).await,
            Store::Embedded(store) => store.write(documents).await,
            // Nothing is stored, so nothing is counted as created: neither log lines
            // (which the discard path never makes documents of) nor monitor results.
            Store::Discard => Ok(WriteReport::default()),
        }
    }

    /// Free text and `field:value` terms; `*` matches everything.
    pub async fn search(&self, query: &str, limit: usize) -> Result<SearchResult, StoreError> {
        match self {
            Store::Elastic(store) => store.search(query, limit).await,
            Store::Embedded(store) => store.search(query, limit),
            Store::Discard => Ok(SearchResult {
                total: 0,
                documents: Vec::new(),
            }),
        }
    }

    pub async fn count(&self, query: &str) -> Result<u64, StoreError> {
        match self {
            Store::Elastic(store) => store.count(query).await,
            Store::Embedded(store) => Ok(store.search(query, 0)?.total),
            Store::Discard => Ok(0),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Elastic(store) => format!("elasticsearch {}", store.urls().join(",")),
            Store::Embedded(store) => format!("embedded index {}", store.path().display()),
            Store::Discard => "discard".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_discard_sink_counts_nothing_as_stored() {
        let document = Document {
            id: "web1-check-1".into(),
            dataset: "garonne.probe",
            timestamp: jiff::Timestamp::now(),
            body: serde_json::Map::new(),
        };
        let report = Store::Discard.write(vec![document]).await.unwrap();
        assert_eq!(report, WriteReport::default());
    }
}
