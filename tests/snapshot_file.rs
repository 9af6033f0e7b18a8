//! `Snapshot::dump` / `Snapshot::load`: round trips, and every kind of bad
//! file is an `Err` with a message that says what is wrong, never a panic.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use memassert::{Frame, Key, Snapshot, Trace, Traceback};

mod tracker_support;
use tracker_support::Tracing;

memassert::install!();

/// A path of its own for each test, in cargo's temporary directory.
fn temp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("memassert-snapshot-file");
    std::fs::create_dir_all(&dir).unwrap();
    static UNIQUE: AtomicUsize = AtomicUsize::new(0);
    let n = UNIQUE.fetch_add(1, Relaxed);
    dir.join(format!("{}-{n}-{name}", std::process::id()))
}

fn load_bytes(name: &str, bytes: &[u8]) -> Result<Snapshot, String> {
    let path = temp(name);
    std::fs::write(&path, bytes).unwrap();
    let loaded = std::panic::catch_unwind(|| Snapshot::load(&path)).unwrap_or_else(|_| {
        panic!(
            "Snapshot::load panicked on {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    std::fs::remove_file(&path).unwrap();
    loaded.map_err(|e| e.to_string())
}

fn load_err(name: &str, bytes: &[u8]) -> String {
    match load_bytes(name, bytes) {
        Ok(snap) => panic!(
            "loaded a bad file {:?}: {snap:?}",
            String::from_utf8_lossy(bytes)
        ),
        Err(message) => {
            assert!(
                message.starts_with("cannot load memassert snapshot "),
                "{message}"
            );
            assert!(
                message.contains(name),
                "the message names the file: {message}"
            );
            message
        }
    }
}

fn frame(file: &str, line: u32, function: &str) -> Frame {
    Frame {
        file: file.into(),
        line,
        function: function.into(),
    }
}

fn hand_built() -> Snapshot {
    let a = Traceback::new(vec![
        frame("src/a.rs", 2, "app::a"),
        frame("src/b.rs", 4, "app::main"),
    ]);
    let odd = Traceback::new(vec![frame(
        "dir with space/tab\there\\back\nslash.rs",
        9,
        "<T as odd::Trait>::method\t\\n",
    )]);
    let unknown = Traceback::new(vec![]);
    let unicode = Traceback::new(vec![frame("src/ünïcødé/файл.rs", 77, "crate::函数")]);
    Snapshot::from_traces(
        vec![
            Trace {
                size: 10,
                traceback: a.clone(),
            },
            Trace {
                size: 10,
                traceback: a.clone(),
            },
            Trace {
                size: 10,
                traceback: a.clone(),
            },
            Trace {
                size: 2,
                traceback: odd,
            },
            Trace {
                size: 66,
                traceback: a,
            },
            Trace {
                size: 7,
                traceback: unknown,
            },
            Trace {
                size: 0,
                traceback: unicode,
            },
        ],
        7,
    )
}

fn a_real_dump() -> Vec<u8> {
    let path = temp("real-dump");
    hand_built().dump(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

#[test]
fn hand_built_round_trip() {
    let snap = hand_built();
    let path = temp("hand-built");
    snap.dump(&path).unwrap();
    let loaded = Snapshot::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, snap);
    assert_eq!(loaded.traceback_limit(), 7);
    assert_eq!(loaded.traces(), snap.traces());
    assert_eq!(loaded.statistics(Key::Line), snap.statistics(Key::Line));
    assert_eq!(
        loaded.statistics(Key::Traceback),
        snap.statistics(Key::Traceback)
    );
    assert_eq!(
        loaded.compare_to(&snap, Key::Line),
        snap.compare_to(&snap, Key::Line)
    );
    // The text starts with the documented header.
    let text = String::from_utf8(a_real_dump()).unwrap();
    assert!(
        text.starts_with("memassert-snapshot 2\ntraceback_limit 7\n"),
        "{text}"
    );
    assert!(text.ends_with("end\n"), "{text}");
}

#[test]
fn empty_snapshot_round_trip() {
    let snap = Snapshot::from_traces(Vec::new(), 1);
    let path = temp("empty-snapshot");
    snap.dump(&path).unwrap();
    assert_eq!(Snapshot::load(&path).unwrap(), snap);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn real_snapshot_round_trip() {
    let _t = Tracing::start(10);
    let kept: Vec<Vec<u8>> = (1..50).map(|n| Vec::with_capacity(n * 10)).collect();
    let boxed = Box::new([0u64; 100]);
    let snap = memassert::take_snapshot();
    memassert::stop();
    let path = temp("real");
    snap.dump(&path).unwrap();
    let loaded = Snapshot::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, snap);
    assert_eq!(loaded.traceback_limit(), 10);
    assert_eq!(loaded.statistics(Key::Line), snap.statistics(Key::Line));
    assert_eq!(
        loaded.statistics_cumulative(Key::File),
        snap.statistics_cumulative(Key::File)
    );
    drop((kept, boxed));
}

#[test]
fn missing_file_is_an_io_error() {
    let path = temp("does-not-exist");
    let err = Snapshot::load(&path).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("does-not-exist"), "{message}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the io::Error is the source"
    );
}

#[test]
fn empty_file() {
    let message = load_err("empty", b"");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn truncated_file() {
    let dump = a_real_dump();
    // Cut in half, wherever that falls.
    let half = &dump[..dump.len() / 2];
    load_err("half", half);
    // Cut at a line boundary: the message says it is truncated.
    let text = String::from_utf8(dump.clone()).unwrap();
    let cut = text[..text.len() / 2].rfind('\n').unwrap() + 1;
    let message = load_err("cut-at-line", &dump[..cut]);
    assert!(message.contains("truncated"), "{message}");
    // Without its `end`.
    let message = load_err(
        "no-end",
        text.trim_end().strip_suffix("end").unwrap().as_bytes(),
    );
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn every_prefix_is_an_error_and_never_a_panic() {
    let dump = a_real_dump();
    // Everything short of the final `end` line fails; only the whole file
    // (with or without the last newline) loads.
    for cut in 0..dump.len() - 1 {
        let result = load_bytes("prefix", &dump[..cut]);
        assert!(result.is_err(), "prefix of {cut} bytes loaded");
    }
    assert_eq!(load_bytes("whole", &dump).unwrap(), hand_built());
    assert_eq!(
        load_bytes("no-newline", &dump[..dump.len() - 1]).unwrap(),
        hand_built()
    );
}

#[test]
fn every_corrupted_byte_never_panics() {
    let dump = a_real_dump();
    for i in 0..dump.len() {
        for replacement in [b'9', b' ', b'\n', b'\t', 0xFF, b'x'] {
            let mut bad = dump.clone();
            bad[i] = replacement;
            let _ = load_bytes("corrupt", &bad);
        }
    }
}

#[test]
fn foreign_files() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let message = load_err("png", png);
    assert!(message.contains("not a memassert snapshot"), "{message}");

    let manifest = std::fs::read("Cargo.toml").unwrap();
    let message = load_err("cargo-toml", &manifest);
    assert!(message.contains("not a memassert snapshot"), "{message}");
    assert!(message.contains("(line 1)"), "{message}");

    let message = load_err("json", br#"{"traces": []}"#);
    assert!(message.contains("not a memassert snapshot"), "{message}");

    // A Python pickle, as tracemalloc's Snapshot.dump writes.
    let message = load_err(
        "pickle",
        b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x0btracemalloc\x94",
    );
    assert!(message.contains("not a memassert snapshot"), "{message}");

    let message = load_err("magic-only", b"memassert-snapshot");
    assert!(message.contains("not a memassert snapshot"), "{message}");
}

#[test]
fn binary_garbage() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    load_err("garbage", &garbage);
    load_err("zeros", &[0u8; 100]);
    load_err("ff", &[0xFFu8; 100]);
}

#[test]
fn other_versions() {
    let message = load_err("v3", b"memassert-snapshot 3\ntraceback_limit 1\n");
    assert!(message.contains("version 3"), "{message}");
    assert!(message.contains("upgrade memassert"), "{message}");
    let message = load_err("v0", b"memassert-snapshot 0\n");
    assert!(message.contains("version 0"), "{message}");
    let message = load_err("vx", b"memassert-snapshot one\n");
    assert!(message.contains("version"), "{message}");
    let message = load_err("vhuge", b"memassert-snapshot 99999999999999999999\n");
    assert!(message.contains("version"), "{message}");
}

/// A version-1 file with the given traceback section and trace lines.
fn v1(tracebacks: &str, traces: &str) -> Vec<u8> {
    format!("memassert-snapshot 1\ntraceback_limit 2\n{tracebacks}{traces}end\n").into_bytes()
}

const ONE_TB: &str = "tracebacks 1\ntraceback 1\n3\tsrc/a.rs\ta::f\n";

#[test]
fn a_minimal_file_loads() {
    let snap = load_bytes("minimal", &v1(ONE_TB, "traces 1\n0 16 3\n")).unwrap();
    assert_eq!(snap.traces().len(), 3);
    assert_eq!(snap.total_size(), 48);
    assert_eq!(snap.traceback_limit(), 2);
    assert_eq!(snap.traces()[0].traceback.site().to_string(), "src/a.rs:3");
    // Windows line endings too.
    let crlf = String::from_utf8(v1(ONE_TB, "traces 1\n0 16 3\n"))
        .unwrap()
        .replace('\n', "\r\n");
    assert_eq!(load_bytes("crlf", crlf.as_bytes()).unwrap(), snap);
}

#[test]
fn bad_numbers() {
    for (name, bytes, expect) in [
        (
            "bad-limit",
            b"memassert-snapshot 1\ntraceback_limit x\n".to_vec(),
            "traceback_limit",
        ),
        (
            "neg-limit",
            b"memassert-snapshot 1\ntraceback_limit -1\n".to_vec(),
            "traceback_limit",
        ),
        (
            "bad-tb-count",
            b"memassert-snapshot 1\ntraceback_limit 1\ntracebacks many\n".to_vec(),
            "tracebacks",
        ),
        (
            "bad-frame-count",
            v1("tracebacks 1\ntraceback two\n", ""),
            "traceback",
        ),
        (
            "zero-frames",
            v1("tracebacks 1\ntraceback 0\n", "traces 0\n"),
            "no frames",
        ),
        (
            "bad-line-no",
            v1(
                "tracebacks 1\ntraceback 1\nL3\tsrc/a.rs\ta::f\n",
                "traces 0\n",
            ),
            "line number",
        ),
        (
            "neg-line-no",
            v1(
                "tracebacks 1\ntraceback 1\n-3\tsrc/a.rs\ta::f\n",
                "traces 0\n",
            ),
            "line number",
        ),
        (
            "huge-line-no",
            v1(
                "tracebacks 1\ntraceback 1\n99999999999\tsrc/a.rs\ta::f\n",
                "traces 0\n",
            ),
            "line number",
        ),
        (
            "two-fields",
            v1("tracebacks 1\ntraceback 1\n3\tsrc/a.rs\n", "traces 0\n"),
            "frame",
        ),
        (
            "four-fields",
            v1(
                "tracebacks 1\ntraceback 1\n3\tsrc/a.rs\tf\tx\n",
                "traces 0\n",
            ),
            "frame",
        ),
        (
            "bad-escape",
            v1(
                "tracebacks 1\ntraceback 1\n3\tsrc/\\q.rs\tf\n",
                "traces 0\n",
            ),
            "escape",
        ),
        ("bad-trace-count", v1(ONE_TB, "traces -1\n"), "traces"),
        ("bad-size", v1(ONE_TB, "traces 1\n0 big 1\n"), "trace"),
        ("neg-size", v1(ONE_TB, "traces 1\n0 -16 1\n"), "trace"),
        ("float-size", v1(ONE_TB, "traces 1\n0 1.5 1\n"), "trace"),
        ("two-numbers", v1(ONE_TB, "traces 1\n0 16\n"), "trace"),
        ("four-numbers", v1(ONE_TB, "traces 1\n0 16 1 1\n"), "trace"),
        (
            "overflow-size",
            v1(ONE_TB, "traces 1\n0 99999999999999999999999 1\n"),
            "trace",
        ),
        (
            "implausible-count",
            v1(ONE_TB, "traces 1\n0 16 99999999999999\n"),
            "implausible",
        ),
        (
            "missing-end",
            b"memassert-snapshot 1\ntraceback_limit 1\ntracebacks 0\ntraces 0\nfin\n".to_vec(),
            "end",
        ),
        (
            "after-end",
            b"memassert-snapshot 1\ntraceback_limit 1\ntracebacks 0\ntraces 0\nend\nmore\n"
                .to_vec(),
            "after `end`",
        ),
        (
            "lying-count",
            v1("tracebacks 5\ntraceback 1\n3\ta.rs\tf\n", "traces 0\n"),
            "traceback",
        ),
    ] {
        let message = load_err(name, &bytes);
        assert!(message.contains(expect), "{name}: {message}");
    }
}

#[test]
fn trace_naming_a_missing_traceback() {
    let message = load_err("missing-traceback", &v1(ONE_TB, "traces 1\n1 16 1\n"));
    assert!(message.contains("traceback 1"), "{message}");
    assert!(message.contains("has 1 tracebacks"), "{message}");
    let message = load_err(
        "no-tracebacks",
        b"memassert-snapshot 1\ntraceback_limit 1\ntracebacks 0\ntraces 1\n0 8 1\nend\n",
    );
    assert!(message.contains("traceback 0"), "{message}");
}

/// Block counts the loader cannot hold in memory are bad numbers too: a
/// 60-byte file must not make `load` reserve terabytes (and abort the
/// process on allocation failure) or `statistics` overflow.
///
/// Run in a child process with its address space limited to 1 GiB, so that
/// if the loader tries, the child dies and not the machine. Unix only: the
/// limit is set with the shell's `ulimit -v`.
#[cfg(unix)]
#[test]
fn huge_block_counts_are_errors() {
    if let Ok(name) = std::env::var("MEMASSERT_HUGE_COUNT_CHILD") {
        let bytes = match name.as_str() {
            // Under the loader's limit of 2^40 blocks, but 24 TiB of traces.
            "count" => v1(ONE_TB, "traces 1\n0 16 1000000000000\n"),
            // Many runs, each under the limit: the total is what matters.
            _ => v1(
                ONE_TB,
                &format!("traces 64\n{}", "0 16 1000000000000\n".repeat(64)),
            ),
        };
        let result = load_bytes(&format!("huge-{name}"), &bytes);
        assert!(result.is_err(), "a 2^40-block file loaded");
        return;
    }
    for name in ["count", "runs"] {
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                "ulimit -v 1048576 && exec \"$@\" --exact huge_block_counts_are_errors --nocapture",
            )
            .arg("sh")
            .args(memassert_tests::test_runner())
            .arg(&exe)
            .env("MEMASSERT_HUGE_COUNT_CHILD", name)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{name}: loading a file claiming ~10^12 blocks did not return Err \
             (the child exited with {status}: it aborted or panicked)"
        );
    }
}

/// Sizes whose sum overflows `usize`: loading must fail, or the loaded
/// snapshot's statistics must not panic.
#[test]
fn sizes_that_overflow_the_total() {
    let max = usize::MAX;
    let bytes = v1(ONE_TB, &format!("traces 1\n0 {max} 2\n"));
    match load_bytes("overflow-total", &bytes) {
        Err(message) => assert!(message.contains("cannot load"), "{message}"),
        Ok(snap) => {
            let stats =
                std::panic::catch_unwind(|| (snap.total_size(), snap.statistics(Key::Line)));
            assert!(
                stats.is_ok(),
                "a loaded snapshot whose sizes overflow usize panics in total_size/statistics"
            );
        }
    }
}

/// Version 2 adds each traceback's `total_nframe` (`-` when unknown);
/// version 1 files still load, with `total_nframe` unknown.
#[test]
fn version_2_carries_total_nframe_and_version_1_still_loads() {
    let v2 = |tracebacks: &str| {
        format!("memassert-snapshot 2\ntraceback_limit 2\n{tracebacks}traces 1\n0 16 1\nend\n")
            .into_bytes()
    };
    let snap = load_bytes(
        "v2-total",
        &v2("tracebacks 1\ntraceback 1 9\n3\tsrc/a.rs\ta::f\n"),
    )
    .unwrap();
    assert_eq!(snap.traces()[0].traceback.total_nframe(), Some(9));
    let snap = load_bytes(
        "v2-unknown",
        &v2("tracebacks 1\ntraceback 1 -\n3\tsrc/a.rs\ta::f\n"),
    )
    .unwrap();
    assert_eq!(snap.traces()[0].traceback.total_nframe(), None);
    // A version-1 traceback line in a version-2 file, and bad totals.
    for (name, header) in [
        ("v2-no-total", "traceback 1"),
        ("v2-bad-total", "traceback 1 x"),
        ("v2-negative-total", "traceback 1 -1"),
        ("v2-huge-total", "traceback 1 99999999999999999999999"),
        ("v2-extra", "traceback 1 2 3"),
    ] {
        let message = load_err(
            name,
            &v2(&format!("tracebacks 1\n{header}\n3\tsrc/a.rs\ta::f\n")),
        );
        assert!(
            message.contains("traceback <frames> <total_nframe"),
            "{message}"
        );
    }
    let snap = load_bytes("v1-still-loads", &v1(ONE_TB, "traces 1\n0 16 3\n")).unwrap();
    assert_eq!(snap.traces().len(), 3);
    assert_eq!(snap.traces()[0].traceback.total_nframe(), None);

    // Round trip keeps each traceback's total, including tracebacks that
    // differ only in it.
    let frames = vec![memassert::Frame {
        file: "src/a.rs".into(),
        line: 3,
        function: "a::f".into(),
    }];
    let tb = |total| memassert::Traceback::new(frames.clone()).with_total_nframe(total);
    let snap = Snapshot::from_traces(
        vec![
            memassert::Trace {
                size: 1,
                traceback: tb(Some(1)),
            },
            memassert::Trace {
                size: 2,
                traceback: tb(Some(40)),
            },
            memassert::Trace {
                size: 3,
                traceback: tb(None),
            },
        ],
        1,
    );
    let path = temp("total-nframe-round-trip");
    snap.dump(&path).unwrap();
    let loaded = Snapshot::load(&path).unwrap();
    let totals: Vec<Option<usize>> = loaded
        .traces()
        .iter()
        .map(|t| t.traceback.total_nframe())
        .collect();
    assert_eq!(totals, [Some(1), Some(40), None]);
    assert_eq!(loaded, snap);
}
