//! BPMN XML -> [`Definitions`], rejecting every element the engine does not execute.
use super::model::*;
use roxmltree::{Document, Node};
use std::collections::HashMap;

const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{file}: {message}")]
pub struct ParseError {
    pub file: String,
    pub message: String,
}

fn is_bpmn(n: &Node) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(BPMN_NS)
}

fn is_zeebe(n: &Node) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ZEEBE_NS)
}

fn bpmn_children<'a, 'i>(n: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(is_bpmn)
}

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    bpmn_children(n).find(|c| c.tag_name().name() == name)
}

fn zeebe_ext<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    child(n, "extensionElements").and_then(|e| e.children().find(|c| is_zeebe(c) && c.tag_name().name() == name))
}

struct Ctx<'f> {
    file: &'f str,
    messages: HashMap<String, String>,
    errors: HashMap<String, String>,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError { file: self.file.to_string(), message: message.into() }
    }
    fn unsupported(&self, id: &str, ty: &str, why: &str) -> ParseError {
        self.err(format!("element '{id}' of type '{ty}' is not supported by the rehearsal engine{why}"))
    }
}

fn id_of(n: &Node) -> String {
    n.attribute("id").unwrap_or("<no id>").to_string()
}

/// Parses a BPMN resource. `file` names the resource in error messages.
pub fn parse_bpmn(file: &str, xml: &str) -> Result<Definitions, ParseError> {
    let doc =
        Document::parse(xml).map_err(|e| ParseError { file: file.into(), message: format!("invalid XML: {e}") })?;
    let root = doc.root_element();
    let mut ctx = Ctx { file, messages: HashMap::new(), errors: HashMap::new() };
    if !is_bpmn(&root) || root.tag_name().name() != "definitions" {
        return Err(ctx.err("not a BPMN document (root must be bpmn:definitions)"));
    }
    for n in bpmn_children(root) {
        match n.tag_name().name() {
            "message" => {
                let name =
                    n.attribute("name").ok_or_else(|| ctx.err(format!("message '{}' has no name", id_of(&n))))?;
                ctx.messages.insert(id_of(&n), name.to_string());
                check_extensions(&ctx, &n, &["subscription"])?;
            }
            "error" => {
                let code = n.attribute("errorCode").unwrap_or_default();
                ctx.errors.insert(id_of(&n), code.to_string());
            }
            "process" | "collaboration" | "documentation" | "extensionElements" | "category" => {}
            other => return Err(ctx.unsupported(&id_of(&n), other, "")),
        }
    }
    let mut processes = Vec::new();
    for p in bpmn_children(root).filter(|n| n.tag_name().name() == "process") {
        if p.attribute("isExecutable") == Some("false") {
            continue;
        }
        processes.push(parse_process(&ctx, p)?);
    }
    if processes.is_empty() {
        return Err(ctx.err("no executable process in the BPMN resource"));
    }
    Ok(Definitions { processes })
}

