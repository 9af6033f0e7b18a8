#[memassert::track_alloc(max = "12 XB")]
#[test]
fn t() {}

fn main() {}
