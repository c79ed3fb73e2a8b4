//! The embedded index: tantivy in `{data_dir}/index`, for a collector without
//! Elasticsearch.
//!
//! Each document is stored whole in one JSON field that is also the default search
//! field, so `http.response.status_code:404` and free words both work as they do in
//! Elasticsearch's query string. Writes from concurrent batches are grouped into one
//! commit; a write returns after its commit, when the documents are on disk. A document
//! whose id is already present replaces it with identical content, so replays never
//! double.

use super::{SearchResult, StoreError, WriteReport};
use crate::pipeline::Document;
use crate::query::Term as QueryTerm;
use serde_json::Value;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, InvertedIndexRangeQuery, Occur, Query, QueryParser};
use tantivy::schema::{Field, INDEXED, STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::{mpsc, oneshot};

const PRESENT_FIELD: &str = "_fields";
/// Every value of a document as text, for free-text terms: a JSON field is searched by
/// path, so words without a field name need a field of their own.
const ALL_TEXT_FIELD: &str = "_all";
/// Each document's `@timestamp` in milliseconds, for sorting and time ranges.
const MILLIS_FIELD: &str = "_timestamp";

/// Memory the index writer may use before it flushes a segment.
const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;

struct Fields {
    id: Field,
    /// Every field path a document has, for `field:*` queries.
    present: Field,
    all_text: Field,
    timestamp: Field,
    document: Field,
}

type WriteRequest = (
    Vec<Document>,
    oneshot::Sender<Result<WriteReport, StoreError>>,
);

pub struct EmbeddedStore {
    path: PathBuf,
    fields_index: Index,
    reader: IndexReader,
    writes: Option<mpsc::Sender<WriteRequest>>,
    search_lock: Mutex<()>,
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_text_field("_id", STRING | STORED);
    builder.add_text_field(PRESENT_FIELD, STRING);
    builder.add_text_field(ALL_TEXT_FIELD, TEXT);
    builder.add_i64_field(MILLIS_FIELD, INDEXED | STORED | tantivy::schema::FAST);
    builder.add_json_field("_source", TEXT | STORED);
    builder.build()
}

fn fields(schema: &Schema) -> Fields {
    let field = |name| schema.get_field(name).expect("field defined in schema()");
    Fields {
        id: field("_id"),
        present: field(PRESENT_FIELD),
        all_text: field(ALL_TEXT_FIELD),
        timestamp: field(MILLIS_FIELD),
        document: field("_source"),
    }
}

fn open_index(path: &Path) -> Result<Index, StoreError> {
    let fail = |error: &dyn std::fmt::Display| {
        StoreError::Failed(format!(
            "cannot open embedded index {}: {error}",
            path.display()
        ))
    };
    std::fs::create_dir_all(path).map_err(|error| fail(&error))?;
    let directory = tantivy::directory::MmapDirectory::open(path).map_err(|error| fail(&error))?;
    Index::open_or_create(directory, schema()).map_err(|error| fail(&error))
}

impl EmbeddedStore {
    /// Opens the index for searching only (the `search` command).
    pub fn open_read_only(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let index = open_index(path)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|error| StoreError::Failed(error.to_string()))?;
        Ok(EmbeddedStore {
            path: path.to_path_buf(),
            fields_index: index,
            reader,
            writes: None,
            search_lock: Mutex::new(()),
        })
    }

    /// Opens the index for writing; the writer runs on a thread of its own.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let mut store = EmbeddedStore::open_read_only(path)?;
        let writer = lock_writer(&store.fields_index, path)?;
        let (sender, receiver) = mpsc::channel(64);
        let fields = fields(&store.fields_index.schema());
        let reader = store.reader.clone();
        std::thread::Builder::new()
            .name("embedded-index".into())
            .spawn(move || run_writer(writer, fields, reader, receiver))
            .map_err(|error| StoreError::Failed(error.to_string()))?;
        store.writes = Some(sender);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn write(&self, documents: Vec<Document>) -> Result<WriteReport, StoreError> {
        let Some(writes) = &self.writes else {
            return Err(StoreError::Failed("embedded index opened read-only".into()));
        };
        let (sender, receiver) = oneshot::channel();
        writes
            .send((documents, sender))
            .await
            .map_err(|_| StoreError::Failed("embedded index writer stopped".into()))?;
        receiver
            .await
            .map_err(|_| StoreError::Failed("embedded index writer stopped".into()))?
    }

    /// Searches the committed documents, newest first.
    pub fn search(&self, query: &str, limit: usize) -> Result<SearchResult, StoreError> {
        let _guard = self.search_lock.lock();
        self.reader
            .reload()
            .map_err(|error| StoreError::Failed(error.to_string()))?;
        let searcher = self.reader.searcher();
        let schema = self.fields_index.schema();
        let fields = fields(&schema);
        let parsed = parse_query(&self.fields_index, &fields, query)?;
        let total = searcher
            .search(&parsed, &Count)
            .map_err(|e| StoreError::Failed(e.to_string()))? as u64;
        let mut documents = Vec::new();
        if limit > 0 {
            let collector =
                TopDocs::with_limit(limit).order_by_fast_field::<i64>(MILLIS_FIELD, Order::Desc);
            let hits = searcher
                .search(&parsed, &collector)
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            for (_, address) in hits {
                let stored: TantivyDocument = searcher
                    .doc(address)
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                documents.push(source_of(&stored, &fields));
            }
        }
        Ok(SearchResult { total, documents })
    }
}

