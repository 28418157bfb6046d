//! Struct layouts, as the schema compiler assigns them (see `schema/*.capnp`).

// ---------------------------------------------------------------------------
// Struct layouts, as the schema compiler assigns them (see schema/*.capnp).

/// Where and how one schema field is stored.
#[derive(Clone, Copy)]
pub(super) enum F {
    /// `UInt16` at a byte offset of the data section.
    U16(usize),
    /// `UInt32` at a byte offset.
    U32(usize),
    /// `UInt64` at a byte offset.
    U64(usize),
    /// `Bool` at a bit offset.
    Bool(usize),
    /// An enum (`UInt16` at a byte offset) and its enumerant names in order.
    Enum(usize, &'static [&'static str]),
    /// `Data` at a pointer index.
    Data(usize),
    /// `Text` at a pointer index (UTF-8 plus a NUL byte).
    Text(usize),
    /// A struct at a pointer index.
    Struct(usize, &'static L),
    /// `List(Struct)` at a pointer index.
    Structs(usize, &'static L),
    /// `List(Data)` at a pointer index.
    DataList(usize),
    /// `List(Text)` at a pointer index (each element UTF-8 plus a NUL).
    TextList(usize),
    /// A named union group sharing the enclosing struct's sections.
    Group(&'static [(&'static str, F)]),
    /// A `Void` union arm: discriminant byte offset and value.
    ArmVoid(usize, u16),
    /// A struct union arm: discriminant byte offset, value, pointer index.
    ArmStruct(usize, u16, usize, &'static L),
}

/// A struct layout: data words, pointer count and fields by schema name.
pub(super) struct L {
    pub(super) data: usize,
    pub(super) ptrs: usize,
    pub(super) fields: &'static [(&'static str, F)],
}

static ATTACHMENT: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("blobId", F::Data(0)),
        ("mimeType", F::Text(1)),
        ("sizeBytes", F::U32(0)),
        ("name", F::Text(2)),
    ],
};
static DM_ROTATION: L = L {
    data: 0,
    ptrs: 1,
    fields: &[("nextPostingId", F::Data(0))],
};
static DM_GROUP: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("threadId", F::Data(0)), ("members", F::DataList(1))],
};
static DM_ARCHIVE_ENTRY: L = L {
    data: 2,
    ptrs: 4,
    fields: &[
        ("peer", F::Data(0)),
        ("outgoing", F::Bool(0)),
        ("createdAtMs", F::U64(8)),
        ("text", F::Text(1)),
        ("dedup", F::Data(2)),
        ("group", F::Struct(3, &DM_GROUP)),
    ],
};
static DM_ARCHIVE_CHUNK: L = L {
    data: 0,
    ptrs: 1,
    fields: &[("entries", F::Structs(0, &DM_ARCHIVE_ENTRY))],
};
static POST_BODY: L = L {
    data: 0,
    ptrs: 5,
    fields: &[
        ("text", F::Text(0)),
        ("attachments", F::Structs(1, &ATTACHMENT)),
        ("rotation", F::Struct(2, &DM_ROTATION)),
        ("archive", F::Struct(3, &DM_ARCHIVE_CHUNK)),
        ("group", F::Struct(4, &DM_GROUP)),
    ],
};
static SEALED_BODY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("nonce", F::Data(0)), ("ciphertext", F::Data(1))],
};
pub(super) static POST: L = L {
    data: 2,
    ptrs: 4,
    fields: &[
        ("author", F::Data(0)),
        ("createdAtMs", F::U64(0)),
        (
            "content",
            F::Group(&[
                ("plain", F::ArmStruct(8, 0, 1, &POST_BODY)),
                ("sealed", F::ArmStruct(8, 1, 1, &SEALED_BODY)),
            ]),
        ),
        ("replyTo", F::Data(2)),
        ("replaces", F::Data(3)),
    ],
};
static WRAPPED_KEY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("recipient", F::Data(0)), ("wrapped", F::Data(1))],
};
static ENCRYPTED_VISIBILITY: L = L {
    data: 0,
    ptrs: 2,
    fields: &[
        ("ephemeralKey", F::Data(0)),
        ("recipients", F::Structs(1, &WRAPPED_KEY)),
    ],
};
static POST_VISIBILITY: L = L {
    data: 1,
    ptrs: 1,
    fields: &[
        ("public", F::ArmVoid(0, 0)),
        ("encrypted", F::ArmStruct(0, 1, 0, &ENCRYPTED_VISIBILITY)),
    ],
};
static WRAP_SLOT: L = L {
    data: 0,
    ptrs: 2,
    fields: &[("tag", F::Data(0)), ("sealed", F::Data(1))],
};
pub(super) const COMMENT_POLICIES: &[&str] =
    &["public", "followersOnly", "none", "friendsOfFriends"];
