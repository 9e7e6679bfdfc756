//! One region's Elasticsearch: indices with documents, snapshot repositories, restores modeled
//! as shard recoveries, and the shared bucket where snapshots live (docs/target-apis.md §5).
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::cluster::fmt_ms;

pub const ES_VERSION: &str = "8.18.0";
/// Camunda's indices (a handful of the real ones).
pub const INDEX_PROCESS_DEFINITION: &str = "camunda-process-definition-8.8.0_";
pub const INDEX_LIST_VIEW: &str = "operate-list-view-8.8.0_";
pub const INDEX_TASK: &str = "tasklist-task-8.8.0_";
pub const INDEX_WEB_SESSION: &str = "camunda-web-session-8.8.0_";
pub const CAMUNDA_INDICES: [&str; 4] = [INDEX_PROCESS_DEFINITION, INDEX_LIST_VIEW, INDEX_TASK, INDEX_WEB_SESSION];
/// Where the legacy `elasticsearchregionN` exporters write.
pub const INDEX_LEGACY_RECORDS: &str = "zeebe-record_process-instance_8.8.0_";

/// Is this index one of Camunda's (what the preflight looks for)?
pub fn is_camunda_index(name: &str) -> bool {
    ["camunda-", "operate-", "tasklist-", "zeebe-record"].iter().any(|p| name.starts_with(p))
}

#[derive(Debug, Clone, Serialize)]
pub struct Index {
    pub uuid: String,
    pub docs: Vec<Value>,
    pub open: bool,
    /// Set while (and after) the index was restored from a snapshot.
    pub restore: Option<RestoreInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreInfo {
    pub repository: String,
    pub snapshot: String,
    pub uuid: String,
    pub start_ms: i64,
    /// Primary shard recovered (red -> yellow).
    pub primary_done_ms: i64,
    /// Replica recovered (yellow -> green).
    pub done_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Green,
    Yellow,
    Red,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Green => "green",
            Health::Yellow => "yellow",
            Health::Red => "red",
        }
    }
}

impl Index {
    pub fn health(&self, now_ms: i64) -> Health {
        match &self.restore {
            Some(r) if now_ms < r.primary_done_ms => Health::Red,
            Some(r) if now_ms < r.done_ms => Health::Yellow,
            _ => Health::Green,
        }
    }

    /// Searchable (primary shard started).
    pub fn ready(&self, now_ms: i64) -> bool {
        self.open && self.health(now_ms) != Health::Red
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    #[serde(rename = "type")]
    pub kind: String,
    pub settings: serde_json::Map<String, Value>,
}

impl Repository {
    /// Where in the bucket this repository's snapshots live.
    pub fn location(&self) -> String {
        let s = |k: &str| self.settings.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match self.kind.as_str() {
            "fs" => format!("fs:{}", s("location")),
            kind => format!("{kind}:{}/{}", s("bucket"), s("base_path")),
        }
    }

