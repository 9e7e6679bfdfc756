//! The Kubernetes API of a lab region: the subset c8dr (kube-rs) and `kubectl get` use, answered
//! as the API server answers (discovery, lists with `metadata.resourceVersion`, `Status` errors).
//! Objects are built by [`super::k8s_objects`] from the world.
//!
//! Not modelled: watches, field selectors, set-based label selectors, server-side Table output
//! (`Accept: ...;as=Table` gets the plain list; kubectl falls back to its own printer), writes
//! other than pod and PVC deletion.
use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::k8s_objects as obj;
use super::{Shared, namespace};

#[derive(Clone)]
struct KubeApi {
    shared: Arc<Shared>,
    region: usize,
}

impl KubeApi {
    fn ns(&self) -> String {
        namespace(self.region)
    }
}

pub(crate) fn router(shared: Arc<Shared>, region: usize) -> Router {
    let ns = "/api/v1/namespaces/{ns}";
    Router::new()
        .route("/version", get(version))
        .route("/api", get(api_versions))
        .route("/api/v1", get(core_resources))
        .route("/apis", get(api_groups))
        .route("/apis/apps/v1", get(apps_resources))
        .route("/api/v1/namespaces", get(list_namespaces))
        .route(ns, get(get_namespace))
        .route(&format!("{ns}/pods"), get(list_pods))
        .route(&format!("{ns}/pods/{{name}}"), get(get_pod).delete(delete_pod))
        .route(&format!("{ns}/pods/{{name}}/log"), get(pod_log))
        .route(&format!("{ns}/pods/{{name}}/portforward"), get(port_forward).post(port_forward))
        .route("/apis/apps/v1/namespaces/{ns}/statefulsets", get(list_statefulsets))
        .route("/apis/apps/v1/namespaces/{ns}/statefulsets/{name}", get(get_statefulset))
        .route(&format!("{ns}/persistentvolumeclaims"), get(list_pvcs).delete(delete_pvcs))
        .route(&format!("{ns}/persistentvolumeclaims/{{name}}"), get(get_pvc).delete(delete_pvc))
        .route(&format!("{ns}/secrets"), get(list_secrets))
        .route(&format!("{ns}/secrets/{{name}}"), get(get_secret))
        .route(&format!("{ns}/configmaps"), get(list_configmaps))
        .route(&format!("{ns}/configmaps/{{name}}"), get(get_configmap))
        .route(&format!("{ns}/services/{{name}}"), get(get_service))
        .route(&format!("{ns}/endpoints/{{name}}"), get(get_endpoints))
        .fallback(|| async { status(404, "NotFound", "the server could not find the requested resource", None) })
        .with_state(KubeApi { shared, region })
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// A `Status` failure as the API server sends it.
fn status(code: u16, reason: &str, message: &str, details: Option<(&str, &str)>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some((kind, name)) = details {
        body["details"] = json!({"name": name, "kind": kind});
    }
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn not_found(kind: &str, name: &str) -> Response {
    status(404, "NotFound", &format!("{kind} \"{name}\" not found"), Some((kind, name)))
}

fn query(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

fn param(raw: &Option<String>, key: &str) -> Option<String> {
    query(raw).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A list filtered by the `labelSelector` query parameter.
fn list(kind: &str, api_version: &str, items: Vec<Value>, raw: &Option<String>, rv: i64) -> Response {
    let items = match filter(items, raw) {
        Ok(i) => i,
        Err(e) => return status(400, "BadRequest", &e, None),
    };
    ok(
        json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    )
}

/// Items matching the `labelSelector`; an unsupported selector is the message of a 400.
fn filter(items: Vec<Value>, raw: &Option<String>) -> Result<Vec<Value>, String> {
    let Some(sel) = param(raw, "labelSelector") else {
        return Ok(items);
    };
    let mut out = Vec::new();
    for i in items {
        match obj::selector_matches(&sel, &i["metadata"]["labels"]) {
            Ok(true) => out.push(i),
            Ok(false) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn rv(api: &KubeApi) -> i64 {
    (api.shared.now_ms().max(0)) % 1_000_000_000
}

/// The namespace in the path is the region's; any other holds nothing.
fn ours(api: &KubeApi, ns: &str) -> bool {
    ns == api.ns()
}

// ---- discovery -----------------------------------------------------------------------------

async fn version() -> Response {
    ok(json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "c8dr-lab",
        "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
        "compiler": "gc", "platform": "linux/amd64",
    }))
}

async fn api_versions(State(api): State<KubeApi>) -> Response {
    let port = api.shared.kube_ports[api.region];
    ok(json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}]}))
}

async fn api_groups() -> Response {
    let v = json!({"groupVersion": "apps/v1", "version": "v1"});
    ok(json!({"kind": "APIGroupList", "apiVersion": "v1",
        "groups": [{"name": "apps", "versions": [v.clone()], "preferredVersion": v}]}))
}

fn resource(name: &str, singular: &str, kind: &str, verbs: &[&str], short: &[&str]) -> Value {
    let mut r = json!({"name": name, "singularName": singular, "namespaced": name != "namespaces",
        "kind": kind, "verbs": verbs});
    if !short.is_empty() {
        r["shortNames"] = json!(short);
    }
    r
}

async fn core_resources() -> Response {
    let read = ["get", "list"];
    ok(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        resource("namespaces", "namespace", "Namespace", &read, &["ns"]),
        resource("pods", "pod", "Pod", &["delete", "get", "list"], &["po"]),
        resource("pods/log", "", "Pod", &["get"], &[]),
        resource("pods/portforward", "", "PodPortForwardOptions", &["create", "get"], &[]),
        resource("persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim",
            &["delete", "deletecollection", "get", "list"], &["pvc"]),
        resource("secrets", "secret", "Secret", &read, &[]),
        resource("configmaps", "configmap", "ConfigMap", &read, &["cm"]),
        resource("services", "service", "Service", &["get"], &["svc"]),
        resource("endpoints", "endpoints", "Endpoints", &["get"], &["ep"]),
    ]}))
}

