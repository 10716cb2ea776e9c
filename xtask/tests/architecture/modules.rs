//! A crate's module tree, followed from its root through `mod name;` declarations, and the paths
//! each module's non-test code names (`crate::…`, `super::…`, `self::…`, `use` groups expanded).
//!
//! Test code is left out: an item after `#[cfg(test)]` (a `mod tests { … }` block, a
//! `#[cfg(test)] mod foo_tests;` file with everything under it, a test-only `use` or function),
//! and a file whose first attribute is `#![cfg(test)]`. Inline `mod name { … }` blocks are folded
//! into their file: they are no node of their own, but `super::` and `self::` inside them resolve
//! as the compiler resolves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lexer::{Tok, Token, tokenize};

/// A module path below the crate root (`["bench", "scale"]`); the root is `[]`.
pub type ModPath = Vec<String>;

/// What a path starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// `crate::`
    Crate,
    /// `super::` this many times.
    Super(usize),
    /// `self::`
    SelfMod,
}

/// One path named by non-test code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub line: usize,
    pub anchor: Anchor,
    /// The segments after the anchor; a glob ends in `*`, `{self}` adds no segment.
    pub segments: Vec<String>,
    /// The inline `mod name { … }` blocks (names, outermost first) the path is written in.
    pub inline: Vec<String>,
}

impl Ref {
    /// The path as written, one `use` group member at a time: `crate::image::output`.
    pub fn text(&self) -> String {
        let anchor = match self.anchor {
            Anchor::Crate => "crate".to_owned(),
            Anchor::Super(n) => vec!["super"; n].join("::"),
            Anchor::SelfMod => "self".to_owned(),
        };
        std::iter::once(anchor)
            .chain(self.segments.iter().cloned())
            .collect::<Vec<_>>()
            .join("::")
    }
}

/// A file module: its path, its file (relative to the crate directory) and what it names.
#[derive(Debug, Clone)]
pub struct Module {
    pub path: ModPath,
    pub file: PathBuf,
    pub refs: Vec<Ref>,
}

/// One crate target's module tree: the root (`src/lib.rs`, `src/main.rs`, …) and every non-test
/// module under it.
#[derive(Debug, Clone)]
pub struct Tree {
    pub modules: BTreeMap<ModPath, Module>,
}

/// The crate roots among `files` (paths relative to the crate directory): the library, the main
/// binary and each `src/bin` binary.
pub fn crate_roots(files: &BTreeMap<PathBuf, String>) -> Vec<PathBuf> {
    files
        .keys()
        .filter(|f| {
            let s = f.to_string_lossy();
            s == "src/lib.rs"
                || s == "src/main.rs"
                || (f.parent() == Some(Path::new("src/bin")) && s.ends_with(".rs"))
                || (f.parent().and_then(Path::parent) == Some(Path::new("src/bin"))
                    && f.file_name().is_some_and(|n| n == "main.rs"))
        })
        .cloned()
        .collect()
}

