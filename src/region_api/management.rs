//! Client of the Zeebe management API (gateway port 9600): cluster topology and changes,
//! exporters, exporting pause/resume (docs/target-apis.md §2). Unauthenticated by default.
use super::change::{ChangeVerdict, judge_change};
use super::error::{Api, ErrorKind, TargetError};
use super::http::{Body, HttpAuthResolved, HttpCore};
use super::models::management::{ClusterPatch, ClusterTopology, ExporterStatus, PlannedChange};
use reqwest::Method;
use std::time::Duration;

/// Typed async client of one region's management API.
#[derive(Debug, Clone)]
pub struct ManagementClient {
    http: HttpCore,
}

impl ManagementClient {
    /// `base_url` like `http://camunda-zeebe-gateway.ns:9600`; `timeout` bounds every request.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, TargetError> {
        Ok(Self { http: HttpCore::new(Api::Management, base_url, HttpAuthResolved::None, timeout)? })
    }

    /// Sends every call through its own short-lived Kubernetes port-forward of `forwarder`'s
    /// region (`access = "port-forward"`): the base URL names the Service and its port.
    pub fn with_port_forward(
        self,
        forwarder: std::sync::Arc<crate::platform::k8s::forward::Forwarder>,
    ) -> Result<Self, TargetError> {
        Ok(Self { http: self.http.with_port_forward(forwarder)? })
    }

    /// The base URL (without credentials).
    pub fn base_url(&self) -> &str {
        self.http.base_url().as_str()
    }

    /// `GET /actuator/cluster`.
    pub async fn get_cluster(&self) -> Result<ClusterTopology, TargetError> {
        self.http.send_json(Method::GET, &["actuator", "cluster"], &[], Body::None).await
    }

    /// `GET /actuator/cluster` and where change `change_id` stands in it
    /// ([`judge_change`](super::change::judge_change)).
    pub async fn change_verdict(&self, change_id: i64) -> Result<(ChangeVerdict, ClusterTopology), TargetError> {
        let topology = self.get_cluster().await?;
        Ok((judge_change(&topology, change_id), topology))
    }

    /// `PATCH /actuator/cluster?dryRun=..&force=..` → 202 planned change.
    /// 409 = another change is in progress (kind `Conflict`); 400 carries the server's reason
    /// (e.g. "Cannot force add brokers").
    pub async fn patch_cluster(
        &self,
        patch: &ClusterPatch,
        dry_run: bool,
        force: bool,
    ) -> Result<PlannedChange, TargetError> {
        let body = serde_json::to_value(patch).map_err(|e| {
            TargetError::new(Api::Management, ErrorKind::InvalidRequest, format!("cannot encode patch: {e}"))
        })?;
        let query = [("dryRun", dry_run.to_string()), ("force", force.to_string())];
        self.http.send_json(Method::PATCH, &["actuator", "cluster"], &query, Body::Json(body)).await
    }

    /// `DELETE /actuator/cluster/changes/{changeId}`: cancels a stuck change. Applied operations
    /// are **not** reverted. Returns the resulting topology.
    pub async fn cancel_change(&self, change_id: i64) -> Result<ClusterTopology, TargetError> {
        let id = change_id.to_string();
        self.http.send_json(Method::DELETE, &["actuator", "cluster", "changes", &id], &[], Body::None).await
    }

    /// `GET /actuator/exporters`: aggregated status per exporter.
    pub async fn list_exporters(&self) -> Result<Vec<ExporterStatus>, TargetError> {
        self.http.send_json(Method::GET, &["actuator", "exporters"], &[], Body::None).await
    }

    /// `POST /actuator/exporters/{id}/disable` → 202 planned change (asynchronous).
    pub async fn disable_exporter(&self, exporter_id: &str) -> Result<PlannedChange, TargetError> {
        self.http.send_json(Method::POST, &["actuator", "exporters", exporter_id, "disable"], &[], Body::None).await
    }

    /// `POST /actuator/exporters/{id}/enable` with `{"initializeFrom": ..}` when given → 202
    /// planned change (asynchronous).
    pub async fn enable_exporter(
        &self,
        exporter_id: &str,
        initialize_from: Option<&str>,
    ) -> Result<PlannedChange, TargetError> {
        let body = match initialize_from {
            Some(from) => Body::Json(serde_json::json!({ "initializeFrom": from })),
            None => Body::None,
        };
        self.http.send_json(Method::POST, &["actuator", "exporters", exporter_id, "enable"], &[], body).await
    }

    /// `POST /actuator/exporting/pause[?soft=true]`. Succeeds on HTTP 204, or HTTP 200 whose
    /// body says `"status": 2xx` (8.8 quirk); a body status >= 400 is an error carrying the
    /// body's message (kind from that status, e.g. 500 → `Server`).
    pub async fn pause_exporting(&self, soft: bool) -> Result<(), TargetError> {
        let query: Vec<(&str, String)> = if soft { vec![("soft", "true".to_string())] } else { Vec::new() };
        self.exporting_call("pause", &query).await
    }

    /// `POST /actuator/exporting/resume`; same success rules as [`pause_exporting`](Self::pause_exporting).
    pub async fn resume_exporting(&self) -> Result<(), TargetError> {
        self.exporting_call("resume", &[]).await
    }

    async fn exporting_call(&self, action: &str, query: &[(&str, String)]) -> Result<(), TargetError> {
        let segments = ["actuator", "exporting", action];
        let raw = self.http.send_raw(Method::POST, &segments, query, Body::None).await?;
        judge_exporting_body(&raw.body).map_err(|(kind, status, message)| {
            let mut err = self.http.error(&Method::POST, &segments, kind, message);
            err.status = status;
            err
        })
    }
}

