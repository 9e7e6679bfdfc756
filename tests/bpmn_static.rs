//! Static checks that bpmn/ (processes, forms, element templates), docs/jobs.md and src/ agree:
//! job types, headers, forms and their fields, error codes, verification loops, FEEL syntax and
//! the diagrams. No engine, no network: this reads files.
#![cfg(feature = "rehearsal")] // parses FEEL with the rehearsal engine's FEEL crates

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";
const DI_NS: &str = "http://www.omg.org/spec/BPMN/20100524/DI";
const DC_NS: &str = "http://www.omg.org/spec/DD/20100524/DC";
const PROCESSES: [&str; 3] = ["dr-failover", "dr-failback", "dr-drill"];

/// BPMN elements that are flow nodes (get a shape and may be sources/targets of flows).
const FLOW_NODES: [&str; 10] = [
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "boundaryEvent",
    "serviceTask",
    "userTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// Every `<quote>PREFIX...<quote>` in `text` (e.g. "c8dr." inside string literals or backticks).
fn quoted_with_prefix(text: &str, quote: char, prefix: &str) -> BTreeSet<String> {
    let needle = format!("{quote}{prefix}");
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + 1..];
        match after.find(quote) {
            Some(end) => {
                let word = &after[..end];
                if word.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
                    out.insert(word.to_string());
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// Job types the worker registers: `c8dr::jobs::JOB_TYPES`, the list `c8dr worker` and
/// `c8dr rehearse` register handlers for.
fn job_types_in_code() -> BTreeSet<String> {
    c8dr::jobs::JOB_TYPES.iter().map(|t| t.to_string()).collect()
}

/// Job types in docs/jobs.md: backticked `c8dr.<name>`.
fn job_types_in_docs() -> BTreeSet<String> {
    quoted_with_prefix(&read(&root().join("docs/jobs.md")), '`', "c8dr.")
}

struct Bpmn {
    name: String,
    text: String,
}

impl Bpmn {
    fn doc(&self) -> Document<'_> {
        Document::parse(&self.text).unwrap_or_else(|e| panic!("{}: invalid XML: {e}", self.name))
    }
}

fn bpmn_files() -> Vec<Bpmn> {
    let files = files_with_ext(&root().join("bpmn"), "bpmn");
    assert!(!files.is_empty(), "no .bpmn files in bpmn/");
    files
        .into_iter()
        .map(|p| Bpmn { name: p.file_name().unwrap().to_string_lossy().into_owned(), text: read(&p) })
        .collect()
}

fn is(node: &Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == name
}

fn bpmn_elems<'a>(doc: &'a Document, name: &'a str) -> impl Iterator<Item = Node<'a, 'a>> + 'a {
    doc.descendants().filter(move |n| is(n, BPMN_NS, name))
}

fn zeebe_children<'a>(node: Node<'a, 'a>, name: &'a str) -> impl Iterator<Item = Node<'a, 'a>> {
    node.descendants().filter(move |n| is(n, ZEEBE_NS, name))
}

/// The zeebe extension elements directly on `node` (not those of nested elements).
fn own_ext<'a>(node: Node<'a, 'a>, name: &'a str) -> Vec<Node<'a, 'a>> {
    node.children()
        .filter(|c| is(c, BPMN_NS, "extensionElements"))
        .flat_map(|e| e.descendants().filter(move |n| is(n, ZEEBE_NS, name)))
        .collect()
}

fn id<'a>(node: &Node<'a, 'a>) -> &'a str {
    node.attribute("id").unwrap_or("<no id>")
}

