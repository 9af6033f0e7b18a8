//! What the start-up children share: one test's worth of work, as a
//! process that cargo-nextest starts for a single test runs it.

use std::hint::black_box;
use std::time::Instant;

/// The test body: one small allocation, freed.
pub fn body() {
    drop(black_box(Box::new([7u8; 16])));
}

/// Runs the body through `harness` (which wraps it as the allocator's test
/// support would), checks the arguments a test runner passes (`--exact
/// NAME`), and prints the time from `main` to the end of the test, in
/// microseconds.
pub fn child(harness: impl FnOnce(&mut dyn FnMut())) {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert_eq!(
        args.first().map(String::as_str),
        Some("--exact"),
        "run by the `startup` example"
    );
    harness(&mut body);
    println!("main_to_end_us={}", started.elapsed().as_micros());
}
