//! End-to-end drill (real BPMN, rehearsal engine, real worker, lab): each phase of a drill
//! measures its own time. The failover and failback are called by the drill and inherit its
//! `startedAt` variable; their reports must not count the drill's earlier time as their own.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine)
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
use c8dr::rehearsal::run::{RehearseOptions, Scenario, rehearse};
use chrono::{DateTime, Utc};
use serde_json::Value;

fn time(v: &Value, pointer: &str) -> DateTime<Utc> {
    let s = v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} missing in {v}"));
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn secs(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("{pointer} missing in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_phases_measure_their_own_time_and_say_their_clock() {
    let opts = RehearseOptions { scenario: Scenario::Drill, ..rehearsal_support::options() };
    let report = rehearse(opts).await.expect("the rehearsal runs");
    assert!(report.restored(), "{}", report.render());
    let drill = &report.phase("dr-drill").expect("drill phase").report;
    assert_eq!(drill["clock"], "wall", "{drill}");
    for phase in ["/failoverReport", "/failbackReport"] {
        assert_eq!(drill.pointer(&format!("{phase}/clock")), Some(&Value::from("wall")), "{drill}");
    }
    // the failback starts after the failover ended: its start is its own, not the drill's
    let fo_done = time(drill, "/failoverReport/completedAt");
    let fb_start = time(drill, "/failbackReport/startedAt");
    let fb_done = time(drill, "/failbackReport/completedAt");
    assert!(fb_start >= fo_done, "failback started {fb_start} before the failover completed {fo_done}");
    let fb_window = (fb_done - fo_done).num_milliseconds() as f64 / 1000.0;
    let fb_duration = secs(drill, "/failbackReport/durationSeconds");
    assert!(fb_duration <= fb_window, "failback reports {fb_duration} s but ran within {fb_window} s");
    // the failover's own time fits between the drill's start and its end as well
    let drill_start = time(drill, "/startedAt");
    let fo_start = time(drill, "/failoverReport/startedAt");
    assert!(fo_start > drill_start, "the failover's start is the drill's: {fo_start}");
    // every figure in the rehearsal's JSON says its clock
    let json = serde_json::to_value(&report).unwrap();
    let phase = &json["phases"][0];
    for key in ["wallSeconds", "simulatedSeconds", "labWorkSimulatedSeconds", "timerWaitSimulatedSeconds"] {
        assert!(phase.get(key).is_some_and(Value::is_f64), "{key} missing: {phase}");
    }
}
