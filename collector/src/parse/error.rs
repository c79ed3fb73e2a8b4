//! Apache error logs.
//!
//! ```text
//! 2.2  [Mon Dec 26 16:22:08 2016] [error] [client 1.2.3.4] message
//! 2.4  [Wed Oct 20 19:20:59.121211 2021] [module:level] [pid 1:tid 2] [client 1.2.3.4:5] message
//! ```
//!
//! The `[pid]` and `[client]` blocks are optional, the module may be empty (`[:error]`),
//! the level may be a sublevel (`trace3`), and the seconds may have a fraction. The time
//! carries no zone: it is read in the zone the caller gives.
//!
//! Some modules write their source position before the client (`mod_rewrite.c(470):
//! [client 10.0.0.8:38350] ...`). The client is read from there too, but the message is
//! then kept whole, source position included, as Filebeat keeps it.

use jiff::civil::DateTime;
use serde_json::{Map, Value};
use std::fmt;

use super::scan::{Cursor, parse_digits};
use super::url::port_number;
use super::{
    Format, ParseContext, Parsed, base_doc, failed, insert_local_time, insert_path, insert_source,
    time,
};

/// An error log line, borrowed from the text it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLine<'a> {
    /// The time as written, without a zone.
    pub time: DateTime,
    /// The module of a 2.4 `[module:level]` block, when not empty.
    pub module: Option<&'a str>,
    pub level: &'a str,
    pub pid: Option<u64>,
    pub thread_id: Option<u64>,
    pub client: Option<&'a str>,
    pub client_port: Option<u16>,
    pub message: &'a str,
}

/// Why an error line did not parse; `at` is the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A required piece was absent; `what` names it.
    Expected { what: &'static str, at: usize },
    /// The time is not `Www Mmm dd hh:mm:ss[.ffffff] yyyy`, or names no real date.
    Timestamp { at: usize },
    /// The `[pid N:tid N]` block holds something other than numbers.
    ProcessId { at: usize },
    /// The time does not exist in the local zone's range of representable instants.
    OutOfRange,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Expected { what, at } => write!(f, "expected {what} at byte {at}"),
            ParseError::Timestamp { at } => write!(
                f,
                "invalid timestamp at byte {at}, expected Www Mmm dd hh:mm:ss[.ffffff] yyyy"
            ),
            ParseError::ProcessId { at } => write!(f, "invalid pid or tid at byte {at}"),
            ParseError::OutOfRange => f.write_str("timestamp out of range in the local zone"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads one error line without allocating.
pub fn parse(line: &str) -> Result<ErrorLine<'_>, ParseError> {
    let mut cursor = Cursor::new(line);
    let time = read_time(&mut cursor)?;
    cursor.skip_spaces();
    let (module, level) = read_level(&mut cursor)?;
    cursor.skip_spaces();
    let (pid, thread_id) = read_process(&mut cursor)?;
    cursor.skip_spaces();
    let mut client = read_client(&mut cursor, pid.is_some())?;
    let message = cursor.rest();
    if client.is_none() {
        client = client_after_source_position(message, pid.is_some());
    }
    let (client, client_port) = client.unzip();
    Ok(ErrorLine {
        time,
        module,
        level,
        pid,
        thread_id,
        client,
        client_port: client_port.flatten(),
        message,
    })
}

fn read_time(cursor: &mut Cursor<'_>) -> Result<DateTime, ParseError> {
    expect(cursor, b'[', "'[' before timestamp")?;
    let at = cursor.pos();
    let text = cursor.until(b']');
    let time = parse_time(text.as_bytes()).ok_or(ParseError::Timestamp { at })?;
    expect(cursor, b']', "']' after timestamp")?;
    Ok(time)
}

/// `Wed Oct 20 19:20:59.121211 2021`; the day may be padded with a space or not at all.
fn parse_time(text: &[u8]) -> Option<DateTime> {
    let (weekday, rest) = text.split_at_checked(4)?;
    if !weekday[..3].iter().all(u8::is_ascii_alphabetic) || weekday[3] != b' ' {
        return None;
    }
    let month = time::month(rest.get(..3)?)?;
    let rest = rest.get(3..)?.trim_ascii_start();
    let day_len = rest.iter().position(|&byte| byte == b' ')?;
    let day = parse_digits(&rest[..day_len]).filter(|&day| day <= 31)? as i8;
    let rest = &rest[day_len + 1..];
    let clock = time::clock(rest.get(..8)?)?;
    let rest = &rest[8..];
    let (nanosecond, rest) = match rest.split_first() {
        Some((b'.', fraction)) => {
            let digits = fraction.iter().position(|&byte| byte == b' ')?;
            (
                time::fraction_nanos(&fraction[..digits])?,
                &fraction[digits..],
            )
        }
        _ => (0, rest),
    };
    let year = match rest {
        [b' ', year @ ..] if year.len() == 4 => time::four_digits(year)?,
        _ => return None,
    };
    time::civil(year, month, day, clock, nanosecond)
}

/// Reads `[level]` or `[module:level]`.
fn read_level<'a>(cursor: &mut Cursor<'a>) -> Result<(Option<&'a str>, &'a str), ParseError> {
    expect(cursor, b'[', "'[' before level")?;
    let text = cursor.until(b']');
    expect(cursor, b']', "']' after level")?;
    Ok(match text.rsplit_once(':') {
        Some((module, level)) => ((!module.is_empty()).then_some(module), level),
        None => (None, text),
    })
}

