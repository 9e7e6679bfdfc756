//! Camunda user tasks: completion and assignment.
use super::*;
use crate::rehearsal::engine::model::{TaskListenerDef, UserTaskDef};

/// A user task completion held by its `completing` task listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCompletion {
    pub attempt: u64,
    /// The variables the completion carries (applied only when it goes through).
    pub variables: Map<String, Json>,
    /// Index of the listener whose job runs now.
    pub listener: usize,
    pub job_key: i64,
}

/// How a completion request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionOutcome {
    /// Listener jobs still run.
    Pending,
    Completed,
    /// A listener denied it: the reason.
    Denied(String),
    /// The task was canceled (terminated) meanwhile.
    Canceled,
}

/// The part of a CompleteJob `result` a user task listener uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListenerResult {
    pub denied: bool,
    pub denied_reason: String,
    pub corrected_assignee: Option<String>,
    pub corrected_priority: Option<i32>,
}

impl State {
    /// Evaluates a user task's assignment, schedule, priority and form at activation; on
    /// failure the incident type and message Zeebe would raise.
    pub(super) fn build_user_task(
        &self,
        key: i64,
        name: Option<String>,
        def: &UserTaskDef,
    ) -> Result<UserTaskRec, (&'static str, String)> {
        let opt = |v: &Option<String>, what: &str| -> Result<Option<Json>, (&'static str, String)> {
            match v {
                None => Ok(None),
                Some(t) if t.trim().is_empty() => Ok(None),
                Some(t) => self.eval(t, key).map(Some).map_err(|e| ("EXTRACT_VALUE_ERROR", format!("{what}: {}", e.0))),
            }
        };
        let extract = |m: String| ("EXTRACT_VALUE_ERROR", m);
        let assignee = opt(&def.assignee, "assignee")?.and_then(json_to_opt_string);
        let candidate_groups = opt(&def.candidate_groups, "candidateGroups")?.map(json_to_list).unwrap_or_default();
        let candidate_users = opt(&def.candidate_users, "candidateUsers")?.map(json_to_list).unwrap_or_default();
        let due_date = opt(&def.due_date, "dueDate")?.and_then(json_to_opt_string);
        let follow_up_date = opt(&def.follow_up_date, "followUpDate")?.and_then(json_to_opt_string);
        for (what, d) in [("dueDate", &due_date), ("followUpDate", &follow_up_date)] {
            if let Some(d) = d {
                feel::parse_date_time(d).map_err(|e| extract(format!("{what}: {}", e.0)))?;
            }
        }
        let priority = match opt(&def.priority, "priority")? {
            None | Some(Json::Null) => 50,
            Some(Json::Number(n)) => n.as_i64().unwrap_or(50) as i32,
            Some(Json::String(s)) => {
                s.trim().parse().map_err(|_| extract(format!("priority: '{s}' is not a number")))?
            }
            Some(o) => return Err(extract(format!("priority: '{o}' is not a number"))),
        };
        let form_key = def
            .form_id
            .as_ref()
            .and_then(|f| self.forms.iter().filter(|d| &d.form_id == f).max_by_key(|d| d.version).map(|d| d.key));
        if let (Some(f), None) = (&def.form_id, form_key) {
            return Err((
                "FORM_NOT_FOUND",
                format!(
                    "Expected to find a form with id '{f}', but no form with this id is found, at least a form with this id should be available. To resolve the Incident please deploy a form with the same id"
                ),
            ));
        }
        let e = &self.elems[&key];
        Ok(UserTaskRec {
            key: 0,
            ei_key: key,
            pi_key: e.pi_key,
            def_key: e.def_key,
            bpmn_process_id: e.bpmn_process_id.clone(),
            element_id: e.element_id.clone(),
            name,
            state: UserTaskState::Created,
            assignee,
            candidate_groups,
            candidate_users,
            due_date,
            follow_up_date,
            priority,
            form_id: def.form_id.clone(),
            form_key,
            creation_date: self.now,
            completion_date: None,
            completing: None,
        })
    }
    /// Completes a user task at once when it has no `completing` listeners; otherwise starts
    /// the held completion (see [`State::begin_complete_user_task`]).
    pub fn complete_user_task(&mut self, key: i64, vars: Map<String, Json>) -> R<()> {
        self.begin_complete_user_task(key, vars).map(|_| ())
    }

