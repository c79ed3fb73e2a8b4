//! Notification channels (`[[notify]]`): generic webhook, Discord, Telegram and e-mail,
//! shared by alert rules and monitors.
//!
//! A [`Notifier`] is built once from the configuration and cloned freely (it is a
//! handle). [`Notifier::send`] delivers one [`Notification`] to one channel:
//!
//! - **Rate limit.** Each channel takes at most `rate_limit` messages in any minute.
//!   Beyond it a message is dropped at once (never queued, so memory stays bounded) and
//!   counted; the next message that goes out carries a field saying how many were
//!   dropped, so the reader knows something is missing.
//! - **Retries.** A failed attempt (connection error, timeout, HTTP 408, 429 or 5xx,
//!   transient SMTP reply) is retried up to `retries` times after a delay that starts at
//!   `retry_delay`, doubles each time, is capped at 30 s and jittered; a `Retry-After`
//!   header is honoured within that cap. Any other refusal (HTTP 4xx, permanent SMTP
//!   reply) is final at once. Every attempt is bounded by `timeout`, so one message
//!   occupies a channel for at most about `retries × (timeout + 30 s)`.
//! - **Isolation.** Channels share nothing but the HTTP connection pool. Callers that
//!   must not wait use [`Notifier::send_in_background`], which runs the delivery in its
//!   own task, so a dead channel never holds back another channel or the caller.
//!
//! Secrets (webhook HMAC key, bot token, SMTP password) are read once at start-up,
//! are never logged, and never appear in error messages: the Telegram URL holds the bot
//! token, so transport errors are reported without their URL.

mod config;
mod email;
pub mod limits;
pub mod payload;
pub mod table;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use config::{
    ChannelConfig, ChannelKind, DEFAULT_RATE_LIMIT, DEFAULT_RETRIES, DEFAULT_RETRY_DELAY,
    DEFAULT_TELEGRAM_API, DEFAULT_TIMEOUT, EmailConfig, EmailTls, MAX_RETRY_DELAY, Secret,
};

use limits::{Backoff, RateLimiter};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How serious a notification is; `Resolved` ends an earlier warning or critical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
    Resolved,
}

impl Severity {
    /// Lowercase name, as sent in webhook payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Resolved => "resolved",
        }
    }
}

/// One message, independent of the channel that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// One line: what happened (`keycloak is DOWN`).
    pub title: String,
    /// Details in plain text; may span lines.
    pub body: String,
    pub severity: Severity,
    /// Identifies what the message is about (`monitor:keycloak`, `alert:5xx:web1`), so
    /// receivers can thread a problem and its resolution together.
    pub key: String,
    /// Short facts shown as a list (host, count, since).
    pub fields: BTreeMap<String, String>,
    /// Where to look further (a search or a monitor page).
    pub link: Option<String>,
    pub occurred: jiff::Timestamp,
}

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No `[[notify]]` table has this name.
    #[error("unknown notification channel {0:?}")]
    UnknownChannel(String),
    /// The channel already took `limit` messages in the last minute; this one was dropped.
    #[error(
        "channel {channel}: rate limit of {limit} messages per minute reached, message dropped"
    )]
    RateLimited { channel: String, limit: u32 },
    /// The service refused the message for a reason retrying cannot fix.
    #[error("channel {channel}: refused: {reason}")]
    Refused { channel: String, reason: String },
    /// Every attempt failed.
    #[error("channel {channel}: delivery failed after {attempts} attempts: {reason}")]
    Failed {
        channel: String,
        attempts: u32,
        reason: String,
    },
}

/// Delivery counts of one channel since start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStats {
    pub name: String,
    pub kind: &'static str,
    pub sent: u64,
    pub failed: u64,
    pub rate_limited: u64,
    /// Attempts that failed and were tried again.
    pub retried: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    rate_limited: AtomicU64,
    retried: AtomicU64,
    /// Dropped since the last delivered message, announced in the next one.
    dropped_unannounced: AtomicU64,
}

struct Channel {
    config: ChannelConfig,
    limiter: Mutex<RateLimiter>,
    counters: Counters,
    email: Option<email::EmailSender>,
}

struct Inner {
    channels: BTreeMap<String, Channel>,
    http: reqwest::Client,
}

/// The configured channels; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

