//! Optimised builds (issues 10 and 18): a fixture crate built with
//! `cargo test --release` and the default release profile (no debug info),
//! with line tables only, and with `debug = "limited"`.
//!
//! - `no_growth`: in every build every gate fails, with the growth where
//!   the build can show it and as "cannot be checked" (with the fix) where
//!   it cannot. None passes vacuously.
//! - Ownership: in the default release build (no names at all), a leak on
//!   a thread, a scoped thread, a pool or a runtime the test started fails,
//!   and its clean twin passes, beside other tests; work handed to rayon's
//!   global pool is exact alone in the process and fails as unchecked
//!   beside other tests.
//!
//! - Dependencies without debug info (`[profile.dev.package."*"] debug =
//!   false`, a common setting for faster builds): std's generic code that
//!   a dev build shares from a dependency's object code has no line table,
//!   and the test's own lines must still be the sites.
//!
//! One fixture workspace, built in two profiles (`release` and `limited`;
//! line tables only is a per-package override of `limited`), sharing one
//! target directory with this workspace's `Cargo.lock` (no network needed
//! once the workspace built). Dependencies are built at `opt-level = 1`:
//! only the fixture's own code needs the profile's settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

const CACHE: &str = r#"
use std::sync::Mutex;

/// A cache that keeps everything: the bug the gates must catch.
pub struct Cache {
    entries: Vec<Vec<u8>>,
}

impl Cache {
    pub const fn new() -> Cache {
        Cache { entries: Vec::new() }
    }

    pub fn insert(&mut self, value: &[u8]) {
        self.entries.push(value.to_vec());
    }
}

pub static BY_FILE: Mutex<Cache> = Mutex::new(Cache::new());
pub static BY_FUNCTION: Mutex<Cache> = Mutex::new(Cache::new());
"#;

const LABELS: &str = r#"
/// Labels, one allocation per label plus the vector's growth.
pub fn labels(n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(format!("label number {i}"));
    }
    out
}
"#;

const PARITY: &str = r#"
memassert::install!();

#[test]
fn profile() {
    let (kept, report) = memassert::track(|| paritydemo::labels::labels(5));
    println!("BEGIN\n{}END", report.snapshot_text());
    drop(kept);
}
"#;

const GATES: &str = r#"
memassert::install!();

#[test]
#[memassert::track_alloc(repeat = 3, no_growth = "src/cache.rs")]
fn by_file() {
    demo::cache::BY_FILE.lock().unwrap().insert(&[1u8; 4096]);
}

#[test]
#[memassert::track_alloc(repeat = 3, no_growth = "demo::cache")]
fn by_function() {
    demo::cache::BY_FUNCTION.lock().unwrap().insert(&[1u8; 4096]);
}

#[test]
#[memassert::track_alloc(max = "1 KiB")]
fn peak() {
    drop(std::hint::black_box(demo::cache::Cache::new()).insert(&[1u8; 4096]));
}
"#;

/// The ownership fixture's dependencies (issue 18's shapes).
const OWNERSHIP_DEPS: &str = "[dev-dependencies]\nrayon = \"1.10\"\n\
    tokio = { version = \"1.38\", features = [\"rt\", \"rt-multi-thread\", \"macros\"] }\n\n";

/// Issue 18's shapes, in a build with no names at all: each leak on
/// another thread fails, each clean twin passes, beside each other on
/// libtest's parallel threads. Work handed to rayon's global pool (older
/// than the test, started in a `Once`) runs alone in a child process
/// (`alone_*`, ignored here), and fails as unchecked beside other tests.
const OWNERSHIP: &str = r#"
use std::sync::Mutex;
use rayon::prelude::*;

memassert::install!();

static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn keep(bytes: usize) {
    KEPT.lock().unwrap().push(vec![1u8; bytes]);
}

#[inline(never)]
fn worker() {
    keep(64 << 10);
}

#[inline(never)]
fn clean_worker() {
    drop(std::hint::black_box(vec![1u8; 64 << 10]));
}

fn check_item(i: &u32) {
    if *i == 7 {
        keep(64 << 10);
    }
}

