//! Every `gatehouse-operator` and `gatehouse-sidecar` command the docs show runs, as written, with
//! the binaries this checkout builds: a renamed flag or subcommand, or an example that stopped
//! rendering, fails the suite.
//!
//! Commands are taken from the shell code blocks and the inline code of `README.md`, `docs/`,
//! `examples/README.md` and `tests/README.md`: any segment (between `&&`, `;`, `|`) whose first
//! word is one of the binaries (also as `cargo run -p gatehouse-operator -- …` or after `exec`).
//! Each runs from the workspace root and must exit 0, or 1 when its comment says `exit 1`. Those
//! that would start a server (`gatehouse-operator run`, `gatehouse-sidecar` without
//! `--check-config`), hold a `<placeholder>`, or are only named in prose (`gatehouse-operator
//! user-name`) run with `--help` appended, so clap still checks the subcommand and every flag
//! they name. `crdgen` writes to a temporary directory, compared with `crds/manifests/`.
//! A `user-name` command followed by a `# <name>` comment line must print that name.

use std::path::Path;
use std::process::Command;

use gatehouse_tests::markdown::{
    self, code_blocks, doc_files, inline_code, prose_lines, segments, shell_words, split_comment,
};
use gatehouse_tests::process::{cargo_binary, random_key_b64, workspace_root};

const BINARIES: [&str; 2] = ["gatehouse-operator", "gatehouse-sidecar"];

/// One command found in the docs.
#[derive(Debug)]
struct DocCommand {
    /// `file:line`, for messages.
    at: String,
    /// The binary's name and its arguments.
    argv: Vec<String>,
    /// The comment after it on the same line, if any.
    comment: String,
    /// The comment line after it in the same code block, if any.
    next_comment: Option<String>,
    /// Named in prose without arguments (`gatehouse-operator user-name`): only checked to exist.
    mention: bool,
}

/// The command of one segment of a shell line, if it runs one of the binaries.
fn command_of(segment: &str) -> Option<Vec<String>> {
    let mut words = shell_words(segment);
    while words
        .first()
        .is_some_and(|w| w == "$" || w == "exec" || w.contains('='))
    {
        words.remove(0);
    }
    if words.len() >= 4 && words[..3] == ["cargo", "run", "-p"] {
        let binary = words[3].clone();
        let rest = words.iter().position(|w| w == "--").map(|i| i + 1)?;
        let mut argv = vec![binary];
        argv.extend(words[rest..].iter().cloned());
        words = argv;
    }
    let name = Path::new(words.first()?).file_name()?.to_str()?.to_owned();
    BINARIES.contains(&name.as_str()).then(|| {
        words[0] = name;
        words
    })
}

fn commands_in(file: &Path) -> Vec<DocCommand> {
    let text = std::fs::read_to_string(file).expect("doc file");
    let shown = markdown::shown(file);
    let mut found = Vec::new();
    for block in code_blocks(&text).iter().filter(|b| b.is_shell()) {
        for command in block.commands() {
            let (code, comment) = split_comment(&command.text);
            let next_comment = command
                .next
                .as_deref()
                .and_then(|l| l.trim_start().strip_prefix("# "))
                .map(str::to_owned);
            for segment in segments(code) {
                if let Some(argv) = command_of(segment) {
                    found.push(DocCommand {
                        at: format!("{shown}:{}", command.line),
                        argv,
                        comment: comment.to_owned(),
                        next_comment: next_comment.clone(),
                        mention: false,
                    });
                }
            }
        }
    }
    // Inline code spans in prose.
    for (number, line) in prose_lines(&text) {
        for span in inline_code(line) {
            if let Some(argv) = command_of(span) {
                found.push(DocCommand {
                    at: format!("{shown}:{number}"),
                    mention: argv.len() <= 2,
                    argv,
                    comment: String::new(),
                    next_comment: None,
                });
            }
        }
    }
    found
}

/// A valid sidecar environment (no IdP is contacted by `--check-config`).
fn sidecar_env(command: &mut Command) {
    let key = random_key_b64().expect("key");
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GATEHOUSE_PUBLIC_URL", "http://127.0.0.1:4180")
        .env("GATEHOUSE_COOKIE_SECRET", key)
        .env("OKTA_CLIENT_ID", "doc-client")
        .env("OKTA_CLIENT_SECRET", "doc-secret-value")
        .env("OKTA_ISSUER", "http://127.0.0.1:9/")
        .env("OKTA_ORG_ID", "docs");
}

