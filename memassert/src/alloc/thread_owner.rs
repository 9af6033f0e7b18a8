//! Which scope owns a thread: by construction, from how the thread was
//! started, never from the names of the code it runs.
//!
//! ## The rule
//!
//! A thread started while a scope that owns threads is open — by that
//! scope's thread, or by a thread the scope already owns — belongs to the
//! scope until it closes, whatever the thread runs (a closure, a
//! module-level `fn`, a dependency's code, a pool's or a runtime's worker
//! loop) and whatever debug info the build has. `#[track_alloc]`'s scope
//! also *adopts*, when it opens, the threads its own thread started just
//! before (the runtime `#[tokio::test]` builds before the body runs).
//!
//! Threads started inside one-time initialisation (a `static`'s `OnceLock`,
//! `Once`, `LazyLock`: rayon's global pool, say) are the process's, not the
//! scope's: they outlive the test and serve every test after it.
//!
//! ## How threads are seen starting
//!
//! On Linux this module defines `pthread_create` itself. The executable's
//! own definition wins over the C library's when it is linked (std's
//! `thread::spawn` and `thread::scope`, and every dependency's threads, call
//! it); the real one is reached through `dlsym(RTLD_NEXT)` on glibc and
//! through musl's `__pthread_create` on musl. Under a sanitizer the wrapper
//! is not built (`build.rs`): the sanitizer's runtime intercepts
//! `pthread_create` itself and must see every thread start, and its
//! interceptor cannot be reached from here. The wrapper hands the new thread a
//! *record* in a fixed table (no allocation: it runs inside `thread::spawn`,
//! between std's own allocations), and starts it through a trampoline that
//! tells the thread which record is its own, then runs the real start
//! routine. The record holds the owning scope (a [`ScopeRef`], checked
//! against the scope's generation wherever it is charged, so a record
//! outliving its scope never charges a stranger), the creating thread, the
//! stack that started it (for reports) and the kernel thread id (to tell
//! when the thread is really gone, its thread-local destructors included).
//!
//! The linker keeps the definition because [`owner`] — called on every
//! tracked allocation — lives in the same module, so the object that holds
//! one holds the other.
//!
//! Elsewhere (macOS, Windows, sanitized builds) no thread is owned by
//! construction: the scope's other rules (names, one test per process)
//! apply; README, "Platforms", says so.
//!
//! ## Quiescence
//!
//! Threads started in a scope and not joined may still be finishing when
//! the body returns (a pool's `Drop` that does not wait for its workers).
//! [`running_started_in`] counts those still alive, so a leak gate can wait
//! for them, bounded, before it judges.

// Threads are seen starting only where the wrapper is built (build.rs):
// elsewhere it and what only it calls are not, and the rest reads empty
// records.
#![cfg_attr(not(memassert_thread_wrapper), allow(dead_code))]
use std::cell::Cell;
#[cfg(target_os = "linux")]
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::alloc::scope_registry::ScopeRef;
use crate::base::reentrancy::Guard;
use crate::base::spin_lock::SpinLock;
use crate::capture::stack_table;
use crate::symbols::symbolize;

/// Threads tracked at once; more start untracked (owned by no scope).
const MAX_THREADS: usize = 4096;

const FREE: u8 = 0;
/// Claimed by a creator, not started yet.
const CLAIMED: u8 = 1;
const RUNNING: u8 = 2;
/// Its start routine returned; the kernel thread may still be running its
/// thread-local destructors (`tid` tells when it is gone).
const FINISHING: u8 = 3;

/// No stack recorded.
pub(crate) const NO_STACK: u32 = u32::MAX;