/// Takes the index's writer lock. After a configuration reload the previous writer
/// thread may still be closing, so a busy lock is retried for a few seconds.
fn lock_writer(index: &Index, path: &Path) -> Result<IndexWriter, StoreError> {
    let mut attempts = 0;
    loop {
        match index.writer(WRITER_HEAP_BYTES) {
            Ok(writer) => return Ok(writer),
            Err(tantivy::TantivyError::LockFailure(..)) if attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(tantivy::TantivyError::LockFailure(..)) => {
                let reason = format!(
                    "embedded index {} is locked by another process; is another \
                     garonne-collector running with the same data_dir?",
                    path.display()
                );
                return Err(StoreError::Failed(reason));
            }
            Err(error) => {
                let reason = format!("cannot lock embedded index {}: {error}", path.display());
                return Err(StoreError::Failed(reason));
            }
        }
    }
}

fn parse_query(index: &Index, fields: &Fields, query: &str) -> Result<Box<dyn Query>, StoreError> {
    let fail = |reason: String| StoreError::Query {
        query: query.to_string(),
        reason,
    };
    let parsed = crate::query::Query::parse(query).map_err(|error| fail(error.to_string()))?;
    let mut parser = QueryParser::for_index(index, vec![fields.all_text, fields.document]);
    parser.set_conjunction_by_default();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for term in &parsed.terms {
        let (occur, positive) = match term {
            QueryTerm::Not(inner) => (Occur::MustNot, &**inner),
            positive => (Occur::Must, positive),
        };
        let clause: Box<dyn Query> = match positive {
            QueryTerm::Range { path, lower, upper } => {
                Box::new(range_query(fields, path, *lower, *upper))
            }
            other => {
                // Only a range excluded twice (`--field:>1`) has no text form.
                let text = other
                    .to_tantivy(PRESENT_FIELD)
                    .ok_or_else(|| fail("a range cannot be excluded twice".into()))?;
                parser
                    .parse_query(&text)
                    .map_err(|error| fail(error.to_string()))?
            }
        };
        clauses.push((occur, clause));
    }
    // A query of exclusions alone means everything except them.
    if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// A range over `@timestamp` (the index's milliseconds field) or over the whole numbers
/// at a path of the document. Numbers in a document are indexed as `i64` terms under
/// their path, next to each other in the term dictionary, so both ends are always set:
/// an open end would run on into the terms of other paths.
fn range_query(
    fields: &Fields,
    path: &str,
    lower: Bound<i64>,
    upper: Bound<i64>,
) -> InvertedIndexRangeQuery {
    let term = |value: i64| {
        if path == crate::query::TIMESTAMP_FIELD {
            Term::from_field_i64(fields.timestamp, value)
        } else {
            let mut term = Term::from_field_json_path(fields.document, path, false);
            term.append_type_and_fast_value(value);
            term
        }
    };
    let lower = match lower {
        Bound::Unbounded => Bound::Included(term(i64::MIN)),
        bound => bound.map(term),
    };
    let upper = match upper {
        Bound::Unbounded => Bound::Included(term(i64::MAX)),
        bound => bound.map(term),
    };
    InvertedIndexRangeQuery::new(lower, upper)
}

fn source_of(stored: &TantivyDocument, fields: &Fields) -> Value {
    use tantivy::schema::document::Value as _;
    let mut source = serde_json::Map::new();
    if let Some(object) = stored
        .get_first(fields.document)
        .and_then(|value| value.as_object())
    {
        for (key, value) in object {
            source.insert(key.to_string(), to_json(value));
        }
    }
    if let Some(id) = stored.get_first(fields.id).and_then(|value| value.as_str()) {
        source.insert("_id".into(), Value::String(id.to_string()));
    }
    Value::Object(source)
}

fn to_json<'a>(value: impl tantivy::schema::document::Value<'a>) -> Value {
    use tantivy::schema::document::ReferenceValue;
    use tantivy::schema::document::ReferenceValueLeaf as Leaf;
    match value.as_value() {
        ReferenceValue::Leaf(leaf) => match leaf {
            Leaf::Str(text) => Value::String(text.to_string()),
            Leaf::U64(number) => Value::from(number),
            Leaf::I64(number) => Value::from(number),
            Leaf::F64(number) => Value::from(number),
            Leaf::Bool(flag) => Value::Bool(flag),
            Leaf::Date(date) => {
                let millis = date.into_timestamp_millis();
                jiff::Timestamp::from_millisecond(millis)
                    .map(|time| Value::String(crate::pipeline::format_timestamp(time)))
                    .unwrap_or(Value::from(millis))
            }
            _ => Value::Null,
        },
        ReferenceValue::Array(items) => Value::Array(items.map(to_json).collect()),
        ReferenceValue::Object(entries) => Value::Object(
            entries
                .map(|(key, value)| (key.to_string(), to_json(value)))
                .collect(),
        ),
    }
}

