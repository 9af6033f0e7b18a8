//! Open scopes and their counters.
//!
//! Each open [`Scope`](crate::Scope) owns a slot here, named by a tag
//! (slot index + generation) that its blocks carry in the live table. A free
//! finds the scope through the tag, whichever thread it happens on, so a
//! block allocated in a scope and freed elsewhere is still freed in it.
//!
//! Counting is under the slot's own mutex: uncontended unless another thread
//! frees this scope's blocks (or, with `threads = "all"`, allocates in it),
//! and exact in every case: peak, and which sites were live at the peak.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use crate::live_table::AddrHasher;
use crate::recording;
use crate::stack_table::{Class, StackId};
use crate::{live_table, stack_table, symbolize};

const INDEX_BITS: u32 = 10;
const SLOTS: usize = 1 << INDEX_BITS;

/// Per-site counters of one scope.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Site {
    /// Live bytes and blocks now.
    pub(crate) bytes: usize,
    pub(crate) blocks: usize,
    /// Allocations made and bytes requested, in all.
    pub(crate) allocs: usize,
    pub(crate) total: usize,
    /// Most live bytes (and the blocks then) this site ever held at once.
    pub(crate) max_bytes: usize,
    pub(crate) max_blocks: usize,
    /// Live bytes and blocks as they were at the scope's latest peak, valid
    /// when `epoch` equals the scope's epoch (see [`State::touch`]).
    saved_bytes: usize,
    saved_blocks: usize,
    epoch: u64,
}

/// The counters of one open scope.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) current: usize,
    pub(crate) blocks: usize,
    pub(crate) peak: usize,
    pub(crate) total: usize,
    pub(crate) allocs: usize,
    pub(crate) sites: HashMap<StackId, Site, BuildHasherDefault<AddrHasher>>,
    /// stats_alloc's view: reallocations among `allocs`, blocks given back,
    /// and bytes by its rules (a realloc's growth counts as allocated, its
    /// shrinkage as deallocated).
    pub(crate) reallocs: usize,
    pub(crate) frees: usize,
    pub(crate) stats_bytes_allocated: usize,
    pub(crate) stats_bytes_deallocated: usize,
    pub(crate) bytes_reallocated: isize,
    /// Bumped each time a new peak is reached.
    epoch: u64,
    /// This scope's tag and its enclosing scope's (0: none).
    tag: u32,
    parent: u32,
    /// Whether this scope keeps per-site figures (false: counting).
    keeps_sites: bool,
}

impl State {
    /// The site's counters, first saving its live figures if this is its
    /// first change since the latest peak. A site untouched since the peak
    /// still holds its peak figures in `bytes`/`blocks`; a touched one holds
    /// them in `saved_*`. So "live at the peak" costs O(1) per allocation.
    fn touch(&mut self, stack: StackId) -> &mut Site {
        let epoch = self.epoch;
        let site = self.sites.entry(stack).or_default();
        if site.epoch != epoch {
            site.saved_bytes = site.bytes;
            site.saved_blocks = site.blocks;
            site.epoch = epoch;
        }
        site
    }

    fn alloc(&mut self, stack: StackId, size: usize, count_request: bool) {
        if stack == NO_STACK || !self.keeps_sites {
            return self.count_alloc(size, count_request);
        }
        let site = self.touch(stack);
        site.bytes += size;
        site.blocks += 1;
        if site.bytes > site.max_bytes {
            site.max_bytes = site.bytes;
            site.max_blocks = site.blocks;
        }
        if count_request {
            site.allocs += 1;
            site.total += size;
        }
        self.count_alloc(size, count_request);
    }

    /// The scope-wide figures of an allocation.
    fn count_alloc(&mut self, size: usize, count_request: bool) {
        self.current += size;
        self.blocks += 1;
        if count_request {
            self.allocs += 1;
            self.total += size;
        }
        if self.current > self.peak {
            self.peak = self.current;
            self.epoch += 1;
        }
    }

