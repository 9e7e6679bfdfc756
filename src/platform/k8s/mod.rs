//! Kubernetes through kube-rs: one client per region, from the region's kubeconfig context
//! (`kube_context`, `kubeconfig`) or, with neither, `$KUBECONFIG` / `~/.kube/config` / the
//! in-cluster service account (kube's `Config::infer`). Names follow the Camunda 8.8 Helm chart
//! for release `<release>` (docs/kubernetes.md).
pub mod forward;

use crate::config::RegionConfig;
use std::time::Duration;

/// A Kubernetes client cannot be built or a Kubernetes call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum K8sError {
    /// The kubeconfig or in-cluster config cannot be used; `field` names the setting to fix.
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// The API server answered with an error or could not be reached.
    #[error("{0}")]
    Api(String),
}

/// The orchestration StatefulSet (brokers with embedded gateway): `<release>-zeebe`.
pub fn statefulset_name(release: &str) -> String {
    format!("{release}-zeebe")
}

/// Orchestration pod `n`: `<release>-zeebe-<n>`.
pub fn pod_name(release: &str, n: u32) -> String {
    format!("{release}-zeebe-{n}")
}

/// The gateway Service (REST 8080, management 9600, gRPC 26500): `<release>-zeebe-gateway`.
pub fn gateway_service(release: &str) -> String {
    format!("{release}-zeebe-gateway")
}

/// The ConfigMap holding `spring.profiles.active`: `<release>-zeebe-configuration-unified`.
pub fn configuration_configmap(release: &str) -> String {
    format!("{release}-zeebe-configuration-unified")
}

/// The Elasticsearch Service of the chart's Elasticsearch: `<release>-elasticsearch`.
pub fn elasticsearch_service(release: &str) -> String {
    format!("{release}-elasticsearch")
}

/// Label selector of everything the release owns (PVCs included).
pub fn release_selector(release: &str) -> String {
    format!("app.kubernetes.io/instance={release}")
}

/// Label selector of the release's Helm release secrets (`sh.helm.release.v1.<release>.vN`).
pub fn release_secret_selector(release: &str) -> String {
    format!("owner=helm,name={release}")
}

/// A client for region `index` (for error messages: `targets.<target>.regions[<index>]`), with
/// the region's namespace as default namespace and `timeout` on every request.
pub async fn client(
    target_name: &str,
    index: u8,
    region: &RegionConfig,
    timeout: Duration,
) -> Result<kube::Client, K8sError> {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    forward::install_crypto_provider();
    let field = |f: &str| format!("targets.{target_name}.regions[{index}].{f}");
    let options = KubeConfigOptions { context: region.kube_context.clone(), ..Default::default() };
    let mut config = match (&region.kubeconfig, &region.kube_context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| K8sError::Config {
                field: field("kubeconfig"),
                message: format!("{} cannot be read as a kubeconfig ({e}): fix the path or the file", path.display()),
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| K8sError::Config {
                field: field(if region.kube_context.is_some() { "kube_context" } else { "kubeconfig" }),
                message: format!("{e}: name a context of {}", path.display()),
            })?
        }
        (None, Some(ctx)) => Config::from_kubeconfig(&options).await.map_err(|e| K8sError::Config {
            field: field("kube_context"),
            message: format!("context {ctx:?} cannot be used ({e}): check $KUBECONFIG / ~/.kube/config"),
        })?,
        (None, None) => Config::infer().await.map_err(|e| K8sError::Config {
            field: field("kube_context"),
            message: format!(
                "no kubeconfig and not in a pod ({e}): set kube_context (and kubeconfig) or run c8dr in the cluster"
            ),
        })?,
    };
    if !region.namespace.is_empty() {
        config.default_namespace = region.namespace.clone();
    }
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config.connect_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| K8sError::Config {
        field: field("kube_context"),
        message: format!("a Kubernetes client cannot be built: {e}"),
    })
}

pub mod drill;
pub mod observe;
pub mod platform;
pub mod release;

pub use drill::KubeRegionControl;
pub use platform::{KubePlatform, restart_and_wait};

/// A failed Kubernetes call as a [`crate::platform::PlatformError::Failed`] naming the object,
/// the namespace and the RBAC verb c8dr needs for it. Never "absent": the caller handles
/// NotFound itself where absence has a meaning.
pub(crate) fn api_error(e: &kube::Error, verb: &str, what: &str, ns: &str) -> crate::platform::PlatformError {
    let message = match e {
        kube::Error::Api(s) if s.is_forbidden() => format!(
            "cannot {verb} {what} in namespace {ns}: forbidden (HTTP 403): grant c8dr's Kubernetes identity the RBAC verb `{verb}` on it (docs/kubernetes.md)"
        ),
        kube::Error::Api(s) if s.code == 401 => format!(
            "cannot {verb} {what} in namespace {ns}: unauthorized (HTTP 401): the kubeconfig's credentials are not accepted"
        ),
        kube::Error::Api(s) => format!(
            "cannot {verb} {what} in namespace {ns}: the API server answered HTTP {} {} (RBAC verb needed: `{verb}`)",
            s.code, s.reason
        ),
        other => format!("cannot {verb} {what} in namespace {ns}: {other}"),
    };
    crate::platform::PlatformError::Failed(message)
}

/// True when `e` is the API server's 404.
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}
