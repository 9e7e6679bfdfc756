//! The production Kubernetes platform (kube-rs) against a small fake API server on 127.0.0.1,
//! reached through a kubeconfig file with a context and namespace, as a worker reaches a real
//! cluster. The fake answers the JSON the API server would for the objects c8dr reads
//! (StatefulSet, pods, pod log as text, ConfigMap, release secrets, PVCs, namespace) and
//! records every request, so "no mutation" is checked on the wire.
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use c8dr::config::TargetConfig;
use c8dr::platform::k8s::release::encode_release;
use c8dr::platform::{HelmAction, PlatformError, connect};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const NS: &str = "camunda-b";
const OFF: &str = r#"The following 3 profiles are active: "broker", "identity", "consolidated-auth""#;
const ON: &str =
    r#"The following 5 profiles are active: "broker", "identity", "consolidated-auth", "operate", "tasklist""#;

#[derive(Default)]
struct Fake {
    statefulset: Option<Value>,
    pods: Vec<Value>,
    logs: BTreeMap<String, String>,
    configmap: Option<Value>,
    /// An error code answered for the ConfigMap instead of it (403: not permitted).
    configmap_code: Option<u16>,
    secrets: Vec<Value>,
    /// Once this file exists (the fake helm touched it), the secrets list is the second value.
    secrets_after: Option<(PathBuf, Vec<Value>)>,
    pvcs: Vec<Value>,
    namespace: Value,
    /// Pod logs answer 403 (the `pods/log` subresource not permitted).
    log_forbidden: bool,
    requests: Vec<(Method, String)>,
}

type Shared = Arc<Mutex<Fake>>;

fn status(code: u16, reason: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("fake: {reason}"), "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    axum::Json(json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}))
        .into_response()
}

/// `k=v,k2=v2` against an object's labels.
fn selected(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|kv| {
        let (k, v) = kv.split_once('=').unwrap();
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

fn label_selector(uri: &Uri) -> String {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "labelSelector")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn named<'a>(items: &'a [Value], name: &str) -> Option<&'a Value> {
    items.iter().find(|i| i["metadata"]["name"] == name)
}

async fn handle(State(fake): State<Shared>, method: Method, uri: Uri) -> Response {
    let mut f = fake.lock().unwrap();
    let query = uri.query().filter(|q| !q.is_empty()).map(|q| format!("?{q}")).unwrap_or_default();
    f.requests.push((method.clone(), format!("{}{query}", uri.path())));
    let path: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let sel = label_selector(&uri);
    match (method.as_str(), path.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns]) if *ns == NS => axum::Json(f.namespace.clone()).into_response(),
        ("GET", ["apis", "apps", "v1", "namespaces", NS, "statefulsets", "camunda-zeebe"]) => match &f.statefulset {
            Some(s) => axum::Json(s.clone()).into_response(),
            None => status(404, "NotFound"),
        },
        ("GET", ["api", "v1", "namespaces", NS, "pods"]) => {
            list("PodList", f.pods.iter().filter(|p| selected(p, &sel)).cloned().collect())
        }
        ("GET", ["api", "v1", "namespaces", NS, "pods", _, "log"]) if f.log_forbidden => status(403, "Forbidden"),
        ("GET", ["api", "v1", "namespaces", NS, "pods", name, "log"]) => match f.logs.get(*name) {
            Some(log) => ([("content-type", "text/plain")], log.clone()).into_response(),
            None => status(400, "BadRequest"),
        },
        ("DELETE", ["api", "v1", "namespaces", NS, "pods", name]) => {
            let Some(pod) = named(&f.pods, name).cloned() else { return status(404, "NotFound") };
            f.pods.retain(|p| p["metadata"]["name"] != *name);
            axum::Json(pod).into_response()
        }
        ("GET", ["api", "v1", "namespaces", NS, "configmaps", "camunda-zeebe-configuration-unified"]) => {
            match (f.configmap_code, &f.configmap) {
                (Some(code), _) => status(code, if code == 403 { "Forbidden" } else { "InternalError" }),
                (None, Some(cm)) => axum::Json(cm.clone()).into_response(),
                (None, None) => status(404, "NotFound"),
            }
        }
        ("GET", ["api", "v1", "namespaces", NS, "secrets"]) => {
            let secrets = match &f.secrets_after {
                Some((marker, after)) if marker.exists() => after.clone(),
                _ => f.secrets.clone(),
            };
            list("SecretList", secrets.into_iter().filter(|s| selected(s, &sel)).collect())
        }
        ("GET", ["api", "v1", "namespaces", NS, "persistentvolumeclaims"]) => {
            list("PersistentVolumeClaimList", f.pvcs.iter().filter(|p| selected(p, &sel)).cloned().collect())
        }
        ("DELETE", ["api", "v1", "namespaces", NS, "persistentvolumeclaims", name]) => {
            let Some(pvc) = named(&f.pvcs, name).cloned() else { return status(404, "NotFound") };
            f.pvcs.retain(|p| p["metadata"]["name"] != *name);
            axum::Json(pvc).into_response()
        }
        _ => status(404, "NotFound"),
    }
}

