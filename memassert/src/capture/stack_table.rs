//! Stack interning: raw return-address arrays to small ids.
//!
//! A million blocks allocated from one site cost one stored stack. The table
//! is sharded by the stack's hash so threads interning different stacks do
//! not contend, and ids are never reused (a [`Report`](crate::Report) or the
//! live table may name a stack long after its blocks are gone).

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::{Mutex, MutexGuard};

use crate::base::addr_hash::AddrHasher;
use crate::capture::sink::MAX_RAW_FRAMES;
use crate::capture::stack_capture;

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;

/// An interned stack.
pub(crate) type StackId = u32;

#[derive(Default)]
struct Shard {
    ids: HashMap<Box<[usize]>, StackId, BuildHasherDefault<AddrHasher>>,
    stacks: Vec<(Box<[usize]>, Class)>,
}

/// Whether a stack's allocation is the test harness's or std's work done on
/// the body's behalf, and so not counted in scopes. Worked out once per stack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Class {
    Unknown,
    User,
    Excluded,
}

#[repr(align(128))]
struct Padded(Mutex<Option<Shard>>);

static SHARDS_: [Padded; SHARDS] = [const { Padded(Mutex::new(None)) }; SHARDS];

fn hash(ips: &[usize]) -> u64 {
    BuildHasherDefault::<AddrHasher>::default().hash_one(ips)
}

fn lock(i: usize) -> MutexGuard<'static, Option<Shard>> {
    SHARDS_[i].0.lock().unwrap_or_else(|e| e.into_inner())
}

/// One entry of a thread's cache of recently interned stacks.
#[derive(Clone, Copy)]
struct Recent {
    /// Two independent 64-bit hashes of the addresses: a 128-bit key.
    key: (u64, u64),
    id: StackId,
    class: Class,
}

const RECENT_SLOTS: usize = 128;

/// A thread's capture buffers and its cache of recent stacks.
struct PerThread {
    /// Direct-mapped cache of this thread's recent stacks, so the common
    /// case (a site allocating again) takes no lock at all.
    recent: [Recent; RECENT_SLOTS],
    /// Return addresses of the capture under way, and of the one before it,
    /// used in turn (`cur` is the next one's): a stack equal to the last
    /// one (a loop allocating) is known by comparing them, without hashing.
    bufs: [[usize; MAX_RAW_FRAMES]; 2],
    cur: usize,
    /// The last capture's length, id and class (`last_len` 0: none).
    last_len: usize,
    last_id: StackId,
    last_class: Class,
}

thread_local! {
    // const-initialised and drop-free, so it works during thread teardown;
    // only touched with the reentrancy guard held, so never re-entered.
    static PER_THREAD: UnsafeCell<PerThread> = const {
        UnsafeCell::new(PerThread {
            recent: [Recent { key: (0, 0), id: 0, class: Class::Unknown }; RECENT_SLOTS],
            bufs: [[0; MAX_RAW_FRAMES]; 2],
            cur: 0,
            last_len: 0,
            last_id: 0,
            last_class: Class::Unknown,
        })
    };
}

fn key(ips: &[usize]) -> (u64, u64) {
    let mut a: u64 = 0x243F_6A88_85A3_08D3 ^ ips.len() as u64;
    let mut b: u64 = 0x1319_8A2E_0370_7344;
    for &ip in ips {
        let x = ip as u64;
        let m = u128::from(a ^ x) * 0x9E37_79B9_7F4A_7C15;
        a = (m as u64) ^ ((m >> 64) as u64);
        b = (b ^ x).rotate_left(29).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    }
    // Never (0, 0), the empty slot's key.
    (a | 1, b)
}

fn with_thread<R>(f: impl FnOnce(&mut PerThread) -> R) -> Option<R> {
    PER_THREAD
        .try_with(|cell| {
            // SAFETY: thread-local, and only reached with the reentrancy
            // guard held (nothing called from `f` can reach it again: an
            // allocation made meanwhile returns early), so no other
            // reference to it exists right now.
            f(unsafe { &mut *cell.get() })
        })
        .ok()
}

