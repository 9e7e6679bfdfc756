//! Every example response of api-contract.md and of the seed procedure parses with the target
//! models (fixtures under tests/fixtures/target/: `contract_*` from api-contract.md, `seed_*`
//! from seeds/dual-region-operational-procedure.md with the doc's trailing commas removed,
//! others in Elasticsearch's documented shapes); unknown fields and enum values are kept;
//! `judge_change` gives every verdict.
use c8dr::region_api::models::elasticsearch::{
    ClusterHealth, HealthStatus, IndexInfo, IndexStatus, RestoreInfo, SnapshotInfo, SnapshotList, SnapshotState,
    is_camunda_index, parse_recoveries,
};
use c8dr::region_api::models::management::{
    BrokerStatus, ChangeStatus, ClusterTopology, CompletedChange, ExporterState, ExporterStatus, ExporterStatusKind,
    OperationKind, PartitionStatus, PlannedChange,
};
use c8dr::region_api::models::rest::{
    CreatedInstance, DeploymentResult, Health, ProcessInstance, ProcessInstanceState, RestTopology, Role, SearchPage,
};
use c8dr::region_api::{ChangeVerdict, judge_change};
use serde::de::DeserializeOwned;
use std::path::Path;

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

#[test]
fn every_fixture_is_covered_by_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target");
    let users = [
        include_str!("target_parsing.rs"),
        include_str!("target_clients.rs"),
        include_str!("target_manual_procedure.rs"),
    ];
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(users.iter().any(|text| text.contains(&format!("{name}\""))), "fixture {name} is not used by any test");
    }
}

#[test]
fn contract_cluster_topology() {
    let t: ClusterTopology = fixture("contract_cluster_get.json");
    assert_eq!(t.version, 6);
    assert_eq!(t.broker_ids(), vec![0, 3]);
    let b0 = t.broker(0).unwrap();
    assert_eq!(b0.state, BrokerStatus::Active);
    assert_eq!(b0.last_updated_at.as_deref(), Some("2023-12-22T13:43:28.48Z"));
    assert_eq!(b0.partitions[0].state, PartitionStatus::Active);
    assert_eq!(b0.partitions[0].priority, 3);
    assert_eq!(b0.partitions[0].config.exporting.exporters[0].id, "camundaregion0");
    assert_eq!(b0.partitions[0].config.exporting.exporters[0].state, ExporterState::Enabled);
    assert_eq!(t.broker(3).unwrap().state, BrokerStatus::Joining);
    assert_eq!(t.broker(3).unwrap().last_updated_at.as_deref(), Some("0000-01-01T00:00:00Z"));
    let last = t.last_change.as_ref().unwrap();
    assert_eq!((last.id, &last.status), (4, &ChangeStatus::Completed));
    let pending = t.pending_change.as_ref().unwrap();
    assert_eq!((pending.id, &pending.status), (6, &ChangeStatus::InProgress));
    assert_eq!(pending.completed[0].operation, OperationKind::BrokerAdd);
    assert_eq!(pending.completed[0].broker_id, Some(3));
    assert_eq!(pending.pending[0].operation, OperationKind::PartitionJoin);
    assert_eq!((pending.pending[0].partition_id, pending.pending[0].priority), (Some(3), Some(2)));
    assert!(t.routing.is_some());
    assert!(t.cluster_id.is_some());
    assert_eq!(judge_change(&t, 6), ChangeVerdict::InProgress { completed: 1, pending: 1 });
}

#[test]
fn contract_planned_changes() {
    let p: PlannedChange = fixture("contract_cluster_patch_202.json");
    assert_eq!(p.change_id, 2);
    assert_eq!(p.planned_changes[0].operation, OperationKind::PartitionForceReconfigure);
    assert_eq!(p.planned_changes[0].brokers, vec![0, 2]);
    assert_eq!(p.planned_changes[1].operation, OperationKind::BrokerRemove);
    assert_eq!(p.current_topology.len(), 2);
    assert_eq!(p.current_topology[0].last_updated_at.as_deref(), Some("-999999999-01-01T00:00:00Z"));
    assert_eq!(p.expected_topology[0].version, 17);

    let d: PlannedChange = fixture("contract_exporter_disable_202.json");
    assert_eq!(d.change_id, 5);
    assert_eq!(d.planned_changes[0].operation, OperationKind::PartitionDisableExporter);
    assert_eq!(d.planned_changes[0].exporter_id.as_deref(), Some("camundaregion1"));
    let exporters = &d.expected_topology[0].partitions[0].config.exporting.exporters;
    assert_eq!(exporters[1].state, ExporterState::Disabled);
}

