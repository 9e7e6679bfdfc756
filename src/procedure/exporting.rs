//! pause-exporting / resume-exporting. No status endpoint exists, so idempotency comes from the
//! call record on the process instance (docs/jobs.md, `c8drCall_exporting_r<N>`): pause and resume
//! of a region share one record, so it says what this instance did last; a successful pause
//! (resume) recorded there makes the step a no-op. The body-status quirk of the
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

/// The record of this instance's last pause or resume of exporting in `region`.
fn last_call(env: &StepEnv<'_>, region: u8) -> Result<Option<super::record::CallRecord>, StepError> {
    env.recorded(&super::mutation_fact(region, &Mutation::PauseExporting))
}

/// True when this process instance may have paused exporting in `region` and has not resumed
/// it for sure: the last call recorded is a pause that was not rejected (succeeded, failed with
/// an unreadable answer, or unknown), or a resume that did not succeed. No record: this instance
/// never paused (an intent is recorded before every call, so absence is knowledge).
pub fn paused_by_this_instance(env: &StepEnv<'_>, region: u8) -> Result<bool, StepError> {
    Ok(match last_call(env, region)? {
        None => false,
        Some(r) if r.action == Mutation::PauseExporting.action() => r.possibly_applied(),
        Some(r) => !r.succeeded(),
    })
}

/// `Some(true)`: the last call recorded is a successful pause; `Some(false)`: a successful
/// resume; `None`: nothing, or its outcome is not known to be a success.
fn last_state(env: &StepEnv<'_>, region: u8) -> Result<Option<bool>, StepError> {
    Ok(last_call(env, region)?.filter(|r| r.succeeded()).map(|r| r.action == Mutation::PauseExporting.action()))
}

pub async fn pause_exporting(env: &StepEnv<'_>, input: Surviving) -> StepResult {
    let surviving = input.surviving.index();
    // an intent without outcome (a crash between record and answer) cannot be settled by
    // observing: there is no status endpoint. Pausing again is the safe choice: on 8.8 a pause of
    // a paused partition is acknowledged and changes nothing.
    if last_state(env, surviving)? == Some(true) {
        return Ok(Done::already_done(vars([("exportingPaused", json!(true))])));
    }
    no_rollout_in_progress(env, surviving, "paused").await?;
    // guards docs/target-apis.md §6.8: a pause failing in the body (status 500) is an error, retried
    env.mutate(surviving, Mutation::PauseExporting).await??;
    Ok(Done::done(vars([("exportingPaused", json!(true))])))
}

pub async fn resume_exporting(env: &StepEnv<'_>, input: Surviving) -> StepResult {
    let surviving = input.surviving.index();
    // unknown outcome: resuming again is harmless (a running exporter stays running) and the
    // only safe choice, exporting must not stay paused
    if last_state(env, surviving)? == Some(false) {
        return Ok(Done::already_done(vars([("exportingPaused", json!(false))])));
    }
    no_rollout_in_progress(env, surviving, "resumed").await?;
    // guards docs/target-apis.md §6.8: always resume (also when nothing is recorded: resuming is safe)
    env.mutate(surviving, Mutation::ResumeExporting).await??;
    Ok(Done::done(vars([("exportingPaused", json!(false))])))
}
