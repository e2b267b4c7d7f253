//! The compact binary encoding in which values cross the plugin boundary:
//! postcard over an externally tagged enum.
//!
//! Every value is a postcard enum: its tag as a varint, then its content.
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

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserializer, Serialize, Serializer};

use super::{BigInt, Complex, Value, ValueError};

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

const VARIANTS: &[&str] = &[
    "Null",
    "Bool",
    "Int",
    "Float",
    "Str",
    "Bytes",
    "List",
    "Map",
    "Tuple",
    "Set",
    "FrozenSet",
    "BigInt",
    "Complex",
];

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
    let mut buffer = std::mem::take(out);
    buffer.reserve_exact(encoded_len(value, 0));
    // Serializing into a Vec cannot fail: every Value kind maps onto a
    // postcard primitive, and `Tagged` raises no errors of its own.
    *out = postcard::serialize_with_flavor(&Tagged(value), VecFlavor(buffer))
        .expect("a Value always encodes");
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
    let malformed =
        |detail: &dyn fmt::Display| ValueError::new(format!("malformed value encoding: {detail}"));
    let problem = Cell::new(None);
    let mut deserializer = postcard::Deserializer::from_bytes(bytes);
    let value = TaggedSeed {
        depth: 0,
        problem: &problem,
    }
    .deserialize(&mut deserializer)
    .map_err(|err| {
        // postcard drops the text of custom errors: report ours instead.
        match problem.take() {
            Some(detail) => malformed(&detail),
            None => malformed(&err),
        }
    })?;
    let rest = deserializer.finalize().map_err(|err| malformed(&err))?;
    if !rest.is_empty() {
        return Err(malformed(&format_args!(
            "{} trailing byte(s) after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// A postcard output that appends to a `Vec` with `extend_from_slice`, so
/// byte strings are one `memcpy` (postcard's `to_extend` goes byte by byte
/// through `Extend`, and `to_allocvec` cannot take a presized buffer).
struct VecFlavor(Vec<u8>);

impl postcard::ser_flavors::Flavor for VecFlavor {
    type Output = Vec<u8>;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// The exact encoded size, so the output buffer is allocated once.
fn encoded_len(value: &Value, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        // Not decodable anyway: let the buffer grow rather than recurse
        // further here.
        return 0;
    }
    let tag = 1;
    tag + match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(i) => varint_len(((*i << 1) ^ (*i >> 63)) as u64),
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
        Value::BigInt(n) => {
            let len = n.magnitude_le().len();
            1 + varint_len(len as u64) + len
        }
        Value::Complex(_) => 16,
        Value::Map(entries) => {
            varint_len(entries.len() as u64)
                + entries
                    .iter()
                    .map(|(k, v)| encoded_len(k, depth + 1) + encoded_len(v, depth + 1))
                    .sum::<usize>()
        }
    }
}

/// The size of a LEB128 varint (7 bits per byte), as postcard writes them.
fn varint_len(n: u64) -> usize {
    let bits = 64 - n.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

struct Tagged<'a>(&'a Value);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit_variant("Value", 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant("Value", 1, "Bool", b),
            Value::Int(i) => s.serialize_newtype_variant("Value", 2, "Int", i),
            Value::Float(f) => s.serialize_newtype_variant("Value", 3, "Float", f),
            Value::Str(text) => s.serialize_newtype_variant("Value", 4, "Str", text),
            Value::Bytes(b) => {
                s.serialize_newtype_variant("Value", 5, "Bytes", serde_bytes::Bytes::new(b))
            }
            Value::List(items) => {
                s.serialize_newtype_variant("Value", 6, "List", &TaggedList(items))
            }
            Value::Map(entries) => {
                s.serialize_newtype_variant("Value", 7, "Map", &TaggedEntries(entries))
            }
            Value::Tuple(items) => {
                s.serialize_newtype_variant("Value", 8, "Tuple", &TaggedList(items))
            }
            Value::Set(items) => s.serialize_newtype_variant("Value", 9, "Set", &TaggedList(items)),
            Value::FrozenSet(items) => {
                s.serialize_newtype_variant("Value", 10, "FrozenSet", &TaggedList(items))
            }
            Value::BigInt(n) => {
                let magnitude = n.magnitude_le();
                let content = (n.is_negative(), serde_bytes::Bytes::new(&magnitude));
                s.serialize_newtype_variant("Value", 11, "BigInt", &content)
            }
            Value::Complex(c) => s.serialize_newtype_variant("Value", 12, "Complex", &(c.re, c.im)),
        }
    }
}

struct TaggedList<'a>(&'a [Value]);

