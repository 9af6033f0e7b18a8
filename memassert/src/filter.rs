//! [`Filter`]: keep or drop traces by file pattern, as tracemalloc's `Filter`.

use crate::traceback::{Frame, Traceback};

/// Includes or excludes traces by the file (and optionally line) of their
/// site, or of any of their frames.
///
/// Patterns are shell globs matched against the displayed file name
/// (`src/cache.rs`, `library/alloc/src/vec/mod.rs`): `*` matches any run of
/// characters including `/`, `?` one character, `[abc]`/`[!abc]` a set.
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

/// A site pattern split into its file glob and its line, if it ends in
/// `:<line>` (`src/a.rs:12` -> (`src/a.rs`, 12)).
pub(crate) fn split_line(pattern: &str) -> (&str, Option<u32>) {
    match pattern.rsplit_once(':') {
        Some((file, line)) => match line.parse::<u32>() {
            Ok(line) => (file, Some(line)),
            Err(_) => (pattern, None),
        },
        None => (pattern, None),
    }
}

/// Whether `function` is the function at `path` or code inside it (its
/// closures, async blocks, nested functions: `a::b` holds `a::b`,
/// `a::b::{{closure}}` and `a::b::c`, not `a::bc`).
pub(crate) fn within_function(path: &str, function: &str) -> bool {
    function
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// Shell-style glob match (`*`, `?`, `[set]`, `[!set]`), as `fnmatch`.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_set(&p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        // An unclosed `[` is a literal.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the set starting at `p[start] == '['`; returns
/// whether it matched and the index after the set, or `None` if the set is
/// not closed.
fn match_set(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == '!' || p[i] == '^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("src/*", "src/a/b.rs"));
        assert!(glob_match("*.rs", "src/cache.rs"));
        assert!(!glob_match("*.rs", "src/cache.rsx"));
        assert!(glob_match("src/cache.rs", "src/cache.rs"));
        assert!(!glob_match("src/cache.rs", "src/cache.r"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[ab]x", "bx"));
        assert!(!glob_match("[!ab]x", "bx"));
        assert!(glob_match("[a-c]*", "cat"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("[", "["));
    }
}
