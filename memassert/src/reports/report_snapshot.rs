//! The deterministic text of a [`Report`] that goes into insta snapshots,
//! and [`assert_snapshot!`](crate::assert_snapshot).
//!
//! What goes in, and why:
//!
//! - peak, total bytes and allocation count, leaked bytes and blocks: the
//!   figures the attribute asserts on;
//! - the sites live at the peak, every allocation site (bytes and count),
//!   and the leaked sites, each sorted by size, then count, then location
//!   (descending, oldest frame first, as tracemalloc breaks ties);
//! - under each site its source line and the callers inside the workspace.
//!
//! What stays out: addresses, absolute and toolchain paths, std and
//! dependency frames below the site, hashes, timings, thread ids. Sizes are
//! exact by default; [`SnapshotOptions::round_to`] rounds them up to a
//! granularity where allocator policy (say, a `HashMap`'s growth) differs
//! between the platforms a team reviews on.

use std::cell::RefCell;
use std::fmt::Write;

use crate::reports::report::{Report, SiteRecord};
use crate::symbols::traceback::Frame;
use crate::tracemalloc::statistics::Key;

/// How reports are rendered for snapshots.
///
/// ```
/// let options = memassert::SnapshotOptions::default().round_to(1024).top(5);
/// memassert::with_snapshot_options(options, || {
///     // assert_snapshot!/#[track_alloc(snapshot)] calls here use them
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    round_to: usize,
    top: Option<usize>,
    callers: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            round_to: 1,
            top: None,
            callers: true,
        }
    }
}

impl SnapshotOptions {
    /// Rounds every byte figure up to a multiple of `bytes` (1: exact).
    pub fn round_to(mut self, bytes: usize) -> Self {
        self.round_to = bytes.max(1);
        self
    }

    /// Keeps only the `n` largest sites of each list.
    pub fn top(mut self, n: usize) -> Self {
        self.top = Some(n);
        self
    }

    /// Whether to list each site's callers (default: yes).
    pub fn callers(mut self, show: bool) -> Self {
        self.callers = show;
        self
    }

    fn size(&self, bytes: usize) -> String {
        let rounded = bytes.div_ceil(self.round_to).saturating_mul(self.round_to);
        crate::format_size(rounded)
    }
}

thread_local! {
    static OPTIONS: RefCell<SnapshotOptions> = RefCell::new(SnapshotOptions::default());
}

/// Runs `f` with `options` as this thread's snapshot options, as insta's
/// `Settings::bind`.
pub fn with_snapshot_options<R>(options: SnapshotOptions, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<SnapshotOptions>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(old) = self.0.take() {
                OPTIONS.with(|o| *o.borrow_mut() = old);
            }
        }
    }
    let _restore = Restore(Some(OPTIONS.with(|o| o.replace(options))));
    f()
}

fn in_workspace(frame: &Frame) -> bool {
    !frame.file.starts_with("library/")
        && crate::symbols::paths::readable_path(&frame.file).is_some_and(|p| p.is_file())
}

/// One list of sites, sorted by size, count, then location.
fn section(
    out: &mut String,
    title: &str,
    report: &Report,
    options: &SnapshotOptions,
    figure: impl Fn(&SiteRecord) -> (usize, usize),
) {
    // Grouped by traceback and sorted by size, count, then location.
    let rows = crate::tracemalloc::statistics::statistics(report.grouped(Key::Traceback, figure));
    let _ = writeln!(out, "\n{title}:");
    if rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let shown = options.top.unwrap_or(rows.len()).min(rows.len());
    for row in &rows[..shown] {
        let tb = &row.traceback;
        let site = tb.site();
        let _ = writeln!(
            out,
            "  {site}: size={}, count={}",
            options.size(row.size),
            row.count
        );
        if let Some(source) = site.source_line() {
            let _ = writeln!(out, "      {source}");
        }
        if !site.function.is_empty() {
            let _ = writeln!(out, "    in {}", site.function);
        }
        if options.callers {
            for frame in tb.frames()[1..].iter().filter(|f| in_workspace(f)) {
                let _ = writeln!(out, "    <- {frame} in {}", frame.function);
            }
        }
    }
    if shown < rows.len() {
        let rest = &rows[shown..];
        let bytes: usize = rest.iter().map(|r| r.size).sum();
        let count: usize = rest.iter().map(|r| r.count).sum();
        let _ = writeln!(
            out,
            "  ... {} more: size={}, count={count}",
            rest.len(),
            options.size(bytes)
        );
    }
}

