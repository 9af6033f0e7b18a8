//! Open scopes, their counters, and the protocol that charges every
//! allocation, free and realloc to exactly the scopes it belongs to.
//!
//! Each open [`Scope`](crate::Scope) owns a slot here. Its blocks carry the
//! slot's *tag* (index and generation) in the live table, so a free finds
//! its scope whichever thread it happens on.
//!
//! ## The protocol
//!
//! - **Which scope an allocation counts in.** The thread's innermost open
//!   scope (`CURRENT`), else the innermost open all-threads scope, else
//!   none. A scope's parent is the scope that was current *on its own
//!   thread* when it opened: scopes of other threads (another test's
//!   all-threads scope) never become parents, so a per-thread scope's
//!   figures and cost never depend on what runs beside it.
//! - **Charges are made under the block's shard lock.** An allocation is
//!   charged to its scope and every enclosing one, and recorded in the live
//!   table, while the block's shard of the live table is locked; a free
//!   removes the record and takes the charge back under the same lock. The
//!   chain is walked hand over hand (a child's lock is held while its
//!   parent's is taken). Lock order: live-table shard, then scope slots from
//!   child to parent; nothing else is taken under them.
//! - **Closing** a scope, on its own thread: (1) it stops being the
//!   all-threads scope; (2) it is marked closing, after which no allocation
//!   is charged to it through the all-threads path (those retry with the new
//!   current scope); (3) its live blocks are retagged to its parent, shard
//!   by shard, each under its lock; (4) it waits for reallocs in flight (a
//!   realloc *pins* its block's scope between taking the old record and
//!   storing the new one, and stores the new one with the parent's tag if
//!   the scope is closing); (5) its open children on the same thread (closed
//!   out of order) get its parent as theirs; (6) its counters are taken and
//!   the slot is freed. Frees that race with a close are charged before (3)
//!   reaches their shard, or find the block retagged after: never lost,
//!   never counted twice. After (6) nothing in the process names the tag.
//! - **Realloc.** A block allocated in a scope stays that scope's when it is
//!   resized, on any thread, whatever the resizing stack (std's own work
//!   included): the scope sees the old size freed and the new one
//!   allocated, at the new site (the old site if the new stack is std's
//!   work). A block that belongs to no scope and is resized on a thread in a
//!   scope becomes a new allocation of that scope, as tracemalloc does with
//!   a realloc of an untraced block.
//! - **Fast scopes** (`scope_fast`) are closed the same way, except: (3)
//!   their blocks' records leave any scope (a fast scope is a root; shards
//!   holding none are skipped), (4) reallocs in flight finish (they may
//!   still charge it: it is pinned), (5) its children are re-parented, and
//!   only then (6) its figures are added up over the shards and zeroed for
//!   the next scope of its index.
//!
//! ## Where the rest is
//!
//! - `scope_slots`: slots, generations and tags (tags never alias), this
//!   thread's innermost scope, the lock order.
//! - `scope_counters`: a scope's figures and how a charge changes them.
//! - `scope_fast`: root counting scopes, charged without a lock of their
//!   own.
//! - `scope_following`: all-threads scopes, scopes following code by name,
//!   and the work no scope could claim.
//! - `thread_owner`: threads owned by how they were started.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use crate::alloc::live_table::{self, Locked};
use crate::alloc::scope_fast::{self, apply_fast};
use crate::alloc::scope_slots::{
    self, generation_of, index_of, lock, tag_of, with_open, CURRENT, SLOTS, SLOTS_,
};
use crate::base::spin_lock::SpinGuard;
use crate::capture::stack_table::StackId;

use crate::alloc::scope_counters::Op;
pub(crate) use crate::alloc::scope_counters::{Charge, State, NO_STACK};
use crate::alloc::scope_following;
pub(crate) use crate::alloc::scope_following::{
    all_threads, current, excluded, follower_of, followers, following, note_unclaimed, unclaimed,
};
pub(crate) use crate::alloc::scope_slots::{
    own, tag_wants_stacks, takes_every_thread, wants_stacks, ScopeRef,
};

/// What [`open`] did, for [`close`] to undo.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) scope: ScopeRef,
    all_threads: bool,
    /// Whether it took a place among the `FOLLOWERS`.
    pub(crate) followed: bool,
}

