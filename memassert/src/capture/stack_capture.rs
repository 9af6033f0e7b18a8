//! Raw stack capture: return addresses only, no symbols.
//!
//! The method is chosen per target by `build.rs`: the frame-pointer chain
//! (`frame_walk`) where the target keeps frame pointers (aarch64 Linux,
//! macOS) or the crate is built with `-C force-frame-pointers=yes`; cached
//! DWARF rules (`dwarf_unwind`) on x86_64 Linux glibc, falling back to the
//! system unwinder (`system_unwind`) for what they cannot vouch for; the
//! system unwinder alone elsewhere (musl, Windows). The capture
//! depth is the requested traceback length plus a budget for the frames
//! between the allocation and the user's code (the tracker's own, `alloc`'s,
//! `RawVec`'s...), which are dropped later, at symbolization time.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::capture::sink::MAX_RAW_FRAMES;

/// Frames to capture beyond the requested traceback length: room for the
/// tracker, the allocator API and std collections between the allocation and
/// the site (about 20 in unoptimised builds).
pub(crate) const INTERNAL_FRAME_BUDGET: usize = 28;

/// Frames captured per allocation right now.
static DEPTH: AtomicUsize = AtomicUsize::new(1 + INTERNAL_FRAME_BUDGET);

/// Makes captures deep enough for tracebacks of `frames` frames (never
/// shallower than a traceback someone else asked for).
pub(crate) fn ensure_depth(frames: usize) {
    let want = (frames + INTERNAL_FRAME_BUDGET).min(MAX_RAW_FRAMES);
    DEPTH.fetch_max(want, Relaxed);
}

/// Frames captured per allocation right now.
pub(crate) fn depth() -> usize {
    DEPTH.load(Relaxed).min(MAX_RAW_FRAMES)
}

/// Fills `buf` with the caller's return addresses, innermost first, and
/// returns how many were written.
///
/// Each address is moved back by one byte so that it points into the call
/// instruction rather than just after it: that is the line that made the
/// call, which is what symbolization must name.
#[cfg(memassert_frame_pointers)]
#[inline(always)]
pub(crate) fn capture(buf: &mut [usize; MAX_RAW_FRAMES]) -> usize {
    crate::capture::frame_walk::walk(buf, DEPTH.load(Relaxed))
}

/// Fills `buf` with the caller's return addresses, innermost first, and
/// returns how many were written (DWARF unwinding): with framehop's cached
/// rules where it can vouch for the result (`dwarf_unwind`), otherwise with
/// the system unwinder.
#[cfg(not(memassert_frame_pointers))]
#[inline(always)]
pub(crate) fn capture(buf: &mut [usize; MAX_RAW_FRAMES]) -> usize {
    let depth = DEPTH.load(Relaxed).min(MAX_RAW_FRAMES);
    #[cfg(memassert_cached_dwarf)]
    if let Some(n) = crate::capture::dwarf_unwind::capture(buf, depth) {
        return n;
    }
    crate::capture::system_unwind::capture_libgcc(buf, depth)
}
