//! The DR steps against the lab, through `jobs::handle` with the real target clients: failover
//! then failback in the seed order (a drill's lose/recreate included), every mutating step run
//! twice (a crash between act and complete) mutating once, and the end state is the restored
//! dual-region installation. Plus bad input, unknown targets and injected faults.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::config::{Config, TargetConfig};
use c8dr::jobs::{self, StepContext};
use c8dr::procedure::record::MemoryRecorder;
use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::lab::{FaultConfig, Lab, LabDurations, LabHandle, LabOptions};
use c8dr::zeebe::{Job, JobOutcome};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIK: i64 = 2251799813685300;
/// Attempts of a check before `until_verified` gives up (20 ms of simulated time each on a
/// manual clock: the slowest fast-lab operation, the restore, takes 250 ms).
const MAX_CHECKS: usize = 1_000;

struct T {
    lab: LabHandle,
    ctx: StepContext,
    /// The process instance's call records, merged into every job as the engine would.
    rec: Arc<MemoryRecorder>,
    /// The lab runs on a manual clock: simulated time moves only when `until_verified` moves it.
    manual: bool,
    _dir: tempfile::TempDir,
}

async fn setup(options: LabOptions) -> T {
    let lab = Lab::start(options).await.expect("lab starts");
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.journal.path = dir.path().join("journal.jsonl");
    config.worker.fail_retry_backoff_ms = 10;
    // these tests drive each check one observation at a time (the watch is tested in procedure)
    config.worker.check_watch_ms = 0;
    let mut target: TargetConfig = lab.target_config();
    for r in &mut target.regions {
        r.timeout_ms = 2_000;
    }
    config.targets.insert("lab".into(), target);
    let ctx =
        StepContext::new(Arc::new(config)).with_platforms(c8dr::rehearsal::lab_platform::factory(lab.control_url()));
    let rec = Arc::new(MemoryRecorder::default());
    let ctx = ctx.with_recorder(rec.clone());
    T { lab, ctx, rec, manual: false, _dir: dir }
}

