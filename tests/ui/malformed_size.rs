#[memassert::track_alloc(max = "1.2.3 MiB")]
#[test]
fn t() {}

fn main() {}
