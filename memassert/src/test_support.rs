//! What `#[track_alloc]` expands to: run the body in a scope, then check the
//! limits and panic with a report. Not a stable API; use the attribute.

use std::collections::HashMap;
use std::future::Future;

use crate::reports::not_counted;
use crate::reports::report::Report;
use crate::reports::report_render::{self, sizes_pair};
use crate::scope::Scope;
use crate::symbols::pattern::{glob_match, split_line, within_function};
use crate::symbols::suppressions;
use crate::symbols::traceback::{Frame, Traceback};
use crate::tracemalloc::statistics::{Key, StatisticDiff};

/// The attribute's arguments, as the macro emits them (sizes already parsed).
#[derive(Clone, Copy, Debug)]
pub struct TestSpec {
    /// `module::path::test_name`.
    pub test: &'static str,
    /// `file!()` of the test.
    pub file: &'static str,
    /// `max`: peak live bytes.
    pub max: Option<usize>,
    /// `leaks`: bytes still live after the body.
    pub leaks: Option<usize>,
    /// `allocs`: allocation requests.
    pub allocs: Option<usize>,
    /// `total`: bytes requested.
    pub total: Option<usize>,
    /// The size limits as written in the attribute (`("max", "1 MB")`).
    pub written: &'static [(&'static str, &'static str)],
    /// `no_growth`: site patterns whose live bytes must not grow.
    pub no_growth: &'static [&'static str],
    /// `ignore`: function paths whose leaked blocks the `leaks` gate does
    /// not count (listed as "Not counted" in a failure report).
    pub ignore: &'static [&'static str],
    /// `repeat`: runs of the body (at least 1).
    pub repeat: usize,
    /// `frames`: traceback depth.
    pub frames: usize,
    /// `top`: sites listed in a report.
    pub top: usize,
    /// `threads = "all"`.
    pub all_threads: bool,
    /// `threads = "current"`: the body's own thread only, not the threads
    /// and tasks running its code.
    pub current_thread_only: bool,
    /// `snapshot`: records the report as an insta snapshot.
    pub snapshot: Option<fn(&Report)>,
}

impl TestSpec {
    /// Every argument at its default.
    pub const DEFAULT: TestSpec = TestSpec {
        test: "",
        file: "",
        max: None,
        leaks: None,
        allocs: None,
        total: None,
        written: &[],
        no_growth: &[],
        ignore: &[],
        repeat: 1,
        frames: crate::scope::DEFAULT_SCOPE_FRAMES,
        top: 10,
        all_threads: false,
        current_thread_only: false,
        snapshot: None,
    };

    /// The body's scope: its own thread, plus whatever runs the test
    /// function's code on other threads (or every thread, with
    /// `threads = "all"`).
    #[track_caller]
    fn scope(&self, probe: Option<crate::capture::stack_table::StackId>) -> Scope {
        crate::alloc::recording::require_installed_for(|| {
            format!("#[memassert::track_alloc] on {}", self.test)
        });
        speed_hint();
        warm_up(self.frames);
        // Captured inside `run_test`'s closure: tells whether the test's
        // crate inlines closures (see `note_closure_probe`).
        if let Some(stack) = probe {
            crate::symbols::symbolize::note_closure_probe(stack);
        }
        let options = Scope::options().frames(self.frames);
        if self.current_thread_only {
            return options.start();
        }
        // The threads the body starts are its own, and so are those its
        // thread started just before (a runtime `#[tokio::test]` built).
        let mut options = options.spawned_threads();
        options.adopt = true;
        if self.all_threads {
            return options.all_threads().start();
        }
        if alone_in_process() {
            // Nothing else runs tests here: everything the process
            // allocates meanwhile is the body's, less std's work.
            options.every_thread = true;
            options = options.all_threads();
        } else {
            // Whether the build names the test's code is read from this
            // stack only if a gate needs it (`unchecked_threads`): reading
            // the debug info costs what a passing test should not pay.
            options.opened_on = probe;
        }
        options.follow(self.test).start()
    }
}

