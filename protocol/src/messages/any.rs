//! [`Message`]: the sum of every top-level message, one variant per
//! [`MessageCode`].
//!
//! Decoding dispatches on the frame's code and reads the root struct through
//! [`codec::read_message`], which checks the `version` field before looking at
//! anything else. `FetchResponse` (0x65) and `FetchWaitResponse` (0x67) share
//! one schema struct; they are two variants, the second over the newtype
//! [`FetchWaitResponse`].

use core::fmt;

use capnp::message::{Builder, HeapAllocator, Reader, ReaderSegments};

use super::discovery::{
    AddressRequest, AddressResponse, BootstrapRequest, BootstrapResponse, InitialMapSync,
    MapSyncRequest, RoutingDiff, WormQuery, WormRequest, WormResponse,
};
use super::files::{
    AuthorUpdatePush, AuthorUpdateRequest, AuthorUpdateResponse, BlobHeaderDiff, FileRequest,
    FileResponse, ManifestPush, PostNotification,
};
use super::mailbox::{
    CreateChannel, CreateChannelResponse, Enqueue, EnqueueResponse, Fetch, FetchResponse,
    FetchWait, FetchWaitResponse, ListChannels, ListChannelsResponse,
};
use super::social::{
    AudienceRequest, AudienceResponse, Comment, DeleteRecord, ProfileUpdate, PullSyncRequest,
    PullSyncResponse, PushPost, VisibilityUpdate, VouchGrant,
};
use super::wire::{Ack, Error, Hello, HelloResponse};
use crate::codec::{self, WireMessage};
use crate::codes::MessageCode;
use crate::error::DecodeError;
use crate::frame::{self, Frame, FrameError};

/// Generates [`Message`] and its dispatch from one table, so every code has
/// exactly one variant and one type.
macro_rules! messages {
    ($($variant:ident($ty:ty),)*) => {
        /// Any top-level message. Each variant is named after its
        /// [`MessageCode`] and holds that code's domain type.
        ///
        /// Variants are held inline, not boxed: a `Message` is decoded once
        /// per stream and handed to its handler, never stored in bulk, so the
        /// size of the largest variant (a post with its metadata) costs
        /// nothing that matters and matching stays plain.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $(
                #[doc = concat!("Code `", stringify!($variant), "`.")]
                $variant($ty),
            )*
        }

        impl Message {
            /// The message code that introduces this message on the wire.
            pub fn code(&self) -> MessageCode {
                match self {
                    $(Message::$variant(_) => <$ty as WireMessage>::CODE,)*
                }
            }

            /// The message's `version` field.
            pub fn version(&self) -> u16 {
                match self {
                    $(Message::$variant(m) => WireMessage::version(m),)*
                }
            }

            /// Decodes the root struct of `reader` as the message named by
            /// `code`: version check first ([`codec::read_message`]), then
            /// every field's rules.
            pub(crate) fn decode<S: ReaderSegments>(code: MessageCode, reader: &Reader<S>) -> Result<Message, DecodeError> {
                match code {
                    $(MessageCode::$variant => codec::read_message::<$ty, S>(reader).map(Message::$variant),)*
                }
            }

            /// Builds the Cap'n Proto message (root struct only; the code is
            /// [`Message::code`]).
            pub(crate) fn encode(&self) -> Builder<HeapAllocator> {
                match self {
                    $(Message::$variant(m) => codec::build(m),)*
                }
            }
        }

        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Self {
                    Message::$variant(m)
                }
            }

            /// The message inside its own variant; any other message back
            /// as the error.
            impl TryFrom<Message> for $ty {
                type Error = Message;

                fn try_from(m: Message) -> Result<Self, Message> {
                    match m {
                        Message::$variant(v) => Ok(v),
                        other => Err(other),
                    }
                }
            }
        )*
    };
}

