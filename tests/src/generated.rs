//! Regions of the docs that are generated from the code, and the check that keeps them so.
//!
//! A generated region sits between two marker lines:
//!
//! ```text
//! <!-- BEGIN GENERATED sidecar-metrics: edit the code, then GATEHOUSE_UPDATE_DOCS=1 cargo test -p gatehouse-tests --test doc_tables -->
//! | metric | … |
//! <!-- END GENERATED sidecar-metrics -->
//! ```
//!
//! [`check_region`] compares the region with what the code generates now. It fails with the
//! command that rewrites it, or rewrites it itself when `GATEHOUSE_UPDATE_DOCS=1` is set.

use std::path::Path;

use crate::process::workspace_root;

/// Set to `1` to rewrite generated regions instead of failing on a difference.
pub const UPDATE_VARIABLE: &str = "GATEHOUSE_UPDATE_DOCS";

/// Checks (or, with [`UPDATE_VARIABLE`] set, rewrites) the region `name` of the workspace file
/// `relative` against `generated`, the text between the markers (ends with a newline).
///
/// # Panics
///
/// When the file cannot be read or written, lacks the region's markers, or its region differs
/// from `generated` and rewriting was not asked for.
pub fn check_region(relative: &str, name: &str, generated: &str) {
    // Tests of one binary run in parallel and may rewrite regions of the same page: one at a
    // time, and each write replaces the file whole (rename), so no reader sees half of it.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = workspace_root().join(relative);
    let text = read(&path);
    let (start, end) = region_bounds(&text, name)
        .unwrap_or_else(|problem| panic!("{relative}: generated region `{name}`: {problem}"));
    if &text[start..end] == generated {
        return;
    }
    if std::env::var(UPDATE_VARIABLE).as_deref() == Ok("1") {
        let updated = format!("{}{generated}{}", &text[..start], &text[end..]);
        let fresh = path.with_extension("md.generating");
        std::fs::write(&fresh, updated)
            .and_then(|()| std::fs::rename(&fresh, &path))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    panic!(
        "{relative}: the generated region `{name}` differs from what the code generates now.\n\
         Rewrite it with: {UPDATE_VARIABLE}=1 cargo test -p gatehouse-tests --test <this test>\n\
         --- in the file ---\n{}--- generated ---\n{generated}",
        &text[start..end]
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Byte range of the region's content: from after the BEGIN marker's line to the END marker.
fn region_bounds(text: &str, name: &str) -> Result<(usize, usize), String> {
    let begin = format!("<!-- BEGIN GENERATED {name}:");
    let end = format!("<!-- END GENERATED {name} -->");
    let at = text
        .find(&begin)
        .ok_or_else(|| format!("no line starting `{begin}`"))?;
    let start = text[at..]
        .find('\n')
        .map(|n| at + n + 1)
        .ok_or("the BEGIN marker is the last line")?;
    let stop = text[start..]
        .find(&end)
        .map(|n| start + n)
        .ok_or_else(|| format!("no `{end}` after the BEGIN marker"))?;
    if text[stop + end.len()..].contains(&begin) {
        return Err("the region appears twice".into());
    }
    Ok((start, stop))
}

#[cfg(test)]
mod tests {
    use super::region_bounds;

    #[test]
    fn a_region_is_found_between_its_markers_only() {
        let text = "a\n<!-- BEGIN GENERATED t: x -->\n| row |\n<!-- END GENERATED t -->\nb\n";
        let (start, end) = region_bounds(text, "t").expect("the region is found");
        assert_eq!(&text[start..end], "| row |\n");
        assert!(region_bounds(text, "other").is_err());
        let twice = format!("{text}{text}");
        assert!(region_bounds(&twice, "t").is_err());
        assert!(region_bounds("<!-- BEGIN GENERATED t: x -->\nno end\n", "t").is_err());
    }
}
