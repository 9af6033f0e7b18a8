//! The tracemalloc walk-through, case 1: the traceback of the biggest block.
//!
//! Run with `cargo run --example traceback`.

use memassert::Key;

memassert::install!();

fn allocate_bytes(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

fn main() {
    memassert::start(25);

    let a = allocate_bytes(100 * 1024 * 1024);

    let snapshot = memassert::take_snapshot();
    let top_stats = snapshot.statistics(Key::Traceback);

    // pick the biggest memory block
    let stat = &top_stats[0];
    println!(
        "{} memory blocks: {:.1} KiB",
        stat.count,
        stat.size as f64 / 1024.0
    );
    for line in stat.traceback.format(None, true) {
        println!("{line}");
    }
    drop(a);
}
