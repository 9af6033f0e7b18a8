//! `cargo memassert summary DIR [--top N] [--by peak|total|allocs]`: the
//! heaviest tests, as pytest-memray prints them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::records::{Figures, Outcome, Record};
use crate::text;

/// What the tests are ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Peak,
    Total,
    Allocs,
}

impl By {
    pub fn parse(text: &str) -> Result<By, String> {
        match text {
            "peak" => Ok(By::Peak),
            "total" => Ok(By::Total),
            "allocs" => Ok(By::Allocs),
            other => Err(format!("--by {other:?}: rank by peak, total or allocs")),
        }
    }

    pub fn figure(self, f: &Figures) -> u64 {
        match self {
            By::Peak => f.peak,
            By::Total => f.total,
            By::Allocs => f.allocs,
        }
    }

    fn name(self) -> &'static str {
        match self {
            By::Peak => "peak memory",
            By::Total => "total memory allocated",
            By::Allocs => "allocation count",
        }
    }
}

/// Sites listed per test.
const SITES: usize = 5;

/// The summary text.
pub fn render(dir: &str, records: &BTreeMap<String, Record>, top: usize, by: By) -> String {
    let mut out = String::new();
    let binaries: std::collections::BTreeSet<&str> =
        records.values().map(|r| r.binary.as_str()).collect();
    let failing: Vec<&Record> = records.values().filter(|r| r.failed()).collect();
    let count = |o: Outcome| records.values().filter(|r| r.outcome == o).count();
    let mut ends = Vec::new();
    for (outcome, what) in [
        (Outcome::Fail, "failed a memassert limit"),
        (Outcome::Panic, "panicked"),
        (Outcome::Error, "returned Err"),
    ] {
        let n = count(outcome);
        if n > 0 {
            ends.push(format!("{n} {what}"));
        }
    }
    let _ = writeln!(
        out,
        "memassert: {} test{} from {} binar{} in {dir}{}",
        records.len(),
        if records.len() == 1 { "" } else { "s" },
        binaries.len(),
        if binaries.len() == 1 { "y" } else { "ies" },
        if ends.is_empty() {
            String::new()
        } else {
            format!("; {}", ends.join(", "))
        }
    );
    let mut ranked: Vec<&Record> = records.values().filter(|r| r.figures.is_some()).collect();
    ranked.sort_by(|a, b| {
        let (fa, fb) = (a.figures.unwrap(), b.figures.unwrap());
        by.figure(&fb)
            .cmp(&by.figure(&fa))
            .then_with(|| a.id().cmp(&b.id()))
    });
    let shown = ranked.len().min(top);
    let _ = writeln!(
        out,
        "The {shown} heaviest by {} (of {} with figures)",
        by.name(),
        ranked.len()
    );
    for record in ranked.iter().take(top) {
        out.push('\n');
        test_block(&mut out, record);
    }
    let without: Vec<&Record> = records.values().filter(|r| r.figures.is_none()).collect();
    if !without.is_empty() {
        let _ = writeln!(out, "\nWithout figures (the body did not finish):");
        for record in without {
            let _ = writeln!(
                out,
                "  {} [{}] {}",
                record.id(),
                record.outcome.as_str(),
                record.message
            );
        }
    }
    if !failing.is_empty() {
        let _ = writeln!(
            out,
            "\nFailed (a #[should_panic] test that expects it passes):"
        );
        for record in failing {
            let _ = writeln!(out, "  {}: {}", record.id(), record.message);
        }
    }
    out
}

fn test_block(out: &mut String, record: &Record) {
    let figures = record.figures.expect("ranked records have figures");
    let mark = match record.outcome {
        Outcome::Pass => String::new(),
        other => format!(" [{}]", other.as_str()),
    };
    let _ = writeln!(
        out,
        "Allocation results for {} ({}) at the high watermark{mark}",
        record.test, record.binary
    );
    if record.failed() {
        let _ = writeln!(out, "    !! {}", record.message);
    }
    let _ = writeln!(
        out,
        "    Peak memory:            {}",
        text::size_exact(figures.peak)
    );
    let _ = writeln!(
        out,
        "    Total memory allocated: {}",
        text::size_exact(figures.total)
    );
    let _ = writeln!(out, "    Total allocations:      {}", figures.allocs);
    let _ = writeln!(
        out,
        "    Leaked:                 {} in {} block{}",
        text::size_exact(figures.leaked),
        figures.leaked_blocks,
        if figures.leaked_blocks == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "    Histogram of allocation sizes: {}",
        text::sparkline(&record.sizes)
    );
    if record.sites.is_empty() {
        return;
    }
    let _ = writeln!(out, "    Biggest sites at the peak:");
    for site in record.sites.iter().take(SITES) {
        let Some(frame) = site.frames.first() else {
            continue;
        };
        let function = if frame.function.is_empty() {
            String::new()
        } else {
            format!(" in {}", frame.function)
        };
        let _ = writeln!(
            out,
            "        - {}{function} -> {} in {} block{}",
            frame.location(),
            text::size(site.bytes),
            site.blocks,
            if site.blocks == 1 { "" } else { "s" }
        );
        if let Some(source) = record.source(frame) {
            let _ = writeln!(out, "            {source}");
        }
    }
}
