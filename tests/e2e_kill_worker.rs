//! End-to-end: the worker is killed right after a step acted and before it completed the job, at
//! every job type in turn. Every run must end restored with no mutation done twice.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
use c8dr::rehearsal::run::{RehearseOptions, Scenario, rehearse};
use std::time::Duration;

async fn killed_at(job_type: &str) {
    killed_in(Scenario::FailoverFailback, job_type).await;
}

async fn killed_in(scenario: Scenario, job_type: &str) -> c8dr::rehearsal::report::RehearsalReport {
    let opts = RehearseOptions {
        scenario,
        kill_worker_at: Some(job_type.to_string()),
        job_timeout: Duration::from_secs(2),
        ..rehearsal_support::options()
    };
    let report = rehearse(opts).await.expect("the rehearsal runs");
    if !report.restored() {
        eprintln!("{}", report.render());
    }
    assert_eq!(report.worker_restarts, 1, "{job_type}: the worker was killed once");
    assert!(report.mutations_repeated.is_empty(), "{job_type}: repeated {:?}", report.mutations_repeated);
    assert!(report.restored(), "{job_type}: not restored: {:?} {:?}", report.final_problems, report.error);
    report
}

macro_rules! drill_kill_tests {
    ($($name:ident => $job:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let report = killed_in(Scenario::Drill, $job).await;
                // canaries are instances on the target: a re-run must not create them again
                let created = report.lab_state.pointer("/processInstances").and_then(serde_json::Value::as_u64);
                assert_eq!(created, Some(6), "{}: canary instances created", $job);
            }
        )*
    };
}

drill_kill_tests! {
    drill_kill_at_drill_guard => "c8dr.drill-guard",
    drill_kill_at_drill_canaries => "c8dr.drill-canaries",
    drill_kill_at_drill_region => "c8dr.drill-region",
}

macro_rules! kill_tests {
    ($($name:ident => $job:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                killed_at($job).await;
            }
        )*

        /// Every job type the failover and failback processes use is covered above.
        #[test]
        fn every_failover_and_failback_job_type_is_covered() {
            let covered = [$($job),*];
            // drill job types are covered by drill_kill_tests; c8dr.notify only runs on reminders
            // c8dr.restart-stuck-brokers only runs when brokers are stuck, which the lab does not
            // simulate: its crash-retry is procedure::tests::the_instance_record_prevents_a_second_restart_of_a_pod_after_a_crash
            let drill_only = [
                "c8dr.drill-guard",
                "c8dr.drill-canaries",
                "c8dr.drill-region",
                "c8dr.notify",
                "c8dr.restart-stuck-brokers",
            ];
            for job_type in c8dr::jobs::JOB_TYPES {
                if drill_only.contains(job_type) {
                    continue;
                }
                assert!(covered.contains(job_type), "no kill test for {job_type}");
            }
        }
    };
}

kill_tests! {
    kill_at_validate_input => "c8dr.validate-input",
    kill_at_assess_failover => "c8dr.assess-failover",
    kill_at_remove_brokers => "c8dr.remove-brokers",
    kill_at_await_change => "c8dr.await-change",
    kill_at_verify_topology => "c8dr.verify-topology",
    kill_at_disable_exporters => "c8dr.disable-exporters",
    kill_at_verify_exporters => "c8dr.verify-exporters",
    kill_at_preflight_recreated => "c8dr.preflight-recreated",
    kill_at_helm => "c8dr.helm",
    kill_at_verify_profiles => "c8dr.verify-profiles",
    kill_at_await_brokers_visible => "c8dr.await-brokers-visible",
    kill_at_pause_exporting => "c8dr.pause-exporting",
    kill_at_resume_exporting => "c8dr.resume-exporting",
    kill_at_register_snapshot_repo => "c8dr.register-snapshot-repo",
    kill_at_create_snapshot => "c8dr.create-snapshot",
    kill_at_await_snapshot => "c8dr.await-snapshot",
    kill_at_restore_snapshot => "c8dr.restore-snapshot",
    kill_at_await_restore => "c8dr.await-restore",
    kill_at_enable_exporter => "c8dr.enable-exporter",
    kill_at_add_brokers => "c8dr.add-brokers",
    kill_at_report => "c8dr.report",
    kill_at_approval_guard => "c8dr.approval-guard",
}
