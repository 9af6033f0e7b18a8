//! Helpers shared by memassert's integration tests.

use memassert::{Frame, Traceback};

/// The text of a panic payload (`panic!` with a message or a literal).
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// A traceback of `(file, line)` frames, site first, without functions.
pub fn traceback_at(frames: &[(&str, u32)]) -> Traceback {
    Traceback::new(
        frames
            .iter()
            .map(|&(file, line)| Frame {
                file: file.into(),
                line,
                function: String::new(),
            })
            .collect(),
    )
}

/// The emulator a cross-target test run goes through (`.ci/cross` sets
/// `MEMASSERT_TEST_RUNNER` to the same command as cargo's
/// `CARGO_TARGET_<TRIPLE>_RUNNER`, e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`),
/// split into words; empty when tests run natively.
pub fn test_runner() -> Vec<String> {
    std::env::var("MEMASSERT_TEST_RUNNER")
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// A command that runs this test binary again (through the emulator when
/// the suite runs under one: a foreign binary cannot be exec'd directly).
/// Its tests write no suite records (`MEMASSERT_REPORT`): the suite's own
/// run of them does.
pub fn this_test_binary() -> std::process::Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut runner = test_runner().into_iter();
    let mut command = match runner.next() {
        Some(program) => {
            let mut command = std::process::Command::new(program);
            command.args(runner).arg(exe);
            command
        }
        None => std::process::Command::new(exe),
    };
    command.env_remove("MEMASSERT_REPORT");
    command
}

/// A "dependency" that starts a thread in its own function and runs `f`
/// there: no frame of the calling test is on that thread's stack.
#[inline(never)]
pub fn start_thread_running(f: fn()) {
    std::thread::Builder::new()
        .name("dependency".into())
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// Runs one test of this binary alone in a fresh process (`--ignored
/// --exact`, output captured as libtest does by default), with `env` set
/// (and `RUST_BACKTRACE` removed unless `env` sets it), and returns whether
/// it passed and its output. For process-wide, one-time state: the first
/// use in a process is the case under test.
pub fn run_alone(test: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = this_test_binary();
    command
        .args(["--ignored", "--exact", test, "--test-threads=1"])
        .env_remove("RUST_BACKTRACE");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("the test binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let passed = out.status.success() && text.contains("1 passed");
    (passed, text)
}

/// A stand-in for a library's process-wide registry, outside the test files
/// (a suppression never hides a block allocated in the test's own file).
pub mod pool {
    use std::sync::Mutex;

    static BLOCKS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    /// The registry.
    pub struct Registry;

    impl Registry {
        /// Keeps a 1 KiB block for the process, as a pool growing its queue.
        pub fn grow() {
            let block = vec![0u8; 1024];
            BLOCKS.lock().unwrap_or_else(|e| e.into_inner()).push(block);
        }
    }
}

/// The failure a leak planted by [`plant_leak`] must produce.
pub const PLANTED: &str = "memassert: leaked 64 KiB in 1 block exceeds leaks 0B";

/// A 64 KiB leak the test must see, when `MEMASSERT_PLANT` is set (the
/// child-process cases of `std_state` and `infrastructure` run each case
/// once without it and once with it).
#[inline(never)]
pub fn plant_leak() {
    if std::env::var_os("MEMASSERT_PLANT").is_some() {
        std::mem::forget(std::hint::black_box(vec![0u8; 64 << 10]));
    }
}
