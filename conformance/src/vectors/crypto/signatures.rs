//! `signatures.json`: RFC 8032 vectors, the strict rule's edge cases and
//! batch verification.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use distsoc_protocol::sign::{self, BatchItem, Purpose, SignatureError, SigningKey};

use crate::vectors::{Record, VectorFile};
// The bare ZIP-215 and cofactorless equations recorded beside each signature
// come from the crate's one reference implementation (independent of
// distsoc-protocol), the same one offline mode checks the records with.
use super::{arr32, file, h, public_of, rand32, rec, unhex};
use crate::refcrypto::{challenge, cofactorless_ok, zip215_ok};

// ---------------------------------------------------------------------------
// signatures.json

/// An owned batch item: public key, purpose, message, signature.
type OwnedItem = ([u8; 32], Purpose, Vec<u8>, [u8; 64]);

/// A signature with explicit `R` encoding and `S` scalar.
fn raw_sig(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// `p = 2^255 − 19`, little endian.
pub(super) fn p_plus(k: u8, sign: bool) -> [u8; 32] {
    let mut b = [0xffu8; 32];
    b[0] = 0xed + k;
    b[31] = if sign { 0xff } else { 0x7f };
    b
}

fn small_int(v: u8, sign: bool) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = v;
    if sign {
        b[31] |= 0x80;
    }
    b
}

/// The prime group order `L = 2^252 + 27742317777372353535851937790883648493`,
/// little endian.
const L_BYTES: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Adds `L` to the little-endian `S` half of a signature.
fn add_l(sig: &mut [u8; 64]) {
    let l = L_BYTES;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        sig[32 + i] = (v & 0xff) as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
}

pub(super) enum Enc {
    Malformed,
    SmallOrder,
    NonCanonical,
}

pub(super) fn classify(enc: &[u8; 32]) -> Option<Enc> {
    match CompressedEdwardsY(*enc).decompress() {
        None => Some(Enc::Malformed),
        Some(p) if p.is_small_order() => Some(Enc::SmallOrder),
        Some(p) if p.compress().to_bytes() != *enc => Some(Enc::NonCanonical),
        Some(_) => None,
    }
}

/// One single-verification record.
struct SigCase<'a> {
    id: &'a str,
    comment: &'a str,
    tags: &'a [&'a str],
    seed: Option<[u8; 32]>,
    public: [u8; 32],
    purpose: Option<Purpose>,
    message: &'a [u8],
    sig: [u8; 64],
    expect: Result<(), SignatureError>,
}

fn sig_record(c: SigCase<'_>) -> Record {
    let input_bytes = match c.purpose {
        Some(p) => sign::signing_input(p, c.message),
        None => c.message.to_vec(),
    };
    // Cross-checks: the stated verdict is what the protocol computes, and the
    // bare-equation fields are computed independently here.
    let actual = match c.purpose {
        Some(p) => sign::verify(&c.public, p, c.message, &c.sig),
        None => sign::verify_raw(&c.public, c.message, &c.sig),
    };
    assert_eq!(actual, c.expect, "record {}", c.id);
    let mut input = json!({
        "kind": "verify",
        "domain": c.purpose.is_some(),
        "public_key": h(c.public),
        "message": h(c.message),
        "signature": h(c.sig),
    });
    if let Some(p) = c.purpose {
        input["purpose"] = json!(p.as_str());
    }
    if let Some(seed) = c.seed {
        input["seed"] = h(seed);
        assert_eq!(public_of(&seed), c.public, "record {}", c.id);
    }
    let mut expected = json!({
        "zip215_valid": zip215_ok(&c.public, &input_bytes, &c.sig),
        "cofactorless_valid": cofactorless_ok(&c.public, &input_bytes, &c.sig),
    });
    if c.purpose.is_some() {
        expected["signing_input"] = h(&input_bytes);
    }
    if let Err(e) = c.expect {
        expected["error"] = json!(e.name());
    }
    rec(c.id, c.comment, c.tags, c.expect.is_ok(), input, expected)
}

