//! Frame-pointer walking, used where the target keeps frame pointers
//! (aarch64 Linux, macOS) or the crate is built with
//! `-C force-frame-pointers=yes` (see `build.rs`): each frame's saved frame
//! pointer and return address sit at `[fp]` and `[fp + 8]`, so a stack of 40
//! frames is 80 loads instead of 40 DWARF unwind steps.
//!
//! Every load is checked first: the address must lie inside this thread's
//! stack, be aligned, and frames must move strictly towards the stack's
//! base. A chain broken by code without frame pointers ends the walk early
//! (a shorter stack), never a read outside the stack.

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
    let (low, high) = crate::capture::thread_stack::bounds();
    let mut fp = frame_pointer();
    let mut sink = crate::capture::sink::Sink::new(buf, depth);
    loop {
        if fp < low
            || !fp.is_multiple_of(std::mem::align_of::<usize>())
            || fp.saturating_add(16) > high
        {
            break;
        }
        // SAFETY: `fp` and `fp + 8` lie inside this thread's stack (checked
        // above), which is mapped and readable for the thread's lifetime.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        let more = sink.push(ret.wrapping_sub(1));
        // Frames grow towards `high`; anything else is not a frame chain.
        if !more || next <= fp {
            break;
        }
        fp = next;
    }
    sink.finish()
}