messages! {
    Hello(Hello),
    RoutingDiff(RoutingDiff),
    InitialMapSync(InitialMapSync),
    BootstrapRequest(BootstrapRequest),
    BootstrapResponse(BootstrapResponse),
    HelloResponse(HelloResponse),
    MapSyncRequest(MapSyncRequest),
    WormRequest(WormRequest),
    WormQuery(WormQuery),
    WormResponse(WormResponse),
    AddressRequest(AddressRequest),
    AddressResponse(AddressResponse),
    FileRequest(FileRequest),
    FileResponse(FileResponse),
    AuthorUpdateRequest(AuthorUpdateRequest),
    AuthorUpdateResponse(AuthorUpdateResponse),
    AuthorUpdatePush(AuthorUpdatePush),
    PostNotification(PostNotification),
    ManifestPush(ManifestPush),
    BlobHeaderDiff(BlobHeaderDiff),
    PullSyncRequest(PullSyncRequest),
    PullSyncResponse(PullSyncResponse),
    PushPost(PushPost),
    AudienceRequest(AudienceRequest),
    AudienceResponse(AudienceResponse),
    ProfileUpdate(ProfileUpdate),
    DeleteRecord(DeleteRecord),
    VisibilityUpdate(VisibilityUpdate),
    VouchGrant(VouchGrant),
    Comment(Comment),
    CreateChannel(CreateChannel),
    CreateChannelResponse(CreateChannelResponse),
    Enqueue(Enqueue),
    EnqueueResponse(EnqueueResponse),
    Fetch(Fetch),
    FetchResponse(FetchResponse),
    FetchWait(FetchWait),
    FetchWaitResponse(FetchWaitResponse),
    ListChannels(ListChannels),
    ListChannelsResponse(ListChannelsResponse),
    Ack(Ack),
    Error(Error),
}

impl Message {
    /// Decodes a received, validated frame.
    pub fn from_frame(frame: &Frame) -> Result<Message, DecodeError> {
        Message::decode(frame.code(), &frame.reader())
    }

    /// Encodes as a frame: code byte, segment table, segments. Fails if the
    /// message exceeds its code's frame cap.
    pub fn to_frame(&self) -> Result<Vec<u8>, FrameError> {
        frame::encode_frame(self.code(), &self.encode())
    }
}

/// A reply built some other way than as a decoded [`Message`] (e.g. from
/// stored canonical bytes, [`super::stored`]), encoded when the transport
/// sends it. Its frame must be exactly the frame of the message
/// [`EncodeReply::into_message`] gives.
pub trait EncodeReply: Send + fmt::Debug {
    /// The message code of the reply.
    fn code(&self) -> MessageCode;

    /// Encodes the frame; fails like [`Message::to_frame`] (over the
    /// code's cap).
    fn to_frame(&self) -> Result<Vec<u8>, FrameError>;

    /// The reply as a decoded message (for callers that need one).
    fn into_message(self: Box<Self>) -> Result<Message, DecodeError>;
}

/// An [`EncodeReply`] that is a reply of type `M`: ties a request handler
/// that returns it to its response type.
pub trait ReplyOf<M: WireMessage>: EncodeReply {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use core::net::SocketAddr;

    use super::super::common::{PeerAddress, Role, SocketAddress, VisibilityHint};
    use super::super::discovery::{
        AddressEntry, Hop1Change, Hop1ChangeKind, Hop1Entry, Hop2Change, Hop2ChangeKind, Hop2Entry,
        WormHit,
    };
    use super::super::files::fixtures::{self, author, key};
    use super::super::files::{AuthorUpdate, FileContent, FileTarget, StoredFile};
    use super::super::mailbox::{ChannelInfo, MailboxMessage};
    use super::super::signed::Signed;
    use super::super::social::{AudienceDecision, AudienceRequestBody, AudienceResponseBody};
    use super::super::wire::Limits;
    use super::*;
    use crate::error::{DecodeError, ErrorCode, WireCode};
    use crate::ids::{BlobId, ChannelId, CommentHash, NodeId, PostId, PostingId, WormId};
    use crate::limits::{reader_options, PROTOCOL_VERSION};

    const V: u16 = PROTOCOL_VERSION;

    fn addr(port: u16) -> SocketAddress {
        SocketAddress(SocketAddr::from(([192, 0, 2, 1], port)))
    }

    fn peer(n: u8) -> PeerAddress {
        PeerAddress {
            node_id: NodeId([n; 32]),
            addresses: vec![addr(4433), addr(1)],
            is_anchor: n.is_multiple_of(2),
            last_seen_ms: 9,
        }
    }

