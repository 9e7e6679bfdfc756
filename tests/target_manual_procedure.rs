//! The seed's manual dual-region procedure (failover, then failback), driven step by step
//! through the target clients against the simulated lab. Region 1 is lost and rebuilt; every
//! asynchronous change is awaited by its `changeId`. Ends with 8 brokers, RF 4, one healthy
//! leader per partition, both exporters enabled and the data visible in both regions.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::region_api::models::elasticsearch::{HealthStatus, SnapshotState};
use c8dr::region_api::models::management::{BrokerStatus, ClusterPatch, ExporterStatusKind, OperationKind};
use c8dr::region_api::{ChangeVerdict, ManagementClient, RegionClients, Target, TargetError};
use c8dr::rehearsal::lab::{Lab, LabDurations, LabOptions};
use std::future::Future;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(20);
/// Upper bound on polls of one wait (20 ms each: 30 s); the lab's fast durations need far fewer.
const MAX_POLLS: usize = 1_500;

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, TargetError>>,
{
    let mut last = String::new();
    for _ in 0..MAX_POLLS {
        match probe().await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) if e.is_transient() => last = e.to_string(),
            Err(e) => panic!("{what}: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("{what}: not reached after {MAX_POLLS} polls (last transient error: {last})");
}

async fn await_change(management: &ManagementClient, change_id: i64, what: &str) {
    let verdict = eventually(what, || async {
        let (verdict, _) = management.change_verdict(change_id).await?;
        Ok(verdict.is_terminal().then_some(verdict))
    })
    .await;
    assert_eq!(verdict, ChangeVerdict::Completed, "{what}: change {change_id}");
}

async fn control(client: &reqwest::Client, url: String, body: serde_json::Value) {
    let response = client.post(&url).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
}

async fn instance_count(region: &RegionClients) -> i64 {
    let page = region
        .rest
        .search_process_instances(serde_json::json!({"processDefinitionId": "bigVarProcess"}), 100)
        .await
        .unwrap();
    page.page.total_items
}

#[tokio::test]
async fn manual_failover_then_failback_through_the_clients() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let target = Target::from_config("lab", &lab.target_config()).unwrap();
    let control_url = lab.control_url();
    let http = reqwest::Client::new();
    let (r0, r1) = (target.region(0), target.region(1));
    let (exporter0, exporter1) = (target.exporter_id(0), target.exporter_id(1));

    // Data before the disaster: deploy and start 6 instances, exported to both regions.
    let bpmn = include_bytes!("fixtures/target/single-task.bpmn").to_vec();
    r0.rest.deploy_resource("single-task.bpmn", bpmn).await.unwrap();
    for i in 0..6 {
        r0.rest.create_process_instance("bigVarProcess", serde_json::json!({ "i": i })).await.unwrap();
    }
    eventually("6 instances in both regions", || async {
        Ok((instance_count(r0).await == 6 && instance_count(r1).await == 6).then_some(()))
    })
    .await;

    // ---- Failover: region 1 is lost.
    control(&http, format!("{control_url}/control/regions/1/lose"), serde_json::json!({})).await;
    let e = r1.management.get_cluster().await.unwrap_err();
    assert!(e.is_transient(), "lost region is unreachable: {e}");

    let lost: Vec<u32> = target.brokers_of_region(1);
    assert_eq!(lost, vec![1, 3, 5, 7]);
    let plan = r0.management.patch_cluster(&ClusterPatch::remove_brokers(&lost), false, true).await.unwrap();
    assert!(plan.planned_changes.iter().any(|op| op.operation == OperationKind::PartitionForceReconfigure));
    await_change(&r0.management, plan.change_id, "force-remove region 1 brokers").await;

    let disable = r0.management.disable_exporter(&exporter1).await.unwrap();
    await_change(&r0.management, disable.change_id, "disable camundaregion1").await;
    let exporters = r0.management.list_exporters().await.unwrap();
    let status = |id: &str| exporters.iter().find(|e| e.exporter_id == id).map(|e| e.status.clone());
    assert_eq!(status(&exporter0), Some(ExporterStatusKind::Enabled));
    assert_eq!(status(&exporter1), Some(ExporterStatusKind::Disabled));

    let degraded = r0.rest.topology().await.unwrap();
    assert_eq!(degraded.member_brokers().map(|b| b.node_id).collect::<Vec<_>>(), vec![0, 2, 4, 6]);
    assert_eq!(degraded.replication_factor, 2);
    assert!(degraded.partitions_without_single_healthy_leader().is_empty());
    // Region 0 keeps working.
    r0.rest.create_process_instance("bigVarProcess", serde_json::Value::Null).await.unwrap();

    // ---- Failback: region 1 is rebuilt empty; Camunda installed without webapps and schema.
    control(&http, format!("{control_url}/control/regions/1/recreate"), serde_json::json!({})).await;
    control(
        &http,
        format!("{control_url}/control/regions/1/helm"),
        serde_json::json!({"action": "install", "webapps": false, "createSchema": false}),
    )
    .await;
    eventually("recreated brokers visible", || async {
        let t = r0.rest.topology().await?;
        Ok((t.brokers.len() == 8).then_some(()))
    })
    .await;

    eventually("pause exporting", || async { r0.management.pause_exporting(false).await.map(Some) }).await;

    let snapshot = &target.config.snapshot;
    let settings: serde_json::Map<String, serde_json::Value> =
        snapshot.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    r0.elasticsearch.put_repository(&snapshot.repository, &snapshot.kind, &settings, false).await.unwrap();
    let name = format!("{}-manual", snapshot.name_prefix);
    r0.elasticsearch.create_snapshot(&snapshot.repository, &name, true).await.unwrap();
    let info = eventually("snapshot finished", || async {
        let s = r0.elasticsearch.get_snapshot(&snapshot.repository, &name).await?;
        Ok((s.state != SnapshotState::InProgress).then_some(s))
    })
    .await;
    assert!(info.is_complete_success(), "{info:?}");

    r1.elasticsearch.put_repository(&snapshot.repository, &snapshot.kind, &settings, true).await.unwrap();
    let visible = r1.elasticsearch.list_snapshots(&snapshot.repository).await.unwrap();
    assert!(visible.iter().any(|s| s.snapshot == name));
    assert!(r1.elasticsearch.open_camunda_indices().await.unwrap().is_empty(), "no schema created");

    r1.elasticsearch.restore_snapshot(&snapshot.repository, &name, true, None).await.unwrap();
    eventually("restore finished", || async {
        let health = r1.elasticsearch.cluster_health().await?;
        let active = r1.elasticsearch.recoveries(true).await?;
        Ok((health.status == HealthStatus::Green && !active.iter().any(|r| r.is_snapshot())).then_some(()))
    })
    .await;

    let enable = r0.management.enable_exporter(&exporter1, Some(&exporter0)).await.unwrap();
    assert!(enable.planned_changes.iter().all(|op| op.operation == OperationKind::PartitionEnableExporter));
    await_change(&r0.management, enable.change_id, "enable camundaregion1").await;

    eventually("resume exporting", || async { r0.management.resume_exporting().await.map(Some) }).await;

    let add = r0.management.patch_cluster(&ClusterPatch::add_brokers(&lost, Some(4)), false, false).await.unwrap();
    await_change(&r0.management, add.change_id, "add region 1 brokers").await;

    // ---- End state.
    let cluster = r0.management.get_cluster().await.unwrap();
    assert_eq!(cluster.broker_ids(), vec![0, 1, 2, 3, 4, 5, 6, 7]);
    assert!(cluster.brokers.iter().all(|b| b.state == BrokerStatus::Active));
    assert!(cluster.pending_change.is_none());
    assert!(cluster.replicas_per_partition().values().all(|n| *n == 4), "{:?}", cluster.replicas_per_partition());
    let full = r0.rest.topology().await.unwrap();
    assert_eq!(full.member_brokers().count(), 8);
    assert_eq!(full.replication_factor, 4);
    assert!(full.partitions_without_single_healthy_leader().is_empty(), "{:?}", full.healthy_leaders());
    let exporters = r0.management.list_exporters().await.unwrap();
    for id in [&exporter0, &exporter1] {
        let s = exporters.iter().find(|e| &e.exporter_id == id).map(|e| e.status.clone());
        assert_eq!(s, Some(ExporterStatusKind::Enabled), "{id}");
    }
    // The mutating calls reached the lab in the seed's order (REST data calls left out;
    // consecutive retries of the same call counted once).
    let record: serde_json::Value =
        http.get(format!("{control_url}/control/record")).send().await.unwrap().json().await.unwrap();
    let mut calls: Vec<String> = Vec::new();
    for entry in record.as_array().unwrap() {
        if entry["api"] == "rest" {
            continue;
        }
        let call =
            format!("{} {} {}", entry["region"], entry["method"].as_str().unwrap(), entry["path"].as_str().unwrap());
        if calls.last() != Some(&call) {
            calls.push(call);
        }
    }
    let expected = [
        "0 PATCH /actuator/cluster?dryRun=false&force=true",
        "0 POST /actuator/exporters/camundaregion1/disable",
        "0 POST /actuator/exporting/pause",
        "0 PUT /_snapshot/camunda_backup",
        "0 PUT /_snapshot/camunda_backup/c8dr-failback-manual",
        "1 PUT /_snapshot/camunda_backup",
        "1 POST /_snapshot/camunda_backup/c8dr-failback-manual/_restore",
        "0 POST /actuator/exporters/camundaregion1/enable",
        "0 POST /actuator/exporting/resume",
        "0 PATCH /actuator/cluster?dryRun=false&force=false",
    ];
    assert_eq!(calls, expected);

    // Data from before and during the outage is in both regions; new data reaches both.
    r0.rest.create_process_instance("bigVarProcess", serde_json::Value::Null).await.unwrap();
    eventually("8 instances in both regions", || async {
        Ok((instance_count(r0).await == 8 && instance_count(r1).await == 8).then_some(()))
    })
    .await;
}
