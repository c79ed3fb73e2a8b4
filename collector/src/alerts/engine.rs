//! The alert engine: documents, gap reports and clock ticks in, decisions out. It does
//! no I/O and reads no clock; every call carries `now`.
//!
//! # Life of an alert
//!
//! A rule's condition *holds* for a key (the values of its `group_by` fields, a
//! template id, a source) at some instant. The first time, an alert is created
//! `Pending`, and further matches add to its count. Once the rule's `group_window` has
//! passed since the alert's start, [`AlertEngine::tick`] returns [`Decision::Fire`] with
//! the count so far: a burst yields one message. While firing, matches keep adding to
//! the count without a message; every `reminder` a [`Decision::Remind`] goes out. When
//! the condition has not held for `resolve_after`, the alert resolves
//! ([`Decision::Resolve`], if the rule sends resolved messages) and moves to the
//! history. A later hold starts a new alert.
//!
//! What *holds* means per kind:
//!
//! - `threshold`: the last `count` matching documents arrived within `window`. Every
//!   matching document counts toward a firing alert, but only a full window keeps it
//!   from resolving.
//! - `new_template`, `novelty`, `loss`: a single finding, held once.
//! - `rate_spike`: a closed bucket's count was above the baseline's limit.
//! - `silence`: at each tick, the source has sent nothing for longer than `limit`.
//!
//! Windows, buckets and silences are measured on the collector's clock at arrival, not
//! on the events' own timestamps: lines shipped late after an outage count as arriving
//! now, so a backlog can fire threshold and rate rules.
//!
//! # Memory
//!
//! Per rule at most [`MAX_KEYS_PER_RULE`] keys are tracked; matches of further keys are
//! ignored until old keys expire (their windows empty, their sources forgotten after
//! [`SILENCE_FORGET_AFTER`]). A threshold key holds at most `count` instants. At most
//! [`MAX_KNOWN_TEMPLATES`] template ids are remembered; past that, the least recently
//! seen tenth is forgotten and may alert again as new when it reappears.

use super::rules::{Rule, RuleKind, SilenceScope};
use super::state::{Alert, AlertState, Baseline, EngineState, MAX_HISTORY, alert_id};
use crate::parse::get_path;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_KEYS_PER_RULE: usize = 10_000;
pub const MAX_KNOWN_TEMPLATES: usize = 500_000;
/// A source silent this long is forgotten (a decommissioned server stops alerting).
pub const SILENCE_FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// Characters of an example line kept in an alert.
pub const EXAMPLE_MAX_CHARS: usize = 1000;
/// A rate baseline switches to its hour-of-day part once it has this much history.
pub const TIME_OF_DAY_HISTORY: Duration = Duration::from_secs(2 * 24 * 3600);
/// How long a new template waits for the semantic layer to score it.
pub const NOVELTY_WAIT: Duration = Duration::from_secs(10 * 60);
pub const MAX_NOVELTY_PENDING: usize = 1000;
/// Empty buckets filled in at most when a rate key had no traffic for a while.
const MAX_EMPTY_BUCKETS: u64 = 1440;

/// Scores how far a template is from the others, for `novelty` rules. The semantic
/// layer implements it with its template vectors.
pub trait NoveltyScorer: Send + Sync {
    /// The best cosine similarity between this template and every *other* known
    /// template, or `None` while its vector is not computed yet (the engine asks
    /// again at each tick for up to [`NOVELTY_WAIT`]). Called with the engine locked:
    /// it must answer from memory, without waiting on the network.
    fn best_similarity(&self, template_id: &str, template_text: &str) -> Option<f64>;
}

/// What the engine decided; the shell turns it into messages and documents.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Fire(Alert),
    Remind(Alert),
    Resolve(Alert),
}

impl Decision {
    pub fn alert(&self) -> &Alert {
        match self {
            Decision::Fire(alert) | Decision::Remind(alert) | Decision::Resolve(alert) => alert,
        }
    }