/// (job type, header key, header value) of every service task.
fn service_tasks(doc: &Document) -> Vec<(String, String, BTreeMap<String, String>)> {
    bpmn_elems(doc, "serviceTask")
        .map(|task| {
            let ty = own_ext(task, "taskDefinition")
                .first()
                .and_then(|d| d.attribute("type"))
                .unwrap_or_else(|| panic!("service task {} has no job type", id(&task)))
                .to_string();
            let headers = own_ext(task, "header")
                .into_iter()
                .map(|h| {
                    (
                        h.attribute("key").unwrap_or_default().to_string(),
                        h.attribute("value").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            (id(&task).to_string(), ty, headers)
        })
        .collect()
}

/// (user task id, formId, [(eventType, job type)]) of a user task.
type TaskListeners = (String, String, Vec<(String, String)>);

fn user_task_listeners(doc: &Document) -> Vec<TaskListeners> {
    bpmn_elems(doc, "userTask")
        .map(|t| {
            let form = own_ext(t, "formDefinition")
                .first()
                .and_then(|f| f.attribute("formId"))
                .unwrap_or_default()
                .to_string();
            let listeners = own_ext(t, "taskListener")
                .into_iter()
                .map(|l| {
                    (
                        l.attribute("eventType").unwrap_or_default().to_string(),
                        l.attribute("type").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            (id(&t).to_string(), form, listeners)
        })
        .collect()
}

/// Job types used as user task listeners (no element template: they are not service tasks), from
/// the step table.
fn listener_job_types() -> Vec<&'static str> {
    use c8dr::procedure::steps::{STEPS, StepKind};
    STEPS.iter().filter(|s| s.kind == StepKind::Listener).map(|s| s.job_type).collect()
}

/// Four-eyes: every approval task (approve/confirm and the paused-window decision) has the
/// `completing` listener `c8dr.approval-guard`; the retry/abort and manual-step decisions have
/// none (an abort is always safe, and a stuck step must stay recoverable by one person).
#[test]
fn every_approval_task_has_the_four_eyes_listener() {
    const GUARDED: &[&str] = &[
        "c8dr-approve-failover",
        "c8dr-confirm-traffic",
        "c8dr-approve-failback",
        "c8dr-confirm-restored",
        "c8dr-paused-window",
    ];
    let mut seen = BTreeSet::new();
    for f in bpmn_files() {
        for (task, form, listeners) in user_task_listeners(&f.doc()) {
            if GUARDED.contains(&form.as_str()) {
                assert_eq!(
                    listeners,
                    vec![("completing".to_string(), "c8dr.approval-guard".to_string())],
                    "{}: {task} ({form})",
                    f.name
                );
                seen.insert(form);
            } else {
                assert!(listeners.is_empty(), "{}: {task} ({form}) has listeners {listeners:?}", f.name);
            }
        }
    }
    assert_eq!(seen.len(), GUARDED.len(), "approval tasks found: {seen:?}");
}

#[test]
fn the_three_processes_exist_with_their_ids() {
    let ids: BTreeSet<String> = bpmn_files()
        .iter()
        .flat_map(|f| {
            let doc = f.doc();
            bpmn_elems(&doc, "process")
                .map(|p| {
                    assert_eq!(p.attribute("isExecutable"), Some("true"), "{}", f.name);
                    assert_eq!(f.name, format!("{}.bpmn", id(&p)), "file name = process id");
                    id(&p).to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for p in PROCESSES {
        assert!(ids.contains(p), "process {p} missing in bpmn/");
    }
}

#[test]
fn job_types_agree_between_bpmn_docs_and_code() {
    let code = job_types_in_code();
    assert!(
        !code.is_empty(),
        "src/jobs.rs has no \"c8dr.<name>\" job type literals yet: the job type list must be \
         defined there (docs/jobs.md)"
    );
    let docs = job_types_in_docs();
    let mut used = BTreeSet::new();
    for f in bpmn_files() {
        let doc = f.doc();
        for (task, ty, _) in service_tasks(&doc) {
            assert!(docs.contains(&ty), "{}: {task} uses {ty}, not in docs/jobs.md", f.name);
            assert!(code.contains(&ty), "{}: {task} uses {ty}, not in src/jobs.rs", f.name);
            used.insert(ty);
        }
        for (task, _, listeners) in user_task_listeners(&doc) {
            for (_, ty) in listeners {
                assert!(docs.contains(&ty), "{}: listener of {task} uses {ty}, not in docs/jobs.md", f.name);
                assert!(code.contains(&ty), "{}: listener of {task} uses {ty}, not in src/jobs.rs", f.name);
                used.insert(ty);
            }
        }
    }
    let unused: Vec<_> = code.difference(&used).collect();
    assert!(unused.is_empty(), "job types of src/jobs.rs used by no BPMN: {unused:?}");
}

/// The allowed header values per job type, from the element templates.
fn template_headers() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    for t in templates() {
        let ty = template_job_type(&t);
        let mut headers = BTreeMap::new();
        for p in t["properties"].as_array().expect("properties") {
            if p["binding"]["type"] == "zeebe:taskHeader" {
                let key = p["binding"]["key"].as_str().expect("header key").to_string();
                let values = p["choices"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{ty}: header {key} is not a dropdown"))
                    .iter()
                    .map(|c| c["value"].as_str().expect("choice value").to_string())
                    .collect();
                headers.insert(key, values);
            }
        }
        out.insert(ty, headers);
    }
    out
}

#[test]
fn headers_in_bpmn_are_allowed_by_the_element_templates() {
    let allowed = template_headers();
    for f in bpmn_files() {
        let doc = f.doc();
        for (task, ty, headers) in service_tasks(&doc) {
            let Some(keys) = allowed.get(&ty) else { panic!("{}: {task}: no element template for {ty}", f.name) };
            for (k, v) in &headers {
                let values = keys.get(k).unwrap_or_else(|| panic!("{}: {task}: {ty} has no header {k}", f.name));
                assert!(values.contains(v), "{}: {task}: {ty} header {k}={v}", f.name);
            }
            for k in keys.keys() {
                let optional = ty == "c8dr.drill-canaries" && k == "region";
                assert!(optional || headers.contains_key(k), "{}: {task}: {ty} lacks header {k}", f.name);
            }
        }
    }
}

/// formId -> the variables its user task completes with, from the table in docs/jobs.md.
fn forms_in_docs() -> BTreeMap<String, BTreeSet<String>> {
    let docs = read(&root().join("docs/jobs.md"));
    let mut out = BTreeMap::new();
    for line in docs.lines().filter(|l| l.starts_with("| `c8dr-")) {
        let cells: Vec<&str> = line.split('|').collect();
        let form_id = cells[1].trim().trim_matches('`').to_string();
        let last = cells[cells.len() - 2];
        let keys = last
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(str::to_string)
            .collect();
        out.insert(form_id, keys);
    }
    assert!(!out.is_empty(), "docs/jobs.md lists no formIds");
    out
}

fn forms() -> BTreeMap<String, serde_json::Value> {
    files_with_ext(&root().join("bpmn/forms"), "form")
        .into_iter()
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&read(&p)).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            let form_id = v["id"].as_str().expect("form id").to_string();
            assert_eq!(
                p.file_stem().unwrap().to_string_lossy(),
                form_id,
                "{}: file name must be the formId",
                p.display()
            );
            assert_eq!(v["schemaVersion"], 19, "{form_id}: schemaVersion");
            assert_eq!(v["executionPlatformVersion"], "8.8.0", "{form_id}");
            (form_id, v)
        })
        .collect()
}

fn component_keys(v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    if let Some(list) = v["components"].as_array() {
        for c in list {
            if let Some(k) = c["key"].as_str() {
                out.insert(k.to_string(), c.clone());
            }
            component_keys(c, out);
        }
    }
}

#[test]
fn every_form_is_used_and_every_form_id_has_a_form_with_the_documented_fields() {
    let forms = forms();
    let docs = forms_in_docs();
    let mut used = BTreeSet::new();
    for f in bpmn_files() {
        let doc = f.doc();
        for task in bpmn_elems(&doc, "userTask") {
            let t = id(&task);
            assert_eq!(own_ext(task, "userTask").len(), 1, "{}: {t}: zeebe:userTask", f.name);
            let def = own_ext(task, "formDefinition");
            let form_id = def
                .first()
                .and_then(|d| d.attribute("formId"))
                .unwrap_or_else(|| panic!("{}: {t} has no linked form", f.name));
            assert!(forms.contains_key(form_id), "{}: {t}: no form {form_id}", f.name);
            assert!(docs.contains_key(form_id), "{}: {t}: {form_id} not in docs", f.name);
            let groups = own_ext(task, "assignmentDefinition")
                .first()
                .and_then(|a| a.attribute("candidateGroups"))
                .map(str::to_string);
            assert!(groups.is_some(), "{}: {t}: candidate groups", f.name);
            assert!(!own_ext(task, "taskSchedule").is_empty(), "{}: {t}: due date", f.name);
            used.insert(form_id.to_string());
        }
    }
    for (form_id, fields) in &docs {
        let form = forms.get(form_id).unwrap_or_else(|| panic!("no form for {form_id}"));
        let mut keys = BTreeMap::new();
        component_keys(form, &mut keys);
        for field in fields {
            let c = keys.get(field).unwrap_or_else(|| panic!("{form_id}: no field with key {field}"));
            if c["type"] == "checkbox" {
                // a required checkbox can only be submitted checked: the form could never say no
                assert_ne!(c["validate"]["required"], true, "{form_id}: {field} must allow an unchecked no");
            } else if field != "comment" {
                assert_eq!(c["validate"]["required"], true, "{form_id}: {field} required");
            }
        }
    }
    let unused: Vec<_> = forms.keys().filter(|k| !used.contains(*k)).collect();
    assert!(unused.is_empty(), "forms used by no user task: {unused:?}");
}

/// Error codes the processes throw themselves (error end events), never a job.
const PROCESS_ERRORS: [&str; 1] = ["ABORTED"];

#[test]
fn error_codes_exist_in_the_code_and_error_refs_resolve() {
    let known: BTreeSet<&str> = c8dr::procedure::errors::ALL.iter().copied().collect();
    let errors_rs = read(&root().join("src/procedure/errors.rs"));
    for f in bpmn_files() {
        let doc = f.doc();
        let mut ids = BTreeSet::new();
        for e in bpmn_elems(&doc, "error") {
            let code = e.attribute("errorCode").expect("errorCode");
            ids.insert(id(&e).to_string());
            if PROCESS_ERRORS.contains(&code) {
                assert!(!known.contains(code), "{code} is process-internal: no job may throw it");
                continue;
            }
            assert!(known.contains(code), "{}: error code {code} not in errors.rs", f.name);
            assert!(errors_rs.contains(&format!("\"{code}\"")), "{code} in errors.rs");
        }
        for d in bpmn_elems(&doc, "errorEventDefinition") {
            if let Some(r) = d.attribute("errorRef") {
                assert!(ids.contains(r), "{}: unresolved errorRef {r}", f.name);
            }
        }
    }
}

fn templates() -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in files_with_ext(&root().join("bpmn/templates"), "json") {
        let v: serde_json::Value =
            serde_json::from_str(&read(&p)).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
        match v {
            serde_json::Value::Array(list) => out.extend(list),
            other => out.push(other),
        }
    }
    assert!(!out.is_empty(), "no element templates in bpmn/templates");
    out
}

fn template_job_type(t: &serde_json::Value) -> String {
    t["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["binding"]["type"] == "zeebe:taskDefinition" && p["binding"]["property"] == "type")
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("template {} has no job type", t["id"]))
        .to_string()
}

#[test]
fn element_templates_cover_the_job_types_of_the_code() {
    let code = job_types_in_code();
    assert!(!code.is_empty(), "src/jobs.rs has no \"c8dr.<name>\" job type literals yet");
    let mut covered = BTreeSet::new();
    for t in templates() {
        assert_eq!(
            t["$schema"],
            "https://unpkg.com/@camunda/zeebe-element-templates-json-schema/resources/schema.json"
        );
        assert_eq!(t["appliesTo"], serde_json::json!(["bpmn:Task"]));
        assert_eq!(t["elementType"]["value"], "bpmn:ServiceTask");
        let ty = template_job_type(&t);
        assert!(code.contains(&ty), "template {} uses {ty}, not in src/jobs.rs", t["id"]);
        covered.insert(ty);
    }
    let missing: Vec<_> = code.difference(&covered).filter(|t| !listener_job_types().contains(&t.as_str())).collect();
    assert!(missing.is_empty(), "job types without an element template: {missing:?}");
}

fn has_timer(node: &Node) -> bool {
    node.children().any(|c| is(&c, BPMN_NS, "timerEventDefinition"))
}

/// The text of a timer event's duration, if any.
fn timer_duration(node: &Node) -> Option<String> {
    node.descendants().find(|c| is(c, BPMN_NS, "timeDuration")).and_then(|d| d.text()).map(|t| t.trim().to_string())
}

/// A verification loop: a sub-process that waits `= verifyInterval` between checks.
fn is_verification_loop(sp: &Node) -> bool {
    sp.children()
        .any(|c| is(&c, BPMN_NS, "intermediateCatchEvent") && timer_duration(&c).as_deref() == Some("= verifyInterval"))
}

#[test]
fn every_verification_loop_has_an_interrupting_timer_boundary() {
    let mut loops = 0;
    for f in bpmn_files() {
        let doc = f.doc();
        for sp in bpmn_elems(&doc, "subProcess") {
            if !is_verification_loop(&sp) {
                continue;
            }
            loops += 1;
            let guarded = bpmn_elems(&doc, "boundaryEvent").any(|b| {
                b.attribute("attachedToRef") == Some(id(&sp))
                    && has_timer(&b)
                    && b.attribute("cancelActivity") != Some("false")
            });
            assert!(guarded, "{}: loop {} has no interrupting timer", f.name, id(&sp));
        }
    }
    assert!(loops >= 10, "expected the verification loops, found {loops}");
}

/// Every FEEL expression: attribute values and element texts starting with `=`.
fn feel_expressions(doc: &Document) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            if let Some(e) = a.value().trim_start().strip_prefix('=') {
                out.push((format!("{}@{}", n.tag_name().name(), a.name()), e.to_string()));
            }
        }
        if let Some(text) = n.text() {
            let only_text = n.children().all(|c| c.is_text());
            if let Some(e) = text.trim_start().strip_prefix('=').filter(|_| only_text) {
                out.push((n.tag_name().name().to_string(), e.to_string()));
            }
        }
    }
    out
}

fn parse_feel(expr: &str) -> Result<(), String> {
    let scope = dsntk_feel::FeelScope::default();
    dsntk_feel_parser::parse_expression(&scope, expr.trim(), false).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn the_feel_check_rejects_broken_expressions() {
    assert!(parse_feel("verified = true").is_ok());
    assert!(parse_feel("now() + duration(approvalDue)").is_ok());
    for broken in ["(changeId", "a = ", "if a then", "now() + duration(x", "\"open"] {
        assert!(parse_feel(broken).is_err(), "{broken} must not parse");
    }
}

#[test]
fn every_feel_expression_parses() {
    let mut count = 0;
    for f in bpmn_files() {
        let doc = f.doc();
        for (place, expr) in feel_expressions(&doc) {
            count += 1;
            if let Err(e) = parse_feel(&expr) {
                panic!("{}: {place}: `= {expr}` does not parse: {e}", f.name);
            }
        }
    }
    assert!(count > 50, "expected many FEEL expressions, found {count}");
}

#[test]
fn flows_connect_existing_nodes_and_everything_has_a_diagram() {
    for f in bpmn_files() {
        let doc = f.doc();
        let nodes: BTreeMap<&str, Node> =
            doc.descendants().filter(|n| FLOW_NODES.iter().any(|k| is(n, BPMN_NS, k))).map(|n| (id(&n), n)).collect();
        let flows: Vec<Node> = bpmn_elems(&doc, "sequenceFlow").collect();
        let shapes: BTreeMap<&str, Node> = doc
            .descendants()
            .filter(|n| is(n, DI_NS, "BPMNShape"))
            .map(|n| (n.attribute("bpmnElement").unwrap_or_default(), n))
            .collect();
        let edges: BTreeMap<&str, Node> = doc
            .descendants()
            .filter(|n| is(n, DI_NS, "BPMNEdge"))
            .map(|n| (n.attribute("bpmnElement").unwrap_or_default(), n))
            .collect();
        for flow in &flows {
            let fid = id(flow);
            for end in ["sourceRef", "targetRef"] {
                let r = flow.attribute(end).unwrap_or_default();
                let n = nodes.get(r).unwrap_or_else(|| panic!("{}: {fid}: {end} {r} does not exist", f.name));
                assert_eq!(n.parent(), flow.parent(), "{}: {fid} crosses a scope", f.name);
            }
            let edge = edges.get(fid).unwrap_or_else(|| panic!("{}: flow {fid} has no BPMNEdge", f.name));
            let points = edge.children().filter(|c| c.tag_name().name() == "waypoint");
            assert!(points.count() >= 2, "{}: {fid}: waypoints", f.name);
        }
        for (nid, node) in &nodes {
            let shape = shapes.get(nid).unwrap_or_else(|| panic!("{}: {nid} has no BPMNShape", f.name));
            let bounds = shape.children().find(|c| is(c, DC_NS, "Bounds"));
            assert!(bounds.is_some(), "{}: {nid}: shape without bounds", f.name);
            let kind = node.tag_name().name();
            let incoming = flows.iter().any(|fl| fl.attribute("targetRef") == Some(nid));
            let outgoing = flows.iter().any(|fl| fl.attribute("sourceRef") == Some(nid));
            if kind != "startEvent" && kind != "boundaryEvent" {
                assert!(incoming, "{}: {nid} is never reached", f.name);
            }
            if kind != "endEvent" {
                assert!(outgoing, "{}: {nid} leads nowhere", f.name);
            }
        }
    }
}

#[test]
fn diverging_exclusive_gateways_have_conditions_or_a_default() {
    for f in bpmn_files() {
        let doc = f.doc();
        for gw in bpmn_elems(&doc, "exclusiveGateway") {
            let out: Vec<Node> =
                bpmn_elems(&doc, "sequenceFlow").filter(|fl| fl.attribute("sourceRef") == Some(id(&gw))).collect();
            if out.len() < 2 {
                continue;
            }
            let default = gw.attribute("default");
            assert!(default.is_some(), "{}: {} has no default flow", f.name, id(&gw));
            for fl in out {
                let conditional = fl.children().any(|c| is(&c, BPMN_NS, "conditionExpression"));
                assert!(conditional || default == Some(id(&fl)), "{}: {} without condition", f.name, id(&fl));
            }
        }
    }
}

#[test]
fn approvals_remind_and_call_activities_and_messages_resolve() {
    for f in bpmn_files() {
        let doc = f.doc();
        for task in bpmn_elems(&doc, "userTask") {
            let form = own_ext(task, "formDefinition")[0].attribute("formId").unwrap();
            if !form.starts_with("c8dr-approve") && !form.starts_with("c8dr-confirm") {
                continue;
            }
            let reminder = bpmn_elems(&doc, "boundaryEvent").any(|b| {
                b.attribute("attachedToRef") == Some(id(&task))
                    && has_timer(&b)
                    && b.attribute("cancelActivity") == Some("false")
            });
            assert!(reminder, "{}: approval {} has no reminder", f.name, id(&task));
        }
        for call in bpmn_elems(&doc, "callActivity") {
            let called = zeebe_children(call, "calledElement").next().expect("calledElement");
            let pid = called.attribute("processId").unwrap_or_default();
            assert!(PROCESSES.contains(&pid), "{}: calls unknown {pid}", f.name);
        }
        let messages: BTreeSet<&str> = bpmn_elems(&doc, "message").map(|m| id(&m)).collect();
        for d in bpmn_elems(&doc, "messageEventDefinition") {
            let r = d.attribute("messageRef").unwrap_or_default();
            assert!(messages.contains(r), "{}: unresolved messageRef {r}", f.name);
        }
    }
    let drill = bpmn_files().into_iter().find(|f| f.name == "dr-drill.bpmn").expect("drill");
    let doc = drill.doc();
    assert!(bpmn_elems(&doc, "message").any(|m| m.attribute("name") == Some("c8dr-drill")));
}

/// Job types whose row in docs/jobs.md says they complete with `verified` (the check tasks).
fn check_job_types_in_docs() -> BTreeSet<String> {
    read(&root().join("docs/jobs.md"))
        .lines()
        .filter(|l| l.starts_with("| `c8dr.") && l.contains("`verified`"))
        .flat_map(|l| quoted_with_prefix(l, '`', "c8dr."))
        .collect()
}

#[test]
fn verification_loops_run_check_tasks_only() {
    let checks = check_job_types_in_docs();
    assert!(checks.contains("c8dr.await-change"), "check types from docs: {checks:?}");
    for f in bpmn_files() {
        let doc = f.doc();
        for sp in bpmn_elems(&doc, "subProcess") {
            if !is_verification_loop(&sp) {
                continue;
            }
            let flows = flows(&doc);
            for task in sp.children().filter(|c| is(c, BPMN_NS, "serviceTask")) {
                let ty = own_ext(task, "taskDefinition")[0].attribute("type").unwrap_or_default();
                if ty == "c8dr.restart-stuck-brokers" {
                    // the one mutation a loop may run: only behind the operator's explicit yes
                    let incoming: Vec<_> = flows.iter().filter(|fl| fl.2 == id(&task)).collect();
                    assert_eq!(incoming.len(), 1, "{}: {}", f.name, id(&task));
                    let gate = node_by_id(&doc, &incoming[0].1);
                    assert!(is(&gate, BPMN_NS, "exclusiveGateway"), "{}: {} is not gated", f.name, id(&task));
                    assert_eq!(
                        incoming[0].3.as_deref(),
                        Some("= if restartApproved = true then true else false"),
                        "{}: {} runs only on an explicit approval",
                        f.name,
                        id(&task)
                    );
                    continue;
                }
                assert!(
                    checks.contains(ty),
                    "{}: loop {} runs {ty}, which does not complete with `verified`",
                    f.name,
                    id(&sp)
                );
            }
        }
    }
}

/// Sequence flows of a document: (id, source, target, condition).
fn flows(doc: &Document) -> Vec<(String, String, String, Option<String>)> {
    bpmn_elems(doc, "sequenceFlow")
        .map(|f| {
            let cond = f
                .children()
                .find(|c| is(c, BPMN_NS, "conditionExpression"))
                .and_then(|c| c.text())
                .map(|t| t.trim().to_string());
            (
                id(&f).to_string(),
                f.attribute("sourceRef").unwrap_or_default().to_string(),
                f.attribute("targetRef").unwrap_or_default().to_string(),
                cond,
            )
        })
        .collect()
}

fn node_by_id<'a>(doc: &'a Document, wanted: &str) -> Node<'a, 'a> {
    doc.descendants()
        .find(|n| n.is_element() && n.attribute("id") == Some(wanted))
        .unwrap_or_else(|| panic!("{wanted}"))
}

fn error_ref_code(doc: &Document, def: &Node) -> Option<String> {
    let r = def.attribute("errorRef")?;
    bpmn_elems(doc, "error").find(|e| id(e) == r).and_then(|e| e.attribute("errorCode")).map(str::to_string)
}

/// Boundary events attached to `host` that catch `code` (by code or catch-all).
fn catching_boundaries<'a>(doc: &'a Document, host: &str, code: &str) -> Vec<Node<'a, 'a>> {
    bpmn_elems(doc, "boundaryEvent")
        .filter(|b| b.attribute("attachedToRef") == Some(host))
        .filter(|b| {
            b.children().filter(|c| is(c, BPMN_NS, "errorEventDefinition")).any(|d| match error_ref_code(doc, &d) {
                None => true,
                Some(c) => c == code,
            })
        })
        .collect()
}

#[test]
fn aborts_are_error_end_events_caught_by_an_enclosing_scope_not_a_variable() {
    for f in bpmn_files() {
        let text = read(&root().join("bpmn").join(&f.name));
        assert!(!text.contains("abortRequested"), "{}: the abortRequested variable is gone", f.name);
        let doc = f.doc();
        let mut throws = 0;
        for e in bpmn_elems(&doc, "endEvent") {
            let Some(def) = e.children().find(|c| is(c, BPMN_NS, "errorEventDefinition")) else {
                continue;
            };
            throws += 1;
            let code = error_ref_code(&doc, &def).unwrap_or_else(|| panic!("{}: {} throws no code", f.name, id(&e)));
            assert!(PROCESS_ERRORS.contains(&code.as_str()), "{}: {} throws {code}", f.name, id(&e));
            // an enclosing sub-process must catch it (an uncaught error is an incident)
            let scope = e
                .ancestors()
                .skip(1)
                .filter(|a| is(a, BPMN_NS, "subProcess"))
                .find(|a| !catching_boundaries(&doc, id(a), &code).is_empty());
            let scope = scope.unwrap_or_else(|| panic!("{}: {} is not caught (an incident)", f.name, id(&e)));
            let catchers = catching_boundaries(&doc, id(&scope), &code);
            // a specific ABORTED boundary wins over the step's catch-all "step failed" boundary
            if catchers.len() > 1 {
                assert!(
                    catchers.iter().any(|b| b.children().any(|d| is(&d, BPMN_NS, "errorEventDefinition")
                        && error_ref_code(&doc, &d).as_deref() == Some(code.as_str()))),
                    "{}: {} has several catch-alls",
                    f.name,
                    id(&scope)
                );
            }
        }
        assert!(throws > 0, "{}: no abort is modelled as an error end event", f.name);
    }
}

/// User tasks on an abort path (after the decision to abort): their answer is reported, there is
/// nothing left to gate.
const ABORT_PATH_TASKS: [&str; 1] = ["ManualStep_RestoreWebappsSurviving"];

#[test]
fn every_user_task_answer_is_tested_by_a_gateway_that_fails_closed() {
    let mut gates = 0;
    for f in bpmn_files() {
        let doc = f.doc();
        let flows = flows(&doc);
        for task in bpmn_elems(&doc, "userTask") {
            let out: Vec<_> = flows.iter().filter(|fl| fl.1 == id(&task)).collect();
            assert_eq!(out.len(), 1, "{}: {}", f.name, id(&task));
            if ABORT_PATH_TASKS.contains(&id(&task)) {
                // on an abort path: nothing left to stop; the answer is recorded for the report
                continue;
            }
            let gw = node_by_id(&doc, &out[0].2);
            assert!(is(&gw, BPMN_NS, "exclusiveGateway"), "{}: {} is not followed by a gateway", f.name, id(&task));
            let default = gw.attribute("default").unwrap_or_else(|| panic!("{}: {} has no default", f.name, id(&gw)));
            let gw_out: Vec<_> = flows.iter().filter(|fl| fl.1 == id(&gw)).collect();
            assert_eq!(gw_out.len(), 2, "{}: {} answers yes or otherwise", f.name, id(&gw));
            for fl in gw_out.iter().filter(|fl| fl.0 != default) {
                let cond = fl.3.clone().unwrap_or_default();
                assert!(
                    cond.starts_with("= if ") && cond.ends_with(" then true else false"),
                    "{}: {} tests {cond:?}: a wrong type must be false, not an incident",
                    f.name,
                    fl.0
                );
            }
            gates += 1;
        }
    }
    assert!(gates >= 15, "expected a gate after every user task, found {gates}");
}

#[test]
fn exporting_paused_is_bounded_and_every_way_out_resumes_exporting() {
    let f = bpmn_files().into_iter().find(|f| f.name == "dr-failback.bpmn").expect("failback");
    let doc = f.doc();
    let flows = flows(&doc);
    let paused = node_by_id(&doc, "ExportingPaused");
    // the watchdog: a timer on pausedWindowTimeout inside the paused scope
    assert!(
        paused.descendants().any(|c| is(&c, BPMN_NS, "intermediateCatchEvent")
            && timer_duration(&c).as_deref() == Some("= pausedWindowTimeout")),
        "no pausedWindowTimeout watchdog"
    );
    // the normal way out: a terminate end event (ends the watchdog) after step 6 resumed
    let terminate: Vec<_> = paused
        .children()
        .filter(|c| is(c, BPMN_NS, "endEvent") && c.children().any(|d| is(&d, BPMN_NS, "terminateEventDefinition")))
        .collect();
    assert_eq!(terminate.len(), 1);
    let into_terminate: Vec<_> = flows.iter().filter(|fl| fl.2 == id(&terminate[0])).collect();
    assert_eq!(into_terminate[0].1, "Step_Resume", "the scope ends after step 6");
    // no plain end event in the paused scope: every other way out is an error
    assert!(
        !paused.children().any(|c| is(&c, BPMN_NS, "endEvent")
            && c.children()
                .all(|d| !d.is_element() || is(&d, BPMN_NS, "incoming") || is(&d, BPMN_NS, "documentation"))),
        "a plain end event would leave the paused scope without resuming"
    );
    // every error leaving it: a catch-all boundary -> c8dr.resume-exporting
    let b = catching_boundaries(&doc, "ExportingPaused", "ANY_CODE");
    assert_eq!(b.len(), 1, "one catch-all boundary on the paused scope");
    let next = flows.iter().find(|fl| fl.1 == id(&b[0])).expect("boundary flow");
    let task = node_by_id(&doc, &next.2);
    assert_eq!(own_ext(task, "taskDefinition")[0].attribute("type"), Some("c8dr.resume-exporting"));
}

fn helm_task<'a>(doc: &'a Document, node: &Node<'a, 'a>) -> Option<(String, String)> {
    if !is(node, BPMN_NS, "serviceTask") || own_ext(*node, "taskDefinition")[0].attribute("type") != Some("c8dr.helm") {
        return None;
    }
    let _ = doc;
    let headers: BTreeMap<String, String> = zeebe_children(*node, "taskHeaders")
        .flat_map(|h| h.children().filter(|c| c.is_element()))
        .map(|h| {
            (h.attribute("key").unwrap_or_default().to_string(), h.attribute("value").unwrap_or_default().to_string())
        })
        .collect();
    Some((headers.get("action").cloned().unwrap_or_default(), headers.get("region").cloned().unwrap_or_default()))
}

