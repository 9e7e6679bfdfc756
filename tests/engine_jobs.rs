//! Rehearsal engine: service tasks, jobs, errors, timers, gateways, call activities, messages,
//! deployments, driven through the real gRPC gateway protocol.
use c8dr::gateway_protocol as pb;
use c8dr::gateway_protocol::gateway_client::GatewayClient;
use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::engine::{Engine, EngineHandle, EngineOptions, InstanceState};
use serde_json::{Value, json};
use std::time::Duration;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(10);

fn definitions(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://c8dr">
{body}
</bpmn:definitions>"#
    )
}

fn task(id: &str, job_type: &str, extra: &str) -> String {
    format!(
        r#"<bpmn:serviceTask id="{id}"><bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" retries="3"/>{extra}</bpmn:extensionElements></bpmn:serviceTask>"#
    )
}

fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"/>"#)
}

async fn start(speed: f64) -> (EngineHandle, GatewayClient<Channel>) {
    let engine = Engine::start(EngineOptions { clock: Clock::with_speed(speed), ..Default::default() }).await.unwrap();
    let client = GatewayClient::connect(engine.grpc_url()).await.unwrap();
    (engine, client)
}

async fn deploy(client: &mut GatewayClient<Channel>, name: &str, xml: &str) -> pb::DeployResourceResponse {
    client
        .deploy_resource(pb::DeployResourceRequest {
            resources: vec![pb::Resource { name: name.into(), content: xml.as_bytes().to_vec() }],
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn create(client: &mut GatewayClient<Channel>, id: &str, vars: Value) -> i64 {
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

async fn activate(client: &mut GatewayClient<Channel>, job_type: &str, max: i32, request_timeout: i64) -> Vec<pb::ActivatedJob> {
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

async fn activate_one(client: &mut GatewayClient<Channel>, job_type: &str) -> pb::ActivatedJob {
    let jobs = activate(client, job_type, 1, 5_000).await;
    assert_eq!(jobs.len(), 1, "expected one job of type {job_type}");
    jobs.into_iter().next().unwrap()
}

async fn complete(client: &mut GatewayClient<Channel>, key: i64, vars: Value) {
    client.complete_job(pb::CompleteJobRequest { job_key: key, variables: vars.to_string(), result: None }).await.unwrap();
}

async fn wait_state(engine: &EngineHandle, pi: i64, state: InstanceState) {
    let got = engine.wait_for(WAIT, |h| (h.instance_state(pi) == Some(state)).then_some(())).await;
    assert!(got.is_some(), "instance {pi} did not reach {state:?}: {:?}", engine.instance_state(pi));
}

fn vars_of(job: &pb::ActivatedJob) -> Value {
    serde_json::from_str(&job.variables).unwrap()
}

#[tokio::test]
async fn service_task_lifecycle_with_propagation_and_output_mappings() {
    let (engine, mut client) = start(100.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s"/>
  {a}
  {b}
  <bpmn:endEvent id="e"/>
  {f1}{f2}{f3}
</bpmn:process>"#,
        a = task(
            "a",
            "t.a",
            r#"<zeebe:taskHeaders><zeebe:header key="expect" value="degraded"/></zeebe:taskHeaders>
               <zeebe:ioMapping><zeebe:input source="=n + 1" target="local"/></zeebe:ioMapping>"#
        ),
        b = task(
            "b",
            "t.b",
            r#"<zeebe:ioMapping><zeebe:output source="=result * 10" target="scaled"/></zeebe:ioMapping>"#
        ),
        f1 = flow("f1", "s", "a"),
        f2 = flow("f2", "a", "b"),
        f3 = flow("f3", "b", "e"),
    ));
    let d = deploy(&mut client, "p.bpmn", &xml).await;
    assert_eq!(d.deployments.len(), 1);
    let pi = create(&mut client, "p", json!({"n": 1})).await;

    let job = activate_one(&mut client, "t.a").await;
    assert_eq!(job.process_instance_key, pi);
    assert_eq!(job.element_id, "a");
    assert_eq!(job.retries, 3);
    assert_eq!(serde_json::from_str::<Value>(&job.custom_headers).unwrap(), json!({"expect": "degraded"}));
    assert_eq!(vars_of(&job), json!({"n": 1, "local": 2}));
    // completion variables propagate to the root (n exists there; x is created there)
    complete(&mut client, job.key, json!({"n": 5, "x": "y"})).await;

    let job = activate_one(&mut client, "t.b").await;
    assert_eq!(vars_of(&job), json!({"n": 5, "x": "y"}), "input-mapped local variables stay local");
    complete(&mut client, job.key, json!({"result": 4})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    // with output mappings only the mapped variables reach the process scope
    assert_eq!(Value::Object(engine.variables(pi)), json!({"n": 5, "x": "y", "scaled": 40}));

    // the job is gone
    let err = client.complete_job(pb::CompleteJobRequest { job_key: job.key, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let log = engine.event_log();
    assert!(log.iter().any(|e| e.intent == "ELEMENT_COMPLETED" && e.element_id == "p"));
    assert!(log.iter().any(|e| e.value_type == "JOB" && e.intent == "COMPLETED"));
    engine.shutdown();
}
