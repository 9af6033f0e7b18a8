//! The slow path: what the tracker does with an allocation once tracing or
//! a scope is on. Called only from [`crate::alloc::tracker`].
//!
//! Order of work on an allocation: enter the reentrancy guard, capture raw
//! instruction pointers, intern them into a stack id, then lock the block's
//! live-table shard and, under that one lock, charge the open scopes and
//! record the block (the protocol is in `scope_registry`'s docs). No symbols,
//! no formatting: those wait until a report asks.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use crate::alloc::live_table::{self, Entry, Locked};
use crate::alloc::pause_points::{self, Point};
use crate::alloc::scope_registry::{self, Charge};
use crate::alloc::thread_owner;
use crate::alloc::trace_config;
use crate::base::reentrancy::Guard;
use crate::capture::stack_table::{self, Class};
use crate::symbols::symbolize;

/// What the hot path must look at. Zero means: forward and return.
static HOOKS: Hooks = Hooks(AtomicU32::new(ENV_PENDING));

/// [`HOOKS`] on a cache line of its own: every allocation of the process
/// reads it, so no atomic written on the hot path (a counter, a lock) may
/// share its line, whatever the linker puts next to it.
#[repr(align(128))]
struct Hooks(AtomicU32);
/// Global tracing (`memassert::start`) is on.
pub(crate) const TRACING: u32 = 1;
/// `MEMASSERT_TRACEMALLOC` has not been read yet: the first allocation
/// reads it (`trace_config`), then this bit is clear for good.
const ENV_PENDING: u32 = 2;
/// The number of open [`Scope`](crate::Scope)s lives in the bits from
/// here up: counting them in the same word as the flags makes "a scope is
/// open" change atomically with the count (a separate counter and flag
/// could race a closing and an opening scope into "open, flag off").
const SCOPE_ONE: u32 = 1 << 8;
/// [`is_installed`] is probing for the tracker.
const PROBE: u32 = 4;

/// Set by the first allocation that reaches the tracker while probing.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// True when the tracker has work to do on an allocation.
#[inline(always)]
pub(crate) fn hooks_on() -> bool {
    HOOKS.0.load(Relaxed) != 0
}

pub(crate) fn set_hook(bit: u32, on: bool) {
    if on {
        HOOKS.0.fetch_or(bit, Relaxed);
    } else {
        HOOKS.0.fetch_and(!bit, Relaxed);
    }
}

/// Counts a scope opening.
pub(crate) fn scope_opened() {
    HOOKS.0.fetch_add(SCOPE_ONE, Relaxed);
}

/// Counts a scope closing.
pub(crate) fn scope_closed() {
    HOOKS.0.fetch_sub(SCOPE_ONE, Relaxed);
}

pub(crate) fn hook(bit: u32) -> bool {
    HOOKS.0.load(Relaxed) & bit != 0
}

/// Records a fresh block.
#[inline(never)]
pub(crate) fn on_alloc(ptr: *mut u8, size: usize) {
    // Inside the tracker already (its own bookkeeping allocating): untracked.
    let Some(_guard) = Guard::enter() else { return };
    let hooks = HOOKS.0.load(Relaxed);
    // Only scopes open (no flag bit): most often a counting scope's block.
    if hooks & (SCOPE_ONE - 1) == 0 && count_fast(ptr, size) {
        return;
    }
    on_alloc_general(ptr, size, hooks);
}

/// [`on_alloc`] for everything the counting fast path does not take (out
/// of line: the fast path needs none of its registers saved).
#[inline(never)]
fn on_alloc_general(ptr: *mut u8, size: usize, mut hooks: u32) {
    if hooks & ENV_PENDING != 0 {
        // The first allocation: whoever clears the bit reads the variable.
        if HOOKS.0.fetch_and(!ENV_PENDING, Relaxed) & ENV_PENDING != 0 {
            if let trace_config::EnvRequest::Start(frames) = trace_config::read_env() {
                mark_installed();
                trace_config::set_limit(frames);
                set_hook(TRACING, true);
            }
        }
        hooks = HOOKS.0.load(Relaxed);
    }
    if hooks & PROBE != 0 {
        INSTALLED.store(true, Relaxed);
    }
    record_new(ptr, size, hooks, Charge::Alloc);
}