#[test]
fn failback_aborts_after_step_2_turn_the_surviving_webapps_back_on() {
    let f = bpmn_files().into_iter().find(|f| f.name == "dr-failback.bpmn").expect("failback");
    let doc = f.doc();
    let flows = flows(&doc);
    let scope = node_by_id(&doc, "SurvivingWebappsOff");
    for inside in ["Step_WebappsOff", "ExportingPaused", "Step_AddBrokers", "Step_WebappsOn"] {
        assert!(scope.children().any(|c| c.attribute("id") == Some(inside)), "{inside} runs with webapps off");
    }
    let b = catching_boundaries(&doc, "SurvivingWebappsOff", "ABORTED");
    assert_eq!(b.len(), 1);
    let next = flows.iter().find(|fl| fl.1 == id(&b[0])).expect("boundary flow");
    let task = node_by_id(&doc, &next.2);
    assert_eq!(helm_task(&doc, &task), Some(("enable-webapps".into(), "surviving".into())));
}

#[test]
fn step_8_enables_the_surviving_region_first_then_the_recreated_one() {
    let f = bpmn_files().into_iter().find(|f| f.name == "dr-failback.bpmn").expect("failback");
    let doc = f.doc();
    let flows = flows(&doc);
    let step = node_by_id(&doc, "Step_WebappsOn");
    // follow the main path from the step's start event
    let mut cur = step.children().find(|c| is(c, BPMN_NS, "startEvent")).map(|s| id(&s).to_string()).expect("start");
    let mut order = Vec::new();
    for _ in 0..20 {
        let node = node_by_id(&doc, &cur);
        if let Some((action, region)) = helm_task(&doc, &node) {
            order.push(format!("{action} {region}"));
        }
        let out: Vec<_> = flows.iter().filter(|fl| fl.1 == cur).collect();
        let Some(next) = out.iter().find(|fl| fl.3.is_none() || out.len() == 1).or(out.first()) else {
            break;
        };
        cur = next.2.clone();
    }
    assert_eq!(order, vec!["enable-webapps surviving", "enable-webapps recreated"]);
}
