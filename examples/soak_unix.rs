//! Soak test of memassert's scope protocol, checked against a ledger of its
//! own.
//!
//! ```text
//! cargo run --release --example soak -- --seconds 600
//! cargo run --release --example soak -- --seconds 20 --threads 8 --fork-every-ms 200
//! cargo run --release --example soak -- --seconds 20 --fork-every-ms 0   # no fork
//! ```
//!
//! Options: `--seconds N` (default 10), `--threads T` (default 8),
//! `--fork-every-ms M` (default 200; 0: never fork), `--seed S` (default:
//! from the clock; printed, though thread interleavings never replay).
//!
//! # What runs
//!
//! `T` worker threads loop until the deadline. Each opens an outer scope
//! (counting and full tracking in turn) and, inside it, short inner scopes
//! nested 1 to 3 deep (each kind at random), each doing a few operations
//! with raw `std::alloc::{alloc, alloc_zeroed, realloc, dealloc}`: sizes of
//! 1 B to 64 KiB, some over-aligned (64, 4096), reallocs that grow and
//! shrink, frees. A thread also hands some of its blocks to the others
//! through preallocated hand-off slots: another thread frees such a block,
//! or resizes it (perhaps several times) and leaves it for a later free; the
//! owner may also take it back. Between outer scopes a thread works on
//! blocks that belong to no scope; resized inside a scope later, they become
//! that scope's new allocations. Every `--fork-every-ms` one thread (any,
//! often with scopes open) `fork()`s; the child allocates, resizes and
//! frees, then `_exit`s, and must do so within 10 s (a tracker lock copied
//! from another thread would hang it).
//!
//! # What is checked
//!
//! Every scope, at `finish`, against the ledger the soak keeps itself. The
//! ledger follows memassert's rules: a scope counts its own thread's
//! allocations (and its enclosing scopes count them too); a block stays the
//! scope's it was allocated in, whichever thread resizes or frees it (a
//! resize: the old size freed, a request of the new size); a block that was
//! still live when its scope closed is its parent's (or no scope's); a block
//! of no scope resized in a scope becomes a new allocation of that scope.
//!
//! - `allocs`, `total`, `leaked`, `leaked_blocks`: exact. Before a thread
//!   finishes a scope it takes the locks of all its hand-off slots: remote
//!   operations on its blocks are frozen during `finish` (another thread
//!   holds a slot's lock across the realloc or free itself and records it
//!   there), so the ledger knows exactly which happened before.
//! - `peak`: exact for a scope none of whose blocks were handed off.
//!   Otherwise between bounds: at least the most the owner itself held at
//!   once, and the live bytes at the end; at most, at every moment, what
//!   the owner held plus the most each handed-off block may have been grown
//!   to (a remote resize is capped at twice the size handed off, and 64 KiB).
//!
//! The ledger never allocates inside a scope: its storage is fixed-size
//! arrays set up before any scope opens, its random numbers a xorshift,
//! hand-offs a preallocated array of spin-locked slots, and messages written
//! from a stack buffer straight to stderr.
//!
//! A watchdog ends the run with status 2 if a worker makes no progress for
//! 30 s (saying which, and what it was doing). Exit status: 0 clean, 1
//! mismatches, 2 a hang (a worker, or a forked child that did not exit or
//! exited badly), 3 a fatal error (an allocation failed, a block lost its
//! contents, a worker panicked, or the soak's own ledger went wrong).

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::cell::UnsafeCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

use memassert::{Report, Scope};

memassert::install!();

/// Inner scopes nested in an outer one, at most.
const MAX_INNER: usize = 3;
/// Scopes open on a thread at once, at most.
const MAX_DEPTH: usize = 1 + MAX_INNER;
/// Blocks a thread holds at once, at most.
const HELD: usize = 64;
/// Hand-off slots per thread (its blocks other threads may work on).
const SLOTS: usize = 32;
/// Largest block.
const MAX_SIZE: usize = 64 * 1024;
/// Inner nests per outer scope.
const ROUNDS: usize = 32;
/// A worker without progress this long is hung.
const WATCHDOG: Duration = Duration::from_secs(30);
/// A forked child that has not exited by then is hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(10);
/// Mismatches printed in full (all are counted).
const PRINTED: usize = 40;
/// The level of a block that belongs to no open scope.
const NO_LEVEL: u8 = u8::MAX;

// ---- random numbers ---------------------------------------------------------

/// xorshift64*: no allocation, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed: well-mixed and never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// A block size: mostly small, now and then up to 64 KiB.
    fn size(&mut self) -> usize {
        match self.below(100) {
            0..=69 => self.range(1, 256),
            70..=89 => self.range(257, 4096),
            90..=97 => self.range(4097, 16 * 1024),
            _ => self.range(16 * 1024 + 1, MAX_SIZE),
        }
    }

    /// An alignment: mostly ordinary, sometimes 64 or a page.
    fn align(&mut self) -> usize {
        match self.below(100) {
            0..=2 => 4096,
            3..=9 => 64,
            10..=29 => 1 << self.below(4),
            _ => 16,
        }
    }

    /// A new size for a block of `old` bytes: grown, shrunk, or any.
    fn resize(&mut self, old: usize) -> usize {
        match self.below(3) {
            0 => (old + 1 + self.below(old.max(16))).min(MAX_SIZE),
            1 => self.range(1, old),
            _ => self.size(),
        }
    }
}

// ---- output that never allocates ---------------------------------------------

/// A message built in a stack buffer and written to stderr in one
/// `write(2)`: usable inside scopes (`eprintln!` might allocate there).
struct Msg {
    buf: [u8; 3072],
    len: usize,
}

