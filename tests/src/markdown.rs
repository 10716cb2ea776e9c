//! The docs as the doc tests read them: which Markdown files, their fenced code blocks, the prose
//! between the blocks, and the shell commands in the blocks.
//!
//! A fence is a line whose first non-blank characters are three backticks (also indented, inside a
//! list item); the word after them is the block's language. Blocks without a language count as
//! shell, as the docs write commands that way too.

use std::path::{Path, PathBuf};

use crate::process::workspace_root;

/// The Markdown files the doc tests read: `README.md`, `examples/README.md`, `tests/README.md`
/// and every `docs/*.md`, in that order (docs sorted by name).
pub fn doc_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = vec![
        root.join("README.md"),
        root.join("examples/README.md"),
        root.join("tests/README.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files.retain(|f| f.is_file());
    files
}

/// `path` relative to the workspace root, for messages (`docs/install.md`).
pub fn shown(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// One fenced code block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeBlock {
    /// The word after the opening fence (`yaml`, `sh`), empty when there is none.
    pub lang: String,
    /// 1-based line number of the block's first content line.
    pub line: usize,
    /// The content lines, without the fences.
    pub lines: Vec<String>,
}

impl CodeBlock {
    /// The content, one line per line, ending with a newline.
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Whether the block holds shell commands (`sh`, `bash`, `shell`, `console` or no language).
    pub fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "bash" | "shell" | "console" | "")
    }

    /// The block's commands: continuation lines (ending in `\`) joined into one line.
    pub fn commands(&self) -> Vec<ShellLine> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < self.lines.len() {
            let first = i;
            let mut joined = self.lines[i].clone();
            i += 1;
            while joined.trim_end().ends_with('\\') && i < self.lines.len() {
                joined = format!(
                    "{} {}",
                    joined.trim_end().trim_end_matches('\\'),
                    self.lines[i]
                );
                i += 1;
            }
            found.push(ShellLine {
                line: self.line + first,
                text: joined,
                next: self.lines.get(i).cloned(),
            });
        }
        found
    }
}

/// One command line of a shell block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellLine {
    /// 1-based line number of its first line.
    pub line: usize,
    /// The command, continuation lines joined.
    pub text: String,
    /// The line after it in the block, if any.
    pub next: Option<String>,
}

/// The fenced code blocks of `text`. An unclosed block runs to the end.
pub fn code_blocks(text: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut open: Option<CodeBlock> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => {
                    open = Some(CodeBlock {
                        lang: lang.trim().to_owned(),
                        line: i + 2,
                        lines: Vec::new(),
                    })
                }
            }
            continue;
        }
        if let Some(block) = open.as_mut() {
            block.lines.push(line.to_owned());
        }
    }
    blocks.extend(open);
    blocks
}

/// The lines of `text` outside code blocks (fences excluded), with their 1-based numbers.
pub fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_block = false;
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            found.push((i + 1, line));
        }
    }
    found
}

/// The inline code spans of one line of prose.
pub fn inline_code(line: &str) -> impl Iterator<Item = &str> {
    line.split('`')
        .enumerate()
        .filter(|(n, _)| n % 2 == 1)
        .map(|(_, span)| span)
}

/// Splits a command line into words: whitespace separates, single and double quotes group.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Splits off a trailing `# comment` (outside quotes).
pub fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if i == 0 || line[..i].ends_with(' ') => {
                return (&line[..i], line[i + 1..].trim());
            }
            _ => {}
        }
    }
    (line, "")
}

/// The segments of a command line that run one command each (split at `&&`, `;` and `|`).
pub fn segments(code: &str) -> impl Iterator<Item = &str> {
    code.split("&&")
        .flat_map(|s| s.split(';'))
        .flat_map(|s| s.split('|'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# Title\n\nSome `a.b` prose.\n\n```yaml\nkey: 1\n```\n\n- item\n  ```sh\n  run \\\n    --flag   # note\n  next\n  ```\n";

    #[test]
    fn blocks_prose_and_commands_are_told_apart() {
        let blocks = code_blocks(PAGE);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].lang, "yaml");
        assert_eq!(blocks[0].line, 6);
        assert_eq!(blocks[0].text(), "key: 1\n");
        assert!(!blocks[0].is_shell() && blocks[1].is_shell());
        let commands = blocks[1].commands();
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].line, 11);
        assert_eq!(commands[0].text, "  run      --flag   # note");
        assert_eq!(commands[0].next.as_deref(), Some("  next"));
        assert_eq!(split_comment(&commands[0].text).1, "note");
        let prose: Vec<usize> = prose_lines(PAGE).iter().map(|(n, _)| *n).collect();
        assert_eq!(prose, vec![1, 2, 3, 4, 8, 9]);
        assert_eq!(
            inline_code("Some `a.b` and `c`.").collect::<Vec<_>>(),
            ["a.b", "c"]
        );
        assert_eq!(shell_words("a 'b c' \"d\""), ["a", "b c", "d"]);
        assert_eq!(segments("a && b; c | d").count(), 4);
    }
}
