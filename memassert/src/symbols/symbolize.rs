//! Symbolization: return addresses to frames, lazily and once per address.
//!
//! Nothing here runs on an allocation, except [`classify`], once per distinct
//! stack and only while a scope is open. On Linux the lookup uses a private
//! cache of the objects' debug info (`symbol_source`), never the `backtrace`
//! crate's global one, which the code under test may be using at that very
//! moment; elsewhere it goes through `backtrace::resolve`, outside our own
//! locks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::base::reentrancy::Guard;
use crate::capture::stack_table::{self, Class, StackId};
use crate::symbols::paths;
use crate::symbols::traceback::{Frame, Traceback};

/// One frame of a resolved address (an address yields several when calls
/// were inlined into it, innermost first).
#[derive(Clone, Debug)]
struct Resolved {
    frame: Frame,
    /// Not a site: the tracker, std, or code without a Rust path.
    internal: bool,
    /// The tracker's own work: the unwinder, `backtrace`, memassert, the
    /// global allocator's entry point.
    tracker: bool,
    /// Std working on the caller's behalf (output, panics, thread-locals).
    excluded: bool,
    /// One-time initialisation of a static or a thread-local, or a runtime
    /// starting up: wherever it is in the stack, what it allocates belongs
    /// to the process or the thread, not to the code that happened to
    /// trigger it.
    one_time: bool,
    /// Code of the user's workspace (not std, not a dependency elsewhere).
    workspace: bool,
    /// Std machinery that keeps state for the process: the backtrace
    /// symbolizer (and the crates std vendors for it), panicking.
    std_state: bool,
    /// Std's stdout/stderr path (`print!`, libtest's captured output).
    stdio: bool,
    /// Std's `io::Write` machinery outside `stdio` (the formatting adapter,
    /// `Vec<u8>`'s `write_all`).
    io_write: bool,
    /// An `io::Write::write_fmt` (or `default_write_fmt`): where a
    /// formatting into an `io::Write` sink starts.
    io_write_fmt: bool,
    /// A symbol table's frame that may hold the code of a caller's
    /// closure or generic argument, inlined: see [`may_inline_callers_code`]
    /// (always false for the debug info's frames, which show inlined code).
    #[cfg_attr(
        not(all(memassert_private_symbols, target_os = "linux")),
        allow(dead_code) // only symbol tables are read this way
    )]
    opaque: bool,
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

/// The global allocator's entry points (when they are not inlined away).
const ALLOCATOR_ENTRIES: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rustc::__rust_alloc",
    "__rustc::__rust_alloc_zeroed",
    "__rustc::__rust_realloc",
    "__rg_alloc",
    "__rg_alloc_zeroed",
    "__rg_realloc",
];

/// Std source files which, found between an allocation and its site, mean
/// std or the harness allocated on the body's behalf (matched by file, since
/// inlined frames of std carry only short names).
const EXCLUDED_FILES: &[&str] = &[
    "library/std/src/io/stdio.rs",
    "library/std/src/panicking.rs",
    "library/core/src/panicking.rs",
    "library/std/src/sys/thread_local/",
    "library/std/src/thread/current.rs",
    "library/std/src/backtrace.rs",
    "library/std/src/sys/backtrace.rs",
    "library/std/src/thread/",
    "library/std/src/sys/thread/",
    "library/std/src/sys/pal/unix/thread.rs",
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
    // Thread handles, names, packets and the boxed closure of a spawn.
    "std::thread::",
    "<std::thread::",
    "std::sys::thread::",
    "std::sys::pal::unix::thread::",
];

/// Std machinery that keeps what it allocates for the process: the
/// backtrace symbolizer's parsed debug info (std's vendored `backtrace`,
/// `gimli`, `addr2line`, `rustc_demangle`, `miniz_oxide`), panicking. An
/// allocation with one of these frames anywhere in its stack, and none of
/// the user's code between the allocation and that frame, is std's: see
/// [`is_excluded`].
const STD_STATE_PREFIXES: &[&str] = &[
    "std::backtrace_rs::",
    "<std::backtrace_rs::",
    "std::sys::backtrace::",
    "<std::sys::backtrace::",
    "<<std::sys::backtrace::",
    "std::backtrace::",
    "<std::backtrace::",
    "std::panicking::",
    "core::panicking::",
    "__rustc::rust_begin_unwind",
    "rust_begin_unwind",
];

/// Files of [`STD_STATE_PREFIXES`] (inlined frames of std carry only short
/// names). Not `library/deps/`: std's vendored crates include `hashbrown`,
/// whose code the user's `HashMap`s run.
const STD_STATE_FILES: &[&str] = &[
    "library/std/src/backtrace.rs",
    "library/std/src/sys/backtrace.rs",
    "library/std/src/../../backtrace/",
    "library/backtrace/",
    "library/std/src/panicking.rs",
    "library/core/src/panicking.rs",
];

/// Functions which, anywhere in a stack, mean one-time initialisation (of
/// a `static`, a thread-local) or a runtime starting up: see
/// [`Resolved::one_time`].
const ONE_TIME_PREFIXES: &[&str] = &[
    "std::sync::once::Once::call_once",
    "std::sync::poison::once::Once::call_once",
    "std::sync::once_lock::OnceLock<",
    "std::sync::lazy_lock::LazyLock<",
    "std::sync::poison::once_lock::",
    "std::sys::sync::once::",
    "std::sys::thread_local::",
    "once_cell::imp::",
    "lazy_static::",
    "tokio::runtime::builder::Builder::build",
];

/// Std files of one-time initialisation (inlined frames of std carry only
/// short names).
const ONE_TIME_FILES: &[&str] = &[
    "library/std/src/sync/once.rs",
    "library/std/src/sync/once_lock.rs",
    "library/std/src/sync/lazy_lock.rs",
    "library/std/src/sync/poison/once.rs",
    "library/std/src/sys/sync/once/",
    "library/std/src/sys/thread_local/",
];

/// memassert's frames at the bottom of a thread's stack rather than between
/// an allocation and its caller: the start routine of every thread started
/// through the `pthread_create` wrapper (`thread_owner`). Not the tracker's
/// work (internal all the same, never a site): taken for it, a stack of
/// std's frames only (a thread starting up) lost every frame to it, the
/// tracker's frames being dropped up to the last of them. Each with the
/// file under memassert's root that defines it.
const THREAD_BASE_FRAMES: &[(&str, &str)] = &[(
    "memassert::alloc::thread_owner::trampoline",
    "src/alloc/thread_owner.rs",
)];

