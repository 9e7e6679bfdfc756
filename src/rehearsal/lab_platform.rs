//! The lab's Helm and region adapters: what `rehearse` injects into the worker in place of the
//! real platform (helm CLI, Kubernetes), through the lab's control API
//! (`POST /control/regions/{n}/helm`, `GET .../platform`, `POST .../lose|recreate`).
use crate::config::TargetConfig;
use crate::platform::helm::tail;
use crate::platform::{
    HelmAction, HelmRunner, Platform, PlatformError, PlatformFactory, PlatformHandles, PlatformStatus, RegionControl,
};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;

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
            return Err(PlatformError::Failed("the lab control URL is empty".into()));
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
    fn requires_pinned_chart(&self) -> bool {
        false
    }
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

impl RegionControl for LabControl {
    fn lose(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        async move { self.post(&format!("/control/regions/{region}/lose"), json!({})).await.map(|_| ()) }.boxed()
    }
    fn recreate(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        async move { self.post(&format!("/control/regions/{region}/recreate"), json!({})).await.map(|_| ()) }.boxed()
    }
    fn is_lost(&self, region: u8) -> BoxFuture<'_, Result<Option<bool>, PlatformError>> {
        async move {
            let state = self.get("/control/state").await?;
            let r = &state["regions"][usize::from(region)];
            Ok(match (&r["lost"], &r["up"], &r["state"]) {
                (Value::Bool(b), _, _) => Some(*b),
                (_, Value::Bool(b), _) => Some(!*b),
                (_, _, Value::String(s)) => Some(s.eq_ignore_ascii_case("lost")),
                _ => None,
            })
        }
        .boxed()
    }
}

/// The lab's Helm, for a platform that observes through Kubernetes (the lab's Kubernetes API)
/// and runs Helm in the lab: `helm upgrade --install` becomes the lab's install or upgrade.
/// The lab has no `helm uninstall`: a drill loses the whole region through [`LabControl`].
#[derive(Debug, Clone)]
pub struct LabHelm(pub LabControl);

impl HelmRunner for LabHelm {
    fn requires_pinned_chart(&self) -> bool {
        false
    }
    fn apply<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        action: HelmAction,
    ) -> BoxFuture<'a, Result<String, PlatformError>> {
        self.0.helm(target, region, action)
    }
    fn uninstall<'a>(&'a self, _target: &'a TargetConfig, _region: u8) -> BoxFuture<'a, Result<String, PlatformError>> {
        async {
            Err(PlatformError::Failed("the lab has no helm uninstall; a drill loses the whole region instead".into()))
        }
        .boxed()
    }
}

/// The platform factory of a rehearsal against the lab at `control_url`: every target's Helm
/// actions and region loss go to the lab.
pub fn factory(control_url: String) -> Box<PlatformFactory> {
    Box::new(move |_name: &str, _target: &TargetConfig| {
        Ok(PlatformHandles {
            platform: Box::new(LabControl::new(control_url.clone())),
            region_control: Box::new(LabControl::new(control_url.clone())),
        })
    })
}

/// The platform factory of a rehearsal that observes through the lab's Kubernetes API: the
/// production [`KubePlatform`](crate::platform::k8s::KubePlatform) (each region's `kubeconfig`
/// and `kube_context` name the lab's), with the lab's Helm ([`LabHelm`]); drills lose the region
/// through the control API.
pub fn factory_kube(control_url: String) -> Box<PlatformFactory> {
    Box::new(move |name: &str, target: &TargetConfig| {
        let helm = LabHelm(LabControl::new(control_url.clone()));
        Ok(PlatformHandles {
            platform: Box::new(crate::platform::k8s::KubePlatform::new(name, target, Box::new(helm))),
            region_control: Box::new(LabControl::new(control_url.clone())),
        })
    })
}
