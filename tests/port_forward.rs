//! `access = "port-forward"`: the target clients reach a region through a short-lived
//! Kubernetes port-forward per call. A small Kubernetes API on 127.0.0.1 (a Service, its pods,
//! the `pods/portforward` WebSocket served by the lab's `portforward::serve`) forwards to a tiny
//! HTTP server; kube-rs's own client speaks to it through a kubeconfig file.
#![cfg(feature = "rehearsal")]
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use c8dr::config::TargetConfig;
use c8dr::platform::k8s::forward::Forwarder;
use c8dr::region_api::{ErrorKind, HttpAuthResolved, ManagementClient, RestClient, Target};
use c8dr::rehearsal::lab::portforward;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NS: &str = "ns0";
const MANAGEMENT_PORT: u16 = 9600;
/// The gateway Service's port 8080 has targetPort "rest", the container port 18080.
const REST_CONTAINER_PORT: u16 = 18080;
/// The gateway Service's port 26500 goes to a container port nothing listens on.
const DEAD_PORT: u16 = 26500;

/// What the fake cluster saw.
#[derive(Default)]
struct Seen {
    /// (pod, ports) of every port-forward opened.
    forwards: Vec<(String, Vec<u16>)>,
    /// Host header of every request the HTTP server answered.
    hosts: Vec<String>,
}

struct Cluster {
    http: SocketAddr,
    seen: Mutex<Seen>,
}

fn pod(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "zeebe"}},
        "spec": {"containers": [{"name": "zeebe", "image": "camunda/camunda:8.8", "ports": [
            {"name": "management", "containerPort": MANAGEMENT_PORT},
            {"name": "rest", "containerPort": REST_CONTAINER_PORT},
            {"name": "gateway", "containerPort": DEAD_PORT}
        ]}]},
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}
        ]}
    })
}

fn not_found(kind: &str, name: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound", "code": 404});
    (http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn service(Path((ns, name)): Path<(String, String)>) -> Response {
    assert_eq!(ns, NS);
    let (selector, ports) = match name.as_str() {
        "camunda-zeebe-gateway" => (
            json!({"app": "zeebe"}),
            json!([
                {"name": "http", "port": 8080, "targetPort": "rest", "protocol": "TCP"},
                {"name": "management", "port": 9600, "targetPort": 9600, "protocol": "TCP"},
                {"name": "gateway", "port": 26500, "targetPort": 26500, "protocol": "TCP"}
            ]),
        ),
        "camunda-elasticsearch" => (json!({"app": "elasticsearch"}), json!([{"name": "http", "port": 9200}])),
        _ => return not_found("services", &name),
    };
    axum::Json(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": selector, "ports": ports}
    }))
    .into_response()
}

async fn pods(Path(ns): Path<String>, RawQuery(query): RawQuery) -> Response {
    assert_eq!(ns, NS);
    let query: HashMap<String, String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // The not-Ready pod sorts first: choosing by name alone would pick it.
    let items = match query.get("labelSelector").map(String::as_str) {
        Some("app=zeebe") => vec![pod("camunda-zeebe-0", false), pod("camunda-zeebe-1", true)],
        _ => vec![],
    };
    axum::Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items}))
        .into_response()
}

async fn port_forward(
    State(cluster): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    assert_eq!(ns, NS);
    let ports: Vec<u16> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "ports")
        .flat_map(|(_, v)| v.split(',').map(|p| p.parse::<u16>().unwrap()).collect::<Vec<_>>())
        .collect();
    cluster.seen.lock().unwrap().forwards.push((name, ports.clone()));
    let targets = BTreeMap::from([(MANAGEMENT_PORT, cluster.http), (REST_CONTAINER_PORT, cluster.http)]);
    portforward::serve(ws, ports, targets)
}

