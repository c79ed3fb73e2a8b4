//! Delivery tests against receivers started on 127.0.0.1: an HTTP receiver that
//! records what webhook, Discord and Telegram channels post, and a real SMTP server
//! (aiosmtpd from the tools venv).

use super::testing::{Receiver, free_port, smtp_python};
use super::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn notification(severity: Severity) -> Notification {
    Notification {
        title: "keycloak is DOWN".into(),
        body: "token endpoint answered invalid_client".into(),
        severity,
        key: "monitor:keycloak".into(),
        fields: BTreeMap::from([("monitor".into(), "keycloak".into())]),
        link: Some("http://127.0.0.1/monitors/keycloak".into()),
        occurred: "2026-03-01T10:00:00Z".parse().unwrap(),
    }
}

fn notifier(text: &str) -> Notifier {
    garonne_common::tls::install_crypto_provider();
    let mut document: toml::Table = text.parse().unwrap();
    let tables: Vec<toml::Table> = match document.remove("notify") {
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| item.as_table().cloned())
            .collect(),
        _ => Vec::new(),
    };
    Notifier::from_config(&tables).unwrap_or_else(|problems| panic!("{problems:#?}"))
}

#[tokio::test]
async fn webhook_posts_the_documented_object_with_a_valid_signature() {
    let receiver = Receiver::start().await;
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "ops"
        type = "webhook"
        url = "{}/hook"
        secret = "shared-key"
        headers = {{ "X-Team" = "ops" }}
        "#,
        receiver.url()
    ));
    assert_eq!(notifier.channel_names(), vec!["ops"]);
    notifier
        .send("ops", &notification(Severity::Critical))
        .await
        .unwrap();
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(request.header("x-team"), Some("ops"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let expected = payload::signature("shared-key", &request.body);
    assert_eq!(
        request.header("x-garonne-signature"),
        Some(expected.as_str())
    );
    let body = request.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "body", "fields", "key", "link", "occurred", "severity", "title"
        ]
    );
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["fields"]["monitor"], "keycloak");
}

#[tokio::test]
async fn discord_and_telegram_receive_their_api_shapes() {
    let receiver = Receiver::start().await;
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "discord"
        type = "discord"
        url = "{0}/api/webhooks/1/token"
        [[notify]]
        name = "telegram"
        type = "telegram"
        api_url = "{0}"
        bot_token = "123456:ABC"
        chat_id = -100200
        "#,
        receiver.url()
    ));
    notifier
        .send("discord", &notification(Severity::Resolved))
        .await
        .unwrap();
    notifier
        .send("telegram", &notification(Severity::Warning))
        .await
        .unwrap();
    let requests = receiver.wait_for(2, WAIT).await;

    let discord = &requests[0];
    assert_eq!(discord.path, "/api/webhooks/1/token");
    let body: Value = serde_json::from_slice(&discord.body).unwrap();
    assert_eq!(body["content"], "[RESOLVED] keycloak is DOWN");
    assert_eq!(body["embeds"][0]["title"], "keycloak is DOWN");
    assert_eq!(body["embeds"][0]["fields"][0]["name"], "monitor");
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));

    let telegram = &requests[1];
    assert_eq!(telegram.path, "/bot123456:ABC/sendMessage");
    let body: Value = serde_json::from_slice(&telegram.body).unwrap();
    assert_eq!(body["chat_id"], -100200);
    assert_eq!(body["parse_mode"], "HTML");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("<b>[WARNING] keycloak is DOWN</b>")
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_final() {
    let receiver = Receiver::start().await;
    receiver.plan(&[503, 502]);
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "ops"
        type = "webhook"
        url = "{}/hook"
        retry_delay = "20ms"
        "#,
        receiver.url()
    ));
    notifier
        .send("ops", &notification(Severity::Info))
        .await
        .unwrap();
    assert_eq!(receiver.wait_for(3, WAIT).await.len(), 3);
    let stats = &notifier.stats()[0];
    assert_eq!((stats.sent, stats.retried, stats.failed), (1, 2, 0));

    receiver.plan(&[400]);
    let error = notifier
        .send("ops", &notification(Severity::Info))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, NotifyError::Refused { reason, .. } if reason.starts_with("HTTP 400")),
        "{error}"
    );
    assert_eq!(receiver.count(), 4, "a 400 is not retried");
}

