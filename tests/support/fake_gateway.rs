//! A minimal in-memory Zeebe gateway: a **test double** for the worker runtime, the client and
//! the CLI tests (test support, not part of the library; include it with
//! `#[path = "support/fake_gateway.rs"] mod fake_gateway;`). It is not an engine (no BPMN, no
//! job timeouts): tests enqueue jobs and read back what the worker sent. The rehearsal engine
//! (src/rehearsal/engine) is the full simulation; `c8dr bench activation` runs against it.
//!
//! - [`FakeGateway::enqueue`] makes a job available: it is pushed to an open
//!   StreamActivatedJobs stream of its type when there is one, otherwise queued for
//!   ActivateJobs (which long-polls up to the request timeout).
//! - Every call is recorded as a [`Call`]; [`FakeGateway::wait_for`] waits for a condition.
//! - [`FakeGateway::fail_next`] makes the next N calls of some RPCs answer with a gRPC code.
//! - [`FakeGateway::accept_authorizations`] makes every call require one of the given
//!   `authorization` metadata values (UNAUTHENTICATED otherwise).
// each test crate uses a part of it
#![allow(dead_code)]

use c8dr::gateway_protocol as pb;
use c8dr::gateway_protocol::gateway_server::{Gateway, GatewayServer};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// How a job reached the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Stream,
    Poll,
}

/// One call the fake received (or a delivery it made).
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    ActivateJobs {
        job_type: String,
        worker: String,
        max_jobs: i32,
        timeout_ms: i64,
        returned: usize,
    },
    StreamOpened {
        job_type: String,
        worker: String,
    },
    Delivered {
        key: i64,
        via: Via,
    },
    Complete {
        key: i64,
        variables: Value,
    },
    Fail {
        key: i64,
        retries: i32,
        message: String,
        retry_backoff_ms: i64,
    },
    ThrowError {
        key: i64,
        code: String,
        message: String,
        variables: Value,
    },
    UpdateTimeout {
        key: i64,
        timeout_ms: i64,
    },
    UpdateRetries {
        key: i64,
        retries: i32,
    },
    Deploy {
        names: Vec<String>,
    },
    CreateInstance {
        bpmn_process_id: String,
        version: i32,
        variables: Value,
    },
    Cancel {
        key: i64,
    },
    PublishMessage {
        name: String,
        correlation_key: String,
        ttl_ms: i64,
        message_id: String,
        variables: Value,
    },
    SetVariables {
        key: i64,
        variables: Value,
        local: bool,
    },
    ResolveIncident {
        key: i64,
    },
    Topology,
    /// A call answered with an injected or authorization error.
    Rejected {
        rpc: String,
        code: tonic::Code,
    },
}

#[derive(Debug)]
struct Fault {
    rpcs: Vec<String>,
    code: tonic::Code,
    remaining: usize,
}

/// An open job stream: the worker name and the sender of pushed jobs.
type StreamSender = (String, mpsc::Sender<Result<pb::ActivatedJob, Status>>);

#[derive(Default)]
struct State {
    queued: BTreeMap<String, VecDeque<pb::ActivatedJob>>,
    streams: BTreeMap<String, Vec<StreamSender>>,
    faults: Vec<Fault>,
    accepted_auth: Option<Vec<String>>,
    seen_auth: Vec<String>,
    calls: Vec<Call>,
    next_key: i64,
}

struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

/// The fake gateway. Clones share state.
#[derive(Clone)]
pub struct FakeGateway {
    inner: Arc<Inner>,
}

impl Default for FakeGateway {
    fn default() -> Self {
        Self::new()
    }
}

