//! serpent (serializer id 1): Python literal text, the serializer Pyro5
//! clients use unless told otherwise.
//!
//! The writer produces what Python's serpent library writes (a
//! `# serpent utf-8 python3.2` header line, then a compact literal with
//! Python's `repr` of strings and floats), so stock clients parse it; the
//! parser reads everything serpent and `ast.literal_eval` produce for the
//! types in [`super::serializer`]'s mapping. serpent keeps tuples, sets
//! (a frozenset is written as a set, an empty set as `()`), integers of
//! any size and complex numbers. Three of its encodings are turned back
//! into what they stand for: `{'data': ..., 'encoding': 'base64'}` becomes
//! bytes, `{'__class__': 'float', 'value': 'nan'}` a float, and
//! `{'__class__': 'complex', 'real': .., 'imag': ..}` (a complex number
//! with a NaN part) a complex number.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pyrolab_plugin_api::Value;
use pyrolab_plugin_api::value::{BigInt, Complex};

use super::serializer::{MAX_DEPTH, SerializeError, Serializer, bytes_from_dict, id};

/// The serpent serializer.
pub struct Serpent;

const HEADER: &str = "# serpent utf-8 python3.2\n";

impl Serializer for Serpent {
    fn id(&self) -> u8 {
        id::SERPENT
    }

    fn name(&self) -> &'static str {
        "serpent"
    }

    fn serialize_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        let mut text = String::with_capacity(64);
        text.push_str(HEADER);
        write_value(&mut text, value, 0)?;
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn deserialize(&self, data: &[u8]) -> Result<Value, SerializeError> {
        let text = std::str::from_utf8(data)
            .map_err(|err| SerializeError::new(format!("serpent data is not UTF-8: {err}")))?;
        let mut parser = Parser {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        parser.skip_space();
        let value = parser.value(0)?;
        parser.skip_space();
        if parser.at != parser.bytes.len() {
            return Err(parser.error("unexpected text after the value"));
        }
        Ok(value)
    }
}

fn write_value(out: &mut String, value: &Value, depth: usize) -> Result<(), SerializeError> {
    if depth > MAX_DEPTH {
        return Err(SerializeError::new(format!(
            "value nested more than {MAX_DEPTH} deep"
        )));
    }
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_str(out, s),
        Value::Bytes(b) => {
            out.push_str("{'data':'");
            out.push_str(&BASE64.encode(b));
            out.push_str("','encoding':'base64'}");
        }
        Value::List(items) => write_items(out, '[', items, ']', depth)?,
        Value::Tuple(items) => {
            write_items(out, '(', items, ')', depth)?;
            if items.len() == 1 {
                out.insert(out.len() - 1, ',');
            }
        }
        // No literal writes an empty set: serpent writes `()`.
        Value::Set(items) | Value::FrozenSet(items) if items.is_empty() => out.push_str("()"),
        Value::Set(items) | Value::FrozenSet(items) => write_items(out, '{', items, '}', depth)?,
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, key, depth + 1)?;
                out.push(':');
                write_value(out, value, depth + 1)?;
            }
            out.push('}');
        }
        Value::BigInt(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Complex(c) => write_complex(out, *c),
    }
    Ok(())
}

fn write_items(
    out: &mut String,
    open: char,
    items: &[Value],
    close: char,
    depth: usize,
) -> Result<(), SerializeError> {
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(out, item, depth + 1)?;
    }
    out.push(close);
    Ok(())
}

/// A complex number as serpent writes it: `(1.0+2.0j)`, or, with a NaN
/// part (which no literal can hold), a class dict.
fn write_complex(out: &mut String, c: Complex) {
    if c.re.is_nan() || c.im.is_nan() {
        out.push_str("{'__class__':'complex','real':");
        write_float(out, c.re);
        out.push_str(",'imag':");
        write_float(out, c.im);
        out.push('}');
        return;
    }
    out.push('(');
    write_float(out, c.re);
    if c.im.is_sign_positive() {
        out.push('+');
    }
    write_float(out, c.im);
    out.push_str("j)");
}

