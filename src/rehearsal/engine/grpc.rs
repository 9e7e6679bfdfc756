//! The Zeebe gateway gRPC service of the rehearsal engine.
use super::state::CommandError;
use super::{EngineHandle, parse_variables};
use crate::gateway_protocol as pb;
use crate::gateway_protocol::gateway_server::{Gateway, GatewayServer};
use futures::Stream;
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// The gateway's default long-polling timeout (ms) when a request gives 0.
const DEFAULT_LONG_POLL_MS: i64 = 10_000;
/// The gateway's default request timeout (ms), used by CreateProcessInstanceWithResult when the
/// request gives none.
const DEFAULT_REQUEST_TIMEOUT_MS: i64 = 15_000;

pub(super) async fn serve(h: EngineHandle, listener: tokio::net::TcpListener) {
    let mut shutdown = h.shutdown_signal();
    // Zeebe's gateway takes gzip-compressed requests (the official Node SDK always sends gzip)
    // as well as uncompressed ones (c8dr's own client); answers stay uncompressed.
    let svc = GatewayServer::new(GatewayService { h: h.clone() }).accept_compressed(CompressionEncoding::Gzip);
    // No Nagle: small gRPC frames (a pushed job, a CompleteJob answer) would otherwise wait for
    // the peer's delayed ACK, about 40 ms per round trip on loopback.
    let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    let res = tonic::transport::Server::builder()
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "rehearsal engine gRPC server stopped");
    }
}

struct GatewayService {
    h: EngineHandle,
}

fn status(e: CommandError) -> Status {
    match e {
        CommandError::NotFound(m) => Status::not_found(m),
        CommandError::FailedPrecondition(m) => Status::failed_precondition(m),
        CommandError::InvalidArgument(m) => Status::invalid_argument(m),
        CommandError::AlreadyExists(m) => Status::already_exists(m),
    }
}

