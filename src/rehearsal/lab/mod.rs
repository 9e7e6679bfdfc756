//! The lab: a simulated Camunda 8.8 dual-region installation served on 127.0.0.1.
