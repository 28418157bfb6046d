//! Offline checks of `canonical.json`: values built from JSON through the
//! schema's reflection API, and a receiver written from the schema comments.

use capnp::dynamic_value;
use capnp::introspect::{Introspect, TypeVariant};
use capnp::message::{ReaderOptions, ReaderSegments, SegmentArray};
use capnp::schema::{Field, StructSchema};
use capnp::schema_capnp::field;
use capnp::{dynamic_list, dynamic_struct, Word};
use serde_json::{Map, Value};

use super::crypto::fof_open_slots;
use super::{
    ax, bad, eh, eq_hex, eq_val, expected_error, hx, ia, ih, inp, lx, mismatch, signing_input, sx,
    Check, Problem,
};
use crate::refcrypto::{aead_open, ed_public, ed_sign, strict_verify, unwrap_secret, CONTENT_AAD};
use crate::suite::frame::{to_words, walk_message, walk_options};
use crate::vectors::Record;

// ---------------------------------------------------------------------------
// canonical.json (schema/README.md §4)

/// One signed or hashed type of `canonical.json`.
pub(super) struct TypeInfo {
    pub(super) name: &'static str,
    /// Cap of the canonical bytes.
    cap: usize,
    /// Field holding the signer's key, and the signature purpose.
    signer: Option<(&'static str, &'static str)>,
}

/// The types table of `conformance/vectors/README.md` ("canonical.json").
pub(super) const TYPES: &[TypeInfo] = &[
    TypeInfo {
        name: "Post",
        cap: 262_144,
        signer: Some(("author", "post")),
    },
    TypeInfo {
        name: "PostBody",
        cap: 262_144,
        signer: None,
    },
    TypeInfo {
        name: "PostHeader",
        cap: 262_144,
        signer: Some(("author", "post-header")),
    },
    TypeInfo {
        name: "CommentBody",
        cap: 16_384,
        signer: Some(("author", "comment")),
    },
    TypeInfo {
        name: "DeleteRecordBody",
        cap: 4_096,
        signer: Some(("author", "delete")),
    },
    TypeInfo {
        name: "VisibilityUpdateBody",
        cap: 266_240,
        signer: Some(("author", "visibility")),
    },
    // Signed over BLAKE3(postId ‖ canonical) by the post's author.
    TypeInfo {
        name: "PostVisibility",
        cap: 262_144,
        signer: None,
    },
    TypeInfo {
        name: "AuthorRecentPosts",
        cap: 262_144,
        signer: Some(("author", "recent-posts")),
    },
    TypeInfo {
        name: "HeartBody",
        cap: 1_024,
        signer: Some(("reactor", "heart")),
    },
    TypeInfo {
        name: "PublicProfile",
        cap: 16_384,
        signer: Some(("postingId", "profile")),
    },
    TypeInfo {
        name: "GroupKeyWrapBody",
        cap: 266_240,
        signer: Some(("admin", "group-key")),
    },
    TypeInfo {
        name: "VouchGrantBody",
        cap: 1_024,
        signer: Some(("grantor", "vouch-grant")),
    },
    TypeInfo {
        name: "AudienceRequestBody",
        cap: 4_096,
        signer: Some(("requester", "audience-request")),
    },
    TypeInfo {
        name: "AudienceResponseBody",
        cap: 4_096,
        signer: Some(("author", "audience-response")),
    },
    TypeInfo {
        name: "IdentityBundle",
        cap: 67_108_848,
        signer: None,
    },
    TypeInfo {
        name: "KdfParams",
        cap: usize::MAX,
        signer: None,
    },
];

fn type_info(name: &str) -> Result<&'static TypeInfo, Problem> {
    TYPES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| bad(format!("unknown type {name}")))
}

/// Calls `$body` with `$m` bound to the generated module of the type named
/// `$ty` (`distsoc-schema`, the normative schema).
macro_rules! with_schema_type {
    ($ty:expr, $m:ident => $body:expr) => {{
        use distsoc_schema::content_capnp as c;
        use distsoc_schema::identity_capnp as i;
        use distsoc_schema::social_capnp as s;
        match $ty {
            "Post" => {
                use c::post as $m;
                $body
            }
            "PostBody" => {
                use c::post_body as $m;
                $body
            }
            "PostHeader" => {
                use c::post_header as $m;
                $body
            }
            "CommentBody" => {
                use c::comment_body as $m;
                $body
            }
            "DeleteRecordBody" => {
                use c::delete_record_body as $m;
                $body
            }
            "VisibilityUpdateBody" => {
                use c::visibility_update_body as $m;
                $body
            }
            "PostVisibility" => {
                use c::post_visibility as $m;
                $body
            }
            "AuthorRecentPosts" => {
                use c::author_recent_posts as $m;
                $body
            }
            "HeartBody" => {
                use c::heart_body as $m;
                $body
            }
            "PublicProfile" => {
                use i::public_profile as $m;
                $body
            }
            "GroupKeyWrapBody" => {
                use i::group_key_wrap_body as $m;
                $body
            }
            "VouchGrantBody" => {
                use i::vouch_grant_body as $m;
                $body
            }
            "IdentityBundle" => {
                use i::identity_bundle as $m;
                $body
            }
            "KdfParams" => {
                use i::kdf_params as $m;
                $body
            }
            "AudienceRequestBody" => {
                use s::audience_request_body as $m;
                $body
            }
            "AudienceResponseBody" => {
                use s::audience_response_body as $m;
                $body
            }
            other => Err(format!("no schema type {other}")),
        }
    }};
}

fn struct_schema_of(ty: &str) -> Result<StructSchema, String> {
    with_schema_type!(ty, m => match <m::Owned as Introspect>::introspect().which() {
        TypeVariant::Struct(raw) => Ok(StructSchema::new(raw)),
        _ => Err(format!("{ty} is not a struct")),
    })
}

