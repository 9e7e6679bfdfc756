//! The REST answers of the rehearsal engine and of the lab against Camunda's official 8.8
//! schemas (`@camunda/camunda-api-zod-schemas`, export `8.8`, installed with npm at test time:
//! see tests/node_support). Every answer given during an end-to-end rehearsal (engine and lab)
//! and during a sweep over every engine endpoint is recorded and validated by
//! tests/node/rest-schemas.mjs. Without npm or the npm registry this test FAILS.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "node_support/mod.rs"]
mod node_support;
#[path = "support/rehearsal.rs"]
mod rehearsal_support;
#[path = "engine_support/mod.rs"]
mod support;

use c8dr::rehearsal::engine::{RestExchange, record_rest_exchanges, take_rest_exchanges};
use c8dr::rehearsal::lab::{Lab, LabDurations, LabOptions};
use c8dr::rehearsal::run::{RehearseOptions, rehearse};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const NODE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the validator on `exchanges`; (exit ok, its JSON report).
async fn validate(exchanges: Vec<RestExchange>) -> (bool, Value) {
    tokio::task::spawn_blocking(move || {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_vec(&exchanges).unwrap()).unwrap();
        let out = node_support::node("rest-schemas.mjs", &[file.path().to_str().unwrap()], &[], NODE_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("validator output is not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
        });
        (out.status.success(), report)
    })
    .await
    .unwrap()
}

fn exchange(method: &str, path: &str, status: u16, body: Value) -> RestExchange {
    RestExchange {
        server: "synthetic",
        method: method.into(),
        path: path.into(),
        status,
        content_type: "application/json".into(),
        body: body.to_string(),
    }
}

fn user_task(assignee: Value) -> Value {
    json!({"items": [{
        "userTaskKey": "2251799813685260", "name": "Approve failover", "state": "CREATED", "assignee": assignee,
        "elementId": "approve", "elementInstanceKey": "2251799813685259", "candidateGroups": ["ops"],
        "candidateUsers": [], "processDefinitionId": "p", "processDefinitionKey": "2251799813685250",
        "processDefinitionVersion": 1, "processInstanceKey": "2251799813685255",
        "creationDate": "2026-01-01T00:00:00.000Z", "priority": 50, "tenantId": "<default>", "customHeaders": {}
    }], "page": {"totalItems": 1}})
}

/// The check must be able to fail: `assignee: null` (an optional string in 8.8) is caught, the
/// same answer without it passes.
#[tokio::test]
async fn the_validator_catches_null_in_an_optional_string() {
    let (ok, report) = validate(vec![exchange("POST", "/v2/user-tasks/search", 200, user_task(json!("ops-1")))]).await;
    assert!(ok, "a valid answer was rejected: {report}");
    assert_eq!(report["checked"], 1);

    let (ok, report) = validate(vec![exchange("POST", "/v2/user-tasks/search", 200, user_task(Value::Null))]).await;
    assert!(!ok, "null assignee passed: {report}");
    let issues = report["failures"][0]["issues"].to_string();
    assert!(issues.contains("items.0.assignee"), "{report}");

    // and a page cursor sent as null
    let mut body = user_task(json!("ops-1"));
    body["page"]["startCursor"] = Value::Null;
    let (ok, report) = validate(vec![exchange("POST", "/v2/user-tasks/search", 200, body)]).await;
    assert!(!ok, "null startCursor passed: {report}");
}

fn sweep_process() -> String {
    definitions(&format!(
        r#"<bpmn:process id="sweep" name="Sweep" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:userTask id="approve" name="Approve">
    <bpmn:extensionElements>
      <zeebe:userTask/>
      <zeebe:formDefinition formId="sweep-form"/>
      <zeebe:assignmentDefinition candidateGroups="ops"/>
    </bpmn:extensionElements>
  </bpmn:userTask>
  {t}
  <bpmn:endEvent id="e"/>
  {f1}{f2}{f3}
</bpmn:process>"#,
        t = task("work", "sweep.work", ""),
        f1 = flow("f1", "s", "approve"),
        f2 = flow("f2", "approve", "work"),
        f3 = flow("f3", "work", "e"),
    ))
}

