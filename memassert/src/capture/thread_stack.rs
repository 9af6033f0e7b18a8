//! This thread's stack bounds, for the stack walkers to check every load
//! against.

use std::cell::Cell;

thread_local! {
    // (low, high) bounds of this thread's stack; (0, 0) until first use.
    // const-initialised and drop-free: usable during thread teardown.
    static BOUNDS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// This thread's stack, as `[low, high)`, or `(0, 0)` if unknown. Called
/// with the reentrancy guard held: `pthread_getattr_np` may allocate (for
/// the main thread it reads `/proc/self/maps`).
pub(crate) fn bounds() -> (usize, usize) {
    let cached = BOUNDS.try_with(Cell::get).unwrap_or((0, 0));
    if cached.1 != 0 {
        return cached;
    }
    let bounds = query();
    let _ = BOUNDS.try_with(|b| b.set(bounds));
    bounds
}

/// The stack of the calling thread, from the thread library (Linux: glibc
/// and musl).
#[cfg(target_os = "linux")]
fn query() -> (usize, usize) {
    let mut bounds = (0, 0);
    // SAFETY: plain libc calls on a zeroed attribute object that we
    // initialise, read and destroy here; no pointers escape.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr: *mut libc::c_void = std::ptr::null_mut();
            let mut size: libc::size_t = 0;
            if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 {
                bounds = (addr as usize, addr as usize + size);
            }
            libc::pthread_attr_destroy(&mut attr);
        }
    }
    bounds
}

/// The stack of the calling thread (macOS: the stack's top and size).
#[cfg(target_os = "macos")]
fn query() -> (usize, usize) {
    // SAFETY: both calls only read the calling thread's own descriptor.
    let (top, size) = unsafe {
        let me = libc::pthread_self();
        (
            libc::pthread_get_stackaddr_np(me) as usize,
            libc::pthread_get_stacksize_np(me),
        )
    };
    match top.checked_sub(size) {
        Some(low) if size != 0 => (low, top),
        _ => (0, 0),
    }
}
