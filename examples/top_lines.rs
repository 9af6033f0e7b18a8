//! The tracemalloc walk-through's `display_top`: the top 10 lines after
//! allocating 100 MiB, then again after allocating 100 MiB more.
//!
//! Run with `cargo run --example top_lines`.

use memassert::Key;

memassert::install!();

fn allocate_bytes(size: usize) -> Vec<u8> {
    vec![b'x'; size]
}

fn display_top(key: Key, limit: usize) {
    let snapshot = memassert::take_snapshot();
    let top_stats = snapshot.statistics(key);

    println!("Top {limit} lines");
    for (index, stat) in top_stats.iter().take(limit).enumerate() {
        let frame = stat.traceback.site();
        let kib = stat.size as f64 / 1024.0;
        println!(
            "#{}: {}:{}: {kib:.1} KiB",
            index + 1,
            frame.file,
            frame.line
        );
        if let Some(line) = frame.source_line() {
            println!("    {line}");
        }
    }
    let total: usize = top_stats.iter().map(|stat| stat.size).sum();
    println!("Total allocated size: {:.1} KiB", total as f64 / 1024.0);
}

fn main() {
    memassert::start(1);
    let a = allocate_bytes(100 * 1024 * 1024);
    display_top(Key::Line, 10);
    println!("==============================================");
    let b = allocate_bytes(100 * 1024 * 1024);
    display_top(Key::Line, 10);
    drop((a, b));
}
