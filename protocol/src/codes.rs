//! The message-code registry: the 1-byte code that prefixes every framed message.
//!
//! Every QUIC stream of a `distsoc/2` connection carries exactly one framed message
//! in each direction (see [`crate::frame`]). The first byte of a frame is a
//! [`MessageCode`]; it names the Cap'n Proto root struct that follows, whether the
//! message is a request, a response or a push ([`Kind`]), which code answers it
//! ([`MessageCode::response`]) and how large the framed message may be
//! ([`MessageCode::max_frame_bytes`]).
//!
//! The table is the schema's: the `code*` constants of `schema/wire.capnp` and
//! their `$kind`, `$response` and `$frameCap` annotations
//! (`distsoc_schema::limits::MESSAGE_CODES`). A test in this module pins every
//! row of the registry below to it.

use core::fmt;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// What role a message plays on its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Opens a bidirectional stream; the responder answers on the same stream with
    /// the code given by [`MessageCode::response`], or with
    /// [`MessageCode::Error`].
    Request,
    /// Answers a request (or a push sent on a bidirectional stream) on the same
    /// stream. Never opens a stream.
    Response,
    /// One-way information. Normally sent on a unidirectional stream and not
    /// answered. A push sent on a *bidirectional* stream is answered with
    /// [`MessageCode::Ack`] on success or [`MessageCode::Error`] on refusal.
    Push,
}

impl Kind {
    /// Lower-case name, as used in logs and vector files.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Push => "push",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Generates the enum and its table-driven methods from one table, so a code,
/// its name, kind, response and cap can never drift apart.
macro_rules! message_codes {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $code:literal, $kind:ident, $response:expr, $cap:expr;
    )*) => {
        /// A message code: the first byte of every frame.
        ///
        /// Unknown codes are rejected with the wire error `unknownMessage`
        /// ([`MessageCode::from_u8`] returns `None`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum MessageCode {
            $(
                $(#[$doc])*
                $variant = $code,
            )*
        }

        impl MessageCode {
            /// Every known code, in ascending numeric order.
            pub const ALL: &'static [MessageCode] = &[$(MessageCode::$variant),*];

            /// Parses a code byte; `None` for an unknown code.
            pub const fn from_u8(byte: u8) -> Option<Self> {
                match byte {
                    $($code => Some(MessageCode::$variant),)*
                    _ => None,
                }
            }

            /// The name of the message (the Cap'n Proto root struct's name).
            pub const fn name(self) -> &'static str {
                match self {
                    $(MessageCode::$variant => stringify!($variant),)*
                }
            }

            /// Whether this is a request, a response or a push.
            pub const fn kind(self) -> Kind {
                match self {
                    $(MessageCode::$variant => Kind::$kind,)*
                }
            }

            /// For a request, the code of its success response. `None` for
            /// responses and pushes (see [`Kind::Push`] for how a push on a
            /// bidirectional stream is answered). Any request may also be answered
            /// with [`MessageCode::Error`]; see [`MessageCode::accepts_reply`].
            pub const fn response(self) -> Option<MessageCode> {
                match self {
                    $(MessageCode::$variant => $response,)*
                }
            }

            /// Largest accepted framed message for this code, in bytes: the whole
            /// Cap'n Proto stream encoding (segment table included), excluding the
            /// 1-byte code. Checked from the segment table before the body is
            /// buffered; larger frames are refused with `tooLarge`.
            pub const fn max_frame_bytes(self) -> usize {
                match self {
                    $(MessageCode::$variant => $cap,)*
                }
            }
        }
    };
}

