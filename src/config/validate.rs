//! [`Config::validate`]: every problem at once, each naming the field and the fix.
use super::{AuthConfig, Config, HttpAuth, SecretRef, WebhookKind};
use std::collections::BTreeMap;
use std::fmt;

/// One configuration problem: the field (dotted path) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigProblem { field: field.into(), problem: problem.into() });
    }

    /// `auth_key` names where credentials for this URL belong (they never go into the URL).
    fn url(&mut self, field: &str, value: &str, schemes: &[&str], auth_key: &str) {
        if super::url_has_credentials(value) {
            // The value is never echoed: it holds a password.
            self.add(
                field,
                format!(
                    "contains credentials (user:password@host); remove them from the URL and configure {auth_key} \
                     with a secret reference instead (the value is not shown)"
                ),
            );
            return;
        }
        match url::Url::parse(value) {
            Err(e) => {
                self.add(field, format!("{value:?} is not a URL ({e}); write it like {}://host:port", schemes[0]))
            }
            Ok(u) if !schemes.contains(&u.scheme()) => {
                self.add(field, format!("{value:?} has scheme {:?}; use one of {}", u.scheme(), schemes.join(", ")))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => self.add(field, format!("{value:?} has no host")),
            Ok(_) => {}
        }
    }

    fn secret(&mut self, field: &str, secret: &SecretRef, env: &BTreeMap<String, String>) {
        match (&secret.env, &secret.file) {
            (None, None) => self.add(field, "secret reference is empty; set env = \"VAR\" or file = \"/path\""),
            (Some(var), _) if !env.contains_key(var) => self
                .add(field, format!("environment variable {var} is not set; export it (the secret is read from it)")),
            (None, Some(path)) if !path.exists() => {
                self.add(field, format!("secret file {} does not exist; create it or fix the path", path.display()))
            }
            _ => {}
        }
    }

    fn http_auth(&mut self, field: &str, auth: &HttpAuth, env: &BTreeMap<String, String>) {
        match auth {
            HttpAuth::None => {}
            HttpAuth::Basic { username, password } => {
                if username.trim().is_empty() {
                    self.add(format!("{field}.username"), "is empty; set the user name");
                }
                self.secret(&format!("{field}.password"), password, env);
            }
            HttpAuth::Bearer { token } => self.secret(&format!("{field}.token"), token, env),
            HttpAuth::ApiKey { key } => self.secret(&format!("{field}.key"), key, env),
            HttpAuth::Oauth { client_id, client_secret, authorization_server_url, .. } => {
                if client_id.trim().is_empty() {
                    self.add(format!("{field}.client_id"), "is empty; set the OAuth client id");
                }
                self.secret(&format!("{field}.client_secret"), client_secret, env);
                if authorization_server_url.trim().is_empty() {
                    self.add(
                        format!("{field}.authorization_server_url"),
                        "is empty; set the token endpoint (e.g. https://idp/realms/camunda-platform/protocol/openid-connect/token)",
                    );
                } else {
                    self.url(
                        &format!("{field}.authorization_server_url"),
                        authorization_server_url,
                        &["https", "http"],
                        &format!("{field}.client_id and client_secret"),
                    );
                }
            }
        }
    }
}

