//! The nightly-state invariant, at the engine level: the windows billed final by
//! successive runs, put together, are the windows of one run over all the inputs.
//!
//! Random events (a few clients, times over a few minutes, weights mostly 0/1) are
//! delivered in random batches (roughly in time order, some events a batch or two
//! late), or as the files of several servers that rotate at their own moment and
//! whose files arrive some runs late; each batch is one run through
//! `nightly::continue_from`, its state encoded and decoded between runs. Events before
//! the previous run's watermark are late and left out, as the scan leaves them out;
//! the single run is over the events accepted.

use proptest::prelude::*;
use scrapemeter::config::{Config, Overrides, SettingsFile};
use scrapemeter::engine::aggregate::Aggregate;
use scrapemeter::engine::bill::{analyze, Analysis, BilledWindow, WindowStatus};
use scrapemeter::store::nightly::{self, Body};
use std::collections::BTreeMap;

const SEC: i64 = 1_000_000;
const CLIENTS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "2001:db8::1"];

/// (client, time, weight, delivery delay in batches)
type Event = (usize, i64, u64, usize);

fn config(window_s: i64, threshold: u64, calendar: bool, lateness: i64) -> Config {
    let mut cfg = Config::resolve(
        vec!["x".into()],
        "out".into(),
        Overrides {
            threshold: Some(threshold),
            window: Some(format!("{window_s}s")),
            mode: Some(if calendar { "calendar" } else { "rolling" }.into()),
            threads: Some(1),
            ..Default::default()
        },
        SettingsFile::default(),
    )
    .unwrap();
    cfg.lateness = lateness;
    cfg
}

/// A window without its run-dependent flags and evidence.
type Row = (String, usize, i64, i64, u64, u64, u128, i64);

fn row(client: &str, w: &BilledWindow) -> Row {
    (
        client.to_string(),
        w.index,
        w.start,
        w.end,
        w.posts,
        w.requests,
        w.damages.0,
        w.last_request,
    )
}

fn rows(a: &Analysis, keep: impl Fn(&BilledWindow) -> bool) -> Vec<Row> {
    let mut out: Vec<Row> = a
        .clients
        .iter()
        .flat_map(|c| {
            c.windows
                .iter()
                .filter(|w| keep(w))
                .map(|w| row(&c.name, w))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        (
            0..CLIENTS.len(),
            (0i64..240, prop::bool::ANY)
                .prop_map(|(s, half)| s * SEC + if half { SEC / 2 } else { 0 }),
            prop_oneof![3 => Just(1u64), 1 => Just(0u64), 1 => 2u64..4],
            prop_oneof![4 => Just(0usize), 1 => 1usize..3],
        ),
        0..160,
    )
}

/// One input: (client, time, weight) requests.
type Input = Vec<(usize, i64, u64)>;
/// One run's inputs.
type Run = Vec<Input>;

/// Runs `events` in `batches` runs with state (one input each), and in one run
/// without; checks that they agree.
fn check(events: &[Event], batches: usize, cfg: &Config) -> Result<(), TestCaseError> {
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.1);
    let per = sorted.len().div_ceil(batches.max(1)).max(1);
    let mut runs: Vec<Run> = vec![vec![Vec::new()]; batches + 3];
    for (i, &(c, t, w, delay)) in sorted.iter().enumerate() {
        runs[(i / per + delay).min(batches + 2)][0].push((c, t, w));
    }
    check_runs(&runs, cfg).map(|_| ())
}

/// Runs `runs` with state, and all their accepted events in one run without; checks
/// that they agree. Returns how many events were late.
fn check_runs(runs: &[Run], cfg: &Config) -> Result<usize, TestCaseError> {
    let mut late = 0;

    let mut prev = Body::default();
    let mut finals: Vec<Row> = Vec::new();
    let mut accepted: Vec<(usize, i64, u64)> = Vec::new();
    let mut last: Option<Analysis> = None;
    for inputs in runs {
        let late_before = prev.watermark;
        let mut agg = Aggregate::new();
        let mut newest = Vec::new();
        for input in inputs {
            for &(c, t, w) in input {
                if late_before.is_some_and(|wm| t < wm) {
                    late += 1;
                    continue;
                }
                agg.add(CLIENTS[c].as_bytes(), t, w, 1);
                accepted.push((c, t, w));
            }
            // The newest request of the input, late ones included.
            newest.extend(input.iter().map(|e| e.1).max());
        }
        let (analysis, next) = nightly::continue_from(cfg, &prev, agg, &newest);
        finals.extend(rows(&analysis, |w| {
            w.new_in_this_run && w.status == WindowStatus::Final
        }));
        // Every window billed final earlier is still there, unchanged and not new.
        let carried = rows(&analysis, |w| !w.new_in_this_run);
        let mut before = finals.clone();
        before.retain(|r| !rows(&analysis, |w| w.new_in_this_run).contains(r));
        before.sort();
        prop_assert_eq!(&carried, &before);
        prev = nightly::decode(&nightly::encode(&next)).unwrap();
        prop_assert_eq!(&prev, &next);
        last = Some(analysis);
    }
    let last = last.unwrap();
    // The chart of every billed window adds up to its posts, final windows included
    // (their buckets have left the state; the activity kept for them stands in).
    for c in &last.clients {
        let Some(chart) = &c.chart else { continue };
        for w in &c.windows {
            let drawn: u64 = chart
                .iter()
                .filter(|b| b.t >= w.start && b.t < w.end)
                .map(|b| b.posts)
                .sum();
            prop_assert_eq!(drawn, w.posts, "chart of {} window {}", c.name, w.index);
        }
    }

    let mut all = Aggregate::new();
    for &(c, t, w) in &accepted {
        all.add(CLIENTS[c].as_bytes(), t, w, 1);
    }
    let one = analyze(&cfg.policy, all, &|k| cfg.read.identify(k));
    let watermark = prev.watermark;
    finals.sort();
    // The final windows of the runs = the windows of one run that end by the watermark.
    let one_final = rows(&one, |w| watermark.is_some_and(|wm| w.end <= wm));
    prop_assert_eq!(&finals, &one_final);
    // And the last run's report, provisional windows included, is the one run's.
    prop_assert_eq!(rows(&last, |_| true), rows(&one, |_| true));
    for w in last.clients.iter().flat_map(|c| &c.windows) {
        let is_final = watermark.is_some_and(|wm| w.end <= wm);
        prop_assert_eq!(w.status == WindowStatus::Final, is_final);
    }
    // The flagged clients and their peaks agree too.
    let peaks = |a: &Analysis| -> BTreeMap<String, Option<(i64, u64, u64)>> {
        a.clients
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.peak.map(|p| (p.start, p.posts, p.requests)),
                )
            })
            .collect()
    };
    prop_assert_eq!(peaks(&last), peaks(&one));
    Ok(late)
}

