//! [`Value`] to typed Rust values: `Value` is itself a `serde::Deserializer`,
//! and has a natural `Deserialize` form so drivers can take a `Value`
//! parameter.

use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::ser::marker;
use super::{BigInt, Complex, Value, ValueError};

/// Converts a [`Value`] to any `Deserialize` type, consuming it (byte
/// buffers and strings are moved, not copied).
///
/// An `int` is accepted where a float is expected, since Python users write
/// `2` for `2.0`; integer range is checked (`300` is not a `u8`).
///
/// # Errors
///
/// When the value does not fit the type: a wrong kind, an integer out of
/// range, a missing or (with `deny_unknown_fields`) unknown field, an unknown
/// enum variant, or any error the type's own `Deserialize` raises.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

impl de::Error for ValueError {
    fn custom<T: Display>(msg: T) -> Self {
        ValueError::new(msg.to_string())
    }
}

impl Value {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Value::Null => Unexpected::Other("None"),
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Int(i) => Unexpected::Signed(*i),
            Value::Float(f) => Unexpected::Float(*f),
            Value::Str(s) => Unexpected::Str(s),
            Value::Bytes(b) => Unexpected::Bytes(b),
            Value::List(_) | Value::Tuple(_) | Value::Set(_) | Value::FrozenSet(_) => {
                Unexpected::Seq
            }
            Value::Map(_) => Unexpected::Map,
            Value::BigInt(_) => Unexpected::Other("an integer larger than 128 bits"),
            Value::Complex(_) => Unexpected::Other("a complex number"),
        }
    }

    fn invalid_type<E: de::Error>(&self, expected: &dyn de::Expected) -> E {
        E::invalid_type(self.unexpected(), expected)
    }
}

