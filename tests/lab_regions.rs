//! Region loss and recreation, quorum, the exporting quirk, stuck changes, faults and the
//! control API.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::rehearsal::lab::{FaultConfig, HelmAction, HelmRequest, Lab, LabDurations, LabHandle, LabOptions};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Pods start Ready at once (`pod_restart_ms: 0`): these tests read the region APIs right after a
/// Helm call and are about the APIs, not about rollouts (tests/lab_kubernetes.rs steps through
/// those on a manual clock).
async fn lab() -> LabHandle {
    Lab::start(LabOptions {
        durations: LabDurations { pod_restart_ms: 0, ..LabDurations::fast() },
        ..Default::default()
    })
    .await
    .expect("lab starts")
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

fn partition_roles(topo: &Value) -> Vec<(i64, String, String)> {
    topo["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["partitions"].as_array().unwrap().clone())
        .map(|p| {
            (
                p["partitionId"].as_i64().unwrap(),
                p["role"].as_str().unwrap().into(),
                p["health"].as_str().unwrap().into(),
            )
        })
        .collect()
}

async fn await_no_pending(c: &Client, mgmt: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = call(c, Method::GET, &format!("{mgmt}/actuator/cluster"), None).await;
        if v.get("pendingChange").is_none() {
            return v;
        }
        assert!(Instant::now() < deadline, "change never finished: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn losing_a_region_refuses_connections_and_breaks_quorum_until_force_remove() {
    let lab = lab().await;
    // A client with pooled keep-alive connections to the region that will be lost.
    let c = Client::new();
    let r0 = lab.region_urls(0);
    let r1 = lab.region_urls(1);
    for url in [
        format!("{}/actuator/cluster", r1.management),
        format!("{}/v2/topology", r1.rest),
        format!("{}/_cluster/health", r1.elasticsearch),
    ] {
        let (s, _) = call(&c, Method::GET, &url, None).await;
        assert_eq!(s, 200);
    }
    let (_, topo) = call(&c, Method::GET, &format!("{}/v2/topology", r0.rest), None).await;
    assert_eq!(topo["lastCompletedChangeId"], "-1");
    assert_eq!(partition_roles(&topo).iter().filter(|(_, r, h)| r == "leader" && h == "healthy").count(), 8);

    lab.lose_region(1).await.unwrap();
    for url in [
        format!("{}/actuator/cluster", r1.management),
        format!("{}/v2/topology", r1.rest),
        format!("{}/_cluster/health", r1.elasticsearch),
    ] {
        let err = c.get(&url).send().await.expect_err("lost region answers");
        assert!(err.is_connect() || err.is_request(), "{url}: {err:?}");
        let fresh = Client::new().get(&url).send().await.expect_err("lost region answers");
        assert!(fresh.is_connect(), "{url}: connection must be refused, got {fresh:?}");
    }

    // Survivors: 4 brokers in gossip, every partition without quorum.
    let (_, topo) = call(&c, Method::GET, &format!("{}/v2/topology", r0.rest), None).await;
    assert_eq!(topo["brokers"].as_array().unwrap().len(), 4);
    assert_eq!(topo["clusterSize"], 8, "lost brokers are still configured members");
    assert!(partition_roles(&topo).iter().all(|(_, r, h)| r == "inactive" && h == "unhealthy"), "{topo}");
    let (_, cluster) = call(&c, Method::GET, &format!("{}/actuator/cluster", r0.management), None).await;
    assert_eq!(cluster["brokers"].as_array().unwrap().len(), 8);
    let (s, v) =
        call(&c, Method::POST, &format!("{}/v2/process-instances", r0.rest), Some(json!({"processDefinitionId": "x"})))
            .await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["status"], 503);

    // Exporting cannot be paused while partitions lack members: HTTP 200, body status 500.
    let (s, v) = call(&c, Method::POST, &format!("{}/actuator/exporting/pause", r0.management), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], 500);
    assert!(v["contentType"].is_null());
    let msg = v["body"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Expected 4 members of partition 1 but found 2, current topology:"), "{msg}");
    assert!(!lab.state().exporting_paused);

    // Force remove restores quorum with RF 2.
    let (s, v) = call(
        &c,
        Method::PATCH,
        &format!("{}/actuator/cluster?force=true", r0.management),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let done = await_no_pending(&c, &r0.management).await;
    assert_eq!(done["lastChange"]["id"], v["changeId"]);
    let (_, topo) = call(&c, Method::GET, &format!("{}/v2/topology", r0.rest), None).await;
    assert_eq!(topo["replicationFactor"], 2);
    assert_eq!(topo["lastCompletedChangeId"], v["changeId"].to_string());
    let roles = partition_roles(&topo);
    for p in 1..=8 {
        assert_eq!(
            roles.iter().filter(|(q, r, h)| *q == p && r == "leader" && h == "healthy").count(),
            1,
            "partition {p}"
        );
    }
    // Re-running the force remove is rejected (brokers already gone).
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{}/actuator/cluster?force=true", r0.management),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = call(&c, Method::POST, &format!("{}/actuator/exporting/pause?soft=true", r0.management), None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"body": null, "status": 204, "contentType": null})));
    lab.shutdown().await;
}

#[tokio::test]
async fn recreated_region_is_empty_until_helm_install_then_gossips_without_partitions() {
    let lab = lab().await;
    let c = Client::new();
    let r0 = lab.region_urls(0);
    let r1 = lab.region_urls(1);
    lab.lose_region(1).await.unwrap();
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{}/actuator/cluster?force=true", r0.management),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 202);
    await_no_pending(&c, &r0.management).await;
    // Helm cannot reach a lost region.
    let err = lab.helm(1, HelmRequest { action: HelmAction::Install, webapps: false, create_schema: false }).await;
    assert!(err.is_err());
    lab.recreate_region(1).await.unwrap();
    let p = lab.platform(1).unwrap();
    assert_eq!(
        (&p["release"], &p["pvcs"], &p["pods"], &p["helmRelease"]),
        (&json!(false), &json!(0), &json!([]), &json!(null))
    );
    assert!(Client::new().get(format!("{}/_cat/indices", r1.elasticsearch)).send().await.unwrap_err().is_connect());

    lab.helm(1, HelmRequest { action: HelmAction::Install, webapps: false, create_schema: true }).await.unwrap();
    // Same ports answer again; the schema manager created Camunda's indices (the quirk).
    let (s, idx) = call(&c, Method::GET, &format!("{}/_cat/indices?format=json", r1.elasticsearch), None).await;
    assert_eq!(s, 200);
    assert!(idx.as_array().unwrap().iter().any(|i| i["index"] == "operate-list-view-8.8.0_"), "{idx}");
    assert!(idx.as_array().unwrap().iter().all(|i| i["docs.count"] == "0"));
    let text = c.get(format!("{}/_cat/indices?h=index", r1.elasticsearch)).send().await.unwrap().text().await.unwrap();
    assert!(text.lines().any(|l| l == "tasklist-task-8.8.0_"), "{text}");
    let (_, topo) = call(&c, Method::GET, &format!("{}/v2/topology", r1.rest), None).await;
    let brokers = topo["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 8);
    for b in brokers {
        let id = b["nodeId"].as_i64().unwrap();
        assert_eq!(b["partitions"].as_array().unwrap().is_empty(), id % 2 == 1, "{b}");
    }
    let state = lab.state();
    assert_eq!(state.region(1).profiles, vec!["broker", "identity", "consolidated-auth"]);
    assert!(state.region(1).up && state.region(1).release);
    // Install twice is refused; upgrade turns the webapps on.
    assert!(
        lab.helm(1, HelmRequest { action: HelmAction::Install, webapps: true, create_schema: true }).await.is_err()
    );
    lab.helm(1, HelmRequest { action: HelmAction::Upgrade, webapps: true, create_schema: true }).await.unwrap();
    assert_eq!(lab.state().region(1).profiles, vec!["broker", "operate", "tasklist", "identity", "consolidated-auth"]);
    let (s, _) = call(&c, Method::GET, &format!("{}/actuator/exporters", r0.management), None).await;
    assert_eq!(s, 200);
    lab.shutdown().await;
}

#[tokio::test]
async fn adding_brokers_that_do_not_run_stays_pending_and_can_be_cancelled() {
    let lab = lab().await;
    let c = Client::new();
    let m = lab.region_urls(0).management;
    lab.lose_region(1).await.unwrap();
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{m}/actuator/cluster?force=true"),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 202);
    await_no_pending(&c, &m).await;
    // Brokers 1,3,5,7 are not running: the add cannot progress past BROKER_ADD.
    let (s, v) = call(
        &c,
        Method::PATCH,
        &format!("{m}/actuator/cluster"),
        Some(json!({"brokers": {"add": [1, 3, 5, 7]}, "partitions": {"replicationFactor": 4}})),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["changeId"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, cluster) = call(&c, Method::GET, &format!("{m}/actuator/cluster"), None).await;
    assert_eq!(cluster["pendingChange"]["id"], id);
    assert_eq!(cluster["pendingChange"]["status"], "IN_PROGRESS");
    assert_eq!(cluster["pendingChange"]["completed"], json!([]));
    assert_eq!(cluster["pendingChange"]["pending"][0]["operation"], "BROKER_ADD");
    let (s, v) = call(&c, Method::DELETE, &format!("{m}/actuator/cluster/changes/{id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["lastChange"]["status"], "CANCELLED");

    // The stuck-adds knob holds a change even when the brokers run.
    lab.recreate_region(1).await.unwrap();
    lab.helm(1, HelmRequest { action: HelmAction::Install, webapps: false, create_schema: false }).await.unwrap();
    lab.stuck_adds(true);
    let (s, v) = call(
        &c,
        Method::PATCH,
        &format!("{m}/actuator/cluster"),
        Some(json!({"brokers": {"add": [1, 3, 5, 7]}, "partitions": {"replicationFactor": 4}})),
    )
    .await;
    assert_eq!(s, 202);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(lab.state().cluster.pending_change.is_some());
    // Pausing while the added brokers have not joined still succeeds (members are the configured ones).
    lab.stuck_adds(false);
    let done = await_no_pending(&c, &m).await;
    assert_eq!(done["lastChange"]["id"], v["changeId"]);
    assert_eq!(done["lastChange"]["status"], "COMPLETED");
    let st = lab.state();
    assert!(st.cluster.partitions.iter().all(|p| p.replication_factor == 4 && p.healthy));
    lab.shutdown().await;
}

async fn fault_run(lab: &LabHandle, seed: u64) -> Vec<String> {
    lab.set_faults(Some(FaultConfig {
        seed,
        error_rate: 0.3,
        drop_rate: 0.1,
        malformed_rate: 0.2,
        apis: vec![c8dr::rehearsal::lab::Api::Management],
        ..Default::default()
    }));
    let c = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let url = format!("{}/actuator/exporters", lab.region_urls(0).management);
    let mut out = Vec::new();
    for _ in 0..30 {
        let outcome = match c.get(&url).send().await {
            Err(_) => "dropped".to_string(),
            Ok(r) => {
                let s = r.status().as_u16();
                match r.json::<Value>().await {
                    Ok(_) => format!("{s}"),
                    Err(_) => format!("{s}-malformed"),
                }
            }
        };
        out.push(outcome);
    }
    lab.set_faults(None);
    out
}

#[tokio::test]
async fn faults_are_deterministic_under_a_seed_and_spare_the_control_api() {
    let lab = lab().await;
    let a = fault_run(&lab, 42).await;
    let b = fault_run(&lab, 42).await;
    assert_eq!(a, b);
    assert!(a.iter().any(|o| o == "dropped"), "{a:?}");
    assert!(a.iter().any(|o| o == "500" || o == "503"), "{a:?}");
    assert!(a.iter().any(|o| o == "200-malformed"), "{a:?}");
    assert!(a.iter().any(|o| o == "200"), "{a:?}");
    assert_ne!(a, fault_run(&lab, 43).await);

    // Faults only hit the configured APIs, never the control API; settings over HTTP.
    let c = Client::new();
    let control = lab.control_url();
    let (s, v) = call(
        &c,
        Method::POST,
        &format!("{control}/control/settings"),
        Some(json!({"faults": {"seed": 1, "errorRate": 1.0, "apis": ["rest"]}, "durations": {"brokerOpMs": 10, "exporterOpMs": 5, "snapshotMs": 100, "restoreMs": 100}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(&c, Method::GET, &format!("{}/v2/topology", lab.region_urls(0).rest), None).await;
    assert!(s == 500 || s == 503);
    let (s, _) = call(&c, Method::GET, &format!("{}/actuator/cluster", lab.region_urls(0).management), None).await;
    assert_eq!(s, 200);
    let (s, st) = call(&c, Method::GET, &format!("{control}/control/state"), None).await;
    assert_eq!(s, 200);
    assert_eq!(st["cluster"]["brokers"].as_array().unwrap().len(), 8);
    let (s, _) = call(&c, Method::POST, &format!("{control}/control/settings"), Some(json!({"faults": null}))).await;
    assert_eq!(s, 200);
    let (s, _) = call(&c, Method::GET, &format!("{}/v2/topology", lab.region_urls(0).rest), None).await;
    assert_eq!(s, 200);
    // Faults limited to one endpoint.
    lab.set_faults(Some(FaultConfig {
        seed: 5,
        error_rate: 1.0,
        paths: vec!["/actuator/exporting".into()],
        ..Default::default()
    }));
    let (s, _) = call(&c, Method::GET, &format!("{}/actuator/exporters", lab.region_urls(0).management), None).await;
    assert_eq!(s, 200);
    let (s, _) =
        call(&c, Method::POST, &format!("{}/actuator/exporting/pause", lab.region_urls(0).management), None).await;
    assert!(s == 500 || s == 503);
    lab.set_faults(None);
    let (s, rec) = call(&c, Method::GET, &format!("{control}/control/record"), None).await;
    assert_eq!(s, 200);
    let rec = rec.as_array().unwrap();
    assert_eq!(rec.len(), 1, "only the faulted pause was a mutating call: {rec:?}");
    assert_eq!(rec[0]["path"], "/actuator/exporting/pause");
    assert_eq!(rec[0]["api"], "management");
    assert_eq!(rec[0]["method"], "POST");
    assert!(rec[0]["status"] == 500 || rec[0]["status"] == 503);
    lab.shutdown().await;
}

#[tokio::test]
async fn legacy_exporters_and_basic_auth_when_configured() {
    let lab = Lab::start(LabOptions {
        durations: LabDurations::fast(),
        legacy_exporters: true,
        rest_basic_auth: Some(("demo".into(), "demo".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::new();
    let (_, ex) = call(&c, Method::GET, &format!("{}/actuator/exporters", lab.region_urls(0).management), None).await;
    assert_eq!(ex.as_array().unwrap().len(), 4);
    assert!(ex.as_array().unwrap().contains(&json!({"exporterId": "elasticsearchregion1", "status": "ENABLED"})));
    // initializeFrom must name an exporter of the same type.
    let (s, _) = call(
        &c,
        Method::POST,
        &format!("{}/actuator/exporters/camundaregion1/enable", lab.region_urls(0).management),
        Some(json!({"initializeFrom": "elasticsearchregion0"})),
    )
    .await;
    assert_eq!(s, 400);
    let rest = lab.region_urls(0).rest;
    let r = c.get(format!("{rest}/v2/topology")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(format!("{rest}/v2/topology")).basic_auth("demo", Some("demo")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cfg = lab.target_config();
    assert_eq!(cfg.regions.len(), 2);
    assert_eq!(cfg.regions[1].rest_url, lab.region_urls(1).rest);
    assert!(cfg.drill_allowed);
    lab.shutdown().await;
}

#[tokio::test]
async fn restart_bug_re_enables_a_disabled_exporter_when_configured() {
    let lab = Lab::start(LabOptions {
        // every pod restarts at once here; the per-pod flip during a rolling update is
        // world.rs's an_upgrade_restarts_one_broker_at_a_time_and_exporters_flip_per_restarted_pod
        durations: LabDurations { pod_restart_ms: 0, ..LabDurations::fast() },
        exporter_flip_on_restart: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::new();
    let m = lab.region_urls(0).management;
    lab.lose_region(1).await.unwrap();
    let (s, _) = call(
        &c,
        Method::PATCH,
        &format!("{m}/actuator/cluster?force=true"),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    assert_eq!(s, 202);
    await_no_pending(&c, &m).await;
    let (s, _) = call(&c, Method::POST, &format!("{m}/actuator/exporters/camundaregion1/disable"), None).await;
    assert_eq!(s, 202);
    await_no_pending(&c, &m).await;
    assert_eq!(lab.state().exporter_status("camundaregion1"), Some("DISABLED"));
    lab.helm(0, HelmRequest { action: HelmAction::Upgrade, webapps: false, create_schema: true }).await.unwrap();
    let (_, ex) = call(&c, Method::GET, &format!("{m}/actuator/exporters"), None).await;
    assert!(ex.as_array().unwrap().contains(&json!({"exporterId": "camundaregion1", "status": "ENABLED"})), "{ex}");
    lab.shutdown().await;
}