/// The HTTP server behind the pods: answers every path with JSON and records the Host header.
async fn answer(State(cluster): State<Arc<Cluster>>, request: Request) -> Response {
    let host = request.headers().get(http::header::HOST).map(|h| h.to_str().unwrap().to_string()).unwrap_or_default();
    cluster.seen.lock().unwrap().hosts.push(host);
    let body = match request.uri().path() {
        "/actuator/cluster" => fixture("contract_cluster_get.json"),
        "/v2/topology" => fixture("contract_rest_topology.json"),
        other => panic!("unexpected path {other}"),
    };
    ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Fixture {
    cluster: Arc<Cluster>,
    kubeconfig: tempfile::NamedTempFile,
}

impl Fixture {
    fn forwards(&self) -> Vec<(String, Vec<u16>)> {
        self.cluster.seen.lock().unwrap().forwards.clone()
    }

    fn hosts(&self) -> Vec<String> {
        self.cluster.seen.lock().unwrap().hosts.clone()
    }

    fn target(&self) -> Target {
        let kubeconfig = self.kubeconfig.path().display();
        let region = |name: &str| {
            format!(
                "[[regions]]\nname = \"{name}\"\nnamespace = \"{NS}\"\nkube_context = \"{name}\"\n\
                 kubeconfig = \"{kubeconfig}\"\naccess = \"port-forward\"\nmanagement_url = \"\"\n\
                 rest_url = \"http://camunda-zeebe-gateway.{NS}.svc:8080\"\nelasticsearch_url = \"\"\n"
            )
        };
        let config: TargetConfig = toml::from_str(&format!("{}{}", region("region0"), region("region1"))).unwrap();
        Target::from_config("lab", &config).unwrap()
    }

    fn forwarder(&self) -> Arc<Forwarder> {
        let config: TargetConfig = toml::from_str(&format!(
            "[[regions]]\nname = \"region0\"\nnamespace = \"{NS}\"\nkube_context = \"region0\"\n\
             kubeconfig = \"{}\"\naccess = \"port-forward\"\nmanagement_url = \"\"\nrest_url = \"\"\n\
             elasticsearch_url = \"\"\n",
            self.kubeconfig.path().display()
        ))
        .unwrap();
        Arc::new(Forwarder::new("lab", 0, &config.regions[0], Duration::from_secs(10)))
    }
}

async fn bind(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn start() -> Fixture {
    // The HTTP server needs the shared state and the state needs its address: bind it first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let cluster = Arc::new(Cluster { http, seen: Mutex::new(Seen::default()) });
    let app = Router::new().fallback(answer).with_state(cluster.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let api = Router::new()
        .route("/api/v1/namespaces/{ns}/services/{name}", get(service))
        .route("/api/v1/namespaces/{ns}/pods", get(pods))
        .route("/api/v1/namespaces/{ns}/pods/{name}/portforward", get(port_forward))
        .with_state(cluster.clone());
    let api = bind(api).await;
    let mut kubeconfig = tempfile::NamedTempFile::new().unwrap();
    let contexts: String = ["region0", "region1"]
        .iter()
        .map(|c| format!("- name: {c}\n  context:\n    cluster: lab\n    user: lab\n    namespace: {NS}\n"))
        .collect();
    std::io::Write::write_all(
        &mut kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: http://{api}\n\
             contexts:\n{contexts}current-context: region0\nusers:\n- name: lab\n  user: {{}}\n"
        )
        .as_bytes(),
    )
    .unwrap();
    Fixture { cluster, kubeconfig }
}

#[tokio::test]
async fn each_management_call_opens_one_forward_to_the_ready_pod() {
    let fx = start().await;
    let target = fx.target();
    let management = &target.region(0).management;
    // An empty management_url in port-forward mode is the chart's gateway Service, port 9600.
    assert_eq!(management.base_url(), "http://camunda-zeebe-gateway:9600/");
    let topology = management.get_cluster().await.unwrap();
    assert!(!topology.brokers.is_empty());
    assert_eq!(fx.forwards(), vec![("camunda-zeebe-1".to_string(), vec![MANAGEMENT_PORT])]);
    management.get_cluster().await.unwrap();
    let forwards = fx.forwards();
    assert_eq!(forwards.len(), 2, "one forward per call: {forwards:?}");
    assert!(forwards.iter().all(|(pod, _)| pod == "camunda-zeebe-1"), "never the not-Ready pod: {forwards:?}");
    assert_eq!(fx.hosts(), vec!["camunda-zeebe-gateway:9600".to_string(); 2]);
}

#[tokio::test]
async fn a_named_target_port_resolves_to_the_container_port() {
    let fx = start().await;
    let target = fx.target();
    let topology = target.region(1).rest.topology().await.unwrap();
    assert!(!topology.brokers.is_empty());
    // Service port 8080, targetPort "rest" = container port 18080 of the Ready pod.
    assert_eq!(fx.forwards(), vec![("camunda-zeebe-1".to_string(), vec![REST_CONTAINER_PORT])]);
    assert_eq!(fx.hosts(), vec![format!("camunda-zeebe-gateway.{NS}.svc:8080")]);
}

#[tokio::test]
async fn a_service_without_ready_pods_is_a_transient_error_naming_it() {
    let fx = start().await;
    let target = fx.target();
    let es = &target.region(0).elasticsearch;
    assert_eq!(es.base_url(), "http://camunda-elasticsearch:9200/");
    let err = es.cluster_health().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.kind, ErrorKind::Unreachable);
    let text = err.to_string();
    assert!(
        text.contains("port-forward to service camunda-elasticsearch in namespace ns0 failed")
            && text.contains("no Ready pod"),
        "{text}"
    );
    assert!(fx.forwards().is_empty());
}

#[tokio::test]
async fn the_pods_refusal_is_a_transient_error_naming_the_pod() {
    let fx = start().await;
    let forwarder = fx.forwarder();
    let client = RestClient::new("http://camunda-zeebe-gateway:26500", HttpAuthResolved::None, Duration::from_secs(10))
        .unwrap()
        .with_port_forward(forwarder.clone())
        .unwrap();
    let err = client.topology().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("port-forward to service camunda-zeebe-gateway in namespace ns0 failed")
            && text.contains("camunda-zeebe-1")
            && text.contains("does not listen on port 26500"),
        "{text}"
    );
    assert_eq!(forwarder.open_tunnels(), 0);
}

