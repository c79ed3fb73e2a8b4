//! Splitting a log line into header fields and its message body, with the format strings
//! of the Loghub benchmark: `<Date> <Time> <Level> <Component>: <Content>`.
//!
//! A format is a sequence of
//! - `<Name>` fields; `<Content>` must appear once and takes the message body,
//! - runs of spaces, which match one or more whitespace characters in the line,
//! - literal characters, with `\` escaping the next character (`\[`, `\|`, `\(`),
//! - groups in parentheses, optional when followed by `?`: `(\[<PID>\])?`.
//!
//! As in the regular expressions Loghub builds from these strings, a header field is as
//! short as possible and `Content` as long as possible; the line is trimmed first. A
//! header field is at most [`MAX_FIELD_BYTES`] long, which keeps the matcher's work per
//! line linear in the line's length whatever the line holds.

use std::fmt;

/// Longest value a header field other than `Content` may take.
pub const MAX_FIELD_BYTES: usize = 256;

/// Name of the field that holds the message body.
const CONTENT: &str = "Content";

/// A format string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderFormatError {
    /// No `<Content>` field.
    MissingContent(String),
    /// A `<` without its `>`, at this byte offset.
    UnclosedField(usize),
    /// A field name that is empty or holds other than letters, digits and `_`.
    BadFieldName(String),
    /// The same field name twice.
    DuplicateField(String),
    /// A `(` without its `)` or a `)` without its `(`, at this byte offset.
    UnbalancedGroup(usize),
    /// A `\` at the very end.
    DanglingEscape,
    /// A `?` that does not follow a group, at this byte offset.
    MisplacedQuestionMark(usize),
}

impl fmt::Display for HeaderFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingContent(format) => write!(f, "log format {format:?} has no <Content>"),
            Self::UnclosedField(at) => write!(f, "log format field at byte {at} has no '>'"),
            Self::BadFieldName(name) => write!(f, "log format field name {name:?} is invalid"),
            Self::DuplicateField(name) => write!(f, "log format field <{name}> appears twice"),
            Self::UnbalancedGroup(at) => {
                write!(f, "log format parenthesis at byte {at} is unbalanced")
            }
            Self::DanglingEscape => write!(f, "log format ends with a lone '\\'"),
            Self::MisplacedQuestionMark(at) => {
                write!(f, "log format '?' at byte {at} does not follow a group")
            }
        }
    }
}

impl std::error::Error for HeaderFormatError {}

/// One step of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// Captures into the field of this index; lazy, or greedy for `Content`.
    Field(usize),
    Literal(Box<str>),
    /// One or more whitespace characters, all of them.
    Space,
    /// Tries the group starting at the next op first, else jumps to this op.
    SkipUnlessMatched(usize),
}

/// A parsed Loghub-style format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFormat {
    ops: Vec<Op>,
    names: Vec<Box<str>>,
    content: usize,
}

/// The fields of one line split by a [`HeaderFormat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    names: &'a [Box<str>],
    values: Vec<Option<&'a str>>,
    content: &'a str,
}

impl<'a> Fields<'a> {
    /// The message body.
    pub fn content(&self) -> &'a str {
        self.content
    }

    /// The value of a field; `None` when the format has no such field or it sat in an
    /// optional group the line left out.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let index = self.names.iter().position(|n| &**n == name)?;
        self.values[index]
    }

    /// Every field the line has, `Content` included, in format order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.names
            .iter()
            .zip(&self.values)
            .filter_map(|(n, v)| Some((&**n, (*v)?)))
    }
}

impl HeaderFormat {
    /// Parses a format string such as `<Date> <Time> <Level> <Component>: <Content>`.
    pub fn parse(format: &str) -> Result<Self, HeaderFormatError> {
        let mut parser = Parser {
            format,
            pos: 0,
            ops: Vec::new(),
            names: Vec::new(),
            extend_literal: false,
        };
        parser.sequence(0)?;
        let content = parser
            .names
            .iter()
            .position(|n| &**n == CONTENT)
            .ok_or_else(|| HeaderFormatError::MissingContent(format.to_owned()))?;
        Ok(Self {
            ops: parser.ops,
            names: parser.names,
            content,
        })
    }

    /// Names of the fields, in format order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// Splits a line; `None` when the line does not have the format's shape.
    pub fn split<'a>(&'a self, line: &'a str) -> Option<Fields<'a>> {
        let line = line.trim();
        let mut run = Run {
            ops: &self.ops,
            content: self.content,
            line,
            values: vec![None; self.names.len()],
            failed: vec![0; (self.ops.len() * (line.len() + 1)).div_ceil(64)],
        };
        if !run.matches(0, 0) {
            return None;
        }
        let content = run.values[self.content].unwrap_or("");
        Some(Fields {
            names: &self.names,
            values: run.values,
            content,
        })
    }
}

/// Format string parser; groups compile to a [`Op::SkipUnlessMatched`] before them.
struct Parser<'f> {
    format: &'f str,
    pos: usize,
    ops: Vec<Op>,
    names: Vec<Box<str>>,
    /// Whether the next literal character may extend the last op; false right after a
    /// group, whose last op is inside it.
    extend_literal: bool,
}

