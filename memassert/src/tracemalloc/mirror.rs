//! The tracemalloc mirror: module-level functions with tracemalloc's names
//! and meanings.

use std::collections::HashMap;
use std::fmt;

use crate::alloc::live_table;
use crate::alloc::recording::{self, require_installed, TRACING};
use crate::alloc::trace_config;
use crate::base::reentrancy::Guard;
use crate::capture::stack_table;
use crate::capture::stack_table::StackId;
use crate::symbols::symbolize;
use crate::symbols::traceback::Traceback;
use crate::tracemalloc::snapshot::{Snapshot, Trace};

pub use crate::alloc::trace_config::MAX_FRAMES;

/// Traced memory: bytes of the live traced blocks, and their peak since
/// tracing started or [`reset_peak`].
///
/// ```
/// let usage = memassert::Usage { current: 10, peak: 2048 };
/// assert_eq!(usage.to_string(), "current=10 B, peak=2048 B");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes live now.
    pub current: usize,
    /// Most bytes live at once.
    pub peak: usize,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "current={}, peak={}",
            crate::format_size(self.current),
            crate::format_size(self.peak)
        )
    }
}

/// Starts tracing allocations, keeping up to `frames` frames per traceback
/// (tracemalloc's `start(nframe)`; tracemalloc's default is 1). Calling it
/// while tracing changes the limit for new blocks.
///
/// Without code changes: `MEMASSERT_TRACEMALLOC=25` in the environment
/// starts tracing with 25 frames at the binary's first allocation, as
/// `PYTHONTRACEMALLOC=25` does for Python (unset, empty or `0`: off; a
/// value that is not a number of frames from 0 to [`MAX_FRAMES`] aborts at
/// start-up with a message; Unix only). The program then takes snapshots
/// as usual.
///
/// # Panics
///
/// If `frames` is 0 or above [`MAX_FRAMES`], or if the global allocator is
/// not a [`Tracker`](crate::Tracker).
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(25);
///     assert!(memassert::is_tracing());
///     assert_eq!(memassert::traceback_limit(), 25);
///     memassert::stop();
/// }
/// ```
#[track_caller]
pub fn start(frames: usize) {
    require_installed("start");
    assert!(
        (1..=MAX_FRAMES).contains(&frames),
        "memassert::start: frames must be between 1 and {MAX_FRAMES}, got {frames}"
    );
    // Read the environment now, not from inside an allocation later.
    crate::symbols::paths::workspace_root();
    trace_config::set_limit(frames);
    recording::set_hook(TRACING, true);
}

/// Stops tracing and forgets every traced block (tracemalloc's `stop()`).
/// Open scopes keep measuring.
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     memassert::stop();
///     assert!(!memassert::is_tracing());
///     assert_eq!(memassert::traced_memory().current, 0);
/// }
/// ```
pub fn stop() {
    require_installed("stop");
    recording::set_hook(TRACING, false);
    let _untracked = Guard::enter();
    live_table::clear_traced();
}

/// True while tracing (between [`start`] and [`stop`]).
pub fn is_tracing() -> bool {
    require_installed("is_tracing");
    recording::hook(TRACING)
}

/// Forgets every traced block and zeroes current and peak, without stopping.
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     let kept = vec![1u8; 4096];
///     memassert::clear_traces();
///     assert_eq!(memassert::traced_memory().current, 0);
///     memassert::stop();
///     # drop(kept);
/// }
/// ```
pub fn clear_traces() {
    require_installed("clear_traces");
    let _untracked = Guard::enter();
    live_table::clear_traced();
}

/// Current and peak traced bytes (tracemalloc's `get_traced_memory()`).
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     let block = vec![0u8; 1000];
///     assert!(memassert::traced_memory().current >= 1000);
///     memassert::stop();
///     # drop(block);
/// }
/// ```
pub fn traced_memory() -> Usage {
    require_installed("traced_memory");
    let (current, peak) = live_table::traced_memory();
    Usage { current, peak }
}

/// Sets the peak to the current traced size (tracemalloc's `reset_peak()`).
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     drop(vec![0u8; 1 << 20]);
///     memassert::reset_peak();
///     assert!(memassert::traced_memory().peak < 1 << 20);
///     memassert::stop();
/// }
/// ```
pub fn reset_peak() {
    require_installed("reset_peak");
    // Taking every shard lock allocates (a list of guards): untracked.
    let _untracked = Guard::enter();
    live_table::reset_peak();
}

