//! [`SpinLock`]: the lock the allocator hot path takes.
//!
//! The live table's shards and the scopes' counters are locked on every
//! tracked allocation and free, almost always uncontended (threads work on
//! different shards). `std::sync::Mutex` costs two atomic read-modify-writes
//! per use there (a compare-exchange to lock, a swap to unlock, since the
//! unlock must learn whether a waiter needs waking). This lock unlocks with a
//! plain release store, so an uncontended use costs one atomic instruction:
//! on the allocator's bench that is a measurable part of a tracked
//! allocation (see issue 13's note in the README's Speed section).
//!
//! Contended, it spins briefly and then yields the CPU each round, so a
//! holder that is descheduled (or resizing a table) still gets to run. It
//! has no poisoning: the tracker never panics while holding it.
//!
//! Like a mutex, it is not reentrant; the hot path's lock order (live-table
//! shard, then scope slots from child to parent) is what keeps it free of
//! deadlock, exactly as it did with `Mutex`.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A test-and-test-and-set lock around a `T`.
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time
// (acquire on lock, release on unlock), exactly as `Mutex<T>` does, so it is
// `Sync` whenever `T` may be sent between threads.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: owning the lock is owning the `T`.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Spins before the first yield: long enough for an uncontended critical
/// section of the hot path (a table insert) to finish on another core.
const SPINS_BEFORE_YIELD: u32 = 64;

impl<T> SpinLock<T> {
    /// An unlocked lock holding `value`.
    pub(crate) const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, waiting as long as it takes.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            // Wait with plain loads (no cache-line ping-pong), then try.
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS_BEFORE_YIELD {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// Access to a [`SpinLock`]'s value; unlocks when dropped.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock,
        // and `&mut self` makes this the only reference through it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: everything written under the lock is visible to the next
        // holder, whose acquire compare-exchange reads this store.
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;

    #[test]
    fn excludes_other_threads() {
        static COUNTER: SpinLock<u64> = SpinLock::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100_000 {
                        *COUNTER.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*COUNTER.lock(), 400_000);
    }

    #[test]
    fn a_guard_unlocks_when_dropped() {
        let lock = SpinLock::new(vec![1]);
        lock.lock().push(2);
        assert_eq!(*lock.lock(), [1, 2]);
    }
}
