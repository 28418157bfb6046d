//! The one-pass strict verifier (`sign::verify`, `verify_raw`,
//! `verify_batch`, `verify_each`) gives exactly the verdicts of the two-pass
//! reference (`sign::reference`): on every signature vector, and on a seeded
//! corpus of random and mutated signatures that aims at the rule's edges
//! (non-canonical and small-order encodings of `A` and `R`, `S ≥ L`,
//! torsion components that only the cofactored equation accepts).
//!
//! The corpus has 10⁵ cases in release builds (`cargo test --release -p
//! distsoc-protocol --test verify_agreement`) and 300 in debug builds (the curve arithmetic is slow unoptimised).
// Reads its vector file: the sans-IO lint (protocol/clippy.toml) does not apply to tests.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::Value;
use sha2::{Digest, Sha512};

use distsoc_protocol::sign::{self, reference, BatchItem, Purpose, SignatureError, SigningKey};

/// Cases of the random corpus.
const CORPUS: usize = if cfg!(debug_assertions) { 300 } else { 100_000 };

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hex64(v: &Value) -> [u8; 64] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// One signature to judge: key, purpose (`None` = raw, no domain
/// separation), message, signature.
#[derive(Clone, Debug)]
struct Case {
    public: [u8; 32],
    purpose: Option<Purpose>,
    message: Vec<u8>,
    sig: [u8; 64],
}

impl Case {
    fn new_verdict(&self) -> Result<(), SignatureError> {
        match self.purpose {
            Some(p) => sign::verify(&self.public, p, &self.message, &self.sig),
            None => sign::verify_raw(&self.public, &self.message, &self.sig),
        }
    }

    fn reference_verdict(&self) -> Result<(), SignatureError> {
        let input = match self.purpose {
            Some(p) => sign::signing_input(p, &self.message),
            None => self.message.clone(),
        };
        reference::verify_raw(&self.public, &input, &self.sig)
    }

    fn check(&self) -> Result<(), SignatureError> {
        let (new, old) = (self.new_verdict(), self.reference_verdict());
        assert_eq!(new, old, "verdicts differ on {self:?}");
        new
    }
}

fn vector_cases() -> (Vec<Case>, Vec<Vec<Case>>) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/signatures.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut singles = Vec::new();
    let mut batches = Vec::new();
    for r in file["records"].as_array().unwrap() {
        let input = &r["input"];
        let item = |it: &Value, domain: bool| Case {
            public: hex32(&it["public_key"]),
            purpose: domain.then(|| Purpose::from_name(it["purpose"].as_str().unwrap()).unwrap()),
            message: hex::decode(it["message"].as_str().unwrap()).unwrap(),
            sig: hex64(&it["signature"]),
        };
        match input["kind"].as_str().unwrap() {
            "verify" => singles.push(item(input, input["domain"].as_bool().unwrap())),
            "batch" => batches.push(
                input["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|it| item(it, true))
                    .collect(),
            ),
            other => panic!("unknown kind {other}"),
        }
    }
    (singles, batches)
}

/// Compares batch verdicts of the new and the reference verifier, and the
/// new per-item verdicts with single verification. Domain-separated cases
/// only (batches are always domain-separated).
fn check_batch(cases: &[Case], seed: u64) {
    let items: Vec<BatchItem<'_>> = cases
        .iter()
        .map(|c| (c.public, c.purpose.unwrap(), c.message.as_slice(), c.sig))
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let new = sign::verify_batch(&items, &mut rng);
    let old = reference::verify_batch(&items, &mut rng);
    assert_eq!(new, old, "batch verdicts differ (seed {seed})");
    let each = sign::verify_each(&items, &mut rng);
    let singles: Vec<_> = cases.iter().map(Case::reference_verdict).collect();
    assert_eq!(
        each, singles,
        "verify_each differs from single verification"
    );
}

