//! `report.json`: everything, machine-readable and deterministic (but for `run`).

use super::ReportInput;
use crate::engine::bill::{BilledWindow, ClientResult};
use crate::engine::groups::GroupBy;
use crate::engine::time::{format_duration, format_rfc3339, Micros, MICROS_PER_SEC};
use crate::engine::window::Span;
use crate::input::post_weight::Weigher;
use crate::input::reader::{FileReport, FileStatus};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::time::opt_time;

/// Input totals, shared by the JSON report and the terminal summary.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Totals {
    pub files: usize,
    pub files_read: usize,
    pub unreadable: usize,
    pub unrecognised: usize,
    pub incomplete: usize,
    /// Bad inputs: missing, unreadable, unrecognised, incomplete, or over the
    /// malformed share (each named in `bad_inputs`).
    pub bad: usize,
    pub skipped: usize,
    pub bytes: u64,
    pub lines: u64,
    pub requests: u64,
    pub posts: u64,
    pub malformed: u64,
    pub out_of_range: u64,
    pub no_client: u64,
    pub blank: u64,
    pub comments: u64,
    #[serde(serialize_with = "opt_time")]
    pub first_request: Option<Micros>,
    #[serde(serialize_with = "opt_time")]
    pub last_request: Option<Micros>,
}

/// The traffic of every input read, together.
pub fn traffic_of(files: &[FileReport]) -> crate::engine::traffic::Traffic {
    let mut t = crate::engine::traffic::Traffic::default();
    for f in files {
        t.merge(&f.traffic);
    }
    t
}

impl Totals {
    pub fn of(files: &[FileReport], skipped: usize) -> Totals {
        let mut t = Totals {
            files: files.len(),
            skipped,
            ..Default::default()
        };
        for f in files {
            match f.status {
                FileStatus::Read => t.files_read += 1,
                FileStatus::Unreadable => t.unreadable += 1,
                FileStatus::Unrecognised => t.unrecognised += 1,
            }
            if f.status == FileStatus::Read && !f.complete {
                t.incomplete += 1;
            }
            t.bad += usize::from(f.is_bad());
            t.bytes += f.size.unwrap_or(0);
            t.lines += f.lines;
            t.requests += f.requests;
            t.posts += f.posts;
            t.malformed += f.malformed;
            t.out_of_range += f.out_of_range;
            t.no_client += f.no_client;
            t.blank += f.blank;
            t.comments += f.comments;
            t.first_request = min_opt(t.first_request, f.first_request);
            t.last_request = max_opt(t.last_request, f.last_request);
        }
        t
    }
}

fn min_opt(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    a.into_iter().chain(b).min()
}
fn max_opt(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    a.into_iter().chain(b).max()
}

/// A window of `window` from `p.start` with its posts and requests, as report.json
/// and `explain --json` give a peak: `{"start", "end", "posts", "requests"}`.
pub fn span_json(p: &Span, window: Micros) -> Value {
    json!({
        "start": format_rfc3339(p.start),
        "end": format_rfc3339(p.start.saturating_add(window)),
        "posts": p.posts,
        "requests": p.requests,
    })
}

/// A billed window as report.json and `explain --json` give it: its number, start, end,
/// posts, requests and damages (each adds its own fields: every object's keys are
/// written in alphabetical order).
pub fn window_json(w: &BilledWindow) -> Value {
    json!({
        "window": w.index,
        "start": format_rfc3339(w.start),
        "end": format_rfc3339(w.end),
        "posts": w.posts,
        "requests": w.requests,
        "damages_usd": w.damages,
    })
}

fn client_json(c: &ClientResult, window: Micros) -> Value {
    let mut v = json!({
        "client": c.name,
        "exempt": c.exempt,
        "windows": c.windows.iter().map(|w| {
            let mut v = window_json(w);
            v["last_request"] = json!(format_rfc3339(w.last_request));
            v["evidence"] = json!(w.evidence);
            v["status"] = json!(w.status);
            v["new_in_this_run"] = json!(w.new_in_this_run);
            v
        }).collect::<Vec<_>>(),
        "billed_posts": c.billed_posts(),
        "billed_requests": c.billed_requests(),
        "damages_usd": c.damages(),
        "peak": c.peak.map(|p| span_json(&p, window)),
        "total_posts": c.total_posts,
        "total_requests": c.total_requests,
        // As report.html and `explain --json` show it: p50 to p99 approximate, max exact.
        "rate_profile": crate::engine::rate_profile::rate_profile(&c.buckets),
        "first_request": format_rfc3339(c.first_request),
        "last_request": format_rfc3339(c.last_request),
    });
    if let (Some(members), Some(o)) = (&c.members, v.as_object_mut()) {
        o.insert("members".into(), json!(members));
    }
    // The same lists as `scrapemeter explain --json` prints.
    if let (Some(tops), Some(o)) = (&c.tops, v.as_object_mut()) {
        o.insert("top_paths".into(), json!(tops.paths));
        o.insert("top_user_agents".into(), json!(tops.user_agents));
        o.insert("tops_exact".into(), json!(tops.exact));
    }
    if let (Some(b), Some(o)) = (&c.breakdown, v.as_object_mut()) {
        o.insert("logged_as".into(), json!(b.logged_as.spellings));
        o.insert(
            "logged_as_others".into(),
            json!({
                "spellings": b.logged_as.other_spellings,
                "requests": b.logged_as.other_requests,
            }),
        );
        o.insert("logged_as_exact".into(), json!(b.logged_as.exact));
        o.insert("by_status".into(), json!(b.by_status));
        if let Some(rules) = &b.by_rule {
            o.insert("by_rule".into(), json!(rules));
        }
    }
    v
}

