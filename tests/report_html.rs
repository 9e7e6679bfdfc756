//! The DR report (issue 10 item 2): the HTML of a real rehearsal (failover + failback), the same
//! report built by `c8dr report --instance` from the rehearsal engine's REST API, and a render
//! in headless Chromium.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine)
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
use c8dr::rehearsal::report::RehearsalReport;
use c8dr::rehearsal::run::{RehearseOptions, rehearse};
use c8dr::report::DrReport;
use c8dr::report::html::{escape, render};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const SCRIPT: &str = "<script>alert('owned')</script>";

fn options() -> RehearseOptions {
    // an approver's comment is a variable a person typed: it must reach the page as text
    let answer = json!({"decision": "approve", "comment": format!("ok {SCRIPT}")});
    let answers =
        BTreeMap::from([("c8dr-approve-failover".to_string(), answer.as_object().cloned().unwrap_or_default())]);
    RehearseOptions { answers, ..rehearsal_support::options() }
}

async fn rehearsal(keep_engine: bool) -> (RehearsalReport, DrReport) {
    let report = rehearse(RehearseOptions { keep_engine, ..options() }).await.expect("the rehearsal runs");
    assert!(report.restored(), "{}", report.render());
    let dr = report.dr.clone().expect("the DR report is built");
    (report, dr)
}

