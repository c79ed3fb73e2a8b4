//! Splitting a file's new bytes into lines.
//!
//! A line ends at `\n`; a `\r` before it is dropped. A last line without its newline is
//! not emitted: its bytes wait in memory and the checkpoint stays at its start until the
//! newline arrives. A line longer than `max_line_bytes` keeps its first
//! `max_line_bytes` bytes and is flagged truncated; the rest is skipped without being
//! held, so memory stays bounded whatever the input.

use crate::identity::{TAIL_BYTES, hash_tail, read_fully_at, tail_hash};
use garonne_common::{FileChunk, LineFlags};
use std::fs::File;
use std::io;

/// Size of each read from a file with that much waiting.
const READ_BYTES: usize = 256 * 1024;
/// Smallest read buffer: a few lines.
const MIN_READ_BYTES: usize = 16 * 1024;

/// The buffer files are read into, one per tailer. It grows only as far as the bytes
/// waiting in a file ask (up to [`READ_BYTES`]), and [`ReadBuffer::release`] gives it
/// back, so an agent following quiet files holds a few KiB rather than the full size.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    bytes: Vec<u8>,
}

impl ReadBuffer {
    /// A buffer for reading a file known to have `waiting` bytes more.
    fn for_reading(&mut self, waiting: u64) -> &mut [u8] {
        let wanted = waiting.clamp(MIN_READ_BYTES as u64, READ_BYTES as u64) as usize;
        if self.bytes.len() < wanted {
            self.bytes.resize(wanted, 0);
        }
        &mut self.bytes
    }

    /// Frees the buffer; the next read allocates it again.
    pub fn release(&mut self) {
        self.bytes = Vec::new();
    }

    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Reading position and incomplete-line state of one file.
#[derive(Debug)]
pub struct LineReader {
    /// Start of the first line not yet emitted: the checkpoint.
    offset: u64,
    /// Where the next read starts (after the bytes held in `partial`).
    read_position: u64,
    /// Bytes of the incomplete line read so far, at most `max_line_bytes`.
    partial: Vec<u8>,
    max_line_bytes: usize,
    /// Hash of the bytes just before `offset` (as `identity::tail_hash` computes it),
    /// taken from the bytes read when they were split, so that it describes what was
    /// read even if the file is truncated right after. `None` when those bytes were not
    /// all in one read; the file is then asked.
    tail_hash: Option<u64>,
}

/// What one call to [`LineReader::read_lines`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOutcome {
    pub bytes_read: u64,
    pub lines: usize,
    /// The file had no more bytes.
    pub at_end: bool,
}

impl LineReader {
    pub fn new(offset: u64, max_line_bytes: usize) -> LineReader {
        LineReader {
            offset,
            read_position: offset,
            partial: Vec::new(),
            max_line_bytes,
            tail_hash: None,
        }
    }

    /// The hash of the bytes just before [`LineReader::offset`], if the last read that
    /// moved the offset held them all.
    pub fn tail_hash(&self) -> Option<u64> {
        self.tail_hash
    }

    /// The hash of the bytes just before [`LineReader::offset`]: from the bytes read
    /// when they held them all, else read from `file`.
    pub fn tail_hash_in(&self, file: &File) -> Option<u64> {
        self.tail_hash
            .or_else(|| tail_hash(file, self.offset).ok().flatten())
    }

    /// The checkpoint: start of the first line not yet emitted.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the file consumed, including an incomplete last line.
    pub fn read_position(&self) -> u64 {
        self.read_position
    }

    /// Reads from the file until `budget` bytes were read, the chunk holds
    /// `max_lines` lines, or the file ends; complete lines are appended to `chunk`.
    /// `waiting` is how many bytes the file was last seen to have past the read
    /// position (`u64::MAX` if unknown); it sizes the read buffer.
    pub fn read_lines(
        &mut self,
        file: &File,
        chunk: &mut FileChunk,
        budget: u64,
        max_lines: usize,
        buffer: &mut ReadBuffer,
        waiting: u64,
    ) -> io::Result<ReadOutcome> {
        let scratch = buffer.for_reading(waiting);
        let mut outcome = ReadOutcome {
            bytes_read: 0,
            lines: 0,
            at_end: false,
        };
        while outcome.bytes_read < budget && chunk.entries.len() < max_lines {
            let filled = read_fully_at(file, scratch, self.read_position)?;
            if filled == 0 {
                outcome.at_end = true;
                break;
            }
            let bytes = &scratch[..filled];
            let lines = self.split(bytes, chunk);
            if lines > 0 {
                self.tail_hash = tail_in(bytes, self.read_position, self.offset);
            }
            outcome.lines += lines;
            outcome.bytes_read += filled as u64;
            self.read_position += filled as u64;
            if filled < scratch.len() {
                outcome.at_end = true;
                break;
            }
        }
        Ok(outcome)
    }

    /// Splits freshly read bytes (which start at `read_position`) into lines.
    fn split(&mut self, bytes: &[u8], chunk: &mut FileChunk) -> usize {
        let mut lines = 0;
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', bytes) {
            let end_position = self.read_position + newline as u64 + 1;
            let piece = &bytes[start..newline];
            if self.partial.is_empty() && self.offset == self.read_position + start as u64 {
                self.emit(piece, end_position, chunk);
            } else {
                self.hold(piece);
                let held = std::mem::take(&mut self.partial);
                self.emit(&held, end_position, chunk);
                self.partial = held;
                self.partial.clear();
            }
            lines += 1;
            start = newline + 1;
        }
        self.hold(&bytes[start..]);
        lines
    }

    /// Keeps bytes of an incomplete line, up to the line limit (plus one byte, so that
    /// a line of exactly the limit is told from a longer one).
    fn hold(&mut self, bytes: &[u8]) {
        let room = (self.max_line_bytes + 1).saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self, line: &[u8], end_position: u64, chunk: &mut FileChunk) {
        let mut line = line;
        let mut flags = LineFlags::default();
        let full_length = end_position - self.offset - 1;
        if full_length > self.max_line_bytes as u64 {
            line = &line[..self.max_line_bytes.min(line.len())];
            flags.insert(LineFlags::TRUNCATED);
        } else if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        chunk.push(self.offset, end_position - self.offset, line, flags);
        self.offset = end_position;
    }
}

/// The hash of the (at most [`TAIL_BYTES`]) bytes before `offset`, from `bytes` read at
/// file position `start`, if they hold them all.
fn tail_in(bytes: &[u8], start: u64, offset: u64) -> Option<u64> {
    let tail_start = offset.saturating_sub(TAIL_BYTES);
    if tail_start < start || offset > start + bytes.len() as u64 {
        return None;
    }
    let range = (tail_start - start) as usize..(offset - start) as usize;
    Some(hash_tail(&bytes[range]))
}

#[cfg(test)]
mod tests;
