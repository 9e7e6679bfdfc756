//! Elasticsearch snapshot steps: register-snapshot-repo, create-snapshot, await-snapshot,
//! restore-snapshot, await-restore.
use super::api::{
    ApiError, ApiResult, HealthStatus, IndexStatus, Mutation, RepositoryView, SnapshotInfo, SnapshotState,
};
use super::inputs::{Failback, Header, OptionalSnapshotVar, SnapshotRegion, SnapshotVar, Surviving};
use super::{Done, StepEnv, StepError, StepResult, errors, vars};
use crate::config::SnapshotConfig;
use serde_json::{Value, json};

/// Camunda's indices (docs/target-apis.md §6.12): the target model's list, one source of truth.
pub use crate::region_api::models::elasticsearch::is_camunda_index;

fn repo_missing(e: &ApiError) -> bool {
    // only Elasticsearch's own word: a 404 whose body cannot be read (cut off, or a proxy's page)
    // says nothing about the repository; it is an error the step retries, never a refusal
    e.is_es("repository_missing_exception")
}

/// The snapshot `name` in `region` (read by name), `Ok(None)` when the repository has no such
/// snapshot and `Err(None)` when the repository itself is missing.
async fn find_snapshot(env: &StepEnv<'_>, region: u8, name: &str) -> Result<Option<SnapshotInfo>, Option<ApiError>> {
    match env.api.snapshot(region, env.target.snapshot.repository.clone(), name.to_string()).await {
        Ok(found) => Ok(found),
        Err(e) if e.is_es("snapshot_missing_exception") => Ok(None),
        Err(e) if repo_missing(&e) => Err(None),
        Err(e) => Err(Some(e)),
    }
}

/// A setting value as Elasticsearch reports it (strings): `true` -> `"true"`.
fn setting_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How a registration differs from the configured type and settings (`readonly` aside): empty
/// when it is the configured repository.
pub fn repository_mismatch(cfg: &SnapshotConfig, r: &RepositoryView) -> Vec<String> {
    let mut diff = Vec::new();
    if !r.kind.eq_ignore_ascii_case(&cfg.kind) {
        diff.push(format!("type is {:?}, configured {:?}", r.kind, cfg.kind));
    }
    for (k, want) in &cfg.settings {
        let want = setting_text(want);
        match r.settings.get(k).map(setting_text) {
            Some(have) if have == want => {}
            // setting values are not shown: they may name buckets or clients an operator
            // considers sensitive; the key is enough to find the difference
            Some(_) => diff.push(format!("setting {k} differs from the configured value")),
            None => diff.push(format!("setting {k} is not set")),
        }
    }
    diff
}

/// `c8dr.register-snapshot-repo` (header `region: surviving|recreated`).
pub async fn register_snapshot_repo(
    env: &StepEnv<'_>,
    (Header(which), at, snapshot): (Header<SnapshotRegion>, Surviving, OptionalSnapshotVar),
) -> StepResult {
    let repo = env.target.snapshot.repository.clone();
    match which {
        SnapshotRegion::Surviving => {
            let region = at.surviving.index();
            // an existing registration is adopted only when it is the configured repository and
            // writable: the 8.8 reference values register `camunda_backup` for Camunda's own
            // backups, possibly elsewhere (another base_path), and the snapshot would land where
            // the recreated region never looks. A read-only one (left by an older failback)
            // cannot take the snapshot either. Both are re-registered (PUT replaces).
            let reason = match env.api.repository(region, repo.clone()).await? {
                Some(r) => {
                    let mut diff = repository_mismatch(&env.target.snapshot, &r);
                    if r.readonly() {
                        diff.push("registered read-only".into());
                    }
                    if diff.is_empty() {
                        return Ok(Done::already_done(vars([("repositoryRegistered", json!(true))])));
                    }
                    json!(diff)
                }
                None => Value::Null,
            };
            env.mutate(region, Mutation::RegisterRepository { repository: repo, readonly: false }).await??;
            Ok(Done::done(vars([("repositoryRegistered", json!(true)), ("repositoryReRegistered", reason)])))
        }
        SnapshotRegion::Recreated => register_in_recreated(env, repo, at, snapshot).await,
    }
}

