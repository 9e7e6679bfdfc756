//! HTTP routes of the lab: per region the management API, the REST API and Elasticsearch, and
//! the control API. Handlers parse, call [`World`](super::world::World), and answer.
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::cluster::PatchRequest;
use super::es;
use super::faults::{RegionApi, json_response, middleware};
use super::world::{Reply, es_error, message, problem};
use super::{Api, FaultConfig, HelmRequest, LabDurations, LabError, LabHandle, LabState, Shared};

type Q = Query<HashMap<String, String>>;

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true"))
}

fn json(r: Reply) -> Response {
    json_response(r.0, &r.1, "application/json")
}

fn problem_json(r: Reply) -> Response {
    if r.0 >= 400 { json_response(r.0, &r.1, "application/problem+json") } else { json(r) }
}

pub(crate) fn region_router(shared: Arc<Shared>, region: usize, api: Api) -> Router {
    let ctx = RegionApi { shared, region, api };
    let router = match api {
        Api::Management => management(),
        Api::Rest => {
            rest().layer(axum::middleware::from_fn(|req, next| crate::rehearsal::engine::record_rest("lab", req, next)))
        }
        Api::Elasticsearch => elasticsearch(),
    };
    router.layer(from_fn_with_state(ctx.clone(), middleware)).with_state(ctx)
}

// ---- management API ---------------------------------------------------------------------

fn management() -> Router<RegionApi> {
    Router::new()
        .route("/actuator/cluster", get(get_cluster).patch(patch_cluster))
        .route("/actuator/cluster/changes/{id}", delete(cancel_change))
        .route("/actuator/cluster/brokers", post(legacy_brokers))
        .route("/actuator/exporters", get(get_exporters))
        .route("/actuator/exporters/{id}/{op}", post(exporter_op))
        .route("/actuator/exporting/{op}", post(exporting_op))
        .fallback(|| async { json(message(404, "Not Found")) })
}

async fn get_cluster(State(c): State<RegionApi>) -> Response {
    let w = c.shared.world();
    json((200, w.cluster.to_json(&w.cluster_id)))
}

fn ids(v: Option<&Value>) -> Result<Vec<u32>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_u64().map(|n| n as u32).ok_or_else(|| format!("not a broker id: {x}"))).collect()
        }
        Some(other) => Err(format!("expected an array of broker ids, got {other}")),
    }
}

fn parse_patch(body: &[u8]) -> Result<PatchRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Failed to parse request body: {e}"))?;
    let brokers = v.get("brokers");
    let partitions = v.get("partitions");
    let num = |o: Option<&Value>, k: &str| -> Result<Option<u32>, String> {
        match o.and_then(|o| o.get(k)) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x.as_u64().map(|n| Some(n as u32)).ok_or_else(|| format!("{k} must be a number")),
        }
    };
    Ok(PatchRequest {
        add: ids(brokers.and_then(|b| b.get("add")))?,
        remove: ids(brokers.and_then(|b| b.get("remove")))?,
        count: num(brokers, "count")?,
        partition_count: num(partitions, "count")?,
        replication_factor: num(partitions, "replicationFactor")?,
    })
}

async fn patch_cluster(State(c): State<RegionApi>, Query(q): Q, body: Bytes) -> Response {
    let req = match parse_patch(&body) {
        Ok(r) => r,
        Err(e) => return json(message(400, e)),
    };
    let now = c.shared.now_ms();
    json(c.shared.world().patch_cluster(&req, flag(&q, "force"), flag(&q, "dryRun"), now))
}

/// Legacy `POST /actuator/cluster/brokers[?dryRun&force&replicationFactor]`, body = the final
/// broker set (force removes every broker not listed).
async fn legacy_brokers(State(c): State<RegionApi>, Query(q): Q, body: Bytes) -> Response {
    let wanted: Vec<u32> = match serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| ids(Some(&v)))
    {
        Ok(v) => v,
        Err(e) => {
            return json(message(400, format!("Failed to parse request body (expected an array of broker ids): {e}")));
        }
    };
    let rf = match q.get("replicationFactor").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return json(message(400, "replicationFactor must be a number")),
    };
    let now = c.shared.now_ms();
    let mut w = c.shared.world();
    let current: Vec<u32> = w.cluster.brokers.keys().copied().collect();
    let req = PatchRequest {
        add: wanted.iter().filter(|b| !current.contains(b)).copied().collect(),
        remove: current.iter().filter(|b| !wanted.contains(b)).copied().collect(),
        count: None,
        partition_count: None,
        replication_factor: rf,
    };
    json(w.patch_cluster(&req, flag(&q, "force"), flag(&q, "dryRun"), now))
}

