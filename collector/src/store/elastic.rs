//! Elasticsearch and OpenSearch through the bulk API.
//!
//! Documents go to daily indices `{prefix}-{dataset}-{YYYY.MM.DD}` (by the event's own
//! date), which every version and both products support, unlike data streams. An
//! index template with ECS mappings for `{prefix}-*` is installed at start.
//!
//! Each document is written with `create` and its deterministic id: `409 conflict`
//! means it is already there and counts as success. `429` and `5xx` answers and
//! connection errors are retried with capped, jittered exponential backoff for up to
//! [`RETRY_BUDGET`]; after that the batch is reported unavailable and the agent keeps
//! it. A document refused for itself (a mapping conflict, `400`) goes to the
//! dead-letter index `{prefix}-deadletter-{YYYY.MM.DD}` with its original text and the
//! reason, and the rest of the batch proceeds.

use super::{SearchResult, StoreError, WriteReport};
use crate::pipeline::{Document, format_timestamp, index_name};
use crate::query::Query;
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{MultiNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};
use garonne_common::config::ElasticsearchConfig;
use serde_json::{Value, json};
use std::time::Duration;

/// How long one batch's retryable failures are retried before giving up for now.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct ElasticStore {
    client: Elasticsearch,
    urls: Vec<String>,
    prefix: String,
    bulk_max_bytes: usize,
}

/// How Elasticsearch answered for one document.
enum ItemOutcome {
    Created,
    Duplicate,
    Retry(String),
    Refused(String),
}

