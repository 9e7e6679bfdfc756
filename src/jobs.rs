//! Job type -> step; variables in/out; step outcome -> complete / fail / BPMN error.
