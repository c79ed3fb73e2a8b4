use super::*;
use crate::alerts::rules::parse_rules;
use serde_json::json;

/// The test clock: `at(s)` is `s` seconds after a fixed instant.
fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn engine(rules: &str) -> AlertEngine {
    engine_with_state(rules, None, at(0))
}

fn engine_with_state(rules: &str, state: Option<EngineState>, now: Timestamp) -> AlertEngine {
    #[derive(serde::Deserialize)]
    struct File {
        alert: Vec<toml::Table>,
    }
    let tables = toml::from_str::<File>(rules).unwrap().alert;
    AlertEngine::new(parse_rules(&tables, None).unwrap(), state, now)
}

fn access(host: &str, status: u16) -> Map<String, Value> {
    json!({
        "host": {"name": host},
        "http": {"response": {"status_code": status}},
        "event": {"original": format!("GET / {status}"), "dataset": "apache.access"},
        "log": {"file": {"path": "/var/log/apache2/access.log"}},
    })
    .as_object()
    .unwrap()
    .clone()
}

fn templated(id: &str, text: &str) -> Map<String, Value> {
    json!({
        "host": {"name": "web1"},
        "message": format!("a line of {id}"),
        "event": {"dataset": "syslog"},
        "log": {"template": {"id": id, "text": text}, "file": {"path": "/var/log/syslog"}},
    })
    .as_object()
    .unwrap()
    .clone()
}

const BURST_RULE: &str = r#"
[[alert]]
name = "web-5xx"
kind = "threshold"
condition = "http.response.status_code == 5xx"
count = 3
window = "60s"
group_by = "host.name"
group_window = "10s"
reminder = "30s"
"#;

fn actions(decisions: &[Decision]) -> Vec<(&'static str, String, u64)> {
    decisions
        .iter()
        .map(|d| (d.action(), d.alert().key.clone(), d.alert().count))
        .collect()
}

#[test]
fn a_burst_fires_once_with_its_count_after_the_group_window() {
    let mut engine = engine(BURST_RULE);
    engine.observe("web1", &access("web1", 200), at(0));
    for second in 1..=5 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    assert!(engine.tick(at(6)).is_empty(), "still gathering");
    engine.observe("web1", &access("web1", 500), at(8));
    let decisions = engine.tick(at(11));
    assert_eq!(actions(&decisions), vec![("fire", "web1".to_string(), 6)]);
    let alert = decisions[0].alert();
    assert_eq!(alert.since, at(1), "since the first event of the burst");
    assert_eq!(alert.example.as_deref(), Some("GET / 503"));
    assert_eq!(
        alert.context["log.file.path"],
        "/var/log/apache2/access.log"
    );
    assert_eq!(
        alert.query,
        r#"http.response.status_code:[500 TO 599] host.name:"web1""#
    );
    engine.observe("web1", &access("web1", 503), at(12));
    assert!(
        engine.tick(at(13)).is_empty(),
        "no second message while firing"
    );
}

