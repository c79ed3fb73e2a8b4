//! A Qdrant stand-in speaking Qdrant's gRPC API, built on the server traits that
//! `qdrant-client` generates from Qdrant's protocol files, so the client talks to it
//! exactly as to Qdrant.
//!
//! It keeps collections in memory and implements what the collector uses, following
//! Qdrant's documented behaviour and error answers:
//!
//! - collections: create (single unnamed dense vector; a name already taken is
//!   `InvalidArgument` "Wrong input: Collection `x` already exists!"), get info,
//!   exists, list, delete; a missing collection is `NotFound`
//!   "Collection `x` doesn't exist!".
//! - points: upsert (a vector of another size than the collection's is
//!   `InvalidArgument` "Wrong input: Vector dimension error: expected dim: N, got M"),
//!   set payload by point ids, create field index, count, and query by nearest dense
//!   vector with `must` keyword filters; with cosine distance, vectors are normalized
//!   on insert as Qdrant does, so scores are cosine similarities.
//!
//! Every other method answers `Unimplemented`. Start it with [`QdrantStandin::start`]
//! on 127.0.0.1 and a free port; it stops when dropped.

use qdrant_client::qdrant::{
    self as api, collections_server::Collections, collections_server::CollectionsServer,
    points_server::Points, points_server::PointsServer, qdrant_server::Qdrant,
    qdrant_server::QdrantServer,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tonic::{Request, Response, Status};

type Payload = HashMap<String, api::Value>;

struct Collection {
    size: u64,
    distance: i32,
    points: BTreeMap<u64, (Vec<f32>, Payload)>,
    indexes: HashMap<String, i32>,
}

#[derive(Default)]
struct State {
    collections: HashMap<String, Collection>,
    operations: u64,
}

/// The service; clones share one state.
#[derive(Clone, Default)]
pub struct Service {
    state: Arc<Mutex<State>>,
}

fn missing(name: &str) -> Status {
    Status::not_found(format!("Not found: Collection `{name}` doesn't exist!"))
}

fn elapsed(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}

impl Service {
    fn with_collection<T>(
        &self,
        name: &str,
        action: impl FnOnce(&mut Collection) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let mut state = self.state.lock().expect("stand-in lock");
        let collection = state
            .collections
            .get_mut(name)
            .ok_or_else(|| missing(name))?;
        action(collection)
    }

    fn operation(&self, started: Instant) -> Response<api::PointsOperationResponse> {
        let mut state = self.state.lock().expect("stand-in lock");
        state.operations += 1;
        Response::new(api::PointsOperationResponse {
            result: Some(api::UpdateResult {
                operation_id: Some(state.operations),
                status: api::UpdateStatus::Completed as i32,
            }),
            time: elapsed(started),
            usage: None,
        })
    }

    /// Names of every collection (for tests).
    pub fn collection_names(&self) -> Vec<String> {
        let state = self.state.lock().expect("stand-in lock");
        state.collections.keys().cloned().collect()
    }

    /// Points in a collection (for tests).
    pub fn point_count(&self, name: &str) -> usize {
        let state = self.state.lock().expect("stand-in lock");
        state.collections.get(name).map_or(0, |c| c.points.len())
    }

    /// Indexed payload fields of a collection (for tests).
    pub fn indexed_fields(&self, name: &str) -> Vec<String> {
        let state = self.state.lock().expect("stand-in lock");
        let mut fields: Vec<String> = state
            .collections
            .get(name)
            .map(|c| c.indexes.keys().cloned().collect())
            .unwrap_or_default();
        fields.sort();
        fields
    }
}

fn point_id(id: Option<api::PointId>) -> Result<u64, Status> {
    match id.and_then(|id| id.point_id_options) {
        Some(api::point_id::PointIdOptions::Num(number)) => Ok(number),
        Some(api::point_id::PointIdOptions::Uuid(_)) => Err(Status::unimplemented(
            "the stand-in supports numeric point ids only",
        )),
        None => Err(Status::invalid_argument("Wrong input: point id is missing")),
    }
}

#[allow(deprecated)]
fn dense_vector(vectors: Option<api::Vectors>) -> Result<Vec<f32>, Status> {
    let vector = match vectors.and_then(|v| v.vectors_options) {
        Some(api::vectors::VectorsOptions::Vector(vector)) => vector,
        Some(api::vectors::VectorsOptions::Vectors(_)) => {
            return Err(Status::invalid_argument(
                "Wrong input: Not existing vector name error: the collection has one unnamed vector",
            ));
        }
        None => return Err(Status::invalid_argument("Wrong input: vector is missing")),
    };
    match vector.vector {
        Some(api::vector::Vector::Dense(dense)) => Ok(dense.data),
        Some(_) => Err(Status::invalid_argument(
            "Wrong input: the collection holds dense vectors only",
        )),
        None => Ok(vector.data),
    }
}

fn check_dimension(collection: &Collection, vector: &[f32]) -> Result<(), Status> {
    if vector.len() as u64 != collection.size {
        return Err(Status::invalid_argument(format!(
            "Wrong input: Vector dimension error: expected dim: {}, got {}",
            collection.size,
            vector.len()
        )));
    }
    Ok(())
}

fn normalized(mut vector: Vec<f32>, distance: i32) -> Vec<f32> {
    if distance == api::Distance::Cosine as i32 {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|x| *x /= norm);
        }
    }
    vector
}

