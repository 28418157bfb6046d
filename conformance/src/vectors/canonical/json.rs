//! Domain values → JSON form (every Text and List field present, as
//! `distsoc-protocol` writes them; optional Data fields only when set).

use serde_json::{json, Value};

use distsoc_protocol::envelope::WrappedKey;
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{
    Attachment, AuthorRecentPosts, CommentBody, CommentPolicy, DeleteRecordBody, DmGroup,
    HeartBody, Post, PostBody, PostContent, PostHeader, PostVisibility, VisibilityUpdateBody,
};
use distsoc_protocol::messages::identity::{
    GroupKeyWrapBody, IdentityBundle, Kdf, KdfParams, PublicProfile, VouchGrantBody,
};
use distsoc_protocol::messages::social::{
    AudienceDecision, AudienceRequestBody, AudienceResponseBody,
};

// ---------------------------------------------------------------------------
// Domain values -> JSON form (every Text and List field present, as
// distsoc-protocol writes them; optional Data fields only when set).

pub(super) fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

pub(super) fn hex_list<T: AsRef<[u8]>>(items: &[T]) -> Value {
    Value::Array(items.iter().map(h).collect())
}

pub(super) fn attachment_json(a: &Attachment) -> Value {
    let mut v = json!({
        "blobId": h(a.blob_id.0),
        "mimeType": a.mime_type,
        "sizeBytes": a.size_bytes,
    });
    if let Some(name) = &a.name {
        v["name"] = json!(name);
    }
    v
}

pub(super) fn post_body_json(b: &PostBody) -> Value {
    let mut v = json!({
        "text": b.text,
        "attachments": b.attachments.iter().map(attachment_json).collect::<Vec<_>>(),
    });
    if let Some(r) = &b.rotation {
        v["rotation"] = json!({ "nextPostingId": h(r.next_posting_id) });
    }
    if let Some(a) = &b.archive {
        v["archive"] = json!({
            "entries": a.entries.iter().map(|e| {
                let mut v = json!({
                    "peer": h(e.peer),
                    "outgoing": e.outgoing,
                    "createdAtMs": e.created_at_ms,
                    "text": e.text,
                    "dedup": h(e.dedup),
                });
                if let Some(g) = &e.group {
                    v["group"] = dm_group_json(g);
                }
                v
            }).collect::<Vec<_>>(),
        });
    }
    if let Some(g) = &b.group {
        v["group"] = dm_group_json(g);
    }
    v
}

fn dm_group_json(g: &DmGroup) -> Value {
    json!({
        "threadId": h(g.thread_id),
        "members": g.members.iter().map(h).collect::<Vec<_>>(),
    })
}

pub(super) fn post_json(p: &Post) -> Value {
    let content = match &p.content {
        PostContent::Plain(body) => json!({ "plain": post_body_json(body) }),
        PostContent::Sealed(s) => json!({
            "sealed": { "nonce": h(s.nonce), "ciphertext": h(&s.ciphertext) }
        }),
    };
    let mut v = json!({
        "author": h(p.author.0),
        "createdAtMs": p.created_at_ms,
        "content": content,
    });
    if let Some(id) = &p.reply_to {
        v["replyTo"] = h(id.0);
    }
    if let Some(id) = &p.replaces {
        v["replaces"] = h(id.0);
    }
    v
}

pub(super) fn wrapped_json(keys: &[WrappedKey]) -> Value {
    Value::Array(
        keys.iter()
            .map(|w| json!({ "recipient": h(w.recipient), "wrapped": h(w.wrapped) }))
            .collect(),
    )
}

pub(super) fn visibility_json(v: &PostVisibility) -> Value {
    match v {
        PostVisibility::Public => json!({ "public": null }),
        PostVisibility::Encrypted(e) => json!({
            "encrypted": {
                "ephemeralKey": h(e.ephemeral_key),
                "recipients": wrapped_json(&e.recipients),
            }
        }),
        _ => json!({ "unknown": null }),
    }
}

