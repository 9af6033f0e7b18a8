//! Procedural macros for [memassert](https://docs.rs/memassert): the
//! `#[track_alloc(...)]` test attribute.
//!
//! Use it through the runtime crate, as `#[memassert::track_alloc(...)]`, on a
//! test function, stacked with `#[test]`, `#[tokio::test]`, `#[should_panic]`,
//! `#[ignore]` or a test returning `Result`. It wraps the body in a memassert
//! scope and asserts when the body ends. Every argument is optional; a bare
//! `#[track_alloc]` only measures.
//!
//! | argument | value | asserts or sets |
//! | --- | --- | --- |
//! | `max = "1 MiB"` | size | peak live bytes allocated in the body ≤ limit |
//! | `leaks = "0B"` | size | bytes allocated in the body and still live after it ≤ limit |
//! | `allocs = 0` | integer | number of allocations in the body ≤ limit |
//! | `total = "10MiB"` | size | cumulative bytes allocated ≤ limit |
//! | `no_growth = "src/cache.rs"` | string or `["a.rs", "b.rs:12"]`, repeatable | no net growth of live bytes at matching sites (`file`, `file:line` or a function path) |
//! | `ignore = "mycrate::pool::Registry::grow"` | function path or an array of them, repeatable | the `leaks` gate does not count blocks allocated under these functions (infrastructure kept for the process); a failure report lists them as "Not counted" |
//! | `repeat = 5` | integer ≥ 1 | run the body that many times (default 1) |
//! | `frames = 16` | integer ≥ 1 | traceback depth (default 16) |
//! | `top = 10` | integer ≥ 1 | sites shown in a report (default 10) |
//! | `threads = "all"` | `"current"` or `"all"` | whose allocations count (default `"current"`) |
//! | `snapshot` or `snapshot = "name"` | flag or string | record the report as an insta snapshot, named after the function by default |
//!
//! Sizes are strings: a number (fractions allowed, rounded down to whole
//! bytes; `_` separators allowed) followed by `B`, `KB`, `MB`, `GB`, `TB`
//! (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), with
//! optional spaces and case-insensitive units; a bare number is bytes.
//!
//! A malformed size, an unknown, duplicated (except `no_growth` and `ignore`) or mistyped
//! argument, and placing the attribute on anything but a function are
//! compile errors pointing at the offending tokens.
//!
//! ```ignore
//! #[memassert::track_alloc(max = "1 MiB", leaks = "0B", repeat = 3)]
//! #[test]
//! fn cache_stays_small() {
//!     // ...
//! }
//! ```

#![warn(missing_docs)]

mod args;
mod expand;
mod size;

use proc_macro::TokenStream;

/// Measures a test function's allocations and asserts limits on them.
///
/// See the [crate documentation](crate) for the arguments. The function keeps
/// its attributes, visibility, signature and name; its body runs inside
/// `memassert::__private::run_test` (or `run_test_async` for an `async fn`),
/// so a `return` or `?` in the body behaves as before.
///
/// ```ignore
/// #[memassert::track_alloc(allocs = 0)]
/// #[test]
/// fn hot_path_does_not_allocate() {
///     let mut sum = 0u64;
///     for i in 0..1000 {
///         sum += i;
///     }
///     assert_eq!(sum, 499_500);
/// }
/// ```
#[proc_macro_attribute]
pub fn track_alloc(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::track_alloc(args.into(), item.into()).into()
}
