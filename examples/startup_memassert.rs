//! Start-up child: the body as `#[track_alloc(leaks = "0B")]` runs a test
//! (the attribute expands to this call), alone in its process as under
//! cargo-nextest (`--exact NAME`). Run by
//! `cargo run --release --example startup`.

memassert::install!();

fn main() {
    memassert_examples::startup::child(|body| {
        let spec = memassert::__private::TestSpec {
            test: "startup_memassert::startup_body",
            file: file!(),
            leaks: Some(0),
            ..memassert::__private::TestSpec::DEFAULT
        };
        memassert::__private::run_test(&spec, body);
    });
}
