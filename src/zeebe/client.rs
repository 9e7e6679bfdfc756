//! [`GatewayClient`]: typed calls to the Zeebe gateway of the management Camunda over tonic,
//! plaintext (`http://`) or TLS (`https://`), with the configured credentials on every call.
use super::auth::Credentials;
use super::error::ClientError;
use crate::config::ManagementConfig;
use crate::gateway_protocol as pb;
use crate::gateway_protocol::gateway_client::GatewayClient as RawClient;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Extra client-side deadline on top of a long poll's own request timeout (as Java does).
const LONG_POLL_OFFSET: Duration = Duration::from_secs(1);

/// A cheap-to-clone client of the Zeebe gateway.
#[derive(Clone)]
pub struct GatewayClient {
    raw: RawClient<Channel>,
    credentials: Arc<Credentials>,
    address: Arc<str>,
    request_timeout: Duration,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient").field("address", &self.address).finish_non_exhaustive()
    }
}

/// A message to publish (PublishMessage).
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub name: String,
    pub correlation_key: String,
    pub time_to_live: Duration,
    /// Deduplication id; the gateway answers ALREADY_EXISTS while an earlier one lives.
    pub message_id: Option<String>,
    pub variables: Map<String, Value>,
}

impl GatewayClient {
    /// Builds a client from the management settings. The connection is made lazily, so an
    /// unreachable gateway shows up as [`ClientError::Unavailable`] on the first call.
    pub fn connect(cfg: &ManagementConfig) -> Result<Self, ClientError> {
        let credentials = Credentials::from_config(&cfg.auth)?;
        Self::with_credentials(cfg, credentials)
    }

