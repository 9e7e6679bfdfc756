//! The Kubernetes side of a region: the zeebe pods of the `camunda-zeebe` StatefulSet, its
//! rolling update, and the Helm release history (one release secret per revision).
//!
//! A `helm upgrade` that changes the pod template rolls the pods one at a time from the highest
//! ordinal down (StatefulSet `RollingUpdate`): the next pod is replaced only when every pod is
//! Ready. A (re)started pod is not Ready for `pod_restart_ms`; its broker is not alive meanwhile.
use serde::Serialize;

/// Spring profiles for a configuration (the order of Camunda's startup log line).
pub fn profiles_for(webapps: bool) -> Vec<String> {
    let mut p = vec!["broker"];
    if webapps {
        p.extend(["operate", "tasklist"]);
    }
    p.extend(["identity", "consolidated-auth"]);
    p.into_iter().map(String::from).collect()
}

/// The StatefulSet revision (`controller-revision-hash`) of a pod template: a stable hash of
/// what the template holds.
pub fn revision_for(webapps: bool, create_schema: bool) -> String {
    // FNV-1a: stable across runs and platforms
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("webapps={webapps},createSchema={create_schema}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("camunda-zeebe-{:010x}", h & 0xff_ffff_ffff)
}

/// One zeebe pod (`camunda-zeebe-N`; broker id `2 * N + region`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSim {
    pub ordinal: u32,
    /// The configuration the pod was started with.
    pub webapps: bool,
    pub create_schema: bool,
    /// Pod creation (and container start).
    pub started_ms: i64,
    /// When the pod turns Ready (unless stuck).
    pub ready_at_ms: i64,
    /// Running but never Ready since this time, until the pod is deleted.
    pub stuck_since_ms: Option<i64>,
    pub restarts: i32,
    /// Pod generation: a new uid each time the pod is recreated.
    pub incarnation: u64,
}

impl PodSim {
    pub fn new(ordinal: u32, webapps: bool, create_schema: bool, started_ms: i64, restart_ms: u64) -> Self {
        Self {
            ordinal,
            webapps,
            create_schema,
            started_ms,
            ready_at_ms: started_ms + restart_ms as i64,
            stuck_since_ms: None,
            restarts: 0,
            incarnation: 0,
        }
    }

    /// Replaced by a new pod (delete, rolling update) started at `at`.
    pub fn recreate(&mut self, webapps: bool, create_schema: bool, at: i64, restart_ms: u64) {
        self.webapps = webapps;
        self.create_schema = create_schema;
        self.started_ms = at;
        self.ready_at_ms = at + restart_ms as i64;
        self.stuck_since_ms = None;
        self.restarts = 0;
        self.incarnation += 1;
    }

    pub fn ready(&self, now: i64) -> bool {
        self.stuck_since_ms.is_none() && now >= self.ready_at_ms
    }

    /// `lastTransitionTime` of the Ready condition.
    pub fn ready_transition(&self, now: i64) -> i64 {
        match self.stuck_since_ms {
            Some(t) => t,
            None if now >= self.ready_at_ms => self.ready_at_ms,
            None => self.started_ms,
        }
    }

    /// The Spring startup line is logged (profiles readable from the log): the application
    /// started, Ready or stuck after it.
    pub fn started_app(&self, now: i64) -> bool {
        self.stuck_since_ms.is_some() || now >= self.ready_at_ms
    }

    pub fn profiles(&self) -> Vec<String> {
        profiles_for(self.webapps)
    }

    pub fn revision(&self) -> String {
        revision_for(self.webapps, self.create_schema)
    }

    pub fn name(&self) -> String {
        format!("camunda-zeebe-{}", self.ordinal)
    }
}

/// A StatefulSet rolling update in progress.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSim {
    /// Ordinals still to replace, next first (highest ordinal first).
    pub pending: Vec<u32>,
}

/// One Helm release revision (`sh.helm.release.v1.camunda.vN`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRev {
    pub version: u32,
    /// `deployed`, `superseded`.
    pub status: String,
    pub webapps: bool,
    pub create_schema: bool,
    pub created_ms: i64,
}

pub const CHART_VERSION: &str = "13.0.0";
pub const APP_VERSION: &str = "8.8.0";

impl ReleaseRev {
    /// The release as Helm stores it (the JSON inside the secret), the fields c8dr reads.
    pub fn release_json(&self, namespace: &str) -> serde_json::Value {
        let time = super::cluster::fmt_ms(self.created_ms);
        let mut config = serde_json::json!({
            "orchestration": {
                "profiles": {"operate": self.webapps, "tasklist": self.webapps},
            },
        });
        if !self.create_schema {
            config["orchestration"]["env"] = serde_json::json!([
                {"name": "CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA", "value": "false"}
            ]);
        }
        serde_json::json!({
            "name": "camunda",
            "namespace": namespace,
            "version": self.version,
            "info": {
                "first_deployed": time,
                "last_deployed": time,
                "deleted": "",
                "description": if self.version == 1 { "Install complete" } else { "Upgrade complete" },
                "status": self.status,
            },
            "chart": {"metadata": {"name": "camunda-platform", "version": CHART_VERSION, "appVersion": APP_VERSION, "apiVersion": "v2"}},
            "config": config,
            "manifest": "",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_differ_by_configuration_and_are_stable() {
        assert_eq!(revision_for(true, true), revision_for(true, true));
        assert_ne!(revision_for(true, true), revision_for(false, true));
        assert_ne!(revision_for(false, true), revision_for(false, false));
        assert!(revision_for(true, true).starts_with("camunda-zeebe-"));
    }

    #[test]
    fn a_stuck_pod_is_never_ready_until_recreated() {
        let mut p = PodSim::new(0, true, true, 0, 10);
        assert!(!p.ready(5) && p.ready(10));
        p.stuck_since_ms = Some(20);
        assert!(!p.ready(1_000_000));
        assert_eq!(p.ready_transition(30), 20);
        p.recreate(true, true, 40, 10);
        assert!(!p.ready(45) && p.ready(50));
        assert_eq!(p.incarnation, 1);
    }
}
