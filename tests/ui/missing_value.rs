#[memassert::track_alloc(max)]
#[test]
fn t() {}

fn main() {}
