//! Passphrase sealing of the identity export bundle.
//!
//! ```text
//! key    = Argon2id(v1.3, passphrase, salt, m = memory_kib, t = iterations,
//!                   p = parallelism, output = 32 bytes)
//! sealed = ChaCha20-Poly1305(key, nonce (12 bytes), aad, plaintext)   -- ciphertext ‖ tag
//! ```
//!
//! The caller chooses the AAD; the identity bundle passes the canonical
//! encoding of its KDF-parameter header, so the parameters cannot be swapped
//! without failing authentication. The salt (16 bytes) and nonce (12 bytes)
//! must be fresh random bytes for every export; they are parameters here so
//! that this module stays free of I/O and global randomness.
//!
//! Hostile files must not make us allocate unbounded memory or spin forever,
//! so [`KdfParams`] are bounds-checked (before any allocation) on both seal
//! and open: memory 8 MiB ..= 1 GiB, iterations 1 ..= 10, parallelism 1 ..= 4.
//!
//! The passphrase is taken as bytes; callers should pass its UTF-8 encoding in
//! Unicode normalization form NFC so that the same passphrase typed on another
//! device gives the same bytes.

use zeroize::Zeroizing;

use crate::envelope::{aead_open, aead_seal, NONCE_LEN, TAG_LEN};

/// Default Argon2id memory: 64 MiB.
pub const DEFAULT_MEMORY_KIB: u32 = 64 * 1024;
/// Default Argon2id passes.
pub const DEFAULT_ITERATIONS: u32 = 3;
/// Default Argon2id lanes.
pub const DEFAULT_PARALLELISM: u32 = 1;

/// Smallest accepted memory cost: 8 MiB.
pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
/// Largest accepted memory cost: 1 GiB.
pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Smallest accepted number of passes.
pub const MIN_ITERATIONS: u32 = 1;
/// Largest accepted number of passes.
pub const MAX_ITERATIONS: u32 = 10;
/// Smallest accepted number of lanes.
pub const MIN_PARALLELISM: u32 = 1;
/// Largest accepted number of lanes.
pub const MAX_PARALLELISM: u32 = 4;

/// Length of the Argon2 salt.
pub const SALT_LEN: usize = 16;
/// Length of the derived key.
pub const KEY_LEN: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PassphraseError {
    /// A KDF parameter is outside the accepted bounds.
    #[error("KDF parameter {param} = {value} is outside {min}..={max}")]
    ParamsOutOfBounds {
        /// Which parameter: `memory_kib`, `iterations` or `parallelism`.
        param: &'static str,
        /// The offending value.
        value: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// Authentication failed: wrong passphrase, wrong AAD, or corrupted data
    /// (these cannot be told apart, by design).
    #[error("wrong passphrase or corrupted data")]
    WrongPassphraseOrCorrupt,
    /// The sealed data is shorter than an authentication tag.
    #[error("sealed data is truncated")]
    Malformed,
    /// Argon2 refused the parameters or failed to run (not expected within
    /// the bounds).
    #[error("key derivation failed")]
    KdfFailed,
    /// The AEAD refused to encrypt (only beyond 256 GiB).
    #[error("encryption failed")]
    SealFailed,
}

impl PassphraseError {
    /// Stable, language-neutral name of the error, as used in the
    /// `expected.error` field of `conformance/vectors/*.json`.
    pub const fn name(&self) -> &'static str {
        match self {
            PassphraseError::ParamsOutOfBounds { .. } => "paramsOutOfBounds",
            PassphraseError::WrongPassphraseOrCorrupt => "wrongPassphraseOrCorrupt",
            PassphraseError::Malformed => "malformed",
            PassphraseError::KdfFailed => "kdfFailed",
            PassphraseError::SealFailed => "sealFailed",
        }
    }
}

/// Argon2id parameters, stored next to the sealed bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
    /// Random salt, fresh for every export.
    pub salt: [u8; SALT_LEN],
}

impl KdfParams {
    /// The default parameters (64 MiB, 3 passes, 1 lane) with `salt`.
    pub const fn recommended(salt: [u8; SALT_LEN]) -> Self {
        KdfParams {
            memory_kib: DEFAULT_MEMORY_KIB,
            iterations: DEFAULT_ITERATIONS,
            parallelism: DEFAULT_PARALLELISM,
            salt,
        }
    }

