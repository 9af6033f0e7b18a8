//! Helpers shared by the tracker-core test binaries (`mirror`, `exact_counts`,
//! `threads`, `snapshot_stats`, `snapshot_file`, `filters`): each declares
//! `mod tracker_support;`.
//!
//! Global tracing (`memassert::start`) is process-wide, while libtest runs
//! the tests of one binary on parallel threads: every test of a binary that
//! traces takes [`Tracing::start`] (or [`serial`]), so only one of them
//! traces at a time.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use memassert::{Filter, Snapshot};

static LOCK: Mutex<()> = Mutex::new(());

/// Serializes the tests of this binary (a failed test poisons nothing).
pub fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Global tracing for one test: holds the binary's lock, starts tracing with
/// `frames` frames, and stops it when dropped (also when the test panics).
pub struct Tracing {
    _lock: MutexGuard<'static, ()>,
}

impl Tracing {
    pub fn start(frames: usize) -> Tracing {
        let lock = serial();
        if memassert::is_tracing() {
            memassert::stop();
        }
        memassert::start(frames);
        Tracing { _lock: lock }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        // Runs before `_lock` is released.
        memassert::stop();
    }
}

/// The traces whose site is in `file` (a test's own `file!()`): immune to
/// what libtest's threads allocate meanwhile.
///
/// Except line 1: libtest's main thread allocates while it spawns and
/// reports tests, and memassert names the harness's generated `main`
/// (`<test binary>::main`, at line 1 of the test file) as the site of those
/// blocks. Line 1 of every test file here is a comment.
pub fn only(snapshot: &Snapshot, file: &str) -> Snapshot {
    snapshot.filter(&[Filter::include(file), Filter::exclude(file).line(1)])
}

/// The snapshot without the harness's `main` (see [`only`]).
pub fn without_harness(snapshot: &Snapshot, file: &str) -> Snapshot {
    snapshot.filter(&[Filter::exclude(file).line(1)])
}

/// The traces whose site is `file:line`.
pub fn at_line(snapshot: &Snapshot, file: &str, line: u32) -> Snapshot {
    snapshot.filter(&[Filter::include(file).line(line)])
}

/// `(bytes, blocks)` of a snapshot.
pub fn totals(snapshot: &Snapshot) -> (usize, usize) {
    (snapshot.total_size(), snapshot.traces().len())
}

/// Runs a check of the *global* traced counters ([`memassert::traced_memory`]).
///
/// Those counters see every thread of the process, and libtest's main
/// thread allocates while it spawns and reports tests, whatever lock the
/// tests hold. That noise is rare and transient, so the check gets a few
/// attempts; a real counting bug fails every attempt, and the last attempt's
/// panic is the test's failure.
pub fn exact_global(mut check: impl FnMut()) {
    const ATTEMPTS: usize = 5;
    for _ in 1..ATTEMPTS {
        if catch_unwind(AssertUnwindSafe(&mut check)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    check();
}

/// A block made in this file, for tests whose caller is in another file
/// (the site is here, the caller's frame below it), and the line it is made
/// on.
pub fn helper_block(size: usize) -> (Vec<u8>, u32) {
    (Vec::with_capacity(size), line!())
}