impl Msg {
    fn new() -> Msg {
        Msg {
            buf: [0; 3072],
            len: 0,
        }
    }

    fn emit(&self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: writes initialised bytes of our own buffer to fd 2.
            let n = unsafe {
                libc::write(2, self.buf[done..self.len].as_ptr().cast(), self.len - done)
            };
            if n <= 0 {
                return;
            }
            done += n as usize;
        }
    }
}

impl fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `eprintln!` without allocating.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut msg = Msg::new();
        let _ = writeln!(msg, $($arg)*);
        msg.emit();
    }};
}

// ---- the ledger ---------------------------------------------------------------

/// A block as its owner's ledger knows it.
#[derive(Clone, Copy, Default)]
struct Block {
    addr: usize,
    size: usize,
    align: usize,
    /// The innermost open scope (index in the thread's frame stack) the
    /// block belongs to; it belongs to every scope below too. `NO_LEVEL`:
    /// none.
    level: u8,
    /// Written to its first byte, checked after each resize.
    mark: u8,
}

impl Block {
    fn ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }

    fn layout(&self) -> Layout {
        Layout::from_size_align(self.size, self.align).expect("a valid layout")
    }
}

/// Operations that touched a scope's blocks (printed with a mismatch).
#[derive(Clone, Copy, Default)]
struct Ops {
    allocs: usize,
    zeroed: usize,
    reallocs: usize,
    orphan_reallocs: usize,
    frees: usize,
    handoffs: usize,
    taken_back: usize,
    remote_reallocs: usize,
    remote_frees: usize,
    forks: usize,
}

/// What the ledger expects of one open scope.
#[derive(Clone, Copy, Default)]
struct Frame {
    /// The thread's count of scopes opened, when this one opened.
    serial: u64,
    counting: bool,
    /// Expected exactly: requests, bytes requested, and the bytes and
    /// blocks of the scope live now (held or handed off).
    allocs: usize,
    total: usize,
    live: usize,
    blocks: usize,
    /// Live bytes of the scope's blocks the owner holds itself, and the
    /// most it held: the peak when nothing was handed off, else its lower
    /// bound.
    own_live: usize,
    own_peak: usize,
    /// The most the scope's handed-off blocks (not known to be freed) may
    /// hold together, and the highest `own_live + handed_cap`: the peak's
    /// upper bound.
    handed_cap: usize,
    upper: usize,
    /// Blocks of the scope handed off: the peak is exact only without.
    handoffs: usize,
    ops: Ops,
}

impl Frame {
    fn open(serial: u64, counting: bool) -> Frame {
        Frame {
            serial,
            counting,
            ..Frame::default()
        }
    }

    fn bump(&mut self) {
        self.own_peak = self.own_peak.max(self.own_live);
        self.upper = self.upper.max(self.own_live + self.handed_cap);
    }

    /// A new block (an allocation, or a realloc of a block of no scope).
    fn allocated(&mut self, size: usize) {
        self.allocs += 1;
        self.total += size;
        self.live += size;
        self.blocks += 1;
        self.own_live += size;
        self.bump();
    }

    fn freed(&mut self, size: usize) {
        self.live = less(self.live, size);
        self.blocks = less(self.blocks, 1);
        self.own_live = less(self.own_live, size);
    }

    /// The owner resized a block of the scope: the old size freed, then a
    /// request of the new one.
    fn resized(&mut self, old: usize, new: usize) {
        self.allocs += 1;
        self.total += new;
        self.live = less(self.live, old) + new;
        self.own_live = less(self.own_live, old) + new;
        self.bump();
    }

    fn handed_off(&mut self, size: usize, cap: usize) {
        self.own_live = less(self.own_live, size);
        self.handed_cap += cap;
        self.handoffs += 1;
        self.ops.handoffs += 1;
        self.bump();
    }

    /// Another thread resized a handed-off block `n` times, asking for
    /// `total` bytes in all; it is `new` bytes now, `old` in the ledger.
    fn remote_resized(&mut self, n: usize, total: usize, old: usize, new: usize) {
        self.allocs += n;
        self.total += total;
        self.live = less(self.live, old) + new;
        self.ops.remote_reallocs += n;
    }

    /// Another thread freed a handed-off block (`size` in the ledger). The
    /// upper bound already covers the time it was live.
    fn remote_freed(&mut self, size: usize, cap: usize) {
        self.live = less(self.live, size);
        self.blocks = less(self.blocks, 1);
        self.handed_cap = less(self.handed_cap, cap);
        self.ops.remote_frees += 1;
    }

    /// The owner took a handed-off block back (`size` bytes now).
    fn taken_back(&mut self, size: usize, cap: usize) {
        self.handed_cap = less(self.handed_cap, cap);
        self.own_live += size;
        self.ops.taken_back += 1;
        self.bump();
    }
}

/// `a - b`, which the ledger never takes below zero: if it would, the
/// ledger itself is wrong (release builds do not check overflow).
fn less(a: usize, b: usize) -> usize {
    a.checked_sub(b)
        .unwrap_or_else(|| fatal("the soak's ledger went below zero (a bug in the soak)"))
}

/// One thread's frames, mirroring its open scopes (index 0: outermost).
struct Ledger {
    frames: [Frame; MAX_DEPTH],
    depth: usize,
}

impl Ledger {
    /// The frames a block of `level` belongs to.
    fn of(&mut self, level: u8) -> &mut [Frame] {
        if level == NO_LEVEL {
            return &mut [];
        }
        debug_assert!((level as usize) < self.depth);
        &mut self.frames[..=level as usize]
    }

    /// The level of a block allocated now.
    fn current(&self) -> u8 {
        match self.depth {
            0 => NO_LEVEL,
            d => (d - 1) as u8,
        }
    }

