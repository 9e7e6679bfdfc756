//! The job worker runtime, modelled on Camunda's Java client.
//!
//! Per job type:
//! - a StreamActivatedJobs stream (when `stream_enabled`), reopened whenever it ends or fails;
//! - long-poll ActivateJobs as backfill (the stream only pushes jobs that become activatable
//!   while it is open), asking for the free slots whenever fewer than 70% of `max_jobs_active`
//!   handlers run, and pausing `poll_interval_ms` after an empty poll;
//! - at most `max_jobs_active` handlers at once;
//! - exponential back-off with jitter (factor 1.6, ±10%) after gateway errors; connection and
//!   credential errors (gateway unreachable, token endpoint failing or refusing) close one
//!   [`Gate`] shared by all loops, so a failing gateway or identity provider sees one probe per
//!   back-off step, not one call per loop;
//! - repeated identical error lines are rate-limited: the first is logged, then at most one per
//!   [`LOG_REPEAT_WINDOW`] saying how many were suppressed;
//! - outcomes become CompleteJob / FailJob (`retries - 1`, retry back-off) / ThrowError;
//!   NOT_FOUND on those is logged (the job timed out or was cancelled), never fatal;
//! - a handler still running at half the job timeout gets UpdateJobTimeout, repeatedly;
//! - a handler panic fails that job with the panic message; the worker keeps going.
//!
//! [`Worker::run`] returns after its shutdown future completes and the in-flight jobs finished
//! (or `shutdown_grace_ms` ran out). Dropping the run future (or [`WorkerHandle::abort`]) stops
//! everything at once, handlers included: rehearsals use this to simulate a crash.
use super::backoff::{Backoff, Gate, Pass};
use super::client::GatewayClient;
use super::error::ClientError;
use super::job::{Job, JobOutcome};
use crate::config::WorkerConfig;
use crate::gateway_protocol as pb;
use crate::observe::{Health, LogDecision, LogLimiter, Metrics};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// A job handler: takes the job, returns what to tell the engine.
pub type Handler = Arc<dyn Fn(Job) -> BoxFuture<'static, JobOutcome> + Send + Sync>;

/// Wraps an async closure as a [`Handler`]: `handler_fn(|job| async move { .. })`.
pub fn handler_fn<F, Fut>(f: F) -> Handler
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobOutcome> + Send + 'static,
{
    Arc::new(move |job| Box::pin(f(job)))
}

/// Polling resumes when fewer than this share of `max_jobs_active` handlers run.
const POLL_THRESHOLD: f64 = 0.7;
/// How often a complete/fail/throw is attempted when the gateway is unreachable or overloaded.
const REPORT_ATTEMPTS: u32 = 5;
/// An identical error line is logged at most once per this window (with the suppressed count).
pub const LOG_REPEAT_WINDOW: Duration = Duration::from_secs(30);
/// Longest pause of the shared connection gate: at least this, or `backoff_max_ms` if longer.
pub const CONNECTION_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Errors every call would hit alike until something outside changes: they close the shared
/// [`Gate`] instead of being retried by each loop on its own.
pub fn is_connection_error(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Unavailable { .. }
            | ClientError::Unauthenticated { .. }
            | ClientError::TokenEndpoint { .. }
            | ClientError::TokenRejected { .. }
            | ClientError::Secret(_)
            | ClientError::NotGrpc { .. }
    )
}

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid worker setting {field}: {problem}; fix [worker] {field} in the configuration")]
    InvalidConfig { field: &'static str, problem: String },
    #[error("the worker task ended abnormally: {0}")]
    Task(String),
}

/// Builds a [`Worker`]: one handler per job type.
pub struct WorkerBuilder {
    client: GatewayClient,
    config: WorkerConfig,
    handlers: BTreeMap<String, Handler>,
    metrics: Arc<Metrics>,
    health: Option<(Arc<Health>, Duration)>,
}

