//! Snapshot statistics on real allocations: ordering, grouping by line, file
//! and traceback, cumulative statistics, compare_to, and their text.
//!
//! Every figure is taken from a snapshot filtered to this file, so what
//! libtest's threads allocate meanwhile does not count.

use memassert::{format_size, Key, Snapshot};

mod tracker_support;
use tracker_support::{only, Tracing};

memassert::install!();

const FILE: &str = file!();

/// Two blocks from two lines; returns the lines.
fn helper(n: usize) -> (Vec<u8>, Vec<u8>, [u32; 2]) {
    let small: Vec<u8> = Vec::with_capacity(n);
    let big: Vec<u8> = Vec::with_capacity(2 * n);
    (small, big, [line!() - 2, line!() - 1])
}

fn caller_one() -> (Vec<u8>, Vec<u8>, [u32; 3]) {
    let (a, b, [small, big]) = helper(100);
    (a, b, [small, big, line!() - 1])
}

fn caller_two() -> (Vec<u8>, Vec<u8>, [u32; 3]) {
    let (a, b, [small, big]) = helper(1000);
    (a, b, [small, big, line!() - 1])
}

fn lines_of(stats: &[memassert::Statistic]) -> Vec<(u32, usize, usize)> {
    stats
        .iter()
        .map(|s| (s.traceback.site().line, s.size, s.count))
        .collect()
}

#[test]
fn group_by_line_merges_callers() {
    let _t = Tracing::start(5);
    let one = caller_one();
    let two = caller_two();
    let [small, big, _] = one.2;
    let snap = only(&memassert::take_snapshot(), FILE);
    let stats = snap.statistics(Key::Line);
    assert_eq!(lines_of(&stats), [(big, 2200, 2), (small, 1100, 2)]);
    for stat in &stats {
        assert_eq!(stat.traceback.len(), 1, "a Line key is one frame");
        assert_eq!(stat.traceback.site().file, FILE);
        assert!(stat.traceback.site().function.ends_with("helper"));
    }
    assert_eq!(
        stats[0].to_string(),
        format!("{FILE}:{big}: size=2200 B, count=2, average=1100 B")
    );
    assert_eq!(
        stats[1].to_string(),
        format!("{FILE}:{small}: size=1100 B, count=2, average=550 B")
    );
    drop((one, two));
}

#[test]
fn group_by_traceback_separates_callers() {
    let _t = Tracing::start(5);
    let one = caller_one();
    let call_one = line!() - 1;
    let two = caller_two();
    let call_two = line!() - 1;
    let [small, big, via_one] = one.2;
    let via_two = two.2[2];
    let snap = only(&memassert::take_snapshot(), FILE);
    let stats = snap.statistics(Key::Traceback);
    let keys: Vec<(Vec<u32>, usize, usize)> = stats
        .iter()
        .map(|s| {
            let lines = s.traceback.frames()[..3].iter().map(|f| f.line).collect();
            (lines, s.size, s.count)
        })
        .collect();
    assert_eq!(
        keys,
        [
            (vec![big, via_two, call_two], 2000, 1),
            (vec![small, via_two, call_two], 1000, 1),
            (vec![big, via_one, call_one], 200, 1),
            (vec![small, via_one, call_one], 100, 1),
        ]
    );
    for stat in &stats {
        assert!(stat.traceback.len() <= 5);
        assert!(
            stat.traceback.frames()[1].function.ends_with("caller_one")
                || stat.traceback.frames()[1].function.ends_with("caller_two")
        );
    }
    // The text of a traceback statistic names the site.
    assert_eq!(
        stats[0].to_string(),
        format!("{FILE}:{big}: size=2000 B, count=1, average=2000 B")
    );
    drop((one, two));
}

#[test]
fn group_by_file() {
    let _t = Tracing::start(5);
    let one = caller_one();
    let two = caller_two();
    let snap = only(&memassert::take_snapshot(), FILE);
    let stats = snap.statistics(Key::File);
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].size, stats[0].count), (3300, 4));
    assert_eq!(stats[0].traceback.site().file, FILE);
    assert_eq!(stats[0].traceback.site().line, 0);
    // memassert shows the file alone (tracemalloc prints `file:0`).
    assert_eq!(
        stats[0].to_string(),
        format!("{FILE}: size=3300 B, count=4, average=825 B")
    );
    drop((one, two));
}

