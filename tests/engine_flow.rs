//! Rehearsal engine: timers, gateways, call activities, messages and deployments.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
#[path = "engine_support/mod.rs"]
mod support;

use c8dr::gateway_protocol as pb;
use c8dr::gateway_protocol::gateway_client::GatewayClient;
use c8dr::rehearsal::engine::InstanceState;
use serde_json::json;
use support::*;
use tonic::transport::Channel;

fn boundary_timer(id: &str, attached: &str, duration: &str, interrupting: bool) -> String {
    format!(
        r#"<bpmn:boundaryEvent id="{id}" attachedToRef="{attached}" cancelActivity="{interrupting}"><bpmn:timerEventDefinition><bpmn:timeDuration>{duration}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>"#
    )
}

#[tokio::test]
async fn interrupting_timer_boundary_terminates_the_task() {
    let (engine, mut client) = start(1000.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:process id="tb" isExecutable="true"><bpmn:startEvent id="s"/>{t}{b}{late}<bpmn:endEvent id="e"/><bpmn:endEvent id="e2"/>{f1}{f2}{f3}{f4}</bpmn:process>"#,
        t = task("work", "t.work", ""),
        b = boundary_timer("timeout", "work", "=waitFor", true),
        late = task("late", "t.late", ""),
        f1 = flow("f1", "s", "work"),
        f2 = flow("f2", "work", "e"),
        f3 = flow("f3", "timeout", "late"),
        f4 = flow("f4", "late", "e2"),
    ));
    deploy(&mut client, "tb.bpmn", &xml).await;
    let pi = create(&mut client, "tb", json!({"waitFor": "PT5M"})).await;
    let work = activate_one(&mut client, "t.work").await;
    // 5 simulated minutes (0.3 s real) later the boundary fires
    let late = activate_one(&mut client, "t.late").await;
    let err =
        client.complete_job(pb::CompleteJobRequest { job_key: work.key, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    complete(&mut client, late.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let els = engine.element_instances(pi);
    assert_eq!(els.iter().find(|e| e.element_id == "work").unwrap().state, InstanceState::Terminated);
    assert!(els.iter().any(|e| e.element_id == "e2" && e.state == InstanceState::Completed));
    engine.shutdown();
}

#[tokio::test]
async fn non_interrupting_timer_boundary_keeps_the_task() {
    let (engine, mut client) = start(1000.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:process id="nb" isExecutable="true"><bpmn:startEvent id="s"/>{t}{b}{remind}<bpmn:endEvent id="e"/><bpmn:endEvent id="e2"/>{f1}{f2}{f3}{f4}</bpmn:process>"#,
        t = task("work", "t.work", ""),
        b = boundary_timer("reminder", "work", "PT15M", false),
        remind = task("remind", "t.remind", ""),
        f1 = flow("f1", "s", "work"),
        f2 = flow("f2", "work", "e"),
        f3 = flow("f3", "reminder", "remind"),
        f4 = flow("f4", "remind", "e2"),
    ));
    deploy(&mut client, "nb.bpmn", &xml).await;
    let pi = create(&mut client, "nb", json!({})).await;
    let work = activate_one(&mut client, "t.work").await;
    let remind = activate_one(&mut client, "t.remind").await;
    complete(&mut client, remind.key, json!({"notified": true})).await;
    assert_eq!(engine.instance_state(pi), Some(InstanceState::Active));
    complete(&mut client, work.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    assert_eq!(engine.variables(pi).get("notified"), Some(&json!(true)));
    engine.shutdown();
}

fn verification_loop() -> String {
    definitions(&format!(
        r#"<bpmn:process id="loop" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:subProcess id="wait">
    <bpmn:startEvent id="ws"/>
    {check}
    <bpmn:exclusiveGateway id="done" default="notYet"/>
    <bpmn:intermediateCatchEvent id="interval"><bpmn:timerEventDefinition><bpmn:timeDuration>=verifyInterval</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="we"/>
    {w1}{w2}
    <bpmn:sequenceFlow id="yes" sourceRef="done" targetRef="we"><bpmn:conditionExpression>=verified</bpmn:conditionExpression></bpmn:sequenceFlow>
    {no}{back}
  </bpmn:subProcess>
  {timeout}
  {after}
  <bpmn:endEvent id="e"/>
  <bpmn:endEvent id="timedOut"/>
  {f1}{f2}{f3}{f4}
</bpmn:process>"#,
        check = task(
            "check",
            "t.check",
            r#"<zeebe:ioMapping><zeebe:output source="=verified" target="verified"/></zeebe:ioMapping>"#
        ),
        w1 = flow("w1", "ws", "check"),
        w2 = flow("w2", "check", "done"),
        no = flow("notYet", "done", "interval"),
        back = flow("back", "interval", "check"),
        timeout = boundary_timer("tooLong", "wait", "=verifyTimeout", true),
        after = task("after", "t.after", ""),
        f1 = flow("f1", "s", "wait"),
        f2 = flow("f2", "wait", "after"),
        f3 = flow("f3", "after", "e"),
        f4 = flow("f4", "tooLong", "timedOut"),
    ))
}

#[tokio::test]
async fn timer_catch_loop_until_verified_and_timeout_boundary() {
    let (engine, mut client) = start(1000.0).await;
    deploy(&mut client, "loop.bpmn", &verification_loop()).await;
    let pi = create(&mut client, "loop", json!({"verifyInterval": "PT5S", "verifyTimeout": "PT15M"})).await;
    for _ in 0..2 {
        let job = activate_one(&mut client, "t.check").await;
        complete(&mut client, job.key, json!({"verified": false})).await;
    }
    let job = activate_one(&mut client, "t.check").await;
    complete(&mut client, job.key, json!({"verified": true})).await;
    let after = activate_one(&mut client, "t.after").await;
    complete(&mut client, after.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let checks = engine.element_instances(pi).iter().filter(|e| e.element_id == "check").count();
    assert_eq!(checks, 3, "every attempt is a visible element instance");
    let timers = engine.element_instances(pi).iter().filter(|e| e.element_id == "interval").count();
    assert_eq!(timers, 2);

    // never verified: the interrupting timer on the sub-process ends the loop
    let pi2 = create(&mut client, "loop", json!({"verifyInterval": "PT5S", "verifyTimeout": "PT2M"})).await;
    let mut worker = client.clone();
    let answering = tokio::spawn(async move {
        loop {
            for job in activate(&mut worker, "t.check", 1, 100).await {
                let _ = worker
                    .complete_job(pb::CompleteJobRequest {
                        job_key: job.key,
                        variables: json!({"verified": false}).to_string(),
                        result: None,
                    })
                    .await;
            }
        }
    });
    wait_state(&engine, pi2, InstanceState::Completed).await;
    answering.abort();
    let els = engine.element_instances(pi2);
    assert!(els.iter().any(|e| e.element_id == "timedOut" && e.state == InstanceState::Completed));
    assert!(!els.iter().any(|e| e.element_id == "after"));
    assert!(els.iter().filter(|e| e.element_id == "check").count() >= 1);
    assert_eq!(els.iter().find(|e| e.element_id == "wait").unwrap().state, InstanceState::Terminated);
    engine.shutdown();
}

fn gateway_process() -> String {
    definitions(&format!(
        r#"<bpmn:process id="gw" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:exclusiveGateway id="route" default="toOther"/>
  {a}{other}
  <bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>
  {f1}
  <bpmn:sequenceFlow id="toA" sourceRef="route" targetRef="a"><bpmn:conditionExpression>=decision = "approve" and count(plan.brokersToRemove) &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>
  {f3}{f4}{f5}
</bpmn:process>
<bpmn:process id="strict" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:exclusiveGateway id="route"/>
  <bpmn:endEvent id="e1"/>
  {g1}
  <bpmn:sequenceFlow id="g2" sourceRef="route" targetRef="e1"><bpmn:conditionExpression>=ok = true</bpmn:conditionExpression></bpmn:sequenceFlow>
</bpmn:process>"#,
        a = task("a", "t.a", ""),
        other = task("other", "t.other", ""),
        f1 = flow("f1", "s", "route"),
        f3 = flow("toOther", "route", "other"),
        f4 = flow("f4", "a", "e1"),
        f5 = flow("f5", "other", "e2"),
        g1 = flow("g1", "s", "route"),
    ))
}

#[tokio::test]
async fn exclusive_gateway_conditions_default_flow_and_incident() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "gw.bpmn", &gateway_process()).await;
    let approve = create(&mut client, "gw", json!({"decision": "approve", "plan": {"brokersToRemove": [1, 3]}})).await;
    let job = activate_one(&mut client, "t.a").await;
    assert_eq!(job.process_instance_key, approve);
    let reject = create(&mut client, "gw", json!({"decision": "reject"})).await;
    let job2 = activate_one(&mut client, "t.other").await;
    assert_eq!(job2.process_instance_key, reject);
    complete(&mut client, job.key, json!({})).await;
    complete(&mut client, job2.key, json!({})).await;
    wait_state(&engine, approve, InstanceState::Completed).await;
    wait_state(&engine, reject, InstanceState::Completed).await;

    // no condition holds and no default flow: incident; fixing the variable and resolving continues
    let pi = create(&mut client, "strict", json!({"ok": false})).await;
    let inc = engine.incidents().into_iter().find(|i| i.process_instance_key == pi).expect("incident");
    assert_eq!(inc.error_type, "CONDITION_ERROR");
    assert_eq!(inc.element_id, "route");
    client
        .set_variables(pb::SetVariablesRequest {
            element_instance_key: pi,
            variables: json!({"ok": true}).to_string(),
            local: false,
            operation_reference: None,
        })
        .await
        .unwrap();
    client
        .resolve_incident(pb::ResolveIncidentRequest { incident_key: inc.key, operation_reference: None })
        .await
        .unwrap();
    wait_state(&engine, pi, InstanceState::Completed).await;
    engine.shutdown();
}

#[tokio::test]
async fn parallel_gateway_forks_and_joins() {
    let (engine, mut client) = start(100.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:process id="par" isExecutable="true">
  <bpmn:startEvent id="s"/><bpmn:parallelGateway id="fork"/>{a}{b}<bpmn:parallelGateway id="join"/>{c}<bpmn:endEvent id="e"/>
  {f1}{f2}{f3}{f4}{f5}{f6}{f7}
</bpmn:process>"#,
        a = task("a", "t.a", ""),
        b = task("b", "t.b", ""),
        c = task("c", "t.c", ""),
        f1 = flow("f1", "s", "fork"),
        f2 = flow("f2", "fork", "a"),
        f3 = flow("f3", "fork", "b"),
        f4 = flow("f4", "a", "join"),
        f5 = flow("f5", "b", "join"),
        f6 = flow("f6", "join", "c"),
        f7 = flow("f7", "c", "e"),
    ));
    deploy(&mut client, "par.bpmn", &xml).await;
    let pi = create(&mut client, "par", json!({})).await;
    let a = activate_one(&mut client, "t.a").await;
    let b = activate_one(&mut client, "t.b").await;
    complete(&mut client, a.key, json!({"fromA": 1})).await;
    assert!(activate(&mut client, "t.c", 1, -1).await.is_empty(), "join waits for both branches");
    complete(&mut client, b.key, json!({"fromB": 2})).await;
    let c = activate_one(&mut client, "t.c").await;
    assert_eq!(vars_of(&c), json!({"fromA": 1, "fromB": 2}));
    complete(&mut client, c.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    assert_eq!(engine.element_instances(pi).iter().filter(|e| e.element_id == "join").count(), 1);
    engine.shutdown();
}

fn call_processes() -> String {
    definitions(&format!(
        r#"<bpmn:error id="boom" errorCode="CHANGE_FAILED"/>
<bpmn:process id="parent" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:callActivity id="call">
    <bpmn:extensionElements>
      <zeebe:calledElement processId="=childId" propagateAllChildVariables="true"/>
      <zeebe:ioMapping><zeebe:input source="=target + &quot;-x&quot;" target="childInput"/></zeebe:ioMapping>
    </bpmn:extensionElements>
  </bpmn:callActivity>
  <bpmn:boundaryEvent id="failed" attachedToRef="call"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>
  <bpmn:callActivity id="quiet">
    <bpmn:extensionElements>
      <zeebe:calledElement processId="child" propagateAllChildVariables="false"/>
      <zeebe:ioMapping><zeebe:output source="=childResult" target="quietResult"/></zeebe:ioMapping>
    </bpmn:extensionElements>
  </bpmn:callActivity>
  <bpmn:endEvent id="e"/><bpmn:endEvent id="eFailed"/>
  {f1}{f2}{f3}{f4}
</bpmn:process>
<bpmn:process id="child" isExecutable="true">
  <bpmn:startEvent id="cs"/>{ct}<bpmn:endEvent id="ce"/>{c1}{c2}
</bpmn:process>"#,
        ct = task("childTask", "t.child", ""),
        c1 = flow("c1", "cs", "childTask"),
        c2 = flow("c2", "childTask", "ce"),
        f1 = flow("f1", "s", "call"),
        f2 = flow("f2", "call", "quiet"),
        f3 = flow("f3", "quiet", "e"),
        f4 = flow("f4", "failed", "eFailed"),
    ))
}

#[tokio::test]
async fn call_activity_propagates_variables_both_ways() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "call.bpmn", &call_processes()).await;
    let pi = create(&mut client, "parent", json!({"target": "lab", "childId": "child"})).await;
    let job = activate_one(&mut client, "t.child").await;
    assert_ne!(job.process_instance_key, pi);
    assert_eq!(job.bpmn_process_id, "child");
    assert_eq!(vars_of(&job), json!({"target": "lab", "childId": "child", "childInput": "lab-x"}));
    assert_eq!(engine.child_instances(pi), vec![job.process_instance_key]);
    complete(&mut client, job.key, json!({"childResult": "first"})).await;
    // second call activity: only the output mapping comes back
    let job2 = activate_one(&mut client, "t.child").await;
    complete(&mut client, job2.key, json!({"childResult": "second", "noise": 1})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let vars = engine.variables(pi);
    assert_eq!(vars["childResult"], json!("first"));
    assert_eq!(vars["quietResult"], json!("second"));
    assert!(!vars.contains_key("noise"));
    assert_eq!(engine.instance_state(job2.process_instance_key), Some(InstanceState::Completed));

    // an error thrown in the child is caught by the boundary on the call activity
    let pi2 = create(&mut client, "parent", json!({"target": "lab", "childId": "child"})).await;
    let job = activate_one(&mut client, "t.child").await;
    client
        .throw_error(pb::ThrowErrorRequest {
            job_key: job.key,
            error_code: "CHANGE_FAILED".into(),
            error_message: "x".into(),
            variables: String::new(),
        })
        .await
        .unwrap();
    wait_state(&engine, pi2, InstanceState::Completed).await;
    assert_eq!(engine.instance_state(job.process_instance_key), Some(InstanceState::Terminated));
    assert!(engine.element_instances(pi2).iter().any(|e| e.element_id == "eFailed"));

    // unknown called process: incident
    let pi3 = create(&mut client, "parent", json!({"target": "lab", "childId": "nope"})).await;
    let inc = engine.incidents().into_iter().find(|i| i.process_instance_key == pi3).expect("incident");
    assert_eq!(inc.error_type, "CALLED_ELEMENT_ERROR");
    engine.shutdown();
}

