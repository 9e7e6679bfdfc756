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
    pub incidents: Vec<String>,
    /// Why the rehearsal stopped early, if it did.
    pub error: Option<String>,
    pub lab_state: Value,
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
            let _ = writeln!(
                out,
                "\n{} (instance {}): {}{} — recovery time {:.0} s simulated, {:.1} s wall",
                phase.process,
                phase.instance_key,
                phase.outcome,
                if phase.procedure_outcome.is_empty() {
                    String::new()
                } else {
                    format!(" / {}", phase.procedure_outcome)
                },
                phase.simulated_seconds,
                phase.wall_seconds
            );
            let _ = writeln!(
                out,
                "  installation's own work {:.0} s, BPMN timer waits {:.0} s (simulated)",
                phase.lab_work_seconds, phase.timer_wait_seconds
            );
            if let Some(d) = phase.report.get("durationSeconds").and_then(Value::as_f64) {
                let clock = phase.report.get("clock").and_then(Value::as_str).unwrap_or("wall");
                let _ = writeln!(out, "  c8dr's own report: {d:.1} s ({clock} clock of the worker)");
            }
            for (name, key) in [("failover", "failoverReport"), ("failback", "failbackReport")] {
                if let Some(d) = phase.report.pointer(&format!("/{key}/durationSeconds")).and_then(Value::as_f64) {
                    let _ = writeln!(out, "  {name} (called): {d:.1} s (wall clock of the worker)");
                }
            }
            let t0 = phase.steps.first().map(|s| s.start);
            let _ = writeln!(out, "  {:>8} {:>8}  {:>8}  {:<14} step (simulated)", "start", "end", "attempts", "type");
            for s in &phase.steps {
                let off = |t: DateTime<Utc>| t0.map(|t0| (t - t0).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0);
                let end = s.end.map(|e| format!("{:>7.1}s", off(e))).unwrap_or_else(|| "    open".into());
                let _ = writeln!(
                    out,
                    "  {:>7.1}s {}  {:>8}  {:<14} {}",
                    off(s.start),
                    end,
                    s.attempts,
                    s.element_type.to_lowercase(),
                    s.element_id
                );
            }
        }
        let _ = writeln!(out, "\nmutating calls to the installation: {}", self.mutations);
        if self.worker_restarts > 0 {
            let _ = writeln!(out, "worker restarts: {}", self.worker_restarts);
        }
        for m in &self.mutations_repeated {
            let _ = writeln!(out, "REPEATED MUTATION: {m}");
        }
        for i in &self.incidents {
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
            "total: {:.1} s wall, {:.0} s simulated; verdict: {}",
            self.wall_seconds,
            self.simulated_seconds,
            if self.restored() { "RESTORED" } else { "NOT RESTORED" }
        );
        out
    }
}
