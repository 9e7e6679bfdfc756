//! `c8dr rehearse --interactive`: the operator answers each user task in the terminal.
//!
//! Answers map exactly: `y`/`yes` is the form's yes, `n`/`no` its explicit no (a confirmation
//! answered `n` records `false`), anything else asks again. A closed stdin is *no answer*: the task
//! is completed without the decision variable and with a comment saying so, and the process's gate
//! reports "no valid answer" (it never becomes a yes, nor an explicit no).
use crate::rehearsal::engine::UserTaskView;
use serde_json::{Map, Value, json};

/// What the operator answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Yes,
    No,
    /// stdin closed (or unreadable) before an answer.
    NoAnswer,
}

/// One line typed by the operator: `Some(reply)` for y/yes/n/no (any case), `None` to ask again.
/// `line` is None when stdin is closed.
pub fn parse_reply(line: Option<&str>) -> Option<Reply> {
    let Some(line) = line else {
        return Some(Reply::NoAnswer);
    };
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(Reply::Yes),
        "n" | "no" => Some(Reply::No),
        _ => None,
    }
}

/// The question a form asks, and the variables of its yes and of its explicit no.
pub fn question(form: &str) -> (&'static str, Value, Value) {
    match form {
        "c8dr-approve-failover" | "c8dr-approve-failback" => {
            ("Approve? [y/n]", json!({"decision": "approve"}), json!({"decision": "reject"}))
        }
        "c8dr-confirm-restored" => {
            ("Service restored? [y/n]", json!({"decision": "confirm"}), json!({"decision": "reject"}))
        }
        "c8dr-verification-timeout" => (
            "Retry the verification? (n = abort) [y/n]",
            json!({"timeoutDecision": "retry"}),
            json!({"timeoutDecision": "abort"}),
        ),
        "c8dr-step-failed" => {
            ("Retry the step? (n = abort) [y/n]", json!({"errorDecision": "retry"}), json!({"errorDecision": "abort"}))
        }
        "c8dr-confirm-traffic" => (
            "Traffic rerouted to the surviving region? [y/n]",
            json!({"trafficRerouted": true}),
            json!({"trafficRerouted": false}),
        ),
        "c8dr-manual-step" => {
            ("Command run successfully? [y/n]", json!({"manualStepDone": true}), json!({"manualStepDone": false}))
        }
        "c8dr-paused-window" => (
            "Resume exporting now? This aborts the failback (n = keep waiting) [y/n]",
            json!({"pausedDecision": "resume"}),
            json!({"pausedDecision": "wait"}),
        ),
        _ => ("Complete the task? [y/n]", json!({}), json!({})),
    }
}

/// The variables a reply completes the task with.
pub fn answer(form: &str, reply: Reply) -> Map<String, Value> {
    let (_, yes, no) = question(form);
    let (vars, comment) = match reply {
        Reply::Yes => (yes, "answered interactively in c8dr rehearse"),
        Reply::No => (no, "answered interactively in c8dr rehearse"),
        Reply::NoAnswer => (json!({}), "no answer: stdin was closed before the question was answered"),
    };
    let mut out = match vars {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    out.insert("comment".into(), json!(comment));
    out
}

/// Shows the task and its evidence, asks the question its form asks, returns the answer.
pub async fn ask(task: &UserTaskView) -> Map<String, Value> {
    let form = task.form_id.clone().unwrap_or_default();
    let evidence: Vec<(&str, Option<&Value>)> =
        ["plan", "preflight", "lastError", "manualCommand", "topology", "exporters"]
            .iter()
            .map(|k| (*k, task.variables.get(*k)))
            .collect();
    let mut text =
        format!("\n--- user task {} ({form}) ---\n", task.name.clone().unwrap_or_else(|| task.element_id.clone()));
    for (k, v) in evidence {
        if let Some(v) = v {
            text.push_str(&format!("{k}: {}\n", serde_json::to_string_pretty(v).unwrap_or_default()));
        }
    }
    let (q, _, _) = question(&form);
    text.push_str(q);
    text.push(' ');
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        eprint!("{text}");
        loop {
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let read = match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line),
            };
            match parse_reply(read.as_deref()) {
                Some(Reply::NoAnswer) => {
                    eprintln!("\nstdin is closed: no answer recorded (the process treats it as no valid answer)");
                    return Reply::NoAnswer;
                }
                Some(r) => return r,
                None => eprint!("please answer y or n: "),
            }
        }
    })
    .await
    .unwrap_or(Reply::NoAnswer);
    answer(&form, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_exactly_and_a_closed_stdin_is_no_answer() {
        assert_eq!(parse_reply(Some("y\n")), Some(Reply::Yes));
        assert_eq!(parse_reply(Some(" YES ")), Some(Reply::Yes));
        assert_eq!(parse_reply(Some("n\n")), Some(Reply::No));
        assert_eq!(parse_reply(Some("No")), Some(Reply::No));
        assert_eq!(parse_reply(Some("\n")), None, "an empty line asks again");
        assert_eq!(parse_reply(Some("maybe")), None);
        assert_eq!(parse_reply(None), Some(Reply::NoAnswer));
    }

    #[test]
    fn a_no_records_the_explicit_no_of_every_form() {
        let no = |form: &str| Value::Object(answer(form, Reply::No));
        assert_eq!(no("c8dr-confirm-traffic")["trafficRerouted"], json!(false));
        assert_eq!(no("c8dr-manual-step")["manualStepDone"], json!(false));
        assert_eq!(no("c8dr-approve-failover")["decision"], json!("reject"));
        assert_eq!(no("c8dr-approve-failback")["decision"], json!("reject"));
        assert_eq!(no("c8dr-confirm-restored")["decision"], json!("reject"));
        assert_eq!(no("c8dr-step-failed")["errorDecision"], json!("abort"));
        assert_eq!(no("c8dr-verification-timeout")["timeoutDecision"], json!("abort"));
        assert_eq!(no("c8dr-paused-window")["pausedDecision"], json!("wait"));
        let yes = |form: &str| Value::Object(answer(form, Reply::Yes));
        assert_eq!(yes("c8dr-confirm-traffic")["trafficRerouted"], json!(true));
        assert_eq!(yes("c8dr-manual-step")["manualStepDone"], json!(true));
        assert_eq!(yes("c8dr-approve-failover")["decision"], json!("approve"));
        assert_eq!(yes("c8dr-paused-window")["pausedDecision"], json!("resume"));
    }

    #[test]
    fn no_answer_sets_no_decision_variable_and_says_so() {
        for form in ["c8dr-confirm-traffic", "c8dr-approve-failover", "c8dr-step-failed", "c8dr-manual-step"] {
            let a = answer(form, Reply::NoAnswer);
            assert_eq!(a.keys().collect::<Vec<_>>(), vec!["comment"], "{form}: only the comment");
            assert!(a["comment"].as_str().unwrap().contains("no answer"), "{form}");
        }
    }
}
