//! The oracle: `docs/contracts.md` rewritten as a chain walk, and the checks of one call.

use super::*;
use std::time::SystemTime;

use harness_core::outcome::Attempt;
use harness_core::output::parse::Repair;

/// What a chain step does next, as the oracle sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Next {
    Retry,
    Reask,
    Fallback(&'static str),
    Escalate,
    Default,
    Fail,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cursor {
    step: usize,
    used: u32,
}

pub(crate) type Cursors = [Cursor; 6];

/// What is known about the time left when a decision is taken: somewhere in
/// `[estimate - DECISION_LAG, estimate + 5 ms]` (seconds, negative once the deadline has passed).
#[derive(Clone, Copy)]
pub(crate) struct TimeLeft {
    pub(crate) estimate: f64,
}

impl TimeLeft {
    const SPENT: TimeLeft = TimeLeft { estimate: -1e9 };
    fn max(self) -> f64 {
        self.estimate + 0.005
    }
    fn min(self) -> f64 {
        self.estimate - DECISION_LAG.as_secs_f64()
    }
    /// Whether the deadline may still have time left / may be spent.
    fn may_have_time(self) -> bool {
        self.max() > 0.0
    }
    fn may_be_spent(self) -> bool {
        self.min() <= 0.0
    }
}

/// What recovery says about one decision (all `false` with recovery off).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Gate {
    /// The attempt was refused by an open breaker: `retry` and `reask` steps are skipped, as for
    /// any error that is not retryable (no request was sent, so neither could help).
    pub(crate) circuit_open: bool,
    /// The provider's retry budget may be spent now: a retry step that would be taken may be
    /// skipped instead, and the chain's next step decides.
    pub(crate) budget_may_be_spent: bool,
}

/// A decision the contract allows, the cursors after it, and whether the path to it skipped a
/// retry step for a spent budget.
pub(crate) type Branch = (Next, Cursors, bool);

/// Every decision `docs/contracts.md` allows for a failure of `class`, with the cursors after it.
/// Time-dependent steps fork when the time left is too close to call; so does a retry when the
/// budget may be spent.
pub(crate) fn decisions(
    contract: &TaskContract,
    class: FailureClass,
    cursors: Cursors,
    retry_after: Option<Duration>,
    left: TimeLeft,
    gate: Gate,
    out: &mut Vec<Branch>,
) {
    let i = class.index();
    let c = cursors[i];
    let steps = contract.steps(class);
    let mut advanced = cursors;
    advanced[i] = Cursor {
        step: c.step + 1,
        used: 0,
    };
    let mut used_one = cursors;
    used_one[i].used += 1;
    let next =
        |out: &mut Vec<Branch>| decisions(contract, class, advanced, retry_after, left, gate, out);
    match steps.get(c.step) {
        None => out.push((Next::Fail, cursors, false)),
        Some(Action::Retry { times, backoff }) => {
            if c.used >= *times || gate.circuit_open {
                return next(out);
            }
            assert!(!backoff.jitter, "the oracle needs known delays");
            // The n-th retry of this step waits initial × multiplier^(n-1), capped; a
            // Retry-After is a lower bound. Written out here rather than calling Backoff::delay.
            let exp = backoff.multiplier.powi(c.used as i32);
            let mut delay = (backoff.initial.as_secs_f64() * exp).min(backoff.max.as_secs_f64());
            if let Some(after) = retry_after {
                delay = delay.max(after.as_secs_f64());
            }
            // A retry needs time left and a backoff that ends before the deadline; then a
            // withdrawal from the budget.
            if left.max() > delay && left.may_have_time() {
                out.push((Next::Retry, used_one, false));
                if gate.budget_may_be_spent {
                    let mut skipped = Vec::new();
                    next(&mut skipped);
                    out.extend(skipped.into_iter().map(|(n, c, _)| (n, c, true)));
                }
            }
            if left.min() <= delay {
                next(out);
            }
        }
        Some(Action::Reask { times }) => {
            if c.used >= *times || gate.circuit_open {
                return next(out);
            }
            if left.may_have_time() {
                out.push((Next::Reask, used_one, false));
            }
            if left.may_be_spent() {
                next(out);
            }
        }
        Some(Action::Fallback(target)) => {
            if left.may_have_time() {
                out.push((Next::Fallback(target.model), advanced, false));
            }
            if left.may_be_spent() {
                next(out);
            }
        }
        Some(Action::Escalate) => out.push((Next::Escalate, cursors, false)),
        Some(Action::Default) => out.push((Next::Default, cursors, false)),
        Some(Action::Fail) => out.push((Next::Fail, cursors, false)),
        // A source's steps: the engine skips them in an attempt's chain.
        Some(Action::FallbackSource { .. } | Action::Proceed) => next(out),
    }
}

