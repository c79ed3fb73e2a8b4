use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files the model's checkpoints are spread over.
const FILES: u64 = 3;

struct Fixture {
    _directory: tempfile::TempDir,
    path: PathBuf,
    capacity: u64,
    buffer: Option<DiskBuffer>,
}

impl Fixture {
    fn new(capacity: u64) -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("buffer");
        let buffer = DiskBuffer::open(&path, capacity).unwrap();
        Fixture {
            _directory: directory,
            path,
            capacity,
            buffer: Some(buffer),
        }
    }

    fn buffer(&self) -> &DiskBuffer {
        self.buffer.as_ref().unwrap()
    }

    /// Closes the store and opens it again on the same directory, as after a crash of
    /// the agent (every write already reached the operating system).
    fn reopen(&mut self) {
        self.buffer = None;
        self.buffer = Some(DiskBuffer::open(&self.path, self.capacity).unwrap());
    }

    fn pending(&self) -> Vec<(u64, Vec<u8>)> {
        let mut found = Vec::new();
        let mut after = None;
        while let Some(batch) = self.buffer().next_after(after).unwrap() {
            after = Some(batch.sequence);
            found.push((batch.sequence, batch.payload.to_vec()));
        }
        found
    }
}

fn checkpoint(file: u64, offset: u64) -> Checkpoint {
    Checkpoint {
        identity: FileIdentity {
            device: 7,
            inode: file,
            fingerprint: file * 31,
        },
        path: format!("/var/log/file{file}.log"),
        offset,
        generation: (offset % 3) as u32,
        tail_hash: offset.wrapping_mul(0x9e37_79b9),
        updated_ms: offset as i64,
        history: history_of(&[file * 31, offset]),
        known_copies: KnownCopies::from_iter([KnownCopy {
            inode: file + 100,
            first_line_hash: offset,
        }]),
    }
}

fn history_of(hashes: &[u64]) -> GenerationHistory {
    let mut history = GenerationHistory::default();
    for &hash in hashes {
        history.remember(hash);
    }
    history
}

fn sorted(mut checkpoints: Vec<Checkpoint>) -> Vec<Checkpoint> {
    checkpoints.sort_by_key(|checkpoint| checkpoint.identity.inode);
    checkpoints
}

// ---------------------------------------------------------------------------------------
// Model test

#[derive(Debug, Clone)]
enum Operation {
    Append {
        payload: Vec<u8>,
        checkpoints: Vec<(u64, u64)>,
    },
    /// Acknowledges the pending batch at this position (modulo their number), or an
    /// unknown sequence number when nothing is pending.
    Acknowledge(usize),
    SaveCheckpoints(Vec<(u64, u64)>),
    RemoveCheckpoint(u64),
    WaitForRoom(u64),
    Sync,
    Reopen,
}

fn checkpoints_strategy() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((0..FILES, 0..10_000u64), 0..3)
}

fn operation_strategy() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (prop::collection::vec(any::<u8>(), 0..40), checkpoints_strategy())
            .prop_map(|(payload, checkpoints)| Operation::Append { payload, checkpoints }),
        3 => any::<usize>().prop_map(Operation::Acknowledge),
        1 => checkpoints_strategy().prop_map(Operation::SaveCheckpoints),
        1 => (0..FILES).prop_map(Operation::RemoveCheckpoint),
        1 => (0..120u64).prop_map(Operation::WaitForRoom),
        1 => Just(Operation::Sync),
        2 => Just(Operation::Reopen),
    ]
}

/// What the buffer should hold: pending batches in order and the latest checkpoint of
/// each file.
#[derive(Default)]
struct Model {
    pending: BTreeMap<u64, Vec<u8>>,
    checkpoints: HashMap<u64, Checkpoint>,
}

impl Model {
    fn bytes(&self) -> u64 {
        self.pending
            .values()
            .map(|payload| payload.len() as u64 + 1)
            .sum()
    }