async fn cancel_change(State(c): State<RegionApi>, Path(id): Path<String>, Query(q): Q) -> Response {
    if flag(&q, "dryRun") {
        return json(message(501, "Dry run is not supported for cancelling a change"));
    }
    let Ok(id) = id.parse::<i64>() else {
        return json(message(400, format!("Invalid change id '{id}'")));
    };
    let now = c.shared.now_ms();
    json(c.shared.world().cancel_change(id, now))
}

async fn get_exporters(State(c): State<RegionApi>) -> Response {
    json((200, c.shared.world().exporters_json()))
}

async fn exporter_op(
    State(c): State<RegionApi>,
    Path((id, op)): Path<(String, String)>,
    Query(q): Q,
    body: Bytes,
) -> Response {
    let enable = match op.as_str() {
        "enable" => true,
        "disable" => false,
        other => {
            return json(message(400, format!("Unknown operation '{other}'; expected enable or disable")));
        }
    };
    let initialize_from = if enable && !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v.get("initializeFrom").and_then(Value::as_str).map(str::to_string),
            Err(e) => return json(message(400, format!("Failed to parse request body: {e}"))),
        }
    } else {
        None
    };
    let now = c.shared.now_ms();
    json(c.shared.world().exporter_change(&id, enable, initialize_from.as_deref(), flag(&q, "dryRun"), now))
}

async fn exporting_op(State(c): State<RegionApi>, Path(op): Path<String>, Query(q): Q) -> Response {
    if op != "pause" && op != "resume" {
        return json(message(404, "Not Found"));
    }
    let now = c.shared.now_ms();
    json(c.shared.world().exporting(&op, flag(&q, "soft"), now))
}

// ---- REST API v2 ------------------------------------------------------------------------------

fn rest() -> Router<RegionApi> {
    Router::new()
        .route("/v2/topology", get(topology))
        .route("/v2/deployments", post(deploy))
        .route("/v2/process-instances", post(create_instance))
        .route("/v2/process-instances/search", post(search_instances))
        .route("/v2/process-definitions/search", post(search_definitions))
        .fallback(|uri: axum::http::Uri| async move {
            problem_json(problem(404, "NOT_FOUND", format!("No endpoint {}", uri.path()), uri.path()))
        })
}

async fn topology(State(c): State<RegionApi>) -> Response {
    json((200, c.shared.world().topology_json(super::namespace)))
}

async fn deploy(State(c): State<RegionApi>, mut multipart: Multipart) -> Response {
    let mut resources = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                if field.name() != Some("resources") {
                    continue;
                }
                let name = field.file_name().unwrap_or("resource.bpmn").to_string();
                match field.text().await {
                    Ok(t) => resources.push((name, t)),
                    Err(e) => {
                        return problem_json(problem(
                            400,
                            "INVALID_ARGUMENT",
                            format!("cannot read part: {e}"),
                            "/v2/deployments",
                        ));
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                return problem_json(problem(
                    400,
                    "INVALID_ARGUMENT",
                    format!("invalid multipart body: {e}"),
                    "/v2/deployments",
                ));
            }
        }
    }
    let now = c.shared.now_ms();
    problem_json(c.shared.world().deploy(resources, now))
}

#[allow(clippy::result_large_err)] // the error is the finished HTTP answer
fn body_json(body: &[u8], path: &str) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| problem_json(problem(400, "Bad Request", format!("Request body is not valid JSON: {e}"), path)))
}

async fn create_instance(State(c): State<RegionApi>, body: Bytes) -> Response {
    let v = match body_json(&body, "/v2/process-instances") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = c.shared.now_ms();
    problem_json(c.shared.world().create_instance(&v, now))
}

