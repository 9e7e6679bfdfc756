//! What `c8dr rehearse` prints while it runs: one line per finished step, named as in the BPMN,
//! and, while a verification loop waits, a spinner with the attempt count, the elapsed time and
//! what the last check saw. Without a terminal (a log file, a pipe): plain lines, no ANSI codes.
use crate::rehearsal::clock::Clock;
use crate::rehearsal::engine::{EngineHandle, InstanceState, LogEvent};
use crate::rehearsal::report::secs;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sub-processes of our BPMN that are verification loops (check, wait, check again).
const LOOP_PREFIX: &str = "Loop_";
/// Sub-processes that are one numbered step of the seed's procedure.
const STEP_PREFIX: &str = "Step_";

/// A verification loop being watched: a sub-process whose check ran more than once or that
/// waits on its timer.
#[derive(Debug, Clone)]
struct Watched {
    name: String,
    attempts: usize,
    wall_start: Instant,
    sim_start: chrono::DateTime<chrono::Utc>,
    last_saw: String,
    /// The instance's variables when the loop was first seen.
    baseline: Map<String, Value>,
    /// Simulated seconds into the loop of the last plain "waiting" line (no terminal).
    printed_at: Option<f64>,
}

/// Progress output on stderr; lines carry the simulated time since the rehearsal started.
pub struct Progress {
    enabled: bool,
    clock: Clock,
    terminal: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    bar: Option<ProgressBar>,
    /// (process instance, element id) -> completions seen: loop attempts after the first are
    /// not printed (the spinner counts them).
    completed: BTreeMap<(i64, String), usize>,
    /// Sub-process element instance key -> the loop being watched.
    loops: BTreeMap<i64, Watched>,
}

impl Progress {
    /// `enabled` false prints nothing; the spinner only when stderr is a terminal.
    pub fn new(enabled: bool, clock: Clock) -> Self {
        Self::with_terminal(enabled, clock, std::io::stderr().is_terminal())
    }