#[tokio::test]
async fn the_tunnel_is_closed_after_each_call() {
    let fx = start().await;
    let forwarder = fx.forwarder();
    let management = ManagementClient::new("http://camunda-zeebe-gateway:9600", Duration::from_secs(10))
        .unwrap()
        .with_port_forward(forwarder.clone())
        .unwrap();
    management.get_cluster().await.unwrap();
    assert_eq!(forwarder.open_tunnels(), 0, "the call's tunnel is closed when it returns");

    // The tunnel itself: usable while open, its local port refused once closed.
    let tunnel = forwarder.open("camunda-zeebe-gateway", 9600).await.unwrap();
    assert_eq!(tunnel.pod(), "camunda-zeebe-1");
    let local = tunnel.local_addr();
    assert!(local.ip().is_loopback());
    assert_eq!(forwarder.open_tunnels(), 1);
    let answer = raw_get(local, "/actuator/cluster").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tunnel.close().await;
    assert_eq!(forwarder.open_tunnels(), 0);
    let refused = tokio::net::TcpStream::connect(local).await;
    assert!(refused.is_err(), "the local port is still open after close");
}

#[tokio::test]
async fn an_unknown_service_or_port_names_the_fix() {
    let fx = start().await;
    let forwarder = fx.forwarder();
    let err = forwarder.open("camunda-zeebe-gateway", 1234).await.unwrap_err();
    assert!(!err.is_transient(), "a wrong port in the URL is configuration: {err}");
    assert!(err.to_string().contains("no port 1234 (it has 8080, 9600, 26500)"), "{err}");
    let err = forwarder.open("nosuch", 80).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("service nosuch in namespace ns0"), "{err}");
}

/// One HTTP/1.1 request on a fresh connection, the whole answer as text.
async fn raw_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: camunda-zeebe-gateway:9600\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_port_forward_url_must_name_a_service() {
    let config: TargetConfig = toml::from_str(
        "[[regions]]\nname = \"r0\"\naccess = \"port-forward\"\nmanagement_url = \"http://10.0.0.1:9600\"\n\
         rest_url = \"\"\nelasticsearch_url = \"\"\n\
         [[regions]]\nname = \"r1\"\nmanagement_url = \"http://mgmt:9600\"\nrest_url = \"http://rest:8080\"\n\
         elasticsearch_url = \"http://es:9200\"\n",
    )
    .unwrap();
    let err = Target::from_config("lab", &config).unwrap_err();
    assert_eq!(err.field(), "targets.lab.regions[0].management_url");
    assert!(err.to_string().contains("the URL names a Service and its port"), "{err}");
    // Direct access keeps the URLs as configured; port-forward fills in the chart's Services.
    let config = TargetConfig { regions: vec![config.regions[1].clone(), config.regions[1].clone()], ..config.clone() };
    let target = Target::from_config("lab", &config).unwrap();
    assert_eq!(target.region(0).management.base_url(), "http://mgmt:9600/");
}