/// Checks the shape of a search request as 8.8 does (`filter` an object, `sort` a list of
/// `{field, order}`, `page` an object with integer `from`/`limit` and string cursors); a
/// malformed one is a 400 problem naming the field.
#[allow(clippy::result_large_err)] // the error is the finished HTTP answer
fn search_request(body: &[u8], path: &str) -> Result<Value, Response> {
    let v = body_json(body, path)?;
    let bad = |detail: String| problem_json(problem(400, "Bad Request", detail, path));
    let Some(o) = v.as_object() else {
        return Err(bad("The search request must be a JSON object".into()));
    };
    if let Some(f) = o.get("filter").filter(|f| !f.is_null() && !f.is_object()) {
        return Err(bad(format!("Expected 'filter' to be an object, but was {f}")));
    }
    if let Some(sort) = o.get("sort").filter(|s| !s.is_null()) {
        let Some(list) = sort.as_array() else {
            return Err(bad(format!("Expected 'sort' to be a list of {{field, order}}, but was {sort}")));
        };
        for s in list {
            if !s.get("field").is_some_and(Value::is_string) {
                return Err(bad(format!("Expected every 'sort' entry to have a string 'field', but got {s}")));
            }
            if let Some(order) = s.get("order").filter(|o| !o.is_null()) {
                let ok = order.as_str().is_some_and(|o| matches!(o.to_ascii_uppercase().as_str(), "ASC" | "DESC"));
                if !ok {
                    return Err(bad(format!("Expected 'sort.order' to be ASC or DESC, but was {order}")));
                }
            }
        }
    }
    if let Some(page) = o.get("page").filter(|p| !p.is_null()) {
        let Some(p) = page.as_object() else {
            return Err(bad(format!("Expected 'page' to be an object, but was {page}")));
        };
        for field in ["from", "limit"] {
            if let Some(n) = p.get(field).filter(|n| !n.is_null() && !n.is_u64()) {
                return Err(bad(format!("Expected 'page.{field}' to be a non-negative integer, but was {n}")));
            }
        }
        for field in ["before", "after"] {
            if let Some(c) = p.get(field).filter(|c| !c.is_null() && !c.is_string()) {
                return Err(bad(format!("Expected 'page.{field}' to be a cursor string, but was {c}")));
            }
        }
    }
    Ok(v)
}

/// A search answer as 8.8 sends it: absent optional fields (items' and the page's cursors on an
/// empty page) are left out, not `null` (sending `null` started with 8.9).
fn search_answer((status, mut body): Reply) -> Response {
    if let Some(items) = body.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.retain(|_, v| !v.is_null());
        }
    }
    if let Some(page) = body.get_mut("page").and_then(Value::as_object_mut) {
        page.retain(|_, v| !v.is_null());
    }
    problem_json((status, body))
}

async fn search_instances(State(c): State<RegionApi>, body: Bytes) -> Response {
    let v = match search_request(&body, "/v2/process-instances/search") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let w = c.shared.world();
    search_answer(w.search(c.region, es::INDEX_LIST_VIEW, &v, |d| {
        let mut d = d.clone();
        if let Some(o) = d.as_object_mut() {
            o.remove("partitionId");
            o.entry("tags").or_insert(json!([]));
        }
        d
    }))
}

async fn search_definitions(State(c): State<RegionApi>, body: Bytes) -> Response {
    let v = match search_request(&body, "/v2/process-definitions/search") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let w = c.shared.world();
    search_answer(w.search(c.region, es::INDEX_PROCESS_DEFINITION, &v, |d| {
        json!({
            "processDefinitionKey": d["key"], "processDefinitionId": d["bpmnProcessId"], "name": d["name"],
            "version": d["version"], "resourceName": d["resourceName"], "tenantId": d["tenantId"],
            "hasStartForm": false,
        })
    }))
}

// ---- Elasticsearch ----------------------------------------------------------------------------

