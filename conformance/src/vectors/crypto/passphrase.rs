//! `passphrase.json`: Argon2id + ChaCha20-Poly1305 identity-bundle sealing.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::json;

use distsoc_protocol::passphrase::{self, KdfParams};

use super::{file, h, rand_n, rec};
use crate::vectors::VectorFile;

// ---------------------------------------------------------------------------
// passphrase.json

pub(super) fn passphrase_file() -> VectorFile {
    let mut rng = ChaCha20Rng::from_seed([0x9a; 32]);
    let mut records = Vec::new();
    let params_json = |p: &KdfParams| json!({"memory_kib": p.memory_kib, "iterations": p.iterations, "parallelism": p.parallelism, "salt": h(p.salt)});
    let mut seal_rec = |id: &str,
                        comment: &str,
                        pass: &[u8],
                        p: KdfParams,
                        plaintext: &[u8],
                        aad: &[u8],
                        rng: &mut ChaCha20Rng| {
        let nonce = rand_n::<12>(rng);
        let key = passphrase::derive_key(pass, &p).expect("kdf");
        let sealed = passphrase::seal(pass, &p, &nonce, aad, plaintext).expect("seal");
        records.push(rec(
            id,
            comment,
            &["seal"],
            true,
            json!({"kind": "seal", "passphrase": h(pass), "kdf": params_json(&p), "nonce": h(nonce), "aad": h(aad), "plaintext": h(plaintext)}),
            json!({"key": h(*key), "sealed": h(&sealed)}),
        ));
        (nonce, sealed)
    };
    let p1 = KdfParams::new(8192, 1, 1, rand_n::<16>(&mut rng)).expect("params");
    let aad1 = b"distsoc identity bundle v1 / argon2id m=8192 t=1 p=1";
    let pt1 = b"an identity export bundle (network key, posting keys, vouch keys)";
    let (n1, s1) = seal_rec("seal-small-params", "Argon2id v1.3, m = 8 MiB, t = 1, p = 1 (small, for fast tests), 32-byte key; ChaCha20-Poly1305 with caller AAD", b"correct horse battery staple", p1, pt1, aad1, &mut rng);
    let p2 = KdfParams::new(8192, 2, 2, rand_n::<16>(&mut rng)).expect("params");
    seal_rec(
        "seal-unicode-passphrase",
        "passphrase is UTF-8 NFC bytes of \"pässwörd ✓\"; m = 8 MiB, t = 2, p = 2; empty AAD",
        "pässwörd ✓".as_bytes(),
        p2,
        b"second bundle",
        b"",
        &mut rng,
    );
    let p3 = KdfParams::new(8192, 1, 1, rand_n::<16>(&mut rng)).expect("params");
    seal_rec("seal-empty-passphrase", "empty passphrase and empty plaintext are allowed by the primitive (the UI should refuse an empty passphrase)", b"", p3, b"", b"hdr", &mut rng);

    let open_rec = |id: &str,
                    comment: &str,
                    tags: &[&str],
                    pass: &[u8],
                    p: KdfParams,
                    nonce: [u8; 12],
                    aad: &[u8],
                    sealed: &[u8]| {
        let err = passphrase::open(pass, &p, &nonce, aad, sealed).expect_err(id);
        rec(
            id,
            comment,
            tags,
            false,
            json!({"kind": "open", "passphrase": h(pass), "kdf": params_json(&p), "nonce": h(nonce), "aad": h(aad), "sealed": h(sealed)}),
            json!({"error": err.name()}),
        )
    };
    let mut recs2 = vec![
        open_rec(
            "open-wrong-passphrase",
            "seal-small-params opened with a different passphrase",
            &["open", "negative"],
            b"correct horse battery stapler",
            p1,
            n1,
            aad1,
            &s1,
        ),
        open_rec(
            "open-wrong-aad",
            "seal-small-params opened with another KDF header as AAD",
            &["open", "negative"],
            b"correct horse battery staple",
            p1,
            n1,
            b"distsoc identity bundle v1 / argon2id m=8192 t=1 p=2",
            &s1,
        ),
        open_rec(
            "open-wrong-salt",
            "seal-small-params opened with another salt",
            &["open", "negative"],
            b"correct horse battery staple",
            KdfParams {
                salt: [0u8; 16],
                ..p1
            },
            n1,
            aad1,
            &s1,
        ),
        open_rec(
            "open-tampered",
            "seal-small-params with one ciphertext bit flipped",
            &["open", "tamper"],
            b"correct horse battery staple",
            p1,
            n1,
            aad1,
            &{
                let mut s = s1.clone();
                s[5] ^= 0x20;
                s
            },
        ),
        open_rec(
            "open-truncated",
            "sealed data shorter than the 16-byte tag",
            &["open", "malformed"],
            b"correct horse battery staple",
            p1,
            n1,
            aad1,
            &s1[..12],
        ),
    ];
    records.append(&mut recs2);
    for (id, comment, m, t, par) in [
        (
            "bounds-memory-too-small",
            "memory 4 MiB < 8 MiB",
            4096u32,
            1u32,
            1u32,
        ),
        (
            "bounds-memory-too-large",
            "memory 2 GiB > 1 GiB: a hostile file must not make us allocate it",
            2 * 1024 * 1024,
            1,
            1,
        ),
        (
            "bounds-memory-u32-max",
            "memory 2^32 - 1 KiB",
            u32::MAX,
            1,
            1,
        ),
        ("bounds-iterations-zero", "0 iterations", 8192, 0, 1),
        (
            "bounds-iterations-too-many",
            "11 iterations > 10",
            8192,
            11,
            1,
        ),
        ("bounds-parallelism-zero", "0 lanes", 8192, 1, 0),
        ("bounds-parallelism-too-many", "5 lanes > 4", 8192, 1, 5),
    ] {
        let p = KdfParams {
            memory_kib: m,
            iterations: t,
            parallelism: par,
            salt: p1.salt,
        };
        records.push(open_rec(
            id,
            &format!("{comment}: rejected before running Argon2"),
            &["bounds", "negative"],
            b"correct horse battery staple",
            p,
            n1,
            aad1,
            &s1,
        ));
    }
    file(
        "passphrase.json",
        "Passphrase sealing of the identity export bundle (protocol/src/passphrase.rs): key = Argon2id v1.3 (passphrase, salt, m = memory_kib, t = iterations, p = parallelism, 32-byte output); sealed = ChaCha20-Poly1305(key, nonce, aad, plaintext). Bounds: memory 8192..=1048576 KiB, iterations 1..=10, parallelism 1..=4, checked before any work. Kinds: seal (derive key, seal, then open must give the plaintext back), open (must fail with expected.error).",
        records,
    )
}