#[test]
fn exporter_lists() {
    let l: Vec<ExporterStatus> = fixture("contract_exporters_list.json");
    assert_eq!(l[0].exporter_id, "camundaregion0");
    assert_eq!(l[0].status, ExporterStatusKind::Enabled);
    assert_eq!(l[1].status, ExporterStatusKind::Disabled);
    for (name, region1) in [
        ("seed_exporters_both_enabled.json", ExporterStatusKind::Enabled),
        ("seed_exporters_region1_disabled.json", ExporterStatusKind::Disabled),
        ("seed_exporters_after_enable.json", ExporterStatusKind::Enabled),
    ] {
        let l: Vec<ExporterStatus> = fixture(name);
        let r1 = l.iter().find(|e| e.exporter_id == "camundaregion1").unwrap();
        assert_eq!(r1.status, region1, "{name}");
    }
}

#[test]
fn seed_last_changes() {
    for (name, id) in [
        ("seed_last_change_after_force_remove.json", 2),
        ("seed_last_change_after_disable.json", 4),
        ("seed_last_change_after_enable.json", 6),
        ("seed_last_change_after_add.json", 6),
    ] {
        let c: CompletedChange = fixture(name);
        assert_eq!((c.id, &c.status), (id, &ChangeStatus::Completed), "{name}");
        assert!(c.started_at.is_some() && c.completed_at.is_some(), "{name}");
    }
}

#[test]
fn rest_topologies() {
    let t: RestTopology = fixture("contract_rest_topology.json");
    assert_eq!((t.cluster_size, t.partitions_count, t.replication_factor), (4, 8, 2));
    assert_eq!(t.gateway_version, "8.8.0");
    assert_eq!(t.last_completed_change_id.as_deref(), Some("-1"));
    assert_eq!(t.last_completed_change(), None);
    assert_eq!(t.brokers[0].port, 26501);
    assert_eq!(t.brokers[0].partitions[0].role, Role::Leader);
    assert_eq!(t.brokers[0].partitions[0].health, Health::Healthy);

    let before: RestTopology = fixture("seed_rest_topology_before_failover.json");
    assert_eq!(before.brokers.len(), 4);
    assert_eq!(before.member_brokers().count(), 4);
    assert!(before.brokers[0].host.contains("camunda-london"));

    let after: RestTopology = fixture("seed_rest_topology_after_force_remove.json");
    assert_eq!((after.cluster_size, after.replication_factor), (4, 2));
    assert!(after.partitions_without_single_healthy_leader().is_empty(), "{:?}", after.healthy_leaders());

    // Re-created brokers gossip with empty partitions: listed, but not members.
    let gossip: RestTopology = fixture("seed_rest_topology_recreated_gossip.json");
    assert_eq!(gossip.brokers.len(), 8);
    assert_eq!(gossip.member_brokers().map(|b| b.node_id).collect::<Vec<_>>(), vec![0, 2, 4, 6]);

    let failback: RestTopology = fixture("seed_rest_topology_after_failback.json");
    assert_eq!(failback.member_brokers().count(), 8);
    assert!(failback.partitions_without_single_healthy_leader().is_empty());
}