pub(super) static POST_HEADER: L = L {
    data: 2,
    ptrs: 4,
    fields: &[
        ("postId", F::Data(0)),
        ("author", F::Data(1)),
        ("commentPolicy", F::Enum(0, COMMENT_POLICIES)),
        ("pubPost", F::Data(2)),
        ("wrapSlots", F::Structs(3, &WRAP_SLOT)),
        ("updatedAtMs", F::U64(8)),
    ],
};
pub(super) static COMMENT_BODY: L = L {
    data: 1,
    ptrs: 4,
    fields: &[
        ("parentPostId", F::Data(0)),
        ("author", F::Data(1)),
        ("createdAtMs", F::U64(0)),
        ("text", F::Text(2)),
        ("replyTo", F::Data(3)),
    ],
};
static DELETE_RECORD_BODY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("postId", F::Data(0)),
        ("author", F::Data(1)),
        ("deletedAtMs", F::U64(0)),
        ("replacedBy", F::Data(2)),
    ],
};
static VISIBILITY_UPDATE_BODY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("postId", F::Data(0)),
        ("author", F::Data(1)),
        ("visibility", F::Struct(2, &POST_VISIBILITY)),
        ("updatedAtMs", F::U64(0)),
    ],
};
pub(super) const HINTS: &[&str] = &["public", "encrypted"];
static RECENT_POST: L = L {
    data: 2,
    ptrs: 1,
    fields: &[
        ("postId", F::Data(0)),
        ("createdAtMs", F::U64(0)),
        ("hint", F::Enum(8, HINTS)),
    ],
};
static AUTHOR_RECENT_POSTS: L = L {
    data: 2,
    ptrs: 2,
    fields: &[
        ("author", F::Data(0)),
        ("seq", F::U64(0)),
        ("updatedAtMs", F::U64(8)),
        ("posts", F::Structs(1, &RECENT_POST)),
    ],
};
static HEART_BODY: L = L {
    data: 1,
    ptrs: 2,
    fields: &[
        ("postId", F::Data(0)),
        ("reactor", F::Data(1)),
        ("createdAtMs", F::U64(0)),
    ],
};
static PUBLIC_PROFILE: L = L {
    data: 1,
    ptrs: 6,
    fields: &[
        ("postingId", F::Data(0)),
        ("displayName", F::Text(1)),
        ("bio", F::Text(2)),
        ("anchors", F::DataList(3)),
        ("avatar", F::Data(4)),
        ("updatedAtMs", F::U64(0)),
        ("networkId", F::Data(5)),
    ],
};
static POSTING_IDENTITY: L = L {
    data: 2,
    ptrs: 3,
    fields: &[
        ("postingId", F::Data(0)),
        ("secretSeed", F::Data(1)),
        ("displayName", F::Text(2)),
        ("createdAtMs", F::U64(0)),
        ("ephemeral", F::Bool(64)),
    ],
};
static GROUP_KEY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("groupId", F::Data(0)),
        ("secretSeed", F::Data(1)),
        ("epoch", F::U32(0)),
        ("name", F::Text(2)),
    ],
};
static GROUP_KEY_WRAP_BODY: L = L {
    data: 2,
    ptrs: 5,
    fields: &[
        ("groupId", F::Data(0)),
        ("epoch", F::U32(0)),
        ("admin", F::Data(1)),
        ("ephemeralKey", F::Data(2)),
        ("members", F::DataList(3)),
        ("wraps", F::Structs(4, &WRAPPED_KEY)),
        ("createdAtMs", F::U64(8)),
    ],
};
static VOUCH_KEY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("key", F::Data(0)),
        ("grantor", F::Data(1)),
        ("grantee", F::Data(2)),
        ("createdAtMs", F::U64(0)),
    ],
};
static VOUCH_GRANT_BODY: L = L {
    data: 1,
    ptrs: 4,
    fields: &[
        ("grantor", F::Data(0)),
        ("grantee", F::Data(1)),
        ("ephemeralKey", F::Data(2)),
        ("sealedKey", F::Data(3)),
        ("createdAtMs", F::U64(0)),
    ],
};
static BUNDLE_FOLLOW: L = L {
    data: 1,
    ptrs: 2,
    fields: &[
        ("postingId", F::Data(0)),
        ("followedAtMs", F::U64(0)),
        ("persona", F::Data(1)),
    ],
};
static BUNDLE_CIRCLE: L = L {
    data: 1,
    ptrs: 2,
    fields: &[
        ("name", F::Text(0)),
        ("createdAtMs", F::U64(0)),
        ("members", F::DataList(1)),
    ],
};
static IDENTITY_BUNDLE: L = L {
    data: 2,
    ptrs: 9,
    fields: &[
        ("version", F::U16(0)),
        ("networkSeed", F::Data(0)),
        ("postingIdentities", F::Structs(1, &POSTING_IDENTITY)),
        ("defaultPostingId", F::Data(2)),
        ("vouchKeys", F::Structs(3, &VOUCH_KEY)),
        ("groupKeys", F::Structs(4, &GROUP_KEY)),
        ("createdAtMs", F::U64(8)),
        ("follows", F::Structs(5, &BUNDLE_FOLLOW)),
        ("circles", F::Structs(6, &BUNDLE_CIRCLE)),
        ("dmThreads", F::Structs(7, &BUNDLE_DM_THREAD)),
        ("archiveAnchors", F::TextList(8)),
    ],
};
static BUNDLE_DM_THREAD: L = L {
    data: 3,
    ptrs: 2,
    fields: &[
        ("peer", F::Data(0)),
        ("outgoing", F::Bool(0)),
        ("n", F::U64(8)),
        ("atMs", F::U64(16)),
        ("seed", F::Data(1)),
    ],
};
static KDF_PARAMS: L = L {
    data: 2,
    ptrs: 1,
    fields: &[
        ("kdf", F::Enum(0, &["argon2id"])),
        ("memoryKib", F::U32(4)),
        ("iterations", F::U32(8)),
        ("parallelism", F::U32(12)),
        ("salt", F::Data(0)),
    ],
};
static AUDIENCE_REQUEST_BODY: L = L {
    data: 1,
    ptrs: 3,
    fields: &[
        ("requester", F::Data(0)),
        ("author", F::Data(1)),
        ("message", F::Text(2)),
        ("createdAtMs", F::U64(0)),
    ],
};
static AUDIENCE_RESPONSE_BODY: L = L {
    data: 2,
    ptrs: 2,
    fields: &[
        ("author", F::Data(0)),
        ("requester", F::Data(1)),
        ("decision", F::Enum(0, &["approved", "denied", "revoked"])),
        ("decidedAtMs", F::U64(8)),
    ],
};

pub(super) fn layout(ty: &str) -> &'static L {
    match ty {
        "Post" => &POST,
        "PostBody" => &POST_BODY,
        "PostHeader" => &POST_HEADER,
        "CommentBody" => &COMMENT_BODY,
        "DeleteRecordBody" => &DELETE_RECORD_BODY,
        "VisibilityUpdateBody" => &VISIBILITY_UPDATE_BODY,
        "PostVisibility" => &POST_VISIBILITY,
        "AuthorRecentPosts" => &AUTHOR_RECENT_POSTS,
        "HeartBody" => &HEART_BODY,
        "PublicProfile" => &PUBLIC_PROFILE,
        "GroupKeyWrapBody" => &GROUP_KEY_WRAP_BODY,
        "VouchGrantBody" => &VOUCH_GRANT_BODY,
        "AudienceRequestBody" => &AUDIENCE_REQUEST_BODY,
        "AudienceResponseBody" => &AUDIENCE_RESPONSE_BODY,
        "IdentityBundle" => &IDENTITY_BUNDLE,
        "KdfParams" => &KDF_PARAMS,
        other => panic!("no layout for {other}"),
    }
}