/// Short name of a struct (or group) schema: `Post`, `Post.content`.
fn struct_name(schema: StructSchema) -> String {
    let full = schema
        .get_proto()
        .get_display_name()
        .ok()
        .and_then(|n| n.to_str().ok())
        .unwrap_or("?");
    // `content.capnp:Post.content` → `Post.content`.
    full.split_once(':')
        .map_or(full, |(_, name)| name)
        .to_owned()
}

fn field_name(f: Field) -> String {
    f.get_proto()
        .get_name()
        .ok()
        .and_then(|n| n.to_str().ok())
        .unwrap_or("?")
        .to_owned()
}

fn is_group(f: Field) -> bool {
    matches!(f.get_proto().which(), Ok(field::Group(_)))
}

fn is_union_member(f: Field) -> bool {
    f.get_proto().get_discriminant_value() != field::NO_DISCRIMINANT
}

/// Optional fields: set only when present (`conformance/vectors/README.md`,
/// "The JSON form of a struct"; `schema/*.capnp`: "empty if none").
const OPTIONAL: &[&str] = &[
    "Post.replyTo",
    "Post.replaces",
    "CommentBody.replyTo",
    "DeleteRecordBody.replacedBy",
    "PostHeader.pubPost",
    "PublicProfile.avatar",
    "PublicProfile.networkId",
    "VouchKey.grantee",
    "Attachment.name",
    "BundleFollow.persona",
];

// ---- building a value from its JSON form ------------------------------------

fn cerr(e: capnp::Error) -> String {
    e.to_string()
}

/// Sets the fields of `b` from the JSON form of a struct: a key present is a
/// field set (even to an empty value), a key absent is a field left unset.
/// Field order does not matter: canonicalization lays objects out.
fn set_from_json(mut b: dynamic_struct::Builder<'_>, v: &Value) -> Result<(), String> {
    let schema = b.get_schema();
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{}: not an object: {v}", struct_name(schema)))?;
    for (key, fv) in obj {
        let f = schema
            .find_field_by_name(key)
            .map_err(cerr)?
            .ok_or_else(|| format!("{} has no field {key}", struct_name(schema)))?;
        let what = format!("{}.{key}", struct_name(schema));
        if is_group(f) {
            let g: dynamic_struct::Builder<'_> = b.reborrow().init(f).map_err(cerr)?.downcast();
            set_from_json(g, fv)?;
            continue;
        }
        match f.get_type().which() {
            TypeVariant::Void => b.set(f, dynamic_value::Reader::Void).map_err(cerr)?,
            TypeVariant::Struct(_) => {
                if !fv.is_null() {
                    let s: dynamic_struct::Builder<'_> =
                        b.reborrow().init(f).map_err(cerr)?.downcast();
                    set_from_json(s, fv)?;
                }
            }
            TypeVariant::List(elem) => {
                let items = fv
                    .as_array()
                    .ok_or_else(|| format!("{what}: not an array"))?;
                let len = u32::try_from(items.len()).map_err(|_| format!("{what}: too long"))?;
                let mut l: dynamic_list::Builder<'_> =
                    b.reborrow().initn(f, len).map_err(cerr)?.downcast();
                for (i, item) in (0u32..).zip(items) {
                    match elem.which() {
                        TypeVariant::Struct(_) => {
                            let s: dynamic_struct::Builder<'_> =
                                l.reborrow().get(i).map_err(cerr)?.downcast();
                            set_from_json(s, item)?;
                        }
                        TypeVariant::Data => {
                            let bytes = json_hex(item, &what)?;
                            l.set(i, dynamic_value::Reader::Data(&bytes))
                                .map_err(cerr)?;
                        }
                        other => {
                            let v = scalar_value(other, item, &what)?;
                            l.set(i, v.as_reader()).map_err(cerr)?;
                        }
                    }
                }
            }
            TypeVariant::Data => {
                let bytes = json_hex(fv, &what)?;
                b.set(f, dynamic_value::Reader::Data(&bytes))
                    .map_err(cerr)?;
            }
            other => {
                let v = scalar_value(other, fv, &what)?;
                b.set(f, v.as_reader()).map_err(cerr)?;
            }
        }
    }
    Ok(())
}

fn json_hex(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(
        v.as_str()
            .ok_or_else(|| format!("{what}: not a hex string"))?,
    )
    .map_err(|e| format!("{what}: {e}"))
}

/// A scalar, Text or enum value read from JSON.
enum JsonScalar {
    Bool(bool),
    U16(u16),
    U32(u32),
    U64(u64),
    Text(String),
    Enum(u16, capnp::schema::EnumSchema),
}

impl JsonScalar {
    fn as_reader(&self) -> dynamic_value::Reader<'_> {
        match self {
            JsonScalar::Bool(b) => dynamic_value::Reader::Bool(*b),
            JsonScalar::U16(n) => dynamic_value::Reader::UInt16(*n),
            JsonScalar::U32(n) => dynamic_value::Reader::UInt32(*n),
            JsonScalar::U64(n) => dynamic_value::Reader::UInt64(*n),
            JsonScalar::Text(t) => dynamic_value::Reader::Text(t.as_str().into()),
            JsonScalar::Enum(v, s) => dynamic_value::Reader::Enum(dynamic_value::Enum::new(*v, *s)),
        }
    }
}

fn scalar_value(ty: TypeVariant, v: &Value, what: &str) -> Result<JsonScalar, String> {
    let num = || v.as_u64().ok_or_else(|| format!("{what}: not a number"));
    Ok(match ty {
        TypeVariant::Bool => {
            JsonScalar::Bool(v.as_bool().ok_or_else(|| format!("{what}: not a bool"))?)
        }
        TypeVariant::UInt16 => {
            JsonScalar::U16(u16::try_from(num()?).map_err(|_| format!("{what}: above u16"))?)
        }
        TypeVariant::UInt32 => {
            JsonScalar::U32(u32::try_from(num()?).map_err(|_| format!("{what}: above u32"))?)
        }
        TypeVariant::UInt64 => JsonScalar::U64(num()?),
        TypeVariant::Text => JsonScalar::Text(
            v.as_str()
                .ok_or_else(|| format!("{what}: not a string"))?
                .to_owned(),
        ),
        TypeVariant::Enum(raw) => {
            let schema = capnp::schema::EnumSchema::new(raw);
            let name = v
                .as_str()
                .ok_or_else(|| format!("{what}: not an enumerant name"))?;
            let e = schema
                .get_enumerants()
                .map_err(cerr)?
                .iter()
                .find(|e| e.get_proto().get_name().ok().and_then(|n| n.to_str().ok()) == Some(name))
                .ok_or_else(|| format!("{what}: no enumerant {name}"))?;
            JsonScalar::Enum(e.get_ordinal(), schema)
        }
        _ => return Err(format!("{what}: type not used by the vectors")),
    })
}

