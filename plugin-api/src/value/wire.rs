//! The compact binary encoding in which values cross the plugin boundary:
//! postcard's layout of an externally tagged enum, written and read here
//! directly (a serde round trip through postcard cost several times as
//! much for the small maps every call carries).
//!
//! Every value is its tag as a varint (LEB128), then its content; lengths
//! and counts are varints too.
//!
//! | tag | kind  | content                                              |
//! |-----|-------|------------------------------------------------------|
//! | 0   | Null  | nothing                                              |
//! | 1   | Bool  | one byte, 0 or 1                                     |
//! | 2   | Int   | zigzag varint `i64`                                  |
//! | 3   | Float | 8 bytes, little-endian `f64`                         |
//! | 4   | Str   | varint length, UTF-8 bytes                           |
//! | 5   | Bytes | varint length, bytes                                 |
//! | 6   | List  | varint count, that many values                       |
//! | 7   | Map   | varint count, that many pairs: key value, then value |
//! | 8   | Tuple | as List                                              |
//! | 9   | Set   | as List                                              |
//! | 10  | FrozenSet | as List                                          |
//! | 11  | BigInt | one byte, 1 if negative else 0; varint length, the magnitude's bytes, least significant first, no trailing zero byte |
//! | 12  | Complex | 8 + 8 bytes, little-endian `f64`: real, then imaginary |
//!
//! The tag numbers are FROZEN: plugins built against older versions of this
//! crate read and write them. New kinds may only be appended (13, 14, ...);
//! an existing tag must never be renumbered, removed or change its content.
//! Tags 8 to 12 came with pyrolab-plugin-api 0.1.1; a host does not send
//! them to drivers built against 0.1.0 (it lowers them; see docs/plugin-abi.md).

use super::{BigInt, Complex, Value, ValueError};
use crate::call::CallArgs;

/// How deeply lists and maps may nest in decoded input: deeper input is
/// refused rather than risking the stack.
pub(super) const MAX_DEPTH: usize = 128;

/// The frozen tag numbers (see the table above).
pub(super) mod tag {
    pub const NULL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const STR: u8 = 4;
    pub const BYTES: u8 = 5;
    pub const LIST: u8 = 6;
    pub const MAP: u8 = 7;
    pub const TUPLE: u8 = 8;
    pub const SET: u8 = 9;
    pub const FROZENSET: u8 = 10;
    pub const BIGINT: u8 = 11;
    pub const COMPLEX: u8 = 12;
}

/// Encodes a value in the wire format.
///
/// Byte strings are copied once, straight into the output buffer, which is
/// sized up front. Encoding never fails, but [`decode`] refuses lists and
/// maps nested more than 128 deep, so such values do not round-trip.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut buffer = Vec::new();
    encode_into(value, &mut buffer);
    buffer
}

/// Appends the encoding of `value` to `out` (growing it once, to the exact
/// size): for callers that frame the bytes, such as a network message with
/// its header in front.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    out.reserve_exact(encoded_len(value, 0));
    write(value, out);
}

pub(super) fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Bool(b) => out.extend_from_slice(&[tag::BOOL, u8::from(*b)]),
        Value::Int(i) => {
            out.push(tag::INT);
            push_varint(out, zigzag(*i));
        }
        Value::Float(f) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(text) => write_bytes(out, tag::STR, text.as_bytes()),
        Value::Bytes(bytes) => write_bytes(out, tag::BYTES, bytes),
        Value::List(items) => write_items(out, tag::LIST, items),
        Value::Tuple(items) => write_items(out, tag::TUPLE, items),
        Value::Set(items) => write_items(out, tag::SET, items),
        Value::FrozenSet(items) => write_items(out, tag::FROZENSET, items),
        Value::Map(entries) => {
            out.push(tag::MAP);
            push_varint(out, entries.len() as u64);
            for (key, value) in entries {
                write(key, out);
                write(value, out);
            }
        }
        Value::BigInt(n) => {
            out.extend_from_slice(&[tag::BIGINT, u8::from(n.is_negative())]);
            let magnitude = n.magnitude_le();
            push_varint(out, magnitude.len() as u64);
            out.extend_from_slice(&magnitude);
        }
        Value::Complex(c) => {
            out.push(tag::COMPLEX);
            out.extend_from_slice(&c.re.to_le_bytes());
            out.extend_from_slice(&c.im.to_le_bytes());
        }
    }
}

