//! The live table: every recorded block, keyed by address, in 64 shards.
//!
//! Sharding by address keeps threads off each other's locks (two threads
//! allocating at once almost never touch the same shard: blocks are spread
//! over the shards by cache line), and no process-wide lock is taken on an
//! allocation. The maps' hashing keeps neighbouring blocks together
//! ([`BlockHasher`]), so that filling and dropping a big collection walks
//! the table instead of missing the cache on every record. The traced-memory counters are updated
//! under the shard lock of the block they count, so taking every shard lock
//! (as [`clear_traced`] does) sees them consistent with the table.
//!
//! The maps allocate through the global allocator like any other code; they
//! are only touched with the reentrancy guard held, so their memory comes
//! from the inner allocator untracked.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::base::addr_hash::{mix_above, BlockHasher};
use crate::base::spin_lock::{SpinGuard, SpinLock};
use crate::capture::stack_table::StackId;

const SHARDS: usize = 64;
/// Bits of an entry's tag left for the scope tag: the top one is "traced".
pub(crate) const SCOPE_TAG_BITS: u32 = 31;
const TRACED_BIT: u32 = 1 << SCOPE_TAG_BITS;

/// One live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) size: usize,
    pub(crate) stack: StackId,
    /// Scope tag in the low 31 bits (0: no scope), "traced" in the top bit.
    tag: u32,
}

impl Entry {
    pub(crate) fn new(size: usize, stack: StackId, scope: u32, traced: bool) -> Entry {
        let traced = if traced { TRACED_BIT } else { 0 };
        Entry {
            size,
            stack,
            tag: (scope & !TRACED_BIT) | traced,
        }
    }
    /// The scope the block counts in, 0 for none.
    pub(crate) fn scope(&self) -> u32 {
        self.tag & !TRACED_BIT
    }
    /// True when the block counts in the global traced memory.
    pub(crate) fn traced(&self) -> bool {
        self.tag & TRACED_BIT != 0
    }
    /// The same block, counted in scope `scope` instead.
    pub(crate) fn with_scope(mut self, scope: u32) -> Entry {
        self.set_scope(scope);
        self
    }
    fn set_scope(&mut self, scope: u32) {
        self.tag = (self.tag & TRACED_BIT) | (scope & !TRACED_BIT);
    }
}

type Map = HashMap<usize, Entry, BuildHasherDefault<BlockHasher>>;

/// Root counting scopes whose figures are kept in the shards (see
/// [`FastCounts`]); more at once fall back to the scope's own lock.
pub(crate) const FAST_SCOPES: usize = 16;

/// One root counting scope's figures for the blocks of one shard, changed
/// only under that shard's lock. Charging a scope here instead of under its
/// own lock saves the hot path a second lock (the shard is locked anyway);
/// the scope adds up all shards when it reads its figures. Fields wrap: a
/// block allocated in one shard and resized into another makes one shard's
/// share "negative", and the wrapping sum is still exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FastCounts {
    /// Live blocks of the scope (or of its children) recorded in the shard.
    pub(crate) blocks: usize,
    pub(crate) allocs: usize,
    pub(crate) total: usize,
    pub(crate) reallocs: usize,
    pub(crate) frees: usize,
    pub(crate) stats_bytes_allocated: usize,
    pub(crate) stats_bytes_deallocated: usize,
    /// A signed figure, kept as its two's complement.
    pub(crate) bytes_reallocated: usize,
}

impl FastCounts {
    fn add(&mut self, other: &FastCounts) {
        self.blocks = self.blocks.wrapping_add(other.blocks);
        self.allocs = self.allocs.wrapping_add(other.allocs);
        self.total = self.total.wrapping_add(other.total);
        self.reallocs = self.reallocs.wrapping_add(other.reallocs);
        self.frees = self.frees.wrapping_add(other.frees);
        self.stats_bytes_allocated = self
            .stats_bytes_allocated
            .wrapping_add(other.stats_bytes_allocated);
        self.stats_bytes_deallocated = self
            .stats_bytes_deallocated
            .wrapping_add(other.stats_bytes_deallocated);
        self.bytes_reallocated = self.bytes_reallocated.wrapping_add(other.bytes_reallocated);
    }
}

