//! The local DM archive: every DM this node sent, and every DM it received
//! and opened, kept with its peer, direction and time, so that a thread can
//! be read back whatever happened at the anchor (which deletes a message
//! once it is acknowledged).
//!
//! The text is sealed at rest (ChaCha20-Poly1305) under a key the caller
//! derives from the network key ([`archive_key`]): the store file alone
//! (a copied backup, a disk image without `node.key`) does not reveal what
//! was said. The peer, direction and times are in the clear, for ordering.
//!
//! Each row is also `deposited` or not: whether an archive post
//! (`crate::archive`) carries it yet. Rows restored from an archive post are
//! deposited already, so they never travel twice.

use distsoc_protocol::envelope::{aead_open, aead_seal, NONCE_LEN};
use distsoc_protocol::ids::NodeId;
use rand_core::RngCore;
use rusqlite::params;
use zeroize::Zeroizing;

use super::{from_sql_u64, to_sql_u64, Store, StoreError};

/// Most messages [`Store::dm_history`] returns at once.
pub const MAX_HISTORY: usize = 10_000;

/// An archived DM no archive post carries yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDm {
    /// The row's local id (what [`Store::mark_deposited`] takes).
    pub archive_id: i64,
    /// The message.
    pub dm: ArchivedDm,
    /// Its deduplication key (BLAKE3-256 of the payload as it travelled).
    pub dedup: [u8; 32],
}

/// One archived DM, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedDm {
    /// The other side of the thread.
    pub peer: NodeId,
    /// Sent by this node (`false`: received).
    pub outgoing: bool,
    /// When it was written (the sender's signed time), ms since epoch.
    pub sent_at_ms: u64,
    /// The text.
    pub text: String,
}

/// The archive key of a network key's seed: BLAKE3 `derive_key` with the
/// context `"distsoc 2026-12 dm archive v1"`.
pub fn archive_key(network_seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(
        "distsoc 2026-12 dm archive v1",
        network_seed,
    ))
}

/// The associated data of a sealed row: it binds the text to its peer,
/// direction and time, so rows cannot be swapped.
fn aad(peer: &NodeId, outgoing: bool, sent_at_ms: u64) -> [u8; 41] {
    let mut a = [0u8; 41];
    a[..32].copy_from_slice(&peer.0);
    a[32] = u8::from(outgoing);
    a[33..].copy_from_slice(&sent_at_ms.to_be_bytes());
    a
}

/// Opens a row's sealed text.
fn open_row(
    key: &[u8; 32],
    peer: &NodeId,
    outgoing: bool,
    sent_at_ms: u64,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let (nonce, ct) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or_else(|| StoreError::corrupt("dm archive row", "too short"))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| StoreError::corrupt("dm archive row", "nonce"))?;
    let plain = aead_open(key, &nonce, &aad(peer, outgoing, sent_at_ms), ct)
        .map_err(|_| StoreError::corrupt("dm archive row", "does not open with this node's key"))?;
    String::from_utf8(plain).map_err(|_| StoreError::corrupt("dm archive row", "not UTF-8"))
}

impl Store {
    /// Archives one DM (idempotent on `dedup`: a message archived before
    /// is not archived again). Returns whether it was new.
    pub fn archive_dm(
        &self,
        key: &[u8; 32],
        dm: &ArchivedDm,
        dedup: [u8; 32],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.insert_archived(key, dm, dedup, now_ms, false)
    }

    /// Archives one DM restored from an archive post: as
    /// [`archive_dm`](Self::archive_dm), but the row counts as deposited
    /// (an archive post carries it), and a row with the same `dedup` that
    /// was waiting for a deposit is marked deposited. Returns whether it was
    /// new.
    pub fn restore_archived_dm(
        &self,
        key: &[u8; 32],
        dm: &ArchivedDm,
        dedup: [u8; 32],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.insert_archived(key, dm, dedup, now_ms, true)
    }

    fn insert_archived(
        &self,
        key: &[u8; 32],
        dm: &ArchivedDm,
        dedup: [u8; 32],
        now_ms: u64,
        deposited: bool,
    ) -> Result<bool, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let ct = aead_seal(
            key,
            &nonce,
            &aad(&dm.peer, dm.outgoing, dm.sent_at_ms),
            dm.text.as_bytes(),
        )
        .map_err(|_| StoreError::InvalidArgument("the DM could not be sealed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ct);
        self.write(|tx| {
            let new = tx.execute(
                "INSERT OR IGNORE INTO dm_archive
                   (peer, outgoing, sent_at_ms, stored_at_ms, dedup, sealed, deposited)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    &dm.peer.0[..],
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
                    "UPDATE dm_archive SET deposited = 1 WHERE dedup = ?1 AND deposited = 0",
                    params![&dedup[..]],
                )?;
            }
            Ok(new)
        })
    }

