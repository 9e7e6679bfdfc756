//! The rehearsal report: each step with its start, end and attempts, the recovery time of each
//! phase, and the final state of the installation checked against the expected one.
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRow {
    pub process_instance_key: i64,
    pub element_id: String,
    /// The element's BPMN `name` (falls back to the id when the BPMN names none).
    pub name: String,
    pub element_type: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// Job activations (1 = done first time).
    pub attempts: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseReport {
    pub process: String,
    pub instance_key: i64,
    /// completed | terminated | incident
    pub outcome: String,
    /// The process's own verdict (`report.outcome` variable), e.g. completed / rejected / aborted.
    pub procedure_outcome: String,
    /// Real time this phase took to drive (wall clock of the machine running the rehearsal).
    pub wall_seconds: f64,
    /// Simulated time from the first to the last step: the recovery time of the phase.
    pub simulated_seconds: f64,
    /// Step start/end times are on the simulated clock (the engine's).
    pub steps: Vec<StepRow>,
    /// Simulated seconds of work the installation performed during the phase (lab accounting).
    #[serde(rename = "labWorkSimulatedSeconds")]
    pub lab_work_seconds: f64,
    /// Simulated seconds spent waiting on BPMN timers (verification intervals).
    #[serde(rename = "timerWaitSimulatedSeconds")]
    pub timer_wait_seconds: f64,
    /// The `report` variable the process produced (c8dr.report). Its figures are on the
    /// worker's clock, which is the wall clock (`report.clock` says so), not the simulated one.
    pub report: Value,
    /// User task completions the approval guard denied: "<task> by <who>: <reason>".
    pub denials: Vec<String>,
    /// The answers the rehearsal gave to user tasks (completions that went through).
    pub answers: Vec<TaskAnswer>,
}

/// An answer the rehearsal gave to a user task.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAnswer {
    pub user_task_key: i64,
    pub element_id: String,
    /// The decision in words (`approve`, `trafficRerouted yes`).
    pub decision: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalReport {
    pub scenario: String,
    pub speed: f64,
    pub wall_seconds: f64,
    pub simulated_seconds: f64,
    pub phases: Vec<PhaseReport>,
    /// What differs from the restored dual-region state (empty = restored).
    pub final_problems: Vec<String>,
    /// Successful mutating calls to the lab made more than once (must be empty).
    pub mutations_repeated: Vec<String>,
    /// Successful mutating calls to the lab.
    pub mutations: usize,
    pub worker_restarts: usize,
    /// Worker replicas killed (`kill_worker_at`); with one replica each is restarted.
    pub workers_killed: usize,
    pub incidents: Vec<String>,
    /// Why the rehearsal stopped early, if it did.
    pub error: Option<String>,
    pub lab_state: Value,
    /// The DR report (`rehearse --report FILE.html`), built from the engine's REST API and the
    /// journal as `c8dr report --instance` builds it, plus what only the rehearsal knows; the
    /// error when it could not be built.
    #[serde(skip)]
    pub dr: Result<crate::report::DrReport, String>,
    /// The engine and the journal, still serving, with `RehearseOptions::keep_engine`.
    #[serde(skip)]
    pub kept: Option<std::sync::Arc<KeptEngine>>,
}

/// The rehearsal engine (REST and gRPC still served) and the worker's journal after the
/// rehearsal, to inspect them as a real installation's (`c8dr report --instance`). Dropping the
/// last reference stops the engine and deletes the journal.
pub struct KeptEngine {
    pub engine: crate::rehearsal::engine::EngineHandle,
    pub journal: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
}

impl std::fmt::Debug for KeptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptEngine").field("rest", &self.engine.rest_url()).field("journal", &self.journal).finish()
    }
}

impl Drop for KeptEngine {
    fn drop(&mut self) {
        self.engine.shutdown();
    }
}

impl RehearsalReport {
    /// The installation is back to the full dual-region state and no mutation was repeated.
    pub fn restored(&self) -> bool {
        self.error.is_none()
            && self.final_problems.is_empty()
            && self.mutations_repeated.is_empty()
            && self.phases.iter().all(|p| p.outcome == "completed")
    }

