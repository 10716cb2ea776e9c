//! The rules on a module tree.
//!
//! Each path non-test code names resolves to the module it reaches: the longest prefix of the
//! resolved path that is a file module of the tree (inline modules count as their file). Then:
//!
//! - **upward import**: that module is an ancestor of the one naming it (the crate root
//!   included): `crate::Name` with `Name` no module, `super::Name` with `Name` no sibling module,
//!   `super::super::Name`, `super::*`, `crate::a::Item` from inside `a`. A module may name its
//!   descendants, its siblings and their descendants, and anything outside its ancestors.
//! - **edges**: module A names module B (B not A itself and no ancestor of A). Every edge counts
//!   between the two children of the deepest module containing both A and B (the crate root for
//!   top-level modules), so a submodule's edges count for its ancestors; an edge from a module to
//!   its own descendant counts nowhere. A **cycle** among the children of any one module (the
//!   top-level modules being the children of the root) is a failure.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use crate::modules::{Anchor, ModPath, Tree};

/// Where a path was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: PathBuf,
    pub line: usize,
    /// The path as written (one `use` group member).
    pub path: String,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} `{}`", self.file.display(), self.line, self.path)
    }
}

/// Non-test code naming an item of an ancestor module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upward {
    pub site: Site,
    /// The module naming it.
    pub from: ModPath,
    /// The ancestor whose item it names.
    pub ancestor: ModPath,
}

/// A cycle among the children of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// Whose children: `[]` for the top-level modules.
    pub parent: ModPath,
    /// A shortest cycle through the first (by name) of the circle's members, as child names; the
    /// first is repeated at the end.
    pub cycle: Vec<String>,
    /// Where each step of `cycle` is named (one site per step).
    pub steps: Vec<Site>,
    /// Every child in the same circle (its strongly connected set), sorted.
    pub members: Vec<String>,
    /// Within the circle: each member and the members it names.
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

/// A path that does not resolve (`super` above the crate root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub site: Site,
}

/// What the rules found in one tree.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub upward: Vec<Upward>,
    pub cycles: Vec<Cycle>,
    pub unresolved: Vec<Unresolved>,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.upward.is_empty() && self.cycles.is_empty() && self.unresolved.is_empty()
    }
}

/// `crate::a::b`, or `crate` for the root.
pub fn display(path: &[String]) -> String {
    std::iter::once("crate")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

/// Applies the rules to `tree`.
pub fn check(tree: &Tree) -> Findings {
    let mut findings = Findings::default();
    // Edges between the children of one parent: parent → (from child, to child) → first site.
    let mut graphs: BTreeMap<ModPath, BTreeMap<(String, String), Site>> = BTreeMap::new();
    for module in tree.modules.values() {
        let from = &module.path;
        for r in &module.refs {
            let site = Site {
                file: module.file.clone(),
                line: r.line,
                path: r.text(),
            };
            // The module (or inline module) the path is written in.
            let here: Vec<String> = [from.clone(), r.inline.clone()].concat();
            let base = match r.anchor {
                Anchor::Crate => Vec::new(),
                Anchor::SelfMod => here,
                Anchor::Super(n) if n <= here.len() => here[..here.len() - n].to_vec(),
                Anchor::Super(_) => {
                    findings.unresolved.push(Unresolved { site });
                    continue;
                }
            };
            let full = [base, r.segments.clone()].concat();
            let target = (0..=full.len())
                .rev()
                .map(|k| full[..k].to_vec())
                .find(|prefix| tree.modules.contains_key(prefix))
                .unwrap_or_default();
            if &target == from {
                continue;
            }
            if from.starts_with(&target) {
                findings.upward.push(Upward {
                    site,
                    from: from.clone(),
                    ancestor: target,
                });
                continue;
            }
            if target.starts_with(from) {
                // Into its own subtree.
                continue;
            }
            let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
            let edge = (from[common].clone(), target[common].clone());
            graphs
                .entry(from[..common].to_vec())
                .or_default()
                .entry(edge)
                .or_insert(site);
        }
    }
    for (parent, edges) in &graphs {
        findings.cycles.extend(cycles(parent, edges));
    }
    findings
}

/// The circles (strongly connected sets of more than one child) of one parent's graph.
fn cycles(parent: &ModPath, edges: &BTreeMap<(String, String), Site>) -> Vec<Cycle> {
    let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().insert(to);
        next.entry(to).or_default();
    }
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue = vec![start];
        while let Some(n) = queue.pop() {
            for &m in &next[n] {
                if seen.insert(m.to_owned()) {
                    queue.push(m);
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&str, BTreeSet<String>> = next.keys().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &n in next.keys() {
        if done.contains(n) || !reachable[n].contains(n) {
            continue;
        }
        // n's circle: everything n reaches that reaches n.
        let members: Vec<String> = reachable[n]
            .iter()
            .filter(|m| reachable[m.as_str()].contains(n))
            .cloned()
            .collect();
        done.extend(members.iter().cloned());
        let first = members[0].as_str();
        let cycle = shortest_cycle(&next, first);
        let steps = cycle
            .windows(2)
            .map(|w| edges[&(w[0].clone(), w[1].clone())].clone())
            .collect();
        let inside: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        let edges = members
            .iter()
            .map(|m| {
                let to = next[m.as_str()]
                    .iter()
                    .filter(|t| inside.contains(*t))
                    .map(|t| (*t).to_owned())
                    .collect();
                (m.clone(), to)
            })
            .collect();
        out.push(Cycle {
            parent: parent.clone(),
            cycle,
            steps,
            members,
            edges,
        });
    }
    out
}

/// A shortest path from `start` back to itself (breadth first), `start` at both ends.
fn shortest_cycle(next: &BTreeMap<&str, BTreeSet<&str>>, start: &str) -> Vec<String> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for &m in &next[n] {
            if m == start {
                let mut path = vec![start.to_owned()];
                let mut at = n;
                while at != start {
                    path.push(at.to_owned());
                    at = came_from[at];
                }
                path.push(start.to_owned());
                path.reverse();
                return path;
            }
            if !came_from.contains_key(m) {
                came_from.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    vec![start.to_owned()]
}

/// The findings as a contributor reads them; `target` names the crate and its root file.
pub fn render(target: &str, findings: &Findings) -> String {
    let mut out = Vec::new();
    for c in &findings.cycles {
        let whose = if c.parent.is_empty() {
            "the top-level modules".to_owned()
        } else {
            format!("the children of `{}`", display(&c.parent))
        };
        out.push(format!(
            "{target}: module cycle among {whose}: {}",
            c.cycle.join(" → ")
        ));
        for (step, site) in c.cycle.windows(2).zip(&c.steps) {
            out.push(format!("    {} → {}: {site}", step[0], step[1]));
        }
        if c.members.len() > 2 {
            out.push(format!(
                "    the whole circle ({} modules, each reaching every other): {}",
                c.members.len(),
                c.members.join(", ")
            ));
            for (m, to) in &c.edges {
                out.push(format!(
                    "      {m} → {}",
                    to.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    for u in &findings.upward {
        let what = if u.ancestor.is_empty() {
            "the crate root".to_owned()
        } else {
            format!("its ancestor `{}`", display(&u.ancestor))
        };
        out.push(format!(
            "{target}: upward import in `{}`: {} names {what}",
            display(&u.from),
            u.site
        ));
    }
    for u in &findings.unresolved {
        out.push(format!("{target}: {} goes above the crate root", u.site));
    }
    out.join("\n")
}
