//! Deployment: BPMN and forms, atomically, with versioning.
use super::*;

impl State {
    /// Deploys resources atomically: everything parses, or nothing is deployed.
    pub fn deploy(&mut self, resources: &[(String, Vec<u8>)]) -> R<Deployment> {
        if resources.is_empty() {
            return Err(CommandError::InvalidArgument(
                "expected to deploy at least one resource, but none given".into(),
            ));
        }
        enum Parsed {
            Bpmn(Vec<Process>),
            Form(String, String),
        }
        let mut parsed = Vec::new();
        for (name, content) in resources {
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".bpmn") || lower.ends_with(".xml") {
                let text = std::str::from_utf8(content)
                    .map_err(|_| CommandError::InvalidArgument(format!("{name}: resource is not UTF-8")))?;
                let defs = parse::parse_bpmn(name, text).map_err(|e| CommandError::InvalidArgument(e.to_string()))?;
                parsed.push((name, content, Parsed::Bpmn(defs.processes)));
            } else if lower.ends_with(".form") {
                let id = parse::parse_form(name, content).map_err(|e| CommandError::InvalidArgument(e.to_string()))?;
                parsed.push((name, content, Parsed::Form(id, String::from_utf8_lossy(content).into_owned())));
            } else {
                return Err(CommandError::InvalidArgument(format!(
                    "{name}: unknown resource type (expected .bpmn, .xml or .form)"
                )));
            }
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (name, _, p) in &parsed {
            if let Parsed::Bpmn(processes) = p {
                for proc in processes {
                    if let Some(first) = seen.insert(&proc.id, name) {
                        return Err(CommandError::InvalidArgument(format!(
                            "Duplicated process id in resources '{first}' and '{name}': '{}'",
                            proc.id
                        )));
                    }
                }
            }
        }
        let key = self.next_key();
        let mut out = Deployment { key, processes: Vec::new(), forms: Vec::new() };
        for (name, content, p) in parsed {
            match p {
                Parsed::Bpmn(processes) => {
                    for process in processes {
                        let latest =
                            self.processes.iter().filter(|d| d.bpmn_process_id == process.id).max_by_key(|d| d.version);
                        if let Some(l) = latest
                            && l.resource == *content
                        {
                            out.processes.push(l.clone());
                            continue;
                        }
                        let version = latest.map_or(1, |l| l.version + 1);
                        let d = DeployedProcess {
                            key: self.next_key(),
                            bpmn_process_id: process.id.clone(),
                            version,
                            resource_name: name.clone(),
                            resource: content.clone(),
                            process: Arc::new(process),
                        };
                        self.processes.push(d.clone());
                        out.processes.push(d);
                    }
                }
                Parsed::Form(form_id, text) => {
                    let latest = self.forms.iter().filter(|f| f.form_id == form_id).max_by_key(|f| f.version);
                    if let Some(l) = latest
                        && l.content == text
                    {
                        out.forms.push(l.clone());
                        continue;
                    }
                    let version = latest.map_or(1, |l| l.version + 1);
                    let f = DeployedForm {
                        key: self.next_key(),
                        form_id,
                        version,
                        resource_name: name.clone(),
                        content: text,
                    };
                    self.forms.push(f.clone());
                    out.forms.push(f);
                }
            }
        }
        // buffered messages may start the new processes
        let names: Vec<usize> = (0..self.messages.len()).collect();
        for i in names {
            let m = self.messages[i].clone();
            self.correlate_start(i, &m);
        }
        Ok(out)
    }

    pub fn latest_process(&self, bpmn_process_id: &str) -> Option<&DeployedProcess> {
        self.processes.iter().filter(|d| d.bpmn_process_id == bpmn_process_id).max_by_key(|d| d.version)
    }

    pub(super) fn process_def(&self, def_key: i64) -> Arc<Process> {
        self.processes.iter().find(|d| d.key == def_key).map(|d| d.process.clone()).expect("deployed process")
    }

    pub(super) fn def_version(&self, def_key: i64) -> i32 {
        self.processes.iter().find(|d| d.key == def_key).map_or(0, |d| d.version)
    }
}
