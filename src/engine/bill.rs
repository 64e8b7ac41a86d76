//! Billing: one client's buckets → its billed windows, damages and peak.
//!
//! This is the one place the legal computation lives. `scan`, the nightly
//! continuation (`--state`), `reduce` and `explain` all bill through [`bill`] (or
//! [`bill_all`] over every client), so they cannot disagree. What comes in is a
//! [`Policy`] (what breaches and what it costs), a [`Horizon`] (up to when the data
//! is complete), and per client its new buckets and what an earlier run carried
//! ([`Carry`]); what goes out is the client's [`ClientResult`] and what the next run
//! needs.

use crate::engine::aggregate::{Aggregate, Bucket, Series};
use crate::engine::damages::{window_damages, Cents, Rate, Rounding};
use crate::engine::limits;
use crate::engine::time::Micros;
use crate::engine::window::{self, Mode, Span};
use hdrhistogram::Histogram;
use rayon::prelude::*;

/// What breaches and what it costs: the six settings of SPEC.md's billing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A window breaches when its posts are strictly more than this.
    pub threshold: u64,
    /// Window length in microseconds (at least one second).
    pub window: Micros,
    /// USD per `per` posts.
    pub rate: Rate,
    pub per: u64,
    pub rounding: Rounding,
    pub mode: Mode,
}

impl Policy {
    /// Damages of a window of `posts` posts of a client (nothing when it is exempt).
    pub fn damages(&self, posts: u64, exempt: bool) -> Cents {
        if exempt {
            Cents(0)
        } else {
            window_damages(posts, self.rate, self.per, self.rounding)
        }
    }
}

/// How the reports name a client, and whether it is exempt (an exempt organisation's
/// windows are computed and shown, never billed). Worked out by the reader's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The key as written in JSON and on the terminal (`\xHH` for non-UTF-8 bytes).
    pub name: String,
    /// The key as written in CSV (formula-guarded where it comes from log text).
    pub cell: String,
    pub exempt: bool,
}

/// Up to when the data is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Horizon {
    /// One run over all the logs: every window is final.
    Complete,
    /// Nightly state: a window is final once its end is at or before `watermark`;
    /// windows ending at or before `previous` were settled by an earlier run (they
    /// come from the carried ledger, never again from the buckets).
    Watermark {
        previous: Option<Micros>,
        watermark: Option<Micros>,
        /// This run's number (1, 2, …), recorded with the windows it bills final.
        run: u64,
    },
}

impl Horizon {
    fn status(&self, end: Micros) -> WindowStatus {
        match *self {
            Horizon::Complete => WindowStatus::Final,
            Horizon::Watermark { watermark, .. } => {
                if watermark.is_some_and(|w| end <= w) {
                    WindowStatus::Final
                } else {
                    WindowStatus::Provisional
                }
            }
        }
    }

    fn settled(&self, end: Micros) -> bool {
        matches!(*self, Horizon::Watermark { previous: Some(w), .. } if end <= w)
    }
}

/// The watermark after a run: the minimum, over the inputs this run read, of each
/// input's newest request time, minus `lateness`; never moving back from `previous`.
///
/// The slowest input holds it back (the rule of stream processors such as Apache
/// Flink and Beam: an operator's watermark is the minimum of its inputs'), so that
/// one server whose logs run ahead cannot make another server's requests late. A run
/// that read no request leaves it where it was.
pub fn watermark(
    previous: Option<Micros>,
    newest_per_input: impl IntoIterator<Item = Micros>,
    lateness: Micros,
) -> Option<Micros> {
    let candidate = newest_per_input
        .into_iter()
        .min()
        .map(|n| n.saturating_sub(lateness));
    candidate.into_iter().chain(previous).max()
}

/// What one run hands the next about one client (nightly state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// Buckets from `watermark − window` on, sorted: later windows may still start there.
    pub buckets: Vec<Bucket>,
    /// The peak among the windows already complete.
    pub peak: Option<Span>,
    pub total_posts: u64,
    pub total_requests: u64,
    pub first_request: Micros,
    pub last_request: Micros,
    /// Windows billed final, in order; numbering continues from here.
    pub ledger: Vec<Settled>,
}

