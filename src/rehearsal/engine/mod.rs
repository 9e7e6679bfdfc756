//! The rehearsal engine: a Zeebe gateway (gRPC, `proto/gateway.proto`) + a Camunda 8.8 REST v2
//! subset + a BPMN interpreter for exactly the elements `bpmn/` uses, with Zeebe's semantics,
//! on the shared accelerated [`Clock`].
//!
//! - `parse`/`model`: BPMN -> executable model; anything not executed is rejected at deployment
//!   (INVALID_ARGUMENT naming the file, element id and type).
//! - `state`: the interpreter (element instances, scopes and variables, jobs, user tasks,
//!   timers, incidents, messages, event log) mutated under one lock by commands.
//! - `feel`: FEEL on dsntk, with Zeebe's conventions (see there for the two extensions).
//! - `grpc` / `rest`: the protocol edges.
//!
//! Time: BPMN timers, fail back-offs and message TTLs are simulated durations. Job timeouts
//! (ActivateJobs/StreamActivatedJobs/UpdateJobTimeout `timeout`) are taken as *real* durations,
//! because the worker's processing time is real: they are scaled by the clock speed into a
//! simulated deadline (epoch ms of the simulated clock, as returned in `ActivatedJob.deadline`).
//!
//! Not executed (rejected at deployment): message catch events, signals, escalations, timer
//! cycles, event sub-processes, multi-instance, script/send/receive/business-rule tasks,
//! job-worker user tasks, execution/task listeners, terminate/error end events, event-based and
//! inclusive gateways. Single partition, single tenant (`<default>`).
pub mod feel;
mod grpc;
pub mod model;
pub mod parse;
mod rest;
pub mod state;

use crate::rehearsal::clock::Clock;
use serde_json::{Map, Value as Json};
use state::user_tasks::CompletionOutcome;
use state::{CommandError, ElemState, State, UserTaskState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

pub use state::{CommandError as EngineCommandError, LogEvent};

/// One REST request and its answer, as seen by [`record_rest_exchanges`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RestExchange {
    /// `engine` (the rehearsal engine) or `lab` (a lab region's orchestration REST API).
    pub server: &'static str,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

static REST_RECORDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static REST_EXCHANGES: Mutex<Vec<RestExchange>> = Mutex::new(Vec::new());

/// From now on, every REST v2 answer of every engine and lab region in this process is kept
/// (for conformance checks against Camunda's schemas); [`take_rest_exchanges`] hands them out.
pub fn record_rest_exchanges() {
    REST_RECORDING.store(true, Ordering::SeqCst);
}

/// The exchanges recorded so far (and forgets them).
pub fn take_rest_exchanges() -> Vec<RestExchange> {
    std::mem::take(&mut *REST_EXCHANGES.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Axum middleware: records the exchange when [`record_rest_exchanges`] is on.
pub(crate) async fn record_rest(
    server: &'static str,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !REST_RECORDING.load(Ordering::Relaxed) {
        return next.run(req).await;
    }
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let res = next.run(req).await;
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let content_type =
        parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    REST_EXCHANGES.lock().unwrap_or_else(|p| p.into_inner()).push(RestExchange {
        server,
        method,
        path,
        status: parts.status.as_u16(),
        content_type,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// How to start the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub clock: Clock,
    pub grpc_addr: SocketAddr,
    pub rest_addr: SocketAddr,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        Self { clock: Clock::real(), grpc_addr: local, rest_addr: local }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("a deployment resource cannot be read: {0}")]
    Resource(String),
}

/// How long a held user task completion waits for its task listeners (real time) before the
/// request fails with 504, as the gateway's request timeout does.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a user task completion did not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompletionError {
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Camunda 8.8's rejection text.
    #[error(
        "Command 'COMPLETE' rejected with code 'INVALID_STATE': Completion of the User Task with key '{key}' was denied by Task Listener. Reason to deny: '{reason}'"
    )]
    Denied { key: i64, reason: String },
    #[error("Expected to complete user task with key '{0}', but it was canceled while its task listeners ran")]
    Canceled(i64),
    #[error(
        "The request timed out while user task '{0}' waited for its task listeners: is a worker for the listener job type running?"
    )]
    Timeout(i64),
}

