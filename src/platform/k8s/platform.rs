//! The production platform on Kubernetes: observation through kube-rs ([`super::observe`]),
//! Helm through a [`HelmRunner`] (the CLI, or a person) whose result is read from the release
//! secret, and the restart of one pod.
use super::observe::{namespace_of, observe};
use super::{K8sError, api_error, client, is_not_found, pod_name, release};
use crate::config::TargetConfig;
use crate::platform::{HelmAction, HelmRelease, HelmRunner, Platform, PlatformError, PlatformStatus};
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use std::time::Duration;
use tokio::sync::OnceCell;

/// One kube client per region, built on first use (a region that is never touched needs no
/// reachable API server).
pub struct Clients {
    target_name: String,
    target: TargetConfig,
    cells: Vec<OnceCell<kube::Client>>,
}

impl Clients {
    pub fn new(target_name: &str, target: &TargetConfig) -> Self {
        Self {
            target_name: target_name.to_string(),
            target: target.clone(),
            cells: target.regions.iter().map(|_| OnceCell::new()).collect(),
        }
    }

    pub fn target(&self) -> &TargetConfig {
        &self.target
    }

    /// The client of `region` and the namespace the release lives in there.
    pub async fn get(&self, region: u8) -> Result<(kube::Client, String), PlatformError> {
        let idx = usize::from(region);
        let (Some(cell), Some(rc)) = (self.cells.get(idx), self.target.regions.get(idx)) else {
            return Err(PlatformError::Failed(format!(
                "target {} has no region {region} (regions: {})",
                self.target_name,
                self.target.regions.len()
            )));
        };
        let timeout = Duration::from_secs(self.target.kubernetes.request_timeout_secs.max(1));
        let c = cell.get_or_try_init(|| client(&self.target_name, region, rc, timeout)).await.map_err(|e| match e {
            // a kubeconfig or context that cannot be used does not heal by retrying: a person
            // fixes the named setting (the step asks, with nothing changed), then retries
            K8sError::Config { .. } => PlatformError::Refused(format!("{e}; nothing was changed in region {region}")),
            K8sError::Api(_) => PlatformError::Failed(e.to_string()),
        })?;
        Ok((c.clone(), namespace_of(c, &rc.namespace)))
    }
}

/// [`Platform`] on Kubernetes.
pub struct KubePlatform {
    clients: Clients,
    helm: Box<dyn HelmRunner>,
}

impl KubePlatform {
    pub fn new(target_name: &str, target: &TargetConfig, helm: Box<dyn HelmRunner>) -> Self {
        Self { clients: Clients::new(target_name, target), helm }
    }
}

/// The outcome of a Helm call judged by the release secrets before and after it: success only
/// when a newer revision exists and is `deployed`, whatever helm's exit code said.
pub fn judge_helm(
    what: &str,
    before: Option<&HelmRelease>,
    after: Option<&HelmRelease>,
    run: Result<String, PlatformError>,
) -> Result<String, PlatformError> {
    let before_rev = before.map_or(0, |r| r.revision);
    let new = after.filter(|r| r.revision > before_rev);
    match (new, run) {
        (Some(r), Ok(out)) if r.status == "deployed" => Ok(out),
        (Some(r), Err(e)) if r.status == "deployed" => {
            tracing::warn!(revision = r.revision, error = %e, "helm reported a failure but the release secret shows the new revision deployed");
            Ok(format!("warning: helm reported a failure ({e}), but release revision {} is deployed\n", r.revision))
        }
        (Some(r), run) => Err(PlatformError::Failed(format!(
            "{what}: release revision {} is {} (not deployed){}",
            r.revision,
            r.status,
            match run {
                Ok(_) => " although helm exited 0".to_string(),
                Err(e) => format!("; helm: {e}"),
            }
        ))),
        (None, run) => Err(PlatformError::Failed(format!(
            "{what}: no new release revision after helm (newest: {}){}",
            after.map_or("none".to_string(), |r| format!("{} {}", r.revision, r.status)),
            match run {
                Ok(_) => " although helm exited 0".to_string(),
                Err(e) => format!("; helm: {e}"),
            }
        ))),
    }
}

