//! The full manual dual-region procedure (seed: failover, then failback in its order) against the
//! lab with raw HTTP, asserting the contract's status codes and shapes.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::rehearsal::lab::{Lab, LabDurations, LabHandle, LabOptions};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BPMN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="bigVarProcess" name="Big variable process" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:userTask id="task"/>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"#;

async fn lab() -> LabHandle {
    // the procedure walked by hand, without waiting for rollouts: pods restart at once
    // (rolling restarts: tests/lab_kubernetes.rs)
    Lab::start(LabOptions {
        durations: LabDurations { pod_restart_ms: 0, ..LabDurations::fast() },
        ..Default::default()
    })
    .await
    .expect("lab starts")
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn get(c: &Client, url: &str) -> (StatusCode, Value) {
    let r = c.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn send(c: &Client, method: reqwest::Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut rb = c.request(method.clone(), url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn post(c: &Client, url: &str, body: Option<Value>) -> (StatusCode, Value) {
    send(c, reqwest::Method::POST, url, body).await
}

/// Polls `check` every 10 ms for up to 15 s (real time).
async fn until<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn await_change(c: &Client, mgmt: &str, id: i64) {
    let url = format!("{mgmt}/actuator/cluster");
    until(&format!("change {id}"), || async {
        let (s, v) = get(c, &url).await;
        assert_eq!(s, 200);
        (v["lastChange"]["id"] == json!(id) && v.get("pendingChange").is_none()).then_some(v)
    })
    .await;
    let (_, v) = get(c, &url).await;
    assert_eq!(v["lastChange"]["status"], "COMPLETED");
}

async fn deploy(c: &Client, rest: &str) {
    let part = reqwest::multipart::Part::text(BPMN).file_name("single-task.bpmn");
    let form = reqwest::multipart::Form::new().part("resources", part);
    let r = c.post(format!("{rest}/v2/deployments")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["deployments"][0]["processDefinition"]["processDefinitionId"], "bigVarProcess");
    assert!(v["deploymentKey"].is_string());
}

async fn create_instances(c: &Client, rest: &str, n: usize) {
    for _ in 0..n {
        let (s, v) =
            post(c, &format!("{rest}/v2/process-instances"), Some(json!({"processDefinitionId": "bigVarProcess"})))
                .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["processInstanceKey"].is_string(), "{v}");
    }
}

async fn await_instances(c: &Client, rest: &str, n: u64) {
    let url = format!("{rest}/v2/process-instances/search");
    until(&format!("{n} instances in {rest}"), || async {
        let (s, v) = post(c, &url, Some(json!({}))).await;
        assert_eq!(s, 200);
        (v["page"]["totalItems"] == json!(n)).then_some(v)
    })
    .await;
}

#[tokio::test]
async fn manual_failover_and_failback_restore_the_dual_region_cluster() {
    let lab = lab().await;
    let c = client();
    let r0 = lab.region_urls(0);
    let r1 = lab.region_urls(1);
    let control = lab.control_url();

    // Data before the disaster, exported to both regions.
    deploy(&c, &r0.rest).await;
    create_instances(&c, &r0.rest, 6).await;
    await_instances(&c, &r0.rest, 6).await;
    await_instances(&c, &r1.rest, 6).await;
    let (_, defs) = post(&c, &format!("{}/v2/process-definitions/search", r1.rest), Some(json!({}))).await;
    assert_eq!(defs["items"][0]["name"], "Big variable process");

    // ---- region 1 dies ----
    let (s, _) = post(&c, &format!("{control}/control/regions/1/lose"), None).await;
    assert_eq!(s, 200);
    let err = c.get(format!("{}/actuator/cluster", r1.management)).send().await.unwrap_err();
    assert!(err.is_connect(), "lost region must refuse connections: {err}");

    // ---- failover ----
    let (s, v) = send(
        &c,
        reqwest::Method::PATCH,
        &format!("{}/actuator/cluster?force=true", r0.management),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert!(v.to_string().contains("PARTITION_FORCE_RECONFIGURE"));
    assert!(v["plannedChanges"].is_array() && v["expectedTopology"].is_array() && v["currentTopology"].is_array());
    let change = v["changeId"].as_i64().unwrap();
    await_change(&c, &r0.management, change).await;
    let (_, cluster) = get(&c, &format!("{}/actuator/cluster", r0.management)).await;
    assert!(!cluster.to_string().contains("PARTITION_FORCE_RECONFIGURE"));
    let ids: Vec<i64> = cluster["brokers"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![0, 2, 4, 6]);

    let (s, v) = post(&c, &format!("{}/actuator/exporters/camundaregion1/disable", r0.management), None).await;
    assert_eq!(s, 202);
    assert!(v.to_string().contains("DISABLED") && v.to_string().contains("PARTITION_DISABLE_EXPORTER"));
    let disable = v["changeId"].as_i64().unwrap();
    assert!(disable > change, "change ids increase");
    until("camundaregion1 DISABLED", || async {
        let (_, v) = get(&c, &format!("{}/actuator/exporters", r0.management)).await;
        v.as_array().unwrap().contains(&json!({"exporterId": "camundaregion1", "status": "DISABLED"})).then_some(v)
    })
    .await;
    // Compact JSON in Camunda's field order (what substring checks of the official test rely on).
    let text = c.get(format!("{}/actuator/exporters", r0.management)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"{"exporterId":"camundaregion1","status":"DISABLED"}"#), "{text}");
    let (_, ex) = get(&c, &format!("{}/actuator/exporters", r0.management)).await;
    assert!(ex.as_array().unwrap().contains(&json!({"exporterId": "camundaregion0", "status": "ENABLED"})));

    // The surviving region works alone.
    create_instances(&c, &r0.rest, 6).await;
    await_instances(&c, &r0.rest, 12).await;
    let (_, topo) = get(&c, &format!("{}/v2/topology", r0.rest)).await;
    assert_eq!(topo["clusterSize"], 4);
    assert_eq!(topo["replicationFactor"], 2);

    // ---- failback ----
    let (s, _) = post(&c, &format!("{control}/control/regions/1/recreate"), None).await;
    assert_eq!(s, 200);
    let (_, p) = get(&c, &format!("{control}/control/regions/1/platform")).await;
    assert_eq!(
        (&p["release"], &p["pvcs"], &p["pods"], &p["helmRelease"]),
        (&json!(false), &json!(0), &json!([]), &json!(null))
    );
    let (s, p) = post(
        &c,
        &format!("{control}/control/regions/1/helm"),
        Some(json!({"action": "install", "webapps": false, "createSchema": false})),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["profiles"], json!(["broker", "identity", "consolidated-auth"]));
    assert_eq!(p["configuredProfiles"], p["profiles"]);
    assert_eq!(p["helmRelease"]["revision"], 1);
    let (s, _) = post(
        &c,
        &format!("{control}/control/regions/0/helm"),
        Some(json!({"action": "upgrade", "webapps": false, "createSchema": true})),
    )
    .await;
    assert_eq!(s, 200);

    // Recreated brokers gossip in without partitions.
    let (_, topo) = get(&c, &format!("{}/v2/topology", r0.rest)).await;
    let brokers = topo["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 8);
    for b in brokers.iter().filter(|b| b["nodeId"].as_i64().unwrap() % 2 == 1) {
        assert_eq!(b["partitions"], json!([]), "{b}");
        assert!(b["host"].as_str().unwrap().contains("camunda-region1"));
    }

    let (s, v) = post(&c, &format!("{}/actuator/exporting/pause", r0.management), None).await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"body": null, "status": 204, "contentType": null}));

    // Snapshot of region 0.
    let repo = json!({"type": "s3", "settings": {"bucket": "b", "client": "camunda", "base_path": "b/8-8-backups"}});
    let (s, v) =
        send(&c, reqwest::Method::PUT, &format!("{}/_snapshot/camunda_backup", r0.elasticsearch), Some(repo.clone()))
            .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"acknowledged": true})));
    let (s, v) = send(
        &c,
        reqwest::Method::PUT,
        &format!("{}/_snapshot/camunda_backup/failback", r0.elasticsearch),
        Some(json!({"include_global_state": true})),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"accepted": true})));
    let snap = until("snapshot SUCCESS", || async {
        let (s, v) = get(&c, &format!("{}/_snapshot/camunda_backup/failback", r0.elasticsearch)).await;
        assert_eq!(s, 200);
        (v["snapshots"][0]["state"] == "SUCCESS").then_some(v)
    })
    .await;
    assert_eq!(snap["snapshots"][0]["shards"]["failed"], 0);

    // Restore into region 1.
    let (_, cat) = get(&c, &format!("{}/_cat/indices?format=json", r1.elasticsearch)).await;
    assert_eq!(cat, json!([]), "no Camunda indices before the restore (createSchema=false)");
    let (s, _) =
        send(&c, reqwest::Method::PUT, &format!("{}/_snapshot/camunda_backup", r1.elasticsearch), Some(repo)).await;
    assert_eq!(s, 200);
    let (_, all) = get(&c, &format!("{}/_snapshot/camunda_backup/_all", r1.elasticsearch)).await;
    assert!(all.to_string().contains("\"failback\""));
    let (s, v) = post(
        &c,
        &format!("{}/_snapshot/camunda_backup/failback/_restore", r1.elasticsearch),
        // the seed's body plus `feature_states: ["none"]`: with global state, Elasticsearch
        // restores every feature state by default, security included, and the recreated
        // cluster would lose its own users and API keys (docs/elasticsearch.md)
        Some(json!({"include_global_state": true, "feature_states": ["none"]})),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"accepted": true})));
    until("region 1 green", || async {
        let (_, v) = get(&c, &format!("{}/_cluster/health", r1.elasticsearch)).await;
        (v["status"] == "green" && v["timed_out"] == false).then_some(v)
    })
    .await;
    let (_, rec) = get(&c, &format!("{}/_recovery?active_only=true", r1.elasticsearch)).await;
    assert_eq!(rec, json!({}));

    let (s, v) = post(
        &c,
        &format!("{}/actuator/exporters/camundaregion1/enable", r0.management),
        Some(json!({"initializeFrom": "camundaregion0"})),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert!(v.to_string().contains("ENABLED") && v.to_string().contains("PARTITION_ENABLE_EXPORTER"));
    await_change(&c, &r0.management, v["changeId"].as_i64().unwrap()).await;

    let (s, v) = post(&c, &format!("{}/actuator/exporting/resume", r0.management), None).await;
    assert_eq!((s, v["status"].clone()), (StatusCode::OK, json!(204)));

    let r = c
        .patch(format!("{}/actuator/cluster", r0.management))
        .json(&json!({"brokers": {"add": [1, 3, 5, 7]}, "partitions": {"replicationFactor": 4}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#""id":8,"state":"ACTIVE""#), "partition 8 in the plan: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let expected_p8 = v["expectedTopology"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["partitions"].as_array().unwrap().clone())
        .any(|p| p["id"] == 8 && p["state"] == "ACTIVE");
    assert!(expected_p8);
    await_change(&c, &r0.management, v["changeId"].as_i64().unwrap()).await;

    for r in 0..2 {
        let (s, _) = post(
            &c,
            &format!("{control}/control/regions/{r}/helm"),
            Some(json!({"action": "upgrade", "webapps": true, "createSchema": true})),
        )
        .await;
        assert_eq!(s, 200);
    }

    // End checks: full topology, data in both regions.
    let (_, topo) = get(&c, &format!("{}/v2/topology", r1.rest)).await;
    assert_eq!(topo["clusterSize"], 8);
    assert_eq!(topo["replicationFactor"], 4);
    for p in 1..=8 {
        let leaders: Vec<_> = topo["brokers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["partitions"].as_array().unwrap().clone())
            .filter(|x| x["partitionId"] == p && x["role"] == "leader" && x["health"] == "healthy")
            .collect();
        assert_eq!(leaders.len(), 1, "partition {p}");
    }
    create_instances(&c, &r1.rest, 6).await;
    await_instances(&c, &r0.rest, 18).await;
    await_instances(&c, &r1.rest, 18).await;

    let state = lab.state();
    assert_eq!(state.is_restored_dual_region(), Ok(()), "{}", serde_json::to_string_pretty(&state).unwrap());
    let snapshots =
        lab.record().iter().filter(|e| e.method == "PUT" && e.path.starts_with("/_snapshot/camunda_backup/")).count();
    assert_eq!(snapshots, 1, "exactly one snapshot was created");
    lab.shutdown().await;
}

#[tokio::test]
async fn exports_queue_while_paused_and_are_lost_for_a_disabled_exporter() {
    let lab = lab().await;
    let c = client();
    let r0 = lab.region_urls(0);
    let r1 = lab.region_urls(1);
    deploy(&c, &r0.rest).await;
    create_instances(&c, &r0.rest, 2).await;
    await_instances(&c, &r1.rest, 2).await;

    // Paused: records wait; resume flushes them to both regions.
    let (_, v) = post(&c, &format!("{}/actuator/exporting/pause", r0.management), None).await;
    assert_eq!(v["status"], 204);
    create_instances(&c, &r0.rest, 3).await;
    let (_, v) = post(&c, &format!("{}/v2/process-instances/search", r0.rest), Some(json!({}))).await;
    assert_eq!(v["page"]["totalItems"], 2, "nothing exported while paused");
    assert_eq!(lab.state().export_queues["camundaregion0"], 3);
    let (_, v) = post(&c, &format!("{}/actuator/exporting/resume", r0.management), None).await;
    assert_eq!(v["status"], 204);
    await_instances(&c, &r0.rest, 5).await;
    await_instances(&c, &r1.rest, 5).await;

    // Disabled exporter: region 1 misses what is created meanwhile, even after re-enabling.
    let (s, v) = post(&c, &format!("{}/actuator/exporters/camundaregion1/disable", r0.management), None).await;
    assert_eq!(s, 202);
    await_change(&c, &r0.management, v["changeId"].as_i64().unwrap()).await;
    create_instances(&c, &r0.rest, 4).await;
    let (s, v) = post(&c, &format!("{}/actuator/exporters/camundaregion1/enable", r0.management), None).await;
    assert_eq!(s, 202);
    await_change(&c, &r0.management, v["changeId"].as_i64().unwrap()).await;
    create_instances(&c, &r0.rest, 1).await;
    await_instances(&c, &r0.rest, 10).await;
    await_instances(&c, &r1.rest, 6).await;
    let problems = lab.state().is_restored_dual_region().unwrap_err();
    assert!(problems.iter().any(|p| p.contains("region 1 holds 6 of 10")), "{problems:?}");

    // A filter by key finds exactly one instance.
    let (_, one) =
        post(&c, &format!("{}/v2/process-instances", r0.rest), Some(json!({"processDefinitionId": "bigVarProcess"})))
            .await;
    let key = one["processInstanceKey"].clone();
    let (_, found) = post(
        &c,
        &format!("{}/v2/process-instances/search", r1.rest),
        Some(json!({"filter": {"processInstanceKey": key}})),
    )
    .await;
    assert_eq!(found["page"]["totalItems"], 1);
    assert_eq!(found["items"][0]["processDefinitionId"], "bigVarProcess");
    let (s, v) =
        post(&c, &format!("{}/v2/process-instances", r0.rest), Some(json!({"processDefinitionId": "nope"}))).await;
    assert_eq!(s, 404, "{v}");
    lab.shutdown().await;
}
