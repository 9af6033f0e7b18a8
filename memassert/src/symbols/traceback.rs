//! [`Frame`] and [`Traceback`], and their tracemalloc text.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::symbols::source_lines;

/// One frame of a traceback: where code was when it allocated.
///
/// `file` is shown relative to the workspace (`src/cache.rs`), std frames as
/// `library/...`; `function` is the demangled path without its hash.
///
/// ```
/// let frame = memassert::Frame {
///     file: "src/app.rs".into(),
///     line: 6,
///     function: "app::allocate_bytes".into(),
/// };
/// assert_eq!(frame.to_string(), "src/app.rs:6");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    /// Source file, relative to the workspace root where it is inside it.
    pub file: String,
    /// 1-based line number; 0 when unknown.
    pub line: u32,
    /// Demangled function path, e.g. `mycrate::cache::Cache::insert`.
    pub function: String,
}

impl Frame {
    pub(crate) fn unknown() -> Frame {
        Frame {
            file: "<unknown>".into(),
            line: 0,
            function: String::new(),
        }
    }

    /// The trimmed source line this frame points at, when the file can be
    /// read (relative paths are read from the workspace root).
    ///
    /// ```
    /// let frame = memassert::Frame {
    ///     file: file!().into(),
    ///     line: line!(),
    ///     function: String::new(),
    /// };
    /// # let _ = frame.source_line(); // doctests run from a temporary directory
    /// ```
    pub fn source_line(&self) -> Option<String> {
        source_lines::line(&self.file, self.line)
    }
}

/// `file:line`, as tracemalloc prints a frame; just `file` when the line is
/// unknown or not part of the key ([`Key::File`](crate::Key::File)).
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Which frames [`Traceback::format`] renders, as tracemalloc's `limit`
/// argument: all of them, the `n` most recent (a positive `limit`), or the
/// `n` oldest (a negative one).
///
/// `None` and `Some(n)` convert into it, so `format(None, ..)` and
/// `format(Some(n), ..)` read as before.
///
/// ```
/// use memassert::{Frame, FrameLimit, Traceback};
/// let at = |file: &str, line| Frame { file: file.into(), line, function: String::new() };
/// // Site first: c.py:3 is the most recent call, a.py:1 the oldest.
/// let tb = Traceback::new(vec![at("c.py", 3), at("b.py", 2), at("a.py", 1)]);
/// assert_eq!(tb.format(FrameLimit::Newest(1), false), ["  File \"c.py\", line 3"]);
/// assert_eq!(tb.format(FrameLimit::Oldest(1), false), ["  File \"a.py\", line 1"]);
/// assert_eq!(tb.format(Some(2), true).len(), 2);
/// assert_eq!(tb.format(None, true), tb.format(FrameLimit::All, true));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FrameLimit {
    /// Every frame (tracemalloc's `limit=None`).
    #[default]
    All,
    /// The `n` most recent frames, the site first among them
    /// (`limit=n`).
    Newest(usize),
    /// The `n` oldest frames (`limit=-n`, as tracemalloc's documentation
    /// describes it).
    Oldest(usize),
}

impl From<Option<usize>> for FrameLimit {
    fn from(limit: Option<usize>) -> FrameLimit {
        limit.map_or(FrameLimit::All, FrameLimit::Newest)
    }
}

impl From<usize> for FrameLimit {
    fn from(n: usize) -> FrameLimit {
        FrameLimit::Newest(n)
    }
}

/// The frames that led to an allocation, the site (most recent call) first.
///
/// Frames of the tracker and of std are left out; the first frame is the
/// innermost one in user code (see the crate docs on sites).
///
/// ```
/// use memassert::{Frame, Traceback};
/// let tb = Traceback::new(vec![
///     Frame { file: "app.rs".into(), line: 6, function: "app::allocate".into() },
///     Frame { file: "app.rs".into(), line: 37, function: "app::main".into() },
/// ]);
/// assert_eq!(tb.site().line, 6);
/// assert_eq!(
///     tb.format(None, true),
///     ["  File \"app.rs\", line 6", "  File \"app.rs\", line 37"]
/// );
/// ```
///
/// Equality and hashing cover the frames and [`total_nframe`](Traceback::total_nframe).
/// `Ord` compares frames site first; statistics break ties with
/// tracemalloc's order instead (oldest frame first, see
/// [`Snapshot::statistics`](crate::Snapshot::statistics)).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Traceback {
    frames: Arc<[Frame]>,
    total_nframe: Option<usize>,
}

impl Traceback {
    /// A traceback from frames listed site first. An empty list becomes one
    /// `<unknown>` frame, as tracemalloc does. Its
    /// [`total_nframe`](Traceback::total_nframe) is unknown (`None`).
    pub fn new(frames: Vec<Frame>) -> Traceback {
        let frames = if frames.is_empty() {
            vec![Frame::unknown()]
        } else {
            frames
        };
        Traceback {
            frames: frames.into(),
            total_nframe: None,
        }
    }

