//! The executable BPMN model: exactly the elements the rehearsal engine runs.
use std::collections::HashMap;

/// A `zeebe:input` / `zeebe:output` mapping: `source` is a FEEL expression or static value.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimerDef {
    /// ISO-8601 duration or FEEL returning a duration / ISO string.
    Duration(String),
    /// ISO-8601 date-time or FEEL returning one.
    Date(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserTaskDef {
    pub form_id: Option<String>,
    pub assignee: Option<String>,
    pub candidate_groups: Option<String>,
    pub candidate_users: Option<String>,
    pub due_date: Option<String>,
    pub follow_up_date: Option<String>,
    pub priority: Option<String>,
    /// `zeebe:taskListeners` of event type `completing`, in model order (the only event type
    /// the rehearsal engine runs; others are rejected at deployment).
    pub completing_listeners: Vec<TaskListenerDef>,
}

/// A `zeebe:taskListener`: job type and retries (static or FEEL, evaluated at job creation).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskListenerDef {
    pub job_type: String,
    pub retries: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ElementKind {
    /// None start event, or a message start event (message name).
    StartEvent {
        message: Option<String>,
    },
    EndEvent,
    /// Error end event: throws `error_code` to the nearest error boundary of the enclosing
    /// scopes (through call activities), which terminates that scope; uncaught -> incident.
    ErrorEnd {
        error_code: String,
    },
    /// Terminate end event: terminates every other element instance of its flow scope, which
    /// then completes (a sub-process takes its outgoing flows; a process instance completes).
    TerminateEnd,
    ServiceTask {
        job_type: String,
        retries: String,
        headers: Vec<(String, String)>,
    },
    UserTask(Box<UserTaskDef>),
    ExclusiveGateway {
        default: Option<String>,
    },
    ParallelGateway,
    TimerCatch(TimerDef),
    SubProcess {
        start: String,
    },
    CallActivity {
        process_id: String,
        propagate_child: bool,
        propagate_parent: bool,
    },
    /// Error boundary: `error_code` None catches every error.
    ErrorBoundary {
        attached_to: String,
        error_code: Option<String>,
    },
    TimerBoundary {
        attached_to: String,
        timer: TimerDef,
        interrupting: bool,
    },
}

impl ElementKind {
    /// Zeebe's BpmnElementType name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ElementKind::StartEvent { .. } => "START_EVENT",
            ElementKind::EndEvent | ElementKind::ErrorEnd { .. } | ElementKind::TerminateEnd => "END_EVENT",
            ElementKind::ServiceTask { .. } => "SERVICE_TASK",
            ElementKind::UserTask(_) => "USER_TASK",
            ElementKind::ExclusiveGateway { .. } => "EXCLUSIVE_GATEWAY",
            ElementKind::ParallelGateway => "PARALLEL_GATEWAY",
            ElementKind::TimerCatch(_) => "INTERMEDIATE_CATCH_EVENT",
            ElementKind::SubProcess { .. } => "SUB_PROCESS",
            ElementKind::CallActivity { .. } => "CALL_ACTIVITY",
            ElementKind::ErrorBoundary { .. } | ElementKind::TimerBoundary { .. } => "BOUNDARY_EVENT",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub id: String,
    pub name: Option<String>,
    pub kind: ElementKind,
    pub outgoing: Vec<String>,
    pub incoming: Vec<String>,
    pub inputs: Vec<Mapping>,
    pub outputs: Vec<Mapping>,
    /// Enclosing sub-process id; None = the process itself.
    pub scope: Option<String>,
    /// Boundary event ids attached to this element.
    pub boundaries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: String,
    pub source: String,
    pub target: String,
    pub condition: Option<String>,
    /// Position in the XML, for Zeebe's evaluation order of gateway conditions.
    pub order: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    pub id: String,
    pub name: Option<String>,
    pub elements: HashMap<String, Element>,
    pub flows: HashMap<String, Flow>,
    /// The top-level none start event.
    pub none_start: Option<String>,
    /// Top-level message start events: (element id, message name).
    pub message_starts: Vec<(String, String)>,
}

impl Process {
    pub fn element(&self, id: &str) -> &Element {
        &self.elements[id]
    }
}

/// A parsed BPMN resource: one or more processes.
#[derive(Debug, Clone)]
pub struct Definitions {
    pub processes: Vec<Process>,
}
