//! An in-memory dual-region target for the step unit tests: cluster changes complete on the
//! next observation, snapshots and restores likewise; every mutation is recorded; transient
//! faults can be injected. (The lab is the faithful simulation; this one is small and instant.)
use super::api::*;
use crate::config::TargetConfig;
use crate::platform::{HelmAction, Platform, PlatformError, PlatformStatus, RegionControl};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub enum Kind {
    Remove(Vec<u32>),
    Add(Vec<u32>, u32),
    Exporter(String, bool),
}

#[derive(Debug, Default)]
pub struct Es {
    pub repo: bool,
    /// The repository is registered read-only.
    pub repo_readonly: bool,
    /// A registration c8dr did not make (type and settings), until c8dr registers it.
    pub repo_foreign: Option<RepositoryView>,
    /// The settings a registration by c8dr shows (the test target's configured ones).
    pub repo_settings: serde_json::Map<String, serde_json::Value>,
    pub indices: Vec<IndexInfo>,
    pub recoveries: Vec<RecoveryInfo>,
    pub health: HealthStatus,
}

#[derive(Debug)]
pub struct State {
    pub partitions: u32,
    pub rf: u32,
    pub members: BTreeSet<u32>,
    pub alive: BTreeSet<u32>,
    pub exporters: BTreeMap<String, ExporterStatusKind>,
    pub pending: Option<(i64, Kind)>,
    pub last: Option<ChangeRef>,
    pub next_id: i64,
    pub bucket: Vec<SnapshotInfo>,
    pub es: [Es; 2],
    pub calls: Vec<(u8, String)>,
    pub fail_next: u32,
    pub instances: Vec<String>,
    /// Keys of the deployed process definitions (the canary's).
    pub definitions: Vec<String>,
    pub restore_fails: bool,
    /// A lost region's gateway still answers (a partition, not a loss).
    pub lost_gateway_answers: bool,
    /// A lost region's gateway answers with this error (e.g. 401: something still answers).
    pub lost_gateway_error: Option<ApiError>,
    /// `GET /v2/topology` answers with this error (e.g. 401: the REST API needs credentials).
    pub rest_topology_error: Option<ApiError>,
    /// Versions brokers report in the topology (default 8.8.0).
    pub broker_versions: BTreeMap<u32, String>,
}

pub struct FakeTarget {
    pub state: Mutex<State>,
}

