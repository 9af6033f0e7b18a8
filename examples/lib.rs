//! Code shared by memassert's examples.