/// A Kubernetes namespace name (RFC 1123 label).
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Two URLs naming the same endpoint (scheme, host, port and path; case and a trailing '/'
/// ignored).
fn same_url(a: &str, b: &str) -> bool {
    match (url::Url::parse(a.trim()), url::Url::parse(b.trim())) {
        (Ok(x), Ok(y)) => {
            x.scheme() == y.scheme()
                && x.host_str() == y.host_str()
                && x.port_or_known_default() == y.port_or_known_default()
                && x.path().trim_end_matches('/') == y.path().trim_end_matches('/')
        }
        _ => a.trim().trim_end_matches('/').eq_ignore_ascii_case(b.trim().trim_end_matches('/')),
    }
}

impl Config {
    /// Checks everything that can be checked without network; secrets referenced by env var
    /// must be set in the process environment.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        self.validate_with_env(&env)
    }

    /// [`Config::validate`] against an explicit environment (for tests).
    pub fn validate_with_env(&self, env: &BTreeMap<String, String>) -> Result<(), Vec<ConfigProblem>> {
        let mut p = Problems(Vec::new());
        let m = &self.management;
        p.url("management.grpc_address", &m.grpc_address, &["http", "https", "grpc", "grpcs"], "management.auth");
        p.url("management.rest_address", &m.rest_address, &["http", "https"], "management.auth");
        if let Some(ca) = &m.ca_certificate_path
            && !ca.exists()
        {
            p.add("management.ca_certificate_path", format!("{} does not exist; point it at a PEM file", ca.display()));
        }
        if m.request_timeout_ms == 0 {
            p.add("management.request_timeout_ms", "must be > 0 (e.g. 10000)");
        }
        match &m.auth {
            AuthConfig::None => {}
            AuthConfig::Basic { username, password } => {
                if username.trim().is_empty() {
                    p.add("management.auth.username", "is empty; set the user name (or CAMUNDA_BASIC_AUTH_USERNAME)");
                }
                p.secret("management.auth.password", password, env);
            }
            AuthConfig::Oauth { client_id, client_secret, authorization_server_url, .. } => {
                if client_id.trim().is_empty() {
                    p.add("management.auth.client_id", "is empty; set it (or CAMUNDA_CLIENT_ID)");
                }
                p.secret("management.auth.client_secret", client_secret, env);
                if authorization_server_url.trim().is_empty() {
                    p.add(
                        "management.auth.authorization_server_url",
                        "is empty; set the token endpoint (or CAMUNDA_AUTHORIZATION_SERVER_URL)",
                    );
                } else {
                    p.url(
                        "management.auth.authorization_server_url",
                        authorization_server_url,
                        &["https", "http"],
                        "management.auth.client_id and client_secret",
                    );
                }
            }
        }

        let w = &self.worker;
        if w.name.trim().is_empty() {
            p.add("worker.name", "is empty; name the worker (e.g. c8dr-worker)");
        }
        if w.max_jobs_active == 0 {
            p.add("worker.max_jobs_active", "must be at least 1");
        }
        if w.job_timeout_ms < 1000 {
            p.add("worker.job_timeout_ms", "must be at least 1000 (the job is extended at half of it)");
        }
        if w.check_watch_ms > 0 && w.check_watch_ms >= w.job_timeout_ms / 2 {
            p.add(
                "worker.check_watch_ms",
                "must be under half of worker.job_timeout_ms (a check must not outlive its job); lower it or raise job_timeout_ms (0 turns the watch off)",
            );
        }
        if w.check_watch_ms > 0 && w.check_poll_ms == 0 {
            p.add("worker.check_poll_ms", "must be > 0 while worker.check_watch_ms is set (e.g. 2000)");
        }
        if w.request_timeout_ms == 0 {
            p.add("worker.request_timeout_ms", "must be > 0 (long-poll duration, e.g. 10000)");
        }
        if w.backoff_min_ms == 0 || w.backoff_min_ms > w.backoff_max_ms {
            p.add("worker.backoff_min_ms", "must be > 0 and not above worker.backoff_max_ms");
        }
        let tr = &w.transient_retry;
        if tr.window_ms > 0 && (tr.initial_backoff_ms == 0 || tr.initial_backoff_ms > tr.max_backoff_ms) {
            p.add(
                "worker.transient_retry.initial_backoff_ms",
                "must be > 0 and not above worker.transient_retry.max_backoff_ms (e.g. 5000 and 60000), or set window_ms = 0",
            );
        }
        if !w.metrics_address.is_empty() && w.metrics_address.parse::<std::net::SocketAddr>().is_err() {
            p.add(
                "worker.metrics_address",
                format!("{:?} is not host:port (e.g. 127.0.0.1:9464); use \"\" to disable", w.metrics_address),
            );
        }
        let journal = &self.journal.path;
        if journal.as_os_str().is_empty() {
            p.add("journal.path", "is empty; set a file path for the audit journal");
        } else if journal.is_dir() {
            p.add(
                "journal.path",
                format!(
                    "{} is a directory; set a file path inside it (e.g. {}/c8dr-journal.jsonl)",
                    journal.display(),
                    journal.display()
                ),
            );
        }

        for (name, t) in &self.targets {
            let f = |k: &str| format!("targets.{name}.{k}");
            if t.regions.len() != 2 {
                p.add(
                    f("regions"),
                    format!(
                        "has {} entries; a dual-region target needs exactly 2 ([[targets.{name}.regions]] twice)",
                        t.regions.len()
                    ),
                );
            }
            if t.cluster_size < 4 || t.cluster_size % 2 != 0 {
                p.add(
                    f("cluster_size"),
                    format!(
                        "is {}; must be even and at least 4 (brokers split evenly across 2 regions)",
                        t.cluster_size
                    ),
                );
            }
            if t.replication_factor < 2 || t.replication_factor % 2 != 0 {
                p.add(
                    f("replication_factor"),
                    format!("is {}; must be even (a copy in each region), e.g. 4", t.replication_factor),
                );
            } else if t.replication_factor > t.cluster_size {
                p.add(
                    f("replication_factor"),
                    format!(
                        "is {} but cluster_size is {}; it cannot exceed the cluster size",
                        t.replication_factor, t.cluster_size
                    ),
                );
            }
            if t.partition_count == 0 {
                p.add(f("partition_count"), "must be at least 1");
            }
            if t.release.trim().is_empty() {
                p.add(f("release"), "is empty; set the Helm release name (e.g. camunda)");
            }
            if t.exporter_prefix.trim().is_empty() {
                p.add(f("exporter_prefix"), "is empty; set it (e.g. camundaregion)");
            }
            if t.snapshot.repository.trim().is_empty() {
                p.add(f("snapshot.repository"), "is empty; name the Elasticsearch snapshot repository");
            }
            if t.helm.region_values.len() > 2 {
                p.add(f("helm.region_values"), "has more than 2 entries; one list per region (index = region id)");
            } else {
                for (key, problem) in t.helm.pinning_problems() {
                    p.add(f(&format!("helm.{key}")), problem);
                }
            }
            let mut names = std::collections::BTreeSet::new();
            for (i, r) in t.regions.iter().enumerate() {
                let rf = |k: &str| format!("targets.{name}.regions[{i}].{k}");
                if r.name.trim().is_empty() {
                    p.add(rf("name"), "is empty; name the region");
                } else if !names.insert(r.name.clone()) {
                    p.add(rf("name"), format!("{:?} is used twice; region names must differ", r.name));
                }
                p.url(
                    &rf("management_url"),
                    &r.management_url,
                    &["http", "https"],
                    "nothing (the management API takes no credentials; reach it inside the cluster)",
                );
                p.url(&rf("rest_url"), &r.rest_url, &["http", "https"], &rf("rest_auth"));
                p.url(&rf("elasticsearch_url"), &r.elasticsearch_url, &["http", "https"], &rf("elasticsearch_auth"));
                p.http_auth(&rf("rest_auth"), &r.rest_auth, env);
                p.http_auth(&rf("elasticsearch_auth"), &r.elasticsearch_auth, env);
                if r.timeout_ms == 0 {
                    p.add(rf("timeout_ms"), "must be > 0");
                }
                if !r.namespace.is_empty() && !is_dns_label(&r.namespace) {
                    p.add(
                        rf("namespace"),
                        format!(
                            "{:?} is not a Kubernetes namespace name (lower-case letters, digits, '-'); it can match no \
                             broker host, which silently disables the split-brain host check: set the namespace of the \
                             Camunda release",
                            r.namespace
                        ),
                    );
                }
            }
            if let [r0, r1] = t.regions.as_slice() {
                for (key, a, b) in [
                    ("management_url", &r0.management_url, &r1.management_url),
                    ("rest_url", &r0.rest_url, &r1.rest_url),
                    ("elasticsearch_url", &r0.elasticsearch_url, &r1.elasticsearch_url),
                ] {
                    if !a.trim().is_empty() && same_url(a, b) {
                        p.add(
                            format!("targets.{name}.regions[1].{key}"),
                            format!(
                                "is the same URL as regions[0].{key}; each region needs its own endpoint (a failover \
                                 would read and change the surviving region while believing it is the lost one): \
                                 point it at region {:?}",
                                r1.name
                            ),
                        );
                    }
                }
                match (r0.namespace.is_empty(), r1.namespace.is_empty()) {
                    (true, false) | (false, true) => {
                        let i = if r0.namespace.is_empty() { 0 } else { 1 };
                        p.add(
                            format!("targets.{name}.regions[{i}].namespace"),
                            "is empty while the other region has one; the split-brain host check needs both (set the \
                             namespace of this region's Camunda release)",
                        );
                    }
                    _ => {}
                }
            }
        }
        self.validate_notifications(&mut p, env);
        if p.0.is_empty() { Ok(()) } else { Err(p.0) }
    }

    fn validate_notifications(&self, p: &mut Problems, env: &BTreeMap<String, String>) {
        let n = &self.notifications;
        if n.max_attempts == 0 || n.max_attempts > 10 {
            p.add("notifications.max_attempts", format!("is {}; must be between 1 and 10", n.max_attempts));
        }
        if n.backoff_initial_ms == 0 || n.backoff_initial_ms > n.backoff_max_ms {
            p.add("notifications.backoff_initial_ms", "must be > 0 and not above notifications.backoff_max_ms");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in n.webhooks.iter().enumerate() {
            let f = |k: &str| format!("notifications.webhooks[{i}].{k}");
            if w.name.trim().is_empty() {
                p.add(f("name"), "is empty; name the webhook (it is what logs show instead of the URL)");
            } else if !names.insert(w.name.clone()) {
                p.add(f("name"), format!("{:?} is used twice; webhook names must differ", w.name));
            }
            match (&w.url, &w.url_secret) {
                (Some(_), Some(_)) => p.add(f("url"), "and url_secret are both set; keep one"),
                (Some(u), None) => p.url(&f("url"), u, &["https", "http"], &f("url_secret or headers")),
                (None, Some(s)) => p.secret(&f("url_secret"), s, env),
                (None, None) if w.kind != WebhookKind::Pagerduty => p.add(
                    f("url"),
                    "is not set; set url = \"https://...\" or, when the URL is itself a credential (Slack), url_secret = { env = \"VAR\" }",
                ),
                (None, None) => {}
            }
            for (h, s) in &w.headers {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    p.add(f("headers"), format!("{h:?} is not a valid HTTP header name"));
                }
                p.secret(&format!("{}.{h}", f("headers")), s, env);
            }
            match (&w.routing_key, w.kind) {
                (Some(s), WebhookKind::Pagerduty) => p.secret(&f("routing_key"), s, env),
                (None, WebhookKind::Pagerduty) => p.add(
                    f("routing_key"),
                    "is not set; a PagerDuty webhook needs the integration key: routing_key = { env = \"PD_ROUTING_KEY\" }",
                ),
                (Some(_), _) => p.add(f("routing_key"), "is only used by kind = \"pagerduty\"; remove it"),
                (None, _) => {}
            }
            if w.timeout_ms == 0 {
                p.add(f("timeout_ms"), "must be > 0 (e.g. 5000)");
            }
            // every try of every webhook must fit in the job: otherwise the job times out while
            // notifying and another worker notifies again
            let budget = u64::from(n.max_attempts).saturating_mul(w.timeout_ms.saturating_add(n.backoff_max_ms));
            if budget >= self.worker.job_timeout_ms {
                p.add(
                    f("timeout_ms"),
                    format!(
                        "with notifications.max_attempts = {} and backoff_max_ms = {}, retries may take {budget} ms, not under \
                         worker.job_timeout_ms = {}: lower timeout_ms, max_attempts or backoff_max_ms, or raise job_timeout_ms",
                        n.max_attempts, n.backoff_max_ms, self.worker.job_timeout_ms
                    ),
                );
            }
            for e in &w.events {
                if e.trim().is_empty() || e.contains(char::is_whitespace) {
                    p.add(f("events"), format!("{e:?} is not an event name (e.g. step-failed, outcome)"));
                }
            }
            for t in &w.targets {
                if !self.targets.contains_key(t) {
                    p.add(
                        f("targets"),
                        format!(
                            "{t:?} is not a configured target; use one of {:?}",
                            self.targets.keys().collect::<Vec<_>>()
                        ),
                    );
                }
            }
        }
    }
}
