//! `no_growth` in optimised builds with each level of debug info (issue
//! 10): a fixture crate with a cache that grows, gated by file and by
//! function path, built in release with no debug info, with line tables
//! only, and with `debug = "limited"`. In every build every gate fails:
//! with the growth where the build can show it, and as "cannot be checked"
//! (with the fix) where it cannot. None passes vacuously.
//!
//! The fixture is built in its own target directory with this workspace's
//! `Cargo.lock` (no network needed once the workspace built); three release
//! builds take a few minutes on two cores the first time.

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

fn fixture() -> PathBuf {
    fixture_for("release_builds", "demo")
}

/// The fixture crate `package` in a directory of its own (tests run in
/// parallel). Fixtures share a target directory, so each has its own
/// package name: two packages `demo` would overwrite each other's library.
fn fixture_for(name: &str, package: &str) -> PathBuf {
    let dir = workspace_root().join("target/fixtures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let memassert = workspace_root().join("memassert");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = {package:?}\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmemassert = {{ path = {:?} }}\n\n[workspace]\n\n\
             [profile.nodebug]\ninherits = \"release\"\ndebug = false\n\n\
             [profile.lines]\ninherits = \"release\"\ndebug = \"line-tables-only\"\n\n\
             [profile.limited]\ninherits = \"release\"\ndebug = \"limited\"\n",
            memassert.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub mod cache;\npub mod labels;\n").unwrap();
    std::fs::write(dir.join("src/cache.rs"), CACHE).unwrap();
    std::fs::write(dir.join("src/labels.rs"), LABELS).unwrap();
    std::fs::write(dir.join("tests/gates.rs"), GATES).unwrap();
    std::fs::write(dir.join("tests/parity.rs"), PARITY).unwrap();
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
fn assert_function_gate_unchecked(all: &str) {
    let by_function = failure_of(all, "by_function");
    assert!(
        by_function.contains("no_growth \"demo::cache\" cannot be checked")
            && by_function.contains("debug = \"limited\""),
        "{by_function}"
    );
}

#[test]
fn every_gate_fails_at_every_debug_level() {
    let dir = fixture();

    let out = cargo_test(&dir, "nodebug");
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
    assert_function_gate_unchecked(&all);
    // Figures still hold; the sites say how to get their lines.
    let peak = failure_of(&all, "peak");
    assert!(
        peak.contains("exceeds max 1 KiB in gates::peak")
            && peak.contains("(<unknown>: code without line tables"),
        "{peak}"
    );

    let out = cargo_test(&dir, "lines");
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
    assert_function_gate_unchecked(&all);

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
    let dir = fixture_for("release_parity", "paritydemo");
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
