//! Frame-pointer walking, used when the crate is built with
//! `-C force-frame-pointers=yes` (see `build.rs`): each frame's saved frame
//! pointer and return address sit at `[fp]` and `[fp + 8]`, so a stack of 40
//! frames is 80 loads instead of 40 DWARF unwind steps.
//!
//! Every load is checked first: the address must lie inside this thread's
//! stack, be aligned, and frames must move strictly towards the stack's
//! base. A chain broken by code without frame pointers ends the walk early
//! (a shorter stack), never a read outside the stack.

use std::cell::Cell;

thread_local! {
    // (low, high) bounds of this thread's stack; (0, 0) until first use.
    // const-initialised and drop-free: usable during thread teardown.
    static BOUNDS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// This thread's stack, as `[low, high)`. Called with the reentrancy guard
/// held: `pthread_getattr_np` may allocate (for the main thread it reads
/// `/proc/self/maps`).
fn stack_bounds() -> (usize, usize) {
    let cached = BOUNDS.try_with(Cell::get).unwrap_or((0, 0));
    if cached.1 != 0 {
        return cached;
    }
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
    let _ = BOUNDS.try_with(|b| b.set(bounds));
    bounds
}

#[inline(always)]
fn frame_pointer() -> usize {
    let fp: usize;
    // SAFETY: reads the frame-pointer register; no memory is touched.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    // SAFETY: as above, for aarch64's frame register.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    fp
}

/// Fills `buf[..depth]` with return addresses (each moved back one byte
/// into its call instruction), innermost first; returns how many.
#[inline(always)]
pub(crate) fn walk(buf: &mut [usize], depth: usize) -> usize {
    let (low, high) = stack_bounds();
    let mut fp = frame_pointer();
    let mut n = 0;
    let depth = depth.min(buf.len());
    while n < depth {
        if fp < low || fp % std::mem::align_of::<usize>() != 0 || fp.saturating_add(16) > high {
            break;
        }
        // SAFETY: `fp` and `fp + 8` lie inside this thread's stack (checked
        // above), which is mapped and readable for the thread's lifetime.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        buf[n] = ret - 1;
        n += 1;
        // Frames grow towards `high`; anything else is not a frame chain.
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}