async fn fast_lab() -> T {
    setup(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await
}

/// The whole procedure on a lab whose time stands still between two calls of a step (issue
/// 13.4): on the real clock, a lab change of a few milliseconds could finish between the two
/// runs of `act_once` on a loaded machine, and the re-run then saw another state (the
/// enable-exporter re-run enabled the legacy exporter instead of finding its change pending).
async fn manual_lab(options: LabOptions) -> T {
    let t = setup(LabOptions { clock: Clock::manual(), durations: LabDurations::fast(), ..options }).await;
    T { manual: true, ..t }
}

fn job(step: &str, vars: &Value, headers: &[(&str, &str)]) -> Job {
    let mut variables: Map<String, Value> = vars.as_object().cloned().unwrap_or_default();
    variables.entry("target").or_insert(json!("lab"));
    Job {
        key: 1,
        job_type: format!("c8dr.{step}"),
        process_instance_key: PIK,
        bpmn_process_id: "dr-test".into(),
        process_definition_key: 1,
        element_id: step.into(),
        element_instance_key: 1,
        custom_headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        variables,
        retries: 3,
        deadline: 0,
        worker: "steps-test".into(),
        tenant_id: "<default>".into(),
    }
}

impl T {
    async fn run(&self, step: &str, vars: &Value, headers: &[(&str, &str)]) -> JobOutcome {
        let mut job = job(step, vars, headers);
        for (k, v) in self.rec.variables() {
            job.variables.entry(k).or_insert(v);
        }
        jobs::handle(&self.ctx, job).await
    }

    fn mutations(&self) -> usize {
        self.lab.record().len()
    }

    async fn complete(&self, step: &str, vars: &Value, headers: &[(&str, &str)]) -> Map<String, Value> {
        match self.run(step, vars, headers).await {
            JobOutcome::Complete(v) => v,
            other => panic!("{step}: expected completion, got {other:?}"),
        }
    }

    /// Runs a mutating step twice: the first acts, the second finds it done and mutates nothing.
    async fn act_once(&self, step: &str, vars: &Value, headers: &[(&str, &str)]) -> Map<String, Value> {
        let before = self.mutations();
        let first = self.complete(step, vars, headers).await;
        assert_eq!(first["alreadyDone"], json!(false), "{step}: {first:?}");
        let after = self.mutations();
        assert!(after > before, "{step} made no mutating call");
        let second = self.complete(step, vars, headers).await;
        assert_eq!(second["alreadyDone"], json!(true), "{step} re-run: {second:?}");
        assert_eq!(self.mutations(), after, "{step} re-run mutated again");
        first
    }

    /// Polls a check step (steps never sleep; the test does) until `verified`. On a manual
    /// clock each attempt moves the lab's time 20 ms (simulated) forward instead of sleeping.
    async fn until_verified(&self, step: &str, vars: &Value, headers: &[(&str, &str)]) -> Map<String, Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        for _ in 0..MAX_CHECKS {
            match self.run(step, vars, headers).await {
                JobOutcome::Complete(v) if v["verified"] == json!(true) => return v,
                JobOutcome::Complete(_) | JobOutcome::Fail { .. } => {}
                other => panic!("{step}: {other:?}"),
            }
            if self.manual {
                self.lab.clock().advance(Duration::from_millis(20));
            } else {
                assert!(Instant::now() < deadline, "{step} never verified");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("{step} never verified in {MAX_CHECKS} checks");
    }
}

fn code(o: &JobOutcome) -> &str {
    match o {
        JobOutcome::BpmnError { code, .. } => code,
        JobOutcome::Fail { .. } => "FAIL",
        JobOutcome::Complete(_) => "COMPLETE",
        JobOutcome::CompleteListener { .. } => "LISTENER",
    }
}

#[tokio::test]
async fn all_steps_failover_then_failback_restore_the_dual_region_state() {
    all_steps(&manual_lab(LabOptions::default()).await, Rerun::AtOnce).await;
}

/// Camunda before 8.8.25 (#52260): the helm upgrade of the surviving region re-enables the
/// disabled exporter; verify-profiles disables it again and the enable uses initializeFrom.
#[tokio::test]
async fn all_steps_with_exporters_re_enabled_by_restarts() {
    let t = manual_lab(LabOptions { exporter_flip_on_restart: true, ..Default::default() }).await;
    let lab_record = all_steps(&t, Rerun::AtOnce).await;
    let enables: Vec<_> = lab_record
        .iter()
        .filter(|r| r.path.contains("/actuator/exporters/camundaregion1/") && (200..300).contains(&r.status))
        .map(|r| r.path.rsplit('/').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(enables, ["disable", "disable", "enable"], "failover disable, re-disable after the restart, enable");
}

/// Issue 12.3: an 8.7-migrated installation with Optimize. The failback enables
/// `elasticsearchregion1` with `initializeFrom: elasticsearchregion0` after the main exporter,
/// before exporting resumes, and the end state has both legacy exporters enabled.
#[tokio::test]
async fn all_steps_with_legacy_exporters_enable_the_legacy_pair() {
    legacy_pair_enabled_once(Rerun::AtOnce).await;
}

/// Issue 13.4, the ordering that made the test above flaky on a loaded machine: the
/// enable-exporter job is retried (a crash between act and complete) after its change finished.
/// The retry does not enable the main exporter again; it enables the next of the pairs, the
/// legacy exporter (with initializeFrom), once.
#[tokio::test]
async fn enable_exporter_retried_after_its_change_finished_enables_the_legacy_exporter_once() {
    legacy_pair_enabled_once(Rerun::AfterTheChange).await;
}

async fn legacy_pair_enabled_once(rerun: Rerun) {
    let t = manual_lab(LabOptions { legacy_exporters: true, ..Default::default() }).await;
    let record = all_steps(&t, rerun).await;
    let ok = |r: &&c8dr::rehearsal::lab::RecordEntry| (200..300).contains(&r.status);
    let legacy: Vec<_> = record
        .iter()
        .filter(ok)
        .filter(|r| r.path.starts_with("/actuator/exporters/elasticsearchregion1/"))
        .map(|r| r.path.rsplit('/').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(legacy, ["disable", "enable"], "failover disables it, failback enables it once");
    let resume = record.iter().filter(ok).position(|r| r.path == "/actuator/exporting/resume").unwrap();
    let enable_at =
        record.iter().filter(ok).position(|r| r.path == "/actuator/exporters/elasticsearchregion1/enable").unwrap();
    assert!(enable_at < resume, "the legacy pair is enabled before exporting resumes");
    let journal = std::fs::read_to_string(t._dir.path().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("POST /actuator/exporters/elasticsearchregion1/enable initializeFrom=elasticsearchregion0"),
        "initializeFrom the surviving legacy exporter"
    );
}

/// When `all_steps` re-runs the enable-exporter job.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rerun {
    /// At once, while its change is pending (`act_once`).
    AtOnce,
    /// After its change finished (legacy exporters configured).
    AfterTheChange,
}

async fn all_steps(t: &T, rerun: Rerun) -> Vec<c8dr::rehearsal::lab::RecordEntry> {
    let input =
        t.complete("validate-input", &json!({"lostRegion": 1, "autoApprove": true}), &[("process", "drill")]).await;
    assert_eq!(input["survivingRegion"], json!(0));
    let fo = json!({"lostRegion": 1, "survivingRegion": 0, "canaryCount": 3});
    t.complete("drill-guard", &fo, &[]).await;
    let canaries = t.act_once("drill-canaries", &fo, &[("action", "create")]).await;
    let keys = canaries["canaryKeys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 3);
    let check = json!({"lostRegion": 1, "survivingRegion": 0, "canaryKeys": keys});
    t.until_verified("drill-canaries", &check, &[("action", "check"), ("region", "both")]).await;

    // the region dies (through the drill step and the lab's control API)
    let lost = t.complete("drill-region", &fo, &[("action", "lose")]).await;
    let again = t.complete("drill-region", &fo, &[("action", "lose")]).await;
    assert_eq!(lost["regionLostAt"], again["regionLostAt"]);
    assert!(t.lab.state().regions[1].lost);

    // ---- failover
    let plan = t.complete("assess-failover", &fo, &[]).await;
    assert_eq!(plan["plan"]["brokersToRemove"], json!([1, 3, 5, 7]), "{plan:?}");
    assert!(plan["plan"]["plannedOperations"].as_u64().unwrap() > 0);
    let removed = t.act_once("remove-brokers", &fo, &[]).await;
    let cv = json!({"lostRegion": 1, "survivingRegion": 0, "changeId": removed["changeId"]});
    t.until_verified("await-change", &cv, &[]).await;
    t.until_verified("verify-topology", &fo, &[("expect", "degraded")]).await;
    loop {
        let d = t.complete("disable-exporters", &fo, &[]).await;
        if d["changeId"].is_null() {
            break;
        }
        let cv = json!({"lostRegion": 1, "survivingRegion": 0, "changeId": d["changeId"]});
        t.until_verified("await-change", &cv, &[]).await;
    }
    t.until_verified("verify-exporters", &fo, &[("expect", "failover")]).await;
    let fo_report = t.complete("report", &json!({"startedAt": input["startedAt"]}), &[("process", "failover")]).await;

    // ---- failback
    let rec = t.complete("drill-region", &fo, &[("action", "recreate")]).await;
    assert_eq!(rec["alreadyDone"], json!(false));
    let rec2 = t.complete("drill-region", &fo, &[("action", "recreate")]).await;
    assert_eq!(
        (rec2["alreadyDone"].clone(), rec2["regionRecreatedAt"].clone()),
        (json!(true), rec["regionRecreatedAt"].clone())
    );
    let fb = json!({"recreatedRegion": 1, "survivingRegion": 0, "snapshotName": format!("c8dr-failback-{PIK}")});
    let pre = t.complete("preflight-recreated", &fb, &[]).await;
    assert_eq!(pre["preflight"]["releasePresent"], json!(false), "{pre:?}");
    let m = t.mutations();
    t.complete("helm", &fb, &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    let again = t.complete("helm", &fb, &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    assert_eq!(again["alreadyDone"], json!(true));
    assert_eq!(t.mutations(), m, "helm is not a region API call");
    t.until_verified("await-brokers-visible", &fb, &[]).await;
    t.complete("helm", &fb, &[("action", "disable-webapps"), ("region", "surviving")]).await;
    t.until_verified("verify-profiles", &fb, &[("region", "both"), ("expect", "webapps-off")]).await;
    t.act_once("pause-exporting", &fb, &[]).await;
    t.act_once("register-snapshot-repo", &fb, &[("region", "surviving")]).await;
    t.act_once("create-snapshot", &fb, &[]).await;
    t.until_verified("await-snapshot", &fb, &[]).await;
    t.act_once("register-snapshot-repo", &fb, &[("region", "recreated")]).await;
    t.act_once("restore-snapshot", &fb, &[]).await;
    t.until_verified("await-restore", &fb, &[]).await;
    let enabled = match rerun {
        Rerun::AtOnce => t.act_once("enable-exporter", &fb, &[]).await,
        Rerun::AfterTheChange => {
            let first = t.complete("enable-exporter", &fb, &[]).await;
            assert_eq!(first["alreadyDone"], json!(false), "{first:?}");
            let cv = json!({"recreatedRegion": 1, "survivingRegion": 0, "changeId": first["changeId"]});
            t.until_verified("await-change", &cv, &[]).await;
            let m = t.mutations();
            let retry = t.complete("enable-exporter", &fb, &[]).await;
            assert_eq!(
                (retry["alreadyDone"].clone(), retry["exporterEnabled"].clone()),
                (json!(false), json!("elasticsearchregion1")),
                "the retry enables the legacy exporter, not the main one again: {retry:?}"
            );
            assert_eq!(t.mutations(), m + 1, "one enable");
            let again = t.complete("enable-exporter", &fb, &[]).await;
            assert_eq!(again["alreadyDone"], json!(true), "{again:?}");
            assert_eq!(t.mutations(), m + 1, "the third run mutates nothing");
            retry
        }
    };
    let cv = json!({"recreatedRegion": 1, "survivingRegion": 0, "changeId": enabled["changeId"]});
    t.until_verified("await-change", &cv, &[]).await;
    // the BPMN verifies the exporters before it resumes exporting (and this check enables the
    // legacy exporter of an Optimize installation)
    t.until_verified("verify-exporters", &fb, &[("expect", "full")]).await;
    t.act_once("resume-exporting", &fb, &[]).await;
    let added = t.act_once("add-brokers", &fb, &[]).await;
    let cv = json!({"recreatedRegion": 1, "survivingRegion": 0, "changeId": added["changeId"]});
    t.until_verified("await-change", &cv, &[]).await;
    t.until_verified("verify-topology", &fb, &[("expect", "full")]).await;
    t.complete("helm", &fb, &[("action", "enable-webapps"), ("region", "both")]).await;
    t.until_verified("verify-profiles", &fb, &[("region", "both"), ("expect", "webapps-on")]).await;
    t.until_verified("verify-exporters", &fb, &[("expect", "full")]).await;
    t.until_verified("drill-canaries", &check, &[("action", "check"), ("region", "both")]).await;
    let fb_report = t.complete("report", &json!({"startedAt": input["startedAt"]}), &[("process", "failback")]).await;
    let drill = json!({"regionLostAt": lost["regionLostAt"], "failoverReport": fo_report["report"], "failbackReport": fb_report["report"]});
    let report = t.complete("report", &drill, &[("process", "drill")]).await;
    assert!(report["report"]["recoveryTimeSeconds"].as_f64().unwrap() >= 0.0, "{report:?}");
    assert!(fb_report["report"]["steps"].as_array().unwrap().len() > 20);

    // the restored dual-region installation
    let state = t.lab.state();
    assert_eq!(state.cluster.brokers.iter().filter(|b| !b.partitions.is_empty()).count(), 8);
    assert!(state.cluster.partitions.iter().all(|p| p.replicas.len() == 4 && p.leader.is_some() && p.healthy));
    assert!(state.exporters.iter().all(|e| e.status == "ENABLED"), "{:?}", state.exporters);
    assert!(!state.exporting_paused);
    if let Err(problems) = state.is_restored_dual_region() {
        panic!("not restored: {problems:?}");
    }
    t.lab.record()
}

#[tokio::test]
async fn bad_input_and_unknown_targets_never_touch_the_target() {
    let t = fast_lab().await;
    t.lab.lose_region(1).await.unwrap();
    for bad in [json!({"lostRegion": 2}), json!({"lostRegion": -1}), json!({"lostRegion": "one"}), json!({})] {
        for step in ["assess-failover", "remove-brokers", "disable-exporters"] {
            match t.run(step, &bad, &[]).await {
                JobOutcome::BpmnError { code, variables, .. } => {
                    assert_eq!(code, "INVALID_INPUT");
                    assert_eq!(variables["lastError"]["field"], json!("lostRegion"));
                    assert_eq!(variables["lastError"]["step"], json!(step));
                }
                other => panic!("{step} {bad}: {other:?}"),
            }
        }
    }
    match t.run("remove-brokers", &json!({"target": "prod-eu", "lostRegion": 1}), &[]).await {
        JobOutcome::BpmnError { code, message, .. } => {
            assert_eq!(code, "INVALID_INPUT");
            assert!(message.contains("lab"), "lists the known targets: {message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.mutations(), 0);
    let journal = std::fs::read_to_string(t._dir.path().join("journal.jsonl")).unwrap();
    assert!(journal.lines().any(|l| l.contains("\"prod-eu\"") && l.contains("INVALID_INPUT")), "{journal}");
    assert!(!journal.lines().any(|l| l.contains("\"kind\":\"call\"")), "no mutating call journaled");
    assert!(jobs::job_types().contains(&"c8dr.report") && jobs::job_types().contains(&"c8dr.notify"));
}

#[tokio::test]
async fn preconditions_give_their_bpmn_errors() {
    let t = fast_lab().await;
    let fo = json!({"lostRegion": 1, "survivingRegion": 0});
    // region 1 still alive: removing its brokers risks split brain
    assert_eq!(code(&t.run("remove-brokers", &fo, &[]).await), "SPLIT_BRAIN_RISK");
    // failback before the failover
    let fb = json!({"recreatedRegion": 1, "survivingRegion": 0, "snapshotName": "c8dr-failback-1"});
    assert_eq!(code(&t.run("preflight-recreated", &fb, &[]).await), "PRECONDITION_FAILED");
    assert_eq!(code(&t.run("create-snapshot", &fb, &[]).await), "REPOSITORY_MISSING");
    assert_eq!(code(&t.run("register-snapshot-repo", &fb, &[("region", "recreated")]).await), "SNAPSHOT_MISSING");
    assert_eq!(t.mutations(), 0);
    // a change of ours pending: a second removal run adopts it (no second force request)
    t.lab.lose_region(1).await.unwrap();
    let first = t.complete("remove-brokers", &fo, &[]).await;
    let m = t.mutations();
    let second = t.complete("remove-brokers", &fo, &[]).await;
    assert_eq!(first["changeId"], second["changeId"]);
    assert_eq!(t.mutations(), m);
    // and an exporter change while ours is pending is refused as concurrent
    assert_eq!(code(&t.run("disable-exporters", &fo, &[]).await), "CONCURRENT_CHANGE");
}

#[tokio::test]
async fn injected_faults_fail_the_job_for_a_retry() {
    let t = fast_lab().await;
    t.lab.set_faults(Some(FaultConfig { seed: 7, error_rate: 1.0, ..Default::default() }));
    let fo = json!({"lostRegion": 1, "survivingRegion": 0});
    match t.run("verify-topology", &fo, &[("expect", "degraded")]).await {
        JobOutcome::Fail { retry_backoff, retries, .. } => {
            // transient: the job's retries are kept and the back-off is the first of
            // worker.transient_retry (not fail_retry_backoff_ms, used once the window is spent)
            let first = c8dr::config::TransientRetryConfig::default().initial_backoff_ms;
            assert_eq!((retry_backoff, retries), (Some(Duration::from_millis(first)), Some(3)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(code(&t.run("pause-exporting", &fo, &[]).await), "FAIL");
    t.lab.set_faults(Some(FaultConfig { seed: 7, malformed_rate: 1.0, ..Default::default() }));
    assert_eq!(code(&t.run("await-change", &json!({"survivingRegion": 0, "changeId": 1}), &[]).await), "FAIL");
    t.lab.set_faults(None);
    // the failed pause was not journaled as done: the next attempt pauses
    let p = t.complete("pause-exporting", &fo, &[]).await;
    assert_eq!(p["alreadyDone"], json!(false));
}

/// Failover of region 1 through the steps (region lost by the lab's API).
async fn failover(t: &T) {
    t.lab.lose_region(1).await.unwrap();
    let fo = json!({"lostRegion": 1, "survivingRegion": 0});
    let removed = t.complete("remove-brokers", &fo, &[]).await;
    let cv = json!({"survivingRegion": 0, "changeId": removed["changeId"]});
    t.until_verified("await-change", &cv, &[]).await;
    let mut rounds = 0;
    loop {
        let d = t.complete("disable-exporters", &fo, &[]).await;
        if d["changeId"].is_null() {
            break;
        }
        rounds += 1;
        let cv = json!({"survivingRegion": 0, "changeId": d["changeId"]});
        t.until_verified("await-change", &cv, &[]).await;
    }
    assert!(rounds >= 1);
    t.until_verified("verify-exporters", &fo, &[("expect", "failover")]).await;
}

#[tokio::test]
async fn legacy_exporters_are_disabled_one_per_call() {
    let t = setup(LabOptions { durations: LabDurations::fast(), legacy_exporters: true, ..Default::default() }).await;
    t.lab.lose_region(1).await.unwrap();
    let fo = json!({"lostRegion": 1, "survivingRegion": 0});
    let removed = t.complete("remove-brokers", &fo, &[]).await;
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": removed["changeId"]}), &[]).await;
    let first = t.complete("disable-exporters", &fo, &[]).await;
    assert_eq!(first["exportersDone"], json!(false), "{first:?}");
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": first["changeId"]}), &[]).await;
    let second = t.complete("disable-exporters", &fo, &[]).await;
    assert_eq!(second["exportersDone"], json!(true), "{second:?}");
    assert_ne!(first["changeId"], second["changeId"]);
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": second["changeId"]}), &[]).await;
    let done = t.complete("disable-exporters", &fo, &[]).await;
    assert_eq!((done["changeId"].clone(), done["alreadyDone"].clone()), (Value::Null, json!(true)));
    let v = t.until_verified("verify-exporters", &fo, &[("expect", "failover")]).await;
    assert_eq!(v["exporters"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_stuck_change_stays_in_progress_and_shows_what_it_waits_for() {
    let t = setup(LabOptions { durations: LabDurations::fast(), stuck_adds: true, ..Default::default() }).await;
    failover(&t).await;
    let fb = json!({"recreatedRegion": 1, "survivingRegion": 0, "snapshotName": format!("c8dr-failback-{PIK}")});
    t.lab.recreate_region(1).await.unwrap();
    t.complete("helm", &fb, &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    t.until_verified("await-brokers-visible", &fb, &[]).await;
    // the exporter of the recreated region is still disabled: adding brokers is refused
    let m = t.mutations();
    assert_eq!(code(&t.run("add-brokers", &fb, &[]).await), "PRECONDITION_FAILED");
    assert_eq!(t.mutations(), m);
    t.complete("register-snapshot-repo", &fb, &[("region", "surviving")]).await;
    t.complete("create-snapshot", &fb, &[]).await;
    t.until_verified("await-snapshot", &fb, &[]).await;
    t.complete("register-snapshot-repo", &fb, &[("region", "recreated")]).await;
    t.complete("restore-snapshot", &fb, &[]).await;
    t.until_verified("await-restore", &fb, &[]).await;
    let e = t.complete("enable-exporter", &fb, &[]).await;
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": e["changeId"]}), &[]).await;
    let added = t.complete("add-brokers", &fb, &[]).await;
    let cv = json!({"survivingRegion": 0, "changeId": added["changeId"]});
    for _ in 0..5 {
        let c = t.complete("await-change", &cv, &[]).await;
        assert_eq!(c["verified"], json!(false));
        assert_eq!(c["changeStatus"], json!("IN_PROGRESS"));
        assert!(!c["changeProgress"]["nextOperations"].as_array().unwrap().is_empty(), "{c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // a second add while ours is stuck adopts it instead of a new (409) request
    let m = t.mutations();
    let again = t.complete("add-brokers", &fb, &[]).await;
    assert_eq!((again["changeId"].clone(), again["alreadyDone"].clone()), (added["changeId"].clone(), json!(true)));
    assert_eq!(t.mutations(), m);
    // an operator cancels the stuck change: the await step reports CHANGE_FAILED
    let mgmt = t.lab.region_urls(0).management;
    let id = added["changeId"].as_i64().unwrap();
    let r = reqwest::Client::new().delete(format!("{mgmt}/actuator/cluster/changes/{id}")).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    match t.run("await-change", &cv, &[]).await {
        JobOutcome::BpmnError { code, message, .. } => {
            assert_eq!(code, "CHANGE_FAILED");
            assert!(message.contains("CANCELLED"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_schema_created_in_the_recreated_region_blocks_the_restore() {
    let t = fast_lab().await;
    failover(&t).await;
    let fb = json!({"recreatedRegion": 1, "survivingRegion": 0, "snapshotName": format!("c8dr-failback-{PIK}")});
    t.lab.recreate_region(1).await.unwrap();
    // someone deployed the recreated region with schema creation on
    let req = c8dr::rehearsal::lab::HelmRequest {
        action: c8dr::rehearsal::lab::HelmAction::Install,
        webapps: false,
        create_schema: true,
    };
    t.lab.helm(1, req).await.unwrap();
    t.until_verified("await-brokers-visible", &fb, &[]).await;
    t.complete("register-snapshot-repo", &fb, &[("region", "surviving")]).await;
    t.complete("create-snapshot", &fb, &[]).await;
    t.until_verified("await-snapshot", &fb, &[]).await;
    t.complete("register-snapshot-repo", &fb, &[("region", "recreated")]).await;
    let before = t.mutations();
    match t.run("restore-snapshot", &fb, &[]).await {
        JobOutcome::BpmnError { code, message, .. } => {
            assert_eq!(code, "RESTORE_TARGET_NOT_EMPTY");
            assert!(message.contains("CREATESCHEMA"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.mutations(), before, "no restore was issued");
    // and the preflight would have said so
    assert_eq!(code(&t.run("preflight-recreated", &fb, &[]).await), "RECREATED_REGION_NOT_CLEAN");
}

#[tokio::test]
async fn manual_helm_mode_hands_the_command_to_a_person() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.worker.check_watch_ms = 0;
    config.journal.path = dir.path().join("j.jsonl");
    let mut target = lab.target_config();
    target.helm.mode = c8dr::config::HelmMode::Manual;
    let values = dir.path().join("values.yml");
    std::fs::write(
        &values,
        "orchestration:\n  env:\n    - name: CAMUNDA_DATA_BACKUP_REPOSITORYNAME\n      value: camunda_backup\n",
    )
    .unwrap();
    target.helm.chart_version = Some("13.0.0".into());
    target.helm.base_values = vec![values.clone()];
    target.helm.region_values = vec![vec![values.clone()], vec![values]];
    config.targets.insert("lab".into(), target);
    let ctx = StepContext::new(Arc::new(config)).with_recorder(Arc::new(MemoryRecorder::default()));
    let fb = json!({"recreatedRegion": 1, "survivingRegion": 0});
    match jobs::handle(&ctx, job("helm", &fb, &[("action", "deploy-recreated"), ("region", "recreated")])).await {
        JobOutcome::BpmnError { code, variables, .. } => {
            assert_eq!(code, "MANUAL_STEP_REQUIRED");
            let cmd = variables["manualCommand"].as_str().unwrap();
            assert!(cmd.starts_with("helm upgrade --install camunda camunda/camunda-platform"), "{cmd}");
            assert!(
                cmd.contains("--set orchestration.profiles.operate=false --set orchestration.profiles.tasklist=false")
            );
            assert!(cmd.contains("c8dr-camunda-region1-deploy-recreated-env.yaml") && !cmd.contains("env["), "{cmd}");
            assert_eq!(variables["manualStepId"], json!("helm-deploy-recreated"));
            assert_eq!(variables["lastError"]["code"], json!("MANUAL_STEP_REQUIRED"));
        }
        other => panic!("{other:?}"),
    }
    let journal = std::fs::read_to_string(dir.path().join("j.jsonl")).unwrap();
    assert!(journal.lines().any(|l| l.contains("\"refused\"")), "{journal}");
}

impl T {
    /// Runs a step like the engine does: a failed job is retried (bounded).
    async fn complete_retrying(&self, step: &str, vars: &Value, headers: &[(&str, &str)]) -> Map<String, Value> {
        for _ in 0..60 {
            match self.run(step, vars, headers).await {
                JobOutcome::Complete(v) => return v,
                JobOutcome::Fail { .. } => tokio::time::sleep(Duration::from_millis(5)).await,
                other => panic!("{step}: {other:?}"),
            }
        }
        panic!("{step}: still failing after 60 attempts");
    }
}

#[tokio::test]
async fn under_injected_faults_every_change_is_made_exactly_once() {
    let t = fast_lab().await;
    // errors and drops are not handled by the lab; malformed answers are handled (the change is
    // made) but the step cannot read the answer: its next attempt must find the change made
    let faults = FaultConfig { seed: 42, error_rate: 0.1, drop_rate: 0.05, malformed_rate: 0.15, ..Default::default() };
    t.lab.lose_region(1).await.unwrap();
    t.lab.set_faults(Some(faults.clone()));
    let fo = json!({"lostRegion": 1, "survivingRegion": 0});
    let removed = t.complete_retrying("remove-brokers", &fo, &[]).await;
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": removed["changeId"]}), &[]).await;
    loop {
        let d = t.complete_retrying("disable-exporters", &fo, &[]).await;
        if d["changeId"].is_null() {
            break;
        }
        t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": d["changeId"]}), &[]).await;
    }
    t.until_verified("verify-exporters", &fo, &[("expect", "failover")]).await;

    let fb = json!({"recreatedRegion": 1, "survivingRegion": 0, "snapshotName": format!("c8dr-failback-{PIK}")});
    t.lab.recreate_region(1).await.unwrap();
    t.complete_retrying("helm", &fb, &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    t.until_verified("await-brokers-visible", &fb, &[]).await;
    t.complete_retrying("pause-exporting", &fb, &[]).await;
    t.complete_retrying("register-snapshot-repo", &fb, &[("region", "surviving")]).await;
    t.complete_retrying("create-snapshot", &fb, &[]).await;
    t.until_verified("await-snapshot", &fb, &[]).await;
    t.complete_retrying("register-snapshot-repo", &fb, &[("region", "recreated")]).await;
    t.complete_retrying("restore-snapshot", &fb, &[]).await;
    t.until_verified("await-restore", &fb, &[]).await;
    let e = t.complete_retrying("enable-exporter", &fb, &[]).await;
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": e["changeId"]}), &[]).await;
    t.complete_retrying("resume-exporting", &fb, &[]).await;
    let a = t.complete_retrying("add-brokers", &fb, &[]).await;
    t.until_verified("await-change", &json!({"survivingRegion": 0, "changeId": a["changeId"]}), &[]).await;
    t.until_verified("verify-topology", &fb, &[("expect", "full")]).await;
    t.until_verified("verify-exporters", &fb, &[("expect", "full")]).await;
    t.lab.set_faults(None);

    // every change the lab handled was asked for once (pause/resume have no state to observe)
    let mut handled: std::collections::BTreeMap<(usize, String, String), usize> = Default::default();
    for r in t.lab.record() {
        if (200..300).contains(&r.status) && !r.path.contains("/actuator/exporting/") {
            let path = r.path.split('?').next().unwrap_or("").to_string();
            *handled.entry((r.region, r.method.clone(), path)).or_default() += 1;
        }
    }
    let patches = handled.get(&(0, "PATCH".to_string(), "/actuator/cluster".to_string())).copied().unwrap_or(0);
    assert_eq!(patches, 2, "one removal and one addition: {handled:?}");
    for (k, n) in &handled {
        // the recreated region's repository: registered read-only for the restore, then
        // writable once the restore is done (Camunda's own backups there use it)
        let expected = if *k == (1, "PUT".to_string(), "/_snapshot/camunda_backup".to_string()) { 2 } else { 1 };
        if k.2 != "/actuator/cluster" {
            assert_eq!(*n, expected, "{k:?} handled {n} times: {handled:?}");
        }
    }
    let state = t.lab.state();
    assert!(state.exporters.iter().all(|e| e.status == "ENABLED"), "{:?}", state.exporters);
    assert_eq!(state.cluster.brokers.iter().filter(|b| !b.partitions.is_empty()).count(), 8);
    // the faults did hit: steps failed and were retried, some after their change was made
    let journal = std::fs::read_to_string(t._dir.path().join("journal.jsonl")).unwrap();
    let lines: Vec<Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let retries = lines.iter().filter(|l| l["kind"] == "outcome" && l["action"] == "retry").count();
    let failed_calls = lines.iter().filter(|l| l["kind"] == "call" && l["status"] != "ok").count();
    assert!(retries > 3 && failed_calls > 0, "retries {retries}, failed calls {failed_calls}");
    let adopted = lines.iter().filter(|l| l["kind"] == "outcome" && l["status"] == "alreadyDone").count();
    eprintln!(
        "faults: {retries} retried attempts, {failed_calls} failed mutating calls, {adopted} already-done outcomes"
    );
}
