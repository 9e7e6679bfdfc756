//! The target clients against a tiny axum server on 127.0.0.1:0: the requests they send
//! (method, path, query, body, auth) and how they map answers and failures to `TargetError`.
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use c8dr::config::{HttpAuth, RegionConfig, SecretRef, TargetConfig};
use c8dr::region_api::models::elasticsearch::{HealthStatus, SnapshotState};
use c8dr::region_api::models::management::{ClusterPatch, ExporterStatusKind};
use c8dr::region_api::{
    Api, ChangeVerdict, ElasticsearchClient, ErrorKind, HttpAuthResolved, ManagementClient, RestClient, Target,
    region_of_broker,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply { status, body: body.into(), delay: Duration::ZERO }
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Default)]
struct Mock {
    routes: Mutex<HashMap<(String, String), Reply>>,
    seen: Mutex<Vec<Seen>>,
}

impl Mock {
    fn route(&self, method: &str, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert((method.to_string(), path.to_string()), reply);
    }
    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("no request seen")
    }
}

async fn handle(State(mock): State<Arc<Mock>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let header =
        |name: http::header::HeaderName| parts.headers.get(name).map(|v| v.to_str().unwrap_or_default().to_string());
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        authorization: header(http::header::AUTHORIZATION),
        content_type: header(http::header::CONTENT_TYPE),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let found = mock.routes.lock().unwrap().get(&(seen.method.clone(), seen.path.clone())).cloned();
    mock.seen.lock().unwrap().push(seen);
    let reply = found.unwrap_or_else(|| reply(404, r#"{"message":"no such route in the test server"}"#));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .body(Body::from(reply.body))
        .unwrap()
}

async fn start() -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock::default());
    let app = Router::new().fallback(handle).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), mock)
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn management_requests_and_answers() {
    let (base, mock) = start().await;
    let m = ManagementClient::new(&base, T).unwrap();

    mock.route("GET", "/actuator/cluster", reply(200, fixture("contract_cluster_get.json")));
    let t = m.get_cluster().await.unwrap();
    assert_eq!(t.pending_change.unwrap().id, 6);

    mock.route("PATCH", "/actuator/cluster", reply(202, fixture("contract_cluster_patch_202.json")));
    let p = m.patch_cluster(&ClusterPatch::remove_brokers(&[1, 3, 5, 7]), false, true).await.unwrap();
    assert_eq!(p.change_id, 2);
    let seen = mock.last();
    assert_eq!(seen.query, "dryRun=false&force=true");
    assert_eq!(seen.body, r#"{"brokers":{"remove":[1,3,5,7]}}"#);
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));

    m.patch_cluster(&ClusterPatch::add_brokers(&[1, 3], Some(4)), true, false).await.unwrap();
    let seen = mock.last();
    assert_eq!(seen.query, "dryRun=true&force=false");
    assert_eq!(seen.body, r#"{"brokers":{"add":[1,3]},"partitions":{"replicationFactor":4}}"#);

    let (verdict, topology) = m.change_verdict(6).await.unwrap();
    assert_eq!(verdict, ChangeVerdict::InProgress { completed: 1, pending: 1 });
    assert_eq!(topology.version, 6);
    assert_eq!(m.change_verdict(4).await.unwrap().0, ChangeVerdict::Completed);

    mock.route("DELETE", "/actuator/cluster/changes/7", reply(200, fixture("contract_cluster_get.json")));
    m.cancel_change(7).await.unwrap();

    mock.route("GET", "/actuator/exporters", reply(200, fixture("contract_exporters_list.json")));
    let l = m.list_exporters().await.unwrap();
    assert_eq!(l[1].status, ExporterStatusKind::Disabled);

    mock.route(
        "POST",
        "/actuator/exporters/camundaregion1/disable",
        reply(202, fixture("contract_exporter_disable_202.json")),
    );
    assert_eq!(m.disable_exporter("camundaregion1").await.unwrap().change_id, 5);
    assert_eq!(mock.last().body, "");

    mock.route(
        "POST",
        "/actuator/exporters/camundaregion1/enable",
        reply(202, fixture("contract_exporter_disable_202.json")),
    );
    m.enable_exporter("camundaregion1", Some("camundaregion0")).await.unwrap();
    let seen = mock.last();
    assert_eq!(seen.body, r#"{"initializeFrom":"camundaregion0"}"#);
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(seen.authorization, None, "the management API is unauthenticated");
    m.enable_exporter("camundaregion1", None).await.unwrap();
    assert_eq!(mock.last().body, "");
}

#[tokio::test]
async fn pause_and_resume_judge_the_body_status() {
    let (base, mock) = start().await;
    let m = ManagementClient::new(&base, T).unwrap();

    mock.route("POST", "/actuator/exporting/pause", reply(204, ""));
    m.pause_exporting(false).await.unwrap();
    assert_eq!(mock.last().query, "");
    m.pause_exporting(true).await.unwrap();
    assert_eq!(mock.last().query, "soft=true");

    mock.route("POST", "/actuator/exporting/pause", reply(200, fixture("contract_pause_ok.json")));
    m.pause_exporting(false).await.unwrap();

    mock.route("POST", "/actuator/exporting/pause", reply(200, fixture("contract_pause_failed.json")));
    let e = m.pause_exporting(false).await.unwrap_err();
    assert_eq!((e.kind, e.status, e.api), (ErrorKind::Server, Some(500), Api::Management));
    assert!(e.message.starts_with("Expected 3 members of partition 1 but found 2"), "{e}");
    assert!(e.is_transient());

    mock.route("POST", "/actuator/exporting/resume", reply(200, fixture("contract_pause_ok.json")));
    m.resume_exporting().await.unwrap();
    mock.route("POST", "/actuator/exporting/resume", reply(200, "not json"));
    assert_eq!(m.resume_exporting().await.unwrap_err().kind, ErrorKind::Malformed);
    mock.route("POST", "/actuator/exporting/resume", reply(500, r#"{"message":"boom"}"#));
    let e = m.resume_exporting().await.unwrap_err();
    assert_eq!((e.kind, e.status, e.message.as_str()), (ErrorKind::Server, Some(500), "boom"));
}

#[tokio::test]
async fn http_errors_map_to_kinds_with_the_server_message() {
    let (base, mock) = start().await;
    let m = ManagementClient::new(&base, T).unwrap();
    let cases = [
        (400, r#"{"message":"Cannot force add brokers"}"#, ErrorKind::InvalidRequest, "Cannot force add brokers"),
        (404, r#"{"message":"no exporter x"}"#, ErrorKind::NotFound, "no exporter x"),
        (
            409,
            fixture("contract_management_409.json").leak(),
            ErrorKind::Conflict,
            "Cannot start a new topology change",
        ),
        (500, r#"{"message":"internal"}"#, ErrorKind::Server, "internal"),
        (502, "", ErrorKind::Server, "Bad Gateway"),
        (504, r#"{"message":"Request timed out"}"#, ErrorKind::Server, "Request timed out"),
        (401, "", ErrorKind::Unauthorized, "Unauthorized"),
        (403, "", ErrorKind::Unauthorized, "Forbidden"),
    ];
    for (status, body, kind, message) in cases {
        mock.route("PATCH", "/actuator/cluster", reply(status, body));
        let e = m.patch_cluster(&ClusterPatch::add_brokers(&[1], None), false, true).await.unwrap_err();
        assert_eq!((e.kind, e.status), (kind, Some(status)), "{e}");
        assert!(e.message.starts_with(message), "{status}: {e}");
        assert_eq!(e.method, "PATCH");
        assert!(e.url.ends_with("/actuator/cluster?dryRun=false&force=true"), "{}", e.url);
    }
    mock.route("PATCH", "/actuator/cluster", reply(409, r#"{"message":"busy"}"#));
    assert!(m.patch_cluster(&ClusterPatch::default(), false, false).await.unwrap_err().is_transient());

    // A 2xx body that does not parse is Malformed.
    mock.route("GET", "/actuator/cluster", reply(200, "<html>proxy login</html>"));
    let e = m.get_cluster().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.message.contains("<html>proxy login</html>"), "{e}");
    mock.route("GET", "/actuator/exporters", reply(200, r#"{"not":"a list"}"#));
    assert_eq!(m.list_exporters().await.unwrap_err().kind, ErrorKind::Malformed);

    // REST problem detail.
    let r = RestClient::new(&base, HttpAuthResolved::None, T).unwrap();
    mock.route(
        "POST",
        "/v2/process-instances",
        reply(404, r#"{"type":"about:blank","title":"NOT_FOUND","status":404,"detail":"Expected to find process definition with process ID 'x', but none found"}"#),
    );
    let e = r.create_process_instance("x", serde_json::Value::Null).await.unwrap_err();
    assert_eq!((e.api, e.kind), (Api::Rest, ErrorKind::NotFound));
    assert_eq!(e.message, "NOT_FOUND: Expected to find process definition with process ID 'x', but none found");
}

#[tokio::test]
async fn elasticsearch_error_bodies_keep_the_type() {
    let (base, mock) = start().await;
    let es = ElasticsearchClient::new(&base, HttpAuthResolved::None, T).unwrap();

    mock.route(
        "PUT",
        "/_snapshot/camunda_backup/failback",
        reply(400, fixture("contract_es_error_snapshot_name.json")),
    );
    let e = es.create_snapshot("camunda_backup", "failback", true).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::InvalidRequest, Some(400)));
    assert!(e.is_es_type("invalid_snapshot_name_exception"));
    assert!(e.message.contains("snapshot with the same name already exists"));
    assert!(!e.is_transient());

    mock.route(
        "GET",
        "/_snapshot/camunda_backup/failback",
        reply(404, fixture("contract_es_error_snapshot_missing.json")),
    );
    let e = es.get_snapshot("camunda_backup", "failback").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.is_es_type("snapshot_missing_exception"));
    assert_eq!(e.message, "[camunda_backup:failback] is missing");

    mock.route(
        "GET",
        "/_snapshot/camunda_backup/_all",
        reply(404, fixture("contract_es_error_repository_missing.json")),
    );
    let e = es.list_snapshots("camunda_backup").await.unwrap_err();
    assert!(e.is_not_found() && e.is_es_type("repository_missing_exception"));

    mock.route(
        "POST",
        "/_snapshot/camunda_backup/failback/_restore",
        reply(500, fixture("contract_es_error_restore_open_index.json")),
    );
    let e = es.restore_snapshot("camunda_backup", "failback", true, None).await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Server, Some(500)));
    assert!(e.is_es_type("snapshot_restore_exception"));
    assert!(e.message.contains("an open index with same name already exists"));
    assert!(e.to_string().contains("[snapshot_restore_exception]"), "{e}");
}

#[tokio::test]
async fn elasticsearch_requests_and_answers() {
    let (base, mock) = start().await;
    let key = HttpAuthResolved::ApiKey(c8dr::config::Secret::new("aWQ6a2V5"));
    let es = ElasticsearchClient::new(&base, key, T).unwrap();

    mock.route("PUT", "/_snapshot/camunda_backup", reply(200, fixture("contract_es_acknowledged.json")));
    let mut settings = serde_json::Map::new();
    settings.insert("bucket".into(), "b".into());
    es.put_repository("camunda_backup", "s3", &settings, true).await.unwrap();
    let seen = mock.last();
    assert_eq!(seen.authorization.as_deref(), Some("ApiKey aWQ6a2V5"));
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, serde_json::json!({"type":"s3","settings":{"bucket":"b","readonly":true}}));
    es.put_repository("camunda_backup", "s3", &settings, false).await.unwrap();
    assert!(!mock.last().body.contains("readonly"));

    mock.route("GET", "/_snapshot/camunda_backup", reply(200, fixture("es_repository_get.json")));
    let info = es.get_repository("camunda_backup").await.unwrap().unwrap();
    assert_eq!((info.name.as_str(), info.kind.as_str(), info.readonly()), ("camunda_backup", "s3", true));
    mock.route(
        "GET",
        "/_snapshot/other",
        reply(404, r#"{"error":{"type":"repository_missing_exception","reason":"[other] missing"},"status":404}"#),
    );
    assert!(es.get_repository("other").await.unwrap().is_none());
    // a 404 whose body is cut off (or a proxy's page) says nothing about the repository: an
    // error, never "not registered" (a restore would be refused as REPOSITORY_MISSING)
    mock.route("GET", "/_snapshot/cut", reply(404, r#"{"error":{"type":"reposi"#));
    let e = es.get_repository("cut").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed, "{e}");

    mock.route("DELETE", "/_snapshot/camunda_backup", reply(200, fixture("contract_es_acknowledged.json")));
    es.delete_repository("camunda_backup").await.unwrap();

    mock.route("PUT", "/_snapshot/camunda_backup/failback", reply(200, fixture("contract_es_accepted.json")));
    es.create_snapshot("camunda_backup", "failback", true).await.unwrap();
    let seen = mock.last();
    assert_eq!(seen.body, r#"{"include_global_state":true}"#);
    assert_eq!(seen.query, "", "never wait_for_completion");
    // An answer that is neither accepted nor a snapshot is not taken as success.
    mock.route("PUT", "/_snapshot/camunda_backup/failback", reply(200, r#"{"accepted":false}"#));
    assert_eq!(es.create_snapshot("camunda_backup", "failback", true).await.unwrap_err().kind, ErrorKind::Server);
    mock.route("PUT", "/_snapshot/camunda_backup/failback", reply(200, r#"{}"#));
    assert_eq!(es.create_snapshot("camunda_backup", "failback", true).await.unwrap_err().kind, ErrorKind::Malformed);

    mock.route("GET", "/_snapshot/camunda_backup/failback", reply(200, fixture("seed_es_snapshots_all.json")));
    let s = es.get_snapshot("camunda_backup", "failback").await.unwrap();
    assert_eq!(s.state, SnapshotState::Success);
    mock.route("GET", "/_snapshot/camunda_backup/_all", reply(200, fixture("seed_es_snapshots_all.json")));
    assert_eq!(es.list_snapshots("camunda_backup").await.unwrap().len(), 1);
    mock.route("GET", "/_snapshot/camunda_backup/gone", reply(200, r#"{"snapshots":[],"total":0,"remaining":0}"#));
    let e = es.get_snapshot("camunda_backup", "gone").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);

    mock.route("POST", "/_snapshot/camunda_backup/failback/_restore", reply(200, fixture("contract_es_accepted.json")));
    es.restore_snapshot("camunda_backup", "failback", true, Some(&["a".to_string(), "b".to_string()])).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&mock.last().body).unwrap();
    // never the feature states (security): docs/elasticsearch.md
    assert_eq!(body, serde_json::json!({"include_global_state":true,"feature_states":["none"],"indices":"a,b"}));

    mock.route("GET", "/_recovery", reply(200, fixture("es_recovery_active.json")));
    let r = es.recoveries(true).await.unwrap();
    assert_eq!(mock.last().query, "active_only=true");
    assert_eq!(r.iter().filter(|s| s.is_snapshot()).count(), 1);

    mock.route("GET", "/_cluster/health", reply(200, fixture("es_cluster_health.json")));
    assert_eq!(es.cluster_health().await.unwrap().status, HealthStatus::Yellow);
    mock.route("GET", "/_cluster/health", reply(408, fixture("es_cluster_health_timed_out.json")));
    let h = es.cluster_health_wait("green", Duration::from_millis(1500)).await.unwrap();
    assert!(h.timed_out);
    assert_eq!(mock.last().query, "wait_for_status=green&timeout=1500ms");
    mock.route(
        "GET",
        "/_cluster/health",
        reply(503, r#"{"error":{"type":"master_not_discovered_exception","reason":"no master"},"status":503}"#),
    );
    let e = es.cluster_health_wait("green", Duration::from_secs(1)).await.unwrap_err();
    assert!(e.is_es_type("master_not_discovered_exception") && e.is_transient());

    mock.route("GET", "/_cat/indices", reply(200, fixture("es_cat_indices.json")));
    let camunda = es.camunda_indices().await.unwrap();
    let names: Vec<&str> = camunda.iter().map(|i| i.index.as_str()).collect();
    assert_eq!(names, vec!["camunda-user-8.8.0_", "operate-list-view-8.3.0_", "zeebe-record_job_8.8.0_2024-08-23"]);
    assert_eq!(mock.last().query, "format=json&expand_wildcards=all");
    let open: Vec<String> = es.open_camunda_indices().await.unwrap().into_iter().map(|i| i.index).collect();
    assert_eq!(open, vec!["operate-list-view-8.3.0_", "zeebe-record_job_8.8.0_2024-08-23"]);
    assert!(es.index_exists_open("operate-list-view-8.3.0_").await.unwrap());
    assert!(!es.index_exists_open("camunda-user-8.8.0_").await.unwrap(), "closed");
    assert!(!es.index_exists_open("nope").await.unwrap());
}

#[tokio::test]
async fn rest_requests_and_answers() {
    let (base, mock) = start().await;
    let auth = HttpAuthResolved::Basic { username: "demo".into(), password: c8dr::config::Secret::new("s3cr3t-pw") };
    let r = RestClient::new(&base, auth, T).unwrap();

    mock.route("GET", "/v2/topology", reply(200, fixture("seed_rest_topology_after_failback.json")));
    let t = r.topology().await.unwrap();
    assert_eq!(t.brokers.len(), 8);
    // Basic demo:s3cr3t-pw
    assert_eq!(mock.last().authorization.as_deref(), Some("Basic ZGVtbzpzM2NyM3QtcHc="));

    mock.route("POST", "/v2/deployments", reply(200, fixture("rest_deployment.json")));
    let d = r.deploy_resource("single-task.bpmn", b"<definitions/>".to_vec()).await.unwrap();
    assert_eq!(d.processes().next().unwrap().process_definition_id, "bigVarProcess");
    let seen = mock.last();
    assert!(seen.content_type.unwrap().starts_with("multipart/form-data; boundary="));
    assert!(seen.body.contains(r#"name="resources"; filename="single-task.bpmn""#), "{}", seen.body);
    assert!(seen.body.contains("<definitions/>"));

    mock.route("POST", "/v2/process-instances", reply(200, fixture("rest_create_instance.json")));
    let c = r.create_process_instance("bigVarProcess", serde_json::json!({"canary": true})).await.unwrap();
    assert_eq!(c.process_instance_key, "2251799813686760");
    assert_eq!(mock.last().body, r#"{"processDefinitionId":"bigVarProcess","variables":{"canary":true}}"#);
    r.create_process_instance("bigVarProcess", serde_json::Value::Null).await.unwrap();
    assert_eq!(mock.last().body, r#"{"processDefinitionId":"bigVarProcess"}"#);

    mock.route("POST", "/v2/process-instances/search", reply(200, fixture("rest_process_instance_search.json")));
    let s = r.search_process_instances(serde_json::json!({"processDefinitionId":"bigVarProcess"}), 50).await.unwrap();
    assert_eq!(s.page.total_items, 18);
    let body: serde_json::Value = serde_json::from_str(&mock.last().body).unwrap();
    assert_eq!(body, serde_json::json!({"filter":{"processDefinitionId":"bigVarProcess"},"page":{"limit":50}}));

    mock.route(
        "POST",
        "/v2/process-definitions/search",
        reply(200, r#"{"items":[{"processDefinitionKey":"2251799813686748","processDefinitionId":"bigVarProcess","name":"Big variable process","version":1,"resourceName":"single-task.bpmn","tenantId":"<default>","versionTag":null}],"page":{"totalItems":1}}"#),
    );
    let defs = r.search_process_definitions(serde_json::Value::Null, 10).await.unwrap();
    assert_eq!(defs.items[0].name.as_deref(), Some("Big variable process"));
    assert_eq!(mock.last().body, r#"{"page":{"limit":10}}"#);

    mock.route("GET", "/v2/topology", reply(401, ""));
    let e = r.topology().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let shown = format!("{e} {e:?} {r:?}");
    assert!(!shown.contains("s3cr3t-pw") && !shown.contains("ZGVtbzpzM2NyM3QtcHc="), "{shown}");
}

#[tokio::test]
async fn transport_failures() {
    // Connection refused: a port that was just free.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let m = ManagementClient::new(&format!("http://{addr}"), T).unwrap();
    let e = m.get_cluster().await.unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Unreachable, None), "{e}");
    assert!(e.is_transient());

    // Timeout: the server answers after the client gave up.
    let (base, mock) = start().await;
    mock.route("GET", "/actuator/cluster", Reply { delay: Duration::from_secs(3), ..reply(200, "{}") });
    let m = ManagementClient::new(&base, Duration::from_millis(200)).unwrap();
    let e = m.get_cluster().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.is_transient());

    // A server-side wait extends the client timeout for that request only.
    let es = ElasticsearchClient::new(&base, HttpAuthResolved::None, Duration::from_millis(200)).unwrap();
    mock.route(
        "GET",
        "/_cluster/health",
        Reply { delay: Duration::from_millis(600), ..reply(200, fixture("es_cluster_health.json")) },
    );
    es.cluster_health_wait("green", Duration::from_secs(5)).await.unwrap();
    assert_eq!(es.cluster_health().await.unwrap_err().kind, ErrorKind::Timeout);
}

#[tokio::test]
async fn credentials_never_show_up_in_errors() {
    let (base, mock) = start().await;
    mock.route(
        "GET",
        "/_cluster/health",
        reply(403, r#"{"error":{"type":"security_exception","reason":"unable to authenticate"},"status":403}"#),
    );
    let key = HttpAuthResolved::ApiKey(c8dr::config::Secret::new("SECRETKEY123"));
    let es = ElasticsearchClient::new(&base, key, T).unwrap();
    let e = es.cluster_health().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let shown = format!("{e} {e:?} {es:?}");
    assert!(!shown.contains("SECRETKEY123"), "{shown}");

    // A token that cannot be a header value fails before sending, without showing the token.
    let bad = HttpAuthResolved::Bearer(c8dr::config::Secret::new("SECRET\nTOKEN"));
    let r = RestClient::new(&base, bad, T).unwrap();
    let e = r.topology().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest, "{e}");
    assert!(!e.is_transient());
    assert!(!format!("{e} {e:?} {r:?}").contains("SECRET"), "{e:?}");
}

fn region(name: &str, base: &str, rest_auth: HttpAuth) -> RegionConfig {
    RegionConfig {
        name: name.into(),
        namespace: name.into(),
        kube_context: None,
        kubeconfig: None,
        access: Default::default(),
        management_url: format!("{base}/m"),
        rest_url: format!("{base}/r"),
        elasticsearch_url: format!("{base}/e"),
        rest_auth,
        elasticsearch_auth: HttpAuth::None,
        timeout_ms: 5_000,
    }
}

fn target_config(regions: Vec<RegionConfig>) -> TargetConfig {
    toml::from_str::<TargetConfig>("regions = []").map(|c| TargetConfig { regions, ..c }).unwrap()
}

#[tokio::test]
async fn target_from_config() {
    let (base, mock) = start().await;
    let var = "C8DR_TEST_TARGET_REST_PASSWORD";
    // SAFETY: the variable name is unique to this test; nothing else reads it concurrently.
    unsafe { std::env::set_var(var, "pw-from-env") };
    let basic = HttpAuth::Basic { username: "demo".into(), password: SecretRef::from_env(var) };
    let config = target_config(vec![region("london", &base, basic.clone()), region("paris", &base, HttpAuth::None)]);
    let target = Target::from_config("prod", &config).unwrap();
    assert_eq!(target.region(1).name, "paris");
    assert!(target.try_region(2).is_none());
    assert_eq!(target.exporter_id(1), "camundaregion1");
    assert_eq!(target.legacy_exporter_id(0), "elasticsearchregion0");
    assert_eq!(target.brokers_of_region(1), vec![1, 3, 5, 7]);
    assert_eq!((region_of_broker(6), region_of_broker(7)), (0, 1));

    mock.route("GET", "/r/v2/topology", reply(200, fixture("contract_rest_topology.json")));
    target.region(0).rest.topology().await.unwrap();
    assert_eq!(mock.last().authorization.as_deref(), Some("Basic ZGVtbzpwdy1mcm9tLWVudg=="));
    target.region(1).rest.topology().await.unwrap();
    assert_eq!(mock.last().authorization, None);
    mock.route("GET", "/m/actuator/exporters", reply(200, fixture("contract_exporters_list.json")));
    target.region(1).management.list_exporters().await.unwrap();

    // Errors name the field.
    let missing = HttpAuth::Bearer { token: SecretRef::from_env("C8DR_TEST_TARGET_UNSET_VAR") };
    let bad = target_config(vec![region("a", &base, HttpAuth::None), region("b", &base, missing)]);
    let e = Target::from_config("prod", &bad).unwrap_err();
    assert_eq!(e.field(), "targets.prod.regions[1].rest_auth");
    assert!(e.to_string().contains("C8DR_TEST_TARGET_UNSET_VAR"), "{e}");

    let mut bad_url = region("a", &base, HttpAuth::None);
    bad_url.elasticsearch_url = "not a url".into();
    let e = Target::from_config("prod", &target_config(vec![bad_url, region("b", &base, HttpAuth::None)])).unwrap_err();
    assert_eq!(e.field(), "targets.prod.regions[0].elasticsearch_url");

    let e = Target::from_config("prod", &target_config(vec![region("a", &base, HttpAuth::None)])).unwrap_err();
    assert_eq!(e.field(), "targets.prod.regions");
}
