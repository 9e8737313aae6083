//! Keeps the docs honest: every repository path a doc names must exist, and
//! every flag it shows on a command line must be one the binary accepts.
//!
//! Docs rot quietly. A file is moved, a flag renamed, and the README goes on
//! sending readers to something that is not there; nothing fails until a
//! person follows it. These checks make such a change fail `cargo test`
//! instead. They read the docs as plain text with a few simple rules (listed
//! on `check_paths` and `check_flags`) rather than parsing Markdown in full;
//! `the_checks_catch_a_wrong_path_and_a_wrong_flag` shows that the rules do
//! catch what they are meant to, so a green run is not a vacuous one.
//!
//! The accepted flags come from the binaries' own parsers
//! (`thread_pool_server::COMMAND`, `event_loop_server::COMMAND`,
//! `parallel_vs_async::compare::accepts_flag`), never from a list kept here.

use std::path::{Path, PathBuf};

/// A doc this test reads, relative to the repository root.
struct Doc {
    path: &'static str,
    /// A required doc that is missing fails the test; an optional one is
    /// skipped while it does not exist.
    required: bool,
}

/// The docs checked. All are required today; `required: false` lets a new
/// doc join the list before it is written.
const DOCS: &[Doc] = &[
    Doc {
        path: "README.md",
        required: true,
    },
    Doc {
        path: "docs/ARCHITECTURE.md",
        required: true,
    },
    Doc {
        path: "docs/PROTOCOL.md",
        required: true,
    },
    Doc {
        path: "docs/LESSON.md",
        required: true,
    },
    Doc {
        path: "docs/uk/LESSON.md",
        required: true,
    },
    Doc {
        path: "docs/RESULTS.md",
        required: true,
    },
];

/// File endings that make a backticked word look like a path even without
/// a `/` in it.
const PATH_EXTENSIONS: &[&str] = &[".rs", ".md", ".toml", ".txt", ".svg", ".sh", ".lock"];

/// The binaries whose flags the docs may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binary {
    ThreadPool,
    EventLoop,
    /// `cargo run --release`: the comparison in `src/compare.rs`.
    Compare,
}

impl Binary {
    fn name(self) -> &'static str {
        match self {
            Binary::ThreadPool => "thread_pool_server",
            Binary::EventLoop => "event_loop_server",
            Binary::Compare => "parallel_vs_async",
        }
    }

    fn from_name(name: &str) -> Option<Binary> {
        [Binary::ThreadPool, Binary::EventLoop, Binary::Compare]
            .into_iter()
            .find(|binary| binary.name() == name)
    }

    /// Asks the binary's own parser. `flag` is as written, `--name` or
    /// `--name=value`.
    fn accepts(self, flag: &str) -> bool {
        let name = flag.split('=').next().unwrap_or(flag);
        match self {
            Binary::ThreadPool => {
                server_accepts(&thread_pool_server::COMMAND.accepted_flags(), name)
            }
            Binary::EventLoop => server_accepts(&event_loop_server::COMMAND.accepted_flags(), name),
            Binary::Compare => parallel_vs_async::compare::accepts_flag(name),
        }
    }
}

/// The servers list their flags without the leading `--`.
fn server_accepts(accepted: &[&str], flag: &str) -> bool {
    flag.strip_prefix("--")
        .is_some_and(|name| accepted.contains(&name))
}

/// One piece of a doc the checks look at, with the line it starts on.
#[derive(Debug)]
struct Snippet {
    line: usize,
    text: String,
    kind: SnippetKind,
}

#[derive(Debug, PartialEq, Eq)]
enum SnippetKind {
    /// Text between single backticks (it may wrap onto the next line).
    InlineCode,
    /// One line of a fenced code block.
    CodeLine,
    /// The target of a Markdown link, `[text](target)`.
    LinkTarget,
}