/// The writer thread: takes every queued request, writes them all, commits once, and
/// answers each request after the commit.
fn run_writer(
    mut writer: IndexWriter,
    fields: Fields,
    reader: IndexReader,
    mut receiver: mpsc::Receiver<WriteRequest>,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut requests = vec![first];
        while let Ok(more) = receiver.try_recv() {
            requests.push(more);
        }
        let mut reports = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        let mut failure = None;
        // Each batch's documents are handed over as they are added, so they are not
        // held while the commit runs.
        for (documents, reply) in requests {
            replies.push(reply);
            match add_documents(&writer, &fields, &reader, documents) {
                Ok(report) => reports.push(report),
                Err(error) => failure = Some(error),
            }
        }
        if failure.is_none()
            && let Err(error) = writer.commit()
        {
            failure = Some(format!("commit failed: {error}"));
        }
        if let Some(reason) = &failure {
            tracing::error!(%reason, "embedded index write failed");
            let _ = writer.rollback();
        }
        let _ = reader.reload();
        for (index, reply) in replies.into_iter().enumerate() {
            let result = match &failure {
                Some(reason) => Err(StoreError::Unavailable(reason.clone())),
                None => Ok(reports[index]),
            };
            let _ = reply.send(result);
        }
    }
}

fn add_documents(
    writer: &IndexWriter,
    fields: &Fields,
    reader: &IndexReader,
    documents: Vec<Document>,
) -> Result<WriteReport, String> {
    let searcher = reader.searcher();
    let mut report = WriteReport::default();
    for document in documents {
        let id_term = Term::from_field_text(fields.id, &document.id);
        let exists = searcher.doc_freq(&id_term).map_err(|e| e.to_string())? > 0;
        if exists {
            report.duplicates += 1;
        } else {
            report.created += 1;
        }
        writer.delete_term(id_term);
        let mut stored = TantivyDocument::new();
        stored.add_text(fields.id, &document.id);
        stored.add_i64(fields.timestamp, document.timestamp.as_millisecond());
        for (path, value) in crate::parse::flatten(&document.body) {
            stored.add_text(fields.present, &path);
            match value {
                Value::String(text) => stored.add_text(fields.all_text, text),
                Value::Array(items) => {
                    for item in items {
                        stored.add_text(fields.all_text, item.to_string().trim_matches('"'));
                    }
                }
                other => stored.add_text(fields.all_text, other.to_string()),
            }
        }
        stored.add_object(fields.document, json_to_tantivy(document.body));
        writer.add_document(stored).map_err(|e| e.to_string())?;
    }
    Ok(report)
}

/// The document's fields as the index stores them, moved rather than copied.
fn json_to_tantivy(
    body: serde_json::Map<String, Value>,
) -> std::collections::BTreeMap<String, tantivy::schema::OwnedValue> {
    body.into_iter()
        .map(|(key, value)| (key, tantivy::schema::OwnedValue::from(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_on_the_same_index_is_told_why_it_cannot_open_it() {
        let directory = tempfile::tempdir().unwrap();
        let _first = EmbeddedStore::open(directory.path()).unwrap();
        let Err(error) = EmbeddedStore::open(directory.path()) else {
            panic!("a second writer opened the same index");
        };
        let text = error.to_string();
        assert!(text.contains("is locked by another process"), "{text}");
        assert!(
            text.contains(&directory.path().display().to_string()),
            "{text}"
        );
        // Searching alongside the writer still works.
        assert!(EmbeddedStore::open_read_only(directory.path()).is_ok());
    }
}
