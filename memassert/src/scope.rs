//! [`Scope`] and [`track`]: measure what one piece of code allocates.

use std::collections::HashMap;

use crate::alloc::recording::{self, require_installed};
use crate::alloc::scope_registry::{self, Opened, ScopeRef};
use crate::alloc::thread_owner;
use crate::base::reentrancy::Guard;
use crate::capture::sink::MAX_RAW_FRAMES;
use crate::capture::stack_capture;
use crate::capture::stack_table::StackId;
use crate::reports::report::{Report, SiteRecord, StatsCounters};

/// Frames kept per traceback in scopes unless set otherwise.
pub const DEFAULT_SCOPE_FRAMES: usize = 16;

/// Measures the allocations of the code that runs between
/// [`start`](Scope::start) and [`finish`](Scope::finish): peak live bytes,
/// total bytes, allocation count, what is still live at the end (leaks),
/// and which sites were live at the peak. Works whether or not global
/// tracing is on.
///
/// By default only this thread's allocations count (so tests running on
/// libtest's parallel threads do not see each other); a block allocated
/// here and freed on another thread is still freed here.
/// [`ScopeOptions::all_threads`] counts every thread's allocations: exact
/// when one test runs per process, as under cargo-nextest.
///
/// Scopes nest: what an inner scope counts, its enclosing scopes count too.
///
/// ```
/// memassert::install!();
/// fn main() {
///     let scope = memassert::Scope::start();
///     let kept: Vec<u64> = Vec::with_capacity(1000);
///     drop(vec![0u8; 1 << 20]);
///     let report = scope.finish();
///     assert_eq!(report.peak(), 8000 + (1 << 20));
///     assert_eq!(report.leaked(), 8000);
///     assert_eq!(report.allocs(), 2);
///     # drop(kept);
/// }
/// ```
#[derive(Debug)]
#[must_use = "a scope measures until `finish` is called"]
pub struct Scope {
    opened: Option<Opened>,
    frames: usize,
    baseline: Option<HashMap<StackId, (usize, usize)>>,
    baseline_live: (usize, usize),
    /// Whether it owns the threads started in it, and the owner of threads
    /// started on this thread before it opened (restored at close).
    owns_threads: Option<ScopeRef>,
    /// [`scope_registry::unclaimed`] when it opened.
    pub(crate) unclaimed_at_open: usize,
    /// [`thread_owner::lost`] when it opened.
    pub(crate) lost_at_open: usize,
    /// The stack the scope was opened on, when it follows code by name:
    /// its frames tell whether the build names that code with file and
    /// line (read only if a gate needs to know: see `test_support`).
    pub(crate) opened_on: Option<crate::capture::stack_table::StackId>,
    // The scope is tied to the thread that opened it.
    _not_send: std::marker::PhantomData<*const ()>,
}

/// How to open a [`Scope`]: `Scope::options().frames(32).all_threads().start()`.
///
/// ```
/// memassert::install!();
/// fn main() {
///     let scope = memassert::Scope::options().frames(4).all_threads().start();
///     let report = scope.finish();
///     assert_eq!(report.allocs(), 0);
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ScopeOptions {
    frames: usize,
    all_threads: bool,
    sites: bool,
    follow: Option<&'static str>,
    spawned_threads: bool,
    pub(crate) every_thread: bool,
    pub(crate) adopt: bool,
    pub(crate) opened_on: Option<crate::capture::stack_table::StackId>,
}

impl ScopeOptions {
    /// Frames kept per traceback (default 16).
    pub fn frames(mut self, frames: usize) -> Self {
        self.frames = frames.clamp(1, crate::MAX_FRAMES);
        self
    }

    /// Count every thread's allocations, not only this thread's. Threads
    /// with a scope of their own count in theirs. Meant for one test per
    /// process (cargo-nextest): all-threads scopes open at the same time on
    /// different threads (libtest's parallel tests) do not share out other
    /// threads' allocations between them; the latest opened gets them.
    pub fn all_threads(mut self) -> Self {
        self.all_threads = true;
        self
    }

    /// Only count: peak, total, allocations and leaks stay exact, but no
    /// stacks are captured, so the report names no sites (its statistics
    /// are empty) and std's work on the scope's behalf (a `println!`'s
    /// buffer) counts too. Several times cheaper than full tracking.
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let scope = memassert::Scope::options().counting().start();
    ///     drop(vec![0u8; 100]);
    ///     let report = scope.finish();
    ///     assert_eq!((report.peak(), report.allocs()), (100, 1));
    ///     assert!(report.peak_statistics(memassert::Key::Line).is_empty());
    /// }
    /// ```
    pub fn counting(mut self) -> Self {
        self.sites = false;
        self
    }

