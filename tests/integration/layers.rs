//! The crate's layering (`src/lib.rs`), checked on the source read at test time.
//!
//! Each top-level module under `src/` may use only the modules listed before it in
//! [`LAYERS`], and itself. A use is any path to another top-level module in a file's
//! code before its first `#[cfg(test)]`: `crate::x::...`, each name of a group
//! `crate::{x, y::z}`, and `super::...` paths that climb to the crate root. Comments,
//! strings and character literals are not code. The engine also stays pure: no file
//! system, no flags, no clock ([`NOT_IN_ENGINE`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules, from the bottom.
const LAYERS: [&str; 6] = ["engine", "input", "config", "store", "report", "app"];

/// Paths `src/engine/` must not use. A `std` path also counts when written from its
/// module (`io::stdin` after `use std::io`).
const NOT_IN_ENGINE: [&str; 9] = [
    "std::fs",
    "std::env",
    "std::process",
    "clap",
    "SystemTime",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "std::io::stdin",
];

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let declared = declared_modules();
    assert_eq!(
        declared,
        sorted(&LAYERS),
        "src/lib.rs declares these top-level modules; give each a place in LAYERS \
         (tests/integration/layers.rs)"
    );

    let mut bad = Vec::new();
    let mut seen = 0;
    for file in sources() {
        let Some(own) = LAYERS.iter().position(|&l| l == file.layer) else {
            bad.push(format!("{}: in no layer of {LAYERS:?}", file.name));
            continue;
        };
        // (line, module used) -> the paths on that line that go to it
        let mut upward: BTreeMap<(usize, &str), Vec<String>> = BTreeMap::new();
        for (line, path) in &file.paths {
            let Some(used) = file.top_level_module(path) else {
                continue;
            };
            seen += 1;
            if LAYERS.iter().position(|&l| l == used) > Some(own) {
                let paths = upward.entry((*line, used)).or_default();
                paths.push(format!("`{}`", path.join("::")));
            }
        }
        for ((line, used), paths) in upward {
            bad.push(format!(
                "{}:{line}: {} uses {used}: {}
    {}",
                file.name,
                file.layer,
                paths.join(", "),
                file.line(line),
            ));
        }
    }
    assert!(seen > 0, "no paths to top-level modules found under src/");
    assert!(
        bad.is_empty(),
        "imports against the layering ({}; each module may use only those before it):\n{}",
        LAYERS.join(" < "),
        bad.join("\n")
    );
}

