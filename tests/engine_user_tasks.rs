//! Rehearsal engine: Camunda user tasks through the REST v2 subset and the in-process API.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "engine_support/mod.rs"]
mod support;

use c8dr::gateway_protocol as pb;
use c8dr::rehearsal::engine::InstanceState;
use serde_json::{Value, json};
use support::*;

fn approval_process() -> String {
    definitions(&format!(
        r#"<bpmn:process id="approve" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:userTask id="approveFailover" name="Approve failover">
    <bpmn:extensionElements>
      <zeebe:userTask/>
      <zeebe:formDefinition formId="c8dr-approve-failover"/>
      <zeebe:assignmentDefinition candidateGroups="=approverGroup"/>
      <zeebe:taskSchedule dueDate="=now() + duration(approvalDue)"/>
      <zeebe:priorityDefinition priority="80"/>
    </bpmn:extensionElements>
  </bpmn:userTask>
  <bpmn:exclusiveGateway id="approved" default="rejected"/>
  {t}
  <bpmn:endEvent id="e"/><bpmn:endEvent id="eRejected"/>
  {f1}{f2}
  <bpmn:sequenceFlow id="yes" sourceRef="approved" targetRef="remove"><bpmn:conditionExpression>=decision = "approve"</bpmn:conditionExpression></bpmn:sequenceFlow>
  {f4}{f5}
</bpmn:process>"#,
        t = task("remove", "t.remove", ""),
        f1 = flow("f1", "s", "approveFailover"),
        f2 = flow("f2", "approveFailover", "approved"),
        f4 = flow("rejected", "approved", "eRejected"),
        f5 = flow("f5", "remove", "e"),
    ))
}

const FORM: &str =
    r#"{"id":"c8dr-approve-failover","type":"default","components":[{"key":"decision","type":"radio"}]}"#;

