//! Judging a topology change by its id (docs/target-apis.md §2.1 "How a change is judged", §6.5):
//! never by substring, never by "no pendingChange" alone.
use super::models::management::{ChangeStatus, ClusterTopology};

/// Where change `change_id` stands in a cluster topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeVerdict {
    /// `lastChange.id == id` and COMPLETED.
    Completed,
    /// `lastChange.id == id` and FAILED.
    Failed,
    /// `lastChange.id == id` and CANCELLED.
    Cancelled,
    /// `lastChange.id > id`: a later change finished, so this one is done.
    Superseded,
    /// `pendingChange.id == id`. A `lastChange` with this id but an unrecognised status is
    /// also reported here (with zero counts) so callers keep waiting and time out visibly
    /// instead of declaring success.
    InProgress { completed: usize, pending: usize },
    /// Neither `lastChange` nor `pendingChange` has reached this id yet.
    NotStarted,
}

impl ChangeVerdict {
    /// Completed or superseded: the change is done and the caller may proceed.
    pub fn is_success(&self) -> bool {
        matches!(self, ChangeVerdict::Completed | ChangeVerdict::Superseded)
    }

    /// Failed or cancelled: a terminal failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, ChangeVerdict::Failed | ChangeVerdict::Cancelled)
    }

    /// No more waiting will change the verdict.
    pub fn is_terminal(&self) -> bool {
        self.is_success() || self.is_failure()
    }

    /// Fraction of operations done, for progress reporting (`None` unless in progress).
    pub fn progress(&self) -> Option<f64> {
        match self {
            ChangeVerdict::InProgress { completed, pending } if completed + pending > 0 => {
                Some(*completed as f64 / (*completed + *pending) as f64)
            }
            ChangeVerdict::InProgress { .. } => Some(0.0),
            _ => None,
        }
    }
}

impl std::fmt::Display for ChangeVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeVerdict::Completed => f.write_str("completed"),
            ChangeVerdict::Failed => f.write_str("failed"),
            ChangeVerdict::Cancelled => f.write_str("cancelled"),
            ChangeVerdict::Superseded => f.write_str("superseded by a later change"),
            ChangeVerdict::InProgress { completed, pending } => {
                write!(f, "in progress ({completed} of {} operations done)", completed + pending)
            }
            ChangeVerdict::NotStarted => f.write_str("not started"),
        }
    }
}

/// Judges change `change_id` from a `GET /actuator/cluster` answer (see [`judge`]).
pub fn judge_change(topology: &ClusterTopology, change_id: i64) -> ChangeVerdict {
    judge(
        topology.last_change.as_ref().map(|l| (l.id, &l.status)),
        topology.pending_change.as_ref().map(|p| (p.id, p.completed.len(), p.pending.len())),
        change_id,
    )
}

/// THE rule (docs/target-apis.md §2.1, §6.5), the one place it lives: `lastChange.id == id` →
/// its status (COMPLETED / FAILED / CANCELLED; any other status keeps waiting, so an unknown
/// status times out visibly instead of passing); `lastChange.id > id` → superseded;
/// `pendingChange.id == id` → in progress with operation counts; else not started.
///
/// `last` is `(id, status)` of `lastChange`, `pending` is `(id, completed, pending)` of
/// `pendingChange`; the steps judge their port's view with it, the clients the API model.
pub fn judge(
    last: Option<(i64, &ChangeStatus)>,
    pending: Option<(i64, usize, usize)>,
    change_id: i64,
) -> ChangeVerdict {
    // guards docs/target-apis.md §6.5: judge by changeId, never by substring
    if let Some((id, status)) = last {
        if id == change_id {
            return match status {
                ChangeStatus::Completed => ChangeVerdict::Completed,
                ChangeStatus::Failed => ChangeVerdict::Failed,
                ChangeStatus::Cancelled => ChangeVerdict::Cancelled,
                ChangeStatus::InProgress | ChangeStatus::Unknown(_) => {
                    ChangeVerdict::InProgress { completed: 0, pending: 0 }
                }
            };
        }
        if id > change_id {
            return ChangeVerdict::Superseded;
        }
    }
    if let Some((id, completed, pending)) = pending
        && id == change_id
    {
        return ChangeVerdict::InProgress { completed, pending };
    }
    ChangeVerdict::NotStarted
}