#[test]
fn under_the_count_or_spread_out_nothing_fires_and_keys_are_separate() {
    let mut engine = engine(BURST_RULE);
    for second in [0, 40, 80, 120] {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    engine.observe("web2", &access("web2", 503), at(121));
    engine.observe("web2", &access("web2", 503), at(122));
    engine.observe("web3", &access("web3", 404), at(122));
    assert!(engine.tick(at(130)).is_empty());
    engine.observe("web2", &access("web2", 502), at(150));
    assert_eq!(
        actions(&engine.tick(at(160))),
        vec![("fire", "web2".to_string(), 3)]
    );
}

#[test]
fn reminders_while_firing_then_a_resolved_message() {
    let mut engine = engine(BURST_RULE);
    for second in 0..3 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    assert_eq!(engine.tick(at(10))[0].action(), "fire");
    // The burst goes on: the condition keeps holding.
    for second in 20..25 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    assert!(engine.tick(at(39)).is_empty());
    let reminder = engine.tick(at(40));
    assert_eq!(actions(&reminder), vec![("remind", "web1".to_string(), 8)]);
    assert_eq!(
        reminder[0].alert().notified_count,
        3,
        "what the last message said"
    );
    assert!(engine.tick(at(41)).is_empty());
    // Last full window at 24: resolves just over 60 s later, after one more reminder.
    assert_eq!(engine.tick(at(70))[0].action(), "remind");
    assert!(engine.tick(at(84)).is_empty());
    let resolved = engine.tick(at(85));
    assert_eq!(actions(&resolved), vec![("resolve", "web1".to_string(), 8)]);
    assert_eq!(resolved[0].alert().state, AlertState::Resolved);
    assert!(engine.state().active.is_empty());
    assert_eq!(engine.state().history.len(), 1);
    // A new burst is a new alert.
    for second in 100..103 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    assert_eq!(engine.tick(at(110))[0].action(), "fire");
}

#[test]
fn restarting_from_saved_state_does_not_send_again() {
    let mut engine = engine(BURST_RULE);
    for second in 0..3 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    assert_eq!(engine.tick(at(10)).len(), 1);
    let saved = engine.take_changed_state().unwrap();
    assert!(
        engine.take_changed_state().is_none(),
        "nothing changed since"
    );

    let state: EngineState = serde_json::from_slice(&saved).unwrap();
    let mut restarted = engine_with_state(BURST_RULE, Some(state), at(15));
    assert!(restarted.tick(at(15)).is_empty(), "no second fire");
    for second in 16..20 {
        restarted.observe("web1", &access("web1", 503), at(second));
    }
    assert!(
        restarted.tick(at(21)).is_empty(),
        "the burst goes on, still one alert"
    );
    assert_eq!(restarted.tick(at(40))[0].action(), "remind");
    assert_eq!(restarted.tick(at(70))[0].action(), "remind");
    assert!(restarted.tick(at(79)).is_empty());
    assert_eq!(restarted.tick(at(80))[0].action(), "resolve");
}

#[test]
fn state_file_round_trip_is_atomic_and_versioned() {
    let directory = tempfile::tempdir().unwrap();
    let path = super::super::state::state_path(directory.path());
    assert!(super::super::state::read_state(&path).unwrap().is_none());
    let mut engine = engine(BURST_RULE);
    for second in 0..3 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    engine.tick(at(10));
    let bytes = engine.take_changed_state().unwrap();
    super::super::state::write_state(&path, &bytes).unwrap();
    let read = super::super::state::read_state(&path).unwrap().unwrap();
    assert_eq!(&read, engine.state());
    // No temporary file is left beside the state.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, [path.file_name().unwrap()]);
    std::fs::write(&path, b"{\"version\": 99}").unwrap();
    assert!(super::super::state::load_or_set_aside(&path).is_none());
    assert!(path.with_extension("json.bad").exists());
}

const NEW_TEMPLATE_RULE: &str = r#"
[[alert]]
name = "new-template"
kind = "new_template"
learning_period = "1h"
group_window = "0s"
"#;

#[test]
fn templates_seen_while_learning_never_fire_and_new_ones_fire_once() {
    let mut engine = engine(NEW_TEMPLATE_RULE);
    engine.observe("web1", &templated("a", "session opened for <*>"), at(10));
    assert!(engine.tick(at(11)).is_empty());
    engine.observe("web1", &templated("a", "session opened for <*>"), at(7200));
    engine.observe("web1", &templated("b", "segfault at <*>"), at(7201));
    engine.observe("web1", &templated("b", "segfault at <*>"), at(7202));
    let decisions = engine.tick(at(7203));
    assert_eq!(actions(&decisions), vec![("fire", "b".to_string(), 1)]);
    let alert = decisions[0].alert();
    assert_eq!(alert.query, r#"log.template.id:"b""#);
    assert_eq!(alert.context["log.template.text"], "segfault at <*>");
    assert_eq!(alert.example.as_deref(), Some("a line of b"));
    engine.observe("web1", &templated("b", "segfault at <*>"), at(9000));
    assert!(engine.tick(at(9000)).is_empty());
    // One-time findings close quietly.
    assert!(engine.tick(at(7202 + 3600)).is_empty());
    assert!(engine.state().active.is_empty());
}

#[test]
fn the_learning_period_survives_a_restart() {
    let mut engine = engine(NEW_TEMPLATE_RULE);
    engine.observe("web1", &templated("a", "x"), at(10));
    let state = serde_json::from_slice(&engine.take_changed_state().unwrap()).unwrap();
    let mut restarted = engine_with_state(NEW_TEMPLATE_RULE, Some(state), at(1800));
    restarted.observe("web1", &templated("b", "y"), at(1800));
    assert!(restarted.tick(at(1801)).is_empty(), "still learning");
    restarted.observe("web1", &templated("a", "x"), at(3700));
    restarted.observe("web1", &templated("c", "z"), at(3700));
    assert_eq!(
        actions(&restarted.tick(at(3701))),
        vec![("fire", "c".to_string(), 1)]
    );
}

const SPIKE_RULE: &str = r#"
[[alert]]
name = "spike"
kind = "rate_spike"
bucket = "60s"
sigma = 3
min_count = 20
min_history = 10
group_window = "0s"
"#;

fn send(engine: &mut AlertEngine, count: u64, minute: i64) {
    for i in 0..count {
        let second = minute * 60 + (i as i64 * 59 / count.max(1) as i64);
        engine.observe("web1", &access("web1", 200), at(second));
    }
}

#[test]
fn a_rate_far_above_its_ewma_baseline_fires_and_normal_rates_do_not() {
    let mut engine = engine(SPIKE_RULE);
    for minute in 0..30 {
        send(&mut engine, 10 + (minute % 3) as u64, minute);
        assert!(
            engine.tick(at(minute * 60 + 59)).is_empty(),
            "minute {minute}"
        );
    }
    send(&mut engine, 14, 30);
    assert!(
        engine.tick(at(31 * 60)).is_empty(),
        "a little more is normal"
    );
    send(&mut engine, 80, 31);
    let decisions = engine.tick(at(32 * 60 + 1));
    assert_eq!(
        actions(&decisions),
        vec![("fire", "apache.access".to_string(), 80)]
    );
    let detail = decisions[0].alert().detail.clone().unwrap();
    assert!(
        detail.starts_with("80 events in 60s, recent baseline"),
        "{detail}"
    );
    assert_eq!(
        decisions[0].alert().query,
        r#"event.dataset:"apache.access""#
    );
    // Back to normal: resolves after two quiet buckets.
    for minute in 32..36 {
        send(&mut engine, 11, minute);
    }
    let resolved = engine.tick(at(36 * 60));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].action(), "resolve");
}

