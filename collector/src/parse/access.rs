//! Apache access logs.
//!
//! Layouts read, by their `LogFormat` names:
//!
//! ```text
//! common          client ident user [time] "request" status bytes
//! combined        common + ` "referrer" "user-agent"`
//! vhost_combined  vhost[:port] + ` ` + combined
//! ssl_request     [time] client protocol cipher "request" bytes
//! ```
//!
//! The client may be an IPv4 or IPv6 address or a host name (with `HostnameLookups on`).
//! Quoted fields keep Apache's `\"` escapes as written. Anything after the user agent
//! (an `X-Forwarded-For` field, a response time) is ignored, and so is a missing referrer
//! or user agent. A request that is not `METHOD target HTTP/x.y` (a `-` for a connection
//! that timed out, a TLS handshake sent to a plain port) is kept whole in `url.original`,
//! except `-`, which yields no field.

use jiff::Timestamp;
use serde_json::{Map, Value};
use std::fmt;

use super::scan::{Cursor, parse_digits};
use super::url::{UrlParts, port_number};
use super::{Format, Parsed, base_doc, failed, insert_path, insert_source, time};

/// An access log line, borrowed from the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine<'a> {
    /// The virtual host of `vhost_combined` lines.
    pub virtual_host: Option<&'a str>,
    pub virtual_host_port: Option<u16>,
    /// The client: an IP address, or a host name when Apache resolves clients.
    pub client: &'a str,
    /// The authenticated user, `-` when none (kept as written, like Filebeat).
    pub user: Option<&'a str>,
    pub timestamp: Timestamp,
    pub request: Request<'a>,
    pub status: Option<u16>,
    pub body_bytes: Option<u64>,
    pub referrer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Protocol and cipher of `ssl_request` lines.
    pub tls: Option<Tls<'a>>,
}

/// The request line, split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Option<&'a str>,
    pub target: Option<&'a str>,
    /// The version after `HTTP/`: `1.1`.
    pub version: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls<'a> {
    /// As Apache writes it: `TLSv1.2`.
    pub protocol: &'a str,
    pub cipher: &'a str,
}

/// Why an access line did not parse; `at` is the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A required piece was absent; `what` names it.
    Expected { what: &'static str, at: usize },
    /// Fewer or more than the 3 (or 4, with a virtual host) fields before `[`.
    FieldCount { found: usize, at: usize },
    /// The time is not `dd/Mon/yyyy:hh:mm:ss +hhmm`, or names no real date.
    Timestamp { at: usize },
    /// The status is neither three digits nor `-`.
    Status { at: usize },
    /// The response size is neither a number nor `-`.
    BodyBytes { at: usize },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Expected { what, at } => write!(f, "expected {what} at byte {at}"),
            ParseError::FieldCount { found, at } => write!(
                f,
                "expected 3 fields (client ident user) or 4 (with a virtual host) before the \
                 timestamp, found {found} at byte {at}"
            ),
            ParseError::Timestamp { at } => {
                write!(
                    f,
                    "invalid timestamp at byte {at}, expected dd/Mon/yyyy:hh:mm:ss +hhmm"
                )
            }
            ParseError::Status { at } => write!(f, "invalid status code at byte {at}"),
            ParseError::BodyBytes { at } => write!(f, "invalid response size at byte {at}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads one access line without allocating.
pub fn parse(line: &str) -> Result<AccessLine<'_>, ParseError> {
    let mut cursor = Cursor::new(line);
    if cursor.peek() == Some(b'[') {
        return parse_ssl_request(&mut cursor);
    }
    let prefix = read_prefix(&mut cursor)?;
    let timestamp = read_timestamp(&mut cursor)?;
    expect(&mut cursor, b' ', "' ' after timestamp")?;
    let request = read_request(&mut cursor)?;
    expect(&mut cursor, b' ', "' ' after request")?;
    let status = read_status(&mut cursor)?;
    expect(&mut cursor, b' ', "' ' before response size")?;
    let body_bytes = read_body_bytes(&mut cursor)?;
    let referrer = read_optional_quoted(&mut cursor);
    let user_agent = referrer.and_then(|_| read_optional_quoted(&mut cursor));
    Ok(AccessLine {
        virtual_host: prefix.virtual_host,
        virtual_host_port: prefix.virtual_host_port,
        client: prefix.client,
        user: Some(prefix.user),
        timestamp,
        request,
        status,
        body_bytes,
        referrer,
        user_agent,
        tls: None,
    })
}

/// `[time] client protocol cipher "request" bytes`, Apache's default `ssl_request_log`.
fn parse_ssl_request<'a>(cursor: &mut Cursor<'a>) -> Result<AccessLine<'a>, ParseError> {
    let timestamp = read_timestamp(cursor)?;
    expect(cursor, b' ', "' ' after timestamp")?;
    let client = read_word(cursor, "client address")?;
    let protocol = read_word(cursor, "tls protocol")?;
    let cipher = read_word(cursor, "tls cipher")?;
    let request = read_request(cursor)?;
    expect(cursor, b' ', "' ' after request")?;
    let body_bytes = read_body_bytes(cursor)?;
    Ok(AccessLine {
        virtual_host: None,
        virtual_host_port: None,
        client,
        user: None,
        timestamp,
        request,
        status: None,
        body_bytes,
        referrer: None,
        user_agent: None,
        tls: Some(Tls { protocol, cipher }),
    })
}

