//! Issue 9.7: two worker replicas, each with its own journal, run the DR processes against the
//! rehearsal engine. For every mutating job type, the replica that runs it is killed in the
//! middle of the step (after its calls and recorded outcomes, before CompleteJob; and for some,
//! between recording the intent and the call) while the other keeps running: the job times out,
//! the other replica picks it up and decides from the call records on the process instance.
//! Every run must end restored with no mutation done twice.
#![cfg(feature = "rehearsal")] // needs the simulator (lab and engine)
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
use c8dr::rehearsal::report::RehearsalReport;
use c8dr::rehearsal::run::{KillPoint, RehearseOptions, Scenario, rehearse};
use std::time::Duration;

async fn two_replicas_one_killed(scenario: Scenario, job_type: &str, kill_point: KillPoint) -> RehearsalReport {
    let opts = RehearseOptions {
        scenario,
        kill_worker_at: Some(job_type.to_string()),
        kill_point,
        workers: 2,
        job_timeout: Duration::from_secs(2),
        ..rehearsal_support::options()
    };
    let report = rehearse(opts).await.expect("the rehearsal runs");
    let designed = designed_repeat(job_type, kill_point);
    let ended_restored = report.error.is_none()
        && report.final_problems.is_empty()
        && report.phases.iter().all(|p| p.outcome == "completed");
    if !ended_restored || report.mutations_repeated != designed {
        eprintln!("{}", report.render());
    }
    assert_eq!(report.workers_killed, 1, "{job_type}: one replica was killed");
    assert_eq!(report.worker_restarts, 0, "{job_type}: the other replica took over, none was restarted");
    assert_eq!(report.mutations_repeated, designed, "{job_type}: repeated mutations");
    assert!(ended_restored, "{job_type}: not restored: {:?} {:?}", report.final_problems, report.error);
    for phase in &report.phases {
        started_before_every_call(job_type, &phase.report);
    }
    report
}

/// The one repetition a step makes by design when it died between a call and the record of the
/// call's outcome, because the target cannot tell whether the call took effect (docs/jobs.md,
/// "Call records"): pause and resume have no status endpoint and are issued again (harmless on
/// 8.8). Every other step observes the target (the canary deployment: the definition search)
/// and makes no call twice.
fn designed_repeat(job_type: &str, kill_point: KillPoint) -> Vec<String> {
    let repeated = |call: &str| vec![format!("region 0 {call} (2 times)")];
    match (kill_point, job_type) {
        (KillPoint::AfterCall, "c8dr.pause-exporting") => repeated("management POST /actuator/exporting/pause"),
        (KillPoint::AfterCall, "c8dr.resume-exporting") => repeated("management POST /actuator/exporting/resume"),
        _ => vec![],
    }
}

/// The `c8dr.report` of a phase counts from the instance's own start, whichever replica ran which
/// step: its `startedAt` is not later than any call either replica recorded (before, it was the
/// first line of the reporting replica's journal, which may have missed the first steps).
fn started_before_every_call(job_type: &str, report: &serde_json::Value) {
    let time = |v: &serde_json::Value| {
        v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).unwrap_or_else(|| panic!("{v}"))
    };
    let started = time(&report["startedAt"]);
    for call in report["callRecords"].as_array().into_iter().flatten() {
        assert!(
            started <= time(&call["intentAt"]),
            "{job_type}: the report starts at {started} after a call recorded at {}: {report}",
            call["intentAt"]
        );
    }
}

macro_rules! replica_tests {
    ($($name:ident => ($scenario:ident, $job:literal, $point:ident)),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let report = two_replicas_one_killed(Scenario::$scenario, $job, KillPoint::$point).await;
                if matches!(Scenario::$scenario, Scenario::Drill) {
                    // canaries are instances on the target: the other replica must not create them again
                    let created = report.lab_state.pointer("/processInstances").and_then(serde_json::Value::as_u64);
                    assert_eq!(created, Some(6), "{}: canary instances created", $job);
                }
            }
        )*

        /// Every job type that mutates is killed after it acted, in one of the scenarios.
        #[test]
        fn every_mutating_job_type_is_covered() {
            let after_act: Vec<&str> =
                [$(($job, stringify!($point))),*].into_iter().filter(|(_, p)| *p == "AfterAct").map(|(j, _)| j).collect();
            // c8dr.restart-stuck-brokers only runs when brokers are stuck, which the lab does not
            // simulate: procedure::tests::an_announced_restart_is_made_only_when_the_pod_is_still_the_one_seen
            for job_type in MUTATING {
                assert!(after_act.contains(job_type), "no replica kill test for {job_type}");
            }
        }
    };
}

/// Job types whose step can make a mutating call in the rehearsed scenarios.
const MUTATING: &[&str] = &[
    "c8dr.remove-brokers",
    "c8dr.disable-exporters",
    "c8dr.verify-exporters",
    "c8dr.verify-profiles",
    "c8dr.helm",
    "c8dr.pause-exporting",
    "c8dr.resume-exporting",
    "c8dr.register-snapshot-repo",
    "c8dr.create-snapshot",
    "c8dr.restore-snapshot",
    "c8dr.await-restore",
    "c8dr.enable-exporter",
    "c8dr.add-brokers",
    "c8dr.drill-canaries",
    "c8dr.drill-region",
];

