//! A forgiving JSON reader: strict JSON plus the mistakes models make, each one recorded.
//!
//! It is a loop over an explicit stack, never a recursion, so nesting costs heap (bounded by the
//! depth limit), not stack. It accepts exactly the superset described in the parent module and
//! refuses to finish a value the text cut off.

use serde_json::{Map, Number, Value};

use super::Repair;
use super::extract::find;
use crate::output::FieldPath;

/// Why a candidate could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// Nesting deeper than the limit.
    TooDeep,
    /// The text ends inside a value that cannot be closed without inventing its end.
    Truncated(&'static str),
    /// Not JSON, even leniently.
    Invalid {
        /// What was expected where, e.g. "expected `,` or `]` at byte 7, found `x`".
        message: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TooDeep => f.write_str("nests deeper than the limit"),
            Failure::Truncated(cut) => write!(f, "cut off inside {cut}"),
            Failure::Invalid { message } => f.write_str(message),
        }
    }
}

/// Whether `lower` (a lowercased word) spells a JSON or Python literal or a number's name.
pub(super) fn is_literal_like(lower: &str) -> bool {
    LITERAL_LIKE.contains(&lower)
}

/// An array or object still open.
enum Frame {
    Array(Vec<Value>),
    /// The members so far and the key whose value is being read.
    Object(Map<String, Value>, Option<String>),
}

/// What the reader expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (or, right after `[` or `,` in an array, the closing `]`).
    Value,
    /// A key or the closing `}`.
    Key,
    /// A `,` or the closing bracket (or the end, at the top level).
    AfterValue,
}

/// How a candidate is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Mode {
    /// Whether a bare word may be an array item (`[red, green]`). Off for spans found in prose,
    /// where brackets around words are common ("[citation needed]").
    pub bare_items: bool,
    /// Whether the text is a sequence of top-level objects or arrays, separated by whitespace or
    /// commas, read as one array of them.
    pub sequence: bool,
}

/// Reads one value from `text`, which must hold nothing else (whitespace and comments aside); in
/// [`Mode::sequence`], every value in it, as an array.
pub(super) fn read(
    text: &str,
    max_depth: usize,
    mode: Mode,
) -> Result<(Value, Vec<Repair>), Failure> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        max_depth,
        stack: Vec::new(),
        repairs: Vec::new(),
        mode,
    };
    if mode.sequence {
        // The list being collected: a container with no brackets in the text.
        reader.stack.push(Frame::Array(Vec::new()));
    }
    reader.run()
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
    stack: Vec<Frame>,
    repairs: Vec<Repair>,
    mode: Mode,
}