/// A float as Python's `repr` writes it; NaN and infinities as serpent
/// writes them.
pub(super) fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("{'__class__':'float','value':'nan'}");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "1e30000" } else { "-1e30000" });
        return;
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, like Python.
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is a number");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exponent) {
        // Fixed notation, with at least one decimal.
        let point = exponent + 1;
        if point <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point as usize - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.abs());
    }
}

/// A string as Python's `repr` writes it.
fn write_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                let code = c as u32;
                let _ = if code <= 0xff {
                    write!(out, "\\x{code:02x}")
                } else if code <= 0xffff {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> SerializeError {
        SerializeError::new(format!(
            "invalid serpent data at byte {}: {message}",
            self.at
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips white space and `#` comments (the header line).
    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.at += 1,
                b'\\' if self.bytes.get(self.at + 1) == Some(&b'\n') => self.at += 2,
                b'#' => {
                    while let Some(b) = self.peek() {
                        self.at += 1;
                        if b == b'\n' {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SerializeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested more than {MAX_DEPTH} deep")));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of data")),
            Some(b'[') => {
                self.at += 1;
                self.sequence(b']', depth).map(Value::List)
            }
            Some(b'(') => self.tuple(depth),
            Some(b'{') => self.braces(depth),
            Some(b'\'' | b'"') => self.string(false).map(Value::Str),
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number_or_complex(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.word(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    /// Items up to `close`, commas between, a trailing comma allowed.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, SerializeError> {
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => {}
                _ => return Err(self.error("expected ',' or the end of the sequence")),
            }
        }
    }

    /// `()`, `(x,)`, `(x, y)`, or a parenthesized `(x)` (such as a complex
    /// number, `(1.0+2.0j)`).
    fn tuple(&mut self, depth: usize) -> Result<Value, SerializeError> {
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(b')') {
            self.at += 1;
            return Ok(Value::Tuple(Vec::new()));
        }
        let first = self.value(depth + 1)?;
        self.skip_space();
        match self.peek() {
            Some(b')') => {
                self.at += 1;
                Ok(first)
            }
            Some(b',') => {
                self.at += 1;
                let mut items = vec![first];
                items.extend(self.sequence(b')', depth)?);
                Ok(Value::Tuple(items))
            }
            _ => Err(self.error("expected ',' or ')'")),
        }
    }

    /// A dict or a set.
    fn braces(&mut self, depth: usize) -> Result<Value, SerializeError> {
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Map(Vec::new()));
        }
        let first = self.value(depth + 1)?;
        self.skip_space();
        if self.peek() != Some(b':') {
            // A set.
            let mut items = vec![first];
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    items.extend(self.sequence(b'}', depth)?);
                }
                Some(b'}') => self.at += 1,
                _ => return Err(self.error("expected ',' or '}'")),
            }
            return Ok(Value::Set(items));
        }
        let mut entries = Vec::new();
        let mut key = first;
        loop {
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after a dict key"));
            }
            self.at += 1;
            self.skip_space();
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_space();
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                        break;
                    }
                    key = self.value(depth + 1)?;
                    self.skip_space();
                }
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        special_dict(entries)
    }

    fn word(&mut self) -> Result<Value, SerializeError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.at += 1;
        }
        let word = &self.text[start..self.at];
        match word {
            "None" => Ok(Value::Null),
            "True" => Ok(Value::Bool(true)),
            "False" => Ok(Value::Bool(false)),
            _ if matches!(self.peek(), Some(b'\'' | b'"')) => {
                let prefix = word.to_ascii_lowercase();
                let raw = prefix.contains('r');
                match prefix.as_str() {
                    "b" | "br" | "rb" => self
                        .string(raw)
                        .map(|s| Value::Bytes(s.chars().map(|c| c as u32 as u8).collect())),
                    "r" | "u" => self.string(raw).map(Value::Str),
                    _ => Err(self.error(&format!("unknown string prefix {word:?}"))),
                }
            }
            _ => Err(self.error(&format!(
                "unsupported name {word:?} (only None, True and False)"
            ))),
        }
    }

    /// A number, or a complex literal `re+imj` / `re-imj` (as serpent
    /// writes inside parentheses).
    fn number_or_complex(&mut self) -> Result<Value, SerializeError> {
        let first = self.number()?;
        let Some(real) = first
            .as_float()
            .filter(|_| !matches!(first, Value::Complex(_)))
        else {
            return Ok(first);
        };
        let resume = self.at;
        self.skip_space();
        if !matches!(self.peek(), Some(b'+' | b'-')) {
            self.at = resume;
            return Ok(first);
        }
        let sign_at = self.at;
        self.at += 1;
        self.skip_space();
        if !matches!(self.peek(), Some(b'.' | b'0'..=b'9')) {
            return Err(self.error("expected a number after '+' or '-'"));
        }
        let negative = self.bytes[sign_at] == b'-';
        match self.number()? {
            Value::Complex(Complex { im, .. }) => Ok(Value::Complex(Complex {
                re: real,
                im: if negative { -im } else { im },
            })),
            _ => Err(self.error("only a complex number's real and imaginary parts may be added")),
        }
    }

    fn number(&mut self) -> Result<Value, SerializeError> {
        let start = self.at;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.at += 1;
        }
        while let Some(c) = self.peek() {
            let sign_in_exponent = matches!(c, b'+' | b'-')
                && matches!(self.bytes[self.at - 1], b'e' | b'E')
                && !self.text[start..self.at].starts_with("0x");
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || sign_in_exponent {
                self.at += 1;
            } else {
                break;
            }
        }
        let token: String = self.text[start..self.at]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        if let Some(imaginary) = token.strip_suffix(['j', 'J']) {
            return imaginary
                .parse::<f64>()
                .map(|im| Value::Complex(Complex { re: 0.0, im }))
                .map_err(|_| self.error(&format!("invalid number {token:?}")));
        }
        let (negative, digits) = match token.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, token.strip_prefix('+').unwrap_or(&token)),
        };
        let radix = match digits.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("0x") => Some(16),
            Some("0o") => Some(8),
            Some("0b") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            return parse_int(&digits[2..], radix, negative)
                .ok_or_else(|| self.too_large_or_bad(&token));
        }
        if digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty() {
            if let Some(small) = parse_int(digits, 10, negative) {
                return Ok(small);
            }
            return token
                .parse::<BigInt>()
                .map(Value::integer)
                .map_err(|err| self.error(err.message()));
        }
        token
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.error(&format!("invalid number {token:?}")))
    }

    fn too_large_or_bad(&self, token: &str) -> SerializeError {
        self.error(&format!(
            "integer {token} is too large in this base (write integers beyond 64 bits in decimal)"
        ))
    }

    /// A quoted string (the cursor is on the opening quote).
    fn string(&mut self, raw: bool) -> Result<String, SerializeError> {
        let quote = self.bytes[self.at];
        let triple = self.bytes.get(self.at..self.at + 3) == Some(&[quote; 3]);
        self.at += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.at..].chars().next() else {
                return Err(self.error("unterminated string"));
            };
            if c as u32 == u32::from(quote) {
                if !triple {
                    self.at += 1;
                    return Ok(out);
                }
                if self.bytes.get(self.at..self.at + 3) == Some(&[quote; 3]) {
                    self.at += 3;
                    return Ok(out);
                }
            }
            if c == '\n' && !triple {
                return Err(self.error("unterminated string"));
            }
            self.at += c.len_utf8();
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(escaped) = self.text[self.at..].chars().next() else {
                return Err(self.error("unterminated string"));
            };
            if raw {
                out.push('\\');
                out.push(escaped);
                self.at += escaped.len_utf8();
                continue;
            }
            self.at += escaped.len_utf8();
            match escaped {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                'x' => out.push(self.hex_escape(2)?),
                'u' => out.push(self.hex_escape(4)?),
                'U' => out.push(self.hex_escape(8)?),
                '0'..='7' => {
                    let mut code = escaped.to_digit(8).expect("octal digit");
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                code = code * 8 + u32::from(d - b'0');
                                self.at += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(
                        char::from_u32(code).ok_or_else(|| self.error("invalid octal escape"))?,
                    );
                }
                other => {
                    // Python keeps unknown escapes as written.
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex_escape(&mut self, len: usize) -> Result<char, SerializeError> {
        let digits = self
            .text
            .get(self.at..self.at + len)
            .ok_or_else(|| self.error("truncated escape"))?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid escape"))?;
        self.at += len;
        char::from_u32(code).ok_or_else(|| self.error("escape is not a valid character"))
    }
}

fn parse_int(digits: &str, radix: u32, negative: bool) -> Option<Value> {
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some(Value::Int(value))
}

/// serpent's encodings of bytes, of non-finite floats and of complex
/// numbers with a NaN part, read back.
fn special_dict(entries: Vec<(Value, Value)>) -> Result<Value, SerializeError> {
    if let Some(bytes) = bytes_from_dict(&entries) {
        return bytes;
    }
    let lookup = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    if entries.len() == 2 && lookup("__class__").and_then(Value::as_str) == Some("float") {
        if let Some(text) = lookup("value").and_then(Value::as_str) {
            let value = match text {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => other
                    .parse()
                    .map_err(|_| SerializeError::new(format!("invalid float {other:?}")))?,
            };
            return Ok(Value::Float(value));
        }
    }
    if entries.len() == 3 && lookup("__class__").and_then(Value::as_str) == Some("complex") {
        let part = |key: &str| match lookup(key) {
            Some(Value::Int(i)) => Some(*i as f64),
            Some(Value::Float(f)) => Some(*f),
            _ => None,
        };
        if let (Some(re), Some(im)) = (part("real"), part("imag")) {
            return Ok(Value::Complex(Complex { re, im }));
        }
    }
    Ok(Value::Map(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(value: &Value) -> String {
        String::from_utf8(Serpent.serialize(value).unwrap()).unwrap()
    }

    fn read(text: &str) -> Result<Value, SerializeError> {
        Serpent.deserialize(text.as_bytes())
    }

    #[test]
    fn writes_what_python_serpent_writes() {
        assert_eq!(write(&Value::Int(3)), "# serpent utf-8 python3.2\n3");
        let kw = Value::List(vec![
            1.into(),
            Value::List(vec![2.into(), 3.into()]),
            Value::Map(vec![("x".into(), 4.into())]),
        ]);
        assert_eq!(write(&kw), "# serpent utf-8 python3.2\n[1,[2,3],{'x':4}]");
        assert_eq!(
            write(&Value::Bytes(b"\x00\x01bytes".to_vec())),
            "# serpent utf-8 python3.2\n{'data':'AAFieXRlcw==','encoding':'base64'}"
        );
    }

    #[test]
    fn floats_follow_pythons_repr() {
        for (value, text) in [
            (2.5, "2.5"),
            (2.0, "2.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-1.5e-7, "-1.5e-07"),
            (123456.789, "123456.789"),
            (1e100, "1e+100"),
            (f64::INFINITY, "1e30000"),
        ] {
            let mut out = String::new();
            write_float(&mut out, value);
            assert_eq!(out, text, "{value}");
        }
    }

    #[test]
    fn strings_follow_pythons_repr() {
        for (value, text) in [
            ("plain", "'plain'"),
            ("it's", "\"it's\""),
            ("both ' and \"", "'both \\' and \"'"),
            ("tab\tnew\nline\\", "'tab\\tnew\\nline\\\\'"),
            ("\u{1}", "'\\x01'"),
            ("héllo ✓", "'héllo ✓'"),
        ] {
            let mut out = String::new();
            write_str(&mut out, value);
            assert_eq!(out, text);
            assert_eq!(read(&out).unwrap(), Value::from(value));
        }
    }

    #[test]
    fn reads_captured_calls() {
        let call = read("# serpent utf-8 python3.2\n('thing','kw',(1,2,3),{'x':4})").unwrap();
        assert_eq!(
            call,
            Value::Tuple(vec![
                "thing".into(),
                "kw".into(),
                Value::Tuple(vec![1.into(), 2.into(), 3.into()]),
                Value::Map(vec![("x".into(), 4.into())]),
            ])
        );
        let getattr =
            read("# serpent utf-8 python3.2\n('thing','__getattr__',('value',),None)").unwrap();
        assert_eq!(
            getattr.as_list().unwrap()[2],
            Value::Tuple(vec!["value".into()])
        );
        let batch = read("# serpent utf-8 python3.2\n('thing','<batch>',[('add',(1,1),{}),('div',(1,0),{})],None)").unwrap();
        assert_eq!(batch.as_list().unwrap()[2].as_list().unwrap().len(), 2);
    }

    #[test]
    fn reads_every_python_literal_kind() {
        let echo = read(
            "# serpent utf-8 python3.2\n([1,2.5,'s',None,True,(1,2),{'k':[1]},{3,4},{'data': 'AAFieXRlcw==', 'encoding': 'base64'}],)",
        )
        .unwrap();
        let items = echo.as_list().unwrap()[0].as_list().unwrap().to_vec();
        assert_eq!(items[5], Value::Tuple(vec![1.into(), 2.into()]));
        assert_eq!(items[7], Value::Set(vec![3.into(), 4.into()]));
        assert_eq!(items[8], Value::Bytes(b"\x00\x01bytes".to_vec()));
        assert_eq!(read("0x1F").unwrap(), Value::Int(31));
        assert_eq!(read("-0o17").unwrap(), Value::Int(-15));
        assert_eq!(read("1_000").unwrap(), Value::Int(1000));
        assert_eq!(read("-9223372036854775808").unwrap(), Value::Int(i64::MIN));
        assert_eq!(read(".5").unwrap(), Value::Float(0.5));
        assert_eq!(read("-1e30000").unwrap(), Value::Float(f64::NEG_INFINITY));
        assert!(
            read("{'__class__':'float','value':'nan'}")
                .unwrap()
                .as_float()
                .unwrap()
                .is_nan()
        );
        assert_eq!(read("'''a\nb'''").unwrap(), Value::from("a\nb"));
        assert_eq!(
            read(r"'\x41\u00e9\U0001F600\101'").unwrap(),
            Value::from("Aé😀A")
        );
        assert_eq!(
            read("b'\\x00ab'").unwrap(),
            Value::Bytes(vec![0, b'a', b'b'])
        );
        assert_eq!(
            read("[1,2,]").unwrap(),
            Value::List(vec![1.into(), 2.into()])
        );
        assert_eq!(read("{}").unwrap(), Value::Map(vec![]));
    }

    #[test]
    fn python_only_kinds_are_read_as_themselves() {
        let big = |text: &str| Value::BigInt(text.parse().unwrap());
        assert_eq!(
            read("1180591620717411303424").unwrap(),
            big("1180591620717411303424")
        );
        assert_eq!(
            read("-1267650600228229401496703205376").unwrap(),
            big("-1267650600228229401496703205376")
        );
        assert_eq!(
            read("-9223372036854775809").unwrap(),
            big("-9223372036854775809")
        );
        let complex = |re, im| Value::Complex(Complex { re, im });
        assert_eq!(
            read("[(1.0+2.0j)]").unwrap(),
            Value::List(vec![complex(1.0, 2.0)])
        );
        assert_eq!(read("(1.5-0.5j)").unwrap(), complex(1.5, -0.5));
        assert_eq!(read("2j").unwrap(), complex(0.0, 2.0));
        assert_eq!(
            read("(1e30000-1e30000j)").unwrap(),
            complex(f64::INFINITY, f64::NEG_INFINITY)
        );
        assert_eq!(read("(1 + 2j)").unwrap(), complex(1.0, 2.0));
        let nan =
            read("{'__class__':'complex','real':1.0,'imag':{'__class__':'float','value':'nan'}}")
                .unwrap();
        assert!(matches!(nan, Value::Complex(c) if c.re == 1.0 && c.im.is_nan()));
        assert_eq!(read("(1,)").unwrap(), Value::Tuple(vec![1.into()]));
        assert_eq!(read("()").unwrap(), Value::Tuple(vec![]));
        assert_eq!(read("(1)").unwrap(), Value::Int(1));
        assert_eq!(read("{'a'}").unwrap(), Value::Set(vec!["a".into()]));
        assert!(read("1-2").is_err());
        assert!(read("(1+2)").is_err());
        assert!(
            read("0x1000000000000000000")
                .unwrap_err()
                .to_string()
                .contains("decimal")
        );
        assert!(
            read(&"9".repeat(5000))
                .unwrap_err()
                .to_string()
                .contains("4300 digits")
        );
    }

    #[test]
    fn python_only_kinds_are_written_as_serpent_writes_them() {
        let big: BigInt = "-1267650600228229401496703205376".parse().unwrap();
        for (value, text) in [
            (Value::Tuple(vec![1.into(), 2.into()]), "(1,2)"),
            (Value::Tuple(vec![1.into()]), "(1,)"),
            (Value::Tuple(vec![]), "()"),
            (Value::Set(vec![1.into(), 2.into()]), "{1,2}"),
            (Value::Set(vec![]), "()"),
            (Value::FrozenSet(vec!["a".into()]), "{'a'}"),
            (Value::BigInt(big), "-1267650600228229401496703205376"),
            (Value::Complex(Complex::new(1.0, 2.0)), "(1.0+2.0j)"),
            (Value::Complex(Complex::new(1.0, -0.0)), "(1.0-0.0j)"),
            (
                Value::Complex(Complex::new(0.0, f64::INFINITY)),
                "(0.0+1e30000j)",
            ),
            (
                Value::Complex(Complex::new(f64::NAN, 1.0)),
                "{'__class__':'complex','real':{'__class__':'float','value':'nan'},'imag':1.0}",
            ),
        ] {
            assert_eq!(write(&value), format!("{HEADER}{text}"), "{value:?}");
        }
    }

    #[test]
    fn malformed_input_is_an_error_without_panicking() {
        let valid = "# serpent utf-8 python3.2\n('thing','echo',([1,2.5,'s',None,True,(1,2),{'k':[1]}],),{'x':b'ab'})";
        for end in 0..valid.len() {
            if valid.is_char_boundary(end) {
                let _ = read(&valid[..end]);
            }
        }
        let deep = "[".repeat(10_000);
        assert!(read(&deep).unwrap_err().to_string().contains("nested"));
        let alphabet = b"()[]{},:'\"\\ 0123456789.eEjxNoneTrueFalse-+#\nb";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = Serpent.deserialize(&bytes);
        }
        assert!(Serpent.deserialize(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn values_round_trip() {
        let value = Value::Map(vec![
            ("none".into(), Value::Null),
            (
                "list".into(),
                Value::List(vec![1.into(), (-2.5).into(), "x'y\"z".into()]),
            ),
            (Value::Int(7), Value::Bytes(vec![1, 2, 255])),
            (
                "nested".into(),
                Value::Map(vec![("deep".into(), Value::List(vec![]))]),
            ),
        ]);
        assert_eq!(read(&write(&value)).unwrap(), value);
    }

    #[test]
    fn calls_are_written_as_pyro5_writes_them() {
        let call = crate::wire::call::test_payload(
            &Serpent,
            "thing",
            "kw",
            &[1.into(), 2.into(), 3.into()],
            &[("x".into(), 4.into())],
        );
        assert_eq!(
            call,
            b"# serpent utf-8 python3.2\n('thing','kw',(1,2,3),{'x':4})"
        );
        let single = crate::wire::call::test_payload(&Serpent, "thing", "fire", &[1.into()], &[]);
        assert_eq!(
            single,
            b"# serpent utf-8 python3.2\n('thing','fire',(1,),{})"
        );
    }
}