fn elasticsearch() -> Router<RegionApi> {
    Router::new()
        .route("/", get(es_root))
        .route("/_cluster/health", get(es_health))
        .route("/_cat/indices", get(cat_indices))
        .route("/_cat/indices/{pattern}", get(cat_indices_pattern))
        .route("/_cat/recovery", get(cat_recovery))
        .route("/_recovery", get(recovery))
        .route("/_snapshot", get(get_repos))
        .route("/_snapshot/{repo}", get(get_repo).put(put_repo).post(put_repo).delete(delete_repo))
        .route(
            "/_snapshot/{repo}/{snap}",
            get(get_snapshots).put(create_snapshot).post(create_snapshot).delete(delete_snapshot),
        )
        .route("/_snapshot/{repo}/{snap}/_status", get(snapshot_status))
        .route("/_snapshot/{repo}/{snap}/_restore", post(restore))
        .route("/{index}", delete(delete_index))
        .route("/{index}/_close", post(close_index))
        .fallback(|uri: axum::http::Uri| async move {
            json(es_error(
                400,
                "illegal_argument_exception",
                format!("request [{}] contains unrecognized parameter or path", uri.path()),
            ))
        })
}

fn no_es() -> Response {
    json(es_error(
        503,
        "cluster_block_exception",
        "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];",
    ))
}

async fn es_root(State(c): State<RegionApi>) -> Response {
    let w = c.shared.world();
    let Some(es) = w.es(c.region) else {
        return no_es();
    };
    json((
        200,
        json!({"name": "camunda-elasticsearch-master-0", "cluster_name": es.cluster_name,
        "version": {"number": es::ES_VERSION, "build_flavor": "default"}, "tagline": "You Know, for Search"}),
    ))
}

/// `30s`, `1m`, `500ms`, plain milliseconds.
fn parse_es_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "ms"));
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

async fn es_health(State(c): State<RegionApi>, Query(q): Q) -> Response {
    let target = match q.get("wait_for_status").map(String::as_str) {
        None => None,
        Some("green") => Some(es::Health::Green),
        Some("yellow") => Some(es::Health::Yellow),
        Some("red") => Some(es::Health::Red),
        Some(other) => {
            return json(es_error(
                400,
                "illegal_argument_exception",
                format!("unknown cluster health status [{other}]"),
            ));
        }
    };
    let timeout = q.get("timeout").and_then(|t| parse_es_duration(t)).unwrap_or(Duration::from_secs(30));
    let now = c.shared.now_ms();
    let reached_at = {
        let w = c.shared.world();
        let Some(es) = w.es(c.region) else {
            return no_es();
        };
        match target {
            None => None,
            Some(t) if es.health(now) <= t => None,
            Some(t) => Some(
                es.indices
                    .values()
                    .filter_map(|i| i.restore.as_ref())
                    .map(|r| if t == es::Health::Green { r.done_ms } else { r.primary_done_ms })
                    .max()
                    .unwrap_or(now),
            ),
        }
    };
    let mut timed_out = false;
    if let Some(at) = reached_at {
        let wait = (at - now).max(0) as u64;
        if Duration::from_millis(wait) <= timeout {
            c.shared.clock.sleep(Duration::from_millis(wait)).await;
        } else {
            c.shared.clock.sleep(timeout).await;
            timed_out = true;
        }
    }
    let now = c.shared.now_ms();
    let w = c.shared.world();
    let Some(es) = w.es(c.region) else {
        return no_es();
    };
    let mut body = es.health_json(now);
    body["timed_out"] = json!(timed_out);
    json((if timed_out { 408 } else { 200 }, body))
}

fn cat(q: &HashMap<String, String>, all_columns: &[&str], all_rows: Vec<Vec<String>>) -> Response {
    // `h=index,docs.count` selects columns.
    let picked: Vec<usize> = match q.get("h") {
        Some(h) => h.split(',').filter_map(|c| all_columns.iter().position(|x| *x == c.trim())).collect(),
        None => (0..all_columns.len()).collect(),
    };
    let columns: Vec<&str> = picked.iter().map(|i| all_columns[*i]).collect();
    let rows: Vec<Vec<String>> = all_rows.into_iter().map(|r| picked.iter().map(|i| r[*i].clone()).collect()).collect();
    if q.get("format").is_some_and(|f| f == "json") {
        let arr: Vec<Value> = rows
            .iter()
            // An empty cell (e.g. the health or size of a closed index) is null in JSON.
            .map(|r| {
                Value::Object(
                    columns
                        .iter()
                        .zip(r)
                        .map(|(c, v)| (c.to_string(), if v.is_empty() { Value::Null } else { json!(v) }))
                        .collect(),
                )
            })
            .collect();
        return json((200, Value::Array(arr)));
    }
    let mut all = Vec::new();
    if q.contains_key("v") {
        all.push(columns.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    }
    all.extend(rows);
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| all.iter().map(|r| r.get(i).map(String::len).unwrap_or(0)).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in all {
        let line: Vec<String> = r.iter().enumerate().map(|(i, v)| format!("{v:<w$}", w = widths[i])).collect();
        out.push_str(line.join(" ").trim_end());
        out.push('\n');
    }
    let mut resp = Response::new(axum::body::Body::from(out));
    resp.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("text/plain; charset=UTF-8"));
    resp
}

