//! Generic masking of obvious variables inside one whitespace-separated token.
//!
//! The rules know nothing about any particular log source. A token is first split into
//! wrapping punctuation (`[`, `(`, quotes, trailing `,` `;` `:` `.` ...) and a core. The
//! core is replaced as a whole by [`WILDCARD`] when it is an obvious value: a number with
//! or without a unit (`12ms`, `3.5s`, `64MB`, `10%`), a date or time, an IPv4 or IPv6
//! address with optional port or prefix, `host:port`, a domain name, a UUID, a MAC
//! address, a hex value (`0x1f`, or eight or more hex digits), a path or a URL. In
//! `key=value` only the value is masked. Otherwise, runs of digits or of long hex that
//! stand alone between separators are masked and the rest of the token is kept
//! (`blk_-42` becomes `blk_<*>`, `core.2275` becomes `core.<*>`), while digits glued to
//! letters (`jk2_init`, `ssh2`, `x86`) are left alone because they are usually part of
//! a name.

/// The text that stands for a variable, in masked tokens and in templates.
pub const WILDCARD: &str = "<*>";

/// Characters stripped from the front of a token before its core is classified.
const OPENING: &[u8] = b"([{<\"'`";
/// Characters stripped from the end of a token before its core is classified.
const CLOSING: &[u8] = b")]}>\"'`,;:.!?";
/// Longest alphabetic suffix accepted as a unit after a number (`ms`, `KB`, `GiB`).
const MAX_UNIT_LEN: usize = 3;
/// Shortest run of hex digits that is masked without a `0x` prefix.
const MIN_BARE_HEX_LEN: usize = 8;
/// Longest top-level domain accepted at the end of a domain name.
const MAX_TLD_LEN: usize = 6;

/// Appends the masked form of `token` to `out`.
pub(crate) fn mask_token(token: &str, out: &mut String) {
    let (start, end) = core_bounds(token);
    let core = &token[start..end];
    out.push_str(&token[..start]);
    if is_value(core) {
        out.push_str(WILDCARD);
    } else if let Some(eq) = key_value_split(core) {
        out.push_str(&core[..=eq]);
        mask_value(&core[eq + 1..], out);
    } else {
        mask_embedded_runs(core, out);
    }
    out.push_str(&token[end..]);
}

/// Byte range of a token's core, between its opening and closing punctuation.
fn core_bounds(token: &str) -> (usize, usize) {
    let bytes = token.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !OPENING.contains(b))
        .unwrap_or(bytes.len());
    let end = bytes[start..]
        .iter()
        .rposition(|b| !CLOSING.contains(b))
        .map_or(start, |p| start + p + 1);
    (start, end)
}

/// Masks the value of a `key=value` pair whole, keeping its wrapping punctuation: an
/// empty value stays empty, since `ruser=` and `ruser=alice` are different shapes.
fn mask_value(value: &str, out: &mut String) {
    let (start, end) = core_bounds(value);
    out.push_str(&value[..start]);
    if end > start {
        out.push_str(WILDCARD);
    }
    out.push_str(&value[end..]);
}

/// Whether the whole core is an obvious variable.
pub(crate) fn is_value(core: &str) -> bool {
    let b = core.as_bytes();
    is_numeric(b)
        || is_number_with_unit(b)
        || is_hex(b)
        || is_path(b)
        || is_url(b)
        || is_host_port(b)
        || is_domain_name(b)
}

/// A fully qualified domain name: three or more labels of letters, digits and hyphens,
/// the last one a short lowercase top-level domain (`ns.example.com`). Dotted names that
/// end in a capitalised word (`org.apache.Foo`) are class names and are kept.
fn is_domain_name(b: &[u8]) -> bool {
    let labels = b.split(|&c| c == b'.');
    let mut count = 0;
    let mut last: &[u8] = &[];
    for label in labels {
        let label_ok = !label.is_empty()
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !label_ok {
            return false;
        }
        count += 1;
        last = label;
    }
    count >= 3 && (2..=MAX_TLD_LEN).contains(&last.len()) && last.iter().all(u8::is_ascii_lowercase)
}

/// Month and weekday names, masked when they sit beside another part of a date.
const DATE_WORDS: [&str; 19] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
    "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
];

/// Whether a masked token is a month or weekday name (`Jun`, `Sun`, `June`, `Sunday`).
pub(crate) fn is_date_word(token: &str) -> bool {
    let prefix = token.get(..3).unwrap_or(token);
    token.len() >= 3
        && (DATE_WORDS.contains(&prefix) || prefix == "Sun")
        && token.bytes().all(|c| c.is_ascii_alphabetic())
        && (token.len() == 3 || is_full_date_word(token))
}

fn is_full_date_word(token: &str) -> bool {
    const FULL: [&str; 19] = [
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Sept",
    ];
    FULL.contains(&token)
}

