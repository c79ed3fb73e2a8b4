//! Converting an Uptime Kuma backup (`Settings → Backup → Export`, a JSON file with a
//! `monitorList`) into `[[monitor]]` tables.
//!
//! Converted: `http`, `keyword` (with `invertKeyword` → `keyword_absent`),
//! `json-query` (when the expression is a plain dotted path) and `port` (TCP). Every
//! other monitor, and any setting with no equivalent here (inverted status, JSONata
//! expressions, basic or OAuth authentication, client certificates), is reported by
//! name and type so nothing is lost silently. Notification settings are not carried
//! over: add `notify = [...]` to the result.

use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;

/// Keys in the order they are written, so `name` and `type` come first.
#[derive(Default)]
struct Table(Vec<(String, toml::Value)>);

impl Table {
    fn insert(&mut self, key: &str, value: toml::Value) {
        self.0.push((key.to_string(), value));
    }

    fn write(&self, text: &mut String) {
        text.push_str("[[monitor]]\n");
        for (key, value) in &self.0 {
            let _ = writeln!(text, "{key} = {value}");
        }
    }
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// `[[monitor]]` tables, ready to paste into the collector's configuration.
    pub toml: String,
    pub converted: usize,
    /// Monitors not converted: `name (type): why`.
    pub skipped: Vec<String>,
    /// Monitors converted with something left out: `name (type): what`.
    pub notes: Vec<String>,
}

/// Converts the backup's text; fails only when it is not an Uptime Kuma backup.
pub fn import_uptime_kuma(text: &str) -> Result<ImportReport, String> {
    let backup: Value =
        serde_json::from_str(text).map_err(|error| format!("not a JSON file: {error}"))?;
    let Some(list) = backup["monitorList"].as_array() else {
        return Err("no monitorList: not an Uptime Kuma backup".to_string());
    };
    let mut tables = Vec::new();
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let mut names = BTreeSet::new();
    for monitor in list {
        let label = format!(
            "{} ({})",
            monitor["name"].as_str().unwrap_or("unnamed"),
            monitor["type"].as_str().unwrap_or("unknown type")
        );
        match convert(monitor, &mut names) {
            Ok((table, mut left_out)) => {
                tables.push(table);
                notes.extend(left_out.drain(..).map(|note| format!("{label}: {note}")));
            }
            Err(reason) => skipped.push(format!("{label}: {reason}")),
        }
    }
    let converted = tables.len();
    let mut toml = String::new();
    for (index, table) in tables.iter().enumerate() {
        if index > 0 {
            toml.push('\n');
        }
        table.write(&mut toml);
    }
    Ok(ImportReport {
        toml,
        converted,
        skipped,
        notes,
    })
}

fn convert(monitor: &Value, names: &mut BTreeSet<String>) -> Result<(Table, Vec<String>), String> {
    let kind = monitor["type"].as_str().unwrap_or_default();
    if !matches!(kind, "http" | "keyword" | "json-query" | "port") {
        return Err("this monitor type has no Garonne equivalent".to_string());
    }
    if monitor["upsideDown"].as_bool() == Some(true) {
        return Err("upside-down mode (inverted status) is not supported".to_string());
    }
    let mut table = Table::default();
    let mut notes = Vec::new();
    let name = unique_name(monitor["name"].as_str().unwrap_or("monitor"), names);
    table.insert("name", name.into());
    if kind == "port" {
        table.insert("type", "tcp".into());
        let host = text(monitor, "hostname").ok_or("no hostname")?;
        let port = monitor["port"]
            .as_i64()
            .filter(|p| (1..=65_535).contains(p));
        table.insert("host", host.into());
        table.insert("port", port.ok_or("no valid port")?.into());
    } else {
        table.insert("type", "http".into());
        convert_http(monitor, kind, &mut table, &mut notes)?;
    }
    convert_timing(monitor, &mut table);
    if monitor["active"].as_bool() == Some(false) || monitor["active"].as_i64() == Some(0) {
        notes.push("paused in Uptime Kuma, active here".to_string());
    }
    Ok((table, notes))
}

