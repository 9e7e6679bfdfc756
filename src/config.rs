//! Settings: the management Camunda connection, the worker, the audit journal and the targets
//! (dual-region installations). Loaded from one TOML file plus environment overrides
//! (`C8DR_` prefix, `__` separator, e.g. `C8DR_WORKER__MAX_JOBS_ACTIVE=4`), and Camunda's usual
//! client variables for the management connection (CAMUNDA_* first, then ZEEBE_*).
//!
//! Secrets are never values in this file: they are [`SecretRef`]s (an env var name or a file
//! path) resolved at use time, and [`Secret`] never prints its content.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

mod load;
mod validate;
pub use load::{ConfigError, DEFAULT_CONFIG_FILE};
pub use validate::ConfigProblem;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub management: ManagementConfig,
    pub worker: WorkerConfig,
    pub journal: JournalConfig,
    /// Named dual-region installations; the process variable `target` picks one.
    pub targets: BTreeMap<String, TargetConfig>,
    /// Webhooks `c8dr.notify` and `c8dr.report` post to (none: notifications are only logged).
    pub notifications: NotificationsConfig,
}

/// `[notifications]`: where `c8dr.notify` (approval reminders, verification timeouts, step
/// failures, a long paused-exporting window, ...) and the final outcome of `c8dr.report` go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// `[[notifications.webhooks]]`, each receiving the events it lists.
    pub webhooks: Vec<WebhookConfig>,
    /// Tries per webhook and event (first try included); 5xx, 429 and network errors are retried.
    pub max_attempts: u32,
    /// Back-off before the second try (ms); doubled each try, capped, with jitter.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self { webhooks: Vec::new(), max_attempts: 4, backoff_initial_ms: 500, backoff_max_ms: 4_000 }
    }
}

/// The payload format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// c8dr's own JSON (event, target, processInstanceKey, elementId, severity, message, time).
    Generic,
    /// Slack incoming webhook (`text` + blocks); Mattermost and Teams workflows accept it too.
    Slack,
    /// PagerDuty Events API v2 (`routing_key`, `event_action: trigger`, `dedup_key`, `payload`).
    Pagerduty,
}

/// One `[[notifications.webhooks]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Shown in logs and in the step's variables (the URL never is).
    pub name: String,
    pub kind: WebhookKind,
    /// Receiver URL. A URL that is itself a credential (Slack incoming webhooks) belongs in
    /// `url_secret` instead. PagerDuty defaults to `https://events.pagerduty.com/v2/enqueue`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_secret: Option<SecretRef>,
    /// Extra request headers, values as secret references (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, SecretRef>,
    /// PagerDuty integration (routing) key; required for `kind = "pagerduty"`.
    #[serde(default)]
    pub routing_key: Option<SecretRef>,
    /// Event names this webhook receives (`approval-reminder`, `verification-timeout`,
    /// `step-failed`, `paused-window-exceeded`, `outcome`, ...); empty: all events.
    #[serde(default)]
    pub events: Vec<String>,
    /// Targets this webhook is for; empty: all targets.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Timeout of one POST (ms).
    #[serde(default = "defaults::webhook_timeout_ms")]
    pub timeout_ms: u64,
    /// When true, a notification this webhook keeps refusing fails the job (the engine retries
    /// it, then raises an incident). Default false: the process goes on with `notified: false`.
    #[serde(default)]
    pub required: bool,
}

/// How to reach the management Camunda (the one that runs c8dr's BPMN).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    /// gRPC address with scheme: `http://host:26500` (plaintext) or `https://host:443` (TLS).
    pub grpc_address: String,
    /// REST v2 address (user tasks, process instances) for the CLI.
    pub rest_address: String,
    /// PEM file with the CA to trust for TLS; system roots are used when absent.
    pub ca_certificate_path: Option<PathBuf>,
    pub auth: AuthConfig,
    /// Per-request deadline for unary gRPC calls, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        Self {
            grpc_address: "http://127.0.0.1:26500".into(),
            rest_address: "http://127.0.0.1:8080".into(),
            ca_certificate_path: None,
            auth: AuthConfig::None,
            request_timeout_ms: 10_000,
        }
    }
}