async fn visible(env: &StepEnv<'_>, region: u8, name: &str) -> ApiResult<bool> {
    match find_snapshot(env, region, name).await {
        Ok(found) => Ok(found.is_some()),
        Err(None) => Ok(false),
        Err(Some(e)) if e.is_transient() => Err(e),
        Err(Some(_)) => Ok(false),
    }
}

async fn register_in_recreated(
    env: &StepEnv<'_>,
    repo: String,
    at: Surviving,
    snapshot: OptionalSnapshotVar,
) -> StepResult {
    let (surviving, recreated) = (at.surviving.index(), at.recreated()?.index());
    let name = snapshot.required()?.0;
    // guards docs/target-apis.md §6.14: register in the recreated region only once the snapshot exists
    match find_snapshot(env, surviving, &name).await {
        Ok(Some(s)) if s.state == SnapshotState::Success => {}
        Ok(found) => {
            return Err(StepError::refused(
                errors::SNAPSHOT_MISSING,
                format!(
                    "snapshot {name} is not in the bucket yet (surviving region sees {}): create and await it first",
                    found.map_or("no such snapshot".to_string(), |s| format!("state {}", s.state))
                ),
            ));
        }
        Err(None) => {
            return Err(StepError::refused(
                errors::SNAPSHOT_MISSING,
                format!("repository {repo} is not registered in the surviving region: snapshot {name} cannot exist"),
            ));
        }
        Err(Some(e)) => return Err(e.into()),
    }
    let registered = env.api.repository(recreated, repo.clone()).await?;
    let exists = registered.is_some();
    let matches = registered.as_ref().is_some_and(|r| repository_mismatch(&env.target.snapshot, r).is_empty());
    if matches && visible(env, recreated, &name).await? {
        return Ok(Done::already_done(vars([("repositoryRegistered", json!(true))])));
    }
    if exists {
        // registered elsewhere, or the snapshot is not visible: delete and re-register once (§6.14)
        env.mutate(recreated, Mutation::DeleteRepository { repository: repo.clone() }).await??;
    }
    // guards docs/target-apis.md §6.14: the recreated region only reads: readonly
    env.mutate(recreated, Mutation::RegisterRepository { repository: repo.clone(), readonly: true }).await??;
    if visible(env, recreated, &name).await? {
        return Ok(Done::done(vars([("repositoryRegistered", json!(true))])));
    }
    if !exists {
        env.mutate(recreated, Mutation::DeleteRepository { repository: repo.clone() }).await??;
        env.mutate(recreated, Mutation::RegisterRepository { repository: repo.clone(), readonly: true }).await??;
        if visible(env, recreated, &name).await? {
            return Ok(Done::done(vars([("repositoryRegistered", json!(true))])));
        }
    }
    Err(StepError::retry(format!(
        "repository {repo} is registered in region {recreated} but snapshot {name} is not visible there yet"
    )))
}

