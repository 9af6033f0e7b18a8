//! Parsing of human-readable sizes such as `"1 MiB"`, `"1.5 GB"` or `"0B"`.
//!
//! Grammar (surrounding whitespace and whitespace between the number and the
//! unit are allowed; units are case-insensitive):
//!
//! ```text
//! size   := number unit?
//! number := digits ("." digits)?        digits may contain `_` separators
//! unit   := B | KB | MB | GB | TB       powers of 1000
//!         | KiB | MiB | GiB | TiB       powers of 1024
//! ```
//!
//! A bare number is a count of bytes. A fractional size is rounded down to a
//! whole number of bytes (`"1.5 KiB"` is 1536, `"0.5 B"` is 0). The result
//! must fit in a `u64`; whether it fits the target's `usize` is checked by
//! the compiler on the emitted `usize` literal.

use std::fmt;

/// What a size may be written as, for error messages.
pub(crate) const EXPECTED: &str =
    "expected a number followed by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. \"1 MiB\")";

/// The units and their multipliers, lowercased.
const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// The string is empty or only whitespace.
    Empty,
    /// The string starts with a minus sign.
    Negative,
    /// There is a unit (or something else) but no number in front of it.
    MissingNumber,
    /// The number part is malformed (e.g. `1.2.3`, `1.`, `.5`, `1__0`).
    MalformedNumber(String),
    /// The unit is not one of the accepted ones.
    UnknownUnit(String),
    /// The size does not fit in a `u64`.
    Overflow,
}

/// A [`SizeError`] together with the input it was raised for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidSize {
    pub(crate) input: String,
    pub(crate) kind: SizeError,
}

impl fmt::Display for InvalidSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid size {:?}: ", self.input)?;
        match &self.kind {
            SizeError::Empty => write!(f, "{EXPECTED}"),
            SizeError::Negative => write!(f, "sizes cannot be negative; {EXPECTED}"),
            SizeError::MissingNumber => write!(f, "missing number; {EXPECTED}"),
            SizeError::MalformedNumber(n) => write!(f, "malformed number {n:?}; {EXPECTED}"),
            SizeError::UnknownUnit(u) => write!(f, "unknown unit {u:?}; {EXPECTED}"),
            SizeError::Overflow => write!(
                f,
                "too large; the largest size is {} bytes (16 EiB - 1)",
                u64::MAX
            ),
        }
    }
}

impl std::error::Error for InvalidSize {}

/// Parses a size string into a number of bytes, rounding fractions down.
pub(crate) fn parse_size(input: &str) -> Result<u64, InvalidSize> {
    parse_inner(input).map_err(|kind| InvalidSize {
        input: input.to_owned(),
        kind,
    })
}

fn parse_inner(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SizeError::Empty);
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative);
    }

    // Split into the number (digits, `.` and `_`) and the rest (the unit).
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (number, rest) = s.split_at(number_end);
    let unit = rest.trim_start();

    if number.is_empty() {
        return Err(SizeError::MissingNumber);
    }
    let (int_digits, frac_digits) = split_number(number)?;

    let multiplier = if unit.is_empty() {
        1
    } else {
        let lower = unit.to_ascii_lowercase();
        UNITS
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|&(_, m)| m)
            .ok_or_else(|| SizeError::UnknownUnit(unit.to_owned()))?
    };

    // Exact arithmetic: multiply the decimal digits (integer and fraction
    // together) by the multiplier, then drop as many trailing digits as the
    // fraction had. This rounds down without any floating-point error.
    let mut digits: Vec<u8> = int_digits.iter().chain(&frac_digits).copied().collect();
    mul_decimal(&mut digits, multiplier);
    digits.truncate(digits.len().saturating_sub(frac_digits.len()));
    decimal_to_u64(&digits)
}

/// Splits `12_3.45` into its integer and fraction digits (as values 0..=9),
/// validating the placement of `.` and `_`.
fn split_number(number: &str) -> Result<(Vec<u8>, Vec<u8>), SizeError> {
    let malformed = || SizeError::MalformedNumber(number.to_owned());
    let mut parts = number.split('.');
    let int_part = parts.next().unwrap_or_default();
    let frac_part = parts.next();
    if parts.next().is_some() {
        return Err(malformed());
    }
    let digits_of = |part: &str| -> Result<Vec<u8>, SizeError> {
        // Underscores are separators: not first, not last, not doubled.
        if part.is_empty() || part.starts_with('_') || part.ends_with('_') || part.contains("__") {
            return Err(malformed());
        }
        Ok(part
            .bytes()
            .filter(|&b| b != b'_')
            .map(|b| b - b'0')
            .collect())
    };
    let int_digits = digits_of(int_part)?;
    let frac_digits = match frac_part {
        Some(frac) => digits_of(frac)?,
        None => Vec::new(),
    };
    Ok((int_digits, frac_digits))
}

