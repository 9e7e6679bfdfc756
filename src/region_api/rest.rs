//! Client of the Orchestration Cluster REST API v2 (port 8080): topology, deployments, process
//! instances (docs/target-apis.md §3).
use super::error::{Api, ErrorKind, TargetError};
use super::http::{Body, HttpAuthResolved, HttpCore};
use super::models::rest::{
    CreatedInstance, DeploymentResult, ProcessDefinition, ProcessInstance, RestTopology, SearchPage,
};
use reqwest::Method;
use std::time::Duration;

/// Typed async client of one region's REST API.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: HttpCore,
}

impl RestClient {
    /// `base_url` like `http://camunda-zeebe-gateway.ns:8080`.
    pub fn new(base_url: &str, auth: HttpAuthResolved, timeout: Duration) -> Result<Self, TargetError> {
        Ok(Self { http: HttpCore::new(Api::Rest, base_url, auth, timeout)? })
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

    /// `GET /v2/topology`.
    pub async fn topology(&self) -> Result<RestTopology, TargetError> {
        self.http.send_json(Method::GET, &["v2", "topology"], &[], Body::None).await
    }

    /// `POST /v2/deployments` (multipart, one part `resources`).
    pub async fn deploy_resource(&self, file_name: &str, bytes: Vec<u8>) -> Result<DeploymentResult, TargetError> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str("application/octet-stream")
            .map_err(|e| {
                self.http.error(&Method::POST, &["v2", "deployments"], ErrorKind::InvalidRequest, e.to_string())
            })?;
        let form = reqwest::multipart::Form::new().part("resources", part);
        self.http.send_json(Method::POST, &["v2", "deployments"], &[], Body::Multipart(form)).await
    }

    /// `POST /v2/process-instances` `{"processDefinitionId": .., "variables": ..}` (latest version).
    /// `variables` is omitted when `null`.
    pub async fn create_process_instance(
        &self,
        process_definition_id: &str,
        variables: serde_json::Value,
    ) -> Result<CreatedInstance, TargetError> {
        let mut body = serde_json::json!({ "processDefinitionId": process_definition_id });
        if !variables.is_null() {
            body["variables"] = variables;
        }
        self.http.send_json(Method::POST, &["v2", "process-instances"], &[], Body::Json(body)).await
    }

    /// `POST /v2/process-instances/search` `{"filter": filter, "page": {"limit": limit}}`.
    /// `filter` `null` searches everything.
    pub async fn search_process_instances(
        &self,
        filter: serde_json::Value,
        limit: u32,
    ) -> Result<SearchPage<ProcessInstance>, TargetError> {
        self.search(&["v2", "process-instances", "search"], filter, limit).await
    }

    /// `POST /v2/process-definitions/search` `{"filter": filter, "page": {"limit": limit}}`.
    pub async fn search_process_definitions(
        &self,
        filter: serde_json::Value,
        limit: u32,
    ) -> Result<SearchPage<ProcessDefinition>, TargetError> {
        self.search(&["v2", "process-definitions", "search"], filter, limit).await
    }

    /// `POST /v2/element-instances/search` `{"filter": filter, "page": {"limit": limit}}`; items as
    /// the server sends them (elementId, elementName, type, state, startDate, ...).
    pub async fn search_element_instances(
        &self,
        filter: serde_json::Value,
        limit: u32,
    ) -> Result<SearchPage<serde_json::Value>, TargetError> {
        self.search(&["v2", "element-instances", "search"], filter, limit).await
    }

    async fn search<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        filter: serde_json::Value,
        limit: u32,
    ) -> Result<SearchPage<T>, TargetError> {
        let mut body = serde_json::json!({ "page": { "limit": limit } });
        if !filter.is_null() {
            body["filter"] = filter;
        }
        self.http.send_json(Method::POST, segments, &[], Body::Json(body)).await
    }
}
