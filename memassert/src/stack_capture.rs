//! Raw stack capture: return addresses only, no symbols.
//!
//! Walks the stack with the platform unwinder (DWARF CFI through
//! `_Unwind_Backtrace` on Linux), which needs no compiler flag; when built
//! with `-C force-frame-pointers=yes`, walks the frame-pointer chain instead
//! (`frame_walk`), which is an order of magnitude cheaper. The capture
//! depth is the requested traceback length plus a budget for the frames
//! between the allocation and the user's code (the tracker's own, `alloc`'s,
//! `RawVec`'s...), which are dropped later, at symbolization time.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Most frames captured for one allocation.
pub(crate) const MAX_RAW_FRAMES: usize = 256;

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

/// Stands for the frames left out of the middle of a stack deeper than the
/// capture (see [`Sink`]). Never a real return address.
pub(crate) const ELIDED: usize = usize::MAX;

/// Outermost frames kept of a stack deeper than a full-depth capture.
const TAIL: usize = 64;

/// Most frames walked for one capture (a runaway recursion stops here).
const MAX_WALK: usize = 8192;

/// Where a stack walker puts return addresses, innermost first.
///
/// A capture at full depth ([`MAX_RAW_FRAMES`]) keeps a stack's innermost
/// frames *and* its outermost [`TAIL`] ones (the thread's entry, the test
/// function, the task or closure a pool runs), with [`ELIDED`] between them
/// when the middle did not fit: a deep recursion inside a dependency still
/// shows which user code started it. Shallower captures stop at their depth.
pub(crate) struct Sink<'a> {
    buf: &'a mut [usize],
    depth: usize,
    /// Frames walked so far.
    walked: usize,
    ring: [usize; TAIL],
    keep_tail: bool,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(buf: &'a mut [usize], depth: usize) -> Sink<'a> {
        let depth = depth.min(buf.len());
        Sink {
            keep_tail: depth >= MAX_RAW_FRAMES,
            buf,
            depth,
            walked: 0,
            ring: [0; TAIL],
        }
    }

    /// Adds the next (outer) frame; false when the walk should stop.
    #[inline(always)]
    pub(crate) fn push(&mut self, ip: usize) -> bool {
        let at = self.walked;
        if at < self.depth {
            self.buf[at] = ip;
        } else if self.keep_tail {
            self.ring[at % TAIL] = ip;
        } else {
            return false;
        }
        self.walked += 1;
        self.walked < self.depth || (self.keep_tail && self.walked < MAX_WALK)
    }

    /// The number of addresses in the buffer.
    pub(crate) fn finish(self) -> usize {
        let Sink {
            buf,
            depth,
            walked,
            ring,
            keep_tail,
        } = self;
        if walked <= depth {
            return walked;
        }
        if !keep_tail {
            return depth;
        }
        // Innermost frames, the marker, then the outermost TAIL - 1 (some
        // of which may still sit in `buf`, after a short overflow).
        let tail = TAIL - 1;
        let head = depth - tail - 1;
        let mut last = [0usize; TAIL];
        for (j, slot) in last[..tail].iter_mut().enumerate() {
            let frame = walked - tail + j;
            *slot = if frame < depth {
                buf[frame]
            } else {
                ring[frame % TAIL]
            };
        }
        buf[head] = ELIDED;
        buf[head + 1..depth].copy_from_slice(&last[..tail]);
        depth
    }
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
    crate::frame_walk::walk(buf, DEPTH.load(Relaxed))
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
    if let Some(n) = crate::dwarf_unwind::capture(buf, depth) {
        return n;
    }
    capture_libgcc(buf, depth)
}

/// [`capture`] with the system unwinder (`_Unwind_Backtrace`): at most
/// `depth` frames.
#[cfg(not(memassert_frame_pointers))]
pub(crate) fn capture_libgcc(buf: &mut [usize; MAX_RAW_FRAMES], depth: usize) -> usize {
    let mut sink = Sink::new(buf, depth);
    // SAFETY: `trace_unsynchronized` is unsafe only because it takes no lock
    // against concurrent unwinder initialisation on some platforms; on the
    // platforms we support the system unwinder is thread-safe. The closure
    // does not allocate, panic, or unwind.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 {
                return false;
            }
            sink.push(ip - 1)
        });
    }
    sink.finish()
}