    /// One non-trivial example per code. The match is exhaustive, so a new
    /// code without an example does not compile.
    fn example(code: MessageCode) -> Message {
        let sp = fixtures::sync_post(1, 1000, "hello", true);
        let pid = sp.post_id();
        let mailbox_message = MailboxMessage {
            message_id: 4,
            channel_id: Some(ChannelId([5; 16])),
            sender: NodeId([6; 32]),
            received_at_ms: 7,
            expires_at_ms: 8,
            payload: vec![1, 2, 3],
        };
        let fetch_response = FetchResponse {
            version: V,
            messages: vec![mailbox_message],
            more: true,
        };
        match code {
            MessageCode::Hello => Hello {
                version: V,
                min_version: V,
                max_version: V,
                roles: vec![Role::Node, Role::Anchor],
                capabilities: vec!["mailbox/1".into()],
                limits: Limits {
                    max_blob_bytes: 262_144,
                    ..Limits::default()
                },
                listen_addresses: vec![addr(4433)],
                agent: "test".into(),
                time_ms: 1,
            }
            .into(),
            MessageCode::RoutingDiff => RoutingDiff {
                version: V,
                seq: 3,
                hop1_changes: vec![Hop1Change {
                    node_id: NodeId([1; 32]),
                    kind: Hop1ChangeKind::AddressChanged,
                    addresses: vec![addr(5)],
                    is_anchor: true,
                    is_wide: false,
                }],
                hop2_changes: vec![Hop2Change {
                    node_id: NodeId([2; 32]),
                    kind: Hop2ChangeKind::Removed,
                    is_anchor: false,
                }],
            }
            .into(),
            MessageCode::InitialMapSync => InitialMapSync {
                version: V,
                seq: 3,
                hop1: vec![Hop1Entry {
                    peer: peer(1),
                    is_wide: true,
                }],
                hop2: vec![Hop2Entry {
                    node_id: NodeId([2; 32]),
                    is_anchor: true,
                }],
                hop3: vec![NodeId([3; 32])],
                chunk_index: 1,
                chunk_count: 2,
            }
            .into(),
            MessageCode::BootstrapRequest => BootstrapRequest {
                version: V,
                want: 50,
                exclude: vec![NodeId([1; 32])],
            }
            .into(),
            MessageCode::BootstrapResponse => BootstrapResponse {
                version: V,
                peers: vec![peer(1), peer(2)],
            }
            .into(),
            MessageCode::HelloResponse => HelloResponse {
                version: V,
                min_version: V,
                max_version: V,
                roles: vec![Role::Anchor],
                capabilities: vec!["bootstrap/1".into()],
                limits: Limits::default(),
                listen_addresses: vec![addr(4433)],
                observed_address: Some(addr(999)),
                agent: "anchor".into(),
                time_ms: 2,
            }
            .into(),
            MessageCode::MapSyncRequest => MapSyncRequest {
                version: V,
                last_seq: 41,
            }
            .into(),
            MessageCode::WormRequest => WormRequest {
                version: V,
                worm_id: WormId([1; 16]),
                targets: vec![NodeId([2; 32])],
                post_ids: vec![PostId([3; 32])],
                ttl: 3,
                originator: peer(4),
                visited: vec![NodeId([5; 32])],
            }
            .into(),
            MessageCode::WormQuery => WormQuery {
                version: V,
                worm_id: WormId([1; 16]),
                targets: vec![NodeId([2; 32])],
                post_ids: vec![PostId([3; 32])],
            }
            .into(),
            MessageCode::WormResponse => WormResponse {
                version: V,
                worm_id: WormId([1; 16]),
                hits: vec![WormHit {
                    target: [2; 32],
                    holder: peer(2),
                    hops: 1,
                }],
                // Senders leave `closest` out when there are hits; decoders
                // accept it anyway (it is ignored then).
                closest: Some(peer(3)),
            }
            .into(),
            MessageCode::AddressRequest => AddressRequest {
                version: V,
                targets: vec![NodeId([1; 32])],
                depth: 1,
            }
            .into(),
            MessageCode::AddressResponse => AddressResponse {
                version: V,
                entries: vec![
                    AddressEntry {
                        node_id: NodeId([1; 32]),
                        peer: Some(peer(1)),
                        referral: None,
                    },
                    AddressEntry {
                        node_id: NodeId([2; 32]),
                        peer: None,
                        referral: Some(NodeId([3; 32])),
                    },
                ],
            }
            .into(),
            MessageCode::FileRequest => FileRequest {
                version: V,
                target: FileTarget::Post(pid),
            }
            .into(),
            MessageCode::FileResponse => FileResponse {
                version: V,
                content: FileContent::Post(Box::new(StoredFile {
                    post: sp,
                    author_recent_posts: Some(fixtures::recent(1, 2, 3)),
                    comments: vec![fixtures::comment(2, pid, "nice", None)],
                    hearts: vec![fixtures::heart(3, pid, 4)],
                })),
            }
            .into(),
            MessageCode::AuthorUpdateRequest => AuthorUpdateRequest {
                version: V,
                author: author(1),
                have_seq: 2,
            }
            .into(),
            MessageCode::AuthorUpdateResponse => AuthorUpdateResponse {
                version: V,
                outcome: AuthorUpdate::Recent(fixtures::recent(1, 3, 2)),
            }
            .into(),
            MessageCode::AuthorUpdatePush => AuthorUpdatePush {
                version: V,
                recent: fixtures::recent(1, 4, 1),
            }
            .into(),
            MessageCode::PostNotification => PostNotification {
                version: V,
                author: author(1),
                post_id: pid,
                hint: VisibilityHint::Public,
                recent: None,
            }
            .into(),
            MessageCode::ManifestPush => ManifestPush {
                version: V,
                post_id: pid,
                header: Some(fixtures::header(1, pid, 5)),
                recent: Some(fixtures::recent(1, 5, 0)),
            }
            .into(),
            MessageCode::BlobHeaderDiff => BlobHeaderDiff {
                version: V,
                post_id: pid,
                added_comments: vec![fixtures::comment(2, pid, "a", Some(CommentHash([1; 32])))],
                removed_comments: vec![CommentHash([2; 32])],
                added_hearts: vec![fixtures::heart(3, pid, 6)],
            }
            .into(),
            MessageCode::PullSyncRequest => PullSyncRequest {
                version: V,
                ids: vec![author(1), PostingId([9; 32])],
                since_seq: 5,
                limit: 10,
            }
            .into(),
            MessageCode::PullSyncResponse => PullSyncResponse {
                version: V,
                posts: vec![sp],
                next_seq: 6,
                more: false,
                deletes: vec![fixtures::delete(1, PostId([8; 32]), Some(pid))],
                profiles: Vec::new(),
            }
            .into(),
            MessageCode::PushPost => PushPost {
                version: V,
                post: sp,
                recent: Some(fixtures::recent(1, 6, 1)),
            }
            .into(),
            MessageCode::AudienceRequest => AudienceRequest {
                version: V,
                request: Signed::sign(
                    AudienceRequestBody {
                        requester: author(2),
                        author: author(1),
                        message: "hi".into(),
                        created_at_ms: 1,
                    },
                    &key(2),
                ),
            }
            .into(),
            MessageCode::AudienceResponse => AudienceResponse {
                version: V,
                response: Signed::sign(
                    AudienceResponseBody {
                        author: author(1),
                        requester: author(2),
                        decision: AudienceDecision::Approved,
                        decided_at_ms: 2,
                    },
                    &key(1),
                ),
            }
            .into(),
            MessageCode::ProfileUpdate => ProfileUpdate {
                version: V,
                profile: Signed::sign(
                    super::super::identity::PublicProfile {
                        posting_id: author(1),
                        display_name: "One".into(),
                        bio: String::new(),
                        anchors: vec![NodeId([7; 32])],
                        avatar: Some(BlobId([8; 32])),
                        updated_at_ms: 3,
                        network_id: None,
                    },
                    &key(1),
                ),
            }
            .into(),
            MessageCode::DeleteRecord => DeleteRecord {
                version: V,
                record: fixtures::delete(1, pid, None),
            }
            .into(),
            MessageCode::VisibilityUpdate => VisibilityUpdate {
                version: V,
                update: fixtures::visibility_update(1, pid, 7),
            }
            .into(),
            MessageCode::VouchGrant => VouchGrant {
                version: V,
                grant: Signed::sign(
                    super::super::identity::VouchGrantBody {
                        grantor: author(1),
                        grantee: author(2),
                        ephemeral_key: [3; 32],
                        sealed_key: [4; crate::envelope::WRAPPED_LEN],
                        created_at_ms: 5,
                    },
                    &key(1),
                ),
            }
            .into(),
            MessageCode::Comment => Comment {
                version: V,
                comment: fixtures::comment(2, pid, "c", None),
            }
            .into(),
            MessageCode::CreateChannel => CreateChannel {
                version: V,
                peer: NodeId([1; 32]),
            }
            .into(),
            MessageCode::CreateChannelResponse => CreateChannelResponse::new(
                V,
                ChannelId([1; 16]),
                NodeId([3; 32]),
                NodeId([2; 32]),
                4,
            )
            .into(),
            MessageCode::Enqueue => Enqueue {
                version: V,
                channel_id: None,
                recipient: NodeId([1; 32]),
                payload: vec![9; 100],
                client_message_id: Some([2; 16]),
            }
            .into(),
            MessageCode::EnqueueResponse => EnqueueResponse {
                version: V,
                message_id: 1,
                received_at_ms: 2,
                expires_at_ms: 3,
            }
            .into(),
            MessageCode::Fetch => Fetch {
                version: V,
                channel_id: Some(ChannelId([1; 16])),
                ack_through: 3,
                max_messages: 0,
                max_bytes: 0,
            }
            .into(),
            MessageCode::FetchResponse => fetch_response.into(),
            MessageCode::FetchWait => FetchWait {
                version: V,
                channel_id: None,
                ack_through: 1,
                max_messages: 10,
                max_bytes: 1000,
                timeout_ms: 30_000,
            }
            .into(),
            MessageCode::FetchWaitResponse => FetchWaitResponse(fetch_response).into(),
            MessageCode::ListChannels => ListChannels::new(V).into(),
            MessageCode::ListChannelsResponse => ListChannelsResponse {
                version: V,
                channels: vec![ChannelInfo {
                    channel_id: ChannelId([1; 16]),
                    peer: NodeId([2; 32]),
                    created_at_ms: 3,
                    queued: 4,
                }],
                legacy_queued: 5,
                more: false,
                next: None,
            }
            .into(),
            MessageCode::Ack => Ack {
                version: V,
                request_code: MessageCode::PushPost.as_u8(),
            }
            .into(),
            MessageCode::Error => Error::new(
                ErrorCode::NotFound,
                MessageCode::FileRequest.as_u8(),
                "no such post",
            )
            .into(),
        }
    }

