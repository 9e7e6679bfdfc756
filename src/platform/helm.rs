//! `helm` command lines for the failback's Helm actions, built the way Helm merges values files,
//! and the runners: the CLI with a timeout (mode `command`) and a person (mode `manual`).
use super::{HelmAction, HelmRunner, PlatformError};
use crate::config::{HelmConfig, TargetConfig};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

/// The variable the recreated region's deploy sets to `false` (docs/target-apis.md §6.12).
pub const CREATE_SCHEMA_ENV: &str = "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA";

/// A Helm setting or values file that does not allow a safe helm call; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct HelmInputError {
    pub field: String,
    pub message: String,
}

/// In `manual` and `command` mode a helm call must not fall back to chart defaults or the latest
/// chart: `chart_version`, `base_values` and one values list per region are required.
pub fn check_pinned(target_name: &str, target: &TargetConfig) -> Result<(), HelmInputError> {
    match target.helm.pinning_problems().into_iter().next() {
        None => Ok(()),
        Some((key, message)) => Err(HelmInputError { field: format!("targets.{target_name}.helm.{key}"), message }),
    }
}

/// The values files helm gets for `region`, in order.
pub fn values_files(target: &TargetConfig, region: u8) -> Vec<std::path::PathBuf> {
    let h = &target.helm;
    h.base_values.iter().chain(h.region_values.get(usize::from(region)).into_iter().flatten()).cloned().collect()
}

