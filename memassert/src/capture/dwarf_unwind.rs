//! Cached DWARF CFI unwinding in process, for x86_64 Linux builds without
//! frame pointers.
//!
//! The system unwinder (`_Unwind_Backtrace`) finds, decodes and interprets
//! each frame's CFI from scratch on every capture: 40-60 ns a frame, which
//! dominates the tracker's cost. The same stacks recur allocation after
//! allocation, though, so this module unwinds with [`framehop`] instead,
//! whose per-thread rule cache turns each already-seen return address into
//! a compact rule ("CFA = rsp + 24, rbp unchanged") applied with one or two
//! stack loads.
//!
//! Design:
//!
//! - **Modules.** Loaded objects are enumerated once, lazily, with
//!   `dl_iterate_phdr`: for each, its load bias, its executable `PT_LOAD`
//!   segments (one framehop module each) and its `PT_GNU_EH_FRAME` segment,
//!   i.e. `.eh_frame_hdr` as mapped; `.eh_frame` is found by decoding the
//!   header's `eh_frame_ptr`, and runs to the end of its `PT_LOAD` segment.
//!   The sections are `&'static [u8]` slices of the mapped images, valid
//!   while the objects stay loaded. The list is published through an
//!   [`AtomicPtr`] and built by one thread at a time without blocking:
//!   a capture that finds another thread building falls back (below).
//! - **Staleness, without the loader's lock.** With glibc's lock-free
//!   `_dl_find_object` (2.35 and later, looked up once), each text range a
//!   capture enters is checked against the object the loader has mapped
//!   there now (same `PT_GNU_EH_FRAME` address): a frame's sections are only
//!   read once the object holding that very return address is confirmed
//!   loaded (and an object whose code is on the stack being unwound cannot
//!   be unloaded under it). A mismatch, or an address the list does not
//!   know but the loader does (a `dlopen`), marks the list stale: that
//!   capture falls back and the next one rebuilds the list. Without
//!   `_dl_find_object` (older glibc), every capture reads the loader's
//!   add/remove counters instead (`dlpi_adds`/`dlpi_subs`, one
//!   `dl_iterate_phdr` step, which takes the loader's lock). Replaced lists
//!   are leaked (another thread may still be reading them); after 64
//!   builds, captures that find the list stale fall back instead.
//! - **Misses.** Before a frame is unwound its address must lie in a known
//!   module's text. If it does not (JIT code, an object without
//!   `PT_GNU_EH_FRAME`), the capture falls back.
//! - **Registers** (rip, rsp, rbp) are read with inline asm in
//!   [`capture`], which is never inlined, so the first frame is its own.
//! - **Stack reads** are checked: 8-byte aligned, at or above the capture's
//!   own stack pointer and below the top of this thread's stack (from
//!   `pthread_getattr_np`, cached per thread). Anything else is an error,
//!   never a load. A stack pointer outside the thread's stack (a signal
//!   handler on an alternate stack, a coroutine) falls back.
//! - **Cache.** framehop's `CacheX86_64` is direct-mapped (509 slots), so
//!   [`Caches`] makes a 4-way set-associative cache of four of them, in a
//!   per-thread slot created on first use (about 100 KiB a thread with the
//!   two walk records below, freed at thread exit); when the slot is
//!   unavailable (thread teardown, or already borrowed) the capture falls
//!   back.
//! - **The last walk.** Each frame's entering state and the stack words its
//!   unwinding read are recorded ([`crate::capture::walk_memo`]); a later
//!   capture that reaches a frame in the same state, with every word read
//!   from there outward unchanged, copies the rest instead of unwinding it
//!   (checked at most [`JOIN_TRIES`] times a capture, and only where the
//!   record holds enough frames to finish the capture).
//! - **Fallback.** [`capture`] returns `None` whenever it cannot vouch for
//!   the result (the cases above, an unwinding error): the caller then
//!   unwinds with `_Unwind_Backtrace`, exactly as before.
//! - **No panics.** Nothing here may panic: a panic inside the global
//!   allocator would run the panic hook there (which can take libtest's
//!   output lock) before aborting. Arithmetic on addresses is wrapping or
//!   checked, and framehop reports malformed CFI as errors.
//!
//! Everything here runs inside the global allocator with the reentrancy
//! guard held: allocations go untracked to the inner allocator. The only
//! lock taken is the loader's, inside `dl_iterate_phdr`, when a list is
//! built (recursive, so a capture from an allocation inside someone's
//! `dl_iterate_phdr` callback is fine); the tracker holds no lock of its own
//! around a capture, and nothing waits on a lock while holding the
//! loader's.
//!
//! Caveats: a frame without an FDE inside a known module is unwound by
//! framehop with the frame-pointer rule where `_Unwind_Backtrace` would stop
//! (so such stacks may go on further, never shorter; the stack reads stay
//! checked); signal frames are not recognised specially (`__restore_rt`'s
//! CFI is an expression framehop evaluates itself, or fails and falls back);
//! aarch64 and other targets keep the system unwinder.

