//! Job -> step -> complete / fail / BPMN error.
//!
//! [`handle`] is what the worker runtime calls for every activated `c8dr.*` job (registered under
//! each of [`JOB_TYPES`], the job types of the step table `procedure::steps`). It resolves the
//! target named by the variable `target` (clients built lazily and cached per target), runs the
//! step with its typed input, journals it, and [`job_outcome`] turns what it decided into a
//! [`JobOutcome`].
use crate::config::{Config, TargetConfig, TransientRetryConfig};
use crate::platform::{self, Platform, PlatformFactory, RegionControl};
use crate::procedure::adapter::ClientTarget;
use crate::procedure::api::{
    ApiError, ApiErrorKind, ApiResult, ClusterView, ExporterStatus, HealthInfo, IndexInfo, Mutation, MutationResult,
    PlannedChange, RecoveryInfo, RepositoryView, SnapshotInfo, TargetApi, TopologyView,
};
use crate::procedure::journal::{EntryKind, Journal, JournalEntry, scrub};
use crate::procedure::record::{InstanceRecorder, NoRecorder, RecordError};
use crate::procedure::{StepEnv, StepInput, StepOutcome, Watch, run_step_watching};
use crate::region_api::Target;
use crate::zeebe::{Job, JobOutcome};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// Every job type this worker handles (docs/jobs.md): the job types of the step table,
/// [`crate::procedure::steps::STEPS`].
pub use crate::procedure::steps::JOB_TYPES;

pub fn job_types() -> &'static [&'static str] {
    JOB_TYPES
}

/// Builds the target port for a configured target (the real clients by default; tests inject).
pub type Connector = dyn Fn(&str, &TargetConfig) -> Result<Arc<dyn TargetApi>, String> + Send + Sync;

/// Everything one target needs, built once.
struct TargetHandles {
    api: Arc<dyn TargetApi>,
    platform: Box<dyn Platform>,
    region_control: Box<dyn RegionControl>,
}

/// Shared by all jobs of a worker.
pub struct StepContext {
    pub config: Arc<Config>,
    pub journal: Journal,
    pub worker_name: String,
    connector: Box<Connector>,
    platforms: Box<PlatformFactory>,
    targets: Mutex<HashMap<String, Arc<TargetHandles>>>,
    recorder: Arc<dyn InstanceRecorder>,
}

/// Records call intents and outcomes on the process instance through the gateway:
/// SetVariables on the job's element instance, propagated (`local = false`), so the variables
/// land at the process instance unless a scope on the way already has them (docs/jobs.md).
pub struct GatewayRecorder {
    client: crate::zeebe::GatewayClient,
}

impl GatewayRecorder {
    pub fn new(client: crate::zeebe::GatewayClient) -> Self {
        Self { client }
    }
}

impl InstanceRecorder for GatewayRecorder {
    fn record(
        &self,
        element_instance_key: i64,
        variables: Map<String, Value>,
    ) -> BoxFuture<'_, Result<(), RecordError>> {
        Box::pin(async move {
            self.client
                .set_variables(element_instance_key, &variables, false)
                .await
                .map(|_| ())
                .map_err(|e| RecordError { element_instance_key, message: scrub(&e.to_string()) })
        })
    }
}

/// The real clients of a target, their reads retried in place after `read_pause`.
fn connect_clients(read_pause: Duration) -> Box<Connector> {
    Box::new(move |name: &str, config: &TargetConfig| {
        let target = Target::from_config(name, config).map_err(|e| e.to_string())?;
        Ok(Arc::new(RetryingReads::new(Arc::new(ClientTarget::new(target)), read_pause)) as Arc<dyn TargetApi>)
    })
}

/// Observations (reads, and the management dry run, which changes nothing) retried in place on a
/// transient error, a few times with a short doubling pause: a step that reads five things
/// before it acts would otherwise fail whole on any one of them (with 30 % of requests failing,
/// five reads all succeed only 17 % of the time). The one mutating call is never retried here: a
/// failed mutation fails the job, and the next attempt re-observes before acting.
pub struct RetryingReads {
    inner: Arc<dyn TargetApi>,
    attempts: u32,
    first_pause: Duration,
}

