//! The self-describing [`Value`] that every argument and result crosses the
//! plugin boundary as.
//!
//! `Value` mirrors the data model Python clients speak (Pyro5's serializers
//! carry the same shapes), so a value travels from a Python script to a
//! driver and back without losing its kind: `None`, `bool`, `int` (of any
//! size), `float`, `complex`, `str`, `bytes`, `list`, `tuple`, `set`,
//! `frozenset` and `dict`.
//!
//! Typed Rust values convert with [`to_value`] and [`from_value`], which go
//! through `serde` directly (no intermediate JSON):
//!
//! | Rust | Python |
//! | --- | --- |
//! | `Vec<T>`, slices | `list` |
//! | tuples `(A, B)`, arrays `[T; N]`, tuple structs | `tuple` |
//! | `HashSet<T>`, `BTreeSet<T>` as parameters | any sequence, `set` or `frozenset` |
//! | a set as a result ([`as_set`], or a method returning `HashSet`/`BTreeSet`) | `set` |
//! | `i64`, `u32`, ... | `int` (range-checked) |
//! | [`BigInt`] | `int` of any size |
//! | [`Complex`] | `complex` |
//!
//! A serde sequence cannot tell a `HashSet` from a `Vec`, so a set inside a
//! struct is marked with `#[serde(serialize_with = "pyrolab_plugin_api::value::as_set")]`
//! to reach Python as a `set`; a method whose return type is written
//! `HashSet<..>` or `BTreeSet<..>` gets that without asking.
//!
//! Values cross the plugin boundary in a compact binary encoding:
//! [`encode_into`] writes a `Value`'s, and [`encode_serialize`] writes the
//! same bytes for any `Serialize` type without building the `Value` first
//! (so a large byte string is copied once, not twice).

mod bigint;
mod de;
mod direct;
mod scan;
mod ser;
mod wire;

use std::fmt;

pub use bigint::{BigInt, Complex};
pub use de::from_value;
pub use direct::{
    PieceSink, Pieces, encode_serialize, encode_serialize_in_pieces, measure_for_pieces,
};
pub use scan::{
    encode_bytes_start_into, encode_list_start_into, encode_map_of_encoded, encode_map_start_into,
    encode_str_into, kind_of, split_list, split_list_exact, str_of,
};
#[doc(hidden)]
pub use ser::AsSet;
pub use ser::{as_frozenset, as_set, to_value};
pub use wire::{
    ValueRef, decode, decode_borrowed, encode, encode_into, encode_ref_into, encoded_size,
    lent_bytes_length, lone_bytes_header,
};
pub(crate) use wire::{decode_call, decode_call_args};

/// A dynamically typed value: the common currency of driver calls.
///
/// Maps keep their insertion order and may have keys of any kind (Python
/// dictionaries can be keyed by integers or tuples too).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// Python `None`, Rust `()` / `Option::None`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer within the `i64` range (Python `int`; larger ones are
    /// [`Value::BigInt`]).
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes (Python `bytes` / `bytearray`).
    Bytes(Vec<u8>),
    /// A list (Python `list`).
    List(Vec<Value>),
    /// An ordered mapping (Python `dict`).
    Map(Vec<(Value, Value)>),
    /// A tuple (Python `tuple`).
    Tuple(Vec<Value>),
    /// A set (Python `set`). Its items are kept as they came; Python drops
    /// duplicates when it builds the set.
    Set(Vec<Value>),
    /// An immutable set (Python `frozenset`).
    FrozenSet(Vec<Value>),
    /// An integer outside the `i64` range (Python `int`). Integers within
    /// it are always [`Value::Int`] when they come from a peer.
    BigInt(BigInt),
    /// A complex number (Python `complex`).
    Complex(Complex),
}

/// An error converting between a [`Value`] and a typed Rust value, or
/// decoding one from bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    message: String,
}

impl ValueError {
    /// Creates an error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        ValueError {
            message: message.into(),
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValueError {}

impl Value {
    /// The Python name of this value's type (`"int"`, `"str"`, ...), used in
    /// error messages so that Python users recognise what they sent.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
            Value::Tuple(_) => "tuple",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::BigInt(_) => "int",
            Value::Complex(_) => "complex",
        }
    }

    /// An integer of any size: [`Value::Int`] when it fits in `i64`, else
    /// [`Value::BigInt`].
    pub fn integer(n: BigInt) -> Value {
        match i64::try_from(&n) {
            Ok(small) => Value::Int(small),
            Err(_) => Value::BigInt(n),
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`].
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is a [`Value::Int`], a
    /// [`Value::BigInt`] (rounded) or a [`Value::Float`].
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::BigInt(n) => Some(n.to_f64()),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The string, if this is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The items, if this is a sequence: a [`Value::List`], [`Value::Tuple`],
    /// [`Value::Set`] or [`Value::FrozenSet`] (Python code reads them all
    /// by iterating).
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => Some(items),
            _ => None,
        }
    }

    /// The items, if this is a sequence (see [`Value::as_list`]), taken.
    pub fn into_list(self) -> Result<Vec<Value>, Value> {
        match self {
            Value::List(items)
            | Value::Tuple(items)
            | Value::Set(items)
            | Value::FrozenSet(items) => Ok(items),
            other => Err(other),
        }
    }

    /// The entries, if this is a [`Value::Map`].
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Looks up a string key in a [`Value::Map`] (the first match wins).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Formats the value the way Python's `repr` would, so descriptors and error
/// messages read naturally to Python users (`None`, `True`, `'text'`, `b'..'`).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write_python_float(f, *x),
            Value::Str(s) => write_python_str(f, s),
            Value::Bytes(b) => write_python_bytes(f, b),
            Value::List(items) => write_items(f, "[", items, "]"),
            Value::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            Value::Tuple(items) => write_items(f, "(", items, ")"),
            Value::Set(items) if items.is_empty() => f.write_str("set()"),
            Value::Set(items) => write_items(f, "{", items, "}"),
            Value::FrozenSet(items) if items.is_empty() => f.write_str("frozenset()"),
            Value::FrozenSet(items) => write_items(f, "frozenset({", items, "})"),
            Value::BigInt(n) => write!(f, "{n}"),
            Value::Complex(c) => write!(f, "{c}"),
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_items(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    items: &[Value],
    close: &str,
) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

fn write_python_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("nan")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "inf" } else { "-inf" })
    } else if x == x.trunc() && x.abs() < 1e16 {
        write!(f, "{x:.1}")
    } else {
        write!(f, "{x}")
    }
}

fn write_python_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

fn write_python_bytes(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    f.write_str("b'")?;
    for &b in bytes {
        match b {
            b'\'' => f.write_str("\\'")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("'")
}

macro_rules! impl_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(i64::from(v))
            }
        }
    )*};
}
impl_from_int!(i8, i16, i32, i64, u8, u16, u32);

/// Integers that may not fit in `i64` become [`Value::BigInt`] then.
macro_rules! impl_from_wide_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::integer(BigInt::from(v))
            }
        }
    )*};
}
impl_from_wide_int!(u64, i128, u128);

impl From<BigInt> for Value {
    fn from(v: BigInt) -> Self {
        Value::integer(v)
    }
}

impl From<Complex> for Value {
    fn from(v: Complex) -> Self {
        Value::Complex(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
