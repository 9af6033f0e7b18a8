#[memassert::track_alloc(max = "1 MiB", maxx = "2 MiB")]
#[test]
fn t() {}

fn main() {}