    /// Camunda 8.8 completion: the task goes to COMPLETING and the first `completing` task
    /// listener's job is created; the completion (with `vars`) is held until every listener job
    /// completed, and is rejected, with nothing applied, when one denies it. Returns the attempt
    /// whose outcome [`State::completion_outcome`] reports.
    pub fn begin_complete_user_task(&mut self, key: i64, vars: Map<String, Json>) -> R<u64> {
        let t = self.user_tasks.get(&key).ok_or_else(|| {
            CommandError::NotFound(format!(
                "Expected to complete user task with key '{key}', but no such user task was found"
            ))
        })?;
        match t.state {
            UserTaskState::Created => {}
            UserTaskState::Completing => {
                return Err(CommandError::FailedPrecondition(format!(
                    "Expected to complete user task with key '{key}', but it is in state 'COMPLETING'"
                )));
            }
            other => {
                return Err(CommandError::NotFound(format!(
                    "Expected to complete user task with key '{key}', but it is in state '{other:?}'"
                )));
            }
        }
        self.next_completion += 1;
        let attempt = self.next_completion;
        if self.listeners_of(key).is_empty() {
            self.finish_completion(key, vars);
            self.completions.insert(attempt, CompletionOutcome::Completed);
            return Ok(attempt);
        }
        let t = self.user_tasks.get_mut(&key).expect("task");
        t.state = UserTaskState::Completing;
        t.completing = Some(PendingCompletion { attempt, variables: vars, listener: 0, job_key: 0 });
        let ei = t.ei_key;
        self.log("USER_TASK", "COMPLETING", key, Some(ei), "");
        self.completions.insert(attempt, CompletionOutcome::Pending);
        self.create_listener_job(key);
        Ok(attempt)
    }

    /// The outcome of a completion attempt (None: unknown attempt).
    pub fn completion_outcome(&self, attempt: u64) -> Option<CompletionOutcome> {
        self.completions.get(&attempt).cloned()
    }

