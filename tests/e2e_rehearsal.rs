//! End-to-end: the real BPMN (bpmn/) on the rehearsal engine, the real worker and step handlers,
//! against the lab, on an accelerated clock. Each test is one rehearsal.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
use c8dr::rehearsal::lab::{FaultConfig, LabDurations};
use c8dr::rehearsal::report::RehearsalReport;
use c8dr::rehearsal::run::{RehearseOptions, Scenario, rehearse};
use rehearsal_support::{durations, options};
use serde_json::{Map, Value, json};

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

fn surviving_profiles(report: &RehearsalReport) -> Vec<String> {
    let regions = report.lab_state.pointer("/regions").and_then(Value::as_array).expect("regions");
    let surviving = regions.iter().find(|r| r["region"] == json!(0)).expect("region 0");
    surviving["profiles"].as_array().expect("profiles").iter().filter_map(|p| p.as_str().map(str::to_string)).collect()
}

fn reason(phase: &c8dr::rehearsal::report::PhaseReport) -> String {
    phase.report.pointer("/outcomeReason").map(|r| r.to_string()).unwrap_or_default()
}

/// Item 12.1: only an explicit yes at "Confirm traffic rerouted" lets the failover remove brokers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_not_rerouted_or_no_answer_ends_without_any_mutation() {
    let cases = [
        (json!({"trafficRerouted": false, "comment": "DNS still points to region 1"}), "not rerouted"),
        (json!({"comment": "closed the form"}), "trafficRerouted = missing"),
        // (a rejection needs a comment, or the approval guard denies the completion)
        (json!({"trafficRerouted": null, "comment": "n/a"}), "trafficRerouted = missing"),
        (json!({"trafficRerouted": "yes", "comment": "typed it"}), "trafficRerouted = yes"),
    ];
    for (answer, needle) in cases {
        let mut opts = options();
        opts.answers.insert("c8dr-confirm-traffic".into(), vars(answer.clone()));
        let report = run(opts).await;
        let failover = report.phase("dr-failover").expect("failover phase");
        assert_eq!(failover.outcome, "completed", "{answer}: the process ends, no incident");
        assert_eq!(failover.procedure_outcome, "rejected", "{answer}");
        assert!(report.incidents.is_empty(), "{answer}: {:?}", report.incidents);
        assert_eq!(report.mutations, 0, "{answer}: nothing reached the installation");
        assert!(
            !failover.steps.iter().any(|s| s.element_id == "RemoveBrokers"),
            "{answer}: the brokers were not removed"
        );
        assert!(report.phase("dr-failback").is_none());
        let why = reason(failover);
        assert!(why.contains(needle), "{answer}: the reason is reported: {why}");
    }
}

/// Item 12.1: an approval with a missing decision is not an approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_without_a_decision_is_reported_as_no_answer() {
    let mut opts = options();
    opts.answers.insert("c8dr-approve-failover".into(), vars(json!({"decision": 1, "comment": "typo"})));
    let report = run(opts).await;
    let failover = report.phase("dr-failover").expect("failover phase");
    assert_eq!(failover.procedure_outcome, "rejected");
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
    assert_eq!(report.mutations, 0);
    let why = reason(failover);
    assert!(why.contains("no valid answer") && why.contains("decision = 1"), "{why}");
}

/// Items 12.8 and 9.6: an abort after step 2 (here in step 7, a stuck change) turns Operate and
/// Tasklist back on in the surviving region and the report says what remains to clean up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_after_webapps_off_turns_them_back_on_and_lists_the_cleanup() {
    let mut opts = options();
    opts.stuck_adds = true;
    opts.extra_variables = vars(json!({"changeTimeout": "PT3M"}));
    let report = run(opts).await;
    let failback = report.phase("dr-failback").expect("failback phase");
    assert_eq!(failback.outcome, "completed", "aborted by the operator, not an incident");
    assert_eq!(failback.procedure_outcome, "aborted");
    assert!(!exporting_paused(&report), "exporting was resumed");
    let profiles = surviving_profiles(&report);
    assert!(
        profiles.iter().any(|p| p == "operate") && profiles.iter().any(|p| p == "tasklist"),
        "Operate and Tasklist are on again in the surviving region: {profiles:?}"
    );
    let why = reason(failback);
    assert!(why.contains("aborted by the operator"), "{why}");
    assert!(why.contains("Helm release") && why.contains("PVCs"), "the cleanup is listed: {why}");
    assert!(why.contains("on again in the surviving region"), "{why}");
}

/// Item 12.7: exporting paused longer than pausedWindowTimeout escalates to a person; "resume"
/// resumes exporting, aborts the failback and turns the surviving webapps back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_window_exceeded_lets_a_person_resume_exporting() {
    let mut opts = options();
    // the snapshot takes far longer than the paused window (but not than its own timeout)
    opts.durations = LabDurations { snapshot_ms: 10 * 3_600_000, ..durations() };
    opts.extra_variables = vars(json!({"snapshotTimeout": "PT24H", "pausedWindowTimeout": "PT5M"}));
    opts.answers.insert(
        "c8dr-paused-window".into(),
        vars(json!({"pausedDecision": "resume", "comment": "log compaction matters more"})),
    );
    let report = run(opts).await;
    let failback = report.phase("dr-failback").expect("failback phase");
    assert_eq!(failback.outcome, "completed", "no incident");
    assert_eq!(failback.procedure_outcome, "aborted");
    assert!(!exporting_paused(&report), "exporting was resumed");
    assert!(surviving_profiles(&report).iter().any(|p| p == "operate"), "webapps on again");
    let why = reason(failback);
    assert!(why.contains("pausedWindowTimeout") && why.contains("log compaction matters more"), "{why}");
    assert!(
        failback.steps.iter().any(|s| s.element_id.starts_with("PausedWindow_")),
        "the paused-window user task was shown"
    );
}