    fn save(&mut self, checkpoints: &[Checkpoint]) {
        for checkpoint in checkpoints {
            self.checkpoints
                .insert(checkpoint.identity.inode, checkpoint.clone());
        }
    }
}

fn apply(fixture: &mut Fixture, model: &mut Model, operation: &Operation) {
    let to_checkpoints = |pairs: &[(u64, u64)]| {
        pairs
            .iter()
            .map(|&(f, o)| checkpoint(f, o))
            .collect::<Vec<_>>()
    };
    match operation {
        Operation::Append {
            payload,
            checkpoints,
        } => {
            let checkpoints = to_checkpoints(checkpoints);
            let sequence = fixture.buffer().append(payload, &checkpoints).unwrap();
            let last = model.pending.keys().next_back();
            assert!(
                last.is_none_or(|last| sequence > *last),
                "sequence {sequence} reused"
            );
            model.pending.insert(sequence, payload.clone());
            model.save(&checkpoints);
        }
        Operation::Acknowledge(position) => {
            let sequence = match model.pending.len() {
                0 => 1 << 40,
                len => *model.pending.keys().nth(position % len).unwrap(),
            };
            fixture.buffer().acknowledge(sequence).unwrap();
            model.pending.remove(&sequence);
        }
        Operation::SaveCheckpoints(checkpoints) => {
            let checkpoints = to_checkpoints(checkpoints);
            fixture.buffer().save_checkpoints(&checkpoints).unwrap();
            model.save(&checkpoints);
        }
        Operation::RemoveCheckpoint(file) => {
            fixture
                .buffer()
                .remove_checkpoint(&checkpoint(*file, 0).identity)
                .unwrap();
            model.checkpoints.remove(file);
        }
        Operation::WaitForRoom(size) => {
            let room = fixture.buffer().wait_for_room(*size, Duration::ZERO);
            let expected = model.bytes() + size <= fixture.capacity || model.pending.is_empty();
            assert_eq!(
                room,
                expected,
                "wait_for_room({size}) with {} pending",
                model.bytes()
            );
        }
        Operation::Sync => fixture.buffer().sync().unwrap(),
        Operation::Reopen => fixture.reopen(),
    }
}

fn assert_matches_model(fixture: &Fixture, model: &Model) {
    let expected: Vec<(u64, Vec<u8>)> = model
        .pending
        .iter()
        .map(|(sequence, payload)| (*sequence, payload.clone()))
        .collect();
    assert_eq!(fixture.pending(), expected);
    assert_eq!(fixture.buffer().pending_batches(), model.pending.len());
    assert_eq!(fixture.buffer().pending_bytes(), model.bytes());
    let stored = sorted(fixture.buffer().all_checkpoints().unwrap());
    assert_eq!(
        stored,
        sorted(model.checkpoints.values().cloned().collect())
    );
    for file in 0..FILES {
        let found = fixture.buffer().checkpoint(7, file).unwrap();
        assert_eq!(found.as_ref(), model.checkpoints.get(&file));
    }
}

