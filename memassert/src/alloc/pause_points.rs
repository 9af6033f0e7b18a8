//! Test-only pause points in the scope protocol (feature
//! `test-pause-points`, enabled by memassert's own test suite only): a
//! thread can be stopped at an exact point inside the allocator, so that a
//! test puts another thread in the window that point opens and shows the
//! protocol charges the right scopes whatever the interleaving.
//!
//! Without the feature, [`point`] is an empty inline function.

/// A place in the protocol where a thread can be stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Point {
    /// `dealloc`: the block's record just removed, its scope not yet told.
    FreeRemoved = 1,
    /// `alloc`: the scope just charged, the record not yet stored.
    AllocCharged = 2,
    /// `realloc`: the old record taken, the inner `realloc` not yet called.
    ReallocTaken = 3,
}

#[cfg(feature = "test-pause-points")]
mod imp {
    use super::Point;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    use std::time::{Duration, Instant};

    thread_local! {
        static ARMED: Cell<u32> = const { Cell::new(0) };
    }
    /// Bit per point: a thread is stopped there.
    static STOPPED: AtomicU32 = AtomicU32::new(0);
    /// Bit per point: the stopped thread may go on.
    static RELEASED: AtomicU32 = AtomicU32::new(0);

    fn bit(p: Point) -> u32 {
        1 << (p as u32)
    }

    /// The next time *this* thread reaches `p`, it stops there until
    /// [`release`]d.
    pub fn arm(p: Point) {
        ARMED.with(|a| a.set(p as u32));
    }

    /// Waits (up to 10 s) until a thread is stopped at `p`.
    ///
    /// # Panics
    ///
    /// If none gets there in time.
    pub fn wait_stopped(p: Point) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while STOPPED.load(SeqCst) & bit(p) == 0 {
            assert!(Instant::now() < deadline, "no thread reached {p:?}");
            std::thread::yield_now();
        }
    }

    /// Lets the thread stopped at `p` go on.
    pub fn release(p: Point) {
        RELEASED.fetch_or(bit(p), SeqCst);
    }

    #[inline]
    pub(crate) fn point(p: Point) {
        let armed = ARMED.try_with(|a| a.get() == p as u32).unwrap_or(false);
        if !armed {
            return;
        }
        let _ = ARMED.try_with(|a| a.set(0));
        STOPPED.fetch_or(bit(p), SeqCst);
        while RELEASED.load(SeqCst) & bit(p) == 0 {
            std::thread::yield_now();
        }
        RELEASED.fetch_and(!bit(p), SeqCst);
        STOPPED.fetch_and(!bit(p), SeqCst);
    }
}

#[cfg(feature = "test-pause-points")]
pub use imp::{arm, release, wait_stopped};

/// Stops here if this thread was armed for `p` (test builds only).
#[inline(always)]
pub(crate) fn point(_p: Point) {
    #[cfg(feature = "test-pause-points")]
    imp::point(_p);
}