    fn free(&mut self, stack: StackId, size: usize) {
        if stack != NO_STACK && self.keeps_sites {
            let site = self.touch(stack);
            site.bytes = site.bytes.saturating_sub(size);
            site.blocks = site.blocks.saturating_sub(1);
        }
        self.current = self.current.saturating_sub(size);
        self.blocks = self.blocks.saturating_sub(1);
    }

    /// Live `(bytes, blocks)` per site at the peak.
    pub(crate) fn at_peak(&self) -> impl Iterator<Item = (StackId, usize, usize)> + '_ {
        self.sites.iter().filter_map(|(&stack, s)| {
            let (bytes, blocks) = if s.epoch == self.epoch {
                (s.saved_bytes, s.saved_blocks)
            } else {
                (s.bytes, s.blocks)
            };
            (blocks > 0).then_some((stack, bytes, blocks))
        })
    }
}

struct Slot {
    in_use: AtomicBool,
    /// Whether allocations in this scope (or an enclosing one) need their
    /// stacks: false only for counting scopes inside counting scopes.
    stacks: AtomicBool,
    generation: AtomicU32,
    /// Tag of the enclosing scope (0: none); outlives `state` until reuse.
    parent: AtomicU32,
    state: Mutex<Option<State>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    in_use: AtomicBool::new(false),
    stacks: AtomicBool::new(true),
    generation: AtomicU32::new(0),
    parent: AtomicU32::new(0),
    state: Mutex::new(None),
};

static SLOTS_: [Slot; SLOTS] = [EMPTY; SLOTS];
/// The innermost open all-threads scope, counted by threads with no scope
/// of their own.
static ALL_THREADS: AtomicU32 = AtomicU32::new(0);

