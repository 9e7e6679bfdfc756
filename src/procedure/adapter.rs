//! [`TargetApi`] over the typed clients of `crate::region_api`.
use super::api::*;
use crate::region_api::models::management as m;
use crate::region_api::{ErrorKind, Target, TargetError};
use futures::FutureExt;
use futures::future::BoxFuture;

/// The production target port: the management API, REST v2 and Elasticsearch clients of both
/// regions of one target.
pub struct ClientTarget {
    target: Target,
}

impl ClientTarget {
    pub fn new(target: Target) -> Self {
        Self { target }
    }
}

impl From<TargetError> for ApiError {
    fn from(e: TargetError) -> Self {
        let kind = match e.kind {
            ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::Server => ApiErrorKind::Transient,
            ErrorKind::Malformed => ApiErrorKind::Malformed,
            ErrorKind::Conflict => ApiErrorKind::Conflict,
            ErrorKind::NotFound => ApiErrorKind::NotFound,
            ErrorKind::InvalidRequest | ErrorKind::Unauthorized => ApiErrorKind::Rejected,
        };
        let message = if e.method.is_empty() {
            format!("{}: {}", e.api, e.message)
        } else {
            format!("{} {} {}: {}", e.api, e.method, e.url, e.message)
        };
        ApiError { kind, status: e.status, error_type: e.es_type, message }
    }
}

fn op(o: &m::Operation) -> Operation {
    Operation {
        operation: o.operation.clone(),
        broker_id: o.broker_id,
        partition_id: o.partition_id,
        brokers: o.brokers.clone(),
        exporter_id: o.exporter_id.clone(),
    }
}

fn planned(p: m::PlannedChange) -> PlannedChange {
    PlannedChange { change_id: p.change_id, planned_changes: p.planned_changes.iter().map(op).collect() }
}

