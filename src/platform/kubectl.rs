//! Kept for `procedure::platform`'s import: the kubectl-subprocess platform is gone (mode
//! `command` observes through kube-rs, [`super::k8s::KubePlatform`]).
pub use super::manual::profiles_command;