/// The `<svg>…</svg>` part of the page.
fn svg_part(html: &str) -> &str {
    let start = html.find("<svg").expect("an inline SVG");
    let end = html.find("</svg>").expect("the SVG ends") + "</svg>".len();
    assert_eq!(html.matches("<svg").count(), 1, "one SVG");
    &html[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rehearsal_report_names_every_phase_and_step_and_draws_a_bar_per_step() {
    let (_, dr) = rehearsal(false).await;
    let html = render(&dr);

    // phases and steps by their BPMN names (not ids), with the seed's numbered steps among them
    let steps: Vec<&c8dr::report::Step> = dr.phases.iter().flat_map(|p| p.steps.iter()).collect();
    for expected in [
        "Remove lost brokers from the Zeebe cluster",
        "Disable the exporters to the lost region",
        "1. Deploy Camunda 8 in the recreated region",
        "4. Create and restore Elasticsearch backup",
    ] {
        assert!(dr.phases.iter().any(|p| p.name == expected), "phase {expected:?} missing");
    }
    for expected in
        ["Approve failover", "Remove lost brokers (force)", "Await broker removal", "Confirm service restored"]
    {
        assert!(steps.iter().any(|s| s.name == expected), "step {expected:?} missing");
    }
    for phase in &dr.phases {
        assert!(html.contains(&escape(&phase.name)), "phase {:?} not in the page", phase.name);
        for step in &phase.steps {
            assert!(html.contains(&escape(&step.name)), "step {:?} not in the page", step.name);
        }
    }
    // both processes are in it, and what a manager reads first
    assert!(dr.instances.len() >= 2, "{:?}", dr.instances);
    assert_eq!(dr.procedure, "failover + failback");
    assert_eq!(dr.outcome, "completed");
    assert!(dr.mutations.len() >= 10, "every mutating call of the journal: {:?}", dr.mutations);
    assert!(dr.verifications.iter().all(|v| v.checks >= 1), "{:?}", dr.verifications);
    assert!(
        dr.approvals.iter().any(|a| a.task == "Approve failover"
            && a.decision == "approve"
            && a.who.as_deref() == Some("rehearsal-approver")),
        "{:?}",
        dr.approvals
    );
    let summary = &html[..html.find("<svg").unwrap_or(html.len())];
    assert!(summary.contains("Left to do:") && summary.contains("Total time"), "summary first");
    let (back, total) = (dr.rto.service_back.expect("failover done"), dr.rto.total.expect("ended"));
    assert!(back > 0.0 && back < total, "service back ({back} s) before the end of the failback ({total} s)");

    // the SVG: well-formed XML, one lane per phase, one bar per step
    let svg = svg_part(&html);
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    let lanes = doc.descendants().filter(|n| n.attribute("class") == Some("phase")).count();
    assert_eq!(lanes, dr.phases.len());
    let bars = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class").is_some_and(|c| c.starts_with("bar ")))
        .filter(|n| !n.ancestors().any(|a| a.attribute("class") == Some("legend")))
        .count();
    assert_eq!(bars, steps.len(), "one bar per step");
    let marks = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("approval"))
        .filter(|n| !n.ancestors().any(|a| a.attribute("class") == Some("legend")))
        .count();
    let answered = dr.approvals.iter().filter(|a| a.completed.is_some()).count();
    assert!(answered >= 4 && marks == answered, "every answer is marked on the timeline: {marks} of {answered}");
    assert!(svg.contains(" s</text>") || svg.contains(" min</text>"), "the time axis names its unit");

    // a variable with markup is text, never markup
    assert!(!html.contains(SCRIPT) && !html.to_lowercase().contains("<script"), "no script in the page");
    assert!(html.contains(&escape(SCRIPT)), "the comment is shown, escaped");

    // self-contained: nothing fetched, no scripts
    let lower = html.to_lowercase();
    for needle in ["src=", "href=", "@import", "url(", "<link", "<iframe", "<object"] {
        assert!(!lower.contains(needle), "{needle} in a self-contained report");
    }
    assert!(lower.starts_with("<!doctype html>") && lower.contains("<style>"), "inline CSS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c8dr_report_for_an_instance_gives_the_same_steps_as_the_rehearsal() {
    let (report, dr) = rehearsal(true).await;
    let kept = report.kept.clone().expect("the engine is kept");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c8dr.toml");
    std::fs::write(
        &config,
        format!(
            "[management]\ngrpc_address = \"{}\"\nrest_address = \"{}\"\n\n[journal]\npath = \"{}\"\n",
            kept.engine.grpc_url(),
            kept.engine.rest_url(),
            kept.journal.display()
        ),
    )
    .unwrap();
    for phase in &report.phases {
        let (out, json_out) = (dir.path().join("r.html"), dir.path().join("r.json"));
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_c8dr"))
            .arg("--config")
            .arg(&config)
            .args(["report", "--instance", &phase.instance_key.to_string(), "--out"])
            .arg(&out)
            .arg("--json")
            .arg(&json_out)
            .output();
        let run = tokio::time::timeout(Duration::from_secs(120), run).await.expect("bounded").expect("runs");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let got: Value = serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
        let lanes = |phases: Vec<(String, Vec<String>)>| phases;
        let from_cli = lanes(
            got["phases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let steps = p["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string());
                    (p["name"].as_str().unwrap().to_string(), steps.collect())
                })
                .collect(),
        );
        let from_rehearsal = lanes(
            dr.phases
                .iter()
                .filter(|p| p.process_instance_key == phase.instance_key)
                .map(|p| (p.name.clone(), p.steps.iter().map(|s| s.name.clone()).collect()))
                .collect(),
        );
        assert!(!from_cli.is_empty());
        assert_eq!(from_cli, from_rehearsal, "{}", phase.process);
        // the journal's mutating calls of this instance are in it
        let calls = got["mutations"].as_array().unwrap().len();
        let expected = dr
            .mutations
            .iter()
            .filter(|m| {
                dr.phases
                    .iter()
                    .any(|p| p.process_instance_key == phase.instance_key && p.steps.iter().any(|s| s.name == m.step))
            })
            .count();
        assert!(calls > 0 && calls >= expected, "{calls} calls, expected {expected}");
        let html = std::fs::read_to_string(&out).unwrap();
        assert!(html.contains("Approve fail"), "the approval is in the page");
    }
    // an unknown instance is named with the fix
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_c8dr"))
        .arg("--config")
        .arg(&config)
        .args(["report", "--instance", "42", "--out"])
        .arg(dir.path().join("x.html"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && err.contains("42") && err.contains("--instance"), "{err}");
    drop(kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_renders_the_report() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must have /usr/bin/chromium (scripts/test.sh installs it)");
        eprintln!("skipped: /usr/bin/chromium is absent (apt-get install chromium, or run scripts/test.sh)");
        return;
    }
    let (_, dr) = rehearsal(false).await;
    let dir = tempfile::tempdir().unwrap();
    let (page, png, profile) = (dir.path().join("r.html"), dir.path().join("r.png"), dir.path().join("profile"));
    std::fs::write(&page, render(&dr)).unwrap();
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(Duration::from_secs(180), run).await.expect("bounded").expect("chromium runs");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // a blank page compresses to a few kilobytes; the report's text and timeline do not
    assert!(bytes.len() > 30_000, "only {} bytes: the page looks empty", bytes.len());
}

/// A rejected failover: the summary says so, with the reason, and what is left to do; the
/// approval shows who said no and why; nothing was mutated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_failover_reads_as_rejected_with_its_reason_and_what_is_left() {
    let mut opts = options();
    let answer = json!({"decision": "reject", "comment": "not a real outage: network blip"});
    opts.answers.insert("c8dr-approve-failover".into(), answer.as_object().cloned().unwrap_or_default());
    let report = rehearse(opts).await.expect("the rehearsal runs");
    let dr = report.dr.clone().expect("the DR report is built");
    assert_eq!(dr.outcome, "rejected");
    assert!(dr.mutations.is_empty(), "{:?}", dr.mutations);
    let a = dr.approvals.iter().find(|a| a.task == "Approve failover").expect("the approval");
    assert_eq!((a.decision.as_str(), a.reason.as_deref()), ("reject", Some("not a real outage: network blip")));
    assert!(dr.left_to_do.iter().any(|l| l.contains("rejected")), "{:?}", dr.left_to_do);
    assert!(
        !dr.left_to_do.iter().any(|l| l.contains("fail back")),
        "no failback after a rejection: {:?}",
        dr.left_to_do
    );
    let html = render(&dr);
    let summary = &html[..html.find("<svg").unwrap_or(html.len())];
    assert!(summary.contains("REJECTED") && !summary.contains("Left to do:</b> nothing"), "the summary says it");
}

/// Four-eyes: the initiator's approval was denied, a second person approved; both are in the
/// report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_completion_and_the_second_approver_are_in_the_report() {
    let opts =
        RehearseOptions { initiator: "alice".into(), approvers: vec!["alice".into(), "bob".into()], ..options() };
    let report = rehearse(opts).await.expect("the rehearsal runs");
    let dr = report.dr.clone().expect("the DR report is built");
    let a = dr.approvals.iter().find(|a| a.task == "Approve failover").expect("the approval");
    assert_eq!(a.who.as_deref(), Some("bob"), "{a:?}");
    assert!(a.denied.iter().any(|d| d.starts_with("alice:")), "{a:?}");
    assert!(render(&dr).contains("denied before: alice:"));
}
