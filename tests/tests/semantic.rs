//! The semantic layer end to end: a real agent ships the eight Loghub logs to a real
//! collector, which mines their templates and embeds them; `similar` (command line and
//! HTTP API) must find the template of a real error from a paraphrase of it, with the
//! built-in model and vector file, and with the Ollama and Qdrant stand-ins.

use garonne_tests::ollama_standin::OllamaStandin;
use garonne_tests::qdrant_standin::QdrantStandin;
use garonne_tests::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Each Loghub system with the module whose parser fits its lines.
const SYSTEMS: [(&str, &str); 8] = [
    ("Apache", "apache.error"),
    ("BGL", "plain"),
    ("HDFS", "plain"),
    ("Hadoop", "plain"),
    ("Linux", "syslog"),
    ("OpenSSH", "syslog"),
    ("Spark", "plain"),
    ("Zookeeper", "plain"),
];

/// A real error's template (a part of its text that names it) and a paraphrase with
/// other words and the same meaning.
const PARAPHRASES: [(&str, &str); 3] = [
    (
        "Cannot open channel to <*> at election address",
        "unable to connect to the other server for the leader vote",
    ),
    (
        "Can't find child <*> in scoreboard",
        "the child process is missing from the scoreboard",
    ),
    (
        "Failed password for invalid user",
        "wrong password for an account that does not exist",
    ),
];

fn prepare(dir: &Path) -> (String, u64) {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut inputs = String::new();
    let mut lines = 0;
    for (system, module) in SYSTEMS {
        let source = shared(&format!("data/loghub/{system}/{system}_2k.log"));
        let target = logs.join(format!("{system}.log"));
        lines += copy_log(&source, &target) as u64;
        inputs.push_str(&format!(
            "[[input]]\npaths = [\"{}\"]\nmodule = \"{module}\"\n\n",
            target.display()
        ));
    }
    (inputs, lines)
}

fn get_json(url: &str) -> Value {
    reqwest::blocking::get(url)
        .and_then(|response| response.json())
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
}

fn collector_command(collector: &Collector, arguments: &[&str]) -> Vec<Value> {
    let output = Command::new(binary("garonne-collector"))
        .args(arguments)
        .arg("--config")
        .arg(&collector.config)
        .output()
        .expect("run garonne-collector");
    assert!(
        output.status.success(),
        "{arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON lines"))
        .collect()
}

