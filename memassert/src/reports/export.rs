//! Exports: DHAT's JSON (for the DHAT viewer) and folded stacks (for
//! inferno / flamegraph.pl), from a [`Report`] or a [`Snapshot`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use crate::base::reentrancy::Guard;
use crate::reports::report::Report;
use crate::symbols::traceback::{Frame, Traceback};
use crate::tracemalloc::snapshot::Snapshot;

/// One program point (DHAT's name for a distinct traceback) and its figures.
#[derive(Clone, Debug, Default)]
struct Point {
    total_bytes: usize,
    total_blocks: usize,
    max_bytes: usize,
    max_blocks: usize,
    peak_bytes: usize,
    peak_blocks: usize,
    end_bytes: usize,
    end_blocks: usize,
}

fn report_points(report: &Report) -> BTreeMap<Traceback, Point> {
    let _untracked = Guard::enter();
    let mut points: BTreeMap<Traceback, Point> = BTreeMap::new();
    for site in report.site_records() {
        // Stacks that differ only below the kept frames share a traceback;
        // their figures add up (for `max`, an upper bound).
        let p = points.entry(report.traceback(site.stack)).or_default();
        p.total_bytes += site.total;
        p.total_blocks += site.allocs;
        p.max_bytes += site.max_bytes;
        p.max_blocks += site.max_blocks;
        p.peak_bytes += site.peak_bytes;
        p.peak_blocks += site.peak_blocks;
        p.end_bytes += site.live_bytes;
        p.end_blocks += site.live_blocks;
    }
    points
}

fn snapshot_points(snapshot: &Snapshot) -> BTreeMap<Traceback, Point> {
    let mut points: BTreeMap<Traceback, Point> = BTreeMap::new();
    for trace in snapshot.traces() {
        let p = points.entry(trace.traceback.clone()).or_default();
        p.total_bytes += trace.size;
        p.total_blocks += 1;
    }
    for p in points.values_mut() {
        // A snapshot is one moment: every figure is what is live then.
        p.max_bytes = p.total_bytes;
        p.max_blocks = p.total_blocks;
        p.peak_bytes = p.total_bytes;
        p.peak_blocks = p.total_blocks;
        p.end_bytes = p.total_bytes;
        p.end_blocks = p.total_blocks;
    }
    points
}

fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `function (file:line:0)`, the frame text DHAT's viewer shows.
fn dhat_frame(frame: &Frame) -> String {
    let function = if frame.function.is_empty() {
        "???"
    } else {
        &frame.function
    };
    format!("{function} ({}:{}:0)", frame.file, frame.line)
}

/// DHAT's JSON (`dhatFileVersion` 2, mode `rust-heap`, as dhat-rs writes).
/// Frames are listed innermost first, as DHAT expects, under `[root]`.
fn dhat_json(points: &BTreeMap<Traceback, Point>) -> String {
    let mut ftbl: Vec<String> = vec!["[root]".to_string()];
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = String::new();
    out.push_str("{\"dhatFileVersion\":2,\"mode\":\"rust-heap\",\"verb\":\"Allocated\",");
    out.push_str("\"bklt\":false,\"bkacc\":false,\"tu\":\"µs\",\"Mtu\":\"s\",\"tuth\":10,\"cmd\":");
    let cmd: Vec<String> = std::env::args().collect();
    json_string(&mut out, &cmd.join(" "));
    let _ = write!(
        out,
        ",\"pid\":{},\"tg\":0,\"te\":0,\"pps\":[",
        std::process::id()
    );
    for (i, (traceback, p)) in points.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\n{{\"tb\":{},\"tbk\":{},\"mb\":{},\"mbk\":{},\"gb\":{},\"gbk\":{},\"eb\":{},\"ebk\":{},\"fs\":[",
            p.total_bytes,
            p.total_blocks,
            p.max_bytes,
            p.max_blocks,
            p.peak_bytes,
            p.peak_blocks,
            p.end_bytes,
            p.end_blocks
        );
        for (j, frame) in traceback.frames().iter().enumerate() {
            let text = dhat_frame(frame);
            let id = *index.entry(text.clone()).or_insert_with(|| {
                ftbl.push(text);
                ftbl.len() - 1
            });
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "{id}");
        }
        out.push_str("]}");
    }
    out.push_str("\n],\"ftbl\":[");
    for (i, frame) in ftbl.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('\n');
        json_string(&mut out, frame);
    }
    out.push_str("\n]}\n");
    out
}