struct Env {
    fake: Shared,
    dir: tempfile::TempDir,
    target: TargetConfig,
    _server: tokio::task::JoinHandle<()>,
}

impl Env {
    fn mutations(&self) -> Vec<(Method, String)> {
        self.fake.lock().unwrap().requests.iter().filter(|(m, _)| m != Method::GET).cloned().collect()
    }
    fn helm_calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("helm.log")).unwrap_or_default()
    }
    fn marker(&self) -> PathBuf {
        self.dir.path().join("helm-ran")
    }
    /// The fake `helm`: logs its arguments, touches the marker, exits with `code`.
    fn helm_exits(&self, code: i32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("helm");
        let body = format!(
            "#!/bin/sh\necho \"$@\" >> {}\ntouch {}\nexit {code}\n",
            self.dir.path().join("helm.log").display(),
            self.marker().display()
        );
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

async fn start(fake: Fake) -> Env {
    let fake = Arc::new(Mutex::new(fake));
    let app = axum::Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: region-b\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NS}\n\
             current-context: region-b\nusers:\n- name: fake\n  user:\n    token: not-a-secret\n"
        ),
    )
    .unwrap();
    let target: TargetConfig = toml::from_str(&format!(
        r#"
        drill_allowed = true
        [helm]
        mode = "command"
        binary = "{helm}"
        [kubernetes]
        request_timeout_secs = 10
        [[regions]]
        name = "a"
        namespace = "camunda-a"
        management_url = "http://x"
        rest_url = "http://x"
        elasticsearch_url = "http://x"
        [[regions]]
        name = "b"
        namespace = "{NS}"
        kubeconfig = "{kc}"
        kube_context = "region-b"
        management_url = "http://y"
        rest_url = "http://y"
        elasticsearch_url = "http://y"
        "#,
        helm = dir.path().join("helm").display(),
        kc = kubeconfig.display(),
    ))
    .unwrap();
    let env = Env { fake, dir, target, _server: server };
    env.helm_exits(0);
    env
}

fn selector_labels() -> Value {
    json!({"app.kubernetes.io/instance": "camunda", "app.kubernetes.io/component": "zeebe-broker"})
}

fn statefulset(replicas: i32, updated: i32, ready: i32, current: &str, update: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "camunda-zeebe", "namespace": NS, "generation": 4},
        "spec": {
            "replicas": replicas, "serviceName": "camunda-zeebe",
            "selector": {"matchLabels": selector_labels()},
            "template": {"metadata": {"labels": selector_labels()}, "spec": {"containers": [{
                "name": "orchestration", "image": "camunda/camunda:8.8.0",
                "env": [{"name": "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA", "value": "false"}]
            }]}}
        },
        "status": {"replicas": replicas, "observedGeneration": 4, "updatedReplicas": updated,
                   "readyReplicas": ready, "currentRevision": current, "updateRevision": update}
    })
}

fn pod(n: u32, ready: bool, revision: &str) -> Value {
    let mut labels = selector_labels();
    labels["controller-revision-hash"] = json!(revision);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("camunda-zeebe-{n}"), "namespace": NS, "labels": labels,
                     "uid": format!("0000000{n}-aaaa-4bbb-8ccc-{revision:0>12}")},
        "spec": {"containers": [{"name": "orchestration", "image": "camunda/camunda:8.8.0"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": "2026-01-01T10:00:00Z"}],
            "containerStatuses": [{"name": "orchestration", "ready": ready, "restartCount": 2,
                                   "image": "camunda/camunda:8.8.0", "imageID": "x"}]
        }
    })
}