impl Parser<'_> {
    /// Parses until the end, or until the `)` closing a group when `depth > 0`.
    fn sequence(&mut self, depth: usize) -> Result<(), HeaderFormatError> {
        while let Some(c) = self.format[self.pos..].chars().next() {
            match c {
                '<' => self.field()?,
                '(' => self.group(depth)?,
                ')' if depth > 0 => return Ok(()),
                ')' => return Err(HeaderFormatError::UnbalancedGroup(self.pos)),
                '?' => return Err(HeaderFormatError::MisplacedQuestionMark(self.pos)),
                ' ' => self.space(),
                '\\' => self.escape()?,
                _ => {
                    self.pos += c.len_utf8();
                    self.literal(c);
                }
            }
        }
        Ok(())
    }

    fn field(&mut self) -> Result<(), HeaderFormatError> {
        let start = self.pos;
        let rest = &self.format[start + 1..];
        let end = rest
            .find('>')
            .ok_or(HeaderFormatError::UnclosedField(start))?;
        let name = &rest[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(HeaderFormatError::BadFieldName(name.to_owned()));
        }
        if self.names.iter().any(|n| &**n == name) {
            return Err(HeaderFormatError::DuplicateField(name.to_owned()));
        }
        self.names.push(name.into());
        self.ops.push(Op::Field(self.names.len() - 1));
        self.pos = start + 1 + end + 1;
        Ok(())
    }

    fn group(&mut self, depth: usize) -> Result<(), HeaderFormatError> {
        let open = self.pos;
        self.pos += 1;
        let skip_at = self.ops.len();
        self.ops.push(Op::SkipUnlessMatched(0));
        self.sequence(depth + 1)?;
        if !self.format[self.pos..].starts_with(')') {
            return Err(HeaderFormatError::UnbalancedGroup(open));
        }
        self.pos += 1;
        if self.format[self.pos..].starts_with('?') {
            self.pos += 1;
            self.ops[skip_at] = Op::SkipUnlessMatched(self.ops.len());
        } else {
            self.ops.remove(skip_at);
        }
        self.extend_literal = false;
        Ok(())
    }

    fn space(&mut self) {
        let rest = &self.format[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches(' ').len();
        self.ops.push(Op::Space);
    }

    fn escape(&mut self) -> Result<(), HeaderFormatError> {
        let c = self.format[self.pos + 1..]
            .chars()
            .next()
            .ok_or(HeaderFormatError::DanglingEscape)?;
        self.pos += 1 + c.len_utf8();
        self.literal(c);
        Ok(())
    }

    fn literal(&mut self, c: char) {
        match self.ops.last_mut() {
            Some(Op::Literal(text)) if self.extend_literal => {
                let mut joined = String::from(&**text);
                joined.push(c);
                *text = joined.into();
            }
            _ => self.ops.push(Op::Literal(c.to_string().into())),
        }
        self.extend_literal = true;
    }
}

/// One backtracking match of a line, remembering which (op, offset) states failed so
/// that no state is explored twice.
struct Run<'a> {
    ops: &'a [Op],
    content: usize,
    line: &'a str,
    values: Vec<Option<&'a str>>,
    failed: Vec<u64>,
}

impl<'a> Run<'a> {
    fn matches(&mut self, pc: usize, at: usize) -> bool {
        let Some(op) = self.ops.get(pc) else {
            return at == self.line.len();
        };
        let state = pc * (self.line.len() + 1) + at;
        if self.failed[state / 64] & (1 << (state % 64)) != 0 {
            return false;
        }
        let matched = self.step(op.clone(), pc, at);
        if !matched {
            self.failed[state / 64] |= 1 << (state % 64);
        }
        matched
    }

    fn step(&mut self, op: Op, pc: usize, at: usize) -> bool {
        let rest = &self.line[at..];
        match op {
            Op::Literal(text) => rest.starts_with(&*text) && self.matches(pc + 1, at + text.len()),
            Op::Space => {
                let taken = rest.len() - rest.trim_start().len();
                taken > 0 && self.matches(pc + 1, at + taken)
            }
            Op::SkipUnlessMatched(skip_to) => {
                self.matches(pc + 1, at) || self.skip_group(pc, skip_to, at)
            }
            Op::Field(index) => self.field(index, pc, at),
        }
    }

    /// Leaves an optional group out, clearing whatever a failed attempt captured in it.
    fn skip_group(&mut self, pc: usize, skip_to: usize, at: usize) -> bool {
        for op in &self.ops[pc + 1..skip_to] {
            if let Op::Field(index) = op {
                self.values[*index] = None;
            }
        }
        self.matches(skip_to, at)
    }

    /// Tries the ends a field starting at `at` may take: shortest first for header
    /// fields, longest first for `Content`.
    fn field(&mut self, index: usize, pc: usize, at: usize) -> bool {
        let found = if index == self.content {
            (at..=self.line.len())
                .rev()
                .any(|end| self.try_end(index, pc, at, end))
        } else {
            let limit = (at + MAX_FIELD_BYTES).min(self.line.len());
            (at..=limit).any(|end| self.try_end(index, pc, at, end))
        };
        if !found {
            self.values[index] = None;
        }
        found
    }

    fn try_end(&mut self, index: usize, pc: usize, at: usize, end: usize) -> bool {
        if !self.line.is_char_boundary(end) {
            return false;
        }
        self.values[index] = Some(&self.line[at..end]);
        self.matches(pc + 1, end)
    }
}
