//! The platform (Helm / Kubernetes) interface and its steps: preflight-recreated, helm,
//! verify-profiles. Three modes (config `helm.mode`):
//! - `manual`: MANUAL_STEP_REQUIRED carrying the exact command in `manualCommand`;
//! - `command`: runs helm / kubectl with exact arguments and a timeout, output captured;
//! - `lab`: the lab's control API (`POST /control/regions/{n}/helm`, `GET .../platform`).
use super::{StepEnv, StepOutcome, StepResult, errors, regions, validate, vars};
use crate::config::{HelmConfig, HelmMode, TargetConfig};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// What the platform shows of one region's Camunda release. `None` is "could not be read"
/// (ConfigMap or statefulset missing, renamed, not permitted, unparsable): unknown is never
/// "off" and never satisfies a goal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    pub release: bool,
    /// PVCs of the release (label `app.kubernetes.io/instance=<release>`), not the namespace's.
    pub pvcs: u32,
    /// Active Spring profiles of the orchestration cluster (`broker`, `operate`, ...).
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    #[serde(default)]
    pub create_schema: Option<bool>,
}

impl PlatformStatus {
    /// `Some(true)` when Operate or Tasklist run, `None` when the profiles are unknown.
    pub fn webapps_on(&self) -> Option<bool> {
        self.profiles.as_ref().map(|ps| ps.iter().any(|p| p == "operate" || p == "tasklist"))
    }
}

/// The Helm operations of the failback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmAction {
    /// Install the recreated region: Operate/Tasklist off, schema creation off.
    DeployRecreated,
    /// Upgrade with Operate/Tasklist off (schema creation as usual).
    DisableWebapps,
    /// Upgrade with the default values (everything on).
    EnableWebapps,
}

impl HelmAction {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deploy-recreated" => Some(Self::DeployRecreated),
            "disable-webapps" => Some(Self::DisableWebapps),
            "enable-webapps" => Some(Self::EnableWebapps),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::DeployRecreated => "deploy-recreated",
            Self::DisableWebapps => "disable-webapps",
            Self::EnableWebapps => "enable-webapps",
        }
    }
    fn webapps(self) -> bool {
        self == Self::EnableWebapps
    }
    fn create_schema(self) -> bool {
        self != Self::DeployRecreated
    }
    /// True when `s` already is what this action produces. Unknown profiles or schema flag
    /// never hold.
    pub fn holds(self, s: &PlatformStatus) -> bool {
        match self {
            Self::DeployRecreated => s.release && s.webapps_on() == Some(false) && s.create_schema == Some(false),
            Self::DisableWebapps => s.release && s.webapps_on() == Some(false),
            Self::EnableWebapps => s.release && s.webapps_on() == Some(true) && s.create_schema == Some(true),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// A person must run this command.
    #[error("manual step required: {command}")]
    Manual { command: String },
    /// The call failed (command exit code, timeout, unreachable control API): retried.
    #[error("{0}")]
    Failed(String),
}

/// Helm / Kubernetes as steps see it.
pub trait Platform: Send + Sync {
    fn status<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
    ) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>>;
    /// Runs the action; returns its output.
    fn helm<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>>;
}

/// The platform for a target's `helm.mode`.
pub fn for_target(target: &TargetConfig) -> Box<dyn Platform> {
    match target.helm.mode {
        HelmMode::Manual => Box::new(ManualPlatform),
        HelmMode::Command => Box::new(CommandPlatform { kubectl: "kubectl".into() }),
        HelmMode::Lab => Box::new(LabControl::new(target.lab_control_url.clone().unwrap_or_default())),
    }
}

// ---------------------------------------------------------------- commands

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
    if target.helm.mode == HelmMode::Lab {
        return Ok(());
    }
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
    if let Some(rc) = rc {
        if !rc.namespace.is_empty() {
            a.extend(["--namespace".into(), rc.namespace.clone()]);
        }
        if let Some(ctx) = &rc.kube_context {
            a.extend(["--kube-context".into(), ctx.clone()]);
        }
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

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@[]+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn command_line(binary: &str, args: &[String]) -> String {
    std::iter::once(binary.to_string()).chain(args.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
}

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

struct ManualPlatform;

impl Platform for ManualPlatform {
    fn status<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
    ) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>> {
        let command = profiles_command(target, region);
        async move { Err(PlatformError::Manual { command }) }.boxed()
    }
    fn helm<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        let command = match helm_args(target, region, action) {
            Ok(args) => command_line(&target.helm.binary, &args),
            Err(e) => return async move { Err(PlatformError::Failed(e.to_string())) }.boxed(),
        };
        async move { Err(PlatformError::Manual { command }) }.boxed()
    }
}