fn configmap(profiles: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "camunda-zeebe-configuration-unified", "namespace": NS},
        "data": {"application.yaml": format!("zeebe:\n  broker:\n    cluster:\n      clusterSize: 8\nspring:\n  profiles:\n    active: \"{profiles}\"\n")}
    })
}

fn release_secret(version: u32, status: &str) -> Value {
    let release = json!({"name": "camunda", "version": version, "info": {"status": status},
        "chart": {"metadata": {"name": "camunda-platform", "version": "13.0.0"}}, "config": {}});
    // Kubernetes' base64 over Helm's base64 of gzip'd JSON
    let data = base64::engine::general_purpose::STANDARD.encode(encode_release(&release));
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.camunda.v{version}"), "namespace": NS,
            "labels": {"owner": "helm", "name": "camunda", "status": status, "version": version.to_string()}},
        "data": {"release": data}
    })
}

fn pvc(name: &str, instance: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS, "labels": {"app.kubernetes.io/instance": instance}},
        "spec": {}})
}

fn namespace(labels: Value, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NS, "labels": labels, "annotations": annotations}})
}

/// A region of two orchestration pods, rollout complete, webapps off, schema creation off,
/// release revision 1 deployed, two release PVCs beside an ECK Elasticsearch PVC.
fn installed() -> Fake {
    let mut other = pod(9, true, "x");
    other["metadata"]["name"] = json!("camunda-elasticsearch-master-0");
    other["metadata"]["labels"] = json!({"app.kubernetes.io/instance": "camunda", "app": "elasticsearch"});
    Fake {
        statefulset: Some(statefulset(2, 2, 2, "camunda-zeebe-a", "camunda-zeebe-a")),
        pods: vec![pod(0, true, "camunda-zeebe-a"), pod(1, true, "camunda-zeebe-a"), other],
        logs: [("camunda-zeebe-0", OFF), ("camunda-zeebe-1", OFF)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), format!("starting\n{v}\nStarted StandaloneCamunda in 30 s\n")))
            .collect(),
        configmap: Some(configmap("broker,identity,consolidated-auth")),
        secrets: vec![release_secret(1, "deployed")],
        pvcs: vec![
            pvc("data-camunda-zeebe-0", "camunda"),
            pvc("data-camunda-zeebe-1", "camunda"),
            pvc("elasticsearch-data-es-default-0", "eck"),
        ],
        namespace: namespace(json!({}), json!({})),
        ..Default::default()
    }
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

#[tokio::test]
async fn observes_rollout_profiles_release_and_pvcs() {
    let env = start(installed()).await;
    let h = connect("staging", &env.target).unwrap();
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert!(s.release);
    assert!(s.rollout_complete(), "{:?}", s.rollout);
    assert_eq!(s.profiles, strings(&["broker", "identity", "consolidated-auth"]));
    assert_eq!(s.configured_profiles, s.profiles);
    assert_eq!(s.webapps_on(), Some(false));
    assert_eq!(s.create_schema, Some(false));
    assert_eq!(s.pvcs, 2, "only the release's PVCs");
    assert_eq!(s.pods.len(), 2, "only the StatefulSet's pods");
    assert_eq!((s.pods[1].name.as_str(), s.pods[1].ready, s.pods[1].restarts), ("camunda-zeebe-1", true, 2));
    assert_eq!(s.pods[0].revision.as_deref(), Some("camunda-zeebe-a"));
    let rel = s.helm_release.clone().unwrap();
    assert_eq!((rel.revision, rel.status.as_str(), rel.chart_version.as_deref()), (1, "deployed", Some("13.0.0")));
    assert!(HelmAction::DeployRecreated.holds(&s));
    assert!(env.mutations().is_empty());
}

