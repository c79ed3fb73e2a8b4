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
    /// Not a file: results of the monitors an agent runs, one JSON line per check
    /// (see `probe::ProbeReport`). Never configured on an input.
    #[serde(rename = "probe")]
    Probe,
}

impl Module {
    /// Every module an input may name, in the order documentation lists them.
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
            Module::Probe => "probe",
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

/// Where one line sits in its file and in its chunk's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEntry {
    /// Byte offset of the line's first byte in the file.
    pub offset: u64,
    /// Bytes the line takes in the file, line ending included, so that the next
    /// line's offset is known even when the text was truncated.
    pub length: u64,
    /// Bytes of this line in the chunk's `text`.
    pub text_len: u32,
    pub flags: LineFlags,
}

/// One line of a chunk, borrowed from it: raw bytes, not yet text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub offset: u64,
    pub length: u64,
    pub bytes: &'a [u8],
    pub flags: LineFlags,
}

impl Line<'_> {
    /// Offset of the byte after this line's newline: where the next line starts.
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// Consecutive lines of one file. The lines' bytes are stored back to back in `text`
/// so that reading, encoding and decoding cost no allocation per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    pub path: String,
    pub identity: FileIdentity,
    pub module: Module,
    /// When the agent read these lines, in milliseconds since the Unix epoch.
    pub read_time_ms: i64,
    pub entries: Vec<LineEntry>,
    #[serde(with = "serde_bytes")]
    pub text: Vec<u8>,
}

impl FileChunk {
    pub fn new(path: String, identity: FileIdentity, module: Module, read_time_ms: i64) -> Self {
        FileChunk {
            path,
            identity,
            module,
            read_time_ms,
            entries: Vec::new(),
            text: Vec::new(),
        }
    }

    /// Empties the chunk and gives it to another file, keeping the capacity of its
    /// buffers, so that a batch after batch reuses them.
    pub fn reuse(&mut self, path: &str, identity: FileIdentity, module: Module, read_time_ms: i64) {
        self.path.clear();
        self.path.push_str(path);
        self.identity = identity;
        self.module = module;
        self.read_time_ms = read_time_ms;
        self.entries.clear();
        self.text.clear();
    }

    pub fn push(&mut self, offset: u64, length: u64, bytes: &[u8], flags: LineFlags) {
        self.entries.push(LineEntry {
            offset,
            length,
            text_len: bytes.len() as u32,
            flags,
        });
        self.text.extend_from_slice(bytes);
    }

    pub fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        let mut start = 0usize;
        self.entries.iter().map(move |entry| {
            let end = (start + entry.text_len as usize).min(self.text.len());
            let bytes = &self.text[start.min(end)..end];
            start = end;
            Line {
                offset: entry.offset,
                length: entry.length,
                bytes,
                flags: entry.flags,
            }
        })
    }

    /// Offset just past the chunk's last line.
    pub fn end(&self) -> Option<u64> {
        self.entries.last().map(|entry| entry.offset + entry.length)
    }
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
        self.chunks.iter().map(|chunk| chunk.entries.len()).sum()
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
    fn chunk_lines_come_back_in_order_with_their_bytes() {
        let identity = FileIdentity {
            device: 1,
            inode: 2,
            fingerprint: 3,
        };
        let mut chunk = FileChunk::new("/x.log".into(), identity, Module::Plain, 0);
        chunk.push(0, 4, b"abc", LineFlags::default());
        chunk.push(4, 1, b"", LineFlags::default());
        chunk.push(5, 100, b"cut", LineFlags::TRUNCATED);
        let lines: Vec<_> = chunk.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0].bytes, lines[0].end()), (&b"abc"[..], 4));
        assert_eq!((lines[1].bytes, lines[1].end()), (&b""[..], 5));
        assert!(lines[2].flags.contains(LineFlags::TRUNCATED));
        assert_eq!(chunk.end(), Some(105));
    }

    #[test]
    fn module_names_round_trip() {
        for module in Module::ALL {
            assert_eq!(Module::from_name(module.name()), Some(module));
        }
        assert_eq!(Module::from_name("apache"), None);
        assert_eq!(
            Module::from_name("probe"),
            None,
            "no input reads probe results"
        );
    }
}
