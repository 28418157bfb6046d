//! Domain types of `schema/social.capnp`: pull sync, audience push, and the
//! author-signed updates (profile, delete, visibility, vouch, comment).

use distsoc_schema::social_capnp;

use super::content::{
    InlineComment, SignedAuthorRecentPosts, SignedDeleteRecord, SignedVisibilityUpdate, SyncPost,
};
use super::identity::{SignedProfile, SignedVouchGrant};
use super::signed::{Signed, SignedBody};
use crate::codec::{self, len32, write_ids, Struct, WireMessage};
use crate::codec::{optional, required, structs, write_structs};
use crate::codes::MessageCode;
use crate::error::DecodeError;
use crate::ids::PostingId;
use crate::sign::Purpose;

/// Most ids in a [`PullSyncRequest`].
pub const MAX_PULL_IDS: usize = 4096;
/// Most posts in a [`PullSyncResponse`]: the largest `limit` a request can
/// carry (`limit` is a UInt16; the schema gives no other bound).
pub const MAX_PULL_POSTS: usize = u16::MAX as usize;
/// Most delete records in a [`PullSyncResponse`].
pub const MAX_PULL_DELETES: usize = 256;
/// Longest note in an [`AudienceRequestBody`], bytes.
pub const MAX_AUDIENCE_MESSAGE_BYTES: usize = 1024;
/// Largest canonical [`AudienceRequestBody`] / [`AudienceResponseBody`],
/// bytes.
pub const MAX_AUDIENCE_BODY_BYTES: usize = 4096;

/// Code 0x40, request: "send me what I may see that you stored after cursor
/// N".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSyncRequest {
    /// Version of this message.
    pub version: u16,
    /// Followed authors plus the requester's own PostingIds and NodeId (at
    /// most [`MAX_PULL_IDS`]).
    pub ids: Vec<PostingId>,
    /// The responder's cursor from the previous pull; 0 for everything.
    pub since_seq: u64,
    /// Most posts wanted, as sent (0 = responder default; see
    /// [`Self::effective_limit`]).
    pub limit: u16,
}

impl PullSyncRequest {
    /// The number of posts to return: `limit`, with 0 meaning `default`,
    /// clamped to the responder's `max_pull_batch`.
    pub fn effective_limit(&self, default: u16, max_pull_batch: u16) -> u16 {
        let wanted = if self.limit == 0 { default } else { self.limit };
        wanted.min(max_pull_batch)
    }
}

impl Struct for PullSyncRequest {
    type Schema = social_capnp::pull_sync_request::Owned;

    fn read(r: social_capnp::pull_sync_request::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            ids: codec::id_list::<32>("ids", r.get_ids(), MAX_PULL_IDS)?
                .into_iter()
                .map(PostingId)
                .collect(),
            since_seq: r.get_since_seq(),
            limit: r.get_limit(),
        })
    }

    fn write(&self, mut b: social_capnp::pull_sync_request::Builder<'_>) {
        b.set_version(self.version);
        write_ids(b.reborrow().init_ids(len32(&self.ids)), &self.ids);
        b.set_since_seq(self.since_seq);
        b.set_limit(self.limit);
    }
}