#[tokio::test]
async fn a_rolling_statefulset_is_not_complete_and_disagreeing_pods_are_unknown() {
    let mut f = installed();
    // helm upgrade enabled the webapps: the ConfigMap says so at once, one pod restarted so far
    f.statefulset = Some(statefulset(2, 1, 1, "camunda-zeebe-a", "camunda-zeebe-b"));
    f.configmap = Some(configmap("broker,identity,consolidated-auth,operate,tasklist"));
    f.pods[0] = pod(0, false, "camunda-zeebe-b");
    f.logs.insert("camunda-zeebe-0".into(), format!("{OFF}\nrestarting\n{ON}\n"));
    let env = start(f).await;
    let h = connect("staging", &env.target).unwrap();
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert!(!s.rollout_complete());
    assert_eq!(
        s.rollout.as_ref().unwrap().describe(),
        "1/2 updated, 1/2 ready, revision camunda-zeebe-a -> camunda-zeebe-b"
    );
    assert_eq!(s.pods[0].profiles.as_ref().map(Vec::len), Some(5), "the last line of the log");
    assert_eq!(s.pods[1].profiles.as_ref().map(Vec::len), Some(3));
    assert_eq!(s.profiles, None, "pods disagree");
    assert_eq!(s.webapps_configured(), Some(true));
    assert_eq!(s.webapps_on(), None);
    let stuck = s.stuck_pods(chrono::Utc::now(), chrono::Duration::seconds(300));
    assert_eq!(stuck.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["camunda-zeebe-0"]);
    // the pod instance (a restart of a stuck broker compares it) and whether it is being deleted
    assert_eq!(s.pods[0].uid.as_deref(), Some("00000000-aaaa-4bbb-8ccc-camunda-zeebe-b"));
    assert!(!s.pods[0].terminating);
}

#[tokio::test]
async fn a_log_without_the_line_falls_back_to_the_configmap_only_when_the_rollout_is_complete() {
    let mut f = installed();
    f.logs.insert("camunda-zeebe-0".into(), "rotated: only recent lines\n".into());
    f.logs.insert("camunda-zeebe-1".into(), "rotated: only recent lines\n".into());
    // rolling: pod 1 runs the old revision, pod 0 the new one but the rollout is not over (pod
    // 0 is not Ready): neither one's profiles can be told
    f.statefulset = Some(statefulset(2, 1, 1, "camunda-zeebe-a", "camunda-zeebe-b"));
    f.pods[0] = pod(0, false, "camunda-zeebe-b");
    let env = start(f).await;
    let h = connect("staging", &env.target).unwrap();
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert_eq!((s.pods[0].profiles.clone(), s.pods[1].profiles.clone()), (None, None));
    assert_eq!(s.profiles, None);
    // the old revision stays unknown even once the rollout reports complete
    env.fake.lock().unwrap().statefulset = Some(statefulset(2, 2, 2, "camunda-zeebe-b", "camunda-zeebe-b"));
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert_eq!(s.pods[1].profiles, None);
    assert_eq!(s.profiles, None);
    // complete, and both pods run the update revision: the ConfigMap tells what they run
    {
        let mut f = env.fake.lock().unwrap();
        f.pods[0] = pod(0, true, "camunda-zeebe-b");
        f.pods[1] = pod(1, true, "camunda-zeebe-b");
    }
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert_eq!(s.pods[0].profiles, strings(&["broker", "identity", "consolidated-auth"]));
    assert_eq!(s.pods[1].profiles, strings(&["broker", "identity", "consolidated-auth"]));
    assert_eq!(s.profiles, strings(&["broker", "identity", "consolidated-auth"]));
}

/// A kubeconfig or context that cannot be used does not heal by retrying: the platform refuses
/// (a BPMN error for a person, naming the setting), instead of failing the job into an incident.
#[tokio::test]
async fn an_unusable_kubeconfig_is_refused_naming_the_setting() {
    let env = start(installed()).await;
    let mut target = env.target.clone();
    target.regions[1].kubeconfig = Some(env.dir.path().join("no-such-kubeconfig"));
    let h = connect("staging", &target).unwrap();
    let e = h.platform.status(&target, 1).await.unwrap_err();
    let PlatformError::Refused(m) = e else { panic!("{e:?}") };
    assert!(m.contains("targets.staging.regions[1].kubeconfig") && m.contains("nothing was changed"), "{m}");
    // a context the kubeconfig does not have
    let mut target = env.target.clone();
    target.regions[1].kube_context = Some("region-z".into());
    let h = connect("staging", &target).unwrap();
    let e = h.platform.status(&target, 1).await.unwrap_err();
    let PlatformError::Refused(m) = e else { panic!("{e:?}") };
    assert!(m.contains("targets.staging.regions[1].kube_context"), "{m}");
    assert!(env.mutations().is_empty());
}