pub(super) fn policy_name(p: CommentPolicy) -> &'static str {
    match p {
        CommentPolicy::Public => "public",
        CommentPolicy::FollowersOnly => "followersOnly",
        CommentPolicy::None => "none",
        CommentPolicy::FriendsOfFriends => "friendsOfFriends",
        _ => "unknown",
    }
}

pub(super) fn header_json(x: &PostHeader) -> Value {
    let slots: Vec<Value> = x
        .wrap_slots
        .iter()
        .map(|s| json!({ "tag": h(s.tag), "sealed": h(s.sealed) }))
        .collect();
    let mut v = json!({
        "postId": h(x.post_id.0),
        "author": h(x.author.0),
        "commentPolicy": policy_name(x.comment_policy),
        "wrapSlots": slots,
        "updatedAtMs": x.updated_at_ms,
    });
    if let Some(p) = &x.pub_post {
        v["pubPost"] = h(p);
    }
    v
}

pub(super) fn comment_json(c: &CommentBody) -> Value {
    let mut v = json!({
        "parentPostId": h(c.parent_post_id.0),
        "author": h(c.author.0),
        "createdAtMs": c.created_at_ms,
        "text": c.text,
    });
    if let Some(r) = &c.reply_to {
        v["replyTo"] = h(r.0);
    }
    v
}

pub(super) fn delete_json(d: &DeleteRecordBody) -> Value {
    let mut v = json!({
        "postId": h(d.post_id.0),
        "author": h(d.author.0),
        "deletedAtMs": d.deleted_at_ms,
    });
    if let Some(r) = &d.replaced_by {
        v["replacedBy"] = h(r.0);
    }
    v
}

pub(super) fn visibility_update_json(u: &VisibilityUpdateBody) -> Value {
    json!({
        "postId": h(u.post_id.0),
        "author": h(u.author.0),
        "visibility": visibility_json(&u.visibility),
        "updatedAtMs": u.updated_at_ms,
    })
}

pub(super) fn hint_name(h: VisibilityHint) -> &'static str {
    match h {
        VisibilityHint::Public => "public",
        VisibilityHint::Encrypted => "encrypted",
        _ => "unknown",
    }
}

pub(super) fn recent_json(r: &AuthorRecentPosts) -> Value {
    let posts: Vec<Value> = r
        .posts
        .iter()
        .map(|p| {
            json!({
                "postId": h(p.post_id.0),
                "createdAtMs": p.created_at_ms,
                "hint": hint_name(p.hint),
            })
        })
        .collect();
    json!({
        "author": h(r.author.0),
        "seq": r.seq,
        "updatedAtMs": r.updated_at_ms,
        "posts": posts,
    })
}

pub(super) fn heart_json(x: &HeartBody) -> Value {
    json!({
        "postId": h(x.post_id.0),
        "reactor": h(x.reactor.0),
        "createdAtMs": x.created_at_ms,
    })
}

pub(super) fn profile_json(p: &PublicProfile) -> Value {
    let anchors: Vec<[u8; 32]> = p.anchors.iter().map(|a| a.0).collect();
    let mut v = json!({
        "postingId": h(p.posting_id.0),
        "displayName": p.display_name,
        "bio": p.bio,
        "anchors": hex_list(&anchors),
        "updatedAtMs": p.updated_at_ms,
    });
    if let Some(a) = &p.avatar {
        v["avatar"] = h(a.0);
    }
    if let Some(n) = &p.network_id {
        v["networkId"] = h(n.0);
    }
    v
}

pub(super) fn group_key_wrap_json(g: &GroupKeyWrapBody) -> Value {
    let members: Vec<[u8; 32]> = g.members.iter().map(|m| m.0).collect();
    json!({
        "groupId": h(g.group_id.0),
        "epoch": g.epoch,
        "admin": h(g.admin.0),
        "ephemeralKey": h(g.ephemeral_key),
        "members": hex_list(&members),
        "wraps": wrapped_json(&g.wraps),
        "createdAtMs": g.created_at_ms,
    })
}

