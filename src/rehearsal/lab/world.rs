//! The whole simulated installation in one value: two regions (Kubernetes, Helm release,
//! Elasticsearch), the Zeebe cluster configuration, exporting, the records waiting to be
//! exported, the process data in the Zeebe log, and the shared snapshot bucket.
//!
//! Time only moves forward through [`World::advance`], called with the simulated time before
//! every observation or action, so the world is deterministic for a given sequence of calls.
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::busy::BusyTime;
use super::cluster::{BrokerId, ChangeEvent, Cluster, Op, PatchRequest, Progress, fmt_ms};
use super::es::{self, Elasticsearch, Index, RestoreInfo, StoredSnapshot};
use super::pods::{PodSim, ReleaseRev, RolloutSim, revision_for};
use super::{HelmAction, HelmRequest, LabDurations, RecordEntry};

pub const CAMUNDA_EXPORTER: &str = "io.camunda.exporter.CamundaExporter";
pub const LEGACY_EXPORTER: &str = "io.camunda.zeebe.exporter.ElasticsearchExporter";
pub const TENANT: &str = "<default>";

/// A JSON reply: HTTP status and body.
pub type Reply = (u16, Value);

pub fn message(status: u16, msg: impl Into<String>) -> Reply {
    (status, json!({"message": msg.into()}))
}

/// Elasticsearch error body.
pub fn es_error(status: u16, kind: &str, reason: impl Into<String>) -> Reply {
    let reason = reason.into();
    let cause = json!({"type": kind, "reason": reason});
    (status, json!({"error": {"root_cause": [cause], "type": kind, "reason": reason}, "status": status}))
}

