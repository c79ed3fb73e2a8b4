use super::*;
use garonne_common::config::{DEFAULT_MAX_LINE_BYTES, InputConfig};
use proptest::prelude::*;
use std::io::Write;

/// Passes of `poll` after which a test gives up on the tailer catching up.
const MAX_POLLS: usize = 1000;

/// A line as it was buffered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Buffered {
    identity: FileIdentity,
    offset: u64,
    text: String,
}

/// A tailer and its disk buffer on a temporary directory, driven step by step; what it
/// buffers is read back and acknowledged, as the shipper would.
struct Fixture {
    directory: tempfile::TempDir,
    settings: TailerSettings,
    capacity: u64,
    agent: Option<(Tailer, Arc<DiskBuffer>)>,
    buffered: Vec<Buffered>,
}

impl Fixture {
    /// Follows `logs/*.log`, releasing quiet files at once.
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut TailerSettings)) -> Fixture {
        Fixture::with_capacity(u64::MAX, adjust)
    }

    fn with_capacity(capacity: u64, adjust: impl FnOnce(&mut TailerSettings)) -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        fs::create_dir(directory.path().join("logs")).unwrap();
        let pattern = directory
            .path()
            .join("logs/*.log")
            .to_string_lossy()
            .into_owned();
        let mut settings = TailerSettings {
            agent_id: "test".into(),
            host_name: "test".into(),
            inputs: vec![input(&[pattern])],
            batch: BatchConfig::default(),
            scan_interval: Duration::from_secs(3600),
            poll_interval: Duration::from_secs(3600),
            close_inactive: Duration::ZERO,
            max_open_files: 64,
        };
        adjust(&mut settings);
        let mut fixture = Fixture {
            directory,
            settings,
            capacity,
            agent: None,
            buffered: Vec::new(),
        };
        fixture.start();
        fixture
    }

    /// Opens the buffer and starts a tailer the way [`Tailer::run`] does.
    fn start(&mut self) {
        let buffer = DiskBuffer::open(&self.directory.path().join("data"), self.capacity);
        let buffer = Arc::new(buffer.unwrap());
        let notify = Arc::new(tokio::sync::Notify::new());
        let metrics = Arc::new(AgentMetrics::default());
        let mut tailer = Tailer::new(self.settings.clone(), buffer.clone(), notify, metrics);
        tailer.scan().unwrap();
        tailer.resume_orphans().unwrap();
        self.agent = Some((tailer, buffer));
    }

    /// Stops the agent (dropping tailer and buffer) and starts a new one on the same
    /// data directory.
    fn restart(&mut self) {
        self.agent = None;
        self.start();
    }

    fn tailer(&mut self) -> &mut Tailer {
        &mut self.agent.as_mut().unwrap().0
    }

    fn buffer(&self) -> &DiskBuffer {
        &self.agent.as_ref().unwrap().1
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join("logs").join(name)
    }

    /// Appends lines to a file, creating it if needed; returns each line's offset.
    fn append(&self, name: &str, lines: &[&str]) -> Vec<(u64, String)> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name));
        let mut file = file.unwrap();
        let mut offset = file.metadata().unwrap().len();
        let mut written = Vec::new();
        for line in lines {
            file.write_all(format!("{line}\n").as_bytes()).unwrap();
            written.push((offset, line.to_string()));
            offset += line.len() as u64 + 1;
        }
        written
    }

    fn append_bytes(&self, name: &str, bytes: &[u8]) {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name));
        file.unwrap().write_all(bytes).unwrap();
    }

    fn rename(&self, from: &str, to: &str) {
        fs::rename(self.path(from), self.path(to)).unwrap();
    }

    /// What logrotate's `copytruncate` does.
    fn copytruncate(&self, name: &str, copy: &str) {
        fs::copy(self.path(name), self.path(copy)).unwrap();
        self.truncate(name);
    }

    /// What logrotate's `copytruncate` does with numbered copies: `name.N` becomes
    /// `name.N+1`, and the content is copied to `name.1` before `name` is truncated.
    fn logrotate_copytruncate(&self, name: &str) {
        self.shift_copies(name);
        self.copytruncate(name, &format!("{name}.1"));
    }

    /// Renames `name.N` to `name.N+1`, highest first, as logrotate does before a rotation.
    fn shift_copies(&self, name: &str) {
        let mut count = 0;
        while self.path(&format!("{name}.{}", count + 1)).exists() {
            count += 1;
        }
        for number in (1..=count).rev() {
            self.rename(
                &format!("{name}.{number}"),
                &format!("{name}.{}", number + 1),
            );
        }
    }

    /// Stands in for gzip: the copy is replaced by `{copy}.gz`, which the agent cannot read.
    fn compress(&self, copy: &str) {
        let mut compressed = b"\x1f\x8b\x08\x00".to_vec();
        compressed.extend(fs::read(self.path(copy)).unwrap());
        fs::write(self.path(&format!("{copy}.gz")), compressed).unwrap();
        fs::remove_file(self.path(copy)).unwrap();
    }

    fn truncate(&self, name: &str) {
        fs::OpenOptions::new()
            .write(true)
            .open(self.path(name))
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    /// Scans, reads everything there is, buffers it, then reads the buffer back.
    fn step(&mut self) {
        let stop = AtomicBool::new(false);
        self.tailer().scan().unwrap();
        for _ in 0..2 {
            self.poll_until_caught_up(&stop);
            self.tailer().flush(&stop).unwrap();
        }
        self.take_buffered();
    }

    fn poll_until_caught_up(&mut self, stop: &AtomicBool) {
        for _ in 0..MAX_POLLS {
            let more = self.tailer().poll(stop).unwrap();
            let open = self.tailer().open_files();
            assert!(
                open <= self.settings.max_open_files,
                "{open} files open after a poll"
            );
            if !more {
                return;
            }
        }
        panic!("the tailer did not catch up within {MAX_POLLS} polls");
    }

    /// Reads every pending batch and acknowledges it.
    fn take_buffered(&mut self) {
        while let Some(stored) = self.buffer().next_after(None).unwrap() {
            let batch = wire::decode_batch(&stored.payload).unwrap();
            for chunk in &batch.chunks {
                for line in chunk.lines() {
                    let text = String::from_utf8_lossy(line.bytes).into_owned();
                    let identity = chunk.identity;
                    self.buffered.push(Buffered {
                        identity,
                        offset: line.offset,
                        text,
                    });
                }
            }
            self.buffer().acknowledge(stored.sequence).unwrap();
        }
    }

    /// Every expected line was buffered exactly once, at its offset, and nothing else.
    fn assert_buffered(&self, expected: &[Vec<(u64, String)>]) {
        let mut expected: Vec<(u64, String)> = expected.concat();
        let mut found: Vec<(u64, String)> = self
            .buffered
            .iter()
            .map(|line| (line.offset, line.text.clone()))
            .collect();
        expected.sort();
        found.sort();
        assert_eq!(found, expected);
    }

    fn identity_of(&self, text: &str) -> FileIdentity {
        let line = self.buffered.iter().find(|line| line.text == text);
        line.unwrap_or_else(|| panic!("{text:?} was not buffered"))
            .identity
    }
}

