//! `[[monitor]]` tables into typed monitors.
//!
//! Keys shared by every type: `name` (unique; letters, digits, `-`, `_`, `.`), `type`
//! (`http`, `tcp`, `oidc`), `interval` (at least 5 s, default 60 s), `timeout` (default
//! 10 s, at most the interval), `retries` (failed checks absorbed before the state
//! changes, default 1), `retry_interval` (delay between those checks, default: the
//! interval), `remind_every` (a reminder every N failed checks while down, 0 = never,
//! the default), `notify` (channel names), `maintenance` (windows), `run_on`.
//!
//! `run_on` says who runs the checks: `"collector"` (the default), `"agents"` (every
//! agent that connects) or a list of agent ids (`["school-12", "school-13"]`), so that
//! a service is seen from each school's own network. Agents get their monitors when
//! they connect, keep them while the collector is unreachable and ship the results in
//! their disk-buffered batches, so an offline agent's results arrive late, oldest
//! first. Each agent's view has its own state, uptime, row in `monitors status` and
//! notifications, which name the agent. Secrets of OpenID Connect checks are sent to
//! the agents that run them and kept in their data directory.

use crate::notify::Secret;
use crate::notify::table::{TableReader, is_http_url};
pub use garonne_common::probe::{HttpCheck, MAX_BODY_BYTES, MonitorKind, OidcCheck};
use jiff::Timestamp;
use jiff::civil::Time;
use std::collections::BTreeSet;
use std::time::Duration;

pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_RETRIES: u32 = 1;
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
/// Days before a certificate's expiry at which a warning is sent, each once.
pub const DEFAULT_CERT_EXPIRY_DAYS: [u32; 3] = [21, 14, 7];

/// One checked `[[monitor]]` table.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub name: String,
    pub kind: MonitorKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_interval: Duration,
    pub remind_every: u32,
    pub notify: Vec<String>,
    pub maintenance: Vec<MaintenanceWindow>,
    pub run_on: RunOn,
}

/// Where a monitor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOn {
    /// The collector runs it (the default).
    Collector,
    /// Every connected agent runs it.
    AllAgents,
    /// These agents run it.
    Agents(Vec<String>),
}

impl RunOn {
    /// Whether the agent called `agent_id` runs the monitor.
    pub fn includes_agent(&self, agent_id: &str) -> bool {
        match self {
            RunOn::Collector => false,
            RunOn::AllAgents => true,
            RunOn::Agents(ids) => ids.iter().any(|id| id == agent_id),
        }
    }
}

/// A time when a monitor's failures are expected: checks still run and are stored, but
/// the state is MAINTENANCE and nothing is notified.
#[derive(Debug, Clone, PartialEq)]
pub enum MaintenanceWindow {
    /// `{ start = "2026-03-01T22:00:00Z", end = "2026-03-02T01:00:00Z" }`
    Once { start: Timestamp, end: Timestamp },
    /// `{ days = ["sat", "sun"], from = "22:00", to = "23:30", timezone = "Europe/Paris" }`;
    /// `to` before `from` crosses midnight; no `days` means every day.
    Weekly {
        days: Vec<jiff::civil::Weekday>,
        from: Time,
        to: Time,
        zone: jiff::tz::TimeZone,
    },
}

impl MaintenanceWindow {
    pub fn contains(&self, now: Timestamp) -> bool {
        match self {
            MaintenanceWindow::Once { start, end } => *start <= now && now < *end,
            MaintenanceWindow::Weekly {
                days,
                from,
                to,
                zone,
            } => {
                let local = now.to_zoned(zone.clone());
                let time = local.time();
                let day_matches =
                    |day: jiff::civil::Weekday| days.is_empty() || days.contains(&day);
                if from <= to {
                    day_matches(local.weekday()) && *from <= time && time < *to
                } else {
                    // Crosses midnight: the evening part belongs to the listed day, the
                    // early-morning part to the day before.
                    (day_matches(local.weekday()) && time >= *from)
                        || (day_matches(local.weekday().previous()) && time < *to)
                }
            }
        }
    }
}

