//! `[[alert]]` rules: read from the raw tables, checked once, every problem reported
//! with its key and value.
//!
//! Settings every rule has:
//!
//! | key | meaning |
//! |---|---|
//! | `name` | unique; letters, digits, `-`, `_`, `.` |
//! | `kind` | `threshold`, `new_template`, `rate_spike`, `novelty`, `silence`, `loss` |
//! | `condition` | only documents matching it count (see `condition.rs`) |
//! | `group_by` | field or list of fields; each distinct value is its own alert |
//! | `notify` | channel names of `[[notify]]` tables |
//! | `group_window` | how long matches gather before the first message, so a burst is one message with its count; longer waits cost latency |
//! | `reminder` | while firing, a reminder this often; absent: none |
//! | `resolve_after` | the condition must stay false this long before the alert resolves; too short makes a flapping source send a resolve and a new alert every few minutes |
//! | `severity` | `warning` (default) or `critical` |
//! | `send_resolved` | send a message when the alert resolves |
//!
//! Settings of each kind are listed on [`RuleKind`].

use super::condition::Condition;
use super::settings::TableReader;
use std::collections::BTreeSet;
use std::time::Duration;

pub const DEFAULT_COUNT: u64 = 1;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_GROUP_WINDOW: Duration = Duration::from_secs(30);
pub const DEFAULT_LEARNING_PERIOD: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_BUCKET: Duration = Duration::from_secs(60);
pub const DEFAULT_SIGMA: f64 = 3.0;
pub const DEFAULT_MIN_COUNT: u64 = 10;
pub const DEFAULT_MIN_HISTORY: u64 = 30;
pub const DEFAULT_SMOOTHING: f64 = 0.1;
pub const DEFAULT_SIMILARITY: f64 = 0.75;
pub const DEFAULT_SILENCE_LIMIT: Duration = Duration::from_secs(15 * 60);
/// How long a one-time finding (new template, novelty, loss) stays listed as firing;
/// further gaps of the same file within it add to its count instead of a new message.
pub const DEFAULT_ONE_TIME_RESOLVE_AFTER: Duration = Duration::from_secs(3600);
/// Rate spike grouping field when the rule names none.
pub const DEFAULT_RATE_GROUP_BY: &str = "event.dataset";

/// How urgent a rule's messages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    Warning,
    Critical,
}

/// Whose silence a `silence` rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceScope {
    Agent,
    File,
}

/// What a rule watches, with the settings of that kind.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// At least `count` matching documents within `window`.
    Threshold { count: u64, window: Duration },
    /// A template (`log.template.id`) not seen before, once `learning_period` has
    /// passed since the collector first started with alerting.
    NewTemplate { learning_period: Duration },
    /// Documents per `bucket` above the EWMA baseline by `sigma` standard deviations
    /// (and at least `min_count`), once `min_history` buckets have been seen.
    /// `smoothing` is the EWMA weight of each new bucket: higher follows changes faster
    /// and forgets spikes sooner.
    RateSpike {
        bucket: Duration,
        sigma: f64,
        min_count: u64,
        min_history: u64,
        smoothing: f64,
    },
    /// A new template whose best cosine similarity to known ones is under `similarity`.
    Novelty {
        similarity: f64,
        learning_period: Duration,
    },
    /// An agent or a file sends nothing for longer than `limit`.
    Silence {
        scope: SilenceScope,
        limit: Duration,
    },
    /// A gap in a file's offsets reported by the collector.
    Loss,
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::NewTemplate { .. } => "new_template",
            RuleKind::RateSpike { .. } => "rate_spike",
            RuleKind::Novelty { .. } => "novelty",
            RuleKind::Silence { .. } => "silence",
            RuleKind::Loss => "loss",
        }
    }

    /// A single finding rather than a lasting condition.
    pub fn is_one_time(&self) -> bool {
        matches!(
            self,
            RuleKind::NewTemplate { .. } | RuleKind::Novelty { .. } | RuleKind::Loss
        )
    }
}

/// One checked `[[alert]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub condition: Option<Condition>,
    pub group_by: Vec<String>,
    pub notify: Vec<String>,
    pub group_window: Duration,
    pub reminder: Option<Duration>,
    pub resolve_after: Duration,
    pub severity: RuleSeverity,
    pub send_resolved: bool,
}

const COMMON_KEYS: [&str; 11] = [
    "name",
    "kind",
    "condition",
    "group_by",
    "notify",
    "group_window",
    "reminder",
    "resolve_after",
    "severity",
    "send_resolved",
    "description",
];

fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "threshold" => &["count", "window"],
        "new_template" => &["learning_period"],
        "rate_spike" => &["bucket", "sigma", "min_count", "min_history", "smoothing"],
        "novelty" => &["similarity", "learning_period"],
        "silence" => &["scope", "limit"],
        "loss" => &[],
        _ => return None,
    })
}