    /// Like [`GatewayClient::connect`] with explicit credentials.
    pub fn with_credentials(cfg: &ManagementConfig, credentials: Credentials) -> Result<Self, ClientError> {
        let address = cfg.grpc_address.trim().to_string();
        let invalid =
            |reason: String| ClientError::InvalidAddress { address: crate::config::redact_url(&address), reason };
        if crate::config::url_has_credentials(&address) {
            // printed by `topology` and the worker's start line: refuse, never show them
            return Err(invalid(
                "it contains credentials (user:password@); remove them and configure management.auth instead".into(),
            ));
        }
        let uri: http::Uri = address.parse().map_err(|e| invalid(format!("not a URI ({e})")))?;
        let tls = match uri.scheme_str() {
            Some("http") | Some("grpc") => false,
            Some("https") | Some("grpcs") => true,
            Some(other) => return Err(invalid(format!("unsupported scheme {other:?}"))),
            None => return Err(invalid("missing scheme".into())),
        };
        if uri.host().is_none() {
            return Err(invalid("missing host".into()));
        }
        // tonic only knows http/https.
        let normalized =
            if tls { address.replacen("grpcs://", "https://", 1) } else { address.replacen("grpc://", "http://", 1) };
        let mut endpoint = Endpoint::from_shared(normalized)
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if tls {
            let mut tls_cfg = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &cfg.ca_certificate_path {
                let pem = std::fs::read(path).map_err(|e| ClientError::CaCertificate {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                tls_cfg = tls_cfg.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls_cfg).map_err(|e| invalid(format!("TLS setup failed: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        Ok(Self {
            raw: RawClient::new(channel).max_decoding_message_size(8 * 1024 * 1024),
            credentials: Arc::new(credentials),
            address: address.into(),
            request_timeout: Duration::from_millis(cfg.request_timeout_ms.max(1)),
        })
    }

    /// The configured gateway address.
    pub fn address(&self) -> &str {
        &self.address
    }

    async fn request<T>(&self, msg: T, timeout: Duration) -> Result<tonic::Request<T>, ClientError> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(timeout);
        if let Some(value) = self.credentials.authorization().await? {
            let value = value.parse().map_err(|_| ClientError::Unauthenticated {
                rpc: "authorization",
                message: "the credential contains characters not allowed in gRPC metadata".into(),
            })?;
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }

    /// Runs one call with credentials and a deadline; refreshes an OAuth token once on
    /// UNAUTHENTICATED.
    async fn call<Req, Resp, F, Fut>(
        &self,
        rpc: &'static str,
        msg: Req,
        timeout: Duration,
        f: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(RawClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let mut refreshed = false;
        loop {
            let req = self.request(msg.clone(), timeout).await?;
            let result = tokio::time::timeout(timeout, f(self.raw.clone(), req)).await;
            let status = match result {
                Err(_) => {
                    return Err(ClientError::Timeout { rpc, timeout_ms: timeout.as_millis() as u64 });
                }
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) => status,
            };
            if status.code() == tonic::Code::Unauthenticated && !refreshed && self.credentials.invalidate().await {
                tracing::info!(rpc, "gateway answered UNAUTHENTICATED; refreshing the OAuth token once");
                refreshed = true;
                continue;
            }
            return Err(ClientError::from_status(rpc, &self.address, &status));
        }
    }

    pub async fn topology(&self) -> Result<super::model::Topology, ClientError> {
        self.call(
            "Topology",
            pb::TopologyRequest {},
            self.request_timeout,
            |mut c, r| async move { c.topology(r).await },
        )
        .await
        .map(Into::into)
    }

    /// Deploys all resources in ONE DeployResource (atomic). The engine picks the resource
    /// type by name suffix (`.bpmn`, `.dmn`, `.form`).
    pub async fn deploy_resources(
        &self,
        resources: Vec<(String, Vec<u8>)>,
    ) -> Result<super::model::Deployment, ClientError> {
        let msg = pb::DeployResourceRequest {
            resources: resources.into_iter().map(|(name, content)| pb::Resource { name, content }).collect(),
            tenant_id: String::new(),
        };
        self.call("DeployResource", msg, self.request_timeout, |mut c, r| async move { c.deploy_resource(r).await })
            .await
            .map(Into::into)
    }

    /// Starts the latest version of `bpmn_process_id` with `variables`.
    pub async fn create_process_instance(
        &self,
        bpmn_process_id: &str,
        variables: &Map<String, Value>,
    ) -> Result<super::model::CreatedInstance, ClientError> {
        let msg = pb::CreateProcessInstanceRequest {
            bpmn_process_id: bpmn_process_id.to_string(),
            version: -1,
            variables: Value::Object(variables.clone()).to_string(),
            ..Default::default()
        };
        self.create_process_instance_raw(msg).await.map(Into::into)
    }

    /// CreateProcessInstance with every field of the request under the caller's control.
    async fn create_process_instance_raw(
        &self,
        msg: pb::CreateProcessInstanceRequest,
    ) -> Result<pb::CreateProcessInstanceResponse, ClientError> {
        self.call("CreateProcessInstance", msg, self.request_timeout, |mut c, r| async move {
            c.create_process_instance(r).await
        })
        .await
    }

    pub async fn cancel_process_instance(&self, process_instance_key: i64) -> Result<(), ClientError> {
        let msg = pb::CancelProcessInstanceRequest { process_instance_key, operation_reference: None };
        self.call("CancelProcessInstance", msg, self.request_timeout, |mut c, r| async move {
            c.cancel_process_instance(r).await
        })
        .await
        .map(|_| ())
    }

    pub async fn publish_message(&self, m: &Message) -> Result<super::model::PublishedMessage, ClientError> {
        let msg = pb::PublishMessageRequest {
            name: m.name.clone(),
            correlation_key: m.correlation_key.clone(),
            time_to_live: m.time_to_live.as_millis() as i64,
            message_id: m.message_id.clone().unwrap_or_default(),
            variables: Value::Object(m.variables.clone()).to_string(),
            tenant_id: String::new(),
        };
        self.call("PublishMessage", msg, self.request_timeout, |mut c, r| async move { c.publish_message(r).await })
            .await
            .map(Into::into)
    }

    /// Sets variables on a process or element instance; returns the command key.
    pub async fn set_variables(
        &self,
        element_instance_key: i64,
        variables: &Map<String, Value>,
        local: bool,
    ) -> Result<i64, ClientError> {
        let msg = pb::SetVariablesRequest {
            element_instance_key,
            variables: Value::Object(variables.clone()).to_string(),
            local,
            operation_reference: None,
        };
        self.call("SetVariables", msg, self.request_timeout, |mut c, r| async move { c.set_variables(r).await })
            .await
            .map(|r| r.key)
    }

    pub async fn resolve_incident(&self, incident_key: i64) -> Result<(), ClientError> {
        let msg = pb::ResolveIncidentRequest { incident_key, operation_reference: None };
        self.call("ResolveIncident", msg, self.request_timeout, |mut c, r| async move { c.resolve_incident(r).await })
            .await
            .map(|_| ())
    }

    pub async fn update_job_retries(&self, job_key: i64, retries: i32) -> Result<(), ClientError> {
        let msg = pb::UpdateJobRetriesRequest { job_key, retries, operation_reference: None };
        self.call(
            "UpdateJobRetries",
            msg,
            self.request_timeout,
            |mut c, r| async move { c.update_job_retries(r).await },
        )
        .await
        .map(|_| ())
    }

    pub async fn complete_job(&self, job_key: i64, variables: &Map<String, Value>) -> Result<(), ClientError> {
        let msg =
            pb::CompleteJobRequest { job_key, variables: Value::Object(variables.clone()).to_string(), result: None };
        self.call("CompleteJob", msg, self.request_timeout, |mut c, r| async move { c.complete_job(r).await })
            .await
            .map(|_| ())
    }

    /// CompleteJob of a user task listener job (Camunda 8.8): no variables (the engine rejects
    /// them), a JobResult of type `userTask`, denied with `deny` as the reason when Some.
    pub async fn complete_listener_job(&self, job_key: i64, deny: Option<&str>) -> Result<(), ClientError> {
        let result = pb::JobResult {
            r#type: Some("userTask".into()),
            denied: Some(deny.is_some()),
            denied_reason: deny.map(str::to_string),
            ..Default::default()
        };
        let msg = pb::CompleteJobRequest { job_key, variables: String::new(), result: Some(result) };
        self.call("CompleteJob", msg, self.request_timeout, |mut c, r| async move { c.complete_job(r).await })
            .await
            .map(|_| ())
    }

    /// FailJob: `retries` is what is left (the caller passes `job.retries - 1`).
    pub async fn fail_job(
        &self,
        job_key: i64,
        retries: i32,
        error_message: &str,
        retry_backoff: Option<Duration>,
    ) -> Result<(), ClientError> {
        self.fail_job_with_variables(job_key, retries, error_message, retry_backoff, &Map::new()).await
    }

    /// FailJob that also sets `variables` in the job's local scope (the task), where the next
    /// activation of the same job sees them.
    pub async fn fail_job_with_variables(
        &self,
        job_key: i64,
        retries: i32,
        error_message: &str,
        retry_backoff: Option<Duration>,
        variables: &Map<String, Value>,
    ) -> Result<(), ClientError> {
        let msg = pb::FailJobRequest {
            job_key,
            retries,
            error_message: error_message.to_string(),
            retry_back_off: retry_backoff.map(|d| d.as_millis() as i64).unwrap_or(0),
            variables: if variables.is_empty() { String::new() } else { Value::Object(variables.clone()).to_string() },
        };
        self.call("FailJob", msg, self.request_timeout, |mut c, r| async move { c.fail_job(r).await }).await.map(|_| ())
    }

    pub async fn throw_error(
        &self,
        job_key: i64,
        error_code: &str,
        error_message: &str,
        variables: &Map<String, Value>,
    ) -> Result<(), ClientError> {
        let msg = pb::ThrowErrorRequest {
            job_key,
            error_code: error_code.to_string(),
            error_message: error_message.to_string(),
            variables: Value::Object(variables.clone()).to_string(),
        };
        self.call("ThrowError", msg, self.request_timeout, |mut c, r| async move { c.throw_error(r).await })
            .await
            .map(|_| ())
    }

    /// Extends the job's deadline to `timeout` from now.
    pub async fn update_job_timeout(&self, job_key: i64, timeout: Duration) -> Result<(), ClientError> {
        let msg =
            pb::UpdateJobTimeoutRequest { job_key, timeout: timeout.as_millis() as i64, operation_reference: None };
        self.call(
            "UpdateJobTimeout",
            msg,
            self.request_timeout,
            |mut c, r| async move { c.update_job_timeout(r).await },
        )
        .await
        .map(|_| ())
    }

    /// ActivateJobs (long poll): collects every response of the call's stream.
    pub async fn activate_jobs(&self, msg: pb::ActivateJobsRequest) -> Result<Vec<pb::ActivatedJob>, ClientError> {
        let long_poll = Duration::from_millis(msg.request_timeout.max(0) as u64);
        let deadline = long_poll.max(self.request_timeout) + LONG_POLL_OFFSET;
        self.call("ActivateJobs", msg, deadline, |mut c, r| async move {
            let resp = c.activate_jobs(r).await?;
            let (meta, mut stream, ext) = resp.into_parts();
            let mut jobs = Vec::new();
            while let Some(batch) = stream.message().await? {
                jobs.extend(batch.jobs);
            }
            Ok(tonic::Response::from_parts(meta, jobs, ext))
        })
        .await
    }

    /// Opens StreamActivatedJobs; the stream stays open until the gateway or the caller ends it.
    pub async fn stream_activated_jobs(
        &self,
        msg: pb::StreamActivatedJobsRequest,
    ) -> Result<tonic::Streaming<pb::ActivatedJob>, ClientError> {
        let rpc = "StreamActivatedJobs";
        let mut refreshed = false;
        loop {
            let mut req = self.request(msg.clone(), self.request_timeout).await?;
            // The stream is long-lived: no grpc-timeout header for it.
            req.metadata_mut().remove("grpc-timeout");
            let mut raw = self.raw.clone();
            let opened = tokio::time::timeout(self.request_timeout, raw.stream_activated_jobs(req)).await;
            let status = match opened {
                Err(_) => {
                    return Err(ClientError::Timeout { rpc, timeout_ms: self.request_timeout.as_millis() as u64 });
                }
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) => status,
            };
            if status.code() == tonic::Code::Unauthenticated && !refreshed && self.credentials.invalidate().await {
                refreshed = true;
                continue;
            }
            return Err(ClientError::from_status(rpc, &self.address, &status));
        }
    }
}
