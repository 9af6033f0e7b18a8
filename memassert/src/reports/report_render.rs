//! Report text for people: the summary, and top-site lists in tracemalloc's
//! format with the source line and the traceback of the largest.

use std::fmt::{self, Write};

use crate::reports::not_counted::NotCounted;
use crate::reports::report::{Report, SiteRecord};
use crate::symbols::traceback::{Frame, Traceback};
use crate::tracemalloc::statistics::{Key, Statistic, StatisticDiff};

/// A size in the largest binary unit that keeps it at or above 1, with at
/// most one decimal: `1.4 MiB`, `1 MiB`, `512 B`.
///
/// ```
/// assert_eq!(memassert::format_size_short(1_468_006), "1.4 MiB");
/// assert_eq!(memassert::format_size_short(1 << 20), "1 MiB");
/// assert_eq!(memassert::format_size_short(1000), "1000 B");
/// ```
pub fn format_size_short(bytes: usize) -> String {
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

/// `measured` and `limit` in short form, with exact bytes where the short
/// forms would read the same.
pub(crate) fn sizes_pair(measured: usize, limit: usize) -> (String, String) {
    let (m, l) = (format_size_short(measured), format_size_short(limit));
    if m == l && measured != limit {
        (format!("{m} ({measured} B)"), format!("{l} ({limit} B)"))
    } else {
        (m, l)
    }
}

/// `peak 1.4 MiB, total 3 MiB in 120 allocations, leaked 0 B in 0 blocks`.
pub(crate) fn summary(report: &Report) -> String {
    format!(
        "peak {}, total {} in {} allocation{}, leaked {} in {} block{}",
        format_size_short(report.peak()),
        format_size_short(report.total()),
        report.allocs(),
        if report.allocs() == 1 { "" } else { "s" },
        format_size_short(report.leaked()),
        report.leaked_blocks(),
        if report.leaked_blocks() == 1 { "" } else { "s" },
    )
}

/// What the `leaks` gate left out, one line a pattern, under the figures of
/// a failure report:
/// `Not counted: 1.5 KiB in 1 block at crossbeam_deque::deque::Injector::push (known infrastructure: ...)`.
pub(crate) fn not_counted_lines(not_counted: &[NotCounted]) -> String {
    let mut out = String::new();
    for n in not_counted {
        let _ = writeln!(
            out,
            "Not counted: {} in {} block{} at {} ({})",
            format_size_short(n.bytes),
            n.blocks,
            if n.blocks == 1 { "" } else { "s" },
            n.pattern,
            n.why
        );
    }
    out
}

/// The indented frames of a traceback: `    src/a.rs:3 in a::f`; then, when
/// the traceback limit cut frames off (its `total_nframe` is larger), how
/// many: `    ... 3 more frames below (cut by the traceback limit)`.
pub(crate) fn traceback_lines(out: &mut String, traceback: &Traceback) {
    let mut shown = 0;
    for frame in traceback.frames() {
        // The marker standing for frames left out of the middle
        // (`... N frames omitted ...`) is not one of the stack's frames.
        if !(frame.line == 0 && frame.file.starts_with("...")) {
            shown += 1;
        }
        if frame.function.is_empty() {
            let _ = writeln!(out, "    {frame}");
        } else {
            let _ = writeln!(out, "    {frame} in {}", frame.function);
        }
    }
    if let Some(more) = traceback
        .total_nframe()
        .and_then(|total| total.checked_sub(shown))
        .filter(|&more| more > 0)
    {
        let _ = writeln!(
            out,
            "    ... {more} more frame{} below (cut by the traceback limit)",
            if more == 1 { "" } else { "s" },
        );
    }
}

/// A numbered top list: each statistic with its source line, and for the
/// first, the full traceback.
fn top_list(
    title: &str,
    stats: &[Statistic],
    top: usize,
    largest: impl Fn(&Frame) -> Option<Traceback>,
    threads: impl Fn(&Frame) -> Vec<String>,
) -> String {
    let mut out = String::new();
    let shown = stats.len().min(top);
    if shown == 0 {
        let _ = writeln!(out, "{title}: none");
        return out;
    }
    let _ = writeln!(
        out,
        "Top {shown} site{} {title}",
        if shown == 1 { "" } else { "s" }
    );
    for (i, stat) in stats.iter().take(top).enumerate() {
        let _ = writeln!(out, "#{}: {stat}", i + 1);
        if let Some(source) = stat.traceback.site().source_line() {
            let _ = writeln!(out, "    {source}");
        }
        if i == 0 {
            if let Some(tb) = largest(stat.traceback.site()) {
                traceback_lines(&mut out, &tb);
            }
        }
        let threads = threads(stat.traceback.site());
        if !threads.is_empty() {
            let _ = writeln!(out, "    on thread {}", threads.join(", "));
        }
    }
    if stats.len() > shown {
        let rest = &stats[shown..];
        let size: usize = rest.iter().map(|s| s.size).sum();
        let count: usize = rest.iter().map(|s| s.count).sum();
        let _ = writeln!(
            out,
            "{} other site{}: size={}, count={count}",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" },
            crate::format_size(size)
        );
    }
    out
}

fn by<'a>(
    report: &'a Report,
    figure: fn(&SiteRecord) -> usize,
) -> impl Fn(&Frame) -> Option<Traceback> + 'a {
    move |site| report.largest_traceback(site, figure)
}

