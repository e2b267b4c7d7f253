//! marshal (serializer id 2), as Pyro5 uses it: Python's own `marshal`
//! module, version 4 (what Python 3.4 to 3.13 write). Every Python type
//! Pyro5 lets through it has a `Value`: tuples, lists, sets, frozensets,
//! dicts, bytes, str, int of any size, float, complex, bool and None.
//!
//! Each object is a type byte and its data, little-endian. Python sets the
//! type byte's 0x80 bit (`FLAG_REF`) on objects it may meet again and
//! writes later meetings as `r` and an index into the list of flagged
//! objects. Reading follows CPython's rules for that list exactly; a
//! reference is read by decoding the referenced object again, so the value
//! is a tree like every other `Value`. A reference to a container still
//! being read (a cycle) is an error, and so is output beyond a budget of
//! eight times the input plus 64 KiB (nodes, bytes and characters, copies
//! made for references included): a few bytes of references cannot expand
//! into gigabytes.
//!
//! Writing uses no references (Python reads that the same), and the type
//! codes Python itself would choose: `i` for integers within 32 bits, else
//! `l` (base 2^15 digits); `g` and `y` for float and complex; `z` (short)
//! or `a` for ASCII text, `u` for other text; `s` bytes; `)` (small) or
//! `(` tuples; `[`, `{` ... `0`, `<`, `>`.
//!
//! Refused with an error: code objects, `StopIteration`, `Ellipsis`,
//! type codes from newer versions (3.14's slices), strings with lone
//! surrogates (Python writes them, Rust strings cannot hold them), and
//! bytes after the value (Python ignores those; Pyro5 never sends any).

use pyrolab_plugin_api::Value;
use pyrolab_plugin_api::value::{BigInt, Complex};

use super::serializer::{MAX_DEPTH, SerializeError, Serializer, id};

/// marshal's type codes.
mod code {
    /// Ends a dict.
    pub const NULL: u8 = b'0';
    pub const NONE: u8 = b'N';
    pub const FALSE: u8 = b'F';
    pub const TRUE: u8 = b'T';
    pub const STOP_ITERATION: u8 = b'S';
    pub const ELLIPSIS: u8 = b'.';
    /// A 32-bit integer.
    pub const INT: u8 = b'i';
    /// A 64-bit integer (only written by old Pythons).
    pub const INT64: u8 = b'I';
    /// An integer of any size in base 2^15 digits.
    pub const LONG: u8 = b'l';
    /// A float as text (marshal version 0).
    pub const FLOAT: u8 = b'f';
    pub const BINARY_FLOAT: u8 = b'g';
    /// A complex number as two texts (marshal version 0).
    pub const COMPLEX: u8 = b'x';
    pub const BINARY_COMPLEX: u8 = b'y';
    /// bytes.
    pub const STRING: u8 = b's';
    pub const INTERNED: u8 = b't';
    pub const UNICODE: u8 = b'u';
    pub const ASCII: u8 = b'a';
    pub const ASCII_INTERNED: u8 = b'A';
    pub const SHORT_ASCII: u8 = b'z';
    pub const SHORT_ASCII_INTERNED: u8 = b'Z';
    pub const REF: u8 = b'r';
    pub const TUPLE: u8 = b'(';
    pub const SMALL_TUPLE: u8 = b')';
    pub const LIST: u8 = b'[';
    pub const DICT: u8 = b'{';
    pub const SET: u8 = b'<';
    pub const FROZENSET: u8 = b'>';
    pub const CODE: u8 = b'c';
    pub const UNKNOWN: u8 = b'?';
    /// On a type code: add this object to the reference list.
    pub const FLAG_REF: u8 = 0x80;
}

/// marshal's integer digits: 15 bits each.
const DIGIT_BITS: u32 = 15;

/// How much output decoding may produce, in nodes plus bytes and
/// characters: this many for every byte of input...
const BUDGET_PER_BYTE: usize = 8;
/// ... plus this many.
const BUDGET_EXTRA: usize = 64 * 1024;

/// The marshal serializer.
pub struct Marshal;

impl Serializer for Marshal {
    fn id(&self) -> u8 {
        id::MARSHAL
    }

