//! [`Filter`]: keep or drop traces by file pattern, as tracemalloc's `Filter`.

use crate::symbols::pattern::glob_match;
use crate::symbols::traceback::{Frame, Traceback};

/// Includes or excludes traces by the file (and optionally line) of their
/// site, or of any of their frames.
///
/// Patterns are shell globs matched against the displayed file name
/// (`src/cache.rs`, `library/alloc/src/vec/mod.rs`): `*` matches any run of
/// characters including `/`, `?` one character, `[abc]`/`[!abc]` a set
/// (as Python's `fnmatch`, only `!` negates: `[^ab].py` matches `^.py` and
/// `a.py`, not `c.py`).
///
/// Like tracemalloc's `Snapshot.filter_traces`: a trace is kept when it
/// matches at least one inclusive filter (if there are any) and no exclusive
/// one.
///
/// ```
/// use memassert::Filter;
/// let only_src = Filter::include("src/*");
/// let not_line_12 = Filter::exclude("src/cache.rs").line(12);
/// let anywhere_in_tests = Filter::include("tests/*").all_frames();
/// # let _ = (only_src, not_line_12, anywhere_in_tests);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Keep matching traces (`true`) or drop them (`false`).
    pub inclusive: bool,
    /// Glob matched against the file name.
    pub pattern: String,
    /// Only this line of the file, when set.
    pub line: Option<u32>,
    /// Match any frame of the traceback rather than only the site.
    pub all_frames: bool,
}

impl Filter {
    /// Keeps traces whose site file matches `pattern`.
    pub fn include(pattern: impl Into<String>) -> Filter {
        Filter {
            inclusive: true,
            pattern: pattern.into(),
            line: None,
            all_frames: false,
        }
    }

    /// Drops traces whose site file matches `pattern`.
    pub fn exclude(pattern: impl Into<String>) -> Filter {
        Filter {
            inclusive: false,
            ..Filter::include(pattern)
        }
    }

    /// Restricts the filter to one line.
    pub fn line(mut self, line: u32) -> Filter {
        self.line = Some(line);
        self
    }

    /// Matches against every frame of the traceback, not only the site.
    pub fn all_frames(mut self) -> Filter {
        self.all_frames = true;
        self
    }

    fn matches_frame(&self, frame: &Frame) -> bool {
        glob_match(&self.pattern, &frame.file) && self.line.is_none_or(|l| l == frame.line)
    }

    /// Whether this filter lets a traceback through (tracemalloc's
    /// `_match_traceback`).
    pub(crate) fn passes(&self, traceback: &Traceback) -> bool {
        let hit = if self.all_frames {
            traceback.frames().iter().any(|f| self.matches_frame(f))
        } else {
            self.matches_frame(traceback.site())
        };
        hit == self.inclusive
    }
}

/// Whether a traceback survives a list of filters.
pub(crate) fn keep(filters: &[Filter], traceback: &Traceback) -> bool {
    let mut includes = filters.iter().filter(|f| f.inclusive).peekable();
    let included = includes.peek().is_none() || includes.any(|f| f.passes(traceback));
    included
        && filters
            .iter()
            .filter(|f| !f.inclusive)
            .all(|f| f.passes(traceback))
}
