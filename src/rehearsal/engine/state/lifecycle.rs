//! Element lifecycle: activation, completion, leaving, termination, boundary events.
use super::*;

impl State {
    pub(super) fn activate(&mut self, scope: i64, el: &Element, pending: Map<String, Json>) -> i64 {
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

    pub(super) fn element_of(&self, key: i64) -> (Arc<Process>, Element) {
        let e = &self.elems[&key];
        let p = self.process_def(e.def_key);
        let el = p.element(&e.element_id).clone();
        (p, el)
    }

    pub(super) fn run_activation(&mut self, key: i64) {
        if !self.elems.get(&key).is_some_and(|e| e.state == ElemState::Activating) {
            return;
        }
        let (process, el) = self.element_of(key);
        if !el.inputs.is_empty() {
            match self.eval_mappings(&el.inputs, self.elems[&key].flow_scope.expect("scope"), &Map::new()) {
                Ok(vars) => self.set_local(key, vars),
                Err(e) => {
                    self.raise_incident(key, "IO_MAPPING_ERROR", e.0, None, Retry::Activate(key));
                    return;
                }
            }
        }
        match &el.kind {
            ElementKind::ServiceTask { job_type, retries, headers } => {
                let job_type = match self.eval_string(job_type, key, "job type") {
                    Ok(t) => t,
                    Err(m) => return self.activation_incident(key, m),
                };
                let retries = match self.eval(retries, key) {
                    Ok(Json::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(3) as i32,
                    Ok(Json::String(s)) if s.trim().parse::<i32>().is_ok() => s.trim().parse().unwrap_or(3),
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
                    headers: headers.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect(),
                    retries,
                    state: JobState::Activatable,
                    worker: String::new(),
                    deadline: -1,
                    retry_at: 0,
                    error_message: String::new(),
                    kind: 0,
                    listener_event_type: 6,
                    user_task_key: None,
                };
                let detail = format!("type={} retries={}", job.job_type, job.retries);
                self.jobs.insert(job_key, job);
                self.log("JOB", "CREATED", job_key, Some(key), detail);
                self.push_job(job_key);
            }
            ElementKind::UserTask(def) => {
                let mut task = match self.build_user_task(key, el.name.clone(), def) {
                    Ok(t) => t,
                    Err((error_type, m)) => {
                        self.raise_incident(key, error_type, m, None, Retry::Activate(key));
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
            ElementKind::CallActivity { process_id, propagate_parent, .. } => {
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
                        format!(
                            "Expected process with BPMN process id '{pid}' to have a none start event, but not found."
                        ),
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
            ElementKind::ErrorEnd { error_code } => {
                let Some((attached, boundary)) = self.find_catch(key, error_code) else {
                    let m = format!(
                        "Expected to throw an error event with the code '{error_code}', but it was not caught. No error events are available in the scope."
                    );
                    self.raise_incident(key, "UNHANDLED_ERROR_EVENT", m, None, Retry::Activate(key));
                    return;
                };
                self.mark_activated(key);
                self.log("ERROR", "THROWN", key, Some(key), error_code.clone());
                // interrupting: terminates the catching scope, this end event included
                self.trigger_boundary(attached, &boundary, true, Map::new());
            }
            ElementKind::TerminateEnd => {
                self.mark_activated(key);
                let scope = self.elems[&key].flow_scope.expect("scope");
                let others: Vec<i64> = self
                    .elems
                    .range(scope + 1..)
                    .filter(|(k, c)| **k != key && c.flow_scope == Some(scope) && c.state.is_active())
                    .map(|(k, _)| *k)
                    .collect();
                for c in others {
                    self.terminate(c);
                }
                if let Some(s) = self.elems.get_mut(&scope) {
                    s.joins.clear();
                }
                // completing the end event completes the (now empty) flow scope
                self.complete(key);
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

    pub(super) fn activation_incident(&mut self, key: i64, message: String) {
        self.raise_incident(key, "EXTRACT_VALUE_ERROR", message, None, Retry::Activate(key));
    }

    pub(super) fn eval_string(&self, expr: &str, scope: i64, what: &str) -> Result<String, String> {
        match self.eval(expr, scope) {
            Ok(Json::String(s)) if !s.is_empty() => Ok(s),
            Ok(other) => Err(format!("Expected {what} '{expr}' to evaluate to a non-empty string, but was '{other}'")),
            Err(e) => Err(e.0),
        }
    }

    pub(super) fn mark_activated(&mut self, key: i64) {
        if let Some(e) = self.elems.get_mut(&key) {
            e.state = ElemState::Activated;
        }
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", key, Some(key), "");
    }

    /// Simulated epoch ms at which a timer definition fires.
    pub(super) fn timer_due(&self, t: &TimerDef, scope: i64) -> Result<i64, String> {
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

    pub(super) fn add_timer(&mut self, ei_key: i64, due: i64, kind: TimerKind) {
        let key = self.next_key();
        let detail = format!("due {}", iso(Utc.timestamp_millis_opt(due).single().unwrap_or(self.now)));
        self.timers.insert(key, TimerRec { ei_key, due, kind });
        self.log("TIMER", "CREATED", key, Some(ei_key), detail);
    }

    /// Creates the timers of the timer boundary events; false when an incident was raised.
    pub(super) fn attach_boundaries(&mut self, key: i64, process: &Process, el: &Element) -> bool {
        for b in &el.boundaries {
            if let ElementKind::TimerBoundary { timer, interrupting, .. } = &process.element(b).kind {
                match self.timer_due(timer, key) {
                    Ok(due) => self.add_timer(
                        key,
                        due,
                        TimerKind::Boundary { boundary_id: b.clone(), interrupting: *interrupting },
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

    pub(super) fn remove_timers(&mut self, ei_key: i64) {
        self.timers.retain(|_, t| t.ei_key != ei_key);
    }

    /// The element finished its work: output mappings / propagation, then leave.
    pub(super) fn complete(&mut self, key: i64) {
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
        let call_propagates = matches!(el.kind, ElementKind::CallActivity { propagate_child: true, .. });
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
        } else if !call_propagates && !matches!(el.kind, ElementKind::CallActivity { .. }) && !pending.is_empty() {
            self.propagate(key, pending);
        }
        self.remove_timers(key);
        self.leave(key);
    }

    /// Chooses the outgoing flows of a completing element, completes it and takes them.
    pub(super) fn leave(&mut self, key: i64) {
        if self.elems.get(&key).is_none_or(|e| e.state != ElemState::Completing) {
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
                    let expr = if feel::is_expression(cond) { cond.clone() } else { format!("={cond}") };
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
                            self.raise_incident(key, "CONDITION_ERROR", e.0, None, Retry::Leave(key));
                            return;
                        }
                    }
                }
                match chosen.or_else(|| default.clone()) {
                    Some(f) => vec![f],
                    None if el.outgoing.is_empty() => vec![],
                    None => {
                        let m = "Expected at least one condition to evaluate to true, or to have a default flow"
                            .to_string();
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

    pub(super) fn take_flow(&mut self, scope: i64, process: &Process, flow: &str) {
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

    pub(super) fn has_active_children(&self, scope: i64) -> bool {
        self.elems.range(scope + 1..).any(|(_, e)| e.flow_scope == Some(scope) && e.state.is_active())
    }

    /// Completes a scope (sub-process or process instance) that has no tokens left.
    pub(super) fn scope_check(&mut self, scope: i64) {
        let Some(s) = self.elems.get(&scope) else {
            return;
        };
        if s.state != ElemState::Activated || !s.joins.is_empty() || self.has_active_children(scope) {
            return;
        }
        if s.element_type == "PROCESS" {
            self.complete_process(scope);
        } else {
            self.complete(scope);
        }
    }

    pub(super) fn complete_process(&mut self, pi: i64) {
        let e = self.elems.get_mut(&pi).expect("pi");
        e.state = ElemState::Completed;
        e.end = Some(self.now);
        let parent = e.parent_ei;
        self.log("PROCESS_INSTANCE", "ELEMENT_COMPLETED", pi, Some(pi), "");
        self.correlate_buffered_after(pi);
        if let Some(ca) = parent
            && self.elems.get(&ca).is_some_and(|c| c.state == ElemState::Activated)
        {
            let child_vars = self.vars.get(&pi).cloned().unwrap_or_default();
            self.elems.get_mut(&ca).expect("call activity").pending_vars = child_vars;
            self.complete(ca);
        }
    }

    /// Terminates an element instance and everything inside it (no scope completion check).
    pub(super) fn terminate(&mut self, key: i64) {
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
        // the called process instance: by parent link too, since a child that throws while it
        // starts (an error end event reached synchronously) does so before `child_pi` is set
        let called: Vec<i64> = self
            .elems
            .range(key + 1..)
            .filter(|(_, c)| c.element_type == "PROCESS" && c.parent_ei == Some(key) && c.state.is_active())
            .map(|(k, _)| *k)
            .chain(self.elems[&key].child_pi)
            .collect();
        for child in called {
            self.terminate(child);
        }
        let jobs: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| j.ei_key == key && !matches!(j.state, JobState::Completed | JobState::Canceled))
            .map(|j| j.key)
            .collect();
        for j in jobs {
            self.jobs.get_mut(&j).expect("job").state = JobState::Canceled;
            self.log("JOB", "CANCELED", j, Some(key), "");
        }
        let tasks: Vec<i64> = self
            .user_tasks
            .values()
            .filter(|t| t.ei_key == key && matches!(t.state, UserTaskState::Created | UserTaskState::Completing))
            .map(|t| t.key)
            .collect();
        for t in tasks {
            let ut = self.user_tasks.get_mut(&t).expect("task");
            if let Some(p) = ut.completing.take() {
                self.completions.insert(p.attempt, super::user_tasks::CompletionOutcome::Canceled);
            }
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
    pub(super) fn correlate_buffered_after(&mut self, pi: i64) {
        if self.elems.get(&pi).is_none_or(|e| e.start_correlation_key.is_none()) {
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
    pub(super) fn trigger_boundary(
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
    pub(super) fn find_catch(&self, from: i64, code: &str) -> Option<(i64, String)> {
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
}
