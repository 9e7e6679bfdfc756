//! The lab: a simulated Camunda 8.8 dual-region installation served on 127.0.0.1, faithful to
//! docs/target-apis.md (status codes, JSON shapes, error bodies, asynchrony).
//!
//! Per region four HTTP servers: the management API (`/actuator/...`), the Orchestration
//! Cluster REST API (`/v2/...`), Elasticsearch and the Kubernetes API (`k8s`, the objects of the
//! Camunda 8.8 chart, pod logs, port-forward); plus one control server (docs/jobs.md, "Lab
//! control API"). A lost region's servers are closed (connections refused) and re-bound on the
//! same ports when a release is installed again.
//!
//! ```no_run
//! # async fn demo() -> Result<(), c8dr::rehearsal::lab::LabError> {
//! use c8dr::rehearsal::lab::{Lab, LabOptions, LabDurations};
//! let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await?;
//! let urls = lab.region_urls(0);
//! println!("management {}", urls.management);
//! lab.lose_region(1).await?;
//! # Ok(()) }
//! ```
//!
//! Not modelled: `DELETE /actuator/exporters/{id}`,
//! partition scaling, the backup API.
pub mod busy;
pub mod cluster;
pub mod es;
mod faults;
mod http;
pub mod jsonorder;
mod k8s;
pub mod k8s_objects;
pub mod net;
pub mod pods;
pub mod portforward;
pub mod state;
pub mod world;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{HelmConfig, RegionConfig, SnapshotConfig, TargetConfig};
use crate::rehearsal::clock::Clock;
pub use state::LabState;
use world::{World, WorldOptions};

/// Simulated durations (milliseconds of simulated time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LabDurations {
    /// One broker/partition operation of a cluster change (BROKER_ADD, PARTITION_JOIN, ...).
    pub broker_op_ms: u64,
    /// One PARTITION_ENABLE_EXPORTER / PARTITION_DISABLE_EXPORTER operation.
    pub exporter_op_ms: u64,
    /// Creating a snapshot (IN_PROGRESS -> SUCCESS).
    pub snapshot_ms: u64,
    /// Restoring a snapshot (red -> yellow at 60 %, green at 100 %).
    pub restore_ms: u64,
    /// A zeebe pod (re)starting until Ready: each pod of a `helm upgrade`'s rolling restart,
    /// the pods of a `helm install`, a deleted pod.
    pub pod_restart_ms: u64,
}

impl Default for LabDurations {
    fn default() -> Self {
        Self {
            broker_op_ms: 5_000,
            exporter_op_ms: 2_000,
            snapshot_ms: 30_000,
            restore_ms: 60_000,
            pod_restart_ms: 20_000,
        }
    }
}

impl LabDurations {
    /// Short durations for tests (a full add-back takes about half a second).
    pub fn fast() -> Self {
        Self { broker_op_ms: 15, exporter_op_ms: 5, snapshot_ms: 150, restore_ms: 250, pod_restart_ms: 20 }
    }
}

/// Which region API a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Management,
    Rest,
    Elasticsearch,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Management => "management",
            Api::Rest => "rest",
            Api::Elasticsearch => "elasticsearch",
        }
    }
}

