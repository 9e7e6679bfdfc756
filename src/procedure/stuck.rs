//! `c8dr.restart-stuck-brokers`: the approved, bounded remedy for brokers stuck Running but not
//! Ready after a region change (DNS of the lost peers, camunda/camunda#55038).
//!
//! Runs only after the process's gate (`restartApproved = true`, checked here again) and only on
//! the pods the operator was shown (`stuckBrokers`, written by `c8dr.verify-profiles`). It
//! observes again, restarts ONE pod at a time (`Platform::restart_pod`), waits for it to be Ready
//! (bounded by `kubernetes.pod_ready_timeout_secs`), journals each restart, then goes on with the
//! next. Pods no longer stuck are skipped. A retry of the same job (a crash, a readiness timeout,
//! another worker replica) never restarts a pod this task already restarted: each restart is
//! recorded on the process instance before and after the call (`c8drCall_restart_<task>_r<N>_<pod>`,
//! docs/jobs.md), and an intent without outcome is settled by observing the pod.
use super::platform::kubectl_line;
use super::{Done, StepEnv, StepError, StepResult, errors, vars};
use crate::platform::{PlatformError, PlatformStatus};
use serde_json::{Value, json};
use std::time::Duration;

/// Journal action of one restart.
pub const RESTART_ACTION: &str = "restart-stuck-broker";

/// The record of restarting `pod` of `region` by this task (its element instance: a later
/// approval in a loop is another task and may restart the pod again).
fn restart_fact(env: &StepEnv<'_>, region: u8, pod: &str) -> String {
    format!("restart-{}-r{region}-{pod}", env.input.element_instance_key)
}

/// What identifies the pod instance a restart deletes: its `uid` (a pod the StatefulSet recreates
/// under the same name has another), and its state: a recreated pod also has a new Ready
/// transition (`notReadySince`) and starts Pending or not Ready since a later time.
fn pod_identity(p: &crate::platform::PodStatus) -> Value {
    json!({"uid": p.uid, "phase": p.phase, "ready": p.ready, "notReadySince": p.not_ready_since})
}

/// True when `current` is still the pod the intent `r` saw: the same uid, same phase, still not
/// Ready, the same Ready transition time, and not being deleted. Then the deletion did not
/// happen (or failed) and may be made. Anything else (gone, terminating, Ready, another uid or
/// transition time, nothing recorded to compare, a record without a uid) counts as restarted:
/// deleting a pod twice is the one thing this step must not do.
fn same_pod_still_stuck(r: &super::record::CallRecord, current: Option<&crate::platform::PodStatus>) -> bool {
    let (Some(seen), Some(p)) = (r.observed.as_ref(), current) else {
        return false;
    };
    let known = |k: &str| seen.get(k).is_some_and(|t| !t.is_null());
    known("notReadySince") && known("uid") && !p.terminating && *seen == pod_identity(p)
}

/// How often a restarted pod's readiness is observed.
const READY_POLL: Duration = Duration::from_secs(5);

/// The approved pods: `stuckBrokers` as verify-profiles wrote it (`[{region, pod, ...}]`).
fn approved_pods(env: &StepEnv<'_>) -> Result<Vec<(u8, String)>, StepError> {
    let bad = |why: &str| {
        StepError::invalid(
            "stuckBrokers",
            format!(
                "variable `stuckBrokers` must be the list written by c8dr.verify-profiles ([{{\"region\": 0|1, \"pod\": \"<release>-zeebe-N\"}}]): {why}"
            ),
        )
    };
    let Some(Value::Array(list)) = env.var("stuckBrokers") else {
        return Err(bad("missing or not a list"));
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let region = match item.get("region").and_then(Value::as_u64) {
            Some(r @ 0..=1) => r as u8,
            _ => return Err(bad(&format!("entry {i} has no region 0 or 1"))),
        };
        let pod = item.get("pod").and_then(Value::as_str).unwrap_or("");
        let valid = !pod.is_empty()
            && pod.len() <= 253
            && pod.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid {
            return Err(bad(&format!("entry {i} has no valid pod name")));
        }
        if !out.iter().any(|(r, p)| *r == region && p == pod) {
            out.push((region, pod.to_string()));
        }
    }
    out.sort();
    Ok(out)
}

async fn observe(env: &StepEnv<'_>, region: u8, pod: &str) -> Result<PlatformStatus, StepError> {
    match env.platform.status(env.target, region).await {
        Ok(s) => Ok(s),
        Err(PlatformError::Manual { .. }) => Err(manual_restart(env, region, pod)),
        Err(PlatformError::Failed(m)) => Err(StepError::retry(m)),
        Err(PlatformError::Refused(m)) => Err(StepError::refused(errors::PRECONDITION_FAILED, m)),
    }
}

