//! Keeps the two lessons in step: `docs/LESSON.md` (English) and
//! `docs/uk/LESSON.md` (Ukrainian) teach the same stages with the same
//! commands and quote the same rows of `docs/RESULTS.md`.
//!
//! Translations drift one edit at a time: a command is fixed in one lesson
//! and not the other, a stage is added to one, a figure is re-quoted from a
//! fresh run in one only. Prose cannot be compared across two languages,
//! but three things can, and this test compares them:
//!
//! - **the commands**: the lines of shell and text code blocks that start
//!   with a shell command (`COMMAND_WORDS`), with a leading `$ ` and a
//!   trailing `# comment` (the only part a translation changes) removed;
//!   equal, in order;
//! - **the stages**: headings whose text starts `Stage N` / `Етап N`,
//!   numbered 1, 2, 3... in order in each, the same count in both (the
//!   heading levels may differ);
//! - **the figure sources**: the `<!-- figures: ... -->` comments that name
//!   the RESULTS rows beside each stage's figures; equal, in order.
//!
//! `the_rules_catch_drift` shows that each rule catches what it is meant to,
//! so a green run is not a vacuous one. `tests/docs.rs` checks the rest:
//! every path a lesson names exists and every flag it shows is accepted.

use std::path::PathBuf;

const ENGLISH: &str = "docs/LESSON.md";
const UKRAINIAN: &str = "docs/uk/LESSON.md";

/// First words that make a code line a command a reader types. `target/`
/// (a built binary run by path) is matched as a prefix.
const COMMAND_WORDS: &[&str] = &[
    "cargo", "nc", "curl", "printf", "node", "strace", "wrk", "grep", "cat", "ps", "kill",
    "ulimit", "time", "for", "awk", "pgrep", "sleep",
];

/// Code block info strings whose lines may be commands. Code in other
/// languages (`js`, `rust`) is illustration, and its comments are
/// translated.
const SHELL_BLOCKS: &[&str] = &["", "sh", "bash", "zsh", "shell", "console", "text"];

/// How each lesson spells the word that opens a stage heading.
const STAGE_WORDS: &[&str] = &["Stage", "Етап"];

/// A line of a lesson with its 1-based line number, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    number: usize,
    text: String,
}

/// What the test compares in one lesson.
#[derive(Debug)]
struct Outline {
    commands: Vec<Line>,
    /// Each stage heading's number as written, with its line.
    stages: Vec<(u32, Line)>,
    figure_sources: Vec<Line>,
}

/// Where a line stands in a Markdown file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Prose,
    /// Inside a fenced block whose lines may be commands.
    Shell,
    /// Inside a fenced block of another language.
    Other,
}

fn outline(text: &str) -> Outline {
    let mut outline = Outline {
        commands: Vec::new(),
        stages: Vec::new(),
        figure_sources: Vec::new(),
    };
    let mut block = Block::Prose;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if let Some(info) = line.strip_prefix("```") {
            block = match block {
                Block::Prose if SHELL_BLOCKS.contains(&info.trim()) => Block::Shell,
                Block::Prose => Block::Other,
                Block::Shell | Block::Other => Block::Prose,
            };
            continue;
        }
        match block {
            Block::Shell => {
                if let Some(command) = command(line) {
                    outline.commands.push(Line {
                        number,
                        text: command,
                    });
                }
            }
            Block::Other => {}
            Block::Prose => {
                if let Some(stage) = stage_number(line) {
                    outline.stages.push((stage, Line::new(number, line)));
                }
                if line.starts_with("<!-- figures:") {
                    outline.figure_sources.push(Line::new(number, line));
                }
            }
        }
    }
    outline
}

impl Line {
    fn new(number: usize, text: &str) -> Self {
        Line {
            number,
            text: text.to_string(),
        }
    }
}

/// The command a code line shows, without prompt or comment, if it is one.
fn command(line: &str) -> Option<String> {
    let line = line.strip_prefix("$ ").unwrap_or(line);
    let line = match line.find(" # ") {
        Some(at) => &line[..at],
        None => line.strip_suffix(" #").unwrap_or(line),
    };
    let line = line.trim();
    let first = line.trim_start_matches('(').split_whitespace().next()?;
    let is_command = COMMAND_WORDS.contains(&first) || first.starts_with("target/");
    is_command.then(|| line.to_string())
}

/// The number of a stage heading (`## Stage 4: ...`, `### Етап 4. ...`).
fn stage_number(line: &str) -> Option<u32> {
    let heading = line.strip_prefix('#')?.trim_start_matches('#');
    let heading = heading.strip_prefix(' ')?.trim_start();
    let rest = STAGE_WORDS
        .iter()
        .find_map(|word| heading.strip_prefix(word))?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Every way two outlines disagree, each one line for the failure message.
fn compare(english: &Outline, ukrainian: &Outline) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(compare_lists(
        "command",
        &english.commands,
        &ukrainian.commands,
    ));
    problems.extend(compare_lists(
        "figures comment",
        &english.figure_sources,
        &ukrainian.figure_sources,
    ));
    for (doc, stages) in [(ENGLISH, &english.stages), (UKRAINIAN, &ukrainian.stages)] {
        for (expected, (number, line)) in (1..).zip(stages.iter()) {
            if *number != expected {
                problems.push(format!(
                    "{doc}:{}: stage {number} where stage {expected} belongs: {}",
                    line.number, line.text
                ));
            }
        }
    }
    if english.stages.len() != ukrainian.stages.len() {
        problems.push(format!(
            "{ENGLISH} has {} stages, {UKRAINIAN} {}",
            english.stages.len(),
            ukrainian.stages.len()
        ));
    }
    problems
}