/// Whether a frame is one of [`THREAD_BASE_FRAMES`]: by its full name, or,
/// where memassert is built with line tables only (whose debug info names
/// functions without their path), by its short name in its file.
fn is_thread_base(function: &str, file: Option<&Path>) -> bool {
    THREAD_BASE_FRAMES.iter().any(|&(full, source)| {
        function == full
            || (full.rsplit("::").next() == Some(function)
                && file.is_some_and(|f| paths::is_memassert_path(f) && f.ends_with(source)))
    })
}

/// A frame of the tracker's own: recording an allocation, capturing the
/// stack (the `backtrace` crate, the system unwinder), or the allocator entry.
fn is_tracker(function: &str, file: Option<&Path>) -> bool {
    if is_thread_base(function, file) {
        return false;
    }
    ALLOCATOR_ENTRIES.contains(&function)
        || ["memassert::", "<memassert::", "backtrace::", "<backtrace::"]
            .iter()
            .any(|p| function.starts_with(p))
        || match file {
            Some(f) => paths::is_memassert_path(f) || paths::is_backtrace_crate_path(f),
            // The unwinder itself, which has no line table.
            None => function.starts_with("_Unwind") || function.is_empty(),
        }
}

/// True when a (demangled) name is a Rust path: `a::b`, `<T as a::B>::c`,
/// but not `main` or `trace<a::b::C>` (a short inlined name whose `::` is
/// only in its generic arguments).
pub(crate) fn is_rust_path(function: &str) -> bool {
    function.starts_with('<')
        || function
            .split('<')
            .next()
            .is_some_and(|head| head.contains("::"))
}

fn is_internal(function: &str, file: Option<&Path>) -> bool {
    if INTERNAL_PREFIXES.iter().any(|p| function.starts_with(p)) {
        return true;
    }
    match file {
        Some(f) if paths::is_std_path(f) => true,
        // memassert's own code; a short inlined name (`record`) in its files
        // is ours too. (Doc examples compiled from its files are not.)
        Some(f) if paths::is_memassert_path(f) && !is_rust_path(function) => true,
        // Rust source outside std: the user's code or a dependency's, even
        // when an inlined frame carries only a short name (`insert`).
        Some(f) if f.extension().is_some_and(|e| e == "rs") => false,
        // C sources (`libc_start_call_main.h`) or no line table at all:
        // keep only what looks like a Rust path (`main`,
        // `__libc_start_main` are not sites).
        Some(f) => !is_rust_path(function) && !paths::in_workspace(f),
        // No line table: std's generic code compiled into a dependency built
        // with `debug = false` (shared generics in dev builds) is std's by
        // its name (`<T as alloc::...::ConvertVec>::to_vec`), not a site.
        None => !is_rust_path(function) || std_impl_by_name(function) || std_blanket_impl(function),
    }
}

/// Whether a name is a method of std's blanket impl of one of its own
/// traits for a bare type parameter: `<T as alloc::string::ToString>::to_string`,
/// `<&T as core::fmt::Display>::fmt`. The orphan rule allows
/// `impl<T> Trait for T` only in the trait's own crate, so such code is
/// std's. (It may have the type's own impl inlined into it; only frames
/// without a line table are judged by it, where the caller's frame, the
/// site it leaves, is the user's code all the same.)
fn std_blanket_impl(function: &str) -> bool {
    let Some((ty, Some(tr))) = impl_header(function) else {
        return false;
    };
    let ty = ty.trim_start_matches(['&', ' ']).trim_start_matches("mut ");
    let generic = ty.chars().next().is_some_and(char::is_uppercase)
        && ty.chars().all(|c| c.is_alphanumeric() || c == '_');
    generic && STD_ROOTS.iter().any(|c| tr.starts_with(c))
}

/// The path roots of std's types and traits in demangled names.
const STD_ROOTS: &[&str] = &["std::", "core::", "alloc::"];

/// A name's leading `<Type as Trait>` split into the type and the trait
/// (`None` for an inherent `<Type>`), however nested; `None` when the name
/// does not start with `<`.
fn impl_header(function: &str) -> Option<(&str, Option<&str>)> {
    let end = leading_angle_end(function)?;
    let inner = &function[1..end];
    // " as " at the top level splits the type from the trait.
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' | ']' | ')' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 && inner[i..].starts_with(" as ") => {
                return Some((&inner[..i], Some(&inner[i + 4..])));
            }
            _ => {}
        }
    }
    Some((inner, None))
}

/// An inherent method as the legacy demangler writes it, `a::Type::f`,
/// also when the symbol uses the v0 mangling (nightly's default), whose
/// demangler writes `<a::Type>::f`: reports and snapshots read the same on
/// every toolchain. Trait methods (`<T as a::Trait>::f`) stay as they are.
fn inherent_path(function: String) -> String {
    let function = legacy_closures(function);
    let Some(end) = leading_angle_end(&function) else {
        return function;
    };
    let inner = &function[1..end];
    let rest = &function[end + 1..];
    let is_path = inner
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    if rest.starts_with("::") && is_path && !inner.contains(" as ") {
        return format!("{inner}{rest}");
    }
    function
}

