//! The Garonne collector: receives batches from agents over QUIC, parses them into ECS
//! documents and indexes them into Elasticsearch or an embedded index.

pub mod alerts;
pub mod api;
pub mod certs;
pub mod continuity;
pub mod notify;
pub mod observe;
pub mod parse;
pub mod pipeline;
pub mod probes;
pub mod query;
pub mod semantic;
pub mod server;
pub mod store;
pub mod templates;
