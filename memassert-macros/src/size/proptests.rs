//! Property tests for [`parse_size`]: it never panics, and it accepts exactly
//! the strings of the grammar documented in `size.rs`, with the value an
//! independent oracle computes.
//!
//! Each property runs [`DEFAULT_CASES`] cases; `PROPTEST_CASES` overrides
//! that (e.g. `PROPTEST_CASES=1000000 cargo test -p memassert-macros`).

use proptest::prelude::*;
use proptest::sample::select;

use super::{parse_size, SizeError};

/// Cases per property when `PROPTEST_CASES` is not set. All four
/// properties together take about 6 s at 100,000 cases each in a debug
/// build on two cores (proptest itself is optimised, see the workspace
/// `Cargo.toml`), so that is the default.
const DEFAULT_CASES: u32 = 100_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // A failure shrinks to a short string well before this.
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

/// What the oracle says about a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Oracle {
    /// In the grammar, with this many bytes (fractions rounded down).
    Bytes(u64),
    /// In the grammar, but more than `u64::MAX` bytes.
    TooLarge,
    /// Not in the grammar.
    Invalid,
}

/// The units of the grammar and their multipliers, as documented.
const ORACLE_UNITS: &[(&str, u128)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1_024),
    ("MiB", 1_048_576),
    ("GiB", 1_073_741_824),
    ("TiB", 1_099_511_627_776),
];

/// Reads `digits := [0-9]+ ("_" [0-9]+)*` at the start of `s`: the digit
/// values and the rest of `s`, or `None` if `s` does not start with one.
fn oracle_digits(s: &str) -> Option<(Vec<u8>, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut digits = Vec::new();
    loop {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            digits.push(bytes[i] - b'0');
            i += 1;
        }
        if i == start {
            return None; // empty group: nothing, or `_` not followed by a digit
        }
        if i < bytes.len() && bytes[i] == b'_' {
            i += 1;
        } else {
            return Some((digits, &s[i..]));
        }
    }
}

/// An independent reading of the documented grammar:
///
/// ```text
/// size   := ws* number ws* unit? ws*      (ws: char::is_whitespace, as trim)
/// number := digits ("." digits)?
/// digits := [0-9]+ ("_" [0-9]+)*
/// unit   := B | KB | MB | GB | TB | KiB | MiB | GiB | TiB  (ASCII case-insensitive)
/// ```
///
/// The value is `floor((int + 0.frac) * multiplier)`. It is computed
/// differently from the parser (which multiplies a decimal digit string):
/// the integer part in `u128`, the fraction by Horner's rule from its last
/// digit, using `floor((a + y) / 10) == floor((a + floor(y)) / 10)` for an
/// integer `a`, so the running value `floor(m * 0.d_i..d_n)` stays below `m`.
fn oracle(input: &str) -> Oracle {
    let s = input.trim_matches(char::is_whitespace);
    let Some((int, rest)) = oracle_digits(s) else {
        return Oracle::Invalid;
    };
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => match oracle_digits(after_dot) {
            Some(parsed) => parsed,
            None => return Oracle::Invalid,
        },
        None => (Vec::new(), rest),
    };
    let unit = rest.trim_start_matches(char::is_whitespace);
    // Whitespace between the number and the unit only if there is a unit
    // (`s` is trimmed, so whitespace here is always followed by something).
    let multiplier = if unit.is_empty() {
        1
    } else {
        match ORACLE_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        {
            Some(&(_, m)) => m,
            None => return Oracle::Invalid,
        }
    };
    let mut int_value: u128 = 0;
    for &d in &int {
        match int_value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(d)))
        {
            Some(v) => int_value = v,
            None => return Oracle::TooLarge,
        }
    }
    let mut frac_value: u128 = 0; // floor(multiplier * 0.<digits seen>)
    for &d in frac.iter().rev() {
        frac_value = (multiplier * u128::from(d) + frac_value) / 10;
    }
    match int_value
        .checked_mul(multiplier)
        .and_then(|v| v.checked_add(frac_value))
        .map(u64::try_from)
    {
        Some(Ok(bytes)) => Oracle::Bytes(bytes),
        _ => Oracle::TooLarge,
    }
}

