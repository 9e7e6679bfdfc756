//! The Zeebe cluster configuration as the management API sees it: brokers, partition replicas
//! with priorities and exporter config, and asynchronous configuration changes made of
//! operations that complete one after another (docs/target-apis.md §2.1, §2.2).
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub type BrokerId = u32;
pub type PartitionId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExporterState {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionMember {
    pub priority: u32,
    pub exporters: BTreeMap<String, ExporterState>,
    /// PARTITION_JOIN in progress: configured (state JOINING) but not yet a working replica.
    pub joining: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokerMember {
    pub version: u64,
    pub last_updated_ms: i64,
    pub partitions: BTreeMap<PartitionId, PartitionMember>,
}

/// One operation of a configuration change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    BrokerAdd {
        broker: BrokerId,
    },
    BrokerRemove {
        coordinator: BrokerId,
        broker: BrokerId,
    },
    PartitionJoin {
        broker: BrokerId,
        partition: PartitionId,
        priority: u32,
    },
    PartitionLeave {
        broker: BrokerId,
        partition: PartitionId,
    },
    PartitionReconfigurePriority {
        broker: BrokerId,
        partition: PartitionId,
        priority: u32,
    },
    PartitionForceReconfigure {
        broker: BrokerId,
        partition: PartitionId,
        members: Vec<BrokerId>,
    },
    PartitionEnableExporter {
        broker: BrokerId,
        partition: PartitionId,
        exporter: String,
        initialize_from: Option<String>,
    },
    PartitionDisableExporter {
        broker: BrokerId,
        partition: PartitionId,
        exporter: String,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::BrokerAdd { .. } => "BROKER_ADD",
            Op::BrokerRemove { .. } => "BROKER_REMOVE",
            Op::PartitionJoin { .. } => "PARTITION_JOIN",
            Op::PartitionLeave { .. } => "PARTITION_LEAVE",
            Op::PartitionReconfigurePriority { .. } => "PARTITION_RECONFIGURE_PRIORITY",
            Op::PartitionForceReconfigure { .. } => "PARTITION_FORCE_RECONFIGURE",
            Op::PartitionEnableExporter { .. } => "PARTITION_ENABLE_EXPORTER",
            Op::PartitionDisableExporter { .. } => "PARTITION_DISABLE_EXPORTER",
        }
    }

    /// The broker that executes the operation (it must be running for the operation to progress).
    pub fn executor(&self) -> BrokerId {
        match self {
            Op::BrokerAdd { broker }
            | Op::PartitionJoin { broker, .. }
            | Op::PartitionLeave { broker, .. }
            | Op::PartitionReconfigurePriority { broker, .. }
            | Op::PartitionForceReconfigure { broker, .. }
            | Op::PartitionEnableExporter { broker, .. }
            | Op::PartitionDisableExporter { broker, .. } => *broker,
            Op::BrokerRemove { coordinator, .. } => *coordinator,
        }
    }

    pub fn is_exporter_op(&self) -> bool {
        matches!(self, Op::PartitionEnableExporter { .. } | Op::PartitionDisableExporter { .. })
    }

    /// Operations that bring a new member in (blocked by the `stuck_adds` knob).
    pub fn is_join(&self) -> bool {
        matches!(self, Op::BrokerAdd { .. } | Op::PartitionJoin { .. })
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("operation".into(), json!(self.name()));
        match self {
            Op::BrokerAdd { broker } => {
                m.insert("brokerId".into(), json!(broker));
            }
            Op::BrokerRemove { coordinator, broker } => {
                m.insert("brokerId".into(), json!(coordinator));
                m.insert("brokers".into(), json!([broker]));
            }
            Op::PartitionJoin { broker, partition, priority }
            | Op::PartitionReconfigurePriority { broker, partition, priority } => {
                m.insert("brokerId".into(), json!(broker));
                m.insert("partitionId".into(), json!(partition));
                m.insert("priority".into(), json!(priority));
            }
            Op::PartitionLeave { broker, partition } => {
                m.insert("brokerId".into(), json!(broker));
                m.insert("partitionId".into(), json!(partition));
            }
            Op::PartitionForceReconfigure { broker, partition, members } => {
                m.insert("brokerId".into(), json!(broker));
                m.insert("partitionId".into(), json!(partition));
                m.insert("brokers".into(), json!(members));
            }
            Op::PartitionEnableExporter { broker, partition, exporter, .. }
            | Op::PartitionDisableExporter { broker, partition, exporter } => {
                m.insert("brokerId".into(), json!(broker));
                m.insert("partitionId".into(), json!(partition));
                m.insert("exporterId".into(), json!(exporter));
            }
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeStatus {
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastChange {
    pub id: i64,
    pub status: ChangeStatus,
    pub started_ms: i64,
    pub completed_ms: i64,
}

#[derive(Debug, Clone)]
pub struct PendingChange {
    pub id: i64,
    pub started_ms: i64,
    pub completed: Vec<(Op, i64)>,
    pub pending: VecDeque<Op>,
    /// When the operation at the head of `pending` started (or was last found blocked).
    pub head_started_ms: i64,
}

/// What happened while advancing a pending change.
#[derive(Debug, Clone)]
pub enum ChangeEvent {
    /// An operation applied, and when (simulated ms; it ran for its duration before that).
    Applied(Op, i64),
    Completed {
        id: i64,
    },
}

/// Everything needed to decide whether an operation can progress and how long it takes.
pub struct Progress<'a> {
    pub alive: &'a BTreeSet<BrokerId>,
    pub stuck_adds: bool,
    pub broker_op_ms: u64,
    pub exporter_op_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub version: u64,
    pub brokers: BTreeMap<BrokerId, BrokerMember>,
    pub partition_count: u32,
    /// Configured exporters: id -> type (class name).
    pub exporter_types: BTreeMap<String, String>,
    pub last_change: Option<LastChange>,
    pub pending: Option<PendingChange>,
    pub next_change_id: i64,
}

/// A request that Zeebe rejects with 400 (the message is what Zeebe says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Round-robin distribution: partition p (1-based) on brokers[(p-1+i) % n], priority rf - i.
pub fn round_robin(brokers: &[BrokerId], partition_count: u32, rf: u32) -> BTreeMap<PartitionId, Vec<(BrokerId, u32)>> {
    let n = brokers.len();
    let mut out = BTreeMap::new();
    for p in 1..=partition_count {
        let replicas = (0..rf as usize).map(|i| (brokers[(p as usize - 1 + i) % n], rf - i as u32)).collect::<Vec<_>>();
        out.insert(p, replicas);
    }
    out
}

impl Cluster {
    /// A fresh cluster with the round-robin distribution and every exporter enabled.
    pub fn new(
        cluster_size: u32,
        partition_count: u32,
        rf: u32,
        exporters: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Self {
        let ids: Vec<BrokerId> = (0..cluster_size).collect();
        let mut brokers: BTreeMap<BrokerId, BrokerMember> = ids
            .iter()
            .map(|b| (*b, BrokerMember { version: 1, last_updated_ms: now_ms, partitions: BTreeMap::new() }))
            .collect();
        let enabled: BTreeMap<String, ExporterState> =
            exporters.keys().map(|e| (e.clone(), ExporterState::Enabled)).collect();
        for (p, replicas) in round_robin(&ids, partition_count, rf) {
            for (b, priority) in replicas {
                if let Some(m) = brokers.get_mut(&b) {
                    m.partitions.insert(p, PartitionMember { priority, exporters: enabled.clone(), joining: false });
                }
            }
        }
        Self {
            version: 1,
            brokers,
            partition_count,
            exporter_types: exporters.clone(),
            last_change: None,
            pending: None,
            next_change_id: 1,
        }
    }

    /// Configured members of a partition with their priority.
    pub fn members(&self, p: PartitionId) -> Vec<(BrokerId, u32)> {
        self.brokers.iter().filter_map(|(b, m)| m.partitions.get(&p).map(|pm| (*b, pm.priority))).collect()
    }

    /// Members that completed their join (working replicas).
    pub fn active_members(&self, p: PartitionId) -> Vec<(BrokerId, u32)> {
        self.brokers
            .iter()
            .filter_map(|(b, m)| m.partitions.get(&p).filter(|pm| !pm.joining).map(|pm| (*b, pm.priority)))
            .collect()
    }

    /// Replication factor as `/v2/topology` reports it: the smallest replica count.
    pub fn replication_factor(&self) -> u32 {
        (1..=self.partition_count).map(|p| self.members(p).len() as u32).min().unwrap_or(0)
    }

    /// Leader of a partition: the live member with the highest priority, if a quorum is alive.
    pub fn leader(&self, p: PartitionId, alive: &BTreeSet<BrokerId>) -> Option<BrokerId> {
        let members = self.active_members(p);
        let live: Vec<_> = members.iter().filter(|(b, _)| alive.contains(b)).collect();
        if live.len() * 2 > members.len() {
            live.iter().max_by_key(|(b, prio)| (*prio, std::cmp::Reverse(*b))).map(|(b, _)| *b)
        } else {
            None
        }
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    // ---- JSON views ----------------------------------------------------------------------

    pub fn brokers_json(&self) -> Value {
        Value::Array(
            self.brokers
                .iter()
                .map(|(id, m)| {
                    json!({
                        "id": id,
                        "state": "ACTIVE",
                        "version": m.version,
                        "lastUpdatedAt": fmt_ms(m.last_updated_ms),
                        "partitions": m.partitions.iter().map(|(p, pm)| json!({
                            "id": p,
                            "state": if pm.joining { "JOINING" } else { "ACTIVE" },
                            "priority": pm.priority,
                            "config": {"exporting": {"exporters": pm.exporters.iter()
                                .map(|(e, s)| json!({"id": e, "state": s})).collect::<Vec<_>>()}}
                        })).collect::<Vec<_>>()
                    })
                })
                .collect(),
        )
    }

    /// `GET /actuator/cluster`.
    pub fn to_json(&self, cluster_id: &str) -> Value {
        let mut v = json!({
            "version": self.version,
            "brokers": self.brokers_json(),
            "routing": {
                "version": 1,
                "requestHandling": {"strategy": "AllPartitions", "partitionCount": self.partition_count},
                "messageCorrelation": {"strategy": "HashMod", "partitionCount": self.partition_count}
            },
            "clusterId": cluster_id,
        });
        if let Some(lc) = &self.last_change {
            v["lastChange"] = json!({
                "id": lc.id, "status": lc.status,
                "startedAt": fmt_ms(lc.started_ms), "completedAt": fmt_ms(lc.completed_ms)
            });
        }
        if let Some(pc) = &self.pending {
            v["pendingChange"] = json!({
                "id": pc.id,
                "status": "IN_PROGRESS",
                "startedAt": fmt_ms(pc.started_ms),
                "completed": pc.completed.iter().map(|(op, at)| {
                    let mut j = op.to_json();
                    j["completedAt"] = json!(fmt_ms(*at));
                    j
                }).collect::<Vec<_>>(),
                "pending": pc.pending.iter().map(Op::to_json).collect::<Vec<_>>(),
            });
        }
        v
    }

    /// The 202 body of a change request (also for dry runs).
    pub fn planned_json(&self, change_id: i64, ops: &[Op], now_ms: i64) -> Value {
        let mut expected = self.clone();
        for op in ops {
            expected.apply(op, now_ms);
        }
        json!({
            "changeId": change_id,
            "currentTopology": self.brokers_json(),
            "plannedChanges": ops.iter().map(Op::to_json).collect::<Vec<_>>(),
            "expectedTopology": expected.brokers_json(),
        })
    }

    // ---- planning --------------------------------------------------------------------------

    /// Plans `PATCH /actuator/cluster` (validation as in Zeebe 8.8's ClusterEndpoint).
    pub fn plan_patch(&self, req: &PatchRequest, force: bool) -> Result<Vec<Op>, Invalid> {
        let add: BTreeSet<BrokerId> = req.add.iter().copied().collect();
        let remove: BTreeSet<BrokerId> = req.remove.iter().copied().collect();
        if req.count.is_some() && (!add.is_empty() || !remove.is_empty()) {
            return Err(Invalid(
                "Cannot change brokers count and add/remove brokers at the same time. Use either count or add/remove."
                    .into(),
            ));
        }
        if force {
            if !add.is_empty() {
                return Err(Invalid("Cannot force add brokers".into()));
            }
            if req.count.is_some() {
                return Err(Invalid("Cannot force change the broker count.".into()));
            }
            if req.partition_count.is_some() {
                return Err(Invalid("Cannot force change the partition count.".into()));
            }
            if req.replication_factor.is_some() {
                return Err(Invalid("Cannot force change the replication factor.".into()));
            }
            if remove.is_empty() {
                return Err(Invalid("Must provide a set of brokers to force remove.".into()));
            }
            return self.plan_force_remove(&remove);
        }
        if let Some(pc) = req.partition_count
            && pc != self.partition_count
        {
            if pc < self.partition_count {
                return Err(Invalid(format!(
                    "Partition count can only be increased: requested {pc}, current {}",
                    self.partition_count
                )));
            }
            return Err(Invalid("The lab does not simulate partition scaling (partitions.count).".into()));
        }
        for b in &add {
            if self.brokers.contains_key(b) {
                return Err(Invalid(format!("Expected to add broker {b}, but it is already part of the cluster")));
            }
        }
        for b in &remove {
            if !self.brokers.contains_key(b) {
                return Err(Invalid(format!("Expected to remove broker {b}, but it is not part of the cluster")));
            }
        }
        let target: BTreeSet<BrokerId> = match req.count {
            Some(c) => (0..c).collect(),
            None => self.brokers.keys().copied().chain(add.iter().copied()).filter(|b| !remove.contains(b)).collect(),
        };
        if target.is_empty() {
            return Err(Invalid("Cannot remove all brokers of the cluster".into()));
        }
        let rf = req.replication_factor.unwrap_or_else(|| self.members(1).len() as u32).max(1);
        if rf as usize > target.len() {
            return Err(Invalid(format!(
                "Replication factor {rf} must not be greater than the number of brokers {}",
                target.len()
            )));
        }
        let target_list: Vec<BrokerId> = target.iter().copied().collect();
        let dist = round_robin(&target_list, self.partition_count, rf);
        let mut ops = Vec::new();
        for b in &target {
            if !self.brokers.contains_key(b) {
                ops.push(Op::BrokerAdd { broker: *b });
            }
        }
        for (p, replicas) in &dist {
            let current: BTreeMap<BrokerId, u32> = self.members(*p).into_iter().collect();
            for (b, prio) in replicas {
                if !current.contains_key(b) {
                    ops.push(Op::PartitionJoin { broker: *b, partition: *p, priority: *prio });
                }
            }
        }
        for (p, replicas) in &dist {
            let wanted: BTreeMap<BrokerId, u32> = replicas.iter().copied().collect();
            for (b, _) in self.members(*p) {
                if !wanted.contains_key(&b) {
                    ops.push(Op::PartitionLeave { broker: b, partition: *p });
                }
            }
        }
        for (p, replicas) in &dist {
            let current: BTreeMap<BrokerId, u32> = self.members(*p).into_iter().collect();
            for (b, prio) in replicas {
                if let Some(cur) = current.get(b)
                    && cur != prio
                {
                    ops.push(Op::PartitionReconfigurePriority { broker: *b, partition: *p, priority: *prio });
                }
            }
        }
        for b in self.brokers.keys() {
            if !target.contains(b) {
                let coordinator = target.iter().next().copied().unwrap_or(*b);
                ops.push(Op::BrokerRemove { coordinator, broker: *b });
            }
        }
        Ok(ops)
    }

    fn plan_force_remove(&self, remove: &BTreeSet<BrokerId>) -> Result<Vec<Op>, Invalid> {
        let unknown: Vec<_> = remove.iter().filter(|b| !self.brokers.contains_key(b)).collect();
        if !unknown.is_empty() {
            return Err(Invalid(format!(
                "Expected to remove brokers {unknown:?}, but they are not part of the current topology"
            )));
        }
        let surviving: Vec<BrokerId> = self.brokers.keys().filter(|b| !remove.contains(b)).copied().collect();
        let Some(coordinator) = surviving.first().copied() else {
            return Err(Invalid("Cannot force remove all brokers of the cluster".into()));
        };
        let mut ops = Vec::new();
        for p in 1..=self.partition_count {
            let members: Vec<BrokerId> = self.members(p).into_iter().map(|(b, _)| b).collect();
            if members.iter().any(|b| remove.contains(b)) {
                let remaining: Vec<BrokerId> = members.iter().filter(|b| !remove.contains(b)).copied().collect();
                let Some(exec) = remaining.first().copied() else {
                    return Err(Invalid(format!("Cannot force remove all replicas of partition {p}")));
                };
                ops.push(Op::PartitionForceReconfigure { broker: exec, partition: p, members: remaining });
            }
        }
        for b in remove {
            ops.push(Op::BrokerRemove { coordinator, broker: *b });
        }
        Ok(ops)
    }

    /// Plans enabling or disabling an exporter on every partition replica that needs it.
    pub fn plan_exporter(
        &self,
        exporter: &str,
        enable: bool,
        initialize_from: Option<&str>,
    ) -> Result<Vec<Op>, Invalid> {
        let Some(kind) = self.exporter_types.get(exporter) else {
            return Err(Invalid(format!("Exporter '{exporter}' is not configured")));
        };
        if let Some(from) = initialize_from {
            match self.exporter_types.get(from) {
                None => {
                    return Err(Invalid(format!("Exporter '{from}' (initializeFrom) is not configured")));
                }
                Some(k) if k != kind => {
                    return Err(Invalid(format!(
                        "Exporter '{exporter}' cannot be initialized from '{from}': exporters must be of the same type"
                    )));
                }
                Some(_) if from == exporter => {
                    return Err(Invalid(format!("Exporter '{exporter}' cannot be initialized from itself")));
                }
                _ => {}
            }
        }
        let wanted = if enable { ExporterState::Enabled } else { ExporterState::Disabled };
        let mut ops = Vec::new();
        for (b, m) in &self.brokers {
            for (p, pm) in &m.partitions {
                if pm.exporters.get(exporter) != Some(&wanted) {
                    ops.push(if enable {
                        Op::PartitionEnableExporter {
                            broker: *b,
                            partition: *p,
                            exporter: exporter.to_string(),
                            initialize_from: initialize_from.map(str::to_string),
                        }
                    } else {
                        Op::PartitionDisableExporter { broker: *b, partition: *p, exporter: exporter.to_string() }
                    });
                }
            }
        }
        Ok(ops)
    }

    /// Starts a change (the caller checked there is none pending). Returns its id.
    pub fn start_change(&mut self, ops: Vec<Op>, now_ms: i64) -> i64 {
        let id = self.next_change_id;
        self.next_change_id += 1;
        self.pending = Some(PendingChange {
            id,
            started_ms: now_ms,
            completed: Vec::new(),
            pending: ops.into(),
            head_started_ms: now_ms,
        });
        id
    }

    /// Cancels the pending change with this id; applied operations stay applied.
    pub fn cancel(&mut self, id: i64, now_ms: i64) -> bool {
        match &self.pending {
            Some(pc) if pc.id == id => {
                self.last_change = Some(LastChange {
                    id,
                    status: ChangeStatus::Cancelled,
                    started_ms: pc.started_ms,
                    completed_ms: now_ms,
                });
                self.pending = None;
                self.version += 1;
                true
            }
            _ => false,
        }
    }

    /// Advances the pending change up to `now_ms`.
    pub fn advance(&mut self, now_ms: i64, progress: &Progress<'_>) -> Vec<ChangeEvent> {
        let mut events = Vec::new();
        while let Some(pc) = self.pending.as_mut() {
            let Some(op) = pc.pending.front().cloned() else {
                let done_at = pc.completed.last().map(|(_, t)| *t).unwrap_or(pc.started_ms);
                let id = pc.id;
                self.last_change = Some(LastChange {
                    id,
                    status: ChangeStatus::Completed,
                    started_ms: pc.started_ms,
                    completed_ms: done_at,
                });
                self.pending = None;
                self.version += 1;
                events.push(ChangeEvent::Completed { id });
                break;
            };
            let blocked = !progress.alive.contains(&op.executor()) || (progress.stuck_adds && op.is_join());
            if blocked {
                pc.head_started_ms = now_ms;
                break;
            }
            let dur = if op.is_exporter_op() { progress.exporter_op_ms } else { progress.broker_op_ms } as i64;
            let due = pc.head_started_ms + dur;
            if due > now_ms {
                if let Op::PartitionJoin { broker, partition, priority } = op {
                    self.begin_join(broker, partition, priority);
                }
                break;
            }
            pc.pending.pop_front();
            pc.completed.push((op.clone(), due));
            pc.head_started_ms = due;
            self.apply(&op, due);
            events.push(ChangeEvent::Applied(op, due));
        }
        events
    }

    /// A PARTITION_JOIN under way: the replica is configured (JOINING) but does not work yet.
    fn begin_join(&mut self, broker: BrokerId, partition: PartitionId, priority: u32) {
        if self.brokers.get(&broker).is_none_or(|m| m.partitions.contains_key(&partition)) {
            return;
        }
        let exporters = self.join_exporters(partition);
        if let Some(m) = self.brokers.get_mut(&broker) {
            m.partitions.insert(partition, PartitionMember { priority, exporters, joining: true });
            m.version += 1;
        }
        self.version += 1;
    }

    /// The exporter config a joining replica takes over from the partition's working replicas.
    fn join_exporters(&self, partition: PartitionId) -> BTreeMap<String, ExporterState> {
        self.brokers
            .values()
            .filter_map(|m| m.partitions.get(&partition))
            .filter(|pm| !pm.joining)
            .max_by_key(|pm| pm.priority)
            .map(|pm| pm.exporters.clone())
            .unwrap_or_else(|| self.exporter_types.keys().map(|e| (e.clone(), ExporterState::Enabled)).collect())
    }

    /// Applies one operation to the configuration.
    pub fn apply(&mut self, op: &Op, now_ms: i64) {
        self.version += 1;
        let touch = |m: &mut BrokerMember| {
            m.version += 1;
            m.last_updated_ms = now_ms;
        };
        match op {
            Op::BrokerAdd { broker } => {
                self.brokers.entry(*broker).or_insert(BrokerMember {
                    version: 0,
                    last_updated_ms: now_ms,
                    partitions: BTreeMap::new(),
                });
                if let Some(m) = self.brokers.get_mut(broker) {
                    touch(m);
                }
            }
            Op::BrokerRemove { broker, .. } => {
                self.brokers.remove(broker);
            }
            Op::PartitionJoin { broker, partition, priority } => {
                let exporters = self.join_exporters(*partition);
                if let Some(m) = self.brokers.get_mut(broker) {
                    m.partitions.insert(*partition, PartitionMember { priority: *priority, exporters, joining: false });
                    touch(m);
                }
            }
            Op::PartitionLeave { broker, partition } => {
                if let Some(m) = self.brokers.get_mut(broker) {
                    m.partitions.remove(partition);
                    touch(m);
                }
            }
            Op::PartitionReconfigurePriority { broker, partition, priority } => {
                if let Some(m) = self.brokers.get_mut(broker) {
                    if let Some(pm) = m.partitions.get_mut(partition) {
                        pm.priority = *priority;
                    }
                    touch(m);
                }
            }
            Op::PartitionForceReconfigure { partition, members, .. } => {
                for (b, m) in self.brokers.iter_mut() {
                    if !members.contains(b) && m.partitions.remove(partition).is_some() {
                        touch(m);
                    }
                }
            }
            Op::PartitionEnableExporter { broker, partition, exporter, .. } => {
                self.set_exporter(*broker, *partition, exporter, ExporterState::Enabled, now_ms)
            }
            Op::PartitionDisableExporter { broker, partition, exporter } => {
                self.set_exporter(*broker, *partition, exporter, ExporterState::Disabled, now_ms)
            }
        }
    }

    fn set_exporter(&mut self, b: BrokerId, p: PartitionId, e: &str, s: ExporterState, now_ms: i64) {
        if let Some(m) = self.brokers.get_mut(&b) {
            if let Some(pm) = m.partitions.get_mut(&p) {
                pm.exporters.insert(e.to_string(), s);
            }
            m.version += 1;
            m.last_updated_ms = now_ms;
        }
    }

    /// One broker restarted (pods before 8.8.25, #52260): every exporter is enabled again on
    /// its partitions.
    pub fn reenable_exporters_of_broker(&mut self, broker: BrokerId, now_ms: i64) {
        let Some(m) = self.brokers.get_mut(&broker) else {
            return;
        };
        for pm in m.partitions.values_mut() {
            for state in pm.exporters.values_mut() {
                *state = ExporterState::Enabled;
            }
        }
        m.version += 1;
        m.last_updated_ms = now_ms;
        self.version += 1;
    }

    /// Aggregated exporter status (§2.2).
    pub fn exporter_status(&self, exporter: &str) -> &'static str {
        if let Some(pc) = &self.pending {
            for op in &pc.pending {
                match op {
                    Op::PartitionEnableExporter { exporter: e, .. } if e == exporter => {
                        return "ENABLING";
                    }
                    Op::PartitionDisableExporter { exporter: e, .. } if e == exporter => {
                        return "DISABLING";
                    }
                    _ => {}
                }
            }
        }
        let states: BTreeSet<Option<ExporterState>> = self
            .brokers
            .values()
            .flat_map(|m| m.partitions.values())
            .map(|pm| pm.exporters.get(exporter).copied())
            .collect();
        if self.pending.is_some() && states.len() != 1 {
            return "UNKNOWN";
        }
        match states.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(ExporterState::Enabled)] => "ENABLED",
            [Some(ExporterState::Disabled)] => "DISABLED",
            [None] | [] => "CONFIG_NOT_FOUND",
            _ => "UNKNOWN",
        }
    }

    /// Whether an exporter is enabled on the partition (as its leader/highest priority member sees it).
    pub fn exporter_enabled_on(&self, exporter: &str, p: PartitionId) -> bool {
        self.brokers
            .values()
            .filter_map(|m| m.partitions.get(&p))
            .filter(|pm| !pm.joining)
            .max_by_key(|pm| pm.priority)
            .is_some_and(|pm| pm.exporters.get(exporter) == Some(&ExporterState::Enabled))
    }
}

/// Body of `PATCH /actuator/cluster`, flattened.
#[derive(Debug, Clone, Default)]
pub struct PatchRequest {
    pub add: Vec<BrokerId>,
    pub remove: Vec<BrokerId>,
    pub count: Option<u32>,
    pub partition_count: Option<u32>,
    pub replication_factor: Option<u32>,
}

/// RFC 3339 with milliseconds, UTC (`2023-12-22T13:43:28.480Z`).
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporters() -> BTreeMap<String, String> {
        [
            ("camundaregion0", "io.camunda.exporter.CamundaExporter"),
            ("camundaregion1", "io.camunda.exporter.CamundaExporter"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    #[test]
    fn round_robin_places_replicas_like_zeebe() {
        let c = Cluster::new(8, 8, 4, &exporters(), 0);
        assert_eq!(c.members(1), vec![(0, 4), (1, 3), (2, 2), (3, 1)]);
        assert_eq!(c.members(8), vec![(0, 3), (1, 2), (2, 1), (7, 4)]);
    }

    #[test]
    fn force_remove_shrinks_every_partition_to_two_replicas() {
        let mut c = Cluster::new(8, 8, 4, &exporters(), 0);
        let ops = c.plan_patch(&PatchRequest { remove: vec![1, 3, 5, 7], ..Default::default() }, true).unwrap();
        assert_eq!(ops.iter().filter(|o| o.name() == "PARTITION_FORCE_RECONFIGURE").count(), 8);
        assert_eq!(ops.iter().filter(|o| o.name() == "BROKER_REMOVE").count(), 4);
        for op in &ops {
            c.apply(op, 1);
        }
        assert_eq!(c.brokers.keys().copied().collect::<Vec<_>>(), vec![0, 2, 4, 6]);
        assert_eq!(c.replication_factor(), 2);
        let alive: BTreeSet<_> = [0, 2, 4, 6].into();
        assert!((1..=8).all(|p| c.leader(p, &alive).is_some()));
    }

    #[test]
    fn add_back_restores_the_full_distribution() {
        let mut c = Cluster::new(8, 8, 4, &exporters(), 0);
        let full = c.clone();
        for op in c.plan_patch(&PatchRequest { remove: vec![1, 3, 5, 7], ..Default::default() }, true).unwrap() {
            c.apply(&op, 1);
        }
        let req = PatchRequest { add: vec![1, 3, 5, 7], replication_factor: Some(4), ..Default::default() };
        for op in c.plan_patch(&req, false).unwrap() {
            c.apply(&op, 2);
        }
        for p in 1..=8 {
            assert_eq!(c.members(p), full.members(p), "partition {p}");
        }
    }

    #[test]
    fn force_validation_messages() {
        let c = Cluster::new(8, 8, 4, &exporters(), 0);
        let add = PatchRequest { add: vec![1], ..Default::default() };
        assert_eq!(c.plan_patch(&add, true).unwrap_err().0, "Cannot force add brokers");
        let rf = PatchRequest { remove: vec![1], replication_factor: Some(4), ..Default::default() };
        assert_eq!(c.plan_patch(&rf, true).unwrap_err().0, "Cannot force change the replication factor.");
        assert!(c.plan_patch(&PatchRequest::default(), true).is_err());
        let both = PatchRequest { add: vec![9], count: Some(8), ..Default::default() };
        assert!(c.plan_patch(&both, false).unwrap_err().0.starts_with("Cannot change brokers count"));
    }
}