    /// Also count what other threads allocate while running the code of
    /// `function` (a path as `module_path!()` writes it, e.g.
    /// `mycrate::tests::parses`): its closures, async blocks and nested
    /// functions, wherever they run: threads it spawns or scopes, tasks it
    /// spawns on an async runtime, a thread pool's workers running its
    /// closures. `#[track_alloc]` follows the test function this way.
    ///
    /// A thread is seen running that code when a frame of it is on the
    /// thread's stack at the allocation: this needs symbols (debug info with
    /// function names: `debug = "limited"` or more in release builds).
    /// Threads with a scope of their own count in theirs. Keeps sites.
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let scope = memassert::Scope::options()
    ///         .follow(concat!(module_path!(), "::main"))
    ///         .start();
    ///     std::thread::spawn(|| drop(vec![0u8; 4096])).join().unwrap();
    ///     let report = scope.finish();
    ///     assert!(report.total() >= 4096);
    /// }
    /// ```
    pub fn follow(mut self, function: &'static str) -> Self {
        self.follow = Some(function);
        self.sites = true;
        self
    }

    /// Also count the threads started while the scope is open, by this
    /// thread or by a thread the scope already counts, whatever code they
    /// run (a closure, a module-level `fn`, a dependency's worker loop) and
    /// whatever debug info the build has: ownership comes from how the
    /// thread was started, not from the names of its frames. Threads
    /// started inside one-time initialisation (a `static`'s `OnceLock`: a
    /// global pool) are the process's, not the scope's. Threads with a
    /// scope of their own count in theirs. `#[track_alloc]` does this.
    ///
    /// Linux only (the scope sees threads start through `pthread_create`);
    /// elsewhere it changes nothing (README, "Platforms").
    ///
    /// ```
    /// memassert::install!();
    /// fn worker() {
    ///     std::mem::forget(vec![0u8; 4096]);
    /// }
    /// fn main() {
    ///     let scope = memassert::Scope::options().spawned_threads().start();
    ///     std::thread::spawn(worker).join().unwrap();
    ///     let report = scope.finish();
    ///     if cfg!(all(target_os = "linux", target_env = "gnu")) {
    ///         assert_eq!(report.leaked(), 4096);
    ///     } else if cfg!(target_os = "linux") {
    ///         // musl: std's own first-thread bookkeeping on the main
    ///         // thread can show here too (README, Known limitations).
    ///         assert!(report.leaked() >= 4096);
    ///     }
    /// }
    /// ```
    pub fn spawned_threads(mut self) -> Self {
        self.spawned_threads = true;
        self.sites = true;
        self
    }

    /// Count only this thread's allocations (the default).
    pub fn current_thread(mut self) -> Self {
        self.all_threads = false;
        self
    }