/// Reads every table; `channels` are the configured `[[notify]]` names.
pub fn parse_monitors(
    tables: &[toml::Table],
    channels: &[String],
) -> Result<Vec<MonitorConfig>, Vec<String>> {
    let mut monitors = Vec::new();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (index, table) in tables.iter().enumerate() {
        let mut reader = TableReader::new(format!("monitor[{index}]"), table);
        let monitor = parse_monitor(&mut reader, channels);
        if let Some(name) = table.get("name").and_then(toml::Value::as_str)
            && !names.insert(name.to_string())
        {
            reader.problem("name", format!("{name:?} is used by another monitor"));
        }
        let found = reader.finish();
        if found.is_empty() {
            monitors.extend(monitor);
        }
        problems.extend(found);
    }
    if problems.is_empty() {
        Ok(monitors)
    } else {
        Err(problems)
    }
}

fn parse_monitor(reader: &mut TableReader<'_>, channels: &[String]) -> Option<MonitorConfig> {
    let name = reader.string("name");
    if let Some(name) = &name
        && !valid_name(name)
    {
        reader.problem(
            "name",
            format!(
                "{name:?} must be 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
            ),
        );
    }
    let kind_name = reader.string("type");
    let day = Duration::from_secs(86_400);
    let interval = reader
        .optional_duration("interval", MIN_INTERVAL, day)
        .unwrap_or(DEFAULT_INTERVAL);
    let timeout = reader
        .optional_duration(
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(300),
        )
        .unwrap_or(DEFAULT_TIMEOUT.min(interval));
    if timeout > interval {
        reader.problem(
            "timeout",
            format!(
                "{} must not exceed the interval ({})",
                human(timeout),
                human(interval)
            ),
        );
    }
    let retries = reader
        .optional_integer("retries", 0, 100)
        .map_or(DEFAULT_RETRIES, |n| n as u32);
    let retry_interval = reader
        .optional_duration("retry_interval", Duration::from_secs(1), day)
        .unwrap_or(interval);
    let remind_every = reader
        .optional_integer("remind_every", 0, 100_000)
        .unwrap_or(0) as u32;
    let notify = reader.string_list("notify").unwrap_or_default();
    for channel in &notify {
        if !channels.contains(channel) {
            reader.problem(
                "notify",
                format!("{channel:?} is not the name of a [[notify]] channel"),
            );
        }
    }
    let maintenance = parse_maintenance(reader);
    let run_on = parse_run_on(reader);
    let kind = match kind_name.as_deref() {
        Some("http") => parse_http(reader).map(MonitorKind::Http),
        Some("tcp") => parse_tcp(reader),
        Some("oidc") => parse_oidc(reader).map(MonitorKind::Oidc),
        Some(other) => {
            reader.problem("type", format!("{other:?} is not one of http, tcp, oidc"));
            None
        }
        None => None,
    };
    Some(MonitorConfig {
        name: name?,
        kind: kind?,
        interval,
        timeout,
        retries,
        retry_interval,
        remind_every,
        notify,
        maintenance,
        run_on: run_on?,
    })
}

fn human(duration: Duration) -> garonne_common::units::HumanDuration {
    garonne_common::units::HumanDuration(duration)
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn parse_run_on(reader: &mut TableReader<'_>) -> Option<RunOn> {
    match reader.raw("run_on") {
        None => Some(RunOn::Collector),
        Some(toml::Value::String(text)) if text == "collector" => Some(RunOn::Collector),
        Some(toml::Value::String(text)) if text == "agents" => Some(RunOn::AllAgents),
        Some(toml::Value::Array(items)) if !items.is_empty() => {
            let mut ids = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(id) if valid_name(id) => ids.push(id.to_string()),
                    _ => {
                        reader.problem("run_on", format!("{item} is not an agent id"));
                        return None;
                    }
                }
            }
            Some(RunOn::Agents(ids))
        }
        Some(other) => {
            reader.problem(
                "run_on",
                format!("{other} must be \"collector\", \"agents\" or a list of agent ids"),
            );
            None
        }
    }
}

