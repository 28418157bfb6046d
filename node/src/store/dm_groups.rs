//! DM group threads (`schema/README.md` §9.1, "Group threads"): each group
//! thread this node is in, with its members as the latest message said, and
//! the messages of the thread, sent and received.
//!
//! A group message travels as one DM per other member, each on the pairwise
//! (rotated) thread between its sender and that member; here it is one row
//! of its group thread, whatever pairwise thread brought it. As in the 1:1
//! archive (`store::archive`), the text is sealed at rest
//! (ChaCha20-Poly1305) under the archive key, with associated data binding
//! it to its thread, sender, direction and time; the rest is in the clear,
//! for ordering.

use distsoc_protocol::envelope::{aead_open, aead_seal, NONCE_LEN};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::content::DM_GROUP_THREAD_ID_LEN;
use rand_core::RngCore;
use rusqlite::params;

use super::{from_sql_u64, to_sql_u64, Store, StoreError, MAX_HISTORY};

/// A group thread id.
pub type GroupThreadId = [u8; DM_GROUP_THREAD_ID_LEN];

/// A group thread as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmGroupInfo {
    /// The thread id.
    pub thread: GroupThreadId,
    /// The members (this node's id in the thread included), as the latest
    /// message said.
    pub members: Vec<NodeId>,
    /// The signed time of that message, ms since epoch.
    pub updated_at_ms: u64,
}

/// One message of a group thread, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDm {
    /// Its sender (for one this node sent, the id it sent as).
    pub sender: NodeId,
    /// Sent by this node.
    pub outgoing: bool,
    /// When it was written (the sender's signed time), ms since epoch.
    pub sent_at_ms: u64,
    /// The text.
    pub text: String,
}

fn aad(thread: &GroupThreadId, sender: &NodeId, outgoing: bool, sent_at_ms: u64) -> Vec<u8> {
    let mut a = b"distsoc dm group".to_vec();
    a.extend_from_slice(thread);
    a.extend_from_slice(&sender.0);
    a.push(u8::from(outgoing));
    a.extend_from_slice(&sent_at_ms.to_be_bytes());
    a
}

fn id32(what: &'static str, b: &[u8]) -> Result<[u8; 32], StoreError> {
    b.try_into()
        .map_err(|_| StoreError::corrupt(what, "length"))
}

impl Store {
    /// Records group thread `thread` with `members` as a message signed at
    /// `at_ms` named them; an older message does not change a newer
    /// membership. Returns whether it changed.
    pub fn upsert_dm_group(
        &self,
        thread: &GroupThreadId,
        members: &[NodeId],
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        let packed: Vec<u8> = members.iter().flat_map(|m| m.0).collect();
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO dm_groups (thread, members, updated_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (thread) DO UPDATE
                   SET members = excluded.members, updated_at_ms = excluded.updated_at_ms
                 WHERE excluded.updated_at_ms >= dm_groups.updated_at_ms",
                params![&thread[..], packed, to_sql_u64(at_ms)],
            )? == 1)
        })
    }

    /// Every group thread, most recently updated first.
    pub fn dm_groups(&self) -> Result<Vec<DmGroupInfo>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT thread, members, updated_at_ms FROM dm_groups
                  ORDER BY updated_at_ms DESC, thread",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let thread: Vec<u8> = r.get(0)?;
                let thread: GroupThreadId = thread
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm_groups.thread", "length"))?;
                let packed: Vec<u8> = r.get(1)?;
                if !packed.len().is_multiple_of(32) {
                    return Err(StoreError::corrupt("dm_groups.members", "length"));
                }
                let members = packed
                    .chunks(32)
                    .map(|c| id32("dm_groups.members", c).map(NodeId))
                    .collect::<Result<_, _>>()?;
                out.push(DmGroupInfo {
                    thread,
                    members,
                    updated_at_ms: from_sql_u64("dm_groups.updated_at_ms", r.get(2)?)?,
                });
            }
            Ok(out)
        })
    }

    /// Archives one message of group thread `thread` (idempotent on
    /// `dedup`). Returns whether it was new.
    pub fn archive_group_dm(
        &self,
        key: &[u8; 32],
        thread: &GroupThreadId,
        dm: &GroupDm,
        dedup: [u8; 32],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let ct = aead_seal(
            key,
            &nonce,
            &aad(thread, &dm.sender, dm.outgoing, dm.sent_at_ms),
            dm.text.as_bytes(),
        )
        .map_err(|_| StoreError::InvalidArgument("the DM could not be sealed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ct);
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO dm_group_messages
                   (thread, sender, outgoing, sent_at_ms, stored_at_ms, dedup, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    &thread[..],
                    &dm.sender.0[..],
                    dm.outgoing,
                    to_sql_u64(dm.sent_at_ms),
                    to_sql_u64(now_ms),
                    &dedup[..],
                    sealed
                ],
            )? == 1)
        })
    }

    /// The last `limit` (at most [`MAX_HISTORY`]) messages of group thread
    /// `thread`, oldest first.
    pub fn dm_group_history(
        &self,
        key: &[u8; 32],
        thread: &GroupThreadId,
        limit: usize,
    ) -> Result<Vec<GroupDm>, StoreError> {
        let limit = limit.min(MAX_HISTORY);
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT sender, outgoing, sent_at_ms, sealed FROM dm_group_messages
                  WHERE thread = ?1 ORDER BY sent_at_ms DESC, id DESC LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![&thread[..], limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let sender: Vec<u8> = r.get(0)?;
                let sender = NodeId(id32("dm_group_messages.sender", &sender)?);
                let outgoing: bool = r.get(1)?;
                let sent_at_ms = from_sql_u64("sent_at_ms", r.get(2)?)?;
                let sealed: Vec<u8> = r.get(3)?;
                let (nonce, ct) = sealed
                    .split_at_checked(NONCE_LEN)
                    .ok_or_else(|| StoreError::corrupt("dm group row", "too short"))?;
                let nonce: [u8; NONCE_LEN] = nonce
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm group row", "nonce"))?;
                let plain = aead_open(key, &nonce, &aad(thread, &sender, outgoing, sent_at_ms), ct)
                    .map_err(|_| {
                        StoreError::corrupt("dm group row", "does not open with this node's key")
                    })?;
                let text = String::from_utf8(plain)
                    .map_err(|_| StoreError::corrupt("dm group row", "not UTF-8"))?;
                out.push(GroupDm {
                    sender,
                    outgoing,
                    sent_at_ms,
                    text,
                });
            }
            out.reverse();
            Ok(out)
        })
    }
}
