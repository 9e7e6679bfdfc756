//! Zeebe management API models (`/actuator/cluster`, `/actuator/exporters`), docs/target-apis.md §2.
use super::open_enum;
use serde::{Deserialize, Serialize};

open_enum! {
    /// Broker membership state (`UNKNOWN` arrives as `Unknown("UNKNOWN")`).
    pub enum BrokerStatus {
        Active => "ACTIVE",
        Joining => "JOINING",
        Leaving => "LEAVING",
        Left => "LEFT",
    }
}

open_enum! {
    /// State of a partition replica on a broker.
    pub enum PartitionStatus {
        Joining => "JOINING",
        Active => "ACTIVE",
        Leaving => "LEAVING",
    }
}

open_enum! {
    /// Exporter state in a partition's config.
    pub enum ExporterState {
        Enabled => "ENABLED",
        Disabled => "DISABLED",
        ConfigNotFound => "CONFIG_NOT_FOUND",
    }
}

open_enum! {
    /// Aggregated exporter status from `GET /actuator/exporters`.
    pub enum ExporterStatusKind {
        Enabled => "ENABLED",
        Disabled => "DISABLED",
        Enabling => "ENABLING",
        Disabling => "DISABLING",
        ConfigNotFound => "CONFIG_NOT_FOUND",
    }
}

open_enum! {
    /// Status of a topology change.
    pub enum ChangeStatus {
        InProgress => "IN_PROGRESS",
        Completed => "COMPLETED",
        Failed => "FAILED",
        Cancelled => "CANCELLED",
    }
}

open_enum! {
    /// One operation of a topology change.
    pub enum OperationKind {
        BrokerAdd => "BROKER_ADD",
        BrokerRemove => "BROKER_REMOVE",
        PartitionJoin => "PARTITION_JOIN",
        PartitionLeave => "PARTITION_LEAVE",
        PartitionReconfigurePriority => "PARTITION_RECONFIGURE_PRIORITY",
        PartitionForceReconfigure => "PARTITION_FORCE_RECONFIGURE",
        PartitionEnableExporter => "PARTITION_ENABLE_EXPORTER",
        PartitionDisableExporter => "PARTITION_DISABLE_EXPORTER",
        PartitionDeleteExporter => "PARTITION_DELETE_EXPORTER",
        StartPartitionScaleUp => "START_PARTITION_SCALE_UP",
        PartitionBootstrap => "PARTITION_BOOTSTRAP",
        AwaitRedistributionCompletion => "AWAIT_REDISTRIBUTION_COMPLETION",
        AwaitRelocationCompletion => "AWAIT_RELOCATION_COMPLETION",
        UpdateRoutingState => "UPDATE_ROUTING_STATE",
        DeleteHistory => "DELETE_HISTORY",
        PreScaling => "PRE_SCALING",
    }
}

/// `GET /actuator/cluster` (200) and `DELETE /actuator/cluster/changes/{id}` (200).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterTopology {
    pub version: i64,
    pub brokers: Vec<BrokerState>,
    /// Omitted by the server when no change ever completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change: Option<CompletedChange>,
    /// Omitted by the server when no change is running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_change: Option<PendingChange>,
    /// Routing state; kept opaque.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

impl ClusterTopology {
    /// Ids of all brokers in the topology, ascending.
    pub fn broker_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.brokers.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids
    }

    pub fn broker(&self, id: u32) -> Option<&BrokerState> {
        self.brokers.iter().find(|b| b.id == id)
    }

    /// Number of replicas per partition id (over all brokers), ascending by partition id.
    pub fn replicas_per_partition(&self) -> std::collections::BTreeMap<u32, usize> {
        let mut map = std::collections::BTreeMap::new();
        for broker in &self.brokers {
            for partition in &broker.partitions {
                *map.entry(partition.id).or_insert(0) += 1;
            }
        }
        map
    }

    /// States of exporter `exporter_id` over every partition replica (empty if never configured).
    pub fn exporter_states(&self, exporter_id: &str) -> Vec<&ExporterState> {
        self.brokers
            .iter()
            .flat_map(|b| &b.partitions)
            .flat_map(|p| &p.config.exporting.exporters)
            .filter(|e| e.id == exporter_id)
            .map(|e| &e.state)
            .collect()
    }
}

/// One broker in the cluster topology.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerState {
    pub id: u32,
    pub state: BrokerStatus,
    pub version: i64,
    /// Timestamp as sent; may be a sentinel such as `0000-01-01T00:00:00Z`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
    pub partitions: Vec<PartitionState>,
}

