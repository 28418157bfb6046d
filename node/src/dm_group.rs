//! DM group threads (`schema/README.md` §9.1, "Group threads") as
//! **pairwise fan-out over the rotating 1:1 threads**: a message to a group
//! goes to each other member as one DM on the sender's rotated thread with
//! that member (the first one on the identity channel, the later ones under
//! ephemeral ids), so group traffic rotates exactly like 1:1 traffic and
//! the anchor sees nothing it does not see for 1:1 threads. The sealed body
//! of each copy carries a [`DmGroup`]: the 16-byte group thread id and the
//! members, so every member files it in one group thread whichever
//! pairwise thread brought it.
//!
//! This node derives the thread id from the member set ([`thread_id`]):
//! writing to the same people (`dm send --to A --to B`) is writing in the
//! same thread, from whichever member. A received id is taken as given.
//!
//! A received message is filed in its group thread only when its group
//! names at least 2 members, among them its sender and one of this node's
//! ids; otherwise the group is ignored and the message is an ordinary 1:1
//! DM of the pairwise thread (a sender cannot file messages into a thread
//! under names that are not its own).

use distsoc_net::now_ms;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::content::{DmGroup, MAX_DM_GROUP_MEMBERS};

use crate::dm::{DmClient, DmContent, DmError};
use crate::node::{Node, NodeError};
use crate::rotation::RotatedSent;
use crate::store::{GroupDm, GroupThreadId};

/// The thread id this node gives the group of `members` (whoever is in
/// it, the sender included; order and repeats do not matter): the first 16
/// bytes of BLAKE3 `derive_key("distsoc 2026-12 dm group v1", the sorted
/// distinct 32-byte ids concatenated)`.
pub fn thread_id(members: &[NodeId]) -> GroupThreadId {
    let mut ids: Vec<[u8; 32]> = members.iter().map(|m| m.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let input: Vec<u8> = ids.concat();
    let full = blake3::derive_key("distsoc 2026-12 dm group v1", &input);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// One member's copy of a group message: where it went, or why not.
#[derive(Debug)]
pub struct GroupSent {
    /// The member.
    pub to: NodeId,
    /// The anchor's acknowledgement and the chain position, or the error.
    pub result: Result<RotatedSent, DmError>,
}

impl DmClient {
    /// Sends `text` to the group of this client's id and `others`: one DM
    /// per other member on the rotated thread with it, each carrying the
    /// group. Archived once in the group thread when at least one copy was
    /// acknowledged; a member whose copy failed is reported, not retried.
    pub async fn send_group(
        &self,
        others: &[NodeId],
        text: &str,
    ) -> Result<(GroupThreadId, Vec<GroupSent>), DmError> {
        let me = self.me();
        let mut members = vec![me];
        for o in others {
            if !members.contains(o) {
                members.push(*o);
            }
        }
        if members.len() < 3 {
            return Err(DmError::Invalid(
                "a group needs at least two others (for one, send a 1:1 DM)".into(),
            ));
        }
        if members.len() > MAX_DM_GROUP_MEMBERS {
            return Err(DmError::Invalid(format!(
                "a group has at most {MAX_DM_GROUP_MEMBERS} members, you included"
            )));
        }
        let thread = thread_id(&members);
        let group = DmGroup {
            thread_id: thread,
            members: members.iter().map(|m| m.0).collect(),
        };
        // A message the first copy cannot carry (empty, over a limit) is
        // refused before anything is sent: every copy would be refused.
        let sent_at_ms = now_ms();
        let mut out = Vec::with_capacity(members.len() - 1);
        for to in &members[1..] {
            let result = self.send_rotating_in(*to, text, false, Some(&group)).await;
            if let Err(e @ DmError::Invalid(_)) = &result {
                return Err(DmError::Invalid(e.to_string()));
            }
            out.push(GroupSent { to: *to, result });
        }
        if out.iter().any(|s| s.result.is_ok()) {
            let store = self.node().store();
            let key = self.node().archive_key();
            store
                .upsert_dm_group(&thread, &members, sent_at_ms)
                .map_err(NodeError::from)?;
            let mut dedup = blake3::Hasher::new();
            dedup.update(b"distsoc dm group sent");
            dedup.update(&thread);
            dedup.update(&sent_at_ms.to_be_bytes());
            dedup.update(text.as_bytes());
            let mut nonce = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
            dedup.update(&nonce);
            store
                .archive_group_dm(
                    &key,
                    &thread,
                    &GroupDm {
                        sender: me,
                        outgoing: true,
                        sent_at_ms,
                        text: text.to_string(),
                    },
                    *dedup.finalize().as_bytes(),
                    now_ms(),
                )
                .map_err(NodeError::from)?;
        }
        Ok((thread, out))
    }
}

/// Archives a received, opened DM: in its group thread when it names a
/// valid group (module documentation), else in the 1:1 archive under
/// `thread_peer` (the pairwise thread's id). `sender` is the real sender
/// (the peer the pairwise thread is with).
pub(crate) fn archive_received(
    node: &Node,
    key: &[u8; 32],
    thread_peer: NodeId,
    sender: NodeId,
    c: &DmContent,
    dedup: [u8; 32],
) -> Result<(), DmError> {
    if let Some(g) = c.group.as_ref().filter(|g| valid_for(node, g, sender)) {
        let members: Vec<NodeId> = g.members.iter().map(|m| NodeId(*m)).collect();
        node.store()
            .upsert_dm_group(&g.thread_id, &members, c.sent_at_ms)
            .map_err(NodeError::from)?;
        node.store()
            .archive_group_dm(
                key,
                &g.thread_id,
                &GroupDm {
                    sender,
                    outgoing: false,
                    sent_at_ms: c.sent_at_ms,
                    text: c.text.clone(),
                },
                dedup,
                now_ms(),
            )
            .map_err(NodeError::from)?;
        return Ok(());
    }
    let archived = crate::store::ArchivedDm {
        peer: thread_peer,
        outgoing: false,
        sent_at_ms: c.sent_at_ms,
        text: c.text.clone(),
    };
    node.store()
        .archive_dm(key, &archived, dedup, now_ms())
        .map_err(NodeError::from)?;
    Ok(())
}

/// A group is filed as one when it names at least 2 members, among them
/// the sender and one of this node's ids.
fn valid_for(node: &Node, g: &DmGroup, sender: NodeId) -> bool {
    let own = node.own_ids().unwrap_or_default();
    g.members.len() >= 2
        && g.members.contains(&sender.0)
        && g.members.iter().any(|m| own.contains(m))
}
