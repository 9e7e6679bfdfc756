//! Step tests against the in-memory fake target: happy paths in the seed order, re-runs are
//! no-ops, precondition violations give their BPMN errors, faults give retries, bad variables
//! give INVALID_INPUT before any mutation.
use super::api::ExporterStatusKind;
use super::fake::{FakePlatform, FakeTarget, idx};
use super::journal::Journal;
use super::record::MemoryRecorder;
use super::{StepEnv, StepInput, StepOutcome, run_step};
use crate::config::TargetConfig;
use crate::platform::HelmAction;
use serde_json::{Value, json};

struct H {
    api: FakeTarget,
    plat: FakePlatform,
    journal: Journal,
    /// The process instance's variables as the call records left them: merged into every job.
    rec: MemoryRecorder,
    target: TargetConfig,
    pik: i64,
    _dir: tempfile::TempDir,
}

impl H {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut target = super::regions::tests_support::target();
        target.drill_allowed = true;
        Self {
            api: FakeTarget::healthy(8, 8, 4),
            plat: FakePlatform::running(),
            journal: Journal::new(dir.path().join("journal.jsonl")),
            rec: MemoryRecorder::default(),
            target,
            pik: 2251799813685249,
            _dir: dir,
        }
    }

    async fn run(&self, step: &str, vars: Value, headers: &[(&str, &str)]) -> StepOutcome {
        let mut variables = self.rec.variables();
        variables.extend(vars.as_object().cloned().unwrap_or_default());
        variables.entry("target").or_insert(json!("lab"));
        let input = StepInput {
            target_name: "lab".into(),
            step: format!("c8dr.{step}"),
            variables,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            process_instance_key: self.pik,
            job_key: 1,
            worker: "test".into(),
            element_id: step.into(),
            element_instance_key: 7,
        };
        let env = StepEnv {
            input: &input,
            target: &self.target,
            api: &self.api,
            platform: &self.plat,
            drill: &self.plat,
            journal: &self.journal,
            recorder: &self.rec,
            written: Default::default(),
        };
        run_step(&env).await
    }

    fn mutations(&self) -> usize {
        self.api.mutations()
    }

    /// Runs a check step until it reports `verified: true` (bounded).
    async fn until_verified(
        &self,
        step: &str,
        vars: &Value,
        headers: &[(&str, &str)],
    ) -> serde_json::Map<String, Value> {
        for _ in 0..5 {
            match self.run(step, vars.clone(), headers).await {
                StepOutcome::Done { variables, .. } if variables["verified"] == json!(true) => {
                    return variables;
                }
                StepOutcome::Done { .. } => continue,
                other => panic!("{step}: {other:?}"),
            }
        }
        panic!("{step} never verified");
    }

    /// Runs a mutating step, checks it acted, then runs it again (a crash between act and
    /// complete) and checks the re-run is a no-op.
    async fn act_once(&self, step: &str, vars: &Value, headers: &[(&str, &str)]) -> serde_json::Map<String, Value> {
        let before = self.mutations();
        let first = done(self.run(step, vars.clone(), headers).await, step);
        assert!(self.mutations() > before, "{step} made no mutation");
        let after = self.mutations();
        match self.run(step, vars.clone(), headers).await {
            StepOutcome::Done { already_done: true, .. } => {}
            other => panic!("{step} re-run: {other:?}"),
        }
        assert_eq!(self.mutations(), after, "{step} re-run mutated again");
        first
    }
}

fn done(o: StepOutcome, step: &str) -> serde_json::Map<String, Value> {
    match o {
        StepOutcome::Done { variables, .. } => variables,
        other => panic!("{step}: expected done, got {other:?}"),
    }
}

fn code(o: &StepOutcome) -> &'static str {
    match o {
        StepOutcome::Refused { code, .. } => code,
        StepOutcome::Retry { .. } => "RETRY",
        StepOutcome::Done { .. } => "DONE",
        StepOutcome::Verdict { .. } => "VERDICT",
    }
}

fn failover_vars() -> Value {
    json!({"lostRegion": 1, "survivingRegion": 0})
}

fn failback_vars() -> Value {
    json!({"recreatedRegion": 1, "survivingRegion": 0, "snapshotName": "c8dr-failback-2251799813685249"})
}

async fn failover(h: &H) {
    let v = failover_vars();
    h.api.lose(1);
    let plan = done(h.run("assess-failover", v.clone(), &[]).await, "assess");
    assert_eq!(plan["plan"]["brokersToRemove"], json!([1, 3, 5, 7]));
    assert_eq!(plan["plan"]["expectedReplicationFactor"], json!(2));
    assert_eq!(h.mutations(), 0, "assessing mutates nothing");
    let r = h.act_once("remove-brokers", &v, &[]).await;
    let cv = json!({"lostRegion": 1, "survivingRegion": 0, "changeId": r["changeId"]});
    h.until_verified("await-change", &cv, &[]).await;
    h.until_verified("verify-topology", &v, &[("expect", "degraded")]).await;
    let d = h.act_once("disable-exporters", &v, &[]).await;
    assert_eq!(d["exportersDone"], json!(true));
    let cv = json!({"lostRegion": 1, "survivingRegion": 0, "changeId": d["changeId"]});
    h.until_verified("await-change", &cv, &[]).await;
    let again = done(h.run("disable-exporters", v.clone(), &[]).await, "disable again");
    assert_eq!(again["changeId"], Value::Null);
    h.until_verified("verify-exporters", &v, &[("expect", "failover")]).await;
}