fn parse_process(ctx: &Ctx, p: Node) -> Result<Process, ParseError> {
    let id = p.attribute("id").ok_or_else(|| ctx.err("a process has no id"))?.to_string();
    check_extensions(ctx, &p, &["properties", "versionTag"])?;
    let mut proc = Process {
        id,
        name: p.attribute("name").map(str::to_string),
        elements: HashMap::new(),
        flows: HashMap::new(),
        none_start: None,
        message_starts: Vec::new(),
    };
    parse_scope(ctx, p, None, &mut proc)?;
    // wire flows and boundaries, check references
    let flows: Vec<Flow> = proc.flows.values().cloned().collect();
    for f in &flows {
        for (end, what) in [(&f.source, "sourceRef"), (&f.target, "targetRef")] {
            if !proc.elements.contains_key(end) {
                return Err(ctx.err(format!("sequence flow '{}' has {what} '{end}' that is not an element", f.id)));
            }
        }
        if let Some(e) = proc.elements.get_mut(&f.source) {
            e.outgoing.push(f.id.clone());
        }
        if let Some(e) = proc.elements.get_mut(&f.target) {
            e.incoming.push(f.id.clone());
        }
    }
    let order: HashMap<String, usize> = proc.flows.values().map(|f| (f.id.clone(), f.order)).collect();
    for e in proc.elements.values_mut() {
        e.outgoing.sort_by_key(|f| order[f]);
        e.incoming.sort_by_key(|f| order[f]);
    }
    let boundaries: Vec<(String, String)> = proc
        .elements
        .values()
        .filter_map(|e| match &e.kind {
            ElementKind::ErrorBoundary { attached_to, .. } | ElementKind::TimerBoundary { attached_to, .. } => {
                Some((attached_to.clone(), e.id.clone()))
            }
            _ => None,
        })
        .collect();
    for (attached, b) in boundaries {
        let Some(host) = proc.elements.get_mut(&attached) else {
            return Err(ctx.err(format!("boundary event '{b}' is attached to '{attached}' that is not an element")));
        };
        if !matches!(
            host.kind,
            ElementKind::ServiceTask { .. }
                | ElementKind::UserTask(_)
                | ElementKind::SubProcess { .. }
                | ElementKind::CallActivity { .. }
        ) {
            return Err(ctx.err(format!("boundary event '{b}' is attached to '{attached}', which is not an activity")));
        }
        host.boundaries.push(b);
    }
    for e in proc.elements.values_mut() {
        e.boundaries.sort();
    }
    for e in proc.elements.values() {
        if let ElementKind::ExclusiveGateway { default: Some(d) } = &e.kind
            && !e.outgoing.contains(d)
        {
            return Err(ctx.err(format!(
                "exclusive gateway '{}' has default flow '{d}' that is not one of its outgoing flows",
                e.id
            )));
        }
    }
    let mut starts: Vec<&Element> = proc
        .elements
        .values()
        .filter(|e| e.scope.is_none() && matches!(e.kind, ElementKind::StartEvent { .. }))
        .collect();
    starts.sort_by(|a, b| a.id.cmp(&b.id));
    let mut none_start = None;
    let mut message_starts = Vec::new();
    for s in starts {
        if let ElementKind::StartEvent { message } = &s.kind {
            match message {
                Some(m) => message_starts.push((s.id.clone(), m.clone())),
                None if none_start.is_some() => {
                    return Err(ctx.err(format!("process '{}' has more than one none start event", proc.id)));
                }
                None => none_start = Some(s.id.clone()),
            }
        }
    }
    proc.none_start = none_start;
    proc.message_starts = message_starts;
    if proc.none_start.is_none() && proc.message_starts.is_empty() {
        return Err(ctx.err(format!("process '{}' has no start event", proc.id)));
    }
    Ok(proc)
}

