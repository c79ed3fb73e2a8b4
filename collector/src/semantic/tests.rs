//! Tests of the semantic layer that need no network beyond 127.0.0.1.

use super::config::{EmbedderConfig, OllamaConfig, SemanticConfig, VectorConfig};
use super::embed::{Embedder, cosine, prepare_text};
use super::queue::{EmbedItem, EmbedQueue, ItemKind};
use super::vectors::{LocalVectors, PointPayload, VectorError, VectorPoint};
use super::worker::Backoff;
use super::*;
use crate::parse::ParseContext;
use crate::pipeline::{Document, build_documents};
use garonne_common::{Batch, FileChunk, FileIdentity, LineFlags, Module};
use std::path::PathBuf;
use std::time::Duration;

fn item(key: u64, text: &str) -> EmbedItem {
    EmbedItem {
        kind: ItemKind::Template,
        key,
        text: text.to_string(),
        origin: None,
    }
}

#[test]
fn queue_keeps_one_entry_per_key_in_arrival_order() {
    let mut queue = EmbedQueue::new(10);
    assert!(queue.push(item(1, "a <*>")));
    assert!(queue.push(item(2, "b")));
    assert!(queue.push(item(1, "a <*> <*>")));
    let batch = queue.peek_batch(10);
    assert_eq!(batch, vec![item(1, "a <*> <*>"), item(2, "b")]);
    assert_eq!(queue.len(), 2, "peeking removes nothing");
}

#[test]
fn completing_a_batch_keeps_items_whose_text_changed_meanwhile() {
    let mut queue = EmbedQueue::new(10);
    queue.push(item(1, "a"));
    queue.push(item(2, "b"));
    let batch = queue.peek_batch(2);
    queue.push(item(2, "b <*>"));
    queue.complete(&batch);
    assert_eq!(queue.peek_batch(10), vec![item(2, "b <*>")]);
}

#[test]
fn queue_survives_a_save_and_reload_in_order() {
    let mut queue = EmbedQueue::new(10);
    for key in [5, 3, 9] {
        queue.push(item(key, &format!("text {key}")));
    }
    queue.complete(&[item(3, "text 3")]);
    let restored = EmbedQueue::from_bytes(&queue.to_bytes(), 10).unwrap();
    assert_eq!(
        restored.peek_batch(10),
        vec![item(5, "text 5"), item(9, "text 9")]
    );
}

#[test]
fn full_queue_refuses_new_keys_but_updates_waiting_ones() {
    let mut queue = EmbedQueue::new(2);
    queue.push(item(1, "a"));
    queue.push(item(2, "b"));
    assert!(!queue.push(item(3, "c")));
    assert!(queue.push(item(2, "b2")));
    assert_eq!(queue.refused(), 1);
    assert_eq!(queue.len(), 2);
}

#[test]
fn backoff_doubles_up_to_its_cap_and_resets() {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
    let delays: Vec<u128> = (0..4)
        .map(|_| backoff.next_delay(0.0).as_millis())
        .collect();
    assert_eq!(delays, vec![100, 200, 350, 350]);
    assert_eq!(backoff.failures, 4);
    assert_eq!(
        backoff.next_delay(0.99).as_millis(),
        263,
        "jitter shortens by <= 25%"
    );
    backoff.reset();
    assert_eq!(backoff.next_delay(0.0).as_millis(), 100);
}

#[test]
fn prepared_text_is_words_a_model_knows() {
    assert_eq!(
        prepare_text(
            "dfs.DataNode$PacketResponder: PacketResponder <*> for block blk_<*> terminating"
        ),
        "dfs Data Node Packet Responder Packet Responder for block blk terminating"
    );
    assert_eq!(
        prepare_text("Failed password for <*>"),
        "Failed password for"
    );
    assert_eq!(
        prepare_text("<*> <*>"),
        "<*> <*>",
        "nothing left: the text stays"
    );
}

fn config(directory: &std::path::Path) -> SemanticConfig {
    SemanticConfig::embedded(directory)
}