/// Injected faults, deterministic for a seed and a sequence of requests. Never applied to the
/// control API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultConfig {
    pub seed: u64,
    /// Share of requests answered 500 or 503 without being handled.
    pub error_rate: f64,
    /// Added (simulated) latency per request.
    pub latency_ms: u64,
    /// Share of requests whose connection is closed without an answer (not handled).
    pub drop_rate: f64,
    /// Share of requests handled normally but answered with a truncated body.
    pub malformed_rate: f64,
    /// Share of requests rejected with 400 without being handled: a permanent error, which
    /// retrying cannot fix (the procedure must route it to a person, not retry it).
    pub reject_rate: f64,
    /// APIs the faults apply to; empty = all three.
    pub apis: Vec<Api>,
    /// Path prefixes the faults apply to (e.g. `/actuator/exporting`, `/_snapshot`); empty = all.
    pub paths: Vec<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            error_rate: 0.0,
            latency_ms: 0,
            drop_rate: 0.0,
            malformed_rate: 0.0,
            reject_rate: 0.0,
            apis: Vec::new(),
            paths: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LabOptions {
    pub clock: Clock,
    pub durations: LabDurations,
    pub cluster_size: u32,
    pub partition_count: u32,
    pub replication_factor: u32,
    /// Also configure the 8.7 `elasticsearchregionN` exporters (enabled).
    pub legacy_exporters: bool,
    /// Require this Basic auth on the REST API (none by default).
    pub rest_basic_auth: Option<(String, String)>,
    pub faults: Option<FaultConfig>,
    /// BROKER_ADD / PARTITION_JOIN never complete (a stuck change).
    pub stuck_adds: bool,
    /// Simulate Camunda before 8.8.25 (#52260): `helm upgrade` restarts the region's brokers
    /// and exporters disabled through the API come back ENABLED on their partitions.
    pub exporter_flip_on_restart: bool,
    /// Fixed ports: region 0 management/REST/Elasticsearch on base..base+2, region 1 on
    /// base+3..base+5, control on base+6, the Kubernetes API of region 0 and 1 on base+7 and
    /// base+8. `None`: free ports chosen by the OS (tests).
    pub base_port: Option<u16>,
    /// Labels of both region namespaces (besides `kubernetes.io/metadata.name`); by default
    /// `c8dr.io/drill=allowed`.
    pub namespace_labels: BTreeMap<String, String>,
    /// Zeebe pods Running but never Ready from the start, `(region, ordinal)`, until deleted.
    pub stuck_pods: Vec<(usize, u32)>,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            clock: Clock::real(),
            durations: LabDurations::default(),
            cluster_size: 8,
            partition_count: 8,
            replication_factor: 4,
            legacy_exporters: false,
            rest_basic_auth: None,
            faults: None,
            stuck_adds: false,
            exporter_flip_on_restart: false,
            base_port: None,
            namespace_labels: BTreeMap::from([("c8dr.io/drill".to_string(), "allowed".to_string())]),
            stuck_pods: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HelmAction {
    Install,
    Upgrade,
}

/// `helm install|upgrade` of Camunda in a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HelmRequest {
    pub action: HelmAction,
    /// Operate and Tasklist profiles on.
    #[serde(default = "yes")]
    pub webapps: bool,
    /// CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA.
    #[serde(default = "yes")]
    pub create_schema: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionUrls {
    pub management: String,
    pub rest: String,
    pub elasticsearch: String,
}

/// One mutating call received by a region API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordEntry {
    pub seq: u64,
    /// Simulated time (RFC 3339).
    pub time: String,
    pub region: usize,
    pub api: Api,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// HTTP status sent; 0 when the connection was dropped by a fault.
    pub status: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab: cannot bind a port on 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
    #[error("lab: region must be 0 or 1, got {0}")]
    InvalidRegion(usize),
    #[error("lab: invalid options: {0}")]
    InvalidOptions(String),
    #[error("lab: {message}")]
    Rejected { status: u16, message: String },
}

pub(crate) struct Shared {
    pub clock: Clock,
    world: Mutex<World>,
    pub faults: Mutex<Option<FaultConfig>>,
    pub fault_counter: AtomicU64,
    pub rest_auth: Option<(String, String)>,
    servers: tokio::sync::Mutex<Servers>,
    pub ports: [[u16; 3]; 2],
    control_port: u16,
    pub kube_ports: [u16; 2],
    pub namespace_labels: BTreeMap<String, String>,
    /// Simulated time the lab started (namespaces' creation).
    pub started_ms: i64,
}

