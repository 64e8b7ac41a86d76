//! Property tests of the core engine against a brute-force oracle.
//!
//! The oracle is written straight from the definitions of SPEC.md ("What is computed,
//! per client"), with none of the engine's algorithms: `W(s)` is a full sum over every
//! request for every candidate start, the greedy billing re-scans from scratch, and the
//! money is worked out as quotient and remainder rather than the engine's `(2n + d) / 2d`.
//!
//! Random events (a few clients, microsecond times on both sides of the epoch, weights
//! mostly 0/1), random window lengths (1–50 s), thresholds (0–10), rates, `per` and
//! roundings go through `Aggregate` in random splits and merge orders, then through
//! `window::{peak, billed}`, `bill::bill`, `bill::analyze` and
//! `damages::window_damages`.

use proptest::prelude::*;
use scrapemeter::config::{Config, Overrides, SettingsFile};
use scrapemeter::engine::aggregate::{Aggregate, Bucket};
use scrapemeter::engine::bill::{analyze, bill, Horizon};
use scrapemeter::engine::damages::{window_damages, Rate, Rounding};
use scrapemeter::engine::window::{self, Mode};

const SEC: i64 = 1_000_000;

/// One request: client index, time in microseconds, post weight.
type Event = (usize, i64, u64);

const CLIENTS: [&str; 4] = ["10.0.0.1", "10.0.0.2", "2001:db8::1", "a-user"];

// ---------------------------------------------------------------- the oracle

/// `W(s)` and the request count of `[s, s + len)`, by a full scan.
fn window_sums(events: &[(i64, u64)], s: i64, len: i64) -> (u64, u64) {
    let inside = events.iter().filter(|&&(t, _)| s <= t && t < s + len);
    inside.fold((0, 0), |(p, r), &(_, w)| (p + w, r + 1))
}

/// Distinct post times (`w > 0`), ascending.
fn post_times(events: &[(i64, u64)]) -> Vec<i64> {
    let mut ts: Vec<i64> = events.iter().filter(|e| e.1 > 0).map(|e| e.0).collect();
    ts.sort();
    ts.dedup();
    ts
}

/// (start, posts, requests)
type OWindow = (i64, u64, u64);

fn oracle_peak(events: &[(i64, u64)], len: i64) -> Option<OWindow> {
    let mut best: Option<OWindow> = None;
    for s in post_times(events) {
        let (p, r) = window_sums(events, s, len);
        // Ascending starts: only a strictly larger W replaces (earliest on a tie).
        if best.is_none_or(|b| p > b.1) {
            best = Some((s, p, r));
        }
    }
    best
}

fn oracle_rolling(events: &[(i64, u64)], len: i64, threshold: u64) -> Vec<OWindow> {
    let mut out: Vec<OWindow> = Vec::new();
    loop {
        // s_{k+1}: the earliest post time t >= s_k + len with W(t) > threshold.
        let floor = out.last().map(|w| w.0 + len);
        let next = post_times(events)
            .into_iter()
            .filter(|&t| floor.is_none_or(|f| t >= f))
            .map(|t| (t, window_sums(events, t, len)))
            .find(|(_, (p, _))| *p > threshold);
        match next {
            Some((t, (p, r))) => out.push((t, p, r)),
            None => return out,
        }
    }
}

fn oracle_calendar(events: &[(i64, u64)], len: i64, threshold: u64) -> Vec<OWindow> {
    // Every epoch-aligned window [k·len, (k+1)·len) that holds a request.
    let mut ks: Vec<i64> = events
        .iter()
        .map(|&(t, _)| {
            // Floor division written out, not div_euclid.
            let q = t / len;
            if t % len != 0 && t < 0 {
                q - 1
            } else {
                q
            }
        })
        .collect();
    ks.sort();
    ks.dedup();
    ks.into_iter()
        .map(|k| {
            let (p, r) = window_sums(events, k * len, len);
            (k * len, p, r)
        })
        .filter(|w| w.1 > threshold)
        .collect()
}