impl Serialize for TaggedList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&Tagged(item))?;
        }
        seq.end()
    }
}

struct TaggedEntries<'a>(&'a [(Value, Value)]);

impl Serialize for TaggedEntries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (key, value) in self.0 {
            seq.serialize_element(&TaggedPair(key, value))?;
        }
        seq.end()
    }
}

struct TaggedPair<'a>(&'a Value, &'a Value);

impl Serialize for TaggedPair<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut tuple = s.serialize_tuple(2)?;
        tuple.serialize_element(&Tagged(self.0))?;
        tuple.serialize_element(&Tagged(self.1))?;
        tuple.end()
    }
}

/// Decodes one tagged value at a nesting depth (the top-level value is at
/// depth 0, the items of a top-level list at depth 1, ...).
#[derive(Clone, Copy)]
struct TaggedSeed<'a> {
    depth: usize,
    /// Where our own error messages are kept, since postcard's error type
    /// drops the text of custom errors.
    problem: &'a Cell<Option<String>>,
}

impl TaggedSeed<'_> {
    fn fail<E: de::Error>(self, message: String) -> E {
        let err = E::custom(&message);
        self.problem.set(Some(message));
        err
    }
}

impl<'de> DeserializeSeed<'de> for TaggedSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(self.fail(format!(
                "lists and maps are nested more than {MAX_DEPTH} deep"
            )));
        }
        d.deserialize_enum("Value", VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for TaggedSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (u32, _) = data.variant()?;
        let inner = TaggedSeed {
            depth: self.depth + 1,
            ..self
        };
        match tag {
            0 => variant.unit_variant().map(|()| Value::Null),
            1 => variant.newtype_variant().map(Value::Bool),
            2 => variant.newtype_variant().map(Value::Int),
            3 => variant.newtype_variant().map(Value::Float),
            4 => variant.newtype_variant().map(Value::Str),
            5 => variant
                .newtype_variant::<serde_bytes::ByteBuf>()
                .map(|b| Value::Bytes(b.into_vec())),
            6 => variant
                .newtype_variant_seed(ListSeed(inner))
                .map(Value::List),
            7 => variant
                .newtype_variant_seed(EntriesSeed(inner))
                .map(Value::Map),
            8 => variant
                .newtype_variant_seed(ListSeed(inner))
                .map(Value::Tuple),
            9 => variant
                .newtype_variant_seed(ListSeed(inner))
                .map(Value::Set),
            10 => variant
                .newtype_variant_seed(ListSeed(inner))
                .map(Value::FrozenSet),
            11 => {
                let (negative, magnitude) =
                    variant.newtype_variant::<(bool, serde_bytes::ByteBuf)>()?;
                BigInt::from_sign_magnitude(negative, &magnitude)
                    .map(Value::BigInt)
                    .map_err(|err| self.fail(err.message().to_owned()))
            }
            12 => variant
                .newtype_variant::<(f64, f64)>()
                .map(|(re, im)| Value::Complex(Complex { re, im })),
            other => Err(self.fail(format!("unknown value kind (tag {other})"))),
        }
    }
}

struct ListSeed<'a>(TaggedSeed<'a>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        // The length prefix comes from the input: do not trust it for the
        // allocation size.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self.0)? {
            items.push(item);
        }
        Ok(items)
    }
}

struct EntriesSeed<'a>(TaggedSeed<'a>);

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Vec<(Value, Value)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Vec<(Value, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of key-value pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(entry) = seq.next_element_seed(PairSeed(self.0))? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

struct PairSeed<'a>(TaggedSeed<'a>);

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = (Value, Value);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = (Value, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key-value pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let key = seq
            .next_element_seed(self.0)?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let value = seq
            .next_element_seed(self.0)?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok((key, value))
    }
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
}
