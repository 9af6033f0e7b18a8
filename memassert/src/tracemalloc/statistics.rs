//! [`Statistic`], [`StatisticDiff`] and grouping by [`Key`], as tracemalloc's
//! `Snapshot.statistics()` and `compare_to()`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use crate::size::{format_size, format_size_diff, format_size_f};
use crate::symbols::traceback::{Frame, Traceback};

/// What to group allocations by.
///
/// ```
/// use memassert::Key;
/// let keys = [Key::Line, Key::File, Key::Traceback];
/// # let _ = keys;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The site's file and line (tracemalloc's `'lineno'`).
    Line,
    /// The site's file (`'filename'`); statistics show the file alone.
    File,
    /// The whole traceback (`'traceback'`).
    Traceback,
}

/// Size and count of the blocks grouped under one key.
///
/// `Display` prints tracemalloc's line:
///
/// ```
/// use memassert::{Frame, Statistic, Traceback};
/// let stat = Statistic {
///     traceback: Traceback::new(vec![Frame {
///         file: "src/app.rs".into(),
///         line: 6,
///         function: "app::allocate_bytes".into(),
///     }]),
///     size: 100 * 1024 * 1024,
///     count: 1,
/// };
/// assert_eq!(stat.to_string(), "src/app.rs:6: size=100 MiB, count=1, average=100 MiB");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistic {
    /// The key: one frame for [`Key::Line`] and [`Key::File`], the whole
    /// traceback for [`Key::Traceback`].
    pub traceback: Traceback,
    /// Total bytes.
    pub size: usize,
    /// Number of blocks.
    pub count: usize,
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={}, count={}",
            self.traceback.site(),
            format_size(self.size),
            self.count
        )?;
        if self.count > 0 {
            let average = self.size as f64 / self.count as f64;
            write!(f, ", average={}", format_size_f(average, false))?;
        }
        Ok(())
    }
}

/// The difference of one key between two snapshots.
///
/// ```
/// use memassert::{Frame, StatisticDiff, Traceback};
/// let diff = StatisticDiff {
///     traceback: Traceback::new(vec![Frame {
///         file: "src/app.rs".into(),
///         line: 6,
///         function: String::new(),
///     }]),
///     size: 100 << 20,
///     size_diff: 100 << 20,
///     count: 1,
///     count_diff: 1,
/// };
/// assert_eq!(
///     diff.to_string(),
///     "src/app.rs:6: size=100 MiB (+100 MiB), count=1 (+1), average=100 MiB"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatisticDiff {
    /// The key, as in [`Statistic::traceback`].
    pub traceback: Traceback,
    /// Bytes in the new snapshot.
    pub size: usize,
    /// New bytes minus old bytes.
    pub size_diff: isize,
    /// Blocks in the new snapshot.
    pub count: usize,
    /// New blocks minus old blocks.
    pub count_diff: isize,
}

impl fmt::Display for StatisticDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={} ({}), count={} ({:+})",
            self.traceback.site(),
            format_size(self.size),
            format_size_diff(self.size_diff),
            self.count,
            self.count_diff
        )?;
        if self.count > 0 {
            let average = self.size as f64 / self.count as f64;
            write!(f, ", average={}", format_size_f(average, false))?;
        }
        Ok(())
    }
}

/// Size and count per distinct traceback: the input of every grouping.
pub(crate) type Totals<'a> = Vec<(&'a Traceback, usize, usize)>;

/// The frame a statistic is keyed by: file and line for [`Key::Line`] (as
/// tracemalloc, which does not know functions), the file for [`Key::File`].
fn key_frame(frame: &Frame, key: Key) -> Frame {
    Frame {
        file: frame.file.clone(),
        line: if key == Key::File { 0 } else { frame.line },
        function: String::new(),
    }
}