/// Splits a doc into the snippets the checks read. Code blocks are fenced
/// with three backticks; inline code and links are looked for only outside
/// them, since a code block's backticks and brackets are literal text.
fn snippets(text: &str) -> Vec<Snippet> {
    let mut found = Vec::new();
    let mut in_block = false;
    // Prose is scanned a paragraph at a time, because inline code and link
    // text may wrap onto the next line. Each entry: (line number, text).
    let mut paragraph: Vec<(usize, &str)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim_start().starts_with("```") {
            scan_prose(&paragraph, &mut found);
            paragraph.clear();
            in_block = !in_block;
        } else if in_block {
            found.push(Snippet {
                line: number,
                text: line.to_string(),
                kind: SnippetKind::CodeLine,
            });
        } else if line.trim().is_empty() {
            scan_prose(&paragraph, &mut found);
            paragraph.clear();
        } else {
            paragraph.push((number, line));
        }
    }
    scan_prose(&paragraph, &mut found);
    found
}

/// Finds inline code and link targets in one paragraph.
fn scan_prose(paragraph: &[(usize, &str)], found: &mut Vec<Snippet>) {
    // The paragraph as one string, and the line each byte came from.
    let mut joined = String::new();
    let mut line_of = Vec::new();
    for &(number, line) in paragraph {
        joined.push_str(line);
        joined.push('\n');
        line_of.resize(joined.len(), number);
    }
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'`' {
            let Some(len) = joined[i + 1..].find('`') else {
                break; // an unmatched backtick: the rest is prose
            };
            found.push(Snippet {
                line: line_of[i],
                text: joined[i + 1..i + 1 + len].replace('\n', " "),
                kind: SnippetKind::InlineCode,
            });
            i += len + 2;
        } else if bytes[i..].starts_with(b"](") {
            let start = i + 2;
            let Some(len) = joined[start..].find(')') else {
                break;
            };
            found.push(Snippet {
                line: line_of[i],
                text: joined[start..start + len].trim().to_string(),
                kind: SnippetKind::LinkTarget,
            });
            i = start + len + 1;
        } else {
            i += 1;
        }
    }
}

/// A doc's problems, each as `doc:line: what is wrong`.
fn check_doc(root: &Path, doc: &str, text: &str) -> Vec<String> {
    let snippets = snippets(text);
    let mut problems = check_paths(root, doc, &snippets);
    problems.extend(check_flags(doc, &snippets));
    problems
}

/// Rule 1: every path a doc names exists.
///
/// - A link target is a path unless it is a URL or only an `#anchor`; it
///   resolves from the doc's folder, as a Markdown viewer resolves it.
/// - Inline code is a path when it is one word that contains a `/` or ends
///   in a known extension; it resolves from the repository root, which is
///   how the docs write paths in backticks.
/// - Not checked: absolute paths (`/proc/PID/status`), anything outside the
///   repository (`../shared/...` from the root), build outputs (`target/...`), and words
///   with placeholders or globs (`<`, `{`, `*`, `$`) or other characters a
///   repository path here never has (`:` as in `127.0.0.1:7878`).
/// - A `#anchor` or a `::item` after the path is ignored: only the file has
///   to exist.
fn check_paths(root: &Path, doc: &str, snippets: &[Snippet]) -> Vec<String> {
    let doc_dir = Path::new(doc).parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for snippet in snippets {
        let (candidate, base) = match snippet.kind {
            SnippetKind::LinkTarget => {
                let target = snippet.text.split_whitespace().next().unwrap_or("");
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                (target.split('#').next().unwrap_or(""), root.join(doc_dir))
            }
            SnippetKind::InlineCode => {
                let word = snippet.text.trim();
                let word = word.split("::").next().unwrap_or(word);
                let word = word.split('#').next().unwrap_or(word);
                if !looks_like_repo_path(word) {
                    continue;
                }
                (word, root.to_path_buf())
            }
            SnippetKind::CodeLine => continue,
        };
        if candidate.is_empty() || skipped_path(candidate) {
            continue;
        }
        // `../` is checked while it stays inside the repository (a lesson
        // in docs/uk/ links `../../event_loop_server/...`); past the root
        // (`../shared/` beside the clone) it is none of the docs' business.
        let Some(resolved) = inside(root, &base.join(candidate)) else {
            continue;
        };
        if !resolved.exists() {
            problems.push(format!(
                "{doc}:{}: names `{candidate}`, which does not exist (resolved from {})",
                snippet.line,
                display_base(root, &base),
            ));
        }
    }
    problems
}

