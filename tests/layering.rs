//! Keeps `memassert/src` layered: no import circles between modules, and no
//! folder importing a folder ranked above it.
//!
//! Reads every `.rs` file under `memassert/src`, collects its references to
//! `crate::...` (in `use` items, `use crate::{a, b::c}` groups and inline
//! paths), `self::...` and `super::...`, maps each to the module that
//! defines it, and checks the module graph. Comments (so intra-doc links)
//! and string literals are not references; `$crate::...` in macro bodies is
//! not either (those expand in the user's crate, through the public
//! surface in `lib.rs`).
//!
//! When you add a folder (or a module at the crate root), give it a rank in
//! [`LAYERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may use its own layer and those
/// listed before it, never one listed after it. Each entry is the first
/// segment of a module path under `crate` (a folder under `memassert/src`,
/// or a module file at its root). `lib.rs` (the crate root) is above all.
const LAYERS: &[&[&str]] = &[
    // Leaf utilities: import nothing from the crate.
    &["base", "size"],
    // Raw stacks: walkers, stack bounds, loaded objects, the stack table.
    &["capture"],
    // Addresses to frames; Frame/Traceback; paths; site patterns.
    &["symbols"],
    // The GlobalAlloc hot path: tracker, recording, live table, scope slots.
    &["alloc"],
    // The tracemalloc mirror: start/stop, Snapshot, statistics, Filter.
    &["tracemalloc"],
    // Report and its text, insta snapshots, exports.
    &["reports"],
    // Scope / track.
    &["scope"],
    // What #[track_alloc] expands to.
    &["test_support"],
];

#[test]
fn memassert_src_is_layered() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../memassert/src");
    let files = read_sources(&src);
    assert!(
        files.len() > 20 && files.iter().any(|(m, _)| m.is_empty()),
        "found only {} source files under {} (and lib.rs?)",
        files.len(),
        src.display()
    );
    let graph = module_graph(&files);
    assert!(
        graph.values().map(BTreeMap::len).sum::<usize>() > 50,
        "suspiciously few module dependencies found: {graph:?}"
    );
    let problems = check(&graph);
    if std::env::var_os("LAYERING_PRINT").is_some() {
        for (from, edges) in &graph {
            let to: Vec<&str> = edges.keys().map(String::as_str).collect();
            println!("{from:?} -> {}", to.join(", "));
        }
    }
    assert!(
        problems.is_empty(),
        "memassert/src is not layered:\n{}",
        problems.join("\n")
    );
}

/// The checker on made-up sources: it must see an upward import, a cycle
/// inside one layer, a group import, `super::` and an unranked folder.
#[test]
fn the_check_catches_upward_imports_and_cycles() {
    let files = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut files = vec![
            (String::new(), "mod base; mod capture;".to_string()),
            ("base".to_string(), "pub(crate) mod a;".to_string()),
            ("base::a".to_string(), "pub(crate) fn f() {}".to_string()),
            ("capture".to_string(), "pub(crate) mod b;".to_string()),
            (
                "capture::b".to_string(),
                "use crate::base::a; // crate::alloc::x in a comment\n\
                 fn g() { a::f(); let _ = \"crate::alloc::y\"; }"
                    .to_string(),
            ),
        ];
        for (m, s) in extra {
            files.push((m.to_string(), s.to_string()));
        }
        files
    };
    let problems = |extra: &[(&str, &str)]| check(&module_graph(&files(extra)));

    assert_eq!(problems(&[]), Vec::<String>::new());
    // Upward, in a group.
    let found = problems(&[("base::c", "use crate::{base::a, capture::b::{self, g}};")]);
    assert!(
        found.len() == 1 && found[0].contains("base::c -> capture::b"),
        "{found:?}"
    );
    // Upward, inline and through `super::`.
    let found = problems(&[("base::c", "fn h() { super::super::capture::b::g() }")]);
    assert!(
        found.len() == 1 && found[0].contains("base::c -> capture::b"),
        "{found:?}"
    );
    // A cycle inside one layer.
    let found = problems(&[
        ("capture::c", "use crate::capture::d::X;"),
        ("capture::d", "fn k() { crate::capture::c::y(); }"),
    ]);
    assert!(
        found.len() == 1 && found[0].contains("capture::c -> capture::d -> capture::c"),
        "{found:?}"
    );
    // `use super::*` in a file's test module is the file itself.
    assert_eq!(
        problems(&[(
            "capture::c",
            "#[cfg(test)]\nmod tests {\n    use super::*;\n}\nfn m() { self::m() }"
        )]),
        Vec::<String>::new()
    );
    // A folder without a rank.
    let found = problems(&[("gates", "use crate::base::a;")]);
    assert!(found.len() == 1 && found[0].contains("gates"), "{found:?}");
}

