//! The DR domain: regions and broker parity, plans, and one module per step family. Knows
//! nothing of gRPC or BPMN: steps take variables and headers and return an outcome.
//!
//! Every step is a reconciler (DESIGN §3): validate inputs (INVALID_INPUT before any call),
//! observe, decide (already done / precondition violated / act), act once, complete. Steps never
//! sleep; only a verification check is observed again, for a bounded window, by
//! [`run_step_watching`]. Every mutating call goes through [`StepEnv::mutate`] (or
//! [`StepEnv::record_intent`] / [`StepEnv::record_outcome`] for platform calls), which records its
//! intent on the process instance before the call and its outcome after it (see [`record`]), and
//! writes it to the audit journal. Steps decide from those records (as activated with the job)
//! and the target's state, never from the journal.
pub mod adapter;
pub mod api;
pub mod approval;
pub mod brokers;
pub mod change;
pub mod drill;
pub mod errors;
pub mod exporters;
pub mod exporting;
pub mod inputs;
pub mod journal;
pub mod plan;
pub mod platform;
pub mod record;
pub mod regions;
pub mod report;
pub mod snapshot;
pub mod steps;
pub mod stuck;
pub mod validate;
pub mod verify;

use api::{ApiError, ApiErrorKind, Mutation, MutationResult, TargetApi};
use chrono::Utc;
use journal::{EntryKind, Journal, JournalEntry};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::config::TargetConfig;

/// What a step that went through decided: complete the job, or (a user task listener) give a
/// verdict on the lifecycle transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// Complete the job with these variables (plus `alreadyDone`).
    Complete { variables: Map<String, Value>, already_done: bool },
    /// A user task listener's verdict: let the lifecycle transition go ahead (`deny` None) or
    /// deny it with the reason Tasklist shows. Completes the listener job without variables.
    Verdict { deny: Option<String> },
}

impl Done {
    pub fn complete(variables: Map<String, Value>, already_done: bool) -> Self {
        Done::Complete { variables, already_done }
    }
    /// `Done::done(vars)`, next to `Done::already_done(vars)`: the names steps have always used.
    #[allow(clippy::self_named_constructors)]
    pub fn done(variables: Map<String, Value>) -> Self {
        Done::Complete { variables, already_done: false }
    }
    pub fn already_done(variables: Map<String, Value>) -> Self {
        Done::Complete { variables, already_done: true }
    }
    pub fn with_var(mut self, key: &str, value: Value) -> Self {
        if let Done::Complete { variables, .. } = &mut self {
            variables.insert(key.to_string(), value);
        }
        self
    }
}

/// Why a step did not go through: a BPMN error the process routes to a person, or a failure the
/// engine retries.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// Throw a BPMN error (`code` from [`errors`]); the process routes it to a person.
    Refused { code: &'static str, message: String, field: Option<String>, variables: Map<String, Value> },
    /// Fail the job: the engine retries it after a back-off.
    Retry { message: String },
}

impl StepError {
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        StepError::Refused { code, message: message.into(), field: None, variables: Map::new() }
    }
    /// INVALID_INPUT naming the field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        StepError::Refused {
            code: errors::INVALID_INPUT,
            message: message.into(),
            field: Some(field.to_string()),
            variables: Map::new(),
        }
    }
    pub fn retry(message: impl Into<String>) -> Self {
        StepError::Retry { message: message.into() }
    }
    pub fn with_var(mut self, key: &str, value: Value) -> Self {
        if let StepError::Refused { variables, .. } = &mut self {
            variables.insert(key.to_string(), value);
        }
        self
    }
}

/// What a job's step decided, whichever way: what [`run_step`] returns and the one thing
/// `jobs::handle` maps to complete / fail / BPMN error.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Complete the job with these variables (plus `alreadyDone`).
    Done { variables: Map<String, Value>, already_done: bool },
    /// Throw a BPMN error (`code` from [`errors`]); the process routes it to a person.
    Refused { code: &'static str, message: String, field: Option<String>, variables: Map<String, Value> },
    /// Fail the job: the engine retries it after a back-off.
    Retry { message: String },
    /// A user task listener's verdict (see [`Done::Verdict`]).
    Verdict { deny: Option<String> },
}

