//! `c8dr topology`: the management Camunda's brokers and partitions.
use super::common::{Scope, connect, load_valid_config};
use c8dr::zeebe::model::{Health, Role, Topology};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let config = load_valid_config(global, Scope::Management)?;
    let client = connect(&config)?;
    let topology = client.topology().await?;
    print!("{}", render(client.address(), &topology));
    Ok(ExitCode::SUCCESS)
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Leader => "L",
        Role::Follower => "F",
        Role::Inactive => "I",
        Role::Unknown => "?",
    }
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Healthy => "",
        Health::Unhealthy => "!unhealthy",
        Health::Dead => "!dead",
        Health::Unknown => "!?",
    }
}

/// A readable table of the topology.
pub fn render(address: &str, t: &Topology) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gateway {address} (version {}): cluster size {}, partitions {}, replication factor {}",
        t.gateway_version, t.cluster_size, t.partitions_count, t.replication_factor
    );
    let _ = writeln!(
        out,
        "{:<6} {:<32} {:<10} partitions (L leader, F follower, I inactive)",
        "broker", "address", "version"
    );
    let mut brokers = t.brokers.clone();
    brokers.sort_by_key(|b| b.node_id);
    for b in &brokers {
        let mut parts = b.partitions.clone();
        parts.sort_by_key(|p| p.partition_id);
        let parts: Vec<String> =
            parts.iter().map(|p| format!("{}:{}{}", p.partition_id, role(p.role), health(p.health))).collect();
        let _ = writeln!(
            out,
            "{:<6} {:<32} {:<10} {}",
            b.node_id,
            format!("{}:{}", b.host, b.port),
            b.version,
            parts.join(" ")
        );
    }
    out
}