struct Record {
    state: AtomicU8,
    /// The start routine and its argument, until the thread has started.
    start: AtomicUsize,
    arg: AtomicUsize,
    /// Unique per thread started (0: none), and the creator's.
    serial: AtomicU64,
    creator: AtomicU64,
    /// The scope that owns the thread (0: none).
    owner: AtomicU64,
    /// The scope the thread was started in, if it was (0: adopted or none):
    /// the threads a scope waits for before judging leaks.
    started_in: AtomicU64,
    /// The stack that started it plus one (0: not recorded; all-zero
    /// records keep the table in `.bss`).
    stack: AtomicU32,
    /// The kernel's thread id, once started.
    tid: AtomicU64,
    /// Set when the thread registered [`exited`] to run after its
    /// thread-local destructors: the record is then freed by that, not
    /// judged by `tid` (which the kernel reuses).
    exit_hook: std::sync::atomic::AtomicBool,
    /// The creator's name, which an unnamed thread inherits (two halves).
    creator_name: AtomicU64,
    creator_name2: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Record = Record {
    state: AtomicU8::new(FREE),
    start: AtomicUsize::new(0),
    arg: AtomicUsize::new(0),
    serial: AtomicU64::new(0),
    creator: AtomicU64::new(0),
    owner: AtomicU64::new(0),
    started_in: AtomicU64::new(0),
    stack: AtomicU32::new(0),
    tid: AtomicU64::new(0),
    exit_hook: std::sync::atomic::AtomicBool::new(false),
    creator_name: AtomicU64::new(0),
    creator_name2: AtomicU64::new(0),
};

static RECORDS: [Record; MAX_THREADS] = [EMPTY; MAX_THREADS];
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);
/// Threads that a scope should have owned but that started unowned, every
/// record being taken (more than `MAX_THREADS` threads at once).
static LOST: AtomicUsize = AtomicUsize::new(0);

/// How many threads have started unowned for want of a record so far (see
/// [`LOST`]): compared before and after a scope.
pub(crate) fn lost() -> usize {
    LOST.load(Ordering::Relaxed)
}

/// Where the next claim starts looking.
static HINT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // const-initialised and drop-free: readable from the allocator at any
    // point of a thread's life (see `reentrancy`).
    /// This thread's record, plus one (0: started before or outside the
    /// wrapper: the main thread, a thread of a foreign runtime).
    static SELF: Cell<usize> = const { Cell::new(0) };
    /// The scope that threads started on this thread belong to, when a
    /// scope of this thread's own owns threads (0: the thread's own owner).
    static INHERIT: Cell<ScopeRef> = const { Cell::new(0) };
}

fn own_record() -> Option<&'static Record> {
    let index = SELF.try_with(Cell::get).unwrap_or(0);
    (index != 0).then(|| &RECORDS[index - 1])
}

/// The scope that owns this thread, 0 for none. One thread-local read and
/// one relaxed load: called on tracked allocations of threads without a
/// scope of their own.
#[inline(never)]
pub(crate) fn owner() -> ScopeRef {
    match own_record() {
        Some(record) => record.owner.load(Ordering::Acquire),
        None => 0,
    }
}

/// Whether this thread was started by a thread of the program's own (a
/// pool's worker, a runtime's), as opposed to the harness's threads: the
/// main thread and the test threads it starts, or threads started outside
/// the wrapper.
pub(crate) fn started_by_program() -> bool {
    own_record().is_some_and(|r| r.creator.load(Ordering::Relaxed) != 0)
}

/// The scope a thread started here now would belong to.
fn owner_for_new_thread() -> ScopeRef {
    match INHERIT.try_with(Cell::get).unwrap_or(0) {
        0 => owner(),
        scope => scope,
    }
}

fn own_serial() -> u64 {
    own_record().map_or(0, |r| r.serial.load(Ordering::Relaxed))
}

/// Makes `scope` (opened on this thread) the owner of the threads started
/// here from now on, and of those started by them. Returns what
/// [`end`] restores.
pub(crate) fn begin(scope: ScopeRef) -> ScopeRef {
    INHERIT.try_with(|c| c.replace(scope)).unwrap_or(0)
}