/// A running fake gateway server; stops when dropped.
pub struct FakeServer {
    pub address: SocketAddr,
    scheme: &'static str,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// `http://127.0.0.1:PORT` (or `https://`), for `management.grpc_address`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGateway {
    pub fn new() -> Self {
        let state = State { next_key: 2_251_799_813_685_249, ..State::default() };
        Self { inner: Arc::new(Inner { state: Mutex::new(state), changed: Notify::new() }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, st: &mut State, call: Call) {
        st.calls.push(call);
        self.inner.changed.notify_waiters();
    }

    /// Serves plaintext gRPC on 127.0.0.1 with a free port.
    pub async fn serve(&self) -> std::io::Result<FakeServer> {
        self.serve_inner(None).await
    }

    /// Serves gRPC over TLS (PEM certificate chain and key) on 127.0.0.1 with a free port;
    /// [`FakeServer::url`] then starts with `https://`. The process must have a rustls
    /// `CryptoProvider` installed (`rustls::crypto::ring::default_provider().install_default()`):
    /// with both ring and aws-lc-rs in the dependency tree, rustls cannot choose one itself.
    pub async fn serve_tls(&self, cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<FakeServer> {
        let identity = tonic::transport::Identity::from_pem(cert_pem, key_pem);
        self.serve_inner(Some(tonic::transport::ServerTlsConfig::new().identity(identity))).await
    }

    async fn serve_inner(&self, tls: Option<tonic::transport::ServerTlsConfig>) -> std::io::Result<FakeServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let svc = GatewayServer::new(self.clone());
        let mut builder = tonic::transport::Server::builder();
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let task = tokio::spawn(async move {
            use tokio_stream::StreamExt as _;
            // No Nagle: small gRPC frames would otherwise wait for delayed ACKs (~40 ms).
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
                if let Ok(s) = &s {
                    let _ = s.set_nodelay(true);
                }
                s
            });
            if let Err(e) = builder.add_service(svc).serve_with_incoming(incoming).await {
                tracing::error!(error = %e, "fake gateway stopped");
            }
        });
        Ok(FakeServer { address, scheme, task })
    }

    /// Makes a job of `job_type` with `variables` available; returns its key.
    pub fn enqueue(&self, job_type: &str, variables: Value) -> i64 {
        self.enqueue_job(pb::ActivatedJob {
            r#type: job_type.to_string(),
            bpmn_process_id: "fake-process".into(),
            process_instance_key: 1,
            element_id: "fake-task".into(),
            custom_headers: "{}".into(),
            variables: variables.to_string(),
            retries: 3,
            ..Default::default()
        })
    }

    /// Makes `job` available (a zero key is replaced by a fresh one); returns its key.
    pub fn enqueue_job(&self, mut job: pb::ActivatedJob) -> i64 {
        let mut st = self.lock();
        if job.key == 0 {
            job.key = st.next_key;
            st.next_key += 1;
        }
        let key = job.key;
        let job_type = job.r#type.clone();
        if let Some(streams) = st.streams.get_mut(&job_type) {
            streams.retain(|(_, tx)| !tx.is_closed());
            for (worker, tx) in streams.iter() {
                let mut pushed = job.clone();
                pushed.worker = worker.clone();
                if tx.try_send(Ok(pushed)).is_ok() {
                    self.record(&mut st, Call::Delivered { key, via: Via::Stream });
                    return key;
                }
            }
        }
        st.queued.entry(job_type).or_default().push_back(job);
        self.inner.changed.notify_waiters();
        key
    }

    /// The next `n` calls of any RPC in `rpcs` (e.g. `["ActivateJobs", "StreamActivatedJobs"]`)
    /// answer `code`.
    pub fn fail_next(&self, rpcs: &[&str], code: tonic::Code, n: usize) {
        self.lock().faults.push(Fault { rpcs: rpcs.iter().map(|s| s.to_string()).collect(), code, remaining: n });
    }

    /// Every call must carry one of `values` as `authorization` metadata (None: no check).
    pub fn accept_authorizations(&self, values: Option<Vec<String>>) {
        self.lock().accepted_auth = values;
    }

    /// The `authorization` values received so far, in order.
    pub fn seen_authorizations(&self) -> Vec<String> {
        self.lock().seen_auth.clone()
    }

    /// Ends every open job stream (the worker should reopen it).
    pub fn close_streams(&self) {
        self.lock().streams.clear();
    }

