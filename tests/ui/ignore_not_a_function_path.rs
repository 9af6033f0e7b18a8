#[memassert::track_alloc(leaks = "0B", ignore = "src/pool.rs")]
#[test]
fn t() {}

fn main() {}
