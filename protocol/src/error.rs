//! Wire error codes and the typed errors of message decoding.
//!
//! Every failure to accept a peer's message maps to exactly one [`ErrorCode`],
//! which is what goes back to the peer in an `Error` (0x7F) reply. The Rust error
//! types carry the detail for logs; the code is what the peer can act on.
//!
//! One typed way from an error to the wire (the shape of rustls'
//! `From<Error> for AlertDescription`):
//!
//! * [`WireCode`] — every error that can reach a peer (frame, canonical,
//!   decode and ingest errors here; each role's store and admission errors)
//!   names its [`ErrorCode`] directly: no string lookups, no fallbacks.
//! * [`ToWireError`] — the whole `Error` reply: the code, a message that is
//!   the error's text for a refusal of the peer's input and a generic text
//!   for a failure of the receiver itself, and the retry-after.
//! * [`StorageFault`] — the one rule by which every role tells a peer about
//!   a failure of its own storage (`schema/README.md` §11).

use core::fmt;

use distsoc_schema::wire_capnp;

use crate::messages::wire;

/// The wire error code (`ErrorCode` in `schema/wire.capnp`).
///
/// `#[non_exhaustive]`: the schema only grows, so a later build may know
/// codes this one does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No more specific code applies; treated like `Internal`.
    Unspecified,
    /// The message's version is outside the receiver's range.
    UnsupportedVersion,
    /// The frame or message could not be parsed or violates the schema's rules.
    Malformed,
    /// A frame or field exceeds its size limit.
    TooLarge,
    /// A signature did not verify.
    BadSignature,
    /// A content id does not match its bytes.
    IdMismatch,
    /// The data is older than what the receiver holds.
    Stale,
    /// The caller may not do this.
    Unauthorized,
    /// The named object is not held here.
    NotFound,
    /// The caller exceeded a rate limit.
    RateLimited,
    /// The object's time-to-live has passed.
    Expired,
    /// The receiver failed for reasons of its own.
    Internal,
    /// The message code is unknown or not served in this role.
    UnknownMessage,
    /// A dependency is temporarily down, or the receiver is draining.
    Unavailable,
    /// Signed or hashed bytes were not canonical.
    NonCanonical,
    /// A storage quota of the receiver is used up (e.g. an anchor's
    /// per-author or per-depositor deposit quota); nothing was stored.
    /// `retryAfterMs` > 0 says when the window frees room, 0 that waiting
    /// does not help.
    QuotaExceeded,
}

impl ErrorCode {
    /// Whether this error, answering a state-changing request (`Enqueue`,
    /// `CreateChannel`, `PushPost`, ...), guarantees that **nothing was
    /// done**: the request was refused before any state changed, so it may
    /// be corrected or dropped. True for every code except `unavailable`,
    /// `internal` and `unspecified` (and so for any code this build does
    /// not know, which reads as `unspecified`): those — like no answer at
    /// all (timeout, lost connection) — mean **the outcome is unknown**;
    /// the request may have taken effect, and the client retries it with
    /// the same idempotency key (`Enqueue.clientMessageId`) until it gets
    /// an answer. `schema/README.md` §9 ("Outcome of a refused request").
    pub fn nothing_done(self) -> bool {
        !matches!(
            self,
            ErrorCode::Unspecified | ErrorCode::Internal | ErrorCode::Unavailable
        )
    }