fn parse_statuses(reader: &mut TableReader<'_>) -> Vec<(u16, u16)> {
    let Some(value) = reader.raw("accepted_statuses") else {
        return vec![(200, 299)];
    };
    let items = match value {
        toml::Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut ranges = Vec::new();
    for item in &items {
        let range = match item {
            toml::Value::Integer(code) => u16::try_from(*code).ok().map(|code| (code, code)),
            toml::Value::String(text) => parse_status_range(text),
            _ => None,
        };
        match range {
            Some((low, high)) if (100..=599).contains(&low) && low <= high && high <= 599 => {
                ranges.push((low, high))
            }
            _ => reader.problem(
                "accepted_statuses",
                format!("{item} is not a status code (200) or range (\"200-299\")"),
            ),
        }
    }
    ranges
}

fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((low, high)) => Some((low.trim().parse().ok()?, high.trim().parse().ok()?)),
        None => {
            let code = text.trim().parse().ok()?;
            Some((code, code))
        }
    }
}

fn parse_cert_days(reader: &mut TableReader<'_>) -> Vec<u32> {
    let Some(value) = reader.raw("cert_expiry_days") else {
        return DEFAULT_CERT_EXPIRY_DAYS.to_vec();
    };
    let days: Option<Vec<u32>> = value.as_array().and_then(|items| {
        items
            .iter()
            .map(|item| item.as_integer().and_then(|n| u32::try_from(n).ok()))
            .collect()
    });
    match days {
        Some(mut days) if days.iter().all(|d| (1..=365).contains(d)) => {
            days.sort_unstable_by(|a, b| b.cmp(a));
            days.dedup();
            days
        }
        _ => {
            reader.problem(
                "cert_expiry_days",
                format!("{value} must be a list of days between 1 and 365"),
            );
            Vec::new()
        }
    }
}