/// REST v2 problem detail.
pub fn problem(status: u16, title: &str, detail: impl Into<String>, instance: &str) -> Reply {
    (
        status,
        json!({"type": "about:blank", "title": title, "status": status, "detail": detail.into(), "instance": instance}),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Exporting {
    Running,
    Paused,
    SoftPaused,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionSim {
    /// The Kubernetes cluster/namespace is reachable.
    pub kubernetes: bool,
    /// A Camunda Helm release is installed.
    pub release: bool,
    pub pvcs: u32,
    pub webapps: bool,
    pub create_schema: bool,
    #[serde(skip)]
    pub es: Option<Elasticsearch>,
    /// The zeebe pods `camunda-zeebe-0..` (empty without a release).
    pub pods: Vec<PodSim>,
    /// A rolling update of the StatefulSet in progress.
    pub rollout: Option<RolloutSim>,
    /// Helm release revisions, oldest first (empty without a release).
    pub releases: Vec<ReleaseRev>,
    /// `metadata.generation` of the StatefulSet (the controller observes it at once).
    pub generation: i64,
    /// `status.currentRevision` of the StatefulSet.
    pub current_revision: String,
    /// When the release (its Elasticsearch pod, Services, PVCs) was installed.
    pub installed_ms: i64,
    /// PVCs labelled `app.kubernetes.io/instance=camunda` (`pvcs` is their count).
    pub pvc_names: BTreeSet<String>,
}

impl RegionSim {
    /// Brokers, gateway and Elasticsearch of this region are running.
    pub fn running(&self) -> bool {
        self.kubernetes && self.release
    }

    /// Profiles the release is configured with (the ConfigMap), empty without a release.
    pub fn profiles(&self) -> Vec<String> {
        if !self.release {
            return Vec::new();
        }
        super::pods::profiles_for(self.webapps)
    }

    /// `status.updateRevision` of the StatefulSet: the revision of the configured template.
    pub fn update_revision(&self) -> String {
        revision_for(self.webapps, self.create_schema)
    }

    /// Empties the namespace: no release, no pods, no PVCs, no Elasticsearch.
    fn clear(&mut self) {
        self.release = false;
        self.pvcs = 0;
        self.pvc_names.clear();
        self.es = None;
        self.pods.clear();
        self.rollout = None;
        self.releases.clear();
        self.generation = 0;
        self.current_revision.clear();
    }

    /// The release's PVCs: one per zeebe pod and Elasticsearch's.
    fn create_pvcs(&mut self, pods: u32) {
        self.pvc_names = (0..pods).map(|i| format!("data-camunda-zeebe-{i}")).collect();
        self.pvc_names.insert("data-camunda-elasticsearch-master-0".into());
        self.pvcs = self.pvc_names.len() as u32;
    }

    /// Deletes PVCs by name; returns the names deleted.
    pub fn delete_pvcs(&mut self, names: &[String]) -> Vec<String> {
        let gone: Vec<String> = names.iter().filter(|n| self.pvc_names.remove(*n)).cloned().collect();
        self.pvcs = self.pvc_names.len() as u32;
        gone
    }

    /// Ordinals whose pod does not run the configured template, highest first.
    fn outdated(&self) -> Vec<u32> {
        let want = self.update_revision();
        self.pods.iter().rev().filter(|p| p.revision() != want).map(|p| p.ordinal).collect()
    }
}

#[derive(Debug, Clone)]
pub struct Definition {
    pub key: i64,
    pub bpmn_process_id: String,
    pub name: String,
    pub version: u32,
    pub resource_name: String,
    pub resource: String,
    pub has_user_task: bool,
}

/// A record waiting to be exported: the documents it becomes in Camunda's indices.
#[derive(Debug, Clone)]
pub struct ExportRecord {
    pub docs: Vec<(String, Value)>,
}

#[derive(Debug, Clone)]
pub struct WorldOptions {
    pub cluster_size: u32,
    pub partition_count: u32,
    pub replication_factor: u32,
    pub legacy_exporters: bool,
    pub durations: LabDurations,
    pub stuck_adds: bool,
    /// Camunda before 8.8.25 (#52260): a broker restart (helm upgrade) re-enables exporters
    /// that were disabled through the API.
    pub exporter_flip_on_restart: bool,
}

pub struct World {
    pub opts: WorldOptions,
    pub regions: [RegionSim; 2],
    pub cluster: Cluster,
    pub exporting: Exporting,
    pub queues: BTreeMap<String, VecDeque<ExportRecord>>,
    pub definitions: Vec<Definition>,
    pub instance_count: u64,
    /// Shared snapshot storage: repository location -> snapshot name -> snapshot.
    pub bucket: BTreeMap<String, BTreeMap<String, StoredSnapshot>>,
    pub record: Vec<RecordEntry>,
    /// When the installation performs its own work (simulated ms): every applied cluster
    /// operation, snapshot, restore and zeebe pod start (until Ready) at its configured
    /// duration. Benchmarks compare a rehearsal's time with the union of these intervals.
    pub busy: BusyTime,
    key_counter: i64,
    next_partition: u32,
    pub cluster_id: String,
    /// The time pod state was last evaluated at (rolling updates, readiness).
    pub pod_clock: i64,
}

pub fn region_of(b: BrokerId) -> usize {
    (b % 2) as usize
}

fn exporter_region(id: &str) -> Option<usize> {
    id.chars().last().and_then(|c| c.to_digit(10)).map(|d| d as usize).filter(|r| *r < 2)
}

impl World {
    pub fn new(opts: WorldOptions, now_ms: i64) -> Self {
        let mut exporters = BTreeMap::new();
        for r in 0..2 {
            exporters.insert(format!("camundaregion{r}"), CAMUNDA_EXPORTER.to_string());
            if opts.legacy_exporters {
                exporters.insert(format!("elasticsearchregion{r}"), LEGACY_EXPORTER.to_string());
            }
        }
        let cluster =
            Cluster::new(opts.cluster_size, opts.partition_count, opts.replication_factor, &exporters, now_ms);
        let restart = opts.durations.pod_restart_ms;
        let region = |r| RegionSim {
            kubernetes: true,
            release: true,
            pvcs: opts.cluster_size / 2 + 1,
            webapps: true,
            create_schema: true,
            es: Some(Elasticsearch::new(r, true, now_ms)),
            // running and Ready when the lab starts
            pods: (0..opts.cluster_size / 2)
                .map(|i| PodSim::new(i, true, true, now_ms - restart as i64, restart))
                .collect(),
            rollout: None,
            releases: vec![ReleaseRev {
                version: 1,
                status: "deployed".into(),
                webapps: true,
                create_schema: true,
                created_ms: now_ms - restart as i64,
            }],
            generation: 1,
            current_revision: revision_for(true, true),
            installed_ms: now_ms - restart as i64,
            pvc_names: BTreeSet::new(),
        };
        let mut regions = [region(0), region(1)];
        for reg in regions.iter_mut() {
            reg.create_pvcs(opts.cluster_size / 2);
        }
        Self {
            regions,
            cluster,
            exporting: Exporting::Running,
            queues: exporters.keys().map(|e| (e.clone(), VecDeque::new())).collect(),
            definitions: Vec::new(),
            instance_count: 0,
            bucket: BTreeMap::new(),
            record: Vec::new(),
            busy: BusyTime::new(),
            key_counter: 0,
            next_partition: 0,
            cluster_id: "c8dr-lab-cluster".into(),
            opts,
            pod_clock: now_ms,
        }
    }

    // ---- liveness ----------------------------------------------------------------------------

    /// Brokers that run and gossip (members or not): their region runs and their pod is Ready
    /// (a restarting or stuck pod's broker is not).
    pub fn alive(&self) -> BTreeSet<BrokerId> {
        let max = self.cluster.brokers.keys().max().map(|m| m + 1).unwrap_or(0).max(self.opts.cluster_size);
        (0..max)
            .filter(|b| {
                let reg = &self.regions[region_of(*b)];
                reg.running() && reg.pods.get((b / 2) as usize).is_none_or(|p| p.ready(self.pod_clock))
            })
            .collect()
    }

    // ---- pods --------------------------------------------------------------------------------

    /// Starts every rolling-update step due at `pod_clock`: the next outdated pod is replaced
    /// once every pod of the StatefulSet is Ready.
    fn roll_due(&mut self) {
        let t = self.pod_clock;
        let restart = self.opts.durations.pod_restart_ms;
        for r in 0..2 {
            loop {
                let reg = &mut self.regions[r];
                if !reg.running() || reg.rollout.is_none() {
                    break;
                }
                if !reg.pods.iter().all(|p| p.ready(t)) {
                    break;
                }
                let outdated = reg.outdated();
                let Some(&ordinal) = outdated.first() else {
                    reg.rollout = None;
                    reg.current_revision = reg.update_revision();
                    break;
                };
                reg.rollout = Some(RolloutSim { pending: outdated });
                let (webapps, schema) = (reg.webapps, reg.create_schema);
                reg.pods[ordinal as usize].recreate(webapps, schema, t, restart);
                self.broker_restarted(r, ordinal, t);
            }
        }
    }

    /// A broker process started again (new pod): before 8.8.25 it re-enables exporters
    /// disabled through the API (#52260).
    fn broker_restarted(&mut self, r: usize, ordinal: u32, now_ms: i64) {
        if self.opts.exporter_flip_on_restart {
            self.cluster.reenable_exporters_of_broker(ordinal * 2 + r as u32, now_ms);
        }
    }

    /// The next time after `pod_clock` a pod turns Ready.
    fn next_pod_event(&self) -> Option<i64> {
        self.regions
            .iter()
            .filter(|reg| reg.running())
            .flat_map(|reg| reg.pods.iter())
            .filter(|p| p.stuck_since_ms.is_none() && p.ready_at_ms > self.pod_clock)
            .map(|p| p.ready_at_ms)
            .min()
    }

    /// Records the start of every pod that turned Ready at `t` as the installation's work:
    /// `[started, Ready)`. A start that never completes (the pod was stuck, deleted or its
    /// region lost before Ready) is not recorded.
    fn record_pod_starts(&mut self, t: i64) {
        for reg in self.regions.iter().filter(|reg| reg.running()) {
            for p in reg.pods.iter().filter(|p| p.stuck_since_ms.is_none() && p.ready_at_ms == t) {
                self.busy.record(p.started_ms, p.ready_at_ms);
            }
        }
    }

    /// `kubectl delete pod`: the StatefulSet recreates it with the configured template; a stuck
    /// pod comes back normally.
    pub fn delete_pod(&mut self, r: usize, ordinal: u32, now_ms: i64) -> bool {
        let restart = self.opts.durations.pod_restart_ms;
        let reg = &mut self.regions[r];
        if !reg.running() {
            return false;
        }
        let (webapps, schema) = (reg.webapps, reg.create_schema);
        let Some(pod) = reg.pods.get_mut(ordinal as usize) else {
            return false;
        };
        pod.recreate(webapps, schema, now_ms, restart);
        self.broker_restarted(r, ordinal, now_ms);
        self.advance(now_ms);
        true
    }

    /// The pod stays Running but not Ready until deleted (camunda/camunda#55038).
    pub fn stick_pod(&mut self, r: usize, ordinal: u32, now_ms: i64) -> bool {
        match self.regions[r].pods.get_mut(ordinal as usize) {
            Some(p) => {
                if p.stuck_since_ms.is_none() {
                    p.stuck_since_ms = Some(now_ms);
                }
                self.advance(now_ms);
                true
            }
            None => false,
        }
    }

    // ---- time --------------------------------------------------------------------------------

    pub fn advance(&mut self, now_ms: i64) {
        // pod events in time order, the cluster advanced to each with the brokers alive before it
        loop {
            self.roll_due();
            match self.next_pod_event().filter(|t| *t <= now_ms) {
                Some(t) => {
                    self.advance_cluster(t);
                    self.pod_clock = t;
                    self.record_pod_starts(t);
                }
                None => break,
            }
        }
        self.advance_cluster(now_ms);
        self.pod_clock = self.pod_clock.max(now_ms);
        self.roll_due();
    }

    fn advance_cluster(&mut self, now_ms: i64) {
        let alive = self.alive();
        let progress = Progress {
            alive: &alive,
            stuck_adds: self.opts.stuck_adds,
            broker_op_ms: self.opts.durations.broker_op_ms,
            exporter_op_ms: self.opts.durations.exporter_op_ms,
        };
        let events = self.cluster.advance(now_ms, &progress);
        for ev in &events {
            if let ChangeEvent::Applied(op, at_ms) = ev {
                let dur = if op.is_exporter_op() {
                    self.opts.durations.exporter_op_ms
                } else {
                    self.opts.durations.broker_op_ms
                };
                self.busy.record(at_ms - dur as i64, *at_ms);
            }
        }
        for ev in events {
            match ev {
                ChangeEvent::Applied(Op::PartitionEnableExporter { exporter, initialize_from: Some(src), .. }, _) => {
                    // The exporter continues from the source exporter's position.
                    let q = self.queues.get(&src).cloned().unwrap_or_default();
                    self.queues.insert(exporter, q);
                }
                ChangeEvent::Applied(Op::PartitionDisableExporter { exporter, .. }, _) => {
                    let any_enabled =
                        (1..=self.cluster.partition_count).any(|p| self.cluster.exporter_enabled_on(&exporter, p));
                    if !any_enabled {
                        self.queues.insert(exporter, VecDeque::new());
                    }
                }
                _ => {}
            }
        }
        self.flush(now_ms);
    }

    /// Exports queued records wherever the target Elasticsearch can take them.
    fn flush(&mut self, now_ms: i64) {
        if self.exporting == Exporting::Paused {
            return;
        }
        let ids: Vec<String> = self.queues.keys().cloned().collect();
        for id in ids {
            let Some(region) = exporter_region(&id) else {
                continue;
            };
            let legacy = self.cluster.exporter_types.get(&id).is_some_and(|t| t == LEGACY_EXPORTER);
            while let Some(rec) = self.queues.get(&id).and_then(|q| q.front()).cloned() {
                let r = &mut self.regions[region];
                if !r.running() {
                    break;
                }
                let Some(es) = r.es.as_mut() else { break };
                let docs: Vec<(String, Value)> = if legacy {
                    rec.docs.iter().map(|(_, d)| (es::INDEX_LEGACY_RECORDS.to_string(), d.clone())).collect()
                } else {
                    rec.docs.clone()
                };
                let writable = docs.iter().all(|(idx, _)| {
                    if legacy {
                        es.indices.get(idx).is_none_or(|i| i.ready(now_ms))
                    } else {
                        es.indices.get(idx).is_some_and(|i| i.ready(now_ms))
                    }
                });
                if !writable {
                    break;
                }
                for (idx, doc) in docs {
                    es.indices
                        .entry(idx.clone())
                        .or_insert_with(|| Index {
                            uuid: es::uuid_for(&idx, now_ms),
                            docs: vec![],
                            open: true,
                            restore: None,
                        })
                        .docs
                        .push(doc);
                }
                if let Some(q) = self.queues.get_mut(&id) {
                    q.pop_front();
                }
            }
        }
    }

    fn produce(&mut self, partition: u32, rec: ExportRecord, now_ms: i64) {
        let ids: Vec<String> = self.cluster.exporter_types.keys().cloned().collect();
        for id in ids {
            if self.cluster.exporter_enabled_on(&id, partition) {
                self.queues.entry(id).or_default().push_back(rec.clone());
            }
        }
        self.flush(now_ms);
    }

    fn next_key(&mut self, partition: u32) -> i64 {
        self.key_counter += 1;
        (i64::from(partition) << 51) + self.key_counter
    }

    // ---- management API ----------------------------------------------------------------------

    fn conflict(&self) -> Option<Reply> {
        self.cluster.pending.as_ref().map(|pc| {
            message(
                409,
                format!(
                    "Failed to handle request: another topology change (id {}) is in progress, cannot apply a new change until it is completed",
                    pc.id
                ),
            )
        })
    }

    pub fn patch_cluster(&mut self, req: &PatchRequest, force: bool, dry_run: bool, now_ms: i64) -> Reply {
        if let Some(c) = self.conflict() {
            return c;
        }
        let ops = match self.cluster.plan_patch(req, force) {
            Ok(ops) => ops,
            Err(e) => return message(400, e.0),
        };
        self.start_or_preview(ops, dry_run, now_ms)
    }

    pub fn exporter_change(
        &mut self,
        id: &str,
        enable: bool,
        initialize_from: Option<&str>,
        dry_run: bool,
        now_ms: i64,
    ) -> Reply {
        if let Some(c) = self.conflict() {
            return c;
        }
        let ops = match self.cluster.plan_exporter(id, enable, initialize_from) {
            Ok(ops) => ops,
            Err(e) => return message(400, e.0),
        };
        self.start_or_preview(ops, dry_run, now_ms)
    }

    fn start_or_preview(&mut self, ops: Vec<Op>, dry_run: bool, now_ms: i64) -> Reply {
        // Zeebe answers 202 with the plan for dry runs too; nothing is applied.
        let status = 202;
        if ops.is_empty() {
            // Nothing to do: no change is started; the id of the last change is reported.
            let id = self.cluster.last_change.as_ref().map(|c| c.id).unwrap_or(0);
            return (status, self.cluster.planned_json(id, &ops, now_ms));
        }
        let body = self.cluster.planned_json(self.cluster.next_change_id, &ops, now_ms);
        if !dry_run {
            self.cluster.start_change(ops, now_ms);
            self.advance(now_ms);
        }
        (status, body)
    }

    pub fn cancel_change(&mut self, id: i64, now_ms: i64) -> Reply {
        if self.cluster.cancel(id, now_ms) {
            (200, self.cluster.to_json(&self.cluster_id))
        } else {
            message(404, format!("No pending topology change with id {id}"))
        }
    }

    pub fn exporters_json(&self) -> Value {
        Value::Array(
            self.cluster
                .exporter_types
                .keys()
                .map(|e| json!({"exporterId": e, "status": self.cluster.exporter_status(e)}))
                .collect(),
        )
    }

    /// The first partition that lacks configured members, as the exporting API reports it.
    pub fn missing_members(&self) -> Option<String> {
        let alive = self.alive();
        for p in 1..=self.cluster.partition_count {
            let members = self.cluster.members(p);
            let active = self.cluster.active_members(p);
            let found = active.iter().filter(|(b, _)| alive.contains(b)).count();
            if found < members.len() || members.is_empty() {
                let leaders: Vec<String> = (1..=self.cluster.partition_count)
                    .map(|q| {
                        format!("{q}={}", self.cluster.leader(q, &alive).map(|b| b.to_string()).unwrap_or("-1".into()))
                    })
                    .collect();
                return Some(format!(
                    "Expected {} members of partition {p} but found {found}, current topology: BrokerClusterState{{brokers={:?}, partitionLeaders={{{}}}}}",
                    members.len(),
                    alive,
                    leaders.join(", ")
                ));
            }
        }
        None
    }

    pub fn exporting(&mut self, action: &str, soft: bool, now_ms: i64) -> Reply {
        if let Some(msg) = self.missing_members() {
            return (200, json!({"body": {"message": msg}, "status": 500, "contentType": null}));
        }
        self.exporting = match (action, soft) {
            ("pause", true) => Exporting::SoftPaused,
            ("pause", false) => Exporting::Paused,
            _ => Exporting::Running,
        };
        self.flush(now_ms);
        (200, json!({"body": null, "status": 204, "contentType": null}))
    }

    // ---- REST v2 ------------------------------------------------------------------------------

    pub fn topology_json(&self, region_ns: impl Fn(usize) -> String) -> Value {
        let alive = self.alive();
        let brokers: Vec<Value> = alive
            .iter()
            .map(|b| {
                let partitions: Vec<Value> = self
                    .cluster
                    .brokers
                    .get(b)
                    .map(|m| {
                        m.partitions
                            .iter()
                            .filter(|(_, pm)| !pm.joining)
                            .map(|(p, _)| {
                                let (role, health) = match self.cluster.leader(*p, &alive) {
                                    Some(l) if l == *b => ("leader", "healthy"),
                                    Some(_) => ("follower", "healthy"),
                                    None => ("inactive", "unhealthy"),
                                };
                                json!({"partitionId": p, "role": role, "health": health})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "nodeId": b,
                    "host": format!("camunda-zeebe-{}.camunda-zeebe.{}", b / 2, region_ns(region_of(*b))),
                    "port": 26501,
                    "partitions": partitions,
                    "version": "8.8.0",
                })
            })
            .collect();
        let last_completed = self
            .cluster
            .last_change
            .as_ref()
            .filter(|c| c.status == super::cluster::ChangeStatus::Completed)
            .map(|c| c.id.to_string())
            .unwrap_or_else(|| "-1".into());
        json!({
            "brokers": brokers,
            "clusterSize": self.cluster.brokers.len(),
            "partitionsCount": self.cluster.partition_count,
            "replicationFactor": self.cluster.replication_factor(),
            "gatewayVersion": "8.8.0",
            "lastCompletedChangeId": last_completed,
        })
    }

    pub fn deploy(&mut self, resources: Vec<(String, String)>, now_ms: i64) -> Reply {
        const PATH: &str = "/v2/deployments";
        let alive = self.alive();
        if self.cluster.leader(1, &alive).is_none() {
            return problem(
                503,
                "UNAVAILABLE",
                "Expected to handle REST API request, but no leader was found for partition 1",
                PATH,
            );
        }
        if resources.is_empty() {
            return problem(400, "INVALID_ARGUMENT", "No resources given (multipart part `resources`).", PATH);
        }
        let mut parsed = Vec::new();
        for (name, xml) in &resources {
            match parse_bpmn(xml) {
                Ok(procs) => parsed.extend(procs.into_iter().map(|(id, n, ut)| (name.clone(), xml.clone(), id, n, ut))),
                Err(e) => {
                    return problem(
                        400,
                        "INVALID_ARGUMENT",
                        format!("Command 'CREATE' rejected with code 'INVALID_ARGUMENT': '{name}': {e}"),
                        PATH,
                    );
                }
            }
        }
        let deployment_key = self.next_key(1);
        let mut deployments = Vec::new();
        for (resource_name, xml, id, name, has_user_task) in parsed {
            let latest = self.definitions.iter().filter(|d| d.bpmn_process_id == id).max_by_key(|d| d.version).cloned();
            let def = match latest {
                Some(d) if d.resource == xml => d,
                other => {
                    let def = Definition {
                        key: self.next_key(1),
                        bpmn_process_id: id.clone(),
                        name: name.clone(),
                        version: other.map(|d| d.version + 1).unwrap_or(1),
                        resource_name: resource_name.clone(),
                        resource: xml.clone(),
                        has_user_task,
                    };
                    self.definitions.push(def.clone());
                    let doc = json!({
                        "key": def.key.to_string(), "bpmnProcessId": def.bpmn_process_id, "name": def.name,
                        "version": def.version, "resourceName": def.resource_name, "tenantId": TENANT,
                    });
                    self.produce(
                        1,
                        ExportRecord { docs: vec![(es::INDEX_PROCESS_DEFINITION.to_string(), doc)] },
                        now_ms,
                    );
                    def
                }
            };
            deployments.push(json!({"processDefinition": {
                "processDefinitionId": def.bpmn_process_id, "processDefinitionVersion": def.version,
                "resourceName": def.resource_name, "tenantId": TENANT, "processDefinitionKey": def.key.to_string(),
            }}));
        }
        (200, json!({"deploymentKey": deployment_key.to_string(), "tenantId": TENANT, "deployments": deployments}))
    }

    pub fn create_instance(&mut self, body: &Value, now_ms: i64) -> Reply {
        const PATH: &str = "/v2/process-instances";
        let by_id = body.get("processDefinitionId").and_then(Value::as_str);
        let by_key = body.get("processDefinitionKey").and_then(|v| match v {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        });
        let def = match (by_id, by_key) {
            (Some(id), _) => {
                self.definitions.iter().filter(|d| d.bpmn_process_id == id).max_by_key(|d| d.version).cloned()
            }
            (None, Some(k)) => self.definitions.iter().find(|d| d.key == k).cloned(),
            (None, None) => {
                return problem(
                    400,
                    "INVALID_ARGUMENT",
                    "At least one of [processDefinitionId, processDefinitionKey] is required",
                    PATH,
                );
            }
        };
        let pc = self.cluster.partition_count.max(1);
        let partition = self.next_partition % pc + 1;
        self.next_partition = self.next_partition.wrapping_add(1);
        let alive = self.alive();
        if self.cluster.leader(partition, &alive).is_none() {
            return problem(
                503,
                "UNAVAILABLE",
                format!("Expected to handle REST API request, but no leader was found for partition {partition}"),
                PATH,
            );
        }
        let Some(def) = def else {
            return problem(
                404,
                "NOT_FOUND",
                format!(
                    "Command 'CREATE' rejected with code 'NOT_FOUND': Expected to find process definition with process ID '{}', but none found",
                    by_id.map(str::to_string).or(by_key.map(|k| k.to_string())).unwrap_or_default()
                ),
                PATH,
            );
        };
        let key = self.next_key(partition);
        self.instance_count += 1;
        let variables = body.get("variables").cloned().unwrap_or(json!({}));
        let mut docs = vec![(
            es::INDEX_LIST_VIEW.to_string(),
            json!({
                "processInstanceKey": key.to_string(), "processDefinitionKey": def.key.to_string(),
                "processDefinitionId": def.bpmn_process_id, "processDefinitionName": def.name,
                "processDefinitionVersion": def.version, "startDate": fmt_ms(now_ms), "state": "ACTIVE",
                "hasIncident": false, "tenantId": TENANT, "partitionId": partition,
            }),
        )];
        if def.has_user_task {
            docs.push((
                es::INDEX_TASK.to_string(),
                json!({"processInstanceKey": key.to_string(), "state": "CREATED", "creationDate": fmt_ms(now_ms)}),
            ));
        }
        self.produce(partition, ExportRecord { docs }, now_ms);
        (
            200,
            json!({
                "processDefinitionId": def.bpmn_process_id, "processDefinitionVersion": def.version,
                "tenantId": TENANT, "variables": variables, "processDefinitionKey": def.key.to_string(),
                "processInstanceKey": key.to_string(), "tags": [],
            }),
        )
    }

    /// Search answered from the region's Elasticsearch only.
    pub fn search(&self, region: usize, index: &str, body: &Value, map: impl Fn(&Value) -> Value) -> Reply {
        let docs: Vec<Value> = self.regions[region]
            .es
            .as_ref()
            .and_then(|es| es.indices.get(index))
            .map(|i| i.docs.iter().map(&map).collect())
            .unwrap_or_default();
        let filter = body.get("filter").and_then(Value::as_object).cloned().unwrap_or_default();
        let matched: Vec<Value> = docs
            .into_iter()
            .filter(|d| {
                filter.iter().all(|(k, want)| {
                    let have = d.get(k);
                    match (have, want) {
                        (Some(h), w) if h == w => true,
                        (Some(Value::String(h)), Value::Number(n)) => h == &n.to_string(),
                        (Some(Value::Number(h)), Value::String(s)) => &h.to_string() == s,
                        _ => false,
                    }
                })
            })
            .collect();
        let page = body.get("page");
        let from = page.and_then(|p| p.get("from")).and_then(Value::as_u64).unwrap_or(0) as usize;
        let limit = page.and_then(|p| p.get("limit")).and_then(Value::as_u64).unwrap_or(100) as usize;
        let total = matched.len();
        let items: Vec<Value> = matched.into_iter().skip(from).take(limit).collect();
        // Cursors are opaque strings (base64 of the sort values); null on an empty page.
        let cursor = |i: usize| json!(base64::engine::general_purpose::STANDARD.encode(format!("[{i}]")));
        let (start, end) =
            if items.is_empty() { (Value::Null, Value::Null) } else { (cursor(from), cursor(from + items.len() - 1)) };
        let page = json!({"totalItems": total, "hasMoreTotalItems": false, "startCursor": start, "endCursor": end});
        (200, json!({"items": items, "page": page}))
    }

    // ---- platform (Kubernetes / Helm) -----------------------------------------------------

    pub fn lose_region(&mut self, r: usize, now_ms: i64) {
        let reg = &mut self.regions[r];
        reg.kubernetes = false;
        reg.clear();
        // Snapshots the lost cluster was still writing never get finalized in the bucket.
        for snaps in self.bucket.values_mut() {
            snaps.retain(|_, s| s.finished(now_ms) || s.origin_region != r);
        }
    }

    pub fn recreate_region(&mut self, r: usize) {
        let reg = &mut self.regions[r];
        reg.kubernetes = true;
        reg.clear();
    }

    /// `helm install|upgrade`: the ConfigMap and a new release secret revision at once; the
    /// pods follow (install: all start together; upgrade: a rolling update when the pod
    /// template changed).
    pub fn helm(&mut self, r: usize, req: &HelmRequest, now_ms: i64) -> Result<(), (u16, String)> {
        let pod_count = self.opts.cluster_size / 2;
        let restart = self.opts.durations.pod_restart_ms;
        let reg = &mut self.regions[r];
        if !reg.kubernetes {
            return Err((
                409,
                format!("region {r}: the Kubernetes cluster is unreachable (region lost); recreate it first"),
            ));
        }
        match req.action {
            HelmAction::Install => {
                if reg.release {
                    return Err((409, "INSTALLATION FAILED: cannot re-use a name that is still in use".into()));
                }
                reg.release = true;
                reg.create_pvcs(pod_count);
                reg.webapps = req.webapps;
                reg.create_schema = req.create_schema;
                reg.installed_ms = now_ms;
                if reg.es.is_none() {
                    reg.es = Some(Elasticsearch::new(r, req.create_schema, now_ms));
                }
                reg.pods =
                    (0..pod_count).map(|i| PodSim::new(i, req.webapps, req.create_schema, now_ms, restart)).collect();
                reg.rollout = None;
                reg.generation = 1;
                reg.current_revision = reg.update_revision();
                let version = reg.releases.last().map(|x| x.version + 1).unwrap_or(1);
                reg.releases.push(ReleaseRev {
                    version,
                    status: "deployed".into(),
                    webapps: req.webapps,
                    create_schema: req.create_schema,
                    created_ms: now_ms,
                });
            }
            HelmAction::Upgrade => {
                if !reg.release {
                    return Err((404, "UPGRADE FAILED: \"camunda\" has no deployed releases".into()));
                }
                let before = reg.update_revision();
                reg.webapps = req.webapps;
                reg.create_schema = req.create_schema;
                if req.create_schema
                    && let Some(es) = reg.es.as_mut()
                {
                    es.create_schema();
                }
                for old in reg.releases.iter_mut().filter(|x| x.status == "deployed") {
                    old.status = "superseded".into();
                }
                let version = reg.releases.last().map(|x| x.version + 1).unwrap_or(1);
                reg.releases.push(ReleaseRev {
                    version,
                    status: "deployed".into(),
                    webapps: req.webapps,
                    create_schema: req.create_schema,
                    created_ms: now_ms,
                });
                if reg.update_revision() != before {
                    reg.generation += 1;
                }
                let outdated = reg.outdated();
                if !outdated.is_empty() {
                    reg.rollout = Some(RolloutSim { pending: outdated });
                }
            }
        }
        self.advance(now_ms);
        Ok(())
    }

    /// What the platform shows of region `r` (`crate::platform::PlatformStatus`).
    pub fn platform_status(&self, r: usize) -> crate::platform::PlatformStatus {
        use crate::platform::{HelmRelease, PlatformStatus, PodStatus, Rollout};
        let reg = &self.regions[r];
        let now = self.pod_clock;
        if !reg.running() {
            return PlatformStatus { release: false, pvcs: reg.pvcs, ..Default::default() };
        }
        let pods: Vec<PodStatus> = reg
            .pods
            .iter()
            .map(|p| PodStatus {
                name: p.name(),
                phase: "Running".into(),
                ready: p.ready(now),
                not_ready_since: (!p.ready(now))
                    .then(|| chrono::DateTime::from_timestamp_millis(p.ready_transition(now)))
                    .flatten(),
                profiles: p.started_app(now).then(|| p.profiles()),
                revision: Some(p.revision()),
                restarts: p.restarts,
                uid: Some(super::k8s_objects::uid(r, "Pod", &p.name(), p.incarnation)),
                terminating: false,
            })
            .collect();
        let profiles = match pods.first().and_then(|p| p.profiles.clone()) {
            Some(first) if pods.iter().all(|p| p.profiles.as_ref() == Some(&first)) => Some(first),
            _ => None,
        };
        let update = reg.update_revision();
        PlatformStatus {
            release: true,
            pvcs: reg.pvcs,
            profiles,
            configured_profiles: Some(reg.profiles()),
            create_schema: Some(reg.create_schema),
            rollout: Some(Rollout {
                generation: reg.generation,
                observed_generation: reg.generation,
                replicas: reg.pods.len() as i32,
                updated_replicas: reg.pods.iter().filter(|p| p.revision() == update).count() as i32,
                ready_replicas: reg.pods.iter().filter(|p| p.ready(now)).count() as i32,
                current_revision: reg.current_revision.clone(),
                update_revision: update,
            }),
            pods,
            helm_release: reg.releases.last().map(|x| HelmRelease {
                revision: x.version,
                status: x.status.clone(),
                chart_version: Some(super::pods::CHART_VERSION.into()),
            }),
        }
    }

    pub fn platform_json(&self, r: usize) -> Value {
        serde_json::to_value(self.platform_status(r)).unwrap_or(Value::Null)
    }

    // ---- Elasticsearch ---------------------------------------------------------------------------

    fn es_mut(&mut self, r: usize) -> Result<&mut Elasticsearch, Reply> {
        self.regions[r].es.as_mut().ok_or_else(|| es_error(503, "cluster_block_exception", "cluster not ready"))
    }

    pub fn es(&self, r: usize) -> Option<&Elasticsearch> {
        self.regions[r].es.as_ref()
    }

    pub fn put_repository(&mut self, r: usize, repo: &str, body: &Value) -> Reply {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        let mut settings = body.get("settings").and_then(Value::as_object).cloned().unwrap_or_default();
        // Elasticsearch keeps settings as strings: `"readonly": true` reads back as "true".
        for v in settings.values_mut() {
            if let Value::Bool(_) | Value::Number(_) = v {
                *v = Value::String(v.to_string());
            }
        }
        let needs = match kind.as_str() {
            "s3" | "gcs" => Some("bucket"),
            "azure" => None,
            "fs" | "url" => Some("location"),
            "" => {
                return es_error(400, "action_request_validation_exception", "Validation Failed: 1: type is missing;");
            }
            other => {
                return es_error(
                    500,
                    "repository_exception",
                    format!("[{repo}] repository type [{other}] does not exist"),
                );
            }
        };
        if let Some(key) = needs
            && !settings.contains_key(key)
            && !(key == "location" && settings.contains_key("url"))
        {
            return es_error(
                500,
                "repository_verification_exception",
                format!("[{repo}] No {key} defined for {kind} repository"),
            );
        }
        let es = match self.es_mut(r) {
            Ok(es) => es,
            Err(e) => return e,
        };
        es.repositories.insert(repo.to_string(), es::Repository { kind, settings });
        (200, json!({"acknowledged": true}))
    }

    pub fn delete_repository(&mut self, r: usize, repo: &str) -> Reply {
        let es = match self.es_mut(r) {
            Ok(es) => es,
            Err(e) => return e,
        };
        if es.repositories.remove(repo).is_none() {
            return es_error(404, "repository_missing_exception", format!("[{repo}] missing"));
        }
        (200, json!({"acknowledged": true}))
    }

    pub fn get_repositories(&self, r: usize, repo: Option<&str>) -> Reply {
        let Some(es) = self.es(r) else {
            return es_error(503, "cluster_block_exception", "cluster not ready");
        };
        let mut out = serde_json::Map::new();
        for (name, rp) in &es.repositories {
            if repo.is_none_or(|x| x == name || x == "_all" || es::wildcard(x, name)) {
                out.insert(name.clone(), json!({"type": rp.kind, "settings": rp.settings}));
            }
        }
        if let Some(x) = repo
            && out.is_empty()
            && !x.contains('*')
            && x != "_all"
        {
            return es_error(404, "repository_missing_exception", format!("[{x}] missing"));
        }
        (200, Value::Object(out))
    }

    fn repository(&self, r: usize, repo: &str) -> Result<es::Repository, Reply> {
        let Some(es) = self.es(r) else {
            return Err(es_error(503, "cluster_block_exception", "cluster not ready"));
        };
        es.repositories
            .get(repo)
            .cloned()
            .ok_or_else(|| es_error(404, "repository_missing_exception", format!("[{repo}] missing")))
    }

    /// Snapshots of a repository as region `r` sees them (in-progress ones only where they run).
    pub fn visible_snapshots(&self, r: usize, repo: &str, now_ms: i64) -> Result<Vec<StoredSnapshot>, Reply> {
        let rp = self.repository(r, repo)?;
        Ok(self
            .bucket
            .get(&rp.location())
            .map(|m| m.values().filter(|s| s.finished(now_ms) || s.origin_region == r).cloned().collect())
            .unwrap_or_default())
    }

    pub fn find_snapshot(&self, r: usize, repo: &str, snap: &str, now_ms: i64) -> Result<StoredSnapshot, Reply> {
        self.visible_snapshots(r, repo, now_ms)?
            .into_iter()
            .find(|s| s.name == snap)
            .ok_or_else(|| es_error(404, "snapshot_missing_exception", format!("[{repo}:{snap}] is missing")))
    }

    pub fn create_snapshot(
        &mut self,
        r: usize,
        repo: &str,
        snap: &str,
        body: &Value,
        now_ms: i64,
    ) -> Result<StoredSnapshot, Reply> {
        let rp = self.repository(r, repo)?;
        if snap.is_empty()
            || snap != snap.to_lowercase()
            || snap.contains([' ', ',', '#', '/', '\\', '*', '?', '"', '<', '>', '|'])
        {
            return Err(es_error(
                400,
                "invalid_snapshot_name_exception",
                format!(
                    "[{repo}:{snap}] Invalid snapshot name [{snap}], must be lowercase and must not contain whitespace or ,\"*\\<|>/?"
                ),
            ));
        }
        if rp.readonly() {
            return Err(es_error(
                500,
                "repository_exception",
                format!("[{repo}] cannot create snapshot in a readonly repository"),
            ));
        }
        let location = rp.location();
        if let Some(existing) = self.bucket.get(&location).and_then(|m| m.get(snap)) {
            let why = if existing.finished(now_ms) {
                "snapshot with the same name already exists"
            } else {
                "snapshot with the same name is already in-progress"
            };
            return Err(es_error(
                400,
                "invalid_snapshot_name_exception",
                format!("[{repo}:{snap}] Invalid snapshot name [{snap}], {why}"),
            ));
        }
        let include_global_state = body.get("include_global_state").and_then(Value::as_bool).unwrap_or(true);
        let partial = body.get("partial").and_then(Value::as_bool).unwrap_or(false);
        let es = self.es(r).ok_or_else(|| es_error(503, "cluster_block_exception", "cluster not ready"))?;
        let names = match body.get("indices") {
            Some(Value::String(s)) => es.resolve(s),
            Some(Value::Array(a)) => es.resolve(&a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
            _ => es.indices.keys().cloned().collect(),
        };
        let mut indices = BTreeMap::new();
        let mut failed = Vec::new();
        for n in names {
            let idx = &es.indices[&n];
            if idx.ready(now_ms) {
                indices.insert(n, idx.docs.clone());
            } else {
                failed.push(n);
            }
        }
        if !failed.is_empty() && !partial {
            return Err(es_error(
                500,
                "snapshot_exception",
                format!("[{repo}:{snap}] Indices don't have primary shards {failed:?}"),
            ));
        }
        let stored = StoredSnapshot {
            name: snap.to_string(),
            uuid: es::uuid_for(snap, now_ms),
            repository: repo.to_string(),
            origin_region: r,
            indices,
            failed_indices: failed,
            include_global_state,
            templates: include_global_state && es.templates,
            start_ms: now_ms,
            end_ms: now_ms + self.opts.durations.snapshot_ms as i64,
        };
        self.bucket.entry(location).or_default().insert(snap.to_string(), stored.clone());
        self.busy.record(stored.start_ms, stored.end_ms);
        Ok(stored)
    }

    pub fn delete_snapshot(&mut self, r: usize, repo: &str, snap: &str, now_ms: i64) -> Reply {
        let rp = match self.repository(r, repo) {
            Ok(rp) => rp,
            Err(e) => return e,
        };
        if let Err(e) = self.find_snapshot(r, repo, snap, now_ms) {
            return e;
        }
        if let Some(m) = self.bucket.get_mut(&rp.location()) {
            m.remove(snap);
        }
        (200, json!({"acknowledged": true}))
    }

    /// Starts a restore; returns the restored index names and when primaries are done.
    pub fn restore(
        &mut self,
        r: usize,
        repo: &str,
        snap: &str,
        body: &Value,
        now_ms: i64,
    ) -> Result<(Vec<String>, i64), Reply> {
        let s = self.find_snapshot(r, repo, snap, now_ms)?;
        if !s.finished(now_ms) {
            return Err(es_error(
                500,
                "snapshot_restore_exception",
                format!("[{repo}:{snap}/{}] cannot restore a snapshot that is still in progress", s.uuid),
            ));
        }
        let global = body.get("include_global_state").and_then(Value::as_bool).unwrap_or(false);
        if global && !s.include_global_state {
            return Err(es_error(
                500,
                "snapshot_restore_exception",
                format!(
                    "[{repo}:{snap}/{}] cannot restore global state since the snapshot was created without global state",
                    s.uuid
                ),
            ));
        }
        let wanted: Vec<String> = match body.get("indices") {
            Some(Value::String(x)) => {
                s.indices.keys().filter(|n| x.split(',').any(|p| es::wildcard(p.trim(), n))).cloned().collect()
            }
            Some(Value::Array(a)) => {
                let pats: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                s.indices.keys().filter(|n| pats.iter().any(|p| es::wildcard(p, n))).cloned().collect()
            }
            _ => s.indices.keys().cloned().collect(),
        };
        let restore_ms = self.opts.durations.restore_ms as i64;
        let es = self.es_mut(r)?;
        for n in &wanted {
            if es.indices.get(n).is_some_and(|i| i.open) {
                return Err(es_error(
                    500,
                    "snapshot_restore_exception",
                    format!(
                        "[{repo}:{snap}/{}] cannot restore index [{n}] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name",
                        s.uuid
                    ),
                ));
            }
        }
        let primary_done = now_ms + restore_ms * 6 / 10;
        for n in &wanted {
            es.indices.insert(
                n.clone(),
                Index {
                    uuid: es::uuid_for(n, now_ms),
                    docs: s.indices[n].clone(),
                    open: true,
                    restore: Some(RestoreInfo {
                        repository: repo.to_string(),
                        snapshot: snap.to_string(),
                        uuid: s.uuid.clone(),
                        start_ms: now_ms,
                        primary_done_ms: primary_done,
                        done_ms: now_ms + restore_ms,
                    }),
                },
            );
        }
        if global && s.templates {
            es.templates = true;
        }
        // With global state, every feature state of the snapshot is restored unless the request
        // names `["none"]` (an empty list means the default): `security` replaces this cluster's
        // users and API keys with the snapshot cluster's.
        let no_features = body
            .get("feature_states")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() == 1 && a[0].as_str() == Some("none"));
        if global && !no_features {
            es.security_of_region = s.origin_region;
        }
        self.busy.record(now_ms, now_ms + restore_ms);
        Ok((wanted, primary_done))
    }

    pub fn delete_indices(&mut self, r: usize, expr: &str) -> Reply {
        let es = match self.es_mut(r) {
            Ok(es) => es,
            Err(e) => return e,
        };
        let names = es.resolve(expr);
        if names.is_empty() && !expr.contains('*') {
            return es_error(404, "index_not_found_exception", format!("no such index [{expr}]"));
        }
        for n in names {
            es.indices.remove(&n);
        }
        (200, json!({"acknowledged": true}))
    }

    pub fn close_index(&mut self, r: usize, expr: &str) -> Reply {
        let es = match self.es_mut(r) {
            Ok(es) => es,
            Err(e) => return e,
        };
        let names = es.resolve(expr);
        if names.is_empty() {
            return es_error(404, "index_not_found_exception", format!("no such index [{expr}]"));
        }
        let mut out = serde_json::Map::new();
        for n in names {
            if let Some(i) = es.indices.get_mut(&n) {
                i.open = false;
            }
            out.insert(n, json!({"closed": true}));
        }
        (200, json!({"acknowledged": true, "shards_acknowledged": true, "indices": out}))
    }
}

/// Process ids, names and whether a user task is present, from a BPMN XML.
fn parse_bpmn(xml: &str) -> Result<Vec<(String, String, bool)>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not valid XML: {e}"))?;
    let procs: Vec<(String, String, bool)> = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "process")
        .filter_map(|n| {
            let id = n.attribute("id")?.to_string();
            let name = n.attribute("name").unwrap_or(&id).to_string();
            let ut = n.descendants().any(|c| c.is_element() && c.tag_name().name() == "userTask");
            Some((id, name, ut))
        })
        .collect();
    if procs.is_empty() {
        return Err("no BPMN process found".into());
    }
    Ok(procs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(
            WorldOptions {
                cluster_size: 8,
                partition_count: 8,
                replication_factor: 4,
                legacy_exporters: false,
                durations: LabDurations {
                    broker_op_ms: 10,
                    exporter_op_ms: 10,
                    snapshot_ms: 10,
                    restore_ms: 10,
                    pod_restart_ms: 0,
                },
                stuck_adds: false,
                exporter_flip_on_restart: false,
            },
            0,
        )
    }

    #[test]
    fn pause_fails_while_an_added_broker_is_still_joining() {
        let mut w = world();
        w.lose_region(1, 0);
        let remove = PatchRequest { remove: vec![1, 3, 5, 7], ..Default::default() };
        assert_eq!(w.patch_cluster(&remove, true, false, 0).0, 202);
        w.advance(1_000);
        assert!(w.cluster.pending.is_none());
        w.recreate_region(1);
        let install = HelmRequest { action: HelmAction::Install, webapps: false, create_schema: false };
        w.helm(1, &install, 1_000).unwrap();
        let add = PatchRequest { add: vec![1, 3, 5, 7], replication_factor: Some(4), ..Default::default() };
        assert_eq!(w.patch_cluster(&add, false, false, 1_000).0, 202);
        // Four BROKER_ADDs done, the first PARTITION_JOIN (partition 1, broker 1) under way.
        w.advance(1_045);
        let cluster = w.cluster.to_json("c");
        let b1 = cluster["brokers"].as_array().unwrap().iter().find(|b| b["id"] == 1).unwrap().clone();
        assert_eq!(b1["partitions"][0]["state"], "JOINING", "{b1}");
        let (status, body) = w.exporting("pause", false, 1_045);
        assert_eq!(status, 200);
        assert_eq!(body["status"], 500);
        let msg = body["body"]["message"].as_str().unwrap();
        assert!(msg.starts_with("Expected 3 members of partition 1 but found 2"), "{msg}");
        // Partition 1 keeps its leader meanwhile; once joined, pausing works.
        assert!(w.cluster.leader(1, &w.alive()).is_some());
        w.advance(10_000);
        assert!(w.cluster.pending.is_none());
        assert_eq!(w.exporting("pause", false, 10_000).1["status"], 204);
    }

    fn exporter_of(w: &World, broker: u32, id: &str) -> Vec<super::super::cluster::ExporterState> {
        w.cluster.brokers[&broker].partitions.values().filter_map(|pm| pm.exporters.get(id).copied()).collect()
    }

    /// A template change rolls the pods from the highest ordinal down, one at a time; each
    /// restarted broker (before 8.8.25) comes back with its exporters enabled, the others not yet.
    #[test]
    fn an_upgrade_restarts_one_broker_at_a_time_and_exporters_flip_per_restarted_pod() {
        use super::super::cluster::ExporterState::{Disabled, Enabled};
        let mut w = world();
        w.opts.durations.pod_restart_ms = 100;
        w.opts.exporter_flip_on_restart = true;
        assert_eq!(w.exporter_change("camundaregion1", false, None, false, 0).0, 202);
        w.advance(1_000);
        assert!(exporter_of(&w, 6, "camundaregion1").iter().all(|s| *s == Disabled));
        let upgrade = HelmRequest { action: HelmAction::Upgrade, webapps: false, create_schema: true };
        w.helm(0, &upgrade, 1_000).unwrap();
        // pod 3 of region 0 = broker 6 restarts first
        assert!(!w.alive().contains(&6) && w.alive().contains(&4));
        assert!(exporter_of(&w, 6, "camundaregion1").iter().all(|s| *s == Enabled));
        assert!(exporter_of(&w, 4, "camundaregion1").iter().all(|s| *s == Disabled));
        assert_eq!(w.exporting("pause", false, 1_000).1["status"], 500);
        w.advance(1_100);
        assert!(w.alive().contains(&6) && !w.alive().contains(&4), "broker 4 next");
        assert!(exporter_of(&w, 4, "camundaregion1").iter().all(|s| *s == Enabled));
        assert!(exporter_of(&w, 2, "camundaregion1").iter().all(|s| *s == Disabled));
        // jumping far ahead replays every step in order
        w.advance(5_000);
        assert_eq!(w.alive().len(), 8);
        let st = w.platform_status(0);
        assert!(st.rollout_complete(), "{:?}", st.rollout);
        assert_eq!(st.webapps_on(), Some(false));
        assert_eq!(st.helm_release.map(|h| (h.revision, h.status)), Some((2, "deployed".to_string())));
        // an upgrade that changes nothing in the template writes a revision but restarts nothing
        w.helm(0, &upgrade, 5_000).unwrap();
        assert_eq!(w.alive().len(), 8);
        assert_eq!(w.platform_status(0).helm_release.map(|h| h.revision), Some(3));
    }

    /// The installation's own work includes every pod start of a rolling upgrade, and counts
    /// concurrent activities once: two regions rolling at once, a snapshot during a rollout.
    #[test]
    fn rollouts_are_work_and_concurrent_work_counts_once() {
        let mut w = world();
        w.opts.durations.pod_restart_ms = 100;
        w.opts.durations.snapshot_ms = 100;
        let no_webapps = HelmRequest { action: HelmAction::Upgrade, webapps: false, create_schema: true };
        w.advance(1_000); // the lab advances the world before every action
        w.helm(0, &no_webapps, 1_000).unwrap();
        w.advance(2_000);
        // four pods, one after the other: [1000, 1400)
        assert_eq!(w.busy.within(0, 2_000), 400, "{:?}", w.busy);
        assert_eq!(w.busy.within(1_100, 1_250), 150, "a window cuts the rollout");
        // both regions roll at once: 400 ms of work, not 800
        let webapps = HelmRequest { action: HelmAction::Upgrade, webapps: true, create_schema: true };
        w.advance(3_000);
        w.helm(0, &webapps, 3_000).unwrap();
        w.helm(1, &no_webapps, 3_000).unwrap();
        w.advance(4_000);
        assert_eq!(w.busy.within(2_000, 4_000), 400, "{:?}", w.busy);
        // a snapshot from 5350 to 5450 during a rollout from 5000 to 5400 adds 50 ms
        w.advance(5_000);
        w.helm(0, &no_webapps, 5_000).unwrap();
        let repo = json!({"type": "fs", "settings": {"location": "/backups"}});
        assert_eq!(w.put_repository(0, "camunda_backup", &repo).0, 200);
        w.advance(5_350);
        w.create_snapshot(0, "camunda_backup", "s1", &json!({}), 5_350).unwrap();
        w.advance(6_000);
        assert_eq!(w.busy.within(4_000, 6_000), 450, "{:?}", w.busy);
        assert_eq!(w.busy.total(), 1_250);
    }

    /// A cluster change's operations are work at their configured durations, merged with a
    /// rollout they overlap; an install's pods start together.
    #[test]
    fn cluster_operations_and_installs_are_work() {
        let mut w = world();
        w.opts.durations.pod_restart_ms = 100;
        assert_eq!(w.exporter_change("camundaregion1", false, None, false, 0).0, 202);
        w.advance(1_000);
        let ops = w.busy.total();
        assert!(ops > 0 && ops.is_multiple_of(10), "each operation takes 10 ms: {:?}", w.busy);
        assert_eq!(w.busy.intervals().len(), 1, "operations run back to back: {:?}", w.busy);
        w.lose_region(1, 1_000);
        w.recreate_region(1);
        let install = HelmRequest { action: HelmAction::Install, webapps: false, create_schema: false };
        w.advance(2_000);
        w.helm(1, &install, 2_000).unwrap();
        w.advance(3_000);
        assert_eq!(w.busy.within(2_000, 3_000), 100, "four pods start together: {:?}", w.busy);
    }

    /// A pod start that never completes (stuck pod, region lost during a rollout) is not work.
    #[test]
    fn unfinished_pod_starts_are_not_work() {
        let mut w = world();
        w.opts.durations.pod_restart_ms = 100;
        let no_webapps = HelmRequest { action: HelmAction::Upgrade, webapps: false, create_schema: true };
        w.advance(1_000); // the lab advances the world before every action
        w.helm(0, &no_webapps, 1_000).unwrap();
        w.advance(1_050);
        w.stick_pod(0, 3, 1_050);
        w.advance(2_000);
        assert_eq!(w.busy.total(), 0, "{:?}", w.busy);
        // deleted, the pod starts again and the rollout goes on: [2000, 2400)
        w.advance(2_000);
        assert!(w.delete_pod(0, 3, 2_000));
        w.advance(2_150);
        w.lose_region(0, 2_150);
        w.advance(3_000);
        assert_eq!(w.busy.intervals(), &[(2_000, 2_100)], "only pod 3 became Ready");
    }

    /// With global state, Elasticsearch restores every feature state (security included) unless
    /// the request says `feature_states: ["none"]`.
    #[test]
    fn a_restore_with_global_state_replaces_security_unless_feature_states_none() {
        let mut w = world();
        let repo = json!({"type": "fs", "settings": {"location": "/backups"}});
        for r in 0..2 {
            assert_eq!(w.put_repository(r, "camunda_backup", &repo).0, 200);
        }
        w.create_snapshot(0, "camunda_backup", "s1", &json!({"include_global_state": true}), 0).unwrap();
        let restore = |w: &mut World, body: Value| {
            let es = w.regions[1].es.as_mut().unwrap();
            es.indices.clear();
            es.security_of_region = 1;
            w.restore(1, "camunda_backup", "s1", &body, 100).unwrap();
            w.regions[1].es.as_ref().unwrap().security_of_region
        };
        assert_eq!(restore(&mut w, json!({"include_global_state": true})), 0, "security replaced");
        assert_eq!(
            restore(&mut w, json!({"include_global_state": true, "feature_states": []})),
            0,
            "[] is the default"
        );
        assert_eq!(restore(&mut w, json!({"include_global_state": true, "feature_states": ["none"]})), 1);
        assert_eq!(restore(&mut w, json!({"include_global_state": false})), 1);
    }
}