#[test]
fn rest_deployment_instances_and_search() {
    let d: DeploymentResult = fixture("rest_deployment.json");
    assert_eq!(d.deployment_key, "2251799813686749");
    let processes: Vec<_> = d.processes().collect();
    assert_eq!(processes.len(), 1, "the decision entry is skipped, not a failure");
    assert_eq!(processes[0].process_definition_id, "bigVarProcess");
    assert_eq!(processes[0].process_definition_key, "2251799813686748");
    assert_eq!(processes[0].process_definition_version, 1);

    let c: CreatedInstance = fixture("rest_create_instance.json");
    assert_eq!(c.process_instance_key, "2251799813686760");
    assert_eq!(c.process_definition_key, "2251799813686748");
    assert_eq!(c.process_definition_id, "bigVarProcess");

    let s: SearchPage<ProcessInstance> = fixture("rest_process_instance_search.json");
    assert_eq!(s.page.total_items, 18);
    assert_eq!(s.items.len(), 2);
    assert_eq!(s.items[0].state, ProcessInstanceState::Active);
    assert_eq!(s.items[0].process_definition_name.as_deref(), Some("Big variable process"));
    // numeric keys (older versions) and unknown states are accepted
    assert_eq!(s.items[1].process_instance_key, "2251799813686761");
    assert_eq!(s.items[1].state, ProcessInstanceState::Unknown("SUSPENDED_BY_FUTURE".into()));
    assert_eq!(s.items[1].has_incident, Some(true));
}