/// What comes before the timestamp.
struct Prefix<'a> {
    virtual_host: Option<&'a str>,
    virtual_host_port: Option<u16>,
    client: &'a str,
    user: &'a str,
}

/// Reads `[vhost] client ident user ` up to the `[` of the timestamp.
fn read_prefix<'a>(cursor: &mut Cursor<'a>) -> Result<Prefix<'a>, ParseError> {
    let mut fields = [""; 4];
    let mut count = 0;
    while cursor.peek() != Some(b'[') {
        if count == fields.len() || cursor.is_at_end() {
            return Err(ParseError::Expected {
                what: "'[' before timestamp",
                at: cursor.pos(),
            });
        }
        fields[count] = cursor.until(b' ');
        count += 1;
        cursor.eat(b' ');
    }
    match count {
        3 => Ok(Prefix {
            virtual_host: None,
            virtual_host_port: None,
            client: fields[0],
            user: fields[2],
        }),
        4 => {
            let (host, port) = split_virtual_host(fields[0]);
            Ok(Prefix {
                virtual_host: Some(host),
                virtual_host_port: port,
                client: fields[1],
                user: fields[3],
            })
        }
        found => Err(ParseError::FieldCount {
            found,
            at: cursor.pos(),
        }),
    }
}

/// `host:port` or `host` (an IPv6 address without brackets is left whole).
fn split_virtual_host(field: &str) -> (&str, Option<u16>) {
    match field.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port_number(port) {
            Some(port) => (host, Some(port)),
            None => (field, None),
        },
        _ => (field, None),
    }
}

/// Reads `[26/Dec/2016:16:16:29 +0200]`.
fn read_timestamp(cursor: &mut Cursor<'_>) -> Result<Timestamp, ParseError> {
    expect(cursor, b'[', "'[' before timestamp")?;
    let at = cursor.pos();
    let bytes = cursor.take(26).ok_or(ParseError::Timestamp { at })?;
    let timestamp = parse_timestamp(bytes).ok_or(ParseError::Timestamp { at })?;
    expect(cursor, b']', "']' after timestamp")?;
    Ok(timestamp)
}

/// `26/Dec/2016:16:16:29 +0200`, exactly 26 bytes.
fn parse_timestamp(bytes: &[u8]) -> Option<Timestamp> {
    if bytes[2] != b'/' || bytes[6] != b'/' || bytes[11] != b':' || bytes[20] != b' ' {
        return None;
    }
    let day = time::two_digits(&bytes[0..2])?;
    let month = time::month(&bytes[3..6])?;
    let year = time::four_digits(&bytes[7..11])?;
    let clock = time::clock(&bytes[12..20])?;
    let offset = time::offset_seconds(&bytes[21..26])?;
    let datetime = time::civil(year, month, day, clock, 0)?;
    time::at_offset(datetime, offset)
}

fn read_request<'a>(cursor: &mut Cursor<'a>) -> Result<Request<'a>, ParseError> {
    let at = cursor.pos();
    let text = cursor.quoted().ok_or(ParseError::Expected {
        what: "quoted request",
        at,
    })?;
    Ok(split_request(text))
}

/// Splits `GET /path HTTP/1.1`. The target may hold spaces (Apache logs the request line
/// as received); the method is the first word and the version the last.
fn split_request(text: &str) -> Request<'_> {
    if text.is_empty() || text == "-" {
        return Request::default();
    }
    let Some((method, rest)) = text.split_once(' ') else {
        return Request {
            target: Some(text),
            ..Request::default()
        };
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Request {
            target: Some(text),
            ..Request::default()
        };
    }
    let (target, version) = match rest.rsplit_once(' ') {
        Some((target, protocol)) => match protocol.strip_prefix("HTTP/") {
            Some(version) => (target, Some(version)),
            None => (rest, None),
        },
        None => (rest, None),
    };
    Request {
        method: Some(method),
        target: Some(target),
        version,
    }
}

fn read_status(cursor: &mut Cursor<'_>) -> Result<Option<u16>, ParseError> {
    let at = cursor.pos();
    match cursor.word() {
        Some("-") => Ok(None),
        Some(word) if word.len() == 3 => {
            let status = parse_digits(word.as_bytes()).ok_or(ParseError::Status { at })?;
            Ok(Some(status as u16))
        }
        _ => Err(ParseError::Status { at }),
    }
}