/// The byte index of the `>` that closes a name's leading `<` (`<T as
/// a::B>::c`), however nested; `None` when the name does not start with
/// `<` or it is not closed.
fn leading_angle_end(function: &str) -> Option<usize> {
    if !function.starts_with('<') {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in function.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// v0's `{closure#0}` as the legacy demangler's `{{closure}}`.
fn legacy_closures(function: String) -> String {
    if !function.contains("{closure#") {
        return function;
    }
    let mut out = String::with_capacity(function.len());
    let mut rest = function.as_str();
    while let Some(i) = rest.find("{closure#") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "{closure#".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with('}') {
            out.push_str("{{closure}}");
            rest = &after[digits + 1..];
        } else {
            out.push_str("{closure#");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One frame, named and classified.
fn resolved(function: String, path: Option<&Path>, line: u32) -> Resolved {
    let function = inherent_path(function);
    // libtest's generated `main` carries the span of the crate's first
    // line (line 0 with Rust 1.91): the harness, not the user's code.
    // (Without line tables every frame reads line 0, but has no file.)
    let harness_main = path.is_some() && line <= 1 && function.ends_with("::main");
    let internal = harness_main || is_internal(&function, path);
    let tracker = is_tracker(&function, path);
    let file = match path {
        Some(p) => paths::display_path(p),
        None => "<unknown>".to_string(),
    };
    let excluded = EXCLUDED_PREFIXES.iter().any(|p| function.starts_with(p))
        || EXCLUDED_FILES.iter().any(|f| file.starts_with(f));
    let workspace = !internal && path.is_some_and(paths::in_workspace);
    let one_time = ONE_TIME_PREFIXES.iter().any(|p| function.starts_with(p))
        || ONE_TIME_FILES.iter().any(|f| file.starts_with(f));
    let std_state = STD_STATE_PREFIXES.iter().any(|p| function.starts_with(p))
        || STD_STATE_FILES.iter().any(|f| file.starts_with(f));
    let stdio = file.starts_with("library/std/src/io/stdio.rs")
        || function.starts_with("std::io::stdio::")
        || function.starts_with("<std::io::stdio::");
    // By file, or by name where there is none (a symbol table's frame).
    let io_write = !stdio
        && (file.starts_with("library/std/src/io/")
            || (path.is_none()
                && (function.starts_with("std::io::")
                    || function.starts_with("<std::io::")
                    || function.contains(" as std::io::Write>::"))));
    let io_write_fmt =
        io_write && matches!(last_segment(&function), "write_fmt" | "default_write_fmt");
    Resolved {
        frame: Frame {
            file,
            line,
            function,
        },
        internal,
        tracker,
        excluded,
        one_time,
        workspace,
        std_state,
        stdio,
        io_write,
        io_write_fmt,
        opaque: false,
    }
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
    let mut push = |function: String, path: Option<&Path>, line: u32| {
        frames.push(resolved(function, path, line));
    };
    // The addresses were moved into their call instruction at capture time.
    #[cfg(memassert_private_symbols)]
    crate::symbols::symbol_source::resolve(ip, &mut push);
    #[cfg(not(memassert_private_symbols))]
    backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
        let function = symbol.name().map(|n| format!("{n:#}")).unwrap_or_default();
        push(function, symbol.filename(), symbol.lineno().unwrap_or(0));
    });
    let frames: Arc<[Resolved]> = frames.into();
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(ip, frames.clone());
    frames
}

/// The last segment of a function path, without generic arguments:
/// `std::io::default_write_fmt::<Vec<u8>>` -> `default_write_fmt`,
/// `<Vec<u8> as std::io::Write>::write_fmt` -> `write_fmt`.
fn last_segment(function: &str) -> &str {
    let mut head = function;
    // Drop trailing generic arguments (`::<...>`), however nested.
    while head.ends_with('>') {
        let mut depth = 0usize;
        let mut cut = None;
        for (i, c) in head.char_indices().rev() {
            match c {
                '>' => depth += 1,
                '<' => {
                    depth -= 1;
                    if depth == 0 {
                        cut = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        match cut {
            Some(i) => head = head[..i].trim_end_matches("::"),
            None => return "",
        }
    }
    head.rsplit("::").next().unwrap_or(head)
}

/// The frames of a stack from the allocation request on, innermost first:
/// everything up to the allocator's entry point (the tracker itself) is
/// dropped.
/// The file of the marker standing for frames left out of a deep stack.
const ELIDED_FILE: &str = "...";

fn request_frames(stack: StackId) -> Vec<Resolved> {
    let mut all: Vec<Resolved> = Vec::new();
    for &ip in stack_table::ips(stack).iter() {
        if ip == crate::capture::sink::ELIDED {
            all.push(elided());
            continue;
        }
        all.extend(resolve(ip).iter().cloned());
    }
    from_request(all)
}

/// The marker of frames left out in the middle of a stack too deep to keep
/// whole (internal: never a site nor shown; `traceback` says frames were
/// left out).
fn elided() -> Resolved {
    let mut marker = resolved(String::new(), None, 0);
    marker.frame.file = ELIDED_FILE.to_string();
    marker.internal = true;
    marker
}

/// A stack's frames without the tracker's: they come first, however they
/// were inlined (std's among them: the thread-locals it reads), so drop
/// them up to the last tracker frame of that leading run of tracker and
/// std frames.
fn from_request(mut all: Vec<Resolved>) -> Vec<Resolved> {
    let leading = all.iter().take_while(|r| r.tracker || r.internal).count();
    let tracker = all[..leading]
        .iter()
        .rposition(|r| r.tracker)
        .map_or(0, |last| last + 1);
    all.split_off(tracker)
}

/// The traceback of a stack: its site first, then the callers outside std,
/// at most `limit` frames; its `total_nframe` counts them all.
///
/// When none of those `limit` frames is the user's workspace code (the
/// allocation happened deep inside a dependency), the innermost workspace
/// frame is kept anyway, after a marker frame that says how many were left
/// out: a report always shows where the user's code asked.
pub(crate) fn traceback(stack: StackId, limit: usize) -> Traceback {
    traceback_until(stack, limit, None)
}

/// [`traceback`], without the frame of function `until` and those below
/// it (never the site): a test's report stops at the test function.
pub(crate) fn traceback_until(stack: StackId, limit: usize, until: Option<&str>) -> Traceback {
    let _untracked = Guard::enter();
    let limit = limit.max(1);
    let all = request_frames(stack);
    let elided = all
        .iter()
        .any(|r| r.frame.file == ELIDED_FILE && r.internal);
    let mut user: Vec<Resolved> = all.into_iter().filter(|r| !r.internal).collect();
    if let Some(until) = until {
        if let Some(at) = user.iter().skip(1).position(|r| r.frame.function == until) {
            user.truncate(at + 1);
        }
    }
    let in_reach = user.iter().take(limit).any(|r| r.workspace);
    let first_workspace = user.iter().position(|r| r.workspace);
    let frames: Vec<Frame> = match first_workspace {
        Some(at) if !in_reach && limit >= 2 => {
            let keep = limit - 1;
            let mut frames: Vec<Frame> = user[..keep].iter().map(|r| r.frame.clone()).collect();
            frames.push(Frame {
                file: if elided {
                    "... frames omitted ...".to_string()
                } else {
                    format!("... {} frames omitted ...", at - keep)
                },
                line: 0,
                function: String::new(),
            });
            frames.push(user[at].frame.clone());
            frames
        }
        _ => user.iter().take(limit).map(|r| r.frame.clone()).collect(),
    };
    // How many frames the limit cut from: every frame of the capture that
    // `frames` could have shown (a lower bound when the stack was deeper
    // than the capture).
    Traceback::new(frames).with_total_nframe(Some(user.len()))
}

/// Whether allocations with this stack count in scopes, decided the first
/// time a stack is seen, then remembered. From the symbol tables alone
/// when they suffice ([`quick_class`]: no debug info is read, so a passing
/// test never pays for it), else from the debug info's frames.
pub(crate) fn classify(stack: StackId) -> Class {
    match stack_table::class(stack) {
        Class::Unknown => {}
        known => return known,
    }
    let _untracked = Guard::enter();
    let captured = stack_table::ips(stack).len();
    let class = quick_verdict(stack, captured).unwrap_or_else(|| {
        if is_excluded(&request_frames(stack), captured) {
            Class::Excluded
        } else {
            Class::User
        }
    });
    stack_table::set_class(stack, class);
    class
}

/// [`quick_class`] of the stack's symbol-table frames, where there are
/// symbol tables to read (Linux).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn quick_verdict(stack: StackId, captured: usize) -> Option<Class> {
    quick_frames(stack).and_then(|frames| quick_class(&frames, captured))
}

/// Elsewhere the debug info decides.
#[cfg(not(all(memassert_private_symbols, target_os = "linux")))]
fn quick_verdict(_stack: StackId, _captured: usize) -> Option<Class> {
    None
}

/// Symbol-table frames, one per address, by address.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
static QUICK: Mutex<Option<HashMap<usize, Resolved>>> = Mutex::new(None);

/// The frames of a stack as the symbol tables name them: one per address
/// (the function it is in: no inlined callers, no file or line), the
/// tracker's dropped as in [`request_frames`]. An address no symbol covers
/// is a frame without a name. `None` when no symbol table names any frame.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn quick_frames(stack: StackId) -> Option<Vec<Resolved>> {
    quick_all_frames(stack).map(from_request)
}

/// [`quick_frames`] with the tracker's frames kept.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn quick_all_frames(stack: StackId) -> Option<Vec<Resolved>> {
    let lock = || QUICK.lock().unwrap_or_else(|e| e.into_inner());
    let mut all = Vec::new();
    let mut named = false;
    for &ip in stack_table::ips(stack).iter() {
        if ip == crate::capture::sink::ELIDED {
            all.push(elided());
            continue;
        }
        let known = lock().get_or_insert_with(HashMap::new).get(&ip).cloned();
        let frame = match known {
            Some(frame) => frame,
            None => {
                let (name, v0) = crate::symbols::symbol_source::symbol(ip).unwrap_or_default();
                let mut frame = resolved(name, None, 0);
                frame.opaque = may_inline_callers_code(&frame.frame.function, v0);
                let first = crates_named(&frame.frame.function).next();
                if first.is_some_and(|c| STD_CRATES.contains(&c))
                    || std_impl_by_name(&frame.frame.function)
                {
                    frame.internal = true;
                }
                lock()
                    .get_or_insert_with(HashMap::new)
                    .insert(ip, frame.clone());
                frame
            }
        };
        named |= !frame.frame.function.is_empty();
        all.push(frame);
    }
    named.then_some(all)
}

/// Whether a trait method's name says it is std's code, as a file in std
/// would: `<&std::fs::File as std::io::Read>::read_to_string`,
/// `<u8 as alloc::slice::ConvertVec>::to_vec`, `<[u8]>::to_vec` (a std
/// trait on a std or primitive type). A std trait on the user's type
/// (`<demo::Point as core::fmt::Debug>::fmt`) is not: it may be the
/// user's code.
fn std_impl_by_name(function: &str) -> bool {
    const PRIMITIVES: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64", "bool", "char", "str", "()", "!", "_",
    ];
    let is_std_type = |ty: &str| {
        let mut ty = ty.trim();
        loop {
            let before = ty;
            for prefix in ["&", "*const ", "*mut ", "mut ", "dyn ", "[", "("] {
                ty = ty.strip_prefix(prefix).unwrap_or(ty).trim_start();
            }
            if ty == before {
                break;
            }
        }
        let head: &str = ty
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("");
        STD_ROOTS.iter().any(|c| ty.starts_with(c))
            || PRIMITIVES.contains(&head)
            || ty.starts_with("()")
            || ty.starts_with('!')
    };
    match impl_header(function) {
        // A trait std declares inside an impl (`<[_]>::to_vec_in::ConvertVec`)
        // is std's too.
        Some((ty, Some(tr))) => is_std_type(ty) && is_std_type(tr.trim_start_matches('<')),
        Some((ty, None)) => is_std_type(ty),
        None => false,
    }
}

/// The crates std is made of (and libtest, and what they vendor).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
const STD_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "test",
    "hashbrown",
    "rustc_demangle",
    "addr2line",
    "gimli",
    "object",
    "miniz_oxide",
    "adler2",
    "memchr",
    "std_detect",
    "panic_unwind",
    "unwind",
    "compiler_builtins",
    "getopts",
    "unicode_width",
];

/// The crates a demangled name mentions: the first segment of each path in
/// it (`<alloc::vec::Vec<demo::A> as core::fmt::Debug>::fmt` names `alloc`,
/// `demo`, `core`).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn crates_named(function: &str) -> impl Iterator<Item = &str> {
    let bytes = function.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (0..bytes.len()).filter_map(move |i| {
        let starts = ident(bytes[i])
            && !bytes[i].is_ascii_digit()
            && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b':'));
        if !starts {
            return None;
        }
        let end = (i..bytes.len())
            .find(|&j| !ident(bytes[j]))
            .unwrap_or(bytes.len());
        function[end..].starts_with("::").then(|| &function[i..end])
    })
}