/// The module tree from `root_file`; the errors say what could not be followed (a declared module
/// with no file, a `#[path]` module, unreadable source).
pub fn load_tree(files: &BTreeMap<PathBuf, String>, root_file: &Path) -> Result<Tree, Vec<String>> {
    let mut modules = BTreeMap::new();
    let mut errors = Vec::new();
    // (module path, file, whether the file is a crate root or a mod.rs)
    let mut pending = vec![(Vec::new(), root_file.to_path_buf(), true)];
    while let Some((path, file, owns_dir)) = pending.pop() {
        let Some(src) = files.get(&file) else {
            errors.push(format!("{}: no such file", file.display()));
            continue;
        };
        let scan = match scan(src) {
            Ok(scan) => scan,
            Err(e) => {
                errors.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        if scan.test_only {
            continue;
        }
        errors.extend(
            scan.errors
                .iter()
                .map(|e| format!("{}:{e}", file.display())),
        );
        // Where this module's `mod name;` files live.
        let dir = if owns_dir {
            file.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            file.with_extension("")
        };
        for (name, line) in &scan.children {
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(name).join("mod.rs");
            let child = [path.clone(), vec![name.clone()]].concat();
            match (files.contains_key(&flat), files.contains_key(&nested)) {
                (true, false) => pending.push((child, flat, false)),
                (false, true) => pending.push((child, nested, true)),
                (true, true) => errors.push(format!(
                    "{}:{line}: `mod {name};` has both {} and {}",
                    file.display(),
                    flat.display(),
                    nested.display()
                )),
                (false, false) => errors.push(format!(
                    "{}:{line}: `mod {name};` has neither {} nor {}",
                    file.display(),
                    flat.display(),
                    nested.display()
                )),
            }
        }
        modules.insert(
            path.clone(),
            Module {
                path,
                file,
                refs: scan.refs,
            },
        );
    }
    if errors.is_empty() {
        Ok(Tree { modules })
    } else {
        Err(errors)
    }
}

/// What one file declares and names.
#[derive(Debug, Default)]
pub struct Scan {
    /// `#![cfg(test)]`: the whole file is test code.
    pub test_only: bool,
    /// `mod name;` outside test code, with its line.
    pub children: Vec<(String, usize)>,
    pub refs: Vec<Ref>,
    /// `line: problem` for what the scan cannot follow.
    pub errors: Vec<String>,
}

/// Scans one file's source.
pub fn scan(src: &str) -> Result<Scan, String> {
    let toks = tokenize(src)?;
    let mut out = Scan::default();
    // Open braces: Some(name) for an inline module, None for any other block.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut test_attr = false;
    let mut path_attr = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_punct('#') {
            let inner = toks.get(i + 1).is_some_and(|t| t.is_punct('!'));
            let open = i + 1 + usize::from(inner);
            if toks.get(open).is_some_and(|t| t.is_punct('[')) {
                let close = matching(&toks, open)
                    .ok_or_else(|| format!("line {}: unterminated attribute", t.line))?;
                let attr = &toks[open + 1..close];
                if is_cfg_test(attr) {
                    if inner && stack.is_empty() {
                        out.test_only = true;
                        return Ok(out);
                    }
                    test_attr = !inner;
                }
                if !inner && attr.first().is_some_and(|t| t.is_ident("path")) {
                    path_attr = true;
                }
                i = close + 1;
                continue;
            }
        }
        if test_attr {
            i = skip_item(&toks, i);
            test_attr = false;
            path_attr = false;
            continue;
        }
        let next = toks.get(i + 1);
        if t.is_ident("mod")
            && let Some(Tok::Ident(child)) = next.map(|n| &n.tok)
        {
            match toks.get(i + 2) {
                Some(semi) if semi.is_punct(';') => {
                    if path_attr {
                        out.errors.push(format!(
                            "{}: `#[path]` on the non-test module `{child}` is not supported",
                            t.line
                        ));
                    } else if stack.iter().any(Option::is_some) {
                        out.errors.push(format!(
                            "{}: the file module `{child}` declared inside an inline module is \
                             not supported",
                            t.line
                        ));
                    } else {
                        out.children.push((child.clone(), t.line));
                    }
                    i += 3;
                }
                Some(brace) if brace.is_punct('{') => {
                    stack.push(Some(child.clone()));
                    i += 3;
                }
                _ => i += 1,
            }
            path_attr = false;
            continue;
        }
        match &t.tok {
            Tok::Punct('{') => stack.push(None),
            Tok::Punct('}') => {
                if stack.pop().is_none() {
                    return Err(format!("line {}: unbalanced `}}`", t.line));
                }
                path_attr = false;
            }
            Tok::Punct(';') => path_attr = false,
            Tok::Ident(kw) if next.is_some_and(|n| n.tok == Tok::PathSep) => {
                let anchor_start = i;
                let anchor = match kw.as_str() {
                    "crate" => {
                        i += 2;
                        Some(Anchor::Crate)
                    }
                    "self" => {
                        i += 2;
                        Some(Anchor::SelfMod)
                    }
                    "super" => {
                        let mut n = 0;
                        while toks.get(i).is_some_and(|t| t.is_ident("super"))
                            && toks.get(i + 1).is_some_and(|t| t.tok == Tok::PathSep)
                        {
                            n += 1;
                            i += 2;
                        }
                        Some(Anchor::Super(n))
                    }
                    _ => None,
                };
                if let Some(anchor) = anchor {
                    let (end, paths) = use_tree(&toks, i, Vec::new());
                    // `pub(in crate::a)` is a visibility, not a use.
                    let visibility = anchor_start >= 3
                        && toks[anchor_start - 1].is_ident("in")
                        && toks[anchor_start - 2].is_punct('(')
                        && toks[anchor_start - 3].is_ident("pub");
                    if !visibility {
                        let inline: Vec<String> = stack.iter().flatten().cloned().collect();
                        out.refs.extend(paths.into_iter().map(|segments| Ref {
                            line: t.line,
                            anchor: anchor.clone(),
                            segments,
                            inline: inline.clone(),
                        }));
                    }
                    i = end.max(i);
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !stack.is_empty() {
        return Err("unbalanced `{` (end of file inside a block)".into());
    }
    Ok(out)
}

/// Whether an attribute's tokens (between `#[` and `]`) are `cfg(test)` or `cfg(all(…, test, …))`.
fn is_cfg_test(attr: &[Token]) -> bool {
    let idents = |ts: &[Token]| -> Vec<String> {
        ts.iter()
            .map(|t| match &t.tok {
                Tok::Ident(s) => s.clone(),
                Tok::Punct(c) => c.to_string(),
                Tok::PathSep => "::".into(),
                Tok::Literal => "\"…\"".into(),
            })
            .collect()
    };
    let words = idents(attr);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["cfg", "(", "test", ")"] => true,
        ["cfg", "(", "all", "(", args @ .., ")", ")"] => {
            // Top-level arguments of `all`: `test` alone is one of them.
            let mut depth = 0;
            let mut arg: Vec<&str> = Vec::new();
            for w in args.iter().chain(std::iter::once(&",")) {
                match *w {
                    "(" => depth += 1,
                    ")" => depth -= 1,
                    "," if depth == 0 => {
                        if arg == ["test"] {
                            return true;
                        }
                        arg.clear();
                        continue;
                    }
                    _ => {}
                }
                arg.push(w);
            }
            false
        }
        _ => false,
    }
}

/// The index of the bracket closing the one at `open`.
fn matching(toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Past the item (or statement, field, variant) starting at `i`: through its `;`, or its first
/// `{ … }` block, or up to the `,` or closing bracket that ends it.
fn skip_item(toks: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
            }
            Tok::Punct('{') if depth == 0 => {
                return matching(toks, i).map_or(toks.len(), |close| close + 1);
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            Tok::Punct(',') if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The paths of a use tree (or an expression path) starting at `i`, each prefixed with `prefix`:
/// `a::{b, c::{self, D}, e::*}` is `a::b`, `a::c`, `a::c::D`, `a::e::*`. Returns the index
/// after it. A path in an expression ends where a segment is not followed by `::` (or `::` is
/// followed by `<`).
fn use_tree(toks: &[Token], mut i: usize, prefix: Vec<String>) -> (usize, Vec<Vec<String>>) {
    let mut segments = prefix;
    loop {
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(s)) => {
                if s != "self" {
                    segments.push(s.clone());
                }
                i += 1;
                if toks.get(i).is_some_and(|t| t.tok == Tok::PathSep) {
                    i += 1;
                    continue;
                }
                if toks.get(i).is_some_and(|t| t.is_ident("as")) {
                    i += 2;
                }
                return (i, vec![segments]);
            }
            Some(Tok::Punct('*')) => {
                segments.push("*".into());
                return (i + 1, vec![segments]);
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                let mut paths = Vec::new();
                while let Some(t) = toks.get(i) {
                    if t.is_punct('}') {
                        i += 1;
                        break;
                    }
                    let (end, more) = use_tree(toks, i, segments.clone());
                    paths.extend(more);
                    i = end;
                    match toks.get(i) {
                        Some(t) if t.is_punct(',') => i += 1,
                        Some(t) if t.is_punct('}') => {
                            i += 1;
                            break;
                        }
                        // Not a use group after all (malformed); stop here.
                        _ => break,
                    }
                }
                if paths.is_empty() {
                    paths.push(segments);
                }
                return (i, paths);
            }
            _ => return (i, vec![segments]),
        }
    }
}
