//! DHAT JSON and folded-stack exports (issue 5), checked against the report
//! they came from.

use std::collections::HashSet;

use memassert::Key;

memassert::install!();

/// Global tracing sees every thread: tests of this binary take turns.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn workload() -> Vec<Vec<u8>> {
    let mut kept = Vec::new();
    for i in 0..10 {
        kept.push(vec![0u8; 100 * (i + 1)]);
        drop(vec![0u8; 50]);
    }
    kept
}

#[test]
fn dhat_json_has_dhat_fields_and_report_totals() {
    let _serial = serial();
    let (kept, report) = memassert::track(workload);
    let json: serde_json::Value = serde_json::from_str(&report.to_dhat_json()).expect("valid JSON");
    let top: HashSet<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in [
        "dhatFileVersion",
        "mode",
        "verb",
        "bklt",
        "bkacc",
        "tu",
        "Mtu",
        "cmd",
        "pid",
        "te",
        "pps",
        "ftbl",
    ] {
        assert!(top.contains(field), "missing top-level field {field}");
    }
    assert_eq!(json["dhatFileVersion"], 2);
    assert_eq!(json["mode"], "rust-heap");
    let ftbl = json["ftbl"].as_array().unwrap();
    assert_eq!(ftbl[0], "[root]");
    let pps = json["pps"].as_array().unwrap();
    let (mut tb, mut tbk, mut eb, mut ebk, mut gb) = (0, 0, 0, 0, 0);
    for pp in pps {
        for field in ["tb", "tbk", "mb", "mbk", "gb", "gbk", "eb", "ebk", "fs"] {
            assert!(
                pp.get(field).is_some(),
                "program point without {field}: {pp}"
            );
        }
        for f in pp["fs"].as_array().unwrap() {
            assert!((f.as_u64().unwrap() as usize) < ftbl.len());
        }
        assert!(pp["mb"].as_u64() >= pp["gb"].as_u64());
        tb += pp["tb"].as_u64().unwrap() as usize;
        tbk += pp["tbk"].as_u64().unwrap() as usize;
        eb += pp["eb"].as_u64().unwrap() as usize;
        ebk += pp["ebk"].as_u64().unwrap() as usize;
        gb += pp["gb"].as_u64().unwrap() as usize;
    }
    assert_eq!(tb, report.total());
    assert_eq!(tbk, report.allocs());
    assert_eq!(eb, report.leaked());
    assert_eq!(ebk, report.leaked_blocks());
    assert_eq!(gb, report.peak());
    let frames: Vec<&str> = ftbl.iter().map(|f| f.as_str().unwrap()).collect();
    assert!(
        frames
            .iter()
            .any(|f| f.contains("exports::workload (tests/exports.rs:")),
        "{frames:?}"
    );
    drop(kept);
}

#[test]
fn folded_stacks_add_up_to_the_report() {
    let _serial = serial();
    let (kept, report) = memassert::track(workload);
    let folded = report.to_folded();
    let mut sum = 0;
    for line in folded.lines() {
        let (stack, bytes) = line.rsplit_once(' ').expect("`stack bytes`");
        assert!(!stack.is_empty());
        sum += bytes.parse::<usize>().expect("a byte count");
    }
    assert_eq!(sum, report.total());
    assert!(
        folded.contains("exports::workload (tests/exports.rs:"),
        "{folded}"
    );
    drop(kept);
}

#[test]
fn snapshot_exports_add_up_to_the_snapshot() {
    let _serial = serial();
    memassert::start(8);
    let kept = workload();
    let snapshot =
        memassert::take_snapshot().filter(&[memassert::Filter::include("tests/exports.rs")]);
    memassert::stop();
    let folded_sum: usize = snapshot
        .to_folded()
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<usize>().unwrap())
        .sum();
    assert_eq!(folded_sum, snapshot.total_size());
    let json: serde_json::Value = serde_json::from_str(&snapshot.to_dhat_json()).unwrap();
    let eb: u64 = json["pps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["eb"].as_u64().unwrap())
        .sum();
    assert_eq!(eb as usize, snapshot.total_size());
    assert_eq!(
        snapshot
            .statistics(Key::Line)
            .iter()
            .map(|s| s.size)
            .sum::<usize>(),
        kept.iter().map(|v| v.len()).sum::<usize>() + kept.capacity() * 24
    );
    drop(kept);
}

#[test]
fn memassert_dump_writes_both_files_and_says_where() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("memassert-dump-{}", std::process::id()));
    let (_, report) = memassert::track(|| vec![1u8; 4096]);
    let (json, folded) = report.write_exports(&dir, "exports.dump_test").unwrap();
    assert!(json.ends_with("exports.dump_test.dhat.json"));
    assert!(folded.ends_with("exports.dump_test.folded"));
    assert!(std::fs::read_to_string(&json)
        .unwrap()
        .contains("\"dhatFileVersion\":2"));
    assert!(std::fs::read_to_string(&folded)
        .unwrap()
        .ends_with(" 4096\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
