//! `c8dr drill trigger`: publishes the `c8dr-drill` message that starts `dr-drill`.
use super::common::{Scope, connect, load_valid_config};
use super::start::check_target_and_region;
use c8dr::zeebe::Message;
use serde_json::{Map, Value};
use std::process::ExitCode;
use std::time::Duration;

/// Name of the message that starts a drill (docs/jobs.md, Messages).
pub const DRILL_MESSAGE: &str = "c8dr-drill";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish the c8dr-drill message (correlation key = target).
    Trigger {
        /// Target name (a [targets.NAME] section with drill_allowed = true).
        #[arg(long)]
        target: String,
        /// The region the drill simulates losing: 0 or 1.
        #[arg(long)]
        lost_region: i64,
        /// Skip approvals and confirmations (drills on non-production targets only).
        #[arg(long)]
        auto_approve: bool,
        /// Candidate group of the approval tasks.
        #[arg(long, default_value = "dr-operators")]
        approver_group: String,
        /// Who triggers the drill (variable `initiatedBy`, four-eyes). Default: $USER.
        #[arg(long, value_name = "NAME")]
        initiated_by: Option<String>,
    },
}

/// The message for a drill; `message_id` makes each trigger unique.
pub fn drill_message(target: &str, lost_region: i64, auto_approve: bool, approver_group: &str) -> Message {
    let mut variables = Map::new();
    variables.insert("target".into(), Value::from(target));
    variables.insert("lostRegion".into(), Value::from(lost_region));
    variables.insert("approverGroup".into(), Value::from(approver_group));
    variables.insert("autoApprove".into(), Value::from(auto_approve));
    let unique =
        format!("{DRILL_MESSAGE}-{target}-{}-{:08x}", chrono::Utc::now().timestamp_millis(), rand::random::<u32>());
    Message {
        name: DRILL_MESSAGE.into(),
        correlation_key: target.into(),
        time_to_live: Duration::from_secs(3600),
        message_id: Some(unique),
        variables,
    }
}

pub async fn run(cmd: Command, global: &super::Global) -> anyhow::Result<ExitCode> {
    let Command::Trigger { target, lost_region, auto_approve, approver_group, initiated_by } = cmd;
    let config = load_valid_config(global, Scope::Management)?;
    check_target_and_region(&config, &target, "lost-region", lost_region)?;
    if !config.targets[&target].drill_allowed {
        eprintln!(
            "warning: targets.{target}.drill_allowed is false: the drill process will refuse to run (DRILL_NOT_ALLOWED)"
        );
    }
    let mut message = drill_message(&target, lost_region, auto_approve, &approver_group);
    let login = std::env::var("USER").ok().or_else(|| std::env::var("LOGNAME").ok());
    if let Some(who) = super::start::initiator(initiated_by, login) {
        message.variables.insert("initiatedBy".into(), who.into());
    }
    let client = connect(&config)?;
    let published = client.publish_message(&message).await?;
    println!(
        "published {DRILL_MESSAGE} for target {target} (lost region {lost_region}): message key {}, id {}",
        published.key,
        message.message_id.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
