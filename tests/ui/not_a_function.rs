#[memassert::track_alloc(max = "1 MiB")]
struct NotATest;

fn main() {}
