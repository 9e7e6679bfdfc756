//! The DR report as one self-contained HTML file: inline CSS, no scripts, nothing fetched, an
//! inline SVG timeline (one lane per phase, one bar per step, marks for checks, approvals and
//! incidents), a summary a manager can read, then the details. Every string from the process
//! (names, variables, messages) is escaped.
use super::{DrReport, Step, seconds};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write as _;

/// Text safe inside HTML and XML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // control characters are not allowed in XML 1.0
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A duration in words with its unit: `0 s`, `42 s`, `3 min 05 s`, `1 h 02 min`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

fn stamp(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true).replace('T', " ").replace('Z', " UTC"))
        .unwrap_or_else(|| "—".into())
}

/// `T+1 min 05 s` from the report's start.
fn offset(r: &DrReport, t: Option<DateTime<Utc>>) -> String {
    match (r.start, t) {
        (Some(a), Some(b)) => format!("T+{}", duration(seconds(a, b))),
        (_, Some(b)) => stamp(Some(b)),
        _ => "—".into(),
    }
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "done" | "completed" | "verified" | "alreadyDone" => "ok",
        "running" => "run",
        "incident" | "refused" | "aborted" | "rejected" | "terminated" | "not-confirmed" | "invalid-input" => "bad",
        o if o.starts_with("stopped") => "bad",
        _ => "warn",
    }
}

