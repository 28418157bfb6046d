//! DMs this node fetched but could not open, kept before they are
//! acknowledged (`schema/README.md` §9): acknowledging a message makes the
//! anchor delete it, so a message that cannot be read here is stored first,
//! payload and all, for a later build or a restored key to open.

use distsoc_protocol::ids::{ChannelId, NodeId};
use rusqlite::params;

use super::{blob, from_sql_u64, id32, to_sql_u64, Store, StoreError};

/// Most undecryptable DMs kept; beyond it nothing more is kept, so nothing
/// more is acknowledged (the messages stay queued at the anchor until the
/// user has looked at the kept ones, or until their TTL).
pub const MAX_KEPT_DMS: usize = 1_000;

/// Most payload bytes of undecryptable DMs kept.
pub const MAX_KEPT_DM_BYTES: usize = 64 * 1024 * 1024;

/// A DM that could not be opened, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptDm {
    /// The anchor it came from.
    pub anchor: NodeId,
    /// Its channel there (`None`: the legacy mailbox).
    pub channel: Option<ChannelId>,
    /// The anchor's message id.
    pub message_id: u64,
    /// The sender the anchor authenticated.
    pub sender: NodeId,
    /// When the anchor accepted it, ms since epoch.
    pub received_at_ms: u64,
    /// Why it could not be opened.
    pub reason: String,
    /// The payload as fetched.
    pub payload: Vec<u8>,
}

impl Store {
    /// Keeps an undecryptable DM (idempotent: the same payload is kept
    /// once). [`StoreError::Full`] beyond [`MAX_KEPT_DMS`] or
    /// [`MAX_KEPT_DM_BYTES`]; then the caller must not acknowledge it.
    pub fn keep_undecryptable_dm(&self, dm: &KeptDm, now_ms: u64) -> Result<(), StoreError> {
        let hash = blake3::hash(&dm.payload);
        self.write(|tx| {
            let held: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM undecryptable_dms WHERE payload_hash = ?1)",
                [&hash.as_bytes()[..]],
                |r| r.get(0),
            )?;
            if held {
                return Ok(());
            }
            let (n, bytes): (i64, i64) = tx.query_row(
                "SELECT count(*), COALESCE(SUM(length(payload)), 0) FROM undecryptable_dms",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let bytes = usize::try_from(bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(dm.payload.len());
            if usize::try_from(n).unwrap_or(usize::MAX) >= MAX_KEPT_DMS || bytes > MAX_KEPT_DM_BYTES
            {
                return Err(StoreError::Full {
                    what: "kept undecryptable DMs",
                    max: MAX_KEPT_DMS,
                });
            }
            tx.execute(
                "INSERT INTO undecryptable_dms (payload_hash, anchor, channel, message_id, sender,
                   received_at_ms, kept_at_ms, reason, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    &hash.as_bytes()[..],
                    &dm.anchor.0[..],
                    dm.channel.as_ref().map(|c| c.0.to_vec()),
                    to_sql_u64(dm.message_id),
                    &dm.sender.0[..],
                    to_sql_u64(dm.received_at_ms),
                    to_sql_u64(now_ms),
                    dm.reason,
                    dm.payload,
                ],
            )?;
            Ok(())
        })
    }

    /// The kept undecryptable DMs, oldest first.
    pub fn undecryptable_dms(&self) -> Result<Vec<KeptDm>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT anchor, channel, message_id, sender, received_at_ms, reason, payload
                   FROM undecryptable_dms ORDER BY kept_at_ms, received_at_ms",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let channel: Option<Vec<u8>> = r.get(1)?;
                let channel = channel
                    .map(|c| {
                        <[u8; 16]>::try_from(c.as_slice())
                            .map(ChannelId)
                            .map_err(|_| StoreError::corrupt("channel id", "not 16 bytes"))
                    })
                    .transpose()?;
                out.push(KeptDm {
                    anchor: NodeId(id32("anchor", blob(r, 0)?)?),
                    channel,
                    message_id: from_sql_u64("message id", r.get(2)?)?,
                    sender: NodeId(id32("sender", blob(r, 3)?)?),
                    received_at_ms: from_sql_u64("received at", r.get(4)?)?,
                    reason: r.get(5)?,
                    payload: r.get(6)?,
                });
            }
            Ok(out)
        })
    }
}
