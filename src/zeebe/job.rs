//! What a handler receives and returns: domain types, free of prost. The worker runtime converts
//! `ActivatedJob` into [`Job`] and a [`JobOutcome`] into CompleteJob / FailJob / ThrowError.
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// An activated job, as a handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub key: i64,
    pub job_type: String,
    pub process_instance_key: i64,
    pub bpmn_process_id: String,
    pub process_definition_key: i64,
    pub element_id: String,
    pub element_instance_key: i64,
    /// Task headers (`zeebe:taskHeaders`).
    pub custom_headers: BTreeMap<String, String>,
    /// The job's variables (a JSON object; empty when the job carried none).
    pub variables: Map<String, Value>,
    pub retries: i32,
    /// Epoch milliseconds after which the engine may hand the job to another worker.
    pub deadline: i64,
    pub worker: String,
    pub tenant_id: String,
}

/// What a handler decided. Only the worker runtime talks to the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// CompleteJob with these variables (a JSON object).
    Complete(Map<String, Value>),
    /// FailJob; the engine waits `retry_backoff` before the next attempt. `retries`: the job's
    /// retries to set (`None`: the activated job's `retries - 1`; `Some(job.retries)` keeps them,
    /// e.g. while a transient-retry budget lasts). `variables` are set in the job's local scope
    /// (FailJob `variables`), where the next activation, by any worker, sees them.
    Fail { message: String, retry_backoff: Option<Duration>, retries: Option<i32>, variables: Map<String, Value> },
    /// CompleteJob of a user task listener job: no variables, and a JobResult (type
    /// `userTask`) that denies the lifecycle transition with this reason when `deny` is Some.
    CompleteListener { deny: Option<String> },
    /// ThrowError: a business outcome the process routes by `code`.
    BpmnError { code: String, message: String, variables: Map<String, Value> },
}

/// Why an `ActivatedJob` could not be turned into a [`Job`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobDecodeError {
    #[error("job variables are not a JSON object: {0}")]
    Variables(String),
    #[error("job custom headers are not a JSON object of strings: {0}")]
    Headers(String),
}

impl JobOutcome {
    /// FailJob spending one retry (`retries - 1`), no variables.
    pub fn fail(message: impl Into<String>, retry_backoff: Option<Duration>) -> Self {
        JobOutcome::Fail { message: message.into(), retry_backoff, retries: None, variables: Map::new() }
    }
}

impl Job {
    /// Converts the gateway's `ActivatedJob` (variables and headers are JSON strings).
    pub fn from_activated(raw: &crate::gateway_protocol::ActivatedJob) -> Result<Job, JobDecodeError> {
        let variables = parse_object(&raw.variables).map_err(JobDecodeError::Variables)?;
        let headers = parse_object(&raw.custom_headers).map_err(JobDecodeError::Headers)?;
        let custom_headers = headers
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        Ok(Job {
            key: raw.key,
            job_type: raw.r#type.clone(),
            process_instance_key: raw.process_instance_key,
            bpmn_process_id: raw.bpmn_process_id.clone(),
            process_definition_key: raw.process_definition_key,
            element_id: raw.element_id.clone(),
            element_instance_key: raw.element_instance_key,
            custom_headers,
            variables,
            retries: raw.retries,
            deadline: raw.deadline,
            worker: raw.worker.clone(),
            tenant_id: raw.tenant_id.clone(),
        })
    }
}

fn parse_object(text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(format!("got {}", kind_of(&other))),
        Err(e) => Err(e.to_string()),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway_protocol::ActivatedJob;
    use serde_json::json;

    fn raw(variables: &str, headers: &str) -> ActivatedJob {
        ActivatedJob {
            key: 7,
            r#type: "c8dr.helm".into(),
            process_instance_key: 9,
            element_id: "helm-deploy".into(),
            variables: variables.into(),
            custom_headers: headers.into(),
            retries: 3,
            ..Default::default()
        }
    }

    #[test]
    fn converts_variables_and_headers() {
        let job =
            Job::from_activated(&raw(r#"{"target":"prod","lostRegion":1}"#, r#"{"action":"deploy-recreated","n":2}"#))
                .unwrap();
        assert_eq!(job.key, 7);
        assert_eq!(job.job_type, "c8dr.helm");
        assert_eq!(job.variables["lostRegion"], json!(1));
        assert_eq!(job.custom_headers["action"], "deploy-recreated");
        assert_eq!(job.custom_headers["n"], "2");
        let empty = Job::from_activated(&raw("", "")).unwrap();
        assert!(empty.variables.is_empty() && empty.custom_headers.is_empty());
    }

    #[test]
    fn rejects_non_object_variables_and_headers() {
        assert!(matches!(Job::from_activated(&raw("[1]", "{}")), Err(JobDecodeError::Variables(_))));
        assert!(matches!(Job::from_activated(&raw("{}", "nope")), Err(JobDecodeError::Headers(_))));
    }
}