async fn cat_indices(State(c): State<RegionApi>, q: Q) -> Response {
    cat_indices_impl(c, None, q.0)
}

async fn cat_indices_pattern(State(c): State<RegionApi>, Path(p): Path<String>, q: Q) -> Response {
    cat_indices_impl(c, Some(p), q.0)
}

fn cat_indices_impl(c: RegionApi, pattern: Option<String>, q: HashMap<String, String>) -> Response {
    let now = c.shared.now_ms();
    let w = c.shared.world();
    let Some(es) = w.es(c.region) else {
        return no_es();
    };
    let names = es.resolve(pattern.as_deref().unwrap_or("*"));
    let rows = names
        .iter()
        .map(|n| {
            let i = &es.indices[n];
            // A closed index reports no document counts or sizes; since 7.2 closed indices are
            // replicated and keep a health (elastic/elasticsearch#39364).
            let open = |v: String| if i.open { v } else { String::new() };
            let size = open(format!("{}kb", 4 + i.docs.len()));
            vec![
                i.health(now).as_str().to_string(),
                if i.open { "open".into() } else { "close".into() },
                n.clone(),
                i.uuid.clone(),
                "1".into(),
                "1".into(),
                open(i.docs.len().to_string()),
                open("0".into()),
                size.clone(),
                size.clone(),
                size,
            ]
        })
        .collect();
    let cols = [
        "health",
        "status",
        "index",
        "uuid",
        "pri",
        "rep",
        "docs.count",
        "docs.deleted",
        "store.size",
        "pri.store.size",
        "dataset.size",
    ];
    cat(&q, &cols, rows)
}

async fn cat_recovery(State(c): State<RegionApi>, Query(q): Q) -> Response {
    let now = c.shared.now_ms();
    let w = c.shared.world();
    let Some(es) = w.es(c.region) else {
        return no_es();
    };
    let active_only = flag(&q, "active_only");
    let mut rows = Vec::new();
    for (name, idx) in &es.indices {
        for r in es.recoveries(name, idx, now, active_only) {
            let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            rows.push(vec![
                name.clone(),
                "0".into(),
                format!("{}ms", r["total_time_in_millis"]),
                s(&r["type"]).to_lowercase(),
                s(&r["stage"]).to_lowercase(),
                r["source"].get("repository").map(s).unwrap_or("n/a".into()),
                r["source"].get("snapshot").map(s).unwrap_or("n/a".into()),
                s(&r["index"]["files"]["percent"]),
                s(&r["index"]["size"]["percent"]),
                r["index"]["size"]["total_in_bytes"].to_string(),
            ]);
        }
    }
    let cols = [
        "index",
        "shard",
        "time",
        "type",
        "stage",
        "repository",
        "snapshot",
        "files_percent",
        "bytes_percent",
        "bytes_total",
    ];
    cat(&q, &cols, rows)
}

async fn recovery(State(c): State<RegionApi>, Query(q): Q) -> Response {
    let now = c.shared.now_ms();
    let w = c.shared.world();
    let Some(es) = w.es(c.region) else {
        return no_es();
    };
    let active_only = flag(&q, "active_only");
    let mut out = serde_json::Map::new();
    for (name, idx) in &es.indices {
        let shards = es.recoveries(name, idx, now, active_only);
        if !shards.is_empty() {
            out.insert(name.clone(), json!({"shards": shards}));
        }
    }
    json((200, Value::Object(out)))
}

async fn get_repos(State(c): State<RegionApi>) -> Response {
    json(c.shared.world().get_repositories(c.region, None))
}