impl RetryingReads {
    /// Attempts per read.
    pub const ATTEMPTS: u32 = 4;

    /// `first_pause`: the pause after the first failure (doubled after each further one).
    pub fn new(inner: Arc<dyn TargetApi>, first_pause: Duration) -> Self {
        Self { inner, attempts: Self::ATTEMPTS, first_pause }
    }

    /// Retried in place: the target answered, with a 5xx or a body we could not parse. An
    /// unanswered read (connection refused, timeout: `status` none) is returned at once.
    fn retry_in_place(e: &ApiError) -> bool {
        match e.kind {
            ApiErrorKind::Malformed => true,
            ApiErrorKind::Transient => e.status.is_some(),
            _ => false,
        }
    }

    fn read<'a, T: Send + 'a>(
        &'a self,
        what: &'static str,
        call: impl Fn() -> BoxFuture<'a, ApiResult<T>> + Send + 'a,
    ) -> BoxFuture<'a, ApiResult<T>> {
        Box::pin(async move {
            let mut pause = self.first_pause;
            let mut attempt = 1;
            loop {
                match call().await {
                    Err(e) if Self::retry_in_place(&e) && attempt < self.attempts => {
                        tracing::debug!(read = what, attempt, pause_ms = pause.as_millis() as u64, error = %scrub(&e.message), "transient read failure; retrying");
                        tokio::time::sleep(pause).await;
                        pause = pause.saturating_mul(2);
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }
}

impl TargetApi for RetryingReads {
    fn cluster(&self, region: u8) -> BoxFuture<'_, ApiResult<ClusterView>> {
        self.read("cluster", move || self.inner.cluster(region))
    }
    fn dry_run_remove(&self, region: u8, ids: Vec<u32>) -> BoxFuture<'_, ApiResult<PlannedChange>> {
        self.read("dry_run_remove", move || self.inner.dry_run_remove(region, ids.clone()))
    }
    fn topology(&self, region: u8) -> BoxFuture<'_, ApiResult<TopologyView>> {
        self.read("topology", move || self.inner.topology(region))
    }
    fn exporters(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<ExporterStatus>>> {
        self.read("exporters", move || self.inner.exporters(region))
    }
    fn repository_exists(&self, region: u8, repository: String) -> BoxFuture<'_, ApiResult<bool>> {
        self.read("repository_exists", move || self.inner.repository_exists(region, repository.clone()))
    }
    fn repository(&self, region: u8, repository: String) -> BoxFuture<'_, ApiResult<Option<RepositoryView>>> {
        self.read("repository", move || self.inner.repository(region, repository.clone()))
    }
    fn snapshot(&self, region: u8, repository: String, name: String) -> BoxFuture<'_, ApiResult<Option<SnapshotInfo>>> {
        self.read("snapshot", move || self.inner.snapshot(region, repository.clone(), name.clone()))
    }
    fn recoveries(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<RecoveryInfo>>> {
        self.read("recoveries", move || self.inner.recoveries(region))
    }
    fn indices(&self, region: u8) -> BoxFuture<'_, ApiResult<Vec<IndexInfo>>> {
        self.read("indices", move || self.inner.indices(region))
    }
    fn health(&self, region: u8) -> BoxFuture<'_, ApiResult<HealthInfo>> {
        self.read("health", move || self.inner.health(region))
    }
    fn process_instances(&self, region: u8, bpmn_process_id: String) -> BoxFuture<'_, ApiResult<Vec<String>>> {
        self.read("process_instances", move || self.inner.process_instances(region, bpmn_process_id.clone()))
    }
    fn process_definitions(&self, region: u8, bpmn_process_id: String) -> BoxFuture<'_, ApiResult<Vec<String>>> {
        self.read("process_definitions", move || self.inner.process_definitions(region, bpmn_process_id.clone()))
    }
    fn mutate(&self, region: u8, mutation: Mutation) -> BoxFuture<'_, ApiResult<MutationResult>> {
        self.inner.mutate(region, mutation)
    }
}