    pub fn readonly(&self) -> bool {
        match self.settings.get("readonly") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }
}

/// A snapshot stored in the bucket.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSnapshot {
    pub name: String,
    pub uuid: String,
    pub repository: String,
    pub origin_region: usize,
    pub indices: BTreeMap<String, Vec<Value>>,
    /// Shards that failed (partial snapshots of red indices).
    pub failed_indices: Vec<String>,
    pub include_global_state: bool,
    pub templates: bool,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl StoredSnapshot {
    pub fn finished(&self, now_ms: i64) -> bool {
        now_ms >= self.end_ms
    }

    /// Real state, as `GET _snapshot/{repo}/{snap}` reports it.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if !self.finished(now_ms) {
            "IN_PROGRESS"
        } else if self.failed_indices.is_empty() {
            "SUCCESS"
        } else {
            "PARTIAL"
        }
    }

    pub fn shards(&self, now_ms: i64) -> Value {
        if !self.finished(now_ms) {
            return json!({"total": 0, "failed": 0, "successful": 0});
        }
        let total = self.indices.len() + self.failed_indices.len();
        json!({"total": total, "failed": self.failed_indices.len(), "successful": self.indices.len()})
    }

    pub fn all_indices(&self) -> Vec<String> {
        let mut v: Vec<String> = self.indices.keys().cloned().chain(self.failed_indices.iter().cloned()).collect();
        v.sort();
        v
    }

    /// The snapshot object of `GET _snapshot/...` and `?wait_for_completion=true`.
    pub fn to_json(&self, now_ms: i64) -> Value {
        let finished = self.finished(now_ms);
        let v = json!({
            "snapshot": self.name,
            "uuid": self.uuid,
            "repository": self.repository,
            "version_id": 8_180_099,
            "version": ES_VERSION,
            "indices": self.all_indices(),
            "data_streams": [],
            "include_global_state": self.include_global_state,
            "state": self.state(now_ms),
            "start_time": fmt_ms(self.start_ms),
            "start_time_in_millis": self.start_ms,
            // Verbose SnapshotInfo: a running snapshot has endTime 0, printed as the epoch, and
            // duration max(0, endTime - startTime) = 0.
            "end_time": fmt_ms(if finished { self.end_ms } else { 0 }),
            "end_time_in_millis": if finished { self.end_ms } else { 0 },
            "duration_in_millis": if finished { self.end_ms - self.start_ms } else { 0 },
            "failures": self.failed_indices.iter().map(|i| json!({
                "index": i, "index_uuid": i, "shard_id": 0,
                "reason": "primary shard is not allocated", "status": "INTERNAL_SERVER_ERROR"
            })).collect::<Vec<_>>(),
            "shards": self.shards(now_ms),
            "feature_states": [],
        });
        v
    }

    /// `GET _snapshot/{repo}/{snap}/_status` entry; finished PARTIAL is reported as SUCCESS (the quirk).
    pub fn status_json(&self, now_ms: i64) -> Value {
        let finished = self.finished(now_ms);
        let total = self.indices.len() + self.failed_indices.len();
        let failed = if finished { self.failed_indices.len() } else { 0 };
        let done = if finished { self.indices.len() } else { 0 };
        let started = total - failed - done;
        let stats = |files: usize| {
            json!({
                "incremental": {"file_count": files, "size_in_bytes": files * 4096},
                "processed": {"file_count": if finished { files } else { 0 }, "size_in_bytes": if finished { files * 4096 } else { 0 }},
                "total": {"file_count": files, "size_in_bytes": files * 4096},
                "start_time_in_millis": self.start_ms,
                "time_in_millis": if finished { self.end_ms - self.start_ms } else { now_ms - self.start_ms },
            })
        };
        let mut indices = serde_json::Map::new();
        for name in self.all_indices() {
            let failed_here = self.failed_indices.contains(&name);
            let stage = match (finished, failed_here) {
                (false, _) => "STARTED",
                (true, true) => "FAILURE",
                (true, false) => "DONE",
            };
            let files = self.indices.get(&name).map(|d| d.len() + 1).unwrap_or(1);
            indices.insert(
                name,
                json!({
                    "shards_stats": {"initializing": 0, "started": u8::from(!finished), "finalizing": 0,
                                     "done": u8::from(finished && !failed_here), "failed": u8::from(finished && failed_here), "total": 1},
                    "stats": stats(files),
                    "shards": {"0": {"stage": stage, "stats": stats(files)}},
                }),
            );
        }
        json!({
            "snapshot": self.name,
            "repository": self.repository,
            "uuid": self.uuid,
            "state": if finished { "SUCCESS" } else { "STARTED" },
            "include_global_state": self.include_global_state,
            "shards_stats": {"initializing": 0, "started": started, "finalizing": 0, "done": done, "failed": failed, "total": total},
            "stats": stats(total),
            "indices": indices,
        })
    }
}

/// One region's Elasticsearch.
#[derive(Debug, Clone, Serialize)]
pub struct Elasticsearch {
    pub cluster_name: String,
    pub indices: BTreeMap<String, Index>,
    pub repositories: BTreeMap<String, Repository>,
    /// Index templates etc. (global state) present.
    pub templates: bool,
    /// Whose users, roles and API keys (the `security` feature state) this cluster holds: its
    /// own region's, unless a restore with global state and feature states replaced them.
    pub security_of_region: usize,
    pub created_ms: i64,
}

impl Elasticsearch {
    pub fn new(region: usize, with_schema: bool, now_ms: i64) -> Self {
        let mut es = Self {
            cluster_name: format!("camunda-elasticsearch-region{region}"),
            indices: BTreeMap::new(),
            repositories: BTreeMap::new(),
            templates: false,
            security_of_region: region,
            created_ms: now_ms,
        };
        if with_schema {
            es.create_schema();
        }
        es
    }

    /// What Camunda's schema manager does at start-up: templates and empty indices.
    pub fn create_schema(&mut self) {
        self.templates = true;
        for name in CAMUNDA_INDICES {
            self.indices.entry(name.to_string()).or_insert_with(|| Index {
                uuid: uuid_for(name, 0),
                docs: Vec::new(),
                open: true,
                restore: None,
            });
        }
    }

    pub fn health(&self, now_ms: i64) -> Health {
        self.indices.values().map(|i| i.health(now_ms)).max().unwrap_or(Health::Green)
    }

    pub fn doc_counts(&self) -> BTreeMap<String, usize> {
        self.indices.iter().map(|(n, i)| (n.clone(), i.docs.len())).collect()
    }