struct Servers {
    regions: Vec<Vec<net::Server>>,
    control: Option<net::Server>,
    /// The Kubernetes API of each region.
    kube: Vec<net::Server>,
}

impl Shared {
    /// The world, advanced to now.
    pub fn world(&self) -> MutexGuard<'_, World> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        w.advance(self.clock.now_millis());
        w
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }
}

pub struct Lab;

/// A running lab. Cheap to clone; every clone controls the same lab.
#[derive(Clone)]
pub struct LabHandle {
    shared: Arc<Shared>,
}

const APIS: [Api; 3] = [Api::Management, Api::Rest, Api::Elasticsearch];

fn check_region(r: usize) -> Result<(), LabError> {
    if r < 2 { Ok(()) } else { Err(LabError::InvalidRegion(r)) }
}

impl Lab {
    pub async fn start(opts: LabOptions) -> Result<LabHandle, LabError> {
        if opts.cluster_size < 2 || !opts.cluster_size.is_multiple_of(2) {
            return Err(LabError::InvalidOptions(format!(
                "cluster_size must be even and >= 2, got {}",
                opts.cluster_size
            )));
        }
        if opts.replication_factor == 0 || opts.replication_factor > opts.cluster_size || opts.partition_count == 0 {
            return Err(LabError::InvalidOptions(format!(
                "need 1 <= replication_factor <= cluster_size and partition_count >= 1 (got rf {}, partitions {})",
                opts.replication_factor, opts.partition_count
            )));
        }
        let now = opts.clock.now_millis();
        let world = World::new(
            WorldOptions {
                cluster_size: opts.cluster_size,
                partition_count: opts.partition_count,
                replication_factor: opts.replication_factor,
                legacy_exporters: opts.legacy_exporters,
                durations: opts.durations,
                stuck_adds: opts.stuck_adds,
                exporter_flip_on_restart: opts.exporter_flip_on_restart,
            },
            now,
        );
        // Bind every port first so the routers know every URL.
        let mut offset = 0u16;
        let mut next_port = || {
            let p = opts.base_port.map(|b| b.saturating_add(offset)).unwrap_or(0);
            offset += 1;
            p
        };
        let mut ports = [[0u16; 3]; 2];
        let mut listeners = Vec::new();
        for region_ports in ports.iter_mut() {
            let mut v = Vec::new();
            for port in region_ports.iter_mut() {
                let l = net::bind(next_port())?;
                *port = l.local_addr()?.port();
                v.push(l);
            }
            listeners.push(v);
        }
        let control_listener = net::bind(next_port())?;
        let control_port = control_listener.local_addr()?.port();
        let mut kube_ports = [0u16; 2];
        let mut kube_listeners = Vec::new();
        for port in kube_ports.iter_mut() {
            let l = net::bind(next_port())?;
            *port = l.local_addr()?.port();
            kube_listeners.push(l);
        }
        let mut world = world;
        for &(r, ordinal) in &opts.stuck_pods {
            check_region(r)?;
            if !world.stick_pod(r, ordinal, now) {
                return Err(LabError::InvalidOptions(format!(
                    "stuck_pods: region {r} has no pod camunda-zeebe-{ordinal} (pods 0..{})",
                    opts.cluster_size / 2
                )));
            }
        }
        let shared = Arc::new(Shared {
            clock: opts.clock.clone(),
            world: Mutex::new(world),
            faults: Mutex::new(opts.faults.clone()),
            fault_counter: AtomicU64::new(0),
            rest_auth: opts.rest_basic_auth.clone(),
            servers: tokio::sync::Mutex::new(Servers { regions: Vec::new(), control: None, kube: Vec::new() }),
            ports,
            control_port,
            kube_ports,
            namespace_labels: opts.namespace_labels.clone(),
            started_ms: now,
        });
        {
            let mut servers = shared.servers.lock().await;
            for (r, region_listeners) in listeners.into_iter().enumerate() {
                let mut v = Vec::new();
                for (listener, api) in region_listeners.into_iter().zip(APIS) {
                    v.push(net::Server::start(listener, http::region_router(shared.clone(), r, api))?);
                }
                servers.regions.push(v);
            }
            for (r, listener) in kube_listeners.into_iter().enumerate() {
                servers.kube.push(net::Server::start(listener, k8s::router(shared.clone(), r))?);
            }
            let control = http::control_router(LabHandle { shared: shared.clone() });
            servers.control = Some(net::Server::start(control_listener, control)?);
        }
        tracing::info!(control = control_port, "lab started");
        Ok(LabHandle { shared })
    }
}

