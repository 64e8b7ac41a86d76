//! The short summary printed on stdout: flagged clients by damages, then the input.
//! Every line fits 80 columns; log content is stripped of control characters.
//! `--summary json` prints the same as JSON for scripts.

use super::json::Totals;
use super::ReportInput;
use std::fmt::Write;

/// Rows shown before "… and N more".
const MAX_ROWS: usize = 20;
const CLIENT_WIDTH: usize = 39;
/// The width of a terminal that the summary fits.
const COLUMNS: usize = 80;

/// Log content made safe for a terminal: control characters go (a tab becomes a space).
pub fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: impl ToString) -> String {
    let s = n.to_string();
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A count and its noun, singular for 1: `1 file`, `2 files`, `1,234 lines`.
pub fn count(n: impl TryInto<u64> + ToString + Copy, one: &str, many: &str) -> String {
    let is_one = n.try_into().ok() == Some(1);
    format!("{} {}", thousands(n), if is_one { one } else { many })
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// Words of `s` in lines of at most `width` characters (a longer word gets its own line).
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Flagged (not exempt) clients, highest damages first.
fn flagged<'a>(input: &ReportInput<'a>) -> Vec<&'a crate::engine::bill::ClientResult> {
    let mut flagged: Vec<_> = input
        .analysis
        .clients
        .iter()
        .filter(|c| !c.exempt)
        .collect();
    flagged.sort_by(|x, y| {
        y.damages()
            .cmp(&x.damages())
            .then_with(|| x.cell.cmp(&y.cell))
    });
    flagged
}

pub fn render(input: &ReportInput<'_>) -> String {
    let a = input.analysis;
    let mut out = String::new();
    let flagged = flagged(input);
    let _ = writeln!(
        out,
        "{}, {}, {} billed",
        count(flagged.len(), "flagged client", "flagged clients"),
        count(a.total_windows(), "billed window", "billed windows"),
        count(
            flagged.iter().map(|c| c.billed_posts()).sum::<u64>(),
            "post",
            "posts"
        ),
    );
    let _ = writeln!(out, "damages USD {}", thousands(a.total_damages()));
    let _ = writeln!(out, "report {}", input.id());
    let exempt = a.clients.iter().filter(|c| c.exempt).count();
    if exempt > 0 {
        let _ = writeln!(
            out,
            "{} (shown in clients.csv, never billed)",
            count(exempt, "exempt client", "exempt clients")
        );
    }
    if !a.leads.is_empty() {
        let by: Vec<String> = a
            .leads
            .iter()
            .map(|g| format!("{} by {}", thousands(g.leads.len()), g.by.name()))
            .collect();
        let _ = writeln!(
            out,
            "leads, groups over the threshold with no client over it (not billed):\n  {}; see report.html",
            by.join(", ")
        );
    }
    if !flagged.is_empty() {
        // Wide numbers take their room from the client column.
        let shown = &flagged[..flagged.len().min(MAX_ROWS)];
        let pw = shown
            .iter()
            .map(|c| thousands(c.billed_posts()).len())
            .fold(13, usize::max);
        let dw = shown
            .iter()
            .map(|c| thousands(c.damages()).len())
            .fold(16, usize::max);
        let cw = CLIENT_WIDTH
            .min(COLUMNS.saturating_sub(pw + dw + 10))
            .max(12);
        let _ = writeln!(
            out,
            "\n{:<cw$} {:>7} {:>pw$} {:>dw$}",
            "client", "windows", "posts", "damages_usd"
        );
        for c in flagged.iter().take(MAX_ROWS) {
            let _ = writeln!(
                out,
                "{:<cw$} {:>7} {:>pw$} {:>dw$}",
                clip(&clean(&c.name), cw),
                c.windows.len(),
                thousands(c.billed_posts()),
                thousands(c.damages()),
            );
        }
        if flagged.len() > MAX_ROWS {
            let _ = writeln!(
                out,
                "… and {} more (see clients.csv)",
                flagged.len() - MAX_ROWS
            );
        }
    }
    let t = Totals::of(input.files, input.skipped.len());
    let _ = writeln!(
        out,
        "\ninput: {} ({} incomplete, {} unreadable, {} unrecognised, {} skipped)\n       {}, {} malformed, {} out of range",
        count(t.files, "file", "files"),
        thousands(t.incomplete),
        thousands(t.unreadable),
        thousands(t.unrecognised),
        thousands(t.skipped),
        count(t.lines, "line", "lines"),
        thousands(t.malformed),
        thousands(t.out_of_range),
    );
    if let Some(n) = input.nightly {
        let _ = writeln!(
            out,
            "state: run {}, watermark {}; {} billed final in this run, {} provisional",
            n.run,
            n.watermark
                .map_or("none yet".into(), crate::engine::time::format_rfc3339),
            count(n.final_windows_new, "window", "windows"),
            thousands(n.provisional_windows),
        );
        if n.late_requests > 0 {
            let _ = writeln!(
                out,
                "LATE: {} ({}) of {} in {} were not billed,\n      up to {} before the watermark; --lateness {} would have covered them",
                count(n.late_requests, "request", "requests"),
                count(n.late_posts, "post", "posts"),
                count(n.late_clients.len(), "client", "clients"),
                count(n.late_inputs.len(), "file", "files"),
                n.late_by.as_deref().unwrap_or("0s"),
                n.lateness_needed.as_deref().unwrap_or("?"),
            );
        }
    }
    let bad = input.bad_inputs();
    if !bad.is_empty() {
        let _ = writeln!(
            out,
            "bad inputs: {} (named in the reports; --strict fails on them)",
            thousands(bad.len())
        );
        for (path, why) in bad.iter().take(MAX_ROWS) {
            let _ = writeln!(out, "{}", clip(&clean(&format!("  {path}:")), COLUMNS));
            for l in wrap(&clean(why), COLUMNS - 4) {
                let _ = writeln!(out, "    {}", clip(&l, COLUMNS - 4));
            }
        }
        if bad.len() > MAX_ROWS {
            let _ = writeln!(out, "… and {} more (see report.json)", bad.len() - MAX_ROWS);
        }
    }
    // Client names and paths come from the logs: no control character reaches the
    // terminal.
    crate::engine::text::terminal_safe(&out).into_owned()
}

