//! Alloc: the `GlobalAlloc` hot path and the state it keeps.
//!
//! Owns the [`Tracker`](tracker::Tracker), the recording it hands off to,
//! tracing's settings and the `MEMASSERT_TRACEMALLOC` start-up switch,
//! the live-block table, the registry of open scopes with their exact
//! counters, and the test-only pause points inside that protocol. May use
//! `base`, `capture` and `symbols` (a new stack is classified for
//! all-threads scopes from inside the allocator).

pub(crate) mod live_table;
pub(crate) mod pause_points;
pub(crate) mod recording;
pub(crate) mod scope_counters;
pub(crate) mod scope_fast;
pub(crate) mod scope_following;
pub(crate) mod scope_registry;
pub(crate) mod scope_slots;
pub(crate) mod thread_owner;
pub(crate) mod trace_config;
pub(crate) mod tracker;
