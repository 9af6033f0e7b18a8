//! `cargo memassert` as people use it: a fixture crate's `#[track_alloc]`
//! tests (plain, a thread, a tokio task, one over its limit, one that
//! panics) run with `MEMASSERT_REPORT` under `cargo test` and under
//! `cargo nextest run --partition count:1/2` and `count:2/2` (the two
//! folders merged by copying); `summary` shows the scopes' exact figures,
//! `compare` names the test made to allocate twice as much and exits 1,
//! and the `html` page, opened in headless Chromium, has a row and a flame
//! graph per test.
//!
//! One build of the fixture (debug, in `target/fixtures/target`, shared
//! with memassert-tests' fixtures; `--offline` with this workspace's
//! `Cargo.lock`). Under `CI=true`, cargo-nextest and Chromium must be
//! there: their parts fail rather than skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

const LIB: &str = r#"
/// Exactly `n` bytes in one block.
pub fn block(n: usize) -> Vec<u8> {
    vec![1u8; n]
}
"#;

const SUITE: &str = r#"
use std::hint::black_box;

memassert::install!();

#[test]
#[memassert::track_alloc(max = "1 MiB")]
fn exact_100000() {
    drop(black_box(suitedemo::block(100_000)));
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn two_blocks() {
    let a = black_box(suitedemo::block(4096));
    let b = black_box(suitedemo::block(1000));
    drop((a, b));
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn in_a_thread() {
    std::thread::spawn(|| drop(black_box(suitedemo::block(300_000))))
        .join()
        .unwrap();
}

// The current-thread runtime: a multi-thread one's workers (the test's own)
// allocate more or less from run to run, and `compare` would say so.
#[tokio::test]
#[memassert::track_alloc]
async fn in_a_task() {
    tokio::spawn(async { drop(black_box(suitedemo::block(200_000))) })
        .await
        .unwrap();
}

#[test]
#[memassert::track_alloc(max = "1 KiB")]
fn over_the_limit() {
    drop(black_box(suitedemo::block(2048)));
}

#[test]
#[should_panic(expected = "boom")]
#[memassert::track_alloc]
fn panics() {
    let _v = black_box(suitedemo::block(10));
    panic!("boom");
}

/// 50,000 bytes; with SUITEDEMO_SCALE=2, 100,000 (and the 1-byte string
/// of the variable's value).
#[test]
#[memassert::track_alloc]
fn scaled() {
    let scale = std::env::var_os("SUITEDEMO_SCALE").map_or(1, |s| if s == "2" { 2 } else { 1 });
    drop(black_box(suitedemo::block(50_000 * scale)));
}
"#;

const TESTS: usize = 7;

fn fixture() -> PathBuf {
    let dir = workspace_root().join("target/fixtures/cargo-memassert");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"suitedemo\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmemassert = {{ path = {:?} }}\n\n\
             [dev-dependencies]\ntokio = {{ version = \"1.38\", features = [\"rt\", \"rt-multi-thread\", \"macros\"] }}\n\n\
             [workspace]\n",
            workspace_root().join("memassert").display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), LIB).unwrap();
    std::fs::write(dir.join("tests/suite.rs"), SUITE).unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

fn cargo(dir: &Path, args: &[&str], records: &Path, env: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(args)
        .current_dir(dir)
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("target/fixtures/target"),
        )
        .env("MEMASSERT_REPORT", records)
        .env_remove("MEMASSERT_ROOT")
        .env_remove("MEMASSERT_DUMP")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("SUITEDEMO_SCALE")
        .env_remove("NEXTEST_PROFILE");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("cargo runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `cargo memassert ARGS` (as cargo does: `cargo-memassert memassert ARGS`).
fn memassert(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-memassert"))
        .arg("memassert")
        .args(args)
        .output()
        .expect("cargo-memassert runs");
    (out.status.code().unwrap_or(-1), text(&out))
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The summary's block for `test`.
fn block<'a>(summary: &'a str, test: &str) -> &'a str {
    let header = format!("Allocation results for {test} ");
    let start = summary
        .find(&header)
        .unwrap_or_else(|| panic!("no block for {test} in:\n{summary}"));
    let rest = &summary[start..];
    let end = rest[1..]
        .find("\nAllocation results for ")
        .or_else(|| rest.find("\n\n"))
        .map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

fn check_summary(summary: &str, dir: &Path) {
    assert!(
        summary.contains(&format!(
            "memassert: {TESTS} tests from 1 binary in {}; 1 failed a memassert limit, 1 panicked",
            dir.display()
        )),
        "{summary}"
    );
    let exact = block(summary, "suite::exact_100000");
    assert!(
        exact.contains("Peak memory:            97.7 KiB (100000 B)")
            && exact.contains("Total memory allocated: 97.7 KiB (100000 B)")
            && exact.contains("Total allocations:      1\n")
            && exact.contains("Leaked:                 0 B in 0 blocks")
            && exact.contains("Histogram of allocation sizes: |█| 64 KiB .. 128 KiB")
            && exact.contains("- src/lib.rs:4 in suitedemo::block -> 97.7 KiB in 1 block")
            && exact.contains("vec![1u8; n]"),
        "{exact}"
    );
    let two = block(summary, "suite::two_blocks");
    assert!(
        two.contains("Peak memory:            5 KiB (5096 B)")
            && two.contains("Total allocations:      2\n")
            && two.contains("|█  █| 512 B .. 8 KiB"),
        "{two}"
    );
    let over = block(summary, "suite::over_the_limit");
    assert!(
        over.contains("at the high watermark [limit failed]")
            && over.contains("!! memassert: peak 2 KiB exceeds max 1 KiB in suite::over_the_limit")
            && over.contains("Peak memory:            2 KiB (2048 B)"),
        "{over}"
    );
    // A thread and a tokio task: the test's own, with their sites.
    for (test, bytes) in [
        ("suite::in_a_thread", 300_000),
        ("suite::in_a_task", 200_000),
    ] {
        let b = block(summary, test);
        let peak: u64 = b
            .split("Peak memory:")
            .nth(1)
            .and_then(|s| s.split('(').nth(1))
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no peak in {b}"));
        assert!(
            (bytes..bytes + 64 * 1024).contains(&peak),
            "{test}: peak {peak}\n{b}"
        );
        assert!(b.contains("- src/lib.rs:4 in suitedemo::block"), "{b}");
    }
    assert!(
        summary.contains("  suite::panics [panicked] boom"),
        "the panicking body: {summary}"
    );
    assert!(
        summary
            .contains("passes):\n  suite::over_the_limit: memassert: peak 2 KiB exceeds max 1 KiB"),
        "{summary}"
    );
}

#[test]
fn records_summary_compare_and_html_of_a_real_suite() {
    let dir = fixture();
    let records = workspace_root().join("target/fixtures/cargo-memassert-records");
    let _ = std::fs::remove_dir_all(&records);
    let (base, partitions, merged, doubled) = (
        records.join("cargo-test"),
        records.join("nextest"),
        records.join("merged"),
        records.join("doubled"),
    );

    // cargo test: one process, every test in it; `over_the_limit` fails.
    // One test at a time, so the two runs' figures are exact to compare.
    // (Under an outer `cargo nextest run`, memassert before be537e3 took
    // nextest's environment for "alone in its process" and let parallel
    // fixture tests count each other: the tokio test went from 7
    // allocations to 38.)
    let out = cargo(
        &dir,
        &[
            "test",
            "--offline",
            "--test",
            "suite",
            "--",
            "--test-threads=1",
        ],
        &base,
        &[],
    );
    let all = text(&out);
    assert!(
        !out.status.success() && all.contains("over_the_limit") && all.contains("1 failed"),
        "{all}"
    );
    let files: Vec<_> = std::fs::read_dir(&base).unwrap().collect();
    assert_eq!(files.len(), 1, "one file per test process");

    let (code, summary) = memassert(&["summary", base.to_str().unwrap(), "--top", "10"]);
    assert_eq!(code, 0, "{summary}");
    check_summary(&summary, &base);
    println!("--- summary of the cargo test run\n{summary}");

    // --by allocs and --top.
    let (code, by_allocs) = memassert(&[
        "summary",
        base.to_str().unwrap(),
        "--by",
        "allocs",
        "--top",
        "2",
    ]);
    assert_eq!(code, 0, "{by_allocs}");
    assert!(
        by_allocs.contains("The 2 heaviest by allocation count (of 6 with figures)"),
        "{by_allocs}"
    );
    assert_eq!(
        by_allocs.matches("Allocation results for").count(),
        2,
        "{by_allocs}"
    );

    // nextest, in two partitions: a process per test; the folders merge by copying.
    let nextest = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        for part in ["1", "2"] {
            let out = cargo(
                &dir,
                &[
                    "nextest",
                    "run",
                    "--offline",
                    "--no-fail-fast",
                    "--test",
                    "suite",
                    "--partition",
                    &format!("count:{part}/2"),
                ],
                &partitions.join(part),
                &[],
            );
            assert!(text(&out).contains("Starting"), "{}", text(&out));
        }
        std::fs::create_dir_all(&merged).unwrap();
        let mut copied = 0;
        for part in ["1", "2"] {
            for entry in std::fs::read_dir(partitions.join(part)).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, merged.join(path.file_name().unwrap())).unwrap();
                copied += 1;
            }
        }
        assert_eq!(copied, TESTS, "one file per test process under nextest");
        let (code, summary) = memassert(&["summary", merged.to_str().unwrap()]);
        assert_eq!(code, 0, "{summary}");
        check_summary(&summary, &merged);
        // The same exact figures as under cargo test.
        let (code, same) = memassert(&[
            "compare",
            base.to_str().unwrap(),
            merged.to_str().unwrap(),
            "--threshold",
            "0%",
        ]);
        assert_eq!(code, 0, "{same}");
        for test in ["exact_100000", "two_blocks", "over_the_limit", "scaled"] {
            assert!(
                !same.contains(&format!("suite::{test}\n")),
                "{test} moved:\n{same}"
            );
        }
        assert!(
            same.contains(&format!("{TESTS} tests in both, 0 new, 0 removed")),
            "{same}"
        );
    } else if on_ci() {
        panic!(
            "CI=true but cargo-nextest is not installed (`cargo install cargo-nextest --locked`)"
        );
    } else {
        eprintln!("SKIPPED the nextest part: cargo-nextest is not installed");
    }

    // A run where `scaled` allocates twice as much: compare names it, exits 1.
    let out = cargo(
        &dir,
        &[
            "test",
            "--offline",
            "--test",
            "suite",
            "--",
            "--test-threads=1",
        ],
        &doubled,
        &[("SUITEDEMO_SCALE", "2")],
    );
    assert!(text(&out).contains("1 failed"), "{}", text(&out));
    let (code, compared) = memassert(&[
        "compare",
        base.to_str().unwrap(),
        doubled.to_str().unwrap(),
        "--fail-on-increase",
        "10%",
    ]);
    assert_eq!(code, 1, "{compared}");
    assert!(
        compared.contains(
            "  suite::scaled  [beyond --fail-on-increase]\n      peak 48.8 KiB -> 97.7 KiB (+100.0%), \
             total 48.8 KiB -> 97.7 KiB (+100.0%), allocs 1 -> 2 (+100.0%)"
        ) && compared.contains("FAILED: 1 test increased beyond 10%: suite::scaled"),
        "{compared}"
    );
    println!("--- compare\n{compared}");
    // The other way round it is a decrease: status 0.
    let (code, back) = memassert(&[
        "compare",
        doubled.to_str().unwrap(),
        base.to_str().unwrap(),
        "--fail-on-increase",
        "10%",
    ]);
    assert_eq!(code, 0, "{back}");
    assert!(back.contains("Decreased (1):\n  suite::scaled"), "{back}");

    // The page, in a browser.
    let page = records.join("suite.html");
    let (code, said) = memassert(&["html", base.to_str().unwrap(), "-o", page.to_str().unwrap()]);
    assert_eq!(code, 0, "{said}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "fetches nothing"
    );
    browser_checks(&page, &records);
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome", "chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

