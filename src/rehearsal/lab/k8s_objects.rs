//! Kubernetes objects of one lab region, named and labelled as the Camunda 8.8 Helm chart
//! (release `camunda`) names them, in the JSON shape the API server answers.
use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;

use super::cluster::fmt_ms;
use super::pods::{APP_VERSION, PodSim, ReleaseRev, profiles_for};
use super::world::{RegionSim, World};

pub const RELEASE: &str = "camunda";
pub const STATEFULSET: &str = "camunda-zeebe";
pub const GATEWAY_SERVICE: &str = "camunda-zeebe-gateway";
pub const CONFIGMAP: &str = "camunda-zeebe-configuration-unified";
pub const ES_POD: &str = "camunda-elasticsearch-master-0";
pub const ES_SERVICE: &str = "camunda-elasticsearch";
pub const CONTAINER: &str = "orchestration";
pub const IMAGE: &str = "camunda/camunda:8.8.0";
pub const SCHEMA_ENV: &str = "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA";

/// A stable, UUID-shaped uid for an object.
pub fn uid(region: usize, kind: &str, name: &str, incarnation: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{region}/{kind}/{name}/{incarnation}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

fn labels(pairs: &[(&str, &str)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

fn metadata(r: usize, ns: &str, kind: &str, name: &str, labels: Value, created_ms: i64, incarnation: u64) -> Value {
    json!({
        "name": name,
        "namespace": ns,
        "uid": uid(r, kind, name, incarnation),
        "resourceVersion": (created_ms.max(0) as u64 % 1_000_000_000 + incarnation).to_string(),
        "creationTimestamp": fmt_s(created_ms),
        "labels": labels,
    })
}

/// RFC 3339 with seconds, as Kubernetes writes timestamps.
pub fn fmt_s(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn zeebe_selector() -> Value {
    labels(&[("app.kubernetes.io/component", "zeebe-broker"), ("app.kubernetes.io/instance", RELEASE)])
}

fn zeebe_labels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("app.kubernetes.io/name", "camunda-platform"),
        ("app.kubernetes.io/instance", RELEASE),
        ("app.kubernetes.io/managed-by", "Helm"),
        ("app.kubernetes.io/part-of", "camunda-platform"),
        ("app.kubernetes.io/component", "zeebe-broker"),
    ]
}

fn es_labels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("app.kubernetes.io/name", "elasticsearch"),
        ("app.kubernetes.io/instance", RELEASE),
        ("app.kubernetes.io/component", "master"),
    ]
}

fn container(create_schema: bool) -> Value {
    let mut env = vec![
        json!({"name": "CAMUNDA_CLUSTER_SIZE", "value": "8"}),
        json!({"name": "SPRING_CONFIG_ADDITIONALLOCATION", "value": "/usr/local/camunda/config/application.yaml"}),
    ];
    if !create_schema {
        env.push(json!({"name": SCHEMA_ENV, "value": "false"}));
    }
    json!({
        "name": CONTAINER,
        "image": IMAGE,
        "env": env,
        "ports": [
            {"containerPort": 8080, "name": "http", "protocol": "TCP"},
            {"containerPort": 9600, "name": "server", "protocol": "TCP"},
            {"containerPort": 26500, "name": "gateway", "protocol": "TCP"},
            {"containerPort": 26501, "name": "command", "protocol": "TCP"},
            {"containerPort": 26502, "name": "internal", "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/actuator/health/readiness", "port": 9600, "scheme": "HTTP"}},
        "volumeMounts": [{"name": "data", "mountPath": "/usr/local/camunda/data"}],
    })
}

fn condition(kind: &str, ok: bool, at_ms: i64) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": fmt_s(at_ms)})
}

fn pod_ip(r: usize, ordinal: u32, incarnation: u64) -> String {
    format!("10.{}.{}.{}", 10 + r, 1 + ordinal, 10 + incarnation % 200)
}

