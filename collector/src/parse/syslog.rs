//! Syslog lines as syslog daemons write them to files, or as they travel.
//!
//! ```text
//! RFC 3164  [<PRI>]Mmm dd hh:mm:ss host tag[pid]: message
//!           [<PRI>]2023-06-01T10:00:00.123456+02:00 host tag[pid]: message   (rsyslog)
//! RFC 5424  <PRI>1 2023-06-01T10:00:00.123Z host app procid msgid [sd] message
//! ```
//!
//! A BSD time (`Mmm dd hh:mm:ss`) has no year and no zone: it is read in the local zone,
//! in the current year unless that puts it more than a day in the future, in which case
//! in the year before (a December line read in January). The tag is optional: a line whose
//! third word does not end with `:` has no program name, and the message starts there.
//! In RFC 5424 lines, `-` stands for an absent field, and structured data goes to
//! `log.syslog.structured_data.<id>.<param>`.

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde_json::{Map, Value};
use std::fmt;

use super::scan::{Cursor, parse_digits};
use super::{Format, ParseContext, Parsed, base_doc, failed, insert_local_time, insert_path, time};

/// A syslog line, borrowed from the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogLine<'a> {
    /// `<PRI>`: facility times 8 plus severity.
    pub priority: Option<u8>,
    /// The RFC 5424 version; `None` for RFC 3164 lines.
    pub version: Option<u8>,
    pub time: Option<SyslogTime>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    /// RFC 5424 structured data as written: `[id param="value"]...`.
    pub structured_data: Option<&'a str>,
    pub message: &'a str,
}

/// A syslog time, as far as the line tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTime {
    /// An RFC 3339 time with an offset.
    Instant(Timestamp),
    /// An RFC 3339 time without an offset, in the local zone.
    Civil(DateTime),
    /// A BSD time: month, day and time of day, no year, in the local zone.
    WithoutYear {
        month: i8,
        day: i8,
        clock: (i8, i8, i8),
    },
}

/// Why a syslog line did not parse; `at` is the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A required piece was absent; `what` names it.
    Expected { what: &'static str, at: usize },
    /// `<PRI>` is not a number from 0 to 191.
    Priority { at: usize },
    /// The time is neither `Mmm dd hh:mm:ss` nor RFC 3339, or names no real date.
    Timestamp { at: usize },
    /// The time does not exist in the local zone's range of representable instants.
    OutOfRange,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Expected { what, at } => write!(f, "expected {what} at byte {at}"),
            ParseError::Priority { at } => {
                write!(f, "invalid priority at byte {at}, expected <0> to <191>")
            }
            ParseError::Timestamp { at } => write!(
                f,
                "invalid timestamp at byte {at}, expected Mmm dd hh:mm:ss or RFC 3339"
            ),
            ParseError::OutOfRange => f.write_str("timestamp out of range in the local zone"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads one syslog line.
pub fn parse(line: &str) -> Result<SyslogLine<'_>, ParseError> {
    let mut cursor = Cursor::new(line);
    let priority = read_priority(&mut cursor)?;
    let rest = cursor.rest().as_bytes();
    let is_5424 = matches!(
        rest,
        [b'1'..=b'9', b' ', ..] | [b'1'..=b'9', b'0'..=b'9', b' ', ..]
    );
    if priority.is_some() && is_5424 {
        return parse_5424(&mut cursor, priority);
    }
    parse_3164(&mut cursor, priority)
}

fn read_priority(cursor: &mut Cursor<'_>) -> Result<Option<u8>, ParseError> {
    if !cursor.eat(b'<') {
        return Ok(None);
    }
    let at = cursor.pos();
    let digits = cursor.until(b'>');
    let priority = parse_digits(digits.as_bytes()).filter(|&priority| priority <= 191);
    let priority = priority.ok_or(ParseError::Priority { at })?;
    expect(cursor, b'>', "'>' after priority")?;
    Ok(Some(priority as u8))
}

fn parse_3164<'a>(
    cursor: &mut Cursor<'a>,
    priority: Option<u8>,
) -> Result<SyslogLine<'a>, ParseError> {
    let time = read_3164_time(cursor)?;
    expect(cursor, b' ', "' ' after timestamp")?;
    cursor.skip_spaces();
    let at = cursor.pos();
    let hostname = cursor.word().ok_or(ParseError::Expected {
        what: "hostname",
        at,
    })?;
    cursor.skip_spaces();
    let (app_name, proc_id) = read_tag(cursor);
    Ok(SyslogLine {
        priority,
        version: None,
        time: Some(time),
        hostname: Some(hostname),
        app_name,
        proc_id,
        msg_id: None,
        structured_data: None,
        message: cursor.rest(),
    })
}