fn cluster(t: m::ClusterTopology) -> ClusterView {
    ClusterView {
        brokers: t
            .brokers
            .iter()
            .map(|b| ClusterBroker {
                id: b.id,
                state: b.state.clone(),
                partitions: b
                    .partitions
                    .iter()
                    .map(|p| ClusterPartition {
                        id: p.id,
                        state: p.state.clone(),
                        exporters: p
                            .config
                            .exporting
                            .exporters
                            .iter()
                            .map(|e| (e.id.clone(), e.state.clone()))
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        last_change: t.last_change.map(|c| ChangeRef { id: c.id, status: c.status }),
        pending_change: t.pending_change.map(|p| PendingChange {
            id: p.id,
            status: p.status,
            completed: p.completed.iter().map(op).collect(),
            pending: p.pending.iter().map(op).collect(),
        }),
    }
}

impl TargetApi for ClientTarget {
    fn cluster(&self, region: u8) -> BoxFuture<'_, ApiResult<ClusterView>> {
        async move { Ok(cluster(self.target.region(region).management.get_cluster().await?)) }.boxed()
    }

    fn dry_run_remove(&self, region: u8, ids: Vec<u32>) -> BoxFuture<'_, ApiResult<PlannedChange>> {
        async move {
            let patch = m::ClusterPatch {
                brokers: Some(m::BrokersPatch { remove: ids, ..Default::default() }),
                partitions: None,
            };
            Ok(planned(self.target.region(region).management.patch_cluster(&patch, true, true).await?))
        }
        .boxed()
    }

    fn topology(&self, region: u8) -> BoxFuture<'_, ApiResult<TopologyView>> {
        async move {
            let t = self.target.region(region).rest.topology().await?;
            Ok(TopologyView {
                brokers: t
                    .brokers
                    .iter()
                    .map(|b| TopologyBroker {
                        node_id: b.node_id,
                        host: b.host.clone(),
                        partitions: b
                            .partitions
                            .iter()
                            .map(|p| TopologyPartition {
                                partition_id: p.partition_id,
                                role: p.role.clone(),
                                health: p.health.clone(),
                            })
                            .collect(),
                        version: b.version.clone(),
                    })
                    .collect(),
                cluster_size: t.cluster_size,
                partitions_count: t.partitions_count,
                replication_factor: t.replication_factor,
            })
        }
        .boxed()
    }

    fn exporters(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<ExporterStatus>>> {
        async move {
            let list = self.target.region(region).management.list_exporters().await?;
            Ok(list.into_iter().map(|e| ExporterStatus { exporter_id: e.exporter_id, status: e.status }).collect())
        }
        .boxed()
    }

    fn repository_exists(&self, region: u8, repository: String) -> BoxFuture<'_, ApiResult<bool>> {
        async move { Ok(self.target.region(region).elasticsearch.get_repository(&repository).await?.is_some()) }.boxed()
    }

    fn repository(&self, region: u8, repository: String) -> BoxFuture<'_, ApiResult<Option<RepositoryView>>> {
        async move {
            let info = self.target.region(region).elasticsearch.get_repository(&repository).await?;
            Ok(info.map(|i| RepositoryView { kind: i.kind, settings: i.settings }))
        }
        .boxed()
    }

    fn snapshot(&self, region: u8, repository: String, name: String) -> BoxFuture<'_, ApiResult<Option<SnapshotInfo>>> {
        async move {
            match self.target.region(region).elasticsearch.get_snapshot(&repository, &name).await {
                Ok(s) => Ok(Some(SnapshotInfo {
                    name: s.snapshot,
                    state: s.state,
                    shards: ShardCounts {
                        total: s.shards.total,
                        failed: s.shards.failed,
                        successful: s.shards.successful,
                    },
                })),
                Err(e)
                    if e.kind == ErrorKind::NotFound && e.es_type.as_deref() == Some("snapshot_missing_exception") =>
                {
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn recoveries(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<RecoveryInfo>>> {
        async move {
            // guards docs/target-apis.md §6.13: all recoveries (not active_only) to recognize our restore
            let list = self.target.region(region).elasticsearch.recoveries(false).await?;
            Ok(list
                .into_iter()
                .map(|r| RecoveryInfo {
                    index: r.index,
                    kind: r.recovery_type,
                    stage: r.stage,
                    repository: r.source.repository,
                    snapshot: r.source.snapshot,
                })
                .collect())
        }
        .boxed()
    }

    fn indices(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<IndexInfo>>> {
        async move {
            let list = self.target.region(region).elasticsearch.indices().await?;
            Ok(list.into_iter().map(|i| IndexInfo { name: i.index, status: i.status, docs: i.docs_count }).collect())
        }
        .boxed()
    }

    fn health(&self, region: u8) -> BoxFuture<'_, ApiResult<HealthInfo>> {
        async move {
            let h = self.target.region(region).elasticsearch.cluster_health().await?;
            Ok(HealthInfo { status: h.status, timed_out: h.timed_out })
        }
        .boxed()
    }

    fn process_instances(&self, region: u8, bpmn_process_id: String) -> BoxFuture<'_, ApiResult<Vec<String>>> {
        async move {
            let filter = serde_json::json!({ "processDefinitionId": bpmn_process_id });
            let page = self.target.region(region).rest.search_process_instances(filter, 10_000).await?;
            Ok(page.items.into_iter().map(|i| i.process_instance_key).collect())
        }
        .boxed()
    }

    fn process_definitions(&self, region: u8, bpmn_process_id: String) -> BoxFuture<'_, ApiResult<Vec<String>>> {
        async move {
            let filter = serde_json::json!({ "processDefinitionId": bpmn_process_id });
            let page = self.target.region(region).rest.search_process_definitions(filter, 100).await?;
            Ok(page.items.into_iter().map(|d| d.process_definition_key).collect())
        }
        .boxed()
    }

    fn mutate(&self, region: u8, mutation: Mutation) -> BoxFuture<'_, ApiResult<MutationResult>> {
        async move {
            let r = self.target.region(region);
            let snap = &self.target.config.snapshot;
            Ok(match mutation {
                Mutation::ForceRemoveBrokers { ids } => {
                    let patch = m::ClusterPatch {
                        brokers: Some(m::BrokersPatch { remove: ids, ..Default::default() }),
                        partitions: None,
                    };
                    MutationResult::Change(planned(r.management.patch_cluster(&patch, false, true).await?))
                }
                Mutation::AddBrokers { ids, replication_factor } => {
                    let patch = m::ClusterPatch {
                        brokers: Some(m::BrokersPatch { add: ids, ..Default::default() }),
                        partitions: Some(m::PartitionsPatch {
                            replication_factor: Some(replication_factor),
                            ..Default::default()
                        }),
                    };
                    MutationResult::Change(planned(r.management.patch_cluster(&patch, false, false).await?))
                }
                Mutation::DisableExporter { exporter_id } => {
                    MutationResult::Change(planned(r.management.disable_exporter(&exporter_id).await?))
                }
                Mutation::EnableExporter { exporter_id, initialize_from } => MutationResult::Change(planned(
                    r.management.enable_exporter(&exporter_id, initialize_from.as_deref()).await?,
                )),
                Mutation::PauseExporting => {
                    r.management.pause_exporting(false).await?;
                    MutationResult::Ack
                }
                Mutation::ResumeExporting => {
                    r.management.resume_exporting().await?;
                    MutationResult::Ack
                }
                Mutation::RegisterRepository { repository, readonly } => {
                    let settings: serde_json::Map<String, serde_json::Value> =
                        snap.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    r.elasticsearch.put_repository(&repository, &snap.kind, &settings, readonly).await?;
                    MutationResult::Ack
                }
                Mutation::DeleteRepository { repository } => {
                    r.elasticsearch.delete_repository(&repository).await?;
                    MutationResult::Ack
                }
                Mutation::CreateSnapshot { repository, snapshot } => {
                    r.elasticsearch.create_snapshot(&repository, &snapshot, true).await?;
                    MutationResult::Ack
                }
                Mutation::RestoreSnapshot { repository, snapshot } => {
                    // never the feature states (security: the recreated cluster's users and API keys)
                    r.elasticsearch.restore_snapshot(&repository, &snapshot, true, None).await?;
                    MutationResult::Ack
                }
                Mutation::DeployProcess { resource_name, xml } => {
                    let d = r.rest.deploy_resource(&resource_name, xml.into_bytes()).await?;
                    MutationResult::Key(d.deployment_key)
                }
                Mutation::CreateProcessInstance { bpmn_process_id } => {
                    let c = r.rest.create_process_instance(&bpmn_process_id, serde_json::Value::Null).await?;
                    MutationResult::Key(c.process_instance_key)
                }
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// An Elasticsearch stand-in on 127.0.0.1 that logs every request; `_all` fails, so a
    /// listing would show.
    async fn es_server() -> (String, Arc<Mutex<Vec<String>>>) {
        use axum::extract::Request;
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let l = l.clone();
            async move {
                let path = req.uri().path().to_string();
                let body = req.into_body();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                l.lock().unwrap().push(format!("{path} {}", String::from_utf8_lossy(&body)));
                let json = |code: StatusCode, v: serde_json::Value| (code, axum::Json(v)).into_response();
                match path.as_str() {
                    "/_snapshot/camunda_backup/_all" => json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({})),
                    "/_snapshot/camunda_backup/s1" => json(
                        StatusCode::OK,
                        serde_json::json!({"snapshots": [{"snapshot": "s1", "uuid": "u", "state": "SUCCESS",
                            "indices": [], "shards": {"total": 2, "failed": 0, "successful": 2}}]}),
                    ),
                    "/_snapshot/camunda_backup/s2" => json(
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"error": {"type": "snapshot_missing_exception", "reason": "[camunda_backup:s2] is missing"}, "status": 404}),
                    ),
                    "/_snapshot/camunda_backup/s1/_restore" => json(StatusCode::OK, serde_json::json!({"accepted": true})),
                    _ => json(StatusCode::NOT_FOUND, serde_json::json!({"error": {"type": "repository_missing_exception", "reason": "missing"}, "status": 404})),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, log)
    }

    /// Issue 12.9 / 12.6: the snapshot is read by name (never `_all`), and the restore asks for
    /// no feature states (the recreated cluster keeps its users and API keys).
    #[tokio::test]
    async fn snapshots_are_read_by_name_and_restored_without_feature_states() {
        let (url, log) = es_server().await;
        let mut cfg = crate::procedure::regions::tests_support::target();
        for r in &mut cfg.regions {
            r.elasticsearch_url = url.clone();
        }
        let t = ClientTarget::new(Target::from_config("t", &cfg).unwrap());
        let s1 = t.snapshot(0, "camunda_backup".into(), "s1".into()).await.unwrap().unwrap();
        assert_eq!((s1.name.as_str(), s1.state.as_str(), s1.shards.failed), ("s1", "SUCCESS", 0));
        assert_eq!(t.snapshot(0, "camunda_backup".into(), "s2".into()).await.unwrap(), None);
        let missing = t.snapshot(0, "other".into(), "s1".into()).await.unwrap_err();
        assert!(missing.is_es("repository_missing_exception"), "{missing:?}");
        t.mutate(1, Mutation::RestoreSnapshot { repository: "camunda_backup".into(), snapshot: "s1".into() })
            .await
            .unwrap();
        let log = log.lock().unwrap().clone();
        assert!(!log.iter().any(|l| l.contains("_all")), "{log:?}");
        let restore = log.iter().find(|l| l.contains("/_restore")).unwrap();
        let body: serde_json::Value = serde_json::from_str(restore.split_once(' ').unwrap().1).unwrap();
        assert_eq!(body["include_global_state"], serde_json::json!(true));
        assert_eq!(body["feature_states"], serde_json::json!(["none"]));
    }
}