impl WorkerBuilder {
    /// Registers `handler` for `job_type` (a later registration of the same type replaces it).
    pub fn handler(mut self, job_type: impl Into<String>, handler: Handler) -> Self {
        self.handlers.insert(job_type.into(), handler);
        self
    }

    /// Records metrics into `metrics` (by default a private registry).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Calls Topology every `interval` and records successes in `health` (for `/readyz`).
    pub fn health(mut self, health: Arc<Health>, interval: Duration) -> Self {
        self.health = Some((health, interval));
        self
    }

    /// The job types registered so far.
    pub fn job_types(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    pub fn build(self) -> Worker {
        Worker {
            client: self.client,
            config: self.config,
            handlers: self.handlers,
            metrics: self.metrics,
            health: self.health,
        }
    }
}

/// The job worker. See the module documentation.
pub struct Worker {
    client: GatewayClient,
    config: WorkerConfig,
    handlers: BTreeMap<String, Handler>,
    metrics: Arc<Metrics>,
    health: Option<(Arc<Health>, Duration)>,
}

/// A worker running as a tokio task.
pub struct WorkerHandle {
    task: tokio::task::JoinHandle<Result<(), WorkerError>>,
}

impl WorkerHandle {
    /// Kills the worker at once: no more calls to the gateway, running handlers are dropped
    /// mid-flight (their jobs time out at the engine and are activated again), like a crash.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the worker to return (after its shutdown future completed).
    pub async fn join(self) -> Result<(), WorkerError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(WorkerError::Task(e.to_string())),
        }
    }
}

/// State shared by the loops and job tasks of one job type.
struct TypeCtx {
    job_type: String,
    handler: Handler,
    client: GatewayClient,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    running: AtomicUsize,
    freed: Notify,
    total_running: Arc<AtomicUsize>,
    gate: Arc<Gate>,
    log: Arc<LogLimiter>,
}

type JobTasks = Arc<Mutex<JoinSet<()>>>;

impl Worker {
    pub fn builder(client: GatewayClient, config: WorkerConfig) -> WorkerBuilder {
        WorkerBuilder { client, config, handlers: BTreeMap::new(), metrics: Arc::new(Metrics::new()), health: None }
    }

    /// Runs this worker on its own task; see [`WorkerHandle`].
    pub fn spawn(self, shutdown: impl Future<Output = ()> + Send + 'static) -> WorkerHandle {
        WorkerHandle { task: tokio::spawn(self.run(shutdown)) }
    }

    fn validate(&self) -> Result<(), WorkerError> {
        let c = &self.config;
        if c.max_jobs_active == 0 {
            return Err(WorkerError::InvalidConfig { field: "max_jobs_active", problem: "must be at least 1".into() });
        }
        if c.job_timeout_ms < 2 {
            return Err(WorkerError::InvalidConfig { field: "job_timeout_ms", problem: "must be at least 2".into() });
        }
        if c.name.trim().is_empty() {
            return Err(WorkerError::InvalidConfig { field: "name", problem: "must not be empty".into() });
        }
        Ok(())
    }

