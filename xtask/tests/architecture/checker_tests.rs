//! The checker on small synthetic crates: what it must find, and what it must let pass.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::deps::{Package, direction_violations, forbidden_in_tree, packages, way_to};
use crate::modules::{load_tree, scan};
use crate::rules::{Findings, check, render};

/// A crate's files from (path, source) pairs.
fn files(pairs: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    pairs
        .iter()
        .map(|(path, src)| (PathBuf::from(path), (*src).to_owned()))
        .collect()
}

/// The findings for the library target of `pairs`.
fn findings(pairs: &[(&str, &str)]) -> Findings {
    let tree = load_tree(&files(pairs), "src/lib.rs".as_ref())
        .unwrap_or_else(|e| panic!("the synthetic tree loads: {e:?}"));
    check(&tree)
}

fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_cycle_between_two_top_level_modules_is_found() {
    let f = findings(&[
        ("src/lib.rs", "mod a;\nmod b;\n"),
        ("src/a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "src/b.rs",
            "pub struct B;\n\npub fn make() -> crate::a::A {\n    crate::a::A\n}\n",
        ),
    ]);
    assert_eq!(f.cycles.len(), 1, "{f:?}");
    let c = &f.cycles[0];
    assert!(c.parent.is_empty());
    assert_eq!(c.cycle, path(&["a", "b", "a"]));
    let text = render("demo (src/lib.rs)", &f);
    assert!(
        text.contains("demo (src/lib.rs): module cycle among the top-level modules: a → b → a"),
        "{text}"
    );
    assert!(text.contains("a → b: src/a.rs:1 `crate::b::B`"), "{text}");
    assert!(text.contains("b → a: src/b.rs:3 `crate::a::A`"), "{text}");
    assert!(f.upward.is_empty(), "{f:?}");

    // One direction only: no cycle.
    let f = findings(&[
        ("src/lib.rs", "mod a;\nmod b;\n"),
        ("src/a.rs", "use crate::b::B;\n"),
        ("src/b.rs", "pub struct B;\n"),
    ]);
    assert!(f.is_clean(), "{f:?}");
}

#[test]
fn a_submodule_edge_counts_for_its_top_level_ancestor() {
    let f = findings(&[
        ("src/lib.rs", "pub mod x;\npub mod y;\n"),
        ("src/x.rs", "mod inner;\npub struct X;\n"),
        ("src/x/inner.rs", "pub fn f(_: crate::y::Y) {}\n"),
        ("src/y.rs", "use crate::x::X;\npub struct Y(X);\n"),
    ]);
    assert_eq!(f.cycles.len(), 1, "{f:?}");
    assert!(f.cycles[0].parent.is_empty());
    assert_eq!(f.cycles[0].cycle, path(&["x", "y", "x"]));
    assert_eq!(f.cycles[0].steps[0].file, PathBuf::from("src/x/inner.rs"));
}

#[test]
fn a_cycle_among_the_children_of_one_parent_is_found() {
    let f = findings(&[
        ("src/lib.rs", "mod p;\n"),
        ("src/p/mod.rs", "mod b;\nmod c;\nmod d;\n"),
        ("src/p/b.rs", "use super::c::C;\npub struct B;\n"),
        ("src/p/c.rs", "use super::d::D;\npub struct C;\n"),
        ("src/p/d.rs", "use super::b::B;\npub struct D;\n"),
    ]);
    assert_eq!(f.cycles.len(), 1, "{f:?}");
    let c = &f.cycles[0];
    assert_eq!(c.parent, path(&["p"]));
    assert_eq!(c.cycle, path(&["b", "c", "d", "b"]));
    assert_eq!(c.members, path(&["b", "c", "d"]));
    let text = render("demo (src/lib.rs)", &f);
    assert!(
        text.contains("module cycle among the children of `crate::p`: b → c → d → b"),
        "{text}"
    );
    assert!(f.upward.is_empty(), "{f:?}");
}

