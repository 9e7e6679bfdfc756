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

/// What the platform shows of one region's Camunda release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    pub release: bool,
    pub pvcs: u32,
    /// Active Spring profiles of the orchestration cluster (`broker`, `operate`, ...).
    pub profiles: Vec<String>,
    pub create_schema: bool,
}

impl PlatformStatus {
    pub fn webapps_on(&self) -> bool {
        self.profiles.iter().any(|p| p == "operate" || p == "tasklist")
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
    /// True when `s` already is what this action produces.
    pub fn holds(self, s: &PlatformStatus) -> bool {
        match self {
            Self::DeployRecreated => s.release && !s.webapps_on() && !s.create_schema,
            Self::DisableWebapps => s.release && !s.webapps_on(),
            Self::EnableWebapps => s.release && s.webapps_on() && s.create_schema,
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

/// `helm upgrade --install ...` arguments for `action` in `region` (without the binary).
pub fn helm_args(target: &TargetConfig, region: u8, action: HelmAction) -> Vec<String> {
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
    for f in h.base_values.iter().chain(h.region_values.get(usize::from(region)).into_iter().flatten()) {
        a.extend(["-f".into(), f.display().to_string()]);
    }
    if !action.webapps() {
        // guards api-contract §6.18: Operate/Tasklist stay off until brokers are re-added
        a.extend([
            "--set".into(),
            "orchestration.profiles.operate=false".into(),
            "--set".into(),
            "orchestration.profiles.tasklist=false".into(),
        ]);
    }
    if !action.create_schema() {
        // guards api-contract §6.12: no schema creation in the recreated region before the restore
        let i = h.schema_env_index;
        a.extend([
            "--set-string".into(),
            format!(
                "orchestration.env[{i}].name=CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA,orchestration.env[{i}].value=false"
            ),
        ]);
    }
    a
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
        let command = command_line(&target.helm.binary, &helm_args(target, region, action));
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

/// The value of `spring.profiles.active` in a configmap dump.
pub fn parse_profiles(text: &str) -> Vec<String> {
    let idx = text.find("spring.profiles.active").map(|i| i + "spring.profiles.active".len()).or_else(|| {
        let p = text.find("profiles:")?;
        text[p..].find("active:").map(|a| p + a + "active:".len())
    });
    let Some(i) = idx else { return Vec::new() };
    let rest = text[i..].trim_start_matches([':', ' ', '=', '"', '\'']);
    let end = rest.find(['"', '\'', '\n']).unwrap_or(rest.len());
    rest[..end].split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// True when a statefulset (JSON) sets `CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA=false` on a
/// container.
pub fn schema_creation_off(statefulset_json: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(statefulset_json) else {
        return false;
    };
    let containers = v["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
    containers.iter().any(|c| {
        c["env"].as_array().is_some_and(|env| {
            env.iter().any(|e| {
                e["name"] == "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA"
                    && e["value"].as_str().is_some_and(|x| x.eq_ignore_ascii_case("false"))
            })
        })
    })
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
            let mut pvc = vec!["get".to_string(), "pvc".into(), "-o".into(), "name".into()];
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
            let profiles = if cm_ok { parse_profiles(&cm_out) } else { Vec::new() };
            let mut sts = vec!["get".to_string(), "statefulset".into(), format!("{}-zeebe", target.release)];
            sts.extend(kube_args(target, region));
            sts.extend(["-o".into(), "json".into()]);
            let (sts_ok, sts_out) = run_command(&self.kubectl, &sts, t).await?;
            let create_schema = !(sts_ok && schema_creation_off(&sts_out));
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
            let args = helm_args(target, region, action);
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
    if env.target.helm.mode == HelmMode::Manual {
        let cmds: Vec<String> =
            targets.iter().map(|r| command_line(&env.target.helm.binary, &helm_args(env.target, *r, action))).collect();
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
        if action.holds(&status) {
            continue;
        }
        let request = command_line(&env.target.helm.binary, &helm_args(env.target, region, action));
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
    // guards api-contract §6.18: check the active profiles, not only the helm exit code
    let mut profiles = Map::new();
    let mut ok = true;
    for region in targets {
        match env.platform.status(env.target, region).await {
            Ok(s) => {
                ok &= s.release && s.webapps_on() == want_on;
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
    use std::path::PathBuf;

    fn target() -> TargetConfig {
        let mut t = super::super::regions::tests_support::target();
        t.helm.chart_version = Some("13.0.0".into());
        t.helm.base_values = vec![PathBuf::from("base.yaml")];
        t.helm.region_values = vec![vec![PathBuf::from("region0.yaml")], vec![PathBuf::from("region1.yaml")]];
        t.helm.schema_env_index = 12;
        t.regions[1].kube_context = Some("ctx-b".into());
        t
    }

    #[test]
    fn helm_command_for_the_recreated_region() {
        let t = target();
        let cmd = command_line("helm", &helm_args(&t, 1, HelmAction::DeployRecreated));
        assert_eq!(
            cmd,
            "helm upgrade --install camunda camunda/camunda-platform --version 13.0.0 --namespace camunda-b --kube-context ctx-b \
             -f base.yaml -f region1.yaml --set orchestration.profiles.operate=false --set orchestration.profiles.tasklist=false \
             --set-string orchestration.env[12].name=CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA,orchestration.env[12].value=false"
        );
        let full = command_line("helm", &helm_args(&t, 0, HelmAction::EnableWebapps));
        assert!(!full.contains("--set") && full.contains("region0.yaml"), "{full}");
        let off = command_line("helm", &helm_args(&t, 0, HelmAction::DisableWebapps));
        assert!(off.contains("operate=false") && !off.contains("CREATESCHEMA"), "{off}");
    }

    #[test]
    fn goals() {
        let s = |release, profiles: &[&str], create_schema| PlatformStatus {
            release,
            pvcs: 0,
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            create_schema,
        };
        assert!(HelmAction::DeployRecreated.holds(&s(true, &["broker"], false)));
        assert!(!HelmAction::DeployRecreated.holds(&s(true, &["broker"], true)));
        assert!(!HelmAction::DeployRecreated.holds(&s(false, &[], false)));
        assert!(HelmAction::DisableWebapps.holds(&s(true, &["broker"], true)));
        assert!(!HelmAction::DisableWebapps.holds(&s(true, &["broker", "operate"], true)));
        assert!(HelmAction::EnableWebapps.holds(&s(true, &["broker", "operate", "tasklist"], true)));
        assert!(!HelmAction::EnableWebapps.holds(&s(true, &["broker", "operate", "tasklist"], false)));
    }

    #[test]
    fn profiles_from_configmap() {
        let y = "data:\n  application.yaml: |\n    spring.profiles.active: \"broker,identity,consolidated-auth\"\n";
        assert_eq!(parse_profiles(y), vec!["broker", "identity", "consolidated-auth"]);
        assert!(parse_profiles("nothing").is_empty());
    }

    #[tokio::test]
    async fn command_mode_reads_release_pvcs_profiles_and_schema_flag() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p.display().to_string()
        };
        let helm = write("helm", "[ \"$1\" = status ] && echo deployed");
        let kubectl = write(
            "kubectl",
            r#"case "$2" in
  pvc) printf 'persistentvolumeclaim/data-camunda-zeebe-0\npersistentvolumeclaim/data-camunda-zeebe-1\n' ;;
  configmap) printf 'data:\n  application.yaml: |\n    spring.profiles.active: "broker,identity,consolidated-auth"\n' ;;
  statefulset) echo '{"spec":{"template":{"spec":{"containers":[{"env":[{"name":"CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA","value":"false"}]}]}}}}' ;;
esac"#,
        );
        let mut t = target();
        t.helm.binary = helm;
        let p = CommandPlatform { kubectl };
        let s = p.status(&t, 1).await.unwrap();
        assert_eq!(
            s,
            PlatformStatus {
                release: true,
                pvcs: 2,
                profiles: vec!["broker".into(), "identity".into(), "consolidated-auth".into()],
                create_schema: false,
            }
        );
        assert!(HelmAction::DeployRecreated.holds(&s));
        assert!(!schema_creation_off("{}"));
    }

    #[tokio::test]
    async fn command_mode_runs_helm_with_exact_args() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("args.log");
        let script = dir.path().join("helm");
        std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\necho deployed\n", log.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut t = target();
        t.helm.mode = HelmMode::Command;
        t.helm.binary = script.display().to_string();
        let p = CommandPlatform { kubectl: "kubectl".into() };
        let out = p.helm(&t, 1, HelmAction::DeployRecreated).await.unwrap();
        assert!(out.contains("deployed"));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(logged.trim(), helm_args(&t, 1, HelmAction::DeployRecreated).join(" "));
        // a failing helm is a retryable failure with its output
        std::fs::write(&script, "#!/bin/sh\necho boom >&2\nexit 3\n").unwrap();
        let err = p.helm(&t, 1, HelmAction::DeployRecreated).await.unwrap_err();
        assert!(matches!(err, PlatformError::Failed(m) if m.contains("boom")));
        // and a hanging one times out
        std::fs::write(&script, "#!/bin/sh\nsleep 5\n").unwrap();
        let err = run_command(&t.helm.binary, &[], Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, PlatformError::Failed(m) if m.contains("timed out")));
    }
}
