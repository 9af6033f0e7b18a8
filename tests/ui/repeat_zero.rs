#[memassert::track_alloc(repeat = 0)]
#[test]
fn t() {}

fn main() {}