#[test]
fn a_sibling_through_super_is_allowed() {
    let f = findings(&[
        ("src/lib.rs", "mod p;\n"),
        ("src/p.rs", "mod b;\nmod c;\n"),
        (
            "src/p/b.rs",
            "use super::c::C;\nuse super::c::{self, deeper::Z};\n",
        ),
        ("src/p/c.rs", "pub mod deeper;\npub struct C;\n"),
        ("src/p/c/deeper.rs", "pub struct Z;\n"),
    ]);
    assert!(f.is_clean(), "{f:?}");
}

#[test]
fn an_upward_super_item_is_found() {
    let f = findings(&[
        ("src/lib.rs", "mod p;\n"),
        ("src/p/mod.rs", "mod b;\npub struct Shared;\n"),
        (
            "src/p/b.rs",
            "// uses its parent's item\nuse super::Shared;\n",
        ),
    ]);
    assert_eq!(f.upward.len(), 1, "{f:?}");
    let u = &f.upward[0];
    assert_eq!(u.from, path(&["p", "b"]));
    assert_eq!(u.ancestor, path(&["p"]));
    assert_eq!((u.site.line, u.site.path.as_str()), (2, "super::Shared"));
    let text = render("demo (src/lib.rs)", &f);
    assert!(
        text.contains(
            "demo (src/lib.rs): upward import in `crate::p::b`: src/p/b.rs:2 `super::Shared` \
             names its ancestor `crate::p`"
        ),
        "{text}"
    );
}

#[test]
fn super_super_and_globs_of_ancestors_are_upward() {
    let f = findings(&[
        ("src/lib.rs", "mod p;\npub struct Root;\n"),
        ("src/p.rs", "mod b;\npub struct P;\n"),
        (
            "src/p/b.rs",
            "use super::super::Root;\nuse super::*;\nfn f() -> crate::p::P { todo!() }\n",
        ),
    ]);
    let found: Vec<(usize, Vec<String>)> = f
        .upward
        .iter()
        .map(|u| (u.site.line, u.ancestor.clone()))
        .collect();
    assert_eq!(
        found,
        vec![(1, path(&[])), (2, path(&["p"])), (3, path(&["p"]))]
    );
}

#[test]
fn a_crate_root_item_is_found_in_use_groups_and_expressions() {
    let f = findings(&[
        (
            "src/lib.rs",
            "mod a;\nmod b;\npub struct Root;\npub fn helper() {}\n",
        ),
        (
            "src/a.rs",
            "use crate::{b::B, Root};\n\nfn f() {\n    crate::helper();\n}\n",
        ),
        ("src/b.rs", "pub struct B;\n"),
    ]);
    let found: Vec<(usize, &str)> = f
        .upward
        .iter()
        .map(|u| (u.site.line, u.site.path.as_str()))
        .collect();
    assert_eq!(found, vec![(1, "crate::Root"), (4, "crate::helper")]);
    assert!(f.upward.iter().all(|u| u.ancestor.is_empty()));
    assert!(render("demo (src/lib.rs)", &f).contains("names the crate root"));
}

#[test]
fn test_code_is_exempt() {
    let test_only = [
        ("src/lib.rs", "mod a;\nmod b;\npub struct Root;\n"),
        (
            "src/a.rs",
            "pub struct A;\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::Root;\n    \
             use crate::b::B;\n}\n\n#[cfg(test)]\n#[path = \"a_extra.rs\"]\nmod extra;\n\n\
             #[cfg(test)]\nmod a_tests;\n",
        ),
        ("src/a/a_tests.rs", "use crate::Root;\nuse crate::b::B;\n"),
        ("src/a_extra.rs", "use crate::Root;\n"),
        (
            "src/b.rs",
            "pub struct B;\n\npub fn f(_: crate::a::A) {}\n\n#[cfg(all(test, unix))]\nfn g() { \
             let _ = crate::Root; }\n#[cfg(test)]\nuse crate::Root;\n",
        ),
    ];
    let f = findings(&test_only);
    assert!(f.is_clean(), "{f:?}");

    // The same code outside `#[cfg(test)]` is caught: an upward import and a cycle.
    let mut not_test = test_only;
    not_test[1].1 = "pub struct A;\n\nmod tests {\n    use crate::Root;\n    use crate::b::B;\n}\n";
    let f = findings(&not_test);
    assert_eq!(f.upward.len(), 1, "{f:?}");
    assert_eq!(f.cycles.len(), 1, "{f:?}");
}

