// `threads = "all"` on rayon's pool's first use, clean body: the registry
// and its workers' start-up are the pool's, not the body's. One test in
// this binary.

use rayon::prelude::*;

memassert::install!();

#[test]
#[memassert::track_alloc(threads = "all", leaks = "0B")]
fn rayon_first_use_all_threads_passes() {
    let strings: Vec<String> = (0..50_000).into_par_iter().map(|i| i.to_string()).collect();
    assert_eq!(strings.len(), 50_000);
}