use std::cell::RefCell;
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::OnceLock;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};

use crate::capture::walk_memo::{read_word, Memo, State};

type SectionData = &'static [u8];

/// The loaded objects, as known when the list was built.
struct Modules {
    unwinder: UnwinderX86_64<SectionData>,
    /// Executable ranges with unwind information, sorted by start, each
    /// with the address of its object's `PT_GNU_EH_FRAME` segment.
    text: Vec<(Range<usize>, usize)>,
    /// The loader's (adds, subs) counters when this list was built.
    generation: (u64, u64),
}

impl Modules {
    /// The known text range holding `address`, and its object's
    /// `PT_GNU_EH_FRAME` address.
    #[inline]
    fn text_around(&self, address: usize) -> Option<(Range<usize>, usize)> {
        let i = self.text.partition_point(|(r, _)| r.start <= address);
        let (range, eh) = self.text.get(i.checked_sub(1)?)?;
        range.contains(&address).then(|| (range.clone(), *eh))
    }
}

/// The current module list; null until first built. Never freed.
static MODULES: AtomicPtr<Modules> = AtomicPtr::new(ptr::null_mut());
/// Set while one thread (re)builds the list.
static BUILDING: AtomicBool = AtomicBool::new(false);
/// Lists built so far. Each replaced list is leaked, so after
/// [`MAX_BUILDS`] a process that keeps loading and unloading objects gets
/// the system unwinder instead.
static BUILDS: AtomicUsize = AtomicUsize::new(0);
const MAX_BUILDS: usize = 64;
/// Set when a capture found the list out of date (`_dl_find_object`).
static STALE: AtomicBool = AtomicBool::new(false);

/// glibc's `struct dl_find_object` (x86_64: flags, map start and end, link
/// map, eh_frame, then reserved words), with room to spare.
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: usize,
    map_end: usize,
    link_map: usize,
    eh_frame: usize,
    reserved: [u64; 16],
}

type FindObject = unsafe extern "C" fn(pc: *mut libc::c_void, result: *mut DlFindObject) -> i32;

/// glibc's lock-free `_dl_find_object`, if this libc has it. Looked up when
/// the first list is built.
fn find_object_fn() -> Option<FindObject> {
    static FIND: OnceLock<Option<FindObject>> = OnceLock::new();
    *FIND.get_or_init(|| {
        // SAFETY: a symbol lookup by NUL-terminated name; the symbol, when
        // present, has this signature (glibc 2.35+, <dlfcn.h>).
        unsafe {
            let sym = libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr());
            (!sym.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, FindObject>(sym))
        }
    })
}

/// The `PT_GNU_EH_FRAME` address of the object the loader has mapped at
/// `address` now; `None` if no object holds it. Lock-free.
#[inline]
fn loaded_eh_frame(find: FindObject, address: usize) -> Option<usize> {
    let mut out = DlFindObject {
        flags: 0,
        map_start: 0,
        map_end: 0,
        link_map: 0,
        eh_frame: 0,
        reserved: [0; 16],
    };
    // SAFETY: `out` is a writable `struct dl_find_object` (larger than
    // glibc's); `_dl_find_object` only reads the loader's tables.
    let found = unsafe { find(address as *mut libc::c_void, &mut out) } == 0;
    found.then_some(out.eh_frame)
}

thread_local! {
    // framehop's rule caches and the last walk, for this thread. Its
    // destructor frees them at thread exit; afterwards `try_with` fails and
    // captures fall back.
    static CACHE: RefCell<Option<Box<PerThread>>> = const { RefCell::new(None) };
}

/// What a thread keeps between captures.
struct PerThread {
    rules: Caches,
    /// The last successful walk (see `walk_memo`).
    last: Memo,
    /// The walk under way; swapped with `last` when it succeeds.
    next: Memo,
}