pub(super) const RFC8032: [(&str, &str, &str, &str, &str); 5] = [
    (
        "rfc8032-test-1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "rfc8032-test-2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "rfc8032-test-3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "rfc8032-test-1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        RFC8032_TEST_1024_MESSAGE,
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "rfc8032-test-sha-abc",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
];

/// RFC 8032 §7.1 TEST 1024: the 1023-byte message.
const RFC8032_TEST_1024_MESSAGE: &str =
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0";

pub(super) fn signatures_file() -> VectorFile {
    let mut records = Vec::new();

    // RFC 8032 §7.1, verbatim: raw ed25519, no domain prefix.
    for (id, seed, public, msg, sig) in RFC8032 {
        let seed = arr32(seed);
        let public = arr32(public);
        let msg = unhex(msg);
        let sig: [u8; 64] = unhex(sig).try_into().expect("64");
        let key = SigningKey::from_seed(&seed);
        assert_eq!(key.public(), public, "{id}");
        assert_eq!(key.sign_raw(&msg), sig, "{id}");
        records.push(sig_record(SigCase {
            id,
            comment: "RFC 8032 section 7.1, verbatim; raw ed25519 without the distsoc domain prefix (domain: false)",
            tags: &["rfc8032"],
            seed: Some(seed),
            public,
            purpose: None,
            message: &msg,
            sig,
            expect: Ok(()),
        }));
    }

    // One domain-separated signature per purpose.
    let mut rng = ChaCha20Rng::from_seed([0x51; 32]);
    for p in Purpose::ALL {
        let seed = rand32(&mut rng);
        let key = SigningKey::from_seed(&seed);
        let msg = format!("distsoc test message for purpose {}", p.as_str()).into_bytes();
        let sig = key.sign(p, &msg);
        records.push(sig_record(SigCase {
            id: &format!("purpose-{}", p.as_str()),
            comment: "domain-separated signature: input = \"distsoc/2/\" ‖ purpose ‖ 0x00 ‖ message; signing is deterministic (RFC 8032), so sign(seed) must reproduce the signature",
            tags: &["domain", "purpose"],
            seed: Some(seed),
            public: key.public(),
            purpose: Some(p),
            message: &msg,
            sig,
            expect: Ok(()),
        }));
    }

    // The strictness edge cases, all around one honest key.
    let seed = rand32(&mut rng);
    let key = SigningKey::from_seed(&seed);
    let public = key.public();
    let msg: &[u8] = b"distsoc strictness vector";
    let good = key.sign(Purpose::Post, msg);
    let post = Some(Purpose::Post);

    records.push(sig_record(SigCase {
        id: "baseline-valid",
        comment: "honest signature used by the tampering cases below",
        tags: &["domain"],
        seed: Some(seed),
        public,
        purpose: post,
        message: msg,
        sig: good,
        expect: Ok(()),
    }));
    records.push(sig_record(SigCase {
        id: "wrong-purpose",
        comment: "signature made for purpose post, verified as purpose comment",
        tags: &["domain", "tamper"],
        seed: None,
        public,
        purpose: Some(Purpose::Comment),
        message: msg,
        sig: good,
        expect: Err(SignatureError::Invalid),
    }));
    records.push(sig_record(SigCase {
        id: "domain-signature-verified-raw",
        comment:
            "a domain-separated signature does not verify as raw ed25519 over the bare message",
        tags: &["domain", "tamper"],
        seed: None,
        public,
        purpose: None,
        message: msg,
        sig: good,
        expect: Err(SignatureError::Invalid),
    }));
    {
        let (_, seed1, public1, _, sig1) = RFC8032[0];
        let _ = seed1;
        records.push(sig_record(SigCase {
            id: "raw-signature-verified-with-domain",
            comment: "RFC 8032 TEST 1 (empty message) does not verify as a domain-separated post signature",
            tags: &["domain", "tamper"],
            seed: None,
            public: arr32(public1),
            purpose: post,
            message: b"",
            sig: unhex(sig1).try_into().expect("64"),
            expect: Err(SignatureError::Invalid),
        }));
    }
    let mut m2 = msg.to_vec();
    m2[3] ^= 0x01;
    records.push(sig_record(SigCase {
        id: "flipped-message-bit",
        comment: "one bit of the message flipped",
        tags: &["tamper"],
        seed: None,
        public,
        purpose: post,
        message: &m2,
        sig: good,
        expect: Err(SignatureError::Invalid),
    }));
    // flipped bits in R: find one that still decodes canonically
    let mut found_r = false;
    for bit in 0..255 {
        let mut s = good;
        s[bit / 8] ^= 1 << (bit % 8);
        let r: [u8; 32] = s[..32].try_into().expect("32");
        if classify(&r).is_none() && CompressedEdwardsY(r).decompress().is_some() {
            records.push(sig_record(SigCase {
                id: "flipped-r-bit",
                comment:
                    "one bit of R flipped; R is still a canonical curve point, the equation fails",
                tags: &["tamper"],
                seed: None,
                public,
                purpose: post,
                message: msg,
                sig: s,
                expect: Err(SignatureError::Invalid),
            }));
            found_r = true;
            break;
        }
    }
    assert!(found_r);
    let mut s_flip = good;
    s_flip[32] ^= 0x01;
    records.push(sig_record(SigCase {
        id: "flipped-s-bit",
        comment: "lowest bit of S flipped (S stays canonical), the equation fails",
        tags: &["tamper"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: s_flip,
        expect: Err(SignatureError::Invalid),
    }));
    let other = SigningKey::from_seed(&rand32(&mut rng));
    records.push(sig_record(SigCase {
        id: "wrong-key",
        comment: "valid signature checked against another (valid) public key",
        tags: &["tamper"],
        seed: None,
        public: other.public(),
        purpose: post,
        message: msg,
        sig: good,
        expect: Err(SignatureError::Invalid),
    }));
    // flipped bit of the public key, still a valid canonical key
    let mut found_a = false;
    for bit in 0..255 {
        let mut a = public;
        a[bit / 8] ^= 1 << (bit % 8);
        if classify(&a).is_none() {
            records.push(sig_record(SigCase {
                id: "flipped-key-bit",
                comment: "one bit of the public key flipped; still a canonical, non-small-order point; the equation fails",
                tags: &["tamper"],
                seed: None,
                public: a,
                purpose: post,
                message: msg,
                sig: good,
                expect: Err(SignatureError::Invalid),
            }));
            found_a = true;
            break;
        }
    }
    assert!(found_a);
    records.push(sig_record(SigCase {
        id: "all-zero-signature",
        comment: "R = 0x00..00 (a point of order 4, canonical), S = 0: the equation fails",
        tags: &["edge"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: [0u8; 64],
        expect: Err(SignatureError::Invalid),
    }));

    // Non-canonical S.
    let mut s_plus_l = good;
    add_l(&mut s_plus_l);
    records.push(sig_record(SigCase {
        id: "s-plus-l",
        comment:
            "S replaced by S + L: the same scalar mod L, rejected as non-canonical (malleability)",
        tags: &["edge", "non-canonical-s"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: s_plus_l,
        expect: Err(SignatureError::NonCanonicalS),
    }));
    let mut s_l = good;
    s_l[32..].copy_from_slice(&L_BYTES);
    records.push(sig_record(SigCase {
        id: "s-equals-l",
        comment: "S = L exactly",
        tags: &["edge", "non-canonical-s"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: s_l,
        expect: Err(SignatureError::NonCanonicalS),
    }));
    let mut s_253 = good;
    s_253[63] |= 0x20;
    records.push(sig_record(SigCase {
        id: "s-bit-253-set",
        comment: "S >= 2^253 (bit 253 set)",
        tags: &["edge", "non-canonical-s"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: s_253,
        expect: Err(SignatureError::NonCanonicalS),
    }));
    let mut s_255 = good;
    s_255[63] |= 0x80;
    records.push(sig_record(SigCase {
        id: "s-bit-255-set",
        comment: "S with the top bit (255) set; implementations that mask it off would accept",
        tags: &["edge", "non-canonical-s"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: s_255,
        expect: Err(SignatureError::NonCanonicalS),
    }));

    // Small-order public keys: the 8 torsion points, canonical encodings.
    // Signature R = [r]B, S = r satisfies [8]S·B = [8]R + [8]k·A for EVERY
    // message because [8]A = 0.
    let r_scalar = Scalar::from_bytes_mod_order(rand32(&mut rng));
    let r_enc = (ED25519_BASEPOINT_POINT * r_scalar).compress().to_bytes();
    let universal = raw_sig(&r_enc, &r_scalar);
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        let a = t.compress().to_bytes();
        records.push(sig_record(SigCase {
            id: &format!("small-order-key-{i}"),
            comment: &format!(
                "public key = EIGHT_TORSION[{i}] (canonical encoding); the signature (R = [r]B, S = r) passes the bare cofactored equation for any message, so the key is rejected"
            ),
            tags: &["edge", "small-order"],
            seed: None,
            public: a,
            purpose: post,
            message: msg,
            sig: universal,
            expect: Err(SignatureError::SmallOrderKey),
        }));
    }
    // Non-canonical encodings: y >= p (y = p + k) and x = 0 with the sign bit.
    let mut candidates: Vec<([u8; 32], String)> = Vec::new();
    for k in 0..19u8 {
        for sign_bit in [false, true] {
            candidates.push((
                p_plus(k, sign_bit),
                format!("y = p + {k}, sign bit {}", u8::from(sign_bit)),
            ));
        }
    }
    candidates.push((
        small_int(1, true),
        "y = 1, x = 0 with the sign bit set".to_owned(),
    ));
    let mut minus_one = p_plus(0, true);
    minus_one[0] = 0xec;
    candidates.push((
        minus_one,
        "y = p - 1, x = 0 with the sign bit set".to_owned(),
    ));
    let mut n_small_nc = 0;
    let mut n_nc = 0;
    let mut malformed = None;
    for (enc, what) in &candidates {
        match classify(enc) {
            Some(Enc::SmallOrder) => {
                records.push(sig_record(SigCase {
                    id: &format!("small-order-key-noncanonical-{n_small_nc}"),
                    comment: &format!("public key is a non-canonical encoding of a small-order point ({what}); small order is checked before canonicity, so the error is smallOrderKey"),
                    tags: &["edge", "small-order", "non-canonical-key"],
                    seed: None,
                    public: *enc,
                    purpose: post,
                    message: msg,
                    sig: universal,
                    expect: Err(SignatureError::SmallOrderKey),
                }));
                n_small_nc += 1;
            }
            Some(Enc::NonCanonical) => {
                records.push(sig_record(SigCase {
                    id: &format!("non-canonical-key-{n_nc}"),
                    comment: &format!("public key is a non-canonical encoding ({what}) of a point that is not of small order; ZIP-215 alone would decode it"),
                    tags: &["edge", "non-canonical-key"],
                    seed: None,
                    public: *enc,
                    purpose: post,
                    message: msg,
                    sig: good,
                    expect: Err(SignatureError::NonCanonicalKey),
                }));
                n_nc += 1;
            }
            Some(Enc::Malformed) => {
                if malformed.is_none() {
                    malformed = Some((*enc, what.clone()));
                }
            }
            None => panic!("{what} is canonical?"),
        }
    }
    assert!(n_small_nc >= 4 && n_nc >= 2, "{n_small_nc} {n_nc}");
    let (mal, mal_what) = malformed.expect("some y >= p is not on the curve");
    records.push(sig_record(SigCase {
        id: "malformed-key",
        comment: &format!("public key bytes ({mal_what}) do not decode to a curve point"),
        tags: &["edge", "malformed-key"],
        seed: None,
        public: mal,
        purpose: post,
        message: msg,
        sig: good,
        expect: Err(SignatureError::MalformedKey),
    }));

    // Non-canonical R whose bare equation holds: R encodes a small-order
    // point non-canonically, S = k·a with k computed over those R bytes.
    let a_secret = Scalar::from_bytes_mod_order(rand32(&mut rng));
    let a_point = ED25519_BASEPOINT_POINT * a_secret;
    let a_enc = a_point.compress().to_bytes();
    let input_post = sign::signing_input(Purpose::Post, msg);
    for (i, (r_nc, what)) in [
        (
            p_plus(1, false),
            "y = p + 1 (the identity, non-canonically)",
        ),
        (
            small_int(1, true),
            "y = 1 with the sign bit set (the identity, x = 0)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let k = challenge(&r_nc, &a_enc, &input_post);
        let sig = raw_sig(&r_nc, &(k * a_secret));
        assert!(zip215_ok(&a_enc, &input_post, &sig));
        records.push(sig_record(SigCase {
            id: &format!("non-canonical-r-{i}"),
            comment: &format!("R = {what}; S = k·a so the bare cofactored equation holds (zip215_valid) but R is not canonical"),
            tags: &["edge", "non-canonical-r"],
            seed: None,
            public: a_enc,
            purpose: post,
            message: msg,
            sig,
            expect: Err(SignatureError::NonCanonicalR),
        }));
    }
    let mut r_off = good;
    r_off[..32].copy_from_slice(&mal);
    records.push(sig_record(SigCase {
        id: "r-not-on-curve",
        comment: "R bytes do not decode to a curve point",
        tags: &["edge"],
        seed: None,
        public,
        purpose: post,
        message: msg,
        sig: r_off,
        expect: Err(SignatureError::Invalid),
    }));

    // Mixed-order key A = [a]B + T (T of order 8): not small order, canonical.
    let mixed = a_point + EIGHT_TORSION[1];
    let mixed_enc = mixed.compress().to_bytes();
    let mut mixed_msg = b"distsoc mixed-order key".to_vec();
    let mixed_sig = loop {
        let input = sign::signing_input(Purpose::Post, &mixed_msg);
        let r = Scalar::from_bytes_mod_order(rand32(&mut rng));
        let r_enc = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        let k = challenge(&r_enc, &mixed_enc, &input);
        let sig = raw_sig(&r_enc, &(r + k * a_secret));
        if !cofactorless_ok(&mixed_enc, &input, &sig) {
            break sig;
        }
        mixed_msg.push(b'!');
    };
    records.push(sig_record(SigCase {
        id: "mixed-order-key",
        comment: "A = [a]B + T with T of order 8 (canonical, not small order); R = [r]B, S = r + k·a. The cofactored rule ACCEPTS it; a cofactorless verifier rejects it (cofactorless_valid = false). Accepted on purpose: single and batch verification must agree",
        tags: &["edge", "mixed-order"],
        seed: None,
        public: mixed_enc,
        purpose: post,
        message: &mixed_msg,
        sig: mixed_sig,
        expect: Ok(()),
    }));
    let mut mixed_r_msg = b"distsoc mixed-order R".to_vec();
    let mixed_r_sig = loop {
        let input = sign::signing_input(Purpose::Post, &mixed_r_msg);
        let r = Scalar::from_bytes_mod_order(rand32(&mut rng));
        let r_enc = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[3])
            .compress()
            .to_bytes();
        let k = challenge(&r_enc, &a_enc, &input);
        let sig = raw_sig(&r_enc, &(r + k * a_secret));
        if !cofactorless_ok(&a_enc, &input, &sig) {
            break sig;
        }
        mixed_r_msg.push(b'!');
    };
    records.push(sig_record(SigCase {
        id: "mixed-order-r",
        comment: "R = [r]B + T with T of order 8 (canonical); S = r + k·a. Valid under the cofactored rule, invalid cofactorless",
        tags: &["edge", "mixed-order"],
        seed: None,
        public: a_enc,
        purpose: post,
        message: &mixed_r_msg,
        sig: mixed_r_sig,
        expect: Ok(()),
    }));
    let t_enc = EIGHT_TORSION[1].compress().to_bytes();
    let k_t = challenge(&t_enc, &a_enc, &input_post);
    records.push(sig_record(SigCase {
        id: "small-order-r",
        comment: "R = EIGHT_TORSION[1] (small order, canonical), S = k·a: small-order R is not rejected; valid under the cofactored rule",
        tags: &["edge", "small-order-r"],
        seed: None,
        public: a_enc,
        purpose: post,
        message: msg,
        sig: raw_sig(&t_enc, &(k_t * a_secret)),
        expect: Ok(()),
    }));

    // Batches.
    let batch_keys: Vec<SigningKey> = (0..8)
        .map(|_| SigningKey::from_seed(&rand32(&mut rng)))
        .collect();
    let mut items: Vec<OwnedItem> = batch_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let p = Purpose::ALL[i % Purpose::ALL.len()];
            let m = format!("batch item {i}").into_bytes();
            let s = k.sign(p, &m);
            (k.public(), p, m, s)
        })
        .collect();
    items[6] = (mixed_enc, Purpose::Post, mixed_msg.clone(), mixed_sig);
    let batch_record = |id: &str,
                        comment: &str,
                        items: &[OwnedItem],
                        expect: Result<(), (usize, SignatureError)>| {
        let refs: Vec<BatchItem<'_>> = items
            .iter()
            .map(|(a, p, m, s)| (*a, *p, m.as_slice(), *s))
            .collect();
        let mut brng = ChaCha20Rng::from_seed([0xba; 32]);
        let actual = sign::verify_batch(&refs, &mut brng).map_err(|e| (e.index, e.error));
        assert_eq!(actual, expect, "{id}");
        let list: Vec<Value> = items
            .iter()
            .map(|(a, p, m, s)| json!({"public_key": h(a), "purpose": p.as_str(), "message": h(m), "signature": h(s)}))
            .collect();
        let expected = match expect {
            Ok(()) => json!({}),
            Err((index, e)) => json!({"index": index, "error": e.name()}),
        };
        rec(
            id,
            comment,
            &["batch"],
            expect.is_ok(),
            json!({"kind": "batch", "items": list}),
            expected,
        )
    };
    records.push(batch_record(
        "batch-valid",
        "8 valid domain-separated signatures, including the mixed-order key (index 6): batch verification accepts exactly what single verification accepts",
        &items,
        Ok(()),
    ));
    records.push(batch_record(
        "batch-empty",
        "an empty batch is valid",
        &[],
        Ok(()),
    ));
    let mut bad = items.clone();
    bad[5].2.push(b'x');
    records.push(batch_record(
        "batch-bad-item-5",
        "item 5's message altered: the batch fails and the first bad index is reported",
        &bad,
        Err((5, SignatureError::Invalid)),
    ));
    let mut bad = items.clone();
    bad[2].0 = EIGHT_TORSION[2].compress().to_bytes();
    bad[2].3 = universal;
    bad[6].2.push(b'x');
    records.push(batch_record(
        "batch-small-order-key",
        "item 2 uses a small-order key with a universal signature, item 6 is also bad: index 2 is reported",
        &bad,
        Err((2, SignatureError::SmallOrderKey)),
    ));
    let mut bad = items.clone();
    bad[1].3[40] ^= 0x04;
    add_l(&mut bad[3].3);
    records.push(batch_record(
        "batch-order-of-failures",
        "item 1 fails its equation, item 3 has a non-canonical S: index 1 is reported (slice order, as single verification)",
        &bad,
        Err((1, SignatureError::Invalid)),
    ));

    file(
        "signatures.json",
        "Ed25519 signatures with distsoc domain separation and the distsoc strictness rule (protocol/src/sign.rs). Record kinds: input.kind = \"verify\" (one signature; input.domain = true means the signed bytes are \"distsoc/2/\" ‖ purpose ‖ 0x00 ‖ message, false means raw RFC 8032 ed25519 over message; if input.seed is present, signing with it must reproduce input.signature and the public key) and \"batch\" (verify input.items together; on failure the first failing index and its error). expected.zip215_valid / cofactorless_valid are informative: what the bare ZIP-215 equation and the cofactorless equation say.",
        records,
    )
}