impl WireMessage for PullSyncRequest {
    const CODE: MessageCode = MessageCode::PullSyncRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &social_capnp::pull_sync_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x41, response to [`PullSyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSyncResponse {
    /// Version of this message.
    pub version: u16,
    /// Matching posts in store order (at most [`MAX_PULL_POSTS`]; the
    /// requester may also hold them to its own `limit`).
    pub posts: Vec<SyncPost>,
    /// Cursor to send as `since_seq` next time.
    pub next_seq: u64,
    /// The responder stopped early; pull again at once.
    pub more: bool,
    /// Delete records by the matched authors (at most [`MAX_PULL_DELETES`]).
    pub deletes: Vec<SignedDeleteRecord>,
    /// Newest profiles held for ids in the request (at most
    /// [`MAX_PULL_PROFILES`]).
    pub profiles: Vec<SignedProfile>,
}

/// Most profiles in one [`PullSyncResponse`] (schema limit).
pub const MAX_PULL_PROFILES: usize = 64;

impl Struct for PullSyncResponse {
    type Schema = social_capnp::pull_sync_response::Owned;

    fn read(r: social_capnp::pull_sync_response::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            posts: structs("posts", r.get_posts(), MAX_PULL_POSTS)?,
            next_seq: r.get_next_seq(),
            more: r.get_more(),
            deletes: structs("deletes", r.get_deletes(), MAX_PULL_DELETES)?,
            profiles: structs("profiles", r.get_profiles(), MAX_PULL_PROFILES)?,
        })
    }

    fn write(&self, mut b: social_capnp::pull_sync_response::Builder<'_>) {
        b.set_version(self.version);
        write_structs(b.reborrow().init_posts(len32(&self.posts)), &self.posts);
        b.set_next_seq(self.next_seq);
        b.set_more(self.more);
        write_structs(
            b.reborrow().init_deletes(len32(&self.deletes)),
            &self.deletes,
        );
        write_structs(
            b.reborrow().init_profiles(len32(&self.profiles)),
            &self.profiles,
        );
    }
}

impl WireMessage for PullSyncResponse {
    const CODE: MessageCode = MessageCode::PullSyncResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &social_capnp::pull_sync_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Code 0x42, push: a public post delivered to an approved audience member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPost {
    /// Version of this message.
    pub version: u16,
    /// The post (required).
    pub post: SyncPost,
    /// The author's updated recent-post list, if sent.
    pub recent: Option<SignedAuthorRecentPosts>,
}

impl Struct for PushPost {
    type Schema = social_capnp::push_post::Owned;

    fn read(r: social_capnp::push_post::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            post: required("post", r.has_post(), r.get_post(), SyncPost::read)?,
            recent: optional(
                r.has_recent(),
                r.get_recent(),
                SignedAuthorRecentPosts::read,
            )?,
        })
    }

    fn write(&self, mut b: social_capnp::push_post::Builder<'_>) {
        b.set_version(self.version);
        self.post.write(b.reborrow().init_post());
        if let Some(recent) = &self.recent {
            recent.write(b.reborrow().init_recent());
        }
    }
}

impl WireMessage for PushPost {
    const CODE: MessageCode = MessageCode::PushPost;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &social_capnp::push_post::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// `AudienceRequestBody`: a request to join an author's audience, signed by
/// the requester (purpose `audience-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRequestBody {
    /// The requester; signs the request.
    pub requester: PostingId,
    /// The author whose audience is asked for.
    pub author: PostingId,
    /// A note to the author (at most [`MAX_AUDIENCE_MESSAGE_BYTES`]).
    pub message: String,
    /// When the request was made, ms since epoch.
    pub created_at_ms: u64,
}

impl Struct for AudienceRequestBody {
    type Schema = social_capnp::audience_request_body::Owned;

    fn read(r: social_capnp::audience_request_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            requester: PostingId(codec::id("requester", r.get_requester())?),
            author: PostingId(codec::id("author", r.get_author())?),
            message: codec::text("message", r.get_message(), MAX_AUDIENCE_MESSAGE_BYTES)?,
            created_at_ms: r.get_created_at_ms(),
        })
    }

    fn write(&self, mut b: social_capnp::audience_request_body::Builder<'_>) {
        b.set_requester(self.requester.as_bytes());
        b.set_author(self.author.as_bytes());
        b.set_message(self.message.as_str());
        b.set_created_at_ms(self.created_at_ms);
    }
}

impl SignedBody for AudienceRequestBody {
    const PURPOSE: Purpose = Purpose::AudienceRequest;
    const MAX_BYTES: usize = MAX_AUDIENCE_BODY_BYTES;
    const FIELD: &'static str = "request";
    fn signer(&self) -> PostingId {
        self.requester
    }
}

