//! Mode `manual`: a person runs every helm and kubectl command c8dr shows.
use super::helm::{ManualHelm, command_line};
use super::{HelmAction, HelmRunner, Platform, PlatformError, PlatformStatus};
use crate::config::TargetConfig;
use futures::FutureExt;
use futures::future::BoxFuture;

/// The kubectl command that shows the configured profiles (for manual verification).
pub fn profiles_command(target: &TargetConfig, region: u8) -> String {
    let mut a = vec!["get".to_string(), "configmap".into(), super::k8s::configuration_configmap(&target.release)];
    if let Some(rc) = target.regions.get(usize::from(region)) {
        if !rc.namespace.is_empty() {
            a.extend(["-n".into(), rc.namespace.clone()]);
        }
        if let Some(ctx) = &rc.kube_context {
            a.extend(["--context".into(), ctx.clone()]);
        }
    }
    a.extend(["-o".into(), "yaml".into()]);
    command_line("kubectl", &a)
}

/// Observation and Helm by a person (no Kubernetes access configured).
pub struct ManualPlatform;

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
        ManualHelm.apply(target, region, action)
    }
}