    /// "C>F>[C]": the kinds of the open scopes, `at` in brackets.
    fn kinds(&self, at: usize) -> KindChain {
        let mut chain = KindChain {
            text: [0; 4 * MAX_DEPTH],
            len: 0,
        };
        for (i, frame) in self.frames[..self.depth].iter().enumerate() {
            if i > 0 {
                chain.push(b'>');
            }
            let kind = if frame.counting { b'C' } else { b'F' };
            if i == at {
                chain.push(b'[');
                chain.push(kind);
                chain.push(b']');
            } else {
                chain.push(kind);
            }
        }
        chain
    }
}

struct KindChain {
    text: [u8; 4 * MAX_DEPTH],
    len: usize,
}

impl KindChain {
    fn push(&mut self, b: u8) {
        self.text[self.len] = b;
        self.len += 1;
    }
}

impl fmt::Display for KindChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.text[..self.len]).unwrap_or("?"))
    }
}

// ---- hand-off ----------------------------------------------------------------

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum SlotState {
    #[default]
    Empty,
    /// Handed off: any other thread may resize or free it.
    Offered,
    /// Freed by another thread, not yet seen by the owner.
    Freed,
}

/// A handed-off block and what other threads did to it since its owner
/// last looked.
#[derive(Clone, Copy, Default)]
struct SlotData {
    state: SlotState,
    /// Its address and size now (another thread's resize changes them);
    /// `level` is the owner's.
    block: Block,
    /// The most bytes another thread may resize it to.
    cap: usize,
    /// The size the owner's ledger counts.
    ledger_size: usize,
    /// Resizes by other threads not yet in the ledger, and the bytes they
    /// asked for.
    remote_reallocs: usize,
    remote_total: usize,
}

/// A spin-locked hand-off slot. The lock is held across the remote realloc
/// or free itself, so the owner, holding it, knows exactly what happened.
/// Nobody takes it from inside the allocator, and a thread holding one
/// never waits for another: no deadlock with the tracker's locks.
struct Slot {
    locked: AtomicBool,
    /// A hint, written under the lock: the slot is `Offered`.
    offered: AtomicBool,
    data: UnsafeCell<SlotData>,
}

// SAFETY: `data` is only touched with `locked` held.
unsafe impl Sync for Slot {}

impl Slot {
    fn new() -> Slot {
        Slot {
            locked: AtomicBool::new(false),
            offered: AtomicBool::new(false),
            data: UnsafeCell::new(SlotData::default()),
        }
    }

    fn lock(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // 2 cores, 8 workers: the holder may be descheduled.
                std::thread::yield_now();
            }
        }
    }

    fn unlock(&self) {
        self.locked.store(false, Release);
    }

    /// # Safety
    /// The caller holds the lock, and drops the reference before unlocking.
    #[allow(clippy::mut_from_ref)]
    unsafe fn data(&self) -> &mut SlotData {
        // SAFETY: the lock gives exclusive access (the caller's contract).
        unsafe { &mut *self.data.get() }
    }
}

/// Puts what other threads did to a handed-off block into the owner's
/// ledger. With the slot locked, by its owner.
fn reconcile(ledger: &mut Ledger, slot: &Slot, d: &mut SlotData) {
    match d.state {
        SlotState::Empty => {}
        SlotState::Offered => {
            let (n, total, old, new) = (
                d.remote_reallocs,
                d.remote_total,
                d.ledger_size,
                d.block.size,
            );
            if n > 0 {
                for f in ledger.of(d.block.level) {
                    f.remote_resized(n, total, old, new);
                }
            }
            d.ledger_size = new;
        }
        SlotState::Freed => {
            let (n, total, old) = (d.remote_reallocs, d.remote_total, d.ledger_size);
            for f in ledger.of(d.block.level) {
                if n > 0 {
                    // Resized (and so counted at its new size) before the free.
                    f.remote_resized(n, total, old, old);
                }
                f.remote_freed(old, d.cap);
            }
            d.state = SlotState::Empty;
            slot.offered.store(false, Relaxed);
        }
    }
    d.remote_reallocs = 0;
    d.remote_total = 0;
}

// ---- shared state and counters ----------------------------------------------

macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        /// A worker's counts, summed at the end.
        #[derive(Clone, Copy, Default)]
        struct Stats { $($field: u64,)* }
        impl Stats {
            fn add(&mut self, other: &Stats) { $(self.$field += other.$field;)* }
        }
    };
}

counters!(
    opened,
    closed,
    outer_counting,
    outer_full,
    inner_counting,
    inner_full,
    depth4,
    exact_peaks,
    bounded_peaks,
    allocs,
    zeroed,
    reallocs,
    orphan_reallocs,
    frees,
    handoffs,
    taken_back,
    remote_reallocs,
    remote_frees,
    forks,
    forks_in_scope,
    hung_children,
    failed_children,
    fork_errors,
    mismatches,
);

/// What a worker is doing, for the watchdog's message.
#[derive(Clone, Copy)]
enum Phase {
    Working = 0,
    Opening,
    Allocating,
    Resizing,
    Freeing,
    HandingOff,
    Remote,
    Freezing,
    Finishing,
    Forking,
    Done,
}

const PHASES: [&str; 11] = [
    "working",
    "opening a scope",
    "allocating",
    "resizing",
    "freeing",
    "handing off",
    "resizing or freeing another thread's block",
    "locking its hand-off slots to finish a scope",
    "finishing a scope",
    "forking or waiting for its child",
    "done",
];

