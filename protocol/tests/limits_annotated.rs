#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every limit annotated in the schema is enforced by this crate at exactly
//! its value.
//!
//! The limits are read as data from `distsoc_schema::limits` (generated from
//! the `$maxBytes`, `$maxItems`, `$maxItemBytes`, `$exactBytes` and
//! `$frameCap` annotations of `schema/*.capnp`), never restated here. For each annotated field the test
//! builds a message whose root is the field's struct, sets the field by name
//! through the capnp runtime's reflection (`capnp::dynamic_struct`) to the
//! limit and to one more, and runs this crate's decoder for that struct
//! ([`Struct::read`]): one more is refused as `TooLong`/`TooMany` naming the
//! field with exactly the annotated maximum (wire error `tooLarge`; for
//! `$exactBytes`, `BadLength` with that length, wire error `malformed`), the
//! limit itself passes that check. Other required fields of the struct are filled in
//! from the decoder's own complaints (`Missing`, `BadLength`) until the
//! decoder reaches the field under test.
//!
//! The named constants of this crate are pinned to the annotations too
//! ([`constants_equal_annotations`]), and every code's frame cap is enforced by
//! [`distsoc_protocol::frame`]'s decoder ([`every_frame_cap_is_enforced_exactly`]).

use capnp::dynamic_value;
use capnp::introspect::TypeVariant;
use capnp::message::{Builder, HeapAllocator};
use capnp::traits::Owned;
use distsoc_protocol::codec::Struct;
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::{DecodeError, ErrorCode, WireCode};
use distsoc_protocol::frame::{decode_frame, FrameError};
use distsoc_protocol::limits;
use distsoc_protocol::messages::{
    content, discovery, files, identity, mailbox, social, wire as wire_msgs,
};
use distsoc_schema::limits::{FieldLimit, LimitKind, FIELD_LIMITS, MESSAGE_CODES};

type Msg = Builder<HeapAllocator>;

