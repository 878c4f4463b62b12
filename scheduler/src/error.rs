//! Scheduler errors and their one mapping to gRPC status codes.

/// Why a scheduler operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error(transparent)]
    Evidence(#[from] trawl_evidence::EvidenceError),
    #[error(transparent)]
    Store(#[from] trawl_store::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<SchedError> for tonic::Status {
    fn from(e: SchedError) -> Self {
        use tonic::Status;
        let msg = e.to_string();
        match e {
            SchedError::InvalidArgument(_) => Status::invalid_argument(msg),
            SchedError::NotFound(_) => Status::not_found(msg),
            SchedError::FailedPrecondition(_) => Status::failed_precondition(msg),
            SchedError::PermissionDenied(_) => Status::permission_denied(msg),
            SchedError::Unauthenticated(_) => Status::unauthenticated(msg),
            SchedError::AlreadyExists(_) => Status::already_exists(msg),
            SchedError::ResourceExhausted(_) => Status::resource_exhausted(msg),
            SchedError::Evidence(trawl_evidence::EvidenceError::OutsideRoots { .. }) => {
                Status::permission_denied(msg)
            }
            SchedError::Evidence(_) => Status::failed_precondition(msg),
            SchedError::Store(_) | SchedError::Internal(_) => Status::internal(msg),
        }
    }
}
