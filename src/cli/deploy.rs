//! `c8dr deploy [DIR]`: every .bpmn and .form under DIR (recursively) in ONE DeployResource.
use super::common::{Scope, connect, load_valid_config};
use anyhow::Context;
use c8dr::zeebe::model::DeployedKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding the processes and forms.
    #[arg(default_value = "bpmn")]
    pub dir: PathBuf,
}

/// Every `.bpmn` and `.form` file under `dir`, sorted, as (name relative to dir, content).
pub fn collect_resources(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("bpmn" | "form")) {
                let content = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
                let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.push((name, content));
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory; pass the directory holding the .bpmn and .form files", dir.display());
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    if out.is_empty() {
        anyhow::bail!("no .bpmn or .form files under {}", dir.display());
    }
    Ok(out)
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let config = load_valid_config(global, Scope::Management)?;
    let resources = collect_resources(&args.dir)?;
    let count = resources.len();
    let client = connect(&config)?;
    let response = client.deploy_resources(resources).await.context("deployment failed (nothing was deployed)")?;
    println!("deployment {} ({count} resources, from {}):", response.key, args.dir.display());
    for d in &response.resources {
        match d.kind {
            DeployedKind::Unknown => println!("  (deployment without metadata)"),
            kind => println!("  {:<8} {:<28} version {:<4} key {:<20} {}", kind.word(), d.id, d.version, d.key, d.name),
        }
    }
    Ok(ExitCode::SUCCESS)
}
