//! The module shape of the workspace's crates, kept by test.
//!
//! For each checked crate target (library, main binary, `src/bin` binaries), the nodes are its
//! modules: the root file (`lib.rs`, `main.rs`) and each file module reached from it by `mod
//! name;` (`foo.rs`, `foo/mod.rs`, `foo/bar.rs`; inline `mod name { … }` blocks are folded into
//! their file). Non-test code naming `crate::b::…`, `super::…` or `self::…` makes an edge to the
//! module the path reaches. It fails on
//!
//! - a cycle among the top-level modules (a submodule's edges counting for its top-level
//!   ancestor), or among the children of any one module;
//! - an upward import: naming an item of the crate root (`crate::Name`, `Name` no module) or of
//!   an ancestor (`super::Name`, `Name` no sibling module; `super::super::Name`): a module may use
//!   its descendants and its siblings (and their descendants), never its ancestors.
//!
//! Test code is exempt: items after `#[cfg(test)]` (`mod tests { … }`, and `#[cfg(test)] mod
//! foo_tests;` files with everything under them). Comments and string literals are not code.
//! The rules in detail are in [`rules`] and [`modules`].
//!
//! The sidecar crates' manifests are checked for the direction of their dependencies on each other
//! ([`deps`]), and gatehouse-auth for staying free of the async runtime, the Kubernetes client and
//! the HTTP stack.

mod checker_tests;
mod deps;
mod lexer;
mod modules;
mod rules;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sidecar crates, by directory at the workspace root, and their package names. The first is
/// the sidecar itself, which must exist; the others are checked once they do.
const SIDECAR_CRATES: [(&str, &str); 4] = [
    ("sidecar", "gatehouse-sidecar"),
    ("auth", "gatehouse-auth"),
    ("directory", "gatehouse-directory"),
    ("proxy", "gatehouse-proxy"),
];

/// The workspace root: the parent of xtask's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

/// The cargo running this test (`CARGO`), else the one that built it.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from(env!("CARGO")), PathBuf::from)
}

/// Every `.rs` file under `dir/src`, by its path relative to `dir`.
fn read_sources(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(crate_dir: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(crate_dir, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                let relative = path
                    .strip_prefix(crate_dir)
                    .expect("under the crate directory")
                    .to_path_buf();
                out.insert(relative, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &dir.join("src"), &mut out);
    out
}

/// The module rules on every crate target in `files`; the problems, each naming `package` and
/// the target's root file.
fn check_sources(package: &str, files: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let roots = modules::crate_roots(files);
    if roots.is_empty() {
        return vec![format!(
            "{package}: no crate root (src/lib.rs, src/main.rs or src/bin/*.rs)"
        )];
    }
    let mut problems = Vec::new();
    for root in roots {
        let target = format!("{package} ({})", root.display());
        match modules::load_tree(files, &root) {
            Ok(tree) => {
                let findings = rules::check(&tree);
                if !findings.is_clean() {
                    problems.push(rules::render(&target, &findings));
                }
            }
            Err(errors) => problems.push(format!(
                "{target}: the module tree cannot be followed:\n    {}",
                errors.join("\n    ")
            )),
        }
    }
    problems
}

/// The module rules on the crate in `dir`.
fn check_crate_dir(package: &str, dir: &Path) -> Vec<String> {
    if !dir.join("src").is_dir() {
        return vec![format!("{package}: {} has no src/", dir.display())];
    }
    check_sources(package, &read_sources(dir))
}

#[test]
fn xtask_modules_have_no_cycles_and_no_upward_imports() {
    let problems = check_crate_dir("xtask", Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}

#[test]
fn sidecar_crates_modules_have_no_cycles_and_no_upward_imports() {
    let root = workspace_root();
    assert!(
        root.join("sidecar").is_dir(),
        "{} is missing: the sidecar crate is expected there (the architecture test checks it and \
         the crates split from it)",
        root.join("sidecar").display()
    );
    let mut problems = Vec::new();
    for (dir, package) in SIDECAR_CRATES {
        let dir = root.join(dir);
        if !dir.exists() {
            eprintln!(
                "architecture: {} does not exist (yet); {package} not checked",
                dir.display()
            );
            continue;
        }
        problems.extend(check_crate_dir(package, &dir));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}

#[test]
fn sidecar_crates_depend_in_one_direction() {
    let root = workspace_root();
    assert!(
        root.join("sidecar").is_dir(),
        "{} is missing: the sidecar crate is expected there",
        root.join("sidecar").display()
    );
    let packages = deps::workspace_packages(&cargo(), &root).unwrap_or_else(|e| panic!("{e}"));
    let mut problems = Vec::new();
    for (dir, name) in SIDECAR_CRATES {
        let dir = root.join(dir);
        if !dir.exists() {
            eprintln!(
                "architecture: {} does not exist (yet); {name}'s dependencies not checked",
                dir.display()
            );
            continue;
        }
        let manifest = dir.join("Cargo.toml");
        let same_file = |other: &Path| {
            other == manifest
                || matches!(
                    (std::fs::canonicalize(other), std::fs::canonicalize(&manifest)),
                    (Ok(a), Ok(b)) if a == b
                )
        };
        match packages.iter().find(|p| same_file(Path::new(&p.manifest))) {
            None => problems.push(format!(
                "{} exists but {} is no workspace package (missing, or not in the workspace's \
                 members)",
                dir.display(),
                manifest.display()
            )),
            Some(p) if p.name != name => problems.push(format!(
                "{} is package {}, expected {name}",
                manifest.display(),
                p.name
            )),
            Some(p) => problems.extend(deps::direction_violations(p)),
        }
    }
    if root.join("auth").exists() {
        match deps::auth_runtime_violations(&cargo(), &root) {
            Ok(found) => problems.extend(found),
            Err(e) => problems.push(format!("cannot list gatehouse-auth's dependency tree: {e}")),
        }
    } else {
        eprintln!(
            "architecture: WARNING: {} does not exist yet, so gatehouse-auth's dependency tree is \
             NOT checked for {}",
            root.join("auth").display(),
            deps::NOT_IN_AUTH.join(", ")
        );
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}