impl LabHandle {
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    pub fn region_urls(&self, r: usize) -> RegionUrls {
        let p = self.shared.ports[r.min(1)];
        RegionUrls {
            management: format!("http://127.0.0.1:{}", p[0]),
            rest: format!("http://127.0.0.1:{}", p[1]),
            elasticsearch: format!("http://127.0.0.1:{}", p[2]),
        }
    }

    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.control_port)
    }

    /// The Kubernetes API server URL of each region.
    pub fn kube_urls(&self) -> [String; 2] {
        self.shared.kube_ports.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// A kubeconfig with one cluster and context per region (`lab-region0`, `lab-region1`,
    /// namespace set) and a dummy token user; the current context is `lab-region0`.
    pub fn kubeconfig_yaml(&self) -> String {
        let urls = self.kube_urls();
        let mut out = String::from("apiVersion: v1\nkind: Config\npreferences: {}\nclusters:\n");
        for (r, url) in urls.iter().enumerate() {
            out.push_str(&format!("- name: lab-region{r}\n  cluster:\n    server: {url}\n"));
        }
        out.push_str("users:\n- name: lab-user\n  user:\n    token: c8dr-lab-dummy-token\ncontexts:\n");
        for r in 0..urls.len() {
            out.push_str(&format!(
                "- name: lab-region{r}\n  context:\n    cluster: lab-region{r}\n    user: lab-user\n    namespace: {}\n",
                namespace(r)
            ));
        }
        out.push_str("current-context: lab-region0\n");
        out
    }

    /// Writes [`LabHandle::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> Result<(), LabError> {
        std::fs::write(path, self.kubeconfig_yaml())?;
        Ok(())
    }

    /// Makes a zeebe pod Running but never Ready (camunda/camunda#55038) until it is deleted.
    pub fn stick_pod(&self, r: usize, ordinal: u32) -> Result<(), LabError> {
        check_region(r)?;
        let now = self.shared.now_ms();
        if self.shared.world().stick_pod(r, ordinal, now) {
            Ok(())
        } else {
            Err(LabError::Rejected { status: 404, message: format!("region {r} has no pod camunda-zeebe-{ordinal}") })
        }
    }

    /// A target for the worker: two regions with the lab's URLs, drills allowed. Its Helm and
    /// region control are the lab's: inject [`crate::rehearsal::lab_platform::factory`].
    pub fn target_config(&self) -> TargetConfig {
        let w = self.shared.world();
        let regions = (0..2)
            .map(|r| {
                let u = self.region_urls(r);
                RegionConfig {
                    name: format!("region{r}"),
                    namespace: namespace(r),
                    kube_context: None,
                    kubeconfig: None,
                    access: Default::default(),
                    management_url: u.management,
                    rest_url: u.rest,
                    elasticsearch_url: u.elasticsearch,
                    rest_auth: Default::default(),
                    elasticsearch_auth: Default::default(),
                    timeout_ms: crate::config::defaults::http_timeout_ms(),
                }
            })
            .collect();
        let mut settings = BTreeMap::new();
        settings.insert("bucket".to_string(), serde_json::json!("c8dr-lab-bucket"));
        settings.insert("client".to_string(), serde_json::json!("camunda"));
        settings.insert("base_path".to_string(), serde_json::json!("c8dr-lab-bucket/camunda-8-8-0-backups"));
        TargetConfig {
            drill_allowed: true,
            cluster_size: w.opts.cluster_size,
            partition_count: w.opts.partition_count,
            replication_factor: w.opts.replication_factor,
            release: crate::config::defaults::release(),
            exporter_prefix: crate::config::defaults::exporter_prefix(),
            legacy_exporter_prefix: crate::config::defaults::legacy_exporter_prefix(),
            snapshot: SnapshotConfig {
                repository: "camunda_backup".into(),
                kind: "s3".into(),
                settings,
                ..Default::default()
            },
            helm: HelmConfig::default(),
            regions,
            kubernetes: Default::default(),
            four_eyes: true,
        }
    }

    /// Region `r` dies: endpoints refuse connections, brokers leave, ES data, PVCs and release gone.
    pub async fn lose_region(&self, r: usize) -> Result<(), LabError> {
        check_region(r)?;
        let mut servers = self.shared.servers.lock().await;
        let now = self.shared.now_ms();
        self.shared.world().lose_region(r, now);
        for s in servers.regions[r].iter_mut() {
            s.down().await;
        }
        servers.kube[r].down().await;
        tracing::info!(region = r, "lab: region lost");
        Ok(())
    }

    /// Region `r`'s Kubernetes is back, empty (no release, no PVCs; endpoints still refused).
    pub async fn recreate_region(&self, r: usize) -> Result<(), LabError> {
        check_region(r)?;
        let mut servers = self.shared.servers.lock().await;
        {
            let mut w = self.shared.world();
            if w.regions[r].kubernetes {
                return Err(LabError::Rejected {
                    status: 409,
                    message: format!("region {r} is not lost; only a lost region can be recreated"),
                });
            }
            w.recreate_region(r);
        }
        servers.kube[r].up(k8s::router(self.shared.clone(), r)).await?;
        Ok(())
    }

    /// `helm install|upgrade` in region `r`.
    pub async fn helm(&self, r: usize, req: HelmRequest) -> Result<(), LabError> {
        check_region(r)?;
        let mut servers = self.shared.servers.lock().await;
        let now = self.shared.now_ms();
        self.shared.world().helm(r, &req, now).map_err(|(status, message)| LabError::Rejected { status, message })?;
        for (i, api) in APIS.iter().enumerate() {
            let router = http::region_router(self.shared.clone(), r, *api);
            servers.regions[r][i].up(router).await?;
        }
        Ok(())
    }

    pub fn platform(&self, r: usize) -> Result<serde_json::Value, LabError> {
        check_region(r)?;
        Ok(self.shared.world().platform_json(r))
    }

    pub fn state(&self) -> LabState {
        let now = self.shared.now_ms();
        LabState::of(&self.shared.world(), now)
    }

    /// Every mutating call received by a region API, in order.
    pub fn record(&self) -> Vec<RecordEntry> {
        self.shared.world().record.clone()
    }

    pub fn set_faults(&self, faults: Option<FaultConfig>) {
        *self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
        self.shared.fault_counter.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_durations(&self, durations: LabDurations) {
        self.shared.world().opts.durations = durations;
    }

    /// Make BROKER_ADD / PARTITION_JOIN operations never complete (or complete again).
    pub fn stuck_adds(&self, stuck: bool) {
        self.shared.world().opts.stuck_adds = stuck;
    }

    /// Stops every server of the lab.
    pub async fn shutdown(&self) {
        let mut servers = self.shared.servers.lock().await;
        for region in servers.regions.iter_mut() {
            for s in region.iter_mut() {
                s.down().await;
            }
        }
        for s in servers.kube.iter_mut() {
            s.down().await;
        }
        if let Some(c) = servers.control.as_mut() {
            c.down().await;
        }
    }
}

/// Kubernetes namespace of a region (appears in broker host names).
pub fn namespace(r: usize) -> String {
    format!("camunda-region{r}")
}