struct Shared {
    threads: usize,
    /// `SLOTS` per thread, thread `t`'s at `t * SLOTS..`.
    slots: Box<[Slot]>,
    /// Scopes closed (the watchdog's measure of progress).
    progress: Box<[AtomicU64]>,
    phase: Box<[AtomicUsize]>,
    depth: Box<[AtomicUsize]>,
    mismatches: AtomicUsize,
    start: Instant,
    deadline: Instant,
    fork_every_ms: u64,
    /// When the next fork is due, in ms since `start`.
    next_fork_ms: AtomicU64,
    stop: AtomicBool,
}

// ---- one worker -------------------------------------------------------------

struct Worker {
    me: usize,
    shared: &'static Shared,
    rng: Rng,
    held: [Option<Block>; HELD],
    ledger: Ledger,
    serial: u64,
    stats: Stats,
}

impl Worker {
    fn new(me: usize, shared: &'static Shared, seed: u64) -> Worker {
        Worker {
            me,
            shared,
            rng: Rng::new(seed ^ (me as u64).wrapping_mul(0xA24B_AED4_963E_E407)),
            held: [None; HELD],
            ledger: Ledger {
                frames: [Frame::default(); MAX_DEPTH],
                depth: 0,
            },
            serial: 0,
            stats: Stats::default(),
        }
    }