fn parse_scope(ctx: &Ctx, scope_node: Node, scope: Option<&str>, proc: &mut Process) -> Result<(), ParseError> {
    for (order, n) in bpmn_children(scope_node).enumerate() {
        let tag = n.tag_name().name();
        let id = id_of(&n);
        let kind = match tag {
            "sequenceFlow" => {
                let f = Flow {
                    id: id.clone(),
                    source: n.attribute("sourceRef").unwrap_or_default().to_string(),
                    target: n.attribute("targetRef").unwrap_or_default().to_string(),
                    condition: child(n, "conditionExpression").and_then(|c| c.text()).map(|t| t.trim().to_string()),
                    order,
                };
                check_children(ctx, &n, tag, &["conditionExpression"])?;
                proc.flows.insert(id, f);
                continue;
            }
            "documentation" | "extensionElements" | "textAnnotation" | "association" | "laneSet" | "group"
            | "incoming" | "outgoing" => continue,
            "startEvent" => parse_start(ctx, &n)?,
            "endEvent" => parse_end(ctx, &n)?,
            "serviceTask" => parse_service_task(ctx, &n)?,
            "userTask" => parse_user_task(ctx, &n)?,
            "exclusiveGateway" => {
                check_children(ctx, &n, tag, &[])?;
                check_extensions(ctx, &n, &["properties"])?;
                ElementKind::ExclusiveGateway { default: n.attribute("default").map(str::to_string) }
            }
            "parallelGateway" => {
                check_children(ctx, &n, tag, &[])?;
                check_extensions(ctx, &n, &["properties"])?;
                ElementKind::ParallelGateway
            }
            "intermediateCatchEvent" => {
                check_children(ctx, &n, tag, &["timerEventDefinition"])?;
                check_extensions(ctx, &n, &["ioMapping", "properties"])?;
                let t = child(n, "timerEventDefinition").ok_or_else(|| {
                    ctx.unsupported(&id, tag, " without a timerEventDefinition (only timer catch events are)")
                })?;
                ElementKind::TimerCatch(parse_timer(ctx, &id, t, true)?)
            }
            "boundaryEvent" => parse_boundary(ctx, &n)?,
            "subProcess" => {
                if n.attribute("triggeredByEvent") == Some("true") {
                    return Err(ctx.unsupported(&id, "event subProcess", ""));
                }
                check_children(
                    ctx,
                    &n,
                    tag,
                    &[
                        "sequenceFlow",
                        "startEvent",
                        "endEvent",
                        "serviceTask",
                        "userTask",
                        "exclusiveGateway",
                        "parallelGateway",
                        "intermediateCatchEvent",
                        "boundaryEvent",
                        "subProcess",
                        "callActivity",
                        "textAnnotation",
                        "association",
                        "group",
                    ],
                )?;
                check_extensions(ctx, &n, &["ioMapping", "properties"])?;
                parse_scope(ctx, n, Some(&id), proc)?;
                let start = proc
                    .elements
                    .values()
                    .filter(|e| {
                        e.scope.as_deref() == Some(id.as_str())
                            && matches!(e.kind, ElementKind::StartEvent { message: None })
                    })
                    .map(|e| e.id.clone())
                    .min()
                    .ok_or_else(|| ctx.err(format!("sub-process '{id}' has no none start event")))?;
                ElementKind::SubProcess { start }
            }
            "callActivity" => {
                check_children(ctx, &n, tag, &[])?;
                check_extensions(ctx, &n, &["calledElement", "ioMapping", "properties"])?;
                let ce = zeebe_ext(n, "calledElement")
                    .ok_or_else(|| ctx.err(format!("call activity '{id}' has no zeebe:calledElement")))?;
                let process_id = ce
                    .attribute("processId")
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| ctx.err(format!("call activity '{id}' has no processId in zeebe:calledElement")))?;
                ElementKind::CallActivity {
                    process_id: process_id.to_string(),
                    propagate_child: ce.attribute("propagateAllChildVariables") != Some("false"),
                    propagate_parent: ce.attribute("propagateAllParentVariables") != Some("false"),
                }
            }
            other => return Err(ctx.unsupported(&id, other, "")),
        };
        if proc.elements.contains_key(&id) {
            return Err(ctx.err(format!("duplicate element id '{id}'")));
        }
        let (inputs, outputs) = parse_io(ctx, &n)?;
        proc.elements.insert(
            id.clone(),
            Element {
                id,
                name: n.attribute("name").map(str::to_string),
                kind,
                outgoing: Vec::new(),
                incoming: Vec::new(),
                inputs,
                outputs,
                scope: scope.map(str::to_string),
                boundaries: Vec::new(),
            },
        );
    }
    Ok(())
}

/// Rejects BPMN child elements of a flow node other than `allowed` (plus always-fine ones).
fn check_children(ctx: &Ctx, n: &Node, ty: &str, allowed: &[&str]) -> Result<(), ParseError> {
    for c in bpmn_children(*n) {
        let name = c.tag_name().name();
        if matches!(name, "documentation" | "extensionElements" | "incoming" | "outgoing") || allowed.contains(&name) {
            continue;
        }
        let cid = c.attribute("id").map(|i| format!(" ('{i}')")).unwrap_or_default();
        return Err(ctx.err(format!(
            "element '{}' of type '{ty}' uses '{name}'{cid}, which is not supported by the rehearsal engine",
            id_of(n)
        )));
    }
    Ok(())
}