/// One failed attempt.
struct Failure {
    reason: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn retryable(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            retryable: true,
            retry_after: None,
        }
    }

    fn permanent(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

impl Notifier {
    /// Checks every `[[notify]]` table and reads the secrets they name; on failure
    /// returns every problem, each starting with its key (`notify[1].url: ...`).
    pub fn from_config(tables: &[toml::Table]) -> Result<Notifier, Vec<String>> {
        let configs = config::parse_channels(tables)?;
        let mut problems = Vec::new();
        let mut channels = BTreeMap::new();
        for (index, config) in configs.into_iter().enumerate() {
            let email = match &config.kind {
                ChannelKind::Email(settings) => match email::EmailSender::new(settings) {
                    Ok(sender) => Some(sender),
                    Err(reason) => {
                        problems.push(format!("notify[{index}]: {reason}"));
                        None
                    }
                },
                _ => None,
            };
            let channel = Channel {
                limiter: Mutex::new(RateLimiter::new(config.rate_limit)),
                counters: Counters::default(),
                email,
                config,
            };
            channels.insert(channel.config.name.clone(), channel);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("garonne/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|error| vec![format!("notify: cannot build the HTTP client: {error}")])?;
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Notifier {
            inner: Arc::new(Inner { channels, http }),
        })
    }

    /// A notifier with no channels, for configurations without `[[notify]]`.
    pub fn empty() -> Notifier {
        Notifier::from_config(&[]).unwrap_or_else(|_| unreachable!("no tables, no problems"))
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.inner.channels.keys().cloned().collect()
    }

    pub fn has_channel(&self, name: &str) -> bool {
        self.inner.channels.contains_key(name)
    }

    pub fn stats(&self) -> Vec<ChannelStats> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        self.inner
            .channels
            .values()
            .map(|channel| ChannelStats {
                name: channel.config.name.clone(),
                kind: channel.config.kind.type_name(),
                sent: load(&channel.counters.sent),
                failed: load(&channel.counters.failed),
                rate_limited: load(&channel.counters.rate_limited),
                retried: load(&channel.counters.retried),
            })
            .collect()
    }

    /// Delivers in a task of its own and returns at once; the handle tells the outcome
    /// to whoever wants it. Must be called within a Tokio runtime.
    pub fn send_in_background(
        &self,
        channel: &str,
        notification: Notification,
    ) -> tokio::task::JoinHandle<Result<(), NotifyError>> {
        let notifier = self.clone();
        let channel = channel.to_string();
        tokio::spawn(async move { notifier.send(&channel, &notification).await })
    }

    /// Delivers `notification` to `channel`, retrying as the module doc describes.
    pub async fn send(
        &self,
        channel: &str,
        notification: &Notification,
    ) -> Result<(), NotifyError> {
        let Some(target) = self.inner.channels.get(channel) else {
            return Err(NotifyError::UnknownChannel(channel.to_string()));
        };
        let counters = &target.counters;
        let admitted = target
            .limiter
            .lock()
            .map(|mut limiter| limiter.try_acquire(Instant::now()))
            .unwrap_or(true);
        if !admitted {
            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            counters.dropped_unannounced.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                channel,
                key = %notification.key,
                "notification dropped by the rate limit",
            );
            return Err(NotifyError::RateLimited {
                channel: channel.to_string(),
                limit: target.config.rate_limit,
            });
        }
        let dropped = counters.dropped_unannounced.swap(0, Ordering::Relaxed);
        let announced;
        let notification = if dropped > 0 {
            let mut copy = notification.clone();
            copy.fields.insert(
                "dropped_by_rate_limit".to_string(),
                format!("{dropped} earlier notifications on this channel"),
            );
            announced = copy;
            &announced
        } else {
            notification
        };
        let result = self.deliver_with_retries(target, notification).await;
        match &result {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(channel, key = %notification.key, "notification delivered");
            }
            Err(error) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    channel,
                    key = %notification.key,
                    %error,
                    "notification not delivered",
                );
            }
        }
        result
    }

    async fn deliver_with_retries(
        &self,
        channel: &Channel,
        notification: &Notification,
    ) -> Result<(), NotifyError> {
        let config = &channel.config;
        let backoff = Backoff {
            initial: config.retry_delay,
            cap: MAX_RETRY_DELAY,
        };
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(channel, notification).await {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            if !failure.retryable {
                return Err(NotifyError::Refused {
                    channel: config.name.clone(),
                    reason: failure.reason,
                });
            }
            if attempt >= config.retries {
                return Err(NotifyError::Failed {
                    channel: config.name.clone(),
                    attempts: attempt + 1,
                    reason: failure.reason,
                });
            }
            let jittered = backoff.delay(attempt, rand::random::<f64>());
            let delay = failure
                .retry_after
                .map_or(jittered, |asked| asked.min(MAX_RETRY_DELAY).max(jittered));
            tracing::debug!(
                channel = %config.name,
                attempt = attempt + 1,
                reason = %failure.reason,
                delay_ms = delay.as_millis() as u64,
                "notification attempt failed, retrying"
            );
            channel.counters.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, channel: &Channel, notification: &Notification) -> Result<(), Failure> {
        let timeout = channel.config.timeout;
        match &channel.config.kind {
            ChannelKind::Webhook {
                url,
                secret,
                headers,
            } => {
                let body = payload::webhook_body(notification);
                let mut extra: Vec<(String, String)> = headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                if let Some(secret) = secret {
                    let signature = payload::signature(&secret.0, &body);
                    extra.push((payload::SIGNATURE_HEADER.to_string(), signature));
                }
                self.post_json(url, body, &extra, timeout).await
            }
            ChannelKind::Discord { url, username } => {
                let body = payload::discord_body(notification, username.as_deref());
                self.post_json(
                    url,
                    serde_json::to_vec(&body).unwrap_or_default(),
                    &[],
                    timeout,
                )
                .await
            }
            ChannelKind::Telegram {
                api_url,
                bot_token,
                chat_id,
                html,
            } => {
                let url = format!("{api_url}/bot{}/sendMessage", bot_token.0);
                let body = payload::telegram_body(notification, chat_id, *html);
                self.post_json(
                    &url,
                    serde_json::to_vec(&body).unwrap_or_default(),
                    &[],
                    timeout,
                )
                .await
            }
            ChannelKind::Email(_) => match &channel.email {
                Some(sender) => sender.send(notification, timeout).await,
                None => Err(Failure::permanent("e-mail transport not configured")),
            },
        }
    }

    /// POSTs a JSON body; classifies the outcome. Errors never carry the URL, which
    /// may hold a token.
    async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), Failure> {
        let mut request = self
            .inner
            .http
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|error| Failure::retryable(describe_http_error(error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .map(Duration::from_secs_f64);
        let text = response.text().await.unwrap_or_default();
        let reason = format!(
            "HTTP {}: {}",
            status.as_u16(),
            payload::cut(text.trim(), 300)
        );
        let retryable = status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT;
        Err(Failure {
            reason,
            retryable,
            retry_after,
        })
    }
}

/// The error and its causes, without the request URL.
fn describe_http_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