/// Canonical bytes of a message's root (capnp canonicalization).
fn canonicalize_segments<S: ReaderSegments>(segments: S) -> Result<Vec<u8>, String> {
    let mut options = ReaderOptions::new();
    options.traversal_limit_in_words(None);
    let reader = capnp::message::Reader::new(segments, options);
    let words = reader.canonicalize().map_err(cerr)?;
    Ok(Word::words_to_bytes(&words).to_vec())
}

/// Builds `value` (JSON form, presence honoured) as a `ty` and returns its
/// canonical bytes. `null` is the null root pointer.
fn build_canonical(ty: &str, value: &Value) -> Result<Vec<u8>, String> {
    if value.is_null() {
        let null_root = to_words(&[0u8; 8]);
        return canonicalize_segments(SegmentArray::new(&[Word::words_to_bytes(&null_root)]));
    }
    let mut message = capnp::message::Builder::new_default();
    with_schema_type!(ty, m => {
        let root: m::Builder<'_> = message.init_root();
        let dynb: dynamic_struct::Builder<'_> = dynamic_value::Builder::from(root).downcast();
        set_from_json(dynb, value)
    })?;
    let segments = message.get_segments_for_output();
    canonicalize_segments(SegmentArray::new(&segments))
}

/// The encoder normalization of `conformance/vectors/README.md`: every Text
/// and List set (even empty), optional ids and `Attachment.name` set only when
/// non-empty, exactly one union arm set (a null struct reads as the default).
fn normalize(schema: StructSchema, v: &Value) -> Result<Value, String> {
    let mut obj: Map<String, Value> = match v {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => return Err(format!("not an object: {other}")),
    };
    let sname = struct_name(schema);
    for f in schema.get_fields().map_err(cerr)? {
        let name = field_name(f);
        let optional = OPTIONAL.contains(&format!("{sname}.{name}").as_str());
        if is_union_member(f) && !obj.contains_key(&name) {
            continue;
        }
        let ty = f.get_type();
        if is_group(f) {
            if let TypeVariant::Struct(raw) = ty.which() {
                let g = normalize(
                    StructSchema::new(raw),
                    obj.get(&name).unwrap_or(&Value::Null),
                )?;
                obj.insert(name, g);
            }
            continue;
        }
        match ty.which() {
            TypeVariant::Text | TypeVariant::Data
                if optional && obj.get(&name).and_then(Value::as_str) == Some("") =>
            {
                obj.remove(&name);
            }
            TypeVariant::Text | TypeVariant::Data if optional => {}
            TypeVariant::Text => {
                obj.entry(name)
                    .or_insert_with(|| Value::String(String::new()));
            }
            TypeVariant::List(elem) => {
                let items = obj.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let (TypeVariant::Struct(raw), Value::Array(items)) = (elem.which(), items) {
                    for item in items.iter_mut() {
                        *item = normalize(StructSchema::new(raw), item)?;
                    }
                }
            }
            TypeVariant::Struct(raw) => {
                if let Some(x) = obj.get(&name).filter(|x| x.is_object()) {
                    let n = normalize(StructSchema::new(raw), x)?;
                    obj.insert(name, n);
                }
            }
            _ => {}
        }
    }
    // A union with no arm set: the default arm (discriminant 0).
    let union = schema.get_union_fields().map_err(cerr)?;
    if !union.is_empty() && !union.iter().any(|f| obj.contains_key(&field_name(f))) {
        if let Some(f) = union
            .iter()
            .find(|f| f.get_proto().get_discriminant_value() == 0)
        {
            let default = match f.get_type().which() {
                TypeVariant::Struct(raw) => normalize(StructSchema::new(raw), &Value::Null)?,
                TypeVariant::Void => Value::Null,
                _ => Value::Null,
            };
            obj.insert(field_name(f), default);
        }
    }
    Ok(Value::Object(obj))
}

// ---- the receiver ------------------------------------------------------------

/// A field rule stated in the schema comments.
#[derive(Clone, Copy)]
enum Rule {
    /// A 32-byte id that must be present.
    Id,
    /// Empty (not set) or a 32-byte id.
    OptId,
    /// Exactly this many bytes.
    Len(usize),
    /// Text of at most this many bytes (`tooLarge`).
    MaxText(usize),
    /// List of at most this many elements (`tooLarge`).
    MaxList(usize),
    /// List of at most this many 32-byte ids.
    IdList(usize),
    /// List of at most this many texts, each of at most this many bytes.
    TextList(usize, usize),
    /// An integer in this range (`malformed`).
    Range(u64, u64),
    /// The bundle version: 1 (`unsupportedVersion`).
    Version1,
}

