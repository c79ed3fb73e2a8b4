//! Running one check: HTTP(S), TCP or OpenID Connect. Each returns an [`Outcome`] plus
//! the facts stored with it (latency, HTTP status, final URL, OAuth error code); none
//! of them decides state, which is the collector's job.
//!
//! Every check opens fresh connections (no keep-alive between checks): a server that
//! stopped accepting connections must not look healthy through an old one, and the
//! certificate seen is the one a new visitor gets.

use super::{HttpCheck, MAX_BODY_BYTES, MonitorKind, OidcCheck, Outcome, Status};
use jiff::Timestamp;
use reqwest::{Method, Response, Url};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A check's outcome and what was measured on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub outcome: Outcome,
    pub duration: Duration,
    pub http_status: Option<u16>,
    /// The URL of the last request (after redirects).
    pub final_url: Option<String>,
    /// OAuth `error` code when a token request was refused.
    pub error_code: Option<String>,
}

/// Shared HTTP clients: one verifying certificates, one not.
pub struct Checker {
    verifying: reqwest::Client,
    trusting: reqwest::Client,
}

/// A failed step: the reason and, for OAuth refusals, the error code.
struct Failed {
    reason: String,
    error_code: Option<String>,
}

impl From<String> for Failed {
    fn from(reason: String) -> Failed {
        Failed {
            reason,
            error_code: None,
        }
    }
}

/// What the steps of a check found before it ended.
#[derive(Default)]
struct Facts {
    http_status: Option<u16>,
    final_url: Option<String>,
    cert_not_after: Option<Timestamp>,
}

impl Checker {
    pub fn new() -> Result<Checker, String> {
        let build = |verify: bool| {
            reqwest::Client::builder()
                .user_agent(concat!("garonne-probe/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .tls_info(true)
                .danger_accept_invalid_certs(!verify)
                .build()
                .map_err(|error| format!("cannot build the HTTP client: {error}"))
        };
        Ok(Checker {
            verifying: build(true)?,
            trusting: build(false)?,
        })
    }

    fn client(&self, verify: bool) -> &reqwest::Client {
        if verify {
            &self.verifying
        } else {
            &self.trusting
        }
    }

    /// Runs one check, never longer than `timeout`.
    pub async fn run(&self, kind: &MonitorKind, timeout: Duration) -> CheckResult {
        let started = Instant::now();
        let mut facts = Facts::default();
        let steps = async {
            match kind {
                MonitorKind::Http(check) => self.check_http(check, timeout, &mut facts).await,
                MonitorKind::Tcp { host, port } => check_tcp(host, *port).await,
                MonitorKind::Oidc(check) => self.check_oidc(check, timeout, &mut facts).await,
            }
        };
        let result = tokio::time::timeout(timeout, steps).await;
        let duration = started.elapsed();
        let (status, reason, error_code) = match result {
            Ok(Ok(())) => (Status::Up, None, None),
            Ok(Err(failed)) => (Status::Down, Some(failed.reason), failed.error_code),
            Err(_) => (
                Status::Down,
                Some(format!("no answer within {} ms", timeout.as_millis())),
                None,
            ),
        };
        let mut outcome = Outcome {
            status,
            reason,
            cert_not_after: facts.cert_not_after,
        };
        let threshold = match kind {
            MonitorKind::Http(check) => check.degraded_after,
            MonitorKind::Oidc(check) => check.degraded_after,
            MonitorKind::Tcp { .. } => None,
        };
        if let Some(threshold) = threshold
            && status == Status::Up
            && duration > threshold
        {
            outcome.status = Status::Degraded;
            outcome.reason = Some(format!(
                "answered in {} ms, slower than degraded_after {} ms",
                duration.as_millis(),
                threshold.as_millis()
            ));
        }
        CheckResult {
            outcome,
            duration,
            http_status: facts.http_status,
            final_url: facts.final_url,
            error_code,
        }
    }

    async fn check_http(
        &self,
        check: &HttpCheck,
        timeout: Duration,
        facts: &mut Facts,
    ) -> Result<(), Failed> {
        let response = self.follow_redirects(check, timeout, facts).await?;
        let status = response.status().as_u16();
        let accepted = check
            .accepted_statuses
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status));
        if !accepted {
            return Err(format!(
                "HTTP {status}, expected {}",
                describe_statuses(&check.accepted_statuses)
            )
            .into());
        }
        let needs_body =
            check.keyword.is_some() || check.keyword_absent.is_some() || check.json_path.is_some();
        if !needs_body {
            return Ok(());
        }
        let body = read_body(response).await?;
        let text = String::from_utf8_lossy(&body);
        check_keywords(check, &text)?;
        if let (Some(path), Some(expected)) = (&check.json_path, &check.json_equals) {
            check_json(&text, path, expected)?;
        }
        Ok(())
    }

