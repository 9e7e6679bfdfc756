//! Incidents: raised where Zeebe raises them, resolved by retrying the failed step.
use super::*;

impl State {
    pub(super) fn raise_incident(
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
        self.log("INCIDENT", "CREATED", key, Some(ei_key), format!("{error_type}: {message}"));
        key
    }

    pub fn resolve_incident(&mut self, key: i64) -> R<()> {
        let inc = self.incidents.get_mut(&key).filter(|i| i.active).ok_or_else(|| {
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

    pub(super) fn resolve_incidents_of(&mut self, ei_key: i64) {
        let keys: Vec<i64> =
            self.incidents.values().filter(|i| i.active && i.ei_key == ei_key).map(|i| i.key).collect();
        for k in keys {
            self.incidents.get_mut(&k).expect("incident").active = false;
            self.log("INCIDENT", "RESOLVED", k, Some(ei_key), "element terminated");
        }
    }
}
