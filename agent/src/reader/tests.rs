use super::*;
use garonne_common::{FileIdentity, Module};
use std::io::Write;

fn chunk() -> FileChunk {
    let identity = FileIdentity {
        device: 0,
        inode: 0,
        fingerprint: 0,
    };
    FileChunk::new("/t.log".into(), identity, Module::Plain, 0)
}

struct Fixture {
    _directory: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("t.log");
        std::fs::write(&path, b"").unwrap();
        Fixture {
            _directory: directory,
            path,
        }
    }

    fn append(&self, bytes: &[u8]) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    fn read(&self, reader: &mut LineReader) -> FileChunk {
        let file = File::open(&self.path).unwrap();
        let mut chunk = chunk();
        reader
            .read_lines(
                &file,
                &mut chunk,
                u64::MAX,
                usize::MAX,
                &mut ReadBuffer::default(),
                u64::MAX,
            )
            .unwrap();
        chunk
    }
}

fn texts(chunk: &FileChunk) -> Vec<(u64, Vec<u8>)> {
    chunk
        .lines()
        .map(|line| (line.offset, line.bytes.to_vec()))
        .collect()
}

#[test]
fn splits_lines_and_strips_carriage_returns() {
    let fixture = Fixture::new();
    fixture.append(b"one\r\ntwo\n\nthree\n");
    let mut reader = LineReader::new(0, 1024);
    let chunk = fixture.read(&mut reader);
    assert_eq!(
        texts(&chunk),
        vec![
            (0, b"one".to_vec()),
            (5, b"two".to_vec()),
            (9, b"".to_vec()),
            (10, b"three".to_vec())
        ]
    );
    assert_eq!(reader.offset(), 16);
}

#[test]
fn last_line_waits_for_its_newline_and_checkpoint_does_not_pass_it() {
    let fixture = Fixture::new();
    fixture.append(b"done\npart");
    let mut reader = LineReader::new(0, 1024);
    assert_eq!(
        texts(&fixture.read(&mut reader)),
        vec![(0, b"done".to_vec())]
    );
    assert_eq!(reader.offset(), 5);
    assert_eq!(reader.read_position(), 9);

    fixture.append(b"ial");
    assert!(fixture.read(&mut reader).entries.is_empty());
    assert_eq!(reader.offset(), 5);

    fixture.append(b" line\n");
    assert_eq!(
        texts(&fixture.read(&mut reader)),
        vec![(5, b"partial line".to_vec())]
    );
    assert_eq!(reader.offset(), 18);
}

#[test]
fn long_line_is_truncated_flagged_and_next_line_keeps_its_offset() {
    let fixture = Fixture::new();
    let long = vec![b'x'; 5 * 1024 * 1024];
    fixture.append(&long);
    fixture.append(b"\nafter\n");
    let mut reader = LineReader::new(0, 1024 * 1024);
    let chunk = fixture.read(&mut reader);
    let lines: Vec<_> = chunk.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].bytes.len(), 1024 * 1024);
    assert!(lines[0].flags.contains(LineFlags::TRUNCATED));
    assert_eq!(lines[0].length, long.len() as u64 + 1);
    assert_eq!(
        (lines[1].offset, lines[1].bytes),
        (long.len() as u64 + 1, &b"after"[..])
    );
    assert!(!lines[1].flags.contains(LineFlags::TRUNCATED));
}

#[test]
fn line_of_exactly_the_limit_is_not_truncated() {
    let fixture = Fixture::new();
    fixture.append(&[b'y'; 64]);
    fixture.append(b"\n");
    let mut reader = LineReader::new(0, 64);
    let chunk = fixture.read(&mut reader);
    let line = chunk.lines().next().unwrap();
    assert_eq!(line.bytes.len(), 64);
    assert!(!line.flags.contains(LineFlags::TRUNCATED));
}

#[test]
fn resumes_from_a_checkpoint() {
    let fixture = Fixture::new();
    fixture.append(b"old\nnew\n");
    let mut reader = LineReader::new(4, 1024);
    assert_eq!(
        texts(&fixture.read(&mut reader)),
        vec![(4, b"new".to_vec())]
    );
}

#[test]
fn invalid_utf8_and_nul_bytes_pass_through_as_bytes() {
    let fixture = Fixture::new();
    fixture.append(b"a\x00b\xff\xfe\n");
    let mut reader = LineReader::new(0, 1024);
    assert_eq!(
        texts(&fixture.read(&mut reader)),
        vec![(0, b"a\x00b\xff\xfe".to_vec())]
    );
}

#[test]
fn stops_at_the_line_limit_of_the_chunk() {
    let fixture = Fixture::new();
    fixture.append(b"1\n2\n3\n");
    let mut reader = LineReader::new(0, 1024);
    let file = File::open(&fixture.path).unwrap();
    let mut chunk = chunk();
    reader
        .read_lines(
            &file,
            &mut chunk,
            u64::MAX,
            1,
            &mut ReadBuffer::default(),
            u64::MAX,
        )
        .unwrap();
    // One read holds all three lines; none is lost, the chunk just holds more.
    assert_eq!(chunk.entries.len(), 3);
    assert_eq!(reader.offset(), 6);
}

#[test]
fn the_read_buffer_grows_only_as_far_as_the_bytes_waiting() {
    let mut buffer = ReadBuffer::default();
    assert_eq!(buffer.for_reading(100).len(), MIN_READ_BYTES);
    assert_eq!(buffer.for_reading(100_000).len(), 100_000);
    assert_eq!(buffer.for_reading(u64::MAX).len(), READ_BYTES);
    // It does not shrink while in use: a smaller read reuses it whole.
    assert_eq!(buffer.for_reading(100).len(), READ_BYTES);
    buffer.release();
    assert_eq!(buffer.capacity(), 0);
    assert_eq!(buffer.for_reading(100).len(), MIN_READ_BYTES);
}

#[test]
fn the_tail_hash_is_taken_from_the_bytes_read_as_the_file_gives_it() {
    let fixture = Fixture::new();
    let mut text = String::new();
    for number in 0..50 {
        text.push_str(&format!(
            "line {number} with some words to pass the tail size\n"
        ));
    }
    fixture.append(text.as_bytes());
    fixture.append(b"an incomplete last line");
    let mut reader = LineReader::new(0, 1 << 20);
    fixture.read(&mut reader);
    let file = File::open(&fixture.path).unwrap();
    let expected = crate::identity::tail_hash(&file, reader.offset()).unwrap();
    assert!(expected.is_some());
    assert_eq!(reader.tail_hash(), expected);

    // A file shorter than the tail: the hash covers all of it.
    let short = Fixture::new();
    short.append(b"one\ntwo\n");
    let mut reader = LineReader::new(0, 1 << 20);
    short.read(&mut reader);
    let file = File::open(&short.path).unwrap();
    assert_eq!(
        reader.tail_hash(),
        crate::identity::tail_hash(&file, 8).unwrap()
    );
}
