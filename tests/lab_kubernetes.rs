//! The lab's Kubernetes API (issue 11 item 7), read by kube-rs and by a real `kubectl`: the
//! objects of the Camunda 8.8 chart, pod logs, rolling Helm upgrades observed step by step on a
//! manual clock, release secrets, lost and recreated regions, stuck pods.
#![cfg(feature = "rehearsal")] // needs the simulator (lab)
use base64::Engine as _;
use c8dr::platform::PlatformStatus;
use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::lab::{HelmAction, HelmRequest, Lab, LabDurations, LabHandle, LabOptions};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, LogParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::io::Read as _;
use std::time::Duration;

const RESTART_MS: u64 = 10_000;

async fn lab(clock: Clock) -> LabHandle {
    Lab::start(LabOptions {
        clock,
        durations: LabDurations { pod_restart_ms: RESTART_MS, ..LabDurations::fast() },
        ..Default::default()
    })
    .await
    .expect("lab starts")
}

/// A kube-rs client of region `r` from the kubeconfig the lab writes (context `lab-regionN`).
async fn client(lab: &LabHandle, dir: &tempfile::TempDir, r: usize) -> kube::Client {
    // reqwest brings aws-lc-rs and kube ring: rustls cannot pick a provider by itself
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = dir.path().join("kubeconfig");
    lab.write_kubeconfig(&path).expect("kubeconfig written");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let opts = KubeConfigOptions { context: Some(format!("lab-region{r}")), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts).await.expect("kube config");
    assert_eq!(config.default_namespace, format!("camunda-region{r}"));
    kube::Client::try_from(config).expect("kube client")
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn label<'a>(p: &'a Pod, k: &str) -> Option<&'a str> {
    p.metadata.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str)
}

/// Zeebe pods by ordinal: (ready, controller-revision-hash).
async fn zeebe_pods(pods: &Api<Pod>) -> Vec<(bool, String)> {
    let lp =
        ListParams::default().labels("app.kubernetes.io/component=zeebe-broker,app.kubernetes.io/instance=camunda");
    let mut list = pods.list(&lp).await.expect("pods listed").items;
    list.sort_by_key(|p| p.metadata.name.clone());
    list.iter().map(|p| (ready(p), label(p, "controller-revision-hash").unwrap_or("").to_string())).collect()
}

fn sts_status(s: &StatefulSet) -> (i32, i32, String, String) {
    let st = s.status.as_ref().expect("status");
    (
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.current_revision.clone().unwrap_or_default(),
        st.update_revision.clone().unwrap_or_default(),
    )
}

/// `data.release` of a Helm release secret: base64(gzip(JSON)) (kube-rs removed the API's
/// own base64 layer).
fn decode_release(s: &Secret) -> Value {
    let data = s.data.as_ref().expect("data");
    let inner = &data.get("release").expect("release key").0;
    let gz = base64::engine::general_purpose::STANDARD.decode(inner).expect("base64 inside");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut json).expect("gzip");
    serde_json::from_str(&json).expect("release JSON")
}

async fn pause(lab: &LabHandle, r: usize) -> Value {
    let url = format!("{}/actuator/exporting/pause", lab.region_urls(r).management);
    reqwest::Client::new().post(url).send().await.expect("pause sent").json().await.expect("json")
}

