//! What each service receives, built without I/O so tests can check the shapes.
//!
//! - Generic webhook: one JSON object (`title`, `body`, `severity`, `key`, `fields`,
//!   `link`, `occurred`), signed with HMAC-SHA256 when a secret is set.
//! - Discord (execute webhook): `content` with a one-line summary, one embed carrying the
//!   details, and `allowed_mentions` empty so text from logs can never ping anyone.
//!   Discord's limits (title 256, description 4096, 25 fields, 6000 characters per
//!   embed) are respected by cutting long values.
//! - Telegram (`sendMessage`): `chat_id`, `text` (at most 4096 characters), HTML
//!   `parse_mode` with every user-supplied piece escaped.
//! - E-mail: a one-line subject and a plain-text body.

use super::{Notification, Severity};
use crate::pipeline::format_timestamp;
use serde_json::{Value, json};
use std::fmt::Write;

/// Header carrying the webhook signature: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Garonne-Signature";

const DISCORD_TITLE: usize = 256;
const DISCORD_DESCRIPTION: usize = 4096;
const DISCORD_FIELDS: usize = 25;
const DISCORD_FIELD_NAME: usize = 256;
const DISCORD_FIELD_VALUE: usize = 1024;
const DISCORD_EMBED_TOTAL: usize = 6000;
const DISCORD_CONTENT: usize = 2000;
const TELEGRAM_TEXT: usize = 4096;

pub fn webhook_body(notification: &Notification) -> Vec<u8> {
    let body = json!({
        "title": notification.title,
        "body": notification.body,
        "severity": notification.severity.as_str(),
        "key": notification.key,
        "fields": notification.fields,
        "link": notification.link,
        "occurred": format_timestamp(notification.occurred),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for byte in tag.as_ref() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Embed colour per severity.
fn discord_colour(severity: Severity) -> u32 {
    match severity {
        Severity::Info => 0x3498db,
        Severity::Warning => 0xf39c12,
        Severity::Critical => 0xe74c3c,
        Severity::Resolved => 0x2ecc71,
    }
}

pub fn discord_body(notification: &Notification, username: Option<&str>) -> Value {
    let title = cut(&notification.title, DISCORD_TITLE);
    let description = cut(&notification.body, DISCORD_DESCRIPTION.min(3000));
    let mut budget = DISCORD_EMBED_TOTAL - title.chars().count() - description.chars().count();
    let mut fields = Vec::new();
    for (name, value) in notification.fields.iter().take(DISCORD_FIELDS) {
        let name = cut(name, DISCORD_FIELD_NAME);
        let value = cut(
            if value.is_empty() { "-" } else { value },
            DISCORD_FIELD_VALUE,
        );
        let cost = name.chars().count() + value.chars().count();
        if cost > budget {
            break;
        }
        budget -= cost;
        fields.push(json!({"name": name, "value": value, "inline": value.len() <= 40}));
    }
    let mut embed = json!({
        "title": title,
        "description": description,
        "color": discord_colour(notification.severity),
        "fields": fields,
        "timestamp": format_timestamp(notification.occurred),
    });
    if let Some(link) = &notification.link {
        embed["url"] = json!(link);
    }
    let content = cut(&summary_line(notification), DISCORD_CONTENT);
    let mut body = json!({
        "content": content,
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    });
    if let Some(username) = username {
        body["username"] = json!(username);
    }
    body
}

pub fn telegram_body(notification: &Notification, chat_id: &str, html: bool) -> Value {
    let text = if html {
        telegram_html(notification)
    } else {
        cut(&plain_text(notification), TELEGRAM_TEXT)
    };
    let chat: Value = chat_id
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(chat_id));
    let mut body = json!({
        "chat_id": chat,
        "text": text,
        "disable_web_page_preview": true,
    });
    if html {
        body["parse_mode"] = json!("HTML");
    }
    body
}

fn telegram_html(notification: &Notification) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "<b>{}</b>",
        escape_html(&cut(&summary_line(notification), 512))
    );
    if !notification.body.is_empty() {
        let _ = write!(text, "\n\n{}", escape_html(&cut(&notification.body, 2500)));
    }
    let mut lines = String::new();
    for (name, value) in &notification.fields {
        let line = format!(
            "\n<b>{}</b>: {}",
            escape_html(&cut(name, 64)),
            escape_html(&cut(value, 256))
        );
        if text.len() + lines.len() + line.len() > TELEGRAM_TEXT - 300 {
            break;
        }
        lines.push_str(&line);
    }
    if !lines.is_empty() {
        text.push('\n');
        text.push_str(&lines);
    }
    if let Some(link) = &notification.link {
        let href = escape_html(&cut(link, 200));
        let _ = write!(text, "\n\n<a href=\"{href}\">open</a>");
    }
    text
}