#[tokio::test]
async fn unreadable_objects_fail_closed_and_a_missing_statefulset_is_no_release() {
    let mut f = installed();
    f.configmap_code = Some(403);
    let env = start(f).await;
    let h = connect("staging", &env.target).unwrap();
    let e = h.platform.status(&env.target, 1).await.unwrap_err();
    let PlatformError::Failed(m) = e else { panic!("{e:?}") };
    assert!(
        m.contains("configmap camunda-zeebe-configuration-unified")
            && m.contains(NS)
            && m.contains("403")
            && m.contains("`get`"),
        "{m}"
    );
    // a 5xx is no better
    env.fake.lock().unwrap().configmap_code = Some(500);
    assert!(matches!(h.platform.status(&env.target, 1).await, Err(PlatformError::Failed(m)) if m.contains("500")));
    // a log that may not be read is an error too, not "no profiles" (a pod that has not
    // started yet answers 400: that one is unknown)
    {
        let mut f = env.fake.lock().unwrap();
        f.configmap_code = None;
        f.log_forbidden = true;
    }
    let e = h.platform.status(&env.target, 1).await.unwrap_err();
    assert!(
        matches!(&e, PlatformError::Failed(m) if m.contains("pods/log of camunda-zeebe-0") && m.contains("403")),
        "{e:?}"
    );
    {
        let mut f = env.fake.lock().unwrap();
        f.log_forbidden = false;
        f.logs.clear();
        f.statefulset = Some(statefulset(2, 0, 2, "camunda-zeebe-a", "camunda-zeebe-b"));
    }
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert!(s.pods.iter().all(|p| p.profiles.is_none()) && s.profiles.is_none(), "{s:?}");
    {
        let mut f = env.fake.lock().unwrap();
        f.configmap_code = None;
        f.statefulset = None;
        f.secrets.clear();
    }
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert!(!s.release && s.rollout.is_none() && s.pods.is_empty() && s.profiles.is_none());
    assert!(!HelmAction::DisableWebapps.holds(&s));
}

#[tokio::test]
async fn the_release_secret_decides_whatever_helm_exits_with() {
    // helm exits 1, but a new revision is deployed: success with a warning
    let mut f = installed();
    let env = start(Fake::default()).await;
    f.secrets_after = Some((env.marker(), vec![release_secret(1, "superseded"), release_secret(2, "deployed")]));
    *env.fake.lock().unwrap() = f;
    env.helm_exits(1);
    let h = connect("staging", &env.target).unwrap();
    let out = h.platform.helm(&env.target, 1, HelmAction::DisableWebapps).await.unwrap();
    assert!(out.contains("warning") && out.contains("revision 2 is deployed"), "{out}");
    assert!(env.helm_calls().starts_with("upgrade --install camunda"), "{}", env.helm_calls());

    // helm exits 0, but the new revision failed: a failure
    let mut f = installed();
    let env = start(Fake::default()).await;
    f.secrets_after = Some((env.marker(), vec![release_secret(1, "deployed"), release_secret(2, "failed")]));
    *env.fake.lock().unwrap() = f;
    let h = connect("staging", &env.target).unwrap();
    let e = h.platform.helm(&env.target, 1, HelmAction::DisableWebapps).await.unwrap_err();
    assert!(matches!(&e, PlatformError::Failed(m) if m.contains("revision 2 is failed")), "{e:?}");
    let s = h.platform.status(&env.target, 1).await.unwrap();
    assert!(!s.release, "a failed newest revision is not installed as asked");
    assert_eq!(s.helm_release.map(|r| r.status), Some("failed".into()));

    // helm exits 0 and writes no revision at all: a failure
    let env = start(installed()).await;
    let h = connect("staging", &env.target).unwrap();
    let e = h.platform.helm(&env.target, 1, HelmAction::DisableWebapps).await.unwrap_err();
    assert!(matches!(&e, PlatformError::Failed(m) if m.contains("no new release revision")), "{e:?}");
}