const CSS: &str = r#"
:root{--ok:#2e7d32;--okl:#c8e6c9;--bad:#c62828;--badl:#ffcdd2;--run:#1565c0;--runl:#bbdefb;--warn:#ef6c00;--warnl:#ffe0b2;--ink:#1f2328;--mute:#57606a;--line:#d0d7de}
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:var(--ink);margin:24px auto;max-width:1200px;padding:0 16px;font-size:14px;line-height:1.4;-webkit-print-color-adjust:exact;print-color-adjust:exact}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:14px 0 4px}
.sub{color:var(--mute);margin:0 0 16px}
.summary{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:bold;margin-top:2px}
.badge{display:inline-block;border-radius:4px;padding:1px 8px;font-weight:bold}
.badge.ok{background:var(--okl);color:var(--ok)}.badge.bad{background:var(--badl);color:var(--bad)}.badge.run{background:var(--runl);color:var(--run)}.badge.warn{background:var(--warnl);color:var(--warn)}
.story{font-size:15px;margin:8px 0}
.left{border-left:4px solid var(--warn);background:#fff8f0;padding:8px 12px;margin:8px 0}.left.none{border-color:var(--ok);background:#f3faf3}
.left ul{margin:4px 0;padding-left:20px}
.rto{display:flex;height:22px;border-radius:4px;overflow:hidden;margin:6px 0 2px;border:1px solid var(--line)}
.rto div{color:#fff;font-size:11px;line-height:22px;padding:0 6px;white-space:nowrap;overflow:hidden}
.legend{color:var(--mute);font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0 8px}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.n{text-align:right;white-space:nowrap}td.t{white-space:nowrap}
tr.phase td{background:#f6f8fa;font-weight:bold}
code{font-size:12px;background:#f6f8fa;padding:0 3px;border-radius:3px;word-break:break-all}
svg{width:100%;height:auto;display:block}
svg text{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;font-size:11px;fill:#1f2328}
svg .lane{font-weight:bold;font-size:12px}
svg .axis{fill:#57606a}
svg .grid{stroke:#e6e8eb;stroke-width:1}
svg .band{fill:#f6f8fa}
svg .bar.ok{fill:#66bb6a}svg .bar.bad{fill:#e53935}svg .bar.run{fill:#42a5f5}svg .bar.warn{fill:#ffa726}
svg .bar.user{fill:#ab47bc}svg .bar.loop{fill:#26a69a}
svg .check{stroke:#004d40;stroke-width:1.5}
svg .approval{fill:#6a1b9a;stroke:#fff;stroke-width:1}
svg .incident{fill:#b71c1c;stroke:#fff;stroke-width:1}
footer{color:var(--mute);font-size:12px;margin-top:32px;border-top:1px solid var(--line);padding-top:8px}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}table,tr,.card,svg{break-inside:avoid}.summary{grid-template-columns:repeat(5,1fr)}}
"#;

/// The report as one HTML document.
pub fn render(r: &DrReport) -> String {
    let mut o = String::new();
    let title = format!(
        "DR report: {} of {}",
        if r.procedure.is_empty() { "procedure" } else { &r.procedure },
        if r.target.is_empty() { "an unnamed target" } else { &r.target }
    );
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{CSS}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(o, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        o,
        "<p class=\"sub\">Started {} · ended {} · times on {}</p>",
        escape(&stamp(r.start)),
        if r.end.is_some() { escape(&stamp(r.end)) } else { "not yet (still running)".into() },
        escape(&r.clock)
    );
    summary(&mut o, r);
    let _ = writeln!(o, "<h2>Timeline</h2>");
    timeline(&mut o, r);
    details(&mut o, r);
    let _ = writeln!(
        o,
        "<footer>Made by c8dr {} from the management Camunda's process data and c8dr's audit journal. \
         Instances: {}.</footer>\n</body></html>",
        env!("CARGO_PKG_VERSION"),
        escape(&r.instances.iter().map(|i| format!("{} {}", i.process_id, i.key)).collect::<Vec<_>>().join(", "))
    );
    o
}

fn summary(o: &mut String, r: &DrReport) {
    let class = outcome_class(&r.outcome);
    let steps: usize = r.phases.iter().map(|p| p.steps.len()).sum();
    let _ = writeln!(o, "<h2>Summary</h2>");
    let what = match (r.outcome.as_str(), &r.final_state) {
        ("completed", Some(f)) if f.restored => {
            "The procedure completed and the installation is back to the expected state.".to_string()
        }
        ("completed", Some(_)) => {
            "The procedure completed, but the installation is NOT in the expected state (see below).".to_string()
        }
        ("completed", None) => "The procedure completed.".to_string(),
        ("running", _) => "The procedure is still running.".to_string(),
        ("incident", _) => "The procedure is stopped by an incident and needs a person.".to_string(),
        (o, _) => format!("The procedure ended {o}."),
    };
    let reason = r.outcome_reason.as_deref().map(|x| format!(" Reason: {}.", escape(x))).unwrap_or_default();
    let _ = writeln!(
        o,
        "<p class=\"story\"><span class=\"badge {class}\">{}</span> {}{reason} {} phases, {steps} steps, {} approvals, {} mutating calls, {} incidents.</p>",
        escape(&r.outcome.to_uppercase()),
        escape(&what),
        r.phases.len(),
        r.approvals.len(),
        r.mutations.len(),
        r.incidents.len()
    );
    let card = |o: &mut String, k: &str, v: &str| {
        let _ = write!(
            o,
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
            escape(k),
            escape(v)
        );
    };
    let _ = write!(o, "<div class=\"summary\">");
    card(o, "Total time", &r.rto.total.map(duration).unwrap_or_else(|| "running".into()));
    card(o, "Service back after", &r.rto.service_back.map(duration).unwrap_or_else(|| "—".into()));
    card(o, "Waiting on people", &r.rto.decide.map(duration).unwrap_or_else(|| "—".into()));
    card(o, "Verifying", &r.rto.verify.map(duration).unwrap_or_else(|| "—".into()));
    card(
        o,
        "Final state",
        match &r.final_state {
            Some(f) if f.restored => "as expected",
            Some(_) => "NOT as expected",
            None => "not checked here",
        },
    );
    let _ = writeln!(o, "</div>");
    // RTO split bar
    let parts = [
        ("detect", r.rto.detect, "#8d6e63"),
        ("decide", r.rto.decide, "#8e24aa"),
        ("execute", r.rto.execute, "#1e88e5"),
        ("verify", r.rto.verify, "#00897b"),
    ];
    let sum: f64 = parts.iter().filter_map(|p| p.1).sum();
    if sum > 0.0 {
        let _ = write!(o, "<div class=\"rto\">");
        for (name, v, color) in parts {
            if let Some(v) = v.filter(|v| *v > 0.0) {
                let share = v / sum * 100.0;
                // a sliver has no room for its label (the line below names every part)
                let label = if share >= 8.0 { format!("{name} {}", duration(v)) } else { String::new() };
                let _ = write!(
                    o,
                    "<div style=\"width:{share:.2}%;background:{color}\" title=\"{name} {}\">{label}</div>",
                    duration(v)
                );
            }
        }
        let _ = writeln!(o, "</div>");
    }
    let _ = writeln!(
        o,
        "<p class=\"legend\">Recovery time split: detect {} → decide (approval latency) {} → execute {} → verify {}.</p>",
        r.rto.detect.map(duration).unwrap_or_else(|| "not measured".into()),
        r.rto.decide.map(duration).unwrap_or_else(|| "—".into()),
        r.rto.execute.map(duration).unwrap_or_else(|| "—".into()),
        r.rto.verify.map(duration).unwrap_or_else(|| "—".into()),
    );
    if r.left_to_do.is_empty() {
        let _ = writeln!(o, "<div class=\"left none\"><b>Left to do:</b> nothing.</div>");
    } else {
        let _ = write!(o, "<div class=\"left\"><b>Left to do:</b><ul>");
        for l in &r.left_to_do {
            let _ = write!(o, "<li>{}</li>", escape(l));
        }
        let _ = writeln!(o, "</ul></div>");
    }
}

/// Ticks of the time axis: a round step giving about 8 ticks, and the unit to label them in.
fn axis_step(total: f64) -> f64 {
    const STEPS: [f64; 16] =
        [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0];
    STEPS.into_iter().find(|s| total / s <= 10.0).unwrap_or(86400.0)
}

fn axis_label(t: f64, step: f64) -> String {
    if step >= 3600.0 {
        format!("{} h", t / 3600.0)
    } else if step >= 60.0 {
        format!("{} min", t / 60.0)
    } else {
        format!("{t} s")
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn step_class(s: &Step) -> &'static str {
    match outcome_class(&s.outcome) {
        "ok" if s.kind == "user task" => "user",
        "ok" if s.kind == "verification loop" => "loop",
        c => c,
    }
}

/// The timeline: one lane per phase (a band with its name), one row and one bar per step.
fn timeline(o: &mut String, r: &DrReport) {
    let Some(t0) = r.start.or_else(|| r.phases.iter().map(|p| p.start).min()) else {
        let _ = writeln!(o, "<p>No step ran: there is no timeline.</p>");
        return;
    };
    let last = r
        .phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .flat_map(|s| [Some(s.start), s.end])
        .flatten()
        .chain(r.end)
        .max()
        .unwrap_or(t0);
    let total = seconds(t0, last).max(1.0);
    let step = axis_step(total);
    let span = (total / step).ceil() * step;
    let (width, label_w, right, row_h, lane_h, top) = (1200.0, 330.0, 20.0, 18.0, 22.0, 34.0);
    let chart_w = width - label_w - right;
    let x = |t: DateTime<Utc>| label_w + seconds(t0, t).max(0.0) / span * chart_w;
    let rows: usize = r.phases.iter().map(|p| p.steps.len()).sum();
    let height = top + rows as f64 * row_h + r.phases.len() as f64 * lane_h + 40.0;
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"Timeline of the procedure\">"
    );
    // time axis: grid lines and labels, with the unit
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let gx = label_w + t / span * chart_w;
        let _ = writeln!(
            o,
            "<line class=\"grid\" x1=\"{gx:.1}\" y1=\"{:.1}\" x2=\"{gx:.1}\" y2=\"{:.1}\"/><text class=\"axis\" x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top - 6.0,
            height - 30.0,
            top - 10.0,
            escape(&axis_label(t, step))
        );
        t += step;
    }
    let _ =
        writeln!(o, "<text class=\"axis\" x=\"{label_w}\" y=\"12\">time since the start ({})</text>", escape(&r.clock));
    let mut y = top;
    for phase in &r.phases {
        let lane_rows = phase.steps.len() as f64;
        let _ = writeln!(
            o,
            "<g class=\"phase\"><rect class=\"band\" x=\"0\" y=\"{y:.1}\" width=\"{width}\" height=\"{:.1}\"/><text class=\"lane\" x=\"6\" y=\"{:.1}\">{}</text>",
            lane_h + lane_rows * row_h,
            y + 15.0,
            escape(&short(&phase.name, 60))
        );
        y += lane_h;
        for s in &phase.steps {
            let x1 = x(s.start);
            let x2 = x(s.end.unwrap_or(last)).max(x1 + 2.0);
            let tip = format!(
                "{} ({}): {}, {} → {}, {}{}{}",
                s.name,
                s.kind,
                s.outcome,
                offset(r, Some(s.start)),
                s.end.map(|e| offset(r, Some(e))).unwrap_or_else(|| "running".into()),
                s.end.map(|e| duration(seconds(s.start, e))).unwrap_or_else(|| "open".into()),
                if s.attempts > 1 { format!(", {} attempts", s.attempts) } else { String::new() },
                if s.retries > 0 { format!(", {} retries", s.retries) } else { String::new() },
            );
            let _ = writeln!(
                o,
                "<text x=\"16\" y=\"{:.1}\">{}</text><rect class=\"bar {}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"2\"><title>{}</title></rect>",
                y + 13.0,
                escape(&short(&s.name, 48)),
                step_class(s),
                y + 3.0,
                x2 - x1,
                row_h - 6.0,
                escape(&tip)
            );
            for c in &s.checks {
                let cx = x(*c);
                let _ = write!(
                    o,
                    "<line class=\"check\" x1=\"{cx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\"/>",
                    y + 2.0,
                    y + row_h - 2.0
                );
            }
            if s.kind == "user task" {
                for a in r
                    .approvals
                    .iter()
                    .filter(|a| a.element_id == s.element_id && a.process_instance_key == phase.process_instance_key)
                {
                    if let Some(done) = a.completed {
                        let (ax, ay) = (x(done), y + row_h / 2.0);
                        let _ = write!(
                            o,
                            "<path class=\"approval\" d=\"M{ax:.1} {:.1} L{:.1} {ay:.1} L{ax:.1} {:.1} L{:.1} {ay:.1} Z\"><title>{}</title></path>",
                            ay - 6.0,
                            ax + 6.0,
                            ay + 6.0,
                            ax - 6.0,
                            escape(&format!("{}: {} by {}", a.task, a.decision, a.who.as_deref().unwrap_or("unknown")))
                        );
                    }
                }
            }
            for i in r
                .incidents
                .iter()
                .filter(|i| i.element_id == s.element_id && i.process_instance_key == phase.process_instance_key)
            {
                if let Some(t) = i.time {
                    let (ix, iy) = (x(t), y + 2.0);
                    let _ = write!(
                        o,
                        "<path class=\"incident\" d=\"M{ix:.1} {iy:.1} L{:.1} {:.1} L{:.1} {:.1} Z\"><title>{}</title></path>",
                        ix + 7.0,
                        iy + 13.0,
                        ix - 7.0,
                        iy + 13.0,
                        escape(&format!("incident {}: {}", i.error_type, i.message))
                    );
                }
            }
            let _ = writeln!(o);
            y += row_h;
        }
        let _ = writeln!(o, "</g>");
    }
    // legend
    let ly = height - 12.0;
    let _ = writeln!(
        o,
        "<g class=\"legend\"><rect class=\"bar ok\" x=\"{label_w}\" y=\"{:.1}\" width=\"14\" height=\"10\"/><text x=\"{:.1}\" y=\"{ly:.1}\">step done</text>\
<rect class=\"bar user\" x=\"{:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\"/><text x=\"{:.1}\" y=\"{ly:.1}\">waiting on a person</text>\
<rect class=\"bar loop\" x=\"{:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\"/><line class=\"check\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{ly:.1}\">verification loop, ticks = checks</text>\
<path class=\"approval\" d=\"M{:.1} {:.1} l6 6 l-6 6 l-6 -6 Z\"/><text x=\"{:.1}\" y=\"{ly:.1}\">answer given</text>\
<path class=\"incident\" d=\"M{:.1} {:.1} l7 12 l-14 0 Z\"/><text x=\"{:.1}\" y=\"{ly:.1}\">incident</text>\
<rect class=\"bar bad\" x=\"{:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\"/><text x=\"{:.1}\" y=\"{ly:.1}\">failed / stopped</text></g>",
        ly - 9.0,
        label_w + 18.0,
        label_w + 100.0,
        ly - 9.0,
        label_w + 118.0,
        label_w + 250.0,
        ly - 9.0,
        label_w + 257.0,
        ly - 10.0,
        label_w + 257.0,
        ly + 2.0,
        label_w + 268.0,
        label_w + 482.0,
        ly - 11.0,
        label_w + 492.0,
        label_w + 590.0,
        ly - 11.0,
        label_w + 600.0,
        label_w + 670.0,
        ly - 9.0,
        label_w + 688.0,
    );
    let _ = writeln!(o, "</svg>");
}

fn details(o: &mut String, r: &DrReport) {
    let _ = writeln!(o, "<h2>Phases and steps</h2>");
    let _ = writeln!(
        o,
        "<table><tr><th>Step (as named in the BPMN)</th><th>Kind</th><th>Start</th><th>Took</th><th>Outcome</th><th class=\"n\">Attempts</th><th class=\"n\">Retries</th><th class=\"n\">Incidents</th><th class=\"n\">Calls</th></tr>"
    );
    for p in &r.phases {
        let took = p.end.map(|e| duration(seconds(p.start, e))).unwrap_or_else(|| "running".into());
        let _ = writeln!(
            o,
            "<tr class=\"phase\"><td colspan=\"2\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td colspan=\"5\">{}</td></tr>",
            escape(&p.name),
            escape(&offset(r, Some(p.start))),
            escape(&took),
            escape(&format!("{} · instance {}", p.process, p.process_instance_key))
        );
        for s in &p.steps {
            let name = match (&s.check_name, s.checks.len()) {
                (Some(c), n) => format!("{} — check \"{c}\" ran {n}×", s.name),
                _ => s.name.clone(),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td><span class=\"badge {}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&name),
                escape(&s.kind),
                escape(&offset(r, Some(s.start))),
                escape(&s.end.map(|e| duration(seconds(s.start, e))).unwrap_or_else(|| "running".into())),
                outcome_class(&s.outcome),
                escape(&s.outcome),
                s.attempts,
                s.retries,
                s.incidents,
                s.mutations
            );
        }
    }
    let _ = writeln!(o, "</table>");

    let _ = writeln!(o, "<h2>Approvals and answers</h2>");
    if r.approvals.is_empty() {
        let _ = writeln!(o, "<p>No user task: nothing was asked of a person (auto-approved or not reached).</p>");
    } else {
        let _ = writeln!(
            o,
            "<table><tr><th>Task</th><th>Asked</th><th>Answered</th><th>Waited</th><th>Who</th><th>Decision</th><th>Reason</th></tr>"
        );
        for a in &r.approvals {
            let waited = a.created.zip(a.completed).map(|(c, d)| duration(seconds(c, d))).unwrap_or_else(|| "—".into());
            let mut reason = a.reason.as_deref().map(escape).unwrap_or_else(|| "—".into());
            for d in &a.denied {
                let _ = write!(reason, "<br><i>denied before: {}</i>", escape(d));
            }
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{reason}</td></tr>",
                escape(&a.task),
                escape(&offset(r, a.created)),
                escape(&offset(r, a.completed)),
                escape(&waited),
                escape(a.who.as_deref().unwrap_or("unknown")),
                escape(&a.decision),
            );
        }
        let _ = writeln!(o, "</table>");
    }

    let _ = writeln!(o, "<h2>Verifications</h2>");
    if r.verifications.is_empty() {
        let _ = writeln!(o, "<p>No verification loop ran.</p>");
    } else {
        let _ = writeln!(
            o,
            "<table><tr><th>Verification</th><th>Start</th><th>Took</th><th class=\"n\">Checks</th><th>Outcome</th></tr>"
        );
        for v in &r.verifications {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><span class=\"badge {}\">{}</span></td></tr>",
                escape(&v.name),
                escape(&offset(r, Some(v.start))),
                escape(&v.end.map(|e| duration(seconds(v.start, e))).unwrap_or_else(|| "running".into())),
                v.checks,
                outcome_class(&v.outcome),
                escape(&v.outcome)
            );
        }
        let _ = writeln!(o, "</table>");
    }

    let _ = writeln!(o, "<h2>Incidents</h2>");
    if r.incidents.is_empty() {
        let _ = writeln!(o, "<p>None.</p>");
    } else {
        let _ = writeln!(o, "<table><tr><th>Step</th><th>When</th><th>Type</th><th>Message</th><th>State</th></tr>");
        for i in &r.incidents {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&i.step),
                escape(&offset(r, i.time)),
                escape(&i.error_type),
                escape(&i.message),
                if i.active { "open" } else { "resolved" }
            );
        }
        let _ = writeln!(o, "</table>");
    }

    let _ = writeln!(o, "<h2>Mutating calls (audit journal)</h2>");
    if r.mutations.is_empty() {
        let _ = writeln!(o, "<p>None recorded in the journal for these instances.</p>");
    } else {
        let _ = writeln!(
            o,
            "<table><tr><th>Time (worker clock)</th><th>Step</th><th>Region</th><th>Action</th><th>Request</th><th>Answer</th></tr>"
        );
        for m in &r.mutations {
            let _ = writeln!(
                o,
                "<tr><td class=\"t\">{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&stamp(Some(m.time))),
                escape(&m.step),
                m.region.map(|r| r.to_string()).unwrap_or_else(|| "—".into()),
                escape(&m.action),
                escape(&m.request),
                escape(&m.status)
            );
        }
        let _ = writeln!(o, "</table>");
    }

    let _ = writeln!(o, "<h2>Final state</h2>");
    match &r.final_state {
        Some(f) => {
            let _ = writeln!(
                o,
                "<p><span class=\"badge {}\">{}</span> Expected: {}.</p>",
                if f.restored { "ok" } else { "bad" },
                if f.restored { "AS EXPECTED" } else { "NOT AS EXPECTED" },
                escape(&f.expected)
            );
            if !f.problems.is_empty() {
                let _ = write!(o, "<ul>");
                for p in &f.problems {
                    let _ = write!(o, "<li>{}</li>", escape(p));
                }
                let _ = writeln!(o, "</ul>");
            }
        }
        None => {
            let _ = writeln!(
                o,
                "<p>Not checked by this report: run <code>c8dr status --target {}</code> to see the installation now.</p>",
                escape(if r.target.is_empty() { "TARGET" } else { &r.target })
            );
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(o, "<h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = writeln!(o, "<li>{}</li>", escape(n));
        }
        let _ = writeln!(o, "</ul>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("a\u{1}b"), "a b");
    }

    #[test]
    fn durations_and_axis_carry_units() {
        assert_eq!(duration(-1.0), "0 s");
        assert_eq!(duration(65.4), "1 min 05 s");
        assert_eq!(duration(3725.0), "1 h 02 min");
        assert_eq!(axis_step(95.0), 10.0);
        assert_eq!(axis_label(120.0, 60.0), "2 min");
        assert_eq!(axis_label(30.0, 5.0), "30 s");
    }
}
