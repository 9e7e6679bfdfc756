//! `c8dr.approval-guard`: the Camunda 8.8 `completing` user task listener on every approval task
//! (four-eyes). It decides whether the completion Tasklist (or the REST API) asked for may go
//! through, and denies it with a reason Tasklist shows otherwise:
//!
//! - a rejection (any answer that stops the procedure) needs a reason in `comment`;
//! - with four-eyes on (`[targets.X] four_eyes`, default true), an answer that lets the procedure
//!   go ahead needs a known approver (the task's assignee: Tasklist assigns the task to whoever
//!   completes it) who is not the process initiator (`initiatedBy`, set by `c8dr start
//!   --initiated-by`, `c8dr rehearse` and `c8dr drill trigger`). An unknown initiator or approver
//!   is never "different": fail closed.
//!
//! Stopping is always safe, so the initiator may reject (with a reason). The guard reads only
//! the job: it calls nothing and mutates nothing.
use super::{Done, StepEnv, StepResult};
use serde_json::Value;

/// Header Camunda 8.8 puts the user task's assignee in, on task listener jobs.
pub const ASSIGNEE_HEADER: &str = "io.camunda.zeebe:assignee";
/// Header with the lifecycle action (`complete` for a completion).
pub const ACTION_HEADER: &str = "io.camunda.zeebe:action";

/// What an approval task asks and which answers let the procedure go ahead.
struct Gate {
    /// The form field (process variable) holding the answer.
    answer: &'static str,
    /// True when the answer lets the procedure continue (the four-eyes case); anything else
    /// stops it (a rejection, which needs a reason).
    goes_ahead: fn(Option<&Value>) -> bool,
}

