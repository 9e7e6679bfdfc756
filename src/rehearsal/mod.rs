//! Everything `c8dr rehearse` needs: a simulated dual-region installation (the lab), a
//! rehearsal engine that runs our BPMN, and the clock both share.
pub mod clock;
pub mod engine;
pub mod lab;