/// The engine itself; see [`Engine::start`].
pub struct Engine;

pub(crate) struct Shared {
    state: Mutex<State>,
    clock: Clock,
    changes: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    grpc_addr: SocketAddr,
    rest_addr: SocketAddr,
    next_stream: AtomicU64,
}

/// A running engine. Cheap to clone; every clone talks to the same engine.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("grpc", &self.shared.grpc_addr)
            .field("rest", &self.shared.rest_addr)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum InstanceState {
    Active,
    Completed,
    Terminated,
}

/// An open user task, as `c8dr rehearse` answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTaskView {
    pub key: i64,
    pub element_id: String,
    pub name: Option<String>,
    pub form_id: Option<String>,
    pub process_instance_key: i64,
    pub bpmn_process_id: String,
    pub candidate_groups: Vec<String>,
    pub assignee: Option<String>,
    pub due_date: Option<String>,
    /// Variables visible to the task.
    pub variables: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentView {
    pub key: i64,
    pub process_instance_key: i64,
    pub element_id: String,
    pub element_instance_key: i64,
    pub error_type: String,
    pub message: String,
    pub job_key: Option<i64>,
}

/// An element instance as Operate shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementInstanceView {
    pub key: i64,
    pub process_instance_key: i64,
    pub element_id: String,
    pub element_type: String,
    /// The element's `name` in the BPMN (what Operate shows), if it has one.
    pub name: Option<String>,
    /// The enclosing scope's element instance (sub-process or process instance).
    pub flow_scope_key: Option<i64>,
    pub state: InstanceState,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: Option<chrono::DateTime<chrono::Utc>>,
}

/// Deployed process metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedProcessView {
    pub bpmn_process_id: String,
    pub version: i32,
    pub key: i64,
    pub resource_name: String,
}

fn element_name_in(s: &State, def_key: i64, element_id: &str) -> Option<String> {
    let p = s.processes.iter().find(|p| p.key == def_key)?;
    p.process.elements.get(element_id).and_then(|e| e.name.clone())
}

pub(crate) fn view_state(s: ElemState) -> InstanceState {
    match s {
        ElemState::Completed => InstanceState::Completed,
        ElemState::Terminated => InstanceState::Terminated,
        _ => InstanceState::Active,
    }
}

impl Engine {
    /// Binds the gRPC and REST listeners and starts serving.
    pub async fn start(opts: EngineOptions) -> Result<EngineHandle, EngineError> {
        let grpc = tokio::net::TcpListener::bind(opts.grpc_addr).await.map_err(|source| EngineError::Bind {
            what: "gRPC",
            addr: opts.grpc_addr,
            source,
        })?;
        let rest = tokio::net::TcpListener::bind(opts.rest_addr).await.map_err(|source| EngineError::Bind {
            what: "REST",
            addr: opts.rest_addr,
            source,
        })?;
        let grpc_addr =
            grpc.local_addr().map_err(|source| EngineError::Bind { what: "gRPC", addr: opts.grpc_addr, source })?;
        let rest_addr =
            rest.local_addr().map_err(|source| EngineError::Bind { what: "REST", addr: opts.rest_addr, source })?;
        let (changes, _) = watch::channel(0u64);
        let (shutdown, _) = watch::channel(false);
        let handle = EngineHandle {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new(opts.clock.now())),
                clock: opts.clock,
                changes,
                shutdown,
                grpc_addr,
                rest_addr,
                next_stream: AtomicU64::new(1),
            }),
        };
        tokio::spawn(grpc::serve(handle.clone(), grpc));
        tokio::spawn(rest::serve(handle.clone(), rest));
        tokio::spawn(drive_time(handle.clone()));
        tracing::info!(grpc = %grpc_addr, rest = %rest_addr, speed = handle.shared.clock.speed(), "rehearsal engine started");
        Ok(handle)
    }
}