/// Whether this test is the only one running in its process: one test
/// thread (`--test-threads=1`, `RUST_TEST_THREADS=1`), or one test named
/// exactly (`--exact NAME`, which is how cargo-nextest runs each test in a
/// process of its own). Read once, from the arguments libtest parses: an
/// environment variable set by a test runner would also reach the test
/// suites a test starts as child processes.
pub fn alone_in_process() -> bool {
    static ALONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALONE.get_or_init(|| {
        let threads = std::env::var("RUST_TEST_THREADS").unwrap_or_default();
        alone_by_args(std::env::args().skip(1), threads.trim() == "1")
    })
}

/// [`alone_in_process`] from libtest's arguments (without the program).
fn alone_by_args(args: impl Iterator<Item = String>, one_thread_env: bool) -> bool {
    // libtest's options that take a value as the next argument.
    const VALUED: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--logfile",
        "--color",
        "-Z",
        "--shuffle-seed",
    ];
    let args: Vec<String> = args.collect();
    let mut exact = false;
    let mut filters = 0;
    let mut threads = if one_thread_env { Some(1) } else { None };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if let Some(n) = arg.strip_prefix("--test-threads=") {
            threads = n.parse().ok();
        } else if arg == "--test-threads" {
            threads = args.get(i + 1).and_then(|n| n.parse().ok());
            i += 1;
        } else if arg == "--exact" {
            exact = true;
        } else if VALUED.contains(&arg) {
            i += 1;
        } else if !arg.starts_with('-') {
            filters += 1;
        }
        i += 1;
    }
    threads == Some(1) || (exact && filters == 1)
}

