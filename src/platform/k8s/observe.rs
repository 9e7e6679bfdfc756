//! What runs in one region, read through kube-rs in the region's namespace (docs/kubernetes.md,
//! "Observation and Helm"):
//!
//! - the `<release>-zeebe` StatefulSet: its rollout and the schema-creation flag of its pod
//!   template;
//! - its pods (selected by the StatefulSet's own `spec.selector.matchLabels`): phase, readiness,
//!   restarts, revision, and the Spring profiles each one logged at startup
//!   (`The following 3 profiles are active: "broker", "identity", "consolidated-auth"`);
//! - the `<release>-zeebe-configuration-unified` ConfigMap: the configured profiles, and the
//!   fallback for a pod whose log no longer holds the line (rotated) when that pod runs the
//!   StatefulSet's update revision and the rollout is complete;
//! - the release's PVCs (`app.kubernetes.io/instance=<release>`) and its newest Helm release
//!   secret ([`super::release`]).
//!
//! Unreadable (403, 5xx, unparsable) is an error, never "off" or "absent". Only a NotFound of the
//! StatefulSet or the ConfigMap means "no release" (or "not configured").
use super::{api_error, configuration_configmap, is_not_found, release, release_selector, statefulset_name};
use crate::platform::helm::CREATE_SCHEMA_ENV;
use crate::platform::{PlatformError, PlatformStatus, PodStatus, Rollout};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;

/// How much of a pod's log is read (from its start): the profile line is among the first lines
/// Spring Boot writes, and a bounded read keeps a chatty broker's log from being pulled whole.
pub const LOG_LIMIT_BYTES: i64 = 1024 * 1024;

/// The label a StatefulSet puts on each pod: the revision the pod runs.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The profiles of one Spring Boot startup line, e.g.
/// `The following 3 profiles are active: "broker", "identity", "consolidated-auth"`,
/// `The following 1 profile is active: "broker"` (also inside a JSON log line, quotes escaped),
/// or the older `The following profiles are active: broker,identity`. `None` when the line is
/// not such a line or is cut short (fewer names than it announces).
pub fn parse_profiles_line(line: &str) -> Option<Vec<String>> {
    const START: &str = "The following ";
    let rest = &line[line.find(START)? + START.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let rest = &rest[digits.len()..];
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let rest = rest
        .strip_prefix("profiles are active:")
        .or_else(|| rest.strip_prefix("profile is active:"))?
        .replace("\\\"", "\"");
    let valid = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let names: Vec<String> = if digits.is_empty() {
        // Spring Boot 2: `... are active: a,b` up to the end of the line
        rest.split(',').map(|p| p.trim().trim_matches('"').to_string()).collect()
    } else {
        let n: usize = digits.parse().ok()?;
        // the first n quoted names; what follows (a JSON log line's other fields) is not ours
        let names: Vec<String> = rest.split('"').skip(1).step_by(2).take(n).map(str::to_string).collect();
        if names.len() != n {
            return None;
        }
        names
    };
    (!names.is_empty() && names.iter().all(|p| valid(p))).then_some(names)
}

/// The profiles of the LAST startup line in `log` (a container restart logs it again).
pub fn profiles_from_log(log: &str) -> Option<Vec<String>> {
    log.lines().rev().filter(|l| l.contains("The following ")).find_map(parse_profiles_line)
}

/// `spring.profiles.active` of a ConfigMap: searched in its YAML entries (`application.yaml`
/// first) as a flat dotted key, nested maps or a mix of both, and in `.properties` entries.
/// `Ok(None)` when no entry sets it; an entry that is not valid YAML is an error.
pub fn configured_profiles(cm: &ConfigMap) -> Result<Option<Vec<String>>, String> {
    let Some(data) = &cm.data else { return Ok(None) };
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "application.yaml", k.as_str() != "application.yml", k.as_str()));
    for key in keys {
        let text = &data[key];
        let found = if key.ends_with(".yaml") || key.ends_with(".yml") {
            if text.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_yaml_ng::from_str(text).map_err(|e| format!("its entry {key} is not valid YAML ({e})"))?;
            match lookup(&v, &["spring", "profiles", "active"]) {
                None => None,
                Some(Value::String(s)) => Some(split_list(s)),
                Some(Value::Array(items)) => {
                    Some(items.iter().filter_map(Value::as_str).flat_map(split_list).collect())
                }
                Some(other) => {
                    return Err(format!("its entry {key} sets spring.profiles.active to {other}, not a list"));
                }
            }
        } else if key.ends_with(".properties") {
            text.lines().find_map(|l| {
                let l = l.trim();
                let rest = l.strip_prefix("spring.profiles.active")?.trim_start();
                let value = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':'))?;
                Some(split_list(value))
            })
        } else {
            None
        };
        if let Some(list) = found {
            return Ok((!list.is_empty()).then_some(list));
        }
    }
    Ok(None)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().trim_matches(['"', '\'']).to_string()).filter(|p| !p.is_empty()).collect()
}

