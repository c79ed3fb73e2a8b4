//! Decisions in words: the notification each channel sends, the document each alert
//! leaves in the store (dataset `alerts`, so `garonne-alerts-YYYY.MM.DD` in
//! Elasticsearch), and the lines `alerts list` prints.
//!
//! A message says what fired (rule, kind, condition), where (host, file, template, the
//! grouping key), how often and since when, with an example line and a query for
//! `garonne-collector search`.

use super::engine::Decision;
use super::rules::{Rule, RuleKind, RuleSeverity};
use super::state::{Alert, AlertState};
use crate::notify::{Notification, Severity};
use crate::parse::insert_path;
use crate::pipeline::{Document, format_timestamp};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `Document::dataset` of alert documents.
pub const ALERTS_DATASET: &str = "alerts";

/// Characters of a template text shown in a title.
const TITLE_TEMPLATE_CHARS: usize = 80;

/// The notification for `decision`. `rule` is the rule as configured now.
pub fn notification(decision: &Decision, rule: &Rule) -> Notification {
    let alert = decision.alert();
    let headline = headline(alert);
    let title = match decision {
        Decision::Fire(_) => format!("{}: {headline}", alert.rule),
        Decision::Remind(_) => format!("{}: still firing: {headline}", alert.rule),
        Decision::Resolve(_) => format!("{}: resolved: {headline}", alert.rule),
    };
    let severity = match (decision, rule.severity) {
        (Decision::Resolve(_), _) => Severity::Resolved,
        (_, RuleSeverity::Warning) => Severity::Warning,
        (_, RuleSeverity::Critical) => Severity::Critical,
    };
    let occurred = match decision {
        Decision::Fire(alert) => alert.since,
        Decision::Remind(alert) => alert.last_notified.unwrap_or(alert.last_held),
        Decision::Resolve(alert) => alert.resolved_at.unwrap_or(alert.last_held),
    };
    Notification {
        title,
        body: body(decision, rule),
        severity,
        key: format!("alert:{}:{}", alert.rule, alert.key),
        fields: fields(alert),
        link: None,
        occurred,
    }
}

/// One line: what happened and where.
fn headline(alert: &Alert) -> String {
    let key = &alert.key;
    let host = alert.context.get("host.name").map(String::as_str);
    let template = alert
        .context
        .get("log.template.text")
        .map(|text| shorten(text, TITLE_TEMPLATE_CHARS));
    let on = |subject: &str| match host {
        Some(host) => format!("{subject} on {host}"),
        None => subject.to_string(),
    };
    match alert.kind.as_str() {
        "threshold" if key == "*" => format!("{} matching events", alert.count),
        "threshold" => format!("{} matching events for {key}", alert.count),
        "new_template" => on(&format!(
            "new log template {:?}",
            template.unwrap_or_default()
        )),
        "novelty" => on(&format!(
            "unusual new log template {:?}",
            template.unwrap_or_default()
        )),
        "rate_spike" => format!("rate spike of {key}"),
        "silence" => format!("{key} silent since {}", format_timestamp(alert.since)),
        "loss" => format!("lines lost from {key}"),
        other => format!("{other} {key}"),
    }
}

fn body(decision: &Decision, rule: &Rule) -> String {
    let alert = decision.alert();
    let mut text = String::new();
    let _ = writeln!(text, "What: rule {} ({})", rule.name, describe_rule(rule));
    let places = places(alert);
    if !places.is_empty() {
        let _ = writeln!(text, "Where: {}", places.join(", "));
    }
    let since = format_timestamp(alert.since);
    match alert.kind.as_str() {
        "silence" => {
            let _ = writeln!(text, "Since: {since}");
        }
        _ => {
            let _ = write!(text, "How often: {} since {since}", times(alert.count));
            if let Decision::Remind(_) = decision {
                let new = alert.count.saturating_sub(alert.notified_count);
                let _ = write!(text, " ({} since the last message)", times(new));
            }
            text.push('\n');
        }
    }
    if let Decision::Resolve(alert) = decision {
        let _ = writeln!(
            text,
            "Resolved: {}, last seen {}",
            alert.resolved_at.map(format_timestamp).unwrap_or_default(),
            format_timestamp(alert.last_held)
        );
    }
    if let Some(detail) = &alert.detail {
        let _ = writeln!(text, "Detail: {detail}");
    }
    if let Some(example) = &alert.example {
        let _ = writeln!(text, "Example: {example}");
    }
    let _ = write!(text, "Search: {}", search_command(&alert.query));
    text
}

