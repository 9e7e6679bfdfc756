//! Job type -> step; variables in/out; step outcome -> complete / fail / BPMN error.
//!
//! [`handle`] is what the worker runtime calls for every activated `c8dr.*` job. It resolves the
//! target named by the variable `target` (clients built lazily and cached per target), runs the
//! step (see `procedure`), journals it, and turns the outcome into a [`JobOutcome`].
use crate::config::{Config, TargetConfig};
use crate::procedure::adapter::ClientTarget;
use crate::procedure::api::TargetApi;
use crate::procedure::drill::{NoRegionControl, RegionControl};
use crate::procedure::journal::{EntryKind, Journal, JournalEntry, scrub};
use crate::procedure::platform::{self, LabControl, Platform};
use crate::procedure::{StepEnv, StepInput, StepOutcome, Watch, run_step_watching};
use crate::target::Target;
use crate::zeebe::{Job, JobOutcome};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

/// Every job type this worker handles (docs/jobs.md).
pub const JOB_TYPES: &[&str] = &[
    "c8dr.validate-input",
    "c8dr.assess-failover",
    "c8dr.remove-brokers",
    "c8dr.await-change",
    "c8dr.verify-topology",
    "c8dr.disable-exporters",
    "c8dr.verify-exporters",
    "c8dr.preflight-recreated",
    "c8dr.helm",
    "c8dr.verify-profiles",
    "c8dr.await-brokers-visible",
    "c8dr.pause-exporting",
    "c8dr.resume-exporting",
    "c8dr.register-snapshot-repo",
    "c8dr.create-snapshot",
    "c8dr.await-snapshot",
    "c8dr.restore-snapshot",
    "c8dr.await-restore",
    "c8dr.enable-exporter",
    "c8dr.add-brokers",
    "c8dr.drill-guard",
    "c8dr.drill-canaries",
    "c8dr.drill-region",
    "c8dr.notify",
    "c8dr.report",
    "c8dr.approval-guard",
];

pub fn job_types() -> &'static [&'static str] {
    JOB_TYPES
}

/// Builds the target port for a configured target (the real clients by default; tests inject).
pub type Connector = dyn Fn(&str, &TargetConfig) -> Result<Arc<dyn TargetApi>, String> + Send + Sync;

/// Everything one target needs, built once.
struct TargetHandles {
    api: Arc<dyn TargetApi>,
    platform: Box<dyn Platform>,
    region_control: Box<dyn RegionControl>,
}

/// Shared by all jobs of a worker.
pub struct StepContext {
    pub config: Arc<Config>,
    pub journal: Journal,
    pub worker_name: String,
    connector: Box<Connector>,
    targets: Mutex<HashMap<String, Arc<TargetHandles>>>,
}

fn connect_clients(name: &str, config: &TargetConfig) -> Result<Arc<dyn TargetApi>, String> {
    let target = Target::from_config(name, config).map_err(|e| e.to_string())?;
    Ok(Arc::new(ClientTarget::new(target)))
}

impl StepContext {
    /// Context with the real target clients; journal at `config.journal.path`.
    pub fn new(config: Arc<Config>) -> Self {
        let journal = Journal::new(config.journal.path.clone());
        let worker_name = config.worker.name.clone();
        Self::with_connector(config, journal, worker_name, Box::new(connect_clients))
    }

    /// Context with a custom target port (tests, simulations).
    pub fn with_connector(
        config: Arc<Config>,
        journal: Journal,
        worker_name: String,
        connector: Box<Connector>,
    ) -> Self {
        Self { config, journal, worker_name, connector, targets: Mutex::new(HashMap::new()) }
    }

    fn handles(&self, name: &str, config: &TargetConfig) -> Result<Arc<TargetHandles>, String> {
        let mut map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(name) {
            return Ok(h.clone());
        }
        let api = (self.connector)(name, config)?;
        let region_control: Box<dyn RegionControl> = match &config.lab_control_url {
            Some(url) => Box::new(LabControl::new(url.clone())),
            None => Box::new(NoRegionControl),
        };
        let h = Arc::new(TargetHandles { api, platform: platform::for_target(config), region_control });
        map.insert(name.to_string(), h.clone());
        Ok(h)
    }

    /// How long verification checks keep observing (`[worker] check_watch_ms`, `check_poll_ms`).
    fn watch(&self) -> Option<Watch> {
        let w = &self.config.worker;
        (w.check_watch_ms > 0 && w.check_poll_ms > 0).then(|| Watch {
            window: Duration::from_millis(w.check_watch_ms),
            poll: Duration::from_millis(w.check_poll_ms),
        })
    }

