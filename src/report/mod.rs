//! The DR report a person forwards after a failover, a failback or a drill: what happened, how
//! long it took, who approved what and why, every mutating call, and what is left to do.
//!
//! One model ([`DrReport`]) built from what the management Camunda's REST API says about a
//! process instance tree ([`Observed`]: process instances, element instances, variables, user
//! tasks, incidents) plus the audit journal's lines for those instances. `c8dr report
//! --instance` fetches the observations over REST ([`camunda`]); `c8dr rehearse --report` fetches
//! them the same way from the rehearsal engine and adds what only the rehearsal knows (the
//! simulated clock, the answers it gave, the final state of the lab). [`html`] renders the model
//! as one self-contained HTML file.
use crate::procedure::journal::{EntryKind, JournalEntry};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub mod camunda;
pub mod html;

/// Prefix of the sub-processes that are one numbered step of the seed's procedure (a phase).
pub const STEP_PREFIX: &str = "Step_";
/// Prefix of the sub-processes that are verification loops (check, wait, check again).
pub const LOOP_PREFIX: &str = "Loop_";

/// The report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrReport {
    pub target: String,
    /// failover, failback, drill, or "failover + failback" (a rehearsal runs both).
    pub procedure: String,
    /// completed, rejected, aborted, incident, running, terminated, ... (the process's own word).
    pub outcome: String,
    /// Why the procedure ended as it did, when it says so (`report.outcomeReason`).
    pub outcome_reason: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Which clock the times are on, in words.
    pub clock: String,
    /// The process instances the report covers (root first), e.g. `dr-failover 2251799813685249`.
    pub instances: Vec<InstanceRef>,
    /// Recovery time split: detect → decide → execute → verify (seconds; `None` = not measured).
    pub rto: Rto,
    pub phases: Vec<Phase>,
    pub approvals: Vec<Approval>,
    pub incidents: Vec<Incident>,
    pub mutations: Vec<Mutation>,
    pub verifications: Vec<Verification>,
    /// The final state checked against the expected one, when it was checked.
    pub final_state: Option<FinalState>,
    /// What a person still has to do (empty only when the report can tell nothing is left).
    pub left_to_do: Vec<String>,
    /// Remarks on the figures (clocks, truncated data, ...).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRef {
    pub process_id: String,
    pub name: String,
    pub key: i64,
    pub state: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rto {
    /// From the region loss to the start of the procedure.
    pub detect: Option<f64>,
    /// Waiting on people: approvals, confirmations, manual steps (user task creation → completion).
    pub decide: Option<f64>,
    /// Everything else the procedure did.
    pub execute: Option<f64>,
    /// Verification loops (checks and the waits between them).
    pub verify: Option<f64>,
    /// Start of the procedure (or the loss, when known) to its end.
    pub total: Option<f64>,
    /// Start of the procedure (or the loss, when known) to the end of the failover: the service
    /// runs again (in one region). `None` without a completed failover.
    pub service_back: Option<f64>,
}