    pub fn with_terminal(enabled: bool, clock: Clock, terminal: bool) -> Self {
        Self { enabled, clock, terminal, inner: Mutex::new(Inner::default()) }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line, above the spinner when there is one.
    pub fn line(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let text = format_line(self.clock.elapsed().as_secs_f64(), text);
        match &self.inner().bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Prints what an engine event means for the operator, if anything.
    pub fn event(&self, engine: &EngineHandle, e: &LogEvent) {
        if !self.enabled {
            return;
        }
        let name =
            || engine.element_name(&e.bpmn_process_id, &e.element_id).unwrap_or_else(|| e.element_id.replace('_', " "));
        let detail = if e.detail.is_empty() { String::new() } else { format!(" — {}", e.detail) };
        let text = match (e.value_type, e.intent, e.element_type.as_str()) {
            ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "SERVICE_TASK" | "USER_TASK" | "CALL_ACTIVITY") => {
                let n = {
                    let mut inner = self.inner();
                    let n = inner.completed.entry((e.process_instance_key, e.element_id.clone())).or_default();
                    *n += 1;
                    *n
                };
                // a verification loop's checks: the spinner and the loop's "verified" line say it
                (n == 1 && !in_loop(engine, e)).then(|| format!("done: {}", name()))
            }
            ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "SUB_PROCESS") => {
                let watched = self.inner().loops.remove(&e.key);
                self.clear_bar_if_idle();
                match watched {
                    Some(w) => {
                        let sim = (self.clock.now() - w.sim_start).num_milliseconds() as f64 / 1000.0;
                        Some(format!(
                            "verified: {} after {} {}, {} simulated ({} wall)",
                            w.name,
                            w.attempts,
                            if w.attempts == 1 { "check" } else { "checks" },
                            secs(sim, 0),
                            secs(w.wall_start.elapsed().as_secs_f64(), 1)
                        ))
                    }
                    // an unnamed scope adds nothing; a named one is a step of the procedure
                    None => engine.element_name(&e.bpmn_process_id, &e.element_id).map(|n| {
                        if e.element_id.starts_with(STEP_PREFIX) {
                            format!("step done: {n}")
                        } else {
                            format!("done: {n}")
                        }
                    }),
                }
            }
            ("PROCESS_INSTANCE", "ELEMENT_TERMINATED", "SUB_PROCESS") => {
                let watched = self.inner().loops.remove(&e.key);
                self.clear_bar_if_idle();
                watched.map(|w| {
                    let sim = (self.clock.now() - w.sim_start).num_milliseconds() as f64 / 1000.0;
                    format!(
                        "stopped waiting: {} after {} simulated ({} wall), not verified",
                        w.name,
                        secs(sim, 0),
                        secs(w.wall_start.elapsed().as_secs_f64(), 1)
                    )
                })
            }
            ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "PROCESS") => {
                Some(format!("finished: process {}", e.bpmn_process_id))
            }
            ("JOB", "FAILED", _) => Some(format!("step failed: {}{detail}", name())),
            ("JOB", "ERROR_THROWN", _) => Some(format!("step refused: {}{detail}", name())),
            ("JOB", "TIMED_OUT", _) => Some(format!("step timed out (the worker did not answer): {}", name())),
            ("INCIDENT", intent, _) => Some(format!("incident {}: {}{detail}", intent.to_lowercase(), name())),
            ("TIMER", "TRIGGERED", t) if t != "INTERMEDIATE_CATCH_EVENT" => Some(format!("timer fired: {}", name())),
            _ => None,
        };
        if let Some(text) = text {
            self.line(&text);
        }
    }

    /// Looks at the running instances and updates the spinner (terminal) or prints a plain line
    /// when a loop's last check saw something new (no terminal).
    pub fn watch(&self, engine: &EngineHandle, tree: &BTreeSet<i64>) {
        if !self.enabled {
            return;
        }
        let mut current = None;
        for &pi in tree {
            let elements = engine.element_instances(pi);
            let loops = elements.iter().filter(|e| {
                e.element_type == "SUB_PROCESS"
                    && e.state == InstanceState::Active
                    && e.element_id.starts_with(LOOP_PREFIX)
            });
            for sub in loops {
                let checks = elements
                    .iter()
                    .filter(|c| c.flow_scope_key == Some(sub.key) && c.element_type == "SERVICE_TASK")
                    .count();
                let name = sub.name.clone().unwrap_or_else(|| sub.element_id.clone());
                current = Some((sub.key, name, checks, sub.start, engine.variables(pi)));
            }
        }
        let Some((key, name, attempts, sim_start, vars)) = current else {
            self.clear_bar_if_idle();
            return;
        };
        let mut inner = self.inner();
        let w = inner.loops.entry(key).or_insert_with(|| Watched {
            name,
            attempts,
            wall_start: Instant::now(),
            sim_start,
            last_saw: String::new(),
            baseline: vars.clone(),
            printed_at: None,
        });
        w.attempts = attempts;
        // only what changed since the loop started: the earlier steps' outputs are not news
        let mut fresh: Map<String, Value> =
            vars.iter().filter(|(k, v)| w.baseline.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
        if fresh.contains_key("changeProgress")
            && let Some(id) = vars.get("changeId")
        {
            fresh.insert("changeId".into(), id.clone());
        }
        let saw = check_summary(&fresh);
        let changed = w.last_saw != saw;
        w.last_saw = saw;
        let sim = (self.clock.now() - w.sim_start).num_milliseconds() as f64 / 1000.0;
        let msg = loop_message(w, sim, w.wall_start.elapsed());
        if self.terminal {
            let bar = inner.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            bar.set_message(msg);
        } else if changed || plain_line_due(w.printed_at, sim) {
            w.printed_at = Some(sim);
            drop(inner);
            self.line(&msg);
        }
    }

    fn clear_bar_if_idle(&self) {
        let mut inner = self.inner();
        if inner.loops.is_empty()
            && let Some(bar) = inner.bar.take()
        {
            bar.finish_and_clear();
        }
    }

    /// Removes the spinner (end of a phase).
    pub fn finish(&self) {
        let mut inner = self.inner();
        inner.loops.clear();
        if let Some(bar) = inner.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Without a terminal, a long wait is said every so often (simulated time, so the same at any
/// clock speed): first after 30 s, then every 60 s.
fn plain_line_due(printed_at: Option<f64>, sim_seconds: f64) -> bool {
    match printed_at {
        None => sim_seconds >= 30.0,
        Some(at) => sim_seconds - at >= 60.0,
    }
}

/// The element instance of `e` runs inside a verification loop sub-process.
fn in_loop(engine: &EngineHandle, e: &LogEvent) -> bool {
    let elements = engine.element_instances(e.process_instance_key);
    let scope = elements.iter().find(|x| x.key == e.key).and_then(|x| x.flow_scope_key);
    scope.is_some_and(|k| elements.iter().any(|x| x.key == k && x.element_id.starts_with(LOOP_PREFIX)))
}

/// `[   12.0 s] text`: the simulated time since the rehearsal started, with its unit.
pub fn format_line(sim_seconds: f64, text: &str) -> String {
    format!("[{:>10} sim] {text}", secs(sim_seconds, 1))
}

fn loop_message(w: &Watched, sim_seconds: f64, wall: Duration) -> String {
    let saw = if w.last_saw.is_empty() { String::new() } else { format!(" — last check: {}", w.last_saw) };
    format!(
        "waiting: {} — check {}, {} simulated ({} wall){saw}",
        w.name,
        w.attempts,
        secs(sim_seconds, 0),
        secs(wall.as_secs_f64(), 1)
    )
}

/// What the last verification check saw, from its output variables (c8dr.await-change's
/// `changeProgress`, the snapshot and restore checks' states, a verification's problems).
pub fn check_summary(vars: &Map<String, Value>) -> String {
    let mut parts = Vec::new();
    if let Some(p) = vars.get("changeProgress").filter(|p| p.is_object()) {
        let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (done, pending) = (n("completed"), n("pending"));
        let id = match vars.get("changeId") {
            Some(Value::Null) | None => String::new(),
            Some(Value::String(s)) => format!(" {s}"),
            Some(v) => format!(" {v}"),
        };
        let status = vars.get("changeStatus").and_then(Value::as_str).unwrap_or("");
        if pending > 0 || done > 0 {
            parts.push(format!("change{id}: {done} of {} operations", done + pending));
        } else if !status.is_empty() {
            parts.push(format!("change{id}: {}", status.to_lowercase().replace('_', " ")));
        }
    }
    for (key, label) in [("snapshotState", "snapshot"), ("restoreState", "restore")] {
        if let Some(s) = vars.get(key).and_then(Value::as_str) {
            parts.push(format!("{label} {}", s.to_lowercase().replace('_', " ")));
        }
    }
    if let Some(Value::Array(problems)) = vars.get("problems")
        && let Some(first) = problems.first().and_then(Value::as_str)
    {
        parts.push(format!("{} open: {first}", problems.len()));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_change_check_reads_as_operations_done_of_total() {
        let v = map(
            json!({"changeId": 12, "changeStatus": "IN_PROGRESS", "changeProgress": {"completed": 3, "pending": 5}}),
        );
        assert_eq!(check_summary(&v), "change 12: 3 of 8 operations");
        let v = map(
            json!({"changeId": null, "changeStatus": "NOT_STARTED", "changeProgress": {"completed": 0, "pending": 0}}),
        );
        assert_eq!(check_summary(&v), "change: not started");
        assert_eq!(
            check_summary(&map(json!({"problems": ["partition 3 has no leader", "x"]}))),
            "2 open: partition 3 has no leader"
        );
    }

    #[test]
    fn long_waits_are_said_every_minute_without_a_terminal() {
        assert!(!plain_line_due(None, 10.0));
        assert!(plain_line_due(None, 30.0));
        assert!(!plain_line_due(Some(30.0), 80.0));
        assert!(plain_line_due(Some(30.0), 90.0));
    }

    #[test]
    fn lines_name_the_unit_and_never_minus_zero() {
        assert_eq!(format_line(-0.01, "x"), "[     0.0 s sim] x");
        let w = Watched {
            name: "Await broker removal".into(),
            attempts: 3,
            wall_start: Instant::now(),
            sim_start: chrono::Utc::now(),
            last_saw: "change 12: 3 of 8 operations".into(),
            baseline: Map::new(),
            printed_at: None,
        };
        let m = loop_message(&w, 45.2, Duration::from_millis(2_260));
        assert_eq!(
            m,
            "waiting: Await broker removal — check 3, 45 s simulated (2.3 s wall) — last check: change 12: 3 of 8 operations"
        );
    }
}
