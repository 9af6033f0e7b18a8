//! Symbol lookup with a cache of memassert's own: the loaded objects' debug
//! info read with `addr2line` (DWARF: Linux, macOS, Windows with the GNU
//! toolchain).
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
    /// Its symbol table, read on first use (`None` inside: none).
    #[cfg(target_os = "linux")]
    symbols: Option<Option<crate::symbols::symbol_table::SymbolTable>>,
}

static OBJECTS: Mutex<Option<Vec<Object>>> = Mutex::new(None);

/// Objects' debug info or symbol tables opened, and loader lists walked,
/// so far: the one-time loads `symbols::warm_up` does before a scope's
/// body runs.
static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// See [`LOADS`].
pub(crate) fn loads() -> usize {
    LOADS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Objects' debug info opened so far.
static DEBUG_INFO_READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// See [`DEBUG_INFO_READS`].
pub(crate) fn debug_info_reads() -> usize {
    DEBUG_INFO_READS.load(std::sync::atomic::Ordering::Relaxed)
}

fn count_load() {
    LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Linux (glibc, musl): the loader's list, `dl_iterate_phdr`.
#[cfg(target_os = "linux")]
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
            symbols: None,
        });
    });
    objects
}

/// macOS: dyld's image list; each image's executable segments read from
/// its Mach-O load commands in memory. (dyld's list may change while it is
/// read; an image missed here is found on the next miss.)
#[cfg(target_os = "macos")]
fn loaded_objects() -> Vec<Object> {
    use std::os::unix::ffi::OsStrExt;
    const MH_MAGIC_64: u32 = 0xfeed_facf;
    const LC_SEGMENT_64: u32 = 0x19;
    const VM_PROT_EXECUTE: i32 = 4;
    extern "C" {
        fn _dyld_image_count() -> u32;
        fn _dyld_get_image_header(index: u32) -> *const u8;
        fn _dyld_get_image_vmaddr_slide(index: u32) -> isize;
        fn _dyld_get_image_name(index: u32) -> *const std::ffi::c_char;
    }
    let mut objects = Vec::new();
    // SAFETY: dyld's image accessors take any index and return null for one
    // out of range; a non-null header is a mapped Mach-O image whose load
    // commands (`sizeofcmds` bytes) follow the 32-byte 64-bit header.
    unsafe {
        for i in 0.._dyld_image_count() {
            let header = _dyld_get_image_header(i);
            let name = _dyld_get_image_name(i);
            // mach_header_64: magic at 0, ncmds at 16.
            if header.is_null()
                || name.is_null()
                || std::ptr::read_unaligned(header as *const u32) != MH_MAGIC_64
            {
                continue;
            }
            let commands = std::ptr::read_unaligned(header.add(16) as *const u32);
            let bias = _dyld_get_image_vmaddr_slide(i) as usize;
            let mut text = Vec::new();
            let mut command = header.add(32);
            for _ in 0..commands {
                let cmd = std::ptr::read_unaligned(command as *const u32);
                let size = std::ptr::read_unaligned(command.add(4) as *const u32);
                if cmd == LC_SEGMENT_64 {
                    // segment_command_64: vmaddr at 24, vmsize at 32,
                    // initprot at 60.
                    let vmaddr = std::ptr::read_unaligned(command.add(24) as *const u64);
                    let vmsize = std::ptr::read_unaligned(command.add(32) as *const u64);
                    let initprot = std::ptr::read_unaligned(command.add(60) as *const i32);
                    if initprot & VM_PROT_EXECUTE != 0 {
                        let start = bias.wrapping_add(vmaddr as usize);
                        text.push(start..start.wrapping_add(vmsize as usize));
                    }
                }
                if size == 0 {
                    break;
                }
                command = command.add(size as usize);
            }
            let path = std::ffi::CStr::from_ptr(name).to_bytes();
            objects.push(Object {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(path)),
                bias,
                text,
                loader: None,
            });
        }
    }
    objects
}