/// Captures the current stack and interns it, with what is known of its
/// class. Call with the guard held.
#[inline]
pub(crate) fn capture_here() -> (StackId, Class) {
    with_thread(|t| {
        let cur = t.cur & 1;
        let n = stack_capture::capture(&mut t.bufs[cur]);
        let (this, other) = t.bufs.split_at_mut(1);
        let (ips, before) = if cur == 0 {
            (&this[0][..n], &other[0])
        } else {
            (&other[0][..n], &this[0])
        };
        if n != 0 && n == t.last_len && ips == &before[..n] {
            // The same stack as last time: the other buffer still holds it.
            return (t.last_id, t.last_class);
        }
        let key = key(ips);
        let slot = (key.0 as usize) % RECENT_SLOTS;
        let hit = t.recent[slot];
        let (id, class) = if hit.key == key {
            (hit.id, hit.class)
        } else {
            let (id, class) = intern(ips);
            t.recent[slot] = Recent { key, id, class };
            (id, class)
        };
        t.cur = cur ^ 1;
        t.last_len = n;
        t.last_id = id;
        t.last_class = class;
        (id, class)
    })
    .unwrap_or_else(|| {
        // No thread-local storage (cannot happen for a const, drop-free
        // slot, but never fail inside the allocator): capture uncached.
        let mut buf = [0usize; MAX_RAW_FRAMES];
        let n = stack_capture::capture(&mut buf);
        intern(&buf[..n])
    })
}

/// Updates this thread's cached class of a stack.
pub(crate) fn remember_class(id: StackId, class: Class) {
    with_thread(|t| {
        if t.last_id == id && t.last_len != 0 {
            t.last_class = class;
        }
        for slot in t
            .recent
            .iter_mut()
            .filter(|s| s.id == id && s.key != (0, 0))
        {
            slot.class = class;
        }
    });
}

/// The id of `ips` and its class, interning it on first sight.
pub(crate) fn intern(ips: &[usize]) -> (StackId, Class) {
    let shard = (hash(ips) >> (64 - SHARD_BITS)) as usize;
    let mut guard = lock(shard);
    let table = guard.get_or_insert_with(Shard::default);
    if let Some(&id) = table.ids.get(ips) {
        return (id, table.stacks[(id >> SHARD_BITS) as usize].1);
    }
    let index = table.stacks.len() as u32;
    let id = (index << SHARD_BITS) | shard as u32;
    table.stacks.push((ips.into(), Class::Unknown));
    table.ids.insert(ips.into(), id);
    (id, Class::Unknown)
}

/// The return addresses of a stack, innermost first.
pub(crate) fn ips(id: StackId) -> Box<[usize]> {
    with_entry(id, |ips, _| ips.into()).unwrap_or_default()
}

/// How a stack's allocations are classified, as far as known.
pub(crate) fn class(id: StackId) -> Class {
    with_entry(id, |_, class| *class).unwrap_or(Class::Unknown)
}

/// Records how a stack's allocations are classified.
pub(crate) fn set_class(id: StackId, class: Class) {
    let shard = id as usize & (SHARDS - 1);
    if let Some(table) = lock(shard).as_mut() {
        if let Some(slot) = table.stacks.get_mut((id >> SHARD_BITS) as usize) {
            slot.1 = class;
        }
    }
}

fn with_entry<R>(id: StackId, f: impl FnOnce(&[usize], &Class) -> R) -> Option<R> {
    let shard = id as usize & (SHARDS - 1);
    let guard = lock(shard);
    let (ips, class) = guard.as_ref()?.stacks.get((id >> SHARD_BITS) as usize)?;
    Some(f(ips, class))
}

/// Interned stacks and the bytes they take.
pub(crate) fn footprint() -> (usize, usize) {
    let mut count = 0;
    let mut bytes = 0;
    for i in 0..SHARDS {
        if let Some(table) = lock(i).as_ref() {
            count += table.stacks.len();
            for (ips, _) in &table.stacks {
                // Stored twice (map key and id slot), plus the slots themselves.
                bytes += 2 * std::mem::size_of_val(&**ips) + 48;
            }
        }
    }
    (count, bytes)
}