fn parse_http(reader: &mut TableReader<'_>) -> Option<HttpCheck> {
    let url = reader.string("url");
    if let Some(url) = &url
        && !is_http_url(url)
    {
        reader.problem("url", format!("{url:?} is not an http(s) URL"));
    }
    let method = reader
        .optional_string("method")
        .unwrap_or_else(|| "GET".to_string())
        .to_ascii_uppercase();
    if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
        reader.problem("method", format!("{method:?} is not an HTTP method"));
    }
    let headers = reader.string_map("headers");
    for name in headers.keys() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            reader.problem(&format!("headers.{name}"), "is not a valid header name");
        }
    }
    let body = reader.optional_string("body");
    let accepted_statuses = parse_statuses(reader);
    let keyword = reader.optional_string("keyword");
    let keyword_absent = reader.optional_string("keyword_absent");
    let case_sensitive = reader.optional_bool("case_sensitive").unwrap_or(true);
    let json_path = reader.optional_string("json_path");
    let json_equals = reader.raw("json_equals").map(toml_to_json);
    if json_path.is_some() != json_equals.is_some() {
        reader.problem("json_path", "json_path and json_equals go together");
    }
    let degraded_after = reader.optional_duration(
        "degraded_after",
        Duration::from_millis(1),
        Duration::from_secs(300),
    );
    let max_redirects = reader
        .optional_integer("max_redirects", 0, 50)
        .map_or(DEFAULT_MAX_REDIRECTS, |n| n as u32);
    let tls_verify = reader.optional_bool("tls_verify").unwrap_or(true);
    let cert_expiry_days = parse_cert_days(reader);
    Some(HttpCheck {
        url: url?,
        method,
        headers,
        body,
        accepted_statuses,
        keyword,
        keyword_absent,
        case_sensitive,
        json_path,
        json_equals,
        degraded_after,
        max_redirects,
        tls_verify,
        cert_expiry_days,
    })
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(text) => serde_json::Value::String(text.clone()),
        toml::Value::Integer(number) => serde_json::Value::from(*number),
        toml::Value::Float(number) => serde_json::Value::from(*number),
        toml::Value::Boolean(flag) => serde_json::Value::Bool(*flag),
        toml::Value::Datetime(datetime) => serde_json::Value::String(datetime.to_string()),
        toml::Value::Array(items) => items.iter().map(toml_to_json).collect(),
        toml::Value::Table(table) => table
            .iter()
            .map(|(key, value)| (key.clone(), toml_to_json(value)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

fn parse_tcp(reader: &mut TableReader<'_>) -> Option<MonitorKind> {
    let host = reader.string("host");
    let port = reader.optional_integer("port", 1, 65_535);
    if port.is_none() && !reader.has("port") {
        reader.problem("port", "is required");
    }
    Some(MonitorKind::Tcp {
        host: host?,
        port: port? as u16,
    })
}

fn parse_oidc(reader: &mut TableReader<'_>) -> Option<OidcCheck> {
    let issuer = reader.string("issuer");
    if let Some(issuer) = &issuer
        && !is_http_url(issuer)
    {
        reader.problem("issuer", format!("{issuer:?} is not an http(s) URL"));
    }
    let client_id = reader.optional_string("client_id");
    let client_secret = reader
        .secret(
            "client_secret",
            "client_secret_file",
            Some("client_secret_env"),
        )
        .map(Secret);
    let secret_given = ["client_secret", "client_secret_file", "client_secret_env"]
        .iter()
        .any(|key| reader.has(key));
    if client_id.is_some() != secret_given {
        reader.problem(
            "client_id",
            "a client-credentials check needs client_id and one of client_secret, \
             client_secret_file, client_secret_env",
        );
    }
    let scope = reader.optional_string("scope");
    let client_auth_post = match reader.optional_string("client_auth").as_deref() {
        None | Some("basic") => false,
        Some("post") => true,
        Some(other) => {
            reader.problem(
                "client_auth",
                format!("{other:?} is not one of basic, post"),
            );
            false
        }
    };
    let tls_verify = reader.optional_bool("tls_verify").unwrap_or(true);
    let degraded_after = reader.optional_duration(
        "degraded_after",
        Duration::from_millis(1),
        Duration::from_secs(300),
    );
    let cert_expiry_days = parse_cert_days(reader);
    Some(OidcCheck {
        issuer: issuer?.trim_end_matches('/').to_string(),
        client_id,
        client_secret,
        scope,
        client_auth_post,
        tls_verify,
        degraded_after,
        cert_expiry_days,
    })
}

fn parse_maintenance(reader: &mut TableReader<'_>) -> Vec<MaintenanceWindow> {
    let Some(value) = reader.raw("maintenance") else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        reader.problem("maintenance", "must be a list of windows");
        return Vec::new();
    };
    let mut windows = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let key = format!("maintenance[{index}]");
        match item.as_table().map(parse_window) {
            Some(Ok(window)) => windows.push(window),
            Some(Err(reason)) => reader.problem(&key, reason),
            None => reader.problem(&key, "must be a table"),
        }
    }
    windows
}

fn parse_window(table: &toml::Table) -> Result<MaintenanceWindow, String> {
    let text = |key: &str| table.get(key).and_then(toml::Value::as_str);
    let known = ["start", "end", "days", "from", "to", "timezone"];
    if let Some(unknown) = table.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(format!("unknown key {unknown:?}"));
    }
    if let (Some(start), Some(end)) = (text("start"), text("end")) {
        let parse = |value: &str| {
            value
                .parse::<Timestamp>()
                .map_err(|error| format!("{value:?} is not an RFC 3339 time: {error}"))
        };
        let (start, end) = (parse(start)?, parse(end)?);
        if end <= start {
            return Err("end must come after start".to_string());
        }
        return Ok(MaintenanceWindow::Once { start, end });
    }
    let (Some(from), Some(to)) = (text("from"), text("to")) else {
        return Err("needs start and end (RFC 3339), or from and to (HH:MM)".to_string());
    };
    let time = |value: &str| {
        value
            .parse::<Time>()
            .map_err(|_| format!("{value:?} is not a time of day (HH:MM)"))
    };
    let zone = match text("timezone") {
        Some(name) => {
            jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown timezone {name:?}"))?
        }
        None => jiff::tz::TimeZone::system(),
    };
    let mut days = Vec::new();
    for day in table
        .get("days")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        days.push(parse_weekday(day.as_str().unwrap_or_default())?);
    }
    Ok(MaintenanceWindow::Weekly {
        days,
        from: time(from)?,
        to: time(to)?,
        zone,
    })
}