impl Report {
    /// The report as deterministic text, for review in snapshots: no
    /// addresses, absolute paths or timings; sites sorted by size, then
    /// location. Uses this thread's [`SnapshotOptions`].
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let (_, report) = memassert::track(|| drop(vec![0u8; 100]));
    ///     let text = report.snapshot_text();
    ///     assert!(text.starts_with("peak: 100 B\n"));
    ///     assert!(!text.contains("0x"));
    /// }
    /// ```
    pub fn snapshot_text(&self) -> String {
        OPTIONS.with(|o| self.snapshot_text_with(&o.borrow()))
    }

    /// [`snapshot_text`](Report::snapshot_text) with explicit options.
    pub fn snapshot_text_with(&self, options: &SnapshotOptions) -> String {
        let _untracked = crate::base::reentrancy::Guard::enter();
        let mut out = String::new();
        let _ = writeln!(out, "peak: {}", options.size(self.peak()));
        let _ = writeln!(
            out,
            "total: {} in {} allocations",
            options.size(self.total()),
            self.allocs()
        );
        let _ = writeln!(
            out,
            "leaked: {} in {} blocks",
            options.size(self.leaked()),
            self.leaked_blocks()
        );
        section(&mut out, "live at peak", self, options, |s| {
            (s.peak_bytes, s.peak_blocks)
        });
        section(&mut out, "allocated", self, options, |s| {
            (s.total, s.allocs)
        });
        section(&mut out, "leaked", self, options, |s| {
            (s.live_bytes, s.live_blocks)
        });
        out
    }
}

/// Records a [`Report`] as an insta snapshot, to be reviewed with
/// `cargo insta review` like any other snapshot.
///
/// Forms, as insta's `assert_snapshot!`:
///
/// - `assert_snapshot!(report)`: a file snapshot named after the test;
/// - `assert_snapshot!(report, "name")`: a named file snapshot;
/// - `assert_snapshot!(report, @"...")`: an inline snapshot.
///
/// `report` may be a `Report` or a `&Report`. The text is
/// [`Report::snapshot_text`].
///
/// ```no_run
/// memassert::install!();
/// #[test]
/// fn profile() {
///     let (_, report) = memassert::track(|| vec![1, 2, 3].len());
///     memassert::assert_snapshot!(report);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! assert_snapshot {
    ($report:expr, @$inline:literal $(,)?) => {
        $crate::__private::insta::with_settings!(
            { omit_expression => true, description => $crate::__private::SNAPSHOT_DESCRIPTION },
            { $crate::__private::insta::assert_snapshot!($crate::__private::snapshot_text(&$report), @$inline) }
        )
    };
    ($report:expr, $name:expr $(,)?) => {
        $crate::__private::insta::with_settings!(
            { omit_expression => true, description => $crate::__private::SNAPSHOT_DESCRIPTION },
            { $crate::__private::insta::assert_snapshot!($name, $crate::__private::snapshot_text(&$report)) }
        )
    };
    ($report:expr $(,)?) => {
        $crate::__private::insta::with_settings!(
            { omit_expression => true, description => $crate::__private::SNAPSHOT_DESCRIPTION },
            { $crate::__private::insta::assert_snapshot!($crate::__private::snapshot_text(&$report)) }
        )
    };
}

/// The description insta records in the header of report snapshots.
pub const SNAPSHOT_DESCRIPTION: &str = "memassert allocation report (see Report::snapshot_text)";

/// The text [`assert_snapshot!`] records.
pub fn snapshot_text(report: &Report) -> String {
    report.snapshot_text()
}