/// A window billed final by a run, with the run that billed it, and what its chart
/// needs once its buckets have left the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub window: BilledWindow,
    pub run: u64,
    /// Posts per minute over the window (minutes counted from its start; each at its
    /// minute's first instant; empty minutes left out; `requests` 0): they add up to
    /// its posts.
    pub activity: Vec<Bucket>,
}

/// The length of one step of a settled window's activity.
pub const ACTIVITY_STEP: Micros = 60_000_000;

/// Posts per [`ACTIVITY_STEP`] of sorted `buckets` over `[start, end)`, steps counted
/// from `start`, each at its first instant (minutes without posts left out).
pub fn activity(buckets: &[Bucket], start: Micros, end: Micros) -> Vec<Bucket> {
    let from = buckets.partition_point(|b| b.t < start);
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets[from..].iter().take_while(|b| b.t < end) {
        if b.posts == 0 {
            continue;
        }
        let t = start + (b.t - start) / ACTIVITY_STEP * ACTIVITY_STEP;
        match out.last_mut() {
            Some(last) if last.t == t => last.posts += b.posts,
            _ => out.push(Bucket {
                t,
                posts: b.posts,
                requests: 0,
            }),
        }
    }
    out
}

/// One client billed: its result, what the next run needs (with a [`Horizon::Watermark`];
/// `None` when there is nothing to carry), and how many buckets it held.
pub struct Billed {
    pub result: ClientResult,
    pub carry: Option<Carry>,
    pub buckets: usize,
}

/// A client's request totals and the time of its first and last request.
#[derive(Clone, Copy)]
struct Totals {
    posts: u64,
    requests: u64,
    first: Micros,
    last: Micros,
}

impl Totals {
    /// The totals of sorted `buckets` (times 0 when there are none).
    fn of(buckets: &[Bucket]) -> Totals {
        Totals {
            // Saturating: a sum past `MAX_COUNT` is refused by `limits::check_client`.
            posts: buckets.iter().fold(0, |a, b| a.saturating_add(b.posts)),
            requests: buckets.iter().fold(0, |a, b| a.saturating_add(b.requests)),
            first: buckets.first().map_or(0, |b| b.t),
            last: buckets.last().map_or(0, |b| b.t),
        }
    }

    /// These totals (of a run's new buckets, `new` when there are any) after the
    /// carried ones.
    fn after(self, carry: &Carry, new: bool) -> Totals {
        Totals {
            posts: carry.total_posts.saturating_add(self.posts),
            requests: carry.total_requests.saturating_add(self.requests),
            first: if new {
                self.first.min(carry.first_request)
            } else {
                carry.first_request
            },
            last: if new {
                self.last.max(carry.last_request)
            } else {
                carry.last_request
            },
        }
    }
}

