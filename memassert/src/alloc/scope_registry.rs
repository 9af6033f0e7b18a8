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
//! - **Tags never alias.** A slot's generation is 64 bits; all-threads
//!   lookups compare all of it under the slot lock. Live-table entries store
//!   `INDEX_BITS + GEN_BITS` bits of it (checked at compile time against the
//!   bits the live table leaves free); wrapping is harmless because, by the
//!   rules above, no entry carries a tag once its scope has closed.
//! - **Realloc.** A block allocated in a scope stays that scope's when it is
//!   resized, on any thread, whatever the resizing stack (std's own work
//!   included): the scope sees the old size freed and the new one
//!   allocated, at the new site (the old site if the new stack is std's
//!   work). A block that belongs to no scope and is resized on a thread in a
//!   scope becomes a new allocation of that scope, as tracemalloc does with
//!   a realloc of an untraced block.
//! - **Slots** are claimed with an acquire swap and released with a release
//!   store after the counters are taken, so a reused slot never shows its
//!   previous scope's figures.
//! - **Fast scopes.** A root counting scope (no stacks, no parent: what
//!   `Scope::options().counting()` opens outside any scope) takes no lock of
//!   its own on the hot path. Its per-block figures live in the live table's
//!   shards ([`FastCounts`], changed under the shard lock the charge holds
//!   anyway) and its live bytes and peak in two atomics of its fast index
//!   (`FAST_LIVE`, a cache line of their own), changed under that lock too. A charge reads the slot's `closing` flag (acquire)
//!   and then its generation under the shard lock: a close sets the flag and
//!   then passes over every shard, so a charge either sees the flag or
//!   happens in a shard the close has not passed yet. Closing it: (3) its
//!   blocks' records leave any scope (shards holding none are skipped), (4)
//!   reallocs in flight finish (they may still charge it: it is pinned),
//!   (5) its children are re-parented, and only then (6) its figures are
//!   added up over the shards and zeroed for the next scope of its index.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::alloc::live_table::{self, FastCounts, Locked, FAST_SCOPES};
use crate::base::addr_hash::AddrHasher;
use crate::base::spin_lock::{SpinGuard, SpinLock};
use crate::capture::stack_table::{self, Class, StackId};
use crate::symbols::symbolize;

const INDEX_BITS: u32 = 10;
const SLOTS: usize = 1 << INDEX_BITS;
/// Generation bits kept in a live-table tag.
const GEN_BITS: u32 = live_table::SCOPE_TAG_BITS - INDEX_BITS;
const _: () = assert!(
    INDEX_BITS + GEN_BITS <= live_table::SCOPE_TAG_BITS && GEN_BITS >= 16,
    "scope tags must fit in the bits the live table leaves for them"
);

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
    /// The first thread other than the scope's own that allocated here
    /// (`thread_owner::name_id`; 0: only the scope's own thread).
    pub(crate) thread: u16,
}

/// Allocation requests by size, in power-of-two buckets: bucket `k` counts
/// requests of `2^k` to `2^(k+1) - 1` bytes (bucket 0 also zero-size ones).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SizeHistogram(pub(crate) [usize; 64]);

impl Default for SizeHistogram {
    fn default() -> SizeHistogram {
        SizeHistogram([0; 64])
    }
}

impl SizeHistogram {
    #[inline]
    fn add(&mut self, size: usize) {
        let bucket = (usize::BITS - 1 - (size | 1).leading_zeros()) as usize;
        self.0[bucket & 63] += 1;
    }
}

