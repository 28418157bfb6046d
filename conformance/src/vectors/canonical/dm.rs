//! The sealed `PostBody` vectors of direct messages (schema/README.md
//! §9.1): a rotated DM, an archive post's chunk, one member's copy of a
//! group message.

use distsoc_protocol::messages::content::{
    DmArchiveChunk, DmArchiveEntry, DmGroup, DmRotation, PostBody, MAX_POST_BYTES,
};

use super::json::post_body_json;
use super::{pid, Gen, Valid, ALICE, BOB, CAROL, T0};

/// Adds the DM body vectors to `g`.
pub(super) fn dm_bodies(g: &mut Gen) {
    // The sealed body of message n of a rotated DM thread: it carries s(n+1)
    // (dm_rotation.json has the chain).
    let dm_body = PostBody {
        text: "see you at 8".into(),
        attachments: Vec::new(),
        rotation: Some(DmRotation {
            next_posting_id: distsoc_protocol::dm_rotation::next_seed(&[0x5e; 32]),
        }),
        archive: None,
        group: None,
    };
    g.value(
        Valid::new(
            "post-body-dm-rotation",
            "The sealed PostBody of a rotated DM (schema/README.md §9.1): rotation (pointer 2) holds a DmRotation whose nextPostingId is the 32-byte seed of the sender's next message, here the default next seed of a seed of 32 bytes 0x5e (dm_rotation.json). attachments is an empty list, text a 13-byte list in 2 words.",
            &["post-body", "dm-rotation"],
            "PostBody",
            post_body_json(&dm_body),
        ),
        &dm_body,
        MAX_POST_BYTES,
    );
    // The sealed body of an archive post (schema/README.md §9.1, "The
    // archive deposit"): no text, a chunk of two archived DMs with Bob and
    // one group message from Carol.
    let archive_body = PostBody {
        archive: Some(DmArchiveChunk {
            entries: vec![
                DmArchiveEntry {
                    peer: pid(&BOB).0,
                    outgoing: true,
                    created_at_ms: T0 + 40,
                    text: "see you at 8".into(),
                    dedup: *blake3::hash(b"distsoc archive vector payload 1").as_bytes(),
                    group: None,
                },
                DmArchiveEntry {
                    peer: pid(&BOB).0,
                    outgoing: false,
                    created_at_ms: T0 + 41,
                    text: "ok".into(),
                    dedup: *blake3::hash(b"distsoc archive vector payload 2").as_bytes(),
                    group: None,
                },
                DmArchiveEntry {
                    peer: pid(&CAROL).0,
                    outgoing: false,
                    created_at_ms: T0 + 42,
                    text: "me too".into(),
                    dedup: *blake3::hash(b"distsoc archive vector payload 3").as_bytes(),
                    group: Some(DmGroup {
                        thread_id: [0x47; 16],
                        members: vec![pid(&ALICE).0, pid(&BOB).0, pid(&CAROL).0],
                    }),
                },
            ],
        }),
        ..PostBody::default()
    };
    g.value(
        Valid::new(
            "post-body-dm-archive",
            "The sealed PostBody of an archive post (schema/README.md §9.1, \"The archive deposit\"; the post is by the node's NodeId and sealed to it alone): text empty (a 1-byte list, the NUL), attachments an empty list, rotation null, archive (pointer 3) a DmArchiveChunk whose entries (pointer 0) are three DmArchiveEntry elements of 2 data words and 4 pointers: peer (pointer 0, a 32-byte NodeId), outgoing (Bool at bit 0), createdAtMs (UInt64 at byte 8), text (pointer 1), dedup (pointer 2, BLAKE3-256 of the DM payload as it travelled; here of a fixed label), group (pointer 3, a DmGroup, null for a 1:1 message). The first was sent to Bob, the second received from him; the third is a group message received from Carol (peer is then the sender) in group thread 0x47… of Alice, Bob and Carol.",
            &["post-body", "dm-archive"],
            "PostBody",
            post_body_json(&archive_body),
        ),
        &archive_body,
        MAX_POST_BYTES,
    );
    // One member's copy of a group message (schema/README.md §9.1, "Group
    // threads"): the pairwise rotation and the group thread it belongs to.
    let group_body = PostBody {
        text: "dinner at 8?".into(),
        attachments: Vec::new(),
        rotation: Some(DmRotation {
            next_posting_id: distsoc_protocol::dm_rotation::next_seed(&[0x5e; 32]),
        }),
        archive: None,
        group: Some(DmGroup {
            thread_id: [0x47; 16],
            members: vec![[0xa1; 32], [0xb2; 32], [0xc3; 32]],
        }),
    };
    g.value(
        Valid::new(
            "post-body-dm-group",
            "The sealed PostBody of one member's copy of a group DM (schema/README.md §9.1, Group threads): rotation (pointer 2) as in post-body-dm-rotation, pointer 3 (archive) null, and group (pointer 4) a DmGroup whose threadId (pointer 0) is 16 bytes 0x47 and whose members (pointer 1) are three 32-byte ids (0xa1.., 0xb2.., 0xc3..), a list of 3 pointers to 32-byte byte lists. The PostBody struct has 5 pointers.",
            &["post-body", "dm-rotation", "dm-group"],
            "PostBody",
            post_body_json(&group_body),
        ),
        &group_body,
        MAX_POST_BYTES,
    );
}