    /// Opens the scope.
    ///
    /// # Panics
    ///
    /// If the global allocator is not a [`Tracker`](crate::Tracker), or if
    /// 1024 scopes are open at once.
    #[track_caller]
    pub fn start(self) -> Scope {
        require_installed("Scope::start");
        stack_capture::ensure_depth(self.frames);
        if self.follow.is_some() {
            // Deep enough to see the followed code below a thread's, a
            // task's or a recursive parser's frames, and to name the user's
            // innermost frame in reports however deep the allocation.
            stack_capture::ensure_depth(MAX_RAW_FRAMES);
        }
        // Read the environment now, not from inside an allocation later.
        crate::symbols::paths::workspace_root();
        let opened = {
            let _untracked = Guard::enter();
            let opened =
                scope_registry::open(self.all_threads, self.every_thread, self.sites, self.follow);
            if opened.is_some() {
                recording::scope_opened();
            }
            opened
        };
        let opened = opened.expect("memassert: too many scopes open at once (1024)");
        if self.follow.is_some() && !opened.followed {
            let _untracked = Guard::enter();
            close(opened);
            panic!("memassert: too many scopes following code onto other threads at once (64)");
        }
        let owns_threads = self.spawned_threads.then(|| {
            let restore = thread_owner::begin(opened.scope);
            if self.adopt {
                thread_owner::adopt_started_here(opened.scope);
            }
            restore
        });
        Scope {
            unclaimed_at_open: scope_registry::unclaimed(),
            lost_at_open: thread_owner::lost(),
            opened_on: self.opened_on,
            owns_threads,
            opened: Some(opened),
            frames: self.frames,
            baseline: None,
            baseline_live: (0, 0),
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Scope {
    /// Opens a scope counting this thread's allocations, with 16-frame
    /// tracebacks.
    #[track_caller]
    pub fn start() -> Scope {
        Scope::options().start()
    }

    /// Options for a scope other than the default.
    pub fn options() -> ScopeOptions {
        ScopeOptions {
            frames: DEFAULT_SCOPE_FRAMES,
            all_threads: false,
            sites: true,
            follow: None,
            spawned_threads: false,
            every_thread: false,
            adopt: false,
            opened_on: None,
        }
    }

    /// Makes "now" the baseline for leaks: from here on, [`Report::leaked`]
    /// and [`Report::statistics`] count only the growth of live memory since
    /// this call. `#[track_alloc(repeat = N)]` calls it after the first run,
    /// so that one-time initialisation is not a leak.
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let mut scope = memassert::Scope::start();
    ///     let cache = vec![0u8; 100];
    ///     scope.checkpoint();
    ///     let report = scope.finish();
    ///     assert_eq!(report.leaked(), 0);
    ///     assert_eq!(report.peak(), 100);
    ///     # drop(cache);
    /// }
    /// ```
    pub fn checkpoint(&mut self) {
        let Some(opened) = &self.opened else { return };
        let _untracked = Guard::enter();
        let taken = scope_registry::with_state(opened.scope, |state| {
            let sites = state
                .sites
                .iter()
                .filter(|(_, s)| s.blocks > 0)
                .map(|(&stack, s)| (stack, (s.bytes, s.blocks)))
                .collect();
            (sites, (state.current, state.blocks))
        });
        if let Some((sites, live)) = taken {
            self.baseline = Some(sites);
            self.baseline_live = live;
        }
    }

    pub(crate) fn has_checkpoint(&self) -> bool {
        self.baseline.is_some()
    }

    /// Closes the scope and reports what the code allocated.
    ///
    /// # Panics
    ///
    /// In the child of a `fork()` (tracking is off there).
    pub fn finish(mut self) -> Report {
        let opened = self.opened.take().expect("an unfinished scope is open");
        require_installed("Scope::finish");
        let _untracked = Guard::enter();
        self.disown_threads(&opened);
        let state = close(opened);
        let mut at_peak: HashMap<StackId, (usize, usize)> = state
            .at_peak()
            .map(|(stack, bytes, blocks)| (stack, (bytes, blocks)))
            .collect();
        let sites = state
            .sites
            .iter()
            .filter(|(&stack, _)| stack != scope_registry::NO_STACK)
            .map(|(&stack, s)| {
                let (peak_bytes, peak_blocks) = at_peak.remove(&stack).unwrap_or((0, 0));
                SiteRecord {
                    stack,
                    live_bytes: s.bytes,
                    live_blocks: s.blocks,
                    peak_bytes,
                    peak_blocks,
                    allocs: s.allocs,
                    total: s.total,
                    max_bytes: s.max_bytes,
                    max_blocks: s.max_blocks,
                    thread: s.thread,
                }
            })
            .collect();
        let mut report = Report::new(
            state.peak,
            state.total,
            state.allocs,
            sites,
            self.baseline.take(),
            self.frames,
        );
        report.live = (state.current, state.blocks);
        report.baseline_live = self.baseline_live;
        report.sizes = state.sizes.0;
        report.stats = StatsCounters {
            allocations: state.allocs - state.reallocs,
            deallocations: state.frees,
            reallocations: state.reallocs,
            bytes_allocated: state.stats_bytes_allocated,
            bytes_deallocated: state.stats_bytes_deallocated,
            bytes_reallocated: state.bytes_reallocated,
        };
        report
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // Dropped without `finish` (e.g. the body panicked): close quietly.
        if let Some(opened) = self.opened.take() {
            // In a forked child the registry's locks may be held forever.
            if recording::in_forked_child() {
                return;
            }
            let _untracked = Guard::enter();
            self.disown_threads(&opened);
            close(opened);
        }
    }
}

impl Scope {
    /// Threads this scope owns go back to whoever owned threads here before.
    fn disown_threads(&mut self, opened: &Opened) {
        if let Some(restore) = self.owns_threads.take() {
            thread_owner::end(opened.scope, restore);
        }
    }

    /// Live bytes and blocks now, less those at the checkpoint (what
    /// [`Report::leaked`] would say if the scope finished now).
    pub(crate) fn leaked_now(&self) -> (usize, usize) {
        let Some(opened) = &self.opened else {
            return (0, 0);
        };
        let _untracked = Guard::enter();
        let live =
            scope_registry::with_state(opened.scope, |s| (s.current, s.blocks)).unwrap_or((0, 0));
        (
            live.0.saturating_sub(self.baseline_live.0),
            live.1.saturating_sub(self.baseline_live.1),
        )
    }

    /// The threads started in this scope that are still running (up to
    /// `out`'s length of them, with the stack that started each); how many.
    pub(crate) fn running_threads(&self, out: &mut [thread_owner::Straggler]) -> usize {
        match &self.opened {
            Some(opened) if self.owns_threads.is_some() => {
                thread_owner::running_started_in(opened.scope, out)
            }
            _ => 0,
        }
    }
}

fn close(opened: Opened) -> scope_registry::State {
    let state = scope_registry::close(opened);
    recording::scope_closed();
    state
}

/// Runs `f` in a [`Scope`] and returns its value with the report.
///
/// The returned value is still live when the scope finishes, so whatever it
/// owns counts as leaked.
///
/// ```
/// memassert::install!();
/// fn main() {
///     let (sum, report) = memassert::track(|| (0..100u64).collect::<Vec<_>>().iter().sum::<u64>());
///     assert_eq!(sum, 4950);
///     assert_eq!(report.peak(), 800);
///     assert_eq!(report.leaked(), 0);
/// }
/// ```
#[track_caller]
pub fn track<R>(f: impl FnOnce() -> R) -> (R, Report) {
    let scope = Scope::start();
    let value = f();
    (value, scope.finish())
}
