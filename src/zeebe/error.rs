//! [`ClientError`]: every way a call to the management Camunda can fail, each naming the cause
//! and the fix.
use crate::config::SecretError;

/// A failed gateway call (or the connection / credentials needed to make one).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "invalid gateway address {address:?}: {reason}; set management.grpc_address (or \
         CAMUNDA_GRPC_ADDRESS) to http://host:26500 (plaintext) or https://host:443 (TLS)"
    )]
    InvalidAddress { address: String, reason: String },
    #[error(
        "cannot use CA certificate {path}: {reason}; fix management.ca_certificate_path \
         (or CAMUNDA_CA_CERTIFICATE_PATH) to point at a readable PEM file"
    )]
    CaCertificate { path: String, reason: String },
    #[error("cannot read a credential: {0}; fix the secret reference in management.auth")]
    Secret(#[from] SecretError),
    #[error(
        "cannot fetch an OAuth token from {url}: {reason}; check \
         management.auth.authorization_server_url and that the identity provider is reachable"
    )]
    TokenEndpoint { url: String, reason: String },
    #[error(
        "the identity provider at {url} rejected the client credentials (HTTP {status}): {body}; \
         check management.auth.client_id, client_secret, audience and scope"
    )]
    TokenRejected { url: String, status: u16, body: String },
    #[error(
        "gateway {address} is unreachable ({rpc}): {message}; check management.grpc_address, \
         that the gateway runs and listens there, and the TLS settings (http:// vs https://)"
    )]
    Unavailable { rpc: &'static str, address: String, message: String },
    #[error(
        "the gateway rejected the credentials ({rpc}): {message}; check management.auth \
         (method, client id/secret or username/password)"
    )]
    Unauthenticated { rpc: &'static str, message: String },
    #[error(
        "the gateway denied {rpc}: {message}; grant the client the needed permissions \
         (authorizations) in the management Camunda"
    )]
    PermissionDenied { rpc: &'static str, message: String },
    #[error("the gateway rejected the {rpc} arguments: {message}; fix the named field")]
    InvalidArgument { rpc: &'static str, message: String },
    #[error("{rpc}: not found: {message} (the job, instance or process no longer exists or was never deployed)")]
    NotFound { rpc: &'static str, message: String },
    #[error("{rpc}: already exists: {message}")]
    AlreadyExists { rpc: &'static str, message: String },
    #[error("{rpc}: precondition failed: {message}")]
    FailedPrecondition { rpc: &'static str, message: String },
    #[error("{rpc}: the gateway is overloaded (back-pressure): {message}; retry later")]
    ResourceExhausted { rpc: &'static str, message: String },
    #[error(
        "{rpc}: no answer within {timeout_ms} ms; the gateway is slow or unreachable, raise \
         management.request_timeout_ms or check the network"
    )]
    Timeout { rpc: &'static str, timeout_ms: u64 },
    #[error(
        "gateway {address} answered {rpc} with plain HTTP ({message}): this looks like the REST port (8080) \
         or another HTTP server, not the Zeebe gRPC gateway; set management.grpc_address (or \
         CAMUNDA_GRPC_ADDRESS) to the gRPC port, usually 26500 (http://host:26500)"
    )]
    NotGrpc { rpc: &'static str, address: String, message: String },
    #[error("{rpc} failed with gRPC status {code:?}: {message}")]
    Other { rpc: &'static str, code: tonic::Code, message: String },
}

impl ClientError {
    /// Maps a gRPC status of `rpc` to the matching variant.
    pub fn from_status(rpc: &'static str, address: &str, status: &tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::Unavailable => Self::Unavailable { rpc, address: address.to_string(), message },
            tonic::Code::Unknown if is_transport_message(&message) => {
                Self::Unavailable { rpc, address: address.to_string(), message }
            }
            // tonic maps an answer without grpc-status from its HTTP status: 404 -> Unimplemented
            tonic::Code::Unimplemented if message.contains("HTTP status code") => {
                Self::NotGrpc { rpc, address: address.to_string(), message }
            }
            tonic::Code::Unauthenticated => Self::Unauthenticated { rpc, message },
            tonic::Code::PermissionDenied => Self::PermissionDenied { rpc, message },
            tonic::Code::InvalidArgument => Self::InvalidArgument { rpc, message },
            tonic::Code::NotFound => Self::NotFound { rpc, message },
            tonic::Code::AlreadyExists => Self::AlreadyExists { rpc, message },
            tonic::Code::FailedPrecondition => Self::FailedPrecondition { rpc, message },
            tonic::Code::ResourceExhausted => Self::ResourceExhausted { rpc, message },
            code => Self::Other { rpc, code, message },
        }
    }

    /// The gRPC code this error corresponds to, if it came from the gateway.
    pub fn code(&self) -> Option<tonic::Code> {
        Some(match self {
            Self::Unavailable { .. } => tonic::Code::Unavailable,
            Self::Unauthenticated { .. } | Self::TokenRejected { .. } => tonic::Code::Unauthenticated,
            Self::PermissionDenied { .. } => tonic::Code::PermissionDenied,
            Self::InvalidArgument { .. } => tonic::Code::InvalidArgument,
            Self::NotFound { .. } => tonic::Code::NotFound,
            Self::AlreadyExists { .. } => tonic::Code::AlreadyExists,
            Self::FailedPrecondition { .. } => tonic::Code::FailedPrecondition,
            Self::ResourceExhausted { .. } => tonic::Code::ResourceExhausted,
            Self::Timeout { .. } => tonic::Code::DeadlineExceeded,
            Self::Other { code, .. } => *code,
            Self::NotGrpc { .. } => tonic::Code::Unimplemented,
            _ => return None,
        })
    }

    /// True for errors worth retrying after a back-off: the gateway is overloaded, unreachable
    /// or slow, or the identity provider could not be reached.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::ResourceExhausted { .. }
                | Self::Timeout { .. }
                | Self::TokenEndpoint { .. }
                | Self::Other {
                    code: tonic::Code::Internal | tonic::Code::Aborted | tonic::Code::DeadlineExceeded,
                    ..
                }
        )
    }

    /// Short label for metrics (`unavailable`, `not_found`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidAddress { .. } => "invalid_address",
            Self::CaCertificate { .. } => "ca_certificate",
            Self::Secret(_) => "secret",
            Self::TokenEndpoint { .. } => "token_endpoint",
            Self::TokenRejected { .. } => "token_rejected",
            Self::Unavailable { .. } => "unavailable",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::NotFound { .. } => "not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::FailedPrecondition { .. } => "failed_precondition",
            Self::ResourceExhausted { .. } => "resource_exhausted",
            Self::Timeout { .. } => "timeout",
            Self::NotGrpc { .. } => "not_grpc",
            Self::Other { .. } => "other",
        }
    }
}

fn is_transport_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("transport error") || m.contains("connection") || m.contains("tcp connect")
}