impl StepContext {
    /// Context with the real target clients; journal at `config.journal.path`.
    pub fn new(config: Arc<Config>) -> Self {
        let journal = Journal::with_fsync(config.journal.path.clone(), config.journal.fsync);
        let worker_name = config.worker.name.clone();
        let read_pause = Duration::from_millis(config.worker.transient_retry.read_pause_ms);
        Self::with_connector(config, journal, worker_name, connect_clients(read_pause))
    }

    /// Context with a custom target port (tests, simulations).
    pub fn with_connector(
        config: Arc<Config>,
        journal: Journal,
        worker_name: String,
        connector: Box<Connector>,
    ) -> Self {
        Self {
            config,
            journal,
            worker_name,
            connector,
            platforms: Box::new(platform::connect),
            targets: Mutex::new(HashMap::new()),
            recorder: Arc::new(NoRecorder),
        }
    }

    /// The same context recording call intents and outcomes through `recorder` (the worker's:
    /// [`GatewayRecorder`]). Without one, every mutating step fails before it calls (fail closed).
    pub fn with_recorder(mut self, recorder: Arc<dyn InstanceRecorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// The same context with another platform (Helm, Kubernetes, region control): a simulation
    /// injects its own; the production worker's comes from each target's config.
    pub fn with_platforms(mut self, platforms: Box<PlatformFactory>) -> Self {
        self.platforms = platforms;
        self
    }

    /// Builds every configured target's clients now rather than at its first job (loading TLS
    /// roots and building HTTP clients takes tens of milliseconds): a worker started at 3 a.m. is
    /// ready when the failover's first job arrives, and a target that cannot be built is logged
    /// at start. Such a target is tried again (and refused with INVALID_INPUT) at its first job.
    pub fn connect_all(&self) {
        for (name, target) in &self.config.targets {
            if let Err(e) = self.handles(name, target) {
                tracing::warn!(target = %name, error = %scrub(&e), "target clients cannot be built; its jobs will be refused");
            }
        }
    }

    fn handles(&self, name: &str, config: &TargetConfig) -> Result<Arc<TargetHandles>, String> {
        let mut map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(name) {
            return Ok(h.clone());
        }
        let api = (self.connector)(name, config)?;
        let p = (self.platforms)(name, config)?;
        let h = Arc::new(TargetHandles { api, platform: p.platform, region_control: p.region_control });
        map.insert(name.to_string(), h.clone());
        Ok(h)
    }

    /// How long verification checks keep observing (`[worker] check_watch_ms`, `check_poll_ms`).
    fn watch(&self) -> Option<Watch> {
        let w = &self.config.worker;
        (w.check_watch_ms > 0 && w.check_poll_ms > 0).then(|| Watch {
            window: Duration::from_millis(w.check_watch_ms),
            poll: Duration::from_millis(w.check_poll_ms),
        })
    }

    fn backoff(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.worker.fail_retry_backoff_ms))
    }
}

fn input_of(ctx: &StepContext, job: Job, target_name: String) -> StepInput {
    StepInput {
        target_name,
        step: job.job_type,
        variables: job.variables,
        headers: job.custom_headers,
        process_instance_key: job.process_instance_key,
        job_key: job.key,
        worker: if job.worker.is_empty() { ctx.worker_name.clone() } else { job.worker },
        element_id: job.element_id,
        element_instance_key: job.element_instance_key,
    }
}

/// Converts a step outcome into what the worker sends to the gateway.
pub fn to_job_outcome(outcome: StepOutcome, step: &str, retry_backoff: Option<Duration>) -> JobOutcome {
    match outcome {
        StepOutcome::Done { mut variables, already_done } => {
            variables.insert("alreadyDone".into(), json!(already_done));
            JobOutcome::Complete(variables)
        }
        StepOutcome::Refused { code, message, field, mut variables } => {
            // messages can quote client errors (URLs): never let credentials reach the engine
            let message = scrub(&message);
            let mut last = Map::new();
            last.insert("code".into(), json!(code));
            last.insert("message".into(), json!(message));
            last.insert("step".into(), json!(step));
            if let Some(f) = field {
                last.insert("field".into(), json!(f));
            }
            variables.insert("lastError".into(), Value::Object(last));
            JobOutcome::BpmnError { code: code.to_string(), message, variables }
        }
        StepOutcome::Retry { message } => JobOutcome::fail(scrub(&message), retry_backoff),
        StepOutcome::Verdict { deny } => JobOutcome::CompleteListener { deny: deny.map(|m| scrub(&m)) },
    }
}