/// Damages in cents, from `rate_micros` micro-dollars per `per` posts.
/// Quotient and remainder, rounding half-up; nothing shared with the engine's formula.
fn oracle_cents(posts: u64, rate_micros: u64, per: u64, rounding: Rounding) -> u128 {
    let (posts, rate, per) = (posts as u128, rate_micros as u128, per as u128);
    // Micro-dollars as a fraction num / den.
    let (num, den) = match rounding {
        Rounding::ProRata => (rate * posts, per),
        Rounding::PerStarted => {
            let units = posts / per + if posts % per == 0 { 0 } else { 1 };
            (rate * units, 1)
        }
        Rounding::PerFull => (rate * (posts / per), 1),
    };
    // One cent = 10_000 micro-dollars.
    let den = den * 10_000;
    let (q, r) = (num / den, num % den);
    if r >= den - r {
        q + 1
    } else {
        q
    }
}

fn cents_text(c: u128) -> String {
    let s = format!("{c:03}");
    let (int, frac) = s.split_at(s.len() - 2);
    format!("{int}.{frac}")
}

/// The canonical buckets of one client: sorted, one per instant, zero-post ones kept.
fn oracle_buckets(events: &[(i64, u64)]) -> Vec<Bucket> {
    let mut ts: Vec<i64> = events.iter().map(|e| e.0).collect();
    ts.sort();
    ts.dedup();
    ts.into_iter()
        .map(|t| {
            let at: Vec<u64> = events.iter().filter(|e| e.0 == t).map(|e| e.1).collect();
            Bucket {
                t,
                posts: at.iter().sum(),
                requests: at.len() as u64,
            }
        })
        .collect()
}

fn per_client(events: &[Event], c: usize) -> Vec<(i64, u64)> {
    events
        .iter()
        .filter(|e| e.0 == c)
        .map(|e| (e.1, e.2))
        .collect()
}

// ---------------------------------------------------------------- generators

/// Times on a few seconds around the epoch, often on whole seconds, sometimes a
/// microsecond off one (so window edges are hit exactly and missed by one).
fn time() -> impl Strategy<Value = i64> {
    (-60i64..120, 0usize..6, 0i64..SEC).prop_map(|(s, kind, frac)| {
        s * SEC
            + match kind {
                0..=2 => 0,
                3 => 1,
                4 => SEC - 1,
                _ => frac,
            }
    })
}

fn weight() -> impl Strategy<Value = u64> {
    prop_oneof![6 => Just(1u64), 3 => Just(0u64), 1 => 2u64..6, 1 => Just(1_000u64)]
}

fn events(max: usize) -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((0..CLIENTS.len(), time(), weight()), 0..max)
}

fn rounding() -> impl Strategy<Value = Rounding> {
    prop_oneof![
        Just(Rounding::ProRata),
        Just(Rounding::PerStarted),
        Just(Rounding::PerFull)
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Rolling), Just(Mode::Calendar)]
}

/// A rate as the user writes it, with its value in micro-dollars computed from the text.
fn rate() -> impl Strategy<Value = (String, u64)> {
    (0u64..2_000_000, 0usize..7, 0u64..1_000_000).prop_map(|(int, decimals, frac)| {
        let frac_digits = format!("{frac:06}");
        let frac_digits = &frac_digits[..decimals];
        let text = if decimals == 0 {
            int.to_string()
        } else {
            format!("{int}.{frac_digits}")
        };
        let padded = format!("{frac_digits:0<6}");
        let micros = int * 1_000_000 + padded.parse::<u64>().unwrap();
        (text, micros)
    })
}

fn per() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..20, Just(1_000_000u64), 1u64..5_000_000]
}

// ---------------------------------------------------------------- helpers

/// Feeds `events` into aggregates cut at `cuts`, merged in the order `order` picks.
fn split_and_merge(events: &[Event], cuts: &[usize], order: &[usize]) -> Aggregate {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort();
    let mut parts: Vec<Aggregate> = bounds
        .windows(2)
        .map(|w| {
            let mut a = Aggregate::new();
            for &(c, t, p) in &events[w[0]..w[1]] {
                a.add(CLIENTS[c].as_bytes(), t, p, 1);
            }
            a
        })
        .collect();
    // Merge in a random order, sometimes folding into a later part.
    let mut acc = Aggregate::new();
    for &o in order {
        if parts.is_empty() {
            break;
        }
        let part = parts.remove(o % parts.len());
        if o % 2 == 0 {
            acc.merge(part);
        } else {
            let mut p = part;
            p.merge(acc);
            acc = p;
        }
    }
    for p in parts {
        acc.merge(p);
    }
    acc
}