/// [`is_excluded`]'s verdict from symbol-table frames ([`quick_frames`]),
/// or `None` when only the debug info can tell. A frame of the symbol table
/// is a whole function as compiled, with whatever was inlined into it:
///
/// - one-time initialisation anywhere decides alone (the debug info would
///   only add inlined frames to the same stack);
/// - std's work below the site (or std's process-wide machinery) decides
///   unless a frame that can carry the caller's inlined code
///   ([`may_inline_callers_code`]: a closure, `catch_unwind`, a thread's
///   entry) lies in between: the debug info may find the site inside it;
/// - a site with nothing of std's below it is the caller's;
/// - no site at all (a thread's entry with the body inlined, the harness's
///   `main`) is for the debug info.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn quick_class(frames: &[Resolved], captured: usize) -> Option<Class> {
    let Some(site) =
        (0..frames.len()).find(|&at| !frames[at].internal && !is_harness_main(frames, at))
    else {
        return quick_siteless(frames, captured);
    };
    let opaque = |upto: usize| frames[..upto].iter().any(|r| r.opaque);
    let excluded = if frames.iter().any(|r| r.one_time) {
        true
    } else if let Some(at) = std_state_at(frames) {
        if opaque(at + 1) {
            return None;
        }
        true
    } else if frames[..site].iter().any(|r| r.excluded) || captured_output(frames, site) {
        if opaque(site) {
            return None;
        }
        true
    } else if writer_unnamed(frames, site) {
        return None;
    } else {
        false
    };
    Some(if excluded {
        Class::Excluded
    } else {
        Class::User
    })
}

