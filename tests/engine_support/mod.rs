//! Helpers shared by the rehearsal engine tests (`#[path]`-included by tests/engine_*.rs).
#![allow(dead_code)]
use c8dr::gateway_protocol as pb;
use c8dr::gateway_protocol::gateway_client::GatewayClient;
use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::engine::{Engine, EngineHandle, EngineOptions, InstanceState};
use serde_json::Value;
use std::time::Duration;
use tonic::transport::Channel;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn definitions(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://c8dr">
{body}
</bpmn:definitions>"#
    )
}

pub fn task(id: &str, job_type: &str, extra: &str) -> String {
    format!(
        r#"<bpmn:serviceTask id="{id}"><bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" retries="3"/>{extra}</bpmn:extensionElements></bpmn:serviceTask>"#
    )
}

pub fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"/>"#)
}

pub async fn start(speed: f64) -> (EngineHandle, GatewayClient<Channel>) {
    let engine = Engine::start(EngineOptions { clock: Clock::with_speed(speed), ..Default::default() }).await.unwrap();
    let client = GatewayClient::connect(engine.grpc_url()).await.unwrap();
    (engine, client)
}

pub async fn deploy(client: &mut GatewayClient<Channel>, name: &str, xml: &str) -> pb::DeployResourceResponse {
    client
        .deploy_resource(pb::DeployResourceRequest {
            resources: vec![pb::Resource { name: name.into(), content: xml.as_bytes().to_vec() }],
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn create(client: &mut GatewayClient<Channel>, id: &str, vars: Value) -> i64 {
    client
        .create_process_instance(pb::CreateProcessInstanceRequest {
            bpmn_process_id: id.into(),
            version: -1,
            variables: vars.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .process_instance_key
}

pub async fn activate(
    client: &mut GatewayClient<Channel>,
    job_type: &str,
    max: i32,
    request_timeout: i64,
) -> Vec<pb::ActivatedJob> {
    let mut stream = client
        .activate_jobs(pb::ActivateJobsRequest {
            r#type: job_type.into(),
            worker: "test".into(),
            timeout: 60_000,
            max_jobs_to_activate: max,
            request_timeout,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut jobs = Vec::new();
    while let Some(r) = stream.message().await.unwrap() {
        jobs.extend(r.jobs);
    }
    jobs
}

pub async fn activate_one(client: &mut GatewayClient<Channel>, job_type: &str) -> pb::ActivatedJob {
    let jobs = activate(client, job_type, 1, 5_000).await;
    assert_eq!(jobs.len(), 1, "expected one job of type {job_type}");
    jobs.into_iter().next().unwrap()
}

pub async fn complete(client: &mut GatewayClient<Channel>, key: i64, vars: Value) {
    client
        .complete_job(pb::CompleteJobRequest { job_key: key, variables: vars.to_string(), result: None })
        .await
        .unwrap();
}

pub async fn wait_state(engine: &EngineHandle, pi: i64, state: InstanceState) {
    let got = engine.wait_for(WAIT, |h| (h.instance_state(pi) == Some(state)).then_some(())).await;
    assert!(got.is_some(), "instance {pi} did not reach {state:?}: {:?}", engine.instance_state(pi));
}

pub fn vars_of(job: &pb::ActivatedJob) -> Value {
    serde_json::from_str(&job.variables).unwrap()
}

pub fn one_task_process(id: &str, job_type: &str) -> String {
    definitions(&format!(
        r#"<bpmn:process id="{id}" isExecutable="true"><bpmn:startEvent id="s"/>{t}<bpmn:endEvent id="e"/>{f1}{f2}</bpmn:process>"#,
        t = task("t", job_type, ""),
        f1 = flow("f1", "s", "t"),
        f2 = flow("f2", "t", "e"),
    ))
}