    fn my_slots(&self) -> &'static [Slot] {
        &self.shared.slots[self.me * SLOTS..(self.me + 1) * SLOTS]
    }

    fn phase(&self, phase: Phase) {
        self.shared.phase[self.me].store(phase as usize, Relaxed);
    }

    fn past_deadline(&self) -> bool {
        Instant::now() >= self.shared.deadline
    }

    // -- operations on the thread's own blocks --

    fn allocate(&mut self, i: usize) {
        self.phase(Phase::Allocating);
        let size = self.rng.size();
        let align = self.rng.align();
        let zeroed = self.rng.one_in(4);
        let layout = Layout::from_size_align(size, align).expect("a valid layout");
        // SAFETY: a non-zero size.
        let ptr = unsafe {
            if zeroed {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            }
        };
        if ptr.is_null() {
            fatal("allocation failed");
        }
        let mark = self.rng.next() as u8;
        // SAFETY: `ptr` is a fresh block of `size` >= 1 bytes.
        unsafe {
            if zeroed && (ptr.read() != 0 || ptr.add(size - 1).read() != 0) {
                fatal("alloc_zeroed returned non-zero memory");
            }
            ptr.write(mark);
            ptr.add(size - 1).write(mark);
        }
        let level = self.ledger.current();
        for f in self.ledger.of(level) {
            f.allocated(size);
            f.ops.allocs += 1;
            f.ops.zeroed += zeroed as usize;
        }
        self.held[i] = Some(Block {
            addr: ptr as usize,
            size,
            align,
            level,
            mark,
        });
        self.stats.allocs += 1;
        self.stats.zeroed += zeroed as u64;
    }

    fn free(&mut self, i: usize) {
        self.phase(Phase::Freeing);
        let block = self.held[i].take().expect("a held block");
        // SAFETY: a live block of ours, with its layout.
        unsafe { dealloc(block.ptr(), block.layout()) };
        for f in self.ledger.of(block.level) {
            f.freed(block.size);
            f.ops.frees += 1;
        }
        self.stats.frees += 1;
    }

    fn resize(&mut self, i: usize) {
        self.phase(Phase::Resizing);
        let mut block = self.held[i].expect("a held block");
        let new_size = self.rng.resize(block.size);
        // SAFETY: a live block of ours, with its layout; a non-zero size.
        let ptr = unsafe { realloc(block.ptr(), block.layout(), new_size) };
        if ptr.is_null() {
            fatal("realloc failed");
        }
        // SAFETY: at least 1 byte, the first kept by the realloc.
        if unsafe { ptr.read() } != block.mark {
            fatal("realloc lost the block's contents");
        }
        let old = block.size;
        block.addr = ptr as usize;
        block.size = new_size;
        if block.level == NO_LEVEL && self.ledger.depth > 0 {
            // A block of no scope resized in one: that scope's new block.
            block.level = self.ledger.current();
            for f in self.ledger.of(block.level) {
                f.allocated(new_size);
                f.ops.orphan_reallocs += 1;
            }
            self.stats.orphan_reallocs += 1;
        } else {
            // It stays its own scopes'; inner scopes opened since see nothing.
            for f in self.ledger.of(block.level) {
                f.resized(old, new_size);
                f.ops.reallocs += 1;
            }
        }
        self.held[i] = Some(block);
        self.stats.reallocs += 1;
    }

    // -- hand-off --

    /// Hands a held block to the other threads, if it belongs to an open
    /// scope (a block of no scope resized by another thread would become
    /// that thread's scope's) and a slot is free.
    fn hand_off(&mut self, i: usize) {
        if self.shared.threads < 2 || self.held[i].is_some_and(|b| b.level == NO_LEVEL) {
            return;
        }
        self.phase(Phase::HandingOff);
        for slot in self.my_slots() {
            if slot.offered.load(Relaxed) {
                continue; // Only this thread offers: it stays offered.
            }
            slot.lock();
            // SAFETY: locked.
            let d = unsafe { slot.data() };
            reconcile(&mut self.ledger, slot, d);
            let block = self.held[i].take().expect("a held block");
            let cap = (2 * block.size).min(MAX_SIZE).max(block.size);
            for f in self.ledger.of(block.level) {
                f.handed_off(block.size, cap);
            }
            *d = SlotData {
                state: SlotState::Offered,
                block,
                cap,
                ledger_size: block.size,
                remote_reallocs: 0,
                remote_total: 0,
            };
            slot.offered.store(true, Relaxed);
            slot.unlock();
            self.stats.handoffs += 1;
            return;
        }
    }

    /// Takes a handed-off block back into `held[i]` (empty), if one of the
    /// thread's slots has one; notes a remote free if that is what it finds.
    fn take_back(&mut self, i: usize) {
        let start = self.rng.below(SLOTS);
        let slots = self.my_slots();
        let Some(slot) = (0..SLOTS)
            .map(|k| &slots[(start + k) % SLOTS])
            .find(|s| s.offered.load(Relaxed))
        else {
            return;
        };
        slot.lock();
        // SAFETY: locked.
        let d = unsafe { slot.data() };
        reconcile(&mut self.ledger, slot, d);
        if d.state == SlotState::Offered {
            for f in self.ledger.of(d.block.level) {
                f.taken_back(d.block.size, d.cap);
            }
            self.held[i] = Some(d.block);
            d.state = SlotState::Empty;
            slot.offered.store(false, Relaxed);
            self.stats.taken_back += 1;
        }
        slot.unlock();
    }

    /// Resizes or frees a block another thread handed off, with its slot
    /// locked across the operation.
    fn remote(&mut self) {
        if self.shared.threads < 2 {
            return;
        }
        let mut owner = self.rng.below(self.shared.threads - 1);
        if owner >= self.me {
            owner += 1;
        }
        let slots = &self.shared.slots[owner * SLOTS..(owner + 1) * SLOTS];
        let start = self.rng.below(SLOTS);
        let Some(slot) = (0..SLOTS)
            .map(|k| &slots[(start + k) % SLOTS])
            .find(|s| s.offered.load(Relaxed))
        else {
            return;
        };
        self.phase(Phase::Remote);
        slot.lock();
        // SAFETY: locked.
        let d = unsafe { slot.data() };
        if d.state == SlotState::Offered {
            if self.rng.one_in(3) {
                let new_size = self.rng.range(1, d.cap);
                // SAFETY: a live block handed to us, with its layout.
                let ptr = unsafe { realloc(d.block.ptr(), d.block.layout(), new_size) };
                if ptr.is_null() {
                    fatal("cross-thread realloc failed");
                }
                // SAFETY: at least 1 byte, kept by the realloc.
                if unsafe { ptr.read() } != d.block.mark {
                    fatal("cross-thread realloc lost the block's contents");
                }
                d.block.addr = ptr as usize;
                d.block.size = new_size;
                d.remote_reallocs += 1;
                d.remote_total += new_size;
                self.stats.remote_reallocs += 1;
            } else {
                // SAFETY: a live block handed to us, with its layout.
                unsafe { dealloc(d.block.ptr(), d.block.layout()) };
                d.state = SlotState::Freed;
                slot.offered.store(false, Relaxed);
                self.stats.remote_frees += 1;
            }
        }
        slot.unlock();
    }

    // -- scopes --

    fn open(&mut self, counting: bool) -> Scope {
        self.phase(Phase::Opening);
        let depth = self.ledger.depth;
        self.serial += 1;
        self.ledger.frames[depth] = Frame::open(self.serial, counting);
        self.ledger.depth += 1;
        self.shared.depth[self.me].store(depth + 1, Relaxed);
        let s = &mut self.stats;
        s.opened += 1;
        match (depth, counting) {
            (0, true) => s.outer_counting += 1,
            (0, false) => s.outer_full += 1,
            (_, true) => s.inner_counting += 1,
            (_, false) => s.inner_full += 1,
        }
        if depth + 1 == MAX_DEPTH {
            s.depth4 += 1;
        }
        if counting {
            Scope::options().counting().start()
        } else {
            Scope::start()
        }
    }

    /// Finishes the innermost scope with remote operations on the thread's
    /// blocks frozen, checks it, and hands its live blocks to its parent.
    fn close(&mut self, scope: Scope) {
        let k = self.ledger.depth - 1;
        let slots = self.my_slots();
        self.phase(Phase::Freezing);
        for slot in slots {
            slot.lock();
        }
        for slot in slots {
            // SAFETY: locked above.
            reconcile(&mut self.ledger, slot, unsafe { slot.data() });
        }
        self.phase(Phase::Finishing);
        let report = scope.finish();
        self.check(k, &report);

        // The scope's live blocks are its parent's now (or no scope's).
        let level = k as u8;
        let parent = if k == 0 { NO_LEVEL } else { level - 1 };
        for block in self.held.iter_mut().flatten() {
            if block.level == level {
                block.level = parent;
            }
        }
        for slot in slots {
            // SAFETY: locked above.
            let d = unsafe { slot.data() };
            if d.state != SlotState::Offered || d.block.level != level {
                continue;
            }
            if k > 0 {
                d.block.level = parent;
                continue;
            }
            // No open scope counts it any more: take it back (resized by
            // another thread it would become that thread's scope's).
            // Nothing is open on this thread: this is outside any scope.
            let mut block = d.block;
            block.level = NO_LEVEL;
            match self.held.iter().position(Option::is_none) {
                Some(i) => self.held[i] = Some(block),
                // SAFETY: a live block, its slot locked.
                None => unsafe { dealloc(block.ptr(), block.layout()) },
            }
            d.state = SlotState::Empty;
            slot.offered.store(false, Relaxed);
        }
        self.ledger.depth -= 1;
        self.shared.depth[self.me].store(k, Relaxed);
        for slot in slots {
            slot.unlock();
        }
        drop(report);
        self.stats.closed += 1;
        self.shared.progress[self.me].fetch_add(1, Relaxed);
        self.phase(Phase::Working);
    }

    fn check(&mut self, level: usize, r: &Report) {
        let f = self.ledger.frames[level];
        let exact_peak = f.handoffs == 0;
        let (lo, hi) = if exact_peak {
            (f.own_peak, f.own_peak)
        } else {
            self.stats.bounded_peaks += 1;
            (f.own_peak.max(f.live), f.upper)
        };
        if exact_peak {
            self.stats.exact_peaks += 1;
        }
        let peak_ok = (lo..=hi).contains(&r.peak());
        if r.allocs() == f.allocs
            && r.total() == f.total
            && r.leaked() == f.live
            && r.leaked_blocks() == f.blocks
            && peak_ok
        {
            return;
        }
        self.stats.mismatches += 1;
        let n = self.shared.mismatches.fetch_add(1, Relaxed) + 1;
        if n > PRINTED {
            return;
        }
        let flag = |ok: bool| if ok { "" } else { "   <-- MISMATCH" };
        let mut m = Msg::new();
        let _ = writeln!(
            m,
            "MISMATCH #{n}: thread {}, depth {} of {} ({}), {} scope, the thread's scope #{}; \
             open scopes {} (C counting, F full)",
            self.me,
            level + 1,
            self.ledger.depth,
            if level == 0 { "outer" } else { "inner" },
            if f.counting { "counting" } else { "full" },
            f.serial,
            self.ledger.kinds(level),
        );
        let _ = writeln!(
            m,
            "  {:<14} {:>12} {:>12}",
            "figure", "expected", "reported"
        );
        for (name, expected, reported) in [
            ("allocs", f.allocs, r.allocs()),
            ("total", f.total, r.total()),
            ("leaked", f.live, r.leaked()),
            ("leaked_blocks", f.blocks, r.leaked_blocks()),
        ] {
            let _ = writeln!(
                m,
                "  {name:<14} {expected:>12} {reported:>12}{}",
                flag(expected == reported)
            );
        }
        if exact_peak {
            let _ = writeln!(
                m,
                "  {:<14} {:>12} {:>12}{}",
                "peak",
                lo,
                r.peak(),
                flag(peak_ok)
            );
        } else {
            let _ = writeln!(
                m,
                "  {:<14} {:>12} {:>12}{}  (bounds: blocks handed off; own peak {}, live at \
                 finish {})",
                "peak",
                Bounds(lo, hi),
                r.peak(),
                flag(peak_ok),
                f.own_peak,
                f.live
            );
        }
        let o = f.ops;
        let _ = writeln!(
            m,
            "  operations on the scope's blocks: {} allocs ({} zeroed), {} reallocs by the \
             thread, {} reallocs of blocks of no scope, {} frees; {} handed off, {} taken back, \
             {} resized and {} freed by other threads; {} forks while open",
            o.allocs,
            o.zeroed,
            o.reallocs,
            o.orphan_reallocs,
            o.frees,
            o.handoffs,
            o.taken_back,
            o.remote_reallocs,
            o.remote_frees,
            o.forks
        );
        m.emit();
    }

    // -- the work loop --

    /// A few operations at the current depth.
    fn work(&mut self, ops: usize) {
        for _ in 0..ops {
            let i = self.rng.below(HELD);
            if self.held[i].is_none() {
                if self.rng.one_in(5) {
                    self.take_back(i);
                }
                if self.held[i].is_none() {
                    self.allocate(i);
                }
            } else {
                match self.rng.below(20) {
                    0..=6 => self.free(i),
                    7..=12 => self.resize(i),
                    13..=16 => self.hand_off(i),
                    _ => self.remote(),
                }
            }
            if self.rng.one_in(3) {
                self.remote();
            }
        }
        self.phase(Phase::Working);
    }

    /// An inner scope with `levels - 1` more levels of scopes inside it.
    fn nest(&mut self, levels: usize) {
        let counting = self.rng.one_in(2);
        let scope = self.open(counting);
        let ops = 1 + self.rng.below(3);
        self.work(ops);
        if levels > 1 {
            for _ in 0..1 + self.rng.below(2) {
                self.nest(levels - 1);
                let ops = self.rng.below(3);
                self.work(ops);
            }
        }
        if self.rng.one_in(4) {
            self.maybe_fork();
        }
        self.close(scope);
    }

    fn run(&mut self) -> Stats {
        let mut counting = self.me.is_multiple_of(2);
        while !self.past_deadline() {
            let outer = self.open(counting);
            counting = !counting;
            for _ in 0..ROUNDS {
                let ops = 1 + self.rng.below(3);
                self.work(ops);
                let levels = 1 + self.rng.below(MAX_INNER);
                self.nest(levels);
                self.maybe_fork();
                if self.past_deadline() {
                    break;
                }
            }
            self.close(outer);
            // Outside any scope: blocks of no scope, freed or kept for a
            // scope to resize later.
            let ops = 1 + self.rng.below(4);
            self.work(ops);
            self.maybe_fork();
        }
        for i in 0..HELD {
            if self.held[i].is_some() {
                self.free(i);
            }
        }
        self.phase(Phase::Done);
        self.stats
    }

    // -- fork --

    /// Forks if a fork is due and no other thread took it.
    fn maybe_fork(&mut self) {
        let every = self.shared.fork_every_ms;
        if every == 0 {
            return;
        }
        let now = self.shared.start.elapsed().as_millis() as u64;
        let due = self.shared.next_fork_ms.load(Relaxed);
        if now < due
            || self
                .shared
                .next_fork_ms
                .compare_exchange(due, now + every, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        self.phase(Phase::Forking);
        // SAFETY: the child only allocates, frees and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            in_child();
        }
        if pid < 0 {
            say!(
                "fork failed (errno {})",
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            );
            self.stats.fork_errors += 1;
            return;
        }
        self.stats.forks += 1;
        if self.ledger.depth > 0 {
            self.stats.forks_in_scope += 1;
        }
        let depth = self.ledger.depth;
        for f in &mut self.ledger.frames[..depth] {
            f.ops.forks += 1;
        }
        let started = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    say!(
                        "FORK: child {pid} (forked by thread {} at depth {depth}) ended badly: \
                         status {status:#x}",
                        self.me
                    );
                    self.stats.failed_children += 1;
                }
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                say!("FORK: waitpid({pid}) failed");
                self.stats.failed_children += 1;
                break;
            }
            if started.elapsed() >= CHILD_TIMEOUT {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                say!(
                    "HANG: forked child {pid} (forked by thread {} at depth {depth}) did not exit \
                     within {} s: killed",
                    self.me,
                    CHILD_TIMEOUT.as_secs()
                );
                self.stats.hung_children += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.phase(Phase::Working);
    }
}