/// Reads `Mmm dd hh:mm:ss` (day padded with a space or a zero) or an RFC 3339 time.
fn read_3164_time(cursor: &mut Cursor<'_>) -> Result<SyslogTime, ParseError> {
    let at = cursor.pos();
    let rest = cursor.rest().as_bytes();
    if rest.first().is_some_and(u8::is_ascii_digit) {
        let word = cursor.word().ok_or(ParseError::Timestamp { at })?;
        return parse_rfc3339(word).ok_or(ParseError::Timestamp { at });
    }
    let bytes = cursor.take(15).ok_or(ParseError::Timestamp { at })?;
    parse_bsd_time(bytes).ok_or(ParseError::Timestamp { at })
}

/// `Dec  4 04:47:44`, exactly 15 bytes.
fn parse_bsd_time(bytes: &[u8]) -> Option<SyslogTime> {
    if bytes[3] != b' ' || bytes[6] != b' ' {
        return None;
    }
    let month = time::month(&bytes[..3])?;
    let day = match &bytes[4..6] {
        [b' ', ones] => time::two_digits(&[b'0', *ones])?,
        tens_and_ones => time::two_digits(tens_and_ones)?,
    };
    let clock = time::clock(&bytes[7..15])?;
    (1..=31)
        .contains(&day)
        .then_some(SyslogTime::WithoutYear { month, day, clock })
}

fn parse_rfc3339(text: &str) -> Option<SyslogTime> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Some(SyslogTime::Instant(timestamp));
    }
    text.parse::<DateTime>().ok().map(SyslogTime::Civil)
}

/// Reads `tag[pid]: ` or `tag: `. Without the colon there is no tag, and the cursor
/// stays where it was.
fn read_tag<'a>(cursor: &mut Cursor<'a>) -> (Option<&'a str>, Option<&'a str>) {
    let start = cursor.clone();
    let Some(tag) = cursor.word().and_then(|word| word.strip_suffix(':')) else {
        *cursor = start;
        return (None, None);
    };
    cursor.eat(b' ');
    match tag.strip_suffix(']').and_then(|tag| tag.rsplit_once('[')) {
        Some((name, pid)) => (Some(name), Some(pid)),
        None => (Some(tag), None),
    }
}

fn parse_5424<'a>(
    cursor: &mut Cursor<'a>,
    priority: Option<u8>,
) -> Result<SyslogLine<'a>, ParseError> {
    let at = cursor.pos();
    let version = cursor.until(b' ');
    let version = parse_digits(version.as_bytes()).ok_or(ParseError::Expected {
        what: "version",
        at,
    })?;
    expect(cursor, b' ', "' ' after version")?;
    let at = cursor.pos();
    let time = match read_field(cursor, "timestamp")? {
        Some(text) => Some(parse_rfc3339(text).ok_or(ParseError::Timestamp { at })?),
        None => None,
    };
    let hostname = read_field(cursor, "hostname")?;
    let app_name = read_field(cursor, "app-name")?;
    let proc_id = read_field(cursor, "procid")?;
    let msg_id = read_field(cursor, "msgid")?;
    let structured_data = read_structured_data(cursor)?;
    cursor.eat(b' ');
    let message = cursor.rest();
    Ok(SyslogLine {
        priority,
        version: Some(version as u8),
        time,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        message: message.strip_prefix('\u{feff}').unwrap_or(message),
    })
}

/// Reads a space-terminated header field; `-` is an absent one.
fn read_field<'a>(
    cursor: &mut Cursor<'a>,
    what: &'static str,
) -> Result<Option<&'a str>, ParseError> {
    let at = cursor.pos();
    let word = cursor.word().ok_or(ParseError::Expected { what, at })?;
    expect(cursor, b' ', "' ' after header field")?;
    Ok((word != "-").then_some(word))
}

/// Reads `-` or one or more `[id param="value" ...]` elements. Inside quoted values,
/// `\"`, `\\` and `\]` are escapes.
fn read_structured_data<'a>(cursor: &mut Cursor<'a>) -> Result<Option<&'a str>, ParseError> {
    if cursor.eat(b'-') {
        return Ok(None);
    }
    let start = cursor.pos();
    let rest = cursor.rest().as_bytes();
    if rest.first() != Some(&b'[') {
        return Err(ParseError::Expected {
            what: "'-' or '[' for structured data",
            at: start,
        });
    }
    let mut index = 0;
    while rest.get(index) == Some(&b'[') {
        index = element_end(rest, index).ok_or(ParseError::Expected {
            what: "']' closing structured data",
            at: start,
        })?;
    }
    let text = &cursor.rest()[..index];
    cursor.take(index);
    Ok(Some(text))
}

/// The index just past the `]` that closes the element opening at `open`.
fn element_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut index = open + 1;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'\\' if in_quotes => index += 1,
            b'"' => in_quotes = !in_quotes,
            b']' if !in_quotes => return Some(index + 1),
            _ => {}
        }
        index += 1;
    }
    None
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

/// Parses `line` and builds its document; `now` decides the year of BSD times. The
/// collector passes the time the agent read the line.
pub fn parse_line(line: &str, ctx: &ParseContext, now: Timestamp) -> Parsed {
    match parse(line).and_then(|syslog| to_parsed(&syslog, ctx, now)) {
        Ok(parsed) => parsed,
        Err(error) => failed(Format::Syslog, line, error),
    }
}

