//! The oracle: `docs/contracts.md` rewritten as a chain walk, and the checks of one call.

use super::*;
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

/// Every decision `docs/contracts.md` allows for a failure of `class`, with the cursors after it.
/// Time-dependent steps fork when the time left is too close to call.
pub(crate) fn decisions(
    contract: &TaskContract,
    class: FailureClass,
    cursors: Cursors,
    retry_after: Option<Duration>,
    left: TimeLeft,
    out: &mut Vec<(Next, Cursors)>,
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
    match steps.get(c.step) {
        None => out.push((Next::Fail, cursors)),
        Some(Action::Retry { times, backoff }) => {
            if c.used >= *times {
                return decisions(contract, class, advanced, retry_after, left, out);
            }
            assert!(!backoff.jitter, "the oracle needs known delays");
            // The n-th retry of this step waits initial × multiplier^(n-1), capped; a
            // Retry-After is a lower bound. Written out here rather than calling Backoff::delay.
            let exp = backoff.multiplier.powi(c.used as i32);
            let mut delay = (backoff.initial.as_secs_f64() * exp).min(backoff.max.as_secs_f64());
            if let Some(after) = retry_after {
                delay = delay.max(after.as_secs_f64());
            }
            // A retry needs time left and a backoff that ends before the deadline.
            if left.max() > delay && left.may_have_time() {
                out.push((Next::Retry, used_one));
            }
            if left.min() <= delay {
                decisions(contract, class, advanced, retry_after, left, out);
            }
        }
        Some(Action::Reask { times }) => {
            if c.used >= *times {
                return decisions(contract, class, advanced, retry_after, left, out);
            }
            if left.may_have_time() {
                out.push((Next::Reask, used_one));
            }
            if left.may_be_spent() {
                decisions(contract, class, advanced, retry_after, left, out);
            }
        }
        Some(Action::Fallback(target)) => {
            if left.may_have_time() {
                out.push((Next::Fallback(target.model), advanced));
            }
            if left.may_be_spent() {
                decisions(contract, class, advanced, retry_after, left, out);
            }
        }
        Some(Action::Escalate) => out.push((Next::Escalate, cursors)),
        Some(Action::Default) => out.push((Next::Default, cursors)),
        Some(Action::Fail) => out.push((Next::Fail, cursors)),
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
}

/// Checks one call; returns what is wrong with it.
pub(crate) fn check_call(
    call: &Call,
    primary: &[&RecordedRequest],
    secondary: &[&RecordedRequest],
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
    let aligned = {
        let on = |p: &str| attempts.iter().filter(|a| a.provider == p).count();
        on("primary") == primary.len() && on("secondary") == secondary.len()
    };
    let mut served: Vec<Option<&RecordedRequest>> = vec![None; k];
    if aligned {
        let (mut p, mut s) = (primary.iter(), secondary.iter());
        for (slot, a) in served.iter_mut().zip(attempts) {
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
        },
        Err(e) => {
            if e.kind() == ErrorKind::Config {
                fail(format!("config error: {e}"));
            }
        }
    }

    // The chain walk.
    let pseudo = report
        .actions
        .last()
        .is_some_and(|a| a.after_attempt as usize == k + 1);
    stats.spent_between_steps += usize::from(pseudo);
    let failures = attempts.iter().filter(|a| a.failure.is_some()).count();
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
            },
            Err(e) => (e.kind() == ErrorKind::from(class)).then_some(Next::Fail),
        }
    };
    let deadline = contract.effective_deadline().as_secs_f64();
    let mut states: Vec<Cursors> = vec![Cursors::default()];
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
        let retry_after = served[i]
            .and_then(|r| r.fault)
            .filter(|f| *f == Fault::RateLimitedRetryAfter)
            .map(|_| Duration::from_secs(1));
        let mut next_states = Vec::new();
        let mut allowed = Vec::new();
        for s in &states {
            let mut ds = Vec::new();
            decisions(contract, class, *s, retry_after, left, &mut ds);
            if ds.len() > 1 {
                stats.deadline_forks += 1;
            }
            for (next, cursors) in ds {
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
                            &mut after,
                        );
                        kind_ok && after.iter().any(|(n, _)| Some(*n) == terminal(Timeout))
                    }
                    None => Some(next) == terminal(class),
                };
                if ok {
                    next_states.push(cursors);
                }
            }
        }
        if next_states.is_empty() {
            fail(format!(
                "after attempt {} ({class}, {:.3}s left) the contract allows {allowed:?}, \
                 but the engine went on with {:?} / {}",
                a.n,
                left.estimate,
                attempts.get(i + 1).map(|b| (b.kind, &b.model)),
                column(&call.result)
            ));
            break;
        }
        states = next_states;
    }
    problems
}
