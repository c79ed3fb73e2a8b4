//! Alerting on the log stream: every event gets an importance, rules watch the events
//! (and gap reports, and the clock), and what they decide goes out as notifications and
//! is indexed as documents of the dataset `alerts`.
//!
//! - `importance.rs`: `garonne.importance` on every document ([`ImportanceObserver`]).
//! - `rules.rs` and `condition.rs`: `[[alert]]` tables, checked once.
//! - `engine.rs`: the decisions, with no I/O and an injected clock ([`AlertEngine`]).
//! - `state.rs`: the state file that keeps fired alerts from being sent again after a
//!   restart.
//! - `message.rs`: decisions in words, and as documents.
//! - `service.rs`: the async shell that ticks the engine, saves its state, delivers
//!   messages and indexes alerts.

pub mod condition;
pub mod engine;
pub mod importance;
pub mod message;
pub mod rules;
pub mod service;
mod settings;
pub mod state;

pub use engine::{AlertEngine, Decision, NoveltyScorer};
pub use importance::{Importance, ImportanceObserver, ImportanceRules};
pub use rules::{Rule, RuleKind, parse_rules};
pub use service::{AlertDelivery, AlertService};
pub use state::{Alert, AlertState, EngineState};

use garonne_common::config::{CollectorConfig, ConfigError};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// `[importance]` and `[[alert]]`, checked.
pub struct AlertsConfig {
    pub importance: ImportanceRules,
    pub rules: Vec<Rule>,
}

/// Checks `[importance]` and every `[[alert]]` table (including that the channels a
/// rule names exist in `[[notify]]`); returns every problem, each naming its key.
pub fn check_config(config: &CollectorConfig) -> Result<AlertsConfig, Vec<String>> {
    let channels: BTreeSet<String> = config
        .notify
        .iter()
        .filter_map(|table| table.get("name").and_then(toml::Value::as_str))
        .map(str::to_string)
        .collect();
    let importance = ImportanceRules::from_table(config.importance.as_ref());
    let rules = parse_rules(&config.alerts, Some(&channels));
    match (importance, rules) {
        (Ok(importance), Ok(rules)) => Ok(AlertsConfig { importance, rules }),
        (importance, rules) => {
            let mut problems = importance.err().unwrap_or_default();
            problems.extend(rules.err().unwrap_or_default());
            Err(problems)
        }
    }
}

/// [`check_config`] as one error naming the file, for the CLI.
pub fn validate(config: &CollectorConfig, path: &Path) -> Result<AlertsConfig, ConfigError> {
    check_config(config).map_err(|problems| ConfigError {
        path: path.to_path_buf(),
        problems,
    })
}

/// What the running collector needs: the importance observer, and the alert service
/// whose observer goes after it (and after the template observer).
pub struct Alerting {
    pub importance: Arc<ImportanceObserver>,
    pub service: Arc<AlertService>,
}

/// Checks the alert settings of `config` (read from `path`) and resumes the alert
/// state in `collector.data_dir`. Rate baselines follow the hours of `zone`. Without a
/// `novelty` scorer, `novelty` rules are logged as inactive and never fire.
pub fn start(
    config: &CollectorConfig,
    path: &Path,
    zone: jiff::tz::TimeZone,
    delivery: Arc<dyn AlertDelivery>,
    novelty: Option<Arc<dyn NoveltyScorer>>,
) -> Result<Alerting, ConfigError> {
    let checked = validate(config, path)?;
    let service = AlertService::start(checked.rules, &config.collector.data_dir, zone, delivery);
    if let Some(scorer) = novelty {
        service.set_novelty_scorer(scorer);
    }
    service.log_rules();
    Ok(Alerting {
        importance: Arc::new(ImportanceObserver::new(checked.importance)),
        service,
    })
}

/// `alerts list`: the alerts firing and pending, then the recently resolved ones, from
/// the state file the collector keeps (readable while it runs).
pub fn print_list(
    config: &CollectorConfig,
    json: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), state::StateError> {
    let path = state::state_path(&config.collector.data_dir);
    let write_failed = |error: std::io::Error| state::StateError::Read {
        path: path.clone(),
        reason: format!("cannot print: {error}"),
    };
    let Some(saved) = state::read_state(&path)? else {
        if !json {
            writeln!(out, "no alerts yet ({} does not exist)", path.display())
                .map_err(write_failed)?;
        }
        return Ok(());
    };
    for alert in saved.listing() {
        let line = if json {
            message::list_json(alert).to_string()
        } else {
            message::list_line(alert)
        };
        writeln!(out, "{line}").map_err(write_failed)?;
    }
    Ok(())
}