    fn decode_words(code: MessageCode, bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut slice = bytes;
        let reader = capnp::serialize::read_message_from_flat_slice(
            &mut slice,
            reader_options(bytes.len() / 8),
        )?;
        Message::decode(code, &reader)
    }

    #[test]
    fn every_code_has_a_variant_that_round_trips() {
        for &code in MessageCode::ALL {
            let m = example(code);
            assert_eq!(m.code(), code, "{code}");
            assert_eq!(m.version(), V, "{code}");
            let bytes = capnp::serialize::write_message_to_words(&m.encode());
            let back = decode_words(code, &bytes).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(back.code(), code);
            assert_eq!(back, m, "{code}");

            // Through a frame, as on a stream.
            let framed = m.to_frame().unwrap();
            assert_eq!(framed[0], code.as_u8());
            let frame = frame::decode_frame(&framed).unwrap();
            assert_eq!(Message::from_frame(&frame).unwrap(), m, "{code}");
        }
    }

    #[test]
    fn fetch_response_codes_are_distinct() {
        let r = FetchResponse {
            version: V,
            messages: Vec::new(),
            more: false,
        };
        let a = Message::from(r.clone());
        let b = Message::from(FetchWaitResponse(r));
        assert_eq!(a.code(), MessageCode::FetchResponse);
        assert_eq!(b.code(), MessageCode::FetchWaitResponse);
        // Same bytes, decoded by code.
        let bytes = capnp::serialize::write_message_to_words(&a.encode());
        assert_eq!(bytes, capnp::serialize::write_message_to_words(&b.encode()));
        assert_eq!(
            decode_words(MessageCode::FetchWaitResponse, &bytes).unwrap(),
            b
        );
        assert_eq!(decode_words(MessageCode::FetchResponse, &bytes).unwrap(), a);
    }

