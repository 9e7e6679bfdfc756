//! `c8dr config check`, and the configuration helpers every subcommand uses
//! ([`load_config`], [`load_valid_config`], [`connect`]).
use super::Global;
use c8dr::config::{AuthConfig, Config, DEFAULT_CONFIG_FILE, HttpAuth, SecretRef, redact_url};
use c8dr::zeebe::GatewayClient;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load and validate the configuration; print a summary without secrets.
    Check {},
}

/// Which problems a command cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (the worker, `config check`).
    All,
    /// Only the management connection (deploy, start, drill, topology).
    Management,
}

/// Loads the configuration named by `--config`; the default `c8dr.toml` may be absent.
pub fn load_config(global: &Global) -> anyhow::Result<Config> {
    let explicit = global.config != Path::new(DEFAULT_CONFIG_FILE);
    let path = explicit.then_some(global.config.as_path());
    Ok(Config::load(path)?)
}

/// Loads and validates; fails listing every problem in `scope`.
pub fn load_valid_config(global: &Global, scope: Scope) -> anyhow::Result<Config> {
    let config = load_config(global)?;
    if let Err(problems) = config.validate() {
        let relevant: Vec<_> =
            problems.into_iter().filter(|p| scope == Scope::All || p.field.starts_with("management.")).collect();
        if !relevant.is_empty() {
            return Err(c8dr::config::ConfigError::Invalid(relevant).into());
        }
    }
    Ok(config)
}

/// A client of the management Camunda.
pub fn connect(config: &Config) -> anyhow::Result<GatewayClient> {
    Ok(GatewayClient::connect(&config.management)?)
}

pub async fn run(cmd: Command, global: &Global) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check {} => {
            let config = load_config(global)?;
            print!("{}", summary(&config));
            match config.validate() {
                Ok(()) => {
                    println!("\nconfiguration OK");
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprintln!("\n{} problem(s):", problems.len());
                    for p in &problems {
                        eprintln!("  - {p}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
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
