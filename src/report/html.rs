//! `report.html`: the report people read, one self-contained page.
//!
//! No network: inline CSS, hand-built inline SVG and one inline script (it makes the
//! tables sortable; the page reads the same without it, on screen and printed to PDF),
//! under a Content-Security-Policy that allows that script and that style element only
//! (by their SHA-256), so that log text that got past [`esc`] still could not run. The page follows the reader's questions: what was read and what is
//! owed (summary), how it was computed (methodology, with a worked example), why each
//! client is flagged (chart, rate profile, windows, evidence lines), and how far the
//! flagged clients stand from everyone else (population). Every string that comes from
//! the logs (client keys, evidence and malformed lines, file names) goes through
//! [`esc`]. The page is deterministic but for the run facts, all in its footer.

use super::json::{settings_json, Totals, JUDGING};
use super::summary::thousands;
use super::ReportInput;
use crate::config::Config;
use crate::engine::bill::ClientResult;
use crate::engine::damages::Rounding;
use crate::engine::evidence::Evidence;
use crate::engine::rate_profile::{rate_profile, trailing_envelope};
use crate::engine::time::{format_duration, format_rfc3339, Micros, MICROS_PER_SEC};
use crate::engine::window::Mode;
use crate::input::client::ClientKind;
use crate::input::post_weight::STATIC_EXTENSIONS;
use crate::store::nightly::Nightly;
use std::cmp::Reverse;
use std::fmt::Write;

/// Flagged clients given a section of their own; the rest are in the tables.
const MAX_CLIENT_SECTIONS: usize = 200;
/// Columns the trailing-window curve is summarised into.
const CHART_COLUMNS: usize = 400;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters would be invisible or break the layout.
            c if c.is_control() && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A figure that one of the other reports holds, marked so that a reader (and the
/// browser test) can check it against its source: `<data value="1091860"
/// data-src="clients.csv:1:posts">1,091,860</data>`. A source is `report.json:` and a
/// JSON pointer, or `clients.csv:ROW:COLUMN` or `violations.csv:ROW:COLUMN` (ROW
/// counted from 1 after the header). The value is the source's own spelling.
fn fig(n: impl std::fmt::Display, src: &str) -> String {
    let value = n.to_string();
    format!(
        "<data value=\"{}\" data-src=\"{}\">{}</data>",
        esc(&value),
        esc(src),
        thousands(value)
    )
}

/// A fixed number of the tool (how many rows a table keeps, ...), not a figure from the
/// logs: marked apart from the figures.
fn constant(n: impl ToString) -> String {
    format!("<span class=\"const\">{}</span>", thousands(n))
}

/// Where each reported client's figures are in the other reports: its index in
/// report.json `clients` (and its row in clients.csv, the same order), and the
/// violations.csv row of its first window (exempt clients have none).
struct Sources {
    at: std::collections::HashMap<*const ClientResult, (usize, Option<usize>)>,
}

impl Sources {
    fn of(clients: &[ClientResult]) -> Sources {
        let mut row = 1;
        let at = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let first = (!c.exempt).then_some(row);
                if !c.exempt {
                    row += c.windows.len();
                }
                (c as *const ClientResult, (i, first))
            })
            .collect();
        Sources { at }
    }

    /// `report.json:/clients/N` for this client, to append a field's path to.
    fn json(&self, c: &ClientResult) -> String {
        format!("report.json:/clients/{}", self.at[&(c as *const _)].0)
    }

    /// `clients.csv:ROW:COLUMN` for this client.
    fn clients_csv(&self, c: &ClientResult, column: &str) -> String {
        format!("clients.csv:{}:{column}", self.at[&(c as *const _)].0 + 1)
    }

    /// Where a window's `field` is: violations.csv for a billed client, report.json for
    /// an exempt one (`json_field` there).
    fn window(&self, c: &ClientResult, k: usize, column: &str, json_field: &str) -> String {
        match self.at[&(c as *const _)].1 {
            Some(first) => format!("violations.csv:{}:{column}", first + k),
            None => format!("{}/windows/{k}/{json_field}", self.json(c)),
        }
    }
}