/// The settings that say how the inputs were judged: null in a reduce's report where
/// its partials do not all say (see `Config::judging_known`).
pub const JUDGING: [&str; 5] = [
    "strict",
    "strict_lines",
    "max_malformed",
    "allow_missing",
    "exclude",
];

/// Every setting that decides what the reports say: what was read and how, how a bad
/// input is judged (`strict`, `strict_lines`, `max_malformed`, `allow_missing`), what
/// was left out (`exclude`, the globs as given), whether the second read ran
/// (`evidence`), and the billing policy; with the inputs manifest, enough to run it
/// again. `--threads` is in `run` only: the reports are the same whatever it is.
pub fn settings_json(input: &ReportInput<'_>) -> Value {
    let mut settings = policy_and_reading_json(input);
    if !input.cfg.judging_known {
        for key in JUDGING {
            settings[key] = Value::Null;
        }
    }
    // Only with `--also-by`, so that a run without it writes what it always did.
    let also_by = &input.cfg.read.also_by;
    if !also_by.is_empty() {
        settings["also_by"] = json!(also_by.iter().map(|b| b.name()).collect::<Vec<_>>());
    }
    settings
}

fn policy_and_reading_json(input: &ReportInput<'_>) -> Value {
    let cfg = input.cfg;
    let (v4, v6) = match cfg.read.client {
        crate::input::client::ClientKind::Subnet {
            ipv4_prefix,
            ipv6_prefix,
        } => (Some(ipv4_prefix), Some(ipv6_prefix)),
        _ => (None, None),
    };
    json!({
        "format": cfg.read.format.name(),
        "client": cfg.read.client.name(),
        "subnet_ipv4_prefix": v4,
        "subnet_ipv6_prefix": v6,
        "threshold": cfg.policy.threshold,
        "window": format_duration(cfg.policy.window),
        "window_seconds": cfg.policy.window / MICROS_PER_SEC,
        "rate_usd": cfg.policy.rate.to_string(),
        "per": cfg.policy.per,
        "rounding": cfg.policy.rounding,
        "mode": cfg.policy.mode,
        "since": cfg.read.since.map(format_rfc3339),
        "until": cfg.read.until.map(format_rfc3339),
        "strict": cfg.strict,
        "strict_lines": cfg.strict_lines,
        "max_malformed": cfg.max_malformed,
        "allow_missing": cfg.allow_missing,
        "exclude": cfg.exclude_patterns,
        "evidence": cfg.evidence,
        "post_rule": match &cfg.read.weigher {
            Weigher::Default => "default: 1 post for a 2xx or 304 response whose path is not a static asset",
            Weigher::Rules(_) => "rules file: the first matching rule gives the weight; no match weighs 0",
        },
        "rules": match &cfg.read.weigher {
            Weigher::Default => Value::Null,
            Weigher::Rules(r) => json!({
                "path": r.path,
                "sha256": r.sha256,
                "rules": r.names(),
                "text": r.text,
            }),
        },
        "orgs": cfg.read.keyer.orgs.as_ref().map(|o| json!({
            "path": o.path,
            "sha256": o.sha256,
            "size": o.size,
            "rows": o.rows,
            "organisations": o.names.len(),
            "exempt": o.names.iter().zip(&o.exempt).filter(|(_, &e)| e).map(|(n, _)| n).collect::<Vec<_>>(),
        })),
    })
}