fn config(
    threshold: u64,
    window_secs: i64,
    rate: &str,
    per: u64,
    rounding: Rounding,
    mode: Mode,
) -> Config {
    Config::resolve(
        vec!["x".into()],
        "out".into(),
        Overrides {
            threshold: Some(threshold),
            window: Some(format!("{window_secs}s")),
            rate: Some(rate.into()),
            per: Some(per),
            rounding: Some(rounding.to_string()),
            mode: Some(mode.to_string()),
            threads: Some(1),
            ..Default::default()
        },
        SettingsFile::default(),
    )
    .expect("valid settings")
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Aggregating in any split and merge order gives the oracle's canonical buckets.
    #[test]
    fn aggregate_is_independent_of_the_split(
        events in events(60),
        cuts in prop::collection::vec(0usize..1000, 0..6),
        order in prop::collection::vec(0usize..1000, 0..8),
    ) {
        let merged = split_and_merge(&events, &cuts, &order).into_sorted();
        let mut expected: Vec<(Box<[u8]>, Vec<Bucket>)> = (0..CLIENTS.len())
            .filter(|&c| events.iter().any(|e| e.0 == c))
            .map(|c| (CLIENTS[c].as_bytes().into(), oracle_buckets(&per_client(&events, c))))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        prop_assert_eq!(merged, expected);
    }

    /// Peak and billed windows of every client match the oracle, in both modes.
    #[test]
    fn windows_match_the_oracle(
        events in events(60),
        cuts in prop::collection::vec(0usize..1000, 0..4),
        order in prop::collection::vec(0usize..1000, 0..4),
        window_secs in 1i64..=50,
        threshold in 0u64..=10,
        mode in mode(),
    ) {
        let len = window_secs * SEC;
        for (key, buckets) in split_and_merge(&events, &cuts, &order).into_sorted() {
            let c = CLIENTS.iter().position(|k| k.as_bytes() == &*key).unwrap();
            let ev = per_client(&events, c);

            let peak = window::peak(&buckets, len).map(|s| (s.start, s.posts, s.requests));
            prop_assert_eq!(peak, oracle_peak(&ev, len));

            let billed: Vec<OWindow> = window::billed(&buckets, len, threshold, mode)
                .into_iter()
                .map(|s| (s.start, s.posts, s.requests))
                .collect();
            let expected = match mode {
                Mode::Rolling => oracle_rolling(&ev, len, threshold),
                Mode::Calendar => oracle_calendar(&ev, len, threshold),
            };
            prop_assert_eq!(billed, expected);
        }
    }

    /// `bill` and `analyze`: windows, damages, peak, totals, population.
    #[test]
    fn analysis_matches_the_oracle(
        events in events(50),
        cuts in prop::collection::vec(0usize..1000, 0..4),
        order in prop::collection::vec(0usize..1000, 0..4),
        window_secs in 1i64..=50,
        threshold in 0u64..=10,
        (rate_text, rate_micros) in rate(),
        per in per(),
        rounding in rounding(),
        mode in mode(),
    ) {
        let cfg = config(threshold, window_secs, &rate_text, per, rounding, mode);
        prop_assert_eq!(cfg.policy.rate.micros, rate_micros);
        let len = window_secs * SEC;
        let agg = split_and_merge(&events, &cuts, &order);
        let mut flagged: Vec<String> = Vec::new();
        let mut clients_with_posts = 0;
        for (key, buckets) in split_and_merge(&events, &cuts, &order).into_sorted() {
            let c = CLIENTS.iter().position(|k| k.as_bytes() == &*key).unwrap();
            let ev = per_client(&events, c);
            let r = bill(&cfg.policy, &Horizon::Complete, key.clone(), cfg.read.identify(&key), buckets.clone(), None).result;
            prop_assert_eq!(&r.name, CLIENTS[c]);
            let expected = match mode {
                Mode::Rolling => oracle_rolling(&ev, len, threshold),
                Mode::Calendar => oracle_calendar(&ev, len, threshold),
            };
            prop_assert_eq!(r.windows.len(), expected.len());
            let mut total = 0u128;
            for (i, (w, e)) in r.windows.iter().zip(&expected).enumerate() {
                prop_assert_eq!(w.index, i + 1);
                prop_assert_eq!((w.start, w.end, w.posts, w.requests), (e.0, e.0 + len, e.1, e.2));
                let cents = oracle_cents(e.1, rate_micros, per, rounding);
                prop_assert_eq!(w.damages.0, cents);
                prop_assert_eq!(w.damages.to_string(), cents_text(cents));
                total += cents;
            }
            prop_assert_eq!(r.damages().0, total);
            prop_assert_eq!(r.peak.map(|s| (s.start, s.posts, s.requests)), oracle_peak(&ev, len));
            prop_assert_eq!(r.total_posts, ev.iter().map(|e| e.1).sum::<u64>());
            prop_assert_eq!(r.total_requests, ev.len() as u64);
            prop_assert_eq!(r.first_request, ev.iter().map(|e| e.0).min().unwrap());
            prop_assert_eq!(r.last_request, ev.iter().map(|e| e.0).max().unwrap());
            if !expected.is_empty() {
                flagged.push(CLIENTS[c].to_string());
            }
            clients_with_posts += ev.iter().any(|e| e.1 > 0) as u64;
        }

        let a = analyze(&cfg.policy, agg, &|k| cfg.read.identify(k));
        flagged.sort();
        let names: Vec<String> = a.clients.iter().map(|c| c.name.clone()).collect();
        prop_assert_eq!(names, flagged);
        let distinct = (0..CLIENTS.len()).filter(|&c| events.iter().any(|e| e.0 == c)).count();
        prop_assert_eq!(a.population.clients, distinct as u64);
        prop_assert_eq!(a.population.clients_with_posts, clients_with_posts);
        let in_decades: u64 = a.population.decades.iter().map(|d| d.2).sum();
        prop_assert_eq!(in_decades, distinct as u64);
    }

    /// `window_damages` over realistic magnitudes, against the quotient/remainder oracle.
    #[test]
    fn damages_are_exact(
        posts in prop_oneof![0u64..100, 0u64..10_000_000, 0u64..(1u64 << 48)],
        (rate_text, rate_micros) in rate(),
        per in per(),
        rounding in rounding(),
    ) {
        let rate: Rate = rate_text.parse().unwrap();
        prop_assert_eq!(rate.micros, rate_micros);
        let got = window_damages(posts, rate, per, rounding);
        let want = oracle_cents(posts, rate_micros, per, rounding);
        prop_assert_eq!(got.0, want);
        prop_assert_eq!(got.to_string(), cents_text(want));
    }
}