fn t(t: Micros) -> String {
    format_rfc3339(t)
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a1a1a;max-width:1100px;margin:2em auto;padding:0 1.5em}
h1{font-size:1.7em;margin:0 0 .2em}
h2{font-size:1.3em;border-bottom:2px solid #333;padding-bottom:.2em;margin-top:2.2em}
h3{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.key,.mono{font-family:ui-monospace,"SF Mono",Menlo,Consolas,monospace;word-break:break-all}
.mono{font-size:12px}
pre.line{white-space:pre-wrap;word-break:break-all;background:#f5f5f5;border-left:3px solid #888;padding:.4em .6em;margin:.2em 0 .8em;font-size:12px}
.total{font-size:1.25em;background:#fff4e5;border:1px solid #e0b070;padding:.5em .8em;display:inline-block}
.note{color:#555}
.exempt{color:#2a6f2a;font-weight:bold}
.example{background:#f5f8fc;border:1px solid #b8c8dc;padding:.6em 1em}
svg{max-width:100%;height:auto;display:block;margin:.4em 0}
svg text{font-family:system-ui,sans-serif;font-size:11px;fill:#333}
svg text.thr{fill:#c0392b}
button.sort{all:inherit;cursor:pointer;padding:0;border:0;background:none}
button.sort:focus-visible{outline:2px solid #3b6ea5}
th[aria-sort=ascending] button.sort::after{content:" \\25B2";font-size:.8em}
th[aria-sort=descending] button.sort::after{content:" \\25BC";font-size:.8em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}
dl.facts dt{font-weight:bold}
dl.facts dd{margin:0}
p.late{border-left:4px solid #c0392b;padding-left:.6em}
footer{margin-top:3em;border-top:1px solid #bbb;padding-top:.5em;color:#555;font-size:12px}
@page{size:A4;margin:14mm}
@media print{button.sort::after{content:none!important}body{margin:0;max-width:none;padding:0;font-size:12px}section.client{break-before:page}h2#clients+section.client{break-before:auto}tr,pre,svg,.example,dl.facts{break-inside:avoid}h1,h2,h3,h4{break-after:avoid;break-inside:avoid}p:has(+pre.line),p:has(+table),p:has(+svg){break-after:avoid}nav#contents{break-after:page}}
"#;

/// Renders the page.
pub fn render(input: &ReportInput<'_>) -> Vec<u8> {
    let cfg = input.cfg;
    let a = input.analysis;
    let mut flagged: Vec<&ClientResult> = a.clients.iter().filter(|c| !c.exempt).collect();
    flagged.sort_by(|x, y| {
        y.damages()
            .cmp(&x.damages())
            .then_with(|| x.cell.cmp(&y.cell))
    });
    let exempt: Vec<&ClientResult> = a.clients.iter().filter(|c| c.exempt).collect();
    let src = Sources::of(&a.clients);

    let mut o = String::with_capacity(64 * 1024);
    let id = input.id();
    head(&mut o, id);
    contents(&mut o, input, &flagged, &exempt);
    summary(&mut o, input, &src, id, &flagged, &exempt);
    overview(&mut o, input);
    if let Some(n) = input.nightly {
        nightly(&mut o, cfg, n);
    }
    methodology(&mut o, input, &src, &flagged);
    o.push_str("<h2 id=\"clients\">Flagged clients in detail</h2>\n");
    if flagged.is_empty() && exempt.is_empty() {
        o.push_str("<p>No client breached the threshold.</p>\n");
    }
    for (i, c) in flagged.iter().chain(&exempt).enumerate() {
        if i == MAX_CLIENT_SECTIONS {
            let _ = writeln!(
                o,
                "<p class=\"note\">The clients past the first {} are listed in the summary table, clients.csv and violations.csv.</p>",
                constant(MAX_CLIENT_SECTIONS)
            );
            break;
        }
        client_section(&mut o, cfg, &src, c, i + 1);
    }
    population(&mut o, input, flagged.len());
    near_misses(&mut o, input);
    leads(&mut o, input);
    reproduce(&mut o, input, id);
    appendix(&mut o, input);
    // The run facts: the only part of the page that differs between equal runs.
    let r = &input.run;
    let _ = writeln!(
        o,
        "<footer id=\"run\">Written by scrapemeter <span class=\"mono\">{}</span> in a run started {} ({} s, {} threads). Everything else on this page follows from the inputs and settings alone.</footer>",
        esc(r.version),
        esc(&r.started_at),
        fig(r.elapsed_seconds, "report.json:/run/elapsed_seconds"),
        fig(r.threads, "report.json:/run/threads")
    );
    let _ = writeln!(o, "<script>{SORT_SCRIPT}</script>");
    o.push_str("</body>\n</html>\n");
    o.into_bytes()
}

/// The page's `<head>`: its Content-Security-Policy first, then the style element.
fn head(o: &mut String, id: &str) {
    // The identifier at the foot of every printed page.
    let style = format!(
        "{CSS}@page{{@bottom-center{{content:\"scrapemeter report {id}\";font:8px monospace;color:#555}}}}"
    );
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        o,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        content_security_policy(&style)
    );
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = write!(
        o,
        "<title>scrapemeter: damages report</title>\n<style>{style}</style>\n</head>\n<body>\n"
    );
}

/// Nothing may load or run but the page's own script and style element, named by their
/// SHA-256: no other script (an injected `<script>` or `onerror=` would be refused even
/// if it got past [`esc`]), no style attribute, no image, font, frame or connection,
/// no `<base>` and no form.
fn content_security_policy(style: &str) -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; img-src 'none'; base-uri 'none'; form-action 'none'",
        csp_hash(SORT_SCRIPT),
        csp_hash(style)
    )
}

/// `sha256-<base64>` of an inline element's text, as CSP names it.
fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// Makes every `table.sortable` sortable by a click on a column heading: numbers
/// (thousands separators, `USD`, decimals) compared exactly as decimal strings, text in
/// the reader's collation, empty cells last, ties in page order; the `tfoot` stays put.
/// It marks each table it set up `data-sortable="on"` and the page `data-script="ran"`
/// (the browser test looks for both). Without it the tables are in the page's order.
const SORT_SCRIPT: &str = r#"
(function () {
  "use strict";
  var NUM = /^-?[0-9][0-9,]*(\.[0-9]+)?$/;
  function value(cell) {
    if (!cell) return { empty: true };
    var d = cell.querySelector("data[value]");
    var t = (d ? d.getAttribute("value") : cell.textContent).trim().replace(/^USD\s+/, "");
    if (t === "") return { empty: true };
    if (!NUM.test(t)) return { text: t };
    var s = t.replace(/,/g, ""), neg = s.charAt(0) === "-";
    if (neg) s = s.slice(1);
    var parts = s.split(".");
    return { num: true, neg: neg, int: parts[0].replace(/^0+(?=.)/, ""), frac: parts[1] || "" };
  }
  function order(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  function compareNumbers(a, b) {
    if (a.neg !== b.neg) return a.neg ? -1 : 1;
    var r = a.int.length - b.int.length || order(a.int, b.int);
    if (!r) {
      var n = Math.max(a.frac.length, b.frac.length);
      r = order(a.frac.padEnd(n, "0"), b.frac.padEnd(n, "0"));
    }
    return a.neg ? -r : r;
  }
  function compare(a, b) {
    if (a.num && b.num) return compareNumbers(a, b);
    if (a.num || b.num) return a.num ? -1 : 1;
    return a.text.localeCompare(b.text, undefined, { numeric: true });
  }
  function sort(table, column, th, numeric) {
    var body = table.tBodies[0];
    if (!body) return;
    var now = th.getAttribute("aria-sort");
    var dir = now ? (now === "ascending" ? "descending" : "ascending") : (numeric ? "descending" : "ascending");
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    var rows = Array.prototype.map.call(body.rows, function (row, at) {
      return { row: row, at: at, v: value(row.cells[column]) };
    });
    rows.sort(function (x, y) {
      if (x.v.empty || y.v.empty) return (x.v.empty ? 1 : 0) - (y.v.empty ? 1 : 0) || x.at - y.at;
      var c = compare(x.v, y.v);
      return (dir === "descending" ? -c : c) || x.at - y.at;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    th.setAttribute("aria-sort", dir);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies[0] || table.tBodies[0].rows.length < 2) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.title = "Sort by this column";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      var numeric = th.classList.contains("n");
      button.addEventListener("click", function () { sort(table, column, th, numeric); });
    });
    table.setAttribute("data-sortable", "on");
  });
  document.documentElement.setAttribute("data-script", "ran");
})();
"#;

/// An approximate value to 3 significant figures, written so it cannot pass for an
/// exact one: `1.09 M`, `45.2 k`, `812`.
fn approx(n: u64) -> String {
    if n < 1_000 {
        return n.to_string();
    }
    let (v, unit) = match n {
        n if n >= 1_000_000_000 => (n as f64 / 1e9, "G"),
        n if n >= 1_000_000 => (n as f64 / 1e6, "M"),
        n => (n as f64 / 1e3, "k"),
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// `1 input`, `2 inputs`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), noun(n, one, many))
}

/// The noun for `n` of them: `file` for 1, `files` otherwise.
fn noun<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Clients with late requests shown in the page (report.json has them all).
const MAX_LATE_ROWS: usize = 50;

/// All traffic at a glance: requests and posts per hour (per day past two weeks),
/// requests per status class, distinct clients.
fn overview(o: &mut String, input: &ReportInput<'_>) {
    let traffic = super::json::traffic_of(input.files);
    o.push_str("<h2 id=\"overview\">Overview of all traffic</h2>\n");
    let requests: u64 = traffic.status.iter().sum();
    if requests == 0 && input.files.iter().any(|f| f.requests > 0) {
        o.push_str("<p>Not available: these inputs are partials (<code>reduce</code>), which keep per-client counts only.</p>\n");
        return;
    }
    let _ = writeln!(
        o,
        "<p>{} {} from {} distinct clients; {} delivered posts.</p>",
        fig(requests, "report.json:/totals/requests"),
        noun(requests, "request", "requests"),
        fig(
            input.analysis.population.clients,
            "report.json:/traffic/clients"
        ),
        fig(
            traffic.hours.iter().map(|h| h.2).sum::<u64>(),
            "report.json:/totals/posts"
        )
    );
    o.push_str("<table id=\"by-status\" class=\"sortable\"><thead><tr><th>Status</th><th class=\"n\">Requests</th></tr></thead><tbody>\n");
    for (class, n) in crate::engine::traffic::STATUS_CLASSES
        .iter()
        .zip(traffic.status)
    {
        if n > 0 {
            let _ = writeln!(
                o,
                "<tr><td>{class}</td><td class=\"n\">{}</td></tr>",
                fig(n, &format!("report.json:/traffic/by_status/{class}"))
            );
        }
    }
    o.push_str("</tbody></table>\n");
    let (Some(first), Some(last)) = (traffic.hours.first(), traffic.hours.last()) else {
        return;
    };
    const HOUR: Micros = 3_600 * MICROS_PER_SEC;
    let span_hours = ((last.0 - first.0) / HOUR + 1) as usize;
    // A few hundred bars at most, wide enough to see: hours up to two weeks, days up to
    // 400, then weeks from Monday (1970-01-05 was one).
    let (step, unit, monday) = if span_hours > 24 * 400 {
        (7 * 24 * HOUR, "week", 4 * 24 * HOUR)
    } else if span_hours > 24 * 14 {
        (24 * HOUR, "day", 0)
    } else {
        (HOUR, "hour", 0)
    };
    let from = (first.0 - monday).div_euclid(step) * step + monday;
    let bins = ((last.0 - from) / step + 1).clamp(1, 4000) as usize;
    let mut req = vec![0u64; bins];
    let mut posts = vec![0u64; bins];
    for &(h, r, p) in &traffic.hours {
        let i = (((h - from) / step) as usize).min(bins - 1);
        req[i] += r;
        posts[i] += p;
    }
    const W: f64 = 800.0;
    const H: f64 = 160.0;
    const L: f64 = 70.0;
    const TOP: f64 = 14.0;
    const B: f64 = 24.0;
    let (pw, ph) = (W - L - 16.0, H - TOP - B);
    // Posts can outnumber requests (rules weigh a request up to 10⁹ posts).
    let max = req.iter().chain(&posts).copied().max().unwrap_or(1).max(1);
    let bw = pw / bins as f64;
    let _ = writeln!(
        o,
        "<svg class=\"overview\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Requests and posts per {unit}\" xmlns=\"http://www.w3.org/2000/svg\"><title>Requests and posts per {unit}, all clients</title>"
    );
    // Empty bins draw nothing (years of logs with a few busy hours stay small).
    for i in (0..bins).filter(|&i| req[i] > 0) {
        let x = L + bw * i as f64;
        let at = esc(&t(from + step * i as Micros));
        // The taller bar first, so that the other stays visible in front of it.
        let mut bars = [
            (req[i], "#b8c9dd", "requests"),
            (posts[i], "#3b6ea5", "posts"),
        ];
        bars.sort_by_key(|b| Reverse(b.0));
        for (v, fill, what) in bars.into_iter().filter(|b| b.0 > 0) {
            let h = ph * v as f64 / max as f64;
            let _ = write!(
                o,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{at}: {} {what}</title></rect>",
                TOP + ph - h,
                bw.max(0.5),
                thousands(v)
            );
        }
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text><text x=\"{L}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></svg>",
        L - 6.0,
        TOP + 8.0,
        short(max),
        L - 6.0,
        TOP + ph,
        H - 6.0,
        esc(&t(from)),
        W - 16.0,
        H - 6.0,
        esc(&t(from + step * bins as Micros))
    );
    // The busiest hour is one of report.json's; a day's sum is not.
    let busiest = match traffic
        .hours
        .iter()
        .enumerate()
        .max_by_key(|(i, h)| (h.1, Reverse(*i)))
    {
        Some((i, h)) if unit == "hour" => format!(
            " The busiest hour had {} requests.",
            fig(h.1, &format!("report.json:/traffic/per_hour/{i}/requests"))
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        o,
        "<p class=\"note\">Light: requests per {unit}; dark: posts per {unit}, every client together (UTC).{busiest}</p>"
    );
}

/// A table of contents with anchors (the flagged clients too, as many as have a
/// section).
fn contents(
    o: &mut String,
    input: &ReportInput<'_>,
    flagged: &[&ClientResult],
    exempt: &[&ClientResult],
) {
    o.push_str(
        "<nav id=\"contents\"><h2>Contents</h2>\n<ol>\n<li><a href=\"#summary\">Summary</a></li>\n",
    );
    if input.nightly.is_some() {
        o.push_str(
            "<li><a href=\"#state\">Nightly state</a> (<a href=\"#late\">late requests</a>)</li>\n",
        );
    }
    o.push_str("<li><a href=\"#method\">How the damages were computed</a></li>\n<li><a href=\"#clients\">Flagged clients in detail</a>");
    let shown: Vec<&&ClientResult> = flagged
        .iter()
        .chain(exempt)
        .take(MAX_CLIENT_SECTIONS)
        .collect();
    if !shown.is_empty() {
        o.push_str("<ol>");
        for (i, c) in shown.iter().enumerate() {
            let _ = write!(
                o,
                "<li><a href=\"#client-{}\" class=\"key\">{}</a></li>",
                i + 1,
                esc(&c.name)
            );
        }
        o.push_str("</ol>");
    }
    o.push_str("</li>\n<li><a href=\"#population\">Everyone else: the population</a> (<a href=\"#near-misses\">near misses</a>)</li>\n");
    if !input.analysis.leads.is_empty() {
        o.push_str("<li><a href=\"#leads\">Leads: groups over the threshold, no client over it (not billed)</a></li>\n");
    }
    o.push_str("<li><a href=\"#reproduce\">Reproduce</a></li>\n<li><a href=\"#appendix\">Appendix: inputs</a></li>\n</ol></nav>\n");
}

/// With `--state`: the watermark, what is final, and the late requests (never quiet).
fn nightly(o: &mut String, cfg: &Config, n: &Nightly) {
    o.push_str("<h2 id=\"state\">Nightly state</h2>\n<dl class=\"facts\">\n");
    let _ = writeln!(
        o,
        "<dt>Run</dt><dd>run {} of the state in <span class=\"key\">{}</span>{}</dd>",
        n.run,
        esc(&n.dir),
        if n.reset {
            " (started afresh with --state-reset)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "<dt>Watermark</dt><dd>{} (before this run: {}). The logs are taken as complete up to it: it is the oldest of the newest requests of the inputs read in this run, minus the lateness of {}, and it never moves back, so that one server whose logs run ahead cannot make another server&#39;s requests late.</dd>",
        esc(&n.watermark.map_or("none yet".into(), t)),
        esc(&n.previous_watermark.map_or("none".into(), t)),
        esc(&format_duration(cfg.lateness))
    );
    let _ = writeln!(
        o,
        "<dt>Windows</dt><dd>{} billed final in this run, {} provisional (a window is final once its end is at or before the watermark; a provisional window may still grow with later logs).</dd>",
        thousands(n.final_windows_new),
        thousands(n.provisional_windows)
    );
    if let Some(h) = &n.ledger_head {
        let _ = writeln!(
            o,
            "<dt>Ledger</dt><dd>run {}, chain head <span class=\"mono\">{}</span>: each run appends to the state&#39;s ledger an entry holding the previous entry&#39;s hash and the SHA-256 of the state it wrote, so a state rolled back, replaced or edited since is refused.</dd>",
            h.run,
            esc(&h.head)
        );
    }
    o.push_str("</dl>\n<h3 id=\"late\">Late requests</h3>\n");
    if n.late_requests == 0 {
        let _ = writeln!(
            o,
            "<p>No request read in this run was late (older than the previous watermark). Over every run of this state: {} late requests, {} posts not billed.</p>",
            thousands(n.late_requests_all_runs),
            thousands(n.late_posts_all_runs)
        );
        return;
    }
    let _ = writeln!(
        o,
        "<p class=\"late\"><strong>{} requests ({} posts) read in this run were late</strong>: older than the previous watermark {}, by up to {}. They are counted here and never billed, because the windows they fall in were already final. A <code>--lateness</code> of {} would have covered them. Over every run of this state: {} late requests, {} posts not billed.</p>",
        thousands(n.late_requests),
        thousands(n.late_posts),
        esc(&n.previous_watermark.map_or(String::new(), t)),
        esc(n.late_by.as_deref().unwrap_or("0s")),
        esc(n.lateness_needed.as_deref().unwrap_or("")),
        thousands(n.late_requests_all_runs),
        thousands(n.late_posts_all_runs)
    );
    if !n.late_clients.is_empty() {
        o.push_str("<table id=\"late-clients\" class=\"sortable\"><thead><tr><th>Client</th><th class=\"n\">Late requests</th><th class=\"n\">Posts not billed</th><th>Oldest</th><th>Newest</th></tr></thead><tbody>\n");
        for c in n.late_clients.iter().take(MAX_LATE_ROWS) {
            let _ = writeln!(
                o,
                "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.client),
                thousands(c.requests),
                thousands(c.posts),
                t(c.earliest),
                t(c.latest)
            );
        }
        o.push_str("</tbody></table>\n");
        if n.late_clients.len() > MAX_LATE_ROWS {
            let _ = writeln!(
                o,
                "<p class=\"note\">The other {} clients with late requests are listed in report.json (<code>state.late_clients</code>).</p>",
                thousands(n.late_clients.len() - MAX_LATE_ROWS)
            );
        }
    }
    o.push_str("<table id=\"late-inputs\" class=\"sortable\"><thead><tr><th>Input</th><th class=\"n\">Late requests</th><th class=\"n\">Posts not billed</th><th>Oldest</th><th>Newest</th></tr></thead><tbody>\n");
    for f in &n.late_inputs {
        let _ = writeln!(
            o,
            "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.path),
            thousands(f.requests),
            thousands(f.posts),
            t(f.earliest),
            t(f.latest)
        );
    }
    o.push_str("</tbody></table>\n");
}

fn client_kind_words(k: &ClientKind) -> String {
    match k {
        ClientKind::Ip => "the client IP address (IPv6 in its canonical RFC 5952 form, an IPv4-mapped IPv6 address as IPv4)".into(),
        ClientKind::Subnet {
            ipv4_prefix,
            ipv6_prefix,
        } => format!(
            "the client's network: its IPv4 /{ipv4_prefix} or IPv6 /{ipv6_prefix} subnet, written in CIDR form"
        ),
        ClientKind::User => "the authenticated user name logged with the request".into(),
        ClientKind::Ua => "the user agent string sent with the request".into(),
        ClientKind::Field { name } => format!("the logged field <code>{}</code>", esc(name)),
    }
}

fn rounding_words(r: Rounding) -> &'static str {
    match r {
        Rounding::ProRata => "pro rata: rate × posts ÷ per, rounded half up to the cent",
        Rounding::PerStarted => {
            "per started block: every started block of “per” posts is charged in full"
        }
        Rounding::PerFull => "per full block: only complete blocks of “per” posts are charged",
    }
}

fn summary(
    o: &mut String,
    input: &ReportInput<'_>,
    src: &Sources,
    id: &str,
    flagged: &[&ClientResult],
    exempt: &[&ClientResult],
) {
    let cfg = input.cfg;
    let a = input.analysis;
    let tot = Totals::of(input.files, input.skipped.len());
    let window = format_duration(cfg.policy.window);
    o.push_str("<header>\n<h1>Scraping damages report</h1>\n");
    let _ = writeln!(
        o,
        "<p class=\"note\" id=\"report-id\">Report <span class=\"mono\">{}</span> (SHA-256 of violations.csv and clients.csv; see <a href=\"#reproduce\">Reproduce</a>)</p>",
        esc(id)
    );
    let _ = writeln!(
        o,
        "<p class=\"note\">Posts fetched per client in every {} window of the web server access logs, and the liquidated damages of USD {} per {} posts owed for each window with more than {} posts.</p>\n</header>",
        esc(&window),
        fig(cfg.policy.rate, "report.json:/settings/rate_usd"),
        fig(cfg.policy.per, "report.json:/settings/per"),
        fig(cfg.policy.threshold, "report.json:/settings/threshold")
    );
    o.push_str("<h2 id=\"summary\">Summary</h2>\n<dl class=\"facts\">\n");
    let period = match (input.nightly, tot.first_request, tot.last_request) {
        (Some(n), _, _) if n.covered_from.is_some() => format!(
            "{} to {} (UTC, first and last request of the {} inputs read by runs 1 to {} of the nightly state; this run read {})",
            n.covered_from.map_or(String::new(), t),
            n.covered_to.map_or(String::new(), t),
            n.earlier_inputs.len() + tot.files_read,
            n.run,
            plural(tot.files_read as u64, "input", "inputs")
        ),
        (_, Some(f), Some(l)) => format!("{} to {} (UTC, first and last request read)", t(f), t(l)),
        _ => "no request was read".into(),
    };
    let _ = writeln!(o, "<dt>Period covered</dt><dd>{}</dd>", esc(&period));
    if cfg.read.since.is_some() || cfg.read.until.is_some() {
        let _ = writeln!(
            o,
            "<dt>Time range</dt><dd>only requests from {} until {} (exclusive) were counted; {} were outside it</dd>",
            esc(&cfg.read.since.map_or("the beginning".into(), t)),
            esc(&cfg.read.until.map_or("the end".into(), t)),
            fig(tot.out_of_range, "report.json:/totals/out_of_range")
        );
    }
    let _ = writeln!(
        o,
        "<dt>Inputs</dt><dd>{} {} ({} read; {} incomplete, {} unreadable, {} unrecognised, {} skipped: duplicates, excluded, or this run's own folders), {} {}, {} {}, {} {} (listed in the <a href=\"#appendix\">appendix</a> with each file's SHA-256)</dd>",
        fig(tot.files, "report.json:/totals/files"),
        noun(tot.files as u64, "file", "files"),
        fig(tot.files_read, "report.json:/totals/files_read"),
        fig(tot.incomplete, "report.json:/totals/incomplete"),
        fig(tot.unreadable, "report.json:/totals/unreadable"),
        fig(tot.unrecognised, "report.json:/totals/unrecognised"),
        fig(tot.skipped, "report.json:/totals/skipped"),
        fig(tot.lines, "report.json:/totals/lines"),
        noun(tot.lines, "line", "lines"),
        fig(tot.requests, "report.json:/totals/requests"),
        noun(tot.requests, "request", "requests"),
        fig(tot.malformed, "report.json:/totals/malformed"),
        noun(tot.malformed, "malformed line", "malformed lines")
    );
    let bad = input.bad_inputs();
    if !bad.is_empty() {
        let _ = write!(
            o,
            "<dt>Bad inputs</dt><dd>{} (missing, unreadable, unrecognised, incomplete, or too many malformed lines):<ul>",
            fig(bad.len(), "report.json:/totals/bad")
        );
        for (path, why) in bad {
            let _ = write!(
                o,
                "<li><span class=\"key\">{}</span>: {}</li>",
                esc(path),
                esc(why)
            );
        }
        o.push_str("</ul></dd>\n");
    }
    let _ = writeln!(
        o,
        "<dt>Settings</dt><dd>a client is {}; a window breaches with <em>more than</em> {} posts in {}; billed windows are {}; damages are USD {} per {} posts, {}; log format {}.</dd>",
        client_kind_words(&cfg.read.client),
        fig(cfg.policy.threshold, "report.json:/settings/threshold"),
        esc(&window),
        match cfg.policy.mode {
            Mode::Rolling => "rolling (they start at a post)",
            Mode::Calendar => "calendar windows aligned to 00:00 UTC",
        },
        fig(cfg.policy.rate, "report.json:/settings/rate_usd"),
        fig(cfg.policy.per, "report.json:/settings/per"),
        rounding_words(cfg.policy.rounding),
        esc(&cfg.read.format.name())
    );
    let _ = writeln!(
        o,
        "<dt>Clients</dt><dd>{} clients made a request, {} of them fetched a post; {} breached the threshold</dd>",
        fig(a.population.clients, "report.json:/population/clients"),
        fig(a.population.clients_with_posts, "report.json:/population/clients_with_posts"),
        fig(flagged.len(), "report.json:/summary/flagged_clients")
    );
    o.push_str("</dl>\n");
    let total = a.total_damages();
    let billed_posts = flagged.iter().map(|c| c.billed_posts()).sum::<u64>();
    let _ = writeln!(
        o,
        "<p class=\"total\">Total damages: <strong id=\"total-damages\" data-usd=\"{total}\">USD {}</strong> for {} {} in {} {} of {} {}.</p>",
        fig(total, "report.json:/summary/damages_usd"),
        fig(billed_posts, "report.json:/summary/billed_posts"),
        noun(billed_posts, "post", "posts"),
        fig(a.total_windows(), "report.json:/summary/billed_windows"),
        noun(a.total_windows() as u64, "billed window", "billed windows"),
        fig(flagged.len(), "report.json:/summary/flagged_clients"),
        noun(flagged.len() as u64, "client", "clients")
    );
    if !flagged.is_empty() {
        o.push_str("<table id=\"flagged\" class=\"sortable\">\n<thead><tr><th>Client</th><th class=\"n\">Windows</th><th class=\"n\">Posts billed</th><th class=\"n\">Damages (USD)</th><th>Peak window starts</th><th class=\"n\">Peak posts</th></tr></thead>\n<tbody>\n");
        for (i, c) in flagged.iter().enumerate() {
            let name = if i < MAX_CLIENT_SECTIONS {
                format!("<a href=\"#client-{}\">{}</a>", i + 1, esc(&c.name))
            } else {
                esc(&c.name)
            };
            let _ = writeln!(
                o,
                "<tr><td class=\"key\">{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                fig(c.windows.len(), &src.clients_csv(c, "windows")),
                fig(c.billed_posts(), &src.clients_csv(c, "posts")),
                fig(c.damages(), &src.clients_csv(c, "damages_usd")),
                c.peak.map_or(String::new(), |p| t(p.start)),
                fig(c.peak.map_or(0, |p| p.posts), &src.clients_csv(c, "peak_posts"))
            );
        }
        let _ = writeln!(
            o,
            "</tbody>\n<tfoot><tr><th>Total</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th></th><th></th></tr></tfoot>\n</table>",
            fig(a.total_windows(), "report.json:/summary/billed_windows"),
            fig(billed_posts, "report.json:/summary/billed_posts"),
            fig(total, "report.json:/summary/damages_usd")
        );
    }
    if !exempt.is_empty() {
        let _ = writeln!(
            o,
            "<p>{} exempt {} breached the threshold too; their windows are shown below, marked exempt, and are not billed: {}.</p>",
            fig(exempt.len(), "report.json:/summary/exempt_clients"),
            noun(exempt.len() as u64, "client", "clients"),
            exempt
                .iter()
                .map(|c| format!("<span class=\"key\">{}</span>", esc(&c.name)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// `rate × posts / per` as an exact decimal of dollars, with a trailing `…` when cut.
fn exact_amount(posts: u64, cfg: &Config) -> String {
    let num = cfg.policy.rate.micros as u128 * posts as u128; // micro-dollars × per
    let den = cfg.policy.per as u128 * 1_000_000;
    let int = num / den;
    let mut rem = num % den;
    let mut frac = String::new();
    for _ in 0..8 {
        if rem == 0 {
            break;
        }
        rem *= 10;
        frac.push(char::from(b'0' + (rem / den) as u8));
        rem %= den;
    }
    let mut s = thousands(int);
    if !frac.is_empty() {
        s.push('.');
        s.push_str(&frac);
        if rem != 0 {
            s.push('…');
        }
    }
    s
}

fn methodology(o: &mut String, input: &ReportInput<'_>, src: &Sources, flagged: &[&ClientResult]) {
    let cfg = input.cfg;
    let window = esc(&format_duration(cfg.policy.window));
    o.push_str("<h2 id=\"method\">How the damages were computed</h2>\n<ol>\n");
    let post_rule = post_rule_words(input);
    let _ = writeln!(o, "<li><strong>Posts.</strong> {post_rule}</li>");
    let _ = writeln!(
        o,
        "<li><strong>Clients.</strong> Requests are grouped by {}. A request with no such key (empty or <code>-</code>) is counted among the inputs but never billed.</li>",
        client_kind_words(&cfg.read.client)
    );
    let _ = writeln!(
        o,
        "<li><strong>Time.</strong> Every timestamp is converted to UTC. A window is the half-open interval [start, start + {window}): a request exactly {window} after the start belongs to the next window. Each request counts once, in the window its own time falls in.</li>"
    );
    let _ = writeln!(
        o,
        "<li><strong>Threshold.</strong> A window breaches when it holds <em>strictly more</em> than {} posts; exactly {} posts is not a breach.</li>",
        fig(cfg.policy.threshold, "report.json:/settings/threshold"),
        fig(cfg.policy.threshold, "report.json:/settings/threshold")
    );
    match cfg.policy.mode {
        Mode::Rolling => {
            let _ = writeln!(
                o,
                "<li><strong>Billed windows (rolling).</strong> Windows start only at the time of a post. The first billed window starts at the client's earliest post whose {window} window breaches; the next starts at the earliest breaching post at or after the end of the previous one; and so on. Billed windows never overlap, so no post is billed twice, and a breach that spans midnight is caught.</li>"
            );
        }
        Mode::Calendar => {
            let _ = writeln!(
                o,
                "<li><strong>Billed windows (calendar).</strong> Time is cut into fixed windows of {window} aligned to 1970-01-01T00:00:00Z (with 24h: UTC calendar days). Every such window that breaches is billed. A burst that straddles a window boundary may not be caught; the rolling mode would catch it.</li>"
            );
        }
    }
    let _ = writeln!(
        o,
        "<li><strong>Damages.</strong> Each billed window owes USD {} per {} posts on <em>all</em> its posts (not only those over the threshold), {}. Each window is rounded on its own, in exact integer arithmetic; a client owes the sum of its windows.</li>",
        fig(cfg.policy.rate, "report.json:/settings/rate_usd"),
        fig(cfg.policy.per, "report.json:/settings/per"),
        rounding_words(cfg.policy.rounding)
    );
    let _ = writeln!(
        o,
        "<li><strong>Peak window.</strong> For every client, the {window} window (starting at one of its posts) with the most posts; shown for comparison, in either mode.</li>"
    );
    o.push_str("</ol>\n");
    let example = flagged
        .iter()
        .find_map(|c| c.windows.first().map(|w| (c, w)));
    if let Some((c, w)) = example {
        // The engine's figure for this window, explained step by step. The steps in
        // between (class `calc`) are arithmetic on the figures, in no other report.
        let k = w.index - 1;
        let posts = fig(w.posts, &src.window(c, k, "posts", "posts"));
        let damages = fig(w.damages, &src.window(c, k, "damages_usd", "damages_usd"));
        let rate = fig(cfg.policy.rate, "report.json:/settings/rate_usd");
        let per = fig(cfg.policy.per, "report.json:/settings/per");
        let calc = |s: String| format!("<span class=\"calc\">{s}</span>");
        let arithmetic = match cfg.policy.rounding {
            Rounding::ProRata => format!(
                "{rate} × {posts} ÷ {per} = {} → rounded half up to the cent: <strong>USD {damages}</strong>",
                calc(exact_amount(w.posts, cfg)),
            ),
            Rounding::PerStarted => format!(
                "{posts} posts are {} started blocks of {per}; {} × {rate} = <strong>USD {damages}</strong>",
                calc(thousands(w.posts.div_ceil(cfg.policy.per))),
                calc(thousands(w.posts.div_ceil(cfg.policy.per))),
            ),
            Rounding::PerFull => format!(
                "{posts} posts are {} full blocks of {per}; {} × {rate} = <strong>USD {damages}</strong>",
                calc(thousands(w.posts / cfg.policy.per)),
                calc(thousands(w.posts / cfg.policy.per)),
            ),
        };
        let _ = writeln!(
            o,
            "<div class=\"example\" id=\"worked-example\"><p><strong>Worked example.</strong> Client <span class=\"key\">{}</span>, billed window {}: from {} to {} (exclusive). It holds {} posts in {} requests. {} is more than {}, so the window breaches. Damages: {}.</p></div>",
            esc(&c.name),
            fig(w.index, &src.window(c, k, "window", "window")),
            t(w.start),
            t(w.end),
            posts,
            fig(w.requests, &src.window(c, k, "requests", "requests")),
            posts,
            fig(cfg.policy.threshold, "report.json:/settings/threshold"),
            arithmetic
        );
    }
}

/// The post rule in words.
fn post_rule_words(input: &ReportInput<'_>) -> String {
    // report.json's settings carry the rule's description; the default rule is spelt out.
    let rule = settings_json(input)["post_rule"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    if rule.starts_with("default") {
        format!(
            "A request delivered one post when the server answered with a 2xx status or 304 (not modified) and its path (the request target up to <code>?</code>) does not end in a static asset suffix ({}, in any case). Any other request delivered no post; it still counts as a request. Any HTTP method counts.",
            STATIC_EXTENSIONS
                .iter()
                .map(|e| format!("<code>{e}</code>"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    } else {
        match &input.cfg.read.weigher {
            crate::input::post_weight::Weigher::Rules(r) => format!(
                "Post weights come from the rules file <span class=\"key\">{}</span> (SHA-256 <span class=\"mono\">{}</span>, its full text under <a href=\"#reproduce\">Reproduce</a>): the first rule that matches a request gives its weight; a request no rule matches delivered no post and still counts as a request.",
                esc(&r.path),
                esc(&r.sha256)
            ),
            crate::input::post_weight::Weigher::Default => esc(&rule),
        }
    }
}

/// How to reproduce the report: the tool, the command line, every setting in force,
/// the rules file's text and the organisations file's digest.
fn reproduce(o: &mut String, input: &ReportInput<'_>, id: &str) {
    let cfg = input.cfg;
    o.push_str("<h2 id=\"reproduce\">Reproduce</h2>\n<dl class=\"facts\">\n");
    let _ = writeln!(
        o,
        "<dt>Report identifier</dt><dd><span class=\"mono\">{}</span>: the SHA-256 of violations.csv followed by clients.csv (<code>cat violations.csv clients.csv | sha256sum</code>), printed at the foot of every page</dd>",
        esc(id)
    );
    let _ = writeln!(
        o,
        "<dt>Tool</dt><dd>scrapemeter <span class=\"mono\">{}</span></dd>\n<dt>Command line</dt><dd><pre class=\"line\">{}</pre></dd>",
        esc(input.run.version),
        esc(&input.run.command())
    );
    o.push_str("<dt>Settings in force</dt><dd><table class=\"settings\"><tbody>\n");
    if let serde_json::Value::Object(m) = settings_json(input) {
        for (k, v) in m {
            if k == "rules" || k == "orgs" {
                continue;
            }
            let v = match v {
                serde_json::Value::Number(n) => fig(n, &format!("report.json:/settings/{k}")),
                serde_json::Value::String(s) if k == "rate_usd" => {
                    fig(s, "report.json:/settings/rate_usd")
                }
                serde_json::Value::String(s) => format!("<span class=\"mono\">{}</span>", esc(&s)),
                // How the inputs were judged, where a reduce's partials do not all say.
                serde_json::Value::Null if !input.cfg.judging_known && JUDGING.contains(&k.as_str()) => {
                    "not recorded (the map runs judged differently, or made their partials before it was kept)".into()
                }
                serde_json::Value::Null => "none".into(),
                serde_json::Value::Array(a) if a.is_empty() => "none".into(),
                // `exclude`: each glob as given.
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|g| {
                        let g = g.as_str().map_or_else(|| g.to_string(), str::to_string);
                        format!("<span class=\"mono\">{}</span>", esc(&g))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                v => esc(&v.to_string()),
            };
            let _ = writeln!(o, "<tr><th><code>{}</code></th><td>{v}</td></tr>", esc(&k));
        }
    }
    o.push_str("</tbody></table></dd>\n");
    match &cfg.read.weigher {
        crate::input::post_weight::Weigher::Rules(r) => {
            let _ = writeln!(
                o,
                "<dt>Rules file</dt><dd><span class=\"key\">{}</span>, SHA-256 <span class=\"mono\">{}</span>, {} bytes, in full:<pre class=\"line\">{}</pre></dd>",
                esc(&r.path),
                esc(&r.sha256),
                fig(r.text.len(), "report.json:/settings/rules/text#bytes"),
                r.text.lines().map(esc).collect::<Vec<_>>().join("\n")
            );
        }
        crate::input::post_weight::Weigher::Default => {
            o.push_str("<dt>Rules file</dt><dd>none: the default post rule (see Method)</dd>\n");
        }
    }
    match &cfg.read.keyer.orgs {
        Some(orgs) => {
            let _ = writeln!(
                o,
                "<dt>Organisations file</dt><dd><span class=\"key\">{}</span>, SHA-256 <span class=\"mono\">{}</span>, {} bytes, {} rows, {} organisations</dd>",
                esc(&orgs.path),
                esc(&orgs.sha256),
                fig(orgs.size, "report.json:/settings/orgs/size"),
                fig(orgs.rows, "report.json:/settings/orgs/rows"),
                fig(orgs.names.len(), "report.json:/settings/orgs/organisations")
            );
        }
        None => o.push_str("<dt>Organisations file</dt><dd>none</dd>\n"),
    }
    o.push_str("</dl>\n");
}

/// An exact duration from report.json (in microseconds there), written as
/// [`gap_words`] writes it.
fn duration_fig(us: u64, src: &str) -> String {
    format!(
        "<data value=\"{us}\" data-src=\"{}\" data-unit=\"microseconds\">{}</data>",
        esc(src),
        gap_words(us)
    )
}

/// Seconds for a gap: `0.250 s`, `12.0 s`, or `1h2m3s` for long ones.
pub fn gap_words(us: u64) -> String {
    if us < 60 * MICROS_PER_SEC as u64 {
        format!("{:.3} s", us as f64 / MICROS_PER_SEC as f64)
    } else {
        format_duration(us as Micros)
    }
}

fn client_section(o: &mut String, cfg: &Config, src: &Sources, c: &ClientResult, n: usize) {
    let j = src.json(c);
    let _ = writeln!(
        o,
        "<section class=\"client\" id=\"client-{n}\">\n<h3><span class=\"ordinal\">{n}.</span> Client <span class=\"key\">{}</span>{}</h3>",
        esc(&c.name),
        if c.exempt {
            " <span class=\"exempt\">(exempt: not billed)</span>"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "<p>{} {} and {} {} from {} to {}; {} billed {}, {} {} billed, damages <strong>USD {}</strong>.{}</p>",
        fig(c.total_requests, &format!("{j}/total_requests")),
        noun(c.total_requests, "request", "requests"),
        fig(c.total_posts, &format!("{j}/total_posts")),
        noun(c.total_posts, "post", "posts"),
        t(c.first_request),
        t(c.last_request),
        fig(c.windows.len(), &src.clients_csv(c, "windows")),
        noun(c.windows.len() as u64, "window", "windows"),
        fig(c.billed_posts(), &src.clients_csv(c, "posts")),
        noun(c.billed_posts(), "post", "posts"),
        fig(c.damages(), &src.clients_csv(c, "damages_usd")),
        c.peak.map_or(String::new(), |p| format!(
            " Peak {} window: {} posts from {}.",
            esc(&format_duration(cfg.policy.window)),
            fig(p.posts, &format!("{j}/peak/posts")),
            t(p.start)
        ))
    );
    chart(o, cfg, c);
    hourly(o, src, c);
    // Rate profile.
    let p = rate_profile(&c.buckets);
    let _ = writeln!(
        o,
        "<table class=\"profile\"><thead><tr><th>Rate profile</th><th class=\"n\">p50</th><th class=\"n\">p90</th><th class=\"n\">p99</th><th class=\"n\">max</th></tr></thead><tbody>\n<tr><td>Requests per active minute ({} minutes)</td><td class=\"n\">≈ {}</td><td class=\"n\">≈ {}</td><td class=\"n\">≈ {}</td><td class=\"n\">{}</td></tr>\n<tr><td>Gap between requests</td><td class=\"n\">≈ {}</td><td class=\"n\">≈ {}</td><td class=\"n\">≈ {}</td><td class=\"n\">{}</td></tr>\n</tbody></table>",
        fig(p.active_minutes, &format!("{j}/rate_profile/active_minutes")),
        approx(p.requests_per_minute.p50),
        approx(p.requests_per_minute.p90),
        approx(p.requests_per_minute.p99),
        fig(
            p.requests_per_minute.max,
            &format!("{j}/rate_profile/requests_per_minute/max")
        ),
        gap_words(p.gap_micros.p50),
        gap_words(p.gap_micros.p90),
        gap_words(p.gap_micros.p99),
        duration_fig(
            p.gap_micros.max,
            &format!("{j}/rate_profile/gap_micros/max")
        ),
    );
    o.push_str("<p class=\"note\">Requests per active minute: the client&#39;s requests in each minute in which it made at least one. Gap: the time between two consecutive requests. p50, p90 and p99 are approximate (a histogram of <span class=\"const\">3</span> significant figures; gaps rounded to the precision the logs were written at); max is exact.</p>\n");
    // Windows.
    o.push_str("<table class=\"windows sortable\"><thead><tr><th class=\"n\">Window</th><th>Start (UTC)</th><th>End (UTC, exclusive)</th><th class=\"n\">Posts</th><th class=\"n\">Requests</th><th class=\"n\">Damages (USD)</th></tr></thead><tbody>\n");
    for (k, w) in c.windows.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            fig(w.index, &src.window(c, k, "window", "window")),
            t(w.start),
            t(w.end),
            fig(w.posts, &src.window(c, k, "posts", "posts")),
            fig(w.requests, &src.window(c, k, "requests", "requests")),
            if c.exempt {
                "exempt".into()
            } else {
                fig(w.damages, &src.window(c, k, "damages_usd", "damages_usd"))
            }
        );
    }
    o.push_str("</tbody></table>\n");
    members(o, c, &j);
    tops(o, c, &j);
    breakdown(o, cfg, c, &j);
    evidence(o, src, c);
    o.push_str("</section>\n");
}

/// The organisation's top member keys (own client keys before the mapping).
fn members(o: &mut String, c: &ClientResult, j: &str) {
    let Some(members) = &c.members else {
        return;
    };
    if members.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<table class=\"members sortable\"><thead><tr><th>Top member keys (of the organisation)</th><th class=\"n\">Posts</th></tr></thead><tbody>"
    );
    for (i, m) in members.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&m.key),
            fig(m.posts, &format!("{j}/members/{i}/posts"))
        );
    }
    let _ = writeln!(
        o,
        "</tbody></table>\n<p class=\"note\">The {} member keys that contributed most posts over the whole run (not only the billed windows).</p>",
        constant(crate::engine::members::TOP_MEMBERS)
    );
}

/// The client's top paths and user agents (from the second read).
fn tops(o: &mut String, c: &ClientResult, j: &str) {
    let Some(tops) = &c.tops else {
        return;
    };
    if tops.paths.is_empty() {
        o.push_str("<p class=\"note\">Top paths and user agents: none found in the files read again (standard input cannot be read again; with --state, only this run&#39;s inputs are read).</p>\n");
        return;
    }
    o.push_str("<table class=\"tops sortable\"><thead><tr><th>Top paths (digits as {n}, no query)</th><th class=\"n\">Requests</th></tr></thead><tbody>\n");
    for (i, p) in tops.paths.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&p.path),
            fig(p.requests, &format!("{j}/top_paths/{i}/requests"))
        );
    }
    o.push_str("</tbody></table>\n<table class=\"tops sortable\"><thead><tr><th>Top user agents</th><th class=\"n\">Requests</th></tr></thead><tbody>\n");
    for (i, u) in tops.user_agents.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&u.user_agent),
            fig(u.requests, &format!("{j}/top_user_agents/{i}/requests"))
        );
    }
    let _ = writeln!(
        o,
        "</tbody></table>\n<p class=\"note\">The {} paths and user agents with most requests over the whole run (every request, whatever its post weight).{}</p>",
        constant(crate::engine::tops::TOP),
        if tops.exact {
            String::new()
        } else {
            format!(
                " More than {} distinct values were seen: the rarest were dropped to bound memory, and these counts may be low.",
                constant(crate::engine::tops::MAX_DISTINCT)
            )
        }
    );
}

/// The client's requests and posts by status class and by rule, and the spellings it
/// was logged as (from the second read).
fn breakdown(o: &mut String, cfg: &Config, c: &ClientResult, j: &str) {
    let Some(b) = &c.breakdown else {
        return;
    };
    if b.by_status.is_empty() {
        return;
    }
    o.push_str("<table class=\"by-status sortable\"><thead><tr><th>Requests by status class</th><th class=\"n\">Requests</th><th class=\"n\">Posts</th></tr></thead><tbody>\n");
    for (i, r) in b.by_status.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            r.class,
            fig(r.requests, &format!("{j}/by_status/{i}/requests")),
            fig(r.posts, &format!("{j}/by_status/{i}/posts"))
        );
    }
    let _ = writeln!(
        o,
        "</tbody></table>\n<p class=\"note\">Every request of the client read again, by the class of its response status, with the posts it weighed: {}</p>",
        match &cfg.read.weigher {
            crate::input::post_weight::Weigher::Default =>
                "by the default rule, a 2xx or 304 response to a path that is not a static asset is 1 post, any other request 0.",
            crate::input::post_weight::Weigher::Rules(_) =>
                "by the rules file, the first matching rule gives the weight (see the table by rule).",
        }
    );
    if let Some(rules) = &b.by_rule {
        o.push_str("<table class=\"by-rule sortable\"><thead><tr><th>Requests by rule</th><th class=\"n\">Requests</th><th class=\"n\">Posts</th></tr></thead><tbody>\n");
        for (i, r) in rules.iter().enumerate() {
            let name = match &r.rule {
                Some(n) => format!("<span class=\"mono\">{}</span>", esc(n)),
                None => "(no rule matched: <span class=\"const\">0</span> posts)".to_string(),
            };
            let _ = writeln!(
                o,
                "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                fig(r.requests, &format!("{j}/by_rule/{i}/requests")),
                fig(r.posts, &format!("{j}/by_rule/{i}/posts"))
            );
        }
        o.push_str("</tbody></table>\n");
    }
    let l = &b.logged_as;
    o.push_str("<table class=\"logged-as sortable\"><thead><tr><th>Logged as</th><th class=\"n\">Requests</th></tr></thead><tbody>\n");
    for (i, s) in l.spellings.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&s.spelling),
            fig(s.requests, &format!("{j}/logged_as/{i}/requests"))
        );
    }
    if l.other_requests > 0 {
        let _ = writeln!(
            o,
            "<tr><td>{} other spellings{}</td><td class=\"n\">{}</td></tr>",
            if l.exact {
                fig(
                    l.other_spellings,
                    &format!("{j}/logged_as_others/spellings"),
                )
            } else {
                format!(
                    "at least {}",
                    fig(
                        l.other_spellings,
                        &format!("{j}/logged_as_others/spellings")
                    )
                )
            },
            if l.exact {
                String::new()
            } else {
                format!(
                    " (past the first {} distinct ones, not told apart)",
                    constant(crate::engine::breakdown::KEPT)
                )
            },
            fig(l.other_requests, &format!("{j}/logged_as_others/requests"))
        );
    }
    let _ = writeln!(
        o,
        "</tbody></table>\n<p class=\"note\">The client key as each request logged it, before it was made canonical ({}): these spellings are one and the same client.{}</p>",
        match cfg.read.client {
            crate::input::client::ClientKind::Ip =>
                "the remote address; an IPv4-mapped IPv6 address, brackets, leading zeros and case are taken as the address they write",
            crate::input::client::ClientKind::Subnet { .. } =>
                "the remote address, whose network is the key",
            _ => "the field the key is taken from",
        },
        if l.exact {
            ""
        } else {
            " The counts of the listed spellings may be low: more distinct spellings were seen than are counted one by one."
        }
    );
}

fn evidence_line(o: &mut String, what: &str, e: &Option<Evidence>) {
    match e {
        Some(e) => {
            let _ = writeln!(
                o,
                "<p class=\"label\">{what} request, {}: <span class=\"mono\">{}:{}</span></p>\n<pre class=\"line\">{}</pre>",
                t(e.time),
                esc(&e.file),
                e.line,
                esc(&e.text)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "<p class=\"label\">{what} request: <span class=\"note\">not found (no second read with --no-evidence, or the input was standard input)</span></p>"
            );
        }
    }
}

fn evidence(o: &mut String, src: &Sources, c: &ClientResult) {
    let windows = &c.windows;
    if windows.is_empty() {
        return;
    }
    o.push_str("<h3>Evidence</h3>\n<p class=\"note\">The raw log lines of each window's first and last request, with their file and line number, as logged (bytes that are not UTF-8 shown as \\xHH).</p>\n");
    for (k, w) in windows.iter().enumerate() {
        let _ = writeln!(
            o,
            "<h4>Window {}</h4>",
            fig(w.index, &src.window(c, k, "window", "window"))
        );
        evidence_line(o, "First", &w.evidence.first);
        evidence_line(o, "Last", &w.evidence.last);
    }
}

/// A round, short label for an axis: `1.2M`, `350k`, `12`.
fn short(n: u64) -> String {
    let f = n as f64;
    let (v, unit) = if n >= 1_000_000_000 {
        (f / 1e9, "G")
    } else if n >= 1_000_000 {
        (f / 1e6, "M")
    } else if n >= 10_000 {
        (f / 1e3, "k")
    } else {
        return thousands(n);
    };
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

/// The trailing-window curve with the threshold line and the billed windows shaded.
fn chart(o: &mut String, cfg: &Config, c: &ClientResult) {
    const W: f64 = 800.0;
    const H: f64 = 250.0;
    const L: f64 = 70.0;
    const R: f64 = 16.0;
    const TOP: f64 = 18.0;
    const B: f64 = 36.0;
    let (pw, ph) = (W - L - R, H - TOP - B);
    let from = c.first_request;
    let to = c
        .last_request
        .saturating_add(cfg.policy.window)
        .max(from + 1);
    // With nightly state, the windows settled by earlier runs are drawn from the
    // activity per minute the state keeps for them.
    let series = c.chart.as_deref().unwrap_or(&c.buckets);
    let curve = trailing_envelope(series, cfg.policy.window, from, to, CHART_COLUMNS);
    let top_value = curve
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(cfg.policy.threshold)
        .max(1);
    let ymax = top_value as f64 * 1.1;
    let x = |tm: Micros| L + pw * ((tm - from) as f64 / (to - from) as f64);
    let y = |v: u64| TOP + ph * (1.0 - v as f64 / ymax);
    let _ = writeln!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Posts in the trailing {0} over time for client {1}\" xmlns=\"http://www.w3.org/2000/svg\"><title>Posts in the trailing {0} for client {1}</title>",
        esc(&format_duration(cfg.policy.window)),
        esc(&c.name)
    );
    // Billed windows, shaded.
    for w in &c.windows {
        let (x0, x1) = (x(w.start.max(from)), x(w.end.min(to)));
        let _ = writeln!(
            o,
            "<rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{ph}\" fill=\"{}\" fill-opacity=\"0.35\"/><line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#b03a2e\" stroke-width=\"1\"/><text x=\"{:.1}\" y=\"{:.1}\">window {}</text>",
            (x1 - x0).max(1.0),
            if c.exempt { "#9bd19b" } else { "#f2a3a3" },
            TOP + ph,
            x0 + 3.0,
            TOP + 12.0,
            w.index
        );
    }
    // The curve, as steps over the columns.
    let cw = pw / curve.len() as f64;
    let mut d = format!("M{L:.1},{:.1}", y(0));
    for (i, v) in curve.iter().enumerate() {
        let _ = write!(d, "V{:.1}H{:.1}", y(*v), L + cw * (i + 1) as f64);
    }
    let _ = write!(d, "V{:.1}Z", y(0));
    let _ = writeln!(
        o,
        "<path d=\"{d}\" fill=\"#3b6ea5\" fill-opacity=\"0.3\" stroke=\"#1f4e80\" stroke-width=\"1.2\"/>"
    );
    // Threshold.
    let yt = y(cfg.policy.threshold);
    let _ = writeln!(
        o,
        "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{yt:.1}\" y2=\"{yt:.1}\" stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"thr\">threshold {}</text>",
        L + pw,
        L + pw - 4.0,
        yt - 4.0,
        esc(&thousands(cfg.policy.threshold))
    );
    // Axes and labels.
    let _ = writeln!(
        o,
        "<line x1=\"{L}\" x2=\"{L}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#333\"/><line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
        TOP + ph,
        L + pw,
        TOP + ph,
        TOP + ph
    );
    for v in [0, top_value / 2, top_value] {
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><line x1=\"{:.1}\" x2=\"{L}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
            L - 6.0,
            y(v) + 4.0,
            short(v),
            L - 3.0,
            y(v),
            y(v)
        );
    }
    for k in 0..=4 {
        let tm = from + ((to - from) as i128 * k / 4) as Micros;
        let label = format_rfc3339(tm - tm.rem_euclid(MICROS_PER_SEC));
        // `2026-10-10 13:55` (UTC).
        let label = label[..16].replacen('T', " ", 1);
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(tm),
            TOP + ph + 16.0,
            esc(&label)
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC)</text></svg>",
        L + pw / 2.0,
        H - 4.0
    );
    let _ = writeln!(
        o,
        "<p class=\"note\">Blue: posts in the {0} up to each moment (the largest value in each of {1} slices of the time axis, so no peak is missed). Dashed red: the threshold. Shaded: the billed windows; the curve at the right edge of a shaded window is that window's posts.</p>",
        esc(&format_duration(cfg.policy.window)),
        constant(CHART_COLUMNS)
    );
    if c.chart.is_some() {
        o.push_str("<p class=\"note\">Drawn from what the nightly state keeps: for each window billed final, its posts per minute (each minute&#39;s posts at its first instant, so the curve at the window&#39;s end is its posts); elsewhere, every request of the last window before the watermark. Activity outside these is not kept.</p>\n");
    }
}

/// Posts per hour over each billed window (hours counted from the window's start), as
/// bars: when in its window the client fetched its posts. Exact: the bars of a window
/// add up to its posts.
fn hourly(o: &mut String, src: &Sources, c: &ClientResult) {
    const HOUR: Micros = 3_600 * MICROS_PER_SEC;
    const W: f64 = 800.0;
    const H: f64 = 120.0;
    const L: f64 = 70.0;
    const TOP: f64 = 14.0;
    const B: f64 = 22.0;
    let series = c.chart.as_deref().unwrap_or(&c.buckets);
    if series.is_empty() {
        return;
    }
    for (k, w) in c.windows.iter().enumerate() {
        let hours = ((w.end - w.start + HOUR - 1) / HOUR).clamp(1, 24 * 31) as usize;
        let mut bins = vec![0u64; hours];
        let from = series.partition_point(|b| b.t < w.start);
        for b in series[from..].iter().take_while(|b| b.t < w.end) {
            bins[(((b.t - w.start) / HOUR) as usize).min(hours - 1)] += b.posts;
        }
        let max = bins.iter().copied().max().unwrap_or(0).max(1);
        let (pw, ph) = (W - L - 16.0, H - TOP - B);
        let bw = pw / hours as f64;
        let _ = writeln!(
            o,
            "<svg class=\"hourly\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Posts per hour in billed window {0}\" xmlns=\"http://www.w3.org/2000/svg\"><title>Posts per hour in billed window {0}</title>",
            w.index
        );
        for (i, &v) in bins.iter().enumerate() {
            let h = ph * v as f64 / max as f64;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#3b6ea5\"><title>hour {} from the window&#39;s start: {} posts</title></rect>",
                L + bw * i as f64 + 1.0,
                TOP + ph - h,
                (bw - 2.0).max(1.0),
                i + 1,
                thousands(v)
            );
        }
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text><text x=\"{L}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} (UTC)</text></svg>",
            L - 6.0,
            TOP + 8.0,
            short(max),
            L - 6.0,
            TOP + ph,
            H - 6.0,
            esc(&t(w.start)),
            W - 16.0,
            H - 6.0,
            esc(&t(w.end))
        );
        let _ = writeln!(
            o,
            "<p class=\"note\">Window {}: posts per hour from its start, one bar an hour (the scale on the left); they add up to its {} posts.</p>",
            fig(w.index, &src.window(c, k, "window", "window")),
            fig(w.posts, &src.window(c, k, "posts", "posts"))
        );
    }
}

/// `[0,1)` → `0`, `[1,10)` → `1–9`, `[1000000,10000000)` → `1M–10M`.
fn decade_label(lo: u64, hi: u64) -> String {
    match lo {
        0 => "0".into(),
        1 => "1–9".into(),
        10 => "10–99".into(),
        100 => "100–999".into(),
        _ => format!("{}–{}", short(lo), short(hi)),
    }
}

fn population(o: &mut String, input: &ReportInput<'_>, flagged: usize) {
    let cfg = input.cfg;
    let pop = &input.analysis.population;
    o.push_str("<h2 id=\"population\">Everyone else: the population</h2>\n");
    let _ = writeln!(
        o,
        "<p>{} clients made at least one request. Each is counted once below, in the band of its peak {} posts (bands of powers of ten, exact counts). The threshold is marked; {} clients are beyond it.</p>",
        fig(pop.clients, "report.json:/population/clients"),
        esc(&format_duration(cfg.policy.window)),
        fig(flagged, "report.json:/population/clients_over_threshold")
    );
    if pop.decades.is_empty() {
        return;
    }
    // Every band from 0 up to the highest one seen.
    let top_lo = pop.decades.last().map_or(0, |d| d.0);
    let mut bands: Vec<(u64, u64, u64)> = vec![(0, 1, 0)];
    let mut lo = 1u64;
    while lo <= top_lo.max(1) {
        bands.push((lo, lo.saturating_mul(10), 0));
        if lo > u64::MAX / 10 {
            break;
        }
        lo *= 10;
    }
    // Make sure the band holding the threshold is drawn.
    while bands.last().is_some_and(|b| b.1 <= cfg.policy.threshold) && bands.len() < 21 {
        let last = bands.last().expect("non-empty").1;
        bands.push((last, last.saturating_mul(10), 0));
    }
    for d in &pop.decades {
        if let Some(b) = bands.iter_mut().find(|b| b.0 == d.0) {
            b.2 = d.2;
        }
    }
    const H: f64 = 240.0;
    const L: f64 = 20.0;
    const TOP: f64 = 22.0;
    const B: f64 = 40.0;
    let bw = 64.0;
    let w = L * 2.0 + bw * bands.len() as f64;
    let ph = H - TOP - B;
    let max_n = bands.iter().map(|b| b.2).max().unwrap_or(1).max(1);
    let scale = |n: u64| ph * ((n as f64 + 1.0).ln() / (max_n as f64 + 1.0).ln());
    let _ = writeln!(
        o,
        "<svg class=\"population\" viewBox=\"0 0 {w} {H}\" width=\"{w}\" height=\"{H}\" role=\"img\" aria-label=\"Clients by peak-window posts, log scale\" xmlns=\"http://www.w3.org/2000/svg\"><title>Clients by peak-window posts</title>"
    );
    for (i, &(lo, hi, n)) in bands.iter().enumerate() {
        let x0 = L + bw * i as f64;
        let h = scale(n);
        let over = lo >= cfg.policy.threshold;
        let _ = writeln!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x0 + 4.0,
            TOP + ph - h,
            bw - 8.0,
            if over { "#c0392b" } else { "#7f9cbf" },
            x0 + bw / 2.0,
            TOP + ph - h - 4.0,
            thousands(n),
            x0 + bw / 2.0,
            TOP + ph + 15.0,
            decade_label(lo, hi)
        );
    }
    // The threshold, placed on the log axis inside its band.
    let pos = match bands
        .iter()
        .position(|b| cfg.policy.threshold >= b.0 && cfg.policy.threshold < b.1)
    {
        Some(0) => 1.0,
        Some(i) => {
            let lo = bands[i].0 as f64;
            i as f64 + ((cfg.policy.threshold as f64) / lo).log10().clamp(0.0, 1.0)
        }
        None => bands.len() as f64,
    };
    let xt = L + bw * pos;
    let _ = writeln!(
        o,
        "<line x1=\"{xt:.1}\" x2=\"{xt:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c0392b\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/><text x=\"{xt:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"thr\">threshold {}</text>",
        TOP - 4.0,
        TOP + ph,
        TOP - 8.0,
        thousands(cfg.policy.threshold)
    );
    let _ = writeln!(
        o,
        "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">peak {} posts (log scale); bar heights on a log scale, counts written above</text></svg>",
        w - L,
        TOP + ph,
        TOP + ph,
        w / 2.0,
        H - 6.0,
        esc(&format_duration(cfg.policy.window))
    );
    let h = &pop.peak_posts;
    if !h.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"note\">Peak {} posts per client: median ≈ {}, 90th percentile ≈ {}, 99th percentile ≈ {} (approximate: a histogram of <span class=\"const\">3</span> significant figures); highest {} (exact).</p>",
            esc(&format_duration(cfg.policy.window)),
            approx(h.value_at_quantile(0.5)),
            approx(h.value_at_quantile(0.9)),
            approx(h.value_at_quantile(0.99)),
            fig(pop.peak_max, "report.json:/population/peak_posts/max")
        );
    }
}