/// Authentication towards the management Camunda.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    #[default]
    None,
    Basic {
        username: String,
        password: SecretRef,
    },
    /// OAuth 2.0 client credentials; the token is cached and refreshed before expiry.
    Oauth {
        client_id: String,
        client_secret: SecretRef,
        /// Token endpoint, e.g. `https://idp/realms/camunda-platform/protocol/openid-connect/token`.
        authorization_server_url: String,
        #[serde(default)]
        audience: Option<String>,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// The job worker runtime.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Worker name sent to the gateway and written to the journal.
    pub name: String,
    /// Cap on jobs in flight per job type.
    pub max_jobs_active: u32,
    /// How long an activated job stays locked to this worker (ms).
    pub job_timeout_ms: u64,
    /// Open StreamActivatedJobs besides long polling.
    pub stream_enabled: bool,
    /// Long-poll request timeout (ms).
    pub request_timeout_ms: u64,
    /// Pause after an empty poll (ms).
    pub poll_interval_ms: u64,
    /// Back-off bounds after gateway errors (ms).
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// How long in-flight jobs may run after SIGTERM / Ctrl-C (ms).
    pub shutdown_grace_ms: u64,
    /// Retry back-off asked of the engine when a step fails transiently (ms).
    pub fail_retry_backoff_ms: u64,
    /// How long a step failing transiently (target unreachable, 5xx) is retried before its job
    /// retries are spent, and with which back-off (`[worker.transient_retry]`).
    pub transient_retry: TransientRetryConfig,
    /// `/metrics`, `/healthz`, `/readyz`; empty disables the endpoint.
    pub metrics_address: String,
    /// A verification check that finds its goal not reached yet keeps observing for up to this
    /// long (ms) before it reports "not yet" (0: observe once). Keep it under half of
    /// `job_timeout_ms`.
    pub check_watch_ms: u64,
    /// How often a watching check observes again (ms).
    pub check_poll_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: "c8dr-worker".into(),
            max_jobs_active: 8,
            job_timeout_ms: 60_000,
            stream_enabled: true,
            request_timeout_ms: 10_000,
            poll_interval_ms: 100,
            backoff_min_ms: 50,
            backoff_max_ms: 5_000,
            shutdown_grace_ms: 30_000,
            fail_retry_backoff_ms: 5_000,
            transient_retry: TransientRetryConfig::default(),
            metrics_address: "127.0.0.1:9464".into(),
            check_watch_ms: 20_000,
            check_poll_ms: 2_000,
        }
    }
}

/// Retrying transient step failures: exponential back-off (`initial_backoff_ms`, doubling, capped
/// at `max_backoff_ms`) while the back-offs add up to at most `window_ms`; the job's own retries
/// are kept meanwhile and only spent once the window is used up. Times are the engine's (the
/// engine waits the back-off), so any worker replica continues the same budget.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TransientRetryConfig {
    /// Total back-off a step may spend on transient failures (ms). 0 disables the budget (every
    /// failure spends one job retry).
    pub window_ms: u64,
    /// First back-off (ms); doubled after each further failure.
    pub initial_backoff_ms: u64,
    /// Cap of one back-off (ms).
    pub max_backoff_ms: u64,
    /// A read the target answered with a 5xx or a malformed body is retried in place, up to 4
    /// attempts, after this pause (ms), doubled each time. Unanswered reads (connection refused,
    /// timeout) are not retried in place: a lost region's silence is what the split-brain check
    /// expects, and the job-level back-off above covers the rest.
    pub read_pause_ms: u64,
}

impl Default for TransientRetryConfig {
    fn default() -> Self {
        Self { window_ms: 600_000, initial_backoff_ms: 5_000, max_backoff_ms: 60_000, read_pause_ms: 200 }
    }
}