    /// Up to `limit` archived DMs no archive post carries yet, oldest row
    /// first, opened with `key`.
    pub fn archive_pending(
        &self,
        key: &[u8; 32],
        limit: usize,
    ) -> Result<Vec<PendingDm>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT archive_id, peer, outgoing, sent_at_ms, dedup, sealed FROM dm_archive
                  WHERE deposited = 0 ORDER BY archive_id LIMIT ?1",
            )?;
            let mut rows = stmt.query(params![limit.min(MAX_HISTORY) as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let peer: Vec<u8> = r.get(1)?;
                let peer = NodeId(
                    peer.try_into()
                        .map_err(|_| StoreError::corrupt("dm archive row", "peer"))?,
                );
                let outgoing: bool = r.get(2)?;
                let sent_at_ms = from_sql_u64("sent_at_ms", r.get(3)?)?;
                let dedup: Vec<u8> = r.get(4)?;
                let dedup: [u8; 32] = dedup
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm archive row", "dedup"))?;
                let sealed: Vec<u8> = r.get(5)?;
                let text = open_row(key, &peer, outgoing, sent_at_ms, &sealed)?;
                out.push(PendingDm {
                    archive_id: r.get(0)?,
                    dm: ArchivedDm {
                        peer,
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

    /// Marks archive rows (`dm_archive` ids) and group messages
    /// (`dm_group_messages` ids) as carried by an archive post, in one
    /// transaction; a table with no ids is not touched.
    pub fn mark_deposited(&self, dms: &[i64], group_messages: &[i64]) -> Result<(), StoreError> {
        self.write(|tx| {
            for (sql, ids) in [
                (
                    "UPDATE dm_archive SET deposited = 1 WHERE archive_id = ?1",
                    dms,
                ),
                (
                    "UPDATE dm_group_messages SET deposited = 1 WHERE id = ?1",
                    group_messages,
                ),
            ] {
                if ids.is_empty() {
                    continue;
                }
                let mut stmt = tx.prepare_cached(sql)?;
                for id in ids {
                    stmt.execute(params![id])?;
                }
            }
            Ok(())
        })
    }

    /// The anchors our own posts (archive posts included) were deposited
    /// at: those with a deposit cursor past 0.
    pub fn deposit_anchors(&self) -> Result<Vec<NodeId>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT anchor FROM deposit_cursors WHERE through_seq > 0 ORDER BY anchor",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let id: Vec<u8> = r.get(0)?;
                out.push(NodeId(id.try_into().map_err(|_| {
                    StoreError::corrupt("deposit cursor", "anchor id")
                })?));
            }
            Ok(out)
        })
    }

    /// How many archived DMs no archive post carries yet.
    pub fn archive_pending_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM dm_archive WHERE deposited = 0",
                [],
                |r| r.get(0),
            )?;
            from_sql_u64("count", n)
        })
    }

    /// The local `seq` through which our own posts were looked at for
    /// archive chunks.
    pub fn archive_restored_seq(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            let v: i64 = tx.query_row(
                "SELECT value FROM counters WHERE name = 'archive_restored_seq'",
                [],
                |r| r.get(0),
            )?;
            from_sql_u64("archive_restored_seq", v)
        })
    }

    /// Sets [`archive_restored_seq`](Self::archive_restored_seq) (it only
    /// moves forward).
    pub fn set_archive_restored_seq(&self, seq: u64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE counters SET value = max(value, ?1) WHERE name = 'archive_restored_seq'",
                params![to_sql_u64(seq)],
            )?;
            Ok(())
        })
    }

    /// The last `limit` (at most [`MAX_HISTORY`]) archived DMs with `peer`,
    /// oldest first. A row that does not open under `key` (another
    /// identity's archive) is an error naming it, not skipped.
    pub fn dm_history(
        &self,
        key: &[u8; 32],
        peer: NodeId,
        limit: usize,
    ) -> Result<Vec<ArchivedDm>, StoreError> {
        let limit = limit.min(MAX_HISTORY);
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT outgoing, sent_at_ms, sealed FROM dm_archive WHERE peer = ?1
                  ORDER BY sent_at_ms DESC, archive_id DESC LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![&peer.0[..], limit as i64])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let outgoing: bool = r.get(0)?;
                let sent_at_ms = from_sql_u64("sent_at_ms", r.get(1)?)?;
                let sealed: Vec<u8> = r.get(2)?;
                let text = open_row(key, &peer, outgoing, sent_at_ms, &sealed)?;
                out.push(ArchivedDm {
                    peer,
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