impl From<Done> for StepOutcome {
    fn from(d: Done) -> Self {
        match d {
            Done::Complete { variables, already_done } => StepOutcome::Done { variables, already_done },
            Done::Verdict { deny } => StepOutcome::Verdict { deny },
        }
    }
}

impl From<StepError> for StepOutcome {
    fn from(e: StepError) -> Self {
        match e {
            StepError::Refused { code, message, field, variables } => {
                StepOutcome::Refused { code, message, field, variables }
            }
            StepError::Retry { message } => StepOutcome::Retry { message },
        }
    }
}

impl From<StepResult> for StepOutcome {
    fn from(r: StepResult) -> Self {
        match r {
            Ok(d) => d.into(),
            Err(e) => e.into(),
        }
    }
}

impl StepOutcome {
    pub fn done(variables: Map<String, Value>) -> Self {
        Done::done(variables).into()
    }
    pub fn already_done(variables: Map<String, Value>) -> Self {
        Done::already_done(variables).into()
    }
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        StepError::refused(code, message).into()
    }
    /// INVALID_INPUT naming the field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        StepError::invalid(field, message).into()
    }
    pub fn retry(message: impl Into<String>) -> Self {
        StepError::retry(message).into()
    }
    /// Short label for the journal: `done`, `refused`, `retry`.
    pub fn label(&self) -> &'static str {
        match self {
            StepOutcome::Done { .. } => "done",
            StepOutcome::Refused { .. } => "refused",
            StepOutcome::Retry { .. } => "retry",
            StepOutcome::Verdict { deny: None } => "allowed",
            StepOutcome::Verdict { deny: Some(_) } => "denied",
        }
    }
}

/// Any target error not handled by the step itself: a permanent rejection (4xx other than 404 and
/// 409) is the BPMN error TARGET_REJECTED with the answer; the others (unreachable, 5xx,
/// malformed, 404, 409) fail the job, retried with back-off within `worker.transient_retry`.
impl From<ApiError> for StepError {
    fn from(e: ApiError) -> Self {
        // a permanent answer (400, 401, 403, 422, ...) does not get better by retrying: it goes to
        // a person (the step's catch-all "Step failed") with the target's answer
        if e.kind == ApiErrorKind::Rejected {
            let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            return StepError::refused(
                errors::TARGET_REJECTED,
                format!("target rejected the request{status}: {}; fix the cause, then retry the step", e.message),
            );
        }
        // guards docs/target-apis.md §6.17: slow/transient regions (DNS convergence) fail the job for a
        // retry with back-off; every step re-observes on the next attempt, so re-runs are safe
        let what = match e.kind {
            ApiErrorKind::Transient => "target unavailable",
            ApiErrorKind::Malformed => "malformed answer from target",
            ApiErrorKind::Conflict => "target busy (409)",
            ApiErrorKind::NotFound => "not found on target",
            ApiErrorKind::Rejected => "target rejected the request",
        };
        StepError::Retry { message: format!("{what}: {}", e.message) }
    }
}

impl From<ApiError> for StepOutcome {
    fn from(e: ApiError) -> Self {
        StepError::from(e).into()
    }
}

/// A step's result: what it decided, or why it did not go through.
pub type StepResult = Result<Done, StepError>;

/// What a step receives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepInput {
    pub target_name: String,
    /// Job type, e.g. `c8dr.remove-brokers`.
    pub step: String,
    pub variables: Map<String, Value>,
    pub headers: BTreeMap<String, String>,
    pub process_instance_key: i64,
    pub job_key: i64,
    pub worker: String,
    pub element_id: String,
    /// The task's element instance: the scope the call records are set from.
    pub element_instance_key: i64,
}