    /// Every code, in wire order.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::Unspecified,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Malformed,
        ErrorCode::TooLarge,
        ErrorCode::BadSignature,
        ErrorCode::IdMismatch,
        ErrorCode::Stale,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::RateLimited,
        ErrorCode::Expired,
        ErrorCode::Internal,
        ErrorCode::UnknownMessage,
        ErrorCode::Unavailable,
        ErrorCode::NonCanonical,
        ErrorCode::QuotaExceeded,
    ];

    /// The schema's enumerant name (`unsupportedVersion`, `tooLarge`, ...), as
    /// used in vector files and reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Unspecified => "unspecified",
            ErrorCode::UnsupportedVersion => "unsupportedVersion",
            ErrorCode::Malformed => "malformed",
            ErrorCode::TooLarge => "tooLarge",
            ErrorCode::BadSignature => "badSignature",
            ErrorCode::IdMismatch => "idMismatch",
            ErrorCode::Stale => "stale",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "notFound",
            ErrorCode::RateLimited => "rateLimited",
            ErrorCode::Expired => "expired",
            ErrorCode::Internal => "internal",
            ErrorCode::UnknownMessage => "unknownMessage",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NonCanonical => "nonCanonical",
            ErrorCode::QuotaExceeded => "quotaExceeded",
        }
    }

    /// Looks a code up by its schema name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Converts to the generated enum.
    pub fn to_wire(self) -> wire_capnp::ErrorCode {
        use wire_capnp::ErrorCode as W;
        match self {
            ErrorCode::Unspecified => W::Unspecified,
            ErrorCode::UnsupportedVersion => W::UnsupportedVersion,
            ErrorCode::Malformed => W::Malformed,
            ErrorCode::TooLarge => W::TooLarge,
            ErrorCode::BadSignature => W::BadSignature,
            ErrorCode::IdMismatch => W::IdMismatch,
            ErrorCode::Stale => W::Stale,
            ErrorCode::Unauthorized => W::Unauthorized,
            ErrorCode::NotFound => W::NotFound,
            ErrorCode::RateLimited => W::RateLimited,
            ErrorCode::Expired => W::Expired,
            ErrorCode::Internal => W::Internal,
            ErrorCode::UnknownMessage => W::UnknownMessage,
            ErrorCode::Unavailable => W::Unavailable,
            ErrorCode::NonCanonical => W::NonCanonical,
            ErrorCode::QuotaExceeded => W::QuotaExceeded,
        }
    }

    /// Converts from the generated enum.
    pub fn from_wire(w: wire_capnp::ErrorCode) -> Self {
        use wire_capnp::ErrorCode as W;
        match w {
            W::Unspecified => ErrorCode::Unspecified,
            W::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            W::Malformed => ErrorCode::Malformed,
            W::TooLarge => ErrorCode::TooLarge,
            W::BadSignature => ErrorCode::BadSignature,
            W::IdMismatch => ErrorCode::IdMismatch,
            W::Stale => ErrorCode::Stale,
            W::Unauthorized => ErrorCode::Unauthorized,
            W::NotFound => ErrorCode::NotFound,
            W::RateLimited => ErrorCode::RateLimited,
            W::Expired => ErrorCode::Expired,
            W::Internal => ErrorCode::Internal,
            W::UnknownMessage => ErrorCode::UnknownMessage,
            W::Unavailable => ErrorCode::Unavailable,
            W::NonCanonical => ErrorCode::NonCanonical,
            W::QuotaExceeded => ErrorCode::QuotaExceeded,
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a message (or a value inside one) was rejected while decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The Cap'n Proto structure is invalid (bad pointer, wrong type, limit hit).
    #[error("malformed message: {0}")]
    Capnp(String),
    /// A fixed-length field has the wrong length.
    #[error("field {field}: expected {expected} bytes, got {got}")]
    BadLength {
        /// Field name as in the schema.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A variable-length field is longer than its limit.
    #[error("field {field}: {got} bytes exceeds the limit of {max}")]
    TooLong {
        /// Field name as in the schema.
        field: &'static str,
        /// The limit.
        max: usize,
        /// Actual length.
        got: usize,
    },
    /// A list has more elements than its limit.
    #[error("field {field}: {got} elements exceeds the limit of {max}")]
    TooMany {
        /// Field name as in the schema.
        field: &'static str,
        /// The limit.
        max: usize,
        /// Actual count.
        got: usize,
    },
    /// A required field is absent.
    #[error("required field {0} is missing")]
    Missing(&'static str),
    /// A text field is not UTF-8.
    #[error("field {0} is not valid UTF-8")]
    BadUtf8(&'static str),
    /// A field's value breaks a rule of the schema.
    #[error("field {field}: {reason}")]
    Invalid {
        /// Field name as in the schema.
        field: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// An enum or union discriminant this implementation does not know.
    #[error("field {0}: unknown enumerant or union arm")]
    UnknownVariant(&'static str),
    /// The message's version is outside what we speak.
    #[error("version {got} is outside the supported range {min}..={max}")]
    UnsupportedVersion {
        /// The version in the message.
        got: u16,
        /// Our minimum.
        min: u16,
        /// Our maximum.
        max: u16,
    },
    /// Signed or hashed bytes were not in canonical form.
    #[error("signed bytes of {0} are not canonical")]
    NonCanonical(&'static str),
}

impl WireCode for DecodeError {
    fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLong { .. } | DecodeError::TooMany { .. } => ErrorCode::TooLarge,
            DecodeError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            DecodeError::NonCanonical(_) => ErrorCode::NonCanonical,
            DecodeError::Capnp(_)
            | DecodeError::BadLength { .. }
            | DecodeError::Missing(_)
            | DecodeError::BadUtf8(_)
            | DecodeError::Invalid { .. }
            | DecodeError::UnknownVariant(_) => ErrorCode::Malformed,
        }
    }
}

/// An error that can reach a peer: the [`ErrorCode`] the peer is told.
///
/// The single mapping from a Rust error to the wire code. Implemented by
/// every error that can answer a peer's message (framing, canonical bytes,
/// decoding, content ingest, each role's store and admission errors).
pub trait WireCode {
    /// The code to answer with.
    fn error_code(&self) -> ErrorCode;
}

/// The generic `Error.message` of a failure of the receiver itself that is
/// temporary (`unavailable`).
pub const UNAVAILABLE_MESSAGE: &str = "temporarily unavailable; retry later";

/// The generic `Error.message` of any other failure of the receiver itself
/// (`internal`, `unspecified`).
pub const INTERNAL_MESSAGE: &str = "internal error";

/// An error told to a peer as a whole `Error` reply: code, safe message and
/// retry-after.
///
/// A refusal of the peer's own input (every code for which
/// [`ErrorCode::nothing_done`] holds) carries the error's text, which names
/// the field, limit or rule. A failure of the receiver itself (`internal`,
/// `unavailable`, `unspecified`) carries only [`INTERNAL_MESSAGE`] or
/// [`UNAVAILABLE_MESSAGE`]: database, file and table names are none of the
/// peer's business, and the caller logs the detail
/// (`schema/README.md` §11).
pub trait ToWireError: WireCode + fmt::Display {
    /// `retryAfterMs` to send; 0 (the default) gives no advice.
    fn retry_after_ms(&self) -> u32 {
        0
    }

    /// The `Error` reply (request code 0: the dispatcher fills it in).
    fn to_wire_error(&self) -> wire::Error {
        let code = self.error_code();
        let message = if code.nothing_done() {
            self.to_string()
        } else if code == ErrorCode::Unavailable {
            UNAVAILABLE_MESSAGE.to_string()
        } else {
            INTERNAL_MESSAGE.to_string()
        };
        wire::Error::new(code, 0, message).with_retry_after(self.retry_after_ms())
    }
}

/// A message refused by a rate limit before any work was done on it:
/// `rateLimited`, with `retryAfterMs` = `retry_after` rounded **up** to whole
/// milliseconds and at least 1 (a peer that waits that long is admitted),
/// saturating at `u32::MAX`. The message is `what` (the role's own words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct RateLimited {
    /// What the peer is told, e.g. "rate limit exceeded".
    pub what: &'static str,
    /// How long until the peer's next message would be admitted.
    pub retry_after: core::time::Duration,
}

impl WireCode for RateLimited {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::RateLimited
    }
}

impl ToWireError for RateLimited {
    fn retry_after_ms(&self) -> u32 {
        u32::try_from(self.retry_after.as_micros().div_ceil(1000))
            .unwrap_or(u32::MAX)
            .max(1)
    }
}

/// `retryAfterMs` of an `unavailable` answer caused by a busy or unreachable
/// store ([`StorageFault::Transient`]).
pub const STORAGE_RETRY_AFTER_MS: u32 = 1_000;

/// What kind of failure of the receiver's own storage an error is, and so
/// what a peer is told. One rule for every role (the node on SQLite, the
/// anchor on SQLite or PostgreSQL), `schema/README.md` §11:
///
/// | storage failure | fault | peer is told |
/// |---|---|---|
/// | busy or locked past the timeout, I/O error, disk full, database down or unreachable, pool exhausted | [`StorageFault::Transient`] | `unavailable`, retry after [`STORAGE_RETRY_AFTER_MS`] |
/// | corrupt stored data, a schema newer than this build, any other database error (a bug) | [`StorageFault::Broken`] | `internal`, no retry-after |
///
/// Both get a generic message ([`ToWireError`]); the detail is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageFault {
    /// Out of reach for now; the store recovers by itself.
    Transient,
    /// Damaged, too new or misused; retrying does not help.
    Broken,
}

impl WireCode for StorageFault {
    fn error_code(&self) -> ErrorCode {
        match self {
            StorageFault::Transient => ErrorCode::Unavailable,
            StorageFault::Broken => ErrorCode::Internal,
        }
    }
}

impl StorageFault {
    /// `retryAfterMs` to send with this fault.
    pub fn retry_after_ms(self) -> u32 {
        match self {
            StorageFault::Transient => STORAGE_RETRY_AFTER_MS,
            StorageFault::Broken => 0,
        }
    }
}

impl From<capnp::Error> for DecodeError {
    fn from(e: capnp::Error) -> Self {
        DecodeError::Capnp(e.to_string())
    }
}

impl ToWireError for DecodeError {}

impl From<capnp::NotInSchema> for DecodeError {
    fn from(_: capnp::NotInSchema) -> Self {
        DecodeError::UnknownVariant("enum")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_rounds_retry_after_up_to_whole_ms() {
        use core::time::Duration;
        let e = |retry_after| RateLimited {
            what: "slow down",
            retry_after,
        };
        let w = e(Duration::from_micros(1_001)).to_wire_error();
        assert_eq!(w.code, ErrorCode::RateLimited);
        assert_eq!(w.message, "slow down");
        assert_eq!(w.retry_after_ms, 2);
        assert_eq!(e(Duration::from_millis(7)).retry_after_ms(), 7);
        assert_eq!(e(Duration::ZERO).retry_after_ms(), 1);
        assert_eq!(e(Duration::from_secs(u64::MAX)).retry_after_ms(), u32::MAX);
    }

    #[test]
    fn names_round_trip_and_match_wire_order() {
        for (i, c) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(ErrorCode::from_name(c.name()), Some(c));
            assert_eq!(ErrorCode::from_wire(c.to_wire()), c);
            assert_eq!(c.to_wire() as usize, i, "{c} out of wire order");
        }
    }

    #[derive(Debug)]
    struct Fault(StorageFault);

    impl fmt::Display for Fault {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk /secret/path.db is busy")
        }
    }

    impl WireCode for Fault {
        fn error_code(&self) -> ErrorCode {
            self.0.error_code()
        }
    }

    impl ToWireError for Fault {
        fn retry_after_ms(&self) -> u32 {
            self.0.retry_after_ms()
        }
    }

    #[test]
    fn storage_faults_reach_the_wire_generic() {
        let e = Fault(StorageFault::Transient).to_wire_error();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert_eq!(e.message, UNAVAILABLE_MESSAGE);
        assert_eq!(e.retry_after_ms, STORAGE_RETRY_AFTER_MS);
        let e = Fault(StorageFault::Broken).to_wire_error();
        assert_eq!(e.code, ErrorCode::Internal);
        assert_eq!(e.message, INTERNAL_MESSAGE);
        assert_eq!(e.retry_after_ms, 0);
    }

    #[test]
    fn refusals_of_input_carry_their_reason() {
        let d = DecodeError::Missing("body");
        let e = d.to_wire_error();
        assert_eq!(e.code, ErrorCode::Malformed);
        assert_eq!(e.message, d.to_string());
        assert_eq!(e.retry_after_ms, 0);
        assert_eq!(e.request_code, 0);
    }
}
