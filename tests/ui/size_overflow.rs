#[memassert::track_alloc(total = "20000000 TiB")]
#[test]
fn t() {}

fn main() {}