/// Everything a step may use. Built by `jobs.rs` per job.
pub struct StepEnv<'a> {
    pub input: &'a StepInput,
    pub target: &'a TargetConfig,
    pub api: &'a dyn TargetApi,
    pub platform: &'a dyn crate::platform::Platform,
    pub drill: &'a dyn crate::platform::RegionControl,
    pub journal: &'a Journal,
    /// Where intents and outcomes of mutating calls are recorded (the process instance).
    pub recorder: &'a dyn record::InstanceRecorder,
    /// The records this job set so far: the job's variables are a snapshot taken at its
    /// activation, and a check observed again within one attempt ([`Watch`]) must see them.
    pub written: record::Written,
}

/// A recorded intent, waiting for its outcome ([`StepEnv::record_outcome`]).
#[derive(Debug)]
#[must_use = "the outcome of the call must be recorded"]
pub struct Intent {
    fact: String,
    record: record::CallRecord,
}

/// The fact a mutation records by default (one variable per fact, docs/jobs.md): pause and
/// resume share one (the exporting state of the region), an exporter's disable and enable share
/// one (the exporter's state as this instance left it).
pub fn mutation_fact(region: u8, m: &Mutation) -> String {
    match m {
        Mutation::PauseExporting | Mutation::ResumeExporting => format!("exporting-r{region}"),
        Mutation::DisableExporter { exporter_id } | Mutation::EnableExporter { exporter_id, .. } => {
            format!("exporter-{exporter_id}")
        }
        Mutation::ForceRemoveBrokers { .. } | Mutation::AddBrokers { .. } => format!("{}-r{region}", m.action()),
        Mutation::RegisterRepository { repository, readonly } => {
            format!("register-repository-r{region}-{repository}-{}", if *readonly { "ro" } else { "rw" })
        }
        Mutation::DeleteRepository { repository } => format!("delete-repository-r{region}-{repository}"),
        Mutation::CreateSnapshot { snapshot, .. } | Mutation::RestoreSnapshot { snapshot, .. } => {
            format!("{}-r{region}-{snapshot}", m.action())
        }
        Mutation::DeployProcess { resource_name, .. } => format!("deploy-process-r{region}-{resource_name}"),
        Mutation::CreateProcessInstance { bpmn_process_id } => {
            format!("create-process-instance-r{region}-{bpmn_process_id}")
        }
    }
}