/// The clients with the highest peaks below the threshold, with their peak windows.
fn near_misses(o: &mut String, input: &ReportInput<'_>) {
    let near = &input.analysis.population.near_misses;
    o.push_str("<h3 id=\"near-misses\">Near misses</h3>\n");
    if near.is_empty() {
        o.push_str("<p>No other client fetched a post.</p>\n");
        return;
    }
    let _ = writeln!(
        o,
        "<p class=\"note\">The {} clients with the most posts in one {} window that billed no window (highest first); none of them is billed.</p>",
        fig(near.len(), "report.json:/population/near_misses#length"),
        esc(&format_duration(input.cfg.policy.window))
    );
    o.push_str("<table id=\"near\" class=\"sortable\"><thead><tr><th>Client</th><th class=\"n\">Peak posts</th><th class=\"n\">Requests</th><th>Peak window starts</th><th>Ends</th></tr></thead><tbody>\n");
    for (i, m) in near.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.client),
            fig(m.peak.posts, &format!("report.json:/population/near_misses/{i}/peak_posts")),
            fig(m.peak.requests, &format!("report.json:/population/near_misses/{i}/peak_requests")),
            t(m.peak.start),
            t(m.peak.start.saturating_add(input.cfg.policy.window))
        );
    }
    o.push_str("</tbody></table>\n");
}