    #[test]
    fn version_is_checked_first() {
        // Hello and Error are readable at any version (negotiation); every
        // other message at version 3 is refused before its fields are read.
        for &code in MessageCode::ALL {
            if matches!(code, MessageCode::Hello | MessageCode::Error) {
                continue;
            }
            let bytes = capnp::serialize::write_message_to_words(&example(code).encode());
            let mut words = bytes;
            // Root struct's data word starts after the segment table and the
            // root pointer; `version` is its first UInt16.
            words[16..18].copy_from_slice(&3u16.to_le_bytes());
            let e = decode_words(code, &words).unwrap_err();
            assert_eq!(
                e,
                DecodeError::UnsupportedVersion {
                    got: 3,
                    min: V,
                    max: V
                },
                "{code}"
            );
            assert_eq!(e.error_code(), ErrorCode::UnsupportedVersion);
        }
    }

    /// Rewrites a single-segment flat message so that its root struct is
    /// what a newer schema would produce: two extra data words (non-zero)
    /// after the known data section and two extra pointers after the known
    /// pointer section (one null, one pointing at an 8-byte Data blob appended
    /// to the segment).
    ///
    /// Inserting words in the middle of the segment shifts everything after
    /// the insertion points. The only pointers whose relative offsets change
    /// are the root struct's own pointers (they move by 2 data words, their
    /// targets by 2 + 2 words), so each of them gets +2 added to its offset.
    /// Every other pointer lives after both insertion points together with
    /// its target (a builder allocates children after their parent), so its
    /// offset stays valid.
    fn extend_root(flat: &[u8]) -> Vec<u8> {
        const EXTRA_DATA: usize = 2;
        const EXTRA_PTRS: usize = 2;
        let word = |i: usize, s: &[u8]| u64::from_le_bytes(s[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(
            u32::from_le_bytes(flat[0..4].try_into().unwrap()),
            0,
            "single segment expected"
        );
        let seg = &flat[8..];
        let words: Vec<u64> = (0..seg.len() / 8).map(|i| word(i, seg)).collect();
        let root = words[0];
        assert_eq!(root & 3, 0, "root must be a struct pointer");
        let offset = ((root as u32 as i32) >> 2) as isize;
        let data = ((root >> 32) & 0xffff) as usize;
        let ptrs = (root >> 48) as usize;
        let start = (1 + offset) as usize;
        let data_end = start + data;
        let ptrs_end = data_end + ptrs;

        let mut out: Vec<u64> = Vec::with_capacity(words.len() + EXTRA_DATA + EXTRA_PTRS + 1);
        let new_root = (root & 0xffff_ffff)
            | (((data + EXTRA_DATA) as u64) << 32)
            | (((ptrs + EXTRA_PTRS) as u64) << 48);
        out.push(new_root);
        out.extend_from_slice(&words[1..data_end]);
        out.extend((0..EXTRA_DATA).map(|i| 0xdead_beef_0000_0000 | i as u64));
        for &p in &words[data_end..ptrs_end] {
            let kind = p & 3;
            let zero_sized_struct = kind == 0 && (p >> 32) == 0;
            if p == 0 || kind > 1 || zero_sized_struct {
                out.push(p);
            } else {
                let off = ((p as u32 as i32) >> 2) + EXTRA_PTRS as i32;
                out.push((p & !0xffff_ffff) | (((off << 2) as u32) as u64) | kind);
            }
        }
        let extra_ptrs_at = out.len();
        out.push(0); // an unknown null pointer
        out.push(0); // an unknown Data pointer, patched below
        out.extend_from_slice(&words[ptrs_end..]);
        let blob_at = out.len();
        out.push(u64::from_le_bytes(*b"newfield"));
        let ptr_at = extra_ptrs_at + 1;
        let off = (blob_at - ptr_at - 1) as u64;
        // List pointer: kind 1, element size 2 (byte), 8 elements.
        out[ptr_at] = 1 | (off << 2) | (2 << 32) | (8 << 35);

        let mut bytes = Vec::with_capacity(8 + out.len() * 8);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&(out.len() as u32).to_le_bytes());
        for w in out {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn messages_with_unknown_fields_still_decode() {
        // Every top-level message, as if sent by a peer with a newer schema
        // whose root struct has more data and pointer fields.
        for &code in MessageCode::ALL {
            let m = example(code);
            let flat = capnp::serialize::write_message_to_words(&m.encode());
            let extended = extend_root(&flat);
            assert!(extended.len() > flat.len());
            let back = decode_words(code, &extended).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(back, m, "{code}");
        }

        // And the Ack case by construction: a root struct with 3 data words
        // and 2 pointers (one to a Text) decodes as Ack and ignores the rest.
        let words: [u64; 8] = [
            // Root struct pointer: offset 0, 3 data words, 2 pointers.
            (3 << 32) | (2 << 48),
            // version = 2, requestCode = 0x42 at byte 2.
            u64::from(V) | (0x42 << 16) | 0xffff_0000_0000_0000,
            u64::MAX,
            7,
            // Pointer 0: null. Pointer 1: a 6-byte Text two words ahead.
            0,
            1 | (1 << 2) | (2 << 32) | (6 << 35),
            0,
            u64::from_le_bytes(*b"extra\0\0\0"),
        ];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&(words.len() as u32).to_le_bytes());
        for w in words {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let m = decode_words(MessageCode::Ack, &bytes).unwrap();
        assert_eq!(
            m,
            Message::Ack(Ack {
                version: V,
                request_code: 0x42
            })
        );
    }
}