fn to_parsed(
    syslog: &SyslogLine<'_>,
    ctx: &ParseContext,
    now: Timestamp,
) -> Result<Parsed, ParseError> {
    let mut doc = to_document(syslog);
    let civil = match syslog.time {
        None => None,
        Some(SyslogTime::Instant(timestamp)) => {
            insert_path(&mut doc, "@timestamp", time::format_utc(timestamp).into());
            return Ok(Parsed {
                doc,
                timestamp: Some(timestamp),
                error: None,
            });
        }
        Some(SyslogTime::Civil(datetime)) => Some(datetime),
        Some(SyslogTime::WithoutYear { month, day, clock }) => {
            let datetime = time::infer_year(month, day, clock, &ctx.local_zone, now);
            Some(datetime.ok_or(ParseError::OutOfRange)?)
        }
    };
    let zone = &ctx.local_zone;
    let timestamp = civil
        .map(|datetime| insert_local_time(&mut doc, datetime, zone).ok_or(ParseError::OutOfRange))
        .transpose()?;
    Ok(Parsed {
        doc,
        timestamp,
        error: None,
    })
}

/// Builds the ECS document of a parsed line, without the time fields, which depend on
/// the local zone and the current time.
pub fn to_document(syslog: &SyslogLine<'_>) -> Map<String, Value> {
    let mut doc = base_doc(Format::Syslog);
    insert_path(&mut doc, "event.kind", "event".into());
    if let Some(priority) = syslog.priority {
        insert_priority(&mut doc, priority);
    }
    if let Some(version) = syslog.version {
        insert_path(&mut doc, "log.syslog.version", version.to_string().into());
    }
    if let Some(hostname) = syslog.hostname {
        insert_path(&mut doc, "host.hostname", hostname.into());
    }
    if let Some(app_name) = syslog.app_name {
        insert_path(&mut doc, "process.name", app_name.into());
    }
    if let Some(proc_id) = syslog.proc_id {
        match parse_digits(proc_id.as_bytes()) {
            Some(pid) => insert_path(&mut doc, "process.pid", pid.into()),
            None => insert_path(&mut doc, "log.syslog.procid", proc_id.into()),
        }
    }
    if let Some(msg_id) = syslog.msg_id {
        insert_path(&mut doc, "log.syslog.msgid", msg_id.into());
    }
    if let Some(structured_data) = syslog.structured_data {
        let elements = structured_data_object(structured_data);
        insert_path(
            &mut doc,
            "log.syslog.structured_data",
            Value::Object(elements),
        );
    }
    insert_path(&mut doc, "message", syslog.message.into());
    doc
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

/// `log.syslog.priority`, `.facility.*`, `.severity.*`, and `log.level` as the severity's
/// name.
fn insert_priority(doc: &mut Map<String, Value>, priority: u8) {
    let facility = usize::from(priority / 8);
    let severity = usize::from(priority % 8);
    insert_path(doc, "log.syslog.priority", priority.into());
    insert_path(doc, "log.syslog.facility.code", facility.into());
    insert_path(doc, "log.syslog.facility.name", FACILITIES[facility].into());
    insert_path(doc, "log.syslog.severity.code", severity.into());
    insert_path(doc, "log.syslog.severity.name", SEVERITIES[severity].into());
    insert_path(doc, "log.level", SEVERITIES[severity].into());
}

/// `[id a="1" b="2"][other c="3"]` as `{"id": {"a": "1", "b": "2"}, "other": {"c": "3"}}`.
/// Ids and names are used as keys as they are, dots included, so `exampleSDID@32473` or
/// `origin.x` stay one key.
fn structured_data_object(text: &str) -> Map<String, Value> {
    let mut elements = Map::new();
    let mut rest = text;
    while let Some(inner) = rest.strip_prefix('[') {
        let end = element_end(rest.as_bytes(), 0).unwrap_or(rest.len());
        let body = &inner[..end.saturating_sub(2)];
        let (id, params) = body.split_once(' ').unwrap_or((body, ""));
        elements.insert(id.to_owned(), Value::Object(parameters(params)));
        rest = &rest[end..];
    }
    elements
}

/// `a="1" b="x\"y"` as `{"a": "1", "b": "x\"y"}`. The escapes `\"`, `\\` and `\]` are
/// undone; any other backslash is kept, as RFC 5424 says.
fn parameters(mut text: &str) -> Map<String, Value> {
    let mut params = Map::new();
    while let Some((name, after)) = text.trim_start().split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices().peekable();
        let mut consumed = after.len();
        while let Some((index, character)) = chars.next() {
            match character {
                '\\' => match chars.next_if(|(_, next)| matches!(next, '"' | '\\' | ']')) {
                    Some((_, escaped)) => value.push(escaped),
                    None => value.push('\\'),
                },
                '"' => {
                    consumed = index + 1;
                    break;
                }
                _ => value.push(character),
            }
        }
        params.insert(name.to_owned(), value.into());
        text = &after[consumed..];
    }
    params
}