    /// Activates and handles jobs until `shutdown` completes, then lets in-flight jobs finish
    /// for up to `shutdown_grace_ms` and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        self.validate()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let total_running = Arc::new(AtomicUsize::new(0));
        // Owned by this future only: dropping it aborts the loops and then every job task.
        let job_tasks: JobTasks = Arc::new(Mutex::new(JoinSet::new()));
        let mut loops = JoinSet::new();
        let gate = Arc::new(Gate::new(
            Duration::from_millis(self.config.backoff_min_ms),
            Duration::from_millis(self.config.backoff_max_ms).max(CONNECTION_BACKOFF_MAX),
        ));
        let log = Arc::new(LogLimiter::new(LOG_REPEAT_WINDOW));
        self.metrics.set_handlers(self.handlers.len());
        if self.handlers.is_empty() {
            tracing::warn!("no job handlers registered: the worker activates nothing");
        }
        for (job_type, handler) in &self.handlers {
            let ctx = Arc::new(TypeCtx {
                job_type: job_type.clone(),
                handler: handler.clone(),
                client: self.client.clone(),
                config: self.config.clone(),
                metrics: self.metrics.clone(),
                slots: Arc::new(Semaphore::new(self.config.max_jobs_active as usize)),
                running: AtomicUsize::new(0),
                freed: Notify::new(),
                total_running: total_running.clone(),
                gate: gate.clone(),
                log: log.clone(),
            });
            if self.config.stream_enabled {
                loops.spawn(stream_loop(ctx.clone(), job_tasks.clone(), stop_rx.clone()));
            }
            loops.spawn(poll_loop(ctx, job_tasks.clone(), stop_rx.clone()));
        }
        if let Some((health, interval)) = &self.health {
            loops.spawn(topology_loop(
                self.client.clone(),
                health.clone(),
                *interval,
                self.metrics.clone(),
                log.clone(),
                stop_rx.clone(),
            ));
        }
        tracing::info!(
            worker = %self.config.name,
            job_types = ?self.handlers.keys().collect::<Vec<_>>(),
            max_jobs_active = self.config.max_jobs_active,
            stream = self.config.stream_enabled,
            "job worker started"
        );

        shutdown.await;
        let _ = stop_tx.send(true);
        loops.abort_all();
        while loops.join_next().await.is_some() {}

        let grace = Duration::from_millis(self.config.shutdown_grace_ms);
        let in_flight = total_running.load(Ordering::SeqCst);
        tracing::info!(in_flight, grace_ms = grace.as_millis() as u64, "shutting down: activation stopped");
        let drained = tokio::time::timeout(grace, async {
            while total_running.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok();
        if !drained {
            let left = total_running.load(Ordering::SeqCst);
            tracing::warn!(
                left,
                "shutdown grace period over; abandoning the jobs still running (they time out at the engine)"
            );
        }
        lock(&job_tasks).abort_all();
        tracing::info!("job worker stopped");
        Ok(())
    }
}

fn lock(tasks: &JobTasks) -> std::sync::MutexGuard<'_, JoinSet<()>> {
    tasks.lock().unwrap_or_else(|p| p.into_inner())
}

fn spawn_job(ctx: &Arc<TypeCtx>, tasks: &JobTasks, job: pb::ActivatedJob, permit: OwnedSemaphorePermit) {
    ctx.running.fetch_add(1, Ordering::SeqCst);
    ctx.total_running.fetch_add(1, Ordering::SeqCst);
    ctx.metrics.job_activated(&ctx.job_type);
    ctx.metrics.in_flight_add(&ctx.job_type, 1);
    let mut set = lock(tasks);
    // Reap finished tasks so the set does not grow.
    while set.try_join_next().is_some() {}
    set.spawn(handle_job(ctx.clone(), job, permit));
}

/// Waits until `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stopped(stop) => true,
    }
}

