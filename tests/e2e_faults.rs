//! End-to-end under injected faults: the real BPMN on the rehearsal engine, the real worker, the
//! lab answering 30 % of all region API requests with 500/503 (a fixed seed, so the same faults
//! every run). Transient failures must be retried with back-off (worker.transient_retry) instead
//! of spending the BPMN's few job retries in seconds and ending in an incident.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine)
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
use c8dr::rehearsal::lab::{Api, FaultConfig};
use c8dr::rehearsal::run::{RehearseOptions, rehearse};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_faults_end_restored_without_an_incident() {
    let opts = RehearseOptions {
        faults: Some(FaultConfig { seed: 8, error_rate: 0.3, ..FaultConfig::default() }),
        real_timeout: Duration::from_secs(300),
        ..rehearsal_support::options()
    };
    let report = rehearse(opts).await.expect("the rehearsal runs");
    if !report.restored() || !report.incidents.is_empty() {
        eprintln!("{}", report.render());
    }
    assert!(report.incidents.is_empty(), "incidents: {:?}", report.incidents);
    assert!(report.restored(), "not restored: {:?} / {:?}", report.final_problems, report.error);
    assert!(report.mutations_repeated.is_empty(), "{:?}", report.mutations_repeated);
    // the faults did hit the procedure: some step needed more than one attempt
    let retried = report.phases.iter().flat_map(|p| &p.steps).filter(|s| s.attempts > 1).count();
    assert!(retried > 0, "no step was retried: the faults did not reach the procedure");
}

/// A permanent answer (400 on every snapshot-repository call) is not retried into an incident: the
/// step throws TARGET_REJECTED, its catch-all "Step failed" asks a person (the rehearsal answers
/// abort), and the failback ends aborted, with the target's answer in the error shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_rejection_reaches_a_person_instead_of_an_incident() {
    let opts = RehearseOptions {
        faults: Some(FaultConfig {
            seed: 1,
            reject_rate: 1.0,
            apis: vec![Api::Elasticsearch],
            paths: vec!["/_snapshot".into()],
            ..FaultConfig::default()
        }),
        real_timeout: Duration::from_secs(300),
        ..rehearsal_support::options()
    };
    let report = rehearse(opts).await.expect("the rehearsal runs");
    if !report.incidents.is_empty() {
        eprintln!("{}", report.render());
    }
    assert!(report.incidents.is_empty(), "incidents: {:?}", report.incidents);
    let failback = report.phase("dr-failback").expect("failback phase");
    assert_eq!(failback.outcome, "completed", "the failback ends through its report, not an incident");
    assert_eq!(failback.procedure_outcome, "aborted", "{}", failback.report);
    let asked =
        failback.steps.iter().filter(|s| s.element_type == "USER_TASK" && s.element_id.starts_with("StepFailed"));
    assert_eq!(asked.count(), 1, "one step failed and a person was asked: {:?}", failback.steps);
    // c8dr's own report: the step was refused at its first attempt, not retried
    let steps = failback.report["steps"].as_array().expect("report steps");
    let refused: Vec<_> = steps.iter().filter(|s| s["outcome"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{}", failback.report);
    assert_eq!(refused[0]["attempts"], 1, "a permanent error is not retried: {}", refused[0]);
}
