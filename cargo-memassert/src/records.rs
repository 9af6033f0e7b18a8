//! Reading the records `MEMASSERT_REPORT=DIR` leaves: every `*.memassert`
//! file under a folder (its subfolders too, so merged runs can keep theirs).
//! The format is memassert's (`memassert/src/reports/suite_record.rs`):
//! tab-separated fields, `\\ \t \n \r` escaped, a `memassert-records 1`
//! header, then per test `test` ... `end`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The format version this reader understands.
pub const VERSION: &str = "1";

/// A frame of a traceback, site first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub file: String,
    pub line: u32,
    pub function: String,
}

impl Frame {
    /// `file:line` (just `file` when the line is unknown).
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}

/// Bytes and blocks with the tracebacks that hold them.
#[derive(Clone, Debug, Default)]
pub struct Held {
    pub bytes: u64,
    pub blocks: u64,
    pub frames: Vec<Frame>,
}

/// The test's figures (absent when the body panicked or returned `Err`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    pub peak: u64,
    pub total: u64,
    pub allocs: u64,
    pub leaked: u64,
    pub leaked_blocks: u64,
}

/// How the test ended, as memassert saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// A memassert limit failed.
    Fail,
    /// The body panicked (a `#[should_panic]` test passes so).
    Panic,
    /// The body returned `Err`.
    Error,
}

impl Outcome {
    /// As the commands show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "limit failed",
            Outcome::Panic => "panicked",
            Outcome::Error => "returned Err",
        }
    }
}

/// One test's record.
#[derive(Clone, Debug)]
pub struct Record {
    pub test: String,
    /// The test binary, its Cargo hash left out (`threads`, not
    /// `threads-0123456789abcdef`).
    pub binary: String,
    pub outcome: Outcome,
    /// The first line of the failure (empty when it passed).
    pub message: String,
    pub figures: Option<Figures>,
    /// Allocation requests by power-of-two size bucket.
    pub sizes: [u64; 64],
    /// Sites at the peak by line, largest first, each with its largest traceback.
    pub sites: Vec<Held>,
    /// Full tracebacks live at the peak, largest first.
    pub stacks: Vec<Held>,
    /// Tracebacks at the peak left out of `stacks`.
    pub other: (u64, u64),
    /// Source lines of the frames, by file and line.
    pub sources: HashMap<(String, u32), String>,
    /// The file it was read from.
    pub origin: PathBuf,
}

impl Record {
    /// `binary::test` when the test path does not start with the binary's
    /// name, else the test path: what identifies it across runs.
    pub fn id(&self) -> String {
        let crate_name = self.binary.replace('-', "_");
        if self.test.split("::").next() == Some(crate_name.as_str()) {
            self.test.clone()
        } else {
            format!("{}::{}", self.binary, self.test)
        }
    }

    /// Whether the test failed by memassert's reckoning (a `panic` may be
    /// an expected one).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail | Outcome::Error)
    }

    pub fn source(&self, frame: &Frame) -> Option<&str> {
        self.sources
            .get(&(frame.file.clone(), frame.line))
            .map(String::as_str)
    }
}

