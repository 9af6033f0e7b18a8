//! Reports: what a scope measured, and its text.
//!
//! Owns [`Report`](report::Report), its rendering for failure messages, the
//! insta snapshot text, the export formats, and the suite records
//! (`MEMASSERT_REPORT`). May use every layer below:
//! `base`, `size`, `capture`, `symbols`, `alloc` and `tracemalloc`.

pub(crate) mod export;
pub(crate) mod not_counted;
pub(crate) mod report;
pub(crate) mod report_render;
pub(crate) mod report_snapshot;
pub(crate) mod suite_record;