/// One lane of the timeline: a numbered step of the procedure (a `Step_` sub-process), or the
/// work of a process outside its numbered steps (validation, approvals, report).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: String,
    /// The process (BPMN name) the phase belongs to.
    pub process: String,
    pub process_instance_key: i64,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub element_id: String,
    /// The BPMN name (the id when the BPMN names none).
    pub name: String,
    /// service task, user task, call activity, verification loop
    pub kind: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// done, alreadyDone, refused, terminated, incident, running, ...
    pub outcome: String,
    /// Job attempts (journal) or element instances, at least 1.
    pub attempts: u32,
    /// Attempts that failed and were retried (journal `retry` outcomes).
    pub retries: u32,
    pub incidents: u32,
    /// A verification loop's checks: start time of each check.
    pub checks: Vec<DateTime<Utc>>,
    /// A verification loop's check task, by BPMN name.
    pub check_name: Option<String>,
    /// Mutating calls the step made (journal).
    pub mutations: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub task: String,
    pub user_task_key: Option<i64>,
    pub element_id: String,
    pub process_instance_key: i64,
    pub created: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub who: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    /// Completions the approval guard denied before this one: "<who>: <reason>".
    pub denied: Vec<String>,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub step: String,
    pub element_id: String,
    pub process_instance_key: i64,
    pub time: Option<DateTime<Utc>>,
    pub error_type: String,
    pub message: String,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mutation {
    pub time: DateTime<Utc>,
    /// The step (BPMN name) that made the call.
    pub step: String,
    pub region: Option<u8>,
    pub action: String,
    pub request: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub name: String,
    pub checks: u32,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// completed (verified), terminated (stopped waiting), running
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalState {
    pub restored: bool,
    pub expected: String,
    pub problems: Vec<String>,
}

/// What the management Camunda says about a tree of process instances (REST v2 search items,
/// as the server sends them) and the journal's lines for those instances.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Process instances, roots first (`processInstanceKey`, `processDefinitionId`,
    /// `processDefinitionName`, `parentProcessInstanceKey`, `startDate`, `endDate`, `state`).
    pub instances: Vec<Value>,
    /// Element instances (`elementInstanceKey`, `processInstanceKey`, `elementId`, `elementName`,
    /// `type`, `state`, `startDate`, `endDate`).
    pub elements: Vec<Value>,
    /// Variables (`name`, `value` as JSON text, `scopeKey`, `processInstanceKey`).
    pub variables: Vec<Value>,
    /// User tasks (`userTaskKey`, `name`, `elementId`, `assignee`, `state`, `creationDate`,
    /// `completionDate`, `processInstanceKey`).
    pub user_tasks: Vec<Value>,
    /// Incidents (`elementId`, `processInstanceKey`, `errorType`, `errorMessage`,
    /// `creationTime`, `state`).
    pub incidents: Vec<Value>,
    pub journal: Vec<JournalEntry>,
    /// What could not be read completely (a search that hit its page limit, a variable value
    /// cut by the search), in words.
    pub truncated: Vec<String>,
}

/// A key as the REST API sends it (a string in 8.8, a number in older servers).
pub fn key(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn time(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Seconds from `a` to `b`.
pub fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// One element instance, parsed.
#[derive(Debug, Clone)]
struct Elem {
    key: i64,
    pi: i64,
    id: String,
    name: String,
    kind: String,
    state: String,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
}

impl Elem {
    fn parse(v: &Value) -> Option<Elem> {
        let id = s(v, "elementId").to_string();
        Some(Elem {
            key: key(v.get("elementInstanceKey")?)?,
            pi: key(v.get("processInstanceKey")?)?,
            name: Some(s(v, "elementName")).filter(|n| !n.is_empty()).unwrap_or(&id).to_string(),
            id,
            kind: s(v, "type").to_string(),
            state: s(v, "state").to_string(),
            start: time(v, "startDate")?,
            end: time(v, "endDate"),
        })
    }

    /// Holds `other` in time and was created before it (keys grow within a partition): the
    /// scope `other` ran in, when `self` is a sub-process.
    fn encloses(&self, other: &Elem) -> bool {
        self.pi == other.pi
            && self.key < other.key
            && self.start <= other.start
            && match (self.end, other.end) {
                (None, _) => true,
                (Some(a), Some(b)) => b <= a,
                (Some(a), None) => other.start <= a && other.state != "ACTIVE",
            }
    }
}

/// The innermost sub-process with `prefix` that holds `e`.
fn scope_of<'a>(subs: &'a [Elem], e: &Elem, prefix: &str) -> Option<&'a Elem> {
    subs.iter().filter(|s| s.id.starts_with(prefix) && s.encloses(e)).max_by_key(|s| s.key)
}

fn kind_words(t: &str) -> String {
    match t {
        "SERVICE_TASK" => "service task".into(),
        "USER_TASK" => "user task".into(),
        "CALL_ACTIVITY" => "called process".into(),
        "SUB_PROCESS" => "verification loop".into(),
        other => other.to_lowercase().replace('_', " "),
    }
}

/// The process's own word for a procedure, from its process id.
pub fn procedure_of(process_id: &str) -> &str {
    match process_id {
        "dr-failover" => "failover",
        "dr-failback" => "failback",
        "dr-drill" => "drill",
        other => other,
    }
}

/// Variables of one process instance (its own scope), parsed from their JSON text.
fn instance_vars(observed: &Observed, pi: i64) -> Map<String, Value> {
    let mut out = Map::new();
    for v in &observed.variables {
        let scope = v.get("scopeKey").and_then(key);
        if v.get("processInstanceKey").and_then(key) != Some(pi) || scope.is_some_and(|s| s != pi) {
            continue;
        }
        let text = s(v, "value");
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
        out.insert(s(v, "name").to_string(), value);
    }
    out
}