fn input(paths: &[String]) -> InputConfig {
    InputConfig {
        paths: paths.to_vec(),
        module: Module::Plain,
        exclude: Vec::new(),
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
    }
}

/// `count` distinct lines starting with `prefix`.
fn lines(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| format!("{prefix} line {index}"))
        .collect()
}

fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------
// Rotation

#[test]
fn quiet_reading_gives_back_its_buffers_and_takes_them_again_for_new_lines() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["one", "two"]);
    fixture.step();
    let start = Instant::now();
    let holds_memory = |tailer: &mut Tailer| {
        (
            tailer.scratch.capacity() > 0,
            tailer.builder.encoder.holds_memory(),
        )
    };
    // The first check after lines were read only notes the count.
    fixture.tailer().release_memory_when_quiet(start);
    assert_eq!(holds_memory(fixture.tailer()), (true, true));
    let almost = start + RELEASE_WHEN_QUIET - Duration::from_millis(1);
    fixture.tailer().release_memory_when_quiet(almost);
    assert_eq!(holds_memory(fixture.tailer()), (true, true));
    fixture
        .tailer()
        .release_memory_when_quiet(start + RELEASE_WHEN_QUIET);
    assert_eq!(holds_memory(fixture.tailer()), (false, false));

    let second = fixture.append("app.log", &["three"]);
    fixture.step();
    fixture.assert_buffered(&[first, second]);
    assert_eq!(holds_memory(fixture.tailer()), (true, true));
    // New lines start a new quiet period.
    fixture
        .tailer()
        .release_memory_when_quiet(start + RELEASE_WHEN_QUIET * 2);
    assert_eq!(holds_memory(fixture.tailer()), (true, true));
}

#[test]
fn an_open_batch_keeps_its_buffers_however_quiet_reading_is() {
    let mut fixture = Fixture::new();
    fixture.append("app.log", &["one"]);
    let stop = AtomicBool::new(false);
    fixture.tailer().scan().unwrap();
    fixture.poll_until_caught_up(&stop);
    let start = Instant::now();
    fixture.tailer().release_memory_when_quiet(start);
    fixture
        .tailer()
        .release_memory_when_quiet(start + RELEASE_WHEN_QUIET * 10);
    assert!(fixture.tailer().scratch.capacity() > 0);
    fixture.tailer().flush(&stop).unwrap();
    fixture.take_buffered();
    assert_eq!(fixture.buffered.len(), 1);
}

#[test]
fn a_file_followed_but_never_read_is_recovered_after_copytruncate_and_rename_while_stopped() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first generation 1", "first generation 2"]);
    // An agent starts, follows the new file and is killed before it buffers a line.
    fixture.restart();
    fixture.agent = None;
    // While it is stopped, the file is copytruncated, written to, and renamed away.
    fixture.copytruncate("app.log", "app.log.1");
    let second = fixture.append("app.log", &["second generation 1"]);
    fixture.rename("app.log", "app.log.2");
    fixture.start();
    fixture.step();
    fixture.step();
    fixture.assert_buffered(&[first, second]);
}

#[test]
fn rename_and_create_rotation() {
    for close_inactive in [Duration::ZERO, Duration::from_secs(3600)] {
        let mut fixture = Fixture::with(|settings| settings.close_inactive = close_inactive);
        let first = fixture.append("app.log", &["old 1", "old 2"]);
        fixture.step();
        let unread = fixture.append("app.log", &["old 3"]);
        fixture.rename("app.log", "app.log.1");
        let new = fixture.append("app.log", &["new 1", "new 2"]);
        fixture.step();
        fixture.step();
        fixture.assert_buffered(&[first, unread, new]);
        assert_ne!(fixture.identity_of("old 3"), fixture.identity_of("new 1"));
        assert_eq!(fixture.identity_of("old 3"), fixture.identity_of("old 1"));
    }
}