    /// Number of open job streams for `job_type`.
    pub fn open_streams(&self, job_type: &str) -> usize {
        let mut st = self.lock();
        st.streams.get_mut(job_type).map_or(0, |s| {
            s.retain(|(_, tx)| !tx.is_closed());
            s.len()
        })
    }

    /// Jobs still waiting for ActivateJobs.
    pub fn queued(&self, job_type: &str) -> usize {
        self.lock().queued.get(job_type).map_or(0, |q| q.len())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Waits until `cond(calls)` holds; false after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, cond: impl Fn(&[Call]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            if cond(&self.lock().calls) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), notified).await;
        }
    }

    /// Checks authorization and injected faults for `rpc`.
    fn admit<T>(&self, rpc: &str, req: &Request<T>) -> Result<(), Status> {
        let mut st = self.lock();
        let auth = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(a) = &auth {
            st.seen_auth.push(a.clone());
        }
        if let Some(accepted) = &st.accepted_auth
            && !auth.as_ref().is_some_and(|a| accepted.contains(a))
        {
            self.record(&mut st, Call::Rejected { rpc: rpc.into(), code: tonic::Code::Unauthenticated });
            return Err(Status::unauthenticated("fake gateway: missing or rejected authorization"));
        }
        let hit = st.faults.iter_mut().find(|f| f.remaining > 0 && f.rpcs.iter().any(|r| r == rpc)).map(|f| {
            f.remaining -= 1;
            f.code
        });
        if let Some(code) = hit {
            self.record(&mut st, Call::Rejected { rpc: rpc.into(), code });
            return Err(Status::new(code, format!("fake gateway: injected {code:?}")));
        }
        Ok(())
    }

    fn take_jobs(&self, job_type: &str, worker: &str, max: usize, timeout_ms: i64) -> Vec<pb::ActivatedJob> {
        let mut st = self.lock();
        let deadline = chrono::Utc::now().timestamp_millis() + timeout_ms;
        let mut out = Vec::new();
        if let Some(q) = st.queued.get_mut(job_type) {
            while out.len() < max {
                match q.pop_front() {
                    Some(mut j) => {
                        j.worker = worker.to_string();
                        j.deadline = deadline;
                        out.push(j);
                    }
                    None => break,
                }
            }
        }
        for j in &out {
            let key = j.key;
            self.record(&mut st, Call::Delivered { key, via: Via::Poll });
        }
        out
    }
}

