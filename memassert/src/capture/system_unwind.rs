//! Stack capture with the system unwinder (`_Unwind_Backtrace`): the
//! capture when frame pointers are off, and the fallback of the cached DWARF
//! unwinder.

use crate::capture::sink::{Sink, MAX_RAW_FRAMES};

/// [`capture`](crate::capture::stack_capture::capture) with the system unwinder (`_Unwind_Backtrace`): at most
/// `depth` frames.
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