/// Code 0x43, push: a signed request to join an author's audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRequest {
    /// Version of this message.
    pub version: u16,
    /// The signed request (signature not yet verified after decoding).
    pub request: Signed<AudienceRequestBody>,
}

impl Struct for AudienceRequest {
    type Schema = social_capnp::audience_request::Owned;

    fn read(r: social_capnp::audience_request::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            request: Signed::decode(r.get_request(), r.get_signature())?,
        })
    }

    fn write(&self, mut b: social_capnp::audience_request::Builder<'_>) {
        b.set_version(self.version);
        b.set_request(self.request.bytes());
        b.set_signature(self.request.signature());
    }
}

impl WireMessage for AudienceRequest {
    const CODE: MessageCode = MessageCode::AudienceRequest;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &social_capnp::audience_request::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// `AudienceDecision`: an author's answer to an audience request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudienceDecision {
    /// The requester joins the audience.
    Approved,
    /// The request is refused.
    Denied,
    /// A previously approved member is removed.
    Revoked,
}

impl AudienceDecision {
    /// From the generated enum; unknown values are
    /// [`DecodeError::UnknownVariant`].
    pub fn from_wire(
        d: Result<social_capnp::AudienceDecision, capnp::NotInSchema>,
    ) -> Result<Self, DecodeError> {
        match d {
            Ok(social_capnp::AudienceDecision::Approved) => Ok(Self::Approved),
            Ok(social_capnp::AudienceDecision::Denied) => Ok(Self::Denied),
            Ok(social_capnp::AudienceDecision::Revoked) => Ok(Self::Revoked),
            Err(_) => Err(DecodeError::UnknownVariant("decision")),
        }
    }

    /// To the generated enum.
    pub fn to_wire(self) -> social_capnp::AudienceDecision {
        match self {
            Self::Approved => social_capnp::AudienceDecision::Approved,
            Self::Denied => social_capnp::AudienceDecision::Denied,
            Self::Revoked => social_capnp::AudienceDecision::Revoked,
        }
    }
}

/// `AudienceResponseBody`: an author's decision, signed by the author
/// (purpose `audience-response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceResponseBody {
    /// The author; signs the decision.
    pub author: PostingId,
    /// The requester the decision is about.
    pub requester: PostingId,
    /// The decision.
    pub decision: AudienceDecision,
    /// When the author decided, ms since epoch.
    pub decided_at_ms: u64,
}

impl Struct for AudienceResponseBody {
    type Schema = social_capnp::audience_response_body::Owned;

    fn read(r: social_capnp::audience_response_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            author: PostingId(codec::id("author", r.get_author())?),
            requester: PostingId(codec::id("requester", r.get_requester())?),
            decision: AudienceDecision::from_wire(r.get_decision())?,
            decided_at_ms: r.get_decided_at_ms(),
        })
    }

    fn write(&self, mut b: social_capnp::audience_response_body::Builder<'_>) {
        b.set_author(self.author.as_bytes());
        b.set_requester(self.requester.as_bytes());
        b.set_decision(self.decision.to_wire());
        b.set_decided_at_ms(self.decided_at_ms);
    }
}

impl SignedBody for AudienceResponseBody {
    const PURPOSE: Purpose = Purpose::AudienceResponse;
    const MAX_BYTES: usize = MAX_AUDIENCE_BODY_BYTES;
    const FIELD: &'static str = "response";
    fn signer(&self) -> PostingId {
        self.author
    }
}

/// Code 0x44, push: an author's signed decision on an audience request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceResponse {
    /// Version of this message.
    pub version: u16,
    /// The signed decision (signature not yet verified after decoding).
    pub response: Signed<AudienceResponseBody>,
}

impl Struct for AudienceResponse {
    type Schema = social_capnp::audience_response::Owned;

    fn read(r: social_capnp::audience_response::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.get_version(),
            response: Signed::decode(r.get_response(), r.get_signature())?,
        })
    }

    fn write(&self, mut b: social_capnp::audience_response::Builder<'_>) {
        b.set_version(self.version);
        b.set_response(self.response.bytes());
        b.set_signature(self.response.signature());
    }
}

