//! The installation's own work a rehearsal reports per phase (issue 13.1): the union of the
//! lab's busy intervals within the phase, pod rollouts included.
#![cfg(feature = "rehearsal")]
use c8dr::rehearsal::lab::LabDurations;
use c8dr::rehearsal::run::{RehearseOptions, rehearse};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_work_includes_the_pod_rollouts_and_never_exceeds_the_phase() {
    // pod starts dominate; every other piece of lab work is short
    let durations =
        LabDurations { broker_op_ms: 50, exporter_op_ms: 20, snapshot_ms: 500, restore_ms: 800, pod_restart_ms: 3_000 };
    let report = rehearse(RehearseOptions {
        speed: 100.0,
        durations,
        bpmn_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn").into(),
        real_timeout: Duration::from_secs(240),
        progress: std::env::var_os("C8DR_TEST_PROGRESS").is_some(),
        ..RehearseOptions::default()
    })
    .await
    .expect("the rehearsal runs");
    assert!(report.restored(), "not restored:\n{}", report.render());
    for phase in &report.phases {
        // the union is clipped to the phase: it can never be longer than the phase itself
        assert!(
            phase.lab_work_seconds > 0.0 && phase.lab_work_seconds <= phase.simulated_seconds + 1e-9,
            "{}: {} s of work in {} s",
            phase.process,
            phase.lab_work_seconds,
            phase.simulated_seconds
        );
    }
    let failback = report.phase("dr-failback").expect("failback phase");
    // Within the failback, nothing else runs while the recreated region's pods start (3 s,
    // together) and while the surviving region rolls its 4 pods one at a time to turn the
    // webapps off (12 s); the webapps-on rollouts add more. Without the rollouts, the lab's
    // work in this phase is about 5 s.
    assert!(
        failback.lab_work_seconds >= 15.0,
        "the failback's work must include the pod starts: {} s of work in {} s",
        failback.lab_work_seconds,
        failback.simulated_seconds
    );
}