#[test]
fn copytruncate_rotation() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1", "first 2"]);
    fixture.step();
    let unread = fixture.append("app.log", &["before copy 1", "before copy 2"]);
    fixture.copytruncate("app.log", "app.log.1");
    fixture.step();
    fixture.restart();
    fixture.step();
    let after = fixture.append("app.log", &["after 1", "after 2"]);
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[first, unread, after]);
    assert_eq!(
        fixture.identity_of("before copy 2"),
        fixture.identity_of("first 1")
    );
    assert_ne!(
        fixture.identity_of("after 1"),
        fixture.identity_of("first 1")
    );
}

#[test]
fn copytruncate_refilled_past_the_offset_before_the_next_poll() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    let unread = fixture.append("app.log", &["before copy"]);
    fixture.copytruncate("app.log", "app.log.1");
    let after = fixture.append("app.log", &["after the truncation, longer than before"]);
    fixture.step();
    fixture.assert_buffered(&[first, unread, after]);
}

#[test]
fn copytruncate_with_the_same_first_line_picks_the_right_copy() {
    let mut fixture = Fixture::new();
    let mut expected = vec![fixture.append("app.log", &["header", "one 1"])];
    fixture.step();
    expected.push(fixture.append("app.log", &["one 2"]));
    fixture.copytruncate("app.log", "app.log.1");
    fixture.step();
    // Older copies of the first generation, so that one of them is likely listed before
    // the right copy whatever order the directory lists its entries in.
    for older in 3..10 {
        fs::copy(
            fixture.path("app.log.1"),
            fixture.path(&format!("app.log.{older}")),
        )
        .unwrap();
    }
    expected.push(fixture.append("app.log", &["header", "two 1"]));
    fixture.step();
    expected.push(fixture.append("app.log", &["two 2"]));
    fixture.rename("app.log.1", "app.log.2");
    fixture.copytruncate("app.log", "app.log.1");
    fixture.step();
    // "header" was written twice, at offset 0 of each generation.
    let mut found: Vec<&str> = fixture
        .buffered
        .iter()
        .map(|line| line.text.as_str())
        .collect();
    found.sort();
    assert_eq!(
        found,
        ["header", "header", "one 1", "one 2", "two 1", "two 2"]
    );
    assert_ne!(fixture.identity_of("one 2"), fixture.identity_of("two 2"));
}

#[test]
fn copytruncate_twice_while_stopped() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1", "first 2"]);
    fixture.step();
    fixture.agent = None;
    let unread = fixture.append("app.log", &["before copy 1"]);
    fixture.copytruncate("app.log", "app.log.1");
    let between = fixture.append("app.log", &["between copies 1", "between copies 2"]);
    fixture.rename("app.log.1", "app.log.2");
    fixture.copytruncate("app.log", "app.log.1");
    let last = fixture.append("app.log", &["after both"]);
    fixture.start();
    fixture.step();
    fixture.restart();
    fixture.step();
    // "between copies" lived only in a generation the agent never saw, now app.log.1: it
    // is read in full once, under the copy's own identity.
    fixture.assert_buffered(&[first, unread, between, last]);
    let middle = fixture.identity_of("between copies 1");
    assert_ne!(middle, fixture.identity_of("first 1"));
    assert_ne!(middle, fixture.identity_of("after both"));
    assert_eq!(middle, fixture.identity_of("between copies 2"));
}

#[test]
fn copytruncate_three_times_while_stopped() {
    let mut fixture = Fixture::new();
    let mut expected = vec![fixture.append("app.log", &["first 1"])];
    fixture.step();
    fixture.agent = None;
    expected.push(fixture.append("app.log", &["first 2, unread"]));
    fixture.logrotate_copytruncate("app.log");
    expected.push(fixture.append("app.log", &["second 1", "second 2"]));
    fixture.logrotate_copytruncate("app.log");
    expected.push(fixture.append("app.log", &["third 1"]));
    fixture.logrotate_copytruncate("app.log");
    expected.push(fixture.append("app.log", &["fourth 1"]));
    fixture.start();
    fixture.step();
    fixture.restart();
    fixture.step();
    expected.push(fixture.append("app.log", &["fourth 2"]));
    fixture.step();
    fixture.assert_buffered(&expected);
}

#[test]
fn generation_recovered_while_the_file_stays_empty_is_not_read_again() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    fixture.agent = None;
    fixture.logrotate_copytruncate("app.log");
    let middle = fixture.append("app.log", &["middle 1"]);
    fixture.logrotate_copytruncate("app.log");
    // app.log stays empty: its checkpoint still describes the first generation, so each
    // start finds the truncation again, and the checkpoint says app.log.1 was read.
    for _ in 0..3 {
        fixture.start();
        fixture.step();
        fixture.agent = None;
    }
    fixture.logrotate_copytruncate("app.log");
    let later = fixture.append("app.log", &["later 1"]);
    fixture.logrotate_copytruncate("app.log");
    fixture.start();
    fixture.step();
    fixture.assert_buffered(&[first, middle, later]);
}

#[test]
fn copytruncate_twice_between_two_reads() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    let unread = fixture.append("app.log", &["first 2"]);
    fixture.logrotate_copytruncate("app.log");
    let middle = fixture.append("app.log", &["middle 1"]);
    fixture.logrotate_copytruncate("app.log");
    let last = fixture.append("app.log", &["last 1"]);
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[first, unread, middle, last]);
}