/// `path` in `v`, where each map level may spell any number of the path's segments as one
/// dotted key (`spring.profiles.active`, `spring: {profiles.active: ...}`, nested maps).
fn lookup<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(v);
    }
    let map = v.as_object()?;
    (1..=path.len()).rev().find_map(|n| map.get(&path[..n].join(".")).and_then(|child| lookup(child, &path[n..])))
}

/// The StatefulSet's rollout as `kubectl rollout status` reads it.
pub fn rollout_of(sts: &StatefulSet) -> Rollout {
    let status = sts.status.clone().unwrap_or_default();
    Rollout {
        generation: sts.metadata.generation.unwrap_or(0),
        observed_generation: status.observed_generation.unwrap_or(0),
        replicas: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        current_revision: status.current_revision.unwrap_or_default(),
        update_revision: status.update_revision.unwrap_or_default(),
    }
}

/// Schema creation of the StatefulSet's pod template: `Some(false)` when a container sets
/// `CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA=false`, `Some(true)` when set true or not set
/// (Camunda's default), `None` when set from a Secret/ConfigMap or to something else.
pub fn create_schema_of(sts: &StatefulSet) -> Option<bool> {
    let containers = &sts.spec.as_ref()?.template.spec.as_ref()?.containers;
    let mut result = Some(true);
    for var in containers.iter().flat_map(|c| c.env.iter().flatten()).filter(|e| e.name == CREATE_SCHEMA_ENV) {
        match var.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("false") => return Some(false),
            Some("true") => {}
            _ => result = None,
        }
    }
    result
}

/// A pod as the steps see it (profiles filled in by [`observe`]).
pub fn pod_status_of(pod: &Pod) -> PodStatus {
    let status = pod.status.clone().unwrap_or_default();
    let ready_condition = status.conditions.iter().flatten().find(|c| c.type_ == "Ready");
    let ready = ready_condition.is_some_and(|c| c.status == "True");
    PodStatus {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.clone().unwrap_or_default(),
        ready,
        not_ready_since: if ready {
            None
        } else {
            ready_condition.and_then(|c| c.last_transition_time.as_ref()).and_then(|t| {
                chrono::DateTime::from_timestamp(t.0.as_second(), u32::try_from(t.0.subsec_nanosecond()).unwrap_or(0))
            })
        },
        profiles: None,
        revision: pod.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)).cloned(),
        restarts: status.container_statuses.iter().flatten().map(|c| c.restart_count).sum(),
        uid: pod.metadata.uid.clone(),
        terminating: pod.metadata.deletion_timestamp.is_some(),
    }
}

/// The region's namespace: the configured one, else the client's default.
pub fn namespace_of(client: &kube::Client, configured: &str) -> String {
    if configured.is_empty() { client.default_namespace().to_string() } else { configured.to_string() }
}

/// The release's PVCs (label `app.kubernetes.io/instance=<release>`): other PVCs of the
/// namespace (an ECK Elasticsearch) are not the release's.
pub async fn release_pvcs(
    client: &kube::Client,
    ns: &str,
    release: &str,
) -> Result<Vec<PersistentVolumeClaim>, PlatformError> {
    let selector = release_selector(release);
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .map_err(|e| api_error(&e, "list", &format!("persistentvolumeclaims ({selector})"), ns))
}