fn manual_restart(env: &StepEnv<'_>, region: u8, pod: &str) -> StepError {
    let command = kubectl_line(env.target, region, &["delete", "pod", pod]);
    StepError::Refused {
        code: errors::MANUAL_STEP_REQUIRED,
        message: format!("run this command, wait until the pod is Ready, then confirm: {command}"),
        field: None,
        variables: vars([
            ("manualCommand", json!(command)),
            ("manualStepId", json!(format!("restart-{pod}"))),
            ("target", json!(env.input.target_name)),
        ]),
    }
}

/// Waits until `pod` of `region` is Ready, observing every [`READY_POLL`], at most
/// `kubernetes.pod_ready_timeout_secs`; then fails the job (retried: the pod is not restarted
/// again, its readiness is awaited again).
async fn await_ready(env: &StepEnv<'_>, region: u8, pod: &str) -> Result<(), StepError> {
    let timeout = Duration::from_secs(env.target.kubernetes.pod_ready_timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let s = observe(env, region, pod).await?;
        if s.pods.iter().any(|p| p.name == pod && p.ready) {
            return Ok(());
        }
        if tokio::time::Instant::now() + READY_POLL > deadline {
            return Err(StepError::retry(format!(
                "pod {pod} in region {region} was restarted but is not Ready after {}s (kubernetes.pod_ready_timeout_secs): it is not restarted again by this job; check with: {}",
                timeout.as_secs(),
                kubectl_line(env.target, region, &["describe", "pod", pod])
            )));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// `c8dr.restart-stuck-brokers` (variables `restartApproved`, `stuckBrokers`).
pub async fn restart_stuck_brokers(env: &StepEnv<'_>, _: ()) -> StepResult {
    let approved = approved_pods(env)?;
    if env.var("restartApproved") != Some(&Value::Bool(true)) {
        // the process's gate decides; this is the second lock
        return Err(StepError::refused(
            errors::PRECONDITION_FAILED,
            "restarting stuck brokers needs the operator's approval (restartApproved = true): nothing was restarted",
        ));
    }
    let after = chrono::Duration::seconds(i64::try_from(env.target.kubernetes.stuck_after_secs).unwrap_or(i64::MAX));
    let mut restarted = Vec::new();
    let mut skipped = Vec::new();
    for (region, pod) in &approved {
        let fact = restart_fact(env, *region, pod);
        let prior = env.recorded(&fact)?;
        if prior.as_ref().is_some_and(|r| r.succeeded()) {
            // restarted by an earlier attempt of this task: only its readiness is awaited
            await_ready(env, *region, pod).await?;
            restarted.push(json!({"region": region, "pod": pod}));
            continue;
        }
        // observe again: a pod that recovered (or is gone) is not restarted
        let s = observe(env, *region, pod).await?;
        let current = s.pods.iter().find(|p| &p.name == pod);
        if let Some(r) = prior.as_ref().filter(|r| r.possibly_applied())
            && !same_pod_still_stuck(r, current)
        {
            // an earlier attempt announced this restart and the pod it saw is gone (deleted, or
            // recreated with a later Ready transition): the restart happened; never delete twice
            await_ready(env, *region, pod).await?;
            restarted.push(json!({"region": region, "pod": pod}));
            continue;
        }
        let still_stuck = current.is_some_and(|p| p.stuck(chrono::Utc::now(), after));
        if !still_stuck {
            skipped.push(json!({"region": region, "pod": pod}));
            continue;
        }
        let request = format!("delete pod {pod}");
        let seen = current.map(pod_identity);
        let intent = env.record_intent(&fact, *region, RESTART_ACTION, &request, seen).await?;
        match env.platform.restart_pod(env.target, *region, pod).await {
            Ok(()) => {
                env.record_outcome(intent, "ok", "pod deleted; its StatefulSet recreates it").await?;
            }
            Err(PlatformError::Manual { .. }) => {
                env.record_no_call(intent, super::record::MANUAL, "a person restarts it").await?;
                return Err(manual_restart(env, *region, pod));
            }
            Err(PlatformError::Failed(m)) => {
                env.record_outcome(intent, "error", &m).await?;
                return Err(StepError::retry(m));
            }
            Err(PlatformError::Refused(m)) => {
                env.record_no_call(intent, super::record::NOT_MADE, &m).await?;
                return Err(StepError::refused(errors::PRECONDITION_FAILED, m));
            }
        }
        await_ready(env, *region, pod).await?;
        restarted.push(json!({"region": region, "pod": pod}));
    }
    let variables = vars([("brokersRestarted", json!(restarted)), ("brokersSkipped", json!(skipped))]);
    Ok(Done::complete(variables, restarted.is_empty()))
}