/// Every `.rs` file under `src`, as (module path, text): `lib.rs` is `""`,
/// `alloc/mod.rs` is `alloc`, `alloc/recording.rs` is `alloc::recording`.
fn read_sources(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap();
                let mut segments: Vec<String> = relative
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                let last = segments.pop().unwrap();
                let stem = last.trim_end_matches(".rs");
                if stem != "mod" && !(segments.is_empty() && stem == "lib") {
                    segments.push(stem.to_string());
                }
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((segments.join("::"), text));
            }
        }
    }
    out.sort();
    out
}

/// module -> (module it uses -> one path it was seen in).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The module graph of `files`: an edge for every reference to another
/// module (or to an item re-exported at the crate root, for the module
/// that defines it). References that resolve to nothing known are edges to
/// `?<path>`, which the check reports.
fn module_graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();
    // Items `lib.rs` re-exports (`pub use a::b::{X, Y}`): X -> a::b.
    let mut root_items: BTreeMap<String, String> = BTreeMap::new();
    if let Some((_, lib)) = files.iter().find(|(m, _)| m.is_empty()) {
        let code = strip(lib);
        for mut path in use_paths(&code) {
            if path.first().is_some_and(|s| s == "crate") {
                path.remove(0);
            }
            let module = longest_module(&modules, &path).filter(|m| !m.is_empty());
            if let (Some(module), Some(item)) = (module, path.last()) {
                root_items.insert(item.clone(), module.to_string());
            }
        }
    }
    let mut graph = Graph::new();
    for (module, text) in files {
        let edges = graph.entry(module.clone()).or_default();
        for path in references(&strip(text), module) {
            let target = longest_module(&modules, &path)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .or_else(|| path.first().and_then(|item| root_items.get(item).cloned()))
                .unwrap_or_else(|| {
                    if path.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", path.join("::"))
                    }
                });
            // The file's own inline modules (`mod tests`) are the file.
            if target == *module {
                continue;
            }
            edges.entry(target).or_insert_with(|| path.join("::"));
        }
    }
    graph
}

/// The longest prefix of `path` that is a module ("" for the crate root).
fn longest_module<'a>(modules: &BTreeSet<&'a str>, path: &[String]) -> Option<&'a str> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get(path[..n].join("::").as_str()).copied())
}

