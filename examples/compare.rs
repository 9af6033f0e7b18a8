//! The tracemalloc walk-through, case 3: what changed between two
//! snapshots, printed as tracemalloc prints `StatisticDiff`.
//!
//! Run with `cargo run --example compare`.

use memassert::Key;

memassert::install!();

fn allocate_bytes(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

fn main() {
    memassert::start(1);

    let snapshot1 = memassert::take_snapshot();
    let a = allocate_bytes(100 * 1024 * 1024);
    // Small blocks of our own, so the table has more than one line.
    let names: Vec<String> = (0..2).map(|i| format!("name {i}")).collect();
    let snapshot2 = memassert::take_snapshot();

    let top_stats = snapshot2.compare_to(&snapshot1, Key::Line);

    for stat in top_stats.iter().take(10) {
        println!("{stat}");
    }
    drop((a, names));
}
