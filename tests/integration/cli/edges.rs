//! Edge cases of the definitions, end to end: threshold, window edges, offsets,
//! weight-0 requests, greedy windows, calendar mode, window lengths, money settings.

use super::*;

/// `DD/Oct/2026:HH:MM:SS +0000`.
fn at(day: u32, h: u32, m: u32, s: u32) -> String {
    format!("{day:02}/Oct/2026:{h:02}:{m:02}:{s:02} +0000")
}

#[test]
fn exactly_the_threshold_is_not_billed_one_more_is() {
    let f = Fixture::new();
    let log = f.file("a.log", posts("10.0.0.1", 0, 0, 0, 3));
    f.scan(&[&log, "--threshold", "3"]).success();
    assert!(f.violations().is_empty());
    assert!(f.clients().is_empty());

    f.scan(&[&log, "--threshold", "2"]).success();
    // 3 posts × 15000 / 1e6 = 0.045 → 0.05 (half-up).
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,3,3,0.05"]
    );
    assert_eq!(
        joined(&f.clients()),
        ["10.0.0.1,1,3,3,0.05,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,3,false"]
    );
}

#[test]
fn a_post_at_exactly_start_plus_24h_opens_the_next_window() {
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", &at(10, 0, 0, 0), "/p/1", 200),
        line("10.0.0.1", &at(10, 23, 59, 59), "/p/2", 200),
        line("10.0.0.1", &at(11, 0, 0, 0), "/p/3", 200),
    ]
    .concat();
    let log = f.file("a.log", log);
    f.scan(&[&log, "--threshold", "0"]).success();
    assert_eq!(
        joined(&f.violations()),
        [
            "10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,2,2,0.03",
            "10.0.0.1,2,2026-10-11T00:00:00Z,2026-10-12T00:00:00Z,1,1,0.02",
        ]
    );
}

#[test]
fn utc_offsets_straddling_midnight() {
    let f = Fixture::new();
    let log = [
        // Local 1 January, UTC 31 December 23:00.
        line("10.0.0.1", "01/Jan/2026:01:00:00 +0200", "/p/1", 200),
        // Local 31 December, UTC 1 January 00:30.
        line("10.0.0.1", "31/Dec/2025:19:30:00 -0500", "/p/2", 200),
        // UTC 1 January 00:15.
        line("10.0.0.1", "01/Jan/2026:05:45:00 +0530", "/p/3", 200),
    ]
    .concat();
    let log = f.file("offsets.log", log);

    f.scan(&[&log, "--threshold", "2"]).success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2025-12-31T23:00:00Z,2026-01-01T23:00:00Z,3,3,0.05"]
    );

    // Calendar days in UTC: 31 Dec holds 1 post, 1 Jan holds 2.
    f.scan(&[&log, "--threshold", "1", "--mode", "calendar"])
        .success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z,2,2,0.03"]
    );
    // The peak is rolling in either mode.
    assert_eq!(
        joined(&f.clients()),
        ["10.0.0.1,1,2,2,0.03,2025-12-31T23:00:00Z,2026-01-01T23:00:00Z,3,false"]
    );
    let r = f.report();
    assert_eq!(r["inputs"][0]["first_request"], "2025-12-31T23:00:00Z");
    assert_eq!(r["inputs"][0]["last_request"], "2026-01-01T00:30:00Z");
}

#[test]
fn weight_zero_requests_never_open_a_window_but_count_as_requests() {
    let f = Fixture::new();
    let ip = "10.0.0.1";
    let log = [
        line(ip, &at(10, 10, 0, 0), "/missing", 404),
        line(ip, &at(10, 10, 0, 1), "/style.css", 200),
        line(ip, &at(10, 10, 0, 2), "/logo.PNG?v=2", 200),
        line(ip, &at(10, 10, 0, 3), "/moved", 301),
        format!("{ip} - - [{}] \"-\" 408 0 \"-\" \"-\"\n", at(10, 10, 0, 4)),
        line(ip, &at(10, 11, 0, 0), "/post/1", 200),
        line(ip, &at(10, 12, 0, 0), "/missing", 404),
        // No percent-decoding: not a stylesheet, a post.
        line(ip, &at(10, 13, 0, 0), "/x%2Ecss", 200),
        line(
            ip,
            &at(10, 14, 0, 0),
            "http://example.com/post/2?x=y.css",
            304,
        ),
    ]
    .concat();
    let log = f.file("a.log", log);
    f.scan(&[&log, "--threshold", "2"]).success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T11:00:00Z,2026-10-11T11:00:00Z,3,4,0.05"]
    );
    let c = &f.report()["clients"][0];
    assert_eq!(c["total_requests"], 9);
    assert_eq!(c["total_posts"], 3);
    assert_eq!(c["peak"]["start"], "2026-10-10T11:00:00Z");
    assert_eq!(c["peak"]["requests"], 4);
}

