//! Jobs: activation (poll and stream), completion, failure, errors, timeouts.
use super::*;

impl State {
    pub(super) fn job_mut(&mut self, key: i64, action: &str) -> R<&mut JobRec> {
        match self.jobs.get_mut(&key) {
            Some(j) if !matches!(j.state, JobState::Completed | JobState::Canceled) => Ok(j),
            _ => Err(CommandError::NotFound(format!(
                "Expected to {action} job with key '{key}', but no such job was found"
            ))),
        }
    }

    pub(super) fn check_no_incident(&self, key: i64, action: &str) -> R<()> {
        let j = &self.jobs[&key];
        if matches!(j.state, JobState::Failed | JobState::ErrorThrown) {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to {action} job with key '{key}', but it is in state '{}'",
                if j.state == JobState::Failed { "FAILED" } else { "ERROR_THROWN" }
            )));
        }
        Ok(())
    }

    pub fn complete_job(&mut self, key: i64, vars: Map<String, Json>) -> R<()> {
        self.complete_job_with_result(key, vars, None)
    }

    /// CompleteJob with an optional `result` (user task listeners: denied, deniedReason,
    /// corrections). A task listener job completes without variables, as in Camunda 8.8.
    pub fn complete_job_with_result(
        &mut self,
        key: i64,
        vars: Map<String, Json>,
        result: Option<user_tasks::ListenerResult>,
    ) -> R<()> {
        self.job_mut(key, "complete")?;
        self.check_no_incident(key, "complete")?;
        let j = self.jobs.get_mut(&key).expect("job");
        if let Some(task) = j.user_task_key {
            if !vars.is_empty() {
                return Err(CommandError::InvalidArgument(format!(
                    "Expected to complete task listener job with key '{key}' without variables, but variables were provided: task listener jobs cannot be completed with variables"
                )));
            }
            j.state = JobState::Completed;
            let ei = j.ei_key;
            let detail = match &result {
                Some(r) if r.denied => format!("denied: {}", r.denied_reason),
                _ => String::new(),
            };
            self.log("JOB", "COMPLETED", key, Some(ei), detail);
            self.listener_job_completed(task, result.as_ref());
            return Ok(());
        }
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
        self.log("JOB", "FAILED", key, Some(ei), format!("retries={retries} backoff={backoff_ms}ms: {message}"));
        if retries > 0 {
            self.make_activatable(key, if backoff_ms > 0 { now + backoff_ms } else { 0 });
        } else {
            self.jobs.get_mut(&key).expect("job").state = JobState::Failed;
            let m = if message.is_empty() { "No more retries left.".to_string() } else { message.to_string() };
            let kind =
                if self.jobs[&key].user_task_key.is_some() { "TASK_LISTENER_NO_RETRIES" } else { "JOB_NO_RETRIES" };
            self.raise_incident(ei, kind, m, Some(key), Retry::Job(key));
        }
        Ok(())
    }

    pub fn throw_error(&mut self, key: i64, code: &str, message: &str, vars: Map<String, Json>) -> R<()> {
        self.job_mut(key, "throw an error for")?;
        self.check_no_incident(key, "throw an error for")?;
        if self.jobs[&key].user_task_key.is_some() {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to throw an error for job with key '{key}', but it is a task listener job: task listeners cannot throw BPMN errors (deny the transition or fail the job)"
            )));
        }
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::ErrorThrown;
        j.error_message = message.to_string();
        let ei = j.ei_key;
        self.log("JOB", "ERROR_THROWN", key, Some(ei), format!("{code}: {message}"));
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
        self.log("JOB", "RETRIES_UPDATED", key, Some(ei), format!("retries={retries}"));
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
        self.log("JOB", "TIMEOUT_UPDATED", key, Some(ei), format!("timeout={timeout_ms}ms"));
        Ok(())
    }

    /// Puts a job back in the activatable pool (optionally after a back-off) and pushes it to an
    /// open stream when it is activatable right away.
    pub(super) fn make_activatable(&mut self, key: i64, retry_at: i64) {
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::Activatable;
        j.retry_at = retry_at;
        j.worker.clear();
        j.deadline = -1;
        if retry_at == 0 {
            self.push_job(key);
        }
    }

    pub(super) fn to_activated(&self, key: i64, fetch: &[String]) -> ActivatedJob {
        let j = &self.jobs[&key];
        let mut vars = self.visible(j.ei_key);
        // a completing listener sees the variables the completion carries
        let task = j.user_task_key.and_then(|t| self.user_tasks.get(&t));
        if let Some(p) = task.and_then(|t| t.completing.as_ref()) {
            vars.extend(p.variables.clone());
        }
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
            user_task: task.map(|t| crate::gateway_protocol::UserTaskProperties {
                action: Some("complete".into()),
                assignee: t.assignee.clone(),
                candidate_groups: t.candidate_groups.clone(),
                candidate_users: t.candidate_users.clone(),
                changed_attributes: Vec::new(),
                due_date: t.due_date.clone(),
                follow_up_date: t.follow_up_date.clone(),
                form_key: t.form_key,
                priority: Some(t.priority),
                user_task_key: Some(t.key),
            }),
            kind: j.kind,
            listener_event_type: j.listener_event_type,
        }
    }

    pub(super) fn activate_job(&mut self, key: i64, worker: &str, timeout: i64) {
        let now = self.now_ms();
        let j = self.jobs.get_mut(&key).expect("job");
        j.state = JobState::Activated;
        j.worker = worker.to_string();
        j.deadline = now + timeout;
        j.retry_at = 0;
        let ei = j.ei_key;
        self.log("JOB", "ACTIVATED", key, Some(ei), format!("worker={worker} elementInstanceKey={ei}"));
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
            .filter(|j| j.state == JobState::Activatable && j.job_type == job_type && j.retry_at <= now)
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
    pub(super) fn push_job(&mut self, key: i64) {
        let job_type = self.jobs[&key].job_type.clone();
        loop {
            let candidates: Vec<usize> =
                (0..self.streams.len()).filter(|i| self.streams[*i].job_type == job_type).collect();
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
}
