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

/// A group message no archive post carries yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGroupDm {
    /// The row's local id (what [`Store::mark_deposited`] takes).
    pub id: i64,
    /// Its group thread.
    pub thread: GroupThreadId,
    /// The thread's members as this node knows them now (the latest
    /// message's; the store keeps no older membership).
    pub members: Vec<NodeId>,
    /// The message.
    pub dm: GroupDm,
    /// Its deduplication key.
    pub dedup: [u8; 32],
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

fn unpack_members(packed: &[u8]) -> Result<Vec<NodeId>, StoreError> {
    if !packed.len().is_multiple_of(32) {
        return Err(StoreError::corrupt("dm_groups.members", "length"));
    }
    packed
        .chunks(32)
        .map(|c| id32("dm_groups.members", c).map(NodeId))
        .collect()
}

/// Opens a group row's sealed text.
fn open_row(
    key: &[u8; 32],
    thread: &GroupThreadId,
    sender: &NodeId,
    outgoing: bool,
    sent_at_ms: u64,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let (nonce, ct) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or_else(|| StoreError::corrupt("dm group row", "too short"))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| StoreError::corrupt("dm group row", "nonce"))?;
    let plain = aead_open(key, &nonce, &aad(thread, sender, outgoing, sent_at_ms), ct)
        .map_err(|_| StoreError::corrupt("dm group row", "does not open with this node's key"))?;
    String::from_utf8(plain).map_err(|_| StoreError::corrupt("dm group row", "not UTF-8"))
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
                let members = unpack_members(&packed)?;
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
        self.insert_group_dm(key, thread, dm, dedup, now_ms, false)
    }

    /// Archives one group message restored from an archive post: as
    /// [`archive_group_dm`](Self::archive_group_dm), but the row counts as
    /// deposited, and a row with the same `dedup` waiting for a deposit is
    /// marked deposited. Returns whether it was new.
    pub fn restore_group_dm(
        &self,
        key: &[u8; 32],
        thread: &GroupThreadId,
        dm: &GroupDm,
        dedup: [u8; 32],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.insert_group_dm(key, thread, dm, dedup, now_ms, true)
    }

    fn insert_group_dm(
        &self,
        key: &[u8; 32],
        thread: &GroupThreadId,
        dm: &GroupDm,
        dedup: [u8; 32],
        now_ms: u64,
        deposited: bool,
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
            let new = tx.execute(
                "INSERT OR IGNORE INTO dm_group_messages
                   (thread, sender, outgoing, sent_at_ms, stored_at_ms, dedup, sealed, deposited)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &thread[..],
                    &dm.sender.0[..],
                    dm.outgoing,
                    to_sql_u64(dm.sent_at_ms),
                    to_sql_u64(now_ms),
                    &dedup[..],
                    sealed,
                    deposited
                ],
            )? == 1;
            if !new && deposited {
                tx.execute(
                    "UPDATE dm_group_messages SET deposited = 1
                      WHERE dedup = ?1 AND deposited = 0",
                    params![&dedup[..]],
                )?;
            }
            Ok(new)
        })
    }

    /// Up to `limit` group messages no archive post carries yet, oldest row
    /// first, opened with `key`, each with its thread's current members.
    pub fn group_archive_pending(
        &self,
        key: &[u8; 32],
        limit: usize,
    ) -> Result<Vec<PendingGroupDm>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT m.id, m.thread, m.sender, m.outgoing, m.sent_at_ms, m.dedup, m.sealed,
                        g.members
                   FROM dm_group_messages m JOIN dm_groups g ON g.thread = m.thread
                  WHERE m.deposited = 0 ORDER BY m.id LIMIT ?1",
            )?;
            let mut rows = stmt.query(params![limit.min(MAX_HISTORY) as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let thread: Vec<u8> = r.get(1)?;
                let thread: GroupThreadId = thread
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm_group_messages.thread", "length"))?;
                let sender: Vec<u8> = r.get(2)?;
                let sender = NodeId(id32("dm_group_messages.sender", &sender)?);
                let outgoing: bool = r.get(3)?;
                let sent_at_ms = from_sql_u64("sent_at_ms", r.get(4)?)?;
                let dedup: Vec<u8> = r.get(5)?;
                let dedup = id32("dm_group_messages.dedup", &dedup)?;
                let sealed: Vec<u8> = r.get(6)?;
                let text = open_row(key, &thread, &sender, outgoing, sent_at_ms, &sealed)?;
                let packed: Vec<u8> = r.get(7)?;
                out.push(PendingGroupDm {
                    id: r.get(0)?,
                    thread,
                    members: unpack_members(&packed)?,
                    dm: GroupDm {
                        sender,
                        outgoing,
                        sent_at_ms,
                        text,
                    },
                    dedup,
                });
            }
            Ok(out)
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
                let text = open_row(key, thread, &sender, outgoing, sent_at_ms, &sealed)?;
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
