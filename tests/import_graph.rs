//! The import graph of `src/`, checked: which file names which other file (`use crate::…`,
//! `super::…`, `self::…`, a child module's name, and the same paths written inline), so that
//! the house stays as it was built (issue #19):
//!
//! - no circle between files (two or more files that reach each other);
//! - the libraries and the shared rooms import nothing of the application above them
//!   (`probe`, `serve`, `cli`, `jobs` and the other pipelines): the arrows only run down;
//! - no file name twice under `src/` but `mod.rs` and `tests.rs` (two `store.rs` were two
//!   ideas a reader could not tell apart).
//!
//! A file is a module (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`); a path names the longest
//! module it starts with. Comments, strings and character literals are skipped; inline
//! modules (`mod tests { … }`) count as their file. A file's `mod x;` declaration is not an
//! import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that import nothing above them: pure libraries and the rooms every pipeline shares.
const LOWER: [&str; 13] = [
    "verdict",
    "dns_audit",
    "reports",
    "diagnosis",
    "gmail",
    "status",
    "clock",
    "truncate",
    "outcome",
    "standing",
    "state",
    "imap",
    "metrics",
];

/// The application above them: pipelines, jobs, the daemon, the command line.
const UPPER: [&str; 6] = ["probe", "report_mailbox", "results", "jobs", "serve", "cli"];