pub fn zeebe_pod(r: usize, ns: &str, p: &PodSim, reg: &RegionSim, now: i64) -> Value {
    let name = p.name();
    let ready = p.ready(now);
    let ordinal = p.ordinal.to_string();
    let revision = p.revision();
    let mut l = zeebe_labels();
    l.push(("controller-revision-hash", &revision));
    l.push(("statefulset.kubernetes.io/pod-name", &name));
    l.push(("apps.kubernetes.io/pod-index", &ordinal));
    let mut meta = metadata(r, ns, "Pod", &name, labels(&l), p.started_ms, p.incarnation);
    meta["generateName"] = json!("camunda-zeebe-");
    meta["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": STATEFULSET,
        "uid": uid(r, "StatefulSet", STATEFULSET, 0), "controller": true, "blockOwnerDeletion": true,
    }]);
    let transition = p.ready_transition(now);
    let _ = reg;
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "containers": [container(p.create_schema)],
            "hostname": name,
            "subdomain": STATEFULSET,
            "restartPolicy": "Always",
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{name}")}}],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                condition("PodReadyToStartContainers", true, p.started_ms),
                condition("Initialized", true, p.started_ms),
                condition("Ready", ready, transition),
                condition("ContainersReady", ready, transition),
                condition("PodScheduled", true, p.started_ms),
            ],
            "hostIP": format!("172.18.0.{}", 2 + r),
            "podIP": pod_ip(r, p.ordinal, p.incarnation),
            "podIPs": [{"ip": pod_ip(r, p.ordinal, p.incarnation)}],
            "startTime": fmt_s(p.started_ms),
            "qosClass": "Burstable",
            "containerStatuses": [{
                "name": CONTAINER,
                "image": IMAGE,
                "imageID": format!("docker.io/{IMAGE}@sha256:{}", "0".repeat(64)),
                "containerID": format!("containerd://{}", uid(r, "Container", &name, p.incarnation).replace('-', "")),
                "ready": ready,
                "started": true,
                "restartCount": p.restarts,
                "state": {"running": {"startedAt": fmt_s(p.started_ms)}},
                "lastState": {},
            }],
        },
    })
}

pub fn es_pod(r: usize, ns: &str, reg: &RegionSim) -> Value {
    let mut l = es_labels();
    l.push(("statefulset.kubernetes.io/pod-name", ES_POD));
    let t = reg.installed_ms;
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata(r, ns, "Pod", ES_POD, labels(&l), t, 0),
        "spec": {
            "containers": [{"name": "elasticsearch", "image": "bitnami/elasticsearch:8.17.0",
                "ports": [{"containerPort": 9200, "name": "rest-api", "protocol": "TCP"}]}],
            "hostname": ES_POD,
        },
        "status": {
            "phase": "Running",
            "conditions": [condition("Initialized", true, t), condition("Ready", true, t),
                condition("ContainersReady", true, t), condition("PodScheduled", true, t)],
            "podIP": format!("10.{}.100.10", 10 + r),
            "startTime": fmt_s(t),
            "containerStatuses": [{"name": "elasticsearch", "image": "bitnami/elasticsearch:8.17.0",
                "imageID": "", "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": fmt_s(t)}}}],
        },
    })
}

/// Every pod of the region.
pub fn pods(w: &World, r: usize, ns: &str) -> Vec<Value> {
    let reg = &w.regions[r];
    if !reg.running() {
        return Vec::new();
    }
    let mut v: Vec<Value> = reg.pods.iter().map(|p| zeebe_pod(r, ns, p, reg, w.pod_clock)).collect();
    if reg.es.is_some() {
        v.insert(0, es_pod(r, ns, reg));
    }
    v
}

/// The pod log: Camunda's Spring Boot startup lines as far as the pod got.
pub fn pod_log(p: &PodSim, ns: &str, now: i64) -> String {
    let line = |ms: i64, logger: &str, msg: &str| {
        format!("{}  INFO 7 --- [           main] {logger:<40} : {msg}\n", fmt_ms(ms))
    };
    let app = "io.camunda.application.StandaloneCamunda";
    let mut out =
        line(p.started_ms, app, &format!("Starting StandaloneCamunda v{APP_VERSION} using Java 21.0.7 with PID 7"));
    if p.started_app(now) {
        let at = p.stuck_since_ms.map_or(p.ready_at_ms, |s| s.min(p.ready_at_ms));
        let profiles = profiles_for(p.webapps);
        let quoted: Vec<String> = profiles.iter().map(|x| format!("\"{x}\"")).collect();
        out.push_str(&line(
            at,
            app,
            &format!("The following {} profiles are active: {}", profiles.len(), quoted.join(", ")),
        ));
        if p.ready(now) {
            out.push_str(&line(at, app, "Started StandaloneCamunda in 21.4 seconds (process running for 22.9)"));
        }
        if let Some(s) = p.stuck_since_ms {
            out.push_str(&format!(
                "{}  WARN 7 --- [ atomix-cluster-0] i.a.c.d.DnsMemberLocationProvider         : Failed to resolve camunda-zeebe-0.camunda-zeebe.{ns}.svc.cluster.local: UnknownHostException\n",
                fmt_ms(s)
            ));
        }
    }
    out
}

