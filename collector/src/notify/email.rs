//! E-mail over SMTP with lettre: STARTTLS, implicit TLS or plain, optional login.
//! One SMTP session per message: notifications are rare, and a fresh session never
//! meets a connection the server has silently closed.

use super::config::{EmailConfig, EmailTls};
use super::{Failure, Notification, payload};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub(super) struct EmailSender {
    config: EmailConfig,
    tls: Option<TlsParameters>,
}

impl EmailSender {
    /// Prepares the TLS parameters (roots and the optional private CA) once.
    pub(super) fn new(config: &EmailConfig) -> Result<EmailSender, String> {
        let tls = match config.tls {
            EmailTls::None => None,
            EmailTls::Starttls | EmailTls::Implicit => {
                let mut builder = TlsParameters::builder(config.server.clone());
                if let Some(ca) = &config.ca {
                    let pem = std::fs::read(ca)
                        .map_err(|error| format!("ca: cannot read {}: {error}", ca.display()))?;
                    let certificate = Certificate::from_pem(&pem).map_err(|error| {
                        format!("ca: {} holds no certificate: {error}", ca.display())
                    })?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|error| format!("tls: cannot set up TLS: {error}"))?,
                )
            }
        };
        Ok(EmailSender {
            config: config.clone(),
            tls,
        })
    }

    fn transport(&self, timeout: Duration) -> AsyncSmtpTransport<Tokio1Executor> {
        let config = &self.config;
        let tls = match (config.tls, &self.tls) {
            (EmailTls::Starttls, Some(parameters)) => Tls::Required(parameters.clone()),
            (EmailTls::Implicit, Some(parameters)) => Tls::Wrapper(parameters.clone()),
            _ => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.server)
            .port(config.port)
            .timeout(Some(timeout))
            .tls(tls);
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.0.clone()));
        }
        builder.build()
    }

    fn message(&self, notification: &Notification) -> Result<Message, Failure> {
        let mut builder = Message::builder()
            .from(self.config.from.clone())
            .subject(payload::email_subject(notification))
            .header(ContentType::TEXT_PLAIN);
        for recipient in &self.config.to {
            builder = builder.to(recipient.clone());
        }
        builder
            .body(payload::plain_text(notification))
            .map_err(|error| Failure::permanent(format!("cannot build the message: {error}")))
    }

    pub(super) async fn send(
        &self,
        notification: &Notification,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let message = self.message(notification)?;
        let transport = self.transport(timeout);
        // lettre's own timeout covers each command; this bounds the whole session.
        let sent = tokio::time::timeout(timeout * 3, transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) if error.is_permanent() => {
                Err(Failure::permanent(format!("smtp: {error}")))
            }
            Ok(Err(error)) => Err(Failure::retryable(format!("smtp: {}", describe(&error)))),
            Err(_) => Err(Failure::retryable(format!(
                "smtp: no answer within {} ms",
                (timeout * 3).as_millis()
            ))),
        }
    }
}

fn describe(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