#[test]
fn greedy_windows_over_several_days() {
    let f = Fixture::new();
    // A post every 6 hours for 3 days: threshold 3 bills one window of 4 per day.
    let log: String = (10..13)
        .flat_map(|d| [0, 6, 12, 18].map(move |h| line("10.0.0.1", &at(d, h, 0, 0), "/p", 200)))
        .collect();
    let log = f.file("a.log", log);
    f.scan(&[&log, "--threshold", "3"]).success();
    assert_eq!(
        joined(&f.violations()),
        [
            "10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,4,4,0.06",
            "10.0.0.1,2,2026-10-11T00:00:00Z,2026-10-12T00:00:00Z,4,4,0.06",
            "10.0.0.1,3,2026-10-12T00:00:00Z,2026-10-13T00:00:00Z,4,4,0.06",
        ]
    );
    assert_eq!(
        joined(&f.clients()),
        ["10.0.0.1,3,12,12,0.18,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,4,false"]
    );

    // Threshold 4: no window starting at a post holds 5, none is billed.
    f.scan(&[&log, "--threshold", "4"]).success();
    assert!(f.violations().is_empty());

    // Greedy, not optimal: after a window from 10/Oct 06:00 the next may start only
    // at 11/Oct 06:00 or later.
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", &at(10, 6, 0, 0), "/p", 200),
        line("10.0.0.1", &at(10, 7, 0, 0), "/p", 200),
        line("10.0.0.1", &at(11, 5, 0, 0), "/p", 200),
        line("10.0.0.1", &at(11, 5, 30, 0), "/p", 200),
        line("10.0.0.1", &at(11, 6, 0, 0), "/p", 200),
        line("10.0.0.1", &at(11, 7, 0, 0), "/p", 200),
    ]
    .concat();
    let log = f.file("b.log", log);
    f.scan(&[&log, "--threshold", "1"]).success();
    assert_eq!(
        joined(&f.violations()),
        [
            "10.0.0.1,1,2026-10-10T06:00:00Z,2026-10-11T06:00:00Z,4,4,0.06",
            "10.0.0.1,2,2026-10-11T06:00:00Z,2026-10-12T06:00:00Z,2,2,0.03",
        ]
    );
}

#[test]
fn calendar_misses_a_straddle_that_rolling_catches() {
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", &at(10, 23, 0, 0), "/p", 200),
        line("10.0.0.1", &at(10, 23, 0, 1), "/p", 200),
        line("10.0.0.1", &at(11, 1, 0, 0), "/p", 200),
        line("10.0.0.1", &at(11, 1, 0, 1), "/p", 200),
    ]
    .concat();
    let log = f.file("a.log", log);
    f.scan(&[&log, "--threshold", "3"]).success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T23:00:00Z,2026-10-11T23:00:00Z,4,4,0.06"]
    );
    f.scan(&[&log, "--threshold", "3", "--mode", "calendar"])
        .success();
    assert!(f.violations().is_empty());
    assert_eq!(f.report()["settings"]["mode"], "calendar");
}

