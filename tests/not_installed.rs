//! A test binary *without* `memassert::install!()`: every memassert entry
//! point refuses to run and says which line to add, rather than reporting
//! zeros.

use std::panic::{catch_unwind, UnwindSafe};

fn panic_message<R>(f: impl FnOnce() -> R + UnwindSafe) -> String {
    let payload = match catch_unwind(f) {
        Ok(_) => panic!("expected a panic: the tracker is not installed"),
        Err(payload) => payload,
    };
    memassert_tests::panic_text(payload)
}

fn assert_says_what_to_add(api: &str, message: &str) {
    assert!(message.contains(&format!("memassert::{api}")), "{message}");
    assert!(message.contains("#[global_allocator]"), "{message}");
    assert!(
        message.contains("static GLOBAL: memassert::Tracker = memassert::Tracker::system();"),
        "{message}"
    );
    assert!(message.contains("memassert::install!();"), "{message}");
}

#[test]
fn is_installed_is_false() {
    assert!(!memassert::is_installed());
    // Asking again gives the same answer (the probe leaves nothing on).
    assert!(!memassert::is_installed());
}

#[test]
fn start_panics_with_the_line_to_add() {
    let message = panic_message(|| memassert::start(1));
    assert_says_what_to_add("start", &message);
}

#[test]
#[should_panic(expected = "memassert::Tracker::system()")]
fn start_should_panic() {
    memassert::start(25);
}

#[test]
fn every_mirror_function_panics() {
    assert_says_what_to_add("stop", &panic_message(memassert::stop));
    assert_says_what_to_add("is_tracing", &panic_message(memassert::is_tracing));
    assert_says_what_to_add("clear_traces", &panic_message(memassert::clear_traces));
    assert_says_what_to_add("traced_memory", &panic_message(memassert::traced_memory));
    assert_says_what_to_add("reset_peak", &panic_message(memassert::reset_peak));
    assert_says_what_to_add(
        "traceback_limit",
        &panic_message(memassert::traceback_limit),
    );
    assert_says_what_to_add("tracker_memory", &panic_message(memassert::tracker_memory));
    assert_says_what_to_add("take_snapshot", &panic_message(memassert::take_snapshot));
    let v = [1u8; 10];
    let ptr = v.as_ptr() as usize;
    assert_says_what_to_add(
        "traceback_of",
        &panic_message(move || memassert::traceback_of(ptr as *const u8)),
    );
}

#[test]
fn scopes_panic_too() {
    assert_says_what_to_add("Scope::start", &panic_message(memassert::Scope::start));
    assert_says_what_to_add(
        "Scope::start",
        &panic_message(|| memassert::track(|| vec![0u8; 10])),
    );
}

#[memassert::track_alloc(max = "1 MiB")]
fn attributed_body() {}

// The message names what the user wrote: the attribute, on which test.
#[test]
fn the_attribute_names_itself() {
    let message = panic_message(attributed_body);
    assert!(
        message.starts_with(
            "#[memassert::track_alloc] on not_installed::attributed_body needs memassert's tracking allocator"
        ),
        "{message}"
    );
    assert!(message.contains("memassert::install!();"), "{message}");
}

#[test]
fn snapshots_without_the_tracker_still_work() {
    // Hand-built snapshots need no tracker: they are plain data.
    use memassert::{Frame, Key, Snapshot, Trace, Traceback};
    let tb = Traceback::new(vec![Frame {
        file: "a.rs".into(),
        line: 1,
        function: String::new(),
    }]);
    let snap = Snapshot::from_traces(
        vec![Trace {
            size: 5,
            traceback: tb,
        }],
        1,
    );
    assert_eq!(
        snap.statistics(Key::Line)[0].to_string(),
        "a.rs:1: size=5 B, count=1, average=5 B"
    );
}