/// Item 12.7: without an answer (or "wait"), the failback keeps going and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_window_keep_waiting_still_restores() {
    let mut opts = options();
    opts.extra_variables = vars(json!({"pausedWindowTimeout": "PT3S"}));
    opts.answers.insert("c8dr-paused-window".into(), vars(json!({"pausedDecision": "wait", "comment": "almost done"})));
    let report = run(opts).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    let failback = report.phase("dr-failback").expect("failback phase");
    assert!(
        failback.steps.iter().any(|s| s.element_id.starts_with("PausedWindow_")),
        "the watchdog asked at least once"
    );
}

/// Issue 12.3: `c8dr rehearse --legacy-exporters`: an 8.7-migrated installation with Optimize
/// (legacy `elasticsearchregionN` exporters enabled in both regions before the loss) ends with
/// them enabled in both regions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_then_failback_with_legacy_exporters_enables_them_in_both_regions() {
    let report = run(RehearseOptions { legacy_exporters: true, ..options() }).await;
    assert!(
        report.restored(),
        "not restored: {:?} / {:?} / repeated {:?} / phases {:?}",
        report.final_problems,
        report.error,
        report.mutations_repeated,
        report.phases.iter().map(|p| (&p.process, &p.outcome)).collect::<Vec<_>>()
    );
    assert!(report.incidents.is_empty(), "{:?}", report.incidents);
    for r in 0..2 {
        let id = format!("elasticsearchregion{r}");
        let exporters = report.lab_state["exporters"].as_array().unwrap();
        assert!(
            exporters.iter().any(|e| e["exporterId"] == json!(id) && e["status"] == json!("ENABLED")),
            "{id}: {exporters:?}"
        );
    }
    assert!(report.mutations_repeated.is_empty(), "{:?}", report.mutations_repeated);
}

/// Issue 10.4, four-eyes: the initiator's approval is denied by the completing listener (the task
/// stays open, the reason is reported) and a second approver's completion goes through, at every
/// approval task; the installation is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_denies_the_initiator_and_a_second_approver_restores() {
    let opts =
        RehearseOptions { initiator: "alice".into(), approvers: vec!["alice".into(), "bob".into()], ..options() };
    let report = run(opts).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    for (phase, tasks) in [
        ("dr-failover", ["ApproveFailover", "ConfirmTraffic"]),
        ("dr-failback", ["ApproveFailback", "ConfirmRestored"]),
    ] {
        let p = report.phase(phase).expect("phase");
        assert_eq!(p.procedure_outcome, "completed", "{phase}");
        for task in tasks {
            let denial = p.denials.iter().find(|d| d.starts_with(&format!("{task} by alice:")));
            let denial = denial.unwrap_or_else(|| panic!("{phase}: {task} by alice not denied: {:?}", p.denials));
            assert!(denial.contains("alice started this process"), "{denial}");
        }
        assert!(!p.denials.iter().any(|d| d.contains(" by bob:")), "{:?}", p.denials);
    }
}

/// Issue 10.4: a rejection without a reason is denied: the task stays open, nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_without_a_reason_is_denied() {
    let mut opts = options();
    opts.answers.insert("c8dr-approve-failover".into(), vars(json!({"decision": "reject"})));
    let report = run(opts).await;
    let failover = report.phase("dr-failover").expect("failover phase");
    assert_eq!(failover.outcome, "denied", "the completion did not go through");
    assert!(failover.denials.iter().any(|d| d.contains("needs a reason")), "{:?}", failover.denials);
    assert_eq!(report.mutations, 0);
    assert!(report.phase("dr-failback").is_none());
}

/// Issue 11.7: the worker reaches every region API through the lab's Kubernetes port-forward
/// (its URLs name Services, `http://camunda-zeebe-gateway:9600`, which resolve nowhere else) and
/// reads rollouts, pods and release secrets through the lab's Kubernetes API: restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_through_kubernetes_port_forward_ends_restored() {
    let report = run(RehearseOptions { access: c8dr::config::Access::PortForward, ..options() }).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    assert!(report.mutations_repeated.is_empty(), "{:?}", report.mutations_repeated);
}

/// Issue 10.4: a target with four_eyes = false (a drill target) lets the initiator approve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_waived_lets_the_initiator_approve() {
    let opts =
        RehearseOptions { initiator: "alice".into(), approvers: vec!["alice".into()], four_eyes: false, ..options() };
    let report = run(opts).await;
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    assert!(report.phases.iter().all(|p| p.denials.is_empty()));
}

/// What an operator reads when the output goes to a file or a pipe (not a terminal): steps by
/// their BPMN names, no element ids, no ANSI escape codes, and the loop attempts grouped.
#[test]
fn rehearse_output_speaks_the_bpmns_words_and_has_no_ansi_codes_off_a_terminal() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_c8dr"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["rehearse", "--fast", "--speed", "100", "--timeout-secs", "240"])
        .env_remove("C8DR_CONFIG")
        .env("NO_COLOR", "")
        .output()
        .expect("c8dr rehearse runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Remove lost brokers from the Zeebe cluster"), "a step by its BPMN name: {text}");
    assert!(text.contains("Await broker removal"), "a verification loop by its BPMN name: {text}");
    for id in ["AwaitRemovalCheck", "Loop_AwaitRemoval", "element_completed", "service_task", "-0 s", "incident ()"] {
        assert!(!text.contains(id), "no internal name `{id}`: {text}");
    }
    assert!(!text.contains('\u{1b}'), "no ANSI escape codes off a terminal: {text}");
    assert!(text.contains("answered: Approve failover — approve"), "answers read as decisions: {text}");
}
