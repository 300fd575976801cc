//! The report's plots as inline SVG: pass rate by run (with Wilson intervals), a latency
//! histogram, and confusion matrices. Every text is escaped.

use std::fmt::Write;

use super::esc;
use crate::eval::results::Confusion;

const W: f64 = 560.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;

/// One bar: a label, a rate and its interval (all 0 to 1).
pub(crate) struct Bar<'a> {
    pub label: &'a str,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// Pass rate by run: bars with 95% whiskers.
pub(crate) fn pass_rates(bars: &[Bar<'_>]) -> String {
    let mut s = open("pass-rate", "Pass rate by run, with 95% Wilson intervals");
    axis_y(&mut s, "pass rate");
    let n = bars.len().max(1) as f64;
    let slot = (W - 2.0 * PAD) / n;
    let bw = (slot * 0.6).min(80.0);
    for (i, b) in bars.iter().enumerate() {
        let x = PAD + slot * i as f64 + (slot - bw) / 2.0;
        let y = y_of(b.rate);
        let _ = write!(
            s,
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="#4a7bd0"><title>{}: {:.1}% [{:.1}, {:.1}]</title></rect>"##,
            (H - PAD) - y,
            esc(b.label),
            b.rate * 100.0,
            b.low * 100.0,
            b.high * 100.0
        );
        let cx = x + bw / 2.0;
        let _ = write!(
            s,
            r##"<line class="ci" x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#222" stroke-width="1.5"/>"##,
            y_of(b.low),
            y_of(b.high)
        );
        let _ = write!(
            s,
            r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{:.1}%</text><text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            (y_of(b.high) - 4.0).max(10.0),
            b.rate * 100.0,
            H - PAD + 14.0,
            esc(b.label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A histogram of latencies (milliseconds) in 20 bins.
pub(crate) fn latency_histogram(values: &[f64]) -> String {
    let mut s = open("latency", "Latency histogram");
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    if values.is_empty() {
        s.push_str(r#"<text x="20" y="40">no calls</text></svg>"#);
        return s;
    }
    let bins = 20usize;
    let width = ((hi - lo) / bins as f64).max(1e-9);
    let mut counts = vec![0u64; bins];
    for v in values {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = (W - 2.0 * PAD) / bins as f64;
    for (i, c) in counts.iter().enumerate() {
        let h = (H - 2.0 * PAD) * (*c as f64 / max);
        let x = PAD + bw * i as f64;
        let _ = write!(
            s,
            r##"<rect class="bin" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#d08a4a"><title>{:.0}–{:.0} ms: {c}</title></rect>"##,
            H - PAD - h,
            (bw - 1.0).max(1.0),
            lo + width * i as f64,
            lo + width * (i + 1) as f64
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{PAD}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#444"/><text x="{PAD}" y="{:.1}" font-size="11">{lo:.0} ms</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{hi:.0} ms</text><text x="8" y="{:.1}" font-size="11">max {max:.0}</text></svg>"##,
        W - PAD,
        H - PAD,
        H - PAD,
        H - PAD + 14.0,
        W - PAD,
        H - PAD + 14.0,
        PAD - 8.0,
    );
    s
}

/// A confusion matrix: rows expected, columns answered (the last column "none").
pub(crate) fn confusion(field: &str, c: &Confusion) -> String {
    let k = c.labels.len();
    let cell = 72.0;
    let left = 110.0;
    let top = 70.0;
    let w = left + cell * (k + 1) as f64 + 20.0;
    let h = top + cell * k as f64 + 20.0;
    let max = c.counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="plot confusion" data-field="{}" xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" role="img"><title>Confusion matrix of {}</title>"#,
        esc(field),
        esc(field)
    );
    let cols: Vec<&str> = c
        .labels
        .iter()
        .map(String::as_str)
        .chain(["none"])
        .collect();
    for (j, l) in cols.iter().enumerate() {
        let x = left + cell * j as f64 + cell / 2.0;
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            top - 8.0,
            esc(l)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{left}" y="16" font-size="11">answered →</text><text x="4" y="{:.1}" font-size="11">expected ↓</text>"#,
        top - 24.0
    );
    for (i, row) in c.counts.iter().enumerate() {
        let y = top + cell * i as f64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + cell / 2.0 + 4.0,
            esc(&c.labels[i])
        );
        for (j, n) in row.iter().enumerate() {
            let x = left + cell * j as f64;
            let t = *n as f64 / max;
            let fill = if i == j {
                format!("rgba(46,139,87,{:.2})", 0.15 + 0.85 * t)
            } else {
                format!(
                    "rgba(200,60,60,{:.2})",
                    if *n == 0 { 0.04 } else { 0.15 + 0.85 * t }
                )
            };
            let _ = write!(
                s,
                r##"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{n}</text>"##,
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn open(class: &str, title: &str) -> String {
    format!(
        r#"<svg class="plot {class}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{}</title>"#,
        esc(title)
    )
}

fn y_of(rate: f64) -> f64 {
    (H - PAD) - (H - 2.0 * PAD) * rate.clamp(0.0, 1.0)
}

fn axis_y(s: &mut String, label: &str) {
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = y_of(t);
        let _ = write!(
            s,
            r##"<line x1="{PAD}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{:.0}%</text>"##,
            W - PAD,
            PAD - 4.0,
            y + 3.0,
            t * 100.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="4" y="12" font-size="11">{}</text>"#,
        esc(label)
    );
}
