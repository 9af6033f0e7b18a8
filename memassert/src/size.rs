//! Byte sizes as people read them, with tracemalloc's rules.

/// Formats a byte count as tracemalloc's `_format_size` does: steps of 1024
/// through B, KiB, MiB, GiB, TiB; one decimal below 100 of a unit above bytes,
/// none below 10 × 1024 of a unit.
///
/// ```
/// use memassert::format_size;
/// assert_eq!(format_size(100 * 1024 * 1024), "100 MiB");
/// assert_eq!(format_size(1500), "1500 B");
/// assert_eq!(format_size(12_000), "11.7 KiB");
/// assert_eq!(format_size(48), "48 B");
/// ```
pub fn format_size(bytes: usize) -> String {
    format_size_f(bytes as f64, false)
}

/// As [`format_size`], with an explicit sign (`+100 MiB`, `-48 B`, `+0 B`),
/// for differences.
///
/// ```
/// assert_eq!(memassert::format_size_diff(100 * 1024 * 1024), "+100 MiB");
/// assert_eq!(memassert::format_size_diff(-96), "-96 B");
/// assert_eq!(memassert::format_size_diff(0), "+0 B");
/// ```
pub fn format_size_diff(bytes: isize) -> String {
    format_size_f(bytes as f64, true)
}

pub(crate) fn format_size_f(mut size: f64, sign: bool) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    for unit in UNITS {
        if size.abs() < 100.0 && unit != "B" {
            return if sign {
                format!("{size:+.1} {unit}")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        if size.abs() < 10.0 * 1024.0 || unit == "TiB" {
            return if sign {
                format!("{size:+.0} {unit}")
            } else {
                format!("{size:.0} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the TiB branch always returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings computed with CPython's tracemalloc._format_size.
    #[test]
    fn matches_tracemalloc() {
        let cases: &[(usize, &str)] = &[
            (0, "0 B"),
            (1, "1 B"),
            (99, "99 B"),
            (10239, "10239 B"),
            (10240, "10.0 KiB"),
            (102_399, "100.0 KiB"),
            (102_400, "100 KiB"),
            (10_485_759, "10240 KiB"),
            (10_485_760, "10.0 MiB"),
            (104_857_600, "100 MiB"),
            (209_715_200, "200 MiB"),
            (1 << 40, "1024 GiB"),
            (100 << 40, "100 TiB"),
        ];
        for &(n, want) in cases {
            assert_eq!(format_size(n), want, "{n}");
        }
        assert_eq!(format_size_diff(-10240), "-10.0 KiB");
        assert_eq!(format_size_diff(56), "+56 B");
    }
}
