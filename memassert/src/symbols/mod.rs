//! Symbols: from addresses to frames people can read.
//!
//! Owns symbolization (the private debug-info cache, site detection, the
//! follow-mode classification of a stack), the [`Frame`](traceback::Frame)
//! and [`Traceback`](traceback::Traceback) data types, workspace-relative
//! paths, source lines, site patterns (globs, `file:line`, function paths), the suppressions
//! (known infrastructure, users' patterns)
//! and the debug-info index that checks them. May use `base` and `capture`.

pub(crate) mod debug_index;
pub(crate) mod paths;
pub(crate) mod pattern;
pub(crate) mod source_lines;
pub(crate) mod suppressions;
#[cfg(memassert_private_symbols)]
pub(crate) mod symbol_source;
#[cfg(all(memassert_private_symbols, target_os = "linux"))]
pub(crate) mod symbol_table;
pub(crate) mod symbolize;
pub(crate) mod traceback;
pub(crate) mod warm_up;