    /// `fire`, `remind` or `resolve`.
    pub fn action(&self) -> &'static str {
        match self {
            Decision::Fire(_) => "fire",
            Decision::Remind(_) => "remind",
            Decision::Resolve(_) => "resolve",
        }
    }
}

/// Why a rule holds for a key, with what the message will show.
#[derive(Debug, Default)]
struct Evidence {
    /// Added to the alert's count.
    count: u64,
    /// When the condition started to hold, if earlier than now.
    since: Option<Timestamp>,
    example: Option<String>,
    context: BTreeMap<String, String>,
    detail: Option<String>,
    query: String,
}

/// The open bucket of one `rate_spike` key.
#[derive(Debug)]
struct OpenBucket {
    start: Timestamp,
    count: u64,
    example: Option<String>,
    context: BTreeMap<String, String>,
}

/// A new template waiting for its novelty score.
#[derive(Debug)]
struct PendingNovelty {
    rule: usize,
    template_id: String,
    template_text: String,
    queued: Timestamp,
    evidence: Evidence,
}

/// State of one rule that lives only in memory.
#[derive(Debug, Default)]
struct RuleRuntime {
    /// `threshold`: the last `count` matching instants per key.
    windows: HashMap<String, VecDeque<Timestamp>>,
    /// `rate_spike`: the open bucket per key.
    buckets: HashMap<String, OpenBucket>,
}

pub struct AlertEngine {
    rules: Vec<Rule>,
    by_name: HashMap<String, usize>,
    runtime: Vec<RuleRuntime>,
    state: EngineState,
    novelty_pending: VecDeque<PendingNovelty>,
    scorer: Option<Arc<dyn NoveltyScorer>>,
    zone: TimeZone,
    dirty: bool,
}

impl AlertEngine {
    /// An engine for `rules`, resuming `state` if there is one. Sources of `silence`
    /// rules get a fresh start (the collector itself was away), except those already
    /// alerting.
    pub fn new(rules: Vec<Rule>, state: Option<EngineState>, now: Timestamp) -> AlertEngine {
        let mut state = state.unwrap_or_else(|| EngineState::new(now));
        let firing: Vec<String> = state.active.keys().cloned().collect();
        for (rule, sources) in &mut state.sources {
            for (key, last) in sources.iter_mut() {
                if !firing.contains(&alert_id(rule, key)) {
                    *last = (*last).max(now.as_millisecond());
                }
            }
        }
        AlertEngine {
            by_name: rules
                .iter()
                .enumerate()
                .map(|(index, rule)| (rule.name.clone(), index))
                .collect(),
            runtime: rules.iter().map(|_| RuleRuntime::default()).collect(),
            rules,
            state,
            novelty_pending: VecDeque::new(),
            scorer: None,
            zone: TimeZone::UTC,
            dirty: true,
        }
    }

    /// The zone whose hours `rate_spike` baselines follow.
    pub fn with_zone(mut self, zone: TimeZone) -> AlertEngine {
        self.zone = zone;
        self
    }

    pub fn set_novelty_scorer(&mut self, scorer: Arc<dyn NoveltyScorer>) {
        self.scorer = Some(scorer);
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.by_name.get(name).map(|&index| &self.rules[index])
    }

    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// Rules that cannot fire as configured, with the reason.
    pub fn inactive_rules(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .filter(|rule| matches!(rule.kind, RuleKind::Novelty { .. }) && self.scorer.is_none())
            .map(|rule| {
                (
                    rule.name.clone(),
                    "no semantic layer scores template novelty".to_string(),
                )
            })
            .collect()
    }