/// Bills one client: `new` are this run's buckets (sorted), `carry` what an earlier
/// run handed on.
pub fn bill(
    policy: &Policy,
    horizon: &Horizon,
    key: Box<[u8]>,
    id: Identity,
    new: Vec<Bucket>,
    carry: Option<Carry>,
) -> Billed {
    let fresh = Totals::of(&new);
    let totals = match &carry {
        Some(k) => fresh.after(k, !new.is_empty()),
        None => fresh,
    };
    let Carry {
        buckets: carried,
        peak: carried_peak,
        ledger,
        ..
    } = carry.unwrap_or_default();
    let buckets = if carried.is_empty() {
        new
    } else {
        let mut all = carried;
        all.extend(new);
        Series::from_buckets(all).into_buckets()
    };
    // Rolling windows never start before the end of the last one billed final.
    let from = ledger.last().map_or(Micros::MIN, |w| w.window.end);
    let spans = window::billed_from(&buckets, policy.window, policy.threshold, policy.mode, from);
    let mut windows: Vec<BilledWindow> = ledger
        .iter()
        .map(|s| BilledWindow {
            status: WindowStatus::Final,
            new_in_this_run: false,
            ..s.window.clone()
        })
        .collect();
    for s in spans {
        let end = s.start.saturating_add(policy.window);
        if horizon.settled(end) {
            continue;
        }
        windows.push(BilledWindow {
            index: windows.len() + 1,
            start: s.start,
            end,
            posts: s.posts,
            requests: s.requests,
            damages: policy.damages(s.posts, id.exempt),
            last_request: last_before(&buckets, end),
            evidence: Default::default(),
            status: horizon.status(end),
            new_in_this_run: true,
        });
    }
    let next = match *horizon {
        Horizon::Complete => None,
        Horizon::Watermark { watermark, run, .. } => next_carry(
            policy,
            watermark,
            run,
            &buckets,
            carried_peak,
            ledger,
            &windows,
            totals,
        ),
    };
    let peak = better(carried_peak, window::peak(&buckets, policy.window));
    let held = buckets.len();
    // Buckets are kept only for flagged and exempt clients (charts and rate profile).
    let keep_buckets = !windows.is_empty() || id.exempt;
    // With nightly state, the chart shows what the state keeps: the activity per
    // minute of every window billed final, and the buckets from `watermark − window`
    // on outside them; so a rerun that reads nothing new draws the same chart.
    let chart = match (horizon, &next, keep_buckets) {
        (Horizon::Watermark { watermark, .. }, Some(c), true) => {
            let keep_from = watermark.map_or(Micros::MIN, |w| w.saturating_sub(policy.window));
            Some(chart_series(&c.ledger, &buckets, keep_from))
        }
        _ => None,
    };
    Billed {
        result: ClientResult {
            key,
            name: id.name,
            cell: id.cell,
            windows,
            peak,
            total_posts: totals.posts,
            total_requests: totals.requests,
            first_request: totals.first,
            last_request: totals.last,
            exempt: id.exempt,
            buckets: if keep_buckets { buckets } else { Vec::new() },
            chart,
            members: None,
            tops: None,
            breakdown: None,
        },
        carry: next,
        buckets: held,
    }
}

/// What the next run needs of a client: the buckets a later window may still start
/// at, the peak of the windows already complete, the totals, and the ledger (`ledger`,
/// what earlier runs settled) with the windows billed final now. `None` when there is
/// nothing in the trailing window and nothing billed (the state stays small), unless
/// the peak is over the threshold (calendar mode can leave such a peak unbilled): a
/// later peak of a flagged client beats any other.
#[allow(clippy::too_many_arguments)]
fn next_carry(
    policy: &Policy,
    watermark: Option<Micros>,
    run: u64,
    buckets: &[Bucket],
    carried_peak: Option<Span>,
    mut ledger: Vec<Settled>,
    windows: &[BilledWindow],
    totals: Totals,
) -> Option<Carry> {
    let keep_from = watermark.map_or(Micros::MIN, |w| w.saturating_sub(policy.window));
    let kept: Vec<Bucket> = buckets
        .iter()
        .filter(|b| b.t >= keep_from)
        .copied()
        .collect();
    let settled_peak = match watermark {
        Some(_) => better(
            carried_peak,
            window::peak_until(buckets, policy.window, keep_from),
        ),
        None => carried_peak,
    };
    ledger.extend(
        windows
            .iter()
            .filter(|w| w.new_in_this_run && w.status == WindowStatus::Final)
            .map(|w| Settled {
                window: BilledWindow {
                    evidence: Default::default(),
                    ..w.clone()
                },
                run,
                activity: activity(buckets, w.start, w.end),
            }),
    );
    let over = settled_peak.is_some_and(|p| p.posts > policy.threshold);
    (!kept.is_empty() || !ledger.is_empty() || over).then_some(Carry {
        buckets: kept,
        peak: settled_peak,
        total_posts: totals.posts,
        total_requests: totals.requests,
        first_request: totals.first,
        last_request: totals.last,
        ledger,
    })
}

