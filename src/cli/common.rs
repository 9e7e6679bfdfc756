//! What every subcommand uses: loading and validating the configuration ([`load_config`],
//! [`load_valid_config`]) and the management Camunda's client ([`connect`]).
use super::Global;
use c8dr::config::{Config, DEFAULT_CONFIG_FILE};
use c8dr::zeebe::GatewayClient;
use std::path::Path;

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
