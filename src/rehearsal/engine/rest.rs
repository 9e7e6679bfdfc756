//! The Camunda 8.8 orchestration cluster REST API (v2) subset of the rehearsal engine:
//! user tasks (search, assignment, completion, form), process instances, incidents, element
//! instances and variables, process definitions, jobs (retries and timeout) and incident
//! resolution. Keys are strings; pages are `{"items":[..],"page":{"totalItems":n}}`.
//!
//! Absent optional fields are left out, never sent as `null`: Camunda 8.8's schemas declare
//! them as optional strings (sending `null` started with 8.9).
use super::state::{CommandError, ElemState, State, UserTaskState, iso};
use super::{EngineHandle, InstanceState, view_state};
use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Map, Value as Json, json};

pub(super) async fn serve(h: EngineHandle, listener: tokio::net::TcpListener) {
    let mut shutdown = h.shutdown_signal();
    let app = router(h);
    let res = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, "rehearsal engine REST server stopped");
    }
}

fn router(h: EngineHandle) -> Router {
    Router::new()
        .route("/v2/topology", get(topology))
        .route("/v2/user-tasks/search", post(search_user_tasks))
        .route("/v2/user-tasks/{key}", get(get_user_task))
        .route("/v2/user-tasks/{key}/assignment", post(assign_user_task))
        .route("/v2/user-tasks/{key}/completion", post(complete_user_task))
        .route("/v2/user-tasks/{key}/form", get(user_task_form))
        .route("/v2/user-tasks/{key}/variables/search", post(search_user_task_variables))
        .route("/v2/process-definitions/search", post(search_process_definitions))
        .route("/v2/jobs/{key}", patch(update_job))
        .route("/v2/incidents/{key}", get(get_incident))
        .route("/v2/process-instances/search", post(search_process_instances))
        .route("/v2/process-instances/{key}", get(get_process_instance))
        .route("/v2/process-instances", post(create_process_instance))
        .route("/v2/process-instances/{key}/cancellation", post(cancel_process_instance))
        .route("/v2/incidents/{key}/resolution", post(resolve_incident))
        .route("/v2/messages/publication", post(publish_message))
        .route("/v2/incidents/search", post(search_incidents))
        .route("/v2/element-instances/search", post(search_element_instances))
        .route("/v2/variables/search", post(search_variables))
        .layer(axum::middleware::from_fn(problem_instance))
        .layer(axum::middleware::from_fn(|req, next| super::record_rest("engine", req, next)))
        .with_state(h)
}

/// RFC 9457 problem detail, as the orchestration cluster answers errors.
fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::BAD_REQUEST => "INVALID_ARGUMENT",
        StatusCode::CONFLICT => "INVALID_STATE",
        _ => "ERROR",
    };
    let body = json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail.into()});
    (status, [(axum::http::header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// Fills a problem detail's `instance` with the request path, as the orchestration cluster does.
async fn problem_instance(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    let is_problem = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut p: Json = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    if let Some(o) = p.as_object_mut() {
        o.entry("instance").or_insert(Json::String(path));
    }
    let out = p.to_string();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}

fn command_error(e: CommandError) -> Response {
    match e {
        CommandError::NotFound(m) => problem(StatusCode::NOT_FOUND, m),
        CommandError::InvalidArgument(m) => problem(StatusCode::BAD_REQUEST, m),
        CommandError::FailedPrecondition(m) | CommandError::AlreadyExists(m) => problem(StatusCode::CONFLICT, m),
    }
}

/// A rejected request, answered as a problem detail.
struct Rejected(StatusCode, String);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        problem(self.0, self.1)
    }
}

fn parse_key(key: &str) -> Result<i64, Rejected> {
    key.parse::<i64>()
        .map_err(|_| Rejected(StatusCode::BAD_REQUEST, format!("'{key}' is not a valid key (expected a number)")))
}

/// Parses an optional JSON body (an empty body is `{}`).
/// The path key and the JSON body of a request, or the 400 that names what is wrong.
fn key_and_body(key: &str, bytes: &[u8]) -> Result<(i64, Map<String, Json>), Rejected> {
    Ok((parse_key(key)?, body(bytes)?))
}

fn body(bytes: &[u8]) -> Result<Map<String, Json>, Rejected> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(Rejected(StatusCode::BAD_REQUEST, "the request body must be a JSON object".into())),
        Err(e) => Err(Rejected(StatusCode::BAD_REQUEST, format!("the request body is not valid JSON: {e}"))),
    }
}