type Module = Vec<String>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`; `src/lib.rs` → `[]`; `src/main.rs` (the
/// binary, which sees the library as `mailcanary::`) → `None`.
fn module_of(path: &Path) -> Option<Module> {
    let rel = path.strip_prefix(src()).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "main.rs" if parts.is_empty() => None,
        "lib.rs" if parts.is_empty() => Some(parts),
        "mod.rs" => Some(parts),
        other => {
            parts.push(other.trim_end_matches(".rs").to_string());
            Some(parts)
        }
    }
}

/// The text with comments, strings and character literals blanked out (lifetimes kept).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c[i] == 'r'
            && (i == 0 || !ident(c[i - 1]))
            && matches!(next, Some('#') | Some('"'))
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}'), else a lifetime or label.
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c[i]);
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

fn tokens(code: &str) -> Vec<Tok> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
            continue;
        }
        let tok = match ch {
            ':' if c.get(i + 1) == Some(&':') => {
                i += 1;
                Tok::Colons
            }
            '{' => Tok::Open,
            '}' => Tok::Close,
            ',' => Tok::Comma,
            ';' => Tok::Semi,
            '*' => Tok::Star,
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            _ => Tok::Other,
        };
        out.push(tok);
        i += 1;
    }
    out
}

/// Expands a `use` tree starting at `toks[*i]` into full paths (prefix included).
fn use_tree(toks: &[Tok], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *i += 1;
                if toks.get(*i) == Some(&Tok::Colons) {
                    *i += 1;
                    continue;
                }
                // `as alias`
                if let Some(Tok::Ident(a)) = toks.get(*i)
                    && a == "as"
                {
                    *i += 2;
                }
                out.push(path);
                return;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Close) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Comma) => *i += 1,
                        None => return,
                        _ => use_tree(toks, i, path.clone(), out),
                    }
                }
            }
            Some(Tok::Star) => {
                *i += 1;
                out.push(path);
                return;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Every path the file names that could be a module of ours, as written, with the number of
/// inline modules open where it was written (for `super`).
fn paths_of(code: &str) -> (Vec<(Vec<String>, usize)>, Vec<String>) {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut children = Vec::new();
    // Brace depths at which an inline `mod x {` opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => {
                depth += 1;
                i += 1;
            }
            Tok::Close => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let Some(Tok::Ident(name)) = toks.get(i + 1) {
                    match toks.get(i + 2) {
                        Some(Tok::Semi) => children.push(name.clone()),
                        Some(Tok::Open) => inline.push(depth + 1),
                        _ => {}
                    }
                }
                i += 2;
            }
            Tok::Ident(kw) if kw == "use" => {
                i += 1;
                let mut paths = Vec::new();
                use_tree(&toks, &mut i, Vec::new(), &mut paths);
                out.extend(paths.into_iter().map(|p| (p, inline.len())));
            }
            Tok::Ident(first) => {
                // An inline path: `a::b::c`, not preceded by `::` (then it is part of another).
                let after_colons = i > 0 && toks[i - 1] == Tok::Colons;
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Colons) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(s)) => {
                            path.push(s.clone());
                            j += 2;
                        }
                        _ => break,
                    }
                }
                if !after_colons && path.len() > 1 {
                    out.push((path, inline.len()));
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    (out, children)
}

/// The module a path names: the longest known module it starts with, resolved from `here`.
fn resolve(
    here: &Module,
    children: &[String],
    path: &[String],
    inline: usize,
    known: &BTreeSet<Module>,
) -> Option<Module> {
    let mut base: Module;
    let mut rest = path;
    match path.first()?.as_str() {
        "crate" => {
            base = Vec::new();
            rest = &path[1..];
        }
        "self" => {
            base = here.clone();
            rest = &path[1..];
        }
        "super" => {
            base = here.clone();
            let mut levels: usize = 0;
            while rest.first().is_some_and(|s| s == "super") {
                levels += 1;
                rest = &rest[1..];
            }
            // `super` inside an inline module first leaves the inline modules.
            let out_of_file = levels.saturating_sub(inline);
            for _ in 0..out_of_file {
                base.pop()?;
            }
        }
        first if children.iter().any(|c| c == first) => base = here.clone(),
        _ => return None,
    }
    let mut best = None;
    let mut m = base;
    if known.contains(&m) {
        best = Some(m.clone());
    }
    for seg in rest {
        m.push(seg.clone());
        if known.contains(&m) {
            best = Some(m.clone());
        } else {
            break;
        }
    }
    best
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// Every file's imports of other files.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: Vec<(Module, PathBuf)> = files
        .into_iter()
        .filter_map(|p| module_of(&p).map(|m| (m, p)))
        .collect();
    let known: BTreeSet<Module> = modules.iter().map(|(m, _)| m.clone()).collect();
    let mut graph = BTreeMap::new();
    for (m, p) in &modules {
        let text = std::fs::read_to_string(p).expect("read a source file");
        let (paths, children) = paths_of(&code_only(&text));
        let edges: BTreeSet<Module> = paths
            .iter()
            .filter_map(|(path, inline)| resolve(m, &children, path, *inline, &known))
            // A module's own file reaching into its children is the module tree itself (the
            // children are its parts), not an import between peers; the way back up counts.
            .filter(|to| !to.starts_with(m))
            .collect();
        graph.insert(m.clone(), edges);
    }
    graph
}

/// The strongly connected components with more than one file (Tarjan).
fn circles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        next: usize,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let Some((w, _)) = graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn top(m: &Module) -> &str {
    m.first().map(String::as_str).unwrap_or("crate")
}

#[test]
fn the_checker_sees_the_imports_it_must_see() {
    let graph = graph();
    assert!(graph.len() > 50, "too few files read: {}", graph.len());
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(edges > 100, "too few imports found: {edges}");
    let code = code_only(
        "use crate::a::{b::{self, C}, d as e};\n// use crate::z;\nlet s = \"crate::y\";\nfn f() { super::g::h(); x::y(); }\nmod x;\nmod tests { use super::*; }",
    );
    let (paths, children) = paths_of(&code);
    let written: Vec<String> = paths.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(
        written,
        [
            "crate::a::b::self",
            "crate::a::b::C",
            "crate::a::d",
            "super::g::h",
            "x::y",
            "super"
        ]
    );
    assert_eq!(children, ["x"]);
    // `super` in an inline test module is its own file.
    assert_eq!(paths[5].1, 1);
    // A circle of two files is found, a file that only imports them is not part of it.
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    let small: BTreeMap<Module, BTreeSet<Module>> = [
        (m("a"), BTreeSet::from([m("b")])),
        (m("b"), BTreeSet::from([m("a")])),
        (m("c"), BTreeSet::from([m("a")])),
    ]
    .into_iter()
    .collect();
    assert_eq!(circles(&small), [vec![m("a"), m("b")]]);
}

#[test]
fn no_circle_between_files() {
    let found = circles(&graph());
    let text: Vec<String> = found
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" ↔ "))
        .collect();
    assert!(
        found.is_empty(),
        "files that import each other:\n{}",
        text.join("\n")
    );
}

#[test]
fn libraries_and_shared_rooms_import_nothing_above_them() {
    let mut wrong = Vec::new();
    for (from, to) in graph() {
        if !LOWER.contains(&top(&from)) {
            continue;
        }
        for t in to {
            if UPPER.contains(&top(&t)) {
                wrong.push(format!("{} → {}", name(&from), name(&t)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run back up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_file_name_twice() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &files {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = p.strip_prefix(src()).unwrap_or(p).display().to_string();
        seen.entry(name).or_default().push(rel);
    }
    let twice: Vec<String> = seen
        .into_iter()
        .filter(|(name, paths)| paths.len() > 1 && name != "mod.rs" && name != "tests.rs")
        .map(|(_, paths)| paths.join(", "))
        .collect();
    assert!(
        twice.is_empty(),
        "file names used twice:\n{}",
        twice.join("\n")
    );
}

/// `cargo test --test import_graph -- --ignored --nocapture print_graph`: every arrow.
#[test]
#[ignore]
fn print_graph() {
    for (from, to) in graph() {
        for t in to {
            println!("{} -> {}", name(&from), name(&t));
        }
    }
}
