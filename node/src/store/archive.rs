//! The local DM archive: every DM this node sent, and every DM it received
//! and opened, kept with its peer, direction and time, so that a thread can
//! be read back whatever happened at the anchor (which deletes a message
//! once it is acknowledged).
//!
//! The text is sealed at rest (ChaCha20-Poly1305) under a key the caller
//! derives from the network key ([`archive_key`]): the store file alone
//! (a copied backup, a disk image without `node.key`) does not reveal what
//! was said. The peer, direction and times are in the clear, for ordering.

use distsoc_protocol::envelope::{aead_open, aead_seal, NONCE_LEN};
use distsoc_protocol::ids::NodeId;
use rand_core::RngCore;
use rusqlite::params;
use zeroize::Zeroizing;

use super::{from_sql_u64, to_sql_u64, Store, StoreError};

/// Most messages [`Store::dm_history`] returns at once.
pub const MAX_HISTORY: usize = 10_000;

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
            Ok(tx.execute(
                "INSERT OR IGNORE INTO dm_archive
                   (peer, outgoing, sent_at_ms, stored_at_ms, dedup, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    &dm.peer.0[..],
                    dm.outgoing,
                    to_sql_u64(dm.sent_at_ms),
                    to_sql_u64(now_ms),
                    &dedup[..],
                    sealed
                ],
            )? == 1)
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
                let (nonce, ct) = sealed
                    .split_at_checked(NONCE_LEN)
                    .ok_or_else(|| StoreError::corrupt("dm archive row", "too short"))?;
                let nonce: [u8; NONCE_LEN] = nonce
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm archive row", "nonce"))?;
                let plain = aead_open(key, &nonce, &aad(&peer, outgoing, sent_at_ms), ct).map_err(
                    |_| StoreError::corrupt("dm archive row", "does not open with this node's key"),
                )?;
                let text = String::from_utf8(plain)
                    .map_err(|_| StoreError::corrupt("dm archive row", "not UTF-8"))?;
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
