//! The snapshot file format (version 2; version 1 still loads): encode, and
//! decode without ever
//! panicking on bad input. The format is documented on
//! [`Snapshot::load`](crate::Snapshot::load).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::symbols::traceback::{Frame, Traceback};
use crate::tracemalloc::snapshot::{Snapshot, Trace};

const MAGIC: &str = "memassert-snapshot";
const VERSION: u32 = 2;
/// The oldest version [`decode`] still reads (no `total_nframe`).
const OLDEST_VERSION: u32 = 1;

/// Why a snapshot file could not be loaded.
///
/// ```
/// let dir = std::env::temp_dir().join("memassert-doc-error");
/// std::fs::write(&dir, "memassert-snapshot 99\n").unwrap();
/// let err = memassert::Snapshot::load(&dir).unwrap_err();
/// assert!(err.to_string().contains("version 99"));
/// ```
#[derive(Debug)]
pub struct SnapshotFileError {
    path: Option<PathBuf>,
    line: Option<usize>,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Io(std::io::Error),
    Format(String),
}

impl SnapshotFileError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        SnapshotFileError {
            path: Some(path.to_path_buf()),
            line: None,
            kind: ErrorKind::Io(e),
        }
    }
    fn format(line: Option<usize>, message: impl Into<String>) -> Self {
        SnapshotFileError {
            path: None,
            line,
            kind: ErrorKind::Format(message.into()),
        }
    }
    pub(crate) fn at(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }
}

impl fmt::Display for SnapshotFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot load memassert snapshot")?;
        if let Some(path) = &self.path {
            write!(f, " {}", path.display())?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        match &self.kind {
            ErrorKind::Io(e) => write!(f, ": {e}"),
            ErrorKind::Format(m) => write!(f, ": {m}"),
        }
    }
}

impl std::error::Error for SnapshotFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            ErrorKind::Format(_) => None,
        }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

pub(crate) fn encode(snapshot: &Snapshot) -> String {
    use std::fmt::Write;
    // Distinct tracebacks in first-seen order, then runs of equal traces.
    let mut index: HashMap<&Traceback, usize> = HashMap::new();
    let mut tracebacks: Vec<&Traceback> = Vec::new();
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for trace in &snapshot.traces {
        let i = *index.entry(&trace.traceback).or_insert_with(|| {
            tracebacks.push(&trace.traceback);
            tracebacks.len() - 1
        });
        match runs.last_mut() {
            Some((ti, size, count)) if *ti == i && *size == trace.size => *count += 1,
            _ => runs.push((i, trace.size, 1)),
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{MAGIC} {VERSION}");
    let _ = writeln!(out, "traceback_limit {}", snapshot.traceback_limit);
    let _ = writeln!(out, "tracebacks {}", tracebacks.len());
    for tb in tracebacks {
        match tb.total_nframe() {
            Some(total) => {
                let _ = writeln!(out, "traceback {} {total}", tb.len());
            }
            None => {
                let _ = writeln!(out, "traceback {} -", tb.len());
            }
        }
        for frame in tb.frames() {
            let _ = writeln!(
                out,
                "{}\t{}\t{}",
                frame.line,
                escape(&frame.file),
                escape(&frame.function)
            );
        }
    }
    let _ = writeln!(out, "traces {}", runs.len());
    for (tb, size, count) in runs {
        let _ = writeln!(out, "{tb} {size} {count}");
    }
    out.push_str("end\n");
    out
}

struct Lines<'a> {
    iter: std::iter::Enumerate<std::str::Lines<'a>>,
    last: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, SnapshotFileError> {
        match self.iter.next() {
            Some((i, line)) => {
                self.last = i + 1;
                Ok(line)
            }
            None => Err(SnapshotFileError::format(
                None,
                format!(
                    "truncated: the file ends after line {} where {what} was expected",
                    self.last
                ),
            )),
        }
    }
    fn err(&self, message: impl Into<String>) -> SnapshotFileError {
        SnapshotFileError::format(Some(self.last), message)
    }
    /// Reads a version 2 `traceback <frames> <total_nframe|->`.
    fn traceback_header(&mut self) -> Result<(usize, Option<usize>), SnapshotFileError> {
        let line = self.next("`traceback <frames> <total_nframe>`")?;
        let parsed = line.strip_prefix("traceback ").and_then(|rest| {
            let (frames, total) = rest.split_once(' ')?;
            let frames: usize = frames.parse().ok()?;
            let total = match total {
                "-" => None,
                n => Some(n.parse::<usize>().ok()?),
            };
            Some((frames, total))
        });
        parsed.ok_or_else(|| {
            self.err(format!(
                "expected `traceback <frames> <total_nframe or ->`, found `{line}`"
            ))
        })
    }

    /// Reads `<word> <number>`.
    fn header(&mut self, word: &str) -> Result<usize, SnapshotFileError> {
        let line = self.next(&format!("`{word} <count>`"))?;
        line.strip_prefix(word)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| self.err(format!("expected `{word} <number>`, found `{line}`")))
    }
}

/// Most elements pre-allocated from a count in the file: a corrupt count
/// must not make us reserve gigabytes.
const MAX_PREALLOC: usize = 1 << 16;

/// Most blocks a snapshot file may hold (each becomes a 24-byte [`Trace`]
/// in memory, so at most ~400 MB): far above any real test, and a tiny
/// corrupt file cannot ask for gigabytes.
const MAX_BLOCKS: usize = 1 << 24;

