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

/// An error's message followed by those of its causes, each once: the reason a QUIC
/// connection was lost behind the I/O error reporting it, the TLS alert behind an HTTP
/// client's error.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let message = inner.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = inner.source();
    }
    text
}

pub use event::{Batch, FileChunk, FileIdentity, Line, LineEntry, LineFlags, Module};
