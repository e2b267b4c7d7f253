//! [`BigInt`]: a Python `int` of any size, and [`Complex`]: a Python
//! `complex`.
//!
//! Python integers have no fixed width; `2**70` is as ordinary to a Python
//! user as `7`. Values within `i64` travel as [`Value::Int`]; the rest as
//! [`Value::BigInt`], so no integer ever arrives rounded or wrapped. A
//! driver takes one as a `BigInt` parameter and converts it with
//! `i64::try_from(&big)` (or `u64`, `i128`, `u128`), which fails with a
//! message naming the number when it does not fit.
//!
//! Sizes are bounded as Python bounds them: at most 4300 decimal digits
//! ([`BigInt::MAX_DIGITS`], Python's default limit for converting between
//! integers and text), so that a hostile peer cannot make the host spend
//! quadratic time converting a megabyte of digits.
//!
//! [`Value::Int`]: super::Value::Int
//! [`Value::BigInt`]: super::Value::BigInt

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::ValueError;

/// An integer of any size (within [`BigInt::MAX_DIGITS`] decimal digits).
///
/// Equal numbers compare equal whatever their origin; the representation is
/// normalized (no leading zero limbs, no negative zero).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct BigInt {
    negative: bool,
    /// The magnitude in base 2^32, least significant limb first, without
    /// trailing zero limbs (zero is an empty vector).
    limbs: Vec<u32>,
}

/// 10^9, the largest power of ten in a limb: decimal conversion works nine
/// digits at a time.
const DECIMAL_CHUNK: u32 = 1_000_000_000;

impl BigInt {
    /// The most decimal digits a `BigInt` may have: Python's default limit
    /// for integer–text conversion (`sys.int_info.default_max_str_digits`).
    pub const MAX_DIGITS: usize = 4300;

    /// The most bits a magnitude may have: enough for every number of
    /// [`BigInt::MAX_DIGITS`] digits (10^4300 < 2^14285).
    pub const MAX_BITS: usize = 14_285;

    /// Builds a number from its sign and its magnitude as little-endian
    /// bytes (the form in which it crosses the plugin boundary).
    ///
    /// # Errors
    ///
    /// When the magnitude has more than [`BigInt::MAX_BITS`] bits.
    pub fn from_sign_magnitude(negative: bool, magnitude_le: &[u8]) -> Result<BigInt, ValueError> {
        let limbs = magnitude_le
            .chunks(4)
            .map(|chunk| {
                let mut bytes = [0u8; 4];
                bytes[..chunk.len()].copy_from_slice(chunk);
                u32::from_le_bytes(bytes)
            })
            .collect();
        BigInt::checked(negative, limbs)
    }

    /// Builds a number from its sign and little-endian digits of `bits` bits
    /// each (marshal writes integers in base 2^15).
    ///
    /// # Errors
    ///
    /// When a digit does not fit in `bits` bits, or the number has more than
    /// [`BigInt::MAX_BITS`] bits.
    pub fn from_digits(negative: bool, digits: &[u32], bits: u32) -> Result<BigInt, ValueError> {
        assert!((1..=32).contains(&bits), "digits are 1 to 32 bits wide");
        let total_bits = digits.len().saturating_mul(bits as usize);
        if total_bits > BigInt::MAX_BITS + bits as usize {
            return Err(too_large());
        }
        let mut limbs = vec![0u32; total_bits.div_ceil(32)];
        for (index, &digit) in digits.iter().enumerate() {
            if bits < 32 && digit >> bits != 0 {
                return Err(ValueError::new(format!(
                    "integer digit {digit} does not fit in {bits} bits"
                )));
            }
            let offset = index * bits as usize;
            let (limb, shift) = (offset / 32, offset % 32);
            let wide = u64::from(digit) << shift;
            limbs[limb] |= wide as u32;
            if let Some(next) = limbs.get_mut(limb + 1) {
                *next |= (wide >> 32) as u32;
            }
        }
        BigInt::checked(negative, limbs)
    }

    fn checked(negative: bool, mut limbs: Vec<u32>) -> Result<BigInt, ValueError> {
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
        let number = BigInt {
            negative: negative && !limbs.is_empty(),
            limbs,
        };
        if number.bits() > BigInt::MAX_BITS {
            return Err(too_large());
        }
        Ok(number)
    }

