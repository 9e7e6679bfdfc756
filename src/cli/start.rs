//! `c8dr start failover|failback`: validates locally, then starts the latest version of
//! `dr-failover` / `dr-failback` and prints the process instance key.
use super::common::{Scope, connect, load_valid_config};
use anyhow::Context;
use c8dr::config::Config;
use serde_json::{Map, Value};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub process: Process,
    /// Who starts the process (variable `initiatedBy`): four-eyes lets someone else approve.
    /// Default: $USER (or $LOGNAME).
    #[arg(long, global = true, value_name = "NAME")]
    pub initiated_by: Option<String>,
}

/// The initiator: the flag, else the login name; None when neither is set (or blank).
pub fn initiator(flag: Option<String>, login: Option<String>) -> Option<String> {
    flag.or(login).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[derive(Debug, clap::Subcommand)]
pub enum Process {
    /// Start dr-failover: remove the lost region from the cluster.
    Failover {
        /// Target name (a [targets.NAME] section of the configuration).
        #[arg(long)]
        target: String,
        /// The region that was lost: 0 or 1.
        #[arg(long)]
        lost_region: i64,
        /// Why the failover is done (shown in the approval form and the report).
        #[arg(long, default_value = "")]
        reason: String,
        /// Extra process variables, KEY=VALUE (VALUE as JSON when it parses, else a string).
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Start dr-failback: bring the recreated region back.
    Failback {
        #[arg(long)]
        target: String,
        /// The region that was recreated: 0 or 1.
        #[arg(long)]
        recreated_region: i64,
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
}

/// Parses `KEY=VALUE` pairs (VALUE as JSON when it parses, else a string).
pub fn parse_vars(vars: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for v in vars {
        let (k, val) = v.split_once('=').with_context(|| format!("--var {v:?}: write it as KEY=VALUE"))?;
        let k = k.trim();
        if k.is_empty() {
            anyhow::bail!("--var {v:?}: the key is empty; write it as KEY=VALUE");
        }
        let value = serde_json::from_str(val).unwrap_or_else(|_| Value::String(val.to_string()));
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

/// Inputs `--var` may set, per process (docs/jobs.md "Process inputs"); the target and the
/// region have their own flags.
pub const FAILOVER_VARS: &[&str] = &[
    "approverGroup",
    "autoApprove",
    "verifyInterval",
    "changeTimeout",
    "approvalDue",
    "reminderAfter",
    "survivingRegion",
];
pub const FAILBACK_VARS: &[&str] = &[
    "approverGroup",
    "autoApprove",
    "verifyInterval",
    "changeTimeout",
    "approvalDue",
    "reminderAfter",
    "snapshotTimeout",
    "restoreTimeout",
    "brokersVisibleTimeout",
    "survivingRegion",
];

/// Refuses `--var` names the process does not read (a typo would silently keep the default).
pub fn check_var_names(process_id: &str, vars: &Map<String, Value>, known: &[&str]) -> anyhow::Result<()> {
    for name in vars.keys() {
        if known.contains(&name.as_str()) {
            continue;
        }
        let flag = match name.as_str() {
            "target" => Some("--target"),
            "lostRegion" => Some("--lost-region"),
            "recreatedRegion" => Some("--recreated-region"),
            "reason" => Some("--reason"),
            "initiatedBy" => Some("--initiated-by"),
            _ => None,
        };
        match flag {
            Some(flag) => anyhow::bail!("--var {name}: set it with {flag}, not --var"),
            None => {
                let near = known.iter().find(|k| k.eq_ignore_ascii_case(name));
                let hint = near.map(|k| format!(" (did you mean {k}?)")).unwrap_or_default();
                anyhow::bail!(
                    "--var {name}: {process_id} has no input {name:?}{hint}; known inputs: {} (see docs/jobs.md)",
                    known.join(", ")
                )
            }
        }
    }
    Ok(())
}

/// Checks that `target` exists in the configuration and `region` is 0 or 1.
pub fn check_target_and_region(config: &Config, target: &str, flag: &str, region: i64) -> anyhow::Result<()> {
    if !config.targets.contains_key(target) {
        let known: Vec<&String> = config.targets.keys().collect();
        anyhow::bail!(
            "--target {target:?} is not in the configuration (known targets: {known:?}); add a [targets.{target}] section or pick one of them"
        );
    }
    if !(0..=1).contains(&region) {
        anyhow::bail!("--{flag} {region}: regions are 0 or 1");
    }
    Ok(())
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let config = load_valid_config(global, Scope::Management)?;
    let (process_id, mut vars) = match args.process {
        Process::Failover { target, lost_region, reason, vars } => {
            check_target_and_region(&config, &target, "lost-region", lost_region)?;
            let mut v = parse_vars(&vars)?;
            check_var_names("dr-failover", &v, FAILOVER_VARS)?;
            v.insert("target".into(), target.into());
            v.insert("lostRegion".into(), lost_region.into());
            v.insert("reason".into(), reason.into());
            ("dr-failover", v)
        }
        Process::Failback { target, recreated_region, vars } => {
            check_target_and_region(&config, &target, "recreated-region", recreated_region)?;
            let mut v = parse_vars(&vars)?;
            check_var_names("dr-failback", &v, FAILBACK_VARS)?;
            v.insert("target".into(), target.into());
            v.insert("recreatedRegion".into(), recreated_region.into());
            ("dr-failback", v)
        }
    };
    let login = std::env::var("USER").ok().or_else(|| std::env::var("LOGNAME").ok());
    match initiator(args.initiated_by, login) {
        Some(who) => {
            vars.insert("initiatedBy".into(), who.into());
        }
        None => {
            let target = vars.get("target").and_then(Value::as_str).unwrap_or_default();
            if config.targets.get(target).is_some_and(|t| t.four_eyes) {
                anyhow::bail!(
                    "--initiated-by is missing and $USER is not set: four-eyes (target {target:?}) needs to know who starts the process; pass --initiated-by NAME"
                );
            }
        }
    }
    vars.retain(|_, v| !v.is_null());
    let client = connect(&config)?;
    let created = client.create_process_instance(process_id, &vars).await.map_err(|e| match e {
        // only NOT_FOUND means the process is missing; anything else (unreachable gateway,
        // credentials, wrong port) says its own cause and fix
        c8dr::zeebe::ClientError::NotFound { .. } => {
            anyhow::anyhow!("cannot start {process_id}: {e}; deploy the processes first with `c8dr deploy`")
        }
        other => anyhow::anyhow!("cannot start {process_id}: {other}"),
    })?;
    println!(
        "started {} version {}: process instance {}",
        created.bpmn_process_id, created.version, created.process_instance_key
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_initiator_comes_from_the_flag_else_the_login_name() {
        assert_eq!(initiator(Some("alice".into()), Some("root".into())).as_deref(), Some("alice"));
        assert_eq!(initiator(None, Some("bob".into())).as_deref(), Some("bob"));
        assert_eq!(initiator(Some("  ".into()), None), None);
        assert_eq!(initiator(None, None), None);
        let cli =
            Cli::parse_from(["start", "failover", "--target", "prod", "--lost-region", "1", "--initiated-by", "carol"]);
        assert_eq!(cli.args.initiated_by.as_deref(), Some("carol"));
        let vars = parse_vars(&["initiatedBy=mallory".to_string()]).unwrap();
        let err = check_var_names("dr-failover", &vars, FAILOVER_VARS).unwrap_err().to_string();
        assert!(err.contains("--initiated-by"), "{err}");
    }
}