/// The activity of the `ledger`'s windows, and the `buckets` from `keep_from` on that
/// fall outside them, in time order.
fn chart_series(ledger: &[Settled], buckets: &[Bucket], keep_from: Micros) -> Vec<Bucket> {
    let inside = |t: Micros| {
        let i = ledger.partition_point(|s| s.window.end <= t);
        i < ledger.len() && ledger[i].window.start <= t
    };
    let mut out: Vec<Bucket> = ledger
        .iter()
        .flat_map(|s| s.activity.iter().copied())
        .collect();
    out.extend(
        buckets
            .iter()
            .filter(|b| b.t >= keep_from && !inside(b.t))
            .copied(),
    );
    out.sort_by_key(|b| b.t);
    out
}

/// The larger peak; the earlier on a tie.
fn better(a: Option<Span>, b: Option<Span>) -> Option<Span> {
    match (a, b) {
        (Some(a), Some(b)) => Some(
            if b.posts > a.posts || (b.posts == a.posts && b.start < a.start) {
                b
            } else {
                a
            },
        ),
        (a, b) => a.or(b),
    }
}

/// What to carry per client key, in key order (nightly state).
pub type Carried = Vec<(Box<[u8]>, Carry)>;

/// Works out how the reports name a client key (see [`Identity`]).
pub type Identify<'a> = dyn Fn(&[u8]) -> Identity + Sync + 'a;

/// One client to bill: its key, what an earlier run carried, and this run's buckets.
pub struct ToBill {
    pub key: Box<[u8]>,
    pub carry: Option<Carry>,
    pub new: Series,
}

/// Every client billed, in parallel on the current rayon pool: the analysis, and
/// (with a [`Horizon::Watermark`]) what to carry per client, in the order given.
pub fn bill_all(
    policy: &Policy,
    horizon: &Horizon,
    clients: impl IndexedParallelIterator<Item = ToBill>,
    identify: &Identify<'_>,
) -> (Analysis, Carried) {
    gather(policy, horizon, clients, identify, 0).finish()
}

/// Bills `clients` (the `first`-th client of all on) into a [`Gathered`]. Each
/// client's buckets are decoded, used and dropped in turn, and so is its result unless
/// the reports show it: memory holds the clients being billed, not a result per client.
fn gather(
    policy: &Policy,
    horizon: &Horizon,
    clients: impl IndexedParallelIterator<Item = ToBill>,
    identify: &Identify<'_>,
    first: u64,
) -> Gathered {
    clients
        .enumerate()
        .map(|(i, c)| {
            let id = identify(&c.key);
            let new = c.new.into_buckets();
            let carried = c
                .carry
                .as_ref()
                .map_or((0, 0), |k| (k.total_posts, k.total_requests));
            // A client whose counts or times the reports cannot hold is refused (by name).
            let refused = limits::check_client(&id.name, &new, carried, policy.window)
                .and_then(|_| match &c.carry {
                    Some(k) => limits::check_client(&id.name, &k.buckets, (0, 0), policy.window),
                    None => Ok(()),
                })
                .err()
                .map(|e| (first + i as u64, e.to_string()));
            (bill(policy, horizon, c.key, id, new, c.carry), refused)
        })
        .fold(Gathered::new, |mut g, (billed, refused)| {
            g.add(billed, refused);
            g
        })
        .reduce(Gathered::new, Gathered::merge)
}

/// Every client of `aggregate` billed over complete data (one run, no state).
pub fn analyze(policy: &Policy, aggregate: Aggregate, identify: &Identify<'_>) -> Analysis {
    analyze_with_leads(policy, aggregate, identify, None::<fn(&SortedClients) -> _>)
}

/// The clients of an aggregate, sorted by key, each with its series.
pub type SortedClients = [(Box<[u8]>, Series)];