    /// Whether the number is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// How many bits the magnitude takes (0 for zero).
    pub fn bits(&self) -> usize {
        match self.limbs.last() {
            None => 0,
            Some(top) => self.limbs.len() * 32 - top.leading_zeros() as usize,
        }
    }

    /// The magnitude as little-endian bytes, without trailing zero bytes
    /// (empty for zero).
    pub fn magnitude_le(&self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        bytes
    }

    /// The magnitude as little-endian digits of `bits` bits each, at least
    /// one digit (marshal's form, with `bits` 15).
    pub fn to_digits(&self, bits: u32) -> Vec<u32> {
        assert!((1..=32).contains(&bits), "digits are 1 to 32 bits wide");
        let count = self.bits().div_ceil(bits as usize).max(1);
        let mask = if bits == 32 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        };
        (0..count)
            .map(|index| {
                let offset = index * bits as usize;
                let (limb, shift) = (offset / 32, offset % 32);
                let low = u64::from(self.limbs.get(limb).copied().unwrap_or(0));
                let high = u64::from(self.limbs.get(limb + 1).copied().unwrap_or(0));
                (((high << 32 | low) >> shift) as u32) & mask
            })
            .collect()
    }

    /// The nearest `f64` (infinite beyond `f64`'s range), as Python's
    /// `float(n)` would give, except that Python raises `OverflowError`
    /// where this gives infinity.
    pub fn to_f64(&self) -> f64 {
        let magnitude = self
            .limbs
            .iter()
            .rev()
            .fold(0.0f64, |acc, &limb| acc * 4_294_967_296.0 + f64::from(limb));
        if self.negative { -magnitude } else { magnitude }
    }

    /// The value as an `i128`, if it fits.
    fn to_i128(&self) -> Option<i128> {
        let magnitude = self.to_u128_magnitude()?;
        if self.negative {
            0i128.checked_sub_unsigned(magnitude)
        } else {
            i128::try_from(magnitude).ok()
        }
    }

    fn to_u128_magnitude(&self) -> Option<u128> {
        if self.limbs.len() > 4 {
            return None;
        }
        Some(
            self.limbs
                .iter()
                .rev()
                .fold(0u128, |acc, &limb| acc << 32 | u128::from(limb)),
        )
    }

    /// Multiplies the magnitude by `factor` and adds `addend`.
    fn mul_add(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.limbs {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
    }

    /// Divides the magnitude by `divisor`, returning the remainder.
    fn div_rem(&mut self, divisor: u32) -> u32 {
        let mut remainder = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let current = remainder << 32 | u64::from(*limb);
            *limb = (current / u64::from(divisor)) as u32;
            remainder = current % u64::from(divisor);
        }
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
        remainder as u32
    }
}

impl std::ops::Neg for BigInt {
    type Output = BigInt;

    fn neg(mut self) -> BigInt {
        self.negative = !self.negative && !self.limbs.is_empty();
        self
    }
}

fn too_large() -> ValueError {
    ValueError::new(format!(
        "integer has more than {} digits (Python's limit for integer-string conversion)",
        BigInt::MAX_DIGITS
    ))
}

macro_rules! bigint_from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for BigInt {
            fn from(n: $t) -> BigInt {
                BigInt::from_u128(false, u128::from(n))
            }
        }
    )*};
}
bigint_from_unsigned!(u8, u16, u32, u64, u128);

macro_rules! bigint_from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for BigInt {
            fn from(n: $t) -> BigInt {
                let n = i128::from(n);
                BigInt::from_u128(n < 0, n.unsigned_abs())
            }
        }
    )*};
}
bigint_from_signed!(i8, i16, i32, i64, i128);

impl BigInt {
    fn from_u128(negative: bool, magnitude: u128) -> BigInt {
        let limbs = (0..4).map(|i| (magnitude >> (32 * i)) as u32).collect();
        BigInt::checked(negative, limbs).expect("128 bits are within the limit")
    }
}