#[test]
fn the_engine_uses_no_file_system_flags_or_clock() {
    let mut bad = Vec::new();
    for file in sources().iter().filter(|f| f.layer == "engine") {
        for (line, path) in &file.paths {
            for banned in NOT_IN_ENGINE.iter().filter(|b| uses_banned(path, b)) {
                bad.push(format!(
                    "{}:{line}: `{}` (the engine may not use `{banned}`)\n    {}",
                    file.name,
                    path.join("::"),
                    file.line(*line),
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the engine must stay pure (no file system, no flags, no clock):\n{}",
        bad.join("\n")
    );
}

/// The billing rules (which windows, what they cost, who is exempt) are applied in one
/// place, `engine::bill`: no other layer calls their parts, so no command can bill
/// differently from another.
const BILLING_PARTS: [&str; 6] = [
    "window_damages",
    "billed_rolling",
    "billed_rolling_from",
    "billed_calendar",
    "peak_until",
    "billed",
];

#[test]
fn only_the_engine_applies_the_billing_rules() {
    let mut bad = Vec::new();
    for file in sources().iter().filter(|f| f.layer != "engine") {
        for (line, path) in &file.paths {
            if let Some(part) = path.last().filter(|p| BILLING_PARTS.contains(&p.as_str())) {
                bad.push(format!(
                    "{}:{line}: `{}` ({part} belongs to engine::bill)\n    {}",
                    file.name,
                    path.join("::"),
                    file.line(*line),
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "billing goes through engine::bill::bill:\n{}",
        bad.join("\n")
    );
}

/// The reading of source the two tests above rely on.
#[test]
fn paths_are_read_from_code_only() {
    let text = r##"
use crate::{engine::bill, input::{self, reader}, config as c};
// use crate::app;
/* use crate::app; /* nested */ use crate::app; */
let s = "crate::app"; let r = r#"crate::app "# ; let ch = '"'; let q = '\'';
fn f<'a>(x: &'a str) -> std::io::Result<()> { let _ = io::stdin(); super::super::store::f() }
#[cfg(test)]
use crate::report;
"##;
    let paths: Vec<String> = paths(&code_before_tests(text))
        .into_iter()
        .map(|(_, p)| p.join("::"))
        .filter(|p| p.contains("::"))
        .collect();
    assert_eq!(
        paths,
        [
            "crate::engine::bill",
            "crate::input",
            "crate::input::reader",
            "crate::config",
            "std::io::Result",
            "io::stdin",
            "super::super::store::f",
        ]
    );
    let file = Source {
        name: "src/input/format/x.rs".into(),
        layer: "input".into(),
        depth: 3,
        text: String::new(),
        paths: Vec::new(),
    };
    let seg = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(
        file.top_level_module(&seg("super::super::super::store::f")),
        Some("store")
    );
    assert_eq!(file.top_level_module(&seg("super::super::clf")), None);
    assert!(uses_banned(&seg("io::stdin"), "std::io::stdin"));
    assert!(uses_banned(
        &seg("std::time::SystemTime::now"),
        "SystemTime"
    ));
    assert!(!uses_banned(&seg("std::io::Write"), "std::io::stdin"));
}

// ---------------------------------------------------------------- the source

/// One `.rs` file of a top-level module.
struct Source {
    /// `src/...`, for messages.
    name: String,
    /// Its top-level module.
    layer: String,
    /// How deep its module is: 1 for `src/config.rs` or `src/engine/mod.rs`, 2 for
    /// `src/engine/bill.rs`.
    depth: usize,
    text: String,
    /// The paths of its code before `#[cfg(test)]`, with their line numbers.
    paths: Vec<(usize, Vec<String>)>,
}

impl Source {
    /// The top-level module a path goes to, if it goes through the crate root.
    fn top_level_module<'p>(&self, path: &'p [String]) -> Option<&'p str> {
        let supers = path.iter().take_while(|s| *s == "super").count();
        let root = if path[0] == "crate" {
            1
        } else if supers > 0 && supers >= self.depth {
            supers
        } else {
            return None;
        };
        path.get(root).map(String::as_str)
    }

    fn line(&self, n: usize) -> &str {
        self.text.lines().nth(n - 1).unwrap_or("").trim()
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` but the crate roots `lib.rs` and `main.rs`.
fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.sort();
    let sources: Vec<Source> = files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(src()).unwrap().to_path_buf();
            let parts: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if parts.len() == 1 && (parts[0] == "lib.rs" || parts[0] == "main.rs") {
                return None;
            }
            let depth =
                parts.len() - usize::from(parts.len() > 1 && parts.last().unwrap() == "mod.rs");
            let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Some(Source {
                name: format!("src/{}", rel.display()),
                layer: parts[0].trim_end_matches(".rs").to_string(),
                depth,
                paths: paths(&code_before_tests(&text)),
                text,
            })
        })
        .collect();
    assert!(
        !sources.is_empty(),
        "no .rs files under {}",
        src().display()
    );
    sources
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The modules `src/lib.rs` declares (`mod x;`, `pub mod x;`), sorted.
fn declared_modules() -> Vec<String> {
    let text = fs::read_to_string(src().join("lib.rs")).unwrap();
    let code = code(&text);
    let mut mods: Vec<String> = code
        .split(';')
        .filter_map(|item| {
            let words: Vec<&str> = item.split_whitespace().collect();
            match words.as_slice() {
                [.., "mod", name] => Some(name.to_string()),
                _ => None,
            }
        })
        .collect();
    mods.sort();
    mods
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Whether `path` uses `banned`: its segments appear in the path in a row. A `std`
/// path of three or more segments also matches without its `std::`.
fn uses_banned(path: &[String], banned: &str) -> bool {
    let b: Vec<&str> = banned.split("::").collect();
    let short = if b[0] == "std" && b.len() > 2 {
        &b[1..]
    } else {
        &b[..]
    };
    [&b[..], short].iter().any(|b| {
        path.windows(b.len())
            .any(|w| w.iter().zip(b.iter()).all(|(x, y)| x == y))
    })
}

// ---------------------------------------------------------------- reading Rust

/// The code of `text` up to its first `#[cfg(test)]`, as [`code`] leaves it.
fn code_before_tests(text: &str) -> String {
    let code = code(text);
    match code.find("#[cfg(test)]") {
        Some(end) => code[..end].to_string(),
        None => code,
    }
}

/// `text` with its comments, strings and character literals blanked out; newlines
/// are kept, so line numbers still hold.
fn code(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, ch)| c.get(i + k) == Some(&ch))
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let start = i;
        if at(i, "//") {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < c.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&c, i) {
            // r"...", r#"..."#, br"...", cr"...": no escapes, ends at `"` and the hashes.
            i += hashes + 2;
            let end: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            while i < c.len() && !at(i, &end) {
                i += 1;
            }
            i += end.len();
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            // '\n', '\'', '\u{..}'
            i += 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            // code, a lifetime's quote included
            out.push(c[i]);
            i += 1;
            continue;
        }
        for &ch in &c[start..i.min(c.len())] {
            out.push(if ch == '\n' { '\n' } else { ' ' });
        }
    }
    out
}

/// If a raw string starts at `i` (its `r`, or the `b` or `c` before it), the number of
/// its hashes.
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let ident = |k: usize| {
        c.get(k)
            .is_some_and(|ch| ch.is_alphanumeric() || *ch == '_')
    };
    if i > 0 && ident(i - 1) {
        return None;
    }
    let r = match c[i] {
        'r' => i,
        'b' | 'c' if c.get(i + 1) == Some(&'r') => i + 1,
        _ => return None,
    };
    let hashes = c[r + 1..].iter().take_while(|&&ch| ch == '#').count();
    (c.get(r + 1 + hashes) == Some(&'"')).then_some(hashes + (r - i))
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

/// Every path of `code` (as left by [`code`]) with the line it starts on: `a::b::c`,
/// and each path of a group `a::{b, c::{d, self}}` whole (`a::b`, `a::c::d`, `a::c`).
/// A lone name is a path of one segment.
fn paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if matches!(toks[i].1, Tok::Ident(_)) {
            let line = toks[i].0;
            let mut found = Vec::new();
            tree(&toks, &mut i, Vec::new(), &mut found);
            out.extend(found.into_iter().map(|p| (line, p)));
        } else {
            i += 1;
        }
    }
    out
}

/// Reads the use tree at `toks[*i]` under `prefix` into `out`.
fn tree(toks: &[(usize, Tok)], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        match toks.get(*i).map(|t| &t.1) {
            Some(Tok::Ident(s)) => {
                if s != "self" || prefix.is_empty() {
                    prefix.push(s.clone());
                }
                *i += 1;
                if toks.get(*i).map(|t| &t.1) == Some(&Tok::Sep) {
                    *i += 1;
                    continue;
                }
            }
            Some(Tok::Star) => {
                prefix.push("*".into());
                *i += 1;
            }
            Some(Tok::Open) if !prefix.is_empty() => {
                *i += 1;
                while let Some((_, t)) = toks.get(*i) {
                    match t {
                        Tok::Close => {
                            *i += 1;
                            break;
                        }
                        Tok::Comma => *i += 1,
                        // `x as y`: the name `y` is no path.
                        Tok::Ident(s) if s == "as" => *i += 2,
                        Tok::Ident(_) | Tok::Open | Tok::Star => tree(toks, i, prefix.clone(), out),
                        _ => *i += 1,
                    }
                }
                return;
            }
            _ => {}
        }
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
}

fn tokens(code: &str) -> Vec<(usize, Tok)> {
    let c: Vec<char> = code.chars().collect();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' || ch == '$' {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // `$crate` in a macro is this crate.
            toks.push((line, Tok::Ident(word.trim_start_matches('$').to_string())));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            toks.push((line, Tok::Sep));
            i += 2;
        } else {
            let tok = match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                _ => Tok::Other,
            };
            toks.push((line, tok));
            i += 1;
        }
    }
    toks
}