pub(super) fn vouch_grant_json(g: &VouchGrantBody) -> Value {
    json!({
        "grantor": h(g.grantor.0),
        "grantee": h(g.grantee.0),
        "ephemeralKey": h(g.ephemeral_key),
        "sealedKey": h(g.sealed_key),
        "createdAtMs": g.created_at_ms,
    })
}

pub(super) fn audience_request_json(a: &AudienceRequestBody) -> Value {
    json!({
        "requester": h(a.requester.0),
        "author": h(a.author.0),
        "message": a.message,
        "createdAtMs": a.created_at_ms,
    })
}

pub(super) fn decision_name(d: AudienceDecision) -> &'static str {
    match d {
        AudienceDecision::Approved => "approved",
        AudienceDecision::Denied => "denied",
        AudienceDecision::Revoked => "revoked",
        _ => "unknown",
    }
}

pub(super) fn audience_response_json(a: &AudienceResponseBody) -> Value {
    json!({
        "author": h(a.author.0),
        "requester": h(a.requester.0),
        "decision": decision_name(a.decision),
        "decidedAtMs": a.decided_at_ms,
    })
}

pub(super) fn bundle_json(b: &IdentityBundle) -> Value {
    let identities: Vec<Value> = b
        .posting_identities
        .iter()
        .map(|p| {
            json!({
                "postingId": h(p.posting_id.0),
                "secretSeed": h(*p.secret_seed),
                "displayName": p.display_name,
                "createdAtMs": p.created_at_ms,
                "ephemeral": p.ephemeral,
            })
        })
        .collect();
    let vouch_keys: Vec<Value> = b
        .vouch_keys
        .iter()
        .map(|k| {
            let mut v = json!({
                "key": h(k.key.as_bytes()),
                "grantor": h(k.grantor.0),
                "createdAtMs": k.created_at_ms,
            });
            if let Some(g) = &k.grantee {
                v["grantee"] = h(g.0);
            }
            v
        })
        .collect();
    let group_keys: Vec<Value> = b
        .group_keys
        .iter()
        .map(|g| {
            json!({
                "groupId": h(g.group_id.0),
                "secretSeed": h(*g.secret_seed),
                "epoch": g.epoch,
                "name": g.name,
            })
        })
        .collect();
    let mut v = json!({
        "version": b.version,
        "networkSeed": h(*b.network_seed),
        "postingIdentities": identities,
        "defaultPostingId": h(b.default_posting_id.0),
        "vouchKeys": vouch_keys,
        "groupKeys": group_keys,
        "createdAtMs": b.created_at_ms,
    });
    v["follows"] = b
        .follows
        .iter()
        .map(|f| {
            let mut v = json!({"postingId": h(f.posting_id.0), "followedAtMs": f.followed_at_ms});
            if let Some(p) = f.persona {
                v["persona"] = h(p.0);
            }
            v
        })
        .collect();
    v["circles"] = b
        .circles
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "createdAtMs": c.created_at_ms,
                "members": c.members.iter().map(|m| h(m.0)).collect::<Vec<_>>(),
            })
        })
        .collect();
    v["dmThreads"] = b
        .dm_threads
        .iter()
        .map(|t| {
            json!({
                "peer": h(t.peer.0),
                "outgoing": t.outgoing,
                "n": t.n,
                "atMs": t.at_ms,
                "seed": h(*t.seed),
            })
        })
        .collect();
    v["archiveAnchors"] = json!(b.archive_anchors);
    v
}

pub(super) fn kdf_json(k: &KdfParams) -> Value {
    json!({
        "kdf": match k.kdf { Kdf::Argon2id => "argon2id", _ => "unknown" },
        "memoryKib": k.memory_kib,
        "iterations": k.iterations,
        "parallelism": k.parallelism,
        "salt": h(k.salt),
    })
}
