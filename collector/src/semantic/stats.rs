//! What the collector knows about each template beyond the miner's count: when it was
//! first and last seen, where (datasets, hosts) and a few example events.

use crate::pipeline::Document;
use crate::templates::TemplateId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// Distinct datasets kept per template; more are not recorded.
pub const MAX_DATASETS: usize = 16;
/// Distinct host names kept per template; more are not recorded.
pub const MAX_HOSTS: usize = 32;

/// Statistics of one template. Times are Unix milliseconds of the events' own
/// timestamps (`@timestamp`), so a replayed old log keeps its old dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateStats {
    #[serde(with = "hex_id")]
    pub id: TemplateId,
    pub template: String,
    pub count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub datasets: BTreeSet<String>,
    pub hosts: BTreeSet<String>,
    /// `Document.id` of the first events seen, at most `examples` of them.
    pub examples: Vec<String>,
}

impl TemplateStats {
    /// The template as `templates list` prints it and `/api/v1/templates` serves it.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "template_id": self.id.to_string(),
            "template": self.template,
            "count": self.count,
            "first_seen": format_ms(self.first_seen_ms),
            "last_seen": format_ms(self.last_seen_ms),
            "datasets": self.datasets,
            "hosts": self.hosts,
        })
    }

    fn new(id: TemplateId, template: &str, time_ms: i64) -> TemplateStats {
        TemplateStats {
            id,
            template: template.to_string(),
            count: 0,
            first_seen_ms: time_ms,
            last_seen_ms: time_ms,
            datasets: BTreeSet::new(),
            hosts: BTreeSet::new(),
            examples: Vec::new(),
        }
    }

    /// Counts one event of this template.
    pub fn record(&mut self, document: &Document, host: Option<&str>, examples: usize) {
        let time_ms = document.timestamp.as_millisecond();
        self.count += 1;
        self.first_seen_ms = self.first_seen_ms.min(time_ms);
        self.last_seen_ms = self.last_seen_ms.max(time_ms);
        if self.datasets.len() < MAX_DATASETS && !self.datasets.contains(document.dataset) {
            self.datasets.insert(document.dataset.to_string());
        }
        if let Some(host) = host
            && self.hosts.len() < MAX_HOSTS
            && !self.hosts.contains(host)
        {
            self.hosts.insert(host.to_string());
        }
        if self.examples.len() < examples {
            self.examples.push(document.id.clone());
        }
    }
}

/// Statistics of every template, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsTable {
    pub templates: HashMap<u64, TemplateStats>,
}

impl StatsTable {
    /// The statistics of `id`, created on first use, with the template's current text.
    pub fn entry(&mut self, id: TemplateId, template: &str, time_ms: i64) -> &mut TemplateStats {
        let stats = self
            .templates
            .entry(id.0)
            .or_insert_with(|| TemplateStats::new(id, template, time_ms));
        if stats.template != template {
            stats.template = template.to_string();
        }
        stats
    }

    pub fn get(&self, id: TemplateId) -> Option<&TemplateStats> {
        self.templates.get(&id.0)
    }

    /// Forgets the templates the miner no longer holds, so memory follows the miner's.
    pub fn retain(&mut self, live: impl Fn(TemplateId) -> bool) {
        self.templates.retain(|&id, _| live(TemplateId(id)));
    }

    /// Every template, most frequent first.
    pub fn by_count(&self) -> Vec<&TemplateStats> {
        let mut all: Vec<&TemplateStats> = self.templates.values().collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
        all
    }
}

/// Template ids in files are the 16 hex digits users see in `log.template.id`.
pub(crate) mod hex_id {
    use crate::templates::TemplateId;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(id: &TemplateId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TemplateId, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_id(&text).ok_or_else(|| de::Error::custom(format!("bad template id {text:?}")))
    }
}

/// Reads a template id written as 16 hex digits.
pub fn parse_id(text: &str) -> Option<TemplateId> {
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok().map(TemplateId)
}

/// Renders Unix milliseconds the way documents carry `@timestamp`.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(crate::pipeline::format_timestamp)
        .unwrap_or_else(|_| ms.to_string())
}