/// Servers that rotate their files every `period` seconds, each at its own offset,
/// with each file arriving `delay` runs after its turn: run `j` reads the files that
/// arrive then. Returns the runs and the largest delay.
fn servers_runs(
    events: &[Event],
    period: i64,
    offsets: &[i64],
    delays: &[usize],
) -> (Vec<Run>, usize) {
    // Event → (server, file): the server is the event's `delay` field, modulo servers.
    let servers = offsets.len();
    let mut files: BTreeMap<(usize, i64), Input> = BTreeMap::new();
    for &(c, t, w, s) in events {
        let s = s % servers;
        let k = (t - offsets[s] * SEC).div_euclid(period * SEC);
        files.entry((s, k)).or_default().push((c, t, w));
    }
    let first = files.keys().map(|k| k.1).min().unwrap_or(0);
    let mut runs: Vec<Run> = vec![Vec::new()];
    let mut max_delay = 0;
    for ((s, k), mut evs) in files {
        // Lines within a file in time order, as a server writes them.
        evs.sort_by_key(|e| e.1);
        let d = delays[(s * 7 + k.rem_euclid(5) as usize) % delays.len()];
        max_delay = max_delay.max(d);
        let j = (k - first) as usize + d;
        if runs.len() <= j {
            runs.resize(j + 1, Vec::new());
        }
        runs[j].push(evs);
    }
    (runs, max_delay)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn final_windows_of_successive_runs_are_those_of_one_run(
        events in events(),
        batches in 1usize..8,
        window_s in 5i64..60,
        threshold in 0u64..8,
        calendar in prop::bool::weighted(0.25),
        lateness_s in prop_oneof![Just(0i64), 0i64..20],
    ) {
        let cfg = config(window_s, threshold, calendar, lateness_s * SEC);
        check(&events, batches, &cfg)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Several servers, each rotating at its own moment, some files arriving runs
    /// late: the final windows of the runs are those of one run over what was not late;
    /// and with a lateness that covers the rotation offsets and the delays, nothing
    /// is late at all (the slowest input holds the watermark back).
    #[test]
    fn servers_rotating_at_their_own_moment_and_arriving_late(
        events in events(),
        period in 20i64..80,
        offsets in prop::collection::vec(0i64..80, 1..4),
        delays in prop::collection::vec(prop_oneof![3 => Just(0usize), 1 => 1usize..3], 1..6),
        window_s in 5i64..60,
        threshold in 0u64..8,
        calendar in prop::bool::weighted(0.25),
        covered in prop::bool::ANY,
        lateness_s in 0i64..40,
    ) {
        let offsets: Vec<i64> = offsets.iter().map(|o| o % period).collect();
        let (runs, max_delay) = servers_runs(&events, period, &offsets, &delays);
        // A file's requests span at most one period; the files of one run differ by
        // at most the offsets' spread; a delay of d runs adds d periods.
        let cover = (max_delay as i64 + 2) * period;
        let lateness = if covered { cover } else { lateness_s };
        let cfg = config(window_s, threshold, calendar, lateness * SEC);
        let late = check_runs(&runs, &cfg)?;
        if covered {
            prop_assert_eq!(late, 0);
        }
    }
}

/// A breach straddling the cut between two runs is billed once, in full.
#[test]
fn a_breach_across_two_runs_is_billed_once() {
    let cfg = config(10, 3, false, 0);
    // Posts at 8, 9 | 11, 12 (s): one window [8, 18) of 4 posts.
    let batches: [&[i64]; 2] = [&[8, 9], &[11, 12, 30]];
    let mut prev = Body::default();
    let mut all = Vec::new();
    for b in batches {
        let mut agg = Aggregate::new();
        for &t in b {
            agg.add(b"c", t * SEC, 1, 1);
        }
        let newest: Vec<i64> = b.iter().max().map(|t| t * SEC).into_iter().collect();
        let (a, next) = nightly::continue_from(&cfg, &prev, agg, &newest);
        all.extend(rows(&a, |w| {
            w.status == WindowStatus::Final && w.new_in_this_run
        }));
        prev = next;
    }
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].2, all[0].4), (8 * SEC, 4));
}