/// [`analyze`], and with `find_leads` (`scan --also-by`) the leads it finds among all
/// the clients before they are billed (and consumed), in [`Analysis::leads`].
pub fn analyze_with_leads(
    policy: &Policy,
    aggregate: Aggregate,
    identify: &Identify<'_>,
    find_leads: Option<impl FnOnce(&SortedClients) -> Vec<crate::engine::groups::GroupLeads>>,
) -> Analysis {
    use rayon::iter::Either;
    let (clients, leads) = match find_leads {
        // Each key copied as its client is billed: the aggregate is never held twice.
        None => (Either::Left(aggregate.into_sorted_par()), Vec::new()),
        // The leads look at every client at once, before any is billed.
        Some(find) => {
            let clients = aggregate.into_sorted_series();
            let leads = find(&clients);
            (Either::Right(clients.into_par_iter()), leads)
        }
    };
    let clients = clients.map(|(key, new)| ToBill {
        key,
        carry: None,
        new,
    });
    let mut analysis = bill_all(policy, &Horizon::Complete, clients, identify).0;
    analysis.leads = leads;
    analysis
}

/// Clients billed a chunk at a time (in parallel within a chunk) when they come one by
/// one from a merge of sorted runs, at most this many clients or
/// [`STREAM_CHUNK_BYTES`] of series at once.
const STREAM_CHUNK: usize = 1 << 16;
const STREAM_CHUNK_BYTES: usize = 64 << 20;

/// [`analyze`] over clients that come in key order from `clients` (a merge of runs
/// spilled to disk, one client at a time: each key once): the same analysis, holding
/// only a chunk of clients at a time. The first error of `clients` stops it.
pub fn analyze_stream<E>(
    policy: &Policy,
    clients: impl Iterator<Item = Result<(Box<[u8]>, Series), E>>,
    identify: &Identify<'_>,
) -> Result<Analysis, E> {
    let mut all = Gathered::new();
    let mut clients = clients.peekable();
    let mut billed = 0u64;
    while clients.peek().is_some() {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < STREAM_CHUNK && bytes < STREAM_CHUNK_BYTES {
            let Some(next) = clients.next() else { break };
            let (key, new) = next?;
            bytes += new.heap_bytes() + key.len();
            chunk.push(ToBill {
                key,
                carry: None,
                new,
            });
        }
        let n = chunk.len() as u64;
        let part = gather(
            policy,
            &Horizon::Complete,
            chunk.into_par_iter(),
            identify,
            billed,
        );
        all = all.merge(part);
        billed += n;
    }
    Ok(all.finish().0)
}

/// One billed window of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledWindow {
    /// 1, 2, … per client.
    pub index: usize,
    pub start: Micros,
    pub end: Micros,
    pub posts: u64,
    pub requests: u64,
    pub damages: Cents,
    /// Time of the last request in the window (the first is at `start`).
    pub last_request: Micros,
    /// The raw log lines of the first and last request, when found.
    pub evidence: crate::engine::evidence::WindowEvidence,
    /// `final` once the window's end is at or before the watermark (always without state).
    pub status: WindowStatus,
    /// False for a window billed final by an earlier run (nightly state).
    pub new_in_this_run: bool,
}

/// Whether later data can still change a billed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowStatus {
    /// Its end is at or before the watermark: no later run changes it.
    Final,
    /// Its end is after the watermark: a later run derives it again.
    Provisional,
}

impl WindowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Final => "final",
            Self::Provisional => "provisional",
        }
    }
}

