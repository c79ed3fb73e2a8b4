//! `[[notify]]` tables into typed channel settings.

use super::table::{TableReader, is_http_url};
use lettre::message::Mailbox;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// Messages per minute per channel unless `rate_limit` says otherwise. Enough for a
/// handful of simultaneous incidents; beyond it messages are dropped and counted, and
/// the next delivered message says how many were dropped.
pub const DEFAULT_RATE_LIMIT: u32 = 20;
/// One request (or one SMTP session) at most this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts after the first before a message is given up.
pub const DEFAULT_RETRIES: u32 = 5;
/// First delay between attempts; it doubles up to [`MAX_RETRY_DELAY`].
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

pub use garonne_common::probe::Secret;

/// One `[[notify]]` table, checked.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    pub rate_limit: u32,
    pub timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Webhook {
        url: String,
        secret: Option<Secret>,
        headers: BTreeMap<String, String>,
    },
    Discord {
        url: String,
        username: Option<String>,
    },
    Telegram {
        api_url: String,
        bot_token: Secret,
        chat_id: String,
        html: bool,
    },
    Email(EmailConfig),
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Discord { .. } => "discord",
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Email(_) => "email",
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: only for a relay on the same host or a test server.
    None,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub server: String,
    pub port: u16,
    pub tls: EmailTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// PEM file of a private CA the server's certificate chains to.
    pub ca: Option<PathBuf>,
}

/// Reads every table, returning the channels or every problem found.
pub(super) fn parse_channels(tables: &[toml::Table]) -> Result<Vec<ChannelConfig>, Vec<String>> {
    let mut channels = Vec::new();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (index, table) in tables.iter().enumerate() {
        let mut reader = TableReader::new(format!("notify[{index}]"), table);
        let channel = parse_channel(&mut reader);
        if let Some(name) = table.get("name").and_then(toml::Value::as_str)
            && !names.insert(name.to_string())
        {
            reader.problem("name", format!("{name:?} is used by another channel"));
        }
        let found = reader.finish();
        if found.is_empty() {
            channels.extend(channel);
        }
        problems.extend(found);
    }
    if problems.is_empty() {
        Ok(channels)
    } else {
        Err(problems)
    }
}

fn parse_channel(reader: &mut TableReader<'_>) -> Option<ChannelConfig> {
    let name = reader.string("name");
    if let Some(name) = &name
        && !valid_name(name)
    {
        reader.problem(
            "name",
            format!("{name:?} must be letters, digits, '-', '_' or '.'"),
        );
    }
    let kind_name = reader.string("type");
    let rate_limit = reader
        .optional_integer("rate_limit", 1, 10_000)
        .map_or(DEFAULT_RATE_LIMIT, |n| n as u32);
    let timeout = reader
        .optional_duration(
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(300),
        )
        .unwrap_or(DEFAULT_TIMEOUT);
    let retries = reader
        .optional_integer("retries", 0, 20)
        .map_or(DEFAULT_RETRIES, |n| n as u32);
    let retry_delay = reader
        .optional_duration("retry_delay", Duration::from_millis(10), MAX_RETRY_DELAY)
        .unwrap_or(DEFAULT_RETRY_DELAY);
    let kind = match kind_name.as_deref() {
        Some("webhook") => parse_webhook(reader),
        Some("discord") => parse_discord(reader),
        Some("telegram") => parse_telegram(reader),
        Some("email") => parse_email(reader),
        Some(other) => {
            reader.problem(
                "type",
                format!("{other:?} is not one of webhook, discord, telegram, email"),
            );
            None
        }
        None => None,
    };
    Some(ChannelConfig {
        name: name?,
        kind: kind?,
        rate_limit,
        timeout,
        retries,
        retry_delay,
    })
}

fn valid_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn http_url(reader: &mut TableReader<'_>, key: &str, value: Option<String>) -> Option<String> {
    let url = value?;
    if is_http_url(&url) {
        Some(url)
    } else {
        reader.problem(key, format!("{url:?} is not an http(s) URL"));
        None
    }
}

fn parse_webhook(reader: &mut TableReader<'_>) -> Option<ChannelKind> {
    let url = reader.string("url");
    let url = http_url(reader, "url", url);
    let secret = reader.secret("secret", "secret_file", None).map(Secret);
    let headers = reader.string_map("headers");
    for (name, value) in &headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            reader.problem(&format!("headers.{name}"), "is not a valid header name");
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            reader.problem(&format!("headers.{name}"), "is not a valid header value");
        }
    }
    Some(ChannelKind::Webhook {
        url: url?,
        secret,
        headers,
    })
}

fn parse_discord(reader: &mut TableReader<'_>) -> Option<ChannelKind> {
    let url = reader.string("url");
    let url = http_url(reader, "url", url);
    let username = reader.optional_string("username");
    Some(ChannelKind::Discord {
        url: url?,
        username,
    })
}

fn parse_telegram(reader: &mut TableReader<'_>) -> Option<ChannelKind> {
    let bot_token = reader.secret("bot_token", "bot_token_file", None);
    if bot_token.is_none() && !reader.has("bot_token") && !reader.has("bot_token_file") {
        reader.problem("bot_token", "is required (or bot_token_file)");
    }
    let chat_id = match reader.raw("chat_id") {
        Some(toml::Value::String(id)) if !id.is_empty() => Some(id.clone()),
        Some(toml::Value::Integer(id)) => Some(id.to_string()),
        Some(_) => {
            reader.problem("chat_id", "must be a chat id (integer) or @channelname");
            None
        }
        None => {
            reader.problem("chat_id", "is required");
            None
        }
    };
    let api_url = reader
        .optional_string("api_url")
        .unwrap_or_else(|| DEFAULT_TELEGRAM_API.to_string());
    let api_url = http_url(reader, "api_url", Some(api_url));
    let html = match reader.optional_string("parse_mode").as_deref() {
        None | Some("HTML") | Some("html") => true,
        Some("none") | Some("plain") => false,
        Some(other) => {
            reader.problem("parse_mode", format!("{other:?} is not one of HTML, none"));
            true
        }
    };
    Some(ChannelKind::Telegram {
        api_url: api_url?.trim_end_matches('/').to_string(),
        bot_token: Secret(bot_token?),
        chat_id: chat_id?,
        html,
    })
}