/// `(struct, field, rule)`, transcribed from `schema/*.capnp`. The size
/// limits equal the schema's `$maxBytes`/`$maxItems` annotations
/// (`distsoc_schema::limits::FIELD_LIMITS`; pinned by a test below).
const RULES: &[(&str, &str, Rule)] = &[
    ("Attachment", "blobId", Rule::Id),
    ("Attachment", "mimeType", Rule::MaxText(128)),
    ("Attachment", "name", Rule::MaxText(256)),
    ("PostBody", "text", Rule::MaxText(65_536)),
    ("PostBody", "attachments", Rule::MaxList(32)),
    ("DmRotation", "nextPostingId", Rule::Id),
    ("DmArchiveChunk", "entries", Rule::MaxList(1_024)),
    ("DmArchiveEntry", "peer", Rule::Id),
    ("DmArchiveEntry", "text", Rule::MaxText(65_536)),
    ("DmArchiveEntry", "dedup", Rule::Id),
    ("DmGroup", "threadId", Rule::Len(16)),
    ("DmGroup", "members", Rule::IdList(32)),
    ("SealedBody", "nonce", Rule::Len(12)),
    ("Post", "author", Rule::Id),
    ("Post", "replyTo", Rule::OptId),
    ("Post", "replaces", Rule::OptId),
    ("WrappedKey", "recipient", Rule::Id),
    ("WrappedKey", "wrapped", Rule::Len(48)),
    ("EncryptedVisibility", "ephemeralKey", Rule::Len(32)),
    ("EncryptedVisibility", "recipients", Rule::MaxList(2_729)),
    ("WrapSlot", "tag", Rule::Len(2)),
    ("WrapSlot", "sealed", Rule::Len(48)),
    ("PostHeader", "postId", Rule::Id),
    ("PostHeader", "author", Rule::Id),
    ("PostHeader", "pubPost", Rule::OptId),
    ("PostHeader", "wrapSlots", Rule::MaxList(4_096)),
    ("CommentBody", "parentPostId", Rule::Id),
    ("CommentBody", "author", Rule::Id),
    ("CommentBody", "text", Rule::MaxText(8_192)),
    ("CommentBody", "replyTo", Rule::OptId),
    ("DeleteRecordBody", "postId", Rule::Id),
    ("DeleteRecordBody", "author", Rule::Id),
    ("DeleteRecordBody", "replacedBy", Rule::OptId),
    ("VisibilityUpdateBody", "postId", Rule::Id),
    ("VisibilityUpdateBody", "author", Rule::Id),
    ("RecentPost", "postId", Rule::Id),
    ("AuthorRecentPosts", "author", Rule::Id),
    ("HeartBody", "postId", Rule::Id),
    ("HeartBody", "reactor", Rule::Id),
    ("PublicProfile", "postingId", Rule::Id),
    ("PublicProfile", "displayName", Rule::MaxText(128)),
    ("PublicProfile", "bio", Rule::MaxText(4_096)),
    ("PublicProfile", "anchors", Rule::IdList(16)),
    ("PublicProfile", "avatar", Rule::OptId),
    ("PublicProfile", "networkId", Rule::OptId),
    ("PostingIdentity", "postingId", Rule::Id),
    ("PostingIdentity", "secretSeed", Rule::Len(32)),
    ("PostingIdentity", "displayName", Rule::MaxText(128)),
    ("GroupKey", "groupId", Rule::Id),
    ("GroupKey", "secretSeed", Rule::Len(32)),
    ("GroupKey", "name", Rule::MaxText(128)),
    ("GroupKeyWrapBody", "groupId", Rule::Id),
    ("GroupKeyWrapBody", "admin", Rule::Id),
    ("GroupKeyWrapBody", "ephemeralKey", Rule::Len(32)),
    ("GroupKeyWrapBody", "members", Rule::IdList(4_096)),
    ("GroupKeyWrapBody", "wraps", Rule::MaxList(3_000)),
    ("VouchKey", "key", Rule::Len(32)),
    ("VouchKey", "grantor", Rule::Id),
    ("VouchKey", "grantee", Rule::OptId),
    ("VouchGrantBody", "grantor", Rule::Id),
    ("VouchGrantBody", "grantee", Rule::Id),
    ("VouchGrantBody", "ephemeralKey", Rule::Len(32)),
    ("VouchGrantBody", "sealedKey", Rule::Len(48)),
    ("IdentityBundle", "version", Rule::Version1),
    ("IdentityBundle", "networkSeed", Rule::Len(32)),
    ("IdentityBundle", "postingIdentities", Rule::MaxList(1_024)),
    ("IdentityBundle", "defaultPostingId", Rule::Id),
    ("IdentityBundle", "vouchKeys", Rule::MaxList(65_536)),
    ("IdentityBundle", "groupKeys", Rule::MaxList(4_096)),
    ("IdentityBundle", "follows", Rule::MaxList(65_536)),
    ("IdentityBundle", "circles", Rule::MaxList(1_024)),
    ("BundleFollow", "postingId", Rule::Id),
    ("BundleFollow", "persona", Rule::OptId),
    ("IdentityBundle", "dmThreads", Rule::MaxList(65_536)),
    ("IdentityBundle", "archiveAnchors", Rule::TextList(64, 512)),
    ("BundleDmThread", "peer", Rule::Id),
    ("BundleDmThread", "seed", Rule::Len(32)),
    ("BundleCircle", "name", Rule::MaxText(128)),
    ("BundleCircle", "members", Rule::IdList(4_096)),
    ("KdfParams", "memoryKib", Rule::Range(8_192, 1_048_576)),
    ("KdfParams", "iterations", Rule::Range(1, 10)),
    ("KdfParams", "parallelism", Rule::Range(1, 4)),
    ("KdfParams", "salt", Rule::Len(16)),
    ("AudienceRequestBody", "requester", Rule::Id),
    ("AudienceRequestBody", "author", Rule::Id),
    ("AudienceRequestBody", "message", Rule::MaxText(1_024)),
    ("AudienceResponseBody", "author", Rule::Id),
    ("AudienceResponseBody", "requester", Rule::Id),
];

/// A refusal: the wire error and why.
type Refusal = (&'static str, String);

fn rule_of(sname: &str, fname: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(s, f, _)| *s == sname && *f == fname)
        .map(|r| r.2)
}

