//! What the program's debug info names: its source files and its functions.
//!
//! A `no_growth` pattern is checked against the sites a test's allocations
//! had; one that names nothing there may be a typo, or code that simply did
//! not allocate. This index tells the two apart, so that a typo fails the
//! test (with the nearest name) instead of passing it vacuously. Built once,
//! at check time (never inside an allocation), from the executable's DWARF
//! line tables and symbol names.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use addr2line::gimli;
use object::{Object, ObjectSection, ObjectSymbol};

use crate::base::reentrancy::Guard;
use crate::symbols::paths;

/// Source files and functions of the program.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Source files as reports show them (workspace-relative, ...).
    pub(crate) files: BTreeSet<String>,
    /// Demangled function paths (symbols and DWARF linkage names).
    pub(crate) functions: BTreeSet<String>,
    /// Why the index could not be built, if it could not.
    pub(crate) error: Option<String>,
}

/// The program's index, built on first use.
pub(crate) fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        // The tracker's own work: untracked.
        let _untracked = Guard::enter();
        match std::env::current_exe() {
            Ok(exe) => build(&exe).unwrap_or_else(|error| Index {
                error: Some(format!("{}: {error}", exe.display())),
                ..Index::default()
            }),
            Err(error) => Index {
                error: Some(format!("the executable's path: {error}")),
                ..Index::default()
            },
        }
    })
}

fn build(exe: &Path) -> Result<Index, String> {
    let file = std::fs::File::open(exe).map_err(|e| e.to_string())?;
    // SAFETY: the executable is mapped read-only; cargo does not rewrite a
    // running test binary.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let object = object::File::parse(&*map).map_err(|e| e.to_string())?;
    let mut index = Index::default();
    for symbol in object.symbols() {
        if let Ok(name) = symbol.name() {
            if symbol.is_definition() {
                index.functions.insert(demangle(name));
            }
        }
    }
    read_dwarf(&object, &mut index).map_err(|e| e.to_string())?;
    Ok(index)
}

fn demangle(name: &str) -> String {
    addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned()
}

fn read_dwarf(object: &object::File<'_>, index: &mut Index) -> Result<(), gimli::Error> {
    let endian = if object.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(object
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    };
    let sections = gimli::DwarfSections::load(load)?;
    let dwarf = sections.borrow(|section| gimli::EndianSlice::new(section, endian));
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let comp_dir = unit
            .comp_dir
            .map(|d| PathBuf::from(d.to_string_lossy().into_owned()));
        if let Some(program) = &unit.line_program {
            let header = program.header();
            for file in header.file_names() {
                let mut path = comp_dir.clone().unwrap_or_default();
                if let Some(dir) = file.directory(header) {
                    if let Ok(dir) = dwarf.attr_string(&unit, dir) {
                        path.push(dir.to_string_lossy().as_ref());
                    }
                }
                if let Ok(name) = dwarf.attr_string(&unit, file.path_name()) {
                    path.push(name.to_string_lossy().as_ref());
                }
                index.files.insert(paths::display_path(&path));
            }
        }
        let mut entries = unit.entries();
        while let Some(entry) = entries.next_dfs()? {
            if entry.tag() != gimli::DW_TAG_subprogram {
                continue;
            }
            for name in [gimli::DW_AT_linkage_name, gimli::DW_AT_MIPS_linkage_name] {
                if let Some(value) = entry.attr_value(name) {
                    if let Ok(name) = dwarf.attr_string(&unit, value) {
                        index.functions.insert(demangle(&name.to_string_lossy()));
                    }
                }
            }
        }
    }
    Ok(())
}

impl Index {
    /// The names closest to `pattern` (files or functions, whichever kind
    /// it is), nearest first: a "did you mean".
    pub(crate) fn nearest(&self, pattern: &str) -> Option<String> {
        let (candidates, wanted): (Vec<&String>, &str) = if pattern.contains("::") {
            (self.functions.iter().collect(), pattern)
        } else {
            (
                self.files.iter().collect(),
                crate::symbols::pattern::split_line(pattern).0,
            )
        };
        candidates
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(|c| (distance(wanted, c), c))
            .filter(|(d, c)| *d <= wanted.len().max(c.len()) / 2)
            .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
            .map(|(_, c)| c.clone())
    }
}

/// Levenshtein distance, in characters.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("src/cahce.rs", "src/cache.rs"), 2);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn this_binary_is_indexed() {
        let index = index();
        assert!(index.error.is_none(), "{:?}", index.error);
        assert!(
            index.files.contains("memassert/src/symbols/debug_index.rs"),
            "{:?}",
            index.files.iter().take(20).collect::<Vec<_>>()
        );
        assert!(index
            .functions
            .iter()
            .any(|f| f == "memassert::symbols::debug_index::distance"));
        assert_eq!(
            index
                .nearest("memassert/src/symbols/debug_indx.rs")
                .as_deref(),
            Some("memassert/src/symbols/debug_index.rs")
        );
    }
}