/// `c8dr.create-snapshot`: snapshot of the surviving Elasticsearch, name unique per instance.
pub async fn create_snapshot(env: &StepEnv<'_>, (at, snapshot): (Surviving, SnapshotVar)) -> StepResult {
    let surviving = at.surviving.index();
    let name = snapshot.snapshot_name.0;
    let repo = env.target.snapshot.repository.clone();
    let done = || vars([("snapshotName", json!(name.clone()))]);
    let missing_repo = || {
        StepError::refused(
            errors::REPOSITORY_MISSING,
            format!(
                "snapshot repository {} is not registered in region {surviving}: register it first",
                env.target.snapshot.repository
            ),
        )
    };
    // guards docs/target-apis.md §6.2: observe first; a taken name answers 400
    match find_snapshot(env, surviving, &name).await {
        Ok(Some(_)) => return Ok(Done::already_done(done())),
        Ok(None) => {}
        Err(None) => return Err(missing_repo()),
        Err(Some(e)) => return Err(e.into()),
    }
    match env.mutate(surviving, Mutation::CreateSnapshot { repository: repo, snapshot: name.clone() }).await? {
        Ok(_) => Ok(Done::done(done())),
        Err(e)
            if e.is_es("invalid_snapshot_name_exception")
                || (e.status == Some(400) && e.message.contains("already")) =>
        {
            // taken after our GET: a previous attempt of ours created it; re-observe
            match find_snapshot(env, surviving, &name).await {
                Ok(Some(_)) => Ok(Done::already_done(done())),
                _ => Err(StepError::retry(format!(
                    "snapshot name {name} reported taken but not listed yet: {}",
                    e.message
                ))),
            }
        }
        Err(e) if repo_missing(&e) => Err(missing_repo()),
        Err(e) => Err(e.into()),
    }
}

/// A snapshot still being taken: IN_PROGRESS, or the shard-level `STARTED` / `INIT` some
/// versions report (not values of the snapshot API's state, so they arrive as `Unknown`). Any
/// other unknown state is not running and not SUCCESS: it ends in SNAPSHOT_FAILED for a person.
fn running(state: &SnapshotState) -> bool {
    match state {
        SnapshotState::InProgress => true,
        SnapshotState::Unknown(s) => matches!(s.as_str(), "STARTED" | "INIT"),
        _ => false,
    }
}

/// `c8dr.await-snapshot`: SUCCESS with no failed shards, else SNAPSHOT_FAILED.
pub async fn await_snapshot(env: &StepEnv<'_>, (at, snapshot): (Surviving, SnapshotVar)) -> StepResult {
    let surviving = at.surviving.index();
    let name = snapshot.snapshot_name.0;
    let s = match find_snapshot(env, surviving, &name).await {
        Ok(Some(s)) => s,
        Ok(None) | Err(None) => {
            return Err(StepError::refused(
                errors::SNAPSHOT_MISSING,
                format!("snapshot {name} does not exist in region {surviving}"),
            ));
        }
        Err(Some(e)) => return Err(e.into()),
    };
    let shards = json!({"total": s.shards.total, "failed": s.shards.failed, "successful": s.shards.successful});
    // guards docs/target-apis.md §6.15: state SUCCESS and shards.failed == 0, not a substring
    match &s.state {
        state if running(state) => Ok(Done::done(vars([
            ("verified", json!(false)),
            ("snapshotState", json!(s.state)),
            ("snapshotShards", shards),
        ]))),
        SnapshotState::Success if s.shards.failed == 0 => Ok(Done::done(vars([
            ("verified", json!(true)),
            ("snapshotState", json!(s.state)),
            ("snapshotShards", shards),
        ]))),
        other => Err(StepError::refused(
            errors::SNAPSHOT_FAILED,
            format!("snapshot {name} ended {other} with {} of {} shards failed", s.shards.failed, s.shards.total),
        )
        .with_var("snapshotState", json!(other))
        .with_var("snapshotShards", shards)),
    }
}

/// Why the recreated region holds indices the restore would collide with, and the fix: the
/// cause differs by index family (Optimize's own indices come from Optimize running, not from
/// the orchestration cluster's schema creation).
pub fn collision_hint(recreated: u8, colliding: &[String]) -> String {
    let list = format!(
        "{:?}{}",
        colliding.iter().take(10).collect::<Vec<_>>(),
        if colliding.len() > 10 { " ..." } else { "" }
    );
    let optimize = colliding.iter().any(|i| i.starts_with("optimize-"));
    let schema = colliding.iter().any(|i| !i.starts_with("optimize-"));
    let mut causes = Vec::new();
    if schema {
        causes.push("the orchestration cluster created its schema: deploy with CAMUNDA_DATABASE_SCHEMAMANAGER_CREATESCHEMA=false");
    }
    if optimize {
        causes.push("Optimize ran in the recreated region and created its optimize-* indices: deploy with optimize.enabled=false until the restore is done (step 8 turns it back on)");
    }
    format!(
        "region {recreated} has open Camunda indices {list}: {}; then delete them before restoring",
        causes.join("; and ")
    )
}