async fn apps_resources() -> Response {
    ok(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        resource("statefulsets", "statefulset", "StatefulSet", &["get", "list"], &["sts"]),
    ]}))
}

// ---- namespaces ------------------------------------------------------------------------------

async fn list_namespaces(State(api): State<KubeApi>, RawQuery(q): RawQuery) -> Response {
    let n = obj::namespace(&api.ns(), &api.shared.namespace_labels, api.shared.started_ms);
    list("NamespaceList", "v1", vec![n], &q, rv(&api))
}

async fn get_namespace(State(api): State<KubeApi>, Path(ns): Path<String>) -> Response {
    if !ours(&api, &ns) {
        return not_found("namespaces", &ns);
    }
    ok(obj::namespace(&ns, &api.shared.namespace_labels, api.shared.started_ms))
}

// ---- pods ------------------------------------------------------------------------------------

fn all_pods(api: &KubeApi, ns: &str) -> Vec<Value> {
    if !ours(api, ns) {
        return Vec::new();
    }
    let w = api.shared.world();
    obj::pods(&w, api.region, ns)
}

fn find_pod(api: &KubeApi, ns: &str, name: &str) -> Option<Value> {
    all_pods(api, ns).into_iter().find(|p| p["metadata"]["name"] == name)
}

/// The ordinal of a zeebe pod name of this region's StatefulSet.
fn ordinal(name: &str) -> Option<u32> {
    name.strip_prefix("camunda-zeebe-")?.parse().ok()
}

async fn list_pods(State(api): State<KubeApi>, Path(ns): Path<String>, RawQuery(q): RawQuery) -> Response {
    let items = all_pods(&api, &ns);
    list("PodList", "v1", items, &q, rv(&api))
}

async fn get_pod(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    find_pod(&api, &ns, &name).map(ok).unwrap_or_else(|| not_found("pods", &name))
}

/// Deleting a zeebe pod: the StatefulSet recreates it (not Ready for `pod_restart_ms`).
async fn delete_pod(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    let Some(pod) = find_pod(&api, &ns, &name) else {
        return not_found("pods", &name);
    };
    let Some(o) = ordinal(&name) else {
        return status(
            403,
            "Forbidden",
            &format!("pods \"{name}\": the lab only restarts zeebe pods"),
            Some(("pods", &name)),
        );
    };
    let now = api.shared.now_ms();
    api.shared.world().delete_pod(api.region, o, now);
    tracing::info!(region = api.region, pod = %name, "lab: pod deleted (restarting)");
    ok(pod)
}