#[test]
fn copytruncate_three_times_while_stopped_with_the_middle_copy_compressed() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    fixture.agent = None;
    let unread = fixture.append("app.log", &["first 2, unread"]);
    fixture.logrotate_copytruncate("app.log");
    let _compressed = fixture.append("app.log", &["second 1"]);
    fixture.logrotate_copytruncate("app.log");
    let third = fixture.append("app.log", &["third 1"]);
    fixture.logrotate_copytruncate("app.log");
    fixture.compress("app.log.2");
    let last = fixture.append("app.log", &["fourth 1"]);
    fixture.start();
    fixture.step();
    fixture.restart();
    fixture.step();
    // Known gap: the second generation now lives only in app.log.2.gz, which the agent
    // does not read, so "second 1" is lost. The checkpointed copy (app.log.3) and the
    // uncompressed newer copy (app.log.1) are read, each line once.
    fixture.assert_buffered(&[first, unread, third, last]);
}

/// The agent stops while a copy of an unseen generation is half read: its first batch
/// is buffered, the next finds the buffer full at shutdown. The next start resumes the
/// copy where the first batch ended, and does not read it again in full.
#[test]
fn unseen_copy_cut_short_at_shutdown_is_resumed_not_repeated() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    fixture.agent = None;
    fixture.logrotate_copytruncate("app.log");
    // More than one pass of reading (`PASS_BUDGET`), so more than one batch.
    let padding = "x".repeat(100);
    let long: Vec<String> = (0..50_000)
        .map(|index| format!("middle {index:05} {padding}"))
        .collect();
    let middle = fixture.append("app.log", &refs(&long));
    fixture.logrotate_copytruncate("app.log");

    // A buffer with room for one batch, closed as at shutdown: flushes past the first
    // give up and leave their lines unbuffered.
    let buffer = DiskBuffer::open(&fixture.directory.path().join("data"), 1);
    let buffer = Arc::new(buffer.unwrap());
    buffer.close();
    let notify = Arc::new(tokio::sync::Notify::new());
    let metrics = Arc::new(AgentMetrics::default());
    let settings = fixture.settings.clone();
    let mut tailer = Tailer::new(settings, buffer.clone(), notify, metrics);
    tailer.scan().unwrap();
    fixture.agent = Some((tailer, buffer));
    fixture.take_buffered();
    let buffered = fixture.buffered.len();
    assert!(
        1 < buffered && buffered < 1 + long.len(),
        "{buffered} lines buffered"
    );

    fixture.restart();
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[first, middle]);
    let copy = fixture.identity_of(&long[0]);
    assert_eq!(copy, fixture.identity_of(&long[long.len() - 1]));
}

#[test]
fn copies_older_than_the_checkpointed_one_are_never_read() {
    let mut fixture = Fixture::new();
    // Rotated before the agent ever saw app.log: never part of what it followed.
    fixture.append("app.log.1", &["rotated before the agent 1"]);
    fixture.append("app.log.2", &["rotated before the agent 2"]);
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    fixture.agent = None;
    fixture.logrotate_copytruncate("app.log");
    let middle = fixture.append("app.log", &["middle 1"]);
    fixture.logrotate_copytruncate("app.log");
    fixture.start();
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[first, middle]);
}

#[test]
fn siblings_are_never_read_without_a_checkpoint_of_the_file() {
    let mut fixture = Fixture::new();
    fixture.append("app.log.1", &["rotated before the agent"]);
    fixture.append("app.log", &["live 1"]);
    fixture.copytruncate("app.log", "app.log.2");
    let live = fixture.append("app.log", &["live 2"]);
    fixture.step();
    fixture.restart();
    fixture.step();
    // The agent never had a checkpoint of app.log before it was truncated: nothing beside
    // it is tied to what it followed.
    fixture.assert_buffered(&[live]);
}

/// Copies numbered oldest first (`app.log.1` the oldest), unlike logrotate: the copies
/// numbered below the checkpointed one are old ones, the file that a rename rotation
/// replaced among them. They were there when the checkpointed generation was first
/// read, so nothing is read twice; the generation copied away unseen is lost (see the
/// module doc).
#[test]
fn copies_numbered_oldest_first_are_not_read_again() {
    for stopped_at_rename in [false, true] {
        let mut fixture = Fixture::new();
        let renamed = fixture.append("app.log", &["renamed 1"]);
        fixture.step();
        if stopped_at_rename {
            fixture.agent = None;
        }
        fixture.rename("app.log", "app.log.1");
        let first = fixture.append("app.log", &["first 1"]);
        if stopped_at_rename {
            fixture.start();
        }
        fixture.step();
        fixture.agent = None;
        let unread = fixture.append("app.log", &["first 2, unread"]);
        fixture.copytruncate("app.log", "app.log.2");
        let _unseen = fixture.append("app.log", &["second 1"]);
        fixture.copytruncate("app.log", "app.log.3");
        let last = fixture.append("app.log", &["third 1"]);
        fixture.start();
        fixture.step();
        fixture.restart();
        fixture.step();
        fixture.assert_buffered(&[renamed, first, unread, last]);
    }
}

/// While the agent is stopped, app.log is copytruncated, written to again and then
/// renamed away: its checkpointed content is in the copy, its new content in the file
/// itself under another name.
#[test]
fn copytruncated_then_renamed_away_while_stopped() {
    for newest_first in [true, false] {
        let mut fixture = Fixture::new();
        let first = fixture.append("app.log", &["first 1"]);
        fixture.step();
        fixture.agent = None;
        let unread = fixture.append("app.log", &["first 2, unread"]);
        let (copy, renamed) = if newest_first {
            fixture.logrotate_copytruncate("app.log");
            ("app.log.2", "app.log.1")
        } else {
            fixture.copytruncate("app.log", "app.log.1");
            ("app.log.1", "app.log.2")
        };
        let refilled = fixture.append("app.log", &["second 1", "second 2"]);
        if newest_first {
            fixture.shift_copies("app.log");
        }
        fixture.rename("app.log", renamed);
        assert!(fixture.path(copy).exists());
        let new = fixture.append("app.log", &["new file 1"]);
        fixture.start();
        fixture.step();
        fixture.restart();
        fixture.step();
        fixture.assert_buffered(&[first, unread, refilled, new]);
        assert_ne!(
            fixture.identity_of("second 1"),
            fixture.identity_of("first 1")
        );
    }
}