message_codes! {
    /// Opens a connection: version range, roles, addresses, capabilities, limits.
    Hello = 0x00, Request, Some(MessageCode::HelloResponse), 64 * KIB;
    /// Incremental change to the discovery routing map.
    RoutingDiff = 0x01, Push, None, MIB;
    /// Full discovery map, sent once after the handshake (in chunks).
    InitialMapSync = 0x02, Push, None, 16 * MIB;
    /// Asks an anchor for a diverse set of peers.
    BootstrapRequest = 0x03, Request, Some(MessageCode::BootstrapResponse), 4 * KIB;
    /// Answer to [`MessageCode::BootstrapRequest`].
    BootstrapResponse = 0x04, Response, None, 256 * KIB;
    /// Answer to [`MessageCode::Hello`].
    HelloResponse = 0x05, Response, None, 64 * KIB;
    /// Asks a peer for a fresh [`MessageCode::InitialMapSync`] after a gap in
    /// its RoutingDiff `seq`.
    MapSyncRequest = 0x06, Push, None, 4 * KIB;
    /// Starts or forwards a worm search (directed toward its target).
    WormRequest = 0x10, Request, Some(MessageCode::WormResponse), 64 * KIB;
    /// Asks a peer to evaluate a worm query locally.
    WormQuery = 0x11, Request, Some(MessageCode::WormResponse), 64 * KIB;
    /// Answer to [`MessageCode::WormRequest`] and [`MessageCode::WormQuery`].
    WormResponse = 0x12, Response, None, 64 * KIB;
    /// Asks for the current addresses of nodes.
    AddressRequest = 0x20, Request, Some(MessageCode::AddressResponse), 64 * KIB;
    /// Answer to [`MessageCode::AddressRequest`].
    AddressResponse = 0x21, Response, None, 256 * KIB;
    /// Asks for a content blob by id.
    FileRequest = 0x30, Request, Some(MessageCode::FileResponse), 4 * KIB;
    /// Answer to [`MessageCode::FileRequest`] (a blob of at most 256 KiB).
    FileResponse = 0x31, Response, None, 2 * MIB;
    /// Asks for an author's current recent-posts record.
    AuthorUpdateRequest = 0x32, Request, Some(MessageCode::AuthorUpdateResponse), 4 * KIB;
    /// Answer to [`MessageCode::AuthorUpdateRequest`].
    AuthorUpdateResponse = 0x33, Response, None, 320 * KIB;
    /// Unsolicited recent-posts record of an author.
    AuthorUpdatePush = 0x34, Push, None, 320 * KIB;
    /// Announces a new post.
    PostNotification = 0x35, Push, None, 16 * KIB;
    /// Pushes a blob manifest.
    ManifestPush = 0x36, Push, None, MIB;
    /// Incremental change to blob headers.
    BlobHeaderDiff = 0x37, Push, None, MIB;
    /// Pulls posts by author or recipient since a cursor.
    PullSyncRequest = 0x40, Request, Some(MessageCode::PullSyncResponse), 64 * KIB;
    /// Answer to [`MessageCode::PullSyncRequest`].
    PullSyncResponse = 0x41, Response, None, 8 * MIB;
    /// Pushes a post to a peer.
    PushPost = 0x42, Push, None, 2 * MIB;
    /// Asks to join an author's audience.
    AudienceRequest = 0x43, Push, None, 16 * KIB;
    /// Grants or refuses an [`MessageCode::AudienceRequest`].
    AudienceResponse = 0x44, Push, None, 16 * KIB;
    /// A signed profile update.
    ProfileUpdate = 0x50, Push, None, 64 * KIB;
    /// A signed deletion of a record.
    DeleteRecord = 0x51, Push, None, 16 * KIB;
    /// New visibility (re-wrapped keys) for an encrypted post.
    VisibilityUpdate = 0x52, Push, None, 320 * KIB;
    /// Grants a friend-of-friend vouch key.
    VouchGrant = 0x53, Push, None, 16 * KIB;
    /// A comment on a post.
    Comment = 0x54, Push, None, 64 * KIB;
    /// Asks an anchor to create a DM channel.
    CreateChannel = 0x60, Request, Some(MessageCode::CreateChannelResponse), 4 * KIB;
    /// Answer to [`MessageCode::CreateChannel`].
    CreateChannelResponse = 0x61, Response, None, 4 * KIB;
    /// Enqueues a sealed payload (at most 5 MiB) in a mailbox or channel.
    Enqueue = 0x62, Request, Some(MessageCode::EnqueueResponse), 5 * MIB + 64 * KIB;
    /// Answer to [`MessageCode::Enqueue`].
    EnqueueResponse = 0x63, Response, None, 4 * KIB;
    /// Fetches queued payloads.
    Fetch = 0x64, Request, Some(MessageCode::FetchResponse), 4 * KIB;
    /// Answer to [`MessageCode::Fetch`].
    FetchResponse = 0x65, Response, None, 16 * MIB;
    /// Long-polls for queued payloads.
    FetchWait = 0x66, Request, Some(MessageCode::FetchWaitResponse), 4 * KIB;
    /// Answer to [`MessageCode::FetchWait`].
    FetchWaitResponse = 0x67, Response, None, 16 * MIB;
    /// Lists the caller's DM channels.
    ListChannels = 0x68, Request, Some(MessageCode::ListChannelsResponse), 4 * KIB;
    /// Answer to [`MessageCode::ListChannels`].
    ListChannelsResponse = 0x69, Response, None, MIB;
    /// Positive answer to a push sent on a bidirectional stream.
    Ack = 0x7E, Response, None, 4 * KIB;
    /// Negative answer to any request, or to a push on a bidirectional stream.
    Error = 0x7F, Response, None, 64 * KIB;
}

