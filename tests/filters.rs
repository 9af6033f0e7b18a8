//! `Filter` on real snapshots and on hand-built ones: include / exclude by
//! glob, with a line, with all frames; an empty list keeps everything.

use memassert::{Filter, Key, Snapshot, Trace};
use memassert_tests::traceback_at as tb;

mod tracker_support;
use tracker_support::{helper_block, serial, without_harness, Tracing};

memassert::install!();

const FILE: &str = file!();
const SUPPORT: &str = "tests/tracker_support/mod.rs";

fn sites(snapshot: &Snapshot) -> Vec<(String, u32, usize, usize)> {
    snapshot
        .statistics(Key::Line)
        .into_iter()
        .map(|s| {
            let site = s.traceback.site();
            (site.file.clone(), site.line, s.size, s.count)
        })
        .collect()
}

#[test]
fn real_snapshot_include_exclude_line_all_frames() {
    let _t = Tracing::start(4);
    let local: Vec<u8> = Vec::with_capacity(111);
    let local_line = line!() - 1;
    let other: Vec<u8> = Vec::with_capacity(222);
    let other_line = line!() - 1;
    let (helped, helper_line) = helper_block(333);
    let call_line = line!() - 1;
    // Without what libtest's main thread allocates meanwhile (its site is
    // this file's line 1: see `tracker_support::only`).
    let snap = without_harness(&memassert::take_snapshot(), FILE);

    // Include this file: the site must be here.
    let here = snap.filter(&[Filter::include(FILE)]);
    assert_eq!(
        sites(&here),
        [
            (FILE.to_string(), other_line, 222, 1),
            (FILE.to_string(), local_line, 111, 1)
        ]
    );
    // ... or any frame, with all_frames: the helper's block, made in
    // tracker_support but called from here, comes in.
    let anywhere = snap.filter(&[Filter::include(FILE).all_frames()]);
    assert_eq!(
        sites(&anywhere),
        [
            (SUPPORT.to_string(), helper_line, 333, 1),
            (FILE.to_string(), other_line, 222, 1),
            (FILE.to_string(), local_line, 111, 1)
        ]
    );
    let helper_tb = &anywhere.statistics(Key::Traceback)[0].traceback;
    assert_eq!(helper_tb.frames()[1].file, FILE);
    assert_eq!(helper_tb.frames()[1].line, call_line);

    // Globs: `*` crosses `/`, so `tests/*` covers both files.
    let tests = snap.filter(&[Filter::include("tests/*")]);
    assert_eq!(tests.total_size(), 666);
    let rs_in_tests = snap.filter(&[Filter::include("tests/f?lters.[rx]s")]);
    assert_eq!(rs_in_tests.total_size(), 333);
    // Two includes: either.
    let both = snap.filter(&[Filter::include(FILE), Filter::include(SUPPORT)]);
    assert_eq!(both.total_size(), 666);
    // Include, then exclude one line of it.
    let no_other = snap.filter(&[
        Filter::include("tests/*"),
        Filter::exclude(FILE).line(other_line),
    ]);
    assert_eq!(
        sites(&no_other),
        [
            (SUPPORT.to_string(), helper_line, 333, 1),
            (FILE.to_string(), local_line, 111, 1)
        ]
    );
    // Include one line.
    let one_line = snap.filter(&[Filter::include(FILE).line(local_line)]);
    assert_eq!(sites(&one_line), [(FILE.to_string(), local_line, 111, 1)]);
    // Exclude the support file: by site, or by any frame.
    let not_support = snap.filter(&[Filter::include("tests/*"), Filter::exclude(SUPPORT)]);
    assert_eq!(not_support.total_size(), 333);
    let not_here_anywhere = snap.filter(&[
        Filter::include("tests/*"),
        Filter::exclude(FILE).all_frames(),
    ]);
    assert_eq!(not_here_anywhere.total_size(), 0);
    // Exclusive filters alone keep everything else (here: nothing in tests/).
    let no_tests = snap.filter(&[Filter::exclude("tests/*")]);
    assert!(no_tests
        .traces()
        .iter()
        .all(|t| !t.traceback.site().file.starts_with("tests/")));
    // No filter: the same snapshot.
    assert_eq!(snap.filter(&[]), snap);
    // Filtering never touches the original.
    assert!(snap.traces().len() >= 3);
    assert_eq!(snap.traceback_limit(), 4);
    assert_eq!(here.traceback_limit(), 4);
    drop((local, other, helped));
}