pub fn render(input: &ReportInput<'_>) -> serde_json::Result<Vec<u8>> {
    let a = input.analysis;
    let pop = &a.population;
    let h = &pop.peak_posts;
    let q = |p: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(p)
        }
    };
    let flagged = a
        .clients
        .iter()
        .filter(|c| !c.exempt && !c.windows.is_empty())
        .count();
    let t = traffic_of(input.files);
    let traffic = json!({
        "clients": a.population.clients,
        "by_status": crate::engine::traffic::STATUS_CLASSES
            .iter()
            .zip(t.status)
            .map(|(c, n)| (c.to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "per_hour": t.hours.iter().map(|&(h, r, p)| json!({
            "hour": format_rfc3339(h), "requests": r, "posts": p
        })).collect::<Vec<_>>(),
    });
    let mut doc = json!({
        "tool": "scrapemeter",
        "report_version": 1,
        "report_id": input.id(),
        "traffic": traffic,
        "settings": settings_json(input),
        "totals": Totals::of(input.files, input.skipped.len()),
        "summary": {
            "flagged_clients": flagged,
            "exempt_clients": a.clients.iter().filter(|c| c.exempt).count(),
            "billed_windows": a.total_windows(),
            "billed_posts": a.clients.iter().filter(|c| !c.exempt).map(|c| c.billed_posts()).sum::<u64>(),
            "damages_usd": a.total_damages(),
        },
        "inputs": input.files,
        "bad_inputs": input.files.iter().filter_map(|f| f.bad.as_ref().map(|why| json!({
            "path": f.path,
            "reason": why,
        }))).collect::<Vec<_>>(),
        "skipped": input.skipped,
        "clients": a.clients.iter().map(|c| client_json(c, input.cfg.policy.window)).collect::<Vec<_>>(),
        "population": {
            "clients": pop.clients,
            "clients_with_posts": pop.clients_with_posts,
            "buckets": pop.buckets,
            "clients_over_threshold": flagged,
            "peak_posts": {
                "note": "peak rolling-window posts per client; p50 to p99_9 are approximate (an HDR histogram, 3 significant figures); min and max are exact",
                "approximate": {"significant_figures": 3},
                "p50": q(0.5),
                "p90": q(0.9),
                "p99": q(0.99),
                "p99_9": q(0.999),
                "min": pop.peak_min,
                "max": pop.peak_max,
            },
            "histogram": pop.decades.iter().map(|&(lo, hi, n)| json!({
                "from": lo, "to": hi, "clients": n
            })).collect::<Vec<_>>(),
            "near_misses": pop.near_misses.iter().map(|m| json!({
                "client": m.client,
                "peak_start": format_rfc3339(m.peak.start),
                "peak_end": format_rfc3339(m.peak.start.saturating_add(input.cfg.policy.window)),
                "peak_posts": m.peak.posts,
                "peak_requests": m.peak.requests,
            })).collect::<Vec<_>>(),
        },
        "run": input.run,
    });
    if let Some(n) = input.nightly {
        doc["state"] = serde_json::to_value(n)?;
    }
    // Only with `--also-by`, so that a run without it writes what it always did.
    if !input.cfg.read.also_by.is_empty() {
        doc["leads"] = leads_json(input);
    }
    let mut out = serde_json::to_vec_pretty(&doc)?;
    out.push(b'\n');
    Ok(out)
}

/// `--also-by`: the possible evasion leads of each grouping, with their members.
fn leads_json(input: &ReportInput<'_>) -> Value {
    let window = input.cfg.policy.window;
    let span = |p: &Span| span_json(p, window);
    let groupings: Vec<Value> = input
        .analysis
        .leads
        .iter()
        .map(|g| {
            let (v4, v6) = match g.by {
                GroupBy::Subnet {
                    ipv4_prefix,
                    ipv6_prefix,
                } => (Some(ipv4_prefix), Some(ipv6_prefix)),
                GroupBy::Ua => (None, None),
            };
            json!({
                "by": g.by.name(),
                "ipv4_prefix": v4,
                "ipv6_prefix": v6,
                "groups": g.groups,
                "groups_over_threshold": g.over_threshold,
                "groups_with_a_member_over_threshold": g.with_breaching_member,
                "leads": g.leads.iter().map(|l| json!({
                    "group": l.name,
                    "peak": span(&l.peak),
                    "total_posts": l.total_posts,
                    "total_requests": l.total_requests,
                    "if_billed_as_one_client": {
                        "windows": l.windows.iter().map(|w| json!({
                            "start": format_rfc3339(w.start),
                            "end": format_rfc3339(w.end),
                            "posts": w.posts,
                            "requests": w.requests,
                            "damages_usd": w.damages,
                        })).collect::<Vec<_>>(),
                        "posts": l.would_be_posts(),
                        "damages_usd": l.damages(),
                    },
                    "members_total": l.members_total,
                    "members": l.members.iter().map(|m| json!({
                        "client": m.name,
                        "peak": m.peak.as_ref().map(span),
                        "total_posts": m.total_posts,
                        "total_requests": m.total_requests,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "note": "possible evasion leads, for investigation: groups of clients whose combined posts in one window exceed the threshold while no client of the group does on its own; not billed, not in violations.csv or clients.csv, not in any damages total",
        "members_listed": crate::engine::groups::TOP_MEMBERS,
        "groupings": groupings,
    })
}