/// Opens a scope on this thread (and, if `all_threads`, for threads without
/// a scope of their own). A scope without `stacks` only counts: no stack
/// capture, no sites. `None` when every slot is taken.
/// `follow`: a function path whose code this scope also counts on other
/// threads (see [`follower_of`]).
pub(crate) fn open(
    all_threads: bool,
    every: bool,
    stacks: bool,
    follow: Option<&str>,
) -> Option<Opened> {
    let index = SLOTS_
        .iter()
        .position(|s| !s.in_use.swap(true, Ordering::Acquire))?;
    let slot = &SLOTS_[index];
    let generation = slot.generation.load(Ordering::Relaxed) + 1;
    slot.generation.store(generation, Ordering::Relaxed);
    let scope = scope_slots::scope_ref(generation, index);
    slot.every.store(all_threads && every, Ordering::Relaxed);
    let parent = CURRENT.try_with(Cell::get).unwrap_or(0);
    slot.stacks.store(
        stacks || (parent != 0 && wants_stacks(parent)),
        Ordering::Relaxed,
    );
    // A root counting scope charges without a lock of its own, if one of
    // the shards' fast indices is free (their figures are zero then).
    let fast = if !stacks && parent == 0 {
        scope_fast::claim()
    } else {
        None
    };
    slot.fast
        .store(fast.map_or(0, |i| i + 1), Ordering::Relaxed);
    slot.tag.store(tag_of(scope), Ordering::Relaxed);
    if parent != 0 {
        // The parent is open and on this thread: only this thread changes
        // its children count.
        with_open(parent, |p| p.children += 1);
    }
    *lock(slot) = Some(State {
        generation,
        tag: tag_of(scope),
        parent,
        keeps_sites: stacks,
        follow: follow.map(Box::from),
        fast,
        ..State::default()
    });
    // Release: a charge that reads this (acquire) sees the generation and
    // fast index written above.
    slot.closing.store(false, Ordering::Release);
    let _ = CURRENT.try_with(|c| c.set(scope));
    let followed = follow.is_some() && scope_following::follow(scope);
    if all_threads {
        scope_following::open_all_threads(scope);
    }
    Some(Opened {
        scope,
        all_threads,
        followed,
    })
}

/// Closes a scope (on the thread that opened it) and returns its counters.
/// Its still-live blocks move to the enclosing scope (which counted them
/// already), or out of any scope. See the module docs for the steps.
pub(crate) fn close(opened: Opened) -> State {
    let scope = opened.scope;
    let slot = &SLOTS_[index_of(scope)];
    // (1) No longer the all-threads scope, nor followed.
    if opened.followed {
        scope_following::unfollow(scope);
    }
    if opened.all_threads {
        scope_following::close_all_threads(scope);
    }
    // (2) Closing: nothing new is charged to it through the all-threads path.
    let (tag, parent, live, fast) = {
        let mut guard = lock(slot);
        match guard.as_mut() {
            Some(state) if state.generation == generation_of(scope) => {
                state.closing = true;
                (state.tag, state.parent, state.blocks, state.fast)
            }
            // Cannot happen: only this scope's owner frees its slot.
            _ => return State::default(),
        }
    };
    // Release: every shard the close passes over below is locked after
    // this store, so a charge under a shard lock either sees it or is seen.
    slot.closing.store(true, Ordering::Release);
    // (3) Still-live blocks move to the parent: a scan of the live table,
    // only needed when there are some. A fast scope (a root) knows per
    // shard whether it has any there.
    if let Some(index) = fast {
        live_table::retag_fast(index, tag);
    } else if live > 0 {
        live_table::retag(tag, tag_of(parent));
    }
    // (4) Reallocs in flight finish storing their block (with the parent's
    // tag, now that this scope is closing).
    while slot.pins.load(Ordering::Acquire) != 0 {
        std::thread::yield_now();
    }
    // (5) Children closed out of order take this scope's parent as theirs,
    // and this thread's current scope moves up if it was this one.
    let children = with_open(scope, |s| s.children).unwrap_or(0);
    if children > 0 {
        reparent_children(scope, parent);
    }
    if parent != 0 {
        with_open(parent, |p| p.children = p.children.saturating_sub(1));
    }
    let _ = CURRENT.try_with(|c| {
        if c.get() == scope {
            c.set(parent);
        }
    });
    // (6) The counters, and the slot back to the pool. A fast scope's are
    // in the shards: nothing can charge them any more (no record names the
    // scope, no realloc has it pinned, no child names it as parent).
    let mut state = lock(slot).take().unwrap_or_default();
    if let Some(index) = fast {
        let counts = live_table::take_fast(index);
        let (current, peak) = scope_fast::live(index);
        state.fill_from_fast(&counts, current, peak);
        scope_fast::release(index);
    }
    slot.in_use.store(false, Ordering::Release);
    state
}

