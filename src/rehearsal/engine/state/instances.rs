//! Process instances: creation and cancellation.
use super::*;

impl State {
    /// Creates a process instance by bpmnProcessId (+version, -1 = latest) or by definition key.
    pub fn create_instance(
        &mut self,
        def_key: i64,
        bpmn_process_id: &str,
        version: i32,
        vars: Map<String, Json>,
    ) -> R<(DeployedProcess, i64)> {
        let def = if def_key > 0 {
            self.processes.iter().find(|d| d.key == def_key).cloned().ok_or_else(|| {
                CommandError::NotFound(format!(
                    "Expected to find process definition with key '{def_key}', but none found"
                ))
            })?
        } else if version > 0 {
            self.processes
                .iter()
                .find(|d| d.bpmn_process_id == bpmn_process_id && d.version == version)
                .cloned()
                .ok_or_else(|| {
                    CommandError::NotFound(format!(
                        "Expected to find process definition with process ID '{bpmn_process_id}' and version '{version}', but none found"
                    ))
                })?
        } else {
            self.latest_process(bpmn_process_id).cloned().ok_or_else(|| {
                CommandError::NotFound(format!(
                    "Expected to find process definition with process ID '{bpmn_process_id}', but none found"
                ))
            })?
        };
        let Some(start) = def.process.none_start.clone() else {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to create instance of process with none start event, but there is no such event in process '{}'",
                def.bpmn_process_id
            )));
        };
        let pi = self.start_instance(&def, &start, vars, None, None);
        Ok((def, pi))
    }

    pub(super) fn start_instance(
        &mut self,
        def: &DeployedProcess,
        start: &str,
        vars: Map<String, Json>,
        parent_ei: Option<i64>,
        start_correlation_key: Option<String>,
    ) -> i64 {
        let key = self.next_key();
        self.elems.insert(
            key,
            ElemInst {
                key,
                pi_key: key,
                def_key: def.key,
                bpmn_process_id: def.bpmn_process_id.clone(),
                element_id: def.bpmn_process_id.clone(),
                element_type: "PROCESS",
                flow_scope: None,
                state: ElemState::Activating,
                start: self.now,
                end: None,
                parent_ei,
                joins: HashMap::new(),
                pending_vars: Map::new(),
                child_pi: None,
                start_correlation_key,
            },
        );
        self.vars.insert(key, vars);
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", key, Some(key), "");
        self.elems.get_mut(&key).expect("pi").state = ElemState::Activated;
        self.log("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", key, Some(key), "");
        let process = def.process.clone();
        self.activate(key, process.element(start), Map::new());
        key
    }

    pub fn cancel_instance(&mut self, pi_key: i64) -> R<()> {
        let e = self.elems.get(&pi_key).filter(|e| e.element_type == "PROCESS" && e.state.is_active()).ok_or_else(
            || {
                CommandError::NotFound(format!(
                    "Expected to cancel a process instance with key '{pi_key}', but no such process was found"
                ))
            },
        )?;
        if e.parent_ei.is_some() {
            return Err(CommandError::FailedPrecondition(format!(
                "Expected to cancel a process instance with key '{pi_key}', but it is created by a parent process instance. Cancel the root process instance '{}' instead.",
                self.root_of(pi_key)
            )));
        }
        self.terminate(pi_key);
        Ok(())
    }

    pub(super) fn root_of(&self, mut pi: i64) -> i64 {
        while let Some(p) = self.elems.get(&pi).and_then(|e| e.parent_ei).and_then(|p| self.elems.get(&p)) {
            pi = p.pi_key;
        }
        pi
    }
}
