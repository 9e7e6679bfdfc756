//! The DR domain: regions and broker parity, plans, and one module per step family. Knows
//! nothing of gRPC or BPMN: steps take variables and headers and return an outcome.
pub mod errors;