#[test]
fn without_enough_history_a_spike_is_only_learnt() {
    let mut engine = engine(SPIKE_RULE);
    for minute in 0..5 {
        send(&mut engine, 10, minute);
    }
    send(&mut engine, 500, 5);
    assert!(engine.tick(at(7 * 60)).is_empty());
}

#[test]
fn time_of_day_baselines_take_over_after_enough_history() {
    // Busy from 08:00 to 09:00 each day, quiet otherwise; one bucket per hour.
    let rule = SPIKE_RULE
        .replace("\"60s\"", "\"1h\"")
        .replace("min_history = 10", "min_history = 2");
    let mut engine = engine(&rule);
    let hour_of = |hour: i64| {
        let midnight = 1_800_000_000 - 1_800_000_000 % 86_400;
        Timestamp::from_second(midnight + hour * 3600).unwrap()
    };
    let mut fired = Vec::new();
    for hour in 0..(5 * 24) {
        let count = if hour % 24 == 8 { 200 } else { 20 };
        for i in 0..count {
            engine.observe(
                "web1",
                &access("web1", 200),
                hour_of(hour) + SignedDuration::from_secs(i),
            );
        }
        fired.extend(
            engine
                .tick(hour_of(hour + 1) + SignedDuration::from_secs(1))
                .into_iter()
                .filter(|d| d.action() == "fire")
                .map(|d| d.alert().since),
        );
    }
    assert!(!fired.is_empty(), "the first busy mornings stand out");
    let last_day = hour_of(4 * 24);
    assert!(
        fired.iter().all(|since| *since < last_day),
        "once learnt, the busy hour is normal: {fired:?}"
    );
}

const SILENCE_RULE: &str = r#"
[[alert]]
name = "quiet"
kind = "silence"
scope = "file"
limit = "60s"
group_window = "0s"
"#;