async fn post(url: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

#[tokio::test]
async fn user_task_completed_through_rest() {
    let (engine, mut client) = start(100.0).await;
    engine
        .deploy(vec![
            ("approve.bpmn".into(), approval_process().into_bytes()),
            ("approve.form".into(), FORM.as_bytes().to_vec()),
        ])
        .unwrap();
    let pi = create(
        &mut client,
        "approve",
        json!({"approverGroup": "dr-operators", "approvalDue": "PT1H", "plan": {"n": 1}}),
    )
    .await;
    let rest = engine.rest_url();

    let (status, page) = post(
        &format!("{rest}/v2/user-tasks/search"),
        json!({"filter": {"state": "CREATED", "processInstanceKey": pi.to_string()}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["page"]["totalItems"], 1);
    let item = &page["items"][0];
    assert_eq!(item["elementId"], "approveFailover");
    assert_eq!(item["name"], "Approve failover");
    assert_eq!(item["processDefinitionId"], "approve");
    assert_eq!(item["processInstanceKey"], pi.to_string());
    assert_eq!(item["candidateGroups"], json!(["dr-operators"]));
    assert_eq!(item["priority"], 80);
    assert!(item["dueDate"].as_str().unwrap().starts_with("20"), "{item}");
    assert!(item["formKey"].is_string());
    let key = item["userTaskKey"].as_str().unwrap().to_string();
    // filters that exclude
    let (_, none) = post(&format!("{rest}/v2/user-tasks/search"), json!({"filter": {"elementId": "other"}})).await;
    assert_eq!(none["page"]["totalItems"], 0);
    let (_, by_group) =
        post(&format!("{rest}/v2/user-tasks/search"), json!({"filter": {"candidateGroup": "dr-operators"}})).await;
    assert_eq!(by_group["page"]["totalItems"], 1);

    let form: Value = reqwest::get(format!("{rest}/v2/user-tasks/{key}/form")).await.unwrap().json().await.unwrap();
    assert_eq!(form["formId"], "c8dr-approve-failover");
    assert!(form["schema"].as_str().unwrap().contains("decision"));

    let (status, _) = post(&format!("{rest}/v2/user-tasks/{key}/assignment"), json!({"assignee": "alice"})).await;
    assert_eq!(status, 204);
    let tasks = engine.open_user_tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].assignee.as_deref(), Some("alice"));
    assert_eq!(tasks[0].form_id.as_deref(), Some("c8dr-approve-failover"));
    assert_eq!(tasks[0].variables["plan"], json!({"n": 1}));

    let (status, _) = post(
        &format!("{rest}/v2/user-tasks/{key}/completion"),
        json!({"variables": {"decision": "approve", "comment": "go"}}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, problem) = post(&format!("{rest}/v2/user-tasks/{key}/completion"), json!({})).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["status"], 404);
    let job = activate_one(&mut client, "t.remove").await;
    assert_eq!(vars_of(&job)["decision"], "approve");
    complete(&mut client, job.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;

    let pi_json: Value = reqwest::get(format!("{rest}/v2/process-instances/{pi}")).await.unwrap().json().await.unwrap();
    assert_eq!(pi_json["state"], "COMPLETED");
    assert_eq!(pi_json["hasIncident"], false);
    let (_, els) = post(
        &format!("{rest}/v2/element-instances/search"),
        json!({"filter": {"processInstanceKey": pi.to_string(), "elementId": "approveFailover"}}),
    )
    .await;
    assert_eq!(els["items"][0]["state"], "COMPLETED");
    assert_eq!(els["items"][0]["type"], "USER_TASK");
    let (_, vars) = post(
        &format!("{rest}/v2/variables/search"),
        json!({"filter": {"processInstanceKey": pi.to_string(), "name": "decision"}}),
    )
    .await;
    assert_eq!(vars["items"][0]["value"], "\"approve\"");
    let variable_key = vars["items"][0]["variableKey"].as_str().unwrap();
    assert!(variable_key.parse::<i64>().is_ok_and(|k| k > 0), "{variable_key}");
    let (_, done) = post(&format!("{rest}/v2/user-tasks/search"), json!({"filter": {"state": "COMPLETED"}})).await;
    assert_eq!(done["page"]["totalItems"], 1);
    let missing = reqwest::get(format!("{rest}/v2/process-instances/42")).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    engine.shutdown();
}

#[tokio::test]
async fn user_task_in_process_api_and_missing_form_incident() {
    let (engine, mut client) = start(100.0).await;
    engine.deploy(vec![("approve.bpmn".into(), approval_process().into_bytes())]).unwrap();
    let pi = engine
        .create_instance(
            "approve",
            json!({"approverGroup": "ops", "approvalDue": "PT1H"}).as_object().cloned().unwrap(),
        )
        .unwrap();
    // the linked form is not deployed: incident, as Zeebe raises
    let inc = engine.incidents().into_iter().find(|i| i.process_instance_key == pi).expect("incident");
    assert_eq!(inc.error_type, "FORM_NOT_FOUND");
    let (_, incidents) = post(
        &format!("{}/v2/incidents/search", engine.rest_url()),
        json!({"filter": {"processInstanceKey": pi.to_string()}}),
    )
    .await;
    assert_eq!(incidents["items"][0]["errorType"], "FORM_NOT_FOUND");
    engine.deploy(vec![("approve.form".into(), FORM.as_bytes().to_vec())]).unwrap();
    engine.resolve_incident(inc.key).unwrap();
    let task = engine.wait_for(WAIT, |h| h.open_user_tasks().into_iter().next()).await.expect("user task");
    assert_eq!(task.candidate_groups, vec!["ops".to_string()]);
    engine.complete_user_task(task.key, json!({"decision": "reject"}).as_object().cloned().unwrap()).unwrap();
    wait_state(&engine, pi, InstanceState::Completed).await;
    assert!(engine.element_instances(pi).iter().any(|e| e.element_id == "eRejected"));
    assert!(activate(&mut client, "t.remove", 1, -1).await.is_empty());
    let log = engine.event_log();
    assert!(log.iter().any(|e| e.value_type == "USER_TASK" && e.intent == "COMPLETED"));
    engine.shutdown();
}

#[tokio::test]
async fn process_instances_messages_and_incidents_through_rest() {
    let (engine, mut client) = start(100.0).await;
    let rest = engine.rest_url();
    engine.deploy(vec![("one.bpmn".into(), one_task_process("one", "t.rest").into_bytes())]).unwrap();
    let (status, created) =
        post(&format!("{rest}/v2/process-instances"), json!({"processDefinitionId": "one", "variables": {"a": 1}}))
            .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["processDefinitionVersion"], 1);
    let pi: i64 = created["processInstanceKey"].as_str().unwrap().parse().unwrap();
    let job = activate_one(&mut client, "t.rest").await;
    assert_eq!(vars_of(&job), json!({"a": 1}));
    client
        .fail_job(c8dr::gateway_protocol::FailJobRequest {
            job_key: job.key,
            retries: 0,
            error_message: "down".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, incidents) = post(
        &format!("{rest}/v2/incidents/search"),
        json!({"filter": {"processInstanceKey": pi.to_string(), "state": "ACTIVE"}}),
    )
    .await;
    assert_eq!(incidents["items"][0]["errorType"], "JOB_NO_RETRIES");
    let pi_json: Value = reqwest::get(format!("{rest}/v2/process-instances/{pi}")).await.unwrap().json().await.unwrap();
    assert_eq!(pi_json["hasIncident"], true);
    let incident = incidents["items"][0]["incidentKey"].as_str().unwrap().to_string();
    engine.update_job_retries(job.key, 1).unwrap();
    let (status, _) = post(&format!("{rest}/v2/incidents/{incident}/resolution"), json!({})).await;
    assert_eq!(status, 204);
    assert!(!engine.has_incident(pi));
    let (status, _) = post(&format!("{rest}/v2/process-instances/{pi}/cancellation"), json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(engine.instance_state(pi), Some(InstanceState::Terminated));
    let (status, _) = post(&format!("{rest}/v2/process-instances/{pi}/cancellation"), json!({})).await;
    assert_eq!(status, 404);
    let (status, published) = post(
        &format!("{rest}/v2/messages/publication"),
        json!({"name": "nobody-listens", "correlationKey": "k", "timeToLive": 3_600_000, "messageId": "m1"}),
    )
    .await;
    assert_eq!(status, 200, "{published}");
    assert!(published["messageKey"].is_string());
    let (status, _) = post(
        &format!("{rest}/v2/messages/publication"),
        json!({"name": "nobody-listens", "correlationKey": "k", "timeToLive": 3_600_000, "messageId": "m1"}),
    )
    .await;
    assert_eq!(status, 409);
    engine.shutdown();
}

fn guarded_process(event: &str) -> String {
    approval_process().replace(
        r#"<zeebe:priorityDefinition priority="80"/>"#,
        &format!(
            r#"<zeebe:priorityDefinition priority="80"/><zeebe:taskListeners><zeebe:taskListener eventType="{event}" type="t.guard" retries="2"/></zeebe:taskListeners>"#
        ),
    )
}

/// Camunda 8.8 completing task listeners: the REST completion is held until the listener job
/// completes; a denial rejects it (409 with the reason), the task stays CREATED with its
/// assignee and the completion's variables are not applied; an accepted completion goes through.
#[tokio::test]
async fn completing_listener_holds_and_can_deny_the_completion() {
    let (engine, mut client) = start(100.0).await;
    engine
        .deploy(vec![
            ("approve.bpmn".into(), guarded_process("completing").into_bytes()),
            ("approve.form".into(), FORM.as_bytes().to_vec()),
        ])
        .unwrap();
    let pi = create(&mut client, "approve", json!({"approverGroup": "ops", "approvalDue": "PT1H"})).await;
    let task = engine.wait_for(WAIT, |h| h.open_user_tasks().into_iter().next()).await.expect("user task");
    engine.assign_user_task(task.key, "alice").unwrap();
    let rest = engine.rest_url();
    let url = format!("{rest}/v2/user-tasks/{}/completion", task.key);
    let held = tokio::spawn({
        let url = url.clone();
        async move { post(&url, json!({"variables": {"decision": "approve", "comment": "mine"}})).await }
    });
    let job = activate_one(&mut client, "t.guard").await;
    assert_eq!(job.kind, 2, "TASK_LISTENER");
    assert_eq!(job.listener_event_type, 2, "COMPLETING");
    assert_eq!(job.retries, 2);
    let ut = job.user_task.clone().expect("userTask properties");
    assert_eq!(ut.assignee.as_deref(), Some("alice"));
    assert_eq!(ut.action.as_deref(), Some("complete"));
    assert_eq!(ut.user_task_key, Some(task.key));
    let headers: Value = serde_json::from_str(&job.custom_headers).unwrap();
    assert_eq!(headers["io.camunda.zeebe:assignee"], "alice");
    assert_eq!(vars_of(&job)["decision"], "approve", "the listener sees the completion's variables");
    // while held: COMPLETING, and a second completion is rejected
    let (_, page) = post(&format!("{rest}/v2/user-tasks/search"), json!({"filter": {"state": "COMPLETING"}})).await;
    assert_eq!(page["page"]["totalItems"], 1);
    assert!(!held.is_finished());
    // a listener job cannot complete with variables
    let err = client
        .complete_job(pb::CompleteJobRequest { job_key: job.key, variables: r#"{"x":1}"#.into(), result: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    client
        .complete_job(pb::CompleteJobRequest {
            job_key: job.key,
            variables: String::new(),
            result: Some(pb::JobResult {
                denied: Some(true),
                denied_reason: Some("four-eyes: alice started this process".into()),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (status, problem) = held.await.unwrap();
    assert_eq!(status, 409, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("was denied by Task Listener"), "{detail}");
    assert!(detail.contains("four-eyes: alice started this process"), "{detail}");
    let open = engine.open_user_tasks();
    assert_eq!(open.len(), 1, "the task stays open");
    assert_eq!(open[0].assignee.as_deref(), Some("alice"), "with its assignee");
    assert!(!engine.variables(pi).contains_key("decision"), "the denied completion's variables are not applied");
    assert_eq!(engine.instance_state(pi), Some(InstanceState::Active));

    // another approver: the listener accepts, the task completes with its variables
    engine.assign_user_task(task.key, "bob").unwrap();
    let held =
        tokio::spawn(async move { post(&url, json!({"variables": {"decision": "approve", "comment": "ok"}})).await });
    let job = activate_one(&mut client, "t.guard").await;
    assert_eq!(job.user_task.as_ref().and_then(|u| u.assignee.as_deref()), Some("bob"));
    client
        .complete_job(pb::CompleteJobRequest {
            job_key: job.key,
            variables: String::new(),
            result: Some(pb::JobResult { denied: Some(false), ..Default::default() }),
        })
        .await
        .unwrap();
    let (status, body) = held.await.unwrap();
    assert_eq!(status, 204, "{body}");
    let next = activate_one(&mut client, "t.remove").await;
    assert_eq!(vars_of(&next)["decision"], "approve");
    assert!(engine.event_log().iter().any(|e| e.intent == "COMPLETION_DENIED"));
    engine.shutdown();
}

#[tokio::test]
async fn task_listeners_other_than_completing_are_refused_at_deployment() {
    let (engine, _client) = start(100.0).await;
    let err = engine.deploy(vec![("approve.bpmn".into(), guarded_process("assigning").into_bytes())]).unwrap_err();
    assert!(err.to_string().contains("'assigning' task listener"), "{err}");
    let err = engine.deploy(vec![("approve.bpmn".into(), guarded_process("finishing").into_bytes())]).unwrap_err();
    assert!(err.to_string().contains("eventType 'finishing'"), "{err}");
    engine.shutdown();
}
