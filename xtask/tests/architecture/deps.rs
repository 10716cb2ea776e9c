//! The direction of the sidecar crates' dependencies on each other, read from their manifests
//! (through `cargo metadata`, so renamed, dotted and workspace-inherited dependencies read
//! right), and the runtime crates the auth crate must stay free of (`cargo tree`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The gatehouse crates each sidecar crate may depend on (normal and build dependencies;
/// dev-dependencies are test code and exempt).
pub const ALLOWED: [(&str, &[&str]); 4] = [
    ("gatehouse-auth", &["gatehouse-crds"]),
    ("gatehouse-directory", &["gatehouse-auth", "gatehouse-crds"]),
    ("gatehouse-proxy", &["gatehouse-auth"]),
    (
        "gatehouse-sidecar",
        &[
            "gatehouse-auth",
            "gatehouse-directory",
            "gatehouse-proxy",
            "gatehouse-crds",
        ],
    ),
];

/// Crates gatehouse-auth's normal dependency tree must not contain: the auth logic is plain
/// computation, with no runtime, no Kubernetes client and no HTTP stack.
pub const NOT_IN_AUTH: [&str; 5] = ["tokio", "kube", "kube-client", "hyper", "reqwest"];

/// One workspace package as `cargo metadata` describes it: name, manifest, and its gatehouse
/// dependencies that are not dev-dependencies (`name (kind)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub manifest: String,
    pub gatehouse_deps: Vec<(String, String)>,
}

/// The workspace's packages from `cargo metadata --no-deps` run in `root`.
pub fn workspace_packages(cargo: &Path, root: &Path) -> Result<Vec<Package>, String> {
    let out = run(Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root))?;
    let metadata: Value =
        serde_json::from_str(&out).map_err(|e| format!("parsing cargo metadata: {e}"))?;
    Ok(packages(&metadata))
}

/// The packages of a `cargo metadata` document.
pub fn packages(metadata: &Value) -> Vec<Package> {
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Package {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            manifest: p["manifest_path"].as_str().unwrap_or_default().to_owned(),
            gatehouse_deps: p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| {
                    let name = d["name"].as_str()?;
                    name.starts_with("gatehouse-").then(|| {
                        let kind = d["kind"].as_str().unwrap_or("normal");
                        (name.to_owned(), kind.to_owned())
                    })
                })
                .collect(),
        })
        .collect()
}

/// What breaks the direction: a dependency of `package` on a gatehouse crate it may not use.
pub fn direction_violations(package: &Package) -> Vec<String> {
    let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == package.name) else {
        return vec![format!(
            "{}: no dependency rule for this crate",
            package.name
        )];
    };
    package
        .gatehouse_deps
        .iter()
        .filter(|(dep, _)| !allowed.contains(&dep.as_str()))
        .map(|(dep, kind)| {
            format!(
                "{} ({}) depends on {dep} ({kind} dependency); it may depend only on {}",
                package.name,
                package.manifest,
                if allowed.is_empty() {
                    "no other gatehouse crate".to_owned()
                } else {
                    allowed.join(", ")
                }
            )
        })
        .collect()
}

/// The crates of [`NOT_IN_AUTH`] in a `cargo tree --prefix none` listing.
pub fn forbidden_in_tree(listing: &str) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    NOT_IN_AUTH
        .iter()
        .filter(|n| names.contains(*n))
        .map(|n| (*n).to_owned())
        .collect()
}

/// The way from the root of a `cargo tree --prefix depth` listing to the first `name` in it:
/// `["gatehouse-auth v0.1.0", "gatehouse-crds v0.1.0", "kube v4.2.0"]`.
pub fn way_to(listing: &str, name: &str) -> Option<Vec<String>> {
    let mut way: Vec<String> = Vec::new();
    for line in listing.lines() {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        let rest = &line[digits..];
        way.truncate(depth);
        way.push(rest.split(" (").next().unwrap_or(rest).to_owned());
        if rest.split_whitespace().next() == Some(name) {
            return Some(way);
        }
    }
    None
}

/// `cargo tree -p gatehouse-auth -e normal --prefix none` in `root` (offline, and `--locked` so
/// that a test never rewrites Cargo.lock): each crate of [`NOT_IN_AUTH`] in it, and the way it
/// comes in.
pub fn auth_runtime_violations(cargo: &Path, root: &Path) -> Result<Vec<String>, String> {
    let tree = |prefix: &str| {
        run(Command::new(cargo)
            .args([
                "tree",
                "-p",
                "gatehouse-auth",
                "-e",
                "normal",
                "--prefix",
                prefix,
            ])
            .args(["--offline", "--locked"])
            .current_dir(root))
    };
    let found = forbidden_in_tree(&tree("none")?);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let by_depth = tree("depth")?;
    Ok(found
        .iter()
        .map(|name| {
            let way = way_to(&by_depth, name)
                .map_or_else(|| "(not found again)".to_owned(), |w| w.join(" → "));
            format!(
                "gatehouse-auth's normal dependency tree contains {name} ({way}); it must hold \
                 none of {}",
                NOT_IN_AUTH.join(", ")
            )
        })
        .collect())
}

/// Runs `cmd`; its stdout, or its stderr as the error.
fn run(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("running {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
