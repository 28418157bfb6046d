//! The state of rotating DM threads (`schema/README.md` §9.1): per peer,
//! the seed of our next message (our chain) and the first seed of the
//! window we watch for the peer's messages (the peer's chain).
//!
//! A seed is a secret (whoever holds it can read or forge that message), so
//! it is sealed at rest (ChaCha20-Poly1305) under the archive key, bound to
//! its peer, direction and chain position. Only the current seed of each
//! chain is kept: moving the chain overwrites it, so the keys of ids older
//! than the window are gone.

use distsoc_protocol::dm_rotation::ChainSeed;
use distsoc_protocol::envelope::{aead_open, aead_seal, NONCE_LEN};
use distsoc_protocol::ids::{NodeId, PostingId};
use rand_core::RngCore;
use rusqlite::{params, OptionalExtension};

use super::{from_sql_u64, to_sql_u64, Store, StoreError};

/// One direction of a thread: where its chain is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmChain {
    /// Outgoing: the seed of our next message. Incoming: the first seed of
    /// the receive window (the one after the last accepted message).
    pub seed: ChainSeed,
    /// The chain position of `seed` (1 for the seed a first message
    /// carried).
    pub n: u64,
    /// Incoming: the signed time of the message that carried `seed` (a
    /// re-seed from an older message is ignored). Outgoing: when it was
    /// set, ms since epoch.
    pub at_ms: u64,
}

/// The associated data of a sealed seed.
fn aad(peer: &NodeId, outgoing: bool, n: u64) -> [u8; 58] {
    let mut a = [0u8; 58];
    a[..17].copy_from_slice(b"distsoc dm thread");
    a[17..49].copy_from_slice(&peer.0);
    a[49] = u8::from(outgoing);
    a[50..].copy_from_slice(&n.to_be_bytes());
    a
}

fn seal(
    key: &[u8; 32],
    peer: &NodeId,
    outgoing: bool,
    chain: &DmChain,
) -> Result<Vec<u8>, StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let ct = aead_seal(
        key,
        &nonce,
        &aad(peer, outgoing, chain.n),
        chain.seed.as_bytes(),
    )
    .map_err(|_| StoreError::InvalidArgument("the thread seed could not be sealed"))?;
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ct);
    Ok(sealed)
}

fn open(
    key: &[u8; 32],
    peer: &NodeId,
    outgoing: bool,
    n: u64,
    sealed: &[u8],
) -> Result<ChainSeed, StoreError> {
    let (nonce, ct) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or_else(|| StoreError::corrupt("dm thread row", "too short"))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| StoreError::corrupt("dm thread row", "nonce"))?;
    let plain = aead_open(key, &nonce, &aad(peer, outgoing, n), ct)
        .map_err(|_| StoreError::corrupt("dm thread row", "does not open with this node's key"))?;
    let seed: [u8; 32] = plain
        .try_into()
        .map_err(|_| StoreError::corrupt("dm thread row", "seed length"))?;
    Ok(ChainSeed::from_bytes(seed))
}