#[test]
fn std_frames_are_not_sites() {
    let _t = Tracing::start(8);
    let s = String::from("not a site in alloc");
    let line = line!() - 1;
    let formatted = format!("{s} {}", 42);
    let fmt_line = line!() - 1;
    let snap = without_harness(&memassert::take_snapshot(), FILE);
    let mine = snap.filter(&[Filter::include(FILE)]);
    let lines: Vec<u32> = sites(&mine).iter().map(|s| s.1).collect();
    assert!(
        lines.contains(&line) && lines.contains(&fmt_line),
        "{lines:?}"
    );
    // No frame of any traceback is in the standard library.
    let std = snap.filter(&[Filter::include("library/*").all_frames()]);
    assert_eq!(
        std.traces().len(),
        0,
        "{:#?}",
        std.statistics(Key::Traceback)
    );
    drop((s, formatted));
}

fn hand_built() -> Snapshot {
    Snapshot::from_traces(
        vec![
            Trace {
                size: 10,
                traceback: tb(&[("src/cache.rs", 12), ("src/main.rs", 3)]),
            },
            Trace {
                size: 20,
                traceback: tb(&[("src/cache.rs", 40), ("src/main.rs", 4)]),
            },
            Trace {
                size: 40,
                traceback: tb(&[("library/alloc/src/vec/mod.rs", 500), ("src/main.rs", 5)]),
            },
            Trace {
                size: 80,
                traceback: tb(&[("serde-1.0.200/src/de.rs", 7), ("src/io/read.rs", 9)]),
            },
        ],
        2,
    )
}

fn kept(filters: &[Filter]) -> usize {
    hand_built().filter(filters).total_size()
}

#[test]
fn hand_built_globs_lines_and_frames() {
    let _lock = serial();
    assert_eq!(kept(&[]), 150);
    assert_eq!(kept(&[Filter::include("src/*")]), 30);
    assert_eq!(kept(&[Filter::include("src/*").all_frames()]), 150);
    assert_eq!(kept(&[Filter::exclude("library/*")]), 110);
    assert_eq!(kept(&[Filter::exclude("src/main.rs").all_frames()]), 80);
    assert_eq!(kept(&[Filter::include("src/cache.rs").line(12)]), 10);
    assert_eq!(kept(&[Filter::exclude("src/cache.rs").line(12)]), 140);
    assert_eq!(
        kept(&[Filter::include("src/main.rs").line(4).all_frames()]),
        20
    );
    assert_eq!(kept(&[Filter::include("*.rs")]), 150);
    assert_eq!(kept(&[Filter::include("*/de.rs")]), 80);
    assert_eq!(kept(&[Filter::include("serde-*")]), 80);
    assert_eq!(kept(&[Filter::include("src/?ache.rs")]), 30);
    assert_eq!(kept(&[Filter::include("src/[bc]ache.rs")]), 30);
    assert_eq!(kept(&[Filter::include("src/[!c]ache.rs")]), 0);
    assert_eq!(
        kept(&[Filter::include("src/cache")]),
        0,
        "a glob matches whole names"
    );
    assert_eq!(kept(&[Filter::include("SRC/*")]), 0, "case-sensitive");
    // Includes are or-ed, excludes and-ed after them.
    assert_eq!(
        kept(&[Filter::include("src/*"), Filter::include("library/*")]),
        70
    );
    assert_eq!(
        kept(&[
            Filter::include("src/*").all_frames(),
            Filter::exclude("src/cache.rs"),
            Filter::exclude("library/*"),
        ]),
        80
    );
    // The filtered snapshot keeps the traceback limit and the traces' order.
    let filtered = hand_built().filter(&[Filter::exclude("src/cache.rs").line(40)]);
    assert_eq!(filtered.traceback_limit(), 2);
    let sizes: Vec<usize> = filtered.traces().iter().map(|t| t.size).collect();
    assert_eq!(sizes, [10, 40, 80]);
}

#[test]
fn filter_fields_and_builders() {
    let _lock = serial();
    let f = Filter::include("abc");
    assert_eq!(
        f,
        Filter {
            inclusive: true,
            pattern: "abc".into(),
            line: None,
            all_frames: false,
        }
    );
    let f = Filter::exclude("test.rs").line(123).all_frames();
    assert!(!f.inclusive);
    assert_eq!(f.pattern, "test.rs");
    assert_eq!(f.line, Some(123));
    assert!(f.all_frames);
}