/// Frames kept per traceback (tracemalloc's `get_traceback_limit()`).
pub fn traceback_limit() -> usize {
    require_installed("traceback_limit");
    trace_config::limit()
}

/// Bytes the tracker itself uses for its tables: live blocks, interned
/// stacks and resolved symbols (tracemalloc's `get_tracemalloc_memory()`).
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     let blocks: Vec<Box<u32>> = (0..1000).map(Box::new).collect();
///     assert!(memassert::tracker_memory() > 0);
///     memassert::stop();
///     # drop(blocks);
/// }
/// ```
pub fn tracker_memory() -> usize {
    require_installed("tracker_memory");
    let _untracked = Guard::enter();
    live_table::footprint().1 + stack_table::footprint().1 + symbolize::footprint().1
}

/// Number of live blocks the tracker holds a record of: traced blocks and
/// those of open scopes. With [`tracker_memory`], the tracker's cost per
/// block.
///
/// ```
/// memassert::install!();
/// fn main() {
///     let scope = memassert::Scope::start();
///     let blocks: Vec<Box<u32>> = (0..100).map(Box::new).collect();
///     assert!(memassert::tracked_blocks() >= 101);
///     let _ = scope.finish();
///     # drop(blocks);
/// }
/// ```
pub fn tracked_blocks() -> usize {
    require_installed("tracked_blocks");
    let _untracked = Guard::enter();
    live_table::footprint().0
}

/// Where a live traced block was allocated (tracemalloc's
/// `get_object_traceback()`): `None` when it is not traced.
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(4);
///     let data = vec![7u8; 100];
///     let tb = memassert::traceback_of(data.as_ptr()).expect("traced");
///     // With line tables (tests, examples) this is the `vec!` line above.
///     println!("allocated at {}", tb.site());
///     assert!(tb.site().function.ends_with("main"));
///     memassert::stop();
/// }
/// ```
pub fn traceback_of<T: ?Sized>(ptr: *const T) -> Option<Traceback> {
    require_installed("traceback_of");
    let entry = {
        let _untracked = Guard::enter();
        live_table::get(ptr as *const u8 as usize)?
    };
    entry
        .traced()
        .then(|| symbolize::traceback(entry.stack, trace_config::limit()))
}

/// The traced blocks now, with their tracebacks (tracemalloc's
/// `take_snapshot()`). The snapshot's own memory is not traced.
///
/// # Panics
///
/// When not tracing: call [`start`] first.
///
/// ```
/// memassert::install!();
/// fn main() {
///     memassert::start(1);
///     let data = vec![0u8; 4096];
///     let snap = memassert::take_snapshot();
///     memassert::stop();
///     let top = &snap.statistics(memassert::Key::Line)[0];
///     assert_eq!((top.size, top.count), (4096, 1));
///     # drop(data);
/// }
/// ```
#[track_caller]
pub fn take_snapshot() -> Snapshot {
    require_installed("take_snapshot");
    assert!(
        recording::hook(TRACING),
        "memassert::take_snapshot: tracing is off; call memassert::start(frames) first"
    );
    let _untracked = Guard::enter();
    let limit = trace_config::limit();
    let mut per_stack: HashMap<StackId, Vec<usize>> = HashMap::new();
    live_table::for_each_traced(|size, stack| per_stack.entry(stack).or_default().push(size));
    // Symbolize once per distinct stack; stacks that differ only below the
    // kept frames share one traceback (when their `total_nframe`, the depth
    // below, agrees too). Sorted by traceback, then size, so the
    // snapshot's order does not depend on the table's.
    let mut by_traceback: HashMap<Traceback, Vec<usize>> = HashMap::new();
    for (stack, sizes) in per_stack {
        by_traceback
            .entry(symbolize::traceback(stack, limit))
            .or_default()
            .extend(sizes);
    }
    let mut groups: Vec<(Traceback, Vec<usize>)> = by_traceback.into_iter().collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut traces = Vec::with_capacity(groups.iter().map(|g| g.1.len()).sum());
    for (traceback, mut sizes) in groups {
        sizes.sort_unstable();
        traces.extend(sizes.into_iter().map(|size| Trace {
            size,
            traceback: traceback.clone(),
        }));
    }
    Snapshot {
        traces,
        traceback_limit: limit,
    }
}