/// Reads every `[[alert]]` table. `channels`, when given, are the names of the
/// `[[notify]]` tables a rule may reference.
pub fn parse_rules(
    tables: &[toml::Table],
    channels: Option<&BTreeSet<String>>,
) -> Result<Vec<Rule>, Vec<String>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    let mut names = BTreeSet::new();
    for (index, table) in tables.iter().enumerate() {
        let mut reader = TableReader::new(format!("alert[{index}]"), table, &mut problems);
        let Some(rule) = parse_rule(&mut reader, channels) else {
            continue;
        };
        if !names.insert(rule.name.clone()) {
            reader.problem("name", format!("{:?} is used by another rule", rule.name));
            continue;
        }
        rules.push(rule);
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn parse_rule(reader: &mut TableReader<'_>, channels: Option<&BTreeSet<String>>) -> Option<Rule> {
    let problems_before = reader.problems.len();
    let name = reader.string("name");
    match &name {
        None if !reader.table.contains_key("name") => reader.problem("name", "is required"),
        Some(name) if !valid_name(name) => reader.problem(
            "name",
            format!("{name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
        ),
        _ => {}
    }
    let kind_name = reader.string("kind");
    let extra = match kind_name.as_deref() {
        None => {
            if !reader.table.contains_key("kind") {
                reader.problem("kind", "is required");
            }
            None
        }
        Some(kind) => {
            let extra = kind_keys(kind);
            if extra.is_none() {
                reader.problem(
                    "kind",
                    format!(
                        "{kind:?} is not a rule kind: use threshold, new_template, rate_spike, \
                         novelty, silence or loss"
                    ),
                );
            }
            extra
        }
    };
    if let (Some(kind), Some(extra)) = (&kind_name, extra) {
        let known: Vec<&str> = COMMON_KEYS.iter().chain(extra).copied().collect();
        reader.refuse_unknown(&known, &format!("kind {kind:?}"));
    }
    let kind = kind_name
        .as_deref()
        .filter(|_| extra.is_some())
        .map(|kind| parse_kind(reader, kind));
    let condition = reader.string("condition").and_then(|text| {
        Condition::parse(&text)
            .map_err(|reason| reader.problem("condition", format!("{text:?}: {reason}")))
            .ok()
    });
    let group_by = reader.strings("group_by").unwrap_or_default();
    let notify = reader.strings("notify").unwrap_or_default();
    check_channels(reader, &notify, channels);
    let group_window = reader.duration("group_window");
    let reminder = reader.duration("reminder");
    let resolve_after = reader.duration("resolve_after");
    let severity = reader
        .string("severity")
        .and_then(|text| match text.as_str() {
            "warning" => Some(RuleSeverity::Warning),
            "critical" => Some(RuleSeverity::Critical),
            _ => {
                reader.problem(
                    "severity",
                    format!("{text:?} must be \"warning\" or \"critical\""),
                );
                None
            }
        });
    let send_resolved = reader.boolean("send_resolved");
    if reminder.is_some_and(|reminder| reminder < Duration::from_secs(1)) {
        reader.problem("reminder", "must be at least 1s");
    }
    let kind = kind?;
    if reader.problems.len() > problems_before {
        return None;
    }
    let group_by = match (&kind, group_by.is_empty()) {
        (RuleKind::RateSpike { .. }, true) => vec![DEFAULT_RATE_GROUP_BY.to_string()],
        _ => group_by,
    };
    Some(Rule {
        name: name?,
        resolve_after: resolve_after.unwrap_or_else(|| default_resolve_after(&kind)),
        send_resolved: send_resolved.unwrap_or(!kind.is_one_time()),
        kind,
        condition,
        group_by,
        notify,
        group_window: group_window.unwrap_or(DEFAULT_GROUP_WINDOW),
        reminder: reminder.filter(|reminder| !reminder.is_zero()),
        severity: severity.unwrap_or(RuleSeverity::Warning),
    })
}

fn check_channels(
    reader: &mut TableReader<'_>,
    notify: &[String],
    channels: Option<&BTreeSet<String>>,
) {
    let Some(channels) = channels else { return };
    for channel in notify {
        if !channels.contains(channel) {
            let known: Vec<&str> = channels.iter().map(String::as_str).collect();
            reader.problem(
                "notify",
                format!(
                    "{channel:?} names no [[notify]] channel (known: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }
}

fn parse_kind(reader: &mut TableReader<'_>, kind: &str) -> RuleKind {
    let positive =
        |reader: &mut TableReader<'_>, key: &str, default: Duration| match reader.duration(key) {
            Some(duration) if duration.is_zero() => {
                reader.problem(key, "must be longer than zero");
                default
            }
            Some(duration) => duration,
            None => default,
        };
    match kind {
        "threshold" => RuleKind::Threshold {
            count: reader
                .integer("count", 1, 1_000_000)
                .unwrap_or(DEFAULT_COUNT),
            window: positive(reader, "window", DEFAULT_WINDOW),
        },
        "new_template" => RuleKind::NewTemplate {
            learning_period: reader
                .duration("learning_period")
                .unwrap_or(DEFAULT_LEARNING_PERIOD),
        },
        "rate_spike" => RuleKind::RateSpike {
            bucket: positive(reader, "bucket", DEFAULT_BUCKET),
            sigma: reader.float("sigma", 0.5, 100.0).unwrap_or(DEFAULT_SIGMA),
            min_count: reader
                .integer("min_count", 1, u32::MAX.into())
                .unwrap_or(DEFAULT_MIN_COUNT),
            min_history: reader
                .integer("min_history", 2, 1_000_000)
                .unwrap_or(DEFAULT_MIN_HISTORY),
            smoothing: reader
                .float("smoothing", 0.001, 1.0)
                .unwrap_or(DEFAULT_SMOOTHING),
        },
        "novelty" => RuleKind::Novelty {
            similarity: reader
                .float("similarity", 0.0, 1.0)
                .unwrap_or(DEFAULT_SIMILARITY),
            learning_period: reader
                .duration("learning_period")
                .unwrap_or(DEFAULT_LEARNING_PERIOD),
        },
        "silence" => RuleKind::Silence {
            scope: match reader.string("scope").as_deref() {
                None | Some("agent") => SilenceScope::Agent,
                Some("file") => SilenceScope::File,
                Some(other) => {
                    reader.problem("scope", format!("{other:?} must be \"agent\" or \"file\""));
                    SilenceScope::Agent
                }
            },
            limit: positive(reader, "limit", DEFAULT_SILENCE_LIMIT),
        },
        _ => RuleKind::Loss,
    }
}

fn default_resolve_after(kind: &RuleKind) -> Duration {
    match kind {
        RuleKind::Threshold { window, .. } => *window,
        RuleKind::RateSpike { bucket, .. } => *bucket * 2,
        RuleKind::Silence { .. } => Duration::ZERO,
        RuleKind::NewTemplate { .. } | RuleKind::Novelty { .. } | RuleKind::Loss => {
            DEFAULT_ONE_TIME_RESOLVE_AFTER
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<toml::Table> {
        #[derive(serde::Deserialize)]
        struct File {
            alert: Vec<toml::Table>,
        }
        toml::from_str::<File>(text).unwrap().alert
    }

    #[test]
    fn a_threshold_rule_with_defaults() {
        let rules = parse_rules(
            &tables(
                r#"
                [[alert]]
                name = "web-5xx"
                kind = "threshold"
                condition = "http.response.status_code == 5xx"
                count = 10
                window = "1m"
                group_by = "host.name"
                notify = ["ops"]
                reminder = "30m"
                "#,
            ),
            Some(&BTreeSet::from(["ops".to_string()])),
        )
        .unwrap();
        let rule = &rules[0];
        assert_eq!(
            rule.kind,
            RuleKind::Threshold {
                count: 10,
                window: Duration::from_secs(60)
            }
        );
        assert_eq!(rule.group_by, vec!["host.name"]);
        assert_eq!(rule.group_window, DEFAULT_GROUP_WINDOW);
        assert_eq!(rule.reminder, Some(Duration::from_secs(1800)));
        assert_eq!(rule.resolve_after, Duration::from_secs(60));
        assert!(rule.send_resolved);
    }

    #[test]
    fn every_problem_is_named_with_its_key_and_value() {
        let problems = parse_rules(
            &tables(
                r#"
                [[alert]]
                name = "a"
                kind = "threshold"
                [[alert]]
                name = "b"
                kind = "sunspots"
                [[alert]]
                name = "c"
                kind = "threshold"
                window = "5 parsecs"
                bucket = "1m"
                notify = ["pager"]
                [[alert]]
                name = "a"
                kind = "loss"
                "#,
            ),
            Some(&BTreeSet::new()),
        )
        .unwrap_err();
        let expected = [
            "alert[1].kind: \"sunspots\" is not a rule kind",
            "alert[2].bucket: is not a setting of kind \"threshold\"",
            "alert[2].window: \"5 parsecs\"",
            "alert[2].notify: \"pager\" names no [[notify]] channel",
            "alert[3].name: \"a\" is used by another rule",
        ];
        for prefix in expected {
            assert!(
                problems.iter().any(|problem| problem.starts_with(prefix)),
                "{prefix:?} missing from {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }
}
