//! Soak test of memassert's scope protocol: `cargo run --release --example
//! soak -- --seconds 600`.
//!
//! Eight threads (`--threads N`) allocate, zero-allocate, grow, shrink and
//! free raw blocks of random sizes and alignments inside nested scopes that
//! they open and close continuously (counting and full-tracking scopes,
//! millions of openings), and hand blocks to each other: the receiving
//! thread frees them, or resizes them (growing or shrinking) and leaves
//! them for a later free. One thread `fork()`s now and then (`--fork-every-ms
//! M`, 0: never); the child allocates and frees and exits, and must do so
//! within 10 s (a tracker lock copied from another thread would hang it).
//!
//! Every scope's figures are checked against a ledger the soak keeps itself,
//! in memory allocated before any scope opens (the ledger never allocates
//! inside a scope):
//!
//! - `allocs`, `total`, `leaked`, `leaked_blocks`: exact. Remote operations
//!   on a thread's handed-off blocks are frozen while it finishes a scope
//!   (it holds the blocks' hand-off cells), so the ledger knows exactly which
//!   happened before the finish.
//! - `peak`: exact for scopes that handed nothing off; otherwise within the
//!   bounds the ledger can prove (remote frees and resizes happen at times
//!   only the other thread knows).
//!
//! A rule the figures follow (scope_registry's docs): a block stays the
//! scope's it was allocated in, whichever thread resizes or frees it.
//!
//! Exit status: 0 clean, 1 mismatches, 2 a hang (no progress for 30 s, or a
//! forked child that did not exit).

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

use memassert::{Report, Scope};

memassert::install!();

/// Live blocks a thread holds at once.
const HELD: usize = 48;
/// Hand-off cells per thread (blocks it has handed to others).
const CELLS: usize = 16;
/// Deepest scope nesting.
const DEPTH: usize = 3;
/// Largest block.
const MAX_SIZE: usize = 16 * 1024;

// ---- random numbers ---------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn size(&mut self) -> usize {
        match self.below(10) {
            0 => 1 + self.below(MAX_SIZE),
            1..=3 => 1 + self.below(1024),
            _ => 1 + self.below(128),
        }
    }
    fn align(&mut self) -> usize {
        match self.below(20) {
            0 => 4096,
            1 | 2 => 64,
            _ => 8,
        }
    }
}

// ---- the ledger -------------------------------------------------------------

/// A block as the ledger knows it.
#[derive(Clone, Copy, Default)]
struct Block {
    ptr: usize,
    size: usize,
    align: usize,
    /// Ids of the scopes open on its thread when it was allocated.
    chain: [u64; DEPTH],
    chain_len: usize,
}

impl Block {
    fn layout(&self) -> Layout {
        Layout::from_size_align(self.size, self.align).unwrap()
    }
    fn in_scope(&self, id: u64) -> bool {
        self.chain[..self.chain_len].contains(&id)
    }
}

/// What the ledger expects of one open scope.
#[derive(Clone, Copy, Default)]
struct Expect {
    id: u64,
    counting: bool,
    allocs: usize,
    total: usize,
    /// Live bytes of this scope's blocks that the thread itself holds.
    own_live: usize,
    /// Highest `own_live`: the peak's lower bound, and the peak itself when
    /// nothing was handed off.
    own_peak: usize,
    /// Bytes the handed-off blocks of this scope may hold at most.
    handed_max: usize,
    /// Highest `own_live + handed_max`: the peak's upper bound.
    upper_peak: usize,
    handed_any: bool,
}

impl Expect {
    fn grow_own(&mut self, bytes: usize) {
        self.own_live += bytes;
        self.own_peak = self.own_peak.max(self.own_live);
        self.upper_peak = self.upper_peak.max(self.own_live + self.handed_max);
    }
}

/// A block handed from its owner to any other thread.
struct Cell {
    lock: AtomicBool,
    data: UnsafeCell<CellData>,
}

#[derive(Clone, Copy, Default)]
struct CellData {
    /// 0: empty; 1: offered; 2: freed by another thread.
    state: u8,
    block: Block,
    size_at_handoff: usize,
    /// Resizes by other threads, and the bytes they asked for.
    remote_reallocs: usize,
    remote_total: usize,
}

