//! Drills on real targets: `lose` uninstalls the release of the drill region and deletes its
//! PVCs, as Camunda's own CI drill does; the failback's deploy step installs it again.
//!
//! Before any mutation the region's namespace is read: it must carry the label
//! `c8dr.io/drill=allowed` and no production marker (label or annotation
//! `c8dr.io/environment=production`, or label `environment`/`env` = `production`/`prod`).
use super::observe::release_pvcs;
use super::platform::Clients;
use super::{api_error, is_not_found, release};
use crate::config::TargetConfig;
use crate::platform::{HelmRunner, PlatformError, RegionControl};
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams};
use std::time::Duration;

/// The namespace label that allows drills.
pub const DRILL_LABEL: &str = "c8dr.io/drill";
pub const DRILL_ALLOWED: &str = "allowed";
/// c8dr's own production marker (label or annotation).
pub const ENVIRONMENT_MARKER: &str = "c8dr.io/environment";

/// Why a drill may not touch `ns`, or `None` when it may: a production marker refuses even a
/// namespace labelled for drills.
pub fn drill_refusal(ns: &Namespace) -> Option<String> {
    let name = ns.metadata.name.as_deref().unwrap_or("?");
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    let annotations = ns.metadata.annotations.clone().unwrap_or_default();
    let is_prod = |v: &str| matches!(v.trim().to_ascii_lowercase().as_str(), "production" | "prod");
    let marker = labels
        .get(ENVIRONMENT_MARKER)
        .filter(|v| is_prod(v))
        .map(|v| format!("label {ENVIRONMENT_MARKER}={v}"))
        .or_else(|| {
            annotations
                .get(ENVIRONMENT_MARKER)
                .filter(|v| is_prod(v))
                .map(|v| format!("annotation {ENVIRONMENT_MARKER}={v}"))
        })
        .or_else(|| {
            ["environment", "env"]
                .iter()
                .find_map(|k| labels.get(*k).filter(|v| is_prod(v)).map(|v| format!("label {k}={v}")))
        });
    if let Some(marker) = marker {
        return Some(format!(
            "namespace {name} carries the production marker {marker}: a drill never runs there; \
             drill on a staging installation"
        ));
    }
    if labels.get(DRILL_LABEL).map(String::as_str) != Some(DRILL_ALLOWED) {
        return Some(format!(
            "namespace {name} is not labelled for drills: if it is a drill installation, run \
             `kubectl label namespace {name} {DRILL_LABEL}={DRILL_ALLOWED}` (and set drill_allowed = true on the target)"
        ));
    }
    None
}

/// [`RegionControl`] of a real target: Helm through `helm` (the CLI), PVCs through kube-rs.
pub struct KubeRegionControl {
    clients: Clients,
    helm: Box<dyn HelmRunner>,
}

impl KubeRegionControl {
    pub fn new(target_name: &str, target: &TargetConfig, helm: Box<dyn HelmRunner>) -> Self {
        Self { clients: Clients::new(target_name, target), helm }
    }

    fn target(&self) -> &TargetConfig {
        self.clients.target()
    }

