//! Fast counting scopes: a root counting scope (no stacks, no parent: what
//! `Scope::options().counting()` opens outside any scope) takes no lock of
//! its own on the hot path.
//!
//! Its per-block figures live in the live table's shards ([`FastCounts`](crate::alloc::live_table::FastCounts),
//! changed under the shard lock the charge holds anyway) and its live bytes
//! and peak in two atomics of its fast index (`FAST_LIVE`, a cache line of
//! their own), changed under that lock too. A charge reads the slot's
//! `closing` flag (acquire) and then its generation under the shard lock: a
//! close sets the flag and then passes over every shard, so a charge either
//! sees the flag or happens in a shard the close has not passed yet (the
//! close protocol is in `scope_registry`). Up to `FAST_SCOPES` such scopes
//! are open at once; more fall back to the locked path.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::alloc::live_table::{Locked, FAST_SCOPES};
use crate::alloc::scope_counters::{Charge, Op};

/// Which [`FastCounts`](crate::alloc::live_table::FastCounts) indices an open fast scope holds.
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

/// Applies a charge to fast scope `index`, in `shard`'s share of its
/// figures. Call with `shard` being the charged block's shard.
#[inline]
pub(crate) fn apply_fast(index: usize, shard: &mut Locked, op: Op) {
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

/// Takes a free fast index, if one is, its live figures zeroed.
pub(crate) fn claim() -> Option<usize> {
    let index = FAST_TAKEN
        .iter()
        .position(|f| !f.swap(true, Ordering::Acquire))?;
    FAST_LIVE[index].current.store(0, Ordering::Relaxed);
    FAST_LIVE[index].peak.store(0, Ordering::Relaxed);
    Some(index)
}

/// Gives fast index `index` back, its figures taken.
pub(crate) fn release(index: usize) {
    FAST_TAKEN[index].store(false, Ordering::Release);
}

/// The live bytes and peak of fast index `index`.
pub(crate) fn live(index: usize) -> (usize, usize) {
    (
        FAST_LIVE[index].current.load(Ordering::Relaxed),
        FAST_LIVE[index].peak.load(Ordering::Relaxed),
    )
}