/// Runs helm and kubectl.
pub struct CommandPlatform {
    pub kubectl: String,
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
            Ok(PlatformStatus { release, pvcs, profiles, create_schema })
        }
        .boxed()
    }
    fn helm<'a>(
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
}

/// The last `n` characters of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

// ---------------------------------------------------------------- lab control API

/// The lab's control API (also used by drills to lose / recreate a region).
#[derive(Debug, Clone)]
pub struct LabControl {
    base: String,
    http: reqwest::Client,
}

impl LabControl {
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { base: base.into().trim_end_matches('/').to_string(), http }
    }

    fn url(&self, path: &str) -> Result<String, PlatformError> {
        if self.base.is_empty() {
            return Err(PlatformError::Failed(
                "the target has no lab_control_url (needed by helm.mode = \"lab\" and drills)".into(),
            ));
        }
        Ok(format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> Result<Value, PlatformError> {
        let r = self
            .http
            .get(self.url(path)?)
            .send()
            .await
            .map_err(|e| PlatformError::Failed(format!("lab control GET {path}: {e}")))?;
        Self::json(path, r).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, PlatformError> {
        let r = self
            .http
            .post(self.url(path)?)
            .json(&body)
            .send()
            .await
            .map_err(|e| PlatformError::Failed(format!("lab control POST {path}: {e}")))?;
        Self::json(path, r).await
    }

    async fn json(path: &str, r: reqwest::Response) -> Result<Value, PlatformError> {
        let status = r.status();
        let text = r.text().await.map_err(|e| PlatformError::Failed(format!("lab control {path}: {e}")))?;
        if !status.is_success() {
            return Err(PlatformError::Failed(format!("lab control {path}: HTTP {status}: {}", tail(&text, 300))));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Platform for LabControl {
    fn status<'a>(
        &'a self,
        _target: &'a TargetConfig,
        region: u8,
    ) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>> {
        async move {
            let v = self.get(&format!("/control/regions/{region}/platform")).await?;
            serde_json::from_value(v).map_err(|e| PlatformError::Failed(format!("lab platform status: {e}")))
        }
        .boxed()
    }
    fn helm<'a>(
        &'a self,
        _target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        async move {
            let kind = if action == HelmAction::DeployRecreated { "install" } else { "upgrade" };
            let body = json!({"action": kind, "webapps": action.webapps(), "createSchema": action.create_schema()});
            let v = self.post(&format!("/control/regions/{region}/helm"), body).await?;
            Ok(v.to_string())
        }
        .boxed()
    }
}

// ---------------------------------------------------------------- steps

fn manual(env: &StepEnv<'_>, step_id: &str, command: String) -> StepOutcome {
    StepOutcome::Refused {
        code: errors::MANUAL_STEP_REQUIRED,
        message: format!("run this command, then confirm: {command}"),
        field: None,
        variables: vars([
            ("manualCommand", json!(command)),
            ("manualStepId", json!(step_id)),
            ("target", json!(env.input.target_name)),
        ]),
    }
}

/// `c8dr.preflight-recreated`: the failover is done and the recreated region is clean.
pub async fn preflight_recreated(env: &StepEnv<'_>) -> StepResult {
    let (surviving, recreated) = regions::failback(env)?;
    let cluster = env.api.cluster(surviving).await?;
    let ids = regions::brokers_of(recreated, env.target.cluster_size);
    let stale: Vec<u32> = cluster.brokers.iter().map(|b| b.id).filter(|id| ids.contains(id)).collect();
    if !stale.is_empty() || cluster.pending_change.is_some() {
        return Err(StepOutcome::refused(
            errors::PRECONDITION_FAILED,
            format!(
                "failover is not done: brokers {stale:?} of region {recreated} are still cluster members{}",
                if cluster.pending_change.is_some() { " and a cluster change is pending" } else { "" }
            ),
        ));
    }
    let mut brokers: Vec<u32> = cluster.brokers.iter().map(|b| b.id).collect();
    brokers.sort_unstable();
    let (release, pvcs) = match env.platform.status(env.target, recreated).await {
        Ok(s) => (json!(s.release), json!(s.pvcs)),
        Err(PlatformError::Manual { .. }) => (Value::Null, Value::Null), // shown to the approver
        Err(PlatformError::Failed(m)) => return Err(StepOutcome::retry(m)),
    };
    let indices: Vec<String> = match env.api.indices(recreated).await {
        Ok(list) => list.into_iter().map(|i| i.name).filter(|n| super::snapshot::is_camunda_index(n)).collect(),
        // an unreachable Elasticsearch in a region without a release holds no indices
        Err(e) if e.is_transient() && release == json!(false) => Vec::new(),
        Err(e) if e.is_transient() && release.is_null() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let preflight =
        json!({"camundaIndices": indices, "releasePresent": release, "pvcCount": pvcs, "clusterBrokers": brokers});
    if release == json!(true) || pvcs.as_u64().is_some_and(|n| n > 0) || !indices.is_empty() {
        return Err(StepOutcome::refused(
            errors::RECREATED_REGION_NOT_CLEAN,
            format!("region {recreated} is not clean (release {release}, {pvcs} PVCs, Camunda indices {indices:?}): uninstall and delete the PVCs first"),
        )
        .with_var("preflight", preflight));
    }
    Ok(StepOutcome::done(vars([("preflight", preflight)])))
}

/// `c8dr.helm` (headers `action`, `region`).
pub async fn helm_step(env: &StepEnv<'_>) -> StepResult {
    let action_name = env.header("action").unwrap_or("");
    let Some(action) = HelmAction::parse(action_name) else {
        return Err(StepOutcome::invalid(
            "action",
            format!(
                "task header `action` must be deploy-recreated, disable-webapps or enable-webapps, got {action_name:?}: fix the BPMN"
            ),
        ));
    };
    let targets = regions::from_header(env, &["surviving", "recreated", "both"])?;
    let step_id = format!("helm-{}", action.name());
    let invalid = |e: HelmInputError| StepOutcome::invalid(&e.field, e.message);
    check_pinned(&env.input.target_name, env.target).map_err(invalid)?;
    // the exact command (and the generated env values file) for every mode but the lab's
    let request = |region: u8| -> Result<String, StepOutcome> {
        if env.target.helm.mode == HelmMode::Lab {
            return Ok(format!("lab helm {} region {region}", action.name()));
        }
        Ok(command_line(&env.target.helm.binary, &helm_args(env.target, region, action).map_err(invalid)?))
    };
    if env.target.helm.mode == HelmMode::Manual {
        let cmds = targets.iter().map(|r| request(*r)).collect::<Result<Vec<String>, StepOutcome>>()?;
        return Err(manual(env, &step_id, cmds.join("\n")));
    }
    let mut output = String::new();
    let mut acted = false;
    for region in targets {
        let status = match env.platform.status(env.target, region).await {
            Ok(s) => s,
            Err(PlatformError::Manual { command }) => return Err(manual(env, &step_id, command)),
            Err(PlatformError::Failed(m)) => return Err(StepOutcome::retry(m)),
        };
        // unknown profiles or schema flag never hold: the (idempotent) upgrade runs and
        // verify-profiles must then read them
        if action.holds(&status) {
            continue;
        }
        let request = request(region)?;
        let result = env.platform.helm(env.target, region, action).await;
        match result {
            Ok(out) => {
                env.journal_call(region, &step_id, &request, "ok", &tail(&out, 500))?;
                output.push_str(&out);
                acted = true;
            }
            Err(PlatformError::Manual { command }) => return Err(manual(env, &step_id, command)),
            Err(PlatformError::Failed(m)) => {
                env.journal_call(region, &step_id, &request, "error", &m)?;
                return Err(StepOutcome::retry(m));
            }
        }
    }
    let variables: Map<String, Value> = vars([("helmOutput", json!(tail(&output, 2000)))]);
    Ok(StepOutcome::Done { variables, already_done: !acted })
}

/// `c8dr.verify-profiles` (headers `region`, `expect: webapps-off|webapps-on`).
pub async fn verify_profiles(env: &StepEnv<'_>) -> StepResult {
    let expect = env.header("expect").unwrap_or("");
    let want_on = match expect {
        "webapps-off" => false,
        "webapps-on" => true,
        other => {
            return Err(StepOutcome::invalid(
                "expect",
                format!("task header `expect` must be webapps-off or webapps-on, got {other:?}: fix the BPMN"),
            ));
        }
    };
    let targets = regions::from_header(env, &["surviving", "recreated", "both"])?;
    // guards docs/target-apis.md §6.18: check the active profiles, not only the helm exit code
    let mut profiles = Map::new();
    let mut ok = true;
    for region in targets {
        match env.platform.status(env.target, region).await {
            Ok(s) => {
                let Some(on) = s.webapps_on() else {
                    // unknown is never "off" (nor "on"): fail the job; its retries end in an
                    // incident a person sees
                    return Err(StepOutcome::retry(format!(
                        "the active profiles of region {region} cannot be read (ConfigMap {}-zeebe-configuration-unified missing, renamed, not permitted or without spring.profiles.active): c8dr does not assume Operate/Tasklist are {}; check with: {}",
                        env.target.release,
                        if want_on { "on" } else { "off" },
                        profiles_command(env.target, region)
                    )));
                };
                ok &= s.release && on == want_on;
                profiles.insert(region.to_string(), json!(s.profiles));
            }
            Err(PlatformError::Manual { command }) => {
                return Err(manual(env, &format!("verify-profiles-{expect}"), command));
            }
            Err(PlatformError::Failed(m)) => return Err(StepOutcome::retry(m)),
        }
    }
    // during a failback with Operate/Tasklist off, the helm upgrade restarted the surviving
    // brokers: the recreated region's exporter must still be disabled (re-disabled if not)
    let mut redisabled = Vec::new();
    if !want_on && let Some(recreated) = validate::optional_region(&env.input.variables, "recreatedRegion")? {
        let surviving = regions::surviving(env)?;
        redisabled = super::exporters::redisable_flipped(env, surviving, recreated).await?;
        ok &= redisabled.is_empty();
    }
    Ok(StepOutcome::done(vars([
        ("verified", json!(ok)),
        ("profiles", Value::Object(profiles)),
        ("exportersReDisabled", json!(redisabled)),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A pinned target whose values files live in `dir`.
    fn target(dir: &Path) -> TargetConfig {
        let mut t = super::super::regions::tests_support::target();
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
    fn unpinned_targets_are_refused_outside_the_lab() {
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
        t.helm.mode = HelmMode::Lab;
        assert!(check_pinned("prod", &t).is_ok());
    }

    #[test]
    fn goals() {
        let s = |release, profiles: &[&str], create_schema| PlatformStatus {
            release,
            pvcs: 0,
            profiles: Some(profiles.iter().map(|p| p.to_string()).collect()),
            create_schema: Some(create_schema),
        };
        assert!(HelmAction::DeployRecreated.holds(&s(true, &["broker"], false)));
        assert!(!HelmAction::DeployRecreated.holds(&s(true, &["broker"], true)));
        assert!(!HelmAction::DeployRecreated.holds(&s(false, &[], false)));
        assert!(HelmAction::DisableWebapps.holds(&s(true, &["broker"], true)));
        assert!(!HelmAction::DisableWebapps.holds(&s(true, &["broker", "operate"], true)));
        assert!(HelmAction::EnableWebapps.holds(&s(true, &["broker", "operate", "tasklist"], true)));
        assert!(!HelmAction::EnableWebapps.holds(&s(true, &["broker", "operate", "tasklist"], false)));
        // unknown is never "off" (nor "on"): no goal holds
        let unknown = PlatformStatus { release: true, pvcs: 0, profiles: None, create_schema: None };
        for a in [HelmAction::DeployRecreated, HelmAction::DisableWebapps, HelmAction::EnableWebapps] {
            assert!(!a.holds(&unknown), "{a:?}");
        }
        let mut schema_unknown = s(true, &["broker", "operate", "tasklist"], true);
        schema_unknown.create_schema = None;
        assert!(!HelmAction::EnableWebapps.holds(&schema_unknown));
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
                create_schema: Some(false),
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

    #[tokio::test]
    async fn command_mode_runs_helm_with_exact_args() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("args.log");
        let bin = script(dir.path(), "helm", &format!("echo \"$@\" >> {}\necho deployed", log.display()));
        let mut t = target(dir.path());
        t.helm.mode = HelmMode::Command;
        t.helm.binary = bin.clone();
        let p = CommandPlatform { kubectl: "kubectl".into() };
        let out = p.helm(&t, 1, HelmAction::DeployRecreated).await.unwrap();
        assert!(out.contains("deployed"));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(logged.trim(), helm_args(&t, 1, HelmAction::DeployRecreated).unwrap().join(" "));
        // a failing helm is a retryable failure with its output
        script(dir.path(), "helm", "echo boom >&2\nexit 3");
        let err = p.helm(&t, 1, HelmAction::DeployRecreated).await.unwrap_err();
        assert!(matches!(err, PlatformError::Failed(m) if m.contains("boom")));
        // and a hanging one times out
        script(dir.path(), "helm", "sleep 5");
        let err = run_command(&t.helm.binary, &[], Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, PlatformError::Failed(m) if m.contains("timed out")));
    }
}