    /// Reads the namespace and refuses unless a drill may run there.
    async fn check_namespace(&self, client: &kube::Client, ns: &str) -> Result<(), PlatformError> {
        if !self.target().drill_allowed {
            return Err(PlatformError::Refused(
                "the target does not set drill_allowed = true: drills are refused".into(),
            ));
        }
        let namespace = match Api::<Namespace>::all(client.clone()).get(ns).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => {
                return Err(PlatformError::Refused(format!(
                    "namespace {ns} does not exist: check the region's namespace in the target config"
                )));
            }
            Err(e) => return Err(api_error(&e, "get", &format!("namespace {ns} (cluster-scoped)"), ns)),
        };
        match drill_refusal(&namespace) {
            Some(why) => Err(PlatformError::Refused(why)),
            None => Ok(()),
        }
    }

    async fn lose_region(&self, region: u8) -> Result<(), PlatformError> {
        let (client, ns) = self.clients.get(region).await?;
        self.check_namespace(&client, &ns).await?;
        let release_name = self.target().release.clone();
        if !release::release_secrets(&client, &ns, &release_name).await?.is_empty() {
            tracing::warn!(region, namespace = %ns, release = %release_name, "drill: uninstalling the release");
            let run = self.helm.uninstall(self.target(), region).await;
            if let Err(PlatformError::Manual { .. } | PlatformError::Refused(_)) = &run {
                return run.map(|_| ());
            }
            // helm's exit code is not the judge: the release secrets are
            if !release::release_secrets(&client, &ns, &release_name).await?.is_empty() {
                return Err(PlatformError::Failed(format!(
                    "release {release_name} in namespace {ns} is still installed after helm uninstall{}",
                    run.err().map(|e| format!(": {e}")).unwrap_or_default()
                )));
            }
        }
        let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        for pvc in release_pvcs(&client, &ns, &release_name).await? {
            let name = pvc.metadata.name.unwrap_or_default();
            tracing::warn!(region, namespace = %ns, pvc = %name, "drill: deleting the release's PVC");
            match pvc_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_error(&e, "delete", &format!("persistentvolumeclaim {name}"), &ns)),
            }
        }
        // a PVC goes once no pod uses it (pvc-protection): wait a bounded time, then let the
        // job retry (the next attempt finds the uninstall done and deletes what is left)
        let deadline = Duration::from_secs(self.target().kubernetes.request_timeout_secs.max(1));
        let gone = tokio::time::timeout(deadline, async {
            loop {
                match release_pvcs(&client, &ns, &release_name).await {
                    Ok(left) if left.is_empty() => return Ok(()),
                    Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match gone {
            Ok(r) => r,
            Err(_) => Err(PlatformError::Failed(format!(
                "PVCs of release {release_name} in namespace {ns} are still terminating {}s after their deletion",
                deadline.as_secs()
            ))),
        }
    }

    async fn lost(&self, region: u8) -> Result<Option<bool>, PlatformError> {
        let (client, ns) = self.clients.get(region).await?;
        let release_name = &self.target().release;
        let secrets = release::release_secrets(&client, &ns, release_name).await?;
        if !secrets.is_empty() {
            return Ok(Some(false));
        }
        Ok(Some(release_pvcs(&client, &ns, release_name).await?.is_empty()))
    }
}

impl RegionControl for KubeRegionControl {
    fn lose(&self, region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        self.lose_region(region).boxed()
    }
    /// Nothing to do on Kubernetes: the failback's deploy step installs the release again.
    fn recreate(&self, _region: u8) -> BoxFuture<'_, Result<(), PlatformError>> {
        async { Ok(()) }.boxed()
    }
    /// Lost = no release secret and no PVC of the release.
    fn is_lost(&self, region: u8) -> BoxFuture<'_, Result<Option<bool>, PlatformError>> {
        self.lost(region).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Namespace {
        let map = |kv: &[(&str, &str)]| Some(kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let mut n = Namespace::default();
        n.metadata.name = Some("camunda-b".into());
        n.metadata.labels = map(labels);
        n.metadata.annotations = map(annotations);
        n
    }

    #[test]
    fn namespaces_a_drill_may_touch() {
        assert_eq!(drill_refusal(&ns(&[(DRILL_LABEL, DRILL_ALLOWED)], &[])), None);
        let why = drill_refusal(&ns(&[], &[])).unwrap();
        assert!(why.contains("camunda-b") && why.contains("c8dr.io/drill=allowed"), "{why}");
        assert!(drill_refusal(&ns(&[(DRILL_LABEL, "yes")], &[])).is_some());
        for (labels, annotations) in [
            (vec![(DRILL_LABEL, DRILL_ALLOWED), (ENVIRONMENT_MARKER, "production")], vec![]),
            (vec![(DRILL_LABEL, DRILL_ALLOWED)], vec![(ENVIRONMENT_MARKER, "production")]),
            (vec![(DRILL_LABEL, DRILL_ALLOWED), ("environment", "Prod")], vec![]),
            (vec![(DRILL_LABEL, DRILL_ALLOWED), ("env", "production")], vec![]),
        ] {
            let why = drill_refusal(&ns(&labels, &annotations)).unwrap();
            assert!(why.contains("production marker"), "{why}");
        }
        assert_eq!(drill_refusal(&ns(&[(DRILL_LABEL, DRILL_ALLOWED), ("env", "staging")], &[])), None);
    }
}
