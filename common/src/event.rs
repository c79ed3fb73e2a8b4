//! The event model: what the agent reads and the collector receives.
//!
//! Lines travel grouped by file ([`FileChunk`]) inside a [`Batch`], so that the path,
//! identity and module are sent once per file rather than once per line. The collector
//! expands each line into one event carrying all of them.

use serde::{Deserialize, Serialize};
use std::fmt;
use xxhash_rust::xxh3::xxh3_128;

/// The kind of log a file holds; it selects the collector's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Module {
    /// Apache access logs: common, combined and vhost_combined formats.
    #[serde(rename = "apache.access")]
    ApacheAccess,
    /// Apache error logs, 2.2 and 2.4 formats.
    #[serde(rename = "apache.error")]
    ApacheError,
    /// RFC 3164 and RFC 5424 syslog lines.
    #[serde(rename = "syslog")]
    Syslog,
    /// One JSON object per line.
    #[serde(rename = "json")]
    Json,
    /// Any text: the line becomes the message.
    #[serde(rename = "plain")]
    Plain,
}

impl Module {
    /// Every module, in the order documentation lists them.
    pub const ALL: [Module; 5] = [
        Module::ApacheAccess,
        Module::ApacheError,
        Module::Syslog,
        Module::Json,
        Module::Plain,
    ];

    /// The name used in configuration files and in `event.dataset`.
    pub fn name(self) -> &'static str {
        match self {
            Module::ApacheAccess => "apache.access",
            Module::ApacheError => "apache.error",
            Module::Syslog => "syslog",
            Module::Json => "json",
            Module::Plain => "plain",
        }
    }

    /// Looks a module up by its configuration name.
    pub fn from_name(name: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|module| module.name() == name)
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What makes a file the same file across renames, and different after truncation or
/// inode reuse.
///
/// Device and inode tell files apart while they exist; the fingerprint, a hash of the
/// file's first line (at most [`FileIdentity::FINGERPRINT_BYTES`] bytes), tells a reused
/// inode or a copytruncated file from the one that was there before. The first line of an
/// append-only file never changes once complete, so the fingerprint of a growing file is
/// stable, and no line is read before it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    pub fingerprint: u64,
}

impl FileIdentity {
    /// How many leading bytes of the first line the fingerprint covers.
    pub const FINGERPRINT_BYTES: usize = 1024;
}

impl fmt::Display for FileIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{:016x}",
            self.device, self.inode, self.fingerprint
        )
    }
}

/// Per-line markers set by the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineFlags(pub u8);

impl LineFlags {
    /// The line was longer than `max_line_bytes` and was cut there.
    pub const TRUNCATED: LineFlags = LineFlags(1);

    pub fn contains(self, other: LineFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: LineFlags) {
        self.0 |= other.0;
    }
}

/// One line as read: raw bytes (not yet text), where it starts, and how long it was in
/// the file including its line ending, so that the next line's offset is known even when
/// the bytes were truncated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub offset: u64,
    pub length: u64,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    pub flags: LineFlags,
}

impl Line {
    /// Offset of the byte after this line's newline: where the next line starts.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Consecutive lines of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    pub path: String,
    pub identity: FileIdentity,
    pub module: Module,
    /// When the agent read these lines, in milliseconds since the Unix epoch.
    pub read_time_ms: i64,
    pub lines: Vec<Line>,
}

/// The unit the agent buffers, ships and gets acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub agent_id: String,
    pub host_name: String,
    pub chunks: Vec<FileChunk>,
}

impl Batch {
    pub fn line_count(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.lines.len()).sum()
    }
}

/// The deterministic document id of an event: a hash of the agent id, the file identity
/// and the line's byte offset. Replays of the same line produce the same id, which the
/// collector's create-only writes turn into one document.
pub fn event_id(agent_id: &str, identity: &FileIdentity, offset: u64) -> String {
    let mut key = Vec::with_capacity(agent_id.len() + 33);
    key.extend_from_slice(agent_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&identity.device.to_be_bytes());
    key.extend_from_slice(&identity.inode.to_be_bytes());
    key.extend_from_slice(&identity.fingerprint.to_be_bytes());
    key.extend_from_slice(&offset.to_be_bytes());
    format!("{:032x}", xxh3_128(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_differ_by_each_component() {
        let identity = FileIdentity {
            device: 1,
            inode: 2,
            fingerprint: 3,
        };
        let base = event_id("web1", &identity, 10);
        assert_eq!(base, event_id("web1", &identity, 10));
        assert_ne!(base, event_id("web2", &identity, 10));
        assert_ne!(base, event_id("web1", &identity, 11));
        let reused = FileIdentity {
            fingerprint: 4,
            ..identity
        };
        assert_ne!(base, event_id("web1", &reused, 10));
        assert_eq!(base.len(), 32);
    }

    #[test]
    fn module_names_round_trip() {
        for module in Module::ALL {
            assert_eq!(Module::from_name(module.name()), Some(module));
        }
        assert_eq!(Module::from_name("apache"), None);
    }
}