/// How long a leak gate waits, at most, for threads the body started and
/// did not join to finish (`MEMASSERT_SETTLE_MS`, default 1000).
fn settle_limit() -> std::time::Duration {
    static MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *MS.get_or_init(|| {
        std::env::var("MEMASSERT_SETTLE_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1000)
    });
    std::time::Duration::from_millis(ms)
}

/// Waiting for the threads the body started to finish before `leaks` is
/// judged: done when the leak is within the limit (nothing to wait for),
/// when none of them runs any more, or when [`settle_limit`] has passed.
struct Settle {
    limit: Option<usize>,
    deadline: Option<std::time::Instant>,
}

impl Settle {
    fn new(spec: &TestSpec) -> Settle {
        Settle {
            limit: spec.leaks,
            deadline: None,
        }
    }

    /// One look: `true` when there is nothing (more) to wait for.
    fn done(&mut self, scope: &Scope) -> bool {
        let Some(limit) = self.limit else { return true };
        if scope.leaked_now().0 <= limit {
            return true;
        }
        if scope.running_threads(&mut []) == 0 {
            return true;
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| std::time::Instant::now() + settle_limit());
        std::time::Instant::now() >= deadline
    }

    /// What the report says of threads still running after the wait.
    fn note(&self, spec: &TestSpec, scope: &Scope) -> Option<String> {
        let limit = self.limit?;
        if scope.leaked_now().0 <= limit {
            return None;
        }
        let mut running = [crate::alloc::thread_owner::Straggler { stack: 0 }; 4];
        let n = scope.running_threads(&mut running);
        if n == 0 {
            return None;
        }
        let mut note = format!(
            "memassert: {n} thread{} started by {} still running after waiting {} ms for \
             {} (set MEMASSERT_SETTLE_MS to wait longer); what {} still hold{} counts as leaked. \
             Started at:",
            if n == 1 { "" } else { "s" },
            spec.test,
            settle_limit().as_millis(),
            if n == 1 { "it" } else { "them" },
            if n == 1 { "it" } else { "they" },
            if n == 1 { "s" } else { "" },
        );
        for straggler in &running[..n.min(running.len())] {
            note.push_str("\n    ");
            note.push_str(&report_render::started_at(straggler.stack));
        }
        note.push('\n');
        Some(note)
    }
}

/// The body's scope, settled ([`Settle`]) and finished.
fn finish_settled(spec: &TestSpec, scope: Scope, settle: &Settle) -> (Report, Vec<String>) {
    let mut notes: Vec<String> = settle.note(spec, &scope).into_iter().collect();
    if let Some(why) = unchecked_threads(spec, &scope) {
        notes.push(why);
    }
    (scope.finish().for_test(spec.test), notes)
}

/// Why the body's figures cannot be trusted, if they cannot: other tests
/// run in this process, threads no scope owns (a pool or a runtime older
/// than the test) allocated while the body ran, and the build has no debug
/// info to tell by name whether that was the body's work.
fn unchecked_threads(spec: &TestSpec, scope: &Scope) -> Option<String> {
    let lost = crate::alloc::thread_owner::lost() - scope.lost_at_open;
    // Alone in its process, the scope counts unowned threads anyway.
    if lost > 0 && !spec.current_thread_only && !spec.all_threads && !alone_in_process() {
        return Some(format!(
            "memassert: the limits of {} cannot be checked: {lost} thread{} started while it ran \
             could not be followed (more than 4096 threads alive at once, memassert's limit), so \
             what {} allocated is not counted.\n",
            spec.test,
            if lost == 1 { "" } else { "s" },
            if lost == 1 { "it" } else { "they" },
        ));
    }
    if spec.current_thread_only || spec.all_threads || alone_in_process() {
        return None;
    }
    let gated =
        spec.max.is_some() || spec.leaks.is_some() || spec.allocs.is_some() || spec.total.is_some();
    let unclaimed = crate::alloc::scope_registry::unclaimed() - scope.unclaimed_at_open;
    if !gated || unclaimed == 0 {
        return None;
    }
    let names_its_code = scope
        .opened_on
        .is_none_or(|stack| crate::symbols::symbolize::names_with_lines(stack, spec.test));
    if names_its_code {
        return None;
    }
    Some(format!(
        "memassert: the limits of {} cannot be checked: while it ran, threads it did not start \
             (a thread pool or an async runtime older than the test) allocated {unclaimed} time{}, \
             other tests run in this process, and this build has no debug info to tell whether \
             that was this test's work.\nFix: run it alone in its process (`cargo nextest run`, or \
             `cargo test -- --test-threads=1`), or set `debug = \"line-tables-only\"` (or more) in \
             the Cargo profile this test is built with, e.g. `[profile.release]` for `cargo test \
             --release`.\n",
        spec.test,
        if unclaimed == 1 { "" } else { "s" }
    ))
}

/// Before a body's scope opens: what the tracker loads once per process
/// (`symbols::warm_up`: the unwinder's module list, the debug info), then
/// one tracked allocation in a throwaway scope of this thread, so that the
/// allocation path's own frames are resolved and this thread's capture
/// caches exist. The body's first allocation then costs what a new site
/// costs later (`cargo run --release --example first_alloc`).
fn warm_up(frames: usize) {
    crate::symbols::warm_up::warm_up();
    let scope = Scope::options().frames(frames).start();
    let mut block: Vec<u8> = Vec::with_capacity(1);
    block.extend_from_slice(&[1, 2, 3]);
    drop(std::hint::black_box(block));
    drop(scope.finish());
}

/// The Cargo profile lines that make tracked tests fast in debug builds:
/// the tracker's stack walking and symbol reading, optimised, and only
/// line tables kept of their debug info (a smaller test binary, whose debug
/// info std's panic backtraces read under `RUST_BACKTRACE=1`).
pub const SPEED_SNIPPET: &str =
    "[profile.dev.package.memassert]\nopt-level = 2\ndebug = \"line-tables-only\"\n\
[profile.dev.package.framehop]\nopt-level = 3\ndebug = \"line-tables-only\"\n\
[profile.dev.package.gimli]\nopt-level = 3\ndebug = \"line-tables-only\"\n\
[profile.dev.package.addr2line]\nopt-level = 3\ndebug = \"line-tables-only\"\n\
[profile.dev.package.object]\nopt-level = 3\ndebug = \"line-tables-only\"\n\
[profile.dev.package.rustc-demangle]\nopt-level = 3\ndebug = \"line-tables-only\"\n\
[profile.dev.package.miniz_oxide]\nopt-level = 3\ndebug = \"line-tables-only\"\n";

/// Once per process: when memassert itself was built without optimisation,
/// says (on stderr, which libtest shows for failing tests and with
/// `--nocapture`) how to make tracked tests several times faster.
fn speed_hint() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if env!("MEMASSERT_OPT_LEVEL") != "0" {
        return;
    }
    ONCE.call_once(|| {
        eprintln!(
            "memassert: the tracker is built without optimisation, which makes tracked tests \
             several times slower. Add to your workspace's Cargo.toml:\n\n{SPEED_SNIPPET}"
        );
    });
}