/// An attempt the harness refused to send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NotSent {
    /// The breaker for its provider and model was open.
    CircuitOpen,
    /// The provider was paused (a `Retry-After`) past the deadline; it would have fit after this.
    Shed(Duration),
}

/// Whether the attempt was refused before a request was sent, from its recorded error.
pub(crate) fn not_sent(a: &Attempt) -> Option<NotSent> {
    let e = a.error.as_deref()?;
    if e.starts_with("the circuit breaker for ") && e.ends_with(" is open; no request was sent") {
        return Some(NotSent::CircuitOpen);
    }
    let rest = e.strip_prefix("shed by the harness's ")?;
    let wait = rest
        .split_once("; it fits in ")
        .and_then(|(_, d)| parse_debug_duration(d))
        .unwrap_or(Duration::MAX);
    Some(NotSent::Shed(wait))
}

/// Reads a `Duration`'s `Debug` form (`1s`, `812.5ms`, `20µs`, `7ns`).
pub(crate) fn parse_debug_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" => n / 1e6,
        "ns" => n / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Seconds since the epoch.
fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// When an attempt ended, in seconds since the epoch.
pub(crate) fn end_of(a: &Attempt) -> f64 {
    secs(a.started_at) + a.latency.as_secs_f64()
}

/// How far apart two clocks' readings of one moment may be (wall clock of a start plus tokio's
/// latency, against the budget's own instants), in seconds.
const CLOCK_SLACK: f64 = 0.1;

/// What every call of a phase did on one provider, in time order: what the recovery state a
/// decision saw is made of.
#[derive(Default)]
struct Line {
    /// Retries taken (each withdrew one from the budget).
    withdrawals: Vec<f64>,
    /// Calls started here, first attempts and fallbacks (each deposited 20% of a retry).
    deposits: Vec<f64>,
    /// Ends of sent attempts that count against a breaker (timeouts and provider errors), by
    /// model.
    failures: HashMap<String, Vec<f64>>,
    /// Ends of attempts answered 429 with a `Retry-After` (each paused the provider).
    pauses: Vec<f64>,
}

fn line<'a>(
    lines: &'a mut HashMap<(usize, String), Line>,
    phase: usize,
    provider: &str,
) -> &'a mut Line {
    lines.entry((phase, provider.to_owned())).or_default()
}

fn count(sorted: &[f64], from: f64, to: f64) -> usize {
    sorted.partition_point(|t| *t <= to) - sorted.partition_point(|t| *t <= from)
}

/// The recovery rules of `docs/contracts.md`, as the oracle applies them across calls.
pub(crate) struct World {
    mode: Mode,
    lines: HashMap<(usize, String), Line>,
}

