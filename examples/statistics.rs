//! The tracemalloc walk-through, case 2: the top 10 lines, printed with
//! `Display` as tracemalloc prints `Statistic`.
//!
//! Run with `cargo run --example statistics`.

use memassert::Key;

memassert::install!();

fn allocate_bytes(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

fn main() {
    memassert::start(1);

    let a = allocate_bytes(100 * 1024 * 1024);

    let snapshot = memassert::take_snapshot();
    let top_stats = snapshot.statistics(Key::Line);

    for stat in top_stats.iter().take(10) {
        println!("{stat}");
    }
    drop(a);
}