/// `c8dr.restore-snapshot`: restore into the recreated Elasticsearch (not waiting).
pub async fn restore_snapshot(env: &StepEnv<'_>, (at, snapshot): (Failback, SnapshotVar)) -> StepResult {
    let recreated = at.recreated.index();
    let name = snapshot.snapshot_name.0;
    let repo = env.target.snapshot.repository.clone();
    let started = || vars([("restoreStarted", json!(true))]);
    // guards docs/target-apis.md §6.13: observe recoveries first; never re-issue a restore blindly
    let ours = |list: &[super::api::RecoveryInfo]| list.iter().any(|r| r.is_from_snapshot(&repo, &name));
    if ours(&env.api.recoveries(recreated).await?) {
        return Ok(Done::already_done(started()));
    }
    if env.api.repository(recreated, repo.clone()).await?.is_none() {
        return Err(StepError::refused(
            errors::REPOSITORY_MISSING,
            format!("repository {repo} is not registered in region {recreated}: register it (region recreated) first"),
        ));
    }
    match find_snapshot(env, recreated, &name).await {
        Ok(Some(_)) => {}
        Ok(None) | Err(None) => {
            return Err(StepError::refused(
                errors::SNAPSHOT_MISSING,
                format!("snapshot {name} is not visible in region {recreated}"),
            ));
        }
        Err(Some(e)) => return Err(e.into()),
    }
    // guards docs/target-apis.md §6.12: open Camunda indices would collide with the restore
    let colliding: Vec<String> = env
        .api
        .indices(recreated)
        .await?
        .into_iter()
        .filter(|i| i.status == IndexStatus::Open && is_camunda_index(&i.name))
        .map(|i| i.name)
        .collect();
    if !colliding.is_empty() {
        return Err(StepError::refused(errors::RESTORE_TARGET_NOT_EMPTY, collision_hint(recreated, &colliding)));
    }
    match env.mutate(recreated, Mutation::RestoreSnapshot { repository: repo.clone(), snapshot: name.clone() }).await? {
        Ok(_) => Ok(Done::done(started())),
        Err(e) if e.is_es("snapshot_restore_exception") || e.message.contains("open index with same name") => {
            // a restore of ours may already be running (§6.13): re-observe, do not re-issue
            if ours(&env.api.recoveries(recreated).await?) {
                Ok(Done::already_done(started()))
            } else {
                Err(StepError::refused(errors::RESTORE_TARGET_NOT_EMPTY, format!("restore refused: {}", e.message)))
            }
        }
        Err(e) if repo_missing(&e) => Err(StepError::refused(errors::REPOSITORY_MISSING, e.message)),
        Err(e) if e.is_es("snapshot_missing_exception") => Err(StepError::refused(errors::SNAPSHOT_MISSING, e.message)),
        Err(e) => Err(e.into()),
    }
}

