//! The objects (executable and shared libraries) loaded in this process, as
//! `dl_iterate_phdr` reports them: one walk, shared by the unwinder's module
//! list and the symbolizer's.

use std::ffi::CStr;

#[cfg(target_pointer_width = "64")]
pub(crate) type Phdr = libc::Elf64_Phdr;
#[cfg(target_pointer_width = "32")]
pub(crate) type Phdr = libc::Elf32_Phdr;

/// One loaded object, valid during the [`for_each`] callback.
pub(crate) struct LoadedObject<'a> {
    /// The path it was loaded from; empty for the executable itself.
    pub(crate) name: &'a [u8],
    /// Load bias: its addresses in this process minus those in the file.
    pub(crate) bias: usize,
    /// Its program headers.
    pub(crate) headers: &'a [Phdr],
    /// The loader's (adds, subs) counters, (0, 0) if it has none.
    #[cfg_attr(
        not(memassert_cached_dwarf),
        allow(dead_code) // only the DWARF unwinder tracks loads and unloads
    )]
    pub(crate) generation: (u64, u64),
}

/// Calls `f` for each loaded object, under the loader's lock (`f` must not
/// load or unload objects).
pub(crate) fn for_each(mut f: impl FnMut(LoadedObject<'_>)) {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader hands us a valid `dl_phdr_info` for the
        // duration of the call, and `data` is the `&mut dyn FnMut` passed to
        // `dl_iterate_phdr` below.
        let (info, f) = unsafe {
            (
                &*info,
                &mut *data.cast::<&mut dyn FnMut(LoadedObject<'_>)>(),
            )
        };
        let name = if info.dlpi_name.is_null() {
            &[][..]
        } else {
            // SAFETY: a NUL-terminated name owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers of a
        // loaded object, valid during the callback.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        f(LoadedObject {
            name,
            bias: info.dlpi_addr as usize,
            headers,
            generation: generation_of(info, size),
        });
        0
    }
    let mut f: &mut dyn FnMut(LoadedObject<'_>) = &mut f;
    // SAFETY: `each` matches the callback signature and only reads what the
    // loader hands it; `f` outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(each),
            (&mut f as *mut &mut dyn FnMut(LoadedObject<'_>)).cast(),
        );
    }
}

/// The loader's (adds, subs) counters, from a `dl_phdr_info` of `size`
/// bytes, when it has them (a loader without them reports `(0, 0)`).
fn generation_of(info: &libc::dl_phdr_info, size: usize) -> (u64, u64) {
    let needed = std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs)
        + std::mem::size_of::<libc::c_ulonglong>();
    if size >= needed {
        (info.dlpi_adds, info.dlpi_subs)
    } else {
        (0, 0)
    }
}

/// The loader's current (adds, subs) counters, which move whenever an
/// object is loaded or unloaded: one `dl_iterate_phdr` step (about 15 ns).
#[cfg(memassert_cached_dwarf)]
pub(crate) fn generation() -> (u64, u64) {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: as in `for_each`; `data` is the pair passed below.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<(u64, u64)>()) };
        *out = generation_of(info, size);
        1 // stop after the first object
    }
    let mut out = (0, 0);
    // SAFETY: `first` matches the callback signature and writes only to
    // `out`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(Some(first), (&mut out as *mut (u64, u64)).cast());
    }
    out
}
