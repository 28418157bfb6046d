//! Wire error codes and the typed errors of message decoding.
//!
//! Every failure to accept a peer's message maps to exactly one [`ErrorCode`],
//! which is what goes back to the peer in an `Error` (0x7F) reply. The Rust error
//! types carry the detail for logs; the code is what the peer can act on.

use distsoc_schema::wire_capnp;

/// The wire error code (`ErrorCode` in `schema/wire.capnp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl DecodeError {
    /// The wire code to answer with.
    pub fn error_code(&self) -> ErrorCode {
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

impl From<capnp::Error> for DecodeError {
    fn from(e: capnp::Error) -> Self {
        DecodeError::Capnp(e.to_string())
    }
}

impl From<capnp::NotInSchema> for DecodeError {
    fn from(_: capnp::NotInSchema) -> Self {
        DecodeError::UnknownVariant("enum")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_wire_order() {
        for (i, c) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(ErrorCode::from_name(c.name()), Some(c));
            assert_eq!(ErrorCode::from_wire(c.to_wire()), c);
            assert_eq!(c.to_wire() as usize, i, "{c} out of wire order");
        }
    }
}
