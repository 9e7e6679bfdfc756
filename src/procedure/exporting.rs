//! pause-exporting / resume-exporting. No status endpoint exists, so idempotency comes from the
//! audit journal (docs/jobs.md): a successful pause (resume) recorded for the same process
//! instance after the last resume (pause) makes the step a no-op. The body-status quirk of the
//! exporting API (HTTP 200 with `status: 500`, docs/target-apis.md §6.8) is judged by the target client
//! and arrives here as an error, so a failed pause is never journaled as `ok`.
//!
//! Neither runs during a rollout of the orchestration StatefulSet: while a broker restarts, a
//! pause or resume fails on a real 8.8 cluster (it needs every broker), so the step observes the
//! platform of every running region first and fails the job (retried) until the rollout is done.
use super::api::Mutation;
use super::inputs::Surviving;
use super::{Done, StepEnv, StepError, StepResult, errors, validate, vars};
use crate::platform::PlatformError;
use serde_json::json;

/// Fails the job (retried with back-off) while a rollout runs in a running region; a manual
/// platform skips the guard (a person ran the helm step and verified the rollout), an unknown
/// platform state never lets the step act.
async fn no_rollout_in_progress(env: &StepEnv<'_>, surviving: u8, what: &str) -> Result<(), StepError> {
    let mut running = vec![surviving];
    if let Some(r) = validate::optional_region(&env.input.variables, "recreatedRegion")?
        && r != surviving
    {
        running.push(r);
    }
    for region in running {
        let s = match env.platform.status(env.target, region).await {
            Ok(s) => s,
            Err(PlatformError::Manual { .. }) => continue,
            Err(PlatformError::Failed(m)) => {
                return Err(StepError::retry(format!(
                    "the platform of region {region} cannot be observed ({m}): exporting is {what} only when no rollout is in progress"
                )));
            }
            Err(PlatformError::Refused(m)) => return Err(StepError::refused(errors::PRECONDITION_FAILED, m)),
        };
        if !s.release {
            continue; // nothing runs there: nothing rolls
        }
        let sts = format!("{}-zeebe", env.target.release);
        match &s.rollout {
            Some(r) if r.complete() => {}
            Some(r) => {
                return Err(StepError::retry(format!(
                    "rollout of {sts} in region {region} in progress: {}; exporting is {what} after it",
                    r.describe()
                )));
            }
            None => {
                return Err(StepError::retry(format!(
                    "the rollout of {sts} in region {region} cannot be read: exporting is {what} only when no rollout is in progress"
                )));
            }
        }
    }
    Ok(())
}

/// The last successful pause/resume of this process instance: `Some(true)` paused.
fn last_state(env: &StepEnv<'_>) -> Result<Option<bool>, StepError> {
    let calls = env.journal_calls()?;
    Ok(calls.iter().rev().filter(|e| e.status == "ok").find_map(|e| match e.action.as_str() {
        "pause-exporting" => Some(true),
        "resume-exporting" => Some(false),
        _ => None,
    }))
}

/// True when this process instance paused exporting and has not resumed it. A journal without
/// this instance's history cannot say "not paused": the job fails instead.
pub fn paused_by_this_instance(env: &StepEnv<'_>) -> Result<bool, StepError> {
    env.journal_calls_with_history()?;
    Ok(last_state(env)? == Some(true))
}

pub async fn pause_exporting(env: &StepEnv<'_>, input: Surviving) -> StepResult {
    let surviving = input.surviving.index();
    if last_state(env)? == Some(true) {
        return Ok(Done::already_done(vars([("exportingPaused", json!(true))])));
    }
    no_rollout_in_progress(env, surviving, "paused").await?;
    // guards docs/target-apis.md §6.8: a pause failing in the body (status 500) is an error, retried
    env.mutate(surviving, Mutation::PauseExporting).await??;
    Ok(Done::done(vars([("exportingPaused", json!(true))])))
}

pub async fn resume_exporting(env: &StepEnv<'_>, input: Surviving) -> StepResult {
    let surviving = input.surviving.index();
    if last_state(env)? == Some(false) {
        return Ok(Done::already_done(vars([("exportingPaused", json!(false))])));
    }
    no_rollout_in_progress(env, surviving, "resumed").await?;
    // guards docs/target-apis.md §6.8: always resume (also when nothing is recorded: resuming is safe)
    env.mutate(surviving, Mutation::ResumeExporting).await??;
    Ok(Done::done(vars([("exportingPaused", json!(false))])))
}