fn vars(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, Status> {
    parse_variables(text).map_err(status)
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl GatewayService {
    /// Validates and runs a CreateProcessInstance command.
    fn create(&self, r: pb::CreateProcessInstanceRequest) -> Result<(super::state::DeployedProcess, i64), Status> {
        if r.process_definition_key <= 0 && r.bpmn_process_id.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Expected either a bpmnProcessId or a processDefinitionKey, but none given",
            ));
        }
        if !r.start_instructions.is_empty() || !r.runtime_instructions.is_empty() {
            return Err(Status::invalid_argument(
                "start and runtime instructions are not supported by the rehearsal engine",
            ));
        }
        let v = vars(&r.variables)?;
        self.h.with(|s| s.create_instance(r.process_definition_key, &r.bpmn_process_id, r.version, v)).map_err(status)
    }

    /// A real job timeout (ms) as a simulated one.
    fn sim_ms(&self, real_ms: i64) -> i64 {
        (real_ms as f64 * self.h.clock().speed()).round() as i64
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    type ActivateJobsStream = BoxStream<pb::ActivateJobsResponse>;
    type StreamActivatedJobsStream = BoxStream<pb::ActivatedJob>;

    async fn activate_jobs(
        &self,
        request: Request<pb::ActivateJobsRequest>,
    ) -> Result<Response<Self::ActivateJobsStream>, Status> {
        let r = request.into_inner();
        if r.r#type.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Expected to activate jobs with a non-empty type, but type was blank",
            ));
        }
        if r.worker.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Expected to activate jobs with a non-empty worker name, but worker was blank",
            ));
        }
        if r.timeout < 1 {
            return Err(Status::invalid_argument(format!(
                "Expected to activate jobs with a timeout of at least 1 ms, but timeout was '{}'",
                r.timeout
            )));
        }
        if r.max_jobs_to_activate < 1 {
            return Err(Status::invalid_argument(format!(
                "Expected to activate at least 1 job, but maxJobsToActivate was '{}'",
                r.max_jobs_to_activate
            )));
        }
        let timeout = self.sim_ms(r.timeout);
        let poll_ms = match r.request_timeout {
            0 => DEFAULT_LONG_POLL_MS,
            t if t < 0 => 0,
            t => t,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(poll_ms as u64);
        let mut changes = self.h.changes();
        let mut shutdown = self.h.shutdown_signal();
        let jobs = loop {
            changes.borrow_and_update();
            let jobs = self.h.with(|s| {
                s.activate_jobs(&r.r#type, &r.worker, timeout, r.max_jobs_to_activate as usize, &r.fetch_variable)
            });
            if !jobs.is_empty() || tokio::time::Instant::now() >= deadline {
                break jobs;
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = shutdown.wait_for(|s| *s) => break Vec::new(),
            }
        };
        let items: Vec<Result<pb::ActivateJobsResponse, Status>> =
            if jobs.is_empty() { vec![] } else { vec![Ok(pb::ActivateJobsResponse { jobs })] };
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }

    async fn stream_activated_jobs(
        &self,
        request: Request<pb::StreamActivatedJobsRequest>,
    ) -> Result<Response<Self::StreamActivatedJobsStream>, Status> {
        let r = request.into_inner();
        if r.r#type.trim().is_empty() {
            return Err(Status::invalid_argument("Expected to stream jobs with a non-empty type, but type was blank"));
        }
        if r.worker.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Expected to stream jobs with a non-empty worker name, but worker was blank",
            ));
        }
        if r.timeout < 1 {
            return Err(Status::invalid_argument(format!(
                "Expected to stream jobs with a timeout of at least 1 ms, but timeout was '{}'",
                r.timeout
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let id = self.h.next_stream_id();
        let timeout = self.sim_ms(r.timeout);
        self.h.with(|s| {
            s.streams.push(super::state::JobStream {
                id,
                job_type: r.r#type.clone(),
                worker: r.worker.clone(),
                timeout,
                fetch: r.fetch_variable.clone(),
                tx,
            })
        });
        tracing::debug!(stream = id, job_type = %r.r#type, worker = %r.worker, "job stream opened");
        let guard = StreamGuard { h: self.h.clone(), id };
        let stream = UnboundedReceiverStream::new(rx);
        let stream = futures::StreamExt::map(stream, move |item| {
            let _keep = &guard;
            item
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_process_instance(
        &self,
        request: Request<pb::CancelProcessInstanceRequest>,
    ) -> Result<Response<pb::CancelProcessInstanceResponse>, Status> {
        let key = request.into_inner().process_instance_key;
        self.h.with(|s| s.cancel_instance(key)).map_err(status)?;
        Ok(Response::new(pb::CancelProcessInstanceResponse {}))
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::CompleteJobResponse>, Status> {
        let r = request.into_inner();
        let v = vars(&r.variables)?;
        let result = r.result.as_ref().map(|res| super::state::user_tasks::ListenerResult {
            denied: res.denied.unwrap_or(false),
            denied_reason: res.denied_reason.clone().unwrap_or_default(),
            corrected_assignee: res.corrections.as_ref().and_then(|c| c.assignee.clone()),
            corrected_priority: res.corrections.as_ref().and_then(|c| c.priority),
        });
        self.h.with(|s| s.complete_job_with_result(r.job_key, v, result)).map_err(status)?;
        Ok(Response::new(pb::CompleteJobResponse {}))
    }

    async fn create_process_instance(
        &self,
        request: Request<pb::CreateProcessInstanceRequest>,
    ) -> Result<Response<pb::CreateProcessInstanceResponse>, Status> {
        let (def, pi) = self.create(request.into_inner())?;
        Ok(Response::new(pb::CreateProcessInstanceResponse {
            process_definition_key: def.key,
            bpmn_process_id: def.bpmn_process_id,
            version: def.version,
            process_instance_key: pi,
            tenant_id: "<default>".into(),
        }))
    }

    async fn create_process_instance_with_result(
        &self,
        request: Request<pb::CreateProcessInstanceWithResultRequest>,
    ) -> Result<Response<pb::CreateProcessInstanceWithResultResponse>, Status> {
        let r = request.into_inner();
        let Some(create) = r.request else {
            return Err(Status::invalid_argument(
                "Expected a CreateProcessInstanceRequest in 'request', but none given",
            ));
        };
        let wait_ms = if r.request_timeout > 0 { r.request_timeout } else { DEFAULT_REQUEST_TIMEOUT_MS };
        let (def, pi) = self.create(create)?;
        let mut shutdown = self.h.shutdown_signal();
        let ended = tokio::select! {
            ended = self.h.wait_for(Duration::from_millis(wait_ms as u64), |h| {
                h.instance_state(pi).filter(|s| *s != super::InstanceState::Active)
            }) => ended,
            _ = shutdown.wait_for(|s| *s) => return Err(Status::unavailable("the rehearsal engine is shutting down")),
        };
        match ended {
            Some(super::InstanceState::Completed) => {}
            Some(_) => {
                return Err(Status::aborted(format!(
                    "Expected to receive the result of process instance '{pi}', but it was terminated"
                )));
            }
            None => {
                return Err(Status::deadline_exceeded(format!(
                    "Time out between gateway and broker: the process instance '{pi}' did not complete within {wait_ms} ms"
                )));
            }
        }
        let mut variables = self.h.variables(pi);
        if !r.fetch_variables.is_empty() {
            variables.retain(|k, _| r.fetch_variables.contains(k));
        }
        Ok(Response::new(pb::CreateProcessInstanceWithResultResponse {
            process_definition_key: def.key,
            bpmn_process_id: def.bpmn_process_id,
            version: def.version,
            process_instance_key: pi,
            variables: serde_json::Value::Object(variables).to_string(),
            tenant_id: "<default>".into(),
        }))
    }

    async fn deploy_resource(
        &self,
        request: Request<pb::DeployResourceRequest>,
    ) -> Result<Response<pb::DeployResourceResponse>, Status> {
        let r = request.into_inner();
        let resources: Vec<(String, Vec<u8>)> = r.resources.into_iter().map(|res| (res.name, res.content)).collect();
        let d = self.h.with(|s| s.deploy(&resources)).map_err(status)?;
        let mut deployments = Vec::new();
        for p in d.processes {
            deployments.push(pb::Deployment {
                metadata: Some(pb::deployment::Metadata::Process(pb::ProcessMetadata {
                    bpmn_process_id: p.bpmn_process_id,
                    version: p.version,
                    process_definition_key: p.key,
                    resource_name: p.resource_name,
                    tenant_id: "<default>".into(),
                })),
            });
        }
        for f in d.forms {
            deployments.push(pb::Deployment {
                metadata: Some(pb::deployment::Metadata::Form(pb::FormMetadata {
                    form_id: f.form_id,
                    version: f.version,
                    form_key: f.key,
                    resource_name: f.resource_name,
                    tenant_id: "<default>".into(),
                })),
            });
        }
        Ok(Response::new(pb::DeployResourceResponse { key: d.key, deployments, tenant_id: "<default>".into() }))
    }

    async fn fail_job(&self, request: Request<pb::FailJobRequest>) -> Result<Response<pb::FailJobResponse>, Status> {
        let r = request.into_inner();
        let v = vars(&r.variables)?;
        self.h.with(|s| s.fail_job(r.job_key, r.retries, &r.error_message, r.retry_back_off, v)).map_err(status)?;
        Ok(Response::new(pb::FailJobResponse {}))
    }

    async fn throw_error(
        &self,
        request: Request<pb::ThrowErrorRequest>,
    ) -> Result<Response<pb::ThrowErrorResponse>, Status> {
        let r = request.into_inner();
        if r.error_code.trim().is_empty() {
            return Err(Status::invalid_argument(
                "Expected to throw an error with a non-empty errorCode, but it was blank",
            ));
        }
        let v = vars(&r.variables)?;
        self.h.with(|s| s.throw_error(r.job_key, &r.error_code, &r.error_message, v)).map_err(status)?;
        Ok(Response::new(pb::ThrowErrorResponse {}))
    }

    async fn publish_message(
        &self,
        request: Request<pb::PublishMessageRequest>,
    ) -> Result<Response<pb::PublishMessageResponse>, Status> {
        let r = request.into_inner();
        let v = vars(&r.variables)?;
        let key = self
            .h
            .with(|s| s.publish_message(&r.name, &r.correlation_key, r.time_to_live, &r.message_id, v))
            .map_err(status)?;
        Ok(Response::new(pb::PublishMessageResponse { key, tenant_id: "<default>".into() }))
    }

    async fn resolve_incident(
        &self,
        request: Request<pb::ResolveIncidentRequest>,
    ) -> Result<Response<pb::ResolveIncidentResponse>, Status> {
        let key = request.into_inner().incident_key;
        self.h.with(|s| s.resolve_incident(key)).map_err(status)?;
        Ok(Response::new(pb::ResolveIncidentResponse {}))
    }

    async fn set_variables(
        &self,
        request: Request<pb::SetVariablesRequest>,
    ) -> Result<Response<pb::SetVariablesResponse>, Status> {
        let r = request.into_inner();
        let v = vars(&r.variables)?;
        let key = self.h.with(|s| s.set_variables(r.element_instance_key, v, r.local)).map_err(status)?;
        Ok(Response::new(pb::SetVariablesResponse { key }))
    }

    async fn topology(&self, _request: Request<pb::TopologyRequest>) -> Result<Response<pb::TopologyResponse>, Status> {
        let addr = self.h.grpc_addr();
        Ok(Response::new(pb::TopologyResponse {
            brokers: vec![pb::BrokerInfo {
                node_id: 0,
                host: addr.ip().to_string(),
                port: addr.port() as i32,
                partitions: vec![pb::Partition {
                    partition_id: 1,
                    role: pb::partition::PartitionBrokerRole::Leader as i32,
                    health: pb::partition::PartitionBrokerHealth::Healthy as i32,
                }],
                version: "8.8.0".into(),
            }],
            cluster_size: 1,
            partitions_count: 1,
            replication_factor: 1,
            gateway_version: "8.8.0".into(),
        }))
    }

    async fn update_job_retries(
        &self,
        request: Request<pb::UpdateJobRetriesRequest>,
    ) -> Result<Response<pb::UpdateJobRetriesResponse>, Status> {
        let r = request.into_inner();
        self.h.with(|s| s.update_job_retries(r.job_key, r.retries)).map_err(status)?;
        Ok(Response::new(pb::UpdateJobRetriesResponse {}))
    }

    async fn update_job_timeout(
        &self,
        request: Request<pb::UpdateJobTimeoutRequest>,
    ) -> Result<Response<pb::UpdateJobTimeoutResponse>, Status> {
        let r = request.into_inner();
        let timeout = self.sim_ms(r.timeout);
        self.h.with(|s| s.update_job_timeout(r.job_key, timeout)).map_err(status)?;
        Ok(Response::new(pb::UpdateJobTimeoutResponse {}))
    }
}

/// Removes a job stream from the engine when the client goes away.
struct StreamGuard {
    h: EngineHandle,
    id: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let id = self.id;
        self.h.with(|s| s.remove_stream(id));
        tracing::debug!(stream = id, "job stream closed");
    }
}
