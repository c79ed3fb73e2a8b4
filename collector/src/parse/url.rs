//! `url.*` fields from a request target, as Filebeat's `uri_parts` processor gives them:
//! path, query and fragment percent-decoded; the extension taken from the last path
//! segment; scheme, domain and port for absolute targets (`GET http://host/ HTTP/1.1`, as
//! proxies see them). Targets that are neither a path nor an absolute URL (`*`, garbage)
//! yield only `url.original`.

use serde_json::{Map, Value};
use std::borrow::Cow;

use super::insert_path;

/// The pieces of a request target, borrowed from it and not yet decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    pub(crate) scheme: Option<&'a str>,
    pub(crate) domain: Option<&'a str>,
    pub(crate) port: Option<u16>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) fragment: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    pub(crate) fn split(target: &'a str) -> Option<UrlParts<'a>> {
        let (before_fragment, fragment) = match target.split_once('#') {
            Some((before, fragment)) => (before, Some(fragment)),
            None => (target, None),
        };
        let (before_query, query) = match before_fragment.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (before_fragment, None),
        };
        let mut parts = UrlParts {
            query,
            fragment,
            ..UrlParts::default()
        };
        if before_query.starts_with('/') {
            parts.path = before_query;
            return Some(parts);
        }
        let (scheme, rest) = before_query.split_once("://")?;
        if scheme.is_empty() || !scheme.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return None;
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let (domain, port) = split_host_port(host);
        parts.scheme = Some(scheme);
        parts.domain = (!domain.is_empty()).then_some(domain);
        parts.port = port;
        parts.path = path;
        Some(parts)
    }

    /// The extension of the last path segment: `ico` for `/favicon.ico`.
    pub(crate) fn extension(&self) -> Option<&'a str> {
        let segment = self.path.rsplit('/').next()?;
        let (_, extension) = segment.rsplit_once('.')?;
        (!extension.is_empty()).then_some(extension)
    }

    pub(crate) fn insert_into(&self, doc: &mut Map<String, Value>) {
        if let Some(scheme) = self.scheme {
            insert_path(doc, "url.scheme", scheme.into());
        }
        if let Some(domain) = self.domain {
            insert_path(doc, "url.domain", domain.into());
        }
        if let Some(port) = self.port {
            insert_path(doc, "url.port", port.into());
        }
        if !self.path.is_empty() {
            insert_path(
                doc,
                "url.path",
                percent_decode(self.path).into_owned().into(),
            );
        }
        if let Some(extension) = self.extension() {
            insert_path(doc, "url.extension", extension.into());
        }
        if let Some(query) = self.query {
            insert_path(doc, "url.query", percent_decode(query).into_owned().into());
        }
        if let Some(fragment) = self.fragment {
            insert_path(
                doc,
                "url.fragment",
                percent_decode(fragment).into_owned().into(),
            );
        }
    }
}

/// Splits `host:port`, `[v6]:port` or a bare host. A colon not followed by a valid port
/// number is left in the host.
pub(crate) fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = host.strip_prefix('[') {
        return match bracketed.split_once(']') {
            Some((address, rest)) => (address, rest.strip_prefix(':').and_then(port_number)),
            None => (host, None),
        };
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => match port_number(port) {
            Some(port) => (name, Some(port)),
            None => (host, None),
        },
        _ => (host, None),
    }
}

pub(crate) fn port_number(text: &str) -> Option<u16> {
    let value = super::scan::parse_digits(text.as_bytes())?;
    u16::try_from(value).ok()
}

/// Decodes `%XX` escapes. Text with a malformed escape, or whose decoded bytes are not
/// UTF-8, is returned as written. `+` is not a space here: that rule belongs to HTML
/// forms, not to URLs.
pub(crate) fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'%' {
            decoded.push(bytes[index]);
            index += 1;
            continue;
        }
        let high = bytes.get(index + 1).and_then(|&byte| hex_value(byte));
        let low = bytes.get(index + 2).and_then(|&byte| hex_value(byte));
        let (Some(high), Some(low)) = (high, low) else {
            return Cow::Borrowed(text);
        };
        decoded.push(high << 4 | low);
        index += 3;
    }
    String::from_utf8(decoded).map_or(Cow::Borrowed(text), Cow::Owned)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
