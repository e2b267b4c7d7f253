//! json (serializer id 3), in the dialect of Python's `json` module as
//! Pyro5 uses it: `", "` and `": "` separators, UTF-8 text (not `\u`
//! escapes), Python's `repr` of floats, and `NaN`, `Infinity`,
//! `-Infinity`, which strict JSON lacks.
//!
//! Bytes travel as serpent's `{"data": base64, "encoding": "base64"}`
//! dict and are read back into bytes. Integers of any size are written and
//! read as digits (never a rounded float). As in Pyro5, tuples, sets and
//! frozensets become arrays, and complex numbers cannot be sent.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pyrolab_plugin_api::Value;
use pyrolab_plugin_api::value::BigInt;

use super::serializer::{MAX_DEPTH, SerializeError, Serializer, bytes_from_dict, id};

/// The json serializer.
pub struct Json;

impl Serializer for Json {
    fn id(&self) -> u8 {
        id::JSON
    }

    fn name(&self) -> &'static str {
        "json"
    }

    fn serialize_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        let mut text = String::new();
        write_value(&mut text, value, 0)?;
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn deserialize(&self, data: &[u8]) -> Result<Value, SerializeError> {
        let text = std::str::from_utf8(data)
            .map_err(|err| SerializeError::new(format!("json data is not UTF-8: {err}")))?;
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
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Str(s) => write_str(out, s),
        Value::Bytes(b) => {
            out.push_str("{\"data\": \"");
            out.push_str(&BASE64.encode(b));
            out.push_str("\", \"encoding\": \"base64\"}");
        }
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(']');
        }
        Value::BigInt(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Complex(_) => {
            return Err(SerializeError::new(
                "json cannot carry complex numbers (Pyro5's json serializer cannot either): use serpent, msgpack or marshal",
            ));
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(out, key)?;
                out.push_str(": ");
                write_value(out, value, depth + 1)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// JSON keys are strings; Python's json turns numbers, booleans and None
/// into their text, and refuses anything else.
fn write_key(out: &mut String, key: &Value) -> Result<(), SerializeError> {
    match key {
        Value::Str(s) => write_str(out, s),
        Value::Int(i) => write_str(out, &i.to_string()),
        Value::BigInt(n) => write_str(out, &n.to_string()),
        Value::Float(f) => {
            let mut text = String::new();
            write_float(&mut text, *f);
            write_str(out, &text);
        }
        Value::Bool(b) => write_str(out, if *b { "true" } else { "false" }),
        Value::Null => write_str(out, "null"),
        other => {
            return Err(SerializeError::new(format!(
                "json map keys must be strings, numbers, booleans or None, not {}",
                other.type_name()
            )));
        }
    }
    Ok(())
}

fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        super::serpent::write_float(out, f);
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> SerializeError {
        SerializeError::new(format!("invalid json at byte {}: {message}", self.at))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect_word(&mut self, word: &str, value: Value) -> Result<Value, SerializeError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("unexpected characters"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SerializeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested more than {MAX_DEPTH} deep")));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of data")),
            Some(b'n') => self.expect_word("null", Value::Null),
            Some(b't') => self.expect_word("true", Value::Bool(true)),
            Some(b'f') => self.expect_word("false", Value::Bool(false)),
            Some(b'N') => self.expect_word("NaN", Value::Float(f64::NAN)),
            Some(b'I') => self.expect_word("Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.text[self.at..].starts_with("-Infinity") => {
                self.expect_word("-Infinity", Value::Float(f64::NEG_INFINITY))
            }
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => self.array(depth),
            Some(b'{') => self.object(depth),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("unexpected character")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, SerializeError> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::List(items));
        }
        loop {
            self.skip_space();
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::List(items));
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SerializeError> {
        self.at += 1;
        let mut entries = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Map(entries));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.at += 1;
            self.skip_space();
            let value = self.value(depth + 1)?;
            entries.push((Value::Str(key), value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return bytes_dict(entries);
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, SerializeError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let mut float = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => {}
                b'.' | b'e' | b'E' => float = true,
                b'+' | b'-' if matches!(self.bytes[self.at - 1], b'e' | b'E') => {}
                _ => break,
            }
            self.at += 1;
        }
        let token = &self.text[start..self.at];
        if float {
            return token
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| self.error(&format!("invalid number {token:?}")));
        }
        if let Ok(small) = token.parse::<i64>() {
            return Ok(Value::Int(small));
        }
        token
            .parse::<BigInt>()
            .map(Value::integer)
            .map_err(|err| self.error(&format!("invalid number {token:?}: {err}")))
    }

    fn string(&mut self) -> Result<String, SerializeError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(end) = rest.find(['"', '\\']) else {
                return Err(self.error("unterminated string"));
            };
            out.push_str(&rest[..end]);
            self.at += end;
            if self.bytes[self.at] == b'"' {
                self.at += 1;
                return Ok(out);
            }
            self.at += 1;
            let escape = self
                .peek()
                .ok_or_else(|| self.error("unterminated string"))?;
            self.at += 1;
            match escape {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\x08'),
                b'f' => out.push('\x0c'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let high = self.hex4()?;
                    let code = if (0xd800..0xdc00).contains(&high)
                        && self.text[self.at..].starts_with("\\u")
                    {
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..0xe000).contains(&low) {
                            return Err(self.error("invalid surrogate pair"));
                        }
                        0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                    } else {
                        high
                    };
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                _ => return Err(self.error("invalid escape")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SerializeError> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.at += 4;
        Ok(code)
    }
}