/// Fires timers, job timeouts, back-offs and message expiries at their simulated due time.
async fn drive_time(h: EngineHandle) {
    let mut changes = h.shared.changes.subscribe();
    let mut shutdown = h.shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // mark changes seen *before* the tick: a change made after the tick (a new timer, say)
        // must wake this loop, or that timer fires only at the next 1 s wake-up
        changes.borrow_and_update();
        let next = h.with(|s| s.tick());
        let wait = match next {
            Some(due) => h.shared.clock.real_deadline(due).saturating_duration_since(std::time::Instant::now()),
            None => Duration::from_secs(1),
        }
        .min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait + Duration::from_millis(1)) => {}
            _ = changes.changed() => {}
            _ = shutdown.changed() => {}
        }
    }
}

impl EngineHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state at the current simulated time; notifies watchers when anything
    /// changed.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let (out, changed) = {
            let mut st = self.lock();
            st.now = self.shared.clock.now();
            let before = st.log.len();
            let out = f(&mut st);
            (out, st.log.len() != before)
        };
        if changed {
            self.shared.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        out
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.lock())
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    pub(crate) fn next_stream_id(&self) -> u64 {
        self.shared.next_stream.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shared.shutdown.subscribe()
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.shared.grpc_addr
    }

    pub fn rest_addr(&self) -> SocketAddr {
        self.shared.rest_addr
    }

    /// `http://127.0.0.1:PORT` of the Zeebe gRPC gateway.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.shared.grpc_addr)
    }

    /// `http://127.0.0.1:PORT` of the REST API (paths start with `/v2`).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.shared.rest_addr)
    }

    /// A receiver that ticks on every state change (cheap way to await progress).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Waits until `f` returns Some, re-checking on every state change; None after `timeout`
    /// (real time).
    pub async fn wait_for<T>(&self, timeout: Duration, mut f: impl FnMut(&EngineHandle) -> Option<T>) -> Option<T> {
        let mut rx = self.changes();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(v) = f(self) {
                return Some(v);
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return f(self),
            }
        }
    }

    /// The job types of the open `StreamActivatedJobs` streams, one entry per stream.
    pub fn job_streams(&self) -> Vec<String> {
        self.read(|s| s.streams.iter().map(|x| x.job_type.clone()).collect())
    }

    /// Deploys BPMN (.bpmn/.xml) and form (.form) resources atomically.
    pub fn deploy(&self, resources: Vec<(String, Vec<u8>)>) -> Result<Vec<DeployedProcessView>, EngineError> {
        let d = self.with(|s| s.deploy(&resources))?;
        Ok(d.processes
            .into_iter()
            .map(|p| DeployedProcessView {
                bpmn_process_id: p.bpmn_process_id,
                version: p.version,
                key: p.key,
                resource_name: p.resource_name,
            })
            .collect())
    }

    /// Deploys every .bpmn and .form file directly under `dir` (and `dir/forms`).
    pub fn deploy_dir(&self, dir: &std::path::Path) -> Result<Vec<DeployedProcessView>, EngineError> {
        let mut resources = Vec::new();
        for d in [dir.to_path_buf(), dir.join("forms")] {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
                if matches!(ext, "bpmn" | "form") {
                    let content =
                        std::fs::read(&p).map_err(|e| EngineError::Resource(format!("{}: {e}", p.display())))?;
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                    resources.push((name, content));
                }
            }
        }
        if resources.is_empty() {
            return Err(EngineError::Resource(format!("no .bpmn or .form files in {}", dir.display())));
        }
        self.deploy(resources)
    }

    /// Creates an instance of the latest version of `bpmn_process_id`.
    pub fn create_instance(&self, bpmn_process_id: &str, variables: Map<String, Json>) -> Result<i64, EngineError> {
        Ok(self.with(|s| s.create_instance(-1, bpmn_process_id, -1, variables))?.1)
    }

    pub fn cancel_instance(&self, process_instance_key: i64) -> Result<(), EngineError> {
        Ok(self.with(|s| s.cancel_instance(process_instance_key))?)
    }

    /// Publishes a message (`ttl` simulated; `message_id` for deduplication); returns the
    /// message key. `variables` must be a JSON object (or null).
    pub fn publish_message(
        &self,
        name: &str,
        correlation_key: &str,
        variables: Json,
        ttl: Duration,
        message_id: Option<&str>,
    ) -> Result<i64, EngineError> {
        let vars = match variables {
            Json::Object(m) => m,
            Json::Null => Map::new(),
            other => {
                return Err(CommandError::InvalidArgument(format!(
                    "message variables must be a JSON object, got {other}"
                ))
                .into());
            }
        };
        let ttl_ms = ttl.as_millis() as i64;
        Ok(self.with(|s| s.publish_message(name, correlation_key, ttl_ms, message_id.unwrap_or(""), vars))?)
    }

    /// Process instances (any state) of `bpmn_process_id`, oldest first.
    pub fn process_instances(&self, bpmn_process_id: &str) -> Vec<i64> {
        self.read(|s| {
            s.elems
                .values()
                .filter(|e| e.element_type == "PROCESS" && e.bpmn_process_id == bpmn_process_id)
                .map(|e| e.key)
                .collect()
        })
    }

    pub fn open_user_tasks(&self) -> Vec<UserTaskView> {
        self.read(|s| {
            s.user_tasks
                .values()
                .filter(|t| t.state == UserTaskState::Created)
                .map(|t| UserTaskView {
                    key: t.key,
                    element_id: t.element_id.clone(),
                    name: t.name.clone(),
                    form_id: t.form_id.clone(),
                    process_instance_key: t.pi_key,
                    bpmn_process_id: t.bpmn_process_id.clone(),
                    candidate_groups: t.candidate_groups.clone(),
                    assignee: t.assignee.clone(),
                    due_date: t.due_date.clone(),
                    variables: s.visible(t.ei_key),
                })
                .collect()
        })
    }

    pub fn complete_user_task(&self, key: i64, variables: Map<String, Json>) -> Result<(), EngineError> {
        Ok(self.with(|s| s.complete_user_task(key, variables))?)
    }

    /// Completes a user task as `POST /v2/user-tasks/{key}/completion` does in Camunda 8.8:
    /// returns once its `completing` task listeners decided (the task completed, or a listener
    /// denied the completion and the task is CREATED again with its assignee).
    pub async fn complete_user_task_held(&self, key: i64, variables: Map<String, Json>) -> Result<(), CompletionError> {
        let attempt = self.with(|s| s.begin_complete_user_task(key, variables)).map_err(CompletionError::Command)?;
        let outcome = self
            .wait_for(COMPLETION_TIMEOUT, |h| {
                h.read(|s| s.completion_outcome(attempt)).filter(|o| *o != CompletionOutcome::Pending)
            })
            .await;
        match outcome {
            Some(CompletionOutcome::Completed) => Ok(()),
            Some(CompletionOutcome::Denied(reason)) => Err(CompletionError::Denied { key, reason }),
            Some(CompletionOutcome::Canceled) => Err(CompletionError::Canceled(key)),
            Some(CompletionOutcome::Pending) | None => Err(CompletionError::Timeout(key)),
        }
    }

    /// Assigns a user task (`POST /v2/user-tasks/{key}/assignment`).
    pub fn assign_user_task(&self, key: i64, assignee: &str) -> Result<(), EngineError> {
        Ok(self.with(|s| s.assign_user_task(key, Some(assignee.to_string())))?)
    }

    pub fn instance_state(&self, process_instance_key: i64) -> Option<InstanceState> {
        self.read(|s| {
            s.elems.get(&process_instance_key).filter(|e| e.element_type == "PROCESS").map(|e| view_state(e.state))
        })
    }

    /// True when the instance has an open incident.
    pub fn has_incident(&self, process_instance_key: i64) -> bool {
        self.read(|s| s.incidents.values().any(|i| i.active && i.pi_key == process_instance_key))
    }

    /// Open incidents of every instance.
    pub fn incidents(&self) -> Vec<IncidentView> {
        self.read(|s| {
            s.incidents
                .values()
                .filter(|i| i.active)
                .map(|i| IncidentView {
                    key: i.key,
                    process_instance_key: i.pi_key,
                    element_id: i.element_id.clone(),
                    element_instance_key: i.ei_key,
                    error_type: i.error_type.clone(),
                    message: i.message.clone(),
                    job_key: i.job_key,
                })
                .collect()
        })
    }

    /// Sets variables on a process or element instance (`local`: only in that scope; else
    /// propagated like SetVariables); returns the command key.
    pub fn set_variables(
        &self,
        element_instance_key: i64,
        variables: Map<String, Json>,
        local: bool,
    ) -> Result<i64, EngineError> {
        Ok(self.with(|s| s.set_variables(element_instance_key, variables, local))?)
    }

    pub fn resolve_incident(&self, key: i64) -> Result<(), EngineError> {
        Ok(self.with(|s| s.resolve_incident(key))?)
    }

    pub fn update_job_retries(&self, job_key: i64, retries: i32) -> Result<(), EngineError> {
        Ok(self.with(|s| s.update_job_retries(job_key, retries))?)
    }

    /// Everything that happened, in order.
    pub fn event_log(&self) -> Vec<LogEvent> {
        self.read(|s| s.log.clone())
    }

    /// The events after the first `from` (cheap incremental reads: pass the count seen so far).
    pub fn event_log_since(&self, from: usize) -> Vec<LogEvent> {
        self.read(|s| s.log.get(from..).map(<[LogEvent]>::to_vec).unwrap_or_default())
    }

    /// The root variables of a process instance.
    pub fn variables(&self, process_instance_key: i64) -> Map<String, Json> {
        self.read(|s| s.vars.get(&process_instance_key).cloned().unwrap_or_default())
    }

    /// Process instances started by call activities of `process_instance_key`.
    pub fn child_instances(&self, process_instance_key: i64) -> Vec<i64> {
        self.read(|s| {
            s.elems
                .values()
                .filter(|e| {
                    e.element_type == "PROCESS"
                        && e.parent_ei.and_then(|p| s.elems.get(&p)).is_some_and(|p| p.pi_key == process_instance_key)
                })
                .map(|e| e.key)
                .collect()
        })
    }

    /// Element instances of a process instance (oldest first).
    pub fn element_instances(&self, process_instance_key: i64) -> Vec<ElementInstanceView> {
        self.read(|s| {
            s.elems
                .values()
                .filter(|e| e.pi_key == process_instance_key)
                .map(|e| ElementInstanceView {
                    key: e.key,
                    process_instance_key: e.pi_key,
                    element_id: e.element_id.clone(),
                    element_type: e.element_type.to_string(),
                    name: element_name_in(s, e.def_key, &e.element_id),
                    flow_scope_key: e.flow_scope,
                    state: view_state(e.state),
                    start: e.start,
                    end: e.end,
                })
                .collect()
        })
    }

    /// The BPMN `name` of an element of the latest deployed version of a process (None when
    /// the element has no name or the process is unknown).
    pub fn element_name(&self, bpmn_process_id: &str, element_id: &str) -> Option<String> {
        self.read(|s| {
            let p = s.processes.iter().filter(|p| p.bpmn_process_id == bpmn_process_id).max_by_key(|p| p.version)?;
            p.process.elements.get(element_id).and_then(|e| e.name.clone())
        })
    }

    /// Stops serving (gRPC, REST, timers); open job streams end.
    pub fn shutdown(&self) {
        let _ = self.shared.shutdown.send(true);
        self.with(|s| s.streams.clear());
    }
}

/// Parses a variables document ("" = empty) the way the gateway does.
pub(crate) fn parse_variables(text: &str) -> Result<Map<String, Json>, CommandError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(other) => Err(CommandError::InvalidArgument(format!(
            "Property 'variables' is invalid: Expected document to be a root level object, but was '{}'",
            match other {
                Json::Array(_) => "ARRAY",
                Json::String(_) => "STRING",
                Json::Number(_) => "NUMBER",
                Json::Bool(_) => "BOOLEAN",
                _ => "NULL",
            }
        ))),
        Err(e) => Err(CommandError::InvalidArgument(format!("Property 'variables' is not valid JSON: {e}"))),
    }
}
