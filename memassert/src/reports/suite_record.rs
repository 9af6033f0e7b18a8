//! Suite records (`MEMASSERT_REPORT=DIR`): one file per test process with a
//! record of every `#[track_alloc]` test it ran, passing or failing, for
//! `cargo memassert summary | compare | html` (the `cargo-memassert` crate).
//!
//! Without the variable nothing here runs (no file, no panic hook). With
//! it, each test's end rewrites its process's file in `DIR` atomically
//! (a temporary file renamed over it), under a lock; the file is named
//! `<binary>.<pid>.<nanoseconds>.memassert`, so the folders of several
//! runs (`cargo test`, `cargo nextest run`, nextest partitions) merge by
//! copying. A relative `DIR` is taken from the workspace root (the
//! nearest of the working directory and its ancestors whose `Cargo.toml`
//! has a `[workspace]` table), else from the working directory. Writing a record
//! never changes a test's outcome: errors go to stderr.
//!
//! # Format (version 1)
//!
//! UTF-8 text, one item per line, fields separated by tabs; in every field
//! `\` `tab` `newline` `carriage return` are written `\\` `\t` `\n` `\r`.
//! The first line is `memassert-records<TAB>1`; then, per test:
//!
//! ```text
//! test      <test path>  <binary>
//! outcome   pass|fail|panic|error  <first line of the failure, or empty>
//! figures   <peak> <total> <allocs> <leaked> <leaked blocks>   (absent: no figures)
//! sizes     <bucket>:<count> ...     (power-of-two buckets, non-zero ones)
//! site      <bytes> <blocks>         (a site at the peak, by line, largest first)
//! frame     <file> <line> <function> (its largest traceback, site first)
//! stack     <bytes> <blocks>         (a full traceback live at the peak)
//! frame     ...
//! other     <bytes> <blocks>         (tracebacks at the peak left out)
//! source    <file> <line> <text>     (source lines of the frames above)
//! end
//! ```
//!
//! `fail`: a memassert limit failed (figures present). `panic`: the body
//! panicked (a `#[should_panic]` test passes so), `error`: it returned
//! `Err`; neither has figures, the scope never finished.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use crate::base::reentrancy::Guard;
use crate::reports::report::Report;
use crate::symbols::traceback::{Frame, Traceback};
use crate::tracemalloc::statistics::Key;

/// The environment variable naming the records folder.
pub(crate) const ENV: &str = "MEMASSERT_REPORT";
/// The first line of a records file.
pub(crate) const HEADER: &str = "memassert-records\t1";
/// Sites at the peak kept per test.
const TOP_SITES: usize = 10;
/// Full tracebacks at the peak kept per test (the rest as `other`).
const TOP_STACKS: usize = 400;

/// This process's records file: its path (chosen at the first record) and
/// the records written so far.
struct ProcessFile {
    path: Option<PathBuf>,
    records: Vec<(&'static str, String)>,
}

static FILE: Mutex<ProcessFile> = Mutex::new(ProcessFile {
    path: None,
    records: Vec::new(),
});

thread_local! {
    /// The first line of this thread's latest panic message.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The records folder, when `MEMASSERT_REPORT` is set.
fn folder() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(ENV).filter(|v| !v.is_empty())?);
    if dir.is_absolute() {
        return Some(dir);
    }
    let cwd = std::env::current_dir().ok()?;
    // Cargo runs tests in their package's folder: the workspace root is
    // the nearest folder from there whose manifest has `[workspace]`.
    let root = cwd
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or(&cwd);
    Some(root.join(dir))
}

/// A test under way: when it ends without a record (its body panicked or
/// returned `Err`), writes one saying so.
pub(crate) struct Pending {
    test: &'static str,
}

impl Pending {
    /// `None` (nothing to do) without `MEMASSERT_REPORT`.
    pub(crate) fn start(test: &'static str) -> Option<Pending> {
        // Untracked: an all-threads scope of a test running beside this one
        // must not count this.
        let _untracked = Guard::enter();
        std::env::var_os(ENV).filter(|v| !v.is_empty())?;
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                {
                    let _untracked = Guard::enter();
                    let message = info.payload_as_str().unwrap_or("(a non-string payload)");
                    let first = message.lines().next().unwrap_or("").to_string();
                    let _ = LAST_PANIC.try_with(|m| *m.borrow_mut() = Some(first));
                }
                previous(info)
            }));
        });
        let _ = LAST_PANIC.try_with(|m| m.borrow_mut().take());
        Some(Pending { test })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _untracked = Guard::enter();
        let done = FILE
            .lock()
            .map(|f| f.records.iter().any(|(t, _)| *t == self.test))
            .unwrap_or(true);
        if done {
            return;
        }
        let (outcome, message) = if std::thread::panicking() {
            let message = LAST_PANIC
                .try_with(|m| m.borrow_mut().take())
                .ok()
                .flatten()
                .unwrap_or_else(|| "the test body panicked".into());
            ("panic", message)
        } else {
            ("error", "the test body returned Err".to_string())
        };
        let mut text = String::new();
        head(&mut text, self.test, outcome, &message);
        text.push_str("end\n");
        store(self.test, text);
    }
}