/// Reads `[pid N]` or `[pid N:tid N]` if it comes next.
fn read_process(cursor: &mut Cursor<'_>) -> Result<(Option<u64>, Option<u64>), ParseError> {
    if !cursor.eat_str("[pid ") {
        return Ok((None, None));
    }
    let at = cursor.pos();
    let text = cursor.until(b']');
    expect(cursor, b']', "']' after pid")?;
    let (pid, thread) = match text.split_once(":tid ") {
        Some((pid, thread)) => (pid, Some(thread)),
        None => (text, None),
    };
    let pid = parse_digits(pid.as_bytes()).ok_or(ParseError::ProcessId { at })?;
    let thread = match thread {
        Some(thread) => Some(parse_digits(thread.as_bytes()).ok_or(ParseError::ProcessId { at })?),
        None => None,
    };
    Ok((Some(pid), thread))
}

type Client<'a> = (&'a str, Option<u16>);

/// Reads `[client addr]` and the spaces after it, if it comes next.
fn read_client<'a>(
    cursor: &mut Cursor<'a>,
    with_port: bool,
) -> Result<Option<Client<'a>>, ParseError> {
    if !cursor.eat_str("[client ") {
        return Ok(None);
    }
    let address = cursor.until(b']');
    expect(cursor, b']', "']' after client")?;
    cursor.skip_spaces();
    Ok(Some(split_client(address, with_port)))
}

/// Finds the client in `file.c(470): [client addr] ...`.
fn client_after_source_position(message: &str, with_port: bool) -> Option<Client<'_>> {
    let (position, rest) = message.split_once(' ')?;
    if !position.ends_with("):") {
        return None;
    }
    let address = rest.strip_prefix("[client ")?.split_once(']')?.0;
    Some(split_client(address, with_port))
}

/// Apache 2.4 writes `addr:port`, IPv6 addresses unbracketed (`::1:53716`), so the port
/// is after the last colon. Apache 2.2 writes the address alone.
fn split_client(address: &str, with_port: bool) -> Client<'_> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return (address, None);
    };
    let single_colon = !host.contains(':');
    match port_number(port) {
        Some(port) if !host.is_empty() && (with_port || single_colon) => (host, Some(port)),
        _ => (address, None),
    }
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
pub(crate) fn parse_line(line: &str, ctx: &ParseContext) -> Parsed {
    match parse(line).and_then(|error_line| to_parsed(&error_line, ctx)) {
        Ok(parsed) => parsed,
        Err(error) => failed(Format::ApacheError, line, error),
    }
}

fn to_parsed(error_line: &ErrorLine<'_>, ctx: &ParseContext) -> Result<Parsed, ParseError> {
    let mut doc = to_document(error_line);
    let timestamp = insert_local_time(&mut doc, error_line.time, &ctx.local_zone)
        .ok_or(ParseError::OutOfRange)?;
    Ok(Parsed {
        doc,
        timestamp: Some(timestamp),
        error: None,
    })
}

/// Builds the ECS document of a parsed line, without the time fields, which depend on
/// the local zone.
pub fn to_document(error_line: &ErrorLine<'_>) -> Map<String, Value> {
    let mut doc = base_doc(Format::ApacheError);
    insert_path(&mut doc, "event.kind", "event".into());
    insert_path(&mut doc, "event.category", "web".into());
    insert_path(&mut doc, "event.type", event_type(error_line.level).into());
    insert_path(&mut doc, "log.level", error_line.level.into());
    if let Some(module) = error_line.module {
        insert_path(&mut doc, "apache.error.module", module.into());
    }
    if let Some(pid) = error_line.pid {
        insert_path(&mut doc, "process.pid", pid.into());
    }
    if let Some(thread_id) = error_line.thread_id {
        insert_path(&mut doc, "process.thread.id", thread_id.into());
    }
    if let Some(client) = error_line.client {
        insert_source(&mut doc, client, error_line.client_port);
    }
    insert_path(&mut doc, "message", error_line.message.into());
    doc
}

/// `error` for the levels that report a fault, `info` for the others (notice, info,
/// debug, traceN), as Filebeat classifies them.
fn event_type(level: &str) -> &'static str {
    match level {
        "emerg" | "alert" | "crit" | "error" | "warn" => "error",
        _ => "info",
    }
}