    fn backoff(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.worker.fail_retry_backoff_ms))
    }
}

fn input_of(ctx: &StepContext, job: Job, target_name: String) -> StepInput {
    StepInput {
        target_name,
        step: job.job_type,
        variables: job.variables,
        headers: job.custom_headers,
        process_instance_key: job.process_instance_key,
        job_key: job.key,
        worker: if job.worker.is_empty() { ctx.worker_name.clone() } else { job.worker },
        element_id: job.element_id,
    }
}

/// Converts a step outcome into what the worker sends to the gateway.
pub fn to_job_outcome(outcome: StepOutcome, step: &str, retry_backoff: Option<Duration>) -> JobOutcome {
    match outcome {
        StepOutcome::Done { mut variables, already_done } => {
            variables.insert("alreadyDone".into(), json!(already_done));
            JobOutcome::Complete(variables)
        }
        StepOutcome::Refused { code, message, field, mut variables } => {
            // messages can quote client errors (URLs): never let credentials reach the engine
            let message = scrub(&message);
            let mut last = Map::new();
            last.insert("code".into(), json!(code));
            last.insert("message".into(), json!(message));
            last.insert("step".into(), json!(step));
            if let Some(f) = field {
                last.insert("field".into(), json!(f));
            }
            variables.insert("lastError".into(), Value::Object(last));
            JobOutcome::BpmnError { code: code.to_string(), message, variables }
        }
        StepOutcome::Retry { message } => JobOutcome::Fail { message: scrub(&message), retry_backoff },
        StepOutcome::Verdict { deny } => JobOutcome::CompleteListener { deny: deny.map(|m| scrub(&m)) },
    }
}

/// Journals a refusal made before a step could run (no target to run it against).
fn journal_refusal(ctx: &StepContext, job: &Job, target: &str, outcome: StepOutcome) -> StepOutcome {
    let StepOutcome::Refused { code, message, .. } = &outcome else {
        return outcome;
    };
    let entry = JournalEntry {
        time: chrono::Utc::now(),
        kind: EntryKind::Outcome,
        target: target.to_string(),
        step: job.job_type.clone(),
        element_id: job.element_id.clone(),
        process_instance_key: job.process_instance_key,
        job_key: job.key,
        worker: if job.worker.is_empty() { ctx.worker_name.clone() } else { job.worker.clone() },
        region: None,
        action: "refused".into(),
        request: (*code).to_string(),
        status: String::new(),
        message: message.clone(),
    };
    match ctx.journal.append(&entry) {
        Ok(()) => outcome,
        Err(e) => StepOutcome::retry(e.to_string()),
    }
}

/// Handles one activated job.
pub async fn handle(ctx: &StepContext, job: Job) -> JobOutcome {
    let step = job.job_type.clone();
    let span = tracing::info_span!("job", job_type = %step, job_key = job.key, process_instance_key = job.process_instance_key, element_id = %job.element_id);
    let label = if job.element_id.is_empty() { step.clone() } else { job.element_id.clone() };
    let known: Vec<&String> = ctx.config.targets.keys().collect();
    let target_name = match job.variables.get("target") {
        Some(Value::String(s)) if ctx.config.targets.contains_key(s) => s.clone(),
        other => {
            let got = other.map_or("nothing".to_string(), |v| v.to_string());
            let outcome = StepOutcome::invalid(
                "target",
                format!(
                    "variable `target` must name a configured target ({known:?}), got {got}: start the process with one of them"
                ),
            );
            let named = match other {
                Some(Value::String(s)) => s.clone(),
                _ => got,
            };
            let outcome = journal_refusal(ctx, &job, &named, outcome);
            return to_job_outcome(outcome, &label, ctx.backoff());
        }
    };
    let target = &ctx.config.targets[&target_name];
    let handles = match ctx.handles(&target_name, target) {
        Ok(h) => h,
        Err(e) => {
            let outcome = StepOutcome::invalid("target", format!("target `{target_name}` is misconfigured: {e}"));
            let outcome = journal_refusal(ctx, &job, &target_name, outcome);
            return to_job_outcome(outcome, &label, ctx.backoff());
        }
    };
    let input = input_of(ctx, job, target_name);
    let env = StepEnv {
        input: &input,
        target,
        api: handles.api.as_ref(),
        platform: handles.platform.as_ref(),
        drill: handles.region_control.as_ref(),
        journal: &ctx.journal,
    };
    let outcome = run_step_watching(&env, ctx.watch()).instrument(span).await;
    match &outcome {
        StepOutcome::Done { already_done, .. } => {
            tracing::info!(job_type = %step, already_done, "step done")
        }
        StepOutcome::Refused { code, message, .. } => {
            tracing::warn!(job_type = %step, code, message = %scrub(message), "step refused")
        }
        StepOutcome::Retry { message } => {
            tracing::warn!(job_type = %step, message = %scrub(message), "step failed, will be retried")
        }
        StepOutcome::Verdict { deny: None } => tracing::info!(job_type = %step, "transition allowed"),
        StepOutcome::Verdict { deny: Some(reason) } => {
            tracing::warn!(job_type = %step, reason = %scrub(reason), "transition denied")
        }
    }
    to_job_outcome(outcome, &label, ctx.backoff())
}

