//! Loading: the TOML file, then Camunda's client variables (CAMUNDA_* first, then ZEEBE_*) for
//! the management connection, then `C8DR_` overrides (`__` separates nesting levels:
//! `C8DR_WORKER__MAX_JOBS_ACTIVE=4`). Later sources win.
use super::{AuthConfig, Config, SecretRef};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file `c8dr` reads when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "c8dr.toml";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist; pass an existing file with --config (or C8DR_CONFIG)")]
    NotFound(PathBuf),
    #[error("cannot read configuration file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("bad configuration in {source_name}: {reason}; fix or remove that key (see docs/configuration.md)")]
    Parse { source_name: String, reason: String },
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<super::ConfigProblem>),
}

impl Config {
    /// Loads `path` (must exist) or, with `None`, `c8dr.toml` when present (defaults otherwise),
    /// then applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(path: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) if !p.exists() => return Err(ConfigError::NotFound(p.to_path_buf())),
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let mut config = match &file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::Read { path: p.clone(), reason: scrub(&e.to_string()) })?;
                Self::from_toml_str(&text, &p.display().to_string())?
            }
            None => Config::default(),
        };
        apply_camunda_env(&mut config, env);
        apply_c8dr_env(config, env)
    }

    /// Parses TOML text (`source_name` names it in errors).
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::Parse { source_name: source_name.into(), reason: scrub(&e.to_string()) })?;
        built
            .try_deserialize()
            .map_err(|e| ConfigError::Parse { source_name: source_name.into(), reason: scrub(&e.to_string()) })
    }
}