/// The approval tasks of dr-failover and dr-failback, by element id (public contract, see
/// docs/bpmn.md).
fn gate_of(element_id: &str) -> Option<Gate> {
    fn is(v: Option<&Value>, s: &str) -> bool {
        v.and_then(Value::as_str) == Some(s)
    }
    match element_id {
        "ApproveFailover" | "ApproveFailback" => Some(Gate { answer: "decision", goes_ahead: |v| is(v, "approve") }),
        "ConfirmRestored" => Some(Gate { answer: "decision", goes_ahead: |v| is(v, "confirm") }),
        "ConfirmTraffic" => {
            Some(Gate { answer: "trafficRerouted", goes_ahead: |v| v.and_then(Value::as_bool) == Some(true) })
        }
        // keep waiting (the default) goes ahead with exporting paused; resume aborts the failback
        id if id.starts_with("PausedWindow_") => {
            Some(Gate { answer: "pausedDecision", goes_ahead: |v| !is(v, "resume") })
        }
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn deny(reason: String) -> StepResult {
    Ok(Done::Verdict { deny: Some(reason) })
}

pub async fn approval_guard(env: &StepEnv<'_>, _: ()) -> StepResult {
    let input = env.input;
    let action = env.header(ACTION_HEADER).unwrap_or("complete");
    if action != "complete" {
        return deny(format!(
            "c8dr.approval-guard guards completions only, but was called for '{action}': attach it as a completing listener"
        ));
    }
    let Some(gate) = gate_of(&input.element_id) else {
        return deny(format!(
            "c8dr.approval-guard does not know the user task '{}', so it cannot tell an approval from a rejection: attach it only to the approval tasks listed in docs/jobs.md",
            input.element_id
        ));
    };
    let answer = input.variables.get(gate.answer).filter(|v| !v.is_null());
    let comment = text(input.variables.get("comment"));
    if !(gate.goes_ahead)(answer) {
        return if comment.is_none() {
            deny(format!(
                "A rejection needs a reason: write why in the comment field (answer {} = {}). It is recorded in the audit trail and the report.",
                gate.answer,
                answer.map_or("missing".to_string(), Value::to_string)
            ))
        } else {
            Ok(Done::Verdict { deny: None })
        };
    }
    if !env.target.four_eyes {
        tracing::info!(target = %input.target_name, element = %input.element_id, "four-eyes waived for this target (four_eyes = false)");
        return Ok(Done::Verdict { deny: None });
    }
    let Some(approver) = env.header(ASSIGNEE_HEADER).map(str::trim).filter(|a| !a.is_empty()) else {
        return deny(
            "Four-eyes: assign the task to yourself before completing it, so the approver is known (an unassigned completion cannot be checked)."
                .to_string(),
        );
    };
    let Some(initiator) = text(input.variables.get("initiatedBy")) else {
        return deny(format!(
            "Four-eyes cannot be checked: the process has no initiatedBy variable (who started it). Start it with `c8dr start --initiated-by NAME`, or set four_eyes = false for target `{}` if it is a drill target.",
            input.target_name
        ));
    };
    if approver.eq_ignore_ascii_case(initiator) {
        let group = text(input.variables.get("approverGroup")).unwrap_or("the approver group");
        return deny(format!(
            "Four-eyes: {approver} started this process and cannot also approve it; another member of {group} must decide. (You may still reject, with a reason.)"
        ));
    }
    Ok(Done::Verdict { deny: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetConfig;
    use crate::platform::{self, NoRegionControl};
    use crate::procedure::StepInput;
    use crate::procedure::fake::FakeTarget;
    use crate::procedure::journal::Journal;
    use serde_json::json;

    fn verdict(element: &str, assignee: Option<&str>, vars: Value, four_eyes: bool) -> Option<String> {
        let mut target: TargetConfig = toml::from_str("regions = []").unwrap();
        target.four_eyes = four_eyes;
        let mut headers = std::collections::BTreeMap::new();
        headers.insert(ACTION_HEADER.to_string(), "complete".to_string());
        if let Some(a) = assignee {
            headers.insert(ASSIGNEE_HEADER.to_string(), a.to_string());
        }
        let input = StepInput {
            target_name: "prod".into(),
            step: "c8dr.approval-guard".into(),
            variables: vars.as_object().cloned().unwrap(),
            headers,
            element_id: element.into(),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let api = FakeTarget::healthy(8, 8, 4);
        let pf = platform::connect("t", &target).unwrap().platform;
        let env = StepEnv {
            input: &input,
            target: &target,
            api: &api,
            platform: pf.as_ref(),
            drill: &NoRegionControl,
            journal: &Journal::new(dir.path().join("j.jsonl")),
            recorder: &crate::procedure::record::NoRecorder,
            written: Default::default(),
        };
        match futures::executor::block_on(approval_guard(&env, ())) {
            Ok(Done::Verdict { deny }) => deny,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_initiator_cannot_approve_another_approver_can() {
        let v =
            json!({"initiatedBy": "alice", "decision": "approve", "comment": "ok", "approverGroup": "dr-operators"});
        let why = verdict("ApproveFailover", Some("alice"), v.clone(), true).expect("denied");
        assert!(why.contains("alice started this process") && why.contains("dr-operators"), "{why}");
        assert!(verdict("ApproveFailover", Some("ALICE"), v.clone(), true).is_some(), "case-insensitive");
        assert_eq!(verdict("ApproveFailover", Some("bob"), v.clone(), true), None);
        // waived per target
        assert_eq!(verdict("ApproveFailover", Some("alice"), v, false), None);
    }

    #[test]
    fn unknown_approver_or_initiator_fails_closed() {
        let v = json!({"initiatedBy": "alice", "trafficRerouted": true});
        assert!(verdict("ConfirmTraffic", None, v, true).unwrap().contains("assign the task"));
        let v = json!({"decision": "confirm"});
        assert!(verdict("ConfirmRestored", Some("bob"), v, true).unwrap().contains("no initiatedBy"));
        assert!(
            verdict("SomethingElse", Some("bob"), json!({"initiatedBy": "a"}), true).unwrap().contains("does not know")
        );
    }

    #[test]
    fn a_rejection_needs_a_reason_and_the_initiator_may_reject() {
        let v = json!({"initiatedBy": "alice", "decision": "reject", "comment": "  "});
        assert!(verdict("ApproveFailback", Some("bob"), v, true).unwrap().contains("needs a reason"));
        // a missing answer is a rejection too
        assert!(verdict("ApproveFailback", Some("bob"), json!({"initiatedBy": "alice"}), true).is_some());
        let v = json!({"initiatedBy": "alice", "decision": "reject", "comment": "wrong region"});
        assert_eq!(verdict("ApproveFailback", Some("alice"), v, true), None);
        let v = json!({"initiatedBy": "alice", "pausedDecision": "resume"});
        assert!(verdict("PausedWindow_Paused", Some("bob"), v, true).unwrap().contains("needs a reason"));
        let v = json!({"initiatedBy": "alice", "pausedDecision": "wait"});
        assert!(verdict("PausedWindow_Paused", Some("alice"), v.clone(), true).is_some());
        assert_eq!(verdict("PausedWindow_Paused", Some("bob"), v, true), None);
    }
}
