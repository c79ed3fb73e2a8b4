//! Telling files apart: device, inode and a fingerprint of the first line.
//!
//! See [`FileIdentity`] for why the first line: it never changes once complete in an
//! append-only file, so the fingerprint is stable while the file grows, and it differs
//! between a file and the one that reused its inode or replaced its content.

use garonne_common::FileIdentity;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Bytes before a checkpoint's offset that are hashed to notice replaced content.
pub const TAIL_BYTES: u64 = 256;

/// The file's identity, or `None` while its first line is incomplete (an empty file,
/// or a first line still being written and shorter than the fingerprint window).
/// `generation` counts truncations seen at this inode (see the checkpoint).
pub fn identify(file: &File, generation: u32) -> io::Result<Option<FileIdentity>> {
    let metadata = file.metadata()?;
    let Some(fingerprint) = fingerprint(file, generation)? else {
        return Ok(None);
    };
    Ok(Some(FileIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
        fingerprint,
    }))
}

/// Hash of the first line, newline included, or of the first
/// [`FileIdentity::FINGERPRINT_BYTES`] bytes when the first line is longer.
pub fn fingerprint(file: &File, generation: u32) -> io::Result<Option<u64>> {
    let mut head = [0u8; FileIdentity::FINGERPRINT_BYTES];
    let filled = read_fully_at(file, &mut head, 0)?;
    let head = &head[..filled];
    let covered = match memchr::memchr(b'\n', head) {
        Some(newline) => &head[..=newline],
        None if filled == FileIdentity::FINGERPRINT_BYTES => head,
        None => return Ok(None),
    };
    Ok(Some(xxh3_64_with_seed(covered, u64::from(generation))))
}

/// The fingerprint of the file as a first generation: the same for a file and for any
/// copy of it, whatever generation the file was in when copied. Checkpoints remember
/// generations by it (see [`crate::buffer::GenerationHistory`]).
pub fn first_line_hash(file: &File) -> io::Result<Option<u64>> {
    fingerprint(file, 0)
}

/// Hash of the bytes just before `offset` (at most [`TAIL_BYTES`]), or `None` if the
/// file is shorter than `offset`.
pub fn tail_hash(file: &File, offset: u64) -> io::Result<Option<u64>> {
    let start = offset.saturating_sub(TAIL_BYTES);
    let mut tail = vec![0u8; (offset - start) as usize];
    let filled = read_fully_at(file, &mut tail, start)?;
    if filled < tail.len() {
        return Ok(None);
    }
    Ok(Some(hash_tail(&tail)))
}

/// The hash [`tail_hash`] gives the bytes before an offset, from those bytes.
pub fn hash_tail(tail: &[u8]) -> u64 {
    xxh3_64(tail)
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
pub fn read_fully_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("a.log");
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).unwrap();
        (directory, file)
    }

    #[test]
    fn empty_file_and_incomplete_first_line_have_no_identity_yet() {
        let (_directory, file) = file_with(b"");
        assert_eq!(identify(&file, 0).unwrap(), None);
        let (_directory, file) = file_with(b"partial line");
        assert_eq!(identify(&file, 0).unwrap(), None);
    }

    #[test]
    fn short_one_line_file_is_identified_and_stays_so_as_it_grows() {
        let line = b"a sixty byte line of a short log file.......................\n";
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("a.log");
        std::fs::write(&path, line).unwrap();
        let file = File::open(&path).unwrap();
        let first = identify(&file, 0).unwrap().unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(line)
            .unwrap();
        assert_eq!(identify(&file, 0).unwrap(), Some(first));
    }

    #[test]
    fn same_first_line_on_another_inode_is_another_file() {
        let (_a, first) = file_with(b"same header\nx\n");
        let (_b, second) = file_with(b"same header\ny\n");
        let first = identify(&first, 0).unwrap().unwrap();
        let second = identify(&second, 0).unwrap().unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_ne!(first, second);
    }

    #[test]
    fn generation_changes_the_fingerprint() {
        let (_directory, file) = file_with(b"line\n");
        assert_ne!(
            fingerprint(&file, 0).unwrap(),
            fingerprint(&file, 1).unwrap()
        );
    }

    #[test]
    fn long_first_line_uses_the_window() {
        let (_directory, file) = file_with(&[b'x'; 3000]);
        assert!(fingerprint(&file, 0).unwrap().is_some());
    }

    #[test]
    fn tail_hash_needs_the_bytes_before_the_offset() {
        let (_directory, file) = file_with(b"0123456789\n");
        assert!(tail_hash(&file, 11).unwrap().is_some());
        assert_eq!(tail_hash(&file, 12).unwrap(), None);
        assert_eq!(tail_hash(&file, 0).unwrap(), Some(xxh3_64(b"")));
    }
}