/// Many events of few instants per client: the aggregate compacts while it fills
/// (every 1,024 buckets), and the result still must not depend on the split.
#[test]
fn compaction_during_filling_keeps_the_split_irrelevant() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let strat = (
        prop::collection::vec(
            (0..2usize, (0i64..40).prop_map(|s| s * SEC), weight()),
            2000..4000,
        ),
        prop::collection::vec(0usize..5000, 1..4),
        prop::collection::vec(0usize..1000, 0..4),
    );
    runner
        .run(&strat, |(mut events, cuts, order)| {
            // Half sorted, half not: appends mostly at the end of a run, as in real logs.
            let half = events.len() / 2;
            events[..half].sort_by_key(|e| e.1);
            let merged = split_and_merge(&events, &cuts, &order).into_sorted();
            for (key, buckets) in merged {
                let c = CLIENTS.iter().position(|k| k.as_bytes() == &*key).unwrap();
                prop_assert_eq!(buckets, oracle_buckets(&per_client(&events, c)));
            }
            Ok(())
        })
        .unwrap();
}

/// The clause itself, spelled out: the oracle agrees with SPEC.md's own numbers.
#[test]
fn oracle_reproduces_the_clause() {
    let r = 15_000_000_000; // USD 15,000 in micro-dollars
    assert_eq!(
        cents_text(oracle_cents(1_000_000, r, 1_000_000, Rounding::ProRata)),
        "15000.00"
    );
    assert_eq!(
        cents_text(oracle_cents(1_500_000, r, 1_000_000, Rounding::ProRata)),
        "22500.00"
    );
    assert_eq!(
        cents_text(oracle_cents(1, r, 1_000_000, Rounding::ProRata)),
        "0.02"
    );
    assert_eq!(
        cents_text(oracle_cents(1_000_001, r, 1_000_000, Rounding::PerStarted)),
        "30000.00"
    );
    assert_eq!(
        cents_text(oracle_cents(1_999_999, r, 1_000_000, Rounding::PerFull)),
        "15000.00"
    );
    // A breach that straddles midnight: rolling catches it, calendar does not.
    let day = 86_400 * SEC;
    let ev = [(day - 3600 * SEC, 2), (day + 3600 * SEC, 2)];
    assert_eq!(oracle_rolling(&ev, day, 3), [(day - 3600 * SEC, 4, 2)]);
    assert!(oracle_calendar(&ev, day, 3).is_empty());
}
