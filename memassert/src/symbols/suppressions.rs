//! What is never a test's leak, by name: infrastructure that libraries keep
//! for the process, and the patterns users add for theirs.
//!
//! No rule separates these blocks from a test's own leak. LeakSanitizer and
//! Valgrind tell blocks still reachable from globals from lost ones; but a
//! work-stealing pool's queue block, a lock table or an executor's state is
//! reachable from a global exactly as a test's own static cache is, and a
//! test filling its own cache must fail. So, as LeakSanitizer does with its
//! suppressions, the `leaks` gate leaves out blocks whose stack runs a
//! function named here ([`KNOWN_INFRASTRUCTURE`]), in the attribute's
//! `ignore = "..."` or in the file `MEMASSERT_SUPPRESSIONS` names, and
//! always says what it left out and why. A pattern never hides a block
//! whose site is the test's own code (its file or its function).

use crate::symbols::pattern::within_function;

/// A function of a library that keeps what it allocates for the process,
/// created lazily without std's once primitives (which memassert already
/// leaves out).
pub(crate) struct Known {
    /// A function path: some frame of the stack must be in it.
    pub(crate) pattern: &'static str,
    /// When set, the site (the innermost frame outside std) must also be in
    /// this path: only that allocation of the function is infrastructure.
    pub(crate) site: Option<&'static str>,
    pub(crate) why: &'static str,
}

/// The known infrastructure sites. Each is process-wide state whose blocks
/// a test body makes appear by using the library, and which stays after
/// the body for the next user: never the body's leak.
pub(crate) const KNOWN_INFRASTRUCTURE: &[Known] = &[
    Known {
        pattern: "crossbeam_deque::deque::Injector::push",
        site: None,
        why: "a work-stealing pool's global queue (rayon's), which takes a new block every 63 jobs",
    },
    Known {
        pattern: "<rayon_core::registry::WorkerThread as core::convert::From>::from",
        site: None,
        why: "a pool worker's own job queue, made as the worker starts and kept while it lives",
    },
    Known {
        pattern: "rayon_core::job::JobFifo::new",
        site: None,
        why: "a pool worker's own job queue, made as the worker starts and kept while it lives",
    },
    Known {
        pattern: "parking_lot_core::parking_lot::create_hashtable",
        site: None,
        why: "parking_lot's global lock table, created on first contention",
    },
    Known {
        pattern: "parking_lot_core::parking_lot::grow_hashtable",
        site: None,
        why: "parking_lot's global lock table, grown with the number of threads",
    },
    Known {
        pattern: "async_executor::Executor::state_ptr",
        site: None,
        why: "an executor's state, created on first use and kept while the executor lives",
    },
    Known {
        pattern: "async_executor::Executor::schedule",
        site: Some("concurrent_queue"),
        why: "an executor's global queue, which takes a new block every 31 tasks",
    },
    Known {
        pattern: "async_executor::Executor::spawn_inner",
        site: Some("slab"),
        why: "an executor's table of active tasks, which keeps its capacity",
    },
];

/// The environment variable naming a suppressions file: one function path
/// a line, `#` starts a comment, blank lines are skipped (LeakSanitizer's
/// `leak:` prefix is accepted too).
pub(crate) const SUPPRESSIONS_VAR: &str = "MEMASSERT_SUPPRESSIONS";

/// A function path whose blocks are not counted, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Suppression {
    pub(crate) pattern: String,
    /// See [`Known::site`].
    pub(crate) site: Option<String>,
    pub(crate) why: String,
}

impl Suppression {
    /// Whether a stack with these frames' functions (site first) is left
    /// out.
    pub(crate) fn matches(&self, functions: &[&str]) -> bool {
        if let Some(site) = &self.site {
            if !functions.first().is_some_and(|f| matches(site, f)) {
                return false;
            }
        }
        functions.iter().any(|f| matches(&self.pattern, f))
    }

    /// Where the report says the blocks were: the pattern, and the site
    /// it asks for.
    pub(crate) fn shown(&self) -> String {
        match &self.site {
            Some(site) => format!("{site} in {}", self.pattern),
            None => self.pattern.clone(),
        }
    }
}

/// `function` without generic arguments (`a::Injector<T>::push` ->
/// `a::Injector::push`); a qualified path's leading `<` stays
/// (`<a::X<T> as b::Y>::f` -> `<a::X as b::Y>::f`).
pub(crate) fn without_generics(function: &str) -> String {
    let mut out = String::with_capacity(function.len());
    let mut depth = 0usize;
    for c in function.chars() {
        let after_name = out
            .chars()
            .next_back()
            .is_some_and(|p| p.is_alphanumeric() || p == '_' || p == ':');
        match c {
            '<' if depth > 0 || after_name => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    // A turbofish (`f::<u8>`) leaves its `::` behind.
    out.replace("::::", "::").trim_end_matches("::").to_string()
}

/// Whether `function` is the function at `pattern` or code inside it,
/// generic arguments aside.
pub(crate) fn matches(pattern: &str, function: &str) -> bool {
    within_function(&without_generics(pattern), &without_generics(function))
}

/// The patterns of a suppressions file's text.
pub(crate) fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .map(|line| line.strip_prefix("leak:").unwrap_or(line).trim())
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// The suppressions of the file `MEMASSERT_SUPPRESSIONS` names (none when
/// it is unset), or why it cannot be read.
pub(crate) fn from_env() -> Result<Vec<Suppression>, String> {
    let Some(path) = std::env::var_os(SUPPRESSIONS_VAR) else {
        return Ok(Vec::new());
    };
    let shown = path.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{SUPPRESSIONS_VAR}={shown} cannot be read: {e}"))?;
    Ok(parse(&text)
        .into_iter()
        .map(|pattern| Suppression {
            pattern,
            site: None,
            why: format!("{SUPPRESSIONS_VAR}={shown}"),
        })
        .collect())
}

/// The built-in list, then `ignore` (the attribute's), then the file's.
pub(crate) fn all(ignore: &[&str], file: Vec<Suppression>) -> Vec<Suppression> {
    KNOWN_INFRASTRUCTURE
        .iter()
        .map(|known| Suppression {
            pattern: known.pattern.to_string(),
            site: known.site.map(str::to_string),
            why: format!("known infrastructure: {}", known.why),
        })
        .chain(ignore.iter().map(|&pattern| Suppression {
            pattern: pattern.to_string(),
            site: None,
            why: format!("ignore = \"{pattern}\""),
        }))
        .chain(file)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_arguments_are_ignored() {
        assert_eq!(
            without_generics("crossbeam_deque::deque::Injector<T>::push"),
            "crossbeam_deque::deque::Injector::push"
        );
        assert_eq!(
            without_generics("<a::X<T, b::C<u8>> as b::Y>::f"),
            "<a::X as b::Y>::f"
        );
        assert_eq!(without_generics("a::f::<u8>"), "a::f");
        assert!(matches(
            "crossbeam_deque::deque::Injector::push",
            "crossbeam_deque::deque::Injector<rayon_core::job::JobRef>::push"
        ));
        assert!(matches(
            "async_executor::Executor::state_ptr",
            "async_executor::Executor::state_ptr::alloc_state"
        ));
        assert!(!matches("a::b", "a::bc"));
    }

    #[test]
    fn suppressions_files() {
        let text = "# pools\n\nmycrate::pool::grow  # the pool\nleak:other::f\n   \n";
        assert_eq!(parse(text), ["mycrate::pool::grow", "other::f"]);
    }
}
