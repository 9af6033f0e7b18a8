//! Symbolization: return addresses to frames, lazily and once per address.
//!
//! Nothing here runs on an allocation, except [`classify`], once per distinct
//! stack and only while a scope is open. Resolution happens outside our own
//! locks (the `backtrace` crate takes its own, reentrant one), so a thread
//! resolving here can never wait on a thread that waits on us.

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::paths;
use crate::reentrancy::Guard;
use crate::stack_table::{self, Class, StackId};
use crate::traceback::{Frame, Traceback};

/// One frame of a resolved address (an address yields several when calls
/// were inlined into it, innermost first).
#[derive(Clone, Debug)]
struct Resolved {
    frame: Frame,
    /// Not a site: the tracker, std, or code without a Rust path.
    internal: bool,
}

static CACHE: Mutex<Option<HashMap<usize, Arc<[Resolved]>>>> = Mutex::new(None);

/// Function-name prefixes of the standard library, the tracker and the test
/// harness: frames that are never a site.
const INTERNAL_PREFIXES: &[&str] = &[
    "std::",
    "<std::",
    "core::",
    "<core::",
    "alloc::",
    "<alloc::",
    "memassert::",
    "<memassert::",
    "backtrace::",
    "<backtrace::",
    "test::",
    "<test::",
    "__rustc::",
    "__rust_",
    "rust_begin_unwind",
];

/// Std frames which, found between an allocation and its site, mean std or
/// the harness allocated on the body's behalf: captured `println!` output,
/// stdout's buffer, panic payloads and backtraces, thread-local and thread
/// handle bookkeeping. Such allocations never count against a scope.
const EXCLUDED_PREFIXES: &[&str] = &[
    "std::io::stdio::",
    "<std::io::stdio::",
    "std::panicking::",
    "core::panicking::",
    "std::sys::thread_local::",
    "std::thread::current",
    "std::sys::backtrace::",
    "std::backtrace::",
];

fn is_internal(function: &str, file: Option<&Path>) -> bool {
    if INTERNAL_PREFIXES.iter().any(|p| function.starts_with(p)) {
        return true;
    }
    if file.is_some_and(paths::is_std_path) {
        return true;
    }
    // Not a Rust path (`main`, `__libc_start_call_main`, `start_thread`):
    // the C runtime, unless the file is the user's own.
    !function.contains("::") && !file.is_some_and(paths::in_workspace)
}

fn resolve(ip: usize) -> Arc<[Resolved]> {
    let _untracked = Guard::enter();
    if let Some(hit) = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&ip)
    {
        return hit.clone();
    }
    let mut frames = Vec::new();
    // The addresses were moved into their call instruction at capture time.
    backtrace::resolve(ip as *mut c_void, |symbol| {
        let function = symbol.name().map(|n| format!("{n:#}")).unwrap_or_default();
        let path = symbol.filename();
        let internal = is_internal(&function, path);
        let file = match path {
            Some(p) => paths::display_path(p),
            None => "<unknown>".to_string(),
        };
        frames.push(Resolved {
            frame: Frame {
                file,
                line: symbol.lineno().unwrap_or(0),
                function,
            },
            internal,
        });
    });
    let frames: Arc<[Resolved]> = frames.into();
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(ip, frames.clone());
    frames
}

/// The traceback of a stack: its site first, then the callers outside std,
/// at most `limit` frames.
pub(crate) fn traceback(stack: StackId, limit: usize) -> Traceback {
    let _untracked = Guard::enter();
    let limit = limit.max(1);
    let mut out = Vec::new();
    'walk: for ip in stack_table::ips(stack).iter() {
        for r in resolve(*ip).iter() {
            if !r.internal {
                out.push(r.frame.clone());
                if out.len() == limit {
                    break 'walk;
                }
            }
        }
    }
    if out.is_empty() {
        out.push(Frame::unknown());
    }
    Traceback::new(out)
}

/// Whether allocations with this stack count in scopes. Resolves the frames
/// up to the site the first time a stack is seen, then remembers.
pub(crate) fn classify(stack: StackId) -> Class {
    match stack_table::class(stack) {
        Class::Unknown => {}
        known => return known,
    }
    let mut class = Class::User;
    'walk: for ip in stack_table::ips(stack).iter() {
        for r in resolve(*ip).iter() {
            if !r.internal {
                break 'walk;
            }
            let f = &r.frame.function;
            if EXCLUDED_PREFIXES.iter().any(|p| f.starts_with(p)) {
                class = Class::Excluded;
                break 'walk;
            }
        }
    }
    stack_table::set_class(stack, class);
    class
}

/// Distinct addresses resolved so far and an estimate of their bytes.
pub(crate) fn footprint() -> (usize, usize) {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(map) = cache.as_ref() else {
        return (0, 0);
    };
    let bytes = map
        .values()
        .map(|frames| {
            64 + frames
                .iter()
                .map(|r| 48 + r.frame.file.len() + r.frame.function.len())
                .sum::<usize>()
        })
        .sum();
    (map.len(), bytes)
}
