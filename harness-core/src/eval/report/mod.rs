//! Reports people look at: one self-contained HTML file (no external resource; inline SVG plots
//! of the pass rate by run, the latency histogram and the confusion matrices; the flipped cases
//! with inputs, expected and got) and a Markdown summary for pull-request comments.

mod svg;

use std::fmt::Write;

use serde_json::Value;

use super::compare::Comparison;
use super::results::{RunResults, Stats};

/// Escapes text for HTML (and SVG).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn json(v: Option<&Value>) -> String {
    match v {
        None => "—".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn run_label(r: &RunResults, i: usize) -> String {
    if r.run.label.is_empty() {
        format!("run {}", i + 1)
    } else {
        r.run.label.clone()
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td:first-child code{white-space:nowrap}.bad{color:#b00020;font-weight:600}.good{color:#1b7a3d;font-weight:600}\
.verdict{padding:.6em 1em;border-radius:4px;margin:1em 0}.verdict.bad{background:#fde8ea}.verdict.good{background:#e6f4ea}\
code,pre{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word;margin:0}";

/// The HTML report of `runs` (oldest first; the last is the one reported on) and, when given,
/// the comparison of the last against a baseline.
pub fn html(runs: &[&RunResults], comparison: Option<&Comparison>) -> String {
    let Some(current) = runs.last() else {
        return String::from("<!doctype html><title>harness eval</title><p>no run</p>");
    };
    let mut s = String::with_capacity(16 * 1024);
    let title = format!(
        "Evaluation of {} on {}",
        current.run.task, current.run.dataset
    );
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    let o = &current.summary.overall;
    let _ = write!(
        s,
        "<p id=\"headline\">Pass rate <b>{}</b> (95% CI {}–{}) over {} case run(s); model requested <code>{}</code>; contract <code>{}</code>; started {}.</p>",
        pct(o.pass_rate),
        pct(o.ci95[0]),
        pct(o.ci95[1]),
        o.n,
        esc(&current.run.model_requested),
        esc(&current.run.contract_version),
        esc(&current.run.started_at)
    );
    if o.unscored > 0 {
        let _ = write!(
            s,
            "<p class=\"bad\">{} case run(s) could not be scored (a judge failed): left out of the pass rate.</p>",
            o.unscored
        );
    }
    if let Some(c) = comparison {
        comparison_section(&mut s, c);
    }
    s.push_str("<h2>Pass rate by run</h2>");
    let labels: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| run_label(r, i))
        .collect();
    let bars: Vec<svg::Bar<'_>> = runs
        .iter()
        .zip(&labels)
        .map(|(r, l)| svg::Bar {
            label: l,
            rate: r.summary.overall.pass_rate,
            low: r.summary.overall.ci95[0],
            high: r.summary.overall.ci95[1],
        })
        .collect();
    s.push_str(&svg::pass_rates(&bars));
    stats_section(&mut s, current);
    s.push_str("<h2>Latency</h2>");
    let l = &o.latency_ms;
    let _ = write!(
        s,
        "<p>p50 {:.0} ms · p95 {:.0} ms · p99 {:.0} ms · max {:.0} ms</p>",
        l.p50, l.p95, l.p99, l.max
    );
    let lat: Vec<f64> = current.cases.iter().map(|c| c.latency_ms).collect();
    s.push_str(&svg::latency_histogram(&lat));
    if !o.confusion.is_empty() {
        s.push_str("<h2>Confusion matrices</h2>");
        for (field, c) in &o.confusion {
            let _ = write!(s, "<h3>{}</h3>", esc(field));
            s.push_str(&svg::confusion(field, c));
        }
    }
    failures_section(&mut s, current);
    // Marks the document once the browser has laid out every plot: the report's own test reads it.
    s.push_str("<script>document.body.dataset.plots=String([...document.querySelectorAll('svg.plot')].filter(e=>e.getBoundingClientRect().width>0).length)</script>");
    s.push_str("</body></html>");
    s
}

fn comparison_section(s: &mut String, c: &Comparison) {
    let class = if c.regression { "bad" } else { "good" };
    let _ = write!(
        s,
        "<div id=\"verdict\" class=\"verdict {class}\">{}</div><h2>Against the baseline</h2><table>\
         <tr><th>paired cases</th><td>{}</td></tr><tr><th>baseline pass rate</th><td>{}</td></tr>\
         <tr><th>new pass rate</th><td>{}</td></tr><tr><th>change</th><td>{:+.1} points</td></tr>\
         <tr><th>regressions / improvements</th><td>{} / {}</td></tr><tr><th>exact McNemar p</th><td>{:.4}</td></tr>",
        esc(&c.verdict),
        c.paired,
        pct(c.base_pass_rate),
        pct(c.new_pass_rate),
        c.delta_points,
        c.regressions,
        c.improvements,
        c.mcnemar_p
    );
    if let Some(b) = &c.score_bootstrap {
        let _ = write!(
            s,
            "<tr><th>score change (paired bootstrap, 95%)</th><td>{:+.3} [{:+.3}, {:+.3}], p = {:.4}</td></tr>",
            b.mean, b.low, b.high, b.p_value
        );
    }
    let _ = write!(
        s,
        "<tr><th>power</th><td>{}</td></tr></table>",
        esc(&c.power.to_string())
    );
    if c.dataset_changed {
        s.push_str(
            "<p class=\"bad\">The dataset changed between the runs: cases are paired by id.</p>",
        );
    }
    if !c.only_base.is_empty() || !c.only_new.is_empty() {
        let _ = write!(
            s,
            "<p>Unpaired: {} only in the baseline, {} only in the new run.</p>",
            c.only_base.len(),
            c.only_new.len()
        );
    }
    let _ = write!(s, "<h2>Flipped cases ({})</h2>", c.flipped.len());
    if c.flipped.is_empty() {
        s.push_str("<p>No case changed outcome.</p>");
        return;
    }
    s.push_str("<table id=\"flipped\"><tr><th>case</th><th>change</th><th>inputs</th><th>expected</th><th>baseline got</th><th>new got</th><th>why</th></tr>");
    for f in &c.flipped {
        let (cls, what) = if f.regressed {
            ("bad", "pass → fail")
        } else {
            ("good", "fail → pass")
        };
        let _ = write!(
            s,
            "<tr class=\"flip\" data-id=\"{}\"><td><code>{}</code></td><td class=\"{cls}\">{what}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{}</td></tr>",
            esc(&f.id),
            esc(&f.id),
            esc(&json(Some(&f.inputs))),
            esc(&json(f.expected.as_ref())),
            esc(&json(f.base_got.as_ref())),
            esc(&json(f.new_got.as_ref())),
            esc(f.why.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table>");
}

fn stats_row(s: &mut String, name: &str, st: &Stats) {
    let _ = write!(
        s,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}–{}</td><td>{:.0}</td><td>{}/{}</td><td>{}</td></tr>",
        esc(name),
        st.n,
        pct(st.pass_rate),
        pct(st.ci95[0]),
        pct(st.ci95[1]),
        st.latency_ms.p95,
        st.input_tokens,
        st.output_tokens,
        if st.cost_unknown > 0 && st.cost_usd == 0.0 {
            "unknown".to_owned()
        } else {
            format!("${:.4}", st.cost_usd)
        }
    );
}

fn stats_section(s: &mut String, r: &RunResults) {
    let o = &r.summary.overall;
    s.push_str("<h2>By task and tag</h2><table><tr><th>group</th><th>n</th><th>pass rate</th><th>95% CI</th><th>p95 ms</th><th>tokens in/out</th><th>cost</th></tr>");
    for (t, st) in &r.summary.by_task {
        stats_row(s, &format!("task {t}"), st);
    }
    for (t, st) in &r.summary.by_tag {
        stats_row(s, &format!("tag {t}"), st);
    }
    s.push_str("</table>");
    if !o.fields.is_empty() {
        s.push_str("<h2>Per-field accuracy</h2><table><tr><th>field</th><th>correct</th><th>accuracy</th></tr>");
        for (f, a) in &o.fields {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
                esc(f),
                a.correct,
                a.n,
                pct(a.accuracy)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>How the calls ended</h2><table id=\"outcomes\"><tr>");
    for k in o.outcomes.keys() {
        let _ = write!(s, "<th>{}</th>", esc(k));
    }
    s.push_str("</tr><tr>");
    for v in o.outcomes.values() {
        let _ = write!(s, "<td>{v}</td>");
    }
    s.push_str("</tr></table>");
    if !r.summary.flaky.is_empty() {
        let _ = write!(
            s,
            "<p>Flaky across repeats: {}</p>",
            esc(&r.summary.flaky.join(", "))
        );
    }
}

fn failures_section(s: &mut String, r: &RunResults) {
    let failing: Vec<_> = r.cases.iter().filter(|c| !c.passed).take(200).collect();
    let _ = write!(
        s,
        "<h2>Failing cases ({})</h2>",
        r.cases.iter().filter(|c| !c.passed).count()
    );
    if failing.is_empty() {
        return;
    }
    s.push_str(
        "<table><tr><th>case</th><th>ended</th><th>expected</th><th>got</th><th>why</th></tr>",
    );
    for c in failing {
        let why: Vec<String> = c
            .scores
            .iter()
            .filter(|x| !x.passed)
            .map(|x| {
                format!(
                    "{}: {}",
                    x.name,
                    x.detail.as_deref().or(x.error.as_deref()).unwrap_or("")
                )
            })
            .chain(c.error.clone())
            .collect();
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{}</td></tr>",
            esc(&c.id),
            c.ending.as_str(),
            esc(&json(c.expected.as_ref())),
            esc(&json(c.got.as_ref())),
            esc(&why.join("; "))
        );
    }
    s.push_str("</table>");
}

/// The Markdown summary of `run` (and its comparison), for a pull-request comment.
pub fn markdown(run: &RunResults, comparison: Option<&Comparison>) -> String {
    let o = &run.summary.overall;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Evaluation of `{}` on `{}`\n",
        run.run.task, run.run.dataset
    );
    if let Some(c) = comparison {
        let mark = if c.regression { "❌" } else { "✅" };
        let _ = writeln!(s, "{mark} **{}**\n", c.verdict);
        let _ = writeln!(s, "| | baseline | new | change |\n|---|---|---|---|");
        let _ = writeln!(
            s,
            "| pass rate ({} paired cases) | {} | {} | {:+.1} pts (McNemar p = {:.4}) |",
            c.paired,
            pct(c.base_pass_rate),
            pct(c.new_pass_rate),
            c.delta_points,
            c.mcnemar_p
        );
        if let Some(b) = &c.score_bootstrap {
            let _ = writeln!(
                s,
                "| mean score | | | {:+.3} [{:+.3}, {:+.3}] |",
                b.mean, b.low, b.high
            );
        }
        let _ = writeln!(s, "\n{}\n", c.power);
        if !c.flipped.is_empty() {
            let _ = writeln!(
                s,
                "<details><summary>{} flipped case(s): {} regressions, {} improvements</summary>\n",
                c.flipped.len(),
                c.regressions,
                c.improvements
            );
            let _ = writeln!(
                s,
                "| case | change | expected | new got |\n|---|---|---|---|"
            );
            for f in c.flipped.iter().take(50) {
                let what = if f.regressed {
                    "pass → fail"
                } else {
                    "fail → pass"
                };
                let _ = writeln!(
                    s,
                    "| `{}` | {what} | `{}` | `{}` |",
                    f.id.replace('|', "\\|"),
                    json(f.expected.as_ref()).replace('|', "\\|"),
                    json(f.new_got.as_ref()).replace('|', "\\|")
                );
            }
            if c.flipped.len() > 50 {
                let _ = writeln!(s, "\n… and {} more", c.flipped.len() - 50);
            }
            s.push_str("\n</details>\n");
        }
    }
    let _ = writeln!(
        s,
        "\nPass rate **{}** (95% CI {}–{}), n = {}; latency p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; tokens {} in / {} out.",
        pct(o.pass_rate),
        pct(o.ci95[0]),
        pct(o.ci95[1]),
        o.n,
        o.latency_ms.p50,
        o.latency_ms.p95,
        o.latency_ms.p99,
        o.input_tokens,
        o.output_tokens
    );
    let mix: Vec<String> = o.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "Outcomes: {}.", mix.join(", "));
    if o.unscored > 0 {
        let _ = writeln!(s, "**{} case run(s) could not be scored.**", o.unscored);
    }
    s
}