/// Conversions to fixed-width integers fail with a message naming the
/// number and the type it does not fit.
macro_rules! bigint_try_into {
    ($($t:ty),*) => {$(
        impl TryFrom<&BigInt> for $t {
            type Error = ValueError;
            fn try_from(n: &BigInt) -> Result<$t, ValueError> {
                n.to_i128()
                    .and_then(|i| <$t>::try_from(i).ok())
                    .or_else(|| {
                        // u128 values above i128::MAX.
                        (!n.negative)
                            .then(|| n.to_u128_magnitude())
                            .flatten()
                            .and_then(|u| <$t>::try_from(u).ok())
                    })
                    .ok_or_else(|| {
                        ValueError::new(format!(
                            "integer {n} does not fit in {}",
                            stringify!($t)
                        ))
                    })
            }
        }
        impl TryFrom<BigInt> for $t {
            type Error = ValueError;
            fn try_from(n: BigInt) -> Result<$t, ValueError> {
                <$t>::try_from(&n)
            }
        }
    )*};
}
bigint_try_into!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128);

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.clone();
        let mut chunks = Vec::new();
        while !rest.limbs.is_empty() {
            chunks.push(rest.div_rem(DECIMAL_CHUNK));
        }
        let mut digits = String::with_capacity(chunks.len() * 9 + 1);
        match chunks.split_last() {
            None => digits.push('0'),
            Some((top, lower)) => {
                digits.push_str(&top.to_string());
                for chunk in lower.iter().rev() {
                    digits.push_str(&format!("{chunk:09}"));
                }
            }
        }
        f.pad_integral(!self.negative, "", &digits)
    }
}

impl fmt::Debug for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BigInt({self})")
    }
}

impl FromStr for BigInt {
    type Err = ValueError;

    /// Reads decimal digits with an optional sign (`-1267650600228229401496703205376`).
    fn from_str(text: &str) -> Result<BigInt, ValueError> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::new(format!(
                "invalid integer {:?}",
                truncated(text)
            )));
        }
        let digits = digits.trim_start_matches('0');
        if digits.len() > BigInt::MAX_DIGITS {
            return Err(too_large());
        }
        let mut number = BigInt::default();
        let head = digits.len() % 9;
        let (first, rest) = digits.split_at(head);
        if !first.is_empty() {
            number.mul_add(1, first.parse().expect("ASCII digits"));
        }
        for chunk in rest.as_bytes().chunks(9) {
            let chunk = std::str::from_utf8(chunk).expect("ASCII digits");
            number.mul_add(DECIMAL_CHUNK, chunk.parse().expect("ASCII digits"));
        }
        BigInt::checked(negative, number.limbs)
    }
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

impl PartialOrd for BigInt {
    fn partial_cmp(&self, other: &BigInt) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigInt {
    fn cmp(&self, other: &BigInt) -> Ordering {
        let magnitude = || {
            self.limbs
                .len()
                .cmp(&other.limbs.len())
                .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
        };
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => magnitude(),
            (true, true) => magnitude().reverse(),
        }
    }
}

/// A complex number (Python `complex`): a real and an imaginary part.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Complex {
    /// The real part.
    pub re: f64,
    /// The imaginary part.
    pub im: f64,
}

impl Complex {
    /// `re + im·j`.
    pub fn new(re: f64, im: f64) -> Complex {
        Complex { re, im }
    }
}

/// Python's `repr`: `(1+2j)`, `2j`, `(1-0j)`, `(nan+infj)`.
impl fmt::Display for Complex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |x: f64| -> String {
            if x.is_nan() {
                "nan".to_owned()
            } else if x.is_infinite() {
                if x > 0.0 { "inf" } else { "-inf" }.to_owned()
            } else if x == x.trunc() && x.abs() < 1e16 {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        };
        let imaginary = part(self.im);
        if self.re == 0.0 && self.re.is_sign_positive() {
            return write!(f, "{imaginary}j");
        }
        let sign = if imaginary.starts_with('-') { "" } else { "+" };
        write!(f, "({}{sign}{imaginary}j)", part(self.re))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(text: &str) -> BigInt {
        text.parse().unwrap()
    }

    #[test]
    fn decimal_text_round_trips() {
        for text in [
            "0",
            "1",
            "-1",
            "999999999",
            "1000000000",
            "1180591620717411303424",
            "-1267650600228229401496703205376",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(big(text).to_string(), text);
        }
        assert_eq!(big("-0").to_string(), "0");
        assert_eq!(big("+0007").to_string(), "7");
        assert_eq!(big("-0"), BigInt::default());
        assert!(!big("-0").is_negative());
    }