async fn get_repo(State(c): State<RegionApi>, Path(repo): Path<String>) -> Response {
    json(c.shared.world().get_repositories(c.region, Some(&repo)))
}

async fn put_repo(State(c): State<RegionApi>, Path(repo): Path<String>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json(es_error(400, "parse_exception", format!("request body is required or invalid: {e}")));
        }
    };
    json(c.shared.world().put_repository(c.region, &repo, &v))
}

async fn delete_repo(State(c): State<RegionApi>, Path(repo): Path<String>) -> Response {
    json(c.shared.world().delete_repository(c.region, &repo))
}

async fn get_snapshots(State(c): State<RegionApi>, Path((repo, snap)): Path<(String, String)>) -> Response {
    let now = c.shared.now_ms();
    let w = c.shared.world();
    let visible = match w.visible_snapshots(c.region, &repo, now) {
        Ok(v) => v,
        Err(e) => return json(e),
    };
    let mut out = Vec::new();
    for part in snap.split(',') {
        if part == "_all" || part.contains('*') {
            out.extend(visible.iter().filter(|s| part == "_all" || es::wildcard(part, &s.name)).cloned());
        } else if let Some(s) = visible.iter().find(|s| s.name == part) {
            out.push(s.clone());
        } else {
            return json(es_error(404, "snapshot_missing_exception", format!("[{repo}:{part}] is missing")));
        }
    }
    out.sort_by_key(|s| s.start_ms);
    out.dedup_by(|a, b| a.name == b.name);
    let total = out.len();
    json((
        200,
        json!({"snapshots": out.iter().map(|s| s.to_json(now)).collect::<Vec<_>>(), "total": total, "remaining": 0}),
    ))
}

/// An Elasticsearch request body: empty means `{}`; invalid JSON is ES's 400 `parse_exception`.
#[allow(clippy::result_large_err)] // the error is the finished HTTP answer
fn es_body_json(body: &[u8]) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| json(es_error(400, "parse_exception", format!("failed to parse request body: {e}"))))
}

async fn create_snapshot(
    State(c): State<RegionApi>,
    Path((repo, snap)): Path<(String, String)>,
    Query(q): Q,
    body: Bytes,
) -> Response {
    let v = match es_body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = c.shared.now_ms();
    let created = c.shared.world().create_snapshot(c.region, &repo, &snap, &v, now);
    let s = match created {
        Ok(s) => s,
        Err(e) => return json(e),
    };
    if !flag(&q, "wait_for_completion") {
        return json((200, json!({"accepted": true})));
    }
    c.shared.clock.sleep(Duration::from_millis((s.end_ms - now).max(0) as u64)).await;
    let now = c.shared.now_ms().max(s.end_ms);
    json((200, json!({"snapshot": s.to_json(now)})))
}

async fn delete_snapshot(State(c): State<RegionApi>, Path((repo, snap)): Path<(String, String)>) -> Response {
    let now = c.shared.now_ms();
    json(c.shared.world().delete_snapshot(c.region, &repo, &snap, now))
}

async fn snapshot_status(State(c): State<RegionApi>, Path((repo, snap)): Path<(String, String)>) -> Response {
    let now = c.shared.now_ms();
    let w = c.shared.world();
    match w.find_snapshot(c.region, &repo, &snap, now) {
        Ok(s) => json((200, json!({"snapshots": [s.status_json(now)]}))),
        Err(e) => json(e),
    }
}

async fn restore(
    State(c): State<RegionApi>,
    Path((repo, snap)): Path<(String, String)>,
    Query(q): Q,
    body: Bytes,
) -> Response {
    let v = match es_body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = c.shared.now_ms();
    let started = c.shared.world().restore(c.region, &repo, &snap, &v, now);
    let (indices, primaries_done) = match started {
        Ok(x) => x,
        Err(e) => return json(e),
    };
    if !flag(&q, "wait_for_completion") {
        return json((200, json!({"accepted": true})));
    }
    c.shared.clock.sleep(Duration::from_millis((primaries_done - now).max(0) as u64)).await;
    let n = indices.len();
    json((
        200,
        json!({"snapshot": {"snapshot": snap, "indices": indices, "shards": {"total": n, "failed": 0, "successful": n}}}),
    ))
}