    pub fn phase(&self, process: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.process == process)
    }

    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== c8dr rehearsal report ({}, clock x{}) ==", self.scenario, self.speed);
        for phase in &self.phases {
            let verdict = if phase.procedure_outcome.is_empty() {
                phase.outcome.clone()
            } else {
                format!("{} / {}", phase.outcome, phase.procedure_outcome)
            };
            // a phase that did not do its work has no recovery time to speak of
            let recovered = phase.outcome == "completed"
                && matches!(phase.procedure_outcome.as_str(), "" | "completed" | "alreadyDone");
            let times = if recovered {
                format!(
                    "recovery time {} simulated, {} wall",
                    secs(phase.simulated_seconds, 0),
                    secs(phase.wall_seconds, 1)
                )
            } else {
                format!("took {} simulated, {} wall", secs(phase.simulated_seconds, 0), secs(phase.wall_seconds, 1))
            };
            let _ = writeln!(out, "\n{} (instance {}): {verdict} — {times}", phase.process, phase.instance_key);
            let _ = writeln!(
                out,
                "  installation's own work {}, BPMN timer waits {} (simulated)",
                secs(phase.lab_work_seconds, 0),
                secs(phase.timer_wait_seconds, 0)
            );
            if let Some(d) = phase.report.get("durationSeconds").and_then(Value::as_f64) {
                let clock = phase.report.get("clock").and_then(Value::as_str).unwrap_or("wall");
                let _ = writeln!(out, "  c8dr's own report: {} ({clock} clock of the worker)", secs(d, 1));
            }
            for (name, key) in [("failover", "failoverReport"), ("failback", "failbackReport")] {
                if let Some(d) = phase.report.pointer(&format!("/{key}/durationSeconds")).and_then(Value::as_f64) {
                    let _ = writeln!(out, "  {name} (called): {} (wall clock of the worker)", secs(d, 1));
                }
            }
            let _ = writeln!(
                out,
                "  {:>9} {:>9}  {:>8}  {:<13} step (times simulated, from the phase's first step)",
                "start", "end", "attempts", "type"
            );
            for g in group_steps(&phase.steps) {
                let _ = writeln!(
                    out,
                    "  {:>9} {:>9}  {:>8}  {:<13} {}",
                    secs(g.start, 1),
                    g.end.map(|e| secs(e, 1)).unwrap_or_else(|| "open".into()),
                    g.attempts,
                    g.element_type.to_lowercase().replace('_', " "),
                    g.name
                );
            }
        }
        match &self.dr {
            // the lab sees the calls to its region APIs; the worker's journal also lists the Helm
            // actions and Kubernetes operations, which reach the platform, not those APIs
            Ok(dr) if dr.mutations.len() != self.mutations => {
                let _ = writeln!(
                    out,
                    "\nmutating calls to the installation: {} to its APIs; the journal lists {}, with the Helm and Kubernetes operations",
                    self.mutations,
                    dr.mutations.len()
                );
            }
            _ => {
                let _ = writeln!(out, "\nmutating calls to the installation: {}", self.mutations);
            }
        }
        if self.worker_restarts > 0 {
            let _ = writeln!(out, "worker restarts: {}", self.worker_restarts);
        }
        for m in &self.mutations_repeated {
            let _ = writeln!(out, "REPEATED MUTATION: {m}");
        }
        for i in self.incidents.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let _ = writeln!(out, "incident: {i}");
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "error: {e}");
        }
        if self.final_problems.is_empty() {
            let _ = writeln!(
                out,
                "final state: RESTORED (8 brokers, RF 4, one healthy leader per partition, both exporters enabled, exporting running)"
            );
        } else {
            let _ = writeln!(out, "final state: NOT RESTORED");
            for p in &self.final_problems {
                let _ = writeln!(out, "  - {p}");
            }
        }
        let _ = writeln!(
            out,
            "total: {} wall, {} simulated; verdict: {}",
            secs(self.wall_seconds, 1),
            secs(self.simulated_seconds, 0),
            if self.restored() { "RESTORED" } else { "NOT RESTORED" }
        );
        out
    }
}

/// Seconds with `decimals` decimals and the unit, never "-0": negative values (clock skew
/// between start and end stamps) clamp to zero, and rounding happens before the sign is shown.
pub fn secs(value: f64, decimals: usize) -> String {
    let factor = 10f64.powi(decimals as i32);
    let rounded = (value.max(0.0) * factor).round() / factor;
    // `+ 0.0` turns a -0.0 into 0.0
    format!("{:.*} s", decimals, rounded + 0.0)
}

/// One row of the final table: every instance of one element (a verification loop's attempts)
/// in one process instance. Times are simulated seconds since the phase's first step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepGroup {
    pub process_instance_key: i64,
    pub element_id: String,
    pub name: String,
    pub element_type: String,
    pub start: f64,
    /// None while any instance is still open.
    pub end: Option<f64>,
    /// Job activations over all instances (or instances, for elements without jobs).
    pub attempts: usize,
}