    /// The state as JSON if it changed since the last call.
    pub fn take_changed_state(&mut self) -> Option<Vec<u8>> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(serde_json::to_vec(&self.state).expect("alert state serialises"))
    }

    /// Feeds one document from `agent_id` to every rule.
    pub fn observe(&mut self, agent_id: &str, body: &Map<String, Value>, now: Timestamp) {
        let template = template_of(body);
        let template_is_new = template
            .as_ref()
            .is_some_and(|(id, _)| !self.state.templates.contains_key(*id));
        for index in 0..self.rules.len() {
            let rule = &self.rules[index];
            if rule.condition.as_ref().is_some_and(|c| !c.matches(body)) {
                continue;
            }
            match rule.kind.clone() {
                RuleKind::Threshold { count, window } => {
                    self.count_threshold(index, body, now, count, window);
                }
                RuleKind::NewTemplate { learning_period } => {
                    if let Some((id, text)) = template.filter(|_| template_is_new)
                        && self.learned(learning_period, now)
                    {
                        let evidence = self.template_evidence(index, body, id, text);
                        self.hold(index, id.to_string(), evidence, now);
                    }
                }
                RuleKind::RateSpike { bucket, .. } => self.count_rate(index, body, now, bucket),
                RuleKind::Novelty {
                    learning_period, ..
                } => {
                    if let Some((id, text)) = template.filter(|_| template_is_new)
                        && self.scorer.is_some()
                        && self.learned(learning_period, now)
                    {
                        self.queue_novelty(index, body, id, text, now);
                    }
                }
                RuleKind::Silence { scope, .. } => {
                    self.note_source(index, agent_id, body, scope, now)
                }
                RuleKind::Loss => {}
            }
        }
        if let Some((id, _)) = template {
            self.remember_template(id, now);
        }
    }

    /// A gap in a file's offsets: bytes `range` of `file` from `agent` never arrived.
    pub fn report_gap(&mut self, agent: &str, file: &str, range: Range<u64>, now: Timestamp) {
        for index in 0..self.rules.len() {
            if self.rules[index].kind != RuleKind::Loss {
                continue;
            }
            let missing = range.end.saturating_sub(range.start);
            let evidence = Evidence {
                count: 1,
                context: BTreeMap::from([
                    ("agent.id".to_string(), agent.to_string()),
                    ("log.file.path".to_string(), file.to_string()),
                ]),
                detail: Some(format!(
                    "bytes {}..{} ({missing} bytes) of {file} never arrived from {agent}",
                    range.start, range.end
                )),
                query: format!("agent.id:{agent:?} log.file.path:{file:?}"),
                ..Evidence::default()
            };
            self.hold(index, format!("{agent}:{file}"), evidence, now);
        }
    }

    /// Advances time: closes rate buckets, checks silences and novelty scores, and
    /// moves alerts along their life. Call it about every second.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Decision> {
        for index in 0..self.rules.len() {
            match self.rules[index].kind.clone() {
                RuleKind::Threshold { window, .. } => {
                    let horizon = earlier(now, window);
                    self.runtime[index]
                        .windows
                        .retain(|_, instants| instants.back().is_some_and(|t| *t >= horizon));
                }
                RuleKind::RateSpike { .. } => self.close_buckets(index, now),
                RuleKind::Silence { limit, .. } => self.check_silence(index, limit, now),
                _ => {}
            }
        }
        self.score_novelty(now);
        self.advance_alerts(now)
    }

    // -----------------------------------------------------------------------------------
    // Holding and the life of alerts

    fn hold(&mut self, index: usize, key: String, evidence: Evidence, now: Timestamp) {
        let rule = &self.rules[index];
        let id = alert_id(&rule.name, &key);
        self.dirty = true;
        if let Some(alert) = self.state.active.get_mut(&id) {
            alert.count += evidence.count;
            alert.last_held = now;
            if evidence.detail.is_some() {
                alert.detail = evidence.detail;
            }
            return;
        }
        let alert = Alert {
            rule: rule.name.clone(),
            kind: rule.kind.name().to_string(),
            key,
            state: AlertState::Pending,
            since: evidence.since.unwrap_or(now).min(now),
            last_held: now,
            fired_at: None,
            last_notified: None,
            resolved_at: None,
            count: evidence.count,
            notified_count: 0,
            reminders: 0,
            example: evidence.example,
            context: evidence.context,
            detail: evidence.detail,
            query: evidence.query,
        };
        self.state.active.insert(id, alert);
    }

    fn advance_alerts(&mut self, now: Timestamp) -> Vec<Decision> {
        let mut decisions = Vec::new();
        let mut resolved = Vec::new();
        for (id, alert) in &mut self.state.active {
            let Some(rule) = self.by_name.get(&alert.rule).map(|&i| &self.rules[i]) else {
                // The rule left the configuration: close its alerts without a message.
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(now);
                resolved.push(id.clone());
                continue;
            };
            match alert.state {
                AlertState::Pending => {
                    if now >= later(alert.since, rule.group_window) {
                        alert.state = AlertState::Firing;
                        alert.fired_at = Some(now);
                        alert.last_notified = Some(now);
                        alert.notified_count = alert.count;
                        decisions.push(Decision::Fire(alert.clone()));
                    }
                }
                AlertState::Firing => {
                    if now > later(alert.last_held, rule.resolve_after) {
                        alert.state = AlertState::Resolved;
                        alert.resolved_at = Some(now);
                        resolved.push(id.clone());
                        if rule.send_resolved {
                            decisions.push(Decision::Resolve(alert.clone()));
                        }
                    } else if let Some(reminder) = rule.reminder
                        && alert
                            .last_notified
                            .is_none_or(|last| now >= later(last, reminder))
                    {
                        alert.last_notified = Some(now);
                        alert.reminders += 1;
                        decisions.push(Decision::Remind(alert.clone()));
                        alert.notified_count = alert.count;
                    }
                }
                AlertState::Resolved => resolved.push(id.clone()),
            }
        }
        for id in resolved {
            if let Some(alert) = self.state.active.remove(&id) {
                self.state.history.push_front(alert);
            }
            self.dirty = true;
        }
        self.state.history.truncate(MAX_HISTORY);
        if !decisions.is_empty() {
            self.dirty = true;
        }
        decisions
    }

    // -----------------------------------------------------------------------------------
    // Kinds

    fn count_threshold(
        &mut self,
        index: usize,
        body: &Map<String, Value>,
        now: Timestamp,
        count: u64,
        window: Duration,
    ) {
        let rule = &self.rules[index];
        let key = group_key(rule, body);
        let windows = &mut self.runtime[index].windows;
        if !windows.contains_key(&key) && windows.len() >= MAX_KEYS_PER_RULE {
            return;
        }
        let instants = windows.entry(key.clone()).or_default();
        instants.push_back(now);
        let horizon = earlier(now, window);
        while instants.len() as u64 > count || instants.front().is_some_and(|t| *t < horizon) {
            instants.pop_front();
        }
        let full = instants.len() as u64 >= count;
        let first = instants.front().copied();
        let id = alert_id(&rule.name, &key);
        if let Some(alert) = self.state.active.get_mut(&id) {
            alert.count += 1;
            if full {
                alert.last_held = now;
            }
            self.dirty = true;
            return;
        }
        if full {
            let mut evidence = self.document_evidence(index, body);
            evidence.count = count;
            evidence.since = first;
            self.hold(index, key, evidence, now);
        }
    }

    fn learned(&self, learning_period: Duration, now: Timestamp) -> bool {
        now >= later(self.state.started, learning_period)
    }

    fn remember_template(&mut self, id: &str, now: Timestamp) {
        let now = now.as_millisecond();
        if let Some(last) = self.state.templates.get_mut(id) {
            *last = now;
            return;
        }
        self.state.templates.insert(id.to_string(), now);
        self.dirty = true;
        if self.state.templates.len() > MAX_KNOWN_TEMPLATES {
            let mut seen: Vec<i64> = self.state.templates.values().copied().collect();
            let cut = seen.len() / 10;
            let (_, threshold, _) = seen.select_nth_unstable(cut);
            let threshold = *threshold;
            self.state.templates.retain(|_, last| *last > threshold);
        }
    }

    fn template_evidence(
        &self,
        index: usize,
        body: &Map<String, Value>,
        id: &str,
        text: &str,
    ) -> Evidence {
        let mut evidence = self.document_evidence(index, body);
        evidence.count = 1;
        evidence.detail = Some(format!("new template {text:?}"));
        evidence.query = format!("log.template.id:{id:?}");
        evidence
    }

    fn queue_novelty(
        &mut self,
        index: usize,
        body: &Map<String, Value>,
        id: &str,
        text: &str,
        now: Timestamp,
    ) {
        if self.novelty_pending.len() >= MAX_NOVELTY_PENDING {
            tracing::debug!(template = id, "novelty queue full, template not scored");
            return;
        }
        let evidence = self.template_evidence(index, body, id, text);
        self.novelty_pending.push_back(PendingNovelty {
            rule: index,
            template_id: id.to_string(),
            template_text: text.to_string(),
            queued: now,
            evidence,
        });
    }

    fn score_novelty(&mut self, now: Timestamp) {
        let Some(scorer) = self.scorer.clone() else {
            return;
        };
        let pending = std::mem::take(&mut self.novelty_pending);
        for mut item in pending {
            let RuleKind::Novelty { similarity, .. } = self.rules[item.rule].kind else {
                continue;
            };
            match scorer.best_similarity(&item.template_id, &item.template_text) {
                Some(best) if best < similarity => {
                    item.evidence.detail = Some(format!(
                        "new template {:?}, best similarity {best:.2} to known templates \
                         (under {similarity:.2})",
                        item.template_text
                    ));
                    self.hold(item.rule, item.template_id, item.evidence, now);
                }
                Some(_) => {}
                None if now < later(item.queued, NOVELTY_WAIT) => {
                    self.novelty_pending.push_back(item);
                }
                None => tracing::debug!(template = %item.template_id, "template never scored"),
            }
        }
    }

    fn count_rate(
        &mut self,
        index: usize,
        body: &Map<String, Value>,
        now: Timestamp,
        bucket: Duration,
    ) {
        let key = group_key(&self.rules[index], body);
        let start = bucket_start(now, bucket);
        if let Some(open) = self.runtime[index].buckets.get_mut(&key) {
            if open.start == start {
                open.count += 1;
                return;
            }
        } else if self.runtime[index].buckets.len() >= MAX_KEYS_PER_RULE {
            return;
        }
        self.close_key_buckets(index, &key, now);
        let evidence = self.document_evidence(index, body);
        self.runtime[index].buckets.insert(
            key,
            OpenBucket {
                start,
                count: 1,
                example: evidence.example,
                context: evidence.context,
            },
        );
    }

    fn close_buckets(&mut self, index: usize, now: Timestamp) {
        let keys: Vec<String> = self.runtime[index].buckets.keys().cloned().collect();
        for key in keys {
            self.close_key_buckets(index, &key, now);
        }
    }

    /// Closes the open bucket of `key` and the empty ones after it, if they ended.
    fn close_key_buckets(&mut self, index: usize, key: &str, now: Timestamp) {
        let RuleKind::RateSpike { bucket, .. } = self.rules[index].kind else {
            return;
        };
        let current = bucket_start(now, bucket);
        let Some(open) = self.runtime[index].buckets.get(key) else {
            return;
        };
        if open.start >= current {
            return;
        }
        let open = self.runtime[index].buckets.remove(key).expect("present");
        self.close_bucket(index, key, &open);
        let step_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let elapsed = (current.as_millisecond() - open.start.as_millisecond()) / step_ms;
        let empty = u64::try_from(elapsed - 1)
            .unwrap_or(0)
            .min(MAX_EMPTY_BUCKETS);
        let mut start = open.start;
        for _ in 0..empty {
            start = later(start, bucket);
            let empty_bucket = OpenBucket {
                start,
                count: 0,
                example: None,
                context: open.context.clone(),
            };
            self.close_bucket(index, key, &empty_bucket);
        }
        // A key whose rate decayed to nothing stops being tracked until it sends again.
        let mean = self
            .state
            .baselines
            .get(&self.rules[index].name)
            .and_then(|baselines| baselines.get(key))
            .map_or(0.0, |baseline| baseline.overall.mean);
        if mean >= 0.05 {
            self.runtime[index].buckets.insert(
                key.to_string(),
                OpenBucket {
                    start: current,
                    count: 0,
                    example: None,
                    context: open.context,
                },
            );
        }
    }

    fn close_bucket(&mut self, index: usize, key: &str, open: &OpenBucket) {
        let rule = &self.rules[index];
        let RuleKind::RateSpike {
            bucket,
            sigma,
            min_count,
            min_history,
            smoothing,
        } = rule.kind
        else {
            return;
        };
        let hour = usize::from(open.start.to_zoned(self.zone.clone()).hour().unsigned_abs());
        let baselines = self.state.baselines.entry(rule.name.clone()).or_default();
        if !baselines.contains_key(key) && baselines.len() >= MAX_KEYS_PER_RULE {
            return;
        }
        let baseline = baselines
            .entry(key.to_string())
            .or_insert_with(|| Baseline::new(open.start));
        let hourly = &baseline.hourly[hour % 24];
        let reference = if open.start >= later(baseline.first, TIME_OF_DAY_HISTORY)
            && hourly.samples >= min_history
        {
            Some((*hourly, "this hour of day"))
        } else {
            (baseline.overall.samples >= min_history).then_some((baseline.overall, "recent"))
        };
        let count = open.count as f64;
        let spike = reference.and_then(|(reference, label)| {
            let spread = reference.deviation().max(reference.mean.sqrt()).max(1.0);
            let limit = reference.mean + sigma * spread;
            (open.count >= min_count && count > limit).then(|| {
                format!(
                    "{} events in {}s, {label} baseline {:.1} ± {:.1} per bucket (limit {limit:.1})",
                    open.count,
                    bucket.as_secs(),
                    reference.mean,
                    reference.deviation(),
                )
            })
        });
        baseline.overall.update(count, smoothing);
        baseline.hourly[hour % 24].update(count, smoothing);
        self.dirty = true;
        if let Some(detail) = spike {
            let mut terms = rule
                .condition
                .as_ref()
                .map(|c| c.search_terms())
                .unwrap_or_default();
            terms.extend(key_terms(rule, key));
            let evidence = Evidence {
                count: open.count,
                since: Some(open.start),
                example: open.example.clone(),
                context: open.context.clone(),
                detail: Some(detail),
                query: join_query(terms),
            };
            let end = later(open.start, bucket);
            self.hold(index, key.to_string(), evidence, end);
        }
    }

    fn note_source(
        &mut self,
        index: usize,
        agent_id: &str,
        body: &Map<String, Value>,
        scope: SilenceScope,
        now: Timestamp,
    ) {
        let key = match scope {
            SilenceScope::Agent => agent_id.to_string(),
            SilenceScope::File => {
                let path = get_path(body, "log.file.path")
                    .and_then(Value::as_str)
                    .unwrap_or("-");
                format!("{agent_id}:{path}")
            }
        };
        let sources = self
            .state
            .sources
            .entry(self.rules[index].name.clone())
            .or_default();
        if let Some(last) = sources.get_mut(&key) {
            *last = now.as_millisecond();
        } else if sources.len() < MAX_KEYS_PER_RULE {
            sources.insert(key, now.as_millisecond());
            self.dirty = true;
        }
    }

    fn check_silence(&mut self, index: usize, limit: Duration, now: Timestamp) {
        let rule = &self.rules[index];
        let RuleKind::Silence { scope, .. } = rule.kind else {
            return;
        };
        let Some(sources) = self.state.sources.get_mut(&rule.name) else {
            return;
        };
        let now_ms = now.as_millisecond();
        let forget = i64::try_from(SILENCE_FORGET_AFTER.as_millis()).unwrap_or(i64::MAX);
        let before = sources.len();
        sources.retain(|_, last| now_ms - *last < forget);
        if sources.len() != before {
            self.dirty = true;
        }
        let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        let silent: Vec<(String, i64)> = sources
            .iter()
            .filter(|(_, last)| now_ms - **last > limit_ms)
            .map(|(key, last)| (key.clone(), *last))
            .collect();
        for (key, last) in silent {
            let last = Timestamp::from_millisecond(last).unwrap_or(now);
            let (agent, file) = match scope {
                SilenceScope::Agent => (key.as_str(), None),
                SilenceScope::File => match key.split_once(':') {
                    Some((agent, file)) => (agent, Some(file)),
                    None => (key.as_str(), None),
                },
            };
            let mut context = BTreeMap::from([("agent.id".to_string(), agent.to_string())]);
            let mut query = format!("agent.id:{agent:?}");
            if let Some(file) = file {
                context.insert("log.file.path".into(), file.to_string());
                query.push_str(&format!(" log.file.path:{file:?}"));
            }
            let evidence = Evidence {
                count: 0,
                since: Some(last),
                example: None,
                context,
                detail: Some(format!(
                    "nothing received from {key} since {last} (limit {}s)",
                    limit.as_secs()
                )),
                query,
            };
            self.hold(index, key, evidence, now);
        }
    }

    // -----------------------------------------------------------------------------------
    // What messages show

    fn document_evidence(&self, index: usize, body: &Map<String, Value>) -> Evidence {
        let rule = &self.rules[index];
        let mut context = BTreeMap::new();
        const WHERE: [&str; 6] = [
            "host.name",
            "agent.id",
            "log.file.path",
            "event.dataset",
            "log.template.id",
            "log.template.text",
        ];
        for path in WHERE
            .iter()
            .copied()
            .chain(rule.group_by.iter().map(String::as_str))
        {
            if let Some(value) = get_path(body, path).and_then(field_text) {
                context.insert(path.to_string(), value);
            }
        }
        let example = get_path(body, "event.original")
            .or_else(|| get_path(body, "message"))
            .and_then(Value::as_str)
            .map(|line| line.chars().take(EXAMPLE_MAX_CHARS).collect());
        let mut terms = rule
            .condition
            .as_ref()
            .map(|c| c.search_terms())
            .unwrap_or_default();
        for path in &rule.group_by {
            if let Some(value) = context.get(path) {
                terms.push(format!("{path}:{value:?}"));
            }
        }
        Evidence {
            example,
            context,
            query: join_query(terms),
            ..Evidence::default()
        }
    }
}

