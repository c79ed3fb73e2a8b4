//! Online log template mining: groups messages that a program printed from the same
//! format string, one message at a time, and names each group with a stable id.
//!
//! # Algorithm
//!
//! The miner follows Drain (a fixed-depth parse tree, a token similarity threshold,
//! templates generalised with `<*>`) with changes that let one configuration serve every
//! kind of log.
//!
//! 1. **Tokens.** A message is split on ASCII whitespace. Past
//!    [`MinerConfig::max_tokens`] the rest of the line folds into one trailing `<*>`.
//! 2. **Masking** (`mask.rs`). Each token's obvious variables become `<*>` with generic
//!    rules only: numbers (with units such as `12ms`, `64MB`, `10%`), dates and times,
//!    IPv4 and IPv6 addresses, `host:port`, domain names, UUIDs, MAC addresses, hex,
//!    paths, URLs, the value of `key=value`, and digit runs that stand between separators
//!    inside a token (`blk_-42` is `blk_<*>`). Wrapping punctuation is kept
//!    (`[10.0.0.1]` is `[<*>]`). Month and weekday names are masked when they sit beside
//!    another part of a date. Runs of equal masked tokens fold into one, so a list of
//!    block ids or a date of five tokens does not change the token count.
//! 3. **Tree.** The first layer is keyed by token count, the next `depth - 2` layers by
//!    the leading tokens; a leading token that holds a digit or `<*>` goes to the
//!    wildcard child, as does any new token once a node has
//!    [`MinerConfig::max_children`] children. A leaf lists its templates in creation
//!    order. A lookup follows the exact child, else the wildcard child.
//! 4. **Similarity.** Against each template of the leaf, a position scores 1 when the
//!    tokens are equal (two masked `<*>` are equal: both are values at the same place),
//!    1 when the template has `<*>` and the token may hold a variable, and 0.5 when the
//!    template has `<*>` and the token is a plain word. The score is the mean over
//!    positions. The best template at or above [`MinerConfig::similarity_threshold`]
//!    wins, the earliest on a tie. Counting masked values as agreement is what lets the
//!    threshold be high (0.8): messages that share their shape but differ in a word,
//!    such as `... Bye Bye [preauth]` and `... disconnected by user`, stay apart, while
//!    the half credit keeps a template that has learnt a word variable (a user name)
//!    accepting new words without letting it decay into wildcards only.
//! 5. **Generalisation.** When a message joins a template, every position where they
//!    differ becomes `<*>`; [`TemplateMatch::template_changed`] reports it. A template
//!    never gains constants back. No match: a new template is made of the masked tokens.
//!
//! # Ids
//!
//! A template's id is the XXH3-64 hash of its first message's masked tokens joined by
//! single spaces, fixed at creation and kept when the template generalises. Two
//! collectors that see the same first line of a template therefore agree on its id
//! whatever else they saw before, and ids mean the same after a restart. If the hash is
//! already taken by a live template (a hash collision, or a reappearing evicted template
//! whose first line masks to the text of another), the text is hashed again with a
//! counter appended, which is still deterministic for a given input order.
//!
//! # Memory
//!
//! At most [`MinerConfig::max_templates`] templates live at once; beyond that the least
//! recently matched one is forgotten, and its tree nodes are pruned so that the tree is
//! always a function of the live templates. Messages are masked into one reusable buffer;
//! a message allocates only for the template text it returns, and for its tokens when it
//! creates a template.
//!
//! # Persistence
//!
//! [`TemplateMiner::to_bytes`] (or any serde serialiser) writes a JSON document:
//! `version` (1), `config`, `clock` (messages seen), and `templates`, each with its `id`,
//! `route` (the tree keys it was filed under), `tokens`, `count`, `created` and
//! `last_seen` stamps, in creation order. [`TemplateMiner::from_bytes`] refuses another
//! version or a configuration out of bounds, then files the templates again along their
//! routes in creation order, which rebuilds the same tree with the same leaf order: a
//! reloaded miner classifies every later message exactly as the original would have.
//! The state is derived data (it can be rebuilt by replaying logs); losing it costs new
//! ids for templates whose first line differs from what is replayed first.
//!
//! # Known limits
//!
//! Templates are never split or merged after the fact: a template that absorbed a
//! message of another event keeps it, and an event whose messages vary in token count in
//! ways masking does not fold (free text of varying length) gets one template per count.
//! Words that name one of a few states (`NEW`, `RUNNING`) are treated like any other
//! word, so such messages merge into one template with `<*>` at that place when the rest
//! agrees. Short messages (under five tokens) never generalise a word, since one
//! differing word already costs more than the threshold allows.
//!
//! Finding the least recently matched template to evict scans all templates, so once
//! the limit is reached every new template costs time proportional to the limit: input
//! that never repeats slows to tens of thousands of lines per second at the default.
//!
//! `header.rs` splits a raw line into header fields and the message body with
//! Loghub-style format strings; the miner itself only ever sees the body.

mod header;
mod mask;
mod miner;
#[cfg(test)]
mod tests;

pub use header::{Fields, HeaderFormat, HeaderFormatError, MAX_FIELD_BYTES};
pub use mask::WILDCARD;
pub use miner::{
    DEFAULT_DEPTH, DEFAULT_MAX_CHILDREN, DEFAULT_MAX_TEMPLATES, DEFAULT_MAX_TOKENS,
    DEFAULT_SIMILARITY_THRESHOLD, MinerConfig, MinerConfigError, MinerStateError, TemplateId,
    TemplateInfo, TemplateMatch, TemplateMiner,
};