#[test]
fn file_renamed_away_while_stopped_with_more_than_a_batch_left_is_read_to_its_end() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["first 1"]);
    fixture.step();
    fixture.agent = None;
    // A pass stops once it has a batch's worth of lines: 20000 lines take several.
    let names = lines("written before the rename", 20_000);
    let unread = fixture.append("app.log", &refs(&names));
    fixture.rename("app.log", "app.log.1");
    fixture.start();
    fixture.step();
    fixture.assert_buffered(&[first, unread]);
}

#[test]
fn delete_while_open_is_read_to_end() {
    let mut fixture = Fixture::with(|settings| settings.close_inactive = Duration::from_secs(3600));
    let first = fixture.append("app.log", &["kept 1"]);
    fixture.step();
    let unread = fixture.append(
        "app.log",
        &["written before delete 1", "written before delete 2"],
    );
    fs::remove_file(fixture.path("app.log")).unwrap();
    fixture.step();
    fixture.assert_buffered(&[first, unread]);
}

/// `close_inactive` is zero here, so the file counts as quiet after every poll, as a
/// file does after reading waited on a full buffer for longer than `close_inactive`.
#[test]
fn a_quiet_file_with_lines_unread_keeps_its_descriptor_until_they_are_read() {
    let mut fixture = Fixture::with(|settings| settings.batch.max_lines = 10);
    // More than one read buffer (256 KiB at most), so that one pass leaves lines unread.
    let names = lines(&"read before and after the delete ".repeat(3), 6_000);
    let written = fixture.append("app.log", &refs(&names));
    let stop = AtomicBool::new(false);
    fixture.tailer().scan().unwrap();
    assert!(
        fixture.tailer().poll(&stop).unwrap(),
        "one pass left lines unread"
    );
    assert_eq!(fixture.tailer().open_files(), 1);

    fixture.rename("app.log", "app.log.1");
    fs::remove_file(fixture.path("app.log.1")).unwrap();
    fixture.step();
    fixture.assert_buffered(&[written]);
    assert_eq!(fixture.tailer().open_files(), 0, "released once read");
}

/// Creates `name` with `line` until it gets `inode` again; `None` if the filesystem
/// hands out another inode each time.
fn create_with_inode(fixture: &Fixture, name: &str, line: &str, inode: u64) -> Option<()> {
    for _ in 0..100 {
        fixture.append(name, &[line]);
        if fs::metadata(fixture.path(name)).unwrap().ino() == inode {
            return Some(());
        }
        fs::remove_file(fixture.path(name)).unwrap();
    }
    None
}

#[test]
fn inode_reuse_after_delete() {
    for restart in [false, true] {
        let mut fixture = Fixture::new();
        let first = fixture.append("app.log", &["first file 1", "first file 2, long enough"]);
        fixture.step();
        let inode = fs::metadata(fixture.path("app.log")).unwrap().ino();
        if restart {
            fixture.agent = None;
        }
        fs::remove_file(fixture.path("app.log")).unwrap();
        if create_with_inode(&fixture, "app.log", "second file 1", inode).is_none() {
            return inode_reuse_decided_by_the_checkpoint();
        }
        let more = fixture.append("app.log", &["second file 2, longer than the first one was"]);
        if restart {
            fixture.start();
        }
        fixture.step();
        let reused = vec![(0, "second file 1".to_string())];
        fixture.assert_buffered(&[first, reused, more]);
        assert_ne!(
            fixture.identity_of("first file 1"),
            fixture.identity_of("second file 1")
        );
    }
}

/// The decision behind inode reuse, where the filesystem does not reuse inodes: a
/// checkpoint left at this inode by another file does not apply.
fn inode_reuse_decided_by_the_checkpoint() {
    let mut fixture = Fixture::new();
    let lines = fixture.append("app.log", &["a file that reused an inode", "second line"]);
    let metadata = fs::metadata(fixture.path("app.log")).unwrap();
    let identity = FileIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
        fingerprint: 1,
    };
    let stale = Checkpoint {
        identity,
        path: fixture.path("app.log").to_string_lossy().into_owned(),
        offset: 28,
        generation: 0,
        tail_hash: 2,
        updated_ms: 0,
        history: GenerationHistory::default(),
        known_copies: KnownCopies::default(),
    };
    fixture.buffer().save_checkpoints(&[stale]).unwrap();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[lines]);
}

#[test]
fn truncated_and_refilled_past_offset_while_stopped() {
    for new_first_line in ["refilled 1", "first 1"] {
        let mut fixture = Fixture::new();
        let first = fixture.append("app.log", &["first 1", "first 2"]);
        fixture.step();
        fixture.agent = None;
        fixture.truncate("app.log");
        let refilled = fixture.append("app.log", &[new_first_line, "refilled 2, past the offset"]);
        fixture.start();
        fixture.step();
        fixture.assert_buffered(&[first, refilled]);
        let old = fixture.buffered[0].identity;
        assert!(
            fixture.buffered[2..]
                .iter()
                .all(|line| line.identity != old)
        );
    }
}

#[test]
fn renamed_away_while_stopped_is_found_and_read_to_end() {
    let mut fixture = Fixture::new();
    let first = fixture.append("app.log", &["old 1"]);
    fixture.step();
    fixture.agent = None;
    let unread = fixture.append("app.log", &["old 2", "old 3"]);
    fixture.rename("app.log", "app.log.1");
    let new = fixture.append("app.log", &["new 1"]);
    fixture.start();
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[first, unread, new]);
    assert_eq!(fixture.identity_of("old 3"), fixture.identity_of("old 1"));
}