/// Walks a struct by its schema: every pointer read with its declared kind,
/// Text checked (NUL, UTF-8), the active union arm known, enumerants known;
/// then the field rules and the struct-level rules.
fn validate_struct(s: dynamic_struct::Reader<'_>) -> Result<(), Refusal> {
    let schema = s.get_schema();
    let sname = struct_name(schema);
    let m = |e: capnp::Error| ("malformed", format!("{sname}: {e}"));
    for f in schema.get_non_union_fields().map_err(m)? {
        validate_field(s, f, &sname)?;
    }
    if !schema.get_union_fields().map_err(m)?.is_empty() {
        match s.which().map_err(m)? {
            Some(f) => validate_field(s, f, &sname)?,
            None => return Err(("malformed", format!("{sname}: unknown union arm"))),
        }
    }
    // Struct-level rules from the schema comments.
    if sname == "PostHeader" {
        let policy = match s.get_named("commentPolicy").map_err(m)? {
            dynamic_value::Reader::Enum(e) => e.get_value(),
            _ => 0,
        };
        let pub_post = match s.get_named("pubPost").map_err(m)? {
            dynamic_value::Reader::Data(d) => d.len(),
            _ => 0,
        };
        // friendsOfFriends (3) needs its 32-byte pubPost.
        if policy == 3 && pub_post != 32 {
            return Err((
                "malformed",
                "PostHeader: friendsOfFriends without pubPost".into(),
            ));
        }
    }
    Ok(())
}

fn validate_field(s: dynamic_struct::Reader<'_>, f: Field, sname: &str) -> Result<(), Refusal> {
    let fname = field_name(f);
    let what = format!("{sname}.{fname}");
    let m = |e: capnp::Error| ("malformed", format!("{what}: {e}"));
    let rule = rule_of(sname, &fname);
    let value = s.get(f).map_err(m)?;
    match value {
        dynamic_value::Reader::Text(t) => {
            t.to_str()
                .map_err(|e| ("malformed", format!("{what}: {e}")))?;
            if let Some(Rule::MaxText(max)) = rule {
                if t.len() > max {
                    return Err(("tooLarge", format!("{what}: {} bytes > {max}", t.len())));
                }
            }
        }
        dynamic_value::Reader::Data(d) => match rule {
            Some(Rule::Id) if d.len() != 32 => {
                return Err((
                    "malformed",
                    format!("{what}: {} bytes, not a 32-byte id", d.len()),
                ))
            }
            Some(Rule::OptId) if !d.is_empty() && d.len() != 32 => {
                return Err((
                    "malformed",
                    format!("{what}: {} bytes, not empty or 32", d.len()),
                ))
            }
            Some(Rule::Len(n)) if d.len() != n => {
                return Err(("malformed", format!("{what}: {} bytes, not {n}", d.len())))
            }
            _ => {}
        },
        // An absent struct field (a null pointer, e.g. PostBody.rotation)
        // reads as the default struct: its rules apply only when it is set.
        dynamic_value::Reader::Struct(st) if s.has(f).map_err(m)? => validate_struct(st)?,
        dynamic_value::Reader::List(l) => {
            let (max, item_max) = match rule {
                Some(Rule::MaxList(n) | Rule::IdList(n)) => (n, usize::MAX),
                Some(Rule::TextList(n, bytes)) => (n, bytes),
                _ => (usize::MAX, usize::MAX),
            };
            if l.len() as usize > max {
                return Err(("tooLarge", format!("{what}: {} elements > {max}", l.len())));
            }
            for item in l.iter() {
                match item.map_err(m)? {
                    dynamic_value::Reader::Struct(st) => validate_struct(st)?,
                    dynamic_value::Reader::Text(t) => {
                        t.to_str()
                            .map_err(|e| ("malformed", format!("{what}: {e}")))?;
                        if t.len() > item_max {
                            return Err((
                                "tooLarge",
                                format!("{what}: element of {} bytes > {item_max}", t.len()),
                            ));
                        }
                    }
                    dynamic_value::Reader::Data(d)
                        if matches!(rule, Some(Rule::IdList(_))) && d.len() != 32 =>
                    {
                        return Err(("malformed", format!("{what}: element of {} bytes", d.len())));
                    }
                    _ => {}
                }
            }
        }
        dynamic_value::Reader::Enum(e) if e.get_enumerant().map_err(m)?.is_none() => {
            return Err((
                "malformed",
                format!("{what}: unknown enumerant {}", e.get_value()),
            ));
        }
        dynamic_value::Reader::UInt16(n) => check_number(rule, u64::from(n), &what)?,
        dynamic_value::Reader::UInt32(n) => check_number(rule, u64::from(n), &what)?,
        dynamic_value::Reader::UInt64(n) => check_number(rule, n, &what)?,
        dynamic_value::Reader::Capability(_) | dynamic_value::Reader::AnyPointer(_) => {
            return Err(("malformed", format!("{what}: type not expected here")))
        }
        _ => {}
    }
    Ok(())
}

fn check_number(rule: Option<Rule>, n: u64, what: &str) -> Result<(), Refusal> {
    match rule {
        Some(Rule::Range(lo, hi)) if !(lo..=hi).contains(&n) => {
            Err(("malformed", format!("{what}: {n} outside {lo}..={hi}")))
        }
        Some(Rule::Version1) if n != 1 => Err(("unsupportedVersion", format!("{what}: {n}"))),
        _ => Ok(()),
    }
}

/// What a receiver has besides the bytes.
#[derive(Default)]
struct Received {
    signature: Option<Vec<u8>>,
    /// The PostId the post was requested or announced as.
    expected_post_id: Option<Vec<u8>>,
    /// `PostVisibility`: the post id and the author's key.
    post_id: Option<Vec<u8>>,
    public_key: Option<Vec<u8>>,
}

/// Reads a Data field of the root by name.
fn root_data(s: dynamic_struct::Reader<'_>, name: &str) -> Result<Vec<u8>, Refusal> {
    match s.get_named(name) {
        Ok(dynamic_value::Reader::Data(d)) => Ok(d.to_vec()),
        Ok(_) => Err(("malformed", format!("{name} is not Data"))),
        Err(e) => Err(("malformed", format!("{name}: {e}"))),
    }
}