/// The counting fast path: records a fresh block of a thread whose scope
/// (its own, its owner, or the all-threads one) is a fast counting scope,
/// with no tracing, no stack and no scope following code by name. Returns
/// false, having changed nothing, for everything else (and for a scope
/// closing meanwhile): [`record_new`] decides those. Same figures and the
/// same record as `record_new` would make, in far fewer steps.
#[inline]
fn count_fast(ptr: *mut u8, size: usize) -> bool {
    let Some(scope) = fast_scope_here() else {
        return false;
    };
    let mut shard = live_table::lock_addr(ptr as usize);
    let Some(tag) = scope_registry::charge_alloc_fast(&mut shard, scope, size) else {
        return false;
    };
    pause_points::point(Point::AllocCharged);
    // Untraced: tracing was off when this allocation began.
    let entry = Entry::new(size, scope_registry::NO_STACK, tag, false);
    if let Some(stale) = shard.insert(ptr as usize, entry, false) {
        forget_scope_part(&mut shard, &stale);
    }
    true
}

/// The scope a fresh allocation on this thread counts in, when that is a
/// scope that needs no stack and nothing else needs one either (no scope
/// follows code by name): the counting fast path's. `None`: ask
/// [`record_new`]. (Whether it is a *fast* scope is for
/// [`scope_registry::charge_alloc_fast`] to say.)
#[inline]
fn fast_scope_here() -> Option<scope_registry::ScopeRef> {
    let own = scope_registry::own();
    let scope = if own != 0 {
        own
    } else if scope_registry::following() {
        return None;
    } else {
        match thread_owner::owner() {
            0 => scope_registry::all_threads(),
            owner => owner,
        }
    };
    (scope != 0 && !scope_registry::wants_stacks(scope)).then_some(scope)
}

/// Records a block that is not (or no longer) any scope's: in the current
/// scope if there is one, traced if tracing is on.
fn record_new(ptr: *mut u8, size: usize, hooks: u32, charge: Charge) {
    let tracing = hooks & TRACING != 0;
    let in_scopes = hooks >= SCOPE_ONE;
    let own = if in_scopes { scope_registry::own() } else { 0 };
    // A thread without a scope of its own may belong to one by how it was
    // started (`thread_owner`), or be running the code a scope follows by
    // name (a pool older than the test): that needs the stack.
    let owner = if in_scopes && own == 0 {
        thread_owner::owner()
    } else {
        0
    };
    let follow = in_scopes && own == 0 && scope_registry::following();
    let all = if own == 0 && in_scopes {
        scope_registry::all_threads()
    } else {
        0
    };
    let mut scope = own;
    if !tracing && own == 0 && owner == 0 && all == 0 && !follow {
        return;
    }
    let scope_stacks = follow
        || (own != 0 && scope_registry::wants_stacks(own))
        || (owner != 0 && scope_registry::wants_stacks(owner))
        || (all != 0 && scope_registry::wants_stacks(all));
    let (stack, class) = if tracing || scope_stacks {
        stack_table::capture_here()
    } else {
        // A counting scope: figures only, no site.
        (scope_registry::NO_STACK, Class::User)
    };
    // Another thread's work: the site will say which thread it ran on.
    let mut foreign = false;
    if follow {
        // Code a scope follows by name comes first: on a thread another
        // test owns (a pool it built), a job of this test is this test's.
        // A thread owned by the only follower needs no names.
        let only_owner = owner != 0 && scope_registry::followers() == 1;
        if !only_owner {
            scope = scope_registry::follower_of(stack);
        }
        foreign = scope != 0;
    }
    if scope == 0 && owner != 0 {
        scope = owner;
        foreign = true;
    }
    if own == 0 && scope == 0 && all != 0 {
        // Another thread, owned by no scope and not running followed code:
        // an all-threads scope takes it (less std's work, below). One that
        // is not alone in its process takes it only if it runs the
        // workspace's code (what a runtime's or a pool's own threads do for
        // themselves is theirs). One alone takes everything: with no names
        // (a release build) nothing else could be told apart, and a gate
        // must not pass a leak; what pools keep for themselves is known
        // infrastructure (`suppressions`). Counting scopes capture no stack and take
        // everything.
        if !scope_registry::wants_stacks(all)
            || scope_registry::takes_every_thread(all)
            || symbolize::runs_workspace_code(stack)
        {
            scope = all;
            foreign = true;
        }
    }
    if own == 0
        && scope == 0
        && stack != scope_registry::NO_STACK
        && follow
        && thread_owner::started_by_program()
    {
        // Work no scope could claim, on a thread the program started (a
        // pool's or a runtime's, not the harness's), while scopes follow
        // code by name: if the build has no names, the followers cannot
        // tell whether it was theirs (their gates say so).
        scope_registry::note_unclaimed(stack, class);
    }
    // Counting scopes count std's work too (they cannot tell it apart),
    // even when tracing captured a stack anyway.
    if scope != 0
        && stack != scope_registry::NO_STACK
        && (follow || scope_registry::wants_stacks(scope))
        && scope_registry::excluded(stack, class)
    {
        scope = 0;
    }
    let thread = if foreign && scope != 0 {
        thread_owner::name_id()
    } else {
        0
    };
    let mut shard = live_table::lock_addr(ptr as usize);
    let mut tag = 0;
    // The scope may close between `current` and the charge (an all-threads
    // scope of another thread): then count in whatever is current now.
    for _ in 0..8 {
        if scope == 0 {
            break;
        }
        if let Some(t) =
            scope_registry::charge_alloc(&mut shard, scope, stack, size, charge, thread)
        {
            tag = t;
            break;
        }
        scope = scope_registry::current();
    }
    pause_points::point(Point::AllocCharged);
    let tracing = hook(TRACING);
    let entry = Entry::new(size, stack, tag, tracing);
    if let Some(stale) = shard.insert(ptr as usize, entry, tracing) {
        // A record for an address that was freed without us seeing it
        // (freed from inside the tracker). Account for that free now.
        forget_scope_part(&mut shard, &stale);
    }
}