fn run_against_model(operations: &[Operation]) {
    let mut fixture = Fixture::new(100);
    let mut model = Model::default();
    for operation in operations {
        apply(&mut fixture, &mut model, operation);
        if matches!(operation, Operation::Reopen) {
            assert_matches_model(&fixture, &model);
        }
    }
    assert_matches_model(&fixture, &model);
    fixture.reopen();
    assert_matches_model(&fixture, &model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn buffer_matches_model_through_reopens(
        operations in prop::collection::vec(operation_strategy(), 1..40)
    ) {
        run_against_model(&operations);
    }
}

// ---------------------------------------------------------------------------------------
// Single cases

fn append(payload: &[u8], checkpoints: &[(u64, u64)]) -> Operation {
    Operation::Append {
        payload: payload.to_vec(),
        checkpoints: checkpoints.to_vec(),
    }
}

#[test]
fn everything_acknowledged_then_reopened_starts_empty_and_appends_again() {
    run_against_model(&[
        append(b"one", &[(0, 10)]),
        Operation::Acknowledge(0),
        Operation::Reopen,
        append(b"two", &[(0, 20)]),
        Operation::Reopen,
    ]);
}

#[test]
fn checkpoints_without_a_batch_survive_a_reopen() {
    run_against_model(&[
        Operation::SaveCheckpoints(vec![(1, 5), (2, 9)]),
        Operation::RemoveCheckpoint(2),
        Operation::Reopen,
    ]);
}

#[test]
fn a_checkpoint_is_visible_exactly_when_its_batch_is() {
    let fixture = Arc::new(Fixture::new(u64::MAX));
    let writer = {
        let fixture = fixture.clone();
        std::thread::spawn(move || {
            for offset in 1..=200u64 {
                let payload = offset.to_be_bytes();
                fixture
                    .buffer()
                    .append(&payload, &[checkpoint(0, offset)])
                    .unwrap();
            }
        })
    };
    loop {
        // Checkpoint first: its batch must already be there.
        let offset = fixture
            .buffer()
            .checkpoint(7, 0)
            .unwrap()
            .map_or(0, |c| c.offset);
        let pending = fixture.pending();
        assert!(
            pending.len() as u64 >= offset,
            "checkpoint {offset} ahead of its batch"
        );
        // Batches first: their checkpoint must already be there.
        let newest = pending
            .last()
            .map_or(0, |(_, payload)| decode_offset(payload));
        let offset = fixture
            .buffer()
            .checkpoint(7, 0)
            .unwrap()
            .map_or(0, |c| c.offset);
        assert!(
            offset >= newest,
            "batch {newest} visible before its checkpoint {offset}"
        );
        if newest == 200 {
            break;
        }
    }
    writer.join().unwrap();
}

fn decode_offset(payload: &[u8]) -> u64 {
    u64::from_be_bytes(payload.try_into().unwrap())
}

#[test]
fn full_buffer_gives_no_room_until_its_timeout() {
    let fixture = Fixture::new(50);
    fixture.buffer().append(&[0; 40], &[]).unwrap();
    let started = std::time::Instant::now();
    assert!(
        !fixture
            .buffer()
            .wait_for_room(20, Duration::from_millis(50))
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(fixture.buffer().wait_for_room(9, Duration::ZERO));
}

#[test]
fn acknowledgement_wakes_a_reader_waiting_for_room() {
    let fixture = Arc::new(Fixture::new(50));
    let sequence = fixture.buffer().append(&[0; 40], &[]).unwrap();
    let waiter = {
        let fixture = fixture.clone();
        std::thread::spawn(move || fixture.buffer().wait_for_room(20, Duration::from_secs(60)))
    };
    // Whether the waiter is already parked or not, room must be found at once.
    fixture.buffer().acknowledge(sequence).unwrap();
    let started = std::time::Instant::now();
    assert!(waiter.join().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the waiter was not woken"
    );
}

#[test]
fn batch_larger_than_capacity_enters_an_empty_buffer_only() {
    let fixture = Fixture::new(10);
    assert!(fixture.buffer().wait_for_room(1000, Duration::ZERO));
    fixture.buffer().append(&[1; 5], &[]).unwrap();
    assert!(!fixture.buffer().wait_for_room(1000, Duration::ZERO));
}

#[test]
fn close_releases_a_waiting_reader_without_room() {
    let fixture = Arc::new(Fixture::new(10));
    fixture.buffer().append(&[1; 9], &[]).unwrap();
    let waiter = {
        let fixture = fixture.clone();
        std::thread::spawn(move || fixture.buffer().wait_for_room(5, Duration::from_secs(60)))
    };
    fixture.buffer().close();
    assert!(!waiter.join().unwrap());
}

#[test]
fn checkpoint_of_format_1_loads_with_an_empty_history() {
    let mut fixture = Fixture::new(1024);
    let current = checkpoint(4, 120);
    // Format 1 is the same fields without the history, in the same order.
    let old_fields = (
        current.identity,
        current.path.clone(),
        current.offset,
        current.generation,
        current.tail_hash,
        current.updated_ms,
    );
    let mut value = vec![CHECKPOINT_FORMAT_V1];
    value.extend(postcard::to_stdvec(&old_fields).unwrap());
    let key = checkpoint_key(&current.identity);
    fixture.buffer().checkpoints.insert(key, value).unwrap();
    fixture.reopen();
    let loaded = fixture.buffer().checkpoint(7, 4).unwrap().unwrap();
    let expected = Checkpoint {
        history: GenerationHistory::default(),
        known_copies: KnownCopies::default(),
        ..current
    };
    assert_eq!(loaded, expected);
    // Saved again, it takes the current format and keeps what it gains.
    let mut grown = expected.clone();
    grown.history.remember(99);
    fixture.buffer().save_checkpoints(&[grown.clone()]).unwrap();
    fixture.reopen();
    assert_eq!(fixture.buffer().checkpoint(7, 4).unwrap(), Some(grown));
}

#[test]
fn checkpoint_of_an_unknown_format_is_refused_with_its_version() {
    let fixture = Fixture::new(1024);
    let key = checkpoint_key(&checkpoint(5, 0).identity);
    fixture
        .buffer()
        .checkpoints
        .insert(key, [9u8, 0, 0])
        .unwrap();
    let error = fixture.buffer().checkpoint(7, 5).unwrap_err();
    assert!(
        matches!(
            error,
            BufferError::Version {
                found: 9,
                expected: CHECKPOINT_FORMAT,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn generation_history_keeps_the_last_generations_once_each() {
    let mut history = GenerationHistory::default();
    for hash in 0..20 {
        history.remember(hash);
        history.remember(hash);
    }
    let kept = 20 - GenerationHistory::CAPACITY as u64;
    assert!(!history.contains(kept - 1));
    assert!((kept..20).all(|hash| history.contains(hash)));
    assert_eq!(history, history_of(&Vec::from_iter(kept..20)));
}

/// Bytes the files under `directory` take. The store deletes files while this walks
/// it; a file gone in between counts for nothing.
fn size_on_disk(directory: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(directory) else {
        return 0;
    };
    for entry in entries.flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        total += if metadata.is_dir() {
            size_on_disk(&entry.path())
        } else {
            metadata.len()
        };
    }
    total
}

#[test]
fn the_store_shrinks_back_to_its_bound_after_batches_flowed_through_it() {
    // 192 MiB go through a buffer of 4 MiB, each batch acknowledged after the next one
    // is in, each with a checkpoint as the tailer writes them.
    const BATCH: usize = 512 * 1024;
    let fixture = Fixture::new(4 * 1024 * 1024);
    let payload = vec![7u8; BATCH];
    let mut previous = None;
    for number in 0..384u64 {
        let sequence = fixture
            .buffer()
            .append(
                &payload,
                &[checkpoint(number % FILES, number * BATCH as u64)],
            )
            .unwrap();
        if let Some(previous) = previous.replace(sequence) {
            fixture.buffer().acknowledge(previous).unwrap();
        }
    }
    // Once the journal passes MAX_JOURNAL_BYTES, the memtables pinning it are written
    // out in the background and it is deleted. fjall's default let it grow to 512 MiB,
    // and with the checkpoints' memtable filling slowly it was kept whole.
    let bound = MAX_JOURNAL_BYTES + fixture.capacity + 4 * MEMTABLE_BYTES;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut size = size_on_disk(&fixture.path);
    while size > bound && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        size = size_on_disk(&fixture.path);
    }
    assert!(
        size <= bound,
        "the store still takes {size} bytes on disk, over {bound}"
    );
}