/// Gives every open child of `scope` the parent `parent` instead.
fn reparent_children(scope: ScopeRef, parent: ScopeRef) {
    for slot in SLOTS_.iter() {
        if !slot.in_use.load(Ordering::Acquire) {
            continue;
        }
        let mut guard = lock(slot);
        if let Some(child) = guard.as_mut().filter(|c| c.parent == scope) {
            child.parent = parent;
            if parent != 0 {
                drop(guard);
                with_open(parent, |p| p.children += 1);
            }
        }
    }
}

/// Reads an open scope's counters.
pub(crate) fn with_state<R>(scope: ScopeRef, f: impl FnOnce(&State) -> R) -> Option<R> {
    let fast = with_open(scope, |s| s.fast)?;
    let Some(index) = fast else {
        return with_open(scope, |s| f(s));
    };
    // A fast scope's figures are in the shards: read them with every shard
    // locked (so no charge is half made), and the scope's lock taken after
    // them, in the hot path's lock order.
    let (_, value) = live_table::read_fast(index, |counts| {
        with_open(scope, |s| {
            let (current, peak) = scope_fast::live(index);
            s.fill_from_fast(counts, current, peak);
            f(s)
        })
    });
    value
}

/// Applies `op` to the scope of `guard` and then to every enclosing scope,
/// hand over hand: each child's lock is held while its parent's is taken,
/// so a parent named by a locked child is always still there (a closing
/// parent re-parents its children under their locks before it goes). A
/// fast scope in the chain (always its root) is charged in `shard`.
fn for_chain(shard: &mut Locked, mut guard: SpinGuard<'static, Option<State>>, op: Op) {
    // Bounded: a chain can never be longer than the number of slots.
    for _ in 0..SLOTS {
        let Some(state) = guard.as_mut() else { return };
        match state.fast {
            Some(index) => apply_fast(index, shard, op),
            None => state.apply(op),
        }
        let parent = state.parent;
        if parent == 0 {
            return;
        }
        let next = lock(&SLOTS_[index_of(parent)]);
        if next
            .as_ref()
            .is_none_or(|s| s.generation != generation_of(parent))
        {
            // Cannot happen under the protocol; never count in a stranger.
            return;
        }
        guard = next;
    }
}

/// Charges an allocation to `scope` and its chain, from the all-threads or
/// this thread's current-scope path. Call with the block's live-table shard
/// locked. Returns the tag to store with the block, or `None` when the scope
/// has closed (or is closing) meanwhile: the caller retries with
/// [`current`].
pub(crate) fn charge_alloc(
    shard: &mut Locked,
    scope: ScopeRef,
    stack: StackId,
    size: usize,
    charge: Charge,
    thread: u16,
) -> Option<u32> {
    let slot = &SLOTS_[index_of(scope)];
    let op = Op::Alloc {
        stack,
        size,
        charge,
        thread,
    };
    if let Some(tag) = charge_if_fast(shard, scope, op) {
        return Some(tag);
    }
    let guard = lock(slot);
    let tag = match guard.as_ref() {
        Some(s) if s.generation == generation_of(scope) && !s.closing => s.tag,
        _ => return None,
    };
    for_chain(shard, guard, op);
    Some(tag)
}