impl World {
    /// Reconstructs each provider's deposits, withdrawals, breaker failures and pauses from the
    /// calls' reports.
    pub(crate) fn new(mode: Mode, calls: &[Call]) -> World {
        let mut lines: HashMap<(usize, String), Line> = HashMap::new();
        for call in calls {
            let report = match &call.result {
                Ok(o) => &o.report,
                Err(e) => e.report(),
            };
            let attempts = &report.attempts;
            let Some(first) = attempts.first() else {
                continue;
            };
            line(&mut lines, call.phase, &first.provider)
                .deposits
                .push(secs(report.started_at));
            for act in &report.actions {
                let Some(a) = attempts
                    .get(act.after_attempt as usize - 1)
                    .or(attempts.last())
                else {
                    continue;
                };
                match act.action {
                    ActionKind::Retry => line(&mut lines, call.phase, &a.provider)
                        .withdrawals
                        .push(end_of(a)),
                    ActionKind::Fallback => {
                        let to = attempts
                            .get(act.after_attempt as usize)
                            .map_or("secondary", |b| b.provider.as_str());
                        line(&mut lines, call.phase, to).deposits.push(end_of(a));
                    }
                    _ => {}
                }
            }
            for a in attempts {
                let sent = not_sent(a).is_none();
                if sent && matches!(a.failure, Some(Timeout | ProviderError)) {
                    line(&mut lines, call.phase, &a.provider)
                        .failures
                        .entry(a.model.clone())
                        .or_default()
                        .push(end_of(a));
                }
                if a.error
                    .as_deref()
                    .is_some_and(|e| e.contains("; retry after "))
                {
                    line(&mut lines, call.phase, &a.provider)
                        .pauses
                        .push(end_of(a));
                }
            }
        }
        for line in lines.values_mut() {
            let sort = |v: &mut Vec<f64>| v.sort_by(f64::total_cmp);
            sort(&mut line.withdrawals);
            sort(&mut line.deposits);
            sort(&mut line.pauses);
            line.failures.values_mut().for_each(sort);
        }
        World { mode, lines }
    }

    fn line(&self, phase: usize, provider: &str) -> Option<&Line> {
        self.lines.get(&(phase, provider.to_owned()))
    }

    /// Whether `provider`'s retry budget can be spent at `t`: a 10 s window of 1 s slots, so a
    /// withdrawal counts for 9 to 10 s; 10 retries a second of reserve (100) plus 20% of the
    /// calls deposited; refused when fewer than one retry is left.
    pub(crate) fn budget_may_be_spent(&self, phase: usize, provider: &str, t: f64) -> bool {
        if self.mode == Mode::Off {
            return false;
        }
        let Some(line) = self.line(phase, provider) else {
            return false;
        };
        let most_withdrawn = count(&line.withdrawals, t - 10.0 - CLOCK_SLACK, t + CLOCK_SLACK);
        let fewest_deposits = count(&line.deposits, t - 9.0 + CLOCK_SLACK, t - CLOCK_SLACK);
        most_withdrawn as f64 > 99.0 + 0.2 * fewest_deposits as f64
    }

    /// Whether the breaker for `provider`/`model` can have been open at `t`: it opens when at
    /// least half of at least 10 calls in its 60 s window failed (so at least 5 failures), stays
    /// open 30 s, and re-opens from half-open on a failed probe; the window has 6 s slots.
    pub(crate) fn breaker_may_be_open(
        &self,
        phase: usize,
        provider: &str,
        model: &str,
        t: f64,
    ) -> bool {
        let failures = self
            .line(phase, provider)
            .and_then(|l| l.failures.get(model))
            .map_or(0, |f| count(f, t - 96.0, t + CLOCK_SLACK));
        failures >= 5
    }

    /// Whether `provider` can have been paused at `t` by a `Retry-After` of 1 s.
    pub(crate) fn may_be_paused(&self, phase: usize, provider: &str, t: f64) -> bool {
        self.line(phase, provider)
            .is_some_and(|l| count(&l.pauses, t - 1.0 - CLOCK_SLACK, t + CLOCK_SLACK) > 0)
    }
}