/// The forked child: allocates, resizes and frees a few blocks (a tracker
/// lock held by another thread at the fork would hang here), then exits.
fn in_child() -> ! {
    let mut ok = true;
    for (i, &(size, align)) in [(16, 8), (4096, 4096), (100_000, 16), (64, 64), (3, 1)]
        .iter()
        .enumerate()
    {
        let layout = Layout::from_size_align(size, align).expect("a valid layout");
        // SAFETY: non-zero sizes; each block freed with its layout.
        unsafe {
            let p = if i % 2 == 0 {
                alloc(layout)
            } else {
                alloc_zeroed(layout)
            };
            if p.is_null() {
                ok = false;
                continue;
            }
            p.write(7);
            let q = realloc(p, layout, 2 * size);
            if q.is_null() {
                dealloc(p, layout);
                ok = false;
                continue;
            }
            ok &= q.read() == 7;
            dealloc(q, Layout::from_size_align_unchecked(2 * size, align));
        }
    }
    let v: Vec<u64> = (0..1000).collect();
    ok &= v.iter().sum::<u64>() == 499_500;
    drop(v);
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(if ok { 0 } else { 3 }) }
}

/// Prints and ends the process: a broken invariant of the soak itself or
/// of the allocator (not a figure mismatch).
fn fatal(what: &str) -> ! {
    say!("FATAL: {what}");
    // SAFETY: ends the process at once.
    unsafe { libc::_exit(3) }
}