/// Whether, in symbol-table frames, output is being written (a stdout or
/// `io::Write::write_fmt` frame above the site) through a default method of
/// `core::fmt::Write` below it whose writer the name does not show: a
/// legacy-mangled `core::fmt::Write::write_char` (std before v0 mangling) is
/// the same symbol for std's `io::Write` adapter, which grows the captured
/// output, and for the caller's own writer. Only the debug info (the
/// adapter's `write_str` inlined into it) tells them apart.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn writer_unnamed(frames: &[Resolved], site: usize) -> bool {
    frames[..site]
        .iter()
        .any(|r| r.frame.function.starts_with("core::fmt::Write::"))
        && frames[site..].iter().any(|r| r.stdio || r.io_write_fmt)
}

/// The C library's and the linker's entry points at the bottom of a stack
/// (`main` is the one rustc generates, which calls `std::rt::lang_start`).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
const C_ENTRIES: &[&str] = &[
    "_start",
    "main",
    "__libc_start_main",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
];

/// Whether `frames[at]` is libtest's generated `main`, the harness rather
/// than the user's code (the debug info tells it by its line; here, by its
/// name, `crate::main`, and its callee, libtest's
/// `test::test_main_static`).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn is_harness_main(frames: &[Resolved], at: usize) -> bool {
    let f = frames[at].frame.function.as_str();
    f.ends_with("::main")
        && f.matches("::").count() == 1
        && !f.contains('<')
        && at
            .checked_sub(1)
            .is_some_and(|inner| frames[inner].frame.function.starts_with("test::"))
}

/// [`quick_class`] for a stack without a site: std's own work (a thread
/// starting up, std's bookkeeping) when the stack is complete, every frame
/// is std's and named, and none may hide inlined code of another's; the
/// frames without a name at its bottom are the C library's thread or
/// program entry (`start_thread`, `clone3`), which the symbol tables of a
/// stripped C library do not name. Anything else is for the debug info.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn quick_siteless(frames: &[Resolved], captured: usize) -> Option<Class> {
    let complete = captured < crate::capture::stack_capture::depth();
    (complete && std_only(frames)).then_some(Class::Excluded)
}

/// Whether a stack's symbol-table frames are std's (and libtest's) alone,
/// none of them one that may hold inlined code of another's. The program's
/// start-up frames, from the C runtime's first entry point (or the unnamed
/// frames at the bottom), or from what calls libtest's `main` (std's
/// `lang_start`), outward, run no code of anyone's test: left out.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn std_only(frames: &[Resolved]) -> bool {
    let named = frames
        .iter()
        .rposition(|r| !r.frame.function.is_empty())
        .map_or(0, |last| last + 1);
    let entry = frames
        .iter()
        .position(|r| C_ENTRIES.contains(&r.frame.function.as_str()))
        .unwrap_or(frames.len());
    let entry = (0..frames.len())
        .find(|&at| is_harness_main(frames, at))
        .map_or(entry, |at| entry.min(at + 1));
    let ours = named.min(entry);
    ours > 0
        && (0..ours).all(|at| {
            let r = &frames[at];
            let f = r.frame.function.as_str();
            let std = crates_named(f)
                .next()
                .is_some_and(|c| STD_CRATES.contains(&c))
                || std_impl_by_name(f)
                || is_harness_main(frames, at);
            (std && !r.opaque) || is_thread_base(f, None)
        })
}

/// Whether a function of std (or core) may have the caller's code inlined
/// into it when optimised: a closure of std's, a call through `FnOnce`,
/// `catch_unwind`, a thread's entry, a thread-local's `with`, a scope. Its
/// symbol-table frame may hide a site; a frame without a name might be
/// anything. A name mangled in the v0 scheme (`v0`: std's own, on recent
/// toolchains) shows its generic arguments: with only std's types among
/// them (a hook of libtest's), nothing of the caller's is inside.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn may_inline_callers_code(function: &str, v0: bool) -> bool {
    if function.is_empty() {
        return true;
    }
    if v0 && crates_named(function).all(|c| STD_CRATES.contains(&c)) {
        return false;
    }
    const CALLERS: &[&str] = &[
        "std::panicking::try",
        "std::panicking::catch_unwind",
        "std::panic::catch_unwind",
        "std::sys::backtrace::__rust_begin_short_backtrace",
        "std::sys::backtrace::__rust_end_short_backtrace",
        "std::thread::scope",
        "std::thread::scoped::scope",
        "std::thread::local::LocalKey",
        "<std::thread::local::LocalKey",
        "std::thread::LocalKey",
        "std::thread::current::with_current",
        "std::sync::once::Once::call_once",
        "std::sync::poison::once::Once::call_once",
    ];
    let std = [
        "std::", "<std::", "core::", "<core::", "alloc::", "<alloc::",
    ]
    .iter()
    .any(|p| function.starts_with(p));
    function.is_empty()
        || (std && function.contains("{{closure}}"))
        || function.contains("core::ops::function::Fn")
        || CALLERS.iter().any(|p| function.starts_with(p))
}