fn looks_like_repo_path(word: &str) -> bool {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'));
    // "1000/0.05" is arithmetic, not a path.
    let has_letter = word.chars().any(|c| c.is_ascii_alphabetic());
    let pathy = word.contains('/') || PATH_EXTENSIONS.iter().any(|ext| word.ends_with(ext));
    plain && has_letter && pathy
}

fn skipped_path(path: &str) -> bool {
    path.starts_with('/') || path.starts_with("target/") || path.starts_with("./target/")
}

/// `path` with `.` and `..` resolved by their text, if it stays inside
/// `root`.
fn inside(root: &Path, path: &Path) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let rel = path.strip_prefix(root).ok()?;
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.iter().fold(root.to_path_buf(), |acc, p| acc.join(p)))
}

fn display_base(root: &Path, base: &Path) -> String {
    match base.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => "the repository root".to_string(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => base.display().to_string(),
    }
}

/// Rule 2: every flag shown on a command line is accepted by its binary.
///
/// A command is one line of a code block or one inline code span, cut at
/// `&&`, `||`, `;`, `|` and a `#` comment. It runs a binary when a word is
/// the binary's name (or a path ending in it), or when it is `cargo run`
/// (`-p NAME` or `--bin NAME` pick the binary; none picks the comparison).
/// The flags are the `--` words after the binary's name, or after the `--`
/// that ends cargo's own flags; with no such `--`, cargo is given no flags
/// for the binary, so there is nothing to check.
fn check_flags(doc: &str, snippets: &[Snippet]) -> Vec<String> {
    let mut problems = Vec::new();
    for snippet in snippets {
        if snippet.kind == SnippetKind::LinkTarget {
            continue;
        }
        let code = snippet.text.split(" #").next().unwrap_or("");
        for command in code.split(['|', ';', '&']) {
            let Some((binary, flags)) = invocation(command) else {
                continue;
            };
            for flag in flags {
                if !binary.accepts(flag) {
                    problems.push(format!(
                        "{doc}:{}: shows `{flag}` for {}, which does not accept it",
                        snippet.line,
                        binary.name()
                    ));
                }
            }
        }
    }
    problems
}

/// The binary a command runs and the flags it passes, if it runs one.
fn invocation(command: &str) -> Option<(Binary, Vec<&str>)> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if let Some(at) = words.windows(2).position(|pair| pair == ["cargo", "run"]) {
        let cargo_args = &words[at + 2..];
        let end = cargo_args.iter().position(|word| *word == "--");
        let own = &cargo_args[..end.unwrap_or(cargo_args.len())];
        let package = own
            .windows(2)
            .find(|pair| matches!(pair[0], "-p" | "--package" | "--bin"))
            .map(|pair| pair[1]);
        let binary = match package {
            None => Binary::Compare,
            Some(name) => Binary::from_name(name)?,
        };
        let flags = end.map_or_else(Vec::new, |end| flags_in(&cargo_args[end + 1..]));
        return Some((binary, flags));
    }
    words.iter().enumerate().find_map(|(at, word)| {
        let name = word.rsplit('/').next().unwrap_or(word);
        let binary = Binary::from_name(name)?;
        Some((binary, flags_in(&words[at + 1..])))
    })
}

