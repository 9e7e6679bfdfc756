//! The platform steps: preflight-recreated, helm, verify-profiles. The platform itself (Helm,
//! Kubernetes) is `crate::platform`, injected through [`StepEnv::platform`].
use super::inputs::{Failback, Header, ProfilesExpect, Region, Surviving, TargetRegions, named_regions};
use super::{Done, StepEnv, StepError, StepResult, errors, regions, vars};
use crate::platform::helm::{HelmInputError, check_pinned, command_line, helm_args, tail};
use crate::platform::kubectl::profiles_command;
use crate::platform::{HelmAction, PlatformError, PlatformStatus};
use serde_json::{Map, Value, json};

fn manual(env: &StepEnv<'_>, step_id: &str, command: String) -> StepError {
    StepError::Refused {
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
pub async fn preflight_recreated(env: &StepEnv<'_>, input: Failback) -> StepResult {
    let (surviving, recreated) = (input.surviving.index(), input.recreated.index());
    let cluster = env.api.cluster(surviving).await?;
    let ids = regions::brokers_of(recreated, env.target.cluster_size);
    let stale: Vec<u32> = cluster.brokers.iter().map(|b| b.id).filter(|id| ids.contains(id)).collect();
    if !stale.is_empty() || cluster.pending_change.is_some() {
        return Err(StepError::refused(
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
        Err(PlatformError::Failed(m)) => return Err(StepError::retry(m)),
        Err(PlatformError::Refused(m)) => return Err(StepError::refused(errors::PRECONDITION_FAILED, m)),
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
        return Err(StepError::refused(
            errors::RECREATED_REGION_NOT_CLEAN,
            format!("region {recreated} is not clean (release {release}, {pvcs} PVCs, Camunda indices {indices:?}): uninstall and delete the PVCs first"),
        )
        .with_var("preflight", preflight));
    }
    Ok(Done::done(vars([("preflight", preflight)])))
}

/// `c8dr.helm` (headers `action`, `region`).
pub async fn helm_step(
    env: &StepEnv<'_>,
    (Header(action), Header(region), input): (Header<HelmAction>, Header<TargetRegions>, Surviving),
) -> StepResult {
    let targets = named_regions(region.as_str(), input.surviving);
    let step_id = format!("helm-{}", action.name());
    let invalid = |e: HelmInputError| StepError::invalid(&e.field, e.message);
    if env.platform.requires_pinned_chart() {
        check_pinned(&env.input.target_name, env.target).map_err(invalid)?;
    }
    // the exact command (and the generated env values file), or the action's name on a
    // simulated platform (no chart)
    let request = |region: u8| -> Result<String, StepError> {
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
            Err(PlatformError::Failed(m)) => return Err(StepError::retry(m)),
            Err(PlatformError::Refused(m)) => return Err(StepError::refused(errors::PRECONDITION_FAILED, m)),
        };
        // unknown profiles or schema flag never hold: the (idempotent) upgrade runs and
        // verify-profiles must then read them
        if status.as_ref().is_some_and(|s| action.holds(s)) {
            continue;
        }
        let request = request(region)?;
        // recorded on the process instance for the audit and for the next replica; the decision
        // itself comes from observing the release (an upgrade of a release already in the
        // wanted state is skipped above, and a repeated upgrade is idempotent)
        let intent = env.record_intent(&format!("{step_id}-r{region}"), region, &step_id, &request, None).await?;
        match env.platform.helm(env.target, region, action).await {
            Ok(out) => {
                env.record_outcome(intent, "ok", &tail(&out, 500)).await?;
                output.push_str(&out);
                acted = true;
            }
            Err(PlatformError::Manual { command }) => {
                env.record_no_call(intent, super::record::MANUAL, "a person runs the command").await?;
                manual_commands.push(command)
            }
            Err(PlatformError::Failed(m)) => {
                env.record_outcome(intent, "error", &m).await?;
                return Err(StepError::retry(m));
            }
            Err(PlatformError::Refused(m)) => {
                env.record_no_call(intent, super::record::NOT_MADE, &m).await?;
                return Err(StepError::refused(errors::PRECONDITION_FAILED, m));
            }
        }
    }
    if !manual_commands.is_empty() {
        return Err(manual(env, &step_id, manual_commands.join("\n")));
    }
    let variables: Map<String, Value> = vars([("helmOutput", json!(tail(&output, 2000)))]);
    Ok(Done::complete(variables, !acted))
}

/// One stuck broker pod as the process shows it (`stuckBrokers`).
pub fn stuck_brokers(
    target: &crate::config::TargetConfig,
    region: u8,
    status: &PlatformStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let after = chrono::Duration::seconds(i64::try_from(target.kubernetes.stuck_after_secs).unwrap_or(i64::MAX));
    status
        .stuck_pods(now, after)
        .into_iter()
        .map(|p| {
            let since = p.not_ready_since.unwrap_or(now);
            json!({
                "region": region,
                "pod": p.name,
                "notReadySince": since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "minutes": (now - since).num_minutes(),
            })
        })
        .collect()
}

/// Why the profiles of a region with a complete rollout are unknown: the pods whose profiles
/// cannot be read, or the pods that disagree.
fn unknown_profiles_reason(s: &PlatformStatus) -> String {
    let unreadable: Vec<&str> = s.pods.iter().filter(|p| p.profiles.is_none()).map(|p| p.name.as_str()).collect();
    if !unreadable.is_empty() {
        return format!("the active profiles of pod(s) {} cannot be read", unreadable.join(", "));
    }
    let disagree = s.pods.windows(2).any(|w| w[0].profiles != w[1].profiles);
    if !disagree {
        return "the active profiles cannot be read".into();
    }
    let shown: Vec<String> =
        s.pods.iter().map(|p| format!("{} {:?}", p.name, p.profiles.clone().unwrap_or_default())).collect();
    format!("the pods run different profiles ({})", shown.join("; "))
}

/// `kubectl` with the region's namespace and context.
pub(super) fn kubectl_line(target: &crate::config::TargetConfig, region: u8, args: &[&str]) -> String {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if let Some(rc) = target.regions.get(usize::from(region)) {
        if !rc.namespace.is_empty() {
            a.extend(["-n".into(), rc.namespace.clone()]);
        }
        if let Some(ctx) = &rc.kube_context {
            a.extend(["--context".into(), ctx.clone()]);
        }
    }
    command_line("kubectl", &a)
}

/// The command that shows a pod's active profiles (the seed's check: its startup log line).
fn profiles_log_command(target: &crate::config::TargetConfig, region: u8, s: &PlatformStatus) -> String {
    let default_pod = format!("{}-zeebe-0", target.release);
    let pod = s.pods.iter().find(|p| p.profiles.is_none()).map(|p| p.name.as_str()).unwrap_or(&default_pod);
    format!("{} | grep 'profiles are active'", kubectl_line(target, region, &["logs", pod]))
}

/// `c8dr.verify-profiles` (headers `region`, `expect: webapps-off|webapps-on`).
///
/// Verified only when, in every region, the release exists, the orchestration StatefulSet's
/// rollout is complete and every pod runs the expected profiles. While the rollout runs the check
/// reports `verified: false` with `rollout` and `podsNotReady` (the loop observes again); pods
/// Running but not Ready for `kubernetes.stuck_after_secs` are listed in `stuckBrokers`.
pub async fn verify_profiles(
    env: &StepEnv<'_>,
    (Header(expect), Header(region), input): (Header<ProfilesExpect>, Header<TargetRegions>, Surviving),
) -> StepResult {
    let want_on = expect == ProfilesExpect::WebappsOn;
    let expect = expect.as_str();
    let targets = named_regions(region.as_str(), input.surviving);
    let now = chrono::Utc::now();
    // guards docs/target-apis.md §6.18: check the active profiles, not only the helm exit code
    let mut profiles = Map::new();
    let mut rollouts = Map::new();
    let mut not_ready = Map::new();
    let mut stuck = Vec::new();
    let mut ok = true;
    for region in targets {
        let s = match env.platform.status(env.target, region).await {
            Ok(s) => s,
            Err(PlatformError::Manual { command }) => {
                return Err(manual(env, &format!("verify-profiles-{expect}"), command));
            }
            Err(PlatformError::Failed(m)) => return Err(StepError::retry(m)),
            Err(PlatformError::Refused(m)) => return Err(StepError::refused(errors::PRECONDITION_FAILED, m)),
        };
        let sts = format!("{}-zeebe", env.target.release);
        stuck.extend(stuck_brokers(env.target, region, &s, now));
        let pods: Vec<&str> = s.pods.iter().filter(|p| !p.ready).map(|p| p.name.as_str()).collect();
        not_ready.insert(region.to_string(), json!(pods));
        profiles.insert(region.to_string(), json!(s.profiles));
        if !s.release {
            ok = false;
            rollouts.insert(region.to_string(), json!("no release"));
            continue;
        }
        let Some(rollout) = &s.rollout else {
            // unknown is never "done": fail the job; its retries end in an incident a person sees
            return Err(StepError::retry(format!(
                "the rollout of StatefulSet {sts} in region {region} cannot be read: c8dr does not assume the pods run the new revision; check with: {}",
                kubectl_line(env.target, region, &["rollout", "status", &format!("statefulset/{sts}")])
            )));
        };
        rollouts.insert(region.to_string(), json!(rollout.describe()));
        if !rollout.complete() {
            // pods restart one by one and disagree meanwhile: not yet, observe again
            ok = false;
            continue;
        }
        let Some(on) = s.webapps_on() else {
            // a complete rollout whose profiles are unknown is never "off" (nor "on"): fail the
            // job; its retries end in an incident a person sees
            return Err(StepError::retry(format!(
                "region {region}: the rollout of {sts} is complete but {}: c8dr does not assume Operate/Tasklist are {}; check the pod's log line `The following N profiles are active` with `{}` (or the configuration with `{}`), and fix the pod's log access or restart the pod",
                unknown_profiles_reason(&s),
                if want_on { "on" } else { "off" },
                profiles_log_command(env.target, region, &s),
                profiles_command(env.target, region)
            )));
        };
        ok &= on == want_on;
    }
    // during a failback with Operate/Tasklist off, the helm upgrade restarted the surviving
    // brokers: the recreated region's exporter must still be disabled (re-disabled if not)
    let mut redisabled = Vec::new();
    if !want_on && let Some(recreated) = input.recreated.map(Region::index) {
        let surviving = input.surviving.index();
        redisabled = super::exporters::redisable_flipped(env, surviving, recreated).await?;
        ok &= redisabled.is_empty();
    }
    Ok(Done::done(vars([
        ("verified", json!(ok)),
        ("profiles", Value::Object(profiles)),
        ("rollout", Value::Object(rollouts)),
        ("podsNotReady", Value::Object(not_ready)),
        ("stuckBrokers", json!(stuck)),
        ("exportersReDisabled", json!(redisabled)),
    ])))
}
