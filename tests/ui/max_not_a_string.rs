#[memassert::track_alloc(max = 5)]
#[test]
fn t() {}

fn main() {}