impl StepEnv<'_> {
    fn entry(&self, kind: EntryKind, region: Option<u8>, action: &str) -> JournalEntry {
        JournalEntry {
            time: Utc::now(),
            kind,
            target: self.input.target_name.clone(),
            step: self.input.step.clone(),
            element_id: self.input.element_id.clone(),
            process_instance_key: self.input.process_instance_key,
            job_key: self.input.job_key,
            worker: self.input.worker.clone(),
            region,
            action: action.to_string(),
            request: String::new(),
            status: String::new(),
            message: String::new(),
        }
    }

    /// THE way steps change a target: records the intent on the process instance (no record, no
    /// call), performs `mutation` in `region`, then records the outcome and journals the request
    /// and the answer. A record or journal that cannot be written fails the step (outer `Err`);
    /// the target's answer is the inner result (`env.mutate(..).await??` turns a target error
    /// into a retry). The fact is [`mutation_fact`].
    pub async fn mutate(&self, region: u8, mutation: Mutation) -> Result<Result<MutationResult, ApiError>, StepError> {
        self.mutate_as(&mutation_fact(region, &mutation), region, mutation).await
    }

    /// [`Self::mutate`], recorded as `fact` (several calls of one kind in one step).
    pub async fn mutate_as(
        &self,
        fact: &str,
        region: u8,
        mutation: Mutation,
    ) -> Result<Result<MutationResult, ApiError>, StepError> {
        let intent = self.record_intent(fact, region, mutation.action(), &mutation.summary(), None).await?;
        let result = self.api.mutate(region, mutation).await;
        let (status, message) = match &result {
            Ok(r) => ("ok".to_string(), r.describe()),
            Err(e) => (e.status.map(|s| s.to_string()).unwrap_or_else(|| "error".into()), e.message.clone()),
        };
        self.record_outcome(intent, &status, &message).await?;
        Ok(result)
    }

    /// The record of `fact` as activated with this job (`None`: this instance never announced
    /// such a call). A variable that is not a record fails the job: nothing is decided from it.
    pub fn recorded(&self, fact: &str) -> Result<Option<record::CallRecord>, StepError> {
        if let Some(r) = self.written.get(fact) {
            return Ok(Some(r));
        }
        record::find(&self.input.variables, fact).map_err(StepError::retry)
    }

    /// Records on the process instance that this task is about to make a call (`observed`: what
    /// it saw right before, to judge later whether the call took effect). When the intent cannot
    /// be recorded the job fails (retried) and the call must not be made.
    pub async fn record_intent(
        &self,
        fact: &str,
        region: u8,
        action: &str,
        request: &str,
        observed: Option<Value>,
    ) -> Result<Intent, StepError> {
        let record = record::CallRecord {
            action: action.to_string(),
            region,
            request: journal::scrub(request),
            step: self.input.step.clone(),
            job_key: self.input.job_key,
            element_instance_key: self.input.element_instance_key,
            element_id: self.input.element_id.clone(),
            worker: self.input.worker.clone(),
            intent_at: record::now(),
            observed,
            outcome: None,
        };
        self.set_record(fact, &record).await?;
        Ok(Intent { fact: fact.to_string(), record })
    }

    /// Records the outcome of the call announced by `intent` on the process instance, and
    /// journals the call (audit copy). Returns the time recorded: a step that reports when it
    /// acted reports this time, so its re-run (which reads the record) reports the same one.
    pub async fn record_outcome(&self, intent: Intent, status: &str, message: &str) -> Result<String, StepError> {
        let Intent { fact, mut record } = intent;
        let at = record::now();
        let message = journal::scrub(message);
        record.outcome =
            Some(record::CallOutcome { status: status.to_string(), message: message.clone(), at: at.clone() });
        // the record first: it is what the next attempt decides from; then the audit copy (a
        // journal that cannot be written still fails the step, whose retry finds the record)
        self.set_record(&fact, &record).await?;
        self.journal_call(record.region, &record.action, &record.request, status, &message)?;
        Ok(at)
    }

    /// Records that the call announced by `intent` was not made by c8dr (`status`
    /// [`record::NOT_MADE`]: the platform refused; [`record::MANUAL`]: a person is asked to make
    /// it). Nothing is journaled: no call was made.
    pub async fn record_no_call(&self, intent: Intent, status: &str, message: &str) -> Result<(), StepError> {
        let Intent { fact, mut record } = intent;
        let message = journal::scrub(message);
        record.outcome = Some(record::CallOutcome { status: status.to_string(), message, at: record::now() });
        self.set_record(&fact, &record).await
    }

    async fn set_record(&self, fact: &str, record: &record::CallRecord) -> Result<(), StepError> {
        let value = serde_json::to_value(record).map_err(|e| StepError::retry(e.to_string()))?;
        let mut vars = Map::new();
        vars.insert(record::variable_name(fact), value);
        self.recorder
            .record(self.input.element_instance_key, vars)
            .await
            .map_err(|e| StepError::retry(e.to_string()))?;
        self.written.insert(fact, record.clone());
        Ok(())
    }

    /// Journals a record that is not a mutating call (an accepted override): audit only.
    pub fn journal_call(
        &self,
        region: u8,
        action: &str,
        request: &str,
        status: &str,
        message: &str,
    ) -> Result<(), StepError> {
        let mut e = self.entry(EntryKind::Call, Some(region), action);
        e.request = request.to_string();
        e.status = status.to_string();
        e.message = message.to_string();
        self.journal.append(&e).map_err(|err| StepError::retry(err.to_string()))
    }

    /// Journals the start of an attempt.
    pub fn journal_attempt(&self) -> Result<(), StepError> {
        let e = self.entry(EntryKind::Attempt, None, "attempt");
        self.journal.append(&e).map_err(|err| StepError::retry(err.to_string()))
    }

    /// Journals the outcome; when the journal cannot be written the job fails (retried) instead
    /// of completing without a record.
    pub fn journal_outcome(&self, outcome: StepOutcome) -> StepOutcome {
        let mut e = self.entry(EntryKind::Outcome, None, outcome.label());
        match &outcome {
            StepOutcome::Done { already_done, .. } => {
                e.status = if *already_done { "alreadyDone".into() } else { String::new() };
            }
            StepOutcome::Refused { code, message, .. } => {
                e.request = (*code).to_string();
                e.message = message.clone();
            }
            StepOutcome::Retry { message } => e.message = message.clone(),
            StepOutcome::Verdict { deny } => e.message = deny.clone().unwrap_or_default(),
        }
        match self.journal.append(&e) {
            Ok(()) => outcome,
            Err(err) => StepOutcome::retry(err.to_string()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.input.headers.get(name).map(String::as_str)
    }
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.input.variables.get(name).filter(|v| !v.is_null())
    }
}

