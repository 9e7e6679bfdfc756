//! Drill steps: drill-guard, drill-canaries (create | check), drill-region (lose | recreate).
//! Region loss goes through [`crate::platform::RegionControl`] and is refused unless the target
//! sets `drill_allowed = true`.
use super::api::{Mutation, MutationResult};
use super::inputs::{CanaryAction, CanaryVars, CheckRegions, DrillAction, Failover, Header, Surviving, named_regions};
use super::{Done, StepEnv, StepError, StepResult, errors, vars};
use crate::platform::PlatformError;
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// BPMN process id of the canary process.
pub const CANARY_PROCESS_ID: &str = "c8dr-canary";

/// The canary: start -> user task -> end, so instances stay active and visible.
pub const CANARY_BPMN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="c8dr-canary-definitions" targetNamespace="http://c8dr.io/canary">
  <bpmn:process id="c8dr-canary" name="c8dr drill canary" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>to-task</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="to-task" sourceRef="start" targetRef="canary-task" />
    <bpmn:userTask id="canary-task" name="Canary waits"><bpmn:extensionElements><zeebe:userTask /></bpmn:extensionElements><bpmn:incoming>to-task</bpmn:incoming><bpmn:outgoing>to-end</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="to-end" sourceRef="canary-task" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>to-end</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"#;

fn guard(env: &StepEnv<'_>) -> Result<(), StepError> {
    if env.target.drill_allowed {
        Ok(())
    } else {
        Err(StepError::refused(
            errors::DRILL_NOT_ALLOWED,
            format!(
                "target `{}` does not allow drills: set drill_allowed = true in its config to allow them",
                env.input.target_name
            ),
        ))
    }
}