/// Full checks of the last walk per capture: a join whose check fails is
/// tried again further out at most this often.
const JOIN_TRIES: usize = 2;

/// Ways of the per-thread rule cache.
const WAYS: usize = 4;
/// Slots in one framehop rule cache: it is direct-mapped, by lookup address
/// modulo this (framehop 0.16's `CACHE_ENTRY_COUNT`; were it to change,
/// only the hit rate would suffer).
const SETS: usize = 509;

/// A set-associative rule cache made of [`WAYS`] framehop caches.
///
/// One framehop cache is direct-mapped: two return addresses of the same
/// stack that share a slot evict each other on every capture, and each
/// miss re-parses CFI (a stack of 30 frames has a collision more often
/// than not). So each address is sent to the way that last cached it, and
/// a new one to the next way of its set in turn.
struct Caches {
    ways: [Option<Box<CacheX86_64>>; WAYS],
    /// For each set, the lookup address each way holds (0: none).
    owners: Box<[[u64; WAYS]]>,
    /// For each set, the way to fill next.
    next: Box<[u8]>,
}

impl Caches {
    fn new() -> Caches {
        Caches {
            ways: Default::default(),
            owners: vec![[0; WAYS]; SETS].into_boxed_slice(),
            next: vec![0; SETS].into_boxed_slice(),
        }
    }

    /// The framehop cache to unwind `frame` with.
    #[inline]
    fn for_frame(&mut self, frame: FrameAddress) -> &mut CacheX86_64 {
        let lookup = frame.address_for_lookup();
        let set = (lookup % SETS as u64) as usize;
        let owners = &mut self.owners[set];
        let way = match owners.iter().position(|&owner| owner == lookup) {
            Some(way) => way,
            None => {
                let way = usize::from(self.next[set]) % WAYS;
                self.next[set] = ((way + 1) % WAYS) as u8;
                owners[way] = lookup;
                way
            }
        };
        self.ways[way].get_or_insert_with(|| Box::new(CacheX86_64::new()))
    }
}

/// Fills `buf[..depth]` with the caller's return addresses, each moved back
/// one byte into its call instruction, innermost first (the first entry is
/// inside this function); returns how many, or `None` when the caller must
/// use the system unwinder instead.
#[inline(never)]
pub(crate) fn capture(buf: &mut [usize], depth: usize) -> Option<usize> {
    let (ip, sp, bp): (usize, usize, usize);
    // SAFETY: reads rip (the address of the next instruction), rsp and rbp
    // into registers; no memory is touched.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let (low, high) = crate::capture::thread_stack::bounds();
    if sp < low || sp >= high {
        return None;
    }
    let modules = modules()?;
    let depth = depth.min(buf.len());
    CACHE
        .try_with(|slot| {
            let mut slot = slot.try_borrow_mut().ok()?;
            let per_thread = slot.get_or_insert_with(|| {
                Box::new(PerThread {
                    rules: Caches::new(),
                    last: Memo::new(),
                    next: Memo::new(),
                })
            });
            walk(modules, per_thread, (ip, sp, bp), high, &mut buf[..depth])
        })
        .ok()
        .flatten()
}

