//! Client of a region's Elasticsearch: snapshot repository, snapshots, restore, recoveries,
//! cluster health, Camunda indices (docs/target-apis.md §5). Never waits server-side
//! (`wait_for_completion` is never set): callers poll, so a client timeout never leads to a
//! blindly re-issued restore (§6.13).
use super::error::{Api, ErrorKind, TargetError};
use super::http::{Body, HttpAuthResolved, HttpCore};
use super::models::elasticsearch::{
    ClusterHealth, IndexInfo, IndexStatus, RepositoryInfo, ShardRecovery, SnapshotInfo, SnapshotList, is_camunda_index,
    parse_recoveries,
};
use reqwest::Method;
use std::time::Duration;

/// Typed async client of one region's Elasticsearch.
#[derive(Debug, Clone)]
pub struct ElasticsearchClient {
    http: HttpCore,
}

impl ElasticsearchClient {
    /// `base_url` like `http://camunda-elasticsearch-master-hl.ns:9200`.
    pub fn new(base_url: &str, auth: HttpAuthResolved, timeout: Duration) -> Result<Self, TargetError> {
        Ok(Self { http: HttpCore::new(Api::Elasticsearch, base_url, auth, timeout)? })
    }

    /// Sends every call through its own short-lived Kubernetes port-forward of `forwarder`'s
    /// region (`access = "port-forward"`): the base URL names the Service and its port.
    pub fn with_port_forward(
        self,
        forwarder: std::sync::Arc<crate::platform::k8s::forward::Forwarder>,
    ) -> Result<Self, TargetError> {
        Ok(Self { http: self.http.with_port_forward(forwarder)? })
    }

    pub fn base_url(&self) -> &str {
        self.http.base_url().as_str()
    }

    /// `PUT /_snapshot/{repo}` `{"type": kind, "settings": {..settings, "readonly": true?}}`.
    /// `readonly` is added to the settings only when true.
    pub async fn put_repository(
        &self,
        repo: &str,
        kind: &str,
        settings: &serde_json::Map<String, serde_json::Value>,
        readonly: bool,
    ) -> Result<(), TargetError> {
        let mut settings = settings.clone();
        if readonly {
            settings.insert("readonly".into(), serde_json::Value::Bool(true));
        }
        let body = serde_json::json!({ "type": kind, "settings": settings });
        self.acknowledged(Method::PUT, &["_snapshot", repo], &[], Body::Json(body)).await
    }

