//! Why a store operation failed, and what a peer is told about it.

use super::*;

/// Why a store operation failed.
///
/// Its [`WireCode`] / [`ToWireError`] is what a peer is told: a failure of
/// the store itself by the shared [`StorageFault`] rule
/// ([`StoreError::storage_fault`]), a refusal of the caller's input by its
/// own code. [`StoreError::is_unavailable`] says the database is
/// (temporarily) out of reach and the request may be retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is down, restarting, unreachable, out of connections,
    /// or did not answer within the configured timeouts (or the store is
    /// shutting down). Wire code `unavailable` with a retry-after. Usually
    /// nothing was written; only when the time limit hits during a commit
    /// can the write have happened anyway — a retried enqueue with the same
    /// `client_message_id` is then answered as a duplicate.
    #[error("database unavailable: {reason}")]
    Unavailable {
        /// What happened (for logs).
        reason: String,
    },
    /// SQLite failed (corruption, a constraint, misuse, ...). Transient
    /// failures ([`sqlite_fault`]: busy or locked after the busy timeout,
    /// I/O, disk full) are [`StoreError::Unavailable`] instead.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL failed with an error that is not about reachability (a
    /// missing role or database, a refused login, a failed statement). The
    /// text is [`describe_pg`]'s: the server's severity, SQLSTATE, message,
    /// detail and hint, or the client's error and its causes.
    #[error("postgres: {}", describe_pg(.0))]
    Postgres(tokio_postgres::Error),
    /// A group-committed write batch failed as a whole; every request in it
    /// gets this, sharing the one cause.
    #[error("write batch failed: {0}")]
    Batch(Arc<StoreError>),
    /// Creating the database file or setting its permissions failed.
    #[error("database file: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data is unusable (bytes that do not decode, a value out of
    /// range): the database was modified outside this code or damaged.
    #[error("corrupt {what} in the store: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it is unusable.
        reason: String,
    },
    /// The database schema is newer than this build supports; nothing was
    /// changed.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    TooNew {
        /// The database's schema version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A malformed argument (a bad URL, an empty payload, a channel with
    /// oneself), refused before touching the database.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The caller may not do this: the sender is not a member of the
    /// channel, the recipient is not the other member, or the channel does
    /// not exist (indistinguishable on purpose).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// A value exceeds its size limit.
    #[error("{what} is {got} bytes, over the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit, bytes.
        max: usize,
        /// The actual size, bytes.
        got: usize,
    },
    /// A post failed the protocol's checks ([`SyncPost::validate`]); the
    /// [`IngestError`]'s [`WireCode`] is the wire code.
    #[error(transparent)]
    Invalid(#[from] IngestError),
}

/// What a PostgreSQL error says, in one line: for an error the server sent,
/// its severity, SQLSTATE and message, then its detail and hint (`FATAL
/// 3D000: database "x" does not exist`); otherwise the client's error and
/// every cause in its source chain (`error connecting to server: Connection
/// refused (os error 111)`). tokio-postgres's own `Display` says only `db
/// error` for the first kind.
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            out.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            out.push_str(&format!(" (hint: {hint})"));
        }
        return out;
    }
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// The [`StorageFault`] of a SQLite error: busy or locked past the busy
/// timeout, an I/O error, a full disk or a file that cannot be opened are
/// transient; anything else (corruption, a constraint broken by a bug,
/// misuse) is broken. The same rule as the node's store
/// (`distsoc_node::store::sqlite_fault`; the anchor does not link the node).
pub fn sqlite_fault(e: &rusqlite::Error) -> StorageFault {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(
            C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull | C::CannotOpen,
        ) => StorageFault::Transient,
        _ => StorageFault::Broken,
    }
}

impl From<rusqlite::Error> for StoreError {
    /// A transient failure ([`sqlite_fault`]: `SQLITE_BUSY` / `SQLITE_LOCKED`
    /// past the busy timeout, I/O, disk full) is [`StoreError::Unavailable`];
    /// anything else is [`StoreError::Sqlite`].
    fn from(e: rusqlite::Error) -> Self {
        match sqlite_fault(&e) {
            StorageFault::Transient => StoreError::unavailable(e),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl WireCode for StoreError {
    fn error_code(&self) -> ErrorCode {
        if let Some(fault) = self.storage_fault() {
            return fault.error_code();
        }
        match self {
            StoreError::Batch(inner) => inner.error_code(),
            StoreError::InvalidArgument(_) => ErrorCode::Malformed,
            StoreError::Unauthorized(_) => ErrorCode::Unauthorized,
            StoreError::TooLarge { .. } => ErrorCode::TooLarge,
            StoreError::Invalid(e) => e.error_code(),
            StoreError::Unavailable { .. }
            | StoreError::Sqlite(_)
            | StoreError::Postgres(_)
            | StoreError::Io(_)
            | StoreError::Corrupt { .. }
            | StoreError::TooNew { .. } => ErrorCode::Internal,
        }
    }
}

impl ToWireError for StoreError {
    fn retry_after_ms(&self) -> u32 {
        self.storage_fault().map_or(0, StorageFault::retry_after_ms)
    }
}

impl StoreError {
    /// The [`StorageFault`] if this is a failure of the store itself (not a
    /// refusal of the caller's input): unreachable, busy or I/O is
    /// transient; corrupt data, a schema too new or any other database
    /// error is broken.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            StoreError::Unavailable { .. } | StoreError::Io(_) => Some(StorageFault::Transient),
            StoreError::Batch(inner) => inner.storage_fault(),
            StoreError::Sqlite(_)
            | StoreError::Postgres(_)
            | StoreError::Corrupt { .. }
            | StoreError::TooNew { .. } => Some(StorageFault::Broken),
            StoreError::InvalidArgument(_)
            | StoreError::Unauthorized(_)
            | StoreError::TooLarge { .. }
            | StoreError::Invalid(_) => None,
        }
    }

    /// True if the database is out of reach for now (down, restarting, pool
    /// exhausted, timed out, busy, an I/O error): answer `unavailable` with
    /// a retry-after; the store recovers by itself.
    pub fn is_unavailable(&self) -> bool {
        self.storage_fault() == Some(StorageFault::Transient)
    }

    pub(crate) fn unavailable(reason: impl fmt::Display) -> Self {
        StoreError::Unavailable {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}
