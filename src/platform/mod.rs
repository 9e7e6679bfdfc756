//! The platform under a region's Camunda: Kubernetes and Helm, as the steps see them.
//!
//! - [`Platform`]: observe a region's release, rollout, pods and PVCs; run a Helm action;
//!   restart one pod. [`RegionControl`]: lose / recreate a region for a drill.
//! - [`helm`]: the exact `helm` command lines (values files merged as Helm merges them), the CLI
//!   runner with a timeout, and the manual mode that hands the command to a person.
//! - [`k8s`]: kube-rs clients per region (kubeconfig context or in-cluster config).
//!
//! Which implementation a target gets is decided by [`connect`] from its config (`helm.mode`);
//! a simulation injects its own through [`PlatformFactory`] (see `jobs::StepContext`): the
//! production worker cannot select the lab from its config.
pub mod helm;
pub mod k8s;
pub mod kubectl;
pub mod manual;

use crate::config::{HelmMode, TargetConfig};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// What the platform shows of one region's Camunda release. `None` is "could not be read"
/// (missing, renamed, not permitted, unparsable): unknown is never "off" and never satisfies a
/// goal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    pub release: bool,
    /// PVCs of the release (label `app.kubernetes.io/instance=<release>`), not the namespace's.
    pub pvcs: u32,
    /// Spring profiles every orchestration pod runs (`broker`, `operate`, ...): read from each
    /// pod (its startup log line, or the revision it runs), and `None` while the pods disagree or
    /// any pod's profiles cannot be read.
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    /// Profiles the release is configured with (the `<release>-zeebe-configuration-unified`
    /// ConfigMap). It changes the moment `helm upgrade` returns, before any pod restarts: it
    /// tells whether a Helm action is already applied, never whether the pods run it.
    #[serde(default)]
    pub configured_profiles: Option<Vec<String>>,
    #[serde(default)]
    pub create_schema: Option<bool>,
    /// The orchestration StatefulSet's rollout; `None` when not read.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// The orchestration pods (`<release>-zeebe-N`).
    #[serde(default)]
    pub pods: Vec<PodStatus>,
    /// The Helm release as its newest release secret shows it.
    #[serde(default)]
    pub helm_release: Option<HelmRelease>,
}

impl PlatformStatus {
    /// `Some(true)` when Operate or Tasklist run on every pod, `None` when unknown.
    pub fn webapps_on(&self) -> Option<bool> {
        webapps_in(self.profiles.as_ref())
    }

    /// `Some(true)` when the release is configured with Operate or Tasklist.
    pub fn webapps_configured(&self) -> Option<bool> {
        webapps_in(self.configured_profiles.as_ref().or(self.profiles.as_ref()))
    }

    /// True when the StatefulSet's rollout is known and finished.
    pub fn rollout_complete(&self) -> bool {
        self.rollout.as_ref().is_some_and(Rollout::complete)
    }

    /// Pods Running but not Ready since before `now - after`.
    pub fn stuck_pods(&self, now: DateTime<Utc>, after: chrono::Duration) -> Vec<&PodStatus> {
        self.pods.iter().filter(|p| p.stuck(now, after)).collect()
    }
}

fn webapps_in(profiles: Option<&Vec<String>>) -> Option<bool> {
    profiles.map(|ps| ps.iter().any(|p| p == "operate" || p == "tasklist"))
}

/// A StatefulSet's rollout as `kubectl rollout status` judges it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.replicas`.
    pub replicas: i32,
    pub updated_replicas: i32,
    pub ready_replicas: i32,
    pub current_revision: String,
    pub update_revision: String,
}

impl Rollout {
    /// The controller saw the newest spec, every replica runs the update revision and is Ready.
    pub fn complete(&self) -> bool {
        self.observed_generation >= self.generation
            && self.updated_replicas == self.replicas
            && self.ready_replicas == self.replicas
            && !self.update_revision.is_empty()
            && self.current_revision == self.update_revision
    }

    /// One line for people, e.g. `2/4 updated, 3/4 ready, revision camunda-zeebe-7d9 -> camunda-zeebe-5c4`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}/{} updated, {}/{} ready",
            self.updated_replicas, self.replicas, self.ready_replicas, self.replicas
        );
        if self.current_revision != self.update_revision {
            s.push_str(&format!(", revision {} -> {}", self.current_revision, self.update_revision));
        }
        if self.observed_generation < self.generation {
            s.push_str(&format!(", generation {} not yet observed (at {})", self.generation, self.observed_generation));
        }
        s
    }
}

