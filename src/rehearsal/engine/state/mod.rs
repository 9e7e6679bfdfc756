//! The engine's state and the BPMN interpreter (Zeebe semantics), mutated under one lock.
use super::feel::{self, FeelError};
use super::model::{Element, ElementKind, Mapping, Process, TimerDef};
use super::parse;
use crate::gateway_protocol::ActivatedJob;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

mod deploy;
mod incidents;
mod instances;
mod jobs;
mod lifecycle;
mod messages;
mod time;
pub mod user_tasks;
mod variables;

/// Errors of engine commands, mapped to Zeebe's gRPC status codes.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AlreadyExists(String),
}

type R<T> = Result<T, CommandError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ElemState {
    Activating,
    Activated,
    Completing,
    Completed,
    Terminated,
}

impl ElemState {
    pub fn is_active(self) -> bool {
        matches!(self, ElemState::Activating | ElemState::Activated | ElemState::Completing)
    }
}

#[derive(Debug, Clone)]
pub struct DeployedProcess {
    pub key: i64,
    pub bpmn_process_id: String,
    pub version: i32,
    pub resource_name: String,
    pub resource: Vec<u8>,
    pub process: Arc<Process>,
}

#[derive(Debug, Clone)]
pub struct DeployedForm {
    pub key: i64,
    pub form_id: String,
    pub version: i32,
    pub resource_name: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct ElemInst {
    pub key: i64,
    pub pi_key: i64,
    pub def_key: i64,
    pub bpmn_process_id: String,
    pub element_id: String,
    pub element_type: &'static str,
    pub flow_scope: Option<i64>,
    pub state: ElemState,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// Process instances only: the call activity instance in the parent process.
    pub parent_ei: Option<i64>,
    /// Scopes only: parallel gateway id -> incoming flows taken and not yet joined.
    pub joins: HashMap<String, Vec<String>>,
    /// Variables the element completes with (job/user task/error/child process).
    pub pending_vars: Map<String, Json>,
    pub child_pi: Option<i64>,
    /// Process instances started by a message: its correlation key (one active instance per
    /// process and correlation key, as Zeebe).
    pub start_correlation_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Activatable,
    Activated,
    Failed,
    ErrorThrown,
    Completed,
    Canceled,
}

#[derive(Debug, Clone)]
pub struct JobRec {
    pub key: i64,
    pub job_type: String,
    pub ei_key: i64,
    pub pi_key: i64,
    pub def_key: i64,
    pub bpmn_process_id: String,
    pub version: i32,
    pub element_id: String,
    pub headers: Map<String, Json>,
    pub retries: i32,
    pub state: JobState,
    pub worker: String,
    pub deadline: i64,
    /// Simulated epoch ms before which a failed job is not activatable (back-off); 0 = none.
    pub retry_at: i64,
    pub error_message: String,
    /// ActivatedJob.JobKind: 0 BPMN_ELEMENT, 2 TASK_LISTENER.
    pub kind: i32,
    /// ActivatedJob.ListenerEventType: 6 UNSPECIFIED, 2 COMPLETING.
    pub listener_event_type: i32,
    /// Task listener jobs: the user task whose lifecycle transition waits for this job.
    pub user_task_key: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserTaskState {
    Created,
    /// A completion waits for its `completing` task listeners.
    Completing,
    Completed,
    Canceled,
}

#[derive(Debug, Clone)]
pub struct UserTaskRec {
    pub key: i64,
    pub ei_key: i64,
    pub pi_key: i64,
    pub def_key: i64,
    pub bpmn_process_id: String,
    pub element_id: String,
    pub name: Option<String>,
    pub state: UserTaskState,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub candidate_users: Vec<String>,
    pub due_date: Option<String>,
    pub follow_up_date: Option<String>,
    pub priority: i32,
    pub form_id: Option<String>,
    pub form_key: Option<i64>,
    pub creation_date: DateTime<Utc>,
    pub completion_date: Option<DateTime<Utc>>,
    /// The completion held by `completing` task listeners (state Completing).
    pub completing: Option<user_tasks::PendingCompletion>,
}

/// What resolving an incident retries.
#[derive(Debug, Clone, PartialEq)]
enum Retry {
    Job(i64),
    Activate(i64),
    Complete(i64),
    Leave(i64),
}

#[derive(Debug, Clone)]
pub struct IncidentRec {
    pub key: i64,
    pub pi_key: i64,
    pub ei_key: i64,
    pub element_id: String,
    pub bpmn_process_id: String,
    pub def_key: i64,
    pub error_type: String,
    pub message: String,
    pub job_key: Option<i64>,
    pub active: bool,
    pub creation_time: DateTime<Utc>,
    retry: Retry,
}

#[derive(Debug, Clone)]
enum TimerKind {
    Catch,
    Boundary { boundary_id: String, interrupting: bool },
}

#[derive(Debug, Clone)]
struct TimerRec {
    ei_key: i64,
    due: i64,
    kind: TimerKind,
}

#[derive(Debug, Clone)]
struct MessageRec {
    key: i64,
    name: String,
    correlation_key: String,
    message_id: String,
    variables: Map<String, Json>,
    expires: i64,
    correlated: Vec<String>,
}

/// An open StreamActivatedJobs stream.
pub struct JobStream {
    pub id: u64,
    pub job_type: String,
    pub worker: String,
    pub timeout: i64,
    pub fetch: Vec<String>,
    pub tx: UnboundedSender<Result<ActivatedJob, tonic::Status>>,
}

/// One entry of the event log, like Operate / the exporters would show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub time: DateTime<Utc>,
    /// PROCESS_INSTANCE, JOB, USER_TASK, INCIDENT, MESSAGE, TIMER, ERROR (thrown by an end event)
    pub value_type: &'static str,
    /// ELEMENT_ACTIVATING, ELEMENT_ACTIVATED, ELEMENT_COMPLETED, ELEMENT_TERMINATED, CREATED,
    /// ACTIVATED, COMPLETED, FAILED, TIMED_OUT, ERROR_THROWN, RETRIES_UPDATED, CANCELED,
    /// RESOLVED, TRIGGERED, PUBLISHED
    pub intent: &'static str,
    pub key: i64,
    pub process_instance_key: i64,
    pub bpmn_process_id: String,
    pub element_id: String,
    pub element_type: String,
    pub detail: String,
}

/// The whole engine state.
pub struct State {
    counter: i64,
    pub processes: Vec<DeployedProcess>,
    pub forms: Vec<DeployedForm>,
    pub elems: BTreeMap<i64, ElemInst>,
    pub vars: HashMap<i64, Map<String, Json>>,
    pub jobs: BTreeMap<i64, JobRec>,
    pub user_tasks: BTreeMap<i64, UserTaskRec>,
    pub incidents: BTreeMap<i64, IncidentRec>,
    timers: BTreeMap<i64, TimerRec>,
    messages: Vec<MessageRec>,
    pub streams: Vec<JobStream>,
    stream_rr: usize,
    pub log: Vec<LogEvent>,
    /// Outcome of every user task completion request, by attempt (see `begin_complete_user_task`).
    pub completions: BTreeMap<u64, user_tasks::CompletionOutcome>,
    next_completion: u64,
    /// Simulated now, set by the caller before every command.
    pub now: DateTime<Utc>,
    /// Elements activated in a row without a wait state (guards against modeled endless loops).
    depth: usize,
}

/// More elements than this in a row without a wait state raise an incident instead of
/// recursing further (a loop without a timer or task would otherwise never end).
const MAX_STEPS_WITHOUT_WAIT: usize = 100;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub struct Deployment {
    pub key: i64,
    pub processes: Vec<DeployedProcess>,
    pub forms: Vec<DeployedForm>,
}

impl State {
    pub fn new(now: DateTime<Utc>) -> Self {
        State {
            counter: 0,
            processes: Vec::new(),
            forms: Vec::new(),
            elems: BTreeMap::new(),
            vars: HashMap::new(),
            jobs: BTreeMap::new(),
            user_tasks: BTreeMap::new(),
            incidents: BTreeMap::new(),
            timers: BTreeMap::new(),
            messages: Vec::new(),
            streams: Vec::new(),
            stream_rr: 0,
            log: Vec::new(),
            completions: BTreeMap::new(),
            next_completion: 0,
            now,
            depth: 0,
        }
    }

