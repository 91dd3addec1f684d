//! A strict JSON reader that keeps every token's raw text.
//!
//! Hashes depend on spellings a typical parser throws away (a quantity's `1.500`, a number's
//! exact digits, a string's escapes), so values keep their raw bytes and strings are decoded
//! only on demand, exactly as Go's `encoding/json` decodes them: invalid UTF-8 bytes and lone
//! UTF-16 surrogate escapes become U+FFFD. The grammar accepted is Go's scanner's.

use std::borrow::Cow;
use std::ops::Range;

/// Deepest nesting accepted. Go allows 10,000; pods as the API server serves them nest about
/// 20 levels (managed fields included), and the bound keeps the recursive reader well inside
/// a thread's stack even in debug builds. Deeper input is refused, never mis-hashed.
const MAX_DEPTH: usize = 256;

/// A JSON text that is not what Go's scanner accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to read json at byte {offset}: {reason}")]
pub struct JsonError {
    /// Byte offset of the offending input.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

/// One JSON value with the raw bytes it came from.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    pub value: Value<'a>,
    pub span: Range<usize>,
}

/// The value of a [`Node`]; scalars keep their raw token text.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    /// The number token exactly as written.
    Number(&'a [u8]),
    /// The bytes between the quotes, escapes not yet interpreted.
    String(&'a [u8]),
    Array(Vec<Node<'a>>),
    /// Members in input order, keys raw as for [`Value::String`]; duplicates are kept.
    Object(Vec<(&'a [u8], Node<'a>)>),
}

impl Value<'_> {
    /// The JSON kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

/// Reads one JSON document, surrounded by nothing but white space.
pub(crate) fn parse(input: &[u8]) -> Result<Node<'_>, JsonError> {
    let mut reader = Reader::new(input);
    reader.skip_space();
    let node = reader.value()?;
    reader.skip_space();
    if reader.pos != input.len() {
        return Err(reader.error("unexpected data after the top-level value"));
    }
    Ok(node)
}

/// Bytes that end a run of plain string content: the quote, a backslash, control bytes.
const STRING_STOPS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// How many bytes of string content come before the first [`STRING_STOPS`] byte (or the end).
fn plain_run(bytes: &[u8]) -> usize {
    let mut run = 0;
    while run < bytes.len() && !STRING_STOPS[usize::from(bytes[run])] {
        run += 1;
    }
    run
}

/// A position in a JSON text; the tree reader and the direct encoder both scan with it.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            depth: 0,
        }
    }

    /// Whether only white space was left (call after [`Reader::skip_space`]).
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.input.len()
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Moves to `pos`, a position this reader has already passed.
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// Consumes `byte` if it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    /// Steps into an object or array (past its opening bracket), within [`MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub(crate) fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    pub(crate) fn value(&mut self) -> Result<Node<'a>, JsonError> {
        let start = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.nested(Self::object)?,
            Some(b'[') => self.nested(Self::array)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.literal(b"true", Value::Bool(true))?,
            Some(b'f') => self.literal(b"false", Value::Bool(false))?,
            Some(b'n') => self.literal(b"null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            Some(_) => return Err(self.error("invalid character looking for a value")),
            None => return Err(self.error("unexpected end of input")),
        };
        Ok(Node {
            value,
            span: start..self.pos,
        })
    }

    fn nested(
        &mut self,
        read: fn(&mut Self) -> Result<Value<'a>, JsonError>,
    ) -> Result<Value<'a>, JsonError> {
        self.enter()?;
        let value = read(self)?;
        self.leave();
        Ok(value)
    }

    /// Reads past one value, accepting exactly what [`Reader::value`] accepts, keeping nothing.
    pub(crate) fn skip(&mut self) -> Result<(), JsonError> {
        let close = match self.peek() {
            Some(b'{') => b'}',
            Some(b'[') => b']',
            _ => return self.value().map(drop),
        };
        self.enter()?;
        self.skip_items(close)?;
        self.leave();
        Ok(())
    }

    /// The members of an object (`close` is `}`) or the items of an array, and the close.
    fn skip_items(&mut self, close: u8) -> Result<(), JsonError> {
        self.skip_space();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            self.skip_space();
            if close == b'}' {
                if self.peek() != Some(b'"') {
                    return Err(self.error("expected a string object key"));
                }
                self.string()?;
                self.skip_space();
                self.expect(b':', "expected ':' after an object key")?;
                self.skip_space();
            }
            self.skip()?;
            self.skip_space();
            if self.end_of_list(close)? {
                return Ok(());
            }
        }
    }

    pub(crate) fn literal(
        &mut self,
        word: &[u8],
        value: Value<'a>,
    ) -> Result<Value<'a>, JsonError> {
        if !self.input[self.pos..].starts_with(word) {
            return Err(self.error("invalid literal"));
        }
        self.pos += word.len();
        Ok(value)
    }

    fn object(&mut self) -> Result<Value<'a>, JsonError> {
        let mut members = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string object key"));
            }
            let key = self.string()?;
            self.skip_space();
            self.expect(b':', "expected ':' after an object key")?;
            self.skip_space();
            members.push((key, self.value()?));
            self.skip_space();
            if self.end_of_list(b'}')? {
                return Ok(Value::Object(members));
            }
        }
    }

    fn array(&mut self) -> Result<Value<'a>, JsonError> {
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_space();
            items.push(self.value()?);
            self.skip_space();
            if self.end_of_list(b']')? {
                return Ok(Value::Array(items));
            }
        }
    }

    /// Consumes a `,` (more to come) or the closing bracket (done).
    pub(crate) fn end_of_list(&mut self, close: u8) -> Result<bool, JsonError> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.error("expected ',' or a closing bracket")),
        }
    }

    pub(crate) fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), JsonError> {
        if self.peek() != Some(byte) {
            return Err(self.error(reason));
        }
        self.pos += 1;
        Ok(())
    }

    /// Scans a string token and returns the bytes between its quotes.
    pub(crate) fn string(&mut self) -> Result<&'a [u8], JsonError> {
        self.pos += 1;
        let start = self.pos;
        loop {
            self.pos += plain_run(&self.input[self.pos..]);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => self.escape()?,
                Some(_) => return Err(self.error("control character in string")),
            }
        }
        let raw = &self.input[start..self.pos];
        self.pos += 1;
        Ok(raw)
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
            Some(b'u') => {
                let hex = self.input.get(self.pos + 1..self.pos + 5);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(self.error("invalid \\u escape"));
                }
                self.pos += 5;
            }
            _ => return Err(self.error("invalid escape in string")),
        }
        Ok(())
    }

    /// Scans `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    pub(crate) fn number(&mut self) -> Result<&'a [u8], JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(&self.input[start..self.pos])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.error("invalid number"));
        }
        self.digits();
        Ok(())
    }
}