/// One orchestration pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub name: String,
    /// `status.phase` (`Pending`, `Running`, ...).
    pub phase: String,
    pub ready: bool,
    /// When the Ready condition last turned false (`lastTransitionTime`), if it is false.
    #[serde(default)]
    pub not_ready_since: Option<DateTime<Utc>>,
    /// Active Spring profiles of this pod; `None` when they cannot be read.
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    /// `controller-revision-hash` label: the StatefulSet revision the pod runs.
    #[serde(default)]
    pub revision: Option<String>,
    pub restarts: i32,
    /// `metadata.uid`: this pod instance (a pod recreated under the same name has another).
    #[serde(default)]
    pub uid: Option<String>,
    /// `metadata.deletionTimestamp` is set: the pod is being deleted (terminating).
    #[serde(default)]
    pub terminating: bool,
}

impl PodStatus {
    /// Running but not Ready for longer than `after` (a known Camunda problem after a region
    /// change: DNS of the lost peers, camunda/camunda#55038).
    pub fn stuck(&self, now: DateTime<Utc>, after: chrono::Duration) -> bool {
        self.phase == "Running"
            && !self.ready
            && !self.terminating
            && self.not_ready_since.is_some_and(|t| now - t >= after)
    }
}

/// The newest Helm release revision (`sh.helm.release.v1.<release>.v<N>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    pub revision: u32,
    /// `info.status`: `deployed`, `failed`, `pending-upgrade`, `pending-install`, ...
    pub status: String,
    #[serde(default)]
    pub chart_version: Option<String>,
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
    /// Operate and Tasklist on after this action.
    pub fn webapps(self) -> bool {
        self == Self::EnableWebapps
    }
    /// Schema creation on after this action.
    pub fn create_schema(self) -> bool {
        self != Self::DeployRecreated
    }
    /// True when the release is already configured as this action leaves it (whether the pods
    /// run it yet is the verification loop's question). Unknown profiles or schema flag never
    /// hold.
    pub fn holds(self, s: &PlatformStatus) -> bool {
        let on = s.webapps_configured();
        match self {
            Self::DeployRecreated => s.release && on == Some(false) && s.create_schema == Some(false),
            Self::DisableWebapps => s.release && on == Some(false),
            Self::EnableWebapps => s.release && on == Some(true) && s.create_schema == Some(true),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// A person must run this command.
    #[error("manual step required: {command}")]
    Manual { command: String },
    /// The call failed (command exit code, timeout, unreachable API): retried.
    #[error("{0}")]
    Failed(String),
    /// The platform forbids this (a drill on a namespace not labelled for drills, a production
    /// marker): a BPMN error for a person, never retried.
    #[error("{0}")]
    Refused(String),
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
    /// Deletes one orchestration pod so its StatefulSet recreates it (a stuck broker's restart).
    fn restart_pod<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        let _ = (target, region);
        let command = format!("kubectl delete pod {pod}");
        async move { Err(PlatformError::Manual { command }) }.boxed()
    }
    /// True when a Helm action needs a pinned chart version and values files (every real
    /// platform; a simulation has no chart).
    fn requires_pinned_chart(&self) -> bool {
        true
    }
}

/// Runs Helm: the `helm` CLI, a person (manual mode), or a simulation.
pub trait HelmRunner: Send + Sync {
    /// `helm upgrade --install` for `action` in `region`; returns helm's output.
    fn apply<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>>;
    /// `helm uninstall <release>` in `region` (drills); returns helm's output.
    fn uninstall<'a>(&'a self, target: &'a TargetConfig, region: u8) -> BoxFuture<'a, Result<String, PlatformError>>;
    /// True when this Helm needs a pinned chart version and values files (every real Helm; a
    /// simulation has no chart).
    fn requires_pinned_chart(&self) -> bool {
        true
    }
}