#[test]
fn es_snapshots() {
    let w: serde_json::Value = fixture("contract_es_snapshot_wait.json");
    let s: SnapshotInfo = serde_json::from_value(w["snapshot"].clone()).unwrap();
    assert_eq!(s.state, SnapshotState::Success);
    assert!(s.is_complete_success());
    assert_eq!((s.shards.total, s.shards.failed, s.shards.successful), (33, 0, 33));
    assert_eq!(s.duration_in_millis, Some(1007));
    assert!(s.include_global_state);

    let all: SnapshotList = fixture("seed_es_snapshots_all.json");
    assert_eq!(all.snapshots.len(), 1);
    let s = &all.snapshots[0];
    assert_eq!((s.snapshot.as_str(), s.repository.as_deref()), ("failback", Some("camunda_backup")));
    assert!(s.is_complete_success());
    assert!(s.indices.iter().any(|i| i == "operate-list-view-8.3.0_"));

    // `_status` has another shape (indices object, shards_stats); it still parses, but its
    // shards summary is empty, which is why the client never uses it.
    let status: SnapshotList = fixture("seed_es_snapshot_status.json");
    assert_eq!(status.snapshots[0].state, SnapshotState::Success);
    assert_eq!(status.snapshots[0].indices, vec!["operate-list-view-8.3.0_".to_string()]);
    assert_eq!(status.snapshots[0].shards.total, 0);

    let r: serde_json::Value = fixture("contract_es_restore_wait.json");
    let r: RestoreInfo = serde_json::from_value(r["snapshot"].clone()).unwrap();
    assert_eq!((r.snapshot.as_str(), r.shards.failed, r.indices.len()), ("failback", 0, 2));

    let states: Vec<SnapshotState> =
        serde_json::from_str(r#"["IN_PROGRESS","SUCCESS","FAILED","PARTIAL","INCOMPATIBLE","STARTED"]"#).unwrap();
    assert_eq!(states[5], SnapshotState::Unknown("STARTED".into()));
    let partial = SnapshotInfo { state: SnapshotState::Partial, ..Default::default() };
    assert!(!partial.is_complete_success());
    let failed_shard: SnapshotInfo =
        serde_json::from_str(r#"{"snapshot":"s","state":"SUCCESS","shards":{"total":2,"failed":1,"successful":1}}"#)
            .unwrap();
    assert!(!failed_shard.is_complete_success());
}

#[test]
fn es_recoveries_health_indices_repository() {
    let body: serde_json::Value = fixture("es_recovery_active.json");
    let r = parse_recoveries(&body).unwrap();
    assert_eq!(r.len(), 3);
    let snap = r.iter().find(|s| s.is_snapshot()).unwrap();
    assert_eq!((snap.index.as_str(), snap.shard, snap.stage.as_str()), ("operate-list-view-8.3.0_", 0, "INDEX"));
    assert_eq!(snap.source.repository.as_deref(), Some("camunda_backup"));
    assert_eq!(snap.source.snapshot.as_deref(), Some("failback"));
    assert_eq!(snap.percent, Some(87.5));
    assert!(!snap.is_done());
    assert!(r.iter().filter(|s| !s.is_snapshot()).all(|s| s.is_done()));
    assert!(parse_recoveries(&serde_json::json!([])).is_err());

    let h: ClusterHealth = fixture("es_cluster_health.json");
    assert_eq!(h.status, HealthStatus::Yellow);
    assert!(!h.timed_out);
    assert_eq!(h.unassigned_shards, 2);
    let h: ClusterHealth = fixture("es_cluster_health_timed_out.json");
    assert_eq!((h.status, h.timed_out), (HealthStatus::Red, true));

    let idx: Vec<IndexInfo> = fixture("es_cat_indices.json");
    assert_eq!(idx[0].docs_count, Some(18));
    assert_eq!(idx[0].health, Some(HealthStatus::Green));
    // a closed index: health reported (ES 7.2+), counts null
    assert_eq!(
        (idx[1].status.clone(), idx[1].health.clone(), idx[1].docs_count),
        (IndexStatus::Close, Some(HealthStatus::Green), None)
    );
    let camunda: Vec<&str> = idx.iter().filter(|i| is_camunda_index(&i.index)).map(|i| i.index.as_str()).collect();
    assert_eq!(camunda, vec!["operate-list-view-8.3.0_", "camunda-user-8.8.0_", "zeebe-record_job_8.8.0_2024-08-23"]);

    let repo: serde_json::Map<String, serde_json::Value> = fixture("es_repository_get.json");
    let info: c8dr::region_api::models::elasticsearch::RepositoryInfo =
        serde_json::from_value(repo["camunda_backup"].clone()).unwrap();
    assert_eq!(info.kind, "s3");
    assert!(info.readonly());
    assert_eq!(info.settings["client"], "camunda");
}

#[test]
fn unknown_fields_and_enum_values_are_kept() {
    let t: ClusterTopology = serde_json::from_str(
        r#"{"version":9,"futureField":{"a":1},"brokers":[{"id":1,"state":"HIBERNATING","version":1,"extra":true,
            "partitions":[{"id":1,"state":"BOOTSTRAPPING","priority":1,"config":{"exporting":{"exporters":[
              {"id":"x","state":"PAUSED_FOREVER","initializedFrom":"y"}]},"other":{}}}]}],
            "lastChange":{"id":3,"status":"ROLLED_BACK"},
            "pendingChange":{"id":4,"status":"IN_PROGRESS","completed":[],"pending":[{"operation":"TELEPORT_BROKER","brokerId":1,"newField":7}]}}"#,
    )
    .unwrap();
    assert_eq!(t.brokers[0].state, BrokerStatus::Unknown("HIBERNATING".into()));
    assert_eq!(t.brokers[0].partitions[0].state, PartitionStatus::Unknown("BOOTSTRAPPING".into()));
    assert_eq!(
        t.brokers[0].partitions[0].config.exporting.exporters[0].state,
        ExporterState::Unknown("PAUSED_FOREVER".into())
    );
    assert_eq!(t.last_change.as_ref().unwrap().status, ChangeStatus::Unknown("ROLLED_BACK".into()));
    let op = &t.pending_change.as_ref().unwrap().pending[0];
    assert_eq!(op.operation, OperationKind::Unknown("TELEPORT_BROKER".into()));
    assert_eq!(op.to_string(), "TELEPORT_BROKER broker 1");
    // The literal UNKNOWN states of the API are kept as they are.
    let l: Vec<ExporterStatus> = serde_json::from_str(r#"[{"exporterId":"a","status":"UNKNOWN","x":1}]"#).unwrap();
    assert_eq!(l[0].status, ExporterStatusKind::Unknown("UNKNOWN".into()));

    let r: RestTopology = serde_json::from_str(
        r#"{"brokers":[{"nodeId":1,"host":"h","port":1,"version":"9.0","partitions":[{"partitionId":1,"role":"candidate","health":"sleepy"}]}],
            "clusterSize":1,"partitionsCount":1,"replicationFactor":1,"gatewayVersion":"9.0","lastCompletedChangeId":"12","clusterId":"c","new":1}"#,
    )
    .unwrap();
    assert_eq!(r.brokers[0].partitions[0].role, Role::Unknown("candidate".into()));
    assert_eq!(r.brokers[0].partitions[0].health, Health::Unknown("sleepy".into()));
    assert_eq!(r.last_completed_change(), Some(12));
    assert_eq!(r.partitions_without_single_healthy_leader(), vec![1]);

    let h: ClusterHealth = serde_json::from_str(r#"{"status":"purple","timed_out":false}"#).unwrap();
    assert_eq!(h.status, HealthStatus::Unknown("purple".into()));
}

