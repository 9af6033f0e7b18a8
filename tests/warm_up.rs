// What the tracker loads once per process (the unwinder's module list, the
// symbol tables that classification reads) is loaded when `#[track_alloc]`
// opens its scope, not on the body's first allocation (issue 19): a timing
// test must not measure it as its own. Timed figures are printed by
// `cargo run --release --example first_alloc`; this test checks the cause,
// without timing: the body's allocations, on its own thread and on others,
// make no one-time load.

use memassert::__private::one_time_loads;
use memassert::track_alloc;
use memassert_tests::run_alone;

memassert::install!();

#[inline(never)]
fn elsewhere() -> Vec<String> {
    (0..10).map(|i| i.to_string()).collect()
}

#[test]
#[ignore = "run alone in its own process by the test below"]
#[track_alloc(leaks = "0B")]
fn body_makes_no_one_time_load() {
    let before = one_time_loads();
    assert!(before > 0, "the scope's opening loaded nothing");
    let first = std::hint::black_box(Box::new(1u64));
    let more = elsewhere();
    let on_another_thread = std::thread::spawn(|| elsewhere().len()).join().unwrap();
    assert_eq!(more.len() + on_another_thread + *first as usize, 21);
    assert_eq!(
        one_time_loads(),
        before,
        "the body loaded what the scope's opening should have"
    );
    // Telling std's work from the body's needs no debug info here: the
    // symbol tables suffice, and a passing test reads none (issue 20). With
    // std's symbols legacy-mangled (older toolchains) the warm-up read it,
    // before the body. From Rust 1.95, std is v0-mangled on every Linux
    // target we run (its exported symbols are all `_R`): there the cheap
    // path must be the one taken, or this check would prove nothing.
    #[cfg(target_os = "linux")]
    if env!("MEMASSERT_TESTS_RUSTC_MINOR").parse::<u32>().unwrap() >= 95 {
        assert!(
            memassert::__private::symbol_tables_suffice(),
            "std's symbols read as legacy-mangled on Rust 1.95 or later"
        );
    }
    #[cfg(target_os = "linux")]
    if memassert::__private::symbol_tables_suffice() {
        assert_eq!(
            memassert::__private::debug_info_reads(),
            0,
            "a passing test read debug info"
        );
    } else {
        assert!(memassert::__private::debug_info_reads() > 0);
    }
    if std::env::var_os("MEMASSERT_PLANT").is_some() {
        std::mem::forget(std::hint::black_box(vec![0u8; 64 << 10]));
    }
}

#[test]
fn one_time_loading_happens_before_the_body() {
    let (passed, text) = run_alone("body_makes_no_one_time_load", &[]);
    assert!(passed, "{text}");
    // The warm-up's own allocations are not the body's; a leak planted in
    // the body is.
    let (passed, text) = run_alone("body_makes_no_one_time_load", &[("MEMASSERT_PLANT", "1")]);
    assert!(
        !passed && text.contains("memassert: leaked 64 KiB in 1 block exceeds leaks 0B"),
        "{text}"
    );
}
