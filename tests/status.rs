//! `c8dr status` against the lab: a lost region shows as unreachable (never healthy), the
//! surviving one with its brokers and partitions, an unreachable management Camunda as unknown
//! (not "no process running"), and the journal's paused exporting and last drill.
#![cfg(feature = "rehearsal")] // needs the simulator (lab)
use c8dr::config::{Config, JournalConfig, ManagementConfig};
use c8dr::procedure::journal::{EntryKind, Journal, JournalEntry};
use c8dr::rehearsal::lab::{Lab, LabDurations, LabOptions};
use serde_json::Value;
use std::process::Command;

#[path = "engine_support/mod.rs"]
mod support;

fn entry(kind: EntryKind, pik: i64, step: &str, action: &str, secs: i64, region: Option<u8>) -> JournalEntry {
    JournalEntry {
        time: chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
        kind,
        target: "lab".into(),
        step: step.into(),
        element_id: step.trim_start_matches("c8dr.").into(),
        process_instance_key: pik,
        job_key: 1,
        worker: "w".into(),
        region,
        action: action.into(),
        request: String::new(),
        status: if kind == EntryKind::Call { "ok".into() } else { String::new() },
        message: String::new(),
    }
}

fn status(config: &std::path::Path, human: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_c8dr"));
    cmd.args(["--config", config.to_str().unwrap(), "status", "--target", "lab"]);
    if !human {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("c8dr runs");
    assert!(out.status.code().is_some(), "c8dr status was killed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty() || human, "stderr: {stderr}");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_lost_region_as_unreachable_and_the_journal_state() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal.jsonl");
    // nothing listens on this port: the management Camunda is unreachable
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = Config {
        management: ManagementConfig {
            rest_address: format!("http://127.0.0.1:{closed_port}"),
            request_timeout_ms: 2_000,
            ..Default::default()
        },
        journal: JournalConfig { path: journal_path.clone() },
        ..Default::default()
    };
    config.targets.insert("lab".into(), lab.target_config());
    let config_path = dir.path().join("c8dr.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();

    // healthy lab, empty journal
    let (code, out) = status(&config_path, false);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, Some(0), "{out}");
    for r in 0..2 {
        assert_eq!(v["regions"][r]["reachable"], true, "{out}");
        assert_eq!(v["regions"][r]["rest"]["partitionsWithHealthyLeader"], v["regions"][r]["rest"]["partitionsCount"]);
    }
    assert_eq!(v["runningProcesses"]["reachable"], false, "{out}");
    assert!(v["lastDrill"].is_null());

    // a drill lost region 1 and paused exporting in region 0; a failover then reported
    let j = Journal::new(journal_path);
    j.append(&entry(EntryKind::Call, 7, "c8dr.drill-region", "drill-lose-region", 0, Some(1))).unwrap();
    j.append(&entry(EntryKind::Call, 8, "c8dr.remove-brokers", "force-remove-brokers", 30, Some(0))).unwrap();
    j.append(&entry(EntryKind::Outcome, 8, "c8dr.report", "done", 95, None)).unwrap();
    j.append(&entry(EntryKind::Call, 9, "c8dr.pause-exporting", "pause-exporting", 200, Some(0))).unwrap();
    lab.lose_region(1).await.unwrap();

    let (code, out) = status(&config_path, false);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(code, Some(2), "a region that cannot be read is not a success: {out}");
    let lost = &v["regions"][1];
    assert_eq!(lost["reachable"], false, "{out}");
    assert_eq!(lost["management"]["reachable"], false, "{out}");
    assert!(!lost["management"]["error"].as_str().unwrap_or("").is_empty(), "{out}");
    assert_eq!(lost["rest"]["reachable"], false, "{out}");
    assert!(lost["rest"].get("partitionsWithHealthyLeader").is_none(), "no health for an unreachable region: {out}");
    let surviving = &v["regions"][0];
    assert_eq!(surviving["management"]["reachable"], true, "{out}");
    // the survivor still lists the lost brokers as members until they are removed
    assert!(surviving["management"]["brokers"].as_array().unwrap().iter().any(|b| b["region"] == 1), "{out}");
    assert_eq!(v["exportingPaused"]["regions"][0]["paused"], true, "{out}");
    assert_eq!(v["exportingPaused"]["regions"][0]["processInstanceKey"], "9", "{out}");
    assert_eq!(v["exportingPaused"]["regions"][1]["paused"], false, "{out}");
    assert_eq!(v["lastDrill"]["processInstanceKey"], "7", "{out}");
    assert_eq!(v["lastDrill"]["recoveryTimeSeconds"], 95.0, "{out}");

    // and as a person reads it
    let (_, text) = status(&config_path, true);
    println!("{text}");
    assert!(text.contains("region 1") && text.contains("UNREACHABLE"), "{text}");
    assert!(text.contains("running DR processes: UNKNOWN"), "{text}");
    assert!(text.contains("recovery time 95.0 s"), "{text}");
    lab.shutdown().await;
}

/// A process with one service task no worker takes: it stays at that step.
fn waiting_process(id: &str, task_name: &str) -> String {
    support::definitions(&format!(
        r#"<bpmn:process id="{id}" isExecutable="true"><bpmn:startEvent id="s"/>
<bpmn:serviceTask id="RemoveBrokers" name="{task_name}"><bpmn:extensionElements><zeebe:taskDefinition type="c8dr.remove-brokers" retries="3"/></bpmn:extensionElements></bpmn:serviceTask>
<bpmn:endEvent id="e"/>{}{}</bpmn:process>"#,
        support::flow("f1", "s", "RemoveBrokers"),
        support::flow("f2", "RemoveBrokers", "e"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_running_dr_process_and_its_current_step() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let (engine, mut client) = support::start(1.0).await;
    support::deploy(
        &mut client,
        "dr-failover.bpmn",
        &waiting_process("dr-failover", "Remove lost brokers from the Zeebe cluster"),
    )
    .await;
    support::deploy(&mut client, "other.bpmn", &waiting_process("other", "Not a DR step")).await;
    let failover = support::create(&mut client, "dr-failover", serde_json::json!({"target": "lab"})).await;
    support::create(&mut client, "other", serde_json::json!({})).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        management: ManagementConfig {
            rest_address: engine.rest_url(),
            grpc_address: engine.grpc_url(),
            ..Default::default()
        },
        journal: JournalConfig { path: dir.path().join("journal.jsonl") },
        ..Default::default()
    };
    config.targets.insert("lab".into(), lab.target_config());
    let config_path = dir.path().join("c8dr.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();

    let (_, out) = status(&config_path, false);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let p = &v["runningProcesses"];
    assert_eq!(p["reachable"], true, "{out}");
    let instances = p["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "only DR processes are listed: {out}");
    assert_eq!(instances[0]["process"], "dr-failover");
    assert_eq!(instances[0]["processInstanceKey"], failover.to_string());
    assert_eq!(instances[0]["currentSteps"][0]["elementId"], "RemoveBrokers", "{out}");
    let (_, text) = status(&config_path, true);
    println!("{text}");
    assert!(text.contains("now at: Remove lost brokers from the Zeebe cluster"), "{text}");
    lab.shutdown().await;
}
