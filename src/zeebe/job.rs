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
    /// FailJob with `retries - 1`; the engine waits `retry_backoff` before the next attempt.
    Fail { message: String, retry_backoff: Option<Duration> },
    /// ThrowError: a business outcome the process routes by `code`.
    BpmnError { code: String, message: String, variables: Map<String, Value> },
}
