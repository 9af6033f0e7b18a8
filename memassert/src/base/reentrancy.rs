//! The per-thread guard that keeps the tracker from tracking itself.
//!
//! Everything the tracker does on an allocation — unwinding, interning,
//! inserting into the live table, resolving symbols — may allocate in turn.
//! Those nested allocations reach [`Tracker`](crate::Tracker) again; while
//! the guard is held they go straight to the inner allocator, untracked, so
//! the tracker never recurses into itself and its own memory is never
//! reported as the user's.

use std::cell::Cell;

thread_local! {
    // `const` initialisation and a type without `Drop`: no lazy-init
    // allocation and no destructor registration, so this slot can be read
    // on every allocation, including while the thread is being torn down
    // (thread-local destructors allocate too).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Proof that this thread is inside the tracker. Dropping it leaves.
pub(crate) struct Guard {
    // Not Send: the flag belongs to the thread that set it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Guard {
    /// Enters the tracker on this thread, or returns `None` when this thread
    /// is already inside (the caller must then skip tracking).
    #[inline]
    pub(crate) fn enter() -> Option<Guard> {
        // `try_with` cannot fail for a const-initialised, drop-free slot, but
        // if it ever did we would rather skip tracking than panic inside the
        // allocator.
        let entered = INSIDE
            .try_with(|inside| !inside.replace(true))
            .unwrap_or(false);
        // Not `then_some`: that would build (and so drop, clearing the
        // flag) a guard even when this thread was already inside.
        if entered {
            Some(Guard {
                _not_send: std::marker::PhantomData,
            })
        } else {
            None
        }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|inside| inside.set(false));
    }
}