impl WireMessage for AudienceResponse {
    const CODE: MessageCode = MessageCode::AudienceResponse;
    fn version(&self) -> u16 {
        self.version
    }
    fn read_version(r: &social_capnp::audience_response::Reader<'_>) -> u16 {
        r.get_version()
    }
}

/// Defines a push whose only content is one required struct field.
macro_rules! single_field_push {
    (
        $(#[$doc:meta])*
        $name:ident, $schema:ident, $code:ident, $field:ident: $ty:ty,
        $wire_name:literal, $has:ident, $get:ident, $init:ident, $field_doc:literal
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// Version of this message.
            pub version: u16,
            #[doc = $field_doc]
            pub $field: $ty,
        }

        impl Struct for $name {
            type Schema = social_capnp::$schema::Owned;

            fn read(r: social_capnp::$schema::Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self {
                    version: r.get_version(),
                    $field: required($wire_name, r.$has(), r.$get(), <$ty>::read)?,
                })
            }

            fn write(&self, mut b: social_capnp::$schema::Builder<'_>) {
                b.set_version(self.version);
                self.$field.write(b.reborrow().$init());
            }
        }

        impl WireMessage for $name {
            const CODE: MessageCode = MessageCode::$code;
            fn version(&self) -> u16 {
                self.version
            }
            fn read_version(r: &social_capnp::$schema::Reader<'_>) -> u16 {
                r.get_version()
            }
        }
    };
}