/// A reading error: where, and what was wrong.
#[derive(Debug)]
pub struct Error {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

/// The records of a folder, by [`Record::id`]. When a test has several
/// records (the same run copied twice, or two runs in one folder), the one
/// from the file whose name sorts last wins, and a note says so.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, Record>, Error> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|e| Error {
        path: dir.to_path_buf(),
        line: 0,
        message: format!("cannot read the records folder: {e}"),
    })?;
    files.sort();
    if files.is_empty() {
        return Err(Error {
            path: dir.to_path_buf(),
            line: 0,
            message: "no *.memassert record files here: run the tests with \
                      MEMASSERT_REPORT set to this folder first"
                .into(),
        });
    }
    let mut out = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| Error {
            path: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        for record in parse(file, &text)? {
            if let Some(old) = out.insert(record.id(), record) {
                eprintln!(
                    "note: {} has records in {} and {}; using the latter",
                    old.id(),
                    old.origin.display(),
                    out[&old.id()].origin.display()
                );
            }
        }
    }
    Ok(out)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "memassert") {
            files.push(path);
        }
    }
    Ok(())
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A file's records.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Record>, Error> {
    let error = |line: usize, message: String| Error {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, header)) if header.starts_with("memassert-records\t") => {
            let version = &header["memassert-records\t".len()..];
            if version != VERSION {
                return Err(error(
                    1,
                    format!(
                        "records format version {version}, this cargo-memassert reads version \
                         {VERSION}: use the cargo-memassert of the memassert that wrote them"
                    ),
                ));
            }
        }
        _ => {
            return Err(error(
                1,
                "not a memassert records file (no `memassert-records` header)".into(),
            ))
        }
    }
    let mut out = Vec::new();
    let mut current: Option<Record> = None;
    // Where the next `frame` line goes.
    let mut target = Target::None;
    let mut last = 1;
    for (number, raw) in lines {
        last = number;
        if raw.is_empty() {
            continue;
        }
        let fields: Vec<String> = raw.split('\t').map(unescape).collect();
        let kind = fields[0].as_str();
        let want = |n: usize| -> Result<(), Error> {
            if fields.len() < n {
                Err(error(
                    number,
                    format!(
                        "`{kind}` needs {} field{}, found {}",
                        n - 1,
                        if n == 2 { "" } else { "s" },
                        fields.len() - 1
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let int = |i: usize| -> Result<u64, Error> {
            fields[i].parse::<u64>().map_err(|_| {
                error(
                    number,
                    format!("`{kind}`: {:?} is not a whole number", fields[i]),
                )
            })
        };
        if kind == "test" {
            if current.is_some() {
                return Err(error(number, "`test` before the previous `end`".into()));
            }
            want(3)?;
            current = Some(Record {
                test: fields[1].clone(),
                binary: strip_hash(&fields[2]).to_string(),
                outcome: Outcome::Pass,
                message: String::new(),
                figures: None,
                sizes: [0; 64],
                sites: Vec::new(),
                stacks: Vec::new(),
                other: (0, 0),
                sources: HashMap::new(),
                origin: path.to_path_buf(),
            });
            target = Target::None;
            continue;
        }
        let Some(record) = current.as_mut() else {
            return Err(error(
                number,
                format!("`{kind}` outside a test (expected `test`)"),
            ));
        };
        match kind {
            "outcome" => {
                want(2)?;
                record.outcome = match fields[1].as_str() {
                    "pass" => Outcome::Pass,
                    "fail" => Outcome::Fail,
                    "panic" => Outcome::Panic,
                    "error" => Outcome::Error,
                    other => {
                        return Err(error(
                            number,
                            format!("unknown outcome {other:?} (pass, fail, panic, error)"),
                        ))
                    }
                };
                record.message = fields.get(2).cloned().unwrap_or_default();
            }
            "figures" => {
                want(6)?;
                record.figures = Some(Figures {
                    peak: int(1)?,
                    total: int(2)?,
                    allocs: int(3)?,
                    leaked: int(4)?,
                    leaked_blocks: int(5)?,
                });
            }
            "sizes" => {
                for field in &fields[1..] {
                    let parsed = field.split_once(':').and_then(|(k, n)| {
                        Some((k.parse::<usize>().ok()?, n.parse::<u64>().ok()?))
                    });
                    match parsed {
                        Some((k, n)) if k < 64 => record.sizes[k] = n,
                        _ => {
                            return Err(error(
                                number,
                                format!("`sizes`: {field:?} is not bucket:count with bucket < 64"),
                            ))
                        }
                    }
                }
            }
            "site" | "stack" | "other" => {
                want(3)?;
                let held = Held {
                    bytes: int(1)?,
                    blocks: int(2)?,
                    frames: Vec::new(),
                };
                match kind {
                    "site" => {
                        record.sites.push(held);
                        target = Target::Site;
                    }
                    "stack" => {
                        record.stacks.push(held);
                        target = Target::Stack;
                    }
                    _ => {
                        record.other = (held.bytes, held.blocks);
                        target = Target::None;
                    }
                }
            }
            "frame" => {
                want(4)?;
                let frame = Frame {
                    file: fields[1].clone(),
                    line: int(2)? as u32,
                    function: fields[3].clone(),
                };
                let held = match target {
                    Target::Site => record.sites.last_mut(),
                    Target::Stack => record.stacks.last_mut(),
                    Target::None => None,
                };
                match held {
                    Some(held) => held.frames.push(frame),
                    None => {
                        return Err(error(
                            number,
                            "`frame` not after a `site` or `stack`".into(),
                        ))
                    }
                }
            }
            "source" => {
                want(4)?;
                record
                    .sources
                    .insert((fields[1].clone(), int(2)? as u32), fields[3].clone());
            }
            "end" => {
                out.push(current.take().expect("checked above"));
                target = Target::None;
            }
            // Lines of kinds a newer writer may add within version 1.
            _ => {}
        }
    }
    if let Some(record) = current {
        return Err(error(
            last,
            format!(
                "the record of {} has no `end`: the file is truncated",
                record.test
            ),
        ));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Target {
    None,
    Site,
    Stack,
}

/// `name-0123456789abcdef` → `name` (Cargo's hash on test binaries).
pub fn strip_hash(binary: &str) -> &str {
    match binary.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => binary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "memassert-records\t1\n\
        test\tdemo::big\tdemo-0123456789abcdef\n\
        outcome\tfail\tmemassert: peak 2 KiB exceeds max 1 KiB in demo::big\n\
        figures\t2048\t3000\t3\t0\t0\n\
        sizes\t6:2\t11:1\n\
        site\t2048\t1\n\
        frame\tsrc/lib.rs\t4\tdemo::big\n\
        stack\t2048\t1\n\
        frame\tsrc/lib.rs\t4\tdemo::make\n\
        frame\ttests/a\\tb.rs\t9\tdemo::big\n\
        source\tsrc/lib.rs\t4\tvec![0u8; 2048]\n\
        end\n";

    #[test]
    fn reads_a_record() {
        let records = parse(Path::new("x.memassert"), GOOD).unwrap();
        let r = &records[0];
        assert_eq!((r.test.as_str(), r.binary.as_str()), ("demo::big", "demo"));
        assert_eq!(r.id(), "demo::big");
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.figures.unwrap().peak, 2048);
        assert_eq!((r.sizes[6], r.sizes[11]), (2, 1));
        assert_eq!(r.stacks[0].frames[1].file, "tests/a\tb.rs");
        assert_eq!(r.source(&r.sites[0].frames[0]), Some("vec![0u8; 2048]"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let truncated = &GOOD[..GOOD.len() - 4];
        let e = parse(Path::new("x.memassert"), truncated).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.memassert:11: the record of demo::big has no `end`: the file is truncated"
        );
        let bad = GOOD.replace("figures\t2048", "figures\tlots");
        let e = parse(Path::new("x.memassert"), &bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.memassert:4: `figures`: \"lots\" is not a whole number"
        );
        let e = parse(Path::new("x.memassert"), "{}").unwrap_err();
        assert!(
            e.to_string().contains("not a memassert records file"),
            "{e}"
        );
        let e = parse(Path::new("y"), "memassert-records\t9\n").unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }

    #[test]
    fn hashes_are_stripped() {
        assert_eq!(strip_hash("threads-0123456789abcdef"), "threads");
        assert_eq!(strip_hash("my-tool"), "my-tool");
    }
}