/// Records a test whose scope finished: `failure` is the first failed
/// limit's report, if any.
pub(crate) fn record(test: &'static str, report: &Report, failure: Option<&str>) {
    let _untracked = Guard::enter();
    if std::env::var_os(ENV).is_none_or(|v| v.is_empty()) {
        return;
    }
    let (outcome, message) = match failure {
        Some(f) => ("fail", f.lines().next().unwrap_or("")),
        None => ("pass", ""),
    };
    let text = render(test, report, outcome, message);
    store(test, text);
}

fn head(out: &mut String, test: &str, outcome: &str, message: &str) {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    line(out, &["test", test, &binary]);
    line(out, &["outcome", outcome, message]);
}

/// One test's record.
fn render(test: &str, report: &Report, outcome: &str, message: &str) -> String {
    let mut out = String::new();
    head(&mut out, test, outcome, message);
    let figures = [
        report.peak(),
        report.total(),
        report.allocs(),
        report.leaked(),
        report.leaked_blocks(),
    ]
    .map(|n| n.to_string());
    let mut fields = vec!["figures"];
    fields.extend(figures.iter().map(String::as_str));
    line(&mut out, &fields);
    let sizes: Vec<String> = report
        .size_histogram()
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    let mut fields = vec!["sizes"];
    fields.extend(sizes.iter().map(String::as_str));
    line(&mut out, &fields);

    let mut sources: BTreeMap<(String, u32), ()> = BTreeMap::new();
    for stat in report.peak_statistics(Key::Line).iter().take(TOP_SITES) {
        figures_line(&mut out, "site", stat.size, stat.count);
        let site = stat.traceback.site().clone();
        let traceback = report
            .largest_traceback(&site, |s| s.peak_bytes)
            .unwrap_or_else(|| Traceback::new(vec![site]));
        frames(&mut out, &traceback, &mut sources);
    }
    let stacks = report.peak_statistics(Key::Traceback);
    for stat in stacks.iter().take(TOP_STACKS) {
        figures_line(&mut out, "stack", stat.size, stat.count);
        frames(&mut out, &stat.traceback, &mut sources);
    }
    if stacks.len() > TOP_STACKS {
        let rest = &stacks[TOP_STACKS..];
        let bytes = rest.iter().map(|s| s.size).sum();
        let blocks = rest.iter().map(|s| s.count).sum();
        figures_line(&mut out, "other", bytes, blocks);
    }
    for (file, number) in sources.keys() {
        let frame = Frame {
            file: file.clone(),
            line: *number,
            function: String::new(),
        };
        if let Some(text) = frame.source_line() {
            line(&mut out, &["source", file, &number.to_string(), &text]);
        }
    }
    out.push_str("end\n");
    out
}

fn figures_line(out: &mut String, kind: &str, bytes: usize, blocks: usize) {
    let _ = writeln!(out, "{kind}\t{bytes}\t{blocks}");
}

fn frames(out: &mut String, traceback: &Traceback, sources: &mut BTreeMap<(String, u32), ()>) {
    for frame in traceback.frames() {
        line(
            out,
            &[
                "frame",
                &frame.file,
                &frame.line.to_string(),
                &frame.function,
            ],
        );
        if frame.line > 0 {
            sources.insert((frame.file.clone(), frame.line), ());
        }
    }
}

/// Writes `fields` as one line, escaped.
fn line(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        for c in field.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    }
    out.push('\n');
}

/// Adds a record to this process's file and rewrites it.
fn store(test: &'static str, text: String) {
    let Some(dir) = folder() else { return };
    let mut file = FILE.lock().unwrap_or_else(|e| e.into_inner());
    file.records.push((test, text));
    if let Err(e) = write(&mut file, &dir) {
        // Not `eprintln!`, which panics when stderr is gone: this may run
        // while the test is unwinding, where a panic aborts.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "memassert: {ENV}: could not write the record of {test} under {}: {e}",
            dir.display()
        );
    }
}

fn write(file: &mut ProcessFile, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = file
        .path
        .get_or_insert_with(|| {
            let binary = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "test".into());
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            dir.join(format!("{binary}.{}.{nanos}.memassert", std::process::id()))
        })
        .clone();
    let mut text = String::from(HEADER);
    text.push('\n');
    for (_, record) in &file.records {
        text.push_str(record);
    }
    let temporary = path.with_extension("memassert-tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, &path)
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn fields_are_escaped() {
        let mut out = String::new();
        line(&mut out, &["frame", "a\tb\\c\nd", "7"]);
        assert_eq!(out, "frame\ta\\tb\\\\c\\nd\t7\n");
    }
}