/// A search filter: each field is a plain value or `{"$eq": v}` / `{"$in": [..]}`.
struct Filter(Map<String, Json>);

impl Filter {
    fn from_body(b: &Map<String, Json>) -> Filter {
        Filter(b.get("filter").and_then(|f| f.as_object()).cloned().unwrap_or_default())
    }

    /// True when the filter has no condition on `field` or `value` satisfies it.
    fn matches(&self, field: &str, value: &Json) -> bool {
        let Some(cond) = self.0.get(field) else {
            return true;
        };
        let eq = |a: &Json, b: &Json| {
            a == b
                || (a.as_str().is_some() && a.as_str() == b.as_str())
                || a.to_string().trim_matches('"') == b.to_string().trim_matches('"')
        };
        match cond {
            Json::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                ops.iter().all(|(op, v)| match op.as_str() {
                    "$eq" => eq(v, value),
                    "$neq" => !eq(v, value),
                    "$in" => v.as_array().is_some_and(|a| a.iter().any(|x| eq(x, value))),
                    "$exists" => v.as_bool() == Some(!value.is_null()),
                    _ => true,
                })
            }
            other => eq(other, value),
        }
    }

    /// Every filter field holds; a singular filter on a list field (`candidateGroup` on
    /// `candidateGroups`) holds when any element matches.
    fn matches_all(&self, item: &Json) -> bool {
        self.0.keys().all(|k| match item.get(k).or_else(|| item.get(format!("{k}s"))) {
            Some(Json::Array(values)) if !self.0[k].is_array() => values.iter().any(|v| self.matches(k, v)),
            Some(v) => self.matches(k, v),
            None => self.matches(k, &Json::Null),
        })
    }
}

fn page(b: &Map<String, Json>, items: Vec<Json>) -> Json {
    let filter = Filter::from_body(b);
    let items: Vec<Json> = items.into_iter().filter(|i| filter.matches_all(i)).collect();
    let total = items.len();
    let p = b.get("page").and_then(|p| p.as_object());
    let from = p.and_then(|p| p.get("from")).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let limit = p.and_then(|p| p.get("limit")).and_then(|v| v.as_u64()).unwrap_or(100) as usize;
    let items: Vec<Json> = items.into_iter().skip(from).take(limit).collect();
    json!({"items": items, "page": {"totalItems": total}})
}

/// Leaves out the fields of an object whose value is `null` (8.8 omits absent optional fields).
fn without_nulls(v: Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

fn instance_state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Active => "ACTIVE",
        InstanceState::Completed => "COMPLETED",
        InstanceState::Terminated => "TERMINATED",
    }
}