#[test]
fn a_silent_file_fires_and_resolves_when_it_sends_again() {
    let mut engine = engine(SILENCE_RULE);
    engine.observe("web1", &access("web1", 200), at(0));
    assert!(engine.tick(at(30)).is_empty());
    assert!(engine.tick(at(60)).is_empty());
    let decisions = engine.tick(at(61));
    let key = "web1:/var/log/apache2/access.log".to_string();
    assert_eq!(actions(&decisions), vec![("fire", key.clone(), 0)]);
    assert_eq!(decisions[0].alert().since, at(0));
    assert!(engine.tick(at(90)).is_empty());
    engine.observe("web1", &access("web1", 200), at(100));
    assert_eq!(actions(&engine.tick(at(100))), vec![("resolve", key, 0)]);
}

#[test]
fn after_a_restart_sources_get_a_fresh_start() {
    let mut engine = engine(SILENCE_RULE);
    engine.observe("web1", &access("web1", 200), at(0));
    let state = serde_json::from_slice(&engine.take_changed_state().unwrap()).unwrap();
    let mut restarted = engine_with_state(SILENCE_RULE, Some(state), at(3600));
    assert!(
        restarted.tick(at(3600)).is_empty(),
        "the collector was away, not the file"
    );
    assert_eq!(restarted.tick(at(3661)).len(), 1);
}

#[test]
fn a_gap_fires_once_and_later_gaps_add_to_it() {
    let rules = r#"
[[alert]]
name = "loss"
kind = "loss"
group_window = "5s"
"#;
    let mut engine = engine(rules);
    engine.report_gap("web1", "/var/log/syslog", 100..250, at(0));
    engine.report_gap("web1", "/var/log/syslog", 900..1000, at(2));
    let decisions = engine.tick(at(5));
    assert_eq!(
        actions(&decisions),
        vec![("fire", "web1:/var/log/syslog".to_string(), 2)]
    );
    let detail = decisions[0].alert().detail.clone().unwrap();
    assert!(detail.contains("bytes 900..1000 (100 bytes)"), "{detail}");
    assert!(
        engine.tick(at(5 + 3600)).is_empty(),
        "closes without a message"
    );
}

struct FixedScores;

impl NoveltyScorer for FixedScores {
    fn best_similarity(&self, template_id: &str, _text: &str) -> Option<f64> {
        match template_id {
            "far" => Some(0.3),
            "near" => Some(0.95),
            _ => None,
        }
    }
}

const NOVELTY_RULE: &str = r#"
[[alert]]
name = "novel"
kind = "novelty"
similarity = 0.6
learning_period = "0s"
group_window = "0s"
"#;

#[test]
fn novelty_fires_for_templates_far_from_known_ones() {
    let mut engine = engine(NOVELTY_RULE);
    assert_eq!(engine.inactive_rules().len(), 1);
    engine.set_novelty_scorer(Arc::new(FixedScores));
    assert!(engine.inactive_rules().is_empty());
    engine.observe("web1", &templated("far", "kernel BUG at <*>"), at(1));
    engine.observe("web1", &templated("near", "session opened"), at(1));
    engine.observe("web1", &templated("unscored", "x"), at(1));
    let decisions = engine.tick(at(2));
    assert_eq!(actions(&decisions), vec![("fire", "far".to_string(), 1)]);
    assert!(engine.novelty_pending.len() == 1, "waits for a score");
    engine.tick(at(2 + 601));
    assert!(engine.novelty_pending.is_empty(), "gives up after the wait");
}

#[test]
fn alerts_of_a_removed_rule_close_without_a_message() {
    let mut engine = engine(BURST_RULE);
    for second in 0..3 {
        engine.observe("web1", &access("web1", 503), at(second));
    }
    engine.tick(at(10));
    let state = serde_json::from_slice(&engine.take_changed_state().unwrap()).unwrap();
    let mut restarted = engine_with_state(SILENCE_RULE, Some(state), at(20));
    assert!(restarted.tick(at(20)).is_empty());
    assert!(restarted.state().active.is_empty());
    assert_eq!(restarted.state().history.len(), 1);
}