/// Gives `scope` the threads this thread started before it opened, and
/// the threads they started, that no scope owns and that are still
/// running (the runtime `#[tokio::test]` builds before the body's scope
/// opens). Threads started inside one-time initialisation are left alone.
pub(crate) fn adopt_started_here(scope: ScopeRef) {
    let me = own_serial();
    if me == 0 {
        return;
    }
    let mut parents = [0u64; 64];
    parents[0] = me;
    let mut count = 1;
    // Breadth first over creators; bounded by the array.
    let mut i = 0;
    while i < count {
        let parent = parents[i];
        for record in RECORDS.iter() {
            let state = record.state.load(Ordering::Acquire);
            if state != RUNNING && state != CLAIMED {
                continue;
            }
            if record.creator.load(Ordering::Relaxed) != parent
                || record.owner.load(Ordering::Relaxed) != 0
            {
                continue;
            }
            if record
                .owner
                .compare_exchange(0, scope, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
                && count < parents.len()
            {
                parents[count] = record.serial.load(Ordering::Relaxed);
                count += 1;
            }
        }
        i += 1;
    }
}

/// Ends what [`begin`] started: threads owned by `scope` go back to
/// `restore` (the scope that owned threads here before), and threads
/// started here belong to `restore` again.
pub(crate) fn end(scope: ScopeRef, restore: ScopeRef) {
    let _ = INHERIT.try_with(|c| c.set(restore));
    for record in RECORDS.iter() {
        if record.state.load(Ordering::Acquire) == FREE {
            continue;
        }
        let _ = record
            .owner
            .compare_exchange(scope, restore, Ordering::AcqRel, Ordering::Relaxed);
        let _ = record
            .started_in
            .compare_exchange(scope, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// A thread started in `scope` that is still running, and the stack that
/// started it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Straggler {
    pub(crate) stack: u32,
}

/// The threads started in `scope` (by its thread or threads it owns) that
/// have not finished: still running their code, or their thread-local
/// destructors. Fills `out` with up to its length of them; returns how many.
pub(crate) fn running_started_in(scope: ScopeRef, out: &mut [Straggler]) -> usize {
    let mut n = 0;
    for record in RECORDS.iter() {
        let state = record.state.load(Ordering::Acquire);
        if state == FREE || record.started_in.load(Ordering::Acquire) != scope {
            continue;
        }
        let alive = match state {
            CLAIMED | RUNNING => true,
            _ if record.exit_hook.load(Ordering::Acquire) => true,
            _ => tid_alive(record.tid.load(Ordering::Acquire)),
        };
        if alive {
            if let Some(slot) = out.get_mut(n) {
                *slot = Straggler {
                    stack: record.stack.load(Ordering::Relaxed).wrapping_sub(1),
                };
            }
            n += 1;
        }
    }
    n
}

#[cfg(target_os = "linux")]
fn tid_alive(tid: u64) -> bool {
    if tid == 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the thread exists in this process.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(target_os = "linux"))]
fn tid_alive(_tid: u64) -> bool {
    false
}

/// Claims a record for a thread about to start; `None` when none is free.
fn claim() -> Option<usize> {
    let start = HINT.load(Ordering::Relaxed);
    for k in 0..MAX_THREADS {
        let i = (start + k) % MAX_THREADS;
        let record = &RECORDS[i];
        let state = record.state.load(Ordering::Acquire);
        let free = state == FREE
            || (state == FINISHING
                && !record.exit_hook.load(Ordering::Acquire)
                && !tid_alive(record.tid.load(Ordering::Acquire)));
        if free
            && record
                .state
                .compare_exchange(state, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            HINT.store(i + 1, Ordering::Relaxed);
            return Some(i);
        }
    }
    None
}

/// Called by the `pthread_create` wrapper before the real one: claims and
/// fills a record for the new thread. `None`: start it as it is.
fn prepare(start: usize, arg: usize) -> Option<usize> {
    let owner = owner_for_new_thread();
    let Some(index) = claim() else {
        if owner != 0 {
            // A thread a scope should own starts unowned: say so, so that
            // its gates fail as unchecked rather than pass.
            LOST.fetch_add(1, Ordering::Relaxed);
        }
        return None;
    };
    let record = &RECORDS[index];
    record.start.store(start, Ordering::Relaxed);
    record.arg.store(arg, Ordering::Relaxed);
    record.creator.store(own_serial(), Ordering::Relaxed);
    record.tid.store(0, Ordering::Relaxed);
    record.stack.store(0, Ordering::Relaxed);
    let name = kernel_name();
    let (a, b) = name.split_at(8);
    record.creator_name.store(
        u64::from_ne_bytes(a.try_into().unwrap_or_default()),
        Ordering::Relaxed,
    );
    record.creator_name2.store(
        u64::from_ne_bytes(b.try_into().unwrap_or_default()),
        Ordering::Relaxed,
    );
    record.serial.store(
        NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
        Ordering::Relaxed,
    );
    let mut owner = owner;
    if owner != 0 {
        // Where it was started (for reports), and whether that was one-time
        // initialisation: then the thread is the process's, not the scope's.
        let (stack, one_time) = thread_start_stack();
        record.stack.store(stack.wrapping_add(1), Ordering::Relaxed);
        if one_time {
            owner = 0;
        }
    }
    record.owner.store(owner, Ordering::Relaxed);
    record.started_in.store(owner, Ordering::Relaxed);
    Some(index)
}

/// The stack starting a thread (for reports), and whether it is one-time
/// initialisation of a `static` (the thread is then the process's).
/// Called inside `pthread_create`, outside any allocation.
fn thread_start_stack() -> (u32, bool) {
    let Some(_guard) = Guard::enter() else {
        return (NO_STACK, false);
    };
    let (stack, _) = stack_table::capture_here();
    (stack, symbolize::starts_threads_once(stack))
}

/// The new thread, before its start routine: takes its record.
fn enter(index: usize) -> (usize, usize) {
    let record = &RECORDS[index];
    let _ = SELF.try_with(|c| c.set(index + 1));
    record.tid.store(gettid(), Ordering::Release);
    record
        .exit_hook
        .store(register_exit_hook(index), Ordering::Release);
    record.state.store(RUNNING, Ordering::Release);
    (
        record.start.load(Ordering::Relaxed),
        record.arg.load(Ordering::Relaxed),
    )
}

/// Registers [`exited`] to run when this thread's thread-local destructors
/// are done (glibc runs them last registered first, and std registers its
/// own later, on first use). `false` where that cannot be done: then the
/// kernel's thread id tells when the thread is gone.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn register_exit_hook(index: usize) -> bool {
    extern "C" {
        fn __cxa_thread_atexit_impl(
            dtor: unsafe extern "C" fn(*mut c_void),
            obj: *mut c_void,
            dso_symbol: *mut c_void,
        ) -> c_int;
    }
    // Any address of ours names the object this code is in (glibc counts
    // its destructors there; a null one would be looked up as nothing).
    let dso = std::ptr::addr_of!(RECORDS) as *mut c_void;
    // SAFETY: registers a destructor that only stores to a static record;
    // glibc keeps the registration (its own calloc, not ours).
    unsafe { __cxa_thread_atexit_impl(exited, (index + 1) as *mut c_void, dso) == 0 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn register_exit_hook(_index: usize) -> bool {
    false
}

/// The thread is gone but for its stack: its record is free again.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" fn exited(index: *mut c_void) {
    let record = &RECORDS[index as usize - 1];
    record.exit_hook.store(false, Ordering::Release);
    record.state.store(FREE, Ordering::Release);
}

/// The thread's start routine has returned.
fn leave(index: usize) {
    RECORDS[index].state.store(FINISHING, Ordering::Release);
}

/// The record of a thread that failed to start.
fn release(index: usize) {
    RECORDS[index].state.store(FREE, Ordering::Release);
}

#[cfg(target_os = "linux")]
fn gettid() -> u64 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

#[cfg(not(target_os = "linux"))]
fn gettid() -> u64 {
    0
}

// ---- the wrapper (Linux, not under a sanitizer: build.rs) ----
#[cfg(memassert_thread_wrapper)]
type Start = extern "C" fn(*mut c_void) -> *mut c_void;
#[cfg(memassert_thread_wrapper)]
type Create = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    Start,
    *mut c_void,
) -> c_int;

#[cfg(all(memassert_thread_wrapper, not(target_env = "musl")))]
/// The `pthread_create` the wrapper forwards to (0: not looked up yet).
static REAL: AtomicUsize = AtomicUsize::new(0);

#[cfg(all(memassert_thread_wrapper, target_env = "musl"))]
extern "C" {
    fn __pthread_create(
        native: *mut libc::pthread_t,
        attr: *const libc::pthread_attr_t,
        f: Start,
        value: *mut c_void,
    ) -> c_int;
}

#[cfg(all(memassert_thread_wrapper, target_env = "musl"))]
fn real() -> Option<Create> {
    Some(__pthread_create)
}

#[cfg(all(memassert_thread_wrapper, not(target_env = "musl")))]
fn real() -> Option<Create> {
    let mut address = REAL.load(Ordering::Acquire);
    if address == 0 {
        // A sanitizer runtime linked into the program intercepts
        // `pthread_create` under its own name: go through it, or it
        // would not know the thread. Otherwise, the C library's.
        for name in [
            c"___interceptor_pthread_create",
            c"__interceptor_pthread_create",
        ] {
            // SAFETY: looks a symbol up by a NUL-terminated name.
            address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
            if address != 0 {
                break;
            }
        }
        if address == 0 {
            // SAFETY: as above; RTLD_NEXT skips this executable's own
            // definition (this function's caller).
            address = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        }
        if address == 0 {
            return None;
        }
        REAL.store(address, Ordering::Release);
    }
    // SAFETY: `address` is the C library's (or the sanitizer's)
    // `pthread_create`, whose signature this is.
    Some(unsafe { std::mem::transmute::<usize, Create>(address) })
}

#[cfg(memassert_thread_wrapper)]
/// The program's `pthread_create`: starts the thread through
/// [`trampoline`] with a record saying who started it (module docs).
/// Allocates nothing.
///
/// # Safety
///
/// As the C library's `pthread_create`.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    native: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    f: Start,
    value: *mut c_void,
) -> c_int {
    let Some(real) = real() else {
        return libc::EAGAIN;
    };
    let Some(index) = prepare(f as usize, value as usize) else {
        // SAFETY: forwarded unchanged.
        return unsafe { real(native, attr, f, value) };
    };
    // SAFETY: the caller's arguments, with our start routine, whose
    // argument is the record index plus one (never null).
    let rc = unsafe { real(native, attr, trampoline, (index + 1) as *mut c_void) };
    if rc != 0 {
        release(index);
    }
    rc
}

