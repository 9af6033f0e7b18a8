#[memassert::track_alloc(leaks = "-1 KiB")]
#[test]
fn t() {}

fn main() {}
