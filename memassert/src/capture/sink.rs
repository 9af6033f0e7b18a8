//! The raw-stack buffer every stack walker fills: [`Sink`], the most
//! frames one capture keeps, and the marker for frames elided from the
//! middle of a deeper stack.

use std::mem::MaybeUninit;

/// Most frames captured for one allocation.
pub(crate) const MAX_RAW_FRAMES: usize = 256;

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
    /// The latest frames beyond `depth` (a full-depth capture only). Left
    /// uninitialised: a capture that keeps no tail never touches it, and
    /// zeroing it would cost every capture a 512-byte memset.
    ring: [MaybeUninit<usize>; TAIL],
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
            ring: [const { MaybeUninit::uninit() }; TAIL],
        }
    }

    /// Adds the next (outer) frame; false when the walk should stop.
    #[inline(always)]
    pub(crate) fn push(&mut self, ip: usize) -> bool {
        let at = self.walked;
        if at < self.depth {
            self.buf[at] = ip;
        } else if self.keep_tail {
            self.ring[at % TAIL] = MaybeUninit::new(ip);
        } else {
            return false;
        }
        self.walked += 1;
        self.walked < self.depth || (self.keep_tail && self.walked < MAX_WALK)
    }

    /// Adds the next frames, in order; false when the walk should stop.
    #[cfg(any(memassert_cached_dwarf, test))]
    #[inline]
    pub(crate) fn push_all(&mut self, ips: &[usize]) -> bool {
        let at = self.walked;
        if at + ips.len() < self.depth {
            // All of them fit, and the walk may go on.
            self.buf[at..at + ips.len()].copy_from_slice(ips);
            self.walked += ips.len();
            return true;
        }
        ips.iter().all(|&ip| self.push(ip))
    }

    /// True when pushing `n` more frames would end the walk (the capture is
    /// that close to its depth, and keeps no tail).
    #[cfg(memassert_cached_dwarf)]
    #[inline]
    pub(crate) fn stops_within(&self, n: usize) -> bool {
        !self.keep_tail && self.walked + n >= self.depth
    }

    /// The number of addresses in the buffer. Takes `&mut self` rather
    /// than `self`, so that the sink is not copied to be consumed.
    #[inline]
    pub(crate) fn finish(&mut self) -> usize {
        let (depth, walked) = (self.depth, self.walked);
        if walked <= depth {
            return walked;
        }
        if !self.keep_tail {
            return depth;
        }
        self.finish_tail()
    }

    /// [`finish`](Self::finish) for a full-depth capture that overflowed.
    #[cold]
    fn finish_tail(&mut self) -> usize {
        let Sink {
            buf,
            depth,
            walked,
            ring,
            ..
        } = self;
        let (depth, walked) = (*depth, *walked);
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
                // SAFETY: frames from `depth` up to `walked` were all pushed
                // into the ring, and this one is among the last `TAIL - 1`
                // of them, so its slot has not been overwritten since.
                unsafe { ring[frame % TAIL].assume_init() }
            };
        }
        buf[head] = ELIDED;
        buf[head + 1..depth].copy_from_slice(&last[..tail]);
        depth
    }
}

#[cfg(test)]
mod tests {
    use super::{Sink, MAX_RAW_FRAMES};

    /// `push_all` leaves the buffer, the count and the verdict exactly as
    /// pushing one by one does, below, at and past the depth, with and
    /// without a kept tail.
    #[test]
    fn push_all_is_push_one_by_one() {
        for depth in [3, 8, 40, MAX_RAW_FRAMES] {
            for (head, more) in [(0, 2), (2, 5), (5, 3), (1, 300), (0, 0)] {
                let frames: Vec<usize> = (1..=head + more).collect();
                let (mut a, mut b) = ([0; MAX_RAW_FRAMES], [0; MAX_RAW_FRAMES]);
                let mut one = Sink::new(&mut a, depth);
                let mut all = Sink::new(&mut b, depth);
                let mut go_one = true;
                let mut go_all = true;
                for &ip in &frames[..head] {
                    go_one = go_one && one.push(ip);
                    go_all = go_all && all.push(ip);
                }
                for &ip in &frames[head..] {
                    if go_one {
                        go_one = one.push(ip);
                    }
                }
                if go_all {
                    go_all = all.push_all(&frames[head..]);
                }
                assert_eq!(go_one, go_all, "depth {depth}, {head} + {more}");
                let (n, m) = (one.finish(), all.finish());
                assert_eq!(n, m, "depth {depth}, {head} + {more}");
                assert_eq!(a[..n], b[..m], "depth {depth}, {head} + {more}");
            }
        }
    }
}