thread_local! {
    // const-initialised and drop-free: readable from the allocator at any
    // point of a thread's life (see `reentrancy`).
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

fn split(tag: u32) -> (usize, u32) {
    ((tag as usize) & (SLOTS - 1), tag >> INDEX_BITS)
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<State>> {
    slot.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The scope this thread's allocations count in, 0 for none.
#[inline]
pub(crate) fn current_tag() -> u32 {
    match CURRENT.try_with(Cell::get).unwrap_or(0) {
        0 => ALL_THREADS.load(Relaxed),
        tag => tag,
    }
}

/// True when allocations with this stack never count in scopes (std or the
/// harness working on the body's behalf). Resolved once per stack.
pub(crate) fn excluded(stack: StackId, known: Class) -> bool {
    let class = match known {
        Class::Unknown => {
            let class = symbolize::classify(stack);
            stack_table::remember_class(stack, class);
            class
        }
        known => known,
    };
    class == Class::Excluded
}

/// What [`open`] changed on this thread, for [`close`] to put back.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) tag: u32,
    previous_current: u32,
    previous_all: Option<u32>,
}

/// The stack id of blocks allocated with no stack captured (counting
/// scopes): counted in the scope, attributed to no site.
pub(crate) const NO_STACK: StackId = StackId::MAX;

/// Whether an allocation counted in scope `tag` needs its stack.
#[inline]
pub(crate) fn wants_stacks(tag: u32) -> bool {
    SLOTS_[split(tag).0].stacks.load(Relaxed)
}

/// Opens a scope on this thread (and, if `all_threads`, for threads without
/// a scope of their own). A scope without `stacks` only counts: no stack
/// capture, no sites. `None` when every slot is taken.
pub(crate) fn open(all_threads: bool, stacks: bool) -> Option<Opened> {
    let index = SLOTS_.iter().position(|s| !s.in_use.swap(true, Relaxed))?;
    let slot = &SLOTS_[index];
    // Generations start at 1, so no tag is 0.
    let generation = (slot.generation.load(Relaxed) % ((1 << (32 - INDEX_BITS)) - 1)) + 1;
    slot.generation.store(generation, Relaxed);
    let tag = (generation << INDEX_BITS) | index as u32;
    let parent = current_tag();
    slot.parent.store(parent, Relaxed);
    slot.stacks
        .store(stacks || (parent != 0 && wants_stacks(parent)), Relaxed);
    *lock(slot) = Some(State {
        tag,
        parent,
        keeps_sites: stacks,
        ..State::default()
    });
    let previous_current = CURRENT.try_with(|c| c.replace(tag)).unwrap_or(0);
    let previous_all = all_threads.then(|| ALL_THREADS.swap(tag, Relaxed));
    recording::scope_opened();
    Some(Opened {
        tag,
        previous_current,
        previous_all,
    })
}

/// Closes a scope and returns its counters. Its still-live blocks move to the
/// enclosing scope (which counted them already), or out of any scope.
pub(crate) fn close(opened: Opened) -> State {
    let (index, _) = split(opened.tag);
    let slot = &SLOTS_[index];
    // Scopes may close out of order: put back what this scope replaced only
    // where it is still the current one, and then the nearest scope of that
    // chain that is still open.
    let _ = CURRENT.try_with(|c| {
        if c.get() == opened.tag {
            c.set(nearest_open(opened.previous_current));
        }
    });
    if let Some(previous) = opened.previous_all {
        let previous = nearest_open(previous);
        let _ = ALL_THREADS.compare_exchange(opened.tag, previous, Relaxed, Relaxed);
    }
    let parent = slot.parent.load(Relaxed);
    // Still-live blocks move to the parent: a scan of the live table, only
    // needed when there are some.
    let live = lock(slot).as_ref().map_or(0, |s| s.blocks);
    if live > 0 {
        live_table::retag(opened.tag, parent);
    }
    let state = lock(slot).take().unwrap_or_default();
    recording::scope_closed();
    slot.in_use.store(false, Relaxed);
    state
}

/// `tag` if that scope is still open, else its nearest enclosing scope
/// that is, else 0.
fn nearest_open(mut tag: u32) -> u32 {
    for _ in 0..SLOTS {
        if tag == 0 || with_state(tag, |_| ()).is_some() {
            return tag;
        }
        let (index, generation) = split(tag);
        let slot = &SLOTS_[index];
        if slot.generation.load(Relaxed) != generation {
            return 0;
        }
        tag = slot.parent.load(Relaxed);
    }
    0
}

/// Reads an open scope's counters.
pub(crate) fn with_state<R>(tag: u32, f: impl FnOnce(&State) -> R) -> Option<R> {
    let (index, generation) = split(tag);
    let slot = &SLOTS_[index];
    if slot.generation.load(Relaxed) != generation {
        return None;
    }
    lock(slot).as_ref().filter(|s| s.tag == tag).map(f)
}

/// Applies `f` to the scope `tag` and every scope enclosing it.
fn for_chain(mut tag: u32, mut f: impl FnMut(&mut State)) {
    // Bounded: a chain can never be longer than the number of slots.
    for _ in 0..SLOTS {
        if tag == 0 {
            return;
        }
        let (index, generation) = split(tag);
        let slot = &SLOTS_[index];
        let mut state = lock(slot);
        tag = match state.as_mut() {
            // The tag is checked under the lock: the slot cannot be reused
            // by another scope between the check and the update.
            Some(state) if state.tag == tag => {
                f(state);
                state.parent
            }
            Some(_) => return,
            // Closed a moment ago (its blocks moved to its parent while this
            // free was under way): pass the change on to the parent.
            None if slot.generation.load(Relaxed) == generation => slot.parent.load(Relaxed),
            None => return,
        };
    }
}

pub(crate) fn on_alloc(tag: u32, stack: StackId, size: usize, realloc_from: Option<usize>) {
    for_chain(tag, |s| {
        s.alloc(stack, size, true);
        match realloc_from {
            None => s.stats_bytes_allocated += size,
            Some(old) => {
                s.reallocs += 1;
                if size > old {
                    s.stats_bytes_allocated += size - old;
                } else {
                    s.stats_bytes_deallocated += old - size;
                }
                s.bytes_reallocated += size as isize - old as isize;
            }
        }
    });
}

pub(crate) fn on_restore(tag: u32, stack: StackId, size: usize) {
    for_chain(tag, |s| s.alloc(stack, size, false));
}

pub(crate) fn on_free(tag: u32, stack: StackId, size: usize, realloc: bool) {
    for_chain(tag, |s| {
        s.free(stack, size);
        if !realloc {
            s.frees += 1;
            s.stats_bytes_deallocated += size;
        }
    });
}