/// Parses `input` and checks it against the oracle.
fn check(input: &str) -> Result<(), TestCaseError> {
    let parsed = parse_size(input);
    if let Err(e) = &parsed {
        // The message renders without panicking and quotes the input.
        let message = e.to_string();
        prop_assert!(message.starts_with("invalid size "), "{message}");
        prop_assert_eq!(&e.input, input);
    }
    let trimmed = input.trim();
    match (oracle(input), parsed.as_ref().map_err(|e| &e.kind)) {
        (Oracle::Bytes(want), Ok(&got)) => prop_assert_eq!(got, want, "input {:?}", input),
        (Oracle::TooLarge, Err(SizeError::Overflow)) => {}
        (Oracle::Invalid, Err(kind)) => {
            // The error kinds that are fully determined by the input.
            prop_assert_eq!(
                trimmed.is_empty(),
                *kind == SizeError::Empty,
                "input {:?}: {:?}",
                input,
                kind
            );
            prop_assert_eq!(
                !trimmed.is_empty() && trimmed.starts_with('-'),
                *kind == SizeError::Negative,
                "input {:?}: {:?}",
                input,
                kind
            );
            prop_assert!(
                *kind != SizeError::Overflow,
                "input {:?} is not in the grammar, yet reported as too large",
                input
            );
        }
        (want, got) => prop_assert!(
            false,
            "input {:?}: the grammar says {:?}, parse_size says {:?}",
            input,
            want,
            got
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies

/// Strings matching `pattern`, parsed once (a `&str` strategy parses its
/// regex again for every case).
fn regex(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    proptest::string::string_regex(pattern).unwrap()
}

/// Whitespace, ASCII and not, plus things that look like whitespace but are
/// not (`char::is_whitespace` is false for U+200B and U+FEFF).
fn spacing() -> impl Strategy<Value = String> {
    prop::collection::vec(
        select(vec![
            " ", "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{a0}", "\u{2003}", "\u{3000}", "\u{85}",
            "\u{200b}", "\u{feff}",
        ]),
        0..3,
    )
    .prop_map(|parts| parts.concat())
}

/// Digit groups joined by `_`, sometimes broken (leading, trailing or
/// doubled `_`, empty), sometimes very long.
fn digits() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => regex("[0-9]{1,4}(_[0-9]{1,4}){0,3}"),
        2 => any::<u64>().prop_map(|n| n.to_string()),
        1 => select(vec![
            "18446744073709551615",
            "18446744073709551616",
            "16777215",
            "16777216",
            "18446744",
            "073709551615",
            "999999999999999999999999999999999999999999",
            "00000000000000000000000000000000000000000001",
            "0",
            "00",
        ])
        .prop_map(str::to_owned),
        1 => regex("[0-9_]{0,8}"),
        1 => regex("[0-9]{30,200}"),
        1 => regex("[0-9\u{660}-\u{669}\u{ff10}-\u{ff19}]{1,4}"), // non-ASCII digits
    ]
}

/// A number: digits, maybe a fraction, maybe a sign or junk around it.
fn number() -> impl Strategy<Value = String> {
    (
        select(vec!["", "", "", "", "-", "+", ".", "_", "--", "-0"]),
        digits(),
        prop_oneof![
            4 => Just(String::new()),
            3 => digits().prop_map(|d| format!(".{d}")),
            1 => select(vec![".", "..", ".5.5", ",5", "e6", "E-3", "_"]).prop_map(str::to_owned),
        ],
    )
        .prop_map(|(sign, int, frac)| format!("{sign}{int}{frac}"))
}

/// A unit in random letter case, a near miss, or nothing.
fn unit() -> impl Strategy<Value = String> {
    let valid = (
        select(vec![
            "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB",
        ]),
        prop::collection::vec(any::<bool>(), 3),
    )
        .prop_map(|(unit, upper)| {
            unit.chars()
                .zip(upper)
                .map(|(c, up)| {
                    if up {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect::<String>()
        });
    prop_oneof![
        3 => Just(String::new()),
        6 => valid,
        2 => select(vec![
            "PB", "PiB", "EiB", "K", "M", "Mi", "iB", "KIBs", "MiBs", "Bytes", "bytes", "kbit",
            "Mi B", "M iB", "MiB MiB", "MiB.", "MiB_", "MiB 2", "MiB\u{0}", "\u{0}",
            "\u{212a}B",  // KELVIN SIGN: lowercases to `k` under Unicode rules
            "\u{212a}iB", // only ASCII case folding is documented
            "M\u{130}B",  // LATIN CAPITAL LETTER I WITH DOT ABOVE
            "\u{ff2d}\u{ff49}\u{ff22}", // fullwidth MiB
            "\u{3bc}B",   // µB
            "Mi\u{301}B", // combining accent
            "\u{200b}MiB", // zero-width space is not whitespace
            "KiB\u{200b}",
        ])
        .prop_map(str::to_owned),
        1 => regex("\\PC{1,4}"),
    ]
}

/// Strings assembled from the grammar's pieces: mostly valid, often one
/// piece off.
fn near_valid() -> impl Strategy<Value = String> {
    (spacing(), number(), spacing(), unit(), spacing())
        .prop_map(|(a, n, b, u, c)| format!("{a}{n}{b}{u}{c}"))
}

proptest! {
    #![proptest_config(config())]

    /// Any string at all: never panics, and agrees with the oracle (almost
    /// always `Err` here).
    #[test]
    fn arbitrary_strings(input in any::<String>()) {
        check(&input)?;
    }

    /// Strings over the grammar's own alphabet, where accidental matches and
    /// near misses are common.
    #[test]
    fn grammar_alphabet(input in regex("[0-9._ \t+\\-kKmMgGtTiIbB\u{a0}]{0,16}")) {
        check(&input)?;
    }

    /// Numbers with units, spaces, huge numbers, unicode and case variants.
    #[test]
    fn near_valid_strings(input in near_valid()) {
        check(&input)?;
    }

    /// Valid sizes built from their value: the parse is exact.
    #[test]
    fn valid_sizes_round_trip(
        int in any::<u64>(),
        frac in regex("[0-9]{1,25}"),
        has_frac in any::<bool>(),
        unit in select(vec![
            ("B", 1u128), ("kb", 1_000), ("Mb", 1_000_000), ("GB", 1_000_000_000),
            ("tB", 1_000_000_000_000), ("KiB", 1 << 10), ("mib", 1 << 20),
            ("GIB", 1 << 30), ("TiB", 1 << 40),
        ]),
        shift in 0u32..64,
    ) {
        // Spread the integer part over all magnitudes.
        let int = int >> shift;
        let (name, multiplier) = unit;
        let text = if has_frac { format!("{int}.{frac} {name}") } else { format!("{int}{name}") };
        // Exact value with big-enough integers: int * m + floor(0.frac * m),
        // the fraction as a rational frac_int / 10^len (len <= 25 < 38 digits).
        let frac_int: u128 = frac.parse().unwrap();
        let scale = 10u128.pow(frac.len() as u32);
        let frac_part = if has_frac {
            // m < 2^41 and frac_int < 10^25 < 2^84: the product fits in u128.
            multiplier * frac_int / scale
        } else {
            0
        };
        let want = u128::from(int) * multiplier + frac_part;
        match parse_size(&text) {
            Ok(got) => prop_assert_eq!(u128::from(got), want, "input {:?}", text),
            Err(e) => {
                prop_assert_eq!(e.kind, SizeError::Overflow, "input {:?}", text);
                prop_assert!(want > u128::from(u64::MAX), "input {:?}", text);
            }
        }
        check(&text)?;
    }
}

/// The oracle itself, on the examples the parser's unit tests use.
#[test]
fn oracle_agrees_with_documented_examples() {
    let bytes = |s: &str| match oracle(s) {
        Oracle::Bytes(n) => n,
        other => panic!("{s:?}: {other:?}"),
    };
    assert_eq!(bytes("1MiB"), 1 << 20);
    assert_eq!(bytes("  1   MiB  "), 1 << 20);
    assert_eq!(bytes("10 KB"), 10_000);
    assert_eq!(bytes("0B"), 0);
    assert_eq!(bytes("1.5 KiB"), 1536);
    assert_eq!(bytes("0.5 B"), 0);
    assert_eq!(bytes("0.1 MiB"), 104_857);
    assert_eq!(bytes("0.999999999999999999999999999999 TiB"), (1 << 40) - 1);
    assert_eq!(bytes("1_024 KiB"), 1 << 20);
    assert_eq!(bytes("18446744.073709551615 TB"), u64::MAX);
    assert_eq!(oracle("16777216 TiB"), Oracle::TooLarge);
    assert_eq!(oracle("18446744073709551616"), Oracle::TooLarge);
    for bad in [
        "",
        " ",
        "-1",
        "+1",
        "MiB",
        "1.",
        ".5",
        "1.2.3",
        "_1",
        "1_",
        "1__0",
        "1 Mi B",
        "1e6",
        "1 PiB",
        "1 MiBs",
        "1\u{212a}B",
    ] {
        assert_eq!(oracle(bad), Oracle::Invalid, "{bad:?}");
    }
}