fn headless(browser: &Path, profile: &Path, args: &[&str]) -> Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("the browser runs")
}

fn browser_checks(page: &Path, records: &Path) {
    let Some(browser) = chromium() else {
        if on_ci() {
            panic!("CI=true but Chromium is not installed (.ci/run installs it: apt-get install chromium)");
        }
        eprintln!("SKIPPED the browser checks: no chromium on PATH");
        return;
    };
    let profile = records.join("chromium-profile");
    let url = format!("file://{}", page.display());
    let out = headless(&browser, &profile, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not run:\n{}",
        text(&out)
    );
    assert_eq!(dom.matches("<tr data-test=").count(), TESTS, "table rows");
    assert_eq!(
        dom.matches("<svg class=\"flame\"").count(),
        TESTS,
        "flame graphs"
    );
    assert_eq!(
        dom.matches("<svg class=\"hist\"").count(),
        TESTS - 1,
        "histograms"
    );
    assert!(
        dom.contains("<g class=\"frame\" data-function=\"suitedemo::block\">"),
        "frames"
    );
    assert!(dom.contains("<text x=\"3.00\" y=\"13.0\">all live at the peak: 97.7 KiB</text>"));
    // The script selected the heaviest test: its section shows, the rest hide.
    assert_eq!(dom.matches("class=\"selected\"").count(), 1);
    assert_eq!(dom.matches("style=\"display: none;\"").count(), TESTS - 1);

    let shot = records.join("suite.png");
    let out = headless(
        &browser,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
            &url,
        ],
    );
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {}", text(&out)));
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Some(to) = std::env::var_os("CARGO_MEMASSERT_SCREENSHOT") {
        std::fs::copy(&shot, to).unwrap();
    }
}