/// What a test body returns. A failed one (`Err`) is the test's own
/// failure: it is returned as is, without memory assertions, which would
/// otherwise report the error value itself as leaked.
#[diagnostic::on_unimplemented(
    message = "#[track_alloc] goes on a test, which returns `()`, `Result<T, E>` or `ExitCode`, not `{Self}`",
    label = "a test cannot return `{Self}`",
    note = "put #[memassert::track_alloc] on a #[test] function (or #[tokio::test], ...)"
)]
pub trait Outcome {
    /// Whether the body failed.
    fn is_failure(&self) -> bool {
        false
    }
}

impl Outcome for () {}

impl Outcome for std::process::ExitCode {}

impl<T, E> Outcome for Result<T, E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

/// Runs a test body under the spec; panics with a report if a limit fails.
/// The body's own panic propagates unchanged.
#[track_caller]
pub fn run_test<R: Outcome>(spec: &TestSpec, mut body: impl FnMut() -> R) -> R {
    let _record = crate::reports::suite_record::Pending::start(spec.test);
    // A closure of this generic function is compiled with the test crate's
    // settings: the stack it captures shows whether that build inlines it.
    let probe = || crate::alloc::recording::stack_here();
    let mut scope = spec.scope(probe());
    let mut result = body();
    for _ in 1..spec.repeat {
        if result.is_failure() {
            return result;
        }
        // The first run's one-time work (caches, lazy statics) is the
        // baseline; only what later runs add counts as leaked or grown.
        drop(result);
        scope.checkpoint_once();
        result = body();
    }
    if result.is_failure() {
        return result;
    }
    let mut settle = Settle::new(spec);
    while !settle.done(&scope) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let (report, notes) = finish_settled(spec, scope, &settle);
    check_with(spec, &report, notes);
    result
}