/// Forwards type hints to `deserialize_any`, except that `None` is reported
/// as `None` (serde's visitors would call it a "unit value").
macro_rules! refuse_none_else_forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self {
                Value::Null => Err(self.invalid_type(&visitor)),
                other => other.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_list(items, visitor),
            Value::Map(entries) => visit_map(entries, visitor),
            Value::BigInt(n) => {
                if let Ok(small) = i128::try_from(&n) {
                    visitor.visit_i128(small)
                } else if let Ok(large) = u128::try_from(&n) {
                    visitor.visit_u128(large)
                } else {
                    Err(Value::BigInt(n).invalid_type(&visitor))
                }
            }
            Value::Complex(c) => visit_map(
                vec![
                    (Value::from("real"), Value::Float(c.re)),
                    (Value::from("imag"), Value::Float(c.im)),
                ],
                visitor,
            ),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match (name, self) {
            // `Value`'s own Deserialize: kinds serde cannot name are handed
            // over as a variant named after the kind.
            (marker::VALUE, value) => match Kind::of(value) {
                Ok(kind) => visitor.visit_enum(kind),
                Err(plain) => plain.deserialize_any(visitor),
            },
            (marker::BIGINT, Value::Int(i)) => visitor.visit_i64(i),
            (marker::BIGINT, Value::BigInt(n)) => visitor.visit_string(n.to_string()),
            (marker::BIGINT, other) => Err(other.invalid_type(&visitor)),
            (marker::COMPLEX, Value::Complex(c)) => {
                visit_list(vec![Value::Float(c.re), Value::Float(c.im)], visitor)
            }
            // A real number is a complex one with no imaginary part, as in
            // Python's numeric tower.
            (marker::COMPLEX, real @ (Value::Int(_) | Value::Float(_) | Value::BigInt(_))) => {
                visitor.visit_f64(real.as_float().expect("a number"))
            }
            (marker::COMPLEX, other) => Err(other.invalid_type(&visitor)),
            (_, value) => visitor.visit_newtype_struct(value),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            // Python users write `2` where a float is expected.
            Value::Int(i) => visitor.visit_f64(i as f64),
            Value::BigInt(n) => visitor.visit_f64(n.to_f64()),
            Value::Null => Err(self.invalid_type(&visitor)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Str(s) => visitor.visit_string(s),
            Value::List(items) | Value::Tuple(items) => match list_of_bytes(&items) {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                None => Err(Value::List(items).invalid_type(&visitor)),
            },
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => visit_list(items, visitor),
            // `Vec<u8>` asks for a sequence; Python sends bytes.
            Value::Bytes(bytes) => {
                let mut access = ByteAccess {
                    bytes: bytes.into_iter(),
                };
                let value = visitor.visit_seq(&mut access)?;
                match access.bytes.len() {
                    0 => Ok(value),
                    left => Err(too_long(left, "item", "items")),
                }
            }
            other => Err(other.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Str(variant) => visitor.visit_enum(Variant {
                name: variant,
                content: None,
            }),
            Value::Map(mut entries) if entries.len() == 1 => {
                let (key, content) = entries.pop().expect("one entry");
                match key {
                    Value::Str(name) => visitor.visit_enum(Variant {
                        name,
                        content: Some(content),
                    }),
                    other => Err(other.invalid_type(&"a variant name")),
                }
            }
            other => Err(other.invalid_type(
                &"a variant name, or a one-entry map from a variant name to its content",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_map(visitor)
    }

    refuse_none_else_forward! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_char deserialize_str deserialize_string deserialize_map
    }

    forward_to_deserialize_any! {
        identifier
    }
}

fn list_of_bytes(items: &[Value]) -> Option<Vec<u8>> {
    items
        .iter()
        .map(|item| item.as_int().and_then(|i| u8::try_from(i).ok()))
        .collect()
}

/// The error for a list or map with more items than the type takes (a
/// 3-item list for a pair, say): serde's visitors stop reading early and
/// cannot tell.
fn too_long(left: usize, singular: &str, plural: &str) -> ValueError {
    let noun = if left == 1 { singular } else { plural };
    ValueError::new(format!("invalid length: {left} more {noun} than expected"))
}

fn visit_list<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, ValueError> {
    let mut access = ListAccess {
        items: items.into_iter(),
    };
    let value = visitor.visit_seq(&mut access)?;
    match access.items.len() {
        0 => Ok(value),
        left => Err(too_long(left, "item", "items")),
    }
}

fn visit_map<'de, V: Visitor<'de>>(
    entries: Vec<(Value, Value)>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut access = MapEntries {
        entries: entries.into_iter(),
        pending_value: None,
    };
    let value = visitor.visit_map(&mut access)?;
    match access.entries.len() {
        0 => Ok(value),
        left => Err(too_long(left, "entry", "entries")),
    }
}

struct ListAccess {
    items: std::vec::IntoIter<Value>,
}

impl<'de> SeqAccess<'de> for ListAccess {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.items
            .next()
            .map(|item| seed.deserialize(item))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The items of a [`Value::Bytes`] read as a sequence of `u8`s.
struct ByteAccess {
    bytes: std::vec::IntoIter<u8>,
}

impl<'de> SeqAccess<'de> for ByteAccess {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.bytes
            .next()
            .map(|byte| seed.deserialize(byte.into_deserializer()))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

struct MapEntries {
    entries: std::vec::IntoIter<(Value, Value)>,
    pending_value: Option<Value>,
}

impl<'de> MapAccess<'de> for MapEntries {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.pending_value = Some(value);
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let value = self
            .pending_value
            .take()
            .ok_or_else(|| ValueError::new("map value requested before its key"))?;
        seed.deserialize(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum variant: its name, and its content unless it is a unit variant.
struct Variant {
    name: String,
    content: Option<Value>,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = ValueError;
    type Variant = VariantContent;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantContent), ValueError> {
        let name = seed.deserialize(Value::Str(self.name))?;
        Ok((name, VariantContent(self.content)))
    }
}

struct VariantContent(Option<Value>);

impl<'de> VariantAccess<'de> for VariantContent {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(other.invalid_type(&"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.0 {
            Some(content) => seed.deserialize(content),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(content) => de::Deserializer::deserialize_seq(content, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(content) => de::Deserializer::deserialize_map(content, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

/// A value of a kind serde's data model lacks, as an enum variant named
/// after the kind, whose content serde can carry: a tuple's or set's items
/// as a list, a big integer's decimal text, a complex number's two parts.
struct Kind {
    name: &'static str,
    content: Value,
}

impl Kind {
    fn of(value: Value) -> Result<Kind, Value> {
        let (name, content) = match value {
            Value::Tuple(items) => ("tuple", Value::List(items)),
            Value::Set(items) => ("set", Value::List(items)),
            Value::FrozenSet(items) => ("frozenset", Value::List(items)),
            Value::BigInt(n) => ("int", Value::Str(n.to_string())),
            Value::Complex(c) => (
                "complex",
                Value::List(vec![Value::Float(c.re), Value::Float(c.im)]),
            ),
            plain => return Err(plain),
        };
        Ok(Kind { name, content })
    }
}

impl<'de> EnumAccess<'de> for Kind {
    type Error = ValueError;
    type Variant = VariantContent;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantContent), ValueError> {
        let name = seed.deserialize(Value::from(self.name))?;
        Ok((name, VariantContent(Some(self.content))))
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

/// The natural form: whatever the data is, as the matching `Value`. From a
/// `Value` itself, every kind is kept (tuples stay tuples, sets sets); from
/// other formats, sequences become lists and integers beyond `i64`
/// [`Value::BigInt`]s.
impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_newtype_struct(marker::VALUE, ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        de::Deserialize::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    /// A kind serde lacks, handed over by a `Value` deserializer (see
    /// `Kind`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (kind, content): (String, _) = data.variant()?;
        match kind.as_str() {
            "tuple" => content.newtype_variant().map(Value::Tuple),
            "set" => content.newtype_variant().map(Value::Set),
            "frozenset" => content.newtype_variant().map(Value::FrozenSet),
            "int" => {
                let text: String = content.newtype_variant()?;
                text.parse().map(Value::integer).map_err(de::Error::custom)
            }
            "complex" => content
                .newtype_variant()
                .map(|(re, im)| Value::Complex(Complex { re, im })),
            other => Err(de::Error::unknown_variant(
                other,
                &["tuple", "set", "frozenset", "int", "complex"],
            )),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

/// A [`BigInt`] parameter takes any Python integer.
impl<'de> de::Deserialize<'de> for BigInt {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<BigInt, D::Error> {
        deserializer.deserialize_newtype_struct(marker::BIGINT, BigIntVisitor)
    }
}

struct BigIntVisitor;

impl<'de> Visitor<'de> for BigIntVisitor {
    type Value = BigInt;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E>(self, v: i64) -> Result<BigInt, E> {
        Ok(BigInt::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<BigInt, E> {
        Ok(BigInt::from(v))
    }

    fn visit_i128<E>(self, v: i128) -> Result<BigInt, E> {
        Ok(BigInt::from(v))
    }

    fn visit_u128<E>(self, v: u128) -> Result<BigInt, E> {
        Ok(BigInt::from(v))
    }

    /// Decimal text: how a `Value` deserializer hands over a big integer,
    /// and how formats without big integers carry one.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<BigInt, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<BigInt, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A [`Complex`] parameter takes a complex number, or a real one.
impl<'de> de::Deserialize<'de> for Complex {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Complex, D::Error> {
        deserializer.deserialize_newtype_struct(marker::COMPLEX, ComplexVisitor)
    }
}

struct ComplexVisitor;

impl<'de> Visitor<'de> for ComplexVisitor {
    type Value = Complex;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a complex number")
    }

    fn visit_f64<E>(self, v: f64) -> Result<Complex, E> {
        Ok(Complex::new(v, 0.0))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Complex, E> {
        Ok(Complex::new(v as f64, 0.0))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Complex, E> {
        Ok(Complex::new(v as f64, 0.0))
    }

    /// `[real, imag]`, as a `Value` deserializer hands it over.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Complex, A::Error> {
        let re = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let im = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(Complex { re, im })
    }

    /// `{"real": .., "imag": ..}`, the natural form's JSON.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Complex, A::Error> {
        let (mut re, mut im) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "real" => re = Some(map.next_value()?),
                "imag" => im = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, &["real", "imag"])),
            }
        }
        match (re, im) {
            (Some(re), Some(im)) => Ok(Complex { re, im }),
            (None, _) => Err(de::Error::missing_field("real")),
            (_, None) => Err(de::Error::missing_field("imag")),
        }
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Complex, D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::value::to_value;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Mode {
        Idle,
        Sweep(f64),
        Pair(u8, u8),
        Window { start: u32, stop: u32 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(i64),
        Float(f64),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        flag: bool,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wavelength(f64);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        text: String,
        count: u32,
        ratio: f64,
        maybe: Option<i16>,
        nothing: Option<String>,
        names: Vec<String>,
        table: BTreeMap<String, u32>,
        inner: Inner,
        modes: Vec<Mode>,
        numbers: Vec<Number>,
        blob: serde_bytes::ByteBuf,
        pair: (u8, String),
        letter: char,
        wavelength: Wavelength,
        unit: (),
        anything: Value,
    }

    fn everything() -> Everything {
        Everything {
            text: "héllo".into(),
            count: 7,
            ratio: -0.25,
            maybe: Some(-3),
            nothing: None,
            names: vec!["a".into(), "b".into()],
            table: [("x".to_owned(), 1), ("y".to_owned(), 2)].into(),
            inner: Inner { flag: true },
            modes: vec![
                Mode::Idle,
                Mode::Sweep(1.5),
                Mode::Pair(1, 2),
                Mode::Window { start: 3, stop: 4 },
            ],
            numbers: vec![Number::Int(2), Number::Float(2.5)],
            blob: serde_bytes::ByteBuf::from(vec![0, 1, 255]),
            pair: (9, "nine".into()),
            letter: 'λ',
            wavelength: Wavelength(1550.0),
            unit: (),
            anything: Value::List(vec![Value::Null, Value::Bytes(vec![1])]),
        }
    }

    #[test]
    fn typed_values_round_trip() {
        let value = to_value(&everything()).unwrap();
        assert_eq!(from_value::<Everything>(value).unwrap(), everything());
    }

    #[test]
    fn typed_values_round_trip_through_json_as_a_value() {
        // Typed -> Value -> JSON -> Value -> typed. The blob goes through
        // JSON as a list of small ints, which is accepted as bytes (a raw
        // `Value::Bytes` would come back as a list, so `anything` has none).
        let mut original = everything();
        original.anything = Value::List(vec![Value::Null, Value::Float(0.5)]);
        let value = to_value(&original).unwrap();
        let json = serde_json::to_string(&value).unwrap();
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(from_value::<Everything>(back).unwrap(), original);
    }

    #[test]
    fn untagged_enums_tell_ints_from_floats() {
        assert_eq!(from_value::<Number>(Value::Int(2)).unwrap(), Number::Int(2));
        assert_eq!(
            from_value::<Number>(Value::Float(2.0)).unwrap(),
            Number::Float(2.0)
        );
    }

    #[test]
    fn enums_are_read_externally_tagged() {
        assert_eq!(from_value::<Mode>("Idle".into()).unwrap(), Mode::Idle);
        let sweep = Value::Map(vec![("Sweep".into(), Value::Int(3))]);
        assert_eq!(from_value::<Mode>(sweep).unwrap(), Mode::Sweep(3.0));
        let err = from_value::<Mode>("Dance".into()).unwrap_err();
        assert!(err.message().contains("unknown variant `Dance`"), "{err}");
        let err = from_value::<Mode>(Value::Int(1)).unwrap_err();
        assert!(err.message().contains("integer `1`"), "{err}");
        let two = Value::Map(vec![
            ("Idle".into(), Value::Null),
            ("Sweep".into(), Value::Int(3)),
        ]);
        assert!(from_value::<Mode>(two).is_err());
    }

    #[test]
    fn an_int_is_accepted_where_a_float_is_expected() {
        assert_eq!(from_value::<f64>(Value::Int(2)).unwrap(), 2.0);
        assert_eq!(from_value::<f32>(Value::Int(-2)).unwrap(), -2.0);
        assert!(from_value::<i64>(Value::Float(2.0)).is_err());
    }

    #[test]
    fn integer_ranges_are_checked() {
        let err = from_value::<u8>(Value::Int(300)).unwrap_err();
        assert!(err.message().contains("300"), "{err}");
        assert!(from_value::<u32>(Value::Int(-1)).is_err());
        assert!(from_value::<u64>(Value::Int(-1)).is_err());
        assert_eq!(from_value::<u128>(Value::Int(5)).unwrap(), 5);
        assert_eq!(from_value::<i8>(Value::Int(-128)).unwrap(), -128);
    }

    #[test]
    fn wrong_types_are_reported_in_python_terms() {
        let err = from_value::<u32>(Value::from("two")).unwrap_err();
        assert_eq!(err.message(), "invalid type: string \"two\", expected u32");
        for err in [
            from_value::<String>(Value::Null).unwrap_err(),
            from_value::<u8>(Value::Null).unwrap_err(),
            from_value::<f64>(Value::Null).unwrap_err(),
            from_value::<Inner>(Value::Null).unwrap_err(),
            from_value::<Vec<u8>>(Value::Null).unwrap_err(),
        ] {
            assert!(err.message().contains("None"), "{err}");
        }
        assert_eq!(from_value::<Option<u8>>(Value::Null).unwrap(), None);
        assert_eq!(from_value::<()>(Value::Null).unwrap(), ());
    }

    #[test]
    fn unknown_fields_are_named() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Settings {
            port: String,
        }
        let value = Value::Map(vec![
            ("port".into(), "COM1".into()),
            ("parity".into(), "even".into()),
        ]);
        let err = from_value::<Settings>(value).unwrap_err();
        assert!(err.message().contains("unknown field `parity`"), "{err}");
        let err = from_value::<Settings>(Value::Map(vec![])).unwrap_err();
        assert!(err.message().contains("missing field `port`"), "{err}");
    }

    #[test]
    fn bytes_arrive_from_bytes_strings_or_lists_of_small_ints() {
        let from_bytes: serde_bytes::ByteBuf = from_value(Value::Bytes(vec![1, 2])).unwrap();
        assert_eq!(from_bytes.into_vec(), [1, 2]);
        let from_list: serde_bytes::ByteBuf =
            from_value(Value::List(vec![3.into(), 4.into()])).unwrap();
        assert_eq!(from_list.into_vec(), [3, 4]);
        let from_str: serde_bytes::ByteBuf = from_value("hi".into()).unwrap();
        assert_eq!(from_str.into_vec(), b"hi");
        let as_vec: Vec<u8> = from_value(Value::Bytes(vec![5, 6])).unwrap();
        assert_eq!(as_vec, [5, 6]);
        let as_array: [u8; 2] = from_value(Value::Bytes(vec![7, 8])).unwrap();
        assert_eq!(as_array, [7, 8]);
        assert!(from_value::<[u8; 1]>(Value::Bytes(vec![7, 8])).is_err());
        assert!(from_value::<serde_bytes::ByteBuf>(Value::List(vec![300.into()])).is_err());
        assert!(from_value::<serde_bytes::ByteBuf>(Value::Int(1)).is_err());
    }

    #[test]
    fn a_big_byte_buffer_is_moved_not_copied() {
        let bytes = vec![7u8; 1 << 20];
        let address = bytes.as_ptr();
        let buf: serde_bytes::ByteBuf = from_value(Value::Bytes(bytes)).unwrap();
        assert_eq!(buf.as_ptr(), address);
    }

    #[test]
    fn value_round_trips_through_json_in_its_natural_form() {
        let value = Value::Map(vec![
            (
                "a".into(),
                Value::List(vec![1.into(), 2.5.into(), Value::Null]),
            ),
            ("b".into(), Value::Bool(true)),
            ("c".into(), Value::Map(vec![("d".into(), "e".into())])),
        ]);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"a":[1,2.5,null],"b":true,"c":{"d":"e"}}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), value);
        assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
        assert_eq!(to_value(&value).unwrap(), value);
    }

    #[test]
    fn natural_form_reads_integers_beyond_i64_as_big_integers() {
        assert_eq!(
            serde_json::from_str::<Value>("18446744073709551615").unwrap(),
            Value::BigInt(BigInt::from(u64::MAX))
        );
        assert_eq!(
            serde_json::from_str::<Value>("9223372036854775807").unwrap(),
            Value::Int(i64::MAX)
        );
    }

    #[test]
    fn every_kind_survives_from_value_into_a_value() {
        let value = Value::List(vec![
            Value::Tuple(vec![1.into(), Value::Set(vec!["a".into()])]),
            Value::FrozenSet(vec![Value::Tuple(vec![])]),
            Value::BigInt("-1267650600228229401496703205376".parse().unwrap()),
            Value::BigInt("7".repeat(80).parse().unwrap()),
            Value::Complex(Complex::new(1.0, -2.0)),
            Value::Map(vec![(Value::Tuple(vec![1.into()]), Value::Null)]),
        ]);
        assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
        #[derive(Debug, PartialEq, Deserialize)]
        struct Holder {
            inner: Value,
        }
        let wrapped = Value::Map(vec![("inner".into(), value.clone())]);
        assert_eq!(from_value::<Holder>(wrapped).unwrap().inner, value);
    }

    #[test]
    fn python_kinds_map_to_rust_types() {
        use std::collections::{BTreeSet, HashSet};
        let tuple = Value::Tuple(vec![1.into(), "x".into()]);
        assert_eq!(from_value::<(u8, String)>(tuple).unwrap(), (1, "x".into()));
        let set = Value::Set(vec![3.into(), 1.into(), 3.into()]);
        assert_eq!(
            from_value::<BTreeSet<u8>>(set.clone()).unwrap(),
            BTreeSet::from([1, 3])
        );
        assert_eq!(
            from_value::<HashSet<u8>>(Value::FrozenSet(vec![2.into()])).unwrap(),
            HashSet::from([2])
        );
        assert_eq!(from_value::<Vec<u8>>(set).unwrap(), [3, 1, 3]);
        let big = Value::BigInt("1180591620717411303424".parse().unwrap());
        assert_eq!(
            from_value::<BigInt>(big.clone()).unwrap().to_string(),
            "1180591620717411303424"
        );
        assert_eq!(
            from_value::<BigInt>(Value::Int(-4)).unwrap(),
            BigInt::from(-4)
        );
        assert_eq!(from_value::<u128>(big.clone()).unwrap(), 1 << 70);
        let err = from_value::<i64>(big.clone()).unwrap_err();
        assert!(err.message().contains("1180591620717411303424"), "{err}");
        assert_eq!(from_value::<f64>(big).unwrap(), 2f64.powi(70));
        let huge = Value::BigInt("9".repeat(50).parse().unwrap());
        let err = from_value::<u128>(huge.clone()).unwrap_err();
        assert!(err.message().contains("larger than 128 bits"), "{err}");
        assert!(from_value::<String>(huge).is_err());
        let z = Value::Complex(Complex::new(1.0, 2.0));
        assert_eq!(
            from_value::<Complex>(z.clone()).unwrap(),
            Complex::new(1.0, 2.0)
        );
        assert_eq!(
            from_value::<Complex>(Value::Int(3)).unwrap(),
            Complex::new(3.0, 0.0)
        );
        assert!(from_value::<f64>(z).is_err());
        assert!(from_value::<Complex>(Value::from("1+2j")).is_err());
        assert!(from_value::<BigInt>(Value::Float(1.0)).is_err());
    }

    #[test]
    fn new_kinds_go_through_json_in_their_natural_form() {
        let value = Value::List(vec![
            Value::Tuple(vec![1.into()]),
            Value::BigInt("1180591620717411303424".parse().unwrap()),
            Value::BigInt("9".repeat(50).parse().unwrap()),
            Value::Complex(Complex::new(1.5, -2.0)),
        ]);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(
            json,
            format!(
                r#"[[1],1180591620717411303424,"{}",{{"real":1.5,"imag":-2.0}}]"#,
                "9".repeat(50)
            )
        );
        // serde_json reads numbers beyond 128 bits as floats, so a BigInt
        // there is decimal text, which reads back.
        let text: BigInt = serde_json::from_str(&format!("\"{}\"", "9".repeat(50))).unwrap();
        assert_eq!(text.to_string(), "9".repeat(50));
        let z: Complex = serde_json::from_str(r#"{"real":1.5,"imag":-2.0}"#).unwrap();
        assert_eq!(z, Complex::new(1.5, -2.0));
    }

    #[test]
    fn value_is_its_own_deserializer() {
        let value: Value = "x".into();
        let text = String::deserialize(value.into_deserializer()).unwrap();
        assert_eq!(text, "x");
    }

    #[test]
    fn too_many_items_are_an_error() {
        let value = Value::List(vec![1.into(), 2.into(), 3.into()]);
        let err = from_value::<(u8, u8)>(value).unwrap_err();
        assert!(err.message().contains("1 more item"), "{err}");
        assert!(from_value::<(u8, u8, u8, u8)>(Value::List(vec![1.into()])).is_err());
    }
}