/// `threshold: importance >= "high", at least 5 within 60s, by host.name`.
pub fn describe_rule(rule: &Rule) -> String {
    let mut parts = vec![rule.kind.name().to_string()];
    if let Some(condition) = &rule.condition {
        parts.push(condition.to_string());
    }
    match &rule.kind {
        RuleKind::Threshold { count, window } => {
            parts.push(format!("at least {count} within {}s", window.as_secs()));
        }
        RuleKind::RateSpike { bucket, sigma, .. } => {
            parts.push(format!(
                "{sigma} sigma over the baseline per {}s",
                bucket.as_secs()
            ));
        }
        RuleKind::Novelty { similarity, .. } => {
            parts.push(format!("similarity under {similarity}"));
        }
        RuleKind::Silence { limit, .. } => {
            parts.push(format!("silent for more than {}s", limit.as_secs()));
        }
        RuleKind::NewTemplate { .. } | RuleKind::Loss => {}
    }
    if !rule.group_by.is_empty() {
        parts.push(format!("by {}", rule.group_by.join(", ")));
    }
    parts.join(", ")
}

fn places(alert: &Alert) -> Vec<String> {
    let labels = [
        ("host.name", "host"),
        ("agent.id", "agent"),
        ("log.file.path", "file"),
        ("log.template.text", "template"),
    ];
    let mut places: Vec<String> = labels
        .iter()
        .filter_map(|(path, label)| {
            alert
                .context
                .get(*path)
                .map(|value| format!("{label} {value}"))
        })
        .collect();
    if alert.key != "*" && !alert.context.values().any(|value| *value == alert.key) {
        places.push(format!("key {}", alert.key));
    }
    places
}

fn times(count: u64) -> String {
    if count == 1 {
        "1 time".to_string()
    } else {
        format!("{count} times")
    }
}

/// The command a user can paste, the query quoted for a POSIX shell.
pub fn search_command(query: &str) -> String {
    format!(
        "garonne-collector search '{}'",
        query.replace('\'', r"'\''")
    )
}

fn fields(alert: &Alert) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::from([
        ("rule".to_string(), alert.rule.clone()),
        ("kind".to_string(), alert.kind.clone()),
        ("key".to_string(), alert.key.clone()),
        ("count".to_string(), alert.count.to_string()),
        ("since".to_string(), format_timestamp(alert.since)),
        ("query".to_string(), alert.query.clone()),
    ]);
    for (path, label) in [
        ("host.name", "host"),
        ("log.file.path", "file"),
        ("log.template.id", "template"),
    ] {
        if let Some(value) = alert.context.get(path) {
            fields.insert(label.to_string(), value.clone());
        }
    }
    fields
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut short: String = text.chars().take(limit).collect();
    short.push('…');
    short
}

/// The document recording `decision`, at `now`. Its id is fixed by the alert and the
/// step, so writing it twice stores it once.
pub fn document(decision: &Decision, rule: Option<&Rule>, now: Timestamp) -> Document {
    let alert = decision.alert();
    let identity = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        alert.id(),
        alert.since,
        decision.action(),
        alert.reminders
    );
    let mut body = Map::new();
    body.insert("@timestamp".into(), json!(format_timestamp(now)));
    let message = match rule {
        Some(rule) => {
            let notification = notification(decision, rule);
            format!("{}\n{}", notification.title, notification.body)
        }
        None => headline(alert),
    };
    body.insert("message".into(), json!(message));
    insert_path(&mut body, "event.kind", json!("alert"));
    insert_path(&mut body, "event.dataset", json!(ALERTS_DATASET));
    insert_path(&mut body, "event.action", json!(decision.action()));
    insert_path(&mut body, "rule.name", json!(alert.rule));
    insert_path(&mut body, "rule.category", json!(alert.kind));
    for path in ["host.name", "agent.id", "log.file.path", "log.template.id"] {
        if let Some(value) = alert.context.get(path) {
            insert_path(&mut body, path, json!(value));
        }
    }
    let alert_fields = json!({
        "key": alert.key,
        "state": state_name(alert.state),
        "count": alert.count,
        "since": format_timestamp(alert.since),
        "query": alert.query,
        "detail": alert.detail,
        "example": alert.example,
        "reminders": alert.reminders,
        "where": alert.context.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    insert_path(&mut body, "garonne.alert", alert_fields);
    Document {
        id: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(identity.as_bytes())),
        dataset: ALERTS_DATASET,
        timestamp: now,
        body,
    }
}

pub fn state_name(state: AlertState) -> &'static str {
    match state {
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
        AlertState::Resolved => "resolved",
    }
}

/// One line per alert for `alerts list`: state, rule, key, count, since, then what.
pub fn list_line(alert: &Alert) -> String {
    let mut line = format!(
        "{:<8} {:<20} {:<30} {:>7}  since {}",
        state_name(alert.state),
        alert.rule,
        shorten(&alert.key, 30),
        alert.count,
        format_timestamp(alert.since),
    );
    if let Some(resolved) = alert.resolved_at {
        let _ = write!(line, "  resolved {}", format_timestamp(resolved));
    }
    let _ = write!(line, "  {}", headline(alert));
    let _ = write!(line, "\n         search: {}", search_command(&alert.query));
    line
}

/// The alerts as JSON lines, for scripts.
pub fn list_json(alert: &Alert) -> Value {
    serde_json::to_value(alert).unwrap_or(Value::Null)
}