#[test]
fn agrees_on_every_signature_vector() {
    let (singles, batches) = vector_cases();
    assert!(singles.len() >= 60, "{}", singles.len());
    let mut invalid = 0;
    for c in &singles {
        invalid += usize::from(c.check().is_err());
    }
    assert!(
        invalid >= 20,
        "the vectors exercise the rejections: {invalid}"
    );
    let domain: Vec<Case> = singles
        .iter()
        .filter(|c| c.purpose.is_some())
        .cloned()
        .collect();
    check_batch(&domain, 1);
    for (i, b) in batches.iter().enumerate() {
        check_batch(b, i as u64);
    }
}

// ---------------------------------------------------------------------------
// The corpus

/// `p = 2^255 − 19`, little-endian.
fn p_bytes() -> [u8; 32] {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
}

fn add_small(mut x: [u8; 32], k: u8) -> [u8; 32] {
    let mut carry = u16::from(k);
    for b in x.iter_mut() {
        let v = u16::from(*b) + carry;
        *b = v as u8;
        carry = v >> 8;
    }
    x
}

/// Encodings at the rule's edges: every small-order point in every
/// encoding, the 19 values `y ≥ p` and `y = ±1`, each with both sign bits,
/// and the identity.
fn edge_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for t in EIGHT_TORSION {
        let e = t.compress().to_bytes();
        out.push(e);
        let mut s = e;
        s[31] ^= 0x80;
        out.push(s);
    }
    let p = p_bytes();
    for k in 0..19u8 {
        out.push(add_small(p, k));
    }
    let mut one = [0u8; 32];
    one[0] = 1;
    out.push(one);
    out.push([0u8; 32]);
    let mut minus_one = p;
    minus_one[0] = 0xec;
    out.push(minus_one);
    let with_signs: Vec<[u8; 32]> = out
        .iter()
        .map(|e| {
            let mut s = *e;
            s[31] |= 0x80;
            s
        })
        .collect();
    out.extend(with_signs);
    out
}

/// `L`, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn add_l(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(L[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// A signature by the secret scalar `a` of the key `a·B + T`, with `R`
/// shifted by the torsion point `u`: valid under the cofactored rule,
/// invalid for a cofactorless verifier when `T` or `u` is not the identity.
fn torsion_case(rng: &mut ChaCha20Rng, purpose: Purpose, message: Vec<u8>) -> Case {
    let a = Scalar::from(rng.next_u64());
    let t = EIGHT_TORSION[(rng.next_u32() % 8) as usize];
    let u = EIGHT_TORSION[(rng.next_u32() % 8) as usize];
    let public = (a * ED25519_BASEPOINT_POINT + t).compress().to_bytes();
    let r = Scalar::from(rng.next_u64());
    let r_enc = (r * ED25519_BASEPOINT_POINT + u).compress().to_bytes();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r_enc)
            .chain_update(public)
            .chain_update(sign::signing_input(purpose, &message)),
    );
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_enc);
    sig[32..].copy_from_slice(s.as_bytes());
    Case {
        public,
        purpose: Some(purpose),
        message,
        sig,
    }
}

