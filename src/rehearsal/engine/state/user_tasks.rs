//! Camunda user tasks: completion and assignment.
use super::*;
use crate::rehearsal::engine::model::UserTaskDef;

impl State {
    /// Evaluates a user task's assignment, schedule, priority and form at activation; on
    /// failure the incident type and message Zeebe would raise.
    pub(super) fn build_user_task(
        &self,
        key: i64,
        name: Option<String>,
        def: &UserTaskDef,
    ) -> Result<UserTaskRec, (&'static str, String)> {
        let opt = |v: &Option<String>, what: &str| -> Result<Option<Json>, (&'static str, String)> {
            match v {
                None => Ok(None),
                Some(t) if t.trim().is_empty() => Ok(None),
                Some(t) => self.eval(t, key).map(Some).map_err(|e| ("EXTRACT_VALUE_ERROR", format!("{what}: {}", e.0))),
            }
        };
        let extract = |m: String| ("EXTRACT_VALUE_ERROR", m);
        let assignee = opt(&def.assignee, "assignee")?.and_then(json_to_opt_string);
        let candidate_groups = opt(&def.candidate_groups, "candidateGroups")?.map(json_to_list).unwrap_or_default();
        let candidate_users = opt(&def.candidate_users, "candidateUsers")?.map(json_to_list).unwrap_or_default();
        let due_date = opt(&def.due_date, "dueDate")?.and_then(json_to_opt_string);
        let follow_up_date = opt(&def.follow_up_date, "followUpDate")?.and_then(json_to_opt_string);
        for (what, d) in [("dueDate", &due_date), ("followUpDate", &follow_up_date)] {
            if let Some(d) = d {
                feel::parse_date_time(d).map_err(|e| extract(format!("{what}: {}", e.0)))?;
            }
        }
        let priority = match opt(&def.priority, "priority")? {
            None | Some(Json::Null) => 50,
            Some(Json::Number(n)) => n.as_i64().unwrap_or(50) as i32,
            Some(Json::String(s)) => {
                s.trim().parse().map_err(|_| extract(format!("priority: '{s}' is not a number")))?
            }
            Some(o) => return Err(extract(format!("priority: '{o}' is not a number"))),
        };
        let form_key = def
            .form_id
            .as_ref()
            .and_then(|f| self.forms.iter().filter(|d| &d.form_id == f).max_by_key(|d| d.version).map(|d| d.key));
        if let (Some(f), None) = (&def.form_id, form_key) {
            return Err((
                "FORM_NOT_FOUND",
                format!(
                    "Expected to find a form with id '{f}', but no form with this id is found, at least a form with this id should be available. To resolve the Incident please deploy a form with the same id"
                ),
            ));
        }
        let e = &self.elems[&key];
        Ok(UserTaskRec {
            key: 0,
            ei_key: key,
            pi_key: e.pi_key,
            def_key: e.def_key,
            bpmn_process_id: e.bpmn_process_id.clone(),
            element_id: e.element_id.clone(),
            name,
            state: UserTaskState::Created,
            assignee,
            candidate_groups,
            candidate_users,
            due_date,
            follow_up_date,
            priority,
            form_id: def.form_id.clone(),
            form_key,
            creation_date: self.now,
            completion_date: None,
        })
    }
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
        let t = self.user_tasks.get_mut(&key).filter(|t| t.state == UserTaskState::Created).ok_or_else(|| {
            CommandError::NotFound(format!(
                "Expected to assign user task with key '{key}', but no such user task was found"
            ))
        })?;
        t.assignee = assignee.clone();
        let ei = t.ei_key;
        self.log("USER_TASK", "ASSIGNED", key, Some(ei), assignee.unwrap_or_default());
        Ok(())
    }
}