/// Decodes the raw content of a string token as Go does.
///
/// Escapes are interpreted, a valid surrogate pair becomes one character, a lone surrogate
/// escape becomes U+FFFD (and a following escape is then read on its own), and every byte that
/// is not part of valid UTF-8 becomes its own U+FFFD.
pub(crate) fn decode_string(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\')
        && let Ok(plain) = std::str::from_utf8(raw)
    {
        return Cow::Borrowed(plain);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        let plain_len = rest.iter().position(|&b| b == b'\\').unwrap_or(rest.len());
        push_lossy_per_byte(&mut out, &rest[..plain_len]);
        rest = &rest[plain_len..];
        if !rest.is_empty() {
            rest = push_escape(&mut out, rest);
        }
    }
    Cow::Owned(out)
}

/// Appends `bytes`, replacing each byte that is not part of valid UTF-8 with U+FFFD.
fn push_lossy_per_byte(out: &mut String, mut bytes: &[u8]) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return;
            }
            Err(error) => {
                let (valid, after) = bytes.split_at(error.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = &after[1..];
            }
        }
    }
}

/// Appends the escape at the start of `rest` (already validated) and returns what follows it.
fn push_escape<'r>(out: &mut String, rest: &'r [u8]) -> &'r [u8] {
    let simple = match rest.get(1) {
        Some(b'b') => Some('\u{8}'),
        Some(b'f') => Some('\u{c}'),
        Some(b'n') => Some('\n'),
        Some(b'r') => Some('\r'),
        Some(b't') => Some('\t'),
        Some(b'u') => None,
        Some(&other) => Some(char::from(other)),
        None => return &[],
    };
    if let Some(c) = simple {
        out.push(c);
        return &rest[2..];
    }
    let unit = hex4(&rest[2..]);
    if (0xD800..0xE000).contains(&unit) {
        if rest.get(6) == Some(&b'\\') && rest.get(7) == Some(&b'u') {
            let low = hex4(&rest[8..]);
            if (0xD800..0xDC00).contains(&unit) && (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                return &rest[12..];
            }
        }
        out.push(char::REPLACEMENT_CHARACTER);
        return &rest[6..];
    }
    out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
    &rest[6..]
}

/// The value of four hex digits (validated by the reader); anything else reads as 0.
fn hex4(bytes: &[u8]) -> u32 {
    bytes
        .get(..4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// Whether a raw key equals `name` under Go's case-insensitive field matching.
///
/// `name` is an ASCII field name. Go folds ASCII letters and also matches the Kelvin sign
/// (U+212A) to `k` and the long s (U+017F) to `s`.
pub(crate) fn key_folds_to(key: &str, name: &str) -> bool {
    let mut expected = name.bytes();
    for c in key.chars() {
        let folded = match c {
            '\u{212A}' => b'k',
            '\u{17F}' => b's',
            c if c.is_ascii() => (c as u8).to_ascii_lowercase(),
            _ => return false,
        };
        if expected.next().map(|b| b.to_ascii_lowercase()) != Some(folded) {
            return false;
        }
    }
    expected.next().is_none()
}

#[cfg(test)]
mod tests;