#[test]
fn shorter_windows() {
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", &at(10, 0, 0, 0), "/p", 200),
        line("10.0.0.1", &at(10, 1, 29, 59), "/p", 200),
        line("10.0.0.1", &at(10, 1, 30, 0), "/p", 200),
        line("10.0.0.1", &at(10, 1, 30, 1), "/p", 200),
        line("10.0.0.1", &at(10, 11, 59, 59), "/p", 200),
        line("10.0.0.1", &at(10, 12, 0, 0), "/p", 200),
    ]
    .concat();
    let log = f.file("a.log", log);

    f.scan(&[&log, "--threshold", "4", "--window", "12h"])
        .success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-10T12:00:00Z,5,5,0.08"]
    );
    assert_eq!(f.report()["settings"]["window"], "12h");
    assert_eq!(f.report()["settings"]["window_seconds"], 43_200);

    f.scan(&[&log, "--threshold", "1", "--window", "90m"])
        .success();
    assert_eq!(
        joined(&f.violations()),
        [
            "10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-10T01:30:00Z,2,2,0.03",
            "10.0.0.1,2,2026-10-10T01:30:00Z,2026-10-10T03:00:00Z,2,2,0.03",
            "10.0.0.1,3,2026-10-10T11:59:59Z,2026-10-10T13:29:59Z,2,2,0.03",
        ]
    );
    assert_eq!(f.report()["settings"]["window"], "1h30m");

    // 1h30m and 5400s are the same window as 90m.
    let before = f.read("violations.csv");
    for w in ["1h30m", "5400s"] {
        f.scan(&[&log, "--threshold", "1", "--window", w]).success();
        assert_eq!(f.read("violations.csv"), before, "--window {w}");
    }
}

#[test]
fn threshold_zero_bills_any_post() {
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", &at(10, 0, 0, 0), "/p", 200),
        line("10.0.0.2", &at(10, 0, 0, 0), "/nothing", 404),
    ]
    .concat();
    let log = f.file("a.log", log);
    f.scan(&[&log, "--threshold", "0"]).success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00Z,2026-10-11T00:00:00Z,1,1,0.02"]
    );
    let r = f.report();
    assert_eq!(r["population"]["clients"], 2);
    assert_eq!(r["population"]["clients_with_posts"], 1);
    assert_eq!(r["summary"]["damages_usd"], "0.02");
}

#[test]
fn rate_per_and_rounding() {
    let f = Fixture::new();
    let log = f.file("a.log", posts("10.0.0.1", 0, 0, 0, 25));
    let common = [
        &log as &str,
        "--threshold",
        "0",
        "--rate",
        "0.5",
        "--per",
        "10",
    ];
    // 25 posts at 0.50 per 10: pro-rata 1.25, 3 started tens 1.50, 2 full tens 1.00.
    for (rounding, want) in [
        ("pro-rata", "1.25"),
        ("per-started", "1.50"),
        ("per-full", "1.00"),
    ] {
        let mut args = common.to_vec();
        args.extend(["--rounding", rounding]);
        f.scan(&args).success();
        let rows = f.violations();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][6], want, "{rounding}");
        assert_eq!(f.report()["settings"]["rounding"], rounding);
        assert_eq!(f.report()["settings"]["rate_usd"], "0.5");
    }
    // A rate with six decimals stays exact: 25 × 0.000001 / 1 = 0.000025 → 0.00.
    f.scan(&[&log, "--threshold", "0", "--rate", "0.000001", "--per", "1"])
        .success();
    assert_eq!(f.violations()[0][6], "0.00");
    // 25 × 1234.567891 / 1 = 30864.197275 → 30864.20.
    f.scan(&[
        &log,
        "--threshold",
        "0",
        "--rate",
        "1234.567891",
        "--per",
        "1",
    ])
    .success();
    assert_eq!(f.violations()[0][6], "30864.20");
}

#[test]
fn fractional_seconds_are_kept_and_printed() {
    let f = Fixture::new();
    let log = [
        line("10.0.0.1", "10/Oct/2026:00:00:00.250000 +0000", "/p", 200),
        line("10.0.0.1", "10/Oct/2026:00:00:01.5 +0000", "/p", 200),
        // 24h after the first, minus a microsecond: inside its window.
        line("10.0.0.1", "11/Oct/2026:00:00:00.249999 +0000", "/p", 200),
        // Exactly 24h after the first: outside.
        line("10.0.0.1", "11/Oct/2026:00:00:00.250000 +0000", "/p", 200),
    ]
    .concat();
    let log = f.file("a.log", log);
    f.scan(&[&log, "--threshold", "2"]).success();
    assert_eq!(
        joined(&f.violations()),
        ["10.0.0.1,1,2026-10-10T00:00:00.250000Z,2026-10-11T00:00:00.250000Z,3,3,0.05"]
    );
}