/// Multiplies a big-endian vector of decimal digits by `m` in place.
fn mul_decimal(digits: &mut Vec<u8>, m: u64) {
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let v = u128::from(*d) * u128::from(m) + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// Converts big-endian decimal digits to a `u64`, failing on overflow.
fn decimal_to_u64(digits: &[u8]) -> Result<u64, SizeError> {
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(SizeError::Overflow)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> u64 {
        parse_size(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> SizeError {
        match parse_size(s) {
            Ok(v) => panic!("{s:?} should not parse, got {v}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn every_unit() {
        assert_eq!(ok("1B"), 1);
        assert_eq!(ok("1KB"), 1_000);
        assert_eq!(ok("1MB"), 1_000_000);
        assert_eq!(ok("1GB"), 1_000_000_000);
        assert_eq!(ok("1TB"), 1_000_000_000_000);
        assert_eq!(ok("1KiB"), 1024);
        assert_eq!(ok("1MiB"), 1024 * 1024);
        assert_eq!(ok("1GiB"), 1024 * 1024 * 1024);
        assert_eq!(ok("1TiB"), 1024u64.pow(4));
    }

    #[test]
    fn bare_number_is_bytes() {
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("4096"), 4096);
        assert_eq!(ok("1.9"), 1);
    }

    #[test]
    fn zero() {
        assert_eq!(ok("0B"), 0);
        assert_eq!(ok("0 MiB"), 0);
        assert_eq!(ok("0.0 GiB"), 0);
    }

    #[test]
    fn case_insensitive_units() {
        assert_eq!(ok("1mib"), 1 << 20);
        assert_eq!(ok("1MIB"), 1 << 20);
        assert_eq!(ok("1Mib"), 1 << 20);
        assert_eq!(ok("2kb"), 2_000);
        assert_eq!(ok("2kB"), 2_000);
        assert_eq!(ok("3b"), 3);
        assert_eq!(ok("1 tib"), 1 << 40);
    }

    #[test]
    fn whitespace() {
        assert_eq!(ok("1 MiB"), 1 << 20);
        assert_eq!(ok("  1   MiB  "), 1 << 20);
        assert_eq!(ok("\t10\tKB\n"), 10_000);
        assert_eq!(ok(" 7 "), 7);
    }

    #[test]
    fn fractions_round_down() {
        assert_eq!(ok("1.5 MiB"), 1_572_864);
        assert_eq!(ok("1.5KiB"), 1536);
        assert_eq!(ok("0.5 B"), 0);
        assert_eq!(ok("2.25 KB"), 2250);
        assert_eq!(ok("0.001 KiB"), 1); // 1.024 -> 1
        assert_eq!(ok("0.0009 KiB"), 0); // 0.9216 -> 0
        assert_eq!(ok("0.1 MiB"), 104_857); // 104857.6 -> 104857
        assert_eq!(ok("1.000000000000000000000000000001 TiB"), 1 << 40);
        assert_eq!(ok("0.999999999999999999999999999999 TiB"), (1 << 40) - 1);
    }

    #[test]
    fn underscores() {
        assert_eq!(ok("1_000_000"), 1_000_000);
        assert_eq!(ok("1_024 KiB"), 1024 * 1024);
        assert!(matches!(
            err("_1 KiB"),
            SizeError::MissingNumber | SizeError::MalformedNumber(_)
        ));
        assert!(matches!(err("1_ KiB"), SizeError::MalformedNumber(_)));
        assert!(matches!(err("1__0 KiB"), SizeError::MalformedNumber(_)));
    }

    #[test]
    fn largest_sizes() {
        assert_eq!(ok("18446744073709551615"), u64::MAX);
        assert_eq!(ok("18446744073709551615 B"), u64::MAX);
        assert_eq!(ok("16777215 TiB"), 16_777_215 << 40);
        assert_eq!(ok("18446744.073709551615 TB"), u64::MAX);
    }

    #[test]
    fn overflow() {
        assert_eq!(err("18446744073709551616"), SizeError::Overflow);
        assert_eq!(err("16777216 TiB"), SizeError::Overflow);
        assert_eq!(err("20000000 TB"), SizeError::Overflow);
        assert_eq!(
            err("99999999999999999999999999999999999999999999 TiB"),
            SizeError::Overflow
        );
    }

    #[test]
    fn negative() {
        assert_eq!(err("-1"), SizeError::Negative);
        assert_eq!(err("-1 MiB"), SizeError::Negative);
        assert_eq!(err(" -0B"), SizeError::Negative);
    }

    #[test]
    fn empty() {
        assert_eq!(err(""), SizeError::Empty);
        assert_eq!(err("   "), SizeError::Empty);
    }

    #[test]
    fn missing_number() {
        assert_eq!(err("MiB"), SizeError::MissingNumber);
        assert_eq!(err(" B"), SizeError::MissingNumber);
        assert_eq!(err("+1 MiB"), SizeError::MissingNumber);
    }

    #[test]
    fn malformed_number() {
        assert_eq!(err("1.2.3 MiB"), SizeError::MalformedNumber("1.2.3".into()));
        assert_eq!(err("1. MiB"), SizeError::MalformedNumber("1.".into()));
        assert_eq!(err(".5 MiB"), SizeError::MalformedNumber(".5".into()));
    }

    #[test]
    fn unknown_unit() {
        assert_eq!(err("12 XB"), SizeError::UnknownUnit("XB".into()));
        assert_eq!(err("1 MiBs"), SizeError::UnknownUnit("MiBs".into()));
        assert_eq!(err("1 PiB"), SizeError::UnknownUnit("PiB".into()));
        assert_eq!(err("1 M"), SizeError::UnknownUnit("M".into()));
        assert_eq!(err("1 Mi B"), SizeError::UnknownUnit("Mi B".into()));
        assert_eq!(err("1 MiB 2"), SizeError::UnknownUnit("MiB 2".into()));
        assert_eq!(err("1e6"), SizeError::UnknownUnit("e6".into()));
    }

    #[test]
    fn messages_say_what_is_accepted() {
        let msg = parse_size("12 XB").unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid size \"12 XB\": unknown unit \"XB\"; expected a number followed by \
             B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. \"1 MiB\")"
        );
        let msg = parse_size("").unwrap_err().to_string();
        assert!(msg.starts_with("invalid size \"\": expected a number followed by"));
        let msg = parse_size("-1 MiB").unwrap_err().to_string();
        assert!(msg.contains("cannot be negative"), "{msg}");
        let msg = parse_size("16777216 TiB").unwrap_err().to_string();
        assert!(msg.contains("too large"), "{msg}");
    }
}

#[cfg(test)]
mod proptests;