/// Groups step rows by (process instance, element): first start, last end, attempts summed;
/// ordered by first start.
pub fn group_steps(steps: &[StepRow]) -> Vec<StepGroup> {
    let t0 = steps.iter().map(|s| s.start).min();
    let off = |t: DateTime<Utc>| t0.map(|t0| (t - t0).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0);
    let mut groups: Vec<(StepGroup, bool)> = Vec::new();
    for s in steps {
        let attempts = s.attempts.max(1);
        match groups
            .iter_mut()
            .find(|(g, _)| g.process_instance_key == s.process_instance_key && g.element_id == s.element_id)
        {
            Some((g, open)) => {
                g.start = g.start.min(off(s.start));
                g.attempts += attempts;
                match s.end {
                    Some(e) => g.end = Some(g.end.unwrap_or(f64::MIN).max(off(e))),
                    None => *open = true,
                }
            }
            None => groups.push((
                StepGroup {
                    process_instance_key: s.process_instance_key,
                    element_id: s.element_id.clone(),
                    name: s.name.clone(),
                    element_type: s.element_type.clone(),
                    start: off(s.start),
                    end: s.end.map(off),
                    attempts,
                },
                s.end.is_none(),
            )),
        }
    }
    let mut out: Vec<StepGroup> =
        groups.into_iter().map(|(g, open)| if open { StepGroup { end: None, ..g } } else { g }).collect();
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pi: i64, id: &str, start_ms: i64, end_ms: Option<i64>, attempts: usize) -> StepRow {
        let t = |ms: i64| DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
        StepRow {
            process_instance_key: pi,
            element_id: id.into(),
            name: format!("{id} as named in the BPMN"),
            element_type: "SERVICE_TASK".into(),
            start: t(start_ms),
            end: end_ms.map(t),
            attempts,
        }
    }

    #[test]
    fn loop_attempts_become_one_row_per_step() {
        let steps = vec![
            row(1, "RemoveBrokers", 0, Some(1_000), 1),
            row(1, "AwaitRemovalCheck", 1_000, Some(1_500), 1),
            row(1, "AwaitRemovalCheck", 6_000, Some(6_500), 2),
            row(1, "AwaitRemovalCheck", 11_000, Some(11_200), 1),
            row(2, "AwaitRemovalCheck", 12_000, None, 1),
        ];
        let g = group_steps(&steps);
        assert_eq!(g.len(), 3, "{g:?}");
        assert_eq!(g[1].name, "AwaitRemovalCheck as named in the BPMN");
        assert_eq!((g[1].start, g[1].end, g[1].attempts), (1.0, Some(11.2), 4));
        assert_eq!(g[2].end, None, "an open instance keeps the row open");
    }

    #[test]
    fn seconds_never_show_minus_zero_and_always_a_unit() {
        assert_eq!(secs(-0.0, 0), "0 s");
        assert_eq!(secs(-0.3, 0), "0 s");
        assert_eq!(secs(-0.04, 1), "0.0 s");
        assert_eq!(secs(12.345, 1), "12.3 s");
        assert_eq!(secs(0.4, 0), "0 s");
    }

    fn phase(outcome: &str, procedure: &str) -> PhaseReport {
        PhaseReport {
            process: "dr-failover".into(),
            instance_key: 7,
            outcome: outcome.into(),
            procedure_outcome: procedure.into(),
            wall_seconds: 1.0,
            simulated_seconds: -0.2,
            steps: vec![row(7, "AwaitRemovalCheck", 0, Some(100), 1), row(7, "AwaitRemovalCheck", 200, Some(300), 1)],
            lab_work_seconds: 0.0,
            timer_wait_seconds: 0.0,
            report: Value::Null,
            denials: vec![],
            answers: vec![],
        }
    }

    fn report(phases: Vec<PhaseReport>) -> RehearsalReport {
        RehearsalReport {
            scenario: "FailoverFailback".into(),
            speed: 20.0,
            wall_seconds: 1.0,
            simulated_seconds: 2.0,
            phases,
            final_problems: vec![],
            mutations_repeated: vec![],
            mutations: 0,
            worker_restarts: 0,
            workers_killed: 0,
            incidents: vec![],
            error: None,
            lab_state: Value::Null,
            dr: Err("not built".into()),
            kept: None,
        }
    }

    #[test]
    fn rendered_report_groups_names_steps_and_hides_recovery_time_of_a_rejected_phase() {
        let text = report(vec![phase("completed", "rejected")]).render();
        assert!(!text.contains("recovery time"), "{text}");
        assert!(!text.contains("-0"), "{text}");
        assert_eq!(text.matches("AwaitRemovalCheck as named in the BPMN").count(), 1, "{text}");
        assert!(!text.lines().any(|l| l.ends_with(" AwaitRemovalCheck")), "the BPMN name, not the id: {text}");
        let text = report(vec![phase("completed", "completed")]).render();
        assert!(text.contains("recovery time 0 s simulated"), "{text}");
    }
}