impl FakeTarget {
    /// A healthy dual-region cluster of `size` brokers.
    pub fn healthy(size: u32, partitions: u32, rf: u32) -> Self {
        let all: BTreeSet<u32> = (0..size).collect();
        let es = || Es {
            repo: false,
            repo_readonly: false,
            repo_foreign: None,
            repo_settings: Default::default(),
            indices: vec![idx("operate-list-view-8.3.0_")],
            recoveries: vec![],
            health: HealthStatus::Green,
        };
        Self {
            state: Mutex::new(State {
                partitions,
                rf,
                members: all.clone(),
                alive: all,
                exporters: [
                    ("camundaregion0".to_string(), ExporterStatusKind::Enabled),
                    ("camundaregion1".into(), ExporterStatusKind::Enabled),
                ]
                .into_iter()
                .collect(),
                pending: None,
                last: None,
                next_id: 1,
                bucket: vec![],
                es: [es(), es()],
                calls: vec![],
                fail_next: 0,
                instances: vec![],
                definitions: vec![],
                restore_fails: false,
                lost_gateway_answers: false,
                lost_gateway_error: None,
                rest_topology_error: None,
                broker_versions: BTreeMap::new(),
            }),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Region `r` dies: its brokers stop, its Elasticsearch is empty.
    pub fn lose(&self, r: u8) {
        let mut s = self.lock();
        s.alive.retain(|b| b % 2 != u32::from(r));
        s.es[usize::from(r)] = Es { health: HealthStatus::Green, ..Default::default() };
    }

    /// The recreated region's brokers run again (not members).
    pub fn start_brokers(&self, r: u8, size: u32) {
        let mut s = self.lock();
        for b in (0..size).filter(|b| b % 2 == u32::from(r)) {
            s.alive.insert(b);
        }
    }

    pub fn mutations(&self) -> usize {
        self.lock().calls.len()
    }
}

pub fn idx(name: &str) -> IndexInfo {
    IndexInfo { name: name.into(), status: IndexStatus::Open, docs: Some(1) }
}

fn fault(s: &mut State) -> ApiResult<()> {
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return Err(ApiError::new(super::api::ApiErrorKind::Transient, Some(503), "injected fault: 503"));
    }
    Ok(())
}

/// The partitions member `id` replicates (the same layout as the fake topology), with the
/// exporters' states, as `/actuator/cluster` lists them.
fn member_partitions(s: &State, id: u32) -> Vec<ClusterPartition> {
    let members: Vec<u32> = s.members.iter().copied().collect();
    let rf = s.rf as usize;
    // the partition config shows the settled state (the fake's map keeps the aggregated status)
    let exporters: Vec<(String, ExporterState)> =
        s.exporters.iter().map(|(k, v)| (k.clone(), ExporterState::from_wire(v.as_str()))).collect();
    (1..=s.partitions)
        .filter(|pid| (0..rf.min(members.len())).any(|r| members[(*pid as usize * rf + r) % members.len()] == id))
        .map(|pid| ClusterPartition { id: pid, state: PartitionStatus::Active, exporters: exporters.clone() })
        .collect()
}

fn complete_pending(s: &mut State) {
    if let Some((id, kind)) = s.pending.take() {
        match kind {
            Kind::Remove(ids) => {
                for i in ids {
                    s.members.remove(&i);
                }
                s.rf = (s.rf / 2).max(1);
            }
            Kind::Add(ids, rf) => {
                s.members.extend(ids);
                s.rf = rf;
            }
            Kind::Exporter(e, on) => {
                s.exporters.insert(e, if on { ExporterStatusKind::Enabled } else { ExporterStatusKind::Disabled });
            }
        }
        s.last = Some(ChangeRef { id, status: ChangeStatus::Completed });
    }
}

fn ops(kind: &Kind) -> Vec<Operation> {
    match kind {
        Kind::Remove(ids) => ids
            .iter()
            .map(|b| Operation { operation: OperationKind::BrokerRemove, broker_id: Some(*b), ..Default::default() })
            .collect(),
        Kind::Add(ids, _) => ids
            .iter()
            .map(|b| Operation { operation: OperationKind::BrokerAdd, broker_id: Some(*b), ..Default::default() })
            .collect(),
        Kind::Exporter(e, on) => vec![Operation {
            operation: if *on {
                OperationKind::PartitionEnableExporter
            } else {
                OperationKind::PartitionDisableExporter
            },
            broker_id: Some(0),
            partition_id: Some(1),
            brokers: vec![],
            exporter_id: Some(e.clone()),
        }],
    }
}

fn start(s: &mut State, kind: Kind) -> ApiResult<MutationResult> {
    if s.pending.is_some() {
        return Err(ApiError::new(ApiErrorKind::Conflict, Some(409), "another topology change is in progress"));
    }
    let id = s.next_id;
    s.next_id += 1;
    let planned = ops(&kind);
    s.pending = Some((id, kind));
    Ok(MutationResult::Change(PlannedChange { change_id: id, planned_changes: planned }))
}

impl TargetApi for FakeTarget {
    fn cluster(&self, region: u8) -> BoxFuture<'_, ApiResult<ClusterView>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            if !s.lost_gateway_answers && !s.alive.iter().any(|b| b % 2 == u32::from(region)) {
                if let Some(e) = s.lost_gateway_error.clone() {
                    return Err(e);
                }
                return Err(ApiError::transient("connection refused"));
            }
            let view = ClusterView {
                brokers: s
                    .members
                    .iter()
                    .map(|id| ClusterBroker {
                        id: *id,
                        state: BrokerStatus::Active,
                        partitions: member_partitions(&s, *id),
                    })
                    .collect(),
                last_change: s.last.clone(),
                pending_change: s.pending.as_ref().map(|(id, k)| PendingChange {
                    id: *id,
                    status: ChangeStatus::InProgress,
                    completed: vec![],
                    pending: ops(k),
                }),
            };
            // a change completes after one observation while pending
            if s.pending.is_some() {
                complete_pending(&mut s);
            }
            Ok(view)
        })();
        async move { r }.boxed()
    }

    fn dry_run_remove(&self, _region: u8, ids: Vec<u32>) -> BoxFuture<'_, ApiResult<PlannedChange>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            Ok(PlannedChange { change_id: s.next_id, planned_changes: ops(&Kind::Remove(ids)) })
        })();
        async move { r }.boxed()
    }

    fn topology(&self, _region: u8) -> BoxFuture<'_, ApiResult<TopologyView>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            if let Some(e) = s.rest_topology_error.clone() {
                return Err(e);
            }
            let members: Vec<u32> = s.members.iter().copied().collect();
            let mut brokers: Vec<TopologyBroker> = s
                .alive
                .iter()
                .map(|b| TopologyBroker {
                    node_id: *b,
                    host: format!("camunda-zeebe-{}.ns{}", b / 2, b % 2),
                    partitions: vec![],
                    version: s.broker_versions.get(b).cloned().unwrap_or_else(|| "8.8.0".into()),
                })
                .collect();
            let rf = s.rf as usize;
            for pid in 1..=s.partitions {
                for r in 0..rf.min(members.len()) {
                    let b = members[(pid as usize * rf + r) % members.len()];
                    if let Some(tb) = brokers.iter_mut().find(|x| x.node_id == b) {
                        tb.partitions.push(TopologyPartition {
                            partition_id: pid,
                            role: if r == 0 { Role::Leader } else { Role::Follower },
                            health: Health::Healthy,
                        });
                    }
                }
            }
            Ok(TopologyView {
                brokers,
                cluster_size: members.len() as u32,
                partitions_count: s.partitions,
                replication_factor: s.rf,
            })
        })();
        async move { r }.boxed()
    }

    fn exporters(&self, _region: u8) -> BoxFuture<'_, ApiResult<Vec<ExporterStatus>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            let pending = s.pending.clone();
            Ok(s.exporters
                .iter()
                .map(|(id, st)| {
                    let status = match &pending {
                        Some((_, Kind::Exporter(e, on))) if e == id => {
                            if *on {
                                ExporterStatusKind::Enabling
                            } else {
                                ExporterStatusKind::Disabling
                            }
                        }
                        _ => st.clone(),
                    };
                    ExporterStatus { exporter_id: id.clone(), status }
                })
                .collect())
        })();
        async move { r }.boxed()
    }

    fn repository_exists(&self, region: u8, _repository: String) -> BoxFuture<'_, ApiResult<bool>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            Ok(s.es[usize::from(region)].repo)
        })();
        async move { r }.boxed()
    }

    fn repository(&self, region: u8, _repository: String) -> BoxFuture<'_, ApiResult<Option<RepositoryView>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            let es = &s.es[usize::from(region)];
            if !es.repo {
                return Ok(None);
            }
            // c8dr's registrations: the test target's config (type s3, no settings)
            let mut view = es
                .repo_foreign
                .clone()
                .unwrap_or_else(|| RepositoryView { kind: "s3".into(), settings: es.repo_settings.clone() });
            if es.repo_readonly {
                view.settings.insert("readonly".into(), serde_json::Value::String("true".into()));
            }
            Ok(Some(view))
        })();
        async move { r }.boxed()
    }

    fn snapshot(&self, region: u8, repository: String, name: String) -> BoxFuture<'_, ApiResult<Option<SnapshotInfo>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            if !s.es[usize::from(region)].repo {
                return Err(ApiError::new(ApiErrorKind::NotFound, Some(404), format!("[{repository}] missing"))
                    .with_type("repository_missing_exception"));
            }
            let found = s.bucket.iter().find(|x| x.name == name).cloned();
            for snap in &mut s.bucket {
                if snap.state == SnapshotState::InProgress {
                    snap.state = SnapshotState::Success;
                    snap.shards = ShardCounts { total: 10, failed: 0, successful: 10 };
                }
            }
            Ok(found)
        })();
        async move { r }.boxed()
    }

    fn recoveries(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<RecoveryInfo>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            let fails = s.restore_fails;
            let es = &mut s.es[usize::from(region)];
            let list = es.recoveries.clone();
            let mut finished = false;
            for rec in &mut es.recoveries {
                if rec.stage != "DONE" {
                    rec.stage = "DONE".into();
                    finished = true;
                }
            }
            if finished {
                es.health = if fails { HealthStatus::Red } else { HealthStatus::Green };
            }
            Ok(list)
        })();
        async move { r }.boxed()
    }

    fn indices(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<IndexInfo>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            Ok(s.es[usize::from(region)].indices.clone())
        })();
        async move { r }.boxed()
    }

    fn health(&self, region: u8) -> BoxFuture<'_, ApiResult<HealthInfo>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            Ok(HealthInfo { status: s.es[usize::from(region)].health.clone(), timed_out: false })
        })();
        async move { r }.boxed()
    }

    fn process_instances(&self, _region: u8, _id: String) -> BoxFuture<'_, ApiResult<Vec<String>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            Ok(s.instances.clone())
        })();
        async move { r }.boxed()
    }

    fn process_definitions(&self, _region: u8, _id: String) -> BoxFuture<'_, ApiResult<Vec<String>>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            Ok(s.definitions.clone())
        })();
        async move { r }.boxed()
    }

    fn mutate(&self, region: u8, mutation: Mutation) -> BoxFuture<'_, ApiResult<MutationResult>> {
        let r = (|| {
            let mut s = self.lock();
            fault(&mut s)?;
            s.calls.push((region, mutation.action().to_string()));
            let reg = usize::from(region);
            match mutation {
                Mutation::ForceRemoveBrokers { ids } => {
                    if ids.iter().any(|i| !s.members.contains(i)) {
                        return Err(ApiError::new(ApiErrorKind::Rejected, Some(400), "broker is not a member"));
                    }
                    start(&mut s, Kind::Remove(ids))
                }
                Mutation::AddBrokers { ids, replication_factor } => start(&mut s, Kind::Add(ids, replication_factor)),
                Mutation::DisableExporter { exporter_id } => start(&mut s, Kind::Exporter(exporter_id, false)),
                Mutation::EnableExporter { exporter_id, .. } => start(&mut s, Kind::Exporter(exporter_id, true)),
                Mutation::PauseExporting | Mutation::ResumeExporting => Ok(MutationResult::Ack),
                Mutation::RegisterRepository { readonly, .. } => {
                    s.es[reg].repo = true;
                    s.es[reg].repo_readonly = readonly;
                    s.es[reg].repo_foreign = None;
                    Ok(MutationResult::Ack)
                }
                Mutation::DeleteRepository { .. } => {
                    s.es[reg].repo = false;
                    s.es[reg].repo_readonly = false;
                    s.es[reg].repo_foreign = None;
                    Ok(MutationResult::Ack)
                }
                Mutation::CreateSnapshot { snapshot, .. } => {
                    if s.bucket.iter().any(|x| x.name == snapshot) {
                        return Err(ApiError::new(
                            ApiErrorKind::Rejected,
                            Some(400),
                            "snapshot with the same name already exists",
                        )
                        .with_type("invalid_snapshot_name_exception"));
                    }
                    s.bucket.push(SnapshotInfo {
                        name: snapshot,
                        state: SnapshotState::InProgress,
                        shards: ShardCounts::default(),
                    });
                    Ok(MutationResult::Ack)
                }
                Mutation::RestoreSnapshot { repository, snapshot } => {
                    if s.es[reg].indices.iter().any(|i| i.status == IndexStatus::Open && i.name.starts_with("operate-"))
                    {
                        return Err(ApiError::new(
                            ApiErrorKind::Transient,
                            Some(500),
                            "cannot restore index because an open index with same name already exists",
                        )
                        .with_type("snapshot_restore_exception"));
                    }
                    s.es[reg].indices.push(idx("operate-list-view-8.3.0_"));
                    s.es[reg].recoveries.push(RecoveryInfo {
                        index: "operate-list-view-8.3.0_".into(),
                        kind: "SNAPSHOT".into(),
                        stage: "INDEX".into(),
                        repository: Some(repository),
                        snapshot: Some(snapshot),
                    });
                    s.es[reg].health = HealthStatus::Red;
                    Ok(MutationResult::Ack)
                }
                Mutation::DeployProcess { .. } => {
                    s.definitions = vec!["1".into()];
                    Ok(MutationResult::Key("1".into()))
                }
                Mutation::CreateProcessInstance { .. } => {
                    let k = format!("22517998{}", s.instances.len());
                    s.instances.push(k.clone());
                    Ok(MutationResult::Key(k))
                }
            }
        })();
        async move { r }.boxed()
    }
}

