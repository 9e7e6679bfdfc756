//! The failback's stuck-broker gate (issue 11.5), driven job by job on the rehearsal engine: only
//! an explicit `restartApproved = true` runs c8dr.restart-stuck-brokers; a no or a missing answer
//! restarts nothing, is reported, and the verification loop waits on.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "engine_support/mod.rs"]
mod support;

use c8dr::gateway_protocol::gateway_client::GatewayClient;
use c8dr::rehearsal::engine::EngineHandle;
use serde_json::{Value, json};
use support::*;
use tonic::transport::Channel;

const FORM: &str = "c8dr-stuck-brokers";
const RESTART: &str = "c8dr.restart-stuck-brokers";

fn inputs() -> Value {
    json!({
        "target": "prod", "survivingRegion": 0, "recreatedRegion": 1, "autoApprove": true,
        "approverGroup": "dr-operators", "approvalDue": "PT1H", "reminderAfter": "PT15M",
        "verifyInterval": "PT1H", "changeTimeout": "PT2H", "snapshotTimeout": "PT30M",
        "restoreTimeout": "PT60M", "brokersVisibleTimeout": "PT20M", "pausedWindowTimeout": "PT30M",
        "startedAt": "2026-01-01T00:00:00Z"
    })
}

fn stuck_check() -> Value {
    json!({
        "verified": false,
        "rollout": {"0": "3/4 updated, 3/4 ready, revision camunda-zeebe-a -> camunda-zeebe-b"},
        "podsNotReady": {"0": ["camunda-zeebe-1"]},
        "stuckBrokers": [{"region": 0, "pod": "camunda-zeebe-1", "notReadySince": "2026-01-01T00:00:00Z", "minutes": 12}]
    })
}

/// Runs a failback up to the first "Verify webapps off" check.
async fn to_webapps_off_check(client: &mut GatewayClient<Channel>) -> i64 {
    let pi = create(client, "dr-failback", json!({"target": "prod", "recreatedRegion": 1})).await;
    let job = activate_one(client, "c8dr.validate-input").await;
    complete(client, job.key, inputs()).await;
    let job = activate_one(client, "c8dr.preflight-recreated").await;
    complete(client, job.key, json!({"preflight": {}})).await;
    let job = activate_one(client, "c8dr.helm").await;
    assert!(job.custom_headers.contains("deploy-recreated"), "{}", job.custom_headers);
    complete(client, job.key, json!({})).await;
    let job = activate_one(client, "c8dr.await-brokers-visible").await;
    complete(client, job.key, json!({"verified": true})).await;
    let job = activate_one(client, "c8dr.helm").await;
    assert!(job.custom_headers.contains("disable-webapps"), "{}", job.custom_headers);
    complete(client, job.key, json!({})).await;
    pi
}

fn open_stuck_task(engine: &EngineHandle, pi: i64) -> Option<i64> {
    engine
        .open_user_tasks()
        .into_iter()
        .find(|t| t.process_instance_key == pi && t.form_id.as_deref() == Some(FORM))
        .map(|t| t.key)
}

async fn answer(engine: &EngineHandle, pi: i64, vars: Value) {
    let key = engine
        .wait_for(WAIT, |h| {
            h.open_user_tasks()
                .into_iter()
                .find(|t| t.process_instance_key == pi && t.form_id.as_deref() == Some(FORM))
                .map(|t| t.key)
        })
        .await
        .expect("the stuck-brokers question");
    engine.complete_user_task(key, vars.as_object().cloned().unwrap()).unwrap();
}

#[tokio::test]
async fn a_no_restarts_nothing_is_not_asked_again_in_the_loop_and_is_reported() {
    let (engine, mut client) = start(1.0).await;
    engine.deploy_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn"))).unwrap();
    let pi = to_webapps_off_check(&mut client).await;
    let check = activate_one(&mut client, "c8dr.verify-profiles").await;
    complete(&mut client, check.key, stuck_check()).await;
    answer(&engine, pi, json!({"restartApproved": false, "comment": "waiting for the DNS fix"})).await;
    assert!(activate(&mut client, RESTART, 1, -1).await.is_empty(), "a no restarts nothing");
    // the loop checks again and, the answer being no, waits on without asking again
    let check = activate_one(&mut client, "c8dr.verify-profiles").await;
    complete(&mut client, check.key, stuck_check()).await;
    assert_eq!(open_stuck_task(&engine, pi), None, "asked once per loop");
    assert!(activate(&mut client, RESTART, 1, -1).await.is_empty());
    let reason = engine.variables(pi)["stuckRestartReason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("declined") && reason.contains("waiting for the DNS fix"), "{reason}");
    engine.shutdown();
}

#[tokio::test]
async fn only_an_explicit_yes_restarts_and_an_earlier_yes_does_not_count_for_a_missing_answer() {
    let (engine, mut client) = start(1.0).await;
    engine.deploy_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn"))).unwrap();
    let pi = to_webapps_off_check(&mut client).await;
    let check = activate_one(&mut client, "c8dr.verify-profiles").await;
    complete(&mut client, check.key, stuck_check()).await;
    answer(&engine, pi, json!({"restartApproved": true, "comment": "go"})).await;
    let restart = activate_one(&mut client, RESTART).await;
    let v = vars_of(&restart);
    assert_eq!(v["restartApproved"], json!(true));
    assert_eq!(v["stuckBrokers"][0]["pod"], json!("camunda-zeebe-1"));
    complete(&mut client, restart.key, json!({"brokersRestarted": [{"region": 0, "pod": "camunda-zeebe-1"}]})).await;
    // checked again right after the restart; still stuck: asked again
    let check = activate_one(&mut client, "c8dr.verify-profiles").await;
    complete(&mut client, check.key, stuck_check()).await;
    // a missing answer (the form's box not sent): the earlier yes must not count
    answer(&engine, pi, json!({})).await;
    assert!(activate(&mut client, RESTART, 1, -1).await.is_empty(), "a missing answer restarts nothing");
    let reason = engine.variables(pi)["stuckRestartReason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("no valid answer") && reason.contains("nothing was restarted"), "{reason}");
    let check = activate_one(&mut client, "c8dr.verify-profiles").await;
    complete(&mut client, check.key, json!({"verified": true, "stuckBrokers": []})).await;
    // the loop is done: the failback goes on to pause exporting
    let pause = activate_one(&mut client, "c8dr.pause-exporting").await;
    assert_eq!(pause.r#type, "c8dr.pause-exporting");
    engine.shutdown();
}
