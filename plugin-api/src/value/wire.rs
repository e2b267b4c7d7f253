//! The compact binary encoding in which values cross the plugin boundary:
//! postcard over an externally tagged enum.
//!
//! The tag numbers are frozen: Null = 0, Bool = 1, Int = 2, Float = 3,
//! Str = 4, Bytes = 5, List = 6, Map = 7. New kinds may only be appended.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserializer, Serialize, Serializer};

use super::{Value, ValueError};

/// How deeply lists and maps may nest in decoded input: deeper input is
/// refused rather than risking the stack.
pub const MAX_DEPTH: usize = 128;

const VARIANTS: &[&str] = &[
    "Null", "Bool", "Int", "Float", "Str", "Bytes", "List", "Map",
];

/// Encodes a value.
pub fn encode(value: &Value) -> Vec<u8> {
    let buffer = Vec::with_capacity(size_hint(value, 0));
    // Serializing into a Vec cannot fail: every Value kind maps onto a
    // postcard primitive.
    postcard::to_extend(&Tagged(value), buffer).expect("a Value always encodes")
}

/// Decodes a value encoded by [`encode`], refusing truncated, malformed or
/// over-deep input and trailing bytes.
pub fn decode(bytes: &[u8]) -> Result<Value, ValueError> {
    let refusal = RefCell::new(None);
    let mut deserializer = postcard::Deserializer::from_bytes(bytes);
    let value = TaggedSeed {
        depth: 0,
        refusal: &refusal,
    }
    .deserialize(&mut deserializer)
    .map_err(|err| {
        // postcard drops the text of custom errors; ours is kept aside.
        let reason = refusal.take().unwrap_or_else(|| err.to_string());
        ValueError::new(format!("malformed value encoding: {reason}"))
    })?;
    let rest = deserializer
        .finalize()
        .map_err(|err| ValueError::new(format!("malformed value encoding: {err}")))?;
    if !rest.is_empty() {
        return Err(ValueError::new(format!(
            "malformed value encoding: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

/// Roughly the encoded size, so that large byte strings are copied once
/// instead of through a growing buffer.
fn size_hint(value: &Value, depth: usize) -> usize {
    if depth > MAX_DEPTH {
        return 0;
    }
    match value {
        Value::Null | Value::Bool(_) => 2,
        Value::Int(_) | Value::Float(_) => 11,
        Value::Str(s) => s.len() + 6,
        Value::Bytes(b) => b.len() + 6,
        Value::List(items) => 6 + items.iter().map(|v| size_hint(v, depth + 1)).sum::<usize>(),
        Value::Map(entries) => {
            6 + entries
                .iter()
                .map(|(k, v)| size_hint(k, depth + 1) + size_hint(v, depth + 1))
                .sum::<usize>()
        }
    }
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

/// Decodes one tagged value at a nesting depth.
#[derive(Clone, Copy)]
struct TaggedSeed<'r> {
    depth: usize,
    /// Why decoding was refused, when the refusal is ours (postcard keeps
    /// no message for custom errors).
    refusal: &'r RefCell<Option<String>>,
}

impl TaggedSeed<'_> {
    fn refuse<E: de::Error>(&self, reason: String) -> E {
        let error = E::custom(&reason);
        *self.refusal.borrow_mut() = Some(reason);
        error
    }
}

impl<'de> DeserializeSeed<'de> for TaggedSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(self.refuse(format!("lists and maps nested more than {MAX_DEPTH} deep")));
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
            refusal: self.refusal,
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
            other => Err(self.refuse(format!("unknown value tag {other}"))),
        }
    }
}

struct ListSeed<'r>(TaggedSeed<'r>);

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

struct EntriesSeed<'r>(TaggedSeed<'r>);

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

struct PairSeed<'r>(TaggedSeed<'r>);

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
            ("bool".into(), true.into()),
            ("int".into(), Value::Int(-1234567890123)),
            ("float".into(), 2.5.into()),
            ("str".into(), "ünïcode".into()),
            ("bytes".into(), Value::Bytes(vec![0, 1, 2, 255])),
            (
                Value::Int(7),
                Value::List(vec![Value::List(vec![]), Value::Map(vec![])]),
            ),
        ])
    }

    #[test]
    fn every_kind_round_trips() {
        let value = every_kind();
        assert_eq!(decode(&encode(&value)).unwrap(), value);
    }

    #[test]
    fn tags_are_frozen() {
        assert_eq!(encode(&Value::Null), [0]);
        assert_eq!(encode(&Value::Bool(true)), [1, 1]);
        assert_eq!(encode(&Value::Int(1)), [2, 2]); // zigzag varint
        assert_eq!(encode(&Value::Str("a".into())), [4, 1, b'a']);
        assert_eq!(encode(&Value::Bytes(vec![9])), [5, 1, 9]);
        assert_eq!(encode(&Value::List(vec![Value::Null])), [6, 1, 0]);
        assert_eq!(
            encode(&Value::Map(vec![(Value::Null, Value::Null)])),
            [7, 1, 0, 0]
        );
        assert_eq!(encode(&Value::Float(0.0))[0], 3);
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        let bytes = encode(&every_kind());
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
        assert!(decode(&[200]).is_err()); // an unfinished varint
        assert!(
            decode(&[100])
                .unwrap_err()
                .message()
                .contains("unknown value tag 100")
        );
        assert!(decode(&[5, 255, 255, 255, 255, 15]).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Value::Null);
        bytes.push(0);
        assert!(decode(&bytes).unwrap_err().message().contains("trailing"));
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // 100,000 nested one-element lists, written by hand.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[6, 1]);
        }
        bytes.push(0);
        let err = decode(&bytes).unwrap_err();
        assert!(err.message().contains("nested"), "{err}");
        let mut shallow = Value::Null;
        for _ in 0..MAX_DEPTH {
            shallow = Value::List(vec![shallow]);
        }
        assert_eq!(decode(&encode(&shallow)).unwrap(), shallow);
    }

    #[test]
    fn a_huge_length_prefix_does_not_allocate_up_front() {
        // A list claiming u32::MAX elements but holding none.
        assert!(decode(&[6, 255, 255, 255, 255, 15]).is_err());
    }
}
