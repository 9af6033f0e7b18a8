//! [`Snapshot`]: the traced blocks at one moment, grouped and compared on
//! demand.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::size::format_size;
use crate::symbols::traceback::Traceback;
use crate::tracemalloc::filter::{self, Filter};
use crate::tracemalloc::statistics::{self, Key, Statistic, StatisticDiff, Totals};

/// One traced block: its size and where it was allocated.
///
/// `Display` is tracemalloc's `str(trace)`, `<frame>: <size>`, naming the
/// site (tracemalloc names the traceback's oldest frame, see the README's
/// tracemalloc section):
///
/// ```
/// use memassert::{Frame, Trace, Traceback};
/// let at = |file: &str, line| Frame { file: file.into(), line, function: String::new() };
/// let trace = Trace { size: 10, traceback: Traceback::new(vec![at("src/a.rs", 4), at("src/main.rs", 9)]) };
/// assert_eq!(trace.to_string(), "src/a.rs:4: 10 B");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Bytes requested.
    pub size: usize,
    /// Where: site first, at most [`Snapshot::traceback_limit`] frames.
    pub traceback: Traceback,
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.traceback.site(), format_size(self.size))
    }
}

/// The traced blocks at the moment of [`take_snapshot`](crate::take_snapshot),
/// with symbolized tracebacks. Independent of the tracker once taken: it can
/// be filtered, compared, dumped and loaded.
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     let before = memassert::take_snapshot();
///     let data = vec![0u8; 1 << 20];
///     let after = memassert::take_snapshot();
///     memassert::stop();
///
///     let top = after.statistics(memassert::Key::Line);
///     assert_eq!(top[0].size, 1 << 20);
///     let diff = after.compare_to(&before, memassert::Key::Line);
///     assert_eq!(diff[0].size_diff, 1 << 20);
///     # drop(data);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub(crate) traces: Vec<Trace>,
    pub(crate) traceback_limit: usize,
}

impl Snapshot {
    /// A snapshot of the given traces (site-first tracebacks).
    ///
    /// ```
    /// use memassert::{Frame, Snapshot, Trace, Traceback};
    /// let tb = Traceback::new(vec![Frame { file: "a.rs".into(), line: 1, function: "f".into() }]);
    /// let snap = Snapshot::from_traces(vec![Trace { size: 10, traceback: tb }], 1);
    /// assert_eq!(snap.traces().len(), 1);
    /// ```
    pub fn from_traces(traces: Vec<Trace>, traceback_limit: usize) -> Snapshot {
        let mut snapshot = Snapshot {
            traces,
            traceback_limit,
        };
        snapshot.share_tracebacks();
        snapshot
    }

    /// The traced blocks.
    pub fn traces(&self) -> &[Trace] {
        &self.traces
    }

    /// Frames kept per traceback when the snapshot was taken
    /// ([`traceback_limit`](crate::traceback_limit) at that time).
    pub fn traceback_limit(&self) -> usize {
        self.traceback_limit
    }

    /// Total bytes of the traced blocks.
    pub fn total_size(&self) -> usize {
        self.traces.iter().map(|t| t.size).sum()
    }

    /// Statistics grouped by `key`, largest first.
    ///
    /// The order is tracemalloc's (`Statistic._sort_key`, sorted with
    /// `reverse=True`): by size, then count, then traceback, all
    /// descending, where tracebacks compare as tracemalloc's
    /// `Traceback.__lt__` does, oldest frame first, each frame by file, then
    /// line (function names break any tie left). So statistics of equal
    /// size and count come out as in Python: `c.py:1` before `b.py:2`
    /// before `b.py:1` before `a.py:1`.
    ///
    /// ```
    /// use memassert::{Frame, Key, Snapshot, Trace, Traceback};
    /// let at = |file: &str, line| Traceback::new(vec![Frame { file: file.into(), line, function: String::new() }]);
    /// let snap = Snapshot::from_traces(
    ///     vec![
    ///         Trace { size: 10, traceback: at("a.py", 1) },
    ///         Trace { size: 10, traceback: at("c.py", 1) },
    ///         Trace { size: 10, traceback: at("b.py", 1) },
    ///         Trace { size: 99, traceback: at("z.py", 1) },
    ///     ],
    ///     1,
    /// );
    /// let order: Vec<String> = snap.statistics(Key::Line).iter().map(|s| s.traceback.site().to_string()).collect();
    /// assert_eq!(order, ["z.py:1", "c.py:1", "b.py:1", "a.py:1"]);
    /// ```
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     memassert::start(1);
    ///     let v: Vec<Box<u64>> = (0..10).map(Box::new).collect();
    ///     let snap = memassert::take_snapshot();
    ///     memassert::stop();
    ///     let top = snap.statistics(memassert::Key::Traceback);
    ///     // Ten boxes of 8 bytes and the vector holding them.
    ///     assert!(top.iter().map(|s| s.count).sum::<usize>() >= 11);
    ///     # drop(v);
    /// }
    /// ```
    pub fn statistics(&self, key: Key) -> Vec<Statistic> {
        statistics::statistics(statistics::group(&self.totals(), key, false))
    }