fn score(distance: i32, a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    if distance == api::Distance::Euclid as i32 {
        -a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    } else {
        dot
    }
}

/// Whether `payload` satisfies every `must` keyword match of `filter`.
fn passes(filter: &Option<api::Filter>, payload: &Payload) -> Result<bool, Status> {
    let Some(filter) = filter else {
        return Ok(true);
    };
    if !filter.should.is_empty() || !filter.must_not.is_empty() || filter.min_should.is_some() {
        return Err(Status::unimplemented(
            "the stand-in supports `must` filters only",
        ));
    }
    for condition in &filter.must {
        let Some(api::condition::ConditionOneOf::Field(field)) = &condition.condition_one_of else {
            return Err(Status::unimplemented(
                "the stand-in supports field conditions only",
            ));
        };
        let wanted = match field.r#match.as_ref().and_then(|m| m.match_value.as_ref()) {
            Some(api::r#match::MatchValue::Keyword(keyword)) => keyword.clone(),
            _ => {
                return Err(Status::unimplemented(
                    "the stand-in supports keyword matches only",
                ));
            }
        };
        let value = payload.get(&field.key).map(|v| v.clone().into_json());
        let found = match value {
            Some(serde_json::Value::String(text)) => text == wanted,
            Some(serde_json::Value::Array(items)) => items.iter().any(|item| item == &wanted),
            _ => false,
        };
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

#[allow(deprecated)]
fn query_vector(query: Option<api::Query>) -> Result<Vec<f32>, Status> {
    let input = match query.and_then(|q| q.variant) {
        Some(api::query::Variant::Nearest(input)) => input,
        _ => {
            return Err(Status::unimplemented(
                "the stand-in answers nearest-vector queries only",
            ));
        }
    };
    match input.variant {
        Some(api::vector_input::Variant::Dense(dense)) => Ok(dense.data),
        _ => Err(Status::unimplemented(
            "the stand-in answers dense-vector queries only",
        )),
    }
}

type Answer<T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send + 'static>>;

/// Methods the stand-in does not serve: answered `Unimplemented`, like a server of an
/// older version would.
macro_rules! unimplemented_methods {
    ($(($method:ident, $request:ident, $response:ident)),* $(,)?) => {
        $(
            fn $method<'life0, 'async_trait>(
                &'life0 self,
                _request: Request<api::$request>,
            ) -> Pin<Box<dyn Future<Output = Result<Response<api::$response>, Status>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                let answer: Answer<api::$response> = Box::pin(async {
                    Err(Status::unimplemented(concat!(
                        "the Qdrant stand-in does not implement ",
                        stringify!($method)
                    )))
                });
                answer
            }
        )*
    };
}

#[tonic::async_trait]
impl Collections for Service {
    async fn get(
        &self,
        request: Request<api::GetCollectionInfoRequest>,
    ) -> Result<Response<api::GetCollectionInfoResponse>, Status> {
        let started = Instant::now();
        let name = request.into_inner().collection_name;
        let info = self.with_collection(&name, |collection| {
            let params = api::VectorParams {
                size: collection.size,
                distance: collection.distance,
                ..Default::default()
            };
            let payload_schema = collection
                .indexes
                .iter()
                .map(|(field, kind)| {
                    let info = api::PayloadSchemaInfo {
                        data_type: *kind,
                        points: Some(collection.points.len() as u64),
                        ..Default::default()
                    };
                    (field.clone(), info)
                })
                .collect();
            Ok(api::CollectionInfo {
                status: api::CollectionStatus::Green as i32,
                optimizer_status: Some(api::OptimizerStatus {
                    ok: true,
                    error: String::new(),
                }),
                segments_count: 1,
                points_count: Some(collection.points.len() as u64),
                indexed_vectors_count: Some(0),
                config: Some(api::CollectionConfig {
                    params: Some(api::CollectionParams {
                        shard_number: 1,
                        replication_factor: Some(1),
                        vectors_config: Some(api::VectorsConfig {
                            config: Some(api::vectors_config::Config::Params(params)),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                payload_schema,
                ..Default::default()
            })
        })?;
        Ok(Response::new(api::GetCollectionInfoResponse {
            result: Some(info),
            time: elapsed(started),
        }))
    }

    async fn list(
        &self,
        _request: Request<api::ListCollectionsRequest>,
    ) -> Result<Response<api::ListCollectionsResponse>, Status> {
        let started = Instant::now();
        let collections = self
            .collection_names()
            .into_iter()
            .map(|name| api::CollectionDescription { name })
            .collect();
        Ok(Response::new(api::ListCollectionsResponse {
            collections,
            time: elapsed(started),
        }))
    }

    async fn create(
        &self,
        request: Request<api::CreateCollection>,
    ) -> Result<Response<api::CollectionOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let name = request.collection_name;
        let params = match request.vectors_config.and_then(|c| c.config) {
            Some(api::vectors_config::Config::Params(params)) => params,
            Some(_) => {
                return Err(Status::unimplemented(
                    "the stand-in supports one unnamed vector per point only",
                ));
            }
            None => {
                return Err(Status::invalid_argument(
                    "Wrong input: vectors configuration is required",
                ));
            }
        };
        if params.size == 0 {
            return Err(Status::invalid_argument(
                "Validation error in body: [vectors_config.size: value 0 invalid, must be 1 or larger]",
            ));
        }
        let mut state = self.state.lock().expect("stand-in lock");
        if state.collections.contains_key(&name) {
            return Err(Status::invalid_argument(format!(
                "Wrong input: Collection `{name}` already exists!"
            )));
        }
        state.collections.insert(
            name,
            Collection {
                size: params.size,
                distance: params.distance,
                points: BTreeMap::new(),
                indexes: HashMap::new(),
            },
        );
        Ok(Response::new(api::CollectionOperationResponse {
            result: true,
            time: elapsed(started),
        }))
    }

    async fn delete(
        &self,
        request: Request<api::DeleteCollection>,
    ) -> Result<Response<api::CollectionOperationResponse>, Status> {
        let started = Instant::now();
        let name = request.into_inner().collection_name;
        let removed = self
            .state
            .lock()
            .expect("stand-in lock")
            .collections
            .remove(&name)
            .is_some();
        Ok(Response::new(api::CollectionOperationResponse {
            result: removed,
            time: elapsed(started),
        }))
    }

    async fn collection_exists(
        &self,
        request: Request<api::CollectionExistsRequest>,
    ) -> Result<Response<api::CollectionExistsResponse>, Status> {
        let started = Instant::now();
        let name = request.into_inner().collection_name;
        let exists = self
            .state
            .lock()
            .expect("stand-in lock")
            .collections
            .contains_key(&name);
        Ok(Response::new(api::CollectionExistsResponse {
            result: Some(api::CollectionExists { exists }),
            time: elapsed(started),
        }))
    }

    unimplemented_methods!(
        (update, UpdateCollection, CollectionOperationResponse),
        (update_aliases, ChangeAliases, CollectionOperationResponse),
        (
            list_collection_aliases,
            ListCollectionAliasesRequest,
            ListAliasesResponse
        ),
        (list_aliases, ListAliasesRequest, ListAliasesResponse),
        (
            collection_cluster_info,
            CollectionClusterInfoRequest,
            CollectionClusterInfoResponse
        ),
        (
            update_collection_cluster_setup,
            UpdateCollectionClusterSetupRequest,
            UpdateCollectionClusterSetupResponse
        ),
        (
            create_shard_key,
            CreateShardKeyRequest,
            CreateShardKeyResponse
        ),
        (
            delete_shard_key,
            DeleteShardKeyRequest,
            DeleteShardKeyResponse
        ),
        (list_shard_keys, ListShardKeysRequest, ListShardKeysResponse),
    );
}

#[tonic::async_trait]
impl Points for Service {
    async fn upsert(
        &self,
        request: Request<api::UpsertPoints>,
    ) -> Result<Response<api::PointsOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        self.with_collection(&request.collection_name, |collection| {
            // Checked whole before any change: a bad point rejects the request.
            let mut accepted = Vec::with_capacity(request.points.len());
            for point in request.points {
                let id = point_id(point.id)?;
                let vector = dense_vector(point.vectors)?;
                check_dimension(collection, &vector)?;
                accepted.push((id, normalized(vector, collection.distance), point.payload));
            }
            for (id, vector, payload) in accepted {
                collection.points.insert(id, (vector, payload));
            }
            Ok(())
        })?;
        Ok(self.operation(started))
    }

    async fn set_payload(
        &self,
        request: Request<api::SetPayloadPoints>,
    ) -> Result<Response<api::PointsOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let ids = match request
            .points_selector
            .and_then(|s| s.points_selector_one_of)
        {
            Some(api::points_selector::PointsSelectorOneOf::Points(list)) => list
                .ids
                .into_iter()
                .map(|id| point_id(Some(id)))
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(Status::unimplemented(
                    "the stand-in selects points by id only",
                ));
            }
        };
        self.with_collection(&request.collection_name, |collection| {
            for id in ids {
                // Qdrant ignores ids that do not exist when setting a payload.
                if let Some((_, payload)) = collection.points.get_mut(&id) {
                    payload.extend(request.payload.clone());
                }
            }
            Ok(())
        })?;
        Ok(self.operation(started))
    }

    async fn create_field_index(
        &self,
        request: Request<api::CreateFieldIndexCollection>,
    ) -> Result<Response<api::PointsOperationResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let kind = request.field_type.unwrap_or(api::FieldType::Keyword as i32);
        self.with_collection(&request.collection_name, |collection| {
            collection.indexes.insert(request.field_name, kind);
            Ok(())
        })?;
        Ok(self.operation(started))
    }

    async fn count(
        &self,
        request: Request<api::CountPoints>,
    ) -> Result<Response<api::CountResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let count = self.with_collection(&request.collection_name, |collection| {
            let mut count = 0;
            for (_, payload) in collection.points.values() {
                if passes(&request.filter, payload)? {
                    count += 1;
                }
            }
            Ok(count)
        })?;
        Ok(Response::new(api::CountResponse {
            result: Some(api::CountResult { count }),
            time: elapsed(started),
            usage: None,
        }))
    }

    async fn query(
        &self,
        request: Request<api::QueryPoints>,
    ) -> Result<Response<api::QueryResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let vector = query_vector(request.query)?;
        let limit = request.limit.unwrap_or(10) as usize;
        let with_payload = request
            .with_payload
            .and_then(|w| w.selector_options)
            .is_some_and(|o| {
                matches!(o, api::with_payload_selector::SelectorOptions::Enable(true))
            });
        let result = self.with_collection(&request.collection_name, |collection| {
            check_dimension(collection, &vector)?;
            let vector = normalized(vector, collection.distance);
            let mut scored = Vec::new();
            for (id, (stored, payload)) in &collection.points {
                if !passes(&request.filter, payload)? {
                    continue;
                }
                scored.push(api::ScoredPoint {
                    id: Some((*id).into()),
                    payload: if with_payload {
                        payload.clone()
                    } else {
                        HashMap::new()
                    },
                    score: score(collection.distance, &vector, stored),
                    version: 0,
                    ..Default::default()
                });
            }
            scored.sort_by(|a, b| b.score.total_cmp(&a.score));
            scored.truncate(limit);
            Ok(scored)
        })?;
        Ok(Response::new(api::QueryResponse {
            result,
            time: elapsed(started),
            usage: None,
        }))
    }

    unimplemented_methods!(
        (delete, DeletePoints, PointsOperationResponse),
        (get, GetPoints, GetResponse),
        (update_vectors, UpdatePointVectors, PointsOperationResponse),
        (delete_vectors, DeletePointVectors, PointsOperationResponse),
        (overwrite_payload, SetPayloadPoints, PointsOperationResponse),
        (delete_payload, DeletePayloadPoints, PointsOperationResponse),
        (clear_payload, ClearPayloadPoints, PointsOperationResponse),
        (
            delete_field_index,
            DeleteFieldIndexCollection,
            PointsOperationResponse
        ),
        (
            create_vector_name,
            CreateVectorNameRequest,
            PointsOperationResponse
        ),
        (
            delete_vector_name,
            DeleteVectorNameRequest,
            PointsOperationResponse
        ),
        (search, SearchPoints, SearchResponse),
        (search_batch, SearchBatchPoints, SearchBatchResponse),
        (search_groups, SearchPointGroups, SearchGroupsResponse),
        (scroll, ScrollPoints, ScrollResponse),
        (recommend, RecommendPoints, RecommendResponse),
        (
            recommend_batch,
            RecommendBatchPoints,
            RecommendBatchResponse
        ),
        (
            recommend_groups,
            RecommendPointGroups,
            RecommendGroupsResponse
        ),
        (discover, DiscoverPoints, DiscoverResponse),
        (discover_batch, DiscoverBatchPoints, DiscoverBatchResponse),
        (update_batch, UpdateBatchPoints, UpdateBatchResponse),
        (query_batch, QueryBatchPoints, QueryBatchResponse),
        (query_groups, QueryPointGroups, QueryGroupsResponse),
        (facet, FacetCounts, FacetResponse),
        (
            search_matrix_pairs,
            SearchMatrixPoints,
            SearchMatrixPairsResponse
        ),
        (
            search_matrix_offsets,
            SearchMatrixPoints,
            SearchMatrixOffsetsResponse
        ),
    );
}