fn template_of(body: &Map<String, Value>) -> Option<(&str, &str)> {
    let id = get_path(body, "log.template.id").and_then(Value::as_str)?;
    let text = get_path(body, "log.template.text")
        .and_then(Value::as_str)
        .unwrap_or(id);
    Some((id, text))
}

/// The values of the rule's `group_by` fields, joined by ` / `; `-` for a missing one.
fn group_key(rule: &Rule, body: &Map<String, Value>) -> String {
    if rule.group_by.is_empty() {
        return "*".to_string();
    }
    rule.group_by
        .iter()
        .map(|path| {
            get_path(body, path)
                .and_then(field_text)
                .unwrap_or_else(|| "-".into())
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn key_terms(rule: &Rule, key: &str) -> Vec<String> {
    if rule.group_by.len() != 1 || key == "-" {
        return Vec::new();
    }
    vec![format!("{}:{key:?}", rule.group_by[0])]
}

fn join_query(terms: Vec<String>) -> String {
    if terms.is_empty() {
        "*".to_string()
    } else {
        terms.join(" ")
    }
}

fn field_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn later(instant: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by)
        .ok()
        .and_then(|by| instant.checked_add(by).ok())
        .unwrap_or(Timestamp::MAX)
}

fn earlier(instant: Timestamp, by: Duration) -> Timestamp {
    SignedDuration::try_from(by)
        .ok()
        .and_then(|by| instant.checked_sub(by).ok())
        .unwrap_or(Timestamp::MIN)
}

fn bucket_start(now: Timestamp, bucket: Duration) -> Timestamp {
    let size = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
    let millis = now.as_millisecond();
    Timestamp::from_millisecond(millis - millis.rem_euclid(size)).unwrap_or(now)
}

#[cfg(test)]
mod tests;
