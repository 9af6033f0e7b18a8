//! The failing report shown in README.md, checked line by line.

memassert::install!();

struct Cache {
    entries: Vec<Vec<u8>>,
}

impl Cache {
    fn insert(&mut self, value: &[u8]) {
        self.entries.push(value.to_vec());
    }
}

#[memassert::track_alloc(max = "1 MiB", leaks = "0 B")]
fn cache_stays_small() {
    let mut cache = Cache {
        entries: Vec::new(),
    };
    for _ in 0..3 {
        cache.insert(&[0u8; 400 * 1024]);
    }
    std::mem::forget(cache);
}

#[test]
fn failing_report_reads_as_documented() {
    let payload = std::panic::catch_unwind(cache_stays_small).expect_err("the limits fail");
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    let expected = "\
memassert: peak 1.2 MiB exceeds max 1 MiB in readme_demo::cache_stays_small
Top 1 site by live size at peak
#1: tests/readme_demo.rs:11: size=1200 KiB, count=4, average=300 KiB
    self.entries.push(value.to_vec());
    tests/readme_demo.rs:11 in readme_demo::Cache::insert
    tests/readme_demo.rs:21 in readme_demo::cache_stays_small::{{closure}}

memassert: leaked 1.2 MiB in 4 blocks exceeds leaks 0 B in readme_demo::cache_stays_small
Top 1 site by leaked size
#1: tests/readme_demo.rs:11: size=1200 KiB, count=4, average=300 KiB
    self.entries.push(value.to_vec());
    tests/readme_demo.rs:11 in readme_demo::Cache::insert
    tests/readme_demo.rs:21 in readme_demo::cache_stays_small::{{closure}}
Measured: peak 1.2 MiB, total 1.2 MiB in 4 allocations, leaked 1.2 MiB in 4 blocks";
    for (i, (got, want)) in message.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {} of the report", i + 1);
    }
    // Only `MEMASSERT_DUMP`'s line may follow, when the variable is set.
    let extra: Vec<&str> = message.lines().skip(expected.lines().count()).collect();
    assert!(
        extra.iter().all(|l| l.starts_with("MEMASSERT_DUMP: ")),
        "{message}"
    );
    assert!(
        message.lines().count() >= expected.lines().count(),
        "{message}"
    );
}

/// The profile snippet an unoptimised tracked test prints is the one the
/// README shows (twice: the quick start and "Speed") and the one
/// `.ci/real-suites` measures with: one text, so that none of them drifts.
#[test]
fn speed_snippet_reads_the_same_everywhere() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let snippet = memassert::__private::SPEED_SNIPPET;
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(
        readme
            .matches(&format!(
                "```toml\n# Cargo.toml of your workspace\n{snippet}```"
            ))
            .count()
            + readme.matches(&format!("```toml\n{snippet}```")).count(),
        2,
        "README.md shows memassert::__private::SPEED_SNIPPET, as is, twice:\n{snippet}"
    );
    let suites = std::fs::read_to_string(root.join(".ci/real-suites")).unwrap();
    assert!(
        suites.contains(&format!("SPEED = \"\"\"{snippet}\"\"\"")),
        ".ci/real-suites measures with SPEED_SNIPPET:\n{snippet}"
    );
}
