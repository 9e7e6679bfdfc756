//! A Camunda form's text, in a terminal: what `--interactive` shows before each question, so the
//! operator reads the same plain-language summary Tasklist shows (one source: `bpmn/forms`).
//!
//! Renders the form's `text` components with the task's variables: the templating subset the
//! forms use (`{{a.b}}`, `{{#if a.b}}…{{/if}}`, `{{#loop a}}…{{this}}/{{field}}…{{/loop}}`), the
//! `conditional.hide` expressions of the form `=path = null`, and Markdown made plain (headings,
//! tables as `Item: value` lines, emphasis and code marks removed).
use serde_json::{Map, Value};

/// The plain text of `form` (a form JSON) for a task with `variables`.
pub fn render(form: &Value, variables: &Map<String, Value>) -> String {
    let scope = Value::Object(variables.clone());
    let mut out = Vec::new();
    for c in form["components"].as_array().into_iter().flatten() {
        if c["type"] != "text" || hidden(c, &scope) {
            continue;
        }
        let text = c["text"].as_str().unwrap_or_default();
        let filled = fill(text, &scope);
        let plain = plain_markdown(&filled);
        if !plain.trim().is_empty() {
            out.push(plain.trim_end().to_string());
        }
    }
    out.join("\n\n")
}

/// `conditional.hide` of the shape `=path = null` (the only shape the forms use): hidden when
/// the path is absent or null. Any other expression shows the component.
fn hidden(component: &Value, scope: &Value) -> bool {
    let Some(expr) = component["conditional"]["hide"].as_str() else {
        return false;
    };
    let expr = expr.trim().trim_start_matches('=').trim();
    match expr.strip_suffix("= null") {
        Some(path) => lookup(scope, path.trim()).is_none_or(Value::is_null),
        None => false,
    }
}

fn lookup<'a>(scope: &'a Value, path: &str) -> Option<&'a Value> {
    if path == "this" {
        return Some(scope);
    }
    path.split('.').try_fold(scope, |v, key| v.get(key))
}

/// A value as a person reads it: strings bare, lists comma-separated, nothing as "unknown".
fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "unknown".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "none".into(),
        Some(Value::Array(a)) => a.iter().map(|x| show(Some(x))).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

/// Expands the template subset with `scope`.
fn fill(text: &str, scope: &Value) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = after[..end].trim();
        rest = &after[end + 2..];
        if let Some(path) = tag.strip_prefix("#if ").or_else(|| tag.strip_prefix("#loop ")) {
            let block = if tag.starts_with("#if") { "if" } else { "loop" };
            let (body, remainder) = split_block(rest, block);
            rest = remainder;
            let value = lookup(scope, path.trim());
            if block == "if" {
                if truthy(value) {
                    out.push_str(&fill(body, scope));
                }
            } else if let Some(Value::Array(items)) = value {
                for item in items {
                    out.push_str(&fill(body, item));
                }
            }
        } else {
            out.push_str(&show(lookup(scope, tag)));
        }
    }
    out.push_str(rest);
    out
}

/// The body of a `{{#if}}`/`{{#loop}}` block opened just before `text`, and what follows its
/// closing tag (nested blocks of the same kind are skipped over).
fn split_block<'a>(text: &'a str, kind: &str) -> (&'a str, &'a str) {
    let open = format!("{{{{#{kind} ");
    let close = format!("{{{{/{kind}}}}}");
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < text.len() {
        if text[i..].starts_with(&open) {
            depth += 1;
            i += open.len();
        } else if text[i..].starts_with(&close) {
            if depth == 0 {
                return (&text[..i], &text[i + close.len()..]);
            }
            depth -= 1;
            i += close.len();
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    (text, "")
}

/// Markdown as plain terminal text.
fn plain_markdown(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            continue;
        }
        if t.starts_with('|') {
            let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
            let separator = cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'));
            if separator || cells == ["Item", "Value"] {
                continue;
            }
            lines.push(format!("  {}", cells.join(": ")));
            continue;
        }
        let heading = t.trim_start_matches('#');
        if heading.len() != t.len() {
            lines.push(heading.trim().to_string());
            continue;
        }
        lines.push(line.to_string());
    }
    // a loop body starting with a newline leaves a blank line between list items; runs of blank
    // lines become one
    let mut kept: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            let prev_item = kept.last().is_some_and(|l| l.trim_start().starts_with("- "));
            let next_item =
                lines[i + 1..].iter().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim_start().starts_with("- "));
            if (prev_item && next_item) || kept.last().is_none_or(|l| l.trim().is_empty()) {
                continue;
            }
        }
        kept.push(line.clone());
    }
    kept.join("\n").replace("**", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(path: &str) -> Value {
        let text = std::fs::read_to_string(format!("{}/bpmn/forms/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_failover_approval_says_what_will_be_done_to_which_target_and_why() {
        let vars = json!({
            "target": "prod",
            "lostRegion": 1,
            "reason": "region-b datacenter flooded",
            "plan": {
                "survivingRegion": 0,
                "brokersToRemove": [1, 3, 5, 7],
                "survivingBrokers": [0, 2, 4, 6],
                "currentClusterSize": 8,
                "expectedClusterSize": 4,
                "expectedReplicationFactor": 2,
                "plannedOperations": 24,
                "alreadyFailedOver": false,
                "topologySource": "/v2/topology",
                "lostRegionCheck": {"silent": true, "answer": null, "override": null},
                "plannedChanges": ["BROKER_REMOVE 1", "PARTITION_LEAVE 1 on 1"]
            }
        });
        let text = render(&form("c8dr-approve-failover.form"), vars.as_object().unwrap());
        assert!(text.contains("Approve failover of prod"), "{text}");
        assert!(text.contains("Region 1 is reported lost; region 0 keeps running."), "{text}");
        assert!(text.contains("Reason given: region-b datacenter flooded"), "{text}");
        assert!(text.contains("  Brokers to remove (force): 1, 3, 5, 7"), "{text}");
        assert!(text.contains("  Cluster size: 8 → 4"), "{text}");
        assert!(text.contains("- BROKER_REMOVE 1\n- PARTITION_LEAVE 1 on 1"), "list items without blank lines: {text}");
        // the override section is hidden when no override was recorded; no template is left
        assert!(!text.contains("Split-brain check overridden"), "{text}");
        assert!(!text.contains("{{") && !text.contains("**") && !text.contains('|'), "{text}");
    }

    #[test]
    fn missing_values_read_unknown_and_if_blocks_follow_the_value() {
        let f = json!({"components": [
            {"type": "text", "text": "step `{{lastError.step}}`{{#if lastError.field}} field {{lastError.field}}{{/if}}"},
            {"type": "text", "text": "hidden", "conditional": {"hide": "=override = null"}},
            {"type": "radio", "key": "decision"}
        ]});
        let none = render(&f, json!({}).as_object().unwrap());
        assert_eq!(none, "step unknown");
        let some = render(
            &f,
            json!({"lastError": {"step": "c8dr.helm", "field": "action"}, "override": 1}).as_object().unwrap(),
        );
        assert_eq!(some, "step c8dr.helm field action\n\nhidden");
    }

    #[test]
    fn every_form_renders_without_template_leftovers() {
        let dir = format!("{}/bpmn/forms", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let text = render(&f, &Map::new());
            assert!(!text.contains("{{") && !text.contains("}}"), "{}: {text}", path.display());
            assert!(!text.trim().is_empty(), "{}", path.display());
        }
    }
}