/// serpent's bytes dict, read back into bytes.
fn bytes_dict(entries: Vec<(Value, Value)>) -> Result<Value, SerializeError> {
    bytes_from_dict(&entries).unwrap_or(Ok(Value::Map(entries)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(value: &Value) -> String {
        String::from_utf8(Json.serialize(value).unwrap()).unwrap()
    }

    fn read(text: &str) -> Result<Value, SerializeError> {
        Json.deserialize(text.as_bytes())
    }

    #[test]
    fn writes_what_pythons_json_writes() {
        let value = Value::List(vec![
            1.into(),
            Value::List(vec![2.into(), 3.into()]),
            Value::Map(vec![("x".into(), 4.into())]),
        ]);
        assert_eq!(write(&value), r#"[1, [2, 3], {"x": 4}]"#);
        assert_eq!(write(&Value::from("s€\n\"")), "\"s€\\n\\\"\"");
        assert_eq!(write(&Value::Float(f64::NAN)), "NaN");
        assert_eq!(write(&Value::Float(-f64::INFINITY)), "-Infinity");
        assert_eq!(write(&Value::Float(1e16)), "1e+16");
        let call =
            crate::wire::call::test_payload(&Json, "thing", "add", &[1.into(), 2.into()], &[]);
        assert_eq!(
            call,
            br#"{"object": "thing", "method": "add", "params": [1, 2], "kwargs": {}}"#
        );
    }

    #[test]
    fn reads_captured_payloads() {
        let kw =
            read(r#"{"object": "thing", "method": "kw", "params": [1, 2, 3], "kwargs": {"x": 4}}"#)
                .unwrap();
        assert_eq!(
            kw.get("params"),
            Some(&Value::List(vec![1.into(), 2.into(), 3.into()]))
        );
        let echo = read(r#"[1, 2.5, "s€", null, true, [1, 2], {"k": [1]}, [3, 4]]"#).unwrap();
        assert_eq!(echo.as_list().unwrap()[2], Value::from("s€"));
        let big = read(r#"[1180591620717411303424, -1267650600228229401496703205376]"#).unwrap();
        assert_eq!(
            big.to_string(),
            "[1180591620717411303424, -1267650600228229401496703205376]"
        );
        let err = read(&"9".repeat(5000)).unwrap_err();
        assert!(err.to_string().contains("4300 digits"), "{err}");
        assert!(read("-").is_err());
        assert_eq!(read(r#""\ud83d\ude00""#).unwrap(), Value::from("😀"));
        assert!(read("NaN").unwrap().as_float().unwrap().is_nan());
        assert_eq!(read("-Infinity").unwrap(), Value::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn values_and_bytes_round_trip() {
        let value = Value::Map(vec![
            ("bytes".into(), Value::Bytes(vec![0, 1, 255])),
            (
                "list".into(),
                Value::List(vec![Value::Null, 2.5.into(), "x".into()]),
            ),
        ]);
        assert_eq!(read(&write(&value)).unwrap(), value);
        let err = Json
            .serialize(&Value::Map(vec![(Value::List(vec![]), 1.into())]))
            .unwrap_err();
        assert!(err.to_string().contains("keys"), "{err}");
    }

    #[test]
    fn python_only_kinds_are_written_as_pyro5_writes_them() {
        let value = Value::List(vec![
            Value::Tuple(vec![1.into()]),
            Value::Set(vec![2.into()]),
            Value::FrozenSet(vec![]),
            Value::BigInt("1180591620717411303424".parse().unwrap()),
        ]);
        assert_eq!(write(&value), "[[1], [2], [], 1180591620717411303424]");
        let complex = Value::Complex(pyrolab_plugin_api::Complex::new(1.0, 2.0));
        let err = Json.serialize(&complex).unwrap_err();
        assert!(err.to_string().contains("complex"), "{err}");
    }

    #[test]
    fn malformed_input_is_an_error_without_panicking() {
        let valid = r#"{"object": "thing", "method": "kw", "params": [1, 2.5e3, "a\"b\u00e9"], "kwargs": null}"#;
        for end in 0..valid.len() {
            if valid.is_char_boundary(end) {
                let _ = read(&valid[..end]);
            }
        }
        assert!(
            read(&"[".repeat(10_000))
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
        let alphabet = b"[]{},:\"\\ 0123456789.eE-+nulltruefalseNaNInfinity";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
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
            let _ = Json.deserialize(&bytes);
        }
    }
}