/// Folded stacks: `outer;...;inner bytes`, one line per traceback.
fn folded(points: &BTreeMap<Traceback, Point>, value: impl Fn(&Point) -> usize) -> String {
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for (traceback, p) in points {
        let v = value(p);
        if v == 0 {
            continue;
        }
        let stack: Vec<String> = traceback
            .frames()
            .iter()
            .rev()
            .map(|f| {
                let name = if f.function.is_empty() {
                    "???"
                } else {
                    &f.function
                };
                format!("{name} ({f})").replace(';', ",")
            })
            .collect();
        *lines.entry(stack.join(";")).or_default() += v;
    }
    let mut out = String::new();
    for (stack, v) in lines {
        let _ = writeln!(out, "{stack} {v}");
    }
    out
}

impl Report {
    /// The report in DHAT's JSON format (`dhat-heap.json`), for the DHAT
    /// viewer (`dh_view.html`): per traceback, total bytes and blocks
    /// allocated (`tb`, `tbk`), the most live at once (`mb`, `mbk`), live at
    /// the scope's peak (`gb`, `gbk`) and at its end (`eb`, `ebk`). Block
    /// lifetimes are not recorded (`bklt` is false).
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let (_, report) = memassert::track(|| drop(vec![0u8; 100]));
    ///     let json = report.to_dhat_json();
    ///     assert!(json.starts_with("{\"dhatFileVersion\":2"));
    ///     assert!(json.contains("\"tb\":100"));
    /// }
    /// ```
    pub fn to_dhat_json(&self) -> String {
        dhat_json(&report_points(self))
    }

    /// Folded stacks of the bytes allocated (`caller;...;site bytes`), for
    /// `inferno-flamegraph` or `flamegraph.pl`. The numbers add up to
    /// [`total`](Report::total).
    ///
    /// ```
    /// memassert::install!();
    /// fn main() {
    ///     let (_, report) = memassert::track(|| drop(vec![0u8; 100]));
    ///     let folded = report.to_folded();
    ///     assert!(folded.trim_end().ends_with(" 100"));
    /// }
    /// ```
    pub fn to_folded(&self) -> String {
        folded(&report_points(self), |p| p.total_bytes)
    }

    /// Writes [`to_dhat_json`](Report::to_dhat_json) and
    /// [`to_folded`](Report::to_folded) as `<dir>/<name>.dhat.json` and
    /// `<dir>/<name>.folded` (creating `dir`), returning both paths.
    pub fn write_exports(
        &self,
        dir: impl AsRef<Path>,
        name: &str,
    ) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let json = dir.join(format!("{name}.dhat.json"));
        let folded = dir.join(format!("{name}.folded"));
        std::fs::write(&json, self.to_dhat_json())?;
        std::fs::write(&folded, self.to_folded())?;
        Ok((json, folded))
    }
}

impl Snapshot {
    /// The snapshot in DHAT's JSON format: per traceback, the live bytes and
    /// blocks (every figure is the same moment's).
    ///
    /// ```
    /// use memassert::{Frame, Snapshot, Trace, Traceback};
    /// let tb = Traceback::new(vec![Frame { file: "a.rs".into(), line: 1, function: "a::f".into() }]);
    /// let snap = Snapshot::from_traces(vec![Trace { size: 10, traceback: tb }], 1);
    /// assert!(snap.to_dhat_json().contains("\"a::f (a.rs:1:0)\""));
    /// ```
    pub fn to_dhat_json(&self) -> String {
        dhat_json(&snapshot_points(self))
    }

    /// Folded stacks of the live bytes; the numbers add up to
    /// [`total_size`](Snapshot::total_size).
    ///
    /// ```
    /// use memassert::{Frame, Snapshot, Trace, Traceback};
    /// let f = |line, function: &str| Frame { file: "a.rs".into(), line, function: function.into() };
    /// let tb = Traceback::new(vec![f(2, "a::inner"), f(9, "a::main")]);
    /// let snap = Snapshot::from_traces(vec![Trace { size: 10, traceback: tb }], 2);
    /// assert_eq!(snap.to_folded(), "a::main (a.rs:9);a::inner (a.rs:2) 10\n");
    /// ```
    pub fn to_folded(&self) -> String {
        folded(&snapshot_points(self), |p| p.end_bytes)
    }
}