/// The class each fault may produce on one attempt (`None`: an accepted answer). Any attempt may
/// also time out under load; those are counted and bounded separately.
pub(crate) fn expected_classes(fault: Option<Fault>, low: bool) -> Vec<Option<FailureClass>> {
    let answer = if low { Some(LowConfidence) } else { None };
    match fault {
        None | Some(Fault::SlowFirstByte | Fault::CodeFences | Fault::JsonInProse) => {
            vec![answer]
        }
        Some(
            Fault::Http500
            | Fault::Http502
            | Fault::Http503
            | Fault::ConnectionReset
            | Fault::TruncatedBody
            | Fault::NotJson
            | Fault::EmptyChoices
            | Fault::InvalidUtf8,
        ) => vec![Some(ProviderError)],
        Some(Fault::RateLimited | Fault::RateLimitedRetryAfter) => vec![Some(RateLimited)],
        Some(Fault::Stall) => vec![Some(Timeout)],
        Some(Fault::Refusal | Fault::ContentFilter) => vec![Some(Refusal)],
        // The lenient parser may learn to coerce "0.92" into 0.92 (issue #3).
        Some(Fault::WrongTypes) => vec![Some(InvalidOutput), answer],
        Some(
            Fault::MissingField
            | Fault::OutOfRange
            | Fault::Length
            | Fault::HugeContent
            | Fault::DeepNesting
            | Fault::SchemaDrift,
        ) => vec![Some(InvalidOutput)],
        Some(other) => panic!("no expectation for fault {other}"),
    }
}

/// How a call ended, as a column of the table.
pub(crate) fn column(result: &TaskResult<Triage>) -> String {
    match result {
        Ok(o) => match &o.resolution {
            Resolution::Answer(_) if o.provenance.fallback => "fallback".into(),
            Resolution::Answer(_) if o.provenance.reasks > 0 => "after reask".into(),
            Resolution::Answer(_) if o.provenance.retries > 0 => "after retry".into(),
            Resolution::Answer(_) if o.provenance.repaired => "repaired".into(),
            Resolution::Answer(_) => "first try".into(),
            Resolution::Default { .. } => "default".into(),
            Resolution::Escalated(_) => "escalated".into(),
            other => panic!("an end the oracle does not know: {other:?}"),
        },
        Err(e) => format!("err:{}", kind_name(e.kind())),
    }
}

pub(crate) fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::Timeout => "timeout",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::ProviderError => "provider_error",
        ErrorKind::InvalidOutput => "invalid_output",
        ErrorKind::Refusal => "refusal",
        ErrorKind::LowConfidence => "low_confidence",
        ErrorKind::Config => "config",
        other => panic!("an error kind the oracle does not know: {other:?}"),
    }
}

pub(crate) const COLUMNS: [&str; 13] = [
    "first try",
    "repaired",
    "after retry",
    "after reask",
    "fallback",
    "default",
    "escalated",
    "err:timeout",
    "err:rate_limited",
    "err:provider_error",
    "err:invalid_output",
    "err:refusal",
    "err:low_confidence",
];

pub(crate) struct Call {
    pub(crate) id: u64,
    /// Which phase (and so which harness and servers) it ran in.
    pub(crate) phase: usize,
    pub(crate) contract: &'static TaskContract,
    pub(crate) result: TaskResult<Triage>,
    pub(crate) elapsed: Duration,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) attempts: usize,
    pub(crate) spurious_timeouts: usize,
    pub(crate) unaligned_calls: usize,
    pub(crate) deadline_forks: usize,
    /// Calls whose deadline ran out between a step and the attempt it was to make.
    pub(crate) spent_between_steps: usize,
    /// The latest any checked call ended relative to its deadline, in seconds (negative: early).
    pub(crate) latest_end: f64,
    /// Attempts refused by an open breaker.
    pub(crate) circuit_open: usize,
    /// Attempts shed while the provider was paused.
    pub(crate) shed: usize,
    /// Calls whose only path through the contract skipped a retry for a spent budget.
    pub(crate) budget_skips: usize,
}

