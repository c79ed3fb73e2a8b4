//! Vectors in Qdrant, through its gRPC API.
//!
//! The collection is made on first use with the embedding model's dimension and cosine
//! distance, with payload indexes on the fields search filters or sorts on (`kind`,
//! `key`, `datasets`, `hosts`, `count`, `last_seen_ms`). An existing collection of
//! another dimension is never changed: every write reports the mismatch until an
//! operator drops the collection or names another one. Point ids are the template ids
//! (and event keys) as unsigned integers, so a template written again replaces its
//! point.

use super::config::QdrantConfig;
use super::queue::ItemKind;
use super::vectors::{PointPayload, VectorHit, VectorPoint};
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, Distance, FieldType,
    Filter, PointStruct, PointsIdsList, QueryPointsBuilder, SetPayloadPointsBuilder,
    UpsertPointsBuilder, VectorParamsBuilder, point_id::PointIdOptions, vectors_config,
};
use qdrant_client::{Payload, Qdrant};

/// Payload fields indexed for filtering, with their index type.
const PAYLOAD_INDEXES: [(&str, FieldType); 6] = [
    ("kind", FieldType::Keyword),
    ("key", FieldType::Keyword),
    ("datasets", FieldType::Keyword),
    ("hosts", FieldType::Keyword),
    ("count", FieldType::Integer),
    ("last_seen_ms", FieldType::Integer),
];

#[derive(Debug, thiserror::Error)]
pub enum QdrantError {
    #[error("cannot set up the qdrant client for {url}: {reason}")]
    Client { url: String, reason: String },
    #[error(
        "qdrant collection {collection:?} holds vectors of {existing} dimensions but the \
         embedding model gives {wanted}: drop the collection or set another [qdrant] collection"
    )]
    Dimension {
        collection: String,
        existing: u64,
        wanted: usize,
    },
    #[error("qdrant {operation} on collection {collection:?} failed: {reason}")]
    Request {
        operation: &'static str,
        collection: String,
        reason: String,
    },
}

pub struct QdrantVectors {
    client: Qdrant,
    config: QdrantConfig,
    /// The dimension the collection was checked to hold.
    checked_dimension: tokio::sync::Mutex<Option<usize>>,
}