fn apply_c8dr_env(config: Config, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
    let vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| {
            // Every setting is nested (`SECTION__KEY`), so a C8DR_ variable without `__` is not
            // an override: C8DR_CONFIG, C8DR_LOG_FORMAT, or a secret such as C8DR_CLIENT_SECRET.
            k.strip_prefix("C8DR_").is_some_and(|rest| rest.contains("__"))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if vars.is_empty() {
        return Ok(config);
    }
    let names: Vec<&String> = vars.keys().collect();
    let source_name = format!("environment ({})", names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
    let base = toml::to_string(&config)
        .map_err(|e| ConfigError::Parse { source_name: "configuration".into(), reason: scrub(&e.to_string()) })?;
    let built = config::Config::builder()
        .add_source(config::File::from_str(&base, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("C8DR")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        )
        .build()
        .map_err(|e| ConfigError::Parse { source_name: source_name.clone(), reason: scrub(&e.to_string()) })?;
    built.try_deserialize().map_err(|e| ConfigError::Parse { source_name, reason: scrub(&e.to_string()) })
}

/// The first of `names` that is set and not blank.
fn first<'a>(env: &'a BTreeMap<String, String>, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
    names.iter().find_map(|n| env.get(*n).map(|v| v.trim()).filter(|v| !v.is_empty()).map(|v| (*n, v)))
}

fn truthy(env: &BTreeMap<String, String>, names: &[&'static str]) -> bool {
    first(env, names).is_some_and(|(_, v)| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// Applies Camunda's usual client variables to the management connection.
fn apply_camunda_env(config: &mut Config, env: &BTreeMap<String, String>) {
    let m = &mut config.management;
    if let Some((name, addr)) = first(env, &["CAMUNDA_GRPC_ADDRESS", "ZEEBE_GRPC_ADDRESS", "ZEEBE_ADDRESS"]) {
        m.grpc_address = if addr.contains("://") {
            addr.to_string()
        } else {
            // host:port (ZEEBE_ADDRESS style): TLS unless told the connection is insecure.
            let insecure = truthy(env, &["CAMUNDA_INSECURE_CONNECTION", "ZEEBE_INSECURE_CONNECTION"]);
            format!("{}://{addr}", if insecure { "http" } else { "https" })
        };
        tracing::debug!(from = name, "management gRPC address taken from the environment");
    }
    if let Some((_, addr)) = first(env, &["CAMUNDA_REST_ADDRESS", "ZEEBE_REST_ADDRESS"]) {
        m.rest_address = addr.to_string();
    }
    if let Some((_, path)) = first(env, &["CAMUNDA_CA_CERTIFICATE_PATH", "ZEEBE_CA_CERTIFICATE_PATH"]) {
        m.ca_certificate_path = Some(PathBuf::from(path));
    }
    let url = first(env, &["CAMUNDA_AUTHORIZATION_SERVER_URL", "ZEEBE_AUTHORIZATION_SERVER_URL", "CAMUNDA_OAUTH_URL"]);
    let audience = first(env, &["CAMUNDA_TOKEN_AUDIENCE", "ZEEBE_TOKEN_AUDIENCE"]);
    let scope = first(env, &["CAMUNDA_TOKEN_SCOPE", "ZEEBE_TOKEN_SCOPE"]);
    let secret_var = first(env, &["CAMUNDA_CLIENT_SECRET", "ZEEBE_CLIENT_SECRET"]).map(|(n, _)| n);
    if let Some((id_var, id)) = first(env, &["CAMUNDA_CLIENT_ID", "ZEEBE_CLIENT_ID"]) {
        let (old_secret, old_url, old_audience, old_scope) = match &m.auth {
            AuthConfig::Oauth { client_secret, authorization_server_url, audience, scope, .. } => {
                (Some(client_secret.clone()), authorization_server_url.clone(), audience.clone(), scope.clone())
            }
            _ => (None, String::new(), None, None),
        };
        // The secret is referenced by the variable's name, never copied.
        let default_secret_var =
            if id_var.starts_with("ZEEBE_") { "ZEEBE_CLIENT_SECRET" } else { "CAMUNDA_CLIENT_SECRET" };
        let client_secret = match (secret_var, old_secret) {
            (Some(var), _) => SecretRef::from_env(var),
            (None, Some(old)) => old,
            (None, None) => SecretRef::from_env(default_secret_var),
        };
        m.auth = AuthConfig::Oauth {
            client_id: id.to_string(),
            client_secret,
            authorization_server_url: url.map(|(_, u)| u.to_string()).unwrap_or(old_url),
            audience: audience.map(|(_, a)| a.to_string()).or(old_audience),
            scope: scope.map(|(_, s)| s.to_string()).or(old_scope),
        };
    } else if let AuthConfig::Oauth { client_secret, authorization_server_url, audience: aud, scope: sc, .. } =
        &mut m.auth
    {
        if let Some((_, u)) = url {
            *authorization_server_url = u.to_string();
        }
        if let Some((_, a)) = audience {
            *aud = Some(a.to_string());
        }
        if let Some((_, s)) = scope {
            *sc = Some(s.to_string());
        }
        if let Some(var) = secret_var {
            *client_secret = SecretRef::from_env(var);
        }
    } else if let Some((_, user)) = first(env, &["CAMUNDA_BASIC_AUTH_USERNAME", "ZEEBE_BASIC_AUTH_USERNAME"]) {
        let password_var =
            if env.contains_key("CAMUNDA_BASIC_AUTH_PASSWORD") || !env.contains_key("ZEEBE_BASIC_AUTH_PASSWORD") {
                "CAMUNDA_BASIC_AUTH_PASSWORD"
            } else {
                "ZEEBE_BASIC_AUTH_PASSWORD"
            };
        m.auth = AuthConfig::Basic { username: user.to_string(), password: SecretRef::from_env(password_var) };
    }
}

/// A parse error without the quoted source lines: TOML syntax errors show the offending line,
/// which may hold a secret written inline (`password = hunter2`). Line and column stay.
fn scrub(reason: &str) -> String {
    let kept: Vec<&str> = reason
        .lines()
        .filter(|line| {
            let t = line.trim_start();
            let t = t.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
            !t.starts_with('|')
        })
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn scrub_drops_the_quoted_source_line() {
        let raw = "TOML parse error at line 4, column 12\n  |\n4 | password = hunter2\n  |            ^^^^^^^\nstring values must be quoted, expected literal string\n";
        let s = super::scrub(raw);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("line 4, column 12") && s.contains("must be quoted"), "{s}");
    }
}