/// Unwinds from `regs` into `buf`; returns how many frames, or `None` on an
/// unwinding error or a frame outside every known module.
fn walk(
    modules: &Modules,
    per_thread: &mut PerThread,
    (ip, sp, bp): (usize, usize, usize),
    high: usize,
    buf: &mut [usize],
) -> Option<usize> {
    let PerThread { rules, last, next } = per_thread;
    // Everything the unwinder needs lies between our own stack pointer and
    // the top of the stack.
    let low = sp;
    let mut regs = UnwindRegsX86_64::new(ip as u64, sp as u64, bp as u64);
    let mut frame = FrameAddress::InstructionPointer(ip as u64);
    let depth = buf.len();
    let mut sink = crate::capture::sink::Sink::new(buf, depth);
    // The text range of the previous frame: most callers share a module.
    let mut text = 0..0;
    let find = find_object_fn();
    next.clear();
    let mut cursor = last.cursor();
    let mut tries = 0;
    loop {
        let state = State {
            address: frame.address(),
            first: matches!(frame, FrameAddress::InstructionPointer(_)),
            sp: regs.sp(),
            bp: regs.bp(),
        };
        // The rest of this stack may be the last walk's (`walk_memo`).
        if tries < JOIN_TRIES {
            if let Some(j) = last.matching(&mut cursor, state) {
                tries += 1;
                let (copied, complete) = (last.ips_from(j).len(), last.complete());
                // Enough frames there to finish this capture, and all of
                // them still this stack's.
                if (complete || sink.stops_within(copied))
                    && last.unchanged_from(j, |a| read_word(a, low, high))
                {
                    sink.push_all(last.ips_from(j));
                    // Joined at the first frame: this walk is the last one
                    // again, and its record stays as it is.
                    if !(j == 0 && next.is_empty()) {
                        next.append_from(last, j);
                        std::mem::swap(last, next);
                    }
                    return Some(sink.finish());
                }
            }
        }
        let lookup = frame.address_for_lookup() as usize;
        if !text.contains(&lookup) {
            let Some((range, eh)) = modules.text_around(lookup) else {
                // Not in the list: if the loader knows it, it was loaded
                // since the list was built.
                // (An object without unwind tables is never in the list:
                // not a reason to rebuild it.)
                if find.is_some_and(|f| loaded_eh_frame(f, lookup).is_some_and(|eh| eh != 0)) {
                    STALE.store(true, Ordering::Relaxed);
                }
                return None;
            };
            // The object there now must be the one listed before any of its
            // sections is read.
            if let Some(find) = find {
                if loaded_eh_frame(find, lookup) != Some(eh) {
                    STALE.store(true, Ordering::Relaxed);
                    return None;
                }
            }
            text = range;
        }
        next.enter(state);
        if !sink.push((frame.address() as usize).wrapping_sub(1)) {
            next.end(false);
            break;
        }
        let mut read_stack = |address: u64| -> Result<u64, ()> {
            let value = read_word(address, low, high);
            next.read(address, value);
            value.ok_or(())
        };
        match modules.unwinder.unwind_frame(
            frame,
            &mut regs,
            rules.for_frame(frame),
            &mut read_stack,
        ) {
            Ok(Some(ret)) => frame = FrameAddress::from_return_address(ret)?,
            Ok(None) => {
                next.end(true);
                break;
            }
            Err(_) => return None,
        }
    }
    std::mem::swap(last, next);
    Some(sink.finish())
}

/// The module list, (re)built on first use and whenever objects were loaded
/// or unloaded since. `None` while another thread builds it.
#[inline]
fn modules() -> Option<&'static Modules> {
    let current = MODULES.load(Ordering::Acquire);
    if !current.is_null() {
        // SAFETY: a published list is never freed nor mutated.
        let current = unsafe { &*current };
        let fresh = if find_object_fn().is_some() {
            // Checked frame by frame in `walk`, without a lock.
            !STALE.load(Ordering::Relaxed)
        } else {
            current.generation == crate::capture::loaded_objects::generation()
        };
        if fresh {
            return Some(current);
        }
        // Marked stale, but the loader has loaded and unloaded nothing since
        // this list was built (an object the list cannot cover): rebuilding
        // would give the same list. Keep it; such frames fall back.
        if current.generation == crate::capture::loaded_objects::generation() {
            STALE.store(false, Ordering::Relaxed);
            return Some(current);
        }
    }
    rebuild()
}

/// Builds the module list now if it is not built (or out of date), so that
/// the first capture does not: see `symbols::warm_up`.
pub(crate) fn warm_up() {
    let _ = modules();
}

/// Module lists built so far (each one is a one-time load).
pub(crate) fn builds() -> usize {
    BUILDS.load(Ordering::Relaxed)
}

/// Builds a fresh module list and publishes it, unless another thread is
/// already doing so or the budget of lists is spent (then `None`, without
/// waiting).
#[cold]
fn rebuild() -> Option<&'static Modules> {
    if BUILDS.load(Ordering::Relaxed) >= MAX_BUILDS || BUILDING.swap(true, Ordering::Acquire) {
        return None;
    }
    BUILDS.fetch_add(1, Ordering::Relaxed);
    // Looked up before the list is built, so that staleness found from
    // here on is checked against this list.
    find_object_fn();
    STALE.store(false, Ordering::Relaxed);
    let fresh: &'static Modules = Box::leak(Box::new(build()));
    // The previous list, if any, is leaked: other threads may be using it.
    MODULES.store(ptr::from_ref(fresh).cast_mut(), Ordering::Release);
    BUILDING.store(false, Ordering::Release);
    Some(fresh)
}