/// This thread's stack, as deep as the capture goes (`None` from inside
/// the tracker).
pub(crate) fn stack_here() -> Option<stack_table::StackId> {
    let _guard = Guard::enter()?;
    crate::capture::stack_capture::ensure_depth(crate::capture::sink::MAX_RAW_FRAMES);
    Some(stack_table::capture_here().0)
}

/// Forgets a block that is about to be freed.
#[inline(never)]
pub(crate) fn on_free(ptr: *mut u8) {
    // From inside the tracker: a block of the tracker's own, never recorded.
    // (Taking a shard lock here could deadlock with the insert that is
    // resizing that very shard.)
    let Some(_guard) = Guard::enter() else { return };
    let mut shard = live_table::lock_addr(ptr as usize);
    if let Some(entry) = shard.remove(ptr as usize) {
        pause_points::point(Point::FreeRemoved);
        forget_scope_part(&mut shard, &entry);
    }
}

/// A block on its way through `realloc`: its record, taken out of the live
/// table (a moving realloc frees the old address before it returns, and
/// another thread may be handed it at once), with its scope pinned.
#[derive(Debug)]
pub(crate) struct Moving {
    entry: Option<Entry>,
}

/// Takes the record of a block that `realloc` is about to move or resize.
/// Must be followed by [`realloc_done`] or [`realloc_failed`].
#[inline(never)]
pub(crate) fn realloc_start(ptr: *mut u8) -> Moving {
    let Some(_guard) = Guard::enter() else {
        return Moving { entry: None };
    };
    let mut shard = live_table::lock_addr(ptr as usize);
    let entry = shard.remove(ptr as usize);
    if let Some(entry) = &entry {
        if entry.scope() != 0 {
            scope_registry::charge_free(&mut shard, entry.scope(), entry.stack, entry.size, true);
            scope_registry::pin(entry.scope());
        }
    }
    drop(shard);
    pause_points::point(Point::ReallocTaken);
    Moving { entry }
}

/// Records the block a successful `realloc` returned.
#[inline(never)]
pub(crate) fn realloc_done(moving: Moving, ptr: *mut u8, size: usize, old_size: usize) {
    let Some(_guard) = Guard::enter() else {
        // Cannot happen (the allocator is never re-entered through a
        // realloc of our own), but never leave a scope pinned.
        if let Some(entry) = moving.entry.filter(|e| e.scope() != 0) {
            scope_registry::unpin(entry.scope());
        }
        return;
    };
    let hooks = HOOKS.0.load(Relaxed);
    let charge = Charge::Realloc { old: old_size };
    let Some(old) = moving.entry.filter(|e| e.scope() != 0) else {
        return record_new(ptr, size, hooks, charge);
    };
    // The block stays its scope's (module docs of `scope_registry`).
    let tag = old.scope();
    let tracing = hooks & TRACING != 0;
    let stack = if scope_registry::tag_wants_stacks(tag) {
        match stack_table::capture_here() {
            // Std resizing on the body's behalf: the block keeps its site.
            (stack, class) if scope_registry::excluded(stack, class) => old.stack,
            (stack, _) => stack,
        }
    } else if tracing {
        stack_table::capture_here().0
    } else {
        old.stack
    };
    let mut shard = live_table::lock_addr(ptr as usize);
    let store = scope_registry::charge_owned(&mut shard, tag, stack, size, charge);
    let tracing = hook(TRACING);
    let entry = Entry::new(size, stack, store, tracing);
    if let Some(stale) = shard.insert(ptr as usize, entry, tracing) {
        forget_scope_part(&mut shard, &stale);
    }
    drop(shard);
    scope_registry::unpin(tag);
}