fn user_task_json(s: &State, key: i64) -> Json {
    let t = &s.user_tasks[&key];
    let version = s.processes.iter().find(|p| p.key == t.def_key).map_or(0, |p| p.version);
    without_nulls(json!({
        "userTaskKey": t.key.to_string(),
        "name": t.name.clone().unwrap_or_else(|| t.element_id.clone()),
        "state": match t.state { UserTaskState::Created => "CREATED", UserTaskState::Completing => "COMPLETING", UserTaskState::Completed => "COMPLETED", UserTaskState::Canceled => "CANCELED" },
        "assignee": t.assignee,
        "elementId": t.element_id,
        "elementInstanceKey": t.ei_key.to_string(),
        "candidateGroups": t.candidate_groups,
        "candidateUsers": t.candidate_users,
        "processDefinitionId": t.bpmn_process_id,
        "processDefinitionKey": t.def_key.to_string(),
        "processDefinitionVersion": version,
        "processInstanceKey": t.pi_key.to_string(),
        "formKey": t.form_key.map(|k| k.to_string()),
        "creationDate": iso(t.creation_date),
        "completionDate": t.completion_date.map(iso),
        "dueDate": t.due_date,
        "followUpDate": t.follow_up_date,
        "priority": t.priority,
        "tenantId": "<default>",
        "customHeaders": {},
    }))
}

async fn topology(AxState(h): AxState<EngineHandle>) -> Response {
    let addr = h.grpc_addr();
    axum::Json(json!({
        "brokers": [{"nodeId": 0, "host": addr.ip().to_string(), "port": addr.port(), "version": "8.8.0",
            "partitions": [{"partitionId": 1, "role": "leader", "health": "healthy"}]}],
        "clusterSize": 1, "partitionsCount": 1, "replicationFactor": 1, "gatewayVersion": "8.8.0",
        "lastCompletedChangeId": "-1"
    }))
    .into_response()
}

async fn search_user_tasks(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| s.user_tasks.keys().map(|k| user_task_json(s, *k)).collect::<Vec<_>>());
    axum::Json(page(&b, items)).into_response()
}

async fn get_user_task(AxState(h): AxState<EngineHandle>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match h.read(|s| s.user_tasks.contains_key(&key).then(|| user_task_json(s, key))) {
        Some(t) => axum::Json(t).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("User task with key '{key}' not found")),
    }
}

async fn assign_user_task(
    AxState(h): AxState<EngineHandle>,
    Path(key): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let (key, b) = match key_and_body(&key, &bytes) {
        Ok(kb) => kb,
        Err(r) => return r.into_response(),
    };
    let assignee = b.get("assignee").and_then(|a| a.as_str()).map(str::to_string);
    if assignee.as_deref().is_none_or(|a| a.trim().is_empty()) {
        return problem(StatusCode::BAD_REQUEST, "No assignee provided");
    }
    let allow_override = b.get("allowOverride").and_then(|a| a.as_bool()).unwrap_or(true);
    let current = h.read(|s| s.user_tasks.get(&key).and_then(|t| t.assignee.clone()));
    if !allow_override && current.is_some() && current != assignee {
        return problem(StatusCode::CONFLICT, format!("User task with key '{key}' is already assigned"));
    }
    match h.with(|s| s.assign_user_task(key, assignee)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => command_error(e),
    }
}

async fn complete_user_task(
    AxState(h): AxState<EngineHandle>,
    Path(key): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let (key, b) = match key_and_body(&key, &bytes) {
        Ok(kb) => kb,
        Err(r) => return r.into_response(),
    };
    let vars = match b.get("variables") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(m)) => m.clone(),
        Some(_) => return problem(StatusCode::BAD_REQUEST, "'variables' must be a JSON object"),
    };
    match h.complete_user_task_held(key, vars).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => completion_error(e),
    }
}