/// The audit journal: one JSON line per mutating call and per step outcome.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    pub path: PathBuf,
    /// Sync every line to disk before the step goes on (keep it on in production: the journal is
    /// the audit record of every mutating call). Rehearsals turn it off for their temporary journal.
    pub fsync: bool,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self { path: PathBuf::from("c8dr-journal.jsonl"), fsync: true }
    }
}

/// One dual-region installation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Drills (which simulate a region loss) refuse to run unless this is true.
    #[serde(default)]
    pub drill_allowed: bool,
    #[serde(default = "defaults::cluster_size")]
    pub cluster_size: u32,
    #[serde(default = "defaults::partition_count")]
    pub partition_count: u32,
    #[serde(default = "defaults::replication_factor")]
    pub replication_factor: u32,
    /// Helm release name of Camunda in each region.
    #[serde(default = "defaults::release")]
    pub release: String,
    /// Exporter ids are `<exporter_prefix><region>`, e.g. `camundaregion0`.
    #[serde(default = "defaults::exporter_prefix")]
    pub exporter_prefix: String,
    /// Legacy 8.7 exporters `<legacy_exporter_prefix><region>`, handled when present and enabled.
    #[serde(default = "defaults::legacy_exporter_prefix")]
    pub legacy_exporter_prefix: String,
    #[serde(default)]
    pub snapshot: SnapshotConfig,
    #[serde(default)]
    pub helm: HelmConfig,
    /// Exactly two regions; the index is the region id (brokers: even ids region 0, odd region 1).
    pub regions: Vec<RegionConfig>,
    /// Kubernetes observation and remedies of this target.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// Four-eyes approvals (job `c8dr.approval-guard`): the process initiator cannot approve,
    /// and an approver must be known. Default true; a drill target may set false.
    #[serde(default = "defaults::four_eyes")]
    pub four_eyes: bool,
}

/// Elasticsearch snapshot repository used to copy the surviving region's data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    pub repository: String,
    /// Repository type, e.g. `s3`, `gcs`, `azure`, `fs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository settings as Elasticsearch takes them (bucket, client, base_path, ...).
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Prefix of snapshot names; the process instance key is appended.
    pub name_prefix: String,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        Self {
            repository: "camunda_backup".into(),
            kind: "s3".into(),
            settings: BTreeMap::new(),
            name_prefix: "c8dr-failback".into(),
        }
    }
}

/// How the Helm (platform) steps are carried out.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HelmConfig {
    pub mode: HelmMode,
    /// helm binary (mode `command`).
    pub binary: String,
    /// Chart reference, e.g. `camunda/camunda-platform`.
    pub chart: String,
    pub chart_version: Option<String>,
    /// Values files per region (index = region id), applied in order after `base_values`.
    pub base_values: Vec<PathBuf>,
    pub region_values: Vec<Vec<PathBuf>>,
    /// No longer used (accepted so older configs load): c8dr builds the whole
    /// `orchestration.env` list from the values files and passes it in a generated values file.
    pub schema_env_index: u32,
    /// Timeout for one helm command (seconds).
    pub timeout_secs: u64,
}

impl Default for HelmConfig {
    fn default() -> Self {
        Self {
            mode: HelmMode::Manual,
            binary: "helm".into(),
            chart: "camunda/camunda-platform".into(),
            chart_version: None,
            base_values: Vec::new(),
            region_values: Vec::new(),
            schema_env_index: 0,
            timeout_secs: 900,
        }
    }
}