/// Ships the logs, waits until every template has its vector and is saved, and
/// checks search; `extra` configures the embedder and vector store.
fn ship_and_search(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let certs = Certs::create(&dir.join("certs")).unwrap();
    let (inputs, lines) = prepare(dir);
    let table =
        format!("[templates]\npersist_interval = \"1s\"\nrefresh_interval = \"1s\"\n{extra}");
    let mut collector = Collector::start(dir, &certs, &table).unwrap();
    let api = collector.api_url();
    let config = agent_config(dir, &certs, collector.port, &inputs, "");
    let mut agent = start_agent(dir, &config).unwrap();
    wait_until(READY_TIMEOUT, "every Loghub line indexed", || {
        collector.count("*") >= lines
    });
    agent.stop();
    let status_url = format!("{api}/api/v1/templates/status");
    let mut polls = 0;
    wait_until(READY_TIMEOUT, "every template embedded and saved", || {
        let status = get_json(&status_url);
        polls += 1;
        if polls % 50 == 0 {
            println!("waiting for the semantic layer: {status}");
        }
        status["events"].as_u64() >= Some(lines)
            && status["pending"] == 0
            && status["unsaved"] == false
    });
    let status = get_json(&status_url);
    let calls = status["embedding_calls"].as_u64().unwrap();
    println!(
        "{} lines, {} templates, {} texts in {} embedding calls ({:.2} per 1,000 lines), {}",
        lines,
        status["templates"],
        status["texts_embedded"],
        calls,
        calls as f64 * 1000.0 / lines as f64,
        status["embedder"]
    );
    assert!(calls as f64 * 1000.0 / lines as f64 <= 1.0, "{status}");

    let templates = collector_command(&collector, &["templates", "list"]);
    assert_eq!(
        templates
            .iter()
            .map(|t| t["count"].as_u64().unwrap())
            .sum::<u64>(),
        lines,
        "every line counted in one template"
    );
    let mut missed = Vec::new();
    for (needle, paraphrase) in PARAPHRASES {
        let target = templates
            .iter()
            .find(|t| t["template"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no template contains {needle:?}"));
        let target_id = target["template_id"].as_str().unwrap();
        let results = collector_command(&collector, &["similar", "--limit", "5", paraphrase]);
        let ids: Vec<&str> = results
            .iter()
            .map(|r| r["template_id"].as_str().unwrap())
            .collect();
        for result in &results {
            println!("  {:.3} {}", result["score"], result["template"]);
        }
        println!("{paraphrase:?} -> {needle:?}: {}", ids.contains(&target_id));
        if !ids.contains(&target_id) {
            missed.push(paraphrase);
            continue;
        }
        let hit = results
            .iter()
            .find(|r| r["template_id"] == target_id)
            .unwrap();
        assert_eq!(hit["count"], target["count"]);
        assert!(!hit["hosts"].as_array().unwrap().is_empty());
        let example = &hit["examples"][0];
        assert_eq!(example["log"]["template"]["id"], target_id, "{hit}");

        let url = format!(
            "{api}/api/v1/similar?limit=5&q={}",
            paraphrase.replace(' ', "+")
        );
        let answer = get_json(&url);
        let api_ids: Vec<&str> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["template_id"].as_str().unwrap())
            .collect();
        assert!(api_ids.contains(&target_id), "API: {answer}");

        let event_id = example["_id"].as_str().unwrap();
        let by_event = collector_command(
            &collector,
            &["similar", "--limit", "3", "--event", event_id],
        );
        assert_eq!(
            by_event[0]["template_id"], target_id,
            "an event finds its own template"
        );
    }
    assert!(missed.is_empty(), "not in the top five: {missed:?}");
    collector.process.stop();
}

#[test]
fn paraphrase_finds_its_template_with_the_builtin_model() {
    ship_and_search("");
}

#[test]
fn paraphrase_finds_its_template_through_ollama_and_qdrant() {
    let dir = tempfile::tempdir().unwrap();
    let ollama = OllamaStandin::start(dir.path(), "nomic-embed-text").unwrap();
    let qdrant = QdrantStandin::start().unwrap();
    let tables = format!(
        "{}batch_size = 32\n{}",
        ollama.collector_table(),
        qdrant.collector_table("garonne-templates")
    );
    ship_and_search(&tables);
    assert!(qdrant.service.point_count("garonne-templates") > 100);
    assert_eq!(
        qdrant.service.indexed_fields("garonne-templates"),
        ["count", "datasets", "hosts", "key", "kind", "last_seen_ms"]
    );
}

#[test]
fn a_qdrant_collection_of_another_dimension_is_reported_not_overwritten() {
    use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, VectorParamsBuilder};
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let qdrant = QdrantStandin::start().unwrap();
    let client = qdrant_client::Qdrant::from_url(&qdrant.url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(
            client.create_collection(
                CreateCollectionBuilder::new("garonne-templates")
                    .vectors_config(VectorParamsBuilder::new(3, Distance::Cosine)),
            ),
        )
        .unwrap();
    let certs = Certs::create(&dir.join("certs")).unwrap();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lines = copy_log(
        &shared("data/loghub/HDFS/HDFS_2k.log"),
        &logs.join("hdfs.log"),
    );
    let table = qdrant.collector_table("garonne-templates");
    let mut collector = Collector::start(dir, &certs, &table).unwrap();
    let inputs = format!(
        "[[input]]\npaths = [\"{}/hdfs.log\"]\nmodule = \"plain\"\n",
        logs.display()
    );
    let config = agent_config(dir, &certs, collector.port, &inputs, "");
    let _agent = start_agent(dir, &config).unwrap();
    wait_until(READY_TIMEOUT, "the HDFS lines indexed", || {
        collector.count("*") >= lines as u64
    });
    let line = collector
        .process
        .wait_for_log("holds vectors of 3 dimensions but the embedding model gives 384");
    assert!(
        line.contains("embedding batch failed, will retry"),
        "{line}"
    );
    assert_eq!(qdrant.service.point_count("garonne-templates"), 0);
    let api = collector.api_url();
    let status = get_json(&format!("{api}/api/v1/templates/status"));
    assert!(
        status["pending"].as_u64().unwrap() > 0,
        "nothing dropped: {status}"
    );
    assert!(
        status["embedding_failures"].as_u64().unwrap() > 0,
        "{status}"
    );
}