/// Everything computed for one client.
#[derive(Debug, Clone)]
pub struct ClientResult {
    pub key: Box<[u8]>,
    /// The key as written in JSON and on the terminal (`\xHH` for non-UTF-8 bytes).
    pub name: String,
    /// The key as written in CSV (formula-guarded where it comes from log text).
    pub cell: String,
    pub windows: Vec<BilledWindow>,
    pub peak: Option<Span>,
    pub total_posts: u64,
    pub total_requests: u64,
    pub first_request: Micros,
    pub last_request: Micros,
    pub exempt: bool,
    /// The client's buckets, kept only for flagged and exempt clients (for the charts
    /// and rate profile of report.html); empty for everyone else.
    pub buckets: Vec<Bucket>,
    /// With nightly state, what the chart draws: the activity per minute of every
    /// window billed final ([`Settled::activity`]) and the buckets the state still
    /// holds outside them; `None` without state (the chart draws `buckets`).
    pub chart: Option<Vec<Bucket>>,
    /// With an organisations file, for an organisation: its top member keys by posts
    /// ([`crate::engine::members`]); `None` otherwise.
    pub members: Option<Vec<crate::engine::members::Member>>,
    /// Top paths and user agents of the client's requests ([`crate::engine::tops`]), from the
    /// second read; `None` without it (`--no-evidence`, `reduce`).
    pub tops: Option<crate::engine::tops::TopLists>,
    /// The spellings the client was logged as and its requests and posts by status
    /// class and by rule ([`crate::engine::breakdown`]), from the second read; `None`
    /// without it.
    pub breakdown: Option<crate::engine::breakdown::Breakdown>,
}

impl ClientResult {
    /// What the client owes: the sum of its windows' damages (nothing for an exempt
    /// client, whose windows carry none: [`Policy::damages`], the one place that rule
    /// is written).
    pub fn damages(&self) -> Cents {
        self.windows.iter().map(|w| w.damages).sum()
    }
    pub fn billed_posts(&self) -> u64 {
        self.windows.iter().map(|w| w.posts).sum()
    }
    pub fn billed_requests(&self) -> u64 {
        self.windows.iter().map(|w| w.requests).sum()
    }
}

/// Every client with a request, in numbers.
#[derive(Debug, Clone)]
pub struct Population {
    pub clients: u64,
    /// Distinct (client, instant) pairs held in memory: what the aggregate's size grows with.
    pub buckets: u64,
    pub clients_with_posts: u64,
    /// Peak rolling-window posts of every client (0 for a client without posts):
    /// approximate (3 significant figures), for quantiles only.
    pub peak_posts: Histogram<u64>,
    /// The lowest and highest peak posts of any client, exact.
    pub peak_min: u64,
    pub peak_max: u64,
    /// Exact counts of clients per decade of peak posts: `[0,1)`, `[1,10)`, `[10,100)`, …
    pub decades: Vec<(u64, u64, u64)>,
    /// The clients with the highest peaks that billed no window (at most
    /// [`NEAR_MISSES`]), highest first: context for the threshold.
    pub near_misses: Vec<NearMiss>,
}

/// How many near misses are kept.
pub const NEAR_MISSES: usize = 20;

/// A client that billed no window, and its peak window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    pub client: String,
    pub cell: String,
    pub peak: Span,
}

#[derive(Debug, Clone)]
pub struct Analysis {
    /// Flagged and exempt clients, sorted by their written key.
    pub clients: Vec<ClientResult>,
    pub population: Population,
    /// The first client (in key order) whose counts or times the reports cannot hold
    /// ([`limits::check_client`]): the run must stop ([`Analysis::check`]).
    pub refused: Option<String>,
    /// With `scan --also-by`: the possible evasion leads of each grouping
    /// ([`crate::engine::groups`]), never billed; empty without it.
    pub leads: Vec<crate::engine::groups::GroupLeads>,
}

impl Analysis {
    /// Refuses an analysis that a report could only print wrapped or wrong: a client
    /// whose counts overflow or whose times are outside the years 0000–9999, or totals
    /// over all clients that overflow.
    pub fn check(&self) -> Result<(), crate::engine::InvalidValue> {
        if let Some(r) = &self.refused {
            return Err(r.clone().into());
        }
        let mut money = Some(Cents(0));
        let (mut posts, mut requests) = (Some(0u64), Some(0u64));
        for c in self.clients.iter() {
            for w in &c.windows {
                money = money.and_then(|m| m.0.checked_add(w.damages.0).map(Cents));
                posts = posts.and_then(|p| p.checked_add(w.posts));
                requests = requests.and_then(|r| r.checked_add(w.requests));
                if !limits::printable(w.end) {
                    return Err(format!(
                        "client {}: window {} ends after 9999-12-31: refused",
                        c.name, w.index
                    )
                    .into());
                }
            }
        }
        if money.is_none() || posts.is_none() || requests.is_none() {
            return Err("the totals over all clients overflow (posts, requests or damages): refused rather than wrapped".into());
        }
        Ok(())
    }