/// Appends the encoding of a borrowed value: the same bytes
/// [`encode_into`] writes for the owned value (the same layout, kind by
/// kind), byte strings copied once, straight from where they are.
pub fn encode_ref_into(value: &ValueRef<'_>, out: &mut Vec<u8>) {
    match value {
        ValueRef::Null => out.push(tag::NULL),
        ValueRef::Bool(b) => out.extend_from_slice(&[tag::BOOL, u8::from(*b)]),
        ValueRef::Int(i) => {
            out.push(tag::INT);
            push_varint(out, zigzag(*i));
        }
        ValueRef::Float(f) => {
            out.push(tag::FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        ValueRef::Str(text) => write_bytes(out, tag::STR, text.as_bytes()),
        ValueRef::Bytes(bytes) => write_bytes(out, tag::BYTES, bytes),
        ValueRef::List(items) => write_ref_items(out, tag::LIST, items),
        ValueRef::Tuple(items) => write_ref_items(out, tag::TUPLE, items),
        ValueRef::Set(items) => write_ref_items(out, tag::SET, items),
        ValueRef::FrozenSet(items) => write_ref_items(out, tag::FROZENSET, items),
        ValueRef::Map(entries) => {
            out.push(tag::MAP);
            push_varint(out, entries.len() as u64);
            for (key, value) in entries {
                encode_ref_into(key, out);
                encode_ref_into(value, out);
            }
        }
        ValueRef::BigInt(n) => write(&Value::BigInt(n.clone()), out),
        ValueRef::Complex(c) => write(&Value::Complex(*c), out),
    }
}

fn write_ref_items(out: &mut Vec<u8>, kind: u8, items: &[ValueRef<'_>]) {
    out.push(kind);
    push_varint(out, items.len() as u64);
    for item in items {
        encode_ref_into(item, out);
    }
}

fn write_bytes(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    out.push(kind);
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn write_items(out: &mut Vec<u8>, kind: u8, items: &[Value]) {
    out.push(kind);
    push_varint(out, items.len() as u64);
    for item in items {
        write(item, out);
    }
}

/// Where a byte string's bytes begin, when an encoding `total` bytes long
/// that starts with `first` (at least its first 11 bytes, or all of it) is
/// one byte string and nothing else. A reader can then put those bytes
/// straight into a buffer of their own instead of copying them out of the
/// encoding: `Value::Bytes` of them is what [`decode`] would return.
pub fn lone_bytes_header(first: &[u8], total: usize) -> Option<usize> {
    let (header, len) = bytes_header(first)?;
    (header as u64)
        .checked_add(len)
        .filter(|&end| end == total as u64)
        .map(|_| header)
}

/// The length of the byte string whose tag and length are all of `head`
/// (what a lending call returns when it lent the bytes themselves; see
/// [`abi::lending`](crate::abi::lending)), if that is what `head` is.
pub fn lent_bytes_length(head: &[u8]) -> Option<usize> {
    let (header, len) = bytes_header(head)?;
    (header == head.len())
        .then(|| usize::try_from(len).ok())
        .flatten()
}

/// A byte string's header at the start of `first`: its length in bytes,
/// and the byte string's.
fn bytes_header(first: &[u8]) -> Option<(usize, u64)> {
    let (&kind, rest) = first.split_first()?;
    if kind != tag::BYTES {
        return None;
    }
    let (mut len, mut shift) = (0u64, 0u32);
    for (at, &byte) in rest.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some((2 + at, len));
        }
        shift += 7;
    }
    None
}

pub(super) fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Decodes a value encoded by [`encode`].
///
/// Byte strings are copied once, from the input into the new value.
///
/// # Errors
///
/// Truncated or malformed input, trailing bytes and lists or maps nested
/// more than 128 deep are refused with a "malformed value encoding: ..."
/// error (never a panic).
pub fn decode(bytes: &[u8]) -> Result<Value, ValueError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    let rest = bytes.len() - reader.at;
    if rest != 0 {
        return Err(malformed(format!(
            "{rest} trailing byte(s) after the value"
        )));
    }
    Ok(value)
}

/// Decodes call arguments, `{"args": [...], "kwargs": {...}}`, as
/// `CallArgs::from_value(decode(bytes)?)` would, without building the outer
/// map and its key strings (every call pays for them otherwise).
/// A decoded value whose strings and byte strings are borrowed from the
/// encoded bytes: for a host that passes a driver's result on in another
/// encoding (a Pyro5 serializer) without copying its byte strings twice.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// `None`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text, borrowed.
    Str(&'a str),
    /// Bytes, borrowed.
    Bytes(&'a [u8]),
    /// A list.
    List(Vec<ValueRef<'a>>),
    /// A tuple.
    Tuple(Vec<ValueRef<'a>>),
    /// A set.
    Set(Vec<ValueRef<'a>>),
    /// A frozen set.
    FrozenSet(Vec<ValueRef<'a>>),
    /// A map, in order.
    Map(Vec<(ValueRef<'a>, ValueRef<'a>)>),
    /// An integer beyond 64 bits.
    BigInt(BigInt),
    /// A complex number.
    Complex(Complex),
}

impl ValueRef<'_> {
    /// Roughly the size of its encoding (byte strings and text exactly),
    /// for sizing a buffer once.
    pub fn size_hint(&self) -> usize {
        let all = |items: &[ValueRef<'_>]| items.iter().map(ValueRef::size_hint).sum::<usize>();
        11 + match self {
            ValueRef::Str(s) => s.len(),
            ValueRef::Bytes(b) => b.len(),
            ValueRef::List(items)
            | ValueRef::Tuple(items)
            | ValueRef::Set(items)
            | ValueRef::FrozenSet(items) => all(items),
            ValueRef::Map(entries) => entries
                .iter()
                .map(|(k, v)| k.size_hint() + v.size_hint())
                .sum(),
            ValueRef::BigInt(n) => n.bits().div_ceil(8),
            _ => 16,
        }
    }

    /// The owned value (what [`decode`] gives).
    pub fn to_value(&self) -> Value {
        let all = |items: &[ValueRef<'_>]| items.iter().map(ValueRef::to_value).collect();
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(*b),
            ValueRef::Int(i) => Value::Int(*i),
            ValueRef::Float(f) => Value::Float(*f),
            ValueRef::Str(s) => Value::Str((*s).to_owned()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
            ValueRef::List(items) => Value::List(all(items)),
            ValueRef::Tuple(items) => Value::Tuple(all(items)),
            ValueRef::Set(items) => Value::Set(all(items)),
            ValueRef::FrozenSet(items) => Value::FrozenSet(all(items)),
            ValueRef::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_value(), v.to_value()))
                    .collect(),
            ),
            ValueRef::BigInt(n) => Value::BigInt(n.clone()),
            ValueRef::Complex(c) => Value::Complex(*c),
        }
    }
}

/// Decodes a value as [`decode`] does, borrowing its strings and byte
/// strings from `bytes` instead of copying them.
pub fn decode_borrowed(bytes: &[u8]) -> Result<ValueRef<'_>, ValueError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value_ref(0)?;
    let rest = reader.remaining();
    if rest != 0 {
        return Err(malformed(format!(
            "{rest} trailing byte(s) after the value"
        )));
    }
    Ok(value)
}

pub(crate) fn decode_call_args(bytes: &[u8]) -> Result<CallArgs, ValueError> {
    decode_call(bytes).map(|(call, _)| call)
}

/// Like [`decode_call_args`], also giving the call context the host sent
/// (the [`abi::context::KEY`](crate::abi::context::KEY) entry), if any.
pub(crate) fn decode_call(bytes: &[u8]) -> Result<(CallArgs, Option<Value>), ValueError> {
    let mut reader = Reader { bytes, at: 0 };
    if reader.bytes.first() != Some(&tag::MAP) {
        let value = decode(bytes)?;
        return CallArgs::from_value(value).map(|call| (call, None));
    }
    reader.at = 1;
    let count = reader.varint()?;
    let mut call = CallArgs::default();
    let mut context = None;
    for _ in 0..count {
        let key = reader.key()?;
        let value = reader.value(1)?;
        match key {
            Some(crate::abi::context::KEY) => context = Some(value),
            Some(key) => call.set(key, value)?,
            None => {}
        }
    }
    let rest = bytes.len() - reader.at;
    if rest != 0 {
        return Err(malformed(format!(
            "{rest} trailing byte(s) after the value"
        )));
    }
    Ok((call, context))
}

fn malformed(detail: impl std::fmt::Display) -> ValueError {
    ValueError::new(format!("malformed value encoding: {detail}"))
}

/// A cursor over encoded bytes. Every read is bounds-checked; lengths from
/// the input never size an allocation beyond what the input can hold.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], ValueError> {
        if len > self.remaining() as u64 {
            return Err(malformed("unexpected end of input"));
        }
        let start = self.at;
        self.at += len as usize;
        Ok(&self.bytes[start..self.at])
    }

    fn byte(&mut self) -> Result<u8, ValueError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        Ok(self.take(N as u64)?.try_into().expect("N bytes"))
    }

    /// A LEB128 varint of at most 10 bytes whose value fits in a `u64`.
    fn varint(&mut self) -> Result<u64, ValueError> {
        // Tags, and most lengths and numbers, are one byte.
        if let Some(&byte) = self.bytes.get(self.at) {
            if byte < 0x80 {
                self.at += 1;
                return Ok(u64::from(byte));
            }
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(malformed("a varint larger than 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint longer than 10 bytes"))
    }

    fn bool(&mut self) -> Result<bool, ValueError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(malformed(format!("invalid boolean {other}"))),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ValueError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!(
                "lists and maps are nested more than {MAX_DEPTH} deep"
            )));
        }
        let kind = self.varint()?;
        Ok(match u8::try_from(kind).unwrap_or(u8::MAX) {
            tag::NULL => Value::Null,
            tag::BOOL => Value::Bool(self.bool()?),
            tag::INT => Value::Int(unzigzag(self.varint()?)),
            tag::FLOAT => Value::Float(f64::from_le_bytes(self.array()?)),
            tag::STR => {
                let len = self.varint()?;
                let text = std::str::from_utf8(self.take(len)?)
                    .map_err(|err| malformed(format!("a string that is not UTF-8: {err}")))?;
                Value::Str(text.to_owned())
            }
            tag::BYTES => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            tag::LIST => Value::List(self.items(depth)?),
            tag::TUPLE => Value::Tuple(self.items(depth)?),
            tag::SET => Value::Set(self.items(depth)?),
            tag::FROZENSET => Value::FrozenSet(self.items(depth)?),
            tag::MAP => {
                let count = self.varint()?;
                // Every entry takes at least two bytes.
                let mut entries =
                    Vec::with_capacity(count.min(self.remaining() as u64 / 2) as usize);
                for _ in 0..count {
                    let key = self.value(depth + 1)?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            tag::BIGINT => {
                let negative = self.bool()?;
                let len = self.varint()?;
                let magnitude = self.take(len)?;
                Value::BigInt(
                    BigInt::from_sign_magnitude(negative, magnitude)
                        .map_err(|err| malformed(err.message()))?,
                )
            }
            tag::COMPLEX => {
                let re = f64::from_le_bytes(self.array()?);
                let im = f64::from_le_bytes(self.array()?);
                Value::Complex(Complex { re, im })
            }
            _ => return Err(malformed(format!("unknown value kind (tag {kind})"))),
        })
    }

    /// What [`Reader::value`] reads, with strings and byte strings
    /// borrowed (the same checks, kind by kind).
    fn value_ref(&mut self, depth: usize) -> Result<ValueRef<'a>, ValueError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!(
                "lists and maps are nested more than {MAX_DEPTH} deep"
            )));
        }
        let kind = self.varint()?;
        Ok(match u8::try_from(kind).unwrap_or(u8::MAX) {
            tag::NULL => ValueRef::Null,
            tag::BOOL => ValueRef::Bool(self.bool()?),
            tag::INT => ValueRef::Int(unzigzag(self.varint()?)),
            tag::FLOAT => ValueRef::Float(f64::from_le_bytes(self.array()?)),
            tag::STR => {
                let len = self.varint()?;
                ValueRef::Str(
                    std::str::from_utf8(self.take(len)?)
                        .map_err(|err| malformed(format!("a string that is not UTF-8: {err}")))?,
                )
            }
            tag::BYTES => {
                let len = self.varint()?;
                ValueRef::Bytes(self.take(len)?)
            }
            tag::LIST => ValueRef::List(self.items_ref(depth)?),
            tag::TUPLE => ValueRef::Tuple(self.items_ref(depth)?),
            tag::SET => ValueRef::Set(self.items_ref(depth)?),
            tag::FROZENSET => ValueRef::FrozenSet(self.items_ref(depth)?),
            tag::MAP => {
                let count = self.varint()?;
                let mut entries =
                    Vec::with_capacity(count.min(self.remaining() as u64 / 2) as usize);
                for _ in 0..count {
                    let key = self.value_ref(depth + 1)?;
                    let value = self.value_ref(depth + 1)?;
                    entries.push((key, value));
                }
                ValueRef::Map(entries)
            }
            tag::BIGINT | tag::COMPLEX => {
                // Rare, and small: read them as owned values.
                self.at -= varint_len(kind);
                match self.value(depth)? {
                    Value::BigInt(n) => ValueRef::BigInt(n),
                    Value::Complex(c) => ValueRef::Complex(c),
                    _ => unreachable!("the tag said so"),
                }
            }
            _ => return Err(malformed(format!("unknown value kind (tag {kind})"))),
        })
    }

    fn items_ref(&mut self, depth: usize) -> Result<Vec<ValueRef<'a>>, ValueError> {
        let count = self.varint()?;
        let mut items = Vec::with_capacity(count.min(self.remaining() as u64) as usize);
        for _ in 0..count {
            items.push(self.value_ref(depth + 1)?);
        }
        Ok(items)
    }

    /// A map key: the text of a string, borrowed; `None` for a key of
    /// another kind (read and dropped).
    fn key(&mut self) -> Result<Option<&'a str>, ValueError> {
        if self.bytes.get(self.at) != Some(&tag::STR) {
            self.value(1)?;
            return Ok(None);
        }
        self.at += 1;
        let len = self.varint()?;
        std::str::from_utf8(self.take(len)?)
            .map(Some)
            .map_err(|err| malformed(format!("a string that is not UTF-8: {err}")))
    }

    fn items(&mut self, depth: usize) -> Result<Vec<Value>, ValueError> {
        let count = self.varint()?;
        // Every item takes at least one byte: a count larger than what is
        // left is a lie, and must not size an allocation.
        let mut items = Vec::with_capacity(count.min(self.remaining() as u64) as usize);
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }
}