#[test]
fn comments_and_string_literals_are_not_code() {
    let src = r####"//! See [`crate::Root`].
/// crate::Root
// crate::Root
/* crate::Root /* nested */ crate::Root */
const S: &str = "crate::Root \" crate::Root";
const R: &str = r#"crate::Root " crate::Root"#;
const B: &[u8] = br##"crate::Root "# crate::Root"##;
const Q: char = '"';
const E: char = '\'';
fn f<'a>(x: &'a str) -> &'a str { x }
fn real() -> crate::Root { todo!() }
"####;
    let f = findings(&[
        ("src/lib.rs", "mod a;\npub struct Root;\n"),
        ("src/a.rs", src),
    ]);
    let found: Vec<usize> = f.upward.iter().map(|u| u.site.line).collect();
    assert_eq!(found, vec![11], "{f:?}");
}

#[test]
fn inline_modules_fold_into_their_file() {
    let f = findings(&[
        ("src/lib.rs", "mod a;\npub struct Root;\n"),
        (
            "src/a.rs",
            "pub struct Thing;\nmod inner {\n    use super::Thing;\n    use self::deeper::X;\n    \
             mod deeper { pub struct X; }\n}\n",
        ),
    ]);
    assert!(f.is_clean(), "{f:?}");

    let f = findings(&[
        ("src/lib.rs", "mod a;\npub struct Root;\n"),
        ("src/a.rs", "mod inner {\n    use super::super::Root;\n}\n"),
    ]);
    assert_eq!(f.upward.len(), 1, "{f:?}");
    assert_eq!(f.upward[0].site.line, 2);
}

#[test]
fn visibility_paths_are_not_imports() {
    let f = findings(&[
        ("src/lib.rs", "mod p;\n"),
        ("src/p.rs", "mod b;\n"),
        (
            "src/p/b.rs",
            "pub(in crate::p) fn f() {}\npub(super) fn g() {}\npub(crate) fn h() {}\n",
        ),
    ]);
    assert!(f.is_clean(), "{f:?}");
}

#[test]
fn a_module_without_its_file_is_an_error() {
    let errors = load_tree(
        &files(&[
            ("src/lib.rs", "mod here;\nmod gone;\n"),
            ("src/here.rs", ""),
        ]),
        "src/lib.rs".as_ref(),
    )
    .expect_err("`gone` has no file");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("src/lib.rs:2: `mod gone;`"),
        "{errors:?}"
    );

    // `#[path]` on a module that is not test code is not followed: said, not skipped.
    let errors = load_tree(
        &files(&[
            ("src/lib.rs", "#[path = \"x.rs\"]\nmod y;\n"),
            ("src/x.rs", ""),
        ]),
        "src/lib.rs".as_ref(),
    )
    .expect_err("#[path] is not supported");
    assert!(errors[0].contains("`#[path]`"), "{errors:?}");
}

#[test]
fn every_crate_target_is_checked() {
    let sources = files(&[
        ("src/lib.rs", "mod a;\npub struct Root;\n"),
        ("src/a.rs", "use crate::Root;\n"),
        ("src/main.rs", "mod cli;\nfn main() {}\nstruct Args;\n"),
        ("src/cli.rs", "use crate::Args;\n"),
        ("src/bin/tool.rs", "fn main() {}\n"),
    ]);
    let problems = crate::check_sources("demo", &sources);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("demo (src/lib.rs): upward import"));
    assert!(problems[1].starts_with("demo (src/main.rs): upward import"));
}

#[test]
fn macro_crate_paths_and_raw_identifiers_are_read() {
    let s = scan(
        "macro_rules! m { () => { $crate::a::f() }; }\nfn r#type() { crate::b::r#match(); }\n",
    )
    .expect("scans");
    let texts: Vec<String> = s.refs.iter().map(|r| r.text()).collect();
    assert_eq!(texts, ["crate::a::f", "crate::b::match"]);
}