    fn listeners_of(&self, key: i64) -> Vec<TaskListenerDef> {
        let t = &self.user_tasks[&key];
        self.processes
            .iter()
            .find(|p| p.key == t.def_key)
            .and_then(|p| p.process.elements.get(&t.element_id))
            .map(|e| match &e.kind {
                ElementKind::UserTask(def) => def.completing_listeners.clone(),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    }

    fn finish_completion(&mut self, key: i64, vars: Map<String, Json>) {
        let t = self.user_tasks.get_mut(&key).expect("task");
        t.state = UserTaskState::Completed;
        t.completion_date = Some(self.now);
        t.completing = None;
        let ei = t.ei_key;
        self.log("USER_TASK", "COMPLETED", key, Some(ei), "");
        if let Some(e) = self.elems.get_mut(&ei) {
            e.pending_vars = vars;
        }
        self.complete(ei);
    }

    /// Creates the job of the listener the held completion is at (kind TASK_LISTENER, event
    /// type COMPLETING, the user task's data in `io.camunda.zeebe:*` headers and `userTask`).
    fn create_listener_job(&mut self, key: i64) {
        let listeners = self.listeners_of(key);
        let t = self.user_tasks[&key].clone();
        let Some(p) = t.completing.clone() else { return };
        let Some(l) = listeners.get(p.listener) else { return };
        let ei = t.ei_key;
        let job_type = self.eval_string(&l.job_type, ei, "job type");
        let retries = match self.eval(&l.retries, ei) {
            Ok(Json::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(3) as i32),
            Ok(Json::String(s)) if s.trim().parse::<i32>().is_ok() => Ok(s.trim().parse().unwrap_or(3)),
            Ok(other) => Err(format!("expected task listener job retries to be a number, but was '{other}'")),
            Err(e) => Err(e.0),
        };
        let (job_type, retries) = match (job_type, retries) {
            (Ok(t), Ok(r)) => (t, r),
            (Err(m), _) | (_, Err(m)) => {
                // Zeebe raises an incident and retries the whole transition on resolution; the
                // rehearsal engine rejects the completion instead (the task stays CREATED)
                self.deny_completion(key, format!("task listener expression: {m}"));
                return;
            }
        };
        let job_key = self.next_key();
        let e = &self.elems[&ei];
        let mut headers = Map::new();
        let h = |v: &str| Json::String(v.to_string());
        headers.insert("io.camunda.zeebe:userTaskKey".into(), h(&key.to_string()));
        headers.insert("io.camunda.zeebe:action".into(), h("complete"));
        if let Some(a) = &t.assignee {
            headers.insert("io.camunda.zeebe:assignee".into(), h(a));
        }
        headers
            .insert("io.camunda.zeebe:candidateGroups".into(), h(&Json::from(t.candidate_groups.clone()).to_string()));
        headers.insert("io.camunda.zeebe:candidateUsers".into(), h(&Json::from(t.candidate_users.clone()).to_string()));
        if let Some(d) = &t.due_date {
            headers.insert("io.camunda.zeebe:dueDate".into(), h(d));
        }
        if let Some(d) = &t.follow_up_date {
            headers.insert("io.camunda.zeebe:followUpDate".into(), h(d));
        }
        if let Some(f) = t.form_key {
            headers.insert("io.camunda.zeebe:formKey".into(), h(&f.to_string()));
        }
        headers.insert("io.camunda.zeebe:priority".into(), h(&t.priority.to_string()));
        headers.insert("io.camunda.zeebe:changedAttributes".into(), h("[]"));
        let job = JobRec {
            key: job_key,
            job_type,
            ei_key: ei,
            pi_key: e.pi_key,
            def_key: e.def_key,
            bpmn_process_id: e.bpmn_process_id.clone(),
            version: self.def_version(e.def_key),
            element_id: e.element_id.clone(),
            headers,
            retries,
            state: JobState::Activatable,
            worker: String::new(),
            deadline: -1,
            retry_at: 0,
            error_message: String::new(),
            kind: 2,
            listener_event_type: 2,
            user_task_key: Some(key),
        };
        let detail = format!("type={} retries={} kind=TASK_LISTENER eventType=COMPLETING", job.job_type, job.retries);
        self.jobs.insert(job_key, job);
        if let Some(p) = self.user_tasks.get_mut(&key).and_then(|t| t.completing.as_mut()) {
            p.job_key = job_key;
        }
        self.log("JOB", "CREATED", job_key, Some(ei), detail);
        self.push_job(job_key);
    }

    /// A `completing` listener job completed: denied -> the completion is rejected and the task
    /// is CREATED again with its assignee, nothing applied; otherwise corrections are applied and
    /// the next listener runs, or the task completes with the held variables.
    pub(super) fn listener_job_completed(&mut self, task_key: i64, result: Option<&ListenerResult>) {
        if let Some(r) = result.filter(|r| r.denied) {
            self.deny_completion(task_key, r.denied_reason.clone());
            return;
        }
        if let Some(r) = result {
            let t = self.user_tasks.get_mut(&task_key).expect("task");
            if let Some(a) = &r.corrected_assignee {
                t.assignee = (!a.is_empty()).then(|| a.clone());
            }
            if let Some(p) = r.corrected_priority {
                t.priority = p;
            }
        }
        let more = {
            let listeners = self.listeners_of(task_key);
            let t = self.user_tasks.get_mut(&task_key).expect("task");
            let Some(p) = t.completing.as_mut() else { return };
            p.listener += 1;
            p.listener < listeners.len()
        };
        if more {
            self.create_listener_job(task_key);
        } else {
            let p = self.user_tasks.get_mut(&task_key).and_then(|t| t.completing.take()).expect("pending");
            self.finish_completion(task_key, p.variables);
            self.completions.insert(p.attempt, CompletionOutcome::Completed);
        }
    }

    fn deny_completion(&mut self, key: i64, reason: String) {
        let t = self.user_tasks.get_mut(&key).expect("task");
        let Some(p) = t.completing.take() else { return };
        t.state = UserTaskState::Created;
        let ei = t.ei_key;
        self.log("USER_TASK", "COMPLETION_DENIED", key, Some(ei), reason.clone());
        self.completions.insert(p.attempt, CompletionOutcome::Denied(reason));
    }

    pub fn assign_user_task(&mut self, key: i64, assignee: Option<String>) -> R<()> {
        let t = self.user_tasks.get_mut(&key).filter(|t| t.state == UserTaskState::Created).ok_or_else(|| {
            CommandError::NotFound(format!(
                "Expected to assign user task with key '{key}', but no such user task was found"
            ))
        })?;
        t.assignee = assignee.clone();
        let ei = t.ei_key;
        self.log("USER_TASK", "ASSIGNED", key, Some(ei), assignee.unwrap_or_default());
        Ok(())
    }
}
