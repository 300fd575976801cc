//! Finding records: by task, time range, input hash and how the call ended.
//!
//! ```
//! use harness_core::audit::{Filter, TimeBound};
//! let filter = Filter::default()
//!     .task("classify")
//!     .since(TimeBound::parse("30d").unwrap())
//!     .status("answer");
//! # let _ = filter;
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::canonical::hash_hex;
use super::record::{AuditRecord, MessagePolicy};

/// The shortest hash prefix `--input-hash` accepts: shorter ones match too much by chance.
pub const MIN_HASH_PREFIX: usize = 6;

/// A point in time given on a command line: an RFC 3339 timestamp (`2026-11-02T09:00:00Z`,
/// `2026-11-02T10:00:00+01:00`, `2026-11-02`) or an age (`30d`, `12h`, `15m`, `90s`, `2w`: that
/// long before now).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBound {
    /// This instant.
    At(SystemTime),
    /// This long before the moment the filter is applied.
    Ago(Duration),
}

/// A time that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a time: {reason} (give RFC 3339, e.g. 2026-11-02T09:00:00Z, or an age such as 30d, 12h, 15m)"
)]
pub struct BadTime {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl TimeBound {
    /// Reads an RFC 3339 timestamp, a date (midnight UTC) or an age.
    pub fn parse(text: &str) -> Result<TimeBound, BadTime> {
        let bad = |reason| BadTime {
            text: text.to_owned(),
            reason,
        };
        let t = text.trim();
        if let Some(unit) = t.chars().last().filter(char::is_ascii_alphabetic)
            && t[..t.len() - 1].bytes().all(|b| b.is_ascii_digit())
            && t.len() > 1
        {
            let n: u64 = t[..t.len() - 1]
                .parse()
                .map_err(|_| bad("the number is too large"))?;
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(bad("the unit is not one of s, m, h, d, w")),
            };
            let secs = n
                .checked_mul(secs)
                .ok_or_else(|| bad("the age is too large"))?;
            return Ok(TimeBound::Ago(Duration::from_secs(secs)));
        }
        parse_rfc3339(t).map(TimeBound::At).map_err(bad)
    }

    /// The instant, with ages counted back from `now`.
    pub fn resolve(self, now: SystemTime) -> SystemTime {
        match self {
            TimeBound::At(t) => t,
            TimeBound::Ago(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH),
        }
    }
}

/// Parses `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t`, `z` and a space for
/// `T` accepted).
pub(crate) fn parse_rfc3339(text: &str) -> Result<SystemTime, &'static str> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, &'static str> {
        let s = text.get(range).ok_or("it is too short")?;
        if s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() {
            s.parse().map_err(|_| "a number is out of range")
        } else {
            Err("a digit is expected")
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("the date must be YYYY-MM-DD");
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("the date does not exist");
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let mut nanos = 0u32;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return Err("the time must be THH:MM:SS");
        }
        let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || m > 59 || s > 60 {
            return Err("the time of day does not exist");
        }
        secs += h * 3600 + m * 60 + s;
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let digits = &text[start..i];
            if digits.is_empty() {
                return Err("a fraction of a second needs digits");
            }
            let padded: String = digits.chars().chain("000000000".chars()).take(9).collect();
            nanos = padded.parse().map_err(|_| "a digit is expected")?;
        }
        secs -= offset(text, i)?;
    }
    let secs = u64::try_from(secs).map_err(|_| "it is before 1970")?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// The UTC offset at `text[i..]`, in seconds east of UTC.
fn offset(text: &str, i: usize) -> Result<i64, &'static str> {
    let rest = &text[i..];
    match rest.as_bytes().first() {
        Some(b'Z' | b'z') if rest.len() == 1 => Ok(0),
        Some(sign @ (b'+' | b'-')) if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let h: i64 = rest[1..3]
                .parse()
                .map_err(|_| "the offset must be ±HH:MM")?;
            let m: i64 = rest[4..6]
                .parse()
                .map_err(|_| "the offset must be ±HH:MM")?;
            let secs = h * 3600 + m * 60;
            Ok(if *sign == b'-' { -secs } else { secs })
        }
        _ => Err("the time must end with Z or an offset ±HH:MM"),
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Which records [`find`] keeps. Every criterion set must hold; an empty filter keeps all.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Filter {
    /// The task's name, or its `module::path::name`.
    pub task: Option<String>,
    /// Calls that started at or after this.
    pub since: Option<TimeBound>,
    /// Calls that started before this.
    pub until: Option<TimeBound>,
    /// A hash (or a prefix of at least [`MIN_HASH_PREFIX`] hex digits) of the call's request
    /// fingerprint, of any attempt's fingerprint, or of one input's text.
    pub input_hash: Option<String>,
    /// How the call ended: `answer`, `default`, `escalated`, `failed`, or a failure class
    /// (`invalid_output`, `timeout`, ...) that ended it.
    pub status: Option<String>,
}

impl Filter {
    /// Records of this task.
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// Records of calls that started at or after `bound`.
    pub fn since(mut self, bound: TimeBound) -> Self {
        self.since = Some(bound);
        self
    }

    /// Records of calls that started before `bound`.
    pub fn until(mut self, bound: TimeBound) -> Self {
        self.until = Some(bound);
        self
    }

    /// Records whose request or an input hashes to `hash` (a prefix is enough).
    pub fn input_hash(mut self, hash: impl Into<String>) -> Self {
        self.input_hash = Some(hash.into());
        self
    }

