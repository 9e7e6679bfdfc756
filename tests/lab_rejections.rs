//! What Camunda and Elasticsearch reject, the lab rejects with the same status and body shape.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::rehearsal::lab::{Lab, LabDurations, LabHandle, LabOptions};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn lab(durations: LabDurations) -> LabHandle {
    Lab::start(LabOptions { durations, ..Default::default() }).await.expect("lab starts")
}

async fn call(c: &Client, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut rb = c.request(method.clone(), url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_else(|| panic!("body has no message: {v}"))
}

/// Slow enough that a change stays pending for the whole test.
fn slow() -> LabDurations {
    LabDurations { broker_op_ms: 600_000, exporter_op_ms: 600_000, ..LabDurations::fast() }
}

#[tokio::test]
async fn cluster_patch_validation_is_400_with_zeebe_messages() {
    let lab = lab(LabDurations::fast()).await;
    let c = Client::new();
    let url = |q: &str| format!("{}/actuator/cluster{q}", lab.region_urls(0).management);
    let cases = [
        ("?force=true", json!({"brokers": {"add": [1, 3]}}), "Cannot force add brokers"),
        (
            "?force=true",
            json!({"brokers": {"remove": [1, 3]}, "partitions": {"replicationFactor": 4}}),
            "Cannot force change the replication factor.",
        ),
        ("?force=true", json!({"brokers": {"remove": []}}), "Must provide a set of brokers to force remove."),
        ("", json!({"brokers": {"add": [9], "count": 10}}), "Cannot change brokers count and add/remove brokers"),
        ("", json!({"brokers": {"add": [1]}}), "already part of the cluster"),
    ];
    for (q, body, want) in cases {
        let (s, v) = call(&c, Method::PATCH, &url(q), Some(body.clone())).await;
        assert_eq!(s, 400, "{body} -> {v}");
        assert!(message(&v).contains(want), "{body}: {v}");
    }
    let (s, v) = call(&c, Method::PATCH, &url(""), None).await;
    assert_eq!(s, 400, "missing body: {v}");
    // No change was started by any of them.
    let (_, cluster) = call(&c, Method::GET, &url(""), None).await;
    assert!(cluster.get("pendingChange").is_none() && cluster.get("lastChange").is_none(), "{cluster}");
    lab.shutdown().await;
}

#[tokio::test]
async fn any_change_while_one_is_pending_is_409() {
    let lab = lab(slow()).await;
    let c = Client::new();
    let m = lab.region_urls(0).management;
    let (s, v) = call(&c, Method::POST, &format!("{m}/actuator/exporters/camundaregion1/disable"), None).await;
    assert_eq!(s, 202);
    let id = v["changeId"].as_i64().unwrap();
    let (_, ex) = call(&c, Method::GET, &format!("{m}/actuator/exporters"), None).await;
    assert!(ex.as_array().unwrap().contains(&json!({"exporterId": "camundaregion1", "status": "DISABLING"})), "{ex}");
    let attempts = [
        (Method::POST, format!("{m}/actuator/exporters/camundaregion0/disable"), None),
        (
            Method::POST,
            format!("{m}/actuator/exporters/camundaregion1/enable"),
            Some(json!({"initializeFrom": "camundaregion0"})),
        ),
        (Method::PATCH, format!("{m}/actuator/cluster?force=true"), Some(json!({"brokers": {"remove": [1]}}))),
    ];
    for (method, url, body) in attempts {
        let (s, v) = call(&c, method, &url, body).await;
        assert_eq!(s, 409, "{url}: {v}");
        assert!(message(&v).contains("another topology change"), "{v}");
    }
    // Cancel: lastChange CANCELLED, applied operations stay.
    let (s, v) = call(&c, Method::DELETE, &format!("{m}/actuator/cluster/changes/{id}"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lastChange"]["id"], id);
    assert_eq!(v["lastChange"]["status"], "CANCELLED");
    assert!(v.get("pendingChange").is_none());
    let (s, _) = call(&c, Method::DELETE, &format!("{m}/actuator/cluster/changes/{id}"), None).await;
    assert_eq!(s, 404);
    lab.shutdown().await;
}

#[tokio::test]
async fn dry_run_plans_without_applying() {
    let lab = lab(LabDurations::fast()).await;
    let c = Client::new();
    let m = lab.region_urls(0).management;
    let (s, v) = call(
        &c,
        Method::PATCH,
        &format!("{m}/actuator/cluster?force=true&dryRun=true"),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let planned = v["plannedChanges"].as_array().unwrap();
    assert_eq!(planned.iter().filter(|o| o["operation"] == "PARTITION_FORCE_RECONFIGURE").count(), 8);
    assert_eq!(planned.iter().filter(|o| o["operation"] == "BROKER_REMOVE").count(), 4);
    assert_eq!(v["expectedTopology"].as_array().unwrap().len(), 4);
    let (_, cluster) = call(&c, Method::GET, &format!("{m}/actuator/cluster"), None).await;
    assert_eq!(cluster["brokers"].as_array().unwrap().len(), 8);
    assert!(cluster.get("pendingChange").is_none());
    lab.shutdown().await;
}

#[tokio::test]
async fn exporter_enable_requires_a_known_initialize_from() {
    let lab = lab(LabDurations::fast()).await;
    let c = Client::new();
    let m = lab.region_urls(0).management;
    let (s, v) = call(
        &c,
        Method::POST,
        &format!("{m}/actuator/exporters/camundaregion1/enable"),
        Some(json!({"initializeFrom": "nope"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("nope"));
    let (s, _) = call(&c, Method::POST, &format!("{m}/actuator/exporters/unknown/disable"), None).await;
    assert_eq!(s, 400);
    lab.shutdown().await;
}

fn es_type(v: &Value) -> &str {
    assert!(v["error"]["root_cause"].is_array(), "{v}");
    v["error"]["type"].as_str().unwrap_or("")
}

#[tokio::test]
async fn elasticsearch_snapshot_and_restore_errors() {
    // Long enough restore phases that a poll cannot miss red or yellow on a loaded machine.
    let lab = lab(LabDurations { restore_ms: 3_000, ..LabDurations::fast() }).await;
    let c = Client::new();
    let e0 = lab.region_urls(0).elasticsearch;
    let e1 = lab.region_urls(1).elasticsearch;
    let repo = json!({"type": "s3", "settings": {"bucket": "b", "base_path": "p"}});

    let (s, v) = call(&c, Method::PUT, &format!("{e0}/_snapshot/camunda_backup/s1"), Some(json!({}))).await;
    assert_eq!((s.as_u16(), es_type(&v)), (404, "repository_missing_exception"));
    assert_eq!(v["status"], 404);

    let (s, _) = call(&c, Method::PUT, &format!("{e0}/_snapshot/camunda_backup"), Some(repo.clone())).await;
    assert_eq!(s, 200);
    let (s, v) = call(&c, Method::GET, &format!("{e0}/_snapshot/camunda_backup/s1"), None).await;
    assert_eq!((s.as_u16(), es_type(&v)), (404, "snapshot_missing_exception"));

    let url = format!("{e0}/_snapshot/camunda_backup/s1?wait_for_completion=true");
    let (s, v) = call(&c, Method::PUT, &url, Some(json!({"include_global_state": true}))).await;
    assert_eq!(s, 200);
    assert_eq!(v["snapshot"]["state"], "SUCCESS");
    assert_eq!(v["snapshot"]["shards"]["failed"], 0);
    let (s, v) = call(&c, Method::PUT, &url, Some(json!({}))).await;
    assert_eq!((s.as_u16(), es_type(&v)), (400, "invalid_snapshot_name_exception"), "{v}");

    // Region 1 still has Camunda's indices (schema created): restore hits open indices.
    let (s, _) = call(&c, Method::PUT, &format!("{e1}/_snapshot/camunda_backup"), Some(repo)).await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &c,
        Method::POST,
        &format!("{e1}/_snapshot/camunda_backup/s1/_restore"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    assert_eq!((s.as_u16(), es_type(&v)), (500, "snapshot_restore_exception"));
    assert!(v["error"]["reason"].as_str().unwrap().contains("because an open index with same name already exists"));
    let (s, v) = call(&c, Method::POST, &format!("{e1}/_snapshot/camunda_backup/nope/_restore"), None).await;
    assert_eq!((s.as_u16(), es_type(&v)), (404, "snapshot_missing_exception"));

    // After deleting the indices the restore goes through: red -> yellow -> green.
    let (s, _) = call(&c, Method::DELETE, &format!("{e1}/camunda-*,operate-*,tasklist-*"), None).await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &c,
        Method::POST,
        &format!("{e1}/_snapshot/camunda_backup/s1/_restore"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"accepted": true})));
    let text = c.get(format!("{e1}/_cat/recovery?v&active_only=true")).send().await.unwrap().text().await.unwrap();
    assert!(text.starts_with("index") && text.contains(" snapshot ") && text.contains(" s1 "), "{text}");
    let (s, h) = call(&c, Method::GET, &format!("{e1}/_cluster/health?wait_for_status=green&timeout=50ms"), None).await;
    assert_eq!(s, 408, "{h}");
    assert_eq!(h["timed_out"], true);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.last().map(String::as_str) != Some("green") {
        assert!(Instant::now() < deadline, "restore never went green: {seen:?}");
        let (_, h) = call(&c, Method::GET, &format!("{e1}/_cluster/health"), None).await;
        let st = h["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&st) {
            seen.push(st);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, vec!["red", "yellow", "green"]);
    let (_, all) = call(&c, Method::GET, &format!("{e1}/_recovery"), None).await;
    let shards = &all["operate-list-view-8.8.0_"]["shards"];
    assert_eq!(shards[0]["type"], "SNAPSHOT");
    assert_eq!(shards[0]["stage"], "DONE");
    assert_eq!(shards[0]["source"]["snapshot"], "s1");
    lab.shutdown().await;
}

#[tokio::test]
async fn snapshot_goes_in_progress_then_success_and_status_reports_it() {
    let lab = lab(LabDurations { snapshot_ms: 400, ..LabDurations::fast() }).await;
    let c = Client::new();
    let e0 = lab.region_urls(0).elasticsearch;
    let e1 = lab.region_urls(1).elasticsearch;
    let repo = json!({"type": "s3", "settings": {"bucket": "b", "base_path": "p"}});
    call(&c, Method::PUT, &format!("{e0}/_snapshot/camunda_backup"), Some(repo.clone())).await;
    call(&c, Method::PUT, &format!("{e1}/_snapshot/camunda_backup"), Some(repo)).await;
    let (s, v) = call(
        &c,
        Method::PUT,
        &format!("{e0}/_snapshot/camunda_backup/snap"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"accepted": true})));
    let (_, v) = call(&c, Method::GET, &format!("{e0}/_snapshot/camunda_backup/snap"), None).await;
    assert_eq!(v["snapshots"][0]["state"], "IN_PROGRESS", "{v}");
    let (_, st) = call(&c, Method::GET, &format!("{e0}/_snapshot/camunda_backup/snap/_status"), None).await;
    assert_eq!(st["snapshots"][0]["state"], "STARTED");
    // Not in the bucket for the other region until it is finished.
    let (s, _) = call(&c, Method::GET, &format!("{e1}/_snapshot/camunda_backup/snap"), None).await;
    assert_eq!(s, 404);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = call(&c, Method::GET, &format!("{e0}/_snapshot/camunda_backup/_all"), None).await;
        if v["snapshots"][0]["state"] == "SUCCESS" {
            assert_eq!(v["total"], 1);
            assert!(v["snapshots"][0]["shards"]["total"].as_u64().unwrap() > 0);
            assert_eq!(v["snapshots"][0]["shards"]["failed"], 0);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, st) = call(&c, Method::GET, &format!("{e0}/_snapshot/camunda_backup/snap/_status"), None).await;
    assert_eq!(st["snapshots"][0]["state"], "SUCCESS");
    let (s, v) = call(&c, Method::GET, &format!("{e1}/_snapshot/camunda_backup/_all"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["snapshots"][0]["snapshot"], "snap");
    let record = lab.record();
    assert_eq!(record.iter().filter(|e| e.method == "PUT" && e.path == "/_snapshot/camunda_backup/snap").count(), 1);
    assert!(record.iter().all(|e| e.method != "GET"), "GET requests are not recorded");
    lab.shutdown().await;
}

#[tokio::test]
async fn legacy_brokers_endpoint_takes_the_final_broker_set() {
    let lab = lab(LabDurations::fast()).await;
    let c = Client::new();
    let m = lab.region_urls(0).management;
    let (s, v) = call(
        &c,
        Method::POST,
        &format!("{m}/actuator/cluster/brokers?force=true&dryRun=true"),
        Some(json!([0, 2, 4, 6])),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["plannedChanges"].as_array().unwrap().iter().filter(|o| o["operation"] == "BROKER_REMOVE").count(), 4);
    let (s, v) = call(
        &c,
        Method::POST,
        &format!("{m}/actuator/cluster/brokers?force=true"),
        Some(json!([0, 1, 2, 3, 4, 5, 6, 7, 8])),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["message"], "Cannot force add brokers");
    lab.shutdown().await;
}
