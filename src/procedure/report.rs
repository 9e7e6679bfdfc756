//! The run report, computed from the audit journal (steps with start, end, attempts, mutations;
//! recovery time), and the notify step.
use super::inputs::{Header, ProcessKind};
use super::journal::{EntryKind, JournalEntry};
use super::{Done, StepEnv, StepError, StepResult, vars};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// One step of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLine {
    pub step: String,
    pub job_type: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub mutations: u32,
    pub outcome: String,
}

/// Steps of one process instance, in the order they first ran (the report step excluded).
pub fn steps(entries: &[JournalEntry]) -> Vec<StepLine> {
    let mut out: Vec<StepLine> = Vec::new();
    for e in entries.iter().filter(|e| e.step != "c8dr.report") {
        let i = match out.iter().position(|s| s.step == e.element_id) {
            Some(i) => i,
            None => {
                out.push(StepLine {
                    step: e.element_id.clone(),
                    job_type: e.step.clone(),
                    start: e.time,
                    end: None,
                    attempts: 0,
                    mutations: 0,
                    outcome: String::new(),
                });
                out.len() - 1
            }
        };
        let s = &mut out[i];
        match e.kind {
            EntryKind::Attempt => s.attempts += 1,
            EntryKind::Call => s.mutations += 1,
            EntryKind::Outcome => {
                s.end = Some(e.time);
                s.outcome = e.action.clone();
            }
        }
    }
    out
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn time_var(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

/// The start of instance `process_instance_key` as its validation recorded it
/// (`instanceStartedAt`); `None` when absent, unreadable, or inherited from a calling instance.
pub fn instance_start(variables: &serde_json::Map<String, Value>, process_instance_key: i64) -> Option<DateTime<Utc>> {
    let v = variables.get("instanceStartedAt")?;
    (v.get("processInstanceKey").and_then(crate::report::key) == Some(process_instance_key))
        .then(|| time_var(v.get("at")))
        .flatten()
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// `c8dr.report` (header `process`).
pub async fn report(env: &StepEnv<'_>, Header(process): Header<ProcessKind>) -> StepResult {
    let process = process.as_str();
    let entries =
        env.journal.for_instance(env.input.process_instance_key).map_err(|e| StepError::retry(e.to_string()))?;
    let report = build_report(
        process,
        &env.input.target_name,
        &env.input.worker,
        env.input.process_instance_key,
        &entries,
        &env.input.variables,
        Utc::now(),
    );
    let notified = notify_outcome(env, &report).await;
    Ok(Done::done(vars([("report", report), ("outcomeNotified", notified)])))
}

/// The report of one process instance from its own journal lines, completed at `completed`.
///
/// Every figure is measured by the workers' clocks (`"clock": "wall"`). The instance's own start
/// is `instanceStartedAt` (set by its validation, whichever replica ran it), else its first line
/// in this worker's journal; a `startedAt` variable is used only when neither is there, because a
/// called process (failover / failback in a drill) inherits the caller's `startedAt` and would
/// count the caller's time as its own. The step lines come from this worker's journal: with
/// several replicas (or a journal volume lost with its pod) they list only what this worker ran,
/// which `stepsFrom` says; Operate (and `c8dr report --instance`) has every step.
pub fn build_report(
    process: &str,
    target: &str,
    worker: &str,
    process_instance_key: i64,
    entries: &[JournalEntry],
    variables: &serde_json::Map<String, Value>,
    completed: DateTime<Utc>,
) -> Value {
    let var = |name: &str| variables.get(name).filter(|v| !v.is_null());
    let lines = steps(entries);
    let started = instance_start(variables, process_instance_key)
        .or_else(|| lines.first().map(|s| s.start))
        .or_else(|| time_var(var("startedAt")))
        .unwrap_or(completed);
    let duration = seconds(started, completed);
    // The process says how it ended (input mapping `outcome` on each report task: completed,
    // rejected, not-confirmed, aborted, invalid-input, refused, ...); a retried step's old
    // `lastError` must not turn a completed run into an aborted one.
    let outcome = var("outcome").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("completed").to_string();
    let outcome_reason = var("outcomeReason").cloned().unwrap_or(Value::Null);
    let step_json: Vec<Value> = lines
        .iter()
        .map(|s| {
            json!({
                "step": s.step, "jobType": s.job_type, "start": rfc(s.start), "end": s.end.map(rfc),
                "seconds": s.end.map(|e| seconds(s.start, e)),
                "attempts": s.attempts, "mutations": s.mutations, "outcome": s.outcome,
            })
        })
        .collect();
    let mut report = json!({
        "process": process,
        "target": target,
        "processInstanceKey": process_instance_key.to_string(),
        "clock": "wall",
        "startedAt": rfc(started),
        "completedAt": rfc(completed),
        "durationSeconds": duration,
        "steps": step_json,
        "stepsFrom": format!("the journal of worker {}", worker),
        "mutations": lines.iter().map(|s| s.mutations).sum::<u32>(),
        "callRecords": call_records(variables),
        "recoveryTimeSeconds": duration,
        "outcome": outcome,
        "outcomeReason": outcome_reason,
    });
    if process == "drill" {
        let lost_at = time_var(var("regionLostAt"));
        let fo = var("failoverReport").cloned().unwrap_or(Value::Null);
        let fb = var("failbackReport").cloned().unwrap_or(Value::Null);
        let fo_done = time_var(fo.get("completedAt"));
        let fb_done = time_var(fb.get("completedAt"));
        // recovery: from the region loss to the end of the failover (service back in one region)
        report["recoveryTimeSeconds"] = match (lost_at, fo_done) {
            (Some(l), Some(d)) => json!(seconds(l, d)),
            _ => Value::Null,
        };
        report["fullRecoveryTimeSeconds"] = match (lost_at, fb_done) {
            (Some(l), Some(d)) => json!(seconds(l, d)),
            _ => Value::Null,
        };
        report["regionLostAt"] = lost_at.map_or(Value::Null, |t| json!(rfc(t)));
        report["failoverReport"] = fo;
        report["failbackReport"] = fb;
    }
    report
}

/// The call records of this instance (docs/jobs.md "Call records"), as the report job sees them:
/// the last call of each fact, whichever worker replica made it. The step lines and `mutations`
/// come from this worker's journal, which holds only what this replica did; these records cover
/// every replica. Sorted by the time of the intent; a record that cannot be read is listed as such.
pub fn call_records(variables: &serde_json::Map<String, Value>) -> Value {
    let mut out: Vec<(String, Value)> = variables
        .iter()
        .filter_map(|(name, v)| name.strip_prefix(super::record::RECORD_PREFIX).map(|fact| (fact, v)))
        .map(|(fact, v)| match serde_json::from_value::<super::record::CallRecord>(v.clone()) {
            Ok(r) => (
                r.intent_at.clone(),
                json!({
                    "fact": fact, "action": r.action, "region": r.region, "step": r.step, "elementId": r.element_id,
                    "worker": r.worker, "intentAt": r.intent_at,
                    "status": r.outcome.as_ref().map_or("unknown", |o| o.status.as_str()),
                    "at": r.outcome.as_ref().map(|o| o.at.clone()),
                }),
            ),
            Err(_) => (String::new(), json!({"fact": fact, "status": "unreadable"})),
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(out.into_iter().map(|(_, v)| v).collect())
}

/// The final outcome to the webhooks (event `outcome`). Never fails the report: a receiver that
/// does not answer is logged and shows as `outcomeNotified: false`.
async fn notify_outcome(env: &StepEnv<'_>, report: &Value) -> Value {
    let event = crate::notify::Event::outcome(env.input, report);
    let notifier = crate::notify::installed();
    match crate::notify::deliver(notifier.as_deref(), &event).await {
        Ok(v) => v.get("notified").cloned().unwrap_or(json!(false)),
        Err(_) => json!(false),
    }
}

/// `c8dr.notify` (header `event`): logged, and posted to the webhooks of `[notifications]`
/// that want the event (see `crate::notify`).
pub async fn notify(env: &StepEnv<'_>, _: ()) -> StepResult {
    crate::notify::notify_step(crate::notify::installed().as_deref(), env.input).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: EntryKind, el: &str, secs: i64, action: &str) -> JournalEntry {
        JournalEntry {
            time: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            kind,
            target: "t".into(),
            step: format!("c8dr.{el}"),
            element_id: el.into(),
            process_instance_key: 1,
            job_key: 1,
            worker: "w".into(),
            region: None,
            action: action.into(),
            request: String::new(),
            status: String::new(),
            message: String::new(),
        }
    }

    #[test]
    fn steps_from_journal() {
        let j = vec![
            e(EntryKind::Attempt, "remove", 0, "attempt"),
            e(EntryKind::Outcome, "remove", 1, "retry"),
            e(EntryKind::Attempt, "remove", 5, "attempt"),
            e(EntryKind::Call, "remove", 6, "force-remove-brokers"),
            e(EntryKind::Outcome, "remove", 7, "done"),
            e(EntryKind::Attempt, "await", 8, "attempt"),
            e(EntryKind::Outcome, "await", 9, "done"),
            e(EntryKind::Attempt, "report", 10, "attempt"),
        ];
        let s = steps(&j);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].attempts, s[0].mutations, s[0].outcome.as_str()), (2, 1, "done"));
        assert_eq!(s[0].end.unwrap() - s[0].start, chrono::Duration::seconds(7));
        assert_eq!(s[1].step, "await");
    }

    /// A failback called by a drill inherits the drill's `startedAt`; before, its report counted
    /// the drill's earlier time (lose, failover, recreate) as the failback's own.
    #[test]
    fn a_called_process_measures_its_own_time_not_the_inherited_start() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let inherited = crate::procedure::vars([("startedAt", json!(rfc(t0)))]);
        // the failback's own steps run from t0 + 100 s to t0 + 124 s; its report at t0 + 125 s
        let j = vec![
            e(EntryKind::Attempt, "validate", 100, "attempt"),
            e(EntryKind::Outcome, "validate", 101, "done"),
            e(EntryKind::Attempt, "add", 110, "attempt"),
            e(EntryKind::Outcome, "add", 124, "done"),
        ];
        let r = build_report("failback", "t", "w", 1, &j, &inherited, t0 + chrono::Duration::seconds(125));
        assert_eq!(r["durationSeconds"], json!(25.0), "{r}");
        assert_eq!(r["recoveryTimeSeconds"], json!(25.0));
        assert_eq!(r["startedAt"], json!(rfc(t0 + chrono::Duration::seconds(100))));
        assert_eq!(r["clock"], json!("wall"));
        assert_eq!(r["steps"][1]["seconds"], json!(14.0));
        // no journal lines (nothing ran): the variable is the only start there is
        let r = build_report("failback", "t", "w", 1, &[], &inherited, t0 + chrono::Duration::seconds(5));
        assert_eq!(r["durationSeconds"], json!(5.0));
    }

    /// With two worker replicas the one that runs the report may have run none of the first
    /// steps: the start is the instance's own `instanceStartedAt`, whoever validated it; one
    /// inherited from a calling instance (another key) is not this instance's start.
    #[test]
    fn the_start_is_the_instances_own_whichever_replica_validated_it() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        // this replica ran only the later steps
        let j = vec![e(EntryKind::Attempt, "add", 110, "attempt"), e(EntryKind::Outcome, "add", 124, "done")];
        let own = crate::procedure::vars([
            ("startedAt", json!(rfc(t0))),
            ("instanceStartedAt", json!({"processInstanceKey": "7", "at": rfc(t0 + chrono::Duration::seconds(100))})),
        ]);
        let r = build_report("failback", "t", "replica-2", 7, &j, &own, t0 + chrono::Duration::seconds(125));
        assert_eq!(r["durationSeconds"], json!(25.0), "{r}");
        assert_eq!(r["stepsFrom"], json!("the journal of worker replica-2"));
        // inherited from the drill (key 3): not this instance's start; the journal's first line is
        let inherited = crate::procedure::vars([(
            "instanceStartedAt",
            json!({"processInstanceKey": "3", "at": rfc(t0 + chrono::Duration::seconds(1))}),
        )]);
        let r = build_report("failback", "t", "w", 7, &j, &inherited, t0 + chrono::Duration::seconds(125));
        assert_eq!(r["durationSeconds"], json!(15.0), "{r}");
        // the validation keeps the instance's own value on a re-run and replaces an inherited one
        let again = crate::procedure::validate::instance_started_at(&own, 7);
        assert_eq!(again["at"], own["instanceStartedAt"]["at"]);
        assert_eq!(again["processInstanceKey"], json!("7"));
        let fresh = crate::procedure::validate::instance_started_at(&inherited, 7);
        assert_ne!(fresh["at"], inherited["instanceStartedAt"]["at"]);
    }

    /// The drill's recovery times come from its phases' own completion times.
    #[test]
    fn drill_report_uses_the_phase_reports() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let at = |s: i64| json!(rfc(t0 + chrono::Duration::seconds(s)));
        let v = crate::procedure::vars([
            ("regionLostAt", at(10)),
            ("failoverReport", json!({"completedAt": at(40), "durationSeconds": 28.0})),
            ("failbackReport", json!({"completedAt": at(100), "durationSeconds": 24.0})),
        ]);
        let j = vec![e(EntryKind::Attempt, "guard", 0, "attempt"), e(EntryKind::Outcome, "guard", 1, "done")];
        let r = build_report("drill", "t", "w", 1, &j, &v, t0 + chrono::Duration::seconds(101));
        assert_eq!(r["recoveryTimeSeconds"], json!(30.0));
        assert_eq!(r["fullRecoveryTimeSeconds"], json!(90.0));
        assert_eq!(r["durationSeconds"], json!(101.0));
    }

    /// Issue 9.7: with several worker replicas each journal holds only its replica's calls; the
    /// report lists the instance's call records, whoever made them, in the order of their
    /// intents, with an unknown outcome shown as such.
    #[test]
    fn the_report_lists_the_call_records_of_every_replica() {
        let rec = |worker: &str, action: &str, at: &str, outcome: Value| {
            json!({"action": action, "region": 0, "request": "-", "step": format!("c8dr.{action}"), "jobKey": 1,
                   "elementInstanceKey": 2, "elementId": action, "worker": worker, "intentAt": at,
                   "observed": null, "outcome": outcome})
        };
        let v = crate::procedure::vars([
            (
                "c8drCall_exporting_r0",
                rec(
                    "w2",
                    "resume-exporting",
                    "2026-01-01T00:00:05.000Z",
                    json!({"status": "ok", "message": "", "at": "2026-01-01T00:00:06.000Z"}),
                ),
            ),
            ("c8drCall_cluster_r0", rec("w1", "remove-brokers", "2026-01-01T00:00:01.000Z", Value::Null)),
            ("c8drCall_broken", json!("not a record")),
            ("changeId", json!(3)),
        ]);
        let r = build_report("failover", "t", "w", 1, &[], &v, DateTime::from_timestamp(1_767_225_610, 0).unwrap());
        let calls = r["callRecords"].as_array().unwrap();
        assert_eq!(calls.len(), 3, "{r}");
        assert_eq!(calls[0]["status"], json!("unreadable"));
        assert_eq!(calls[1]["worker"], json!("w1"));
        assert_eq!(calls[1]["status"], json!("unknown"));
        assert_eq!(calls[2]["worker"], json!("w2"));
        assert_eq!(calls[2]["status"], json!("ok"));
        assert_eq!(calls[2]["fact"], json!("exporting_r0"));
    }
}