/// The receiver of canonical bytes, checks in the order of
/// `conformance/vectors/README.md` ("Invalid records").
fn receive(ty: &TypeInfo, bytes: &[u8], got: &Received) -> Result<(), Refusal> {
    // 1–3: on the length alone.
    if bytes.len() > ty.cap {
        return Err(("tooLarge", format!("{} bytes > {}", bytes.len(), ty.cap)));
    }
    if bytes.is_empty() {
        return Err(("malformed", "empty: no root pointer".into()));
    }
    if !bytes.len().is_multiple_of(8) {
        return Err((
            "nonCanonical",
            format!("{} bytes: not whole words", bytes.len()),
        ));
    }
    // 4: one segment, one bounded walk.
    let words = to_words(bytes);
    let segment: [&[u8]; 1] = [Word::words_to_bytes(&words)];
    let n = (bytes.len() / 8) as u64;
    walk_message(SegmentArray::new(&segment), n)
        .map_err(|r| ("malformed", format!("{}: {}", r.reason, r.detail)))?;
    // 5: canonical form.
    let reader = capnp::message::Reader::new(SegmentArray::new(&segment), walk_options(n));
    match reader.is_canonical() {
        Ok(true) => {}
        Ok(false) => return Err(("nonCanonical", "not the canonical encoding".into())),
        Err(e) => return Err(("malformed", e.to_string())),
    }
    // 6: the type's field rules, on a fresh reader.
    let reader = capnp::message::Reader::new(SegmentArray::new(&segment), walk_options(n));
    let root: dynamic_struct::Reader<'_> = with_schema_type!(ty.name, m => {
        reader
            .get_root::<m::Reader<'_>>()
            .map(|r| dynamic_value::Reader::from(r).downcast::<dynamic_struct::Reader<'_>>())
            .map_err(|e| e.to_string())
    })
    .map_err(|e| ("malformed", e))?;
    validate_struct(root)?;
    // 7: the signature's length.
    let Some(sig) = &got.signature else {
        return Ok(());
    };
    let sig: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| ("malformed", format!("signature of {} bytes", sig.len())))?;
    // 8: the PostId, before the signature.
    if let Some(want) = &got.expected_post_id {
        let id = blake3::hash(bytes);
        if id.as_bytes()[..] != want[..] {
            return Err(("idMismatch", format!("PostId {id}")));
        }
    }
    // 9: the signature.
    let (public, signed) = match ty.signer {
        Some((field, purpose)) => {
            let public = root_data(root, field)?;
            let signed =
                signing_input(purpose, bytes).map_err(|_| ("malformed", "purpose".to_owned()))?;
            (public, signed)
        }
        None => {
            // PostVisibility: by the post's author over BLAKE3(postId ‖ bytes).
            let (Some(post_id), Some(public)) = (&got.post_id, &got.public_key) else {
                return Err(("malformed", "no signer for this type".into()));
            };
            let mut h = blake3::Hasher::new();
            h.update(post_id);
            h.update(bytes);
            let digest = h.finalize();
            let signed = signing_input("post-visibility", digest.as_bytes())
                .map_err(|_| ("malformed", "purpose".to_owned()))?;
            (public.clone(), signed)
        }
    };
    let public: [u8; 32] = public
        .as_slice()
        .try_into()
        .map_err(|_| ("badSignature", "signer key is not 32 bytes".to_owned()))?;
    strict_verify(&public, &signed, &sig).map_err(|e| ("badSignature", format!("signature: {e}")))
}

fn opt_hex(rec: &Record, key: &str) -> Result<Option<Vec<u8>>, Problem> {
    rec.input
        .get(key)
        .map(|v| hx(v, &format!("input.{key}")))
        .transpose()
}