/// Helm and region control, in memory.
#[derive(Default)]
pub struct FakePlatform {
    pub status: Mutex<[PlatformStatus; 2]>,
    pub helm_calls: Mutex<Vec<(u8, HelmAction)>>,
    pub lost: Mutex<[bool; 2]>,
    pub control_calls: Mutex<Vec<String>>,
    /// Behave as mode `manual`: a person observes and runs helm (commands from the real
    /// [`crate::platform::helm::ManualHelm`]).
    pub manual: std::sync::atomic::AtomicBool,
    /// Pods deleted through `restart_pod`, in order.
    pub restart_calls: Mutex<Vec<(u8, String)>>,
    /// A restarted pod comes back Ready (else it stays not Ready).
    pub restart_heals: std::sync::atomic::AtomicBool,
    /// `lose` / `is_lost` refuse with this message (a namespace not labelled for drills).
    pub refuse_drill: Mutex<Option<String>>,
}

/// A complete rollout of `n` replicas at revision `rev`.
pub fn rollout_done(n: i32, rev: &str) -> crate::platform::Rollout {
    crate::platform::Rollout {
        generation: 2,
        observed_generation: 2,
        replicas: n,
        updated_replicas: n,
        ready_replicas: n,
        current_revision: rev.into(),
        update_revision: rev.into(),
    }
}

