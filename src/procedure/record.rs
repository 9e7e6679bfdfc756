//! Intent and outcome of every mutating call, recorded on the process instance (docs/jobs.md,
//! "Call records").
//!
//! Before a step changes a target (a [`super::api::Mutation`], a Helm upgrade, a pod restart, a
//! drill's region loss) it records its intent as a process variable; after the call it records
//! the outcome in the same variable. A step decides from these variables, as activated with its
//! job, plus what it observes on the target: any worker replica that picks up a re-activated
//! job continues where the last one stopped, without a local file. The journal stays as an audit
//! copy.
//!
//! Variables are set with SetVariables on the job's element instance with `local = false`:
//! Zeebe propagates each variable to the nearest scope that already has it, else to the process
//! instance (the root scope), so a later task of the same instance sees it at its activation.
//! Each fact has its own variable ([`variable_name`]): two tasks never rewrite one shared list,
//! so no update is lost.
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Prefix of every call-record variable.
pub const RECORD_PREFIX: &str = "c8drCall_";

/// The intent or outcome could not be set on the process instance.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "cannot record the call on the process instance (SetVariables on element instance {element_instance_key}): {message}"
)]
pub struct RecordError {
    pub element_instance_key: i64,
    pub message: String,
}

/// The port through which steps record on the process instance.
pub trait InstanceRecorder: Send + Sync {
    /// Sets `variables` from element instance `element_instance_key`, propagated (SetVariables
    /// with `local = false`): each lands in the nearest scope that has it, else at the root.
    fn record(
        &self,
        element_instance_key: i64,
        variables: Map<String, Value>,
    ) -> BoxFuture<'_, Result<(), RecordError>>;
}

/// A context without a recorder: every record fails, so no mutating call is made (fail closed).
pub struct NoRecorder;

impl InstanceRecorder for NoRecorder {
    fn record(&self, element_instance_key: i64, _: Map<String, Value>) -> BoxFuture<'_, Result<(), RecordError>> {
        Box::pin(async move {
            Err(RecordError {
                element_instance_key,
                message: "this worker has no connection to record on the process instance".into(),
            })
        })
    }
}

/// An in-process recorder: the variables of one process instance in memory (no scopes). For
/// running steps without an engine (tests): merge [`MemoryRecorder::variables`] into the
/// variables of the next job, as the engine does.
#[derive(Default)]
pub struct MemoryRecorder {
    vars: std::sync::Mutex<Map<String, Value>>,
    fail: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicUsize,
}

impl MemoryRecorder {
    /// Everything recorded so far.
    pub fn variables(&self) -> Map<String, Value> {
        self.vars.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Makes every later record fail (true) or succeed again (false).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::SeqCst);
    }
    /// How many records were attempted.
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Forgets one variable (a test simulating a lost outcome).
    pub fn set(&self, name: &str, value: Value) {
        self.vars.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), value);
    }
}

impl InstanceRecorder for MemoryRecorder {
    fn record(
        &self,
        element_instance_key: i64,
        variables: Map<String, Value>,
    ) -> BoxFuture<'_, Result<(), RecordError>> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let result = if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            Err(RecordError { element_instance_key, message: "recording is failing (test)".into() })
        } else {
            self.vars.lock().unwrap_or_else(|p| p.into_inner()).extend(variables);
            Ok(())
        };
        Box::pin(async move { result })
    }
}

/// Outcome status of an announced call that was not made (the platform refused it).
pub const NOT_MADE: &str = "not-made";
/// Outcome status of an announced call a person is asked to make (manual platform).
pub const MANUAL: &str = "manual";

/// The records one job set, by fact (see `StepEnv::written`).
#[derive(Debug, Default)]
pub struct Written(std::sync::Mutex<(std::collections::HashMap<String, CallRecord>, usize)>);

impl Written {
    pub fn get(&self, fact: &str) -> Option<CallRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0.get(fact).cloned()
    }
    pub fn insert(&self, fact: &str, record: CallRecord) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.0.insert(fact.to_string(), record);
        w.1 += 1;
    }
    /// How many records (intents and outcomes) this job has set so far: grows with every call
    /// the job announces, so a caller can tell whether a step run acted.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