fn appendix(o: &mut String, input: &ReportInput<'_>) {
    o.push_str("<h2 id=\"appendix\">Appendix: inputs</h2>\n<p class=\"note\">Every input read, sorted by path, with the SHA-256 of its bytes as stored (compressed), so that a reader can check that the same files are meant.</p>\n");
    o.push_str("<table class=\"inputs sortable\"><thead><tr><th>File</th><th class=\"n\">Bytes</th><th>Kind</th><th class=\"n\">Lines</th><th class=\"n\">Requests</th><th class=\"n\">Malformed</th><th>Complete</th><th>SHA-256</th></tr></thead><tbody>\n");
    for (i, f) in input.files.iter().enumerate() {
        let at = format!("report.json:/inputs/{i}");
        let kind = format!(
            "{}{}",
            f.compression
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            f.format
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default()
        );
        let state = match (&f.status, f.complete) {
            (crate::input::reader::FileStatus::Read, true) => "yes".to_string(),
            (crate::input::reader::FileStatus::Read, false) => "no: ends early".to_string(),
            (crate::input::reader::FileStatus::Unreadable, _) => "unreadable".to_string(),
            (crate::input::reader::FileStatus::Unrecognised, _) => {
                "format not recognised".to_string()
            }
        };
        let _ = writeln!(
            o,
            "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}{}</td><td class=\"mono\">{}</td></tr>",
            esc(&f.path),
            f.size
                .map(|n| fig(n, &format!("{at}/size")))
                .unwrap_or_default(),
            esc(&kind),
            fig(f.lines, &format!("{at}/lines")),
            fig(f.requests, &format!("{at}/requests")),
            fig(f.malformed, &format!("{at}/malformed")),
            esc(&state),
            f.error
                .as_deref()
                .map(|e| format!(" <span class=\"note\">({})</span>", esc(e)))
                .unwrap_or_default(),
            esc(f.sha256.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</tbody></table>\n");
    if let Some(n) = input.nightly.filter(|n| !n.earlier_inputs.is_empty()) {
        o.push_str("<h3 id=\"earlier-inputs\">Inputs read by earlier runs of the nightly state</h3>\n<p class=\"note\">The windows and figures carried from earlier runs come from these inputs, as each run recorded them.</p>\n");
        o.push_str("<table class=\"inputs sortable\"><thead><tr><th>File</th><th class=\"n\">Run</th><th class=\"n\">Bytes</th><th>First request</th><th>Last request</th><th>SHA-256</th></tr></thead><tbody>\n");
        for r in &n.earlier_inputs {
            let _ = writeln!(
                o,
                "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                esc(&r.path),
                r.run,
                thousands(r.size),
                r.first_request.map_or(String::new(), t),
                r.last_request.map_or(String::new(), t),
                esc(&r.sha256)
            );
        }
        o.push_str("</tbody></table>\n");
    }
    if !input.skipped.is_empty() {
        o.push_str("<h3>Skipped</h3>\n<ul>\n");
        for s in input.skipped {
            let _ = writeln!(
                o,
                "<li><span class=\"key\">{}</span>: {}{}</li>",
                esc(&s.path),
                esc(&s.reason),
                s.same_as
                    .as_deref()
                    .map(|p| format!(", same as <span class=\"key\">{}</span>", esc(p)))
                    .unwrap_or_default()
            );
        }
        o.push_str("</ul>\n");
    }
    let with_examples: Vec<_> = input
        .files
        .iter()
        .filter(|f| !f.malformed_examples.is_empty())
        .collect();
    if !with_examples.is_empty() {
        o.push_str("<h3>Malformed lines (first examples per file)</h3>\n");
        for f in with_examples {
            for m in &f.malformed_examples {
                let _ = writeln!(
                    o,
                    "<p><span class=\"mono\">{}:{}</span>: {}</p>\n<pre class=\"line\">{}</pre>",
                    esc(&f.path),
                    m.line,
                    esc(&m.reason),
                    esc(&m.text)
                );
            }
        }
    }
}

/// Leads shown on the page per grouping (all are in report.json).
const MAX_LEADS_SHOWN: usize = 50;

/// `--also-by`: the groups whose combined posts breach while none of their clients
/// does on its own, with their clients; facts only, never billed.
fn leads(o: &mut String, input: &ReportInput<'_>) {
    use crate::engine::groups::GroupBy;
    let leads = &input.analysis.leads;
    if leads.is_empty() {
        return;
    }
    let window = input.cfg.policy.window;
    let w = esc(&format_duration(window));
    o.push_str(
        "<h2 id=\"leads\">Leads: groups over the threshold, no client over it (not billed)</h2>\n",
    );
    let _ = writeln!(
        o,
        "<p class=\"note\">Requests were also grouped (<code>--also-by</code>). Each group listed here has more than {} posts in one {w} window taken together, while none of its clients has a window over the threshold on its own. These are leads for investigation only: they are not billed, and are not in violations.csv, clients.csv or any damages figure above. The amount shown is what the group would owe if it were billed as one client.</p>",
        fig(input.cfg.policy.threshold, "report.json:/settings/threshold")
    );
    for (gi, g) in leads.iter().enumerate() {
        let at = format!("report.json:/leads/groupings/{gi}");
        let (id, title) = match g.by {
            GroupBy::Subnet {
                ipv4_prefix,
                ipv6_prefix,
            } => (
                "subnet",
                format!(
                    "By network (IPv4 /{}, IPv6 /{})",
                    fig(ipv4_prefix, &format!("{at}/ipv4_prefix")),
                    fig(ipv6_prefix, &format!("{at}/ipv6_prefix"))
                ),
            ),
            GroupBy::Ua => ("ua", "By user agent (the string as logged)".to_string()),
        };
        // `title` is markup: the tool's words and figures.
        let _ = writeln!(o, "<h3 id=\"leads-{id}\">{title}</h3>");
        let groups = fig(g.groups, &format!("{at}/groups"));
        let over = fig(g.over_threshold, &format!("{at}/groups_over_threshold"));
        let with_member = fig(
            g.with_breaching_member,
            &format!("{at}/groups_with_a_member_over_threshold"),
        );
        let leads_n = fig(g.leads.len(), &format!("{at}/leads#length"));
        let _ = writeln!(
            o,
            "<p>{groups} {} with requests; {over} over the threshold taken together, of which {with_member} {} a client over the threshold on its own (billed or exempt in its own right, so not listed); {leads_n} {}.</p>",
            noun(g.groups, "group", "groups"),
            noun(g.with_breaching_member, "has", "have"),
            noun(g.leads.len() as u64, "lead", "leads"),
        );
        if g.leads.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "<table class=\"leads\" id=\"leads-{id}-table\"><thead><tr><th>Group</th><th class=\"n\">Clients</th><th class=\"n\">Peak posts</th><th>Peak window starts</th><th>Ends</th><th class=\"n\">Windows if one client</th><th class=\"n\">USD if one client</th></tr></thead><tbody>"
        );
        for (li, l) in g.leads.iter().take(MAX_LEADS_SHOWN).enumerate() {
            let at = format!("{at}/leads/{li}");
            let _ = writeln!(
                o,
                "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&l.name),
                fig(l.members_total, &format!("{at}/members_total")),
                fig(l.peak.posts, &format!("{at}/peak/posts")),
                t(l.peak.start),
                t(l.peak.start.saturating_add(window)),
                fig(l.windows.len(), &format!("{at}/if_billed_as_one_client/windows#length")),
                fig(l.damages(), &format!("{at}/if_billed_as_one_client/damages_usd"))
            );
        }
        o.push_str("</tbody></table>\n");
        if g.leads.len() > MAX_LEADS_SHOWN {
            let _ = writeln!(
                o,
                "<p class=\"note\">The first {} of the {} leads are shown; all are in report.json (<code>leads</code>).</p>",
                constant(MAX_LEADS_SHOWN),
                fig(g.leads.len(), &format!("{at}/leads#length"))
            );
        }
        for (li, l) in g.leads.iter().take(MAX_LEADS_SHOWN).enumerate() {
            let at = format!("{at}/leads/{li}");
            let _ = writeln!(
                o,
                "<h4>Clients of <span class=\"key\">{}</span>{}</h4>",
                esc(&l.name),
                if l.members_total > l.members.len() {
                    format!(
                        " (the {} with the highest own peaks, of {})",
                        constant(l.members.len()),
                        fig(l.members_total, &format!("{at}/members_total"))
                    )
                } else {
                    String::new()
                }
            );
            o.push_str("<table class=\"members\"><thead><tr><th>Client</th><th class=\"n\">Own peak posts</th><th>Own peak starts</th><th class=\"n\">Posts in all</th><th class=\"n\">Requests in all</th></tr></thead><tbody>\n");
            for (mi, m) in l.members.iter().enumerate() {
                let at = format!("{at}/members/{mi}");
                let _ = writeln!(
                    o,
                    "<tr><td class=\"key\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    esc(&m.name),
                    m.peak.map_or(String::new(), |p| fig(p.posts, &format!("{at}/peak/posts"))),
                    m.peak.map_or(String::new(), |p| t(p.start)),
                    fig(m.total_posts, &format!("{at}/total_posts")),
                    fig(m.total_requests, &format!("{at}/total_requests"))
                );
            }
            o.push_str("</tbody></table>\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        let payload = "\"><img src=x onerror=alert(1)><script>alert(2)</script>";
        let e = esc(payload);
        assert_eq!(
            e,
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
        );
        assert!(!e.contains('<') && !e.contains('>') && !e.contains('"'));
        assert_eq!(esc("a&b 'c'"), "a&amp;b &#39;c&#39;");
        assert_eq!(esc("bell\u{7}"), "bell\\u{7}");
        assert_eq!(esc("caf\u{e9} \\xff"), "caf\u{e9} \\xff");
    }

    #[test]
    fn exact_amounts_and_labels() {
        assert_eq!(short(1_500_000), "1.5M");
        assert_eq!(short(999), "999");
        assert_eq!(decade_label(1_000_000, 10_000_000), "1M–10M");
    }
}