/// Builds a variables map from `(key, value)` pairs.
pub fn vars<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Runs the step named by `env.input.step`, journaling the attempt and the outcome.
pub async fn run_step(env: &StepEnv<'_>) -> StepOutcome {
    run_step_watching(env, None).await
}

/// How long a verification check keeps observing before it reports "not yet".
///
/// A check (a step that completes with `verified`) that finds its goal not reached yet observes
/// again every `poll` until it holds or `window` has passed, then completes with the last
/// observation. The process's loop timer (`verifyInterval`) still paces the attempts, and every
/// attempt is still an element instance in Operate; the watch only lets an attempt notice the end
/// of a change, snapshot or restore when it happens instead of at the next attempt, and cuts the
/// number of attempts. The window must stay well under the job timeout (the worker extends the
/// job at half of it anyway). Observing again is safe because a check mostly only reads; the
/// one that may act (verify-exporters enables a failback's legacy exporter) ends the watch with
/// the observation that made the call, so the loop's next attempt, not the watch, sees its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub window: std::time::Duration,
    pub poll: std::time::Duration,
}

/// Whether `outcome` is a check that completed with `verified: false`.
fn not_yet_verified(outcome: &StepOutcome) -> bool {
    matches!(outcome, StepOutcome::Done { variables, .. } if variables.get("verified") == Some(&Value::Bool(false)))
}

/// Runs one step like [`run_step`]; a check that is not verified yet is observed again as
/// [`Watch`] says. A transient failure while watching ends the watch with the last observation
/// (the loop's next attempt observes again); a refusal is reported as it is.
pub async fn run_step_watching(env: &StepEnv<'_>, watch: Option<Watch>) -> StepOutcome {
    if let Err(e) = env.journal_attempt() {
        return e.into();
    }
    let first = StepOutcome::from(steps::run(env).await);
    let acted = || env.written.count() > 0;
    let outcome = watch_check(first, watch, acted, || async { StepOutcome::from(steps::run(env).await) }).await;
    env.journal_outcome(outcome)
}