/// Windows with the GNU toolchain (DWARF in the PE file): the process's
/// modules; each one's load bias is its base minus the `ImageBase` its PE
/// header asks for.
#[cfg(all(windows, target_env = "gnu"))]
fn loaded_objects() -> Vec<Object> {
    use std::ffi::c_void;
    use std::os::windows::ffi::OsStringExt;
    #[repr(C)]
    struct ModuleInfo {
        base: *mut c_void,
        size: u32,
        entry: *mut c_void,
    }
    #[link(name = "kernel32")]
    extern "system" {
        fn GetCurrentProcess() -> *mut c_void;
        fn K32EnumProcessModules(
            process: *mut c_void,
            modules: *mut *mut c_void,
            bytes: u32,
            needed: *mut u32,
        ) -> i32;
        fn K32GetModuleInformation(
            process: *mut c_void,
            module: *mut c_void,
            info: *mut ModuleInfo,
            bytes: u32,
        ) -> i32;
        fn GetModuleFileNameW(module: *mut c_void, name: *mut u16, size: u32) -> u32;
    }
    let mut objects = Vec::new();
    let mut modules: Vec<*mut c_void> = vec![std::ptr::null_mut(); 256];
    // SAFETY: the buffers passed are as large as the sizes given; the
    // pseudo-handle of the current process needs no closing. A module's
    // headers are mapped while it is loaded: `e_lfanew` at 0x3c, then the
    // NT signature (4 bytes), the file header (20) and the optional header,
    // whose `ImageBase` is at 24 (PE32+) or 28 (PE32).
    unsafe {
        let process = GetCurrentProcess();
        loop {
            let mut needed = 0u32;
            let bytes = (modules.len() * std::mem::size_of::<*mut c_void>()) as u32;
            if K32EnumProcessModules(process, modules.as_mut_ptr(), bytes, &mut needed) == 0 {
                return objects;
            }
            let count = needed as usize / std::mem::size_of::<*mut c_void>();
            if count <= modules.len() {
                modules.truncate(count);
                break;
            }
            modules.resize(count, std::ptr::null_mut());
        }
        for &module in &modules {
            let mut info = ModuleInfo {
                base: std::ptr::null_mut(),
                size: 0,
                entry: std::ptr::null_mut(),
            };
            let info_size = std::mem::size_of::<ModuleInfo>() as u32;
            if K32GetModuleInformation(process, module, &mut info, info_size) == 0 {
                continue;
            }
            let mut name = vec![0u16; 1024];
            let len = GetModuleFileNameW(module, name.as_mut_ptr(), name.len() as u32) as usize;
            if len == 0 || len >= name.len() {
                continue;
            }
            let base = info.base as usize;
            let pe = base + std::ptr::read_unaligned((base + 0x3c) as *const u32) as usize;
            let optional = pe + 4 + 20;
            let image_base = match std::ptr::read_unaligned(optional as *const u16) {
                0x20b => std::ptr::read_unaligned((optional + 24) as *const u64) as usize,
                0x10b => std::ptr::read_unaligned((optional + 28) as *const u32) as usize,
                _ => continue,
            };
            let image = base..base + info.size as usize;
            objects.push(Object {
                path: PathBuf::from(std::ffi::OsString::from_wide(&name[..len])),
                bias: base.wrapping_sub(image_base),
                text: vec![image],
                loader: None,
            });
        }
    }
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
            let old = old.swap_remove(i);
            object.loader = old.loader;
            #[cfg(target_os = "linux")]
            {
                object.symbols = old.symbols;
            }
        }
    }
    fresh
}

fn demangle(name: &str) -> String {
    addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned()
}