fn parse_email(reader: &mut TableReader<'_>) -> Option<ChannelKind> {
    let server = reader.string("server");
    let tls = match reader.optional_string("tls").as_deref() {
        None | Some("starttls") => Some(EmailTls::Starttls),
        Some("implicit") => Some(EmailTls::Implicit),
        Some("none") => Some(EmailTls::None),
        Some(other) => {
            reader.problem(
                "tls",
                format!("{other:?} is not one of starttls, implicit, none"),
            );
            None
        }
    };
    let default_port = match tls {
        Some(EmailTls::Implicit) => 465,
        Some(EmailTls::None) => 25,
        _ => 587,
    };
    let port = reader
        .optional_integer("port", 1, 65_535)
        .map_or(default_port, |port| port as u16);
    let username = reader.optional_string("username");
    let password = reader.secret("password", "password_file", None).map(Secret);
    if username.is_some() != password.is_some() {
        reader.problem("username", "a username needs a password and the reverse");
    }
    let from = reader
        .string("from")
        .and_then(|text| mailbox(reader, "from", &text));
    let listed = reader.string_list("to").unwrap_or_default();
    if listed.is_empty() {
        reader.problem("to", "must list at least one address");
    }
    let to: Vec<Mailbox> = listed
        .iter()
        .filter_map(|text| mailbox(reader, "to", text))
        .collect();
    let ca = reader.optional_string("ca").map(PathBuf::from);
    if let Some(ca) = &ca
        && let Err(error) = std::fs::read(ca)
    {
        reader.problem("ca", format!("cannot read {}: {error}", ca.display()));
    }
    Some(ChannelKind::Email(EmailConfig {
        server: server?,
        port,
        tls: tls?,
        username,
        password,
        from: from?,
        to,
        ca,
    }))
}

fn mailbox(reader: &mut TableReader<'_>, key: &str, text: &str) -> Option<Mailbox> {
    match text.parse::<Mailbox>() {
        Ok(mailbox) => Some(mailbox),
        Err(error) => {
            reader.problem(key, format!("{text:?} is not an e-mail address: {error}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> Vec<toml::Table> {
        let mut document: toml::Table = text.parse().unwrap();
        match document.remove("notify") {
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::Table(table) => table,
                    _ => unreachable!(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn valid_channels_of_each_type_parse_with_defaults() {
        let channels = parse_channels(&tables(
            r#"
            [[notify]]
            name = "ops"
            type = "webhook"
            url = "https://hooks.example.org/garonne"
            secret = "k"
            headers = { "X-Team" = "ops" }
            [[notify]]
            name = "discord"
            type = "discord"
            url = "https://discord.com/api/webhooks/1/abc"
            [[notify]]
            name = "tg"
            type = "telegram"
            bot_token = "123:abc"
            chat_id = -100123
            [[notify]]
            name = "mail"
            type = "email"
            server = "smtp.example.org"
            tls = "implicit"
            username = "garonne"
            password = "pw"
            from = "Garonne <garonne@example.org>"
            to = ["ops@example.org"]
            rate_limit = 5
            "#,
        ))
        .unwrap();
        assert_eq!(channels.len(), 4);
        assert_eq!(channels[0].rate_limit, DEFAULT_RATE_LIMIT);
        match &channels[2].kind {
            ChannelKind::Telegram {
                api_url, chat_id, ..
            } => {
                assert_eq!(api_url, DEFAULT_TELEGRAM_API);
                assert_eq!(chat_id, "-100123");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &channels[3].kind {
            ChannelKind::Email(email) => {
                assert_eq!((email.port, email.tls), (465, EmailTls::Implicit));
                assert_eq!(format!("{:?}", email.password), "Some(<redacted>)");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(channels[3].rate_limit, 5);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let problems = parse_channels(&tables(
            r#"
            [[notify]]
            name = "a"
            type = "webhook"
            url = "https://ok.example.org"
            [[notify]]
            name = "a"
            type = "webhook"
            url = "x"
            [[notify]]
            name = "b"
            type = "pager"
            [[notify]]
            name = "c"
            type = "email"
            server = "smtp"
            tls = "ssl"
            from = "not an address"
            to = []
            colour = "red"
            "#,
        ))
        .unwrap_err();
        assert_eq!(
            problems,
            vec![
                "notify[1].url: \"x\" is not an http(s) URL",
                "notify[1].name: \"a\" is used by another channel",
                "notify[2].type: \"pager\" is not one of webhook, discord, telegram, email",
                "notify[3].tls: \"ssl\" is not one of starttls, implicit, none",
                "notify[3].from: \"not an address\" is not an e-mail address: \
                 Invalid input",
                "notify[3].to: must list at least one address",
                "notify[3].colour: unknown key",
            ]
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let problems = parse_channels(&tables(
            r#"
            [[notify]]
            name = "a"
            type = "discord"
            url = "http://127.0.0.1:1/x"
            [[notify]]
            name = "a"
            type = "discord"
            url = "http://127.0.0.1:1/y"
            "#,
        ))
        .unwrap_err();
        assert_eq!(
            problems,
            vec!["notify[1].name: \"a\" is used by another channel"]
        );
    }
}