/// One loaded object's unwind sections and executable segments (AVMAs).
struct Object {
    bias: usize,
    exec: Vec<Range<usize>>,
    eh_frame_hdr: Range<usize>,
    eh_frame: Range<usize>,
}

fn build() -> Modules {
    let mut found = Found {
        objects: Vec::new(),
        generation: (0, 0),
    };
    crate::capture::loaded_objects::for_each(|loaded| {
        found.generation = loaded.generation;
        if let Some(object) = object(loaded.bias, loaded.headers) {
            found.objects.push(object);
        }
    });
    let mut unwinder = UnwinderX86_64::new();
    let mut text = Vec::new();
    for object in &found.objects {
        // SAFETY: both ranges lie inside loaded segments of an object that
        // was listed just now; its mapping stays readable until it is
        // unloaded, and a list is not used once the loader reports an unload
        // (`modules`).
        let (eh_frame_hdr, eh_frame) =
            unsafe { (slice(&object.eh_frame_hdr), slice(&object.eh_frame)) };
        let svma = |r: &Range<usize>| {
            r.start.wrapping_sub(object.bias) as u64..r.end.wrapping_sub(object.bias) as u64
        };
        for exec in &object.exec {
            let info = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: Some(svma(exec)),
                eh_frame_svma: Some(svma(&object.eh_frame)),
                eh_frame: Some(eh_frame),
                eh_frame_hdr_svma: Some(svma(&object.eh_frame_hdr)),
                eh_frame_hdr: Some(eh_frame_hdr),
                ..Default::default()
            };
            let avma = exec.start as u64..exec.end as u64;
            unwinder.add_module(Module::new(String::new(), avma, object.bias as u64, info));
            text.push((exec.clone(), object.eh_frame_hdr.start));
        }
    }
    text.sort_by_key(|(r, _)| r.start);
    Modules {
        unwinder,
        text,
        generation: found.generation,
    }
}

/// # Safety
///
/// `range` must be readable memory that stays mapped for the rest of the
/// program.
unsafe fn slice(range: &Range<usize>) -> &'static [u8] {
    // SAFETY: per this function's contract.
    unsafe { std::slice::from_raw_parts(range.start as *const u8, range.end - range.start) }
}

struct Found {
    objects: Vec<Object>,
    generation: (u64, u64),
}

/// The unwind sections and executable segments of the object loaded with
/// `bias` whose program headers are `headers`.
fn object(bias: usize, headers: &[libc::Elf64_Phdr]) -> Option<Object> {
    // Segment bounds as addresses in this process; `None` on nonsense.
    let span = |h: &libc::Elf64_Phdr, size: u64| -> Option<Range<usize>> {
        let start = bias.wrapping_add(usize::try_from(h.p_vaddr).ok()?);
        Some(start..start.checked_add(usize::try_from(size).ok()?)?)
    };
    // The file-backed part of each loaded segment: mapped and readable.
    let loaded: Vec<Range<usize>> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_R != 0)
        .filter_map(|h| span(h, h.p_filesz.min(h.p_memsz)))
        .collect();
    let exec: Vec<Range<usize>> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_X != 0 && h.p_memsz > 0)
        .filter_map(|h| span(h, h.p_memsz))
        .collect();
    let hdr = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME)?;
    let eh_frame_hdr = span(hdr, hdr.p_memsz)?;
    let readable = |r: &Range<usize>| loaded.iter().any(|l| l.start <= r.start && r.end <= l.end);
    // The header: version, eh_frame_ptr_enc, fde_count_enc, table_enc,
    // then the encoded `eh_frame_ptr`.
    if exec.is_empty() || eh_frame_hdr.len() < 8 || !readable(&eh_frame_hdr) {
        return None;
    }
    // SAFETY: the header lies inside a loaded, readable segment (checked
    // just above) of an object the loader is reporting to us.
    let header = unsafe { slice(&eh_frame_hdr) };
    if header[0] != 1 {
        return None;
    }
    let hdr_start = eh_frame_hdr.start;
    let eh_frame_start = decode_pointer(header[1], &header[4..], hdr_start + 4, hdr_start)?;
    // `.eh_frame`'s length is not recorded anywhere in memory: let it run to
    // the end of the loaded segment that holds it (the parser only follows
    // offsets found through the header's table).
    let segment = loaded.iter().find(|l| l.contains(&eh_frame_start))?;
    Some(Object {
        bias,
        exec,
        eh_frame_hdr,
        eh_frame: eh_frame_start..segment.end,
    })
}