impl ElasticStore {
    pub fn connect(config: &ElasticsearchConfig) -> Result<ElasticStore, StoreError> {
        let fail = |what: &str, error: &dyn std::fmt::Display| {
            StoreError::Failed(format!("{what}: {error}"))
        };
        let urls = config
            .urls
            .iter()
            .map(|url| {
                Url::parse(url)
                    .map_err(|error| fail(&format!("elasticsearch.urls {url:?}"), &error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pool = MultiNodeConnectionPool::round_robin(urls, None);
        let mut builder = TransportBuilder::new(pool).timeout(REQUEST_TIMEOUT);
        if let Some(credentials) = credentials(config)? {
            builder = builder.auth(credentials);
        }
        if let Some(ca) = &config.ca {
            let pem = std::fs::read(ca)
                .map_err(|error| fail(&format!("elasticsearch.ca {}", ca.display()), &error))?;
            let certificate =
                Certificate::from_pem(&pem).map_err(|error| fail("elasticsearch.ca", &error))?;
            builder = builder.cert_validation(CertificateValidation::Full(certificate));
        }
        let transport = builder
            .build()
            .map_err(|error| fail("elasticsearch client", &error))?;
        Ok(ElasticStore {
            client: Elasticsearch::new(transport),
            urls: config.urls.clone(),
            prefix: config.index_prefix.clone(),
            bulk_max_bytes: config.bulk_max_bytes.as_usize(),
        })
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Installs the index template; retried while the cluster is unreachable.
    pub async fn install_template(&self) -> Result<(), StoreError> {
        let body = index_template(&self.prefix);
        let path = format!("/_index_template/{}", self.prefix);
        let mut delay = BACKOFF_START;
        let started = tokio::time::Instant::now();
        loop {
            match self
                .request(Method::Put, &path, Some(body.to_string().into_bytes()))
                .await
            {
                Ok((status, _)) if status < 300 => return Ok(()),
                Ok((status, answer)) if status < 500 && status != 429 => {
                    return Err(StoreError::Failed(format!(
                        "index template refused ({status}): {answer}"
                    )));
                }
                Ok((status, answer)) if started.elapsed() > RETRY_BUDGET => {
                    return Err(StoreError::Unavailable(format!(
                        "index template ({status}): {answer}"
                    )));
                }
                Err(error) if started.elapsed() > RETRY_BUDGET => return Err(error),
                _ => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    pub async fn write(&self, documents: Vec<Document>) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        let mut pending: Vec<&Document> = documents.iter().collect();
        let mut delay = BACKOFF_START;
        let started = tokio::time::Instant::now();
        let mut last_reason = String::new();
        while !pending.is_empty() {
            let mut retry = Vec::new();
            let mut refused = Vec::new();
            for request in split_requests(&pending, self.bulk_max_bytes, &self.prefix) {
                match self.bulk(&request.body).await {
                    Ok(items) => classify(
                        &request.documents,
                        items,
                        &mut report,
                        &mut retry,
                        &mut refused,
                        &mut last_reason,
                    ),
                    Err(error) => {
                        last_reason = error.to_string();
                        retry.extend(request.documents.iter().copied());
                    }
                }
            }
            if !refused.is_empty() {
                report.dead_lettered += self.dead_letter(&refused).await?;
            }
            pending = retry;
            if pending.is_empty() {
                break;
            }
            if started.elapsed() > RETRY_BUDGET {
                return Err(StoreError::Unavailable(format!(
                    "{} documents not accepted after {RETRY_BUDGET:?}: {last_reason}",
                    pending.len()
                )));
            }
            tracing::debug!(
                documents = pending.len(),
                reason = %last_reason,
                "retrying bulk request",
            );
            let jitter = 0.5 + rand::random::<f64>() / 2.0;
            tokio::time::sleep(delay.mul_f64(jitter)).await;
            delay = (delay * 2).min(BACKOFF_MAX);
        }
        Ok(report)
    }

    /// Sends one bulk body; returns each item's status and error, in order.
    async fn bulk(&self, body: &[u8]) -> Result<Vec<(u16, Option<Value>)>, StoreError> {
        let (status, answer) = self
            .request(Method::Post, "/_bulk", Some(body.to_vec()))
            .await?;
        if status == 429 || status >= 500 {
            return Err(StoreError::Unavailable(format!(
                "bulk request answered {status}: {}",
                shorten(&answer)
            )));
        }
        if status >= 300 {
            return Err(StoreError::Failed(format!(
                "bulk request refused ({status}): {}",
                shorten(&answer)
            )));
        }
        let parsed: Value = serde_json::from_str(&answer).map_err(|error| {
            StoreError::Unavailable(format!("bulk answer is not JSON: {error}"))
        })?;
        let items = parsed["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .into_iter()
            .map(|item| {
                let result = item
                    .as_object()
                    .and_then(|o| o.values().next())
                    .cloned()
                    .unwrap_or(Value::Null);
                let status = result["status"].as_u64().unwrap_or(500) as u16;
                (status, result.get("error").cloned())
            })
            .collect())
    }

    /// Writes refused documents to the dead-letter index; returns how many.
    async fn dead_letter(&self, refused: &[(&Document, String)]) -> Result<usize, StoreError> {
        let mut body = Vec::new();
        for (document, reason) in refused {
            let index = index_name(&self.prefix, "deadletter", document.timestamp);
            let letter = json!({
                "@timestamp": format_timestamp(document.timestamp),
                "event": {"original": document.body.get("event").and_then(|e| e.get("original")),
                          "dataset": "deadletter", "kind": "pipeline_error"},
                "error": {"message": reason},
                "garonne": {"document": Value::Object(document.body.clone()).to_string(),
                            "dataset": document.dataset},
            });
            push_create(&mut body, &index, &document.id, &letter);
        }
        let items = self.bulk(&body).await?;
        for (status, error) in &items {
            if !(200..300).contains(status) && *status != 409 {
                return Err(StoreError::Unavailable(format!(
                    "dead-letter write answered {status}: {error:?}"
                )));
            }
        }
        tracing::warn!(
            documents = refused.len(),
            first_reason = %refused[0].1,
            "documents refused by Elasticsearch, written to the dead-letter index",
        );
        Ok(refused.len())
    }

    pub async fn search(&self, query: &str, limit: usize) -> Result<SearchResult, StoreError> {
        let body = json!({
            "query": query_body(query)?,
            "size": limit,
            "sort": [{"@timestamp": {"order": "desc", "unmapped_type": "date"}}],
            "track_total_hits": true,
        });
        let path = format!("/{}-*/_search", self.prefix);
        let answer = self.json_request(Method::Post, &path, &body, query).await?;
        let total = answer["hits"]["total"]["value"]
            .as_u64()
            .or_else(|| answer["hits"]["total"].as_u64())
            .unwrap_or(0);
        let documents = answer["hits"]["hits"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|hit| {
                        let mut source = hit["_source"].clone();
                        if let Some(object) = source.as_object_mut() {
                            object.insert("_id".into(), hit["_id"].clone());
                        }
                        source
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(SearchResult { total, documents })
    }

    pub async fn count(&self, query: &str) -> Result<u64, StoreError> {
        let body = json!({"query": query_body(query)?});
        let path = format!("/{}-*/_count", self.prefix);
        let answer = self.json_request(Method::Post, &path, &body, query).await?;
        Ok(answer["count"].as_u64().unwrap_or(0))
    }

    /// Makes recent writes searchable now instead of within the refresh interval.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let path = format!("/{}-*/_refresh", self.prefix);
        self.request(Method::Post, &path, None).await.map(|_| ())
    }

    async fn json_request(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        query: &str,
    ) -> Result<Value, StoreError> {
        let (status, answer) = self
            .request(method, path, Some(body.to_string().into_bytes()))
            .await?;
        if status == 404 {
            return Ok(json!({"hits": {"total": {"value": 0}, "hits": []}, "count": 0}));
        }
        if status == 400 {
            return Err(StoreError::Query {
                query: query.to_string(),
                reason: shorten(&answer),
            });
        }
        if status >= 300 {
            return Err(StoreError::Unavailable(format!(
                "{path} answered {status}: {}",
                shorten(&answer)
            )));
        }
        serde_json::from_str(&answer)
            .map_err(|error| StoreError::Failed(format!("{path}: answer is not JSON: {error}")))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let response = self
            .client
            .send(method, path, headers, None::<&()>, body, None)
            .await
            .map_err(|error| StoreError::Unavailable(format!("{path}: {error}")))?;
        let status = response.status_code().as_u16();
        let text = response
            .text()
            .await
            .map_err(|error| StoreError::Unavailable(format!("{path}: {error}")))?;
        Ok((status, text))
    }
}

fn credentials(config: &ElasticsearchConfig) -> Result<Option<Credentials>, StoreError> {
    if let Some(key) = &config.api_key {
        return Ok(Some(Credentials::EncodedApiKey(key.clone())));
    }
    let Some(username) = &config.username else {
        return Ok(None);
    };
    let password = match (&config.password, &config.password_file) {
        (Some(password), _) => password.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|error| {
                StoreError::Failed(format!(
                    "elasticsearch.password_file {}: {error}",
                    file.display()
                ))
            })?
            .trim_end()
            .to_string(),
        (None, None) => String::new(),
    };
    Ok(Some(Credentials::Basic(username.clone(), password)))
}

fn query_body(query: &str) -> Result<Value, StoreError> {
    let parsed = Query::parse(query).map_err(|error| StoreError::Query {
        query: query.to_string(),
        reason: error.to_string(),
    })?;
    Ok(parsed.to_elasticsearch())
}

struct BulkRequest<'a> {
    documents: Vec<&'a Document>,
    body: Vec<u8>,
}

/// Groups documents into bulk bodies of at most `max_bytes` (a single larger document
/// still gets a request of its own).
fn split_requests<'a>(
    documents: &[&'a Document],
    max_bytes: usize,
    prefix: &str,
) -> Vec<BulkRequest<'a>> {
    let mut requests: Vec<BulkRequest<'a>> = Vec::new();
    let mut current = BulkRequest {
        documents: Vec::new(),
        body: Vec::new(),
    };
    for document in documents {
        let mut entry = Vec::new();
        let index = index_name(prefix, document.dataset, document.timestamp);
        push_create(&mut entry, &index, &document.id, &document.body);
        if !current.documents.is_empty() && current.body.len() + entry.len() > max_bytes {
            requests.push(std::mem::replace(
                &mut current,
                BulkRequest {
                    documents: Vec::new(),
                    body: Vec::new(),
                },
            ));
        }
        current.body.extend_from_slice(&entry);
        current.documents.push(document);
    }
    if !current.documents.is_empty() {
        requests.push(current);
    }
    requests
}

fn push_create(body: &mut Vec<u8>, index: &str, id: &str, document: &impl serde::Serialize) {
    let action = json!({"create": {"_index": index, "_id": id}});
    // Serializing JSON values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *body, &action);
    body.push(b'\n');
    let _ = serde_json::to_writer(&mut *body, document);
    body.push(b'\n');
}

fn classify<'a>(
    documents: &[&'a Document],
    items: Vec<(u16, Option<Value>)>,
    report: &mut WriteReport,
    retry: &mut Vec<&'a Document>,
    refused: &mut Vec<(&'a Document, String)>,
    last_reason: &mut String,
) {
    if items.len() != documents.len() {
        *last_reason = format!(
            "bulk answer has {} items for {} documents",
            items.len(),
            documents.len()
        );
        retry.extend(documents.iter().copied());
        return;
    }
    for (document, (status, error)) in documents.iter().zip(items) {
        let reason = || error.as_ref().map(|e| e.to_string()).unwrap_or_default();
        let outcome = match status {
            200..=299 => ItemOutcome::Created,
            409 => ItemOutcome::Duplicate,
            429 | 500..=599 => ItemOutcome::Retry(reason()),
            _ => ItemOutcome::Refused(reason()),
        };
        match outcome {
            ItemOutcome::Created => report.created += 1,
            ItemOutcome::Duplicate => report.duplicates += 1,
            ItemOutcome::Retry(reason) => {
                *last_reason = reason;
                retry.push(document);
            }
            ItemOutcome::Refused(reason) => refused.push((document, reason)),
        }
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(500).collect()
}

/// ECS mappings for the fields Garonne writes; other strings become keywords.
fn index_template(prefix: &str) -> Value {
    let keyword = json!({"type": "keyword", "ignore_above": 1024});
    let long = json!({"type": "long"});
    json!({
        "index_patterns": [format!("{prefix}-*")],
        "priority": 200,
        "template": {
            "mappings": {
                "dynamic_templates": [
                    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": keyword}}
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "message": {"type": "text"},
                    "event": {"properties": {
                        "original": {"type": "keyword", "index": false, "doc_values": false},
                        "ingested": {"type": "date"},
                        "dataset": keyword, "module": keyword, "outcome": keyword
                    }},
                    "error": {"properties": {"message": {"type": "text"}}},
                    "source": {"properties": {"ip": {"type": "ip"}, "port": long, "address": keyword}},
                    "destination": {"properties": {"port": long, "domain": keyword}},
                    "http": {"properties": {
                        "request": {"properties": {"method": keyword, "referrer": keyword}},
                        "response": {"properties": {
                            "status_code": long,
                            "body": {"properties": {"bytes": long}}
                        }},
                        "version": keyword
                    }},
                    "url": {"properties": {"original": {"type": "keyword", "ignore_above": 8192}}},
                    "user_agent": {"properties": {"original": {
                        "type": "keyword", "ignore_above": 1024,
                        "fields": {"text": {"type": "text"}}
                    }}},
                    "log": {"properties": {
                        "offset": long, "level": keyword, "flags": keyword,
                        "file": {"properties": {"path": keyword}}
                    }},
                    "process": {"properties": {"pid": long, "thread": {"properties": {"id": long}}}},
                    "host": {"properties": {"name": keyword}},
                    "garonne": {"properties": {"document": {"type": "keyword", "index": false, "doc_values": false}}}
                }
            }
        }
    })
}
