#[memassert::track_alloc(allocs = "3")]
#[test]
fn t() {}

fn main() {}
