//! `clients.csv`: one row per flagged or exempt client.
//!
//! `windows`, `posts`, `requests` and `damages_usd` sum the client's billed windows;
//! the peak is its busiest rolling window, whatever the mode.

use super::ReportInput;
use crate::engine::time::format_rfc3339;

pub const HEADER: [&str; 9] = [
    "client",
    "windows",
    "posts",
    "requests",
    "damages_usd",
    "peak_start",
    "peak_end",
    "peak_posts",
    "exempt",
];

pub fn render(input: &ReportInput<'_>) -> csv::Result<Vec<u8>> {
    let window = input.cfg.policy.window;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    for c in &input.analysis.clients {
        let (peak_start, peak_end, peak_posts) = match c.peak {
            Some(p) => (
                format_rfc3339(p.start),
                format_rfc3339(p.start.saturating_add(window)),
                p.posts.to_string(),
            ),
            None => (String::new(), String::new(), "0".into()),
        };
        // An exempt client's windows carry no damages (engine::bill::Policy::damages).
        let damages = c.damages().to_string();
        w.write_record([
            c.cell.as_str(),
            &c.windows.len().to_string(),
            &c.billed_posts().to_string(),
            &c.billed_requests().to_string(),
            &damages,
            &peak_start,
            &peak_end,
            &peak_posts,
            if c.exempt { "true" } else { "false" },
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