fn message_process() -> String {
    definitions(&format!(
        r#"<bpmn:message id="m" name="c8dr-drill"/>
<bpmn:process id="drill" isExecutable="true">
  <bpmn:startEvent id="ms"><bpmn:messageEventDefinition messageRef="m"/></bpmn:startEvent>
  {t}<bpmn:endEvent id="e"/>{f1}{f2}
</bpmn:process>"#,
        t = task("guard", "t.guard", ""),
        f1 = flow("f1", "ms", "guard"),
        f2 = flow("f2", "guard", "e"),
    ))
}

#[tokio::test]
async fn message_start_event_dedup_and_buffering() {
    let (engine, mut client) = start(100.0).await;
    let publish = |id: &str, ttl: i64| pb::PublishMessageRequest {
        name: "c8dr-drill".into(),
        correlation_key: "lab".into(),
        time_to_live: ttl,
        message_id: id.into(),
        variables: json!({"target": "lab"}).to_string(),
        tenant_id: String::new(),
    };
    // buffered before the process exists, correlated at deployment
    client.publish_message(publish("early", 3_600_000)).await.unwrap();
    deploy(&mut client, "drill.bpmn", &message_process()).await;
    let job = activate_one(&mut client, "t.guard").await;
    assert_eq!(vars_of(&job), json!({"target": "lab"}));
    complete(&mut client, job.key, json!({})).await;

    client.publish_message(publish("run-1", 60_000)).await.unwrap();
    let err = client.publish_message(publish("run-1", 60_000)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let job = activate_one(&mut client, "t.guard").await;
    // one active instance per correlation key: run-2 waits (buffered) until run-1 ends
    client.publish_message(publish("run-2", 60_000)).await.unwrap();
    assert_eq!(engine.process_instances("drill").len(), 2);
    complete(&mut client, job.key, json!({})).await;
    wait_state(&engine, job.process_instance_key, InstanceState::Completed).await;
    let job2 = activate_one(&mut client, "t.guard").await;
    assert_ne!(job2.process_instance_key, job.process_instance_key);
    assert_eq!(engine.process_instances("drill").len(), 3);
    complete(&mut client, job2.key, json!({})).await;
    assert!(activate(&mut client, "t.guard", 5, -1).await.is_empty(), "a duplicate starts nothing");
    wait_state(&engine, job2.process_instance_key, InstanceState::Completed).await;

    // no none start event
    let err = client
        .create_process_instance(pb::CreateProcessInstanceRequest {
            bpmn_process_id: "drill".into(),
            version: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let err = client
        .create_process_instance(pb::CreateProcessInstanceRequest {
            bpmn_process_id: "unknown".into(),
            version: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    engine.shutdown();
}

#[tokio::test]
async fn deployment_rejects_unsupported_elements_atomically_and_versions() {
    let (engine, mut client) = start(100.0).await;
    let bad = definitions(
        r#"<bpmn:process id="bad" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:scriptTask id="doScript"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="doScript"/></bpmn:process>"#,
    );
    let good = one_task_process("good", "t.good");
    let err = client
        .deploy_resource(pb::DeployResourceRequest {
            resources: vec![
                pb::Resource { name: "good.bpmn".into(), content: good.clone().into_bytes() },
                pb::Resource { name: "bad.bpmn".into(), content: bad.into_bytes() },
            ],
            tenant_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    for needle in ["bad.bpmn", "doScript", "scriptTask"] {
        assert!(err.message().contains(needle), "message {:?} names {needle}", err.message());
    }
    let err = client
        .create_process_instance(pb::CreateProcessInstanceRequest {
            bpmn_process_id: "good".into(),
            version: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "nothing of a rejected deployment is deployed");

    let listener = definitions(&format!(
        r#"<bpmn:process id="l" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:serviceTask id="t"><bpmn:extensionElements><zeebe:taskDefinition type="x"/><zeebe:executionListeners><zeebe:executionListener eventType="start" type="y"/></zeebe:executionListeners></bpmn:extensionElements></bpmn:serviceTask>{f}</bpmn:process>"#,
        f = flow("f", "s", "t")
    ));
    let multi = definitions(
        r#"<bpmn:process id="mi" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:serviceTask id="each"><bpmn:extensionElements><zeebe:taskDefinition type="x"/></bpmn:extensionElements><bpmn:multiInstanceLoopCharacteristics/></bpmn:serviceTask></bpmn:process>"#,
    );
    let escalate = definitions(
        r#"<bpmn:process id="ee" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:endEvent id="up"><bpmn:escalationEventDefinition/></bpmn:endEvent></bpmn:process>"#,
    );
    for (name, xml, needle) in [
        ("l.bpmn", listener, "zeebe:executionListeners"),
        ("mi.bpmn", multi, "multiInstanceLoopCharacteristics"),
        ("ee.bpmn", escalate, "escalationEventDefinition"),
    ] {
        let err = engine.deploy(vec![(name.into(), xml.into_bytes())]).unwrap_err().to_string();
        assert!(err.contains(needle) && err.contains(name), "{err}");
    }
    let err = engine.deploy(vec![("notes.txt".into(), b"x".to_vec())]).unwrap_err().to_string();
    assert!(err.contains("unknown resource type"), "{err}");

    // versioning: identical content keeps the version, changed content increments it
    let v1 = deploy(&mut client, "good.bpmn", &good).await;
    let v1b = deploy(&mut client, "good.bpmn", &good).await;
    let v2 = deploy(&mut client, "good.bpmn", &good.replace("t.good", "t.better")).await;
    let version = |d: &pb::DeployResourceResponse| match &d.deployments[0].metadata {
        Some(pb::deployment::Metadata::Process(p)) => (p.version, p.process_definition_key),
        other => panic!("{other:?}"),
    };
    assert_eq!(version(&v1).0, 1);
    assert_eq!(version(&v1b), version(&v1));
    assert_eq!(version(&v2).0, 2);
    // forms deploy as forms
    let form = client
        .deploy_resource(pb::DeployResourceRequest {
            resources: vec![pb::Resource {
                name: "a.form".into(),
                content: br#"{"id":"c8dr-approve-failover","components":[]}"#.to_vec(),
            }],
            tenant_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(&form.deployments[0].metadata, Some(pb::deployment::Metadata::Form(f)) if f.form_id == "c8dr-approve-failover")
    );
    engine.shutdown();
}

#[tokio::test]
async fn feel_in_retries_timer_dates_and_error_code_preference() {
    let (engine, mut client) = start(1000.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:error id="e1" errorCode="CONCURRENT_CHANGE"/>
<bpmn:process id="feel" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:intermediateCatchEvent id="at"><bpmn:timerEventDefinition><bpmn:timeDate>=now() + duration("PT30S")</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
  <bpmn:serviceTask id="work"><bpmn:extensionElements><zeebe:taskDefinition type="=&quot;t.&quot; + kind" retries="=retryCount + 1"/></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:boundaryEvent id="any" attachedToRef="work"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>
  <bpmn:boundaryEvent id="specific" attachedToRef="work"><bpmn:errorEventDefinition errorRef="e1"/></bpmn:boundaryEvent>
  <bpmn:endEvent id="e"/><bpmn:endEvent id="eAny"/><bpmn:endEvent id="eSpecific"/>
  {f1}{f2}{f3}{f4}{f5}
</bpmn:process>"#,
        f1 = flow("f1", "s", "at"),
        f2 = flow("f2", "at", "work"),
        f3 = flow("f3", "work", "e"),
        f4 = flow("f4", "any", "eAny"),
        f5 = flow("f5", "specific", "eSpecific"),
    ));
    deploy(&mut client, "feel.bpmn", &xml).await;
    let pi = create(&mut client, "feel", json!({"kind": "dynamic", "retryCount": 4})).await;
    let job = activate_one(&mut client, "t.dynamic").await;
    assert_eq!(job.retries, 5);
    let log = engine.event_log();
    assert!(log.iter().any(|e| e.value_type == "TIMER" && e.intent == "TRIGGERED" && e.element_id == "at"));
    client
        .throw_error(pb::ThrowErrorRequest {
            job_key: job.key,
            error_code: "CONCURRENT_CHANGE".into(),
            error_message: "409".into(),
            variables: json!({"lastError": {"code": "CONCURRENT_CHANGE"}}).to_string(),
        })
        .await
        .unwrap();
    wait_state(&engine, pi, InstanceState::Completed).await;
    let els = engine.element_instances(pi);
    assert!(els.iter().any(|e| e.element_id == "eSpecific"), "the matching error code wins over the catch-all");
    assert!(!els.iter().any(|e| e.element_id == "eAny"));
    assert_eq!(engine.variables(pi)["lastError"], json!({"code": "CONCURRENT_CHANGE"}));

    // duplicate process ids in one deployment are rejected
    let one = one_task_process("dup", "t.dup");
    let err = engine
        .deploy(vec![("a.bpmn".into(), one.clone().into_bytes()), ("b.bpmn".into(), one.into_bytes())])
        .unwrap_err();
    assert!(err.to_string().contains("Duplicated process id"), "{err}");
    engine.shutdown();
}

#[test]
fn a_loop_without_wait_state_raises_an_incident_instead_of_overflowing() {
    // tokio's worker threads have 2 MiB stacks: run the command on one that small
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (engine, _client) = start(100.0).await;
                let xml = definitions(&format!(
                    r#"<bpmn:process id="spin" isExecutable="true">
  <bpmn:startEvent id="s"/><bpmn:exclusiveGateway id="a"/><bpmn:exclusiveGateway id="b"/>
  {f1}{f2}{f3}
</bpmn:process>"#,
                    f1 = flow("f1", "s", "a"),
                    f2 = flow("f2", "a", "b"),
                    f3 = flow("f3", "b", "a"),
                ));
                engine.deploy(vec![("spin.bpmn".into(), xml.into_bytes())]).unwrap();
                let pi = engine.create_instance("spin", serde_json::Map::new()).unwrap();
                let inc = engine.incidents().into_iter().find(|i| i.process_instance_key == pi).expect("incident");
                assert!(inc.message.contains("without a wait state"), "{}", inc.message);
                engine.cancel_instance(pi).unwrap();
                assert_eq!(engine.instance_state(pi), Some(InstanceState::Terminated));
                engine.shutdown();
            });
        })
        .unwrap();
    handle.join().expect("no stack overflow, no panic");
}

fn error_end_process() -> String {
    definitions(&format!(
        r#"<bpmn:error id="aborted" errorCode="ABORTED"/><bpmn:error id="other" errorCode="OTHER"/>
<bpmn:process id="errEnd" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:subProcess id="step">
    <bpmn:startEvent id="ss"/>
    {work}
    <bpmn:exclusiveGateway id="which" default="toOther"/>
    <bpmn:endEvent id="throwAborted"><bpmn:errorEventDefinition errorRef="aborted"/></bpmn:endEvent>
    <bpmn:endEvent id="throwOther"><bpmn:errorEventDefinition errorRef="other"/></bpmn:endEvent>
    {w1}{w2}
    <bpmn:sequenceFlow id="toAborted" sourceRef="which" targetRef="throwAborted"><bpmn:conditionExpression>=code = "ABORTED"</bpmn:conditionExpression></bpmn:sequenceFlow>
    {w3}
  </bpmn:subProcess>
  <bpmn:boundaryEvent id="catchAll" attachedToRef="step"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>
  <bpmn:boundaryEvent id="catchAborted" attachedToRef="step"><bpmn:errorEventDefinition errorRef="aborted"/></bpmn:boundaryEvent>
  <bpmn:endEvent id="e"/><bpmn:endEvent id="eAll"/><bpmn:endEvent id="eAborted"/>
  {f1}{f2}{f3}{f4}
</bpmn:process>
<bpmn:process id="uncaught" isExecutable="true">
  <bpmn:startEvent id="us"/><bpmn:endEvent id="uThrow"><bpmn:errorEventDefinition errorRef="aborted"/></bpmn:endEvent>
  {u1}
</bpmn:process>"#,
        work = task("work", "t.work", ""),
        w1 = flow("w1", "ss", "work"),
        w2 = flow("w2", "work", "which"),
        w3 = flow("toOther", "which", "throwOther"),
        f1 = flow("f1", "s", "step"),
        f2 = flow("f2", "step", "e"),
        f3 = flow("f3", "catchAll", "eAll"),
        f4 = flow("f4", "catchAborted", "eAborted"),
        u1 = flow("u1", "us", "uThrow"),
    ))
}

#[tokio::test]
async fn error_end_event_throws_to_the_enclosing_scope_boundary_and_uncaught_is_an_incident() {
    let (engine, mut client) = start(100.0).await;
    deploy(&mut client, "err.bpmn", &error_end_process()).await;
    for (code, expected, not) in [("ABORTED", "eAborted", "eAll"), ("OTHER", "eAll", "eAborted")] {
        let pi = create(&mut client, "errEnd", json!({"code": code})).await;
        let job = activate_one(&mut client, "t.work").await;
        complete(&mut client, job.key, json!({})).await;
        wait_state(&engine, pi, InstanceState::Completed).await;
        let els = engine.element_instances(pi);
        assert!(els.iter().any(|e| e.element_id == expected), "{code} is caught by {expected}");
        assert!(!els.iter().any(|e| e.element_id == not || e.element_id == "e"), "{code}: only {expected}");
        let step = els.iter().find(|e| e.element_id == "step").unwrap();
        assert_eq!(step.state, InstanceState::Terminated, "the catching scope is terminated");
    }
    // no catching boundary: an incident on the end event, the instance stays active
    let pi = create(&mut client, "uncaught", json!({})).await;
    let inc = engine.incidents().into_iter().find(|i| i.process_instance_key == pi).expect("incident");
    assert_eq!(inc.error_type, "UNHANDLED_ERROR_EVENT");
    assert_eq!(inc.element_id, "uThrow");
    assert_eq!(engine.instance_state(pi), Some(InstanceState::Active));
    engine.shutdown();
}

#[tokio::test]
async fn terminate_end_event_ends_its_scope_only() {
    let (engine, mut client) = start(100.0).await;
    let xml = definitions(&format!(
        r#"<bpmn:process id="term" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:subProcess id="sub">
    <bpmn:startEvent id="ss"/><bpmn:parallelGateway id="fork"/>{main}{watch}
    <bpmn:endEvent id="done"><bpmn:terminateEventDefinition/></bpmn:endEvent><bpmn:endEvent id="watched"/>
    {w1}{w2}{w3}{w4}{w5}
  </bpmn:subProcess>
  {after}
  <bpmn:parallelGateway id="fork2"/>{left}{right}
  <bpmn:endEvent id="stop"><bpmn:terminateEventDefinition/></bpmn:endEvent><bpmn:endEvent id="e"/>
  {f1}{f2}{f3}{f4}{f5}{f6}{f7}
</bpmn:process>"#,
        main = task("main", "t.main", ""),
        watch = task("watch", "t.watch", ""),
        w1 = flow("w1", "ss", "fork"),
        w2 = flow("w2", "fork", "main"),
        w3 = flow("w3", "fork", "watch"),
        w4 = flow("w4", "main", "done"),
        w5 = flow("w5", "watch", "watched"),
        after = task("after", "t.after", ""),
        left = task("left", "t.left", ""),
        right = task("right", "t.right", ""),
        f1 = flow("f1", "s", "sub"),
        f2 = flow("f2", "sub", "after"),
        f3 = flow("f3", "after", "fork2"),
        f4 = flow("f4", "fork2", "left"),
        f5 = flow("f5", "fork2", "right"),
        f6 = flow("f6", "left", "stop"),
        f7 = flow("f7", "right", "e"),
    ));
    deploy(&mut client, "term.bpmn", &xml).await;
    let pi = create(&mut client, "term", json!({})).await;
    let main = activate_one(&mut client, "t.main").await;
    let watch = activate_one(&mut client, "t.watch").await;
    complete(&mut client, main.key, json!({})).await;
    // the sub-process completed (the watcher was terminated) and the process went on
    let after = activate_one(&mut client, "t.after").await;
    let err =
        client.complete_job(pb::CompleteJobRequest { job_key: watch.key, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "the concurrent job was canceled");
    complete(&mut client, after.key, json!({})).await;
    // at process level: the instance completes, the concurrent branch is terminated
    let left = activate_one(&mut client, "t.left").await;
    let right = activate_one(&mut client, "t.right").await;
    complete(&mut client, left.key, json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let els = engine.element_instances(pi);
    let state = |id: &str| els.iter().find(|e| e.element_id == id).map(|e| e.state);
    assert_eq!(state("sub"), Some(InstanceState::Completed));
    assert_eq!(state("watch"), Some(InstanceState::Terminated));
    assert_eq!(state("right"), Some(InstanceState::Terminated));
    assert_eq!(state("e"), None);
    assert!(client.complete_job(pb::CompleteJobRequest { job_key: right.key, ..Default::default() }).await.is_err());
    engine.shutdown();
}

// ---------------------------------------------------------------------------------------------
// The real processes (bpmn/), driven job by job: what a "no" or a missing answer does.

async fn deploy_real_processes(engine: &c8dr::rehearsal::engine::EngineHandle) {
    engine.deploy_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn"))).unwrap();
}

async fn answer_task(
    engine: &c8dr::rehearsal::engine::EngineHandle,
    client: &mut GatewayClient<Channel>,
    pi: i64,
    form: &str,
    vars: serde_json::Value,
) {
    let task = engine
        .wait_for(WAIT, |h| {
            h.open_user_tasks().into_iter().find(|t| t.process_instance_key == pi && t.form_id.as_deref() == Some(form))
        })
        .await
        .unwrap_or_else(|| panic!("no open {form} task"));
    engine.complete_user_task(task.key, vars.as_object().cloned().unwrap()).unwrap();
    // approval tasks hold the completion for their four-eyes listener: let it through
    for job in activate(client, "c8dr.approval-guard", 1, -1).await {
        assert_eq!(job.kind, 2, "a task listener job");
        client
            .complete_job(pb::CompleteJobRequest {
                job_key: job.key,
                variables: String::new(),
                result: Some(pb::JobResult { denied: Some(false), ..Default::default() }),
            })
            .await
            .unwrap();
    }
}

fn normalized_inputs() -> serde_json::Value {
    json!({
        "target": "prod", "survivingRegion": 0, "autoApprove": false, "approverGroup": "dr-operators",
        "approvalDue": "PT1H", "reminderAfter": "PT15M", "verifyInterval": "PT5S", "changeTimeout": "PT15M",
        "snapshotTimeout": "PT30M", "restoreTimeout": "PT60M", "brokersVisibleTimeout": "PT20M",
        "pausedWindowTimeout": "PT30M", "startedAt": "2026-01-01T00:00:00Z"
    })
}

#[tokio::test]
async fn failback_manual_step_answered_no_aborts_before_the_next_mutation() {
    // real time: no timer of the process fires during the test
    let (engine, mut client) = start(1.0).await;
    deploy_real_processes(&engine).await;
    let pi = create(&mut client, "dr-failback", json!({"target": "prod", "recreatedRegion": 1})).await;
    let job = activate_one(&mut client, "c8dr.validate-input").await;
    let mut inputs = normalized_inputs();
    inputs["recreatedRegion"] = json!(1);
    complete(&mut client, job.key, inputs).await;
    let job = activate_one(&mut client, "c8dr.preflight-recreated").await;
    complete(&mut client, job.key, json!({"preflight": {}})).await;
    answer_task(&engine, &mut client, pi, "c8dr-approve-failback", json!({"decision": "approve", "comment": "go"}))
        .await;
    let helm = activate_one(&mut client, "c8dr.helm").await;
    client
        .throw_error(pb::ThrowErrorRequest {
            job_key: helm.key,
            error_code: "MANUAL_STEP_REQUIRED".into(),
            error_message: "helm mode is manual".into(),
            variables: json!({"manualCommand": "helm install ..."}).to_string(),
        })
        .await
        .unwrap();
    answer_task(
        &engine,
        &mut client,
        pi,
        "c8dr-manual-step",
        json!({"manualStepDone": false, "comment": "helm failed"}),
    )
    .await;
    // the abort path: the report, and nothing else
    let report = activate_one(&mut client, "c8dr.report").await;
    let v = vars_of(&report);
    assert_eq!(v["outcome"], json!("aborted"));
    let reason = v["outcomeReason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("not done") && reason.contains("helm failed"), "{reason}");
    assert!(reason.contains("Helm release") && reason.contains("PVCs"), "the cleanup is listed: {reason}");
    for next in ["c8dr.await-brokers-visible", "c8dr.helm", "c8dr.verify-profiles"] {
        assert!(activate(&mut client, next, 1, -1).await.is_empty(), "{next} must not run after a no");
    }
    complete(&mut client, report.key, json!({"report": {"outcome": "aborted"}})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    engine.shutdown();
}

#[tokio::test]
async fn failover_step_failed_without_a_decision_aborts_and_says_so() {
    let (engine, mut client) = start(1.0).await;
    deploy_real_processes(&engine).await;
    let pi = create(&mut client, "dr-failover", json!({"target": "prod", "lostRegion": 1})).await;
    let job = activate_one(&mut client, "c8dr.validate-input").await;
    let mut inputs = normalized_inputs();
    inputs["lostRegion"] = json!(1);
    complete(&mut client, job.key, inputs).await;
    let assess = activate_one(&mut client, "c8dr.assess-failover").await;
    client
        .throw_error(pb::ThrowErrorRequest {
            job_key: assess.key,
            error_code: "SPLIT_BRAIN_RISK".into(),
            error_message: "lost region answers".into(),
            variables: json!({"lastError": {"code": "SPLIT_BRAIN_RISK"}}).to_string(),
        })
        .await
        .unwrap();
    let notify = activate_one(&mut client, "c8dr.notify").await;
    complete(&mut client, notify.key, json!({"notified": true})).await;
    // the form requires a decision; the process must not rely on it
    answer_task(&engine, &mut client, pi, "c8dr-step-failed", json!({"errorDecision": true})).await;
    let report = activate_one(&mut client, "c8dr.report").await;
    let v = vars_of(&report);
    assert_eq!(v["outcome"], json!("aborted"));
    let reason = v["outcomeReason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("no valid answer") && reason.contains("errorDecision = true"), "{reason}");
    assert!(activate(&mut client, "c8dr.remove-brokers", 1, -1).await.is_empty());
    assert!(activate(&mut client, "c8dr.assess-failover", 1, -1).await.is_empty(), "not retried");
    complete(&mut client, report.key, json!({"report": {"outcome": "aborted"}})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    engine.shutdown();
}

#[tokio::test]
async fn error_end_event_in_a_called_process_is_caught_by_the_call_activity_boundary() {
    let (engine, mut client) = start(100.0).await;
    let xml = definitions(
        r#"<bpmn:error id="aborted" errorCode="ABORTED"/>
<bpmn:process id="caller" isExecutable="true">
  <bpmn:startEvent id="s"/>
  <bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="thrower"/></bpmn:extensionElements></bpmn:callActivity>
  <bpmn:boundaryEvent id="caught" attachedToRef="call"><bpmn:errorEventDefinition errorRef="aborted"/></bpmn:boundaryEvent>
  <bpmn:endEvent id="e"/><bpmn:endEvent id="eCaught"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
  <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e"/>
  <bpmn:sequenceFlow id="f3" sourceRef="caught" targetRef="eCaught"/>
</bpmn:process>
<bpmn:process id="thrower" isExecutable="true">
  <bpmn:startEvent id="ts"/><bpmn:endEvent id="throw"><bpmn:errorEventDefinition errorRef="aborted"/></bpmn:endEvent>
  <bpmn:sequenceFlow id="t1" sourceRef="ts" targetRef="throw"/>
</bpmn:process>"#,
    );
    deploy(&mut client, "call-err.bpmn", &xml).await;
    let pi = create(&mut client, "caller", json!({})).await;
    wait_state(&engine, pi, InstanceState::Completed).await;
    let els = engine.element_instances(pi);
    assert!(els.iter().any(|e| e.element_id == "eCaught"), "caught by the call activity's boundary");
    assert!(!els.iter().any(|e| e.element_id == "e"));
    let child = engine.child_instances(pi)[0];
    assert_eq!(engine.instance_state(child), Some(InstanceState::Terminated), "the called instance is terminated");
    assert!(engine.incidents().is_empty());
    engine.shutdown();
}