/// Whether an allocation with these frames (innermost first, `captured`
/// addresses) is std's, the harness's or a runtime's work rather than the
/// caller's:
///
/// - std working on the caller's behalf *below* the site (output, panics,
///   thread handles and spawns);
/// - one-time initialisation of a static or a thread-local, or a runtime
///   starting up, *anywhere* in the stack (it lives for the process or the
///   thread);
/// - std machinery that keeps state for the process (the backtrace
///   symbolizer, panicking) *anywhere* in the stack, with none of the
///   user's code between it and the allocation ([`std_state_at`]);
/// - libtest's captured output (or stdout's buffer) growing while the
///   user's `Debug`/`Display` code, the site, formats into it
///   ([`captured_output`]);
/// - no site at all in a complete, fully resolved stack of std frames
///   (a thread starting up, std's own bookkeeping). A stack cut short by
///   the capture depth, or with frames that did not resolve, is never
///   excluded for having no site: it counts, and its report says why.
fn is_excluded(frames: &[Resolved], captured: usize) -> bool {
    if frames.iter().any(|r| r.one_time) || std_state_at(frames).is_some() {
        return true;
    }
    match frames.iter().position(|r| !r.internal) {
        Some(site) => frames[..site].iter().any(|r| r.excluded) || captured_output(frames, site),
        None => {
            let complete = captured < crate::capture::stack_capture::depth();
            let resolved = !frames.is_empty()
                && frames
                    .iter()
                    .all(|r| !r.frame.function.is_empty() || r.frame.file != "<unknown>");
            let std = frames.iter().any(|r| r.frame.file.starts_with("library/"));
            complete && resolved && std
        }
    }
}

/// Whether a frame of std's process-wide machinery ([`STD_STATE_PREFIXES`])
/// made the allocation: walking out from the allocation, such a frame comes
/// before any frame of code with a source file outside std (the user's, a
/// dependency's). Frames without a file are passed over: std's vendored
/// crates (`rustc_demangle`, `gimli`) have no line tables in std's build,
/// so the backtrace symbolizer's allocations look like
/// `<unknown> in <rustc_demangle::legacy::Demangle as Display>::fmt`.
/// A user's `Display` of a panic payload, or a user's panic hook, is the
/// user's code in between: what it allocates counts.
fn std_state_at(frames: &[Resolved]) -> Option<usize> {
    for (at, r) in frames.iter().enumerate() {
        if r.std_state && !is_thread_entry(&r.frame.function) {
            return Some(at);
        }
        if r.internal {
            continue;
        }
        // Code outside std: with a file, the user's or a dependency's; with
        // none, std's vendored crates are passed over, but not code of a
        // build without debug info (the user's, in `cargo test --release`).
        let vendored = STD_VENDORED.iter().any(|c| r.frame.function.contains(c));
        if r.frame.file != "<unknown>" || !vendored {
            return None;
        }
    }
    None
}

/// The crates std vendors for its backtrace symbolizer: built without line
/// tables in std's build, their frames read `<unknown> in
/// <rustc_demangle::legacy::Demangle as Display>::fmt`.
const STD_VENDORED: &[&str] = &[
    "rustc_demangle::",
    "addr2line::",
    "gimli::",
    "object::",
    "miniz_oxide::",
    "adler2::",
    "memchr::",
];

/// The frames std puts at the bottom of every thread and test
/// (`__rust_begin_short_backtrace`, `__rust_end_short_backtrace`): markers
/// for backtraces, not the backtrace machinery itself.
fn is_thread_entry(function: &str) -> bool {
    function.contains("__rust_begin_short_backtrace")
        || function.contains("__rust_end_short_backtrace")
}

/// Whether the allocation is std's output buffer (libtest's captured
/// output, a `Vec<u8>`) growing while the code at `site` formats into it:
///
/// - below the site, std's `io::Write` machinery writes (the formatting
///   adapter, `Vec<u8>::write_all`), and no `write_fmt` of its own started
///   there (the site formatting into its own buffer: the site's);
/// - above the site, the first `write_fmt` that started the formatting is
///   called from std's stdout/stderr path (`print!`, `eprintln!`, a panic
///   message), whatever user code formats in between (a `Debug` of the
///   user's or of a dependency, derived or written by hand); in a symbol
///   table's frames, where that `write_fmt` is inlined into the stdout
///   path, the stdout frame itself.
fn captured_output(frames: &[Resolved], site: usize) -> bool {
    let below = &frames[..site];
    if !below.iter().any(|r| r.io_write) || below.iter().any(|r| r.io_write_fmt) {
        return false;
    }
    // The `write_fmt` may be inlined into std's stdout path (optimised std,
    // seen by its symbol table): then the stdout frame comes first.
    let Some(start) = frames[site..]
        .iter()
        .position(|r| r.io_write_fmt || r.stdio)
    else {
        return false;
    };
    frames[site + start..]
        .iter()
        .find(|r| !r.io_write)
        .is_some_and(|r| r.stdio)
}

/// Reads what classifying `stack` needs, once: the symbol tables of the
/// objects it runs in (where classification reads them; elsewhere the
/// debug info). See `symbols::warm_up`.
///
/// Where std's symbols are mangled in the legacy scheme (Rust before v0
/// mangling of std), a symbol-table frame of std's generic code does not
/// say whose code it was instantiated with (a spawn hook's closure, a
/// thread's entry), so verdicts on the body's stacks go to the debug info:
/// it is read here, before the body, as for targets without symbol tables.
pub(crate) fn warm(stack: StackId) {
    let _untracked = Guard::enter();
    #[cfg(all(memassert_private_symbols, target_os = "linux"))]
    {
        crate::symbols::symbol_source::warm_symbol_tables();
        if std_names_generics(stack) == Some(true) && quick_frames(stack).is_some() {
            SYMBOL_TABLES_SUFFICE.store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        }
    }
    for &ip in stack_table::ips(stack).iter() {
        if ip != crate::capture::sink::ELIDED {
            resolve(ip);
        }
    }
}