/// The counters of one open scope.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) current: usize,
    pub(crate) blocks: usize,
    pub(crate) peak: usize,
    pub(crate) total: usize,
    pub(crate) allocs: usize,
    /// Requests by size (not kept by fast scopes, which only count).
    pub(crate) sizes: SizeHistogram,
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
    /// The slot generation this scope opened with, and its live-table tag.
    generation: u64,
    tag: u32,
    /// The nearest enclosing scope still open, on the same thread (0: none).
    parent: ScopeRef,
    /// Open scopes whose parent this is.
    children: usize,
    /// Set when the scope starts closing.
    closing: bool,
    /// Whether this scope keeps per-site figures (false: counting).
    keeps_sites: bool,
    /// The function whose code this scope follows onto other threads.
    follow: Option<Box<str>>,
    /// Per stack seen on another thread: does it run that code?
    follow_cache: HashMap<StackId, bool, BuildHasherDefault<AddrHasher>>,
    /// For a fast scope, its index in the shards' [`FastCounts`]: its
    /// figures are there and in `FAST_LIVE`, not in the fields above, until it
    /// closes.
    fast: Option<usize>,
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

    fn charge_alloc(&mut self, stack: StackId, size: usize, charge: Charge, thread: u16) {
        self.alloc(stack, size, !matches!(charge, Charge::Restore));
        if thread != 0 && stack != NO_STACK && self.keeps_sites {
            let site = self.sites.entry(stack).or_default();
            if site.thread == 0 {
                site.thread = thread;
            }
        }
        match charge {
            Charge::Alloc => self.stats_bytes_allocated += size,
            Charge::Realloc { old } => {
                self.reallocs += 1;
                if size > old {
                    self.stats_bytes_allocated += size - old;
                } else {
                    self.stats_bytes_deallocated += old - size;
                }
                self.bytes_reallocated += size as isize - old as isize;
            }
            Charge::Restore => {}
        }
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
            self.sizes.add(size);
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

    fn apply(&mut self, op: Op) {
        match op {
            Op::Alloc {
                stack,
                size,
                charge,
                thread,
            } => self.charge_alloc(stack, size, charge, thread),
            Op::Free {
                stack,
                size,
                realloc,
            } => {
                self.free(stack, size);
                if !realloc {
                    self.frees += 1;
                    self.stats_bytes_deallocated += size;
                }
            }
        }
    }

    /// A fast scope's figures, added up from the shards and `FAST_LIVE`.
    fn fill_from_fast(&mut self, counts: &FastCounts, current: usize, peak: usize) {
        self.current = current;
        self.peak = peak;
        self.blocks = counts.blocks;
        self.allocs = counts.allocs;
        self.total = counts.total;
        self.reallocs = counts.reallocs;
        self.frees = counts.frees;
        self.stats_bytes_allocated = counts.stats_bytes_allocated;
        self.stats_bytes_deallocated = counts.stats_bytes_deallocated;
        self.bytes_reallocated = counts.bytes_reallocated as isize;
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

/// A scope as the registry names it: its slot index and the slot's 64-bit
/// generation when it opened (`generation << INDEX_BITS | index`; 0: none).
pub(crate) type ScopeRef = u64;

fn index_of(r: ScopeRef) -> usize {
    (r as usize) & (SLOTS - 1)
}

fn generation_of(r: ScopeRef) -> u64 {
    r >> INDEX_BITS
}

/// The live-table tag of a scope: never 0, `INDEX_BITS + GEN_BITS` bits.
fn tag_of(r: ScopeRef) -> u32 {
    if r == 0 {
        return 0;
    }
    // Generations start at 1; fold them onto 1..=2^GEN_BITS - 1.
    let folded = (generation_of(r) - 1) % ((1 << GEN_BITS) - 1) + 1;
    ((folded as u32) << INDEX_BITS) | index_of(r) as u32
}

struct Slot {
    in_use: AtomicBool,
    /// Whether allocations in this scope (or an enclosing one) need their
    /// stacks: false only for counting scopes inside counting scopes.
    stacks: AtomicBool,
    /// Reallocs in flight whose old block carries this scope's tag.
    pins: AtomicUsize,
    /// The generation of the latest opening (only the opener writes it).
    generation: AtomicU64,
    /// A fast scope's index in the shards' [`FastCounts`], plus one (0: not
    /// a fast scope). Written by the opener before `closing` is cleared.
    fast: AtomicUsize,
    /// The scope is closing (or closed, until the slot opens again).
    closing: AtomicBool,
    /// An all-threads scope alone in its process: it takes every other
    /// thread's allocations (less std's work), not only the workspace's.
    every: AtomicBool,
    state: SpinLock<Option<State>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    in_use: AtomicBool::new(false),
    stacks: AtomicBool::new(true),
    pins: AtomicUsize::new(0),
    generation: AtomicU64::new(0),
    fast: AtomicUsize::new(0),
    closing: AtomicBool::new(true),
    every: AtomicBool::new(false),
    state: SpinLock::new(None),
};

/// Which [`FastCounts`] indices an open fast scope holds.
static FAST_TAKEN: [AtomicBool; FAST_SCOPES] = [const { AtomicBool::new(false) }; FAST_SCOPES];

/// A fast scope's live bytes and their high-water mark, changed only under
/// the shard lock of the block charged (module docs). On a cache line of
/// their own: every charge on every thread writes them, and the fields
/// every charge reads (a slot's flags) must not share their line.
#[repr(align(128))]
struct LiveBytes {
    current: AtomicUsize,
    peak: AtomicUsize,
}

/// [`LiveBytes`] per fast index.
static FAST_LIVE: [LiveBytes; FAST_SCOPES] = [const {
    LiveBytes {
        current: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    }
}; FAST_SCOPES];

static SLOTS_: [Slot; SLOTS] = [EMPTY; SLOTS];
/// The innermost open all-threads scope, counted by threads with no scope
/// of their own (0: none).
static ALL_THREADS: AtomicU64 = AtomicU64::new(0);
/// Every open all-threads scope, oldest first: its top is `ALL_THREADS`.
/// Only touched when such a scope opens or closes.
static ALL_THREADS_OPEN: Mutex<Vec<ScopeRef>> = Mutex::new(Vec::new());

/// Most scopes following a function's code at once (one per test running).
const MAX_FOLLOWERS: usize = 64;
/// Open scopes that follow a function's code onto other threads (0: free).
static FOLLOWERS: [AtomicU64; MAX_FOLLOWERS] = [const { AtomicU64::new(0) }; MAX_FOLLOWERS];
/// How many entries of `FOLLOWERS` are in use.
static FOLLOWING: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    // const-initialised and drop-free: readable from the allocator at any
    // point of a thread's life (see `reentrancy`).
    static CURRENT: Cell<ScopeRef> = const { Cell::new(0) };
}

/// This thread's own innermost open scope, 0 for none.
#[inline]
pub(crate) fn own() -> ScopeRef {
    CURRENT.try_with(Cell::get).unwrap_or(0)
}

/// The innermost open all-threads scope, 0 for none.
#[inline]
pub(crate) fn all_threads() -> ScopeRef {
    ALL_THREADS.load(Ordering::Acquire)
}

/// How many open scopes follow code onto other threads.
#[inline]
pub(crate) fn followers() -> usize {
    FOLLOWING.load(Ordering::Acquire)
}

/// True when some open scope follows a function's code onto other threads.
#[inline]
pub(crate) fn following() -> bool {
    FOLLOWING.load(Ordering::Acquire) != 0
}

/// The open scope whose followed code `stack` runs, 0 for none. Resolves
/// the stack's symbols the first time each scope sees it (no lock of ours
/// held meanwhile), then remembers.
pub(crate) fn follower_of(stack: StackId) -> ScopeRef {
    if stack == NO_STACK {
        return 0;
    }
    for follower in &FOLLOWERS {
        let scope = follower.load(Ordering::Acquire);
        if scope == 0 {
            continue;
        }
        let known = with_open(scope, |s| match s.follow_cache.get(&stack) {
            Some(&runs) => Ok(runs),
            None => Err(s.follow.clone()),
        });
        let runs = match known {
            None => false,
            Some(Ok(runs)) => runs,
            Some(Err(None)) => false,
            Some(Err(Some(path))) => {
                let runs = symbolize::runs_code_of(stack, &path);
                with_open(scope, |s| s.follow_cache.insert(stack, runs));
                runs
            }
        };
        if runs {
            return scope;
        }
    }
    0
}

#[inline]
fn lock(slot: &Slot) -> SpinGuard<'_, Option<State>> {
    slot.state.lock()
}