const FORM: &str = r#"{"id":"sweep-form","type":"default","components":[{"key":"decision","type":"textfield"}]}"#;

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every engine endpoint, with user tasks open and completed, an incident open and resolved,
/// instances active and completed, and a few rejected requests (problem details).
async fn sweep_engine() -> BTreeSet<String> {
    use reqwest::Method;
    let (engine, mut client) = start(100.0).await;
    engine
        .deploy(vec![
            ("sweep.bpmn".into(), sweep_process().into_bytes()),
            ("sweep.form".into(), FORM.as_bytes().to_vec()),
        ])
        .unwrap();
    let base = format!("{}/v2", engine.rest_url());
    let (st, created) =
        call(Method::POST, format!("{base}/process-instances"), Some(json!({"processDefinitionId": "sweep"}))).await;
    assert_eq!(st, 200, "{created}");
    let pi = created["processInstanceKey"].as_str().unwrap().to_string();
    let (_, tasks) = call(Method::POST, format!("{base}/user-tasks/search"), Some(json!({}))).await;
    let ut = tasks["items"][0]["userTaskKey"].as_str().unwrap().to_string();
    call(Method::GET, format!("{base}/user-tasks/{ut}"), None).await;
    call(Method::GET, format!("{base}/user-tasks/{ut}/form"), None).await;
    call(Method::POST, format!("{base}/user-tasks/{ut}/variables/search"), Some(json!({}))).await;
    call(Method::POST, format!("{base}/process-instances/search"), Some(json!({}))).await;
    call(Method::GET, format!("{base}/process-instances/{pi}"), None).await;
    call(Method::POST, format!("{base}/element-instances/search"), Some(json!({}))).await;
    call(Method::POST, format!("{base}/process-definitions/search"), Some(json!({}))).await;
    call(Method::GET, format!("{base}/topology"), None).await;
    let (st, _) =
        call(Method::POST, format!("{base}/user-tasks/{ut}/assignment"), Some(json!({"assignee": "ops-1"}))).await;
    assert_eq!(st, 204);
    call(Method::POST, format!("{base}/user-tasks/search"), Some(json!({"filter": {"assignee": "ops-1"}}))).await;
    let (st, _) = call(
        Method::POST,
        format!("{base}/user-tasks/{ut}/completion"),
        Some(json!({"variables": {"decision": "ok"}})),
    )
    .await;
    assert_eq!(st, 204);
    // the job fails without retries: an incident
    let job = activate_one(&mut client, "sweep.work").await;
    client
        .fail_job(c8dr::gateway_protocol::FailJobRequest {
            job_key: job.key,
            retries: 0,
            error_message: "boom".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, incidents) = call(Method::POST, format!("{base}/incidents/search"), Some(json!({}))).await;
    let inc = incidents["items"][0]["incidentKey"].as_str().unwrap().to_string();
    call(Method::GET, format!("{base}/incidents/{inc}"), None).await;
    call(Method::POST, format!("{base}/element-instances/search"), Some(json!({}))).await;
    let (st, _) =
        call(Method::PATCH, format!("{base}/jobs/{}", job.key), Some(json!({"changeset": {"retries": 1}}))).await;
    assert_eq!(st, 204);
    let (st, _) = call(Method::POST, format!("{base}/incidents/{inc}/resolution"), None).await;
    assert_eq!(st, 204);
    let job = activate_one(&mut client, "sweep.work").await;
    complete(&mut client, job.key, json!({"done": true})).await;
    wait_state(&engine, pi.parse().unwrap(), c8dr::rehearsal::engine::InstanceState::Completed).await;
    call(Method::GET, format!("{base}/process-instances/{pi}"), None).await;
    call(Method::POST, format!("{base}/process-instances/search"), Some(json!({}))).await;
    call(Method::POST, format!("{base}/user-tasks/search"), Some(json!({}))).await;
    call(Method::GET, format!("{base}/user-tasks/{ut}"), None).await;
    call(Method::POST, format!("{base}/incidents/search"), Some(json!({}))).await;
    call(Method::GET, format!("{base}/incidents/{inc}"), None).await;
    call(Method::POST, format!("{base}/variables/search"), Some(json!({}))).await;
    call(Method::POST, format!("{base}/element-instances/search"), Some(json!({}))).await;
    call(
        Method::POST,
        format!("{base}/messages/publication"),
        Some(json!({"name": "nobody-waits", "correlationKey": "k", "timeToLive": 0})),
    )
    .await;
    // a second instance, cancelled
    let (_, created) =
        call(Method::POST, format!("{base}/process-instances"), Some(json!({"processDefinitionId": "sweep"}))).await;
    let pi2 = created["processInstanceKey"].as_str().unwrap().to_string();
    call(Method::POST, format!("{base}/process-instances/{pi2}/cancellation"), Some(json!({}))).await;
    call(Method::POST, format!("{base}/process-instances/search"), Some(json!({}))).await;
    // rejections: problem details
    call(Method::GET, format!("{base}/incidents/1"), None).await;
    call(Method::GET, format!("{base}/user-tasks/not-a-key"), None).await;
    call(Method::PATCH, format!("{base}/jobs/{}", job.key), Some(json!({}))).await;
    call(Method::POST, format!("{base}/process-instances"), Some(json!({}))).await;
    engine.shutdown();
    [
        "GET /v2/topology",
        "POST /v2/user-tasks/search",
        "GET /v2/user-tasks/{key}",
        "POST /v2/user-tasks/{key}/assignment",
        "POST /v2/user-tasks/{key}/completion",
        "GET /v2/user-tasks/{key}/form",
        "POST /v2/user-tasks/{key}/variables/search",
        "POST /v2/process-instances/search",
        "GET /v2/process-instances/{key}",
        "POST /v2/process-instances",
        "POST /v2/process-instances/{key}/cancellation",
        "POST /v2/process-definitions/search",
        "PATCH /v2/jobs/{key}",
        "GET /v2/incidents/{key}",
        "POST /v2/incidents/{key}/resolution",
        "POST /v2/messages/publication",
        "POST /v2/incidents/search",
        "POST /v2/element-instances/search",
        "POST /v2/variables/search",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// `POST /v2/user-tasks/123/completion` -> `POST /v2/user-tasks/{key}/completion`.
fn route_of(x: &RestExchange) -> String {
    let path: Vec<String> = x
        .path
        .split('/')
        .map(|seg| if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) { "{key}".into() } else { seg.into() })
        .collect();
    format!("{} {}", x.method, path.join("/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_and_lab_rest_answers_match_the_official_8_8_schemas() {
    record_rest_exchanges();
    let expected = sweep_engine().await;
    let report = rehearse(RehearseOptions { ..rehearsal_support::options() }).await.expect("the rehearsal runs");
    assert!(report.restored(), "{}", report.render());
    // the lab's search answers with items and on an empty page
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let rest = lab.region_urls(0).rest;
    for path in ["process-instances/search", "process-definitions/search"] {
        call(reqwest::Method::POST, format!("{rest}/v2/{path}"), Some(json!({}))).await;
        call(reqwest::Method::POST, format!("{rest}/v2/{path}"), Some(json!({"page": {"limit": "ten"}}))).await;
    }
    lab.shutdown().await;

    let exchanges = take_rest_exchanges();
    let engine_routes: BTreeSet<String> =
        exchanges.iter().filter(|x| x.server == "engine" && x.status < 400).map(route_of).collect();
    let missing: Vec<&String> = expected.difference(&engine_routes).collect();
    assert!(missing.is_empty(), "engine routes never answered with success: {missing:?}");
    let lab_routes: BTreeSet<String> = exchanges.iter().filter(|x| x.server == "lab").map(route_of).collect();
    for r in ["POST /v2/process-instances/search", "POST /v2/process-definitions/search"] {
        assert!(lab_routes.contains(r), "no lab answer for {r}: {lab_routes:?}");
    }
    let count = exchanges.len();
    let by_server = |s: &str| exchanges.iter().filter(|x| x.server == s).count();
    eprintln!("validating {count} REST answers: engine {}, lab {}", by_server("engine"), by_server("lab"));
    let (ok, report) = validate(exchanges).await;
    assert!(ok, "REST answers that break Camunda's 8.8 schemas:\n{report:#}");
    assert!(report["unmatched"].as_array().unwrap().is_empty(), "answers without a schema: {}", report["unmatched"]);
    assert_eq!(report["checked"].as_u64(), Some(count as u64), "{report}");
}

/// 8.8 answers a malformed search request with 400 and an RFC 9457 problem.
#[tokio::test]
async fn lab_rejects_malformed_search_requests_with_a_problem() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let rest = lab.region_urls(0).rest;
    let client = reqwest::Client::new();
    for (path, body, field) in [
        ("process-instances/search", json!({"page": {"limit": "ten"}}), "page.limit"),
        ("process-instances/search", json!({"page": {"from": -1}}), "page.from"),
        ("process-instances/search", json!({"filter": [1]}), "filter"),
        ("process-definitions/search", json!({"sort": {"field": "version"}}), "sort"),
        ("process-definitions/search", json!({"sort": [{"field": "version", "order": "UP"}]}), "sort.order"),
    ] {
        let resp = client.post(format!("{rest}/v2/{path}")).json(&body).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path} {body}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/problem+json"), "{ct}");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["status"], 400, "{p}");
        assert_eq!(p["instance"], format!("/v2/{path}"), "{p}");
        assert!(p["detail"].as_str().unwrap().contains(&format!("'{field}'")), "{field}: {p}");
    }
    // well-formed requests still work
    let resp = client
        .post(format!("{rest}/v2/process-instances/search"))
        .json(
            &json!({"filter": {}, "sort": [{"field": "startDate", "order": "desc"}], "page": {"from": 0, "limit": 10}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    lab.shutdown().await;
}