async fn pod_log(
    State(api): State<KubeApi>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    if find_pod(&api, &ns, &name).is_none() {
        return not_found("pods", &name);
    }
    let w = api.shared.world();
    let text = match ordinal(&name).and_then(|o| w.regions[api.region].pods.get(o as usize)) {
        Some(p) => {
            if let Some(c) = param(&q, "container")
                && c != obj::CONTAINER
            {
                return status(400, "BadRequest", &format!("container {c} is not valid for pod {name}"), None);
            }
            obj::pod_log(p, &ns, w.pod_clock)
        }
        None => {
            format!("{}  INFO  started Elasticsearch\n", super::cluster::fmt_ms(w.regions[api.region].installed_ms))
        }
    };
    let text = match param(&q, "tailLines").and_then(|t| t.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

/// `pods/{name}/portforward`: a Ready pod's ports forwarded to the region's servers.
async fn port_forward(
    State(api): State<KubeApi>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(pod) = find_pod(&api, &ns, &name) else {
        return not_found("pods", &name);
    };
    let ready = pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    if !ready {
        return status(
            400,
            "BadRequest",
            &format!("pod {name} is not ready: the lab forwards only to Ready pods"),
            None,
        );
    }
    let mut ports = Vec::new();
    for (k, v) in query(&q) {
        if k == "ports" {
            for p in v.split(',').filter(|p| !p.is_empty()) {
                match p.trim().parse::<u16>() {
                    Ok(p) if p > 0 => ports.push(p),
                    _ => return status(400, "BadRequest", &format!("invalid port {p:?}"), None),
                }
            }
        }
    }
    if ports.is_empty() {
        return status(400, "BadRequest", "at least one port must be specified", None);
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return status(400, "BadRequest", &format!("upgrade request required: {e}"), None),
    };
    let p = api.shared.ports[api.region];
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let targets: BTreeMap<u16, SocketAddr> = if ordinal(&name).is_some() {
        BTreeMap::from([(9600, addr(p[0])), (8080, addr(p[1]))])
    } else {
        BTreeMap::from([(9200, addr(p[2]))])
    };
    super::portforward::serve(ws, ports, targets)
}

// ---- StatefulSets, PVCs, Secrets, ConfigMaps, Services, Endpoints ---------------------------

async fn list_statefulsets(State(api): State<KubeApi>, Path(ns): Path<String>, RawQuery(q): RawQuery) -> Response {
    let items = if ours(&api, &ns) {
        obj::statefulset(&api.shared.world(), api.region, &ns).into_iter().collect()
    } else {
        vec![]
    };
    list("StatefulSetList", "apps/v1", items, &q, rv(&api))
}

async fn get_statefulset(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    let s = if ours(&api, &ns) && name == obj::STATEFULSET {
        obj::statefulset(&api.shared.world(), api.region, &ns)
    } else {
        None
    };
    s.map(ok).unwrap_or_else(|| not_found("statefulsets.apps", &name))
}

fn all_pvcs(api: &KubeApi, ns: &str) -> Vec<Value> {
    if !ours(api, ns) {
        return Vec::new();
    }
    obj::pvcs(&api.shared.world(), api.region, ns)
}

async fn list_pvcs(State(api): State<KubeApi>, Path(ns): Path<String>, RawQuery(q): RawQuery) -> Response {
    let items = all_pvcs(&api, &ns);
    list("PersistentVolumeClaimList", "v1", items, &q, rv(&api))
}

async fn get_pvc(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    all_pvcs(&api, &ns)
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .map(ok)
        .unwrap_or_else(|| not_found("persistentvolumeclaims", &name))
}

fn remove_pvcs(api: &KubeApi, items: &[Value]) {
    let names: Vec<String> = items.iter().filter_map(|p| p["metadata"]["name"].as_str().map(String::from)).collect();
    let mut w = api.shared.world();
    let gone = w.regions[api.region].delete_pvcs(&names);
    tracing::info!(region = api.region, pvcs = ?gone, "lab: PVCs deleted");
}

async fn delete_pvc(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    let Some(pvc) = all_pvcs(&api, &ns).into_iter().find(|p| p["metadata"]["name"] == name) else {
        return not_found("persistentvolumeclaims", &name);
    };
    remove_pvcs(&api, std::slice::from_ref(&pvc));
    ok(pvc)
}

/// `deletecollection`: every PVC the label selector matches; answers the deleted list.
async fn delete_pvcs(State(api): State<KubeApi>, Path(ns): Path<String>, RawQuery(q): RawQuery) -> Response {
    let items = match filter(all_pvcs(&api, &ns), &q) {
        Ok(i) => i,
        Err(e) => return status(400, "BadRequest", &e, None),
    };
    remove_pvcs(&api, &items);
    ok(
        json!({"kind": "PersistentVolumeClaimList", "apiVersion": "v1", "metadata": {"resourceVersion": rv(&api).to_string()}, "items": items}),
    )
}

fn all_secrets(api: &KubeApi, ns: &str) -> Vec<Value> {
    if !ours(api, ns) {
        return Vec::new();
    }
    obj::secrets(&api.shared.world(), api.region, ns)
}

async fn list_secrets(State(api): State<KubeApi>, Path(ns): Path<String>, RawQuery(q): RawQuery) -> Response {
    let items = all_secrets(&api, &ns);
    list("SecretList", "v1", items, &q, rv(&api))
}

async fn get_secret(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    all_secrets(&api, &ns)
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .map(ok)
        .unwrap_or_else(|| not_found("secrets", &name))
}

async fn list_configmaps(State(api): State<KubeApi>, Path(ns): Path<String>, RawQuery(q): RawQuery) -> Response {
    let items = if ours(&api, &ns) {
        obj::configmap(&api.shared.world(), api.region, &ns).into_iter().collect()
    } else {
        vec![]
    };
    list("ConfigMapList", "v1", items, &q, rv(&api))
}

async fn get_configmap(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    let c = if ours(&api, &ns) && name == obj::CONFIGMAP {
        obj::configmap(&api.shared.world(), api.region, &ns)
    } else {
        None
    };
    c.map(ok).unwrap_or_else(|| not_found("configmaps", &name))
}

async fn get_service(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    let s = if ours(&api, &ns) { obj::service(&api.shared.world(), api.region, &ns, &name) } else { None };
    s.map(ok).unwrap_or_else(|| not_found("services", &name))
}

async fn get_endpoints(State(api): State<KubeApi>, Path((ns, name)): Path<(String, String)>) -> Response {
    let e = if ours(&api, &ns) { obj::endpoints(&api.shared.world(), api.region, &ns, &name) } else { None };
    e.map(ok).unwrap_or_else(|| not_found("endpoints", &name))
}
