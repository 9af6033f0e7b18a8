//! A thread's last DWARF walk, kept so that the next capture can skip the
//! outer frames the two stacks share.
//!
//! An allocation loop allocates from the same stack again and again, and
//! even different sites share their outer frames (the test function, the
//! harness, `main`). Unwinding is a deterministic function of the
//! unwinder's state entering a frame (its address, whether it is the first
//! frame, rsp and rbp), the unwind rules for the addresses met (fixed while
//! the code is loaded, and code on the stack stays loaded) and the stack
//! words the rules read. So if the walk under way reaches a frame whose
//! state equals that of frame `j` of the last walk, and every stack word the
//! last walk read from frame `j` outward still holds the value it read,
//! then unwinding on would give exactly the frames the last walk gave from
//! `j`: they are copied instead of unwound.
//!
//! The check reads each remembered word again (one or two a frame, where
//! unwinding a frame takes a rule lookup and its execution), and applies the
//! same bounds as the walk's own reads: a word the walk could not read now
//! is a mismatch. Any mismatch and the walk just goes on unwinding.
//!
//! [`Memo`] is per thread (stack addresses mean nothing on another thread)
//! and fixed in size: a walk longer than [`MEMO_FRAMES`] or with more than
//! [`MEMO_READS`] reads is not remembered.

use std::ptr;

/// Most frames remembered of one walk.
pub(crate) const MEMO_FRAMES: usize = 256;
/// Most stack reads remembered of one walk.
pub(crate) const MEMO_READS: usize = 768;

/// The unwinder's state entering one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct State {
    /// The frame's address (the instruction pointer for the first frame, a
    /// return address for the others).
    pub(crate) address: u64,
    /// Whether this is the walk's first frame (framehop unwinds it by
    /// slightly different rules).
    pub(crate) first: bool,
    pub(crate) sp: u64,
    pub(crate) bp: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Frame {
    state: State,
    /// End of this frame's reads in `reads` (they start where the previous
    /// frame's end).
    reads_end: u32,
}

/// One stack read of a walk: the address, and the word read there (`None`:
/// the walk's bounds refused the address).
type Read = (u64, Option<u64>);

/// One walk, as remembered.
pub(crate) struct Memo {
    frames: Vec<Frame>,
    /// What the walk pushed for each frame (its address less one), side by
    /// side so that a walk taking them over copies a slice.
    ips: Vec<usize>,
    reads: Vec<Read>,
    /// The walk went to the end of the stack (else it stopped after its last
    /// frame, not unwound, because the capture was deep enough).
    complete: bool,
    /// The record is usable (it fits, and the walk succeeded).
    valid: bool,
}

impl Memo {
    pub(crate) fn new() -> Memo {
        Memo {
            frames: Vec::with_capacity(MEMO_FRAMES),
            ips: Vec::with_capacity(MEMO_FRAMES),
            reads: Vec::with_capacity(MEMO_READS),
            complete: false,
            valid: false,
        }
    }

    /// Starts recording a new walk.
    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.ips.clear();
        self.reads.clear();
        self.complete = false;
        self.valid = true;
    }

    /// True when no frame has been recorded since [`clear`](Self::clear).
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Records that the walk enters a frame in `state`.
    #[inline]
    pub(crate) fn enter(&mut self, state: State) {
        if self.frames.len() == MEMO_FRAMES {
            self.valid = false;
        }
        if self.valid {
            let reads_end = self.reads.len() as u32;
            self.frames.push(Frame { state, reads_end });
            self.ips.push((state.address as usize).wrapping_sub(1));
        }
    }

    /// Records a stack read of the frame being unwound.
    #[inline]
    pub(crate) fn read(&mut self, address: u64, value: Option<u64>) {
        if self.reads.len() == MEMO_READS {
            self.valid = false;
        }
        if self.valid {
            self.reads.push((address, value));
            if let Some(last) = self.frames.last_mut() {
                last.reads_end = self.reads.len() as u32;
            }
        }
    }

    /// Records how the walk ended: at the end of the stack, or cut short.
    pub(crate) fn end(&mut self, complete: bool) {
        self.complete = complete;
    }

    /// A cursor for the walk under way to find its frames in this record.
    pub(crate) fn cursor(&self) -> usize {
        0
    }

    /// The remembered frame whose state is `state`, if any (cheap: the
    /// words it read are checked by [`unchanged_from`](Self::unchanged_from)).
    /// `cursor` moves outward with the walk (frames are in stack order).
    #[inline]
    pub(crate) fn matching(&self, cursor: &mut usize, state: State) -> Option<usize> {
        if !self.valid {
            return None;
        }
        let frames = &self.frames;
        while *cursor < frames.len() && frames[*cursor].state.sp < state.sp {
            *cursor += 1;
        }
        let j = *cursor;
        (frames.get(j)?.state == state).then_some(j)
    }

    /// True when every word the remembered walk read from frame `j`
    /// outward still reads the same. `read` applies the walk's bounds:
    /// `None` where it would refuse.
    pub(crate) fn unchanged_from(&self, j: usize, read: impl Fn(u64) -> Option<u64>) -> bool {
        let start = if j == 0 {
            0
        } else {
            self.frames[j - 1].reads_end as usize
        };
        self.reads[start..]
            .iter()
            .all(|&(address, value)| read(address) == value)
    }

    /// [`matching`](Self::matching) and
    /// [`unchanged_from`](Self::unchanged_from) together.
    #[cfg(test)]
    fn join(
        &self,
        cursor: &mut usize,
        state: State,
        read: impl Fn(u64) -> Option<u64>,
    ) -> Option<usize> {
        let j = self.matching(cursor, state)?;
        self.unchanged_from(j, read).then_some(j)
    }

    /// What the walk pushed for the frames from `j` outward.
    pub(crate) fn ips_from(&self, j: usize) -> &[usize] {
        &self.ips[j..]
    }

    /// Whether the remembered walk reached the end of the stack.
    pub(crate) fn complete(&self) -> bool {
        self.complete
    }

    /// Appends `other`'s frames from `j` outward, with their reads, and
    /// takes its ending: the walk under way took them over.
    pub(crate) fn append_from(&mut self, other: &Memo, j: usize) {
        if !self.valid || !other.valid {
            self.valid = false;
            return;
        }
        let start = if j == 0 {
            0
        } else {
            other.frames[j - 1].reads_end as usize
        };
        let frames = other.frames.len() - j;
        let reads = other.reads.len() - start;
        if self.frames.len() + frames > MEMO_FRAMES || self.reads.len() + reads > MEMO_READS {
            self.valid = false;
            return;
        }
        // Read offsets shift by the difference between where the reads
        // started there and where they start here.
        let base = self.reads.len() as i64 - start as i64;
        self.reads.extend_from_slice(&other.reads[start..]);
        self.ips.extend_from_slice(&other.ips[j..]);
        self.frames.extend(other.frames[j..].iter().map(|f| Frame {
            state: f.state,
            reads_end: (f.reads_end as i64 + base) as u32,
        }));
        self.complete = other.complete;
    }
}

