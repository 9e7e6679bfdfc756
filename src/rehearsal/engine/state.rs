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
        matches!(
            self,
            ElemState::Activating | ElemState::Activated | ElemState::Completing
        )
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserTaskState {
    Created,
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
    Boundary {
        boundary_id: String,
        interrupting: bool,
    },
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
    /// PROCESS_INSTANCE, JOB, USER_TASK, INCIDENT, MESSAGE, TIMER
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
            Some(e) => (
                e.pi_key,
                e.bpmn_process_id.clone(),
                e.element_id.clone(),
                e.element_type.to_string(),
            ),
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

    // ------------------------------------------------------------------ deployment

    /// Deploys resources atomically: everything parses, or nothing is deployed.
    pub fn deploy(&mut self, resources: &[(String, Vec<u8>)]) -> R<Deployment> {
        if resources.is_empty() {
            return Err(CommandError::InvalidArgument(
                "expected to deploy at least one resource, but none given".into(),
            ));
        }
        enum Parsed {
            Bpmn(Vec<Process>),
            Form(String, String),
        }
        let mut parsed = Vec::new();
        for (name, content) in resources {
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".bpmn") || lower.ends_with(".xml") {
                let text = std::str::from_utf8(content).map_err(|_| {
                    CommandError::InvalidArgument(format!("{name}: resource is not UTF-8"))
                })?;
                let defs = parse::parse_bpmn(name, text)
                    .map_err(|e| CommandError::InvalidArgument(e.to_string()))?;
                parsed.push((name, content, Parsed::Bpmn(defs.processes)));
            } else if lower.ends_with(".form") {
                let id = parse::parse_form(name, content)
                    .map_err(|e| CommandError::InvalidArgument(e.to_string()))?;
                parsed.push((
                    name,
                    content,
                    Parsed::Form(id, String::from_utf8_lossy(content).into_owned()),
                ));
            } else {
                return Err(CommandError::InvalidArgument(format!(
                    "{name}: unknown resource type (expected .bpmn, .xml or .form)"
                )));
            }
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (name, _, p) in &parsed {
            if let Parsed::Bpmn(processes) = p {
                for proc in processes {
                    if let Some(first) = seen.insert(&proc.id, name) {
                        return Err(CommandError::InvalidArgument(format!(
                            "Duplicated process id in resources '{first}' and '{name}': '{}'",
                            proc.id
                        )));
                    }
                }
            }
        }
        let key = self.next_key();
        let mut out = Deployment {
            key,
            processes: Vec::new(),
            forms: Vec::new(),
        };
        for (name, content, p) in parsed {
            match p {
                Parsed::Bpmn(processes) => {
                    for process in processes {
                        let latest = self
                            .processes
                            .iter()
                            .filter(|d| d.bpmn_process_id == process.id)
                            .max_by_key(|d| d.version);
                        if let Some(l) = latest
                            && l.resource == *content
                        {
                            out.processes.push(l.clone());
                            continue;
                        }
                        let version = latest.map_or(1, |l| l.version + 1);
                        let d = DeployedProcess {
                            key: self.next_key(),
                            bpmn_process_id: process.id.clone(),
                            version,
                            resource_name: name.clone(),
                            resource: content.clone(),
                            process: Arc::new(process),
                        };
                        self.processes.push(d.clone());
                        out.processes.push(d);
                    }
                }
                Parsed::Form(form_id, text) => {
                    let latest = self
                        .forms
                        .iter()
                        .filter(|f| f.form_id == form_id)
                        .max_by_key(|f| f.version);
                    if let Some(l) = latest
                        && l.content == text
                    {
                        out.forms.push(l.clone());
                        continue;
                    }
                    let version = latest.map_or(1, |l| l.version + 1);
                    let f = DeployedForm {
                        key: self.next_key(),
                        form_id,
                        version,
                        resource_name: name.clone(),
                        content: text,
                    };
                    self.forms.push(f.clone());
                    out.forms.push(f);
                }
            }
        }
        // buffered messages may start the new processes
        let names: Vec<usize> = (0..self.messages.len()).collect();
        for i in names {
            let m = self.messages[i].clone();
            self.correlate_start(i, &m);
        }
        Ok(out)
    }

    pub fn latest_process(&self, bpmn_process_id: &str) -> Option<&DeployedProcess> {
        self.processes
            .iter()
            .filter(|d| d.bpmn_process_id == bpmn_process_id)
            .max_by_key(|d| d.version)
    }

    fn process_def(&self, def_key: i64) -> Arc<Process> {
        self.processes
            .iter()
            .find(|d| d.key == def_key)
            .map(|d| d.process.clone())
            .expect("deployed process")
    }

    fn def_version(&self, def_key: i64) -> i32 {
        self.processes
            .iter()
            .find(|d| d.key == def_key)
            .map_or(0, |d| d.version)
    }

    // ------------------------------------------------------------------ process instances

    /// Creates a process instance by bpmnProcessId (+version, -1 = latest) or by definition key.
    pub fn create_instance(
        &mut self,
        def_key: i64,
        bpmn_process_id: &str,
        version: i32,
        vars: Map<String, Json>,
    ) -> R<(DeployedProcess, i64)> {
        let def = if def_key > 0 {
            self.processes
                .iter()
                .find(|d| d.key == def_key)
                .cloned()
                .ok_or_else(|| {
                    CommandError::NotFound(format!(
                        "Expected to find process definition with key '{def_key}', but none found"
                    ))
                })?
        } else if version > 0 {
            self.processes
                .iter()
                .find(|d| d.bpmn_process_id == bpmn_process_id && d.version == version)
                .cloned()
                .ok_or_else(|| {
                    CommandError::NotFound(format!(
                        "Expected to find process definition with process ID '{bpmn_process_id}' and version '{version}', but none found"
                    ))
                })?
        } else {
            self.latest_process(bpmn_process_id).cloned().ok_or_else(|| {
                CommandError::NotFound(format!("Expected to find process definition with process ID '{bpmn_process_id}', but none found"))
            })?
        };
        let Some(start) = def.process.none_start.clone() else {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to create instance of process with none start event, but there is no such event in process '{}'",
                def.bpmn_process_id
            )));
        };
        let pi = self.start_instance(&def, &start, vars, None, None);
        Ok((def, pi))
    }

    fn start_instance(
        &mut self,
        def: &DeployedProcess,
        start: &str,
        vars: Map<String, Json>,
        parent_ei: Option<i64>,
        start_correlation_key: Option<String>,
    ) -> i64 {
        let key = self.next_key();
        self.elems.insert(
            key,
            ElemInst {
                key,
                pi_key: key,
                def_key: def.key,
                bpmn_process_id: def.bpmn_process_id.clone(),
                element_id: def.bpmn_process_id.clone(),
                element_type: "PROCESS",
                flow_scope: None,
                state: ElemState::Activating,
                start: self.now,
                end: None,
                parent_ei,
                joins: HashMap::new(),
                pending_vars: Map::new(),
                child_pi: None,
                start_correlation_key,
            },
        );
        self.vars.insert(key, vars);
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", key, Some(key), "");
        self.elems.get_mut(&key).expect("pi").state = ElemState::Activated;
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", key, Some(key), "");
        let process = def.process.clone();
        self.activate(key, process.element(start), Map::new());
        key
    }

    pub fn cancel_instance(&mut self, pi_key: i64) -> R<()> {
        let e = self.elems.get(&pi_key).filter(|e| e.element_type == "PROCESS" && e.state.is_active()).ok_or_else(|| {
            CommandError::NotFound(format!(
                "Expected to cancel a process instance with key '{pi_key}', but no such process was found"
            ))
        })?;
        if e.parent_ei.is_some() {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to cancel a process instance with key '{pi_key}', but it is created by a parent process instance. Cancel the root process instance '{}' instead.",
                self.root_of(pi_key)
            )));
        }
        self.terminate(pi_key);
        Ok(())
    }

    fn root_of(&self, mut pi: i64) -> i64 {
        while let Some(p) = self
            .elems
            .get(&pi)
            .and_then(|e| e.parent_ei)
            .and_then(|p| self.elems.get(&p))
        {
            pi = p.pi_key;
        }
        pi
    }

    // ------------------------------------------------------------------ variables

    /// Scope chain from `key` up to its process instance (innermost first).
    fn chain(&self, key: i64) -> Vec<i64> {
        let mut out = vec![key];
        let mut cur = key;
        while let Some(p) = self.elems.get(&cur).and_then(|e| e.flow_scope) {
            out.push(p);
            cur = p;
        }
        out
    }

    /// Variables visible from the scope `key` (inner scopes shadow outer ones).
    pub fn visible(&self, key: i64) -> Map<String, Json> {
        let mut out = Map::new();
        for k in self.chain(key).into_iter().rev() {
            if let Some(v) = self.vars.get(&k) {
                for (n, val) in v {
                    out.insert(n.clone(), val.clone());
                }
            }
        }
        out
    }

    fn set_local(&mut self, key: i64, vars: Map<String, Json>) {
        let scope = self.vars.entry(key).or_default();
        for (k, v) in vars {
            scope.insert(k, v);
        }
    }

    /// Zeebe's propagation: each variable goes to the nearest scope (from `start` up) where it
    /// exists, else to the root of the chain (the process instance).
    fn propagate(&mut self, start: i64, vars: Map<String, Json>) {
        let chain = self.chain(start);
        for (name, value) in vars {
            let target = chain
                .iter()
                .copied()
                .find(|k| self.vars.get(k).is_some_and(|m| m.contains_key(&name)))
                .unwrap_or(*chain.last().expect("chain"));
            self.vars.entry(target).or_default().insert(name, value);
        }
    }

    pub fn set_variables(&mut self, ei_key: i64, vars: Map<String, Json>, local: bool) -> R<i64> {
        if !self.elems.get(&ei_key).is_some_and(|e| e.state.is_active()) {
            return Err(CommandError::NotFound(format!(
                "Expected to update variables for element with key '{ei_key}', but no such element was found"
            )));
        }
        if local {
            self.set_local(ei_key, vars);
        } else {
            self.propagate(ei_key, vars);
        }
        Ok(self.next_key())
    }

    fn eval(&self, expr: &str, scope: i64) -> Result<Json, FeelError> {
        feel::evaluate(expr, &self.visible(scope), self.now)
    }

    /// Evaluates mappings into a variable document; targets may be paths (`a.b`).
    fn eval_mappings(
        &self,
        mappings: &[Mapping],
        scope: i64,
        extra: &Map<String, Json>,
    ) -> Result<Map<String, Json>, FeelError> {
        let mut ctx = self.visible(scope);
        for (k, v) in extra {
            ctx.insert(k.clone(), v.clone());
        }
        let mut out = Map::new();
        for m in mappings {
            let value = feel::evaluate(&m.source, &ctx, self.now)?;
            let parts: Vec<&str> = m.target.split('.').collect();
            set_path(&mut out, &parts, value.clone());
            set_path(&mut ctx, &parts, value);
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ incidents

    fn raise_incident(
        &mut self,
        ei_key: i64,
        error_type: &str,
        message: String,
        job_key: Option<i64>,
        retry: Retry,
    ) -> i64 {
        let key = self.next_key();
        let e = &self.elems[&ei_key];
        let inc = IncidentRec {
            key,
            pi_key: e.pi_key,
            ei_key,
            element_id: e.element_id.clone(),
            bpmn_process_id: e.bpmn_process_id.clone(),
            def_key: e.def_key,
            error_type: error_type.to_string(),
            message: message.clone(),
            job_key,
            active: true,
            creation_time: self.now,
            retry,
        };
        self.incidents.insert(key, inc);
        tracing::info!(incident = key, element = %self.elems[&ei_key].element_id, %error_type, %message, "incident raised");
        self.log(
            "INCIDENT",
            "CREATED",
            key,
            Some(ei_key),
            format!("{error_type}: {message}"),
        );
        key
    }

    pub fn resolve_incident(&mut self, key: i64) -> R<()> {
        let inc = self
            .incidents
            .get_mut(&key)
            .filter(|i| i.active)
            .ok_or_else(|| {
                CommandError::NotFound(format!(
                    "Expected to resolve incident with key '{key}', but no such incident was found"
                ))
            })?;
        inc.active = false;
        let (ei, retry) = (inc.ei_key, inc.retry.clone());
        self.log("INCIDENT", "RESOLVED", key, Some(ei), "");
        match retry {
            Retry::Job(job_key) => {
                let job = self.jobs.get(&job_key).cloned().expect("job of incident");
                if job.retries <= 0 && job.state == JobState::Failed {
                    self.raise_incident(
                        ei,
                        "JOB_NO_RETRIES",
                        job.error_message.clone(),
                        Some(job_key),
                        Retry::Job(job_key),
                    );
                } else {
                    self.make_activatable(job_key, 0);
                }
            }
            Retry::Activate(k) => self.run_activation(k),
            Retry::Complete(k) => self.complete(k),
            Retry::Leave(k) => self.leave(k),
        }
        Ok(())
    }

    fn resolve_incidents_of(&mut self, ei_key: i64) {
        let keys: Vec<i64> = self
            .incidents
            .values()
            .filter(|i| i.active && i.ei_key == ei_key)
            .map(|i| i.key)
            .collect();
        for k in keys {
            self.incidents.get_mut(&k).expect("incident").active = false;
            self.log(
                "INCIDENT",
                "RESOLVED",
                k,
                Some(ei_key),
                "element terminated",
            );
        }
    }

    // ------------------------------------------------------------------ element lifecycle

    fn activate(&mut self, scope: i64, el: &Element, pending: Map<String, Json>) -> i64 {
        let key = self.next_key();
        let s = &self.elems[&scope];
        let inst = ElemInst {
            key,
            pi_key: s.pi_key,
            def_key: s.def_key,
            bpmn_process_id: s.bpmn_process_id.clone(),
            element_id: el.id.clone(),
            element_type: el.kind.type_name(),
            flow_scope: Some(scope),
            state: ElemState::Activating,
            start: self.now,
            end: None,
            parent_ei: None,
            joins: HashMap::new(),
            pending_vars: pending,
            child_pi: None,
            start_correlation_key: None,
        };
        self.elems.insert(key, inst);
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", key, Some(key), "");
        if self.depth >= MAX_STEPS_WITHOUT_WAIT {
            let m = format!(
                "more than {MAX_STEPS_WITHOUT_WAIT} elements in a row without a wait state (a loop without a timer or task?); resolve the incident to continue"
            );
            self.raise_incident(key, "UNKNOWN", m, None, Retry::Activate(key));
            return key;
        }
        self.depth += 1;
        self.run_activation(key);
        self.depth -= 1;
        key
    }

    fn element_of(&self, key: i64) -> (Arc<Process>, Element) {
        let e = &self.elems[&key];
        let p = self.process_def(e.def_key);
        let el = p.element(&e.element_id).clone();
        (p, el)
    }

    fn run_activation(&mut self, key: i64) {
        if !self
            .elems
            .get(&key)
            .is_some_and(|e| e.state == ElemState::Activating)
        {
            return;
        }
        let (process, el) = self.element_of(key);
        if !el.inputs.is_empty() {
            match self.eval_mappings(
                &el.inputs,
                self.elems[&key].flow_scope.expect("scope"),
                &Map::new(),
            ) {
                Ok(vars) => self.set_local(key, vars),
                Err(e) => {
                    self.raise_incident(key, "IO_MAPPING_ERROR", e.0, None, Retry::Activate(key));
                    return;
                }
            }
        }
        match &el.kind {
            ElementKind::ServiceTask {
                job_type,
                retries,
                headers,
            } => {
                let job_type = match self.eval_string(job_type, key, "job type") {
                    Ok(t) => t,
                    Err(m) => return self.activation_incident(key, m),
                };
                let retries = match self.eval(retries, key) {
                    Ok(Json::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(3) as i32,
                    Ok(Json::String(s)) if s.trim().parse::<i32>().is_ok() => {
                        s.trim().parse().unwrap_or(3)
                    }
                    Ok(other) => {
                        return self.activation_incident(
                            key,
                            format!("expected job retries to be a number, but was '{other}'"),
                        );
                    }
                    Err(e) => return self.activation_incident(key, e.0),
                };
                if !self.attach_boundaries(key, &process, &el) {
                    return;
                }
                self.mark_activated(key);
                let job_key = self.next_key();
                let e = &self.elems[&key];
                let job = JobRec {
                    key: job_key,
                    job_type,
                    ei_key: key,
                    pi_key: e.pi_key,
                    def_key: e.def_key,
                    bpmn_process_id: e.bpmn_process_id.clone(),
                    version: self.def_version(e.def_key),
                    element_id: e.element_id.clone(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                        .collect(),
                    retries,
                    state: JobState::Activatable,
                    worker: String::new(),
                    deadline: -1,
                    retry_at: 0,
                    error_message: String::new(),
                };
                let detail = format!("type={} retries={}", job.job_type, job.retries);
                self.jobs.insert(job_key, job);
                self.log("JOB", "CREATED", job_key, Some(key), detail);
                self.push_job(job_key);
            }
            ElementKind::UserTask(def) => {
                let scope = key;
                let opt =
                    |s: &State, v: &Option<String>, what: &str| -> Result<Option<Json>, String> {
                        match v {
                            None => Ok(None),
                            Some(t) if t.trim().is_empty() => Ok(None),
                            Some(t) => s
                                .eval(t, scope)
                                .map(Some)
                                .map_err(|e| format!("{what}: {}", e.0)),
                        }
                    };
                let res = (|| -> Result<UserTaskRec, String> {
                    let assignee =
                        opt(self, &def.assignee, "assignee")?.and_then(json_to_opt_string);
                    let groups = opt(self, &def.candidate_groups, "candidateGroups")?
                        .map(json_to_list)
                        .unwrap_or_default();
                    let users = opt(self, &def.candidate_users, "candidateUsers")?
                        .map(json_to_list)
                        .unwrap_or_default();
                    let due = opt(self, &def.due_date, "dueDate")?.and_then(json_to_opt_string);
                    let follow = opt(self, &def.follow_up_date, "followUpDate")?
                        .and_then(json_to_opt_string);
                    for (what, d) in [("dueDate", &due), ("followUpDate", &follow)] {
                        if let Some(d) = d {
                            feel::parse_date_time(d).map_err(|e| format!("{what}: {}", e.0))?;
                        }
                    }
                    let priority = match opt(self, &def.priority, "priority")? {
                        None | Some(Json::Null) => 50,
                        Some(Json::Number(n)) => n.as_i64().unwrap_or(50) as i32,
                        Some(Json::String(s)) => s
                            .trim()
                            .parse()
                            .map_err(|_| format!("priority: '{s}' is not a number"))?,
                        Some(o) => return Err(format!("priority: '{o}' is not a number")),
                    };
                    let e = &self.elems[&key];
                    let form_key = def.form_id.as_ref().and_then(|f| {
                        self.forms
                            .iter()
                            .filter(|d| &d.form_id == f)
                            .max_by_key(|d| d.version)
                            .map(|d| d.key)
                    });
                    if let (Some(f), None) = (&def.form_id, form_key) {
                        return Err(format!(
                            "Expected to find a form with id '{f}', but no form with this id is found, at least a form with this id should be available. To resolve the Incident please deploy a form with the same id"
                        ));
                    }
                    Ok(UserTaskRec {
                        key: 0,
                        ei_key: key,
                        pi_key: e.pi_key,
                        def_key: e.def_key,
                        bpmn_process_id: e.bpmn_process_id.clone(),
                        element_id: e.element_id.clone(),
                        name: el.name.clone(),
                        state: UserTaskState::Created,
                        assignee,
                        candidate_groups: groups,
                        candidate_users: users,
                        due_date: due,
                        follow_up_date: follow,
                        priority,
                        form_id: def.form_id.clone(),
                        form_key,
                        creation_date: self.now,
                        completion_date: None,
                    })
                })();
                let mut task = match res {
                    Ok(t) => t,
                    Err(m) => {
                        let ty = if m.contains("form with id") {
                            "FORM_NOT_FOUND"
                        } else {
                            "EXTRACT_VALUE_ERROR"
                        };
                        self.raise_incident(key, ty, m, None, Retry::Activate(key));
                        return;
                    }
                };
                if !self.attach_boundaries(key, &process, &el) {
                    return;
                }
                self.mark_activated(key);
                task.key = self.next_key();
                let tk = task.key;
                let detail = format!("formId={}", task.form_id.clone().unwrap_or_default());
                self.user_tasks.insert(tk, task);
                self.log("USER_TASK", "CREATED", tk, Some(key), detail);
            }
            ElementKind::TimerCatch(t) => {
                let due = match self.timer_due(t, key) {
                    Ok(d) => d,
                    Err(m) => return self.activation_incident(key, m),
                };
                self.mark_activated(key);
                self.add_timer(key, due, TimerKind::Catch);
            }
            ElementKind::SubProcess { start } => {
                if !self.attach_boundaries(key, &process, &el) {
                    return;
                }
                self.mark_activated(key);
                let start = process.element(start).clone();
                self.activate(key, &start, Map::new());
            }
            ElementKind::CallActivity {
                process_id,
                propagate_parent,
                ..
            } => {
                let pid = match self.eval_string(process_id, key, "called element processId") {
                    Ok(p) => p,
                    Err(m) => return self.activation_incident(key, m),
                };
                let Some(def) = self.latest_process(&pid).cloned() else {
                    self.raise_incident(
                        key,
                        "CALLED_ELEMENT_ERROR",
                        format!("Expected process with BPMN process id '{pid}' to be deployed, but not found."),
                        None,
                        Retry::Activate(key),
                    );
                    return;
                };
                let Some(start) = def.process.none_start.clone() else {
                    self.raise_incident(
                        key,
                        "CALLED_ELEMENT_ERROR",
                        format!("Expected process with BPMN process id '{pid}' to have a none start event, but not found."),
                        None,
                        Retry::Activate(key),
                    );
                    return;
                };
                if !self.attach_boundaries(key, &process, &el) {
                    return;
                }
                self.mark_activated(key);
                let vars = if *propagate_parent {
                    self.visible(key)
                } else {
                    self.vars.get(&key).cloned().unwrap_or_default()
                };
                let child = self.start_instance(&def, &start, vars, Some(key), None);
                if let Some(e) = self.elems.get_mut(&key) {
                    e.child_pi = Some(child);
                }
            }
            ElementKind::StartEvent { .. }
            | ElementKind::EndEvent
            | ElementKind::ExclusiveGateway { .. }
            | ElementKind::ParallelGateway
            | ElementKind::ErrorBoundary { .. }
            | ElementKind::TimerBoundary { .. } => {
                self.mark_activated(key);
                self.complete(key);
            }
        }
    }

    fn activation_incident(&mut self, key: i64, message: String) {
        self.raise_incident(
            key,
            "EXTRACT_VALUE_ERROR",
            message,
            None,
            Retry::Activate(key),
        );
    }

    fn eval_string(&self, expr: &str, scope: i64, what: &str) -> Result<String, String> {
        match self.eval(expr, scope) {
            Ok(Json::String(s)) if !s.is_empty() => Ok(s),
            Ok(other) => Err(format!(
                "Expected {what} '{expr}' to evaluate to a non-empty string, but was '{other}'"
            )),
            Err(e) => Err(e.0),
        }
    }

    fn mark_activated(&mut self, key: i64) {
        if let Some(e) = self.elems.get_mut(&key) {
            e.state = ElemState::Activated;
        }
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", key, Some(key), "");
    }

    /// Simulated epoch ms at which a timer definition fires.
    fn timer_due(&self, t: &TimerDef, scope: i64) -> Result<i64, String> {
        let (expr, is_date) = match t {
            TimerDef::Duration(e) => (e, false),
            TimerDef::Date(e) => (e, true),
        };
        let v = self.eval(expr, scope).map_err(|e| e.0)?;
        let Json::String(s) = v else {
            return Err(format!(
                "Expected timer expression '{expr}' to evaluate to a {}, but was '{v}'",
                if is_date { "date-time" } else { "duration" }
            ));
        };
        if is_date {
            Ok(ms(feel::parse_date_time(&s).map_err(|e| e.0)?))
        } else {
            let d = feel::parse_iso_duration(&s).map_err(|e| e.0)?;
            Ok(self.now_ms() + d.as_millis() as i64)
        }
    }

    fn add_timer(&mut self, ei_key: i64, due: i64, kind: TimerKind) {
        let key = self.next_key();
        let detail = format!(
            "due {}",
            iso(Utc.timestamp_millis_opt(due).single().unwrap_or(self.now))
        );
        self.timers.insert(key, TimerRec { ei_key, due, kind });
        self.log("TIMER", "CREATED", key, Some(ei_key), detail);
    }

    /// Creates the timers of the timer boundary events; false when an incident was raised.
    fn attach_boundaries(&mut self, key: i64, process: &Process, el: &Element) -> bool {
        for b in &el.boundaries {
            if let ElementKind::TimerBoundary {
                timer,
                interrupting,
                ..
            } = &process.element(b).kind
            {
                match self.timer_due(timer, key) {
                    Ok(due) => self.add_timer(
                        key,
                        due,
                        TimerKind::Boundary {
                            boundary_id: b.clone(),
                            interrupting: *interrupting,
                        },
                    ),
                    Err(m) => {
                        self.remove_timers(key);
                        self.activation_incident(key, m);
                        return false;
                    }
                }
            }
        }
        true
    }

    fn remove_timers(&mut self, ei_key: i64) {
        self.timers.retain(|_, t| t.ei_key != ei_key);
    }

    /// The element finished its work: output mappings / propagation, then leave.
    fn complete(&mut self, key: i64) {
        let Some(e) = self.elems.get(&key) else {
            return;
        };
        if !matches!(e.state, ElemState::Activated | ElemState::Completing) {
            return;
        }
        let (_, el) = self.element_of(key);
        let pending = std::mem::take(&mut self.elems.get_mut(&key).expect("elem").pending_vars);
        self.elems.get_mut(&key).expect("elem").state = ElemState::Completing;
        let flow_scope = self.elems[&key].flow_scope;
        let call_propagates = matches!(
            el.kind,
            ElementKind::CallActivity {
                propagate_child: true,
                ..
            }
        );
        if call_propagates && !pending.is_empty() {
            self.propagate(key, pending.clone());
        }
        if !el.outputs.is_empty() {
            match self.eval_mappings(&el.outputs, key, &pending) {
                Ok(out) => {
                    if !call_propagates {
                        self.set_local(key, pending);
                    }
                    self.propagate(flow_scope.expect("scope"), out);
                }
                Err(e) => {
                    self.elems.get_mut(&key).expect("elem").pending_vars = pending;
                    self.raise_incident(key, "IO_MAPPING_ERROR", e.0, None, Retry::Complete(key));
                    return;
                }
            }
        } else if !call_propagates
            && !matches!(el.kind, ElementKind::CallActivity { .. })
            && !pending.is_empty()
        {
            self.propagate(key, pending);
        }
        self.remove_timers(key);
        self.leave(key);
    }

    /// Chooses the outgoing flows of a completing element, completes it and takes them.
    fn leave(&mut self, key: i64) {
        if self
            .elems
            .get(&key)
            .is_none_or(|e| e.state != ElemState::Completing)
        {
            return;
        }
        let (process, el) = self.element_of(key);
        let scope = self.elems[&key].flow_scope.expect("scope");
        let flows: Vec<String> = match &el.kind {
            // a gateway with one unconditional outgoing flow (a merge) just takes it
            ElementKind::ExclusiveGateway { .. }
                if el.outgoing.len() == 1 && process.flows[&el.outgoing[0]].condition.is_none() =>
            {
                el.outgoing.clone()
            }
            ElementKind::ExclusiveGateway { default } => {
                let mut chosen = None;
                for f in &el.outgoing {
                    if Some(f) == default.as_ref() {
                        continue;
                    }
                    let Some(cond) = &process.flows[f].condition else {
                        continue;
                    };
                    let expr = if feel::is_expression(cond) {
                        cond.clone()
                    } else {
                        format!("={cond}")
                    };
                    match self.eval(&expr, scope) {
                        Ok(Json::Bool(true)) => {
                            chosen = Some(f.clone());
                            break;
                        }
                        Ok(Json::Bool(false)) => {}
                        Ok(other) => {
                            let m = format!(
                                "Expected result of the expression '{}' to be 'BOOLEAN', but was '{}'",
                                expr.trim_start_matches('='),
                                type_name(&other)
                            );
                            self.raise_incident(key, "CONDITION_ERROR", m, None, Retry::Leave(key));
                            return;
                        }
                        Err(e) => {
                            self.raise_incident(
                                key,
                                "CONDITION_ERROR",
                                e.0,
                                None,
                                Retry::Leave(key),
                            );
                            return;
                        }
                    }
                }
                match chosen.or_else(|| default.clone()) {
                    Some(f) => vec![f],
                    None if el.outgoing.is_empty() => vec![],
                    None => {
                        let m = "Expected at least one condition to evaluate to true, or to have a default flow".to_string();
                        self.raise_incident(key, "CONDITION_ERROR", m, None, Retry::Leave(key));
                        return;
                    }
                }
            }
            _ => el.outgoing.clone(),
        };
        let e = self.elems.get_mut(&key).expect("elem");
        e.state = ElemState::Completed;
        e.end = Some(self.now);
        self.log("PROCESS_INSTANCE", "ELEMENT_COMPLETED", key, Some(key), "");
        for f in flows {
            self.take_flow(scope, &process, &f);
        }
        self.scope_check(scope);
    }

    fn take_flow(&mut self, scope: i64, process: &Process, flow: &str) {
        let target = process.element(&process.flows[flow].target).clone();
        if matches!(target.kind, ElementKind::ParallelGateway) && target.incoming.len() > 1 {
            let s = self.elems.get_mut(&scope).expect("scope");
            let taken = s.joins.entry(target.id.clone()).or_default();
            taken.push(flow.to_string());
            if target.incoming.iter().all(|i| taken.contains(i)) {
                for i in &target.incoming {
                    if let Some(pos) = taken.iter().position(|t| t == i) {
                        taken.remove(pos);
                    }
                }
                if taken.is_empty() {
                    s.joins.remove(&target.id);
                }
                self.activate(scope, &target, Map::new());
            }
        } else {
            self.activate(scope, &target, Map::new());
        }
    }

    fn has_active_children(&self, scope: i64) -> bool {
        self.elems
            .range(scope + 1..)
            .any(|(_, e)| e.flow_scope == Some(scope) && e.state.is_active())
    }

    /// Completes a scope (sub-process or process instance) that has no tokens left.
    fn scope_check(&mut self, scope: i64) {
        let Some(s) = self.elems.get(&scope) else {
            return;
        };
        if s.state != ElemState::Activated || !s.joins.is_empty() || self.has_active_children(scope)
        {
            return;
        }
        if s.element_type == "PROCESS" {
            self.complete_process(scope);
        } else {
            self.complete(scope);
        }
    }

    fn complete_process(&mut self, pi: i64) {
        let e = self.elems.get_mut(&pi).expect("pi");
        e.state = ElemState::Completed;
        e.end = Some(self.now);
        let parent = e.parent_ei;
        self.log("PROCESS_INSTANCE", "ELEMENT_COMPLETED", pi, Some(pi), "");
        self.correlate_buffered_after(pi);
        if let Some(ca) = parent
            && self
                .elems
                .get(&ca)
                .is_some_and(|c| c.state == ElemState::Activated)
        {
            let child_vars = self.vars.get(&pi).cloned().unwrap_or_default();
            self.elems.get_mut(&ca).expect("call activity").pending_vars = child_vars;
            self.complete(ca);
        }
    }

    /// Terminates an element instance and everything inside it (no scope completion check).
    fn terminate(&mut self, key: i64) {
        let Some(e) = self.elems.get(&key) else {
            return;
        };
        if !e.state.is_active() {
            return;
        }
        let children: Vec<i64> = self
            .elems
            .range(key + 1..)
            .filter(|(_, c)| c.flow_scope == Some(key) && c.state.is_active())
            .map(|(k, _)| *k)
            .collect();
        for c in children {
            self.terminate(c);
        }
        if let Some(child) = self.elems[&key].child_pi {
            self.terminate(child);
        }
        let jobs: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| {
                j.ei_key == key && !matches!(j.state, JobState::Completed | JobState::Canceled)
            })
            .map(|j| j.key)
            .collect();
        for j in jobs {
            self.jobs.get_mut(&j).expect("job").state = JobState::Canceled;
            self.log("JOB", "CANCELED", j, Some(key), "");
        }
        let tasks: Vec<i64> = self
            .user_tasks
            .values()
            .filter(|t| t.ei_key == key && t.state == UserTaskState::Created)
            .map(|t| t.key)
            .collect();
        for t in tasks {
            let ut = self.user_tasks.get_mut(&t).expect("task");
            ut.state = UserTaskState::Canceled;
            ut.completion_date = Some(self.now);
            self.log("USER_TASK", "CANCELED", t, Some(key), "");
        }
        self.remove_timers(key);
        self.resolve_incidents_of(key);
        let e = self.elems.get_mut(&key).expect("elem");
        e.state = ElemState::Terminated;
        e.end = Some(self.now);
        e.joins.clear();
        self.log("PROCESS_INSTANCE", "ELEMENT_TERMINATED", key, Some(key), "");
        self.correlate_buffered_after(key);
    }

    /// A message-started instance ended: buffered messages with its correlation key may start
    /// the next one.
    fn correlate_buffered_after(&mut self, pi: i64) {
        if self
            .elems
            .get(&pi)
            .is_none_or(|e| e.start_correlation_key.is_none())
        {
            return;
        }
        let now = self.now_ms();
        for i in 0..self.messages.len() {
            let m = self.messages[i].clone();
            if m.expires > now {
                self.correlate_start(i, &m);
            }
        }
    }

    /// Activates a boundary event after its attached activity was interrupted (or not).
    fn trigger_boundary(
        &mut self,
        attached: i64,
        boundary_id: &str,
        interrupting: bool,
        vars: Map<String, Json>,
    ) {
        let (process, _) = self.element_of(attached);
        let scope = self.elems[&attached].flow_scope.expect("scope");
        if interrupting {
            self.terminate(attached);
        }
        let b = process.element(boundary_id).clone();
        self.activate(scope, &b, vars);
        self.scope_check(scope);
    }

    /// Finds the innermost error boundary catching `code`, from `from` outwards (through call
    /// activities into parent processes). Returns (attached instance, boundary id).
    fn find_catch(&self, from: i64, code: &str) -> Option<(i64, String)> {
        let mut cur = from;
        loop {
            let e = self.elems.get(&cur)?;
            if e.element_type == "PROCESS" {
                cur = e.parent_ei?;
                continue;
            }
            let (process, el) = self.element_of(cur);
            let mut catch_all = None;
            for b in &el.boundaries {
                if let ElementKind::ErrorBoundary { error_code, .. } = &process.element(b).kind {
                    match error_code {
                        Some(c) if c == code => return Some((cur, b.clone())),
                        None if catch_all.is_none() => catch_all = Some(b.clone()),
                        _ => {}
                    }
                }
            }
            if let Some(b) = catch_all {
                return Some((cur, b));
            }
            cur = e.flow_scope?;
        }
    }

    // ------------------------------------------------------------------ jobs

    fn job_mut(&mut self, key: i64, action: &str) -> R<&mut JobRec> {
        match self.jobs.get_mut(&key) {
            Some(j) if !matches!(j.state, JobState::Completed | JobState::Canceled) => Ok(j),
            _ => Err(CommandError::NotFound(format!(
                "Expected to {action} job with key '{key}', but no such job was found"
            ))),
        }
    }

    fn check_no_incident(&self, key: i64, action: &str) -> R<()> {
        let j = &self.jobs[&key];
        if matches!(j.state, JobState::Failed | JobState::ErrorThrown) {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to {action} job with key '{key}', but it is in state '{}'",
                if j.state == JobState::Failed {
                    "FAILED"
                } else {
                    "ERROR_THROWN"
                }
            )));
        }
        Ok(())
    }

    pub fn complete_job(&mut self, key: i64, vars: Map<String, Json>) -> R<()> {
        self.job_mut(key, "complete")?;
        self.check_no_incident(key, "complete")?;
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::Completed;
        let ei = j.ei_key;
        self.log("JOB", "COMPLETED", key, Some(ei), "");
        if let Some(e) = self.elems.get_mut(&ei) {
            e.pending_vars = vars;
        }
        self.complete(ei);
        Ok(())
    }

    pub fn fail_job(
        &mut self,
        key: i64,
        retries: i32,
        message: &str,
        backoff_ms: i64,
        vars: Map<String, Json>,
    ) -> R<()> {
        self.job_mut(key, "fail")?;
        self.check_no_incident(key, "fail")?;
        let now = self.now_ms();
        let j = self.jobs.get_mut(&key).expect("job");
        j.retries = retries;
        j.error_message = message.to_string();
        j.worker.clear();
        j.deadline = -1;
        let ei = j.ei_key;
        if !vars.is_empty() {
            self.set_local(ei, vars);
        }
        self.log(
            "JOB",
            "FAILED",
            key,
            Some(ei),
            format!("retries={retries} backoff={backoff_ms}ms: {message}"),
        );
        if retries > 0 {
            self.make_activatable(key, if backoff_ms > 0 { now + backoff_ms } else { 0 });
        } else {
            self.jobs.get_mut(&key).expect("job").state = JobState::Failed;
            let m = if message.is_empty() {
                "No more retries left.".to_string()
            } else {
                message.to_string()
            };
            self.raise_incident(ei, "JOB_NO_RETRIES", m, Some(key), Retry::Job(key));
        }
        Ok(())
    }

    pub fn throw_error(
        &mut self,
        key: i64,
        code: &str,
        message: &str,
        vars: Map<String, Json>,
    ) -> R<()> {
        self.job_mut(key, "throw an error for")?;
        self.check_no_incident(key, "throw an error for")?;
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::ErrorThrown;
        j.error_message = message.to_string();
        let ei = j.ei_key;
        self.log(
            "JOB",
            "ERROR_THROWN",
            key,
            Some(ei),
            format!("{code}: {message}"),
        );
        match self.find_catch(ei, code) {
            Some((attached, boundary)) => {
                self.jobs.get_mut(&key).expect("job").state = JobState::Canceled;
                self.trigger_boundary(attached, &boundary, true, vars);
            }
            None => {
                if !vars.is_empty() {
                    self.set_local(ei, vars);
                }
                let m = format!(
                    "Expected to throw an error event with the code '{code}' with message '{message}', but it was not caught. No error events are available in the scope."
                );
                self.raise_incident(ei, "UNHANDLED_ERROR_EVENT", m, Some(key), Retry::Job(key));
            }
        }
        Ok(())
    }

    pub fn update_job_retries(&mut self, key: i64, retries: i32) -> R<()> {
        if retries < 1 {
            return Err(CommandError::InvalidArgument(format!(
                "Expected retries to be greater than zero, but was '{retries}'"
            )));
        }
        let j = self.job_mut(key, "update retries of")?;
        j.retries = retries;
        let ei = j.ei_key;
        self.log(
            "JOB",
            "RETRIES_UPDATED",
            key,
            Some(ei),
            format!("retries={retries}"),
        );
        Ok(())
    }

    pub fn update_job_timeout(&mut self, key: i64, timeout_ms: i64) -> R<()> {
        let now = self.now_ms();
        let j = self.job_mut(key, "update the timeout of")?;
        if j.state != JobState::Activated {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to update the timeout of job with key '{key}', but it is not active"
            )));
        }
        j.deadline = now + timeout_ms;
        let ei = j.ei_key;
        self.log(
            "JOB",
            "TIMEOUT_UPDATED",
            key,
            Some(ei),
            format!("timeout={timeout_ms}ms"),
        );
        Ok(())
    }

    /// Puts a job back in the activatable pool (optionally after a back-off) and pushes it to an
    /// open stream when it is activatable right away.
    fn make_activatable(&mut self, key: i64, retry_at: i64) {
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::Activatable;
        j.retry_at = retry_at;
        j.worker.clear();
        j.deadline = -1;
        if retry_at == 0 {
            self.push_job(key);
        }
    }

    fn to_activated(&self, key: i64, fetch: &[String]) -> ActivatedJob {
        let j = &self.jobs[&key];
        let mut vars = self.visible(j.ei_key);
        if !fetch.is_empty() {
            vars.retain(|k, _| fetch.contains(k));
        }
        ActivatedJob {
            key,
            r#type: j.job_type.clone(),
            process_instance_key: j.pi_key,
            bpmn_process_id: j.bpmn_process_id.clone(),
            process_definition_version: j.version,
            process_definition_key: j.def_key,
            element_id: j.element_id.clone(),
            element_instance_key: j.ei_key,
            custom_headers: Json::Object(j.headers.clone()).to_string(),
            worker: j.worker.clone(),
            retries: j.retries,
            deadline: j.deadline,
            variables: Json::Object(vars).to_string(),
            tenant_id: "<default>".into(),
            user_task: None,
            kind: 0,
            listener_event_type: 6,
        }
    }

    fn activate_job(&mut self, key: i64, worker: &str, timeout: i64) {
        let now = self.now_ms();
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::Activated;
        j.worker = worker.to_string();
        j.deadline = now + timeout;
        j.retry_at = 0;
        let ei = j.ei_key;
        self.log(
            "JOB",
            "ACTIVATED",
            key,
            Some(ei),
            format!("worker={worker} elementInstanceKey={ei}"),
        );
    }

    /// Activates up to `max` activatable jobs of `job_type` (ActivateJobs).
    pub fn activate_jobs(
        &mut self,
        job_type: &str,
        worker: &str,
        timeout: i64,
        max: usize,
        fetch: &[String],
    ) -> Vec<ActivatedJob> {
        let now = self.now_ms();
        let keys: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| {
                j.state == JobState::Activatable && j.job_type == job_type && j.retry_at <= now
            })
            .map(|j| j.key)
            .take(max)
            .collect();
        keys.into_iter()
            .map(|k| {
                self.activate_job(k, worker, timeout);
                self.to_activated(k, fetch)
            })
            .collect()
    }

    /// Pushes a job that just became activatable to an open stream of its type, if any.
    fn push_job(&mut self, key: i64) {
        let job_type = self.jobs[&key].job_type.clone();
        loop {
            let candidates: Vec<usize> = (0..self.streams.len())
                .filter(|i| self.streams[*i].job_type == job_type)
                .collect();
            if candidates.is_empty() {
                return;
            }
            let idx = candidates[self.stream_rr % candidates.len()];
            self.stream_rr = self.stream_rr.wrapping_add(1);
            let (worker, timeout, fetch) = {
                let s = &self.streams[idx];
                (s.worker.clone(), s.timeout, s.fetch.clone())
            };
            self.activate_job(key, &worker, timeout);
            let job = self.to_activated(key, &fetch);
            if self.streams[idx].tx.send(Ok(job)).is_ok() {
                return;
            }
            // stream closed: undo and try the next one
            self.streams.remove(idx);
            let j = self.jobs.get_mut(&key).expect("job");
            j.state = JobState::Activatable;
            j.worker.clear();
            j.deadline = -1;
            self.log("JOB", "YIELDED", key, None, "stream closed");
        }
    }

    pub fn remove_stream(&mut self, id: u64) {
        self.streams.retain(|s| s.id != id);
    }

    // ------------------------------------------------------------------ user tasks

    pub fn complete_user_task(&mut self, key: i64, vars: Map<String, Json>) -> R<()> {
        let t = self.user_tasks.get_mut(&key).ok_or_else(|| {
            CommandError::NotFound(format!(
                "Expected to complete user task with key '{key}', but no such user task was found"
            ))
        })?;
        if t.state != UserTaskState::Created {
            return Err(CommandError::NotFound(format!(
                "Expected to complete user task with key '{key}', but it is in state '{:?}'",
                t.state
            )));
        }
        t.state = UserTaskState::Completed;
        t.completion_date = Some(self.now);
        let ei = t.ei_key;
        self.log("USER_TASK", "COMPLETED", key, Some(ei), "");
        if let Some(e) = self.elems.get_mut(&ei) {
            e.pending_vars = vars;
        }
        self.complete(ei);
        Ok(())
    }

    pub fn assign_user_task(&mut self, key: i64, assignee: Option<String>) -> R<()> {
        let t = self
            .user_tasks
            .get_mut(&key)
            .filter(|t| t.state == UserTaskState::Created)
            .ok_or_else(|| {
                CommandError::NotFound(format!(
                    "Expected to assign user task with key '{key}', but no such user task was found"
                ))
            })?;
        t.assignee = assignee.clone();
        let ei = t.ei_key;
        self.log(
            "USER_TASK",
            "ASSIGNED",
            key,
            Some(ei),
            assignee.unwrap_or_default(),
        );
        Ok(())
    }

    // ------------------------------------------------------------------ messages

    pub fn publish_message(
        &mut self,
        name: &str,
        correlation_key: &str,
        ttl_ms: i64,
        message_id: &str,
        vars: Map<String, Json>,
    ) -> R<i64> {
        if name.trim().is_empty() {
            return Err(CommandError::InvalidArgument(
                "Expected message name to be not empty".into(),
            ));
        }
        let now = self.now_ms();
        if !message_id.is_empty()
            && self.messages.iter().any(|m| {
                m.name == name
                    && m.correlation_key == correlation_key
                    && m.message_id == message_id
                    && m.expires > now
            })
        {
            return Err(CommandError::AlreadyExists(format!(
                "Expected to publish a new message with id '{message_id}', but a message with that id was already published"
            )));
        }
        let key = self.next_key();
        let msg = MessageRec {
            key,
            name: name.to_string(),
            correlation_key: correlation_key.to_string(),
            message_id: message_id.to_string(),
            variables: vars,
            expires: now + ttl_ms.max(0),
            correlated: Vec::new(),
        };
        self.log.push(LogEvent {
            time: self.now,
            value_type: "MESSAGE",
            intent: "PUBLISHED",
            key,
            process_instance_key: -1,
            bpmn_process_id: String::new(),
            element_id: String::new(),
            element_type: String::new(),
            detail: format!("name={name} correlationKey={correlation_key}"),
        });
        self.messages.push(msg.clone());
        let idx = self.messages.len() - 1;
        self.correlate_start(idx, &msg);
        if ttl_ms <= 0 {
            self.messages.remove(idx);
        }
        Ok(key)
    }

    /// Starts an instance of every latest process with a message start event for this message
    /// (at most once per process per message).
    fn correlate_start(&mut self, idx: usize, msg: &MessageRec) {
        let mut latest: HashMap<String, DeployedProcess> = HashMap::new();
        for d in &self.processes {
            if latest
                .get(&d.bpmn_process_id)
                .is_none_or(|l| l.version < d.version)
            {
                latest.insert(d.bpmn_process_id.clone(), d.clone());
            }
        }
        let mut ids: Vec<&String> = latest.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for id in ids {
            let d = latest[&id].clone();
            if msg.correlated.contains(&id) || self.messages[idx].correlated.contains(&id) {
                continue;
            }
            let busy = !msg.correlation_key.is_empty()
                && self.elems.values().any(|e| {
                    e.element_type == "PROCESS"
                        && e.bpmn_process_id == id
                        && e.state.is_active()
                        && e.start_correlation_key.as_deref() == Some(msg.correlation_key.as_str())
                });
            if busy {
                continue;
            }
            if let Some((start, _)) = d
                .process
                .message_starts
                .iter()
                .find(|(_, n)| *n == msg.name)
                .cloned()
            {
                self.messages[idx].correlated.push(id.clone());
                let corr = (!msg.correlation_key.is_empty()).then(|| msg.correlation_key.clone());
                let pi = self.start_instance(&d, &start, msg.variables.clone(), None, corr);
                self.log(
                    "MESSAGE",
                    "CORRELATED",
                    msg.key,
                    Some(pi),
                    format!("name={}", msg.name),
                );
            }
        }
    }

    // ------------------------------------------------------------------ time

    /// Fires everything due at `self.now`; returns the next due time (simulated epoch ms).
    pub fn tick(&mut self) -> Option<i64> {
        let now = self.now_ms();
        loop {
            let due: Vec<(i64, TimerRec)> = self
                .timers
                .iter()
                .filter(|(_, t)| t.due <= now)
                .map(|(k, t)| (*k, t.clone()))
                .collect();
            if due.is_empty() {
                break;
            }
            for (k, t) in due {
                if self.timers.remove(&k).is_none() {
                    continue; // removed by an earlier timer of this round
                }
                self.log("TIMER", "TRIGGERED", k, Some(t.ei_key), "");
                match t.kind {
                    TimerKind::Catch => {
                        if let Some(e) = self.elems.get_mut(&t.ei_key) {
                            e.pending_vars = Map::new();
                        }
                        self.complete(t.ei_key);
                    }
                    TimerKind::Boundary {
                        boundary_id,
                        interrupting,
                    } => {
                        if self
                            .elems
                            .get(&t.ei_key)
                            .is_some_and(|e| e.state == ElemState::Activated)
                        {
                            self.trigger_boundary(t.ei_key, &boundary_id, interrupting, Map::new());
                        }
                    }
                }
            }
        }
        let timed_out: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| j.state == JobState::Activated && j.deadline <= now)
            .map(|j| j.key)
            .collect();
        for k in timed_out {
            let ei = self.jobs[&k].ei_key;
            self.log("JOB", "TIMED_OUT", k, Some(ei), "");
            self.make_activatable(k, 0);
        }
        let backed_off: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| j.state == JobState::Activatable && j.retry_at > 0 && j.retry_at <= now)
            .map(|j| j.key)
            .collect();
        for k in backed_off {
            let ei = self.jobs[&k].ei_key;
            self.log("JOB", "RECURRED_AFTER_BACKOFF", k, Some(ei), "");
            self.make_activatable(k, 0);
        }
        self.messages.retain(|m| m.expires > now);
        let mut next = self.timers.values().map(|t| t.due).min();
        for j in self.jobs.values() {
            let d = match j.state {
                JobState::Activated => Some(j.deadline),
                JobState::Activatable if j.retry_at > 0 => Some(j.retry_at),
                _ => None,
            };
            if let Some(d) = d {
                next = Some(next.map_or(d, |n: i64| n.min(d)));
            }
        }
        if let Some(m) = self.messages.iter().map(|m| m.expires).min() {
            next = Some(next.map_or(m, |n| n.min(m)));
        }
        next
    }
}

fn set_path(map: &mut Map<String, Json>, parts: &[&str], value: Json) {
    match parts {
        [] => {}
        [last] => {
            map.insert(last.to_string(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry(first.to_string())
                .or_insert_with(|| Json::Object(Map::new()));
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
        Json::String(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Json::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}