pub(super) fn check_canonical(rec: &Record, ty_name: &str) -> Check {
    let ty = type_info(ty_name)?;
    if !rec.valid {
        let bytes = ih(rec, "canonical")?;
        let got = Received {
            signature: opt_hex(rec, "signature")?,
            expected_post_id: opt_hex(rec, "expected_post_id")?,
            post_id: opt_hex(rec, "post_id")?,
            public_key: opt_hex(rec, "public_key")?,
        };
        let want = expected_error(rec)?.unwrap_or_default();
        let what = "receiving input.canonical";
        return match receive(ty, &bytes, &got) {
            Err((e, _)) if e == want => Ok(()),
            Err((e, why)) => Err(mismatch(
                what,
                format!("rejected with `{want}`"),
                format!("rejected with `{e}` ({why})"),
            )),
            Ok(()) => Err(mismatch(
                what,
                format!("rejected with `{want}`"),
                "accepted",
            )),
        };
    }
    let value = inp(rec, "value")?;
    let canonical = eh(rec, "canonical")?;
    // The value, built field by field from the schema, presence honoured.
    let built =
        build_canonical(ty.name, value).map_err(|e| bad(format!("building input.value: {e}")))?;
    eq_hex(
        "expected.canonical (input.value built and canonicalized)",
        &canonical,
        &built,
    )?;
    // What an encoder following the README's rules writes.
    let schema = struct_schema_of(ty.name).map_err(bad)?;
    let normalized =
        normalize(schema, value).map_err(|e| bad(format!("normalizing input.value: {e}")))?;
    let reencoded =
        build_canonical(ty.name, &normalized).map_err(|e| bad(format!("building: {e}")))?;
    match rec.expected.get("reencoded") {
        Some(v) => {
            let want = hx(v, "expected.reencoded")?;
            eq_hex("expected.reencoded (the encoder's form)", &want, &reencoded)?;
            if want == canonical {
                return Err(mismatch(
                    "expected.reencoded",
                    "differs from expected.canonical",
                    "equal",
                ));
            }
        }
        None => eq_hex(
            "expected.canonical (the encoder's form)",
            &canonical,
            &reencoded,
        )?,
    }
    // The bytes are canonical in the Cap'n Proto sense (re-canonicalizing them
    // is the identity).
    let words = to_words(&canonical);
    let again = canonicalize_segments(SegmentArray::new(&[Word::words_to_bytes(&words)]))
        .map_err(|e| mismatch("re-canonicalizing expected.canonical", "succeeds", e))?;
    eq_hex("expected.canonical re-canonicalized", &canonical, &again)?;
    eq_hex(
        "expected.blake3",
        &eh(rec, "blake3")?,
        blake3::hash(&canonical).as_bytes(),
    )?;
    // Signatures.
    let mut got = Received::default();
    if ty.signer.is_some() || rec.input.contains_key("signer_seed") {
        let seed: [u8; 32] = ia(rec, "signer_seed")?;
        let public = ed_public(&seed);
        eq_hex("expected.public_key", &eh(rec, "public_key")?, &public)?;
        let purpose = sx(inp(rec, "purpose")?, "input.purpose")?;
        let message = match ty.signer {
            Some((field, want_purpose)) => {
                eq_val("input.purpose (the type's purpose)", want_purpose, purpose)?;
                let signer = root_field(ty.name, &canonical, field)?;
                eq_hex(
                    &format!("the body's signer field `{field}`"),
                    &public,
                    &signer,
                )?;
                canonical.clone()
            }
            None => {
                eq_val("input.purpose", "post-visibility", purpose)?;
                let post_id = ih(rec, "post_id")?;
                let mut h = blake3::Hasher::new();
                h.update(&post_id);
                h.update(&canonical);
                let digest = h.finalize();
                eq_hex(
                    "expected.signing_digest",
                    &eh(rec, "signing_digest")?,
                    digest.as_bytes(),
                )?;
                got.post_id = Some(post_id);
                got.public_key = Some(public.to_vec());
                digest.as_bytes().to_vec()
            }
        };
        let sig = ed_sign(&seed, &signing_input(purpose, &message)?);
        eq_hex("expected.signature", &eh(rec, "signature")?, &sig)?;
        got.signature = Some(sig.to_vec());
    }
    // The receiver accepts the bytes (and the signature).
    receive(ty, &canonical, &got).map_err(|(e, why)| {
        mismatch(
            "receiving expected.canonical",
            "accepted",
            format!("rejected with `{e}` ({why})"),
        )
    })?;
    if rec.input.contains_key("group_seed") {
        eq_val(
            "input.group_purpose",
            "comment-group",
            sx(inp(rec, "group_purpose")?, "group_purpose")?,
        )?;
        let gseed: [u8; 32] = ia(rec, "group_seed")?;
        let gpub = ed_public(&gseed);
        eq_hex(
            "expected.group_public_key",
            &eh(rec, "group_public_key")?,
            &gpub,
        )?;
        let signed = signing_input("comment-group", blake3::hash(&canonical).as_bytes())?;
        let gsig = ed_sign(&gseed, &signed);
        eq_hex(
            "expected.group_signature",
            &eh(rec, "group_signature")?,
            &gsig,
        )?;
        eq_val(
            "verifying the group signature",
            Ok(()),
            strict_verify(&gpub, &signed, &gsig),
        )?;
    }
    if let Some(d) = rec.input.get("derivation") {
        check_derivation(ty.name, value, d)?;
    }
    Ok(())
}

/// A Data field of the root of canonical bytes, read through the schema.
fn root_field(ty: &str, bytes: &[u8], field: &str) -> Result<Vec<u8>, Problem> {
    let words = to_words(bytes);
    let segment: [&[u8]; 1] = [Word::words_to_bytes(&words)];
    let reader = capnp::message::Reader::new(
        SegmentArray::new(&segment),
        walk_options((bytes.len() / 8) as u64),
    );
    let root: dynamic_struct::Reader<'_> = with_schema_type!(ty, m => {
        reader
            .get_root::<m::Reader<'_>>()
            .map(|r| dynamic_value::Reader::from(r).downcast::<dynamic_struct::Reader<'_>>())
            .map_err(|e| e.to_string())
    })
    .map_err(|e| mismatch(format!("reading `{field}`"), "readable", e))?;
    root_data(root, field).map_err(|(_, e)| mismatch(format!("reading `{field}`"), "readable", e))
}

