//! Base: leaf utilities every other layer may use.
//!
//! Owns the per-thread reentrancy guard that keeps memassert's own
//! bookkeeping untracked, the address hasher the tables share, and the spin
//! lock the allocator hot path takes.
//! Imports nothing from the crate (`size.rs`, at the crate root, is the same
//! kind of leaf).

pub(crate) mod addr_hash;
pub(crate) mod reentrancy;
pub(crate) mod spin_lock;