replica_tests! {
    replicas_kill_at_remove_brokers => (FailoverFailback, "c8dr.remove-brokers", AfterAct),
    replicas_kill_at_disable_exporters => (FailoverFailback, "c8dr.disable-exporters", AfterAct),
    replicas_kill_at_verify_exporters => (FailoverFailback, "c8dr.verify-exporters", AfterAct),
    replicas_kill_at_verify_profiles => (FailoverFailback, "c8dr.verify-profiles", AfterAct),
    replicas_kill_at_helm => (FailoverFailback, "c8dr.helm", AfterAct),
    replicas_kill_at_pause_exporting => (FailoverFailback, "c8dr.pause-exporting", AfterAct),
    replicas_kill_at_resume_exporting => (FailoverFailback, "c8dr.resume-exporting", AfterAct),
    replicas_kill_at_register_snapshot_repo => (FailoverFailback, "c8dr.register-snapshot-repo", AfterAct),
    replicas_kill_at_create_snapshot => (FailoverFailback, "c8dr.create-snapshot", AfterAct),
    replicas_kill_at_restore_snapshot => (FailoverFailback, "c8dr.restore-snapshot", AfterAct),
    replicas_kill_at_await_restore => (FailoverFailback, "c8dr.await-restore", AfterAct),
    replicas_kill_at_enable_exporter => (FailoverFailback, "c8dr.enable-exporter", AfterAct),
    replicas_kill_at_add_brokers => (FailoverFailback, "c8dr.add-brokers", AfterAct),
    replicas_kill_at_drill_canaries => (Drill, "c8dr.drill-canaries", AfterAct),
    replicas_kill_at_drill_region => (Drill, "c8dr.drill-region", AfterAct),
    // between the recorded intent and the call (every job type that surely calls in the scenario)
    replicas_kill_after_intent_at_remove_brokers => (FailoverFailback, "c8dr.remove-brokers", AfterIntent),
    replicas_kill_after_intent_at_disable_exporters => (FailoverFailback, "c8dr.disable-exporters", AfterIntent),
    replicas_kill_after_intent_at_helm => (FailoverFailback, "c8dr.helm", AfterIntent),
    replicas_kill_after_intent_at_pause_exporting => (FailoverFailback, "c8dr.pause-exporting", AfterIntent),
    replicas_kill_after_intent_at_resume_exporting => (FailoverFailback, "c8dr.resume-exporting", AfterIntent),
    replicas_kill_after_intent_at_register_snapshot_repo => (FailoverFailback, "c8dr.register-snapshot-repo", AfterIntent),
    replicas_kill_after_intent_at_create_snapshot => (FailoverFailback, "c8dr.create-snapshot", AfterIntent),
    replicas_kill_after_intent_at_restore_snapshot => (FailoverFailback, "c8dr.restore-snapshot", AfterIntent),
    replicas_kill_after_intent_at_await_restore => (FailoverFailback, "c8dr.await-restore", AfterIntent),
    replicas_kill_after_intent_at_enable_exporter => (FailoverFailback, "c8dr.enable-exporter", AfterIntent),
    replicas_kill_after_intent_at_add_brokers => (FailoverFailback, "c8dr.add-brokers", AfterIntent),
    replicas_kill_after_intent_at_drill_canaries => (Drill, "c8dr.drill-canaries", AfterIntent),
    replicas_kill_after_intent_at_drill_region => (Drill, "c8dr.drill-region", AfterIntent),
    // between the call and the record of its outcome: an intent without outcome for a call made
    replicas_kill_after_call_at_remove_brokers => (FailoverFailback, "c8dr.remove-brokers", AfterCall),
    replicas_kill_after_call_at_disable_exporters => (FailoverFailback, "c8dr.disable-exporters", AfterCall),
    replicas_kill_after_call_at_helm => (FailoverFailback, "c8dr.helm", AfterCall),
    replicas_kill_after_call_at_pause_exporting => (FailoverFailback, "c8dr.pause-exporting", AfterCall),
    replicas_kill_after_call_at_resume_exporting => (FailoverFailback, "c8dr.resume-exporting", AfterCall),
    replicas_kill_after_call_at_register_snapshot_repo => (FailoverFailback, "c8dr.register-snapshot-repo", AfterCall),
    replicas_kill_after_call_at_create_snapshot => (FailoverFailback, "c8dr.create-snapshot", AfterCall),
    replicas_kill_after_call_at_restore_snapshot => (FailoverFailback, "c8dr.restore-snapshot", AfterCall),
    replicas_kill_after_call_at_await_restore => (FailoverFailback, "c8dr.await-restore", AfterCall),
    replicas_kill_after_call_at_enable_exporter => (FailoverFailback, "c8dr.enable-exporter", AfterCall),
    replicas_kill_after_call_at_add_brokers => (FailoverFailback, "c8dr.add-brokers", AfterCall),
    replicas_kill_after_call_at_drill_canaries => (Drill, "c8dr.drill-canaries", AfterCall),
    replicas_kill_after_call_at_drill_region => (Drill, "c8dr.drill-region", AfterCall),
}
