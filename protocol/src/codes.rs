//! The message-code registry: the 1-byte code that prefixes every framed message.
//!
//! Every QUIC stream of a `distsoc/2` connection carries exactly one framed message
//! in each direction (see [`crate::frame`]). The first byte of a frame is a
//! [`MessageCode`]; it names the Cap'n Proto root struct that follows, whether the
//! message is a request, a response or a push ([`Kind`]), which code answers it
//! ([`MessageCode::response`]) and how large the framed message may be
//! ([`MessageCode::max_frame_bytes`]).
//!
//! The numeric values mirror the `code*` constants of `schema/wire.capnp`; a test
//! in this module pins every value.

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
    /// Starts a worm (random-walk) search.
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

    /// The table of the protocol brief, spelled out independently of the macro.
    #[rustfmt::skip]
    const TABLE: &[(&str, u8, Kind, Option<u8>, usize)] = &[
        ("Hello", 0x00, Kind::Request, Some(0x05), 64 * KIB),
        ("RoutingDiff", 0x01, Kind::Push, None, MIB),
        ("InitialMapSync", 0x02, Kind::Push, None, 16 * MIB),
        ("BootstrapRequest", 0x03, Kind::Request, Some(0x04), 4 * KIB),
        ("BootstrapResponse", 0x04, Kind::Response, None, 256 * KIB),
        ("HelloResponse", 0x05, Kind::Response, None, 64 * KIB),
        ("WormRequest", 0x10, Kind::Request, Some(0x12), 64 * KIB),
        ("WormQuery", 0x11, Kind::Request, Some(0x12), 64 * KIB),
        ("WormResponse", 0x12, Kind::Response, None, 64 * KIB),
        ("AddressRequest", 0x20, Kind::Request, Some(0x21), 64 * KIB),
        ("AddressResponse", 0x21, Kind::Response, None, 256 * KIB),
        ("FileRequest", 0x30, Kind::Request, Some(0x31), 4 * KIB),
        ("FileResponse", 0x31, Kind::Response, None, 2 * MIB),
        ("AuthorUpdateRequest", 0x32, Kind::Request, Some(0x33), 4 * KIB),
        ("AuthorUpdateResponse", 0x33, Kind::Response, None, 320 * KIB),
        ("AuthorUpdatePush", 0x34, Kind::Push, None, 320 * KIB),
        ("PostNotification", 0x35, Kind::Push, None, 16 * KIB),
        ("ManifestPush", 0x36, Kind::Push, None, MIB),
        ("BlobHeaderDiff", 0x37, Kind::Push, None, MIB),
        ("PullSyncRequest", 0x40, Kind::Request, Some(0x41), 64 * KIB),
        ("PullSyncResponse", 0x41, Kind::Response, None, 8 * MIB),
        ("PushPost", 0x42, Kind::Push, None, 2 * MIB),
        ("AudienceRequest", 0x43, Kind::Push, None, 16 * KIB),
        ("AudienceResponse", 0x44, Kind::Push, None, 16 * KIB),
        ("ProfileUpdate", 0x50, Kind::Push, None, 64 * KIB),
        ("DeleteRecord", 0x51, Kind::Push, None, 16 * KIB),
        ("VisibilityUpdate", 0x52, Kind::Push, None, 320 * KIB),
        ("VouchGrant", 0x53, Kind::Push, None, 16 * KIB),
        ("Comment", 0x54, Kind::Push, None, 64 * KIB),
        ("CreateChannel", 0x60, Kind::Request, Some(0x61), 4 * KIB),
        ("CreateChannelResponse", 0x61, Kind::Response, None, 4 * KIB),
        ("Enqueue", 0x62, Kind::Request, Some(0x63), 5 * MIB + 64 * KIB),
        ("EnqueueResponse", 0x63, Kind::Response, None, 4 * KIB),
        ("Fetch", 0x64, Kind::Request, Some(0x65), 4 * KIB),
        ("FetchResponse", 0x65, Kind::Response, None, 16 * MIB),
        ("FetchWait", 0x66, Kind::Request, Some(0x67), 4 * KIB),
        ("FetchWaitResponse", 0x67, Kind::Response, None, 16 * MIB),
        ("ListChannels", 0x68, Kind::Request, Some(0x69), 4 * KIB),
        ("ListChannelsResponse", 0x69, Kind::Response, None, MIB),
        ("Ack", 0x7E, Kind::Response, None, 4 * KIB),
        ("Error", 0x7F, Kind::Response, None, 64 * KIB),
    ];

    #[test]
    fn table_matches_registry() {
        assert_eq!(TABLE.len(), MessageCode::ALL.len());
        for &(name, byte, kind, response, cap) in TABLE {
            let code = MessageCode::from_u8(byte).unwrap_or_else(|| panic!("0x{byte:02x}"));
            assert_eq!(code.name(), name);
            assert_eq!(code.as_u8(), byte);
            assert_eq!(code.kind(), kind, "{name}");
            assert_eq!(code.response().map(MessageCode::as_u8), response, "{name}");
            assert_eq!(code.max_frame_bytes(), cap, "{name}");
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
    fn codes_match_schema_constants() {
        use distsoc_schema::wire_capnp as w;
        let pairs = [
            (MessageCode::Hello, w::CODE_HELLO),
            (MessageCode::RoutingDiff, w::CODE_ROUTING_DIFF),
            (MessageCode::InitialMapSync, w::CODE_INITIAL_MAP_SYNC),
            (MessageCode::BootstrapRequest, w::CODE_BOOTSTRAP_REQUEST),
            (MessageCode::BootstrapResponse, w::CODE_BOOTSTRAP_RESPONSE),
            (MessageCode::HelloResponse, w::CODE_HELLO_RESPONSE),
            (MessageCode::WormRequest, w::CODE_WORM_REQUEST),
            (MessageCode::WormQuery, w::CODE_WORM_QUERY),
            (MessageCode::WormResponse, w::CODE_WORM_RESPONSE),
            (MessageCode::AddressRequest, w::CODE_ADDRESS_REQUEST),
            (MessageCode::AddressResponse, w::CODE_ADDRESS_RESPONSE),
            (MessageCode::FileRequest, w::CODE_FILE_REQUEST),
            (MessageCode::FileResponse, w::CODE_FILE_RESPONSE),
            (
                MessageCode::AuthorUpdateRequest,
                w::CODE_AUTHOR_UPDATE_REQUEST,
            ),
            (
                MessageCode::AuthorUpdateResponse,
                w::CODE_AUTHOR_UPDATE_RESPONSE,
            ),
            (MessageCode::AuthorUpdatePush, w::CODE_AUTHOR_UPDATE_PUSH),
            (MessageCode::PostNotification, w::CODE_POST_NOTIFICATION),
            (MessageCode::ManifestPush, w::CODE_MANIFEST_PUSH),
            (MessageCode::BlobHeaderDiff, w::CODE_BLOB_HEADER_DIFF),
            (MessageCode::PullSyncRequest, w::CODE_PULL_SYNC_REQUEST),
            (MessageCode::PullSyncResponse, w::CODE_PULL_SYNC_RESPONSE),
            (MessageCode::PushPost, w::CODE_PUSH_POST),
            (MessageCode::AudienceRequest, w::CODE_AUDIENCE_REQUEST),
            (MessageCode::AudienceResponse, w::CODE_AUDIENCE_RESPONSE),
            (MessageCode::ProfileUpdate, w::CODE_PROFILE_UPDATE),
            (MessageCode::DeleteRecord, w::CODE_DELETE_RECORD),
            (MessageCode::VisibilityUpdate, w::CODE_VISIBILITY_UPDATE),
            (MessageCode::VouchGrant, w::CODE_VOUCH_GRANT),
            (MessageCode::Comment, w::CODE_COMMENT),
            (MessageCode::CreateChannel, w::CODE_CREATE_CHANNEL),
            (
                MessageCode::CreateChannelResponse,
                w::CODE_CREATE_CHANNEL_RESPONSE,
            ),
            (MessageCode::Enqueue, w::CODE_ENQUEUE),
            (MessageCode::EnqueueResponse, w::CODE_ENQUEUE_RESPONSE),
            (MessageCode::Fetch, w::CODE_FETCH),
            (MessageCode::FetchResponse, w::CODE_FETCH_RESPONSE),
            (MessageCode::FetchWait, w::CODE_FETCH_WAIT),
            (MessageCode::FetchWaitResponse, w::CODE_FETCH_WAIT_RESPONSE),
            (MessageCode::ListChannels, w::CODE_LIST_CHANNELS),
            (
                MessageCode::ListChannelsResponse,
                w::CODE_LIST_CHANNELS_RESPONSE,
            ),
            (MessageCode::Ack, w::CODE_ACK),
            (MessageCode::Error, w::CODE_ERROR),
        ];
        assert_eq!(pairs.len(), MessageCode::ALL.len());
        for (code, constant) in pairs {
            assert_eq!(code.as_u8(), constant, "{code}");
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