/// Judges the body of a 2xx pause/resume answer: empty → success; a JSON object with numeric
/// `status` → success when 2xx, otherwise failure with the body's message; anything else is
/// `Malformed`.
fn judge_exporting_body(body: &[u8]) -> Result<(), (ErrorKind, Option<u16>, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        (ErrorKind::Malformed, None, format!("cannot parse response: {e}; body {:?}", super::http::snippet(body)))
    })?;
    let Some(status) = value.get("status").and_then(serde_json::Value::as_u64) else {
        return Err((
            ErrorKind::Malformed,
            None,
            format!("expected {{\"status\": <code>, ...}}, got {:?}", super::http::snippet(body)),
        ));
    };
    let status = u16::try_from(status).unwrap_or(u16::MAX);
    if (200..300).contains(&status) {
        return Ok(());
    }
    let (message, _) = super::http::error_message(body, status);
    let kind = if status >= 400 { ErrorKind::from_status(status) } else { ErrorKind::Malformed };
    Err((kind, Some(status), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporting_body_rules() {
        assert!(judge_exporting_body(b"").is_ok());
        assert!(judge_exporting_body(br#"{"body":null,"status":204,"contentType":null}"#).is_ok());
        let (kind, status, message) = judge_exporting_body(
            br#"{"body":{"message":"Expected 3 members of partition 1 but found 2"},"status":500,"contentType":null}"#,
        )
        .unwrap_err();
        assert_eq!((kind, status), (ErrorKind::Server, Some(500)));
        assert_eq!(message, "Expected 3 members of partition 1 but found 2");
        let (kind, status, _) = judge_exporting_body(br#"{"body":{"message":"x"},"status":409}"#).unwrap_err();
        assert_eq!((kind, status), (ErrorKind::Conflict, Some(409)));
        assert_eq!(judge_exporting_body(b"<html>").unwrap_err().0, ErrorKind::Malformed);
        assert_eq!(judge_exporting_body(br#"{"ok":true}"#).unwrap_err().0, ErrorKind::Malformed);
    }
}