impl Store {
    /// The chain of the thread with `peer` in one direction (`outgoing`:
    /// ours), if it has started.
    pub fn dm_chain(
        &self,
        key: &[u8; 32],
        peer: NodeId,
        outgoing: bool,
    ) -> Result<Option<DmChain>, StoreError> {
        self.read(|tx| {
            let row: Option<(i64, i64, Vec<u8>)> = tx
                .query_row(
                    "SELECT n, at_ms, sealed_seed FROM dm_threads
                      WHERE peer = ?1 AND outgoing = ?2",
                    params![&peer.0[..], outgoing],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((n, at_ms, sealed)) = row else {
                return Ok(None);
            };
            let n = from_sql_u64("dm_threads.n", n)?;
            Ok(Some(DmChain {
                seed: open(key, &peer, outgoing, n, &sealed)?,
                n,
                at_ms: from_sql_u64("dm_threads.at_ms", at_ms)?,
            }))
        })
    }

    /// Sets the chain of the thread with `peer` in one direction,
    /// replacing (and so forgetting) the seed it had.
    pub fn set_dm_chain(
        &self,
        key: &[u8; 32],
        peer: NodeId,
        outgoing: bool,
        chain: &DmChain,
    ) -> Result<(), StoreError> {
        let sealed = seal(key, &peer, outgoing, chain)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO dm_threads (peer, outgoing, n, at_ms, sealed_seed)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (peer, outgoing) DO UPDATE
                   SET n = excluded.n, at_ms = excluded.at_ms,
                       sealed_seed = excluded.sealed_seed",
                params![
                    &peer.0[..],
                    outgoing,
                    to_sql_u64(chain.n),
                    to_sql_u64(chain.at_ms),
                    sealed
                ],
            )?;
            Ok(())
        })
    }

    /// Re-seeds the peer's chain from a message on the identity channel
    /// signed at `chain.at_ms`: applied unless the chain was last moved by
    /// a message signed later (an old first message fetched again must not
    /// rewind the thread). Returns whether it was applied.
    pub fn reseed_incoming_dm_chain(
        &self,
        key: &[u8; 32],
        peer: NodeId,
        chain: &DmChain,
    ) -> Result<bool, StoreError> {
        let sealed = seal(key, &peer, false, chain)?;
        self.write(|tx| {
            Ok(tx.execute(
                "INSERT INTO dm_threads (peer, outgoing, n, at_ms, sealed_seed)
                 VALUES (?1, 0, ?2, ?3, ?4)
                 ON CONFLICT (peer, outgoing) DO UPDATE
                   SET n = excluded.n, at_ms = excluded.at_ms,
                       sealed_seed = excluded.sealed_seed
                 WHERE excluded.at_ms > dm_threads.at_ms",
                params![
                    &peer.0[..],
                    to_sql_u64(chain.n),
                    to_sql_u64(chain.at_ms),
                    sealed
                ],
            )? == 1)
        })
    }

    /// Every thread direction with its chain: (peer, outgoing, chain), by
    /// peer (for an export).
    pub fn dm_chains(&self, key: &[u8; 32]) -> Result<Vec<(NodeId, bool, DmChain)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT peer, outgoing, n, at_ms, sealed_seed FROM dm_threads
                  ORDER BY peer, outgoing",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let peer: Vec<u8> = r.get(0)?;
                let peer = NodeId(
                    peer.try_into()
                        .map_err(|_| StoreError::corrupt("dm_threads.peer", "length"))?,
                );
                let outgoing: bool = r.get(1)?;
                let n = from_sql_u64("dm_threads.n", r.get(2)?)?;
                let at_ms = from_sql_u64("dm_threads.at_ms", r.get(3)?)?;
                let sealed: Vec<u8> = r.get(4)?;
                out.push((
                    peer,
                    outgoing,
                    DmChain {
                        seed: open(key, &peer, outgoing, n, &sealed)?,
                        n,
                        at_ms,
                    },
                ));
            }
            Ok(out)
        })
    }

    /// Every peer whose messages come over a rotated chain, with the chain.
    pub fn incoming_dm_chains(&self, key: &[u8; 32]) -> Result<Vec<(NodeId, DmChain)>, StoreError> {
        Ok(self
            .dm_chains(key)?
            .into_iter()
            .filter(|(_, outgoing, _)| !outgoing)
            .map(|(peer, _, chain)| (peer, chain))
            .collect())
    }
}

