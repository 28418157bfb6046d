//! The endpoint's stateless-reset key, derived from the network key so that
//! it survives restarts.
//!
//! A QUIC endpoint that receives a packet for a connection it does not know
//! (for example after a restart) answers with a *stateless reset*; the peer
//! honours it only if its 16-byte token equals the one issued for the
//! connection ID earlier. quinn computes that token as
//! `HMAC(reset_key, connection_id)`: with a random `reset_key` per process
//! (quinn's default), a restarted node's resets are ignored and its peers
//! hang on the dead connection until their idle timeout. Deriving the key
//! from the network key's seed makes a restarted node or anchor reset its
//! peers' old connections at their next packet, so they redial at once.
//!
//! The restarted endpoint must also still consider the old connection IDs
//! well-formed: quinn's default generator tags each ID with a keyed hash
//! under a random per-process key and silently drops packets whose tag does
//! not verify (no reset is sent). The tag key is therefore derived from the
//! seed as well ([`cid_generator`]).
//!
//! The key is `BLAKE3.derive_key(RESET_KEY_CONTEXT, seed)`: one-way and
//! domain-separated, so neither the key nor the tokens reveal anything about
//! the seed. The token itself is `BLAKE3.keyed_hash(key, connection_id)`
//! truncated to 16 bytes. The key is wiped when dropped.

use distsoc_protocol::sign::SigningKey;
use quinn::crypto::{CryptoError, HmacKey};
use quinn::ConnectionIdGenerator;
use quinn_proto::HashedConnectionIdGenerator;
use zeroize::Zeroizing;

/// BLAKE3 `derive_key` context of the stateless-reset key.
const RESET_KEY_CONTEXT: &str = "distsoc/2 quic stateless reset key";

/// BLAKE3 `derive_key` context of the connection-ID tag key.
const CID_KEY_CONTEXT: &str = "distsoc/2 quic connection id key";

/// quinn's hashed connection-ID generator with a key derived from `key`:
/// IDs issued before a restart still validate after it, so that packets on
/// old connections draw a stateless reset instead of being dropped. The tag
/// is not a MAC (it only filters junk early); its key is domain-separated
/// from every other use of the seed.
pub(crate) fn cid_generator(
    key: &SigningKey,
) -> impl Fn() -> Box<dyn ConnectionIdGenerator> + Send + Sync + 'static {
    let seed = key.seed();
    let derived = Zeroizing::new(blake3::derive_key(CID_KEY_CONTEXT, seed.as_ref()));
    let mut tag_key = [0u8; 8];
    tag_key.copy_from_slice(&derived[..8]);
    let tag_key = u64::from_le_bytes(tag_key);
    move || Box::new(HashedConnectionIdGenerator::from_key(tag_key))
}

/// Output length of [`ResetKey::sign`]: a full BLAKE3 hash (quinn uses the
/// first 16 bytes as the token).
const SIGNATURE_LEN: usize = blake3::OUT_LEN;

/// Keyed BLAKE3 over connection IDs. Holds a secret; zeroized on drop.
pub(crate) struct ResetKey {
    key: Zeroizing<[u8; 32]>,
}

impl ResetKey {
    /// The reset key of the endpoint whose network key is `key`.
    pub(crate) fn derive(key: &SigningKey) -> Self {
        let seed = key.seed();
        Self {
            key: Zeroizing::new(blake3::derive_key(RESET_KEY_CONTEXT, seed.as_ref())),
        }
    }

    fn mac(&self, data: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.key, data)
    }
}

impl HmacKey for ResetKey {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        let mac = self.mac(data);
        let n = signature_out.len().min(SIGNATURE_LEN);
        signature_out[..n].copy_from_slice(&mac.as_bytes()[..n]);
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        // blake3::Hash compares in constant time.
        let ok = <[u8; SIGNATURE_LEN]>::try_from(signature)
            .is_ok_and(|sig| self.mac(data) == blake3::Hash::from(sig));
        if ok {
            Ok(())
        } else {
            Err(CryptoError)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_tokens_other_key_other_tokens() {
        let a = SigningKey::from_seed(&[7; 32]);
        let b = SigningKey::from_seed(&[8; 32]);
        let (mut x, mut y, mut z) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        ResetKey::derive(&a).sign(b"cid", &mut x);
        ResetKey::derive(&a).sign(b"cid", &mut y);
        ResetKey::derive(&b).sign(b"cid", &mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert!(ResetKey::derive(&a).verify(b"cid", &x).is_ok());
        assert!(ResetKey::derive(&a).verify(b"cie", &x).is_err());
        // The key is not the seed, nor a plain hash of it.
        assert_ne!(*ResetKey::derive(&a).key, [7; 32]);
        assert_ne!(
            *ResetKey::derive(&a).key,
            *blake3::hash(&[7; 32]).as_bytes()
        );
    }
}