/// `input.derivation` (informative): open what the value seals with the
/// primitives above.
fn check_derivation(ty: &str, value: &Value, d: &Value) -> Check {
    let dget = |k: &str| {
        d.get(k)
            .ok_or_else(|| bad(format!("input.derivation.{k} is missing")))
    };
    let vget = |v: &'_ Value, k: &str| -> Result<Value, Problem> {
        v.get(k)
            .cloned()
            .ok_or_else(|| bad(format!("input.value: {k} is missing")))
    };
    let wrapped_entries = |list: &Value| -> Result<Vec<Vec<u8>>, Problem> {
        lx(list, "recipients")?
            .iter()
            .map(|w| {
                let mut e = hx(&vget(w, "recipient")?, "recipient")?;
                e.extend(hx(&vget(w, "wrapped")?, "wrapped")?);
                Ok(e)
            })
            .collect()
    };
    match ty {
        "Post" => {
            let sealed = vget(&vget(value, "content")?, "sealed")?;
            let cek: [u8; 32] = ax(dget("cek")?, "derivation.cek")?;
            let nonce: [u8; 12] = ax(&vget(&sealed, "nonce")?, "nonce")?;
            let ct = hx(&vget(&sealed, "ciphertext")?, "ciphertext")?;
            let body = build_canonical("PostBody", dget("body")?).map_err(bad)?;
            eq_val(
                "the sealed body, opened with derivation.cek",
                Ok(hex::encode(body)),
                aead_open(&cek, &nonce, CONTENT_AAD, &ct).map(hex::encode),
            )
        }
        "PostHeader" => {
            let seed: [u8; 32] = ax(dget("priv_post_seed")?, "derivation.priv_post_seed")?;
            let pub_post: [u8; 32] = ax(&vget(value, "pubPost")?, "pubPost")?;
            eq_hex(
                "pubPost (public key of derivation.priv_post_seed)",
                &pub_post,
                &ed_public(&seed),
            )?;
            let slots: Vec<Vec<u8>> = lx(&vget(value, "wrapSlots")?, "wrapSlots")?
                .iter()
                .map(|s| {
                    let mut b = hx(&vget(s, "tag")?, "tag")?;
                    b.extend(hx(&vget(s, "sealed")?, "sealed")?);
                    Ok(b)
                })
                .collect::<Result<_, Problem>>()?;
            for (i, k) in lx(dget("vouch_keys")?, "vouch_keys")?.iter().enumerate() {
                let v: [u8; 32] = ax(k, "vouch key")?;
                eq_val(
                    &format!("derivation.vouch_keys[{i}] opening a wrap slot"),
                    Some((0, seed)),
                    fof_open_slots(&[v], &pub_post, &slots),
                )?;
            }
            Ok(())
        }
        "PostVisibility" | "VisibilityUpdateBody" => {
            let vis = if ty == "PostVisibility" {
                value.clone()
            } else {
                vget(value, "visibility")?
            };
            let enc = vget(&vis, "encrypted")?;
            let eph: [u8; 32] = ax(&vget(&enc, "ephemeralKey")?, "ephemeralKey")?;
            let entries = wrapped_entries(&vget(&enc, "recipients")?)?;
            let cek: [u8; 32] = ax(dget("cek")?, "derivation.cek")?;
            for (i, s) in lx(dget("recipient_seeds")?, "recipient_seeds")?
                .iter()
                .enumerate()
            {
                let seed: [u8; 32] = ax(s, "recipient seed")?;
                eq_val(
                    &format!("derivation.recipient_seeds[{i}] unwrapping the CEK"),
                    Ok(cek),
                    unwrap_secret(&seed, &eph, &entries),
                )?;
            }
            Ok(())
        }
        "GroupKeyWrapBody" => {
            let eph: [u8; 32] = ax(&vget(value, "ephemeralKey")?, "ephemeralKey")?;
            let entries = wrapped_entries(&vget(value, "wraps")?)?;
            let group_seed: [u8; 32] = ax(dget("group_seed")?, "derivation.group_seed")?;
            let group_id: [u8; 32] = ax(&vget(value, "groupId")?, "groupId")?;
            eq_hex(
                "groupId (public key of derivation.group_seed)",
                &group_id,
                &ed_public(&group_seed),
            )?;
            for (i, s) in lx(dget("member_seeds")?, "member_seeds")?
                .iter()
                .enumerate()
            {
                let seed: [u8; 32] = ax(s, "member seed")?;
                eq_val(
                    &format!("derivation.member_seeds[{i}] unwrapping the group seed"),
                    Ok(group_seed),
                    unwrap_secret(&seed, &eph, &entries),
                )?;
            }
            Ok(())
        }
        "VouchGrantBody" => {
            let eph: [u8; 32] = ax(&vget(value, "ephemeralKey")?, "ephemeralKey")?;
            let mut entry = hx(&vget(value, "grantee")?, "grantee")?;
            entry.extend(hx(&vget(value, "sealedKey")?, "sealedKey")?);
            let seed: [u8; 32] = ax(dget("grantee_seed")?, "derivation.grantee_seed")?;
            let v: [u8; 32] = ax(dget("vouch_key")?, "derivation.vouch_key")?;
            eq_val(
                "derivation.grantee_seed opening sealedKey",
                Ok(v),
                unwrap_secret(&seed, &eph, &[entry]),
            )
        }
        other => Err(bad(format!("no derivation defined for {other}"))),
    }
}

#[cfg(test)]
mod rule_limits {
    use super::{Rule, RULES};
    use distsoc_schema::limits::{field_limit, LimitKind, FIELD_LIMITS};

    /// Every size limit of the reference receiver is the schema's annotation,
    /// and every limit annotated on a struct it checks is in it.
    #[test]
    fn rules_equal_schema_annotations() {
        for &(s, f, rule) in RULES {
            let (kind, value) = match rule {
                Rule::MaxText(n) => (LimitKind::MaxBytes, n),
                Rule::MaxList(n) | Rule::IdList(n) => (LimitKind::MaxItems, n),
                Rule::TextList(n, bytes) => {
                    assert_eq!(
                        field_limit(s, f, LimitKind::MaxItemBytes),
                        Some(bytes as u64),
                        "{s}.{f}: RULES says elements of {bytes} bytes"
                    );
                    (LimitKind::MaxItems, n)
                }
                Rule::Id | Rule::OptId => (LimitKind::ExactBytes, 32),
                Rule::Len(n) => (LimitKind::ExactBytes, n),
                _ => continue,
            };
            assert_eq!(
                field_limit(s, f, kind),
                Some(value as u64),
                "{s}.{f}: RULES says {value}"
            );
        }
        for l in FIELD_LIMITS {
            let checked = RULES.iter().any(|(s, _, _)| *s == l.struct_name);
            let covered = RULES.iter().any(|&(s, f, r)| {
                s == l.struct_name
                    && f == l.field
                    && match l.kind {
                        LimitKind::ExactBytes => {
                            matches!(r, Rule::Id | Rule::OptId | Rule::Len(_))
                        }
                        _ => matches!(
                            r,
                            Rule::MaxText(_)
                                | Rule::MaxList(_)
                                | Rule::IdList(_)
                                | Rule::TextList(..)
                        ),
                    }
            });
            // Judged by the canonical-bytes cap of the type instead: a
            // ciphertext's size, and a recent-post list that cannot exceed
            // its count limit without exceeding the 256 KiB cap first.
            let by_cap = [("SealedBody", "ciphertext"), ("AuthorRecentPosts", "posts")];
            if checked && !by_cap.contains(&(l.struct_name, l.field)) {
                assert!(
                    covered,
                    "{}.{} ${} missing from RULES",
                    l.struct_name,
                    l.field,
                    l.kind.name()
                );
            }
        }
    }
}
