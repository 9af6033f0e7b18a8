memassert::install!();

struct Cache {
    entries: Vec<Vec<u8>>,
}

impl Cache {
    fn insert(&mut self, value: &[u8]) {
        self.entries.push(value.to_vec());
    }
}

#[test]
#[memassert::track_alloc(max = "1 MiB", leaks = "0 B")]
fn cache_stays_small() {
    let mut cache = Cache { entries: Vec::new() };
    for _ in 0..3 {
        cache.insert(&[0u8; 400 * 1024]);
    }
    std::mem::forget(cache);
}
