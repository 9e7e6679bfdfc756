//! Mode `command`, observation through `kubectl` subprocesses: the ConfigMap's profiles, the
//! StatefulSet's schema flag, the release's PVCs. Helm actions run the CLI ([`CliHelm`]).
use super::helm::{CliHelm, command_line, run_command, tail};
use super::{HelmAction, HelmRunner, Platform, PlatformError, PlatformStatus};
use crate::config::TargetConfig;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

fn kube_args(target: &TargetConfig, region: u8) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(rc) = target.regions.get(usize::from(region)) {
        if !rc.namespace.is_empty() {
            a.extend(["-n".into(), rc.namespace.clone()]);
        }
        if let Some(ctx) = &rc.kube_context {
            a.extend(["--context".into(), ctx.clone()]);
        }
    }
    a
}

/// The kubectl command that shows the active profiles (for manual verification).
pub fn profiles_command(target: &TargetConfig, region: u8) -> String {
    let mut a = vec!["get".to_string(), "configmap".into(), format!("{}-zeebe-configuration-unified", target.release)];
    a.extend(kube_args(target, region));
    a.extend(["-o".into(), "yaml".into()]);
    command_line("kubectl", &a)
}

/// Runs helm and kubectl.
pub struct CommandPlatform {
    pub kubectl: String,
}

/// The value of `spring.profiles.active` in a configmap dump; `None` when the dump does not
/// name the active profiles (renamed key, another layout): unknown, not "no profiles".
pub fn parse_profiles(text: &str) -> Option<Vec<String>> {
    let idx = text.find("spring.profiles.active").map(|i| i + "spring.profiles.active".len()).or_else(|| {
        let p = text.find("profiles:")?;
        text[p..].find("active:").map(|a| p + a + "active:".len())
    })?;
    let rest = text[idx..].trim_start_matches([':', ' ', '=', '"', '\'']);
    let end = rest.find(['"', '\'', '\n']).unwrap_or(rest.len());
    let list: Vec<String> = rest[..end].split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    (!list.is_empty()).then_some(list)
}

/// `Some(true)` when a statefulset (JSON) sets `CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA=false`
/// on a container, `Some(false)` when it does not, `None` when the JSON is no statefulset.
pub fn schema_creation_off(statefulset_json: &str) -> Option<bool> {
    let v = serde_json::from_str::<Value>(statefulset_json).ok()?;
    let containers = v.pointer("/spec/template/spec/containers")?.as_array()?.clone();
    Some(containers.iter().any(|c| {
        c["env"].as_array().is_some_and(|env| {
            env.iter().any(|e| {
                e["name"] == "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA"
                    && e["value"].as_str().is_some_and(|x| x.eq_ignore_ascii_case("false"))
            })
        })
    }))
}