/// Groups per-traceback totals by `key` (every frame of a traceback when
/// `cumulative`; for [`Key::Traceback`] cumulative is the same as not).
///
/// [`Key::Line`] groups by file and line only; the grouped frame is given
/// the (alphabetically first) function seen at that line, so the result does
/// not depend on the input's order.
pub(crate) fn group(
    totals: &Totals<'_>,
    key: Key,
    cumulative: bool,
) -> HashMap<Traceback, (usize, usize)> {
    let mut out: HashMap<Frame, (usize, usize, String)> = HashMap::new();
    let mut whole: HashMap<Traceback, (usize, usize)> = HashMap::new();
    let mut add = |frame: &Frame, size: usize, count: usize| {
        let slot = out
            .entry(key_frame(frame, key))
            .or_insert_with(|| (0, 0, frame.function.clone()));
        slot.0 += size;
        slot.1 += count;
        if key == Key::Line && frame.function < slot.2 {
            slot.2 = frame.function.clone();
        }
    };
    for &(tb, size, count) in totals {
        match key {
            Key::Traceback => {
                let slot = whole.entry(tb.frames_only()).or_default();
                slot.0 += size;
                slot.1 += count;
            }
            _ if cumulative => {
                for frame in tb.frames() {
                    add(frame, size, count);
                }
            }
            _ => add(tb.site(), size, count),
        }
    }
    if key == Key::Traceback {
        return whole;
    }
    out.into_iter()
        .map(|(mut frame, (size, count, function))| {
            if key == Key::Line {
                frame.function = function;
            }
            (Traceback::new(vec![frame]), (size, count))
        })
        .collect()
}

/// Statistics sorted as tracemalloc sorts them (`Statistic._sort_key`,
/// `reverse=True`): by `(size, count, traceback)` descending, tracebacks
/// compared oldest frame first ([`Traceback::cmp_tracemalloc`]).
pub(crate) fn statistics(grouped: HashMap<Traceback, (usize, usize)>) -> Vec<Statistic> {
    let mut stats: Vec<Statistic> = grouped
        .into_iter()
        .map(|(traceback, (size, count))| Statistic {
            traceback,
            size,
            count,
        })
        .collect();
    stats.sort_by(by_size);
    stats
}

/// tracemalloc's statistics order: `(size, count, traceback)`, descending.
pub(crate) fn by_size(a: &Statistic, b: &Statistic) -> Ordering {
    (b.size, b.count)
        .cmp(&(a.size, a.count))
        .then_with(|| b.traceback.cmp_tracemalloc(&a.traceback))
}

/// The order of statistics whose `count` leads: `(count, size, traceback)`,
/// descending, ties as tracemalloc breaks them.
pub(crate) fn by_count(a: &Statistic, b: &Statistic) -> Ordering {
    (b.count, b.size)
        .cmp(&(a.count, a.size))
        .then_with(|| b.traceback.cmp_tracemalloc(&a.traceback))
}

/// Differences sorted as tracemalloc sorts them (`StatisticDiff._sort_key`,
/// `reverse=True`): by `(abs(size_diff), size, abs(count_diff), count,
/// traceback)` descending, tracebacks compared oldest frame first.
pub(crate) fn compare(
    new: HashMap<Traceback, (usize, usize)>,
    mut old: HashMap<Traceback, (usize, usize)>,
) -> Vec<StatisticDiff> {
    let mut diffs = Vec::with_capacity(new.len() + old.len());
    for (traceback, (size, count)) in new {
        let (old_size, old_count) = old.remove(&traceback).unwrap_or((0, 0));
        diffs.push(StatisticDiff {
            traceback,
            size,
            size_diff: size as isize - old_size as isize,
            count,
            count_diff: count as isize - old_count as isize,
        });
    }
    for (traceback, (old_size, old_count)) in old {
        diffs.push(StatisticDiff {
            traceback,
            size: 0,
            size_diff: -(old_size as isize),
            count: 0,
            count_diff: -(old_count as isize),
        });
    }
    diffs.sort_by(|a, b| {
        let ka = (
            a.size_diff.unsigned_abs(),
            a.size,
            a.count_diff.unsigned_abs(),
            a.count,
        );
        let kb = (
            b.size_diff.unsigned_abs(),
            b.size,
            b.count_diff.unsigned_abs(),
            b.count,
        );
        kb.cmp(&ka)
            .then_with(|| b.traceback.cmp_tracemalloc(&a.traceback))
    });
    diffs
}
