//! File names as reports show them: relative to the workspace, and free of
//! anything specific to one machine or toolchain.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The root that paths are shown relative to: `MEMASSERT_ROOT` if set, else
/// the workspace root above `CARGO_MANIFEST_DIR` (cargo sets it when running
/// tests, examples and `cargo run`), else the one above the current directory.
pub(crate) fn workspace_root() -> Option<&'static Path> {
    static ROOT: OnceLock<Option<PathBuf>> = OnceLock::new();
    ROOT.get_or_init(|| {
        if let Some(root) = std::env::var_os("MEMASSERT_ROOT") {
            return Some(PathBuf::from(root));
        }
        let start = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())?;
        Some(find_workspace_root(&start).unwrap_or(start))
    })
    .as_deref()
}

/// The nearest directory at or above `start` whose `Cargo.toml` declares a
/// `[workspace]` (a member's own manifest does not), or else the nearest one
/// with a `Cargo.toml`.
fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    let mut nearest = None;
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|l| l.trim() == "[workspace]") {
                return Some(dir.to_path_buf());
            }
            nearest.get_or_insert_with(|| dir.to_path_buf());
        }
    }
    nearest
}

/// How `path` (as recorded in debug info) is shown in reports.
///
/// - under the workspace root: relative to it (`src/cache.rs`);
/// - the standard library: `library/alloc/src/vec/mod.rs`, without the
///   `/rustc/<commit>/` or toolchain directory in front;
/// - a crates.io dependency: `serde-1.0.200/src/de.rs`;
/// - anything else: unchanged.
pub(crate) fn display_path(path: &Path) -> String {
    if let Some(root) = workspace_root() {
        if let Ok(rel) = path.strip_prefix(root) {
            return slashes(rel);
        }
    }
    let text = slashes(path);
    if let Some(rest) = text.strip_prefix("/rustc/") {
        // /rustc/<commit hash>/library/...
        if let Some((_, tail)) = rest.split_once('/') {
            return tail.to_string();
        }
    }
    for marker in ["/lib/rustlib/src/rust/", "/rust/deps/"] {
        if let Some(i) = text.find(marker) {
            let tail = &text[i + marker.len()..];
            return if marker == "/rust/deps/" {
                format!("library/deps/{tail}")
            } else {
                tail.to_string()
            };
        }
    }
    for marker in ["/registry/src/", "/git/checkouts/"] {
        if let Some(i) = text.find(marker) {
            // <index or repo>/<crate dir>/...: drop the machine-specific part.
            let tail = &text[i + marker.len()..];
            if let Some((_, krate)) = tail.split_once('/') {
                return krate.to_string();
            }
        }
    }
    text
}

/// True when a recorded path is the standard library's (or one of the crates
/// vendored into it).
pub(crate) fn is_std_path(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.starts_with("/rustc/")
        || text.contains("/lib/rustlib/src/rust/")
        || text.starts_with("/rust/deps/")
        || text.contains("/library/std/src/")
        || text.contains("/library/core/src/")
        || text.contains("/library/alloc/src/")
}

/// True for memassert's own sources (the tracker is never a site).
pub(crate) fn is_memassert_path(path: &Path) -> bool {
    path.starts_with(env!("CARGO_MANIFEST_DIR"))
}

/// True for the `backtrace` crate's sources (the stack capture).
pub(crate) fn is_backtrace_crate_path(path: &Path) -> bool {
    path.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|name| name.starts_with("backtrace-0."))
    })
}

/// True when a recorded path lies under the workspace root.
pub(crate) fn in_workspace(path: &Path) -> bool {
    workspace_root().is_some_and(|root| path.starts_with(root))
}

/// Where to read a displayed path from, for showing source lines.
pub(crate) fn readable_path(display: &str) -> Option<PathBuf> {
    let path = Path::new(display);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    Some(workspace_root()?.join(path))
}

fn slashes(path: &Path) -> String {
    let text = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        text.into_owned()
    } else {
        text.replace(std::path::MAIN_SEPARATOR, "/")
    }
}
