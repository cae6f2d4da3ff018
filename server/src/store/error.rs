//! What can go wrong in the store, without HTTP: [`crate::error`] maps it to an answer.

use isthmus_shared::validate::Violation;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A resource or tenant the write or read names does not exist; the message says where
    /// to look.
    #[error("{0}")]
    NotFound(String),
    /// The write contradicts what is stored (a name taken, every port in use).
    #[error("{0}")]
    Conflict(String),
    /// The input is malformed in a way the validator does not cover (a name's spelling).
    #[error("{0}")]
    Invalid(String),
    /// The validator refused the result: every error, nothing written.
    #[error("{message}")]
    Rejected {
        message: String,
        violations: Vec<Violation>,
    },
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("sealing: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    /// Stored data that does not parse, or another failure of the server itself.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