impl Platform for CommandPlatform {
    fn status<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
    ) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>> {
        async move {
            let t = Duration::from_secs(target.helm.timeout_secs.max(1));
            let mut helm = vec!["status".to_string(), target.release.clone()];
            if let Some(rc) = target.regions.get(usize::from(region)) {
                if !rc.namespace.is_empty() {
                    helm.extend(["--namespace".into(), rc.namespace.clone()]);
                }
                if let Some(ctx) = &rc.kube_context {
                    helm.extend(["--kube-context".into(), ctx.clone()]);
                }
            }
            let (release, _) = run_command(&target.helm.binary, &helm, t).await?;
            // only the release's own PVCs: a pre-provisioned Elasticsearch (ECK) in the same
            // namespace is not a leftover of the lost release
            let mut pvc = vec![
                "get".to_string(),
                "pvc".into(),
                "-l".into(),
                format!("app.kubernetes.io/instance={}", target.release),
                "-o".into(),
                "name".into(),
            ];
            pvc.extend(kube_args(target, region));
            let (ok, out) = run_command(&self.kubectl, &pvc, t).await?;
            if !ok {
                return Err(PlatformError::Failed(format!("kubectl get pvc failed: {}", tail(&out, 500))));
            }
            let pvcs = out.lines().filter(|l| l.starts_with("persistentvolumeclaim")).count() as u32;
            let mut cm =
                vec!["get".to_string(), "configmap".into(), format!("{}-zeebe-configuration-unified", target.release)];
            cm.extend(kube_args(target, region));
            cm.extend(["-o".into(), "yaml".into()]);
            let (cm_ok, cm_out) = run_command(&self.kubectl, &cm, t).await?;
            let profiles = if cm_ok { parse_profiles(&cm_out) } else { None };
            let mut sts = vec!["get".to_string(), "statefulset".into(), format!("{}-zeebe", target.release)];
            sts.extend(kube_args(target, region));
            sts.extend(["-o".into(), "json".into()]);
            let (sts_ok, sts_out) = run_command(&self.kubectl, &sts, t).await?;
            let create_schema = if sts_ok { schema_creation_off(&sts_out).map(|off| !off) } else { None };
            Ok(PlatformStatus {
                release,
                pvcs,
                profiles: profiles.clone(),
                configured_profiles: profiles,
                create_schema,
                ..Default::default()
            })
        }
        .boxed()
    }
    fn helm<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        CliHelm.apply(target, region, action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn target(dir: &Path) -> TargetConfig {
        let mut t = crate::procedure::regions::tests_support::target();
        t.helm.chart_version = Some("13.0.0".into());
        t.helm.base_values = vec![dir.join("base.yaml")];
        t.regions[1].kube_context = Some("ctx-b".into());
        t
    }

    #[test]
    fn profiles_from_configmap() {
        let y = "data:\n  application.yaml: |\n    spring.profiles.active: \"broker,identity,consolidated-auth\"\n";
        assert_eq!(parse_profiles(y), Some(vec!["broker".into(), "identity".into(), "consolidated-auth".into()]));
        assert_eq!(parse_profiles("nothing"), None);
    }

    fn script(dir: &Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    #[tokio::test]
    async fn command_mode_reads_release_pvcs_profiles_and_schema_flag() {
        let dir = tempfile::tempdir().unwrap();
        let helm = script(dir.path(), "helm", "[ \"$1\" = status ] && echo deployed");
        // a pre-provisioned (ECK) Elasticsearch PVC shares the namespace: only the release's count
        let kubectl = script(
            dir.path(),
            "kubectl",
            r#"case "$2" in
  pvc) if [ "$3" = "-l" ] && [ "$4" = "app.kubernetes.io/instance=camunda" ]; then
         printf 'persistentvolumeclaim/data-camunda-zeebe-0\npersistentvolumeclaim/data-camunda-zeebe-1\n'
       else
         printf 'persistentvolumeclaim/data-camunda-zeebe-0\npersistentvolumeclaim/data-camunda-zeebe-1\npersistentvolumeclaim/elasticsearch-data-es-default-0\n'
       fi ;;
  configmap) printf 'data:\n  application.yaml: |\n    spring.profiles.active: "broker,identity,consolidated-auth"\n' ;;
  statefulset) echo '{"spec":{"template":{"spec":{"containers":[{"env":[{"name":"CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA","value":"false"}]}]}}}}' ;;
esac"#,
        );
        let mut t = target(dir.path());
        t.helm.binary = helm;
        let p = CommandPlatform { kubectl };
        let s = p.status(&t, 1).await.unwrap();
        assert_eq!(
            s,
            PlatformStatus {
                release: true,
                pvcs: 2,
                profiles: Some(vec!["broker".into(), "identity".into(), "consolidated-auth".into()]),
                configured_profiles: Some(vec!["broker".into(), "identity".into(), "consolidated-auth".into()]),
                create_schema: Some(false),
                ..Default::default()
            }
        );
        assert!(HelmAction::DeployRecreated.holds(&s));
        assert_eq!(schema_creation_off("{}"), None);
    }

    #[tokio::test]
    async fn command_mode_unreadable_profiles_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let helm = script(dir.path(), "helm", "[ \"$1\" = status ] && echo deployed");
        // the ConfigMap is not there (renamed, or not permitted): kubectl fails
        let kubectl = script(
            dir.path(),
            "kubectl",
            r#"case "$2" in
  pvc) printf 'persistentvolumeclaim/data-camunda-zeebe-0\n' ;;
  configmap) echo 'Error from server (Forbidden): configmaps is forbidden' >&2; exit 1 ;;
  statefulset) echo 'Error from server (NotFound)' >&2; exit 1 ;;
esac"#,
        );
        let mut t = target(dir.path());
        t.helm.binary = helm;
        let s = CommandPlatform { kubectl }.status(&t, 0).await.unwrap();
        assert_eq!((s.profiles.clone(), s.create_schema), (None, None));
        assert!(!HelmAction::DisableWebapps.holds(&s), "unknown profiles are not 'webapps off'");
    }
}