fn clean_item(i: &u32) {
    drop(std::hint::black_box(vec![*i as u8; 100]));
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn closure_thread_leaks() {
    std::thread::spawn(|| keep(64 << 10)).join().unwrap();
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn closure_thread_clean() {
    std::thread::spawn(|| drop(std::hint::black_box(vec![1u8; 4096]))).join().unwrap();
}

#[test]
#[memassert::track_alloc(max = "100 KiB")]
fn scoped_threads_peak() {
    let both = std::sync::Barrier::new(2);
    let hold = || {
        let block = std::hint::black_box(vec![0u8; 768 * 1024]);
        both.wait();
        block.len()
    };
    std::thread::scope(|s| {
        let a = s.spawn(hold);
        let b = s.spawn(hold);
        assert_eq!(a.join().unwrap() + b.join().unwrap(), 1536 * 1024);
    });
}

#[test]
#[memassert::track_alloc(max = "100 KiB")]
fn scoped_threads_small() {
    std::thread::scope(|s| {
        s.spawn(|| drop(std::hint::black_box(vec![0u8; 1024])));
        s.spawn(|| drop(std::hint::black_box(vec![0u8; 1024])));
    });
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn module_fn_thread_leaks() {
    std::thread::spawn(worker).join().unwrap();
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn module_fn_thread_clean() {
    std::thread::spawn(clean_worker).join().unwrap();
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn thread_of_a_thread_leaks() {
    std::thread::spawn(|| std::thread::spawn(worker).join().unwrap()).join().unwrap();
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn built_pool_leaks() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let v: Vec<u32> = (0..100).collect();
    pool.install(|| v.par_iter().for_each(check_item));
}

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn built_pool_clean() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let v: Vec<u32> = (0..100).collect();
    pool.install(|| v.par_iter().for_each(clean_item));
}

async fn leaky_task() {
    keep(64 << 10);
}

async fn clean_task() {
    drop(std::hint::black_box(vec![1u8; 64 << 10]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[memassert::track_alloc(leaks = "0B")]
async fn tokio_task_leaks() {
    tokio::spawn(leaky_task()).await.unwrap();
}

#[memassert::track_alloc(leaks = "0B")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_task_leaks_above() {
    tokio::spawn(leaky_task()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[memassert::track_alloc(leaks = "0B")]
async fn tokio_task_clean() {
    tokio::spawn(clean_task()).await.unwrap();
}

#[tokio::test]
#[memassert::track_alloc(leaks = "0B")]
async fn spawn_blocking_leaks() {
    tokio::task::spawn_blocking(worker).await.unwrap();
}

#[test]
#[ignore]
#[memassert::track_alloc(leaks = "0B")]
fn alone_global_pool_leaks() {
    let v: Vec<u32> = (0..100).collect();
    v.par_iter().for_each(check_item);
}

#[test]
#[ignore]
#[memassert::track_alloc(leaks = "0B")]
fn alone_global_pool_clean() {
    let v: Vec<u32> = (0..100).collect();
    v.par_iter().for_each(clean_item);
}
"#;

fn fixture() -> PathBuf {
    fixture_for("release_builds", "demo", "")
}

/// The same fixture, whose own code `limited` builds with line tables only
/// (the dependencies are shared with the other fixtures' `limited` builds).
fn fixture_lines() -> PathBuf {
    fixture_for(
        "release_lines",
        "demolines",
        "\n[profile.limited.package.demolines]\ndebug = \"line-tables-only\"\n",
    )
}

/// The fixture crate `package` in a directory of its own (tests run in
/// parallel). Fixtures share a target directory, so each has its own
/// package name: two packages `demo` would overwrite each other's library.
fn fixture_for(name: &str, package: &str, extra: &str) -> PathBuf {
    let dir = fixture_crate(
        name,
        package,
        &format!(
            "{dev}[workspace]\n\n\
             [profile.release.package.\"*\"]\nopt-level = 1\n\n\
             [profile.limited]\ninherits = \"release\"\ndebug = \"limited\"\n{extra}",
            dev = if package == "ownerdemo" {
                OWNERSHIP_DEPS
            } else {
                ""
            },
        ),
    );
    std::fs::write(dir.join("src/lib.rs"), "pub mod cache;\npub mod labels;\n").unwrap();
    std::fs::write(dir.join("src/cache.rs"), CACHE).unwrap();
    std::fs::write(dir.join("src/labels.rs"), LABELS).unwrap();
    std::fs::write(
        dir.join("tests/gates.rs"),
        GATES.replace("demo::", &format!("{package}::")),
    )
    .unwrap();
    if package == "ownerdemo" {
        std::fs::write(dir.join("tests/ownership.rs"), OWNERSHIP).unwrap();
    }
    std::fs::write(dir.join("tests/parity.rs"), PARITY).unwrap();
    dir
}

/// A fresh fixture crate `package` under `target/fixtures/{name}`, with
/// empty `src/` and `tests/`, depending on this workspace's memassert, its
/// manifest ending with `rest`, and this workspace's `Cargo.lock`.
fn fixture_crate(name: &str, package: &str, rest: &str) -> PathBuf {
    let dir = workspace_root().join("target/fixtures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let memassert = workspace_root().join("memassert");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = {package:?}\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmemassert = {{ path = {:?} }}\n\n{rest}",
            memassert.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

fn cargo_test(dir: &Path, profile: &str) -> Output {
    cargo_run_test(dir, profile, "gates", &[])
}

fn cargo_run_test(dir: &Path, profile: &str, test: &str, args: &[&str]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args([
            "test",
            "--offline",
            "--quiet",
            "--profile",
            profile,
            "--test",
            test,
            "--",
        ])
        .args(args)
        .current_dir(dir)
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("target/fixtures/target"),
        )
        .env_remove("MEMASSERT_ROOT")
        .env_remove("MEMASSERT_REPORT")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The failure message of test `name` in libtest's output.
fn failure_of<'a>(output: &'a str, name: &str) -> &'a str {
    let header = format!("---- {name} stdout ----");
    let start = output
        .find(&header)
        .unwrap_or_else(|| panic!("{name} did not fail:\n{output}"));
    let rest = &output[start + header.len()..];
    let end = rest.find("\n---- ").unwrap_or(rest.len());
    &rest[..end]
}

/// Without full function names for inlined code, the function-path gate
/// fails as unchecked and names the setting that fixes it.
fn assert_function_gate_unchecked(all: &str, package: &str) {
    let by_function = failure_of(all, "by_function");
    assert!(
        by_function.contains(&format!("no_growth \"{package}::cache\" cannot be checked"))
            && by_function.contains("debug = \"limited\""),
        "{by_function}"
    );
}

#[test]
fn every_gate_fails_at_every_debug_level() {
    let dir = fixture();

    let out = cargo_test(&dir, "release");
    let all = text(&out);
    assert!(
        !out.status.success(),
        "no debug info: the gates passed\n{all}"
    );
    let by_file = failure_of(&all, "by_file");
    assert!(
        by_file.contains("no_growth \"src/cache.rs\" cannot be checked")
            && by_file.contains("they have no file and line")
            && by_file.contains("debug = \"line-tables-only\""),
        "{by_file}"
    );
    assert_function_gate_unchecked(&all, "demo");
    // Figures still hold; the sites say how to get their lines.
    let peak = failure_of(&all, "peak");
    assert!(
        peak.contains("exceeds max 1 KiB in gates::peak")
            && peak.contains("(<unknown>: code without line tables"),
        "{peak}"
    );

    let out = cargo_test(&fixture_lines(), "limited");
    let all = text(&out);
    assert!(
        !out.status.success(),
        "line tables only: the gates passed\n{all}"
    );
    let by_file = failure_of(&all, "by_file");
    assert!(
        by_file.contains("live memory grew by") && by_file.contains("src/cache.rs:"),
        "{by_file}"
    );
    assert_function_gate_unchecked(&all, "demolines");

    let out = cargo_test(&dir, "limited");
    let all = text(&out);
    assert!(!out.status.success(), "limited: the gates passed\n{all}");
    for name in ["by_file", "by_function"] {
        let failure = failure_of(&all, name);
        assert!(
            failure.contains("live memory grew by") && failure.contains("src/cache.rs:"),
            "{failure}"
        );
    }
}

/// The snapshot text of the same report in a dev build and in a release
/// build with `debug = "limited"`: equal (inlined frames resolved to the
/// same sites and functions).
#[test]
fn release_with_limited_debug_info_reads_as_dev() {
    let dir = fixture_for("release_parity", "paritydemo", "");
    let text = |profile: &str| {
        let out = cargo_run_test(&dir, profile, "parity", &["--nocapture"]);
        let all = text(&out);
        assert!(out.status.success(), "{profile}:\n{all}");
        let start = all.find("BEGIN\n").expect("the report") + "BEGIN\n".len();
        let end = all[start..].find("END").expect("its end") + start;
        all[start..end].to_string()
    };
    let dev = text("dev");
    let limited = text("limited");
    assert!(dev.contains("src/labels.rs:6"), "{dev}");
    assert_eq!(dev, limited);
}

/// Issue 18's shapes in `cargo test --release` with the default profile:
/// no debug info, so nothing can be told by name.
#[test]
fn ownership_holds_without_debug_info() {
    let dir = fixture_for("release_ownership", "ownerdemo", "");
    let out = cargo_run_test(&dir, "release", "ownership", &[]);
    let all = text(&out);
    assert!(all.contains("running 15 tests"), "{all}");
    let leaking = [
        "closure_thread_leaks",
        "module_fn_thread_leaks",
        "thread_of_a_thread_leaks",
        "built_pool_leaks",
        "tokio_task_leaks",
        "tokio_task_leaks_above",
        "spawn_blocking_leaks",
    ];
    for name in leaking {
        let failure = failure_of(&all, name);
        assert!(
            failure.contains("memassert: leaked 64") && failure.contains("exceeds leaks 0B"),
            "{name}: {failure}"
        );
    }
    let peak = failure_of(&all, "scoped_threads_peak");
    assert!(
        peak.contains("memassert: peak 1.5 MiB exceeds max 100 KiB"),
        "{peak}"
    );
    for clean in [
        "closure_thread_clean",
        "scoped_threads_small",
        "module_fn_thread_clean",
        "built_pool_clean",
        "tokio_task_clean",
    ] {
        assert!(
            !all.contains(&format!("---- {clean} stdout ----"))
                && !all.contains(&format!("{clean} --- FAILED")),
            "{clean} failed:\n{all}"
        );
    }
    // rayon's global pool, older than the test: exact alone in the process.
    let alone = |name: &str| {
        let out = cargo_run_test(
            &dir,
            "release",
            "ownership",
            &["--exact", name, "--ignored", "--test-threads=1"],
        );
        (out.status.success(), text(&out))
    };
    let (ok, leaks) = alone("alone_global_pool_leaks");
    assert!(!ok && leaks.contains("memassert: leaked 64"), "{leaks}");
    let (ok, clean) = alone("alone_global_pool_clean");
    assert!(ok, "{clean}");
    // Beside other tests, with no names to follow: unchecked, with the fix.
    let out = cargo_run_test(
        &dir,
        "release",
        "ownership",
        &["--ignored", "alone_global_pool"],
    );
    let both = text(&out);
    for name in ["alone_global_pool_leaks", "alone_global_pool_clean"] {
        let failure = failure_of(&both, name);
        assert!(
            failure.contains("cannot be checked") && failure.contains("--test-threads=1"),
            "{name}: {failure}"
        );
    }
}

const STRINGS: &str = r#"memassert::install!();

#[test]
#[memassert::track_alloc(leaks = "0B")]
fn strings() {
    let from = String::from("eleven char");
    let owned = "abc".to_owned();
    let formatted = format!("{}-{}", 1, 2);
    let number = 42u32.to_string();
    std::mem::forget((from, owned, formatted, number));
}
"#;

/// With `debug = false` for every dependency (memassert's own included),
/// a dev build runs std's `to_vec` for the test's `String::from` from a
/// dependency's object code (shared generics), named
/// `<T as alloc::slice::...::ConvertVec>::to_vec` with no file. It is std's
/// code, not a site: each leak is reported at the test's own line (before,
/// all four read as one `<unknown>` site).
#[test]
fn dependencies_without_debug_info_leave_the_tests_lines() {
    let dir = fixture_crate(
        "nodebugdeps",
        "nodebugdeps",
        "[workspace]\n\n\
         [profile.nodebugdeps]\ninherits = \"dev\"\n\n\
         [profile.nodebugdeps.package.\"*\"]\ndebug = false\n",
    );
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::write(dir.join("tests/strings.rs"), STRINGS).unwrap();

    let out = cargo_run_test(&dir, "nodebugdeps", "strings", &[]);
    let all = text(&out);
    let failure = failure_of(&all, "strings");
    assert!(
        failure.contains("memassert: leaked 19 B in 4 blocks"),
        "{failure}"
    );
    for (line, source) in [
        (6, "String::from(\"eleven char\")"),
        (7, "\"abc\".to_owned()"),
        (8, "format!(\"{}-{}\", 1, 2)"),
        (9, "42u32.to_string()"),
    ] {
        assert!(
            failure.contains(&format!("tests/strings.rs:{line}: size="))
                && failure.contains(source),
            "line {line}:\n{failure}"
        );
    }
    assert!(!failure.contains("#1: <unknown>"), "{failure}");
}