/// What one shard's lock protects.
struct ShardData {
    map: Map,
    fast: [FastCounts; FAST_SCOPES],
}

const ZERO_COUNTS: FastCounts = FastCounts {
    blocks: 0,
    allocs: 0,
    total: 0,
    reallocs: 0,
    frees: 0,
    stats_bytes_allocated: 0,
    stats_bytes_deallocated: 0,
    bytes_reallocated: 0,
};

// Each shard on its own cache line, so neighbours do not false-share.
#[repr(align(128))]
struct Shard(SpinLock<ShardData>);

static TABLE: [Shard; SHARDS] = [const {
    Shard(SpinLock::new(ShardData {
        map: HashMap::with_hasher(BuildHasherDefault::new()),
        fast: [ZERO_COUNTS; FAST_SCOPES],
    }))
}; SHARDS];

/// Live traced bytes and their high-water mark (`traced_memory`).
static TRACED_CURRENT: AtomicUsize = AtomicUsize::new(0);
static TRACED_PEAK: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn shard_of(addr: usize) -> &'static SpinLock<ShardData> {
    // By cache line: blocks of different threads sit in different lines
    // even when the threads share an arena (glibc may hand two threads the
    // same one: then their blocks are neighbours, and sharding by region
    // made them fight over one lock).
    let h = mix_above(addr, 6) >> 58;
    &TABLE[h as usize % SHARDS].0
}

#[inline]
fn lock(m: &SpinLock<ShardData>) -> SpinGuard<'_, ShardData> {
    m.lock()
}

fn count_in(size: usize) {
    let now = TRACED_CURRENT.fetch_add(size, Relaxed) + size;
    TRACED_PEAK.fetch_max(now, Relaxed);
}

fn count_out(size: usize) {
    TRACED_CURRENT.fetch_sub(size, Relaxed);
}

/// One shard of the table, locked: the block's record and the scope
/// charges of an allocation or free are made together under this lock (see
/// `scope_registry`'s protocol), so a scope closing meanwhile (which retags
/// shard by shard) sees either both or neither.
pub(crate) struct Locked(SpinGuard<'static, ShardData>);

/// Locks the shard that holds `addr`.
#[inline]
pub(crate) fn lock_addr(addr: usize) -> Locked {
    Locked(lock(shard_of(addr)))
}

impl Locked {
    /// Records a block; returns the record it replaced, if the address was
    /// (stalely) recorded already. A block that is neither traced nor in a
    /// scope is not recorded. `tracing`: global tracing is on, as read with
    /// this shard locked (`stop`/`clear_traces` clear the flag first and
    /// then sweep every shard, so nothing traced can slip in behind the
    /// sweep).
    #[inline]
    pub(crate) fn insert(&mut self, addr: usize, mut entry: Entry, tracing: bool) -> Option<Entry> {
        if entry.traced() && !tracing {
            entry.tag &= !TRACED_BIT;
        }
        let stale = if entry.traced() || entry.scope() != 0 {
            if entry.traced() {
                count_in(entry.size);
            }
            self.0.map.insert(addr, entry)
        } else {
            self.0.map.remove(&addr)
        };
        if let Some(old) = stale {
            if old.traced() {
                count_out(old.size);
            }
        }
        stale
    }

    /// Forgets a block, returning its record.
    pub(crate) fn remove(&mut self, addr: usize) -> Option<Entry> {
        let entry = self.0.map.remove(&addr)?;
        if entry.traced() {
            count_out(entry.size);
        }
        Some(entry)
    }

    /// This shard's share of the figures of fast scope `index`.
    #[inline]
    pub(crate) fn fast(&mut self, index: usize) -> &mut FastCounts {
        &mut self.0.fast[index]
    }
}

/// The record of a live block.
pub(crate) fn get(addr: usize) -> Option<Entry> {
    lock(shard_of(addr)).map.get(&addr).copied()
}

/// `(current, peak)` traced bytes.
pub(crate) fn traced_memory() -> (usize, usize) {
    (TRACED_CURRENT.load(Relaxed), TRACED_PEAK.load(Relaxed))
}

/// Sets the peak to the current traced size.
pub(crate) fn reset_peak() {
    let _all = lock_all();
    TRACED_PEAK.store(TRACED_CURRENT.load(Relaxed), Relaxed);
}

fn lock_all() -> Vec<SpinGuard<'static, ShardData>> {
    // Always in index order; the hot path holds at most one shard at a time.
    TABLE.iter().map(|s| lock(&s.0)).collect()
}