#[test]
fn rotated_dot1_and_gz_not_matching_glob_left_alone() {
    let mut fixture = Fixture::new();
    fixture.append("app.log.1", &["rotated earlier"]);
    fixture.append_bytes("app.log.2.gz", b"\x1f\x8b\x08\x00 compressed\n");
    let live = fixture.append("app.log", &["live 1"]);
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[live]);
    assert_eq!(fixture.tailer().followed_files(), 1);
}

// ---------------------------------------------------------------------------------------
// Paths

#[test]
fn symlink_and_target_both_matched_read_once() {
    let mut fixture = Fixture::new();
    let written = fixture.append("app.log", &["one", "two"]);
    std::os::unix::fs::symlink(fixture.path("app.log"), fixture.path("link.log")).unwrap();
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[written]);
}

#[test]
fn symlinked_directory() {
    let mut fixture = Fixture::with(|settings| {
        let root = settings.inputs[0].paths[0].replace("logs/*.log", "linked/*.log");
        settings.inputs = vec![input(&[root])];
    });
    let target = fixture.path("");
    std::os::unix::fs::symlink(&target, fixture.directory.path().join("linked")).unwrap();
    let first = fixture.append("app.log", &["through the link 1"]);
    fixture.step();
    let more = fixture.append("app.log", &["through the link 2"]);
    fixture.step();
    fixture.assert_buffered(&[first, more]);
}

// ---------------------------------------------------------------------------------------
// Lines and file life

#[test]
fn last_line_without_newline_emitted_once_complete() {
    let mut fixture = Fixture::new();
    let complete = fixture.append("app.log", &["complete"]);
    fixture.append_bytes("app.log", b"partial");
    fixture.step();
    fixture.assert_buffered(std::slice::from_ref(&complete));
    let checkpoint = fixture.buffer().all_checkpoints().unwrap();
    assert_eq!(
        checkpoint[0].offset, 9,
        "the checkpoint passed the partial line"
    );
    fixture.restart();
    fixture.append_bytes("app.log", b" now");
    fixture.step();
    fixture.assert_buffered(std::slice::from_ref(&complete));
    fixture.append_bytes("app.log", b" complete\n");
    fixture.step();
    fixture.restart();
    fixture.step();
    fixture.assert_buffered(&[complete, vec![(9, "partial now complete".into())]]);
}

#[test]
fn empty_file_when_first_seen_then_written() {
    let mut fixture = Fixture::new();
    fixture.append_bytes("app.log", b"");
    fixture.step();
    assert_eq!(fixture.tailer().followed_files(), 0);
    fixture.append_bytes("app.log", b"first li");
    fixture.step();
    let written = fixture.append("app.log", &["ne", "second line"]);
    fixture.step();
    let first = vec![(0, "first line".to_string())];
    fixture.assert_buffered(&[first, written[1..].to_vec()]);
}

#[test]
fn one_line_60_byte_file() {
    let line = "a one-line file of exactly sixty bytes, newline included...";
    assert_eq!(line.len() + 1, 60);
    let mut fixture = Fixture::new();
    let written = fixture.append("app.log", &[line]);
    fixture.step();
    fixture.restart();
    fixture.step();
    let more = fixture.append("app.log", &["second line"]);
    fixture.step();
    fixture.assert_buffered(&[written, more]);
}

#[test]
fn restart_resumes_from_checkpoint_without_duplicates() {
    let mut fixture = Fixture::new();
    let mut expected = Vec::new();
    for round in 0..3 {
        let names = lines(&format!("round {round}"), 5);
        expected.push(fixture.append("app.log", &refs(&names)));
        fixture.step();
        fixture.restart();
    }
    fixture.step();
    fixture.assert_buffered(&expected);
}

#[test]
fn thousand_files_with_bounded_descriptors() {
    let mut fixture = Fixture::with(|settings| {
        settings.close_inactive = Duration::from_secs(3600);
        settings.max_open_files = 64;
    });
    let mut expected = Vec::new();
    for file in 0..1000 {
        expected.push(fixture.append(
            &format!("app{file}.log"),
            &[format!("file {file} 1").as_str()],
        ));
    }
    fixture.tailer().scan().unwrap();
    assert!(
        fixture.tailer().open_files() <= 64,
        "scan left too many files open"
    );
    fixture.step();
    for file in (0..1000).step_by(7) {
        expected.push(fixture.append(
            &format!("app{file}.log"),
            &[format!("file {file} 2").as_str()],
        ));
    }
    fixture.step();
    assert_eq!(fixture.tailer().followed_files(), 1000);
    fixture.assert_buffered(&expected);
}

// ---------------------------------------------------------------------------------------
// Back-pressure

#[test]
fn buffer_full_pauses_reading() {
    let mut fixture = Fixture::with_capacity(64, |_| {});
    let names = lines("spread over batches", 40);
    let written = fixture.append("app.log", &refs(&names));
    let stop = AtomicBool::new(false);
    fixture.tailer().scan().unwrap();
    fixture.tailer().poll(&stop).unwrap();
    fixture.tailer().flush(&stop).unwrap();
    assert_eq!(fixture.buffer().pending_batches(), 1);

    let more = fixture.append("app.log", &["while full"]);
    fixture.tailer().poll(&stop).unwrap();
    let stopping = AtomicBool::new(true);
    fixture.tailer().flush(&stopping).unwrap();
    assert_eq!(
        fixture.buffer().pending_batches(),
        1,
        "a batch went past a full buffer"
    );
    // The pause is counted while it lasts, not only once reading resumes.
    let metrics = &fixture.tailer().metrics;
    assert_eq!(AgentMetrics::get(&metrics.reading_paused), 1);
    assert!(AgentMetrics::get(&metrics.buffer_full_millis) >= ROOM_WAIT.as_millis() as u64);

    fixture.take_buffered();
    fixture.tailer().flush(&stop).unwrap();
    fixture.take_buffered();
    fixture.assert_buffered(&[written, more]);
}

