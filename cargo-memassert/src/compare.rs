//! `cargo memassert compare BASE NEW [--threshold P] [--fail-on-increase P]`:
//! the tests whose peak, total or allocation count moved beyond a
//! threshold, new and removed tests; exit status 1 when one increased
//! beyond `--fail-on-increase`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::records::{Figures, Record};
use crate::text;

/// What `compare` found.
pub struct Comparison {
    pub text: String,
    /// Tests that increased beyond `--fail-on-increase`.
    pub failed: Vec<String>,
}

/// A figure: its name, how to read it, whether it is in bytes.
type Figure = (&'static str, fn(&Figures) -> u64, bool);

const FIGURES: [Figure; 3] = [
    ("peak", |f| f.peak, true),
    ("total", |f| f.total, true),
    ("allocs", |f| f.allocs, false),
];

/// Whether `new` moved beyond `pct` percent from `old` (any change from 0).
fn beyond(old: u64, new: u64, pct: f64) -> bool {
    if old == 0 {
        return new > 0;
    }
    (new as f64 - old as f64).abs() * 100.0 > pct * old as f64
}

fn show(value: u64, bytes: bool) -> String {
    if bytes {
        text::size(value)
    } else {
        value.to_string()
    }
}

pub fn compare(
    base: &BTreeMap<String, Record>,
    new: &BTreeMap<String, Record>,
    threshold: f64,
    fail_on_increase: Option<f64>,
) -> Comparison {
    let mut out = String::new();
    let both: Vec<&String> = new.keys().filter(|k| base.contains_key(*k)).collect();
    let added: Vec<&String> = new.keys().filter(|k| !base.contains_key(*k)).collect();
    let removed: Vec<&String> = base.keys().filter(|k| !new.contains_key(*k)).collect();
    let mut increases = Vec::new();
    let mut decreases = Vec::new();
    let mut failed = Vec::new();
    let mut no_figures = Vec::new();
    let mut outcomes = Vec::new();
    for id in &both {
        let (old, now) = (&base[*id], &new[*id]);
        if old.outcome != now.outcome {
            outcomes.push(format!(
                "  {id}: {} -> {}{}",
                old.outcome.as_str(),
                now.outcome.as_str(),
                if now.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", now.message)
                }
            ));
        }
        let (Some(fo), Some(fn_)) = (old.figures, now.figures) else {
            no_figures.push(*id);
            continue;
        };
        let mut up = Vec::new();
        let mut down = Vec::new();
        let mut fails = false;
        for (name, get, bytes) in FIGURES {
            let (a, b) = (get(&fo), get(&fn_));
            if !beyond(a, b, threshold)
                && !fail_on_increase.is_some_and(|p| b > a && beyond(a, b, p))
            {
                continue;
            }
            let line = format!(
                "{name} {} -> {} ({})",
                show(a, bytes),
                show(b, bytes),
                text::change(a, b)
            );
            if b > a {
                if fail_on_increase.is_some_and(|p| beyond(a, b, p)) {
                    fails = true;
                }
                up.push(line);
            } else {
                down.push(line);
            }
        }
        if !up.is_empty() {
            increases.push(format!(
                "  {}{}\n      {}",
                id,
                if fails {
                    "  [beyond --fail-on-increase]"
                } else {
                    ""
                },
                up.join(", ")
            ));
        }
        if !down.is_empty() {
            decreases.push(format!("  {id}\n      {}", down.join(", ")));
        }
        if fails {
            failed.push((*id).clone());
        }
    }
    let _ = writeln!(
        out,
        "memassert compare: {} tests in both, {} new, {} removed; changes beyond {threshold}%",
        both.len(),
        added.len(),
        removed.len()
    );
    let section = |out: &mut String, title: &str, lines: &[String]| {
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title} ({}):", lines.len());
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    };
    section(&mut out, "Increased", &increases);
    section(&mut out, "Decreased", &decreases);
    let describe = |records: &BTreeMap<String, Record>, ids: &[&String]| -> Vec<String> {
        ids.iter()
            .map(|id| match records[*id].figures {
                Some(f) => format!(
                    "  {id}: peak {}, total {}, {} allocs",
                    text::size(f.peak),
                    text::size(f.total),
                    f.allocs
                ),
                None => format!("  {id}: no figures [{}]", records[*id].outcome.as_str()),
            })
            .collect()
    };
    section(&mut out, "Outcome changed", &outcomes);
    section(&mut out, "New tests", &describe(new, &added));
    section(&mut out, "Removed tests", &describe(base, &removed));
    let no_figures: Vec<String> = no_figures
        .iter()
        .map(|id| {
            format!(
                "  {id}: {} -> {}",
                base[*id].outcome.as_str(),
                new[*id].outcome.as_str()
            )
        })
        .collect();
    section(
        &mut out,
        "Not compared (no figures: the body panicked or returned Err)",
        &no_figures,
    );
    if increases.is_empty() && decreases.is_empty() {
        let _ = writeln!(out, "\nNo test moved beyond {threshold}%.");
    }
    if let Some(p) = fail_on_increase {
        if failed.is_empty() {
            let _ = writeln!(out, "\nOK: no test increased beyond {p}%.");
        } else {
            let _ = writeln!(
                out,
                "\nFAILED: {} test{} increased beyond {p}%: {}",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" },
                failed.join(", ")
            );
        }
    }
    Comparison { text: out, failed }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::compare;
    use crate::records::{parse, Record};

    fn run(tests: &[(&str, &str, [u64; 3])]) -> BTreeMap<String, Record> {
        let mut text = String::from("memassert-records\t1\n");
        for (name, outcome, [peak, total, allocs]) in tests {
            text.push_str(&format!(
                "test\tdemo::{name}\tdemo\noutcome\t{outcome}\t\nfigures\t{peak}\t{total}\t{allocs}\t0\t0\nend\n"
            ));
        }
        parse(Path::new("t.memassert"), &text)
            .unwrap()
            .into_iter()
            .map(|r| (r.id(), r))
            .collect()
    }

    #[test]
    fn increases_beyond_the_gate_fail_and_the_rest_is_listed() {
        let base = run(&[
            ("same", "pass", [100, 100, 1]),
            ("grows", "pass", [1000, 1000, 10]),
            ("a_little", "pass", [1000, 1000, 10]),
            ("shrinks", "pass", [1000, 1000, 10]),
            ("starts_failing", "pass", [10, 10, 1]),
            ("gone", "pass", [1, 1, 1]),
        ]);
        let new = run(&[
            ("same", "pass", [100, 100, 1]),
            ("grows", "pass", [2000, 2000, 10]),
            ("a_little", "pass", [1050, 1050, 10]),
            ("shrinks", "pass", [500, 1000, 10]),
            ("starts_failing", "fail", [10, 10, 1]),
            ("born", "pass", [1, 1, 1]),
        ]);
        let result = compare(&base, &new, 10.0, Some(10.0));
        assert_eq!(result.failed, ["demo::grows"]);
        let text = &result.text;
        assert!(text.contains("5 tests in both, 1 new, 1 removed"), "{text}");
        assert!(
            text.contains("Increased (1):\n  demo::grows  [beyond --fail-on-increase]\n      peak 1000 B -> 2 KiB (+100.0%), total 1000 B -> 2 KiB (+100.0%)\n"),
            "{text}"
        );
        assert!(!text.contains("a_little"), "within 10%: {text}");
        assert!(
            text.contains("Decreased (1):\n  demo::shrinks\n      peak 1000 B -> 500 B (-50.0%)\n"),
            "{text}"
        );
        assert!(
            text.contains("Outcome changed (1):\n  demo::starts_failing: pass -> limit failed\n"),
            "{text}"
        );
        assert!(
            text.contains("New tests (1):\n  demo::born: peak 1 B"),
            "{text}"
        );
        assert!(
            text.contains("Removed tests (1):\n  demo::gone: peak 1 B"),
            "{text}"
        );
        assert!(
            text.contains("FAILED: 1 test increased beyond 10%: demo::grows"),
            "{text}"
        );

        // A lower threshold lists the small change; a higher gate passes.
        let result = compare(&base, &new, 1.0, Some(200.0));
        assert!(result.failed.is_empty());
        assert!(
            result
                .text
                .contains("demo::a_little\n      peak 1000 B -> 1 KiB (+5.0%)"),
            "{}",
            result.text
        );
        assert!(
            result.text.contains("OK: no test increased beyond 200%."),
            "{}",
            result.text
        );
    }
}