fn convert_http(
    monitor: &Value,
    kind: &str,
    table: &mut Table,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let url = text(monitor, "url").ok_or("no url")?;
    if !crate::notify::table::is_http_url(&url) {
        return Err(format!("url {url:?} is not an http(s) URL"));
    }
    table.insert("url", url.into());
    if let Some(method) = text(monitor, "method").filter(|m| !m.eq_ignore_ascii_case("GET")) {
        table.insert("method", method.to_ascii_uppercase().into());
    }
    if let Some(body) = text(monitor, "body") {
        table.insert("body", body.into());
    }
    if let Some(headers) = text(monitor, "headers") {
        let parsed: serde_json::Map<String, Value> = serde_json::from_str(&headers)
            .map_err(|_| "headers are not a JSON object".to_string())?;
        let mut converted = toml::Table::new();
        for (name, value) in parsed {
            let value = value
                .as_str()
                .map(str::to_string)
                .unwrap_or(value.to_string());
            converted.insert(name, value.into());
        }
        table.insert("headers", converted.into());
    }
    if let Some(codes) = monitor["accepted_statuscodes"].as_array() {
        let codes: Vec<toml::Value> = codes
            .iter()
            .filter_map(Value::as_str)
            .map(|code| code.into())
            .collect();
        if !codes.is_empty() && codes != [toml::Value::from("200-299")] {
            table.insert("accepted_statuses", codes.into());
        }
    }
    if let Some(redirects) = monitor["maxredirects"].as_i64() {
        table.insert("max_redirects", redirects.clamp(0, 50).into());
    }
    if monitor["ignoreTls"].as_bool() == Some(true) || monitor["ignoreTls"].as_i64() == Some(1) {
        table.insert("tls_verify", false.into());
    }
    match kind {
        "keyword" => {
            let keyword = text(monitor, "keyword").ok_or("keyword monitor without a keyword")?;
            let inverted = monitor["invertKeyword"].as_bool() == Some(true)
                || monitor["invertKeyword"].as_i64() == Some(1);
            let key = if inverted {
                "keyword_absent"
            } else {
                "keyword"
            };
            table.insert(key, keyword.into());
            // Uptime Kuma matches keywords case-sensitively.
            table.insert("case_sensitive", true.into());
        }
        "json-query" => {
            let expression = text(monitor, "jsonPath").ok_or("json-query without jsonPath")?;
            let path = dotted_path(&expression).ok_or_else(|| {
                format!("JSONata expression {expression:?} is not a plain dotted path")
            })?;
            if let Some(operator) = text(monitor, "jsonPathOperator")
                && operator != "=="
            {
                return Err(format!(
                    "JSON comparison {operator:?} is not supported, only =="
                ));
            }
            let expected = text(monitor, "expectedValue").unwrap_or_default();
            table.insert("json_path", path.into());
            table.insert("json_equals", expected.into());
        }
        _ => {}
    }
    let auth = text(monitor, "authMethod").unwrap_or_default();
    if !auth.is_empty() && auth != "null" {
        notes.push(format!(
            "{auth} authentication not carried over; add an Authorization header"
        ));
    }
    Ok(())
}

fn convert_timing(monitor: &Value, table: &mut Table) {
    let interval = monitor["interval"].as_i64().unwrap_or(60).clamp(5, 86_400);
    table.insert("interval", interval.into());
    if let Some(timeout) = monitor["timeout"].as_f64().filter(|t| *t > 0.0) {
        let timeout = (timeout.ceil() as i64).clamp(1, interval.min(300));
        table.insert("timeout", timeout.into());
    }
    if let Some(retries) = monitor["maxretries"].as_i64().filter(|r| *r > 0) {
        table.insert("retries", retries.min(100).into());
    }
    if let Some(retry) = monitor["retryInterval"].as_i64().filter(|r| *r > 0) {
        table.insert("retry_interval", retry.min(86_400).into());
    }
    if let Some(resend) = monitor["resendInterval"].as_i64().filter(|r| *r > 0) {
        table.insert("remind_every", resend.min(100_000).into());
    }
}

/// `$.status.db`, `status.db`, `$.items[0].id` → `status.db`, `items.0.id`; `None`
/// for anything with operators or functions.
fn dotted_path(expression: &str) -> Option<String> {
    let trimmed = expression.trim();
    let trimmed = trimmed.strip_prefix("$.").unwrap_or(trimmed);
    let path = trimmed.replace('[', ".").replace(']', "");
    let plain = !path.is_empty()
        && path.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        });
    plain.then_some(path)
}

fn text(monitor: &Value, key: &str) -> Option<String> {
    monitor[key]
        .as_str()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_string)
}