impl QdrantVectors {
    /// Sets up the client; it connects on first request, so a Qdrant that is down
    /// delays embedding but not the collector's start.
    pub fn new(config: &QdrantConfig) -> Result<QdrantVectors, QdrantError> {
        let client = Qdrant::from_url(&config.url)
            .api_key(config.api_key.clone())
            .timeout(config.timeout)
            .skip_compatibility_check()
            .build()
            .map_err(|error| QdrantError::Client {
                url: config.url.clone(),
                reason: error.to_string(),
            })?;
        Ok(QdrantVectors {
            client,
            config: config.clone(),
            checked_dimension: tokio::sync::Mutex::new(None),
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "qdrant {} collection {}",
            self.config.url, self.config.collection
        )
    }

    fn failed(&self, operation: &'static str, error: impl std::fmt::Display) -> QdrantError {
        QdrantError::Request {
            operation,
            collection: self.config.collection.clone(),
            reason: error.to_string(),
        }
    }

    /// Makes sure the collection exists and holds vectors of `dimension`.
    pub async fn ensure_collection(&self, dimension: usize) -> Result<(), QdrantError> {
        let mut checked = self.checked_dimension.lock().await;
        if *checked == Some(dimension) {
            return Ok(());
        }
        let name = &self.config.collection;
        let exists = self
            .client
            .collection_exists(name)
            .await
            .map_err(|e| self.failed("collection check", e))?;
        if !exists {
            self.create_collection(dimension).await?;
        }
        let existing = self.collection_dimension().await?;
        if existing != dimension as u64 {
            return Err(QdrantError::Dimension {
                collection: name.clone(),
                existing,
                wanted: dimension,
            });
        }
        *checked = Some(dimension);
        Ok(())
    }

    async fn create_collection(&self, dimension: usize) -> Result<(), QdrantError> {
        let name = &self.config.collection;
        let created = self
            .client
            .create_collection(
                CreateCollectionBuilder::new(name)
                    .vectors_config(VectorParamsBuilder::new(dimension as u64, Distance::Cosine)),
            )
            .await;
        if let Err(error) = created {
            // Another collector may have made it first; the dimension check decides.
            let exists = self.client.collection_exists(name).await.unwrap_or(false);
            if !exists {
                return Err(self.failed("collection creation", error));
            }
        }
        for (field, kind) in PAYLOAD_INDEXES {
            self.client
                .create_field_index(CreateFieldIndexCollectionBuilder::new(name, field, kind))
                .await
                .map_err(|e| self.failed("payload index creation", e))?;
        }
        tracing::info!(collection = %name, dimension, "qdrant collection created");
        Ok(())
    }

    async fn collection_dimension(&self) -> Result<u64, QdrantError> {
        let info = self
            .client
            .collection_info(&self.config.collection)
            .await
            .map_err(|e| self.failed("collection info", e))?;
        let config = info
            .result
            .and_then(|result| result.config)
            .and_then(|config| config.params)
            .and_then(|params| params.vectors_config)
            .and_then(|vectors| vectors.config);
        match config {
            Some(vectors_config::Config::Params(params)) => Ok(params.size),
            _ => Err(self.failed(
                "collection info",
                "the collection has no single unnamed vector",
            )),
        }
    }

    pub async fn upsert(&self, points: Vec<VectorPoint>) -> Result<(), QdrantError> {
        let Some(first) = points.first() else {
            return Ok(());
        };
        self.ensure_collection(first.vector.len()).await?;
        let mut structs = Vec::with_capacity(points.len());
        for point in points {
            let payload = to_payload(&point.payload).map_err(|e| self.failed("upsert", e))?;
            structs.push(PointStruct::new(point.key, point.vector, payload));
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.config.collection, structs).wait(true))
            .await
            .map_err(|e| self.failed("upsert", e))?;
        Ok(())
    }

    pub async fn search(
        &self,
        vector: &[f32],
        limit: usize,
        kind: Option<ItemKind>,
    ) -> Result<Vec<VectorHit>, QdrantError> {
        let mut request = QueryPointsBuilder::new(&self.config.collection)
            .query(vector.to_vec())
            .limit(limit as u64)
            .with_payload(true);
        if let Some(kind) = kind {
            request = request.filter(Filter::must([Condition::matches(
                "kind",
                kind.as_str().to_string(),
            )]));
        }
        let response = self
            .client
            .query(request)
            .await
            .map_err(|e| self.failed("query", e))?;
        let mut hits = Vec::with_capacity(response.result.len());
        for point in response.result {
            let Some(PointIdOptions::Num(key)) = point.id.and_then(|id| id.point_id_options) else {
                continue;
            };
            let json = serde_json::Value::from(Payload::from(point.payload));
            let payload: PointPayload = serde_json::from_value(json).unwrap_or_default();
            let kind = if payload.kind == ItemKind::Event.as_str() {
                ItemKind::Event
            } else {
                ItemKind::Template
            };
            hits.push(VectorHit {
                kind,
                key,
                score: point.score,
                payload,
            });
        }
        Ok(hits)
    }

    /// Replaces the payloads of points already stored (counts, last seen, hosts).
    pub async fn refresh(
        &self,
        payloads: Vec<(ItemKind, u64, PointPayload)>,
    ) -> Result<(), QdrantError> {
        for (_, key, payload) in payloads {
            let payload = to_payload(&payload).map_err(|e| self.failed("set payload", e))?;
            self.client
                .set_payload(
                    SetPayloadPointsBuilder::new(&self.config.collection, payload)
                        .points_selector(PointsIdsList {
                            ids: vec![key.into()],
                        })
                        .wait(false),
                )
                .await
                .map_err(|e| self.failed("set payload", e))?;
        }
        Ok(())
    }
}

fn to_payload(payload: &PointPayload) -> Result<Payload, String> {
    let json = serde_json::to_value(payload).map_err(|e| e.to_string())?;
    Payload::try_from(json).map_err(|e| e.to_string())
}