#[test]
fn dependency_direction_follows_the_table() {
    let pkg = |name: &str, deps: &[&str]| Package {
        name: name.into(),
        manifest: format!("/ws/{name}/Cargo.toml"),
        gatehouse_deps: deps
            .iter()
            .map(|d| ((*d).to_owned(), "normal".to_owned()))
            .collect(),
    };
    assert!(direction_violations(&pkg("gatehouse-auth", &["gatehouse-crds"])).is_empty());
    let v = direction_violations(&pkg("gatehouse-auth", &["gatehouse-sidecar"]));
    assert_eq!(v.len(), 1);
    assert!(
        v[0].contains(
            "gatehouse-auth (/ws/gatehouse-auth/Cargo.toml) depends on gatehouse-sidecar"
        ),
        "{v:?}"
    );
    assert!(
        direction_violations(&pkg(
            "gatehouse-directory",
            &["gatehouse-auth", "gatehouse-crds"]
        ))
        .is_empty()
    );
    assert_eq!(
        direction_violations(&pkg("gatehouse-directory", &["gatehouse-proxy"])).len(),
        1
    );
    assert!(direction_violations(&pkg("gatehouse-proxy", &[])).is_empty());
    assert_eq!(
        direction_violations(&pkg("gatehouse-proxy", &["gatehouse-crds"])).len(),
        1
    );
    assert!(
        direction_violations(&pkg(
            "gatehouse-sidecar",
            &["gatehouse-auth", "gatehouse-directory", "gatehouse-proxy"]
        ))
        .is_empty()
    );
    assert_eq!(
        direction_violations(&pkg("gatehouse-sidecar", &["gatehouse-operator"])).len(),
        1
    );
}

#[test]
fn metadata_reads_renamed_build_and_dev_dependencies() {
    let metadata = serde_json::json!({
        "packages": [{
            "name": "gatehouse-proxy",
            "manifest_path": "/ws/proxy/Cargo.toml",
            "dependencies": [
                { "name": "gatehouse-auth", "rename": "auth", "kind": null },
                { "name": "gatehouse-directory", "kind": "build" },
                { "name": "gatehouse-sidecar", "kind": "dev" },
                { "name": "http", "kind": null },
            ],
        }],
    });
    let p = packages(&metadata);
    assert_eq!(
        p[0].gatehouse_deps,
        vec![
            ("gatehouse-auth".to_owned(), "normal".to_owned()),
            ("gatehouse-directory".to_owned(), "build".to_owned()),
        ]
    );
    let v = direction_violations(&p[0]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("gatehouse-directory (build dependency)"),
        "{v:?}"
    );
}

#[test]
fn runtime_crates_are_found_in_a_tree_listing() {
    let listing = "gatehouse-auth v0.1.0 (/ws/auth)\nbase64 v0.22.1\nhyper-util v0.1.0\n\
                   tokio-util v0.7.0\ntokio v1.48.0\ntokio v1.48.0 (*)\nserde v1.0.0\n";
    assert_eq!(forbidden_in_tree(listing), ["tokio"]);
    assert!(forbidden_in_tree("gatehouse-auth v0.1.0 (/ws/auth)\nsha2 v0.10.0\n").is_empty());
}

#[test]
fn the_way_a_runtime_crate_comes_in_is_named() {
    let listing = "0gatehouse-auth v0.1.0 (/ws/auth)\n1base64 v0.22.1\n1gatehouse-crds v0.1.0 \
                   (/ws/crds)\n2kube v4.2.0\n3kube-client v4.2.0\n4tokio v1.48.0\n2serde v1.0.0\n";
    assert_eq!(
        way_to(listing, "tokio").expect("tokio is in it"),
        [
            "gatehouse-auth v0.1.0",
            "gatehouse-crds v0.1.0",
            "kube v4.2.0",
            "kube-client v4.2.0",
            "tokio v1.48.0"
        ]
    );
    assert_eq!(way_to(listing, "hyper"), None);
}