/// One corpus case: a valid signature, then (mostly) one mutation.
fn corpus_case(rng: &mut ChaCha20Rng, keys: &[SigningKey], edges: &[[u8; 32]]) -> Case {
    let purpose = Purpose::ALL[(rng.next_u32() as usize) % Purpose::ALL.len()];
    let mut message = vec![0u8; (rng.next_u32() % 200) as usize];
    rng.fill_bytes(&mut message);
    let choice = rng.next_u32() % 16;
    if choice == 15 {
        return torsion_case(rng, purpose, message);
    }
    let key = &keys[(rng.next_u32() as usize) % keys.len()];
    let mut c = Case {
        public: key.public(),
        purpose: Some(purpose),
        sig: key.sign(purpose, &message),
        message,
    };
    let edge = edges[(rng.next_u32() as usize) % edges.len()];
    match choice {
        0..=3 => {} // valid
        4 => {
            let bit = (rng.next_u32() % 512) as usize;
            c.sig[bit / 8] ^= 1 << (bit % 8);
        }
        5 => {
            let bit = (rng.next_u32() % 256) as usize;
            c.public[bit / 8] ^= 1 << (bit % 8);
        }
        6 if !c.message.is_empty() => {
            let i = (rng.next_u32() as usize) % c.message.len();
            c.message[i] ^= 1 << (rng.next_u32() % 8);
        }
        6 => c.message.push(0),
        7 => c.public = edge,
        8 => c.sig[..32].copy_from_slice(&edge),
        9 => {
            let s = add_l(&c.sig[32..]);
            c.sig[32..].copy_from_slice(&s);
        }
        10 => rng.fill_bytes(&mut c.sig[32..]),
        11 => rng.fill_bytes(&mut c.public),
        12 => rng.fill_bytes(&mut c.sig[..32]),
        13 => {
            // Another purpose for the same bytes.
            let other = Purpose::ALL[(rng.next_u32() as usize) % Purpose::ALL.len()];
            c.purpose = Some(other);
        }
        _ => {
            // R shifted by a torsion point: only the cofactored rule accepts.
            let t = EIGHT_TORSION[(rng.next_u32() % 8) as usize];
            let mut r = [0u8; 32];
            r.copy_from_slice(&c.sig[..32]);
            if let Some(p) = curve25519_dalek::edwards::CompressedEdwardsY(r).decompress() {
                c.sig[..32].copy_from_slice(&(p + t).compress().to_bytes());
            }
        }
    }
    if rng.next_u32().is_multiple_of(32) {
        c.purpose = None; // raw verification of the same bytes
    }
    c
}

#[test]
fn agrees_on_a_random_and_mutated_corpus() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed_0012);
    let keys: Vec<SigningKey> = (0..32u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
    let edges = edge_encodings();
    let mut valid = 0usize;
    let mut by_error = std::collections::BTreeMap::new();
    let mut batch: Vec<Case> = Vec::new();
    let mut batch_len = 1 + (rng.next_u32() % 70) as usize;
    for n in 0..CORPUS {
        let c = corpus_case(&mut rng, &keys, &edges);
        match c.check() {
            Ok(()) => valid += 1,
            Err(e) => *by_error.entry(e.name()).or_insert(0usize) += 1,
        }
        if c.purpose.is_some() {
            batch.push(c);
        }
        if batch.len() >= batch_len {
            check_batch(&batch, n as u64);
            batch.clear();
            batch_len = 1 + (rng.next_u32() % 70) as usize;
        }
    }
    check_batch(&batch, 0);
    // Every verdict of the rule is exercised, many times.
    assert!(valid > CORPUS / 5, "{valid}");
    for name in [
        "malformedKey",
        "nonCanonicalKey",
        "smallOrderKey",
        "nonCanonicalR",
        "nonCanonicalS",
        "invalid",
    ] {
        let n = by_error.get(name).copied().unwrap_or(0);
        // At least one in a thousand (at least one in the debug corpus).
        assert!(n * 1000 >= CORPUS, "{name}: {n} of {CORPUS} ({by_error:?})");
    }
}

#[test]
fn batches_with_repeated_keys_and_mixed_verdicts() {
    // Batches from a few authors (keys decoded once per batch), with bad
    // signatures at every position.
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let keys: Vec<SigningKey> = (0..3u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
    for bad in 0..12usize {
        let mut cases: Vec<Case> = (0..12usize)
            .map(|i| {
                let k = &keys[i % 3];
                let message = vec![i as u8; 40];
                Case {
                    public: k.public(),
                    purpose: Some(Purpose::Post),
                    sig: k.sign(Purpose::Post, &message),
                    message,
                }
            })
            .collect();
        cases[bad].sig[5] ^= 4;
        cases[(bad * 7) % 12].public = EIGHT_TORSION[3].compress().to_bytes();
        check_batch(&cases, bad as u64);
        let items: Vec<BatchItem<'_>> = cases
            .iter()
            .map(|c| (c.public, Purpose::Post, c.message.as_slice(), c.sig))
            .collect();
        let each = sign::verify_each(&items, &mut rng);
        assert_eq!(
            each.iter().filter(|r| r.is_err()).count(),
            if bad == (bad * 7) % 12 { 1 } else { 2 }
        );
    }
}