/// One partition replica on a broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PartitionState {
    pub id: u32,
    pub state: PartitionStatus,
    pub priority: i32,
    pub config: PartitionConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PartitionConfig {
    pub exporting: ExportingConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportingConfig {
    pub exporters: Vec<PartitionExporter>,
}

/// An exporter's state in one partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PartitionExporter {
    pub id: String,
    pub state: ExporterState,
}

/// `lastChange`: the most recent finished change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompletedChange {
    pub id: i64,
    pub status: ChangeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// `pendingChange`: the running change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PendingChange {
    pub id: i64,
    pub status: ChangeStatus,
    pub completed: Vec<Operation>,
    pub pending: Vec<Operation>,
}

/// One operation of a planned, pending or completed change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    pub operation: OperationKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exporter_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.operation.as_str())?;
        if let Some(b) = self.broker_id {
            write!(f, " broker {b}")?;
        }
        if let Some(p) = self.partition_id {
            write!(f, " partition {p}")?;
        }
        if let Some(e) = &self.exporter_id {
            write!(f, " exporter {e}")?;
        }
        if !self.brokers.is_empty() {
            write!(f, " brokers {:?}", self.brokers)?;
        }
        Ok(())
    }
}

/// 202 answer of PATCH /actuator/cluster and the exporter enable/disable calls
/// (`PlannedOperationsResponse`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlannedChange {
    pub change_id: i64,
    pub current_topology: Vec<BrokerState>,
    pub planned_changes: Vec<Operation>,
    pub expected_topology: Vec<BrokerState>,
}

/// One entry of `GET /actuator/exporters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExporterStatus {
    pub exporter_id: String,
    pub status: ExporterStatusKind,
}

/// Body of `PATCH /actuator/cluster`. Parts left `None`/empty are omitted from the JSON.
/// Use either `brokers.count` or `add`/`remove`, never both (the server answers 400).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPatch {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub brokers: Option<BrokersPatch>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub partitions: Option<PartitionsPatch>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokersPatch {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PartitionsPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
}

impl ClusterPatch {
    /// `{"brokers":{"remove":[..]}}` (send with `force=true` to force-remove lost brokers).
    pub fn remove_brokers(ids: &[u32]) -> Self {
        Self { brokers: Some(BrokersPatch { remove: ids.to_vec(), ..Default::default() }), partitions: None }
    }

    /// `{"brokers":{"add":[..]},"partitions":{"replicationFactor":rf}}` (never with force).
    pub fn add_brokers(ids: &[u32], replication_factor: Option<u32>) -> Self {
        Self {
            brokers: Some(BrokersPatch { add: ids.to_vec(), ..Default::default() }),
            partitions: replication_factor.map(|rf| PartitionsPatch { count: None, replication_factor: Some(rf) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_omits_absent_parts() {
        let p = ClusterPatch::remove_brokers(&[1, 3, 5, 7]);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"brokers":{"remove":[1,3,5,7]}}"#);
        let p = ClusterPatch::add_brokers(&[1, 3], Some(4));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"brokers":{"add":[1,3]},"partitions":{"replicationFactor":4}}"#
        );
        let p = ClusterPatch {
            brokers: Some(BrokersPatch { count: Some(8), ..Default::default() }),
            partitions: Some(PartitionsPatch { count: Some(8), replication_factor: Some(4) }),
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"brokers":{"count":8},"partitions":{"count":8,"replicationFactor":4}}"#
        );
        assert_eq!(serde_json::to_string(&ClusterPatch::default()).unwrap(), "{}");
    }

    #[test]
    fn topology_helpers() {
        let t: ClusterTopology = serde_json::from_str(
            r#"{"version":1,"brokers":[
                {"id":2,"state":"ACTIVE","partitions":[{"id":1,"state":"ACTIVE","priority":1,
                  "config":{"exporting":{"exporters":[{"id":"camundaregion0","state":"ENABLED"}]}}}]},
                {"id":0,"state":"UNKNOWN","partitions":[{"id":1,"state":"ACTIVE","priority":2},{"id":2,"state":"ACTIVE"}]}]}"#,
        )
        .unwrap();
        assert_eq!(t.broker_ids(), vec![0, 2]);
        assert_eq!(t.broker(0).unwrap().state, BrokerStatus::Unknown("UNKNOWN".into()));
        assert_eq!(t.replicas_per_partition().get(&1), Some(&2));
        assert_eq!(t.exporter_states("camundaregion0"), vec![&ExporterState::Enabled]);
        assert!(t.last_change.is_none() && t.pending_change.is_none());
    }
}