#[cfg(memassert_thread_wrapper)]
extern "C" fn trampoline(index: *mut c_void) -> *mut c_void {
    let index = index as usize - 1;
    let (f, value) = enter(index);
    // SAFETY: `f` was the caller's start routine, stored as a usize by
    // `prepare` from a value of this very type.
    let f = unsafe { std::mem::transmute::<usize, Start>(f) };
    let out = f(value as *mut c_void);
    leave(index);
    out
}

// ---- thread names, for reports ----

/// Distinct thread names kept for reports; more read as `<other>`.
const MAX_NAMES: usize = 255;

struct Names {
    len: usize,
    names: [[u8; 16]; MAX_NAMES],
}

static NAMES: SpinLock<Names> = SpinLock::new(Names {
    len: 0,
    names: [[0; 16]; MAX_NAMES],
});

thread_local! {
    /// This thread's name id, plus one (0: not read yet).
    static NAME_ID: Cell<u16> = const { Cell::new(0) };
}

/// This thread's name as an id for [`thread_name`] (never 0). Reads the
/// kernel's name for the thread once (no allocation), and interns it.
pub(crate) fn name_id() -> u16 {
    let known = NAME_ID.try_with(Cell::get).unwrap_or(0);
    if known != 0 {
        return known;
    }
    let name = own_name();
    let mut names = NAMES.lock();
    let len = names.len;
    let id = match names.names[..len].iter().position(|n| *n == name) {
        Some(i) => i + 1,
        None if len < MAX_NAMES => {
            names.names[len] = name;
            names.len += 1;
            len + 1
        }
        None => MAX_NAMES + 1,
    } as u16;
    drop(names);
    let _ = NAME_ID.try_with(|c| c.set(id));
    id
}