struct Bounds(usize, usize);

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = Msg::new();
        let _ = write!(m, "{}..={}", self.0, self.1);
        f.pad(std::str::from_utf8(&m.buf[..m.len]).unwrap_or("?"))
    }
}

// ---- watchdog ---------------------------------------------------------------

/// Ends the run with status 2 when a worker makes no progress for
/// `WATCHDOG`; prints a progress line every 30 s on long runs.
fn watchdog(shared: &'static Shared, seconds: u64) {
    let n = shared.threads;
    let mut last = vec![0u64; n];
    let mut since = vec![Instant::now(); n];
    let mut next_line = Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if shared.stop.load(Relaxed) {
            return;
        }
        for t in 0..n {
            let progress = shared.progress[t].load(Relaxed);
            let phase = shared.phase[t].load(Relaxed);
            if progress != last[t] || phase == Phase::Done as usize {
                last[t] = progress;
                since[t] = Instant::now();
            } else if since[t].elapsed() >= WATCHDOG {
                say!(
                    "HANG: thread {t} made no progress for {} s ({}, {} scopes open, {} closed \
                     so far)",
                    WATCHDOG.as_secs(),
                    PHASES.get(phase).unwrap_or(&"?"),
                    shared.depth[t].load(Relaxed),
                    progress
                );
                // SAFETY: ends the process at once (workers may hold locks).
                unsafe { libc::_exit(2) };
            }
        }
        let elapsed = shared.start.elapsed();
        if seconds >= 60 && elapsed >= next_line {
            next_line += Duration::from_secs(30);
            let closed: u64 = shared.progress.iter().map(|p| p.load(Relaxed)).sum();
            println!(
                "  {:>4} s: {closed} scopes closed, {} mismatches",
                elapsed.as_secs(),
                shared.mismatches.load(Relaxed)
            );
        }
    }
}

// ---- main -------------------------------------------------------------------

struct Args {
    seconds: u64,
    threads: usize,
    fork_every_ms: u64,
    seed: u64,
}

fn parse_args() -> Args {
    let usage = "usage: soak [--seconds N] [--threads T] [--fork-every-ms M (0: never)] [--seed S]";
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut args = Args {
        seconds: 10,
        threads: 8,
        fork_every_ms: 200,
        seed,
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        if name == "--help" || name == "-h" {
            println!("{usage}");
            std::process::exit(0);
        }
        let value: u64 = match it.next().map(|v| v.parse()) {
            Some(Ok(v)) => v,
            _ => {
                eprintln!("{name}: expected a number\n{usage}");
                std::process::exit(64);
            }
        };
        match name.as_str() {
            "--seconds" => args.seconds = value,
            "--threads" => args.threads = value.clamp(1, 256) as usize,
            "--fork-every-ms" => args.fork_every_ms = value,
            "--seed" => args.seed = value,
            _ => {
                eprintln!("unknown option {name}\n{usage}");
                std::process::exit(64);
            }
        }
    }
    args
}