/// Digits and the separators of numbers, dates, times, versions and IPv4 addresses.
fn is_numeric(b: &[u8]) -> bool {
    let body = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    body.first().is_some_and(u8::is_ascii_digit)
        && body
            .iter()
            .all(|&c| c.is_ascii_digit() || b".:,-_/+#".contains(&c))
}

/// A number followed by a short unit: `12ms`, `3.5s`, `64MB`, `10%`, `2nd`.
fn is_number_with_unit(b: &[u8]) -> bool {
    let split = b
        .iter()
        .rposition(|c| c.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let (number, unit) = b.split_at(split);
    let unit_ok = unit == b"%"
        || (!unit.is_empty()
            && unit.len() <= MAX_UNIT_LEN
            && unit.iter().all(u8::is_ascii_alphabetic));
    unit_ok && is_numeric(number)
}

/// `0x` hex, long bare hex (hashes, ids), UUIDs, MAC and IPv6 addresses.
fn is_hex(b: &[u8]) -> bool {
    if let Some(rest) = b.strip_prefix(b"0x").or_else(|| b.strip_prefix(b"0X")) {
        return !rest.is_empty() && rest.iter().all(u8::is_ascii_hexdigit);
    }
    let all_hexish = b
        .iter()
        .all(|&c| c.is_ascii_hexdigit() || b":.-".contains(&c));
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let colons = b.iter().filter(|&&c| c == b':').count();
    let hex_len = b.iter().filter(|c| c.is_ascii_hexdigit()).count();
    all_hexish
        && digits > 0
        && (hex_len >= MIN_BARE_HEX_LEN || colons >= 2)
        && b.first()
            .is_some_and(|c| c.is_ascii_hexdigit() || *c == b':')
}

/// Absolute, home-relative and dotted-relative paths, and Windows drive paths.
fn is_path(b: &[u8]) -> bool {
    let unix = b.len() > 1 && b[0] == b'/' && b[1] != b'/';
    let relative = b.starts_with(b"./") || b.starts_with(b"../") || b.starts_with(b"~/");
    let windows = b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\';
    let deep = b.iter().filter(|&&c| c == b'/').count() >= 2 && !b.contains(&b' ');
    unix || relative || windows || (deep && b.iter().any(u8::is_ascii_alphanumeric))
}

/// Anything with a scheme: `http://..`, `hdfs://..`.
fn is_url(b: &[u8]) -> bool {
    memchr::memmem::find(b, b"://").is_some_and(|p| p > 0)
}

/// `host:port` where the port is all digits and the host looks like a name or address.
fn is_host_port(b: &[u8]) -> bool {
    let Some(colon) = memchr::memrchr(b':', b) else {
        return false;
    };
    let (host, port) = (&b[..colon], &b[colon + 1..]);
    !port.is_empty()
        && port.iter().all(u8::is_ascii_digit)
        && !host.is_empty()
        && host
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b".-_".contains(&c))
        && (host.contains(&b'.') || host.contains(&b'-') || is_numeric(host))
}

/// Position of the `=` when the core is `key=value` with an identifier-like key.
fn key_value_split(core: &str) -> Option<usize> {
    let b = core.as_bytes();
    let eq = memchr::memchr(b'=', b)?;
    let key = &b[..eq];
    let key_ok = key
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && key
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    (key_ok && b.get(eq + 1) != Some(&b'=')).then_some(eq)
}

/// Masks digit runs (with a leading sign) and long hex runs that stand between
/// separators, copying everything else.
fn mask_embedded_runs(core: &str, out: &mut String) {
    let b = core.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !is_word_byte(b[i]) || (i > 0 && is_word_byte(b[i - 1])) {
            i += 1;
            continue;
        }
        let word_end = b[i..]
            .iter()
            .position(|&c| !is_word_byte(c))
            .map_or(b.len(), |p| i + p);
        if is_variable_word(&b[i..word_end]) {
            let signed = i > 0 && b[i - 1] == b'-' && (i == 1 || !is_word_byte(b[i - 2]));
            let from = if signed { i - 1 } else { i };
            out.push_str(&core[copied..from]);
            out.push_str(WILDCARD);
            copied = word_end;
        }
        i = word_end;
    }
    out.push_str(&core[copied..]);
}

/// A maximal alphanumeric word inside a token that is a value on its own.
fn is_variable_word(word: &[u8]) -> bool {
    let all_digits = word.iter().all(u8::is_ascii_digit);
    let long_hex = word.len() >= MIN_BARE_HEX_LEN
        && word.iter().all(u8::is_ascii_hexdigit)
        && word.iter().any(u8::is_ascii_digit);
    all_digits || long_hex
}

/// Bytes that form words: ASCII alphanumerics and any non-ASCII byte.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Whether a token holds anything a variable could hide in: a digit or a wildcard.
pub(crate) fn looks_variable(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit()) || token.contains(WILDCARD)
}