/// `[CRITICAL] title`: the line a phone shows.
pub fn summary_line(notification: &Notification) -> String {
    let mut line = format!(
        "[{}] {}",
        notification.severity.as_str().to_ascii_uppercase(),
        notification.title
    );
    line.retain(|c| c != '\n' && c != '\r');
    line
}

pub fn email_subject(notification: &Notification) -> String {
    cut(&format!("Garonne {}", summary_line(notification)), 200)
}

/// The message as plain text: summary, body, fields, link and time.
pub fn plain_text(notification: &Notification) -> String {
    let mut text = summary_line(notification);
    text.push_str("\n\n");
    if !notification.body.is_empty() {
        text.push_str(&notification.body);
        text.push_str("\n\n");
    }
    for (name, value) in &notification.fields {
        let _ = writeln!(text, "{name}: {value}");
    }
    if let Some(link) = &notification.link {
        let _ = writeln!(text, "\n{link}");
    }
    let _ = writeln!(
        text,
        "\noccurred: {}",
        format_timestamp(notification.occurred)
    );
    let _ = writeln!(text, "key: {}", notification.key);
    text
}

/// At most `limit` characters, the last being `…` when something was cut.
pub fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut kept: String = text.chars().take(limit.saturating_sub(1)).collect();
    kept.push('…');
    kept
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn notification() -> Notification {
        Notification {
            title: "keycloak is DOWN".into(),
            body: "login failed: <invalid_client> & more".into(),
            severity: Severity::Critical,
            key: "monitor:keycloak".into(),
            fields: BTreeMap::from([("monitor".into(), "keycloak".into())]),
            link: Some("https://garonne.example.org/monitors/keycloak".into()),
            occurred: "2026-03-01T10:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_body_has_every_field() {
        let body: Value = serde_json::from_slice(&webhook_body(&notification())).unwrap();
        assert_eq!(body["severity"], "critical");
        assert_eq!(body["key"], "monitor:keycloak");
        assert_eq!(body["fields"]["monitor"], "keycloak");
        assert_eq!(body["occurred"], "2026-03-01T10:00:00.000Z");
    }

    #[test]
    fn discord_never_pings_and_cuts_long_text() {
        let mut long = notification();
        long.title = "x".repeat(1000);
        long.fields = (0..40)
            .map(|i| (format!("f{i:02}"), "y".repeat(2000)))
            .collect();
        let body = discord_body(&long, Some("Garonne"));
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
        let embed = &body["embeds"][0];
        assert_eq!(
            embed["title"].as_str().unwrap().chars().count(),
            DISCORD_TITLE
        );
        let fields = embed["fields"].as_array().unwrap();
        assert!(fields.len() < DISCORD_FIELDS);
        let total: usize = fields
            .iter()
            .map(|f| f["name"].as_str().unwrap().len() + f["value"].as_str().unwrap().len())
            .sum::<usize>()
            + 256
            + embed["description"].as_str().unwrap().len();
        assert!(total <= DISCORD_EMBED_TOTAL);
        assert_eq!(embed["color"], 0xe74c3c);
    }

    #[test]
    fn telegram_text_is_escaped_html() {
        let body = telegram_body(&notification(), "-1001", true);
        assert_eq!(body["chat_id"], -1001);
        assert_eq!(body["parse_mode"], "HTML");
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("<b>[CRITICAL] keycloak is DOWN</b>"));
        assert!(text.contains("login failed: &lt;invalid_client&gt; &amp; more"));
        let body = telegram_body(&notification(), "@ops", false);
        assert_eq!(body["chat_id"], "@ops");
        assert!(body.get("parse_mode").is_none());
    }
}