// SAFETY: `data` is only touched with `lock` held.
unsafe impl Sync for Cell {}

impl Cell {
    fn try_lock(&self) -> bool {
        !self.lock.swap(true, Acquire)
    }
    fn lock(&self) {
        while !self.try_lock() {
            std::hint::spin_loop();
        }
    }
    fn unlock(&self) {
        self.lock.store(false, Release);
    }
    /// # Safety
    /// The lock must be held.
    #[allow(clippy::mut_from_ref)]
    unsafe fn data(&self) -> &mut CellData {
        // SAFETY: per the contract.
        unsafe { &mut *self.data.get() }
    }
}

struct Shared {
    cells: Vec<Cell>,
    threads: usize,
    stop: AtomicBool,
    progress: Vec<AtomicU64>,
    mismatches: AtomicUsize,
    opens: AtomicU64,
    allocations: AtomicU64,
    reallocs: AtomicU64,
    remote_frees: AtomicU64,
    remote_reallocs: AtomicU64,
    forks: AtomicU64,
    hung_children: AtomicU64,
}

// ---- one worker -------------------------------------------------------------

struct Worker<'a> {
    me: usize,
    shared: &'a Shared,
    rng: Rng,
    held: [Option<Block>; HELD],
    frames: [Expect; DEPTH],
    depth: usize,
    next_id: u64,
    fork_every: Option<Duration>,
    last_fork: Instant,
}