    /// Sends the request and follows redirects itself, so that a loop is recognised by
    /// the URLs it revisits rather than by running out of hops.
    async fn follow_redirects(
        &self,
        check: &HttpCheck,
        timeout: Duration,
        facts: &mut Facts,
    ) -> Result<Response, Failed> {
        let client = self.client(check.tls_verify);
        let mut url = Url::parse(&check.url).map_err(|error| format!("invalid url: {error}"))?;
        let mut method = Method::from_bytes(check.method.as_bytes())
            .map_err(|_| format!("invalid method {:?}", check.method))?;
        let mut body = check.body.clone();
        let mut visited = vec![url.clone()];
        loop {
            let mut request = client.request(method.clone(), url.clone()).timeout(timeout);
            for (name, value) in &check.headers {
                request = request.header(name.as_str(), value.as_str());
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(describe_http_error)?;
            note_response(&response, facts);
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok());
            let (true, Some(location)) = (status.is_redirection(), location) else {
                return Ok(response);
            };
            if check.max_redirects == 0 {
                return Ok(response);
            }
            let next = url
                .join(location)
                .map_err(|error| format!("redirect to invalid location {location:?}: {error}"))?;
            if visited.contains(&next) {
                visited.push(next);
                return Err(format!("redirect loop: {}", join_urls(&visited)).into());
            }
            if visited.len() > check.max_redirects as usize {
                return Err(format!(
                    "more than {} redirects (max_redirects), last to {next}",
                    check.max_redirects
                )
                .into());
            }
            let keeps_method = matches!(status.as_u16(), 307 | 308);
            if !keeps_method && method != Method::GET && method != Method::HEAD {
                method = Method::GET;
                body = None;
            }
            visited.push(next.clone());
            url = next;
        }
    }

    async fn check_oidc(
        &self,
        check: &OidcCheck,
        timeout: Duration,
        facts: &mut Facts,
    ) -> Result<(), Failed> {
        let client = self.client(check.tls_verify);
        let discovery_url = format!("{}/.well-known/openid-configuration", check.issuer);
        let discovery =
            get_json(client, &discovery_url, timeout, facts, "discovery document").await?;
        let issuer = discovery["issuer"].as_str().unwrap_or_default();
        if issuer.trim_end_matches('/') != check.issuer {
            return Err(format!(
                "discovery document names issuer {issuer:?}, expected {:?}",
                check.issuer
            )
            .into());
        }
        let jwks_uri = endpoint(&discovery, "jwks_uri")?;
        let jwks = get_json(client, jwks_uri, timeout, facts, "JWKS").await?;
        let keys = jwks["keys"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if keys.is_empty() || keys.iter().any(|key| !key["kty"].is_string()) {
            return Err(format!("JWKS at {jwks_uri} holds no usable keys").into());
        }
        let (Some(client_id), Some(secret)) = (&check.client_id, &check.client_secret) else {
            return Ok(());
        };
        let token_endpoint = endpoint(&discovery, "token_endpoint")?;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &check.scope {
            form.push(("scope", scope));
        }
        let mut request = client
            .post(token_endpoint)
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        if check.client_auth_post {
            form.push(("client_id", client_id));
            form.push(("client_secret", &secret.0));
        } else {
            request = request.basic_auth(form_encode(client_id), Some(form_encode(&secret.0)));
        }
        let body = form
            .iter()
            .map(|(key, value)| format!("{key}={}", form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(describe_http_error)?;
        note_response(&response, facts);
        let status = response.status();
        let answer: Value = serde_json::from_slice(&read_body(response).await?).unwrap_or_default();
        if let Some(error) = answer["error"].as_str() {
            let description = answer["error_description"].as_str().unwrap_or_default();
            return Err(Failed {
                reason: format!(
                    "token endpoint refused the client credentials grant: {error}: {description}"
                ),
                error_code: Some(error.to_string()),
            });
        }
        if !status.is_success() || !answer["access_token"].is_string() {
            return Err(
                format!("token endpoint answered HTTP {status} without an access token").into(),
            );
        }
        Ok(())
    }
}

fn note_response(response: &Response, facts: &mut Facts) {
    facts.http_status = Some(response.status().as_u16());
    facts.final_url = Some(response.url().to_string());
    if facts.cert_not_after.is_none() {
        facts.cert_not_after = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(certificate_not_after);
    }
}

/// The end of a DER certificate's validity.
pub fn certificate_not_after(der: &[u8]) -> Option<Timestamp> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    Timestamp::from_second(certificate.validity().not_after.timestamp()).ok()
}

async fn check_tcp(host: &str, port: u16) -> Result<(), Failed> {
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(_) => Ok(()),
        Err(error) => Err(format!("cannot connect to {host}:{port}: {error}").into()),
    }
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    facts: &mut Facts,
    what: &str,
) -> Result<Value, Failed> {
    let response = client
        .get(url)
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| format!("{what} at {url}: {}", describe_http_error(error).reason))?;
    note_response(&response, facts);
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{what} at {url} answered HTTP {}", status.as_u16()).into());
    }
    let body = read_body(response).await?;
    serde_json::from_slice(&body)
        .map_err(|error| format!("{what} at {url} is not JSON: {error}").into())
}