/// Forgets every traced block (scopes keep theirs) and zeroes the counters.
pub(crate) fn clear_traced() {
    let mut all = lock_all();
    for shard in all.iter_mut() {
        shard.map.retain(|_, e| {
            e.tag &= !TRACED_BIT;
            e.scope() != 0
        });
    }
    TRACED_CURRENT.store(0, Relaxed);
    TRACED_PEAK.store(0, Relaxed);
}

/// Calls `f(size, stack)` for every traced block, one shard at a time.
pub(crate) fn for_each_traced(mut f: impl FnMut(usize, StackId)) {
    for shard in &TABLE {
        for e in lock(&shard.0).map.values() {
            if e.traced() {
                f(e.size, e.stack);
            }
        }
    }
}

/// Moves every block of scope `from` to scope `to` (0: out of any scope).
pub(crate) fn retag(from: u32, to: u32) {
    for shard in &TABLE {
        retag_map(&mut lock(&shard.0).map, from, to);
    }
}

fn retag_map(map: &mut Map, from: u32, to: u32) {
    map.retain(|_, e| {
        if e.scope() == from {
            e.set_scope(to);
        }
        e.traced() || e.scope() != 0
    });
}

/// Takes fast scope `index`'s blocks out of any scope (it is a root, and
/// closing): retags the records of tag `tag` in every shard that holds some
/// of its live blocks, each under its lock.
pub(crate) fn retag_fast(index: usize, tag: u32) {
    for shard in &TABLE {
        let mut data = lock(&shard.0);
        if data.fast[index].blocks != 0 {
            retag_map(&mut data.map, tag, 0);
        }
    }
}

/// Adds up fast scope `index`'s figures over every shard and zeroes them,
/// for the next scope to use the index. Call once nothing can charge the
/// scope any more.
pub(crate) fn take_fast(index: usize) -> FastCounts {
    let mut sum = FastCounts::default();
    for shard in &TABLE {
        let mut data = lock(&shard.0);
        sum.add(&data.fast[index]);
        data.fast[index] = FastCounts::default();
    }
    sum
}

/// Fast scope `index`'s figures now, with `read` called while every shard
/// is locked (so what it reads of the scope is consistent with them).
pub(crate) fn read_fast<R>(index: usize, read: impl FnOnce(&FastCounts) -> R) -> (FastCounts, R) {
    let all = lock_all();
    let mut sum = FastCounts::default();
    for data in &all {
        sum.add(&data.fast[index]);
    }
    let value = read(&sum);
    drop(all);
    (sum, value)
}

/// Number of recorded blocks and the bytes the table itself holds.
pub(crate) fn footprint() -> (usize, usize) {
    let mut blocks = 0;
    let mut bytes = 0;
    for shard in &TABLE {
        let data = lock(&shard.0);
        blocks += data.map.len();
        // hashbrown: one slot (key + value) and one control byte per bucket.
        bytes += data.map.capacity() * (std::mem::size_of::<(usize, Entry)>() + 1);
    }
    (blocks, bytes)
}