    /// Zeebe-like keys: partition 1 in the top bits, then a counter.
    fn next_key(&mut self) -> i64 {
        self.counter += 1;
        (1i64 << 51) + self.counter
    }

    fn now_ms(&self) -> i64 {
        ms(self.now)
    }

    fn log(
        &mut self,
        value_type: &'static str,
        intent: &'static str,
        key: i64,
        ei: Option<i64>,
        detail: impl Into<String>,
    ) {
        let (pi, bpid, eid, ety) = match ei.and_then(|k| self.elems.get(&k)) {
            Some(e) => (e.pi_key, e.bpmn_process_id.clone(), e.element_id.clone(), e.element_type.to_string()),
            None => (-1, String::new(), String::new(), String::new()),
        };
        self.log.push(LogEvent {
            time: self.now,
            value_type,
            intent,
            key,
            process_instance_key: pi,
            bpmn_process_id: bpid,
            element_id: eid,
            element_type: ety,
            detail: detail.into(),
        });
    }
}

fn set_path(map: &mut Map<String, Json>, parts: &[&str], value: Json) {
    match parts {
        [] => {}
        [last] => {
            map.insert(last.to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = map.entry(first.to_string()).or_insert_with(|| Json::Object(Map::new()));
            if !entry.is_object() {
                *entry = Json::Object(Map::new());
            }
            if let Json::Object(m) = entry {
                set_path(m, rest, value);
            }
        }
    }
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "NULL",
        Json::Bool(_) => "BOOLEAN",
        Json::Number(_) => "NUMBER",
        Json::String(_) => "STRING",
        Json::Array(_) => "LIST",
        Json::Object(_) => "CONTEXT",
    }
}

fn json_to_opt_string(v: Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) if s.is_empty() => None,
        Json::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Candidate groups/users: a FEEL list, or a comma-separated string.
fn json_to_list(v: Json) -> Vec<String> {
    match v {
        Json::Array(a) => a.into_iter().filter_map(json_to_opt_string).collect(),
        Json::String(s) => s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
        Json::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}