#[test]
fn configuration_reports_every_bad_key() {
    let table = |text: &str| text.parse::<toml::Table>().unwrap();
    let templates = table("persist_interval = \"0s\"\nembed_events = \"*\"");
    let ollama = table("url = \"localhost:11434\"\nbatch_size = 0");
    let qdrant = table("url = \"http://127.0.0.1:6334\"\ncollection = \"a b\"\nextra = 1");
    let error = SemanticConfig::from_tables(
        Some(&templates),
        Some(&ollama),
        Some(&qdrant),
        std::path::Path::new("/tmp"),
    )
    .unwrap_err();
    let text = error.to_string();
    for needle in [
        "templates.persist_interval",
        "templates.embed_events",
        "ollama.url",
        "ollama.batch_size",
        "[qdrant]: unknown field `extra`",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let defaults = config(std::path::Path::new("/data"));
    assert_eq!(defaults.embedder, EmbedderConfig::Builtin);
    assert_eq!(defaults.vectors, VectorConfig::Local);
    assert_eq!(defaults.directory, PathBuf::from("/data/templates"));
}

fn documents(lines: &[&str]) -> Vec<Document> {
    let identity = FileIdentity {
        device: 1,
        inode: 2,
        fingerprint: 3,
    };
    let mut chunk = FileChunk::new("/var/log/app.log".into(), identity, Module::Plain, 0);
    let mut offset = 0;
    for line in lines {
        chunk.push(
            offset,
            line.len() as u64 + 1,
            line.as_bytes(),
            LineFlags::default(),
        );
        offset += line.len() as u64 + 1;
    }
    let batch = Batch {
        agent_id: "web1".into(),
        host_name: "web1.example.org".into(),
        chunks: vec![chunk],
    };
    build_documents(&batch, &ParseContext::new(jiff::tz::TimeZone::UTC)).0
}

#[test]
fn observer_names_templates_and_ids_survive_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let lines = [
        "connection from 10.0.0.1 closed after 12 ms",
        "connection from 10.0.0.2 closed after 15 ms",
        "disk /dev/sda1 is full",
    ];
    let semantic = Semantic::open(config(directory.path())).unwrap();
    std::fs::create_dir_all(&semantic.config().directory).unwrap();
    let mut first = documents(&lines);
    semantic.observer().observe("web1", &mut first);
    let id_of = |document: &Document| {
        let flat = crate::parse::flatten(&document.body);
        (
            flat["log.template.id"].as_str().unwrap().to_string(),
            flat["log.template.text"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(id_of(&first[0]).0, id_of(&first[1]).0);
    assert_ne!(id_of(&first[0]).0, id_of(&first[2]).0);
    assert_eq!(
        id_of(&first[1]).1,
        "connection from <*> closed after <*> ms"
    );
    let stats = semantic.stats();
    let connection = stats
        .get(stats::parse_id(&id_of(&first[0]).0).unwrap())
        .unwrap();
    assert_eq!(connection.count, 2);
    assert_eq!(
        connection.hosts.iter().collect::<Vec<_>>(),
        ["web1.example.org"]
    );
    assert_eq!(
        connection.examples,
        vec![first[0].id.clone(), first[1].id.clone()]
    );
    assert_eq!(semantic.pending(), 2, "two templates wait for a vector");
    semantic.save().unwrap();

    let reopened = Semantic::open(config(directory.path())).unwrap();
    assert_eq!(reopened.pending(), 2, "the queue was saved");
    let mut again = documents(&["disk /dev/sdb2 is full"]);
    reopened.observer().observe("web1", &mut again);
    assert_eq!(id_of(&again[0]).0, id_of(&first[2]).0);
    assert_eq!(reopened.stats().templates.len(), 2);
}

fn point(key: u64, vector: Vec<f32>) -> VectorPoint {
    VectorPoint {
        kind: ItemKind::Template,
        key,
        vector,
        payload: PointPayload::default(),
    }
}

#[test]
fn local_vectors_refuse_a_wrong_dimension_and_reload_by_model() {
    let directory = tempfile::tempdir().unwrap();
    let mut local = LocalVectors::open(directory.path(), "model-a").unwrap();
    local
        .upsert(vec![
            point(1, vec![1.0, 0.0, 0.0]),
            point(2, vec![0.0, 1.0, 0.0]),
        ])
        .unwrap();
    let error = local.upsert(vec![point(3, vec![1.0, 0.0])]).unwrap_err();
    assert!(
        matches!(
            error,
            VectorError::Dimension {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{error}"
    );
    let error = local.search(&[1.0, 0.0], 5, None).unwrap_err();
    assert!(error.to_string().contains("2 dimensions"), "{error}");
    let hits = LocalVectors::open(directory.path(), "model-a")
        .unwrap()
        .search(&[0.9, 0.1, 0.0], 5, None)
        .unwrap();
    assert_eq!(hits.iter().map(|hit| hit.key).collect::<Vec<_>>(), [1, 2]);
    let other_model = LocalVectors::open(directory.path(), "model-b").unwrap();
    assert!(
        other_model.is_empty(),
        "vectors of another model are dropped"
    );
}

/// A minimal Ollama `/api/embed` on 127.0.0.1 that fails its first `failures` calls
/// with a 503 and otherwise returns one 3-dimensional vector per input.
async fn fake_ollama(failures: usize) -> (String, Arc<std::sync::Mutex<Vec<usize>>>) {
    use axum::{Json, Router, routing::post};
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = calls.clone();
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(failures));
    let app = Router::new().route(
        "/api/embed",
        post(move |Json(body): Json<serde_json::Value>| {
            let seen = seen.clone();
            let remaining = remaining.clone();
            async move {
                let inputs = body["input"].as_array().map_or(0, Vec::len);
                seen.lock().unwrap().push(inputs);
                if remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                let vectors: Vec<Vec<f32>> =
                    (0..inputs).map(|i| vec![1.0, i as f32, 0.5]).collect();
                Ok(Json(
                    serde_json::json!({"model": body["model"], "embeddings": vectors}),
                ))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_embeds_in_batches_and_retries_a_failed_batch() {
    let (url, calls) = fake_ollama(1).await;
    let directory = tempfile::tempdir().unwrap();
    let mut semantic_config = config(directory.path());
    semantic_config.embedder = EmbedderConfig::Ollama(OllamaConfig {
        url,
        model: "test-model".into(),
        timeout: Duration::from_secs(10),
    });
    semantic_config.batch_size = 4;
    let semantic = Semantic::open(semantic_config).unwrap();
    let lines: Vec<String> = (0..10)
        .map(|i| format!("event kind{} happened", char::from(b'a' + i)))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut batch = documents(&lines);
    semantic.observer().observe("web1", &mut batch);
    assert_eq!(semantic.pending(), 10);
    semantic.start().unwrap();
    let started = std::time::Instant::now();
    while semantic.pending() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    semantic.shutdown().await;
    assert_eq!(
        *calls.lock().unwrap(),
        vec![4, 4, 4, 2],
        "failed batch sent again whole"
    );
    assert_eq!(
        semantic
            .metrics()
            .embedding_failures
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        semantic.metrics().embedding_calls.load(Ordering::Relaxed),
        4
    );
    let local = LocalVectors::open(&directory.path().join("templates"), "ollama:test-model");
    assert_eq!(local.unwrap().len(), 10);
    let saved = EmbedQueue::from_bytes(
        &std::fs::read(directory.path().join("templates").join(QUEUE_FILE)).unwrap(),
        10,
    )
    .unwrap();
    assert!(
        saved.is_empty(),
        "the saved queue is empty once all is stored"
    );
}

#[tokio::test]
async fn builtin_model_ranks_a_paraphrase_above_unrelated_text() {
    let embedder = Embedder::from_config(&EmbedderConfig::Builtin);
    let texts: Vec<String> = [
        "Failed password for <*> from <*> port <*> ssh2",
        "PacketResponder <*> for block blk_<*> terminating",
        "the user typed a wrong password when logging in over ssh",
    ]
    .iter()
    .map(|text| prepare_text(text))
    .collect();
    let vectors = embedder.embed(&texts).await.unwrap();
    assert_eq!(vectors[0].len(), 384);
    let related = cosine(&vectors[2], &vectors[0]);
    let unrelated = cosine(&vectors[2], &vectors[1]);
    assert!(related > unrelated + 0.2, "{related} vs {unrelated}");
}

/// Lines per second through the template observer (mining, statistics, the two
/// template fields), over the documents of the eight Loghub systems, on one thread.
/// Run with `--release --ignored --nocapture`; recorded in docs/templates.md.
#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn observer_throughput_on_loghub() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub");
    let mut batches = Vec::new();
    for system in [
        "Apache",
        "BGL",
        "HDFS",
        "Hadoop",
        "Linux",
        "OpenSSH",
        "Spark",
        "Zookeeper",
    ] {
        let text = std::fs::read_to_string(root.join(format!("{system}/{system}_2k.log"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        batches.push(documents(&lines));
    }
    let lines: usize = batches.iter().map(Vec::len).sum();
    let rounds = 20;
    let directory = tempfile::tempdir().unwrap();
    let semantic = Semantic::open(config(directory.path())).unwrap();
    let observer = semantic.observer();
    let mut seconds = 0.0;
    for _ in 0..rounds {
        for batch in &batches {
            let mut batch = batch.clone();
            let started = std::time::Instant::now();
            observer.observe("web1", &mut batch);
            seconds += started.elapsed().as_secs_f64();
        }
    }
    println!(
        "{} lines in {seconds:.2}s: {:.0} lines/s; {} templates",
        lines * rounds,
        (lines * rounds) as f64 / seconds,
        semantic.template_count()
    );
}
