//! What a tracked body's first allocation costs, against its next ones.
//!
//! Run with `cargo run --release --example first_alloc` (each run is a
//! fresh process: the one-time loading happens in it). Everything memassert
//! loads once (the unwind tables, the module list, the symbol tables that
//! tell std's work from the body's) is loaded when the scope opens, so the
//! body's first allocation costs what a new site costs later.

use std::hint::black_box;
use std::time::{Duration, Instant};

memassert::install!();

#[inline(never)]
fn first() -> Box<[u8; 16]> {
    black_box(Box::new([1u8; 16]))
}

#[inline(never)]
fn second() -> Box<[u8; 16]> {
    black_box(Box::new([2u8; 16]))
}

#[inline(never)]
fn third() -> Box<[u8; 16]> {
    black_box(Box::new([3u8; 16]))
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // As `#[track_alloc(leaks = "1 KiB")]` on a test runs its body (the
    // attribute expands to this call).
    let spec = memassert::__private::TestSpec {
        test: "first_alloc::main",
        file: file!(),
        leaks: Some(1024),
        ..memassert::__private::TestSpec::DEFAULT
    };
    let started = Instant::now();
    let mut opened = Duration::ZERO;
    let mut times = [Duration::ZERO; 4];
    memassert::__private::run_test(&spec, || {
        opened = started.elapsed();
        let (a, t1) = timed(first);
        let (b, t2) = timed(second);
        let (c, t3) = timed(first);
        let (d, t4) = timed(third);
        drop((a, b, c, d));
        times = [t1, t2, t3, t4];
    });
    println!(
        "scope open (loads what the tracker needs once): {}",
        ms(opened)
    );
    println!(
        "first allocation in the body (a new site):      {}",
        ms(times[0])
    );
    println!(
        "second allocation (another new site):           {}",
        ms(times[1])
    );
    println!(
        "the first site again:                           {}",
        ms(times[2])
    );
    println!(
        "a third new site:                               {}",
        ms(times[3])
    );
}