/// A closure that edits a message's root struct by reflection.
type EditRoot<'f> = &'f mut dyn FnMut(capnp::dynamic_struct::Builder<'_>);

/// How a struct is decoded and how its root is reached by reflection.
struct Target {
    /// The schema struct's name.
    name: &'static str,
    /// Initialises the message's root as this struct and hands it to `f`.
    build: fn(&mut Msg, EditRoot<'_>),
    /// Runs this crate's decoder for the struct on the message's root.
    read: fn(&Msg) -> Result<(), DecodeError>,
}

fn build<T>(m: &mut Msg, f: EditRoot<'_>)
where
    T: Struct,
    for<'a> <T::Schema as Owned>::Builder<'a>: Into<dynamic_value::Builder<'a>>,
{
    let root: <T::Schema as Owned>::Builder<'_> = m.init_root();
    let dynamic: dynamic_value::Builder<'_> = root.into();
    f(dynamic.downcast());
}

fn read<T: Struct>(m: &Msg) -> Result<(), DecodeError> {
    let r = m.get_root_as_reader::<<T::Schema as Owned>::Reader<'_>>()?;
    T::read(r).map(drop)
}

macro_rules! targets {
    ($($name:literal => $ty:ty,)*) => {
        &[$(Target { name: $name, build: build::<$ty>, read: read::<$ty> },)*]
    };
}

/// Every struct that carries an annotated field, with its decoder.
const TARGETS: &[Target] = targets! {
    "PeerAddress" => distsoc_protocol::messages::common::PeerAddress,
    "Attachment" => content::Attachment,
    "Post" => content::Post,
    "WrappedKey" => content::WrappedKey,
    "WrapSlot" => content::WrapSlot,
    "SyncPost" => content::SyncPost,
    "DeleteRecordBody" => content::DeleteRecordBody,
    "DmRotation" => content::DmRotation,
    "DmArchiveChunk" => content::DmArchiveChunk,
    "DmArchiveEntry" => content::DmArchiveEntry,
    "DmGroup" => content::DmGroup,
    "VisibilityUpdateBody" => content::VisibilityUpdateBody,
    "RecentPost" => content::RecentPost,
    "HeartBody" => content::HeartBody,
    "Hop1Change" => discovery::Hop1Change,
    "Hop2Change" => discovery::Hop2Change,
    "Hop2Entry" => discovery::Hop2Entry,
    "WormHit" => discovery::WormHit,
    "AddressEntry" => discovery::AddressEntry,
    "FileRequest" => files::FileRequest,
    "AuthorUpdateRequest" => files::AuthorUpdateRequest,
    "PostNotification" => files::PostNotification,
    "ManifestPush" => files::ManifestPush,
    "VouchKey" => identity::VouchKey,
    "VouchGrantBody" => identity::VouchGrantBody,
    "KdfParams" => identity::KdfParams,
    "CreateChannel" => mailbox::CreateChannel,
    "CreateChannelResponse" => mailbox::CreateChannelResponse,
    "Fetch" => mailbox::Fetch,
    "FetchWait" => mailbox::FetchWait,
    "ChannelInfo" => mailbox::ChannelInfo,
    "ListChannels" => mailbox::ListChannels,
    "AudienceResponseBody" => social::AudienceResponseBody,
    "AuthorRecentPosts" => content::AuthorRecentPosts,
    "CommentBody" => content::CommentBody,
    "EncryptedVisibility" => content::EncryptedVisibility,
    "InlineComment" => content::InlineComment,
    "PostBody" => content::PostBody,
    "PostHeader" => content::PostHeader,
    "SealedBody" => content::SealedBody,
    "SignedAuthorRecentPosts" => content::SignedAuthorRecentPosts,
    "SignedDeleteRecord" => content::SignedDeleteRecord,
    "SignedHeart" => content::SignedHeart,
    "SignedPost" => content::SignedPost,
    "SignedPostHeader" => content::SignedPostHeader,
    "SignedVisibilityUpdate" => content::SignedVisibilityUpdate,
    "AddressRequest" => discovery::AddressRequest,
    "AddressResponse" => discovery::AddressResponse,
    "BootstrapRequest" => discovery::BootstrapRequest,
    "BootstrapResponse" => discovery::BootstrapResponse,
    "InitialMapSync" => discovery::InitialMapSync,
    "RoutingDiff" => discovery::RoutingDiff,
    "WormQuery" => discovery::WormQuery,
    "WormRequest" => discovery::WormRequest,
    "WormResponse" => discovery::WormResponse,
    "BlobHeaderDiff" => files::BlobHeaderDiff,
    "FileResponse" => files::FileResponse,
    "StoredFile" => files::StoredFile,
    "EncryptedIdentityBundle" => identity::EncryptedIdentityBundle,
    "GroupKey" => identity::GroupKey,
    "GroupKeyWrapBody" => identity::GroupKeyWrapBody,
    "IdentityBundle" => identity::IdentityBundle,
    "BundleFollow" => identity::BundleFollow,
    "BundleCircle" => identity::BundleCircle,
    "BundleDmThread" => identity::BundleDmThread,
    "PostingIdentity" => identity::PostingIdentity,
    "PublicProfile" => identity::PublicProfile,
    "SignedGroupKeyWrap" => identity::SignedGroupKeyWrap,
    "SignedProfile" => identity::SignedProfile,
    "SignedVouchGrant" => identity::SignedVouchGrant,
    "Enqueue" => mailbox::Enqueue,
    "FetchResponse" => mailbox::FetchResponse,
    "ListChannelsResponse" => mailbox::ListChannelsResponse,
    "MailboxMessage" => mailbox::MailboxMessage,
    "AudienceRequest" => social::AudienceRequest,
    "AudienceRequestBody" => social::AudienceRequestBody,
    "AudienceResponse" => social::AudienceResponse,
    "PullSyncRequest" => social::PullSyncRequest,
    "PullSyncResponse" => social::PullSyncResponse,
    "Error" => wire_msgs::Error,
    "Hello" => wire_msgs::Hello,
    "HelloResponse" => wire_msgs::HelloResponse,
};

/// Annotated fields this test cannot drive through a decoder, with the reason.
/// Empty today; an entry here is a visible gap, not a silent one.
const NOT_TESTABLE: &[(&str, &str, &str)] = &[];

/// A value given to a field other than the one under test, so that the
/// decoder gets past it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fill {
    /// `n` bytes of 0x01 (a secret seed of all ones, see [`seed_public`]).
    Data(usize),
    /// These bytes.
    Bytes(Vec<u8>),
    /// The text "a".
    Text,
    /// An empty struct (its own fields are filled by later fills).
    Struct,
    /// An integer.
    UInt(u64),
    /// A `List(Data)` with these elements.
    DataList(Vec<Vec<u8>>),
}

/// The public key of the secret seed [`Fill::Data`] writes (32 bytes of 1).
fn seed_public() -> Vec<u8> {
    distsoc_protocol::sign::SigningKey::from_seed(&[1u8; 32])
        .public()
        .to_vec()
}

/// Applies `fill` to the field at `path` ("field" or "outer.field").
fn set_fill(mut s: capnp::dynamic_struct::Builder<'_>, path: &str, fill: &Fill) {
    if let Some((head, rest)) = path.split_once('.') {
        let inner: capnp::dynamic_struct::Builder<'_> = s.get_named(head).unwrap().downcast();
        return set_fill(inner, rest, fill);
    }
    let field = s.get_schema().get_field_by_name(path).unwrap();
    match fill {
        Fill::Data(n) => s
            .set(field, dynamic_value::Reader::Data(&vec![1u8; *n]))
            .unwrap(),
        Fill::Bytes(b) => s.set(field, dynamic_value::Reader::Data(b)).unwrap(),
        Fill::Text => s
            .set(field, dynamic_value::Reader::Text("a".into()))
            .unwrap(),
        Fill::Struct => drop(s.init(field).unwrap()),
        Fill::DataList(items) => {
            let len = u32::try_from(items.len()).unwrap();
            let mut list: capnp::dynamic_list::Builder<'_> =
                s.initn(field, len).unwrap().downcast();
            for (i, item) in (0..len).zip(items) {
                list.set(i, dynamic_value::Reader::Data(item)).unwrap();
            }
        }
        Fill::UInt(v) => {
            let value = match field.get_type().which() {
                TypeVariant::UInt8 => dynamic_value::Reader::UInt8(*v as u8),
                TypeVariant::UInt16 => dynamic_value::Reader::UInt16(*v as u16),
                TypeVariant::UInt32 => dynamic_value::Reader::UInt32(*v as u32),
                _ => dynamic_value::Reader::UInt64(*v),
            };
            s.set(field, value)
                .unwrap_or_else(|e| panic!("{path} = {v}: {e}"));
        }
    }
}

/// Sets `limit.field` of `s` to `n` bytes or items.
fn set_target(s: capnp::dynamic_struct::Builder<'_>, limit: &FieldLimit, n: usize) {
    let mut s = s;
    let field = s.get_schema().get_field_by_name(limit.field).unwrap();
    let len = u32::try_from(n).unwrap();
    match (limit.kind, field.get_type().which()) {
        (LimitKind::MaxBytes | LimitKind::ExactBytes, TypeVariant::Data) => s
            .set(field, dynamic_value::Reader::Data(&vec![0u8; n]))
            .unwrap(),
        (LimitKind::MaxBytes, TypeVariant::Text) => {
            let text = "a".repeat(n);
            s.set(field, dynamic_value::Reader::Text(text.as_str().into()))
                .unwrap();
        }
        (LimitKind::MaxItems, TypeVariant::List(_)) => drop(s.initn(field, len).unwrap()),
        (LimitKind::MaxItemBytes, TypeVariant::List(_)) => {
            let list: capnp::dynamic_list::Builder<'_> = s.initn(field, 1).unwrap().downcast();
            let text = "a".repeat(n);
            let mut list = list;
            list.set(0, dynamic_value::Reader::Text(text.as_str().into()))
                .unwrap();
        }
        (kind, _) => panic!(
            "{}.{}: no setter for {kind:?} on this type",
            limit.struct_name, limit.field
        ),
    }
}

/// Decodes `target` with the fills applied and `limit.field` at `n`.
fn attempt(
    target: &Target,
    fills: &[(String, Fill)],
    limit: &FieldLimit,
    n: usize,
) -> Result<(), DecodeError> {
    let mut m = Msg::new_default();
    (target.build)(&mut m, &mut |mut s| {
        for (field, fill) in fills {
            set_fill(s.reborrow(), field, fill);
        }
        set_target(s, limit, n);
    });
    (target.read)(&m)
}

/// Whether `e` is the length refusal of `limit.field` at its annotated value.
fn is_length_refusal(e: &DecodeError, limit: &FieldLimit) -> bool {
    let max_ok = |max: usize| max as u64 == limit.value;
    if limit.kind == LimitKind::ExactBytes {
        return matches!(e, DecodeError::BadLength { field, expected, .. }
            if *field == limit.field && max_ok(*expected));
    }
    match e {
        DecodeError::TooLong { field, max, .. } | DecodeError::TooMany { field, max, .. } => {
            *field == limit.field && max_ok(*max)
        }
        _ => false,
    }
}

/// Names any length refusal of `limit.field`, whatever its limit.
fn refuses_field_length(e: &DecodeError, limit: &FieldLimit) -> bool {
    matches!(e,
        DecodeError::TooLong { field, .. }
        | DecodeError::TooMany { field, .. }
        | DecodeError::BadLength { field, .. }
            if *field == limit.field)
}

/// The schema of the root struct of `target`.
fn root_schema(target: &Target) -> capnp::schema::StructSchema {
    let mut m = Msg::new_default();
    let mut schema = None;
    (target.build)(&mut m, &mut |s| schema = Some(s.get_schema()));
    schema.unwrap()
}

/// The type of the field `name` in the struct at `prefix` ("" = the root).
fn field_type(
    root: capnp::schema::StructSchema,
    prefix: &str,
    name: &str,
) -> Option<(capnp::schema::StructSchema, TypeVariant)> {
    let mut schema = root;
    for part in prefix.split('.').filter(|p| !p.is_empty()) {
        let f = schema.find_field_by_name(part).ok()??;
        match f.get_type().which() {
            TypeVariant::Struct(raw) => schema = capnp::schema::StructSchema::new(raw),
            _ => return None,
        }
    }
    let f = schema.find_field_by_name(name).ok()??;
    Some((schema, f.get_type().which()))
}

/// The fill that answers the decoder's complaint `e`, if a fill can: a
/// missing or wrong-length field of the root struct (or of a struct already
/// filled in), a version outside the range, an integer below its minimum,
/// or a secret seed that needs its public key.
fn fill_for(target: &Target, fills: &[(String, Fill)], e: &DecodeError) -> Option<(String, Fill)> {
    let (name, wanted) = match e {
        DecodeError::BadLength {
            field, expected, ..
        } => (*field, Fill::Data(*expected)),
        DecodeError::Missing(field) => (*field, Fill::Data(0)),
        DecodeError::UnsupportedVersion { min, .. } => ("version", Fill::UInt(u64::from(*min))),
        DecodeError::Invalid {
            field: "secretSeed",
            ..
        } => ("secretSeed", Fill::Bytes(seed_public())),
        // The bundle's default identity may be its network key.
        DecodeError::Invalid {
            field: "defaultPostingId",
            ..
        } => ("defaultPostingId", Fill::Bytes(seed_public())),
        // "outside MIN..=MAX", "must be at least MIN": the first number.
        DecodeError::Invalid { field, reason } => {
            let min = reason
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| !w.is_empty())
                .and_then(|w| w.parse().ok())
                .unwrap_or(1);
            (*field, Fill::UInt(min))
        }
        _ => return None,
    };
    let root = root_schema(target);
    // Candidate places: the root, then every struct filled in so far.
    let prefixes = std::iter::once(String::new()).chain(
        fills
            .iter()
            .filter(|(_, f)| *f == Fill::Struct)
            .map(|(p, _)| p.clone()),
    );
    for prefix in prefixes {
        let Some((schema, ty)) = field_type(root, &prefix, name) else {
            continue;
        };
        let join = |n: &str| {
            if prefix.is_empty() {
                n.to_owned()
            } else {
                format!("{prefix}.{n}")
            }
        };
        let candidate = match (ty, &wanted) {
            // The seed is fine; its public key (the id field) must match.
            (_, Fill::Bytes(public)) if name == "secretSeed" => {
                let id = ["postingId", "groupId"]
                    .into_iter()
                    .find(|n| schema.find_field_by_name(n).ok().flatten().is_some())?;
                (join(id), Fill::Bytes(public.clone()))
            }
            (TypeVariant::Data, Fill::Bytes(b)) => (join(name), Fill::Bytes(b.clone())),
            (TypeVariant::Data, Fill::Data(0)) => (join(name), Fill::Data(32)),
            (TypeVariant::Data, Fill::Data(n)) => (join(name), Fill::Data(*n)),
            (TypeVariant::Text, _) => (join(name), Fill::Text),
            (TypeVariant::Struct(_), _) => (join(name), Fill::Struct),
            (
                TypeVariant::UInt8
                | TypeVariant::UInt16
                | TypeVariant::UInt32
                | TypeVariant::UInt64,
                Fill::UInt(v),
            ) => (join(name), Fill::UInt(*v)),
            _ => continue,
        };
        if !fills.contains(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// `(struct, field, body)`: a `Data` field holding the canonical bytes of
/// `body` (schema/README.md §4).
const CANONICAL: &[(&str, &str, &str)] = &[
    ("SignedPost", "post", "Post"),
    ("SignedPostHeader", "header", "PostHeader"),
    ("InlineComment", "body", "CommentBody"),
    ("SignedDeleteRecord", "record", "DeleteRecordBody"),
    ("SignedVisibilityUpdate", "update", "VisibilityUpdateBody"),
    ("SignedAuthorRecentPosts", "recent", "AuthorRecentPosts"),
    ("SignedHeart", "heart", "HeartBody"),
    ("SignedProfile", "profile", "PublicProfile"),
    ("SignedGroupKeyWrap", "wrap", "GroupKeyWrapBody"),
    ("SignedVouchGrant", "grant", "VouchGrantBody"),
    ("AudienceRequest", "request", "AudienceRequestBody"),
    ("AudienceResponse", "response", "AudienceResponseBody"),
];

/// `(struct, field, inner)`: a required struct field whose own base is
/// needed too.
const NESTED: &[(&str, &str, &str)] = &[
    ("SyncPost", "post", "SignedPost"),
    ("StoredFile", "post", "SyncPost"),
];

/// Fills a decoder complaint cannot point at: canonical bytes that must
/// parse as a valid body (built the same way, then canonicalised), the
/// structs that carry them, and list contents with a rule of their own.
fn base_fills(struct_name: &str) -> Vec<(String, Fill)> {
    let mut fills = Vec::new();
    for &(s, field, body) in CANONICAL {
        if s == struct_name {
            fills.push((field.to_owned(), Fill::Bytes(valid_canonical(body))));
        }
    }
    for &(s, field, inner) in NESTED {
        if s == struct_name {
            fills.push((field.to_owned(), Fill::Struct));
            for (path, fill) in base_fills(inner) {
                fills.push((format!("{field}.{path}"), fill));
            }
        }
    }
    if struct_name == "CreateChannelResponse" {
        // Exactly two distinct members, sorted.
        fills.push((
            "members".to_owned(),
            Fill::DataList(vec![vec![1; 32], vec![2; 32]]),
        ));
    }
    fills
}

/// The canonical bytes of a `body` struct its decoder accepts, found like a
/// base message: the decoder's complaints are answered until it says yes.
fn valid_canonical(body: &str) -> Vec<u8> {
    let target = TARGETS
        .iter()
        .find(|t| t.name == body)
        .unwrap_or_else(|| panic!("{body}: not in TARGETS"));
    let mut fills = base_fills(body);
    for _ in 0..24 {
        let mut m = Msg::new_default();
        (target.build)(&mut m, &mut |mut s| {
            for (field, fill) in &fills {
                set_fill(s.reborrow(), field, fill);
            }
        });
        match (target.read)(&m) {
            Ok(()) => {
                let words = m.into_reader().canonicalize().unwrap();
                return capnp::Word::words_to_bytes(&words).to_vec();
            }
            Err(e) => {
                let (field, fill) = fill_for(target, &fills, &e)
                    .unwrap_or_else(|| panic!("{body}: no valid base message: {e}"));
                fills.retain(|(f, _)| *f != field);
                fills.push((field, fill));
            }
        }
    }
    panic!("{body}: no valid base message found (fills: {fills:?})")
}

fn check_field(limit: &FieldLimit) -> Result<(), String> {
    let what = format!(
        "{}.{} ${}({})",
        limit.struct_name,
        limit.field,
        limit.kind.name(),
        limit.value
    );
    let target = TARGETS
        .iter()
        .find(|t| t.name == limit.struct_name)
        .ok_or_else(|| format!("{what}: no decoder listed in TARGETS"))?;
    let value = usize::try_from(limit.value).unwrap();
    let mut fills = base_fills(target.name);
    for _ in 0..16 {
        match attempt(target, &fills, limit, value + 1) {
            Err(e) if is_length_refusal(&e, limit) => {
                let wire = match limit.kind {
                    LimitKind::ExactBytes => ErrorCode::Malformed,
                    _ => ErrorCode::TooLarge,
                };
                assert_eq!(e.error_code(), wire, "{what}");
                let at = attempt(target, &fills, limit, value);
                return match at {
                    Err(e) if refuses_field_length(&e, limit) => {
                        Err(format!("{what}: the limit itself is refused: {e}"))
                    }
                    _ => Ok(()),
                };
            }
            Err(e) if refuses_field_length(&e, limit) => {
                return Err(format!("{what}: refused at another maximum: {e}"));
            }
            Err(e) => match fill_for(target, &fills, &e) {
                Some((field, fill)) => {
                    fills.retain(|(f, _)| *f != field);
                    fills.push((field, fill));
                }
                None => {
                    return Err(format!(
                        "{what}: one over the limit, the decoder stops first at: {e}"
                    ))
                }
            },
            Ok(()) => return Err(format!("{what}: one over the limit is accepted")),
        }
    }
    Err(format!("{what}: no base message found (fills: {fills:?})"))
}

#[test]
fn every_annotated_field_limit_is_enforced_exactly() {
    assert!(
        FIELD_LIMITS.len() >= 60,
        "the schema lost its limit annotations"
    );
    let mut failures = Vec::new();
    let mut tested = 0;
    for limit in FIELD_LIMITS {
        if NOT_TESTABLE
            .iter()
            .any(|(s, f, _)| *s == limit.struct_name && *f == limit.field)
        {
            continue;
        }
        match check_field(limit) {
            Ok(()) => tested += 1,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(tested + NOT_TESTABLE.len(), FIELD_LIMITS.len());
}

/// A frame of `code` whose one segment makes the message exactly
/// `bytes` long (8-byte segment table + segment; `bytes` a multiple of 8).
fn frame_of(code: u8, bytes: usize) -> Vec<u8> {
    let words = (bytes - 8) / 8;
    let mut f = vec![code];
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&u32::try_from(words).unwrap().to_le_bytes());
    f.resize(1 + bytes, 0);
    f
}

#[test]
fn every_frame_cap_is_enforced_exactly() {
    for row in MESSAGE_CODES {
        let cap = row.frame_cap as usize;
        let code = MessageCode::from_u8(row.code).unwrap();
        assert_eq!(code.max_frame_bytes(), cap, "{code}");
        // At the cap: accepted (a null root, then zero padding words).
        let frame = decode_frame(&frame_of(row.code, cap))
            .unwrap_or_else(|e| panic!("{code} at its cap {cap}: {e}"));
        assert_eq!(frame.code(), code);
        assert_eq!(frame.encoded_len(), cap, "{code}");
        // One over: a frame length is a whole number of words, so the
        // smallest frame over the cap is one word longer. Refused from the
        // segment table alone (no body bytes needed).
        let over = frame_of(row.code, cap + 8);
        let err = decode_frame(&over[..1 + 8]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{code}: {err}");
        assert_eq!(err.error_code(), ErrorCode::TooLarge);
        let err = decode_frame(&over).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{code}: {err}");
    }
}

/// The public constants that state a field limit, each with the annotation
/// it must equal. Every annotation has its constant and every constant its
/// annotation.
#[test]
fn constants_equal_annotations() {
    use content as c;
    use discovery as d;
    use files as f;
    use identity as i;
    use mailbox as m;
    use social as s;
    use wire_msgs as w;
    use LimitKind::{MaxBytes as B, MaxItemBytes as E, MaxItems as N};
    #[rustfmt::skip]
    let constants: &[(&str, &str, LimitKind, usize)] = &[
        ("Attachment", "mimeType", B, c::MAX_MIME_TYPE_BYTES),
        ("Attachment", "name", B, c::MAX_ATTACHMENT_NAME_BYTES),
        ("AuthorRecentPosts", "posts", N, c::MAX_RECENT_POST_ENTRIES),
        ("CommentBody", "text", B, c::MAX_COMMENT_TEXT_BYTES),
        ("EncryptedVisibility", "recipients", N, limits::MAX_RECIPIENTS),
        ("InlineComment", "body", B, c::MAX_COMMENT_BODY_BYTES),
        ("PostBody", "text", B, c::MAX_POST_TEXT_BYTES),
        ("PostBody", "attachments", N, c::MAX_ATTACHMENTS),
        ("DmArchiveChunk", "entries", N, c::MAX_ARCHIVE_ENTRIES),
        ("DmArchiveEntry", "text", B, c::MAX_POST_TEXT_BYTES),
        ("DmGroup", "members", N, c::MAX_DM_GROUP_MEMBERS),
        ("PostHeader", "wrapSlots", N, c::MAX_WRAP_SLOTS),
        ("SealedBody", "ciphertext", B, c::MAX_POST_BYTES),
        ("SignedAuthorRecentPosts", "recent", B, limits::MAX_RECENT_POSTS_BYTES),
        ("SignedDeleteRecord", "record", B, c::MAX_DELETE_RECORD_BYTES),
        ("SignedHeart", "heart", B, c::MAX_HEART_BYTES),
        ("SignedPost", "post", B, c::MAX_POST_BYTES),
        ("SignedPostHeader", "header", B, c::MAX_HEADER_BYTES),
        ("SignedVisibilityUpdate", "update", B, c::MAX_VISIBILITY_UPDATE_BYTES),
        ("AddressRequest", "targets", N, d::MAX_ADDRESS_TARGETS),
        ("AddressResponse", "entries", N, d::MAX_ADDRESS_TARGETS),
        ("BootstrapRequest", "exclude", N, d::MAX_BOOTSTRAP_EXCLUDE),
        ("BootstrapResponse", "peers", N, limits::BOOTSTRAP_MAX_PEERS),
        ("InitialMapSync", "hop1", N, d::MAX_HOP1_ENTRIES),
        ("InitialMapSync", "hop2", N, d::MAX_HOP2_ENTRIES),
        ("InitialMapSync", "hop3", N, d::MAX_HOP3_ENTRIES),
        ("RoutingDiff", "hop1Changes", N, d::MAX_HOP1_CHANGES),
        ("RoutingDiff", "hop2Changes", N, d::MAX_HOP2_CHANGES),
        ("WormQuery", "targets", N, d::MAX_WORM_TARGETS),
        ("WormQuery", "postIds", N, d::MAX_WORM_POST_IDS),
        ("WormRequest", "targets", N, d::MAX_WORM_TARGETS),
        ("WormRequest", "postIds", N, d::MAX_WORM_POST_IDS),
        ("WormRequest", "visited", N, d::MAX_WORM_VISITED),
        ("WormResponse", "hits", N, d::MAX_WORM_HITS),
        ("BlobHeaderDiff", "addedComments", N, f::MAX_DIFF_COMMENTS),
        ("BlobHeaderDiff", "removedComments", N, f::MAX_DIFF_COMMENTS),
        ("BlobHeaderDiff", "addedHearts", N, f::MAX_DIFF_HEARTS),
        ("FileResponse", "blob", B, limits::MAX_BLOB_BYTES),
        ("StoredFile", "comments", N, f::MAX_STORED_COMMENTS),
        ("StoredFile", "hearts", N, f::MAX_STORED_HEARTS),
        ("EncryptedIdentityBundle", "ciphertext", B, i::MAX_BUNDLE_CIPHERTEXT_BYTES),
        ("GroupKey", "name", B, i::MAX_LABEL_BYTES),
        ("GroupKeyWrapBody", "members", N, i::MAX_GROUP_MEMBERS),
        ("GroupKeyWrapBody", "wraps", N, i::MAX_GROUP_WRAPS),
        ("IdentityBundle", "postingIdentities", N, i::MAX_POSTING_IDENTITIES),
        ("IdentityBundle", "vouchKeys", N, i::MAX_VOUCH_KEYS),
        ("IdentityBundle", "groupKeys", N, i::MAX_GROUP_KEYS),
        ("IdentityBundle", "follows", N, i::MAX_BUNDLE_FOLLOWS),
        ("IdentityBundle", "circles", N, i::MAX_BUNDLE_CIRCLES),
        ("IdentityBundle", "dmThreads", N, i::MAX_BUNDLE_DM_THREADS),
        ("IdentityBundle", "archiveAnchors", N, i::MAX_BUNDLE_ARCHIVE_ANCHORS),
        ("IdentityBundle", "archiveAnchors", E, i::MAX_BUNDLE_ANCHOR_BYTES),
        ("BundleCircle", "name", B, i::MAX_LABEL_BYTES),
        ("BundleCircle", "members", N, i::MAX_BUNDLE_CIRCLE_MEMBERS),
        ("PostingIdentity", "displayName", B, i::MAX_LABEL_BYTES),
        ("PublicProfile", "displayName", B, i::MAX_DISPLAY_NAME_BYTES),
        ("PublicProfile", "bio", B, i::MAX_BIO_BYTES),
        ("PublicProfile", "anchors", N, i::MAX_ANCHORS),
        ("SignedGroupKeyWrap", "wrap", B, i::MAX_GROUP_KEY_WRAP_BYTES),
        ("SignedProfile", "profile", B, i::MAX_PROFILE_BYTES),
        ("SignedVouchGrant", "grant", B, i::MAX_VOUCH_GRANT_BYTES),
        ("Enqueue", "payload", B, limits::MAX_MAILBOX_PAYLOAD_BYTES),
        ("MailboxMessage", "payload", B, limits::MAX_MAILBOX_PAYLOAD_BYTES),
        ("FetchResponse", "messages", N, m::MAX_FETCH_MESSAGES),
        ("ListChannelsResponse", "channels", N, m::MAX_CHANNELS),
        ("AudienceRequest", "request", B, s::MAX_AUDIENCE_BODY_BYTES),
        ("AudienceResponse", "response", B, s::MAX_AUDIENCE_BODY_BYTES),
        ("AudienceRequestBody", "message", B, s::MAX_AUDIENCE_MESSAGE_BYTES),
        ("PullSyncRequest", "ids", N, s::MAX_PULL_IDS),
        ("PullSyncResponse", "posts", N, s::MAX_PULL_POSTS),
        ("PullSyncResponse", "deletes", N, s::MAX_PULL_DELETES),
        ("PullSyncResponse", "profiles", N, s::MAX_PULL_PROFILES),
        ("Error", "message", B, w::MAX_ERROR_MESSAGE_BYTES),
        ("Hello", "agent", B, w::MAX_AGENT_BYTES),
        ("Hello", "capabilities", N, w::MAX_CAPABILITIES),
        ("Hello", "capabilities", E, w::MAX_CAPABILITY_BYTES),
        ("HelloResponse", "agent", B, w::MAX_AGENT_BYTES),
        ("HelloResponse", "capabilities", N, w::MAX_CAPABILITIES),
        ("HelloResponse", "capabilities", E, w::MAX_CAPABILITY_BYTES),
    ];
    for &(s, f, kind, value) in constants {
        let annotated = distsoc_schema::limits::field_limit(s, f, kind)
            .unwrap_or_else(|| panic!("{s}.{f}: constant without a ${} annotation", kind.name()));
        assert_eq!(annotated, value as u64, "{s}.{f} ${}", kind.name());
    }
    // `$exactBytes` lengths are the id, key and signature types' own
    // lengths; the enforcement test above pins each of them.
    for l in FIELD_LIMITS
        .iter()
        .filter(|l| l.kind != LimitKind::ExactBytes)
    {
        assert!(
            constants
                .iter()
                .any(|&(s, f, k, _)| s == l.struct_name && f == l.field && k == l.kind),
            "{}.{} ${}: annotation without a constant here",
            l.struct_name,
            l.field,
            l.kind.name()
        );
    }
}