impl HelmConfig {
    /// What is missing for a helm call that cannot fall back to chart defaults or the latest
    /// chart (modes `manual` and `command`): `(key under helm, problem and fix)`.
    pub fn pinning_problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.chart_version.as_deref().is_none_or(|v| v.trim().is_empty()) {
            p.push((
                "chart_version",
                "is not set; pin the chart version both regions run (e.g. \"13.0.0\"): without it helm takes the latest chart".to_string(),
            ));
        }
        if self.base_values.is_empty() {
            p.push((
                "base_values",
                "is empty; list the values files of your installation: without them helm upgrades with chart defaults"
                    .to_string(),
            ));
        }
        if self.region_values.len() != 2 || self.region_values.iter().any(Vec::is_empty) {
            p.push((
                "region_values",
                format!(
                    "has {} non-empty lists; give one list of values files per region (index = region id), e.g. [[\"region0.yaml\"], [\"region1.yaml\"]]",
                    self.region_values.iter().filter(|l| !l.is_empty()).count()
                ),
            ));
        }
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HelmMode {
    /// Throw MANUAL_STEP_REQUIRED with the exact command; an operator runs it.
    #[default]
    Manual,
    /// Run helm with exact arguments and a timeout; observe through the Kubernetes API.
    Command,
}

/// Kubernetes settings of a target (`[targets.NAME.kubernetes]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A broker pod Running but not Ready for this long is shown as stuck (seconds).
    pub stuck_after_secs: u64,
    /// How long a restarted pod may take to become Ready again (seconds).
    pub pod_ready_timeout_secs: u64,
    /// Timeout of one Kubernetes API request (seconds).
    pub request_timeout_secs: u64,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self { stuck_after_secs: 300, pod_ready_timeout_secs: 600, request_timeout_secs: 30 }
    }
}

/// How c8dr reaches a region's management, REST and Elasticsearch APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// The URLs as configured (ingress, load balancer, service mesh).
    #[default]
    Direct,
    /// Through the Kubernetes API: every call opens a short-lived port-forward to a Ready pod
    /// behind the Service the URL names (`http://<service>:<port>`), closed after the call.
    PortForward,
}

/// One region of a target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    pub name: String,
    /// Kubernetes namespace of the Camunda release in this region.
    #[serde(default)]
    pub namespace: String,
    /// kubeconfig context of this region's cluster; none: the kubeconfig's current context,
    /// or the in-cluster service account when c8dr runs in a pod and no kubeconfig is given.
    #[serde(default)]
    pub kube_context: Option<String>,
    /// kubeconfig file (default: `$KUBECONFIG`, then `~/.kube/config`).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// `direct` (default) or `port-forward`.
    #[serde(default)]
    pub access: Access,
    /// Zeebe management API, e.g. `http://camunda-zeebe-gateway.ns:9600`.
    pub management_url: String,
    /// Orchestration Cluster REST API, e.g. `http://camunda-zeebe-gateway.ns:8080`.
    pub rest_url: String,
    pub elasticsearch_url: String,
    #[serde(default)]
    pub rest_auth: HttpAuth,
    #[serde(default)]
    pub elasticsearch_auth: HttpAuth,
    /// Per-request timeout towards this region (ms).
    #[serde(default = "defaults::http_timeout_ms")]
    pub timeout_ms: u64,
}

/// Authentication for a target's HTTP APIs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    #[default]
    None,
    Basic {
        username: String,
        password: SecretRef,
    },
    Bearer {
        token: SecretRef,
    },
    ApiKey {
        key: SecretRef,
    },
    /// OAuth 2.0 client credentials (the 8.8 REST API behind Keycloak / Entra / Okta): the token
    /// is cached, refreshed before it expires and once more on HTTP 401.
    Oauth {
        client_id: String,
        client_secret: SecretRef,
        /// Token endpoint, e.g. `https://idp/realms/camunda-platform/protocol/openid-connect/token`.
        authorization_server_url: String,
        #[serde(default)]
        audience: Option<String>,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// True when `url` carries user info (`scheme://user:pass@host`). Credentials never go into
/// URLs: they would be printed wherever the URL is.
pub fn url_has_credentials(url: &str) -> bool {
    match url::Url::parse(url.trim()) {
        Ok(u) => !u.username().is_empty() || u.password().is_some(),
        // Unparseable: look for user info between the scheme and the first '/'.
        Err(_) => url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.split(['/', '?', '#']).next().is_some_and(|auth| auth.contains('@'))),
    }
}