    /// `_cluster/health` body.
    pub fn health_json(&self, now_ms: i64) -> Value {
        let n = self.indices.len();
        let red = self.indices.values().filter(|i| i.health(now_ms) == Health::Red).count();
        let yellow = self.indices.values().filter(|i| i.health(now_ms) == Health::Yellow).count();
        let active_primary = n - red;
        let active = active_primary * 2 - yellow;
        let total = n * 2;
        let pct = if total == 0 { 100.0 } else { active as f64 * 100.0 / total as f64 };
        json!({
            "cluster_name": self.cluster_name,
            "status": self.health(now_ms).as_str(),
            "timed_out": false,
            "number_of_nodes": 3,
            "number_of_data_nodes": 3,
            "active_primary_shards": active_primary,
            "active_shards": active,
            "relocating_shards": 0,
            "initializing_shards": red + yellow,
            "unassigned_shards": red,
            // ES 8.16+; primaries being restored are initializing, not unassigned.
            "unassigned_primary_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": pct,
        })
    }

    /// Recoveries of one index (primary from snapshot, replica from peer).
    pub fn recoveries(&self, name: &str, index: &Index, now_ms: i64, active_only: bool) -> Vec<Value> {
        let mut out = Vec::new();
        match &index.restore {
            Some(r) => {
                let primary = recovery_json(name, "SNAPSHOT", true, r.start_ms, r.primary_done_ms, now_ms, Some(r));
                let replica = recovery_json(name, "PEER", false, r.primary_done_ms, r.done_ms, now_ms, None);
                if !active_only || now_ms < r.primary_done_ms {
                    out.push(primary);
                }
                if now_ms >= r.primary_done_ms && (!active_only || now_ms < r.done_ms) {
                    out.push(replica);
                }
            }
            None if !active_only => {
                out.push(recovery_json(name, "EMPTY_STORE", true, self.created_ms, self.created_ms, now_ms, None));
            }
            None => {}
        }
        out
    }

    /// Expands an index expression (comma list, `*` wildcards, `_all`).
    pub fn resolve(&self, expr: &str) -> Vec<String> {
        let mut out = Vec::new();
        for part in expr.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            for name in self.indices.keys() {
                if part == "_all" || wildcard(part, name) {
                    out.push(name.clone());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

pub fn recovery_stage(frac: f64) -> &'static str {
    match frac {
        f if f < 0.1 => "INIT",
        f if f < 0.6 => "INDEX",
        f if f < 0.7 => "VERIFY_INDEX",
        f if f < 0.85 => "TRANSLOG",
        f if f < 1.0 => "FINALIZE",
        _ => "DONE",
    }
}

fn recovery_json(
    name: &str,
    kind: &str,
    primary: bool,
    start: i64,
    end: i64,
    now_ms: i64,
    source: Option<&RestoreInfo>,
) -> Value {
    let frac = if end <= start { 1.0 } else { ((now_ms - start) as f64 / (end - start) as f64).clamp(0.0, 1.0) };
    let done = now_ms >= end;
    let total_bytes: u64 = 1_048_576;
    let recovered = (total_bytes as f64 * frac) as u64;
    let mut v = json!({
        "id": 0,
        "type": kind,
        "stage": recovery_stage(frac),
        "primary": primary,
        "start_time_in_millis": start,
        "total_time_in_millis": (now_ms.min(end) - start).max(0),
        "target": {"id": "node-0", "host": "127.0.0.1", "transport_address": "127.0.0.1:9300", "ip": "127.0.0.1", "name": "camunda-elasticsearch-master-0"},
        "index": {
            "size": {"total_in_bytes": total_bytes, "reused_in_bytes": 0, "recovered_in_bytes": recovered,
                     "percent": format!("{:.1}%", frac * 100.0)},
            "files": {"total": 10, "reused": 0, "recovered": (10.0 * frac) as u64, "percent": format!("{:.1}%", frac * 100.0)},
            "total_time_in_millis": (now_ms.min(end) - start).max(0),
        },
        "translog": {"recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0, "total_time_in_millis": 0},
        "verify_index": {"check_index_time_in_millis": 0, "total_time_in_millis": 0},
    });
    if done {
        v["stop_time_in_millis"] = json!(end);
    }
    if let Some(r) = source {
        v["source"] = json!({"repository": r.repository, "snapshot": r.snapshot, "version": ES_VERSION,
                             "index": name, "restoreUUID": r.uuid});
    } else {
        v["source"] = json!({});
    }
    v
}

/// `*` wildcard matching.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    true
}

/// A stable, readable uuid-ish string.
pub fn uuid_for(name: &str, salt: i64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(salt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("camunda-*", "camunda-web-session-8.8.0_"));
        assert!(wildcard("*", "x"));
        assert!(!wildcard("operate-*", "tasklist-task"));
        assert!(wildcard("a*c*e", "abcde"));
    }

    #[test]
    fn restored_index_goes_red_yellow_green() {
        let i = Index {
            uuid: "u".into(),
            docs: vec![],
            open: true,
            restore: Some(RestoreInfo {
                repository: "r".into(),
                snapshot: "s".into(),
                uuid: "x".into(),
                start_ms: 0,
                primary_done_ms: 10,
                done_ms: 20,
            }),
        };
        assert_eq!(i.health(5), Health::Red);
        assert_eq!(i.health(15), Health::Yellow);
        assert_eq!(i.health(25), Health::Green);
    }
}