    /// Records of calls that ended this way.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Why the filter cannot be applied (a hash too short or not hex), if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if let Some(h) = &self.input_hash
            && (h.len() < MIN_HASH_PREFIX || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!(
                "input hash `{h}` must be at least {MIN_HASH_PREFIX} hex digits"
            ));
        }
        Ok(())
    }

    /// Whether `record` passes, with ages counted back from `now`.
    pub fn matches(&self, record: &AuditRecord, now: SystemTime) -> bool {
        let task_ok = self
            .task
            .as_deref()
            .is_none_or(|t| t == record.task || t == format!("{}::{}", record.module, record.task));
        let started = parse_rfc3339(&record.started_at).ok();
        let since_ok = self
            .since
            .is_none_or(|b| started.is_some_and(|s| s >= b.resolve(now)));
        let until_ok = self
            .until
            .is_none_or(|b| started.is_some_and(|s| s < b.resolve(now)));
        let status_ok = self.status.as_deref().is_none_or(|s| {
            s == record.outcome.status || record.outcome.class.as_deref() == Some(s)
        });
        let hash_ok = self
            .input_hash
            .as_deref()
            .is_none_or(|h| hashes(record).iter().any(|x| has_prefix(x, h)));
        task_ok && since_ok && until_ok && status_ok && hash_ok
    }
}

fn has_prefix(hash: &str, prefix: &str) -> bool {
    hash.len() >= prefix.len() && hash[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Every hash a record can be found by: its fingerprint, its attempts', and its inputs' (stored
/// under [`MessagePolicy::Hashed`], computed from the text under [`MessagePolicy::Full`]).
fn hashes(record: &AuditRecord) -> Vec<String> {
    let mut out = vec![record.fingerprint.clone()];
    out.extend(record.attempts.iter().map(|a| a.fingerprint.clone()));
    for input in &record.inputs {
        match (&input.sha256, &input.value) {
            (Some(h), _) => out.push(h.clone()),
            (None, Some(v)) => out.push(hash_hex(v.as_bytes())),
            (None, None) => {}
        }
    }
    out
}

/// The records that pass `filter`, in file order, ages counted back from now.
pub fn find<'a>(records: &'a [AuditRecord], filter: &Filter) -> Vec<&'a AuditRecord> {
    let now = SystemTime::now();
    records.iter().filter(|r| filter.matches(r, now)).collect()
}

/// One line of `harness audit find`: what a reader needs to pick a record to reproduce.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Found {
    /// The record (call) id.
    pub id: String,
    /// When the call started.
    pub started_at: String,
    /// The task.
    pub task: String,
    /// `answer`, `default`, `escalated` or `failed`.
    pub status: String,
    /// The failure class or error kind behind a non-answer.
    pub class: Option<String>,
    /// Attempts made.
    pub attempts: usize,
    /// The model asked for.
    pub model: String,
    /// The request fingerprint.
    pub fingerprint: String,
    /// The contract version.
    pub contract_version: String,
    /// Whether the record can be reproduced exactly (messages kept in full).
    pub replayable: bool,
}

impl From<&AuditRecord> for Found {
    fn from(r: &AuditRecord) -> Found {
        Found {
            id: r.id.clone(),
            started_at: r.started_at.clone(),
            task: r.task.clone(),
            status: r.outcome.status.clone(),
            class: r.outcome.class.clone(),
            attempts: r.attempts.len(),
            model: r.model_requested.clone(),
            fingerprint: r.fingerprint.clone(),
            contract_version: r.contract_version.clone(),
            replayable: r.request.message_policy == MessagePolicy::Full,
        }
    }
}

/// A table of found records, one per line, columns aligned.
pub struct FoundTable<'a>(pub &'a [Found]);

impl fmt::Display for FoundTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "ID",
            "STARTED",
            "TASK",
            "STATUS",
            "ATTEMPTS",
            "MODEL",
            "FINGERPRINT",
            "EXACT",
        ];
        let rows: Vec<[String; 8]> = self
            .0
            .iter()
            .map(|r| {
                let status = match &r.class {
                    Some(c) => format!("{} ({c})", r.status),
                    None => r.status.clone(),
                };
                [
                    r.id.clone(),
                    r.started_at.get(..19).unwrap_or(&r.started_at).to_owned() + "Z",
                    r.task.clone(),
                    status,
                    r.attempts.to_string(),
                    r.model.clone(),
                    r.fingerprint.get(..12).unwrap_or(&r.fingerprint).to_owned(),
                    if r.replayable { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        let header = header.map(str::to_owned);
        super::reproduce::write_table(f, &header, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::super::canonical::rfc3339;
    use super::*;

    fn at(text: &str) -> u64 {
        parse_rfc3339(text)
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn reads_what_records_write_and_what_people_type() {
        let now = SystemTime::now();
        let written = rfc3339(now);
        let back = parse_rfc3339(&written).unwrap();
        let drift = now.duration_since(back).unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_micros(1), "{written}");
        assert_eq!(at("1970-01-01"), 0);
        assert_eq!(at("2026-11-02T10:00:00+01:00"), at("2026-11-02T09:00:00Z"));
        assert_eq!(at("2024-02-29T00:00:00z"), 1_709_164_800);
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-11-02T25:00:00Z",
            "2026-11-02T09:00:00",
            "yesterday",
            "1969-12-31",
        ] {
            assert!(TimeBound::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages_count_back_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let thirty = TimeBound::parse("30d").unwrap();
        assert_eq!(thirty, TimeBound::Ago(Duration::from_secs(30 * 86_400)));
        assert_eq!(
            thirty.resolve(now),
            UNIX_EPOCH + Duration::from_secs(70 * 86_400)
        );
        assert_eq!(
            TimeBound::parse("2w").unwrap(),
            TimeBound::parse("14d").unwrap()
        );
        assert!(TimeBound::parse("3y").is_err());
        assert!(TimeBound::parse("99999999999999999999d").is_err());
    }
}