/// `url` with any user info replaced by `***`, for messages and summaries.
pub fn redact_url(url: &str) -> String {
    if !url_has_credentials(url) {
        return url.to_string();
    }
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
            format!("{scheme}://***@{host}{}", &rest[end..])
        }
        None => "***".into(),
    }
}

/// Where a secret lives: an environment variable or a file. Never the secret itself.
///
/// Deserialising anything but `{ env = "VAR" }` / `{ file = "/path" }` fails with a message that
/// never contains the rejected value (a secret written inline would otherwise be echoed).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

/// The error for a value where a [`SecretRef`] belongs; the value itself is never included.
pub const INLINE_SECRET: &str = "a secret must be a reference, not the value: write { env = \"VAR\" } (and export VAR) \
     or { file = \"/path\" }; the value given here is not shown";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret reference { env = \"VAR\" } or { file = \"/path\" }")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let mut out = SecretRef::default();
                while let Some(key) = map.next_key::<String>()? {
                    // Values are read as opaque strings so a wrong type never echoes them.
                    let value: Opaque = map.next_value()?;
                    match key.as_str() {
                        "env" => {
                            out.env = Some(value.0.ok_or_else(|| {
                                serde::de::Error::custom(
                                    "secret reference `env` must be the name of an environment variable (a string)",
                                )
                            })?)
                        }
                        "file" => {
                            out.file = Some(PathBuf::from(value.0.ok_or_else(|| {
                                serde::de::Error::custom("secret reference `file` must be a file path (a string)")
                            })?))
                        }
                        other => {
                            return Err(serde::de::Error::custom(format!(
                                "unknown field `{other}` in a secret reference (only `env` or `file`); {INLINE_SECRET}"
                            )));
                        }
                    }
                }
                Ok(out)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SecretRef, E> {
                Ok(SecretRef::default())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<SecretRef, E> {
                Ok(SecretRef::default())
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
                Err(serde::de::Error::custom(INLINE_SECRET))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Any value; keeps it only when it is a string. Never prints what it rejected.
struct Opaque(Option<String>);

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Opaque;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Opaque, E> {
                Ok(Opaque(Some(v.to_string())))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Opaque, E> {
                Ok(Opaque(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Opaque, E> {
                Ok(Opaque(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Opaque, E> {
                Ok(Opaque(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Opaque, E> {
                Ok(Opaque(None))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Opaque, E> {
                Ok(Opaque(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Opaque, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Opaque(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Opaque, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(Opaque(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Why a secret could not be read; names the reference, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret reference is empty: set `env = \"VAR\"` or `file = \"/path\"`")]
    Empty,
    #[error("environment variable {0} (named by a secret reference) is not set")]
    EnvMissing(String),
    #[error("secret file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Unusable(String),
}

impl SecretRef {
    pub fn from_env(var: &str) -> Self {
        Self { env: Some(var.to_string()), file: None }
    }

    /// Reads the secret: the env var first, then the file (trailing newline trimmed).
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        if let Some(var) = &self.env {
            return std::env::var(var).map(Secret).map_err(|_| SecretError::EnvMissing(var.clone()));
        }
        if let Some(path) = &self.file {
            return std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|source| SecretError::File { path: path.clone(), source });
        }
        Err(SecretError::Empty)
    }
}

/// A secret value. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for building a request. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

pub mod defaults {
    pub fn cluster_size() -> u32 {
        8
    }
    pub fn partition_count() -> u32 {
        8
    }
    pub fn replication_factor() -> u32 {
        4
    }
    pub fn four_eyes() -> bool {
        true
    }
    pub fn release() -> String {
        "camunda".into()
    }
    pub fn exporter_prefix() -> String {
        "camundaregion".into()
    }
    pub fn legacy_exporter_prefix() -> String {
        "elasticsearchregion".into()
    }
    pub fn http_timeout_ms() -> u64 {
        10_000
    }
    pub fn webhook_timeout_ms() -> u64 {
        5_000
    }
}