    /// Statistics in which every frame of a traceback counts, not only the
    /// site (tracemalloc's `cumulative=True`). For [`Key::Traceback`] this is
    /// the same as [`statistics`](Snapshot::statistics).
    pub fn statistics_cumulative(&self, key: Key) -> Vec<Statistic> {
        statistics::statistics(statistics::group(&self.totals(), key, true))
    }

    /// What changed since `old`, grouped by `key`, as tracemalloc's
    /// `compare_to`.
    ///
    /// The order is tracemalloc's (`StatisticDiff._sort_key`, sorted with
    /// `reverse=True`): by absolute size difference, then size, absolute
    /// count difference, count, and traceback, all descending, tracebacks
    /// compared oldest frame first as in
    /// [`statistics`](Snapshot::statistics).
    ///
    /// ```
    /// use memassert::{Frame, Key, Snapshot, Trace, Traceback};
    /// let at = |file: &str| Traceback::new(vec![Frame { file: file.into(), line: 1, function: String::new() }]);
    /// let trace = |size, file| Trace { size, traceback: at(file) };
    /// let old = Snapshot::from_traces(vec![trace(10, "a.py"), trace(10, "c.py")], 1);
    /// let new = Snapshot::from_traces(vec![trace(10, "b.py"), trace(10, "d.py"), trace(40, "a.py")], 1);
    /// let diff = new.compare_to(&old, Key::Line);
    /// let order: Vec<(String, isize)> = diff.iter().map(|d| (d.traceback.site().file.clone(), d.size_diff)).collect();
    /// // Computed with CPython 3.11's tracemalloc on the same traces.
    /// assert_eq!(order, [("a.py".into(), 30), ("d.py".into(), 10), ("b.py".into(), 10), ("c.py".into(), -10)]);
    /// ```
    pub fn compare_to(&self, old: &Snapshot, key: Key) -> Vec<StatisticDiff> {
        self.compare_with(old, key, false)
    }

    /// [`compare_to`](Snapshot::compare_to) with every frame counted.
    pub fn compare_to_cumulative(&self, old: &Snapshot, key: Key) -> Vec<StatisticDiff> {
        self.compare_with(old, key, true)
    }

    fn compare_with(&self, old: &Snapshot, key: Key, cumulative: bool) -> Vec<StatisticDiff> {
        statistics::compare(
            statistics::group(&self.totals(), key, cumulative),
            statistics::group(&old.totals(), key, cumulative),
        )
    }

    /// A new snapshot with only the traces the filters let through: those
    /// matching any inclusive filter (when there is one) and no exclusive
    /// one. An empty list keeps everything.
    ///
    /// ```
    /// use memassert::{Filter, Frame, Snapshot, Trace, Traceback};
    /// let at = |file: &str| Traceback::new(vec![Frame { file: file.into(), line: 1, function: String::new() }]);
    /// let snap = Snapshot::from_traces(
    ///     vec![Trace { size: 1, traceback: at("src/a.rs") }, Trace { size: 2, traceback: at("library/std/src/io.rs") }],
    ///     1,
    /// );
    /// let mine = snap.filter(&[Filter::exclude("library/*")]);
    /// assert_eq!(mine.total_size(), 1);
    /// ```
    pub fn filter(&self, filters: &[Filter]) -> Snapshot {
        let mut verdicts: HashMap<*const [crate::Frame], bool> = HashMap::new();
        let traces = self
            .traces
            .iter()
            .filter(|t| {
                *verdicts
                    .entry(t.traceback.frames() as *const [crate::Frame])
                    .or_insert_with(|| filter::keep(filters, &t.traceback))
            })
            .cloned()
            .collect();
        Snapshot {
            traces,
            traceback_limit: self.traceback_limit,
        }
    }

    /// Per-distinct-traceback totals, in first-seen order.
    fn totals(&self) -> Totals<'_> {
        let mut index: HashMap<*const [crate::Frame], usize> = HashMap::new();
        let mut totals: Totals<'_> = Vec::new();
        for trace in &self.traces {
            let ptr = trace.traceback.frames() as *const [crate::Frame];
            let i = *index.entry(ptr).or_insert_with(|| {
                totals.push((&trace.traceback, 0, 0));
                totals.len() - 1
            });
            totals[i].1 += trace.size;
            totals[i].2 += 1;
        }
        totals
    }

    /// Makes equal tracebacks share one allocation (grouping goes by
    /// identity first).
    pub(crate) fn share_tracebacks(&mut self) {
        let mut seen: HashMap<Traceback, Traceback> = HashMap::new();
        for trace in &mut self.traces {
            let shared = seen
                .entry(trace.traceback.clone())
                .or_insert_with(|| trace.traceback.clone());
            if !Arc::ptr_eq(shared.shared(), trace.traceback.shared()) {
                trace.traceback = shared.clone();
            }
        }
    }
}