/// A rejected completion as Camunda 8.8 answers it (a denial is 409 INVALID_STATE with the
/// listener's reason; listeners still running after the request timeout give 504).
fn completion_error(e: super::CompletionError) -> Response {
    match e {
        super::CompletionError::Command(e) => command_error(e),
        super::CompletionError::Denied { .. } | super::CompletionError::Canceled(_) => {
            problem(StatusCode::CONFLICT, e.to_string())
        }
        super::CompletionError::Timeout(_) => problem(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
    }
}

async fn user_task_form(AxState(h): AxState<EngineHandle>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let found = h.read(|s| {
        s.user_tasks.get(&key).map(|t| {
            t.form_key.and_then(|fk| s.forms.iter().find(|f| f.key == fk)).map(|f| {
                json!({"formKey": f.key.to_string(), "tenantId": "<default>", "formId": f.form_id, "bpmnId": f.form_id,
                    "schema": f.content, "version": f.version})
            })
        })
    });
    match found {
        None => problem(StatusCode::NOT_FOUND, format!("User task with key '{key}' not found")),
        Some(None) => StatusCode::NO_CONTENT.into_response(),
        Some(Some(f)) => axum::Json(f).into_response(),
    }
}

fn process_instance_json(s: &State, key: i64) -> Json {
    let e = &s.elems[&key];
    let d = s.processes.iter().find(|p| p.key == e.def_key);
    let parent = e.parent_ei.and_then(|p| s.elems.get(&p));
    without_nulls(json!({
        "processInstanceKey": key.to_string(),
        "processDefinitionId": e.bpmn_process_id,
        "processDefinitionName": d.and_then(|d| d.process.name.clone()).unwrap_or_else(|| e.bpmn_process_id.clone()),
        "processDefinitionVersion": d.map_or(0, |d| d.version),
        "processDefinitionKey": e.def_key.to_string(),
        "parentProcessInstanceKey": parent.map(|p| p.pi_key.to_string()),
        "parentElementInstanceKey": e.parent_ei.map(|k| k.to_string()),
        "startDate": iso(e.start),
        "endDate": e.end.map(iso),
        "state": instance_state_name(view_state(e.state)),
        "hasIncident": s.incidents.values().any(|i| i.active && i.pi_key == key),
        "tenantId": "<default>",
    }))
}

async fn search_process_instances(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| {
        s.elems
            .values()
            .filter(|e| e.element_type == "PROCESS")
            .map(|e| process_instance_json(s, e.key))
            .collect::<Vec<_>>()
    });
    axum::Json(page(&b, items)).into_response()
}

async fn get_process_instance(AxState(h): AxState<EngineHandle>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match h.read(|s| s.elems.get(&key).filter(|e| e.element_type == "PROCESS").map(|_| process_instance_json(s, key))) {
        Some(p) => axum::Json(p).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("Process instance with key '{key}' not found")),
    }
}

fn incident_json(i: &super::state::IncidentRec) -> Json {
    without_nulls(json!({
        "incidentKey": i.key.to_string(),
        "processDefinitionKey": i.def_key.to_string(),
        "processDefinitionId": i.bpmn_process_id,
        "processInstanceKey": i.pi_key.to_string(),
        "errorType": i.error_type,
        "errorMessage": i.message,
        "elementId": i.element_id,
        "elementInstanceKey": i.ei_key.to_string(),
        "creationTime": iso(i.creation_time),
        "state": if i.active { "ACTIVE" } else { "RESOLVED" },
        "jobKey": i.job_key.map(|k| k.to_string()),
        "tenantId": "<default>",
    }))
}

async fn get_incident(AxState(h): AxState<EngineHandle>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match h.read(|s| s.incidents.get(&key).map(incident_json)) {
        Some(i) => axum::Json(i).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("Incident with key '{key}' not found")),
    }
}

async fn search_incidents(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| s.incidents.values().map(incident_json).collect::<Vec<_>>());
    axum::Json(page(&b, items)).into_response()
}

