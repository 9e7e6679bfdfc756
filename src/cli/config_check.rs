//! `c8dr config check`.
use super::Global;
use super::common::load_config;
use c8dr::config::{AuthConfig, Config, ConfigProblem, HttpAuth, SecretRef, redact_url};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load and validate the configuration; print a summary without secrets.
    Check {
        /// Also read each target's topology (REST /v2/topology) and check that every configured
        /// namespace matches a broker host (otherwise the split-brain host check is skipped).
        #[arg(long)]
        online: bool,
    },
}

pub async fn run(cmd: Command, global: &Global) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { online } => {
            let config = load_config(global)?;
            print!("{}", summary(&config));
            let mut problems = config.validate().err().unwrap_or_default();
            if online && problems.is_empty() {
                for (name, target) in &config.targets {
                    problems.extend(namespace_problems(name, target).await);
                }
            }
            if problems.is_empty() {
                println!(
                    "\nconfiguration OK{}",
                    if online { " (namespaces checked against the live topology)" } else { "" }
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("\n{} problem(s):", problems.len());
                for p in &problems {
                    eprintln!("  - {p}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// `config check --online`: every configured namespace must be a DNS label of some broker host in
/// the live topology, or the failover's split-brain host check silently does nothing.
async fn namespace_problems(name: &str, target: &c8dr::config::TargetConfig) -> Vec<ConfigProblem> {
    let field = |i: usize, k: &str| format!("targets.{name}.regions[{i}].{k}");
    let namespaces: Vec<&str> = target.regions.iter().map(|r| r.namespace.as_str()).collect();
    if namespaces.iter().all(|n| n.is_empty()) || namespaces.windows(2).all(|w| w[0] == w[1]) {
        // no namespaces, or the same in both clusters: the host check is skipped by design
        return Vec::new();
    }
    let built = match c8dr::region_api::Target::from_config(name, target) {
        Ok(t) => t,
        Err(e) => return vec![ConfigProblem { field: e.field().to_string(), problem: e.to_string() }],
    };
    // one cluster: either region's gateway lists every broker
    let mut errors = Vec::new();
    let mut hosts = None;
    for region in built.regions() {
        match region.rest.topology().await {
            Ok(t) => {
                hosts = Some(t.brokers.iter().map(|b| b.host.clone()).collect::<Vec<_>>());
                break;
            }
            Err(e) => errors.push(format!("region {}: {e}", region.id)),
        }
    }
    let Some(hosts) = hosts else {
        return vec![ConfigProblem {
            field: format!("targets.{name}.regions"),
            problem: format!(
                "cannot read /v2/topology of either region to check the namespaces ({}); fix rest_url / rest_auth or run without --online",
                errors.join("; ")
            ),
        }];
    };
    let mut problems = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if ns.is_empty() || hosts.iter().any(|h| h.split('.').any(|label| label == *ns)) {
            continue;
        }
        let shown: Vec<&str> = hosts.iter().take(4).map(String::as_str).collect();
        problems.push(ConfigProblem {
            field: field(i, "namespace"),
            problem: format!(
                "{ns:?} matches no broker host (hosts: {}); the failover's split-brain host check would be silently \
                 skipped: set the namespace the region's brokers run in (a DNS label of their host names)",
                shown.join(", ")
            ),
        });
    }
    problems
}

fn secret(s: &SecretRef) -> String {
    match (&s.env, &s.file) {
        (Some(v), _) => format!("from env {v}"),
        (None, Some(f)) => format!("from file {}", f.display()),
        (None, None) => "NOT SET".into(),
    }
}

fn http_auth(a: &HttpAuth) -> String {
    match a {
        HttpAuth::None => "none".into(),
        HttpAuth::Basic { username, password } => {
            format!("basic {username} (password {})", secret(password))
        }
        HttpAuth::Bearer { token } => format!("bearer (token {})", secret(token)),
        HttpAuth::ApiKey { key } => format!("api key ({})", secret(key)),
        HttpAuth::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => format!(
            "oauth client {client_id} (secret {}), token url {}, audience {}, scope {}",
            secret(client_secret),
            redact_url(authorization_server_url),
            audience.as_deref().unwrap_or("-"),
            scope.as_deref().unwrap_or("-")
        ),
    }
}

/// A human-readable summary; secrets appear only as their references, URLs without user info.
pub fn summary(c: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let m = &c.management;
    let _ = writeln!(out, "management");
    let _ = writeln!(out, "  grpc_address      {}", redact_url(&m.grpc_address));
    let _ = writeln!(out, "  rest_address      {}", redact_url(&m.rest_address));
    if let Some(ca) = &m.ca_certificate_path {
        let _ = writeln!(out, "  ca_certificate    {}", ca.display());
    }
    let auth = match &m.auth {
        AuthConfig::None => "none".to_string(),
        AuthConfig::Basic { username, password } => {
            format!("basic {username} (password {})", secret(password))
        }
        AuthConfig::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => format!(
            "oauth client {client_id} (secret {}), token url {}, audience {}, scope {}",
            secret(client_secret),
            redact_url(authorization_server_url),
            audience.as_deref().unwrap_or("-"),
            scope.as_deref().unwrap_or("-")
        ),
    };
    let _ = writeln!(out, "  auth              {auth}");
    let w = &c.worker;
    let _ = writeln!(out, "worker");
    let _ = writeln!(out, "  name              {}", w.name);
    let _ = writeln!(out, "  max_jobs_active   {}", w.max_jobs_active);
    let _ = writeln!(out, "  job_timeout_ms    {}", w.job_timeout_ms);
    let _ = writeln!(out, "  stream_enabled    {}", w.stream_enabled);
    let _ = writeln!(
        out,
        "  metrics_address   {}",
        if w.metrics_address.is_empty() { "(disabled)" } else { &w.metrics_address }
    );
    let _ = writeln!(out, "journal             {}", c.journal.path.display());
    if c.targets.is_empty() {
        let _ = writeln!(out, "targets             (none)");
    }
    for (name, t) in &c.targets {
        let _ = writeln!(
            out,
            "target {name}: cluster_size {}, partitions {}, replication_factor {}, helm {:?}, drills {}",
            t.cluster_size,
            t.partition_count,
            t.replication_factor,
            t.helm.mode,
            if t.drill_allowed { "allowed" } else { "refused" }
        );
        for (i, r) in t.regions.iter().enumerate() {
            let _ = writeln!(
                out,
                "  region {i} {}: management {}, rest {} ({}), elasticsearch {} ({})",
                r.name,
                redact_url(&r.management_url),
                redact_url(&r.rest_url),
                http_auth(&r.rest_auth),
                redact_url(&r.elasticsearch_url),
                http_auth(&r.elasticsearch_auth)
            );
        }
    }
    out
}