#[test]
fn flush_gives_up_when_the_buffer_is_closed_while_full() {
    let mut fixture = Fixture::with_capacity(16, |_| {});
    fixture.append("app.log", &["fills the buffer"]);
    fixture.step();
    fixture.append("app.log", &["finds no room"]);
    fixture.buffer().append(&[0; 16], &[]).unwrap();
    let stop = AtomicBool::new(false);
    fixture.tailer().poll(&stop).unwrap();
    fixture.buffer().close();
    fixture.tailer().flush(&stop).unwrap();
    assert_eq!(fixture.buffer().pending_batches(), 1);
}

// ---------------------------------------------------------------------------------------
// Randomised: appends, rotations and restarts; every line buffered exactly once.

#[derive(Debug, Clone)]
enum Action {
    Append(usize),
    Step,
    /// Reads without buffering, then the agent dies: what was read is read again.
    CrashAfterPoll,
    Restart,
    Rotate {
        copytruncate: bool,
        while_stopped: bool,
    },
    /// The agent stops; for each entry, that many lines are appended and the file is
    /// copytruncated; then lines are appended and the file is renamed away, if
    /// `then_renamed`; then the agent starts again.
    CopytruncatesWhileStopped {
        appends: Vec<usize>,
        then_renamed: bool,
    },
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1..6usize).prop_map(Action::Append),
        2 => Just(Action::Step),
        1 => Just(Action::CrashAfterPoll),
        1 => Just(Action::Restart),
        2 => (any::<bool>(), any::<bool>()).prop_map(|(copytruncate, while_stopped)| {
            Action::Rotate { copytruncate, while_stopped }
        }),
        1 => (prop::collection::vec(0..4usize, 2..5), any::<bool>()).prop_map(
            |(appends, then_renamed)| Action::CopytruncatesWhileStopped { appends, then_renamed }
        ),
    ]
}

/// How rotated files are named.
#[derive(Debug, Clone, Copy)]
enum Numbering {
    /// As logrotate does: the latest is `app.log.1`, older ones are renamed up.
    NewestFirst,
    /// `app.log.1` is the oldest and each rotation takes the next number.
    OldestFirst,
}

fn numbering_strategy() -> impl Strategy<Value = Numbering> {
    prop_oneof![Just(Numbering::NewestFirst), Just(Numbering::OldestFirst)]
}

struct Scenario {
    fixture: Fixture,
    numbering: Numbering,
    written: Vec<String>,
    rotations: usize,
    /// The current content of app.log has a checkpoint.
    checkpointed: bool,
}

impl Scenario {
    fn apply(&mut self, action: &Action) {
        match action {
            Action::Append(count) => self.append(*count),
            Action::Step => self.step(),
            Action::CrashAfterPoll => {
                self.fixture.tailer().scan().unwrap();
                self.fixture.tailer().poll(&AtomicBool::new(false)).unwrap();
                self.fixture.restart();
            }
            Action::Restart => self.fixture.restart(),
            Action::Rotate {
                copytruncate,
                while_stopped,
            } => self.rotate(*copytruncate, *while_stopped),
            Action::CopytruncatesWhileStopped {
                appends,
                then_renamed,
            } => self.copytruncates_while_stopped(appends, *then_renamed),
        }
    }

    fn append(&mut self, count: usize) {
        let first = self.written.len();
        self.written
            .extend((first..first + count).map(|n| format!("line {n}")));
        self.fixture
            .append("app.log", &refs(&self.written[first..]));
    }

    fn step(&mut self) {
        self.fixture.step();
        let length = fs::metadata(self.fixture.path("app.log")).map_or(0, |m| m.len());
        self.checkpointed = length > 0;
    }

    /// Moves app.log's content to the next rotated name, by rename or by copytruncate.
    fn rotate_file(&mut self, copytruncate: bool) {
        self.rotations += 1;
        let rotated = match self.numbering {
            Numbering::NewestFirst => {
                self.fixture.shift_copies("app.log");
                "app.log.1".to_string()
            }
            Numbering::OldestFirst => format!("app.log.{}", self.rotations),
        };
        if copytruncate {
            self.fixture.copytruncate("app.log", &rotated);
        } else {
            self.fixture.rename("app.log", &rotated);
        }
    }

    /// One rotation, after the agent buffered lines of the content it rotates: content
    /// without a checkpoint cannot be found again once renamed away (see the tailer's
    /// module doc).
    fn rotate(&mut self, copytruncate: bool, while_stopped: bool) {
        if !self.fixture.path("app.log").exists() {
            return;
        }
        if !self.checkpointed {
            self.step();
        }
        if while_stopped {
            self.fixture.agent = None;
        }
        self.rotate_file(copytruncate);
        if while_stopped {
            self.fixture.start();
        }
        self.checkpointed = false;
        self.fixture.step();
    }

