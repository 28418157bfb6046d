//! Seeded hashing and the seeded bijective permutation of `[0, n)`.
//!
//! Keys come from BLAKE3 of the seed ([`derive_key`]); the hot paths (a
//! Feistel round, a link's hash) use a keyed splitmix64 finalizer
//! ([`mix`]), which is a bijection of `u64` with full avalanche: plenty for
//! a simulation, and ~1 ns instead of BLAKE3's ~100 ns per call, which
//! matters at 10⁸ hash calls per run.

/// The splitmix64 finalizer: a bijective mixer of 64-bit words.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit key derived from the run's seed and a purpose label
/// (BLAKE3 in key-derivation mode), so every part of the model hashes with
/// its own independent key.
pub fn derive_key(seed: u64, purpose: &str, index: u64) -> u64 {
    let mut h = blake3::Hasher::new_derive_key("distsoc-sim graph 2026-12 key");
    h.update(&seed.to_le_bytes());
    h.update(&index.to_le_bytes());
    h.update(purpose.as_bytes());
    let out = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&out.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// A 32-byte seed for a ChaCha rng, derived like [`derive_key`].
pub fn derive_seed(seed: u64, purpose: &str, index: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("distsoc-sim graph 2026-12 rng");
    h.update(&seed.to_le_bytes());
    h.update(&index.to_le_bytes());
    h.update(purpose.as_bytes());
    *h.finalize().as_bytes()
}

/// The number of Feistel rounds. Four rounds of a pseudo-random function
/// give a pseudo-random permutation (Luby–Rackoff).
const ROUNDS: usize = 4;

/// A seeded bijection of `[0, n)`: a balanced Feistel network on
/// `2·half` bits (the smallest even width ≥ ⌈log2 n⌉) with cycle walking
/// (re-apply until the value falls below `n`). The domain is at most 4n,
/// so a call walks about 2 steps on average.
#[derive(Debug, Clone)]
pub struct Perm {
    n: u64,
    half: u32,
    mask: u64,
    keys: [u64; ROUNDS],
}

impl Perm {
    /// The permutation of `[0, n)` for `seed` and `purpose` (`n ≥ 1`).
    pub fn new(n: u64, seed: u64, purpose: &str) -> Self {
        let bits = bits_for(n).max(2);
        let half = bits.div_ceil(2);
        let mut keys = [0u64; ROUNDS];
        for (r, k) in keys.iter_mut().enumerate() {
            *k = derive_key(seed, purpose, r as u64);
        }
        Perm {
            n,
            half,
            mask: (1u64 << half) - 1,
            keys,
        }
    }

    /// The size of the domain.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True for the empty domain (never: `n ≥ 1`).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[inline]
    fn round(&self, r: usize, x: u64) -> u64 {
        mix(x ^ self.keys[r]) & self.mask
    }

    #[inline]
    fn feistel(&self, x: u64) -> u64 {
        let (mut l, mut r) = (x >> self.half, x & self.mask);
        for k in 0..ROUNDS {
            let t = l ^ self.round(k, r);
            l = r;
            r = t;
        }
        (l << self.half) | r
    }

    #[inline]
    fn feistel_inv(&self, x: u64) -> u64 {
        let (mut l, mut r) = (x >> self.half, x & self.mask);
        for k in (0..ROUNDS).rev() {
            let t = r ^ self.round(k, l);
            r = l;
            l = t;
        }
        (l << self.half) | r
    }

    /// π(x) for `x < n`.
    #[inline]
    pub fn apply(&self, x: u64) -> u64 {
        let mut y = self.feistel(x);
        while y >= self.n {
            y = self.feistel(y);
        }
        y
    }

    /// π⁻¹(y) for `y < n`.
    #[inline]
    pub fn invert(&self, y: u64) -> u64 {
        let mut x = self.feistel_inv(y);
        while x >= self.n {
            x = self.feistel_inv(x);
        }
        x
    }
}

/// ⌈log2 n⌉ (0 for n ≤ 1): the id-prefix width L of an n-node network.
pub fn bits_for(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}