#[tokio::test]
async fn failover_then_failback_reaches_the_dual_region_state() {
    let h = H::new();
    let vi = done(h.run("validate-input", json!({"lostRegion": 1}), &[("process", "failover")]).await, "validate");
    assert_eq!(vi["survivingRegion"], json!(0));
    failover(&h).await;

    let v = failback_vars();
    // the recreated region is empty
    *h.plat.status.lock().unwrap().get_mut(1).unwrap() = Default::default();
    let pf = done(h.run("preflight-recreated", v.clone(), &[]).await, "preflight");
    assert_eq!(pf["preflight"]["releasePresent"], json!(false));
    let m0 = h.mutations();
    done(h.run("helm", v.clone(), &[("action", "deploy-recreated"), ("region", "recreated")]).await, "helm");
    let again = h.run("helm", v.clone(), &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    assert!(matches!(again, StepOutcome::Done { already_done: true, .. }));
    assert_eq!(h.plat.helm_calls.lock().unwrap().as_slice(), &[(1, HelmAction::DeployRecreated)]);
    assert_eq!(h.mutations(), m0);
    h.api.start_brokers(1, 8);
    h.until_verified("await-brokers-visible", &v, &[]).await;
    done(h.run("helm", v.clone(), &[("action", "disable-webapps"), ("region", "surviving")]).await, "helm off");
    h.until_verified("verify-profiles", &v, &[("region", "both"), ("expect", "webapps-off")]).await;
    h.act_once("pause-exporting", &v, &[]).await;
    h.act_once("register-snapshot-repo", &v, &[("region", "surviving")]).await;
    h.act_once("create-snapshot", &v, &[]).await;
    h.until_verified("await-snapshot", &v, &[]).await;
    h.act_once("register-snapshot-repo", &v, &[("region", "recreated")]).await;
    h.act_once("restore-snapshot", &v, &[]).await;
    h.until_verified("await-restore", &v, &[]).await;
    // adding brokers before the exporter is enabled is refused
    let early = h.run("add-brokers", v.clone(), &[]).await;
    assert_eq!(code(&early), "PRECONDITION_FAILED");
    let e = h.act_once("enable-exporter", &v, &[]).await;
    let cv = json!({"recreatedRegion": 1, "survivingRegion": 0, "changeId": e["changeId"]});
    h.until_verified("await-change", &cv, &[]).await;
    // still paused: refused
    assert_eq!(code(&h.run("add-brokers", v.clone(), &[]).await), "PRECONDITION_FAILED");
    h.act_once("resume-exporting", &v, &[]).await;
    let a = h.act_once("add-brokers", &v, &[]).await;
    let cv = json!({"recreatedRegion": 1, "survivingRegion": 0, "changeId": a["changeId"]});
    h.until_verified("await-change", &cv, &[]).await;
    let t = h.until_verified("verify-topology", &v, &[("expect", "full")]).await;
    assert_eq!(t["topology"]["replicationFactor"], json!(4));
    assert_eq!(t["topology"]["clusterSize"], json!(8));
    done(h.run("helm", v.clone(), &[("action", "enable-webapps"), ("region", "both")]).await, "helm on");
    h.until_verified("verify-profiles", &v, &[("region", "both"), ("expect", "webapps-on")]).await;
    h.until_verified("verify-exporters", &v, &[("expect", "full")]).await;
    let rep =
        done(h.run("report", json!({"startedAt": "2026-01-01T00:00:00Z"}), &[("process", "failback")]).await, "report");
    let steps = rep["report"]["steps"].as_array().unwrap();
    let remove = steps.iter().find(|s| s["step"] == "remove-brokers").unwrap();
    assert_eq!(remove["attempts"], json!(2));
    assert_eq!(remove["mutations"], json!(1));
    assert_eq!(rep["report"]["outcome"], json!("completed"));
}

#[tokio::test]
async fn bad_variables_are_invalid_input_without_mutations() {
    let h = H::new();
    h.api.lose(1);
    let bad = [json!({"lostRegion": 2}), json!({"lostRegion": -1}), json!({"lostRegion": "one"}), json!({})];
    for step in ["assess-failover", "remove-brokers", "disable-exporters", "drill-region"] {
        for v in &bad {
            let o = h.run(step, v.clone(), &[("action", "lose")]).await;
            match &o {
                StepOutcome::Refused { code: "INVALID_INPUT", field: Some(f), .. } => assert_eq!(f, "lostRegion"),
                other => panic!("{step} {v}: {other:?}"),
            }
        }
    }
    for step in ["add-brokers", "enable-exporter", "restore-snapshot", "await-restore", "preflight-recreated"] {
        let o = h.run(step, json!({"recreatedRegion": 7, "snapshotName": "s"}), &[]).await;
        assert_eq!(code(&o), "INVALID_INPUT", "{step}");
    }
    assert_eq!(code(&h.run("await-change", json!({"survivingRegion": 0}), &[]).await), "INVALID_INPUT");
    assert_eq!(
        code(&h.run("create-snapshot", json!({"survivingRegion": 0, "snapshotName": "Bad Name"}), &[]).await),
        "INVALID_INPUT"
    );
    assert_eq!(
        code(&h.run("verify-topology", json!({"survivingRegion": 0}), &[("expect", "sideways")]).await),
        "INVALID_INPUT"
    );
    assert_eq!(
        code(&h.run("remove-brokers", json!({"lostRegion": 1, "survivingRegion": 1}), &[]).await),
        "INVALID_INPUT"
    );
    assert_eq!(
        code(
            &h.run("validate-input", json!({"recreatedRegion": 1, "verifyInterval": "5s"}), &[("process", "failback")])
                .await
        ),
        "INVALID_INPUT"
    );
    assert_eq!(h.mutations(), 0);
}

/// Issue 10.6: a swapped lostRegion used to end in an incident "target unavailable".
#[tokio::test]
async fn a_swapped_lost_region_is_named_not_retried_into_an_incident() {
    let h = H::new();
    h.api.lose(0); // region 0 is the one that is down, the process was told region 1
    let o = h.run("assess-failover", failover_vars(), &[]).await;
    assert_eq!(code(&o), "PRECONDITION_FAILED");
    assert!(
        matches!(&o, StepOutcome::Refused { message, .. } if message.contains("is lostRegion right?") && message.contains("lostRegion = 0")),
        "{o:?}"
    );
    assert_eq!(h.mutations(), 0);
    // both silent: a retry that names the surviving region's management API
    h.api.lose(1);
    match h.run("assess-failover", failover_vars(), &[]).await {
        StepOutcome::Retry { message } => assert!(message.contains("regions[0].management_url"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn split_brain_and_degraded_survivors_are_refused() {
    let h = H::new();
    // the lost region's brokers are still healthy: not lost
    let o = h.run("remove-brokers", failover_vars(), &[]).await;
    assert_eq!(code(&o), "SPLIT_BRAIN_RISK");
    assert_eq!(code(&h.run("assess-failover", failover_vars(), &[]).await), "SPLIT_BRAIN_RISK");
    // the lost region's brokers are gone from the topology but its gateway still answers
    h.api.lose(1);
    h.api.lock().lost_gateway_answers = true;
    let o = h.run("remove-brokers", failover_vars(), &[]).await;
    assert_eq!(code(&o), "SPLIT_BRAIN_RISK");
    assert!(matches!(&o, StepOutcome::Refused { message, .. } if message.contains("still answers")));
    assert_eq!(code(&h.run("assess-failover", failover_vars(), &[]).await), "SPLIT_BRAIN_RISK");
    h.api.lock().lost_gateway_answers = false;
    // the lost region's gateway answers with an error (401, 404, 409, ...): something is still
    // there, which is not "gone" (only unreachable / timeout / 5xx count as silent)
    for (kind, status) in [
        (super::api::ApiErrorKind::Rejected, 401),
        (super::api::ApiErrorKind::NotFound, 404),
        (super::api::ApiErrorKind::Conflict, 409),
    ] {
        h.api.lock().lost_gateway_error = Some(super::api::ApiError::new(kind, Some(status), "answered"));
        let o = h.run("remove-brokers", failover_vars(), &[]).await;
        assert_eq!(code(&o), "SPLIT_BRAIN_RISK", "{status}: {o:?}");
        assert_eq!(code(&h.run("assess-failover", failover_vars(), &[]).await), "SPLIT_BRAIN_RISK", "{status}");
    }
    h.api.lock().lost_gateway_error = None;
    // a surviving broker is down too
    h.api.lock().alive.remove(&2);
    assert_eq!(code(&h.run("assess-failover", failover_vars(), &[]).await), "SURVIVING_REGION_DEGRADED");
    assert_eq!(code(&h.run("remove-brokers", failover_vars(), &[]).await), "SURVIVING_REGION_DEGRADED");
    assert_eq!(h.mutations(), 0);
}

#[tokio::test]
async fn foreign_pending_change_is_a_concurrent_change() {
    let h = H::new();
    h.api.lose(1);
    h.api.lock().pending = Some((41, super::fake::Kind::Add(vec![9], 4)));
    for step in ["assess-failover", "remove-brokers", "disable-exporters"] {
        // the fake completes a change on observation: re-arm it each time
        h.api.lock().pending = Some((41, super::fake::Kind::Add(vec![9], 4)));
        assert_eq!(code(&h.run(step, failover_vars(), &[]).await), "CONCURRENT_CHANGE", "{step}");
    }
    assert_eq!(h.mutations(), 0);
}

#[tokio::test]
async fn transient_faults_are_retries() {
    let h = H::new();
    h.api.lose(1);
    h.api.lock().fail_next = 1;
    assert_eq!(code(&h.run("remove-brokers", failover_vars(), &[]).await), "RETRY");
    h.api.lock().fail_next = 1;
    assert_eq!(code(&h.run("verify-topology", failover_vars(), &[("expect", "degraded")]).await), "RETRY");
    // a 409 from the target (race) is a retry as well, and the next attempt adopts our change
    let ok = done(h.run("remove-brokers", failover_vars(), &[]).await, "remove");
    assert!(ok["changeId"].is_i64());
}

#[tokio::test]
async fn snapshot_preconditions() {
    let h = H::new();
    failover(&h).await;
    let v = failback_vars();
    assert_eq!(code(&h.run("create-snapshot", v.clone(), &[]).await), "REPOSITORY_MISSING");
    assert_eq!(code(&h.run("await-snapshot", v.clone(), &[]).await), "SNAPSHOT_MISSING");
    done(h.run("register-snapshot-repo", v.clone(), &[("region", "surviving")]).await, "repo");
    // the recreated region's repo only once the snapshot exists
    assert_eq!(code(&h.run("register-snapshot-repo", v.clone(), &[("region", "recreated")]).await), "SNAPSHOT_MISSING");
    // a taken name after our observation: re-observed, not an error
    h.api.lock().bucket.push(super::api::SnapshotInfo {
        name: "c8dr-failback-2251799813685249".into(),
        state: super::api::SnapshotState::Failed,
        shards: super::api::ShardCounts { total: 3, failed: 1, successful: 2 },
    });
    assert!(matches!(h.run("create-snapshot", v.clone(), &[]).await, StepOutcome::Done { already_done: true, .. }));
    assert_eq!(code(&h.run("await-snapshot", v.clone(), &[]).await), "SNAPSHOT_FAILED");
    h.api.lock().bucket[0].state = super::api::SnapshotState::Success;
    h.api.lock().bucket[0].shards.failed = 0;
    assert_eq!(code(&h.run("restore-snapshot", v.clone(), &[]).await), "REPOSITORY_MISSING");
    done(h.run("register-snapshot-repo", v.clone(), &[("region", "recreated")]).await, "repo recreated");
    // schema manager created indices in the recreated region
    h.api.lock().es[1].indices.push(idx("operate-list-view-8.3.0_"));
    let m = h.mutations();
    assert_eq!(code(&h.run("restore-snapshot", v.clone(), &[]).await), "RESTORE_TARGET_NOT_EMPTY");
    assert_eq!(h.mutations(), m);
    h.api.lock().es[1].indices.clear();
    h.api.lock().restore_fails = true;
    done(h.run("restore-snapshot", v.clone(), &[]).await, "restore");
    assert_eq!(code(&h.run("enable-exporter", v.clone(), &[]).await), "PRECONDITION_FAILED");
    let _ = h.run("await-restore", v.clone(), &[]).await;
    assert_eq!(code(&h.run("await-restore", v.clone(), &[]).await), "RESTORE_FAILED");
}

#[tokio::test]
async fn drill_steps() {
    let mut h = H::new();
    let v = json!({"lostRegion": 1, "canaryCount": 3});
    done(h.run("drill-guard", v.clone(), &[]).await, "guard");
    let c = h.act_once("drill-canaries", &v, &[("action", "create")]).await;
    assert_eq!(c["canaryKeys"].as_array().unwrap().len(), 3);
    let lost = done(h.run("drill-region", v.clone(), &[("action", "lose")]).await, "lose");
    let again = done(h.run("drill-region", v.clone(), &[("action", "lose")]).await, "lose again");
    assert_eq!(lost["regionLostAt"], again["regionLostAt"]);
    assert_eq!(h.plat.control_calls.lock().unwrap().len(), 1);
    let check = json!({"lostRegion": 1, "canaryKeys": c["canaryKeys"]});
    h.until_verified("drill-canaries", &check, &[("action", "check"), ("region", "surviving")]).await;
    let missing = json!({"lostRegion": 1, "canaryKeys": ["1"]});
    let r = done(h.run("drill-canaries", missing, &[("action", "check"), ("region", "both")]).await, "check");
    assert_eq!(r["verified"], json!(false));
    assert_eq!(r["canariesMissing"]["0"], json!(["1"]));
    h.target.drill_allowed = false;
    for (step, a) in [("drill-guard", "lose"), ("drill-region", "lose"), ("drill-canaries", "create")] {
        assert_eq!(code(&h.run(step, v.clone(), &[("action", a)]).await), "DRILL_NOT_ALLOWED");
    }
    let rep = done(
        h.run(
            "report",
            json!({"regionLostAt": "2026-01-01T00:00:00Z", "failoverReport": {"completedAt": "2026-01-01T00:05:00Z"},
                   "failbackReport": {"completedAt": "2026-01-01T00:30:00Z"}}),
            &[("process", "drill")],
        )
        .await,
        "report",
    );
    assert_eq!(rep["report"]["recoveryTimeSeconds"], json!(300.0));
    assert_eq!(rep["report"]["fullRecoveryTimeSeconds"], json!(1800.0));
}

#[tokio::test]
async fn manual_mode_asks_for_the_exact_command() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("camunda-values.yml");
    let region1 = dir.path().join("region1.yml");
    std::fs::write(
        &base,
        "orchestration:\n  env:\n    - name: CAMUNDA_DATA_BACKUP_REPOSITORYNAME\n      value: camunda_backup\n    - name: ZEEBE_BROKER_CLUSTER_INITIALCONTACTPOINTS\n      value: a,b\n",
    )
    .unwrap();
    std::fs::write(&region1, "orchestration:\n  clusterSize: 8\n").unwrap();
    let mut h = H::new();
    h.plat.manual.store(true, std::sync::atomic::Ordering::SeqCst);
    // unpinned: refused naming the key, nothing asked of a person
    let o = h.run("helm", failback_vars(), &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    match &o {
        StepOutcome::Refused { code: "INVALID_INPUT", field: Some(f), .. } => {
            assert!(f.ends_with("helm.chart_version"), "{f}")
        }
        other => panic!("{other:?}"),
    }
    h.target.helm.chart_version = Some("13.0.0".into());
    h.target.helm.base_values = vec![base.clone()];
    h.target.helm.region_values = vec![vec![dir.path().join("region0.yml")], vec![region1.clone()]];
    let o = h.run("helm", failback_vars(), &[("action", "deploy-recreated"), ("region", "recreated")]).await;
    let generated = dir.path().join("c8dr-camunda-region1-deploy-recreated-env.yaml");
    match o {
        StepOutcome::Refused { code: "MANUAL_STEP_REQUIRED", variables, .. } => {
            let cmd = variables["manualCommand"].as_str().unwrap();
            assert!(
                cmd.starts_with(
                    "helm upgrade --install camunda camunda/camunda-platform --version 13.0.0 --namespace camunda-b"
                ),
                "{cmd}"
            );
            assert!(cmd.contains(&format!("-f {}", generated.display())), "{cmd}");
            assert!(!cmd.contains("env["), "no indexed env override: {cmd}");
            assert!(cmd.contains("--set optimize.enabled=false"), "{cmd}");
            assert_eq!(variables["manualStepId"], json!("helm-deploy-recreated"));
        }
        other => panic!("{other:?}"),
    }
    // the generated file keeps every entry of the values files and adds the one variable
    let text = std::fs::read_to_string(&generated).unwrap();
    let v: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(
        v["orchestration"]["env"],
        json!([
            {"name": "CAMUNDA_DATA_BACKUP_REPOSITORYNAME", "value": "camunda_backup"},
            {"name": "ZEEBE_BROKER_CLUSTER_INITIALCONTACTPOINTS", "value": "a,b"},
            {"name": "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA", "value": "false"}
        ])
    );
    assert!(h.plat.helm_calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn pause_and_resume_follow_the_journal() {
    let h = H::new();
    let v = json!({"survivingRegion": 0});
    h.act_once("pause-exporting", &v, &[]).await;
    h.act_once("resume-exporting", &v, &[]).await;
    // a second pause after the resume acts again
    let before = h.mutations();
    assert!(matches!(h.run("pause-exporting", v.clone(), &[]).await, StepOutcome::Done { already_done: false, .. }));
    assert_eq!(h.mutations(), before + 1);
    // a failed pause is not recorded as a pause
    let h2 = H::new();
    h2.api.lock().fail_next = 1;
    assert_eq!(code(&h2.run("pause-exporting", v.clone(), &[]).await), "RETRY");
    assert!(matches!(h2.run("pause-exporting", v.clone(), &[]).await, StepOutcome::Done { already_done: false, .. }));
}

/// Fails over, then runs the failback up to the finished restore (exporters still disabled).
/// Returns the failback's variables.
async fn failed_over_and_restored(h: &H) -> Value {
    failover(h).await;
    let v = failback_vars();
    h.api.start_brokers(1, 8);
    done(h.run("register-snapshot-repo", v.clone(), &[("region", "surviving")]).await, "repo");
    done(h.run("create-snapshot", v.clone(), &[]).await, "snap");
    h.until_verified("await-snapshot", &v, &[]).await;
    done(h.run("register-snapshot-repo", v.clone(), &[("region", "recreated")]).await, "repo2");
    done(h.run("restore-snapshot", v.clone(), &[]).await, "restore");
    h.until_verified("await-restore", &v, &[]).await;
    v
}

#[tokio::test]
async fn an_exporter_re_enabled_by_a_restart_is_disabled_then_enabled_with_initialize_from() {
    let h = H::new();
    let v = failed_over_and_restored(&h).await;
    // a broker restart flips the disabled exporter back to ENABLED (#52260)
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::Enabled);
    let o = h.run("enable-exporter", v.clone(), &[]).await;
    assert!(matches!(&o, StepOutcome::Retry { message } if message.contains("re-enabled")), "{o:?}");
    assert_eq!(h.api.lock().calls.last().unwrap().1, "disable-exporter");
    // while our disable is pending the step waits
    assert_eq!(code(&h.run("enable-exporter", v.clone(), &[]).await), "RETRY");
    let e = done(h.run("enable-exporter", v.clone(), &[]).await, "enable");
    assert!(e["changeId"].is_i64());
    assert_eq!(h.api.lock().calls.last().unwrap().1, "enable-exporter");
    // once we enabled it, ENABLED is ours: a re-run is a no-op
    let cv = json!({"recreatedRegion": 1, "survivingRegion": 0, "changeId": e["changeId"]});
    h.until_verified("await-change", &cv, &[]).await;
    let m = h.mutations();
    assert!(matches!(h.run("enable-exporter", v.clone(), &[]).await, StepOutcome::Done { already_done: true, .. }));
    assert_eq!(h.mutations(), m);
}

/// The exporter list is read before the cluster: when a change ends between the two reads the
/// list still says ENABLING/DISABLING while no change is pending. Neither step acts on that
/// (it would make the change a second time); an exporter the surviving brokers do not have
/// configured is a precondition for a person, never an enable.
#[tokio::test]
async fn exporter_steps_act_only_on_a_settled_exporter_state() {
    let h = H::new();
    let v = failed_over_and_restored(&h).await;
    let m = h.mutations();
    for transitional in [ExporterStatusKind::Enabling, ExporterStatusKind::Disabling] {
        h.api.lock().exporters.insert("camundaregion1".into(), transitional.clone());
        let o = h.run("enable-exporter", v.clone(), &[]).await;
        assert!(matches!(&o, StepOutcome::Retry { message } if message.contains("observing again")), "{o:?}");
    }
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::ConfigNotFound);
    let o = h.run("enable-exporter", v.clone(), &[]).await;
    assert_eq!(code(&o), "PRECONDITION_FAILED", "{o:?}");
    h.api.lock().exporters.remove("camundaregion1");
    assert_eq!(code(&h.run("enable-exporter", v.clone(), &[]).await), "PRECONDITION_FAILED");
    assert_eq!(h.mutations(), m, "nothing enabled from an unsettled or unconfigured state");
    // settled: enabled once
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::Disabled);
    done(h.run("enable-exporter", v.clone(), &[]).await, "enable");
    assert_eq!(h.mutations(), m + 1);

    // failover side: a DISABLING without a pending change is observed again, not disabled again
    let h = H::new();
    h.api.lose(1);
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::Disabling);
    let o = h.run("disable-exporters", failover_vars(), &[]).await;
    assert!(matches!(&o, StepOutcome::Retry { message } if message.contains("observing again")), "{o:?}");
    assert_eq!(h.mutations(), 0);
}

/// The configured layout must match the live cluster before anything is forced: with
/// `cluster_size = 4` (or left at the default 8) on a cluster of 8 (10) brokers, the removal
/// would force-remove only part of the lost region and leave dead members behind.
#[tokio::test]
async fn cluster_larger_than_configured_is_refused_before_removal() {
    let mut h = H::new();
    h.target.cluster_size = 4;
    h.api.lose(1);
    for step in ["assess-failover", "remove-brokers"] {
        let o = h.run(step, failover_vars(), &[]).await;
        assert_eq!(code(&o), "INVALID_INPUT", "{step}: {o:?}");
        assert!(
            matches!(&o, StepOutcome::Refused { field: Some(f), message, .. } if f == "cluster_size" && message.contains("[4, 5, 6, 7]")),
            "{o:?}"
        );
    }
    assert_eq!(h.mutations(), 0);
}

/// add-brokers sets the replication factor from the config: a config that does not match the
/// cluster's (halved) factor would silently change the cluster's replication factor.
#[tokio::test]
async fn add_brokers_refuses_a_replication_factor_that_contradicts_the_cluster() {
    let mut h = H::new();
    failover(&h).await;
    h.api.start_brokers(1, 8);
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::Enabled);
    h.target.replication_factor = 6;
    let o = h.run("add-brokers", failback_vars(), &[]).await;
    assert_eq!(code(&o), "INVALID_INPUT", "{o:?}");
    assert!(matches!(&o, StepOutcome::Refused { field: Some(f), .. } if f == "replication_factor"), "{o:?}");
    h.target.replication_factor = 4;
    let m = h.mutations();
    h.act_once("add-brokers", &failback_vars(), &[]).await;
    assert_eq!(h.mutations(), m + 1);
}

/// Issue 9.7: steps decide from the call records on the process instance, not from the local
/// journal. A worker that lost its journal (another replica, a lost volume) decides exactly as
/// the one that paused: add-brokers is refused while this instance's pause stands, a second
/// pause is alreadyDone, and a failback is not stalled. (Before: the job failed until the
/// journal was restored.)
#[tokio::test]
async fn a_lost_journal_changes_no_decision_the_instance_records_decide() {
    let mut h = H::new();
    failover(&h).await;
    h.api.start_brokers(1, 8);
    h.act_once("pause-exporting", &failback_vars(), &[]).await;
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::Enabled);
    // another replica, with its own empty journal
    h.journal = Journal::new(h._dir.path().join("replica-2.jsonl"));
    let m = h.mutations();
    let o = h.run("add-brokers", failback_vars(), &[]).await;
    assert_eq!(code(&o), "PRECONDITION_FAILED", "{o:?}");
    assert!(matches!(&o, StepOutcome::Refused { message, .. } if message.contains("paused")), "{o:?}");
    match h.run("pause-exporting", failback_vars(), &[]).await {
        StepOutcome::Done { already_done: true, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.mutations(), m, "nothing mutated");
    // resumed (recorded): add-brokers goes on
    done(h.run("resume-exporting", failback_vars(), &[]).await, "resume");
    assert_eq!(h.mutations(), m + 1);
    let vars = h.rec.variables();
    let rec = &vars[&super::record::variable_name("exporting-r0")];
    assert_eq!(rec["action"], json!("resume-exporting"));
    assert_eq!(rec["outcome"]["status"], json!("ok"));
    assert_eq!(rec["step"], json!("c8dr.resume-exporting"));
    assert!(!h.run("add-brokers", failback_vars(), &[]).await.label().is_empty());
    assert_ne!(code(&h.run("add-brokers", failback_vars(), &[]).await), "RETRY");
}

fn intent(action: &str, step: &str, observed: Option<Value>) -> Value {
    json!({
        "action": action, "region": 0, "request": "-", "step": step, "jobKey": 1,
        "elementInstanceKey": 7, "elementId": "x", "worker": "gone", "intentAt": "2026-01-01T00:00:00.000Z",
        "observed": observed, "outcome": null
    })
}

/// A replica died between deploying the canary process and recording the answer: the
/// definition search tells whether the deployment was made; it is made again only when the
/// search does not show it.
#[tokio::test]
async fn an_unknown_canary_deployment_is_settled_by_the_definition_search() {
    let deploy = super::api::Mutation::DeployProcess {
        resource_name: "c8dr-canary.bpmn".into(),
        xml: super::drill::CANARY_BPMN.into(),
    };
    let var = super::record::variable_name(&super::mutation_fact(0, &deploy));
    let v = json!({"lostRegion": 1, "canaryCount": 2});
    let deploys = |h: &H| h.api.lock().calls.iter().filter(|(_, a)| a == "deploy-process").count();
    for shown in [true, false] {
        let h = H::new();
        if shown {
            h.api.lock().definitions = vec!["2251799813685300".into()];
        }
        h.rec.set(&var, intent("deploy-process", "c8dr.drill-canaries", None));
        let c = done(h.run("drill-canaries", v.clone(), &[("action", "create")]).await, "create");
        assert_eq!(c["canaryKeys"].as_array().map(Vec::len), Some(2));
        assert_eq!(deploys(&h), usize::from(!shown), "definition shown: {shown}");
    }
}

/// Issue 9.7: an intent without outcome (a replica died between the record and the call, or
/// between the call and its outcome) is "unknown": the step observes or takes the safe action.
#[tokio::test]
async fn an_intent_without_outcome_is_settled_by_observation_or_the_safe_action() {
    use super::record::variable_name;
    // pause: no status endpoint; pausing again is the safe action (once)
    let h = H::new();
    h.rec.set(&variable_name("exporting-r0"), intent("pause-exporting", "c8dr.pause-exporting", None));
    done(h.run("pause-exporting", json!({"survivingRegion": 0}), &[]).await, "pause");
    assert_eq!(h.mutations(), 1);
    // ... and add-brokers counts an unknown pause as a pause
    let h = H::new();
    failover(&h).await;
    h.api.start_brokers(1, 8);
    h.api.lock().exporters.insert("camundaregion1".into(), ExporterStatusKind::Enabled);
    h.rec.set(&variable_name("exporting-r0"), intent("pause-exporting", "c8dr.pause-exporting", None));
    let m = h.mutations();
    assert_eq!(code(&h.run("add-brokers", failback_vars(), &[]).await), "PRECONDITION_FAILED");
    // an enable announced by this instance (outcome unknown) of an exporter now ENABLED is ours:
    // it is not disabled as "re-enabled by a broker restart"
    h.rec.set(&variable_name("exporter-camundaregion1"), intent("enable-exporter", "c8dr.enable-exporter", None));
    match h.run("enable-exporter", failback_vars(), &[]).await {
        StepOutcome::Done { already_done: true, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.mutations(), m);
    assert_eq!(h.api.lock().exporters["camundaregion1"].as_str(), "ENABLED");
}

/// Issue 9.7: no record, no call. When the intent cannot be recorded on the process instance
/// the job fails (retried) and the target is not touched.
#[tokio::test]
async fn a_call_whose_intent_cannot_be_recorded_is_not_made() {
    let h = H::new();
    h.rec.set_failing(true);
    let o = h.run("pause-exporting", json!({"survivingRegion": 0}), &[]).await;
    assert!(matches!(&o, StepOutcome::Retry { message } if message.contains("record")), "{o:?}");
    assert_eq!(h.mutations(), 0);
    stuck_pod(&h, 0, 1, 20);
    let o = h.run("restart-stuck-brokers", restart_vars(json!(true), &[(0, "camunda-zeebe-1")]), &[]).await;
    assert_eq!(code(&o), "RETRY");
    assert!(h.plat.restart_calls.lock().unwrap().is_empty());
    let o = h.run("drill-region", json!({"lostRegion": 1}), &[("action", "lose")]).await;
    assert_eq!(code(&o), "RETRY");
    assert!(h.plat.control_calls.lock().unwrap().is_empty());
    h.rec.set_failing(false);
    done(h.run("pause-exporting", json!({"survivingRegion": 0}), &[]).await, "pause");
    assert_eq!(h.mutations(), 1);
}

/// A repository left read-only in the surviving region (it was the recreated region of an
/// earlier failback, registered `readonly`) is re-registered writable: otherwise
/// create-snapshot fails on it until an incident.
#[tokio::test]
async fn surviving_repository_left_readonly_is_made_writable() {
    let h = H::new();
    failover(&h).await;
    {
        let mut s = h.api.lock();
        s.es[0].repo = true;
        s.es[0].repo_readonly = true;
    }
    let v = failback_vars();
    let o = h.act_once("register-snapshot-repo", &v, &[("region", "surviving")]).await;
    assert_eq!(o["repositoryRegistered"], json!(true));
    assert!(!h.api.lock().es[0].repo_readonly, "still read-only");
}

/// 12.10: the 8.8 REST API needs credentials; when `/v2/topology` is refused, assess-failover
/// falls back to the management API and says so in the plan the approver sees. A transient REST
/// error is still retried, never replaced.
#[tokio::test]
async fn assess_failover_falls_back_to_the_management_api_and_says_so() {
    let h = H::new();
    h.api.lose(1);
    let plan = done(h.run("assess-failover", failover_vars(), &[]).await, "assess");
    assert_eq!(plan["plan"]["topologySource"], json!("rest-api"));
    assert!(plan["plan"].get("topologyNote").is_none());

    h.api.lock().rest_topology_error =
        Some(super::api::ApiError::new(super::api::ApiErrorKind::Rejected, Some(401), "Unauthorized"));
    let plan = done(h.run("assess-failover", failover_vars(), &[]).await, "assess (fallback)");
    assert_eq!(plan["plan"]["topologySource"], json!("management-api"));
    assert_eq!(plan["plan"]["brokersToRemove"], json!([1, 3, 5, 7]));
    let note = plan["plan"]["topologyNote"].as_str().unwrap();
    assert!(note.contains("HTTP 401") && note.contains("health") && note.contains("/actuator/cluster"), "{note}");
    assert_eq!(h.mutations(), 0, "assessing mutates nothing");
    // the lost region still answering is refused with the fallback too
    h.api.lock().lost_gateway_answers = true;
    assert_eq!(code(&h.run("assess-failover", failover_vars(), &[]).await), "SPLIT_BRAIN_RISK");
    h.api.lock().lost_gateway_answers = false;
    // a transient REST failure is a retry, not a fallback
    h.api.lock().rest_topology_error = Some(super::api::ApiError::transient("503"));
    assert_eq!(code(&h.run("assess-failover", failover_vars(), &[]).await), "RETRY");
}

/// Issue 12.2: profiles that cannot be read are not "Operate/Tasklist off": the helm step acts
/// (its upgrade is idempotent) and verify-profiles fails the job instead of reporting verified.
#[tokio::test]
async fn unknown_profiles_never_satisfy_webapps_off() {
    let h = H::new();
    let v = failback_vars();
    {
        let mut st = h.plat.status.lock().unwrap();
        st[0].profiles = None; // ConfigMap missing, renamed, not permitted or unparsable
    }
    done(h.run("helm", v.clone(), &[("action", "disable-webapps"), ("region", "surviving")]).await, "helm off");
    assert_eq!(h.plat.helm_calls.lock().unwrap().as_slice(), &[(0, HelmAction::DisableWebapps)]);
    h.plat.status.lock().unwrap()[0].profiles = None; // still unreadable after the upgrade
    match h.run("verify-profiles", v.clone(), &[("region", "surviving"), ("expect", "webapps-off")]).await {
        StepOutcome::Retry { message } => {
            assert!(message.contains("cannot be read") && message.contains("kubectl get configmap"), "{message}")
        }
        other => panic!("unknown profiles must fail the job: {other:?}"),
    }
}

/// Issue 12.6: an existing writable registration pointing elsewhere (Camunda's own backups,
/// another base_path) is re-registered with the configured settings, not adopted; and the
/// recreated region's read-only registration is writable again once the restore is done.
#[tokio::test]
async fn a_foreign_repository_is_re_registered_and_the_recreated_one_ends_writable() {
    let h = H::new();
    failover(&h).await;
    let v = failback_vars();
    h.api.start_brokers(1, 8);
    {
        let mut s = h.api.lock();
        s.es[0].repo = true;
        s.es[0].repo_foreign = Some(super::api::RepositoryView {
            kind: "s3".into(),
            settings: [("bucket".to_string(), json!("camunda")), ("base_path".to_string(), json!("8-8-backups"))]
                .into_iter()
                .collect(),
        });
    }
    let mut target = h.target.clone();
    target.snapshot.settings.insert("base_path".into(), json!("failback"));
    for es in &mut h.api.lock().es {
        es.repo_settings.insert("base_path".into(), json!("failback"));
    }
    let h = H { target, ..h };
    let r = h.act_once("register-snapshot-repo", &v, &[("region", "surviving")]).await;
    assert!(r["repositoryReRegistered"].to_string().contains("base_path"), "{r:?}");
    assert!(h.api.lock().es[0].repo_foreign.is_none(), "registered with the configured settings");
    done(h.run("create-snapshot", v.clone(), &[]).await, "snap");
    h.until_verified("await-snapshot", &v, &[]).await;
    done(h.run("register-snapshot-repo", v.clone(), &[("region", "recreated")]).await, "repo2");
    assert!(h.api.lock().es[1].repo_readonly, "read-only while restoring");
    done(h.run("restore-snapshot", v.clone(), &[]).await, "restore");
    let verified = h.until_verified("await-restore", &v, &[]).await;
    assert_eq!(verified["repositoryWritable"], json!(true));
    assert!(!h.api.lock().es[1].repo_readonly, "the recreated region's repository is writable at the end");
    let m = h.mutations();
    h.until_verified("await-restore", &v, &[]).await;
    assert_eq!(h.mutations(), m, "made writable once");
}

/// Issue 12.9: a lost region behind an ingress answering 404 is still refused, with the evidence
/// shown; an explicit override naming exactly that answer lets the failover go on, journaled
/// and in the plan the approver sees.
#[tokio::test]
async fn a_404_from_the_lost_region_can_be_accepted_by_an_explicit_recorded_override() {
    let h = H::new();
    h.api.lose(1);
    h.api.lock().lost_gateway_error =
        Some(super::api::ApiError::new(super::api::ApiErrorKind::NotFound, Some(404), "404 page not found"));
    match h.run("assess-failover", failover_vars(), &[]).await {
        StepOutcome::Refused { code: "SPLIT_BRAIN_RISK", message, variables, .. } => {
            assert_eq!(variables["lostRegionCheck"]["answer"], json!("HTTP 404"));
            assert_eq!(variables["lostRegionCheck"]["overridable"], json!(true));
            assert!(message.contains("lostRegionOverride"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // an override for another answer does not open the gate
    let mut v = failover_vars();
    v["lostRegionOverride"] = json!({"acceptAnswer": "HTTP 401", "reason": "ingress default backend"});
    assert_eq!(code(&h.run("remove-brokers", v.clone(), &[]).await), "SPLIT_BRAIN_RISK");
    // a malformed one is bad input
    v["lostRegionOverride"] = json!({"acceptAnswer": "404"});
    assert_eq!(code(&h.run("assess-failover", v.clone(), &[]).await), "INVALID_INPUT");
    assert_eq!(h.mutations(), 0);
    v["lostRegionOverride"] =
        json!({"acceptAnswer": "HTTP 404", "reason": "ingress default backend; region confirmed down by on-call"});
    let plan = done(h.run("assess-failover", v.clone(), &[]).await, "assess");
    assert_eq!(plan["plan"]["lostRegionCheck"]["answer"], json!("HTTP 404"));
    assert_eq!(
        plan["plan"]["lostRegionCheck"]["override"]["reason"],
        json!("ingress default backend; region confirmed down by on-call")
    );
    done(h.run("remove-brokers", v.clone(), &[]).await, "remove");
    assert_eq!(h.mutations(), 1);
    let journal = std::fs::read_to_string(h._dir.path().join("journal.jsonl")).unwrap();
    assert!(journal.contains("split-brain-check-override") && journal.contains("confirmed down by on-call"));
    // a management API that lists brokers is never overridable
    let h2 = H::new();
    let o = h2.run("assess-failover", v, &[]).await;
    assert_eq!(code(&o), "SPLIT_BRAIN_RISK");
}

/// Issue 12.5: brokers of another version in the recreated region are not re-added.
#[tokio::test]
async fn a_broker_version_mismatch_stops_the_addition() {
    let h = H::new();
    failover(&h).await;
    let v = failback_vars();
    h.api.start_brokers(1, 8);
    for b in [1, 3, 5, 7] {
        h.api.lock().broker_versions.insert(b, "8.8.3".into());
    }
    for b in [0, 2, 4, 6] {
        h.api.lock().broker_versions.insert(b, "8.8.5".into());
    }
    let m = h.mutations();
    match h.run("add-brokers", v.clone(), &[]).await {
        StepOutcome::Refused { code: "PRECONDITION_FAILED", message, variables, .. } => {
            assert!(message.contains("8.8.3") && message.contains("8.8.5"), "{message}");
            assert_eq!(variables["brokerVersions"]["recreated"]["8.8.3"], json!([1, 3, 5, 7]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.mutations(), m);
}

// ---- issue 11: rollouts, stuck brokers, drills on real targets -------------------------------

fn rolling() -> crate::platform::Rollout {
    crate::platform::Rollout {
        generation: 3,
        observed_generation: 3,
        replicas: 4,
        updated_replicas: 2,
        ready_replicas: 3,
        current_revision: "camunda-zeebe-a".into(),
        update_revision: "camunda-zeebe-b".into(),
    }
}

/// Issue 11.3: the ConfigMap changes when `helm upgrade` returns; verify-profiles waits for the
/// StatefulSet's rollout and for every pod's profiles.
#[tokio::test]
async fn verify_profiles_waits_for_the_rollout() {
    let h = H::new();
    // (no recreated region: the exporter re-disable of a failback is tested elsewhere)
    let v = json!({"survivingRegion": 0});
    done(h.run("helm", v.clone(), &[("action", "disable-webapps"), ("region", "surviving")]).await, "helm off");
    {
        // the upgrade is applied (ConfigMap, profiles of the updated pods) but pods still roll
        let mut st = h.plat.status.lock().unwrap();
        st[0].rollout = Some(rolling());
        st[0].pods[1].ready = false;
        st[0].pods[1].phase = "Running".into();
        st[0].pods[1].not_ready_since = Some(chrono::Utc::now());
    }
    let hdr = [("region", "surviving"), ("expect", "webapps-off")];
    let r = done(h.run("verify-profiles", v.clone(), &hdr).await, "while rolling");
    assert_eq!(r["verified"], json!(false), "{r:?}");
    assert_eq!(r["rollout"]["0"], json!("2/4 updated, 3/4 ready, revision camunda-zeebe-a -> camunda-zeebe-b"));
    assert_eq!(r["podsNotReady"]["0"], json!(["camunda-zeebe-1"]));
    assert_eq!(r["stuckBrokers"], json!([]), "not ready for seconds is not stuck");
    // while rolling the pods disagree: unknown profiles are "not yet", not a failure
    h.plat.status.lock().unwrap()[0].profiles = None;
    let r = done(h.run("verify-profiles", v.clone(), &hdr).await, "pods disagree while rolling");
    assert_eq!(r["verified"], json!(false));
    // the rollout ends
    {
        let mut st = h.plat.status.lock().unwrap();
        st[0].rollout = Some(super::fake::rollout_done(4, "camunda-zeebe-b"));
        st[0].profiles = Some(vec!["broker".into()]);
        st[0].pods = super::fake::pods(&["broker"]);
    }
    let r = done(h.run("verify-profiles", v.clone(), &hdr).await, "rolled");
    assert_eq!(r["verified"], json!(true), "{r:?}");
    assert_eq!(r["rollout"]["0"], json!("4/4 updated, 4/4 ready"));
    // a rollout that cannot be read is never "done"
    h.plat.status.lock().unwrap()[0].rollout = None;
    match h.run("verify-profiles", v.clone(), &hdr).await {
        StepOutcome::Retry { message } => {
            assert!(message.contains("rollout of StatefulSet camunda-zeebe in region 0 cannot be read"), "{message}")
        }
        other => panic!("unknown rollout must fail the job: {other:?}"),
    }
}

/// Issue 11.2: a complete rollout whose pods' profiles cannot be read fails closed (the job fails,
/// its retries end in an incident) and the message names the pod and the fix.
#[tokio::test]
async fn unknown_profiles_with_a_complete_rollout_fail_the_job_naming_the_pod() {
    let h = H::new();
    let v = failback_vars();
    {
        let mut st = h.plat.status.lock().unwrap();
        st[0].profiles = None;
        st[0].pods[2].profiles = None;
    }
    match h.run("verify-profiles", v.clone(), &[("region", "surviving"), ("expect", "webapps-on")]).await {
        StepOutcome::Retry { message } => {
            assert!(message.contains("pod(s) camunda-zeebe-2 cannot be read"), "{message}");
            assert!(message.contains("kubectl logs camunda-zeebe-2 -n camunda-a"), "{message}");
        }
        other => panic!("unknown profiles must fail the job: {other:?}"),
    }
}

/// Issue 11.3: pause and resume never run while a broker restarts (on 8.8 they fail then); the
/// job fails (retried) with the rollout's progress and makes no call; a manual platform skips
/// the guard, an unobservable one never acts.
#[tokio::test]
async fn pause_and_resume_wait_for_a_rollout_without_calling_the_api() {
    let h = H::new();
    let v = failback_vars();
    h.plat.status.lock().unwrap()[1].rollout = Some(rolling());
    for step in ["pause-exporting", "resume-exporting"] {
        match h.run(step, v.clone(), &[]).await {
            StepOutcome::Retry { message } => assert_eq!(
                message,
                format!(
                    "rollout of camunda-zeebe in region 1 in progress: 2/4 updated, 3/4 ready, revision camunda-zeebe-a -> camunda-zeebe-b; exporting is {} after it",
                    if step == "pause-exporting" { "paused" } else { "resumed" }
                )
            ),
            other => panic!("{step} during a rollout: {other:?}"),
        }
    }
    assert_eq!(h.mutations(), 0, "no pause/resume call during a rollout");
    // unknown rollout of a running region: never act
    h.plat.status.lock().unwrap()[1].rollout = None;
    assert_eq!(code(&h.run("pause-exporting", v.clone(), &[]).await), "RETRY");
    assert_eq!(h.mutations(), 0);
    // a region without a release does not roll
    h.plat.status.lock().unwrap()[1] = Default::default();
    h.act_once("pause-exporting", &v, &[]).await;
    // a manual platform: a person ran the helm step and verified the rollout
    h.plat.status.lock().unwrap()[0].rollout = Some(rolling());
    h.plat.manual.store(true, std::sync::atomic::Ordering::SeqCst);
    h.act_once("resume-exporting", &v, &[]).await;
}

fn stuck_pod(h: &H, region: usize, pod: usize, minutes: i64) {
    let mut st = h.plat.status.lock().unwrap();
    let p = &mut st[region].pods[pod];
    p.ready = false;
    p.not_ready_since = Some(chrono::Utc::now() - chrono::Duration::minutes(minutes));
}

/// Issue 11.5: brokers Running but not Ready for `kubernetes.stuck_after_secs` are listed.
#[tokio::test]
async fn verify_profiles_lists_stuck_brokers() {
    let h = H::new();
    let v = failback_vars();
    stuck_pod(&h, 0, 3, 12);
    stuck_pod(&h, 1, 0, 1); // under the threshold (300 s)
    {
        let mut st = h.plat.status.lock().unwrap();
        st[0].rollout = Some(rolling());
    }
    let r = done(h.run("verify-profiles", v, &[("region", "both"), ("expect", "webapps-on")]).await, "verify");
    assert_eq!(r["verified"], json!(false));
    let stuck = r["stuckBrokers"].as_array().unwrap();
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(stuck[0]["region"], json!(0));
    assert_eq!(stuck[0]["pod"], json!("camunda-zeebe-3"));
    assert_eq!(stuck[0]["minutes"], json!(12));
    assert!(stuck[0]["notReadySince"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["podsNotReady"]["1"], json!(["camunda-zeebe-0"]));
}

fn restart_vars(approved: Value, pods: &[(u8, &str)]) -> Value {
    let list: Vec<Value> = pods.iter().map(|(r, p)| json!({"region": r, "pod": p, "minutes": 12})).collect();
    json!({"recreatedRegion": 1, "survivingRegion": 0, "restartApproved": approved, "stuckBrokers": list})
}

/// Issue 9.7: a restart announced without outcome: when the pod is still the one the intent saw
/// (same Ready transition), the deletion did not happen and is made once; when the pod changed,
/// it was deleted: it is never deleted twice.
#[tokio::test]
async fn an_announced_restart_is_made_only_when_the_pod_is_still_the_one_seen() {
    let fact = super::record::variable_name("restart-7-r0-camunda-zeebe-1");
    let v = restart_vars(json!(true), &[(0, "camunda-zeebe-1")]);
    let h = H::new();
    stuck_pod(&h, 0, 1, 20);
    let seen = {
        let st = h.plat.status.lock().unwrap();
        let p = &st[0].pods[1];
        json!({"uid": p.uid, "phase": p.phase, "ready": p.ready, "notReadySince": p.not_ready_since})
    };
    h.rec.set(&fact, intent(super::stuck::RESTART_ACTION, "c8dr.restart-stuck-brokers", Some(seen.clone())));
    done(h.run("restart-stuck-brokers", v.clone(), &[]).await, "restart");
    assert_eq!(h.plat.restart_calls.lock().unwrap().len(), 1, "not deleted before: deleted once");
    // the same name and state but another pod instance (uid), or the pod seen being deleted
    // (terminating): the deletion happened; not deleted again
    for (uid, terminating) in [(json!("uid-camunda-zeebe-1-9"), false), (seen["uid"].clone(), true)] {
        let mut h = H::new();
        // the step awaits the restarted pod's readiness once, then fails the job (retried)
        h.target.kubernetes.pod_ready_timeout_secs = 0;
        stuck_pod(&h, 0, 1, 20);
        let mut recorded = seen.clone();
        {
            let mut st = h.plat.status.lock().unwrap();
            let p = &mut st[0].pods[1];
            p.terminating = terminating;
            recorded["notReadySince"] = json!(p.not_ready_since);
        }
        recorded["uid"] = uid.clone();
        h.rec.set(&fact, intent(super::stuck::RESTART_ACTION, "c8dr.restart-stuck-brokers", Some(recorded)));
        let o = h.run("restart-stuck-brokers", v.clone(), &[]).await;
        assert!(
            matches!(&o, StepOutcome::Retry { message } if message.contains("not restarted again")),
            "uid {uid}, terminating {terminating}: {o:?}"
        );
        assert!(h.plat.restart_calls.lock().unwrap().is_empty(), "uid {uid}, terminating {terminating}: deleted twice");
    }
    // the pod was deleted (it is another pod now, stuck since later): not deleted again
    let h = H::new();
    stuck_pod(&h, 0, 1, 5);
    let mut old = seen;
    old["notReadySince"] = json!((chrono::Utc::now() - chrono::Duration::minutes(30)).to_rfc3339());
    h.rec.set(&fact, intent(super::stuck::RESTART_ACTION, "c8dr.restart-stuck-brokers", Some(old)));
    {
        let mut st = h.plat.status.lock().unwrap();
        st[0].pods[1].ready = true;
    }
    let r = done(h.run("restart-stuck-brokers", v, &[]).await, "restart");
    assert!(h.plat.restart_calls.lock().unwrap().is_empty(), "never deleted twice");
    assert_eq!(r["brokersRestarted"], json!([{"region": 0, "pod": "camunda-zeebe-1"}]));
}

/// Issue 11.5: one pod at a time, each Ready before the next; healthy pods are skipped; every
/// restart is journaled; nothing to restart is alreadyDone.
#[tokio::test]
async fn stuck_brokers_are_restarted_one_at_a_time_and_healthy_ones_skipped() {
    let h = H::new();
    stuck_pod(&h, 0, 1, 20);
    stuck_pod(&h, 1, 2, 20);
    // shown as stuck, but it recovered before the restart
    let v = restart_vars(json!(true), &[(1, "camunda-zeebe-2"), (0, "camunda-zeebe-1"), (0, "camunda-zeebe-3")]);
    let r = done(h.run("restart-stuck-brokers", v.clone(), &[]).await, "restart");
    assert_eq!(
        h.plat.restart_calls.lock().unwrap().as_slice(),
        &[(0, "camunda-zeebe-1".to_string()), (1, "camunda-zeebe-2".to_string())]
    );
    assert_eq!(
        r["brokersRestarted"],
        json!([{"region": 0, "pod": "camunda-zeebe-1"}, {"region": 1, "pod": "camunda-zeebe-2"}])
    );
    assert_eq!(r["brokersSkipped"], json!([{"region": 0, "pod": "camunda-zeebe-3"}]));
    let journaled: Vec<_> = h
        .journal
        .for_instance(h.pik)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == super::stuck::RESTART_ACTION)
        .map(|e| (e.region, e.request))
        .collect();
    assert_eq!(
        journaled,
        vec![(Some(0), "delete pod camunda-zeebe-1".to_string()), (Some(1), "delete pod camunda-zeebe-2".to_string())]
    );
    // all healthy now: nothing to do
    let mut h2_input = v.clone();
    h2_input["stuckBrokers"] = json!([{"region": 0, "pod": "camunda-zeebe-0"}]);
    match h.run("restart-stuck-brokers", h2_input, &[]).await {
        StepOutcome::Done { already_done: true, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.plat.restart_calls.lock().unwrap().len(), 2);
}

/// Issue 11.5: the first pod restarted does not become Ready in time: the job fails before the
/// next pod is touched; its retry (same job, after a crash or the timeout) never deletes the
/// first pod again, even when the platform still shows it stuck.
#[tokio::test]
async fn the_instance_record_prevents_a_second_restart_of_a_pod_after_a_crash() {
    let mut h = H::new();
    h.target.kubernetes.pod_ready_timeout_secs = 0;
    stuck_pod(&h, 0, 1, 20);
    stuck_pod(&h, 0, 3, 20);
    h.plat.restart_heals.store(false, std::sync::atomic::Ordering::SeqCst);
    let v = restart_vars(json!(true), &[(0, "camunda-zeebe-1"), (0, "camunda-zeebe-3")]);
    for i in 0..2 {
        if i == 1 {
            // the retry runs on another replica, with its own empty journal: the record decides
            h.journal = Journal::new(h._dir.path().join("replica-2.jsonl"));
        }
        match h.run("restart-stuck-brokers", v.clone(), &[]).await {
            StepOutcome::Retry { message } => {
                assert!(message.contains("camunda-zeebe-1") && message.contains("not Ready"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        h.plat.restart_calls.lock().unwrap().as_slice(),
        &[(0, "camunda-zeebe-1".to_string())],
        "one at a time, once"
    );
    // the pod comes back; the retry goes on with the next one
    h.plat.restart_heals.store(true, std::sync::atomic::Ordering::SeqCst);
    {
        let mut st = h.plat.status.lock().unwrap();
        st[0].pods[1].ready = true;
        st[0].pods[1].not_ready_since = None;
    }
    let r = done(h.run("restart-stuck-brokers", v.clone(), &[]).await, "retry");
    assert_eq!(
        h.plat.restart_calls.lock().unwrap().as_slice(),
        &[(0, "camunda-zeebe-1".to_string()), (0, "camunda-zeebe-3".to_string())]
    );
    assert_eq!(r["brokersRestarted"].as_array().unwrap().len(), 2);
}

/// The process's gate decides; the job refuses without an explicit approval (second lock), and
/// a bad `stuckBrokers` names the field; neither restarts anything.
#[tokio::test]
async fn restart_without_approval_or_with_a_bad_list_restarts_nothing() {
    let h = H::new();
    stuck_pod(&h, 0, 1, 20);
    for approved in [json!(false), Value::Null, json!("yes")] {
        let o = h.run("restart-stuck-brokers", restart_vars(approved, &[(0, "camunda-zeebe-1")]), &[]).await;
        assert_eq!(code(&o), "PRECONDITION_FAILED");
    }
    let mut bad = restart_vars(json!(true), &[(0, "camunda-zeebe-1")]);
    bad["stuckBrokers"][0]["pod"] = json!("x; rm -rf /");
    match h.run("restart-stuck-brokers", bad, &[]).await {
        StepOutcome::Refused { code: "INVALID_INPUT", field, .. } => assert_eq!(field.as_deref(), Some("stuckBrokers")),
        other => panic!("{other:?}"),
    }
    assert!(h.plat.restart_calls.lock().unwrap().is_empty());
}

/// Issue 11.6: a platform that refuses a drill (namespace not labelled, production marker) is
/// DRILL_NOT_ALLOWED with its message, without any mutation; a recreate that needs nothing
/// completes; the journal does not pretend to call a lab URL.
#[tokio::test]
async fn a_refused_drill_is_drill_not_allowed_without_mutations() {
    let h = H::new();
    let v = json!({"lostRegion": 1});
    let msg = "namespace camunda-b is not labelled c8dr.io/drill=allowed: label it to allow drills";
    *h.plat.refuse_drill.lock().unwrap() = Some(msg.into());
    match h.run("drill-region", v.clone(), &[("action", "lose")]).await {
        StepOutcome::Refused { code, message, .. } => {
            assert_eq!(code, "DRILL_NOT_ALLOWED");
            assert_eq!(message, msg);
        }
        other => panic!("{other:?}"),
    }
    assert!(h.plat.control_calls.lock().unwrap().is_empty(), "nothing lost");
    assert_eq!(h.mutations(), 0);
    assert!(h.journal.for_instance(h.pik).unwrap().iter().all(|e| e.kind != super::journal::EntryKind::Call));
    *h.plat.refuse_drill.lock().unwrap() = None;
    done(h.run("drill-region", v.clone(), &[("action", "lose")]).await, "lose");
    let r = done(h.run("drill-region", v.clone(), &[("action", "recreate")]).await, "recreate");
    assert!(r["regionRecreatedAt"].is_string());
    let requests: Vec<String> = h
        .journal
        .for_instance(h.pik)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == super::journal::EntryKind::Call)
        .map(|e| e.request)
        .collect();
    assert_eq!(requests, vec!["drill lose region 1".to_string(), "drill recreate region 1".to_string()]);
}

/// Issue 11.5: the recreated region's brokers that do not join because they are stuck
/// Running-not-Ready are listed while they are not visible.
#[tokio::test]
async fn await_brokers_visible_lists_stuck_recreated_brokers() {
    let h = H::new();
    h.api.lose(1);
    stuck_pod(&h, 1, 0, 15);
    let r = done(h.run("await-brokers-visible", failback_vars(), &[]).await, "await");
    assert_eq!(r["verified"], json!(false));
    let stuck = r["stuckBrokers"].as_array().unwrap();
    assert_eq!(stuck.len(), 1, "{r:?}");
    assert_eq!((stuck[0]["region"].clone(), stuck[0]["pod"].clone()), (json!(1), json!("camunda-zeebe-0")));
    // an unobservable platform lists none (information only, the check itself is unchanged)
    h.plat.manual.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = done(h.run("await-brokers-visible", failback_vars(), &[]).await, "manual");
    assert_eq!(r["stuckBrokers"], json!([]));
}

/// Issue 9.7: a job's variables are a snapshot taken at its activation; a check observed again
/// within the same attempt (the watch) must still see the records this job set, or it would
/// take its own enable for a foreign one and undo it (found by the legacy-exporter rehearsal:
/// verify-exporters enabled the legacy exporter, then disabled and enabled it again).
#[tokio::test]
async fn a_record_set_by_this_job_is_seen_by_its_later_observations() {
    let h = H::new();
    let input = StepInput {
        target_name: "lab".into(),
        step: "c8dr.verify-exporters".into(),
        element_instance_key: 7,
        ..Default::default()
    };
    let env = StepEnv {
        input: &input,
        target: &h.target,
        api: &h.api,
        platform: &h.plat,
        drill: &h.plat,
        journal: &h.journal,
        recorder: &h.rec,
        written: Default::default(),
    };
    let fact = "exporter-elasticsearchregion1";
    assert_eq!(env.recorded(fact).unwrap(), None);
    let intent = env.record_intent(fact, 0, "enable-exporter", "POST x", None).await.unwrap();
    assert!(env.recorded(fact).unwrap().is_some_and(|r| r.unknown()));
    env.record_outcome(intent, "ok", "accepted").await.unwrap();
    let r = env.recorded(fact).unwrap().expect("seen within the job");
    assert!(r.succeeded() && r.action == "enable-exporter");
    assert!(!input.variables.contains_key(&super::record::variable_name(fact)), "the snapshot is unchanged");
    assert!(h.rec.variables().contains_key(&super::record::variable_name(fact)), "and it is on the instance");
}

/// The step table runs every job type it lists, and only those: a region variable that is not 0
/// or 1 is INVALID_INPUT naming it, before the step runs (nothing mutated), for every step whose
/// typed input reads regions; an unknown job type is refused naming `jobType`.
#[tokio::test]
async fn the_step_table_parses_typed_inputs_before_any_step_runs() {
    use super::steps::STEPS;
    let h = H::new();
    let bad = json!({"lostRegion": 7, "recreatedRegion": 7, "survivingRegion": 7, "changeId": 1, "snapshotName": "s"});
    let mut no_regions = Vec::new();
    for spec in STEPS {
        let step = spec.job_type.trim_start_matches("c8dr.");
        // valid headers, so that only the variables are wrong
        let expect = if step == "verify-profiles" { "webapps-off" } else { "full" };
        let action = match step {
            "helm" => "disable-webapps",
            "drill-canaries" => "check",
            _ => "lose",
        };
        let headers = [("action", action), ("region", "surviving"), ("expect", expect), ("process", "failover")];
        match h.run(step, bad.clone(), &headers).await {
            StepOutcome::Refused { code: "INVALID_INPUT", field: Some(f), message, .. } if f.ends_with("Region") => {
                assert!(message.contains("must be the region number 0 or 1, got 7"), "{step}: {message}");
            }
            StepOutcome::Refused { code: "INVALID_INPUT", field: Some(f), .. } if f == "jobType" => {
                panic!("{step} is in the table but does not run")
            }
            _ => no_regions.push(step),
        }
    }
    assert_eq!(no_regions, ["restart-stuck-brokers", "drill-guard", "notify", "report", "approval-guard"]);
    assert_eq!(h.mutations(), 0);
    match h.run("no-such-step", json!({}), &[]).await {
        StepOutcome::Refused { code: "INVALID_INPUT", field: Some(f), .. } => assert_eq!(f, "jobType"),
        other => panic!("{other:?}"),
    }
}