async fn poll_loop(ctx: Arc<TypeCtx>, tasks: JobTasks, mut stop: watch::Receiver<bool>) {
    let cap = ctx.config.max_jobs_active as usize;
    let mut backoff = Backoff::new(
        Duration::from_millis(ctx.config.backoff_min_ms),
        Duration::from_millis(ctx.config.backoff_max_ms),
    );
    loop {
        if *stop.borrow() {
            return;
        }
        let running = ctx.running.load(Ordering::SeqCst);
        let free = ctx.slots.available_permits();
        if (running as f64) >= cap as f64 * POLL_THRESHOLD || free == 0 {
            tokio::select! {
                _ = ctx.freed.notified() => continue,
                _ = stopped(&mut stop) => return,
            }
        }
        let req = pb::ActivateJobsRequest {
            r#type: ctx.job_type.clone(),
            worker: ctx.config.name.clone(),
            timeout: ctx.config.job_timeout_ms as i64,
            max_jobs_to_activate: free as i32,
            fetch_variable: Vec::new(),
            request_timeout: ctx.config.request_timeout_ms as i64,
            tenant_ids: Vec::new(),
        };
        let pass = tokio::select! {
            p = ctx.gate.pass() => p,
            _ = stopped(&mut stop) => return,
        };
        let result = tokio::select! {
            r = ctx.client.activate_jobs(req) => r,
            _ = stopped(&mut stop) => return,
        };
        match result {
            Err(e) if is_connection_error(&e) => {
                ctx.metrics.gateway_error("ActivateJobs", e.kind());
                let (delay, new_step) = ctx.gate.failure(pass == Pass::Probe);
                if new_step {
                    log_gateway_error(&ctx, "ActivateJobs", &e, delay);
                }
                // the gate makes every loop wait out the delay
            }
            Ok(jobs) => {
                ctx.gate.success();
                backoff.reset();
                let empty = jobs.is_empty();
                for job in jobs {
                    tracing::debug!(job_key = job.key, job_type = %ctx.job_type, "job activated by poll");
                    let permit = tokio::select! {
                        p = ctx.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                        _ = stopped(&mut stop) => return,
                    };
                    spawn_job(&ctx, &tasks, job, permit);
                }
                if empty && sleep_or_stop(Duration::from_millis(ctx.config.poll_interval_ms), &mut stop).await {
                    return;
                }
            }
            Err(e) => {
                // the gateway answered: the connection is fine, this call was not
                ctx.gate.success();
                ctx.metrics.gateway_error("ActivateJobs", e.kind());
                let delay = backoff.next_delay();
                log_gateway_error(&ctx, "ActivateJobs", &e, delay);
                if sleep_or_stop(delay, &mut stop).await {
                    return;
                }
            }
        }
    }
}

async fn stream_loop(ctx: Arc<TypeCtx>, tasks: JobTasks, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(
        Duration::from_millis(ctx.config.backoff_min_ms),
        Duration::from_millis(ctx.config.backoff_max_ms),
    );
    let mut first = true;
    loop {
        if !first {
            ctx.metrics.stream_reconnect(&ctx.job_type);
        }
        first = false;
        let req = pb::StreamActivatedJobsRequest {
            r#type: ctx.job_type.clone(),
            worker: ctx.config.name.clone(),
            timeout: ctx.config.job_timeout_ms as i64,
            fetch_variable: Vec::new(),
            tenant_ids: Vec::new(),
        };
        let pass = tokio::select! {
            p = ctx.gate.pass() => p,
            _ = stopped(&mut stop) => return,
        };
        let opened = tokio::select! {
            r = ctx.client.stream_activated_jobs(req) => r,
            _ = stopped(&mut stop) => return,
        };
        match opened {
            Err(e) if is_connection_error(&e) => {
                ctx.metrics.gateway_error("StreamActivatedJobs", e.kind());
                let (delay, new_step) = ctx.gate.failure(pass == Pass::Probe);
                if new_step {
                    log_gateway_error(&ctx, "StreamActivatedJobs", &e, delay);
                }
                continue;
            }
            Err(e) => {
                ctx.gate.success();
                ctx.metrics.gateway_error("StreamActivatedJobs", e.kind());
                let delay = backoff.next_delay();
                log_gateway_error(&ctx, "StreamActivatedJobs", &e, delay);
                if sleep_or_stop(delay, &mut stop).await {
                    return;
                }
                continue;
            }
            Ok(mut stream) => {
                ctx.gate.success();
                backoff.reset();
                tracing::debug!(job_type = %ctx.job_type, "job stream open");
                loop {
                    let item = tokio::select! {
                        m = stream.message() => m,
                        _ = stopped(&mut stop) => return,
                    };
                    match item {
                        Ok(Some(job)) => {
                            tracing::debug!(job_key = job.key, job_type = %ctx.job_type, "job pushed by stream");
                            let permit = tokio::select! {
                                p = ctx.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                                _ = stopped(&mut stop) => return,
                            };
                            spawn_job(&ctx, &tasks, job, permit);
                        }
                        Ok(None) => {
                            tracing::debug!(job_type = %ctx.job_type, "job stream ended by the gateway; reopening");
                            break;
                        }
                        Err(status) => {
                            let e = ClientError::from_status("StreamActivatedJobs", ctx.client.address(), &status);
                            ctx.metrics.gateway_error("StreamActivatedJobs", e.kind());
                            if is_connection_error(&e) {
                                ctx.gate.failure(false);
                            }
                            if let LogDecision::Log { suppressed } = ctx.log.check(&e.to_string()) {
                                tracing::warn!(job_type = %ctx.job_type, error = %e, suppressed, "job stream failed; reopening");
                            }
                            break;
                        }
                    }
                }
                let delay = backoff.next_delay();
                if sleep_or_stop(delay, &mut stop).await {
                    return;
                }
            }
        }
    }
}

