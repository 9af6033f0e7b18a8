//! Tracemalloc: the mirror of Python's `tracemalloc` module.
//!
//! Owns the module-level functions (`start`, `take_snapshot`, ...),
//! [`Snapshot`](snapshot::Snapshot), its statistics and diffs, [`Filter`](filter::Filter),
//! and the snapshot file format. May use `base`, `size`, `capture`,
//! `symbols` and `alloc`.

pub(crate) mod filter;
pub(crate) mod mirror;
pub(crate) mod snapshot;
pub(crate) mod snapshot_file;
pub(crate) mod statistics;
