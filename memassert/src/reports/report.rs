//! [`Report`]: what a [`Scope`](crate::Scope) measured.

use std::collections::HashMap;

use crate::base::reentrancy::Guard;
use crate::capture::stack_table::StackId;
use crate::symbols::symbolize;
use crate::symbols::traceback::Traceback;
use crate::tracemalloc::statistics::{self, Key, Statistic, StatisticDiff};

/// Per-site figures of a scope (a site here is one interned stack).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SiteRecord {
    pub(crate) stack: StackId,
    pub(crate) live_bytes: usize,
    pub(crate) live_blocks: usize,
    pub(crate) peak_bytes: usize,
    pub(crate) peak_blocks: usize,
    pub(crate) allocs: usize,
    pub(crate) total: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_blocks: usize,
    /// The first other thread that allocated here (a name id of
    /// `thread_owner`; 0: only the scope's own thread).
    pub(crate) thread: u16,
}

/// What a [`Scope`](crate::Scope) (or [`track`](crate::track), or a
/// `#[track_alloc]` test body) allocated. All figures are exact bytes and
/// block counts of what the measured code allocated; tracebacks are
/// symbolized only when a method asks for them.
///
/// ```
/// memassert::install!();
/// fn main() {
///     let (_, report) = memassert::track(|| {
///         let leaked: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
///         let _temp = vec![0u8; 1024];
///         leaked.len()
///     });
///     assert_eq!(report.peak(), 64 + 1024);
///     assert_eq!(report.total(), 64 + 1024);
///     assert_eq!(report.allocs(), 2);
///     assert_eq!((report.leaked(), report.leaked_blocks()), (64, 1));
///     let leaks = report.statistics(memassert::Key::Line);
///     assert_eq!((leaks[0].size, leaks[0].count), (64, 1));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    peak: usize,
    total: usize,
    allocs: usize,
    sites: Vec<SiteRecord>,
    baseline: Option<HashMap<StackId, (usize, usize)>>,
    frames: usize,
    /// Live bytes and blocks at the end, and at the checkpoint (0 without).
    pub(crate) live: (usize, usize),
    pub(crate) baseline_live: (usize, usize),
    /// The test function the report is about: tracebacks stop above it
    /// (its own frame and the harness's are not news to anyone).
    test: Option<&'static str>,
    /// stats_alloc's counters for the scope.
    pub(crate) stats: StatsCounters,
    /// Requests by size, power-of-two buckets (see [`Report::size_histogram`]).
    pub(crate) sizes: [usize; 64],
}

/// The scope's figures in stats_alloc's terms.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(not(feature = "stats_alloc"), allow(dead_code))]
pub(crate) struct StatsCounters {
    pub(crate) allocations: usize,
    pub(crate) deallocations: usize,
    pub(crate) reallocations: usize,
    pub(crate) bytes_allocated: usize,
    pub(crate) bytes_deallocated: usize,
    pub(crate) bytes_reallocated: isize,
}

impl Report {
    pub(crate) fn new(
        peak: usize,
        total: usize,
        allocs: usize,
        sites: Vec<SiteRecord>,
        baseline: Option<HashMap<StackId, (usize, usize)>>,
        frames: usize,
    ) -> Report {
        Report {
            peak,
            total,
            allocs,
            sites,
            baseline,
            frames,
            test: None,
            stats: StatsCounters::default(),
            live: (0, 0),
            baseline_live: (0, 0),
            sizes: [0; 64],
        }
    }