/// Reads the stack word at `address` if the walk may: 8-byte aligned, at
/// or above `low` (the capture's own stack pointer) and wholly below `high`
/// (the top of the thread's stack).
#[inline]
pub(crate) fn read_word(address: u64, low: usize, high: usize) -> Option<u64> {
    let address = usize::try_from(address).ok()?;
    if address < low || address % 8 != 0 || address > high.wrapping_sub(8) {
        return None;
    }
    // SAFETY: `address` is 8-byte aligned and `[address, address + 8)`
    // lies between this thread's current stack pointer and the top of its
    // stack, which is mapped and readable while the thread runs.
    Some(unsafe { ptr::read(address as *const u64) })
}

#[cfg(test)]
mod tests {
    use super::{Memo, State};

    fn state(address: u64, sp: u64) -> State {
        State {
            address,
            first: address == 1,
            sp,
            bp: 7,
        }
    }

    /// A walk of three frames at sp 100, 200, 300; each read one word.
    fn walk() -> Memo {
        let mut m = Memo::new();
        m.clear();
        for (i, sp) in [100, 200, 300].into_iter().enumerate() {
            m.enter(state(i as u64 + 1, sp));
            m.read(sp + 8, Some(sp * 10));
        }
        m.end(true);
        m
    }

    fn memory(addr: u64) -> Option<u64> {
        Some((addr - 8) * 10)
    }

    #[test]
    fn joins_where_state_and_words_agree() {
        let m = walk();
        let mut cursor = m.cursor();
        assert_eq!(m.join(&mut cursor, state(2, 200), memory), Some(1));
        assert_eq!(m.ips_from(1), [1, 2]);
    }

    #[test]
    fn a_changed_word_or_register_refuses() {
        let m = walk();
        let mut cursor = m.cursor();
        // A word outward of the join changed.
        let changed = |a: u64| if a == 308 { Some(0) } else { memory(a) };
        assert_eq!(m.join(&mut cursor, state(2, 200), changed), None);
        // A different bp.
        let mut other = state(2, 200);
        other.bp = 8;
        let mut cursor = m.cursor();
        assert_eq!(m.join(&mut cursor, other, memory), None);
        // A word now out of bounds.
        let mut cursor = m.cursor();
        let refused = |a: u64| if a == 208 { None } else { memory(a) };
        assert_eq!(m.join(&mut cursor, state(2, 200), refused), None);
        // A word inward of the join does not matter.
        let mut cursor = m.cursor();
        let inner = |a: u64| if a == 108 { Some(0) } else { memory(a) };
        assert_eq!(m.join(&mut cursor, state(2, 200), inner), Some(1));
    }

    #[test]
    fn appending_keeps_each_frames_reads() {
        let old = walk();
        let mut new = Memo::new();
        new.clear();
        new.enter(state(9, 50));
        new.read(58, Some(1));
        new.read(66, Some(2));
        new.append_from(&old, 1);
        assert!(new.complete());
        let mut cursor = new.cursor();
        // Joining at the appended frame checks only its own reads outward.
        assert_eq!(new.join(&mut cursor, state(3, 300), memory), Some(2));
        let mut cursor = new.cursor();
        let wrong = |a: u64| if a == 208 { Some(0) } else { memory(a) };
        assert_eq!(new.join(&mut cursor, state(2, 200), wrong), None);
        assert_eq!(new.join(&mut cursor, state(3, 300), wrong), Some(2));
    }

    #[test]
    fn an_overflowing_walk_is_not_remembered() {
        let mut m = Memo::new();
        m.clear();
        for i in 0..=super::MEMO_FRAMES as u64 {
            m.enter(state(i + 2, i * 16));
        }
        let mut cursor = m.cursor();
        assert_eq!(m.join(&mut cursor, state(2, 0), memory), None);
    }
}
