//! Elasticsearch models: snapshot repositories, snapshots, shard recoveries, cluster health,
//! `_cat/indices` (docs/target-apis.md §5).
use super::{lenient_u64, open_enum};
use serde::{Deserialize, Serialize};

open_enum! {
    /// Snapshot state from `GET _snapshot/{repo}/{snap}`.
    pub enum SnapshotState {
        InProgress => "IN_PROGRESS",
        Success => "SUCCESS",
        Failed => "FAILED",
        Partial => "PARTIAL",
        Incompatible => "INCOMPATIBLE",
    }
}

open_enum! {
    /// Cluster / index health colour.
    pub enum HealthStatus {
        Green => "green",
        Yellow => "yellow",
        Red => "red",
    }
}

open_enum! {
    /// Index state in `_cat/indices`.
    pub enum IndexStatus {
        Open => "open",
        Close => "close",
    }
}

/// A registered snapshot repository (`GET /_snapshot/{repo}` → `{"<repo>": {...}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepositoryInfo {
    /// Set by the client from the response key.
    #[serde(skip)]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Settings as ES returns them (values are usually strings, e.g. `"readonly": "true"`).
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl RepositoryInfo {
    /// The repository is registered read-only.
    pub fn readonly(&self) -> bool {
        match self.settings.get("readonly") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

/// One snapshot (`GET _snapshot/{repo}/{snap}` → `{"snapshots":[..]}`, or the `snapshot` field
/// of a `wait_for_completion=true` answer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotInfo {
    pub snapshot: String,
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Index names (an array here; `_status` sends an object keyed by index, whose keys are
    /// taken).
    #[serde(deserialize_with = "names_or_keys")]
    pub indices: Vec<String>,
    pub include_global_state: bool,
    pub state: SnapshotState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time_in_millis: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time_in_millis: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_in_millis: Option<i64>,
    /// Shard failures as ES reports them (objects with `index`, `shard_id`, `reason`, ...).
    pub failures: Vec<serde_json::Value>,
    pub shards: ShardsSummary,
}

impl SnapshotInfo {
    /// `state == SUCCESS` and no failed shard: the only state a restore may start from.
    pub fn is_complete_success(&self) -> bool {
        self.state == SnapshotState::Success && self.shards.failed == 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardsSummary {
    pub total: u64,
    pub failed: u64,
    pub successful: u64,
}

fn names_or_keys<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        serde_json::Value::Object(map) => map.into_iter().map(|(k, _)| k).collect(),
        _ => Vec::new(),
    })
}

/// `GET _snapshot/{repo}/{snap|_all}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotList {
    pub snapshots: Vec<SnapshotInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

/// The `snapshot` summary of a `_restore?wait_for_completion=true` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreInfo {
    pub snapshot: String,
    pub indices: Vec<String>,
    pub shards: ShardsSummary,
}

/// One shard recovery from `GET /_recovery` (flattened from the per-index object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardRecovery {
    /// Index name (the key of the per-index object).
    pub index: String,
    /// Shard number (`id`).
    pub shard: u32,
    /// `SNAPSHOT`, `PEER`, `EXISTING_STORE`, `EMPTY_STORE`, `LOCAL_SHARDS`, ...
    pub recovery_type: String,
    /// `INIT`, `INDEX`, `VERIFY_INDEX`, `TRANSLOG`, `FINALIZE`, `DONE`.
    pub stage: String,
    pub primary: bool,
    pub source: RecoverySource,
    /// `index.size.percent` as a number (ES sends `"87.5%"`).
    pub percent: Option<f64>,
}

impl ShardRecovery {
    pub fn is_snapshot(&self) -> bool {
        self.recovery_type.eq_ignore_ascii_case("SNAPSHOT")
    }
    pub fn is_done(&self) -> bool {
        self.stage.eq_ignore_ascii_case("DONE")
    }
}

/// Where a recovery copies from; for snapshot recoveries `repository`/`snapshot`/`index`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecoverySource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Wire shape of one per-index entry of `/_recovery`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct IndexRecoveries {
    pub shards: Vec<WireShardRecovery>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireShardRecovery {
    pub id: u32,
    #[serde(rename = "type")]
    pub recovery_type: String,
    pub stage: String,
    pub primary: bool,
    pub source: RecoverySource,
    pub index: WireRecoveryIndex,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireRecoveryIndex {
    pub size: WireRecoverySize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireRecoverySize {
    pub percent: Option<serde_json::Value>,
}

/// Flattens `GET /_recovery` (`{"<index>":{"shards":[..]}}`) into shard recoveries, sorted by
/// index and shard.
pub fn parse_recoveries(body: &serde_json::Value) -> Result<Vec<ShardRecovery>, String> {
    let object = body.as_object().ok_or_else(|| "expected a JSON object keyed by index".to_string())?;
    let mut out = Vec::new();
    for (index, value) in object {
        let entry: IndexRecoveries =
            serde_json::from_value(value.clone()).map_err(|e| format!("recoveries of index {index}: {e}"))?;
        for shard in entry.shards {
            let percent = match shard.index.size.percent {
                Some(serde_json::Value::String(s)) => s.trim().trim_end_matches('%').parse::<f64>().ok(),
                Some(serde_json::Value::Number(n)) => n.as_f64(),
                _ => None,
            };
            out.push(ShardRecovery {
                index: index.clone(),
                shard: shard.id,
                recovery_type: shard.recovery_type,
                stage: shard.stage,
                primary: shard.primary,
                source: shard.source,
                percent,
            });
        }
    }
    out.sort_by(|a, b| (&a.index, a.shard, a.primary).cmp(&(&b.index, b.shard, b.primary)));
    Ok(out)
}

/// `GET /_cluster/health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterHealth {
    pub cluster_name: String,
    pub status: HealthStatus,
    pub timed_out: bool,
    pub number_of_nodes: u64,
    pub number_of_data_nodes: u64,
    pub active_primary_shards: u64,
    pub active_shards: u64,
    pub relocating_shards: u64,
    pub initializing_shards: u64,
    pub unassigned_shards: u64,
    pub active_shards_percent_as_number: f64,
}

/// One row of `GET /_cat/indices?format=json` (ES sends numbers as strings there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexInfo {
    pub index: String,
    pub status: IndexStatus,
    /// Absent / null for closed indices.
    pub health: Option<HealthStatus>,
    #[serde(rename = "docs.count", deserialize_with = "lenient_u64")]
    pub docs_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// Index name prefixes written by Camunda 8.8 (and 8.7 legacy / Optimize): the indices a
/// failback restores and that must not exist (open) in the recreated region before it.
pub const CAMUNDA_INDEX_PREFIXES: &[&str] = &["camunda-", "operate-", "tasklist-", "zeebe-record", "optimize-"];

/// The index belongs to Camunda (one of [`CAMUNDA_INDEX_PREFIXES`]).
pub fn is_camunda_index(name: &str) -> bool {
    CAMUNDA_INDEX_PREFIXES.iter().any(|p| name.starts_with(p))
}
