//! Everything `c8dr rehearse` needs: a simulated dual-region installation (the lab), a
//! rehearsal engine that runs our BPMN, the clock both share, and the runner that ties them to
//! the real worker.
pub mod clock;
pub mod engine;
pub mod form_text;
pub mod interactive;
pub mod lab;
pub mod lab_platform;
pub mod progress;
pub mod report;
pub mod run;
