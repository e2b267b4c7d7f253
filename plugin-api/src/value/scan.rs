//! Working with encoded values without decoding them: finding the items of
//! an encoded list, and building a map from already-encoded values.
//!
//! A host uses these to hand a client's arguments to a driver as they
//! arrived: the bytes of a megabyte-long byte string are then copied once,
//! instead of being decoded into a [`Value`](super::Value) and encoded
//! again.
//!
//! The scanner follows the layout documented in [`encode`](super::encode)
//! exactly. It checks lengths and nesting, not contents (UTF-8, varint
//! overflow): whoever finally decodes an item still refuses a malformed
//! one.

use super::ValueError;
use super::wire::{MAX_DEPTH, push_varint, tag};

/// The encodings of the items of an encoded list or tuple, in order,
/// without decoding them. Each slice is a complete encoded value.
///
/// # Errors
///
/// The bytes are not an encoded list or tuple, or an item is truncated,
/// nested too deeply or of an unknown kind, or bytes follow the list.
pub fn split_list(bytes: &[u8]) -> Result<Vec<&[u8]>, ValueError> {
    let mut scanner = Scanner { bytes, at: 0 };
    let kind = scanner.varint()?;
    if kind != u64::from(tag::LIST) && kind != u64::from(tag::TUPLE) {
        return Err(malformed("expected a list"));
    }
    let count = scanner.varint()?;
    // Every item takes at least one byte: a count larger than what is left
    // is a lie, and must not size an allocation.
    let mut items = Vec::with_capacity(count.min(scanner.remaining() as u64) as usize);
    for _ in 0..count {
        let start = scanner.at;
        scanner.skip_value(1)?;
        items.push(&bytes[start..scanner.at]);
    }
    if scanner.remaining() != 0 {
        return Err(malformed(format!(
            "{} trailing byte(s) after the value",
            scanner.remaining()
        )));
    }
    Ok(items)
}

/// The encodings of the items of an encoded list or tuple of exactly `N`
/// items, without decoding them or allocating; `None` for anything else
/// (another kind, another count, malformed or trailing bytes).
pub fn split_list_exact<const N: usize>(bytes: &[u8]) -> Option<[&[u8]; N]> {
    let mut scanner = Scanner { bytes, at: 0 };
    let kind = scanner.varint().ok()?;
    if kind != u64::from(tag::LIST) && kind != u64::from(tag::TUPLE) {
        return None;
    }
    if scanner.varint().ok()? != N as u64 {
        return None;
    }
    let mut items = [&bytes[..0]; N];
    for item in &mut items {
        let start = scanner.at;
        scanner.skip_value(1).ok()?;
        *item = &bytes[start..scanner.at];
    }
    (scanner.remaining() == 0).then_some(items)
}

/// The text of an encoded string, borrowed from the encoding; `None` for
/// any other value or a malformed one.
pub fn str_of(encoded: &[u8]) -> Option<&str> {
    let mut scanner = Scanner {
        bytes: encoded,
        at: 0,
    };
    if scanner.varint().ok()? != u64::from(tag::STR) {
        return None;
    }
    let len = scanner.varint().ok()?;
    let text = encoded.get(scanner.at..)?;
    if text.len() as u64 != len {
        return None;
    }
    std::str::from_utf8(text).ok()
}

/// The kind of an encoded value, read from its first byte: `"list"`,
/// `"dict"`, `"NoneType"`, ... (the names [`Value::type_name`] uses), or
/// `None` for an empty or unknown encoding.
///
/// [`Value::type_name`]: super::Value::type_name
pub fn kind_of(encoded: &[u8]) -> Option<&'static str> {
    let name = match *encoded.first()? {
        tag::NULL => "NoneType",
        tag::BOOL => "bool",
        tag::INT => "int",
        tag::FLOAT => "float",
        tag::STR => "str",
        tag::BYTES => "bytes",
        tag::LIST => "list",
        tag::MAP => "dict",
        tag::TUPLE => "tuple",
        tag::SET => "set",
        tag::FROZENSET => "frozenset",
        tag::BIGINT => "int",
        tag::COMPLEX => "complex",
        _ => return None,
    };
    Some(name)
}