/// [`run_test`] for `async fn` tests: the whole future's run is measured.
pub async fn run_test_async<R: Outcome, Fut: Future<Output = R>>(
    spec: &TestSpec,
    mut body: impl FnMut() -> Fut,
) -> R {
    let _record = crate::reports::suite_record::Pending::start(spec.test);
    let probe = || crate::alloc::recording::stack_here();
    let mut scope = spec.scope(probe());
    let mut result = body().await;
    for _ in 1..spec.repeat {
        if result.is_failure() {
            return result;
        }
        drop(result);
        scope.checkpoint_once();
        result = body().await;
    }
    if result.is_failure() {
        return result;
    }
    let mut settle = Settle::new(spec);
    // Between looks, the runtime may run the tasks that are finishing.
    std::future::poll_fn(|cx| {
        if settle.done(&scope) {
            return std::task::Poll::Ready(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
    let (report, notes) = finish_settled(spec, scope, &settle);
    check_with(spec, &report, notes);
    result
}

impl Scope {
    fn checkpoint_once(&mut self) {
        if !self.has_checkpoint() {
            self.checkpoint();
        }
    }
}

/// Checks every limit of `spec` against `report`; panics with all failures.
#[track_caller]
pub fn check(spec: &TestSpec, report: &Report) {
    check_with(spec, report, Vec::new());
}

/// [`check`], with what the run found besides the report: threads still
/// running after the wait (said under a failing gate), or why the limits
/// cannot be checked at all (a failure of its own).
#[track_caller]
fn check_with(spec: &TestSpec, report: &Report, notes: Vec<String>) {
    // The `leaks` gate does not count known infrastructure and the user's
    // suppressions; what it leaves out is listed under the figures.
    let (counted, not_counted, unreadable) = match spec.leaks {
        None => (None, Vec::new(), None),
        Some(_) => {
            let (file, unreadable) = match suppressions::from_env() {
                Ok(file) => (file, None),
                Err(why) => (Vec::new(), Some(why)),
            };
            let all = suppressions::all(spec.ignore, file);
            let (counted, not_counted) = not_counted::split(report, &all, spec.file, spec.test);
            (Some(counted), not_counted, unreadable)
        }
    };
    let counted = counted.as_ref().unwrap_or(report);
    let mut failures = failures(spec, counted);
    if let Some(why) = unreadable {
        failures.push(format!("memassert: {why} (in {})\n", spec.test));
    }
    for note in notes {
        // A note that the limits cannot be checked fails on its own; the
        // others only explain a failure.
        if note.contains("cannot be checked") || !failures.is_empty() {
            failures.push(note);
        }
    }
    crate::reports::suite_record::record(spec.test, counted, failures.first().map(|f| &f[..]));
    if !failures.is_empty() {
        let mut message = failures.join("\n");
        if message.contains("<unknown>") {
            message.push_str(
                "(<unknown>: code without line tables; set `debug = \"line-tables-only\"` or more \
                 in the Cargo profile this test is built with, for its dependencies too \
                 (`[profile.dev.package.\"*\"]`), to see its files and lines)\n",
            );
        }
        message.push_str(&format!("Measured: {}", report_render::summary(counted)));
        if !not_counted.is_empty() {
            message.push('\n');
            message.push_str(report_render::not_counted_lines(&not_counted).trim_end());
        }
        if let Some(dir) = std::env::var_os("MEMASSERT_DUMP") {
            message.push_str(&dump(report, spec.test, dir.as_ref()));
        }
        panic!("{message}");
    }
    if let Some(snapshot) = spec.snapshot {
        snapshot(report);
    }
}

/// Writes the exports of a failing test under `MEMASSERT_DUMP`, and says
/// where (or why not) for the failure message.
fn dump(report: &Report, test: &str, dir: &std::path::Path) -> String {
    let name = test.replace("::", ".");
    match report.write_exports(dir, &name) {
        Ok((json, folded)) => format!(
            "\nMEMASSERT_DUMP: wrote {} (open in DHAT's viewer, dh_view.html) and {} (folded stacks for inferno-flamegraph)",
            json.display(),
            folded.display()
        ),
        Err(e) => format!("\nMEMASSERT_DUMP: could not write to {}: {e}", dir.display()),
    }
}

/// A measured size and its limit as the failure message shows them: the
/// limit as the attribute wrote it, exact byte counts added when the two
/// would otherwise read alike.
fn limit_pair(spec: &TestSpec, field: &str, measured: usize, limit: usize) -> (String, String) {
    let (m, l) = sizes_pair(measured, limit);
    let Some(&(_, written)) = spec.written.iter().find(|(f, _)| *f == field) else {
        return (m, l);
    };
    // A bare number is bytes.
    let written = if written.bytes().all(|b| b.is_ascii_digit()) {
        format!("{written} B")
    } else {
        written.to_string()
    };
    if l.ends_with(" B)") && !written.ends_with(&format!("{limit} B")) {
        (m, format!("{written} ({limit} B)"))
    } else {
        (m, written)
    }
}

/// The failure report of each limit that `report` exceeds.
pub(crate) fn failures(spec: &TestSpec, report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let test = spec.test;
    if let Some(max) = spec.max {
        if report.peak() > max {
            let (m, l) = limit_pair(spec, "max", report.peak(), max);
            out.push(format!(
                "memassert: peak {m} exceeds max {l} in {test}\n{}",
                report_render::peak_sites(report, spec.top)
            ));
        }
    }
    if let Some(leaks) = spec.leaks {
        if report.leaked() > leaks {
            let (m, l) = limit_pair(spec, "leaks", report.leaked(), leaks);
            let blocks = report.leaked_blocks();
            out.push(format!(
                "memassert: leaked {m} in {blocks} block{} exceeds leaks {l} in {test}\n{}",
                if blocks == 1 { "" } else { "s" },
                report_render::leak_sites(report, spec.top)
            ));
        }
    }
    if let Some(allocs) = spec.allocs {
        if report.allocs() > allocs {
            out.push(format!(
                "memassert: {} allocation{} exceed{} allocs {allocs} in {test}\n{}",
                report.allocs(),
                if report.allocs() == 1 { "" } else { "s" },
                if report.allocs() == 1 { "s" } else { "" },
                report_render::alloc_sites(report, spec.top)
            ));
        }
    }
    if let Some(total) = spec.total {
        if report.total() > total {
            let (m, l) = limit_pair(spec, "total", report.total(), total);
            out.push(format!(
                "memassert: total {m} allocated exceeds total {l} in {test}\n{}",
                report_render::total_sites(report, spec.top)
            ));
        }
    }
    // Live memory at the end against the checkpoint, by full traceback:
    // worked out once for every pattern.
    let growth = if spec.no_growth.is_empty() {
        Vec::new()
    } else {
        report.growth(Key::Traceback)
    };
    for pattern in spec.no_growth {
        if let Some(why) = unchecked(spec, report, &growth, pattern) {
            out.push(why);
            continue;
        }
        let grown = growth_at(&growth, pattern);
        if !grown.is_empty() {
            let bytes: isize = grown.iter().map(|d| d.size_diff).sum();
            out.push(format!(
                "memassert: live memory grew by {} at sites matching no_growth \"{pattern}\" in {test}\n{}",
                report_render::format_size_short(bytes.max(0) as usize),
                report_render::growth_lines(&grown, spec.top)
            ));
        }
    }
    out
}

/// Why the `no_growth` gate `pattern` cannot be checked against `report`,
/// if it cannot: it must then fail rather than pass for want of evidence.
///
/// - Sites grew that the pattern cannot be tested against: sites with no
///   file (no line tables) for a file pattern, frames with only short
///   inlined names (`debug = "line-tables-only"`) for a function path.
/// - The pattern names no source file or function of the program (a typo,
///   or a file that is not compiled in): it could never fail.
///
/// `growth`: the report's growth by traceback.
fn unchecked(
    spec: &TestSpec,
    report: &Report,
    growth: &[StatisticDiff],
    pattern: &str,
) -> Option<String> {
    let test = spec.test;
    let function = pattern.contains("::");
    let unsure = growth
        .iter()
        .filter(|d| d.size_diff > 0)
        .filter(|d| {
            if function {
                // Short inlined names, or frames without debug info (whose
                // inlined callees are invisible).
                d.traceback.frames().iter().any(|f| {
                    f.file == "<unknown>" || !crate::symbols::symbolize::is_rust_path(&f.function)
                })
            } else {
                d.traceback.site().file == "<unknown>"
            }
        })
        .count();
    if unsure > 0 {
        let (what, fix) = if function {
            (
                "their frames carry no full names for inlined code (a build with \
                 `debug = \"line-tables-only\"` names inlined functions briefly, one without \
                 debug info not at all), so no function path can be matched against them",
                "`debug = \"limited\"` (or more)",
            )
        } else {
            (
                "they have no file and line (built without debug info)",
                "`debug = \"line-tables-only\"` (or more; `\"limited\"` for function paths)",
            )
        };
        return Some(format!(
            "memassert: no_growth \"{pattern}\" cannot be checked in {test}: {unsure} site{} grew, \
             but {what}.\nFix: set {fix} in the Cargo profile this test is built with, e.g. \
             `[profile.release]` for `cargo test --release`.\n",
            if unsure == 1 { "" } else { "s" }
        ));
    }
    let seen = report
        .allocation_statistics(Key::Traceback)
        .iter()
        .any(|s| matches_anywhere(pattern, &s.traceback));
    if seen {
        return None;
    }
    let index = crate::symbols::debug_index::index();
    if let Some(error) = &index.error {
        return Some(format!(
            "memassert: no_growth \"{pattern}\" cannot be checked in {test}: no site matched it, \
             and the program's debug info could not be read to tell whether it names any code \
             ({error}).\n"
        ));
    }
    let named = if function {
        index.functions.iter().any(|f| within_function(pattern, f))
    } else {
        let file = split_line(pattern).0;
        index.files.iter().any(|f| glob_match(file, f))
    };
    if named {
        return None;
    }
    if !function && !index.files.iter().any(|f| f.ends_with(spec.file)) {
        return Some(format!(
            "memassert: no_growth \"{pattern}\" cannot be checked in {test}: this build has no \
             line tables, so no file can be matched.\nFix: set `debug = \"line-tables-only\"` \
             (or more) in the Cargo profile this test is built with, e.g. `[profile.release]` for \
             `cargo test --release`.\n"
        ));
    }
    let hint = match index.nearest(pattern) {
        Some(nearest) => format!(" Did you mean \"{nearest}\"?"),
        None => String::new(),
    };
    Some(format!(
        "memassert: no_growth \"{pattern}\" matches no {} in this program, so it could never \
         fail in {test}.{hint}\n",
        if function { "function" } else { "source file" }
    ))
}

/// Whether `pattern` names any frame of `traceback` (not only its site).
fn matches_anywhere(pattern: &str, traceback: &Traceback) -> bool {
    if pattern.contains("::") {
        return matches_site(pattern, traceback);
    }
    traceback
        .frames()
        .iter()
        .any(|frame| file_matches(pattern, frame))
}

/// A file glob or `file:line` pattern against one frame.
fn file_matches(pattern: &str, frame: &Frame) -> bool {
    let (file, line) = split_line(pattern);
    line.is_none_or(|line| frame.line == line) && glob_match(file, &frame.file)
}

/// Whether `traceback` matches a `no_growth` pattern: a file glob or
/// `file:line` against the site, or a function path (`a::b::f`, or a module
/// prefix of one) against any frame.
pub(crate) fn matches_site(pattern: &str, traceback: &Traceback) -> bool {
    if pattern.contains("::") {
        return traceback
            .frames()
            .iter()
            .any(|f| within_function(pattern, &f.function));
    }
    file_matches(pattern, traceback.site())
}

/// Sites matching `pattern` whose live memory grew, grouped by site line.
fn growth_at(growth: &[StatisticDiff], pattern: &str) -> Vec<StatisticDiff> {
    let mut by_site: HashMap<Frame, StatisticDiff> = HashMap::new();
    for diff in growth {
        if !matches_site(pattern, &diff.traceback) {
            continue;
        }
        let site = diff.traceback.site().clone();
        let slot = by_site
            .entry(site.clone())
            .or_insert_with(|| StatisticDiff {
                traceback: Traceback::new(vec![site]),
                size: 0,
                size_diff: 0,
                count: 0,
                count_diff: 0,
            });
        slot.size += diff.size;
        slot.size_diff += diff.size_diff;
        slot.count += diff.count;
        slot.count_diff += diff.count_diff;
    }
    let mut grown: Vec<StatisticDiff> = by_site.into_values().filter(|d| d.size_diff > 0).collect();
    grown.sort_by(|a, b| {
        b.size_diff
            .cmp(&a.size_diff)
            .then_with(|| b.traceback.cmp_tracemalloc(&a.traceback))
    });
    grown
}

#[cfg(test)]
mod alone_tests {
    use super::alone_by_args;

    fn alone(args: &[&str]) -> bool {
        alone_by_args(args.iter().map(|a| a.to_string()), false)
    }

    #[test]
    fn nextest_and_one_thread_are_alone() {
        assert!(alone(&["--exact", "mod::test", "--nocapture"]));
        assert!(alone(&["--exact", "mod::test", "--ignored"]));
        assert!(alone(&["--test-threads=1"]));
        assert!(alone(&["--test-threads", "1", "parse"]));
        assert!(alone_by_args(std::iter::empty(), true));
    }

    #[test]
    fn parallel_runs_are_not() {
        assert!(!alone(&[]));
        assert!(!alone(&["parse"]));
        assert!(!alone(&["--exact", "a", "b"]));
        assert!(!alone(&["--skip", "slow", "--test-threads=2"]));
        assert!(!alone(&["--exact", "--skip", "x"]));
    }
}