/// Equal lists, or where they first part and how long each is.
fn compare_lists(what: &str, english: &[Line], ukrainian: &[Line]) -> Vec<String> {
    let first_difference = english
        .iter()
        .zip(ukrainian)
        .position(|(en, uk)| en.text != uk.text);
    let mut problems = Vec::new();
    if let Some(at) = first_difference {
        let (en, uk) = (&english[at], &ukrainian[at]);
        problems.push(format!(
            "{what} {} differs:\n  {ENGLISH}:{}: {}\n  {UKRAINIAN}:{}: {}",
            at + 1,
            en.number,
            en.text,
            uk.number,
            uk.text
        ));
    }
    if english.len() != ukrainian.len() {
        let shorter = english.len().min(ukrainian.len());
        let extra = english
            .get(shorter)
            .map(|line| format!("{ENGLISH}:{}: {}", line.number, line.text))
            .or_else(|| {
                ukrainian
                    .get(shorter)
                    .map(|line| format!("{UKRAINIAN}:{}: {}", line.number, line.text))
            })
            .unwrap_or_default();
        problems.push(format!(
            "{ENGLISH} has {} {what}s, {UKRAINIAN} {}; the first unmatched: {extra}",
            english.len(),
            ukrainian.len()
        ));
    }
    problems
}

fn read(doc: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(doc);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: cannot be read: {e}"))
}

#[test]
fn the_two_lessons_show_the_same_commands_stages_and_figure_sources() {
    let english = outline(&read(ENGLISH));
    let ukrainian = outline(&read(UKRAINIAN));
    let problems = compare(&english, &ukrainian);
    assert!(
        problems.is_empty(),
        "the lessons have drifted apart:\n{}",
        problems.join("\n")
    );
    // A rule that found nothing would pass vacuously.
    assert!(english.commands.len() >= 20, "{:#?}", english.commands);
    assert!(english.stages.len() >= 6, "{:#?}", english.stages);
    assert!(!english.figure_sources.is_empty());
}

#[test]
fn the_rules_catch_drift() {
    let english = "\
## Stage 1: one at a time

```sh
$ cargo run --release -p thread_pool_server -- --workers 1   # the pool
```

```js
for (const x of y) {}   // illustration, not a command
```

<!-- figures: RESULTS.md, cpu -->
## Stage 2: a thread per connection

```text
$ time (printf 'PING\\nQUIT\\n' | nc 127.0.0.1 7878)
PONG
(for i in 1 2; do echo PING; done) | nc 127.0.0.1 7878
```
";
    // The same, translated: other comments, another heading level.
    let same = "\
### Етап 1. По одному

```sh
cargo run --release -p thread_pool_server -- --workers 1     # пул
```

```js
for (const x of y) {}   // ілюстрація, не команда
```

<!-- figures: RESULTS.md, cpu -->
### Етап 2. Потік на з'єднання

```text
$ time (printf 'PING\\nQUIT\\n' | nc 127.0.0.1 7878)
PONG
(for i in 1 2; do echo PING; done) | nc 127.0.0.1 7878
```
";
    let en = outline(english);
    assert_eq!(en.commands.len(), 3, "{:#?}", en.commands);
    assert_eq!(
        en.commands[0].text,
        "cargo run --release -p thread_pool_server -- --workers 1"
    );
    assert!(compare(&en, &outline(same)).is_empty());

    // Each kind of drift, alone, is caught.
    let drifts = [
        ("a changed flag", same.replace("--workers 1 ", "--workers 2 ")),
        (
            "commands in another order",
            same.replace(
                "$ time (printf 'PING\\nQUIT\\n' | nc 127.0.0.1 7878)\nPONG\n(for i in 1 2; do echo PING; done) | nc 127.0.0.1 7878",
                "(for i in 1 2; do echo PING; done) | nc 127.0.0.1 7878\n$ time (printf 'PING\\nQUIT\\n' | nc 127.0.0.1 7878)\nPONG",
            ),
        ),
        ("a missing stage", same.replace("### Етап 2.", "### Потік")),
        ("a stage numbered wrong", same.replace("Етап 2", "Етап 3")),
        ("another figure source", same.replace("RESULTS.md, cpu", "RESULTS.md, wait")),
    ];
    for (drift, text) in drifts {
        assert_ne!(text, same, "{drift}: the sample did not change");
        let problems = compare(&en, &outline(&text));
        assert!(!problems.is_empty(), "{drift} went unnoticed");
    }
}
