//! `MEMASSERT_REPORT=DIR` (issue 21): this binary's ignored `child_*` tests,
//! run again in a child process with the variable set, leave one records
//! file with a record per test — passing, over its limit, panicking,
//! returning `Err` — carrying the scope's exact figures and size histogram.
//! Without the variable (or with it empty) nothing is written.
//! `cargo memassert` reads these files (`cargo-memassert/tests` runs it on
//! a fixture crate).

use std::hint::black_box;
use std::path::PathBuf;

use memassert::track_alloc;

memassert::install!();

#[test]
#[ignore = "run by records_of_passing_failing_panicking_and_err_tests"]
#[track_alloc(max = "1 MiB")]
fn child_exact() {
    let a = black_box(vec![1u8; 1000]);
    let b = black_box(vec![2u8; 3000]);
    drop((a, b));
}

#[test]
#[ignore = "run by records_of_passing_failing_panicking_and_err_tests"]
#[track_alloc(max = "1 KiB")]
fn child_over() {
    drop(black_box(vec![1u8; 2048]));
}

#[test]
#[ignore = "run by records_of_passing_failing_panicking_and_err_tests"]
#[track_alloc]
fn child_panics() {
    let _v = black_box(vec![1u8; 10]);
    panic!("boom\tand\nmore");
}

#[test]
#[ignore = "run by records_of_passing_failing_panicking_and_err_tests"]
#[track_alloc]
fn child_errs() -> Result<(), String> {
    Err("no".into())
}

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "memassert-suite-records-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the child tests with `MEMASSERT_REPORT` set to `value`.
fn run_children(value: &std::ffi::OsStr) -> String {
    let out = memassert_tests::this_test_binary()
        .args(["--ignored", "--test-threads=1", "child_"])
        .env("MEMASSERT_REPORT", value)
        .output()
        .expect("the test binary runs again");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("test result: FAILED. 1 passed; 3 failed"),
        "{text}"
    );
    text
}

/// The record of `test` in `file`: its lines from `test` to `end`.
fn record<'a>(file: &'a str, test: &str) -> Vec<&'a str> {
    let start = format!("test\tsuite_records::{test}\tsuite_records");
    let lines: Vec<&str> = file.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no record of {test} in:\n{file}"));
    let end = at + lines[at..].iter().position(|l| *l == "end").expect("end");
    lines[at..=end].to_vec()
}

#[test]
fn records_of_passing_failing_panicking_and_err_tests() {
    let dir = folder("set");
    run_children(dir.as_os_str());
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one file per process: {files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("suite_records") && name.ends_with(".memassert"),
        "{name}"
    );
    let file = std::fs::read_to_string(&files[0]).unwrap();
    assert!(file.starts_with("memassert-records\t1\n"), "{file}");
    assert_eq!(file.matches("\nend\n").count(), 4, "{file}");

    let exact = record(&file, "child_exact");
    assert_eq!(exact[1], "outcome\tpass\t");
    assert_eq!(exact[2], "figures\t4000\t4000\t2\t0\t0");
    // 1000 B in the 512..1023 bucket, 3000 B in 2048..4095.
    assert_eq!(exact[3], "sizes\t9:1\t11:1");
    // Sites by line, largest first; then the full stacks.
    assert_eq!(exact[4], "site\t3000\t1");
    assert_eq!(exact[6], "site\t1000\t1");
    assert_eq!(exact[8], "stack\t3000\t1");
    assert!(
        exact
            .iter()
            .any(|l| l.starts_with("frame\ttests/suite_records.rs\t")),
        "{exact:?}"
    );
    assert!(
        exact
            .iter()
            .any(|l| l.starts_with("source\ttests/suite_records.rs\t")
                && l.ends_with("let b = black_box(vec![2u8; 3000]);")),
        "{exact:?}"
    );

    let over = record(&file, "child_over");
    assert_eq!(
        over[1],
        "outcome\tfail\tmemassert: peak 2 KiB exceeds max 1 KiB in suite_records::child_over"
    );
    assert_eq!(over[2], "figures\t2048\t2048\t1\t0\t0");

    let panics = record(&file, "child_panics");
    assert_eq!(panics[1], "outcome\tpanic\tboom\\tand");
    assert_eq!(panics[2], "end", "no figures: the scope never finished");

    let errs = record(&file, "child_errs");
    assert_eq!(errs[1], "outcome\terror\tthe test body returned Err");

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nothing_is_written_without_the_variable() {
    let dir = folder("empty");
    run_children("".as_ref());
    assert!(!dir.exists());
    let out = memassert_tests::this_test_binary()
        .args(["--ignored", "--exact", "child_exact"])
        .output()
        .expect("the test binary runs again");
    assert!(out.status.success());
    assert!(!dir.exists());
}

#[test]
fn a_record_that_cannot_be_written_changes_no_outcome() {
    // A file where the folder should be: every write fails.
    let blocker = folder("blocked");
    std::fs::write(&blocker, "not a folder").unwrap();
    let text = run_children(blocker.join("records").as_os_str());
    assert!(
        text.contains("memassert: MEMASSERT_REPORT: could not write the record of suite_records::child_exact under"),
        "{text}"
    );
    let _ = std::fs::remove_file(&blocker);
}