    /// The same frames, with the number of frames the stack had before the
    /// traceback limit cut it (tracemalloc's `Traceback(frames,
    /// total_nframe)`).
    ///
    /// ```
    /// use memassert::{Frame, Traceback};
    /// let site = Frame { file: "a.rs".into(), line: 1, function: String::new() };
    /// let tb = Traceback::new(vec![site]).with_total_nframe(Some(7));
    /// assert_eq!((tb.len(), tb.total_nframe()), (1, Some(7)));
    /// ```
    pub fn with_total_nframe(mut self, total_nframe: Option<usize>) -> Traceback {
        self.total_nframe = total_nframe;
        self
    }

    /// How many frames the stack had before the traceback limit cut it
    /// (tracemalloc's `Traceback.total_nframe`): `len()` when nothing was
    /// cut, more when the stack was deeper than the limit, `None` when not
    /// known (a traceback built with [`Traceback::new`], a statistic's key,
    /// a snapshot file of format version 1).
    ///
    /// Counted as [`frames`](Traceback::frames) are: the site and its
    /// callers, without std's and the tracker's frames. memassert captures
    /// the traceback limit plus 28 raw return addresses (room for the
    /// allocator's own frames); a stack deeper than its capture counts as
    /// deep as the capture reached, so the figure is then a lower bound.
    ///
    /// ```
    /// memassert::install!();
    /// fn deep(n: u32) -> Vec<u8> {
    ///     if n == 0 { vec![0; 64] } else { std::hint::black_box(deep(n - 1)) }
    /// }
    /// fn main() {
    ///     memassert::start(1);
    ///     let block = deep(3);
    ///     let tb = memassert::traceback_of(block.as_ptr()).unwrap();
    ///     memassert::stop();
    ///     assert_eq!(tb.len(), 1);
    ///     // With line tables: deep x4 and main, at least.
    ///     assert!(tb.total_nframe().unwrap() >= tb.len());
    /// }
    /// ```
    pub fn total_nframe(&self) -> Option<usize> {
        self.total_nframe
    }

    /// The frames alone, without `total_nframe`: the key statistics group
    /// by (tracemalloc's `'traceback'` key type builds `Traceback(frames)`).
    pub(crate) fn frames_only(&self) -> Traceback {
        Traceback {
            frames: self.frames.clone(),
            total_nframe: None,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<[Frame]> {
        &self.frames
    }

    /// tracemalloc's ordering of tracebacks (`Traceback.__lt__` compares
    /// its frames oldest first, each as `(filename, lineno)`); functions,
    /// which tracemalloc does not know, only break what is left of a tie.
    pub(crate) fn cmp_tracemalloc(&self, other: &Traceback) -> Ordering {
        fn key(f: &Frame) -> (&str, u32) {
            (&f.file, f.line)
        }
        fn function(f: &Frame) -> &str {
            &f.function
        }
        let (mine, theirs) = (self.frames.iter().rev(), other.frames.iter().rev());
        mine.clone()
            .map(key)
            .cmp(theirs.clone().map(key))
            .then_with(|| mine.map(function).cmp(theirs.map(function)))
    }

    /// The frames, site (most recent call) first. Never empty.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The site: the innermost frame in user code.
    pub fn site(&self) -> &Frame {
        &self.frames[0]
    }

    /// Number of frames.
    #[allow(clippy::len_without_is_empty)] // never empty
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// tracemalloc's `Traceback.format(limit, most_recent_first)`: two lines
    /// a frame, `  File "file", line N` and the stripped source line when it
    /// can be read.
    ///
    /// `limit` picks the frames ([`FrameLimit`]; `None`: all, `Some(n)`: the
    /// `n` most recent, [`FrameLimit::Oldest`]: the `n` oldest);
    /// `most_recent_first` lists the site first (tracemalloc's default,
    /// `false`, lists the oldest call first, as Python prints tracebacks).
    ///
    /// ```
    /// use memassert::{Frame, FrameLimit, Traceback};
    /// let at = |line| Frame { file: "x.py".into(), line, function: String::new() };
    /// let tb = Traceback::new(vec![at(3), at(2), at(1)]);
    /// assert_eq!(
    ///     tb.format(FrameLimit::Oldest(2), true),
    ///     ["  File \"x.py\", line 2", "  File \"x.py\", line 1"]
    /// );
    /// ```
    pub fn format(&self, limit: impl Into<FrameLimit>, most_recent_first: bool) -> Vec<String> {
        let len = self.frames.len();
        // Site first: the newest frames are at the front.
        let frames: &[Frame] = match limit.into() {
            FrameLimit::All => &self.frames,
            FrameLimit::Newest(n) => &self.frames[..n.min(len)],
            FrameLimit::Oldest(n) => &self.frames[len - n.min(len)..],
        };
        let mut frames: Vec<&Frame> = frames.iter().collect();
        if !most_recent_first {
            frames.reverse();
        }
        let mut lines = Vec::new();
        for frame in frames {
            lines.push(format!("  File \"{}\", line {}", frame.file, frame.line));
            if let Some(source) = frame.source_line() {
                lines.push(format!("    {source}"));
            }
        }
        lines
    }
}

/// All frames, site first, in [`format`](Traceback::format)'s text.
impl fmt::Display for Traceback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.format(None, true).iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}