/// Checks one call; returns what is wrong with it.
pub(crate) fn check_call(
    call: &Call,
    primary: &[&RecordedRequest],
    secondary: &[&RecordedRequest],
    world: &World,
    stats: &mut Stats,
) -> Vec<String> {
    let mut problems = Vec::new();
    let contract = call.contract;
    let report: &CallReport = match &call.result {
        Ok(o) => &o.report,
        Err(e) => e.report(),
    };
    let attempts = &report.attempts;
    let k = attempts.len();
    stats.attempts += k;
    let mut fail = |m: String| problems.push(format!("{}: {m}", contract.name));

    // Bounds: attempts and time.
    if k == 0 || k as u32 > contract.max_attempts() {
        fail(format!("{k} attempts, max {}", contract.max_attempts()));
    }
    let limit = contract.effective_deadline() + DEADLINE_SLACK;
    let over = call.elapsed.as_secs_f64() - contract.effective_deadline().as_secs_f64();
    stats.latest_end = stats.latest_end.max(over);
    if call.elapsed > limit || report.elapsed > limit {
        fail(format!(
            "took {:?} (report {:?}), past the deadline {:?} + {DEADLINE_SLACK:?}",
            call.elapsed,
            report.elapsed,
            contract.effective_deadline()
        ));
    }

    // Each attempt against the request the server recorded for it and the fault it served.
    // An attempt refused by an open breaker or shed by a paused provider sends no request: the
    // servers' records must hold exactly the other attempts.
    let refused: Vec<Option<NotSent>> = attempts.iter().map(not_sent).collect();
    for (a, r) in attempts.iter().zip(&refused) {
        let Some(r) = r else { continue };
        if world.mode == Mode::Off {
            fail(format!(
                "attempt {} was refused ({r:?}) with recovery off",
                a.n
            ));
            continue;
        }
        let start = end_of(a) - a.latency.as_secs_f64();
        match r {
            NotSent::CircuitOpen => {
                stats.circuit_open += 1;
                if a.failure != Some(ProviderError) {
                    fail(format!(
                        "attempt {} met an open breaker, classed {:?}",
                        a.n, a.failure
                    ));
                }
                if !world.breaker_may_be_open(call.phase, &a.provider, &a.model, start) {
                    fail(format!(
                        "attempt {} met an open breaker for {}/{} that too few failures can \
                         have opened",
                        a.n, a.provider, a.model
                    ));
                }
            }
            NotSent::Shed(wait) => {
                stats.shed += 1;
                if a.failure != Some(RateLimited) {
                    fail(format!("attempt {} was shed, classed {:?}", a.n, a.failure));
                }
                if *wait > Duration::from_secs(1)
                    || !world.may_be_paused(call.phase, &a.provider, start)
                {
                    fail(format!(
                        "attempt {} was shed for {wait:?} while no Retry-After can have paused {}",
                        a.n, a.provider
                    ));
                }
            }
        }
    }
    let aligned = {
        let on = |p: &str| {
            attempts
                .iter()
                .zip(&refused)
                .filter(|(a, r)| a.provider == p && r.is_none())
                .count()
        };
        on("primary") == primary.len() && on("secondary") == secondary.len()
    };
    let mut served: Vec<Option<&RecordedRequest>> = vec![None; k];
    if aligned {
        let (mut p, mut s) = (primary.iter(), secondary.iter());
        for ((slot, a), r) in served.iter_mut().zip(attempts).zip(&refused) {
            if r.is_some() {
                continue;
            }
            *slot = if a.provider == "primary" {
                p.next()
            } else {
                s.next()
            }
            .copied();
        }
    } else {
        stats.unaligned_calls += 1;
        // A request the server never finished reading is not recorded: an attempt the deadline
        // left only a few milliseconds may end so.
        let cut_short = attempts
            .iter()
            .any(|a| a.failure == Some(Timeout) && a.latency < TIMEOUT - Duration::from_millis(50));
        if !cut_short {
            fail(format!(
                "{k} attempts, but the servers recorded {} + {} requests",
                primary.len(),
                secondary.len()
            ));
        }
    }
    for (a, req) in attempts.iter().zip(&served) {
        let Some(req) = req else { continue };
        if req.model() != Some(a.model.as_str()) {
            fail(format!(
                "attempt {} asked for {} but the server saw {:?}",
                a.n,
                a.model,
                req.model()
            ));
        }
        let allowed = expected_classes(req.fault, low_confidence(req));
        if !allowed.contains(&a.failure) {
            if a.failure == Some(Timeout) {
                stats.spurious_timeouts += 1;
            } else {
                fail(format!(
                    "attempt {} met {:?} (low confidence: {}) and was classed {:?}",
                    a.n,
                    req.fault,
                    low_confidence(req),
                    a.failure
                ));
            }
        }
        if a.failure.is_none() {
            let fixed = matches!(req.fault, Some(Fault::CodeFences | Fault::JsonInProse));
            let repaired = !a.repairs.is_empty();
            // Wrong types are accepted only when the parser coerced them ("0.92" → 0.92), and the
            // coercion is recorded.
            let coerced = req.fault == Some(Fault::WrongTypes)
                && a.repairs
                    .iter()
                    .any(|r| matches!(r, Repair::Coerced { .. }));
            if fixed != repaired && !coerced {
                fail(format!(
                    "attempt {} met {:?}, repairs {:?}",
                    a.n, req.fault, a.repairs
                ));
            }
        }
    }

    if std::env::var_os("MATRIX_DEBUG").is_some() && call.elapsed > limit {
        for a in attempts {
            eprintln!(
                "  #{} {:?} {} +{:?} latency {:?} {:?} fault {:?}",
                a.n,
                a.kind,
                a.provider,
                a.started_at
                    .duration_since(report.started_at)
                    .unwrap_or_default(),
                a.latency,
                a.failure,
                served[a.n as usize - 1].map(|r| r.fault)
            );
        }
        eprintln!(
            "  actions {:?}",
            report
                .actions
                .iter()
                .map(|x| (
                    x.after_attempt,
                    x.action,
                    x.detail.chars().take(60).collect::<String>()
                ))
                .collect::<Vec<_>>()
        );
    }
    // Only the last attempt may succeed.
    if attempts.iter().rev().skip(1).any(|a| a.failure.is_none()) {
        fail("an accepted attempt was followed by more attempts".into());
    }

    // The end, and the value.
    let last = attempts.last();
    match &call.result {
        Ok(o) => match &o.resolution {
            Resolution::Answer(v) => {
                if !acceptable(v) || v.category != "billing" || v.priority != 2 {
                    fail(format!(
                        "an invalid or unexpected value was returned as an answer: {v:?}"
                    ));
                }
                if last.is_none_or(|a| a.failure.is_some()) {
                    fail("an answer although the last attempt failed".into());
                }
                let p = &o.provenance;
                let count = |kind| attempts.iter().filter(|a| a.kind == kind).count() as u32;
                if p.attempts as usize != k
                    || p.retries != count(AttemptKind::Retry)
                    || p.reasks != count(AttemptKind::Reask)
                    || p.fallback != (count(AttemptKind::Fallback) > 0)
                    || p.repaired != last.is_some_and(|a| !a.repairs.is_empty())
                    || Some(p.model.as_str()) != last.map(|a| a.model.as_str())
                {
                    fail(format!("provenance {p:?} does not match the attempts"));
                }
            }
            Resolution::Default { value, .. } => {
                if *value != default_triage() {
                    fail(format!("default value {value:?}"));
                }
            }
            Resolution::Escalated(e) => {
                let low = e.class == LowConfidence;
                match &e.candidate {
                    Some(c) if !low || c.confidence != LOW_CONFIDENCE => {
                        fail(format!("escalated on {} with candidate {c:?}", e.class))
                    }
                    None if low => fail("a low-confidence escalation without its candidate".into()),
                    _ => {}
                }
            }
            other => fail(format!("an end the oracle does not know: {other:?}")),
        },
        Err(e) => {
            if e.kind() == ErrorKind::Config {
                fail(format!("config error: {e}"));
            }
        }
    }

    // The chain walk.
    // A decision with no attempt of its own: the deadline ran out between a step and its
    // attempt, so the timeout chain decided, recorded against the last real attempt.
    let failures = attempts.iter().filter(|a| a.failure.is_some()).count();
    let pseudo = report.actions.len() == failures + 1
        && report
            .actions
            .last()
            .is_some_and(|a| a.after_attempt as usize == k && a.class == FailureClass::Timeout);
    stats.spent_between_steps += usize::from(pseudo);
    if report.actions.len() != failures + usize::from(pseudo) {
        fail(format!(
            "{} actions recorded for {failures} failed attempts",
            report.actions.len()
        ));
    }
    for (a, act) in attempts.iter().zip(&report.actions) {
        if a.failure != Some(act.class) || act.after_attempt != a.n {
            fail(format!(
                "action {act:?} does not answer attempt {} ({:?})",
                a.n, a.failure
            ));
        }
    }
    if !aligned {
        // Without the server's record of each attempt the Retry-After is unknown; the bounds and
        // the value were checked above.
        return problems;
    }
    let terminal = |class: FailureClass| -> Option<Next> {
        match &call.result {
            Ok(o) => match &o.resolution {
                Resolution::Answer(_) => None,
                Resolution::Default { class: c, .. } => (*c == class).then_some(Next::Default),
                Resolution::Escalated(e) => (e.class == class).then_some(Next::Escalate),
                _ => None,
            },
            Err(e) => (e.kind() == ErrorKind::from(class)).then_some(Next::Fail),
        }
    };
    let deadline = contract.effective_deadline().as_secs_f64();
    // Each state: the cursors, and whether the path to them skipped a retry for a spent budget.
    let mut states: Vec<(Cursors, bool)> = vec![(Cursors::default(), false)];
    for (i, a) in attempts.iter().enumerate() {
        let Some(class) = a.failure else { break };
        let end = a.started_at + a.latency;
        let elapsed = end
            .duration_since(report.started_at)
            .unwrap_or_default()
            .as_secs_f64();
        let left = TimeLeft {
            estimate: deadline - elapsed,
        };
        let retry_after = match refused[i] {
            Some(NotSent::Shed(wait)) => Some(wait),
            _ => served[i]
                .and_then(|r| r.fault)
                .filter(|f| *f == Fault::RateLimitedRetryAfter)
                .map(|_| Duration::from_secs(1)),
        };
        let gate = Gate {
            circuit_open: refused[i] == Some(NotSent::CircuitOpen),
            budget_may_be_spent: world.budget_may_be_spent(call.phase, &a.provider, end_of(a)),
        };
        let mut next_states = Vec::new();
        let mut allowed = Vec::new();
        for (s, skipped_before) in &states {
            let mut ds = Vec::new();
            decisions(contract, class, *s, retry_after, left, gate, &mut ds);
            if ds.len() > 1 {
                stats.deadline_forks += 1;
            }
            for (next, cursors, budget_skip) in ds {
                allowed.push(next);
                let ok = match attempts.get(i + 1) {
                    Some(b) => match (next, b.kind) {
                        (Next::Retry, AttemptKind::Retry) | (Next::Reask, AttemptKind::Reask) => {
                            b.model == a.model
                        }
                        (Next::Fallback(m), AttemptKind::Fallback) => b.model == m,
                        _ => false,
                    },
                    None if pseudo => {
                        // The step made no attempt: the deadline ran out before it; the timeout
                        // chain then decides with no time left.
                        let kind_ok = report.actions.get(i).is_some_and(|act| {
                            matches!(
                                (next, act.action),
                                (Next::Retry, ActionKind::Retry)
                                    | (Next::Reask, ActionKind::Reask)
                                    | (Next::Fallback(_), ActionKind::Fallback)
                            )
                        });
                        let mut after = Vec::new();
                        decisions(
                            contract,
                            Timeout,
                            cursors,
                            None,
                            TimeLeft::SPENT,
                            Gate::default(),
                            &mut after,
                        );
                        kind_ok && after.iter().any(|(n, ..)| Some(*n) == terminal(Timeout))
                    }
                    None => Some(next) == terminal(class),
                };
                if ok {
                    next_states.push((cursors, *skipped_before || budget_skip));
                }
            }
        }
        if next_states.is_empty() {
            fail(format!(
                "after attempt {} ({class}, {:.3}s left, {gate:?}) the contract allows \
                 {allowed:?}, but the engine went on with {:?} / {}",
                a.n,
                left.estimate,
                attempts.get(i + 1).map(|b| (b.kind, &b.model)),
                column(&call.result)
            ));
            return problems;
        }
        states = next_states;
    }
    if states.iter().all(|(_, skipped)| *skipped) {
        stats.budget_skips += 1;
    }
    problems
}