#[test]
fn cumulative_counts_every_frame() {
    let _t = Tracing::start(5);
    let one = caller_one();
    let call_one = line!() - 1;
    let two = caller_two();
    let call_two = line!() - 1;
    let [small, big, via_one] = one.2;
    let via_two = two.2[2];
    let snap = only(&memassert::take_snapshot(), FILE);
    let stats = snap.statistics_cumulative(Key::Line);
    let find = |line: u32| {
        let s = stats
            .iter()
            .find(|s| s.traceback.site().file == FILE && s.traceback.site().line == line)
            .unwrap_or_else(|| panic!("no statistic for line {line}: {stats:#?}"));
        (s.size, s.count)
    };
    assert_eq!(find(small), (1100, 2));
    assert_eq!(find(big), (2200, 2));
    assert_eq!(find(via_one), (300, 2));
    assert_eq!(find(via_two), (3000, 2));
    assert_eq!(find(call_one), (300, 2));
    assert_eq!(find(call_two), (3000, 2));
    // The biggest is the frame every block shares (the test function's
    // caller, or the call lines' function).
    assert_eq!((stats[0].size, stats[0].count), (3300, 4));
    for pair in stats.windows(2) {
        assert!((pair[0].size, pair[0].count) >= (pair[1].size, pair[1].count));
    }
    // Non-cumulative statistics only see sites.
    let sites = snap.statistics(Key::Line);
    assert_eq!(sites.len(), 2, "{sites:#?}");

    // Cumulative by file: each frame in the file counts its block, as
    // tracemalloc does.
    let frames_here: usize = snap
        .traces()
        .iter()
        .map(|t| {
            t.traceback
                .frames()
                .iter()
                .filter(|f| f.file == FILE)
                .count()
        })
        .sum();
    let sizes_here: usize = snap
        .traces()
        .iter()
        .map(|t| {
            t.size
                * t.traceback
                    .frames()
                    .iter()
                    .filter(|f| f.file == FILE)
                    .count()
        })
        .sum();
    let by_file = snap.statistics_cumulative(Key::File);
    let here = by_file
        .iter()
        .find(|s| s.traceback.site().file == FILE)
        .unwrap();
    assert_eq!((here.size, here.count), (sizes_here, frames_here));
    assert!(
        frames_here >= 12,
        "helper, caller and test frames: {frames_here}"
    );
    // For Key::Traceback, cumulative is the same as not.
    assert_eq!(
        snap.statistics_cumulative(Key::Traceback),
        snap.statistics(Key::Traceback)
    );
    drop((one, two));
}

#[test]
fn statistics_order_by_size_then_count() {
    let _t = Tracing::start(1);
    let one: Vec<u8> = Vec::with_capacity(200);
    let one_line = line!() - 1;
    let two: [Vec<u8>; 2] = [Vec::with_capacity(100), Vec::with_capacity(100)];
    let two_line = line!() - 1;
    let big: Vec<u8> = Vec::with_capacity(201);
    let big_line = line!() - 1;
    let many: Vec<Box<u8>> = (0..20).map(Box::new).collect();
    let many_line = line!() - 1;
    let snap = only(&memassert::take_snapshot(), FILE);
    let stats = snap.statistics(Key::Line);
    assert_eq!(
        lines_of(&stats),
        [
            (big_line, 201, 1),
            (two_line, 200, 2),
            (one_line, 200, 1),
            (many_line, 20 + 20 * 8, 21),
        ]
    );
    let text: Vec<String> = stats.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        text,
        [
            format!("{FILE}:{big_line}: size=201 B, count=1, average=201 B"),
            format!("{FILE}:{two_line}: size=200 B, count=2, average=100 B"),
            format!("{FILE}:{one_line}: size=200 B, count=1, average=200 B"),
            format!("{FILE}:{many_line}: size=180 B, count=21, average=9 B"),
        ]
    );
    drop((one, two, big, many));
}

