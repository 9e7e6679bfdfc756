//! Messages: publication, buffering, message start events.
use super::*;

impl State {
    pub fn publish_message(
        &mut self,
        name: &str,
        correlation_key: &str,
        ttl_ms: i64,
        message_id: &str,
        vars: Map<String, Json>,
    ) -> R<i64> {
        if name.trim().is_empty() {
            return Err(CommandError::InvalidArgument("Expected message name to be not empty".into()));
        }
        let now = self.now_ms();
        if !message_id.is_empty()
            && self.messages.iter().any(|m| {
                m.name == name && m.correlation_key == correlation_key && m.message_id == message_id && m.expires > now
            })
        {
            return Err(CommandError::AlreadyExists(format!(
                "Expected to publish a new message with id '{message_id}', but a message with that id was already published"
            )));
        }
        let key = self.next_key();
        let msg = MessageRec {
            key,
            name: name.to_string(),
            correlation_key: correlation_key.to_string(),
            message_id: message_id.to_string(),
            variables: vars,
            expires: now + ttl_ms.max(0),
            correlated: Vec::new(),
        };
        self.log.push(LogEvent {
            time: self.now,
            value_type: "MESSAGE",
            intent: "PUBLISHED",
            key,
            process_instance_key: -1,
            bpmn_process_id: String::new(),
            element_id: String::new(),
            element_type: String::new(),
            detail: format!("name={name} correlationKey={correlation_key}"),
        });
        self.messages.push(msg.clone());
        let idx = self.messages.len() - 1;
        self.correlate_start(idx, &msg);
        if ttl_ms <= 0 {
            self.messages.remove(idx);
        }
        Ok(key)
    }

    /// Starts an instance of every latest process with a message start event for this message
    /// (at most once per process per message).
    pub(super) fn correlate_start(&mut self, idx: usize, msg: &MessageRec) {
        let mut latest: HashMap<String, DeployedProcess> = HashMap::new();
        for d in &self.processes {
            if latest.get(&d.bpmn_process_id).is_none_or(|l| l.version < d.version) {
                latest.insert(d.bpmn_process_id.clone(), d.clone());
            }
        }
        let mut ids: Vec<&String> = latest.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for id in ids {
            let d = latest[&id].clone();
            if msg.correlated.contains(&id) || self.messages[idx].correlated.contains(&id) {
                continue;
            }
            let busy = !msg.correlation_key.is_empty()
                && self.elems.values().any(|e| {
                    e.element_type == "PROCESS"
                        && e.bpmn_process_id == id
                        && e.state.is_active()
                        && e.start_correlation_key.as_deref() == Some(msg.correlation_key.as_str())
                });
            if busy {
                continue;
            }
            if let Some((start, _)) = d.process.message_starts.iter().find(|(_, n)| *n == msg.name).cloned() {
                self.messages[idx].correlated.push(id.clone());
                let corr = (!msg.correlation_key.is_empty()).then(|| msg.correlation_key.clone());
                let pi = self.start_instance(&d, &start, msg.variables.clone(), None, corr);
                self.log("MESSAGE", "CORRELATED", msg.key, Some(pi), format!("name={}", msg.name));
            }
        }
    }
}
