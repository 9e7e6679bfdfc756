//! The rehearsal engine: Zeebe gateway gRPC + REST v2 subset + BPMN interpreter.
pub mod feel;
pub mod model;
pub mod parse;
pub mod state;
