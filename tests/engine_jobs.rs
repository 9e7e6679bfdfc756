//! Rehearsal engine: service tasks, jobs, errors, timers, gateways, call activities, messages,
//! deployments, driven through the real gRPC gateway protocol.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "engine_support/mod.rs"]
mod support;

use c8dr::gateway_protocol as pb;
use c8dr::rehearsal::engine::InstanceState;
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

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

#[tokio::test]
async fn stream_pushes_new_jobs_but_not_older_ones() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.stream")).await;
    let before = create(&mut client, "one", json!({"which": "before"})).await;
    let mut stream = client
        .stream_activated_jobs(pb::StreamActivatedJobsRequest {
            r#type: "t.stream".into(),
            worker: "streamer".into(),
            timeout: 60_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut c2 = client.clone();
    let after = create(&mut c2, "one", json!({"which": "after"})).await;
    let pushed = tokio::time::timeout(WAIT, stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(pushed.process_instance_key, after);
    assert_eq!(pushed.worker, "streamer");
    assert_eq!(vars_of(&pushed), json!({"which": "after"}));
    // the job that existed before the stream opened is only available by polling
    let polled = activate(&mut c2, "t.stream", 10, -1).await;
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].process_instance_key, before);
    complete(&mut c2, pushed.key, json!({})).await;
    complete(&mut c2, polled[0].key, json!({})).await;
    wait_state(&engine, after, InstanceState::Completed).await;
    wait_state(&engine, before, InstanceState::Completed).await;
    drop(stream);
    engine.shutdown();
}