/// The summary as JSON: totals, every flagged client (highest damages first), inputs.
pub fn render_json(input: &ReportInput<'_>) -> String {
    let a = input.analysis;
    let flagged = flagged(input);
    let doc = serde_json::json!({
        "flagged_clients": flagged.len(),
        "billed_windows": a.total_windows(),
        "billed_posts": flagged.iter().map(|c| c.billed_posts()).sum::<u64>(),
        "damages_usd": a.total_damages(),
        "clients": flagged.iter().map(|c| serde_json::json!({
            "client": c.name,
            "windows": c.windows.len(),
            "posts": c.billed_posts(),
            "damages_usd": c.damages(),
        })).collect::<Vec<_>>(),
        "input": Totals::of(input.files, input.skipped.len()),
        "out": input.cfg.out_dir.display().to_string(),
        "report_id": input.id(),
    });
    let mut doc = doc;
    if !a.leads.is_empty() {
        doc["leads"] = a
            .leads
            .iter()
            .map(|g| (g.by.name().to_string(), serde_json::json!(g.leads.len())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if let Some(n) = input.nightly {
        doc["state"] = serde_json::json!({
            "run": n.run,
            "watermark": n.watermark.map(crate::engine::time::format_rfc3339),
            "ledger_head": n.ledger_head,
            "final_windows_new": n.final_windows_new,
            "provisional_windows": n.provisional_windows,
            "late_requests": n.late_requests,
            "late_posts": n.late_posts,
            "late_clients": n.late_clients,
            "late_inputs": n.late_inputs,
            "lateness_needed": n.lateness_needed,
        });
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::engine::aggregate::Bucket;
    use crate::engine::bill::{bill, Analysis, Horizon, Population};
    use crate::input::reader::{FileReport, ScanOutput};
    use crate::report::RunInfo;

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1u64, "file", "files"), "1 file");
        assert_eq!(count(0usize, "file", "files"), "0 files");
        assert_eq!(count(1_234u64, "line", "lines"), "1,234 lines");
    }

    #[test]
    fn every_line_fits_80_columns() {
        let cfg = crate::config::for_tests(Overrides::default());
        let buckets: Vec<Bucket> = (0..3)
            .map(|d| Bucket {
                t: d * 86_400_000_000,
                posts: 987_654_321_000,
                requests: 987_654_321_000,
            })
            .collect();
        let key = "Mozilla/5.0 \u{1b}[31m a very long user agent that goes on and on and on";
        let client = bill(
            &cfg.policy,
            &Horizon::Complete,
            key.as_bytes().into(),
            cfg.read.identify(key.as_bytes()),
            buckets,
            None,
        )
        .result;
        let mut file = FileReport::new("a.log");
        file.lines = 123_456_789_012;
        file.malformed = 123_456_789;
        file.out_of_range = 123_456_789;
        file.bad = Some(
            "too many malformed lines: 123456789 of 123456789012 (0.1%, over --max-malformed 0.0001); looks like json: try --format json".into(),
        );
        let scan = ScanOutput {
            inputs: Vec::new(),
            files: vec![file],
            skipped: Vec::new(),
            aggregate: Default::default(),
            late: Default::default(),
            groups: Default::default(),
            recorded: Default::default(),
        };
        let analysis = Analysis {
            clients: vec![client],
            population: Population {
                clients: 1,
                buckets: 3,
                clients_with_posts: 1,
                peak_posts: hdrhistogram::Histogram::new(3).unwrap(),
                peak_min: 0,
                peak_max: 0,
                near_misses: Vec::new(),
                decades: Vec::new(),
            },
            refused: None,
            leads: Vec::new(),
        };
        let input = ReportInput::new(
            &cfg,
            &scan.files,
            &scan.skipped,
            &analysis,
            None,
            RunInfo {
                command_line: vec!["scrapemeter".into(), "scan".into()],
                version: "0",
                started_at: String::new(),
                elapsed_seconds: 0.0,
                threads: 1,
            },
        );
        let text = render(&input);
        assert!(text.contains("bad inputs: 1 ") && text.contains("  a.log:\n    too many"));
        assert!(text.contains("try --format json"), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
        let json: serde_json::Value = serde_json::from_str(&render_json(&input)).unwrap();
        assert_eq!(json["clients"][0]["windows"], 3);
        assert_eq!(json["input"]["lines"], 123_456_789_012u64);
    }

    #[test]
    fn digit_grouping() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands("22500.00"), "22,500.00");
        assert_eq!(thousands("100.50"), "100.50");
    }
}
