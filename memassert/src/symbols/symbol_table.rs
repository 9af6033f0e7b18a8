//! An object's symbol table, as a sorted index: the name of the function an
//! address is in, without reading any debug info.
//!
//! Reading an object's DWARF (its units' ranges, line programs and inlined
//! functions) costs tens of milliseconds the first time; its symbol table
//! (`.symtab`, else `.dynsym`) is a flat list read in well under a
//! millisecond. Classifying a new stack ("is this std's work?") needs only
//! the name of each physical frame in most cases (`symbolize::classify`
//! says when it needs more), so a passing test never pays for the DWARF.
//!
//! The names are not copied: the index keeps the object's file mapped and
//! refers to its string table.

use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::Endianness;

/// One object's function symbols, sorted by address.
pub(crate) struct SymbolTable {
    map: memmap2::Mmap,
    /// Where the symbols' string table is in `map`.
    strings: std::ops::Range<usize>,
    /// By start. A symbol without a size ends where the next one starts.
    entries: Vec<Function>,
}

/// A function's (start, end, name offset in the string table). Names are
/// found (their terminating NUL) only when looked up.
type Function = (u64, u64, u32);

impl SymbolTable {
    /// Reads the symbol table (`.symtab`, else `.dynsym`) of the ELF file
    /// at `path`; `None` when it cannot be read or names no function.
    pub(crate) fn open(path: &Path) -> Option<SymbolTable> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: the object is mapped read-only; a loaded executable or
        // library is not rewritten while it runs (as for the debug info).
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let (strings, mut entries) = match object::FileKind::parse(&*map).ok()? {
            object::FileKind::Elf64 => functions::<elf::FileHeader64<Endianness>>(&map)?,
            object::FileKind::Elf32 => functions::<elf::FileHeader32<Endianness>>(&map)?,
            _ => return None,
        };
        if entries.is_empty() {
            return None;
        }
        entries.sort_unstable();
        // Aliases (one address, several names): keep the first. A symbol
        // without a size reaches to the next start.
        entries.dedup_by_key(|e| e.0);
        for i in 0..entries.len() {
            if entries[i].1 <= entries[i].0 {
                entries[i].1 = entries.get(i + 1).map_or(u64::MAX, |next| next.0);
            }
        }
        Some(SymbolTable {
            map,
            strings,
            entries,
        })
    }

    /// The raw (mangled) name of the function containing `address` (an
    /// address in the file's terms, bias removed), and its start.
    pub(crate) fn find(&self, address: u64) -> Option<(&[u8], u64)> {
        let at = self.entries.partition_point(|e| e.0 <= address);
        let &(start, end, name) = self.entries.get(at.checked_sub(1)?)?;
        if address >= end {
            return None;
        }
        let strings = self.map.get(self.strings.clone())?;
        let name = strings.get(name as usize..)?;
        let len = name.iter().position(|&b| b == 0)?;
        Some((&name[..len], start))
    }

    /// Functions indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The defined functions of an ELF file's symbol table (its `.dynsym`
/// when it has no `.symtab`: a stripped library), with where their names
/// are. Reads only the fixed-size symbol records.
fn functions<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Option<(std::ops::Range<usize>, Vec<Function>)> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let mut table = sections.symbols(endian, data, elf::SHT_SYMTAB).ok()?;
    if table.is_empty() {
        table = sections.symbols(endian, data, elf::SHT_DYNSYM).ok()?;
    }
    let strings = sections.section(table.string_section()).ok()?;
    let offset = usize::try_from(strings.sh_offset(endian).into()).ok()?;
    let size = usize::try_from(strings.sh_size(endian).into()).ok()?;
    let entries = table
        .symbols()
        .iter()
        .filter(|sym| {
            matches!(sym.st_type(), elf::STT_FUNC | elf::STT_GNU_IFUNC) && !sym.is_undefined(endian)
        })
        .filter_map(|sym| {
            let start: u64 = sym.st_value(endian).into();
            let size: u64 = sym.st_size(endian).into();
            (start != 0).then(|| (start, start.saturating_add(size), sym.st_name(endian)))
        })
        .collect();
    Some((offset..offset.checked_add(size)?, entries))
}

#[cfg(test)]
mod tests {
    use super::SymbolTable;

    #[inline(never)]
    fn marker() -> usize {
        std::hint::black_box(7)
    }

    #[test]
    fn finds_a_function_of_this_executable_by_name() {
        let exe = std::env::current_exe().unwrap();
        let table = SymbolTable::open(&exe).expect("the test binary has a symbol table");
        assert!(table.len() > 100, "{} functions", table.len());
        // Somewhere in `marker`: its name, demangled, ends with it. The
        // executable is the object whose loaded segment holds `marker` (its
        // name is empty in glibc's list, not in a static musl program's).
        let at = marker as *const () as usize;
        let mut bias = None;
        crate::capture::loaded_objects::for_each(|object| {
            let holds = object.headers.iter().any(|h| {
                let start = object.bias.wrapping_add(h.p_vaddr as usize);
                h.p_type == libc::PT_LOAD && at >= start && at - start < h.p_memsz as usize
            });
            if holds {
                bias = Some(object.bias);
            }
        });
        let address = at.wrapping_sub(bias.expect("an object holds `marker`")) as u64 + 1;
        let (name, start) = table.find(address).expect("a symbol");
        assert!(start < address);
        let name = addr2line::demangle_auto(String::from_utf8_lossy(name), None).into_owned();
        assert!(name.contains("symbol_table::tests::marker"), "{name}");
        assert!(table.find(0).is_none());
        assert_eq!(marker(), 7);
    }
}