/// The encoding of a map with string keys whose values are given already
/// encoded: the same bytes as encoding the map as a [`Value`].
///
/// [`Value`]: super::Value
pub fn encode_map_of_encoded(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let size: usize = entries
        .iter()
        .map(|(key, value)| 20 + key.len() + value.len())
        .sum();
    let mut out = Vec::with_capacity(2 * 10 + size);
    push_varint(&mut out, u64::from(tag::MAP));
    push_varint(&mut out, entries.len() as u64);
    for (key, value) in entries {
        push_varint(&mut out, u64::from(tag::STR));
        push_varint(&mut out, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Appends the start of an encoded list of `count` items, for a caller
/// that appends the items' encodings after it (a host framing a call
/// whose names it holds as `&str`, say).
pub fn encode_list_start_into(count: usize, out: &mut Vec<u8>) {
    push_varint(out, u64::from(tag::LIST));
    push_varint(out, count as u64);
}

/// Appends the start of an encoded map of `count` entries, for a caller
/// that appends each key's and value's encoding after it.
pub fn encode_map_start_into(count: usize, out: &mut Vec<u8>) {
    push_varint(out, u64::from(tag::MAP));
    push_varint(out, count as u64);
}

/// Appends the encoding of a string, without making a `Value` of it.
pub fn encode_str_into(text: &str, out: &mut Vec<u8>) {
    push_varint(out, u64::from(tag::STR));
    push_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Appends the start of an encoded byte string of `len` bytes, for a
/// caller that sends or hands over its contents apart.
pub fn encode_bytes_start_into(len: usize, out: &mut Vec<u8>) {
    push_varint(out, u64::from(tag::BYTES));
    push_varint(out, len as u64);
}

fn malformed(detail: impl std::fmt::Display) -> ValueError {
    ValueError::new(format!("malformed value encoding: {detail}"))
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn skip(&mut self, len: u64) -> Result<(), ValueError> {
        if len > self.remaining() as u64 {
            return Err(malformed("unexpected end of input"));
        }
        self.at += len as usize;
        Ok(())
    }

    /// A LEB128 varint of at most 10 bytes (a `u64`).
    fn varint(&mut self) -> Result<u64, ValueError> {
        // Tags, and most lengths and numbers, are one byte.
        if let Some(&byte) = self.bytes.get(self.at) {
            if byte < 0x80 {
                self.at += 1;
                return Ok(u64::from(byte));
            }
        }
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(malformed("unexpected end of input"));
            };
            self.at += 1;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint longer than 10 bytes"))
    }

    fn skip_value(&mut self, depth: usize) -> Result<(), ValueError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!(
                "lists and maps are nested more than {MAX_DEPTH} deep"
            )));
        }
        let kind = self.varint()?;
        match u8::try_from(kind).unwrap_or(u8::MAX) {
            tag::NULL => Ok(()),
            tag::BOOL => self.skip(1),
            tag::INT => self.varint().map(drop),
            tag::FLOAT => self.skip(8),
            tag::STR | tag::BYTES => {
                let len = self.varint()?;
                self.skip(len)
            }
            tag::LIST | tag::TUPLE | tag::SET | tag::FROZENSET => {
                for _ in 0..self.varint()? {
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            tag::BIGINT => {
                self.skip(1)?;
                let len = self.varint()?;
                self.skip(len)
            }
            tag::COMPLEX => self.skip(16),
            tag::MAP => {
                for _ in 0..self.varint()? {
                    self.skip_value(depth + 1)?;
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            _ => Err(malformed(format!("unknown value kind (tag {kind})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Value, decode, encode};

    fn sample_items() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-1 << 40),
            Value::Float(2.5),
            Value::from("ünïcode"),
            Value::Bytes(vec![9; 300]),
            Value::List(vec![Value::Int(1), Value::List(vec![])]),
            Value::Map(vec![
                (Value::Int(3), Value::from("x")),
                (Value::from("k"), Value::Map(vec![])),
            ]),
            Value::Tuple(vec![Value::Int(1)]),
            Value::Set(vec![Value::from("a")]),
            Value::FrozenSet(vec![]),
            Value::BigInt("-1267650600228229401496703205376".parse().unwrap()),
            Value::Complex(crate::value::Complex::new(1.0, 2.0)),
        ]
    }

    #[test]
    fn split_list_finds_each_item_encoding() {
        let items = sample_items();
        let encoded = encode(&Value::List(items.clone()));
        let parts = split_list(&encoded).unwrap();
        assert_eq!(parts.len(), items.len());
        for (part, item) in parts.iter().zip(&items) {
            assert_eq!(*part, encode(item).as_slice());
            assert_eq!(kind_of(part), Some(item.type_name()));
        }
    }

    #[test]
    fn lists_and_strings_encode_piece_by_piece_as_whole_values_do() {
        let mut out = Vec::new();
        encode_list_start_into(2, &mut out);
        encode_str_into("ünï", &mut out);
        encode_map_start_into(1, &mut out);
        encode_str_into("k", &mut out);
        crate::value::encode_into(&Value::Int(5), &mut out);
        assert_eq!(
            out,
            encode(&Value::List(vec![
                "ünï".into(),
                Value::Map(vec![("k".into(), Value::Int(5))])
            ]))
        );
    }

    #[test]
    fn exact_splits_agree_with_split_list() {
        let items = sample_items();
        let encoded = encode(&Value::List(items[..4].to_vec()));
        let parts: [&[u8]; 4] = split_list_exact(&encoded).unwrap();
        assert_eq!(parts.to_vec(), split_list(&encoded).unwrap());
        assert!(split_list_exact::<3>(&encoded).is_none());
        assert!(split_list_exact::<4>(&encoded[..encoded.len() - 1]).is_none());
        assert!(split_list_exact::<1>(&encode(&Value::Int(1))).is_none());
    }

    #[test]
    fn strings_are_read_in_place() {
        assert_eq!(str_of(&encode(&Value::from("sample"))), Some("sample"));
        assert_eq!(
            str_of(&encode(&Value::from("x".repeat(300)))).map(str::len),
            Some(300)
        );
        assert_eq!(str_of(&encode(&Value::Int(1))), None);
        assert_eq!(str_of(&[4, 2, b'a']), None);
        assert_eq!(str_of(&[4, 1, b'a', b'b']), None);
        assert_eq!(str_of(&[4, 1, 0xff]), None);
        assert_eq!(str_of(&[]), None);
    }

    #[test]
    fn map_of_encoded_values_matches_encoding_the_map() {
        let args = Value::List(sample_items());
        let kwargs = Value::Map(vec![(Value::from("speed"), Value::Int(3))]);
        let built =
            encode_map_of_encoded(&[("args", &encode(&args)), ("kwargs", &encode(&kwargs))]);
        let expected = Value::Map(vec![
            (Value::from("args"), args),
            (Value::from("kwargs"), kwargs),
        ]);
        assert_eq!(built, encode(&expected));
        assert_eq!(decode(&built).unwrap(), expected);
    }

    #[test]
    fn long_keys_use_multi_byte_lengths() {
        let key = "k".repeat(300);
        let built = encode_map_of_encoded(&[(&key, &encode(&Value::Null))]);
        assert_eq!(
            built,
            encode(&Value::Map(vec![(Value::from(key.as_str()), Value::Null)]))
        );
    }

    #[test]
    fn malformed_lists_are_errors() {
        let encoded = encode(&Value::List(sample_items()));
        for cut in 0..encoded.len() {
            assert!(split_list(&encoded[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(split_list(&trailing).is_err());
        assert!(split_list(&encode(&Value::Int(4))).is_err());
        // A count far beyond the input.
        assert!(split_list(&[6, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(split_list(&[6, 1, 99]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut value = Value::Null;
        for _ in 0..MAX_DEPTH + 5 {
            value = Value::List(vec![value]);
        }
        assert!(split_list(&encode(&value)).is_err());
    }

    #[test]
    fn random_input_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let encoded = encode(&Value::List(sample_items()));
        for round in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = encoded.clone();
            let at = (state as usize) % bytes.len();
            bytes[at] = (state >> 32) as u8;
            if round % 2 == 0 {
                bytes.truncate((state >> 40) as usize % (bytes.len() + 1));
            }
            if let Ok(parts) = split_list(&bytes) {
                // Whatever the scanner accepts, the decoder agrees on.
                if let Ok(Value::List(items)) = decode(&bytes) {
                    assert_eq!(parts.len(), items.len());
                }
            }
        }
    }
}
