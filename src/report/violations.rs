//! `violations.csv`: one row per billed window.

use super::ReportInput;
use crate::engine::time::format_rfc3339;

pub const HEADER: [&str; 7] = [
    "client",
    "window",
    "window_start",
    "window_end",
    "posts",
    "requests",
    "damages_usd",
];

pub fn render(input: &ReportInput<'_>) -> csv::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // With nightly state a `status` column follows the fixed ones.
    let with_status = input.nightly.is_some();
    let mut header = HEADER.to_vec();
    if with_status {
        header.push("status");
    }
    w.write_record(&header)?;
    for c in &input.analysis.clients {
        if c.exempt {
            continue;
        }
        for win in &c.windows {
            let mut row = vec![
                c.cell.clone(),
                win.index.to_string(),
                format_rfc3339(win.start),
                format_rfc3339(win.end),
                win.posts.to_string(),
                win.requests.to_string(),
                win.damages.to_string(),
            ];
            if with_status {
                row.push(win.status.as_str().to_string());
            }
            w.write_record(&row)?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
