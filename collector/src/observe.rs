//! Extension point of the receiving pipeline: observers see every batch's documents
//! after parsing and before they are stored, in registration order. They may add
//! fields (template ids, importance) and feed what they watch (alert rules).
//!
//! Observers run on the blocking thread that parsed the batch: they must be quick and
//! must never wait on the network; anything slow goes to a queue of their own.

use crate::pipeline::Document;

pub trait DocumentObserver: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Sees, and may enrich, the documents of one batch from `agent_id`.
    fn observe(&self, agent_id: &str, documents: &mut [Document]);
}