fn read_body_bytes(cursor: &mut Cursor<'_>) -> Result<Option<u64>, ParseError> {
    let at = cursor.pos();
    match cursor.word() {
        Some("-") => Ok(None),
        Some(word) => parse_digits(word.as_bytes())
            .map(Some)
            .ok_or(ParseError::BodyBytes { at }),
        None => Err(ParseError::BodyBytes { at }),
    }
}

/// Reads ` "text"` if it comes next, and nothing otherwise.
fn read_optional_quoted<'a>(cursor: &mut Cursor<'a>) -> Option<&'a str> {
    let start = cursor.clone();
    cursor.eat(b' ');
    let text = cursor.quoted();
    if text.is_none() {
        *cursor = start;
    }
    text
}

/// Reads a word and the space after it.
fn read_word<'a>(cursor: &mut Cursor<'a>, what: &'static str) -> Result<&'a str, ParseError> {
    let at = cursor.pos();
    let word = cursor.word().ok_or(ParseError::Expected { what, at })?;
    expect(cursor, b' ', "' ' after field")?;
    Ok(word)
}

fn expect(cursor: &mut Cursor<'_>, byte: u8, what: &'static str) -> Result<(), ParseError> {
    if cursor.eat(byte) {
        Ok(())
    } else {
        Err(ParseError::Expected {
            what,
            at: cursor.pos(),
        })
    }
}

/// Parses `line` and builds its document.
pub(crate) fn parse_line(line: &str) -> Parsed {
    match parse(line) {
        Ok(access) => Parsed {
            doc: to_document(&access),
            timestamp: Some(access.timestamp),
            error: None,
        },
        Err(error) => failed(Format::ApacheAccess, line, error),
    }
}

/// Builds the ECS document of a parsed line.
pub fn to_document(access: &AccessLine<'_>) -> Map<String, Value> {
    let mut doc = base_doc(Format::ApacheAccess);
    insert_path(
        &mut doc,
        "@timestamp",
        time::format_utc(access.timestamp).into(),
    );
    insert_path(&mut doc, "event.kind", "event".into());
    insert_path(&mut doc, "event.category", "web".into());
    if let Some(host) = access.virtual_host {
        insert_path(&mut doc, "destination.domain", host.into());
    }
    if let Some(port) = access.virtual_host_port {
        insert_path(&mut doc, "destination.port", port.into());
    }
    insert_source(&mut doc, access.client, None);
    if let Some(user) = access.user {
        insert_path(&mut doc, "user.name", user.into());
    }
    insert_request(&mut doc, &access.request);
    insert_response(&mut doc, access);
    if let Some(tls) = access.tls {
        insert_tls(&mut doc, tls);
    }
    doc
}

fn insert_request(doc: &mut Map<String, Value>, request: &Request<'_>) {
    if let Some(method) = request.method {
        insert_path(doc, "http.request.method", method.into());
    }
    if let Some(version) = request.version {
        insert_path(doc, "http.version", version.into());
    }
    if let Some(target) = request.target {
        insert_path(doc, "url.original", target.into());
        if let Some(parts) = UrlParts::split(target) {
            parts.insert_into(doc);
        }
    }
}

fn insert_response(doc: &mut Map<String, Value>, access: &AccessLine<'_>) {
    if let Some(status) = access.status {
        insert_path(doc, "http.response.status_code", status.into());
        let outcome = if status < 400 { "success" } else { "failure" };
        insert_path(doc, "event.outcome", outcome.into());
    }
    if let Some(bytes) = access.body_bytes {
        insert_path(doc, "http.response.body.bytes", bytes.into());
    }
    if let Some(referrer) = access.referrer {
        insert_path(doc, "http.request.referrer", referrer.into());
    }
    if let Some(user_agent) = access.user_agent {
        insert_path(doc, "user_agent.original", user_agent.into());
    }
}

/// `TLSv1.2` becomes `tls.version_protocol: tls` and `tls.version: 1.2`; a version with
/// no minor number (`SSLv3`) gets `.0`.
fn insert_tls(doc: &mut Map<String, Value>, tls: Tls<'_>) {
    insert_path(doc, "apache.access.ssl.protocol", tls.protocol.into());
    insert_path(doc, "apache.access.ssl.cipher", tls.cipher.into());
    insert_path(doc, "tls.cipher", tls.cipher.into());
    let Some((protocol, version)) = tls.protocol.split_once('v') else {
        return;
    };
    let version = if version.contains('.') {
        version.to_owned()
    } else {
        format!("{version}.0")
    };
    insert_path(doc, "tls.version", version.into());
    insert_path(
        doc,
        "tls.version_protocol",
        protocol.to_ascii_lowercase().into(),
    );
}
