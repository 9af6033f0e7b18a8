//! Stack interning: raw return-address arrays to small ids.
//!
//! A million blocks allocated from one site cost one stored stack. The table
//! is sharded by the stack's hash so threads interning different stacks do
//! not contend, and ids are never reused (a [`Report`](crate::Report) or the
//! live table may name a stack long after its blocks are gone).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::{Mutex, MutexGuard};

use crate::live_table::AddrHasher;
use crate::stack_capture::{self, MAX_RAW_FRAMES};

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

/// Captures the current stack and interns it. Call with the guard held.
#[inline]
pub(crate) fn capture_here() -> StackId {
    let mut buf = [0usize; MAX_RAW_FRAMES];
    let n = stack_capture::capture(&mut buf);
    intern(&buf[..n])
}

/// The id of `ips`, interning it on first sight.
pub(crate) fn intern(ips: &[usize]) -> StackId {
    let shard = (hash(ips) >> (64 - SHARD_BITS)) as usize;
    let mut guard = lock(shard);
    let table = guard.get_or_insert_with(Shard::default);
    if let Some(&id) = table.ids.get(ips) {
        return id;
    }
    let index = table.stacks.len() as u32;
    let id = (index << SHARD_BITS) | shard as u32;
    table.stacks.push((ips.into(), Class::Unknown));
    table.ids.insert(ips.into(), id);
    id
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
