//! The platform steps: preflight-recreated, helm, verify-profiles. The platform itself (Helm,
//! Kubernetes) is `crate::platform`, injected through [`StepEnv::platform`].
use super::{StepEnv, StepOutcome, StepResult, errors, regions, validate, vars};
use crate::platform::helm::{HelmInputError, check_pinned, command_line, helm_args, tail};
use crate::platform::kubectl::profiles_command;
use crate::platform::{HelmAction, PlatformError};
use serde_json::{Map, Value, json};

fn manual(env: &StepEnv<'_>, step_id: &str, command: String) -> StepOutcome {
    StepOutcome::Refused {
        code: errors::MANUAL_STEP_REQUIRED,
        message: format!("run this command, then confirm: {command}"),
        field: None,
        variables: vars([
            ("manualCommand", json!(command)),
            ("manualStepId", json!(step_id)),
            ("target", json!(env.input.target_name)),
        ]),
    }
}

/// `c8dr.preflight-recreated`: the failover is done and the recreated region is clean.
pub async fn preflight_recreated(env: &StepEnv<'_>) -> StepResult {
    let (surviving, recreated) = regions::failback(env)?;
    let cluster = env.api.cluster(surviving).await?;
    let ids = regions::brokers_of(recreated, env.target.cluster_size);
    let stale: Vec<u32> = cluster.brokers.iter().map(|b| b.id).filter(|id| ids.contains(id)).collect();
    if !stale.is_empty() || cluster.pending_change.is_some() {
        return Err(StepOutcome::refused(
            errors::PRECONDITION_FAILED,
            format!(
                "failover is not done: brokers {stale:?} of region {recreated} are still cluster members{}",
                if cluster.pending_change.is_some() { " and a cluster change is pending" } else { "" }
            ),
        ));
    }
    let mut brokers: Vec<u32> = cluster.brokers.iter().map(|b| b.id).collect();
    brokers.sort_unstable();
    let (release, pvcs) = match env.platform.status(env.target, recreated).await {
        Ok(s) => (json!(s.release), json!(s.pvcs)),
        Err(PlatformError::Manual { .. }) => (Value::Null, Value::Null), // shown to the approver
        Err(PlatformError::Failed(m)) => return Err(StepOutcome::retry(m)),
        Err(PlatformError::Refused(m)) => return Err(StepOutcome::refused(errors::PRECONDITION_FAILED, m)),
    };
    let indices: Vec<String> = match env.api.indices(recreated).await {
        Ok(list) => list.into_iter().map(|i| i.name).filter(|n| super::snapshot::is_camunda_index(n)).collect(),
        // an unreachable Elasticsearch in a region without a release holds no indices
        Err(e) if e.is_transient() && release == json!(false) => Vec::new(),
        Err(e) if e.is_transient() && release.is_null() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let preflight =
        json!({"camundaIndices": indices, "releasePresent": release, "pvcCount": pvcs, "clusterBrokers": brokers});
    if release == json!(true) || pvcs.as_u64().is_some_and(|n| n > 0) || !indices.is_empty() {
        return Err(StepOutcome::refused(
            errors::RECREATED_REGION_NOT_CLEAN,
            format!("region {recreated} is not clean (release {release}, {pvcs} PVCs, Camunda indices {indices:?}): uninstall and delete the PVCs first"),
        )
        .with_var("preflight", preflight));
    }
    Ok(StepOutcome::done(vars([("preflight", preflight)])))
}

/// `c8dr.helm` (headers `action`, `region`).
pub async fn helm_step(env: &StepEnv<'_>) -> StepResult {
    let action_name = env.header("action").unwrap_or("");
    let Some(action) = HelmAction::parse(action_name) else {
        return Err(StepOutcome::invalid(
            "action",
            format!(
                "task header `action` must be deploy-recreated, disable-webapps or enable-webapps, got {action_name:?}: fix the BPMN"
            ),
        ));
    };
    let targets = regions::from_header(env, &["surviving", "recreated", "both"])?;
    let step_id = format!("helm-{}", action.name());
    let invalid = |e: HelmInputError| StepOutcome::invalid(&e.field, e.message);
    if env.platform.requires_pinned_chart() {
        check_pinned(&env.input.target_name, env.target).map_err(invalid)?;
    }
    // the exact command (and the generated env values file), or the action's name on a
    // simulated platform (no chart)
    let request = |region: u8| -> Result<String, StepOutcome> {
        if !env.platform.requires_pinned_chart() {
            return Ok(format!("helm {} region {region}", action.name()));
        }
        Ok(command_line(&env.target.helm.binary, &helm_args(env.target, region, action).map_err(invalid)?))
    };
    let mut output = String::new();
    let mut acted = false;
    let mut manual_commands = Vec::new();
    for region in targets {
        let status = match env.platform.status(env.target, region).await {
            Ok(s) => Some(s),
            // a person observes: the helm command is theirs to run
            Err(PlatformError::Manual { .. }) => None,
            Err(PlatformError::Failed(m)) => return Err(StepOutcome::retry(m)),
            Err(PlatformError::Refused(m)) => return Err(StepOutcome::refused(errors::PRECONDITION_FAILED, m)),
        };
        // unknown profiles or schema flag never hold: the (idempotent) upgrade runs and
        // verify-profiles must then read them
        if status.as_ref().is_some_and(|s| action.holds(s)) {
            continue;
        }
        let request = request(region)?;
        match env.platform.helm(env.target, region, action).await {
            Ok(out) => {
                env.journal_call(region, &step_id, &request, "ok", &tail(&out, 500))?;
                output.push_str(&out);
                acted = true;
            }
            Err(PlatformError::Manual { command }) => manual_commands.push(command),
            Err(PlatformError::Failed(m)) => {
                env.journal_call(region, &step_id, &request, "error", &m)?;
                return Err(StepOutcome::retry(m));
            }
            Err(PlatformError::Refused(m)) => return Err(StepOutcome::refused(errors::PRECONDITION_FAILED, m)),
        }
    }
    if !manual_commands.is_empty() {
        return Err(manual(env, &step_id, manual_commands.join("\n")));
    }
    let variables: Map<String, Value> = vars([("helmOutput", json!(tail(&output, 2000)))]);
    Ok(StepOutcome::Done { variables, already_done: !acted })
}

/// `c8dr.verify-profiles` (headers `region`, `expect: webapps-off|webapps-on`).
pub async fn verify_profiles(env: &StepEnv<'_>) -> StepResult {
    let expect = env.header("expect").unwrap_or("");
    let want_on = match expect {
        "webapps-off" => false,
        "webapps-on" => true,
        other => {
            return Err(StepOutcome::invalid(
                "expect",
                format!("task header `expect` must be webapps-off or webapps-on, got {other:?}: fix the BPMN"),
            ));
        }
    };
    let targets = regions::from_header(env, &["surviving", "recreated", "both"])?;
    // guards docs/target-apis.md §6.18: check the active profiles, not only the helm exit code
    let mut profiles = Map::new();
    let mut ok = true;
    for region in targets {
        match env.platform.status(env.target, region).await {
            Ok(s) => {
                let Some(on) = s.webapps_on() else {
                    // unknown is never "off" (nor "on"): fail the job; its retries end in an
                    // incident a person sees
                    return Err(StepOutcome::retry(format!(
                        "the active profiles of region {region} cannot be read (ConfigMap {}-zeebe-configuration-unified missing, renamed, not permitted or without spring.profiles.active): c8dr does not assume Operate/Tasklist are {}; check with: {}",
                        env.target.release,
                        if want_on { "on" } else { "off" },
                        profiles_command(env.target, region)
                    )));
                };
                ok &= s.release && on == want_on;
                profiles.insert(region.to_string(), json!(s.profiles));
            }
            Err(PlatformError::Manual { command }) => {
                return Err(manual(env, &format!("verify-profiles-{expect}"), command));
            }
            Err(PlatformError::Failed(m)) => return Err(StepOutcome::retry(m)),
            Err(PlatformError::Refused(m)) => return Err(StepOutcome::refused(errors::PRECONDITION_FAILED, m)),
        }
    }
    // during a failback with Operate/Tasklist off, the helm upgrade restarted the surviving
    // brokers: the recreated region's exporter must still be disabled (re-disabled if not)
    let mut redisabled = Vec::new();
    if !want_on && let Some(recreated) = validate::optional_region(&env.input.variables, "recreatedRegion")? {
        let surviving = regions::surviving(env)?;
        redisabled = super::exporters::redisable_flipped(env, surviving, recreated).await?;
        ok &= redisabled.is_empty();
    }
    Ok(StepOutcome::done(vars([
        ("verified", json!(ok)),
        ("profiles", Value::Object(profiles)),
        ("exportersReDisabled", json!(redisabled)),
    ])))
}