pub fn statefulset(w: &World, r: usize, ns: &str) -> Option<Value> {
    let reg = &w.regions[r];
    if !reg.running() {
        return None;
    }
    let now = w.pod_clock;
    let update = reg.update_revision();
    let replicas = reg.pods.len();
    let count = |f: &dyn Fn(&PodSim) -> bool| reg.pods.iter().filter(|p| f(p)).count();
    let mut meta = metadata(r, ns, "StatefulSet", STATEFULSET, labels(&zeebe_labels()), reg.installed_ms, 0);
    meta["generation"] = json!(reg.generation);
    meta["annotations"] = json!({"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": ns});
    Some(json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": zeebe_selector()},
            "serviceName": STATEFULSET,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {
                "metadata": {"labels": labels(&zeebe_labels())},
                "spec": {"containers": [container(reg.create_schema)]},
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "32Gi"}}}}],
        },
        "status": {
            "observedGeneration": reg.generation,
            "replicas": replicas,
            "readyReplicas": count(&|p| p.ready(now)),
            "availableReplicas": count(&|p| p.ready(now)),
            "currentReplicas": count(&|p| p.revision() == reg.current_revision),
            "updatedReplicas": count(&|p| p.revision() == update),
            "currentRevision": reg.current_revision,
            "updateRevision": update,
            "collisionCount": 0,
        },
    }))
}

pub fn pvc(r: usize, ns: &str, name: &str, created_ms: i64) -> Value {
    let component = if name.contains("elasticsearch") { "master" } else { "zeebe-broker" };
    let l = labels(&[("app.kubernetes.io/instance", RELEASE), ("app.kubernetes.io/component", component)]);
    let size = if component == "master" { "64Gi" } else { "32Gi" };
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(r, ns, "PersistentVolumeClaim", name, l, created_ms, 0),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
            "storageClassName": "standard", "volumeMode": "Filesystem",
            "volumeName": format!("pvc-{}", uid(r, "PersistentVolume", name, 0))},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}},
    })
}

pub fn pvcs(w: &World, r: usize, ns: &str) -> Vec<Value> {
    let reg = &w.regions[r];
    reg.pvc_names.iter().map(|n| pvc(r, ns, n, reg.installed_ms)).collect()
}

/// `data.release` of a Helm release secret: base64(gzip(JSON)), as Helm stores it (the API
/// base64-encodes secret data once more).
pub fn release_payload(rev: &ReleaseRev, ns: &str) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(rev.release_json(ns).to_string().as_bytes());
    let bytes = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn release_secret(r: usize, ns: &str, rev: &ReleaseRev) -> Value {
    let name = format!("sh.helm.release.v1.{RELEASE}.v{}", rev.version);
    let version = rev.version.to_string();
    let l = labels(&[("owner", "helm"), ("name", RELEASE), ("status", &rev.status), ("version", &version)]);
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": metadata(r, ns, "Secret", &name, l, rev.created_ms, 0),
        "data": {"release": b64.encode(release_payload(rev, ns))},
    })
}

pub fn secrets(w: &World, r: usize, ns: &str) -> Vec<Value> {
    w.regions[r].releases.iter().map(|rev| release_secret(r, ns, rev)).collect()
}

pub fn configmap(w: &World, r: usize, ns: &str) -> Option<Value> {
    let reg = &w.regions[r];
    if !reg.running() {
        return None;
    }
    let active = reg.profiles().join(",");
    let yaml = format!(
        "camunda:\n  cluster:\n    size: {size}\n    partitionCount: {parts}\n    replicationFactor: {rf}\n  data:\n    secondary-storage:\n      type: elasticsearch\nspring:\n  profiles:\n    active: \"{active}\"\n",
        size = w.opts.cluster_size,
        parts = w.opts.partition_count,
        rf = w.opts.replication_factor,
    );
    let mut l = zeebe_labels();
    l.retain(|(k, _)| *k != "app.kubernetes.io/component");
    Some(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(r, ns, "ConfigMap", CONFIGMAP, labels(&l), reg.releases.last().map_or(reg.installed_ms, |x| x.created_ms), 0),
        "data": {"application.yaml": yaml},
    }))
}