/// The name of the thread of name id `id` (see [`name_id`]).
pub(crate) fn thread_name(id: u16) -> String {
    let names = NAMES.lock();
    let Some(name) = names.names[..names.len].get(usize::from(id).wrapping_sub(1)) else {
        return "<other>".to_string();
    };
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    match std::str::from_utf8(&name[..end]) {
        Ok("") | Err(_) => "<unnamed>".to_string(),
        Ok(s) => s.to_string(),
    }
}

/// The kernel's name for this thread, or empty when it only carries its
/// creator's (an unnamed thread inherits the name of the one that started
/// it on Linux).
#[cfg(target_os = "linux")]
fn kernel_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included.
    unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            name.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    name
}

#[cfg(not(target_os = "linux"))]
fn kernel_name() -> [u8; 16] {
    [0; 16]
}

#[cfg(target_os = "linux")]
fn own_name() -> [u8; 16] {
    let name = kernel_name();
    if let Some(record) = own_record() {
        let creator = record.creator_name.load(Ordering::Relaxed).to_ne_bytes();
        let creator2 = record.creator_name2.load(Ordering::Relaxed).to_ne_bytes();
        if name[..8] == creator && name[8..] == creator2 {
            return [0; 16];
        }
    }
    name
}

#[cfg(not(target_os = "linux"))]
fn own_name() -> [u8; 16] {
    [0; 16]
}
