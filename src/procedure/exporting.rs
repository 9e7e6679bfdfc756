//! pause-exporting / resume-exporting. No status endpoint exists, so idempotency comes from the
//! audit journal (docs/jobs.md): a successful pause (resume) recorded for the same process
//! instance after the last resume (pause) makes the step a no-op. The body-status quirk of the
//! exporting API (HTTP 200 with `status: 500`, docs/target-apis.md §6.8) is judged by the target client
//! and arrives here as an error, so a failed pause is never journaled as `ok`.
use super::api::Mutation;
use super::{StepEnv, StepOutcome, StepResult, regions, vars};
use serde_json::json;

/// The last successful pause/resume of this process instance: `Some(true)` paused.
fn last_state(env: &StepEnv<'_>) -> Result<Option<bool>, StepOutcome> {
    let calls = env.journal_calls()?;
    Ok(calls.iter().rev().filter(|e| e.status == "ok").find_map(|e| match e.action.as_str() {
        "pause-exporting" => Some(true),
        "resume-exporting" => Some(false),
        _ => None,
    }))
}

/// True when this process instance paused exporting and has not resumed it. A journal without
/// this instance's history cannot say "not paused": the job fails instead.
pub fn paused_by_this_instance(env: &StepEnv<'_>) -> Result<bool, StepOutcome> {
    env.journal_calls_with_history()?;
    Ok(last_state(env)? == Some(true))
}

pub async fn pause_exporting(env: &StepEnv<'_>) -> StepResult {
    let surviving = regions::surviving(env)?;
    if last_state(env)? == Some(true) {
        return Ok(StepOutcome::already_done(vars([("exportingPaused", json!(true))])));
    }
    // guards docs/target-apis.md §6.8: a pause failing in the body (status 500) is an error, retried
    env.mutate(surviving, Mutation::PauseExporting).await??;
    Ok(StepOutcome::done(vars([("exportingPaused", json!(true))])))
}

pub async fn resume_exporting(env: &StepEnv<'_>) -> StepResult {
    let surviving = regions::surviving(env)?;
    if last_state(env)? == Some(false) {
        return Ok(StepOutcome::already_done(vars([("exportingPaused", json!(false))])));
    }
    // guards docs/target-apis.md §6.8: always resume (also when nothing is recorded: resuming is safe)
    env.mutate(surviving, Mutation::ResumeExporting).await??;
    Ok(StepOutcome::done(vars([("exportingPaused", json!(false))])))
}
