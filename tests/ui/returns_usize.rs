// A helper that returns a value is not a test: the error says so in the
// attribute's terms, not the runner's.
#[memassert::track_alloc(max = "1 MiB")]
fn helper() -> usize {
    42
}

fn main() {
    let _ = helper();
}