fn endpoint<'a>(discovery: &'a Value, key: &str) -> Result<&'a str, Failed> {
    discovery[key]
        .as_str()
        .ok_or_else(|| format!("discovery document has no {key}").into())
}

async fn read_body(mut response: Response) -> Result<Vec<u8>, Failed> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe_http_error)? {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

fn check_keywords(check: &HttpCheck, text: &str) -> Result<(), Failed> {
    let contains = |needle: &str| {
        if check.case_sensitive {
            text.contains(needle)
        } else {
            text.to_lowercase().contains(&needle.to_lowercase())
        }
    };
    if let Some(keyword) = &check.keyword
        && !contains(keyword)
    {
        return Err(format!("keyword {keyword:?} not found in the response").into());
    }
    if let Some(keyword) = &check.keyword_absent
        && contains(keyword)
    {
        return Err(format!("keyword {keyword:?} found in the response, expected absent").into());
    }
    Ok(())
}

/// Follows a dotted path (`status.database`, `items.0.id`) through JSON.
pub fn json_at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// Equal as JSON; a string expectation also matches a number or boolean written the
/// same way (`"200"` matches `200`), as operators tend to write them.
pub fn json_matches(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(_) | Value::Bool(_), Value::String(text)) => {
            actual.to_string().as_str() == text.as_str()
        }
        _ => actual == expected,
    }
}

fn check_json(text: &str, path: &str, expected: &Value) -> Result<(), Failed> {
    let document: Value =
        serde_json::from_str(text).map_err(|error| format!("response is not JSON: {error}"))?;
    let Some(actual) = json_at(&document, path) else {
        return Err(format!("JSON field {path} not found").into());
    };
    if json_matches(actual, expected) {
        Ok(())
    } else {
        Err(format!("JSON field {path} is {actual}, expected {expected}").into())
    }
}

fn describe_statuses(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|(low, high)| {
            if low == high {
                low.to_string()
            } else {
                format!("{low}-{high}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_urls(urls: &[Url]) -> String {
    urls.iter()
        .map(Url::as_str)
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The error and its causes (TLS alerts, refused connections), without the URL.
fn describe_http_error(error: reqwest::Error) -> Failed {
    let timeout = error.is_timeout();
    let error = error.without_url();
    let mut text = crate::with_causes(&error);
    if timeout {
        text.push_str(" (timeout)");
    }
    text.into()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                encoded.push(byte as char)
            }
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_reach_objects_and_arrays() {
        let document = json!({"status": {"db": "ok", "replicas": [{"up": true}]}});
        assert_eq!(json_at(&document, "status.db"), Some(&json!("ok")));
        assert_eq!(
            json_at(&document, "status.replicas.0.up"),
            Some(&json!(true))
        );
        assert_eq!(json_at(&document, "status.missing"), None);
        assert_eq!(json_at(&document, "status.replicas.5"), None);
    }

    #[test]
    fn json_values_compare_as_operators_write_them() {
        assert!(json_matches(&json!(200), &json!("200")));
        assert!(json_matches(&json!(1.0), &json!(1)));
        assert!(json_matches(&json!(true), &json!("true")));
        assert!(!json_matches(&json!("ok"), &json!("OK")));
        assert!(!json_matches(&json!(null), &json!("null")));
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
