//! Helpers shared by memassert's integration tests.
