//! Source lines under frames, as Python's `linecache` gives tracemalloc.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::symbols::paths;

type Lines = Option<Arc<[String]>>;

static CACHE: Mutex<Option<HashMap<String, Lines>>> = Mutex::new(None);

/// Line `line` (1-based) of `file` (a displayed path), trimmed, or `None`
/// when the file cannot be read or is shorter.
pub(crate) fn line(file: &str, line: u32) -> Option<String> {
    let _untracked = crate::base::reentrancy::Guard::enter();
    let lines = lines_of(file)?;
    let text = lines.get((line as usize).checked_sub(1)?)?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn lines_of(file: &str) -> Lines {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(hit) = cache.get(file) {
        return hit.clone();
    }
    let read = paths::readable_path(file)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| text.lines().map(str::to_string).collect::<Vec<_>>().into());
    cache.insert(file.to_string(), read.clone());
    read
}