/// The watch of [`run_step_watching`]: observes again with `observe` while `first` (and each
/// later observation) is a check not verified yet that has not `acted` (recorded a call: its
/// outcome carries what it did, and a state read right after a call may still show the state
/// before it, so the effect is for the loop's next attempt to see), within the window.
async fn watch_check<F, Fut>(
    first: StepOutcome,
    watch: Option<Watch>,
    acted: impl Fn() -> bool,
    mut observe: F,
) -> StepOutcome
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StepOutcome>,
{
    let mut outcome = first;
    let Some(w) = watch.filter(|w| !w.window.is_zero() && !w.poll.is_zero()) else {
        return outcome;
    };
    let deadline = tokio::time::Instant::now() + w.window;
    while not_yet_verified(&outcome) && !acted() && tokio::time::Instant::now() + w.poll <= deadline {
        tokio::time::sleep(w.poll).await;
        match observe().await {
            StepOutcome::Retry { message } => {
                tracing::debug!(%message, "check failed while watching; reporting the last observation");
                break;
            }
            next => outcome = next,
        }
    }
    outcome
}

#[cfg(test)]
mod watch_tests {
    use super::{StepOutcome, Watch, watch_check};
    use serde_json::{Map, Value, json};
    use std::cell::Cell;
    use std::time::Duration;

    fn check(verified: bool) -> StepOutcome {
        let mut v = Map::new();
        v.insert("verified".into(), json!(verified));
        StepOutcome::done(v)
    }

    fn verified(o: &StepOutcome) -> Option<bool> {
        match o {
            StepOutcome::Done { variables, .. } => variables.get("verified").and_then(Value::as_bool),
            _ => None,
        }
    }

    const W: Option<Watch> = Some(Watch { window: Duration::from_secs(10), poll: Duration::from_secs(1) });

    #[tokio::test(start_paused = true)]
    async fn a_check_that_becomes_verified_within_the_window_reports_verified() {
        let calls = Cell::new(0);
        let out = watch_check(
            check(false),
            W,
            || false,
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { check(n >= 3) }
            },
        )
        .await;
        assert_eq!(verified(&out), Some(true));
        assert_eq!(calls.get(), 3, "stops observing once verified");
    }

    #[tokio::test(start_paused = true)]
    async fn the_watch_is_bounded_by_its_window() {
        let calls = Cell::new(0);
        let out = watch_check(
            check(false),
            W,
            || false,
            || {
                calls.set(calls.get() + 1);
                async { check(false) }
            },
        )
        .await;
        assert_eq!(verified(&out), Some(false));
        assert_eq!(calls.get(), 10, "one observation per poll within the 10 s window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_while_watching_reports_the_last_observation() {
        let out = watch_check(check(false), W, || false, || async { StepOutcome::retry("503") }).await;
        assert_eq!(verified(&out), Some(false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_while_watching_is_reported() {
        let out = watch_check(check(false), W, || false, || async { StepOutcome::refused("X", "gone") }).await;
        assert!(matches!(out, StepOutcome::Refused { code: "X", .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn no_watch_or_a_verified_or_mutating_outcome_is_not_observed_again() {
        let calls = Cell::new(0);
        let mut observe = || {
            calls.set(calls.get() + 1);
            async { check(true) }
        };
        watch_check(check(false), None, || false, &mut observe).await;
        watch_check(check(true), W, || false, &mut observe).await;
        watch_check(StepOutcome::done(Map::new()), W, || false, &mut observe).await;
        assert_eq!(calls.get(), 0);
    }

    /// A check that made a call (verify-exporters enabling a legacy exporter) reports that
    /// observation: observing again right away could see the state from before the call and
    /// make it a second time.
    #[tokio::test(start_paused = true)]
    async fn an_observation_that_acted_ends_the_watch() {
        let calls = Cell::new(0);
        let acted_in_first = || true;
        watch_check(check(false), W, acted_in_first, || {
            calls.set(calls.get() + 1);
            async { check(false) }
        })
        .await;
        assert_eq!(calls.get(), 0, "the first observation acted");
        let acted_in_second = || calls.get() >= 2;
        let out = watch_check(check(false), W, acted_in_second, || {
            calls.set(calls.get() + 1);
            async { check(false) }
        })
        .await;
        assert_eq!(calls.get(), 2, "stops after the observation that acted");
        assert_eq!(verified(&out), Some(false));
    }
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
