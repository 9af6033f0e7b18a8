//! [`Tracker`]: the global allocator wrapper, and the allocator hot path.
//!
//! The hot path is one relaxed load: while nothing is tracing and no scope is
//! open, every call goes straight to the inner allocator. Everything else
//! lives in [`crate::alloc::recording`], out of line. (The very first
//! allocation takes the slow path once, to read `MEMASSERT_TRACEMALLOC`.)

use std::alloc::{GlobalAlloc, Layout, System};

use crate::alloc::recording;

/// A global allocator that records live allocations with the stack that made
/// them, wrapping any inner allocator.
///
/// Install it once per binary (test binaries included):
///
/// ```
/// #[global_allocator]
/// static GLOBAL: memassert::Tracker = memassert::Tracker::system();
/// # fn main() {}
/// ```
///
/// or, equivalently, `memassert::install!();`. To track another allocator,
/// wrap it: `memassert::Tracker::new(MyAlloc)`.
///
/// Until [`start`](crate::start) is called or a [`Scope`](crate::Scope) is
/// open, the tracker only forwards to the inner allocator.
#[derive(Debug, Default)]
pub struct Tracker<A = System> {
    inner: A,
}

impl Tracker<System> {
    /// A tracker over the system allocator.
    ///
    /// ```
    /// #[global_allocator]
    /// static GLOBAL: memassert::Tracker = memassert::Tracker::system();
    /// # fn main() {}
    /// ```
    pub const fn system() -> Self {
        Tracker { inner: System }
    }
}

impl<A> Tracker<A> {
    /// A tracker over `inner`, which does the actual allocating.
    ///
    /// ```
    /// use std::alloc::System;
    /// #[global_allocator]
    /// static GLOBAL: memassert::Tracker<System> = memassert::Tracker::new(System);
    /// # fn main() {}
    /// ```
    pub const fn new(inner: A) -> Self {
        Tracker { inner }
    }

    /// The wrapped allocator (to read its own statistics, for instance).
    ///
    /// ```
    /// let tracker = memassert::Tracker::system();
    /// let _system: &std::alloc::System = tracker.inner();
    /// ```
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards the caller's request unchanged to the inner
// allocator, which upholds the `GlobalAlloc` contract; the recording calls
// only read the pointer value and never touch the block's memory, never
// panic and never unwind.
//
// Each method tests the hooks *before* calling the inner allocator and
// leaves the recording work to an out-of-line method: with the hooks off,
// all that is left is a load, a branch and a tail call into the inner
// allocator (no stack frame, no register saved, no work after its return).
// Testing first changes nothing observable: a thread's own scope opening is
// sequenced before its allocations, and another thread's opening is not
// ordered with them either way.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Tracker<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if recording::hooks_on() {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.alloc_recorded(layout, false) };
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { self.inner.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if recording::hooks_on() {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.alloc_recorded(layout, true) };
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if recording::hooks_on() {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.dealloc_recorded(ptr, layout) };
        }
        // SAFETY: `ptr` was allocated by us, i.e. by `inner`, with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if recording::hooks_on() {
            // SAFETY: the caller's contract, passed on.
            return unsafe { self.realloc_recorded(ptr, layout, new_size) };
        }
        // SAFETY: forwarded unchanged.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

/// The recording side of each method, out of line (see above). Each has the
/// contract of the `GlobalAlloc` method it stands for.
impl<A: GlobalAlloc> Tracker<A> {
    #[cold]
    #[inline(never)]
    unsafe fn alloc_recorded(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let ptr = unsafe {
            if zeroed {
                self.inner.alloc_zeroed(layout)
            } else {
                self.inner.alloc(layout)
            }
        };
        if !ptr.is_null() {
            recording::on_alloc(ptr, layout.size());
        }
        ptr
    }

    #[cold]
    #[inline(never)]
    unsafe fn dealloc_recorded(&self, ptr: *mut u8, layout: Layout) {
        // Forget the block *before* it is freed: once the inner allocator has
        // it back, another thread may be handed the same address and record
        // it, and removing after that would drop the other thread's record.
        recording::on_free(ptr);
        // SAFETY: `ptr` was allocated by us, i.e. by `inner`, with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[cold]
    #[inline(never)]
    unsafe fn realloc_recorded(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Same ordering as `dealloc`: the old record goes first, since a
        // moving realloc frees the old address before it returns. Its scope
        // stays pinned until the new record is stored.
        let moving = recording::realloc_start(ptr);
        // SAFETY: forwarded unchanged.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if new.is_null() {
            // The old block is still live and unchanged: put its record back.
            recording::realloc_failed(moving, ptr);
        } else {
            recording::realloc_done(moving, new, new_size, layout.size());
        }
        new
    }
}

/// Installs [`Tracker`] over the system allocator as this binary's global
/// allocator.
///
/// ```
/// memassert::install!();
/// # fn main() {}
/// ```
///
/// expands to
///
/// ```
/// #[global_allocator]
/// static GLOBAL: memassert::Tracker = memassert::Tracker::system();
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! install {
    () => {
        #[global_allocator]
        static MEMASSERT_GLOBAL_ALLOCATOR: $crate::Tracker = $crate::Tracker::system();
    };
}
