//! `scrapemeter rules check FILE [--line LINE --format F]`: validates a rules file,
//! lists its rules in order and, given a log line, shows which rule weighs it.
//!
//! The rules are compiled by [`RuleSet::load`], exactly as `scan --rules` does, so a
//! file this command accepts is a file a scan accepts. The conditions are shown as
//! written in the file.

use crate::app::error::{Error, Exit};
use crate::input::format::{detect, FieldSet, FormatChoice, JsonFields, LineFormat, Request};
use crate::input::rules::RuleSet;
use clap::{Args, Subcommand};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum RulesAction {
    /// Validate a rules file, list its rules, and show which rule weighs a log line.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The rules file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// A log line to weigh with the rules.
    #[arg(long, value_name = "LOG LINE")]
    pub line: Option<String>,

    /// The format of --line (default: auto, the first format that reads it): combined,
    /// common, vcombined, json, alb, cloudfront, or nginx:'<log_format>'.
    #[arg(
        long,
        short,
        value_name = "FORMAT",
        default_value = "auto",
        hide_default_value = true
    )]
    pub format: String,
}

/// Runs `rules ACTION`; returns the exit status.
pub fn run(action: RulesAction) -> Result<Exit, Error> {
    let RulesAction::Check(args) = action;
    print!("{}", check(&args)?);
    Ok(Exit::Success)
}

/// The report of `rules check`, or the error that makes it exit 2.
pub fn check(args: &CheckArgs) -> Result<String, Error> {
    let choice: FormatChoice = args.format.parse()?;
    let mut fields = FieldSet::default();
    let rules = RuleSet::load(&args.file, &mut fields)?;
    let mut out = String::new();
    let n = rules.rules.len();
    let _ = writeln!(
        out,
        "{}: {n} rule{} in order (the first that matches gives the weight; none: 0)",
        rules.path,
        if n == 1 { "" } else { "s" }
    );
    for (i, (rule, conditions)) in rules.rules.iter().zip(conditions(&args.file)).enumerate() {
        let _ = writeln!(out, "{:>3}. {}", i + 1, rule.name);
        let _ = writeln!(out, "     when:  {conditions}");
        let _ = writeln!(out, "     posts: {}", posts_text(&rule.posts));
    }
    let Some(line) = &args.line else {
        return Ok(out);
    };
    let line = line.trim_end_matches(['\r', '\n']).as_bytes();
    let candidates = choice.candidates(&fields, &JsonFields::default());
    let req = parse_line(&candidates, line, &choice).map_err(Error::Usage)?;
    let (format, req) = req;
    let _ = writeln!(
        out,
        "line read as {format}: {} {} status {}{}",
        shown(req.method.as_deref()),
        shown(req.target.as_deref()),
        req.status,
        req.host
            .as_deref()
            .map(|h| format!(" host {}", crate::engine::text::display_key(h)))
            .unwrap_or_default()
    );
    match rules.matching(&req) {
        Some((i, w)) => {
            let _ = writeln!(
                out,
                "matched rule {} ({}): {w} post{}",
                i + 1,
                rules.rules[i].name,
                if w == 1 { "" } else { "s" }
            );
        }
        None if req.target.is_none() => {
            let _ = writeln!(out, "no rule: the request field could not be read: 0 posts");
        }
        None => {
            let _ = writeln!(out, "no rule matched: 0 posts");
        }
    }
    Ok(out)
}

fn parse_line<'a>(
    candidates: &[Box<dyn LineFormat>],
    line: &'a [u8],
    choice: &FormatChoice,
) -> Result<(String, Request<'a>), String> {
    let i = match choice {
        FormatChoice::Auto => detect(candidates, &[line]).ok_or_else(|| {
            "--line: no format reads this line (give --format to see why)".to_string()
        })?,
        _ => 0,
    };
    let f = candidates
        .get(i)
        .ok_or_else(|| format!("--format {}: cannot be used", choice.name()))?;
    f.parse(line)
        .map(|r| (f.name().to_string(), r))
        .map_err(|e| format!("--line cannot be read as {}: {e}", f.name()))
}

fn shown(v: Option<&[u8]>) -> String {
    v.map_or_else(|| "-".to_string(), crate::engine::text::display_key)
}

fn posts_text(p: &crate::input::rules::Posts) -> String {
    use crate::input::rules::Posts;
    let cap = |max: &Option<u64>| max.map(|m| format!(", at most {m}")).unwrap_or_default();
    match p {
        Posts::Constant(n) => n.to_string(),
        Posts::Query { name, default, max } => format!(
            "query parameter {} (default {default}{})",
            String::from_utf8_lossy(name),
            cap(max)
        ),
        Posts::Field {
            name, default, max, ..
        } => format!("logged field {name} (default {default}{})", cap(max)),
    }
}

/// Each rule's conditions as written (`method`, `path`/`path_regex`, `host`, `status`),
/// in the file's order; the file has been loaded already, so it parses.
fn conditions(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    let rules = table
        .get("rule")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    rules
        .iter()
        .map(|r| {
            let mut parts = Vec::new();
            for key in ["method", "path", "path_regex", "host", "status"] {
                if let Some(v) = r.get(key) {
                    parts.push(format!("{key} = {v}"));
                }
            }
            if r.get("status").is_none() {
                parts.push("status = [\"2xx\", \"304\"] (default)".into());
            }
            parts.join(", ")
        })
        .collect()
}
