//! The live table: every recorded block, keyed by address, in 64 shards.
//!
//! Sharding by address keeps threads off each other's locks (two threads
//! allocating at once almost never touch the same shard), and no process-wide
//! lock is taken on an allocation. The traced-memory counters are updated
//! under the shard lock of the block they count, so taking every shard lock
//! (as [`clear_traced`] does) sees them consistent with the table.
//!
//! The maps allocate through the global allocator like any other code; they
//! are only touched with the reentrancy guard held, so their memory comes
//! from the inner allocator untracked.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use crate::base::addr_hash::AddrHasher;
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

type Map = HashMap<usize, Entry, BuildHasherDefault<AddrHasher>>;

// Each shard on its own cache line, so neighbours do not false-share.
#[repr(align(128))]
struct Shard(Mutex<Map>);

static TABLE: [Shard; SHARDS] =
    [const { Shard(Mutex::new(HashMap::with_hasher(BuildHasherDefault::new()))) }; SHARDS];

/// Live traced bytes and their high-water mark (`traced_memory`).
static TRACED_CURRENT: AtomicUsize = AtomicUsize::new(0);
static TRACED_PEAK: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn shard_of(addr: usize) -> &'static Mutex<Map> {
    // The top bits of a multiplicative hash: independent of the low bits the
    // map itself uses.
    let h = (addr as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) >> 58;
    &TABLE[h as usize % SHARDS].0
}

fn lock(m: &Mutex<Map>) -> MutexGuard<'_, Map> {
    // The tracker never panics while holding a shard, so poisoning can only
    // come from a panic elsewhere in the guard's scope; the map is consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
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
pub(crate) struct Locked(MutexGuard<'static, Map>);

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
    pub(crate) fn insert(&mut self, addr: usize, mut entry: Entry, tracing: bool) -> Option<Entry> {
        if entry.traced() && !tracing {
            entry.tag &= !TRACED_BIT;
        }
        let stale = if entry.traced() || entry.scope() != 0 {
            if entry.traced() {
                count_in(entry.size);
            }
            self.0.insert(addr, entry)
        } else {
            self.0.remove(&addr)
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
        let entry = self.0.remove(&addr)?;
        if entry.traced() {
            count_out(entry.size);
        }
        Some(entry)
    }
}

/// The record of a live block.
pub(crate) fn get(addr: usize) -> Option<Entry> {
    lock(shard_of(addr)).get(&addr).copied()
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

fn lock_all() -> Vec<MutexGuard<'static, Map>> {
    // Always in index order; the hot path holds at most one shard at a time.
    TABLE.iter().map(|s| lock(&s.0)).collect()
}

/// Forgets every traced block (scopes keep theirs) and zeroes the counters.
pub(crate) fn clear_traced() {
    let mut all = lock_all();
    for map in all.iter_mut() {
        map.retain(|_, e| {
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
        for e in lock(&shard.0).values() {
            if e.traced() {
                f(e.size, e.stack);
            }
        }
    }
}

/// Moves every block of scope `from` to scope `to` (0: out of any scope).
pub(crate) fn retag(from: u32, to: u32) {
    for shard in &TABLE {
        let mut map = lock(&shard.0);
        map.retain(|_, e| {
            if e.scope() == from {
                e.set_scope(to);
            }
            e.traced() || e.scope() != 0
        });
    }
}

/// Number of recorded blocks and the bytes the table itself holds.
pub(crate) fn footprint() -> (usize, usize) {
    let mut blocks = 0;
    let mut bytes = 0;
    for shard in &TABLE {
        let map = lock(&shard.0);
        blocks += map.len();
        // hashbrown: one slot (key + value) and one control byte per bucket.
        bytes += map.capacity() * (std::mem::size_of::<(usize, Entry)>() + 1);
    }
    (blocks, bytes)
}