/// Everything above, for `release` in namespace `ns`.
pub async fn observe(client: &kube::Client, ns: &str, release_name: &str) -> Result<PlatformStatus, PlatformError> {
    let sts_name = statefulset_name(release_name);
    let sts = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .get_opt(&sts_name)
        .await
        .map_err(|e| api_error(&e, "get", &format!("statefulset {sts_name}"), ns))?;
    let cm_name = configuration_configmap(release_name);
    let configured_profiles = match Api::<ConfigMap>::namespaced(client.clone(), ns).get(&cm_name).await {
        Ok(cm) => configured_profiles(&cm)
            .map_err(|why| PlatformError::Failed(format!("configmap {cm_name} in namespace {ns}: {why}")))?,
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(api_error(&e, "get", &format!("configmap {cm_name}"), ns)),
    };
    let helm_release = release::newest(client, ns, release_name).await?;
    let pvcs = release_pvcs(client, ns, release_name).await?.len() as u32;
    let mut status = PlatformStatus {
        release: sts.is_some() && helm_release.as_ref().is_some_and(|r| r.status == "deployed"),
        pvcs,
        configured_profiles: configured_profiles.clone(),
        helm_release,
        ..Default::default()
    };
    let Some(sts) = sts else { return Ok(status) };
    let rollout = rollout_of(&sts);
    status.create_schema = create_schema_of(&sts);
    let labels = sts.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
    if labels.is_empty() {
        return Err(PlatformError::Failed(format!(
            "statefulset {sts_name} in namespace {ns} has no spec.selector.matchLabels: its pods cannot be selected"
        )));
    }
    let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pods = pods_api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error(&e, "list", &format!("pods ({selector})"), ns))?
        .items;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in &pods {
        let mut ps = pod_status_of(pod);
        let from_log = read_profiles(&pods_api, pod, ns).await?;
        ps.profiles = from_log.or_else(|| {
            // a rotated log: the pod runs what the ConfigMap says only if it runs the newest
            // revision and nothing is rolling
            let current = rollout.complete() && ps.revision.as_deref() == Some(rollout.update_revision.as_str());
            if current { configured_profiles.clone() } else { None }
        });
        status.pods.push(ps);
    }
    status.profiles = common_profiles(&status.pods, rollout.replicas);
    status.rollout = Some(rollout);
    Ok(status)
}

/// The profiles every pod runs: `None` unless there are `replicas` pods, each one's profiles
/// known, all the same set.
pub fn common_profiles(pods: &[PodStatus], replicas: i32) -> Option<Vec<String>> {
    if pods.is_empty() || i32::try_from(pods.len()).ok()? != replicas {
        return None;
    }
    let sorted = |p: &Vec<String>| {
        let mut s = p.clone();
        s.sort();
        s
    };
    let first = pods[0].profiles.as_ref()?;
    let all_equal = pods.iter().all(|p| p.profiles.as_ref().is_some_and(|q| sorted(q) == sorted(first)));
    all_equal.then(|| first.clone())
}