fn run(doc: &DocCommand, scratch: &Path) {
    let mut argv = doc.argv.clone();
    let placeholder = argv
        .iter()
        .any(|a| a.contains('<') || a.contains('…') || a.contains("..."));
    let serves = match argv[0].as_str() {
        "gatehouse-sidecar" => !argv.iter().any(|a| a == "--check-config"),
        _ => argv.get(1).is_some_and(|s| s == "run"),
    };
    let help = placeholder || serves || doc.mention;
    if help {
        argv.push("--help".into());
    }
    if argv.get(1).is_some_and(|s| s == "crdgen") && !argv.iter().any(|a| a == "--out") {
        argv.push("--out".into());
        argv.push(scratch.join("crds").display().to_string());
    }
    let binary = cargo_binary(&argv[0]).expect("the binaries are built with the tests");
    let mut command = Command::new(&binary);
    command.args(&argv[1..]).current_dir(workspace_root());
    if argv[0] == "gatehouse-sidecar" {
        sidecar_env(&mut command);
    }
    let output = command.output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = if doc.comment.contains("exit 1") && !help {
        1
    } else {
        0
    };
    assert_eq!(
        output.status.code(),
        Some(expected),
        "{}: `{}` exited {:?}, expected {expected}\nstdout: {stdout}\nstderr: {stderr}",
        doc.at,
        argv.join(" "),
        output.status.code()
    );
    if expected == 1 {
        // One line per problem, each naming the file it is about.
        assert!(
            stderr
                .lines()
                .all(|l| l.contains(".yaml") || l.contains(".yml")),
            "{}: {stderr}",
            doc.at
        );
    }
    if argv.get(1).is_some_and(|s| s == "user-name")
        && let Some(name) = &doc.next_comment
    {
        assert_eq!(stdout.trim(), name.trim(), "{}: the name shown", doc.at);
    }
    if argv.get(1).is_some_and(|s| s == "crdgen") && !help {
        for (file, yaml) in gatehouse_crds::crd_manifests() {
            let written = std::fs::read_to_string(scratch.join("crds").join(file))
                .expect("crdgen wrote the file");
            assert_eq!(written, yaml, "{}: {file}", doc.at);
        }
    }
}

#[test]
fn every_command_the_docs_show_runs() {
    let scratch =
        std::env::temp_dir().join(format!("gatehouse-doc-commands-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let commands: Vec<DocCommand> = doc_files().iter().flat_map(|f| commands_in(f)).collect();
    let subcommands: std::collections::BTreeSet<String> = commands
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.argv[0],
                c.argv.get(1).cloned().unwrap_or_default()
            )
        })
        .collect();
    eprintln!(
        "running {} documented commands: {subcommands:?}",
        commands.len()
    );
    for expected in [
        "gatehouse-operator render",
        "gatehouse-operator crdgen",
        "gatehouse-operator user-name",
        "gatehouse-sidecar --check-config",
    ] {
        assert!(
            subcommands.contains(expected),
            "the docs no longer show `{expected}` (or the scanner missed it): {subcommands:?}"
        );
    }
    for command in &commands {
        run(command, &scratch);
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_scanner_reads_commands_as_a_shell_would() {
    assert_eq!(
        command_of(" cargo run -p gatehouse-operator -- render -f examples/okta.yaml "),
        Some(vec![
            "gatehouse-operator".into(),
            "render".into(),
            "-f".into(),
            "examples/okta.yaml".into()
        ])
    );
    assert_eq!(
        command_of("exec gatehouse-sidecar"),
        Some(vec!["gatehouse-sidecar".into()])
    );
    assert_eq!(
        command_of("kubectl -n gatehouse-system logs deploy/gatehouse-operator"),
        None
    );
    assert_eq!(
        split_comment("gatehouse-operator render -f 'a #b'   # exit 1"),
        ("gatehouse-operator render -f 'a #b'   ", "exit 1")
    );
}
