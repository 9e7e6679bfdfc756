//! The port through which steps see and change a target: a small object-safe trait with the
//! observations the steps need and ONE mutating entry point ([`TargetApi::mutate`]) taking a
//! [`Mutation`]. Steps never call `mutate` directly: they go through
//! [`super::StepEnv::mutate`], which journals every call (see `journal.rs`).
//!
//! The production implementation wraps the typed clients of `crate::region_api` (`adapter.rs`);
//! unit tests use an in-memory fake.
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

// The target APIs' open enums cross the port as they are: steps match on variants, and a value
// this version does not know stays `Unknown(..)`, which no step takes for the goal holding.
pub use crate::region_api::models::elasticsearch::{HealthStatus, IndexStatus, SnapshotState};
pub use crate::region_api::models::management::{
    BrokerStatus, ChangeStatus, ExporterState, ExporterStatusKind, OperationKind, PartitionStatus,
};
pub use crate::region_api::models::rest::{Health, Role};

/// Why a call to the target failed, reduced to what a step decides on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ApiErrorKind,
    /// HTTP status when the target answered.
    pub status: Option<u16>,
    /// Elasticsearch `error.type` (e.g. `snapshot_missing_exception`) when present.
    pub error_type: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiErrorKind {
    /// Unreachable, timeout, 5xx, injected fault: try again later.
    Transient,
    /// A body the client could not parse (also retried: faults inject these).
    Malformed,
    /// 409: another change is in progress.
    Conflict,
    /// 404.
    NotFound,
    /// Any other 4xx (or a non-transient 5xx such as a restore collision).
    Rejected,
}

