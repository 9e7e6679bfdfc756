//! The rehearsal engine with Camunda's own clients: the stock Node SDK `@camunda8/sdk` 8.8
//! (installed with npm at test time, pinned in tests/node/package-lock.json; gRPC with its
//! default gzip compression, streaming workers, the REST clients with the 8.8 OpenAPI response
//! validation on), plus the gateway features it needs checked from Rust (gzip requests,
//! CreateProcessInstanceWithResult, PATCH /v2/jobs + incident resolution, `--log-format`).
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "node_support/mod.rs"]
mod node_support;
#[path = "engine_support/mod.rs"]
mod support;

use c8dr::gateway_protocol as pb;
use c8dr::gateway_protocol::gateway_client::GatewayClient;
use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::engine::{Engine, EngineOptions, InstanceState};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;
use tonic::codec::CompressionEncoding;

/// The SDK run: every step has its own 20 s limit inside the script; this bounds the whole.
const SDK_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_node_sdk_drives_the_engine() {
    let engine = Engine::start(EngineOptions { clock: Clock::real(), ..Default::default() }).await.unwrap();
    let env = vec![("GRPC", engine.grpc_addr().to_string()), ("REST", engine.rest_url())];
    let out = tokio::task::spawn_blocking(move || node_support::node("engine-sdk.mjs", &[], &env, SDK_TIMEOUT))
        .await
        .unwrap();
    engine.shutdown();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // the SDK may log to stdout: the result is the last line
    let last = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    let report: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("no result from the SDK script ({e}):\n{stdout}\nstderr:\n{stderr}"));
    let passed: Vec<&str> = report["passed"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    eprintln!("@camunda8/sdk against the rehearsal engine, passed:\n  {}", passed.join("\n  "));
    assert!(
        out.status.success() && report["failed"].as_array().is_some_and(Vec::is_empty),
        "failed: {report:#}\n{stderr}"
    );
    assert_eq!(passed.len(), 13, "{report:#}");
}

/// Zeebe's gateway takes gzip-compressed requests (the Node SDK always compresses); the
/// engine used to answer UNIMPLEMENTED.
#[tokio::test]
async fn gzip_compressed_requests_are_accepted_like_uncompressed_ones() {
    let (engine, mut plain) = start(100.0).await;
    let mut gzip = GatewayClient::connect(engine.grpc_url()).await.unwrap().send_compressed(CompressionEncoding::Gzip);
    deploy(&mut gzip, "one.bpmn", &one_task_process("one", "t.one")).await;
    let topology = gzip.topology(pb::TopologyRequest {}).await.expect("gzip request accepted").into_inner();
    assert_eq!(topology.cluster_size, 1);
    let pi = create(&mut gzip, "one", json!({"a": 1})).await;
    let job = activate_one(&mut plain, "t.one").await;
    complete(&mut gzip, job.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
}

#[tokio::test]
async fn create_process_instance_with_result_answers_when_the_instance_completes() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.one")).await;
    let mut waiting = client.clone();
    let call = tokio::spawn(async move {
        waiting
            .create_process_instance_with_result(pb::CreateProcessInstanceWithResultRequest {
                request: Some(pb::CreateProcessInstanceRequest {
                    bpmn_process_id: "one".into(),
                    version: -1,
                    variables: json!({"a": 1, "b": 2}).to_string(),
                    ..Default::default()
                }),
                request_timeout: 30_000,
                fetch_variables: vec!["a".into(), "done".into()],
            })
            .await
    });
    // the answer comes only after the job is completed
    let job = activate_one(&mut client, "t.one").await;
    assert!(!call.is_finished());
    complete(&mut client, job.key, json!({"done": true})).await;
    let r = call.await.unwrap().expect("result").into_inner();
    assert_eq!(r.bpmn_process_id, "one");
    assert_eq!(engine.instance_state(r.process_instance_key), Some(InstanceState::Completed));
    let vars: Value = serde_json::from_str(&r.variables).unwrap();
    assert_eq!(vars, json!({"a": 1, "done": true}), "only the fetched variables");

    // an instance that does not complete in time: DEADLINE_EXCEEDED, the instance goes on
    let err = client
        .create_process_instance_with_result(pb::CreateProcessInstanceWithResultRequest {
            request: Some(pb::CreateProcessInstanceRequest {
                bpmn_process_id: "one".into(),
                version: -1,
                ..Default::default()
            }),
            request_timeout: 1,
            fetch_variables: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err}");
}

/// Operate's way out of a JOB_NO_RETRIES incident: raise the retries (`PATCH /v2/jobs/{key}`),
/// then resolve the incident: the job is activatable again instead of a new incident.
#[tokio::test]
async fn raising_retries_over_rest_then_resolving_the_incident_reactivates_the_job() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.one")).await;
    let pi = create(&mut client, "one", json!({})).await;
    let job = activate_one(&mut client, "t.one").await;
    client
        .fail_job(pb::FailJobRequest {
            job_key: job.key,
            retries: 0,
            error_message: "boom".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let incident = engine.incidents().into_iter().find(|i| i.process_instance_key == pi).expect("incident");
    let http = reqwest::Client::new();
    let base = format!("{}/v2", engine.rest_url());
    let r = http
        .patch(format!("{base}/jobs/{}", job.key))
        .json(&json!({"changeset": {"retries": 2, "timeout": null}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let r = http.post(format!("{base}/incidents/{}/resolution", incident.key)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(engine.incidents().is_empty(), "the incident was re-created: {:?}", engine.incidents());
    let again = activate_one(&mut client, "t.one").await;
    assert_eq!(again.key, job.key);
    assert_eq!(again.retries, 2);
    complete(&mut client, again.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let inc: Value = http.get(format!("{base}/incidents/{}", incident.key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(inc["state"], "RESOLVED", "{inc}");

    // a bad changeset names the field
    let r = http.patch(format!("{base}/jobs/{}", job.key)).json(&json!({"changeset": {"retries": "two"}})).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("changeset.retries"));
}

/// `c8dr engine --log-format json` writes JSON log lines.
#[tokio::test]
async fn the_engine_command_honours_log_format_json() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_c8dr"))
        .args(["--log-format", "json", "engine", "--grpc-port", "0", "--rest-port", "0"])
        .env("RUST_LOG", "info")
        .env_remove("C8DR_LOG_FORMAT")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let read = async {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if v["fields"]["message"] == "rehearsal engine started" {
                return v;
            }
            seen.push(line);
        }
        panic!("the engine exited without its start line: {seen:?}");
    };
    let started = tokio::time::timeout(Duration::from_secs(60), read).await.expect("the engine's start line");
    let _ = child.start_kill();
    assert_eq!(started["level"], "INFO", "{started}");
}
