#[memassert::track_alloc(max = "1 MiB", leaks = "0B", max = "2 MiB")]
#[test]
fn t() {}

fn main() {}