#[tokio::test]
async fn a_dead_channel_is_retried_without_holding_back_another() {
    let receiver = Receiver::start().await;
    let dead_port = free_port();
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "dead"
        type = "webhook"
        url = "http://127.0.0.1:{dead_port}/hook"
        retries = 3
        retry_delay = "300ms"
        timeout = "2s"
        [[notify]]
        name = "alive"
        type = "discord"
        url = "{}/discord"
        "#,
        receiver.url()
    ));
    let dead = notifier.send_in_background("dead", notification(Severity::Critical));
    let alive = notifier.send_in_background("alive", notification(Severity::Critical));
    receiver.wait_for(1, WAIT).await;
    alive.await.unwrap().unwrap();
    assert!(!dead.is_finished(), "the dead channel is still retrying");
    let error = tokio::time::timeout(WAIT, dead)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&error, NotifyError::Failed { attempts: 4, reason, .. }
            if reason.contains("onnection refused")),
        "{error}"
    );
    let stats: BTreeMap<String, ChannelStats> = notifier
        .stats()
        .into_iter()
        .map(|stats| (stats.name.clone(), stats))
        .collect();
    assert_eq!((stats["dead"].failed, stats["dead"].retried), (1, 3));
    assert_eq!(stats["alive"].sent, 1);
}

#[tokio::test]
async fn rate_limit_drops_messages_beyond_the_limit_and_unknown_channels_fail() {
    let receiver = Receiver::start().await;
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "ops"
        type = "webhook"
        url = "{}/hook"
        rate_limit = 2
        "#,
        receiver.url()
    ));
    let message = notification(Severity::Warning);
    notifier.send("ops", &message).await.unwrap();
    notifier.send("ops", &message).await.unwrap();
    assert_eq!(
        notifier.send("ops", &message).await,
        Err(NotifyError::RateLimited {
            channel: "ops".into(),
            limit: 2
        })
    );
    assert_eq!(receiver.count(), 2);
    assert_eq!(notifier.stats()[0].rate_limited, 1);
    assert_eq!(
        notifier.send("nobody", &message).await,
        Err(NotifyError::UnknownChannel("nobody".into()))
    );
}

#[test]
fn telegram_token_never_appears_in_errors() {
    let notifier = notifier(
        r#"
        [[notify]]
        name = "tg"
        type = "telegram"
        api_url = "http://127.0.0.1:1"
        bot_token = "999:SECRET-TOKEN"
        chat_id = 1
        retries = 0
        "#,
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(notifier.send("tg", &notification(Severity::Info)))
        .unwrap_err();
    assert!(matches!(error, NotifyError::Failed { .. }), "{error}");
    assert!(!error.to_string().contains("SECRET-TOKEN"), "{error}");
}

/// Runs the SMTP receiver script; it stays up as long as the returned child lives.
async fn start_smtp(arguments: &[&str]) -> (tokio::process::Child, u16, tempfile::TempDir) {
    use tokio::io::AsyncBufReadExt;
    let python = smtp_python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/smtp/receiver.py");
    let inbox = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args(["--port", &port.to_string(), "--dir"])
        .arg(inbox.path())
        .args(arguments)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start the SMTP receiver");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(
        matches!(&ready, Ok(Ok(Some(line))) if line == "READY"),
        "SMTP receiver did not start: {ready:?}"
    );
    (child, port, inbox)
}

async fn wait_for_mail(inbox: &std::path::Path) -> Value {
    let path = inbox.join("1.json");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "no mail arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn email_is_delivered_over_plain_smtp() {
    let (_server, port, inbox) = start_smtp(&[]).await;
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "mail"
        type = "email"
        server = "127.0.0.1"
        port = {port}
        tls = "none"
        from = "Garonne <garonne@example.org>"
        to = ["ops@example.org", "oncall@example.org"]
        "#
    ));
    notifier
        .send("mail", &notification(Severity::Critical))
        .await
        .unwrap();
    let mail = wait_for_mail(inbox.path()).await;
    assert_eq!(mail["mail_from"], "garonne@example.org");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.org", "oncall@example.org"])
    );
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: Garonne [CRITICAL] keycloak is DOWN"),
        "{data}"
    );
    assert!(
        data.contains("token endpoint answered invalid_client"),
        "{data}"
    );
}

#[tokio::test]
async fn email_uses_starttls_and_login_against_a_private_ca() {
    let certificates = tempfile::tempdir().unwrap();
    crate::certs::init(
        certificates.path(),
        &["127.0.0.1".to_string()],
        "unused-agent",
    )
    .unwrap();
    let cert = certificates.path().join("collector.pem");
    let key = certificates.path().join("collector.key");
    let (_server, port, inbox) = start_smtp(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--user",
        "garonne",
        "--password",
        "mail-pass",
    ])
    .await;
    let ca = certificates.path().join("ca.pem");
    let notifier = notifier(&format!(
        r#"
        [[notify]]
        name = "mail"
        type = "email"
        server = "127.0.0.1"
        port = {port}
        tls = "starttls"
        ca = "{}"
        username = "garonne"
        password = "mail-pass"
        from = "garonne@example.org"
        to = "ops@example.org"
        "#,
        ca.display()
    ));
    notifier
        .send("mail", &notification(Severity::Warning))
        .await
        .unwrap();
    let mail = wait_for_mail(inbox.path()).await;
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["authenticated"], true);
}