/// Lowercase letters, digits and `-`, unique among the converted monitors.
fn unique_name(name: &str, names: &mut BTreeSet<String>) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    base = base.trim_matches(|c| c == '-' || c == '.').to_string();
    while base.contains("--") {
        base = base.replace("--", "-");
    }
    if base.is_empty() {
        base = "monitor".to_string();
    }
    base.truncate(100);
    let mut candidate = base.clone();
    let mut counter = 2;
    while !names.insert(candidate.clone()) {
        candidate = format!("{base}-{counter}");
        counter += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::config::{MonitorKind, parse_monitors};

    const BACKUP: &str = r#"{
      "version": "1.23.16",
      "notificationList": [],
      "monitorList": [
        {"id": 1, "name": "Nextcloud", "type": "http", "url": "https://cloud.example.org/status.php",
         "method": "GET", "interval": 60, "retryInterval": 30, "maxretries": 2, "timeout": 48,
         "accepted_statuscodes": ["200-299"], "maxredirects": 10, "ignoreTls": false,
         "upsideDown": false, "active": true, "headers": "{\"X-Probe\": \"kuma\"}"},
        {"id": 2, "name": "Keycloak login page", "type": "keyword",
         "url": "https://sso.example.org/realms/school", "keyword": "Sign in", "invertKeyword": false,
         "interval": 30, "maxretries": 0, "accepted_statuscodes": ["200-299", "302"]},
        {"id": 3, "name": "No errors", "type": "keyword", "url": "https://www.example.org/",
         "keyword": "Fatal error", "invertKeyword": true, "interval": 60, "authMethod": "basic"},
        {"id": 4, "name": "API health", "type": "json-query", "url": "https://api.example.org/health",
         "jsonPath": "$.status.db", "expectedValue": "ok", "interval": 60},
        {"id": 5, "name": "Postgres", "type": "port", "hostname": "db.example.org", "port": 5432,
         "interval": 60},
        {"id": 6, "name": "Gateway", "type": "ping", "hostname": "10.0.0.1", "interval": 60},
        {"id": 7, "name": "Fancy", "type": "json-query", "url": "https://api.example.org/x",
         "jsonPath": "$count(items) > 2", "expectedValue": "true", "interval": 60},
        {"id": 8, "name": "Inverted", "type": "http", "url": "https://old.example.org/",
         "upsideDown": true, "interval": 60}
      ]
    }"#;

    #[test]
    fn converts_supported_monitors_and_reports_the_rest() {
        let report = import_uptime_kuma(BACKUP).unwrap();
        assert_eq!(report.converted, 5);
        assert!(
            report
                .toml
                .starts_with("[[monitor]]\nname = \"nextcloud\"\ntype = \"http\"\n")
        );
        assert_eq!(
            report.skipped,
            vec![
                "Gateway (ping): this monitor type has no Garonne equivalent",
                "Fancy (json-query): JSONata expression \"$count(items) > 2\" is not a plain \
                 dotted path",
                "Inverted (http): upside-down mode (inverted status) is not supported",
            ]
        );
        assert_eq!(
            report.notes,
            vec![
                "No errors (keyword): basic authentication not carried over; add an \
                 Authorization header"
            ]
        );

        // The result is valid configuration.
        let document: toml::Table = report.toml.parse().unwrap();
        let tables: Vec<toml::Table> = document["monitor"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_table().unwrap().clone())
            .collect();
        let monitors = parse_monitors(&tables, &[]).unwrap_or_else(|p| panic!("{p:#?}"));
        let names: Vec<&str> = monitors.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "nextcloud",
                "keycloak-login-page",
                "no-errors",
                "api-health",
                "postgres"
            ]
        );
        assert_eq!(monitors[0].retries, 2);
        assert_eq!(monitors[0].timeout.as_secs(), 48);
        let MonitorKind::Http(keyword) = &monitors[1].kind else {
            panic!("not http")
        };
        assert_eq!(keyword.keyword.as_deref(), Some("Sign in"));
        assert_eq!(keyword.accepted_statuses, vec![(200, 299), (302, 302)]);
        let MonitorKind::Http(absent) = &monitors[2].kind else {
            panic!("not http")
        };
        assert_eq!(absent.keyword_absent.as_deref(), Some("Fatal error"));
        let MonitorKind::Http(json) = &monitors[3].kind else {
            panic!("not http")
        };
        assert_eq!(json.json_path.as_deref(), Some("status.db"));
        assert!(matches!(
            &monitors[4].kind,
            MonitorKind::Tcp { port: 5432, .. }
        ));
    }

    #[test]
    fn a_file_that_is_not_a_backup_is_refused() {
        assert!(
            import_uptime_kuma("{}")
                .unwrap_err()
                .contains("monitorList")
        );
        assert!(import_uptime_kuma("nope").is_err());
    }
}