/// Charges `op` to `scope` if it is an open fast scope, without its lock,
/// and returns the tag to store; `None` (nothing charged) if it is not, or
/// is closing. Call with the block's shard locked.
#[inline]
fn charge_if_fast(shard: &mut Locked, scope: ScopeRef, op: Op) -> Option<u32> {
    let slot = &SLOTS_[index_of(scope)];
    // `closing` first (acquire), so that a `false` written by a later
    // opening makes the generation read below that opening's, and the
    // stale `scope` is refused (module docs).
    if slot.closing.load(Ordering::Acquire)
        || slot.generation.load(Ordering::Relaxed) != generation_of(scope)
    {
        return None;
    }
    let fast = slot.fast.load(Ordering::Relaxed);
    if fast == 0 {
        return None;
    }
    apply_fast(fast - 1, shard, op);
    // This opening's (the generation matched, and the slot cannot open
    // again while this shard is locked: its close must pass the shard).
    Some(slot.tag.load(Ordering::Relaxed))
}

/// Charges a fresh block of `size` bytes with no stack to `scope` if it is
/// an open fast scope ([`charge_alloc`]'s first step). `None`: nothing was
/// charged. Call with the block's shard locked.
#[inline]
pub(crate) fn charge_alloc_fast(shard: &mut Locked, scope: ScopeRef, size: usize) -> Option<u32> {
    let op = Op::Alloc {
        stack: NO_STACK,
        size,
        charge: Charge::Alloc,
        thread: 0,
    };
    charge_if_fast(shard, scope, op)
}

/// Charges a block that already belongs to the scope of live-table tag
/// `tag` (a realloc's new block, or a failed realloc's old one) to that
/// scope and its chain. Call with the block's shard locked, while the scope
/// is pinned. Returns the tag to store: the scope's, or its parent's if it
/// is closing (its retag may have passed this shard already).
pub(crate) fn charge_owned(
    shard: &mut Locked,
    tag: u32,
    stack: StackId,
    size: usize,
    charge: Charge,
) -> u32 {
    let slot = &SLOTS_[(tag as usize) & (SLOTS - 1)];
    let op = Op::Alloc {
        stack,
        size,
        charge,
        thread: 0,
    };
    // Pinned, so the slot is still this scope's: a fast scope is charged
    // even while closing (it adds its figures up only once unpinned), and
    // its block then leaves any scope (it is a root).
    let fast = slot.fast.load(Ordering::Relaxed);
    if fast != 0 {
        apply_fast(fast - 1, shard, op);
        return if slot.closing.load(Ordering::Acquire) {
            0
        } else {
            tag
        };
    }
    let guard = lock(slot);
    let store = match guard.as_ref() {
        Some(s) if s.tag == tag && !s.closing => tag,
        Some(s) if s.tag == tag => tag_of(s.parent),
        // Cannot happen while pinned.
        _ => return 0,
    };
    for_chain(shard, guard, op);
    store
}

/// Takes back the charge of a block of the scope of live-table tag `tag`
/// that is being freed (`realloc`: moved or resized, not given back). Call
/// with the block's shard locked, its record just removed.
pub(crate) fn charge_free(
    shard: &mut Locked,
    tag: u32,
    stack: StackId,
    size: usize,
    realloc: bool,
) {
    let slot = &SLOTS_[(tag as usize) & (SLOTS - 1)];
    let op = Op::Free {
        stack,
        size,
        realloc,
    };
    // A record names the scope, so it is open (or closing, its retag not
    // past this shard yet): the slot is still its own.
    let fast = slot.fast.load(Ordering::Relaxed);
    if fast != 0 {
        return apply_fast(fast - 1, shard, op);
    }
    let guard = lock(slot);
    if guard.as_ref().is_none_or(|s| s.tag != tag) {
        // Cannot happen under the protocol: a record's scope is open or
        // closing until its retag has passed the record's shard.
        return;
    }
    for_chain(shard, guard, op);
}

/// Keeps the scope of live-table tag `tag` from finishing its close while a
/// realloc moves one of its blocks. Call with the block's shard locked.
pub(crate) fn pin(tag: u32) {
    SLOTS_[(tag as usize) & (SLOTS - 1)]
        .pins
        .fetch_add(1, Ordering::AcqRel);
}

/// Ends a [`pin`].
pub(crate) fn unpin(tag: u32) {
    SLOTS_[(tag as usize) & (SLOTS - 1)]
        .pins
        .fetch_sub(1, Ordering::AcqRel);
}

/// Scopes open right now (for tests and the soak's checks).
pub(crate) fn open_count() -> usize {
    SLOTS_
        .iter()
        .filter(|s| s.in_use.load(Ordering::Acquire))
        .count()
}