async fn topology_loop(
    client: GatewayClient,
    health: Arc<Health>,
    interval: Duration,
    metrics: Arc<Metrics>,
    log: Arc<LogLimiter>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match client.topology().await {
            Ok(_) => health.topology_ok(),
            Err(e) => {
                metrics.gateway_error("Topology", e.kind());
                if let LogDecision::Log { suppressed } = log.check(&format!("Topology|{e}")) {
                    tracing::warn!(error = %e, suppressed, "readiness check: Topology failed");
                }
            }
        }
        if sleep_or_stop(interval, &mut stop).await {
            return;
        }
    }
}

/// Logs a failed gateway call, rate-limited per identical error text (all job types share it:
/// one cause, one line).
fn log_gateway_error(ctx: &TypeCtx, rpc: &str, e: &ClientError, delay: Duration) {
    let LogDecision::Log { suppressed } = ctx.log.check(&e.to_string()) else {
        return;
    };
    let job_type = ctx.job_type.as_str();
    let backoff_ms = delay.as_millis() as u64;
    if e.is_retryable() {
        if suppressed > 0 {
            tracing::warn!(job_type, rpc, backoff_ms, suppressed, error = %e, "gateway call failed; backing off (repeated {suppressed} times since the last report)");
        } else {
            tracing::warn!(job_type, rpc, backoff_ms, error = %e, "gateway call failed; backing off");
        }
    } else if suppressed > 0 {
        tracing::error!(job_type, rpc, backoff_ms, suppressed, error = %e, "gateway call failed; backing off (repeated {suppressed} times since the last report)");
    } else {
        tracing::error!(job_type, rpc, backoff_ms, error = %e, "gateway call failed; backing off");
    }
}

/// Aborts a task when dropped (so aborting a job task also stops its handler).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Decrements the running counters when the job task ends, even when it is aborted.
struct RunningGuard(Arc<TypeCtx>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.total_running.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.in_flight_add(&self.0.job_type, -1);
        self.0.freed.notify_one();
    }
}

async fn handle_job(ctx: Arc<TypeCtx>, raw: pb::ActivatedJob, permit: OwnedSemaphorePermit) {
    let span = tracing::info_span!(
        "job",
        job_key = raw.key,
        job_type = %raw.r#type,
        process_instance_key = raw.process_instance_key,
        element_id = %raw.element_id,
    );
    async move {
        let _running = RunningGuard(ctx.clone());
        let _permit = permit;
        let started = Instant::now();
        let key = raw.key;
        let retries = raw.retries;
        let (outcome, label) = match Job::from_activated(&raw) {
            Err(e) => (JobOutcome::fail(e.to_string(), None), "fail"),
            Ok(job) => run_handler(&ctx, job).await,
        };
        let elapsed = started.elapsed();
        tracing::info!(outcome = label, duration_ms = elapsed.as_millis() as u64, "job handled");
        ctx.metrics.job_handled(&ctx.job_type, label, elapsed);
        report(&ctx, key, retries, &outcome).await;
    }
    .instrument(span)
    .await
}