/// The outcome of a recorded call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOutcome {
    /// `ok`, an HTTP status (`409`, `503`, ...) or `error`.
    pub status: String,
    pub message: String,
    pub at: String,
}

/// One recorded call: the value of a `c8drCall_*` variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// What was asked (`pause-exporting`, `restart-stuck-broker`, ...).
    pub action: String,
    /// The region the call goes to.
    pub region: u8,
    /// The request, summarized (no secrets).
    pub request: String,
    /// Job type, job and element of the task that made the call.
    pub step: String,
    pub job_key: i64,
    pub element_instance_key: i64,
    pub element_id: String,
    pub worker: String,
    /// When the intent was recorded (RFC 3339).
    pub intent_at: String,
    /// What the step observed right before the call, to tell later whether it took effect
    /// (e.g. the restarted pod's `notReadySince`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Value>,
    /// `None`: the intent was recorded, the outcome was not (a crash in between): unknown.
    #[serde(default)]
    pub outcome: Option<CallOutcome>,
}

impl CallRecord {
    /// The call was answered with success.
    pub fn succeeded(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.status == "ok")
    }
    /// Intent without outcome: the call may or may not have been made.
    pub fn unknown(&self) -> bool {
        self.outcome.is_none()
    }
    /// The target refused the call permanently (4xx), or the call was not made (a platform
    /// that refuses, [`NOT_MADE`]): it changed nothing.
    pub fn rejected(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| o.status.starts_with('4') || o.status == NOT_MADE)
    }
    /// May have changed the target: succeeded, unknown, or failed with an unreadable answer.
    pub fn possibly_applied(&self) -> bool {
        !self.rejected()
    }
}

/// The variable that holds the record of `fact`: [`RECORD_PREFIX`] and the fact with every
/// character other than ASCII letters and digits replaced by `_` (usable in FEEL).
pub fn variable_name(fact: &str) -> String {
    let body: String = fact.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{RECORD_PREFIX}{body}")
}

/// The record of `fact` among a job's variables; `None` when absent. A value that is not a
/// record (a person set it by hand) is an error: the step cannot tell what happened.
pub fn find(variables: &Map<String, Value>, fact: &str) -> Result<Option<CallRecord>, String> {
    let name = variable_name(fact);
    match variables.get(&name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            format!("variable `{name}` is not a call record written by c8dr ({e}): remove it or restore it")
        }),
    }
}

pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a recorded time back.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_feel_identifiers_and_distinct_per_fact() {
        assert_eq!(variable_name("exporting-r0"), "c8drCall_exporting_r0");
        assert_eq!(variable_name("exporter-r0-camundaregion1"), "c8drCall_exporter_r0_camundaregion1");
        assert_ne!(variable_name("restart-r1-camunda-zeebe-1"), variable_name("restart-r1-camunda-zeebe-3"));
    }

    #[test]
    fn a_record_round_trips_and_a_foreign_value_is_an_error() {
        let r = CallRecord {
            action: "pause-exporting".into(),
            region: 0,
            request: "POST /actuator/exporting/pause".into(),
            step: "c8dr.pause-exporting".into(),
            job_key: 1,
            element_instance_key: 2,
            element_id: "pause".into(),
            worker: "w".into(),
            intent_at: now(),
            observed: None,
            outcome: None,
        };
        let mut vars = Map::new();
        vars.insert(variable_name("exporting-r0"), serde_json::to_value(&r).unwrap());
        let back = find(&vars, "exporting-r0").unwrap().unwrap();
        assert!(back.unknown() && back.possibly_applied() && !back.succeeded());
        vars.insert(variable_name("x"), json!("paused"));
        assert!(find(&vars, "x").unwrap_err().contains("c8drCall_x"));
        assert_eq!(find(&vars, "absent").unwrap(), None);
    }
}