/// Warms memassert up (the installed-check, the fork handler, one-time
/// initialisation) on the main thread, and checks one scope of each kind
/// by hand, and that the full one records sites. Returns the mismatches.
fn warm_up() -> usize {
    assert!(memassert::is_installed(), "the tracker is not installed");
    let mut bad = 0;
    for counting in [true, false] {
        let scope = if counting {
            Scope::options().counting().start()
        } else {
            Scope::start()
        };
        let layout = Layout::from_size_align(100, 8).expect("a valid layout");
        // SAFETY: non-zero size; resized and freed with its layouts.
        unsafe {
            let p = alloc(layout);
            assert!(!p.is_null());
            let q = realloc(p, layout, 300);
            assert!(!q.is_null());
            dealloc(q, Layout::from_size_align(300, 8).expect("a valid layout"));
        }
        let r = scope.finish();
        let got = (
            r.allocs(),
            r.total(),
            r.peak(),
            r.leaked(),
            r.leaked_blocks(),
        );
        if got != (2, 400, 300, 0, 0) {
            eprintln!(
                "MISMATCH (warm-up, {} scope): (allocs, total, peak, leaked, leaked_blocks) = \
                 {got:?}, expected (2, 400, 300, 0, 0)",
                if counting { "counting" } else { "full" }
            );
            bad += 1;
        }
        // A full scope names the soak's own line as the site; a counting
        // one names none.
        let sites = r.allocation_statistics(memassert::Key::Line);
        let named = sites
            .iter()
            .any(|s| s.traceback.site().file.ends_with("soak_unix.rs"));
        if named == counting {
            eprintln!(
                "MISMATCH (warm-up, {} scope): sites {:?}",
                if counting { "counting" } else { "full" },
                sites.iter().map(|s| s.to_string()).collect::<Vec<_>>()
            );
            bad += 1;
        }
    }
    bad
}

pub fn main() {
    let args = parse_args();
    let warm_up_mismatches = warm_up();
    let start = Instant::now();
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        threads: args.threads,
        slots: (0..args.threads * SLOTS).map(|_| Slot::new()).collect(),
        progress: (0..args.threads).map(|_| AtomicU64::new(0)).collect(),
        phase: (0..args.threads).map(|_| AtomicUsize::new(0)).collect(),
        depth: (0..args.threads).map(|_| AtomicUsize::new(0)).collect(),
        mismatches: AtomicUsize::new(warm_up_mismatches),
        start,
        deadline: start + Duration::from_secs(args.seconds),
        fork_every_ms: args.fork_every_ms,
        next_fork_ms: AtomicU64::new(args.fork_every_ms),
        stop: AtomicBool::new(false),
    }));
    println!(
        "memassert soak: {} threads for {} s, fork {}, seed {}",
        args.threads,
        args.seconds,
        match args.fork_every_ms {
            0 => "never".to_string(),
            ms => format!("every {ms} ms"),
        },
        args.seed
    );
    let seconds = args.seconds;
    let dog = std::thread::Builder::new()
        .name("soak-watchdog".into())
        .spawn(move || watchdog(shared, seconds))
        .expect("spawn the watchdog");
    let workers: Vec<_> = (0..args.threads)
        .map(|me| {
            let seed = args.seed;
            std::thread::Builder::new()
                .name(format!("soak-{me}"))
                .spawn(move || Worker::new(me, shared, seed).run())
                .expect("spawn a worker")
        })
        .collect();
    let mut total = Stats::default();
    for worker in workers {
        match worker.join() {
            Ok(stats) => total.add(&stats),
            Err(_) => {
                eprintln!("FATAL: a worker panicked");
                std::process::exit(3);
            }
        }
    }
    shared.stop.store(true, Relaxed);
    let _ = dog.join();
    let elapsed = start.elapsed().as_secs_f64();
    let mismatches = shared.mismatches.load(Relaxed);
    summary(&args, &total, elapsed, mismatches);
    let hung = total.hung_children + total.failed_children + total.fork_errors;
    std::process::exit(if hung > 0 {
        2
    } else if mismatches > 0 {
        1
    } else {
        0
    });
}

fn summary(args: &Args, s: &Stats, elapsed: f64, mismatches: usize) {
    let per_s = |n: u64| n as f64 / elapsed.max(1e-9);
    println!("memassert soak summary");
    println!(
        "  ran            {elapsed:.1} s, {} threads, seed {}",
        args.threads, args.seed
    );
    println!(
        "  scopes         {} opened, {} closed and checked ({:.0}/s)",
        s.opened,
        s.closed,
        per_s(s.closed)
    );
    println!(
        "                 outer: {} counting, {} full; inner: {} counting, {} full; {} at depth {}",
        s.outer_counting, s.outer_full, s.inner_counting, s.inner_full, s.depth4, MAX_DEPTH
    );
    println!(
        "  peaks          {} exact, {} within bounds (blocks handed off)",
        s.exact_peaks, s.bounded_peaks
    );
    println!(
        "  operations     {} allocations ({} zeroed), {} reallocs ({} of blocks of no scope), \
         {} frees",
        s.allocs, s.zeroed, s.reallocs, s.orphan_reallocs, s.frees
    );
    println!(
        "  cross-thread   {} hand-offs: {} frees, {} reallocs by other threads, {} taken back",
        s.handoffs, s.remote_frees, s.remote_reallocs, s.taken_back
    );
    println!(
        "  forks          {} ({} with a scope open): {} children hung, {} exited badly, {} \
         fork errors{}",
        s.forks,
        s.forks_in_scope,
        s.hung_children,
        s.failed_children,
        s.fork_errors,
        if args.fork_every_ms == 0 {
            " (forking off)"
        } else {
            ""
        }
    );
    println!("  mismatches     {mismatches}");
    let hung = s.hung_children + s.failed_children + s.fork_errors;
    println!(
        "  result         {}",
        if hung > 0 {
            "FAIL (forked children)"
        } else if mismatches > 0 {
            "FAIL (mismatches)"
        } else {
            "OK"
        }
    );
}