/// Set by [`warm`] when it read no debug info, leaving verdicts to the
/// symbol tables (see [`symbol_tables_suffice`]).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
static SYMBOL_TABLES_SUFFICE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether the warm-up left telling std's work from the body's to the
/// symbol tables alone (Linux, std's symbols v0-mangled), reading no debug
/// info; false before any warm-up and where it read the debug info.
pub(crate) fn symbol_tables_suffice() -> bool {
    #[cfg(all(memassert_private_symbols, target_os = "linux"))]
    {
        SYMBOL_TABLES_SUFFICE.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(all(memassert_private_symbols, target_os = "linux")))]
    {
        false
    }
}

/// Whether std was built with v0-mangled symbols, which name a generic
/// function's arguments (`Some(true)`), or legacy-mangled ones, which do
/// not (`Some(false)`), judged by std's frames on `stack`; `None` when none
/// has a symbol. Any v0 frame of std's decides: std's generics instantiated
/// in a crate built with legacy mangling carry that crate's scheme.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn std_names_generics(stack: StackId) -> Option<bool> {
    let mut seen = None;
    for &ip in stack_table::ips(stack).iter() {
        let Some((name, v0)) = crate::symbols::symbol_source::symbol(ip) else {
            continue;
        };
        if crates_named(&name)
            .next()
            .is_some_and(|c| STD_CRATES.contains(&c))
        {
            if v0 {
                return Some(true);
            }
            seen = Some(false);
        }
    }
    seen
}

/// Whether the stack runs code of the function `path`: a frame of `path`
/// itself, or of its closures, async blocks and nested functions
/// (`path::{{closure}}`, `path::inner`). From the symbol tables when they
/// settle it ([`quick_runs_code_of`]), else from every frame's debug info.
pub(crate) fn runs_code_of(stack: StackId, path: &str) -> bool {
    let _untracked = Guard::enter();
    if let Some(runs) = quick_runs_code_of(stack, path) {
        return runs;
    }
    request_frames(stack)
        .iter()
        .any(|r| crate::symbols::pattern::within_function(path, &r.frame.function))
}

/// Whether the test's crate is built keeping closures as frames of their
/// own ([`note_closure_probe`]).
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
static CLOSURES_ARE_FRAMES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Reads a stack captured inside a closure of `test_support::run_test`, a
/// generic function and so compiled with the test crate's settings: when
/// that closure is a frame of its own, the build inlines no closure (an
/// unoptimised build), so the followed code's closures are frames of their
/// own wherever they run and [`runs_code_of`] needs no debug info to say
/// no.
pub(crate) fn note_closure_probe(stack: StackId) {
    let _untracked = Guard::enter();
    #[cfg(all(memassert_private_symbols, target_os = "linux"))]
    if let Some(frames) = quick_all_frames(stack) {
        let kept = frames.iter().any(|r| {
            let f = r.frame.function.as_str();
            f.starts_with("memassert::test_support::run_test") && f.ends_with("{{closure}}")
        });
        CLOSURES_ARE_FRAMES.store(kept, std::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(all(memassert_private_symbols, target_os = "linux")))]
    let _ = stack;
}

/// [`runs_code_of`] from the symbol tables: yes when a function of `path`
/// is a frame of its own; no when the build keeps closures as frames
/// ([`note_closure_probe`]), or when every frame is std's (or libtest's)
/// and none may hold inlined code of another's (libtest's main thread,
/// std's own threads). Anything else (a pool's or a runtime's generic code,
/// into which an optimised build may inline the followed closure) is for
/// the debug info.
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
fn quick_runs_code_of(stack: StackId, path: &str) -> Option<bool> {
    let frames = quick_frames(stack)?;
    if frames
        .iter()
        .any(|r| crate::symbols::pattern::within_function(path, &r.frame.function))
    {
        return Some(true);
    }
    // A build that keeps closures as frames of their own (not optimised)
    // inlines none of the followed code into a pool's or a runtime's.
    if CLOSURES_ARE_FRAMES.load(std::sync::atomic::Ordering::Relaxed) {
        return Some(false);
    }
    std_only(&frames).then_some(false)
}

/// Elsewhere the debug info decides.
#[cfg(not(all(memassert_private_symbols, target_os = "linux")))]
fn quick_runs_code_of(_stack: StackId, _path: &str) -> Option<bool> {
    None
}

/// Whether the stack runs code of the user's workspace anywhere (as
/// opposed to std's or only dependencies' code: a runtime's or a pool's own
/// threads). Resolved once per stack.
pub(crate) fn runs_workspace_code(stack: StackId) -> bool {
    static KNOWN: Mutex<Option<HashMap<StackId, bool>>> = Mutex::new(None);
    let _untracked = Guard::enter();
    let lock = || KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&known) = lock().get_or_insert_with(HashMap::new).get(&stack) {
        return known;
    }
    let runs = request_frames(stack).iter().any(|r| r.workspace);
    lock().get_or_insert_with(HashMap::new).insert(stack, runs);
    runs
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

/// Whether a stack that starts a thread is inside one-time initialisation
/// of a `static` (`Once`, `OnceLock`, `LazyLock`, `lazy_static`,
/// `once_cell`): the thread is then the process's (a global pool's
/// worker), not the code's that happened to trigger it. A runtime built by
/// the code itself (tokio's `Builder::build`) is not one-time here.
pub(crate) fn starts_threads_once(stack: StackId) -> bool {
    let _untracked = Guard::enter();
    let once = |r: &Resolved| {
        let function = r.frame.function.as_str();
        let file = r.frame.file.as_str();
        let once = |s: &str| !s.contains("thread_local") && !s.starts_with("tokio::");
        ONE_TIME_PREFIXES
            .iter()
            .any(|p| once(p) && function.starts_with(p))
            || ONE_TIME_FILES.iter().any(|f| once(f) && file.contains(f))
    };
    // The symbol tables suffice: one-time initialisation always runs
    // through a function of its own (std's `Once`, once_cell's
    // `initialize_or_wait`), never inlined away.
    #[cfg(all(memassert_private_symbols, target_os = "linux"))]
    if let Some(frames) = quick_frames(stack) {
        return frames.iter().any(once);
    }
    request_frames(stack).iter().any(once)
}

/// Whether a frame of `path` (or its closures) in the stack has a file and
/// line: the build has line tables for that code.
pub(crate) fn names_with_lines(stack: StackId, path: &str) -> bool {
    let _untracked = Guard::enter();
    request_frames(stack).iter().any(|r| {
        r.frame.file != "<unknown>"
            && crate::symbols::pattern::within_function(path, &r.frame.function)
    })
}