    /// Builds parameters read from a file, rejecting out-of-bounds values.
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, PassphraseError> {
        let params = KdfParams {
            memory_kib,
            iterations,
            parallelism,
            salt,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks the bounds (memory 8 MiB..=1 GiB, iterations 1..=10,
    /// parallelism 1..=4).
    pub fn validate(&self) -> Result<(), PassphraseError> {
        let check = |param, value: u32, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(PassphraseError::ParamsOutOfBounds {
                    param,
                    value,
                    min,
                    max,
                })
            }
        };
        check(
            "memory_kib",
            self.memory_kib,
            MIN_MEMORY_KIB,
            MAX_MEMORY_KIB,
        )?;
        check(
            "iterations",
            self.iterations,
            MIN_ITERATIONS,
            MAX_ITERATIONS,
        )?;
        check(
            "parallelism",
            self.parallelism,
            MIN_PARALLELISM,
            MAX_PARALLELISM,
        )
    }
}

/// Derives the 32-byte sealing key with Argon2id (after validating `params`).
pub fn derive_key(
    passphrase: &[u8],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, PassphraseError> {
    params.validate()?;
    let argon_params = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|_| PassphraseError::KdfFailed)?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, &params.salt, key.as_mut())
        .map_err(|_| PassphraseError::KdfFailed)?;
    Ok(key)
}

/// Seals `plaintext` under a passphrase. Returns `ciphertext ‖ tag`.
pub fn seal(
    passphrase: &[u8],
    params: &KdfParams,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, PassphraseError> {
    let key = derive_key(passphrase, params)?;
    aead_seal(&key, nonce, aad, plaintext).map_err(|_| PassphraseError::SealFailed)
}

/// Opens data sealed with [`seal`]. The plaintext is returned in a buffer that
/// is zeroized when dropped.
pub fn open(
    passphrase: &[u8],
    params: &KdfParams,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PassphraseError> {
    params.validate()?;
    if sealed.len() < TAG_LEN {
        return Err(PassphraseError::Malformed);
    }
    let key = derive_key(passphrase, params)?;
    aead_open(&key, nonce, aad, sealed)
        .map(Zeroizing::new)
        .map_err(|_| PassphraseError::WrongPassphraseOrCorrupt)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn small(salt: u8) -> KdfParams {
        KdfParams::new(MIN_MEMORY_KIB, 1, 1, [salt; 16]).unwrap()
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let p = small(1);
        let sealed = seal(b"correct horse", &p, &[2; 12], b"hdr", b"identity").unwrap();
        assert_eq!(sealed.len(), 8 + TAG_LEN);
        let opened = open(b"correct horse", &p, &[2; 12], b"hdr", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"identity");
        assert_eq!(
            open(b"correct horsf", &p, &[2; 12], b"hdr", &sealed).unwrap_err(),
            PassphraseError::WrongPassphraseOrCorrupt
        );
        assert_eq!(
            open(b"correct horse", &p, &[2; 12], b"hdR", &sealed).unwrap_err(),
            PassphraseError::WrongPassphraseOrCorrupt
        );
        assert_eq!(
            open(b"correct horse", &p, &[2; 12], b"hdr", &sealed[..10]).unwrap_err(),
            PassphraseError::Malformed
        );
    }

    #[test]
    fn bounds() {
        for (m, t, par) in [
            (MIN_MEMORY_KIB - 1, 1, 1),
            (MAX_MEMORY_KIB + 1, 1, 1),
            (u32::MAX, 1, 1),
            (MIN_MEMORY_KIB, 0, 1),
            (MIN_MEMORY_KIB, 11, 1),
            (MIN_MEMORY_KIB, 1, 0),
            (MIN_MEMORY_KIB, 1, 5),
        ] {
            let e = KdfParams::new(m, t, par, [0; 16]).unwrap_err();
            assert_eq!(e.name(), "paramsOutOfBounds");
            let raw = KdfParams {
                memory_kib: m,
                iterations: t,
                parallelism: par,
                salt: [0; 16],
            };
            // rejected before any allocation, on both paths
            assert_eq!(open(b"x", &raw, &[0; 12], b"", &[0; 32]).unwrap_err(), e);
            assert_eq!(seal(b"x", &raw, &[0; 12], b"", b"y").unwrap_err(), e);
        }
        assert!(KdfParams::recommended([0; 16]).validate().is_ok());
        assert!(KdfParams::new(MAX_MEMORY_KIB, MAX_ITERATIONS, MAX_PARALLELISM, [0; 16]).is_ok());
    }
}