    /// `GET /_snapshot/{repo}`; `None` when the repository is not registered (404).
    pub async fn get_repository(&self, repo: &str) -> Result<Option<RepositoryInfo>, TargetError> {
        let segments = ["_snapshot", repo];
        let map: serde_json::Map<String, serde_json::Value> = match self
            .http
            .send_json(Method::GET, &segments, &[], Body::None)
            .await
        {
            Ok(map) => map,
            Err(e) if e.kind == ErrorKind::NotFound && e.es_type.as_deref() == Some("repository_missing_exception") => {
                return Ok(None);
            }
            // a 404 without Elasticsearch's error type (a body cut off, a proxy's page) says
            // nothing about the repository: unknown, not "not registered"
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(self.http.error(
                    &Method::GET,
                    &segments,
                    ErrorKind::Malformed,
                    format!("HTTP 404 without repository_missing_exception: {}", e.message),
                ));
            }
            Err(e) => return Err(e),
        };
        let Some(value) = map.get(repo) else {
            return Ok(None);
        };
        let mut info: RepositoryInfo = serde_json::from_value(value.clone()).map_err(|e| {
            self.http.error(&Method::GET, &segments, ErrorKind::Malformed, format!("repository {repo}: {e}"))
        })?;
        info.name = repo.to_string();
        Ok(Some(info))
    }

    /// `DELETE /_snapshot/{repo}` (unregisters; the stored snapshots stay).
    pub async fn delete_repository(&self, repo: &str) -> Result<(), TargetError> {
        self.acknowledged(Method::DELETE, &["_snapshot", repo], &[], Body::None).await
    }

    /// `PUT /_snapshot/{repo}/{snap}` `{"include_global_state": ..}` without waiting; ES answers
    /// `{"accepted":true}`. Name taken → 400 `invalid_snapshot_name_exception`.
    pub async fn create_snapshot(&self, repo: &str, snap: &str, include_global_state: bool) -> Result<(), TargetError> {
        let segments = ["_snapshot", repo, snap];
        let body = serde_json::json!({ "include_global_state": include_global_state });
        let value: serde_json::Value = self.http.send_json(Method::PUT, &segments, &[], Body::Json(body)).await?;
        self.expect_flag(&Method::PUT, &segments, &value, "accepted")
    }

    /// `GET /_snapshot/{repo}/{snap}` (not `_status`, which reports PARTIAL as SUCCESS).
    /// Unknown snapshot → `NotFound` (`snapshot_missing_exception`).
    pub async fn get_snapshot(&self, repo: &str, snap: &str) -> Result<SnapshotInfo, TargetError> {
        let segments = ["_snapshot", repo, snap];
        let list: SnapshotList = self.http.send_json(Method::GET, &segments, &[], Body::None).await?;
        list.snapshots.into_iter().find(|s| s.snapshot == snap).ok_or_else(|| {
            let mut e = self.http.error(
                &Method::GET,
                &segments,
                ErrorKind::NotFound,
                format!("[{repo}:{snap}] is missing (not in the response)"),
            );
            e.es_type = Some("snapshot_missing_exception".into());
            e
        })
    }

    /// `GET /_snapshot/{repo}/_all`.
    pub async fn list_snapshots(&self, repo: &str) -> Result<Vec<SnapshotInfo>, TargetError> {
        let list: SnapshotList =
            self.http.send_json(Method::GET, &["_snapshot", repo, "_all"], &[], Body::None).await?;
        Ok(list.snapshots)
    }

    /// `POST /_snapshot/{repo}/{snap}/_restore` `{"include_global_state": .., "feature_states":
    /// ["none"], "indices": ..}` without waiting (`{"accepted":true}`). An open index with the
    /// same name → 500 `snapshot_restore_exception`.
    ///
    /// With `include_global_state: true` Elasticsearch restores every feature state of the
    /// snapshot by default, `security` included, which would replace the target cluster's own
    /// users, roles and API keys with the source cluster's. `["none"]` restores no feature state
    /// (templates, ILM policies and other global metadata still come back); an empty list would
    /// mean the default. docs/elasticsearch.md.
    pub async fn restore_snapshot(
        &self,
        repo: &str,
        snap: &str,
        include_global_state: bool,
        indices: Option<&[String]>,
    ) -> Result<(), TargetError> {
        let segments = ["_snapshot", repo, snap, "_restore"];
        let mut body = serde_json::json!({ "include_global_state": include_global_state, "feature_states": ["none"] });
        if let Some(indices) = indices {
            body["indices"] = serde_json::Value::String(indices.join(","));
        }
        let value: serde_json::Value = self.http.send_json(Method::POST, &segments, &[], Body::Json(body)).await?;
        self.expect_flag(&Method::POST, &segments, &value, "accepted")
    }

    /// `GET /_recovery?active_only=..`, flattened to one entry per shard recovery.
    pub async fn recoveries(&self, active_only: bool) -> Result<Vec<ShardRecovery>, TargetError> {
        let segments = ["_recovery"];
        let value: serde_json::Value = self
            .http
            .send_json(Method::GET, &segments, &[("active_only", active_only.to_string())], Body::None)
            .await?;
        parse_recoveries(&value).map_err(|m| self.http.error(&Method::GET, &segments, ErrorKind::Malformed, m))
    }

    /// `GET /_cluster/health`.
    pub async fn cluster_health(&self) -> Result<ClusterHealth, TargetError> {
        self.http.send_json(Method::GET, &["_cluster", "health"], &[], Body::None).await
    }

    /// `GET /_cluster/health?wait_for_status=..&timeout=..`: ES answers 408 with
    /// `timed_out: true` when the status was not reached; that is returned as a health value,
    /// not an error. The request may take `wait` plus the client timeout.
    pub async fn cluster_health_wait(&self, status: &str, wait: Duration) -> Result<ClusterHealth, TargetError> {
        let segments = ["_cluster", "health"];
        let query = [("wait_for_status", status.to_string()), ("timeout", format!("{}ms", wait.as_millis()))];
        let raw = self.http.send_any_status(Method::GET, &segments, &query, wait).await?;
        let code = raw.status.as_u16();
        if raw.status.is_success() || code == 408 {
            return self.http.parse(&Method::GET, &segments, &raw.body);
        }
        let url = self.http.url(&segments);
        Err(self.http.status_error(&Method::GET, &url, code, &raw.body))
    }

    /// All indices: `GET /_cat/indices?format=json` (including closed ones).
    pub async fn indices(&self) -> Result<Vec<IndexInfo>, TargetError> {
        self.http
            .send_json(
                Method::GET,
                &["_cat", "indices"],
                &[("format", "json".into()), ("expand_wildcards", "all".into())],
                Body::None,
            )
            .await
    }

    /// Camunda's indices ([`CAMUNDA_INDEX_PREFIXES`](super::models::elasticsearch::CAMUNDA_INDEX_PREFIXES)),
    /// sorted by name.
    pub async fn camunda_indices(&self) -> Result<Vec<IndexInfo>, TargetError> {
        let mut indices: Vec<IndexInfo> =
            self.indices().await?.into_iter().filter(|i| is_camunda_index(&i.index)).collect();
        indices.sort_by(|a, b| a.index.cmp(&b.index));
        Ok(indices)
    }

    /// Camunda indices that are open: these make a restore fail (§6.12).
    pub async fn open_camunda_indices(&self) -> Result<Vec<IndexInfo>, TargetError> {
        Ok(self.camunda_indices().await?.into_iter().filter(|i| i.status == IndexStatus::Open).collect())
    }

    /// `true` when `index` exists and is open.
    pub async fn index_exists_open(&self, index: &str) -> Result<bool, TargetError> {
        Ok(self.indices().await?.iter().any(|i| i.index == index && i.status == IndexStatus::Open))
    }

    async fn acknowledged(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<(), TargetError> {
        let value: serde_json::Value = self.http.send_json(method.clone(), segments, query, body).await?;
        self.expect_flag(&method, segments, &value, "acknowledged")
    }

    fn expect_flag(
        &self,
        method: &Method,
        segments: &[&str],
        value: &serde_json::Value,
        flag: &str,
    ) -> Result<(), TargetError> {
        match value.get(flag) {
            Some(serde_json::Value::Bool(true)) => Ok(()),
            // A waited answer (`{"snapshot":{..}}`) also means the request was taken.
            _ if value.get("snapshot").is_some() => Ok(()),
            Some(serde_json::Value::Bool(false)) => Err(self.http.error(
                method,
                segments,
                ErrorKind::Server,
                format!("Elasticsearch answered \"{flag}\": false"),
            )),
            _ => Err(self.http.error(
                method,
                segments,
                ErrorKind::Malformed,
                format!("expected {{\"{flag}\": true}}, got {}", super::http::snippet(value.to_string().as_bytes())),
            )),
        }
    }
}
