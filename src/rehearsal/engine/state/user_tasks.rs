//! Camunda user tasks: completion and assignment.
use super::*;

impl State {
    pub fn complete_user_task(&mut self, key: i64, vars: Map<String, Json>) -> R<()> {
        let t = self.user_tasks.get_mut(&key).ok_or_else(|| {
            CommandError::NotFound(format!(
                "Expected to complete user task with key '{key}', but no such user task was found"
            ))
        })?;
        if t.state != UserTaskState::Created {
            return Err(CommandError::NotFound(format!(
                "Expected to complete user task with key '{key}', but it is in state '{:?}'",
                t.state
            )));
        }
        t.state = UserTaskState::Completed;
        t.completion_date = Some(self.now);
        let ei = t.ei_key;
        self.log("USER_TASK", "COMPLETED", key, Some(ei), "");
        if let Some(e) = self.elems.get_mut(&ei) {
            e.pending_vars = vars;
        }
        self.complete(ei);
        Ok(())
    }

    pub fn assign_user_task(&mut self, key: i64, assignee: Option<String>) -> R<()> {
        let t = self
            .user_tasks
            .get_mut(&key)
            .filter(|t| t.state == UserTaskState::Created)
            .ok_or_else(|| {
                CommandError::NotFound(format!(
                    "Expected to assign user task with key '{key}', but no such user task was found"
                ))
            })?;
        t.assignee = assignee.clone();
        let ei = t.ei_key;
        self.log(
            "USER_TASK",
            "ASSIGNED",
            key,
            Some(ei),
            assignee.unwrap_or_default(),
        );
        Ok(())
    }
}