    /// The scope's figures as stats_alloc's `Stats` (feature `stats_alloc`),
    /// for code moving from `stats_alloc::Region`: allocations and
    /// reallocations made in the scope, deallocations of the scope's blocks,
    /// and bytes by stats_alloc's rules (a reallocation's growth counts as
    /// allocated bytes, its shrinkage as deallocated bytes). Unlike a
    /// `Region`, only the scope's own work counts, not other threads'.
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let (_, report) = memassert::track(|| {
    ///         let mut v: Vec<u8> = Vec::with_capacity(10);
    ///         v.extend_from_slice(&[0; 20]);
    ///     });
    ///     let stats = report.stats();
    ///     assert_eq!((stats.allocations, stats.reallocations, stats.deallocations), (1, 1, 1));
    ///     assert_eq!(stats.bytes_allocated, 20);
    /// }
    /// ```
    #[cfg(feature = "stats_alloc")]
    pub fn stats(&self) -> stats_alloc::Stats {
        stats_alloc::Stats {
            allocations: self.stats.allocations,
            deallocations: self.stats.deallocations,
            reallocations: self.stats.reallocations,
            bytes_allocated: self.stats.bytes_allocated,
            bytes_deallocated: self.stats.bytes_deallocated,
            bytes_reallocated: self.stats.bytes_reallocated,
        }
    }

    /// Marks the report as a test's: tracebacks end at the test's body.
    pub(crate) fn for_test(mut self, test: &'static str) -> Report {
        self.test = Some(test);
        self
    }

    /// Peak live bytes allocated in the scope.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Bytes requested in all (reallocations count their new size).
    pub fn total(&self) -> usize {
        self.total
    }

    /// Allocation requests made, reallocations included.
    pub fn allocs(&self) -> usize {
        self.allocs
    }

    /// Bytes allocated in the scope and still live at its end; after a
    /// [`checkpoint`](crate::Scope::checkpoint), the growth of those since
    /// the checkpoint (never below zero).
    pub fn leaked(&self) -> usize {
        self.live.0.saturating_sub(self.baseline_live.0)
    }

    /// Blocks allocated in the scope and still live at its end (after a
    /// checkpoint, their growth since it).
    pub fn leaked_blocks(&self) -> usize {
        self.live.1.saturating_sub(self.baseline_live.1)
    }

    /// The scope's allocation requests by size, in power-of-two buckets:
    /// element `k` counts requests of `2^k` to `2^(k+1) - 1` bytes (element
    /// 0 also zero-size ones); reallocations count with their new size. The
    /// buckets add up to [`allocs`](Report::allocs). A scope opened with
    /// [`ScopeOptions::counting`](crate::ScopeOptions::counting) outside any other
    /// scope keeps no histogram (all zeros).
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let (_, report) = memassert::track(|| {
    ///         let _a = vec![0u8; 100]; // 64..=127
    ///         let _b = vec![0u8; 120]; // 64..=127
    ///         let _c = vec![0u8; 4096]; // 4096..=8191
    ///     });
    ///     let sizes = report.size_histogram();
    ///     assert_eq!((sizes[6], sizes[12]), (2, 1));
    ///     assert_eq!(sizes.iter().sum::<usize>(), report.allocs());
    /// }
    /// ```
    pub fn size_histogram(&self) -> &[usize; 64] {
        &self.sizes
    }

    /// Frames kept per traceback.
    pub fn frames(&self) -> usize {
        self.frames
    }

    pub(crate) fn traceback(&self, stack: StackId) -> Traceback {
        symbolize::traceback_until(stack, self.frames, self.test)
    }

    pub(crate) fn site_records(&self) -> &[SiteRecord] {
        &self.sites
    }

    /// The sites' `figure`s grouped by `key` (sites where it is zero left
    /// out).
    pub(crate) fn grouped(
        &self,
        key: Key,
        figure: impl Fn(&SiteRecord) -> (usize, usize),
    ) -> HashMap<Traceback, (usize, usize)> {
        let _untracked = Guard::enter();
        let tracebacks: Vec<Traceback> =
            self.sites.iter().map(|s| self.traceback(s.stack)).collect();
        let totals = self
            .sites
            .iter()
            .zip(&tracebacks)
            .map(|(s, tb)| {
                let (size, count) = figure(s);
                (tb, size, count)
            })
            .filter(|&(_, size, count)| size > 0 || count > 0)
            .collect();
        statistics::group(&totals, key, false)
    }

    /// The leaked blocks by site, largest first: what was allocated in the
    /// scope and is still live (after a checkpoint: the sites whose live
    /// memory grew, by how much).
    pub fn statistics(&self, key: Key) -> Vec<Statistic> {
        match &self.baseline {
            None => statistics::statistics(self.grouped(key, |s| (s.live_bytes, s.live_blocks))),
            Some(_) => self
                .growth(key)
                .into_iter()
                .filter(|d| d.size_diff > 0)
                .map(|d| Statistic {
                    traceback: d.traceback,
                    size: d.size_diff as usize,
                    count: d.count_diff.max(0) as usize,
                })
                .collect(),
        }
    }

    /// The blocks live at the moment of the peak, by site, largest first.
    /// Exact: the figures are those of that moment, not an estimate.
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let (_, report) = memassert::track(|| {
    ///         let big = vec![0u8; 4096];
    ///         drop(big);
    ///         let _small = vec![0u8; 16];
    ///     });
    ///     let at_peak = report.peak_statistics(memassert::Key::Line);
    ///     assert_eq!(at_peak.len(), 1);
    ///     assert_eq!(at_peak[0].size, 4096);
    /// }
    /// ```
    pub fn peak_statistics(&self, key: Key) -> Vec<Statistic> {
        statistics::statistics(self.grouped(key, |s| (s.peak_bytes, s.peak_blocks)))
    }

    /// Every allocation the scope made, by site: `size` is the bytes
    /// requested, `count` the number of requests (reallocations included).
    pub fn allocation_statistics(&self, key: Key) -> Vec<Statistic> {
        let mut stats = statistics::statistics(self.grouped(key, |s| (s.total, s.allocs)));
        stats.sort_by(statistics::by_count);
        stats
    }

    /// Live memory at the end compared with the checkpoint (or with nothing,
    /// without one), by site, as [`Snapshot::compare_to`](crate::Snapshot::compare_to).
    pub fn growth(&self, key: Key) -> Vec<StatisticDiff> {
        let new = self.grouped(key, |s| (s.live_bytes, s.live_blocks));
        let old = match &self.baseline {
            None => HashMap::new(),
            Some(baseline) => {
                let _untracked = Guard::enter();
                let tracebacks: Vec<(Traceback, usize, usize)> = baseline
                    .iter()
                    .map(|(&stack, &(bytes, blocks))| (self.traceback(stack), bytes, blocks))
                    .collect();
                let totals = tracebacks.iter().map(|(tb, b, n)| (tb, *b, *n)).collect();
                statistics::group(&totals, key, false)
            }
        };
        statistics::compare(new, old)
    }

    /// Each stack's share of [`leaked`](Report::leaked): `(stack, bytes,
    /// blocks)` still live at the end beyond its checkpoint figures.
    pub(crate) fn leaked_by_stack(&self) -> Vec<(StackId, usize, usize)> {
        self.sites
            .iter()
            .map(|s| {
                let (bytes, blocks) = self
                    .baseline
                    .as_ref()
                    .and_then(|b| b.get(&s.stack).copied())
                    .unwrap_or((0, 0));
                (
                    s.stack,
                    s.live_bytes.saturating_sub(bytes),
                    s.live_blocks.saturating_sub(blocks),
                )
            })
            .filter(|&(_, bytes, blocks)| bytes > 0 || blocks > 0)
            .collect()
    }

    /// The report without the leaked share of `stacks` (see
    /// [`leaked_by_stack`](Report::leaked_by_stack)): what the `leaks` gate
    /// counts once suppressions are left out. Peak and totals stay.
    pub(crate) fn without_leaks_of(&self, stacks: &[(StackId, usize, usize)]) -> Report {
        let mut report = self.clone();
        for &(stack, bytes, blocks) in stacks {
            for site in report.sites.iter_mut().filter(|s| s.stack == stack) {
                site.live_bytes -= bytes.min(site.live_bytes);
                site.live_blocks -= blocks.min(site.live_blocks);
            }
            report.live.0 = report.live.0.saturating_sub(bytes);
            report.live.1 = report.live.1.saturating_sub(blocks);
        }
        report
    }

    /// The full traceback that holds the most bytes among those whose site
    /// is `site`, by the given figure; of equal ones, the one tracemalloc
    /// would list first (the greatest, oldest frame first).
    pub(crate) fn largest_traceback(
        &self,
        site: &crate::Frame,
        figure: impl Fn(&SiteRecord) -> usize,
    ) -> Option<Traceback> {
        let _untracked = Guard::enter();
        self.sites
            .iter()
            .filter(|s| figure(s) > 0)
            .map(|s| (figure(s), self.traceback(s.stack)))
            .filter(|(_, tb)| tb.site() == site)
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp_tracemalloc(&b.1)))
            .map(|(_, tb)| tb)
    }

    /// The names of the other threads that allocated at `site` (with
    /// `figure` above zero), sorted, without repeats.
    pub(crate) fn site_threads(
        &self,
        site: &crate::Frame,
        figure: impl Fn(&SiteRecord) -> usize,
    ) -> Vec<String> {
        let _untracked = Guard::enter();
        let mut names: Vec<String> = self
            .sites
            .iter()
            .filter(|s| s.thread != 0 && figure(s) > 0)
            .filter(|s| self.traceback(s.stack).site() == site)
            .map(|s| crate::alloc::thread_owner::thread_name(s.thread))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}
