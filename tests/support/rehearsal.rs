//! The options the end-to-end rehearsal tests start from (test support; include it with
//! `#[path = "support/rehearsal.rs"] mod rehearsal_support;`): the real BPMN (bpmn/), a x100
//! clock, and lab durations that are fast but not instant, so every asynchronous change still
//! needs several checks. `C8DR_TEST_PROGRESS` set prints the rehearsal's progress.
#![allow(dead_code)] // each test file uses part of it
use c8dr::rehearsal::lab::LabDurations;
use c8dr::rehearsal::run::RehearseOptions;
use std::time::Duration;

/// Cluster changes 400 ms, exporter changes 200 ms, snapshot 4 s, restore 6 s, pod restart
/// 400 ms (simulated, on the x100 clock).
pub fn durations() -> LabDurations {
    LabDurations { broker_op_ms: 400, exporter_op_ms: 200, snapshot_ms: 4_000, restore_ms: 6_000, pod_restart_ms: 400 }
}

/// A failover then failback on the x100 clock, bounded by 240 s of wall time.
pub fn options() -> RehearseOptions {
    RehearseOptions {
        speed: 100.0,
        durations: durations(),
        bpmn_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn").into(),
        real_timeout: Duration::from_secs(240),
        progress: std::env::var_os("C8DR_TEST_PROGRESS").is_some(),
        ..RehearseOptions::default()
    }
}