/// `orchestration.env` as Helm computes it from `files`: maps merge, lists are replaced, so the
/// last file that sets the list wins (chart default: empty).
pub fn merged_orchestration_env(files: &[std::path::PathBuf]) -> Result<Vec<Value>, HelmInputError> {
    let mut env: Vec<Value> = Vec::new();
    for f in files {
        let field = format!("helm values file {}", f.display());
        let text = std::fs::read_to_string(f).map_err(|e| HelmInputError {
            field: field.clone(),
            message: format!("cannot be read ({e}): c8dr needs the values files helm uses to build the env list"),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let v: Value = serde_yaml_ng::from_str(&text).map_err(|e| HelmInputError {
            field: field.clone(),
            message: format!("is not valid YAML ({e}): fix the file"),
        })?;
        match v.pointer("/orchestration/env") {
            None => {}
            Some(Value::Null) => env.clear(),
            Some(Value::Array(list)) => env = list.clone(),
            Some(_) => {
                return Err(HelmInputError { field, message: "orchestration.env is not a list: fix the file".into() });
            }
        }
    }
    Ok(env)
}

/// The whole `orchestration.env` list for `action`, when it differs from what the values files
/// give: the one schema variable added (deploy of the recreated region) or removed (every
/// other action), every other entry kept in its place. Duplicate names are refused (Helm 4's
/// server-side apply rejects them).
pub fn env_for_action(
    target: &TargetConfig,
    region: u8,
    action: HelmAction,
) -> Result<Option<Vec<Value>>, HelmInputError> {
    let files = values_files(target, region);
    let merged = merged_orchestration_env(&files)?;
    let mut seen = std::collections::BTreeSet::new();
    for e in &merged {
        if let Some(name) = e.get("name").and_then(Value::as_str)
            && !seen.insert(name.to_string())
        {
            return Err(HelmInputError {
                field: "helm values files".into(),
                message: format!(
                    "orchestration.env of region {region} (from {}) names {name} twice: remove the duplicate",
                    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    let mut env: Vec<Value> =
        merged.iter().filter(|e| e.get("name").and_then(Value::as_str) != Some(CREATE_SCHEMA_ENV)).cloned().collect();
    if !action.create_schema() {
        env.push(json!({"name": CREATE_SCHEMA_ENV, "value": "false"}));
    }
    Ok((env != merged).then_some(env))
}

/// Where the generated env values file of `action` in `region` is written: beside the first
/// base values file (so a person running the manual command finds it where the other values
/// files are).
pub fn generated_values_path(target: &TargetConfig, region: u8, action: HelmAction) -> std::path::PathBuf {
    let dir =
        target.helm.base_values.first().and_then(|f| f.parent()).map(std::path::Path::to_path_buf).unwrap_or_default();
    dir.join(format!("c8dr-{}-region{region}-{}-env.yaml", target.release, action.name()))
}

fn write_generated(path: &std::path::Path, env: &[Value]) -> Result<(), HelmInputError> {
    let field = format!("generated values file {}", path.display());
    let text = serde_yaml_ng::to_string(&json!({"orchestration": {"env": env}}))
        .map_err(|e| HelmInputError { field: field.clone(), message: format!("cannot be rendered: {e}") })?;
    let body = format!(
        "# generated by c8dr: orchestration.env of your values files with {CREATE_SCHEMA_ENV} set for this helm call\n{text}"
    );
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600); // env values may hold credentials, like the values files
    }
    use std::io::Write;
    opts.open(path).and_then(|mut f| f.write_all(body.as_bytes())).map_err(|e| HelmInputError {
        field,
        message: format!("cannot be written ({e}): make the directory of the first base values file writable"),
    })
}

/// `helm upgrade --install ...` arguments for `action` in `region` (without the binary). When
/// the env list must change, writes the whole list to a generated values file passed last.
pub fn helm_args(target: &TargetConfig, region: u8, action: HelmAction) -> Result<Vec<String>, HelmInputError> {
    let h: &HelmConfig = &target.helm;
    let rc = target.regions.get(usize::from(region));
    let mut a: Vec<String> = vec!["upgrade".into(), "--install".into(), target.release.clone(), h.chart.clone()];
    if let Some(v) = &h.chart_version {
        a.extend(["--version".into(), v.clone()]);
    }
    if rc.is_some() {
        a.extend(scope_args(target, region));
    }
    for f in values_files(target, region) {
        a.extend(["-f".into(), f.display().to_string()]);
    }
    // guards docs/target-apis.md §6.12: no schema creation in the recreated region before the restore;
    // the whole env list, never an indexed --set that overwrites an entry of the values files
    if let Some(env) = env_for_action(target, region, action)? {
        let path = generated_values_path(target, region, action);
        write_generated(&path, &env)?;
        a.extend(["-f".into(), path.display().to_string()]);
    }
    if !action.webapps() {
        // guards docs/target-apis.md §6.18: Operate/Tasklist stay off until brokers are re-added
        a.extend([
            "--set".into(),
            "orchestration.profiles.operate=false".into(),
            "--set".into(),
            "orchestration.profiles.tasklist=false".into(),
        ]);
    }
    if action == HelmAction::DeployRecreated {
        // Optimize would create optimize-* indices in the empty Elasticsearch and the restore
        // would collide with them: off until step 8 (enable-webapps) upgrades with the values
        // files alone
        a.extend(["--set".into(), "optimize.enabled=false".into()]);
    }
    Ok(a)
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@[]+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn command_line(binary: &str, args: &[String]) -> String {
    std::iter::once(binary.to_string()).chain(args.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
}

/// Runs `binary args` with a timeout; stdout+stderr captured.
pub async fn run_command(binary: &str, args: &[String], timeout: Duration) -> Result<(bool, String), PlatformError> {
    let child =
        tokio::process::Command::new(binary).args(args).stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .map_err(|_| PlatformError::Failed(format!("{binary} timed out after {}s", timeout.as_secs())))?
        .map_err(|e| PlatformError::Failed(format!("cannot run {binary}: {e}")))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// The last `n` characters of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// `helm uninstall` arguments for `region` (without the binary).
pub fn uninstall_args(target: &TargetConfig, region: u8) -> Vec<String> {
    let mut a = vec!["uninstall".to_string(), target.release.clone(), "--wait".into()];
    a.extend(scope_args(target, region));
    a
}

/// `--namespace` / `--kube-context` of `region`.
pub fn scope_args(target: &TargetConfig, region: u8) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(rc) = target.regions.get(usize::from(region)) {
        if !rc.namespace.is_empty() {
            a.extend(["--namespace".into(), rc.namespace.clone()]);
        }
        if let Some(ctx) = &rc.kube_context {
            a.extend(["--kube-context".into(), ctx.clone()]);
        }
        // the kubeconfig the region's kube-rs client reads, so helm acts on the same cluster
        if let Some(path) = &rc.kubeconfig {
            a.extend(["--kubeconfig".into(), path.display().to_string()]);
        }
    }
    a
}

/// The `helm` CLI, with the target's `helm.binary` and `helm.timeout_secs`.
pub struct CliHelm;

impl HelmRunner for CliHelm {
    fn apply<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        async move {
            let args = helm_args(target, region, action).map_err(|e| PlatformError::Failed(e.to_string()))?;
            let (ok, out) =
                run_command(&target.helm.binary, &args, Duration::from_secs(target.helm.timeout_secs.max(1))).await?;
            if ok { Ok(out) } else { Err(PlatformError::Failed(format!("helm failed: {}", tail(&out, 2000)))) }
        }
        .boxed()
    }
    fn uninstall<'a>(&'a self, target: &'a TargetConfig, region: u8) -> BoxFuture<'a, Result<String, PlatformError>> {
        async move {
            let args = uninstall_args(target, region);
            let (ok, out) =
                run_command(&target.helm.binary, &args, Duration::from_secs(target.helm.timeout_secs.max(1))).await?;
            if ok {
                Ok(out)
            } else {
                Err(PlatformError::Failed(format!("helm uninstall failed: {}", tail(&out, 2000))))
            }
        }
        .boxed()
    }
}

/// A person runs helm: every call answers with the exact command (MANUAL_STEP_REQUIRED).
pub struct ManualHelm;

impl HelmRunner for ManualHelm {
    fn apply<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        let r = helm_args(target, region, action)
            .map(|args| command_line(&target.helm.binary, &args))
            .map_err(|e| PlatformError::Failed(e.to_string()))
            .and_then(|command| Err(PlatformError::Manual { command }));
        async move { r }.boxed()
    }
    fn uninstall<'a>(&'a self, target: &'a TargetConfig, region: u8) -> BoxFuture<'a, Result<String, PlatformError>> {
        let command = command_line(&target.helm.binary, &uninstall_args(target, region));
        async move { Err(PlatformError::Manual { command }) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HelmMode;
    use std::path::Path;

    /// A pinned target whose values files live in `dir`.
    fn target(dir: &Path) -> TargetConfig {
        let mut t = crate::procedure::regions::tests_support::target();
        let base = dir.join("base.yaml");
        std::fs::write(
            &base,
            "orchestration:\n  env:\n    - name: CAMUNDA_DATA_BACKUP_REPOSITORYNAME\n      value: camunda_backup\n",
        )
        .unwrap();
        std::fs::write(dir.join("region0.yaml"), "orchestration:\n  clusterSize: 8\n").unwrap();
        // the region file replaces the base file's list (Helm replaces lists)
        std::fs::write(
            dir.join("region1.yaml"),
            "orchestration:\n  env:\n    - name: ZEEBE_BROKER_CLUSTER_INITIALCONTACTPOINTS\n      value: a,b\n    - name: CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA\n      value: \"true\"\n",
        )
        .unwrap();
        t.helm.chart_version = Some("13.0.0".into());
        t.helm.base_values = vec![base];
        t.helm.region_values = vec![vec![dir.join("region0.yaml")], vec![dir.join("region1.yaml")]];
        t.regions[1].kube_context = Some("ctx-b".into());
        t
    }

    fn generated_env(path: &Path) -> Value {
        let v: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["orchestration"]["env"].clone()
    }

    #[test]
    fn helm_command_for_the_recreated_region() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let t = target(dir.path());
        let cmd = command_line("helm", &helm_args(&t, 1, HelmAction::DeployRecreated).unwrap());
        assert_eq!(
            cmd,
            format!(
                "helm upgrade --install camunda camunda/camunda-platform --version 13.0.0 --namespace camunda-b --kube-context ctx-b \
             -f {d}/base.yaml -f {d}/region1.yaml -f {d}/c8dr-camunda-region1-deploy-recreated-env.yaml \
             --set orchestration.profiles.operate=false --set orchestration.profiles.tasklist=false --set optimize.enabled=false"
            )
        );
        // the whole list of the last file that sets it, the variable replaced (never twice)
        assert_eq!(
            generated_env(&dir.path().join("c8dr-camunda-region1-deploy-recreated-env.yaml")),
            json!([
                {"name": "ZEEBE_BROKER_CLUSTER_INITIALCONTACTPOINTS", "value": "a,b"},
                {"name": CREATE_SCHEMA_ENV, "value": "false"}
            ])
        );
        // step 8 in region 1: the values files alone would keep it; the generated list drops it
        let on = command_line("helm", &helm_args(&t, 1, HelmAction::EnableWebapps).unwrap());
        assert!(on.contains("c8dr-camunda-region1-enable-webapps-env.yaml") && !on.contains("--set"), "{on}");
        assert_eq!(
            generated_env(&dir.path().join("c8dr-camunda-region1-enable-webapps-env.yaml")),
            json!([{"name": "ZEEBE_BROKER_CLUSTER_INITIALCONTACTPOINTS", "value": "a,b"}])
        );
        // region 0: nothing to change in the env list, no generated file, Optimize as configured
        let full = command_line("helm", &helm_args(&t, 0, HelmAction::EnableWebapps).unwrap());
        assert!(!full.contains("--set") && full.ends_with(&format!("-f {d}/base.yaml -f {d}/region0.yaml")), "{full}");
        let off = command_line("helm", &helm_args(&t, 0, HelmAction::DisableWebapps).unwrap());
        assert!(off.contains("operate=false") && !off.contains("env.yaml") && !off.contains("optimize"), "{off}");
    }

    #[test]
    fn helm_gets_the_regions_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        t.regions[1].kubeconfig = Some("/etc/c8dr-kubeconfig/config".into());
        let args = uninstall_args(&t, 1);
        assert_eq!(
            command_line("helm", &args),
            "helm uninstall camunda --wait --namespace camunda-b --kube-context ctx-b --kubeconfig /etc/c8dr-kubeconfig/config"
        );
        assert!(!command_line("helm", &uninstall_args(&t, 0)).contains("--kubeconfig"));
    }

    #[test]
    fn duplicate_env_names_and_unreadable_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        std::fs::write(
            dir.path().join("region0.yaml"),
            "orchestration:\n  env:\n    - name: A\n      value: x\n    - name: A\n      value: y\n",
        )
        .unwrap();
        let e = helm_args(&t, 0, HelmAction::DeployRecreated).unwrap_err();
        assert!(e.message.contains("names A twice"), "{e}");
        t.helm.region_values[1] = vec![dir.path().join("missing.yaml")];
        let e = helm_args(&t, 1, HelmAction::DeployRecreated).unwrap_err();
        assert!(e.field.contains("missing.yaml") && e.message.contains("cannot be read"), "{e}");
    }

    #[test]
    fn unpinned_targets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = target(dir.path());
        t.helm.mode = HelmMode::Command;
        assert!(check_pinned("prod", &t).is_ok());
        t.helm.region_values.pop();
        assert_eq!(check_pinned("prod", &t).unwrap_err().field, "targets.prod.helm.region_values");
        t.helm.base_values.clear();
        assert_eq!(check_pinned("prod", &t).unwrap_err().field, "targets.prod.helm.base_values");
        t.helm.chart_version = None;
        assert_eq!(check_pinned("prod", &t).unwrap_err().field, "targets.prod.helm.chart_version");
    }

    fn script(dir: &Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    #[tokio::test]
    async fn command_mode_runs_helm_with_exact_args() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("args.log");
        let bin = script(dir.path(), "helm", &format!("echo \"$@\" >> {}\necho deployed", log.display()));
        let mut t = target(dir.path());
        t.helm.mode = HelmMode::Command;
        t.helm.binary = bin.clone();
        let p = CliHelm;
        let out = p.apply(&t, 1, HelmAction::DeployRecreated).await.unwrap();
        assert!(out.contains("deployed"));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(logged.trim(), helm_args(&t, 1, HelmAction::DeployRecreated).unwrap().join(" "));
        // a failing helm is a retryable failure with its output
        script(dir.path(), "helm", "echo boom >&2\nexit 3");
        let err = p.apply(&t, 1, HelmAction::DeployRecreated).await.unwrap_err();
        assert!(matches!(err, PlatformError::Failed(m) if m.contains("boom")));
        // and a hanging one times out
        script(dir.path(), "helm", "sleep 5");
        let err = run_command(&t.helm.binary, &[], Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, PlatformError::Failed(m) if m.contains("timed out")));
    }
}
