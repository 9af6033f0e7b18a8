//! Symbol lookup with a cache of memassert's own: the loaded objects' debug
//! info read with `addr2line` (Linux).
//!
//! Not the `backtrace` crate's global cache: the tracker symbolizes from
//! inside the allocator (to classify a new stack, once), and the code under
//! test may be in the middle of a `backtrace` resolution at that very
//! moment, on the same thread. A private cache cannot be re-entered that
//! way.
//!
//! Loaded objects come from `loaded_objects` (path, load bias, executable
//! segments); each object's debug info is opened on first use and kept, also
//! across refreshes of the list (an object loaded at the same path and bias
//! keeps its parsed info). Everything here runs with the reentrancy guard
//! held, so its allocations are untracked. The one lock is held while
//! reading debug info, and no other lock is ever taken under it: the list
//! is walked (`dl_iterate_phdr`, under the loader's lock) with our lock
//! released, since another thread may hold the loader's lock and allocate.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One loaded object.
struct Object {
    path: PathBuf,
    bias: usize,
    text: Vec<Range<usize>>,
    /// Opened on first use; `None` inside when it cannot be read.
    loader: Option<Option<addr2line::Loader>>,
}

static OBJECTS: Mutex<Option<Vec<Object>>> = Mutex::new(None);

fn loaded_objects() -> Vec<Object> {
    use std::os::unix::ffi::OsStrExt;
    let mut objects = Vec::new();
    crate::capture::loaded_objects::for_each(|object| {
        // The first object, with an empty name, is the executable itself.
        let path = if object.name.is_empty() {
            PathBuf::from("/proc/self/exe")
        } else {
            PathBuf::from(std::ffi::OsStr::from_bytes(object.name))
        };
        let text = object
            .headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_X != 0)
            .map(|h| {
                let start = object.bias.wrapping_add(h.p_vaddr as usize);
                start..start.wrapping_add(h.p_memsz as usize)
            })
            .collect();
        objects.push(Object {
            path,
            bias: object.bias,
            text,
            loader: None,
        });
    });
    objects
}

/// The `fresh` list, keeping the opened debug info of objects that are
/// still loaded at the same path and bias.
fn merge(mut old: Vec<Object>, mut fresh: Vec<Object>) -> Vec<Object> {
    for object in &mut fresh {
        if let Some(i) = old
            .iter()
            .position(|o| o.path == object.path && o.bias == object.bias)
        {
            object.loader = old.swap_remove(i).loader;
        }
    }
    fresh
}

fn demangle(name: &str) -> String {
    addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned()
}

/// Calls `each(function, file, line)` for every frame at `ip`, innermost
/// (inlined) first. Returns false when `ip` is in no known object.
pub(crate) fn resolve(ip: usize, mut each: impl FnMut(String, Option<&Path>, u32)) -> bool {
    let find = |objects: &[Object]| {
        objects
            .iter()
            .position(|o| o.text.iter().any(|r| r.contains(&ip)))
    };
    let lock = || OBJECTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut guard = lock();
    let mut index = guard.as_deref().and_then(find);
    if index.is_none() {
        // First use, or a library loaded since the list was made: walk the
        // loader's list without holding ours, then merge.
        drop(guard);
        let fresh = loaded_objects();
        guard = lock();
        let old = guard.take().unwrap_or_default();
        *guard = Some(merge(old, fresh));
        index = guard.as_deref().and_then(find);
    }
    let (Some(objects), Some(index)) = (guard.as_mut(), index) else {
        return false;
    };
    let object = &mut objects[index];
    let probe = ip.wrapping_sub(object.bias) as u64;
    let loader = object
        .loader
        .get_or_insert_with(|| addr2line::Loader::new(&object.path).ok());
    let Some(loader) = loader else {
        return true;
    };
    let mut found = false;
    if let Ok(mut frames) = loader.find_frames(probe) {
        while let Ok(Some(frame)) = frames.next() {
            let function = match &frame.function {
                Some(name) => name.demangle().map(Cow::into_owned).unwrap_or_default(),
                None => String::new(),
            };
            let (file, line) = match &frame.location {
                Some(location) => (location.file.map(PathBuf::from), location.line.unwrap_or(0)),
                None => (None, 0),
            };
            each(function, file.as_deref(), line);
            found = true;
        }
    }
    if !found {
        // No line tables here: the symbol table's name at least.
        if let Some(name) = loader.find_symbol(probe) {
            each(demangle(name), None, 0);
        }
    }
    true
}