async fn delete_index(State(c): State<RegionApi>, Path(index): Path<String>) -> Response {
    if index.starts_with('_') {
        return json(es_error(400, "illegal_argument_exception", format!("unsupported path [/{index}]")));
    }
    json(c.shared.world().delete_indices(c.region, &index))
}

async fn close_index(State(c): State<RegionApi>, Path(index): Path<String>) -> Response {
    json(c.shared.world().close_index(c.region, &index))
}

// ---- control API ------------------------------------------------------------------------------

pub(crate) fn control_router(lab: LabHandle) -> Router {
    Router::new()
        .route("/control/state", get(control_state))
        .route("/control/record", get(control_record))
        .route("/control/regions/{n}/lose", post(control_lose))
        .route("/control/regions/{n}/recreate", post(control_recreate))
        .route("/control/regions/{n}/helm", post(control_helm))
        .route("/control/regions/{n}/platform", get(control_platform))
        .route("/control/regions/{n}/pods/{ordinal}/stuck", post(control_stuck_pod))
        .route("/control/settings", post(control_settings))
        .fallback(|| async { json(message(404, "Not Found")) })
        .with_state(lab)
}

fn lab_error(e: LabError) -> Response {
    let status = match &e {
        LabError::InvalidRegion(_) | LabError::InvalidOptions(_) => 400,
        LabError::Rejected { status, .. } => *status,
        LabError::Bind(_) => 500,
    };
    json(message(status, e.to_string()))
}

async fn control_state(State(lab): State<LabHandle>) -> Response {
    let s: LabState = lab.state();
    json((200, serde_json::to_value(s).unwrap_or_default()))
}

async fn control_record(State(lab): State<LabHandle>) -> Response {
    json((200, serde_json::to_value(lab.record()).unwrap_or_default()))
}

async fn control_lose(State(lab): State<LabHandle>, Path(n): Path<usize>) -> Response {
    match lab.lose_region(n).await {
        Ok(()) => json((200, json!({"region": n, "lost": true}))),
        Err(e) => lab_error(e),
    }
}

async fn control_recreate(State(lab): State<LabHandle>, Path(n): Path<usize>) -> Response {
    match lab.recreate_region(n).await {
        Ok(()) => json((200, json!({"region": n, "recreated": true}))),
        Err(e) => lab_error(e),
    }
}

async fn control_helm(State(lab): State<LabHandle>, Path(n): Path<usize>, body: Bytes) -> Response {
    let req: HelmRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json(message(
                400,
                format!(
                    "body must be {{\"action\":\"install\"|\"upgrade\",\"webapps\":bool,\"createSchema\":bool}}: {e}"
                ),
            ));
        }
    };
    match lab.helm(n, req).await {
        Ok(()) => match lab.platform(n) {
            Ok(p) => json((200, p)),
            Err(e) => lab_error(e),
        },
        Err(e) => lab_error(e),
    }
}

async fn control_stuck_pod(State(lab): State<LabHandle>, Path((n, ordinal)): Path<(usize, u32)>) -> Response {
    match lab.stick_pod(n, ordinal) {
        Ok(()) => json((200, json!({"region": n, "pod": format!("camunda-zeebe-{ordinal}"), "stuck": true}))),
        Err(e) => lab_error(e),
    }
}

async fn control_platform(State(lab): State<LabHandle>, Path(n): Path<usize>) -> Response {
    match lab.platform(n) {
        Ok(p) => json((200, p)),
        Err(e) => lab_error(e),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    durations: Option<LabDurations>,
    /// Absent: unchanged; `null`: faults off.
    #[serde(default, with = "double_option")]
    faults: Option<Option<FaultConfig>>,
    #[serde(default)]
    stuck_adds: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

async fn control_settings(State(lab): State<LabHandle>, body: Bytes) -> Response {
    let s: Settings = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return json(message(400, format!("invalid settings: {e}"))),
    };
    if let Some(d) = s.durations {
        lab.set_durations(d);
    }
    if let Some(f) = s.faults {
        lab.set_faults(f);
    }
    if let Some(st) = s.stuck_adds {
        lab.stuck_adds(st);
    }
    let w = lab.shared.world();
    let faults = lab.shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    json((200, json!({"durations": w.opts.durations, "faults": faults, "stuckAdds": w.opts.stuck_adds})))
}