/// Puts back the record of a block whose `realloc` failed: it is still
/// live and unchanged.
#[inline(never)]
pub(crate) fn realloc_failed(moving: Moving, ptr: *mut u8) {
    let Some(entry) = moving.entry else { return };
    let _guard = Guard::enter();
    let mut shard = live_table::lock_addr(ptr as usize);
    let tag = entry.scope();
    let store = if tag != 0 {
        scope_registry::charge_owned(&mut shard, tag, entry.stack, entry.size, Charge::Restore)
    } else {
        0
    };
    let tracing = hook(TRACING);
    if let Some(stale) = shard.insert(ptr as usize, entry.with_scope(store), tracing) {
        forget_scope_part(&mut shard, &stale);
    }
    drop(shard);
    if tag != 0 {
        scope_registry::unpin(tag);
    }
}

/// Takes back a removed record's scope charge (its shard still locked).
fn forget_scope_part(shard: &mut Locked, entry: &Entry) {
    if entry.scope() != 0 {
        scope_registry::charge_free(shard, entry.scope(), entry.stack, entry.size, false);
    }
}

/// True when this binary's global allocator is a [`Tracker`](crate::Tracker).
///
/// Every other memassert function panics with instructions when this is
/// false, rather than reporting zeros.
///
/// ```
/// memassert::install!();
/// fn main() {
///     assert!(memassert::is_installed());
/// }
/// ```
pub fn is_installed() -> bool {
    if INSTALLED.load(Relaxed) {
        return true;
    }
    set_hook(PROBE, true);
    let layout = std::alloc::Layout::new::<u64>();
    // SAFETY: a non-zero-sized layout; the block is freed right away with
    // the same layout. `black_box` keeps the pair from being optimised out.
    unsafe {
        let ptr = std::hint::black_box(std::alloc::alloc(layout));
        if !ptr.is_null() {
            std::alloc::dealloc(ptr, layout);
        }
    }
    set_hook(PROBE, false);
    INSTALLED.load(Relaxed)
}

/// Records that the tracker is this binary's global allocator (it is
/// running), and makes sure a forked child turns tracking off.
fn mark_installed() {
    INSTALLED.store(true, Relaxed);
    register_fork_handler();
}

/// Set in a child process made by `fork()` from a process that had the
/// tracker on: tracking stays off there for good.
static FORKED_CHILD: AtomicBool = AtomicBool::new(false);
#[cfg(unix)]
static ATFORK_REGISTERED: AtomicBool = AtomicBool::new(false);

/// In the child of a `fork()`: the tracker's locks may have been held by
/// threads that do not exist there, and would never be released. So the
/// child switches tracking off before any allocation (an atomic store, safe
/// in a child of a multi-threaded process), and memassert's functions say
/// so rather than deadlock.
#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    HOOKS.0.store(0, Relaxed);
    FORKED_CHILD.store(true, Relaxed);
}

/// True in the child of a `fork()` made while memassert was in use.
pub(crate) fn in_forked_child() -> bool {
    FORKED_CHILD.load(Relaxed)
}

/// Registers [`after_fork_in_child`] once (there is no `fork()` elsewhere).
fn register_fork_handler() {
    #[cfg(unix)]
    if !ATFORK_REGISTERED.swap(true, Relaxed) {
        // SAFETY: registers a child handler that only does atomic stores.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    }
}

/// Panics with the line to add when the tracker is not the global allocator,
/// and with the reason in a forked child (see [`after_fork_in_child`]).
#[track_caller]
pub(crate) fn require_installed(api: &str) {
    // No allocation on the way through: this runs inside open scopes.
    require_installed_for(|| format!("memassert::{api}"));
}

/// [`require_installed`], naming what the user wrote (`#[track_alloc] on
/// my_test`, `memassert::start`); `what` is only called to panic.
#[track_caller]
pub(crate) fn require_installed_for(what: impl Fn() -> String) {
    if in_forked_child() {
        let what = what();
        panic!(
            "{what}: this process is the child of a fork() made while memassert was \
             tracking; tracking is off in a forked child (a lock held by another thread at the \
             fork could never be released there). Measure in the parent, or exec a new process."
        );
    }
    register_fork_handler();
    if !is_installed() {
        let what = what();
        panic!(
            "{what} needs memassert's tracking allocator, but this binary's global \
             allocator is not a memassert::Tracker.\nAdd this line to the crate root of the \
             binary or test (e.g. at the top of tests/my_test.rs):\n\n    \
             #[global_allocator]\n    static GLOBAL: memassert::Tracker = \
             memassert::Tracker::system();\n\n(or `memassert::install!();`, which expands to it)"
        );
    }
}