single_field_push!(
    /// Code 0x50, push: a new public profile.
    ProfileUpdate, profile_update, ProfileUpdate, profile: SignedProfile,
    "profile", has_profile, get_profile, init_profile, "The signed profile (required)."
);
single_field_push!(
    /// Code 0x51, push: an author's delete request.
    DeleteRecord, delete_record, DeleteRecord, record: SignedDeleteRecord,
    "record", has_record, get_record, init_record, "The signed delete record (required)."
);
single_field_push!(
    /// Code 0x52, push: new visibility for an encrypted post.
    VisibilityUpdate, visibility_update, VisibilityUpdate, update: SignedVisibilityUpdate,
    "update", has_update, get_update, init_update, "The signed update (required)."
);
single_field_push!(
    /// Code 0x53, push: a friend-of-friend vouch key for its grantee.
    VouchGrant, vouch_grant, VouchGrant, grant: SignedVouchGrant,
    "grant", has_grant, get_grant, init_grant, "The sealed, signed grant (required)."
);
single_field_push!(
    /// Code 0x54, push: a new comment on a post.
    Comment, comment, Comment, comment: InlineComment,
    "comment", has_comment, get_comment, init_comment, "The comment (required)."
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::super::discovery::strategies::*;
    use super::super::files::fixtures::*;
    use super::super::identity::{PublicProfile, VouchGrantBody};
    use super::*;
    use crate::envelope::WRAPPED_LEN;
    use crate::error::{ErrorCode, WireCode};
    use crate::ids::{BlobId, NodeId, PostId};

    fn audience_request_body(
        seed: u8,
        author: PostingId,
        message: String,
        t: u64,
    ) -> Signed<AudienceRequestBody> {
        Signed::sign(
            AudienceRequestBody {
                requester: super::super::files::fixtures::author(seed),
                author,
                message,
                created_at_ms: t,
            },
            &key(seed),
        )
    }

    fn profile(seed: u8, name: &str, anchors: usize, t: u64) -> SignedProfile {
        Signed::sign(
            PublicProfile {
                posting_id: author(seed),
                display_name: name.into(),
                bio: format!("bio of {name}"),
                anchors: (0..anchors).map(|i| NodeId([i as u8; 32])).collect(),
                avatar: anchors.is_multiple_of(2).then_some(BlobId([seed; 32])),
                updated_at_ms: t,
                network_id: anchors
                    .is_multiple_of(3)
                    .then_some(NodeId([seed ^ 0xff; 32])),
            },
            &key(seed),
        )
    }

    fn vouch_grant(seed: u8, grantee: PostingId, t: u64) -> SignedVouchGrant {
        // Arbitrary sealed bytes: decoding does not open the grant.
        Signed::sign(
            VouchGrantBody {
                grantor: author(seed),
                grantee,
                ephemeral_key: [seed; 32],
                sealed_key: [seed.wrapping_add(1); WRAPPED_LEN],
                created_at_ms: t,
            },
            &key(seed),
        )
    }

    fn pull_sync_request() -> impl Strategy<Value = PullSyncRequest> {
        (
            version(),
            prop::collection::vec(posting_id(), 0..8),
            any::<u64>(),
            any::<u16>(),
        )
            .prop_map(|(version, ids, since_seq, limit)| PullSyncRequest {
                version,
                ids,
                since_seq,
                limit,
            })
    }

    fn pull_sync_response() -> impl Strategy<Value = PullSyncResponse> {
        (
            version(),
            prop::collection::vec(sync_post_strategy(), 0..3),
            any::<u64>(),
            any::<bool>(),
            prop::collection::vec(delete_strategy(), 0..3),
            prop::collection::vec((any::<u8>(), "[a-z]{0,12}", 0usize..3, any::<u64>()), 0..3),
        )
            .prop_map(|(version, posts, next_seq, more, deletes, profiles)| {
                PullSyncResponse {
                    version,
                    posts,
                    next_seq,
                    more,
                    deletes,
                    profiles: profiles
                        .into_iter()
                        .map(|(seed, name, anchors, t)| profile(seed, &name, anchors, t))
                        .collect(),
                }
            })
    }

    fn push_post() -> impl Strategy<Value = PushPost> {
        (
            version(),
            sync_post_strategy(),
            prop::option::of(recent_strategy()),
        )
            .prop_map(|(version, post, recent)| PushPost {
                version,
                post,
                recent,
            })
    }

    fn audience_request_body_strategy() -> impl Strategy<Value = AudienceRequestBody> {
        (posting_id(), posting_id(), text(), any::<u64>()).prop_map(
            |(requester, author, message, created_at_ms)| AudienceRequestBody {
                requester,
                author,
                message,
                created_at_ms,
            },
        )
    }

    fn decision() -> impl Strategy<Value = AudienceDecision> {
        prop_oneof![
            Just(AudienceDecision::Approved),
            Just(AudienceDecision::Denied),
            Just(AudienceDecision::Revoked)
        ]
    }

    fn audience_response_body_strategy() -> impl Strategy<Value = AudienceResponseBody> {
        (posting_id(), posting_id(), decision(), any::<u64>()).prop_map(
            |(author, requester, decision, decided_at_ms)| AudienceResponseBody {
                author,
                requester,
                decision,
                decided_at_ms,
            },
        )
    }

    fn audience_request() -> impl Strategy<Value = AudienceRequest> {
        (version(), any::<u8>(), posting_id(), text(), any::<u64>()).prop_map(
            |(version, seed, author, m, t)| AudienceRequest {
                version,
                request: audience_request_body(seed, author, m, t),
            },
        )
    }

    fn audience_response() -> impl Strategy<Value = AudienceResponse> {
        (
            version(),
            any::<u8>(),
            posting_id(),
            decision(),
            any::<u64>(),
        )
            .prop_map(|(version, seed, requester, decision, decided_at_ms)| {
                AudienceResponse {
                    version,
                    response: Signed::sign(
                        AudienceResponseBody {
                            author: author(seed),
                            requester,
                            decision,
                            decided_at_ms,
                        },
                        &key(seed),
                    ),
                }
            })
    }

    fn profile_update() -> impl Strategy<Value = ProfileUpdate> {
        (version(), any::<u8>(), text(), 0usize..4, any::<u64>()).prop_map(
            |(version, seed, name, n, t)| ProfileUpdate {
                version,
                profile: profile(seed, &name, n, t),
            },
        )
    }

    fn delete_record() -> impl Strategy<Value = DeleteRecord> {
        (version(), delete_strategy())
            .prop_map(|(version, record)| DeleteRecord { version, record })
    }

    fn visibility_update_msg() -> impl Strategy<Value = VisibilityUpdate> {
        (version(), any::<u8>(), post_id(), any::<u64>()).prop_map(|(version, seed, p, t)| {
            VisibilityUpdate {
                version,
                update: visibility_update(seed, p, t),
            }
        })
    }

    fn vouch_grant_msg() -> impl Strategy<Value = VouchGrant> {
        (version(), any::<u8>(), posting_id(), any::<u64>()).prop_map(
            |(version, seed, grantee, t)| VouchGrant {
                version,
                grant: vouch_grant(seed, grantee, t),
            },
        )
    }

    fn comment_msg() -> impl Strategy<Value = Comment> {
        (version(), comment_strategy()).prop_map(|(version, comment)| Comment { version, comment })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn pull_sync_request_round_trips(v in pull_sync_request(), d in any::<u16>(), m in any::<u16>()) {
            assert_round_trip(&v)?;
            prop_assert!(v.effective_limit(d, m) <= m);
        }
        #[test]
        fn pull_sync_response_round_trips(v in pull_sync_response()) { assert_round_trip(&v)?; }
        #[test]
        fn push_post_round_trips(v in push_post()) { assert_round_trip(&v)?; }
        #[test]
        fn audience_request_body_round_trips(v in audience_request_body_strategy()) { assert_round_trip(&v)?; }
        #[test]
        fn audience_request_round_trips(v in audience_request()) {
            assert_round_trip(&v)?;
            prop_assert!(v.request.verify().is_ok());
        }
        #[test]
        fn audience_response_body_round_trips(v in audience_response_body_strategy()) { assert_round_trip(&v)?; }
        #[test]
        fn audience_response_round_trips(v in audience_response()) {
            assert_round_trip(&v)?;
            prop_assert!(v.response.verify().is_ok());
        }
        #[test]
        fn profile_update_round_trips(v in profile_update()) { assert_round_trip(&v)?; }
        #[test]
        fn delete_record_round_trips(v in delete_record()) { assert_round_trip(&v)?; }
        #[test]
        fn visibility_update_round_trips(v in visibility_update_msg()) { assert_round_trip(&v)?; }
        #[test]
        fn vouch_grant_round_trips(v in vouch_grant_msg()) { assert_round_trip(&v)?; }
        #[test]
        fn comment_round_trips(v in comment_msg()) { assert_round_trip(&v)?; }
    }

    #[test]
    fn pull_limits() {
        let req = PullSyncRequest {
            version: 2,
            ids: vec![PostingId([1; 32]); MAX_PULL_IDS],
            since_seq: 0,
            limit: 0,
        };
        assert_eq!(wire_round_trip(&req).unwrap(), req);
        assert_eq!(req.effective_limit(100, 500), 100);
        assert_eq!(
            PullSyncRequest {
                limit: 1000,
                ..req.clone()
            }
            .effective_limit(100, 500),
            500
        );
        assert_eq!(
            PullSyncRequest {
                limit: 20,
                ..req.clone()
            }
            .effective_limit(100, 500),
            20
        );
        let mut over = req;
        over.ids.push(PostingId([2; 32]));
        let e = wire_round_trip(&over).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooMany {
                field: "ids",
                max: MAX_PULL_IDS,
                got: MAX_PULL_IDS + 1
            }
        );
        assert_eq!(e.error_code(), ErrorCode::TooLarge);

        let resp = PullSyncResponse {
            version: 2,
            posts: Vec::new(),
            next_seq: 1,
            more: false,
            deletes: vec![delete(1, PostId([1; 32]), None); MAX_PULL_DELETES + 1],
            profiles: Vec::new(),
        };
        assert!(matches!(
            wire_round_trip(&resp),
            Err(DecodeError::TooMany {
                field: "deletes",
                max: 256,
                ..
            })
        ));
    }

    #[test]
    fn audience_limits() {
        let ok = AudienceRequest {
            version: 2,
            request: audience_request_body(1, author(2), "x".repeat(MAX_AUDIENCE_MESSAGE_BYTES), 1),
        };
        assert_eq!(wire_round_trip(&ok).unwrap(), ok);
        let long = AudienceRequest {
            version: 2,
            request: audience_request_body(
                1,
                author(2),
                "x".repeat(MAX_AUDIENCE_MESSAGE_BYTES + 1),
                1,
            ),
        };
        let e = wire_round_trip(&long).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooLong {
                field: "message",
                max: MAX_AUDIENCE_MESSAGE_BYTES,
                got: MAX_AUDIENCE_MESSAGE_BYTES + 1
            }
        );
        assert_eq!(e.error_code(), ErrorCode::TooLarge);

        // A short signature.
        let mut b = codec::build(&ok);
        b.get_root::<social_capnp::audience_request::Builder<'_>>()
            .unwrap()
            .set_signature(&[0; 63]);
        assert!(matches!(
            codec::reread::<AudienceRequest>(&b),
            Err(DecodeError::BadLength {
                field: "signature",
                ..
            })
        ));

        // Request bytes over 4096 are refused before decoding the body.
        let mut b = codec::build(&ok);
        b.get_root::<social_capnp::audience_request::Builder<'_>>()
            .unwrap()
            .set_request(&[0; 4104]);
        let e = codec::reread::<AudienceRequest>(&b).unwrap_err();
        assert_eq!(
            e,
            DecodeError::TooLong {
                field: "request",
                max: MAX_AUDIENCE_BODY_BYTES,
                got: 4104
            }
        );

        // A decision from a newer schema.
        let mut b = capnp::message::Builder::new_default();
        let mut body = b.init_root::<social_capnp::audience_response_body::Builder<'_>>();
        body.set_author(&[1; 32]);
        body.set_requester(&[2; 32]);
        let mut words = capnp::serialize::write_message_to_words(&b);
        // Segment table, root pointer, then the data word: decision at bytes 0..2.
        words[16] = 9;
        let mut slice = words.as_slice();
        let reader =
            capnp::serialize::read_message_from_flat_slice(&mut slice, Default::default()).unwrap();
        let root: social_capnp::audience_response_body::Reader<'_> = reader.get_root().unwrap();
        assert_eq!(
            AudienceResponseBody::read(root).unwrap_err(),
            DecodeError::UnknownVariant("decision")
        );
    }

    #[test]
    fn required_fields() {
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<social_capnp::push_post::Builder<'_>>()
            .set_version(2);
        assert_eq!(
            codec::reread::<PushPost>(&b).unwrap_err(),
            DecodeError::Missing("post")
        );
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<social_capnp::profile_update::Builder<'_>>()
            .set_version(2);
        assert_eq!(
            codec::reread::<ProfileUpdate>(&b).unwrap_err(),
            DecodeError::Missing("profile")
        );
        let mut b = capnp::message::Builder::new_default();
        b.init_root::<social_capnp::comment::Builder<'_>>()
            .set_version(2);
        let e = codec::reread::<Comment>(&b).unwrap_err();
        assert_eq!(e, DecodeError::Missing("comment"));
        assert_eq!(e.error_code(), ErrorCode::Malformed);
    }

    #[test]
    fn version_out_of_range_is_unsupported() {
        let m = DeleteRecord {
            version: 3,
            record: delete(1, PostId([1; 32]), None),
        };
        let e = read_as_message(&m).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnsupportedVersion {
                got: 3,
                min: 2,
                max: 2
            }
        );
        assert_eq!(e.error_code(), ErrorCode::UnsupportedVersion);
        let ok = DeleteRecord { version: 2, ..m };
        assert_eq!(read_as_message(&ok).unwrap(), ok);
    }
}