/// Rejects zeebe extension elements other than `allowed`.
fn check_extensions(ctx: &Ctx, n: &Node, allowed: &[&str]) -> Result<(), ParseError> {
    if let Some(ext) = child(*n, "extensionElements") {
        for c in ext.children().filter(is_zeebe) {
            let name = c.tag_name().name();
            if !allowed.contains(&name) {
                return Err(ctx.err(format!(
                    "element '{}' of type '{}' uses the extension 'zeebe:{name}', which is not supported by the rehearsal engine",
                    id_of(n),
                    n.tag_name().name()
                )));
            }
        }
    }
    Ok(())
}

fn parse_io(ctx: &Ctx, n: &Node) -> Result<(Vec<Mapping>, Vec<Mapping>), ParseError> {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    if let Some(io) = zeebe_ext(*n, "ioMapping") {
        for m in io.children().filter(is_zeebe) {
            let target = m.attribute("target").filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                ctx.err(format!("element '{}': zeebe:{} mapping without a target", id_of(n), m.tag_name().name()))
            })?;
            let mapping =
                Mapping { source: m.attribute("source").unwrap_or("=null").to_string(), target: target.to_string() };
            match m.tag_name().name() {
                "input" => inputs.push(mapping),
                "output" => outputs.push(mapping),
                other => {
                    return Err(ctx.err(format!("element '{}': unknown zeebe:ioMapping child '{other}'", id_of(n))));
                }
            }
        }
    }
    Ok((inputs, outputs))
}

fn parse_start(ctx: &Ctx, n: &Node) -> Result<ElementKind, ParseError> {
    let id = id_of(n);
    check_children(ctx, n, "startEvent", &["messageEventDefinition"])?;
    check_extensions(ctx, n, &["ioMapping", "properties"])?;
    let message = match child(*n, "messageEventDefinition") {
        None => None,
        Some(m) => {
            let r = m
                .attribute("messageRef")
                .ok_or_else(|| ctx.err(format!("message start event '{id}' has no messageRef")))?;
            Some(
                ctx.messages
                    .get(r)
                    .cloned()
                    .ok_or_else(|| ctx.err(format!("start event '{id}' references unknown message '{r}'")))?,
            )
        }
    };
    Ok(ElementKind::StartEvent { message })
}

fn parse_end(ctx: &Ctx, n: &Node) -> Result<ElementKind, ParseError> {
    let id = id_of(n);
    check_children(ctx, n, "endEvent", &["errorEventDefinition", "terminateEventDefinition"])?;
    if let Some(e) = child(*n, "errorEventDefinition") {
        // the engine throws no error variables: input mappings on an error end event are rejected
        check_extensions(ctx, n, &["properties"])?;
        let r = e
            .attribute("errorRef")
            .ok_or_else(|| ctx.err(format!("error end event '{id}' has no errorRef (it must reference an error)")))?;
        let code = ctx
            .errors
            .get(r)
            .ok_or_else(|| ctx.err(format!("error end event '{id}' references unknown error '{r}'")))?;
        if code.trim().is_empty() {
            return Err(ctx.err(format!("error end event '{id}': error '{r}' has no errorCode")));
        }
        if code.trim_start().starts_with('=') {
            return Err(ctx.unsupported(&id, "endEvent", " with an errorCode expression (only static codes are)"));
        }
        return Ok(ElementKind::ErrorEnd { error_code: code.clone() });
    }
    if child(*n, "terminateEventDefinition").is_some() {
        check_extensions(ctx, n, &["properties"])?;
        return Ok(ElementKind::TerminateEnd);
    }
    check_extensions(ctx, n, &["ioMapping", "properties"])?;
    Ok(ElementKind::EndEvent)
}