/// `c8dr.drill-guard`.
pub async fn drill_guard(env: &StepEnv<'_>, _: ()) -> StepResult {
    guard(env)?;
    Ok(Done::done(vars([("drillAllowed", json!(true))])))
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `c8dr.drill-region` (header `action: lose|recreate`).
pub async fn drill_region(env: &StepEnv<'_>, (Header(action), input): (Header<DrillAction>, Failover)) -> StepResult {
    let (out_var, call) = match action {
        DrillAction::Lose => ("regionLostAt", "drill-lose-region"),
        DrillAction::Recreate => ("regionRecreatedAt", "drill-recreate-region"),
    };
    let action = action.as_str();
    let lost = input.lost.index();
    guard(env)?;
    // idempotency: the call record of this instance (`c8drCall_drill_<action>_region_r<N>`)
    let fact = format!("drill-{action}-region-r{lost}");
    let prior = env.recorded(&fact)?;
    if let Some(at) = prior.as_ref().filter(|r| r.succeeded()).and_then(|r| r.outcome.as_ref()).map(|o| o.at.clone()) {
        // the recorded time: a re-run reports the same instant
        return Ok(Done::already_done(vars([(out_var, json!(at))])));
    }
    // a platform that refuses (namespace not labelled for drills, production marker) is a
    // person's decision, never retried, and nothing was changed
    let refused = |m: String| StepError::refused(errors::DRILL_NOT_ALLOWED, m);
    let announced = prior.as_ref().is_some_and(|r| r.possibly_applied());
    // a loss is observed before acting; a recreation only when an earlier attempt announced it
    // (before the loss, "not lost" does not mean "recreated")
    if action == "lose" || announced {
        match env.drill.is_lost(lost).await {
            Ok(Some(is_lost)) if is_lost == (action == "lose") => {
                return Ok(Done::already_done(vars([(out_var, json!(now()))])));
            }
            // announced, unknown outcome, and the region cannot say: acting again could lose or
            // recreate twice; fail the job until the region can be observed
            Ok(None) if announced => {
                return Err(StepError::retry(format!(
                    "an earlier attempt announced `drill {action} region {lost}` without recording its outcome, and the region's state cannot be observed: not acting again blindly"
                )));
            }
            Ok(_) => {}
            Err(PlatformError::Refused(m)) => return Err(refused(m)),
            Err(e) => return Err(StepError::retry(e.to_string())),
        }
    }
    let request = format!("drill {action} region {lost}");
    let intent = env.record_intent(&fact, lost, call, &request, None).await?;
    let result = if action == "lose" { env.drill.lose(lost).await } else { env.drill.recreate(lost).await };
    match result {
        Ok(()) => {
            // the recorded time: a re-run reads it back and reports the same instant
            let at = env.record_outcome(intent, "ok", &format!("region {lost} {action}")).await?;
            Ok(Done::done(vars([(out_var, json!(at))])))
        }
        Err(PlatformError::Refused(m)) => {
            env.record_no_call(intent, super::record::NOT_MADE, &m).await?;
            Err(refused(m))
        }
        Err(e) => {
            env.record_outcome(intent, "error", &e.to_string()).await?;
            Err(StepError::retry(e.to_string()))
        }
    }
}

fn canary_keys(env: &StepEnv<'_>) -> Result<Vec<String>, StepError> {
    let bad = || {
        StepError::invalid(
            "canaryKeys",
            "variable `canaryKeys` must be the array of canary process instance keys written by drill-canaries create",
        )
    };
    match env.var("canaryKeys") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| match k {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// `c8dr.drill-canaries` (headers `action: create|check`, `region: surviving|both` for check).
pub async fn drill_canaries(
    env: &StepEnv<'_>,
    (Header(action), region, at, canaries): (Header<CanaryAction>, Option<Header<CheckRegions>>, Surviving, CanaryVars),
) -> StepResult {
    match action {
        CanaryAction::Create => create_canaries(env, at, canaries).await,
        CanaryAction::Check => check_canaries(env, at, region).await,
    }
}

/// The record of creating canary `i` in `region`.
fn canary_fact(region: u8, i: usize) -> String {
    format!("canary-r{region}-{i}")
}

async fn create_canaries(env: &StepEnv<'_>, at: Surviving, canaries: CanaryVars) -> StepResult {
    let lost = at.other().index();
    let count = canaries.canary_count.0;
    guard(env)?;
    let region = 1 - lost;
    if let Some(Value::Array(a)) = env.var("canaryKeys")
        && a.len() >= count
    {
        return Ok(Done::already_done(vars([("canaryKeys", json!(a))])));
    }
    // keys created by earlier attempts of this task (a crash between create and complete), from
    // their call records `c8drCall_canary_r<N>_<i>`. A canary whose intent has no outcome is
    // created again: a canary is a throwaway test instance, the check looks only for the keys
    // recorded, so a second one changes nothing the drill judges.
    let mut keys: Vec<String> = Vec::new();
    for i in 0..count {
        let key = env
            .recorded(&canary_fact(region, i))?
            .filter(|r| r.succeeded())
            .and_then(|r| r.outcome.and_then(|o| o.message.strip_prefix("key=").map(str::to_string)));
        match key {
            Some(k) => keys.push(k),
            None => break,
        }
    }
    let deploy = Mutation::DeployProcess { resource_name: "c8dr-canary.bpmn".into(), xml: CANARY_BPMN.into() };
    let already = keys.len() >= count;
    let deployed = match env.recorded(&super::mutation_fact(region, &deploy))? {
        Some(r) if r.succeeded() => true,
        // an earlier attempt announced the deployment and died before its answer was recorded:
        // the definition tells whether it was made; a search that does not show it yet (the
        // secondary storage lags a little) deploys again, which the engine answers with the same
        // version for an identical resource
        Some(r) if r.unknown() && !already => {
            !env.api.process_definitions(region, CANARY_PROCESS_ID.to_string()).await?.is_empty()
        }
        _ => false,
    };
    if !already && !deployed {
        env.mutate(region, deploy).await??;
    }
    while keys.len() < count {
        let fact = canary_fact(region, keys.len());
        match env
            .mutate_as(&fact, region, Mutation::CreateProcessInstance { bpmn_process_id: CANARY_PROCESS_ID.into() })
            .await??
        {
            MutationResult::Key(k) => keys.push(k),
            other => {
                return Err(StepError::retry(format!("unexpected answer creating a canary: {}", other.describe())));
            }
        }
    }
    keys.truncate(count);
    Ok(Done::complete(vars([("canaryKeys", json!(keys))]), already))
}

async fn check_canaries(env: &StepEnv<'_>, at: Surviving, region: Option<Header<CheckRegions>>) -> StepResult {
    let keys = canary_keys(env)?;
    let targets = named_regions(Header::required(region)?.as_str(), at.surviving);
    guard(env)?;
    let mut missing = Map::new();
    let mut all = true;
    for region in targets {
        let found = env.api.process_instances(region, CANARY_PROCESS_ID.to_string()).await?;
        let gone: Vec<String> = keys.iter().filter(|k| !found.contains(k)).cloned().collect();
        all &= gone.is_empty();
        missing.insert(region.to_string(), json!(gone));
    }
    Ok(Done::done(vars([("verified", json!(all)), ("canariesMissing", Value::Object(missing))])))
}
