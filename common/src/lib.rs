//! Types shared by the Garonne agent and collector: the event model, the wire protocol,
//! configuration and its validation, and TLS setup; with the `probes` feature, the
//! availability checks both of them run.

pub mod config;
pub mod event;
pub mod files;
#[cfg(feature = "probes")]
pub mod probe;
pub mod process;
pub mod tls;
pub mod units;
pub mod wire;

pub use event::{Batch, FileChunk, FileIdentity, Line, LineEntry, LineFlags, Module};