#[tonic::async_trait]
impl Qdrant for Service {
    async fn health_check(
        &self,
        _request: Request<api::HealthCheckRequest>,
    ) -> Result<Response<api::HealthCheckReply>, Status> {
        Ok(Response::new(api::HealthCheckReply {
            title: "qdrant - vector search engine (garonne stand-in)".into(),
            version: "1.20.0".into(),
            commit: None,
        }))
    }
}

/// A running stand-in; stops when dropped.
pub struct QdrantStandin {
    /// `http://127.0.0.1:PORT`, for `[qdrant] url`.
    pub url: String,
    pub service: Service,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl QdrantStandin {
    /// Serves on 127.0.0.1 and a port the system picks, from a thread of its own.
    pub fn start() -> anyhow::Result<QdrantStandin> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let service = Service::default();
        let served = service.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("listener to tokio");
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let result = tonic::transport::Server::builder()
                    .add_service(CollectionsServer::new(served.clone()))
                    .add_service(PointsServer::new(served.clone()))
                    .add_service(QdrantServer::new(served))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await;
                if let Err(error) = result {
                    eprintln!("qdrant stand-in failed: {error}");
                }
            });
        });
        Ok(QdrantStandin {
            url: format!("http://{address}"),
            service,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The `[qdrant]` table pointing a collector at this stand-in.
    pub fn collector_table(&self, collection: &str) -> String {
        format!(
            "[qdrant]\nurl = \"{}\"\ncollection = \"{collection}\"\n",
            self.url
        )
    }
}

impl Drop for QdrantStandin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
