//! Date pieces read by hand, and `@timestamp` written by hand.
//!
//! The layouts parsed here are fixed (`26/Dec/2016:16:16:29 +0200`, `Dec 26 16:22:08`), so
//! reading them byte by byte is both simpler and much faster than a general format parser.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use std::fmt::Write;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The month number (1 to 12) of an English three-letter abbreviation such as `Dec`.
pub(crate) fn month(abbreviation: &[u8]) -> Option<i8> {
    let position = MONTHS
        .iter()
        .position(|month| month.as_slice() == abbreviation)?;
    i8::try_from(position + 1).ok()
}

/// Two ASCII digits as a number.
pub(crate) fn two_digits(bytes: &[u8]) -> Option<i8> {
    match bytes {
        [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => Some(((tens - b'0') * 10 + ones - b'0') as i8),
        _ => None,
    }
}

/// Four ASCII digits as a number.
pub(crate) fn four_digits(bytes: &[u8]) -> Option<i16> {
    let high = two_digits(bytes.get(..2)?)?;
    let low = two_digits(bytes.get(2..4)?)?;
    Some(i16::from(high) * 100 + i16::from(low))
}

/// A time of day written `hh:mm:ss`.
pub(crate) fn clock(bytes: &[u8]) -> Option<(i8, i8, i8)> {
    match bytes {
        [h1, h2, b':', m1, m2, b':', s1, s2] => Some((
            two_digits(&[*h1, *h2])?,
            two_digits(&[*m1, *m2])?,
            two_digits(&[*s1, *s2])?,
        )),
        _ => None,
    }
}

/// A UTC offset written `+hhmm` or `-hhmm`, in seconds.
pub(crate) fn offset_seconds(bytes: &[u8]) -> Option<i32> {
    let (sign, digits) = bytes.split_first()?;
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = i32::from(two_digits(digits.get(..2)?)?);
    let minutes = i32::from(two_digits(digits.get(2..4)?)?);
    (digits.len() == 4 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

/// A validated civil date and time.
pub(crate) fn civil(
    year: i16,
    month: i8,
    day: i8,
    (hour, minute, second): (i8, i8, i8),
    nanosecond: i32,
) -> Option<DateTime> {
    let date = Date::new(year, month, day).ok()?;
    let time = jiff::civil::Time::new(hour, minute, second, nanosecond).ok()?;
    Some(date.to_datetime(time))
}

/// The instant a civil time names at a fixed UTC offset.
pub(crate) fn at_offset(datetime: DateTime, offset_seconds: i32) -> Option<Timestamp> {
    let offset = Offset::from_seconds(offset_seconds).ok()?;
    offset.to_timestamp(datetime).ok()
}

/// The instant a civil time names in `zone`. A time that falls in a daylight-saving gap
/// or fold is resolved the usual way: later across a gap, earlier in a fold.
pub(crate) fn in_zone(datetime: DateTime, zone: &TimeZone) -> Option<Timestamp> {
    zone.to_ambiguous_timestamp(datetime).compatible().ok()
}

/// A fraction of a second written as 1 to 9 digits, in nanoseconds.
pub(crate) fn fraction_nanos(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let value = super::scan::parse_digits(digits)?;
    let scale = 10u64.pow(9 - digits.len() as u32);
    i32::try_from(value * scale).ok()
}

/// `@timestamp` in UTC: `2016-12-26T14:16:28.000Z`.
pub(crate) fn format_utc(timestamp: Timestamp) -> String {
    format_at(timestamp, Offset::UTC)
}

/// `@timestamp` at `offset`: `2021-10-20T19:20:59.121-02:00`, or with `Z` when the offset
/// is zero. Milliseconds are always written and finer digits cut, as Filebeat does.
pub(crate) fn format_at(timestamp: Timestamp, offset: Offset) -> String {
    let datetime = offset.to_datetime(timestamp);
    let mut text = String::with_capacity(29);
    let _ = write!(
        text,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        datetime.year(),
        datetime.month(),
        datetime.day(),
        datetime.hour(),
        datetime.minute(),
        datetime.second(),
        datetime.subsec_nanosecond() / 1_000_000,
    );
    if offset == Offset::UTC {
        text.push('Z');
    } else {
        text.push_str(&format_offset(offset));
    }
    text
}

/// An offset as `event.timezone` shows it: `+00:00`, `-02:00`.
pub(crate) fn format_offset(offset: Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The year to give a BSD syslog time, which has none: the current year in `zone`, unless
/// that puts the time more than a day after `now` (a December line read in January), in
/// which case the year before. A 29 February that the current year lacks is last leap
/// year's only if that is the year before; otherwise there is no answer.
pub(crate) fn infer_year(
    month: i8,
    day: i8,
    clock: (i8, i8, i8),
    zone: &TimeZone,
    now: Timestamp,
) -> Option<DateTime> {
    let this_year = now.to_zoned(zone.clone()).year();
    let tolerance = SignedDuration::from_hours(24);
    if let Some(datetime) = civil(this_year, month, day, clock, 0) {
        let instant = in_zone(datetime, zone)?;
        if instant.duration_since(now) <= tolerance {
            return Some(datetime);
        }
    }
    civil(this_year - 1, month, day, clock, 0)
}
