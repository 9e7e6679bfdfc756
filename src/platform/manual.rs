//! Mode `manual`: a person runs every helm and kubectl command c8dr shows.
use super::helm::ManualHelm;
use super::kubectl::profiles_command;
use super::{HelmAction, HelmRunner, Platform, PlatformError, PlatformStatus};
use crate::config::TargetConfig;
use futures::FutureExt;
use futures::future::BoxFuture;

/// Observation and Helm by a person.
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
