//! The `templates` and `similar` commands of `garonne-collector`.

use super::config::SemanticConfig;
use super::{Semantic, load_stats};
use crate::store::Store;
use crate::templates::{HeaderFormat, MinerConfig, TemplateId, TemplateMiner};
use anyhow::Context;
use garonne_common::config::CollectorConfig;
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// The semantic configuration of a collector configuration file.
pub fn semantic_config(config: &CollectorConfig) -> anyhow::Result<SemanticConfig> {
    Ok(SemanticConfig::from_tables(
        config.templates.as_ref(),
        config.ollama.as_ref(),
        config.qdrant.as_ref(),
        &config.collector.data_dir,
    )?)
}

/// `templates mine`: reads every line, learns templates, then prints one JSON object
/// per non-blank line with its line number, header fields, `template_id` and the final
/// text of its template (templates generalise as lines arrive; ids never change).
pub fn mine(
    header_format: Option<&str>,
    input: impl BufRead,
    output: &mut impl Write,
) -> anyhow::Result<()> {
    let format = header_format
        .map(HeaderFormat::parse)
        .transpose()
        .context("invalid --header-format")?;
    let mut miner = TemplateMiner::new(MinerConfig::default());
    let mut lines: Vec<(
        usize,
        TemplateId,
        serde_json::Map<String, serde_json::Value>,
    )> = Vec::new();
    for (index, line) in input.split(b'\n').enumerate() {
        let line = line.context("cannot read input")?;
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned();
        if text.trim().is_empty() {
            continue;
        }
        let mut fields = serde_json::Map::new();
        let content = match format.as_ref().and_then(|format| format.split(&text)) {
            Some(split) => {
                for (name, value) in split.iter() {
                    fields.insert(name.to_string(), json!(value));
                }
                split.content().to_string()
            }
            None => text.clone(),
        };
        let found = miner.add(&content);
        fields.insert("content".into(), json!(content));
        lines.push((index + 1, found.id, fields));
    }
    let texts: HashMap<TemplateId, String> = miner
        .templates()
        .map(|info| (info.id, info.template))
        .collect();
    for (number, id, mut fields) in lines {
        fields.insert("line".into(), json!(number));
        fields.insert("template_id".into(), json!(id.to_string()));
        fields.insert(
            "template".into(),
            json!(texts.get(&id).cloned().unwrap_or_default()),
        );
        let line = serde_json::to_vec(&fields)?;
        let written = output
            .write_all(&line)
            .and_then(|()| output.write_all(b"\n"));
        match written {
            // The reader stopped early (`| head`): nothing more to say.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    Ok(())
}

/// `templates list`: the collector's saved templates, most frequent first.
pub fn list(config: &CollectorConfig, limit: usize, output: &mut impl Write) -> anyhow::Result<()> {
    let semantic = semantic_config(config)?;
    let stats = load_stats(&semantic.directory)?;
    for stats in stats.by_count().into_iter().take(limit) {
        let line = stats.view();
        serde_json::to_writer(&mut *output, &line)?;
        output.write_all(b"\n")?;
    }
    Ok(())
}

/// What `similar` looks for.
pub enum SimilarQuery {
    Text(String),
    Event(String),
}

/// `similar`: one JSON object per result, best first, read from the saved state.
pub async fn similar(
    config: &CollectorConfig,
    store: &Store,
    query: SimilarQuery,
    limit: usize,
    output: &mut impl Write,
) -> anyhow::Result<()> {
    let semantic = Semantic::open(semantic_config(config)?)?;
    let results = match query {
        SimilarQuery::Text(text) => semantic.similar_to_text(&text, limit, store).await?,
        SimilarQuery::Event(id) => semantic.similar_to_event(&id, limit, store).await?.1,
    };
    for result in results {
        serde_json::to_writer(&mut *output, &result)?;
        output.write_all(b"\n")?;
    }
    Ok(())
}