fn parse_weekday(text: &str) -> Result<jiff::civil::Weekday, String> {
    use jiff::civil::Weekday;
    let day = match text.to_ascii_lowercase().get(..3) {
        Some("mon") => Weekday::Monday,
        Some("tue") => Weekday::Tuesday,
        Some("wed") => Weekday::Wednesday,
        Some("thu") => Weekday::Thursday,
        Some("fri") => Weekday::Friday,
        Some("sat") => Weekday::Saturday,
        Some("sun") => Weekday::Sunday,
        _ => return Err(format!("{text:?} is not a day of the week")),
    };
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<toml::Table> {
        let mut document: toml::Table = text.parse().unwrap();
        match document.remove("monitor") {
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .filter_map(|item| item.as_table().cloned())
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_full_http_monitor_parses() {
        let monitors = parse_monitors(
            &tables(
                r#"
                [[monitor]]
                name = "nextcloud"
                type = "http"
                url = "https://cloud.example.org/status.php"
                interval = "30s"
                timeout = "5s"
                retries = 2
                retry_interval = 10
                remind_every = 20
                accepted_statuses = [200, "300-399"]
                keyword = "installed"
                case_sensitive = false
                json_path = "maintenance"
                json_equals = false
                degraded_after = "2s"
                notify = ["ops"]
                maintenance = [
                  { start = "2026-03-01T22:00:00Z", end = "2026-03-02T01:00:00Z" },
                  { days = ["sat"], from = "22:00", to = "02:00", timezone = "Europe/Paris" },
                ]
                "#,
            ),
            &["ops".to_string()],
        )
        .unwrap();
        let monitor = &monitors[0];
        assert_eq!(monitor.interval, Duration::from_secs(30));
        assert_eq!(monitor.retry_interval, Duration::from_secs(10));
        let MonitorKind::Http(check) = &monitor.kind else {
            panic!("not http");
        };
        assert_eq!(check.accepted_statuses, vec![(200, 200), (300, 399)]);
        assert_eq!(check.json_equals, Some(serde_json::json!(false)));
        assert_eq!(check.cert_expiry_days, vec![21, 14, 7]);
        assert_eq!(monitor.maintenance.len(), 2);
        assert_eq!(monitor.run_on, RunOn::Collector);
    }

    #[test]
    fn every_problem_is_named() {
        let problems = parse_monitors(
            &tables(
                r#"
                [[monitor]]
                name = "a"
                type = "http"
                url = "cloud.example.org"
                interval = 2
                notify = ["pager"]
                [[monitor]]
                name = "b"
                type = "tcp"
                host = "db"
                timeout = "2m"
                run_on = "everywhere"
                [[monitor]]
                name = "c"
                type = "oidc"
                issuer = "https://sso.example.org/realms/school"
                client_id = "garonne"
                "#,
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            problems,
            vec![
                "monitor[0].interval: 2s is outside the allowed range 5s..=86400s",
                "monitor[0].notify: \"pager\" is not the name of a [[notify]] channel",
                "monitor[0].url: \"cloud.example.org\" is not an http(s) URL",
                "monitor[1].timeout: 120s must not exceed the interval (60s)",
                "monitor[1].run_on: \"everywhere\" must be \"collector\", \"agents\" or a list \
                 of agent ids",
                "monitor[1].port: is required",
                "monitor[2].client_id: a client-credentials check needs client_id and one of \
                 client_secret, client_secret_file, client_secret_env",
            ]
        );
    }

    #[test]
    fn weekly_windows_cross_midnight() {
        let window = parse_window(
            &r#"days = ["sat"]
                from = "22:00"
                to = "02:00"
                timezone = "UTC""#
                .parse()
                .unwrap(),
        )
        .unwrap();
        // 2026-03-07 is a Saturday.
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        assert!(window.contains(at("2026-03-07T23:00:00Z")));
        assert!(window.contains(at("2026-03-08T01:59:00Z")));
        assert!(!window.contains(at("2026-03-08T02:00:00Z")));
        assert!(!window.contains(at("2026-03-07T21:59:00Z")));
        assert!(!window.contains(at("2026-03-06T23:00:00Z")));
    }
}