/// Upward imports, unranked folders, references to nothing known, and
/// cycles, one line each.
fn check(graph: &Graph) -> Vec<String> {
    let rank = |module: &str| -> Option<usize> {
        let top = module.split("::").next().unwrap_or("");
        LAYERS.iter().position(|layer| layer.contains(&top))
    };
    let mut problems = Vec::new();
    for (from, edges) in graph {
        if from.is_empty() {
            continue; // The crate root may use everything.
        }
        let Some(from_rank) = rank(from) else {
            problems.push(format!(
                "{from}: not in a layer; add its folder to LAYERS in tests/layering.rs"
            ));
            continue;
        };
        for (to, seen) in edges {
            if to.starts_with('?') {
                problems.push(format!(
                    "{from} -> {to}: does not resolve to a module (seen as crate::{seen})"
                ));
            } else if to.is_empty() {
                problems.push(format!(
                    "{from} -> crate root: only lib.rs may define what modules use (seen as crate::{seen})"
                ));
            } else if rank(to).is_some_and(|r| r > from_rank) {
                problems.push(format!(
                    "{from} -> {to}: an upward import (crate::{seen}); {} is ranked below {}",
                    from.split("::").next().unwrap(),
                    to.split("::").next().unwrap()
                ));
            }
        }
    }
    for cycle in cycles(graph) {
        problems.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    problems
}

/// One cycle per strongly connected component of more than one module
/// (Tarjan), each written from its smallest module back to it.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(BTreeMap::keys) {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.components.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    // Spell each component out as a cycle: breadth-first from its smallest
    // module back to itself, inside the component.
    let mut out = Vec::new();
    for component in t.components {
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let start = *members.iter().next().unwrap();
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(v) = queue.pop_front() {
            for w in graph[v].keys().map(String::as_str) {
                if w == start {
                    last = Some(v);
                    break 'search;
                }
                if members.contains(w) && !parent.contains_key(w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = vec![start.to_string()];
        let mut v = last.expect("a component has a cycle through each member");
        while v != start {
            path.push(v.to_string());
            v = parent[v];
        }
        path.push(start.to_string());
        path.reverse();
        out.push(path);
    }
    out
}

/// `text` with comments, string literals and character literals blanked
/// (newlines kept), so only code is left.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars[..i]
                .last()
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[j]);
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    blank(&mut out, c);
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), or a lifetime.
            if next == Some('\\') {
                i += 3; // The quote, the backslash and the escaped character.
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                out.push_str("' '");
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path that code in `module` refers to, from the crate root
/// (without `crate`).
fn references(code: &str, module: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let base: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    // Inline modules (`mod tests { ... }`) open at brace depths.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            depth += 1;
            i += 1;
            continue;
        }
        if c == '}' {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        if !is_ident(c) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == '$')) {
            i += 1;
            continue;
        }
        let word_end = (i..chars.len())
            .find(|&j| !is_ident(chars[j]))
            .unwrap_or(chars.len());
        let word: String = chars[i..word_end].iter().collect();
        if word == "mod" {
            let rest: String = chars[word_end..].iter().take(200).collect();
            let rest = rest.trim_start();
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if rest[name.len()..].trim_start().starts_with('{') {
                inline.push((name, depth));
            }
            i = word_end;
            continue;
        }
        let starts_path = matches!(word.as_str(), "crate" | "self" | "super")
            && chars[word_end..].starts_with(&[':', ':'])
            && !(i >= 2 && chars[i - 2] == ':' && chars[i - 1] == ':');
        if !starts_path {
            i = word_end;
            continue;
        }
        let here: Vec<String> = base
            .iter()
            .cloned()
            .chain(inline.iter().map(|(name, _)| name.clone()))
            .collect();
        let (trees, end) = parse_tree(&chars, i);
        out.extend(trees.iter().filter_map(|path| absolute(&here, path)));
        i = end;
    }
    out
}

/// Paths of `use` items in the crate root (`pub use a::b::{X, Y}`).
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word = i == 0 || !is_ident(chars[i - 1]);
        if at_word && chars[i..].starts_with(&['u', 's', 'e', ' ']) {
            let (trees, end) = parse_tree(&chars, i + 4);
            out.extend(trees);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Parses a path tree (`a::b`, `a::{b, c::{d, self}}`, `a::*`, `a as b`)
/// starting at `chars[start]`; returns its full paths and where it ends.
fn parse_tree(chars: &[char], start: usize) -> (Vec<Vec<String>>, usize) {
    let mut i = start;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut prefix: Vec<String> = Vec::new();
    loop {
        skip_ws(&mut i);
        if i < chars.len() && chars[i] == '{' {
            i += 1;
            let mut paths = Vec::new();
            loop {
                skip_ws(&mut i);
                if i >= chars.len() {
                    return (paths, i);
                }
                if chars[i] == '}' {
                    i += 1;
                    break;
                }
                if chars[i] == ',' {
                    i += 1;
                    continue;
                }
                let (inner, end) = parse_tree(chars, i);
                if end == i {
                    i += 1; // Not a path: step over it.
                    continue;
                }
                for p in inner {
                    let mut full = prefix.clone();
                    if p != ["self"] {
                        full.extend(p);
                    }
                    paths.push(full);
                }
                i = end;
            }
            return (paths, i);
        }
        if i < chars.len() && chars[i] == '*' {
            return (vec![prefix], i + 1);
        }
        let end = (i..chars.len())
            .find(|&j| !is_ident(chars[j]))
            .unwrap_or(chars.len());
        if end == i {
            return (
                if prefix.is_empty() {
                    vec![]
                } else {
                    vec![prefix]
                },
                i,
            );
        }
        prefix.push(chars[i..end].iter().collect());
        i = end;
        if chars[i..].starts_with(&[':', ':']) {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// `path` (starting with `crate`, `self` or `super`) from the crate root,
/// as seen from module `here`.
fn absolute(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => here.to_vec(),
        _ => return None,
    };
    let mut rest = path;
    if rest[0] == "crate" {
        rest = &rest[1..];
    }
    while let Some(first) = rest.first() {
        match first.as_str() {
            "self" => {}
            "super" => {
                out.pop()?;
            }
            _ => break,
        }
        rest = &rest[1..];
    }
    out.extend(rest.iter().cloned());
    Some(out)
}
