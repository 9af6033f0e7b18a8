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

use object::{Object, ObjectSymbol, SymbolKind};

/// One object's function symbols, sorted by address.
pub(crate) struct SymbolTable {
    map: memmap2::Mmap,
    /// (start, end, name offset in `map`, name length), by start. A
    /// symbol without a size ends where the next one starts.
    entries: Vec<(u64, u64, u32, u32)>,
}

impl SymbolTable {
    /// Reads the symbol table of the object file at `path`; `None` when it
    /// cannot be read or names no function.
    pub(crate) fn open(path: &Path) -> Option<SymbolTable> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: the object is mapped read-only; a loaded executable or
        // library is not rewritten while it runs (as for the debug info).
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let base = map.as_ptr() as usize;
        let mut entries = Vec::new();
        {
            let object = object::File::parse(&*map).ok()?;
            let mut add = |symbol: object::Symbol<'_, '_>| {
                if symbol.kind() != SymbolKind::Text || symbol.address() == 0 {
                    return;
                }
                let Ok(name) = symbol.name_bytes() else {
                    return;
                };
                // The name lies inside the mapping (the string table).
                let offset = (name.as_ptr() as usize).wrapping_sub(base);
                if name.is_empty() || offset > u32::MAX as usize || name.len() > u32::MAX as usize {
                    return;
                }
                let start = symbol.address();
                let end = start.saturating_add(symbol.size());
                entries.push((start, end, offset as u32, name.len() as u32));
            };
            let mut any = false;
            for symbol in object.symbols() {
                any = true;
                add(symbol);
            }
            if !any {
                object.dynamic_symbols().for_each(&mut add);
            }
        }
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
        Some(SymbolTable { map, entries })
    }

    /// The raw (mangled) name of the function containing `address` (an
    /// address in the file's terms, bias removed), and its start.
    pub(crate) fn find(&self, address: u64) -> Option<(&[u8], u64)> {
        let at = self.entries.partition_point(|e| e.0 <= address);
        let &(start, end, offset, len) = self.entries.get(at.checked_sub(1)?)?;
        if address >= end {
            return None;
        }
        let name = self
            .map
            .get(offset as usize..offset as usize + len as usize)?;
        Some((name, start))
    }

    /// Functions indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
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
        // Somewhere in `marker`: its name, demangled, ends with it.
        let mut bias = None;
        crate::capture::loaded_objects::for_each(|object| {
            if object.name.is_empty() {
                bias = Some(object.bias);
            }
        });
        let address = (marker as *const () as usize).wrapping_sub(bias.unwrap()) as u64 + 1;
        let (name, start) = table.find(address).expect("a symbol");
        assert!(start < address);
        let name = addr2line::demangle_auto(String::from_utf8_lossy(name), None).into_owned();
        assert!(name.contains("symbol_table::tests::marker"), "{name}");
        assert!(table.find(0).is_none());
        assert_eq!(marker(), 7);
    }
}
