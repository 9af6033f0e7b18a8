//! One-time loading, done when a scope opens rather than inside its body.
//!
//! The tracker loads a few things once per process: the module list its
//! DWARF unwinder walks with, and the symbol tables (on Linux; the debug
//! info elsewhere) that classification reads to tell std's work from the
//! body's. Loaded lazily, they land on the first tracked allocation, inside
//! the body, where a timing test measures them as its own. [`warm_up`]
//! loads them before the body runs, so a body's first allocation costs
//! what a later new site costs.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::base::reentrancy::Guard;
use crate::capture::stack_table;
use crate::symbols::symbolize;

/// Whether the debug info has been loaded once (the module list is checked
/// on every call: objects may have been loaded since).
static SYMBOLS_WARM: AtomicBool = AtomicBool::new(false);

/// Loads what the tracker needs once, before a scope's body runs: the
/// unwinder's module list (rebuilt if objects were loaded since), and, the
/// first time, what classifying a stack reads for the objects on this
/// thread's stack (the program itself, std within it, the C library), by
/// capturing this stack and naming its frames as an allocation's would be.
/// Its allocations are the tracker's own (untracked).
pub(crate) fn warm_up() {
    let Some(_untracked) = Guard::enter() else {
        return;
    };
    #[cfg(memassert_cached_dwarf)]
    crate::capture::dwarf_unwind::warm_up();
    if SYMBOLS_WARM.swap(true, Ordering::Relaxed) {
        return;
    }
    let (stack, _) = stack_table::capture_here();
    symbolize::warm(stack);
}

/// One-time loads so far (module lists built, objects' symbol tables or
/// debug info opened, loader lists walked): a body that runs after
/// [`warm_up`] adds none.
pub(crate) fn one_time_loads() -> usize {
    #[allow(unused_mut)]
    let mut loads = 0;
    #[cfg(memassert_cached_dwarf)]
    {
        loads += crate::capture::dwarf_unwind::builds();
    }
    #[cfg(memassert_private_symbols)]
    {
        loads += crate::symbols::symbol_source::loads();
    }
    loads
}

/// Whether the warm-up left telling std's work from the body's to the
/// symbol tables alone (Linux, std built with v0-mangled symbols): then a
/// passing test reads no debug info. Elsewhere the warm-up read it before
/// the body.
pub(crate) fn symbol_tables_suffice() -> bool {
    symbolize::symbol_tables_suffice()
}

/// Objects whose debug info memassert's own symbolizer has opened so far.
pub(crate) fn debug_info_reads() -> usize {
    #[cfg(memassert_private_symbols)]
    {
        crate::symbols::symbol_source::debug_info_reads()
    }
    #[cfg(not(memassert_private_symbols))]
    {
        0
    }
}
