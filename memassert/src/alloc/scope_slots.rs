//! Slots and generations: where each open scope's counters live, how a
//! scope is named ([`ScopeRef`]: slot index and 64-bit generation), how its
//! blocks are tagged in the live table, and this thread's innermost scope.
//!
//! - **Tags never alias.** A slot's generation is 64 bits; lookups compare
//!   all of it under the slot lock. Live-table entries store `INDEX_BITS +
//!   GEN_BITS` bits of it (checked at compile time against the bits the
//!   live table leaves free); wrapping is harmless because, by the close
//!   protocol (`scope_registry`), no entry carries a tag once its scope has
//!   closed.
//! - **Slots** are claimed with an acquire swap and released with a release
//!   store after the counters are taken, so a reused slot never shows its
//!   previous scope's figures.
//! - **Lock order:** live-table shard, then scope slots from child to
//!   parent; nothing else is taken under them.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::alloc::live_table;
use crate::base::spin_lock::{SpinGuard, SpinLock};

const INDEX_BITS: u32 = 10;
pub(crate) const SLOTS: usize = 1 << INDEX_BITS;
/// Generation bits kept in a live-table tag.
const GEN_BITS: u32 = live_table::SCOPE_TAG_BITS - INDEX_BITS;
const _: () = assert!(
    INDEX_BITS + GEN_BITS <= live_table::SCOPE_TAG_BITS && GEN_BITS >= 16,
    "scope tags must fit in the bits the live table leaves for them"
);

pub(crate) use crate::alloc::scope_counters::{ScopeRef, State};

pub(crate) fn index_of(r: ScopeRef) -> usize {
    (r as usize) & (SLOTS - 1)
}

pub(crate) fn generation_of(r: ScopeRef) -> u64 {
    r >> INDEX_BITS
}

/// The live-table tag of a scope: never 0, `INDEX_BITS + GEN_BITS` bits.
pub(crate) fn tag_of(r: ScopeRef) -> u32 {
    if r == 0 {
        return 0;
    }
    // Generations start at 1; fold them onto 1..=2^GEN_BITS - 1.
    let folded = (generation_of(r) - 1) % ((1 << GEN_BITS) - 1) + 1;
    ((folded as u32) << INDEX_BITS) | index_of(r) as u32
}

pub(crate) struct Slot {
    pub(crate) in_use: AtomicBool,
    /// Whether allocations in this scope (or an enclosing one) need their
    /// stacks: false only for counting scopes inside counting scopes.
    pub(crate) stacks: AtomicBool,
    /// Reallocs in flight whose old block carries this scope's tag.
    pub(crate) pins: AtomicUsize,
    /// The generation of the latest opening (only the opener writes it).
    pub(crate) generation: AtomicU64,
    /// A fast scope's index in the shards' [`FastCounts`](crate::alloc::live_table::FastCounts), plus one (0: not
    /// a fast scope). Written by the opener before `closing` is cleared.
    pub(crate) fast: AtomicUsize,
    /// The live-table tag of the latest opening (`tag_of`), written by the
    /// opener before `closing` is cleared, for the fast path to read
    /// instead of computing it.
    pub(crate) tag: AtomicU32,
    /// The scope is closing (or closed, until the slot opens again).
    pub(crate) closing: AtomicBool,
    /// An all-threads scope alone in its process: it takes every other
    /// thread's allocations (less std's work), not only the workspace's.
    pub(crate) every: AtomicBool,
    pub(crate) state: SpinLock<Option<State>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    in_use: AtomicBool::new(false),
    stacks: AtomicBool::new(true),
    pins: AtomicUsize::new(0),
    generation: AtomicU64::new(0),
    fast: AtomicUsize::new(0),
    tag: AtomicU32::new(0),
    closing: AtomicBool::new(true),
    every: AtomicBool::new(false),
    state: SpinLock::new(None),
};

pub(crate) static SLOTS_: [Slot; SLOTS] = [EMPTY; SLOTS];

thread_local! {
    // const-initialised and drop-free: readable from the allocator at any
    // point of a thread's life (see `reentrancy`).
    pub(crate) static CURRENT: Cell<ScopeRef> = const { Cell::new(0) };
}

/// This thread's own innermost open scope, 0 for none.
#[inline]
pub(crate) fn own() -> ScopeRef {
    CURRENT.try_with(Cell::get).unwrap_or(0)
}

#[inline]
pub(crate) fn lock(slot: &Slot) -> SpinGuard<'_, Option<State>> {
    slot.state.lock()
}

/// Applies `f` to the counters of `scope` if it is open (or closing).
pub(crate) fn with_open<R>(scope: ScopeRef, f: impl FnOnce(&mut State) -> R) -> Option<R> {
    let mut guard = lock(&SLOTS_[index_of(scope)]);
    guard
        .as_mut()
        .filter(|s| s.generation == generation_of(scope))
        .map(f)
}

/// Whether the all-threads scope `scope` takes every thread's allocations
/// (it is alone in its process), not only those running workspace code.
#[inline]
pub(crate) fn takes_every_thread(scope: ScopeRef) -> bool {
    SLOTS_[index_of(scope)].every.load(Ordering::Relaxed)
}

/// Whether an allocation counted in `scope` needs its stack.
#[inline]
pub(crate) fn wants_stacks(scope: ScopeRef) -> bool {
    SLOTS_[index_of(scope)].stacks.load(Ordering::Relaxed)
}

/// Whether an allocation counted in the scope of live-table tag `tag`
/// needs its stack.
#[inline]
pub(crate) fn tag_wants_stacks(tag: u32) -> bool {
    SLOTS_[(tag as usize) & (SLOTS - 1)]
        .stacks
        .load(Ordering::Relaxed)
}

/// The name of the scope opened in slot `index` with `generation`.
pub(crate) fn scope_ref(generation: u64, index: usize) -> ScopeRef {
    (generation << INDEX_BITS) | index as u64
}