    pub fn total_damages(&self) -> Cents {
        self.clients.iter().map(|c| c.damages()).sum()
    }
    /// Billed windows: an exempt client's windows are not billed.
    pub fn total_windows(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| !c.exempt)
            .map(|c| c.windows.len())
            .sum()
    }
}

/// What billing keeps of the clients as they go by: the population's statistics, the
/// flagged and exempt clients, the best near misses so far and, with a watermark, what
/// each client carries. Parts gathered over consecutive clients merge in order.
struct Gathered {
    peak_posts: Histogram<u64>,
    decades: Vec<(u64, u64, u64)>,
    with_posts: u64,
    peak_min: u64,
    peak_max: u64,
    /// Near misses, each with its key (the last tie-break): at most [`NEAR_MISSES`]
    /// once trimmed.
    near: Vec<(NearMiss, Box<[u8]>)>,
    /// Flagged and exempt clients.
    kept: Vec<ClientResult>,
    /// (client, instant) pairs held.
    buckets: u64,
    /// The first client refused, by its place among all clients, and why.
    refused: Option<(u64, String)>,
    carried: Carried,
}

/// The order near misses are listed in: highest peak first, then by the written
/// client, then by key.
fn near_order(a: &(NearMiss, Box<[u8]>), b: &(NearMiss, Box<[u8]>)) -> std::cmp::Ordering {
    b.0.peak
        .posts
        .cmp(&a.0.peak.posts)
        .then_with(|| a.0.cell.cmp(&b.0.cell))
        .then_with(|| a.1.cmp(&b.1))
}

impl Gathered {
    fn new() -> Gathered {
        Gathered {
            peak_posts: Histogram::<u64>::new(3).expect("3 significant figures is valid"),
            decades: Vec::new(),
            with_posts: 0,
            peak_min: u64::MAX,
            peak_max: 0,
            near: Vec::new(),
            kept: Vec::new(),
            buckets: 0,
            refused: None,
            carried: Vec::new(),
        }
    }

    /// One client billed (and whether it was refused, with its place among all).
    fn add(&mut self, billed: Billed, refused: Option<(u64, String)>) {
        let Billed {
            result: c,
            carry,
            buckets,
        } = billed;
        self.buckets = self.buckets.saturating_add(buckets as u64);
        if let Some(r) = refused {
            self.refuse(r);
        }
        let p = c.peak.map_or(0, |s| s.posts);
        self.peak_min = self.peak_min.min(p);
        self.peak_max = self.peak_max.max(p);
        // `record` grows the histogram; `saturating_record` would clamp to its top.
        if self.peak_posts.record(p).is_err() {
            self.peak_posts.saturating_record(p);
        }
        self.with_posts += (p > 0) as u64;
        let (lo, hi) = decade(p);
        match self.decades.iter_mut().find(|d| d.0 == lo) {
            Some(d) => d.2 += 1,
            None => self.decades.push((lo, hi, 1)),
        }
        if let Some(k) = carry {
            self.carried.push((c.key.clone(), k));
        }
        if !c.windows.is_empty() || c.exempt {
            self.kept.push(c);
        } else if p > 0 {
            if let Some(peak) = c.peak {
                self.near.push((
                    NearMiss {
                        client: c.name,
                        cell: c.cell,
                        peak,
                    },
                    c.key,
                ));
                if self.near.len() >= 4 * NEAR_MISSES {
                    self.trim_near();
                }
            }
        }
    }

    fn refuse(&mut self, r: (u64, String)) {
        if self.refused.as_ref().is_none_or(|(at, _)| r.0 < *at) {
            self.refused = Some(r);
        }
    }

