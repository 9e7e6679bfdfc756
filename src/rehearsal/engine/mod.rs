//! The rehearsal engine: Zeebe gateway gRPC + REST v2 subset + BPMN interpreter.