/// Loss and recreation of a region, for drills.
pub trait RegionControl: Send + Sync {
    fn lose(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>>;
    fn recreate(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>>;
    /// `Some(true)` when the region is currently lost, `None` if unknown.
    fn is_lost(&self, region: u8) -> BoxFuture<'_, Result<Option<bool>, PlatformError>>;
}

/// No way to simulate a region loss: drills refuse.
pub struct NoRegionControl;

impl RegionControl for NoRegionControl {
    fn lose(&self, _region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        async {
            Err(PlatformError::Refused(
                "this target has no region control for drills (helm.mode = \"command\" and Kubernetes access are needed)"
                    .into(),
            ))
        }
        .boxed()
    }
    fn recreate(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        self.lose(region)
    }
    fn is_lost(&self, _region: u8) -> BoxFuture<'_, Result<Option<bool>, PlatformError>> {
        async { Ok(None) }.boxed()
    }
}

/// What one target's steps use of the platform.
pub struct PlatformHandles {
    pub platform: Box<dyn Platform>,
    pub region_control: Box<dyn RegionControl>,
}

/// Builds a target's platform from its name and config (production: [`connect`]; a simulation
/// injects its own).
pub type PlatformFactory = dyn Fn(&str, &TargetConfig) -> Result<PlatformHandles, String> + Send + Sync;

/// The platform of a real target, from its `helm.mode`: `command` observes through kube-rs and
/// runs the `helm` CLI (and drills real targets); `manual` observes through kube-rs when
/// Kubernetes access is configured (a kube context or kubeconfig, or c8dr runs in a pod) and
/// hands every Helm command to a person, else a person does both.
pub fn connect(name: &str, target: &TargetConfig) -> Result<PlatformHandles, String> {
    Ok(match target.helm.mode {
        HelmMode::Command => PlatformHandles {
            platform: Box::new(k8s::KubePlatform::new(name, target, Box::new(helm::CliHelm))),
            region_control: Box::new(k8s::KubeRegionControl::new(name, target, Box::new(helm::CliHelm))),
        },
        HelmMode::Manual => {
            let kube_access = target.regions.iter().any(|r| r.kube_context.is_some() || r.kubeconfig.is_some())
                || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
            let platform: Box<dyn Platform> = if kube_access {
                Box::new(k8s::KubePlatform::new(name, target, Box::new(helm::ManualHelm)))
            } else {
                Box::new(manual::ManualPlatform)
            };
            PlatformHandles { platform, region_control: Box::new(NoRegionControl) }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals() {
        let s = |release, profiles: &[&str], create_schema| PlatformStatus {
            release,
            pvcs: 0,
            profiles: Some(profiles.iter().map(|p| p.to_string()).collect()),
            create_schema: Some(create_schema),
            ..Default::default()
        };
        assert!(HelmAction::DeployRecreated.holds(&s(true, &["broker"], false)));
        assert!(!HelmAction::DeployRecreated.holds(&s(true, &["broker"], true)));
        assert!(!HelmAction::DeployRecreated.holds(&s(false, &[], false)));
        assert!(HelmAction::DisableWebapps.holds(&s(true, &["broker"], true)));
        assert!(!HelmAction::DisableWebapps.holds(&s(true, &["broker", "operate"], true)));
        assert!(HelmAction::EnableWebapps.holds(&s(true, &["broker", "operate", "tasklist"], true)));
        assert!(!HelmAction::EnableWebapps.holds(&s(true, &["broker", "operate", "tasklist"], false)));
        // unknown is never "off" (nor "on"): no goal holds
        let unknown = PlatformStatus { release: true, ..Default::default() };
        for a in [HelmAction::DeployRecreated, HelmAction::DisableWebapps, HelmAction::EnableWebapps] {
            assert!(!a.holds(&unknown), "{a:?}");
        }
        let mut schema_unknown = s(true, &["broker", "operate", "tasklist"], true);
        schema_unknown.create_schema = None;
        assert!(!HelmAction::EnableWebapps.holds(&schema_unknown));
        // the configured profiles decide whether the action is applied, while pods still roll
        let mut rolling = s(true, &["broker", "operate", "tasklist"], true);
        rolling.configured_profiles = Some(vec!["broker".into()]);
        assert!(HelmAction::DisableWebapps.holds(&rolling));
        assert_eq!(rolling.webapps_on(), Some(true));
    }

    #[test]
    fn rollout_and_stuck_pods() {
        let mut r = Rollout {
            generation: 3,
            observed_generation: 3,
            replicas: 4,
            updated_replicas: 4,
            ready_replicas: 4,
            current_revision: "camunda-zeebe-a".into(),
            update_revision: "camunda-zeebe-a".into(),
        };
        assert!(r.complete());
        r.update_revision = "camunda-zeebe-b".into();
        r.updated_replicas = 1;
        assert!(!r.complete());
        assert_eq!(r.describe(), "1/4 updated, 4/4 ready, revision camunda-zeebe-a -> camunda-zeebe-b");
        r.current_revision = "camunda-zeebe-b".into();
        r.updated_replicas = 4;
        r.observed_generation = 2;
        assert!(!r.complete(), "a generation the controller has not seen is not complete");
        let now = Utc::now();
        let pod = |phase: &str, ready, secs| PodStatus {
            name: "camunda-zeebe-0".into(),
            phase: phase.into(),
            ready,
            not_ready_since: (!ready).then(|| now - chrono::Duration::seconds(secs)),
            ..Default::default()
        };
        let after = chrono::Duration::seconds(300);
        assert!(pod("Running", false, 301).stuck(now, after));
        assert!(!pod("Running", false, 10).stuck(now, after));
        assert!(!pod("Pending", false, 900).stuck(now, after));
        assert!(!pod("Running", true, 0).stuck(now, after));
    }
}
