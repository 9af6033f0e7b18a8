//! Tracing's settings (the traceback limit) and `MEMASSERT_TRACEMALLOC`,
//! the start-up switch that mirrors `PYTHONTRACEMALLOC`.
//!
//! `MEMASSERT_TRACEMALLOC=25` starts tracing with 25 frames a traceback at
//! the first allocation that reaches the tracker, so any program or test
//! binary with the tracker installed can be profiled without code changes.
//! The variable is read there, inside the allocator, exactly once: the
//! hot path's hook word starts with `recording`'s `ENV_PENDING` bit set, the first
//! allocation clears it and reads the variable with `libc::getenv` (std's
//! `env::var` allocates and takes std's environment lock, either of which
//! could recurse or deadlock inside the allocator), and from then on the
//! hot path is the single relaxed load it always is when nothing is on.
//!
//! As `PYTHONTRACEMALLOC`: unset, empty or `0` leaves tracing off; `1` to
//! [`MAX_FRAMES`] starts it; anything else is a fatal error (the message
//! goes to stderr and the process aborts, as Python refuses to start). On
//! targets other than Unix the variable is not read (no allocation-free
//! way to read it is used there); call [`start`](crate::start) instead.

// Elsewhere the variable is not read: its parser and name stay for tests.
#![cfg_attr(not(unix), allow(dead_code))]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::capture::sink::MAX_RAW_FRAMES;
use crate::capture::stack_capture;

/// Most frames a traceback may keep.
pub const MAX_FRAMES: usize = MAX_RAW_FRAMES - stack_capture::INTERNAL_FRAME_BUDGET;

/// Frames kept per traceback ([`traceback_limit`](crate::traceback_limit)).
static LIMIT: AtomicUsize = AtomicUsize::new(1);

/// The name of the start-up switch.
pub(crate) const ENV_VAR: &str = "MEMASSERT_TRACEMALLOC";

/// The traceback limit.
pub(crate) fn limit() -> usize {
    LIMIT.load(Relaxed)
}

/// Sets the traceback limit to `frames` (checked by the caller) and makes
/// captures deep enough for it. Atomics only: safe from inside the
/// allocator.
pub(crate) fn set_limit(frames: usize) {
    LIMIT.store(frames, Relaxed);
    stack_capture::ensure_depth(frames);
}

/// What `MEMASSERT_TRACEMALLOC`'s value asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvRequest {
    /// Unset, empty or `0`: tracing stays off.
    Off,
    /// Start tracing with this many frames.
    Start(usize),
    /// Not a number of frames from 0 to [`MAX_FRAMES`].
    Invalid,
}

/// Parses the variable's bytes without allocating, as CPython parses
/// `PYTHONTRACEMALLOC` (`strtol` over the whole value): leading white
/// space, an optional `+`, then decimal digits and nothing else.
pub(crate) fn parse(value: &[u8]) -> EnvRequest {
    if value.is_empty() {
        return EnvRequest::Off;
    }
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .unwrap_or(value.len());
    let digits = value[start..].strip_prefix(b"+").unwrap_or(&value[start..]);
    if digits.is_empty() {
        return EnvRequest::Invalid;
    }
    let mut n: usize = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return EnvRequest::Invalid;
        }
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add((b - b'0') as usize))
        {
            Some(n) => n,
            None => return EnvRequest::Invalid,
        };
    }
    match n {
        0 => EnvRequest::Off,
        n if n <= MAX_FRAMES => EnvRequest::Start(n),
        _ => EnvRequest::Invalid,
    }
}

/// Reads `MEMASSERT_TRACEMALLOC`: called once, by the first allocation
/// that reaches the tracker (with the reentrancy guard held), which starts
/// tracing on [`EnvRequest::Start`]. Allocates nothing; an invalid value
/// aborts here.
#[cfg(unix)]
pub(crate) fn read_env() -> EnvRequest {
    // SAFETY: a NUL-terminated name; the pointer returned is read at once,
    // before anything else can change the environment on this thread.
    // (std's `set_var` on another thread at this very moment would race, as
    // it races any C code reading the environment; the first allocation of
    // a process comes before any such thread.)
    let value = unsafe {
        let ptr = libc::getenv(c"MEMASSERT_TRACEMALLOC".as_ptr());
        if ptr.is_null() {
            return EnvRequest::Off;
        }
        std::ffi::CStr::from_ptr(ptr).to_bytes()
    };
    match parse(value) {
        EnvRequest::Invalid => invalid(value),
        request => request,
    }
}

/// Not read off Unix (see the module docs).
#[cfg(not(unix))]
pub(crate) fn read_env() -> EnvRequest {
    EnvRequest::Off
}

/// `PYTHONTRACEMALLOC: invalid number of frames`, and abort: written with
/// `write(2)`, no allocation.
#[cfg(unix)]
fn invalid(value: &[u8]) -> ! {
    let mut max = [0u8; 20];
    let mut at = max.len();
    let mut n = MAX_FRAMES;
    loop {
        at -= 1;
        max[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let parts: [&[u8]; 5] = [
        b"memassert: ",
        ENV_VAR.as_bytes(),
        b"=",
        value,
        b": invalid number of frames; expected 0 (off) or 1 to ",
    ];
    let write = |bytes: &[u8]| {
        // SAFETY: writes `bytes` to stderr; a short or failed write only
        // loses part of the message.
        unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    };
    for part in parts {
        write(part);
    }
    write(&max[at..]);
    write(b"\n");
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_pythontracemalloc() {
        assert_eq!(parse(b""), EnvRequest::Off);
        assert_eq!(parse(b"0"), EnvRequest::Off);
        assert_eq!(parse(b"00"), EnvRequest::Off);
        assert_eq!(parse(b"1"), EnvRequest::Start(1));
        assert_eq!(parse(b"25"), EnvRequest::Start(25));
        assert_eq!(parse(b"025"), EnvRequest::Start(25));
        let max = MAX_FRAMES.to_string();
        assert_eq!(parse(max.as_bytes()), EnvRequest::Start(MAX_FRAMES));
        let over = (MAX_FRAMES + 1).to_string();
        assert_eq!(parse(over.as_bytes()), EnvRequest::Invalid);
        // As CPython 3.11 (strtol): leading blanks and `+` are fine.
        assert_eq!(parse(b"+1"), EnvRequest::Start(1));
        assert_eq!(parse(b" 1"), EnvRequest::Start(1));
        assert_eq!(parse(b"-1"), EnvRequest::Invalid);
        assert_eq!(parse(b"1 "), EnvRequest::Invalid);
        assert_eq!(parse(b"1x"), EnvRequest::Invalid);
        assert_eq!(parse(b"+"), EnvRequest::Invalid);
        assert_eq!(parse(b" "), EnvRequest::Invalid);
        assert_eq!(parse(b"99999999999999999999999"), EnvRequest::Invalid);
    }
}
