//! Snapshot review end to end (issue 5): a fixture crate records a report
//! as an insta snapshot, passes on re-run, fails with insta's diff when its
//! allocations change, and writes byte-identical, machine-independent
//! `.snap` files.
//!
//! The fixture is built in its own target directory with this workspace's
//! `Cargo.lock`, so it needs no network after the workspace itself built.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Fixture {
    dir: PathBuf,
}

const TEST_FILE: &str = r#"
memassert::install!();

fn build(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("item number {i}")).collect()
}

#[test]
fn profile() {
    let (items, report) = memassert::track(|| build(COUNT).len());
    assert_eq!(items, COUNT);
    memassert::assert_snapshot!(report, "profile");
}

#[test]
#[memassert::track_alloc(snapshot)]
fn attribute_profile() {
    let kept = build(COUNT);
    assert_eq!(kept.len(), COUNT);
}
"#;

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = workspace_root().join("target").join("fixtures").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        let memassert = workspace_root().join("memassert");
        std::fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"fixture\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
                 [dependencies]\nmemassert = {{ path = {:?} }}\n\n[workspace]\n",
                memassert.display().to_string()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("src.rs"), "").unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "").unwrap();
        std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        Fixture { dir }
    }

    fn write_test(&self, count: usize) {
        let text = TEST_FILE.replace("COUNT", &count.to_string());
        std::fs::write(self.dir.join("tests/profile.rs"), text).unwrap();
    }

    fn cargo_test(&self, update: &str) -> Output {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        Command::new(cargo)
            .args(["test", "--offline", "--quiet", "--test", "profile"])
            .current_dir(&self.dir)
            .env(
                "CARGO_TARGET_DIR",
                workspace_root().join("target/fixtures/target"),
            )
            .env("INSTA_UPDATE", update)
            .env("CI", "true")
            .env_remove("INSTA_FORCE_PASS")
            .env_remove("MEMASSERT_ROOT")
            .env_remove("MEMASSERT_REPORT")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .expect("cargo runs")
    }

    fn snap(&self, name: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .join("tests/snapshots")
                .join(format!("profile__{name}.snap")),
        )
        .unwrap_or_else(|e| panic!("snapshot {name}: {e}"))
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn snapshots_record_pass_and_fail_on_change() {
    let fx = Fixture::new("snapshot_review");
    fx.write_test(100);

    // Record.
    let out = fx.cargo_test("always");
    assert!(out.status.success(), "recording failed:\n{}", text(&out));
    let first = fx.snap("profile");
    let first_attr = fx.snap("attribute_profile");

    // What a snapshot holds, and what it must not.
    assert!(first.contains("total: "), "{first}");
    assert!(first.contains("\n  tests/profile.rs:5: size="), "{first}");
    assert!(first.contains("\n    in profile::build\n"), "{first}");
    assert!(
        first.contains("(0..n).map(|i| format!(\"item number {i}\")).collect()"),
        "{first}"
    );
    for snap in [&first, &first_attr] {
        for banned in [
            "0x",
            "/home",
            "/root",
            "/rustc/",
            ".cargo/registry",
            "/work/",
        ] {
            let body = snap.split("---").nth(2).unwrap_or(snap);
            assert!(
                !body.contains(banned),
                "snapshot contains {banned:?}:\n{snap}"
            );
        }
    }

    // Re-run unchanged: passes, and the files are byte-identical.
    let out = fx.cargo_test("no");
    assert!(
        out.status.success(),
        "unchanged re-run failed:\n{}",
        text(&out)
    );
    let out = fx.cargo_test("always");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        fx.snap("profile"),
        first,
        "snapshot not byte-identical across runs"
    );
    assert_eq!(fx.snap("attribute_profile"), first_attr);

    // Allocate more: fails with insta's diff, and leaves a .snap.new.
    fx.write_test(150);
    let out = fx.cargo_test("no");
    let output = text(&out);
    assert!(
        !out.status.success(),
        "changed allocations passed:\n{output}"
    );
    assert!(output.contains("Snapshot Summary"), "{output}");
    assert!(
        output.contains("-old snapshot") && output.contains("+new results"),
        "{output}"
    );
    assert!(
        output.contains("in 150 allocations") || output.contains("allocations"),
        "{output}"
    );
}
