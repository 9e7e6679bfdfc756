//! `c8dr rehearse --interactive`: the operator answers each user task in the terminal.
use crate::rehearsal::engine::UserTaskView;
use serde_json::{Map, Value, json};

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
    let (question, yes, no) = match form.as_str() {
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
            "Traffic rerouted to the surviving region? [y]",
            json!({"trafficRerouted": true}),
            json!({"trafficRerouted": true}),
        ),
        "c8dr-manual-step" => {
            ("Command run successfully? [y]", json!({"manualStepDone": true}), json!({"manualStepDone": true}))
        }
        _ => ("Complete the task? [y]", json!({}), json!({})),
    };
    text.push_str(question);
    text.push(' ');
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        eprint!("{text}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        line
    })
    .await
    .unwrap_or_default();
    let mut out = match if answer.trim().eq_ignore_ascii_case("y") { yes } else { no } {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    out.insert("comment".into(), json!("answered interactively in c8dr rehearse"));
    out
}
