//! The slow path: what the tracker does with an allocation once tracing or
//! a scope is on. Called only from [`crate::tracker`].
//!
//! Order of work on an allocation: enter the reentrancy guard, capture raw
//! instruction pointers, intern them into a stack id, then record the block
//! in the live table and in the open scope. No symbols, no formatting: those
//! wait until a report asks.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use crate::live_table::{self, Entry};
use crate::reentrancy::Guard;
use crate::stack_table::Class;
use crate::{scope_registry, stack_table};

/// What the hot path must look at. Zero means: forward and return.
static HOOKS: AtomicU32 = AtomicU32::new(0);
/// Global tracing (`memassert::start`) is on.
pub(crate) const TRACING: u32 = 1;
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
    HOOKS.load(Relaxed) != 0
}

pub(crate) fn set_hook(bit: u32, on: bool) {
    if on {
        HOOKS.fetch_or(bit, Relaxed);
    } else {
        HOOKS.fetch_and(!bit, Relaxed);
    }
}

/// Counts a scope opening.
pub(crate) fn scope_opened() {
    HOOKS.fetch_add(SCOPE_ONE, Relaxed);
}

/// Counts a scope closing.
pub(crate) fn scope_closed() {
    HOOKS.fetch_sub(SCOPE_ONE, Relaxed);
}

pub(crate) fn hook(bit: u32) -> bool {
    HOOKS.load(Relaxed) & bit != 0
}

/// Records a fresh block.
#[inline(never)]
pub(crate) fn on_alloc(ptr: *mut u8, size: usize) {
    record(ptr, size, None);
}

/// Records the block a successful `realloc` returned (its old record was
/// already taken by [`on_free`]).
#[inline(never)]
pub(crate) fn on_realloc(ptr: *mut u8, size: usize, old_size: usize) {
    record(ptr, size, Some(old_size));
}

/// `realloc_from`: the old size, when the block comes from a `realloc`.
fn record(ptr: *mut u8, size: usize, realloc_from: Option<usize>) {
    // Inside the tracker already (its own bookkeeping allocating): untracked.
    let Some(_guard) = Guard::enter() else { return };
    let hooks = HOOKS.load(Relaxed);
    if hooks & PROBE != 0 {
        INSTALLED.store(true, Relaxed);
    }
    let tracing = hooks & TRACING != 0;
    let scope = if hooks >= SCOPE_ONE {
        scope_registry::current_tag()
    } else {
        0
    };
    if !tracing && scope == 0 {
        return;
    }
    let scope_stacks = scope != 0 && scope_registry::wants_stacks(scope);
    let (stack, class) = if tracing || scope_stacks {
        stack_table::capture_here()
    } else {
        // A counting scope: figures only, no site.
        (scope_registry::NO_STACK, Class::User)
    };
    // Counting scopes count std's work too (they cannot tell it apart),
    // even when tracing captured a stack anyway.
    let scope = if scope_stacks && scope_registry::excluded(stack, class) {
        0
    } else {
        scope
    };
    if scope != 0 {
        scope_registry::on_alloc(scope, stack, size, realloc_from);
    }
    let replaced = live_table::insert(ptr as usize, Entry::new(size, stack, scope, tracing));
    if let Some(stale) = replaced {
        // A record for an address that was freed without us seeing it (freed
        // from inside the tracker). Account for that free now.
        forget_scope_part(&stale);
    }
}

/// Forgets a block that is about to be freed (or moved by `realloc`),
/// returning its record.
/// `realloc`: the block is being moved or resized, not given back.
#[inline(never)]
pub(crate) fn on_free(ptr: *mut u8, realloc: bool) -> Option<Entry> {
    // From inside the tracker: a block of the tracker's own, never recorded.
    // (Taking a shard lock here could deadlock with the insert that is
    // resizing that very shard.)
    let _guard = Guard::enter()?;
    let entry = live_table::remove(ptr as usize)?;
    if entry.scope() != 0 {
        scope_registry::on_free(entry.scope(), entry.stack, entry.size, realloc);
    }
    Some(entry)
}

/// Puts back the record of a block whose `realloc` failed.
#[inline(never)]
pub(crate) fn restore(ptr: *mut u8, old: Option<Entry>) {
    let Some(entry) = old else { return };
    let Some(_guard) = Guard::enter() else { return };
    if entry.scope() != 0 {
        scope_registry::on_restore(entry.scope(), entry.stack, entry.size);
    }
    if let Some(stale) = live_table::insert(ptr as usize, entry) {
        forget_scope_part(&stale);
    }
}

fn forget_scope_part(entry: &Entry) {
    if entry.scope() != 0 {
        scope_registry::on_free(entry.scope(), entry.stack, entry.size, false);
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

/// Panics with the line to add when the tracker is not the global allocator.
#[track_caller]
pub(crate) fn require_installed(api: &str) {
    if !is_installed() {
        panic!(
            "memassert::{api} needs memassert's tracking allocator, but this binary's global \
             allocator is not a memassert::Tracker.\nAdd this line to the crate root of the \
             binary or test (e.g. at the top of tests/my_test.rs):\n\n    \
             #[global_allocator]\n    static GLOBAL: memassert::Tracker = \
             memassert::Tracker::system();\n\n(or `memassert::install!();`, which expands to it)"
        );
    }
}
