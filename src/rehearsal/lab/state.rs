//! [`LabState`]: the whole simulated state as one serializable value, and the checks the
//! rehearsal and tests make on it.
use serde::Serialize;
use std::collections::BTreeMap;

use super::busy::BusyTime;
use super::cluster::LastChange;
use super::es;
use super::world::{Exporting, World, region_of};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabState {
    /// Simulated time of the observation (RFC 3339).
    pub now: String,
    pub expected: ExpectedShape,
    pub regions: Vec<RegionState>,
    pub cluster: ClusterState,
    pub exporters: Vec<ExporterStatus>,
    pub exporting: Exporting,
    pub exporting_paused: bool,
    /// Records waiting per exporter (paused exporting, unreachable Elasticsearch).
    pub export_queues: BTreeMap<String, usize>,
    /// Process instances created through any region's REST API.
    pub process_instances: u64,
    /// Simulated milliseconds during which the installation performed its own work (cluster
    /// operations, snapshots, restores, zeebe pod starts at their configured durations), the
    /// union of those intervals: concurrent activities count once.
    pub work_ms: u64,
    /// The intervals behind `work_ms`; [`LabState::work_ms_within`] clips them to a window.
    #[serde(skip)]
    pub busy: BusyTime,
    /// Snapshot bucket: repository location -> snapshot names.
    pub bucket: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedShape {
    pub cluster_size: u32,
    pub partition_count: u32,
    pub replication_factor: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionState {
    pub region: usize,
    /// Brokers, gateway and Elasticsearch run (endpoints answer).
    pub up: bool,
    /// The region's Kubernetes is gone (lost and not recreated yet).
    pub lost: bool,
    pub release: bool,
    pub pvcs: u32,
    pub profiles: Vec<String>,
    pub create_schema: bool,
    pub elasticsearch: Option<EsState>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EsState {
    pub health: String,
    /// Index name -> document count.
    pub indices: BTreeMap<String, usize>,
    pub repositories: Vec<String>,
    /// Snapshots visible through this region's repositories.
    pub snapshots: Vec<SnapshotState>,
    pub templates: bool,
    /// Whose users and API keys the cluster holds (its own region unless a restore replaced them).
    pub security_of_region: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotState {
    pub repository: String,
    pub name: String,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub version: u64,
    /// Configured members.
    pub brokers: Vec<BrokerState>,
    /// Brokers running and gossiping (members or not).
    pub gossiping: Vec<u32>,
    pub partitions: Vec<PartitionState>,
    pub pending_change: Option<PendingState>,
    pub last_change: Option<LastChange>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerState {
    pub id: u32,
    pub region: usize,
    pub alive: bool,
    pub partitions: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionState {
    pub id: u32,
    pub replicas: Vec<u32>,
    pub replication_factor: usize,
    pub leader: Option<u32>,
    pub healthy: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingState {
    pub id: i64,
    pub completed: usize,
    /// Pending operations, `"OP broker N partition P"`.
    pub pending: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExporterStatus {
    pub exporter_id: String,
    pub status: String,
}

impl LabState {
    pub(crate) fn of(w: &World, now_ms: i64) -> Self {
        let alive = w.alive();
        let c = &w.cluster;
        let regions = (0..2)
            .map(|r| {
                let reg = &w.regions[r];
                RegionState {
                    region: r,
                    up: reg.running(),
                    lost: !reg.kubernetes,
                    release: reg.release,
                    pvcs: reg.pvcs,
                    profiles: reg.profiles(),
                    create_schema: reg.create_schema,
                    elasticsearch: reg.es.as_ref().map(|es| EsState {
                        health: es.health(now_ms).as_str().into(),
                        indices: es.doc_counts(),
                        repositories: es.repositories.keys().cloned().collect(),
                        snapshots: es
                            .repositories
                            .keys()
                            .flat_map(|repo| {
                                w.visible_snapshots(r, repo, now_ms).unwrap_or_default().into_iter().map(|s| {
                                    SnapshotState {
                                        repository: repo.clone(),
                                        state: s.state(now_ms).into(),
                                        name: s.name,
                                    }
                                })
                            })
                            .collect(),
                        templates: es.templates,
                        security_of_region: es.security_of_region,
                    }),
                }
            })
            .collect();
        let partitions = (1..=c.partition_count)
            .map(|p| {
                let replicas: Vec<u32> = c.members(p).into_iter().map(|(b, _)| b).collect();
                let leader = c.leader(p, &alive);
                PartitionState {
                    id: p,
                    replication_factor: replicas.len(),
                    replicas,
                    leader,
                    healthy: leader.is_some(),
                }
            })
            .collect();
        LabState {
            now: super::cluster::fmt_ms(now_ms),
            expected: ExpectedShape {
                cluster_size: w.opts.cluster_size,
                partition_count: w.opts.partition_count,
                replication_factor: w.opts.replication_factor,
            },
            regions,
            cluster: ClusterState {
                version: c.version,
                brokers: c
                    .brokers
                    .iter()
                    .map(|(b, m)| BrokerState {
                        id: *b,
                        region: region_of(*b),
                        alive: alive.contains(b),
                        partitions: m.partitions.keys().copied().collect(),
                    })
                    .collect(),
                gossiping: alive.iter().copied().collect(),
                partitions,
                pending_change: c.pending.as_ref().map(|pc| PendingState {
                    id: pc.id,
                    completed: pc.completed.len(),
                    pending: pc
                        .pending
                        .iter()
                        .map(|op| {
                            let j = op.to_json();
                            let mut s = op.name().to_string();
                            if let Some(b) = j.get("brokerId") {
                                s.push_str(&format!(" broker {b}"));
                            }
                            if let Some(p) = j.get("partitionId") {
                                s.push_str(&format!(" partition {p}"));
                            }
                            s
                        })
                        .collect(),
                }),
                last_change: c.last_change.clone(),
            },
            exporters: c
                .exporter_types
                .keys()
                .map(|e| ExporterStatus { exporter_id: e.clone(), status: c.exporter_status(e).into() })
                .collect(),
            exporting: w.exporting,
            exporting_paused: w.exporting != Exporting::Running,
            export_queues: w.queues.iter().map(|(k, q)| (k.clone(), q.len())).collect(),
            process_instances: w.instance_count,
            work_ms: w.busy.total(),
            busy: w.busy.clone(),
            bucket: w.bucket.iter().map(|(k, m)| (k.clone(), m.keys().cloned().collect())).collect(),
        }
    }

    /// Simulated milliseconds within `[from_ms, to_ms)` during which the installation performed
    /// its own work (the union of its busy intervals, clipped to the window).
    pub fn work_ms_within(&self, from_ms: i64, to_ms: i64) -> u64 {
        self.busy.within(from_ms, to_ms)
    }

    pub fn region(&self, r: usize) -> &RegionState {
        &self.regions[r]
    }

    pub fn exporter_status(&self, id: &str) -> Option<&str> {
        self.exporters.iter().find(|e| e.exporter_id == id).map(|e| e.status.as_str())
    }

    /// Process instances a region's Elasticsearch holds (Operate's list view).
    pub fn exported_instances(&self, r: usize) -> usize {
        self.regions[r].elasticsearch.as_ref().and_then(|es| es.indices.get(es::INDEX_LIST_VIEW).copied()).unwrap_or(0)
    }

    /// What differs from a fully restored dual-region installation: all brokers members and
    /// alive, original replication factor, one healthy leader per partition, both Camunda
    /// exporters enabled, exporting running, no pending change, both regions up with Operate
    /// and Tasklist on and a green Elasticsearch holding every process instance.
    pub fn is_restored_dual_region(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let e = &self.expected;
        let ids: Vec<u32> = self.cluster.brokers.iter().map(|b| b.id).collect();
        let want: Vec<u32> = (0..e.cluster_size).collect();
        if ids != want {
            problems.push(format!("cluster members are {ids:?}, expected {want:?}"));
        }
        for b in self.cluster.brokers.iter().filter(|b| !b.alive) {
            problems.push(format!("broker {} is not running", b.id));
        }
        for p in &self.cluster.partitions {
            if p.replication_factor != e.replication_factor as usize {
                problems.push(format!(
                    "partition {} has {} replicas {:?}, expected {}",
                    p.id, p.replication_factor, p.replicas, e.replication_factor
                ));
            }
            if p.leader.is_none() {
                problems.push(format!("partition {} has no healthy leader", p.id));
            }
        }
        if self.cluster.partitions.len() != e.partition_count as usize {
            problems.push(format!("{} partitions, expected {}", self.cluster.partitions.len(), e.partition_count));
        }
        if let Some(pc) = &self.cluster.pending_change {
            problems.push(format!("change {} is still pending ({} operations left)", pc.id, pc.pending.len()));
        }
        for r in 0..2 {
            let id = format!("camundaregion{r}");
            match self.exporter_status(&id) {
                Some("ENABLED") => {}
                other => problems.push(format!("exporter {id} is {}", other.unwrap_or("missing"))),
            }
        }
        // an installation with legacy exporters (8.7-migrated, Optimize) has them enabled in both
        // regions, and both Elasticsearch clusters hold the same zeebe-record data
        for e in self.exporters.iter().filter(|e| !e.exporter_id.starts_with("camundaregion")) {
            if e.status != "ENABLED" {
                problems.push(format!("exporter {} is {}", e.exporter_id, e.status));
            }
        }
        if self.exporters.iter().any(|e| e.exporter_id.starts_with("elasticsearchregion")) {
            let records = |r: usize| {
                self.regions[r]
                    .elasticsearch
                    .as_ref()
                    .and_then(|es| es.indices.get(es::INDEX_LEGACY_RECORDS).copied())
                    .unwrap_or(0)
            };
            if records(0) != records(1) {
                problems.push(format!(
                    "legacy zeebe-record data differs: region 0 holds {} records, region 1 {}",
                    records(0),
                    records(1)
                ));
            }
        }
        if self.exporting_paused {
            problems.push(format!("exporting is {:?}", self.exporting));
        }
        for reg in &self.regions {
            if !reg.up {
                problems.push(format!("region {} is not up", reg.region));
                continue;
            }
            if !(reg.profiles.iter().any(|p| p == "operate") && reg.profiles.iter().any(|p| p == "tasklist")) {
                problems
                    .push(format!("region {} runs without Operate/Tasklist: profiles {:?}", reg.region, reg.profiles));
            }
            match &reg.elasticsearch {
                None => problems.push(format!("region {} has no Elasticsearch", reg.region)),
                Some(es) => {
                    if es.security_of_region != reg.region {
                        problems.push(format!(
                            "Elasticsearch of region {} holds region {}'s users and API keys: a restore replaced its security feature state",
                            reg.region, es.security_of_region
                        ));
                    }
                    if es.health != "green" {
                        problems.push(format!("Elasticsearch of region {} is {}", reg.region, es.health));
                    }
                    let have = self.exported_instances(reg.region);
                    if have as u64 != self.process_instances {
                        problems.push(format!(
                            "Elasticsearch of region {} holds {have} of {} process instances",
                            reg.region, self.process_instances
                        ));
                    }
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}
