//! [`Frame`] and [`Traceback`], and their tracemalloc text.

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
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Traceback {
    frames: Arc<[Frame]>,
}

impl Traceback {
    /// A traceback from frames listed site first. An empty list becomes one
    /// `<unknown>` frame, as tracemalloc does.
    pub fn new(frames: Vec<Frame>) -> Traceback {
        let frames = if frames.is_empty() {
            vec![Frame::unknown()]
        } else {
            frames
        };
        Traceback {
            frames: frames.into(),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<[Frame]> {
        &self.frames
    }

    /// Drops the frame of `function` and every frame below it (never the
    /// site).
    pub(crate) fn cut_at_function(self, function: &str) -> Traceback {
        match self
            .frames
            .iter()
            .skip(1)
            .position(|f| f.function == function)
        {
            Some(i) => Traceback::new(self.frames[..=i].to_vec()),
            None => self,
        }
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

    /// tracemalloc's `Traceback.format()`: two lines a frame, `  File
    /// "file", line N` and the stripped source line when it can be read.
    ///
    /// `limit` keeps the `limit` most recent frames; `most_recent_first`
    /// lists the site first (tracemalloc's default, `false`, lists the oldest
    /// call first).
    pub fn format(&self, limit: Option<usize>, most_recent_first: bool) -> Vec<String> {
        let keep = limit.unwrap_or(self.frames.len()).min(self.frames.len());
        let mut frames: Vec<&Frame> = self.frames[..keep].iter().collect();
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
