//! `TrailStats` on a terminal: aligned tables.

use std::fmt;

use super::{Bucket, Shares, TrailStats};

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn secs(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.0}ms")
    }
}

fn cost(b: &Bucket) -> String {
    let sum = format!("${:.6}", b.cost_usd);
    if b.unpriced > 0 {
        format!("{sum} (+{} unpriced)", b.unpriced)
    } else {
        sum
    }
}

/// Rows of cells, the first one the header; numbers right-aligned from `right_from` on.
fn table(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>], right_from: usize) -> fmt::Result {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (j, (c, w)) in r.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            if j > 0 {
                line.push_str("  ");
            }
            if j >= right_from {
                line.push_str(&pad);
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&pad);
            }
        }
        writeln!(f, "{}", line.trim_end())?;
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            writeln!(f, "{}", rule.join("  "))?;
        }
    }
    Ok(())
}

fn row(name: &str, calls: String, b: &Bucket, shares: Option<&Shares>) -> Vec<String> {
    let s = shares.copied().unwrap_or_default();
    vec![
        name.to_owned(),
        calls,
        b.attempts.to_string(),
        secs(b.ms),
        b.tokens().to_string(),
        cost(b),
        pct(s.time),
        pct(s.tokens),
    ]
}

const HEAD: [&str; 8] = [
    "",
    "calls",
    "attempts",
    "time",
    "tokens",
    "cost",
    "time share",
    "token share",
];

/// The header of a table, as owned cells.
fn head(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

impl TrailStats {
    /// Failed and accepted attempts, overall and per task with its classes.
    fn attempts_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.totals;
        let mut rows = vec![head(&HEAD)];
        rows.push(row(
            "failed attempts",
            String::new(),
            &t.failed,
            Some(&t.failed_share),
        ));
        rows.push(row("accepted attempts", String::new(), &t.ok, None));
        for task in &self.tasks {
            let tt = &task.totals;
            let name = &task.task;
            rows.push(row(
                &format!("{name} (failed)"),
                tt.calls.to_string(),
                &tt.failed,
                Some(&tt.failed_share),
            ));
            rows.push(row(
                &format!("{name} (accepted)"),
                String::new(),
                &tt.ok,
                None,
            ));
            for c in &task.by_class {
                let s = Shares {
                    time: c.time_share,
                    tokens: c.token_share,
                    ..Shares::default()
                };
                rows.push(row(
                    &format!("  {}", c.class),
                    String::new(),
                    &c.bucket,
                    Some(&s),
                ));
            }
        }
        table(f, &rows, 1)
    }

    /// Failed attempts by class over the whole trail.
    fn classes_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nFailed attempts by class (whole trail):")?;
        let mut rows = vec![head(&[
            "class",
            "attempts",
            "time",
            "tokens",
            "share of failure time",
            "share of all time",
        ])];
        for c in &self.by_class {
            rows.push(vec![
                c.class.clone(),
                c.bucket.attempts.to_string(),
                secs(c.bucket.ms),
                c.bucket.tokens().to_string(),
                pct(c.time_share_of_failures),
                pct(c.time_share),
            ]);
        }
        table(f, &rows, 1)
    }

    /// The slowest contracts by mean call time.
    fn slowest_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nSlowest contracts (mean call wall time):")?;
        let mut rows = vec![head(&[
            "task", "calls", "mean", "p50", "p95", "max", "ended",
        ])];
        for (name, mean) in &self.slowest {
            let Some(t) = self.task(name) else { continue };
            let ended: Vec<String> = t
                .totals
                .ended
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            rows.push(vec![
                name.clone(),
                t.totals.calls.to_string(),
                secs(*mean),
                secs(t.p50_ms),
                secs(t.p95_ms),
                secs(t.max_ms),
                ended.join(", "),
            ]);
        }
        table(f, &rows, 1)
    }
}

impl fmt::Display for TrailStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.reading;
        writeln!(
            f,
            "Audit trail {}: {} record(s) counted of {} line(s)",
            self.source, r.records, r.lines
        )?;
        let t = &self.totals;
        writeln!(
            f,
            "{} call(s), {} attempt(s): {} in failed attempts and {} of time and {} of tokens; {} of wall time in failures and the waits after them\n",
            t.calls,
            t.ok.attempts + t.failed.attempts,
            pct(t.failed_share.attempts),
            pct(t.failed_share.time),
            pct(t.failed_share.tokens),
            pct(t.failed_wall_share),
        )?;
        self.attempts_table(f)?;
        if !self.by_class.is_empty() {
            self.classes_table(f)?;
        }
        if !self.tasks.is_empty() {
            self.slowest_table(f)?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