fn topology(last: Option<(i64, &str)>, pending: Option<(i64, usize, usize)>) -> ClusterTopology {
    let op = r#"{"operation":"PARTITION_JOIN","brokerId":1,"partitionId":1}"#;
    let mut json = String::from(r#"{"version":1,"brokers":[]"#);
    if let Some((id, status)) = last {
        json.push_str(&format!(r#","lastChange":{{"id":{id},"status":"{status}"}}"#));
    }
    if let Some((id, done, todo)) = pending {
        let list = |n: usize| vec![op; n].join(",");
        json.push_str(&format!(
            r#","pendingChange":{{"id":{id},"status":"IN_PROGRESS","completed":[{}],"pending":[{}]}}"#,
            list(done),
            list(todo)
        ));
    }
    json.push('}');
    serde_json::from_str(&json).unwrap()
}

#[test]
fn judge_change_gives_every_verdict() {
    assert_eq!(judge_change(&topology(Some((5, "COMPLETED")), None), 5), ChangeVerdict::Completed);
    assert_eq!(judge_change(&topology(Some((5, "FAILED")), None), 5), ChangeVerdict::Failed);
    assert_eq!(judge_change(&topology(Some((5, "CANCELLED")), None), 5), ChangeVerdict::Cancelled);
    assert_eq!(judge_change(&topology(Some((7, "COMPLETED")), None), 5), ChangeVerdict::Superseded);
    assert_eq!(judge_change(&topology(Some((7, "FAILED")), None), 5), ChangeVerdict::Superseded);
    assert_eq!(
        judge_change(&topology(Some((4, "COMPLETED")), Some((5, 3, 1))), 5),
        ChangeVerdict::InProgress { completed: 3, pending: 1 }
    );
    assert_eq!(
        judge_change(&topology(None, Some((5, 0, 2))), 5),
        ChangeVerdict::InProgress { completed: 0, pending: 2 }
    );
    assert_eq!(judge_change(&topology(Some((4, "COMPLETED")), None), 5), ChangeVerdict::NotStarted);
    assert_eq!(judge_change(&topology(None, None), 5), ChangeVerdict::NotStarted);
    assert_eq!(judge_change(&topology(Some((3, "COMPLETED")), Some((4, 0, 1))), 5), ChangeVerdict::NotStarted);
    // An unrecognised status of our change is not success: keep waiting.
    let v = judge_change(&topology(Some((5, "ROLLED_BACK")), None), 5);
    assert!(!v.is_terminal(), "{v:?}");
    // Substring checks would call an old COMPLETED lastChange success; the verdict does not.
    assert!(!judge_change(&topology(Some((2, "COMPLETED")), Some((5, 1, 1))), 5).is_success());

    assert!(ChangeVerdict::Completed.is_success() && ChangeVerdict::Superseded.is_success());
    assert!(ChangeVerdict::Failed.is_failure() && ChangeVerdict::Cancelled.is_failure());
    assert_eq!(ChangeVerdict::InProgress { completed: 1, pending: 3 }.progress(), Some(0.25));
    assert_eq!(ChangeVerdict::NotStarted.progress(), None);
    assert_eq!(
        ChangeVerdict::InProgress { completed: 1, pending: 3 }.to_string(),
        "in progress (1 of 4 operations done)"
    );
}