/// A pod's profiles from its log; `Ok(None)` when the pod has no log to read yet (not started:
/// HTTP 400) or the log does not hold the line.
async fn read_profiles(api: &Api<Pod>, pod: &Pod, ns: &str) -> Result<Option<Vec<String>>, PlatformError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let container = pod.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone());
    let params = LogParams { container, limit_bytes: Some(LOG_LIMIT_BYTES), ..Default::default() };
    match api.logs(&name, &params).await {
        Ok(log) => Ok(profiles_from_log(&log)),
        Err(kube::Error::Api(s)) if s.code == 400 => Ok(None),
        Err(e) => Err(api_error(&e, "get", &format!("pods/log of {name}"), ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn profile_lines() {
        let l = r#"2025-10-01 INFO  io.camunda.application.StandaloneCamunda - The following 3 profiles are active: "broker", "identity", "consolidated-auth""#;
        assert_eq!(parse_profiles_line(l), v(&["broker", "identity", "consolidated-auth"]));
        assert_eq!(parse_profiles_line(r#"The following 1 profile is active: "broker""#), v(&["broker"]));
        let json = r#"{"severity":"INFO","message":"The following 2 profiles are active: \"broker\", \"operate\"","logger":"x"}"#;
        assert_eq!(parse_profiles_line(json), v(&["broker", "operate"]));
        assert_eq!(
            parse_profiles_line("The following profiles are active: broker,identity"),
            v(&["broker", "identity"])
        );
        // cut short (a log read limit): fewer names than announced is unknown
        assert_eq!(parse_profiles_line(r#"The following 3 profiles are active: "broker", "iden"#), None);
        assert_eq!(parse_profiles_line("The following options are set"), None);
        let log = "The following 5 profiles are active: \"broker\", \"identity\", \"consolidated-auth\", \"operate\", \"tasklist\"\n\
                   ... restart ...\n\
                   The following 3 profiles are active: \"broker\", \"identity\", \"consolidated-auth\"\n\
                   Started StandaloneCamunda\n";
        assert_eq!(profiles_from_log(log), v(&["broker", "identity", "consolidated-auth"]), "the last line wins");
        assert_eq!(profiles_from_log("nothing here\n"), None);
    }

    fn cm(key: &str, text: &str) -> ConfigMap {
        ConfigMap { data: Some([(key.to_string(), text.to_string())].into_iter().collect()), ..Default::default() }
    }

    #[test]
    fn configmap_profiles() {
        let flat = cm("application.yaml", "spring.profiles.active: \"broker,identity,consolidated-auth\"\n");
        assert_eq!(configured_profiles(&flat).unwrap(), v(&["broker", "identity", "consolidated-auth"]));
        let nested =
            cm("application.yaml", "zeebe:\n  broker: {}\nspring:\n  profiles:\n    active: broker, operate\n");
        assert_eq!(configured_profiles(&nested).unwrap(), v(&["broker", "operate"]));
        let mixed = cm("application.yaml", "spring:\n  profiles.active: [broker, tasklist]\n");
        assert_eq!(configured_profiles(&mixed).unwrap(), v(&["broker", "tasklist"]));
        let props = cm("application.properties", "a=b\nspring.profiles.active=broker,identity\n");
        assert_eq!(configured_profiles(&props).unwrap(), v(&["broker", "identity"]));
        assert_eq!(configured_profiles(&cm("application.yaml", "spring:\n  main: {}\n")).unwrap(), None);
        // unparsable is an error, not "no profiles"
        assert!(configured_profiles(&cm("application.yaml", "spring: [\n")).is_err());
    }

    #[test]
    fn schema_flag() {
        let sts = |env: Value| -> StatefulSet {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "camunda-zeebe"},
                "spec": {"selector": {}, "serviceName": "x", "template": {"spec": {"containers": [{"name": "orchestration", "env": env}]}}}
            }))
            .unwrap()
        };
        let e = |v: Value| serde_json::json!([{"name": "X", "value": "1"}, v]);
        assert_eq!(
            create_schema_of(&sts(e(serde_json::json!({"name": CREATE_SCHEMA_ENV, "value": "False"})))),
            Some(false)
        );
        assert_eq!(
            create_schema_of(&sts(e(serde_json::json!({"name": CREATE_SCHEMA_ENV, "value": "true"})))),
            Some(true)
        );
        assert_eq!(create_schema_of(&sts(serde_json::json!([]))), Some(true));
        let from_secret =
            serde_json::json!({"name": CREATE_SCHEMA_ENV, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}});
        assert_eq!(create_schema_of(&sts(e(from_secret))), None);
    }

    #[test]
    fn profiles_of_every_pod() {
        let pod = |p: Option<Vec<String>>| PodStatus { profiles: p, ..Default::default() };
        let off = v(&["broker", "identity"]);
        assert_eq!(common_profiles(&[pod(off.clone()), pod(v(&["identity", "broker"]))], 2), off);
        assert_eq!(common_profiles(&[pod(off.clone()), pod(v(&["broker", "operate"]))], 2), None);
        assert_eq!(common_profiles(&[pod(off.clone()), pod(None)], 2), None);
        assert_eq!(common_profiles(&[pod(off.clone())], 2), None, "a missing pod is not known");
        assert_eq!(common_profiles(&[], 0), None);
    }
}