fn on<'a>(
    report: &'a Report,
    figure: fn(&SiteRecord) -> usize,
) -> impl Fn(&Frame) -> Vec<String> + 'a {
    move |site| report.site_threads(site, figure)
}

/// Where a thread was started, for reports: the innermost frame outside
/// std of the stack that started it (`tests/a.rs:12 in a::t`).
pub(crate) fn started_at(stack: u32) -> String {
    if stack == u32::MAX {
        return "(where: not recorded)".to_string();
    }
    let traceback = crate::symbols::symbolize::traceback(stack, 4);
    match traceback.frames().first() {
        Some(frame) if !frame.function.is_empty() => format!("{frame} in {}", frame.function),
        Some(frame) => frame.to_string(),
        None => "(where: std only)".to_string(),
    }
}

/// The sites live at the peak.
pub(crate) fn peak_sites(report: &Report, top: usize) -> String {
    top_list(
        "by live size at peak",
        &report.peak_statistics(Key::Line),
        top,
        by(report, |s| s.peak_bytes),
        on(report, |s| s.peak_bytes),
    )
}

/// The sites still holding memory at the end.
pub(crate) fn leak_sites(report: &Report, top: usize) -> String {
    top_list(
        "by leaked size",
        &report.statistics(Key::Line),
        top,
        by(report, |s| s.live_bytes),
        on(report, |s| s.live_bytes),
    )
}

/// Where the allocations were made, most allocations first.
pub(crate) fn alloc_sites(report: &Report, top: usize) -> String {
    top_list(
        "by allocation count",
        &report.allocation_statistics(Key::Line),
        top,
        by(report, |s| s.allocs),
        on(report, |s| s.allocs),
    )
}

/// Where the bytes were requested, most bytes first.
pub(crate) fn total_sites(report: &Report, top: usize) -> String {
    let mut stats = report.allocation_statistics(Key::Line);
    stats.sort_by(crate::tracemalloc::statistics::by_size);
    top_list(
        "by bytes allocated",
        &stats,
        top,
        by(report, |s| s.total),
        on(report, |s| s.total),
    )
}

/// Growth lines in `compare_to` format, each with its source line.
pub(crate) fn growth_lines(diffs: &[StatisticDiff], top: usize) -> String {
    let mut out = String::new();
    for diff in diffs.iter().take(top) {
        let _ = writeln!(out, "{diff}");
        if let Some(source) = diff.traceback.site().source_line() {
            let _ = writeln!(out, "    {source}");
        }
    }
    out
}

/// A summary line, then the sites live at the peak, as a failure report
/// shows them.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&summary(self))?;
        f.write_str("\n")?;
        f.write_str(&peak_sites(self, 10))
    }
}