pub(crate) fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotFileError> {
    if bytes.is_empty() {
        return Err(SnapshotFileError::format(
            None,
            "the file is empty (not a memassert snapshot)",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        SnapshotFileError::format(None, "not a memassert snapshot file (it is not UTF-8 text)")
    })?;
    let mut lines = Lines {
        iter: text.lines().enumerate(),
        last: 0,
    };
    let first = lines.next("the header")?;
    let version = first
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| {
            lines.err(format!(
                "not a memassert snapshot file (expected the first line `{MAGIC} {VERSION}`)"
            ))
        })?;
    let version: u32 = version
        .parse()
        .map_err(|_| lines.err(format!("unreadable format version `{version}`")))?;
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(lines.err(format!(
            "format version {version} is not supported by this memassert (it reads versions \
             {OLDEST_VERSION} to {VERSION}); \
             {}",
            if version > VERSION {
                "upgrade memassert to load it"
            } else {
                "re-create the snapshot"
            }
        )));
    }
    let traceback_limit = lines.header("traceback_limit")?;
    let count = lines.header("tracebacks")?;
    let mut tracebacks = Vec::with_capacity(count.min(MAX_PREALLOC));
    for _ in 0..count {
        let (frames, total_nframe) = if version == 1 {
            (lines.header("traceback")?, None)
        } else {
            lines.traceback_header()?
        };
        if frames == 0 {
            return Err(lines.err("a traceback has no frames"));
        }
        let mut list = Vec::with_capacity(frames.min(MAX_PREALLOC));
        for _ in 0..frames {
            let line = lines.next("a frame line")?;
            let mut parts = line.split('\t');
            let (Some(no), Some(file), Some(function), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(lines.err(format!(
                    "expected a frame `<line>\\t<file>\\t<function>`, found `{line}`"
                )));
            };
            let no: u32 = no
                .parse()
                .map_err(|_| lines.err(format!("bad line number `{no}`")))?;
            let (Some(file), Some(function)) = (unescape(file), unescape(function)) else {
                return Err(lines.err("bad escape sequence in a frame"));
            };
            list.push(Frame {
                file,
                line: no,
                function,
            });
        }
        tracebacks.push(Traceback::new(list).with_total_nframe(total_nframe));
    }
    let runs = lines.header("traces")?;
    let mut traces = Vec::with_capacity(runs.min(MAX_PREALLOC));
    let mut total_size: usize = 0;
    for _ in 0..runs {
        let line = lines.next("a trace line")?;
        let nums: Vec<Option<usize>> = line.split(' ').map(|n| n.parse().ok()).collect();
        let [Some(tb), Some(size), Some(count)] = nums[..] else {
            return Err(lines.err(format!(
                "expected a trace `<traceback> <size> <count>`, found `{line}`"
            )));
        };
        let traceback = tracebacks.get(tb).ok_or_else(|| {
            lines.err(format!(
                "trace names traceback {tb}, but the file has {} tracebacks",
                tracebacks.len()
            ))
        })?;
        if count > MAX_BLOCKS - traces.len() {
            return Err(lines.err(format!(
                "implausible block count: more than {MAX_BLOCKS} blocks in all"
            )));
        }
        // Amortised growth, but never past MAX_BLOCKS (plain doubling could
        // reserve twice the documented bound).
        let needed = traces.len() + count;
        let target = needed.max(traces.capacity() * 2).min(MAX_BLOCKS);
        if needed > traces.capacity() && traces.try_reserve_exact(target - traces.len()).is_err() {
            return Err(lines.err(format!("not enough memory for {count} more blocks")));
        }
        total_size = size
            .checked_mul(count)
            .and_then(|bytes| total_size.checked_add(bytes))
            .ok_or_else(|| lines.err("implausible sizes: the total overflows"))?;
        for _ in 0..count {
            traces.push(Trace {
                size,
                traceback: traceback.clone(),
            });
        }
    }
    match lines.next("`end`")? {
        "end" => {}
        other => return Err(lines.err(format!("expected `end`, found `{other}`"))),
    }
    if let Some((i, _)) = lines.iter.find(|(_, l)| !l.is_empty()) {
        return Err(SnapshotFileError::format(
            Some(i + 1),
            "unexpected data after `end`",
        ));
    }
    Ok(Snapshot {
        traces,
        traceback_limit,
    })
}

impl Snapshot {
    /// Writes the snapshot to `path` in memassert's snapshot file format
    /// (see [`Snapshot::load`]).
    pub fn dump(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, encode(self))
    }

    /// Reads a snapshot written by [`dump`](Snapshot::dump).
    ///
    /// The format, version 2, is UTF-8 text:
    ///
    /// ```text
    /// memassert-snapshot 2
    /// traceback_limit <N>
    /// tracebacks <T>
    /// traceback <F> <total_nframe|->     (T times, then F frame lines each)
    /// <line>\t<file>\t<function>
    /// traces <R>
    /// <traceback index> <size> <count>   (R runs of equal blocks)
    /// end
    /// ```
    ///
    /// `\`, tab and newline in names are written as `\\`, `\t`, `\n`.
    /// `total_nframe` is [`Traceback::total_nframe`], `-` when unknown.
    /// Version 1 files (memassert before `total_nframe`: `traceback <F>`
    /// lines) still load, with every `total_nframe` unknown. A file that is
    /// empty, truncated, of another format or of a newer version is an
    /// `Err` that says which.
    ///
    /// ```
    /// let err = memassert::Snapshot::load("Cargo.toml").unwrap_err();
    /// assert!(err.to_string().contains("not a memassert snapshot"));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot, SnapshotFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| SnapshotFileError::io(path, e))?;
        decode(&bytes).map_err(|e| e.at(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for s in ["plain", "tab\there", "nl\nx", "back\\slash", "\\t literal"] {
            assert_eq!(unescape(&escape(s)).as_deref(), Some(s));
        }
        assert_eq!(unescape("bad\\q"), None);
        assert_eq!(unescape("trailing\\"), None);
    }
}