impl MessageCode {
    /// The code byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether `reply` is an acceptable answer to a message with this code sent on
    /// a bidirectional stream: a request accepts its [`response`](Self::response)
    /// or `Error`; a push accepts `Ack` or `Error`; a response accepts nothing.
    pub const fn accepts_reply(self, reply: MessageCode) -> bool {
        match self.kind() {
            Kind::Request => match self.response() {
                Some(expected) => {
                    reply as u8 == expected as u8 || reply as u8 == MessageCode::Error as u8
                }
                None => reply as u8 == MessageCode::Error as u8,
            },
            Kind::Push => {
                reply as u8 == MessageCode::Ack as u8 || reply as u8 == MessageCode::Error as u8
            }
            Kind::Response => false,
        }
    }

    /// The largest per-code cap of all codes: the most a frame decoder ever
    /// buffers (plus the code byte).
    pub const fn largest_cap() -> usize {
        let mut max = 0;
        let mut i = 0;
        while i < Self::ALL.len() {
            let cap = Self::ALL[i].max_frame_bytes();
            if cap > max {
                max = cap;
            }
            i += 1;
        }
        max
    }
}

impl TryFrom<u8> for MessageCode {
    type Error = u8;

    /// Parses a code byte; the error is the unknown byte.
    fn try_from(byte: u8) -> Result<Self, u8> {
        MessageCode::from_u8(byte).ok_or(byte)
    }
}

impl From<MessageCode> for u8 {
    fn from(code: MessageCode) -> u8 {
        code.as_u8()
    }
}

impl fmt::Display for MessageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02x})", self.name(), self.as_u8())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The registry equals the schema's message-code table: the `code*`
    /// constants of `schema/wire.capnp` with their `$kind`, `$response` and
    /// `$frameCap` annotations, as generated into `distsoc_schema::limits`.
    #[test]
    fn registry_matches_schema_annotations() {
        use distsoc_schema::limits::{MessageKind, MESSAGE_CODES};
        assert_eq!(MESSAGE_CODES.len(), MessageCode::ALL.len());
        for row in MESSAGE_CODES {
            let code = MessageCode::from_u8(row.code).unwrap_or_else(|| panic!("{}", row.name));
            assert_eq!(code.name(), row.name);
            let kind = match row.kind {
                MessageKind::Request => Kind::Request,
                MessageKind::Response => Kind::Response,
                MessageKind::Push => Kind::Push,
            };
            assert_eq!(code.kind(), kind, "{code}");
            assert_eq!(code.kind().name(), row.kind.name(), "{code}");
            assert_eq!(
                code.response().map(MessageCode::as_u8),
                row.response,
                "{code}"
            );
            assert_eq!(code.max_frame_bytes(), row.frame_cap as usize, "{code}");
        }
    }

    #[test]
    fn all_is_sorted_unique_and_complete() {
        assert!(MessageCode::ALL
            .windows(2)
            .all(|w| w[0].as_u8() < w[1].as_u8()));
        let known: Vec<u8> = (0..=255u8)
            .filter(|b| MessageCode::from_u8(*b).is_some())
            .collect();
        let all: Vec<u8> = MessageCode::ALL.iter().map(|c| c.as_u8()).collect();
        assert_eq!(known, all);
        let names: HashSet<&str> = MessageCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), MessageCode::ALL.len());
    }

    #[test]
    fn from_u8_round_trips_every_byte() {
        for byte in 0..=255u8 {
            match MessageCode::from_u8(byte) {
                Some(code) => {
                    assert_eq!(code.as_u8(), byte);
                    assert_eq!(MessageCode::try_from(byte), Ok(code));
                    assert_eq!(u8::from(code), byte);
                }
                None => assert_eq!(MessageCode::try_from(byte), Err(byte)),
            }
        }
    }

    #[test]
    fn responses_are_responses() {
        for code in MessageCode::ALL {
            match code.kind() {
                Kind::Request => {
                    let resp = code.response().unwrap_or_else(|| panic!("{code}"));
                    assert_eq!(resp.kind(), Kind::Response, "{code}");
                    assert!(code.accepts_reply(resp));
                    assert!(code.accepts_reply(MessageCode::Error));
                    assert!(!code.accepts_reply(MessageCode::Ack));
                }
                Kind::Push => {
                    assert_eq!(code.response(), None);
                    assert!(code.accepts_reply(MessageCode::Ack));
                    assert!(code.accepts_reply(MessageCode::Error));
                    assert!(!code.accepts_reply(MessageCode::HelloResponse));
                }
                Kind::Response => {
                    assert_eq!(code.response(), None);
                    assert!(!code.accepts_reply(MessageCode::Error));
                }
            }
        }
    }

    #[test]
    fn largest_cap_is_16_mib() {
        assert_eq!(MessageCode::largest_cap(), 16 * MIB);
    }

    #[test]
    fn display_names_code() {
        assert_eq!(MessageCode::Error.to_string(), "Error (0x7f)");
        assert_eq!(Kind::Push.to_string(), "push");
    }
}