/// Runs `f` on the loaded object whose code contains `ip` (the list is
/// walked again when no object does: a library loaded since), with our lock
/// held. `None` when `ip` is in no loaded object.
fn with_object<T>(ip: usize, f: impl FnOnce(&mut Object) -> T) -> Option<T> {
    let find = |objects: &[Object]| {
        objects
            .iter()
            .position(|o| o.text.iter().any(|r| r.contains(&ip)))
    };
    let mut guard = lock_objects();
    let mut index = guard.as_deref().and_then(find);
    if index.is_none() {
        // First use, or a library loaded since the list was made.
        drop(guard);
        guard = refresh();
        index = guard.as_deref().and_then(find);
    }
    let (Some(objects), Some(index)) = (guard.as_mut(), index) else {
        return None;
    };
    Some(f(&mut objects[index]))
}

type ObjectsGuard = std::sync::MutexGuard<'static, Option<Vec<Object>>>;

fn lock_objects() -> ObjectsGuard {
    OBJECTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Walks the loader's list without holding our lock (another thread may
/// hold the loader's and allocate), then merges it into ours and returns
/// it locked. A load is a list with objects it did not have: an address in
/// no object at all (the bottom of a thread's stack) walks the list again
/// (once: callers remember the address), but loads nothing.
fn refresh() -> ObjectsGuard {
    let fresh = loaded_objects();
    let mut guard = lock_objects();
    let old = guard.take().unwrap_or_default();
    let new = fresh
        .iter()
        .any(|f| !old.iter().any(|o| o.path == f.path && o.bias == f.bias));
    if new {
        count_load();
    }
    *guard = Some(merge(old, fresh));
    guard
}

#[cfg(target_os = "linux")]
impl Object {
    /// Its symbol table, read on first use.
    fn symbol_table(&mut self) -> Option<&crate::symbols::symbol_table::SymbolTable> {
        self.symbols
            .get_or_insert_with(|| {
                count_load();
                crate::symbols::symbol_table::SymbolTable::open(&self.path)
            })
            .as_ref()
    }
}

/// The demangled name of the function `ip` is in, from the object's symbol
/// table alone (no debug info: see `symbol_table`), and whether it was
/// mangled in Rust's v0 scheme (whose names show every generic argument,
/// closures' included). `None` when the object has no symbol there, or no
/// symbol table.
#[cfg(target_os = "linux")]
pub(crate) fn symbol(ip: usize) -> Option<(String, bool)> {
    with_object(ip, |object| {
        let probe = ip.wrapping_sub(object.bias) as u64;
        let (name, _) = object.symbol_table()?.find(probe)?;
        let v0 = name.starts_with(b"_R");
        Some((demangle(&String::from_utf8_lossy(name)), v0))
    })
    .flatten()
}

/// Reads the symbol table of every loaded object now (the loader's list
/// walked first if it is new): an object the body's stacks only sometimes
/// run in (libgcc's unwinder, when a capture falls back to it) must not be
/// a one-time load inside the body. Small: libraries carry only their
/// dynamic symbols.
#[cfg(target_os = "linux")]
pub(crate) fn warm_symbol_tables() {
    let mut guard = lock_objects();
    if guard.is_none() {
        drop(guard);
        guard = refresh();
    }
    for object in guard.iter_mut().flatten() {
        object.symbol_table();
    }
}

/// Calls `each(function, file, line)` for every frame at `ip`, innermost
/// (inlined) first. Returns false when `ip` is in no known object.
pub(crate) fn resolve(ip: usize, mut each: impl FnMut(String, Option<&Path>, u32)) -> bool {
    with_object(ip, |object| {
        let probe = ip.wrapping_sub(object.bias) as u64;
        let loader = object.loader.get_or_insert_with(|| {
            count_load();
            DEBUG_INFO_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            addr2line::Loader::new(&object.path).ok()
        });
        let Some(loader) = loader else {
            return;
        };
        let mut found = false;
        if let Ok(mut frames) = loader.find_frames(probe) {
            while let Ok(Some(frame)) = frames.next() {
                let function = match &frame.function {
                    Some(name) => name.demangle().map(Cow::into_owned).unwrap_or_default(),
                    None => String::new(),
                };
                let (file, line) = match &frame.location {
                    Some(location) => {
                        (location.file.map(PathBuf::from), location.line.unwrap_or(0))
                    }
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
    })
    .is_some()
}