impl Worker<'_> {
    fn my_cells(&self) -> &[Cell] {
        &self.shared.cells[self.me * CELLS..(self.me + 1) * CELLS]
    }

    fn chain(&self) -> ([u64; DEPTH], usize) {
        let mut chain = [0; DEPTH];
        for (slot, frame) in chain.iter_mut().zip(&self.frames[..self.depth]) {
            *slot = frame.id;
        }
        (chain, self.depth)
    }

    /// The open frames `block` belongs to.
    fn for_open_frames(&mut self, block: &Block, mut f: impl FnMut(&mut Expect)) {
        for frame in &mut self.frames[..self.depth] {
            if block.in_scope(frame.id) {
                f(frame);
            }
        }
    }

    fn allocate(&mut self, slot: usize) {
        let size = self.rng.size();
        let align = self.rng.align();
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe {
            if self.rng.below(4) == 0 {
                alloc_zeroed(layout)
            } else {
                alloc(layout)
            }
        };
        assert!(!ptr.is_null());
        let (chain, chain_len) = self.chain();
        let block = Block {
            ptr: ptr as usize,
            size,
            align,
            chain,
            chain_len,
        };
        self.for_open_frames(&block, |f| {
            f.allocs += 1;
            f.total += size;
            f.grow_own(size);
        });
        self.held[slot] = Some(block);
        self.shared.allocations.fetch_add(1, Relaxed);
    }

    fn free(&mut self, slot: usize) {
        let block = self.held[slot].take().unwrap();
        // SAFETY: a live block of ours, with its layout.
        unsafe { dealloc(block.ptr as *mut u8, block.layout()) };
        self.for_open_frames(&block, |f| f.own_live -= block.size);
    }

    /// True when no open scope counts `block` (born outside any, or in
    /// scopes all closed since).
    fn orphan(&self, block: &Block) -> bool {
        !self.frames[..self.depth]
            .iter()
            .any(|f| block.in_scope(f.id))
    }

    fn resize(&mut self, slot: usize) {
        let mut block = self.held[slot].unwrap();
        let new_size = self.rng.size();
        // SAFETY: a live block of ours, with its layout; non-zero size.
        let ptr = unsafe { realloc(block.ptr as *mut u8, block.layout(), new_size) };
        assert!(!ptr.is_null());
        let old = block.size;
        block.ptr = ptr as usize;
        block.size = new_size;
        if self.orphan(&block) {
            // A block of no scope resized in one becomes that scope's new
            // allocation (as tracemalloc treats a realloc of an untraced
            // block).
            let (chain, chain_len) = self.chain();
            block.chain = chain;
            block.chain_len = chain_len;
            self.for_open_frames(&block, |f| {
                f.allocs += 1;
                f.total += new_size;
                f.grow_own(new_size);
            });
            self.held[slot] = Some(block);
            self.shared.reallocs.fetch_add(1, Relaxed);
            return;
        }
        // The block stays the scopes it was born in: those still open see
        // the old size freed and the new one requested.
        self.for_open_frames(&block, |f| {
            f.allocs += 1;
            f.total += new_size;
            f.own_live -= old;
            f.grow_own(new_size);
        });
        self.held[slot] = Some(block);
        self.shared.reallocs.fetch_add(1, Relaxed);
    }

    fn hand_off(&mut self, slot: usize) {
        // Only blocks an open scope counts: a block of no scope resized by
        // another thread would become that thread's scope's, at a time only
        // that thread knows.
        if self.orphan(self.held[slot].as_ref().unwrap()) {
            return;
        }
        let Some(i) = self.my_cells().iter().position(|c| {
            c.lock();
            // SAFETY: locked.
            let empty = unsafe { c.data().state } == 0;
            c.unlock();
            empty
        }) else {
            return;
        };
        let block = self.held[slot].take().unwrap();
        // Upper bound: another thread may grow it up to twice its size.
        self.for_open_frames(&block, |f| {
            f.own_live -= block.size;
            f.handed_max += 2 * block.size;
            f.handed_any = true;
            f.upper_peak = f.upper_peak.max(f.own_live + f.handed_max);
        });
        let cell = &self.my_cells()[i];
        cell.lock();
        // SAFETY: locked.
        unsafe {
            *cell.data() = CellData {
                state: 1,
                block,
                size_at_handoff: block.size,
                remote_reallocs: 0,
                remote_total: 0,
            };
        }
        cell.unlock();
    }

    /// Works on a block another thread handed off: frees it, or resizes it
    /// and leaves it for later.
    fn take_remote(&mut self) {
        if self.shared.threads < 2 {
            return;
        }
        let mut owner = self.rng.below(self.shared.threads);
        if owner == self.me {
            owner = (owner + 1) % self.shared.threads;
        }
        let cell = &self.shared.cells[owner * CELLS + self.rng.below(CELLS)];
        if !cell.try_lock() {
            return;
        }
        // SAFETY: locked.
        let data = unsafe { cell.data() };
        if data.state == 1 {
            if self.rng.below(3) == 0 {
                let new_size = 1 + self.rng.below(2 * data.size_at_handoff);
                // SAFETY: a live block handed to us, with its layout.
                let ptr =
                    unsafe { realloc(data.block.ptr as *mut u8, data.block.layout(), new_size) };
                assert!(!ptr.is_null());
                data.block.ptr = ptr as usize;
                data.block.size = new_size;
                data.remote_reallocs += 1;
                data.remote_total += new_size;
                self.shared.remote_reallocs.fetch_add(1, Relaxed);
            } else {
                // SAFETY: as above.
                unsafe { dealloc(data.block.ptr as *mut u8, data.block.layout()) };
                data.state = 2;
                self.shared.remote_frees.fetch_add(1, Relaxed);
            }
        }
        cell.unlock();
    }

    fn open(&mut self, counting: bool) -> Scope {
        self.next_id += 1;
        self.frames[self.depth] = Expect {
            id: self.next_id,
            counting,
            ..Expect::default()
        };
        self.depth += 1;
        self.shared.opens.fetch_add(1, Relaxed);
        if counting {
            Scope::options().counting().start()
        } else {
            Scope::start()
        }
    }

    /// Finishes the innermost scope with its handed-off blocks frozen, and
    /// checks it.
    fn close(&mut self, scope: Scope) {
        let cells = self.my_cells();
        for cell in cells {
            cell.lock();
        }
        let frame = self.frames[self.depth - 1];
        if self.depth == 1 {
            // Closing the outermost scope: free what is still handed off
            // first, so that no handed-off block outlives every scope that
            // counts it (see `hand_off`).
            for cell in cells {
                // SAFETY: locked above.
                let data = unsafe { cell.data() };
                if data.state == 1 {
                    // SAFETY: a live block, its holder frozen by the lock.
                    unsafe { dealloc(data.block.ptr as *mut u8, data.block.layout()) };
                    data.state = 2;
                }
            }
        }
        let report = scope.finish();
        let mut expected = frame;
        let (mut leaked, mut leaked_blocks) = (0, 0);
        for block in self.held.iter().flatten() {
            if block.in_scope(frame.id) {
                leaked += block.size;
                leaked_blocks += 1;
            }
        }
        for cell in cells {
            // SAFETY: locked above.
            let data = unsafe { cell.data() };
            if data.state != 0 && data.block.in_scope(frame.id) {
                expected.allocs += data.remote_reallocs;
                expected.total += data.remote_total;
                if data.state == 1 {
                    leaked += data.block.size;
                    leaked_blocks += 1;
                }
            }
        }
        // Cells whose blocks were freed and that no open scope still counts
        // can be reused.
        for cell in cells {
            // SAFETY: locked above.
            let data = unsafe { cell.data() };
            if data.state == 2 && self.depth == 1 {
                data.state = 0;
            }
            cell.unlock();
        }
        self.check(&report, &expected, leaked, leaked_blocks);
        self.depth -= 1;
        self.shared.progress[self.me].fetch_add(1, Relaxed);
    }

    fn check(&self, report: &Report, e: &Expect, leaked: usize, leaked_blocks: usize) {
        let peak_ok = if e.handed_any {
            (e.own_peak..=e.upper_peak.max(e.own_peak)).contains(&report.peak())
        } else {
            report.peak() == e.own_peak
        };
        if report.allocs() == e.allocs
            && report.total() == e.total
            && report.leaked() == leaked
            && report.leaked_blocks() == leaked_blocks
            && peak_ok
        {
            return;
        }
        let n = self.shared.mismatches.fetch_add(1, Relaxed);
        if n < 20 {
            eprintln!(
                "MISMATCH thread {} depth {} {} scope: allocs {} (expected {}), total {} ({}), \
                 leaked {} ({}), leaked blocks {} ({}), peak {} (expected {}..={}{})",
                self.me,
                self.depth,
                if e.counting { "counting" } else { "full" },
                report.allocs(),
                e.allocs,
                report.total(),
                e.total,
                report.leaked(),
                leaked,
                report.leaked_blocks(),
                leaked_blocks,
                report.peak(),
                e.own_peak,
                e.upper_peak,
                if e.handed_any {
                    ", blocks handed off"
                } else {
                    ""
                },
            );
        }
    }

    /// A few operations at the current depth.
    fn work(&mut self, ops: usize) {
        for _ in 0..ops {
            let slot = self.rng.below(HELD);
            match (self.held[slot].is_some(), self.rng.below(10)) {
                (false, _) => self.allocate(slot),
                (true, 0..=3) => self.free(slot),
                (true, 4..=6) => self.resize(slot),
                (true, 7) => self.hand_off(slot),
                (true, _) => self.take_remote(),
            }
            if self.rng.below(4) == 0 {
                self.take_remote();
            }
        }
    }

    /// Nested scopes below the current depth, recursively.
    fn nest(&mut self) {
        let counting = self.rng.below(2) == 0;
        let scope = self.open(counting);
        let ops = 1 + self.rng.below(4);
        self.work(ops);
        if self.depth < DEPTH && self.rng.below(3) == 0 {
            self.nest();
            let ops = self.rng.below(3);
            self.work(ops);
        }
        self.close(scope);
    }

    fn run(&mut self, deadline: Instant) {
        while Instant::now() < deadline && !self.shared.stop.load(Relaxed) {
            let counting = self.rng.below(2) == 0;
            let outer = self.open(counting);
            for _ in 0..50 {
                let ops = 1 + self.rng.below(3);
                self.work(ops);
                self.nest();
                self.maybe_fork();
            }
            self.close(outer);
            // Between outer scopes, blocks may be kept, freed or handed off
            // outside any scope too.
            self.work(2);
        }
        // Give back what is left.
        for slot in 0..HELD {
            if self.held[slot].is_some() {
                self.free(slot);
            }
        }
    }

    fn maybe_fork(&mut self) {
        let Some(every) = self.fork_every else { return };
        if self.me != 0 || self.last_fork.elapsed() < every {
            return;
        }
        self.last_fork = Instant::now();
        // SAFETY: the child only allocates, frees and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            for size in [16usize, 4096, 100_000] {
                let layout = Layout::from_size_align(size, 8).unwrap();
                // SAFETY: non-zero size; freed at once.
                unsafe {
                    let p = alloc(layout);
                    if !p.is_null() {
                        dealloc(p, layout);
                    }
                }
            }
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0, "fork failed");
        self.shared.forks.fetch_add(1, Relaxed);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut status = 0;
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                    self.shared.hung_children.fetch_add(1, Relaxed);
                    eprintln!("HANG: forked child {pid} ended badly (status {status})");
                }
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                self.shared.hung_children.fetch_add(1, Relaxed);
                eprintln!("HANG: forked child {pid} did not exit within 10 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

// ---- main -------------------------------------------------------------------

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 10);
    let threads = arg(&args, "--threads", 8).max(1) as usize;
    let fork_every_ms = arg(&args, "--fork-every-ms", 200);
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        cells: (0..threads * CELLS)
            .map(|_| Cell {
                lock: AtomicBool::new(false),
                data: UnsafeCell::new(CellData::default()),
            })
            .collect(),
        threads,
        stop: AtomicBool::new(false),
        progress: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        mismatches: AtomicUsize::new(0),
        opens: AtomicU64::new(0),
        allocations: AtomicU64::new(0),
        reallocs: AtomicU64::new(0),
        remote_frees: AtomicU64::new(0),
        remote_reallocs: AtomicU64::new(0),
        forks: AtomicU64::new(0),
        hung_children: AtomicU64::new(0),
    }));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    println!(
        "soak: {threads} threads for {seconds} s, fork every {} ...",
        if fork_every_ms == 0 {
            "never".to_string()
        } else {
            format!("{fork_every_ms} ms")
        }
    );
    // Watchdog: a thread without progress for 30 s is a hang.
    std::thread::spawn(move || {
        let mut last: Vec<u64> = vec![0; threads];
        let mut since = vec![Instant::now(); threads];
        loop {
            std::thread::sleep(Duration::from_secs(1));
            if shared.stop.load(Relaxed) {
                return;
            }
            for t in 0..threads {
                let now = shared.progress[t].load(Relaxed);
                if now != last[t] {
                    last[t] = now;
                    since[t] = Instant::now();
                } else if since[t].elapsed() > Duration::from_secs(30) {
                    eprintln!("HANG: thread {t} made no progress for 30 s");
                    std::process::exit(2);
                }
            }
        }
    });
    let handles: Vec<_> = (0..threads)
        .map(|me| {
            std::thread::spawn(move || {
                let mut worker = Worker {
                    me,
                    shared,
                    rng: Rng(
                        0x9E37_79B9_7F4A_7C15 ^ (me as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)
                    ),
                    held: [None; HELD],
                    frames: [Expect::default(); DEPTH],
                    depth: 0,
                    next_id: (me as u64) << 40,
                    fork_every: (fork_every_ms > 0).then(|| Duration::from_millis(fork_every_ms)),
                    last_fork: Instant::now(),
                };
                worker.run(deadline);
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("a worker panicked");
    }
    shared.stop.store(true, Relaxed);
    // Blocks still handed off: free them.
    for cell in &shared.cells {
        cell.lock();
        // SAFETY: locked.
        let data = unsafe { cell.data() };
        if data.state == 1 {
            // SAFETY: a live block nobody else holds now.
            unsafe { dealloc(data.block.ptr as *mut u8, data.block.layout()) };
            data.state = 0;
        }
        cell.unlock();
    }
    let mismatches = shared.mismatches.load(Relaxed);
    let hung = shared.hung_children.load(Relaxed);
    println!(
        "soak: {:.1} s, {threads} threads: {} scopes opened and checked, {} allocations, {} reallocs, \
         {} cross-thread frees, {} cross-thread reallocs, {} forks ({} hung), {} mismatches",
        start.elapsed().as_secs_f64(),
        shared.opens.load(Relaxed),
        shared.allocations.load(Relaxed),
        shared.reallocs.load(Relaxed),
        shared.remote_frees.load(Relaxed),
        shared.remote_reallocs.load(Relaxed),
        shared.forks.load(Relaxed),
        hung,
        mismatches,
    );
    if hung > 0 {
        std::process::exit(2);
    }
    if mismatches > 0 {
        std::process::exit(1);
    }
}