    fn name(&self) -> &'static str {
        "marshal"
    }

    fn serialize_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        write_value(out, value, 0)
    }

    fn deserialize(&self, data: &[u8]) -> Result<Value, SerializeError> {
        let mut reader = Reader {
            data,
            at: 0,
            refs: Vec::new(),
            replaying: false,
            budget: data
                .len()
                .saturating_mul(BUDGET_PER_BYTE)
                .saturating_add(BUDGET_EXTRA),
        };
        let value = reader.value(0)?;
        if reader.at != data.len() {
            return Err(reader.error("unexpected bytes after the value"));
        }
        Ok(value)
    }
}

/// A type code and a 32-bit length.
fn write_len(out: &mut Vec<u8>, type_code: u8, len: usize) -> Result<(), SerializeError> {
    let len = i32::try_from(len).map_err(|_| {
        SerializeError::new(format!(
            "value too large for marshal: {len} items or bytes (at most 2**31 - 1)"
        ))
    })?;
    out.push(type_code);
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<(), SerializeError> {
    if depth > MAX_DEPTH {
        return Err(SerializeError::new(format!(
            "value nested more than {MAX_DEPTH} deep"
        )));
    }
    match value {
        Value::Null => out.push(code::NONE),
        Value::Bool(false) => out.push(code::FALSE),
        Value::Bool(true) => out.push(code::TRUE),
        Value::Int(i) => match i32::try_from(*i) {
            Ok(small) => {
                out.push(code::INT);
                out.extend_from_slice(&small.to_le_bytes());
            }
            Err(_) => write_long(out, &BigInt::from(*i)),
        },
        Value::BigInt(n) => match i32::try_from(n) {
            Ok(small) => write_value(out, &Value::Int(small.into()), depth)?,
            Err(_) => write_long(out, n),
        },
        Value::Float(f) => {
            out.push(code::BINARY_FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Complex(c) => {
            out.push(code::BINARY_COMPLEX);
            out.extend_from_slice(&c.re.to_le_bytes());
            out.extend_from_slice(&c.im.to_le_bytes());
        }
        Value::Str(s) => {
            if !s.is_ascii() {
                write_len(out, code::UNICODE, s.len())?;
            } else if s.len() < 256 {
                out.push(code::SHORT_ASCII);
                out.push(s.len() as u8);
            } else {
                write_len(out, code::ASCII, s.len())?;
            }
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_len(out, code::STRING, b.len())?;
            out.extend_from_slice(b);
        }
        Value::Tuple(items) if items.len() < 256 => {
            out.push(code::SMALL_TUPLE);
            out.push(items.len() as u8);
            write_items(out, items, depth)?;
        }
        Value::Tuple(items) => {
            write_len(out, code::TUPLE, items.len())?;
            write_items(out, items, depth)?;
        }
        Value::List(items) => {
            write_len(out, code::LIST, items.len())?;
            write_items(out, items, depth)?;
        }
        Value::Set(items) => {
            write_len(out, code::SET, items.len())?;
            write_items(out, items, depth)?;
        }
        Value::FrozenSet(items) => {
            write_len(out, code::FROZENSET, items.len())?;
            write_items(out, items, depth)?;
        }
        Value::Map(entries) => {
            out.push(code::DICT);
            for (key, value) in entries {
                write_value(out, key, depth + 1)?;
                write_value(out, value, depth + 1)?;
            }
            out.push(code::NULL);
        }
    }
    Ok(())
}

fn write_items(out: &mut Vec<u8>, items: &[Value], depth: usize) -> Result<(), SerializeError> {
    items
        .iter()
        .try_for_each(|item| write_value(out, item, depth + 1))
}

/// `l`: the digit count (negative for a negative number), then the 15-bit
/// digits, least significant first, as 16-bit words.
fn write_long(out: &mut Vec<u8>, n: &BigInt) {
    let digits = n.to_digits(DIGIT_BITS);
    // At most BigInt::MAX_BITS / 15 + 1 digits: far within i32.
    let count = digits.len() as i32;
    out.push(code::LONG);
    out.extend_from_slice(&(if n.is_negative() { -count } else { count }).to_le_bytes());
    for digit in digits {
        out.extend_from_slice(&(digit as u16).to_le_bytes());
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    /// Python's reference list: where each flagged object starts (its type
    /// byte), `None` while it is being read.
    refs: Vec<Option<usize>>,
    /// Whether a referenced object is being read again: its flags then add
    /// nothing to the reference list (they did the first time).
    replaying: bool,
    /// What decoding may still produce, in nodes plus bytes and characters.
    budget: usize,
}

impl Reader<'_> {
    fn error(&self, message: &str) -> SerializeError {
        SerializeError::new(format!(
            "invalid marshal data at byte {}: {message}",
            self.at
        ))
    }

    fn take(&mut self, len: usize) -> Result<&[u8], SerializeError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error("truncated data"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, SerializeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SerializeError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn int32(&mut self) -> Result<i32, SerializeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn float(&mut self) -> Result<f64, SerializeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A 32-bit length or count; negative is an error.
    fn length(&mut self) -> Result<usize, SerializeError> {
        let len = self.int32()?;
        usize::try_from(len).map_err(|_| self.error(&format!("a negative length {len}")))
    }

    /// Counts `units` of output against the budget.
    fn charge(&mut self, units: usize) -> Result<(), SerializeError> {
        match self.budget.checked_sub(units) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.error(&format!(
                "the value expands beyond {BUDGET_PER_BYTE} times the data's size plus \
                 {BUDGET_EXTRA} (through repeated references)"
            ))),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SerializeError> {
        if depth > MAX_DEPTH {
            return Err(self.error(&format!("nested more than {MAX_DEPTH} deep")));
        }
        let start = self.at;
        let type_byte = self.byte()?;
        let type_code = type_byte & !code::FLAG_REF;
        // Python adds every flagged object to its reference list except the
        // singletons (and references themselves): containers as they start,
        // the rest once read, which numbers them the same.
        let registers = type_byte & code::FLAG_REF != 0
            && !self.replaying
            && !matches!(
                type_code,
                code::NULL
                    | code::NONE
                    | code::FALSE
                    | code::TRUE
                    | code::STOP_ITERATION
                    | code::ELLIPSIS
                    | code::REF
            );
        let slot = registers.then(|| {
            self.refs.push(None);
            self.refs.len() - 1
        });
        self.charge(1)?;
        let value = self.object(type_code, depth)?;
        if let Some(slot) = slot {
            self.refs[slot] = Some(start);
        }
        Ok(value)
    }

    fn object(&mut self, type_code: u8, depth: usize) -> Result<Value, SerializeError> {
        Ok(match type_code {
            code::NONE => Value::Null,
            code::FALSE => Value::Bool(false),
            code::TRUE => Value::Bool(true),
            code::INT => Value::Int(self.int32()?.into()),
            code::INT64 => Value::Int(i64::from_le_bytes(self.array()?)),
            code::LONG => self.long()?,
            code::BINARY_FLOAT => Value::Float(self.float()?),
            code::BINARY_COMPLEX => Value::Complex(Complex::new(self.float()?, self.float()?)),
            code::FLOAT => Value::Float(self.text_float()?),
            code::COMPLEX => Value::Complex(Complex::new(self.text_float()?, self.text_float()?)),
            code::STRING => {
                let len = self.length()?;
                self.charge(len)?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            code::UNICODE | code::INTERNED => {
                let len = self.length()?;
                self.string(len, false)?
            }
            code::ASCII | code::ASCII_INTERNED => {
                let len = self.length()?;
                self.string(len, true)?
            }
            code::SHORT_ASCII | code::SHORT_ASCII_INTERNED => {
                let len = usize::from(self.byte()?);
                self.string(len, true)?
            }
            code::SMALL_TUPLE => {
                let count = usize::from(self.byte()?);
                Value::Tuple(self.items(count, depth)?)
            }
            code::TUPLE => {
                let count = self.length()?;
                Value::Tuple(self.items(count, depth)?)
            }
            code::LIST => {
                let count = self.length()?;
                Value::List(self.items(count, depth)?)
            }
            code::SET => {
                let count = self.length()?;
                Value::Set(self.items(count, depth)?)
            }
            code::FROZENSET => {
                let count = self.length()?;
                Value::FrozenSet(self.items(count, depth)?)
            }
            code::DICT => self.dict(depth)?,
            code::REF => self.reference(depth)?,
            code::NULL => return Err(self.error("a NULL object outside a dict")),
            code::STOP_ITERATION | code::ELLIPSIS => {
                return Err(self.error("StopIteration and Ellipsis cannot be carried"));
            }
            code::CODE => return Err(self.error("code objects are refused")),
            code::UNKNOWN => return Err(self.error("an object marshal could not write ('?')")),
            other => {
                return Err(self.error(&format!(
                    "unknown type code {other:#04x} {:?} (from a newer marshal version?)",
                    char::from(other)
                )));
            }
        })
    }

    /// `l`: a digit count (negative for a negative number) and as many
    /// 15-bit digits, least significant first.
    fn long(&mut self) -> Result<Value, SerializeError> {
        let signed = self.int32()?;
        if signed == i32::MIN {
            return Err(self.error("an integer size out of range"));
        }
        let count = signed.unsigned_abs() as usize;
        if count.saturating_mul(2) > self.data.len() - self.at {
            return Err(self.error("an integer longer than the data"));
        }
        self.charge(count)?;
        let digits: Vec<u32> = self
            .take(count * 2)?
            .chunks_exact(2)
            .map(|pair| u32::from(u16::from_le_bytes([pair[0], pair[1]])))
            .collect();
        if digits.last() == Some(&0) {
            return Err(self.error("an integer whose top digit is zero"));
        }
        BigInt::from_digits(signed < 0, &digits, DIGIT_BITS)
            .map(Value::integer)
            .map_err(|err| self.error(&format!("invalid integer: {err}")))
    }

    /// `f` and `x`: a float as text, a 1-byte length first. Python writes
    /// `repr(x)`, including `nan`, `inf` and `-inf`.
    fn text_float(&mut self) -> Result<f64, SerializeError> {
        let len = usize::from(self.byte()?);
        let text = self.take(len)?;
        let parsed = std::str::from_utf8(text)
            .ok()
            .filter(|text| text.is_ascii())
            .and_then(|text| text.parse::<f64>().ok());
        match parsed {
            Some(number) => Ok(number),
            None => {
                let text = String::from_utf8_lossy(text).into_owned();
                Err(self.error(&format!("invalid float text {text:?}")))
            }
        }
    }

    fn string(&mut self, len: usize, ascii: bool) -> Result<Value, SerializeError> {
        self.charge(len)?;
        let bytes = self.take(len)?;
        if ascii && !bytes.is_ascii() {
            return Err(self.error("an ASCII string that is not ASCII"));
        }
        std::str::from_utf8(bytes)
            .map(|s| Value::Str(s.to_owned()))
            .map_err(|_| {
                self.error("a string that is not UTF-8 (Python strings with lone surrogates cannot be carried)")
            })
    }

    /// `count` objects. Every object takes at least one byte: a count
    /// beyond what is left is refused before anything is allocated, and
    /// the allocation grows with what is read, not with the count.
    fn items(&mut self, count: usize, depth: usize) -> Result<Vec<Value>, SerializeError> {
        if count > self.data.len() - self.at {
            return Err(self.error("a length larger than the data"));
        }
        let mut items = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    /// `{`: keys and values until a NULL key.
    fn dict(&mut self, depth: usize) -> Result<Value, SerializeError> {
        let mut entries = Vec::new();
        loop {
            if self.data.get(self.at).map(|b| b & !code::FLAG_REF) == Some(code::NULL) {
                self.at += 1;
                return Ok(Value::Map(entries));
            }
            let key = self.value(depth + 1)?;
            if self.data.get(self.at).map(|b| b & !code::FLAG_REF) == Some(code::NULL) {
                return Err(self.error("a dict key without a value"));
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
    }

    /// `r`: the object at an index of the reference list, read again from
    /// where it starts.
    fn reference(&mut self, depth: usize) -> Result<Value, SerializeError> {
        let index = self.int32()?;
        let start = match usize::try_from(index).ok().map(|i| self.refs.get(i)) {
            Some(Some(Some(start))) => *start,
            Some(Some(None)) => {
                return Err(self.error(&format!(
                    "a reference to object {index}, a container still being read (a cycle)"
                )));
            }
            _ => {
                return Err(self.error(&format!(
                    "a reference to object {index}, which has not been read"
                )));
            }
        };
        let (resume, was_replaying) = (self.at, self.replaying);
        self.at = start;
        self.replaying = true;
        let value = self.value(depth);
        self.at = resume;
        self.replaying = was_replaying;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode(text: &str) -> Value {
        Marshal
            .deserialize(&hex(text))
            .unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    fn big(text: &str) -> Value {
        Value::BigInt(text.parse().unwrap())
    }

    fn error(data: &[u8]) -> String {
        Marshal.deserialize(data).unwrap_err().to_string()
    }

    #[test]
    fn python_s_output_reads_into_the_right_values() {
        // marshal.dumps(...).hex() from Python 3.11, with its FLAG_REF bits
        // and references as Python sets them.
        let cases: Vec<(&str, Value)> = vec![
            // (1, [2.5, "x", None], {"k": (True, False)})
            (
                "a903e9010000005b03000000e70000000000000440da01784e7bda016ba902544630",
                Value::Tuple(vec![
                    1.into(),
                    Value::List(vec![2.5.into(), "x".into(), Value::Null]),
                    Value::Map(vec![(
                        "k".into(),
                        Value::Tuple(vec![true.into(), false.into()]),
                    )]),
                ]),
            ),
            (
                "ec0500000000000000000000000004",
                big("1180591620717411303424"),
            ),
            (
                "ecf9ffffff0000000000000000000000000004",
                big("-1267650600228229401496703205376"),
            ),
            ("e9ffffffff", Value::Int(-1)),
            ("ec03000000000000000200", Value::Int(1 << 31)),
            ("e900000080", Value::Int(-(1 << 31))),
            ("ec03000000000000000004", Value::Int(1 << 40)),
            (
                "f9000000000000f03f0000000000000040",
                Value::Complex(Complex::new(1.0, 2.0)),
            ),
            // {frozenset({1}): 1}: the value refers to the key's 1.
            (
                "fb3e01000000e901000000720100000030",
                Value::Map(vec![(Value::FrozenSet(vec![1.into()]), 1.into())]),
            ),
            ("f50a00000068c3a96c6c6f20e29c93", "héllo ✓".into()),
            // (set(), frozenset(), (), [], {})
            (
                "a9053c000000003e00000000a9005b000000007b30",
                Value::Tuple(vec![
                    Value::Set(vec![]),
                    Value::FrozenSet(vec![]),
                    Value::Tuple(vec![]),
                    Value::List(vec![]),
                    Value::Map(vec![]),
                ]),
            ),
            ("f30400000061006200", Value::Bytes(b"a\0b\0".to_vec())),
            // ({1, 2}, frozenset({"a"}))
            (
                "a9023c02000000e901000000e9020000003e01000000da0161",
                Value::Tuple(vec![
                    Value::Set(vec![1.into(), 2.into()]),
                    Value::FrozenSet(vec!["a".into()]),
                ]),
            ),
            // x = [1, "two"]; s = "shared string"; [x, x, (x, s), s]
            (
                "5b04000000db02000000e901000000da0374776f720000000029027200000000\
                 fa0d73686172656420737472696e677203000000",
                {
                    let x = Value::List(vec![1.into(), "two".into()]);
                    let s = Value::from("shared string");
                    Value::List(vec![
                        x.clone(),
                        x.clone(),
                        Value::Tuple(vec![x, s.clone()]),
                        s,
                    ])
                },
            ),
            // b = 2**70; [b, b]
            (
                "5b02000000ec05000000000000000000000000047200000000",
                Value::List(vec![
                    big("1180591620717411303424"),
                    big("1180591620717411303424"),
                ]),
            ),
            // fs = frozenset({3}); [fs, fs]: frozensets join the list late.
            (
                "5b02000000be01000000e9030000007200000000",
                Value::List(vec![
                    Value::FrozenSet(vec![3.into()]),
                    Value::FrozenSet(vec![3.into()]),
                ]),
            ),
            // ("sample", "echo_value", [(1, 2)], {}): a Pyro5 call.
            (
                "2904da0673616d706c65da0a6563686f5f76616c7565db01000000a902e901000000e902000000fb30",
                Value::Tuple(vec![
                    "sample".into(),
                    "echo_value".into(),
                    Value::List(vec![Value::Tuple(vec![1.into(), 2.into()])]),
                    Value::Map(vec![]),
                ]),
            ),
            // marshal version 0's text floats and old 64-bit integers.
            ("6603312e35", Value::Float(1.5)),
            ("66042d696e66", Value::Float(f64::NEG_INFINITY)),
            ("6608696e66696e697479", Value::Float(f64::INFINITY)),
            ("7803312e3503322e35", Value::Complex(Complex::new(1.5, 2.5))),
            ("490500000000000000", Value::Int(5)),
            ("6c00000000", Value::Int(0)),
            // Python ignores FLAG_REF on singletons: N|0x80 is no object
            // to refer to, so r 0 is the 7.
            (
                "5b03000000cee9070000007200000000",
                Value::List(vec![Value::Null, 7.into(), 7.into()]),
            ),
        ];
        for (text, value) in cases {
            assert_eq!(decode(text), value, "{text}");
        }
        let nan = decode("e7000000000000f87f");
        assert!(matches!(nan, Value::Float(f) if f.is_nan()), "{nan}");
        assert!(matches!(decode("66036e616e"), Value::Float(f) if f.is_nan()));
    }

    #[test]
    fn writes_what_python_reads_back_unchanged() {
        // Each checked by hand: marshal.loads(bytes.fromhex(...)) in Python
        // 3.11 gives the value in the comment, of the same types.
        let cases: Vec<(Value, &str)> = vec![
            // None, True, False, -1, 2**31 - 1
            (Value::Null, "4e"),
            (true.into(), "54"),
            (false.into(), "46"),
            (Value::Int(-1), "69ffffffff"),
            (Value::Int(i32::MAX.into()), "69ffffff7f"),
            // 2**31, -2**31 - 1, 2**70, -2**100
            (Value::Int(1 << 31), "6c03000000000000000200"),
            (Value::Int(-(1 << 31) - 1), "6cfdffffff010000000200"),
            (
                big("1180591620717411303424"),
                "6c0500000000000000000000000004",
            ),
            (
                big("-1267650600228229401496703205376"),
                "6cf9ffffff0000000000000000000000000004",
            ),
            // 2.5, 1+2j
            (Value::Float(2.5), "670000000000000440"),
            (
                Value::Complex(Complex::new(1.0, 2.0)),
                "79000000000000f03f0000000000000040",
            ),
            // "x", "héllo ✓", b"a\0b\0"
            ("x".into(), "7a0178"),
            ("héllo ✓".into(), "750a00000068c3a96c6c6f20e29c93"),
            (Value::Bytes(b"a\0b\0".to_vec()), "730400000061006200"),
            // ((1,), [None], {1, 2}, frozenset(), {"k": ()})
            (
                Value::Tuple(vec![
                    Value::Tuple(vec![1.into()]),
                    Value::List(vec![Value::Null]),
                    Value::Set(vec![1.into(), 2.into()]),
                    Value::FrozenSet(vec![]),
                    Value::Map(vec![("k".into(), Value::Tuple(vec![]))]),
                ]),
                "2905290169010000005b010000004e3c0200000069010000006902000000\
                 3e000000007b7a016b290030",
            ),
            // {frozenset({1}): -2**100}
            (
                Value::Map(vec![(
                    Value::FrozenSet(vec![1.into()]),
                    big("-1267650600228229401496703205376"),
                )]),
                "7b3e0100000069010000006cf9ffffff000000000000000000000000000430",
            ),
        ];
        for (value, text) in cases {
            let written = Marshal.serialize(&value).unwrap();
            assert_eq!(
                written,
                hex(&text.replace(char::is_whitespace, "")),
                "{value}"
            );
            assert_eq!(Marshal.deserialize(&written).unwrap(), value, "{value}");
        }
        // ASCII of 256 characters and more is `a` with a 32-bit length; 256
        // items make a `(` tuple.
        let long = "a".repeat(300);
        let written = Marshal.serialize(&long.as_str().into()).unwrap();
        assert_eq!(written[..5], [b'a', 0x2c, 0x01, 0, 0]);
        let tuple = Value::Tuple(vec![Value::Null; 256]);
        let written = Marshal.serialize(&tuple).unwrap();
        assert_eq!(written[..5], [b'(', 0, 1, 0, 0]);
        assert_eq!(Marshal.deserialize(&written).unwrap(), tuple);
        // kw(1, x=4) as Pyro5's dumpsCall would write it, without refs.
        let call = crate::wire::call::test_payload(
            &Marshal,
            "thing",
            "kw",
            &[1.into()],
            &[("x".into(), 4.into())],
        );
        assert_eq!(
            call,
            b"\x29\x04\x7a\x05thing\x7a\x02kw\x5b\x01\0\0\0\x69\x01\0\0\0\
              \x7b\x7a\x01x\x69\x04\0\0\0\x30"
        );
    }

    #[test]
    fn every_kind_round_trips() {
        for value in [
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(i64::from(i32::MIN)),
            Value::Float(f64::NAN),
            Value::Float(-0.0),
            Value::from("é".repeat(300)),
            Value::Bytes(vec![7; 70_000]),
            Value::List((0..300).map(Value::from).collect()),
            Value::BigInt("9".repeat(BigInt::MAX_DIGITS).parse().unwrap()),
            Value::Map(vec![
                (1.into(), "one".into()),
                (Value::Tuple(vec![1.into()]), Value::List(vec![])),
            ]),
        ] {
            let back = Marshal
                .deserialize(&Marshal.serialize(&value).unwrap())
                .unwrap();
            match (&value, &back) {
                (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(back, value),
            }
        }
        let mut deep = Value::Null;
        for _ in 0..=MAX_DEPTH + 1 {
            deep = Value::List(vec![deep]);
        }
        assert!(
            Marshal
                .serialize(&deep)
                .unwrap_err()
                .to_string()
                .contains("nested")
        );
    }

    #[test]
    fn references_that_python_would_refuse_or_that_explode_are_errors() {
        // [r 1]: nothing at index 1.
        let ahead = error(&hex("5b02000000e9010000007201000000"));
        assert!(ahead.contains("has not been read"), "{ahead}");
        assert!(error(&hex("72ffffffff")).contains("has not been read"));
        // A list holding itself (Python makes a cycle; a Value cannot).
        let cycle = error(&hex("db02000000e9010000007200000000"));
        assert!(cycle.contains("still being read"), "{cycle}");
        // A frozenset holding itself (Python refuses this one too).
        assert!(error(&hex("be010000007200000000")).contains("still being read"));
        // A list of 1000 bytes, then lists of 10 references to the one
        // before, nested 8 deep: 4 KiB of input, 10^11 bytes of output.
        let mut data = vec![b'[', 9, 0, 0, 0];
        data.push(b's' | code::FLAG_REF);
        data.extend_from_slice(&1000i32.to_le_bytes());
        data.extend_from_slice(&[0; 1000]);
        for level in 0..8i32 {
            data.push(b'[' | code::FLAG_REF);
            data.extend_from_slice(&10i32.to_le_bytes());
            for _ in 0..10 {
                data.push(b'r');
                data.extend_from_slice(&level.to_le_bytes());
            }
        }
        let laughs = error(&data);
        assert!(laughs.contains("expands beyond"), "{laughs}");
        // References within the budget are fine: 50 copies of 1000 bytes.
        let mut data = vec![b'[', 50, 0, 0, 0, b's' | code::FLAG_REF];
        data.extend_from_slice(&1000i32.to_le_bytes());
        data.extend_from_slice(&[1; 1000]);
        for _ in 1..50 {
            data.extend_from_slice(&[b'r', 0, 0, 0, 0]);
        }
        let copies = Marshal.deserialize(&data).unwrap();
        assert_eq!(copies, Value::List(vec![Value::Bytes(vec![1; 1000]); 50]));
        // A reference cannot nest a value deeper than MAX_DEPTH.
        let mut data = Vec::new();
        for _ in 0..100 {
            data.extend_from_slice(&[b'[' | code::FLAG_REF, 1, 0, 0, 0]);
        }
        data.push(b'N');
        let mut doubled = vec![b'[', 2, 0, 0, 0];
        doubled.extend_from_slice(&data);
        doubled.extend_from_slice(&[b'[', 1, 0, 0, 0]);
        for _ in 0..40 {
            doubled.extend_from_slice(&[b'[', 1, 0, 0, 0]);
        }
        doubled.extend_from_slice(&[b'r', 0, 0, 0, 0]);
        let deep = error(&doubled);
        assert!(deep.contains("nested"), "{deep}");
    }

    #[test]
    fn unsupported_and_malformed_input_are_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b":", "unknown type code 0x3a"),
            (b"R", "unknown type code"),
            (b"c\0\0\0\0", "code objects"),
            (b"?", "could not write"),
            (b"S", "StopIteration"),
            (b".", "Ellipsis"),
            (b"0", "NULL"),
            (b"[\x01\0\0\x000", "NULL"),
            (b"{i\x01\0\0\x000", "without a value"),
            (b"NN", "after the value"),
            (b"u\x01\0\0\0\xff", "not UTF-8"),
            // '\ud800' as Python writes it (surrogatepass).
            (b"u\x03\0\0\0\xed\xa0\x80", "lone surrogates"),
            (b"z\x01\xe9", "not ASCII"),
            (b"a\x01\0\0\0\xe9", "not ASCII"),
            (b"l\x01\0\0\0\x00\x80", "does not fit in 15 bits"),
            (b"l\x01\0\0\0\x00\x00", "top digit is zero"),
            (b"l\x00\0\0\x80", "out of range"),
            (b"l\xff\xff\xff\x7f", "longer than the data"),
            (b"s\xff\xff\xff\xff", "negative length"),
            (b"[\xff\xff\xff\x7f", "larger than the data"),
            (b"<\xff\xff\xff\x7f", "larger than the data"),
            (b"f\x03abc", "invalid float text"),
            (b"f\x04 1.5", "invalid float text"),
        ];
        for (data, expected) in cases {
            let message = error(data);
            assert!(message.contains(expected), "{data:?}: {message}");
        }
        // An integer beyond Python's 4300-digit limit.
        let mut huge = vec![b'l'];
        huge.extend_from_slice(&1000i32.to_le_bytes());
        huge.extend_from_slice(&[0xff, 0x7f].repeat(1000));
        assert!(error(&huge).contains("4300"), "{}", error(&huge));
        let nested: Vec<u8> = [b')', 1].repeat(1000);
        assert!(error(&nested).contains("nested"), "{}", error(&nested));
        let valid = crate::wire::call::test_payload(
            &Marshal,
            "thing",
            "echo",
            &[
                "é".into(),
                Value::Bytes(vec![1, 2]),
                2.5.into(),
                big("1180591620717411303424"),
                Value::FrozenSet(vec![Value::Complex(Complex::new(1.0, 2.0))]),
            ],
            &[("k".into(), Value::Set(vec![1.into()]))],
        );
        for end in 0..valid.len() {
            assert!(Marshal.deserialize(&valid[..end]).is_err(), "prefix {end}");
        }
        let python_with_refs = hex(
            "5b04000000db02000000e901000000da0374776f720000000029027200000000\
             fa0d73686172656420737472696e677203000000",
        );
        for end in 0..python_with_refs.len() {
            assert!(
                Marshal.deserialize(&python_with_refs[..end]).is_err(),
                "prefix {end}"
            );
        }
        // Random bytes, and random bytes after a valid start: never a panic.
        let alphabet = b"0NFTSiIlfgxystuaAzZr()[]{<>c?";
        let mut state: u64 = 0x1357_9bdf_2468_ace0;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..30_000 {
            let len = (next() % 32) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    match (round % 3, r % 4) {
                        // Mostly type codes (some flagged) and small numbers,
                        // so that containers and references get exercised.
                        (0, _) => r as u8,
                        (_, 0 | 1) => {
                            alphabet[(r >> 8) as usize % alphabet.len()] | (r as u8 & 0x80)
                        }
                        _ => (r >> 8) as u8 % 4,
                    }
                })
                .collect();
            let _ = Marshal.deserialize(&bytes);
        }
    }
}