/// The `--name` words of a command's arguments (`--` alone ends options).
fn flags_in<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter()
        .copied()
        .filter(|word| word.starts_with("--") && *word != "--")
        .collect()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docs_name_only_paths_that_exist_and_flags_the_binaries_accept() {
    let root = repo_root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let path = root.join(doc.path);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) if !doc.required && !path.exists() => continue,
            Err(e) => {
                problems.push(format!("{}: cannot be read: {e}", doc.path));
                continue;
            }
        };
        problems.extend(check_doc(&root, doc.path, &text));
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in the docs:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked >= 3, "the required docs were not all read");
}

#[test]
fn the_checks_catch_a_wrong_path_and_a_wrong_flag() {
    // A made-up doc in docs/, with one of each mistake among correct lines.
    let text = "\
# Sample

Read `shared/src/image.rs::splitmix64`, [the README](../README.md#flags)
and `shared/src/nowhere.rs`, then [a link](missing.md). Not paths:
`127.0.0.1:7878`, `/proc/PID/status`, `../shared/PROTOCOL.md`, `1000/0.05`.

```sh
cargo run --release -p event_loop_server -- --offload-workers 2 --frobnicate 3
target/release/thread_pool_server --workers=4 --queue 8   # fine
cargo run --release -- --quick --turbo
```

Inline: `thread_pool_server --addr 127.0.0.1:0
--no-such-flag`.
";
    let problems = check_doc(&repo_root(), "docs/SAMPLE.md", text);
    let expected = [
        "docs/SAMPLE.md:4: names `shared/src/nowhere.rs`",
        "docs/SAMPLE.md:4: names `missing.md`",
        "docs/SAMPLE.md:8: shows `--frobnicate` for event_loop_server",
        "docs/SAMPLE.md:10: shows `--turbo` for parallel_vs_async",
        "docs/SAMPLE.md:13: shows `--no-such-flag` for thread_pool_server",
    ];
    for want in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(want)),
            "expected a problem starting {want:?}, got {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[test]
fn every_binary_accepts_its_documented_help_flag() {
    // The flag lists come from the binaries; if one came back empty, every
    // flag check above would fail for the wrong reason, so say it plainly.
    for binary in [Binary::ThreadPool, Binary::EventLoop, Binary::Compare] {
        assert!(binary.accepts("--help"), "{}", binary.name());
        assert!(!binary.accepts("--surely-not-a-flag"), "{}", binary.name());
    }
    assert!(Binary::ThreadPool.accepts("--workers"));
    assert!(Binary::EventLoop.accepts("--max-connections"));
    assert!(!Binary::ThreadPool.accepts("--max-connections"));
}

/// GitHub's anchor for a heading: lower case, punctuation dropped except
/// `-` and `_`, spaces made `-`.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_live_pages_lesson_links_name_headings_that_exist() {
    let root = repo_root();
    let page = std::fs::read_to_string(root.join("shared/src/live/page.html")).expect("the page");
    let lesson = std::fs::read_to_string(root.join("docs/LESSON.md")).expect("the lesson");
    let anchors: Vec<String> = lesson
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor_of(heading.trim_start_matches('#')))
        .collect();
    let marker = "docs/LESSON.md#";
    let linked: Vec<&str> = page
        .match_indices(marker)
        .map(|(at, _)| {
            let rest = &page[at + marker.len()..];
            let end = rest.find(['"', '<', ' ']).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    assert!(
        linked.len() >= 4,
        "the page links each panel to the lesson: {linked:?}"
    );
    for anchor in linked {
        assert!(
            anchors.iter().any(|a| a == anchor),
            "the live page links docs/LESSON.md#{anchor}, a heading the lesson does not have"
        );
    }
    assert_eq!(
        anchor_of("Stage 3: a pool sized to the cores"),
        "stage-3-a-pool-sized-to-the-cores"
    );
    assert_eq!(anchor_of("Little's law"), "littles-law");
}
