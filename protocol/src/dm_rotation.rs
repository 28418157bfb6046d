//! Rotating DM ids (`schema/README.md` §9.1): the derivations of a thread's
//! seed chain.
//!
//! Each direction of a DM thread is a chain of 32-byte secret seeds s(1),
//! s(2), … known to both ends only. Message n of the chain is signed by the
//! **send id** of s(n), sealed to the **receive id** of s(n) (and to the send
//! id, the sender's own copy) and enqueued in the anchor channel between the
//! two; its sealed `PostBody.rotation.nextPostingId` carries s(n+1),
//! normally [`next_seed`] of s(n). Every key is an Ed25519 key whose 32-byte
//! secret seed is a BLAKE3 `derive_key` of s(n):
//!
//! | what | context string | input |
//! |---|---|---|
//! | send key seed | `"distsoc 2026-12 dm send v1"` | s(n) |
//! | receive key seed | `"distsoc 2026-12 dm recv v1"` | s(n) |
//! | default next seed s(n+1) | `"distsoc 2026-12 dm next v1"` | s(n) |
//!
//! The receiver watches a window of [`WINDOW`] consecutive receive ids from
//! the seed after the last message it accepted, so a lost message does not
//! break the thread.

use zeroize::Zeroizing;

use crate::sign::SigningKey;

/// BLAKE3 `derive_key` context of a message's send (author) key.
pub const SEND_CONTEXT: &str = "distsoc 2026-12 dm send v1";
/// BLAKE3 `derive_key` context of a message's receive key.
pub const RECV_CONTEXT: &str = "distsoc 2026-12 dm recv v1";
/// BLAKE3 `derive_key` context of the default next seed.
pub const NEXT_CONTEXT: &str = "distsoc 2026-12 dm next v1";

/// How many consecutive receive ids a receiver watches per thread and
/// direction.
pub const WINDOW: usize = 10;

/// A seed of a thread's chain: s(n). Secret, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainSeed(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ChainSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainSeed(<secret>)")
    }
}

impl ChainSeed {
    /// The seed with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random seed: the start of a chain (or a re-seed).
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(b.as_mut());
        Self(b)
    }

    /// The seed's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The secret seed of the send key: `derive_key(SEND_CONTEXT, s)`.
    pub fn send_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(SEND_CONTEXT, self.as_bytes()))
    }

    /// The secret seed of the receive key: `derive_key(RECV_CONTEXT, s)`.
    pub fn recv_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key(RECV_CONTEXT, self.as_bytes()))
    }

    /// The send key: author of message n, and the anchor caller that
    /// creates its channel and enqueues it.
    pub fn send_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.send_seed())
    }

    /// The receive key: the recipient of message n, and the anchor caller
    /// that fetches it.
    pub fn recv_key(&self) -> SigningKey {
        SigningKey::from_seed(&self.recv_seed())
    }

    /// The default next seed: `derive_key(NEXT_CONTEXT, s)`.
    pub fn next(&self) -> ChainSeed {
        ChainSeed(Zeroizing::new(blake3::derive_key(
            NEXT_CONTEXT,
            self.as_bytes(),
        )))
    }

    /// The [`WINDOW`] seeds a receiver watches from this one: this seed and
    /// the next `WINDOW - 1` default successors.
    pub fn window(&self) -> Vec<ChainSeed> {
        let mut out = Vec::with_capacity(WINDOW);
        let mut s = self.clone();
        for _ in 0..WINDOW {
            let next = s.next();
            out.push(s);
            s = next;
        }
        out
    }
}

/// The default next seed of `seed` ([`ChainSeed::next`]), as bytes.
pub fn next_seed(seed: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(NEXT_CONTEXT, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_derivations_differ_and_chain() {
        let s = ChainSeed::from_bytes([7; 32]);
        let send = s.send_key().public();
        let recv = s.recv_key().public();
        assert_ne!(send, recv);
        assert_ne!(s.next().as_bytes(), s.as_bytes());
        assert_eq!(*s.next().as_bytes(), next_seed(s.as_bytes()));
        let w = s.window();
        assert_eq!(w.len(), WINDOW);
        assert_eq!(w[0], s);
        assert_eq!(w[1], s.next());
        assert_eq!(w[9], w[8].next());
        assert!(!format!("{s:?}").contains('7'));
    }
}
