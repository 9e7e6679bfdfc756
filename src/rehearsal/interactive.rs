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

/// Whether a reply needs a reason or takes a comment: every explicit no asks for its reason (it
/// ends or aborts the procedure, and the report says why); a yes to an approval takes an
/// optional comment for the audit trail.
pub fn follow_up(form: &str, reply: Reply) -> Option<(&'static str, bool)> {
    match reply {
        Reply::No => Some(("Reason (recorded in the audit trail and the report): ", true)),
        Reply::Yes if form.starts_with("c8dr-approve-") || form == "c8dr-confirm-restored" => {
            Some(("Comment (optional, recorded in the audit trail): ", false))
        }
        _ => None,
    }
}

/// The answer's variables with the operator's reason or comment (`comment`, as the forms name it).
pub fn with_comment(mut answer: Map<String, Value>, comment: Option<&str>) -> Map<String, Value> {
    if let Some(c) = comment.map(str::trim).filter(|c| !c.is_empty()) {
        answer.insert("comment".into(), json!(c));
    }
    answer
}

/// What the terminal shows before the question: the task, then the form's own text with the
/// task's variables (the plain-language summary Tasklist shows), or the raw evidence when the
/// form is not known.
pub fn summary(task: &UserTaskView, form_json: Option<&Value>) -> String {
    let form = task.form_id.clone().unwrap_or_default();
    let title = task.name.clone().unwrap_or_else(|| task.element_id.clone());
    let mut text = format!("\n=== {title} ===\n");
    match form_json {
        Some(f) => {
            text.push_str(&crate::rehearsal::form_text::render(f, &task.variables));
            text.push('\n');
        }
        None => {
            for k in ["plan", "preflight", "lastError", "manualCommand", "topology", "exporters"] {
                if let Some(v) = task.variables.get(k) {
                    text.push_str(&format!("{k}: {}\n", serde_json::to_string_pretty(v).unwrap_or_default()));
                }
            }
            if form.is_empty() {
                text.push_str("(no form)\n");
            }
        }
    }
    text
}

fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// Shows the task's plain-language summary, asks the question its form asks (and, after a no,
/// the reason), returns the answer. Log lines are held while the question is open.
pub async fn ask(task: &UserTaskView, form_json: Option<&Value>) -> Map<String, Value> {
    let form = task.form_id.clone().unwrap_or_default();
    let mut text = summary(task, form_json);
    let (q, _, _) = question(&form);
    text.push_str(q);
    text.push(' ');
    let form_for_thread = form.clone();
    let hold = crate::observe::hold_logs();
    let (reply, comment) = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        eprint!("{text}");
        let reply = loop {
            let _ = std::io::stderr().flush();
            match parse_reply(read_line().as_deref()) {
                Some(Reply::NoAnswer) => {
                    eprintln!("\nstdin is closed: no answer recorded (the process treats it as no valid answer)");
                    return (Reply::NoAnswer, None);
                }
                Some(r) => break r,
                None => eprint!("please answer y or n: "),
            }
        };
        let mut comment = None;
        if let Some((prompt, required)) = follow_up(&form_for_thread, reply) {
            loop {
                eprint!("{prompt}");
                let _ = std::io::stderr().flush();
                match read_line() {
                    None => {
                        if required {
                            comment = Some("no reason given: stdin was closed".to_string());
                        }
                        break;
                    }
                    Some(l) if l.trim().is_empty() && required => eprintln!("a reason is needed for a no"),
                    Some(l) => {
                        comment = Some(l.trim().to_string());
                        break;
                    }
                }
            }
        }
        (reply, comment)
    })
    .await
    .unwrap_or((Reply::NoAnswer, None));
    drop(hold);
    with_comment(answer(&form, reply), comment.as_deref())
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
    fn a_no_asks_for_its_reason_and_records_it() {
        assert_eq!(follow_up("c8dr-approve-failover", Reply::No).map(|f| f.1), Some(true));
        assert_eq!(follow_up("c8dr-step-failed", Reply::No).map(|f| f.1), Some(true));
        assert_eq!(follow_up("c8dr-approve-failback", Reply::Yes).map(|f| f.1), Some(false));
        assert_eq!(follow_up("c8dr-step-failed", Reply::Yes), None);
        assert_eq!(follow_up("c8dr-approve-failover", Reply::NoAnswer), None);
        let a = with_comment(answer("c8dr-approve-failover", Reply::No), Some(" region is back \n"));
        assert_eq!(a["decision"], json!("reject"));
        assert_eq!(a["comment"], json!("region is back"));
        // an empty optional comment keeps the default
        let a = with_comment(answer("c8dr-approve-failover", Reply::Yes), Some("  "));
        assert_eq!(a["comment"], json!("answered interactively in c8dr rehearse"));
    }

    #[test]
    fn the_summary_is_the_forms_text_with_the_tasks_variables() {
        let form: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bpmn/forms/c8dr-manual-step.form")).unwrap(),
        )
        .unwrap();
        let task = UserTaskView {
            key: 1,
            element_id: "ManualStep".into(),
            name: Some("Run the manual step".into()),
            form_id: Some("c8dr-manual-step".into()),
            process_instance_key: 2,
            bpmn_process_id: "dr-failback".into(),
            candidate_groups: vec![],
            assignee: None,
            due_date: None,
            variables: json!({"target": "prod", "manualStepId": "helm-deploy-recreated", "manualCommand": "helm upgrade --install camunda x"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let s = summary(&task, Some(&form));
        assert!(s.contains("=== Run the manual step ==="), "{s}");
        assert!(s.contains("Manual step required (prod)"), "{s}");
        assert!(s.contains("helm upgrade --install camunda x"), "{s}");
        assert!(!s.contains("{{") && !s.contains('{'), "no raw JSON or template: {s}");
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
