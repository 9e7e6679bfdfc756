//! End-to-end under injected faults: the real BPMN on the rehearsal engine, the real worker, the
//! lab answering 30 % of all region API requests with 500/503 (a fixed seed, so the same faults
//! every run). Transient failures must be retried with back-off (worker.transient_retry) instead
//! of spending the BPMN's few job retries in seconds and ending in an incident.
use c8dr::rehearsal::lab::{FaultConfig, LabDurations};
use c8dr::rehearsal::run::{RehearseOptions, rehearse};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_faults_end_restored_without_an_incident() {
    let opts = RehearseOptions {
        speed: 100.0,
        durations: LabDurations { broker_op_ms: 400, exporter_op_ms: 200, snapshot_ms: 4_000, restore_ms: 6_000 },
        faults: Some(FaultConfig { seed: 8, error_rate: 0.3, ..FaultConfig::default() }),
        bpmn_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn").into(),
        real_timeout: Duration::from_secs(300),
        progress: std::env::var_os("C8DR_TEST_PROGRESS").is_some(),
        ..RehearseOptions::default()
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