fn grown_site(n: usize) -> (Vec<u8>, u32) {
    (Vec::with_capacity(n), line!())
}

fn shrunk_site(n: usize) -> (Vec<u8>, u32) {
    (Vec::with_capacity(n), line!())
}

fn new_site(n: usize) -> (Vec<u8>, u32) {
    (Vec::with_capacity(n), line!())
}

fn gone_site(n: usize) -> (Vec<u8>, u32) {
    (Vec::with_capacity(n), line!())
}

fn same_site(n: usize) -> (Vec<u8>, u32) {
    (Vec::with_capacity(n), line!())
}

#[test]
fn compare_to_signs_and_order() {
    let _t = Tracing::start(1);
    let (g1, grown) = grown_site(1000);
    let (s1, shrunk) = shrunk_site(500);
    let (s2, _) = shrunk_site(500);
    let (gone, gone_line) = gone_site(50);
    let (same, same_line) = same_site(64);
    let old = only(&memassert::take_snapshot(), FILE);

    let (g2, _) = grown_site(1000);
    drop(s2);
    drop(gone);
    let (n1, new) = new_site(300);
    let now = only(&memassert::take_snapshot(), FILE);

    let diff = now.compare_to(&old, Key::Line);
    let rows: Vec<(u32, usize, isize, usize, isize)> = diff
        .iter()
        .map(|d| {
            let line = d.traceback.site().line;
            (line, d.size, d.size_diff, d.count, d.count_diff)
        })
        .collect();
    assert_eq!(
        rows,
        [
            (grown, 2000, 1000, 2, 1),
            (shrunk, 500, -500, 1, -1),
            (new, 300, 300, 1, 1),
            (gone_line, 0, -50, 0, -1),
            (same_line, 64, 0, 1, 0),
        ]
    );
    let text: Vec<String> = diff.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        [
            format!("{FILE}:{grown}: size=2000 B (+1000 B), count=2 (+1), average=1000 B"),
            format!("{FILE}:{shrunk}: size=500 B (-500 B), count=1 (-1), average=500 B"),
            format!("{FILE}:{new}: size=300 B (+300 B), count=1 (+1), average=300 B"),
            format!("{FILE}:{gone_line}: size=0 B (-50 B), count=0 (-1)"),
            format!("{FILE}:{same_line}: size=64 B (+0 B), count=1 (+0), average=64 B"),
        ]
    );
    // Compared with itself: nothing changed.
    assert!(now
        .compare_to(&now, Key::Line)
        .iter()
        .all(|d| d.size_diff == 0 && d.count_diff == 0));
    // By file: one row, the sum.
    let by_file = now.compare_to(&old, Key::File);
    assert_eq!(by_file.len(), 1);
    assert_eq!(
        (by_file[0].size_diff, by_file[0].count_diff),
        (1000 - 500 + 300 - 50, 0)
    );
    assert_eq!(
        by_file[0].to_string(),
        format!("{FILE}: size=2864 B (+750 B), count=5 (+0), average=573 B")
    );
    drop((g1, g2, s1, n1, same));
}

#[test]
fn big_sizes_use_tracemalloc_units() {
    let _t = Tracing::start(1);
    let mib: Vec<u8> = Vec::with_capacity(100 << 20);
    let line = line!() - 1;
    let snap = only(&memassert::take_snapshot(), FILE);
    let stats = snap.statistics(Key::Line);
    assert_eq!(
        stats[0].to_string(),
        format!("{FILE}:{line}: size=100 MiB, count=1, average=100 MiB")
    );
    let empty = Snapshot::from_traces(Vec::new(), 1);
    let diff = snap.compare_to(&empty, Key::Line);
    assert_eq!(
        diff[0].to_string(),
        format!("{FILE}:{line}: size=100 MiB (+100 MiB), count=1 (+1), average=100 MiB")
    );
    assert_eq!(format_size(snap.total_size()), "100 MiB");
    drop(mib);
}