impl Store {
    /// Records that DMs between `persona` and `peer` are filed under
    /// `thread` (idempotent).
    pub fn record_persona_thread(
        &self,
        thread: NodeId,
        persona: PostingId,
        peer: NodeId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO dm_persona_threads (thread, persona, peer, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    &thread.0[..],
                    &persona.0[..],
                    &peer.0[..],
                    to_sql_u64(now_ms)
                ],
            )?;
            Ok(())
        })
    }

    /// The persona and peer of a persona thread id, if `thread` is one.
    pub fn persona_thread(
        &self,
        thread: NodeId,
    ) -> Result<Option<(PostingId, NodeId)>, StoreError> {
        self.read(|tx| {
            let row: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT persona, peer FROM dm_persona_threads WHERE thread = ?1",
                    params![&thread.0[..]],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            row.map(|(p, q)| {
                let p: [u8; 32] = p
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm_persona_threads.persona", "length"))?;
                let q: [u8; 32] = q
                    .try_into()
                    .map_err(|_| StoreError::corrupt("dm_persona_threads.peer", "length"))?;
                Ok((PostingId(p), NodeId(q)))
            })
            .transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn chain(byte: u8, n: u64, at_ms: u64) -> DmChain {
        DmChain {
            seed: ChainSeed::from_bytes([byte; 32]),
            n,
            at_ms,
        }
    }

    #[test]
    fn chains_round_trip_sealed_and_are_replaced() {
        let store = Store::open_in_memory().unwrap();
        let key = [1u8; 32];
        let peer = NodeId([2; 32]);
        assert_eq!(store.dm_chain(&key, peer, true).unwrap(), None);
        store
            .set_dm_chain(&key, peer, true, &chain(7, 1, 10))
            .unwrap();
        store
            .set_dm_chain(&key, peer, false, &chain(8, 1, 11))
            .unwrap();
        assert_eq!(
            store.dm_chain(&key, peer, true).unwrap(),
            Some(chain(7, 1, 10))
        );
        assert_eq!(
            store.dm_chain(&key, peer, false).unwrap(),
            Some(chain(8, 1, 11))
        );
        // Moving the chain replaces the seed: the old one is gone.
        store
            .set_dm_chain(&key, peer, true, &chain(9, 2, 12))
            .unwrap();
        assert_eq!(
            store.dm_chain(&key, peer, true).unwrap(),
            Some(chain(9, 2, 12))
        );
        let rows: Vec<Vec<u8>> = store
            .read(|tx| {
                let mut st = tx.prepare("SELECT sealed_seed FROM dm_threads")?;
                let rows = st
                    .query_map([], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            // Sealed at rest: no seed appears in the clear.
            for b in [7u8, 8, 9] {
                assert!(!r.windows(32).any(|w| w == [b; 32]));
            }
        }
        // Under another key, a row is an error, not a silent miss.
        assert!(store.dm_chain(&[3; 32], peer, true).is_err());
        assert_eq!(
            store.incoming_dm_chains(&key).unwrap(),
            vec![(peer, chain(8, 1, 11))]
        );
    }

    #[test]
    fn an_older_reseed_does_not_rewind_the_chain() {
        let store = Store::open_in_memory().unwrap();
        let key = [1u8; 32];
        let peer = NodeId([2; 32]);
        assert!(store
            .reseed_incoming_dm_chain(&key, peer, &chain(1, 1, 100))
            .unwrap());
        // The chain moved with a message signed at 300.
        store
            .set_dm_chain(&key, peer, false, &chain(2, 5, 300))
            .unwrap();
        // The first message, fetched again: ignored.
        assert!(!store
            .reseed_incoming_dm_chain(&key, peer, &chain(1, 1, 100))
            .unwrap());
        assert_eq!(
            store.dm_chain(&key, peer, false).unwrap(),
            Some(chain(2, 5, 300))
        );
        // A later re-seed applies.
        assert!(store
            .reseed_incoming_dm_chain(&key, peer, &chain(3, 1, 400))
            .unwrap());
        assert_eq!(
            store.dm_chain(&key, peer, false).unwrap(),
            Some(chain(3, 1, 400))
        );
        // Our own chain is never touched by a re-seed.
        assert_eq!(store.dm_chain(&key, peer, true).unwrap(), None);
    }
}