fn parse_service_task(ctx: &Ctx, n: &Node) -> Result<ElementKind, ParseError> {
    let id = id_of(n);
    check_children(ctx, n, "serviceTask", &[])?;
    check_extensions(ctx, n, &["taskDefinition", "taskHeaders", "ioMapping", "properties"])?;
    let td = zeebe_ext(*n, "taskDefinition")
        .ok_or_else(|| ctx.err(format!("service task '{id}' has no zeebe:taskDefinition")))?;
    let job_type = td
        .attribute("type")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ctx.err(format!("service task '{id}' has no job type in zeebe:taskDefinition")))?;
    let retries = td.attribute("retries").unwrap_or("3").to_string();
    let mut headers = Vec::new();
    if let Some(h) = zeebe_ext(*n, "taskHeaders") {
        for hdr in h.children().filter(|c| is_zeebe(c) && c.tag_name().name() == "header") {
            headers.push((
                hdr.attribute("key").unwrap_or_default().to_string(),
                hdr.attribute("value").unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(ElementKind::ServiceTask { job_type: job_type.to_string(), retries, headers })
}

fn parse_user_task(ctx: &Ctx, n: &Node) -> Result<ElementKind, ParseError> {
    let id = id_of(n);
    check_children(ctx, n, "userTask", &[])?;
    check_extensions(
        ctx,
        n,
        &[
            "userTask",
            "formDefinition",
            "assignmentDefinition",
            "taskSchedule",
            "priorityDefinition",
            "ioMapping",
            "properties",
            "taskListeners",
        ],
    )?;
    if zeebe_ext(*n, "userTask").is_none() {
        return Err(ctx.unsupported(
            &id,
            "userTask",
            " as a job-worker user task: add <zeebe:userTask/> (Camunda user task)",
        ));
    }
    let form = zeebe_ext(*n, "formDefinition");
    if let Some(f) = form
        && f.attribute("formId").is_none()
    {
        return Err(ctx.err(format!("user task '{id}': zeebe:formDefinition must use formId (linked form)")));
    }
    let completing_listeners = parse_task_listeners(ctx, &id, *n)?;
    let attr = |ext: &str, a: &str| zeebe_ext(*n, ext).and_then(|e| e.attribute(a)).map(str::to_string);
    Ok(ElementKind::UserTask(Box::new(UserTaskDef {
        form_id: attr("formDefinition", "formId"),
        assignee: attr("assignmentDefinition", "assignee"),
        candidate_groups: attr("assignmentDefinition", "candidateGroups"),
        candidate_users: attr("assignmentDefinition", "candidateUsers"),
        due_date: attr("taskSchedule", "dueDate"),
        follow_up_date: attr("taskSchedule", "followUpDate"),
        priority: attr("priorityDefinition", "priority"),
        completing_listeners,
    })))
}

/// `zeebe:taskListeners`: Camunda 8.8 accepts the event types creating, assigning, updating,
/// completing and canceling; the rehearsal engine runs `completing` listeners and rejects the
/// others at deployment rather than ignoring them.
fn parse_task_listeners(ctx: &Ctx, id: &str, n: Node) -> Result<Vec<TaskListenerDef>, ParseError> {
    let Some(ls) = zeebe_ext(n, "taskListeners") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for l in ls.children().filter(is_zeebe) {
        if l.tag_name().name() != "taskListener" {
            return Err(ctx.err(format!(
                "user task '{id}': zeebe:taskListeners may only contain zeebe:taskListener, found zeebe:{}",
                l.tag_name().name()
            )));
        }
        let event = l.attribute("eventType").unwrap_or_default();
        match event {
            "completing" => {}
            "creating" | "assigning" | "updating" | "canceling" => {
                return Err(ctx.unsupported(
                    id,
                    "userTask",
                    &format!(" with a '{event}' task listener (the rehearsal engine runs 'completing' listeners only)"),
                ));
            }
            other => {
                return Err(ctx.err(format!(
                    "user task '{id}': task listener eventType '{other}' is not one of creating, assigning, updating, completing, canceling"
                )));
            }
        }
        let job_type = l
            .attribute("type")
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ctx.err(format!("user task '{id}': a task listener has no job type (attribute type)")))?;
        let retries = l.attribute("retries").unwrap_or("3").to_string();
        out.push(TaskListenerDef { job_type: job_type.to_string(), retries });
    }
    Ok(out)
}

fn parse_timer(ctx: &Ctx, id: &str, t: Node, allow_date: bool) -> Result<TimerDef, ParseError> {
    let text = |name: &str| child(t, name).map(|c| c.text().unwrap_or_default().trim().to_string());
    if let Some(d) = text("timeDuration") {
        return Ok(TimerDef::Duration(d));
    }
    if allow_date && let Some(d) = text("timeDate") {
        return Ok(TimerDef::Date(d));
    }
    Err(ctx.err(format!(
        "timer of element '{id}' must use timeDuration{} (timeCycle is not supported by the rehearsal engine)",
        if allow_date { " or timeDate" } else { "" }
    )))
}

fn parse_boundary(ctx: &Ctx, n: &Node) -> Result<ElementKind, ParseError> {
    let id = id_of(n);
    check_children(ctx, n, "boundaryEvent", &["errorEventDefinition", "timerEventDefinition"])?;
    check_extensions(ctx, n, &["ioMapping", "properties"])?;
    let attached_to = n
        .attribute("attachedToRef")
        .ok_or_else(|| ctx.err(format!("boundary event '{id}' has no attachedToRef")))?
        .to_string();
    let interrupting = n.attribute("cancelActivity") != Some("false");
    if let Some(e) = child(*n, "errorEventDefinition") {
        if !interrupting {
            return Err(ctx.err(format!("error boundary event '{id}' must be interrupting")));
        }
        let error_code = match e.attribute("errorRef") {
            None => None,
            Some(r) => Some(
                ctx.errors
                    .get(r)
                    .cloned()
                    .ok_or_else(|| ctx.err(format!("boundary event '{id}' references unknown error '{r}'")))?,
            ),
        };
        return Ok(ElementKind::ErrorBoundary { attached_to, error_code: error_code.filter(|c| !c.is_empty()) });
    }
    if let Some(t) = child(*n, "timerEventDefinition") {
        return Ok(ElementKind::TimerBoundary { attached_to, timer: parse_timer(ctx, &id, t, false)?, interrupting });
    }
    Err(ctx.unsupported(&id, "boundaryEvent", " without an error or timer event definition"))
}

/// Parses a Camunda form (JSON with a top-level `id`), returning the form id.
pub fn parse_form(file: &str, content: &[u8]) -> Result<String, ParseError> {
    let err = |m: String| ParseError { file: file.into(), message: m };
    let v: serde_json::Value = serde_json::from_slice(content).map_err(|e| err(format!("invalid form JSON: {e}")))?;
    v.get("id")
        .and_then(|i| i.as_str())
        .filter(|i| !i.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| err("form has no top-level string 'id'".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(body: &str) -> String {
        format!(
            r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI">{body}<bpmndi:BPMNDiagram id="d"/></bpmn:definitions>"#
        )
    }

    #[test]
    fn parses_sub_processes_boundaries_and_user_tasks() {
        let xml = defs(
            r#"<bpmn:error id="e" errorCode="X"/>
<bpmn:process id="p" isExecutable="true">
  <bpmn:documentation>doc</bpmn:documentation>
  <bpmn:startEvent id="s"/>
  <bpmn:subProcess id="sub"><bpmn:startEvent id="ss"/><bpmn:userTask id="u" name="Approve"><bpmn:extensionElements><zeebe:userTask/><zeebe:formDefinition formId="f"/><zeebe:assignmentDefinition candidateGroups="=g"/><zeebe:properties><zeebe:property name="a" value="b"/></zeebe:properties></bpmn:extensionElements></bpmn:userTask><bpmn:sequenceFlow id="sf" sourceRef="ss" targetRef="u"/></bpmn:subProcess>
  <bpmn:boundaryEvent id="b" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="e"/></bpmn:boundaryEvent>
  <bpmn:boundaryEvent id="t" attachedToRef="u" cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="sub"/>
</bpmn:process>"#,
        );
        let d = parse_bpmn("p.bpmn", &xml).unwrap();
        let p = &d.processes[0];
        assert_eq!(p.none_start.as_deref(), Some("s"));
        assert_eq!(p.element("sub").kind, ElementKind::SubProcess { start: "ss".into() });
        assert_eq!(p.element("u").scope.as_deref(), Some("sub"));
        assert_eq!(p.element("sub").boundaries, vec!["b".to_string()]);
        assert_eq!(p.element("u").boundaries, vec!["t".to_string()]);
        assert_eq!(
            p.element("b").kind,
            ElementKind::ErrorBoundary { attached_to: "sub".into(), error_code: Some("X".into()) }
        );
        let ElementKind::UserTask(u) = &p.element("u").kind else { panic!("user task") };
        assert_eq!(u.form_id.as_deref(), Some("f"));
        assert_eq!(u.candidate_groups.as_deref(), Some("=g"));
        assert!(matches!(p.element("t").kind, ElementKind::TimerBoundary { interrupting: false, .. }));
    }

    #[test]
    fn error_and_terminate_end_events() {
        let xml = defs(
            r#"<bpmn:error id="e" errorCode="ABORTED"/>
<bpmn:process id="p" isExecutable="true">
  <bpmn:startEvent id="s"/><bpmn:endEvent id="err"><bpmn:errorEventDefinition errorRef="e"/></bpmn:endEvent>
  <bpmn:endEvent id="term"><bpmn:terminateEventDefinition/></bpmn:endEvent><bpmn:endEvent id="plain"/>
</bpmn:process>"#,
        );
        let d = parse_bpmn("p.bpmn", &xml).unwrap();
        let p = &d.processes[0];
        assert_eq!(p.element("err").kind, ElementKind::ErrorEnd { error_code: "ABORTED".into() });
        assert_eq!(p.element("term").kind, ElementKind::TerminateEnd);
        assert_eq!(p.element("plain").kind, ElementKind::EndEvent);
        assert_eq!(p.element("term").kind.type_name(), "END_EVENT");
    }

    #[test]
    fn rejections_name_file_element_and_type() {
        let cases = [
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:eventBasedGateway id="g"/></bpmn:process>"#,
                "eventBasedGateway",
            ),
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:userTask id="u"/></bpmn:process>"#,
                "zeebe:userTask",
            ),
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="m"><bpmn:messageEventDefinition/></bpmn:intermediateCatchEvent></bpmn:process>"#,
                "messageEventDefinition",
            ),
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:serviceTask id="t"/></bpmn:process>"#,
                "zeebe:taskDefinition",
            ),
            (r#"<bpmn:signal id="sig"/><bpmn:process id="p"><bpmn:startEvent id="s"/></bpmn:process>"#, "signal"),
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:endEvent id="x"><bpmn:escalationEventDefinition/></bpmn:endEvent></bpmn:process>"#,
                "escalationEventDefinition",
            ),
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:endEvent id="x"><bpmn:errorEventDefinition/></bpmn:endEvent></bpmn:process>"#,
                "no errorRef",
            ),
            (
                r#"<bpmn:error id="e" errorCode="=code"/><bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:endEvent id="x"><bpmn:errorEventDefinition errorRef="e"/></bpmn:endEvent></bpmn:process>"#,
                "errorCode expression",
            ),
            (
                r#"<bpmn:process id="p"><bpmn:startEvent id="s"/><bpmn:endEvent id="x"><bpmn:extensionElements><zeebe:ioMapping><zeebe:input source="=1" target="a"/></zeebe:ioMapping></bpmn:extensionElements><bpmn:terminateEventDefinition/></bpmn:endEvent></bpmn:process>"#,
                "zeebe:ioMapping",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_bpmn("x.bpmn", &defs(body)).unwrap_err().to_string();
            assert!(err.starts_with("x.bpmn: ") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn forms_need_an_id() {
        assert_eq!(parse_form("a.form", br#"{"id":"f","components":[]}"#).unwrap(), "f");
        assert!(parse_form("a.form", br#"{"components":[]}"#).is_err());
        assert!(parse_form("a.form", b"not json").is_err());
    }
}