impl Platform for KubePlatform {
    fn requires_pinned_chart(&self) -> bool {
        self.helm.requires_pinned_chart()
    }
    fn status<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
    ) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>> {
        async move {
            let (client, ns) = self.clients.get(region).await?;
            observe(&client, &ns, &target.release).await
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
            let (client, ns) = self.clients.get(region).await?;
            // the baseline first: without it a helm run could not be judged, so it does not run
            let before = release::newest(&client, &ns, &target.release).await?;
            let run = self.helm.apply(target, region, action).await;
            if let Err(PlatformError::Manual { .. } | PlatformError::Refused(_)) = &run {
                return run;
            }
            let after = release::newest(&client, &ns, &target.release).await?;
            judge_helm(
                &format!("helm {} of release {} in namespace {ns}", action.name(), target.release),
                before.as_ref(),
                after.as_ref(),
                run,
            )
        }
        .boxed()
    }

    fn restart_pod<'a>(
        &'a self,
        target: &'a TargetConfig,
        region: u8,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        async move {
            if !is_orchestration_pod(&target.release, pod) {
                return Err(PlatformError::Refused(format!(
                    "{pod} is not an orchestration pod of release {} ({}): only those are restarted",
                    target.release,
                    pod_name(&target.release, 0).replace("-0", "-N")
                )));
            }
            let (client, ns) = self.clients.get(region).await?;
            match Api::<Pod>::namespaced(client, &ns).delete(pod, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                // already gone: the StatefulSet recreates it
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(api_error(&e, "delete", &format!("pod {pod}"), &ns)),
            }
        }
        .boxed()
    }
}

