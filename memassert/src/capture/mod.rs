//! Capture: raw stacks, as return addresses only (no symbols).
//!
//! Owns the stack walkers (system unwinder, cached DWARF rules, frame
//! pointers), each thread's last DWARF walk (for the next capture to take
//! over), the bounds of each thread's stack, the list of loaded objects,
//! and the interned stack table (`StackId`). May use `base` only.

#[cfg(memassert_cached_dwarf)]
pub(crate) mod dwarf_unwind;
#[cfg(memassert_frame_pointers)]
pub(crate) mod frame_walk;
#[cfg(target_os = "linux")]
pub(crate) mod loaded_objects;
pub(crate) mod sink;
pub(crate) mod stack_capture;
pub(crate) mod stack_table;
#[cfg(not(memassert_frame_pointers))]
pub(crate) mod system_unwind;
#[cfg(any(memassert_frame_pointers, memassert_cached_dwarf))]
pub(crate) mod thread_stack;
#[cfg(memassert_cached_dwarf)]
pub(crate) mod walk_memo;
