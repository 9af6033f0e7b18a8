//! Scopes that count other threads' work without owning the threads:
//! all-threads scopes (every thread without a scope of its own: one test
//! per process), and scopes that follow a function's code onto threads by
//! the names of its frames (a pool or runtime older than the test, beside
//! other tests). Threads owned by construction are `thread_owner`'s.
//!
//! - **All-threads.** The innermost open all-threads scope takes what
//!   threads without a scope of their own allocate; several open at once on
//!   different threads do not share it out (the latest opened gets it).
//! - **Following by name.** A stack is resolved once per following scope,
//!   outside our locks, and the answer kept in the scope's state.
//! - **Unclaimed work.** Allocations no scope could claim, on threads the
//!   program started, are counted, so that a scope that cannot follow by
//!   name (no debug info) can say its figures cannot be checked.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::alloc::scope_counters::NO_STACK;
use crate::alloc::scope_slots::{own, with_open, ScopeRef};
use crate::capture::stack_table::{self, Class, StackId};
use crate::symbols::symbolize;

/// The innermost open all-threads scope, counted by threads with no scope
/// of their own (0: none).
static ALL_THREADS: AtomicU64 = AtomicU64::new(0);
/// Every open all-threads scope, oldest first: its top is `ALL_THREADS`.
/// Only touched when such a scope opens or closes.
static ALL_THREADS_OPEN: Mutex<Vec<ScopeRef>> = Mutex::new(Vec::new());

/// Most scopes following a function's code at once (one per test running).
const MAX_FOLLOWERS: usize = 64;
/// Open scopes that follow a function's code onto other threads (0: free).
static FOLLOWERS: [AtomicU64; MAX_FOLLOWERS] = [const { AtomicU64::new(0) }; MAX_FOLLOWERS];
/// How many entries of `FOLLOWERS` are in use.
static FOLLOWING: AtomicUsize = AtomicUsize::new(0);

/// The innermost open all-threads scope, 0 for none.
#[inline]
pub(crate) fn all_threads() -> ScopeRef {
    ALL_THREADS.load(Ordering::Acquire)
}

/// How many open scopes follow code onto other threads.
#[inline]
pub(crate) fn followers() -> usize {
    FOLLOWING.load(Ordering::Acquire)
}

/// True when some open scope follows a function's code onto other threads.
#[inline]
pub(crate) fn following() -> bool {
    FOLLOWING.load(Ordering::Acquire) != 0
}

/// The open scope whose followed code `stack` runs, 0 for none. Resolves
/// the stack's symbols the first time each scope sees it (no lock of ours
/// held meanwhile), then remembers.
pub(crate) fn follower_of(stack: StackId) -> ScopeRef {
    if stack == NO_STACK {
        return 0;
    }
    for follower in &FOLLOWERS {
        let scope = follower.load(Ordering::Acquire);
        if scope == 0 {
            continue;
        }
        let known = with_open(scope, |s| match s.follow_cache.get(&stack) {
            Some(&runs) => Ok(runs),
            None => Err(s.follow.clone()),
        });
        let runs = match known {
            None => false,
            Some(Ok(runs)) => runs,
            Some(Err(None)) => false,
            Some(Err(Some(path))) => {
                let runs = symbolize::runs_code_of(stack, &path);
                with_open(scope, |s| s.follow_cache.insert(stack, runs));
                runs
            }
        };
        if runs {
            return scope;
        }
    }
    0
}

/// The scope this thread's allocations count in, 0 for none (scopes that
/// follow code onto other threads aside: see [`follower_of`]).
#[inline]
pub(crate) fn current() -> ScopeRef {
    match own() {
        0 => all_threads(),
        r => r,
    }
}

/// True when allocations with this stack never count in scopes (std or the
/// harness working on the body's behalf). Resolved once per stack.
pub(crate) fn excluded(stack: StackId, known: Class) -> bool {
    let class = match known {
        Class::Unknown => {
            let class = symbolize::classify(stack);
            stack_table::remember_class(stack, class);
            class
        }
        known => known,
    };
    class == Class::Excluded
}

/// Allocations, outside std's work, made by threads that no scope owns and
/// that run no followed code by name, while scopes follow code by name.
static UNCLAIMED: AtomicUsize = AtomicUsize::new(0);

/// Counts an allocation no scope could claim (see [`UNCLAIMED`]).
pub(crate) fn note_unclaimed(stack: StackId, class: Class) {
    if !excluded(stack, class) {
        UNCLAIMED.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many allocations no scope could claim so far (see [`UNCLAIMED`]):
/// compared before and after a scope, it says whether other threads did
/// work that scope could not tell apart without names.
pub(crate) fn unclaimed() -> usize {
    UNCLAIMED.load(Ordering::Relaxed)
}

/// Makes `scope` a follower; `false` when `MAX_FOLLOWERS` already are.
pub(crate) fn follow(scope: ScopeRef) -> bool {
    let followed = FOLLOWERS.iter().any(|f| {
        f.compare_exchange(0, scope, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    });
    if followed {
        FOLLOWING.fetch_add(1, Ordering::AcqRel);
    }
    followed
}

/// `scope` no longer follows code (step (1) of its close).
pub(crate) fn unfollow(scope: ScopeRef) {
    for f in &FOLLOWERS {
        if f.compare_exchange(scope, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            FOLLOWING.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// `scope` becomes the innermost open all-threads scope.
pub(crate) fn open_all_threads(scope: ScopeRef) {
    let mut open = ALL_THREADS_OPEN.lock().unwrap_or_else(|e| e.into_inner());
    open.push(scope);
    ALL_THREADS.store(scope, Ordering::Release);
}

/// `scope` is no longer an all-threads scope (step (1) of its close).
pub(crate) fn close_all_threads(scope: ScopeRef) {
    let mut open = ALL_THREADS_OPEN.lock().unwrap_or_else(|e| e.into_inner());
    open.retain(|&r| r != scope);
    ALL_THREADS.store(open.last().copied().unwrap_or(0), Ordering::Release);
}