/// The size of `value`'s encoding, in bytes: for a caller that frames
/// several values into one buffer and wants to allocate it once.
pub fn encoded_size(value: &Value) -> usize {
    encoded_len(value, 0)
}

/// The exact encoded size, so the output buffer is allocated once.
pub(super) fn encoded_len(value: &Value, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        // Not decodable anyway: let the buffer grow rather than recurse
        // further here.
        return 0;
    }
    let tag = 1;
    tag + match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(i) => varint_len(zigzag(*i)),
        Value::Float(_) => 8,
        Value::Str(s) => varint_len(s.len() as u64) + s.len(),
        Value::Bytes(b) => varint_len(b.len() as u64) + b.len(),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            varint_len(items.len() as u64)
                + items
                    .iter()
                    .map(|v| encoded_len(v, depth + 1))
                    .sum::<usize>()
        }
        Value::Map(entries) => {
            varint_len(entries.len() as u64)
                + entries
                    .iter()
                    .map(|(k, v)| encoded_len(k, depth + 1) + encoded_len(v, depth + 1))
                    .sum::<usize>()
        }
        Value::BigInt(n) => {
            let len = n.bits().div_ceil(8);
            1 + varint_len(len as u64) + len
        }
        Value::Complex(_) => 16,
    }
}

/// The size of a LEB128 varint (7 bits per byte).
pub(super) fn varint_len(n: u64) -> usize {
    let bits = 64 - n.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Value {
        Value::Map(vec![
            ("null".into(), Value::Null),
            ("true".into(), true.into()),
            ("false".into(), false.into()),
            ("int".into(), Value::Int(-1234567890123)),
            (
                "extremes".into(),
                Value::List(vec![
                    Value::Int(i64::MIN),
                    Value::Int(i64::MAX),
                    Value::Int(0),
                    Value::Float(f64::INFINITY),
                    Value::Float(f64::NEG_INFINITY),
                    Value::Float(-0.0),
                    Value::Float(f64::MIN_POSITIVE),
                ]),
            ),
            ("float".into(), 2.5.into()),
            ("str".into(), "ünïcode".into()),
            ("empty".into(), "".into()),
            ("bytes".into(), Value::Bytes(vec![0, 1, 2, 255])),
            (
                Value::Int(7),
                Value::List(vec![Value::List(vec![]), Value::Map(vec![])]),
            ),
            (
                Value::List(vec![1.into(), "tuple key".into()]),
                Value::Map(vec![(Value::Null, Value::Bytes(vec![]))]),
            ),
            (
                Value::Tuple(vec![1.into(), "tuple key".into()]),
                Value::Set(vec![Value::FrozenSet(vec![2.into()]), Value::Tuple(vec![])]),
            ),
            (
                "big".into(),
                Value::List(vec![
                    Value::BigInt("1180591620717411303424".parse().unwrap()),
                    Value::BigInt("-1267650600228229401496703205376".parse().unwrap()),
                    Value::Complex(Complex::new(1.0, 2.0)),
                    Value::Complex(Complex::new(f64::INFINITY, -0.0)),
                ]),
            ),
        ])
    }

    fn nested_lists(depth: usize) -> Value {
        let mut value = Value::Null;
        for _ in 0..depth {
            value = Value::List(vec![value]);
        }
        value
    }

    #[test]
    fn every_kind_round_trips() {
        let value = every_kind();
        let bytes = encode(&value);
        assert_eq!(decode(&bytes).unwrap(), value);
        // -0.0 == 0.0, so check the sign survived separately.
        let back = decode(&encode(&Value::Float(-0.0))).unwrap();
        assert!(back.as_float().unwrap().is_sign_negative());
    }

    #[test]
    fn a_borrowed_decode_reads_what_decode_reads() {
        let value = every_kind();
        let bytes = encode(&value);
        let borrowed = decode_borrowed(&bytes).unwrap();
        assert_eq!(borrowed.to_value(), value);
        // Byte strings point into the encoding rather than being copied.
        let blob = encode(&Value::Bytes(vec![7; 1000]));
        let ValueRef::Bytes(inside) = decode_borrowed(&blob).unwrap() else {
            panic!("bytes decode as bytes");
        };
        assert!(std::ptr::eq(
            inside.as_ptr(),
            blob[blob.len() - 1000..].as_ptr()
        ));
        // Encoding it again gives the same bytes.
        let mut again = Vec::new();
        encode_ref_into(&borrowed, &mut again);
        assert_eq!(again, bytes);
        assert!(borrowed.size_hint() >= bytes.len());
        // And what decode refuses, it refuses.
        assert!(decode_borrowed(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_borrowed(&trailing).is_err());
    }

    #[test]
    fn nan_round_trips_bit_for_bit() {
        for bits in [
            f64::NAN.to_bits(),
            0x7ff0_0000_0000_0001,
            0xfff8_dead_beef_0000,
        ] {
            let back = decode(&encode(&Value::Float(f64::from_bits(bits)))).unwrap();
            match back {
                Value::Float(x) => assert_eq!(x.to_bits(), bits),
                other => panic!("decoded {other:?}"),
            }
        }
    }

    #[test]
    fn tags_are_frozen() {
        assert_eq!(encode(&Value::Null), [0]);
        assert_eq!(encode(&Value::Bool(true)), [1, 1]);
        assert_eq!(encode(&Value::Bool(false)), [1, 0]);
        assert_eq!(encode(&Value::Int(1)), [2, 2]); // zigzag varint
        assert_eq!(encode(&Value::Int(-1)), [2, 1]);
        assert_eq!(
            encode(&Value::Float(1.0)),
            [3, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]
        );
        assert_eq!(encode(&Value::Str("a".into())), [4, 1, b'a']);
        assert_eq!(encode(&Value::Bytes(vec![9])), [5, 1, 9]);
        assert_eq!(encode(&Value::List(vec![Value::Null])), [6, 1, 0]);
        assert_eq!(
            encode(&Value::Map(vec![(Value::Null, Value::Bool(true))])),
            [7, 1, 0, 1, 1]
        );
        assert_eq!(encode(&Value::Tuple(vec![Value::Null])), [8, 1, 0]);
        assert_eq!(encode(&Value::Set(vec![Value::Null])), [9, 1, 0]);
        assert_eq!(encode(&Value::FrozenSet(vec![])), [10, 0]);
        // -(2**64): negative, nine magnitude bytes.
        let big: BigInt = "-18446744073709551616".parse().unwrap();
        assert_eq!(
            encode(&Value::BigInt(big)),
            [11, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            encode(&Value::Complex(Complex::new(1.0, -2.0))),
            [12, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0]
        );
    }

    #[test]
    fn a_huge_big_integer_is_refused_when_decoded() {
        let mut bytes = vec![11, 0];
        bytes.extend_from_slice(&[0xd0, 0x0f]); // 2000 bytes
        bytes.extend(std::iter::repeat_n(0xff, 2000));
        let err = decode(&bytes).unwrap_err();
        assert!(err.message().contains("4300 digits"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        let bytes = encode(&every_kind());
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(
                err.message().starts_with("malformed value encoding: "),
                "{err}"
            );
        }
        let err = decode(&[13]).unwrap_err();
        assert_eq!(
            err.message(),
            "malformed value encoding: unknown value kind (tag 13)"
        );
        assert!(decode(&[200]).is_err());
        assert!(decode(&[1, 2]).is_err()); // bool 2
        assert!(decode(&[4, 1, 0xff]).is_err()); // invalid UTF-8
        assert!(decode(&[5, 255, 255, 255, 255, 15]).is_err()); // short bytes
        assert!(
            decode(&[
                2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
    }

    #[test]
    fn random_input_never_panics() {
        // A small xorshift generator: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            // Bias towards valid tags so decoding gets somewhere.
            let bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => (next() % 256) as u8,
                    _ => (next() % 14) as u8,
                })
                .collect();
            if let Ok(value) = decode(&bytes) {
                decoded += 1;
                assert!(decode(&encode(&value)).is_ok());
            }
        }
        assert!(decoded > 0);
    }

    #[test]
    fn call_arguments_decode_as_decoding_the_map_would() {
        let reference = |bytes: &[u8]| decode(bytes).and_then(CallArgs::from_value);
        let good = CallArgs::positional(vec![every_kind()]).kwarg("speed", 2.5);
        let mut cases = vec![
            encode(&good.clone().into_value()),
            encode(&Value::Map(vec![
                ("args".into(), Value::Tuple(vec![1.into()])),
                (Value::Int(3), Value::Null),
                ("later".into(), Value::List(vec![])),
            ])),
            encode(&Value::Map(vec![("args".into(), Value::Int(1))])),
            encode(&Value::Map(vec![(
                "kwargs".into(),
                Value::Map(vec![(Value::Int(1), Value::Null)]),
            )])),
            encode(&Value::List(vec![])),
        ];
        let valid = cases[0].clone();
        cases.extend((0..valid.len()).map(|cut| valid[..cut].to_vec()));
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = valid.clone();
            let at = (state as usize) % bytes.len();
            bytes[at] = (state >> 40) as u8;
            cases.push(bytes);
        }
        for bytes in &cases {
            match (decode_call_args(bytes), reference(bytes)) {
                // Compared encoded: NaN != NaN.
                (Ok(fast), Ok(slow)) => {
                    assert_eq!(encode(&fast.into_value()), encode(&slow.into_value()))
                }
                (Err(_), Err(_)) => {}
                (fast, slow) => panic!("{bytes:?}: {fast:?} but {slow:?}"),
            }
        }
        assert_eq!(decode_call_args(&cases[0]).unwrap(), good);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Value::Null);
        bytes.push(0);
        let err = decode(&bytes).unwrap_err();
        assert!(err.message().contains("1 trailing byte"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let err = decode(&encode(&nested_lists(1000))).unwrap_err();
        assert_eq!(
            err.message(),
            "malformed value encoding: lists and maps are nested more than 128 deep"
        );

        // 100,000 nested one-element lists, written by hand.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[6, 1]);
        }
        bytes.push(0);
        let err = decode(&bytes).unwrap_err();
        assert!(err.message().contains("nested"), "{err}");

        // Maps count too, in keys as well as values.
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend_from_slice(&[7, 1]);
        }
        let err = decode(&bytes).unwrap_err();
        assert!(err.message().contains("nested"), "{err}");
    }

    #[test]
    fn nesting_up_to_the_limit_is_fine() {
        let deepest = nested_lists(MAX_DEPTH);
        assert_eq!(decode(&encode(&deepest)).unwrap(), deepest);
        assert!(decode(&encode(&nested_lists(MAX_DEPTH + 1))).is_err());
    }

    #[test]
    fn a_huge_length_prefix_does_not_allocate_up_front() {
        // A list claiming u32::MAX elements but holding none.
        assert!(decode(&[6, 255, 255, 255, 255, 15]).is_err());
        assert!(decode(&[7, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1]).is_err());
    }

    #[test]
    fn large_bytes_go_straight_into_an_exactly_sized_buffer() {
        let payload: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let value = Value::List(vec![
            Value::Bytes(payload.clone()),
            Value::Bytes(payload.clone()),
            every_kind(),
        ]);
        let bytes = encode(&value);
        // Sized once up front: never grown (which would copy everything
        // written so far) nor over-allocated.
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(decode(&bytes).unwrap(), value);
    }

    #[test]
    fn the_size_is_computed_exactly() {
        for i in [0, 1, -1, 63, -64, 64, -65, 8191, 8192, i64::MIN, i64::MAX] {
            let value = Value::Int(i);
            assert_eq!(encode(&value).len(), encoded_len(&value, 0), "{i}");
        }
        for len in [0, 127, 128, 16_383, 16_384] {
            let value = Value::Str("x".repeat(len));
            assert_eq!(encode(&value).len(), encoded_len(&value, 0), "{len}");
        }
        let value = every_kind();
        assert_eq!(encode(&value).len(), encoded_len(&value, 0));
    }

    #[test]
    fn a_lone_byte_string_is_recognised_from_its_first_bytes() {
        for len in [0usize, 1, 127, 128, 300_000] {
            let encoded = encode(&Value::Bytes(vec![7; len]));
            let header = encoded.len() - len;
            let first = &encoded[..encoded.len().min(16)];
            assert_eq!(
                lone_bytes_header(first, encoded.len()),
                Some(header),
                "{len}"
            );
            // A byte string that does not fill the encoding is not alone.
            assert_eq!(lone_bytes_header(first, encoded.len() + 1), None);
        }
        let list = encode(&Value::List(vec![Value::Bytes(vec![7; 100])]));
        assert_eq!(lone_bytes_header(&list[..16], list.len()), None);
        assert_eq!(lone_bytes_header(&[tag::BYTES, 0xff, 0xff], 1 << 20), None);
        assert_eq!(lone_bytes_header(&[tag::BYTES; 16], 16), None);
        assert_eq!(lone_bytes_header(&[], 0), None);
    }
}
