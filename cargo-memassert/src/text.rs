//! Sizes, percentages and sparklines as the commands print them.

/// A size as memassert's failure reports print it: the largest binary unit
/// that keeps it at or above 1, at most one decimal (`512 B`, `1 MiB`,
/// `97.7 KiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {unit}")
}

/// [`size`] with the exact byte count when the unit is above bytes:
/// `97.7 KiB (100000 B)`.
pub fn size_exact(bytes: u64) -> String {
    if bytes < 1024 {
        size(bytes)
    } else {
        format!("{} ({bytes} B)", size(bytes))
    }
}

/// The lower bound of size bucket `k`, short: `1 B`, `64 B`, `4 KiB`, `2 MiB`.
pub fn bucket(k: usize) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let unit = k / 10;
    format!("{} {}", 1u64 << (k % 10), units[unit.min(units.len() - 1)])
}

/// The non-zero range of a histogram: first and last buckets used.
pub fn used_range(sizes: &[u64; 64]) -> Option<(usize, usize)> {
    let lo = sizes.iter().position(|&n| n > 0)?;
    let hi = sizes.iter().rposition(|&n| n > 0)?;
    Some((lo, hi))
}

/// The histogram as a one-line sparkline over its used buckets, pytest-memray
/// style (`|▁  ▃▅█|`), with the range it covers: `|▁  ▃▅█| 8 B .. 4 KiB`
/// (from the first bucket's lower bound to the last one's upper bound). Each character is one power-of-two bucket; the
/// tallest is `█`, empty buckets are blank, any non-empty one at least `▁`.
pub fn sparkline(sizes: &[u64; 64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let Some((lo, hi)) = used_range(sizes) else {
        return "(no allocations)".into();
    };
    let max = sizes[lo..=hi].iter().copied().max().unwrap_or(1).max(1) as f64;
    let bars: String = sizes[lo..=hi]
        .iter()
        .map(|&n| {
            if n == 0 {
                ' '
            } else {
                let level = ((n as f64 / max) * 7.0).round() as usize;
                BARS[level.min(7)]
            }
        })
        .collect();
    let upper = if hi + 1 < 64 {
        bucket(hi + 1)
    } else {
        "more".into()
    };
    format!("|{bars}| {} .. {upper}", bucket(lo))
}

/// A relative change: `+12.5%`, `-3.0%`, `new` from zero.
pub fn change(old: u64, new: u64) -> String {
    if old == 0 {
        return if new == 0 {
            "0%".into()
        } else {
            "from 0".into()
        };
    }
    let pct = (new as f64 - old as f64) * 100.0 / old as f64;
    format!("{pct:+.1}%")
}

/// `12`, `12.5%`, `0.5 %` → the percentage.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if p >= 0.0 && p.is_finite() => Ok(p),
        _ => Err(format!(
            "{text:?} is not a percentage (write e.g. 10% or 2.5%)"
        )),
    }
}

/// HTML-escapes text for element content and attribute values.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_tracemalloc_prints_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(10240), "10 KiB");
        assert_eq!(size(100_000), "97.7 KiB");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(200 << 20), "200 MiB");
        assert_eq!(size_exact(100_000), "97.7 KiB (100000 B)");
    }

    #[test]
    fn sparkline_covers_the_used_buckets() {
        let mut sizes = [0u64; 64];
        sizes[3] = 1;
        sizes[6] = 4;
        sizes[11] = 8;
        assert_eq!(sparkline(&sizes), "|▂  ▅    █| 8 B .. 4 KiB");
        assert_eq!(sparkline(&[0; 64]), "(no allocations)");
        assert_eq!(bucket(0), "1 B");
        assert_eq!(bucket(20), "1 MiB");
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("10%"), Ok(10.0));
        assert_eq!(parse_percent("2.5"), Ok(2.5));
        assert!(parse_percent("ten").is_err());
        assert_eq!(change(100, 200), "+100.0%");
        assert_eq!(change(0, 5), "from 0");
    }
}
