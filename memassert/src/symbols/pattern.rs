//! Site patterns, as `#[track_alloc]`'s `no_growth` and [`Filter`](crate::Filter)
//! write them: shell globs over file names, `file:line`, function paths.

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

/// Shell-style glob match (`*`, `?`, `[set]`, `[!set]`), as Python's
/// `fnmatch.fnmatchcase`: only `!` negates a set (`[^ab]` is the set of
/// `^`, `a` and `b`), a `]` right after `[` or `[!` is a member, a reversed
/// range matches nothing, and an unclosed `[` is a literal.
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
    // Only `!` negates (fnmatch); a leading `^` is a member like any other.
    let negate = i < p.len() && p[i] == '!';
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
        // fnmatch: `^` is a member, not a negation.
        assert!(glob_match("[^ab].py", "^.py"));
        assert!(glob_match("[^ab].py", "a.py"));
        assert!(!glob_match("[^ab].py", "c.py"));
        assert!(glob_match("[!ab].py", "c.py"));
    }
}
