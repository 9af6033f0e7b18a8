//! # memassert: tracemalloc for Rust tests
//!
//! memassert records every live allocation with the stack that made it,
//! groups them by site the way Python's `tracemalloc` does, and turns that
//! into test assertions: "this test peaks under 1 MiB", "nothing leaks",
//! "no growth at `src/cache.rs`".
//!
//! ## 1. Install the tracker
//!
//! Once per binary or test file (each integration test is its own binary):
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: memassert::Tracker = memassert::Tracker::system();
//! # fn main() {}
//! ```
//!
//! or `memassert::install!();`. Wrap another allocator with
//! [`Tracker::new`]. While nothing is tracing, the tracker only forwards.
//! Using memassert without it panics with the line to add.
//!
//! ## 2. The tracemalloc workflow
//!
//! ```
//! memassert::install!();
//!
//! fn allocate_bytes(size: usize) -> Vec<u8> {
//!     vec![b'x'; size]
//! }
//!
//! fn main() {
//!     memassert::start(25);
//!     let before = memassert::take_snapshot();
//!     let a = allocate_bytes(1 << 20);
//!     let after = memassert::take_snapshot();
//!
//!     // "Top 10 lines"
//!     for stat in after.statistics(memassert::Key::Line).iter().take(10) {
//!         println!("{stat}"); // memassert/src/lib.rs:23: size=1024 KiB, count=1, average=1024 KiB
//!     }
//!     // The traceback of the biggest block
//!     let biggest = &after.statistics(memassert::Key::Traceback)[0];
//!     println!("{}", biggest.traceback);
//!     // What grew
//!     let diff = after.compare_to(&before, memassert::Key::Line);
//!     assert_eq!(diff[0].size_diff, 1 << 20);
//!     memassert::stop();
//!     # drop(a);
//! }
//! ```
//!
//! | tracemalloc | memassert |
//! | --- | --- |
//! | `start(nframe)` | [`start`] |
//! | `stop()` | [`stop`] |
//! | `is_tracing()` | [`is_tracing`] |
//! | `clear_traces()` | [`clear_traces`] |
//! | `get_traced_memory()` | [`traced_memory`] |
//! | `reset_peak()` | [`reset_peak`] |
//! | `get_traceback_limit()` | [`traceback_limit`] |
//! | `get_tracemalloc_memory()` | [`tracker_memory`] |
//! | `get_object_traceback(obj)` | [`traceback_of`] |
//! | `take_snapshot()` | [`take_snapshot`] |
//! | `Snapshot.statistics`, `compare_to`, `filter_traces`, `dump`, `load` | [`Snapshot`] |
//!
//! ## 3. Sites
//!
//! A site is where user code asked for memory: the innermost frame outside
//! the standard library (`std`, `core`, `alloc`) and memassert. So
//! `String::from("x")` written at `src/app.rs:6` is reported at
//! `src/app.rs:6`, not inside `alloc`. Tracebacks keep the user frames below
//! the site too. Files are shown relative to the workspace root; std frames
//! as `library/...`, dependencies as `name-version/...`.
//!
//! Sites need line tables: the `dev` and `test` profiles have them. In
//! `release`, set `debug = "line-tables-only"` (or more) in the profile;
//! without debug info, frames show function names with `<unknown>` files.
//!
//! ## 4. Scopes
//!
//! ```
//! memassert::install!();
//! fn main() {
//!     let (_, report) = memassert::track(|| {
//!         let v: Vec<u32> = (0..1000).collect();
//!         v.len()
//!     });
//!     assert_eq!(report.peak(), 4000);
//!     assert_eq!(report.leaked(), 0);
//! }
//! ```
//!
//! [`Scope`] / [`track`] measure one piece of code: [`Report::peak`],
//! [`Report::total`], [`Report::allocs`], [`Report::leaked`], and the sites
//! live at the peak ([`Report::peak_statistics`]), exactly.
//!
//! ## 5. The test attribute
//!
//! ```ignore
//! #[test]
//! #[memassert::track_alloc(max = "1MiB", leaks = "0B")]
//! fn cache_stays_small() {
//!     let mut cache = mycrate::Cache::new();
//!     cache.insert("k", vec![0; 1024]);
//! }
//! ```
//!
//! See [`track_alloc`] for every argument and the failure report.

#![warn(missing_docs)]

mod alloc;
mod base;
mod capture;
mod reports;
mod scope;
mod size;
mod symbols;
mod test_support;
mod tracemalloc;

pub use alloc::recording::is_installed;
pub use alloc::tracker::Tracker;
pub use memassert_macros::track_alloc;
pub use reports::report::Report;
pub use reports::report_render::format_size_short;
pub use reports::report_snapshot::{with_snapshot_options, SnapshotOptions};
pub use scope::{track, Scope, ScopeOptions, DEFAULT_SCOPE_FRAMES};
pub use size::{format_size, format_size_diff};
pub use symbols::traceback::{Frame, FrameLimit, Traceback};
pub use tracemalloc::filter::Filter;
pub use tracemalloc::mirror::{
    clear_traces, is_tracing, reset_peak, start, stop, take_snapshot, traceback_limit,
    traceback_of, traced_memory, tracked_blocks, tracker_memory, Usage, MAX_FRAMES,
};
pub use tracemalloc::snapshot::{Snapshot, Trace};
pub use tracemalloc::snapshot_file::SnapshotFileError;
pub use tracemalloc::statistics::{Key, Statistic, StatisticDiff};

#[doc(hidden)]
pub mod __private {
    pub use crate::reports::report_snapshot::{snapshot_text, SNAPSHOT_DESCRIPTION};
    pub use crate::test_support::{
        check, run_test, run_test_async, Outcome, TestSpec, SPEED_SNIPPET,
    };
    pub use insta;
    /// Test-only pause points (feature `test-pause-points`).
    pub mod pause_points {
        pub use crate::alloc::pause_points::Point;
        #[cfg(feature = "test-pause-points")]
        pub use crate::alloc::pause_points::{arm, release, wait_stopped};
    }
    /// Loads what the tracker needs once (unwind tables, symbol tables), as
    /// `#[track_alloc]` does before the body runs.
    pub fn warm_up() {
        crate::symbols::warm_up::warm_up();
    }
    /// One-time loads so far (module lists, objects' symbol tables or
    /// debug info): a body that runs after [`warm_up`] adds none.
    pub fn one_time_loads() -> usize {
        crate::symbols::warm_up::one_time_loads()
    }
    /// Objects whose debug info has been read so far (with memassert's own
    /// symbolizer; 0 where the `backtrace` crate's is used): a passing
    /// test reads none on Linux.
    pub fn debug_info_reads() -> usize {
        crate::symbols::warm_up::debug_info_reads()
    }
    /// Whether the warm-up left telling std's work from the body's to the
    /// symbol tables alone (Linux, with std's symbols v0-mangled, as on
    /// current toolchains): then a passing test reads no debug info.
    pub fn symbol_tables_suffice() -> bool {
        crate::symbols::warm_up::symbol_tables_suffice()
    }
    /// Scopes open right now.
    pub fn open_scopes() -> usize {
        crate::alloc::scope_registry::open_count()
    }
    /// Bytes the live table holds (its part of `tracker_memory()`, without
    /// interned stacks and symbols): for the benchmark's per-block figure.
    pub fn live_table_bytes() -> usize {
        let _untracked = crate::base::reentrancy::Guard::enter();
        crate::alloc::live_table::footprint().1
    }
}