/// Runs the handler on its own task (to catch panics), extending the job's timeout at half of
/// it while the handler runs.
async fn run_handler(ctx: &Arc<TypeCtx>, job: Job) -> (JobOutcome, &'static str) {
    let key = job.key;
    let handler = ctx.handler.clone();
    let mut task = tokio::spawn(async move { handler(job).await }.in_current_span());
    let _abort = AbortOnDrop(task.abort_handle());
    let timeout = Duration::from_millis(ctx.config.job_timeout_ms);
    let half = timeout / 2;
    let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
    let joined = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = extend.tick() => {
                match ctx.client.update_job_timeout(key, timeout).await {
                    Ok(()) => tracing::debug!(timeout_ms = timeout.as_millis() as u64, "handler still running: job timeout extended"),
                    Err(e) => {
                        ctx.metrics.gateway_error("UpdateJobTimeout", e.kind());
                        tracing::warn!(error = %e, "could not extend the job timeout");
                    }
                }
            }
        }
    };
    match joined {
        Ok(outcome) => {
            let label = match &outcome {
                JobOutcome::Complete(_) => "complete",
                JobOutcome::Fail { .. } => "fail",
                JobOutcome::BpmnError { .. } => "bpmn_error",
                JobOutcome::CompleteListener { deny: None } => "complete",
                JobOutcome::CompleteListener { deny: Some(_) } => "deny",
            };
            (outcome, label)
        }
        Err(e) => {
            let message = if e.is_panic() {
                let payload = e.into_panic();
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic payload)".into());
                format!("handler panicked: {text}")
            } else {
                "handler task was cancelled".to_string()
            };
            tracing::error!(%message, "job handler panicked; failing the job");
            (JobOutcome::fail(message, None), "panic")
        }
    }
}

/// Sends the outcome to the gateway, retrying transient errors a few times.
async fn report(ctx: &TypeCtx, key: i64, retries: i32, outcome: &JobOutcome) {
    let mut backoff = Backoff::new(
        Duration::from_millis(ctx.config.backoff_min_ms),
        Duration::from_millis(ctx.config.backoff_max_ms),
    );
    let default_backoff = Duration::from_millis(ctx.config.fail_retry_backoff_ms);
    for attempt in 1..=REPORT_ATTEMPTS {
        let (rpc, result) = match outcome {
            JobOutcome::Complete(vars) => ("CompleteJob", ctx.client.complete_job(key, vars).await),
            JobOutcome::Fail { message, retry_backoff, retries: keep, variables } => (
                "FailJob",
                ctx.client
                    .fail_job_with_variables(
                        key,
                        keep.unwrap_or(retries - 1).max(0),
                        message,
                        Some(retry_backoff.unwrap_or(default_backoff)),
                        variables,
                    )
                    .await,
            ),
            JobOutcome::BpmnError { code, message, variables } => {
                ("ThrowError", ctx.client.throw_error(key, code, message, variables).await)
            }
            JobOutcome::CompleteListener { deny } => {
                ("CompleteJob", ctx.client.complete_listener_job(key, deny.as_deref()).await)
            }
        };
        match result {
            Ok(()) => return,
            Err(e @ ClientError::NotFound { .. }) => {
                ctx.metrics.gateway_error(rpc, e.kind());
                tracing::warn!(rpc, error = %e, "job no longer exists (timed out or cancelled); outcome dropped");
                return;
            }
            Err(e) if e.is_retryable() && attempt < REPORT_ATTEMPTS => {
                ctx.metrics.gateway_error(rpc, e.kind());
                let delay = backoff.next_delay();
                tracing::warn!(rpc, attempt, backoff_ms = delay.as_millis() as u64, error = %e, "could not report the job outcome; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                ctx.metrics.gateway_error(rpc, e.kind());
                tracing::error!(rpc, error = %e, "could not report the job outcome; the job times out and is activated again");
                return;
            }
        }
    }
}