#[cfg(test)]
mod tests {
    use super::{inherent_path, is_internal, is_thread_base, is_tracker, last_segment};
    use std::path::Path;

    #[test]
    fn std_code_without_a_line_table_is_not_a_site() {
        // std's code compiled into a dependency built with `debug = false`.
        for std in [
            "<T as alloc::slice::<impl [T]>::to_vec_in::ConvertVec>::to_vec",
            "<T as alloc::string::ToString>::to_string",
            "<&T as core::fmt::Display>::fmt",
            "<&mut I as core::iter::traits::iterator::Iterator>::next",
            "<str as alloc::borrow::ToOwned>::to_owned",
            "<[u8]>::to_vec",
            "alloc::raw_vec::RawVec<T,A>::grow_one",
        ] {
            assert!(is_internal(std, None), "{std}");
        }
        // The user's code, or a dependency's, without a line table.
        for site in [
            "demo::cache::insert",
            "<demo::P as core::fmt::Debug>::fmt",
            "<T as demo::Labels>::label",
            "<demo::Wrapper<T> as core::fmt::Display>::fmt",
        ] {
            assert!(!is_internal(site, None), "{site}");
        }
        // With a file, the file decides.
        assert!(!is_internal(
            "<T as alloc::string::ToString>::to_string",
            Some(Path::new("src/lib.rs"))
        ));
    }

    #[test]
    fn thread_base_frames_by_full_or_short_name() {
        let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/alloc/thread_owner.rs");
        let full = "memassert::alloc::thread_owner::trampoline";
        assert!(is_thread_base(full, None));
        assert!(!is_tracker(full, Some(&own)));
        // Line tables only: the short name, in its own file.
        assert!(is_thread_base("trampoline", Some(&own)));
        assert!(!is_tracker("trampoline", Some(&own)));
        // The same short name elsewhere, or without a file, is not it.
        assert!(!is_thread_base("trampoline", None));
        assert!(!is_thread_base(
            "trampoline",
            Some(Path::new("src/main.rs"))
        ));
        let other = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/alloc/recording.rs");
        assert!(!is_thread_base("trampoline", Some(&other)));
        assert!(is_tracker("record_new", Some(&other)));
    }

    #[test]
    fn last_segments() {
        for (function, last) in [
            (
                "std::io::default_write_fmt::<alloc::vec::Vec<u8>>",
                "default_write_fmt",
            ),
            (
                "<alloc::vec::Vec<u8> as std::io::Write>::write_fmt",
                "write_fmt",
            ),
            ("std::io::Write::write_fmt", "write_fmt"),
            (
                "<std::io::default_write_fmt::Adapter<T> as core::fmt::Write>::write_str",
                "write_str",
            ),
            ("write_fmt", "write_fmt"),
            ("a::b::<c<d>>", "b"),
        ] {
            assert_eq!(last_segment(function), last, "{function}");
        }
    }

    #[cfg(all(memassert_private_symbols, target_os = "linux"))]
    #[test]
    fn std_impls_by_name() {
        use super::std_impl_by_name;
        for std in [
            "<&std::fs::File as std::io::Read>::read_to_string",
            "<u8 as <[_]>::to_vec_in::ConvertVec>::to_vec::<alloc::alloc::Global>",
            "<[u8]>::to_vec",
            "<&mut [u8] as std::io::Write>::write_all",
            "<alloc::vec::Vec<u8> as std::io::Write>::write_fmt",
            "<str as alloc::borrow::ToOwned>::to_owned",
            "<(u8, u32) as core::clone::Clone>::clone",
        ] {
            assert!(std_impl_by_name(std), "{std}");
        }
        for user in [
            "<demo::Point as core::fmt::Debug>::fmt",
            "<u8 as demo::Trait>::f",
            "<alloc::vec::Vec<demo::Point> as demo::Trait>::f",
            "demo::f",
            "<unbalanced",
        ] {
            assert!(!std_impl_by_name(user), "{user}");
        }
    }

    #[cfg(all(memassert_private_symbols, target_os = "linux"))]
    #[test]
    fn frames_that_may_hold_the_callers_code() {
        use super::{crates_named, may_inline_callers_code};
        let named: Vec<&str> =
            crates_named("<alloc::vec::Vec<demo::A> as core::fmt::Debug>::fmt").collect();
        assert_eq!(named, ["alloc", "demo", "core"]);
        // Legacy names hide generic arguments: a closure of std's or a
        // thread's entry may hold anything.
        for legacy in [
            "std::thread::Builder::spawn_unchecked_::{{closure}}",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            "std::panicking::catch_unwind::do_call",
            "core::ops::function::FnOnce::call_once",
            "",
        ] {
            assert!(may_inline_callers_code(legacy, false), "{legacy}");
        }
        assert!(!may_inline_callers_code("std::thread::Thread::new", false));
        // v0 names show them: libtest's hook is std's alone, a test's
        // closure is not.
        assert!(!may_inline_callers_code(
            "std::thread::spawnhook::add_spawn_hook::<test::Hook>::{{closure}}",
            true
        ));
        assert!(may_inline_callers_code(
            "std::panicking::catch_unwind::<(), demo::t::{{closure}}>",
            true
        ));
    }

    #[test]
    fn v0_inherent_methods_read_as_legacy_ones() {
        for (v0, legacy) in [
            ("<demo::Cache>::insert", "demo::Cache::insert"),
            ("<alloc::vec::Vec<u8>>::push", "alloc::vec::Vec<u8>::push"),
            (
                "<demo::Cache as core::fmt::Debug>::fmt",
                "<demo::Cache as core::fmt::Debug>::fmt",
            ),
            (
                "<&str as core::fmt::Display>::fmt",
                "<&str as core::fmt::Display>::fmt",
            ),
            ("<[u8]>::to_vec", "<[u8]>::to_vec"),
            ("demo::f", "demo::f"),
            ("demo::t::{closure#0}", "demo::t::{{closure}}"),
            (
                "<demo::C>::f::{closure#12}::{closure#0}",
                "demo::C::f::{{closure}}::{{closure}}",
            ),
            ("demo::{closure#x}", "demo::{closure#x}"),
            ("<unbalanced", "<unbalanced"),
        ] {
            assert_eq!(inherent_path(v0.to_string()), legacy);
        }
    }
}
