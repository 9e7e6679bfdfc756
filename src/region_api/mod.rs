//! The HTTP APIs of each region of a dual-region installation: management API, REST v2,
//! Elasticsearch; typed models.
//!
//! (Named `region_api`, not `target`: it holds the clients of each region's APIs, while the
//! Kubernetes/Helm side is `crate::platform`, and `target/` is also Cargo's build folder, which
//! tools hide and readers confuse.)
//!
//! [`Target::from_config`] builds the three clients of both regions from a
//! [`TargetConfig`](crate::config::TargetConfig) (secrets resolved from env/files); step handlers
//! call `target.region(id).management / .rest / .elasticsearch`. Every call maps failures to a
//! [`TargetError`] whose [`kind`](ErrorKind) says what happened and whether to retry.
pub mod change;
pub mod elasticsearch;
pub mod error;
mod http;
pub mod management;
pub mod models;
pub mod rest;

pub use change::{ChangeVerdict, judge_change};
pub use elasticsearch::ElasticsearchClient;
pub use error::{Api, ErrorKind, TargetError};
pub use http::HttpAuthResolved;
pub use management::ManagementClient;
pub use rest::RestClient;

use crate::config::{Access, SecretError, TargetConfig};
use crate::platform::k8s::{self, forward::Forwarder};
use std::sync::Arc;
use std::time::Duration;

/// The three clients of one region.
#[derive(Debug, Clone)]
pub struct RegionClients {
    /// Region id (0 or 1) = index in `TargetConfig::regions`.
    pub id: u8,
    /// Region name from config.
    pub name: String,
    pub management: ManagementClient,
    pub rest: RestClient,
    pub elasticsearch: ElasticsearchClient,
}

/// A configured dual-region installation with ready clients for both regions.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub config: TargetConfig,
    regions: [RegionClients; 2],
}

/// A target's configuration cannot be turned into clients; `field` is the config path.
#[derive(Debug, thiserror::Error)]
pub enum TargetConfigError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field}: {source}")]
    Secret {
        field: String,
        #[source]
        source: SecretError,
    },
}

impl TargetConfigError {
    /// The config path of the offending field, e.g. `targets.prod.regions[1].rest_auth`.
    pub fn field(&self) -> &str {
        match self {
            TargetConfigError::Invalid { field, .. } | TargetConfigError::Secret { field, .. } => field,
        }
    }
}