pub fn service(w: &World, r: usize, ns: &str, name: &str) -> Option<Value> {
    let reg = &w.regions[r];
    if !reg.running() {
        return None;
    }
    let (ports, selector) = match name {
        GATEWAY_SERVICE => (
            json!([
                {"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080},
                {"name": "http-management", "port": 9600, "protocol": "TCP", "targetPort": 9600},
                {"name": "grpc", "port": 26500, "protocol": "TCP", "targetPort": 26500},
            ]),
            zeebe_selector(),
        ),
        ES_SERVICE if reg.es.is_some() => (
            json!([{"name": "tcp-rest-api", "port": 9200, "protocol": "TCP", "targetPort": "rest-api"}]),
            labels(&es_labels()),
        ),
        _ => return None,
    };
    Some(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(r, ns, "Service", name, labels(&[("app.kubernetes.io/instance", RELEASE)]), reg.installed_ms, 0),
        "spec": {"type": "ClusterIP", "clusterIP": format!("10.96.{}.{}", r, if name == ES_SERVICE { 20 } else { 10 }),
            "ports": ports, "selector": selector},
        "status": {"loadBalancer": {}},
    }))
}

pub fn endpoints(w: &World, r: usize, ns: &str, name: &str) -> Option<Value> {
    let svc = service(w, r, ns, name)?;
    let reg = &w.regions[r];
    let now = w.pod_clock;
    let address = |ip: String, pod: &str| json!({"ip": ip, "targetRef": {"kind": "Pod", "namespace": ns, "name": pod}});
    let (ready, not_ready): (Vec<Value>, Vec<Value>) = if name == ES_SERVICE {
        (vec![address(format!("10.{}.100.10", 10 + r), ES_POD)], vec![])
    } else {
        let mut ready = vec![];
        let mut not_ready = vec![];
        for p in &reg.pods {
            let a = address(pod_ip(r, p.ordinal, p.incarnation), &p.name());
            if p.ready(now) { ready.push(a) } else { not_ready.push(a) }
        }
        (ready, not_ready)
    };
    let ports: Vec<Value> = svc["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| json!({"name": p["name"], "port": p["port"], "protocol": "TCP"}))
        .collect();
    let mut subset = json!({"ports": ports});
    if !ready.is_empty() {
        subset["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        subset["notReadyAddresses"] = json!(not_ready);
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": metadata(r, ns, "Endpoints", name, svc["metadata"]["labels"].clone(), reg.installed_ms, 0),
        "subsets": [subset],
    }))
}

pub fn namespace(ns: &str, extra: &BTreeMap<String, String>, created_ms: i64) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/metadata.name".into(), json!(ns));
    for (k, v) in extra {
        l.insert(k.clone(), json!(v));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "uid": uid(0, "Namespace", ns, 0), "resourceVersion": "1",
            "creationTimestamp": fmt_s(created_ms), "labels": l},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// `a=b,c==d,e!=f,g,!h`: equality-based label selectors. Set-based ones are refused.
pub fn selector_matches(selector: &str, labels: &Value) -> Result<bool, String> {
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let get = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
        let ok = if let Some((k, v)) = term.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k) == Some(v.trim())
        } else if term.contains(' ') || term.contains('(') {
            return Err(format!(
                "unable to parse requirement: set-based selector {term:?} is not supported by the lab"
            ));
        } else if let Some(k) = term.strip_prefix('!') {
            get(k).is_none()
        } else {
            get(term).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let l = json!({"app.kubernetes.io/instance": "camunda", "owner": "helm"});
        assert_eq!(selector_matches("app.kubernetes.io/instance=camunda", &l), Ok(true));
        assert_eq!(selector_matches("owner==helm,app.kubernetes.io/instance=camunda", &l), Ok(true));
        assert_eq!(selector_matches("owner=helm,name=camunda", &l), Ok(false));
        assert_eq!(selector_matches("owner!=helm", &l), Ok(false));
        assert_eq!(selector_matches("owner,!name", &l), Ok(true));
        assert!(selector_matches("owner in (helm)", &l).is_err());
    }
}
