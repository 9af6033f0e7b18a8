#[memassert::track_alloc(threads = "both")]
#[test]
fn t() {}

fn main() {}