/// `c8dr.await-restore`: no active snapshot recoveries and green.
pub async fn await_restore(env: &StepEnv<'_>, (at, snapshot): (Failback, SnapshotVar)) -> StepResult {
    let recreated = at.recreated.index();
    let name = snapshot.snapshot_name.0;
    let repo = &env.target.snapshot.repository;
    let recoveries = env.api.recoveries(recreated).await?;
    let ours = recoveries.iter().filter(|r| r.is_from_snapshot(repo, &name)).count();
    let active = recoveries.iter().filter(|r| r.kind.eq_ignore_ascii_case("snapshot") && r.is_active()).count();
    let health = env.api.health(recreated).await?;
    let progress = json!({"activeRecoveries": active, "health": health.status, "recoveries": ours});
    if active == 0 && ours > 0 && health.status == HealthStatus::Red {
        return Err(StepError::refused(
            errors::RESTORE_FAILED,
            format!("restore of {name} finished but region {recreated} is red: shards failed to restore"),
        )
        .with_var("restoreProgress", progress));
    }
    let verified = active == 0 && ours > 0 && health.status == HealthStatus::Green;
    if verified {
        // the read-only registration served the restore; Camunda's own backups in the recreated
        // region use the same repository: leave it writable (re-registered once, observed first)
        if let Some(r) = env.api.repository(recreated, repo.clone()).await?
            && r.readonly()
        {
            env.mutate(recreated, Mutation::RegisterRepository { repository: repo.clone(), readonly: false }).await??;
        }
    }
    Ok(Done::done(vars([
        ("verified", json!(verified)),
        ("restoreProgress", progress),
        ("repositoryWritable", json!(verified)),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only Elasticsearch's `repository_missing_exception` means "no repository": a 404 whose
    /// body was cut off (seen under injected faults: create-snapshot refused REPOSITORY_MISSING
    /// right after the repository was registered) is an error the step retries.
    #[test]
    fn only_elasticsearch_says_a_repository_is_missing() {
        use super::super::api::ApiErrorKind;
        let cut = ApiError::new(ApiErrorKind::NotFound, Some(404), "HTTP 404: {\"error\":{\"type\":\"repo");
        assert!(!repo_missing(&cut));
        assert!(matches!(StepError::from(cut), StepError::Retry { .. }));
        let proxy = ApiError::new(ApiErrorKind::NotFound, Some(404), "<html>404 Not Found</html>");
        assert!(!repo_missing(&proxy));
        let es = ApiError::new(ApiErrorKind::NotFound, Some(404), "[camunda_backup] missing")
            .with_type("repository_missing_exception");
        assert!(repo_missing(&es));
        let snap = ApiError::new(ApiErrorKind::NotFound, Some(404), "[r:s] is missing")
            .with_type("snapshot_missing_exception");
        assert!(!repo_missing(&snap));
    }

    #[test]
    fn the_collision_hint_names_the_cause() {
        let h = collision_hint(1, &["optimize-process-instance_v1".into()]);
        assert!(h.contains("optimize.enabled=false") && !h.contains("CREATESCHEMA"), "{h}");
        let h = collision_hint(1, &["operate-list-view-8.8.0_".into()]);
        assert!(h.contains("CREATESCHEMA=false") && !h.contains("optimize.enabled"), "{h}");
        let h = collision_hint(1, &["operate-list-view-8.8.0_".into(), "optimize-x".into()]);
        assert!(h.contains("CREATESCHEMA=false") && h.contains("optimize.enabled=false"), "{h}");
    }

    #[test]
    fn repository_settings_are_compared_as_elasticsearch_reports_them() {
        let mut cfg = SnapshotConfig::default();
        cfg.settings.insert("bucket".into(), json!("dr"));
        cfg.settings.insert("base_path".into(), json!("failback"));
        cfg.settings.insert("compress".into(), json!(true));
        let view = |kind: &str, base: &str| RepositoryView {
            kind: kind.into(),
            settings: [("bucket", "dr"), ("base_path", base), ("compress", "true"), ("readonly", "true")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
        };
        assert!(repository_mismatch(&cfg, &view("s3", "failback")).is_empty());
        assert_eq!(
            repository_mismatch(&cfg, &view("s3", "8-8-backups")),
            vec!["setting base_path differs from the configured value"]
        );
        assert_eq!(repository_mismatch(&cfg, &view("gcs", "failback")).len(), 1);
        assert!(view("s3", "x").readonly());
    }
}
