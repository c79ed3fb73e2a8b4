//! Parser throughput on real Apache logs: `cargo bench -p garonne-collector --bench parse`.
//!
//! Each measurement runs over every line of a sample file, and criterion reports lines
//! per second ("elem/s"). Three levels are timed:
//!
//! - `access/borrowed` and `error/borrowed`: the borrowed first step
//!   ([`access::parse`], [`error::parse`]), which reads a line into slices of itself and
//!   allocates nothing. The target for access lines is 2 million lines a second per core.
//! - `access/document` and `error/document`: [`parse_line`], the borrowed step plus
//!   building the ECS document the collector indexes.
//!
//! - `batch/discard` and `batch/documents`: a received batch of 1,000 access lines,
//!   decoded and parsed (what the `discard` sink does), and also made into documents,
//!   classified and written as bulk NDJSON (what indexing costs before the store).
//!
//! Samples, overridable with environment variables:
//!
//! - `GARONNE_BENCH_ACCESS_LOG`: 10,000 real combined-format lines, by default
//!   `../shared/data/apache-access/apache_logs` beside the repository, else the copy in
//!   `packaging/samples/apache-access.log`;
//! - `GARONNE_BENCH_ERROR_LOG`: 2,000 real Apache 2.2 error lines, by default
//!   `../shared/data/loghub/Apache/Apache_2k.log` beside the repository.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use garonne_collector::alerts::{ImportanceObserver, ImportanceRules};
use garonne_collector::observe::DocumentObserver;
use garonne_collector::parse::{Format, ParseContext, access, error, parse_line};
use garonne_collector::pipeline;
use garonne_common::{Batch, FileChunk, FileIdentity, LineFlags, Module, wire};
use jiff::tz::TimeZone;
use std::hint::black_box;
use std::path::{Path, PathBuf};

/// The collector's own allocator, so that allocation costs are the ones it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sample_path(variable: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    candidates
        .iter()
        .map(|candidate| manifest.join(candidate))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no sample found; set {variable} to a log file"))
}

fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    text.lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

fn access_lines() -> Vec<String> {
    read_lines(&sample_path(
        "GARONNE_BENCH_ACCESS_LOG",
        &[
            "../../shared/data/apache-access/apache_logs",
            "../packaging/samples/apache-access.log",
        ],
    ))
}

fn error_lines() -> Vec<String> {
    read_lines(&sample_path(
        "GARONNE_BENCH_ERROR_LOG",
        &["../../shared/data/loghub/Apache/Apache_2k.log"],
    ))
}

/// Counts the lines the parser accepted, so that a regression that makes every line fail
/// fast cannot pass for a speed-up. `parses` keeps the parsed line from being optimised
/// away (see its callers) and says whether it parsed.
fn count_parsed(lines: &[String], parses: impl Fn(&str) -> bool) -> usize {
    lines
        .iter()
        .filter(|line| parses(black_box(line.as_str())))
        .count()
}

fn bench_format(
    criterion: &mut Criterion,
    name: &str,
    format: Format,
    lines: &[String],
    parses: impl Fn(&str) -> bool + Copy,
) {
    let parsed = count_parsed(lines, parses);
    assert!(
        parsed * 100 >= lines.len() * 99,
        "{name}: only {parsed} of {} sample lines parse",
        lines.len()
    );
    let context = ParseContext::new(TimeZone::UTC);
    let mut group = criterion.benchmark_group(name);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("borrowed", |bencher| {
        bencher.iter(|| count_parsed(lines, parses))
    });
    group.bench_function("document", |bencher| {
        bencher.iter(|| {
            for line in lines {
                black_box(parse_line(format, black_box(line), &context));
            }
        })
    });
    group.finish();
}

fn parsers(criterion: &mut Criterion) {
    let access = access_lines();
    bench_format(criterion, "access", Format::ApacheAccess, &access, |line| {
        black_box(access::parse(line)).is_ok()
    });
    let error = error_lines();
    bench_format(criterion, "error", Format::ApacheError, &error, |line| {
        black_box(error::parse(line)).is_ok()
    });
}

/// The sample as the collector receives it: compressed batches of 1,000 lines.
fn encoded_batches(lines: &[String]) -> Vec<Vec<u8>> {
    let identity = FileIdentity {
        device: 1,
        inode: 2,
        fingerprint: 3,
    };
    let mut offset = 0;
    lines
        .chunks(1000)
        .map(|group| {
            let mut chunk = FileChunk::new(
                "/var/log/apache2/access.log".into(),
                identity,
                Module::ApacheAccess,
                1_700_000_000_000,
            );
            for line in group {
                let length = line.len() as u64 + 1;
                chunk.push(offset, length, line.as_bytes(), LineFlags::default());
                offset += length;
            }
            let batch = Batch {
                agent_id: "web1".into(),
                host_name: "web1.example.org".into(),
                chunks: vec![chunk],
            };
            wire::encode_batch(&batch).expect("encode batch")
        })
        .collect()
}

/// What the collector does with a received batch, per line: `discard` decodes and
/// parses (the `discard` sink); `documents` also builds the ECS documents, classifies
/// their importance and writes them as bulk NDJSON, as the Elasticsearch store does.
fn batches(criterion: &mut Criterion) {
    let lines = access_lines();
    let payloads = encoded_batches(&lines);
    let context = ParseContext::new(TimeZone::UTC);
    let importance = ImportanceObserver::new(ImportanceRules::from_table(None).expect("rules"));
    let mut group = criterion.benchmark_group("batch");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("discard", |bencher| {
        bencher.iter(|| {
            let mut parsed = 0;
            for payload in &payloads {
                let batch = wire::decode_batch(payload).expect("decode");
                let report = pipeline::parse_only(&batch, &context);
                parsed += report.documents - report.unparsed;
            }
            assert!(parsed * 100 >= lines.len() * 99);
        })
    });
    let mut ndjson = Vec::with_capacity(16 << 20);
    group.bench_function("documents", |bencher| {
        bencher.iter(|| {
            ndjson.clear();
            for payload in &payloads {
                let batch = wire::decode_batch(payload).expect("decode");
                let (mut documents, _) = pipeline::build_documents(&batch, &context);
                importance.observe(&batch.agent_id, &mut documents);
                for document in &documents {
                    serde_json::to_writer(&mut ndjson, &document.body).expect("serialize");
                    ndjson.push(b'\n');
                }
            }
            black_box(ndjson.len())
        })
    });
    group.finish();
}

criterion_group!(benches, parsers, batches);
criterion_main!(benches);