    /// Keeps the best [`NEAR_MISSES`] near misses, selected, then sorted, so that
    /// millions of clients cost no sort of them all.
    fn trim_near(&mut self) {
        if self.near.len() > NEAR_MISSES {
            self.near.select_nth_unstable_by(NEAR_MISSES, near_order);
            self.near.truncate(NEAR_MISSES);
        }
    }

    /// These clients, then `later`'s (the clients after them).
    fn merge(mut self, later: Gathered) -> Gathered {
        self.buckets = self.buckets.saturating_add(later.buckets);
        if let Some(r) = later.refused {
            self.refuse(r);
        }
        self.peak_min = self.peak_min.min(later.peak_min);
        self.peak_max = self.peak_max.max(later.peak_max);
        self.peak_posts
            .add(&later.peak_posts)
            .expect("a histogram that grows takes any other");
        self.with_posts += later.with_posts;
        for (lo, hi, n) in later.decades {
            match self.decades.iter_mut().find(|d| d.0 == lo) {
                Some(d) => d.2 += n,
                None => self.decades.push((lo, hi, n)),
            }
        }
        self.carried.extend(later.carried);
        self.kept.extend(later.kept);
        self.near.extend(later.near);
        self.trim_near();
        self
    }

    /// The analysis: flagged and exempt clients sorted by their written key, the
    /// population's statistics; and what to carry, in the order billed.
    fn finish(mut self) -> (Analysis, Carried) {
        self.decades.sort();
        self.trim_near();
        self.near.sort_by(near_order);
        // Rows are ordered by the bytes of the written client.
        self.kept
            .sort_by(|a, b| a.cell.cmp(&b.cell).then_with(|| a.key.cmp(&b.key)));
        let analysis = Analysis {
            population: Population {
                clients: self.peak_posts.len(),
                buckets: self.buckets,
                clients_with_posts: self.with_posts,
                peak_posts: self.peak_posts,
                peak_min: self.peak_min.min(self.peak_max),
                peak_max: self.peak_max,
                decades: self.decades,
                near_misses: self.near.into_iter().map(|(n, _)| n).collect(),
            },
            clients: self.kept,
            refused: self.refused.map(|(_, why)| why),
            leads: Vec::new(),
        };
        (analysis, self.carried)
    }
}

/// Time of the last bucket before `end` (buckets are sorted).
pub fn last_before(buckets: &[Bucket], end: Micros) -> Micros {
    let j = buckets.partition_point(|b| b.t < end);
    buckets[j.saturating_sub(1)].t
}

/// `[0,1)` for 0, else the power-of-ten range holding `p`.
fn decade(p: u64) -> (u64, u64) {
    if p == 0 {
        return (0, 1);
    }
    let mut lo = 1u64;
    while lo <= p / 10 {
        lo *= 10;
    }
    (lo, lo.saturating_mul(10))
}

#[cfg(test)]
mod tests {
    use super::{decade, watermark};

    #[test]
    fn decades() {
        assert_eq!(decade(0), (0, 1));
        assert_eq!(decade(1), (1, 10));
        assert_eq!(decade(9), (1, 10));
        assert_eq!(decade(10), (10, 100));
        assert_eq!(decade(1_000_001), (1_000_000, 10_000_000));
    }

    #[test]
    fn the_slowest_input_holds_the_watermark_back_and_it_never_moves_back() {
        // Two servers: one has logs up to 100, the other only up to 40.
        assert_eq!(watermark(None, [100, 40], 10), Some(30));
        assert_eq!(watermark(Some(50), [100, 40], 10), Some(50));
        assert_eq!(watermark(Some(20), [100, 40], 10), Some(30));
        // A run that read no request leaves it where it was.
        assert_eq!(watermark(Some(20), [], 10), Some(20));
        assert_eq!(watermark(None, [], 10), None);
        assert_eq!(watermark(None, [i64::MIN + 1], 10), Some(i64::MIN));
    }
}
