//! Rehearsal engine: timers, gateways, call activities, messages and deployments.
#[path = "engine_support.rs"]
mod support;

use c8dr::gateway_protocol as pb;
use c8dr::rehearsal::engine::InstanceState;
use serde_json::json;
use support::*;

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
    let pi = create(&mut client, "tb", json!({"waitFor": "PT10S"})).await;
    let work = activate_one(&mut client, "t.work").await;
    // 10 simulated seconds later the boundary fires
    let late = activate_one(&mut client, "t.late").await;
    let err = client.complete_job(pb::CompleteJobRequest { job_key: work.key, ..Default::default() }).await.unwrap_err();
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
        check = task("check", "t.check", r#"<zeebe:ioMapping><zeebe:output source="=verified" target="verified"/></zeebe:ioMapping>"#),
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
    let pi2 = create(&mut client, "loop", json!({"verifyInterval": "PT5S", "verifyTimeout": "PT30S"})).await;
    let mut worker = client.clone();
    let answering = tokio::spawn(async move {
        loop {
            for job in activate(&mut worker, "t.check", 1, 100).await {
                let _ = worker
                    .complete_job(pb::CompleteJobRequest { job_key: job.key, variables: json!({"verified": false}).to_string(), result: None })
                    .await;
            }
        }
    });
    wait_state(&engine, pi2, InstanceState::Completed).await;
    answering.abort();
    let els = engine.element_instances(pi2);
    assert!(els.iter().any(|e| e.element_id == "timedOut" && e.state == InstanceState::Completed));
    assert!(!els.iter().any(|e| e.element_id == "after"));
    assert!(els.iter().filter(|e| e.element_id == "check").count() >= 2);
    assert_eq!(els.iter().find(|e| e.element_id == "wait").unwrap().state, InstanceState::Terminated);
    engine.shutdown();
}