impl Reader<'_> {
    fn run(mut self) -> Result<(Value, Vec<Repair>), Failure> {
        let mut expect = Expect::Value;
        // Whether the last token was a comma, to tell `[1,]` from `[]`.
        let mut after_comma = false;
        let mut result: Option<Value> = None;
        loop {
            self.skip_blank();
            let Some(&b) = self.bytes.get(self.pos) else {
                return self.finish(expect, after_comma, result);
            };
            match expect {
                Expect::Value => {
                    if self.at_sequence_root() && b != b'{' && b != b'[' {
                        return Err(self.invalid("an object or array"));
                    }
                    if b == b']' && matches!(self.stack.last(), Some(Frame::Array(_))) {
                        if after_comma {
                            // `[1,]`: the comma promised a value that never came.
                            self.trailing_comma();
                        }
                        self.pos += 1;
                        result = self.close(&mut expect);
                        after_comma = false;
                        continue;
                    }
                    let value = match b {
                        b'{' => {
                            self.open(Frame::Object(Map::new(), None))?;
                            expect = Expect::Key;
                            after_comma = false;
                            continue;
                        }
                        b'[' => {
                            self.open(Frame::Array(Vec::new()))?;
                            after_comma = false;
                            continue;
                        }
                        b'"' | b'\'' => Value::String(self.string(b, "a string")?),
                        b'-' | b'0'..=b'9' => self.number()?,
                        b if b.is_ascii_alphabetic() || b >= 0x80 => self.word()?,
                        _ => return Err(self.invalid("a value")),
                    };
                    result = self.complete(value, &mut expect);
                    after_comma = false;
                }
                Expect::Key => {
                    if b == b'}' {
                        if after_comma {
                            self.trailing_comma();
                        }
                        self.pos += 1;
                        result = self.close(&mut expect);
                        after_comma = false;
                        continue;
                    }
                    self.key(b)?;
                    expect = Expect::Value;
                    after_comma = false;
                }
                Expect::AfterValue if self.at_sequence_root() => match b {
                    b',' => {
                        self.pos += 1;
                        after_comma = true;
                        expect = Expect::Value;
                    }
                    b'{' | b'[' => expect = Expect::Value,
                    _ => return Err(self.invalid("another object or array, or the end")),
                },
                Expect::AfterValue => match (b, self.stack.last()) {
                    (_, None) => return Err(self.invalid("the end of the value")),
                    (b',', Some(frame)) => {
                        self.pos += 1;
                        after_comma = true;
                        expect = match frame {
                            Frame::Array(_) => Expect::Value,
                            Frame::Object(..) => Expect::Key,
                        };
                    }
                    (b']', Some(Frame::Array(_))) | (b'}', Some(Frame::Object(..))) => {
                        self.pos += 1;
                        result = self.close(&mut expect);
                    }
                    (_, Some(Frame::Array(_))) => return Err(self.invalid("`,` or `]`")),
                    (_, Some(Frame::Object(..))) => return Err(self.invalid("`,` or `}`")),
                },
            }
        }
    }

    /// The text ended. Done, closable (only complete values were read), or cut off.
    fn finish(
        mut self,
        expect: Expect,
        after_comma: bool,
        result: Option<Value>,
    ) -> Result<(Value, Vec<Repair>), Failure> {
        if self.stack.is_empty() {
            return match result {
                Some(v) => Ok((v, self.repairs)),
                None => Err(Failure::Invalid {
                    message: "expected a value, found the end of the text".into(),
                }),
            };
        }
        if expect == Expect::Value && matches!(self.stack.last(), Some(Frame::Object(..))) {
            return Err(Failure::Truncated("a member before its value"));
        }
        if after_comma {
            self.trailing_comma();
        }
        let base = usize::from(self.mode.sequence);
        let mut expect = expect;
        let mut result = None;
        if self.stack.len() > base {
            let mut closed = String::new();
            while self.stack.len() > base {
                closed.push(match self.stack.last() {
                    Some(Frame::Array(_)) | None => ']',
                    Some(Frame::Object(..)) => '}',
                });
                result = self.close(&mut expect);
            }
            self.repairs.push(Repair::ClosedTruncated { closed });
        }
        if base == 1 {
            result = self.close(&mut expect);
        }
        match result {
            Some(v) => Ok((v, self.repairs)),
            None => Err(Failure::Truncated("the outermost value")),
        }
    }

    /// A member's key starting with `b`, and its `:`.
    fn key(&mut self, b: u8) -> Result<(), Failure> {
        let key = match b {
            b'"' | b'\'' => self.string(b, KEY)?,
            b if is_key_start(b) => self.bare_key(),
            _ => return Err(self.invalid("a key or `}`")),
        };
        if let Some(Frame::Object(_, slot)) = self.stack.last_mut() {
            *slot = Some(key);
        }
        self.skip_blank();
        match self.bytes.get(self.pos) {
            Some(b':') => self.pos += 1,
            Some(_) => return Err(self.invalid("`:` after a key")),
            None => return Err(Failure::Truncated("a member before its value")),
        }
        Ok(())
    }

    /// Whether the reader is between the top-level values of a sequence.
    fn at_sequence_root(&self) -> bool {
        self.mode.sequence && self.stack.len() == 1
    }

    /// A word where a value goes: a JSON literal, a Python one, or a bare single word.
    fn word(&mut self) -> Result<Value, Failure> {
        let start = self.pos;
        if let Some(value) = self.literal()? {
            return Ok(value);
        }
        let in_object = matches!(self.stack.last(), Some(Frame::Object(..)));
        let in_array = matches!(self.stack.last(), Some(Frame::Array(_)));
        if !(in_object || (in_array && self.mode.bare_items)) || !self.starts_letter() {
            return Err(self.invalid("a value"));
        }
        while let Some(c) = self.text[self.pos..].chars().next() {
            if !is_word_char(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        let word = self.text[start..self.pos].to_owned();
        let after = self.skip_inline_blank(self.pos);
        let closer = if in_object { b'}' } else { b']' };
        match self.bytes.get(after) {
            None => return Err(Failure::Truncated("a word")),
            Some(&b) if b == b',' || b == closer => {}
            Some(_) => {
                // `{"a": in progress}`: two words may be one string or a missing comma.
                self.pos = start;
                return Err(self.invalid(
                    "a quoted string (a bare word must end at `,` or the closing bracket)",
                ));
            }
        }
        if LITERAL_LIKE.contains(&word.to_lowercase().as_str()) {
            // `NULL`, `TRUE`, `NaN`: the literal, or the word? Neither is certain.
            self.pos = start;
            return Err(self.invalid("a JSON literal (`true`, `false`, `null`) or a quoted string"));
        }
        let path = self.path().0;
        self.repairs.push(Repair::QuotedBareValue {
            path,
            word: word.clone(),
        });
        Ok(Value::String(word))
    }

    /// Whether the character at the reader is a letter.
    fn starts_letter(&self) -> bool {
        self.text[self.pos..]
            .chars()
            .next()
            .is_some_and(char::is_alphabetic)
    }

    /// The first byte from `at` that is not a space or a tab.
    fn skip_inline_blank(&self, mut at: usize) -> usize {
        while let Some(b' ' | b'\t') = self.bytes.get(at) {
            at += 1;
        }
        at
    }

    /// The first byte from `at` that is not whitespace or inside a comment.
    fn skip_space(&self, mut at: usize) -> usize {
        loop {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(at) {
                at += 1;
            }
            let rest = &self.bytes[at..];
            if rest.starts_with(b"//") {
                at += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            } else if rest.starts_with(b"/*") {
                at += find(&rest[2..], b"*/").map_or(rest.len(), |i| i + 4);
            } else {
                return at;
            }
        }
    }

    /// Whether the quote just before `after` ends the string being read. It does unless what
    /// follows cannot follow a string at all here: then the quote is a character of the string
    /// (`"say "hi" now"`). A quote followed by another string (`"a" "b"`: a missing comma, or one
    /// string?) or by `:` ends it, and the reading then fails.
    fn quote_ends_string(&self, after: usize, key: bool) -> bool {
        let next = self.skip_space(after);
        let Some(&b) = self.bytes.get(next) else {
            return true;
        };
        if key {
            // `{"ke"y": 1}`; `{"a" 1}` is a missing colon, not a quote.
            return b == b':' || next != after || !(b.is_ascii_alphanumeric() || b >= 0x80);
        }
        match b {
            b',' if self.stack.is_empty() => true,
            b',' => self.plausible_after_comma(next + 1),
            b'"' | b':' | b'\'' | b'}' | b']' => true,
            _ => false,
        }
    }

    /// Whether what follows a comma at `from` can start the next item or member.
    fn plausible_after_comma(&self, from: usize) -> bool {
        let at = self.skip_space(from);
        let Some(&b) = self.bytes.get(at) else {
            return true;
        };
        match self.stack.last() {
            Some(Frame::Object(..)) => {
                if matches!(b, b'"' | b'\'' | b'}') {
                    return true;
                }
                let mut end = at;
                while self.bytes.get(end).is_some_and(|&b| is_key_byte(b)) {
                    end += 1;
                }
                end > at && self.bytes.get(self.skip_space(end)) == Some(&b':')
            }
            _ => {
                matches!(b, b'"' | b'\'' | b'{' | b'[' | b']' | b'-' | b'0'..=b'9')
                    || (self.mode.bare_items && b.is_ascii_alphabetic())
            }
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), Failure> {
        if self.stack.len() >= self.max_depth {
            return Err(Failure::TooDeep);
        }
        self.pos += 1;
        self.stack.push(frame);
        Ok(())
    }

    /// Pops the innermost container and hands it to its parent.
    fn close(&mut self, expect: &mut Expect) -> Option<Value> {
        let value = match self.stack.pop()? {
            Frame::Array(items) => Value::Array(items),
            Frame::Object(map, _) => Value::Object(map),
        };
        self.complete(value, expect)
    }

    /// Puts a finished value in its place; returns it when it is the whole result.
    fn complete(&mut self, value: Value, expect: &mut Expect) -> Option<Value> {
        *expect = Expect::AfterValue;
        match self.stack.last_mut() {
            None => Some(value),
            Some(Frame::Array(items)) => {
                items.push(value);
                None
            }
            Some(Frame::Object(map, key)) => {
                // A duplicate key keeps the last value, as serde_json does.
                map.insert(key.take().unwrap_or_default(), value);
                None
            }
        }
    }

    /// The path of the value being read: every open container plus the slot in the innermost.
    /// While a key is read, that slot is empty and this is the object's path.
    fn path(&self) -> FieldPath {
        self.path_to(self.stack.len())
    }

    /// The path through the first `frames` open containers.
    fn path_to(&self, frames: usize) -> FieldPath {
        let mut path = FieldPath::root();
        for frame in &self.stack[..frames] {
            path = match frame {
                Frame::Array(items) => path.index(items.len()),
                Frame::Object(_, Some(key)) => path.field(key),
                Frame::Object(_, None) => path,
            };
        }
        path
    }

    /// The path of the innermost open container.
    fn container_path(&self) -> String {
        self.path_to(self.stack.len().saturating_sub(1)).0
    }

    fn trailing_comma(&mut self) {
        let path = self.container_path();
        self.repairs.push(Repair::RemovedTrailingComma { path });
    }

    fn invalid(&self, expected: &str) -> Failure {
        let found = match self.text[self.pos..].chars().next() {
            Some(c) => format!("`{}`", c.escape_debug()),
            None => "the end of the text".to_owned(),
        };
        Failure::Invalid {
            message: format!("expected {expected} at byte {}, found {found}", self.pos),
        }
    }

    /// Skips whitespace and comments, recording each comment.
    fn skip_blank(&mut self) {
        loop {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            let rest = &self.bytes[self.pos..];
            if rest.starts_with(b"//") {
                self.pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            } else if rest.starts_with(b"/*") {
                // An unclosed comment runs to the end; nothing in it was a value.
                self.pos += find(&rest[2..], b"*/").map_or(rest.len(), |i| i + 4);
            } else {
                return;
            }
            let path = self.container_path();
            self.repairs.push(Repair::RemovedComment { path });
        }
    }

    /// A quoted string starting at `self.pos` with `quote`.
    fn string(&mut self, quote: u8, what: &'static str) -> Result<String, Failure> {
        self.pos += 1;
        let mut out = String::new();
        let mut control = false;
        let mut lone = false;
        let mut inner = false;
        loop {
            let start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == quote || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(Failure::Truncated(what));
            };
            self.pos += 1;
            if b == quote {
                if self.quote_ends_string(self.pos, what == KEY) {
                    break;
                }
                inner = true;
                out.push(quote as char);
                continue;
            }
            if b < 0x20 {
                control = true;
                out.push(b as char);
                continue;
            }
            let Some(&esc) = self.bytes.get(self.pos) else {
                return Err(Failure::Truncated(what));
            };
            self.pos += 1;
            match esc {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'\'' if quote == b'\'' => out.push('\''),
                b'u' => {
                    let c = self.unicode_escape(what, &mut lone)?;
                    out.push(c);
                }
                _ => {
                    self.pos -= 2;
                    return Err(self.invalid("a JSON escape (`\\n`, `\\\"`, `\\u00e9`, ...)"));
                }
            }
        }
        if quote == b'\'' || control || lone || inner {
            // A key's repairs concern its member, whose slot is not set yet.
            let mut path = self.path();
            if what == KEY {
                path = path.field(&out);
            }
            let path = path.0;
            if quote == b'\'' {
                let path = path.clone();
                self.repairs.push(if what == KEY {
                    Repair::ConvertedSingleQuotedKey { path }
                } else {
                    Repair::ConvertedSingleQuotes { path }
                });
            }
            if control {
                let path = path.clone();
                self.repairs.push(Repair::EscapedControlCharacter { path });
            }
            if inner {
                let path = path.clone();
                self.repairs.push(Repair::EscapedInnerQuote { path });
            }
            if lone {
                self.repairs.push(Repair::ReplacedLoneSurrogate { path });
            }
        }
        Ok(out)
    }

    /// The character of a `\u` escape whose `\u` has been read; joins surrogate pairs.
    fn unicode_escape(&mut self, what: &'static str, lone: &mut bool) -> Result<char, Failure> {
        let first = self.hex4(what)?;
        if (0xD800..0xDC00).contains(&first) {
            if self.bytes[self.pos..].starts_with(b"\\u") {
                let save = self.pos;
                self.pos += 2;
                let second = self.hex4(what)?;
                if (0xDC00..0xE000).contains(&second) {
                    let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                // Not a low surrogate: read it on its own next time round.
                self.pos = save;
            }
            *lone = true;
            return Ok('\u{FFFD}');
        }
        match char::from_u32(first) {
            Some(c) => Ok(c),
            None => {
                *lone = true;
                Ok('\u{FFFD}')
            }
        }
    }

    fn hex4(&mut self, what: &'static str) -> Result<u32, Failure> {
        let mut n = 0u32;
        for _ in 0..4 {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(Failure::Truncated(what));
            };
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.invalid("four hex digits after `\\u`")),
            };
            n = n * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(n)
    }

    /// A JSON number. One the text ends in is cut off: `2` may have been `25`.
    fn number(&mut self) -> Result<Value, Failure> {
        let start = self.pos;
        let digits = |r: &mut Self| {
            let s = r.pos;
            while let Some(b'0'..=b'9') = r.bytes.get(r.pos) {
                r.pos += 1;
            }
            r.pos - s
        };
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_len = digits(self);
        let mut ok = int_len > 0 && !(int_len > 1 && self.bytes[int_start] == b'0');
        if ok && self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            ok = digits(self) > 0;
        }
        if ok && matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            ok = digits(self) > 0;
        }
        if self.pos == self.bytes.len() && !self.stack.is_empty() {
            return Err(Failure::Truncated("a number"));
        }
        if !ok
            || self
                .bytes
                .get(self.pos)
                .is_some_and(|&b| is_ident_continue(b) || b == b'.')
        {
            self.pos = start;
            return Err(self.invalid("a JSON number"));
        }
        match self.text[start..self.pos].parse::<Number>() {
            Ok(n) => Ok(Value::Number(n)),
            Err(e) => Err(Failure::Invalid {
                message: format!("the number at byte {start} cannot be read: {e}"),
            }),
        }
    }

    /// `true`, `false`, `null`, or Python's `True`, `False`, `None`; `None` (the reader back at
    /// the start) for any other word.
    fn literal(&mut self) -> Result<Option<Value>, Failure> {
        let start = self.pos;
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|&b| is_ident_continue(b))
        {
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        let (value, python) = match word {
            "true" => (Value::Bool(true), None),
            "false" => (Value::Bool(false), None),
            "null" => (Value::Null, None),
            "True" => (Value::Bool(true), Some("true")),
            "False" => (Value::Bool(false), Some("false")),
            "None" => (Value::Null, Some("null")),
            _ => {
                let at_end = self.pos == self.bytes.len() && !self.stack.is_empty();
                let prefix = ["true", "false", "null", "True", "False", "None"]
                    .iter()
                    .any(|l| l.starts_with(word));
                if at_end && prefix {
                    return Err(Failure::Truncated("a literal"));
                }
                self.pos = start;
                return Ok(None);
            }
        };
        if let Some(to) = python {
            let path = self.path().0;
            self.repairs.push(Repair::ReplacedPythonLiteral {
                path,
                from: word.to_owned(),
                to: to.to_owned(),
            });
        }
        Ok(Some(value))
    }

    /// An unquoted key such as `name`, `$id`, `5` or `null`: its text as written.
    fn bare_key(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.text[self.pos..].chars().next() {
            if !(is_word_char(c) || c == '$') {
                break;
            }
            self.pos += c.len_utf8();
        }
        let key = self.text[start..self.pos].to_owned();
        let path = self.path().field(&key).0;
        self.repairs.push(Repair::QuotedKey { path });
        key
    }
}

/// What a string is, when it is a key.
const KEY: &str = "a key";

/// Words that are JSON or Python literals, or a number's name, in some case: never bare strings.
const LITERAL_LIKE: &[&str] = &[
    "true",
    "false",
    "null",
    "none",
    "nil",
    "nan",
    "inf",
    "infinity",
    "undefined",
];

/// What an unquoted key may start with: a letter, `_`, `$`, a digit or `-` (`{5: "b"}`).
fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-' || b >= 0x80
}

/// The bytes of an unquoted key, for looking ahead (non-ASCII counts as a letter).
fn is_key_byte(b: u8) -> bool {
    is_key_start(b) || b == b'.'
}

/// A character of a bare word or key: a letter or digit (any script), `_`, `-`, `.`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}