fn json(text: &str) -> Value {
    if text.is_empty() { Value::Null } else { serde_json::from_str(text).unwrap_or(Value::String(text.to_string())) }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Gateway for FakeGateway {
    type ActivateJobsStream = BoxStream<pb::ActivateJobsResponse>;
    type StreamActivatedJobsStream = BoxStream<pb::ActivatedJob>;

    async fn activate_jobs(
        &self,
        request: Request<pb::ActivateJobsRequest>,
    ) -> Result<Response<Self::ActivateJobsStream>, Status> {
        self.admit("ActivateJobs", &request)?;
        let r = request.into_inner();
        if r.r#type.is_empty() || r.worker.is_empty() || r.timeout < 1 || r.max_jobs_to_activate < 1 {
            return Err(Status::invalid_argument("type, worker, timeout >= 1 and maxJobsToActivate >= 1 are required"));
        }
        let long_poll = match r.request_timeout {
            0 => Duration::from_secs(10),
            t if t < 0 => Duration::ZERO,
            t => Duration::from_millis(t as u64),
        };
        let deadline = Instant::now() + long_poll;
        let jobs = loop {
            let notified = self.inner.changed.notified();
            let jobs = self.take_jobs(&r.r#type, &r.worker, r.max_jobs_to_activate as usize, r.timeout);
            let left = deadline.saturating_duration_since(Instant::now());
            if !jobs.is_empty() || left.is_zero() {
                break jobs;
            }
            let _ = tokio::time::timeout(left, notified).await;
        };
        {
            let mut st = self.lock();
            let call = Call::ActivateJobs {
                job_type: r.r#type.clone(),
                worker: r.worker.clone(),
                max_jobs: r.max_jobs_to_activate,
                timeout_ms: r.timeout,
                returned: jobs.len(),
            };
            self.record(&mut st, call);
        }
        let stream = tokio_stream::iter(vec![Ok(pb::ActivateJobsResponse { jobs })]);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stream_activated_jobs(
        &self,
        request: Request<pb::StreamActivatedJobsRequest>,
    ) -> Result<Response<Self::StreamActivatedJobsStream>, Status> {
        self.admit("StreamActivatedJobs", &request)?;
        let r = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let mut st = self.lock();
        st.streams.entry(r.r#type.clone()).or_default().push((r.worker.clone(), tx));
        self.record(&mut st, Call::StreamOpened { job_type: r.r#type, worker: r.worker });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn cancel_process_instance(
        &self,
        request: Request<pb::CancelProcessInstanceRequest>,
    ) -> Result<Response<pb::CancelProcessInstanceResponse>, Status> {
        self.admit("CancelProcessInstance", &request)?;
        let key = request.into_inner().process_instance_key;
        let mut st = self.lock();
        self.record(&mut st, Call::Cancel { key });
        Ok(Response::new(pb::CancelProcessInstanceResponse {}))
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::CompleteJobResponse>, Status> {
        self.admit("CompleteJob", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        self.record(&mut st, Call::Complete { key: r.job_key, variables: json(&r.variables) });
        Ok(Response::new(pb::CompleteJobResponse {}))
    }

    async fn create_process_instance_with_result(
        &self,
        request: Request<pb::CreateProcessInstanceWithResultRequest>,
    ) -> Result<Response<pb::CreateProcessInstanceWithResultResponse>, Status> {
        self.admit("CreateProcessInstanceWithResult", &request)?;
        Err(Status::unimplemented("the fake gateway does not run processes"))
    }

    async fn create_process_instance(
        &self,
        request: Request<pb::CreateProcessInstanceRequest>,
    ) -> Result<Response<pb::CreateProcessInstanceResponse>, Status> {
        self.admit("CreateProcessInstance", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        let key = st.next_key;
        st.next_key += 1;
        let call = Call::CreateInstance {
            bpmn_process_id: r.bpmn_process_id.clone(),
            version: r.version,
            variables: json(&r.variables),
        };
        self.record(&mut st, call);
        Ok(Response::new(pb::CreateProcessInstanceResponse {
            process_definition_key: 1,
            bpmn_process_id: r.bpmn_process_id,
            version: 1,
            process_instance_key: key,
            tenant_id: "<default>".into(),
        }))
    }

    async fn deploy_resource(
        &self,
        request: Request<pb::DeployResourceRequest>,
    ) -> Result<Response<pb::DeployResourceResponse>, Status> {
        self.admit("DeployResource", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        let mut deployments = Vec::new();
        for res in &r.resources {
            let stem = res.name.rsplit('/').next().unwrap_or(&res.name);
            let id = stem.rsplit_once('.').map_or(stem, |(s, _)| s).to_string();
            let key = st.next_key;
            st.next_key += 1;
            let metadata = if res.name.ends_with(".bpmn") || res.name.ends_with(".xml") {
                pb::deployment::Metadata::Process(pb::ProcessMetadata {
                    bpmn_process_id: id,
                    version: 1,
                    process_definition_key: key,
                    resource_name: res.name.clone(),
                    tenant_id: "<default>".into(),
                })
            } else if res.name.ends_with(".form") {
                pb::deployment::Metadata::Form(pb::FormMetadata {
                    form_id: id,
                    version: 1,
                    form_key: key,
                    resource_name: res.name.clone(),
                    tenant_id: "<default>".into(),
                })
            } else {
                return Err(Status::invalid_argument(format!("unknown resource type: {}", res.name)));
            };
            deployments.push(pb::Deployment { metadata: Some(metadata) });
        }
        let key = st.next_key;
        st.next_key += 1;
        self.record(&mut st, Call::Deploy { names: r.resources.iter().map(|r| r.name.clone()).collect() });
        Ok(Response::new(pb::DeployResourceResponse { key, deployments, tenant_id: "<default>".into() }))
    }

    async fn fail_job(&self, request: Request<pb::FailJobRequest>) -> Result<Response<pb::FailJobResponse>, Status> {
        self.admit("FailJob", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        let call = Call::Fail {
            key: r.job_key,
            retries: r.retries,
            message: r.error_message,
            retry_backoff_ms: r.retry_back_off,
        };
        self.record(&mut st, call);
        Ok(Response::new(pb::FailJobResponse {}))
    }

    async fn throw_error(
        &self,
        request: Request<pb::ThrowErrorRequest>,
    ) -> Result<Response<pb::ThrowErrorResponse>, Status> {
        self.admit("ThrowError", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        let call = Call::ThrowError {
            key: r.job_key,
            code: r.error_code,
            message: r.error_message,
            variables: json(&r.variables),
        };
        self.record(&mut st, call);
        Ok(Response::new(pb::ThrowErrorResponse {}))
    }

    async fn publish_message(
        &self,
        request: Request<pb::PublishMessageRequest>,
    ) -> Result<Response<pb::PublishMessageResponse>, Status> {
        self.admit("PublishMessage", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        let key = st.next_key;
        st.next_key += 1;
        let call = Call::PublishMessage {
            name: r.name,
            correlation_key: r.correlation_key,
            ttl_ms: r.time_to_live,
            message_id: r.message_id,
            variables: json(&r.variables),
        };
        self.record(&mut st, call);
        Ok(Response::new(pb::PublishMessageResponse { key, tenant_id: "<default>".into() }))
    }

    async fn resolve_incident(
        &self,
        request: Request<pb::ResolveIncidentRequest>,
    ) -> Result<Response<pb::ResolveIncidentResponse>, Status> {
        self.admit("ResolveIncident", &request)?;
        let key = request.into_inner().incident_key;
        let mut st = self.lock();
        self.record(&mut st, Call::ResolveIncident { key });
        Ok(Response::new(pb::ResolveIncidentResponse {}))
    }

    async fn set_variables(
        &self,
        request: Request<pb::SetVariablesRequest>,
    ) -> Result<Response<pb::SetVariablesResponse>, Status> {
        self.admit("SetVariables", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        let key = st.next_key;
        st.next_key += 1;
        let call = Call::SetVariables { key: r.element_instance_key, variables: json(&r.variables), local: r.local };
        self.record(&mut st, call);
        Ok(Response::new(pb::SetVariablesResponse { key }))
    }

    async fn topology(&self, request: Request<pb::TopologyRequest>) -> Result<Response<pb::TopologyResponse>, Status> {
        self.admit("Topology", &request)?;
        let mut st = self.lock();
        self.record(&mut st, Call::Topology);
        Ok(Response::new(pb::TopologyResponse {
            brokers: vec![pb::BrokerInfo {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: 26501,
                partitions: vec![pb::Partition { partition_id: 1, role: 0, health: 0 }],
                version: "fake".into(),
            }],
            cluster_size: 1,
            partitions_count: 1,
            replication_factor: 1,
            gateway_version: "fake".into(),
        }))
    }

    async fn update_job_retries(
        &self,
        request: Request<pb::UpdateJobRetriesRequest>,
    ) -> Result<Response<pb::UpdateJobRetriesResponse>, Status> {
        self.admit("UpdateJobRetries", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        self.record(&mut st, Call::UpdateRetries { key: r.job_key, retries: r.retries });
        Ok(Response::new(pb::UpdateJobRetriesResponse {}))
    }

    async fn update_job_timeout(
        &self,
        request: Request<pb::UpdateJobTimeoutRequest>,
    ) -> Result<Response<pb::UpdateJobTimeoutResponse>, Status> {
        self.admit("UpdateJobTimeout", &request)?;
        let r = request.into_inner();
        let mut st = self.lock();
        self.record(&mut st, Call::UpdateTimeout { key: r.job_key, timeout_ms: r.timeout });
        Ok(Response::new(pb::UpdateJobTimeoutResponse {}))
    }
}