impl ApiError {
    pub fn new(kind: ApiErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        Self { kind, status, error_type: None, message: message.into() }
    }
    pub fn with_type(mut self, t: impl Into<String>) -> Self {
        self.error_type = Some(t.into());
        self
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Transient, None, message)
    }
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ApiErrorKind::Transient | ApiErrorKind::Malformed)
    }
    /// True when the error names this Elasticsearch exception type (or says it in the message).
    pub fn is_es(&self, error_type: &str) -> bool {
        self.error_type.as_deref() == Some(error_type) || self.message.contains(error_type)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------- observations (models)

/// `GET /actuator/cluster`, reduced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub brokers: Vec<ClusterBroker>,
    pub last_change: Option<ChangeRef>,
    pub pending_change: Option<PendingChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterBroker {
    pub id: u32,
    pub state: BrokerStatus,
    pub partitions: Vec<ClusterPartition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterPartition {
    pub id: u32,
    pub state: PartitionStatus,
    /// (exporter id, state) as the partition's config shows it.
    pub exporters: Vec<(String, ExporterState)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRef {
    pub id: i64,
    pub status: ChangeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingChange {
    pub id: i64,
    pub status: ChangeStatus,
    pub completed: Vec<Operation>,
    pub pending: Vec<Operation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub operation: OperationKind,
    pub broker_id: Option<u32>,
    pub partition_id: Option<u32>,
    /// Brokers the operation concerns besides the executor (BROKER_REMOVE: the removed broker;
    /// PARTITION_FORCE_RECONFIGURE: the new members).
    pub brokers: Vec<u32>,
    pub exporter_id: Option<String>,
}

impl Operation {
    /// True when the operation is `kind` and concerns one of `ids` (as executor or in `brokers`).
    pub fn concerns(&self, kind: &OperationKind, ids: &[u32]) -> bool {
        self.operation == *kind
            && (self.broker_id.is_some_and(|b| ids.contains(&b)) || self.brokers.iter().any(|b| ids.contains(b)))
    }

    /// One line of the plan an approver reads. Zeebe's `brokerId` is the broker that *executes*
    /// the operation, the brokers it concerns are in `brokers`: a BROKER_REMOVE of broker 1
    /// arrives as `{"brokerId":0,"brokers":[1]}` and must not read "remove broker 0".
    pub fn describe(&self) -> String {
        let list = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let mut s = self.operation.as_str().to_string();
        match self.operation {
            OperationKind::BrokerRemove | OperationKind::BrokerAdd if !self.brokers.is_empty() => {
                s.push_str(&format!(" broker(s) [{}]", list(&self.brokers)));
            }
            _ => {
                if let Some(p) = self.partition_id {
                    s.push_str(&format!(" partition {p}"));
                }
                if let Some(e) = &self.exporter_id {
                    s.push_str(&format!(" exporter {e}"));
                }
                if !self.brokers.is_empty() {
                    s.push_str(&format!(", members after: [{}]", list(&self.brokers)));
                }
            }
        }
        if let Some(b) = self.broker_id {
            s.push_str(&format!(" (on broker {b})"));
        }
        s
    }
}

#[cfg(test)]
mod describe_tests {
    use super::{Operation, OperationKind};

    #[test]
    fn plan_lines_name_the_removed_broker_not_the_executor() {
        let remove = Operation {
            operation: OperationKind::BrokerRemove,
            broker_id: Some(0),
            brokers: vec![1],
            ..Operation::default()
        };
        assert_eq!(remove.describe(), "BROKER_REMOVE broker(s) [1] (on broker 0)");
        let reconfigure = Operation {
            operation: OperationKind::PartitionForceReconfigure,
            broker_id: Some(0),
            partition_id: Some(1),
            brokers: vec![0, 2],
            ..Operation::default()
        };
        assert_eq!(
            reconfigure.describe(),
            "PARTITION_FORCE_RECONFIGURE partition 1, members after: [0, 2] (on broker 0)"
        );
        let join = Operation {
            operation: OperationKind::PartitionJoin,
            broker_id: Some(3),
            partition_id: Some(3),
            ..Operation::default()
        };
        assert_eq!(join.describe(), "PARTITION_JOIN partition 3 (on broker 3)");
        // an operation this version does not know keeps its wire name and concerns no known kind
        let unknown = Operation {
            operation: OperationKind::from_wire("BROKER_SWAP"),
            broker_id: Some(1),
            brokers: vec![1],
            ..Operation::default()
        };
        assert_eq!(unknown.describe(), "BROKER_SWAP, members after: [1] (on broker 1)");
        assert!(!unknown.concerns(&OperationKind::BrokerRemove, &[1]));
        assert!(remove.concerns(&OperationKind::BrokerRemove, &[1]));
    }
}

/// A 202 answer of the cluster / exporters API (or a dry run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub change_id: i64,
    pub planned_changes: Vec<Operation>,
}

/// `GET /v2/topology`, reduced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyView {
    pub brokers: Vec<TopologyBroker>,
    pub cluster_size: u32,
    pub partitions_count: u32,
    pub replication_factor: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyBroker {
    pub node_id: u32,
    pub host: String,
    pub partitions: Vec<TopologyPartition>,
    /// Camunda version the broker runs (empty when not reported).
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyPartition {
    pub partition_id: u32,
    pub role: Role,
    pub health: Health,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterStatus {
    pub exporter_id: String,
    pub status: ExporterStatusKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCounts {
    pub total: u64,
    pub failed: u64,
    pub successful: u64,
}

/// `GET /_snapshot/{repo}/{snap}`: one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub state: SnapshotState,
    pub shards: ShardCounts,
}

/// `GET /_snapshot/{repo}`: a registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepositoryView {
    pub kind: String,
    /// As Elasticsearch returns them (values usually strings, `"readonly": "true"`).
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl RepositoryView {
    pub fn readonly(&self) -> bool {
        match self.settings.get("readonly") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

/// One shard recovery from `GET /_recovery`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryInfo {
    pub index: String,
    /// `SNAPSHOT`, `PEER`, `EXISTING_STORE`, ...
    pub kind: String,
    /// `INIT` ... `DONE`.
    pub stage: String,
    pub repository: Option<String>,
    pub snapshot: Option<String>,
}

impl RecoveryInfo {
    pub fn is_from_snapshot(&self, repo: &str, snapshot: &str) -> bool {
        self.kind.eq_ignore_ascii_case("snapshot")
            && self.repository.as_deref() == Some(repo)
            && self.snapshot.as_deref() == Some(snapshot)
    }
    pub fn is_active(&self) -> bool {
        !self.stage.eq_ignore_ascii_case("done")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub name: String,
    /// `open` or `close`.
    pub status: IndexStatus,
    /// Documents in the index, when reported.
    pub docs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthInfo {
    pub status: HealthStatus,
    pub timed_out: bool,
}

// ---------------------------------------------------------------- mutations

/// Every change c8dr makes to a target's APIs. One enum so one place journals them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Mutation {
    /// `PATCH /actuator/cluster?force=true {"brokers":{"remove":ids}}`.
    ForceRemoveBrokers {
        ids: Vec<u32>,
    },
    /// `PATCH /actuator/cluster {"brokers":{"add":ids},"partitions":{"replicationFactor":rf}}`.
    AddBrokers {
        ids: Vec<u32>,
        replication_factor: u32,
    },
    DisableExporter {
        exporter_id: String,
    },
    EnableExporter {
        exporter_id: String,
        initialize_from: Option<String>,
    },
    PauseExporting,
    ResumeExporting,
    /// `PUT /_snapshot/{repo}` (settings from config; never secrets).
    RegisterRepository {
        repository: String,
        readonly: bool,
    },
    DeleteRepository {
        repository: String,
    },
    CreateSnapshot {
        repository: String,
        snapshot: String,
    },
    RestoreSnapshot {
        repository: String,
        snapshot: String,
    },
    /// `POST /v2/deployments` with one BPMN resource.
    DeployProcess {
        resource_name: String,
        xml: String,
    },
    /// `POST /v2/process-instances`.
    CreateProcessInstance {
        bpmn_process_id: String,
    },
}

impl Mutation {
    /// Short action name for the journal (`remove-brokers`, `pause-exporting`, ...).
    pub fn action(&self) -> &'static str {
        match self {
            Mutation::ForceRemoveBrokers { .. } => "force-remove-brokers",
            Mutation::AddBrokers { .. } => "add-brokers",
            Mutation::DisableExporter { .. } => "disable-exporter",
            Mutation::EnableExporter { .. } => "enable-exporter",
            Mutation::PauseExporting => "pause-exporting",
            Mutation::ResumeExporting => "resume-exporting",
            Mutation::RegisterRepository { .. } => "register-repository",
            Mutation::DeleteRepository { .. } => "delete-repository",
            Mutation::CreateSnapshot { .. } => "create-snapshot",
            Mutation::RestoreSnapshot { .. } => "restore-snapshot",
            Mutation::DeployProcess { .. } => "deploy-process",
            Mutation::CreateProcessInstance { .. } => "create-process-instance",
        }
    }

    /// The request as it goes on the wire, summarized (no secrets: settings are not included).
    pub fn summary(&self) -> String {
        match self {
            Mutation::ForceRemoveBrokers { ids } => {
                format!("PATCH /actuator/cluster?force=true brokers.remove={ids:?}")
            }
            Mutation::AddBrokers { ids, replication_factor } => {
                format!("PATCH /actuator/cluster brokers.add={ids:?} partitions.replicationFactor={replication_factor}")
            }
            Mutation::DisableExporter { exporter_id } => {
                format!("POST /actuator/exporters/{exporter_id}/disable")
            }
            Mutation::EnableExporter { exporter_id, initialize_from } => match initialize_from {
                Some(f) => {
                    format!("POST /actuator/exporters/{exporter_id}/enable initializeFrom={f}")
                }
                None => format!("POST /actuator/exporters/{exporter_id}/enable"),
            },
            Mutation::PauseExporting => "POST /actuator/exporting/pause".into(),
            Mutation::ResumeExporting => "POST /actuator/exporting/resume".into(),
            Mutation::RegisterRepository { repository, readonly } => {
                format!("PUT /_snapshot/{repository} readonly={readonly}")
            }
            Mutation::DeleteRepository { repository } => format!("DELETE /_snapshot/{repository}"),
            Mutation::CreateSnapshot { repository, snapshot } => {
                format!("PUT /_snapshot/{repository}/{snapshot} include_global_state=true")
            }
            Mutation::RestoreSnapshot { repository, snapshot } => format!(
                "POST /_snapshot/{repository}/{snapshot}/_restore include_global_state=true feature_states=[\"none\"] wait_for_completion=false"
            ),
            Mutation::DeployProcess { resource_name, .. } => {
                format!("POST /v2/deployments resources={resource_name}")
            }
            Mutation::CreateProcessInstance { bpmn_process_id } => {
                format!("POST /v2/process-instances processDefinitionId={bpmn_process_id}")
            }
        }
    }
}

/// What a mutation answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MutationResult {
    /// A cluster-config change was accepted (202).
    Change(PlannedChange),
    /// Accepted / acknowledged without further data.
    Ack,
    /// A process instance (or deployment) key.
    Key(String),
}

impl MutationResult {
    pub fn describe(&self) -> String {
        match self {
            MutationResult::Change(c) => {
                format!("accepted changeId={} ({} planned operations)", c.change_id, c.planned_changes.len())
            }
            MutationResult::Ack => "acknowledged".into(),
            MutationResult::Key(k) => format!("key={k}"),
        }
    }
}

/// What steps need from a target. Management calls go to the region the step names (the
/// surviving one); ES and REST calls to the region the header names.
pub trait TargetApi: Send + Sync {
    fn cluster(&self, region: u8) -> BoxFuture<'_, ApiResult<ClusterView>>;
    /// `PATCH /actuator/cluster?dryRun=true&force=true` removing `ids` (no change applied).
    fn dry_run_remove(&self, region: u8, ids: Vec<u32>) -> BoxFuture<'_, ApiResult<PlannedChange>>;
    fn topology(&self, region: u8) -> BoxFuture<'_, ApiResult<TopologyView>>;
    fn exporters(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<ExporterStatus>>>;
    /// `GET /_snapshot/{repo}`: `false` when the repository is not registered (404).
    fn repository_exists(&self, region: u8, repository: String) -> BoxFuture<'_, ApiResult<bool>>;
    /// `GET /_snapshot/{repo}`: `None` when not registered, else its type and settings.
    fn repository(&self, region: u8, repository: String) -> BoxFuture<'_, ApiResult<Option<RepositoryView>>>;
    /// `GET /_snapshot/{repo}/{name}` (by name, never `_all`: a repository shared with
    /// Camunda's own backups may list thousands). `None` when the repository has no such
    /// snapshot (404 `snapshot_missing_exception`); 404 `repository_missing_exception` is an error.
    fn snapshot(&self, region: u8, repository: String, name: String) -> BoxFuture<'_, ApiResult<Option<SnapshotInfo>>>;
    /// `GET /_recovery` (all recoveries, not only active ones).
    fn recoveries(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<RecoveryInfo>>>;
    fn indices(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<IndexInfo>>>;
    fn health(&self, region: u8) -> BoxFuture<'_, ApiResult<HealthInfo>>;
    /// Keys of the instances of `bpmn_process_id` that `POST /v2/process-instances/search` finds.
    fn process_instances(&self, region: u8, bpmn_process_id: String) -> BoxFuture<'_, ApiResult<Vec<String>>>;
    /// Keys of the definitions of `bpmn_process_id` that `POST /v2/process-definitions/search` finds.
    fn process_definitions(&self, region: u8, bpmn_process_id: String) -> BoxFuture<'_, ApiResult<Vec<String>>>;
    /// The one mutating call. Use [`super::StepEnv::mutate`], which journals it.
    fn mutate(&self, region: u8, mutation: Mutation) -> BoxFuture<'_, ApiResult<MutationResult>>;
}