/// The form field that holds an approval task's answer (docs/jobs.md, "User tasks and forms").
fn answer_field(element_id: &str) -> &'static str {
    match element_id {
        "ConfirmTraffic" => "trafficRerouted",
        id if id.starts_with("Timeout_") => "timeoutDecision",
        id if id.starts_with("StepFailed_") => "errorDecision",
        id if id.starts_with("ManualStep_") => "manualStepDone",
        _ => "decision",
    }
}

fn answer_words(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Null => "no answer".into(),
        other => other.to_string(),
    }
}

/// Builds the report of the observed instances. `roots` are the instances the report is about,
/// in order (a rehearsal's failover then failback); their called processes come along.
pub fn build(observed: &Observed) -> DrReport {
    let elems: Vec<Elem> = observed.elements.iter().filter_map(Elem::parse).collect();
    let instances: Vec<InstanceRef> = observed
        .instances
        .iter()
        .filter_map(|i| {
            let id = s(i, "processDefinitionId").to_string();
            Some(InstanceRef {
                name: Some(s(i, "processDefinitionName")).filter(|n| !n.is_empty()).unwrap_or(&id).to_string(),
                process_id: id,
                key: key(i.get("processInstanceKey")?)?,
                state: s(i, "state").to_string(),
            })
        })
        .collect();
    let roots: Vec<&Value> = observed
        .instances
        .iter()
        .filter(|i| {
            let parent = i.get("parentProcessInstanceKey").and_then(key);
            parent.is_none_or(|p| !instances.iter().any(|x| x.key == p))
        })
        .collect();
    let process_name = |pi: i64| instances.iter().find(|i| i.key == pi).map(|i| i.name.clone()).unwrap_or_default();
    let subs: Vec<Elem> = elems.iter().filter(|e| e.kind == "SUB_PROCESS").cloned().collect();
    let journal_step = |pi: i64, id: &str| -> Vec<&JournalEntry> {
        observed.journal.iter().filter(|j| j.process_instance_key == pi && j.element_id == id).collect()
    };
    let incident_items: Vec<Incident> = observed
        .incidents
        .iter()
        .filter_map(|i| {
            let pi = i.get("processInstanceKey").and_then(key)?;
            let id = s(i, "elementId").to_string();
            let step = elems.iter().find(|e| e.pi == pi && e.id == id).map(|e| e.name.clone()).unwrap_or(id.clone());
            Some(Incident {
                step,
                element_id: id,
                process_instance_key: pi,
                time: time(i, "creationTime"),
                error_type: s(i, "errorType").to_string(),
                message: s(i, "errorMessage").to_string(),
                active: s(i, "state") == "ACTIVE",
            })
        })
        .collect();

    // lanes: one per Step_ sub-process instance, one per process instance for the rest
    let mut phases: Vec<Phase> = Vec::new();
    let mut lane_of: BTreeMap<i64, usize> = BTreeMap::new(); // Step_ element key -> phase
    let mut general: BTreeMap<i64, usize> = BTreeMap::new(); // process instance -> phase
    let mut ordered: Vec<&Elem> = elems.iter().collect();
    ordered.sort_by_key(|e| (e.start, e.key));
    for e in ordered {
        let is_loop = e.kind == "SUB_PROCESS" && e.id.starts_with(LOOP_PREFIX);
        let is_step = matches!(e.kind.as_str(), "SERVICE_TASK" | "USER_TASK" | "CALL_ACTIVITY") || is_loop;
        if e.kind == "SUB_PROCESS" && e.id.starts_with(STEP_PREFIX) {
            phases.push(Phase {
                name: e.name.clone(),
                process: process_name(e.pi),
                process_instance_key: e.pi,
                start: e.start,
                end: e.end,
                steps: Vec::new(),
            });
            lane_of.insert(e.key, phases.len() - 1);
            continue;
        }
        // a check inside a verification loop is one of the loop's attempts, not a step
        if !is_step || (!is_loop && scope_of(&subs, e, LOOP_PREFIX).is_some()) {
            continue;
        }
        let lane = match scope_of(&subs, e, STEP_PREFIX).and_then(|s| lane_of.get(&s.key)) {
            Some(&i) => i,
            None => *general.entry(e.pi).or_insert_with(|| {
                phases.push(Phase {
                    name: format!(
                        "{}: checks and approvals",
                        process_name(e.pi).split(':').next().unwrap_or_default().trim()
                    ),
                    process: process_name(e.pi),
                    process_instance_key: e.pi,
                    start: e.start,
                    end: e.end,
                    steps: Vec::new(),
                });
                phases.len() - 1
            }),
        };
        let phase = &mut phases[lane];
        let incidents =
            incident_items.iter().filter(|i| i.process_instance_key == e.pi && i.element_id == e.id).count();
        let (checks, check_name, check_ids) = if is_loop {
            let inside: Vec<&Elem> = elems
                .iter()
                .filter(|c| c.kind == "SERVICE_TASK" && e.encloses(c) && !c.id.starts_with("Notify_"))
                .collect();
            let mut ids: Vec<String> = inside.iter().map(|c| c.id.clone()).collect();
            ids.dedup();
            (inside.iter().map(|c| c.start).collect(), inside.first().map(|c| c.name.clone()), ids)
        } else {
            (Vec::new(), None, Vec::new())
        };
        let journal_ids: Vec<&str> =
            if is_loop { check_ids.iter().map(String::as_str).collect() } else { vec![e.id.as_str()] };
        let lines: Vec<&JournalEntry> = journal_ids.iter().flat_map(|id| journal_step(e.pi, id)).collect();
        let retries = lines.iter().filter(|j| j.kind == EntryKind::Outcome && j.action == "retry").count() as u32;
        let mutations = lines.iter().filter(|j| j.kind == EntryKind::Call).count() as u32;
        let journal_outcome = lines
            .iter()
            .rev()
            .find(|j| j.kind == EntryKind::Outcome)
            .map(|j| if j.status == "alreadyDone" { "alreadyDone".to_string() } else { j.action.clone() });
        let attempts = lines.iter().filter(|j| j.kind == EntryKind::Attempt).count() as u32;
        // a user task's journal lines are its approval guard's (the task listener), not its own
        let journal_outcome = if e.kind == "USER_TASK" { None } else { journal_outcome };
        let attempts = if e.kind == "USER_TASK" { 1 } else { attempts };
        let outcome = if incidents > 0 && e.state == "ACTIVE" {
            "incident".to_string()
        } else {
            match e.state.as_str() {
                "ACTIVE" => "running".to_string(),
                "TERMINATED" => "terminated".to_string(),
                _ => match journal_outcome.as_deref() {
                    Some("done") | None => "done".to_string(),
                    Some(o) => o.to_string(),
                },
            }
        };
        // a step that ran again (the process looped back after "retry") is one row
        if let Some(step) = phase.steps.iter_mut().find(|s| s.element_id == e.id) {
            step.end = match (step.end, e.end) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            step.outcome = outcome;
            step.checks.extend(checks);
            step.incidents = step.incidents.max(incidents as u32);
            if !is_loop {
                step.attempts = step.attempts.max(attempts).max(step.attempts + 1);
            }
            continue;
        }
        phase.steps.push(Step {
            element_id: e.id.clone(),
            name: e.name.clone(),
            kind: kind_words(&e.kind),
            start: e.start,
            end: e.end,
            outcome,
            attempts: if is_loop { checks.len().max(1) as u32 } else { attempts.max(1) },
            retries,
            incidents: incidents as u32,
            checks,
            check_name,
            mutations,
        });
    }
    for p in &mut phases {
        p.start = p.steps.iter().map(|s| s.start).chain([p.start]).min().unwrap_or(p.start);
        p.end = if p.steps.iter().any(|s| s.end.is_none()) {
            None
        } else {
            p.steps.iter().filter_map(|s| s.end).chain(p.end).max()
        };
    }
    phases.retain(|p| !p.steps.is_empty());
    phases.sort_by_key(|p| p.start);

    // approvals: every user task, with its answer
    let mut approvals: Vec<Approval> = Vec::new();
    let mut tasks: Vec<&Value> = observed.user_tasks.iter().collect();
    tasks.sort_by_key(|t| time(t, "creationDate"));
    for t in &tasks {
        let Some(pi) = t.get("processInstanceKey").and_then(key) else {
            continue;
        };
        let id = s(t, "elementId").to_string();
        let vars = instance_vars(observed, pi);
        let field = answer_field(&id);
        let completed = time(t, "completionDate");
        // a later completed task of the same instance that writes the same field overwrote it:
        // the answer that let the procedure go on is all that is known
        let later = |o: &&&Value| {
            o.get("processInstanceKey").and_then(key) == Some(pi)
                && s(o, "state") == "COMPLETED"
                && time(o, "completionDate") > completed
        };
        let overwritten = tasks.iter().filter(later).any(|o| answer_field(s(o, "elementId")) == field);
        // every form has a `comment`: any later answer in the instance replaced it
        let comment_overwritten = tasks.iter().any(|o| later(&o));
        let state = s(t, "state").to_string();
        let (decision, reason) = if state != "COMPLETED" {
            (format!("not answered ({})", state.to_lowercase()), None)
        } else if overwritten {
            ("went ahead (the answer was overwritten by a later task)".to_string(), None)
        } else {
            (
                answer_words(vars.get(field).unwrap_or(&Value::Null)),
                vars.get("comment")
                    .and_then(Value::as_str)
                    .filter(|c| !c.trim().is_empty() && !comment_overwritten)
                    .map(str::to_string),
            )
        };
        approvals.push(Approval {
            user_task_key: t.get("userTaskKey").and_then(key),
            task: Some(s(t, "name")).filter(|n| !n.is_empty()).unwrap_or(&id).to_string(),
            element_id: id,
            process_instance_key: pi,
            created: time(t, "creationDate"),
            completed,
            who: Some(s(t, "assignee")).filter(|a| !a.is_empty()).map(str::to_string),
            decision,
            reason,
            denied: Vec::new(),
            state,
        });
    }

    let step_name = |pi: i64, id: &str| {
        elems.iter().find(|e| e.pi == pi && e.id == id).map(|e| e.name.clone()).unwrap_or_else(|| id.to_string())
    };
    let mut mutations: Vec<Mutation> = observed
        .journal
        .iter()
        .filter(|j| j.kind == EntryKind::Call)
        .map(|j| Mutation {
            time: j.time,
            step: step_name(j.process_instance_key, &j.element_id),
            region: j.region,
            action: j.action.clone(),
            request: j.request.clone(),
            status: j.status.clone(),
        })
        .collect();
    mutations.sort_by_key(|m| m.time);

    let mut verifications: Vec<Verification> = phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .filter(|s| s.kind == "verification loop")
        .map(|s| Verification {
            name: s.name.clone(),
            checks: s.checks.len() as u32,
            start: s.start,
            end: s.end,
            outcome: match s.outcome.as_str() {
                "done" => "verified".into(),
                "terminated" => "stopped waiting, not verified".into(),
                other => other.into(),
            },
        })
        .collect();
    verifications.sort_by_key(|v| v.start);

    // the procedure's own verdict, root by root
    let mut outcome = String::new();
    let mut outcome_reason = None;
    let mut target = String::new();
    let mut procedures = Vec::new();
    for r in &roots {
        let Some(pi) = r.get("processInstanceKey").and_then(key) else {
            continue;
        };
        let vars = instance_vars(observed, pi);
        if target.is_empty() {
            target = vars.get("target").and_then(Value::as_str).unwrap_or("").to_string();
        }
        procedures.push(procedure_of(s(r, "processDefinitionId")).to_string());
        let has_incident = incident_items.iter().any(|i| i.active && i.process_instance_key == pi);
        let own = match vars.get("report") {
            // a report that cannot be read is not "completed": fail closed
            Some(r) if !r.is_object() => Some("unknown (the process's report variable cannot be read)".to_string()),
            r => r.and_then(|r| r.get("outcome")).and_then(Value::as_str).map(str::to_string),
        };
        let word = match (s(r, "state"), own) {
            (_, _) if has_incident => "incident".to_string(),
            ("ACTIVE", _) => "running".to_string(),
            ("COMPLETED", Some(o)) => o,
            ("COMPLETED", None) => "completed".to_string(),
            (other, _) => other.to_lowercase(),
        };
        if outcome.is_empty() || (outcome == "completed" && word != "completed") {
            outcome = word;
            outcome_reason = vars
                .get("report")
                .and_then(|r| r.get("outcomeReason"))
                .filter(|v| !v.is_null())
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .filter(|r| !r.trim().is_empty());
        }
    }
    if outcome.is_empty() {
        outcome = "unknown (no process instance found)".into();
    }
    let start = roots.iter().filter_map(|r| time(r, "startDate")).min();
    let end = if roots.iter().any(|r| time(r, "endDate").is_none()) {
        None
    } else {
        roots.iter().filter_map(|r| time(r, "endDate")).max()
    };

    // RTO split
    let total = start.zip(end).map(|(a, b)| seconds(a, b));
    let decide: f64 =
        approvals.iter().filter_map(|a| a.created.zip(a.completed.or(end))).map(|(a, b)| seconds(a, b).max(0.0)).sum();
    let verify: f64 = verifications.iter().filter_map(|v| v.end.or(end).map(|e| seconds(v.start, e).max(0.0))).sum();
    let failover_end = observed
        .instances
        .iter()
        .filter(|i| s(i, "processDefinitionId") == "dr-failover" && s(i, "state") == "COMPLETED")
        .filter_map(|i| time(i, "endDate"))
        .min();
    let rto = Rto {
        service_back: start.zip(failover_end).map(|(a, b)| seconds(a, b)),
        detect: None,
        decide: Some(decide),
        verify: Some(verify),
        execute: total.map(|t| (t - decide - verify).max(0.0)),
        total,
    };

    let mut left_to_do = Vec::new();
    for i in &instances {
        if i.state == "ACTIVE" {
            let current: Vec<&str> = phases
                .iter()
                .flat_map(|p| p.steps.iter())
                .filter(|s| s.end.is_none() && elems.iter().any(|e| e.pi == i.key && e.id == s.element_id))
                .map(|s| s.name.as_str())
                .collect();
            left_to_do.push(format!(
                "{} (instance {}) is still running{}",
                i.name,
                i.key,
                if current.is_empty() { String::new() } else { format!(": now at {}", current.join(", ")) }
            ));
        }
    }
    for i in incident_items.iter().filter(|i| i.active) {
        left_to_do.push(format!(
            "Resolve the incident at \"{}\" ({}): {} — fix the cause, then retry it in Operate",
            i.step, i.error_type, i.message
        ));
    }
    for a in approvals.iter().filter(|a| matches!(a.state.as_str(), "CREATED" | "ASSIGNED" | "COMPLETING")) {
        left_to_do.push(format!(
            "Answer the user task \"{}\" in Tasklist{}",
            a.task,
            a.who.as_deref().map(|w| format!(" (assigned to {w})")).unwrap_or_default()
        ));
    }
    if !matches!(outcome.as_str(), "completed" | "alreadyDone" | "running" | "incident") {
        left_to_do.push(format!(
            "The procedure ended {outcome}{}: the installation is not where the procedure would have taken it; decide how to go on",
            outcome_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    if outcome == "completed" && procedures.last().map(String::as_str) == Some("failover") {
        left_to_do.push(
            "The installation runs in one region: once the lost region is rebuilt, fail back (c8dr start failback)"
                .into(),
        );
    }
    let mut notes = Vec::new();
    notes.extend(observed.truncated.iter().cloned());
    DrReport {
        target,
        procedure: procedures.join(" + "),
        outcome,
        outcome_reason,
        start,
        end,
        clock: "the management Camunda's clock".into(),
        instances,
        rto,
        phases,
        approvals,
        incidents: incident_items,
        mutations,
        verifications,
        final_state: None,
        left_to_do,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> String {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap().to_rfc3339()
    }

    fn el(k: i64, id: &str, ty: &str, start: i64, end: Option<i64>) -> Value {
        json!({"elementInstanceKey": k.to_string(), "processInstanceKey": "1", "elementId": id,
               "elementName": format!("{id} named"), "type": ty, "state": if end.is_some() { "COMPLETED" } else { "ACTIVE" },
               "startDate": t(start), "endDate": end.map(t)})
    }

    /// Steps land in the lane of the numbered step that holds them, even when the next step
    /// starts at the same millisecond the previous one ends; a loop's checks are its attempts.
    #[test]
    fn steps_go_to_the_phase_that_holds_them_and_loops_count_checks() {
        let observed = Observed {
            instances: vec![json!({"processInstanceKey": "1", "processDefinitionId": "dr-failover",
                "processDefinitionName": "DR failover", "state": "COMPLETED", "startDate": t(0), "endDate": t(60)})],
            elements: vec![
                el(2, "ValidateInput", "SERVICE_TASK", 0, Some(1)),
                el(3, "Step_A", "SUB_PROCESS", 1, Some(10)),
                el(4, "DoA", "SERVICE_TASK", 1, Some(10)),
                el(5, "Step_B", "SUB_PROCESS", 10, Some(50)),
                el(6, "DoB", "SERVICE_TASK", 10, Some(11)),
                el(7, "Loop_B", "SUB_PROCESS", 11, Some(50)),
                el(8, "CheckB", "SERVICE_TASK", 11, Some(12)),
                el(9, "CheckB", "SERVICE_TASK", 30, Some(31)),
                el(10, "CheckB", "SERVICE_TASK", 49, Some(50)),
            ],
            ..Default::default()
        };
        let r = build(&observed);
        let names: Vec<(&str, Vec<&str>)> = r
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.steps.iter().map(|s| s.element_id.as_str()).collect()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("DR failover: checks and approvals", vec!["ValidateInput"]),
                ("Step_A named", vec!["DoA"]),
                ("Step_B named", vec!["DoB", "Loop_B"]),
            ]
        );
        let lp = &r.phases[2].steps[1];
        assert_eq!((lp.checks.len(), lp.attempts, lp.check_name.as_deref()), (3, 3, Some("CheckB named")));
        assert_eq!(r.rto.verify, Some(39.0));
        assert_eq!(r.outcome, "completed");
    }

    /// Every form writes `comment` (and both failback approvals write `decision`): an earlier
    /// task must not show the later task's answer as its own.
    #[test]
    fn an_answer_overwritten_by_a_later_task_is_not_shown_as_the_earlier_ones() {
        let task = |k: i64, id: &str, done: i64| {
            json!({"userTaskKey": k.to_string(), "name": id, "elementId": id, "assignee": "bob",
                   "state": "COMPLETED", "processInstanceKey": "1", "creationDate": t(done - 5), "completionDate": t(done)})
        };
        let var = |name: &str, value: Value| json!({"name": name, "value": value.to_string(), "scopeKey": "1", "processInstanceKey": "1"});
        let observed = Observed {
            instances: vec![json!({"processInstanceKey": "1", "processDefinitionId": "dr-failback",
                "state": "COMPLETED", "startDate": t(0), "endDate": t(60)})],
            user_tasks: vec![task(20, "ApproveFailback", 10), task(21, "ConfirmRestored", 50)],
            variables: vec![var("decision", json!("confirm")), var("comment", json!("all green"))],
            ..Default::default()
        };
        let r = build(&observed);
        let a: Vec<(&str, &str, Option<&str>)> =
            r.approvals.iter().map(|a| (a.task.as_str(), a.decision.as_str(), a.reason.as_deref())).collect();
        assert_eq!(
            a,
            vec![
                ("ApproveFailback", "went ahead (the answer was overwritten by a later task)", None),
                ("ConfirmRestored", "confirm", Some("all green")),
            ]
        );
        assert_eq!(r.rto.decide, Some(10.0));
        assert_eq!(r.left_to_do, Vec::<String>::new(), "a completed failback leaves nothing");
    }

    /// A `report` variable that cannot be read (cut by the search) does not make a rejected
    /// run look completed.
    #[test]
    fn an_unreadable_report_variable_is_not_a_completed_run() {
        let observed = Observed {
            instances: vec![json!({"processInstanceKey": "1", "processDefinitionId": "dr-failover",
                "state": "COMPLETED", "startDate": t(0), "endDate": t(60)})],
            variables: vec![json!({"name": "report", "value": "{\"outcome\": \"rejec", "scopeKey": "1",
                "processInstanceKey": "1", "isTruncated": true})],
            ..Default::default()
        };
        let r = build(&observed);
        assert!(r.outcome.starts_with("unknown"), "{}", r.outcome);
        assert!(!r.left_to_do.is_empty(), "an unknown outcome leaves something to check");
    }
}