/// Four Ready orchestration pods running `profiles`.
pub fn pods(profiles: &[&str]) -> Vec<crate::platform::PodStatus> {
    (0..4)
        .map(|i| crate::platform::PodStatus {
            name: format!("camunda-zeebe-{i}"),
            phase: "Running".into(),
            ready: true,
            profiles: Some(profiles.iter().map(|p| p.to_string()).collect()),
            revision: Some("camunda-zeebe-a".into()),
            uid: Some(format!("uid-camunda-zeebe-{i}-0")),
            ..Default::default()
        })
        .collect()
}

impl FakePlatform {
    pub fn running() -> Self {
        let on = PlatformStatus {
            release: true,
            pvcs: 4,
            profiles: Some(vec!["broker".into(), "operate".into(), "tasklist".into()]),
            create_schema: Some(true),
            rollout: Some(rollout_done(4, "camunda-zeebe-a")),
            pods: pods(&["broker", "operate", "tasklist"]),
            ..Default::default()
        };
        Self {
            status: Mutex::new([on.clone(), on]),
            restart_heals: std::sync::atomic::AtomicBool::new(true),
            ..Default::default()
        }
    }
}

impl FakePlatform {
    fn is_manual(&self) -> bool {
        self.manual.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Platform for FakePlatform {
    fn requires_pinned_chart(&self) -> bool {
        self.is_manual()
    }
    fn status<'a>(&'a self, _t: &'a TargetConfig, region: u8) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>> {
        if self.is_manual() {
            return async { Err(PlatformError::Manual { command: "kubectl get pods".into() }) }.boxed();
        }
        let s = self.status.lock().unwrap()[usize::from(region)].clone();
        async move { Ok(s) }.boxed()
    }
    fn helm<'a>(
        &'a self,
        _t: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        if self.is_manual() {
            use crate::platform::HelmRunner;
            return crate::platform::helm::ManualHelm.apply(_t, region, action);
        }
        self.helm_calls.lock().unwrap().push((region, action));
        let mut st = self.status.lock().unwrap();
        let s = &mut st[usize::from(region)];
        s.release = true;
        s.pvcs = 4;
        s.profiles = Some(match action {
            HelmAction::EnableWebapps => vec!["broker".into(), "operate".into(), "tasklist".into()],
            _ => vec!["broker".into()],
        });
        s.create_schema = Some(action != HelmAction::DeployRecreated);
        // the fake's rollout is instant
        s.rollout = Some(rollout_done(4, "camunda-zeebe-a"));
        let names: Vec<&str> = s.profiles.iter().flatten().map(String::as_str).collect();
        s.pods = pods(&names);
        async move { Ok(format!("Release \"camunda\" has been upgraded ({action:?})")) }.boxed()
    }
    fn restart_pod<'a>(
        &'a self,
        t: &'a TargetConfig,
        region: u8,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        if self.is_manual() {
            let _ = t;
            let command = format!("kubectl delete pod {pod}");
            return async move { Err(PlatformError::Manual { command }) }.boxed();
        }
        self.restart_calls.lock().unwrap().push((region, pod.to_string()));
        let heals = self.restart_heals.load(std::sync::atomic::Ordering::SeqCst);
        let mut st = self.status.lock().unwrap();
        if let Some(p) = st[usize::from(region)].pods.iter_mut().find(|p| p.name == pod) {
            p.restarts += 1;
            // the StatefulSet recreates the pod under the same name: another instance
            p.uid = Some(format!("uid-{pod}-{}", p.restarts));
            // else it still shows as it was (a pod that does not come back, or an observation
            // that lags behind the restart)
            if heals {
                p.ready = true;
                p.not_ready_since = None;
            }
        }
        async { Ok(()) }.boxed()
    }
}

impl RegionControl for FakePlatform {
    fn lose(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        if let Some(m) = self.refuse_drill.lock().unwrap().clone() {
            return async move { Err(PlatformError::Refused(m)) }.boxed();
        }
        self.lost.lock().unwrap()[usize::from(region)] = true;
        self.control_calls.lock().unwrap().push(format!("lose {region}"));
        async { Ok(()) }.boxed()
    }
    fn recreate(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        self.control_calls.lock().unwrap().push(format!("recreate {region}"));
        async { Ok(()) }.boxed()
    }
    fn is_lost(&self, region: u8) -> BoxFuture<'_, Result<Option<bool>, PlatformError>> {
        if let Some(m) = self.refuse_drill.lock().unwrap().clone() {
            return async move { Err(PlatformError::Refused(m)) }.boxed();
        }
        let l = self.lost.lock().unwrap()[usize::from(region)];
        async move { Ok(Some(l)) }.boxed()
    }
}