#[tokio::test]
async fn objects_are_named_and_shaped_as_the_camunda_chart_and_the_api_server_do() {
    let lab = lab(Clock::manual()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&lab, &dir, 1).await;

    let ns: Api<Namespace> = Api::all(c.clone());
    let n = ns.get("camunda-region1").await.expect("namespace");
    assert_eq!(n.metadata.labels.unwrap().get("c8dr.io/drill").map(String::as_str), Some("allowed"));

    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let all = pods.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<String> = all.items.iter().filter_map(|p| p.metadata.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        ["camunda-elasticsearch-master-0", "camunda-zeebe-0", "camunda-zeebe-1", "camunda-zeebe-2", "camunda-zeebe-3"]
    );
    assert!(all.metadata.resource_version.is_some(), "lists carry metadata.resourceVersion");
    let z1 = pods.get("camunda-zeebe-1").await.unwrap();
    assert!(ready(&z1));
    assert_eq!(z1.metadata.namespace.as_deref(), Some("camunda-region1"));
    assert!(z1.metadata.uid.is_some() && z1.metadata.creation_timestamp.is_some());
    assert!(label(&z1, "controller-revision-hash").is_some_and(|h| h.starts_with("camunda-zeebe-")));
    let cs = &z1.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.restart_count, 0);
    let log = pods.logs("camunda-zeebe-1", &LogParams::default()).await.unwrap();
    assert!(
        log.contains(
            r#"The following 5 profiles are active: "broker", "operate", "tasklist", "identity", "consolidated-auth""#
        ),
        "{log}"
    );
    match pods.get("camunda-zeebe-9").await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (404, "NotFound")),
        other => panic!("expected a NotFound Status, got {other:?}"),
    }

    let sts: Api<StatefulSet> = Api::default_namespaced(c.clone());
    let s = sts.get("camunda-zeebe").await.unwrap();
    let sel = s.spec.as_ref().unwrap().selector.match_labels.clone().unwrap();
    assert_eq!(sel.get("app.kubernetes.io/component").map(String::as_str), Some("zeebe-broker"));
    let (updated, ready_n, current, update) = sts_status(&s);
    assert_eq!((updated, ready_n), (4, 4));
    assert_eq!(current, update);
    assert_eq!(sts.list(&ListParams::default()).await.unwrap().items.len(), 1);

    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(c.clone());
    let mut pvc_names: Vec<String> = pvcs
        .list(&ListParams::default().labels("app.kubernetes.io/instance=camunda"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    pvc_names.sort();
    assert_eq!(
        pvc_names,
        [
            "data-camunda-elasticsearch-master-0",
            "data-camunda-zeebe-0",
            "data-camunda-zeebe-1",
            "data-camunda-zeebe-2",
            "data-camunda-zeebe-3"
        ]
    );

    let secrets: Api<Secret> = Api::default_namespaced(c.clone());
    let rel = secrets.list(&ListParams::default().labels("owner=helm,name=camunda")).await.unwrap().items;
    assert_eq!(rel.len(), 1);
    assert_eq!(rel[0].metadata.name.as_deref(), Some("sh.helm.release.v1.camunda.v1"));
    assert_eq!(rel[0].type_.as_deref(), Some("helm.sh/release.v1"));
    let v = decode_release(&rel[0]);
    assert_eq!((v["version"].as_u64(), v["info"]["status"].as_str()), (Some(1), Some("deployed")));
    assert!(v["chart"]["metadata"]["version"].is_string());

    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    let cm = cms.get("camunda-zeebe-configuration-unified").await.unwrap();
    let yaml = &cm.data.unwrap()["application.yaml"];
    assert!(yaml.contains(r#"active: "broker,operate,tasklist,identity,consolidated-auth""#), "{yaml}");

    let svcs: Api<Service> = Api::default_namespaced(c.clone());
    let gw = svcs.get("camunda-zeebe-gateway").await.unwrap();
    let ports: Vec<(Option<String>, i32)> =
        gw.spec.unwrap().ports.unwrap().into_iter().map(|p| (p.name, p.port)).collect();
    assert_eq!(
        ports,
        [(Some("http".into()), 8080), (Some("http-management".into()), 9600), (Some("grpc".into()), 26500)]
    );
    let es = svcs.get("camunda-elasticsearch").await.unwrap();
    assert_eq!(es.spec.unwrap().ports.unwrap()[0].port, 9200);
    let eps: Api<Endpoints> = Api::default_namespaced(c.clone());
    let ep = eps.get("camunda-zeebe-gateway").await.unwrap();
    assert_eq!(ep.subsets.unwrap()[0].addresses.as_ref().map(Vec::len), Some(4));
}

#[tokio::test]
async fn a_helm_upgrade_rolls_the_pods_one_at_a_time_and_pause_fails_meanwhile() {
    let clock = Clock::manual();
    let lab = lab(clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&lab, &dir, 0).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let sts: Api<StatefulSet> = Api::default_namespaced(c.clone());
    let secrets: Api<Secret> = Api::default_namespaced(c.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    let old = zeebe_pods(&pods).await[0].1.clone();
    assert_eq!(pause(&lab, 0).await["status"], 204, "pausing works on a settled cluster");
    let resume = format!("{}/actuator/exporting/resume", lab.region_urls(0).management);
    reqwest::Client::new().post(resume).send().await.unwrap();

    lab.helm(0, HelmRequest { action: HelmAction::Upgrade, webapps: false, create_schema: true }).await.unwrap();
    // ConfigMap and release secret at once
    let yaml = cms.get("camunda-zeebe-configuration-unified").await.unwrap().data.unwrap()["application.yaml"].clone();
    assert!(yaml.contains(r#"active: "broker,identity,consolidated-auth""#), "{yaml}");
    let mut rel = secrets.list(&ListParams::default().labels("owner=helm,name=camunda")).await.unwrap().items;
    rel.sort_by_key(|s| s.metadata.name.clone());
    let statuses: Vec<(Option<u64>, String)> = rel
        .iter()
        .map(|s| {
            let v = decode_release(s);
            (v["version"].as_u64(), v["info"]["status"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(statuses, [(Some(1), "superseded".into()), (Some(2), "deployed".into())]);
    assert_eq!(label_of(&rel[1], "status"), Some("deployed"));
    assert_eq!(label_of(&rel[1], "version"), Some("2"));

    // highest ordinal first, one at a time
    let mut new = String::new();
    for step in 0..4usize {
        let restarting = 3 - step;
        let z = zeebe_pods(&pods).await;
        for (i, (is_ready, rev)) in z.iter().enumerate() {
            assert_eq!(*is_ready, i != restarting, "step {step}: pod {i} readiness: {z:?}");
            let updated = i >= restarting;
            assert_eq!(rev != &old, updated, "step {step}: pod {i} revision: {z:?}");
        }
        new = z[3].1.clone();
        let (updated, ready_n, current, update) = sts_status(&sts.get("camunda-zeebe").await.unwrap());
        assert_eq!((updated, ready_n), (step as i32 + 1, 3), "step {step}");
        assert_eq!((current.as_str(), update.as_str()), (old.as_str(), new.as_str()), "step {step}");
        let p = pause(&lab, 0).await;
        assert_eq!(p["status"], 500, "step {step}: pause must fail while a broker restarts: {p}");
        assert!(p["body"]["message"].as_str().unwrap_or("").starts_with("Expected "), "{p}");
        let platform: PlatformStatus = serde_json::from_value(lab.platform(0).unwrap()).unwrap();
        assert_eq!(platform.profiles, None, "step {step}: pods disagree or one cannot be read");
        assert_eq!(platform.configured_profiles.as_deref().map(<[String]>::len), Some(3));
        assert!(!platform.rollout_complete(), "step {step}");
        assert_eq!(platform.helm_release.as_ref().map(|h| h.revision), Some(2));
        clock.advance(Duration::from_millis(RESTART_MS));
    }
    let z = zeebe_pods(&pods).await;
    assert!(z.iter().all(|(r, rev)| *r && *rev == new), "{z:?}");
    let (updated, ready_n, current, update) = sts_status(&sts.get("camunda-zeebe").await.unwrap());
    assert_eq!((updated, ready_n, current.as_str()), (4, 4, update.as_str()));
    let log = pods.logs("camunda-zeebe-0", &LogParams::default()).await.unwrap();
    assert!(log.contains(r#"The following 3 profiles are active: "broker", "identity", "consolidated-auth""#), "{log}");
    let platform: PlatformStatus = serde_json::from_value(lab.platform(0).unwrap()).unwrap();
    assert!(platform.rollout_complete(), "{:?}", platform.rollout);
    assert_eq!(platform.webapps_on(), Some(false));
    assert_eq!(pause(&lab, 0).await["status"], 204, "pausing works once the rollout is done");
}

fn label_of<'a>(s: &'a Secret, k: &str) -> Option<&'a str> {
    s.metadata.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str)
}

#[tokio::test]
async fn a_lost_region_refuses_connections_and_a_recreated_one_is_empty_until_installed() {
    let clock = Clock::manual();
    let lab = lab(clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let c = client(&lab, &dir, 1).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    lab.lose_region(1).await.unwrap();
    assert!(
        matches!(pods.list(&ListParams::default()).await, Err(kube::Error::HyperError(_) | kube::Error::Service(_))),
        "a lost region's API refuses connections"
    );
    lab.recreate_region(1).await.unwrap();
    assert!(pods.list(&ListParams::default()).await.unwrap().items.is_empty());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(c.clone());
    assert!(pvcs.list(&ListParams::default()).await.unwrap().items.is_empty());
    let secrets: Api<Secret> = Api::default_namespaced(c.clone());
    assert!(secrets.list(&ListParams::default()).await.unwrap().items.is_empty());
    let sts: Api<StatefulSet> = Api::default_namespaced(c.clone());
    assert!(matches!(sts.get("camunda-zeebe").await, Err(kube::Error::Api(e)) if e.code == 404));

    lab.helm(1, HelmRequest { action: HelmAction::Install, webapps: false, create_schema: false }).await.unwrap();
    let z = zeebe_pods(&pods).await;
    assert_eq!(z.len(), 4);
    assert!(z.iter().all(|(r, _)| !r), "installed pods start not Ready: {z:?}");
    let z0 = pods.get("camunda-zeebe-0").await.unwrap();
    let env = z0.spec.unwrap().containers[0].env.clone().unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA" && e.value.as_deref() == Some("false")),
        "{env:?}"
    );
    let rel = secrets.list(&ListParams::default().labels("owner=helm")).await.unwrap().items;
    assert_eq!(
        rel.iter().filter_map(|s| s.metadata.name.clone()).collect::<Vec<_>>(),
        ["sh.helm.release.v1.camunda.v1"]
    );
    clock.advance(Duration::from_millis(RESTART_MS));
    assert!(zeebe_pods(&pods).await.iter().all(|(r, _)| *r));
    // the drill's PVC cleanup: deletecollection by the release label
    lab.lose_region(0).await.unwrap();
    let deleted = pvcs
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app.kubernetes.io/instance=camunda"),
        )
        .await
        .unwrap();
    assert_eq!(deleted.left().map(|l| l.items.len()), Some(5));
    assert!(pvcs.list(&ListParams::default()).await.unwrap().items.is_empty());
    assert_eq!(lab.state().region(1).pvcs, 0);
}

#[tokio::test]
async fn a_stuck_pod_stays_running_not_ready_until_deleted() {
    let clock = Clock::manual();
    let lab = Lab::start(LabOptions {
        clock: clock.clone(),
        durations: LabDurations { pod_restart_ms: RESTART_MS, ..LabDurations::fast() },
        stuck_pods: vec![(0, 2)],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = client(&lab, &dir, 0).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    clock.advance(Duration::from_secs(3600));
    let p = pods.get("camunda-zeebe-2").await.unwrap();
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    assert!(!ready(&p));
    let platform: PlatformStatus = serde_json::from_value(lab.platform(0).unwrap()).unwrap();
    let stuck = platform.stuck_pods(clock.now(), chrono::Duration::minutes(5));
    assert_eq!(stuck.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["camunda-zeebe-2"]);
    assert_eq!(pause(&lab, 0).await["status"], 500, "a stuck broker is not a cluster member");

    pods.delete("camunda-zeebe-2", &DeleteParams::default()).await.unwrap();
    assert!(!ready(&pods.get("camunda-zeebe-2").await.unwrap()), "recreated, starting");
    clock.advance(Duration::from_millis(RESTART_MS));
    assert!(ready(&pods.get("camunda-zeebe-2").await.unwrap()));
    assert_eq!(pause(&lab, 0).await["status"], 204);
    // stuck through the control API as well
    let r = reqwest::Client::new()
        .post(format!("{}/control/regions/0/pods/1/stuck", lab.control_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(!ready(&pods.get("camunda-zeebe-1").await.unwrap()));
}

/// The lab's answers checked by someone else's code: Debian's kubectl (package
/// `kubernetes-client`; scripts/test.sh installs it).
#[tokio::test]
async fn kubectl_lists_pods_statefulsets_and_pvcs_and_reads_a_pod_log() {
    let have = std::process::Command::new("kubectl").arg("version").arg("--client").output().is_ok();
    if !have {
        assert!(std::env::var_os("CI").is_none(), "kubectl is required under CI (apt-get install kubernetes-client)");
        eprintln!("SKIPPED: kubectl is not installed (apt-get install -y --no-install-recommends kubernetes-client)");
        return;
    }
    let lab = lab(Clock::manual()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    lab.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = |args: &[&str]| {
        let kc = kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            let out = tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kc)
                .args(["--context", "lab-region0", "--request-timeout", "30s"])
                .args(&args)
                .env("HOME", kc.parent().unwrap())
                .output()
                .await
                .expect("kubectl runs");
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "kubectl {args:?} failed: {}\n{stdout}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
    };
    let names = |json: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let mut n: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let pods = names(&kubectl(&["get", "pods", "-o", "json"]).await);
    assert_eq!(pods.len(), 5, "{pods:?}");
    assert!(pods.contains(&"camunda-zeebe-0".to_string()));
    let table = kubectl(&["get", "pods"]).await;
    assert!(table.contains("camunda-zeebe-3"), "{table}");
    assert_eq!(names(&kubectl(&["get", "statefulsets", "-o", "json"]).await), ["camunda-zeebe"]);
    let table = kubectl(&["get", "statefulsets"]).await;
    assert!(table.contains("camunda-zeebe"), "{table}");
    let pvcs = names(&kubectl(&["get", "pvc", "-l", "app.kubernetes.io/instance=camunda", "-o", "json"]).await);
    assert_eq!(pvcs.len(), 5, "{pvcs:?}");
    let table = kubectl(&["get", "pvc"]).await;
    assert!(table.contains("data-camunda-zeebe-0"), "{table}");
    let log = kubectl(&["logs", "camunda-zeebe-0"]).await;
    assert!(log.contains("The following 5 profiles are active:"), "{log}");
}

/// The port-forward subresource answers as Kubernetes does before any upgrade: 404 for an
/// unknown pod, 400 for a pod that is not Ready or a request without ports.
#[tokio::test]
async fn port_forward_refuses_unknown_and_not_ready_pods() {
    let lab = Lab::start(LabOptions {
        clock: Clock::manual(),
        durations: LabDurations { pod_restart_ms: RESTART_MS, ..LabDurations::fast() },
        stuck_pods: vec![(0, 1)],
        ..Default::default()
    })
    .await
    .unwrap();
    let base = format!("{}/api/v1/namespaces/camunda-region0/pods", lab.kube_urls()[0]);
    let get = |path: String| async move {
        let r = reqwest::Client::new().get(path).send().await.unwrap();
        let code = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        (code, v["kind"].as_str().unwrap_or("").to_string(), v["reason"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        get(format!("{base}/camunda-zeebe-9/portforward?ports=9600")).await,
        (404, "Status".into(), "NotFound".into())
    );
    assert_eq!(
        get(format!("{base}/camunda-zeebe-1/portforward?ports=9600")).await,
        (400, "Status".into(), "BadRequest".into())
    );
    assert_eq!(get(format!("{base}/camunda-zeebe-0/portforward")).await, (400, "Status".into(), "BadRequest".into()));
}

/// The target of the lab, its regions reached through the lab's kubeconfig.
fn kube_target(lab: &LabHandle, dir: &tempfile::TempDir) -> c8dr::config::TargetConfig {
    let path = dir.path().join("kubeconfig");
    lab.write_kubeconfig(&path).expect("kubeconfig written");
    let mut t = lab.target_config();
    for (r, region) in t.regions.iter_mut().enumerate() {
        region.kubeconfig = Some(path.clone());
        region.kube_context = Some(format!("lab-region{r}"));
    }
    t
}

/// Issue 11.2/11.8: c8dr's production observation (kube-rs, `KubePlatform`) against the lab's
/// API, through a rolling upgrade on a manual clock: never "done" while the pods roll, the
/// configured profiles (ConfigMap) at once, the running ones only when every pod runs them.
#[tokio::test]
async fn the_production_platform_observes_a_rolling_upgrade_in_the_lab() {
    use c8dr::platform::{HelmAction as Action, Platform};
    let clock = Clock::manual();
    let lab = lab(clock.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let target = kube_target(&lab, &dir);
    let platform = c8dr::platform::k8s::KubePlatform::new(
        "lab",
        &target,
        Box::new(c8dr::rehearsal::lab_platform::LabHelm(c8dr::rehearsal::lab_platform::LabControl::new(
            lab.control_url(),
        ))),
    );
    let before = platform.status(&target, 0).await.expect("observed");
    assert!(before.release && before.rollout_complete(), "{before:?}");
    assert_eq!(before.webapps_on(), Some(true));
    let revision = before.helm_release.as_ref().map(|h| h.revision).expect("release secret read");

    // helm through the platform: judged by the release secret (a new deployed revision)
    platform.helm(&target, 0, Action::DisableWebapps).await.expect("helm judged by the release secret");
    let rolling = platform.status(&target, 0).await.expect("observed");
    assert_eq!(
        rolling.helm_release.as_ref().map(|h| (h.revision, h.status.as_str())),
        Some((revision + 1, "deployed"))
    );
    assert!(!rolling.rollout_complete(), "the rollout has just begun: {:?}", rolling.rollout);
    assert!(Action::DisableWebapps.holds(&rolling), "configured as asked: {rolling:?}");
    assert_ne!(rolling.webapps_on(), Some(false), "the pods do not all run it yet: {:?}", rolling.profiles);
    for seen_incomplete in 0..8 {
        let s = platform.status(&target, 0).await.expect("observed");
        if s.rollout_complete() {
            assert_eq!(s.webapps_on(), Some(false), "{s:?}");
            assert!(s.pods.iter().all(|p| p.ready), "{:?}", s.pods);
            assert!(seen_incomplete >= 3, "one pod at a time: {seen_incomplete} incomplete observations");
            return;
        }
        clock.advance(Duration::from_millis(RESTART_MS));
    }
    panic!("the rollout never completed");
}

/// Issue 11.6/11.8: a drill on a namespace without `c8dr.io/drill=allowed` is refused by the
/// production region control, naming the label, before any mutation (the lab stays whole).
#[tokio::test]
async fn a_drill_is_refused_on_a_namespace_not_labelled_for_drills() {
    use c8dr::platform::{PlatformError, RegionControl};
    let lab = Lab::start(LabOptions {
        durations: LabDurations::fast(),
        namespace_labels: Default::default(),
        ..Default::default()
    })
    .await
    .expect("lab starts");
    let dir = tempfile::tempdir().unwrap();
    let target = kube_target(&lab, &dir);
    let control = c8dr::platform::k8s::KubeRegionControl::new(
        "lab",
        &target,
        Box::new(c8dr::rehearsal::lab_platform::LabHelm(c8dr::rehearsal::lab_platform::LabControl::new(
            lab.control_url(),
        ))),
    );
    match control.lose(1).await {
        Err(PlatformError::Refused(m)) => {
            assert!(m.contains("c8dr.io/drill=allowed") && m.contains("camunda-region1"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let state = lab.platform(1).expect("platform");
    assert_eq!(state["release"], true, "nothing was uninstalled: {state}");
    assert!(lab.record().is_empty(), "no mutating call: {:?}", lab.record());
}
