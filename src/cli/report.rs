//! `c8dr report --instance KEY --out FILE.html`: the DR report of a real failover, failback or
//! drill, from the management Camunda's REST API (process instance, element instances,
//! variables, user tasks, incidents) and the local audit journal (mutating calls).
use super::common::{Scope, load_valid_config};
use anyhow::Context;
use c8dr::procedure::journal::Journal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Process instance key of the dr-failover, dr-failback or dr-drill instance (as Operate
    /// shows it); the processes it called come along.
    #[arg(long, value_name = "KEY")]
    pub instance: i64,
    /// Where to write the HTML report (one self-contained file).
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
    /// Only journal lines of this configured target (default: every line of the instances).
    #[arg(long, value_name = "T")]
    pub target: Option<String>,
    /// Also write the report's data as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub json: Option<PathBuf>,
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let config = load_valid_config(global, Scope::Management)?;
    if let Some(t) = &args.target
        && !config.targets.contains_key(t)
    {
        let known: Vec<&String> = config.targets.keys().collect();
        anyhow::bail!(
            "--target {t:?} is not configured; configured targets: {known:?} (see [targets.NAME] in the config)"
        );
    }
    let journal = Journal::new(config.journal.path.clone());
    let mut entries = journal
        .entries()
        .with_context(|| format!("cannot read the audit journal {} (journal.path)", config.journal.path.display()))?;
    if let Some(t) = &args.target {
        entries.retain(|e| &e.target == t);
    }
    let observed = c8dr::report::camunda::observe(&config.management, &[args.instance], &entries).await?;
    let mut report = c8dr::report::build(&observed);
    if observed.journal.is_empty() {
        report.notes.push(format!(
            "The audit journal {} has no line for these instances: mutating calls are not listed (run the report where the worker's journal is).",
            config.journal.path.display()
        ));
    }
    if let Some(t) = &args.target
        && !report.target.is_empty()
        && &report.target != t
    {
        report.notes.push(format!("The instance ran against target {:?}, not {t:?}.", report.target));
    }
    let html = c8dr::report::html::render(&report);
    std::fs::write(&args.out, html).with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "wrote {}: {} ({}), {} phases, {} approvals, {} mutating calls",
        args.out.display(),
        if report.procedure.is_empty() { "procedure" } else { &report.procedure },
        report.outcome,
        report.phases.len(),
        report.approvals.len(),
        report.mutations.len()
    );
    Ok(ExitCode::SUCCESS)
}