/// Local variable of a failing task (set with FailJob, read back on the next activation) that
/// carries the transient-retry budget: `{"attempts": n, "backoffMs": total, "firstFailureAt": t}`.
pub const TRANSIENT_RETRY_VAR: &str = "c8drTransientRetry";

/// How a job failure spends the transient-retry budget (`worker.transient_retry`).
///
/// Every `StepOutcome::Retry` is a failure worth retrying (permanent target answers are BPMN
/// errors, see `procedure::StepOutcome::from`), and every step re-observes before acting, so a
/// retry is safe. While the back-offs of this task's failures add up to at most `window_ms`, the
/// job keeps its retries and the back-off doubles (from `initial_backoff_ms`, capped at
/// `max_backoff_ms`); the attempt count travels in the task's local variable
/// [`TRANSIENT_RETRY_VAR`], so another worker replica continues the same budget. Once the window
/// is used up, each failure spends one job retry (with `fallback_backoff`), so an incident shows a
/// failure that outlasted the window.
pub fn transient_failure(
    cfg: &TransientRetryConfig,
    job_retries: i32,
    retry_state: Option<&Value>,
    message: &str,
    fallback_backoff: Option<Duration>,
) -> JobOutcome {
    let message = scrub(message);
    let prev = retry_state;
    let attempts_before = prev.and_then(|v| v.get("attempts")).and_then(Value::as_u64).unwrap_or(0);
    let waited_before = prev.and_then(|v| v.get("backoffMs")).and_then(Value::as_u64).unwrap_or(0);
    let first = prev
        .and_then(|v| v.get("firstFailureAt"))
        .cloned()
        .unwrap_or_else(|| json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    let attempts = attempts_before + 1;
    let exp = u32::try_from(attempts_before.min(32)).unwrap_or(32);
    let backoff_ms = cfg
        .initial_backoff_ms
        .max(1)
        .saturating_mul(1u64 << exp)
        .min(cfg.max_backoff_ms.max(cfg.initial_backoff_ms).max(1));
    let waited = waited_before.saturating_add(backoff_ms);
    let within = job_retries > 0 && waited <= cfg.window_ms;
    let mut state = Map::new();
    state.insert("attempts".into(), json!(attempts));
    state.insert("backoffMs".into(), json!(if within { waited } else { waited_before }));
    state.insert("firstFailureAt".into(), first);
    let variables = crate::procedure::vars([(TRANSIENT_RETRY_VAR, Value::Object(state))]);
    if within {
        JobOutcome::Fail {
            message: format!(
                "{message} (transient failure {attempts}; retried in {} s, {} s of the {} s retry window used)",
                backoff_ms / 1000,
                waited / 1000,
                cfg.window_ms / 1000
            ),
            retry_backoff: Some(Duration::from_millis(backoff_ms)),
            retries: Some(job_retries),
            variables,
        }
    } else {
        let message = if cfg.window_ms > 0 {
            format!(
                "{message} (still failing after {attempts} attempts; the {} s transient retry window is used up)",
                cfg.window_ms / 1000
            )
        } else {
            message
        };
        JobOutcome::Fail { message, retry_backoff: fallback_backoff, retries: None, variables }
    }
}

/// Journals a refusal made before a step could run (no target to run it against).
fn journal_refusal(ctx: &StepContext, job: &Job, target: &str, outcome: StepOutcome) -> StepOutcome {
    let StepOutcome::Refused { code, message, .. } = &outcome else {
        return outcome;
    };
    let entry = JournalEntry {
        time: chrono::Utc::now(),
        kind: EntryKind::Outcome,
        target: target.to_string(),
        step: job.job_type.clone(),
        element_id: job.element_id.clone(),
        process_instance_key: job.process_instance_key,
        job_key: job.key,
        worker: if job.worker.is_empty() { ctx.worker_name.clone() } else { job.worker.clone() },
        region: None,
        action: "refused".into(),
        request: (*code).to_string(),
        status: String::new(),
        message: message.clone(),
    };
    match ctx.journal.append(&entry) {
        Ok(()) => outcome,
        Err(e) => StepOutcome::retry(e.to_string()),
    }
}

/// Handles one activated job: runs its step ([`run_job`]) and maps what it decided to the
/// command the worker sends ([`job_outcome`]), all in one `job` span.
pub async fn handle(ctx: &StepContext, job: Job) -> JobOutcome {
    let span = tracing::info_span!("job", job_type = %job.job_type, job_key = job.key, process_instance_key = job.process_instance_key, element_id = %job.element_id);
    let job_type = job.job_type.clone();
    let label = if job.element_id.is_empty() { job.job_type.clone() } else { job.element_id.clone() };
    let (job_retries, retry_state) = (job.retries, job.variables.get(TRANSIENT_RETRY_VAR).cloned());
    let outcome = run_job(ctx, job).instrument(span.clone()).await;
    span.in_scope(|| job_outcome(ctx, &job_type, &label, job_retries, retry_state.as_ref(), outcome))
}

/// Resolves the job's target and runs its step (see `procedure::steps`). A job whose target
/// cannot be resolved is refused (INVALID_INPUT naming `target`) and journaled.
async fn run_job(ctx: &StepContext, job: Job) -> StepOutcome {
    let known: Vec<&String> = ctx.config.targets.keys().collect();
    let target_name = match job.variables.get("target") {
        Some(Value::String(s)) if ctx.config.targets.contains_key(s) => s.clone(),
        other => {
            let got = other.map_or("nothing".to_string(), |v| v.to_string());
            let outcome = StepOutcome::invalid(
                "target",
                format!(
                    "variable `target` must name a configured target ({known:?}), got {got}: start the process with one of them"
                ),
            );
            let named = match other {
                Some(Value::String(s)) => s.clone(),
                _ => got,
            };
            return journal_refusal(ctx, &job, &named, outcome);
        }
    };
    let target = &ctx.config.targets[&target_name];
    let handles = match ctx.handles(&target_name, target) {
        Ok(h) => h,
        Err(e) => {
            let outcome = StepOutcome::invalid("target", format!("target `{target_name}` is misconfigured: {e}"));
            return journal_refusal(ctx, &job, &target_name, outcome);
        }
    };
    let input = input_of(ctx, job, target_name);
    let env = StepEnv {
        input: &input,
        target,
        api: handles.api.as_ref(),
        platform: handles.platform.as_ref(),
        drill: handles.region_control.as_ref(),
        journal: &ctx.journal,
        recorder: ctx.recorder.as_ref(),
        written: Default::default(),
    };
    run_step_watching(&env, ctx.watch()).await
}

/// THE place where what a step decided becomes what the worker sends (kube-runtime's
/// `error_policy`): done -> complete (with `alreadyDone`), refused -> BPMN error (with
/// `lastError`), retry -> fail within the transient-retry budget, verdict -> complete the
/// listener. Logs the outcome once; messages are scrubbed of credentials.
fn job_outcome(
    ctx: &StepContext,
    job_type: &str,
    label: &str,
    job_retries: i32,
    retry_state: Option<&Value>,
    outcome: StepOutcome,
) -> JobOutcome {
    match &outcome {
        StepOutcome::Done { already_done, .. } => {
            tracing::info!(job_type, already_done, "step done")
        }
        StepOutcome::Refused { code, message, .. } => {
            tracing::warn!(job_type, code, message = %scrub(message), "step refused")
        }
        StepOutcome::Retry { message } => {
            tracing::warn!(job_type, message = %scrub(message), "step failed, will be retried")
        }
        StepOutcome::Verdict { deny: None } => tracing::info!(job_type, "transition allowed"),
        StepOutcome::Verdict { deny: Some(reason) } => {
            tracing::warn!(job_type, reason = %scrub(reason), "transition denied")
        }
    }
    match outcome {
        StepOutcome::Retry { message } => {
            transient_failure(&ctx.config.worker.transient_retry, job_retries, retry_state, &message, ctx.backoff())
        }
        other => to_job_outcome(other, label, ctx.backoff()),
    }
}

/// The worker-runtime handler for every c8dr job type: runs [`handle`] with a shared context.
/// `c8dr worker` and `c8dr rehearse` register it under each of [`JOB_TYPES`].
pub fn handler(ctx: Arc<StepContext>) -> crate::zeebe::worker::Handler {
    crate::zeebe::worker::handler_fn(move |job| {
        let ctx = ctx.clone();
        async move { handle(&ctx, job).await }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_and_the_context_is_shareable() {
        fn is_send<T: Send>(_: &T) {}
        fn is_sync<T: Send + Sync>() {}
        is_sync::<StepContext>();
        let ctx = StepContext::new(Arc::new(Config::default()));
        let job = Job {
            key: 1,
            job_type: "c8dr.notify".into(),
            process_instance_key: 1,
            bpmn_process_id: String::new(),
            process_definition_key: 1,
            element_id: String::new(),
            element_instance_key: 1,
            custom_headers: Default::default(),
            variables: Map::new(),
            retries: 1,
            deadline: 0,
            worker: String::new(),
            tenant_id: String::new(),
        };
        let fut = handle(&ctx, job);
        is_send(&fut);
    }

    #[test]
    fn outcomes_map_to_gateway_commands() {
        let refused = StepOutcome::invalid("lostRegion", "must be 0 or 1");
        match to_job_outcome(refused, "remove-brokers", None) {
            JobOutcome::BpmnError { code, variables, .. } => {
                assert_eq!(code, "INVALID_INPUT");
                assert_eq!(
                    variables["lastError"],
                    json!({"code": "INVALID_INPUT", "message": "must be 0 or 1", "step": "remove-brokers", "field": "lostRegion"})
                );
            }
            other => panic!("{other:?}"),
        }
        let done = StepOutcome::already_done(Map::new());
        assert_eq!(
            to_job_outcome(done, "x", None),
            JobOutcome::Complete(crate::procedure::vars([("alreadyDone", json!(true))]))
        );
        let retry = StepOutcome::retry("503");
        let backoff = Some(Duration::from_millis(5));
        assert_eq!(to_job_outcome(retry, "x", backoff), JobOutcome::fail("503", backoff));
        // credentials in URLs never reach the job's error message or lastError
        let leaky = "lab control GET /x: error sending request for url (http://ops:hunter2@lab:8080/x)";
        match to_job_outcome(StepOutcome::retry(leaky), "x", None) {
            JobOutcome::Fail { message, .. } => assert!(!message.contains("hunter2"), "{message}"),
            other => panic!("{other:?}"),
        }
        match to_job_outcome(StepOutcome::refused("PRECONDITION_FAILED", leaky), "x", None) {
            JobOutcome::BpmnError { message, variables, .. } => {
                assert!(!message.contains("hunter2"), "{message}");
                assert!(!variables["lastError"].to_string().contains("hunter2"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(JOB_TYPES.len(), 27);
        assert!(JOB_TYPES.iter().all(|t| t.starts_with("c8dr.")));
    }

    /// Transient failures keep the job's retries while the back-offs fit the window, doubling
    /// up to the cap; the budget travels in the task-local variable, so a second worker (a fresh
    /// activation carrying the variable) continues it. Before, every failure spent one of the
    /// BPMN's 3 retries with a fixed 5 s back-off: an incident after seconds.
    #[test]
    fn transient_failures_spend_a_window_of_back_offs_before_the_job_retries() {
        let cfg = TransientRetryConfig {
            window_ms: 100_000,
            initial_backoff_ms: 5_000,
            max_backoff_ms: 30_000,
            read_pause_ms: 1,
        };
        let fallback = Some(Duration::from_millis(1_234));
        let mut state: Option<Value> = None;
        let mut backoffs = Vec::new();
        loop {
            match transient_failure(&cfg, 3, state.as_ref(), "target unavailable: 503", fallback) {
                JobOutcome::Fail { retries: Some(r), retry_backoff: Some(b), variables, message } => {
                    assert_eq!(r, 3, "retries are kept while the window lasts");
                    assert!(message.starts_with("target unavailable: 503 (transient failure"), "{message}");
                    backoffs.push(b.as_millis() as u64);
                    state = variables.get(TRANSIENT_RETRY_VAR).cloned();
                }
                JobOutcome::Fail { retries: None, retry_backoff, message, variables } => {
                    assert_eq!(retry_backoff, fallback);
                    assert!(message.contains("transient retry window is used up"), "{message}");
                    assert_eq!(variables[TRANSIENT_RETRY_VAR]["attempts"], json!(backoffs.len() + 1));
                    break;
                }
                other => panic!("{other:?}"),
            }
            assert!(backoffs.len() < 50, "the window never ends");
        }
        assert_eq!(backoffs, [5_000, 10_000, 20_000, 30_000, 30_000]);
        assert!(backoffs.iter().sum::<u64>() <= cfg.window_ms);
        // window 0: the old behaviour, one retry spent per failure
        let off = TransientRetryConfig { window_ms: 0, ..cfg };
        assert!(matches!(transient_failure(&off, 3, None, "x", fallback), JobOutcome::Fail { retries: None, .. }));
        // a job without retries left (an operator's 0) is not revived by the budget
        assert!(matches!(transient_failure(&cfg, 0, None, "x", fallback), JobOutcome::Fail { retries: None, .. }));
        // secrets in the message never reach the engine
        match transient_failure(&cfg, 3, None, "GET http://u:hunter2@es/x: 503", None) {
            JobOutcome::Fail { message, .. } => assert!(!message.contains("hunter2"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    /// Reads are retried in place on transient errors; the mutating call never is.
    #[tokio::test]
    async fn reads_are_retried_in_place_mutations_are_not() {
        use crate::procedure::fake::FakeTarget;
        let fake = Arc::new(FakeTarget::healthy(8, 8, 4));
        let api = RetryingReads { inner: fake.clone(), attempts: 4, first_pause: Duration::from_millis(1) };
        fake.lock().fail_next = 3;
        assert!(api.cluster(0).await.is_ok(), "three transient failures, fourth attempt answers");
        fake.lock().fail_next = 4;
        assert!(api.cluster(0).await.is_err_and(|e| e.is_transient()), "after four attempts the error is the step's");
        fake.lock().fail_next = 1;
        let m = Mutation::PauseExporting;
        assert!(api.mutate(0, m).await.is_err(), "a failed mutation is not retried here");
        assert_eq!(fake.mutations(), 0);
        assert_eq!(fake.lock().fail_next, 0);
    }

    /// Only answered failures are retried in place: a lost region's silence (connection refused,
    /// no status) is what the split-brain check expects to see at once, not 1.4 s later.
    #[test]
    fn unanswered_reads_are_not_retried_in_place() {
        use crate::procedure::api::{ApiError, ApiErrorKind};
        assert!(RetryingReads::retry_in_place(&ApiError::new(ApiErrorKind::Transient, Some(503), "503")));
        assert!(RetryingReads::retry_in_place(&ApiError::new(ApiErrorKind::Malformed, Some(200), "bad json")));
        assert!(!RetryingReads::retry_in_place(&ApiError::transient("connection refused")));
        assert!(!RetryingReads::retry_in_place(&ApiError::new(ApiErrorKind::Rejected, Some(400), "bad")));
    }

    /// Issue 9.7: steps decide from the call records on the process instance; the journal is an
    /// audit copy. A damaged line claiming a resume changes no decision (the records say
    /// nothing was resumed: the resume is made); a journal moved away while the worker runs
    /// cannot take the audit copy, so the job fails before any call and nothing is mutated.
    #[tokio::test]
    async fn steps_decide_from_the_records_and_a_moved_journal_stops_the_call() {
        use crate::procedure::fake::{FakePlatform, FakeTarget};
        use crate::procedure::{StepEnv, StepInput, run_step};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let pik = 2251799813685249_i64;
        let torn_resume = format!(
            r#"{{"time":"2026-01-01T00:00:00Z","kind":"call","target":"lab","step":"c8dr.resume-exporting","elementId":"resume","processInstanceKey":{pik},"jobKey":1,"worker":"w","region":0,"action":"resume-expo"#
        );
        std::fs::write(&path, format!("{torn_resume}\n")).unwrap();
        let journal = Journal::new(&path);
        let api = FakeTarget::healthy(8, 8, 4);
        let plat = FakePlatform::running();
        let target = crate::procedure::regions::tests_support::target();
        let recorder = crate::procedure::record::MemoryRecorder::default();
        let input = |step: &str| StepInput {
            target_name: "lab".into(),
            step: format!("c8dr.{step}"),
            variables: crate::procedure::vars([("survivingRegion", json!(0)), ("lostRegion", json!(1))]),
            process_instance_key: pik,
            job_key: 1,
            worker: "w".into(),
            element_id: step.into(),
            ..Default::default()
        };
        let run = async |input: StepInput, journal: &Journal| {
            let env = StepEnv {
                input: &input,
                target: &target,
                api: &api,
                platform: &plat,
                drill: &plat,
                journal,
                recorder: &recorder,
                written: Default::default(),
            };
            run_step(&env).await
        };
        match run(input("resume-exporting"), &journal).await {
            StepOutcome::Done { already_done: false, .. } => {}
            other => panic!("the damaged journal line decided: {other:?}"),
        }
        assert_eq!(api.mutations(), 1);
        std::fs::write(&path, "").unwrap();
        let journal = Journal::new(&path);
        assert!(matches!(run(input("pause-exporting"), &journal).await, StepOutcome::Done { .. }));
        assert_eq!(api.mutations(), 2);
        // moved away while the worker runs: nothing decided, nothing written anywhere
        std::fs::rename(&path, dir.path().join("moved.jsonl")).unwrap();
        match run(input("resume-exporting"), &journal).await {
            StepOutcome::Retry { message } => assert!(message.contains("moved"), "{message}"),
            other => panic!("called without an audit copy: {other:?}"),
        }
        assert_eq!(api.mutations(), 2);
        assert!(!path.exists());
    }

    /// A permanent rejection (4xx) is a BPMN error with the target's answer, not a retry.
    #[test]
    fn a_permanent_rejection_goes_to_a_person() {
        use crate::procedure::api::{ApiError, ApiErrorKind};
        let e = ApiError::new(ApiErrorKind::Rejected, Some(400), "unknown field [foo] at http://u:pw@es/_snapshot");
        match to_job_outcome(StepOutcome::from(e), "register", None) {
            JobOutcome::BpmnError { code, message, variables } => {
                assert_eq!(code, "TARGET_REJECTED");
                assert!(message.contains("HTTP 400") && message.contains("unknown field [foo]"), "{message}");
                assert!(!message.contains("pw@") && !Value::Object(variables).to_string().contains("pw@"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let transient = ApiError::new(ApiErrorKind::Transient, Some(503), "unavailable");
        assert!(matches!(StepOutcome::from(transient), StepOutcome::Retry { .. }));
    }

    /// docs/jobs.md has one row per row of the step table, with the table's description.
    #[test]
    fn every_documented_job_type_is_registered() {
        use crate::procedure::steps::{STEPS, find};
        let doc = include_str!("../docs/jobs.md");
        let rows: Vec<(String, &str)> = doc
            .lines()
            .filter(|l| l.starts_with("| `c8dr."))
            .map(|l| {
                let cells: Vec<&str> = l.split(" | ").collect();
                (cells[0].trim_start_matches("| ").trim_matches('`').to_string(), cells[1].trim())
            })
            .collect();
        assert_eq!(rows.len(), STEPS.len(), "docs/jobs.md rows vs the step table");
        for (t, description) in rows {
            let spec = find(&t).unwrap_or_else(|| panic!("{t} is documented but not registered"));
            assert_eq!(description, spec.description, "{t}: docs/jobs.md says what src/procedure/steps.rs does not");
        }
        assert_eq!(JOB_TYPES, STEPS.iter().map(|s| s.job_type).collect::<Vec<_>>());
        assert_eq!(job_types(), JOB_TYPES);
    }
}
