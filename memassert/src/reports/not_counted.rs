//! The `leaks` gate's suppressions applied to a [`Report`]: which leaked
//! blocks are infrastructure kept for the process (see
//! [`suppressions`](crate::symbols::suppressions)). A failure report prints
//! them with [`report_render::not_counted_lines`](crate::reports::report_render::not_counted_lines).

use crate::reports::report::Report;
use crate::symbols::pattern::within_function;
use crate::symbols::suppressions::Suppression;

/// Leaked bytes left out of the `leaks` gate under one pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NotCounted {
    pub(crate) pattern: String,
    pub(crate) why: String,
    pub(crate) bytes: usize,
    pub(crate) blocks: usize,
}

/// Splits `report`'s leaked blocks into those `suppressions` leave out and
/// the rest: returns the report without them, and what was left out, by
/// pattern (the first matching pattern of a stack takes it).
///
/// A block whose site is the test's own code (a frame in `test_file`, or in
/// the function `test`) is never left out, whatever the patterns say.
pub(crate) fn split(
    report: &Report,
    suppressions: &[Suppression],
    test_file: &str,
    test: &str,
) -> (Report, Vec<NotCounted>) {
    let mut left_out = Vec::new();
    let mut lines: Vec<NotCounted> = Vec::new();
    for (stack, bytes, blocks) in report.leaked_by_stack() {
        let traceback = report.traceback(stack);
        let site = traceback.site();
        let own = (!test_file.is_empty()
            && (site.file == test_file || site.file.ends_with(&format!("/{test_file}"))))
            || (!test.is_empty() && within_function(test, &site.function));
        if own {
            continue;
        }
        let functions: Vec<&str> = traceback
            .frames()
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        let Some(found) = suppressions.iter().find(|s| s.matches(&functions)) else {
            continue;
        };
        let shown = found.shown();
        left_out.push((stack, bytes, blocks));
        match lines
            .iter_mut()
            .find(|l| l.pattern == shown && l.why == found.why)
        {
            Some(line) => {
                line.bytes += bytes;
                line.blocks += blocks;
            }
            None => lines.push(NotCounted {
                pattern: shown,
                why: found.why.clone(),
                bytes,
                blocks,
            }),
        }
    }
    lines.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.pattern.cmp(&b.pattern))
    });
    (report.without_leaks_of(&left_out), lines)
}