/// The scope this thread's allocations count in, 0 for none (scopes that
/// follow code onto other threads aside: see [`follower_of`]).
#[inline]
pub(crate) fn current() -> ScopeRef {
    match own() {
        0 => all_threads(),
        r => r,
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

/// What [`open`] did, for [`close`] to undo.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) scope: ScopeRef,
    all_threads: bool,
    /// Whether it took a place among the `FOLLOWERS`.
    pub(crate) followed: bool,
}

/// The stack id of blocks allocated with no stack captured (counting
/// scopes): counted in the scope, attributed to no site.
pub(crate) const NO_STACK: StackId = StackId::MAX;

/// Whether the all-threads scope `scope` takes every thread's allocations
/// (it is alone in its process), not only those running workspace code.
#[inline]
pub(crate) fn takes_every_thread(scope: ScopeRef) -> bool {
    SLOTS_[index_of(scope)].every.load(Ordering::Relaxed)
}

/// Allocations, outside std's work, made by threads that no scope owns and
/// that run no followed code by name, while scopes follow code by name.
static UNCLAIMED: AtomicUsize = AtomicUsize::new(0);

/// Counts an allocation no scope could claim (see [`UNCLAIMED`]).
pub(crate) fn note_unclaimed(stack: StackId, class: Class) {
    if !excluded(stack, class) {
        UNCLAIMED.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many allocations no scope could claim so far (see [`UNCLAIMED`]):
/// compared before and after a scope, it says whether other threads did
/// work that scope could not tell apart without names.
pub(crate) fn unclaimed() -> usize {
    UNCLAIMED.load(Ordering::Relaxed)
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
    let scope = (generation << INDEX_BITS) | index as u64;
    slot.every.store(all_threads && every, Ordering::Relaxed);
    let parent = CURRENT.try_with(Cell::get).unwrap_or(0);
    slot.stacks.store(
        stacks || (parent != 0 && wants_stacks(parent)),
        Ordering::Relaxed,
    );
    // A root counting scope charges without a lock of its own, if one of
    // the shards' fast indices is free (their figures are zero then).
    let fast = if !stacks && parent == 0 {
        FAST_TAKEN
            .iter()
            .position(|f| !f.swap(true, Ordering::Acquire))
    } else {
        None
    };
    slot.fast
        .store(fast.map_or(0, |i| i + 1), Ordering::Relaxed);
    if let Some(index) = fast {
        FAST_LIVE[index].current.store(0, Ordering::Relaxed);
        FAST_LIVE[index].peak.store(0, Ordering::Relaxed);
    }
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
    let mut followed = false;
    if follow.is_some() {
        followed = FOLLOWERS.iter().any(|f| {
            f.compare_exchange(0, scope, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if followed {
            FOLLOWING.fetch_add(1, Ordering::AcqRel);
        }
    }
    if all_threads {
        let mut open = ALL_THREADS_OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.push(scope);
        ALL_THREADS.store(scope, Ordering::Release);
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
        for f in &FOLLOWERS {
            if f.compare_exchange(scope, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                FOLLOWING.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    if opened.all_threads {
        let mut open = ALL_THREADS_OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|&r| r != scope);
        ALL_THREADS.store(open.last().copied().unwrap_or(0), Ordering::Release);
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
        state.fill_from_fast(
            &counts,
            FAST_LIVE[index].current.load(Ordering::Relaxed),
            FAST_LIVE[index].peak.load(Ordering::Relaxed),
        );
        FAST_TAKEN[index].store(false, Ordering::Release);
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

/// Applies `f` to the counters of `scope` if it is open (or closing).
fn with_open<R>(scope: ScopeRef, f: impl FnOnce(&mut State) -> R) -> Option<R> {
    let mut guard = lock(&SLOTS_[index_of(scope)]);
    guard
        .as_mut()
        .filter(|s| s.generation == generation_of(scope))
        .map(f)
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
            let current = FAST_LIVE[index].current.load(Ordering::Relaxed);
            let peak = FAST_LIVE[index].peak.load(Ordering::Relaxed);
            s.fill_from_fast(counts, current, peak);
            f(s)
        })
    });
    value
}

/// What is being charged.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Charge {
    /// A fresh block (`alloc`, `alloc_zeroed`).
    Alloc,
    /// The block a `realloc` returned; `old` is the size it had.
    Realloc { old: usize },
    /// A block whose `realloc` failed, put back as it was: not a request.
    Restore,
}

/// One charge, as applied to each scope of a chain.
#[derive(Clone, Copy, Debug)]
enum Op {
    Alloc {
        stack: StackId,
        size: usize,
        charge: Charge,
        /// The thread's name id when not the scope's own thread (0).
        thread: u16,
    },
    /// `realloc`: the block is moved or resized, not given back.
    Free {
        stack: StackId,
        size: usize,
        realloc: bool,
    },
}

/// Applies a charge to fast scope `index`, in `shard`'s share of its
/// figures. Call with `shard` being the charged block's shard.
#[inline]
fn apply_fast(index: usize, shard: &mut Locked, op: Op) {
    let counts = shard.fast(index);
    match op {
        Op::Alloc { size, charge, .. } => {
            counts.blocks = counts.blocks.wrapping_add(1);
            if !matches!(charge, Charge::Restore) {
                counts.allocs = counts.allocs.wrapping_add(1);
                counts.total = counts.total.wrapping_add(size);
            }
            match charge {
                Charge::Alloc => {
                    counts.stats_bytes_allocated = counts.stats_bytes_allocated.wrapping_add(size)
                }
                Charge::Realloc { old } => {
                    counts.reallocs = counts.reallocs.wrapping_add(1);
                    if size > old {
                        counts.stats_bytes_allocated =
                            counts.stats_bytes_allocated.wrapping_add(size - old);
                    } else {
                        counts.stats_bytes_deallocated =
                            counts.stats_bytes_deallocated.wrapping_add(old - size);
                    }
                    counts.bytes_reallocated = counts
                        .bytes_reallocated
                        .wrapping_add(size)
                        .wrapping_sub(old);
                }
                Charge::Restore => {}
            }
            // The one shared write: live bytes need a single order for the
            // peak to be exact. The peak moves only when it is beaten.
            let live = &FAST_LIVE[index];
            let now = live
                .current
                .fetch_add(size, Ordering::Relaxed)
                .wrapping_add(size);
            if now > live.peak.load(Ordering::Relaxed) {
                live.peak.fetch_max(now, Ordering::Relaxed);
            }
        }
        Op::Free { size, realloc, .. } => {
            counts.blocks = counts.blocks.wrapping_sub(1);
            if !realloc {
                counts.frees = counts.frees.wrapping_add(1);
                counts.stats_bytes_deallocated = counts.stats_bytes_deallocated.wrapping_add(size);
            }
            FAST_LIVE[index].current.fetch_sub(size, Ordering::Relaxed);
        }
    }
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
    // A fast scope, without its lock: `closing` first (acquire), so that a
    // `false` written by a later opening makes the generation read below
    // that opening's, and the stale `scope` is refused (module docs).
    if !slot.closing.load(Ordering::Acquire)
        && slot.generation.load(Ordering::Relaxed) == generation_of(scope)
    {
        let fast = slot.fast.load(Ordering::Relaxed);
        if fast != 0 {
            apply_fast(fast - 1, shard, op);
            return Some(tag_of(scope));
        }
    }
    let guard = lock(slot);
    let tag = match guard.as_ref() {
        Some(s) if s.generation == generation_of(scope) && !s.closing => s.tag,
        _ => return None,
    };
    for_chain(shard, guard, op);
    Some(tag)
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
