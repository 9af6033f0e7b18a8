#[memassert::track_alloc(frames = 0)]
#[test]
fn t() {}

fn main() {}