    /// Several copytruncates while the agent is stopped, so that whole generations are
    /// written and copied away unseen. With `then_renamed`, the file is then written to
    /// and renamed away in the same stop as the last copytruncate. Generations copied
    /// away unseen are recovered only with logrotate's numbering and while the file
    /// keeps its name (see the tailer's module doc); otherwise the agent sees each
    /// copytruncate but the last.
    fn copytruncates_while_stopped(&mut self, appends: &[usize], then_renamed: bool) {
        if !self.fixture.path("app.log").exists() {
            return;
        }
        if matches!(self.numbering, Numbering::NewestFirst) && !then_renamed {
            if !self.checkpointed {
                self.step();
            }
            self.fixture.agent = None;
            for &count in appends {
                self.append(count);
                self.rotate_file(true);
            }
        } else {
            let (last, seen) = appends.split_last().unwrap();
            for &count in seen {
                self.append(count);
                self.rotate(true, true);
            }
            // The generation that is copied and then replaced in the file while stopped.
            self.append((*last).max(1));
            self.step();
            self.fixture.agent = None;
            self.append(1);
            self.rotate_file(true);
            if then_renamed {
                self.append(1);
                self.rotate_file(false);
            }
        }
        self.fixture.start();
        self.checkpointed = false;
        self.fixture.step();
    }

    fn assert_every_line_once(&mut self) {
        self.fixture.step();
        self.fixture.restart();
        self.fixture.step();
        let mut ids: HashMap<&str, Vec<(FileIdentity, u64)>> = HashMap::new();
        for line in &self.fixture.buffered {
            ids.entry(line.text.as_str())
                .or_default()
                .push((line.identity, line.offset));
        }
        for text in &self.written {
            let found = ids.remove(text.as_str()).unwrap_or_default();
            assert_eq!(found.len(), 1, "{text:?} buffered as {found:?}");
        }
        assert!(ids.is_empty(), "lines never written were buffered: {ids:?}");
    }
}

/// 32 cases, or as many as `PROPTEST_CASES` asks for a longer run.
fn scenario_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok();
    let cases = cases.and_then(|cases| cases.parse().ok()).unwrap_or(32);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(scenario_config())]

    #[test]
    fn every_line_once_through_rotations_and_restarts(
        numbering in numbering_strategy(),
        actions in prop::collection::vec(action_strategy(), 1..30)
    ) {
        run_scenario(numbering, &actions);
    }
}

fn run_scenario(numbering: Numbering, actions: &[Action]) {
    let fixture = Fixture::new();
    let mut scenario = Scenario {
        fixture,
        numbering,
        written: Vec::new(),
        rotations: 0,
        checkpointed: false,
    };
    for action in actions {
        scenario.apply(action);
    }
    scenario.assert_every_line_once();
}

/// Found by the randomised test: lines recovered from a copy were recovered again after
/// a restart, because the checkpoint did not move with them.
#[test]
fn regression_copy_recovered_once_across_a_restart() {
    let copytruncate = Action::Rotate {
        copytruncate: true,
        while_stopped: false,
    };
    for numbering in [Numbering::NewestFirst, Numbering::OldestFirst] {
        run_scenario(
            numbering,
            &[
                Action::Append(1),
                Action::Step,
                Action::Append(1),
                copytruncate.clone(),
            ],
        );
    }
}

/// Found by the randomised test: with copies numbered oldest first, a file renamed away
/// and let go sat below the checkpointed copy and was read again as a new generation.
#[test]
fn regression_renamed_file_below_the_checkpointed_copy_is_not_read_again() {
    let rotate = |copytruncate| Action::Rotate {
        copytruncate,
        while_stopped: false,
    };
    run_scenario(
        Numbering::OldestFirst,
        &[
            Action::Append(1),
            rotate(false),
            Action::Append(1),
            rotate(true),
        ],
    );
}

/// Found by the randomised test against recovery that told new copies from old ones by
/// their modification time: rotations within one clock tick made old copies look new.
#[test]
fn regression_copies_rotated_within_a_clock_tick_are_not_read_again() {
    let rotate = |copytruncate, while_stopped| Action::Rotate {
        copytruncate,
        while_stopped,
    };
    for numbering in [Numbering::NewestFirst, Numbering::OldestFirst] {
        run_scenario(
            numbering,
            &[
                Action::Append(5),
                Action::Append(5),
                rotate(true, false),
                Action::Append(2),
                Action::Append(3),
                Action::Step,
                Action::Append(1),
                rotate(true, true),
                Action::Step,
                Action::CrashAfterPoll,
                rotate(false, false),
            ],
        );
    }
}

/// Found by the randomised test: app.log was empty at every start, so its checkpoint
/// kept describing its first generation while more generations were recovered than the
/// history holds; the next stop's copies were then not recovered.
#[test]
fn regression_more_unseen_generations_than_the_history_holds() {
    let stopped = |appends: &[usize]| Action::CopytruncatesWhileStopped {
        appends: appends.to_vec(),
        then_renamed: false,
    };
    run_scenario(
        Numbering::NewestFirst,
        &[
            Action::Append(1),
            stopped(&[0, 1]),
            stopped(&[1, 1]),
            stopped(&[1, 1, 1]),
            stopped(&[1, 1]),
            stopped(&[0, 1]),
            stopped(&[1, 1, 1]),
        ],
    );
}

/// Found by the randomised test: a file emptied by copytruncate and then renamed away
/// took the copy of the file that replaced it for a generation of its own.
#[test]
fn regression_file_renamed_away_does_not_take_its_successors_copies() {
    let rotate = |copytruncate| Action::Rotate {
        copytruncate,
        while_stopped: false,
    };
    run_scenario(
        Numbering::NewestFirst,
        &[
            Action::Append(1),
            rotate(true),
            rotate(false),
            Action::Append(1),
            rotate(true),
        ],
    );
}