async fn search_element_instances(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| {
        s.elems
            .values()
            .filter(|e| e.element_type != "PROCESS")
            .map(|e| {
                let incident = s.incidents.values().find(|i| i.active && i.ei_key == e.key);
                let name = s
                    .processes
                    .iter()
                    .find(|p| p.key == e.def_key)
                    .and_then(|p| p.process.elements.get(&e.element_id))
                    .and_then(|el| el.name.clone())
                    .unwrap_or_else(|| e.element_id.clone());
                without_nulls(json!({
                    "elementInstanceKey": e.key.to_string(),
                    "processInstanceKey": e.pi_key.to_string(),
                    "processDefinitionKey": e.def_key.to_string(),
                    "processDefinitionId": e.bpmn_process_id,
                    "startDate": iso(e.start),
                    "endDate": e.end.map(iso),
                    "elementId": e.element_id,
                    "elementName": name,
                    "type": e.element_type,
                    "state": match e.state { ElemState::Completed => "COMPLETED", ElemState::Terminated => "TERMINATED", _ => "ACTIVE" },
                    "hasIncident": incident.is_some(),
                    "incidentKey": incident.map(|i| i.key.to_string()),
                    "tenantId": "<default>",
                }))
            })
            .collect::<Vec<_>>()
    });
    axum::Json(page(&b, items)).into_response()
}

async fn search_variables(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| {
        let mut scopes: Vec<&i64> = s.vars.keys().collect();
        scopes.sort();
        let mut items = Vec::new();
        for scope in scopes {
            let Some(e) = s.elems.get(scope) else {
                continue;
            };
            let mut names: Vec<(&String, &Json)> = s.vars[scope].iter().collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            for (name, value) in names {
                items.push(variable_json(*scope, e.pi_key, name, value));
            }
        }
        items
    });
    axum::Json(page(&b, items)).into_response()
}

fn variable_json(scope: i64, pi_key: i64, name: &str, value: &Json) -> Json {
    json!({
        "variableKey": variable_key(scope, name).to_string(),
        "name": name,
        "value": value.to_string(),
        "isTruncated": false,
        "scopeKey": scope.to_string(),
        "processInstanceKey": pi_key.to_string(),
        "tenantId": "<default>",
    })
}

/// `POST /v2/user-tasks/{key}/variables/search`: the variables of the task's scope and of every
/// enclosing scope up to its process instance (innermost scope first), each with its scope key.
async fn search_user_task_variables(
    AxState(h): AxState<EngineHandle>,
    Path(key): Path<String>,
    bytes: axum::body::Bytes,
) -> Response {
    let (key, b) = match key_and_body(&key, &bytes) {
        Ok(kb) => kb,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| {
        let t = s.user_tasks.get(&key)?;
        let mut items = Vec::new();
        let mut scope = Some(t.ei_key);
        while let Some(k) = scope {
            if let Some(vars) = s.vars.get(&k) {
                let mut names: Vec<(&String, &Json)> = vars.iter().collect();
                names.sort_by(|a, b| a.0.cmp(b.0));
                for (name, value) in names {
                    items.push(variable_json(k, t.pi_key, name, value));
                }
            }
            scope = s.elems.get(&k).and_then(|e| e.flow_scope);
        }
        Some(items)
    });
    match items {
        Some(items) => axum::Json(page(&b, items)).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("User task with key '{key}' not found")),
    }
}

/// `POST /v2/process-definitions/search`: every deployed version.
async fn search_process_definitions(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = h.read(|s| {
        s.processes
            .iter()
            .map(|p| {
                without_nulls(json!({
                    "processDefinitionKey": p.key.to_string(),
                    "processDefinitionId": p.bpmn_process_id,
                    "name": p.process.name,
                    "resourceName": p.resource_name,
                    "version": p.version,
                    "tenantId": "<default>",
                    "hasStartForm": false,
                }))
            })
            .collect::<Vec<_>>()
    });
    axum::Json(page(&b, items)).into_response()
}