#[tokio::test]
async fn restart_deletes_one_orchestration_pod() {
    let env = start(installed()).await;
    let h = connect("staging", &env.target).unwrap();
    h.platform.restart_pod(&env.target, 1, "camunda-zeebe-1").await.unwrap();
    let e = h.platform.restart_pod(&env.target, 1, "camunda-elasticsearch-master-0").await.unwrap_err();
    assert!(matches!(e, PlatformError::Refused(_)), "{e:?}");
    let deletes = env.mutations();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].1, format!("/api/v1/namespaces/{NS}/pods/camunda-zeebe-1"));
    // already gone (a retry after a crash): done, not an error
    h.platform.restart_pod(&env.target, 1, "camunda-zeebe-1").await.unwrap();
}

#[tokio::test]
async fn a_drill_refuses_unlabelled_and_production_namespaces_before_any_mutation() {
    for (labels, annotations, expect) in [
        (json!({}), json!({}), "c8dr.io/drill=allowed"),
        (json!({"c8dr.io/drill": "allowed", "environment": "production"}), json!({}), "production marker"),
        (json!({"c8dr.io/drill": "allowed"}), json!({"c8dr.io/environment": "production"}), "production marker"),
    ] {
        let mut f = installed();
        f.namespace = namespace(labels, annotations);
        let env = start(f).await;
        let h = connect("staging", &env.target).unwrap();
        let e = h.region_control.lose(1).await.unwrap_err();
        let PlatformError::Refused(m) = e else { panic!("{e:?}") };
        assert!(m.contains(NS) && m.contains(expect), "{m}");
        assert!(env.mutations().is_empty(), "{:?}", env.mutations());
        assert_eq!(env.helm_calls(), "", "helm never ran");
        assert_eq!(h.region_control.is_lost(1).await.unwrap(), Some(false));
    }
}

#[tokio::test]
async fn an_allowed_drill_uninstalls_the_release_and_deletes_its_pvcs() {
    let mut f = installed();
    f.namespace = namespace(json!({"c8dr.io/drill": "allowed", "env": "staging"}), json!({}));
    let env = start(Fake::default()).await;
    f.secrets_after = Some((env.marker(), vec![]));
    *env.fake.lock().unwrap() = f;
    let h = connect("staging", &env.target).unwrap();
    assert_eq!(h.region_control.is_lost(1).await.unwrap(), Some(false));
    h.region_control.lose(1).await.unwrap();
    let kc = env.dir.path().join("kubeconfig");
    assert_eq!(
        env.helm_calls().trim(),
        format!("uninstall camunda --wait --namespace {NS} --kube-context region-b --kubeconfig {}", kc.display()),
        "helm acts on the cluster c8dr observes: same kubeconfig, context and namespace"
    );
    let deleted: Vec<String> = env.mutations().into_iter().map(|(m, p)| format!("{m} {p}")).collect();
    assert_eq!(
        deleted,
        vec![
            format!("DELETE /api/v1/namespaces/{NS}/persistentvolumeclaims/data-camunda-zeebe-0"),
            format!("DELETE /api/v1/namespaces/{NS}/persistentvolumeclaims/data-camunda-zeebe-1"),
        ],
        "the release's PVCs only, never the ECK one"
    );
    assert_eq!(h.region_control.is_lost(1).await.unwrap(), Some(true));
    h.region_control.recreate(1).await.unwrap();
    // a retry after a crash: nothing left to uninstall or delete
    h.region_control.lose(1).await.unwrap();
    assert_eq!(env.helm_calls().lines().count(), 1, "helm uninstall ran once");
}

#[tokio::test]
async fn manual_mode_with_kubernetes_access_observes_and_hands_helm_to_a_person() {
    let env = start(installed()).await;
    let mut t = env.target.clone();
    t.helm.mode = c8dr::config::HelmMode::Manual;
    let h = connect("staging", &t).unwrap();
    assert!(h.platform.status(&t, 1).await.unwrap().release);
    let e = h.platform.helm(&t, 1, HelmAction::DisableWebapps).await.unwrap_err();
    assert!(matches!(&e, PlatformError::Manual { command } if command.contains("upgrade --install")), "{e:?}");
    assert!(matches!(h.region_control.lose(1).await, Err(PlatformError::Refused(_))));
    assert!(env.mutations().is_empty() && env.helm_calls().is_empty());
}
