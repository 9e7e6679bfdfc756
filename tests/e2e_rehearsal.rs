//! End-to-end: the real BPMN (bpmn/) on the rehearsal engine, the real worker and step handlers,
//! against the lab, on an accelerated clock. Each test is one rehearsal.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::rehearsal::lab::{FaultConfig, LabDurations};
use c8dr::rehearsal::report::RehearsalReport;
use c8dr::rehearsal::run::{RehearseOptions, Scenario, rehearse};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Fast but not instant: every asynchronous change still needs several checks.
fn durations() -> LabDurations {
    LabDurations { broker_op_ms: 400, exporter_op_ms: 200, snapshot_ms: 4_000, restore_ms: 6_000 }
}

fn options() -> RehearseOptions {
    RehearseOptions {
        speed: 100.0,
        durations: durations(),
        bpmn_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn").into(),
        real_timeout: Duration::from_secs(240),
        progress: std::env::var_os("C8DR_TEST_PROGRESS").is_some(),
        ..RehearseOptions::default()
    }
}

async fn run(opts: RehearseOptions) -> RehearsalReport {
    let report = rehearse(opts).await.expect("the rehearsal runs");
    if !report.restored() {
        eprintln!("{}", report.render());
    }
    report
}

fn vars(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn exporting_paused(report: &RehearsalReport) -> bool {
    report.lab_state.pointer("/exportingPaused").and_then(Value::as_bool).unwrap_or(false)
        || report.lab_state.pointer("/exporting").and_then(Value::as_str).is_some_and(|s| s != "running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_then_failback_restores_the_installation() {
    let report = run(options()).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    assert_eq!(report.phases.len(), 2);
    for phase in &report.phases {
        assert_eq!(phase.outcome, "completed", "{}", phase.process);
        assert_eq!(phase.procedure_outcome, "completed", "{}", phase.process);
        assert!(phase.simulated_seconds > 0.0);
    }
    assert!(report.mutations_repeated.is_empty(), "{:?}", report.mutations_repeated);
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
    // the whole seed procedure mutated the installation: remove, disable, pause, repo x2,
    // snapshot, restore, enable, resume, add (plus helm calls to the lab's platform)
    assert!(report.mutations >= 10, "only {} mutating calls", report.mutations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_started_by_message_restores_and_reports_recovery_time() {
    let report = run(RehearseOptions { scenario: Scenario::Drill, ..options() }).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    let drill = report.phase("dr-drill").expect("drill phase");
    assert_eq!(drill.procedure_outcome, "completed");
    let recovery = drill.report.pointer("/recoveryTimeSeconds").and_then(Value::as_f64);
    assert!(recovery.is_some_and(|s| s > 0.0), "drill report without recovery time: {}", drill.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_on_every_endpoint_still_restore() {
    let faults = FaultConfig { seed: 42, error_rate: 0.1, ..FaultConfig::default() };
    let report = run(RehearseOptions { faults: Some(faults), ..options() }).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    assert!(report.mutations_repeated.is_empty(), "{:?}", report.mutations_repeated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_approval_ends_cleanly_without_touching_the_installation() {
    let mut opts = options();
    opts.answers.insert(
        "c8dr-approve-failover".into(),
        vars(json!({"decision": "reject", "comment": "not a real outage: network blip"})),
    );
    let report = run(opts).await;
    let failover = report.phase("dr-failover").expect("failover phase");
    assert_eq!(failover.outcome, "completed", "the process ends, no incident");
    assert_eq!(failover.procedure_outcome, "rejected");
    assert!(report.phase("dr-failback").is_none(), "no failback after a rejected failover");
    assert_eq!(report.mutations, 0, "a rejected failover changes nothing");
    let text = failover.report.to_string();
    assert!(text.contains("network blip"), "the reason is recorded in the report: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_ends_cleanly_before_any_mutation() {
    let mut opts = options();
    opts.extra_variables = vars(json!({"lostRegion": 2}));
    let report = run(opts).await;
    let failover = report.phase("dr-failover").expect("failover phase");
    assert_eq!(failover.outcome, "completed");
    assert_eq!(failover.procedure_outcome, "invalid-input");
    assert_eq!(report.mutations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_that_never_completes_times_out_to_an_operator_and_aborts() {
    let mut opts = options();
    opts.stuck_adds = true;
    opts.extra_variables = vars(json!({"changeTimeout": "PT3M"}));
    let report = run(opts).await;
    let failback = report.phase("dr-failback").expect("failback phase");
    assert_eq!(failback.outcome, "completed", "aborted by the operator, not an incident");
    assert_eq!(failback.procedure_outcome, "aborted");
    assert!(
        failback.steps.iter().any(|s| s.element_type == "USER_TASK" && s.element_id.to_lowercase().contains("timeout")),
        "a verification-timed-out user task was shown"
    );
    assert!(!exporting_paused(&report), "exporting was resumed");
    assert!(!report.restored());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_while_exporting_is_paused_resumes_exporting_on_abort() {
    let mut opts = options();
    // the snapshot never finishes within its timeout
    opts.durations = LabDurations { snapshot_ms: 10 * 3_600_000, ..durations() };
    opts.extra_variables = vars(json!({"snapshotTimeout": "PT2M"}));
    let report = run(opts).await;
    let failback = report.phase("dr-failback").expect("failback phase");
    assert_eq!(failback.procedure_outcome, "aborted");
    assert!(!exporting_paused(&report), "exporting must be resumed on the abort path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_rejects_a_bpmn_with_an_unsupported_element() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.bpmn"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="bad" isExecutable="true">
    <bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="script"/>
    <bpmn:scriptTask id="script"/><bpmn:sequenceFlow id="f2" sourceRef="script" targetRef="e"/>
    <bpmn:endEvent id="e"/>
  </bpmn:process>
</bpmn:definitions>"#,
    )
    .unwrap();
    let err = rehearse(RehearseOptions { bpmn_dir: dir.path().into(), ..options() }).await.expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("script"), "the message names the element: {text}");
}