/// The worker-runtime handler for every c8dr job type: runs [`handle`] with a shared context.
/// `c8dr worker` and `c8dr rehearse` register it under each of [`JOB_TYPES`].
pub fn handler(ctx: Arc<StepContext>) -> crate::zeebe::worker::Handler {
    crate::zeebe::worker::handler_fn(move |job| {
        let ctx = ctx.clone();
        async move { handle(&ctx, job).await }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_and_the_context_is_shareable() {
        fn is_send<T: Send>(_: &T) {}
        fn is_sync<T: Send + Sync>() {}
        is_sync::<StepContext>();
        let ctx = StepContext::new(Arc::new(Config::default()));
        let job = Job {
            key: 1,
            job_type: "c8dr.notify".into(),
            process_instance_key: 1,
            bpmn_process_id: String::new(),
            process_definition_key: 1,
            element_id: String::new(),
            element_instance_key: 1,
            custom_headers: Default::default(),
            variables: Map::new(),
            retries: 1,
            deadline: 0,
            worker: String::new(),
            tenant_id: String::new(),
        };
        let fut = handle(&ctx, job);
        is_send(&fut);
    }

    #[test]
    fn outcomes_map_to_gateway_commands() {
        let refused = StepOutcome::invalid("lostRegion", "must be 0 or 1");
        match to_job_outcome(refused, "remove-brokers", None) {
            JobOutcome::BpmnError { code, variables, .. } => {
                assert_eq!(code, "INVALID_INPUT");
                assert_eq!(
                    variables["lastError"],
                    json!({"code": "INVALID_INPUT", "message": "must be 0 or 1", "step": "remove-brokers", "field": "lostRegion"})
                );
            }
            other => panic!("{other:?}"),
        }
        let done = StepOutcome::already_done(Map::new());
        assert_eq!(
            to_job_outcome(done, "x", None),
            JobOutcome::Complete(crate::procedure::vars([("alreadyDone", json!(true))]))
        );
        let retry = StepOutcome::retry("503");
        let backoff = Some(Duration::from_millis(5));
        assert_eq!(
            to_job_outcome(retry, "x", backoff),
            JobOutcome::Fail { message: "503".into(), retry_backoff: backoff }
        );
        // credentials in URLs never reach the job's error message or lastError
        let leaky = "lab control GET /x: error sending request for url (http://ops:hunter2@lab:8080/x)";
        match to_job_outcome(StepOutcome::retry(leaky), "x", None) {
            JobOutcome::Fail { message, .. } => assert!(!message.contains("hunter2"), "{message}"),
            other => panic!("{other:?}"),
        }
        match to_job_outcome(StepOutcome::refused("PRECONDITION_FAILED", leaky), "x", None) {
            JobOutcome::BpmnError { message, variables, .. } => {
                assert!(!message.contains("hunter2"), "{message}");
                assert!(!variables["lastError"].to_string().contains("hunter2"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(JOB_TYPES.len(), 26);
        assert!(JOB_TYPES.iter().all(|t| t.starts_with("c8dr.")));
    }

    #[test]
    fn every_documented_job_type_is_registered() {
        let doc = include_str!("../docs/jobs.md");
        let documented: Vec<&str> =
            doc.lines().filter_map(|l| l.strip_prefix("| `c8dr.")).filter_map(|l| l.split('`').next()).collect();
        assert_eq!(documented.len(), JOB_TYPES.len());
        for t in documented {
            assert!(JOB_TYPES.contains(&format!("c8dr.{t}").as_str()), "c8dr.{t} is documented but not registered");
        }
    }
}
