//! `c8dr.await-change`: one check of a cluster change by id, judged by the one rule in
//! [`crate::region_api::change::judge`] (docs/target-apis.md §6.5, the zeebe-chaos algorithm).
use super::api::ClusterView;
use super::inputs::{ChangeRef, ChangeVar, Surviving};
use super::{Done, StepEnv, StepError, StepResult, errors, vars};
use serde_json::json;

/// The verdict on change `id` given a cluster view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeState {
    Completed,
    Superseded,
    InProgress { completed: usize, pending: usize, next: Vec<String> },
    NotStarted,
    Failed(String),
}

/// The verdict on change `id`: the one rule of [`crate::region_api::change::judge`], applied to
/// the port's view, with the next pending operations for the operator.
pub fn judge(cluster: &ClusterView, id: i64) -> ChangeState {
    use crate::region_api::change::{ChangeVerdict, judge as rule};
    let last = cluster.last_change.as_ref().map(|l| (l.id, &l.status));
    let pending = cluster.pending_change.as_ref().map(|p| (p.id, p.completed.len(), p.pending.len()));
    match rule(last, pending, id) {
        ChangeVerdict::Completed => ChangeState::Completed,
        ChangeVerdict::Superseded => ChangeState::Superseded,
        ChangeVerdict::Failed | ChangeVerdict::Cancelled => {
            ChangeState::Failed(cluster.last_change.as_ref().map(|l| l.status.to_string()).unwrap_or_default())
        }
        ChangeVerdict::InProgress { completed, pending } => ChangeState::InProgress {
            completed,
            pending,
            next: cluster
                .pending_change
                .as_ref()
                .filter(|p| p.id == id)
                .map(|p| p.pending.iter().take(10).map(|o| o.describe()).collect())
                .unwrap_or_default(),
        },
        ChangeVerdict::NotStarted => ChangeState::NotStarted,
    }
}

pub async fn await_change(env: &StepEnv<'_>, (at, change): (Surviving, ChangeVar)) -> StepResult {
    let surviving = at.surviving.index();
    // a step that changed nothing completes with changeId = null: nothing to wait for
    let ChangeRef::Id(id) = change.change_id else {
        return Ok(Done::already_done(vars([
            ("verified", json!(true)),
            ("changeStatus", json!("COMPLETED")),
            ("changeProgress", json!({"completed": 0, "pending": 0})),
        ])));
    };
    let cluster = env.api.cluster(surviving).await?;
    let (verified, status, completed, pending, next) = match judge(&cluster, id) {
        ChangeState::Completed => (true, "COMPLETED", 0, 0, vec![]),
        ChangeState::Superseded => (true, "SUPERSEDED", 0, 0, vec![]),
        ChangeState::InProgress { completed, pending, next } => (false, "IN_PROGRESS", completed, pending, next),
        ChangeState::NotStarted => (false, "NOT_STARTED", 0, 0, vec![]),
        ChangeState::Failed(s) => {
            return Err(StepError::refused(errors::CHANGE_FAILED, format!("cluster change {id} ended {s}")));
        }
    };
    // guards docs/target-apis.md §6.4: surface what a stuck change still waits for
    Ok(Done::done(vars([
        ("verified", json!(verified)),
        ("changeStatus", json!(status)),
        ("changeProgress", json!({"completed": completed, "pending": pending, "nextOperations": next})),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procedure::api::{ChangeRef, ChangeStatus, Operation, PendingChange};

    #[test]
    fn judges_by_id() {
        let mut c = ClusterView::default();
        assert_eq!(judge(&c, 3), ChangeState::NotStarted);
        c.pending_change = Some(PendingChange {
            id: 3,
            status: ChangeStatus::InProgress,
            completed: vec![Operation::default()],
            pending: vec![Operation::default(), Operation::default()],
        });
        assert!(matches!(judge(&c, 3), ChangeState::InProgress { completed: 1, pending: 2, .. }));
        c.pending_change = None;
        c.last_change = Some(ChangeRef { id: 3, status: ChangeStatus::Completed });
        assert_eq!(judge(&c, 3), ChangeState::Completed);
        assert_eq!(judge(&c, 2), ChangeState::Superseded);
        assert_eq!(judge(&c, 4), ChangeState::NotStarted);
        c.last_change = Some(ChangeRef { id: 3, status: ChangeStatus::Failed });
        assert_eq!(judge(&c, 3), ChangeState::Failed("FAILED".into()));
        c.last_change = Some(ChangeRef { id: 3, status: ChangeStatus::Cancelled });
        assert_eq!(judge(&c, 3), ChangeState::Failed("CANCELLED".into()));
        // a status this version does not know keeps waiting (the loop times out to a person)
        // rather than passing or failing: the same rule as the clients' judge_change
        c.last_change = Some(ChangeRef { id: 3, status: ChangeStatus::from_wire("ROLLED_BACK") });
        assert!(matches!(judge(&c, 3), ChangeState::InProgress { completed: 0, pending: 0, .. }));
    }
}
