//! A byte cursor over one line, shared by the parsers.
//!
//! Every method either advances past what it read or leaves the cursor where it was and
//! returns `None`, so a parser can report the byte where reading stopped with [`pos`].
//! The cursor only ever stops on ASCII bytes it matched, so the slices it hands out are
//! always on character boundaries.
//!
//! [`pos`]: Cursor::pos

use memchr::memchr;

#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a str) -> Cursor<'a> {
        Cursor { line, pos: 0 }
    }

    /// The byte offset of the next unread byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_at_end(&self) -> bool {
        self.pos == self.line.len()
    }

    /// Everything not yet read; the cursor does not move.
    pub(crate) fn rest(&self) -> &'a str {
        &self.line[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    /// Moves past `byte` if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    /// Moves past `text` if it comes next.
    pub(crate) fn eat_str(&mut self, text: &str) -> bool {
        let found = self.rest().starts_with(text);
        if found {
            self.pos += text.len();
        }
        found
    }

    /// Moves past any number of spaces.
    pub(crate) fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Reads up to the next `stop` byte (or the end of the line) and leaves the cursor on
    /// the stop byte. The slice may be empty.
    pub(crate) fn until(&mut self, stop: u8) -> &'a str {
        let rest = self.rest();
        let len = memchr(stop, rest.as_bytes()).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// Reads a non-empty run of bytes up to the next space or the end of the line.
    pub(crate) fn word(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let word = self.until(b' ');
        if word.is_empty() {
            self.pos = start;
            return None;
        }
        Some(word)
    }

    /// Reads exactly `len` bytes, if there are that many.
    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.line.as_bytes().get(self.pos..self.pos + len)?;
        self.pos += len;
        Some(bytes)
    }

    /// Reads a field in double quotes, as Apache writes it: `"` inside is escaped as
    /// `\"`. The closing quote is the first unescaped `"` followed by a space or the end
    /// of the line, which also tolerates the odd unescaped quote other servers let
    /// through. Returns the text between the quotes, escapes kept as written.
    pub(crate) fn quoted(&mut self) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let bytes = self.line.as_bytes();
        let start = self.pos + 1;
        let mut from = start;
        while let Some(found) = memchr(b'"', &bytes[from..]) {
            let quote = from + found;
            let closes = matches!(bytes.get(quote + 1), None | Some(b' '));
            if closes && !is_escaped(&bytes[start..quote]) {
                self.pos = quote + 1;
                return Some(&self.line[start..quote]);
            }
            from = quote + 1;
        }
        None
    }
}

/// Whether the byte after `before` is escaped: an odd number of backslashes end it.
fn is_escaped(before: &[u8]) -> bool {
    let backslashes = before
        .iter()
        .rev()
        .take_while(|&&byte| byte == b'\\')
        .count();
    backslashes % 2 == 1
}

/// Reads an unsigned decimal number made of ASCII digits only.
pub(crate) fn parse_digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0u64, |number, &byte| {
        let digit = byte.wrapping_sub(b'0');
        (digit < 10).then(|| number * 10 + u64::from(digit))
    })
}