impl Target {
    /// Builds clients for both regions. Requires exactly two regions; resolves secret refs.
    pub fn from_config(name: &str, config: &TargetConfig) -> Result<Target, TargetConfigError> {
        let prefix = format!("targets.{name}");
        if config.regions.len() != 2 {
            return Err(TargetConfigError::Invalid {
                field: format!("{prefix}.regions"),
                message: format!(
                    "a dual-region target needs exactly 2 regions (index = region id), found {}",
                    config.regions.len()
                ),
            });
        }
        let build = |id: u8| -> Result<RegionClients, TargetConfigError> {
            let region = &config.regions[usize::from(id)];
            let field = |f: &str| format!("{prefix}.regions[{id}].{f}");
            if region.timeout_ms == 0 {
                return Err(TargetConfigError::Invalid {
                    field: field("timeout_ms"),
                    message: "must be greater than 0".into(),
                });
            }
            let timeout = Duration::from_millis(region.timeout_ms);
            let invalid = |f: &str, e: TargetError| TargetConfigError::Invalid { field: field(f), message: e.message };
            let rest_auth = HttpAuthResolved::resolve(&region.rest_auth)
                .map_err(|source| TargetConfigError::Secret { field: field("rest_auth"), source })?;
            let es_auth = HttpAuthResolved::resolve(&region.elasticsearch_auth)
                .map_err(|source| TargetConfigError::Secret { field: field("elasticsearch_auth"), source })?;
            let port_forward = region.access == Access::PortForward;
            // Port-forward: an empty URL means the Service the Camunda 8.8 chart names.
            let url = |configured: &str, service: String, port: u16| -> String {
                if port_forward && configured.trim().is_empty() {
                    format!("http://{service}:{port}")
                } else {
                    configured.to_string()
                }
            };
            let management_url = url(&region.management_url, k8s::gateway_service(&config.release), 9600);
            let rest_url = url(&region.rest_url, k8s::gateway_service(&config.release), 8080);
            let es_url = url(&region.elasticsearch_url, k8s::elasticsearch_service(&config.release), 9200);
            let mut management =
                ManagementClient::new(&management_url, timeout).map_err(|e| invalid("management_url", e))?;
            let mut rest = RestClient::new(&rest_url, rest_auth, timeout).map_err(|e| invalid("rest_url", e))?;
            let mut elasticsearch =
                ElasticsearchClient::new(&es_url, es_auth, timeout).map_err(|e| invalid("elasticsearch_url", e))?;
            if port_forward {
                // kube's read timeout also bounds the forward's idle time (it stays on the upgraded
                // connection): never shorter than the time one call may take.
                let k8s_timeout = Duration::from_secs(config.kubernetes.request_timeout_secs.max(1)).max(timeout);
                let forwarder = Arc::new(Forwarder::new(name, id, region, k8s_timeout));
                management =
                    management.with_port_forward(forwarder.clone()).map_err(|e| invalid("management_url", e))?;
                rest = rest.with_port_forward(forwarder.clone()).map_err(|e| invalid("rest_url", e))?;
                elasticsearch =
                    elasticsearch.with_port_forward(forwarder).map_err(|e| invalid("elasticsearch_url", e))?;
            }
            Ok(RegionClients { id, name: region.name.clone(), management, rest, elasticsearch })
        };
        let regions = [build(0)?, build(1)?];
        Ok(Target { name: name.to_string(), config: config.clone(), regions })
    }

    /// The clients of region `id` (0 or 1).
    ///
    /// # Panics
    /// If `id > 1`; region ids come from validated input.
    pub fn region(&self, id: u8) -> &RegionClients {
        &self.regions[usize::from(id)]
    }

    /// The clients of region `id`, or `None` when `id` is not 0 or 1.
    pub fn try_region(&self, id: u8) -> Option<&RegionClients> {
        self.regions.get(usize::from(id))
    }

    /// Both regions, region 0 first.
    pub fn regions(&self) -> &[RegionClients; 2] {
        &self.regions
    }

    /// The Camunda exporter writing to region `region`'s Elasticsearch, e.g. `camundaregion1`.
    pub fn exporter_id(&self, region: u8) -> String {
        exporter_id(&self.config, region)
    }

    /// The legacy 8.7 exporter id of region `region`, e.g. `elasticsearchregion1`.
    pub fn legacy_exporter_id(&self, region: u8) -> String {
        legacy_exporter_id(&self.config, region)
    }

    /// Broker ids living in region `region` (id % 2 == region) for the configured cluster size.
    pub fn brokers_of_region(&self, region: u8) -> Vec<u32> {
        brokers_of_region(region, self.config.cluster_size)
    }
}

// The dual-region naming and parity rules, each in one place (the steps use them too).

/// The region a broker lives in: even ids region 0, odd ids region 1.
pub fn region_of_broker(broker_id: u32) -> u8 {
    (broker_id % 2) as u8
}

/// Broker ids of `region` in a cluster of `cluster_size` brokers.
pub fn brokers_of_region(region: u8, cluster_size: u32) -> Vec<u32> {
    (0..cluster_size).filter(|id| region_of_broker(*id) == region).collect()
}

/// The Camunda exporter of a target writing to region `region`'s Elasticsearch
/// (`<exporter_prefix><region>`, e.g. `camundaregion1`).
pub fn exporter_id(target: &TargetConfig, region: u8) -> String {
    format!("{}{region}", target.exporter_prefix)
}

/// The legacy 8.7 exporter of a target writing to region `region`
/// (`<legacy_exporter_prefix><region>`, e.g. `elasticsearchregion1`).
pub fn legacy_exporter_id(target: &TargetConfig, region: u8) -> String {
    format!("{}{region}", target.legacy_exporter_prefix)
}