    #[test]
    fn bad_text_is_an_error() {
        for text in ["", "-", "1.5", "12a", " 1", "0x10"] {
            assert!(text.parse::<BigInt>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn more_than_python_s_digit_limit_is_refused() {
        let at_limit = "9".repeat(BigInt::MAX_DIGITS);
        assert_eq!(big(&at_limit).to_string(), at_limit);
        let err = "1"
            .repeat(BigInt::MAX_DIGITS + 1)
            .parse::<BigInt>()
            .unwrap_err();
        assert!(err.message().contains("4300 digits"), "{err}");
        let err = BigInt::from_sign_magnitude(false, &[0xff; 2000]).unwrap_err();
        assert!(err.message().contains("4300 digits"), "{err}");
    }

    #[test]
    fn fixed_width_conversions_are_checked() {
        assert_eq!(i64::try_from(&BigInt::from(i64::MIN)).unwrap(), i64::MIN);
        assert_eq!(u64::try_from(&BigInt::from(u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(u128::try_from(&BigInt::from(u128::MAX)).unwrap(), u128::MAX);
        assert_eq!(i128::try_from(&BigInt::from(i128::MIN)).unwrap(), i128::MIN);
        let err = i64::try_from(&big("1180591620717411303424")).unwrap_err();
        assert_eq!(
            err.message(),
            "integer 1180591620717411303424 does not fit in i64"
        );
        assert!(u64::try_from(&BigInt::from(-1)).is_err());
        assert!(u8::try_from(&BigInt::from(256)).is_err());
        assert!(u128::try_from(&big("340282366920938463463374607431768211456")).is_err());
    }

    #[test]
    fn sign_and_magnitude_bytes_round_trip() {
        for text in ["0", "255", "256", "-1267650600228229401496703205376"] {
            let n = big(text);
            let back = BigInt::from_sign_magnitude(n.is_negative(), &n.magnitude_le()).unwrap();
            assert_eq!(back, n);
        }
        assert_eq!(BigInt::from(256).magnitude_le(), [0, 1]);
        assert_eq!(
            BigInt::from_sign_magnitude(true, &[0, 0, 0]).unwrap(),
            BigInt::default()
        );
    }

    #[test]
    fn fifteen_bit_digits_are_what_marshal_writes() {
        // marshal.dumps(2**70): five 15-bit digits, the top one 1 << 10.
        let n = big("1180591620717411303424");
        assert_eq!(n.to_digits(15), [0, 0, 0, 0, 1 << 10]);
        assert_eq!(
            BigInt::from_digits(false, &[0, 0, 0, 0, 1 << 10], 15).unwrap(),
            n
        );
        let m = big("-1267650600228229401496703205376");
        let back = BigInt::from_digits(true, &m.to_digits(15), 15).unwrap();
        assert_eq!(back, m);
        assert!(BigInt::from_digits(false, &[1 << 15], 15).is_err());
        assert_eq!(BigInt::default().to_digits(15), [0]);
    }

    #[test]
    fn negation_flips_the_sign_but_not_zero() {
        assert_eq!(-big("5"), big("-5"));
        assert_eq!(
            -big("-1180591620717411303424"),
            big("1180591620717411303424")
        );
        assert_eq!(-BigInt::default(), BigInt::default());
    }

    #[test]
    fn ordering_follows_the_numbers() {
        let mut numbers = [
            big("5"),
            big("-1180591620717411303424"),
            big("0"),
            big("-3"),
        ];
        numbers.sort();
        let sorted: Vec<String> = numbers.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["-1180591620717411303424", "-3", "0", "5"]);
    }

    #[test]
    fn floats_are_close() {
        assert_eq!(big("1180591620717411303424").to_f64(), 2f64.powi(70));
        assert_eq!(
            big("-1267650600228229401496703205376").to_f64(),
            -(2f64.powi(100))
        );
    }

    #[test]
    fn complex_numbers_print_as_python_does() {
        assert_eq!(Complex::new(1.0, 2.0).to_string(), "(1+2j)");
        assert_eq!(Complex::new(0.0, 2.0).to_string(), "2j");
        assert_eq!(Complex::new(1.5, -2.0).to_string(), "(1.5-2j)");
        assert_eq!(Complex::new(-0.0, 1.0).to_string(), "(-0+1j)");
        assert_eq!(
            Complex::new(f64::NAN, f64::INFINITY).to_string(),
            "(nan+infj)"
        );
    }
}