/// `PATCH /v2/jobs/{key}` with `{"changeset": {"retries": n, "timeout": ms}}`: either may be
/// absent or null (unchanged). The timeout is real milliseconds from now, like the gateway's.
async fn update_job(AxState(h): AxState<EngineHandle>, Path(key): Path<String>, bytes: axum::body::Bytes) -> Response {
    let (key, b) = match key_and_body(&key, &bytes) {
        Ok(kb) => kb,
        Err(r) => return r.into_response(),
    };
    let Some(changeset) = b.get("changeset").and_then(Json::as_object) else {
        return problem(StatusCode::BAD_REQUEST, "No changeset provided: send {\"changeset\": {\"retries\": n}}");
    };
    let number = |field: &str| match changeset.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Rejected(StatusCode::BAD_REQUEST, format!("'changeset.{field}' must be an integer"))),
    };
    let (retries, timeout) = match (number("retries"), number("timeout")) {
        (Ok(r), Ok(t)) => (r, t),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if retries.is_none() && timeout.is_none() {
        return problem(StatusCode::BAD_REQUEST, "The changeset is empty: give 'retries' and/or 'timeout'");
    }
    let speed = h.clock().speed();
    let res = h.with(|s| {
        if let Some(r) = retries {
            let r = i32::try_from(r).map_err(|_| {
                CommandError::InvalidArgument(format!("Expected retries to be a 32-bit number, but was '{r}'"))
            })?;
            s.update_job_retries(key, r)?;
        }
        if let Some(t) = timeout {
            s.update_job_timeout(key, (t as f64 * speed).round() as i64)?;
        }
        Ok(())
    });
    match res {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => command_error(e),
    }
}

fn object_field(b: &Map<String, Json>, field: &str) -> Result<Map<String, Json>, Rejected> {
    match b.get(field) {
        None | Some(Json::Null) => Ok(Map::new()),
        Some(Json::Object(m)) => Ok(m.clone()),
        Some(_) => Err(Rejected(StatusCode::BAD_REQUEST, format!("'{field}' must be a JSON object"))),
    }
}

async fn create_process_instance(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let vars = match object_field(&b, "variables") {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let id = b.get("processDefinitionId").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let def_key = b
        .get("processDefinitionKey")
        .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64()))
        .unwrap_or(-1);
    let version = b.get("processDefinitionVersion").and_then(|v| v.as_i64()).unwrap_or(-1) as i32;
    if id.is_empty() && def_key <= 0 {
        return problem(StatusCode::BAD_REQUEST, "No processDefinitionId or processDefinitionKey provided");
    }
    match h.with(|s| s.create_instance(def_key, &id, version, vars)) {
        Ok((def, pi)) => axum::Json(json!({
            "processDefinitionId": def.bpmn_process_id,
            "processDefinitionVersion": def.version,
            "processDefinitionKey": def.key.to_string(),
            "processInstanceKey": pi.to_string(),
            "tenantId": "<default>",
        }))
        .into_response(),
        Err(e) => command_error(e),
    }
}

async fn cancel_process_instance(AxState(h): AxState<EngineHandle>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match h.with(|s| s.cancel_instance(key)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => command_error(e),
    }
}

async fn resolve_incident(AxState(h): AxState<EngineHandle>, Path(key): Path<String>) -> Response {
    let key = match parse_key(&key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match h.with(|s| s.resolve_incident(key)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => command_error(e),
    }
}

async fn publish_message(AxState(h): AxState<EngineHandle>, bytes: axum::body::Bytes) -> Response {
    let b = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let vars = match object_field(&b, "variables") {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let text = |f: &str| b.get(f).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let (name, corr, id) = (text("name"), text("correlationKey"), text("messageId"));
    let ttl = b.get("timeToLive").and_then(|v| v.as_i64()).unwrap_or(0);
    match h.with(|s| s.publish_message(&name, &corr, ttl, &id, vars)) {
        Ok(key) => axum::Json(json!({"messageKey": key.to_string(), "tenantId": "<default>"})).into_response(),
        Err(e) => command_error(e),
    }
}

/// A stable numeric key for the variable `name` in `scope` (the engine keeps variables in maps,
/// not as keyed records): FNV-1a over both, as a positive i64.
fn variable_key(scope: i64, name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scope.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & (i64::MAX as u64)) as i64
}