#[tokio::test]
async fn long_poll_answers_when_a_job_appears_and_respects_max() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.poll")).await;
    // empty after the request timeout
    assert!(activate(&mut client, "t.poll", 5, 50).await.is_empty());
    let mut c2 = client.clone();
    let poll = tokio::spawn(async move { activate(&mut c2, "t.poll", 5, 10_000).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    create(&mut client, "one", json!({})).await;
    let jobs = tokio::time::timeout(WAIT, poll).await.unwrap().unwrap();
    assert_eq!(jobs.len(), 1);
    for _ in 0..3 {
        create(&mut client, "one", json!({})).await;
    }
    assert_eq!(activate(&mut client, "t.poll", 2, -1).await.len(), 2);
    assert_eq!(activate(&mut client, "t.poll", 5, -1).await.len(), 1);
    // invalid requests
    for (t, w, timeout, max) in [("", "w", 1, 1), ("x", " ", 1, 1), ("x", "w", 0, 1), ("x", "w", 1, 0)] {
        let err = client
            .activate_jobs(pb::ActivateJobsRequest {
                r#type: t.into(),
                worker: w.into(),
                timeout,
                max_jobs_to_activate: max,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{t:?} {w:?} {timeout} {max}");
    }
    engine.shutdown();
}

#[tokio::test]
async fn fail_with_retries_then_incident_then_resolve() {
    let (engine, mut client) = start(1000.0).await;
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.fail")).await;
    let pi = create(&mut client, "one", json!({})).await;
    let job = activate_one(&mut client, "t.fail").await;
    // retry with a back-off (simulated 10 s = 10 ms real at speed 1000)
    client
        .fail_job(pb::FailJobRequest {
            job_key: job.key,
            retries: 1,
            error_message: "boom".into(),
            retry_back_off: 10_000,
            variables: String::new(),
        })
        .await
        .unwrap();
    let job = activate_one(&mut client, "t.fail").await;
    assert_eq!(job.retries, 1);
    client
        .fail_job(pb::FailJobRequest {
            job_key: job.key,
            retries: 0,
            error_message: "still broken".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let incident = engine.incidents().into_iter().find(|i| i.process_instance_key == pi).expect("incident");
    assert_eq!(incident.error_type, "JOB_NO_RETRIES");
    assert_eq!(incident.message, "still broken");
    assert!(engine.has_incident(pi));
    // completing a failed job is rejected while the incident is open
    let err = client.complete_job(pb::CompleteJobRequest { job_key: job.key, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(activate(&mut client, "t.fail", 1, -1).await.is_empty());
    client
        .update_job_retries(pb::UpdateJobRetriesRequest { job_key: job.key, retries: 2, operation_reference: None })
        .await
        .unwrap();
    client
        .resolve_incident(pb::ResolveIncidentRequest { incident_key: incident.key, operation_reference: None })
        .await
        .unwrap();
    assert!(!engine.has_incident(pi));
    let job = activate_one(&mut client, "t.fail").await;
    assert_eq!(job.retries, 2);
    complete(&mut client, job.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let err = client
        .resolve_incident(pb::ResolveIncidentRequest { incident_key: incident.key, operation_reference: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let log = engine.event_log();
    let created =
        log.iter().position(|e| e.value_type == "INCIDENT" && e.intent == "CREATED").expect("incident created");
    let tail = engine.event_log_since(created);
    assert_eq!(tail.len(), log.len() - created);
    assert!(tail.iter().any(|e| e.value_type == "INCIDENT" && e.intent == "RESOLVED"));
    assert!(engine.event_log_since(log.len() + 5).is_empty());
    engine.shutdown();
}

#[tokio::test]
async fn job_timeout_makes_the_job_activatable_again() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.timeout")).await;
    let pi = create(&mut client, "one", json!({})).await;
    let mut stream = client
        .activate_jobs(pb::ActivateJobsRequest {
            r#type: "t.timeout".into(),
            worker: "slow".into(),
            timeout: 30,
            max_jobs_to_activate: 1,
            request_timeout: -1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap().jobs.remove(0);
    assert_eq!(first.worker, "slow");
    // after the (real) 30 ms timeout, the job comes back
    let again = activate_one(&mut client, "t.timeout").await;
    assert_eq!(again.key, first.key);
    assert!(engine.event_log().iter().any(|e| e.intent == "TIMED_OUT" && e.key == first.key));
    complete(&mut client, again.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    engine.shutdown();
}

fn error_process() -> String {
    definitions(&format!(
        r#"<bpmn:error id="err1" name="Split" errorCode="SPLIT_BRAIN_RISK"/>
<bpmn:process id="err" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:subProcess id="sub">
    <bpmn:startEvent id="ss"/>
    {t}
    <bpmn:endEvent id="se"/>
    {sf1}{sf2}
  </bpmn:subProcess>
  <bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="err1"/></bpmn:boundaryEvent>
  <bpmn:endEvent id="ok"/>
  {t2}
  <bpmn:endEvent id="handled"/>
  {f1}{f2}{f3}{f4}
</bpmn:process>"#,
        t = task("inner", "t.inner", ""),
        t2 = task("after", "t.after", ""),
        sf1 = flow("sf1", "ss", "inner"),
        sf2 = flow("sf2", "inner", "se"),
        f1 = flow("f1", "s", "sub"),
        f2 = flow("f2", "sub", "ok"),
        f3 = flow("f3", "caught", "after"),
        f4 = flow("f4", "after", "handled"),
    ))
}

#[tokio::test]
async fn throw_error_is_caught_by_a_boundary_on_the_sub_process() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "err.bpmn", &error_process()).await;
    let pi = create(&mut client, "err", json!({})).await;
    let job = activate_one(&mut client, "t.inner").await;
    client
        .throw_error(pb::ThrowErrorRequest {
            job_key: job.key,
            error_code: "SPLIT_BRAIN_RISK".into(),
            error_message: "both regions answer".into(),
            variables: json!({"lastError": {"code": "SPLIT_BRAIN_RISK"}}).to_string(),
        })
        .await
        .unwrap();
    let job = activate_one(&mut client, "t.after").await;
    assert_eq!(vars_of(&job)["lastError"]["code"], "SPLIT_BRAIN_RISK");
    complete(&mut client, job.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let els = engine.element_instances(pi);
    let state_of = |id: &str| els.iter().find(|e| e.element_id == id).map(|e| e.state);
    assert_eq!(state_of("sub"), Some(InstanceState::Terminated));
    assert_eq!(state_of("inner"), Some(InstanceState::Terminated));
    assert_eq!(state_of("handled"), Some(InstanceState::Completed));
    assert_eq!(state_of("ok"), None);

    // an error code nobody catches raises an incident
    let pi2 = create(&mut client, "err", json!({})).await;
    let job = activate_one(&mut client, "t.inner").await;
    client
        .throw_error(pb::ThrowErrorRequest {
            job_key: job.key,
            error_code: "OTHER".into(),
            error_message: "x".into(),
            variables: String::new(),
        })
        .await
        .unwrap();
    let inc = engine.incidents().into_iter().find(|i| i.process_instance_key == pi2).expect("incident");
    assert_eq!(inc.error_type, "UNHANDLED_ERROR_EVENT");
    assert_eq!(inc.element_id, "inner");
    assert_eq!(engine.instance_state(pi2), Some(InstanceState::Active));
    // cancel terminates everything
    client
        .cancel_process_instance(pb::CancelProcessInstanceRequest {
            process_instance_key: pi2,
            operation_reference: None,
        })
        .await
        .unwrap();
    assert_eq!(engine.instance_state(pi2), Some(InstanceState::Terminated));
    assert!(!engine.has_incident(pi2));
    let err = client
        .cancel_process_instance(pb::CancelProcessInstanceRequest {
            process_instance_key: pi2,
            operation_reference: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    engine.shutdown();
}

#[tokio::test]
async fn set_variables_and_topology() {
    let (engine, mut client) = start(100.0).await;
    let topo = client.topology(pb::TopologyRequest {}).await.unwrap().into_inner();
    assert_eq!(topo.brokers.len(), 1);
    assert_eq!(topo.partitions_count, 1);
    deploy(&mut client, "one.bpmn", &one_task_process("one", "t.vars")).await;
    let pi = create(&mut client, "one", json!({"a": 1})).await;
    client
        .set_variables(pb::SetVariablesRequest {
            element_instance_key: pi,
            variables: json!({"b": 2}).to_string(),
            local: false,
            operation_reference: None,
        })
        .await
        .unwrap();
    let job = activate_one(&mut client, "t.vars").await;
    assert_eq!(vars_of(&job), json!({"a": 1, "b": 2}));
    let err = client
        .set_variables(pb::SetVariablesRequest {
            element_instance_key: 42,
            variables: "{}".into(),
            local: false,
            operation_reference: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = client
        .complete_job(pb::CompleteJobRequest { job_key: job.key, variables: "[1]".into(), result: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    engine.shutdown();
}

/// Issue 9.7 relies on Zeebe's SetVariables semantics (call records): from a job's element
/// instance, `local = false` sets a new variable at the process instance (the outermost scope),
/// so the next task's job sees it, also when set again after a first value (updated where it
/// is); `local = true` stays in the task's scope and is gone with it.
#[tokio::test]
async fn set_variables_from_a_job_reach_the_next_task_only_when_propagated() {
    let (engine, mut client) = start(100.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:process id="two" isExecutable="true"><bpmn:startEvent id="s"/>{t1}{t2}<bpmn:endEvent id="e"/>{f1}{f2}{f3}</bpmn:process>"#,
        t1 = task("t1", "t.first", ""),
        t2 = task("t2", "t.second", ""),
        f1 = flow("f1", "s", "t1"),
        f2 = flow("f2", "t1", "t2"),
        f3 = flow("f3", "t2", "e"),
    ));
    deploy(&mut client, "two.bpmn", &xml).await;
    let pi = create(&mut client, "two", json!({"a": 1})).await;
    let first = activate_one(&mut client, "t.first").await;
    for (vars, local) in [
        (json!({"c8drCall_x": {"outcome": null}}), false),
        (json!({"c8drCall_x": {"outcome": "ok"}}), false),
        (json!({"scratch": 1}), true),
    ] {
        client
            .set_variables(pb::SetVariablesRequest {
                element_instance_key: first.element_instance_key,
                variables: vars.to_string(),
                local,
                operation_reference: None,
            })
            .await
            .unwrap();
    }
    complete(&mut client, first.key, json!({})).await;
    let second = activate_one(&mut client, "t.second").await;
    assert_eq!(vars_of(&second), json!({"a": 1, "c8drCall_x": {"outcome": "ok"}}));
    complete(&mut client, second.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    engine.shutdown();
}