/// Decodes a DWARF EH pointer with encoding `encoding` from the start of
/// `bytes`, which sit at address `at` in a section starting at `data_base`.
/// Handles the encodings linkers emit for `eh_frame_ptr`.
fn decode_pointer(encoding: u8, bytes: &[u8], at: usize, data_base: usize) -> Option<usize> {
    let read = |n: usize| -> Option<[u8; 8]> {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(bytes.get(..n)?);
        Some(out)
    };
    let value: i64 = match encoding & 0x0f {
        0x00 | 0x04 | 0x0c => i64::from_le_bytes(read(8)?),
        0x03 => i64::from(u32::from_le_bytes(read(4)?[..4].try_into().ok()?)),
        0x0b => i64::from(i32::from_le_bytes(read(4)?[..4].try_into().ok()?)),
        _ => return None,
    };
    let base = match encoding & 0x70 {
        0x00 => 0,
        0x10 => at,
        0x30 => data_base,
        _ => return None,
    };
    Some(base.wrapping_add(value as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    const MAX: usize = crate::capture::sink::MAX_RAW_FRAMES;

    /// Calls `f` from `depth` nested frames.
    #[inline(never)]
    fn nest(depth: usize, f: &mut dyn FnMut()) {
        if depth == 0 {
            f();
        } else {
            nest(black_box(depth - 1), f);
        }
        // Not a tail call: every level keeps its frame.
        black_box(depth);
    }

    /// Waits for the module list (another test's thread may be building it).
    fn ready() -> &'static Modules {
        loop {
            match modules() {
                Some(modules) => return modules,
                None => std::thread::yield_now(),
            }
        }
    }

    /// Both captures, taken from the same frame.
    fn both() -> (Vec<usize>, Vec<usize>) {
        let mut fast = [0usize; MAX];
        // The first capture may find another test's thread building the
        // module list, and fall back: wait for the list.
        let _ = ready();
        let n = capture(&mut fast, MAX).expect("framehop capture fell back");
        let mut slow = [0usize; MAX];
        let m = crate::capture::system_unwind::capture_libgcc(&mut slow, MAX);
        (fast[..n].to_vec(), slow[..m].to_vec())
    }

    /// How many frames the two captures share, counted from the outermost.
    fn common_outer(fast: &[usize], slow: &[usize]) -> usize {
        fast.iter()
            .rev()
            .zip(slow.iter().rev())
            .take_while(|(a, b)| a == b)
            .count()
    }

    fn check(depth: usize) {
        let mut got = None;
        nest(depth, &mut || got = Some(both()));
        let (fast, slow) = got.unwrap();
        // Align the two from the outermost frame inwards.
        let common = common_outer(&fast, &slow);
        // Only the frames of the captures themselves differ: framehop's
        // `capture` and the closure's call sites (both in `both`), and
        // the system unwinder's own frames.
        let fast_own = fast.len() - common;
        let slow_own = slow.len() - common;
        assert!(
            fast_own <= 2 && slow_own <= 8,
            "depth {depth}: {fast_own} and {slow_own} frames differ\nfast {fast:x?}\nslow {slow:x?}"
        );
        // Everything from `both`'s caller outwards agrees: the closure, the
        // `nest` frames and the test harness beyond.
        assert!(
            common > depth + 2,
            "depth {depth}: only {common} frames agree"
        );
    }

    #[test]
    fn matches_the_system_unwinder() {
        for depth in [1, 10, 50] {
            check(depth);
        }
    }

    #[test]
    fn matches_on_another_thread() {
        std::thread::spawn(|| {
            for depth in [1, 10, 50] {
                check(depth);
            }
        })
        .join()
        .unwrap();
    }

    /// The same frames below (`nest`'s, at the same stack addresses), a
    /// different caller above: the last walk must not be taken over.
    #[inline(never)]
    fn via_a(f: &mut dyn FnMut()) {
        nest(black_box(5), f);
        black_box(1);
    }

    #[inline(never)]
    fn via_b(f: &mut dyn FnMut()) {
        nest(black_box(5), f);
        black_box(2);
    }

    #[test]
    fn the_last_walk_is_taken_over_only_where_the_stack_agrees() {
        // Interleaved depths: joins at every offset, and none.
        for depth in [10, 10, 12, 3, 12, 50, 49, 1, 1, 10, 50, 50] {
            check(depth);
        }
        let mut from = |via: fn(&mut dyn FnMut())| {
            let mut got = None;
            via(&mut || got = Some(both()));
            let (fast, slow) = got.unwrap();
            let common = common_outer(&fast, &slow);
            assert!(
                common > 5 + 2,
                "only {common} frames agree\n{fast:x?}\n{slow:x?}"
            );
            fast
        };
        // One call site for all four, so only the callers differ.
        let vias: [fn(&mut dyn FnMut()); 4] = [via_a, via_b, via_a, via_b];
        let stacks: Vec<Vec<usize>> = vias.into_iter().map(&mut from).collect();
        assert_ne!(
            stacks[0], stacks[1],
            "the callers differ, so must the stacks"
        );
        assert_eq!(stacks[0], stacks[2]);
        assert_eq!(stacks[1], stacks[3]);
    }

    #[test]
    fn repeated_captures_agree() {
        for _ in 0..3 {
            check(10);
        }
    }

    #[test]
    fn respects_depth() {
        let mut buf = [0usize; MAX];
        let _ = ready();
        let mut n = None;
        nest(20, &mut || n = capture(&mut buf, 5));
        assert_eq!(n, Some(5));
    }

    /// Capture cost, framehop against the system unwinder, on a repeated
    /// stack (run with `--release --ignored --nocapture`).
    #[test]
    #[ignore = "timing, not a check"]
    fn capture_speed() {
        let _ = ready();
        for depth in [10, 50] {
            let mut times = (0, 0);
            nest(depth, &mut || {
                let mut buf = [0usize; MAX];
                let runs = 200_000;
                let start = std::time::Instant::now();
                for _ in 0..runs {
                    black_box(capture(black_box(&mut buf), MAX));
                }
                let fast = start.elapsed().as_nanos() / runs;
                let start = std::time::Instant::now();
                for _ in 0..runs {
                    black_box(crate::capture::system_unwind::capture_libgcc(
                        black_box(&mut buf),
                        MAX,
                    ));
                }
                times = (fast, start.elapsed().as_nanos() / runs);
            });
            let (fast, slow) = times;
            eprintln!(
                "depth {depth}: framehop {fast} ns, system unwinder {slow} ns a capture ({:.1}x)",
                slow as f64 / fast as f64
            );
        }
    }

    #[test]
    fn follows_dlopen_and_dlclose() {
        let _ = ready();
        // A glibc library the test binary does not link.
        let name = c"libresolv.so.2";
        // SAFETY: loading a system library with no constructors of note.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return;
        }
        check(10);
        if let Some(find) = find_object_fn() {
            // The loader knows the new library; a list built before it was
            // loaded does not, and a walk reaching it marks the list stale.
            // SAFETY: a lookup by name in a handle we hold.
            let sym = unsafe { libc::dlsym(handle, c"__res_context_query".as_ptr()) };
            if !sym.is_null() {
                assert!(loaded_eh_frame(find, sym as usize).is_some());
            }
            // Objects in the list agree with the loader.
            let here = capture as *const () as usize;
            assert_eq!(
                loaded_eh_frame(find, here),
                ready().text_around(here).map(|(_, eh)| eh)
            );
        } else {
            assert_eq!(
                ready().generation,
                crate::capture::loaded_objects::generation()
            );
        }
        // SAFETY: `handle` came from `dlopen` above and is closed once.
        unsafe { libc::dlclose(handle) };
        check(10);
    }

    #[test]
    fn covers_this_binary_and_its_libraries() {
        let modules = ready();
        assert!(modules.text_around(capture as *const () as usize).is_some());
        assert!(modules
            .text_around(libc::pthread_self as *const () as usize)
            .is_some());
        assert!(modules
            .text_around(std::ptr::null::<u8>() as usize)
            .is_none());
    }

    #[test]
    fn decodes_eh_frame_ptr() {
        let bytes = (-16i32).to_le_bytes();
        assert_eq!(decode_pointer(0x1b, &bytes, 0x1000, 0), Some(0x1000 - 16));
        assert_eq!(
            decode_pointer(0x03, &32u32.to_le_bytes(), 0x1000, 0),
            Some(32)
        );
        assert_eq!(
            decode_pointer(0x33, &8u32.to_le_bytes(), 0x1000, 0x800),
            Some(0x808)
        );
        assert_eq!(decode_pointer(0xff, &bytes, 0, 0), None);
    }
}
