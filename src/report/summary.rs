//! The short summary printed on stdout: flagged clients by damages, then the input.

use super::json::Totals;
use super::ReportInput;
use std::fmt::Write;

/// Rows shown before "… and N more".
const MAX_ROWS: usize = 20;
const CLIENT_WIDTH: usize = 39;

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

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

pub fn render(input: &ReportInput<'_>) -> String {
    let a = input.analysis;
    let mut out = String::new();
    let mut flagged: Vec<_> = a.clients.iter().filter(|c| !c.exempt).collect();
    flagged.sort_by(|x, y| {
        y.damages()
            .cmp(&x.damages())
            .then_with(|| x.cell.cmp(&y.cell))
    });
    let _ = writeln!(
        out,
        "{} flagged clients, {} billed windows, {} posts billed, damages USD {}",
        thousands(flagged.len()),
        thousands(a.total_windows()),
        thousands(flagged.iter().map(|c| c.billed_posts()).sum::<u64>()),
        thousands(a.total_damages()),
    );
    let exempt = a.clients.iter().filter(|c| c.exempt).count();
    if exempt > 0 {
        let _ = writeln!(
            out,
            "{} exempt clients (shown in clients.csv, never billed)",
            thousands(exempt)
        );
    }
    if !flagged.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<CLIENT_WIDTH$} {:>7} {:>13} {:>16}",
            "client", "windows", "posts", "damages_usd"
        );
        for c in flagged.iter().take(MAX_ROWS) {
            let _ = writeln!(
                out,
                "{:<CLIENT_WIDTH$} {:>7} {:>13} {:>16}",
                clip(&c.name, CLIENT_WIDTH),
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
    let t = Totals::of(&input.scan.files, input.scan.skipped.len());
    let _ = writeln!(
        out,
        "\ninput: {} files ({} incomplete, {} unreadable, {} skipped), {} lines, {} malformed, {} out of range",
        t.files,
        t.incomplete,
        t.unreadable + t.unrecognised,
        t.skipped,
        thousands(t.lines),
        thousands(t.malformed),
        thousands(t.out_of_range),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn digit_grouping() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands("22500.00"), "22,500.00");
        assert_eq!(thousands("100.50"), "100.50");
    }
}