/// `<release>-zeebe-<N>`.
pub fn is_orchestration_pod(release: &str, pod: &str) -> bool {
    pod.strip_prefix(&format!("{release}-zeebe-"))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// How often [`restart_and_wait`] looks at the pod.
pub const RESTART_POLL: Duration = Duration::from_secs(2);

/// Restarts ONE pod and waits until a pod of that name is Ready again, or `timeout`
/// (`kubernetes.pod_ready_timeout_secs`) passes: an error then. Meant for stuck pods (Running,
/// not Ready): when the pod was Ready before the delete, its replacement only counts after the
/// pod was seen gone or not Ready. Restarting several pods is the caller's loop, one at a time.
pub async fn restart_and_wait(
    platform: &dyn Platform,
    target: &TargetConfig,
    region: u8,
    pod: &str,
    timeout: Duration,
) -> Result<(), PlatformError> {
    let find = |s: &PlatformStatus| s.pods.iter().find(|p| p.name == pod).map(|p| p.ready);
    let before = platform.status(target, region).await?;
    let mut seen_down = find(&before) != Some(true);
    platform.restart_pod(target, region, pod).await?;
    tracing::info!(pod, region, "pod deleted; waiting for its replacement to become Ready");
    let wait = async {
        loop {
            tokio::time::sleep(RESTART_POLL).await;
            // an unreadable status is not "Ready": keep waiting until the deadline
            let ready = match platform.status(target, region).await {
                Ok(s) => find(&s),
                Err(e) => {
                    tracing::warn!(pod, error = %e, "status unreadable while waiting for the restarted pod");
                    continue;
                }
            };
            match ready {
                Some(true) if seen_down => return,
                Some(true) => {}
                _ => seen_down = true,
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| {
        PlatformError::Failed(format!(
            "pod {pod} in region {region} is not Ready {}s after its restart: look at its events and log",
            timeout.as_secs()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PodStatus;
    use std::sync::Mutex;

    fn rel(revision: u32, status: &str) -> HelmRelease {
        HelmRelease { revision, status: status.into(), chart_version: None }
    }

    #[test]
    fn the_release_secret_judges_helm() {
        let ok = || Ok::<String, PlatformError>("out".into());
        let failed = || Err::<String, PlatformError>(PlatformError::Failed("helm failed: boom".into()));
        // exit 0 and a new deployed revision
        assert_eq!(judge_helm("x", Some(&rel(1, "deployed")), Some(&rel(2, "deployed")), ok()).unwrap(), "out");
        // exit 0 but the new revision failed
        let e = judge_helm("x", Some(&rel(1, "deployed")), Some(&rel(2, "failed")), ok()).unwrap_err();
        assert!(e.to_string().contains("revision 2 is failed") && e.to_string().contains("exited 0"), "{e}");
        // exit 0 and no new revision at all
        assert!(judge_helm("x", Some(&rel(1, "deployed")), Some(&rel(1, "deployed")), ok()).is_err());
        assert!(judge_helm("x", None, None, ok()).is_err());
        // a failed exit with a new deployed revision is a success with a warning
        let out = judge_helm("x", None, Some(&rel(1, "deployed")), failed()).unwrap();
        assert!(out.contains("warning") && out.contains("boom"), "{out}");
        assert!(judge_helm("x", Some(&rel(1, "deployed")), Some(&rel(2, "pending-upgrade")), failed()).is_err());
    }

    #[test]
    fn only_orchestration_pods_are_restarted() {
        assert!(is_orchestration_pod("camunda", "camunda-zeebe-3"));
        assert!(!is_orchestration_pod("camunda", "camunda-zeebe-gateway-abc"));
        assert!(!is_orchestration_pod("camunda", "camunda-elasticsearch-0"));
        assert!(!is_orchestration_pod("camunda", "camunda-zeebe-"));
    }

    /// A platform whose pod turns Ready after `ready_after` status reads following the delete.
    struct Fake {
        deleted: Mutex<u32>,
        reads_after_delete: Mutex<u32>,
        ready_after: Option<u32>,
        ready_before: bool,
    }

    impl Platform for Fake {
        fn status<'a>(&'a self, _: &'a TargetConfig, _: u8) -> BoxFuture<'a, Result<PlatformStatus, PlatformError>> {
            async move {
                let deleted = *self.deleted.lock().unwrap() > 0;
                let ready = if deleted {
                    let mut n = self.reads_after_delete.lock().unwrap();
                    *n += 1;
                    self.ready_after.is_some_and(|a| *n >= a)
                } else {
                    self.ready_before
                };
                let pod =
                    PodStatus { name: "camunda-zeebe-1".into(), phase: "Running".into(), ready, ..Default::default() };
                Ok(PlatformStatus { pods: vec![pod], ..Default::default() })
            }
            .boxed()
        }
        fn helm<'a>(
            &'a self,
            _: &'a TargetConfig,
            _: u8,
            _: HelmAction,
        ) -> BoxFuture<'a, Result<String, PlatformError>> {
            async { Ok(String::new()) }.boxed()
        }
        fn restart_pod<'a>(
            &'a self,
            _: &'a TargetConfig,
            _: u8,
            _: &'a str,
        ) -> BoxFuture<'a, Result<(), PlatformError>> {
            *self.deleted.lock().unwrap() += 1;
            async { Ok(()) }.boxed()
        }
    }

    fn fake(ready_before: bool, ready_after: Option<u32>) -> Fake {
        Fake { deleted: Mutex::new(0), reads_after_delete: Mutex::new(0), ready_after, ready_before }
    }

    #[tokio::test(start_paused = true)]
    async fn restart_waits_for_ready_and_times_out() {
        let t = crate::procedure::regions::tests_support::target();
        let f = fake(false, Some(3));
        restart_and_wait(&f, &t, 1, "camunda-zeebe-1", Duration::from_secs(60)).await.unwrap();
        assert_eq!(*f.deleted.lock().unwrap(), 1, "one delete");
        assert_eq!(*f.reads_after_delete.lock().unwrap(), 3, "waited until Ready");
        let f = fake(false, None);
        let e = restart_and_wait(&f, &t, 1, "camunda-zeebe-1", Duration::from_secs(60)).await.unwrap_err();
        assert!(e.to_string().contains("not Ready 60s after its restart"), "{e}");
        assert_eq!(*f.deleted.lock().unwrap(), 1, "never deleted twice");
        // a pod Ready before the delete: its replacement counts only after it was seen down
        let f = fake(true, Some(1));
        let e = restart_and_wait(&f, &t, 1, "camunda-zeebe-1", Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(e, PlatformError::Failed(_)));
    }
}
